/* verified.h: the blocks an operation reads before it writes, each
 * verified in the same call (heap.c says why): the caller's pointer
 * (data_off, live_block) and the neighbours whose tags the operation
 * rewrites or whose span it takes over (neighbour, used_after_free,
 * prev_block). For heap.c, which changes blocks, and handles.c, which
 * answers questions about them.
 */
#ifndef SHMHEAP_VERIFIED_H
#define SHMHEAP_VERIFIED_H

#include <errno.h>
#include <stdint.h>

#include "block.h"
#include "extent.h"

/* A block whose tag was verified in this call. off == 0: no such block. */
struct blk {
  uint64_t off, tag, size;
};

static inline uint64_t flags_of(uint64_t tag) {
  return tag & SHH_F_MASK;
}

/* Whether the handle OFF names a byte of the heap's data area. */
static inline int handle_ok(const struct shmheap *h, uint64_t off) {
  return off >= SHH_FIRST + SHH_TAG && off < h->len;
}

/* Whether PTR lies in the heap's data area; *OFF gets its offset. The one
 * bounds check of a caller's pointer. */
static inline int data_off(const struct shmheap *h, const void *ptr,
                           uint64_t *off) {
  *off = (uint64_t)((uintptr_t)ptr - (uintptr_t)h->base);
  return handle_ok(h, *off);
}

/* The same two checks for calls that do not take the lock: a growable
 * heap's length may change meanwhile (extent.h). */
static inline int handle_ok_now(const struct shmheap *h, uint64_t off) {
  return off >= SHH_FIRST + SHH_TAG && off < shh_len_now(h);
}

static inline int data_off_now(const struct shmheap *h, const void *ptr,
                               uint64_t *off) {
  *off = (uint64_t)((uintptr_t)ptr - (uintptr_t)h->base);
  return handle_ok_now(h, *off);
}

/* The neighbour at OFF (< h->len) of a block being changed, into *B: its tag
 * verifies and its size leads on: a free block's footer repeats its tag, a
 * used block is followed by a tag that verifies or by the heap's end. */
static inline __attribute__((always_inline)) int
neighbour(const struct shmheap *h, uint64_t off, struct blk *b) {
  b->off = off;
  b->tag = shh_ld(h, off);
  b->size = shh_tag_size(b->tag);
  if (!shh_tag_valid(h, off, b->tag))
    return EUCLEAN;
  uint64_t end = off + b->size;
  if (!shh_tag_used(b->tag))
    return shh_footer(h, off, b->size) == b->tag ? 0 : EUCLEAN;
  return end == h->len || shh_tag_ok(h, end, shh_ld(h, end)) ? 0 : EUCLEAN;
}

/* The used block at OFF that follows a block about to stop being free, so
 * that its PREV_FREE flag is to be cleared; B->off == 0 at the heap's end. */
static inline int used_after_free(const struct shmheap *h, uint64_t off,
                                  struct blk *b) {
  b->off = 0;
  if (off == h->len)
    return 0;
  int err = neighbour(h, off, b);
  if (err == 0 && (!shh_tag_used(b->tag) || !shh_tag_prev_free(b->tag)))
    err = EUCLEAN;
  return err;
}

/* Checks that PTR is the payload of a live block of this heap, into *A, and
 * verifies the block after it into *NEXT (NEXT->off == 0 at the heap's end).
 * Returns 0 or an errno: EINVAL when PTR cannot be a live block (outside the
 * heap, misaligned, a tag that does not verify: user data under an interior
 * pointer, or a tag left behind by a merge), EUCLEAN when the tag verifies
 * but what it or the next tag says cannot be. */
static inline int live_block(const struct shmheap *h, const void *ptr,
                             struct blk *a, struct blk *next) {
  uint64_t p;
  if (!data_off(h, ptr, &p) || !shh_phase_ok(p - SHH_TAG))
    return EINVAL;
  a->off = p - SHH_TAG;
  a->tag = shh_ld(h, a->off);
  if (!shh_tag_ok(h, a->off, a->tag) || !shh_tag_used(a->tag))
    return EINVAL;
  a->size = shh_tag_size(a->tag);
  if (!shh_size_ok(h, a->off, a->size))
    return EUCLEAN;
  next->off = 0;
  uint64_t n = a->off + a->size;
  if (n == h->len) {
    next->tag = next->size = 0;
    return 0;
  }
  /* a genuine block is followed by a genuine tag that knows it is used */
  int err = neighbour(h, n, next);
  return err != 0 || shh_tag_prev_free(next->tag) ? EUCLEAN : 0;
}

/* The free block just before A into *P (P->off == 0 when there is none). */
static inline int prev_block(const struct shmheap *h, const struct blk *a,
                             struct blk *p) {
  p->off = 0;
  if (!shh_tag_prev_free(a->tag))
    return 0;
  uint64_t size = shh_tag_size(shh_ld(h, a->off - SHH_FOOTER));
  if (size > a->off - SHH_FIRST)
    return EUCLEAN;
  int err = neighbour(h, a->off - size, p);
  return err != 0 || shh_tag_used(p->tag) || p->size != size ? EUCLEAN : 0;
}

#endif

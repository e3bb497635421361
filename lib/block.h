/* block.h: the layout of a block and its boundary tags.
 *
 * A block at offset b (b is SHH_BLOCK_PHASE mod SHH_ALIGN) starts with an
 * SHH_TAG-byte tag; its payload starts at b + SHH_TAG, SHH_ALIGN-aligned.
 * The tag holds
 *   bits  0..2   flags: USED (this block is allocated), PREV_FREE (the block
 *                before this one is free, so its footer can be read), NAMED
 *                (allocated and published under a name: free drops names)
 *   bits  3..47  the block's size in bytes (tag included), a multiple of 8
 *   bits 48..63  check bits: a keyed hash of the offset and bits 0..47.
 * Sizes are multiples of 16, except the block that ends the heap, whose size
 * is 8 mod 16 (the blocks span [SHH_FIRST, len) and len is a page multiple).
 *
 * A free block also holds, right after its tag, its node in the free index
 * (left, right, and the largest size in each subtree, with the AVL balance
 * in the spare low bits; the top, the free block that ends the heap, is
 * left out of the index and its node words are unused) and, in its last
 * SHH_FOOTER bytes, a footer that repeats its tag so the next block can
 * find its start. An allocated
 * block carries nothing but its tag: 8 bytes of overhead.
 *
 * The check bits let free() refuse a pointer whose "tag" is user data (an
 * interior pointer) or a tag left behind by a merge (a double free), and
 * let any operation notice a scribbled tag before following it. No tag is
 * ever rewritten (re-signed) unless it verified first (shh_tag_valid), so a
 * scribbled tag stays visible to shmheap_check instead of being blessed.
 */
#ifndef SHMHEAP_BLOCK_H
#define SHMHEAP_BLOCK_H

#include <stdatomic.h>
#include <stdint.h>

#include "region.h"

enum {
  SHH_F_USED = 1,
  SHH_F_PREV_FREE = 2,
  SHH_F_NAMED = 4, /* allocated and published under a name (names.c) */
  SHH_F_MASK = 7,
  /* index node fields, as offsets within a free block (index.c) */
  /* each link next to its subtree's maximum, so a step down the tree that
   * reads both touches one cache line wherever the block starts */
  SHH_N_LEFT = 8,
  SHH_N_LMAX = 16, /* largest size in the left subtree | balance + 2 */
  SHH_N_RIGHT = 24,
  SHH_N_RMAX = 32, /* largest size in the right subtree */
  SHH_N_WORDS = 4, /* the node's words, from SHH_N_LEFT on */
};

#define SHH_SIZE_MASK 0x0000fffffffffff8ull
#define SHH_LOW_MASK 0x0000ffffffffffffull

/* Orders the writes of an operation against a kill at any instruction: what
 * matters for crash consistency is the order the stores are issued in by
 * this thread, which a signal fence pins down for the compiler (x86 stores
 * become visible in program order). */
#define shh_order() atomic_signal_fence(memory_order_seq_cst)

/* The check bits: one multiply-shift hash, keyed, of the offset and the
 * low 48 bits; its top 16 bits. It runs on every tag and on every index
 * node a walk passes, so it is kept to two multiplies. A wrong tag passes
 * with probability about 2^-16; a single flipped bit of the low 48 always
 * fails: it moves the product by K2 << i, whose top 16 bits are never all
 * zeros or all ones for this K2, so they cannot come back unchanged. */
static inline uint64_t shh_check_bits(uint64_t key, uint64_t off,
                                      uint64_t low) {
  uint64_t x =
      ((low ^ off * 0x9e3779b97f4a7c15ull) + key) * 0xbf58476d1ce4e5b9ull;
  return x & 0xffff000000000000ull;
}

static inline uint64_t shh_tag_make(const struct shmheap *h, uint64_t off,
                                    uint64_t size, unsigned flags) {
  uint64_t low = size | flags;
  return low | shh_check_bits(h->key, off, low);
}

static inline int shh_tag_ok(const struct shmheap *h, uint64_t off,
                             uint64_t tag) {
  return (tag & ~SHH_LOW_MASK) ==
         shh_check_bits(h->key, off, tag & SHH_LOW_MASK);
}

static inline uint64_t shh_tag_size(uint64_t tag) {
  return tag & SHH_SIZE_MASK;
}
static inline int shh_tag_used(uint64_t tag) {
  return (tag & SHH_F_USED) != 0;
}
static inline int shh_tag_prev_free(uint64_t tag) {
  return (tag & SHH_F_PREV_FREE) != 0;
}

static inline uint64_t shh_ld(const struct shmheap *h, uint64_t off) {
  return *shh_at(h, off);
}
static inline void shh_st(const struct shmheap *h, uint64_t off, uint64_t v) {
  *shh_at(h, off) = v;
}
/* A commit point: one untorn 8-byte store that switches the tag walk from
 * the old layout to the new one. Everything written before it is ordered
 * before it. */
static inline void shh_commit(const struct shmheap *h, uint64_t off,
                              uint64_t v) {
  shh_order();
  __atomic_store_n(shh_at(h, off), v, __ATOMIC_RELAXED);
  shh_order();
}

static inline int shh_phase_ok(uint64_t off) {
  return (off & (SHH_ALIGN - 1)) == SHH_BLOCK_PHASE;
}

/* A block offset that could hold a block: inside the heap, tag-aligned. */
static inline int shh_off_ok(const struct shmheap *h, uint64_t off) {
  return off >= SHH_FIRST && off < h->len && shh_phase_ok(off) &&
         h->len - off >= SHH_MIN_BLOCK;
}

/* A size that a block at OFF could have: it ends at the heap's end, or at
 * the start of another block. */
static inline int shh_size_ok(const struct shmheap *h, uint64_t off,
                              uint64_t size) {
  if (size < SHH_MIN_BLOCK || size > h->len - off)
    return 0;
  return off + size == h->len || shh_phase_ok(off + size);
}

/* A tag that may be believed: its check bits verify for OFF and the size
 * it gives ends at the heap's end or where another tag can start. Every
 * tag an operation rewrites, or whose size it follows, passes this first. */
static inline int shh_tag_valid(const struct shmheap *h, uint64_t off,
                                uint64_t tag) {
  return shh_tag_ok(h, off, tag) && shh_size_ok(h, off, shh_tag_size(tag));
}

/* A free block of size S fits a request of SZ bytes when S >= shh_fit(SZ),
 * i.e. its payload S - SHH_TAG holds SZ (SZ <= len, so nothing overflows). */
static inline uint64_t shh_fit(uint64_t sz) {
  uint64_t n = (sz + SHH_TAG + SHH_F_MASK) & SHH_SIZE_MASK;
  return n < SHH_MIN_BLOCK ? SHH_MIN_BLOCK : n;
}

/* The size of the block carved for SZ bytes when a bigger block is split:
 * a multiple of 16, so the rest starts tag-aligned. */
static inline uint64_t shh_carve(uint64_t sz) {
  uint64_t n = (sz + SHH_TAG + SHH_ALIGN - 1) & ~(uint64_t)(SHH_ALIGN - 1);
  return n < SHH_MIN_BLOCK ? SHH_MIN_BLOCK : n;
}

/* The footer of a free block: a copy of its tag in its last word. */
static inline uint64_t shh_footer(const struct shmheap *h, uint64_t off,
                                  uint64_t size) {
  return shh_ld(h, off + size - SHH_FOOTER);
}
static inline void shh_put_footer(const struct shmheap *h, uint64_t off,
                                  uint64_t size, uint64_t tag) {
  shh_st(h, off + size - SHH_FOOTER, tag);
}

/* The top: the free block that ends the heap, or 0 when the last block is
 * used (or its tag or footer does not verify; then nothing treats it as
 * free). The free index leaves the top out, so a carve from the heap's
 * end and a free next to it touch no index node: it is found in O(1) from
 * its footer, the heap's last word. It is first fit's answer only when
 * no indexed block fits, as it lies above them all. What this returns has
 * a tag that verifies as free, ends at len and is repeated by the footer,
 * so a caller may rewrite both (growth extends it). */
static inline uint64_t shh_top(const struct shmheap *h) {
  uint64_t f = shh_ld(h, h->len - SHH_FOOTER), size = shh_tag_size(f);
  uint64_t off = h->len - size;
  if (shh_tag_used(f) || size < SHH_MIN_BLOCK || size > h->len - SHH_FIRST ||
      !shh_phase_ok(off) || shh_ld(h, off) != f)
    return 0;
  return shh_tag_ok(h, off, f) ? off : 0;
}

#endif

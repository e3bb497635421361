/* extent.h: how far the heap reaches: its length as every thread of every
 * process sees it, and the one repair recovery makes for a growth that died
 * half-way (grow.c owns growth itself).
 *
 * A growable heap is mapped max_len bytes wide at connect, so growth never
 * moves it; only the header's len says how much of the mapping is heap.
 * Under the lock a process reads h->len, which shh_lock refreshes from the
 * header (shh_len_refresh); without the lock it reads the header's len
 * itself (shh_len_now), since the handle's len may change under it.
 */
#ifndef SHMHEAP_EXTENT_H
#define SHMHEAP_EXTENT_H

#include <errno.h>
#include <unistd.h>

#include "block.h"

/* The heap's length for calls that do not take the lock: a non-growable
 * heap's never changes; a growable heap's is the header's, clamped to what
 * this process mapped (a scribbled len then cannot reach past the map). */
static inline uint64_t shh_len_now(const struct shmheap *h) {
  if (!h->growable)
    return h->len;
  uint64_t len = __atomic_load_n(&shh_hdr(h)->len, __ATOMIC_ACQUIRE);
  return len < h->map_len ? len : h->map_len;
}

static inline uint64_t shh_page_size(void) {
  long p = sysconf(_SC_PAGESIZE);
  return p > 0 ? (uint64_t)p : 4096;
}

/* Under the lock: h->len takes the header's len, which may only have grown,
 * by whole pages, within the mapping. 0, or EUCLEAN when it cannot be. */
static inline int shh_len_refresh(struct shmheap *h) {
  uint64_t len = __atomic_load_n(&shh_hdr(h)->len, __ATOMIC_RELAXED);
  if (len == h->len)
    return 0;
  if (len < h->len || len > h->map_len || len % shh_page_size() != 0)
    return EUCLEAN;
  h->len = len;
  return 0;
}

/* Recovery's hook: TAG at OFF has verifying check bits but a size that
 * does not fit the walk.
 * Growth commits the new len, then gives the old last block (whose size is
 * SHH_BLOCK_PHASE mod SHH_ALIGN, as only the last block's may be) the
 * SHH_BLOCK_PHASE bytes between its end and the new free block's tag. When
 * a grower died between the two, this block ends aligned inside the heap
 * with a valid tag SHH_BLOCK_PHASE bytes on: returns its mended tag.
 * Otherwise 0. */
static inline uint64_t shh_grow_mend(const struct shmheap *h, uint64_t off,
                                     uint64_t tag) {
  uint64_t size = shh_tag_size(tag), end = off + size;
  uint64_t next_off = end + SHH_BLOCK_PHASE;
  if (!h->growable || !shh_tag_ok(h, off, tag) || size < SHH_MIN_BLOCK ||
      size > h->len - off || end % SHH_ALIGN != 0 || next_off >= h->len)
    return 0;
  uint64_t next = shh_ld(h, next_off);
  if (!shh_tag_valid(h, next_off, next))
    return 0;
  return shh_tag_make(h, off, size + SHH_BLOCK_PHASE,
                      (unsigned)(tag & SHH_F_MASK));
}

#endif

/* recover.c: rebuilding a heap whose last lock owner died mid-operation.
 *
 * The tags are the truth; everything else is derived from them and can be
 * rebuilt: the footers, the PREV_FREE flags, the free index. The write order
 * of every operation (heap.c) keeps the tag walk valid at every instruction,
 * so a dead operation leaves either its old layout or its new one, plus, at
 * worst, two adjacent free blocks (merged here) or a block it had allocated
 * and not yet returned (left allocated: a leak, never a loss).
 *
 * Recovery first walks every tag without writing: each must verify and its
 * size must lead to the next tag, the last one to the heap's end. Only a
 * walk that holds is repaired, so a scribbled tag is never re-signed and a
 * heap recovery refuses is left exactly as it was found.
 *
 * A growth that died between committing the new length and giving the old
 * last block its 8 bytes is the one tag the walk accepts although its size
 * falls short (extent.h, shh_grow_mend); the repair then completes it.
 * The names directory is repaired last (directory.c).
 *
 * The index is rebuilt with every free block but the top (the free block
 * that ends the heap), as heap.c keeps it.
 *
 * Recovery's own writes are safe to repeat: if the repairer dies, the lock
 * stays marked for recovery and the next locker starts over.
 */
#include "recover.h"

#include <errno.h>

#include "block.h"
#include "extent.h"
#include "index.h"

/* The tag at OFF as the walk should see it: as stored, or mended when a
 * growth died half-way; 0 when it does not verify. */
static uint64_t walk_tag(const struct shmheap *h, uint64_t off) {
  uint64_t tag = shh_ld(h, off);
  return shh_tag_valid(h, off, tag) ? tag : shh_grow_mend(h, off, tag);
}

/* Whether the tag walk from SHH_FIRST reaches the heap's end through tags
 * that all verify. */
static int tags_hold(const struct shmheap *h) {
  uint64_t off = SHH_FIRST;
  while (off < h->len) {
    uint64_t tag = walk_tag(h, off);
    if (tag == 0)
      return 0;
    off += shh_tag_size(tag);
  }
  return off == h->len;
}

int shh_recover(struct shmheap *h) {
  if (!tags_hold(h))
    return EUCLEAN;
  uint64_t off = SHH_FIRST, free_count = 0;
  uint64_t prev = 0, prev_size = 0; /* the free block just before off */
  while (off < h->len) {
    uint64_t tag = walk_tag(h, off);
    uint64_t size = shh_tag_size(tag);
    if (tag != shh_ld(h, off))
      shh_st(h, off, tag); /* the mend of a half-done growth */
    if (!shh_tag_used(tag) && prev != 0) {
      /* two free blocks in a row: the dead process freed one and had not
       * merged it yet. One store folds the second into the first. */
      prev_size += size;
      shh_commit(h, prev, shh_tag_make(h, prev, prev_size, 0));
      shh_st(h, off, 0);
    } else {
      if (prev != 0)
        shh_put_footer(h, prev, prev_size, shh_ld(h, prev));
      unsigned flags =
          (shh_tag_used(tag) ? tag & (SHH_F_USED | SHH_F_NAMED) : 0) |
          (prev != 0 ? SHH_F_PREV_FREE : 0);
      uint64_t want = shh_tag_make(h, off, size, flags);
      if (want != tag)
        shh_st(h, off, want);
      if (shh_tag_used(tag)) {
        prev = 0;
      } else {
        prev = off;
        prev_size = size;
        free_count++;
      }
    }
    off += size;
  }
  if (prev != 0) {
    shh_put_footer(h, prev, prev_size, shh_ld(h, prev));
    free_count--; /* the top: the index leaves it out */
  }
  shh_index_rebuild(h, free_count);
  /* a damaged directory is left as found, for shmheap_check and the names
   * calls to report: the blocks themselves are whole */
  (void)shh_names_recover(h);
  return 0;
}

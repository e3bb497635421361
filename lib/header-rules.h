/* header-rules.h: what a heap's header must say for this build to use it,
 * beyond the numbers layout.h names: the fingerprint of the build the heap
 * was made by, and how its sizes fit its object. For the library, which
 * refuses any other heap at connect (lifecycle.c), and for the tool's ls,
 * which reads headers without connecting and must judge them alike. */
#ifndef SHMHEAP_HEADER_RULES_H
#define SHMHEAP_HEADER_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "layout.h"

/* What a connecting process must share with the creator for the region's
 * layout to mean the same thing: pointer width, alignment, and a
 * byte-order marker (the region itself holds fixed-width integers only). */
static inline uint32_t shh_abi(void) {
  return (uint32_t)sizeof(void *) | (uint32_t) _Alignof(max_align_t) << 16 |
         (uint32_t)0x5a << 24;
}

/* Whether a header's LEN and MAX_LEN (0: the heap cannot grow) fit an
 * object of OBJECT bytes: LEN lies within the object, is a multiple of
 * PAGE and holds a block; the object is exactly LEN unless the heap can
 * grow, and then MAX_LEN is at least LEN, at most the largest heap, and a
 * multiple of PAGE. */
static inline int shh_sizes_fit(uint64_t len, uint64_t max_len, uint64_t object,
                                uint64_t page) {
  if (len > object || len % page != 0 || len < SHH_FIRST + SHH_MIN_BLOCK)
    return 0;
  return max_len == 0
             ? len == object
             : max_len >= len && max_len <= SHH_MAX_LEN && max_len % page == 0;
}

#endif

/* abi.h: the fingerprint of the build a heap was made by, which every
 * process that maps the heap must share (region.h keeps it in the header),
 * for the library and for the tool's ls, which reads headers without
 * connecting. */
#ifndef SHMHEAP_ABI_H
#define SHMHEAP_ABI_H

#include <stddef.h>
#include <stdint.h>

/* What a connecting process must share with the creator for the region's
 * layout to mean the same thing: pointer width, alignment, and a
 * byte-order marker (the region itself holds fixed-width integers only). */
static inline uint32_t shh_abi(void) {
  return (uint32_t)sizeof(void *) | (uint32_t) _Alignof(max_align_t) << 16 |
         (uint32_t)0x5a << 24;
}

#endif

/* grow.h: growing a heap in place (grow.c); the length every process sees
 * and recovery's repair of a half-done growth are in extent.h. */
#ifndef SHMHEAP_GROW_H
#define SHMHEAP_GROW_H

#include <stddef.h>
#include <sys/types.h>

#include "region.h"

/* The heap's last block: its offset, tag and size, and whether it is free. */
struct shh_last {
  uint64_t off, tag, size;
  int free;
};

/* Finds the last block: the top (block.h) if the last block is free, else
 * the allocated block that ends the heap, walked to from the end of the
 * rightmost indexed free block (or from the first block when none is).
 * Every tag on the way is verified. 0 or EUCLEAN. Cost: O(log n) for the
 * top, else the index's descent plus the blocks after its last free one. */
int shh_find_last(const struct shmheap *h, struct shh_last *lb);

/* Under the lock: grows the heap so that a request of SZ bytes fits
 * (doubling it when it can). 0, or ENOMEM (max_len or /dev/shm), EUCLEAN. */
int shh_grow_for(struct shmheap *h, size_t sz);

/* lifecycle.c: creates a heap of LEN bytes that may grow to MAX_LEN (0: it
 * cannot grow). */
shmheap_memory_handle shh_create(const char *name, size_t len, size_t max_len,
                                 mode_t mode);

#endif

/* grow.h: growing a heap in place (grow.c); the length every process sees
 * and recovery's repair of a half-done growth are in extent.h. */
#ifndef SHMHEAP_GROW_H
#define SHMHEAP_GROW_H

#include <stddef.h>
#include <sys/types.h>

#include "region.h"

/* Under the lock: grows the heap so that a request of SZ bytes fits
 * (doubling it when it can). 0, or ENOMEM (max_len or /dev/shm), EUCLEAN. */
int shh_grow_for(struct shmheap *h, size_t sz);

/* lifecycle.c: creates a heap of LEN bytes that may grow to MAX_LEN (0: it
 * cannot grow). */
shmheap_memory_handle shh_create(const char *name, size_t len, size_t max_len,
                                 mode_t mode);

#endif

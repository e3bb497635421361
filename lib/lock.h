/* lock.h: the heap's robust, process-shared lock and crash recovery. */
#ifndef SHMHEAP_LOCK_H
#define SHMHEAP_LOCK_H

#include <time.h>

#include "region.h"

/* Initialises the lock of a new heap. Returns 0 or an errno value. */
int shh_lock_init(struct shmheap *h);
/* Checks the lock's bytes before a process that did not create the heap
 * first locks it (glibc aborts on some garbage). 0 if plausible. */
int shh_lock_plausible(const struct shmheap *h);
/* Whether the thread the lock word names as owner still exists. */
int shh_lock_owner_alive(const struct shmheap *h);
/* Takes the lock. If its last owner died holding it, repairs the heap first.
 * Returns 0, or -1 with errno (EUCLEAN: the heap is damaged; with a
 * DEADLINE: EAGAIN when it passed). DEADLINE is CLOCK_REALTIME or NULL. */
int shh_lock(struct shmheap *h, const struct timespec *deadline);
void shh_unlock(struct shmheap *h);
/* Repairs the heap from its tags: merges adjacent free blocks, rewrites
 * footers and flags, rebuilds the free index. 0, or -1 if the tags
 * themselves cannot be walked. Called with the lock held. */
int shh_recover(struct shmheap *h);

#endif

/* recover.h: rebuilding a heap whose last lock owner died mid-operation. */
#ifndef SHMHEAP_RECOVER_H
#define SHMHEAP_RECOVER_H

#include "region.h"

/* Repairs the heap from its tags: merges adjacent free blocks, rewrites
 * footers and flags, rebuilds the free index. 0, or -1 if the tags
 * themselves cannot be walked. Called with the lock held. */
int shh_recover(struct shmheap *h);

#endif

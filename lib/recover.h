/* recover.h: rebuilding a heap from its tags after its lock owner died. */
#ifndef SHMHEAP_RECOVER_H
#define SHMHEAP_RECOVER_H

#include "region.h"

/* Repairs the heap from its tags: merges adjacent free blocks, rewrites
 * footers and flags, rebuilds the free index. Returns 0, or EUCLEAN when the
 * tags themselves cannot be walked (then nothing was written). Called with
 * the lock held. */
int shh_recover(struct shmheap *h);

/* The names directory's part of recovery (directory.c, which builds on
 * this header), run once the tags and the index are whole again: finishes
 * or undoes what a dead writer left half-done in the directory. 0, or -1
 * when the directory cannot be read (then it is left as it was). */
int shh_names_recover(struct shmheap *h);

#endif

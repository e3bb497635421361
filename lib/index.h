/* index.h: the free index, an AVL tree of the free blocks keyed by offset.
 *
 * It holds every free block but the top (block.h), the free block that
 * ends the heap, which heap.c finds in O(1) from the heap's last word.
 * Each node lives inside its free block (see block.h) and carries the
 * largest block size in each of its subtrees, so "the lowest-addressed free
 * block of at least N bytes" is one walk down the tree that reads nothing
 * but the nodes on its path. The tree is a cache of the tags: recovery
 * throws it away and rebuilds it from them.
 *
 * A change is made in two steps. First a walk down (first fit, descend,
 * find) and, for a removal, a plan: they only read, and they verify every
 * node the change will read or write (index.c says how). They return 0, or
 * EUCLEAN when the index is damaged; then nothing has been written. Then
 * the change itself, which cannot fail: it touches only what was verified.
 * The path carries what the first step learned to the second; heap.c passes
 * it along without looking inside.
 */
#ifndef SHMHEAP_INDEX_H
#define SHMHEAP_INDEX_H

#include <stdint.h>

#include "region.h"

/* Deeper than any AVL tree of blocks in 2^48 bytes can be (1.44 * 43). */
enum { SHH_MAX_DEPTH = 96 };

struct shh_path {
  int depth;
  int at;    /* the level of the node the change is about */
  int with;  /* a planned removal: the level of the node that takes the
                removed one's place; == at when none does */
  int reach; /* a planned removal: levels at or below this one are fixed up
                even when nothing seems to change (a node there grew) */
  uint64_t node[SHH_MAX_DEPTH];
  /* node[i]'s block lies in [lo[i], hi[i]), as address order requires */
  uint64_t lo[SHH_MAX_DEPTH], hi[SHH_MAX_DEPTH];
};

/* ---- step 1: walks and plans (read only; 0 or EUCLEAN) ---------------- */

/* The lowest-addressed free block of at least NEED bytes into *OFF (0 if
 * none); PATH ends at it. */
int shh_index_first_fit(const struct shmheap *h, uint64_t need, uint64_t *off,
                        struct shh_path *path);
/* The path from the root toward OFF, down to the empty link where a node
 * OFF would hang; EUCLEAN also if OFF is already in the tree. Where OFF is
 * not in the tree, the path passes through the nodes just before and after
 * it in address order. */
int shh_index_descend(const struct shmheap *h, uint64_t off,
                      struct shh_path *path);
/* The path of an empty index: what shh_index_descend gives when the root
 * is 0, without the call. */
static inline void shh_index_empty(struct shh_path *path) {
  path->depth = 0;
  path->at = path->with = -1;
  path->reach = SHH_MAX_DEPTH;
}
/* The path from the root to the node OFF. */
int shh_index_find(const struct shmheap *h, uint64_t off,
                   struct shh_path *path);
/* Makes the node OFF, which must be on PATH, the one the change is about. */
int shh_index_select(struct shh_path *path, uint64_t off);
/* Plans the removal of the node the change is about. */
int shh_index_plan_remove(const struct shmheap *h, struct shh_path *path);
/* Plans the merge of the free blocks LO and HI (LO < HI, nothing free
 * between them) into one block at LO of their combined span, on a PATH from
 * shh_index_descend of an offset between them. */
int shh_index_plan_merge(const struct shmheap *h, struct shh_path *path,
                         uint64_t lo, uint64_t hi);

/* ---- step 2: changes (cannot fail) ------------------------------------ */

/* Inserts the free block OFF where shh_index_descend's PATH ended. */
void shh_index_add(const struct shmheap *h, const struct shh_path *path,
                   uint64_t off);
/* Carries out the planned removal or merge (after the tags say so). */
void shh_index_remove(const struct shmheap *h, struct shh_path *path);
/* The node's block moves its start to TO, within its old span or the span
 * it swallows, no other free block between the two offsets: its fields are
 * copied there and the tree links TO in its place. Called before anything
 * is written over the old fields or into TO's tag. */
void shh_index_moved(const struct shmheap *h, struct shh_path *path,
                     uint64_t to);
/* The node's block changed size (its tag says the new one). */
void shh_index_resized(const struct shmheap *h, const struct shh_path *path);

/* ---- whole-tree operations -------------------------------------------- */

/* Inserts the free block OFF: both steps in one, for a new heap. The top
 * (block.h), a free block that ends the heap, stays out: nothing is done. */
int shh_index_insert(const struct shmheap *h, uint64_t off);
/* Rebuilds the whole index, balanced, from the free blocks that the tag walk
 * finds, but the top (the caller has verified the walk); COUNT is their
 * number. */
void shh_index_rebuild(const struct shmheap *h, uint64_t count);
/* Checks the index against the tags: in-order it must list exactly the free
 * blocks but the top (COUNT of them), with right maxima, heights and
 * balance. 0 or EUCLEAN. */
int shh_index_check(const struct shmheap *h, uint64_t free_count);
/* The size of the largest free block, 0 if none (or if the root is not a
 * node). O(1). */
uint64_t shh_index_largest(const struct shmheap *h);

#endif

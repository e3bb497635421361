/* index.h: the free index, an AVL tree of the free blocks keyed by offset.
 *
 * Each node lives inside its free block (see block.h) and carries the
 * largest block size in each of its subtrees, so "the lowest-addressed free
 * block of at least N bytes" is one walk down the tree that reads nothing
 * but the nodes on its path. The tree is a cache of the
 * tags: recovery throws it away and rebuilds it from them.
 *
 * Every call returns 0, or -1 when it met a link that cannot be a node (the
 * caller reports EUCLEAN and leaves the heap to recovery or the operator).
 */
#ifndef SHMHEAP_INDEX_H
#define SHMHEAP_INDEX_H

#include <stdint.h>

#include "region.h"

/* Deeper than any AVL tree of blocks in 2^48 bytes can be (1.44 * 43). */
enum { SHH_MAX_DEPTH = 96 };

struct shh_path {
  int depth;
  uint64_t node[SHH_MAX_DEPTH];
};

/* The lowest-addressed free block of at least NEED bytes into *OFF (0 if
 * none), and the path to it from the root. */
int shh_index_first_fit(const struct shmheap *h, uint64_t need, uint64_t *off,
                        struct shh_path *path);
/* The path from the root to the node OFF. */
int shh_index_find(const struct shmheap *h, uint64_t off,
                   struct shh_path *path);
/* After the last node of PATH changed its size (or was replaced), refresh
 * the subtree maxima up the path. -1 if a child link is damaged. */
int shh_index_fix_path(const struct shmheap *h, const struct shh_path *path);
/* Puts node NEW_OFF, whose fields are already a copy of the last node of
 * PATH's, in that node's place: valid when no free block lies between the
 * two offsets, as when a free block moves its start within its own span. */
int shh_index_replace(const struct shmheap *h, struct shh_path *path,
                      uint64_t new_off);
int shh_index_insert(const struct shmheap *h, uint64_t off);
/* The path from the root toward OFF, down to the empty link where a node
 * OFF would hang; -1 if OFF is already in the tree or a link is damaged.
 * It only reads index nodes. Where OFF is not in the tree, the path passes
 * through the nodes just before and after it in address order. */
int shh_index_descend(const struct shmheap *h, uint64_t off,
                      struct shh_path *path);
/* Shortens PATH to end at the node OFF; -1 if OFF is not on it. */
int shh_index_cut(struct shh_path *path, uint64_t off);
/* Inserts OFF where shh_index_descend's PATH ended. */
int shh_index_insert_path(const struct shmheap *h, uint64_t off,
                          const struct shh_path *path);
/* Removes the last node of PATH (as first fit or find left it); PATH is
 * used as scratch space. */
int shh_index_remove_path(const struct shmheap *h, struct shh_path *path);
int shh_index_remove(const struct shmheap *h, uint64_t off);
/* Rebuilds the whole index, balanced, from the free blocks that the tag walk
 * finds; COUNT is their number. */
int shh_index_rebuild(const struct shmheap *h, uint64_t count);
/* Checks the index against the tags: in-order it must list exactly the free
 * blocks, with right maxima, heights and balance. */
int shh_index_check(const struct shmheap *h, uint64_t free_count);

/* The size of the largest free block, 0 if none. O(1). */
uint64_t shh_index_largest(const struct shmheap *h);

#endif

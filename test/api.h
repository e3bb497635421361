/* api.h: what the parts of the api test program share: the one-heap
 * fixture for area "api", snapshots that prove a heap unchanged, whole-heap
 * sanity checks, and each part's case registration (test-api.c runs them
 * in order).
 */
#ifndef SHMHEAP_TEST_API_H
#define SHMHEAP_TEST_API_H

#include "testutil.h"

/* Everything observable about a heap's bookkeeping, to prove "unchanged". */
struct snapshot {
  struct shmheap_stats st;
  GArray *blocks; /* struct shmheap_block */
};

size_t page_size(void);
/* The block size carved for a request of SZ bytes. */
uint64_t carve_for(size_t sz);
/* The fixture: a heap of LEN bytes under a unique "api" name. */
void heap_open(struct heap *h, size_t len);
/* P's offset from the heap's base. */
uint64_t off_of(const struct heap *h, const void *p);
void snap_take(const struct heap *h, struct snapshot *s);
void snap_free(struct snapshot *s);
void snap_assert_equal(const struct snapshot *a, const struct snapshot *b);
/* The heap's consistency by every public means: check, a walk whose blocks
 * tile the heap with no two free neighbours, and stats that agree. */
void assert_sane(const struct heap *h);
/* The heap is empty and fully merged, and the largest request fits. */
void assert_empty(const struct heap *h);
/* The size of the block whose user pointer is P, from a walk. */
uint64_t block_size_of(const struct heap *h, const void *p);
/* Fills the heap's free space with blocks, largest first, so that later
 * allocations can only land in holes the test makes; free them with
 * free_all. */
GPtrArray *fill_rest(const struct heap *h);
void free_all(const struct heap *h, GPtrArray *a);
/* A walk callback that counts the blocks into the int at ARG. */
int count_cb(const struct shmheap_block *b, void *arg);

/* The cases of each part, registered in this order. */
void api_lifecycle_cases(void);
void api_blocks_cases(void);
void api_resize_cases(void);

#endif

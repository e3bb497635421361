/* /api/...: every point of the public contract that one process can check:
 * create/connect/destroy errors and their "nothing left behind" promise,
 * first-fit placement and its exact offsets, the refusal of bad pointers
 * with the heap unchanged, handles, calloc/realloc/usable_size, and the
 * introspection calls. This file holds main and the fixtures (api.h); the
 * cases are in api-lifecycle.c, api-blocks.c and api-resize.c.
 * Multi-process behaviour lives in test-procs.c, long random traces against
 * an oracle in test-oracle.c.
 */
#include <shmheap.h>
#include <stdlib.h>

#include "api.h"
#include "layout.h"

size_t page_size(void) {
  return (size_t)sysconf(_SC_PAGESIZE);
}

/* The block size carved for a request of SZ bytes. */
uint64_t carve_for(size_t sz) {
  uint64_t n =
      ((uint64_t)sz + SHH_TAG + SHH_ALIGN - 1) & ~(uint64_t)(SHH_ALIGN - 1);
  return n < SHH_MIN_BLOCK ? SHH_MIN_BLOCK : n;
}

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                  */

void heap_open(struct heap *h, size_t len) {
  th_heap_open(h, "api", len);
}

uint64_t off_of(const struct heap *h, const void *p) {
  return (uint64_t)((const char *)p - h->base);
}

static int collect_block(const struct shmheap_block *b, void *arg) {
  g_array_append_val((GArray *)arg, *b);
  return 0;
}

void snap_take(const struct heap *h, struct snapshot *s) {
  memset(&s->st, 0, sizeof s->st);
  g_assert_cmpint(shmheap_stats(h->mem, &s->st), ==, 0);
  s->blocks = g_array_new(FALSE, TRUE, sizeof(struct shmheap_block));
  g_assert_cmpint(shmheap_walk(h->mem, collect_block, s->blocks), ==, 0);
}

void snap_free(struct snapshot *s) {
  g_array_free(s->blocks, TRUE);
}

void snap_assert_equal(const struct snapshot *a, const struct snapshot *b) {
  g_assert_cmpmem(&a->st, sizeof a->st, &b->st, sizeof b->st);
  g_assert_cmpuint(a->blocks->len, ==, b->blocks->len);
  for (guint i = 0; i < a->blocks->len; i++) {
    const struct shmheap_block *x =
        &g_array_index(a->blocks, struct shmheap_block, i);
    const struct shmheap_block *y =
        &g_array_index(b->blocks, struct shmheap_block, i);
    g_assert_cmpuint(x->offset, ==, y->offset);
    g_assert_cmpuint(x->size, ==, y->size);
    g_assert_cmpint(x->used, ==, y->used);
  }
}

/* Asserts the heap's consistency by every public means: check, and a walk
 * whose blocks tile [SHH_FIRST, len) with no two free neighbours and agree with
 * stats. */
void assert_sane(const struct heap *h) {
  g_assert_cmpint(shmheap_check(h->mem), ==, 0);
  struct snapshot s;
  snap_take(h, &s);
  uint64_t at = SHH_FIRST, used = 0, freeb = 0, nused = 0, nfree = 0,
           largest = 0;
  int prev_free = 0;
  for (guint i = 0; i < s.blocks->len; i++) {
    const struct shmheap_block *b =
        &g_array_index(s.blocks, struct shmheap_block, i);
    g_assert_cmpuint(b->offset, ==, at);
    /* Multiples of 16, except the block that ends the heap (8 mod 16). */
    g_assert_cmpuint(b->size % 16, ==, b->offset + b->size == h->len ? 8 : 0);
    g_assert_cmpuint(b->size, >=, SHH_MIN_BLOCK);
    g_assert_true(b->used == 0 || b->used == 1);
    if (b->used) {
      used += b->size;
      nused++;
    } else {
      g_assert_false(prev_free);
      freeb += b->size;
      nfree++;
      if (b->size - SHH_TAG > largest)
        largest = b->size - SHH_TAG;
    }
    prev_free = !b->used;
    at += b->size;
  }
  g_assert_cmpuint(at, ==, h->len);
  g_assert_cmpuint(s.st.size, ==, h->len);
  g_assert_cmpuint(s.st.used_bytes, ==, used);
  g_assert_cmpuint(s.st.free_bytes, ==, freeb);
  g_assert_cmpuint(s.st.used_bytes + s.st.free_bytes + SHH_HEADER_SIZE, ==,
                   s.st.size);
  g_assert_cmpuint(s.st.used_blocks, ==, nused);
  g_assert_cmpuint(s.st.free_blocks, ==, nfree);
  g_assert_cmpuint(s.st.largest_free, ==, largest);
  g_assert_cmpuint(s.st.format_version, ==, SHMHEAP_FORMAT_VERSION);
  g_assert_cmpuint(s.st.reserved, ==, 0);
  snap_free(&s);
}

/* Asserts the heap is empty and fully merged: one free block, and the
 * largest request fits. */
void assert_empty(const struct heap *h) {
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(h->mem, &st), ==, 0);
  g_assert_cmpuint(st.used_blocks, ==, 0);
  g_assert_cmpuint(st.free_blocks, ==, 1);
  g_assert_cmpuint(st.free_bytes, ==, h->len - SHH_HEADER_SIZE);
  g_assert_cmpuint(st.largest_free, ==, h->len - SHMHEAP_OVERHEAD);
  void *p = shmheap_alloc(h->mem, h->len - SHMHEAP_OVERHEAD);
  g_assert_true(p == h->base + SHMHEAP_OVERHEAD);
  shmheap_free(h->mem, p);
  g_assert_cmpint(shmheap_check(h->mem), ==, 0);
}

/* The size of the block whose user pointer is P, from a walk. */
struct find_arg {
  uint64_t off;
  uint64_t size;
  int used;
};

static int find_block(const struct shmheap_block *b, void *arg) {
  struct find_arg *f = arg;
  if (b->offset == f->off) {
    f->size = b->size;
    f->used = b->used;
    return 1;
  }
  return 0;
}

uint64_t block_size_of(const struct heap *h, const void *p) {
  struct find_arg f = {off_of(h, p) - SHH_TAG, 0, -1};
  g_assert_cmpint(shmheap_walk(h->mem, find_block, &f), ==, 1);
  g_assert_cmpint(f.used, ==, 1);
  return f.size;
}

/* Fills the heap's remaining free space with blocks (largest first), so that
 * later allocations can only land in holes the test makes. Returns them in
 * an array to free later. */
GPtrArray *fill_rest(const struct heap *h) {
  GPtrArray *a = g_ptr_array_new();
  for (;;) {
    struct shmheap_stats st;
    g_assert_cmpint(shmheap_stats(h->mem, &st), ==, 0);
    if (st.free_blocks == 0)
      break;
    void *p = shmheap_alloc(h->mem, st.largest_free);
    g_assert_nonnull(p);
    g_ptr_array_add(a, p);
  }
  return a;
}

void free_all(const struct heap *h, GPtrArray *a) {
  for (guint i = 0; i < a->len; i++)
    shmheap_free(h->mem, a->pdata[i]);
  g_ptr_array_free(a, TRUE);
}

int count_cb(const struct shmheap_block *b, void *arg) {
  (void)b;
  (*(int *)arg)++;
  return 0;
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  api_lifecycle_cases();
  api_blocks_cases();
  api_resize_cases();
  return g_test_run();
}

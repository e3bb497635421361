/* api-resize.c: the api cases of calloc, realloc in every direction, the
 * per-block overhead, stats and walk, and two heaps side by side. */
#include <limits.h>
#include <shmheap.h>
#include <stdlib.h>

#include "api.h"
#include "layout.h"

/* ------------------------------------------------------------------------ */
/* calloc                                                                    */

static void test_calloc(void) {
  struct heap h;
  heap_open(&h, 1 << 20);
  /* Dirty everything, tags included (many small blocks, then free). */
  GPtrArray *a = g_ptr_array_new();
  void *p;
  while ((p = shmheap_alloc(h.mem, 200)) != NULL) {
    memset(p, 0xa5, 200);
    g_ptr_array_add(a, p);
  }
  free_all(&h, a);
  assert_empty(&h);

  const size_t shapes[][2] = {{1, 1},    {3, 7},     {100, 10}, {1, 5000},
                              {4096, 8}, {7, 12345}, {1, 40},   {40, 1}};
  GPtrArray *live = g_ptr_array_new();
  for (size_t i = 0; i < G_N_ELEMENTS(shapes); i++) {
    size_t n = shapes[i][0], sz = shapes[i][1];
    unsigned char *q = shmheap_calloc(h.mem, n, sz);
    g_assert_nonnull(q);
    g_assert_cmpuint((uintptr_t)q % SHMHEAP_ALIGNMENT, ==, 0);
    size_t us = shmheap_usable_size(h.mem, q);
    g_assert_cmpuint(us, >=, n * sz);
    for (size_t k = 0; k < n * sz; k++)
      if (q[k] != 0)
        g_error("calloc(%zu, %zu): byte %zu is 0x%02x", n, sz, k, q[k]);
    memset(q, 0xa5, us);
    g_ptr_array_add(live, q);
  }
  free_all(&h, live);

  /* Whole heap: the freed, dirty tags must be zeroed too. */
  unsigned char *w = shmheap_calloc(h.mem, 1, h.len - SHMHEAP_OVERHEAD);
  g_assert_nonnull(w);
  for (size_t k = 0; k < h.len - SHMHEAP_OVERHEAD; k++)
    if (w[k] != 0)
      g_error("calloc(whole heap): byte %zu is 0x%02x", k, w[k]);
  shmheap_free(h.mem, w);

  /* Zero elements or zero size: a unique freeable pointer. */
  void *z1 = shmheap_calloc(h.mem, 0, 10);
  void *z2 = shmheap_calloc(h.mem, 10, 0);
  g_assert_nonnull(z1);
  g_assert_nonnull(z2);
  g_assert_true(z1 != z2);
  shmheap_free(h.mem, z1);
  shmheap_free(h.mem, z2);

  /* Overflowing products: ENOMEM, heap unchanged. */
  struct snapshot before, after;
  snap_take(&h, &before);
  const size_t ovf[][2] = {{SIZE_MAX, 2},
                           {2, SIZE_MAX},
                           {SIZE_MAX / 2 + 1, 2},
                           {(size_t)1 << 32, (size_t)1 << 32},
                           {SIZE_MAX, SIZE_MAX},
                           {((size_t)1 << 63) + 1, 2},
                           {(size_t)1 << 33, (size_t)1 << 31}};
  for (size_t i = 0; i < G_N_ELEMENTS(ovf); i++) {
    errno = 0;
    g_assert_null(shmheap_calloc(h.mem, ovf[i][0], ovf[i][1]));
    g_assert_cmpint(errno, ==, ENOMEM);
  }
  /* A product that wraps to a small number must not succeed. */
  errno = 0;
  g_assert_null(shmheap_calloc(h.mem, ((size_t)1 << 63) + 8, 2)); /* = 16 */
  g_assert_cmpint(errno, ==, ENOMEM);
  snap_take(&h, &after);
  snap_assert_equal(&before, &after);
  snap_free(&before);
  snap_free(&after);
  assert_empty(&h);
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* realloc                                                                   */

static void test_realloc_null(void) {
  struct heap h;
  heap_open(&h, 65536);
  char *p = shmheap_realloc(h.mem, NULL, 100);
  g_assert_nonnull(p);
  g_assert_true(p == h.base + SHMHEAP_OVERHEAD);
  g_assert_cmpuint(block_size_of(&h, p), ==, carve_for(100));
  shmheap_free(h.mem, p);
  errno = 0;
  g_assert_null(shmheap_realloc(h.mem, NULL, h.len));
  g_assert_cmpint(errno, ==, ENOMEM);
  assert_empty(&h);
  heap_close(&h);
}

/* Shrinks the heap-wide block step by step down to the minimum; returns it,
 * still allocated. */
static char *shrink_whole_block(const struct heap *h) {
  const size_t whole = h->len - SHMHEAP_OVERHEAD;
  char *p = shmheap_alloc(h->mem, whole);
  g_assert_true(p == h->base + SHMHEAP_OVERHEAD);
  th_fill(p, whole, 5, 80);

  /* Shrink: same pointer, contents kept, tail is a free block. */
  char *q = shmheap_realloc(h->mem, p, 1000);
  g_assert_true(q == p);
  g_assert_cmpuint(block_size_of(h, p), ==, carve_for(1000));
  g_assert_cmpint(th_check_fill(p, 1000, 5, 80), ==, -1);
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(h->mem, &st), ==, 0);
  g_assert_cmpuint(st.used_bytes, ==, carve_for(1000));
  g_assert_cmpuint(st.free_blocks, ==, 1);
  g_assert_cmpuint(st.largest_free, ==,
                   h->len - SHH_FIRST - carve_for(1000) - SHH_TAG);
  assert_sane(h);
  /* The tail is reusable: all of it, right after the block. */
  char *t = shmheap_alloc(h->mem, st.largest_free);
  g_assert_true(t == p + carve_for(1000));
  shmheap_free(h->mem, t);

  /* Shrinking further merges the new tail with the free block after it. */
  q = shmheap_realloc(h->mem, p, 100);
  g_assert_true(q == p);
  g_assert_cmpint(th_check_fill(p, 100, 5, 80), ==, -1);
  g_assert_cmpint(shmheap_stats(h->mem, &st), ==, 0);
  g_assert_cmpuint(st.used_bytes, ==, carve_for(100));
  g_assert_cmpuint(st.free_blocks, ==, 1);
  assert_sane(h);

  /* Leftover < 48 stays in the block: 112 -> need 96 leaves 16. */
  q = shmheap_realloc(h->mem, p, 80);
  g_assert_true(q == p);
  g_assert_cmpuint(block_size_of(h, p), ==, carve_for(100));
  g_assert_cmpint(th_check_fill(p, 80, 5, 80), ==, -1);

  /* realloc(p, 0) shrinks to the minimum block and keeps it. */
  q = shmheap_realloc(h->mem, p, 0);
  g_assert_true(q == p);
  g_assert_cmpuint(block_size_of(h, p), ==, SHH_MIN_BLOCK);
  g_assert_cmpint(th_check_fill(p, 40, 5, 80), ==, -1);
  g_assert_cmpint(shmheap_stats(h->mem, &st), ==, 0);
  g_assert_cmpuint(st.used_blocks, ==, 1);
  assert_sane(h);

  return p;
}

/* Shrinks a block that has a live block after it. P is a live block,
 * freed first. */
static void shrink_before_live(const struct heap *h, char *p) {
  char *q;
  struct shmheap_stats st;
  /* A shrink whose tail has a live block after it: tail becomes a new free
   * block of its own. */
  shmheap_free(h->mem, p);
  p = shmheap_alloc(h->mem, 1000);
  char *next = shmheap_alloc(h->mem, 1000);
  g_assert_true(next == p + carve_for(1000));
  th_fill(p, 1000, 6, off_of(h, p));
  q = shmheap_realloc(h->mem, p, 500);
  g_assert_true(q == p);
  g_assert_cmpint(th_check_fill(p, 500, 6, off_of(h, p)), ==, -1);
  g_assert_cmpuint(block_size_of(h, p), ==, carve_for(500));
  g_assert_cmpint(shmheap_stats(h->mem, &st), ==, 0);
  g_assert_cmpuint(st.free_blocks, ==, 2);
  g_assert_cmpuint(st.used_bytes, ==, carve_for(500) + carve_for(1000));
  assert_sane(h);
  /* A tail of exactly 48 bytes is split off (and merges with the free tail
   * after it); one of 16 is not. */
  q = shmheap_realloc(h->mem, p, 456); /* carve 464 of 512 */
  g_assert_true(q == p);
  g_assert_cmpuint(block_size_of(h, p), ==, 464);
  g_assert_cmpint(shmheap_stats(h->mem, &st), ==, 0);
  g_assert_cmpuint(st.free_blocks, ==, 2);
  g_assert_cmpuint(st.used_bytes, ==, 464 + carve_for(1000));
  q = shmheap_realloc(h->mem, p, 440); /* carve 448 of 464 */
  g_assert_true(q == p);
  g_assert_cmpuint(block_size_of(h, p), ==, 464);
  g_assert_cmpint(th_check_fill(p, 440, 6, off_of(h, p)), ==, -1);
  assert_sane(h);
  shmheap_free(h->mem, p);
  shmheap_free(h->mem, next);
}

static void test_realloc_shrink(void) {
  struct heap h;
  heap_open(&h, 1 << 16);
  char *p = shrink_whole_block(&h);
  shrink_before_live(&h, p);
  assert_empty(&h);
  heap_close(&h);
}

static void test_realloc_grow_in_place(void) {
  struct heap h;
  heap_open(&h, 1 << 16);
  const size_t whole = h.len - SHMHEAP_OVERHEAD;
  char *p = shmheap_alloc(h.mem, whole);
  g_assert_nonnull(p);
  g_assert_true(shmheap_realloc(h.mem, p, 100) == p);
  th_fill(p, 100, 9, 80);

  /* The next block is free and large: grow into its head. */
  char *q = shmheap_realloc(h.mem, p, 3000);
  g_assert_true(q == p);
  g_assert_cmpuint(block_size_of(&h, p), ==, carve_for(3000));
  g_assert_cmpint(th_check_fill(p, 100, 9, 80), ==, -1);
  assert_sane(&h);
  th_fill(p, 3000, 10, 80);

  /* Grow so that the remainder would be < 48: the whole next block. */
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(h.mem, &st), ==, 0);
  size_t nearly = whole - 40; /* need len - 112: 40 bytes would remain */
  q = shmheap_realloc(h.mem, p, nearly);
  g_assert_true(q == p);
  g_assert_cmpuint(block_size_of(&h, p), ==, h.len - SHH_FIRST);
  g_assert_cmpint(th_check_fill(p, 3000, 10, 80), ==, -1);
  g_assert_cmpint(shmheap_stats(h.mem, &st), ==, 0);
  g_assert_cmpuint(st.free_blocks, ==, 0);
  assert_sane(&h);

  /* Back down, then grow to exactly the whole heap (the rest would be
   * negative: 48 + (len - 120) holds len - 80 but carve is len - 64). */
  g_assert_true(shmheap_realloc(h.mem, p, 10) == p);
  g_assert_cmpuint(block_size_of(&h, p), ==, SHH_MIN_BLOCK);
  q = shmheap_realloc(h.mem, p, whole);
  g_assert_true(q == p);
  g_assert_cmpint(th_check_fill(p, 10, 10, 80), ==, -1);
  errno = 0;
  g_assert_null(shmheap_realloc(h.mem, p, whole + 1));
  g_assert_cmpint(errno, ==, ENOMEM);
  g_assert_cmpuint(block_size_of(&h, p), ==, h.len - SHH_FIRST);
  shmheap_free(h.mem, p);
  assert_empty(&h);

  /* Head carving leaves the rest right after a fresh block: it grows in
   * place, again and again. */
  p = shmheap_alloc(h.mem, 100);
  th_fill(p, 100, 15, 80);
  for (size_t sz = 200; sz < 60000; sz = sz * 2 + 1) {
    q = shmheap_realloc(h.mem, p, sz);
    g_assert_true(q == p);
    g_assert_cmpuint(block_size_of(&h, p), ==, carve_for(sz));
    g_assert_cmpint(th_check_fill(p, 100, 15, 80), ==, -1);
  }
  shmheap_free(h.mem, p);
  assert_empty(&h);
  heap_close(&h);
}

static void test_realloc_move(void) {
  struct heap h;
  heap_open(&h, 1 << 16);
  char *p = shmheap_alloc(h.mem, 300);
  char *next = shmheap_alloc(h.mem, 100);
  g_assert_true(p == h.base + SHMHEAP_OVERHEAD);
  g_assert_true(next == p + carve_for(300));
  th_fill(p, 300, 12, off_of(&h, p));

  /* The next block is live: allocate (first fit, the old block still
   * allocated), copy, free. The new block is the head of the free rest,
   * right after NEXT. */
  char *q = shmheap_realloc(h.mem, p, 2000);
  g_assert_nonnull(q);
  g_assert_true(q == next + carve_for(100));
  g_assert_cmpint(th_check_fill(q, 300, 12, 80), ==, -1);
  errno = 0;
  g_assert_cmpuint(shmheap_usable_size(h.mem, p), ==, 0); /* old is freed */
  g_assert_cmpint(errno, ==, EINVAL);
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(h.mem, &st), ==, 0);
  g_assert_cmpuint(st.used_blocks, ==, 2);
  g_assert_cmpuint(st.used_bytes, ==, carve_for(100) + carve_for(2000));
  g_assert_cmpuint(st.free_blocks, ==, 2);
  assert_sane(&h);

  /* The next block is free but too small: it moves. Fill p's old hole,
   * then put a 112-byte hole after q, held in place by a live block g2. */
  char *filler = shmheap_alloc(h.mem, 300);
  g_assert_true(filler == p);
  char *g1 = shmheap_alloc(h.mem, 100);
  char *g2 = shmheap_alloc(h.mem, 100);
  g_assert_true(g1 == q + carve_for(2000));
  g_assert_true(g2 == g1 + carve_for(100));
  shmheap_free(h.mem, g1);
  th_fill(q, 2000, 13, off_of(&h, q));
  /* 2016 + 112 - 8 = 2120 bytes fit in place; 2121 do not, so the new
   * block is carved after g2. */
  char *r = shmheap_realloc(h.mem, q, 2121);
  g_assert_true(r == g2 + carve_for(100));
  g_assert_cmpint(th_check_fill(r, 2000, 13, off_of(&h, q)), ==, -1);
  assert_sane(&h);
  shmheap_free(h.mem, filler);
  shmheap_free(h.mem, r);
  shmheap_free(h.mem, next);
  shmheap_free(h.mem, g2);
  assert_empty(&h);

  /* The in-place limit on a fresh layout: 2120 bytes fit exactly, the
   * whole 112-byte neighbour is taken (the rest would be 0). */
  q = shmheap_alloc(h.mem, 2000);
  g1 = shmheap_alloc(h.mem, 100);
  g2 = shmheap_alloc(h.mem, 100);
  shmheap_free(h.mem, g1);
  /* Growing with a rest of exactly 48 splits: 2016 + 112 = 2128 = 2080 +
   * 48. */
  r = shmheap_realloc(h.mem, q, 2072);
  g_assert_true(r == q);
  g_assert_cmpuint(block_size_of(&h, q), ==, 2080);
  g_assert_cmpint(shmheap_stats(h.mem, &st), ==, 0);
  g_assert_cmpuint(st.free_blocks, ==, 2);
  assert_sane(&h);
  r = shmheap_realloc(h.mem, q, 2120); /* exactly S + Snext - 8 */
  g_assert_true(r == q);
  g_assert_cmpuint(block_size_of(&h, q), ==, carve_for(2000) + 112);
  shmheap_free(h.mem, q);
  shmheap_free(h.mem, g2);
  assert_empty(&h);
  heap_close(&h);
}

/* A realloc that cannot be satisfied leaves the block intact and live. */
static void test_realloc_fail(void) {
  struct heap h;
  heap_open(&h, 1 << 16);
  char *a = shmheap_alloc(h.mem, 20000);
  char *p = shmheap_alloc(h.mem, 1000);
  char *b = shmheap_alloc(h.mem, 20000);
  g_assert_nonnull(a);
  g_assert_nonnull(p);
  g_assert_nonnull(b);
  th_fill(p, 1000, 14, off_of(&h, p));
  struct snapshot before, after;
  snap_take(&h, &before);
  const size_t big[] = {30000,        h.len - SHMHEAP_OVERHEAD,
                        h.len,        SIZE_MAX,
                        SIZE_MAX - 7, SIZE_MAX / 2};
  for (size_t i = 0; i < G_N_ELEMENTS(big); i++) {
    errno = 0;
    g_assert_null(shmheap_realloc(h.mem, p, big[i]));
    g_assert_cmpint(errno, ==, ENOMEM);
    snap_take(&h, &after);
    snap_assert_equal(&before, &after);
    snap_free(&after);
    g_assert_cmpint(th_check_fill(p, 1000, 14, off_of(&h, p)), ==, -1);
    g_assert_cmpuint(shmheap_usable_size(h.mem, p), >=, 1000);
  }
  snap_free(&before);
  shmheap_free(h.mem, a);
  shmheap_free(h.mem, p);
  shmheap_free(h.mem, b);
  assert_empty(&h);
  heap_close(&h);
}

static void test_realloc_bad(void) {
  struct heap h;
  heap_open(&h, 1 << 16);
  char *a = shmheap_alloc(h.mem, 200);
  char *f = shmheap_alloc(h.mem, 200);
  char *c = shmheap_alloc(h.mem, 200);
  shmheap_free(h.mem, f);
  int stack_var;
  void *bad[] = {
      a + 1,          a + 16,    a + 8, f, h.base, c + carve_for(200),
      h.base + h.len, &stack_var};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    struct snapshot before, after;
    snap_take(&h, &before);
    errno = 0;
    g_assert_null(shmheap_realloc(h.mem, bad[i], 100));
    g_assert_cmpint(errno, ==, EINVAL);
    errno = 0;
    g_assert_null(shmheap_realloc(h.mem, bad[i], 0));
    g_assert_cmpint(errno, ==, EINVAL);
    errno = 0;
    g_assert_cmpuint(shmheap_usable_size(h.mem, bad[i]), ==, 0);
    g_assert_cmpint(errno, ==, EINVAL);
    snap_take(&h, &after);
    snap_assert_equal(&before, &after);
    snap_free(&before);
    snap_free(&after);
  }
  errno = 0;
  g_assert_cmpuint(shmheap_usable_size(h.mem, NULL), ==, 0);
  g_assert_cmpint(errno, ==, EINVAL);
  shmheap_free(h.mem, a);
  shmheap_free(h.mem, c);
  assert_empty(&h);
  heap_close(&h);
}

/* Random reallocs keep contents (checked by pattern) and the heap sane. */
static void test_realloc_random(void) {
  struct heap h;
  heap_open(&h, 1 << 20);
  enum { N = 64 };
  char *p[N] = {0};
  size_t sz[N] = {0};
  uint64_t rng = 77;
  g_test_message("realloc random seed 77");
  for (int step = 0; step < 4000; step++) {
    int i = (int)th_rand_below(&rng, N);
    size_t ns =
        (size_t)(th_rand_below(&rng, 4) == 0 ? th_rand_below(&rng, 20000)
                                             : th_rand_below(&rng, 300));
    if (p[i])
      g_assert_cmpint(th_check_fill(p[i], sz[i], (uint64_t)i, sz[i]), ==, -1);
    char *q = shmheap_realloc(h.mem, p[i], ns);
    if (!q) {
      g_assert_cmpint(errno, ==, ENOMEM);
      continue;
    }
    size_t keep = sz[i] < ns ? sz[i] : ns;
    if (p[i])
      g_assert_cmpint(th_check_fill(q, keep, (uint64_t)i, sz[i]), ==, -1);
    p[i] = q;
    sz[i] = ns;
    g_assert_cmpuint(shmheap_usable_size(h.mem, q), >=, ns);
    th_fill(q, ns, (uint64_t)i, ns);
    if (step % 500 == 0)
      assert_sane(&h);
  }
  for (int i = 0; i < N; i++) {
    if (p[i])
      g_assert_cmpint(th_check_fill(p[i], sz[i], (uint64_t)i, sz[i]), ==, -1);
    shmheap_free(h.mem, p[i]);
  }
  assert_empty(&h);
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* usable size, overhead, stats, walk                                        */

/* Measures the per-block overhead: block size - request, and block size -
 * usable size (the tag). */
static void test_overhead(void) {
  struct heap h;
  heap_open(&h, 1 << 20);
  uint64_t tag_min = UINT64_MAX, tag_max = 0;
  uint64_t ovh_max_ge40 = 0, ovh_sum = 0, n = 0;
  for (size_t sz = 1; sz <= 4096; sz++) {
    void *p = shmheap_alloc(h.mem, sz);
    g_assert_nonnull(p);
    uint64_t bs = block_size_of(&h, p);
    size_t us = shmheap_usable_size(h.mem, p);
    g_assert_cmpuint(us, >=, sz);
    g_assert_cmpuint(bs, ==, carve_for(sz));
    uint64_t tag = bs - us;
    tag_min = MIN(tag_min, tag);
    tag_max = MAX(tag_max, tag);
    if (sz >= 40) {
      ovh_max_ge40 = MAX(ovh_max_ge40, bs - sz);
      ovh_sum += bs - sz;
      n++;
    }
    shmheap_free(h.mem, p);
  }
  /* The promised limit: at most 16 bytes beyond the 16-byte-rounded
   * request (8 is the target: the tag). */
  g_assert_cmpuint(tag_min, ==, 8);
  g_assert_cmpuint(tag_max, ==, 8);
  g_assert_cmpuint(ovh_max_ge40, <=, 8 + 15);
  g_test_message("per-block overhead: tag %" G_GUINT64_FORMAT
                 " bytes (block size - usable size) for every size 1..4096; "
                 "block size - request for sizes 40..4096: mean %.2f, max "
                 "%" G_GUINT64_FORMAT
                 " (tag + padding to 16); minimum block %d "
                 "(requests 0..40); alignment %d",
                 tag_max, (double)ovh_sum / (double)n, ovh_max_ge40,
                 SHH_MIN_BLOCK, SHMHEAP_ALIGNMENT);
  assert_empty(&h);
  heap_close(&h);
}

static int stop_at_third(const struct shmheap_block *b, void *arg) {
  (void)b;
  return ++*(int *)arg == 3 ? 42 : 0;
}

static void test_stats_walk(void) {
  struct heap h;
  heap_open(&h, 1 << 20);
  uint64_t rng = 99;
  GPtrArray *live = g_ptr_array_new();
  for (int step = 0; step < 3000; step++) {
    if (live->len > 0 && th_rand_below(&rng, 3) == 0) {
      guint i = (guint)th_rand_below(&rng, live->len);
      shmheap_free(h.mem, g_ptr_array_steal_index_fast(live, i));
    } else {
      void *p = shmheap_alloc(h.mem, (size_t)th_rand_below(&rng, 1500));
      if (p)
        g_ptr_array_add(live, p);
    }
    if (step % 300 == 0) {
      assert_sane(&h);
      /* largest_free is exact: it fits, one more byte does not. */
      struct shmheap_stats st;
      g_assert_cmpint(shmheap_stats(h.mem, &st), ==, 0);
      g_assert_cmpuint(st.used_blocks, ==, live->len);
      if (st.free_blocks > 0) {
        errno = 0;
        g_assert_null(shmheap_alloc(h.mem, st.largest_free + 1));
        g_assert_cmpint(errno, ==, ENOMEM);
        void *p = shmheap_alloc(h.mem, st.largest_free);
        g_assert_nonnull(p);
        shmheap_free(h.mem, p);
      }
    }
  }
  int count = 0;
  g_assert_cmpint(shmheap_walk(h.mem, count_cb, &count), ==, 0);
  g_assert_cmpint(count, >=, 3);
  count = 0;
  g_assert_cmpint(shmheap_walk(h.mem, stop_at_third, &count), ==, 42);
  g_assert_cmpint(count, ==, 3);
  free_all(&h, live);
  assert_empty(&h);
  heap_close(&h);
}

/* Two heaps in one process are independent. */
static void test_two_heaps(void) {
  struct heap a, b;
  heap_open(&a, 65536);
  heap_open(&b, 1 << 20);
  void *pa = shmheap_alloc(a.mem, 1000);
  void *pb = shmheap_alloc(b.mem, 1000);
  g_assert_nonnull(pa);
  g_assert_nonnull(pb);
  g_assert_cmpuint(off_of(&a, pa), ==, SHMHEAP_OVERHEAD);
  g_assert_cmpuint(off_of(&b, pb), ==, SHMHEAP_OVERHEAD);
  g_assert_cmpuint(shmheap_ptr_to_handle(a.mem, pb), ==, SHMHEAP_NULL_HANDLE);
  shmheap_free(a.mem, pa);
  assert_empty(&a);
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(b.mem, &st), ==, 0);
  g_assert_cmpuint(st.used_blocks, ==, 1);
  shmheap_free(b.mem, pb);
  heap_close(&a);
  heap_close(&b);
}

void api_resize_cases(void) {
  th_add_func("/api/calloc", test_calloc);
  th_add_func("/api/realloc/null", test_realloc_null);
  th_add_func("/api/realloc/shrink", test_realloc_shrink);
  th_add_func("/api/realloc/grow-in-place", test_realloc_grow_in_place);
  th_add_func("/api/realloc/move", test_realloc_move);
  th_add_func("/api/realloc/fail", test_realloc_fail);
  th_add_func("/api/realloc/bad", test_realloc_bad);
  th_add_func("/api/realloc/random", test_realloc_random);
  th_add_func("/api/overhead", test_overhead);
  th_add_func("/api/stats-walk", test_stats_walk);
  th_add_func("/api/two-heaps", test_two_heaps);
}

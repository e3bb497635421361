/* api-blocks.c: the api cases of alloc and free: alignment, the whole heap,
 * absurd sizes, first-fit placement and its exact offsets, refused bad pointers
 * with the heap unchanged, merging, and handles. */
#include <limits.h>
#include <shmheap.h>
#include <stdlib.h>

#include "api.h"
#include "layout.h"

/* ------------------------------------------------------------------------ */
/* alloc                                                                     */

/* Every size from 0 to 4100 and a spread of larger ones: 16-byte aligned,
 * exact block size, usable_size >= request, whole usable area writable. */
static void test_alloc_alignment(void) {
  struct heap h;
  heap_open(&h, 16 << 20);
  GPtrArray *keep = g_ptr_array_new();
  size_t sizes[4200];
  size_t n = 0;
  for (size_t s = 0; s <= 4100; s++)
    sizes[n++] = s;
  for (size_t s = 4101; s < (8 << 20); s = s * 3 / 2 + 7)
    sizes[n++] = s;
  for (size_t i = 0; i < n; i++) {
    size_t sz = sizes[i];
    char *p = shmheap_alloc(h.mem, sz);
    g_assert_nonnull(p);
    g_assert_cmpuint((uintptr_t)p % SHMHEAP_ALIGNMENT, ==, 0);
    size_t us = shmheap_usable_size(h.mem, p);
    g_assert_cmpuint(us, >=, sz);
    memset(p, 0x5a, us);
    if (i % 7 == 0 && sz < 100000)
      g_ptr_array_add(keep, p);
    else
      shmheap_free(h.mem, p);
  }
  assert_sane(&h);
  free_all(&h, keep);
  assert_empty(&h);
  g_test_message("alignment: %zu sizes from 0 to %zu, all %d-byte aligned", n,
                 sizes[n - 1], SHMHEAP_ALIGNMENT);
  heap_close(&h);
}

/* On an empty heap alloc(len - SHMHEAP_OVERHEAD) succeeds (at base +
 * SHMHEAP_OVERHEAD) and one byte more fails with ENOMEM, for several heap
 * sizes. */
static void test_alloc_whole(void) {
  const size_t lens[] = {page_size(), 65536, 1 << 20, 3 * page_size()};
  for (size_t i = 0; i < G_N_ELEMENTS(lens); i++) {
    struct heap h;
    heap_open(&h, lens[i]);
    struct snapshot before, after;
    snap_take(&h, &before);
    errno = 0;
    g_assert_null(shmheap_alloc(h.mem, h.len - SHMHEAP_OVERHEAD + 1));
    g_assert_cmpint(errno, ==, ENOMEM);
    snap_take(&h, &after);
    snap_assert_equal(&before, &after);
    snap_free(&after);

    char *p = shmheap_alloc(h.mem, h.len - SHMHEAP_OVERHEAD);
    g_assert_true(p == h.base + SHMHEAP_OVERHEAD);
    g_assert_cmpuint(shmheap_usable_size(h.mem, p), ==,
                     h.len - SHMHEAP_OVERHEAD);
    memset(p, 0xee, h.len - SHMHEAP_OVERHEAD);
    /* The heap is full: even alloc(0) fails. */
    errno = 0;
    g_assert_null(shmheap_alloc(h.mem, 0));
    g_assert_cmpint(errno, ==, ENOMEM);
    assert_sane(&h);
    shmheap_free(h.mem, p);
    snap_take(&h, &after);
    snap_assert_equal(&before, &after);
    snap_free(&after);
    snap_free(&before);
    heap_close(&h);
  }
}

/* Sizes whose arithmetic would overflow, or larger than the heap: ENOMEM,
 * heap unchanged. */
static void test_alloc_absurd(void) {
  struct heap h;
  heap_open(&h, 1 << 20);
  char *live = shmheap_alloc(h.mem, 1000);
  g_assert_nonnull(live);
  struct snapshot before, after;
  snap_take(&h, &before);
  const size_t bad[] = {
      SIZE_MAX,        SIZE_MAX - 1,  SIZE_MAX - 7,
      SIZE_MAX - 8,    SIZE_MAX - 15, SIZE_MAX - 16,
      SIZE_MAX - 63,   SIZE_MAX / 2,  SIZE_MAX / 2 + 1,
      (size_t)1 << 48, h.len,         h.len - SHMHEAP_OVERHEAD + 1,
      h.len - 1000};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    errno = 0;
    g_assert_null(shmheap_alloc(h.mem, bad[i]));
    g_assert_cmpint(errno, ==, ENOMEM);
    errno = 0;
    g_assert_null(shmheap_calloc(h.mem, 1, bad[i]));
    g_assert_cmpint(errno, ==, ENOMEM);
  }
  snap_take(&h, &after);
  snap_assert_equal(&before, &after);
  snap_free(&after);
  snap_free(&before);
  shmheap_free(h.mem, live);
  assert_empty(&h);
  heap_close(&h);
}

/* alloc(0) returns distinct, freeable pointers. */
static void test_alloc_zero(void) {
  struct heap h;
  heap_open(&h, 65536);
  void *p[100];
  for (int i = 0; i < 100; i++) {
    p[i] = shmheap_alloc(h.mem, 0);
    g_assert_nonnull(p[i]);
    g_assert_cmpuint((uintptr_t)p[i] % SHMHEAP_ALIGNMENT, ==, 0);
    for (int j = 0; j < i; j++)
      g_assert_true(p[i] != p[j]);
    g_assert_cmpuint(block_size_of(&h, p[i]), ==, SHH_MIN_BLOCK);
  }
  assert_sane(&h);
  for (int i = 0; i < 100; i += 2)
    shmheap_free(h.mem, p[i]);
  for (int i = 1; i < 100; i += 2)
    shmheap_free(h.mem, p[i]);
  assert_empty(&h);
  heap_close(&h);
}

/* The exact placement rule on an empty heap: the request is carved from the
 * head of the one free block, so blocks follow each other upwards from 72. */
static void test_alloc_placement(void) {
  struct heap h;
  heap_open(&h, 1 << 20);
  uint64_t at = SHH_FIRST;
  const size_t sizes[] = {1, 8, 24, 40, 41, 56, 57, 100, 1000, 4096, 65536};
  void *p[G_N_ELEMENTS(sizes)];
  for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
    p[i] = shmheap_alloc(h.mem, sizes[i]);
    g_assert_nonnull(p[i]);
    g_assert_cmpuint(off_of(&h, p[i]), ==, at + SHH_TAG);
    g_assert_cmpuint(block_size_of(&h, p[i]), ==, carve_for(sizes[i]));
    g_assert_cmpuint(shmheap_usable_size(h.mem, p[i]), ==,
                     carve_for(sizes[i]) - SHH_TAG);
    at += carve_for(sizes[i]);
  }
  assert_sane(&h);
  for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++)
    shmheap_free(h.mem, p[i]);
  assert_empty(&h);
  heap_close(&h);
}

/* First fit picks the lowest-addressed hole that fits, carves the request
 * from its head when the rest is >= 48 bytes, hands it out whole otherwise. */
static void test_alloc_first_fit(void) {
  struct heap h;
  heap_open(&h, 65536);
  /* Ten 112-byte blocks from 72 upwards. */
  char *b[10];
  for (int i = 0; i < 10; i++) {
    b[i] = shmheap_alloc(h.mem, 100);
    g_assert_nonnull(b[i]);
    g_assert_true(b[i] == h.base + SHMHEAP_OVERHEAD + 112 * i);
  }
  GPtrArray *rest = fill_rest(&h);
  errno = 0;
  g_assert_null(shmheap_alloc(h.mem, 0));
  g_assert_cmpint(errno, ==, ENOMEM);

  /* Holes: b[7] (112 bytes) and b[3] (112 bytes, lower address). */
  shmheap_free(h.mem, b[7]);
  shmheap_free(h.mem, b[3]);
  void *x = shmheap_alloc(h.mem, 100);
  g_assert_true(x == b[3]);
  void *y = shmheap_alloc(h.mem, 100);
  g_assert_true(y == b[7]);
  errno = 0;
  g_assert_null(shmheap_alloc(h.mem, 1));
  g_assert_cmpint(errno, ==, ENOMEM);

  /* Holes: b[1] (112, lowest), b[5]+b[6] merged (224), b[8] (112). */
  shmheap_free(h.mem, b[8]);
  shmheap_free(h.mem, b[6]);
  shmheap_free(h.mem, b[5]);
  shmheap_free(h.mem, b[1]);
  assert_sane(&h);
  /* A request too big for the lowest hole goes to the next that fits:
   * 150 bytes (carve 160) from the 224-byte hole, 64 left: head carve. */
  char *big = shmheap_alloc(h.mem, 150);
  g_assert_true(big == b[5]);
  /* 50 bytes (carve 64) in b[1]'s hole: 112 - 64 = 48 left, split. */
  char *s1 = shmheap_alloc(h.mem, 50);
  g_assert_true(s1 == b[1]);
  /* The 48-byte rest of b[1] is now the lowest hole: alloc(40) takes it
   * whole; the next one goes to the 64-byte rest of the 224 (16 would be
   * left: whole, usable 56); 100 bytes then only fit in b[8]. */
  char *s2 = shmheap_alloc(h.mem, 40);
  g_assert_true(s2 == b[1] + 64);
  char *s3 = shmheap_alloc(h.mem, 40);
  g_assert_true(s3 == b[5] + 160);
  g_assert_cmpuint(shmheap_usable_size(h.mem, s3), ==, 64 - SHH_TAG);
  /* The exact fit rule: a 112-byte block holds 104 bytes, not 105. */
  errno = 0;
  g_assert_null(shmheap_alloc(h.mem, 105));
  g_assert_cmpint(errno, ==, ENOMEM);
  char *s4 = shmheap_alloc(h.mem, 104);
  g_assert_true(s4 == b[8]);
  errno = 0;
  g_assert_null(shmheap_alloc(h.mem, 0));
  g_assert_cmpint(errno, ==, ENOMEM);
  assert_sane(&h);

  void *all[] = {x, y, big, s1, s2, s3, s4, b[0], b[2], b[4], b[9]};
  for (size_t i = 0; i < G_N_ELEMENTS(all); i++)
    shmheap_free(h.mem, all[i]);
  free_all(&h, rest);
  assert_empty(&h);
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* free                                                                      */

/* Frees P (expected bad) and asserts errno ERR and an unchanged heap. */
static void assert_free_refused(const struct heap *h, void *p, int err) {
  struct snapshot before, after;
  snap_take(h, &before);
  errno = 0;
  shmheap_free(h->mem, p);
  g_assert_cmpint(errno, ==, err);
  snap_take(h, &after);
  snap_assert_equal(&before, &after);
  snap_free(&before);
  snap_free(&after);
  g_assert_cmpint(shmheap_check(h->mem), ==, 0);
}

static void test_free_null(void) {
  struct heap h;
  heap_open(&h, 65536);
  void *p = shmheap_alloc(h.mem, 10);
  struct snapshot before, after;
  snap_take(&h, &before);
  shmheap_free(h.mem, NULL);
  snap_take(&h, &after);
  snap_assert_equal(&before, &after);
  snap_free(&before);
  snap_free(&after);
  shmheap_free(h.mem, p);
  assert_empty(&h);
  heap_close(&h);
}

static void test_free_bad(void) {
  struct heap h;
  heap_open(&h, 1 << 16);
  char *a = shmheap_alloc(h.mem, 200);
  char *b = shmheap_alloc(h.mem, 200);
  char *c = shmheap_alloc(h.mem, 200);
  char *z = shmheap_calloc(h.mem, 1, 512);
  g_assert_nonnull(a);
  g_assert_nonnull(b);
  g_assert_nonnull(c);
  g_assert_nonnull(z);
  th_fill(a, 200, 1, off_of(&h, a));
  th_fill(c, 200, 3, off_of(&h, c));
  shmheap_free(h.mem, b); /* b: a free block between two live ones */

  int stack_var = 0;
  char *heap_var = g_malloc(64);
  /* Double free, and a free of a pointer in a free block. */
  assert_free_refused(&h, b, EINVAL);
  assert_free_refused(&h, b + 16, EINVAL);
  /* Interior and misaligned pointers into live blocks. */
  for (int d = 1; d < 200; d += (d < 20 ? 1 : 13)) {
    assert_free_refused(&h, a + d, EINVAL);
    assert_free_refused(&h, c + d, EINVAL);
  }
  /* Interior pointers into a zeroed block (the would-be tag reads 0). */
  for (int d = 16; d < 512; d += 16)
    assert_free_refused(&h, z + d, EINVAL);
  /* Pointers into the header, the first tag, past the end, elsewhere. */
  assert_free_refused(&h, h.base, EINVAL);
  assert_free_refused(&h, h.base + 8, EINVAL);
  assert_free_refused(&h, h.base + 64, EINVAL);
  assert_free_refused(&h, h.base + SHH_FIRST, EINVAL);
  assert_free_refused(&h, z + carve_for(512), EINVAL); /* the free rest */
  assert_free_refused(&h, h.base + h.len, EINVAL);
  assert_free_refused(&h, h.base + h.len + 16, EINVAL);
  assert_free_refused(&h, h.base - 16, EINVAL);
  assert_free_refused(&h, &stack_var, EINVAL);
  assert_free_refused(&h, heap_var, EINVAL);
  assert_free_refused(&h, (void *)(uintptr_t)16, EINVAL);
  assert_free_refused(&h, (void *)UINTPTR_MAX, EINVAL);
  assert_free_refused(&h, (void *)(UINTPTR_MAX - 15), EINVAL);
  g_free(heap_var);

  /* The live blocks are untouched and still free normally. */
  g_assert_cmpint(th_check_fill(a, 200, 1, off_of(&h, a)), ==, -1);
  g_assert_cmpint(th_check_fill(c, 200, 3, off_of(&h, c)), ==, -1);
  for (int i = 0; i < 512; i++)
    g_assert_cmpint(z[i], ==, 0);
  shmheap_free(h.mem, a);
  shmheap_free(h.mem, c);
  shmheap_free(h.mem, z);
  /* Double free after full merging: still refused. */
  assert_free_refused(&h, a, EINVAL);
  assert_free_refused(&h, c, EINVAL);
  assert_empty(&h);
  heap_close(&h);
}

/* A pointer from another heap is outside this one. */
static void test_free_other_heap(void) {
  struct heap h1, h2;
  heap_open(&h1, 65536);
  heap_open(&h2, 65536);
  void *p = shmheap_alloc(h2.mem, 100);
  g_assert_nonnull(p);
  void *q = shmheap_alloc(h1.mem, 100);
  g_assert_nonnull(q);
  assert_free_refused(&h1, p, EINVAL);
  errno = 0;
  g_assert_null(shmheap_realloc(h1.mem, p, 10));
  g_assert_cmpint(errno, ==, EINVAL);
  errno = 0;
  g_assert_cmpuint(shmheap_usable_size(h1.mem, p), ==, 0);
  g_assert_cmpint(errno, ==, EINVAL);
  shmheap_free(h2.mem, p);
  shmheap_free(h1.mem, q);
  assert_empty(&h1);
  assert_empty(&h2);
  heap_close(&h1);
  heap_close(&h2);
}

/* After freeing everything in any order the heap is one block again. */
static void test_free_merge(void) {
  struct heap h;
  heap_open(&h, 1 << 20);
  enum { N = 300 };
  void *p[N];
  uint64_t rng = 0x1234;
  for (int order = 0; order < 5; order++) {
    for (int i = 0; i < N; i++) {
      p[i] = shmheap_alloc(h.mem, (size_t)th_rand_below(&rng, 2000));
      g_assert_nonnull(p[i]);
    }
    int idx[N];
    for (int i = 0; i < N; i++)
      idx[i] = i;
    switch (order) {
    case 0: /* allocation order (high addresses first) */
      break;
    case 1: /* reverse */
      for (int i = 0; i < N; i++)
        idx[i] = N - 1 - i;
      break;
    case 2: /* evens then odds: every free has live neighbours, then two */
      for (int i = 0; i < N; i++)
        idx[i] = i < N / 2 ? 2 * i : 2 * (i - N / 2) + 1;
      break;
    default: /* shuffled */
      for (int i = N - 1; i > 0; i--) {
        int j = (int)th_rand_below(&rng, (uint64_t)i + 1);
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
      }
    }
    for (int i = 0; i < N; i++) {
      shmheap_free(h.mem, p[idx[i]]);
      if (i % 50 == 0)
        assert_sane(&h);
    }
    assert_empty(&h);
  }
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* handles                                                                   */

static void test_handles(void) {
  struct heap h;
  heap_open(&h, 65536);
  char *p = shmheap_alloc(h.mem, 1000);
  g_assert_nonnull(p);
  shmheap_object_handle hd = shmheap_ptr_to_handle(h.mem, p);
  g_assert_cmpuint(hd, ==, off_of(&h, p));
  g_assert_cmpuint(hd, !=, SHMHEAP_NULL_HANDLE);
  g_assert_true(shmheap_handle_to_ptr(h.mem, hd) == p);
  /* Interior pointers name fields. */
  for (int d = 0; d < 1000; d += 37) {
    shmheap_object_handle f = shmheap_ptr_to_handle(h.mem, p + d);
    g_assert_cmpuint(f, ==, hd + (uint64_t)d);
    g_assert_true(shmheap_handle_to_ptr(h.mem, f) == p + d);
  }
  /* The data area is [SHMHEAP_OVERHEAD, len). */
  g_assert_cmpuint(shmheap_ptr_to_handle(h.mem, NULL), ==, SHMHEAP_NULL_HANDLE);
  g_assert_cmpuint(shmheap_ptr_to_handle(h.mem, h.base), ==,
                   SHMHEAP_NULL_HANDLE);
  g_assert_cmpuint(shmheap_ptr_to_handle(h.mem, h.base + SHMHEAP_OVERHEAD - 1),
                   ==, SHMHEAP_NULL_HANDLE);
  g_assert_cmpuint(shmheap_ptr_to_handle(h.mem, h.base + SHMHEAP_OVERHEAD), ==,
                   SHMHEAP_OVERHEAD);
  g_assert_cmpuint(shmheap_ptr_to_handle(h.mem, h.base + h.len - 1), ==,
                   h.len - 1);
  g_assert_cmpuint(shmheap_ptr_to_handle(h.mem, h.base + h.len), ==,
                   SHMHEAP_NULL_HANDLE);
  g_assert_cmpuint(shmheap_ptr_to_handle(h.mem, h.base - 1), ==,
                   SHMHEAP_NULL_HANDLE);
  int stack_var;
  g_assert_cmpuint(shmheap_ptr_to_handle(h.mem, &stack_var), ==,
                   SHMHEAP_NULL_HANDLE);
  g_assert_cmpuint(shmheap_ptr_to_handle(h.mem, (void *)UINTPTR_MAX), ==,
                   SHMHEAP_NULL_HANDLE);

  g_assert_null(shmheap_handle_to_ptr(h.mem, SHMHEAP_NULL_HANDLE));
  const shmheap_object_handle bad[] = {1,
                                       8,
                                       SHH_FIRST,
                                       SHMHEAP_OVERHEAD - 1,
                                       h.len,
                                       h.len + 1,
                                       h.len * 2,
                                       (uint64_t)1 << 48,
                                       UINT64_MAX,
                                       UINT64_MAX - (SHMHEAP_OVERHEAD - 1),
                                       (uint64_t)INT64_MAX + 1};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
    g_assert_null(shmheap_handle_to_ptr(h.mem, bad[i]));
  g_assert_true(shmheap_handle_to_ptr(h.mem, SHMHEAP_OVERHEAD) ==
                h.base + SHMHEAP_OVERHEAD);
  g_assert_true(shmheap_handle_to_ptr(h.mem, h.len - 1) == h.base + h.len - 1);
  shmheap_free(h.mem, p);
  heap_close(&h);
}

/* Handles stored inside the heap link objects: a list built and walked by
 * handles only. */
static void test_handles_linked(void) {
  struct heap h;
  heap_open(&h, 1 << 20);
  struct node {
    shmheap_object_handle next;
    uint64_t value;
  };
  shmheap_object_handle head = SHMHEAP_NULL_HANDLE;
  for (uint64_t i = 0; i < 1000; i++) {
    struct node *n = shmheap_alloc(h.mem, sizeof *n);
    g_assert_nonnull(n);
    n->value = i;
    n->next = head;
    head = shmheap_ptr_to_handle(h.mem, n);
  }
  uint64_t expect = 1000;
  while (head != SHMHEAP_NULL_HANDLE) {
    struct node *n = shmheap_handle_to_ptr(h.mem, head);
    g_assert_nonnull(n);
    g_assert_cmpuint(n->value, ==, --expect);
    head = n->next;
    shmheap_free(h.mem, n);
  }
  g_assert_cmpuint(expect, ==, 0);
  assert_empty(&h);
  heap_close(&h);
}

void api_blocks_cases(void) {
  th_add_func("/api/alloc/alignment", test_alloc_alignment);
  th_add_func("/api/alloc/whole", test_alloc_whole);
  th_add_func("/api/alloc/absurd", test_alloc_absurd);
  th_add_func("/api/alloc/zero", test_alloc_zero);
  th_add_func("/api/alloc/placement", test_alloc_placement);
  th_add_func("/api/alloc/first-fit", test_alloc_first_fit);
  th_add_func("/api/free/null", test_free_null);
  th_add_func("/api/free/bad", test_free_bad);
  th_add_func("/api/free/other-heap", test_free_other_heap);
  th_add_func("/api/free/merge", test_free_merge);
  th_add_func("/api/handles/basic", test_handles);
  th_add_func("/api/handles/linked", test_handles_linked);
}

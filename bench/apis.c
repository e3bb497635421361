/* apis.c: the workloads of the API beyond alloc and free. names: lookups
 * per second among 10k published names, and publish+unpublish pairs per
 * second, on shmheap and on Boost's named objects; grow-step: the cost of
 * one growth step of a growable shmheap, by shmheap_grow and by an alloc
 * that must grow the heap. While the library answers ENOSYS to a call, its
 * cells stay empty with a footnote saying so: never a made-up number. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "shmheap.h"

enum {
  NAME_OBJ_BYTES = 32, /* each named object's size */
  KEY_LEN = 24,
  GROW_FIRST = 64 * 1024,       /* a growable heap's first size */
  GROW_LAST = 64 * 1024 * 1024, /* grown by doubling up to this */
  GROW_MAX = 1024 * 1024 * 1024 /* its max_len */
};

/* NAMES published keys, then NAMES more for publish+unpublish, and the
 * fixed-seed stream of keys to look up. */
static char (*name_keys)[KEY_LEN];
static uint32_t *name_picks;

void make_name_keys(void) {
  name_keys = xmalloc(2 * NAMES * sizeof *name_keys);
  for (unsigned i = 0; i < 2 * NAMES; i++)
    snprintf(name_keys[i], KEY_LEN, "%s-%05u", i < NAMES ? "obj" : "extra",
             i % NAMES);
  const size_t n = scaled(workloads[W_NAMES].steps);
  name_picks = xmalloc(n * sizeof *name_picks);
  uint64_t seed = seed_names;
  for (size_t i = 0; i < n; i++)
    name_picks[i] = stream_rand(&seed, 0, NAMES - 1);
}

static bool is_enosys(void) {
  return errno == ENOSYS;
}

static void note_missing(enum row_id r1, enum row_id r2, int ai,
                         const char *why) {
  missing_note[r1][ai] = why;
  missing_note[r2][ai] = why;
}

/* Makes the NAMES named objects into OBJS; 0, or -1 with errno. */
static int publish_all(const struct name_ops *no, void *ctx, void **objs) {
  for (int i = 0; i < NAMES; i++) {
    objs[i] = no->make(ctx, name_keys[i], NAME_OBJ_BYTES);
    if (objs[i] == NULL)
      return -1;
  }
  return 0;
}

/* Lookups of the picked keys; each must find its own object. */
static void time_lookups(int ai, int rep, void *ctx, void *const *objs) {
  const struct name_ops *no = allocs[ai]->names;
  const size_t n = scaled(workloads[W_NAMES].steps);
  size_t wrong = 0;
  const double t0 = now_ns();
  for (size_t i = 0; i < n; i++)
    wrong += no->find(ctx, name_keys[name_picks[i]]) != objs[name_picks[i]];
  const double t1 = now_ns();
  if (wrong != 0)
    fprintf(stderr, "bench: names on %s: %zu of %zu lookups wrong\n",
            allocs[ai]->name, wrong, n);
  else
    record(R_NAME_LOOKUP, ai, rep, (double)n / (t1 - t0) * 1e3, n);
}

/* Publish a fresh key and unpublish it, next to the NAMES standing ones. */
static void time_publish(int ai, int rep, void *ctx, void *const *objs) {
  const struct name_ops *no = allocs[ai]->names;
  const size_t n = scaled(workloads[W_NAMES].steps) / 2 + 1;
  int rc = 0;
  const double t0 = now_ns();
  for (size_t i = 0; i < n && rc == 0; i++) {
    const char *key = name_keys[NAMES + i % NAMES];
    rc = no->publish(ctx, key, objs[i % NAMES]);
    if (rc == 0)
      rc = no->unpublish(ctx, key);
  }
  const double t1 = now_ns();
  if (rc != 0)
    fail_run(allocs[ai], W_NAMES, "publish+unpublish");
  else
    record(R_NAME_PUB, ai, rep, (double)n / (t1 - t0) * 1e3, n);
}

void run_names(int ai, int rep) {
  const struct allocator *a = allocs[ai];
  if (a->names == NULL)
    return; /* glibc has no names */
  char name[96];
  new_name(name, sizeof name, a->name);
  void *ctx = segment_create(a, name, workloads[W_NAMES].heap_len);
  if (ctx == NULL)
    return;
  void **objs = xmalloc(NAMES * sizeof *objs);
  if (publish_all(a->names, ctx, objs) != 0) {
    if (is_enosys())
      note_missing(R_NAME_LOOKUP, R_NAME_PUB, ai,
                   "the library answers ENOSYS to shmheap_publish: names are "
                   "not built yet");
    else
      fail_run(a, W_NAMES, "publishing 10k names");
  } else {
    time_lookups(ai, rep, ctx, objs);
    time_publish(ai, rep, ctx, objs);
  }
  free(objs);
  segment_destroy(a, name, ctx);
}

/* ------------------------------------------------------------------------ */
/* grow-step                                                                */

static void *growable_create(const char *name, size_t len) {
  char path[128];
  snprintf(path, sizeof path, "/%s", name);
  return shmheap_create_growable(path, len, GROW_MAX, 0600);
}

static size_t heap_size(void *ctx) {
  struct shmheap_stats st;
  return shmheap_stats(ctx, &st) == 0 ? st.size : 0;
}

static size_t largest_free(void *ctx) {
  struct shmheap_stats st;
  return shmheap_stats(ctx, &st) == 0 ? st.largest_free : 0;
}

/* Doubles the heap with shmheap_grow until it reaches GROW_LAST; the mean
 * time of a step in us, or -1 on failure. */
static double time_grow_calls(void *ctx, size_t *steps) {
  double total = 0;
  *steps = 0;
  for (size_t len = heap_size(ctx); len != 0 && len < GROW_LAST;
       len = heap_size(ctx)) {
    const double t0 = now_ns();
    const int rc = shmheap_grow(ctx, 2 * len);
    const double t1 = now_ns();
    if (rc != 0 || heap_size(ctx) != 2 * len)
      return -1;
    total += t1 - t0;
    ++*steps;
  }
  return *steps == 0 ? -1 : total / (double)*steps / 1e3;
}

/* Each step asks for one byte more than the largest free block holds, so
 * the alloc itself must grow the heap (by doubling it); the mean time of
 * such an alloc in us, or -1 on failure. */
static double time_grow_allocs(void *ctx, size_t *steps) {
  double total = 0;
  *steps = 0;
  for (size_t len = heap_size(ctx); len != 0 && len < GROW_LAST;
       len = heap_size(ctx)) {
    const size_t request = largest_free(ctx) + 1;
    const double t0 = now_ns();
    unsigned char *p = shmheap_alloc(ctx, request);
    if (p != NULL)
      p[request - 1] = 1;
    const double t1 = now_ns();
    if (p == NULL || heap_size(ctx) <= len)
      return -1;
    total += t1 - t0;
    ++*steps;
  }
  return *steps == 0 ? -1 : total / (double)*steps / 1e3;
}

/* A fresh growable heap for one of the two timings; NULL on failure, with
 * a footnote when the library cannot grow heaps yet. */
static void *grow_heap(const struct allocator *g, char *name, size_t n,
                       int ai) {
  new_name(name, n, g->name);
  errno = 0;
  void *ctx = segment_create(g, name, GROW_FIRST);
  if (ctx == NULL && is_enosys())
    note_missing(R_GROW, R_GROW_ALLOC, ai,
                 "the library answers ENOSYS to shmheap_create_growable: "
                 "growth is not built yet");
  return ctx;
}

void run_grow(int ai, int rep) {
  if (strcmp(allocs[ai]->name, "shmheap") != 0)
    return; /* a growth step of the others is not comparable */
  struct allocator g = *allocs[ai];
  g.create = growable_create;
  g.quiet_enosys = true;
  char name[96];
  size_t steps;
  void *ctx = grow_heap(&g, name, sizeof name, ai);
  if (ctx == NULL)
    return;
  double us = time_grow_calls(ctx, &steps);
  if (us < 0)
    fail_run(&g, W_GROW, "shmheap_grow");
  else
    record(R_GROW, ai, rep, us, steps);
  segment_destroy(&g, name, ctx);

  if ((ctx = grow_heap(&g, name, sizeof name, ai)) == NULL)
    return;
  us = time_grow_allocs(ctx, &steps);
  if (us < 0)
    fail_run(&g, W_GROW, "an alloc that grows the heap");
  else
    record(R_GROW_ALLOC, ai, rep, us, steps);
  segment_destroy(&g, name, ctx);
}

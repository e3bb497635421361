/* /oracle/...: the library's placement checked against a simple, obviously
 * correct model (oracle-model.c: first fit by linear scan, growth by the
 * documented policy, the blocks names take). Long random traces (fixed
 * seeds) assert that the library returns the oracle's offset for every
 * allocation, fails exactly when the oracle does, and that its walk shows
 * the oracle's blocks; on growable heaps every growth step lands where the
 * model says, up to max_len; with names, every publish, unpublish, lookup,
 * lookup_or_alloc and free of a named object answers as the model's name
 * map says, and the names' own blocks sit where the model put them.
 */
#include "testutil.h"

#include <shmheap.h>
#include <stdlib.h>

#include "layout.h"
#include "oracle.h"

/* ------------------------------------------------------------------------ */
/* Comparing the library with the oracle                                     */

struct cmp_arg {
  const struct oracle *o;
  size_t i;
  int bad;
};

static int cmp_block(const struct shmheap_block *b, void *arg) {
  struct cmp_arg *c = arg;
  if (c->i >= c->o->n) {
    c->bad = 1;
    return 1;
  }
  const struct oblk *x = &c->o->b[c->i++];
  if (b->offset != x->off || b->size != x->size || b->used != x->used) {
    c->bad = 1;
    return 1;
  }
  return 0;
}

static void dump_blocks(const struct oracle *o) {
  for (size_t i = 0; i < o->n && i < 200; i++)
    g_test_message("  oracle block %zu: off %" G_GUINT64_FORMAT
                   " size %" G_GUINT64_FORMAT " %s",
                   i, o->b[i].off, o->b[i].size,
                   o->b[i].used ? "used" : "free");
}

static int print_block(const struct shmheap_block *b, void *arg) {
  (void)arg;
  g_test_message("  library block: off %" G_GUINT64_FORMAT
                 " size %" G_GUINT64_FORMAT " %s",
                 b->offset, b->size, b->used ? "used" : "free");
  return 0;
}

/* The library's blocks, stats and consistency agree with the oracle. */
static void assert_same(shmheap_memory_handle mem, const struct oracle *o) {
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  struct cmp_arg c = {o, 0, 0};
  g_assert_cmpint(shmheap_walk(mem, cmp_block, &c), >=, 0);
  if (c.bad || c.i != o->n) {
    g_test_message("block lists differ at block %zu", c.i);
    dump_blocks(o);
    shmheap_walk(mem, print_block, NULL);
    g_assert_not_reached();
  }
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(mem, &st), ==, 0);
  uint64_t used = 0, freeb = 0, nu = 0, nf = 0;
  for (size_t i = 0; i < o->n; i++) {
    if (o->b[i].used) {
      used += o->b[i].size;
      nu++;
    } else {
      freeb += o->b[i].size;
      nf++;
    }
  }
  g_assert_cmpuint(st.used_bytes, ==, used);
  g_assert_cmpuint(st.free_bytes, ==, freeb);
  g_assert_cmpuint(st.used_blocks, ==, nu);
  g_assert_cmpuint(st.free_blocks, ==, nf);
  g_assert_cmpuint(st.largest_free, ==, oracle_largest_free(o));
  g_assert_cmpuint(st.used_bytes + st.free_bytes + SHH_HEADER_SIZE, ==, o->len);
  g_assert_cmpuint(st.size, ==, o->len);
  g_assert_cmpuint(st.max_size, ==, o->max_len);
  g_assert_cmpuint(st.names, ==, o->names);
}

/* ------------------------------------------------------------------------ */
/* Traces                                                                    */

/* A few bytes at each end of an object carry its pattern, so a realloc that
 * loses contents or a block that overlaps another is seen, without paying
 * for filling half a heap. */
void mark(const struct obj *x, uint64_t seed) {
  size_t k = x->n < 32 ? x->n : 32;
  th_fill(x->p, k, seed, x->block);
  if (x->n > 64)
    th_fill(x->p + x->n - 32, 32, seed ^ 1, x->block);
}

void assert_marked(const struct obj *x, size_t n, uint64_t seed) {
  size_t k = n < 32 ? n : 32;
  g_assert_cmpint(th_check_fill(x->p, k, seed, x->block), ==, -1);
  if (n > 64 && n == x->n)
    g_assert_cmpint(th_check_fill(x->p + x->n - 32, 32, seed ^ 1, x->block), ==,
                    -1);
}

/* A request size: most small, some up to half the heap (log-uniform), a
 * few zero or just around the largest free block. */
size_t trace_size(uint64_t *rng, uint64_t len, const struct oracle *o) {
  uint64_t k = th_rand_below(rng, 1000);
  if (k < 10)
    return 0;
  if (k < 20) {
    uint64_t lf = oracle_largest_free(o);
    return (size_t)(lf + th_rand_below(rng, 33) - (lf >= 16 ? 16 : lf));
  }
  if (k < 700)
    return 1 + (size_t)th_rand_below(rng, 256);
  /* log-uniform up to len / 2: a random power of two, then uniform in it */
  unsigned bits = 63 - (unsigned)__builtin_clzll(len / 2);
  unsigned e = (unsigned)th_rand_below(rng, bits);
  size_t s = ((size_t)1 << e) + (size_t)th_rand_below(rng, (uint64_t)1 << e);
  if (s > len / 2)
    s = len / 2;
  return s < 1 ? 1 : s;
}

/* Which operation comes next: *DO_FREE, *DO_REALLOC, or else an alloc. */
static void trace_choose(struct trace *t, int *do_free, int *do_realloc) {
  const struct trace_cfg *cfg = t->cfg;
  uint64_t k = th_rand_below(&t->rng, 100);
  if (cfg->fill_drain) {
    /* fill until an allocation fails, then free about half */
    if (!t->filling && t->live->len < 4)
      t->filling = 1;
    *do_free = !t->filling && t->live->len > 0;
    *do_realloc = t->filling && t->live->len > 0 && k < 15;
    if (!t->filling && th_rand_below(&t->rng, 2 * t->live->len) < 2)
      t->filling = 1;
  } else {
    /* seeds differ in how much they keep live: 25..44% frees */
    uint64_t free_pct = 25 + cfg->seed % 20;
    *do_free = t->live->len > 0 && k < free_pct;
    *do_realloc = !*do_free && t->live->len > 0 && k < free_pct + 15;
  }
}

/* Frees a random live object in the heap and in the oracle. */
static void trace_free(struct trace *t) {
  guint i = (guint)th_rand_below(&t->rng, t->live->len);
  struct obj x = g_array_index(t->live, struct obj, i);
  assert_marked(&x, x.n, t->cfg->seed);
  shmheap_free(t->mem, x.p);
  oracle_free(&t->o, x.block);
  g_array_remove_index_fast(t->live, i);
  trace_forget(t, x.block);
}

/* Reallocates a random live object; the library must answer as the oracle
 * does. Returns 0 when the realloc failed as the oracle said (the op is
 * then not followed by a comparison), 1 otherwise. */
static int trace_realloc(struct trace *t, int op) {
  const struct trace_cfg *cfg = t->cfg;
  guint i = (guint)th_rand_below(&t->rng, t->live->len);
  struct obj *x = &g_array_index(t->live, struct obj, i);
  size_t n =
      trace_size(&t->rng, cfg->max_len ? cfg->max_len / 4 : cfg->len, &t->o);
  assert_marked(x, x->n, cfg->seed);
  uint64_t expect = oracle_realloc(&t->o, x->block, n);
  errno = 0;
  char *q = shmheap_realloc(t->mem, x->p, n);
  t->n_realloc++;
  if (expect == 0) {
    if (q != NULL)
      g_error("seed %" G_GUINT64_FORMAT " op %d: realloc(%" G_GUINT64_FORMAT
              ", %zu) returned %" G_GUINT64_FORMAT ", oracle says ENOMEM",
              cfg->seed, op, x->block + SHH_TAG, n, (uint64_t)(q - t->base));
    g_assert_cmpint(errno, ==, ENOMEM);
    if (cfg->fill_drain)
      t->filling = 0;
    assert_marked(x, x->n, cfg->seed);
    return 0;
  }
  if (q == NULL)
    g_error("seed %" G_GUINT64_FORMAT " op %d: realloc(%" G_GUINT64_FORMAT
            ", %zu) failed (errno %d), oracle says %" G_GUINT64_FORMAT,
            cfg->seed, op, x->block + SHH_TAG, n, errno, expect + SHH_TAG);
  if ((uint64_t)(q - t->base) != expect + SHH_TAG)
    g_error("seed %" G_GUINT64_FORMAT " op %d: realloc(%" G_GUINT64_FORMAT
            ", %zu) returned %" G_GUINT64_FORMAT ", oracle %" G_GUINT64_FORMAT,
            cfg->seed, op, x->block + SHH_TAG, n, (uint64_t)(q - t->base),
            expect + SHH_TAG);
  if (expect != x->block) {
    t->n_moved++;
    trace_forget(t, x->block);
  }
  struct obj old = *x;
  x->p = q;
  size_t keep = n < old.n ? n : old.n;
  /* the head pattern was made for the old block offset */
  g_assert_cmpint(th_check_fill(q, keep < 32 ? keep : 32, cfg->seed, old.block),
                  ==, -1);
  x->block = expect;
  x->n = n;
  mark(x, cfg->seed);
  return 1;
}

/* Allocates (one time in ten with calloc); the library must answer as the
 * oracle does. Returns 0 when it failed as the oracle said, 1 otherwise. */
static int trace_alloc(struct trace *t, int op) {
  const struct trace_cfg *cfg = t->cfg;
  size_t n =
      trace_size(&t->rng, cfg->max_len ? cfg->max_len / 4 : cfg->len, &t->o);
  int zeroed = th_rand_below(&t->rng, 10) == 0;
  uint64_t expect = oracle_alloc(&t->o, n);
  errno = 0;
  char *p = zeroed ? shmheap_calloc(t->mem, 1, n) : shmheap_alloc(t->mem, n);
  t->n_alloc++;
  if (expect == 0) {
    if (p != NULL)
      g_error("seed %" G_GUINT64_FORMAT
              " op %d: alloc(%zu) returned %" G_GUINT64_FORMAT
              ", oracle says ENOMEM",
              cfg->seed, op, n, (uint64_t)(p - t->base));
    g_assert_cmpint(errno, ==, ENOMEM);
    t->n_fail++;
    if (t->o.len == t->o.max_len && t->o.max_len > cfg->len)
      t->n_fail_at_max++;
    if (cfg->fill_drain)
      t->filling = 0;
    return 0;
  }
  if (p == NULL)
    g_error("seed %" G_GUINT64_FORMAT " op %d: alloc(%zu) failed (errno "
            "%d), oracle says %" G_GUINT64_FORMAT,
            cfg->seed, op, n, errno, expect + SHH_TAG);
  if ((uint64_t)(p - t->base) != expect + SHH_TAG) {
    dump_blocks(&t->o);
    g_error("seed %" G_GUINT64_FORMAT
            " op %d: alloc(%zu) returned %" G_GUINT64_FORMAT
            ", oracle %" G_GUINT64_FORMAT,
            cfg->seed, op, n, (uint64_t)(p - t->base), expect + SHH_TAG);
  }
  if (zeroed) {
    size_t k = n < 4096 ? n : 4096;
    for (size_t j = 0; j < k; j++)
      g_assert_cmpint(p[j], ==, 0);
  }
  struct obj x = {p, expect, n};
  mark(&x, cfg->seed);
  g_array_append_val(t->live, x);
  return 1;
}

/* shmheap_grow now and then, by a few pages, up to max_len. */
static void trace_grow(struct trace *t) {
  struct oracle *o = &t->o;
  if (o->len == o->max_len)
    return;
  uint64_t n = o->len + o->page * (1 + th_rand_below(&t->rng, 8));
  if (n > o->max_len)
    n = o->max_len;
  g_assert_cmpint(shmheap_grow(t->mem, n), ==, 0);
  oracle_grow(o, n);
}

/* Frees the rest in random order: everything merges back, and the whole
 * heap can be allocated again. */
static void trace_drain(struct trace *t) {
  while (t->live->len > 0)
    trace_free(t);
  assert_same(t->mem, &t->o);
  g_assert_cmpuint(t->o.n, ==, 1);
  g_assert_cmpuint(t->o.names, ==, 0);
  void *all = shmheap_alloc(t->mem, t->o.len - SHMHEAP_OVERHEAD);
  g_assert_true(all == t->base + SHMHEAP_OVERHEAD);
  shmheap_free(t->mem, all);
}

/* What traces did, summed over a case's seeds. */
struct trace_sum {
  uint64_t grows, fails_at_max, names_ops;
};

static void run_trace(const struct trace_cfg *cfg, struct trace_sum *sum) {
  char name[96];
  th_shm_name(name, sizeof name, "oracle");
  struct trace t = {.cfg = cfg, .rng = cfg->seed, .filling = 1};
  t.mem = cfg->max_len
              ? shmheap_create_growable(name, cfg->len, cfg->max_len, 0600)
              : shmheap_create(name, cfg->len);
  g_assert_nonnull(t.mem);
  t.base = shmheap_underlying(t.mem);
  oracle_init(&t.o, cfg->len, cfg->max_len);
  t.live = g_array_new(FALSE, FALSE, sizeof(struct obj));
  trace_names_init(&t);

  for (int op = 0; op < cfg->ops; op++) {
    int do_free, do_realloc, compare = 1;
    uint64_t grows = t.o.grows;
    uint64_t k = cfg->names || cfg->max_len ? th_rand_below(&t.rng, 100) : 99;
    if (cfg->names && k < 15) {
      trace_names_op(&t, op);
    } else if (cfg->max_len && k >= 97) {
      trace_grow(&t);
    } else {
      trace_choose(&t, &do_free, &do_realloc);
      if (do_free)
        trace_free(&t);
      else if (do_realloc)
        compare = trace_realloc(&t, op);
      else
        compare = trace_alloc(&t, op);
    }
    if (t.o.grows != grows) /* growth moved nothing */
      for (guint i = 0; i < t.live->len; i++) {
        const struct obj *x = &g_array_index(t.live, struct obj, i);
        assert_marked(x, x->n, cfg->seed);
      }
    if (compare && op % cfg->compare_every == 0)
      assert_same(t.mem, &t.o);
  }
  assert_same(t.mem, &t.o);
  if (cfg->names)
    trace_names_check(&t);
  trace_drain(&t);

  if (g_test_verbose())
    g_test_message("seed %" G_GUINT64_FORMAT " len %zu: %" G_GUINT64_FORMAT
                   " allocs (%" G_GUINT64_FORMAT " ENOMEM), %" G_GUINT64_FORMAT
                   " reallocs (%" G_GUINT64_FORMAT " moved), %" G_GUINT64_FORMAT
                   " growth steps to %" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                   " names ops",
                   cfg->seed, cfg->len, t.n_alloc, t.n_fail, t.n_realloc,
                   t.n_moved, t.o.grows, t.o.len, t.n_names);
  if (sum != NULL) {
    sum->grows += t.o.grows;
    sum->fails_at_max += t.n_fail_at_max;
    sum->names_ops += t.n_names;
  }
  g_array_free(t.live, TRUE);
  oracle_fini(&t.o);
  shmheap_destroy(NULL, t.mem);
  g_assert_false(th_shm_exists(name));
}

/* ------------------------------------------------------------------------ */
/* Cases                                                                     */

/* The oracle itself, on a hand-worked sequence (so that a wrong oracle
 * cannot agree with a wrong library). */
static void test_oracle_self(void) {
  struct oracle o;
  oracle_init(&o, 4096, 0);
  g_assert_cmpuint(o.b[0].size, ==, 4096 - SHH_FIRST);
  g_assert_cmpuint(oracle_alloc(&o, 100), ==, SHH_FIRST);      /* carve 112 */
  g_assert_cmpuint(oracle_alloc(&o, 0), ==, SHH_FIRST + 112);  /* carve 48 */
  g_assert_cmpuint(oracle_alloc(&o, 40), ==, SHH_FIRST + 160); /* carve 48 */
  g_assert_cmpuint(oracle_alloc(&o, 41), ==, SHH_FIRST + 208); /* carve 64 */
  oracle_free(&o, SHH_FIRST + 112);
  g_assert_cmpuint(oracle_alloc(&o, 41), ==,
                   SHH_FIRST + 272); /* 48 too small */
  g_assert_cmpuint(oracle_alloc(&o, 40), ==, SHH_FIRST + 112); /* exact */
  oracle_free(&o, SHH_FIRST + 160);
  oracle_free(&o, SHH_FIRST + 112); /* merges with SHH_FIRST + 160 */
  g_assert_cmpuint(o.n, ==, 5);
  g_assert_cmpuint(o.b[1].off, ==, SHH_FIRST + 112);
  g_assert_cmpuint(o.b[1].size, ==, 96);
  g_assert_cmpuint(oracle_alloc(&o, 20), ==,
                   SHH_FIRST + 112); /* 96-48=48: split */
  g_assert_cmpuint(o.b[2].off, ==, SHH_FIRST + 160);
  g_assert_cmpuint(o.b[2].size, ==, 48);
  /* realloc in place, shrink, grow into next, move */
  g_assert_cmpuint(oracle_realloc(&o, SHH_FIRST, 50), ==,
                   SHH_FIRST); /* 112-64=48 split */
  g_assert_cmpuint(o.b[0].size, ==, 64);
  g_assert_cmpuint(o.b[1].off, ==, SHH_FIRST + 64);
  g_assert_cmpuint(oracle_realloc(&o, SHH_FIRST, 104), ==,
                   SHH_FIRST); /* back to 112 */
  g_assert_cmpuint(o.b[0].size, ==, 112);
  g_assert_cmpuint(o.b[1].off, ==, SHH_FIRST + 112);
  g_assert_cmpuint(oracle_realloc(&o, SHH_FIRST, 200), ==,
                   SHH_FIRST + 336); /* moves */
  /* the whole heap: the last block is 8 mod 16 */
  oracle_fini(&o);
  oracle_init(&o, 4096, 0);
  g_assert_cmpuint(oracle_alloc(&o, 4096 - SHMHEAP_OVERHEAD + 1), ==, 0);
  g_assert_cmpuint(oracle_alloc(&o, 4096 - SHMHEAP_OVERHEAD), ==, SHH_FIRST);
  g_assert_cmpuint(o.b[0].size, ==, 4096 - SHH_FIRST);
  g_assert_cmpuint(oracle_realloc(&o, SHH_FIRST, 0), ==, SHH_FIRST);
  g_assert_cmpuint(o.b[0].size, ==, 48);
  g_assert_cmpuint(oracle_realloc(&o, SHH_FIRST, 4096 - SHMHEAP_OVERHEAD), ==,
                   SHH_FIRST);
  g_assert_cmpuint(o.n, ==, 1);
  oracle_fini(&o);
}

enum { SEEDS = 50 };

static void test_random_traces(void) {
  static const size_t lens[] = {64 << 10, 256 << 10, 1 << 20};
  g_test_message("random traces: seeds 1..%d, 5000 ops each", SEEDS);
  for (uint64_t s = 1; s <= SEEDS; s++) {
    struct trace_cfg cfg = {s, lens[s % 3], 5000, 97, 0, 0, 0};
    run_trace(&cfg, NULL);
  }
}

static void test_fill_drain(void) {
  g_test_message("fill/drain traces: seeds 1001..1020, 4000 ops each");
  for (uint64_t s = 1001; s <= 1020; s++) {
    struct trace_cfg cfg = {s, s % 2 ? 64 << 10 : 256 << 10, 4000, 211, 1, 0,
                            0};
    run_trace(&cfg, NULL);
  }
}

/* One-page heaps and short traces: the end block (8 mod 16), exact fits and
 * the 48-byte split threshold come up constantly. */
static void test_tiny_heaps(void) {
  g_test_message("tiny heaps: seeds 2001..2300, one page, 300 ops each");
  for (uint64_t s = 2001; s <= 2300; s++) {
    struct trace_cfg cfg = {
        s, (size_t)sysconf(_SC_PAGESIZE), 300, 1, (int)(s % 2), 0, 0};
    run_trace(&cfg, NULL);
  }
}

/* The growth policy on hand-worked steps (so that a wrong model cannot
 * agree with a wrong library): 4 KiB growing to at most 64 KiB. */
static void test_oracle_self_grow(void) {
  struct oracle o;
  oracle_init(&o, 4096, 65536);
  /* the whole first page, then 100 more bytes: the allocated last block
   * takes 8 bytes, the new block starts at 4104 and needs 112: least is
   * 8192, which doubling does not exceed */
  g_assert_cmpuint(oracle_alloc(&o, 4096 - SHMHEAP_OVERHEAD), ==, SHH_FIRST);
  g_assert_cmpuint(oracle_alloc(&o, 100), ==, 4104);
  g_assert_cmpuint(o.len, ==, 8192);
  g_assert_cmpuint(o.b[0].size, ==, 4096 - SHH_FIRST + 8);
  g_assert_cmpuint(o.n, ==, 3);
  g_assert_cmpuint(o.b[2].off, ==, 4104 + 112);
  g_assert_cmpuint(o.b[2].size, ==, 8192 - 4104 - 112);
  /* 5000 bytes fit no block: the free last block (at 4216) needs 5008:
   * least 12288 < doubled 16384, so 16384; it merges with the new space */
  g_assert_cmpuint(oracle_alloc(&o, 5000), ==, 4216);
  g_assert_cmpuint(o.len, ==, 16384);
  g_assert_cmpuint(o.grows, ==, 2);
  g_assert_cmpuint(o.b[3].off, ==, 4216 + 5008);
  g_assert_cmpuint(o.b[3].size, ==, 16384 - 4216 - 5008);
  /* 40000 bytes (carve 40016): least rounds 9224 + 40008 up to 53248,
   * above doubled 32768: grows to least */
  g_assert_cmpuint(oracle_alloc(&o, 40000), ==, 9224);
  g_assert_cmpuint(o.len, ==, 53248);
  g_assert_cmpuint(o.b[4].off, ==, 49240);
  /* 16384 more would need the free last block to reach 49240 + 16392 =
   * 65632 > max_len: refused, nothing changes; 16000 needs 65248: the
   * heap grows to max_len (doubling would pass it) */
  g_assert_cmpuint(oracle_alloc(&o, 16384), ==, 0);
  g_assert_cmpuint(o.len, ==, 53248);
  g_assert_cmpuint(oracle_alloc(&o, 16000), ==, 49240);
  g_assert_cmpuint(o.len, ==, 65536);
  g_assert_cmpuint(oracle_alloc(&o, 300), ==, 0); /* 280 bytes left */
  oracle_fini(&o);
}

/* Growable heaps from one page: every growth step, and ENOMEM once
 * max_len is reached, as the model says. */
static void test_grow_traces(void) {
  g_test_message("growth traces: seeds 3001..3024, one page up to 1-4 MiB, "
                 "2500 ops each");
  struct trace_sum sum = {0, 0, 0};
  for (uint64_t s = 3001; s <= 3024; s++) {
    struct trace_cfg cfg = {
        s, 4096, 2500, 17, (int)(s % 2), (size_t)1 << (20 + s % 3), 0};
    run_trace(&cfg, &sum);
  }
  g_test_message("%" G_GUINT64_FORMAT " growth steps, %" G_GUINT64_FORMAT
                 " ENOMEM at max_len",
                 sum.grows, sum.fails_at_max);
  g_assert_cmpuint(sum.grows, >=, 24 * 6);
  g_assert_cmpuint(sum.fails_at_max, >, 0);
}

/* Names in the traces, on fixed and growable heaps. */
static void test_names_traces(void) {
  g_test_message("names traces: seeds 4001..4024, 3000 ops each");
  struct trace_sum sum = {0, 0, 0};
  for (uint64_t s = 4001; s <= 4024; s++) {
    struct trace_cfg cfg = {s, s % 2 ? 64 << 10 : 8192, 3000,
                            7, (int)(s % 3 == 0),       s % 2 ? 0 : 512 << 10,
                            1};
    run_trace(&cfg, &sum);
  }
  g_test_message("%" G_GUINT64_FORMAT " names ops, %" G_GUINT64_FORMAT
                 " growth steps",
                 sum.names_ops, sum.grows);
  g_assert_cmpuint(sum.names_ops, >, 24 * 300);
  g_assert_cmpuint(sum.grows, >, 0);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  th_add_func("/oracle/self", test_oracle_self);
  th_add_func("/oracle/random-traces", test_random_traces);
  th_add_func("/oracle/fill-drain", test_fill_drain);
  th_add_func("/oracle/tiny-heaps", test_tiny_heaps);
  th_add_func("/oracle/self-grow", test_oracle_self_grow);
  th_add_func("/oracle/grow-traces", test_grow_traces);
  th_add_func("/oracle/names-traces", test_names_traces);
  return g_test_run();
}

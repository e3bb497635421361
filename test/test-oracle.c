/* /oracle/...: the library's placement checked against a simple, obviously
 * correct model. The oracle keeps every block of the heap in an address
 * ordered array and implements the placement rule literally, by linear scan:
 *
 *   carve(sz) = max(48, round_up(sz + 8, 16)); a free block of size S fits
 *   sz when S - 8 >= sz; alloc takes the lowest-addressed fitting block and
 *   carves the request from its head when S - carve >= 48, else hands it out
 *   whole; free merges with free neighbours; realloc stays in place when it
 *   fits (splitting off a tail >= 48), else grows into a free next block when
 *   S + Snext - 8 >= sz (splitting when the rest is >= 48), else allocates
 *   (old block still held), copies and frees.
 *
 * Long random traces (fixed seeds) then assert that the library returns the
 * oracle's offset for every allocation, fails exactly when the oracle does,
 * and that its walk shows the oracle's blocks.
 */
#include "testutil.h"

#include <shmheap.h>
#include <stdlib.h>

#include "layout.h"

/* ------------------------------------------------------------------------ */
/* The oracle                                                                */

struct oblk {
  uint64_t off;
  uint64_t size;
  int used;
};

struct oracle {
  uint64_t len;
  struct oblk *b;
  size_t n, cap;
};

static void oracle_init(struct oracle *o, uint64_t len) {
  o->len = len;
  o->cap = 64;
  o->b = g_new(struct oblk, o->cap);
  o->n = 1;
  o->b[0] = (struct oblk){SHH_FIRST, len - SHH_FIRST, 0};
}

static void oracle_fini(struct oracle *o) {
  g_free(o->b);
}

static void oracle_insert(struct oracle *o, size_t i, struct oblk blk) {
  if (o->n == o->cap) {
    o->cap *= 2;
    o->b = g_renew(struct oblk, o->b, o->cap);
  }
  memmove(&o->b[i + 1], &o->b[i], (o->n - i) * sizeof *o->b);
  o->b[i] = blk;
  o->n++;
}

static void oracle_remove(struct oracle *o, size_t i) {
  memmove(&o->b[i], &o->b[i + 1], (o->n - i - 1) * sizeof *o->b);
  o->n--;
}

/* The index of the block at OFF; asserts there is one. */
static size_t oracle_find(const struct oracle *o, uint64_t off) {
  size_t lo = 0, hi = o->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (o->b[mid].off < off)
      lo = mid + 1;
    else
      hi = mid;
  }
  g_assert_cmpuint(lo, <, o->n);
  g_assert_cmpuint(o->b[lo].off, ==, off);
  return lo;
}

/* carve(sz), or 0 when sz is larger than any heap could hold. */
static uint64_t carve_of(uint64_t sz) {
  if (sz > ((uint64_t)1 << 50))
    return 0;
  uint64_t c = (sz + SHH_TAG + SHH_ALIGN - 1) & ~(uint64_t)(SHH_ALIGN - 1);
  return c < SHH_MIN_BLOCK ? SHH_MIN_BLOCK : c;
}

/* Returns the new block's offset, or 0 when nothing fits. */
static uint64_t oracle_alloc(struct oracle *o, uint64_t sz) {
  uint64_t carve = carve_of(sz);
  if (carve == 0)
    return 0;
  for (size_t i = 0; i < o->n; i++) {
    struct oblk *b = &o->b[i];
    if (b->used || b->size - SHH_TAG < sz)
      continue;
    if ((int64_t)b->size - (int64_t)carve >= SHH_MIN_BLOCK) {
      struct oblk rest = {b->off + carve, b->size - carve, 0};
      b->size = carve;
      b->used = 1;
      uint64_t off = b->off;
      oracle_insert(o, i + 1, rest);
      return off;
    }
    b->used = 1;
    return b->off;
  }
  return 0;
}

/* Frees the free block at index I into its free neighbours. */
static void oracle_merge(struct oracle *o, size_t i) {
  if (i + 1 < o->n && !o->b[i + 1].used) {
    o->b[i].size += o->b[i + 1].size;
    oracle_remove(o, i + 1);
  }
  if (i > 0 && !o->b[i - 1].used) {
    o->b[i - 1].size += o->b[i].size;
    oracle_remove(o, i);
  }
}

static void oracle_free(struct oracle *o, uint64_t off) {
  size_t i = oracle_find(o, off);
  g_assert_true(o->b[i].used);
  o->b[i].used = 0;
  oracle_merge(o, i);
}

/* Returns the block's offset after realloc, or 0 on failure (unchanged). */
static uint64_t oracle_realloc(struct oracle *o, uint64_t off, uint64_t sz) {
  size_t i = oracle_find(o, off);
  g_assert_true(o->b[i].used);
  uint64_t carve = carve_of(sz);
  if (carve == 0)
    return 0;
  uint64_t s = o->b[i].size;
  if (s - SHH_TAG >= sz) {
    if ((int64_t)s - (int64_t)carve >= SHH_MIN_BLOCK) {
      o->b[i].size = carve;
      oracle_insert(o, i + 1, (struct oblk){off + carve, s - carve, 0});
      oracle_merge(o, i + 1);
    }
    return off;
  }
  if (i + 1 < o->n && !o->b[i + 1].used &&
      s + o->b[i + 1].size - SHH_TAG >= sz) {
    uint64_t total = s + o->b[i + 1].size;
    oracle_remove(o, i + 1);
    if ((int64_t)total - (int64_t)carve >= SHH_MIN_BLOCK) {
      o->b[i].size = carve;
      oracle_insert(o, i + 1, (struct oblk){off + carve, total - carve, 0});
    } else {
      o->b[i].size = total;
    }
    return off;
  }
  uint64_t n = oracle_alloc(o, sz);
  if (n == 0)
    return 0;
  oracle_free(o, off);
  return n;
}

static uint64_t oracle_largest_free(const struct oracle *o) {
  uint64_t m = 0;
  for (size_t i = 0; i < o->n; i++)
    if (!o->b[i].used && o->b[i].size - SHH_TAG > m)
      m = o->b[i].size - SHH_TAG;
  return m;
}

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
}

/* ------------------------------------------------------------------------ */
/* Traces                                                                    */

struct obj {
  char *p;
  uint64_t block; /* offset of the block's tag */
  size_t n;       /* bytes asked for */
};

/* A few bytes at each end of an object carry its pattern, so a realloc that
 * loses contents or a block that overlaps another is seen, without paying
 * for filling half a heap. */
static void mark(const struct obj *x, uint64_t seed) {
  size_t k = x->n < 32 ? x->n : 32;
  th_fill(x->p, k, seed, x->block);
  if (x->n > 64)
    th_fill(x->p + x->n - 32, 32, seed ^ 1, x->block);
}

static void assert_marked(const struct obj *x, size_t n, uint64_t seed) {
  size_t k = n < 32 ? n : 32;
  g_assert_cmpint(th_check_fill(x->p, k, seed, x->block), ==, -1);
  if (n > 64 && n == x->n)
    g_assert_cmpint(th_check_fill(x->p + x->n - 32, 32, seed ^ 1, x->block), ==,
                    -1);
}

/* A request size: most small, some up to half the heap (log-uniform), a
 * few zero or just around the largest free block. */
static size_t trace_size(uint64_t *rng, uint64_t len, const struct oracle *o) {
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

struct trace_cfg {
  uint64_t seed;
  size_t len;
  int ops;
  int compare_every; /* full walk comparison every N ops */
  int fill_drain;    /* alternate filling to failure and freeing */
};

/* One trace under way: the heap, the oracle, and the test's live objects. */
struct trace {
  const struct trace_cfg *cfg;
  shmheap_memory_handle mem;
  char *base;
  struct oracle o;
  GArray *live; /* struct obj */
  uint64_t rng;
  uint64_t n_alloc, n_fail, n_realloc, n_moved;
  int filling;
};

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
}

/* Reallocates a random live object; the library must answer as the oracle
 * does. Returns 0 when the realloc failed as the oracle said (the op is
 * then not followed by a comparison), 1 otherwise. */
static int trace_realloc(struct trace *t, int op) {
  const struct trace_cfg *cfg = t->cfg;
  guint i = (guint)th_rand_below(&t->rng, t->live->len);
  struct obj *x = &g_array_index(t->live, struct obj, i);
  size_t n = trace_size(&t->rng, cfg->len, &t->o);
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
  if (expect != x->block)
    t->n_moved++;
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
  size_t n = trace_size(&t->rng, cfg->len, &t->o);
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

/* Frees the rest in random order: everything merges back, and the whole
 * heap can be allocated again. */
static void trace_drain(struct trace *t) {
  while (t->live->len > 0)
    trace_free(t);
  assert_same(t->mem, &t->o);
  g_assert_cmpuint(t->o.n, ==, 1);
  void *all = shmheap_alloc(t->mem, t->cfg->len - SHMHEAP_OVERHEAD);
  g_assert_true(all == t->base + SHMHEAP_OVERHEAD);
  shmheap_free(t->mem, all);
}

static void run_trace(const struct trace_cfg *cfg) {
  char name[96];
  th_shm_name(name, sizeof name, "oracle");
  struct trace t = {.cfg = cfg, .rng = cfg->seed, .filling = 1};
  t.mem = shmheap_create(name, cfg->len);
  g_assert_nonnull(t.mem);
  t.base = shmheap_underlying(t.mem);
  oracle_init(&t.o, cfg->len);
  t.live = g_array_new(FALSE, FALSE, sizeof(struct obj));

  for (int op = 0; op < cfg->ops; op++) {
    int do_free, do_realloc, compare = 1;
    trace_choose(&t, &do_free, &do_realloc);
    if (do_free)
      trace_free(&t);
    else if (do_realloc)
      compare = trace_realloc(&t, op);
    else
      compare = trace_alloc(&t, op);
    if (compare && op % cfg->compare_every == 0)
      assert_same(t.mem, &t.o);
  }
  assert_same(t.mem, &t.o);
  trace_drain(&t);

  if (g_test_verbose())
    g_test_message("seed %" G_GUINT64_FORMAT " len %zu: %" G_GUINT64_FORMAT
                   " allocs (%" G_GUINT64_FORMAT " ENOMEM), %" G_GUINT64_FORMAT
                   " reallocs (%" G_GUINT64_FORMAT " moved)",
                   cfg->seed, cfg->len, t.n_alloc, t.n_fail, t.n_realloc,
                   t.n_moved);
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
  oracle_init(&o, 4096);
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
  oracle_init(&o, 4096);
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
    struct trace_cfg cfg = {s, lens[s % 3], 5000, 97, 0};
    run_trace(&cfg);
  }
}

static void test_fill_drain(void) {
  g_test_message("fill/drain traces: seeds 1001..1020, 4000 ops each");
  for (uint64_t s = 1001; s <= 1020; s++) {
    struct trace_cfg cfg = {s, s % 2 ? 64 << 10 : 256 << 10, 4000, 211, 1};
    run_trace(&cfg);
  }
}

/* One-page heaps and short traces: the end block (8 mod 16), exact fits and
 * the 48-byte split threshold come up constantly. */
static void test_tiny_heaps(void) {
  g_test_message("tiny heaps: seeds 2001..2300, one page, 300 ops each");
  for (uint64_t s = 2001; s <= 2300; s++) {
    struct trace_cfg cfg = {s, (size_t)sysconf(_SC_PAGESIZE), 300, 1,
                            (int)(s % 2)};
    run_trace(&cfg);
  }
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  th_add_func("/oracle/self", test_oracle_self);
  th_add_func("/oracle/random-traces", test_random_traces);
  th_add_func("/oracle/fill-drain", test_fill_drain);
  th_add_func("/oracle/tiny-heaps", test_tiny_heaps);
  return g_test_run();
}

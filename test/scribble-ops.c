/* scribble-ops.c: the operations a scribble trial runs (alloc, calloc,
 * free, realloc, check), each checked against the test's model: what the
 * library hands out lies in the heap and overlaps no live block, live
 * blocks keep their bytes, and a check that passes agrees with a walk. The
 * first broken promise is recorded in the trial's result.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block.h"
#include "scribble.h"
#include "shmheap.h"
#include "testutil.h"

/* ------------------------------------------------------------------------ */
/* Patterns                                                                  */

static uint64_t pat_seed(uint64_t hdl, uint64_t gen) {
  return th_mix64(hdl ^ (gen << 24) ^ 0x5c71bb1eull);
}

static void pat_fill(unsigned char *p, uint64_t n, uint64_t seed) {
  for (uint64_t i = 0; i < n; i += 8) {
    uint64_t w = seed + (i / 8) * 0x9e3779b97f4a7c15ull;
    memcpy(p + i, &w, n - i < 8 ? n - i : 8);
  }
}

/* The first byte of N at P that is not the pattern of SEED, or -1. */
static int64_t pat_diff(const unsigned char *p, uint64_t n, uint64_t seed) {
  for (uint64_t i = 0; i < n; i += 8) {
    uint64_t w = seed + (i / 8) * 0x9e3779b97f4a7c15ull;
    unsigned char wb[8];
    memcpy(wb, &w, 8);
    uint64_t k = n - i < 8 ? n - i : 8;
    for (uint64_t j = 0; j < k; j++)
      if (p[i + j] != wb[j])
        return (int64_t)(i + j);
  }
  return -1;
}

/* ------------------------------------------------------------------------ */
/* One process's view of a trial                                             */

static int spread(struct ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Records a broken promise (the first one's description is kept) and
 * returns -1 so the trial stops. */
static int spread(struct ctx *c, const char *fmt, ...) {
  if (!c->res->violation) {
    char msg[WHY_LEN - 32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->res->why, sizeof c->res->why, "%s (errno %d): %s", c->op,
             c->err, msg);
  }
  c->res->violation = 1;
  return -1;
}

/* With SHMHEAP_SCRIBBLE_VERBOSE set, says what each call did. */
void trace(struct ctx *c, const char *fmt, ...) {
  c->err = errno;
  if (!cfg.verbose)
    return;
  char msg[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "[%d] %s: %s (errno %d)\n", (int)getpid(), c->op, msg, errno);
}

/* Counts a call that failed; ENOMEM is an ordinary answer, not a refusal. */
void failed(struct ctx *c, int e) {
  if (e != ENOMEM)
    c->res->refused++;
}

void arm(void) {
  alarm(CALL_TIMEOUT);
}

uint64_t rnd(struct ctx *c, uint64_t n) {
  return th_rand_below(&c->rng, n);
}

size_t rand_size(uint64_t *rng) {
  uint64_t r = th_rand_below(rng, 100);
  if (r < 70)
    return (size_t)th_rand_below(rng, 129);
  if (r < 95)
    return 129 + (size_t)th_rand_below(rng, 896);
  return 1025 + (size_t)th_rand_below(rng, 3072);
}

/* Every live block still holds its pattern. */
int verify_all(struct ctx *c) {
  for (unsigned i = 0; i < c->m->n; i++) {
    const struct live *b = &c->m->b[i];
    int64_t d = pat_diff(c->base + b->hdl, b->usable, pat_seed(b->hdl, b->gen));
    if (d >= 0)
      return spread(c,
                    "live block %#" PRIx64 " (%" PRIu64
                    " bytes) changed at byte %" PRId64,
                    b->hdl, b->usable, d);
  }
  return 0;
}

/* A block the library just handed out, [HDL - tag, HDL + USABLE), lies in
 * the heap and overlaps no live block but SKIP (an index into the model, or
 * -1) with its tag. */
static int check_new(struct ctx *c, uint64_t hdl, uint64_t usable, long skip) {
  if (hdl < SHH_FIRST + SHH_TAG || hdl % SHMHEAP_ALIGNMENT != 0 ||
      usable > HEAP_LEN || hdl + usable > HEAP_LEN)
    return spread(c,
                  "block %#" PRIx64 " of %" PRIu64 " bytes is not in the heap",
                  hdl, usable);
  for (unsigned i = 0; i < c->m->n; i++) {
    const struct live *b = &c->m->b[i];
    if ((long)i != skip && hdl - SHH_TAG < b->hdl + b->usable &&
        b->hdl - SHH_TAG < hdl + usable)
      return spread(c,
                    "block %#" PRIx64 " (%" PRIu64
                    " bytes) overlaps live block %#" PRIx64 " (%" PRIu64
                    " bytes)",
                    hdl, usable, b->hdl, b->usable);
  }
  return 0;
}

/* The usable size of a block just handed out for SZ bytes; *EXACT is 0
 * when usable_size refused and SZ stands in. */
static int usable_of(struct ctx *c, void *p, size_t sz, uint64_t *us,
                     int *exact) {
  errno = 0;
  arm();
  size_t u = shmheap_usable_size(c->mem, p);
  const char *op = c->op;
  c->op = "usable_size";
  trace(c, "%#tx -> %zu", (unsigned char *)p - c->base, u);
  c->op = op;
  if (u == 0) {
    failed(c, errno);
    *us = sz;
    *exact = 0;
    return 0;
  }
  if (u < sz)
    return spread(c, "usable size %zu below the %zu asked for", u, sz);
  *us = u;
  *exact = 1;
  return 0;
}

static void set_live(struct ctx *c, struct live *b, uint64_t hdl,
                     uint64_t usable, int exact) {
  b->hdl = hdl;
  b->usable = usable;
  b->exact = exact;
  b->gen = ++c->m->gen;
  pat_fill(c->base + hdl, usable, pat_seed(hdl, b->gen));
}

/* Takes a pointer alloc or calloc returned for SZ bytes into the model. */
int adopt(struct ctx *c, void *p, size_t sz) {
  uint64_t hdl = (uint64_t)((unsigned char *)p - c->base), us = 0;
  int exact = 0;
  if (check_new(c, hdl, sz, -1) != 0 || usable_of(c, p, sz, &us, &exact) != 0 ||
      check_new(c, hdl, us, -1) != 0)
    return -1;
  set_live(c, &c->m->b[c->m->n++], hdl, us, exact);
  return 0;
}

static int op_alloc(struct ctx *c) {
  size_t sz = rand_size(&c->rng);
  c->op = "alloc";
  errno = 0;
  arm();
  void *p = shmheap_alloc(c->mem, sz);
  trace(c, "%zu -> %#tx", sz, p ? (unsigned char *)p - c->base : 0);
  if (p == NULL) {
    failed(c, errno);
    return 0;
  }
  return adopt(c, p, sz);
}

static int op_calloc(struct ctx *c) {
  size_t n = 1 + (size_t)rnd(c, 8), sz = rand_size(&c->rng) / n;
  c->op = "calloc";
  errno = 0;
  arm();
  unsigned char *p = shmheap_calloc(c->mem, n, sz);
  trace(c, "%zu x %zu -> %#tx", n, sz, p ? p - c->base : 0);
  if (p == NULL) {
    failed(c, errno);
    return 0;
  }
  uint64_t hdl = (uint64_t)(p - c->base);
  if (check_new(c, hdl, n * sz, -1) != 0)
    return -1;
  for (size_t i = 0; i < n * sz; i++)
    if (p[i] != 0)
      return spread(c, "calloc block %#" PRIx64 " has a nonzero byte at %zu",
                    hdl, i);
  return adopt(c, p, n * sz);
}

void forget(struct model *m, unsigned i) {
  m->b[i] = m->b[--m->n];
}

static int op_free(struct ctx *c) {
  unsigned i = (unsigned)rnd(c, c->m->n);
  c->op = "free";
  errno = 0;
  arm();
  shmheap_free(c->mem, c->base + c->m->b[i].hdl);
  trace(c, "%#" PRIx64, c->m->b[i].hdl);
  if (errno != 0)
    failed(c, errno);
  else
    forget(c->m, i);
  return 0;
}

static int op_realloc(struct ctx *c) {
  unsigned i = (unsigned)rnd(c, c->m->n);
  struct live old = c->m->b[i];
  size_t sz = rand_size(&c->rng);
  c->op = "realloc";
  errno = 0;
  arm();
  unsigned char *p = shmheap_realloc(c->mem, c->base + old.hdl, sz);
  trace(c, "%#" PRIx64 " (%" PRIu64 " bytes), %zu -> %#tx", old.hdl, old.usable,
        sz, p ? p - c->base : 0);
  if (p == NULL) {
    failed(c, errno);
    return 0;
  }
  uint64_t hdl = (uint64_t)(p - c->base), us = 0;
  int exact = 0;
  if (check_new(c, hdl, sz, i) != 0)
    return -1;
  uint64_t keep = old.usable < sz ? old.usable : sz;
  int64_t d = pat_diff(p, keep, pat_seed(old.hdl, old.gen));
  if (d >= 0)
    return spread(c,
                  "block %#" PRIx64 " moved to %#" PRIx64
                  " lost its contents at byte %" PRId64,
                  old.hdl, hdl, d);
  if (usable_of(c, p, sz, &us, &exact) != 0 || check_new(c, hdl, us, i) != 0)
    return -1;
  set_live(c, &c->m->b[i], hdl, us, exact);
  return 0;
}

struct seen {
  unsigned n;
  struct live b[MAX_LIVE];
};

static int collect_used(const struct shmheap_block *blk, void *arg) {
  struct seen *s = arg;
  if (!blk->used)
    return 0;
  if (s->n == MAX_LIVE)
    return 1;
  s->b[s->n++] = (struct live){.hdl = blk->handle, .usable = blk->usable};
  return 0;
}

static int by_hdl(const void *a, const void *b) {
  const struct live *x = a, *y = b;
  return x->hdl < y->hdl ? -1 : x->hdl > y->hdl;
}

/* After check() passed: the library's live blocks are exactly the test's. */
static int walk_matches(struct ctx *c) {
  static struct seen s;
  static struct live want[MAX_LIVE];
  s.n = 0;
  errno = 0;
  arm();
  int rc = shmheap_walk(c->mem, collect_used, &s);
  trace(c, "walk -> %d, %u live blocks", rc, s.n);
  if (rc != 0)
    return spread(c, "check passed, then walk returned %d (errno %d)", rc,
                  errno);
  if (s.n != c->m->n)
    return spread(c, "check passed; walk sees %u live blocks, the test %u", s.n,
                  c->m->n);
  memcpy(want, c->m->b, c->m->n * sizeof want[0]);
  qsort(want, c->m->n, sizeof want[0], by_hdl);
  for (unsigned i = 0; i < s.n; i++)
    if (s.b[i].hdl != want[i].hdl ||
        (want[i].exact ? s.b[i].usable != want[i].usable
                       : s.b[i].usable < want[i].usable))
      return spread(c,
                    "check passed; walk has %#" PRIx64 " (%" PRIu64
                    " bytes) where the test has %#" PRIx64 " (%" PRIu64 ")",
                    s.b[i].hdl, s.b[i].usable, want[i].hdl, want[i].usable);
  return 0;
}

int op_check(struct ctx *c) {
  c->op = "check";
  errno = 0;
  arm();
  int rc = shmheap_check(c->mem);
  trace(c, "-> %d", rc);
  if (rc != 0) {
    failed(c, errno);
    return 0;
  }
  return walk_matches(c);
}

static int one_op(struct ctx *c) {
  uint64_t r = rnd(c, 100);
  if (c->m->n == 0 || (r < 30 && c->m->n < MAX_LIVE))
    return op_alloc(c);
  if (r < 40 && c->m->n < MAX_LIVE)
    return op_calloc(c);
  if (r < 70)
    return op_free(c);
  if (r < 85)
    return op_realloc(c);
  return op_check(c);
}

int run_ops(struct ctx *c, unsigned nops) {
  for (unsigned k = 0; k < nops; k++)
    if (one_op(c) != 0 || verify_all(c) != 0)
      return -1;
  alarm(0);
  return 0;
}

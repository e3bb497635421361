/* test-scribble: how far one ordinary caller bug spreads. Each trial builds
 * a small heap with live blocks whose bytes the test knows, makes one
 * scribble of a given kind (a write after free, a flipped or forged tag, a
 * damaged index field or link, a garbage lock word), then runs random
 * operations from three processes in turn and watches every live byte.
 * The library may refuse (EUCLEAN, EINVAL, NULL) as often as it likes; it
 * must never hand out memory that overlaps a live block, change a live
 * block's bytes, crash, hang, or pass shmheap_check while its blocks
 * disagree with what the test allocated. A kind FAILS when any trial
 * spreads.
 *
 * Every trial runs in its own forked process (and its turns in further
 * children), each call under alarm(), so crashes and hangs are counted,
 * not suffered. Trials are independent and reproducible: trial T of kind K
 * draws everything from (seed, K, T).
 *   SHMHEAP_SCRIBBLE_TRIALS  trials per kind (default 1000)
 *   SHMHEAP_SCRIBBLE_SEED    the seed (default: random, printed)
 *   SHMHEAP_SCRIBBLE_TRIAL   run only this trial number of each kind
 *   SHMHEAP_SCRIBBLE_VERBOSE trace every call on stderr
 * GLib stops at the first failed case unless run with -k (keep going), as
 * meson test runs it.
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
#include "shmheap.h"
#include "testutil.h"

enum kind {
  K_NONE,        /* no scribble: the harness itself must see nothing */
  K_WAF,         /* write after free into words 0-3 of a freed payload */
  K_TAG_BIT,     /* one bit flipped in a live block's tag */
  K_TAG_SIZE,    /* a forged size in a live block's tag */
  K_INDEX_FIELD, /* a random value in a free block's index field */
  K_LINK_LIVE,   /* an index link into a live block */
  K_LINK_FREE,   /* an index link to another free block */
  K_LOCK,        /* garbage in the lock word */
  K_N
};

static const char *const kind_names[K_N] = {
    "none",        "write-after-free", "tag-bit",   "tag-size",
    "index-field", "link-live",        "link-free", "lock",
};

enum {
  HEAP_LEN = 64 * 1024,
  MAX_LIVE = 512,    /* blocks the model tracks (a 64 KiB heap has fewer) */
  MAX_FREE = 256,    /* free blocks a walk may report */
  TURNS = 3,         /* processes that take turns on the heap */
  OPS_PER_TURN = 60, /* operations in each turn */
  CALL_TIMEOUT = 3,  /* seconds any one call may take */
  SETUP_TIMEOUT = 20,
  WIDTH = 2,        /* trials at once */
  LOCK_WIDTH = 200, /* lock trials at once: most sleep in a hung call */
  WHY_LEN = 320,
  WHAT_LEN = 240,
};

/* One live block as the test allocated it. Its bytes are the pattern of
 * (hdl, gen); EXACT is 0 when usable_size refused and USABLE is what was
 * asked for. */
struct live {
  uint64_t hdl, usable, gen;
  int exact;
};

/* What the test knows of the heap: shared by the processes of one trial
 * (MAP_SHARED anonymous memory, never the heap). They take turns, so it
 * needs no lock. */
struct model {
  uint64_t gen;
  uint64_t lock_copy; /* a lock word as its owner saw it */
  unsigned n;
  struct live b[MAX_LIVE];
};

/* The one write a trial makes behind the library's back. */
struct scribble {
  uint64_t off;
  unsigned len;
  unsigned char old[16], val[16];
  char what[WHAT_LEN];
};

/* One trial's outcome, written by its processes into memory shared with
 * the test's main process. */
struct result {
  int setup_failed;
  unsigned refused;  /* calls that failed, but for ENOMEM */
  int violation;     /* a broken promise, described in WHY */
  int hang, crash;   /* a process died of SIGALRM / of anything else */
  char why[WHY_LEN]; /* the first failure */
  struct scribble s;
};

static struct {
  uint64_t seed;
  unsigned trials;
  long only;   /* -1: every trial */
  int verbose; /* trace every call on stderr */
} cfg;

struct tally {
  int ran;
  unsigned trials, refused, spread, violations, hangs, crashes;
};
static struct tally tallies[K_N];

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

struct ctx {
  shmheap_memory_handle mem;
  unsigned char *base;
  struct model *m;
  struct result *res;
  uint64_t rng;
  const char *op; /* the last call made, for messages */
  int err;        /* errno after it, 0 if it succeeded */
};

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

static void trace(struct ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* With SHMHEAP_SCRIBBLE_VERBOSE set, says what each call did. */
static void trace(struct ctx *c, const char *fmt, ...) {
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
static void failed(struct ctx *c, int e) {
  if (e != ENOMEM)
    c->res->refused++;
}

static void arm(void) {
  alarm(CALL_TIMEOUT);
}

static uint64_t rnd(struct ctx *c, uint64_t n) {
  return th_rand_below(&c->rng, n);
}

static size_t rand_size(uint64_t *rng) {
  uint64_t r = th_rand_below(rng, 100);
  if (r < 70)
    return (size_t)th_rand_below(rng, 129);
  if (r < 95)
    return 129 + (size_t)th_rand_below(rng, 896);
  return 1025 + (size_t)th_rand_below(rng, 3072);
}

/* Every live block still holds its pattern. */
static int verify_all(struct ctx *c) {
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
static int adopt(struct ctx *c, void *p, size_t sz) {
  uint64_t hdl = (uint64_t)((unsigned char *)p - c->base), us;
  int exact;
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

static void forget(struct model *m, unsigned i) {
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
  uint64_t hdl = (uint64_t)(p - c->base), us;
  int exact;
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

static int op_check(struct ctx *c) {
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

static int run_ops(struct ctx *c, unsigned nops) {
  for (unsigned k = 0; k < nops; k++)
    if (one_op(c) != 0 || verify_all(c) != 0)
      return -1;
  alarm(0);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Scribbles                                                                 */

struct blk {
  uint64_t off, size;
};

/* The heap's blocks before the scribble, in address order. */
struct layout {
  unsigned nfree, nused;
  struct blk fr[MAX_FREE], used[MAX_LIVE];
};

static int collect_all(const struct shmheap_block *b, void *arg) {
  struct layout *l = arg;
  if (b->used ? l->nused == MAX_LIVE : l->nfree == MAX_FREE)
    return 1;
  struct blk x = {b->offset, b->size};
  if (b->used)
    l->used[l->nused++] = x;
  else
    l->fr[l->nfree++] = x;
  return 0;
}

static uint64_t ld64(const unsigned char *base, uint64_t off) {
  uint64_t v;
  memcpy(&v, base + off, 8);
  return v;
}

static void set_word(struct scribble *s, const unsigned char *base,
                     uint64_t off, uint64_t v) {
  s->off = off;
  s->len = 8;
  memcpy(s->old, base + off, 8);
  memcpy(s->val, &v, 8);
}

static const struct blk *pick(uint64_t *rng, const struct blk *a, unsigned n) {
  return &a[th_rand_below(rng, n)];
}

/* A live block's tag offset plus 16 * K: the block itself (K = 0) or a
 * tag-aligned offset inside its payload. */
static uint64_t into_live(uint64_t *rng, const struct blk *x) {
  return x->off + 16 * th_rand_below(rng, x->size / 16);
}

/* The value a write after free stores: zero, random, a live block's handle
 * or interior handle, or another free block's handle. */
static uint64_t waf_value(uint64_t *rng, const struct layout *l, uint64_t self,
                          const char **what) {
  const struct blk *x = pick(rng, l->used, l->nused);
  for (unsigned i = 0; x->off == self && i < l->nused; i++)
    x = &l->used[i];
  unsigned how = (unsigned)th_rand_below(rng, 5);
  if (x->off == self && (how == 2 || how == 3))
    how = 0; /* no live block but the one just freed */
  switch (how) {
  case 0:
    *what = "zero";
    return 0;
  case 1:
    *what = "random";
    return th_rand(rng);
  case 2:
    *what = "a live block's handle";
    return x->off + SHH_TAG;
  case 3:
    *what = "a live block's interior handle";
    return x->off + SHH_TAG + 8 * (1 + th_rand_below(rng, x->size / 8 - 2));
  default:
    for (unsigned i = 0; i < l->nfree; i++) {
      const struct blk *g = pick(rng, l->fr, l->nfree);
      if (g->off != self) {
        *what = "another free block's handle";
        return g->off + SHH_TAG;
      }
    }
    *what = "zero (no other free block)";
    return 0;
  }
}

static void scribble_waf(struct ctx *c, struct layout *l, struct scribble *s) {
  uint64_t *rng = &c->rng, blk;
  const char *how, *what;
  if (th_rand_below(rng, 2) == 0) {
    blk = pick(rng, l->fr, l->nfree)->off;
    how = "a free block";
  } else {
    /* the caller frees a live block and keeps writing through its pointer */
    unsigned i = (unsigned)th_rand_below(rng, c->m->n);
    blk = c->m->b[i].hdl - SHH_TAG;
    shmheap_free(c->mem, c->base + c->m->b[i].hdl);
    forget(c->m, i);
    how = "a block just freed";
  }
  unsigned w = (unsigned)th_rand_below(rng, 4);
  uint64_t v = waf_value(rng, l, blk, &what);
  set_word(s, c->base, blk + SHH_TAG + 8 * w, v);
  snprintf(s->what, sizeof s->what,
           "payload word %u of %s at %#" PRIx64 " := %s", w, how, blk, what);
}

static void scribble_tag_bit(struct ctx *c, struct layout *l,
                             struct scribble *s) {
  const struct blk *x = pick(&c->rng, l->used, l->nused);
  unsigned bit = (unsigned)th_rand_below(&c->rng, 64);
  set_word(s, c->base, x->off, ld64(c->base, x->off) ^ (1ull << bit));
  snprintf(s->what, sizeof s->what,
           "tag of live block %#" PRIx64 " (size %" PRIu64 "): bit %u flipped",
           x->off, x->size, bit);
}

/* A size a forged tag of X might carry, never X's own. */
static uint64_t forged_size(uint64_t *rng, const struct layout *l,
                            const struct blk *x, const char **what) {
  uint64_t end = x->off + x->size;
  switch (th_rand_below(rng, 6)) {
  case 0:
    for (unsigned i = 0; i < l->nused; i++)
      if (l->used[i].off == end) {
        *what = "spans the next (live) block";
        return x->size + l->used[i].size;
      }
    for (unsigned i = 0; i < l->nfree; i++)
      if (l->fr[i].off == end) {
        *what = "spans the next (free) block";
        return x->size + l->fr[i].size;
      }
    break;
  case 1:
    *what = "larger by a few granules";
    return x->size + 16 * (1 + th_rand_below(rng, 8));
  case 2:
    if (x->size > SHH_MIN_BLOCK) {
      *what = "smaller";
      return x->size -
             16 * (1 + th_rand_below(rng, (x->size - SHH_MIN_BLOCK) / 16));
    }
    break;
  case 3:
    *what = "reaches the heap's end";
    return HEAP_LEN - x->off;
  case 4: {
    const struct blk *y = pick(rng, l->used, l->nused);
    if (y->off > x->off + x->size) {
      *what = "reaches a later live block";
      return y->off - x->off;
    }
    break;
  }
  default:
    break;
  }
  *what = x->size == SHH_MIN_BLOCK ? "larger by one granule" : "the minimum";
  return x->size == SHH_MIN_BLOCK ? x->size + 16 : SHH_MIN_BLOCK;
}

static void scribble_tag_size(struct ctx *c, struct layout *l,
                              struct scribble *s) {
  uint64_t *rng = &c->rng;
  const struct blk *x = pick(rng, l->used, l->nused);
  uint64_t old = ld64(c->base, x->off);
  const char *what;
  uint64_t size = forged_size(rng, l, x, &what);
  int keep_flags = th_rand_below(rng, 2) == 0;
  int keep_check = th_rand_below(rng, 4) != 0;
  uint64_t flags = keep_flags ? old & SHH_F_MASK : th_rand_below(rng, 8);
  uint64_t check = keep_check ? old & ~SHH_LOW_MASK : 0;
  set_word(s, c->base, x->off, check | (size & SHH_SIZE_MASK) | flags);
  snprintf(s->what, sizeof s->what,
           "tag of live block %#" PRIx64 ": size %" PRIu64 " -> %" PRIu64
           " (%s), flags %s (%" PRIu64 "), check bits %s",
           x->off, x->size, size, what, keep_flags ? "kept" : "random", flags,
           keep_check ? "kept" : "zeroed");
}

static const struct {
  uint64_t off;
  const char *name;
} fields[] = {
    {SHH_N_LEFT, "left"},
    {SHH_N_LMAX, "lmax"},
    {SHH_N_RIGHT, "right"},
    {SHH_N_RMAX, "rmax"},
};

static void scribble_index_field(struct ctx *c, struct layout *l,
                                 struct scribble *s) {
  uint64_t *rng = &c->rng;
  const struct blk *f = pick(rng, l->fr, l->nfree);
  unsigned fi = (unsigned)th_rand_below(rng, 4);
  uint64_t old = ld64(c->base, f->off + fields[fi].off), v;
  const char *what;
  switch (th_rand_below(rng, 5)) {
  case 0:
    v = th_rand(rng);
    what = "random";
    break;
  case 1:
    v = th_rand_below(rng, 4096);
    what = "a small number";
    break;
  case 2:
    v = 16 * th_rand_below(rng, HEAP_LEN / 16) + SHH_BLOCK_PHASE;
    what = "a tag-aligned offset";
    break;
  case 3:
    v = old ^ (1ull << th_rand_below(rng, 64));
    what = "one bit flipped";
    break;
  default:
    v = 0;
    what = "zero";
    break;
  }
  if (v == old)
    v ^= 16;
  set_word(s, c->base, f->off + fields[fi].off, v);
  snprintf(s->what, sizeof s->what,
           "%s field of free block %#" PRIx64 " := %s (%#" PRIx64 ")",
           fields[fi].name, f->off, what, v);
}

static void scribble_link_live(struct ctx *c, struct layout *l,
                               struct scribble *s) {
  uint64_t *rng = &c->rng;
  const struct blk *f = pick(rng, l->fr, l->nfree);
  const struct blk *x = pick(rng, l->used, l->nused);
  unsigned fi = th_rand_below(rng, 2) ? 2 : 0; /* left or right */
  uint64_t v = into_live(rng, x);
  set_word(s, c->base, f->off + fields[fi].off, v);
  snprintf(s->what, sizeof s->what,
           "%s link of free block %#" PRIx64 " := %#" PRIx64
           " (live block %#" PRIx64 " + %" PRIu64 ")",
           fields[fi].name, f->off, v, x->off, v - x->off);
}

static void scribble_link_free(struct ctx *c, struct layout *l,
                               struct scribble *s) {
  uint64_t *rng = &c->rng;
  const struct blk *f = pick(rng, l->fr, l->nfree);
  const struct blk *g = f;
  while (g == f)
    g = pick(rng, l->fr, l->nfree);
  unsigned fi = th_rand_below(rng, 2) ? 2 : 0;
  set_word(s, c->base, f->off + fields[fi].off, g->off);
  snprintf(s->what, sizeof s->what,
           "%s link of free block %#" PRIx64 " := free block %#" PRIx64
           " (was %#" PRIx64 ")",
           fields[fi].name, f->off, g->off,
           ld64(c->base, f->off + fields[fi].off));
}

/* A thread id that no longer exists: a child that has been reaped. */
static pid_t dead_tid(void) {
  pid_t pid = fork();
  if (pid == 0)
    _exit(0);
  int st;
  while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  return pid;
}

/* Copies the lock word while the calling thread holds the lock (walk calls
 * its callback under the lock): a word exactly as the library writes it for
 * its owner. */
static int copy_lock_word(const struct shmheap_block *b, void *arg) {
  (void)b;
  struct ctx *c = arg;
  c->m->lock_copy = ld64(c->base, SHH_HDR_LOCK);
  return 1;
}

/* The word the library writes for an owner that then died: a child takes
 * the lock, copies the word and exits. */
static uint64_t dead_owner_word(struct ctx *c) {
  pid_t pid = fork();
  if (pid == 0)
    _exit(shmheap_walk(c->mem, copy_lock_word, c) == 1 ? 0 : 1);
  int st = 0;
  while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? c->m->lock_copy : 0;
}

/* A random lock word naming an owner in this PID namespace (lock.h: bits
 * 44..63 of the word). A random word of another namespace matches its
 * check bits once in 4096 and then names an owner the library must wait
 * for, as for a live holder it cannot see: that is a wait, not damage. */
static uint64_t random_word(uint64_t *rng) {
  struct stat st;
  uint64_t ns = stat("/proc/self/ns/pid", &st) == 0 ? st.st_ino & 0xfffff : 0;
  return (th_rand(rng) & ((1ull << 44) - 1)) | ns << 44;
}

/* The lock (lock.h): a 64-bit word whose low half holds the owner's thread
 * id, whose high half holds check bits and the owner's PID namespace, and 8
 * spare bytes. A caller's scribble cannot forge the check bits; a genuine
 * word of a dead owner is what a crash leaves. */
static void scribble_lock(struct ctx *c, struct layout *l, struct scribble *s) {
  (void)l;
  uint64_t *rng = &c->rng, w[2];
  memcpy(w, c->base + SHH_HDR_LOCK, 16);
  memcpy(s->old, w, 16);
  const char *what;
  switch (th_rand_below(rng, 7)) {
  case 0:
    w[0] = random_word(rng);
    w[1] = th_rand(rng);
    what = "a random word and random spare bytes";
    break;
  case 1:
    w[0] = random_word(rng);
    what = "a random word";
    break;
  case 2:
    w[1] = th_rand(rng);
    what = "random spare bytes";
    break;
  case 3:
    w[0] = (uint32_t)dead_tid();
    what = "a dead thread id (no check bits)";
    break;
  case 4:
    w[0] = dead_owner_word(c);
    what = "the word a dead owner left (check bits valid)";
    break;
  case 5:
    w[0] = (uint32_t)getpid();
    what = "the calling process's pid (no check bits)";
    break;
  default:
    w[0] = (uint32_t)getpid() | 0x80000000u;
    what = "the calling process's pid with the waiters bit";
    break;
  }
  s->off = SHH_HDR_LOCK;
  s->len = 16;
  memcpy(s->val, w, 16);
  snprintf(s->what, sizeof s->what, "lock := %s", what);
}

static void scribble_none(struct ctx *c, struct layout *l, struct scribble *s) {
  (void)c;
  (void)l;
  s->len = 0;
  snprintf(s->what, sizeof s->what, "none");
}

typedef void (*scribble_fn)(struct ctx *, struct layout *, struct scribble *);

static const scribble_fn scribblers[K_N] = {
    scribble_none,      scribble_waf,         scribble_tag_bit,
    scribble_tag_size,  scribble_index_field, scribble_link_live,
    scribble_link_free, scribble_lock,
};

/* ------------------------------------------------------------------------ */
/* A trial                                                                   */

/* Live blocks in address order, then some freed (always the second and
 * the third from last), so the heap has free blocks between live ones. */
static int setup(struct ctx *c) {
  unsigned n = 12 + (unsigned)rnd(c, 40);
  for (unsigned i = 0; i < n; i++) {
    size_t sz = rand_size(&c->rng);
    void *p = shmheap_alloc(c->mem, sz);
    if (p == NULL)
      return -1;
    c->op = "setup";
    if (adopt(c, p, sz) != 0)
      return -1;
  }
  struct live keep[MAX_LIVE];
  unsigned nk = 0;
  for (unsigned i = 0; i < n; i++) {
    if (i == 1 || i == n - 3 || rnd(c, 100) < 35) {
      errno = 0;
      shmheap_free(c->mem, c->base + c->m->b[i].hdl);
      if (errno != 0)
        return -1;
    } else {
      keep[nk++] = c->m->b[i];
    }
  }
  memcpy(c->m->b, keep, nk * sizeof keep[0]);
  c->m->n = nk;
  return shmheap_check(c->mem) == 0 && nk > 0 ? 0 : -1;
}

/* A scribble hits the lock or bookkeeping, never a live block's bytes:
 * those are the test's to watch. */
static int scribble_ok(const struct ctx *c, const struct scribble *s,
                       int kind) {
  if (kind == K_NONE)
    return s->len == 0;
  if (s->len == 0 || s->len > sizeof s->val)
    return 0;
  if (kind == K_LOCK)
    return s->off == SHH_HDR_LOCK;
  if (s->off < SHH_FIRST || s->off + s->len > HEAP_LEN)
    return 0;
  for (unsigned i = 0; i < c->m->n; i++)
    if (s->off < c->m->b[i].hdl + c->m->b[i].usable &&
        c->m->b[i].hdl < s->off + s->len)
      return 0;
  return 1;
}

static void apply(struct ctx *c, struct scribble *s) {
  memcpy(c->base + s->off, s->val, s->len);
}

/* One turn in a forked process of its own, connected by name. */
static int turn_child(struct ctx *c, const char *name, unsigned turn) {
  signal(SIGALRM, SIG_DFL);
  arm();
  c->op = "connect";
  errno = 0;
  c->mem = shmheap_connect(name);
  trace(c, "-> %s", c->mem ? "connected" : "refused");
  if (c->mem == NULL) {
    failed(c, errno);
    return 0;
  }
  c->base = shmheap_underlying(c->mem);
  c->rng = th_mix64(c->rng ^ turn);
  /* a broken promise is in c->res; the exit status is for crashes */
  if (verify_all(c) == 0)
    (void)run_ops(c, OPS_PER_TURN);
  alarm(0);
  shmheap_disconnect(c->mem);
  return 0;
}

static void note_death(struct result *res, int st, const char *who) {
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
    return;
  if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
    res->hang = 1;
  else
    res->crash = 1;
  if (res->why[0] == '\0')
    snprintf(res->why, sizeof res->why, "%s %s %d", who,
             WIFSIGNALED(st) ? "died of signal" : "exited with",
             WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

/* The trial's first process: builds the heap, scribbles, takes the first
 * turn, hands further turns to children and makes the final checks.
 * Returns the exit status for its own process. */
static int run_trial(int kind, unsigned t, const char *name,
                     struct result *res) {
  signal(SIGALRM, SIG_DFL);
  alarm(SETUP_TIMEOUT);
  struct model *m = mmap(NULL, sizeof *m, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  struct ctx c = {.m = m, .res = res};
  c.rng = th_mix64(cfg.seed ^ th_mix64((uint64_t)kind << 32 | t));
  c.mem = shmheap_create(name, HEAP_LEN);
  static struct layout l;
  if (m == MAP_FAILED || c.mem == NULL)
    return res->setup_failed = 1, 0;
  m->n = 0;
  m->gen = 0;
  c.base = shmheap_underlying(c.mem);
  if (setup(&c) != 0 || shmheap_walk(c.mem, collect_all, &l) != 0 ||
      l.nfree < 2 || l.nused < 1)
    return res->setup_failed = 1, 0;
  scribblers[kind](&c, &l, &res->s);
  if (!scribble_ok(&c, &res->s, kind))
    return res->setup_failed = 1, 0; /* a scribble generator is wrong */
  apply(&c, &res->s);
  if (cfg.verbose) {
    fprintf(stderr, "scribble: %s\nlive:", res->s.what);
    for (unsigned i = 0; i < m->n; i++)
      fprintf(stderr, " %#" PRIx64 "+%" PRIu64, m->b[i].hdl, m->b[i].usable);
    fprintf(stderr, "\n");
  }
  uint64_t rng0 = c.rng;

  if (run_ops(&c, OPS_PER_TURN) != 0)
    return 0;
  for (unsigned turn = 1; turn < TURNS; turn++) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
      return res->setup_failed = 1, 0;
    if (pid == 0) {
      struct ctx cc = {.m = m, .res = res, .rng = rng0};
      _exit(turn_child(&cc, name, turn));
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
      ;
    note_death(res, st, turn == 1 ? "turn 1" : "turn 2");
    if (res->violation || res->hang || res->crash)
      return 0;
  }
  /* the library's answers agree with each other and with the test */
  if (op_check(&c) != 0 || verify_all(&c) != 0)
    return 0;
  alarm(0);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Running the trials of a kind                                              */

static void first_spread(int kind, unsigned t, const struct result *r) {
  char old[40] = "", val[40] = "";
  for (unsigned i = 0; i < r->s.len && i < 16; i++) {
    snprintf(old + 2 * i, 3, "%02x", r->s.old[i]);
    snprintf(val + 2 * i, 3, "%02x", r->s.val[i]);
  }
  g_test_message("%s: first spread: seed %" PRIu64
                 " trial %u (rerun: SHMHEAP_SCRIBBLE_SEED=%" PRIu64
                 " SHMHEAP_SCRIBBLE_TRIAL=%u -p /scribble/%s)",
                 kind_names[kind], cfg.seed, t, cfg.seed, t, kind_names[kind]);
  g_test_message("%s:   scribble: %s; %u bytes at offset %#" PRIx64
                 ": %s -> %s (bytes in memory order)",
                 kind_names[kind], r->s.what, r->s.len, r->s.off, old, val);
  g_test_message("%s:   failure: %s", kind_names[kind], r->why);
}

static void tally_trial(int kind, unsigned t, const struct result *r) {
  struct tally *y = &tallies[kind];
  g_assert_false(r->setup_failed);
  y->trials++;
  y->refused += r->refused > 0;
  y->violations += r->violation != 0;
  y->hangs += r->hang != 0;
  y->crashes += r->crash != 0;
  if (r->violation || r->hang || r->crash) {
    if (y->spread == 0)
      first_spread(kind, t, r);
    y->spread++;
  }
}

struct slot {
  pid_t pid;
  unsigned t;
  char name[96];
};

/* Waits for one trial process and accounts for how it ended. */
static void reap_one(struct slot *slots, unsigned *running,
                     struct result *res) {
  int st;
  pid_t pid;
  do
    pid = waitpid(-1, &st, 0);
  while (pid < 0 && errno == EINTR);
  g_assert_cmpint(pid, >, 0);
  for (unsigned i = 0; i < *running; i++) {
    if (slots[i].pid != pid)
      continue;
    note_death(&res[slots[i].t], st, "first process");
    (void)shm_unlink(slots[i].name);
    slots[i] = slots[--*running];
    return;
  }
  g_error("reaped an unknown child %d", (int)pid);
}

static void test_kind(gconstpointer data) {
  int kind = GPOINTER_TO_INT(data);
#ifndef __GLIBC__
  if (kind == K_LOCK) {
    g_test_skip("the lock word's layout is glibc's");
    return;
  }
#endif
  unsigned first = cfg.only >= 0 ? (unsigned)cfg.only : 0;
  unsigned n = cfg.only >= 0 ? 1 : cfg.trials;
  unsigned width = kind == K_LOCK ? LOCK_WIDTH : WIDTH;
  size_t bytes = (size_t)n * sizeof(struct result);
  struct result *res = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  g_assert_true(res != MAP_FAILED);
  struct slot *slots = g_new0(struct slot, width);
  unsigned running = 0;
  gint64 t0 = g_get_monotonic_time();
  for (unsigned i = 0; i < n; i++) {
    if (running == width)
      reap_one(slots, &running, res);
    struct slot *s = &slots[running];
    th_shm_name(s->name, sizeof s->name, "scribble");
    s->t = i;
    fflush(NULL);
    s->pid = fork();
    g_assert_cmpint(s->pid, >=, 0);
    if (s->pid == 0)
      _exit(run_trial(kind, first + i, s->name, &res[i]));
    running++;
  }
  while (running > 0)
    reap_one(slots, &running, res);

  tallies[kind].ran = 1;
  for (unsigned i = 0; i < n; i++)
    tally_trial(kind, first + i, &res[i]);
  const struct tally *y = &tallies[kind];
  g_test_message("%s: seed %" PRIu64 ": trials %u, refused %u, spread %u "
                 "(violations %u, hangs %u, crashes %u), %.1f s",
                 kind_names[kind], cfg.seed, y->trials, y->refused, y->spread,
                 y->violations, y->hangs, y->crashes,
                 (double)(g_get_monotonic_time() - t0) / 1e6);
  g_free(slots);
  g_assert_cmpint(munmap(res, bytes), ==, 0);
  /* the control: an untouched heap refuses nothing */
  if (kind == K_NONE)
    g_assert_cmpuint(y->refused, ==, 0);
  if (y->spread > 0)
    g_test_fail_printf("%s: %u of %u trials spread", kind_names[kind],
                       y->spread, y->trials);
}

/* The table of every kind that ran, one line per kind and one summary. */
static void test_summary(void) {
  unsigned kinds = 0, spread = 0;
  GString *line = g_string_new("scribble summary (seed ");
  g_string_append_printf(line, "%" PRIu64 "):", cfg.seed);
  for (int k = 0; k < K_N; k++) {
    const struct tally *y = &tallies[k];
    if (!y->ran)
      continue;
    kinds++;
    spread += y->spread;
    g_test_message("%-16s trials %5u  refused %5u  spread %5u", kind_names[k],
                   y->trials, y->refused, y->spread);
    g_string_append_printf(line, " %s %u/%u/%u;", kind_names[k], y->trials,
                           y->refused, y->spread);
    /* every trial of the kind was accounted for */
    g_assert_cmpuint(y->trials, ==, cfg.only >= 0 ? 1 : cfg.trials);
  }
  g_string_append_printf(line, " (trials/refused/spread) total spread %u",
                         spread);
  g_test_message("%s", line->str);
  g_string_free(line, TRUE);
  if (kinds == 0)
    g_test_skip("no kind ran");
}

static unsigned long long env_number(const char *name, unsigned long long dflt,
                                     int *set) {
  const char *v = getenv(name);
  *set = v != NULL && *v != '\0';
  if (!*set)
    return dflt;
  char *end;
  errno = 0;
  unsigned long long n = strtoull(v, &end, 0);
  if (errno != 0 || *end != '\0')
    g_error("%s=%s is not a number", name, v);
  return n;
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  int set;
  cfg.trials = (unsigned)env_number("SHMHEAP_SCRIBBLE_TRIALS", 1000, &set);
  cfg.seed = env_number("SHMHEAP_SCRIBBLE_SEED",
                        (uint64_t)g_random_int() << 32 | g_random_int(), &set);
  unsigned long long only = env_number("SHMHEAP_SCRIBBLE_TRIAL", 0, &set);
  cfg.only = set ? (long)only : -1;
  cfg.verbose = getenv("SHMHEAP_SCRIBBLE_VERBOSE") != NULL;
  g_assert_cmpuint(cfg.trials, >, 0);
  for (int k = 0; k < K_N; k++) {
    char path[64];
    snprintf(path, sizeof path, "/scribble/%s", kind_names[k]);
    th_add_data_func(path, GINT_TO_POINTER(k), test_kind);
  }
  th_add_func("/scribble/summary", test_summary);
  return g_test_run();
}

/* hostile-corruption.c: the hostile cases that corrupt a heap's own
 * bytes. A reference heap is built, then many copies of its image, each
 * with its header or one block's tag, footer or index node corrupted, are
 * connected to and used by forked children; every child must end in a
 * documented errno or a working heap, never a crash, a hang, or memory
 * handed out beyond the heap.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostile.h"
#include "layout.h"
#include "shmheap.h"
#include "testutil.h"

enum {
  HDR_AND_TAG = SHH_FIRST + SHH_TAG, /* header plus the first block's tag */
  PARALLEL = 16,                     /* corruption trials running at once */
  TRIAL_ALARM = 10,                  /* seconds a corruption trial may take */
};

static bool in_heap(shmheap_memory_handle mem, size_t len, const void *p,
                    size_t sz) {
  const unsigned char *base = shmheap_underlying(mem);
  const unsigned char *b = p;
  return b >= base + SHMHEAP_OVERHEAD && b <= base + len && sz <= len &&
         (size_t)(b - base) + sz <= len &&
         (uintptr_t)b % SHMHEAP_ALIGNMENT == 0;
}

/* ------------------------------------------------------------------------ */
/* Corruption trials: a reference image, corrupted copies, forked children  */

enum outcome {
  O_WORKS,      /* connected; every call succeeded, check clean */
  O_DETECTED,   /* connected; a call reported EUCLEAN */
  O_REFUSED,    /* connected; a call refused a pointer (EINVAL) only */
  O_C_EINVAL,   /* connect: NULL + EINVAL */
  O_C_EPROTO,   /* connect: NULL + EPROTO */
  O_C_EAGAIN,   /* connect: NULL + EAGAIN */
  O_C_EUCLEAN,  /* connect: NULL + EUCLEAN */
  O_BAD_ERRNO,  /* a call failed with an undocumented errno */
  O_OUTSIDE,    /* memory handed out beyond the heap's data area */
  O_CHILD_FAIL, /* a check in the child, or a sanitizer, failed it */
  O_CRASHED,    /* the child died by a signal */
  O_TIMEOUT,    /* the child hung (SIGALRM) */
  O_N,
};

static const char *const outcome_names[O_N] = {
    "works",
    "detected (EUCLEAN)",
    "pointer refused (EINVAL)",
    "connect EINVAL",
    "connect EPROTO",
    "connect EAGAIN",
    "connect EUCLEAN",
    "BAD ERRNO",
    "OUTSIDE THE HEAP",
    "CHILD CHECK FAILED",
    "CRASHED",
    "HUNG",
};

/* Exit codes of the trial children: outcome + 100 (TH_CHILD_CHECK uses
 * 1..200 for its lines, so both are told apart by range only roughly; the
 * trial children use TRIAL_EXIT, never TH_CHILD_CHECK). */
#define TRIAL_EXIT(o) _exit(100 + (o))

static enum outcome classify(int status) {
  if (WIFSIGNALED(status))
    return WTERMSIG(status) == SIGALRM ? O_TIMEOUT : O_CRASHED;
  int code = WEXITSTATUS(status);
  if (code >= 100 && code < 100 + O_CRASHED)
    return (enum outcome)(code - 100);
  return O_CHILD_FAIL;
}

struct trial_ctx {
  size_t len;
  /* the reference heap's blocks (offsets of tags), from a walk */
  uint64_t used_off[64], used_size[64];
  unsigned nused;
  uint64_t free_off[64], free_size[64];
  unsigned nfree;
};

struct trial {
  char name[64];
  char desc[160];
  uint64_t seed;
  pid_t pid;
  const struct trial_ctx *ctx;
};

/* Tracks what a trial child saw, to pick its outcome. */
struct seen {
  bool euclean, einval, bad;
  int bad_errno;
  const char *bad_what;
};

static void note_errno(struct seen *s, const char *what, int e, bool einval_ok,
                       bool enomem_ok) {
  if (e == EUCLEAN)
    s->euclean = true;
  else if (e == EINVAL && einval_ok)
    s->einval = true;
  else if (e == ENOMEM && enomem_ok)
    ;
  else if (!s->bad) {
    s->bad = true;
    s->bad_errno = e;
    s->bad_what = what;
  }
}

static void finish(const struct trial *t, const struct seen *s) {
  if (s->bad) {
    fprintf(stderr, "trial %s: %s failed with errno %d (%s)\n", t->desc,
            s->bad_what, s->bad_errno, strerror(s->bad_errno));
    TRIAL_EXIT(O_BAD_ERRNO);
  }
  TRIAL_EXIT(s->euclean ? O_DETECTED : s->einval ? O_REFUSED : O_WORKS);
}

static void outside(const struct trial *t, const char *what, const void *p,
                    size_t sz) {
  fprintf(stderr, "trial %s: %s returned %p (%zu bytes) outside the heap\n",
          t->desc, what, p, sz);
  TRIAL_EXIT(O_OUTSIDE);
}

static int count_block(const struct shmheap_block *b, void *arg) {
  (void)b;
  ++*(unsigned *)arg;
  return 0;
}

enum { MAX_GOT = 12 };

/* Allocates (some with calloc) fixed and random sizes and writes them;
 * returns how many it got, in GOT and GSZ. */
static unsigned exercise_alloc(const struct trial *t, shmheap_memory_handle mem,
                               struct seen *s, uint64_t *rng,
                               void *got[MAX_GOT], size_t gsz[MAX_GOT]) {
  unsigned ngot = 0;
  static const size_t sizes[] = {0, 1, 24, 100, 1000, 5000, 40000};
  for (size_t i = 0; i < G_N_ELEMENTS(sizes) + 3; i++) {
    size_t sz = i < G_N_ELEMENTS(sizes) ? sizes[i] : th_rand_below(rng, 3000);
    errno = 0;
    void *p = i % 3 == 2 ? shmheap_calloc(mem, 1, sz) : shmheap_alloc(mem, sz);
    if (p == NULL) {
      note_errno(s, "alloc", errno, false, true);
      continue;
    }
    if (!in_heap(mem, t->ctx->len, p, sz))
      outside(t, "alloc", p, sz);
    memset(p, 0x5a, sz);
    got[ngot] = p;
    gsz[ngot++] = sz;
  }
  return ngot;
}

/* Frees the reference heap's used blocks, in a random order, some through
 * realloc first. */
static void exercise_free_ref(const struct trial *t, shmheap_memory_handle mem,
                              struct seen *s, uint64_t *rng) {
  const struct trial_ctx *c = t->ctx;
  unsigned order[64];
  for (unsigned i = 0; i < c->nused; i++)
    order[i] = i;
  for (unsigned i = c->nused; i > 1; i--) {
    unsigned j = (unsigned)th_rand_below(rng, i);
    unsigned tmp = order[i - 1];
    order[i - 1] = order[j];
    order[j] = tmp;
  }
  for (unsigned k = 0; k < c->nused; k++) {
    unsigned i = order[k];
    void *p = shmheap_handle_to_ptr(mem, c->used_off[i] + SHH_TAG);
    if (p == NULL) {
      s->bad = true;
      s->bad_errno = 0;
      s->bad_what = "handle_to_ptr of a reference block";
      continue;
    }
    errno = 0;
    size_t us = shmheap_usable_size(mem, p);
    if (us == 0)
      note_errno(s, "usable_size", errno, true, false);
    else if (!in_heap(mem, c->len, p, us))
      outside(t, "usable_size", p, us);
    errno = 0;
    if (k % 3 == 0) {
      size_t sz = th_rand_below(rng, 2000);
      void *q = shmheap_realloc(mem, p, sz);
      if (q == NULL) {
        note_errno(s, "realloc", errno, true, true);
        continue;
      }
      if (!in_heap(mem, c->len, q, sz))
        outside(t, "realloc", q, sz);
      memset(q, 0x3c, sz);
      p = q;
      errno = 0;
    }
    shmheap_free(mem, p);
    if (errno != 0)
      note_errno(s, "free", errno, true, false);
  }
}

/* Frees what exercise_alloc got, every other block grown by realloc
 * first. */
static void exercise_release(const struct trial *t, shmheap_memory_handle mem,
                             struct seen *s, void *got[MAX_GOT],
                             const size_t gsz[MAX_GOT], unsigned ngot) {
  for (unsigned i = 0; i < ngot; i++) {
    void *p = got[i];
    if (i % 2 == 0) {
      errno = 0;
      void *q = shmheap_realloc(mem, p, gsz[i] * 2 + 16);
      if (q == NULL) {
        note_errno(s, "realloc", errno, true, true);
      } else {
        if (!in_heap(mem, t->ctx->len, q, gsz[i] * 2 + 16))
          outside(t, "realloc", q, gsz[i] * 2 + 16);
        p = q;
      }
    }
    errno = 0;
    shmheap_free(mem, p);
    if (errno != 0)
      note_errno(s, "free", errno, true, false);
  }
}

/* Allocates, writes, reallocates and frees on a heap that may be damaged:
 * every call succeeds or fails with a documented errno; every block it gets
 * lies inside the data area. Frees the reference heap's used blocks too
 * (when FREE_REF). */
static void exercise(const struct trial *t, shmheap_memory_handle mem,
                     struct seen *s, bool free_ref) {
  uint64_t rng = t->seed;

  errno = 0;
  if (shmheap_check(mem) != 0)
    note_errno(s, "check", errno, false, false);
  struct shmheap_stats st;
  if (shmheap_stats(mem, &st) != 0)
    note_errno(s, "stats", errno, false, false);

  void *got[MAX_GOT];
  size_t gsz[MAX_GOT];
  unsigned ngot = exercise_alloc(t, mem, s, &rng, got, gsz);
  if (free_ref)
    exercise_free_ref(t, mem, s, &rng);
  exercise_release(t, mem, s, got, gsz, ngot);

  errno = 0;
  if (shmheap_check(mem) != 0)
    note_errno(s, "check", errno, false, false);
  errno = 0;
  unsigned nblocks = 0;
  if (shmheap_walk(mem, count_block, &nblocks) != 0)
    note_errno(s, "walk", errno, false, false);
}

/* The trial child: connect to the corrupted copy and use it. */
static int trial_child(void *arg) {
  const struct trial *t = arg;
  errno = 0;
  shmheap_memory_handle mem = shmheap_connect(t->name);
  if (mem == NULL) {
    switch (errno) {
    case EINVAL:
      TRIAL_EXIT(O_C_EINVAL);
    case EPROTO:
      TRIAL_EXIT(O_C_EPROTO);
    case EAGAIN:
      TRIAL_EXIT(O_C_EAGAIN);
    case EUCLEAN:
      TRIAL_EXIT(O_C_EUCLEAN);
    default:
      fprintf(stderr, "trial %s: connect failed with errno %d (%s)\n", t->desc,
              errno, strerror(errno));
      TRIAL_EXIT(O_BAD_ERRNO);
    }
  }
  struct seen s = {0};
  exercise(t, mem, &s, true);
  shmheap_disconnect(mem);
  finish(t, &s);
  return 0;
}

/* Writes IMG (LEN bytes) as the new shared memory object NAME. */
static void write_object(const char *name, const unsigned char *img,
                         size_t len) {
  int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
  g_assert_cmpint(fd, >=, 0);
  g_assert_cmpint(ftruncate(fd, (off_t)len), ==, 0);
  g_assert_cmpint(th_write_all(fd, img, len), ==, 0);
  close(fd);
}

typedef void (*corrupt_fn)(unsigned char *img, const struct trial_ctx *c,
                           uint64_t *rng, char *desc, size_t n);

/* Runs NTRIALS corrupted copies of REF, PARALLEL at a time (a new one starts
 * as soon as one ends), and counts the outcomes into COUNTS. Logs the first
 * few bad ones. The corruptions depend only on SEED: to replay trial N in
 * this process (say under gdb), run the case with SHMHEAP_TEST_TRIAL=N. */
static void run_trials(const unsigned char *ref, const struct trial_ctx *ctx,
                       unsigned ntrials, corrupt_fn corrupt, uint64_t seed,
                       unsigned counts[O_N]) {
  const size_t len = ctx->len;
  unsigned char *img = g_malloc(len);
  struct trial *tr = g_new0(struct trial, PARALLEL);
  unsigned *index = g_new0(unsigned, PARALLEL);
  uint64_t rng = seed;
  unsigned logged = 0, started = 0, running = 0;
  const char *replay = g_getenv("SHMHEAP_TEST_TRIAL");
  long replay_n = replay ? strtol(replay, NULL, 10) : -1;
  while (started < ntrials || running > 0) {
    if (started < ntrials && running < PARALLEL) {
      unsigned slot = 0;
      while (tr[slot].pid != 0)
        slot++;
      struct trial *t = &tr[slot];
      memcpy(img, ref, len);
      corrupt(img, ctx, &rng, t->desc, sizeof t->desc);
      t->seed = th_rand(&rng);
      t->ctx = ctx;
      index[slot] = started++;
      if (replay_n >= 0 && index[slot] != (unsigned long)replay_n)
        continue;
      th_shm_name(t->name, sizeof t->name, "hostile");
      write_object(t->name, img, len);
      if (replay_n >= 0) {
        g_test_message("replaying trial %ld in process: %s", replay_n, t->desc);
        trial_child(t); /* exits */
      }
      t->pid = th_fork_start(trial_child, t, TRIAL_ALARM);
      running++;
      continue;
    }
    if (running == 0)
      break;
    int status;
    pid_t pid;
    do
      pid = waitpid(-1, &status, 0);
    while (pid < 0 && errno == EINTR);
    g_assert_cmpint(pid, >, 0);
    unsigned slot = 0;
    while (slot < PARALLEL && tr[slot].pid != pid)
      slot++;
    g_assert_cmpuint(slot, <, PARALLEL);
    struct trial *t = &tr[slot];
    enum outcome o = classify(status);
    counts[o]++;
    if (o >= O_BAD_ERRNO && logged++ < 10)
      g_test_message(
          "trial %u (%s): %s (%s %d)", index[slot], t->desc, outcome_names[o],
          WIFSIGNALED(status) ? "signal" : "exit code",
          WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    shm_unlink(t->name);
    t->pid = 0;
    running--;
  }
  g_free(index);
  g_free(tr);
  g_free(img);
}

static void report(const char *what, unsigned ntrials,
                   const unsigned counts[O_N]) {
  GString *s = g_string_new(NULL);
  g_string_append_printf(s, "%s: %u corruptions:", what, ntrials);
  for (int o = 0; o < O_N; o++)
    if (counts[o])
      g_string_append_printf(s, " %s %u;", outcome_names[o], counts[o]);
  g_test_message("%s", s->str);
  g_string_free(s, TRUE);
  for (int o = O_BAD_ERRNO; o < O_N; o++)
    if (counts[o])
      g_error("%s: %u trials %s (see the messages above and stderr)", what,
              counts[o], outcome_names[o]);
}

static int collect_block(const struct shmheap_block *b, void *arg) {
  struct trial_ctx *c = arg;
  if (b->used && c->nused < 64) {
    c->used_off[c->nused] = b->offset;
    c->used_size[c->nused++] = b->size;
  } else if (!b->used && c->nfree < 64) {
    c->free_off[c->nfree] = b->offset;
    c->free_size[c->nfree++] = b->size;
  }
  return 0;
}

/* A heap at rest with used blocks and free blocks between them (so the free
 * index has several nodes), copied into a buffer; CTX gets its blocks. */
static unsigned char *make_reference(struct trial_ctx *ctx, size_t len) {
  char name[64];
  th_shm_name(name, sizeof name, "hostile");
  shmheap_memory_handle mem = shmheap_create(name, len);
  g_assert_nonnull(mem);
  uint64_t rng = 0x4ef;
  void *p[40];
  for (unsigned i = 0; i < 40; i++) {
    p[i] = shmheap_alloc(mem, th_rand_below(&rng, 600));
    g_assert_nonnull(p[i]);
  }
  for (unsigned i = 0; i < 40; i += 3)
    shmheap_free(mem, p[i]);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  memset(ctx, 0, sizeof *ctx);
  ctx->len = len;
  g_assert_cmpint(shmheap_walk(mem, collect_block, ctx), ==, 0);
  g_assert_cmpuint(ctx->nused, >, 20);
  g_assert_cmpuint(ctx->nfree, >, 10);
  unsigned char *ref = g_malloc(len);
  memcpy(ref, shmheap_underlying(mem), len);
  shmheap_destroy(NULL, mem);
  return ref;
}

/* Values that make a header field or a tag wrong in interesting ways. */
static uint64_t garbage_value(uint64_t *rng, size_t len) {
  switch (th_rand_below(rng, 12)) {
  case 0:
    return 0;
  case 1:
    return ~(uint64_t)0;
  case 2:
    return th_rand_below(rng, 4);
  case 3:
    return len;
  case 4:
    return len + 8 * th_rand_below(rng, 4);
  case 5:
    return len - 8 * th_rand_below(rng, 4);
  case 6:
    return (uint64_t)1 << th_rand_below(rng, 64);
  case 7:
    return th_rand_below(rng, len);
  case 8:
    return th_rand_below(rng, len) & ~(uint64_t)15;
  case 9:
    return (th_rand_below(rng, len) & ~(uint64_t)15) | 8;
  case 10:
    return (uint64_t)INT32_MAX + th_rand_below(rng, 3);
  default:
    return th_rand(rng);
  }
}

/* Applies one random corruption to the N bytes at IMG + OFF: random byte
 * values, bit flips, or a whole 2-, 4- or 8-byte field of garbage. */
static void corrupt_range(unsigned char *img, size_t off, size_t n, size_t len,
                          uint64_t *rng, char *desc, size_t dn) {
  int w;
  switch (th_rand_below(rng, 3)) {
  case 0: {
    unsigned k = 1 + (unsigned)th_rand_below(rng, 4);
    w = snprintf(desc, dn, "%u random bytes at", k);
    for (unsigned i = 0; i < k; i++) {
      size_t at = off + th_rand_below(rng, n);
      img[at] = (unsigned char)th_rand(rng);
      w += snprintf(desc + w, dn - (size_t)w, " %zu", at);
    }
    break;
  }
  case 1: {
    unsigned k = 1 + (unsigned)th_rand_below(rng, 3);
    w = snprintf(desc, dn, "%u bit flips at", k);
    for (unsigned i = 0; i < k; i++) {
      size_t bit = th_rand_below(rng, n * 8);
      img[off + bit / 8] ^= (unsigned char)(1u << (bit % 8));
      w += snprintf(desc + w, dn - (size_t)w, " %zu.%zu", off + bit / 8,
                    bit % 8);
    }
    break;
  }
  default: {
    static const size_t widths[] = {2, 4, 8};
    size_t fw = widths[th_rand_below(rng, 3)];
    if (fw > n)
      fw = n;
    size_t at = off + th_rand_below(rng, n / fw) * fw;
    uint64_t v = garbage_value(rng, len);
    memcpy(img + at, &v, fw); /* little-endian: the low bytes */
    snprintf(desc, dn, "field [%zu,+%zu) = %#" PRIx64, at, fw, v);
    break;
  }
  }
}

/* ------------------------------------------------------------------------ */
/* /hostile/header-corruption                                                */

static void corrupt_header(unsigned char *img, const struct trial_ctx *c,
                           uint64_t *rng, char *desc, size_t n) {
  corrupt_range(img, 0, HDR_AND_TAG, c->len, rng, desc, n);
  if (th_rand_below(rng, 5) == 0) { /* sometimes two at once */
    size_t w = strlen(desc);
    if (w + 3 < n) {
      memcpy(desc + w, " + ", 4);
      corrupt_range(img, 0, HDR_AND_TAG, c->len, rng, desc + w + 3, n - w - 3);
    }
  }
}

enum { HEADER_TRIALS = 1000 };

static void test_header_corruption(void) {
  th_watchdog_arm(240, "/hostile/header-corruption");
  struct trial_ctx ctx;
  unsigned char *ref = make_reference(&ctx, 64u << 10);
  unsigned counts[O_N] = {0};
  run_trials(ref, &ctx, HEADER_TRIALS, corrupt_header, 0x4eade7, counts);
  report("header-corruption", HEADER_TRIALS, counts);
  /* the trials really corrupted something that matters */
  g_assert_cmpuint(counts[O_C_EINVAL] + counts[O_C_EPROTO] +
                       counts[O_C_EAGAIN] + counts[O_C_EUCLEAN] +
                       counts[O_DETECTED],
                   >, HEADER_TRIALS / 4);
  g_free(ref);
}

/* ------------------------------------------------------------------------ */
/* /hostile/tag-corruption                                                   */

/* One corruption of a block's bookkeeping: a used block's tag, a free
 * block's tag, its footer, or its node in the free index. */
static void corrupt_tag(unsigned char *img, const struct trial_ctx *c,
                        uint64_t *rng, char *desc, size_t n) {
  int w;
  size_t off, sz;
  switch (th_rand_below(rng, 4)) {
  case 0: {
    unsigned i = (unsigned)th_rand_below(rng, c->nused);
    off = c->used_off[i];
    sz = SHH_TAG;
    w = snprintf(desc, n, "used tag @%zu: ", off);
    break;
  }
  case 1: {
    unsigned i = (unsigned)th_rand_below(rng, c->nfree);
    off = c->free_off[i];
    sz = SHH_TAG;
    w = snprintf(desc, n, "free tag @%zu: ", off);
    break;
  }
  case 2: {
    unsigned i = (unsigned)th_rand_below(rng, c->nfree);
    off = c->free_off[i] + c->free_size[i] - SHH_FOOTER;
    sz = SHH_TAG;
    w = snprintf(desc, n, "free footer @%zu: ", off);
    break;
  }
  default: {
    unsigned i = (unsigned)th_rand_below(rng, c->nfree);
    off = c->free_off[i] + SHH_TAG;
    sz = SHH_MIN_BLOCK - SHH_TAG - SHH_FOOTER; /* the four index words */
    w = snprintf(desc, n, "free index node @%zu: ", off);
    break;
  }
  }
  corrupt_range(img, off, sz, c->len, rng, desc + w, n - (size_t)w);
}

enum { TAG_TRIALS = 800 };

static void test_tag_corruption(void) {
  th_watchdog_arm(240, "/hostile/tag-corruption");
  struct trial_ctx ctx;
  unsigned char *ref = make_reference(&ctx, 64u << 10);
  unsigned counts[O_N] = {0};
  run_trials(ref, &ctx, TAG_TRIALS, corrupt_tag, 0x7a9, counts);
  report("tag-corruption", TAG_TRIALS, counts);
  g_assert_cmpuint(counts[O_DETECTED], >, TAG_TRIALS / 4);
  g_free(ref);
}

void hostile_corruption_cases(void) {
  th_add_func("/hostile/header-corruption", test_header_corruption);
  th_add_func("/hostile/tag-corruption", test_tag_corruption);
}

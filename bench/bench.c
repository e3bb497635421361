/* The shmheap benchmark suite (issue 3): fixed-seed operation streams run
 * against every allocator in one process, repetition by repetition, so that
 * the machine's changing CPU speed hits every allocator alike. It owns the
 * workloads, the timing, the statistics (medians and paired ratios), the
 * table, the CSV files and the SVG chart. Allocators plug in through a
 * small table of create/open/close/remove calls plus workload loops that are
 * instantiated per allocator, so each loop calls its allocator directly.
 *
 * Workloads (ns per alloc+free pair unless said otherwise):
 *   lifo-small        alloc(16..256) then free at once, 1M times
 *   random-live-1k/10k/100k  N live blocks of 16..1024 bytes; each step frees
 *                     a random live block and allocates a new one; the fill
 *                     and a warm-up of N steps are not timed
 *   fill-fragment     64 MiB heap, rounds of 1000 allocs (16..4096) and 300
 *                     random frees until the first alloc fails; reports live
 *                     requested bytes / heap size at that point
 *   two-process       processes pinned to their own CPUs, attached by name,
 *                     run lifo-small on one heap for a fixed time window;
 *                     total pairs/s with 1 and 2 processes, and their ratio
 *
 * Beside lifo-small the suite times shmheap's lock floor: the two lock and
 * unlock pairs of a robust, process-shared mutex in a shared mapping that
 * every shmheap alloc+free pair must take, with no allocator work at all.
 * It runs right after shmheap's lifo-small in each repetition, so the two
 * see the same CPU speed and the difference is the allocator's own work.
 * After it comes a bare CAS lock (acquire CAS, release store, no waiters, no
 * robustness): the least that any heap shared under one lock pays per pair.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmheap.h"
#if SHMHEAP_BENCH_BOOST
#include "boost-ipc.h"
#endif

#ifndef SHMHEAP_BENCH_BUILDTYPE
#define SHMHEAP_BENCH_BUILDTYPE "unknown"
#endif

#define ALWAYS_INLINE static inline __attribute__((always_inline))

enum {
  MAX_REPS = 99,
  MAX_ALLOCATORS = 4,
  FRAG_MAX_LIVE = 1 << 22, /* far above what 64 MiB of >=16-byte blocks holds */
  LIFO_STREAM = 1 << 20,   /* power of two: two-process wraps with a mask */
};

/* ------------------------------------------------------------------------ */
/* Random numbers and time                                                  */

static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

/* Uniform in [lo, hi], by multiply-shift (no modulo bias worth measuring). */
ALWAYS_INLINE uint32_t rand_range(uint64_t *state, uint32_t lo, uint32_t hi) {
  const uint64_t r = splitmix64(state) >> 32;
  return lo + (uint32_t)((r * ((uint64_t)hi - lo + 1)) >> 32);
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Every block is written once, so no allocator gets credit for memory it
 * hands out but never lets the caller touch, and the compiler cannot drop
 * an alloc/free pair whose result looks unused. */
ALWAYS_INLINE void touch(void *p, size_t i) {
  *(volatile unsigned char *)p = (unsigned char)i;
}

/* ------------------------------------------------------------------------ */
/* Workload loops, generic over the allocator                               */

typedef void *(*alloc_fn)(void *ctx, size_t sz);
typedef void (*free_fn)(void *ctx, void *ptr);

struct frag_out {
  uint64_t ops;        /* allocations plus frees, the failed one excluded */
  uint64_t live_bytes; /* requested bytes live at the first failure */
  uint64_t live;       /* live blocks then */
  int overflow;        /* the bookkeeping arrays ran out (should not happen) */
};

struct frag_state {
  void **ptr;
  uint32_t *size;
};

/* The streams' seeds; --seed adds its value to each. */
static uint64_t SEED_LIFO = 0x5eed0001;
static uint64_t SEED_LIVE = 0x5eed0002;
static uint64_t SEED_FRAG = 0x5eed0003;

ALWAYS_INLINE int lifo_loop(void *ctx, alloc_fn A, free_fn F,
                            const uint16_t *sizes, size_t n) {
  for (size_t i = 0; i < n; i++) {
    void *p = A(ctx, sizes[i]);
    if (p == NULL)
      return -1;
    touch(p, i);
    F(ctx, p);
  }
  return 0;
}

/* lifo-small until DEADLINE (checked every 1024 pairs); returns the pairs. */
ALWAYS_INLINE uint64_t lifo_until_loop(void *ctx, alloc_fn A, free_fn F,
                                       const uint16_t *sizes, size_t start,
                                       double deadline) {
  uint64_t pairs = 0;
  size_t i = start;
  do {
    for (int k = 0; k < 1024; k++, i++) {
      void *p = A(ctx, sizes[i & (LIFO_STREAM - 1)]);
      if (p == NULL)
        return 0;
      touch(p, i);
      F(ctx, p);
    }
    pairs += 1024;
  } while (now_ns() < deadline);
  return pairs;
}

ALWAYS_INLINE int fill_loop(void *ctx, alloc_fn A, void **slots,
                            const uint16_t *sizes, size_t n) {
  for (size_t i = 0; i < n; i++) {
    void *p = A(ctx, sizes[i]);
    if (p == NULL)
      return -1;
    touch(p, i);
    slots[i] = p;
  }
  return 0;
}

ALWAYS_INLINE int steps_loop(void *ctx, alloc_fn A, free_fn F, void **slots,
                             const uint32_t *victims, const uint16_t *sizes,
                             size_t n) {
  for (size_t i = 0; i < n; i++) {
    const uint32_t j = victims[i];
    F(ctx, slots[j]);
    void *p = A(ctx, sizes[i]);
    if (p == NULL)
      return -1;
    touch(p, i);
    slots[j] = p;
  }
  return 0;
}

ALWAYS_INLINE void release_loop(void *ctx, free_fn F, void **slots, size_t n) {
  for (size_t i = 0; i < n; i++)
    F(ctx, slots[i]);
}

/* The stream is drawn while it runs (it depends on how many blocks are
 * live), from a fixed seed, so it is the same for every allocator up to
 * the point where that allocator fails. */
ALWAYS_INLINE void frag_loop(void *ctx, alloc_fn A, free_fn F,
                             struct frag_state *st, struct frag_out *out) {
  uint64_t seed = SEED_FRAG;
  uint64_t ops = 0, bytes = 0;
  size_t live = 0;
  memset(out, 0, sizeof *out);
  for (;;) {
    for (int k = 0; k < 1000; k++) {
      const uint32_t sz = rand_range(&seed, 16, 4096);
      void *p = A(ctx, sz);
      if (p == NULL)
        goto failed;
      touch(p, ops);
      if (live == FRAG_MAX_LIVE) {
        out->overflow = 1;
        goto failed;
      }
      st->ptr[live] = p;
      st->size[live] = sz;
      live++;
      bytes += sz;
      ops++;
    }
    for (int k = 0; k < 300; k++) {
      const uint32_t j = rand_range(&seed, 0, (uint32_t)live - 1);
      F(ctx, st->ptr[j]);
      bytes -= st->size[j];
      live--;
      st->ptr[j] = st->ptr[live];
      st->size[j] = st->size[live];
      ops++;
    }
  }
failed:
  out->ops = ops;
  out->live_bytes = bytes;
  out->live = live;
}

struct loops {
  int (*lifo)(void *ctx, const uint16_t *sizes, size_t n);
  uint64_t (*lifo_until)(void *ctx, const uint16_t *sizes, size_t start,
                         double deadline);
  int (*fill)(void *ctx, void **slots, const uint16_t *sizes, size_t n);
  int (*steps)(void *ctx, void **slots, const uint32_t *victims,
               const uint16_t *sizes, size_t n);
  void (*release)(void *ctx, void **slots, size_t n);
  void (*frag)(void *ctx, struct frag_state *st, struct frag_out *out);
};

/* One set of loops per allocator: A and F are constants in each, so the
 * compiler turns them into direct calls. */
#define DEFINE_LOOPS(tag, A, F)                                                \
  static int tag##_lifo(void *ctx, const uint16_t *sizes, size_t n) {          \
    return lifo_loop(ctx, A, F, sizes, n);                                     \
  }                                                                            \
  static uint64_t tag##_lifo_until(void *ctx, const uint16_t *sizes,           \
                                   size_t start, double deadline) {            \
    return lifo_until_loop(ctx, A, F, sizes, start, deadline);                 \
  }                                                                            \
  static int tag##_fill(void *ctx, void **slots, const uint16_t *sizes,        \
                        size_t n) {                                            \
    return fill_loop(ctx, A, slots, sizes, n);                                 \
  }                                                                            \
  static int tag##_steps(void *ctx, void **slots, const uint32_t *victims,     \
                         const uint16_t *sizes, size_t n) {                    \
    return steps_loop(ctx, A, F, slots, victims, sizes, n);                    \
  }                                                                            \
  static void tag##_release(void *ctx, void **slots, size_t n) {               \
    release_loop(ctx, F, slots, n);                                            \
  }                                                                            \
  static void tag##_frag(void *ctx, struct frag_state *st,                     \
                         struct frag_out *out) {                               \
    frag_loop(ctx, A, F, st, out);                                             \
  }                                                                            \
  static const struct loops tag##_loops = {                                    \
      tag##_lifo,  tag##_lifo_until, tag##_fill,                               \
      tag##_steps, tag##_release,    tag##_frag,                               \
  }

/* ------------------------------------------------------------------------ */
/* Allocators                                                               */

/* Names are given without the leading slash (Boost adds its own);
 * shmheap's adaptor adds it. */
static void shm_path(char *buf, size_t n, const char *name) {
  snprintf(buf, n, "/%s", name);
}

static void *shm_create(const char *name, size_t len) {
  char path[128];
  shm_path(path, sizeof path, name);
  return shmheap_create(path, len);
}

static void *shm_open_heap(const char *name) {
  char path[128];
  shm_path(path, sizeof path, name);
  return shmheap_connect(path);
}

static void shm_close(void *ctx) {
  shmheap_disconnect(ctx);
}

static void shm_remove(const char *name) {
  char path[128];
  shm_path(path, sizeof path, name);
  shmheap_destroy(path, NULL);
}

static void *shm_alloc(void *ctx, size_t sz) {
  return shmheap_alloc(ctx, sz);
}
static void shm_free(void *ctx, void *p) {
  shmheap_free(ctx, p);
}
DEFINE_LOOPS(shm, shm_alloc, shm_free);

static int libc_dummy;
static void *libc_create(const char *name, size_t len) {
  (void)name;
  (void)len;
  return &libc_dummy;
}
static void *libc_open(const char *name) {
  (void)name;
  return &libc_dummy;
}
static void libc_close(void *ctx) {
  (void)ctx;
}
static void libc_remove(const char *name) {
  (void)name;
}
static void *libc_alloc(void *ctx, size_t sz) {
  (void)ctx;
  return malloc(sz);
}
static void libc_free(void *ctx, void *p) {
  (void)ctx;
  free(p);
}
DEFINE_LOOPS(libc, libc_alloc, libc_free);

#if SHMHEAP_BENCH_BOOST
static void bx_remove_quiet(const char *name) {
  (void)bx_remove(name);
}
DEFINE_LOOPS(bxrb, bx_rbtree_alloc, bx_rbtree_free);
DEFINE_LOOPS(bxsf, bx_seqfit_alloc, bx_seqfit_free);
#endif

struct allocator {
  const char *name;
  bool shared;    /* a named heap in shared memory that can run out */
  bool slow_scan; /* first fit by a linear list walk: steps are capped */
  void *(*create)(const char *name, size_t len);
  void *(*open)(const char *name);
  void (*close)(void *ctx);
  void (*remove)(const char *name);
  const struct loops *loops;
  const char *color; /* in the chart */
};

static const struct allocator all_allocators[] = {
    {"shmheap", true, false, shm_create, shm_open_heap, shm_close, shm_remove,
     &shm_loops, "#d62728"},
    {"glibc", false, false, libc_create, libc_open, libc_close, libc_remove,
     &libc_loops, "#7f7f7f"},
#if SHMHEAP_BENCH_BOOST
    {"boost-rbtree", true, false, bx_rbtree_create, bx_rbtree_open,
     bx_rbtree_close, bx_remove_quiet, &bxrb_loops, "#1f77b4"},
    {"boost-seqfit", true, true, bx_seqfit_create, bx_seqfit_open,
     bx_seqfit_close, bx_remove_quiet, &bxsf_loops, "#2ca02c"},
#endif
};
enum { N_ALL_ALLOCATORS = sizeof all_allocators / sizeof all_allocators[0] };

/* ------------------------------------------------------------------------ */
/* Names in /dev/shm, removed even when the run is killed                   */

static char current_path[128]; /* "/name" of the segment that exists now */
static volatile sig_atomic_t have_current;
static unsigned name_counter;

static void on_fatal_signal(int sig) {
  if (have_current)
    shm_unlink(current_path); /* both shmheap and Boost live in /dev/shm */
  signal(sig, SIG_DFL);
  raise(sig);
}

static void new_name(char *buf, size_t n, const char *alloc_name) {
  snprintf(buf, n, "shmheap-bench-%s-%ld-%u", alloc_name, (long)getpid(),
           name_counter++);
}

static void *segment_create(const struct allocator *a, const char *name,
                            size_t len) {
  if (!a->shared)
    return a->create(name, len);
  a->remove(name); /* a stale object of this name would make create fail */
  snprintf(current_path, sizeof current_path, "/%s", name);
  have_current = 1;
  void *ctx = a->create(name, len);
  if (ctx == NULL) {
    fprintf(stderr, "bench: cannot create %s heap %s of %zu bytes: %s\n",
            a->name, name, len, strerror(errno));
    have_current = 0;
  }
  return ctx;
}

static void segment_destroy(const struct allocator *a, const char *name,
                            void *ctx) {
  a->close(ctx);
  if (a->shared) {
    a->remove(name);
    have_current = 0;
  }
}

/* ------------------------------------------------------------------------ */
/* Configuration                                                            */

enum workload_kind { W_LIFO, W_LIVE, W_FRAG, W_TWOPROC };

struct workload {
  const char *name;
  enum workload_kind kind;
  size_t live;      /* live blocks (the chart's x) */
  size_t heap_len;  /* bytes of every shared heap in this workload */
  size_t steps;     /* timed pairs at --scale 1 */
  size_t slow_cap;  /* timed pairs for slow_scan allocators, 0 = no cap */
  size_t slow_warm; /* their warm-up steps, 0 = the full warm-up (live) */
  int slow_reps;    /* their repetitions, 0 = all */
  bool selected;
};

static struct workload workloads[] = {
    {"lifo-small", W_LIFO, 0, 16 * 1024 * 1024, 1000000, 0, 0, 0, true},
    {"random-live-1k", W_LIVE, 1000, 16 * 1024 * 1024, 1000000, 200000, 0, 0,
     true},
    {"random-live-10k", W_LIVE, 10000, 64 * 1024 * 1024, 1000000, 20000, 0, 0,
     true},
    /* boost-seqfit: ~400 us a pair after the full warm-up, which alone
     * takes ~40 s: it runs in the first repetition only */
    {"random-live-100k", W_LIVE, 100000, 256 * 1024 * 1024, 1000000, 2000, 0, 1,
     true},
    {"fill-fragment", W_FRAG, 0, 64 * 1024 * 1024, 0, 0, 0, 0, true},
    {"two-process", W_TWOPROC, 0, 16 * 1024 * 1024, 0, 0, 0, 0, true},
};
enum { N_WORKLOADS = sizeof workloads / sizeof workloads[0] };

struct options {
  int reps;
  double scale;
  double window_ms;
  bool no_cap;
  bool hot_path;
  const char *out_dir;
};

static struct options opt = {5, 1.0, 500.0, false, false, "."};

static const struct allocator *allocs[MAX_ALLOCATORS];
static int n_allocs;

/* ------------------------------------------------------------------------ */
/* Results: one row per reported figure, one value per allocator and rep    */

enum row_id {
  R_LIFO,
  R_LOCK_FLOOR, /* shmheap's column only: 2 x (lock + unlock) per pair */
  R_LIFO_NET,   /* shmheap's column only: lifo-small minus the floor */
  R_CAS_FLOOR,  /* shmheap's column only: the cheapest lock there is, x2 */
  R_LIVE_1K,
  R_LIVE_10K,
  R_LIVE_100K,
  R_FRAG_NS,
  R_FRAG_UTIL,
  R_TWO_1P,
  R_TWO_2P,
  R_TWO_RATIO,
  N_ROWS
};

struct row {
  const char *label;
  const char *unit;
  bool higher_is_better;
  size_t live; /* for the chart, rows R_LIFO..R_LIVE_100K */
};

static const struct row rows[N_ROWS] = {
    [R_LIFO] = {"lifo-small", "ns/pair", false, 1},
    [R_LOCK_FLOOR] = {"lock floor (lifo)", "ns/pair", false, 0},
    [R_LIFO_NET] = {"lifo minus floor", "ns/pair", false, 0},
    [R_CAS_FLOOR] = {"bare CAS lock (lifo)", "ns/pair", false, 0},
    [R_LIVE_1K] = {"random-live-1k", "ns/pair", false, 1000},
    [R_LIVE_10K] = {"random-live-10k", "ns/pair", false, 10000},
    [R_LIVE_100K] = {"random-live-100k", "ns/pair", false, 100000},
    [R_FRAG_NS] = {"fill-fragment", "ns/pair", false, 0},
    [R_FRAG_UTIL] = {"fill-fragment util", "%", true, 0},
    [R_TWO_1P] = {"two-process 1 proc", "Mpairs/s", true, 0},
    [R_TWO_2P] = {"two-process 2 procs", "Mpairs/s", true, 0},
    [R_TWO_RATIO] = {"two-process 2p/1p", "x", true, 0},
};

/* NAN marks a value not measured (that allocator, that rep). */
static double result[N_ROWS][MAX_ALLOCATORS][MAX_REPS];
static size_t timed_steps[N_ROWS][MAX_ALLOCATORS]; /* for the CSV and notes */
static size_t warm_steps[N_ROWS][MAX_ALLOCATORS];
static bool capped[N_ROWS][MAX_ALLOCATORS];

static FILE *raw_csv;

static void record(enum row_id r, int ai, int rep, double value, size_t steps) {
  result[r][ai][rep] = value;
  timed_steps[r][ai] = steps;
  if (raw_csv != NULL)
    fprintf(raw_csv, "%s,%s,%s,%d,%.6g,%zu\n", rows[r].label, rows[r].unit,
            allocs[ai]->name, rep, value, steps);
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median of the measured values in V[0..n), NAN when there are none. */
static double median(const double *v, int n) {
  double tmp[MAX_REPS];
  int k = 0;
  for (int i = 0; i < n; i++)
    if (!isnan(v[i]))
      tmp[k++] = v[i];
  if (k == 0)
    return NAN;
  qsort(tmp, (size_t)k, sizeof tmp[0], cmp_double);
  return k % 2 ? tmp[k / 2] : (tmp[k / 2 - 1] + tmp[k / 2]) / 2;
}

static double row_median(enum row_id r, int ai) {
  return median(result[r][ai], opt.reps);
}

/* Median over reps of shmheap's advantage over allocator OTHER in that
 * rep: other/shmheap for times, shmheap/other for rates and utilisation,
 * so above 1 always means shmheap did better. */
static double paired_ratio(enum row_id r, int shm, int other) {
  double v[MAX_REPS];
  for (int i = 0; i < opt.reps; i++) {
    const double s = result[r][shm][i], o = result[r][other][i];
    v[i] = rows[r].higher_is_better ? s / o : o / s;
  }
  return median(v, opt.reps);
}

/* ------------------------------------------------------------------------ */
/* Streams                                                                  */

static uint16_t *lifo_sizes;
struct live_stream {
  uint16_t *fill;
  uint16_t *sizes;
  uint32_t *victims;
  size_t n_steps; /* warm-up plus timed */
};
static struct live_stream live_streams[N_WORKLOADS];
static struct frag_state frag_state;

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (p == NULL) {
    fprintf(stderr, "bench: out of memory\n");
    exit(1);
  }
  return p;
}

static size_t scaled(size_t n) {
  const double v = (double)n * opt.scale;
  return v < 1 ? 1 : (size_t)v;
}

static void make_streams(void) {
  uint64_t seed = SEED_LIFO;
  lifo_sizes = xmalloc(LIFO_STREAM * sizeof *lifo_sizes);
  for (size_t i = 0; i < LIFO_STREAM; i++)
    lifo_sizes[i] = (uint16_t)rand_range(&seed, 16, 256);

  for (int w = 0; w < N_WORKLOADS; w++) {
    const struct workload *wl = &workloads[w];
    if (wl->kind != W_LIVE || !wl->selected)
      continue;
    struct live_stream *ls = &live_streams[w];
    seed = SEED_LIVE + wl->live; /* each N its own stream */
    ls->n_steps = wl->live + scaled(wl->steps);
    ls->fill = xmalloc(wl->live * sizeof *ls->fill);
    ls->sizes = xmalloc(ls->n_steps * sizeof *ls->sizes);
    ls->victims = xmalloc(ls->n_steps * sizeof *ls->victims);
    for (size_t i = 0; i < wl->live; i++)
      ls->fill[i] = (uint16_t)rand_range(&seed, 16, 1024);
    for (size_t i = 0; i < ls->n_steps; i++) {
      ls->victims[i] = rand_range(&seed, 0, (uint32_t)wl->live - 1);
      ls->sizes[i] = (uint16_t)rand_range(&seed, 16, 1024);
    }
  }
  frag_state.ptr = xmalloc(FRAG_MAX_LIVE * sizeof *frag_state.ptr);
  frag_state.size = xmalloc(FRAG_MAX_LIVE * sizeof *frag_state.size);
}

/* ------------------------------------------------------------------------ */
/* Running one workload on one allocator                                    */

static enum row_id live_row(const struct workload *wl) {
  switch (wl->live) {
  case 1000:
    return R_LIVE_1K;
  case 10000:
    return R_LIVE_10K;
  default:
    return R_LIVE_100K;
  }
}

static void fail_run(const struct allocator *a, const struct workload *wl,
                     const char *what) {
  fprintf(stderr, "bench: %s on %s: %s failed (errno %d: %s)\n", wl->name,
          a->name, what, errno, strerror(errno));
}

static void run_lifo(const struct workload *wl, int ai, int rep) {
  const struct allocator *a = allocs[ai];
  char name[96];
  new_name(name, sizeof name, a->name);
  void *ctx = segment_create(a, name, wl->heap_len);
  if (ctx == NULL)
    return;
  const size_t n = scaled(wl->steps);
  const double t0 = now_ns();
  size_t done = 0;
  int rc = 0;
  while (rc == 0 && done < n) { /* the stream repeats past 1M pairs */
    const size_t chunk = n - done < LIFO_STREAM ? n - done : LIFO_STREAM;
    rc = a->loops->lifo(ctx, lifo_sizes, chunk);
    done += chunk;
  }
  const double t1 = now_ns();
  if (rc != 0)
    fail_run(a, wl, "alloc");
  else
    record(R_LIFO, ai, rep, (t1 - t0) / (double)n, n);
  segment_destroy(a, name, ctx);
}

/* The floor under shmheap's lifo-small: per pair, exactly the locking its
 * hot path does (alloc and free each take and drop the heap's robust,
 * process-shared mutex), on such a mutex in a MAP_SHARED page, as many
 * times as lifo-small has pairs. Recorded in shmheap's column (AI), with
 * shmheap's lifo-small of this rep minus the floor beside it. */
static void run_lock_floor(const struct workload *wl, int ai, int rep) {
  pthread_mutex_t *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    perror("bench: lock floor: mmap");
    return;
  }
  pthread_mutexattr_t attr;
  int rc = pthread_mutexattr_init(&attr);
  if (rc == 0)
    rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  if (rc == 0)
    rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  if (rc == 0)
    rc = pthread_mutex_init(m, &attr);
  pthread_mutexattr_destroy(&attr);
  if (rc != 0) {
    fprintf(stderr, "bench: lock floor: mutex init: %s\n", strerror(rc));
    munmap(m, 4096);
    return;
  }
  const size_t n = scaled(wl->steps);
  const double t0 = now_ns();
  for (size_t i = 0; i < n; i++) {
    rc |= pthread_mutex_lock(m); /* alloc */
    rc |= pthread_mutex_unlock(m);
    rc |= pthread_mutex_lock(m); /* free */
    rc |= pthread_mutex_unlock(m);
  }
  const double t1 = now_ns();
  pthread_mutex_destroy(m);
  munmap(m, 4096);
  if (rc != 0) {
    fprintf(stderr, "bench: lock floor: lock or unlock failed\n");
    return;
  }
  const double floor_ns = (t1 - t0) / (double)n;
  record(R_LOCK_FLOOR, ai, rep, floor_ns, n);
  if (!isnan(result[R_LIFO][ai][rep]))
    record(R_LIFO_NET, ai, rep, result[R_LIFO][ai][rep] - floor_ns, n);
}

/* The cheapest lock any allocator that several processes share could take:
 * per pair, twice a compare-and-swap that acquires a word in a MAP_SHARED
 * page and a release store that drops it, with nothing for waiters and no
 * recovery from a dead owner. It bounds from below what any locked shared
 * heap pays per lifo-small pair on this machine, whatever its allocator. */
static void run_cas_floor(const struct workload *wl, int ai, int rep) {
  uint32_t *word = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (word == MAP_FAILED) {
    perror("bench: CAS floor: mmap");
    return;
  }
  const size_t n = scaled(wl->steps);
  size_t failed = 0;
  const double t0 = now_ns();
  for (size_t i = 0; i < 2 * n; i++) {
    uint32_t expect = 0;
    failed += !__atomic_compare_exchange_n(word, &expect, 1, false,
                                           __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
    __atomic_store_n(word, 0, __ATOMIC_RELEASE);
  }
  const double t1 = now_ns();
  munmap(word, 4096);
  if (failed != 0) {
    fprintf(stderr, "bench: CAS floor: %zu acquisitions failed\n", failed);
    return;
  }
  record(R_CAS_FLOOR, ai, rep, (t1 - t0) / (double)n, n);
}

static void run_live(const struct workload *wl, int w, int ai, int rep) {
  const struct allocator *a = allocs[ai];
  const struct live_stream *ls = &live_streams[w];
  const enum row_id r = live_row(wl);
  if (a->slow_scan && !opt.no_cap && wl->slow_reps != 0 &&
      rep >= wl->slow_reps) {
    capped[r][ai] = true;
    return;
  }
  char name[96];
  new_name(name, sizeof name, a->name);
  void *ctx = segment_create(a, name, wl->heap_len);
  if (ctx == NULL)
    return;
  void **slots = xmalloc(wl->live * sizeof *slots);
  /* The timed steps always start at the same place in the stream; a
   * capped allocator runs a prefix of the warm-up and of the timed part. */
  const size_t warm = wl->live;
  size_t timed = ls->n_steps - warm, warm_done = warm;
  if (a->slow_scan && !opt.no_cap) {
    if (wl->slow_cap != 0 && timed > wl->slow_cap) {
      timed = wl->slow_cap;
      capped[r][ai] = true;
    }
    if (wl->slow_warm != 0 && warm > wl->slow_warm) {
      warm_done = wl->slow_warm;
      capped[r][ai] = true;
    }
  }
  warm_steps[r][ai] = warm_done;
  if (a->loops->fill(ctx, slots, ls->fill, wl->live) != 0) {
    fail_run(a, wl, "fill");
  } else if (a->loops->steps(ctx, slots, ls->victims, ls->sizes, warm_done) !=
             0) {
    fail_run(a, wl, "warm-up");
  } else {
    const double t0 = now_ns();
    const int rc = a->loops->steps(ctx, slots, ls->victims + warm,
                                   ls->sizes + warm, timed);
    const double t1 = now_ns();
    if (rc != 0)
      fail_run(a, wl, "step");
    else
      record(r, ai, rep, (t1 - t0) / (double)timed, timed);
    if (!a->shared && rc == 0)
      a->loops->release(ctx, slots, wl->live);
  }
  free(slots);
  segment_destroy(a, name, ctx);
}

static void run_frag(const struct workload *wl, int ai, int rep) {
  const struct allocator *a = allocs[ai];
  if (!a->shared)
    return; /* glibc never runs out: no utilisation to report */
  char name[96];
  new_name(name, sizeof name, a->name);
  void *ctx = segment_create(a, name, wl->heap_len);
  if (ctx == NULL)
    return;
  struct frag_out out;
  const double t0 = now_ns();
  a->loops->frag(ctx, &frag_state, &out);
  const double t1 = now_ns();
  if (out.overflow) {
    fprintf(stderr, "bench: fill-fragment on %s: too many live blocks\n",
            a->name);
  } else {
    record(R_FRAG_NS, ai, rep, (t1 - t0) / ((double)out.ops / 2), out.ops);
    record(R_FRAG_UTIL, ai, rep,
           100.0 * (double)out.live_bytes / (double)wl->heap_len, out.live);
  }
  segment_destroy(a, name, ctx);
}

/* The CPUs this process may run on; the two processes take the first two. */
static int cpus[2];
static int n_cpus;

static void find_cpus(void) {
  cpu_set_t set;
  CPU_ZERO(&set);
  n_cpus = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE && n_cpus < 2; c++)
      if (CPU_ISSET(c, &set))
        cpus[n_cpus++] = c;
  if (n_cpus == 0)
    cpus[n_cpus++] = 0;
}

struct child_report {
  uint64_t pairs;
  double elapsed_ns;
};

static void write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    const ssize_t k = write(fd, p, n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      _exit(3);
    p += k;
    n -= (size_t)k;
  }
}

static int read_all(int fd, void *buf, size_t n) {
  char *p = buf;
  while (n > 0) {
    const ssize_t k = read(fd, p, n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return -1;
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

/* A forked child: pin, attach by name, say ready, wait for the start
 * signal (the parent closing the pipe), run lifo-small for the window. */
static void two_process_child(const struct allocator *a, const char *name,
                              int idx, int ready_fd, int go_fd, int result_fd) {
  have_current = 0; /* the parent owns the name */
  alarm((unsigned)(opt.window_ms / 1000) + 60);
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpus[idx % n_cpus], &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0)
    _exit(4);
  void *ctx = a->open(name);
  if (ctx == NULL)
    _exit(5);
  char c = 1;
  write_all(ready_fd, &c, 1);
  if (read(go_fd, &c, 1) != 0) /* EOF is the start signal */
    _exit(6);
  const double t0 = now_ns();
  struct child_report rep;
  rep.pairs =
      a->loops->lifo_until(ctx, lifo_sizes, (size_t)idx * (LIFO_STREAM / 2),
                           t0 + opt.window_ms * 1e6);
  rep.elapsed_ns = now_ns() - t0;
  if (rep.pairs == 0)
    _exit(7);
  write_all(result_fd, &rep, sizeof rep);
  _exit(0);
}

/* Total pairs/s of NPROC processes, or NAN on failure. */
static double two_process_run(const struct allocator *a,
                              const struct workload *wl, int nproc) {
  char name[96];
  new_name(name, sizeof name, a->name);
  void *ctx = segment_create(a, name, wl->heap_len);
  if (ctx == NULL)
    return NAN;
  int ready[2], go[2], res[2];
  if (pipe(ready) != 0 || pipe(go) != 0 || pipe(res) != 0) {
    perror("bench: pipe");
    exit(1);
  }
  fflush(NULL);
  pid_t pids[2];
  for (int i = 0; i < nproc; i++) {
    pids[i] = fork();
    if (pids[i] < 0) {
      perror("bench: fork");
      exit(1);
    }
    if (pids[i] == 0) {
      close(ready[0]);
      close(go[1]);
      close(res[0]);
      two_process_child(a, name, i, ready[1], go[0], res[1]);
    }
  }
  close(ready[1]);
  close(go[0]);
  close(res[1]);
  bool ok = true;
  for (int i = 0; i < nproc; i++) {
    char c;
    if (read_all(ready[0], &c, 1) != 0)
      ok = false;
  }
  close(go[1]); /* start both at once */
  double total = 0;
  for (int i = 0; i < nproc && ok; i++) {
    struct child_report rep;
    if (read_all(res[0], &rep, sizeof rep) != 0)
      ok = false;
    else
      total += (double)rep.pairs / (rep.elapsed_ns / 1e9);
  }
  for (int i = 0; i < nproc; i++) {
    int status;
    while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "bench: two-process child on %s: status 0x%x\n", a->name,
              status);
      ok = false;
    }
  }
  close(ready[0]);
  close(res[0]);
  segment_destroy(a, name, ctx);
  return ok ? total : NAN;
}

static void run_two_process(const struct workload *wl, int ai, int rep) {
  const double one = two_process_run(allocs[ai], wl, 1);
  const double two = two_process_run(allocs[ai], wl, 2);
  record(R_TWO_1P, ai, rep, one / 1e6, 0);
  record(R_TWO_2P, ai, rep, two / 1e6, 0);
  record(R_TWO_RATIO, ai, rep, two / one, 0);
}

/* ------------------------------------------------------------------------ */
/* Output                                                                   */

/* The workload (index into workloads[]) that produces row R. */
static int row_workload(enum row_id r) {
  switch (r) {
  case R_LIFO:
  case R_LOCK_FLOOR:
  case R_LIFO_NET:
  case R_CAS_FLOOR:
    return 0;
  case R_LIVE_1K:
    return 1;
  case R_LIVE_10K:
    return 2;
  case R_LIVE_100K:
    return 3;
  case R_FRAG_NS:
  case R_FRAG_UTIL:
    return 4;
  default:
    return 5;
  }
}

static bool row_selected(enum row_id r) {
  return workloads[row_workload(r)].selected;
}

static int shm_index(void) {
  for (int i = 0; i < n_allocs; i++)
    if (strcmp(allocs[i]->name, "shmheap") == 0)
      return i;
  return -1;
}

static int alloc_index(const char *name) {
  for (int i = 0; i < n_allocs; i++)
    if (strcmp(allocs[i]->name, name) == 0)
      return i;
  return -1;
}

/* Says how a capped allocator's run differed from the others'. */
static void print_cap_note(FILE *f, enum row_id r, int ai) {
  const struct workload *wl = &workloads[row_workload(r)];
  int reps = 0;
  for (int k = 0; k < opt.reps; k++)
    reps += !isnan(result[r][ai][k]);
  fprintf(f,
          "* %s on %s, to keep the run short: timed only the first %zu "
          "of %zu steps",
          allocs[ai]->name, rows[r].label, timed_steps[r][ai],
          scaled(wl->steps));
  if (warm_steps[r][ai] < wl->live)
    fprintf(f,
            ", after a warm-up of %zu steps, not %zu (its cost grows "
            "with the holes: this flatters it)",
            warm_steps[r][ai], wl->live);
  if (reps < opt.reps)
    fprintf(f, ", in %d of %d repetitions", reps, opt.reps);
  fprintf(f, "; --no-cap runs it in full\n");
}

static void print_table(FILE *f) {
  fprintf(f, "\nMedians over %d repetitions (build: %s)\n", opt.reps,
          SHMHEAP_BENCH_BUILDTYPE);
  fprintf(f, "%-22s %-9s", "workload", "unit");
  for (int i = 0; i < n_allocs; i++)
    fprintf(f, " %14s", allocs[i]->name);
  fprintf(f, "\n");
  bool any_cap = false;
  const int s = shm_index();
  for (int r = 0; r < N_ROWS; r++) {
    if (!row_selected((enum row_id)r))
      continue;
    if ((r == R_LOCK_FLOOR || r == R_LIFO_NET || r == R_CAS_FLOOR) &&
        (s < 0 || isnan(row_median((enum row_id)r, s))))
      continue; /* not run: --hot-path, or shmheap not selected */
    fprintf(f, "%-22s %-9s", rows[r].label, rows[r].unit);
    for (int i = 0; i < n_allocs; i++) {
      const double m = row_median((enum row_id)r, i);
      if (isnan(m))
        fprintf(f, " %14s", "-");
      else
        fprintf(f, " %13.*f%c", m >= 1000 || r <= R_CAS_FLOOR ? 1 : 2, m,
                capped[r][i] ? '*' : ' ');
      any_cap |= capped[r][i];
    }
    fprintf(f, "\n");
  }
  if (any_cap) {
    for (int r = 0; r < N_ROWS; r++)
      for (int i = 0; i < n_allocs; i++)
        if (capped[r][i])
          print_cap_note(f, (enum row_id)r, i);
  }
  fprintf(f, "- : not applicable (glibc never runs out) or not measured\n");
}

static void print_ratios(FILE *f) {
  const int s = shm_index();
  if (s < 0 || n_allocs < 2)
    return;
  fprintf(f, "\nPaired ratios: shmheap's advantage, median over repetitions of "
             "(other/shmheap) for times,\n(shmheap/other) for rates and "
             "utilisation; above 1 = shmheap better\n");
  fprintf(f, "%-22s", "workload");
  for (int i = 0; i < n_allocs; i++)
    if (i != s)
      fprintf(f, " %14s", allocs[i]->name);
  fprintf(f, "\n");
  for (int r = 0; r < N_ROWS; r++) {
    if (!row_selected((enum row_id)r) || r == R_TWO_RATIO ||
        r == R_LOCK_FLOOR || r == R_LIFO_NET || r == R_CAS_FLOOR)
      continue; /* the floor rows have no peer: see print_lock_floor */
    fprintf(f, "%-22s", rows[r].label);
    for (int i = 0; i < n_allocs; i++) {
      if (i == s)
        continue;
      const double v = paired_ratio((enum row_id)r, s, i);
      if (isnan(v))
        fprintf(f, " %14s", "-");
      else
        fprintf(f, " %14.3f", v);
    }
    fprintf(f, "\n");
  }
}

/* Scaling of one allocator in one rep: ns at 100k live over ns at 1k. */
static double scaling(int ai) {
  double v[MAX_REPS];
  for (int i = 0; i < opt.reps; i++)
    v[i] = result[R_LIVE_100K][ai][i] / result[R_LIVE_1K][ai][i];
  return median(v, opt.reps);
}

static double scaling_ratio(int s, int g) {
  double v[MAX_REPS];
  for (int i = 0; i < opt.reps; i++)
    v[i] = (result[R_LIVE_100K][s][i] / result[R_LIVE_1K][s][i]) /
           (result[R_LIVE_100K][g][i] / result[R_LIVE_1K][g][i]);
  return median(v, opt.reps);
}

/* Median over reps of shmheap's row R (the floor or lifo-small minus it)
 * over glibc's lifo-small of the same rep: how many glibc pairs it costs. */
static double floor_over_glibc(enum row_id r, int s, int g) {
  double v[MAX_REPS];
  for (int i = 0; i < opt.reps; i++)
    v[i] = result[r][s][i] / result[R_LIFO][g][i];
  return median(v, opt.reps);
}

/* The lock floor beside lifo-small: what shmheap pays for its lock alone,
 * what is left for its allocator, and both in glibc pairs. */
static void print_lock_floor(FILE *f) {
  const int s = shm_index(), g = alloc_index("glibc");
  if (s < 0 || isnan(row_median(R_LOCK_FLOOR, s)))
    return;
  fprintf(f,
          "\nLock floor: per lifo-small pair, 2 x (pthread_mutex_lock + "
          "unlock) of a robust,\nprocess-shared mutex in a MAP_SHARED page "
          "(what alloc + free must lock), %zu times,\nright after shmheap's "
          "lifo-small in every repetition; then the same with a bare CAS "
          "lock (acquire CAS +\nrelease store, nothing for waiters or "
          "dead owners): the least any shared heap's lock costs\n",
          timed_steps[R_LOCK_FLOOR][s]);
  fprintf(f, "%-34s %10s %18s\n", "lifo-small", "ns/pair",
          g >= 0 ? "x glibc (paired)" : "");
  const struct {
    const char *label;
    enum row_id r;
  } lines[] = {
      {"shmheap", R_LIFO},
      {"lock floor (robust mutex x2)", R_LOCK_FLOOR},
      {"shmheap minus floor (allocator)", R_LIFO_NET},
      {"bare CAS lock x2 (no allocator)", R_CAS_FLOOR},
  };
  for (size_t k = 0; k < sizeof lines / sizeof lines[0]; k++) {
    fprintf(f, "%-34s %10.1f", lines[k].label, row_median(lines[k].r, s));
    if (g >= 0)
      fprintf(f, " %18.2f", floor_over_glibc(lines[k].r, s, g));
    fprintf(f, "\n");
  }
  if (g >= 0)
    fprintf(f, "%-34s %10.1f %18.2f\n", "glibc", row_median(R_LIFO, g), 1.0);
}

static void target(FILE *f, const char *what, double value, bool ok,
                   const char *detail) {
  if (isnan(value))
    fprintf(f, "  [n/a ] %s: not measured\n", what);
  else
    fprintf(f, "  [%s] %s: %s\n", ok ? "MET " : "MISS", what, detail);
}

static void print_targets(FILE *f) {
  const int s = shm_index(), g = alloc_index("glibc"),
            rb = alloc_index("boost-rbtree"), sf = alloc_index("boost-seqfit");
  if (s < 0)
    return;
  char buf[512];
  fprintf(f, "\nIssue 3 targets (from the paired ratios above)\n");
  if (rb >= 0) {
    const enum row_id timed[] = {R_LIFO,      R_LIVE_1K, R_LIVE_10K,
                                 R_LIVE_100K, R_FRAG_NS, R_TWO_2P};
    for (size_t k = 0; k < sizeof timed / sizeof timed[0]; k++) {
      if (!row_selected(timed[k]))
        continue;
      const double v = paired_ratio(timed[k], s, rb);
      snprintf(buf, sizeof buf, "shmheap %.2fx boost-rbtree", v);
      char what[96];
      snprintf(what, sizeof what, "faster than boost-rbtree on %s",
               rows[timed[k]].label);
      target(f, what, v, v > 1, buf);
    }
  }
  if (sf >= 0 && row_selected(R_LIVE_100K)) {
    const double v = paired_ratio(R_LIVE_100K, s, sf);
    snprintf(buf, sizeof buf, "shmheap %.0fx faster", v);
    target(f, ">= 100x faster than boost-seqfit at 100k live", v, v >= 100,
           buf);
  }
  if (g >= 0 && row_selected(R_LIFO)) {
    const double v = paired_ratio(R_LIFO, s, g);
    const double fl = floor_over_glibc(R_LOCK_FLOOR, s, g),
                 net = floor_over_glibc(R_LIFO_NET, s, g),
                 cas = floor_over_glibc(R_CAS_FLOOR, s, g);
    if (isnan(fl))
      snprintf(buf, sizeof buf, "shmheap takes %.2fx glibc's time", 1 / v);
    else
      snprintf(buf, sizeof buf,
               "shmheap takes %.2fx glibc's time;\n"
               "         of which the lock floor alone is %.2fx glibc's "
               "pair, and shmheap minus the floor\n"
               "         (its allocator work) %.2fx glibc's pair; a bare CAS "
               "lock with no allocator\n"
               "         at all already takes %.2fx glibc's pair",
               1 / v, fl, net, cas);
    target(f, "lifo-small within 2x of glibc", v, 1 / v <= 2, buf);
  }
  if (g >= 0 && row_selected(R_LIVE_100K)) {
    const double v = paired_ratio(R_LIVE_100K, s, g);
    snprintf(buf, sizeof buf, "shmheap takes %.2fx glibc's time", 1 / v);
    target(f, "random-live-100k within 3x of glibc", v, 1 / v <= 3, buf);
  }
  if (g >= 0 && row_selected(R_LIVE_1K) && row_selected(R_LIVE_100K)) {
    const double v = scaling_ratio(s, g);
    snprintf(buf, sizeof buf,
             "ns(100k)/ns(1k): shmheap %.2f, glibc %.2f; paired ratio %.2f",
             scaling(s), scaling(g), v);
    target(f, "scaling 1k->100k no worse than glibc's", v, v <= 1, buf);
  }
  if (rb >= 0 && row_selected(R_FRAG_UTIL)) {
    const double ms = row_median(R_FRAG_UTIL, s),
                 mr = row_median(R_FRAG_UTIL, rb);
    snprintf(buf, sizeof buf, "shmheap %.2f%%, boost-rbtree %.2f%%", ms, mr);
    target(f, "fill-fragment utilisation >= boost-rbtree's", ms - mr, ms >= mr,
           buf);
  }
  fprintf(f, "  (no system call on the hot path: run under strace -c -f with "
             "--hot-path, see bench/README.md)\n");
}

/* The SVG chart: median ns per pair against live blocks, log-log. */
static void write_svg(const char *path) {
  const enum row_id chart_rows[] = {R_LIFO, R_LIVE_1K, R_LIVE_10K, R_LIVE_100K};
  const int n_pts = 4;
  /* shmheap's lock floor, a hollow point under its lifo-small one */
  const int s = shm_index();
  const double floor_ns = s >= 0 ? row_median(R_LOCK_FLOOR, s) : NAN;
  double lo = isnan(floor_ns) ? INFINITY : floor_ns,
         hi = isnan(floor_ns) ? -INFINITY : floor_ns;
  for (int i = 0; i < n_allocs; i++)
    for (int k = 0; k < n_pts; k++) {
      const double m = row_median(chart_rows[k], i);
      if (!isnan(m)) {
        lo = fmin(lo, m);
        hi = fmax(hi, m);
      }
    }
  if (!(lo <= hi))
    return;
  FILE *f = fopen(path, "w");
  if (f == NULL) {
    fprintf(stderr, "bench: cannot write %s: %s\n", path, strerror(errno));
    return;
  }
  const double W = 800, H = 480, ml = 80, mr = 190, mt = 50, mb = 60;
  const double pw = W - ml - mr, ph = H - mt - mb;
  const int y0 = (int)floor(log10(lo)), y1 = (int)ceil(log10(hi));
  const int ydec = y1 > y0 ? y1 - y0 : 1;
  const double x0 = 0, x1 = 5; /* 10^0 .. 10^5 live blocks */
#define XPOS(lv) (ml + ((double)(lv)-x0) / (x1 - x0) * pw)
#define YPOS(lv) (mt + ph - ((double)(lv)-y0) / ydec * ph)
  fprintf(f,
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
          "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
          "font-family=\"sans-serif\" font-size=\"12\">\n",
          W, H, W, H);
  fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
  fprintf(f,
          "<text x=\"%.0f\" y=\"24\" font-size=\"15\" text-anchor=\"middle\">"
          "ns per alloc+free pair against live blocks (median of %d, %s "
          "build)</text>\n",
          ml + pw / 2, opt.reps, SHMHEAP_BENCH_BUILDTYPE);
  /* grid and axes */
  for (int d = y0; d <= y0 + ydec; d++) {
    const double y = YPOS(d);
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "stroke=\"#ddd\"/>\n<text x=\"%.1f\" y=\"%.1f\" "
            "text-anchor=\"end\">%.0f</text>\n",
            ml, y, ml + pw, y, ml - 6, y + 4, pow(10, d));
  }
  const char *xlabels[] = {"1 (lifo-small)", "10", "100", "1k", "10k", "100k"};
  for (int d = 0; d <= 5; d++) {
    const double x = XPOS(d);
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "stroke=\"#ddd\"/>\n<text x=\"%.1f\" y=\"%.1f\" "
            "text-anchor=\"middle\">%s</text>\n",
            x, mt, x, mt + ph, x, mt + ph + 18, xlabels[d]);
  }
  fprintf(f,
          "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
          "fill=\"none\" stroke=\"black\"/>\n",
          ml, mt, pw, ph);
  fprintf(f,
          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">live blocks "
          "(log scale)</text>\n",
          ml + pw / 2, H - 16);
  fprintf(f,
          "<text x=\"18\" y=\"%.1f\" text-anchor=\"middle\" "
          "transform=\"rotate(-90 18 %.1f)\">ns per pair (log scale)</text>\n",
          mt + ph / 2, mt + ph / 2);
  /* one line per allocator */
  for (int i = 0; i < n_allocs; i++) {
    const struct allocator *a = allocs[i];
    fprintf(f,
            "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
            "points=\"",
            a->color);
    for (int k = 0; k < n_pts; k++) {
      const double m = row_median(chart_rows[k], i);
      if (!isnan(m))
        fprintf(f, "%.1f,%.1f ", XPOS(log10((double)rows[chart_rows[k]].live)),
                YPOS(log10(m)));
    }
    fprintf(f, "\"/>\n");
    for (int k = 0; k < n_pts; k++) {
      const double m = row_median(chart_rows[k], i);
      if (!isnan(m))
        fprintf(f,
                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" "
                "fill=\"%s\"/>\n",
                XPOS(log10((double)rows[chart_rows[k]].live)), YPOS(log10(m)),
                a->color);
    }
    const double ly = mt + 10 + 22 * i;
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "stroke=\"%s\" stroke-width=\"3\"/>\n<text x=\"%.1f\" "
            "y=\"%.1f\">%s</text>\n",
            ml + pw + 60, ly, ml + pw + 85, ly, a->color, ml + pw + 91, ly + 4,
            a->name);
  }
  int legend_rows = n_allocs;
  if (!isnan(floor_ns)) {
    fprintf(f,
            "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"white\" "
            "stroke=\"%s\" stroke-width=\"2\"/>\n",
            XPOS(0), YPOS(log10(floor_ns)), allocs[s]->color);
    const double ly = mt + 10 + 22 * legend_rows++;
    fprintf(f,
            "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"white\" "
            "stroke=\"%s\" stroke-width=\"2\"/>\n<text x=\"%.1f\" "
            "y=\"%.1f\">lock floor</text>\n<text x=\"%.1f\" y=\"%.1f\" "
            "font-size=\"10\">shmheap: 2x robust</text>\n<text "
            "x=\"%.1f\" y=\"%.1f\" font-size=\"10\">mutex lock+unlock"
            "</text>\n",
            ml + pw + 72, ly, allocs[s]->color, ml + pw + 91, ly + 4,
            ml + pw + 91, ly + 17, ml + pw + 91, ly + 29);
    legend_rows++;
  }
  /* value labels right of each point, pushed apart where they would
   * overlap; index n_allocs stands for the lock floor */
  for (int k = 0; k < n_pts; k++) {
    double ys[MAX_ALLOCATORS + 1];
    int order[MAX_ALLOCATORS + 1], n = 0;
    for (int i = 0; i <= n_allocs; i++) {
      const double m = i < n_allocs ? row_median(chart_rows[k], i)
                       : k == 0     ? floor_ns
                                    : NAN;
      if (isnan(m))
        continue;
      int j = n++;
      const double y = YPOS(log10(m)) + 4;
      while (j > 0 && ys[j - 1] > y) { /* insertion sort by y */
        ys[j] = ys[j - 1];
        order[j] = order[j - 1];
        j--;
      }
      ys[j] = y;
      order[j] = i;
    }
    for (int j = 1; j < n; j++)
      if (ys[j] < ys[j - 1] + 12)
        ys[j] = ys[j - 1] + 12;
    const double x = XPOS(log10((double)rows[chart_rows[k]].live)) + 6;
    for (int j = 0; j < n; j++) {
      const int i = order[j];
      if (i == n_allocs) {
        fprintf(f,
                "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" "
                "fill=\"%s\">%.0f lock floor</text>\n",
                x, ys[j], allocs[s]->color, floor_ns);
        continue;
      }
      fprintf(f,
              "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" "
              "fill=\"%s\">%.0f%s</text>\n",
              x, ys[j], allocs[i]->color, row_median(chart_rows[k], i),
              capped[chart_rows[k]][i] ? "*" : "");
    }
  }
  fprintf(f,
          "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">* fewer timed "
          "steps</text>\n",
          ml + pw + 60, mt + 10 + 22 * legend_rows + 6);
#undef XPOS
#undef YPOS
  fprintf(f, "</svg>\n");
  fclose(f);
}

static void write_summary_csv(const char *path) {
  FILE *f = fopen(path, "w");
  if (f == NULL) {
    fprintf(stderr, "bench: cannot write %s: %s\n", path, strerror(errno));
    return;
  }
  fprintf(f, "workload,unit,allocator,median,min,max,reps,timed_steps,"
             "shmheap_advantage\n");
  const int s = shm_index();
  for (int r = 0; r < N_ROWS; r++) {
    if (!row_selected((enum row_id)r))
      continue;
    for (int i = 0; i < n_allocs; i++) {
      double mn = INFINITY, mx = -INFINITY;
      int n = 0;
      for (int k = 0; k < opt.reps; k++) {
        const double v = result[r][i][k];
        if (!isnan(v)) {
          mn = fmin(mn, v);
          mx = fmax(mx, v);
          n++;
        }
      }
      if (n == 0)
        continue;
      const double adv = s >= 0 && s != i && r != R_TWO_RATIO
                             ? paired_ratio((enum row_id)r, s, i)
                             : NAN;
      fprintf(f, "%s,%s,%s,%.6g,%.6g,%.6g,%d,%zu,", rows[r].label, rows[r].unit,
              allocs[i]->name, row_median((enum row_id)r, i), mn, mx, n,
              timed_steps[r][i]);
      if (isnan(adv))
        fprintf(f, "\n");
      else
        fprintf(f, "%.6g\n", adv);
    }
  }
  fclose(f);
}

/* ------------------------------------------------------------------------ */
/* Command line                                                             */

static void usage(FILE *f) {
  fprintf(
      f, "usage: shmheap-bench [options]\n"
         "  --reps N          repetitions (default 5; env SHMHEAP_BENCH_REPS)\n"
         "  --scale F         multiply the timed steps by F (default 1; env "
         "SHMHEAP_BENCH_SCALE)\n"
         "  --window-ms MS    two-process window per run (default 500; env "
         "SHMHEAP_BENCH_WINDOW_MS)\n"
         "  --workloads LIST  comma-separated subset of: lifo-small,"
         "random-live-1k,\n"
         "                    random-live-10k,random-live-100k,"
         "fill-fragment,two-process\n"
         "  --allocators LIST comma-separated subset of:");
  for (int i = 0; i < N_ALL_ALLOCATORS; i++)
    fprintf(f, "%s%s", i ? "," : " ", all_allocators[i].name);
  fprintf(f,
          "\n  --no-cap          time boost-seqfit on every step (very slow at "
          "10k/100k live)\n"
          "  --seed N          add N to every stream's seed (default 0: the "
          "fixed streams)\n"
          "  --out-dir DIR     where to write shmheap-bench.{csv,txt,svg} and "
          "-summary.csv (default .)\n"
          "  --hot-path        only lifo-small on shmheap, 1 rep, no files: "
          "for strace -c -f\n");
}

static bool in_list(const char *list, const char *name) {
  const size_t n = strlen(name);
  for (const char *p = list; *p;) {
    const char *e = strchr(p, ',');
    const size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && strncmp(p, name, n) == 0)
      return true;
    p += len + (e ? 1 : 0);
  }
  return false;
}

static double parse_num(const char *s, const char *what) {
  char *end;
  errno = 0;
  const double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v > 0)) {
    fprintf(stderr, "bench: bad %s: %s\n", what, s);
    exit(2);
  }
  return v;
}

static void parse_args(int argc, char **argv) {
  const char *wl_list = NULL, *al_list = NULL;
  const char *env;
  if ((env = getenv("SHMHEAP_BENCH_REPS")) != NULL && *env)
    opt.reps = (int)parse_num(env, "SHMHEAP_BENCH_REPS");
  if ((env = getenv("SHMHEAP_BENCH_SCALE")) != NULL && *env)
    opt.scale = parse_num(env, "SHMHEAP_BENCH_SCALE");
  if ((env = getenv("SHMHEAP_BENCH_WINDOW_MS")) != NULL && *env)
    opt.window_ms = parse_num(env, "SHMHEAP_BENCH_WINDOW_MS");
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      exit(0);
    } else if (strcmp(a, "--no-cap") == 0) {
      opt.no_cap = true;
    } else if (strcmp(a, "--hot-path") == 0) {
      opt.hot_path = true;
    } else if (v == NULL) {
      usage(stderr);
      exit(2);
    } else if (strcmp(a, "--reps") == 0) {
      opt.reps = (int)parse_num(v, "--reps");
      i++;
    } else if (strcmp(a, "--scale") == 0) {
      opt.scale = parse_num(v, "--scale");
      i++;
    } else if (strcmp(a, "--window-ms") == 0) {
      opt.window_ms = parse_num(v, "--window-ms");
      i++;
    } else if (strcmp(a, "--workloads") == 0) {
      wl_list = v;
      i++;
    } else if (strcmp(a, "--allocators") == 0) {
      al_list = v;
      i++;
    } else if (strcmp(a, "--seed") == 0) {
      const uint64_t add = (uint64_t)parse_num(v, "--seed");
      SEED_LIFO += add;
      SEED_LIVE += add;
      SEED_FRAG += add;
      i++;
    } else if (strcmp(a, "--out-dir") == 0) {
      opt.out_dir = v;
      i++;
    } else {
      usage(stderr);
      exit(2);
    }
  }
  if (opt.hot_path) {
    wl_list = "lifo-small";
    al_list = "shmheap";
    opt.reps = 1;
  }
  if (opt.reps < 1 || opt.reps > MAX_REPS) {
    fprintf(stderr, "bench: --reps must be 1..%d\n", MAX_REPS);
    exit(2);
  }
  for (int w = 0; w < N_WORKLOADS; w++)
    workloads[w].selected =
        wl_list == NULL || in_list(wl_list, workloads[w].name);
  for (int i = 0; i < N_ALL_ALLOCATORS; i++)
    if (al_list == NULL || in_list(al_list, all_allocators[i].name))
      allocs[n_allocs++] = &all_allocators[i];
  if (n_allocs == 0) {
    fprintf(stderr, "bench: no allocator selected\n");
    exit(2);
  }
}

static FILE *open_out(const char *file) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", opt.out_dir, file);
  FILE *f = fopen(path, "w");
  if (f == NULL)
    fprintf(stderr, "bench: cannot write %s: %s\n", path, strerror(errno));
  return f;
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  setvbuf(stdout, NULL, _IOLBF, 0);
  const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGALRM};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    signal(sigs[i], on_fatal_signal);
  for (int r = 0; r < N_ROWS; r++)
    for (int i = 0; i < MAX_ALLOCATORS; i++)
      for (int k = 0; k < MAX_REPS; k++)
        result[r][i][k] = NAN;
  find_cpus();
  make_streams();

  if (!opt.hot_path)
    raw_csv = open_out("shmheap-bench.csv");
  if (raw_csv != NULL)
    fprintf(raw_csv, "workload,unit,allocator,rep,value,timed_steps\n");

  printf("shmheap benchmark: build %s, %d reps, scale %g, two-process "
         "window %.0f ms on CPUs %d,%d%s\n",
         SHMHEAP_BENCH_BUILDTYPE, opt.reps, opt.scale, opt.window_ms, cpus[0],
         cpus[n_cpus - 1], n_cpus < 2 ? " (only one CPU!)" : "");
#if !SHMHEAP_BENCH_BOOST
  printf("Boost.Interprocess not built in (no Boost headers or no C++ "
         "compiler): shmheap and glibc only\n");
#endif
  if (strcmp(SHMHEAP_BENCH_BUILDTYPE, "release") != 0)
    printf("note: not a release build; configure with --buildtype=release "
           "for numbers worth quoting\n");

  const double start = now_ns();
  for (int rep = 0; rep < opt.reps; rep++) {
    for (int w = 0; w < N_WORKLOADS; w++) {
      const struct workload *wl = &workloads[w];
      if (!wl->selected)
        continue;
      /* rotate the order each rep, so no allocator always runs first */
      for (int k = 0; k < n_allocs; k++) {
        const int ai = (k + rep) % n_allocs;
        switch (wl->kind) {
        case W_LIFO:
          run_lifo(wl, ai, rep);
          if (ai == shm_index() && !opt.hot_path) {
            run_lock_floor(wl, ai, rep);
            run_cas_floor(wl, ai, rep);
          }
          break;
        case W_LIVE:
          run_live(wl, w, ai, rep);
          break;
        case W_FRAG:
          run_frag(wl, ai, rep);
          break;
        case W_TWOPROC:
          run_two_process(wl, ai, rep);
          break;
        }
      }
    }
    printf("rep %d/%d done (%.1f s)\n", rep + 1, opt.reps,
           (now_ns() - start) / 1e9);
  }

  print_table(stdout);
  if (opt.hot_path) {
    printf("hot path: %zu alloc+free pairs of lifo-small on shmheap\n",
           scaled(workloads[0].steps));
    return 0;
  }
  print_ratios(stdout);
  print_lock_floor(stdout);
  print_targets(stdout);
  FILE *txt = open_out("shmheap-bench.txt");
  if (txt != NULL) {
    print_table(txt);
    print_ratios(txt);
    print_lock_floor(txt);
    print_targets(txt);
    fclose(txt);
  }
  if (raw_csv != NULL)
    fclose(raw_csv);
  char path[4096];
  snprintf(path, sizeof path, "%s/shmheap-bench-summary.csv", opt.out_dir);
  write_summary_csv(path);
  snprintf(path, sizeof path, "%s/shmheap-bench.svg", opt.out_dir);
  write_svg(path);
  printf("\nwrote %s/shmheap-bench{.csv,-summary.csv,.txt,.svg}\n",
         opt.out_dir);
  return 0;
}

/* workloads.c: what every allocator runs. The fixed-seed operation streams
 * (drawn once, before the first repetition, so every allocator gets the
 * same ones), the workload loops written once over an alloc/free pair, and
 * their instantiation per allocator: shmheap, glibc malloc and, when built
 * in, Boost.Interprocess with rbtree_best_fit and with simple_seq_fit. Each
 * instance calls its allocator directly, so no switch or indirect call sits
 * on the hot path. Timing them is drivers.c's job. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "shmheap.h"
#if SHMHEAP_BENCH_BOOST
#include "boost-ipc.h"
#endif

#define ALWAYS_INLINE static inline __attribute__((always_inline))

uint64_t seed_lifo = 0x5eed0001;
uint64_t seed_live = 0x5eed0002;
uint64_t seed_frag = 0x5eed0003;
uint64_t seed_names = 0x5eed0004;

/* ------------------------------------------------------------------------ */
/* Random numbers, time, memory                                             */

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

uint32_t stream_rand(uint64_t *state, uint32_t lo, uint32_t hi) {
  return rand_range(state, lo, hi);
}

double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (p == NULL) {
    fprintf(stderr, "bench: out of memory\n");
    exit(1);
  }
  return p;
}

size_t scaled(size_t n) {
  const double v = (double)n * opt.scale;
  return v < 1 ? 1 : (size_t)v;
}

/* Every block is written once, so no allocator gets credit for memory it
 * hands out but never lets the caller touch, and the compiler cannot drop
 * an alloc/free pair whose result looks unused. */
ALWAYS_INLINE void touch(void *p, size_t i) {
  *(volatile unsigned char *)p = (unsigned char)i;
}

/* ------------------------------------------------------------------------ */
/* Streams                                                                  */

uint16_t *lifo_sizes;
struct live_stream live_streams[N_WORKLOADS];
struct frag_state frag_state;

static void make_live_stream(enum workload_id w) {
  const struct workload *wl = &workloads[w];
  struct live_stream *ls = &live_streams[w];
  uint64_t seed = seed_live + wl->live; /* each N its own stream */
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

void make_streams(void) {
  uint64_t seed = seed_lifo;
  lifo_sizes = xmalloc(LIFO_STREAM * sizeof *lifo_sizes);
  for (size_t i = 0; i < LIFO_STREAM; i++)
    lifo_sizes[i] = (uint16_t)rand_range(&seed, 16, 256);
  for (int w = W_LIVE_1K; w <= W_LIVE_100K; w++) {
    /* two-process-live runs random-live-1k's stream */
    const bool needed = workloads[w].selected ||
                        (w == W_LIVE_1K && workloads[W_TWOPROC_LIVE].selected);
    if (needed)
      make_live_stream((enum workload_id)w);
  }
  if (workloads[W_FRAG].selected) {
    frag_state.ptr = xmalloc(FRAG_MAX_LIVE * sizeof *frag_state.ptr);
    frag_state.size = xmalloc(FRAG_MAX_LIVE * sizeof *frag_state.size);
  }
}

/* ------------------------------------------------------------------------ */
/* Workload loops, generic over the allocator                               */

typedef void *(*alloc_fn)(void *ctx, size_t sz);
typedef void (*free_fn)(void *ctx, void *ptr);

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

/* random-live steps until DEADLINE (checked every 1024 steps), wrapping
 * around the N-step stream; returns the steps done, 0 on failure. */
ALWAYS_INLINE uint64_t steps_until_loop(void *ctx, alloc_fn A, free_fn F,
                                        void **slots, const uint32_t *victims,
                                        const uint16_t *sizes, size_t n,
                                        size_t start, double deadline) {
  uint64_t done = 0;
  size_t i = start % n;
  do {
    for (int k = 0; k < 1024; k++) {
      const uint32_t j = victims[i];
      F(ctx, slots[j]);
      void *p = A(ctx, sizes[i]);
      if (p == NULL)
        return 0;
      touch(p, i);
      slots[j] = p;
      i = i + 1 == n ? 0 : i + 1;
    }
    done += 1024;
  } while (now_ns() < deadline);
  return done;
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
  uint64_t seed = seed_frag;
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
  static uint64_t tag##_steps_until(                                           \
      void *ctx, void **slots, const uint32_t *victims, const uint16_t *sizes, \
      size_t n, size_t start, double deadline) {                               \
    return steps_until_loop(ctx, A, F, slots, victims, sizes, n, start,        \
                            deadline);                                         \
  }                                                                            \
  static void tag##_release(void *ctx, void **slots, size_t n) {               \
    release_loop(ctx, F, slots, n);                                            \
  }                                                                            \
  static void tag##_frag(void *ctx, struct frag_state *st,                     \
                         struct frag_out *out) {                               \
    frag_loop(ctx, A, F, st, out);                                             \
  }                                                                            \
  static const struct loops tag##_loops = {                                    \
      tag##_lifo,        tag##_lifo_until, tag##_fill, tag##_steps,            \
      tag##_steps_until, tag##_release,    tag##_frag,                         \
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

static void *shm_name_make(void *ctx, const char *key, size_t sz) {
  void *p = shmheap_alloc(ctx, sz);
  if (p == NULL)
    return NULL;
  if (shmheap_publish(ctx, key, shmheap_ptr_to_handle(ctx, p)) != 0) {
    const int e = errno;
    shmheap_free(ctx, p);
    errno = e;
    return NULL;
  }
  return p;
}

static void *shm_name_find(void *ctx, const char *key) {
  return shmheap_handle_to_ptr(ctx, shmheap_lookup(ctx, key));
}

static int shm_name_publish(void *ctx, const char *key, void *obj) {
  return shmheap_publish(ctx, key, shmheap_ptr_to_handle(ctx, obj));
}

static int shm_name_unpublish(void *ctx, const char *key) {
  return shmheap_unpublish(ctx, key);
}

static const struct name_ops shm_names = {shm_name_make, shm_name_find,
                                          shm_name_publish, shm_name_unpublish};

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

/* Boost's names belong to objects it constructs: "publish" makes a fresh
 * object of that name (NAME_OBJ_SIZE bytes), "unpublish" destroys it. */
enum { NAME_OBJ_SIZE = 32 };

static int bxrb_publish(void *ctx, const char *key, void *obj) {
  (void)obj;
  return bx_rbtree_construct(ctx, key, NAME_OBJ_SIZE) != NULL ? 0 : -1;
}
static int bxsf_publish(void *ctx, const char *key, void *obj) {
  (void)obj;
  return bx_seqfit_construct(ctx, key, NAME_OBJ_SIZE) != NULL ? 0 : -1;
}

static const struct name_ops bxrb_names = {bx_rbtree_construct, bx_rbtree_find,
                                           bxrb_publish, bx_rbtree_destroy};
static const struct name_ops bxsf_names = {bx_seqfit_construct, bx_seqfit_find,
                                           bxsf_publish, bx_seqfit_destroy};
#endif

const struct allocator all_allocators[] = {
    {"shmheap", true, false, shm_create, shm_open_heap, shm_close, shm_remove,
     &shm_loops, &shm_names, "#d62728", false},
    {"glibc", false, false, libc_create, libc_open, libc_close, libc_remove,
     &libc_loops, NULL, "#7f7f7f", false},
#if SHMHEAP_BENCH_BOOST
    {"boost-rbtree", true, false, bx_rbtree_create, bx_rbtree_open,
     bx_rbtree_close, bx_remove_quiet, &bxrb_loops, &bxrb_names, "#1f77b4",
     false},
    {"boost-seqfit", true, true, bx_seqfit_create, bx_seqfit_open,
     bx_seqfit_close, bx_remove_quiet, &bxsf_loops, &bxsf_names, "#2ca02c",
     false},
#endif
};
const int n_all_allocators = sizeof all_allocators / sizeof all_allocators[0];

/* ------------------------------------------------------------------------ */
/* The workload table                                                       */

struct workload workloads[N_WORKLOADS] = {
    [W_LIFO] = {"lifo-small", 0, 16 << 20, 1000000, 0, 0, 0, true},
    [W_LIVE_1K] = {"random-live-1k", 1000, 16 << 20, 1000000, 200000, 0, 0,
                   true},
    [W_LIVE_10K] = {"random-live-10k", 10000, 64 << 20, 1000000, 20000, 0, 0,
                    true},
    /* boost-seqfit: ~400 us a pair after the full warm-up, which alone
     * takes ~40 s: it runs in the first repetition only */
    [W_LIVE_100K] = {"random-live-100k", 100000, 256 << 20, 1000000, 2000, 0, 1,
                     true},
    [W_FRAG] = {"fill-fragment", 0, 64 << 20, 0, 0, 0, 0, true},
    [W_TWOPROC] = {"two-process", 0, 16 << 20, 0, 0, 0, 0, true},
    [W_FOURPROC] = {"four-process", 0, 16 << 20, 0, 0, 0, 0, true},
    [W_TWOPROC_LIVE] = {"two-process-live", 1000, 16 << 20, 0, 0, 0, 0, true},
    /* steps: lookups; half as many publish+unpublish pairs */
    [W_NAMES] = {"names", NAMES, 16 << 20, 200000, 0, 0, 0, true},
    [W_GROW] = {"grow-step", 0, 0, 0, 0, 0, 0, true},
};

/* drivers.c: timing one workload on one allocator in one repetition, and
 * recording the result: lifo-small with the lock floors beside it
 * (shmheap's own lock, a robust pthread mutex, a bare CAS lock),
 * random-live, fill-fragment, and the multi-process workloads (lifo-small
 * in 1, 2 and 4 processes, random-live-1k in 1 and 2) whose per-process
 * bodies are here while runner.c forks and pins the processes. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"
#include "layout.h"

void fail_run(const struct allocator *a, enum workload_id w, const char *what) {
  fprintf(stderr, "bench: %s on %s: %s failed (errno %d: %s)\n",
          workloads[w].name, a->name, what, errno, strerror(errno));
}

void run_lifo(int ai, int rep) {
  const struct workload *wl = &workloads[W_LIFO];
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
    fail_run(a, W_LIFO, "alloc");
  else
    record(R_LIFO, ai, rep, (t1 - t0) / (double)n, n);
  segment_destroy(a, name, ctx);
}

/* A robust, process-shared mutex in a fresh MAP_SHARED page; NULL on
 * failure (said on stderr). */
static pthread_mutex_t *shared_mutex(void) {
  pthread_mutex_t *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    perror("bench: mutex floor: mmap");
    return NULL;
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
    fprintf(stderr, "bench: mutex floor: mutex init: %s\n", strerror(rc));
    munmap(m, 4096);
    return NULL;
  }
  return m;
}

/* The lock word's waiter bits (STARVING, WAITERS: bits 30 and 31 of the
 * word, lib/lock.h): an unlock that finds one must wake a sleeper. */
static const uint32_t lock_waiter_bits = 3u << 30;

/* The floor under shmheap's lifo-small: per pair, twice (alloc and free
 * each lock once) the uncontended path of the library's own lock as
 * lib/lock.c takes it: a 64-bit compare-and-swap of the word from 0 to the
 * owner's word (acquire), a load of the heap's state, and on unlock a
 * compare-and-swap back to 0 (release) whose old value is checked for
 * waiters (the owner's word, which the library derives from cached ids
 * with a few multiplies, is a constant here). On a header-shaped page in
 * MAP_SHARED memory, as many times as lifo-small has pairs. Recorded in
 * shmheap's column (AI), with shmheap's lifo-small of this rep minus the
 * floor beside it. */
void run_lock_floor(int ai, int rep) {
  unsigned char *hdr = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (hdr == MAP_FAILED) {
    perror("bench: lock floor: mmap");
    return;
  }
  uint64_t *word = (uint64_t *)(void *)(hdr + SHH_HDR_LOCK);
  uint16_t *state = (uint16_t *)(void *)(hdr + SHH_HDR_STATE);
  *state = SHH_STATE_READY;
  const uint64_t own = (uint64_t)0x5a5a5 << 32 | (uint32_t)getpid();
  const size_t n = scaled(workloads[W_LIFO].steps);
  size_t failed = 0;
  const double t0 = now_ns();
  for (size_t i = 0; i < 2 * n; i++) {
    uint64_t v = 0;
    failed += !__atomic_compare_exchange_n(word, &v, own, false,
                                           __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
    failed += __atomic_load_n(state, __ATOMIC_RELAXED) != SHH_STATE_READY;
    v = __atomic_load_n(word, __ATOMIC_RELAXED);
    failed += !__atomic_compare_exchange_n(word, &v, 0, false, __ATOMIC_RELEASE,
                                           __ATOMIC_RELAXED);
    failed += ((uint32_t)v & lock_waiter_bits) != 0;
  }
  const double t1 = now_ns();
  munmap(hdr, 4096);
  if (failed != 0) {
    fprintf(stderr, "bench: lock floor: %zu lock steps failed\n", failed);
    return;
  }
  const double floor_ns = (t1 - t0) / (double)n;
  record(R_LOCK_FLOOR, ai, rep, floor_ns, n);
  if (!isnan(result[R_LIFO][ai][rep]))
    record(R_LIFO_NET, ai, rep, result[R_LIFO][ai][rep] - floor_ns, n);
}

/* For comparison: the same locking on a robust, process-shared pthread
 * mutex in a MAP_SHARED page (2 x lock + unlock per pair). */
void run_mutex_floor(int ai, int rep) {
  pthread_mutex_t *m = shared_mutex();
  if (m == NULL)
    return;
  const size_t n = scaled(workloads[W_LIFO].steps);
  int rc = 0;
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
    fprintf(stderr, "bench: mutex floor: lock or unlock failed\n");
    return;
  }
  record(R_MUTEX_FLOOR, ai, rep, (t1 - t0) / (double)n, n);
}

/* The cheapest lock any allocator that several processes share could take:
 * per pair, twice a compare-and-swap that acquires a word in a MAP_SHARED
 * page and a release store that drops it, with nothing for waiters and no
 * recovery from a dead owner. It bounds from below what any locked shared
 * heap pays per lifo-small pair on this machine, whatever its allocator. */
void run_cas_floor(int ai, int rep) {
  uint32_t *word = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (word == MAP_FAILED) {
    perror("bench: CAS floor: mmap");
    return;
  }
  const size_t n = scaled(workloads[W_LIFO].steps);
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

/* The steps a slow_scan allocator runs: a prefix of the warm-up and of the
 * timed part, unless --no-cap; marks the row capped when it cuts. */
static void live_caps(enum workload_id w, enum row_id r, int ai, size_t *warm,
                      size_t *timed) {
  const struct workload *wl = &workloads[w];
  if (!allocs[ai]->slow_scan || opt.no_cap)
    return;
  if (wl->slow_cap != 0 && *timed > wl->slow_cap) {
    *timed = wl->slow_cap;
    capped[r][ai] = true;
  }
  if (wl->slow_warm != 0 && *warm > wl->slow_warm) {
    *warm = wl->slow_warm;
    capped[r][ai] = true;
  }
}

void run_live(enum workload_id w, int ai, int rep) {
  const struct workload *wl = &workloads[w];
  const struct allocator *a = allocs[ai];
  const struct live_stream *ls = &live_streams[w];
  const enum row_id r = (enum row_id)(R_LIVE_1K + (w - W_LIVE_1K));
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
  /* The timed steps always start at the same place in the stream. */
  const size_t warm = wl->live;
  size_t timed = ls->n_steps - warm, warm_done = warm;
  live_caps(w, r, ai, &warm_done, &timed);
  warm_steps[r][ai] = warm_done;
  if (a->loops->fill(ctx, slots, ls->fill, wl->live) != 0) {
    fail_run(a, w, "fill");
  } else if (a->loops->steps(ctx, slots, ls->victims, ls->sizes, warm_done) !=
             0) {
    fail_run(a, w, "warm-up");
  } else {
    const double t0 = now_ns();
    const int rc = a->loops->steps(ctx, slots, ls->victims + warm,
                                   ls->sizes + warm, timed);
    const double t1 = now_ns();
    if (rc != 0)
      fail_run(a, w, "step");
    else
      record(r, ai, rep, (t1 - t0) / (double)timed, timed);
    if (!a->shared && rc == 0)
      a->loops->release(ctx, slots, wl->live);
  }
  free(slots);
  segment_destroy(a, name, ctx);
}

void run_frag(int ai, int rep) {
  const struct workload *wl = &workloads[W_FRAG];
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

/* ------------------------------------------------------------------------ */
/* Multi-process workloads: the bodies of the forked processes              */

static int lifo_prepare(const struct allocator *a, void *ctx, int idx) {
  (void)a, (void)ctx, (void)idx;
  return 0;
}

/* Process IDX starts IDX quarters into the stream, so the processes do
 * not ask for the same sizes in lock step. */
static uint64_t lifo_run(const struct allocator *a, void *ctx, int idx,
                         double deadline) {
  return a->loops->lifo_until(
      ctx, lifo_sizes, (size_t)idx * (LIFO_STREAM / MAX_PROCS), deadline);
}

static const struct proc_job lifo_job = {lifo_prepare, lifo_run};

/* Each process's own live set (its private copy after fork); the fill and
 * a warm-up of as many steps are not timed. */
static void **live_slots;

static int live_prepare(const struct allocator *a, void *ctx, int idx) {
  const struct workload *wl = &workloads[W_LIVE_1K];
  const struct live_stream *ls = &live_streams[W_LIVE_1K];
  (void)idx;
  live_slots = xmalloc(wl->live * sizeof *live_slots);
  if (a->loops->fill(ctx, live_slots, ls->fill, wl->live) != 0)
    return -1;
  return a->loops->steps(ctx, live_slots, ls->victims, ls->sizes, wl->live);
}

static uint64_t live_run(const struct allocator *a, void *ctx, int idx,
                         double deadline) {
  const struct workload *wl = &workloads[W_LIVE_1K];
  const struct live_stream *ls = &live_streams[W_LIVE_1K];
  const size_t timed = ls->n_steps - wl->live;
  return a->loops->steps_until(ctx, live_slots, ls->victims + wl->live,
                               ls->sizes + wl->live, timed,
                               (size_t)idx * (timed / 2), deadline);
}

static const struct proc_job live_job = {live_prepare, live_run};

/* Rates in Mpairs/s, and the N-process rate over the 1-process rate. */
static void record_procs(enum row_id r, enum row_id rx, int ai, int rep,
                         double one, double many) {
  record(r, ai, rep, many / 1e6, 0);
  record(rx, ai, rep, many / one, 0);
}

void run_two_process(int ai, int rep) {
  const struct allocator *a = allocs[ai];
  const size_t len = workloads[W_TWOPROC].heap_len;
  const double one = run_procs(a, len, 1, &lifo_job);
  record(R_PROC_1, ai, rep, one / 1e6, 0);
  record_procs(R_PROC_2, R_PROC_2X, ai, rep, one,
               run_procs(a, len, 2, &lifo_job));
}

/* With two-process in the run, its 1- and 2-process rates of this
 * repetition stand; without it, they are measured here. */
void run_four_process(int ai, int rep) {
  const struct allocator *a = allocs[ai];
  const size_t len = workloads[W_FOURPROC].heap_len;
  if (!workloads[W_TWOPROC].selected)
    run_two_process(ai, rep);
  const double one = result[R_PROC_1][ai][rep] * 1e6;
  record_procs(R_PROC_4, R_PROC_4X, ai, rep, one,
               run_procs(a, len, 4, &lifo_job));
}

void run_two_process_live(int ai, int rep) {
  const struct allocator *a = allocs[ai];
  const size_t len = workloads[W_TWOPROC_LIVE].heap_len;
  const double one = run_procs(a, len, 1, &live_job);
  record(R_LIVE2_1, ai, rep, one / 1e6, 0);
  record_procs(R_LIVE2_2, R_LIVE2_X, ai, rep, one,
               run_procs(a, len, 2, &live_job));
}

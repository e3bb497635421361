/* crash-points.c: the crash cases that kill at exact moments: while the
 * lock is held, at every ordered write point of alloc, free and realloc
 * (with -Dcrash_points=true), half-way through create, and threads of one
 * process racing (and killed while they race).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crash.h"
#include "layout.h"
#include "shmheap.h"
#include "testutil.h"

/* ------------------------------------------------------------------------ */
/* /crash/lock-holder                                                        */

struct holder_arg {
  const char *name;
  int wfd;
  uint64_t seed;
};

/* Blocks inside a walk, i.e. holding the heap's lock, after telling the
 * parent through the pipe. */
static int holder_cb(const struct shmheap_block *b, void *arg) {
  (void)b;
  int fd = *(const int *)arg;
  char c = 'L';
  if (th_write_all(fd, &c, 1) != 0)
    _exit(3);
  for (;;)
    pause();
}

static int holder_child(void *arg) {
  const struct holder_arg *a = arg;
  shmheap_memory_handle mem = shmheap_connect(a->name);
  TH_CHILD_CHECK(mem != NULL);
  /* Leave the heap in some state: a few blocks, some freed, one leaked. */
  uint64_t rng = a->seed;
  void *p[4];
  for (unsigned i = 0; i < 4; i++) {
    p[i] = shmheap_alloc(mem, th_rand_below(&rng, 300));
    TH_CHILD_CHECK(p[i] != NULL);
  }
  for (unsigned i = 0; i < 3; i++)
    shmheap_free(mem, p[i]);
  int fd = a->wfd;
  int r = shmheap_walk(mem, holder_cb, &fd);
  (void)r;
  return 4; /* the walk returned: the callback never blocked */
}

/* Waits for the lock behind a holder, then uses the heap. */
static int waiter_child(void *arg) {
  const struct holder_arg *a = arg;
  shmheap_memory_handle mem = shmheap_connect(a->name);
  TH_CHILD_CHECK(mem != NULL);
  uint64_t rng = a->seed;
  for (unsigned i = 0; i < 40; i++) {
    size_t sz = th_rand_below(&rng, 500);
    void *p = shmheap_alloc(mem, sz);
    TH_CHILD_CHECK(p != NULL);
    th_fill(p, sz, i, 1);
    TH_CHILD_CHECK(th_check_fill(p, sz, i, 1) == -1);
    errno = 0;
    shmheap_free(mem, p);
    TH_CHILD_CHECK(errno == 0);
  }
  TH_CHILD_CHECK(shmheap_check(mem) == 0);
  shmheap_disconnect(mem);
  return 0;
}

/* Starts a holder and waits until it holds the lock. Returns its pid. */
static pid_t start_holder(struct holder_arg *ha, int fds[2]) {
  g_assert_cmpint(pipe(fds), ==, 0);
  ha->wfd = fds[1];
  pid_t pid = th_fork_start(holder_child, ha, 0);
  close(fds[1]);
  if (!read_byte_within(fds[0], 30000)) {
    kill(pid, SIGKILL);
    char buf[64];
    g_error("lock holder never reported holding the lock (%s)",
            describe_status(th_wait(pid), buf, sizeof buf));
  }
  return pid;
}

enum { HOLDER_KILLS = 300 };

static void test_lock_holder(void) {
  th_watchdog_arm(300, "/crash/lock-holder");
  const size_t len = 1u << 20;
  char name[64];
  th_shm_name(name, sizeof name, "crash");
  shmheap_memory_handle mem = shmheap_create(name, len);
  g_assert_nonnull(mem);
  uint64_t rng = 0x10c4u;
  struct pblock held[8];
  for (unsigned i = 0; i < 8; i++)
    pblock_alloc(mem, len, &held[i], th_rand_below(&rng, 3000), 400 + i);

  unsigned survived = 0, waited = 0;
  for (unsigned it = 0; it < HOLDER_KILLS; it++) {
    struct holder_arg ha = {name, -1, th_rand(&rng)};
    int fds[2];
    pid_t holder = start_holder(&ha, fds);
    /* Half of the time another process already queues for the lock, so
     * that it, not the parent, meets the dead owner. */
    pid_t waiter = -1;
    struct holder_arg wa = {name, -1, th_rand(&rng)};
    if (it % 2 == 0) {
      waiter = th_fork_start(waiter_child, &wa, 0);
      g_usleep((gulong)th_rand_below(&rng, 2000));
    }
    g_assert_cmpint(kill(holder, SIGKILL), ==, 0);
    int status = th_wait(holder);
    close(fds[0]);
    g_assert_true(killed_by(status, SIGKILL));

    g_assert_cmpint(shmheap_check(mem), ==, 0);
    void *p = shmheap_alloc(mem, 64);
    g_assert_nonnull(p);
    shmheap_free(mem, p);
    if (waiter > 0) {
      th_assert_child_ok(th_wait(waiter));
      waited++;
    }
    for (unsigned i = 0; i < 8; i++)
      pblock_verify(mem, &held[i]);
    survived++;
  }
  g_test_message("lock-holder: %u of %u lock holders killed, heap usable "
                 "after each (%u times a waiting process took over)",
                 survived, HOLDER_KILLS, waited);
  g_assert_cmpuint(survived, ==, HOLDER_KILLS);
  assert_heap_works(mem, len);
  exhaust_and_verify(mem, len, held, 8);
  for (unsigned i = 0; i < 8; i++)
    pblock_free(mem, &held[i]);
  assert_heap_works(mem, len);
  shmheap_destroy(NULL, mem);
}

/* ------------------------------------------------------------------------ */
/* /crash/points                                                             */

#ifdef SHMHEAP_TEST_CRASH_POINTS
/* The child's fixed script: allocs, frees that merge with no, one and both
 * neighbours, realloc shrinking with and without a split, growing in place
 * (taking part of and all of the next free block), moving, calloc. Blocks
 * are carved from the low end of the first fit, so consecutive allocations
 * lie in ascending order. Returns 0, or the line of a failed step. */
#define STEP(cond)                                                             \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "crash script: line %d: %s (errno %d)\n", __LINE__,      \
              #cond, errno);                                                   \
      return __LINE__ % 200 + 1;                                               \
    }                                                                          \
  } while (0)

static int fill_check(void *p, size_t n, uint64_t seed) {
  return th_check_fill(p, n, seed, 0) == -1;
}

static int crash_script(shmheap_memory_handle mem) {
  void *a = shmheap_alloc(mem, 100), *b = shmheap_alloc(mem, 200),
       *c = shmheap_alloc(mem, 300), *d = shmheap_alloc(mem, 400),
       *e = shmheap_alloc(mem, 500);
  STEP(a && b && c && d && e);
  STEP((char *)a < (char *)b && (char *)b < (char *)c &&
       (char *)c < (char *)d && (char *)d < (char *)e);
  th_fill(a, 100, 1, 0);
  shmheap_free(mem, b); /* a and c used: no merge */
  shmheap_free(mem, d); /* c and e used: no merge */
  shmheap_free(mem, c); /* b and d free: merges with both */
  shmheap_free(mem, e); /* b..d free below, the rest above: both again */

  /* Grow in place into the free block after x. */
  void *x = shmheap_alloc(mem, 1000), *y = shmheap_alloc(mem, 1000);
  STEP(x && y && (char *)y > (char *)x);
  th_fill(x, 1000, 2, 0);
  shmheap_free(mem, y);
  void *x2 = shmheap_realloc(mem, x, 1500);
  STEP(x2 == x && fill_check(x, 1000, 2));
  /* Move: the next block is used. */
  void *z = shmheap_alloc(mem, 100);
  STEP(z != NULL);
  void *x3 = shmheap_realloc(mem, x, 5000);
  STEP(x3 != NULL && x3 != x && fill_check(x3, 1000, 2));
  /* Shrink with a split, then by too little to split. */
  void *x4 = shmheap_realloc(mem, x3, 100);
  STEP(x4 == x3 && fill_check(x4, 100, 2));
  void *x5 = shmheap_realloc(mem, x4, 90);
  STEP(x5 == x4 && fill_check(x5, 90, 2));

  /* Grow taking the head of, then all of, a small free next block. */
  void *g = shmheap_alloc(mem, 100), *h = shmheap_alloc(mem, 100),
       *k = shmheap_alloc(mem, 100);
  STEP(g && h && k && (char *)g < (char *)h && (char *)h < (char *)k);
  th_fill(g, 100, 3, 0);
  shmheap_free(mem, h); /* 112 bytes free between g and k */
  void *g2 = shmheap_realloc(mem, g, 150);
  STEP(g2 == g && fill_check(g, 100, 3));
  void *g3 = shmheap_realloc(mem, g, 200);
  STEP(g3 == g && fill_check(g, 100, 3));

  /* Grow over all of the top, the free block that ends the heap (the
   * largest free block here): first a block that leaves it too small to
   * hold more than a sliver, then that block grown by more than a split
   * would leave. */
  struct shmheap_stats st;
  STEP(shmheap_stats(mem, &st) == 0);
  void *t = shmheap_alloc(mem, st.largest_free - 64);
  STEP(t != NULL);
  th_fill(t, 100, 4, 0);
  void *t2 = shmheap_realloc(mem, t, st.largest_free);
  STEP(t2 == t && fill_check(t, 100, 4));
  /* Shrink that block, which ends the heap: its tail becomes the top. */
  void *t3 = shmheap_realloc(mem, t, 100);
  STEP(t3 == t && fill_check(t, 100, 4));

  /* realloc(NULL), realloc(p, 0), calloc. */
  void *n = shmheap_realloc(mem, NULL, 64);
  STEP(n != NULL);
  void *n0 = shmheap_realloc(mem, n, 0);
  STEP(n0 == n);
  unsigned char *zc = shmheap_calloc(mem, 10, 33);
  STEP(zc != NULL);
  for (unsigned i = 0; i < 330; i++)
    STEP(zc[i] == 0);

  STEP(fill_check(a, 100, 1));
  void *frees[] = {a, z, x5, g, k, n0, zc, t};
  for (size_t i = 0; i < G_N_ELEMENTS(frees); i++) {
    errno = 0;
    shmheap_free(mem, frees[i]);
    STEP(errno == 0);
  }
  STEP(shmheap_check(mem) == 0);
  return 0;
}

struct points_arg {
  const char *name;
  long n;
};

static int points_child(void *arg) {
  const struct points_arg *a = arg;
  char buf[32];
  snprintf(buf, sizeof buf, "%ld", a->n);
  setenv("SHMHEAP_CRASH_AT", buf, 1);
  shmheap_memory_handle mem = shmheap_connect(a->name);
  TH_CHILD_CHECK(mem != NULL);
  int r = crash_script(mem);
  if (r != 0)
    return r;
  shmheap_disconnect(mem);
  return 0;
}
#endif

static void test_points(void) {
  th_watchdog_arm(300, "/crash/points");
#ifndef SHMHEAP_TEST_CRASH_POINTS
  g_test_skip("needs a build with -Dcrash_points=true");
#else
  const size_t len = 64u << 10;
  unsetenv("SHMHEAP_CRASH_AT");
  long covered = 0;
  bool completed = false;
  for (long n = 1; n <= 5000 && !completed; n++) {
    char name[64];
    th_shm_name(name, sizeof name, "crash");
    shmheap_memory_handle mem = shmheap_create(name, len);
    g_assert_nonnull(mem);
    /* The parent's blocks come first; a hole between them (freed) so the
     * script's first fits are not all at the end. */
    struct pblock pb[4];
    pblock_alloc(mem, len, &pb[0], 300, 1);
    pblock_alloc(mem, len, &pb[1], 40, 2);
    pblock_alloc(mem, len, &pb[2], 1000, 3);
    pblock_alloc(mem, len, &pb[3], 17, 4);
    pblock_free(mem, &pb[1]);

    struct points_arg pa = {name, n};
    int status = th_fork_run(points_child, &pa, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      completed = true;
    } else if (killed_by(status, SIGKILL)) {
      covered++;
    } else {
      char buf[64];
      g_error("crash point %ld: child ended by %s", n,
              describe_status(status, buf, sizeof buf));
    }
    /* Whether the child died at point n or finished: the next locker
     * repairs, the parent's blocks are intact, no free byte is handed out
     * twice, and alloc/free work. */
    if (shmheap_check(mem) != 0)
      g_error("crash point %ld: check failed after the child died (errno %d)",
              n, errno);
    for (unsigned i = 0; i < 4; i++)
      if (pb[i].p)
        pblock_verify(mem, &pb[i]);
    assert_heap_works(mem, len);
    exhaust_and_verify(mem, len, pb, 4);
    for (unsigned i = 0; i < 4; i++)
      if (pb[i].p)
        pblock_free(mem, &pb[i]);
    g_assert_cmpint(shmheap_check(mem), ==, 0);
    if (completed) {
      /* A child that finished left nothing behind: the heap is empty. */
      void *all = shmheap_alloc(mem, len - SHMHEAP_OVERHEAD);
      g_assert_nonnull(all);
      shmheap_free(mem, all);
    }
    shmheap_destroy(NULL, mem);
  }
  g_test_message("crash points: %ld write points covered, the script then "
                 "ran to completion",
                 covered);
  g_assert_true(completed);
  g_assert_cmpint(covered, >, 0);
#endif
}

/* ------------------------------------------------------------------------ */
/* /crash/half-created                                                       */

struct half_arg {
  const char *name;
  size_t len;
  int how; /* 0: died after shm_open; 1: after sizing; 2: wrote junk */
};

/* A creator that dies half-way: makes the object, maybe sizes it, and
 * exits without initialising the heap. */
static int half_creator(void *arg) {
  const struct half_arg *a = arg;
  int fd = shm_open(a->name, O_CREAT | O_EXCL | O_RDWR, 0600);
  TH_CHILD_CHECK(fd >= 0);
  if (a->how >= 1)
    TH_CHILD_CHECK(posix_fallocate(fd, 0, (off_t)a->len) == 0);
  if (a->how == 2) {
    /* the first fields of a real header, but not the ready state */
    const uint32_t magic = 0x484d4853u;
    TH_CHILD_CHECK(pwrite(fd, &magic, 4, 0) == 4);
  }
  _exit(0);
}

/* A sized object whose header is not ready may be a heap still being made
 * in place (where links are not possible): EAGAIN after the bounded wait.
 * An empty object is never a heap being made (create publishes whole,
 * sized heaps): EINVAL, not a heap. */
static int half_connector(void *arg) {
  const struct half_arg *a = arg;
  errno = 0;
  shmheap_memory_handle mem = shmheap_connect(a->name);
  if (mem != NULL)
    return 10;
  if (errno == (a->how == 0 ? EINVAL : EAGAIN))
    return 0;
  fprintf(stderr, "connect to a half-created heap: errno %d (%s)\n", errno,
          strerror(errno));
  return errno == EINVAL ? 11 : errno == EAGAIN ? 13 : 12;
}

static void test_half_created(void) {
  th_watchdog_arm(120, "/crash/half-created");
  const size_t len = 64u << 10;
  static const char *what[] = {"after shm_open", "after sizing",
                               "after writing the magic"};
  for (int how = 0; how < 3; how++) {
    char name[64];
    th_shm_name(name, sizeof name, "crash");
    struct half_arg ha = {name, len, how};
    th_assert_child_ok(th_fork_run(half_creator, &ha, 0));
    g_assert_true(th_shm_exists(name));

    /* connect reports it, in bounded time, from another process */
    gint64 t0 = g_get_monotonic_time();
    int status = th_fork_run(half_connector, &ha, 10);
    double secs = (double)(g_get_monotonic_time() - t0) / 1e6;
    char buf[64];
    g_test_message("half-created (%s): connect gave %s after %.2f s", what[how],
                   describe_status(status, buf, sizeof buf), secs);
    th_assert_child_ok(status);
    g_assert_cmpfloat(secs, <, 5.0);

    /* create refuses the name and leaves the object alone */
    errno = 0;
    g_assert_null(shmheap_create(name, len));
    g_assert_cmpint(errno, ==, EEXIST);
    g_assert_true(th_shm_exists(name));

    /* the operator's remedy removes it; the name is usable again */
    errno = 0;
    shmheap_destroy(name, NULL);
    g_assert_cmpint(errno, ==, 0);
    g_assert_false(th_shm_exists(name));
    shmheap_memory_handle mem = shmheap_create(name, len);
    g_assert_nonnull(mem);
    assert_heap_works(mem, len);
    shmheap_destroy(NULL, mem);
    g_assert_false(th_shm_exists(name));
  }
}

/* ------------------------------------------------------------------------ */
/* /crash/threads and /crash/threads-kill                                    */

struct thr_arg {
  shmheap_memory_handle mem;
  size_t len;
  unsigned iters;
  uint64_t seed;
  int failed; /* set by the thread: line of the first failed check */
};

#define THR_CHECK(cond)                                                        \
  do {                                                                         \
    if (!(cond)) {                                                             \
      a->failed = __LINE__;                                                    \
      goto out;                                                                \
    }                                                                          \
  } while (0)

/* Random alloc/calloc/realloc/free on blocks only this thread owns, each
 * checked for its pattern before it is touched, so any overlap with another
 * thread's block shows. */
static void *thr_main(void *arg) {
  struct thr_arg *a = arg;
  enum { SLOTS = 32 };
  struct pblock s[SLOTS] = {{0}};
  uint64_t rng = a->seed;
  for (unsigned it = 0; it < a->iters; it++) {
    struct pblock *b = &s[th_rand_below(&rng, SLOTS)];
    uint64_t r = th_rand(&rng);
    size_t sz = th_rand_below(&rng, r & 1 ? 128 : 3000);
    if (b->p == NULL) {
      void *p =
          r & 2 ? shmheap_calloc(a->mem, sz, 1) : shmheap_alloc(a->mem, sz);
      if (p == NULL) {
        THR_CHECK(errno == ENOMEM);
        continue;
      }
      THR_CHECK(in_heap(a->mem, a->len, p, sz));
      if (r & 2)
        for (size_t i = 0; i < sz; i++)
          THR_CHECK(((unsigned char *)p)[i] == 0);
      *b = (struct pblock){p, sz, th_rand(&rng)};
      th_fill(p, sz, b->seed, (uintptr_t)p);
    } else {
      THR_CHECK(th_check_fill(b->p, b->sz, b->seed, (uintptr_t)b->p) == -1);
      if (r & 4) {
        errno = 0;
        shmheap_free(a->mem, b->p);
        THR_CHECK(errno == 0);
        b->p = NULL;
      } else {
        void *q = shmheap_realloc(a->mem, b->p, sz);
        if (q == NULL) {
          THR_CHECK(errno == ENOMEM);
          continue;
        }
        size_t keep = sz < b->sz ? sz : b->sz;
        THR_CHECK(th_check_fill(q, keep, b->seed, (uintptr_t)b->p) == -1);
        *b = (struct pblock){q, sz, th_rand(&rng)};
        th_fill(q, sz, b->seed, (uintptr_t)q);
      }
    }
    if (it % 1000 == 0)
      THR_CHECK(shmheap_check(a->mem) == 0);
  }
out:
  for (unsigned i = 0; i < SLOTS; i++)
    if (s[i].p)
      shmheap_free(a->mem, s[i].p);
  return NULL;
}

static void run_threads(shmheap_memory_handle mem, size_t len, unsigned n,
                        unsigned iters, pthread_t *tid, struct thr_arg *ta) {
  for (unsigned i = 0; i < n; i++) {
    ta[i] = (struct thr_arg){mem, len, iters, 0x7e1u * (i + 1), 0};
    g_assert_cmpint(pthread_create(&tid[i], NULL, thr_main, &ta[i]), ==, 0);
  }
}

static void join_threads(unsigned n, pthread_t *tid, struct thr_arg *ta) {
  for (unsigned i = 0; i < n; i++) {
    g_assert_cmpint(pthread_join(tid[i], NULL), ==, 0);
    if (ta[i].failed)
      g_error("thread %u failed a check at line %d", i, ta[i].failed);
  }
}

static void test_threads(void) {
  th_watchdog_arm(300, "/crash/threads");
  const size_t len = 2u << 20;
  char name[64];
  th_shm_name(name, sizeof name, "crash");
  shmheap_memory_handle mem = shmheap_create(name, len);
  g_assert_nonnull(mem);
  enum { N = 4 };
  pthread_t tid[N];
  struct thr_arg ta[N];
  run_threads(mem, len, N, 20000, tid, ta);
  join_threads(N, tid, ta);
  /* every thread freed what it held: the heap is one free block again */
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  void *all = shmheap_alloc(mem, len - SHMHEAP_OVERHEAD);
  g_assert_nonnull(all);
  shmheap_free(mem, all);
  shmheap_destroy(NULL, mem);
}

/* Threads race while, in the same process, lock holders in other processes
 * are killed: the threads themselves meet dead owners and repair. */
static void test_threads_kill(void) {
  th_watchdog_arm(300, "/crash/threads-kill");
  const size_t len = 2u << 20;
  char name[64];
  th_shm_name(name, sizeof name, "crash");
  shmheap_memory_handle mem = shmheap_create(name, len);
  g_assert_nonnull(mem);
  enum { N = 3, KILLS = 60 };
  pthread_t tid[N];
  struct thr_arg ta[N];
  run_threads(mem, len, N, 15000, tid, ta);
  uint64_t rng = 0x7ea7u;
  for (unsigned k = 0; k < KILLS; k++) {
    struct holder_arg ha = {name, -1, th_rand(&rng)};
    int fds[2];
    pid_t holder = start_holder(&ha, fds);
    g_usleep((gulong)th_rand_below(&rng, 1000));
    g_assert_cmpint(kill(holder, SIGKILL), ==, 0);
    g_assert_true(killed_by(th_wait(holder), SIGKILL));
    close(fds[0]);
  }
  join_threads(N, tid, ta);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  /* only the holders' one leaked block each remains */
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(mem, &st), ==, 0);
  g_assert_cmpuint(st.used_blocks, <=, KILLS);
  assert_heap_works(mem, len);
  g_test_message("threads-kill: %u lock holders killed while %u threads "
                 "raced; %" PRIu64 " blocks leaked by the holders",
                 KILLS, N, st.used_blocks);
  shmheap_destroy(NULL, mem);
}

void crash_points_cases(void) {
  th_add_func("/crash/lock-holder", test_lock_holder);
  th_add_func("/crash/points", test_points);
  th_add_func("/crash/half-created", test_half_created);
  th_add_func("/crash/threads", test_threads);
  th_add_func("/crash/threads-kill", test_threads_kill);
}

/* test-grow: growable heaps. Growth on demand from 64 KiB to tens of MiB
 * with every object's contents and address kept; a peer connected before
 * the growth using the new space both ways; processes and threads growing
 * one heap at once; max_len and a full /dev/shm (ENOMEM from alloc, ENOSPC
 * from grow, never SIGBUS); bad arguments; and growths killed at random
 * moments and at every ordered write.
 */

#include <pthread.h>
#include <sched.h>
#include <sys/mount.h>
#include <time.h>

#include "layout.h"
#include "testutil.h"

enum { KIB = 1024, MIB = 1024 * 1024 };

static size_t page(void) {
  return (size_t)sysconf(_SC_PAGESIZE);
}

struct obj {
  unsigned char *p;
  size_t n;
  uint64_t seed;
};

static struct shmheap_stats stats_of(shmheap_memory_handle mem) {
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(mem, &st), ==, 0);
  return st;
}

/* ------------------------------------------------------------------------ */

static void test_bad_args(void) {
  char name[96];
  th_shm_name(name, sizeof name, "grow");
  size_t pg = page();
  struct {
    size_t len, max;
    mode_t mode;
  } bad[] = {
      {64 * KIB, 32 * KIB, 0600},     /* max_len < len */
      {64 * KIB, 64 * KIB + 1, 0600}, /* max_len not a page multiple */
      {64 * KIB, (size_t)SHH_MAX_LEN * 2, 0600}, /* over 2^48 */
      {64 * KIB + 1, MIB, 0600},                 /* len not a page multiple */
      {0, MIB, 0600},                            /* len 0 */
      {64 * KIB, 0, 0600},                       /* no max_len */
      {64 * KIB, MIB, 01777},                    /* mode */
  };
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    errno = 0;
    g_assert_null(
        shmheap_create_growable(name, bad[i].len, bad[i].max, bad[i].mode));
    g_assert_cmpint(errno, ==, EINVAL);
    g_assert_false(th_shm_exists(name));
  }
  errno = 0;
  g_assert_null(shmheap_create_growable("no-slash", 64 * KIB, MIB, 0600));
  g_assert_cmpint(errno, ==, EINVAL);

  shmheap_memory_handle mem =
      shmheap_create_growable(name, 64 * KIB, MIB, 0600);
  g_assert_nonnull(mem);
  struct shmheap_stats st = stats_of(mem);
  g_assert_cmpuint(st.size, ==, 64 * KIB);
  g_assert_cmpuint(st.max_size, ==, MIB);
  /* a heap made with max_len == len is growable in name only */
  errno = 0;
  g_assert_cmpint(shmheap_grow(NULL, MIB), ==, -1);
  g_assert_cmpint(errno, ==, EINVAL);
  errno = 0;
  g_assert_cmpint(shmheap_grow(mem, 128 * KIB + 1), ==, -1);
  g_assert_cmpint(errno, ==, EINVAL);
  errno = 0;
  g_assert_cmpint(shmheap_grow(mem, MIB + pg), ==, -1);
  g_assert_cmpint(errno, ==, EINVAL);
  g_assert_cmpuint(stats_of(mem).size, ==, 64 * KIB);
  /* not larger: nothing to do */
  g_assert_cmpint(shmheap_grow(mem, 32 * KIB), ==, 0);
  g_assert_cmpint(shmheap_grow(mem, 64 * KIB), ==, 0);
  g_assert_cmpuint(stats_of(mem).size, ==, 64 * KIB);
  /* one page, then to the top */
  g_assert_cmpint(shmheap_grow(mem, 64 * KIB + pg), ==, 0);
  g_assert_cmpuint(stats_of(mem).size, ==, 64 * KIB + pg);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  g_assert_cmpint(shmheap_grow(mem, MIB), ==, 0);
  st = stats_of(mem);
  g_assert_cmpuint(st.size, ==, MIB);
  g_assert_cmpuint(st.free_blocks, ==, 1);
  g_assert_cmpuint(st.largest_free, ==, MIB - SHMHEAP_OVERHEAD);
  void *all = shmheap_alloc(mem, MIB - SHMHEAP_OVERHEAD);
  g_assert_nonnull(all);
  shmheap_free(mem, all);
  shmheap_destroy(NULL, mem);
  g_assert_false(th_shm_exists(name));

  /* a non-growable heap refuses to grow, and its max_size is its size */
  mem = shmheap_create(name, 64 * KIB);
  g_assert_nonnull(mem);
  errno = 0;
  g_assert_cmpint(shmheap_grow(mem, 128 * KIB), ==, -1);
  g_assert_cmpint(errno, ==, EINVAL);
  st = stats_of(mem);
  g_assert_cmpuint(st.max_size, ==, 64 * KIB);
  g_assert_cmpuint(st.size, ==, 64 * KIB);
  shmheap_destroy(NULL, mem);
}

/* ------------------------------------------------------------------------ */

/* Grows a 64 KiB heap to about 48 MiB by allocation alone; every object
 * keeps its address and contents; then everything is freed and the whole
 * grown heap is one block again. */
static void test_large(void) {
  char name[96];
  th_shm_name(name, sizeof name, "grow");
  const size_t max = 64 * MIB;
  shmheap_memory_handle mem =
      shmheap_create_growable(name, 64 * KIB, max, 0600);
  g_assert_nonnull(mem);
  unsigned char *base = shmheap_underlying(mem);
  enum { N = 3000 };
  struct obj *o = g_new0(struct obj, N);
  uint64_t rng = 42, total = 0;
  size_t steps = 0, last = 64 * KIB;
  for (unsigned i = 0; i < N && total < 40 * MIB; i++) {
    size_t n = 1 + th_rand_below(&rng, i % 50 == 49 ? 400 * KIB : 20 * KIB);
    o[i].p = shmheap_alloc(mem, n);
    g_assert_nonnull(o[i].p);
    o[i].n = n;
    o[i].seed = i + 1;
    th_fill(o[i].p, n, o[i].seed, (uint64_t)(o[i].p - base));
    total += n;
    size_t now = stats_of(mem).size;
    if (now != last) {
      g_assert_cmpuint(now, >, last);
      g_assert_cmpuint(now % page(), ==, 0);
      steps++;
      last = now;
    }
    if (i % 7 == 3 && o[i / 2].p != NULL) { /* holes too */
      shmheap_free(mem, o[i / 2].p);
      o[i / 2].p = NULL;
    }
  }
  g_assert_true(shmheap_underlying(mem) == base);
  g_assert_cmpuint(last, >=, 32 * MIB);
  g_test_message("grew 64 KiB -> %zu KiB in %zu steps", last / KIB, steps);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  for (unsigned i = 0; i < N; i++)
    if (o[i].p != NULL) {
      g_assert_cmpint(
          th_check_fill(o[i].p, o[i].n, o[i].seed, (uint64_t)(o[i].p - base)),
          ==, -1);
      g_assert_cmpuint(shmheap_usable_size(mem, o[i].p), >=, o[i].n);
      shmheap_free(mem, o[i].p);
    }
  g_free(o);
  struct shmheap_stats st = stats_of(mem);
  g_assert_cmpuint(st.used_blocks, ==, 0);
  g_assert_cmpuint(st.free_blocks, ==, 1);
  void *all = shmheap_alloc(mem, st.size - SHMHEAP_OVERHEAD);
  g_assert_nonnull(all);
  g_assert_true(shmheap_ptr_to_handle(mem, (char *)all + st.size - 81) != 0);
  shmheap_free(mem, all);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  shmheap_destroy(NULL, mem);
}

/* realloc grows the heap too, and a realloc into new space keeps contents */
static void test_realloc(void) {
  char name[96];
  th_shm_name(name, sizeof name, "grow");
  shmheap_memory_handle mem =
      shmheap_create_growable(name, 64 * KIB, 8 * MIB, 0600);
  g_assert_nonnull(mem);
  unsigned char *p = shmheap_alloc(mem, 1000);
  g_assert_nonnull(p);
  th_fill(p, 1000, 7, 0);
  unsigned char *q = shmheap_realloc(mem, p, 3 * MIB);
  g_assert_nonnull(q);
  g_assert_cmpint(th_check_fill(q, 1000, 7, 0), ==, -1);
  memset(q + 1000, 0xab, 3 * MIB - 1000);
  g_assert_cmpuint(stats_of(mem).size, >=, 3 * MIB);
  unsigned char *z = shmheap_calloc(mem, 1, 2 * MIB);
  g_assert_nonnull(z);
  for (size_t i = 0; i < 2 * MIB; i += 4096)
    g_assert_cmpint(z[i], ==, 0);
  errno = 0;
  g_assert_null(shmheap_realloc(mem, q, 9 * MIB));
  g_assert_cmpint(errno, ==, ENOMEM);
  g_assert_cmpint(th_check_fill(q, 1000, 7, 0), ==, -1);
  shmheap_free(mem, z);
  shmheap_free(mem, q);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  shmheap_destroy(NULL, mem);
}

/* ------------------------------------------------------------------------ */

/* max_len reached: ENOMEM, nothing changed, everything intact. */
static void test_max(void) {
  char name[96];
  th_shm_name(name, sizeof name, "grow");
  const size_t max = 256 * KIB;
  shmheap_memory_handle mem =
      shmheap_create_growable(name, 64 * KIB, max, 0600);
  g_assert_nonnull(mem);
  unsigned char *base = shmheap_underlying(mem);
  struct obj o[64];
  unsigned n = 0;
  for (; n < 64; n++) {
    o[n].p = shmheap_alloc(mem, 5000);
    if (o[n].p == NULL)
      break;
    o[n].n = 5000;
    o[n].seed = n;
    th_fill(o[n].p, 5000, n, (uint64_t)(o[n].p - base));
  }
  g_assert_cmpint(errno, ==, ENOMEM);
  g_assert_cmpuint(n, >=, 40);
  struct shmheap_stats before = stats_of(mem);
  g_assert_cmpuint(before.size, ==, max);
  errno = 0;
  g_assert_null(shmheap_alloc(mem, max));
  g_assert_cmpint(errno, ==, ENOMEM);
  errno = 0;
  g_assert_null(shmheap_alloc(mem, SIZE_MAX));
  g_assert_cmpint(errno, ==, ENOMEM);
  struct shmheap_stats after = stats_of(mem);
  g_assert_cmpmem(&before, sizeof before, &after, sizeof after);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  for (unsigned i = 0; i < n; i++) {
    g_assert_cmpint(th_check_fill(o[i].p, 5000, i, (uint64_t)(o[i].p - base)),
                    ==, -1);
    shmheap_free(mem, o[i].p);
  }
  g_assert_nonnull(shmheap_alloc(mem, max - SHMHEAP_OVERHEAD));
  shmheap_destroy(NULL, mem);
}

/* ------------------------------------------------------------------------ */

/* A peer connected before the growth: it allocates in the new space and
 * reads the parent's objects there, and the parent reads the peer's. */
struct peer_arg {
  const char *name;
  int to_child[2], to_parent[2];
};

static int peer_child(void *arg) {
  struct peer_arg *a = arg;
  shmheap_memory_handle mem = shmheap_connect(a->name);
  TH_CHILD_CHECK(mem != NULL);
  uint64_t msg = 1;
  TH_CHILD_CHECK(th_write_all(a->to_parent[1], &msg, 8) == 0); /* connected */
  uint64_t hdl;
  TH_CHILD_CHECK(th_read_all(a->to_child[0], &hdl, 8) == 0);
  /* the parent's object, in space that did not exist at connect */
  TH_CHILD_CHECK(hdl >= 64 * KIB);
  unsigned char *p = shmheap_handle_to_ptr(mem, hdl);
  TH_CHILD_CHECK(p != NULL);
  TH_CHILD_CHECK(th_check_fill(p, 2 * MIB, 11, hdl) == -1);
  TH_CHILD_CHECK(shmheap_usable_size(mem, p) >= 2 * MIB);
  /* our own objects there, until the heap grows again */
  unsigned char *q = shmheap_alloc(mem, 3 * MIB);
  TH_CHILD_CHECK(q != NULL);
  uint64_t qh = shmheap_ptr_to_handle(mem, q);
  TH_CHILD_CHECK(qh >= 64 * KIB);
  th_fill(q, 3 * MIB, 12, qh);
  TH_CHILD_CHECK(th_write_all(a->to_parent[1], &qh, 8) == 0);
  errno = 0;
  shmheap_free(mem, p); /* the parent's object, freed by the peer */
  TH_CHILD_CHECK(errno == 0);
  TH_CHILD_CHECK(shmheap_check(mem) == 0);
  shmheap_disconnect(mem);
  return 0;
}

static void test_peer(void) {
  char name[96];
  th_shm_name(name, sizeof name, "grow");
  shmheap_memory_handle mem =
      shmheap_create_growable(name, 64 * KIB, 32 * MIB, 0600);
  g_assert_nonnull(mem);
  /* the initial heap taken whole, so the peer's view must follow growth */
  void *filler = shmheap_alloc(mem, 64 * KIB - SHMHEAP_OVERHEAD);
  g_assert_nonnull(filler);
  struct peer_arg a = {name, {-1, -1}, {-1, -1}};
  g_assert_cmpint(pipe(a.to_child), ==, 0);
  g_assert_cmpint(pipe(a.to_parent), ==, 0);
  th_watchdog_arm(60, "/grow/peer");
  pid_t pid = th_fork_start(peer_child, &a, 0);
  /* the child's ends, so that a child that dies gives EOF, not a hang */
  close(a.to_child[0]);
  close(a.to_parent[1]);
  uint64_t msg;
  g_assert_cmpint(th_read_all(a.to_parent[0], &msg, 8), ==, 0);
  unsigned char *p = shmheap_alloc(mem, 2 * MIB);
  g_assert_nonnull(p);
  uint64_t hdl = shmheap_ptr_to_handle(mem, p);
  th_fill(p, 2 * MIB, 11, hdl);
  g_assert_cmpint(th_write_all(a.to_child[1], &hdl, 8), ==, 0);
  uint64_t qh;
  g_assert_cmpint(th_read_all(a.to_parent[0], &qh, 8), ==, 0);
  th_assert_child_ok(th_wait(pid));
  unsigned char *q = shmheap_handle_to_ptr(mem, qh);
  g_assert_nonnull(q);
  g_assert_cmpint(th_check_fill(q, 3 * MIB, 12, qh), ==, -1);
  g_assert_cmpuint(shmheap_usable_size(mem, q), >=, 3 * MIB);
  /* the peer freed the parent's block */
  errno = 0;
  g_assert_cmpuint(shmheap_usable_size(mem, p), ==, 0);
  g_assert_cmpint(errno, ==, EINVAL);
  shmheap_free(mem, q);
  shmheap_free(mem, filler);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  close(a.to_child[1]);
  close(a.to_parent[0]);
  th_watchdog_disarm();
  shmheap_destroy(NULL, mem);
}

/* ------------------------------------------------------------------------ */

/* 4 processes x 2 threads allocate (and free some) until the heap has
 * grown many times over; every object is checked at the end. */
enum { RACE_PROCS = 4, RACE_THREADS = 2, RACE_OBJS = 400 };

struct race_thread {
  shmheap_memory_handle mem;
  unsigned id;
  int bad;
};

static void *race_thread(void *arg) {
  struct race_thread *t = arg;
  unsigned char *base = shmheap_underlying(t->mem);
  struct obj o[RACE_OBJS];
  uint64_t rng = t->id * 7919 + 1;
  for (unsigned i = 0; i < RACE_OBJS; i++) {
    size_t n = 16 + th_rand_below(&rng, i % 40 == 0 ? 200 * KIB : 6 * KIB);
    o[i].p = shmheap_alloc(t->mem, n);
    if (o[i].p == NULL) {
      t->bad = 1;
      return NULL;
    }
    o[i].n = n;
    o[i].seed = t->id * 100000 + i;
    th_fill(o[i].p, n, o[i].seed, (uint64_t)(o[i].p - base));
    if (i % 3 == 2) {
      unsigned k = i - 1;
      if (th_check_fill(o[k].p, o[k].n, o[k].seed, (uint64_t)(o[k].p - base)) !=
          -1)
        t->bad = 1;
      shmheap_free(t->mem, o[k].p);
      o[k].p = NULL;
    }
  }
  for (unsigned i = 0; i < RACE_OBJS; i++)
    if (o[i].p != NULL) {
      if (th_check_fill(o[i].p, o[i].n, o[i].seed, (uint64_t)(o[i].p - base)) !=
          -1)
        t->bad = 1;
      shmheap_free(t->mem, o[i].p);
    }
  return NULL;
}

static int race_proc(void *arg) {
  const char *name = arg;
  shmheap_memory_handle mem = shmheap_connect(name);
  TH_CHILD_CHECK(mem != NULL);
  pthread_t th[RACE_THREADS];
  struct race_thread t[RACE_THREADS];
  unsigned seed = (unsigned)getpid();
  for (unsigned i = 0; i < RACE_THREADS; i++) {
    t[i] = (struct race_thread){mem, seed * 4 + i, 0};
    TH_CHILD_CHECK(pthread_create(&th[i], NULL, race_thread, &t[i]) == 0);
  }
  for (unsigned i = 0; i < RACE_THREADS; i++) {
    TH_CHILD_CHECK(pthread_join(th[i], NULL) == 0);
    TH_CHILD_CHECK(t[i].bad == 0);
  }
  TH_CHILD_CHECK(shmheap_check(mem) == 0);
  shmheap_disconnect(mem);
  return 0;
}

static void test_race(void) {
  char name[96];
  th_shm_name(name, sizeof name, "grow");
  shmheap_memory_handle mem =
      shmheap_create_growable(name, 64 * KIB, 256 * MIB, 0600);
  g_assert_nonnull(mem);
  pid_t pid[RACE_PROCS];
  for (unsigned i = 0; i < RACE_PROCS; i++)
    pid[i] = th_fork_start(race_proc, name, 0);
  for (unsigned i = 0; i < RACE_PROCS; i++)
    th_assert_child_ok(th_wait(pid[i]));
  struct shmheap_stats st = stats_of(mem);
  g_test_message("4 x 2 threads grew the heap to %" G_GUINT64_FORMAT " KiB",
                 st.size / KIB);
  g_assert_cmpuint(st.size, >, 1 * MIB);
  g_assert_cmpuint(st.used_blocks, ==, 0);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  g_assert_nonnull(shmheap_alloc(mem, st.size - SHMHEAP_OVERHEAD));
  shmheap_destroy(NULL, mem);
}

/* ------------------------------------------------------------------------ */

/* Connects while another process grows the heap page by page: every
 * connect succeeds (the header's len may pass the size connect saw). */
static int grow_pages(void *arg) {
  shmheap_memory_handle mem = shmheap_connect(arg);
  TH_CHILD_CHECK(mem != NULL);
  size_t pg = page();
  for (size_t len = 64 * KIB + pg; len <= 8 * 1024 * KIB; len += pg)
    TH_CHILD_CHECK(shmheap_grow(mem, len) == 0);
  shmheap_disconnect(mem);
  return 0;
}

static void test_connect_while_growing(void) {
  char name[96];
  th_shm_name(name, sizeof name, "grow");
  shmheap_memory_handle mem =
      shmheap_create_growable(name, 64 * KIB, 8 * MIB, 0600);
  g_assert_nonnull(mem);
  pid_t pid = th_fork_start(grow_pages, name, 0);
  unsigned connects = 0;
  for (;;) {
    shmheap_memory_handle peer = shmheap_connect(name);
    if (peer == NULL)
      g_error("connect during growth failed: errno %d", errno);
    connects++;
    struct shmheap_stats st = stats_of(peer);
    shmheap_disconnect(peer);
    if (st.size == 8 * MIB)
      break;
  }
  th_assert_child_ok(th_wait(pid));
  g_test_message("%u connects while the heap grew by 2032 pages", connects);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  shmheap_destroy(NULL, mem);
}

/* ------------------------------------------------------------------------ */

/* /dev/shm fills up during growth: a private small tmpfs on /dev/shm. */
static int full_child(void *arg) {
  (void)arg;
  if (unshare(CLONE_NEWNS) != 0)
    return 77;
  if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
    return 77;
  if (mount("shmheap-test", "/dev/shm", "tmpfs", 0, "size=1m") != 0)
    return 77;
  const char *name = "/shmheap-test-grow-full";
  shmheap_memory_handle mem =
      shmheap_create_growable(name, 64 * KIB, 16 * MIB, 0600);
  TH_CHILD_CHECK(mem != NULL);
  unsigned char *base = shmheap_underlying(mem);
  struct obj o[64];
  unsigned n = 0;
  errno = 0;
  for (; n < 64; n++) {
    o[n].p = shmheap_alloc(mem, 20 * KIB);
    if (o[n].p == NULL)
      break;
    o[n].n = 20 * KIB;
    th_fill(o[n].p, o[n].n, n, (uint64_t)(o[n].p - base));
  }
  TH_CHILD_CHECK(n < 64 && errno == ENOMEM);
  struct shmheap_stats st;
  TH_CHILD_CHECK(shmheap_stats(mem, &st) == 0);
  TH_CHILD_CHECK(st.size <= 1 * MIB && st.size > 512 * KIB);
  errno = 0;
  TH_CHILD_CHECK(shmheap_grow(mem, 4 * MIB) == -1 && errno == ENOSPC);
  struct shmheap_stats st2;
  TH_CHILD_CHECK(shmheap_stats(mem, &st2) == 0 && st2.size == st.size);
  TH_CHILD_CHECK(shmheap_check(mem) == 0);
  /* every byte of the heap can be touched: no SIGBUS */
  for (unsigned i = 0; i < n; i++)
    TH_CHILD_CHECK(
        th_check_fill(o[i].p, o[i].n, i, (uint64_t)(o[i].p - base)) == -1);
  for (uint64_t off = 4096; off < st.size; off += 4096)
    (void)*(volatile unsigned char *)(base + off - 1);
  for (unsigned i = 0; i < n; i++)
    shmheap_free(mem, o[i].p);
  TH_CHILD_CHECK(shmheap_check(mem) == 0);
  shmheap_destroy(NULL, mem);
  return 0;
}

static void test_shm_full(void) {
  if (geteuid() != 0) {
    g_test_skip("needs root to mount a small tmpfs on /dev/shm");
    return;
  }
  int status = th_fork_run(full_child, NULL, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
    g_test_skip("unshare or mount not allowed here");
    return;
  }
  th_assert_child_ok(status);
}

/* ------------------------------------------------------------------------ */

/* Kills: a child grows the heap (by allocation and by shmheap_grow) and is
 * killed at random moments, or (crash-point builds) at each ordered write in
 * turn. After each death the heap must check, the parent's objects must be
 * intact, and the whole heap must still be usable. */
struct kill_arg {
  const char *name;
  long crash_at;
};

static int grow_script(void *arg) {
  struct kill_arg *a = arg;
  if (a->crash_at > 0) {
    char buf[32];
    snprintf(buf, sizeof buf, "%ld", a->crash_at);
    setenv("SHMHEAP_CRASH_AT", buf, 1);
  }
  shmheap_memory_handle mem = shmheap_connect(a->name);
  TH_CHILD_CHECK(mem != NULL);
  size_t pg = page();
  for (unsigned round = 0; round < 200; round++) {
    /* the last block used, then free, then an explicit grow */
    void *p = shmheap_alloc(mem, 3000 + round * 500);
    TH_CHILD_CHECK(p != NULL);
    if (round % 2)
      shmheap_free(mem, p);
    struct shmheap_stats st;
    TH_CHILD_CHECK(shmheap_stats(mem, &st) == 0);
    if (st.size + pg <= st.max_size && round % 3 == 0) {
      /* the largest free block (the last) taken whole: growth then
       * extends an allocated last block */
      if (round % 2 == 0)
        TH_CHILD_CHECK(shmheap_alloc(mem, st.largest_free) != NULL);
      TH_CHILD_CHECK(shmheap_grow(mem, st.size + pg) == 0);
    }
    if (a->crash_at > 0 && round >= 6)
      break; /* a handful of growths is every write of every kind */
  }
  shmheap_disconnect(mem);
  return 0;
}

/* The parent's objects, made before the child runs. */
static void parent_objs(shmheap_memory_handle mem, struct obj *o, unsigned n) {
  unsigned char *base = shmheap_underlying(mem);
  for (unsigned i = 0; i < n; i++) {
    o[i].n = 100 + i * 37;
    o[i].p = shmheap_alloc(mem, o[i].n);
    g_assert_nonnull(o[i].p);
    o[i].seed = 900 + i;
    th_fill(o[i].p, o[i].n, o[i].seed, (uint64_t)(o[i].p - base));
  }
}

static void verify_after(shmheap_memory_handle mem, struct obj *o, unsigned n,
                         const char *what, long at) {
  unsigned char *base = shmheap_underlying(mem);
  if (shmheap_check(mem) != 0)
    g_error("%s %ld: check failed after the kill (errno %d)", what, at, errno);
  for (unsigned i = 0; i < n; i++)
    g_assert_cmpint(
        th_check_fill(o[i].p, o[i].n, o[i].seed, (uint64_t)(o[i].p - base)), ==,
        -1);
  /* what the heap now has is usable: take the largest free block whole */
  struct shmheap_stats st = stats_of(mem);
  g_assert_cmpuint(st.size % page(), ==, 0);
  void *big = shmheap_alloc(mem, st.largest_free);
  g_assert_nonnull(big);
  memset(big, 0x5a, st.largest_free);
  shmheap_free(mem, big);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
}

static void test_kill_random(void) {
  th_watchdog_arm(120, "/grow/kill-random");
  uint64_t rng = (uint64_t)time(NULL);
  unsigned kills = 0;
  for (unsigned run = 0; run < 40; run++) {
    char name[96];
    th_shm_name(name, sizeof name, "grow");
    shmheap_memory_handle mem =
        shmheap_create_growable(name, 64 * KIB, 64 * MIB, 0600);
    g_assert_nonnull(mem);
    struct obj o[8];
    parent_objs(mem, o, 8);
    struct kill_arg a = {name, 0};
    pid_t pid = th_fork_start(grow_script, &a, 0);
    kills += (unsigned)th_kill_after(pid, &rng, 4000000);
    verify_after(mem, o, 8, "random kill", run);
    shmheap_destroy(NULL, mem);
  }
  g_test_message("%u of 40 growing children killed mid-run", kills);
  g_assert_cmpuint(kills, >, 0);
  th_watchdog_disarm();
}

static void test_points(void) {
#ifndef SHMHEAP_TEST_CRASH_POINTS
  g_test_skip("needs a build with -Dcrash_points=true");
#else
  th_watchdog_arm(300, "/grow/points");
  long covered = 0;
  gboolean completed = FALSE;
  for (long n = 1; n <= 3000 && !completed; n++) {
    char name[96];
    th_shm_name(name, sizeof name, "grow");
    shmheap_memory_handle mem =
        shmheap_create_growable(name, 64 * KIB, 64 * MIB, 0600);
    g_assert_nonnull(mem);
    struct obj o[8];
    parent_objs(mem, o, 8);
    struct kill_arg a = {name, n};
    int status = th_fork_run(grow_script, &a, 0);
    if (th_killed(status))
      covered++;
    else
      completed = TRUE;
    verify_after(mem, o, 8, "crash point", n);
    shmheap_destroy(NULL, mem);
  }
  g_test_message("grow crash points: %ld writes covered", covered);
  g_assert_true(completed);
  g_assert_cmpint(covered, >, 10);
  th_watchdog_disarm();
#endif
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  unsetenv("SHMHEAP_CRASH_AT");
  th_add_func("/grow/bad-args", test_bad_args);
  th_add_func("/grow/large", test_large);
  th_add_func("/grow/realloc", test_realloc);
  th_add_func("/grow/max", test_max);
  th_add_func("/grow/peer", test_peer);
  th_add_func("/grow/race", test_race);
  th_add_func("/grow/connect-while-growing", test_connect_while_growing);
  th_add_func("/grow/shm-full", test_shm_full);
  th_add_func("/grow/kill-random", test_kill_random);
  th_add_func("/grow/points", test_points);
  return g_test_run();
}

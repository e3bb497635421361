/* test-lock: the heap's lock word and a heap's life as an object, under
 * the abuse that neighbours and operators inflict: a lock word scribbled
 * while processes are connected (and while they wait), a lock holder in
 * another PID namespace, a waiter of another namespace during a long
 * repair, threads that relock at once and would starve a waiter, a waiter
 * that must sleep rather than spin through a long hold, a walk callback
 * that calls back in (lock-callbacks.c), an object truncated under its
 * users, a create that fails while another process owns the name, and
 * names that are not heaps. Every case must end in a clean errno within a
 * bounded time: never a hang, a crash, or someone else's heap removed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "layout.h"
#include "lock-callbacks.h"
#include "shmheap.h"
#include "testutil.h"

/* ------------------------------------------------------------------------ */
/* A child that holds the lock: it walks the heap and, from the callback
 * (which runs under the lock), signals the parent through a pipe, then
 * sleeps HOLD_MS or kills itself while still holding the lock. */

struct holder {
  const char *name;
  int ready[2]; /* child -> parent: "I hold the lock" */
  unsigned hold_ms;
  int die; /* SIGKILL itself while holding */
};

static int hold_cb(const struct shmheap_block *b, void *arg) {
  (void)b;
  struct holder *h = arg;
  char c = 'h';
  if (write(h->ready[1], &c, 1) != 1)
    _exit(90);
  if (h->die)
    raise(SIGKILL);
  g_usleep((gulong)h->hold_ms * 1000);
  return 1; /* stop after the first block */
}

static int holder_main(void *arg) {
  struct holder *h = arg;
  shmheap_memory_handle mem = shmheap_connect(h->name);
  TH_CHILD_CHECK(mem != NULL);
  TH_CHILD_CHECK(shmheap_walk(mem, hold_cb, h) == 1);
  shmheap_disconnect(mem);
  return 0;
}

static pid_t holder_start(struct holder *h) {
  g_assert_cmpint(pipe(h->ready), ==, 0);
  pid_t pid = th_fork_start(holder_main, h, 30);
  char c;
  g_assert_cmpint(read(h->ready[0], &c, 1), ==, 1);
  close(h->ready[0]);
  close(h->ready[1]);
  return pid;
}

/* ------------------------------------------------------------------------ */
/* /lock/scribbled-word                                                      */

struct scribble_case {
  const char *what;
  uint64_t value; /* 0: this process's pid with an empty high half */
};

/* A child that used the heap before the scribble: the lock word is at
 * rest (unowned, zero) between calls. */
static int scribbled_child(void *arg) {
  const struct heap *h = arg;
  shmheap_memory_handle mem = shmheap_connect(h->name);
  TH_CHILD_CHECK(mem != NULL);
  void *p = shmheap_alloc(mem, 100);
  TH_CHILD_CHECK(p != NULL);
  TH_CHILD_CHECK(*th_lock_word(mem) == 0); /* unowned at rest */
  shmheap_disconnect(mem);
  return 0;
}

static void test_scribbled_word(void) {
  th_watchdog_arm(60, "/lock/scribbled-word");
  const struct scribble_case cases[] = {
      {"random bits", 0x9a3c51e27f0b6d48ull},
      {"a dead thread's id, no check bits", 0x3ffffff0ull},
      {"this process's pid, no check bits", 0},
      {"waiter bits only, with a high half", 0x0000123480000000ull},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    struct heap h;
    th_heap_open(&h, "lock", 64u << 10);
    th_assert_child_ok(th_fork_run(scribbled_child, &h, 10));
    uint64_t v = cases[i].value ? cases[i].value : (uint64_t)getpid();
    __atomic_store_n(th_lock_word(h.mem), v, __ATOMIC_RELAXED);
    double t0 = th_now_s();
    errno = 0;
    g_assert_null(shmheap_alloc(h.mem, 64));
    g_assert_cmpint(errno, ==, EUCLEAN);
    double secs = th_now_s() - t0;
    g_test_message("%s: EUCLEAN after %.3f s", cases[i].what, secs);
    g_assert_cmpfloat(secs, <, 3.0);
    /* broken for good: later calls and new connections refuse it */
    errno = 0;
    g_assert_cmpint(shmheap_check(h.mem), ==, -1);
    g_assert_cmpint(errno, ==, EUCLEAN);
    errno = 0;
    g_assert_null(shmheap_connect(h.name));
    g_assert_cmpint(errno, ==, EUCLEAN);
    heap_close(&h);
  }
}

/* /lock/scribble-while-waiting: a process already asleep on the lock when
 * the word is scribbled returns EUCLEAN, it does not sleep for ever. */
static int waiter_main(void *arg) {
  const struct heap *h = arg;
  errno = 0;
  void *p = shmheap_alloc(h->mem, 64); /* the inherited connection */
  TH_CHILD_CHECK(p == NULL && errno == EUCLEAN);
  return 0;
}

static void test_scribble_while_waiting(void) {
  th_watchdog_arm(60, "/lock/scribble-while-waiting");
  struct heap h;
  th_heap_open(&h, "lock", 64u << 10);
  struct holder hd = {h.name, {-1, -1}, 20000, 0};
  pid_t holder = holder_start(&hd);
  pid_t waiter = th_fork_start(waiter_main, &h, 10);
  g_usleep(300000); /* the waiter is asleep on the futex by now */
  __atomic_store_n(th_lock_word(h.mem), 0xdeadbeefcafe1234ull,
                   __ATOMIC_RELAXED);
  double t0 = th_now_s();
  th_assert_child_ok(th_wait(waiter));
  g_test_message("waiter gave EUCLEAN %.3f s after the scribble",
                 th_now_s() - t0);
  kill(holder, SIGKILL);
  th_wait(holder);
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* /lock/dead-owner: a holder killed while it holds the lock is found dead
 * and the heap repaired, quickly, by a process that was waiting. */

static void test_dead_owner(void) {
  th_watchdog_arm(60, "/lock/dead-owner");
  struct heap h;
  th_heap_open(&h, "lock", 64u << 10);
  void *keep = shmheap_alloc(h.mem, 1000);
  g_assert_nonnull(keep);
  struct holder hd = {h.name, {-1, -1}, 0, 1};
  pid_t holder = holder_start(&hd);
  int status = th_wait(holder);
  g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  g_assert_cmpuint(*th_lock_word(h.mem) & 0x3fffffff, ==, (uint64_t)holder);
  double t0 = th_now_s();
  void *p = shmheap_alloc(h.mem, 100);
  double secs = th_now_s() - t0;
  g_assert_nonnull(p);
  g_test_message("dead owner found and repaired in %.3f s", secs);
  g_assert_cmpfloat(secs, <, 1.0);
  g_assert_cmpint(shmheap_check(h.mem), ==, 0);
  shmheap_free(h.mem, p);
  shmheap_free(h.mem, keep);
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* /lock/waiter-sleeps: a caller that waits for a live owner that holds the
 * lock a long time burns its CPU only for the first moments of the wait
 * (looks at growing intervals, then yields), then sleeps; and gets the lock
 * once the owner lets go. */

static double thread_cpu_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void test_waiter_sleeps(void) {
  th_watchdog_arm(60, "/lock/waiter-sleeps");
  struct heap h;
  th_heap_open(&h, "lock", 64u << 10);
  void *keep = shmheap_alloc(h.mem, 64);
  g_assert_nonnull(keep);
  struct holder hd = {h.name, {-1, -1}, 400, 0};
  pid_t holder = holder_start(&hd);
  double t0 = th_now_s(), cpu0 = thread_cpu_s();
  void *p = shmheap_alloc(h.mem, 100);
  double secs = th_now_s() - t0, cpu = thread_cpu_s() - cpu0;
  g_assert_nonnull(p);
  th_assert_child_ok(th_wait(holder));
  g_test_message("waited %.3f s for a live owner, %.4f s of it on the CPU",
                 secs, cpu);
  g_assert_cmpfloat(secs, >=, 0.2); /* it did wait for the owner */
  g_assert_cmpfloat(cpu, <, 0.1);   /* asleep for most of it */
  g_assert_cmpint(shmheap_check(h.mem), ==, 0);
  shmheap_free(h.mem, p);
  shmheap_free(h.mem, keep);
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* /lock/no-starvation: two threads running shmheap_check back to back on a
 * heap of many blocks relock the moment they unlock; an alloc from a third
 * thread still gets the lock in bounded time. */

struct checker {
  shmheap_memory_handle mem;
  int stop; /* atomic */
  unsigned rounds;
};

static void *checker_main(void *arg) {
  struct checker *c = arg;
  while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
    if (shmheap_check(c->mem) != 0)
      return (void *)1;
    c->rounds++;
  }
  return NULL;
}

static void test_no_starvation(void) {
  th_watchdog_arm(120, "/lock/no-starvation");
  struct heap h;
  th_heap_open(&h, "lock", 16u << 20);
  enum { BLOCKS = 100000 };
  void **p = g_new(void *, BLOCKS);
  for (unsigned i = 0; i < BLOCKS; i++) {
    p[i] = shmheap_alloc(h.mem, 16);
    g_assert_nonnull(p[i]);
  }
  for (unsigned i = 0; i < BLOCKS; i += 2)
    shmheap_free(h.mem, p[i]);
  struct checker c[2] = {{h.mem, 0, 0}, {h.mem, 0, 0}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    g_assert_cmpint(pthread_create(&t[i], NULL, checker_main, &c[i]), ==, 0);
  g_usleep(50000);
  double worst = 0;
  for (int i = 0; i < 20; i++) {
    double t0 = th_now_s();
    void *q = shmheap_alloc(h.mem, 32);
    double secs = th_now_s() - t0;
    g_assert_nonnull(q);
    shmheap_free(h.mem, q);
    if (secs > worst)
      worst = secs;
  }
  for (int i = 0; i < 2; i++) {
    __atomic_store_n(&c[i].stop, 1, __ATOMIC_RELAXED);
    void *r;
    g_assert_cmpint(pthread_join(t[i], &r), ==, 0);
    g_assert_null(r);
  }
  g_test_message("worst alloc wait among back-to-back checks: %.3f s "
                 "(checks done: %u + %u)",
                 worst, c[0].rounds, c[1].rounds);
  g_assert_cmpfloat(worst, <, 2.0);
  g_free(p);
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* /lock/pid-namespace: a heap busy in another PID namespace is waited for
 * (thread ids there mean nothing here), never judged dead or damaged. */

/* Runs FN(ARG) as pid 1 of a new PID namespace: its exit status, or 77
 * when the namespace is refused (78, 79: the fork or the child failed). */
static int in_new_pid_ns(int (*fn)(void *), void *arg) {
  if (unshare(CLONE_NEWPID) != 0)
    return 77;
  pid_t pid = fork();
  if (pid < 0)
    return 78;
  if (pid == 0)
    _exit(fn(arg));
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 79;
}

static int ns_child(void *arg) {
  return in_new_pid_ns(holder_main, arg);
}

static void test_pid_namespace(void) {
  th_watchdog_arm(60, "/lock/pid-namespace");
  if (geteuid() != 0) {
    g_test_skip("needs root for unshare(CLONE_NEWPID)");
    return;
  }
  struct heap h;
  th_heap_open(&h, "lock", 64u << 10);
  struct holder hd = {h.name, {-1, -1}, 1500, 0};
  g_assert_cmpint(pipe(hd.ready), ==, 0);
  pid_t child = th_fork_start(ns_child, &hd, 30);
  char ch;
  ssize_t n = read(hd.ready[0], &ch, 1);
  close(hd.ready[0]);
  close(hd.ready[1]);
  if (n != 1) {
    int status = th_wait(child);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
      g_test_skip("unshare(CLONE_NEWPID) refused here");
      heap_close(&h);
      return;
    }
    g_error("namespace child failed: status %#x", status);
  }
  /* the holder's tid (1 in its namespace) names no thread of ours, or
   * another one: either way we must wait for it, not break the heap */
  double t0 = th_now_s();
  void *p = shmheap_alloc(h.mem, 64);
  double secs = th_now_s() - t0;
  g_assert_nonnull(p);
  g_test_message("waited %.3f s for a holder in another PID namespace", secs);
  g_assert_cmpfloat(secs, >, 1.0);
  th_assert_child_ok(th_wait(child));
  g_assert_cmpint(shmheap_check(h.mem), ==, 0);
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* /lock/foreign-waiter-during-repair: a waiter in another PID namespace,
 * which cannot tell whether an owner lives, judges an owner's word by the
 * witness stored beside it once a second has passed. A waiter of the
 * owner's namespace that takes the word from a dead owner must store its
 * witness before it repairs the heap: a repair that outlasts that second
 * (a heap of many millions of blocks; a stalled one here) must not look
 * forged, which would mark a healthy heap broken. */

#ifdef SHMHEAP_TEST_CRASH_POINTS
/* In the new namespace: an alloc, which waits for the repair. */
static int foreign_alloc_main(void *arg) {
  shmheap_memory_handle mem = shmheap_connect(arg);
  if (mem == NULL)
    return 10;
  errno = 0;
  void *p = shmheap_alloc(mem, 64);
  return p != NULL ? 0 : errno == EUCLEAN ? 11 : 12;
}

static int foreign_alloc(void *arg) {
  return in_new_pid_ns(foreign_alloc_main, arg);
}

/* In this namespace: the one that finds the owner dead and repairs. */
static int stalled_repairer(void *arg) {
  setenv("SHMHEAP_RECOVER_STALL_MS", "3000", 1);
  shmheap_memory_handle mem = shmheap_connect(arg);
  TH_CHILD_CHECK(mem != NULL);
  void *p = shmheap_alloc(mem, 64);
  TH_CHILD_CHECK(p != NULL);
  shmheap_free(mem, p);
  shmheap_disconnect(mem);
  return 0;
}
#endif

static void test_foreign_waiter_during_repair(void) {
  th_watchdog_arm(60, "/lock/foreign-waiter-during-repair");
#ifndef SHMHEAP_TEST_CRASH_POINTS
  g_test_skip("needs a build with -Dcrash_points=true (a stalled repair)");
#else
  if (geteuid() != 0) {
    g_test_skip("needs root for unshare(CLONE_NEWPID)");
    return;
  }
  struct heap h;
  th_heap_open(&h, "lock", 64u << 10);
  struct holder hd = {h.name, {-1, -1}, 0, 1};
  pid_t holder = holder_start(&hd);
  int status = th_wait(holder);
  g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  pid_t foreign = th_fork_start(foreign_alloc, h.name, 30);
  g_usleep(200000); /* it waits on the dead owner's word */
  pid_t repairer = th_fork_start(stalled_repairer, h.name, 30);
  int repaired = th_wait(repairer);
  status = th_wait(foreign);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
    g_test_skip("unshare(CLONE_NEWPID) refused here");
    heap_close(&h);
    return;
  }
  /* the heap marked broken shows in both: in the repairer's own call,
   * which returns after the repair, and in the foreign waiter's */
  if (!WIFEXITED(repaired) || WEXITSTATUS(repaired) != 0)
    g_error("the repairer failed (status %#x): the heap was marked broken "
            "while it repaired, by the waiter in another namespace (status "
            "%#x; 11: EUCLEAN)",
            repaired, status);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    g_error("the waiter in another namespace: status %#x (11: EUCLEAN, the "
            "heap marked broken)",
            status);
  g_assert_cmpint(shmheap_check(h.mem), ==, 0);
  heap_close(&h);
#endif
}

/* ------------------------------------------------------------------------ */
/* /lifecycle/truncated: a peer truncates the object. Repair, which must
 * walk the tags, refuses to read past the object's end (no SIGBUS): the
 * heap is marked broken. connect refuses it. */

static int truncated_user(void *arg) {
  const struct heap *h = arg;
  errno = 0;
  void *p = shmheap_alloc(h->mem, 64); /* inherited mapping */
  TH_CHILD_CHECK(p == NULL && errno == EUCLEAN);
  return 0;
}

static void test_truncated(void) {
  th_watchdog_arm(60, "/lifecycle/truncated");
  struct heap h;
  th_heap_open(&h, "lifecycle", 1u << 20);
  struct holder hd = {h.name, {-1, -1}, 0, 1};
  th_wait(holder_start(&hd)); /* dies holding the lock */
  int fd = shm_open(h.name, O_RDWR, 0);
  g_assert_cmpint(fd, >=, 0);
  g_assert_cmpint(ftruncate(fd, 64 << 10), ==, 0);
  close(fd);
  /* the repairer notices, in a child so that a SIGBUS would show */
  th_assert_child_ok(th_fork_run(truncated_user, &h, 10));
  errno = 0;
  g_assert_null(shmheap_connect(h.name));
  g_assert_cmpint(errno, ==, EUCLEAN);
  heap_close(&h);

  /* an object truncated to nothing is not a heap (not "initialising") */
  th_heap_open(&h, "lifecycle", 64u << 10);
  fd = shm_open(h.name, O_RDWR, 0);
  g_assert_cmpint(ftruncate(fd, 0), ==, 0);
  close(fd);
  errno = 0;
  g_assert_null(shmheap_connect(h.name));
  g_assert_cmpint(errno, ==, EINVAL);
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* /lifecycle/failed-create-keeps-others: in a private mount namespace with
 * a small /dev/shm, a create that fails for want of room while another
 * process's heap holds the name removes nothing of that heap. */

static int small_shm_child(void *arg) {
  (void)arg;
  if (unshare(CLONE_NEWNS) != 0)
    return 77;
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
    return 77;
  if (mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=1m") != 0)
    return 77;
  shmheap_memory_handle theirs = shmheap_create("/lock-theirs", 512u << 10);
  TH_CHILD_CHECK(theirs != NULL);
  void *p = shmheap_alloc(theirs, 1000);
  TH_CHILD_CHECK(p != NULL);
  memset(p, 0x5a, 1000);
  /* too big for what is left: fails, and must leave the name alone */
  errno = 0;
  TH_CHILD_CHECK(shmheap_create("/lock-theirs", 4u << 20) == NULL);
  TH_CHILD_CHECK(errno == ENOSPC || errno == EEXIST);
  errno = 0;
  TH_CHILD_CHECK(shmheap_create("/lock-mine", 4u << 20) == NULL);
  TH_CHILD_CHECK(errno == ENOSPC);
  shmheap_memory_handle again = shmheap_connect("/lock-theirs");
  TH_CHILD_CHECK(again != NULL);
  unsigned char *q =
      shmheap_handle_to_ptr(again, shmheap_ptr_to_handle(theirs, p));
  for (int i = 0; i < 1000; i++)
    TH_CHILD_CHECK(q[i] == 0x5a);
  TH_CHILD_CHECK(shmheap_check(again) == 0);
  /* and nothing was left behind: no public name, no private object */
  struct stat st;
  TH_CHILD_CHECK(stat("/dev/shm/lock-mine", &st) != 0);
  DIR *d = opendir("/dev/shm");
  TH_CHILD_CHECK(d != NULL);
  unsigned entries = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    if (e->d_name[0] != '.')
      entries++;
    else
      TH_CHILD_CHECK(strcmp(e->d_name, ".") == 0 ||
                     strcmp(e->d_name, "..") == 0);
  closedir(d);
  TH_CHILD_CHECK(entries == 1); /* lock-theirs */
  shmheap_disconnect(again);
  shmheap_destroy(NULL, theirs);
  return 0;
}

static void test_failed_create(void) {
  th_watchdog_arm(60, "/lifecycle/failed-create-keeps-others");
  if (geteuid() != 0) {
    g_test_skip("needs root for a private /dev/shm");
    return;
  }
  int status = th_fork_run(small_shm_child, NULL, 30);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
    g_test_skip("no private mount namespace here");
    return;
  }
  th_assert_child_ok(status);
}

/* ------------------------------------------------------------------------ */
/* /lifecycle/odd-objects: names and objects that are not heaps. */

static void test_odd_objects(void) {
  th_watchdog_arm(30, "/lifecycle/odd-objects");
  errno = 0;
  g_assert_null(shmheap_create("/.", 64u << 10));
  g_assert_cmpint(errno, ==, EINVAL);
  errno = 0;
  g_assert_null(shmheap_create("/..", 64u << 10));
  g_assert_cmpint(errno, ==, EINVAL);
  errno = 0;
  shmheap_destroy("/.", NULL);
  g_assert_cmpint(errno, ==, EINVAL);

  char name[64], path[96], target[160];
  th_shm_name(name, sizeof name, "lifecycle");
  snprintf(path, sizeof path, "/dev/shm%s", name);
  if (mkfifo(path, 0600) == 0) {
    errno = 0;
    g_assert_null(shmheap_connect(name));
    g_assert_cmpint(errno, ==, EINVAL);
    unlink(path);
  }
  /* a socket: opening one fails with ENXIO, which is not a heap either */
  int sock = socket(AF_UNIX, SOCK_STREAM, 0);
  g_assert_cmpint(sock, >=, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  g_assert_cmpuint(strlen(path), <, sizeof sa.sun_path);
  strcpy(sa.sun_path, path);
  g_assert_cmpint(bind(sock, (struct sockaddr *)&sa, sizeof sa), ==, 0);
  errno = 0;
  g_assert_null(shmheap_connect(name));
  g_assert_cmpint(errno, ==, EINVAL);
  close(sock);
  unlink(path);
  struct heap h;
  th_heap_open(&h, "lifecycle", 64u << 10);
  snprintf(target, sizeof target, "/dev/shm%s", h.name);
  if (symlink(target, path) == 0) {
    errno = 0;
    g_assert_null(shmheap_connect(name));
    g_assert_cmpint(errno, ==, EINVAL);
    unlink(path);
  }
  heap_close(&h);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  th_install_cleanup();
  th_add_func("/lock/scribbled-word", test_scribbled_word);
  th_add_func("/lock/scribble-while-waiting", test_scribble_while_waiting);
  th_add_func("/lock/dead-owner", test_dead_owner);
  th_add_func("/lock/waiter-sleeps", test_waiter_sleeps);
  lock_callbacks_add_tests();
  th_add_func("/lock/no-starvation", test_no_starvation);
  th_add_func("/lock/pid-namespace", test_pid_namespace);
  th_add_func("/lock/foreign-waiter-during-repair",
              test_foreign_waiter_during_repair);
  th_add_func("/lifecycle/truncated", test_truncated);
  th_add_func("/lifecycle/failed-create-keeps-others", test_failed_create);
  th_add_func("/lifecycle/odd-objects", test_odd_objects);
  return g_test_run();
}

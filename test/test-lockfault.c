/* test-lockfault: lock owners that die in the ways test-lock does not
 * cover (a dead owner not yet reaped, a child forked without the atfork
 * handlers), the first lock calls of a process racing from several
 * threads, calls that cannot take the lock, a creator killed half-way,
 * create where links are refused (the in-place way), and a stress of processes
 * with two threads each, one of them SIGKILLed every ~50 ms, after which the
 * heap must check clean and every survivor's blocks keep their patterns.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "layout.h"
#include "shmheap.h"
#include "testutil.h"

/* A child that holds the lock: from a walk callback (which runs under the
 * lock) it tells the parent through a pipe, then SIGKILLs itself. */
struct holder {
  const char *name;
  int ready[2];
};

static int die_cb(const struct shmheap_block *b, void *arg) {
  (void)b;
  struct holder *h = arg;
  char c = 'h';
  if (write(h->ready[1], &c, 1) != 1)
    _exit(90);
  raise(SIGKILL);
  return 1;
}

static int holder_main(void *arg) {
  struct holder *h = arg;
  shmheap_memory_handle mem = shmheap_connect(h->name);
  TH_CHILD_CHECK(mem != NULL);
  shmheap_walk(mem, die_cb, h);
  return 91;
}

/* Waits for the holder to say it holds the lock. */
static void holder_wait_ready(struct holder *h) {
  char c;
  g_assert_cmpint(read(h->ready[0], &c, 1), ==, 1);
  close(h->ready[0]);
  close(h->ready[1]);
}

/* Whether PID is a zombie (dead, not yet reaped). */
static int is_zombie(pid_t pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *rp = strrchr(buf, ')');
  return rp != NULL && rp[1] == ' ' && rp[2] == 'Z';
}

/* ------------------------------------------------------------------------ */
/* /lock/threads-first-lock: the first lock calls of a process come from
 * several threads at once (here in a forked child, whose cached thread id
 * and PID namespace start over). They must work, and under ThreadSanitizer
 * the caches they fill must not race. */

struct first_lock {
  shmheap_memory_handle mem;
  pthread_barrier_t *go;
  int ok;
};

static void *first_lock_main(void *arg) {
  struct first_lock *f = arg;
  pthread_barrier_wait(f->go);
  void *p = shmheap_alloc(f->mem, 64);
  f->ok = p != NULL;
  errno = 0;
  shmheap_free(f->mem, p);
  f->ok = f->ok && errno == 0;
  return NULL;
}

static int first_lock_child(void *arg) {
  shmheap_memory_handle mem = arg; /* inherited */
  enum { N = 4 };
  pthread_barrier_t go;
  TH_CHILD_CHECK(pthread_barrier_init(&go, NULL, N) == 0);
  struct first_lock f[N];
  pthread_t t[N];
  for (int i = 0; i < N; i++) {
    f[i] = (struct first_lock){mem, &go, 0};
    TH_CHILD_CHECK(pthread_create(&t[i], NULL, first_lock_main, &f[i]) == 0);
  }
  for (int i = 0; i < N; i++) {
    TH_CHILD_CHECK(pthread_join(t[i], NULL) == 0);
    TH_CHILD_CHECK(f[i].ok);
  }
  pthread_barrier_destroy(&go);
  return 0;
}

static void test_threads_first_lock(void) {
  th_watchdog_arm(60, "/lock/threads-first-lock");
  struct heap h;
  th_heap_open(&h, "lockfault", 64u << 10);
  for (int i = 0; i < 20; i++)
    th_assert_child_ok(th_fork_run(first_lock_child, h.mem, 20));
  g_assert_cmpint(shmheap_check(h.mem), ==, 0);
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* /lock/zombie-owner: an owner that died but is not yet reaped (a zombie:
 * kill(pid, 0) still succeeds on it) is dead all the same. Its parent,
 * which would reap it, may itself be the one waiting for the lock, so
 * waiting for the reap is a deadlock. The alloc runs in a thread; the
 * parent reaps the holder only after 2 s, so the case cannot hang. */

struct bg_alloc {
  shmheap_memory_handle mem;
  void *p;
  int done;
};

static void *bg_alloc_main(void *arg) {
  struct bg_alloc *z = arg;
  z->p = shmheap_alloc(z->mem, 100);
  __atomic_store_n(&z->done, 1, __ATOMIC_RELEASE);
  return NULL;
}

static void test_zombie_owner(void) {
  th_watchdog_arm(60, "/lock/zombie-owner");
  struct heap h;
  th_heap_open(&h, "lockfault", 64u << 10);
  struct holder hd = {h.name, {-1, -1}};
  g_assert_cmpint(pipe(hd.ready), ==, 0);
  pid_t holder = th_fork_start(holder_main, &hd, 30);
  holder_wait_ready(&hd);
  double t0 = th_now_s();
  while (!is_zombie(holder) && th_now_s() - t0 < 5)
    g_usleep(1000);
  g_assert_true(is_zombie(holder));
  g_assert_cmpint(kill(holder, 0), ==, 0); /* a zombie still "exists" */
  struct bg_alloc z = {h.mem, NULL, 0};
  pthread_t t;
  g_assert_cmpint(pthread_create(&t, NULL, bg_alloc_main, &z), ==, 0);
  t0 = th_now_s();
  while (!__atomic_load_n(&z.done, __ATOMIC_ACQUIRE) && th_now_s() - t0 < 2.0)
    g_usleep(1000);
  int done_before_reap = __atomic_load_n(&z.done, __ATOMIC_ACQUIRE);
  int status = th_wait(holder); /* now the thread finishes either way */
  g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  g_assert_cmpint(pthread_join(t, NULL), ==, 0);
  g_test_message("alloc %s while the dead owner was a zombie",
                 done_before_reap ? "finished" : "was still waiting");
  g_assert_true(done_before_reap);
  g_assert_nonnull(z.p);
  g_assert_cmpint(shmheap_check(h.mem), ==, 0);
  shmheap_free(h.mem, z.p);
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* /lock/free-errno: a free that cannot take the lock says why in errno, as
 * every other call does: EDEADLK from a walk callback (the block stays
 * allocated), EUCLEAN on a heap whose lock word was scribbled over. */

struct free_in_walk {
  shmheap_memory_handle mem;
  void *p;
  int err;
};

static int free_in_walk_cb(const struct shmheap_block *b, void *arg) {
  (void)b;
  struct free_in_walk *f = arg;
  errno = 0;
  shmheap_free(f->mem, f->p);
  f->err = errno;
  return 1;
}

static void test_free_errno(void) {
  th_watchdog_arm(30, "/lock/free-errno");
  struct heap h;
  th_heap_open(&h, "lockfault", 64u << 10);
  void *p = shmheap_alloc(h.mem, 100);
  g_assert_nonnull(p);
  struct free_in_walk f = {h.mem, p, 0};
  g_assert_cmpint(shmheap_walk(h.mem, free_in_walk_cb, &f), ==, 1);
  g_assert_cmpuint(shmheap_usable_size(h.mem, p), >=, 100); /* still live */
  g_assert_cmpint(f.err, ==, EDEADLK);
  __atomic_store_n(th_lock_word(h.mem), 0x9a3c51e27f0b6d48ull,
                   __ATOMIC_RELAXED);
  errno = 0;
  shmheap_free(h.mem, p);
  g_assert_cmpint(errno, ==, EUCLEAN);
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* /lock/fork-without-handlers: _Fork() (glibc >= 2.34) makes a child
 * without running the atfork handlers. Such a child that dies holding the
 * lock must not leave a word that names its parent's thread: the parent
 * would get EDEADLK for ever, and every other process would wait for as
 * long as the parent lives. */

static void test_fork_without_handlers(void) {
  th_watchdog_arm(30, "/lock/fork-without-handlers");
  struct heap h;
  th_heap_open(&h, "lockfault", 64u << 10);
  void *p = shmheap_alloc(h.mem, 100); /* this thread has used the lock */
  g_assert_nonnull(p);
  struct holder hd = {h.name, {-1, -1}};
  g_assert_cmpint(pipe(hd.ready), ==, 0);
  pid_t child = _Fork();
  g_assert_cmpint(child, >=, 0);
  if (child == 0) {
    alarm(10);
    shmheap_walk(h.mem, die_cb, &hd); /* the inherited connection */
    _exit(91);
  }
  holder_wait_ready(&hd);
  int status = th_wait(child);
  g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  g_test_message("lock word after the child died names tid %" PRIu64
                 " (child %d, parent %d)",
                 *th_lock_word(h.mem) & 0x3fffffff, (int)child, (int)getpid());
  errno = 0;
  void *q = shmheap_alloc(h.mem, 100);
  g_test_message("parent's alloc: %s (errno %d)", q ? "ok" : "failed", errno);
  g_assert_nonnull(q);
  g_assert_cmpint(shmheap_check(h.mem), ==, 0);
  shmheap_free(h.mem, q);
  shmheap_free(h.mem, p);
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* /lifecycle/killed-creator-leaves-nothing: a creator killed half-way
 * through create (here by SIGXFSZ, deterministically, when reserving the
 * object goes past its RLIMIT_FSIZE) leaves nothing in /dev/shm: neither
 * the public name nor a private object that nobody can see or remove. */

static int fsize_creator(void *arg) {
  const char *name = arg;
  struct rlimit rl = {32u << 10, 32u << 10};
  TH_CHILD_CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
  shmheap_create(name, 1u << 20); /* SIGXFSZ kills us in here */
  return 92;
}

static void test_killed_creator(void) {
  th_watchdog_arm(30, "/lifecycle/killed-creator-leaves-nothing");
  char name[64];
  th_shm_name(name, sizeof name, "lockfault");
  pid_t pid = th_fork_start(fsize_creator, name, 10);
  int status = th_wait(pid);
  g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ);
  g_assert_false(th_shm_exists(name));
  char prefix[48];
  snprintf(prefix, sizeof prefix, ".shmheap-%d-", (int)pid);
  unsigned left = 0;
  DIR *d = opendir("/dev/shm");
  g_assert_nonnull(d);
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
      continue;
    char obj[300];
    snprintf(obj, sizeof obj, "/%s", e->d_name);
    g_test_message("left behind: /dev/shm/%s", e->d_name);
    shm_unlink(obj); /* clean up before failing */
    left++;
  }
  closedir(d);
  g_assert_cmpuint(left, ==, 0);
}

/* ------------------------------------------------------------------------ */
/* /lifecycle/create-in-place: where /dev/shm refuses link(2) (here a
 * seccomp filter makes link and linkat fail with EPERM), create makes the
 * heap in place. The heap works, a second create of the name is refused
 * and removes nothing, a create that fails for want of room (EFBIG: past
 * RLIMIT_FSIZE, SIGXFSZ ignored) leaves no name behind, and a successful
 * create leaves errno alone. */

static int refuse_links(void) {
#if defined(__x86_64__)
  const uint32_t arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  const uint32_t arch = AUDIT_ARCH_AARCH64;
#else
  return -1;
#endif
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#ifdef __NR_link
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_link, 2, 0),
#else
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_linkat, 2, 0),
#endif
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_linkat, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
  };
  struct sock_fprog prog = {(unsigned short)G_N_ELEMENTS(f), f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return -1;
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}

static int in_place_child(void *arg) {
  const char *const *names = arg;
  if (refuse_links() != 0)
    return 77;
  errno = 0;
  TH_CHILD_CHECK(link("/dev/null", "/dev/shm/x") != 0 && errno == EPERM);
  errno = 0;
  shmheap_memory_handle mem = shmheap_create(names[0], 64u << 10);
  int create_errno = errno;
  TH_CHILD_CHECK(mem != NULL);
  void *p = shmheap_alloc(mem, 1000);
  TH_CHILD_CHECK(p != NULL);
  shmheap_memory_handle again = shmheap_connect(names[0]);
  TH_CHILD_CHECK(again != NULL);
  TH_CHILD_CHECK(shmheap_check(again) == 0);
  shmheap_disconnect(again);
  /* a second create of the name is refused and removes nothing */
  errno = 0;
  TH_CHILD_CHECK(shmheap_create(names[0], 64u << 10) == NULL);
  TH_CHILD_CHECK(errno == EEXIST);
  TH_CHILD_CHECK(th_shm_exists(names[0]));
  /* a create that fails for want of room leaves no name */
  struct rlimit rl = {32u << 10, 32u << 10};
  TH_CHILD_CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
  signal(SIGXFSZ, SIG_IGN);
  errno = 0;
  TH_CHILD_CHECK(shmheap_create(names[1], 1u << 20) == NULL);
  TH_CHILD_CHECK(errno == EFBIG);
  TH_CHILD_CHECK(!th_shm_exists(names[1]));
  shmheap_destroy(NULL, mem);
  TH_CHILD_CHECK(!th_shm_exists(names[0]));
  /* last, so that the checks above run even when this one fails */
  fprintf(stderr, "errno after a successful in-place create: %d\n",
          create_errno);
  TH_CHILD_CHECK(create_errno == 0);
  return 0;
}

static void test_create_in_place(void) {
  th_watchdog_arm(30, "/lifecycle/create-in-place");
  char a[64], b[64];
  const char *names[2] = {th_shm_name(a, sizeof a, "lockfault"),
                          th_shm_name(b, sizeof b, "lockfault")};
  int status = th_fork_run(in_place_child, names, 20);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
    g_test_skip("no seccomp filter here");
    return;
  }
  if (th_shm_exists(a))
    shm_unlink(a);
  th_assert_child_ok(status);
}

/* ------------------------------------------------------------------------ */
/* /lock/kill-stress: STRESS_PROCS processes with two threads each alloc,
 * realloc, check and free their own patterned blocks; every ~50 ms the
 * parent SIGKILLs one (often a lock holder), reaps it at once, checks the
 * heap and its own blocks, and starts a new one. The dead processes' blocks
 * leak (the heap is big enough for all of them). A child that finds a
 * broken pattern, an unexpected errno or a failed check exits nonzero. */

enum { STRESS_PROCS = 6, STRESS_SLOTS = 8, STRESS_PARENT_BLOCKS = 16 };

struct stress_arg {
  const char *name;
  size_t len;
  uint64_t seed;
  uint64_t *ops; /* shared with the parent: operations done by all */
};

struct stress_thread {
  shmheap_memory_handle mem;
  size_t len;
  uint64_t rng;
  uint64_t *ops;
};

/* A failed check ends the whole process at once, with a status that is not
 * SIGKILL, so the parent sees it. */
#define STRESS_CHECK(t, cond)                                                  \
  do {                                                                         \
    (void)(t);                                                                 \
    TH_CHILD_CHECK(cond);                                                      \
  } while (0)

static int stress_in_heap(const struct stress_thread *t, const void *p,
                          size_t sz) {
  const unsigned char *base = shmheap_underlying(t->mem), *b = p;
  return b >= base + SHMHEAP_OVERHEAD && (size_t)(b - base) + sz <= t->len &&
         (uintptr_t)b % SHMHEAP_ALIGNMENT == 0;
}

static void *stress_thread_main(void *arg) {
  struct stress_thread *t = arg;
  struct {
    unsigned char *p;
    size_t sz;
    uint64_t seed;
  } s[STRESS_SLOTS] = {{0}};
  for (;;) {
    unsigned i = (unsigned)th_rand_below(&t->rng, STRESS_SLOTS);
    uint64_t r = th_rand(&t->rng);
    size_t sz = 1 + (size_t)th_rand_below(&t->rng, 600);
    __atomic_fetch_add(t->ops, 1, __ATOMIC_RELAXED);
    if (r % 512 == 0) {
      errno = 0;
      STRESS_CHECK(t, shmheap_check(t->mem) == 0 && errno == 0);
    }
    if (s[i].p == NULL) {
      errno = 0;
      unsigned char *p = shmheap_alloc(t->mem, sz);
      STRESS_CHECK(t, p != NULL && errno == 0 && stress_in_heap(t, p, sz));
      s[i].p = p;
      s[i].sz = sz;
      s[i].seed = th_rand(&t->rng);
      th_fill(p, sz, s[i].seed, shmheap_ptr_to_handle(t->mem, p));
      continue;
    }
    uint64_t hdl = shmheap_ptr_to_handle(t->mem, s[i].p);
    STRESS_CHECK(t, th_check_fill(s[i].p, s[i].sz, s[i].seed, hdl) == -1);
    errno = 0;
    if (r % 3 == 0) {
      unsigned char *q = shmheap_realloc(t->mem, s[i].p, sz);
      STRESS_CHECK(t, q != NULL && errno == 0 && stress_in_heap(t, q, sz));
      uint64_t qh = shmheap_ptr_to_handle(t->mem, q);
      size_t keep = sz < s[i].sz ? sz : s[i].sz;
      /* a moved block keeps the bytes, so the old handle's pattern */
      STRESS_CHECK(t, th_check_fill(q, keep, s[i].seed, hdl) == -1);
      s[i].p = q;
      s[i].sz = sz;
      s[i].seed = th_rand(&t->rng);
      th_fill(q, sz, s[i].seed, qh);
    } else {
      shmheap_free(t->mem, s[i].p);
      STRESS_CHECK(t, errno == 0);
      s[i].p = NULL;
    }
  }
}

static int stress_child(void *arg) {
  const struct stress_arg *a = arg;
  shmheap_memory_handle mem = shmheap_connect(a->name);
  TH_CHILD_CHECK(mem != NULL);
  struct stress_thread t[2];
  pthread_t tid[2];
  for (int i = 0; i < 2; i++) {
    t[i] = (struct stress_thread){mem, a->len, a->seed + 77u * (unsigned)i,
                                  a->ops};
    TH_CHILD_CHECK(pthread_create(&tid[i], NULL, stress_thread_main, &t[i]) ==
                   0);
  }
  /* the threads run until this process is killed */
  for (int i = 0; i < 2; i++)
    TH_CHILD_CHECK(pthread_join(tid[i], NULL) == 0);
  return 3;
}

static unsigned stress_secs(void) {
  const char *s = getenv("SHMHEAP_STRESS_SECS");
  unsigned n = s ? (unsigned)atoi(s) : 0;
  return n ? n : 8;
}

static void test_kill_stress(void) {
  unsigned secs = stress_secs();
  th_watchdog_arm(secs + 60, "/lock/kill-stress");
  struct heap h;
  th_heap_open(&h, "lockfault", 32u << 20);
  uint64_t rng = 0x57e55u;
  struct {
    unsigned char *p;
    size_t sz;
  } own[STRESS_PARENT_BLOCKS];
  for (unsigned i = 0; i < STRESS_PARENT_BLOCKS; i++) {
    own[i].sz = 1 + (size_t)th_rand_below(&rng, 4000);
    own[i].p = shmheap_alloc(h.mem, own[i].sz);
    g_assert_nonnull(own[i].p);
    th_fill(own[i].p, own[i].sz, i, shmheap_ptr_to_handle(h.mem, own[i].p));
  }
  uint64_t *ops = mmap(NULL, sizeof *ops, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  g_assert_true(ops != MAP_FAILED);
  struct stress_arg args[STRESS_PROCS];
  pid_t pid[STRESS_PROCS];
  for (unsigned c = 0; c < STRESS_PROCS; c++) {
    args[c] = (struct stress_arg){h.name, h.len, th_rand(&rng), ops};
    pid[c] = th_fork_start(stress_child, &args[c], secs + 30);
  }
  unsigned kills = 0, dead_owners = 0;
  double worst = 0, end = th_now_s() + secs;
  while (th_now_s() < end) {
    g_usleep(25000 + (gulong)th_rand_below(&rng, 50000));
    unsigned c = (unsigned)th_rand_below(&rng, STRESS_PROCS);
    g_assert_cmpint(kill(pid[c], SIGKILL), ==, 0);
    int status = th_wait(pid[c]);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
      g_error("stress child %u ended on its own: status %#x", c, status);
    kills++;
    uint32_t owner = (uint32_t)(*th_lock_word(h.mem) & 0x3fffffff);
    if (owner != 0 && kill((pid_t)owner, 0) != 0 && errno == ESRCH)
      dead_owners++; /* the check below repairs after it */
    double t0 = th_now_s();
    g_assert_cmpint(shmheap_check(h.mem), ==, 0);
    if (th_now_s() - t0 > worst)
      worst = th_now_s() - t0;
    for (unsigned i = 0; i < STRESS_PARENT_BLOCKS; i++)
      g_assert_cmpint(th_check_fill(own[i].p, own[i].sz, i,
                                    shmheap_ptr_to_handle(h.mem, own[i].p)),
                      ==, -1);
    args[c].seed = th_rand(&rng);
    pid[c] = th_fork_start(stress_child, &args[c], secs + 30);
  }
  for (unsigned c = 0; c < STRESS_PROCS; c++) {
    kill(pid[c], SIGKILL);
    int status = th_wait(pid[c]);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
      g_error("stress child %u ended on its own: status %#x", c, status);
  }
  uint64_t done = __atomic_load_n(ops, __ATOMIC_RELAXED);
  g_test_message("%u kills (%u left the lock to a dead owner) and %" PRIu64
                 " operations in %u s; the slowest check after a kill took "
                 "%.3f s",
                 kills, dead_owners, done, secs, worst);
  g_assert_cmpuint(kills, >, 0);
  g_assert_cmpuint(done, >, kills);
  munmap(ops, sizeof *ops);
  g_assert_cmpfloat(worst, <, 5.0);
  g_assert_cmpint(shmheap_check(h.mem), ==, 0);
  for (unsigned i = 0; i < STRESS_PARENT_BLOCKS; i++) {
    g_assert_cmpint(th_check_fill(own[i].p, own[i].sz, i,
                                  shmheap_ptr_to_handle(h.mem, own[i].p)),
                    ==, -1);
    errno = 0;
    shmheap_free(h.mem, own[i].p);
    g_assert_cmpint(errno, ==, 0);
  }
  void *p = shmheap_alloc(h.mem, 1u << 20);
  g_assert_nonnull(p);
  shmheap_free(h.mem, p);
  g_assert_cmpint(shmheap_check(h.mem), ==, 0);
  heap_close(&h);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  th_install_cleanup();
  th_add_func("/lock/kill-stress", test_kill_stress);
  th_add_func("/lock/threads-first-lock", test_threads_first_lock);
  th_add_func("/lock/zombie-owner", test_zombie_owner);
  th_add_func("/lock/free-errno", test_free_errno);
  th_add_func("/lock/fork-without-handlers", test_fork_without_handlers);
  th_add_func("/lifecycle/create-in-place", test_create_in_place);
  th_add_func("/lifecycle/killed-creator-leaves-nothing", test_killed_creator);
  return g_test_run();
}

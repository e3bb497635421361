/* Helpers shared by the test programs: unique shared memory names, forked
 * children with a timeout, file descriptor leak checks, block patterns that
 * reveal overlapping blocks, and a spacer mapping that moves a process's next
 * mapping elsewhere. Header-only (static inline) so every test stays one C
 * file; include it after <glib.h> is available (it includes it itself).
 */
#ifndef SHMHEAP_TESTUTIL_H
#define SHMHEAP_TESTUTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <shmheap.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Seconds a forked child may run before SIGALRM kills it. Generous, since
 * the suites also run under ASan on slow machines. */
enum { TH_CHILD_TIMEOUT = 60 };

/* ------------------------------------------------------------------------ */
/* Names                                                                     */

/* Every name handed out, with the pid that asked, so that a test that dies
 * on a failed assertion (abort) or a crash still removes the objects it
 * made. Only the entries of the dying process are removed: a child that
 * aborts leaves its parent's heaps alone. A ring: only the newest
 * TH_MAX_NAMES names are remembered. */
enum { TH_MAX_NAMES = 256, TH_NAME_LEN = 128 };

static struct {
  pid_t pid[TH_MAX_NAMES];
  char name[TH_MAX_NAMES][TH_NAME_LEN];
  unsigned next;
  pid_t handlers_for; /* the process whose handlers are installed */
} th_names;

static inline void th_unlink_own_names(void) {
  pid_t self = getpid();
  for (unsigned i = 0; i < TH_MAX_NAMES; i++)
    if (th_names.pid[i] == self && th_names.name[i][0] == '/')
      (void)shm_unlink(th_names.name[i]); /* async-signal-safe */
}

static inline void th_fatal_signal(int sig) {
  th_unlink_own_names();
  signal(sig, SIG_DFL);
  raise(sig);
}

static inline void th_install_cleanup(void) {
  static const int sigs[] = {SIGABRT, SIGTRAP, SIGSEGV, SIGBUS,
                             SIGFPE,  SIGILL,  SIGTERM};
  if (th_names.handlers_for == getpid())
    return;
  th_names.handlers_for = getpid();
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    struct sigaction sa;
    /* leave handlers others installed (ASan's SIGSEGV report) alone */
    if (sigaction(sigs[i], NULL, &sa) != 0 || sa.sa_handler != SIG_DFL ||
        (sa.sa_flags & SA_SIGINFO))
      continue;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = th_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigaction(sigs[i], &sa, NULL);
  }
}

/* Writes "/shmheap-test-AREA-PID-COUNTER" into BUF (at least 64 bytes) and
 * returns BUF. The counter is per process (a child continues its parent's
 * count, but with its own pid). A leftover object of that name can only come
 * from a dead process that had our pid, so it is removed. The name is
 * remembered and removed should this process die of a signal (a failed
 * g_assert aborts). */
static inline char *th_shm_name(char *buf, size_t buflen, const char *area) {
  static unsigned counter;
  int n = snprintf(buf, buflen, "/shmheap-test-%s-%ld-%u", area, (long)getpid(),
                   __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
  g_assert_true(n > 0 && (size_t)n < buflen);
  (void)shm_unlink(buf);
  if ((size_t)n < TH_NAME_LEN) {
    th_install_cleanup();
    unsigned i =
        __atomic_fetch_add(&th_names.next, 1, __ATOMIC_RELAXED) % TH_MAX_NAMES;
    th_names.pid[i] = 0; /* not valid while being written */
    memcpy(th_names.name[i], buf, (size_t)n + 1);
    __atomic_store_n(&th_names.pid[i], getpid(), __ATOMIC_RELEASE);
  }
  return buf;
}

/* Whether an object NAME ("/x") exists in the shared memory namespace. */
static inline gboolean th_shm_exists(const char *name) {
  int fd = shm_open(name, O_RDONLY, 0);
  if (fd >= 0) {
    close(fd);
    return TRUE;
  }
  /* EACCES would also mean it exists; ENOENT is the only "absent". */
  return errno != ENOENT;
}

/* ------------------------------------------------------------------------ */
/* Children                                                                  */

/* Forks; the child arms alarm(TIMEOUT_S) (TH_CHILD_TIMEOUT when 0), runs
 * FN(ARG) and _exits with its return value (0 = success). The parent waits
 * and returns the child's wait status. */
static inline int th_fork_run(int (*fn)(void *), void *arg,
                              unsigned timeout_s) {
  pid_t pid = fork();
  g_assert_cmpint(pid, >=, 0);
  if (pid == 0) {
    signal(SIGALRM, SIG_DFL); /* a timed-out child dies of SIGALRM */
    alarm(timeout_s ? timeout_s : TH_CHILD_TIMEOUT);
    _exit(fn(arg));
  }
  int status = 0;
  pid_t r;
  do
    r = waitpid(pid, &status, 0);
  while (r < 0 && errno == EINTR);
  g_assert_cmpint(r, ==, pid);
  return status;
}

/* Like th_fork_run but does not wait: returns the child's pid. */
static inline pid_t th_fork_start(int (*fn)(void *), void *arg,
                                  unsigned timeout_s) {
  pid_t pid = fork();
  g_assert_cmpint(pid, >=, 0);
  if (pid == 0) {
    signal(SIGALRM, SIG_DFL); /* a timed-out child dies of SIGALRM */
    alarm(timeout_s ? timeout_s : TH_CHILD_TIMEOUT);
    _exit(fn(arg));
  }
  return pid;
}

/* Waits for PID and returns its wait status. */
static inline int th_wait(pid_t pid) {
  int status = 0;
  pid_t r;
  do
    r = waitpid(pid, &status, 0);
  while (r < 0 && errno == EINTR);
  g_assert_cmpint(r, ==, pid);
  return status;
}

/* Asserts that a wait STATUS is a normal exit with code 0; on failure says
 * which exit code or signal it was (SIGALRM = the child timed out). */
#define th_assert_child_ok(status)                                             \
  do {                                                                         \
    int th_st_ = (status);                                                     \
    if (WIFSIGNALED(th_st_))                                                   \
      g_error("child killed by signal %d (%s)%s", WTERMSIG(th_st_),            \
              strsignal(WTERMSIG(th_st_)),                                     \
              WTERMSIG(th_st_) == SIGALRM ? " - timed out" : "");              \
    g_assert_true(WIFEXITED(th_st_));                                          \
    g_assert_cmpint(WEXITSTATUS(th_st_), ==, 0);                               \
  } while (0)

/* In a child: fail with exit code LINE % 200 + 1 (so the code says where),
 * after a message on stderr (stdout belongs to TAP). */
#define TH_CHILD_CHECK(cond)                                                   \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: child check failed: %s (errno %d)\n", __FILE__,  \
              __LINE__, #cond, errno);                                         \
      _exit(__LINE__ % 200 + 1);                                               \
    }                                                                          \
  } while (0)

/* A watchdog for the test process itself: if the parent's own call hangs
 * (say on a lock a dead child held), SIGALRM says what hung and aborts, so
 * the test fails at once instead of running into Meson's timeout. */
static const char *volatile th_watchdog_what;

static inline void th_watchdog_handler(int sig) {
  (void)sig;
  static const char msg[] = "watchdog: timed out in: ";
  const char *w = th_watchdog_what ? th_watchdog_what : "?";
  (void)!write(2, msg, sizeof msg - 1);
  (void)!write(2, w, strlen(w));
  (void)!write(2, "\n", 1);
  abort();
}

static inline void th_watchdog_arm(unsigned secs, const char *what) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = th_watchdog_handler;
  sigemptyset(&sa.sa_mask);
  g_assert_cmpint(sigaction(SIGALRM, &sa, NULL), ==, 0);
  th_watchdog_what = what;
  alarm(secs);
}

static inline void th_watchdog_disarm(void) {
  alarm(0);
  th_watchdog_what = NULL;
}

/* Writes or reads exactly N bytes on FD (retrying on EINTR and short
 * transfers). Returns 0, or -1 on error or end of file. */
static inline int th_write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static inline int th_read_all(int fd, void *buf, size_t n) {
  char *p = buf;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* File descriptors                                                          */

/* The number of open file descriptors of this process. Compare a count taken
 * before an operation with one taken after to find a leak. */
static inline int th_count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  g_assert_nonnull(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the directory's own descriptor */
}

/* ------------------------------------------------------------------------ */
/* Deterministic randomness and block patterns                               */

/* splitmix64: a full-period 64-bit mixer, good enough for test streams. */
static inline uint64_t th_mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* A tiny deterministic generator: *STATE is the whole state. */
static inline uint64_t th_rand(uint64_t *state) {
  *state += 0x9e3779b97f4a7c15ull;
  uint64_t x = *state;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* Uniform in [0, n) (n > 0); the bias is irrelevant for tests. */
static inline uint64_t th_rand_below(uint64_t *state, uint64_t n) {
  return th_rand(state) % n;
}

/* The pattern word number I of a block at offset OFF filled for owner SEED.
 * Two blocks differ in pattern whenever their seed or offset differ, so a
 * block that overlaps another (of any owner) is caught when checked. */
static inline uint64_t th_pattern_word(uint64_t seed, uint64_t off,
                                       uint64_t i) {
  return th_mix64(th_mix64(seed ^ 0x5bd1e995u) ^ th_mix64(off) ^
                  (i * 0x100000001b3ull));
}

/* Fills N bytes at P with the pattern of (SEED, OFF). */
static inline void th_fill(void *p, size_t n, uint64_t seed, uint64_t off) {
  unsigned char *b = p;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w = th_pattern_word(seed, off, i / 8);
    memcpy(b + i, &w, 8);
  }
  if (i < n) {
    uint64_t w = th_pattern_word(seed, off, i / 8);
    memcpy(b + i, &w, n - i);
  }
}

/* Returns the index of the first byte of N at P that differs from the
 * pattern of (SEED, OFF), or -1 when all match. */
static inline ptrdiff_t th_check_fill(const void *p, size_t n, uint64_t seed,
                                      uint64_t off) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i += 8) {
    uint64_t w = th_pattern_word(seed, off, i / 8);
    unsigned char wb[8];
    memcpy(wb, &w, 8);
    size_t k = n - i < 8 ? n - i : 8;
    if (memcmp(b + i, wb, k) != 0) {
      for (size_t j = 0; j < k; j++)
        if (b[i + j] != wb[j])
          return (ptrdiff_t)(i + j);
    }
  }
  return -1;
}

/* ------------------------------------------------------------------------ */
/* Address spacing                                                           */

/* Maps LEN bytes of inaccessible anonymous memory and returns it, so that the
 * next mapping this process makes (say shmheap_connect) lands elsewhere than
 * it would have. Release with th_unmap_spacer. */
static inline void *th_map_spacer(size_t len) {
  void *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  g_assert_true(p != MAP_FAILED);
  return p;
}

static inline void th_unmap_spacer(void *p, size_t len) {
  g_assert_cmpint(munmap(p, len), ==, 0);
}

/* A heap for one test case: created under a unique name of AREA, destroyed
 * (and checked gone) by th_heap_close. */
struct heap {
  char name[96];
  size_t len;
  shmheap_memory_handle mem;
  char *base;
};

static inline void th_heap_open(struct heap *h, const char *area, size_t len) {
  th_shm_name(h->name, sizeof h->name, area);
  h->len = len;
  h->mem = shmheap_create(h->name, len);
  g_assert_nonnull(h->mem);
  h->base = shmheap_underlying(h->mem);
  g_assert_nonnull(h->base);
}

static inline void heap_close(struct heap *h) {
  shmheap_destroy(NULL, h->mem);
  g_assert_false(th_shm_exists(h->name));
  h->mem = NULL;
}

#endif /* SHMHEAP_TESTUTIL_H */

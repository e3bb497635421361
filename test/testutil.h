/* testutil.h: what the test programs share, declared here and built once
 * (testutil.c, linked into every test program): unique shared memory names
 * that are removed if the test dies, forked children with a timeout, a
 * watchdog, whole reads and writes, file descriptor counts and the per-case
 * leak check, deterministic randomness, block patterns that reveal
 * overlapping blocks, a spacer mapping, and the one-heap fixture.
 */
#ifndef SHMHEAP_TESTUTIL_H
#define SHMHEAP_TESTUTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <shmheap.h>
#include <signal.h>
#include <stddef.h>
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
/* Test cases                                                                */

/* Registers FN as the case PATH, as g_test_add_func does, and fails the
 * case if it leaves more or fewer file descriptors open than it found. */
void th_add_func(const char *path, void (*fn)(void));
/* The same for a case that takes DATA, as g_test_add_data_func. */
void th_add_data_func(const char *path, gconstpointer data,
                      void (*fn)(gconstpointer));

/* ------------------------------------------------------------------------ */
/* Names                                                                     */

/* Writes "/shmheap-test-AREA-PID-COUNTER" into BUF and returns BUF. The
 * counter is per process (a child continues its parent's count, with its
 * own pid). A leftover object of that name can only come from a dead
 * process that had our pid, so it is removed. The name is remembered and
 * removed should this process die of a signal (a failed g_assert aborts);
 * a child that dies leaves its parent's names alone. */
char *th_shm_name(char *buf, size_t buflen, const char *area);

/* Installs, once per process, the signal handlers that remove this
 * process's names when it dies (th_shm_name does so on first use). */
void th_install_cleanup(void);

/* Whether an object NAME ("/x") exists in the shared memory namespace. */
gboolean th_shm_exists(const char *name);

/* ------------------------------------------------------------------------ */
/* Children                                                                  */

/* Forks; the child arms alarm(TIMEOUT_S) (TH_CHILD_TIMEOUT when 0), runs
 * FN(ARG) and _exits with its return value (0 = success). The parent waits
 * and returns the child's wait status. */
int th_fork_run(int (*fn)(void *), void *arg, unsigned timeout_s);
/* Like th_fork_run but does not wait: returns the child's pid. */
pid_t th_fork_start(int (*fn)(void *), void *arg, unsigned timeout_s);
/* Waits for PID and returns its wait status. */
int th_wait(pid_t pid);
/* Whether a child's wait STATUS shows it ended by SIGKILL (a kill, or a
 * crash point); any other end than a clean exit fails the test. */
gboolean th_killed(int status);
/* Lets the child PID run for a random time below MAX_NS (drawn from RNG),
 * SIGKILLs it and reaps it. Returns 1 when our SIGKILL ended it, 0 when it
 * had finished by itself (asserting that it succeeded). */
int th_kill_after(pid_t pid, uint64_t *rng, long max_ns);
/* Seconds on the monotonic clock, for bounds on how long a call took. */
double th_now_s(void);
/* The heap's lock word (lib/lock.h), for tests that scribble on it. */
uint64_t *th_lock_word(shmheap_memory_handle mem);

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
 * (say on a lock a dead child held), SIGALRM says WHAT hung and aborts, so
 * the test fails at once instead of running into Meson's timeout. */
void th_watchdog_arm(unsigned secs, const char *what);
void th_watchdog_disarm(void);

/* Writes or reads exactly N bytes on FD (retrying on EINTR and short
 * transfers). Returns 0, or -1 on error or end of file. */
int th_write_all(int fd, const void *buf, size_t n);
int th_read_all(int fd, void *buf, size_t n);

/* ------------------------------------------------------------------------ */
/* File descriptors                                                          */

/* The number of open file descriptors of this process. Compare a count taken
 * before an operation with one taken after to find a leak. */
int th_count_fds(void);

/* ------------------------------------------------------------------------ */
/* Deterministic randomness and block patterns                               */

/* splitmix64: a full-period 64-bit mixer, good enough for test streams. */
uint64_t th_mix64(uint64_t x);
/* A tiny deterministic generator: *STATE is the whole state. */
uint64_t th_rand(uint64_t *state);
/* Uniform in [0, n) (n > 0); the bias is irrelevant for tests. */
uint64_t th_rand_below(uint64_t *state, uint64_t n);

/* The pattern word number I of a block at offset OFF filled for owner SEED.
 * Two blocks differ in pattern whenever their seed or offset differ, so a
 * block that overlaps another (of any owner) is caught when checked. */
uint64_t th_pattern_word(uint64_t seed, uint64_t off, uint64_t i);
/* Fills N bytes at P with the pattern of (SEED, OFF). */
void th_fill(void *p, size_t n, uint64_t seed, uint64_t off);
/* The index of the first byte of N at P that differs from the pattern of
 * (SEED, OFF), or -1 when all match. */
ptrdiff_t th_check_fill(const void *p, size_t n, uint64_t seed, uint64_t off);

/* ------------------------------------------------------------------------ */
/* Address spacing                                                           */

/* Maps LEN bytes of inaccessible anonymous memory and returns it, so that the
 * next mapping this process makes (say shmheap_connect) lands elsewhere than
 * it would have. Release with th_unmap_spacer. */
void *th_map_spacer(size_t len);
void th_unmap_spacer(void *p, size_t len);

/* ------------------------------------------------------------------------ */
/* The one-heap fixture                                                      */

/* A heap for one test case: created under a unique name of AREA by
 * th_heap_open, destroyed (and checked gone) by heap_close. */
struct heap {
  char name[96];
  size_t len;
  shmheap_memory_handle mem;
  char *base;
};

void th_heap_open(struct heap *h, const char *area, size_t len);
void heap_close(struct heap *h);

#endif /* SHMHEAP_TESTUTIL_H */

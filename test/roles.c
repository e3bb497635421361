/* roles.c: the kill-by-role helpers (roles.h): the shared board, the
 * workers' in-call flags and call timing, the stop windows, and the
 * killer's stop, classify, kill step. A stopped process cannot change its
 * role, so its class is exact: holder when the lock word names one of its
 * threads (a thread of the process: /proc/PID/task/TID), waiter when one of
 * its threads is inside a call, idle otherwise.
 */
#include "roles.h"

#include <sys/syscall.h>

const char *const role_names[ROLE_N] = {"holder", "waiter", "idle"};

struct role_board *role_board_new(void) {
  struct role_board *b = mmap(NULL, sizeof *b, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  g_assert_true(b != MAP_FAILED);
  return b;
}

void role_board_free(struct role_board *b) {
  g_assert_cmpint(munmap(b, sizeof *b), ==, 0);
}

void role_slot_claim(struct role_slot *s) {
  __atomic_store_n(&s->pid, (int32_t)getpid(), __ATOMIC_RELAXED);
  __atomic_store_n(&s->tid, (int32_t)syscall(SYS_gettid), __ATOMIC_RELAXED);
}

double role_call_begin(struct role_slot *s) {
  __atomic_store_n(&s->in_call, 1, __ATOMIC_SEQ_CST);
  return th_now_s();
}

/* Microseconds of [T0, T1] that stop windows covered. The windows follow
 * each other (one victim is stopped at a time), newest last; one still
 * open ends at T1. */
static int64_t stopped_within(const struct role_board *b, int64_t t0,
                              int64_t t1) {
  int64_t covered = 0;
  for (uint64_t i = __atomic_load_n(&b->nwin, __ATOMIC_ACQUIRE); i-- > 0;) {
    int64_t start = __atomic_load_n(&b->win[i][0], __ATOMIC_RELAXED);
    int64_t end = __atomic_load_n(&b->win[i][1], __ATOMIC_RELAXED);
    if (end == 0 || end > t1)
      end = t1;
    if (end <= t0)
      break;
    covered += end - MAX(start, t0);
  }
  return covered;
}

void role_call_end(const struct role_board *b, struct role_slot *s, double t0) {
  double t1 = th_now_s(), d = t1 - t0;
  s->max_call_s = MAX(s->max_call_s, d);
  if (d > s->max_free_s) {
    int64_t us0 = (int64_t)(t0 * 1e6), us1 = (int64_t)(t1 * 1e6);
    double free_s = d - (double)stopped_within(b, us0, us1) / 1e6;
    s->max_free_s = MAX(s->max_free_s, free_s);
  }
  s->calls++;
  __atomic_store_n(&s->in_call, 0, __ATOMIC_SEQ_CST);
}

int role_stop_asked(const struct role_board *b) {
  return __atomic_load_n(&b->stop, __ATOMIC_RELAXED);
}

/* Whether TID is a thread of the process PID. */
static int thread_of(pid_t pid, uint32_t tid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task/%u", (int)pid, tid);
  return tid != 0 && access(path, F_OK) == 0;
}

static uint32_t lock_owner(shmheap_memory_handle mem) {
  return (uint32_t)(__atomic_load_n(th_lock_word(mem), __ATOMIC_RELAXED) &
                    0x3fffffff);
}

pid_t role_lock_holder(shmheap_memory_handle mem, const pid_t *pids,
                       unsigned n) {
  uint32_t owner = lock_owner(mem);
  for (unsigned i = 0; owner != 0 && i < n; i++)
    if (pids[i] != 0 && thread_of(pids[i], owner))
      return pids[i];
  return 0;
}

static void window_open(struct role_board *b) {
  uint64_t n = b->nwin;
  g_assert_cmpuint(n, <, ROLE_WINDOWS);
  __atomic_store_n(&b->win[n][1], 0, __ATOMIC_RELAXED);
  __atomic_store_n(&b->win[n][0], g_get_monotonic_time(), __ATOMIC_RELAXED);
  __atomic_store_n(&b->nwin, n + 1, __ATOMIC_RELEASE);
}

static void window_close(struct role_board *b) {
  __atomic_store_n(&b->win[b->nwin - 1][1], g_get_monotonic_time(),
                   __ATOMIC_RELEASE);
}

double role_longest_stop(const struct role_board *b) {
  int64_t most = 0;
  for (uint64_t i = 0; i < b->nwin; i++)
    most = MAX(most, b->win[i][1] - b->win[i][0]);
  return (double)most / 1e6;
}

int role_stop(struct role_board *b, shmheap_memory_handle mem, pid_t pid,
              unsigned first, unsigned n) {
  window_open(b);
  g_assert_cmpint(kill(pid, SIGSTOP), ==, 0);
  int status = 0;
  pid_t r;
  do
    r = waitpid(pid, &status, WUNTRACED);
  while (r < 0 && errno == EINTR);
  g_assert_cmpint(r, ==, pid);
  if (!WIFSTOPPED(status)) {
    window_close(b);
    th_assert_child_ok(status);
    return -1;
  }
  if (thread_of(pid, lock_owner(mem)))
    return ROLE_HOLDER;
  for (unsigned i = first; i < first + n; i++)
    if (__atomic_load_n(&b->slot[i].in_call, __ATOMIC_SEQ_CST) &&
        __atomic_load_n(&b->slot[i].pid, __ATOMIC_RELAXED) == pid)
      return ROLE_WAITER;
  return ROLE_IDLE;
}

void role_resume(struct role_board *b, pid_t pid) {
  g_assert_cmpint(kill(pid, SIGCONT), ==, 0);
  window_close(b);
}

void role_kill(struct role_board *b, pid_t pid) {
  g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
  window_close(b);
  int status = th_wait(pid);
  g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

int role_stop_kill(struct role_board *b, shmheap_memory_handle mem, pid_t pid,
                   unsigned first, unsigned n) {
  int role = role_stop(b, mem, pid, first, n);
  if (role >= 0)
    role_kill(b, pid);
  return role;
}

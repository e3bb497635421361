/* roles.c: the kill-by-role helpers (roles.h): the shared board, the
 * workers' in-call flags and call timing, and the killer's stop, classify,
 * kill step. A stopped process cannot change its role, so its class is
 * exact: holder when the lock word names one of its threads (a thread of
 * the process: /proc/PID/task/TID), waiter when one of its threads is
 * inside a call, idle otherwise.
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

void role_call_end(struct role_slot *s, double t0) {
  double d = th_now_s() - t0;
  if (d > s->max_call_s)
    s->max_call_s = d;
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

int role_stop(shmheap_memory_handle mem, pid_t pid,
              const struct role_slot *slots, unsigned nslots) {
  g_assert_cmpint(kill(pid, SIGSTOP), ==, 0);
  int status = 0;
  pid_t r;
  do
    r = waitpid(pid, &status, WUNTRACED);
  while (r < 0 && errno == EINTR);
  g_assert_cmpint(r, ==, pid);
  if (!WIFSTOPPED(status)) {
    th_assert_child_ok(status);
    return -1;
  }
  if (thread_of(pid, lock_owner(mem)))
    return ROLE_HOLDER;
  for (unsigned i = 0; i < nslots; i++)
    if (__atomic_load_n(&slots[i].in_call, __ATOMIC_SEQ_CST) &&
        __atomic_load_n(&slots[i].pid, __ATOMIC_RELAXED) == pid)
      return ROLE_WAITER;
  return ROLE_IDLE;
}

void role_resume(pid_t pid) {
  g_assert_cmpint(kill(pid, SIGCONT), ==, 0);
}

void role_kill(pid_t pid) {
  g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
  int status = th_wait(pid);
  g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

int role_stop_kill(shmheap_memory_handle mem, pid_t pid,
                   const struct role_slot *slots, unsigned nslots) {
  int role = role_stop(mem, pid, slots, nslots);
  if (role >= 0)
    role_kill(pid);
  return role;
}

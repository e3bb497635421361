/* roles.h: what a killer needs to know about the processes it kills: a
 * shared board where each worker thread publishes its thread id, whether
 * it is inside a library call, and its slowest call; and the killer's
 * stop, classify, kill step, which names the victim's role at the instant
 * it died (roles.c). Shared by test-killroles.c and test-trace.c.
 *
 * A victim stays stopped for a moment while the killer classifies it; if
 * it holds the lock, every waiter waits that long too, and on a loaded
 * machine the killer itself may not run for a while. So the board keeps
 * the stop windows, and each call's length is also taken less the time it
 * overlapped them: the wait the library alone is answerable for.
 */
#ifndef SHMHEAP_TEST_ROLES_H
#define SHMHEAP_TEST_ROLES_H

#include <stdint.h>
#include <sys/types.h>

#include "testutil.h"

/* The role of a process at the instant it was killed. */
enum role {
  ROLE_HOLDER, /* one of its threads held the heap's lock */
  ROLE_WAITER, /* one was inside a call, none held the lock */
  ROLE_IDLE,   /* none was inside a call */
  ROLE_N
};

extern const char *const role_names[ROLE_N];

/* One worker thread (or a process's main thread while it connects). */
struct role_slot {
  int32_t pid, tid;
  int32_t in_call; /* set before a library call, cleared after it */
  int32_t spare;
  uint64_t calls;    /* calls finished */
  double max_call_s; /* the slowest of them */
  double max_free_s; /* the slowest, less the stop windows it overlapped */
};

enum { ROLE_SLOTS = 64, ROLE_WINDOWS = 1 << 15 };

struct role_board {
  int32_t stop; /* the parent asks the workers to finish */
  int32_t spare;
  struct role_slot slot[ROLE_SLOTS];
  uint64_t nwin;                /* stop windows opened */
  int64_t win[ROLE_WINDOWS][2]; /* each one's start and end (0 while open),
                                    in microseconds of the monotonic clock */
};

/* A board in memory shared with the children forked after it; zeroed. */
struct role_board *role_board_new(void);
void role_board_free(struct role_board *b);

/* In a worker: the slot's owner is this thread now. */
void role_slot_claim(struct role_slot *s);
/* In a worker, around each library call: role_call_begin returns the
 * time the call started, role_call_end records its length. */
double role_call_begin(struct role_slot *s);
void role_call_end(const struct role_board *b, struct role_slot *s, double t0);
/* In a worker: whether the parent asked it to finish. */
int role_stop_asked(const struct role_board *b);

/* The pid of the process among PIDS[0..N) (0 entries are skipped) one of
 * whose threads holds MEM's lock right now, or 0. */
pid_t role_lock_holder(shmheap_memory_handle mem, const pid_t *pids,
                       unsigned n);

/* Stops the child PID (SIGSTOP, waiting until it is stopped), opening a
 * stop window, and returns its role now, by MEM's lock word and the
 * in-call flags of its slots B->slot[FIRST..FIRST+N); -1 when it had exited
 * by itself (asserting it succeeded; no window stays open). */
int role_stop(struct role_board *b, shmheap_memory_handle mem, pid_t pid,
              unsigned first, unsigned n);
/* Lets the stopped child PID run on, closing the window. */
void role_resume(struct role_board *b, pid_t pid);
/* SIGKILLs the stopped child PID, closing the window, and reaps it. */
void role_kill(struct role_board *b, pid_t pid);
/* role_stop, then role_kill: the role it died in, or -1 as role_stop. */
int role_stop_kill(struct role_board *b, shmheap_memory_handle mem, pid_t pid,
                   unsigned first, unsigned n);
/* The longest stop window so far, in seconds. */
double role_longest_stop(const struct role_board *b);

#endif

/* roles.h: what a killer needs to know about the processes it kills: a
 * shared board where each worker thread publishes its thread id, whether
 * it is inside a library call, and its slowest call; and the killer's
 * stop, classify, kill step, which names the victim's role at the instant
 * it died (roles.c). Shared by test-killroles.c and test-trace.c.
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
};

enum { ROLE_SLOTS = 64 };

struct role_board {
  int32_t stop; /* the parent asks the workers to finish */
  int32_t spare;
  struct role_slot slot[ROLE_SLOTS];
};

/* A board in memory shared with the children forked after it; zeroed. */
struct role_board *role_board_new(void);
void role_board_free(struct role_board *b);

/* In a worker: the slot's owner is this thread now. */
void role_slot_claim(struct role_slot *s);
/* In a worker, around each library call: role_call_begin returns the
 * time the call started, role_call_end records its length. */
double role_call_begin(struct role_slot *s);
void role_call_end(struct role_slot *s, double t0);
/* In a worker: whether the parent asked it to finish. */
int role_stop_asked(const struct role_board *b);

/* The pid of the process among PIDS[0..N) (0 entries are skipped) one of
 * whose threads holds MEM's lock right now, or 0. */
pid_t role_lock_holder(shmheap_memory_handle mem, const pid_t *pids,
                       unsigned n);

/* Stops the child PID (SIGSTOP, waiting until it is stopped) and returns
 * its role now, by MEM's lock word and the in-call flags of its slots
 * SLOTS[0..NSLOTS); -1 when it had exited by itself (asserting it
 * succeeded). */
int role_stop(shmheap_memory_handle mem, pid_t pid,
              const struct role_slot *slots, unsigned nslots);
/* Lets the stopped child PID run on. */
void role_resume(pid_t pid);
/* SIGKILLs and reaps the stopped child PID. */
void role_kill(pid_t pid);
/* role_stop, then role_kill: the role it died in, or -1 as role_stop. */
int role_stop_kill(shmheap_memory_handle mem, pid_t pid,
                   const struct role_slot *slots, unsigned nslots);

#endif

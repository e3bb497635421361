/* trace.h: the test-only serial-order log of heap operations (built with
 * crash_points only): its format, shared with the tests that replay it, and
 * the hooks the library calls under the heap's lock.
 *
 * A test creates a shared memory object (struct shh_trace_log followed by
 * cap records), writes the magic, the capacity and the name of the heap to
 * trace, and names the object in SHMHEAP_TRACE. Every connection to that
 * heap made while the variable is set maps the log and, under the heap's
 * lock, appends one record per alloc, realloc and free: so the records'
 * order is the order in which the operations took effect. calloc takes
 * effect in alloc's locked operation, so its record is an alloc of n * sz.
 * Only the public alloc, realloc and free are logged: the blocks the names
 * directory takes and the growth of a growable heap are not, so a replay
 * of the log alone describes a heap that uses neither.
 *
 * A record is written in two steps, because a process may be killed at any
 * instruction: before the operation starts it is appended as PENDING (its
 * op and arguments), and after the operation, still under the lock, its
 * result is filled in and it becomes DONE. A DONE record took effect with
 * that result; a PENDING one belongs to a process killed during it, and the
 * operation may or may not have taken effect (a realloc that moves may also
 * have allocated its new block without freeing the old). An operation that
 * took effect is always in the log.
 */
#ifndef SHMHEAP_TRACE_H
#define SHMHEAP_TRACE_H

#include <stdint.h>

#define SHH_TRACE_MAGIC 0x5348485452414345ull /* "SHHTRACE" */
#define SHH_TRACE_ENV "SHMHEAP_TRACE"

enum shh_trace_op { SHH_TRACE_ALLOC = 1, SHH_TRACE_REALLOC, SHH_TRACE_FREE };
enum shh_trace_state { SHH_TRACE_PENDING = 1, SHH_TRACE_DONE };

struct shh_trace_rec {
  uint32_t state; /* shh_trace_state; written last */
  uint32_t op;    /* shh_trace_op */
  uint32_t pid, tid;
  uint64_t size;    /* requested bytes (alloc, realloc) */
  uint64_t old_hdl; /* the handle given (realloc, free) */
  uint64_t new_hdl; /* the handle returned; 0 on failure */
  int32_t err;      /* 0 or the errno of the failure */
  uint32_t spare;
};

struct shh_trace_log {
  uint64_t magic; /* SHH_TRACE_MAGIC, written by the test */
  uint64_t cap;   /* records the object holds after this header */
  uint64_t count; /* records appended (stored after the record) */
  uint64_t lost;  /* records that did not fit: the log is incomplete */
  char heap[256]; /* the name of the heap traced */
  struct shh_trace_rec rec[];
};

struct shmheap;

#ifdef SHH_CRASH_POINTS
/* At connect: maps the log SHMHEAP_TRACE names if it traces this heap. */
void shh_trace_arm(struct shmheap *h);
/* At disconnect: unmaps it. */
void shh_trace_disarm(struct shmheap *h);
/* Under the lock: appends a PENDING record, then completes it. */
void shh_trace_begin(struct shmheap *h, unsigned op, uint64_t size,
                     const void *old);
void shh_trace_end(struct shmheap *h, const void *out, int err);
#define SHH_TRACE_BEGIN(h, op, size, old) shh_trace_begin(h, op, size, old)
#define SHH_TRACE_END(h, out, err) shh_trace_end(h, out, err)
#else
#define SHH_TRACE_BEGIN(h, op, size, old) ((void)(h))
#define SHH_TRACE_END(h, out, err) ((void)(h))
static inline void shh_trace_disarm(struct shmheap *h) {
  (void)h;
}
#endif

#endif

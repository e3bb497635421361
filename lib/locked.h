/* locked.h: running an internal operation under the heap's lock, and the
 * library's one error convention.
 *
 * Internal functions return 0 or an errno value (EINVAL, ENOMEM, EUCLEAN,
 * ...): never -1, never an error through an out-parameter. Only the public
 * entry points set errno, through shh_locked below.
 */
#ifndef SHMHEAP_LOCKED_H
#define SHMHEAP_LOCKED_H

#include <errno.h>

#include "lock.h"

/* The two halves of shh_locked, for an entry point with a fast path of
 * its own. shh_enter takes MEM's lock: 0, or -1 with errno set (EINVAL
 * when MEM is NULL, or the lock's error). shh_leave releases it and
 * reports ERR, the work's result: 0, or -1 with errno set to ERR. */
static inline int shh_enter(struct shmheap *mem) {
  int err = mem == NULL ? EINVAL : shh_lock(mem, NULL);
  if (err != 0) {
    errno = err;
    return -1;
  }
  return 0;
}

static inline int shh_leave(struct shmheap *mem, int err) {
  shh_unlock(mem);
  if (err != 0) {
    errno = err;
    return -1;
  }
  return 0;
}

/* Runs OP(MEM, ARG) with MEM's lock held. Returns 0, or -1 with errno set
 * to what OP returned, to EINVAL when MEM is NULL, or to the lock's error. */
static inline int shh_locked(struct shmheap *mem,
                             int (*op)(struct shmheap *h, void *arg),
                             void *arg) {
  if (shh_enter(mem) != 0)
    return -1;
  return shh_leave(mem, op(mem, arg));
}

#endif

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

/* Runs OP(MEM, ARG) with MEM's lock held. Returns 0, or -1 with errno set
 * to what OP returned, to EINVAL when MEM is NULL, or to the lock's error. */
static inline int shh_locked(struct shmheap *mem,
                             int (*op)(struct shmheap *h, void *arg),
                             void *arg) {
  if (mem == NULL) {
    errno = EINVAL;
    return -1;
  }
  int err = shh_lock(mem, NULL);
  if (err == 0) {
    err = op(mem, arg);
    shh_unlock(mem);
  }
  if (err != 0) {
    errno = err;
    return -1;
  }
  return 0;
}

#endif

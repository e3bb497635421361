/* lock.c: the one lock that guards a heap, and what happens when its owner
 * dies.
 *
 * The lock is a process-shared, robust pthread mutex in the header. When a
 * process dies holding it, the next pthread_mutex_lock returns EOWNERDEAD:
 * that caller owns the lock, repairs the heap from its tags (recover.c),
 * marks the mutex consistent and goes on. If the repairer dies too, the
 * mutex is still inconsistent and the next locker repairs again. If the
 * tags cannot be walked (memory scribbled by a caller, not a crash: every
 * operation keeps the tags walkable at each instruction), the heap is
 * marked BROKEN and every later call fails with EUCLEAN instead of handing
 * out memory twice.
 *
 * We never probe with trylock: every return of lock is handled, EOWNERDEAD
 * included.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#ifdef __GLIBC__
#include <linux/futex.h>
#endif

#include "lock.h"

static int mutex_init(pthread_mutex_t *m) {
  pthread_mutexattr_t a;
  int rc = pthread_mutexattr_init(&a);
  if (rc != 0)
    return rc;
  rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  if (rc == 0)
    rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  if (rc == 0)
    rc = pthread_mutex_init(m, &a);
  pthread_mutexattr_destroy(&a);
  return rc;
}

int shh_lock_init(struct shmheap *h) {
  return mutex_init(&shh_hdr(h)->lock);
}

#ifdef __GLIBC__
/* The kind word a robust, process-shared mutex of this glibc carries. glibc
 * asserts, and so aborts, on some garbage kinds; we refuse them instead. */
static int expected_kind(void) {
  pthread_mutex_t m;
  memset(&m, 0, sizeof m);
  if (mutex_init(&m) != 0)
    return -1;
  int kind = m.__data.__kind;
  pthread_mutex_destroy(&m);
  return kind;
}

int shh_lock_plausible(const struct shmheap *h) {
  const pthread_mutex_t *m = &shh_hdr(h)->lock;
  return m->__data.__kind == expected_kind() ? 0 : -1;
}
/* The lock word of a robust mutex holds its owner's thread id. A live owner
 * means a busy heap; an owner that is gone, yet was not handed to us as
 * EOWNERDEAD, means the word is garbage. (A heap shared across PID
 * namespaces may see a busy heap's owner as gone.) */
int shh_lock_owner_alive(const struct shmheap *h) {
  const pthread_mutex_t *m = &shh_hdr(h)->lock;
  pid_t tid = (pid_t)(m->__data.__lock & FUTEX_TID_MASK);
  /* glibc records a held robust mutex's owner twice; a scribble that forges
   * a live thread id in one field rarely forges it in both */
  if (tid <= 0 || m->__data.__owner != tid)
    return 0;
  return kill(tid, 0) == 0 || errno == EPERM;
}
#else
int shh_lock_plausible(const struct shmheap *h) {
  (void)h;
  return 0;
}

int shh_lock_owner_alive(const struct shmheap *h) {
  (void)h;
  return 1;
}
#endif

int shh_lock(struct shmheap *h, const struct timespec *deadline) {
  struct shh_header *hd = shh_hdr(h);
  int rc = deadline ? pthread_mutex_timedlock(&hd->lock, deadline)
                    : pthread_mutex_lock(&hd->lock);
  if (rc == EOWNERDEAD) {
    if (__atomic_load_n(&hd->state, __ATOMIC_RELAXED) == SHH_STATE_READY &&
        shh_recover(h) != 0)
      __atomic_store_n(&hd->state, (uint16_t)SHH_STATE_BROKEN,
                       __ATOMIC_RELAXED);
    pthread_mutex_consistent(&hd->lock);
    rc = 0;
  }
  if (rc != 0) {
    errno = rc == ETIMEDOUT                         ? EAGAIN
            : rc == ENOTRECOVERABLE || rc == EINVAL ? EUCLEAN
                                                    : rc;
    return -1;
  }
  if (__atomic_load_n(&hd->state, __ATOMIC_RELAXED) != SHH_STATE_READY) {
    pthread_mutex_unlock(&hd->lock);
    errno = EUCLEAN;
    return -1;
  }
  return 0;
}

void shh_unlock(struct shmheap *h) {
  pthread_mutex_unlock(&shh_hdr(h)->lock);
}

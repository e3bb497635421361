/* lock.c: the one lock that guards a heap, and what happens when its owner
 * dies.
 *
 * A library cannot register its own robust futex list (there is one per
 * thread, and glibc owns it), so the kernel will not tell us when a lock
 * owner dies. Instead the lock word names its owner (lock.h), and a waiter
 * that has slept a while asks the kernel whether that thread still exists.
 * If it does not, the waiter takes the word over with one compare-and-swap
 * (so exactly one waiter wins) and repairs the heap from its tags before it
 * goes on; if the repairer dies too, the next waiter finds it dead in turn.
 *
 * The word is written only whole (64-bit compare-and-swap or exchange), so a
 * crash at any instruction leaves an owner whose check bits match. A word
 * whose check bits do not match was scribbled over by someone else: there
 * may be a live owner we cannot name, so taking the lock would risk two
 * owners; the heap is marked broken instead (EUCLEAN), never a hang.
 *
 * Liveness is judged only for owners in our own PID namespace (thread ids
 * mean nothing across namespaces); an owner of another namespace is waited
 * for. A thread id the kernel reused for another thread before anyone
 * noticed the death keeps the lock "alive" until that thread exits.
 *
 * Fairness: a lock free to any comer lets a thread that releases and
 * relocks at once (a loop of O(n) checks) starve a sleeper for ever. A
 * waiter that has waited STARVE_NS sets STARVING; the releaser then leaves
 * the word reserved (unowned, STARVING) and wakes every sleeper, and only a
 * waiter that has itself waited that long may take it.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lock.h"
#include "recover.h"

#define TID_MASK 0x3fffffffu
#define STARVING (1u << 30)
#define WAITERS (1u << 31)
enum { SPINS = 100 };
#define NAP_NS 10000000L   /* a sleeper's timeout: its liveness check period */
#define STARVE_NS 5000000L /* a wait this long asks for a hand-off */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* This thread's id and this process's PID namespace, cached: system calls
 * cost more than the whole uncontended lock. A forked child starts over. */
static __thread uint32_t self_tid __attribute__((tls_model("initial-exec")));
/* This thread's owner word for the heap whose lock key is own_key: the
 * hash is worth computing once per thread and heap, not once per call. */
static __thread uint64_t own_word __attribute__((tls_model("initial-exec")));
static __thread uint32_t own_key __attribute__((tls_model("initial-exec")));
static uint32_t self_ns;
static int self_ns_known;

static void forget_self(void) {
  self_tid = 0;
  own_word = 0;
  __atomic_store_n(&self_ns_known, 0, __ATOMIC_RELAXED);
}

__attribute__((constructor)) static void lock_setup(void) {
  pthread_atfork(NULL, NULL, forget_self);
}

static uint32_t my_tid(void) {
  if (self_tid == 0)
    self_tid = (uint32_t)syscall(SYS_gettid) & TID_MASK;
  return self_tid;
}

static uint32_t my_ns(void) {
  if (!__atomic_load_n(&self_ns_known, __ATOMIC_ACQUIRE)) {
    struct stat st;
    uint32_t ns = 0;
    if (stat("/proc/self/ns/pid", &st) == 0)
      ns = (uint32_t)st.st_ino & 0xfffff;
    self_ns = ns;
    __atomic_store_n(&self_ns_known, 1, __ATOMIC_RELEASE);
  }
  return self_ns;
}

static uint32_t check_bits(uint32_t key, uint32_t tid, uint32_t ns) {
  uint32_t x = tid * 0x9e3779b1u ^ ns * 0x85ebca77u ^ key;
  x ^= x >> 15;
  x *= 0x2c1b3c6du;
  x ^= x >> 12;
  return x & 0xfff;
}

static uint64_t owner_word(const struct shmheap *h, uint32_t tid, uint32_t ns) {
  uint64_t high = (uint64_t)ns << 12 | check_bits(h->lock_key, tid, ns);
  return high << 32 | tid;
}

/* Whether W could have been written by this library: an unowned word has
 * no high half; an owned one carries its owner's check bits. */
static int word_ok(const struct shmheap *h, uint64_t w) {
  uint32_t tid = (uint32_t)w & TID_MASK, high = (uint32_t)(w >> 32);
  if (tid == 0)
    return high == 0;
  return (high & 0xfff) == check_bits(h->lock_key, tid, high >> 12);
}

static uint64_t *word(const struct shmheap *h) {
  return &shh_hdr(h)->lock;
}

static long futex(uint64_t *w, int op, uint32_t val, const struct timespec *t) {
  /* the futex is the low half of the word (little-endian) */
  return syscall(SYS_futex, (uint32_t *)(void *)w, op, val, t, NULL, 0);
}

static long elapsed_ns(const struct timespec *since) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (now.tv_sec - since->tv_sec) * 1000000000L +
         (now.tv_nsec - since->tv_nsec);
}

/* The time left until DEADLINE, capped at NAP_NS; 0 once it passed. */
static long nap_ns(const struct timespec *deadline) {
  if (deadline == NULL)
    return NAP_NS;
  long left = -elapsed_ns(deadline);
  return left <= 0 ? 0 : left < NAP_NS ? left : NAP_NS;
}

void shh_lock_init(struct shmheap *h) {
  *word(h) = 0;
  shh_hdr(h)->lock_spare = 0;
}

void shh_mark_broken(struct shmheap *h) {
  __atomic_store_n(&shh_hdr(h)->state, (uint16_t)SHH_STATE_BROKEN,
                   __ATOMIC_RELEASE);
}

/* Whether the owner named by W is known dead: in our namespace, and the
 * kernel has no thread of that id. */
static int owner_dead(uint64_t w) {
  uint32_t tid = (uint32_t)w & TID_MASK, ns = (uint32_t)(w >> 44);
  if (tid == 0 || ns != my_ns())
    return 0;
  return kill((pid_t)tid, 0) != 0 && errno == ESRCH;
}

/* The object must still hold the whole heap before anyone walks it: a peer
 * may have truncated it, and reading past its end raises SIGBUS. */
static int object_whole(const struct shmheap *h) {
  struct stat st;
  return fstat(h->fd, &st) == 0 && (uint64_t)st.st_size >= h->len;
}

/* Called by the waiter that took the word from a dead owner. */
static void repair(struct shmheap *h) {
  struct shh_header *hd = shh_hdr(h);
  if (__atomic_load_n(&hd->state, __ATOMIC_ACQUIRE) != SHH_STATE_READY)
    return;
  if (!object_whole(h) || shh_recover(h) != 0)
    shh_mark_broken(h);
}

/* The slow path: spin a little, then sleep on the futex in NAP_NS naps,
 * checking after each whether the owner still lives. */
static int lock_slow(struct shmheap *h, uint64_t own,
                     const struct timespec *deadline) {
  uint64_t *w = word(h);
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  int starving = 0;
  for (int spin = 0;; spin++) {
    uint64_t v = __atomic_load_n(w, __ATOMIC_RELAXED);
    if (!word_ok(h, v)) {
      shh_mark_broken(h);
      return EUCLEAN;
    }
    uint32_t low = (uint32_t)v;
    if ((low & TID_MASK) == (uint32_t)own && (uint32_t)(v >> 32) == own >> 32)
      return EDEADLK; /* this thread holds it: a walk callback called in */
    if ((low & TID_MASK) == 0 && (!(low & STARVING) || starving)) {
      /* free, or reserved for a starving waiter and we are one; we may
       * have slept, so others may sleep too: keep WAITERS */
      uint64_t mine = own | (spin >= SPINS ? WAITERS : 0);
      if (__atomic_compare_exchange_n(w, &v, mine, 0, __ATOMIC_ACQUIRE,
                                      __ATOMIC_RELAXED))
        return 0;
      continue;
    }
    if (spin < SPINS) {
      cpu_relax();
      continue;
    }
    if (!(low & WAITERS) || (starving && !(low & STARVING))) {
      uint64_t flagged = v | WAITERS | (starving ? STARVING : 0);
      if (!__atomic_compare_exchange_n(w, &v, flagged, 0, __ATOMIC_RELAXED,
                                       __ATOMIC_RELAXED))
        continue;
      v = flagged;
    }
    long ns = nap_ns(deadline);
    if (ns == 0)
      return EAGAIN;
    struct timespec t = {0, ns};
    long rc = futex(w, FUTEX_WAIT, (uint32_t)v, &t);
    if (rc != 0 && errno == ETIMEDOUT && owner_dead(v)) {
      uint64_t mine = own | WAITERS;
      if (__atomic_compare_exchange_n(w, &v, mine, 0, __ATOMIC_ACQUIRE,
                                      __ATOMIC_RELAXED)) {
        repair(h);
        return 0;
      }
    }
    starving = elapsed_ns(&start) >= STARVE_NS;
  }
}

/* This thread's owner word for H's lock (never 0: a tid is never 0). */
static inline uint64_t my_word(const struct shmheap *h) {
  if (own_word == 0 || own_key != h->lock_key) {
    own_word = owner_word(h, my_tid(), my_ns());
    own_key = h->lock_key;
  }
  return own_word;
}

int shh_lock(struct shmheap *h, const struct timespec *deadline) {
  uint64_t own = my_word(h), expect = 0;
  int err = 0;
  if (!__atomic_compare_exchange_n(word(h), &expect, own, 0, __ATOMIC_ACQUIRE,
                                   __ATOMIC_RELAXED)) {
    int saved = errno; /* a call that succeeds leaves errno alone */
    err = lock_slow(h, own, deadline);
    errno = saved;
  }
  if (err != 0)
    return err;
  if (__atomic_load_n(&shh_hdr(h)->state, __ATOMIC_RELAXED) !=
      SHH_STATE_READY) {
    shh_unlock(h);
    return EUCLEAN;
  }
  return 0;
}

void shh_unlock(struct shmheap *h) {
  uint64_t *w = word(h);
  /* the common case: we hold it with no flag set (own_word is our word
   * for the heap we locked last; when it is not, the loop below is right) */
  uint64_t v = own_word;
  if (__atomic_compare_exchange_n(w, &v, 0, 0, __ATOMIC_RELEASE,
                                  __ATOMIC_RELAXED))
    return;
  for (;;) {
    /* a starving waiter gets the word reserved; the rest is released */
    uint64_t next = (uint32_t)v & STARVING ? (uint64_t)(STARVING | WAITERS) : 0;
    if (__atomic_compare_exchange_n(w, &v, next, 0, __ATOMIC_RELEASE,
                                    __ATOMIC_RELAXED))
      break;
  }
  if ((uint32_t)v & (STARVING | WAITERS)) {
    int saved = errno;
    futex(w, FUTEX_WAKE, (uint32_t)v & STARVING ? INT_MAX : 1, NULL);
    errno = saved;
  }
}

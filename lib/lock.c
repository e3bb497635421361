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
 * Waiting (lock_slow) favours throughput: a waiter leaves a running owner
 * a run of calls rather than taking the lock, and the heap's hot lines
 * with it, at the first gap. Fairness: a lock free to any comer lets a
 * thread that releases and relocks at once (a loop of O(n) checks) starve
 * a sleeper for ever. A waiter that has waited STARVE_NS sets STARVING; the
 * releaser then leaves the word reserved (unowned, STARVING) and wakes
 * every sleeper, and only a waiter that has itself waited that long may
 * take it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "extent.h"
#include "lock.h"
#include "recover.h"

#define TID_MASK 0x3fffffffu
#define STARVING (1u << 30)
#define WAITERS (1u << 31)
#define BACKOFF_MIN_NS 200L   /* a waiter's first pause between looks */
#define BACKOFF_MAX_NS 64000L /* ... doubling up to this while it spins */
#define SPIN_NS 200000L       /* looks with pauses between them, this long */
#define DOZE_MAX_NS 1000000L  /* then with sleeps, doubling up to this */
#define NAP_NS 10000000L      /* then futex naps: a liveness check period */
#define STARVE_NS 5000000L    /* a wait this long asks for a hand-off */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* A thread's pseudo-random numbers below BOUND (> 0), for backoff jitter. */
static __thread uint32_t jitter_state
    __attribute__((tls_model("initial-exec")));
static uint32_t jitter(long bound) {
  uint32_t x = jitter_state != 0 ? jitter_state : (uint32_t)(uintptr_t)&x | 1;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  jitter_state = x;
  return (uint32_t)(x % (uint64_t)bound);
}

/* Who we are, cached: system calls cost more than the whole uncontended
 * lock. The cache must not outlive a fork, including one that runs no
 * atfork handler (_Fork, a raw clone): the process's generation lives in a
 * page the kernel zeroes in every child (MADV_WIPEONFORK; the atfork
 * handler zeroes it too, for kernels without it), and a thread trusts its
 * cached identity only for the generation it took it in. The page also
 * holds the PID namespace id, which a child may not share. */
static uint64_t *self_page; /* [0] generation, [1] namespace | NS_KNOWN */
static uint64_t self_page_fallback[2];
#define NS_KNOWN ((uint64_t)1 << 32)

/* This thread's cache, in one thread-local block so that the fast path
 * reaches every field from one thread-pointer offset. */
enum { MAX_HELD = 16 };
#define OWN_VALID ((uint64_t)1 << 32)
struct self {
  uint64_t gen; /* the generation the rest was taken in */
  /* the owner word for the heap whose lock key is own_key's low half (the
   * hash is worth computing once per thread and heap, not once per call);
   * own_key is 0, matching no heap, until it is computed */
  uint64_t own_word, own_key, own_witness;
  uint32_t tid;
  /* The heaps whose lock this thread holds, by identity (struct shmheap's
   * ident, the same through every connection to one heap): a lock word
   * that names this thread but whose heap is not among them was left by a
   * dead thread whose id the kernel reused. One of them in last, the rest
   * in held[]: a thread that holds one lock at a time notes it with one
   * store. 0: none. */
  uint64_t last;
  int nheld;
  uint64_t held[MAX_HELD - 1];
};
static __thread struct self me __attribute__((tls_model("initial-exec")));

static void forget_self(void) {
  __atomic_store_n(&self_page[0], 0, __ATOMIC_RELAXED);
  __atomic_store_n(&self_page[1], 0, __ATOMIC_RELAXED);
}

__attribute__((constructor)) static void lock_setup(void) {
  long page = sysconf(_SC_PAGESIZE);
  void *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  self_page = p == MAP_FAILED ? self_page_fallback : p;
  if (p != MAP_FAILED)
    (void)madvise(p, (size_t)page, MADV_WIPEONFORK);
  pthread_atfork(NULL, NULL, forget_self);
}

/* This process's PID namespace id: 20 bits, never 0 (0 marks no owner). */
static uint32_t my_ns(void) {
  uint64_t v = __atomic_load_n(&self_page[1], __ATOMIC_RELAXED);
  if (!(v & NS_KNOWN)) {
    int saved = errno;
    struct stat st;
    uint32_t ns = 1; /* without /proc every process looks alike */
    if (stat("/proc/self/ns/pid", &st) == 0 && (st.st_ino & 0xfffff) != 0)
      ns = (uint32_t)st.st_ino & 0xfffff;
    errno = saved;
    v = NS_KNOWN | ns;
    __atomic_store_n(&self_page[1], v, __ATOMIC_RELAXED);
  }
  return (uint32_t)v;
}

/* Where H is in held[], or -1. */
static int held_at(const struct shmheap *h) {
  for (int i = me.nheld - 1; i >= 0; i--)
    if (me.held[i] == h->ident)
      return i;
  return -1;
}

static int held_here(const struct shmheap *h) {
  return me.last == h->ident || held_at(h) >= 0;
}

/* Drops held[I]. */
static void drop_held(int i) {
  me.held[i] = me.held[--me.nheld];
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
  return (high >> 12) != 0 &&
         (high & 0xfff) == check_bits(h->lock_key, tid, high >> 12);
}

/* A second, 64-bit witness of the owner word, which the owner stores next
 * to it: the only check left for an owner in another PID namespace, whose
 * liveness we cannot judge (12 check bits pass one scribble in 4096). */
static uint64_t witness(const struct shmheap *h, uint64_t w) {
  uint64_t x = (w & ~(uint64_t)(STARVING | WAITERS)) ^ h->key;
  x ^= x >> 29;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 32;
  return x | 1;
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
  shh_hdr(h)->lock_check = 0;
}

void shh_mark_broken(struct shmheap *h) {
  __atomic_store_n(&shh_hdr(h)->state, (uint16_t)SHH_STATE_BROKEN,
                   __ATOMIC_RELEASE);
}

/* Whether the thread TID has exited: the kernel knows no such thread, or
 * only its zombie (a dead process its parent has not reaped yet; the
 * parent may be the very process waiting for the lock). */
static int thread_gone(uint32_t tid) {
  if (kill((pid_t)tid, 0) != 0)
    return errno == ESRCH;
  char path[48], buf[256];
  snprintf(path, sizeof path, "/proc/%u/stat", tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  const char *state = strrchr(buf, ')'); /* the name may hold anything */
  return state != NULL && state[1] == ' ' &&
         (state[2] == 'Z' || state[2] == 'X');
}

/* Whether the owner named by V, the word of H, is known dead: a thread of
 * our namespace that has exited, or our own id in the word of a heap we do
 * not hold (a dead thread whose id the kernel gave to us). */
static int owner_dead(const struct shmheap *h, uint64_t v, uint64_t own) {
  uint32_t tid = (uint32_t)v & TID_MASK, ns = (uint32_t)(v >> 44);
  if (tid == 0 || ns != my_ns())
    return 0;
  if (tid == (uint32_t)own)
    return !held_here(h);
  return thread_gone(tid);
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
#ifdef SHH_CRASH_POINTS
  /* test builds: SHMHEAP_RECOVER_STALL_MS makes the repair as slow as on
   * a heap of many millions of blocks */
  const char *stall = getenv("SHMHEAP_RECOVER_STALL_MS");
  long ms = stall ? atol(stall) : 0;
  struct timespec t = {ms / 1000, ms % 1000 * 1000000};
  while (ms > 0 && nanosleep(&t, &t) != 0 && errno == EINTR)
    ;
#endif
  /* a dead grower may have committed a new length: walk to it */
  if ((h->growable && shh_len_refresh(h) != 0) || !object_whole(h) ||
      shh_recover(h) != 0)
    shh_mark_broken(h);
}

/* Whether a wait on the word V, unchanged since SEEN, has gone on so long
 * that an owner we cannot judge (another namespace) must prove itself by
 * its witness. */
static int foreign_owner_forged(const struct shmheap *h, uint64_t v,
                                const struct timespec *seen) {
  return elapsed_ns(seen) >= 1000000000L &&
         __atomic_load_n(&shh_hdr(h)->lock_check, __ATOMIC_RELAXED) !=
             witness(h, v);
}

/* One nap on the futex while the word is V (with WAITERS set). Returns 0
 * to look again, or an errno. Takes the word over (returning 0 with *TOOK
 * set) when its owner is dead. */
static int nap(struct shmheap *h, uint64_t v, uint64_t own,
               const struct timespec *deadline, const struct timespec *seen,
               int *took) {
  uint64_t *w = word(h);
  long ns = nap_ns(deadline);
  if (ns == 0)
    return EAGAIN;
  struct timespec t = {0, ns};
  if (futex(w, FUTEX_WAIT, (uint32_t)v, &t) == 0 || errno != ETIMEDOUT)
    return 0;
  if (owner_dead(h, v, own)) {
    if (__atomic_compare_exchange_n(w, &v, own | WAITERS, 0, __ATOMIC_ACQUIRE,
                                    __ATOMIC_RELAXED)) {
      *took = 1;
      /* the witness first: a waiter in another namespace, which cannot
       * see that we live, judges our word by it, and a repair of a heap of
       * millions of blocks outlasts its patience */
      __atomic_store_n(&shh_hdr(h)->lock_check, witness(h, own),
                       __ATOMIC_RELAXED);
      repair(h);
    }
    return 0;
  }
  if (foreign_owner_forged(h, v, seen)) {
    shh_mark_broken(h);
    return EUCLEAN;
  }
  return 0;
}

/* How a waiter spends the time between two looks at the word, by how long
 * it has waited so far (WAITED_NS), in a window *WINDOW that doubles after
 * each look; half of it is random, so that waiters do not look in step.
 *  - Under SPIN_NS, it pauses (BACKOFF_MIN_NS to BACKOFF_MAX_NS). Most waits
 *    are for an owner that runs, holds the lock well under a microsecond
 *    per call and takes it again at once. Every look pulls the word's cache
 *    line away from that owner, and a waiter that took the lock in the
 *    owner's short gap between two calls would move the heap's hot lines
 *    to its CPU, then lose them back on the next hand-off: with looks this
 *    rare, the owner keeps the lock for runs of calls and the total
 *    throughput of many processes stays near that of one. The window is
 *    measured on the clock, not in pause instructions, whose cost differs
 *    tenfold between CPUs.
 *  - Under STARVE_NS, it sleeps for the window (up to DOZE_MAX_NS): its CPU
 *    is free for an owner preempted there, or for a sibling hardware
 *    thread, and unlike a futex sleep this costs the owner nothing (no
 *    WAITERS bit, so no wake-up call in every unlock).
 *  - Then it returns 1: the caller sleeps on the futex in naps of NAP_NS,
 *    asking for a hand-off (STARVING), which bounds what this costs in
 *    fairness. */
static int wait_a_little(long waited_ns, long *window,
                         const struct timespec *deadline) {
  if (waited_ns >= STARVE_NS)
    return 1;
  long ns = *window / 2 + (long)jitter(*window / 2);
  if (waited_ns >= SPIN_NS) {
    long left = nap_ns(deadline);
    struct timespec t = {0, ns < left ? ns : left};
    if (*window < DOZE_MAX_NS)
      *window *= 2;
    nanosleep(&t, NULL);
    return 0;
  }
  if (*window < BACKOFF_MAX_NS)
    *window *= 2;
  struct timespec since;
  clock_gettime(CLOCK_MONOTONIC, &since);
  do
    cpu_relax();
  while (elapsed_ns(&since) < ns);
  return 0;
}

/* The slow path: look at the word at growing intervals (wait_a_little),
 * then ask for a hand-off and sleep on the futex in NAP_NS naps, checking
 * after each whether the owner still lives. */
static int lock_slow(struct shmheap *h, uint64_t own,
                     const struct timespec *deadline) {
  uint64_t *w = word(h), last = 0;
  struct timespec start, seen;
  clock_gettime(CLOCK_MONOTONIC, &start);
  seen = start;
  int starving = 0; /* waited STARVE_NS: sleeps on the futex now */
  long window = BACKOFF_MIN_NS;
  for (;;) {
    uint64_t v = __atomic_load_n(w, __ATOMIC_RELAXED);
    if (!word_ok(h, v)) {
      shh_mark_broken(h);
      return EUCLEAN;
    }
    uint32_t low = (uint32_t)v;
    if ((v & ~(uint64_t)(STARVING | WAITERS)) == own && held_here(h))
      return EDEADLK; /* this thread holds it: a callback called in,
                         maybe through another connection to the heap */
    if ((low & TID_MASK) == 0 && (!(low & STARVING) || starving)) {
      /* free, or reserved for a starving waiter and we are one; we
       * slept, so others may sleep too: keep WAITERS */
      uint64_t mine = own | (starving ? WAITERS : 0);
      if (__atomic_compare_exchange_n(w, &v, mine, 0, __ATOMIC_ACQUIRE,
                                      __ATOMIC_RELAXED))
        return 0;
      continue;
    }
    if (!starving) {
      if (nap_ns(deadline) == 0)
        return EAGAIN;
      starving = wait_a_little(elapsed_ns(&start), &window, deadline);
      if (!starving)
        continue;
    }
    if ((low & (WAITERS | STARVING)) != (WAITERS | STARVING)) {
      uint64_t flagged = v | WAITERS | STARVING;
      if (!__atomic_compare_exchange_n(w, &v, flagged, 0, __ATOMIC_RELAXED,
                                       __ATOMIC_RELAXED))
        continue;
      v = flagged;
    }
    if ((v & ~(uint64_t)(STARVING | WAITERS)) != last) {
      last = v & ~(uint64_t)(STARVING | WAITERS);
      clock_gettime(CLOCK_MONOTONIC, &seen);
    }
    int took = 0, err = nap(h, v, own, deadline, &seen, &took);
    if (err != 0 || took)
      return err;
  }
}

static void unlock_slow(struct shmheap *h, uint64_t *w, uint64_t v);
/* Releases a word this thread holds but has not noted. */
static void release(struct shmheap *h) {
  uint64_t *w = word(h), v = me.own_word; /* as in shh_unlock */
  if (__builtin_expect(!__atomic_compare_exchange_n(
                           w, &v, 0, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED),
                       0))
    unlock_slow(h, w, v);
}

/* Whether this thread's cache is current for H: its generation is the
 * process's and its owner word is H's (a tid is never 0, so neither is the
 * word). A generation of 0 (a child not yet renewed) never matches: a
 * thread's own_key is 0 until lock_renew sets it, with a nonzero gen. */
static inline int self_current(const struct shmheap *h) {
  uint64_t gen = __atomic_load_n(&self_page[0], __ATOMIC_RELAXED);
  return gen == me.gen && me.own_key == (OWN_VALID | h->lock_key);
}

/* Whether the heap, whose lock this thread just took, may be used: it is
 * READY, and a growable heap's len follows the header's. 0, or EUCLEAN
 * with the lock released again. */
static __attribute__((noinline)) int lock_usable(struct shmheap *h) {
  if (__atomic_load_n(&shh_hdr(h)->state, __ATOMIC_RELAXED) !=
          SHH_STATE_READY ||
      (h->growable && shh_len_refresh(h) != 0)) {
    shh_unlock(h);
    return EUCLEAN;
  }
  return 0;
}

/* Once the word is ours and noted: store its witness and check that the
 * heap (HD, its header, from before the compare-and-swap, which makes the
 * compiler reload H) may be used. */
static inline __attribute__((always_inline)) int
lock_ready(struct shmheap *h, struct shh_header *hd) {
  __atomic_store_n(&hd->lock_check, me.own_witness, __ATOMIC_RELAXED);
  if (__builtin_expect(__atomic_load_n(&hd->state, __ATOMIC_RELAXED) ==
                               SHH_STATE_READY &&
                           !h->growable,
                       1))
    return 0;
  return lock_usable(h);
}

/* lock_taken when last is taken: W goes to held[], or, when this thread
 * holds as many words as it can note, the word is given back at once. */
static __attribute__((noinline)) int lock_taken_deep(struct shmheap *h,
                                                     struct shh_header *hd) {
  if (me.nheld == MAX_HELD - 1) {
    release(h);     /* not noted */
    return EDEADLK; /* callbacks nested deeper than anyone needs */
  }
  me.held[me.nheld++] = h->ident;
  return lock_ready(h, hd);
}

/* Once the word in HD is ours: note that we hold it, then lock_ready. All
 * of it comes after the compare-and-swap, so that it waits for nothing but
 * the word. The notes are for a thread that locks again while it holds the
 * lock (a callback, or a signal handler that interrupted a call after the
 * note; no call is async-signal-safe, and one that interrupts the moment
 * between the compare-and-swap and the note is not covered): a nested lock
 * of the same heap must be refused (EDEADLK), not taken for the leftover
 * of a dead thread with our id. */
static inline __attribute__((always_inline)) int
lock_taken(struct shmheap *h, struct shh_header *hd) {
  if (__builtin_expect(me.last != 0, 0))
    return lock_taken_deep(h, hd);
  me.last = h->ident;
  return lock_ready(h, hd);
}

/* shh_lock when the word is held by someone: wait for it. */
static __attribute__((noinline)) int
lock_contended(struct shmheap *h, const struct timespec *deadline) {
  int saved = errno; /* a call that succeeds leaves errno alone */
  int err = lock_slow(h, me.own_word, deadline);
  errno = saved;
  return err != 0 ? err : lock_taken(h, shh_hdr(h));
}

/* shh_lock when this thread's cache is not current for H: after a fork
 * (the child's only thread starts over, holding none of its parent's
 * locks), on a thread's first lock, or on a heap other than the last. */
static __attribute__((noinline)) int
lock_renew(struct shmheap *h, const struct timespec *deadline) {
  uint64_t gen = __atomic_load_n(&self_page[0], __ATOMIC_RELAXED);
  if (gen == 0 || gen != me.gen) {
    if (gen == 0) {
      /* a new process: its pid tells its generation from its parent's */
      uint64_t mine = (uint64_t)getpid() << 1 | 1;
      __atomic_compare_exchange_n(&self_page[0], &gen, mine, 0,
                                  __ATOMIC_RELAXED, __ATOMIC_RELAXED);
      gen = __atomic_load_n(&self_page[0], __ATOMIC_RELAXED);
    }
    me.gen = gen;
    me.tid = (uint32_t)syscall(SYS_gettid) & TID_MASK;
    me.last = 0;
    me.nheld = 0;
  }
  /* the hash is worth computing once per thread and heap */
  me.own_word = owner_word(h, me.tid, my_ns());
  me.own_witness = witness(h, me.own_word);
  me.own_key = OWN_VALID | h->lock_key;
  return shh_lock(h, deadline);
}

int shh_lock(struct shmheap *h, const struct timespec *deadline) {
  if (__builtin_expect(!self_current(h), 0))
    return lock_renew(h, deadline);
  struct shh_header *hd = shh_hdr(h);
  uint64_t expect = 0;
  if (__builtin_expect(
          !__atomic_compare_exchange_n(&hd->lock, &expect, me.own_word, 0,
                                       __ATOMIC_ACQUIRE, __ATOMIC_RELAXED),
          0))
    return lock_contended(h, deadline);
  return lock_taken(h, hd);
}

/* The release when the word is not just ours: V, its value, has a flag
 * set, or is not our word (a scribble, or own_word belongs to a heap
 * locked since). */
static __attribute__((noinline)) void unlock_slow(struct shmheap *h,
                                                  uint64_t *w, uint64_t v) {
  if (!word_ok(h, v) || ((uint32_t)v & TID_MASK) != me.tid ||
      (v >> 44) != my_ns())
    shh_mark_broken(h); /* scribbled while we held it */
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

/* shh_unlock when the word held more than our word. */
static __attribute__((noinline)) void unlock_flagged(struct shmheap *h,
                                                     uint64_t *w, uint64_t v) {
  unlock_slow(h, w, v);
  me.last = 0;
}

/* shh_unlock when H is not the heap this thread noted last: it is in
 * held[] (nested locks), or this process never took H's word at all. That
 * happens in a child forked from a walk or names callback: it inherits the
 * thread that holds the lock, but the word names the parent's thread,
 * which still holds it and will release it; so the child leaves the word
 * alone. Its inherited note goes (while its cache is the parent's, gen
 * differs) or is gone already (its first lock renewed the cache). */
static __attribute__((noinline)) void unlock_other(struct shmheap *h) {
  int forked = __atomic_load_n(&self_page[0], __ATOMIC_RELAXED) != me.gen;
  if (forked && me.last == h->ident) {
    me.last = 0;
    return;
  }
  int i = held_at(h);
  if (i < 0)
    return;
  if (!forked)
    release(h);
  drop_held(i);
}

/* The release comes first, so that it waits for nothing but the heap's
 * stores; the note that this thread held the word is dropped after (only
 * this thread reads it). */
void shh_unlock(struct shmheap *h) {
  if (__builtin_expect(me.last != h->ident ||
                           __atomic_load_n(&self_page[0], __ATOMIC_RELAXED) !=
                               me.gen,
                       0)) {
    unlock_other(h);
    return;
  }
  uint64_t *w = word(h);
  /* the common case: we hold it with no flag set (own_word is our word
   * for the heap we locked last; when it is not, unlock_slow is right) */
  uint64_t v = me.own_word;
  if (__builtin_expect(!__atomic_compare_exchange_n(
                           w, &v, 0, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED),
                       0)) {
    unlock_flagged(h, w, v);
    return;
  }
  me.last = 0;
}

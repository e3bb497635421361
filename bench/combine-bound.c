/* combine-bound.c: the most that flat combining could give two processes
 * running lifo-small on one heap, measured on the machine at hand.
 *
 * Flat combining lets one lock holder (the combiner) run the requests
 * other processes post in their slots. Here the protocol is as cheap as it
 * can be, cheaper than any crash-safe one: one poster, one slot of one cache
 * line that the combiner alone serves, no lock word to take, no states to
 * repair. The combiner runs its own lifo-small pairs on a shmheap heap and,
 * between two of them, serves the poster's request (an alloc or a free) if
 * one is posted; the poster posts alloc, waits for the handle, posts free,
 * waits. The total of both, against one process running lifo-small alone
 * on the same heap, bounds what any combining design reaches for this
 * workload: each of the poster's calls costs a round trip of the slot's
 * line between the CPUs, and each served request costs the combiner a miss
 * on that line. It also prints that round trip, measured bare.
 *
 * Usage: shmheap-combine-bound [REPS]  (default 7; prints each rep and the
 * medians). Needs two CPUs; pins the processes to the first two it may use.
 */
#include <sched.h>
#include <shmheap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "median.h"

enum { SIZES = 4096, MAX_REPS = 101 };
#define WINDOW_S 0.5

struct slot {
  uint64_t seq;  /* the poster's request number; a new one is posted */
  uint64_t op;   /* 1: alloc arg bytes, 2: free the handle arg */
  uint64_t arg;  /* the size, or the handle; the alloc's handle comes back */
  uint64_t done; /* the combiner's answer: seq of the request served */
} __attribute__((aligned(64)));

struct shared {
  struct slot slot;
  _Alignas(64) uint64_t stop;
  _Alignas(64) uint64_t ping;
  _Alignas(64) double poster_rate;
};

static unsigned sizes[SIZES];
static int cpus[2];

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void pin(int which) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpus[which], &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    perror("sched_setaffinity");
    exit(1);
  }
}

static void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static void lifo_pair(shmheap_memory_handle m, unsigned i) {
  void *p = shmheap_alloc(m, sizes[i % SIZES]);
  if (p == NULL) {
    fprintf(stderr, "alloc failed\n");
    exit(1);
  }
  shmheap_free(m, p);
}

/* One process alone: pairs per second. */
static double alone(shmheap_memory_handle m) {
  double t0 = now_s(), t;
  unsigned n = 0;
  do {
    for (int k = 0; k < 1024; k++, n++)
      lifo_pair(m, n);
    t = now_s();
  } while (t - t0 < WINDOW_S);
  return n / (t - t0);
}

/* Posts OP(ARG) and waits for its answer; false once told to stop. */
static int post(struct shared *s, uint64_t *seq, uint64_t op, uint64_t *arg) {
  s->slot.op = op;
  s->slot.arg = *arg;
  __atomic_store_n(&s->slot.seq, ++*seq, __ATOMIC_RELEASE);
  while (__atomic_load_n(&s->slot.done, __ATOMIC_ACQUIRE) != *seq)
    if (__atomic_load_n(&s->stop, __ATOMIC_RELAXED))
      return 0;
    else
      relax();
  *arg = s->slot.arg;
  return 1;
}

static void poster(struct shared *s) {
  pin(1);
  uint64_t seq = 0, n = 0;
  double t0 = now_s();
  for (;; n++) {
    uint64_t arg = sizes[n % SIZES];
    if (!post(s, &seq, 1, &arg) || !post(s, &seq, 2, &arg))
      break;
  }
  s->poster_rate = n / (now_s() - t0);
  _exit(0);
}

/* The combiner: its own pairs, serving the slot between two of them. */
static double combiner(struct shared *s, shmheap_memory_handle m) {
  unsigned char *base = shmheap_underlying(m);
  uint64_t served = 0;
  unsigned n = 0;
  double t0 = now_s(), t;
  do {
    for (int k = 0; k < 256; k++, n++) {
      uint64_t q = __atomic_load_n(&s->slot.seq, __ATOMIC_ACQUIRE);
      if (q != served) {
        if (s->slot.op == 1) {
          void *p = shmheap_alloc(m, s->slot.arg);
          s->slot.arg = (uint64_t)((unsigned char *)p - base);
        } else {
          shmheap_free(m, base + s->slot.arg);
        }
        served = q;
        __atomic_store_n(&s->slot.done, q, __ATOMIC_RELEASE);
      }
      lifo_pair(m, n);
    }
    t = now_s();
  } while (t - t0 < WINDOW_S);
  __atomic_store_n(&s->stop, 1, __ATOMIC_RELAXED);
  return n / (t - t0);
}

/* The bare round trip of one cache line between the two CPUs, in ns. */
static double round_trip(struct shared *s) {
  enum { TRIPS = 1000000 };
  s->ping = 0;
  pid_t pid = fork();
  if (pid == 0) {
    pin(1);
    for (uint64_t i = 0; i < TRIPS; i++) {
      while (__atomic_load_n(&s->ping, __ATOMIC_ACQUIRE) != 2 * i + 1)
        relax();
      __atomic_store_n(&s->ping, 2 * i + 2, __ATOMIC_RELEASE);
    }
    _exit(0);
  }
  double t0 = now_s();
  for (uint64_t i = 0; i < TRIPS; i++) {
    __atomic_store_n(&s->ping, 2 * i + 1, __ATOMIC_RELEASE);
    while (__atomic_load_n(&s->ping, __ATOMIC_ACQUIRE) != 2 * i + 2)
      relax();
  }
  double ns = (now_s() - t0) / TRIPS * 1e9;
  waitpid(pid, NULL, 0);
  return ns;
}

static void pick_cpus(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) {
    perror("sched_getaffinity");
    exit(1);
  }
  int k = 0;
  for (int c = 0; c < CPU_SETSIZE && k < 2; c++)
    if (CPU_ISSET(c, &set))
      cpus[k++] = c;
  if (k < 2) {
    fprintf(stderr, "shmheap-combine-bound needs two CPUs\n");
    exit(77);
  }
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 7;
  if (reps < 1 || reps > MAX_REPS) {
    fprintf(stderr, "usage: shmheap-combine-bound [REPS 1..%d]\n", MAX_REPS);
    return 2;
  }
  pick_cpus();
  uint64_t seed = 0x5eed0001;
  for (int i = 0; i < SIZES; i++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    sizes[i] = 16 + (unsigned)(seed >> 33) % 241;
  }
  struct shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (s == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  char name[64];
  snprintf(name, sizeof name, "/shmheap-combine-bound-%d", (int)getpid());
  shmheap_memory_handle m = shmheap_create(name, 64u << 20);
  if (m == NULL) {
    perror("shmheap_create");
    return 1;
  }
  double ratio[MAX_REPS], rtt[MAX_REPS];
  pin(0);
  for (int r = 0; r < reps; r++) {
    double one = alone(m);
    s->stop = 0;
    s->slot.seq = s->slot.done = 0;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
      poster(s);
    double own = combiner(s, m);
    waitpid(pid, NULL, 0);
    double total = own + s->poster_rate;
    ratio[r] = total / one;
    rtt[r] = round_trip(s);
    printf("rep %d: alone %.2f Mpairs/s; combining: combiner %.2f + poster "
           "%.2f = %.2f Mpairs/s = %.2fx alone; line round trip %.1f ns\n",
           r + 1, one / 1e6, own / 1e6, s->poster_rate / 1e6, total / 1e6,
           ratio[r], rtt[r]);
  }
  printf("median over %d reps: combining bound %.2fx one process; line round "
         "trip %.1f ns\n",
         reps, median(ratio, reps), median(rtt, reps));
  shmheap_destroy(name, m);
  return 0;
}

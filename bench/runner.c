/* runner.c: how the workloads are run and what is kept of them. The
 * repetitions, each running every selected workload on every allocator in
 * an order that rotates from one repetition to the next (CPU speed on
 * these machines changes by ~1.5x within a run, so interleaving makes it
 * hit every allocator alike); the segments in /dev/shm and their removal
 * even when a signal ends the run; forking and pinning the processes of
 * the multi-process workloads; the result store and its statistics
 * (medians, paired ratios). */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

double result[N_ROWS][MAX_ALLOCATORS][MAX_REPS];
size_t timed_steps[N_ROWS][MAX_ALLOCATORS];
size_t warm_steps[N_ROWS][MAX_ALLOCATORS];
bool capped[N_ROWS][MAX_ALLOCATORS];
const char *missing_note[N_ROWS][MAX_ALLOCATORS];

void record(enum row_id r, int ai, int rep, double value, size_t steps) {
  result[r][ai][rep] = value;
  timed_steps[r][ai] = steps;
  write_raw_csv(r, ai, rep, value, steps);
}

/* ------------------------------------------------------------------------ */
/* Segments in /dev/shm, removed even when the run is killed                */

static char current_path[128]; /* "/name" of the segment that exists now */
static volatile sig_atomic_t have_current;
static unsigned name_counter;

static void on_fatal_signal(int sig) {
  if (have_current)
    shm_unlink(current_path); /* both shmheap and Boost live in /dev/shm */
  signal(sig, SIG_DFL);
  raise(sig);
}

void install_signal_cleanup(void) {
  const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGALRM};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    signal(sigs[i], on_fatal_signal);
}

void new_name(char *buf, size_t n, const char *alloc_name) {
  snprintf(buf, n, "shmheap-bench-%s-%ld-%u", alloc_name, (long)getpid(),
           name_counter++);
}

void *segment_create(const struct allocator *a, const char *name, size_t len) {
  if (!a->shared)
    return a->create(name, len);
  a->remove(name); /* a stale object of this name would make create fail */
  snprintf(current_path, sizeof current_path, "/%s", name);
  have_current = 1;
  errno = 0;
  void *ctx = a->create(name, len);
  if (ctx == NULL) {
    if (!(a->quiet_enosys && errno == ENOSYS))
      fprintf(stderr, "bench: cannot create %s heap %s of %zu bytes: %s\n",
              a->name, name, len, strerror(errno));
    have_current = 0;
  }
  return ctx;
}

void segment_destroy(const struct allocator *a, const char *name, void *ctx) {
  a->close(ctx);
  if (a->shared) {
    a->remove(name);
    have_current = 0;
  }
}

void segment_disown(void) {
  have_current = 0;
}

/* ------------------------------------------------------------------------ */
/* Processes                                                                */

/* The CPUs this process may run on; process i is pinned to cpus[i % n]. */
static int cpus[CPU_SETSIZE];
static int n_cpus;

void find_cpus(void) {
  cpu_set_t set;
  CPU_ZERO(&set);
  n_cpus = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; c++)
      if (CPU_ISSET(c, &set))
        cpus[n_cpus++] = c;
  if (n_cpus == 0)
    cpus[n_cpus++] = 0;
}

int cpu_count(void) {
  return n_cpus;
}
int cpu_at(int idx) {
  return cpus[idx % n_cpus];
}

struct child_report {
  uint64_t pairs;
  double elapsed_ns;
};

static void write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    const ssize_t k = write(fd, p, n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      _exit(3);
    p += k;
    n -= (size_t)k;
  }
}

static int read_all(int fd, void *buf, size_t n) {
  char *p = buf;
  while (n > 0) {
    const ssize_t k = read(fd, p, n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return -1;
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

/* A forked child: pin, attach by name, prepare, say ready, wait for the
 * start signal (the parent closing the pipe), run for the window. */
static void child_main(const struct allocator *a, const char *name,
                       const struct proc_job *job, int idx, const int fds[3]) {
  segment_disown();
  alarm((unsigned)(opt.window_ms / 1000) + 60);
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu_at(idx), &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0)
    _exit(4);
  void *ctx = a->open(name);
  if (ctx == NULL)
    _exit(5);
  if (job->prepare(a, ctx, idx) != 0)
    _exit(8);
  char c = 1;
  write_all(fds[0], &c, 1);
  if (read(fds[1], &c, 1) != 0) /* EOF is the start signal */
    _exit(6);
  const double t0 = now_ns();
  struct child_report rep;
  rep.pairs = job->run(a, ctx, idx, t0 + opt.window_ms * 1e6);
  rep.elapsed_ns = now_ns() - t0;
  if (rep.pairs == 0)
    _exit(7);
  write_all(fds[2], &rep, sizeof rep);
  _exit(0);
}

/* Waits for the NPROC children; false when one failed. */
static bool reap(const struct allocator *a, const pid_t *pids, int nproc) {
  bool ok = true;
  for (int i = 0; i < nproc; i++) {
    int status = 0;
    while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "bench: %d-process child on %s: status 0x%x\n", nproc,
              a->name, status);
      ok = false;
    }
  }
  return ok;
}

/* Starts the NPROC children at once (they wait on GO) and sums their
 * rates; NAN when one of them did not report. */
static double collect(int ready_fd, int go_fd, int res_fd, int nproc) {
  bool ok = true;
  for (int i = 0; i < nproc; i++) {
    char c;
    if (read_all(ready_fd, &c, 1) != 0)
      ok = false;
  }
  close(go_fd); /* start them all at once */
  double total = 0;
  for (int i = 0; i < nproc && ok; i++) {
    struct child_report rep;
    if (read_all(res_fd, &rep, sizeof rep) != 0)
      ok = false;
    else
      total += (double)rep.pairs / (rep.elapsed_ns / 1e9);
  }
  return ok ? total : NAN;
}

double run_procs(const struct allocator *a, size_t heap_len, int nproc,
                 const struct proc_job *job) {
  char name[96];
  new_name(name, sizeof name, a->name);
  void *ctx = segment_create(a, name, heap_len);
  if (ctx == NULL)
    return NAN;
  int ready[2], go[2], res[2];
  if (pipe(ready) != 0 || pipe(go) != 0 || pipe(res) != 0) {
    perror("bench: pipe");
    exit(1);
  }
  fflush(NULL);
  pid_t pids[MAX_PROCS];
  for (int i = 0; i < nproc; i++) {
    pids[i] = fork();
    if (pids[i] < 0) {
      perror("bench: fork");
      exit(1);
    }
    if (pids[i] == 0) {
      close(ready[0]);
      close(go[1]);
      close(res[0]);
      const int fds[3] = {ready[1], go[0], res[1]};
      child_main(a, name, job, i, fds);
    }
  }
  close(ready[1]);
  close(go[0]);
  close(res[1]);
  const double total = collect(ready[0], go[1], res[0], nproc);
  const bool ok = reap(a, pids, nproc);
  close(ready[0]);
  close(res[0]);
  segment_destroy(a, name, ctx);
  return ok ? total : NAN;
}

/* ------------------------------------------------------------------------ */
/* Repetitions                                                              */

static void run_one(enum workload_id w, int ai, int rep) {
  switch (w) {
  case W_LIFO:
    run_lifo(ai, rep);
    if (ai == alloc_index("shmheap") && !opt.hot_path) {
      run_lock_floor(ai, rep);
      run_mutex_floor(ai, rep);
      run_cas_floor(ai, rep);
    }
    break;
  case W_LIVE_1K:
  case W_LIVE_10K:
  case W_LIVE_100K:
    run_live(w, ai, rep);
    break;
  case W_FRAG:
    run_frag(ai, rep);
    break;
  case W_TWOPROC:
    run_two_process(ai, rep);
    break;
  case W_FOURPROC:
    run_four_process(ai, rep);
    break;
  case W_TWOPROC_LIVE:
    run_two_process_live(ai, rep);
    break;
  case W_NAMES:
    run_names(ai, rep);
    break;
  case W_GROW:
    run_grow(ai, rep);
    break;
  case N_WORKLOADS:
    break;
  }
}

void run_all_reps(void) {
  for (int r = 0; r < N_ROWS; r++)
    for (int i = 0; i < MAX_ALLOCATORS; i++)
      for (int k = 0; k < MAX_REPS; k++)
        result[r][i][k] = NAN;
  const double start = now_ns();
  for (int rep = 0; rep < opt.reps; rep++) {
    for (int w = 0; w < N_WORKLOADS; w++) {
      if (!workloads[w].selected)
        continue;
      /* rotate the order each rep, so no allocator always runs first */
      for (int k = 0; k < n_allocs; k++)
        run_one((enum workload_id)w, (k + rep) % n_allocs, rep);
    }
    printf("rep %d/%d done (%.1f s)\n", rep + 1, opt.reps,
           (now_ns() - start) / 1e9);
  }
}

/* ------------------------------------------------------------------------ */
/* Statistics                                                               */

double row_median(enum row_id r, int ai) {
  return median(result[r][ai], opt.reps);
}

double paired_quotient(enum row_id rn, int an, enum row_id rd, int ad) {
  double v[MAX_REPS];
  for (int k = 0; k < opt.reps; k++)
    v[k] = result[rn][an][k] / result[rd][ad][k];
  return median(v, opt.reps);
}

/* other/shmheap for times, shmheap/other for rates and utilisation, each
 * within one repetition, so above 1 always means shmheap did better. */
double paired_ratio(enum row_id r, int shm, int other) {
  return rows[r].higher_is_better ? paired_quotient(r, shm, r, other)
                                  : paired_quotient(r, other, r, shm);
}

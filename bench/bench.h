/* bench.h: what the benchmark's files share. The options, the allocators
 * (create/open/close/remove calls and the workload loops instantiated for
 * each), the workload table, the result rows and the result store, and the
 * entry points of main.c, workloads.c, drivers.c, apis.c, runner.c,
 * report.c and chart.c. Internal to bench/: names carry no prefix and
 * nothing here is installed. */
#ifndef SHMHEAP_BENCH_H
#define SHMHEAP_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "median.h"

#ifndef SHMHEAP_BENCH_BUILDTYPE
#define SHMHEAP_BENCH_BUILDTYPE "unknown"
#endif

enum {
  MAX_REPS = 99,
  MAX_ALLOCATORS = 4,
  MAX_PROCS = 4,           /* the most processes a workload forks */
  FRAG_MAX_LIVE = 1 << 22, /* far above what 64 MiB of >=16-byte blocks holds */
  LIFO_STREAM = 1 << 20,   /* power of two: the timed-window loops wrap */
  NAMES = 10000,           /* published names in the names workload */
};

/* ------------------------------------------------------------------------ */
/* Options                                                                  */

struct options {
  int reps;
  double scale;     /* multiplies the timed steps */
  double window_ms; /* the multi-process workloads' timed window */
  bool no_cap;
  bool hot_path;
  const char *out_dir;
};

extern struct options opt;

/* The streams' seeds; --seed adds its value to each. */
extern uint64_t seed_lifo, seed_live, seed_frag, seed_names;

/* ------------------------------------------------------------------------ */
/* Allocators                                                               */

struct frag_out {
  uint64_t ops;        /* allocations plus frees, the failed one excluded */
  uint64_t live_bytes; /* requested bytes live at the first failure */
  uint64_t live;       /* live blocks then */
  int overflow;        /* the bookkeeping arrays ran out (should not happen) */
};

struct frag_state {
  void **ptr;
  uint32_t *size;
};

/* The workload loops of one allocator, each calling it directly. */
struct loops {
  int (*lifo)(void *ctx, const uint16_t *sizes, size_t n);
  /* lifo-small from stream position START until DEADLINE; the pairs done */
  uint64_t (*lifo_until)(void *ctx, const uint16_t *sizes, size_t start,
                         double deadline);
  int (*fill)(void *ctx, void **slots, const uint16_t *sizes, size_t n);
  int (*steps)(void *ctx, void **slots, const uint32_t *victims,
               const uint16_t *sizes, size_t n);
  /* random-live steps over a stream of N, from START, until DEADLINE */
  uint64_t (*steps_until)(void *ctx, void **slots, const uint32_t *victims,
                          const uint16_t *sizes, size_t n, size_t start,
                          double deadline);
  void (*release)(void *ctx, void **slots, size_t n);
  void (*frag)(void *ctx, struct frag_state *st, struct frag_out *out);
};

/* Named objects, for allocators that have them (NULL otherwise). */
struct name_ops {
  /* Makes an object of SZ bytes named KEY; its address or NULL. */
  void *(*make)(void *ctx, const char *key, size_t sz);
  /* The object named KEY or NULL. */
  void *(*find)(void *ctx, const char *key);
  /* Publishes the existing object OBJ under KEY (shmheap), or makes a
   * fresh object named KEY (Boost); 0 or -1 with errno. */
  int (*publish)(void *ctx, const char *key, void *obj);
  /* Removes the name KEY (Boost: and its object); 0 or -1 with errno. */
  int (*unpublish)(void *ctx, const char *key);
};

struct allocator {
  const char *name;
  bool shared;    /* a named heap in shared memory that can run out */
  bool slow_scan; /* first fit by a linear list walk: steps are capped */
  void *(*create)(const char *name, size_t len);
  void *(*open)(const char *name);
  void (*close)(void *ctx);
  void (*remove)(const char *name);
  const struct loops *loops;
  const struct name_ops *names;
  const char *color; /* in the charts */
  bool quiet_enosys; /* segment_create says nothing of ENOSYS (apis.c) */
};

extern const struct allocator all_allocators[];
extern const int n_all_allocators;

/* The allocators selected for this run, in table order. */
extern const struct allocator *allocs[MAX_ALLOCATORS];
extern int n_allocs;

int alloc_index(const char *name); /* -1 when not selected */

/* Segments in /dev/shm, removed even when the run is killed by a signal. */
void new_name(char *buf, size_t n, const char *alloc_name);
void *segment_create(const struct allocator *a, const char *name, size_t len);
void segment_destroy(const struct allocator *a, const char *name, void *ctx);
void segment_disown(void); /* in a forked child: the parent owns the name */
void install_signal_cleanup(void);

/* ------------------------------------------------------------------------ */
/* Workloads                                                                */

enum workload_id {
  W_LIFO,
  W_LIVE_1K,
  W_LIVE_10K,
  W_LIVE_100K,
  W_FRAG,
  W_TWOPROC,
  W_FOURPROC,
  W_TWOPROC_LIVE,
  W_NAMES,
  W_GROW,
  N_WORKLOADS
};

struct workload {
  const char *name;
  size_t live;      /* live blocks (the chart's x) */
  size_t heap_len;  /* bytes of every shared heap in this workload */
  size_t steps;     /* timed pairs at --scale 1 */
  size_t slow_cap;  /* timed pairs for slow_scan allocators, 0 = no cap */
  size_t slow_warm; /* their warm-up steps, 0 = the full warm-up (live) */
  int slow_reps;    /* their repetitions, 0 = all */
  bool selected;
};

extern struct workload workloads[N_WORKLOADS];

/* The streams, drawn once from fixed seeds before the first repetition. */
struct live_stream {
  uint16_t *fill;
  uint16_t *sizes;
  uint32_t *victims;
  size_t n_steps; /* warm-up plus timed */
};

extern uint16_t *lifo_sizes;
extern struct live_stream live_streams[N_WORKLOADS];
extern struct frag_state frag_state;

void make_streams(void);
size_t scaled(size_t n);
uint32_t stream_rand(uint64_t *state, uint32_t lo, uint32_t hi); /* [lo,hi] */
double now_ns(void);
void *xmalloc(size_t n);

/* drivers.c: one workload on allocator AI in repetition REP. */
void run_lifo(int ai, int rep);
void run_lock_floor(int ai, int rep);
void run_mutex_floor(int ai, int rep);
void run_cas_floor(int ai, int rep);
void run_live(enum workload_id w, int ai, int rep);
void run_frag(int ai, int rep);
void run_two_process(int ai, int rep);
void run_four_process(int ai, int rep);
void run_two_process_live(int ai, int rep);

/* apis.c: the names directory and growth. */
void make_name_keys(void);
void run_names(int ai, int rep);
void run_grow(int ai, int rep);

/* ------------------------------------------------------------------------ */
/* Results: one row per reported figure, one value per allocator and rep    */

enum row_id {
  R_LIFO,
  R_LOCK_FLOOR,  /* shmheap's column only: its lock, 2 x (lock + unlock) */
  R_LIFO_NET,    /* shmheap's column only: lifo-small minus the floor */
  R_MUTEX_FLOOR, /* shmheap's column only: a robust pthread mutex, x2 */
  R_CAS_FLOOR,   /* shmheap's column only: the cheapest lock there is, x2 */
  R_LIVE_1K,
  R_LIVE_10K,
  R_LIVE_100K,
  R_FRAG_NS,
  R_FRAG_UTIL,
  R_PROC_1, /* lifo-small in 1, 2 and 4 processes on one heap */
  R_PROC_2,
  R_PROC_2X,
  R_PROC_4,
  R_PROC_4X,
  R_LIVE2_1, /* random-live-1k in 1 and 2 processes on one heap */
  R_LIVE2_2,
  R_LIVE2_X,
  R_NAME_LOOKUP,
  R_NAME_PUB,
  R_GROW,
  R_GROW_ALLOC,
  N_ROWS
};

enum row_kind {
  ROW_PLAIN,    /* every allocator; paired ratios against shmheap */
  ROW_SHM_ONLY, /* shmheap's column only, no peer: the lock floors */
  ROW_SELF,     /* a ratio within one allocator: no paired ratio */
};

struct row {
  const char *label;
  const char *unit;
  bool higher_is_better;
  enum row_kind kind;
  enum workload_id workload; /* the workload that produces it */
  size_t live;               /* for the chart, rows R_LIFO..R_LIVE_100K */
};

extern const struct row rows[N_ROWS];

/* NAN marks a value not measured (that allocator, that rep). */
extern double result[N_ROWS][MAX_ALLOCATORS][MAX_REPS];
extern size_t timed_steps[N_ROWS][MAX_ALLOCATORS]; /* for the CSV and notes */
extern size_t warm_steps[N_ROWS][MAX_ALLOCATORS];
extern bool capped[N_ROWS][MAX_ALLOCATORS];
/* Why a cell has no number, when the reason is worth a footnote. */
extern const char *missing_note[N_ROWS][MAX_ALLOCATORS];

void record(enum row_id r, int ai, int rep, double value, size_t steps);
void fail_run(const struct allocator *a, enum workload_id w, const char *what);
bool row_selected(enum row_id r);

/* ------------------------------------------------------------------------ */
/* runner.c: repetitions, processes, statistics                             */

void find_cpus(void);
int cpu_count(void);
int cpu_at(int idx); /* the CPU process IDX is pinned to (round-robin) */

/* The body of a multi-process workload, run in each forked child after it
 * is pinned and attached to the heap. */
struct proc_job {
  /* Untimed preparation; 0 on success. */
  int (*prepare)(const struct allocator *a, void *ctx, int idx);
  /* The timed part: the pairs done until DEADLINE, 0 on failure. */
  uint64_t (*run)(const struct allocator *a, void *ctx, int idx,
                  double deadline);
};

/* Total pairs/s of NPROC pinned processes on one fresh heap of HEAP_LEN
 * bytes, all started at once; NAN on failure. */
double run_procs(const struct allocator *a, size_t heap_len, int nproc,
                 const struct proc_job *job);

void run_all_reps(void);

double row_median(enum row_id r, int ai);
/* Median over reps of result[rn][an][k] / result[rd][ad][k]. */
double paired_quotient(enum row_id rn, int an, enum row_id rd, int ad);
/* shmheap's advantage over OTHER, above 1 = shmheap better. */
double paired_ratio(enum row_id r, int shm, int other);

/* ------------------------------------------------------------------------ */
/* report.c, chart.c                                                        */

bool open_raw_csv(void); /* false (said) when it cannot be written */
void write_raw_csv(enum row_id r, int ai, int rep, double value, size_t steps);
void close_raw_csv(void);
/* Opens FILE in --out-dir for writing, its path into PATH[0..LEN); NULL,
 * said and counted, on failure. */
FILE *open_out(const char *file, char *path, size_t len);
/* Closes F, the file at PATH: a write or close that failed is said and
 * counted; a file written whole joins out_written's list. */
void close_out(FILE *f, const char *path);
void out_failed(const char *path); /* says PATH could not be written */
int out_failures(void);            /* how many files could not be written */
const char *out_written(void);     /* the names of the files written */
void print_report(FILE *f);
void write_summary_csv(const char *path);
void write_charts(const char *dir);

#endif /* SHMHEAP_BENCH_H */

/* report.c: the rows of the report and the text and CSV it is written as.
 * The row table (label, unit, which way is better, the workload that makes
 * it), the raw CSV (every measurement, as it is taken), the text report
 * (the table of medians with its footnotes, shmheap's paired ratios, the
 * lock floor block, the targets) and the summary CSV. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "bench.h"

const struct row rows[N_ROWS] = {
    [R_LIFO] = {"lifo-small", "ns/pair", false, ROW_PLAIN, W_LIFO, 1},
    [R_LOCK_FLOOR] = {"lock floor (lifo)", "ns/pair", false, ROW_SHM_ONLY,
                      W_LIFO, 0},
    [R_LIFO_NET] = {"lifo minus floor", "ns/pair", false, ROW_SHM_ONLY, W_LIFO,
                    0},
    [R_MUTEX_FLOOR] = {"robust mutex (lifo)", "ns/pair", false, ROW_SHM_ONLY,
                       W_LIFO, 0},
    [R_CAS_FLOOR] = {"bare CAS lock (lifo)", "ns/pair", false, ROW_SHM_ONLY,
                     W_LIFO, 0},
    [R_LIVE_1K] = {"random-live-1k", "ns/pair", false, ROW_PLAIN, W_LIVE_1K,
                   1000},
    [R_LIVE_10K] = {"random-live-10k", "ns/pair", false, ROW_PLAIN, W_LIVE_10K,
                    10000},
    [R_LIVE_100K] = {"random-live-100k", "ns/pair", false, ROW_PLAIN,
                     W_LIVE_100K, 100000},
    [R_FRAG_NS] = {"fill-fragment", "ns/pair", false, ROW_PLAIN, W_FRAG, 0},
    [R_FRAG_UTIL] = {"fill-fragment util", "%", true, ROW_PLAIN, W_FRAG, 0},
    [R_PROC_1] = {"two-process 1 proc", "Mpairs/s", true, ROW_PLAIN, W_TWOPROC,
                  0},
    [R_PROC_2] = {"two-process 2 procs", "Mpairs/s", true, ROW_PLAIN, W_TWOPROC,
                  0},
    [R_PROC_2X] = {"two-process vs 1 proc", "x", true, ROW_SELF, W_TWOPROC, 0},
    [R_PROC_4] = {"four-process 4 procs", "Mpairs/s", true, ROW_PLAIN,
                  W_FOURPROC, 0},
    [R_PROC_4X] = {"four-process vs 1 proc", "x", true, ROW_SELF, W_FOURPROC,
                   0},
    [R_LIVE2_1] = {"two-proc-live 1 proc", "Mpairs/s", true, ROW_PLAIN,
                   W_TWOPROC_LIVE, 0},
    [R_LIVE2_2] = {"two-proc-live 2 procs", "Mpairs/s", true, ROW_PLAIN,
                   W_TWOPROC_LIVE, 0},
    [R_LIVE2_X] = {"two-proc-live vs 1 proc", "x", true, ROW_SELF,
                   W_TWOPROC_LIVE, 0},
    [R_NAME_LOOKUP] = {"names lookup", "Mops/s", true, ROW_PLAIN, W_NAMES, 0},
    [R_NAME_PUB] = {"names publish+unpub", "Mpairs/s", true, ROW_PLAIN, W_NAMES,
                    0},
    [R_GROW] = {"grow-step by grow", "us/step", false, ROW_PLAIN, W_GROW, 0},
    [R_GROW_ALLOC] = {"grow-step by alloc", "us/step", false, ROW_PLAIN, W_GROW,
                      0},
};

enum { LABEL_W = 24 };

/* four-process shows the 1- and 2-process rates beside its own. */
bool row_selected(enum row_id r) {
  if (r == R_PROC_1 || r == R_PROC_2 || r == R_PROC_2X)
    return workloads[W_TWOPROC].selected || workloads[W_FOURPROC].selected;
  return workloads[rows[r].workload].selected;
}

/* ------------------------------------------------------------------------ */
/* Files                                                                    */

static int failures;
static char written[400]; /* the names of the files written, comma-separated */

void out_failed(const char *path) {
  fprintf(stderr, "bench: cannot write %s: %s\n", path, strerror(errno));
  failures++;
}

int out_failures(void) {
  return failures;
}

const char *out_written(void) {
  return written;
}

void close_out(FILE *f, const char *path) {
  int err = 0;
  errno = 0;
  if (fflush(f) != 0 || ferror(f))
    err = errno != 0 ? errno : EIO;
  if (fclose(f) != 0 && err == 0)
    err = errno;
  if (err != 0) {
    errno = err;
    out_failed(path);
    return;
  }
  const char *slash = strrchr(path, '/');
  size_t n = strlen(written);
  snprintf(written + n, sizeof written - n, "%s%s", n ? ", " : "",
           slash ? slash + 1 : path);
}

FILE *open_out(const char *file, char *path, size_t len) {
  snprintf(path, len, "%s/%s", opt.out_dir, file);
  FILE *f = fopen(path, "w");
  if (f == NULL)
    out_failed(path);
  return f;
}

static FILE *raw_csv;
static char raw_csv_path[4096];

bool open_raw_csv(void) {
  raw_csv = open_out("shmheap-bench.csv", raw_csv_path, sizeof raw_csv_path);
  if (raw_csv != NULL)
    fprintf(raw_csv, "workload,unit,allocator,rep,value,timed_steps\n");
  return raw_csv != NULL;
}

void write_raw_csv(enum row_id r, int ai, int rep, double value, size_t steps) {
  if (raw_csv != NULL)
    fprintf(raw_csv, "%s,%s,%s,%d,%.6g,%zu\n", rows[r].label, rows[r].unit,
            allocs[ai]->name, rep, value, steps);
}

void close_raw_csv(void) {
  if (raw_csv != NULL)
    close_out(raw_csv, raw_csv_path);
  raw_csv = NULL;
}

/* ------------------------------------------------------------------------ */
/* The table                                                                */

/* Says how a capped allocator's run differed from the others'. */
static void print_cap_note(FILE *f, enum row_id r, int ai) {
  const struct workload *wl = &workloads[rows[r].workload];
  int reps = 0;
  for (int k = 0; k < opt.reps; k++)
    reps += !isnan(result[r][ai][k]);
  fprintf(f,
          "* %s on %s, to keep the run short: timed only the first %zu "
          "of %zu steps",
          allocs[ai]->name, rows[r].label, timed_steps[r][ai],
          scaled(wl->steps));
  if (warm_steps[r][ai] < wl->live)
    fprintf(f,
            ", after a warm-up of %zu steps, not %zu (its cost grows "
            "with the holes: this flatters it)",
            warm_steps[r][ai], wl->live);
  if (reps < opt.reps)
    fprintf(f, ", in %d of %d repetitions", reps, opt.reps);
  fprintf(f, "; --no-cap runs it in full\n");
}

static void print_notes(FILE *f) {
  for (int r = 0; r < N_ROWS; r++)
    for (int i = 0; i < n_allocs; i++)
      if (row_selected((enum row_id)r) && capped[r][i])
        print_cap_note(f, (enum row_id)r, i);
  for (int r = 0; r < N_ROWS; r++)
    for (int i = 0; i < n_allocs; i++)
      if (row_selected((enum row_id)r) && missing_note[r][i] != NULL)
        fprintf(f, "- %s on %s: not measured, %s\n", rows[r].label,
                allocs[i]->name, missing_note[r][i]);
  fprintf(f, "- : not applicable (glibc never runs out and has no names; "
             "only shmheap grows) or not measured\n");
}

static void print_row(FILE *f, enum row_id r) {
  fprintf(f, "%-*s %-9s", LABEL_W, rows[r].label, rows[r].unit);
  for (int i = 0; i < n_allocs; i++) {
    const double m = row_median(r, i);
    if (isnan(m))
      fprintf(f, " %14s", "-");
    else
      fprintf(f, " %13.*f%c", m >= 1000 || r <= R_CAS_FLOOR ? 1 : 2, m,
              capped[r][i] ? '*' : ' ');
  }
  fprintf(f, "\n");
}

static void print_table(FILE *f) {
  fprintf(f, "\nMedians over %d repetitions (build: %s)\n", opt.reps,
          SHMHEAP_BENCH_BUILDTYPE);
  fprintf(f, "%-*s %-9s", LABEL_W, "workload", "unit");
  for (int i = 0; i < n_allocs; i++)
    fprintf(f, " %14s", allocs[i]->name);
  fprintf(f, "\n");
  const int s = alloc_index("shmheap");
  for (int r = 0; r < N_ROWS; r++) {
    if (!row_selected((enum row_id)r))
      continue;
    if (rows[r].kind == ROW_SHM_ONLY &&
        (s < 0 || isnan(row_median((enum row_id)r, s))))
      continue; /* not run: --hot-path, or shmheap not selected */
    print_row(f, (enum row_id)r);
  }
  print_notes(f);
}

/* ------------------------------------------------------------------------ */
/* Paired ratios and the lock floor                                         */

static void print_ratios(FILE *f) {
  const int s = alloc_index("shmheap");
  if (s < 0 || n_allocs < 2)
    return;
  fprintf(f, "\nPaired ratios: shmheap's advantage, median over repetitions of "
             "(other/shmheap) for times,\n(shmheap/other) for rates and "
             "utilisation; above 1 = shmheap better\n");
  fprintf(f, "%-*s", LABEL_W, "workload");
  for (int i = 0; i < n_allocs; i++)
    if (i != s)
      fprintf(f, " %14s", allocs[i]->name);
  fprintf(f, "\n");
  for (int r = 0; r < N_ROWS; r++) {
    if (!row_selected((enum row_id)r) || rows[r].kind != ROW_PLAIN)
      continue; /* the floors have no peer: see print_lock_floor */
    fprintf(f, "%-*s", LABEL_W, rows[r].label);
    for (int i = 0; i < n_allocs; i++) {
      if (i == s)
        continue;
      const double v = paired_ratio((enum row_id)r, s, i);
      if (isnan(v))
        fprintf(f, " %14s", "-");
      else
        fprintf(f, " %14.3f", v);
    }
    fprintf(f, "\n");
  }
}

/* The lock floor beside lifo-small: what shmheap pays for its lock alone,
 * what is left for its allocator, and both in glibc pairs. */
static void print_lock_floor(FILE *f) {
  const int s = alloc_index("shmheap"), g = alloc_index("glibc");
  if (s < 0 || isnan(row_median(R_LOCK_FLOOR, s)))
    return;
  fprintf(f,
          "\nLock floor: per lifo-small pair, 2 x (lock + unlock) of shmheap's "
          "own lock (the uncontended\npath of lib/lock.c: a 64-bit CAS to "
          "take the word, a load of the heap's state, a CAS to\nrelease it) "
          "on a word in a MAP_SHARED page, %zu times, right after shmheap's "
          "lifo-small\nin every repetition; then the same with a robust, "
          "process-shared pthread mutex, and with a bare\nCAS lock (acquire "
          "CAS + release store, nothing for waiters or dead owners): the "
          "least\nany shared heap's lock costs\n",
          timed_steps[R_LOCK_FLOOR][s]);
  fprintf(f, "%-34s %10s %18s\n", "lifo-small", "ns/pair",
          g >= 0 ? "x glibc (paired)" : "");
  const struct {
    const char *label;
    enum row_id r;
  } lines[] = {
      {"shmheap", R_LIFO},
      {"lock floor (shmheap's lock x2)", R_LOCK_FLOOR},
      {"shmheap minus floor (allocator)", R_LIFO_NET},
      {"robust mutex x2 (no allocator)", R_MUTEX_FLOOR},
      {"bare CAS lock x2 (no allocator)", R_CAS_FLOOR},
  };
  for (size_t k = 0; k < sizeof lines / sizeof lines[0]; k++) {
    fprintf(f, "%-34s %10.1f", lines[k].label, row_median(lines[k].r, s));
    if (g >= 0)
      fprintf(f, " %18.2f", paired_quotient(lines[k].r, s, R_LIFO, g));
    fprintf(f, "\n");
  }
  if (g >= 0)
    fprintf(f, "%-34s %10.1f %18.2f\n", "glibc", row_median(R_LIFO, g), 1.0);
}

/* ------------------------------------------------------------------------ */
/* Targets                                                                  */

static void target(FILE *f, const char *what, double value, bool ok,
                   const char *detail) {
  if (isnan(value))
    fprintf(f, "  [n/a ] %s: not measured\n", what);
  else
    fprintf(f, "  [%s] %s: %s\n", ok ? "MET " : "MISS", what, detail);
}

/* Whether shmheap's paired ratio against OTHER on row R (above 1: shmheap
 * better) reaches AT_LEAST. */
static void target_vs(FILE *f, enum row_id r, int s, int other,
                      const char *other_name, double at_least,
                      const char *what) {
  if (!row_selected(r) || other < 0)
    return;
  char buf[160];
  const double v = paired_ratio(r, s, other);
  if (rows[r].higher_is_better)
    snprintf(buf, sizeof buf, "shmheap's rate is %.2fx %s's", v, other_name);
  else
    snprintf(buf, sizeof buf, "shmheap takes %.2fx %s's time", 1 / v,
             other_name);
  target(f, what, v, v >= at_least, buf);
}

/* Median over reps of shmheap's ns(100k)/ns(1k) over glibc's. */
static double scaling_ratio(int s, int g) {
  double v[MAX_REPS];
  for (int k = 0; k < opt.reps; k++)
    v[k] = (result[R_LIVE_100K][s][k] / result[R_LIVE_1K][s][k]) /
           (result[R_LIVE_100K][g][k] / result[R_LIVE_1K][g][k]);
  return median(v, opt.reps);
}

/* lifo-small beside glibc's whole pair: the lock floor and the allocator
 * work above it. A report, not a target. */
static void report_lifo_glibc(FILE *f, int s, int g) {
  if (!row_selected(R_LIFO) || g < 0)
    return;
  const double v = paired_ratio(R_LIFO, s, g);
  const double fl = paired_quotient(R_LOCK_FLOOR, s, R_LIFO, g),
               net = paired_quotient(R_LIFO_NET, s, R_LIFO, g);
  fprintf(f,
          "  [info] lifo-small beside glibc: shmheap takes %.2fx glibc's "
          "time",
          1 / v);
  if (!isnan(fl))
    fprintf(f,
            "; its lock floor %.2fx and its allocator work above the "
            "floor %.2fx glibc's pair",
            fl, net);
  fprintf(f, "\n");
}

static void targets_one_process(FILE *f, int s, int g, int rb, int sf) {
  char buf[160];
  target_vs(f, R_LIFO, s, sf, "boost-seqfit", 1.0,
            "lifo-small at least as fast as boost-seqfit");
  target_vs(f, R_LIVE_1K, s, rb, "boost-rbtree", 2.0,
            "random-live-1k within 0.5x boost-rbtree's time");
  target_vs(f, R_LIVE_100K, s, rb, "boost-rbtree", 1.25,
            "random-live-100k within 0.8x boost-rbtree's time");
  if (g >= 0 && row_selected(R_LIVE_1K) && row_selected(R_LIVE_100K)) {
    const double v = scaling_ratio(s, g);
    snprintf(buf, sizeof buf,
             "ns(100k)/ns(1k): shmheap %.2f, glibc %.2f; paired ratio %.2f",
             paired_quotient(R_LIVE_100K, s, R_LIVE_1K, s),
             paired_quotient(R_LIVE_100K, g, R_LIVE_1K, g), v);
    target(f, "scaling 1k->100k no worse than glibc's", v, v <= 1, buf);
  }
  if (row_selected(R_FRAG_UTIL)) {
    const double u = row_median(R_FRAG_UTIL, s);
    snprintf(buf, sizeof buf, "shmheap %.2f%%", u);
    target(f, "fill-fragment utilisation >= 98.42%", u, u >= 98.42, buf);
  }
  report_lifo_glibc(f, s, g);
}

static void target_procs(FILE *f, enum row_id r, int s, double at_least,
                         const char *what) {
  if (!row_selected(r))
    return;
  char buf[96];
  const double v = row_median(r, s);
  snprintf(buf, sizeof buf, "%.2fx", v);
  target(f, what, v, v >= at_least, buf);
}

static void targets_many_processes(FILE *f, int s, int rb, int sf) {
  target_procs(f, R_PROC_2X, s, 1.0,
               "2 processes on one heap: total >= 1.0x of one process");
  target_procs(f, R_PROC_4X, s, 0.8,
               "4 processes on one heap: total >= 0.8x of one process");
  const enum row_id multi[] = {R_PROC_2, R_PROC_4, R_LIVE2_2};
  for (size_t k = 0; k < sizeof multi / sizeof multi[0]; k++) {
    char what[96];
    snprintf(what, sizeof what, "%s: faster than boost-rbtree",
             rows[multi[k]].label);
    target_vs(f, multi[k], s, rb, "boost-rbtree", 1.0, what);
    snprintf(what, sizeof what, "%s: faster than boost-seqfit",
             rows[multi[k]].label);
    target_vs(f, multi[k], s, sf, "boost-seqfit", 1.0, what);
  }
}

static void print_targets(FILE *f) {
  const int s = alloc_index("shmheap"), g = alloc_index("glibc"),
            rb = alloc_index("boost-rbtree"), sf = alloc_index("boost-seqfit");
  if (s < 0)
    return;
  fprintf(f, "\nTargets (from the paired ratios above)\n");
  targets_one_process(f, s, g, rb, sf);
  targets_many_processes(f, s, rb, sf);
  fprintf(f, "  (no system call on the hot path: run under strace -c -f with "
             "--hot-path, see bench/README.md)\n");
}

void print_report(FILE *f) {
  print_table(f);
  if (opt.hot_path)
    return;
  print_ratios(f);
  print_lock_floor(f);
  print_targets(f);
}

/* ------------------------------------------------------------------------ */
/* Summary CSV                                                              */

static void summary_line(FILE *f, enum row_id r, int i, int s) {
  double mn = INFINITY, mx = -INFINITY;
  int n = 0;
  for (int k = 0; k < opt.reps; k++) {
    const double v = result[r][i][k];
    if (!isnan(v)) {
      mn = fmin(mn, v);
      mx = fmax(mx, v);
      n++;
    }
  }
  if (n == 0)
    return;
  const double adv = s >= 0 && s != i && rows[r].kind == ROW_PLAIN
                         ? paired_ratio(r, s, i)
                         : NAN;
  fprintf(f, "%s,%s,%s,%.6g,%.6g,%.6g,%d,%zu,", rows[r].label, rows[r].unit,
          allocs[i]->name, row_median(r, i), mn, mx, n, timed_steps[r][i]);
  if (isnan(adv))
    fprintf(f, "\n");
  else
    fprintf(f, "%.6g\n", adv);
}

void write_summary_csv(const char *path) {
  FILE *f = fopen(path, "w");
  if (f == NULL) {
    out_failed(path);
    return;
  }
  fprintf(f, "workload,unit,allocator,median,min,max,reps,timed_steps,"
             "shmheap_advantage\n");
  const int s = alloc_index("shmheap");
  for (int r = 0; r < N_ROWS; r++)
    if (row_selected((enum row_id)r))
      for (int i = 0; i < n_allocs; i++)
        summary_line(f, (enum row_id)r, i, s);
  close_out(f, path);
}

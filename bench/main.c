/* main.c: the benchmark's command line. It owns the options (flags and
 * their SHMHEAP_BENCH_* environment defaults), the choice of workloads and
 * allocators, and the order of a run: streams, repetitions, then the text
 * report, the CSV files and the charts in --out-dir. What each workload
 * does is in bench/README.md. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

struct options opt = {5, 1.0, 500.0, false, false, "."};

const struct allocator *allocs[MAX_ALLOCATORS];
int n_allocs;

int alloc_index(const char *name) {
  for (int i = 0; i < n_allocs; i++)
    if (strcmp(allocs[i]->name, name) == 0)
      return i;
  return -1;
}

static void usage(FILE *f) {
  fprintf(f, "usage: shmheap-bench [options]\n"
             "  --reps N          repetitions (default 5; env "
             "SHMHEAP_BENCH_REPS)\n"
             "  --scale F         multiply the timed steps by F (default 1; "
             "env SHMHEAP_BENCH_SCALE)\n"
             "  --window-ms MS    multi-process window per run (default 500; "
             "env SHMHEAP_BENCH_WINDOW_MS)\n"
             "  --workloads LIST  comma-separated subset of:");
  const char *indent = "\n                    ";
  for (int w = 0; w < N_WORKLOADS; w++) /* four names a line */
    fprintf(f, "%s%s%s", w == 0 ? "" : ",", w % 4 == 0 ? indent : "",
            workloads[w].name);
  fprintf(f, "\n  --allocators LIST comma-separated subset of:");
  for (int i = 0; i < n_all_allocators; i++)
    fprintf(f, "%s%s", i ? "," : " ", all_allocators[i].name);
  fprintf(f,
          "\n  --no-cap          time boost-seqfit on every step (very slow at "
          "10k/100k live)\n"
          "  --seed N          add N to every stream's seed (default 0: the "
          "fixed streams)\n"
          "  --out-dir DIR     where to write shmheap-bench.{csv,txt,svg}, "
          "-summary.csv and\n"
          "                    -procs.svg (default .)\n"
          "  --hot-path        only lifo-small on shmheap, 1 rep, no files: "
          "for strace -c -f\n");
}

/* Whether NAME is one of the comma-separated LIST. */
static bool in_list(const char *list, const char *name) {
  const size_t n = strlen(name);
  for (const char *p = list; *p;) {
    const char *e = strchr(p, ',');
    const size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && strncmp(p, name, n) == 0)
      return true;
    p += len + (e ? 1 : 0);
  }
  return false;
}

/* Every name in LIST must be known: a typo would silently run nothing. */
static void check_list(const char *list, const char *what,
                       bool (*known)(const char *name, size_t len)) {
  for (const char *p = list; *p;) {
    const char *e = strchr(p, ',');
    const size_t len = e ? (size_t)(e - p) : strlen(p);
    if (!known(p, len)) {
      fprintf(stderr, "bench: unknown %s: %.*s\n", what, (int)len, p);
      exit(2);
    }
    p += len + (e ? 1 : 0);
  }
}

static bool known_workload(const char *name, size_t len) {
  for (int w = 0; w < N_WORKLOADS; w++)
    if (strlen(workloads[w].name) == len &&
        strncmp(workloads[w].name, name, len) == 0)
      return true;
  return false;
}

static bool known_allocator(const char *name, size_t len) {
  if (len == 12 && strncmp(name, "boost-rbtree", len) == 0)
    return true; /* known even when Boost is not built in */
  if (len == 12 && strncmp(name, "boost-seqfit", len) == 0)
    return true;
  for (int i = 0; i < n_all_allocators; i++)
    if (strlen(all_allocators[i].name) == len &&
        strncmp(all_allocators[i].name, name, len) == 0)
      return true;
  return false;
}

static double parse_num(const char *s, const char *what) {
  char *end;
  errno = 0;
  const double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v > 0)) {
    fprintf(stderr, "bench: bad %s: %s\n", what, s);
    exit(2);
  }
  return v;
}

static void parse_env(void) {
  const char *env;
  if ((env = getenv("SHMHEAP_BENCH_REPS")) != NULL && *env)
    opt.reps = (int)parse_num(env, "SHMHEAP_BENCH_REPS");
  if ((env = getenv("SHMHEAP_BENCH_SCALE")) != NULL && *env)
    opt.scale = parse_num(env, "SHMHEAP_BENCH_SCALE");
  if ((env = getenv("SHMHEAP_BENCH_WINDOW_MS")) != NULL && *env)
    opt.window_ms = parse_num(env, "SHMHEAP_BENCH_WINDOW_MS");
}

static void add_seed(uint64_t add) {
  seed_lifo += add;
  seed_live += add;
  seed_frag += add;
  seed_names += add;
}

/* One option with a value V; false when A is not one of them. */
static bool parse_valued(const char *a, const char *v, const char **wl_list,
                         const char **al_list) {
  if (strcmp(a, "--reps") == 0)
    opt.reps = (int)parse_num(v, "--reps");
  else if (strcmp(a, "--scale") == 0)
    opt.scale = parse_num(v, "--scale");
  else if (strcmp(a, "--window-ms") == 0)
    opt.window_ms = parse_num(v, "--window-ms");
  else if (strcmp(a, "--workloads") == 0)
    *wl_list = v;
  else if (strcmp(a, "--allocators") == 0)
    *al_list = v;
  else if (strcmp(a, "--seed") == 0)
    add_seed((uint64_t)parse_num(v, "--seed"));
  else if (strcmp(a, "--out-dir") == 0)
    opt.out_dir = v;
  else
    return false;
  return true;
}

static void select_run(const char *wl_list, const char *al_list) {
  if (opt.reps < 1 || opt.reps > MAX_REPS) {
    fprintf(stderr, "bench: --reps must be 1..%d\n", MAX_REPS);
    exit(2);
  }
  if (wl_list != NULL)
    check_list(wl_list, "workload", known_workload);
  if (al_list != NULL)
    check_list(al_list, "allocator", known_allocator);
  for (int w = 0; w < N_WORKLOADS; w++)
    workloads[w].selected =
        wl_list == NULL || in_list(wl_list, workloads[w].name);
  for (int i = 0; i < n_all_allocators; i++)
    if (al_list == NULL || in_list(al_list, all_allocators[i].name))
      allocs[n_allocs++] = &all_allocators[i];
  if (n_allocs == 0) {
    fprintf(stderr, "bench: no allocator selected\n");
    exit(2);
  }
}

static void parse_args(int argc, char **argv) {
  const char *wl_list = NULL, *al_list = NULL;
  parse_env();
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      exit(0);
    } else if (strcmp(a, "--no-cap") == 0) {
      opt.no_cap = true;
    } else if (strcmp(a, "--hot-path") == 0) {
      opt.hot_path = true;
    } else if (i + 1 < argc &&
               parse_valued(a, argv[i + 1], &wl_list, &al_list)) {
      i++;
    } else {
      usage(stderr);
      exit(2);
    }
  }
  if (opt.hot_path) {
    wl_list = "lifo-small";
    al_list = "shmheap";
    opt.reps = 1;
  }
  select_run(wl_list, al_list);
}

static void print_header(void) {
  printf("shmheap benchmark: build %s, %d reps, scale %g, multi-process "
         "window %.0f ms, processes pinned round-robin to CPUs",
         SHMHEAP_BENCH_BUILDTYPE, opt.reps, opt.scale, opt.window_ms);
  for (int i = 0; i < cpu_count() && i < MAX_PROCS; i++)
    printf("%s%d", i ? "," : " ", cpu_at(i));
  printf("%s\n", cpu_count() < 2 ? " (only one CPU!)" : "");
#if !SHMHEAP_BENCH_BOOST
  printf("Boost.Interprocess not built in (no Boost headers or no C++ "
         "compiler): shmheap and glibc only\n");
#endif
  if (strcmp(SHMHEAP_BENCH_BUILDTYPE, "release") != 0)
    printf("note: not a release build; configure with --buildtype=release "
           "for numbers worth quoting\n");
}

/* 0 when every file was written; 1, said, when any could not be. */
static int write_files(void) {
  char path[4096];
  FILE *txt = open_out("shmheap-bench.txt", path, sizeof path);
  if (txt != NULL) {
    print_report(txt);
    close_out(txt, path);
  }
  close_raw_csv();
  snprintf(path, sizeof path, "%s/shmheap-bench-summary.csv", opt.out_dir);
  write_summary_csv(path);
  write_charts(opt.out_dir);
  if (out_failures() != 0) {
    fprintf(stderr, "bench: %d of the files in %s could not be written\n",
            out_failures(), opt.out_dir);
    return 1;
  }
  printf("\nwrote in %s: %s\n", opt.out_dir, out_written());
  return 0;
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  setvbuf(stdout, NULL, _IOLBF, 0);
  install_signal_cleanup();
  find_cpus();
  make_streams();
  if (workloads[W_NAMES].selected)
    make_name_keys();
  /* an --out-dir that cannot be written is found before the run, not
   * after it */
  if (!opt.hot_path && !open_raw_csv())
    return 2;
  print_header();
  run_all_reps();
  print_report(stdout);
  if (opt.hot_path) {
    printf("hot path: %zu alloc+free pairs of lifo-small on shmheap\n",
           scaled(workloads[W_LIFO].steps));
    return 0;
  }
  return write_files();
}

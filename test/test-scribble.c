/* test-scribble: how far one ordinary caller bug spreads. Each trial builds
 * a small heap with live blocks whose bytes the test knows, makes one
 * scribble of a given kind (a write after free, a flipped or forged tag, a
 * damaged index field or link, a garbage lock word), then runs random
 * operations from three processes in turn and watches every live byte.
 * The library may refuse (EUCLEAN, EINVAL, NULL) as often as it likes; it
 * must never hand out memory that overlaps a live block, change a live
 * block's bytes, crash, hang, or pass shmheap_check while its blocks
 * disagree with what the test allocated. A kind FAILS when any trial
 * spreads.
 *
 * Every trial runs in its own forked process (and its turns in further
 * children), each call under alarm(), so crashes and hangs are counted,
 * not suffered. Trials are independent and reproducible: trial T of kind K
 * draws everything from (seed, K, T).
 *   SHMHEAP_SCRIBBLE_TRIALS  trials per kind (default 1000)
 *   SHMHEAP_SCRIBBLE_SEED    the seed (default: random, printed)
 *   SHMHEAP_SCRIBBLE_TRIAL   run only this trial number of each kind
 *   SHMHEAP_SCRIBBLE_VERBOSE trace every call on stderr
 * GLib stops at the first failed case unless run with -k (keep going), as
 * meson test runs it.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block.h"
#include "scribble.h"
#include "shmheap.h"
#include "testutil.h"

/* Set from the environment by main. */
struct scribble_cfg cfg;

struct tally {
  int ran;
  unsigned trials, refused, spread, violations, hangs, crashes;
};
static struct tally tallies[K_N];

/* ------------------------------------------------------------------------ */
/* A trial                                                                   */

/* Live blocks in address order, then some freed (always the second and
 * the third from last), so the heap has free blocks between live ones. */
static int setup(struct ctx *c) {
  unsigned n = 12 + (unsigned)rnd(c, 40);
  for (unsigned i = 0; i < n; i++) {
    size_t sz = rand_size(&c->rng);
    void *p = shmheap_alloc(c->mem, sz);
    if (p == NULL)
      return -1;
    c->op = "setup";
    if (adopt(c, p, sz) != 0)
      return -1;
  }
  struct live keep[MAX_LIVE];
  unsigned nk = 0;
  for (unsigned i = 0; i < n; i++) {
    /* frees about a third, never all: the last one stays if none did */
    if ((i == 1 || i == n - 3 || rnd(c, 100) < 35) && (nk > 0 || i < n - 1)) {
      errno = 0;
      shmheap_free(c->mem, c->base + c->m->b[i].hdl);
      if (errno != 0)
        return -1;
    } else {
      keep[nk++] = c->m->b[i];
    }
  }
  memcpy(c->m->b, keep, nk * sizeof keep[0]);
  c->m->n = nk;
  return shmheap_check(c->mem) == 0 && nk > 0 ? 0 : -1;
}

/* A scribble hits the lock or bookkeeping, never a live block's bytes:
 * those are the test's to watch. */
static int scribble_ok(const struct ctx *c, const struct scribble *s,
                       int kind) {
  if (kind == K_NONE)
    return s->len == 0;
  if (s->len == 0 || s->len > sizeof s->val)
    return 0;
  if (kind == K_LOCK)
    return s->off == SHH_HDR_LOCK;
  if (s->off < SHH_FIRST || s->off + s->len > HEAP_LEN)
    return 0;
  for (unsigned i = 0; i < c->m->n; i++)
    if (s->off < c->m->b[i].hdl + c->m->b[i].usable &&
        c->m->b[i].hdl < s->off + s->len)
      return 0;
  return 1;
}

static void apply(struct ctx *c, struct scribble *s) {
  memcpy(c->base + s->off, s->val, s->len);
}

/* One turn in a forked process of its own, connected by name. */
static int turn_child(struct ctx *c, const char *name, unsigned turn) {
  signal(SIGALRM, SIG_DFL);
  arm();
  c->op = "connect";
  errno = 0;
  c->mem = shmheap_connect(name);
  trace(c, "-> %s", c->mem ? "connected" : "refused");
  if (c->mem == NULL) {
    failed(c, errno);
    return 0;
  }
  c->base = shmheap_underlying(c->mem);
  c->rng = th_mix64(c->rng ^ turn);
  /* a broken promise is in c->res; the exit status is for crashes */
  if (verify_all(c) == 0)
    (void)run_ops(c, OPS_PER_TURN);
  alarm(0);
  shmheap_disconnect(c->mem);
  return 0;
}

static void note_death(struct result *res, int st, const char *who) {
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
    return;
  if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
    res->hang = 1;
  else
    res->crash = 1;
  if (res->why[0] == '\0')
    snprintf(res->why, sizeof res->why, "%s %s %d", who,
             WIFSIGNALED(st) ? "died of signal" : "exited with",
             WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

/* The trial's first process: builds the heap, scribbles, takes the first
 * turn, hands further turns to children and makes the final checks.
 * Returns the exit status for its own process. */
static int run_trial(int kind, unsigned t, const char *name,
                     struct result *res) {
  signal(SIGALRM, SIG_DFL);
  alarm(SETUP_TIMEOUT);
  struct model *m = mmap(NULL, sizeof *m, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  struct ctx c = {.m = m, .res = res};
  c.rng = th_mix64(cfg.seed ^ th_mix64((uint64_t)kind << 32 | t));
  c.mem = shmheap_create(name, HEAP_LEN);
  static struct layout l;
  if (m == MAP_FAILED || c.mem == NULL)
    return res->setup_failed = 1, 0;
  m->n = 0;
  m->gen = 0;
  c.base = shmheap_underlying(c.mem);
  if (setup(&c) != 0 || shmheap_walk(c.mem, collect_all, &l) != 0 ||
      l.nfree < 2 || l.nused < 1)
    return res->setup_failed = 1, 0;
  scribblers[kind](&c, &l, &res->s);
  if (!scribble_ok(&c, &res->s, kind))
    return res->setup_failed = 1, 0; /* a scribble generator is wrong */
  apply(&c, &res->s);
  if (cfg.verbose) {
    fprintf(stderr, "scribble: %s\nlive:", res->s.what);
    for (unsigned i = 0; i < m->n; i++)
      fprintf(stderr, " %#" PRIx64 "+%" PRIu64, m->b[i].hdl, m->b[i].usable);
    fprintf(stderr, "\n");
  }
  uint64_t rng0 = c.rng;

  if (run_ops(&c, OPS_PER_TURN) != 0)
    return 0;
  for (unsigned turn = 1; turn < (res->s.solo ? 1 : TURNS); turn++) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
      return res->setup_failed = 1, 0;
    if (pid == 0) {
      struct ctx cc = {.m = m, .res = res, .rng = rng0};
      _exit(turn_child(&cc, name, turn));
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
      ;
    note_death(res, st, turn == 1 ? "turn 1" : "turn 2");
    if (res->violation || res->hang || res->crash)
      return 0;
  }
  /* the library's answers agree with each other and with the test */
  if (op_check(&c) != 0 || verify_all(&c) != 0)
    return 0;
  alarm(0);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Running the trials of a kind                                              */

static void first_spread(int kind, unsigned t, const struct result *r) {
  char old[40] = "", val[40] = "";
  for (unsigned i = 0; i < r->s.len && i < 16; i++) {
    snprintf(old + 2 * i, 3, "%02x", r->s.old[i]);
    snprintf(val + 2 * i, 3, "%02x", r->s.val[i]);
  }
  g_test_message("%s: first spread: seed %" PRIu64
                 " trial %u (rerun: SHMHEAP_SCRIBBLE_SEED=%" PRIu64
                 " SHMHEAP_SCRIBBLE_TRIAL=%u -p /scribble/%s)",
                 kind_names[kind], cfg.seed, t, cfg.seed, t, kind_names[kind]);
  g_test_message("%s:   scribble: %s; %u bytes at offset %#" PRIx64
                 ": %s -> %s (bytes in memory order)",
                 kind_names[kind], r->s.what, r->s.len, r->s.off, old, val);
  g_test_message("%s:   failure: %s", kind_names[kind], r->why);
}

static void tally_trial(int kind, unsigned t, const struct result *r) {
  struct tally *y = &tallies[kind];
  g_assert_false(r->setup_failed);
  y->trials++;
  y->refused += r->refused > 0;
  y->violations += r->violation != 0;
  y->hangs += r->hang != 0;
  y->crashes += r->crash != 0;
  if (r->violation || r->hang || r->crash) {
    if (y->spread == 0)
      first_spread(kind, t, r);
    y->spread++;
  }
}

struct slot {
  pid_t pid;
  unsigned t;
  char name[96];
};

/* Waits for one trial process and accounts for how it ended. */
static void reap_one(struct slot *slots, unsigned *running,
                     struct result *res) {
  int st;
  pid_t pid;
  do
    pid = waitpid(-1, &st, 0);
  while (pid < 0 && errno == EINTR);
  g_assert_cmpint(pid, >, 0);
  for (unsigned i = 0; i < *running; i++) {
    if (slots[i].pid != pid)
      continue;
    note_death(&res[slots[i].t], st, "first process");
    (void)shm_unlink(slots[i].name);
    slots[i] = slots[--*running];
    return;
  }
  g_error("reaped an unknown child %d", (int)pid);
}

static void test_kind(gconstpointer data) {
  int kind = GPOINTER_TO_INT(data);
#ifndef __GLIBC__
  if (kind == K_LOCK) {
    g_test_skip("the lock word's layout is glibc's");
    return;
  }
#endif
  unsigned first = cfg.only >= 0 ? (unsigned)cfg.only : 0;
  unsigned n = cfg.only >= 0 ? 1 : cfg.trials;
  unsigned width = kind == K_LOCK ? LOCK_WIDTH : WIDTH;
  size_t bytes = (size_t)n * sizeof(struct result);
  struct result *res = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  g_assert_true(res != MAP_FAILED);
  struct slot *slots = g_new0(struct slot, width);
  unsigned running = 0;
  gint64 t0 = g_get_monotonic_time();
  for (unsigned i = 0; i < n; i++) {
    if (running == width)
      reap_one(slots, &running, res);
    struct slot *s = &slots[running];
    th_shm_name(s->name, sizeof s->name, "scribble");
    s->t = i;
    fflush(NULL);
    s->pid = fork();
    g_assert_cmpint(s->pid, >=, 0);
    if (s->pid == 0)
      _exit(run_trial(kind, first + i, s->name, &res[i]));
    running++;
  }
  while (running > 0)
    reap_one(slots, &running, res);

  tallies[kind].ran = 1;
  for (unsigned i = 0; i < n; i++)
    tally_trial(kind, first + i, &res[i]);
  const struct tally *y = &tallies[kind];
  g_test_message("%s: seed %" PRIu64 ": trials %u, refused %u, spread %u "
                 "(violations %u, hangs %u, crashes %u), %.1f s",
                 kind_names[kind], cfg.seed, y->trials, y->refused, y->spread,
                 y->violations, y->hangs, y->crashes,
                 (double)(g_get_monotonic_time() - t0) / 1e6);
  g_free(slots);
  g_assert_cmpint(munmap(res, bytes), ==, 0);
  /* the control: an untouched heap refuses nothing */
  if (kind == K_NONE)
    g_assert_cmpuint(y->refused, ==, 0);
  if (y->spread > 0)
    g_test_fail_printf("%s: %u of %u trials spread", kind_names[kind],
                       y->spread, y->trials);
}

/* The table of every kind that ran, one line per kind and one summary. */
static void test_summary(void) {
  unsigned kinds = 0, spread = 0;
  GString *line = g_string_new("scribble summary (seed ");
  g_string_append_printf(line, "%" PRIu64 "):", cfg.seed);
  for (int k = 0; k < K_N; k++) {
    const struct tally *y = &tallies[k];
    if (!y->ran)
      continue;
    kinds++;
    spread += y->spread;
    g_test_message("%-16s trials %5u  refused %5u  spread %5u", kind_names[k],
                   y->trials, y->refused, y->spread);
    g_string_append_printf(line, " %s %u/%u/%u;", kind_names[k], y->trials,
                           y->refused, y->spread);
    /* every trial of the kind was accounted for */
    g_assert_cmpuint(y->trials, ==, cfg.only >= 0 ? 1 : cfg.trials);
  }
  g_string_append_printf(line, " (trials/refused/spread) total spread %u",
                         spread);
  g_test_message("%s", line->str);
  g_string_free(line, TRUE);
  if (kinds == 0)
    g_test_skip("no kind ran");
}

static unsigned long long env_number(const char *name, unsigned long long dflt,
                                     int *set) {
  const char *v = getenv(name);
  *set = v != NULL && *v != '\0';
  if (!*set)
    return dflt;
  char *end;
  errno = 0;
  unsigned long long n = strtoull(v, &end, 0);
  if (errno != 0 || *end != '\0')
    g_error("%s=%s is not a number", name, v);
  return n;
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  int set;
  cfg.trials = (unsigned)env_number("SHMHEAP_SCRIBBLE_TRIALS", 1000, &set);
  cfg.seed = env_number("SHMHEAP_SCRIBBLE_SEED",
                        (uint64_t)g_random_int() << 32 | g_random_int(), &set);
  unsigned long long only = env_number("SHMHEAP_SCRIBBLE_TRIAL", 0, &set);
  cfg.only = set ? (long)only : -1;
  cfg.verbose = getenv("SHMHEAP_SCRIBBLE_VERBOSE") != NULL;
  g_assert_cmpuint(cfg.trials, >, 0);
  for (int k = 0; k < K_N; k++) {
    char path[64];
    snprintf(path, sizeof path, "/scribble/%s", kind_names[k]);
    th_add_data_func(path, GINT_TO_POINTER(k), test_kind);
  }
  th_add_func("/scribble/summary", test_summary);
  return g_test_run();
}

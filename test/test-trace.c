/* test-trace: /oracle/multiprocess-* and /oracle/replay-crash-points: the
 * serial order of a heap shared by several processes, checked against the
 * oracle model. Worker processes (some with two threads) run random alloc,
 * calloc, realloc and free streams on one heap; the library, built with
 * crash_points, logs each operation under the heap's lock as it takes effect
 * (lib/trace.h). The parent then checks the log against what every thread saw
 * (each thread keeps a journal of its calls and their results), replays it in
 * order through the oracle (oracle-model.c: first fit by linear scan) and
 * asserts that every offset, every ENOMEM and the final block layout match. A
 * record left PENDING by a process killed during its operation may or may not
 * have taken effect: the replay follows each outcome the library allows and
 * keeps those the later records and the final layout agree with.
 * /oracle/replay-crash-points makes sure such records are met: it kills a fixed
 * script at each of its crash points (inside an operation).
 */
#include "testutil.h"

#include <inttypes.h>
#include <pthread.h>
#include <shmheap.h>

#include "roles.h"
#include "trace-replay.h"

enum {
  PROCS = 4,     /* worker processes; the first two run two threads */
  THREADS = 2,   /* the most threads a worker runs */
  MAX_KILLS = 8, /* kills in the kill case (each respawns a worker) */
  INCARNATIONS = PROCS + MAX_KILLS,
  SLOTS = 12,         /* live blocks a thread keeps */
  JOURNAL_CAP = 12000 /* calls a thread makes at the most */
};

static const size_t HEAP_LEN = 192u << 10;

/* One call as a thread saw it, in the log's terms. */
struct jent {
  uint32_t op;
  int32_t err;
  uint64_t size, old_hdl, new_hdl;
};

struct journal {
  int32_t pid, tid;
  uint64_t n;
  struct jent e[JOURNAL_CAP];
};

/* What the parent and its workers share. */
struct run {
  const char *name;
  unsigned ops; /* calls per thread */
  struct role_board *board;
  struct journal *j; /* [INCARNATIONS * THREADS] */
};

struct worker {
  struct run *run;
  unsigned inc; /* incarnation: its journals and board slots */
  unsigned threads;
  uint64_t seed;
};

struct wthread {
  shmheap_memory_handle mem;
  const struct run *run;
  struct journal *j;
  struct role_slot *slot;
  uint64_t rng;
};

/* ------------------------------------------------------------------------ */
/* Workers                                                                   */

static size_t rand_size(uint64_t *rng) {
  uint64_t k = th_rand_below(rng, 100);
  if (k < 5)
    return 0;
  if (k < 60)
    return 1 + (size_t)th_rand_below(rng, 256);
  if (k < 90)
    return 256 + (size_t)th_rand_below(rng, 4096);
  return 4096 + (size_t)th_rand_below(rng, 60000);
}

struct live {
  unsigned char *p;
  size_t n;
  uint64_t seed;
};

/* Both ends of a live block carry its pattern, so a block handed out
 * twice, or a move that lost its contents, is seen. */
static void mark_live(const struct live *l) {
  size_t k = l->n < 32 ? l->n : 32;
  th_fill(l->p, k, l->seed, 0);
  if (l->n >= 64)
    th_fill(l->p + l->n - 32, 32, l->seed, 1);
}

static int live_ok(const struct live *l, size_t n) {
  size_t k = n < 32 ? n : 32;
  if (th_check_fill(l->p, k, l->seed, 0) != -1)
    return 0;
  return n < 64 || n != l->n ||
         th_check_fill(l->p + l->n - 32, 32, l->seed, 1) == -1;
}

static int all_zero(const unsigned char *p, size_t n) {
  return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static void journal_add(struct journal *j, uint32_t op, uint64_t size,
                        uint64_t old_hdl, uint64_t new_hdl, int err) {
  TH_CHILD_CHECK(j->n < JOURNAL_CAP);
  j->e[j->n] = (struct jent){op, err, size, old_hdl, new_hdl};
  __atomic_store_n(&j->n, j->n + 1, __ATOMIC_RELEASE);
}

/* One random call on the slot L; the journal gets it once it returned. */
static void one_call(struct wthread *t, struct live *l) {
  shmheap_memory_handle mem = t->mem;
  uint64_t r = th_rand_below(&t->rng, 100);
  size_t sz = rand_size(&t->rng);
  uint64_t old = shmheap_ptr_to_handle(mem, l->p);
  if (l->p != NULL)
    TH_CHILD_CHECK(live_ok(l, l->n));
  unsigned char *q;
  double t0 = role_call_begin(t->slot);
  errno = 0;
  if (l->p != NULL && r < 50) {
    shmheap_free(mem, l->p);
    role_call_end(t->run->board, t->slot, t0);
    TH_CHILD_CHECK(errno == 0);
    journal_add(t->j, SHH_TRACE_FREE, 0, old, 0, 0);
    l->p = NULL;
    return;
  }
  if (l->p != NULL || r < 10) {
    /* realloc(NULL, sz) is alloc in the log */
    q = shmheap_realloc(mem, l->p, sz);
    role_call_end(t->run->board, t->slot, t0);
    journal_add(t->j, l->p ? SHH_TRACE_REALLOC : SHH_TRACE_ALLOC, sz, old,
                shmheap_ptr_to_handle(mem, q), q ? 0 : errno);
    TH_CHILD_CHECK(q != NULL || errno == ENOMEM);
    if (q == NULL)
      return; /* the old block is intact: checked next time */
    if (l->p != NULL)
      TH_CHILD_CHECK(
          live_ok(&(struct live){q, l->n, l->seed}, sz < l->n ? sz : l->n));
  } else if (r < 40) {
    size_t n = 1 + (size_t)th_rand_below(&t->rng, 8);
    q = shmheap_calloc(mem, n, sz / n);
    role_call_end(t->run->board, t->slot, t0);
    journal_add(t->j, SHH_TRACE_ALLOC, n * (sz / n), 0,
                shmheap_ptr_to_handle(mem, q), q ? 0 : errno);
    TH_CHILD_CHECK(q != NULL || errno == ENOMEM);
    if (q == NULL)
      return;
    TH_CHILD_CHECK(all_zero(q, n * (sz / n)));
    sz = n * (sz / n);
  } else {
    q = shmheap_alloc(mem, sz);
    role_call_end(t->run->board, t->slot, t0);
    journal_add(t->j, SHH_TRACE_ALLOC, sz, 0, shmheap_ptr_to_handle(mem, q),
                q ? 0 : errno);
    TH_CHILD_CHECK(q != NULL || errno == ENOMEM);
    if (q == NULL)
      return;
  }
  *l = (struct live){q, sz, th_rand(&t->rng)};
  mark_live(l);
}

static void *wthread_main(void *arg) {
  struct wthread *t = arg;
  role_slot_claim(t->slot);
  t->j->pid = t->slot->pid;
  t->j->tid = t->slot->tid;
  struct live l[SLOTS] = {{0}};
  for (unsigned i = 0; i < t->run->ops && !role_stop_asked(t->run->board); i++)
    one_call(t, &l[th_rand_below(&t->rng, SLOTS)]);
  for (unsigned i = 0; i < SLOTS; i++)
    if (l[i].p != NULL)
      TH_CHILD_CHECK(live_ok(&l[i], l[i].n));
  return NULL;
}

static int worker_main(void *arg) {
  const struct worker *w = arg;
  struct run *run = w->run;
  struct role_slot *slots = &run->board->slot[w->inc * THREADS];
  role_slot_claim(&slots[0]);
  double t0 = role_call_begin(&slots[0]);
  shmheap_memory_handle mem = shmheap_connect(run->name);
  role_call_end(run->board, &slots[0], t0);
  TH_CHILD_CHECK(mem != NULL);
  struct wthread t[THREADS];
  pthread_t tid[THREADS];
  for (unsigned i = 0; i < w->threads; i++) {
    t[i] = (struct wthread){mem, run, &run->j[w->inc * THREADS + i], &slots[i],
                            w->seed + 1000u * i};
    TH_CHILD_CHECK(pthread_create(&tid[i], NULL, wthread_main, &t[i]) == 0);
  }
  for (unsigned i = 0; i < w->threads; i++)
    TH_CHILD_CHECK(pthread_join(tid[i], NULL) == 0);
  /* the blocks stay: the final layout holds them */
  shmheap_disconnect(mem);
  return 0;
}

/* The log agrees with every thread's journal: each thread's records, in
 * log order, are its calls in program order, all DONE; a killed thread's
 * may have one more at the end (the call it died in, PENDING or DONE: it
 * had not returned). No record is lost, and none belongs to nobody.
 * Returns the number of PENDING records. */
static uint64_t check_log_journals(const struct shh_trace_log *log,
                                   const struct journal *j, unsigned nj,
                                   const gboolean *killed) {
  g_assert_cmpuint(log->lost, ==, 0);
  g_assert_cmpuint(log->count, <=, log->cap);
  if (log->count < log->cap)
    g_assert_cmpuint(log->rec[log->count].state, ==, 0);
  uint64_t *seen = g_new0(uint64_t, nj), pending = 0, extra = 0;
  for (uint64_t i = 0; i < log->count; i++) {
    const struct shh_trace_rec *r = &log->rec[i];
    unsigned k = 0;
    while (k < nj &&
           (j[k].pid != (int32_t)r->pid || j[k].tid != (int32_t)r->tid))
      k++;
    if (k == nj)
      say_rec("no thread made", i, r);
    g_assert_cmpuint(k, <, nj);
    g_assert_true(r->state == SHH_TRACE_DONE || r->state == SHH_TRACE_PENDING);
    uint64_t n = seen[k]++;
    if (n < j[k].n) {
      const struct jent *e = &j[k].e[n];
      if (r->state != SHH_TRACE_DONE || r->op != e->op || r->size != e->size ||
          r->old_hdl != e->old_hdl || r->new_hdl != e->new_hdl ||
          r->err != e->err) {
        say_rec("differs from its thread's call", i, r);
        g_test_message("the call: %s size %" PRIu64 " old %" PRIu64
                       " new %" PRIu64 " err %d",
                       op_name(e->op), e->size, e->old_hdl, e->new_hdl,
                       (int)e->err);
        g_assert_not_reached();
      }
      continue;
    }
    /* beyond the journal: only the call a killed thread died in */
    if (!killed[k / THREADS] || n != j[k].n)
      say_rec("has no call", i, r);
    g_assert_true(killed[k / THREADS]);
    g_assert_cmpuint(n, ==, j[k].n);
    pending += r->state == SHH_TRACE_PENDING;
    extra++;
  }
  for (unsigned k = 0; k < nj; k++)
    if (seen[k] < j[k].n)
      g_error("thread %d/%d made %" PRIu64 " calls but the log has %" PRIu64,
              j[k].pid, j[k].tid, j[k].n, seen[k]);
  g_free(seen);
  g_test_message("%" PRIu64 " records, %" PRIu64 " of calls that never "
                 "returned (%" PRIu64 " pending)",
                 log->count, extra, pending);
  return pending;
}

/* ------------------------------------------------------------------------ */
/* The cases                                                                 */

/* Runs PROCS workers on a fresh traced heap; with KILLS > 0 the parent
 * SIGKILLs a worker KILLS times (every other time the lock's holder, when
 * one holds it), respawning it, then asks all to finish. Then checks the
 * log against the journals and replays it. */
static void run_workers(unsigned kills, unsigned ops) {
  char heap[96];
  th_shm_name(heap, sizeof heap, "trace");
  struct tlog t;
  tlog_open(&t, heap, (uint64_t)INCARNATIONS * THREADS * JOURNAL_CAP);
  shmheap_memory_handle mem = shmheap_create(heap, HEAP_LEN);
  g_assert_nonnull(mem);
  size_t jlen = sizeof(struct journal) * INCARNATIONS * THREADS;
  struct run run = {heap, ops, role_board_new(),
                    mmap(NULL, jlen, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0)};
  g_assert_true(run.j != MAP_FAILED);
  struct worker w[INCARNATIONS];
  pid_t pid[PROCS];
  unsigned inc_of[PROCS], next_inc = PROCS, roles[ROLE_N] = {0};
  gboolean killed[INCARNATIONS] = {0};
  uint64_t rng = 0x7ace0000u + kills;
  for (unsigned c = 0; c < PROCS; c++) {
    w[c] = (struct worker){&run, c, c < 2 ? 2 : 1, th_rand(&rng)};
    inc_of[c] = c;
    pid[c] = th_fork_start(worker_main, &w[c], 100);
  }
  for (unsigned a = 0; next_inc - PROCS < kills && a < 4 * kills; a++) {
    g_usleep(1000 + (gulong)th_rand_below(&rng, 8000));
    pid_t victim = 0;
    for (double end = th_now_s() + 0.1; a % 2 && !victim && th_now_s() < end;)
      victim = role_lock_holder(mem, pid, PROCS);
    unsigned c = (unsigned)th_rand_below(&rng, PROCS);
    for (unsigned i = 0; victim != 0 && i < PROCS; i++)
      if (pid[i] == victim)
        c = i;
    if (pid[c] == 0)
      continue;
    int role =
        role_stop_kill(run.board, mem, pid[c], inc_of[c] * THREADS, THREADS);
    if (role < 0) {
      pid[c] = 0; /* it had made all its calls */
      continue;
    }
    roles[role]++;
    killed[inc_of[c]] = TRUE;
    unsigned inc = next_inc++;
    w[inc] = (struct worker){&run, inc, w[inc_of[c]].threads, th_rand(&rng)};
    inc_of[c] = inc;
    pid[c] = th_fork_start(worker_main, &w[inc], 100);
  }
  __atomic_store_n(&run.board->stop, kills > 0, __ATOMIC_RELAXED);
  for (unsigned c = 0; c < PROCS; c++)
    if (pid[c] != 0)
      th_assert_child_ok(th_wait(pid[c]));
  if (kills > 0)
    g_test_message("%u kills: %u holder, %u waiter, %u idle",
                   roles[ROLE_HOLDER] + roles[ROLE_WAITER] + roles[ROLE_IDLE],
                   roles[ROLE_HOLDER], roles[ROLE_WAITER], roles[ROLE_IDLE]);
  uint64_t pending =
      check_log_journals(t.log, run.j, next_inc * THREADS, killed);
  if (kills == 0)
    g_assert_cmpuint(pending, ==, 0);
  g_assert_cmpuint(next_inc - PROCS, ==, kills);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  struct replay_sum sum = replay(t.log, mem, HEAP_LEN);
  g_test_message("replayed %" PRIu64 " records (%" PRIu64 " ENOMEM) into %zu "
                 "blocks; at most %u candidate states at once",
                 t.log->count, sum.nomem, sum.blocks, sum.most);
  g_assert_cmpuint(sum.nomem, >, 0);
  g_assert_cmpint(munmap(run.j, jlen), ==, 0);
  role_board_free(run.board);
  shmheap_destroy(NULL, mem);
  tlog_close(&t);
}

/* The log exists only in a build with the trace hook. */
#ifdef SHMHEAP_TEST_CRASH_POINTS
static const gboolean traced = TRUE;
#else
static const gboolean traced = FALSE;
#endif

/* ------------------------------------------------------------------------ */
/* A kill at every crash point                                              */

/* The child's script: allocs, a free, realloc growing in place, moving and
 * shrinking, a calloc and frees, every one of them checked. The parent sets
 * SHMHEAP_CRASH_AT for it, which kills it at the given ordered write,
 * inside one of these operations. */
static int script_main(void *arg) {
  shmheap_memory_handle mem = shmheap_connect(arg);
  TH_CHILD_CHECK(mem != NULL);
  char *a = shmheap_alloc(mem, 100), *b = shmheap_alloc(mem, 200);
  char *c = shmheap_alloc(mem, 300);
  TH_CHILD_CHECK(a != NULL && b != NULL && c != NULL);
  shmheap_free(mem, b);
  TH_CHILD_CHECK(shmheap_realloc(mem, a, 250) == a);
  a = shmheap_realloc(mem, a, 1000);
  TH_CHILD_CHECK(a != NULL);
  TH_CHILD_CHECK(shmheap_realloc(mem, c, 40) == c);
  char *d = shmheap_calloc(mem, 2, 50);
  TH_CHILD_CHECK(d != NULL);
  shmheap_free(mem, c);
  shmheap_free(mem, a);
  shmheap_disconnect(mem);
  return 0;
}

/* /oracle/replay-crash-points: the script above is killed at its first,
 * second, ... crash point in turn, always inside an operation, so the log
 * ends with that operation PENDING. The parent then allocates and frees on
 * the heap the dead process left (repairing it first); the replay must
 * find an outcome of the killed operation that every later result and the
 * final layout agree with. */
static void test_replay_crash_points(void) {
  if (!traced) {
    g_test_skip("needs a build with -Dcrash_points=true (the trace hook)");
    return;
  }
  th_watchdog_arm(120, "/oracle/replay-crash-points");
  unsetenv("SHMHEAP_CRASH_AT");
  long kills = 0, split = 0;
  for (long n = 1; n < 1000; n++) {
    char heap[96];
    th_shm_name(heap, sizeof heap, "trace");
    struct tlog t;
    tlog_open(&t, heap, 64);
    shmheap_memory_handle mem = shmheap_create(heap, 64u << 10);
    g_assert_nonnull(mem);
    char at[32];
    snprintf(at, sizeof at, "%ld", n);
    g_assert_cmpint(setenv("SHMHEAP_CRASH_AT", at, 1), ==, 0);
    pid_t pid = th_fork_start(script_main, heap, 30);
    g_assert_cmpint(unsetenv("SHMHEAP_CRASH_AT"), ==, 0);
    int status = th_wait(pid);
    gboolean killed = th_killed(status);
    uint64_t before = t.log->count;
    g_assert_cmpuint(before, >, 0);
    g_assert_cmpuint(t.log->rec[before - 1].state, ==,
                     killed ? SHH_TRACE_PENDING : SHH_TRACE_DONE);
    for (uint64_t i = 0; i + 1 < before; i++)
      g_assert_cmpuint(t.log->rec[i].state, ==, SHH_TRACE_DONE);
    /* the parent's calls, traced too, tell the outcomes apart */
    void *p = shmheap_alloc(mem, 64), *q = shmheap_alloc(mem, 700);
    g_assert_true(p != NULL && q != NULL);
    shmheap_free(mem, p);
    g_assert_cmpuint(t.log->count, ==, before + 3);
    g_assert_cmpint(shmheap_check(mem), ==, 0);
    guint most = replay(t.log, mem, 64u << 10).most;
    shmheap_destroy(NULL, mem);
    tlog_close(&t);
    if (!killed)
      break;
    kills++;
    split += most > 1;
  }
  g_test_message("killed at %ld crash points; %ld left more than one "
                 "possible outcome to follow",
                 kills, split);
  g_assert_cmpint(kills, >, 10);
  g_assert_cmpint(split, ==, kills);
  th_watchdog_disarm();
}

/* The two multi-process cases:
 * /oracle/multiprocess-replay: no kills: every call is in the log, DONE,
 * and the replay gives every result and the final layout.
 * /oracle/multiprocess-replay-kill: workers SIGKILLed (and respawned)
 * while they run; the replay still gives every result that returned and
 * the final layout, leaks of the killed included. */
struct replay_case {
  const char *path;
  unsigned kills, ops;
};

static const struct replay_case replay_cases[] = {
    {"/oracle/multiprocess-replay", 0, 3000},
    {"/oracle/multiprocess-replay-kill", MAX_KILLS, JOURNAL_CAP},
};

static void test_replay(gconstpointer data) {
  const struct replay_case *c = data;
  if (!traced) {
    g_test_skip("needs a build with -Dcrash_points=true (the trace hook)");
    return;
  }
  th_watchdog_arm(120, c->path);
  run_workers(c->kills, c->ops);
  th_watchdog_disarm();
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  th_install_cleanup();
  for (size_t i = 0; i < G_N_ELEMENTS(replay_cases); i++)
    th_add_data_func(replay_cases[i].path, &replay_cases[i], test_replay);
  th_add_func("/oracle/replay-crash-points", test_replay_crash_points);
  return g_test_run();
}

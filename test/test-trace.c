/* test-trace: /oracle/multiprocess-*: the serial order of a heap shared by
 * several processes, checked against the oracle model. Worker processes
 * (some with two threads) run random alloc, calloc, realloc and free
 * streams on one heap; the library, built with crash_points, logs each
 * operation under the heap's lock as it takes effect (lib/trace.h). The
 * parent then checks the log against what every thread saw (each thread
 * keeps a journal of its calls and their results), replays it in order
 * through the oracle (oracle-model.c: first fit by linear scan) and asserts
 * that every offset, every ENOMEM and the final block layout match. A
 * record left PENDING by a process killed during its operation may or may
 * not have taken effect: the replay follows each outcome the library
 * allows and keeps those the later records and the final layout agree
 * with.
 */
#include "testutil.h"

#include <inttypes.h>
#include <pthread.h>
#include <shmheap.h>

#include "layout.h"
#include "oracle.h"
#include "roles.h"
#include "trace.h"

enum {
  PROCS = 4,     /* worker processes; the first two run two threads */
  THREADS = 2,   /* the most threads a worker runs */
  MAX_KILLS = 8, /* kills in the kill case (each respawns a worker) */
  INCARNATIONS = PROCS + MAX_KILLS,
  SLOTS = 12,        /* live blocks a thread keeps */
  JOURNAL_CAP = 6000 /* calls a thread makes at the most */
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
    role_call_end(t->slot, t0);
    TH_CHILD_CHECK(errno == 0);
    journal_add(t->j, SHH_TRACE_FREE, 0, old, 0, 0);
    l->p = NULL;
    return;
  }
  if (l->p != NULL || r < 10) {
    /* realloc(NULL, sz) is alloc in the log */
    q = shmheap_realloc(mem, l->p, sz);
    role_call_end(t->slot, t0);
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
    role_call_end(t->slot, t0);
    journal_add(t->j, SHH_TRACE_ALLOC, n * (sz / n), 0,
                shmheap_ptr_to_handle(mem, q), q ? 0 : errno);
    TH_CHILD_CHECK(q != NULL || errno == ENOMEM);
    if (q == NULL)
      return;
    TH_CHILD_CHECK(all_zero(q, n * (sz / n)));
    sz = n * (sz / n);
  } else {
    q = shmheap_alloc(mem, sz);
    role_call_end(t->slot, t0);
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
  role_call_end(&slots[0], t0);
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

/* ------------------------------------------------------------------------ */
/* The log                                                                   */

struct tlog {
  char name[96];
  struct shh_trace_log *log;
  size_t len;
};

/* Creates the log for the heap HEAP and names it in SHMHEAP_TRACE, so that
 * the connections made from now on trace the heap. */
static void tlog_open(struct tlog *t, const char *heap, uint64_t cap) {
  th_shm_name(t->name, sizeof t->name, "trace-log");
  t->len = sizeof *t->log + cap * sizeof t->log->rec[0];
  int fd = shm_open(t->name, O_RDWR | O_CREAT | O_EXCL, 0600);
  g_assert_cmpint(fd, >=, 0);
  g_assert_cmpint(ftruncate(fd, (off_t)t->len), ==, 0);
  t->log = mmap(NULL, t->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  g_assert_true(t->log != MAP_FAILED);
  close(fd);
  t->log->cap = cap;
  g_strlcpy(t->log->heap, heap, sizeof t->log->heap);
  t->log->magic = SHH_TRACE_MAGIC;
  g_assert_cmpint(setenv(SHH_TRACE_ENV, t->name, 1), ==, 0);
}

static void tlog_close(struct tlog *t) {
  g_assert_cmpint(unsetenv(SHH_TRACE_ENV), ==, 0);
  g_assert_cmpint(munmap(t->log, t->len), ==, 0);
  g_assert_cmpint(shm_unlink(t->name), ==, 0);
}

static const char *op_name(uint32_t op) {
  return op == SHH_TRACE_ALLOC     ? "alloc"
         : op == SHH_TRACE_REALLOC ? "realloc"
         : op == SHH_TRACE_FREE    ? "free"
                                   : "?";
}

static void say_rec(const char *what, uint64_t i,
                    const struct shh_trace_rec *r) {
  g_test_message("%s: record %" PRIu64 ": %s %s size %" PRIu64 " old %" PRIu64
                 " new %" PRIu64 " err %d (pid %u tid %u)",
                 what, i, r->state == SHH_TRACE_DONE ? "done" : "pending",
                 op_name(r->op), r->size, r->old_hdl, r->new_hdl, (int)r->err,
                 r->pid, r->tid);
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
/* The replay                                                                */

static struct oracle *oracle_copy(const struct oracle *o) {
  struct oracle *c = g_new(struct oracle, 1);
  *c = *o;
  c->b = g_new(struct oblk, o->cap);
  memcpy(c->b, o->b, o->n * sizeof *o->b);
  return c;
}

static void oracle_drop(gpointer o) {
  oracle_fini(o);
  g_free(o);
}

/* Whether the block lists A[0..AN) and B[0..BN) are the same. */
static gboolean blocks_same(const struct oblk *a, size_t an,
                            const struct oblk *b, size_t bn) {
  if (an != bn)
    return FALSE;
  for (size_t i = 0; i < an; i++)
    if (a[i].off != b[i].off || a[i].size != b[i].size ||
        a[i].used != b[i].used)
      return FALSE;
  return TRUE;
}

/* Whether the model has a used block whose handle is HDL. */
static gboolean used_at(const struct oracle *o, uint64_t hdl) {
  for (size_t i = 0; i < o->n; i++)
    if (o->b[i].off + SHH_TAG == hdl)
      return o->b[i].used;
  return FALSE;
}

/* Applies the DONE record R to O: whether the model gives R's result. */
static gboolean apply_done(struct oracle *o, const struct shh_trace_rec *r) {
  uint64_t off;
  switch (r->op) {
  case SHH_TRACE_ALLOC:
    off = oracle_alloc(o, r->size);
    break;
  case SHH_TRACE_REALLOC:
    if (!used_at(o, r->old_hdl))
      return FALSE;
    off = oracle_realloc(o, r->old_hdl - SHH_TAG, r->size);
    break;
  case SHH_TRACE_FREE:
    if (!used_at(o, r->old_hdl) || r->err != 0)
      return FALSE;
    oracle_free(o, r->old_hdl - SHH_TAG);
    return TRUE;
  default:
    return FALSE;
  }
  if (r->err == 0)
    return off != 0 && off + SHH_TAG == r->new_hdl;
  return r->err == ENOMEM && off == 0 && r->new_hdl == 0;
}

/* Adds O to the candidates C unless one of them is the same. */
static void add_candidate(GPtrArray *c, struct oracle *o) {
  for (guint i = 0; i < c->len; i++) {
    const struct oracle *x = g_ptr_array_index(c, i);
    if (blocks_same(x->b, x->n, o->b, o->n)) {
      oracle_drop(o);
      return;
    }
  }
  g_ptr_array_add(c, o);
}

/* The outcomes of the PENDING record R from the state O: not at all, done,
 * and for a realloc that moves, its new block taken with the old one kept
 * (killed between them). Adds them to NEXT and consumes O. */
static void expand_pending(GPtrArray *next, struct oracle *o,
                           const struct shh_trace_rec *r) {
  if (r->op != SHH_TRACE_ALLOC && !used_at(o, r->old_hdl)) {
    oracle_drop(o); /* a state in which its caller had no such block */
    return;
  }
  struct oracle *done = oracle_copy(o);
  uint64_t off = 0;
  if (r->op == SHH_TRACE_ALLOC) {
    off = oracle_alloc(done, r->size);
  } else if (r->op == SHH_TRACE_REALLOC) {
    off = oracle_realloc(done, r->old_hdl - SHH_TAG, r->size);
    if (off != 0 && off + SHH_TAG != r->old_hdl) {
      struct oracle *half = oracle_copy(o);
      g_assert_cmpuint(oracle_alloc(half, r->size), ==, off);
      add_candidate(next, half);
    }
  } else {
    oracle_free(done, r->old_hdl - SHH_TAG);
    off = 1;
  }
  if (off != 0)
    add_candidate(next, done);
  else
    oracle_drop(done);
  add_candidate(next, o);
}

struct walked {
  struct oblk b[4096];
  size_t n;
};

static int collect_block(const struct shmheap_block *b, void *arg) {
  struct walked *w = arg;
  if (w->n == G_N_ELEMENTS(w->b))
    return 1;
  w->b[w->n++] = (struct oblk){b->offset, b->size, b->used};
  return 0;
}

/* Replays the log through the oracle from an empty heap of LEN bytes and
 * asserts that every record's result is the model's and that the heap's
 * blocks now are the model's. Returns the most candidate states followed
 * at once. */
static guint replay(const struct shh_trace_log *log, shmheap_memory_handle mem,
                    size_t len) {
  GPtrArray *cand = g_ptr_array_new_with_free_func(oracle_drop);
  struct oracle *o = g_new(struct oracle, 1);
  oracle_init(o, len, 0);
  g_ptr_array_add(cand, o);
  guint most = 1;
  uint64_t nomem = 0;
  for (uint64_t i = 0; i < log->count; i++) {
    const struct shh_trace_rec *r = &log->rec[i];
    GPtrArray *next = g_ptr_array_new_with_free_func(oracle_drop);
    for (guint k = 0; k < cand->len; k++) {
      struct oracle *c = g_ptr_array_steal_index_fast(cand, k--);
      if (r->state == SHH_TRACE_PENDING)
        expand_pending(next, c, r);
      else if (apply_done(c, r))
        add_candidate(next, c);
      else
        oracle_drop(c);
    }
    g_ptr_array_unref(cand);
    cand = next;
    if (cand->len == 0) {
      say_rec("the oracle disagrees with", i, r);
      g_assert_not_reached();
    }
    most = MAX(most, cand->len);
    nomem += r->err == ENOMEM;
  }
  struct walked *w = g_new0(struct walked, 1);
  g_assert_cmpint(shmheap_walk(mem, collect_block, w), ==, 0);
  gboolean match = FALSE;
  for (guint k = 0; k < cand->len && !match; k++) {
    const struct oracle *c = g_ptr_array_index(cand, k);
    match = blocks_same(c->b, c->n, w->b, w->n);
  }
  if (!match) {
    const struct oracle *c = g_ptr_array_index(cand, 0);
    g_test_message("the heap has %zu blocks, the replay %zu", w->n, c->n);
    for (size_t k = 0; k < w->n && k < c->n; k++)
      if (!blocks_same(&w->b[k], 1, &c->b[k], 1))
        g_error("block %zu: heap %" PRIu64 "+%" PRIu64 " %s, replay %" PRIu64
                "+%" PRIu64 " %s",
                k, w->b[k].off, w->b[k].size, w->b[k].used ? "used" : "free",
                c->b[k].off, c->b[k].size, c->b[k].used ? "used" : "free");
    g_assert_not_reached();
  }
  g_test_message("replayed %" PRIu64 " records (%" PRIu64 " ENOMEM) into %zu "
                 "blocks; at most %u candidate states",
                 log->count, nomem, w->n, most);
  g_assert_cmpuint(nomem, >, 0);
  g_free(w);
  g_ptr_array_unref(cand);
  return most;
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
  unsigned inc_of[PROCS], next_inc = PROCS, roles[ROLE_N] = {0}, done = 0;
  gboolean killed[INCARNATIONS] = {0};
  uint64_t rng = 0x7ace0000u + kills;
  for (unsigned c = 0; c < PROCS; c++) {
    w[c] = (struct worker){&run, c, c < 2 ? 2 : 1, th_rand(&rng)};
    inc_of[c] = c;
    pid[c] = th_fork_start(worker_main, &w[c], 100);
  }
  for (unsigned k = 0; k < kills && next_inc < INCARNATIONS; k++) {
    g_usleep(1000 + (gulong)th_rand_below(&rng, 20000));
    pid_t victim = 0;
    for (double end = th_now_s() + 0.1; k % 2 && !victim && th_now_s() < end;)
      victim = role_lock_holder(mem, pid, PROCS);
    unsigned c = (unsigned)th_rand_below(&rng, PROCS);
    for (unsigned i = 0; victim != 0 && i < PROCS; i++)
      if (pid[i] == victim)
        c = i;
    if (pid[c] == 0)
      continue;
    int role = role_stop_kill(mem, pid[c],
                              &run.board->slot[inc_of[c] * THREADS], THREADS);
    if (role < 0) {
      pid[c] = 0; /* it had finished its calls */
      done++;
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
  else
    g_assert_cmpuint(next_inc - PROCS, >, 0);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  replay(t.log, mem, HEAP_LEN);
  (void)done;
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

/* /oracle/multiprocess-replay: no kills: every call is in the log, DONE,
 * and the replay gives every result and the final layout. */
static void test_replay(void) {
  if (!traced) {
    g_test_skip("needs a build with -Dcrash_points=true (the trace hook)");
    return;
  }
  th_watchdog_arm(120, "/oracle/multiprocess-replay");
  run_workers(0, 3000);
  th_watchdog_disarm();
}

/* /oracle/multiprocess-replay-kill: workers SIGKILLed (and respawned)
 * while they run; the replay still gives every result that returned and
 * the final layout, leaks of the killed included. */
static void test_replay_kill(void) {
  if (!traced) {
    g_test_skip("needs a build with -Dcrash_points=true (the trace hook)");
    return;
  }
  th_watchdog_arm(120, "/oracle/multiprocess-replay-kill");
  run_workers(MAX_KILLS, JOURNAL_CAP);
  th_watchdog_disarm();
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  th_install_cleanup();
  th_add_func("/oracle/multiprocess-replay", test_replay);
  th_add_func("/oracle/multiprocess-replay-kill", test_replay_kill);
  return g_test_run();
}

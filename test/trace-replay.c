/* trace-replay.c: the serial-order log a test makes for a heap
 * (lib/trace.h), and its replay through the oracle model (oracle-model.c),
 * declared in trace-replay.h. The replay keeps a set of candidate model
 * states: one, until a record left PENDING by a killed process splits it
 * into the outcomes that operation may have had; a state is dropped as soon
 * as a later record's result differs from what it predicts.
 */
#include "trace-replay.h"

#include <inttypes.h>

#include "layout.h"
#include "oracle.h"
#include "testutil.h"

/* Creates the log for the heap HEAP and names it in SHMHEAP_TRACE, so that
 * the connections made from now on trace the heap. */
void tlog_open(struct tlog *t, const char *heap, uint64_t cap) {
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

void tlog_close(struct tlog *t) {
  g_assert_cmpint(unsetenv(SHH_TRACE_ENV), ==, 0);
  g_assert_cmpint(munmap(t->log, t->len), ==, 0);
  g_assert_cmpint(shm_unlink(t->name), ==, 0);
}

const char *op_name(uint32_t op) {
  return op == SHH_TRACE_ALLOC     ? "alloc"
         : op == SHH_TRACE_REALLOC ? "realloc"
         : op == SHH_TRACE_FREE    ? "free"
                                   : "?";
}

void say_rec(const char *what, uint64_t i, const struct shh_trace_rec *r) {
  g_test_message("%s: record %" PRIu64 ": %s %s size %" PRIu64 " old %" PRIu64
                 " new %" PRIu64 " err %d (pid %u tid %u)",
                 what, i, r->state == SHH_TRACE_DONE ? "done" : "pending",
                 op_name(r->op), r->size, r->old_hdl, r->new_hdl, (int)r->err,
                 r->pid, r->tid);
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

/* Each record over every candidate, then the walk (trace-replay.h). */
struct replay_sum replay(const struct shh_trace_log *log,
                         shmheap_memory_handle mem, size_t len) {
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
  size_t blocks = w->n;
  g_free(w);
  g_ptr_array_unref(cand);
  return (struct replay_sum){most, nomem, blocks};
}

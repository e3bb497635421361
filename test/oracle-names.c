/* oracle-names.c: the oracle traces' names operations. Each trace keeps a
 * name map (NKEYS keys of varied lengths -> the named object's block and
 * the name's entry block); publish, unpublish, lookup_or_alloc, lookup and
 * names walks must answer as the map says, and every block the names take
 * (directory, rehashed directory, entries) must be where the model puts it
 * (assert_same compares the whole walk). The one fact the model reads from
 * the library is whether the directory's tables are 3/4 full, since their
 * fill (tombs left by removed names) depends on the keys' hashes; the
 * model checks the directory's place and capacity as it reads it.
 */
#include "testutil.h"

#include "layout.h"
#include "oracle.h"

void trace_names_init(struct trace *t) {
  for (unsigned k = 0; k < NKEYS; k++) {
    size_t n = 1 + (k * 37) % 120; /* 1..120 bytes: entries of many sizes */
    memset(t->keys[k], 'a' + (int)k, n);
    t->keys[k][n] = '\0';
    t->names[k] = (struct tname){0, 0};
  }
}

static uint64_t rd(const struct trace *t, uint64_t off) {
  uint64_t v;
  memcpy(&v, t->base + off, sizeof v);
  return v;
}

/* Whether the library's next name rehashes its directory first (its key
 * or handle table, names plus tombs, would pass 3/4 full). Checks on the
 * way that the directory is the model's block, with the model's slots. */
static int dir_full(const struct trace *t) {
  uint64_t d = rd(t, SHH_HDR_NAMES);
  g_assert_cmpuint(d, ==, t->o.dir ? t->o.dir + SHH_TAG : 0);
  if (d == 0)
    return 0;
  uint64_t cap = rd(t, d + SHH_DIR_CAP), used = rd(t, d + SHH_DIR_USED),
           hused = rd(t, d + SHH_DIR_HUSED);
  g_assert_cmpuint(cap, ==, t->o.dir_cap);
  g_assert_cmpuint(rd(t, d + SHH_DIR_COUNT), ==, t->o.names);
  uint64_t top = used > hused ? used : hused;
  return !(top < cap && (top + 1) * 4 <= cap * 3);
}

static void expect_absent(const struct trace *t, unsigned k) {
  errno = 0;
  g_assert_cmpuint(shmheap_lookup(t->mem, t->keys[k]), ==, SHMHEAP_NULL_HANDLE);
  g_assert_cmpint(errno, ==, ENOENT);
}

void trace_forget(struct trace *t, uint64_t obj) {
  for (unsigned k = 0; k < NKEYS; k++) {
    if (t->names[k].obj != obj)
      continue;
    oracle_entry_remove(&t->o, t->names[k].entry);
    t->names[k] = (struct tname){0, 0};
    expect_absent(t, k);
  }
}

/* Publishes key K for a random live object. */
static void names_publish(struct trace *t, unsigned k, int op) {
  if (t->live->len == 0)
    return;
  guint i = (guint)th_rand_below(&t->rng, t->live->len);
  const struct obj *x = &g_array_index(t->live, struct obj, i);
  uint64_t hdl = x->block + SHH_TAG;
  int expect_err = 0;
  uint64_t e = 0;
  if (t->names[k].obj != 0) {
    expect_err = EEXIST;
  } else {
    int full = dir_full(t);
    if (oracle_dir_need(&t->o) != 0 ||
        (e = oracle_entry_add(&t->o, strlen(t->keys[k]), full)) == 0)
      expect_err = ENOMEM;
  }
  errno = 0;
  int rc = shmheap_publish(t->mem, t->keys[k], hdl);
  if (expect_err == 0 && rc != 0)
    g_error("seed %" G_GUINT64_FORMAT " op %d: publish(%u, %" G_GUINT64_FORMAT
            ") failed (errno %d), model says entry at %" G_GUINT64_FORMAT,
            t->cfg->seed, op, k, hdl, errno, e);
  if (expect_err != 0) {
    g_assert_cmpint(rc, ==, -1);
    g_assert_cmpint(errno, ==, expect_err);
    return;
  }
  t->names[k] = (struct tname){x->block, e};
  g_assert_cmpuint(shmheap_lookup(t->mem, t->keys[k]), ==, hdl);
}

static void names_unpublish(struct trace *t, unsigned k) {
  errno = 0;
  int rc = shmheap_unpublish(t->mem, t->keys[k]);
  if (t->names[k].obj == 0) {
    g_assert_cmpint(rc, ==, -1);
    g_assert_cmpint(errno, ==, ENOENT);
    return;
  }
  g_assert_cmpint(rc, ==, 0);
  oracle_entry_remove(&t->o, t->names[k].entry);
  t->names[k] = (struct tname){0, 0};
  expect_absent(t, k);
}

/* lookup_or_alloc of key K: the named object, else a new zeroed one. */
static void names_lookup_or_alloc(struct trace *t, unsigned k, int op) {
  const struct trace_cfg *cfg = t->cfg;
  size_t n =
      trace_size(&t->rng, cfg->max_len ? cfg->max_len / 4 : cfg->len, &t->o);
  int created = -1;
  if (t->names[k].obj != 0) {
    char *p = shmheap_lookup_or_alloc(t->mem, t->keys[k], n, &created);
    g_assert_true(p == t->base + t->names[k].obj + SHH_TAG);
    g_assert_cmpint(created, ==, 0);
    return;
  }
  /* the library's order: directory, object, then the name (a rehash, the
   * entry); a failure takes back what it made */
  int full = dir_full(t);
  uint64_t obj = 0, e = 0;
  if (oracle_dir_need(&t->o) == 0) {
    obj = oracle_alloc(&t->o, n);
    if (obj == 0) {
      oracle_dir_drop_if_empty(&t->o);
    } else if ((e = oracle_entry_add(&t->o, strlen(t->keys[k]), full)) == 0) {
      oracle_free(&t->o, obj);
      obj = 0;
    }
  }
  errno = 0;
  char *p = shmheap_lookup_or_alloc(t->mem, t->keys[k], n, &created);
  if (obj == 0) {
    if (p != NULL)
      g_error("seed %" G_GUINT64_FORMAT " op %d: lookup_or_alloc(%u, %zu) "
              "returned %" G_GUINT64_FORMAT ", model says ENOMEM",
              cfg->seed, op, k, n, (uint64_t)(p - t->base));
    g_assert_cmpint(errno, ==, ENOMEM);
    expect_absent(t, k);
    return;
  }
  if (p != t->base + obj + SHH_TAG)
    g_error("seed %" G_GUINT64_FORMAT " op %d: lookup_or_alloc(%u, %zu) "
            "returned %" G_GUINT64_FORMAT
            " (errno %d), model %" G_GUINT64_FORMAT,
            cfg->seed, op, k, n, p ? (uint64_t)(p - t->base) : 0, errno,
            obj + SHH_TAG);
  g_assert_cmpint(created, ==, 1);
  size_t z = n < 4096 ? n : 4096;
  for (size_t j = 0; j < z; j++)
    g_assert_cmpint(p[j], ==, 0);
  t->names[k] = (struct tname){obj, e};
  struct obj x = {p, obj, n};
  mark(&x, cfg->seed);
  g_array_append_val(t->live, x);
}

struct walked {
  const struct trace *t;
  unsigned seen;
  int bad;
};

static int walk_name(const char *key, shmheap_object_handle hdl, void *arg) {
  struct walked *w = arg;
  unsigned k = 0;
  while (k < NKEYS && strcmp(key, w->t->keys[k]) != 0)
    k++;
  if (k == NKEYS || w->t->names[k].obj + SHH_TAG != hdl)
    w->bad = 1;
  w->seen++;
  return 0;
}

void trace_names_check(struct trace *t) {
  unsigned named = 0;
  for (unsigned k = 0; k < NKEYS; k++) {
    if (t->names[k].obj == 0) {
      expect_absent(t, k);
      continue;
    }
    named++;
    g_assert_cmpuint(shmheap_lookup(t->mem, t->keys[k]), ==,
                     t->names[k].obj + SHH_TAG);
  }
  g_assert_cmpuint(named, ==, t->o.names);
  struct walked w = {t, 0, 0};
  g_assert_cmpint(shmheap_names(t->mem, walk_name, &w), ==, 0);
  g_assert_cmpint(w.bad, ==, 0);
  g_assert_cmpuint(w.seen, ==, named);
}

void trace_names_op(struct trace *t, int op) {
  unsigned k = (unsigned)th_rand_below(&t->rng, NKEYS);
  uint64_t c = th_rand_below(&t->rng, 100);
  t->n_names++;
  if (c < 40)
    names_publish(t, k, op);
  else if (c < 60)
    names_unpublish(t, k);
  else if (c < 85)
    names_lookup_or_alloc(t, k, op);
  else
    trace_names_check(t);
}

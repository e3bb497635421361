/* test-names: names for objects, kept in the heap. Publish, lookup,
 * unpublish and their errors; names seen across processes; 8 processes
 * racing lookup_or_alloc on one key; thousands of names; free and a moving
 * realloc dropping names; a scribbled directory refused with EUCLEAN. The
 * kills are in names-kills.c.
 */
#include "layout.h"
#include "names.h"

uint64_t names_count(shmheap_memory_handle mem) {
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(mem, &st), ==, 0);
  return st.names;
}

/* Every name leads to a live block (usable_size > 0); returns the count. */
static int count_live(const char *key, shmheap_object_handle hdl, void *arg) {
  void **a = arg;
  shmheap_memory_handle mem = a[0];
  uint64_t *n = a[1];
  (void)key;
  /* names() holds the lock: check the handle only by its range here; the
   * caller checks each block after the walk */
  if (shmheap_handle_to_ptr(mem, hdl) == NULL)
    return 1;
  if (*n < 4096)
    ((uint64_t *)a[2])[*n] = hdl;
  ++*n;
  return 0;
}

/* Every name resolves to a live block and lookup agrees; returns the count
 * of names. */
uint64_t verify_names(shmheap_memory_handle mem) {
  static uint64_t hdls[4096];
  uint64_t n = 0;
  void *a[3] = {mem, &n, hdls};
  g_assert_cmpint(shmheap_names(mem, count_live, a), ==, 0);
  for (uint64_t i = 0; i < n && i < 4096; i++) {
    errno = 0;
    g_assert_cmpuint(
        shmheap_usable_size(mem, shmheap_handle_to_ptr(mem, hdls[i])), >, 0);
  }
  g_assert_cmpuint(names_count(mem), ==, n);
  return n;
}

/* ------------------------------------------------------------------------ */

static void test_basic(void) {
  struct heap hp;
  th_heap_open(&hp, "names", 256 * KIB);
  shmheap_memory_handle mem = hp.mem;
  /* an empty heap has no directory: lookups make none */
  errno = 0;
  g_assert_cmpuint(shmheap_lookup(mem, "a"), ==, SHMHEAP_NULL_HANDLE);
  g_assert_cmpint(errno, ==, ENOENT);
  g_assert_cmpint(shmheap_unpublish(mem, "a"), ==, -1);
  g_assert_cmpint(errno, ==, ENOENT);
  g_assert_cmpuint(verify_names(mem), ==, 0);
  void *all = shmheap_alloc(mem, hp.len - SHMHEAP_OVERHEAD);
  g_assert_nonnull(all);
  shmheap_free(mem, all);

  char *p = shmheap_alloc(mem, 100);
  char *q = shmheap_alloc(mem, 200);
  g_assert_nonnull(p);
  g_assert_nonnull(q);
  uint64_t ph = shmheap_ptr_to_handle(mem, p),
           qh = shmheap_ptr_to_handle(mem, q);
  g_assert_cmpint(shmheap_publish(mem, "p", ph), ==, 0);
  g_assert_cmpint(shmheap_publish(mem, "p-too", ph), ==, 0);
  g_assert_cmpint(shmheap_publish(mem, "q", qh), ==, 0);
  g_assert_cmpuint(shmheap_lookup(mem, "p"), ==, ph);
  g_assert_cmpuint(shmheap_lookup(mem, "p-too"), ==, ph);
  g_assert_cmpuint(shmheap_lookup(mem, "q"), ==, qh);
  g_assert_cmpuint(verify_names(mem), ==, 3);
  g_assert_cmpint(shmheap_check(mem), ==, 0);

  /* errors, each changing nothing */
  char long_key[300];
  memset(long_key, 'k', sizeof long_key - 1);
  long_key[sizeof long_key - 1] = '\0';
  char max_key[256];
  memset(max_key, 'm', 255);
  max_key[255] = '\0';
  struct {
    shmheap_memory_handle m;
    const char *key;
    uint64_t hdl;
    int err;
  } bad[] = {
      {mem, "p", qh, EEXIST},       {NULL, "x", ph, EINVAL},
      {mem, NULL, ph, EINVAL},      {mem, "", ph, EINVAL},
      {mem, long_key, ph, EINVAL},  {mem, "x", 0, EINVAL},
      {mem, "x", ph + 16, EINVAL},  {mem, "x", ph - 8, EINVAL},
      {mem, "x", 1u << 30, EINVAL}, {mem, "x", hp.len, EINVAL},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    errno = 0;
    g_assert_cmpint(shmheap_publish(bad[i].m, bad[i].key, bad[i].hdl), ==, -1);
    g_assert_cmpint(errno, ==, bad[i].err);
  }
  g_assert_cmpuint(verify_names(mem), ==, 3);
  errno = 0;
  g_assert_cmpuint(shmheap_lookup(mem, long_key), ==, 0);
  g_assert_cmpint(errno, ==, EINVAL);
  g_assert_cmpuint(shmheap_lookup(NULL, "p"), ==, 0);
  g_assert_cmpuint(shmheap_lookup(mem, ""), ==, 0);
  g_assert_cmpint(shmheap_unpublish(mem, NULL), ==, -1);
  g_assert_cmpint(errno, ==, EINVAL);
  g_assert_null(shmheap_lookup_or_alloc(mem, "", 10, NULL));
  g_assert_cmpint(errno, ==, EINVAL);
  g_assert_cmpint(shmheap_names(mem, NULL, NULL), ==, -1);
  g_assert_cmpint(errno, ==, EINVAL);
  g_assert_cmpint(shmheap_names(NULL, count_live, NULL), ==, -1);
  g_assert_cmpint(errno, ==, EINVAL);
  /* a 255-byte key is fine */
  g_assert_cmpint(shmheap_publish(mem, max_key, qh), ==, 0);
  g_assert_cmpuint(shmheap_lookup(mem, max_key), ==, qh);
  /* a freed block cannot be named */
  char *r = shmheap_alloc(mem, 10);
  uint64_t rh = shmheap_ptr_to_handle(mem, r);
  shmheap_free(mem, r);
  errno = 0;
  g_assert_cmpint(shmheap_publish(mem, "r", rh), ==, -1);
  g_assert_cmpint(errno, ==, EINVAL);

  /* unpublish keeps the object */
  g_assert_cmpint(shmheap_unpublish(mem, "p"), ==, 0);
  errno = 0;
  g_assert_cmpuint(shmheap_lookup(mem, "p"), ==, 0);
  g_assert_cmpint(errno, ==, ENOENT);
  g_assert_cmpuint(shmheap_lookup(mem, "p-too"), ==, ph);
  g_assert_cmpint(shmheap_unpublish(mem, "p-too"), ==, 0);
  g_assert_cmpuint(shmheap_usable_size(mem, p), >=, 100);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  g_assert_cmpuint(verify_names(mem), ==, 2);
  /* the key can be used again, for another object */
  g_assert_cmpint(shmheap_publish(mem, "p", qh), ==, 0);
  g_assert_cmpuint(shmheap_lookup(mem, "p"), ==, qh);

  /* lookup_or_alloc: existing, then new and zeroed */
  int created = -1;
  g_assert_true(shmheap_lookup_or_alloc(mem, "q", 5, &created) == q);
  g_assert_cmpint(created, ==, 0);
  unsigned char *z = shmheap_lookup_or_alloc(mem, "z", 1000, &created);
  g_assert_nonnull(z);
  g_assert_cmpint(created, ==, 1);
  for (unsigned i = 0; i < 1000; i++)
    g_assert_cmpint(z[i], ==, 0);
  g_assert_true(shmheap_lookup_or_alloc(mem, "z", 1000, NULL) == z);
  errno = 0;
  g_assert_null(shmheap_lookup_or_alloc(mem, "huge", hp.len, &created));
  g_assert_cmpint(errno, ==, ENOMEM);
  g_assert_cmpuint(shmheap_lookup(mem, "huge"), ==, 0);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  shmheap_free(mem, z);
  shmheap_free(mem, q);
  shmheap_free(mem, p);
  g_assert_cmpuint(verify_names(mem), ==, 0);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  /* no names left: the directory went too, the heap is whole again */
  all = shmheap_alloc(mem, hp.len - SHMHEAP_OVERHEAD);
  g_assert_nonnull(all);
  shmheap_free(mem, all);
  heap_close(&hp);
}

/* ------------------------------------------------------------------------ */

/* free drops every name of the object; realloc that moves it too, and one
 * that stays keeps them. */
static void test_free_drops(void) {
  struct heap hp;
  th_heap_open(&hp, "names", 256 * KIB);
  shmheap_memory_handle mem = hp.mem;
  char *a = shmheap_alloc(mem, 64);
  char *b = shmheap_alloc(mem, 64);
  char *c = shmheap_alloc(mem, 64);
  uint64_t ah = shmheap_ptr_to_handle(mem, a),
           bh = shmheap_ptr_to_handle(mem, b);
  for (int i = 0; i < 5; i++) {
    char k[16];
    snprintf(k, sizeof k, "a%d", i);
    g_assert_cmpint(shmheap_publish(mem, k, ah), ==, 0);
  }
  g_assert_cmpint(shmheap_publish(mem, "b", bh), ==, 0);
  g_assert_cmpuint(verify_names(mem), ==, 6);
  shmheap_free(mem, a);
  for (int i = 0; i < 5; i++) {
    char k[16];
    snprintf(k, sizeof k, "a%d", i);
    errno = 0;
    g_assert_cmpuint(shmheap_lookup(mem, k), ==, 0);
    g_assert_cmpint(errno, ==, ENOENT);
  }
  g_assert_cmpuint(shmheap_lookup(mem, "b"), ==, bh);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  /* realloc in place (shrink) keeps the name */
  g_assert_true(shmheap_realloc(mem, b, 16) == b);
  g_assert_cmpuint(shmheap_lookup(mem, "b"), ==, bh);
  /* c blocks b from growing in place: this realloc moves b */
  char *b2 = shmheap_realloc(mem, b, 10000);
  g_assert_nonnull(b2);
  g_assert_true(b2 != b);
  errno = 0;
  g_assert_cmpuint(shmheap_lookup(mem, "b"), ==, 0);
  g_assert_cmpint(errno, ==, ENOENT);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  /* double free of a once-named block stays refused */
  errno = 0;
  shmheap_free(mem, a);
  g_assert_cmpint(errno, ==, EINVAL);
  shmheap_free(mem, b2);
  shmheap_free(mem, c);
  g_assert_cmpuint(verify_names(mem), ==, 0);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  heap_close(&hp);
}

/* ------------------------------------------------------------------------ */

/* Thousands of names on a growable heap; half unpublished, some objects
 * freed; every lookup right after. */
/* The directory's own blocks show in shmheap_walk as used blocks, but they
 * are the library's: free and realloc refuse them (EINVAL), and the heap
 * and every name stay whole. */
static int collect_used(const struct shmheap_block *b, void *arg) {
  GArray *a = arg;
  if (b->used)
    g_array_append_val(a, b->handle);
  return 0;
}

static void test_internal_blocks(void) {
  struct heap hp;
  th_heap_open(&hp, "names", 64 * KIB);
  void *p = shmheap_alloc(hp.mem, 100);
  g_assert_nonnull(p);
  shmheap_object_handle hdl = shmheap_ptr_to_handle(hp.mem, p);
  g_assert_cmpint(shmheap_publish(hp.mem, "k", hdl), ==, 0);
  GArray *used = g_array_new(FALSE, FALSE, sizeof(shmheap_object_handle));
  g_assert_cmpint(shmheap_walk(hp.mem, collect_used, used), ==, 0);
  g_assert_cmpuint(used->len, ==, 3); /* the object, the directory, the entry */
  unsigned refused = 0;
  for (guint i = 0; i < used->len; i++) {
    shmheap_object_handle u = g_array_index(used, shmheap_object_handle, i);
    if (u == hdl)
      continue;
    void *q = shmheap_handle_to_ptr(hp.mem, u);
    errno = 0;
    shmheap_free(hp.mem, q);
    g_assert_cmpint(errno, ==, EINVAL);
    errno = 0;
    g_assert_null(shmheap_realloc(hp.mem, q, 4000));
    g_assert_cmpint(errno, ==, EINVAL);
    refused++;
  }
  g_assert_cmpuint(refused, ==, 2);
  g_assert_cmpint(shmheap_check(hp.mem), ==, 0);
  g_assert_cmpuint(shmheap_lookup(hp.mem, "k"), ==, hdl);
  g_array_free(used, TRUE);
  heap_close(&hp);
}

/* A freed entry's bytes stay where the allocator leaves them (here inside
 * a free block it merged into): a caller's block handed out at the same
 * offset is the caller's, to free and to publish, whatever it holds. */
struct block_at {
  uint64_t handle, size;
};

static int block_after(const struct shmheap_block *b, void *arg) {
  struct block_at *x = arg;
  if (b->used && b->handle > x->handle) {
    x->handle = b->handle;
    x->size = b->size;
    return 1;
  }
  return 0;
}

static void test_freed_entry_reused(void) {
  struct heap hp;
  th_heap_open(&hp, "names", 64 * KIB);
  void *a = shmheap_alloc(hp.mem, 100);
  g_assert_nonnull(a);
  shmheap_object_handle ha = shmheap_ptr_to_handle(hp.mem, a);
  g_assert_cmpint(shmheap_publish(hp.mem, "keep", ha), ==, 0);
  void *gap = shmheap_alloc(hp.mem, 40);
  g_assert_nonnull(gap);
  g_assert_cmpint(shmheap_publish(hp.mem, "k", ha), ==, 0);
  struct block_at e = {shmheap_ptr_to_handle(hp.mem, gap), 0};
  g_assert_cmpint(shmheap_walk(hp.mem, block_after, &e), ==, 1); /* k's entry */
  void *after = shmheap_alloc(hp.mem, 40); /* keeps the entry off the top */
  g_assert_nonnull(after);
  shmheap_free(hp.mem, gap);
  g_assert_cmpint(shmheap_unpublish(hp.mem, "k"), ==, 0); /* merges with gap */
  void *g2 = shmheap_alloc(hp.mem, 40);
  void *y = shmheap_alloc(hp.mem, e.size - SHH_TAG);
  g_assert_true(g2 == gap);
  g_assert_cmpuint(shmheap_ptr_to_handle(hp.mem, y), ==, e.handle);
  g_assert_cmpint(shmheap_publish(hp.mem, "y", e.handle), ==, 0);
  errno = 0;
  shmheap_free(hp.mem, y);
  g_assert_cmpint(errno, ==, 0);
  g_assert_cmpuint(shmheap_lookup(hp.mem, "y"), ==, SHMHEAP_NULL_HANDLE);
  g_assert_cmpint(shmheap_check(hp.mem), ==, 0);
  g_assert_cmpuint(shmheap_lookup(hp.mem, "keep"), ==, ha);

  /* the same where the freed entry becomes the start of the free block
   * that ends the heap, which holds no index node over its first word */
  g_assert_nonnull(shmheap_alloc(hp.mem, e.size - SHH_TAG)); /* y's hole */
  g_assert_cmpint(shmheap_publish(hp.mem, "top", ha), ==, 0);
  struct block_at t = {shmheap_ptr_to_handle(hp.mem, after), 0};
  g_assert_cmpint(shmheap_walk(hp.mem, block_after, &t), ==, 1);
  g_assert_cmpint(shmheap_unpublish(hp.mem, "top"), ==, 0);
  void *z = shmheap_alloc(hp.mem, t.size - SHH_TAG);
  g_assert_cmpuint(shmheap_ptr_to_handle(hp.mem, z), ==, t.handle);
  errno = 0;
  shmheap_free(hp.mem, z);
  g_assert_cmpint(errno, ==, 0);
  g_assert_cmpint(shmheap_check(hp.mem), ==, 0);
  heap_close(&hp);
}

/* A full fixed heap whose directory cannot double: names that go make room
 * for new ones, by a directory of the same size rebuilt without the slots
 * they left behind. Publish and unpublish then churn at a steady count. */
static void test_full_churn(void) {
  struct heap hp;
  th_heap_open(&hp, "names", 1u << 20);
  enum { MAX = 20000 };
  void **obj = g_new0(void *, MAX);
  char key[64];
  int n = 0;
  for (; n < MAX; n++) {
    obj[n] = shmheap_alloc(hp.mem, 16);
    g_assert_nonnull(obj[n]);
    snprintf(key, sizeof key, "name-%06d", n);
    if (shmheap_publish(hp.mem, key, shmheap_ptr_to_handle(hp.mem, obj[n])) !=
        0) {
      g_assert_cmpint(errno, ==, ENOMEM);
      shmheap_free(hp.mem, obj[n]);
      break;
    }
  }
  g_assert_cmpint(n, <, MAX);
  g_test_message("the directory stopped growing at %d names", n);
  /* a few names go; as many new ones fit, and then a steady churn */
  for (int i = 0; i < 400; i++) {
    snprintf(key, sizeof key, "name-%06d", i);
    g_assert_cmpint(shmheap_unpublish(hp.mem, key), ==, 0);
    snprintf(key, sizeof key, "fresh-%06d", i);
    if (shmheap_publish(hp.mem, key, shmheap_ptr_to_handle(hp.mem, obj[i])) !=
        0)
      g_error("publish after %d unpublishes: %s", i + 1, g_strerror(errno));
  }
  g_assert_cmpuint(names_count(hp.mem), ==, (uint64_t)n);
  g_assert_cmpint(shmheap_check(hp.mem), ==, 0);
  for (int i = 0; i < n; i++)
    shmheap_free(hp.mem, obj[i]); /* drops their names */
  g_assert_cmpuint(names_count(hp.mem), ==, 0);
  g_assert_nonnull(obj[0] = shmheap_alloc(hp.mem, hp.len - SHMHEAP_OVERHEAD));
  shmheap_free(hp.mem, obj[0]);
  g_free(obj);
  heap_close(&hp);
}

static void test_many(void) {
  char name[96];
  th_shm_name(name, sizeof name, "names");
  shmheap_memory_handle mem =
      shmheap_create_growable(name, 64 * KIB, 64u << 20, 0600);
  g_assert_nonnull(mem);
  enum { N = 5000 };
  uint64_t *hdl = g_new0(uint64_t, N);
  char key[64];
  for (unsigned i = 0; i < N; i++) {
    uint64_t *p = shmheap_alloc(mem, 8 + i % 100);
    g_assert_nonnull(p);
    *p = i;
    hdl[i] = shmheap_ptr_to_handle(mem, p);
    snprintf(key, sizeof key, "object/%u/%s", i, i % 7 ? "x" : "a-longer-key");
    g_assert_cmpint(shmheap_publish(mem, key, hdl[i]), ==, 0);
  }
  g_assert_cmpuint(names_count(mem), ==, N);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  for (unsigned i = 0; i < N; i += 2) {
    snprintf(key, sizeof key, "object/%u/%s", i, i % 7 ? "x" : "a-longer-key");
    if (i % 4 == 0) {
      g_assert_cmpint(shmheap_unpublish(mem, key), ==, 0);
    } else {
      shmheap_free(mem, shmheap_handle_to_ptr(mem, hdl[i]));
      hdl[i] = 0;
    }
  }
  for (unsigned i = 0; i < N; i++) {
    snprintf(key, sizeof key, "object/%u/%s", i, i % 7 ? "x" : "a-longer-key");
    uint64_t h = shmheap_lookup(mem, key);
    if (i % 2 == 0) {
      g_assert_cmpuint(h, ==, 0);
      g_assert_cmpint(errno, ==, ENOENT);
    } else {
      g_assert_cmpuint(h, ==, hdl[i]);
      g_assert_cmpuint(*(uint64_t *)shmheap_handle_to_ptr(mem, h), ==, i);
    }
  }
  g_assert_cmpuint(verify_names(mem), ==, N / 2);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  /* re-publish the unpublished half (tombstones reused) */
  for (unsigned i = 0; i < N; i += 4) {
    snprintf(key, sizeof key, "object/%u/%s", i, i % 7 ? "x" : "a-longer-key");
    g_assert_cmpint(shmheap_publish(mem, key, hdl[i]), ==, 0);
  }
  g_assert_cmpuint(names_count(mem), ==, N / 2 + N / 4);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  for (unsigned i = 0; i < N; i++)
    if (hdl[i] != 0)
      shmheap_free(mem, shmheap_handle_to_ptr(mem, hdl[i]));
  g_assert_cmpuint(names_count(mem), ==, 0);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  g_free(hdl);
  shmheap_destroy(NULL, mem);
}

/* ------------------------------------------------------------------------ */

/* Names across processes: a child publishes, the parent finds; the parent
 * unpublishes, the child sees it gone. */
struct cross_arg {
  const char *name;
  int step;
};

static int cross_child(void *arg) {
  struct cross_arg *a = arg;
  shmheap_memory_handle mem = shmheap_connect(a->name);
  TH_CHILD_CHECK(mem != NULL);
  if (a->step == 0) {
    char *p = shmheap_alloc(mem, 64);
    TH_CHILD_CHECK(p != NULL);
    snprintf(p, 64, "from %d", (int)getpid());
    TH_CHILD_CHECK(
        shmheap_publish(mem, "greeting", shmheap_ptr_to_handle(mem, p)) == 0);
  } else {
    errno = 0;
    TH_CHILD_CHECK(shmheap_lookup(mem, "greeting") == 0 && errno == ENOENT);
    uint64_t h = shmheap_lookup(mem, "reply");
    TH_CHILD_CHECK(h != 0);
    TH_CHILD_CHECK(strcmp(shmheap_handle_to_ptr(mem, h), "reply") == 0);
  }
  shmheap_disconnect(mem);
  return 0;
}

static void test_procs(void) {
  struct heap hp;
  th_heap_open(&hp, "names", 256 * KIB);
  struct cross_arg a = {hp.name, 0};
  th_assert_child_ok(th_fork_run(cross_child, &a, 0));
  uint64_t h = shmheap_lookup(hp.mem, "greeting");
  g_assert_cmpuint(h, !=, 0);
  g_assert_true(g_str_has_prefix(shmheap_handle_to_ptr(hp.mem, h), "from "));
  g_assert_cmpint(shmheap_unpublish(hp.mem, "greeting"), ==, 0);
  char *r = shmheap_alloc(hp.mem, 16);
  strcpy(r, "reply");
  g_assert_cmpint(
      shmheap_publish(hp.mem, "reply", shmheap_ptr_to_handle(hp.mem, r)), ==,
      0);
  a.step = 1;
  th_assert_child_ok(th_fork_run(cross_child, &a, 0));
  g_assert_cmpint(shmheap_check(hp.mem), ==, 0);
  heap_close(&hp);
}

/* ------------------------------------------------------------------------ */

/* 8 processes race lookup_or_alloc on one key: one object, one creator,
 * zeroed. Each reports its handle and whether it created it on a pipe. */
enum { RACERS = 8, ROUNDS = 20 };

struct race_arg {
  const char *name;
  int fd;
  int go;
};

static int race_child(void *arg) {
  struct race_arg *a = arg;
  shmheap_memory_handle mem = shmheap_connect(a->name);
  TH_CHILD_CHECK(mem != NULL);
  char buf;
  TH_CHILD_CHECK(read(a->go, &buf, 1) == 1); /* everyone starts together */
  for (unsigned r = 0; r < ROUNDS; r++) {
    char key[32];
    snprintf(key, sizeof key, "shared-%u", r);
    int created = -1;
    unsigned char *p = shmheap_lookup_or_alloc(mem, key, 512, &created);
    TH_CHILD_CHECK(p != NULL && (created == 0 || created == 1));
    if (created)
      for (unsigned i = 0; i < 512; i++)
        TH_CHILD_CHECK(p[i] == 0);
    /* every racer counts itself in the object */
    __atomic_fetch_add((uint64_t *)(void *)p, 1, __ATOMIC_RELAXED);
    uint64_t msg[2] = {shmheap_ptr_to_handle(mem, p), (uint64_t)created};
    TH_CHILD_CHECK(th_write_all(a->fd, msg, sizeof msg) == 0);
  }
  shmheap_disconnect(mem);
  return 0;
}

static void test_race(void) {
  th_watchdog_arm(60, "/names/race");
  struct heap hp;
  th_heap_open(&hp, "names", 1024 * KIB);
  int res[2], go[2];
  g_assert_cmpint(pipe(res), ==, 0);
  g_assert_cmpint(pipe(go), ==, 0);
  struct race_arg a = {hp.name, res[1], go[0]};
  pid_t pid[RACERS];
  for (unsigned i = 0; i < RACERS; i++)
    pid[i] = th_fork_start(race_child, &a, 0);
  close(res[1]);
  close(go[0]);
  char start[RACERS];
  memset(start, 'g', sizeof start);
  g_assert_cmpint(th_write_all(go[1], start, sizeof start), ==, 0);
  uint64_t hdl[ROUNDS] = {0}, creators[ROUNDS] = {0};
  for (unsigned i = 0; i < RACERS * ROUNDS; i++) {
    uint64_t msg[2];
    g_assert_cmpint(th_read_all(res[0], msg, sizeof msg), ==, 0);
    /* rounds arrive out of order across racers: match by handle */
    unsigned r = 0;
    for (; r < ROUNDS && hdl[r] != 0 && hdl[r] != msg[0]; r++)
      ;
    g_assert_cmpuint(r, <, ROUNDS);
    hdl[r] = msg[0];
    creators[r] += msg[1];
  }
  for (unsigned i = 0; i < RACERS; i++)
    th_assert_child_ok(th_wait(pid[i]));
  for (unsigned r = 0; r < ROUNDS; r++) {
    g_assert_cmpuint(creators[r], ==, 1);
    char key[32];
    snprintf(key, sizeof key, "shared-%u", r);
    g_assert_cmpuint(shmheap_lookup(hp.mem, key), ==, hdl[r]);
    g_assert_cmpuint(*(uint64_t *)shmheap_handle_to_ptr(hp.mem, hdl[r]), ==,
                     RACERS);
  }
  g_assert_cmpuint(verify_names(hp.mem), ==, ROUNDS);
  g_assert_cmpint(shmheap_check(hp.mem), ==, 0);
  close(res[0]);
  close(go[1]);
  th_watchdog_disarm();
  heap_close(&hp);
}

/* ------------------------------------------------------------------------ */

/* A scribbled directory is refused with EUCLEAN, and mended, works again. */
static void test_scribbled(void) {
  struct heap hp;
  th_heap_open(&hp, "names", 256 * KIB);
  shmheap_memory_handle mem = hp.mem;
  char *p = shmheap_alloc(mem, 64);
  uint64_t ph = shmheap_ptr_to_handle(mem, p);
  g_assert_cmpint(shmheap_publish(mem, "key", ph), ==, 0);
  uint64_t *names = (uint64_t *)(void *)(hp.base + SHH_HDR_NAMES);
  uint64_t d = *names;
  g_assert_cmpuint(d, !=, 0);
  uint64_t junk[] = {8, 24, 1u << 30, hp.len - 16, ph, d + 16, UINT64_MAX};
  for (size_t i = 0; i < G_N_ELEMENTS(junk); i++) {
    *names = junk[i];
    errno = 0;
    g_assert_cmpuint(shmheap_lookup(mem, "key"), ==, 0);
    g_assert_cmpint(errno, ==, EUCLEAN);
    g_assert_cmpint(shmheap_publish(mem, "k2", ph), ==, -1);
    g_assert_cmpint(errno, ==, EUCLEAN);
    g_assert_cmpint(shmheap_check(mem), ==, -1);
  }
  *names = d;
  /* the directory's fields: capacity, then one entry's fields */
  uint64_t *dir = (uint64_t *)(void *)(hp.base + d);
  enum { CAP = SHH_DIR_CAP / 8, COUNT = SHH_DIR_COUNT / 8 };
  enum { SLOTS = SHH_DIR_SLOTS / 8 };
  uint64_t cap = dir[CAP];
  dir[CAP] = cap * 1024;
  g_assert_cmpuint(shmheap_lookup(mem, "key"), ==, 0);
  g_assert_cmpint(errno, ==, EUCLEAN);
  dir[CAP] = cap;
  uint64_t e = 0;
  for (uint64_t i = 0; i < cap && e == 0; i++)
    if (dir[SLOTS + i] > SHH_SLOT_TOMB)
      e = dir[SLOTS + i];
  g_assert_cmpuint(e, !=, 0);
  uint64_t *ent = (uint64_t *)(void *)(hp.base + e);
  /* check word, handle, hash, length: each one verified */
  for (unsigned f = 0; f < SHH_ENT_KEY / 8; f++) {
    uint64_t keep = ent[f];
    uint64_t bad[] = {keep ^ 1, keep + 4096, 0, 1u << 20};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
      ent[f] = bad[i];
      errno = 0;
      g_assert_cmpuint(shmheap_lookup(mem, "key"), ==, 0);
      g_assert_cmpint(errno, ==, EUCLEAN);
      g_assert_cmpint(shmheap_unpublish(mem, "key"), ==, -1);
      g_assert_cmpint(errno, ==, EUCLEAN);
    }
    ent[f] = keep;
  }
  g_assert_cmpuint(shmheap_lookup(mem, "key"), ==, ph);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  /* the name erased from both tables, the counts made to agree: the object
   * is still flagged NAMED without a name, which check must find */
  uint64_t ki = cap, hi = cap;
  for (uint64_t i = 0; i < cap; i++) {
    if (dir[SLOTS + i] == e)
      ki = i;
    if (dir[SLOTS + cap + i] == e)
      hi = i;
  }
  g_assert_cmpuint(ki, <, cap);
  g_assert_cmpuint(hi, <, cap);
  dir[SLOTS + ki] = SHH_SLOT_TOMB;
  dir[SLOTS + cap + hi] = SHH_SLOT_TOMB;
  dir[COUNT]--;
  errno = 0;
  g_assert_cmpint(shmheap_check(mem), ==, -1);
  g_assert_cmpint(errno, ==, EUCLEAN);
  dir[SLOTS + ki] = e;
  dir[SLOTS + cap + hi] = e;
  dir[COUNT]++;
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  heap_close(&hp);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  unsetenv("SHMHEAP_CRASH_AT");
  th_add_func("/names/basic", test_basic);
  th_add_func("/names/free-drops", test_free_drops);
  th_add_func("/names/internal-blocks", test_internal_blocks);
  th_add_func("/names/freed-entry-reused", test_freed_entry_reused);
  th_add_func("/names/many", test_many);
  th_add_func("/names/full-churn", test_full_churn);
  th_add_func("/names/procs", test_procs);
  th_add_func("/names/race", test_race);
  th_add_func("/names/scribbled", test_scribbled);
  th_add_func("/names/kill-random", test_kill_random);
  th_add_func("/names/points", test_points);
  th_add_func("/names/points-directory", test_points_directory);
  return g_test_run();
}

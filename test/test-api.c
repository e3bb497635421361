/* /api/...: every point of the public contract that one process can check:
 * create/connect/destroy errors and their "nothing left behind" promise,
 * first-fit placement and its exact offsets, the refusal of bad pointers
 * with the heap unchanged, handles, calloc/realloc/usable_size, and the
 * introspection calls. Multi-process behaviour lives in test-procs.c, long
 * random traces against an oracle in test-oracle.c.
 */
#include "testutil.h"

#include <limits.h>
#include <shmheap.h>
#include <stdlib.h>

#include "layout.h"

static size_t page_size(void) {
  return (size_t)sysconf(_SC_PAGESIZE);
}

/* The block size carved for a request of SZ bytes. */
static uint64_t carve_for(size_t sz) {
  uint64_t n =
      ((uint64_t)sz + SHH_TAG + SHH_ALIGN - 1) & ~(uint64_t)(SHH_ALIGN - 1);
  return n < SHH_MIN_BLOCK ? SHH_MIN_BLOCK : n;
}

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                  */

static void heap_open(struct heap *h, size_t len) {
  th_heap_open(h, "api", len);
}

static uint64_t off_of(const struct heap *h, const void *p) {
  return (uint64_t)((const char *)p - h->base);
}

/* Everything observable about a heap's bookkeeping, to prove "unchanged". */
struct snapshot {
  struct shmheap_stats st;
  GArray *blocks; /* struct shmheap_block */
};

static int collect_block(const struct shmheap_block *b, void *arg) {
  g_array_append_val((GArray *)arg, *b);
  return 0;
}

static void snap_take(const struct heap *h, struct snapshot *s) {
  memset(&s->st, 0, sizeof s->st);
  g_assert_cmpint(shmheap_stats(h->mem, &s->st), ==, 0);
  s->blocks = g_array_new(FALSE, TRUE, sizeof(struct shmheap_block));
  g_assert_cmpint(shmheap_walk(h->mem, collect_block, s->blocks), ==, 0);
}

static void snap_free(struct snapshot *s) {
  g_array_free(s->blocks, TRUE);
}

static void snap_assert_equal(const struct snapshot *a,
                              const struct snapshot *b) {
  g_assert_cmpmem(&a->st, sizeof a->st, &b->st, sizeof b->st);
  g_assert_cmpuint(a->blocks->len, ==, b->blocks->len);
  for (guint i = 0; i < a->blocks->len; i++) {
    const struct shmheap_block *x =
        &g_array_index(a->blocks, struct shmheap_block, i);
    const struct shmheap_block *y =
        &g_array_index(b->blocks, struct shmheap_block, i);
    g_assert_cmpuint(x->offset, ==, y->offset);
    g_assert_cmpuint(x->size, ==, y->size);
    g_assert_cmpint(x->used, ==, y->used);
  }
}

/* Asserts the heap's consistency by every public means: check, and a walk
 * whose blocks tile [SHH_FIRST, len) with no two free neighbours and agree with
 * stats. */
static void assert_sane(const struct heap *h) {
  g_assert_cmpint(shmheap_check(h->mem), ==, 0);
  struct snapshot s;
  snap_take(h, &s);
  uint64_t at = SHH_FIRST, used = 0, freeb = 0, nused = 0, nfree = 0,
           largest = 0;
  int prev_free = 0;
  for (guint i = 0; i < s.blocks->len; i++) {
    const struct shmheap_block *b =
        &g_array_index(s.blocks, struct shmheap_block, i);
    g_assert_cmpuint(b->offset, ==, at);
    /* Multiples of 16, except the block that ends the heap (8 mod 16). */
    g_assert_cmpuint(b->size % 16, ==, b->offset + b->size == h->len ? 8 : 0);
    g_assert_cmpuint(b->size, >=, SHH_MIN_BLOCK);
    g_assert_true(b->used == 0 || b->used == 1);
    if (b->used) {
      used += b->size;
      nused++;
    } else {
      g_assert_false(prev_free);
      freeb += b->size;
      nfree++;
      if (b->size - SHH_TAG > largest)
        largest = b->size - SHH_TAG;
    }
    prev_free = !b->used;
    at += b->size;
  }
  g_assert_cmpuint(at, ==, h->len);
  g_assert_cmpuint(s.st.size, ==, h->len);
  g_assert_cmpuint(s.st.used_bytes, ==, used);
  g_assert_cmpuint(s.st.free_bytes, ==, freeb);
  g_assert_cmpuint(s.st.used_bytes + s.st.free_bytes + SHH_HEADER_SIZE, ==,
                   s.st.size);
  g_assert_cmpuint(s.st.used_blocks, ==, nused);
  g_assert_cmpuint(s.st.free_blocks, ==, nfree);
  g_assert_cmpuint(s.st.largest_free, ==, largest);
  g_assert_cmpuint(s.st.format_version, ==, SHMHEAP_FORMAT_VERSION);
  g_assert_cmpuint(s.st.reserved, ==, 0);
  snap_free(&s);
}

/* Asserts the heap is empty and fully merged: one free block, and the
 * largest request fits. */
static void assert_empty(const struct heap *h) {
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(h->mem, &st), ==, 0);
  g_assert_cmpuint(st.used_blocks, ==, 0);
  g_assert_cmpuint(st.free_blocks, ==, 1);
  g_assert_cmpuint(st.free_bytes, ==, h->len - SHH_HEADER_SIZE);
  g_assert_cmpuint(st.largest_free, ==, h->len - SHMHEAP_OVERHEAD);
  void *p = shmheap_alloc(h->mem, h->len - SHMHEAP_OVERHEAD);
  g_assert_true(p == h->base + SHMHEAP_OVERHEAD);
  shmheap_free(h->mem, p);
  g_assert_cmpint(shmheap_check(h->mem), ==, 0);
}

/* The size of the block whose user pointer is P, from a walk. */
struct find_arg {
  uint64_t off;
  uint64_t size;
  int used;
};

static int find_block(const struct shmheap_block *b, void *arg) {
  struct find_arg *f = arg;
  if (b->offset == f->off) {
    f->size = b->size;
    f->used = b->used;
    return 1;
  }
  return 0;
}

static uint64_t block_size_of(const struct heap *h, const void *p) {
  struct find_arg f = {off_of(h, p) - SHH_TAG, 0, -1};
  g_assert_cmpint(shmheap_walk(h->mem, find_block, &f), ==, 1);
  g_assert_cmpint(f.used, ==, 1);
  return f.size;
}

/* Fills the heap's remaining free space with blocks (largest first), so that
 * later allocations can only land in holes the test makes. Returns them in
 * an array to free later. */
static GPtrArray *fill_rest(const struct heap *h) {
  GPtrArray *a = g_ptr_array_new();
  for (;;) {
    struct shmheap_stats st;
    g_assert_cmpint(shmheap_stats(h->mem, &st), ==, 0);
    if (st.free_blocks == 0)
      break;
    void *p = shmheap_alloc(h->mem, st.largest_free);
    g_assert_nonnull(p);
    g_ptr_array_add(a, p);
  }
  return a;
}

static void free_all(const struct heap *h, GPtrArray *a) {
  for (guint i = 0; i < a->len; i++)
    shmheap_free(h->mem, a->pdata[i]);
  g_ptr_array_free(a, TRUE);
}

/* ------------------------------------------------------------------------ */
/* create                                                                    */

static void test_create_basic(void) {
  int fds = th_count_fds();
  struct heap h;
  heap_open(&h, 1 << 20);
  g_assert_true(th_shm_exists(h.name));
  g_assert_cmpuint((uintptr_t)h.base % page_size(), ==, 0);

  /* The object is exactly LEN bytes with mode 0600. */
  struct stat sb;
  int fd = shm_open(h.name, O_RDONLY, 0);
  g_assert_cmpint(fd, >=, 0);
  g_assert_cmpint(fstat(fd, &sb), ==, 0);
  close(fd);
  g_assert_cmpuint((uint64_t)sb.st_size, ==, h.len);
  g_assert_cmpuint(sb.st_mode & 07777, ==, 0600);
  /* Reserved at once: the blocks are allocated, not a sparse file. */
  g_assert_cmpuint((uint64_t)sb.st_blocks * 512, >=, h.len);

  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(h.mem, &st), ==, 0);
  g_assert_cmpuint(st.size, ==, h.len);
  g_assert_cmpuint(st.used_bytes, ==, 0);
  g_assert_cmpuint(st.free_bytes, ==, h.len - SHH_HEADER_SIZE);
  g_assert_cmpuint(st.used_blocks, ==, 0);
  g_assert_cmpuint(st.free_blocks, ==, 1);
  g_assert_cmpuint(st.largest_free, ==, h.len - SHMHEAP_OVERHEAD);
  g_assert_cmpuint(st.format_version, ==, SHMHEAP_FORMAT_VERSION);
  assert_sane(&h);
  heap_close(&h);
  g_assert_cmpint(th_count_fds(), ==, fds);
}

/* The smallest heap, one page, works and holds len - SHMHEAP_OVERHEAD. */
static void test_create_small(void) {
  struct heap h;
  heap_open(&h, page_size());
  assert_sane(&h);
  assert_empty(&h);
  heap_close(&h);
}

static void test_create_mode(void) {
  char name[96];
  th_shm_name(name, sizeof name, "api");
  mode_t old = umask(077);
  shmheap_memory_handle mem = shmheap_create_mode(name, 65536, 0660);
  umask(old);
  g_assert_nonnull(mem);
  struct stat sb;
  int fd = shm_open(name, O_RDONLY, 0);
  g_assert_cmpint(fd, >=, 0);
  g_assert_cmpint(fstat(fd, &sb), ==, 0);
  close(fd);
  g_assert_cmpuint(sb.st_mode & 07777, ==, 0660);
  shmheap_destroy(NULL, mem);
  g_assert_false(th_shm_exists(name));

  static const mode_t bad[] = {01000, 02600, 04600, 010600};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    errno = 0;
    g_assert_null(shmheap_create_mode(name, 65536, bad[i]));
    g_assert_cmpint(errno, ==, EINVAL);
    g_assert_false(th_shm_exists(name));
  }
}

/* EEXIST: a foreign object of that name keeps its size and bytes. */
static void test_create_eexist_foreign(void) {
  char name[96];
  th_shm_name(name, sizeof name, "api");
  int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
  g_assert_cmpint(fd, >=, 0);
  g_assert_cmpint(ftruncate(fd, 8192), ==, 0);
  unsigned char buf[8192], back[8192];
  th_fill(buf, sizeof buf, 42, 0);
  g_assert_cmpint(pwrite(fd, buf, sizeof buf, 0), ==, (ssize_t)sizeof buf);

  int fds = th_count_fds();
  errno = 0;
  g_assert_null(shmheap_create(name, 65536));
  g_assert_cmpint(errno, ==, EEXIST);
  g_assert_cmpint(th_count_fds(), ==, fds);

  struct stat sb;
  g_assert_cmpint(fstat(fd, &sb), ==, 0);
  g_assert_cmpint(sb.st_size, ==, 8192);
  g_assert_cmpint(pread(fd, back, sizeof back, 0), ==, (ssize_t)sizeof back);
  g_assert_cmpmem(buf, sizeof buf, back, sizeof back);
  close(fd);
  g_assert_cmpint(shm_unlink(name), ==, 0);
}

/* EEXIST: a live heap of that name keeps its objects and stays consistent. */
static void test_create_eexist_heap(void) {
  struct heap h;
  heap_open(&h, 1 << 16);
  char *p = shmheap_alloc(h.mem, 1000);
  g_assert_nonnull(p);
  th_fill(p, 1000, 7, off_of(&h, p));
  struct snapshot before, after;
  snap_take(&h, &before);

  errno = 0;
  g_assert_null(shmheap_create(h.name, 1 << 16));
  g_assert_cmpint(errno, ==, EEXIST);
  errno = 0;
  g_assert_null(shmheap_create(h.name, 1 << 20));
  g_assert_cmpint(errno, ==, EEXIST);

  snap_take(&h, &after);
  snap_assert_equal(&before, &after);
  snap_free(&before);
  snap_free(&after);
  g_assert_cmpint(th_check_fill(p, 1000, 7, off_of(&h, p)), ==, -1);
  /* And a fresh connection still sees it. */
  shmheap_memory_handle m2 = shmheap_connect(h.name);
  g_assert_nonnull(m2);
  char *p2 = shmheap_handle_to_ptr(m2, shmheap_ptr_to_handle(h.mem, p));
  g_assert_nonnull(p2);
  g_assert_cmpint(th_check_fill(p2, 1000, 7, off_of(&h, p)), ==, -1);
  shmheap_disconnect(m2);
  assert_sane(&h);
  heap_close(&h);
}

static void test_create_bad_len(void) {
  const size_t pg = page_size();
  const size_t bad[] = {0,
                        1,
                        80,
                        100,
                        pg - 1,
                        pg + 1,
                        pg + 16,
                        3 * pg / 2,
                        ((size_t)1 << 48) + pg,
                        (size_t)1 << 50,
                        SIZE_MAX,
                        SIZE_MAX - pg + 1};
  int fds = th_count_fds();
  char name[96];
  th_shm_name(name, sizeof name, "api");
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    errno = 0;
    g_assert_null(shmheap_create(name, bad[i]));
    g_assert_cmpint(errno, ==, EINVAL);
    g_assert_false(th_shm_exists(name));
  }
  g_assert_cmpint(th_count_fds(), ==, fds);
}

static void test_create_bad_name(void) {
  char longname[NAME_MAX + 3];
  char maxname[NAME_MAX + 2];
  char base[96];
  th_shm_name(base, sizeof base, "api");

  /* "/" + NAME_MAX + 1 characters: too long by one. */
  memset(longname, 'x', sizeof longname - 1);
  memcpy(longname, base, strlen(base));
  longname[sizeof longname - 1] = '\0';
  g_assert_cmpuint(strlen(longname), ==, NAME_MAX + 2);

  char noslash[128], twoslash[128], trailing[128];
  snprintf(noslash, sizeof noslash, "%s", base + 1);
  snprintf(twoslash, sizeof twoslash, "%s/x", base);
  snprintf(trailing, sizeof trailing, "%s/", base);
  const char *bad[] = {noslash, twoslash, trailing, "/",
                       "",      "//",     longname, NULL};
  int fds = th_count_fds();
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    errno = 0;
    g_assert_null(shmheap_create(bad[i], 65536));
    g_assert_cmpint(errno, ==, EINVAL);
    errno = 0;
    g_assert_null(shmheap_connect(bad[i]));
    g_assert_cmpint(errno, ==, EINVAL);
  }
  g_assert_false(th_shm_exists(base));
  g_assert_cmpint(th_count_fds(), ==, fds);

  /* Exactly NAME_MAX characters after the slash is allowed. */
  memset(maxname, 'y', sizeof maxname - 1);
  memcpy(maxname, base, strlen(base));
  maxname[sizeof maxname - 1] = '\0';
  g_assert_cmpuint(strlen(maxname), ==, NAME_MAX + 1);
  shmheap_memory_handle mem = shmheap_create(maxname, 65536);
  g_assert_nonnull(mem);
  shmheap_memory_handle m2 = shmheap_connect(maxname);
  g_assert_nonnull(m2);
  shmheap_disconnect(m2);
  shmheap_destroy(NULL, mem);
  g_assert_false(th_shm_exists(maxname));
}

/* ------------------------------------------------------------------------ */
/* connect, disconnect, destroy                                              */

static void test_connect_enoent(void) {
  char name[96];
  th_shm_name(name, sizeof name, "api");
  int fds = th_count_fds();
  errno = 0;
  g_assert_null(shmheap_connect(name));
  g_assert_cmpint(errno, ==, ENOENT);
  g_assert_false(th_shm_exists(name));
  g_assert_cmpint(th_count_fds(), ==, fds);
}

/* A foreign object of SIZE random bytes is refused with EINVAL or EPROTO. */
static void connect_garbage(size_t size, uint64_t seed) {
  char name[96];
  th_shm_name(name, sizeof name, "api");
  int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
  g_assert_cmpint(fd, >=, 0);
  g_assert_cmpint(ftruncate(fd, (off_t)size), ==, 0);
  if (size > 0) {
    unsigned char *buf = g_malloc(size);
    th_fill(buf, size, seed, 0);
    g_assert_cmpint(pwrite(fd, buf, size, 0), ==, (ssize_t)size);
    g_free(buf);
  }
  int fds = th_count_fds();
  errno = 0;
  g_assert_null(shmheap_connect(name));
  g_test_message("connect to %zu garbage bytes: errno %d (%s)", size, errno,
                 strerror(errno));
  g_assert_true(errno == EINVAL || errno == EPROTO);
  g_assert_cmpint(th_count_fds(), ==, fds);
  close(fd);
  /* destroy removes a name that is not a heap. */
  shmheap_destroy(name, NULL);
  g_assert_false(th_shm_exists(name));
}

static void test_connect_garbage(void) {
  connect_garbage(4096, 1);
  connect_garbage(65536, 2);
  connect_garbage(1 << 20, 3);
  connect_garbage(100, 4); /* not even a page */
}

/* A real heap whose object was resized behind its back: the header's length
 * no longer matches fstat, so connect refuses it. */
static void connect_resized(off_t newsize) {
  char name[96];
  th_shm_name(name, sizeof name, "api");
  shmheap_memory_handle mem = shmheap_create(name, 65536);
  g_assert_nonnull(mem);
  shmheap_disconnect(mem);
  int fd = shm_open(name, O_RDWR, 0);
  g_assert_cmpint(fd, >=, 0);
  g_assert_cmpint(ftruncate(fd, newsize), ==, 0);
  close(fd);
  int fds = th_count_fds();
  errno = 0;
  g_assert_null(shmheap_connect(name));
  g_test_message("connect to a heap resized to %ld: errno %d (%s)",
                 (long)newsize, errno, strerror(errno));
  g_assert_true(errno == EINVAL || errno == EPROTO);
  g_assert_cmpint(th_count_fds(), ==, fds);
  shmheap_destroy(name, NULL);
  g_assert_false(th_shm_exists(name));
}

static void test_connect_resized(void) {
  connect_resized(131072);
  connect_resized(32768);
  connect_resized(65536 + 4096);
  connect_resized(40); /* smaller than the header */
}

/* Connecting twice in one process gives two mappings at different bases
 * that see the same bytes through the same handles. */
static void test_connect_twice(void) {
  struct heap h;
  heap_open(&h, 1 << 16);
  shmheap_memory_handle m2 = shmheap_connect(h.name);
  g_assert_nonnull(m2);
  char *b2 = shmheap_underlying(m2);
  g_assert_true(b2 != h.base);

  char *p = shmheap_alloc(h.mem, 500);
  g_assert_nonnull(p);
  th_fill(p, 500, 11, off_of(&h, p));
  shmheap_object_handle hd = shmheap_ptr_to_handle(h.mem, p);
  char *q = shmheap_handle_to_ptr(m2, hd);
  g_assert_true(q == b2 + hd);
  g_assert_cmpint(th_check_fill(q, 500, 11, off_of(&h, p)), ==, -1);
  /* Free through the other connection. */
  shmheap_free(m2, q);
  assert_empty(&h);
  shmheap_disconnect(m2);
  heap_close(&h);
}

static void test_destroy(void) {
  /* destroy(NULL, mem): the name it was created with. */
  struct heap h;
  heap_open(&h, 65536);
  heap_close(&h);

  /* destroy(name, NULL) removes the name; a connected process keeps using
   * its mapping. */
  heap_open(&h, 65536);
  char *p = shmheap_alloc(h.mem, 100);
  g_assert_nonnull(p);
  shmheap_destroy(h.name, NULL);
  g_assert_false(th_shm_exists(h.name));
  errno = 0;
  g_assert_null(shmheap_connect(h.name));
  g_assert_cmpint(errno, ==, ENOENT);
  memset(p, 0xab, 100);
  shmheap_free(h.mem, p);
  g_assert_cmpint(shmheap_check(h.mem), ==, 0);
  shmheap_disconnect(h.mem);

  /* destroy(NULL, mem) of a connection made with connect removes the name
   * it was connected with; the creator's mapping survives. */
  heap_open(&h, 65536);
  shmheap_memory_handle m2 = shmheap_connect(h.name);
  g_assert_nonnull(m2);
  shmheap_destroy(NULL, m2);
  g_assert_false(th_shm_exists(h.name));
  g_assert_cmpint(shmheap_check(h.mem), ==, 0);
  shmheap_disconnect(h.mem);

  /* disconnect leaves the name; destroy of a missing name says ENOENT. */
  heap_open(&h, 65536);
  shmheap_disconnect(h.mem);
  g_assert_true(th_shm_exists(h.name));
  h.mem = shmheap_connect(h.name);
  g_assert_nonnull(h.mem);
  heap_close(&h);
  errno = 0;
  shmheap_destroy(h.name, NULL);
  g_assert_cmpint(errno, ==, ENOENT);

  /* An invalid name is refused without touching anything. */
  errno = 0;
  shmheap_destroy("no-slash", NULL);
  g_assert_cmpint(errno, ==, EINVAL);
  errno = 0;
  shmheap_destroy("/a/b", NULL);
  g_assert_cmpint(errno, ==, EINVAL);

  /* NULL no-ops. */
  shmheap_destroy(NULL, NULL);
  shmheap_disconnect(NULL);
}

/* Cycles of create/connect/destroy leave no file descriptor behind. */
static void test_no_fd_leak(void) {
  int fds = th_count_fds();
  for (int i = 0; i < 20; i++) {
    struct heap h;
    heap_open(&h, 65536);
    shmheap_memory_handle m2 = shmheap_connect(h.name);
    g_assert_nonnull(m2);
    void *p = shmheap_alloc(m2, 10);
    g_assert_nonnull(p);
    shmheap_free(h.mem,
                 shmheap_handle_to_ptr(h.mem, shmheap_ptr_to_handle(m2, p)));
    shmheap_disconnect(m2);
    heap_close(&h);
  }
  g_assert_cmpint(th_count_fds(), ==, fds);
}

static void test_underlying(void) {
  struct heap h;
  heap_open(&h, 65536);
  g_assert_true(shmheap_underlying(h.mem) == h.base);
  /* The mapping covers [base, base + len): the last byte is writable. */
  char *p = shmheap_alloc(h.mem, 100);
  g_assert_nonnull(p);
  g_assert_true(p + 100 <= h.base + h.len);
  errno = 0;
  g_assert_null(shmheap_underlying(NULL));
  g_assert_cmpint(errno, ==, EINVAL);
  shmheap_free(h.mem, p);
  heap_close(&h);
}

static int count_cb(const struct shmheap_block *b, void *arg) {
  (void)b;
  (*(int *)arg)++;
  return 0;
}

/* Every call given a NULL heap fails with EINVAL (or is a no-op) and never
 * crashes. */
static void test_null_heap(void) {
  int x = 0;
  struct shmheap_stats st;
  errno = 0;
  g_assert_null(shmheap_alloc(NULL, 16));
  g_assert_cmpint(errno, ==, EINVAL);
  errno = 0;
  g_assert_null(shmheap_calloc(NULL, 1, 16));
  g_assert_cmpint(errno, ==, EINVAL);
  errno = 0;
  g_assert_null(shmheap_realloc(NULL, NULL, 16));
  g_assert_cmpint(errno, ==, EINVAL);
  errno = 0;
  g_assert_null(shmheap_realloc(NULL, &x, 16));
  g_assert_cmpint(errno, ==, EINVAL);
  shmheap_free(NULL, &x); /* undocumented: must merely not crash */
  shmheap_free(NULL, NULL);
  g_assert_cmpuint(shmheap_usable_size(NULL, &x), ==, 0);
  g_assert_cmpuint(shmheap_ptr_to_handle(NULL, &x), ==, SHMHEAP_NULL_HANDLE);
  g_assert_null(shmheap_handle_to_ptr(NULL, SHMHEAP_OVERHEAD));
  errno = 0;
  g_assert_cmpint(shmheap_check(NULL), ==, -1);
  g_assert_cmpint(errno, ==, EINVAL);
  errno = 0;
  g_assert_cmpint(shmheap_stats(NULL, &st), ==, -1);
  g_assert_cmpint(errno, ==, EINVAL);
  errno = 0;
  g_assert_cmpint(shmheap_walk(NULL, count_cb, &x), ==, -1);
  g_assert_cmpint(errno, ==, EINVAL);

  struct heap h;
  heap_open(&h, 65536);
  errno = 0;
  g_assert_cmpint(shmheap_stats(h.mem, NULL), ==, -1);
  g_assert_cmpint(errno, ==, EINVAL);
  errno = 0;
  g_assert_cmpint(shmheap_walk(h.mem, NULL, NULL), ==, -1);
  g_assert_cmpint(errno, ==, EINVAL);
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* alloc                                                                     */

/* Every size from 0 to 4100 and a spread of larger ones: 16-byte aligned,
 * exact block size, usable_size >= request, whole usable area writable. */
static void test_alloc_alignment(void) {
  struct heap h;
  heap_open(&h, 16 << 20);
  GPtrArray *keep = g_ptr_array_new();
  size_t sizes[4200];
  size_t n = 0;
  for (size_t s = 0; s <= 4100; s++)
    sizes[n++] = s;
  for (size_t s = 4101; s < (8 << 20); s = s * 3 / 2 + 7)
    sizes[n++] = s;
  for (size_t i = 0; i < n; i++) {
    size_t sz = sizes[i];
    char *p = shmheap_alloc(h.mem, sz);
    g_assert_nonnull(p);
    g_assert_cmpuint((uintptr_t)p % SHMHEAP_ALIGNMENT, ==, 0);
    size_t us = shmheap_usable_size(h.mem, p);
    g_assert_cmpuint(us, >=, sz);
    memset(p, 0x5a, us);
    if (i % 7 == 0 && sz < 100000)
      g_ptr_array_add(keep, p);
    else
      shmheap_free(h.mem, p);
  }
  assert_sane(&h);
  free_all(&h, keep);
  assert_empty(&h);
  g_test_message("alignment: %zu sizes from 0 to %zu, all %d-byte aligned", n,
                 sizes[n - 1], SHMHEAP_ALIGNMENT);
  heap_close(&h);
}

/* On an empty heap alloc(len - SHMHEAP_OVERHEAD) succeeds (at base +
 * SHMHEAP_OVERHEAD) and one byte more fails with ENOMEM, for several heap
 * sizes. */
static void test_alloc_whole(void) {
  const size_t lens[] = {page_size(), 65536, 1 << 20, 3 * page_size()};
  for (size_t i = 0; i < G_N_ELEMENTS(lens); i++) {
    struct heap h;
    heap_open(&h, lens[i]);
    struct snapshot before, after;
    snap_take(&h, &before);
    errno = 0;
    g_assert_null(shmheap_alloc(h.mem, h.len - SHMHEAP_OVERHEAD + 1));
    g_assert_cmpint(errno, ==, ENOMEM);
    snap_take(&h, &after);
    snap_assert_equal(&before, &after);
    snap_free(&after);

    char *p = shmheap_alloc(h.mem, h.len - SHMHEAP_OVERHEAD);
    g_assert_true(p == h.base + SHMHEAP_OVERHEAD);
    g_assert_cmpuint(shmheap_usable_size(h.mem, p), ==,
                     h.len - SHMHEAP_OVERHEAD);
    memset(p, 0xee, h.len - SHMHEAP_OVERHEAD);
    /* The heap is full: even alloc(0) fails. */
    errno = 0;
    g_assert_null(shmheap_alloc(h.mem, 0));
    g_assert_cmpint(errno, ==, ENOMEM);
    assert_sane(&h);
    shmheap_free(h.mem, p);
    snap_take(&h, &after);
    snap_assert_equal(&before, &after);
    snap_free(&after);
    snap_free(&before);
    heap_close(&h);
  }
}

/* Sizes whose arithmetic would overflow, or larger than the heap: ENOMEM,
 * heap unchanged. */
static void test_alloc_absurd(void) {
  struct heap h;
  heap_open(&h, 1 << 20);
  char *live = shmheap_alloc(h.mem, 1000);
  g_assert_nonnull(live);
  struct snapshot before, after;
  snap_take(&h, &before);
  const size_t bad[] = {
      SIZE_MAX,        SIZE_MAX - 1,  SIZE_MAX - 7,
      SIZE_MAX - 8,    SIZE_MAX - 15, SIZE_MAX - 16,
      SIZE_MAX - 63,   SIZE_MAX / 2,  SIZE_MAX / 2 + 1,
      (size_t)1 << 48, h.len,         h.len - SHMHEAP_OVERHEAD + 1,
      h.len - 1000};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    errno = 0;
    g_assert_null(shmheap_alloc(h.mem, bad[i]));
    g_assert_cmpint(errno, ==, ENOMEM);
    errno = 0;
    g_assert_null(shmheap_calloc(h.mem, 1, bad[i]));
    g_assert_cmpint(errno, ==, ENOMEM);
  }
  snap_take(&h, &after);
  snap_assert_equal(&before, &after);
  snap_free(&after);
  snap_free(&before);
  shmheap_free(h.mem, live);
  assert_empty(&h);
  heap_close(&h);
}

/* alloc(0) returns distinct, freeable pointers. */
static void test_alloc_zero(void) {
  struct heap h;
  heap_open(&h, 65536);
  void *p[100];
  for (int i = 0; i < 100; i++) {
    p[i] = shmheap_alloc(h.mem, 0);
    g_assert_nonnull(p[i]);
    g_assert_cmpuint((uintptr_t)p[i] % SHMHEAP_ALIGNMENT, ==, 0);
    for (int j = 0; j < i; j++)
      g_assert_true(p[i] != p[j]);
    g_assert_cmpuint(block_size_of(&h, p[i]), ==, SHH_MIN_BLOCK);
  }
  assert_sane(&h);
  for (int i = 0; i < 100; i += 2)
    shmheap_free(h.mem, p[i]);
  for (int i = 1; i < 100; i += 2)
    shmheap_free(h.mem, p[i]);
  assert_empty(&h);
  heap_close(&h);
}

/* The exact placement rule on an empty heap: the request is carved from the
 * head of the one free block, so blocks follow each other upwards from 72. */
static void test_alloc_placement(void) {
  struct heap h;
  heap_open(&h, 1 << 20);
  uint64_t at = SHH_FIRST;
  const size_t sizes[] = {1, 8, 24, 40, 41, 56, 57, 100, 1000, 4096, 65536};
  void *p[G_N_ELEMENTS(sizes)];
  for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
    p[i] = shmheap_alloc(h.mem, sizes[i]);
    g_assert_nonnull(p[i]);
    g_assert_cmpuint(off_of(&h, p[i]), ==, at + SHH_TAG);
    g_assert_cmpuint(block_size_of(&h, p[i]), ==, carve_for(sizes[i]));
    g_assert_cmpuint(shmheap_usable_size(h.mem, p[i]), ==,
                     carve_for(sizes[i]) - SHH_TAG);
    at += carve_for(sizes[i]);
  }
  assert_sane(&h);
  for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++)
    shmheap_free(h.mem, p[i]);
  assert_empty(&h);
  heap_close(&h);
}

/* First fit picks the lowest-addressed hole that fits, carves the request
 * from its head when the rest is >= 48 bytes, hands it out whole otherwise. */
static void test_alloc_first_fit(void) {
  struct heap h;
  heap_open(&h, 65536);
  /* Ten 112-byte blocks from 72 upwards. */
  char *b[10];
  for (int i = 0; i < 10; i++) {
    b[i] = shmheap_alloc(h.mem, 100);
    g_assert_nonnull(b[i]);
    g_assert_true(b[i] == h.base + SHMHEAP_OVERHEAD + 112 * i);
  }
  GPtrArray *rest = fill_rest(&h);
  errno = 0;
  g_assert_null(shmheap_alloc(h.mem, 0));
  g_assert_cmpint(errno, ==, ENOMEM);

  /* Holes: b[7] (112 bytes) and b[3] (112 bytes, lower address). */
  shmheap_free(h.mem, b[7]);
  shmheap_free(h.mem, b[3]);
  void *x = shmheap_alloc(h.mem, 100);
  g_assert_true(x == b[3]);
  void *y = shmheap_alloc(h.mem, 100);
  g_assert_true(y == b[7]);
  errno = 0;
  g_assert_null(shmheap_alloc(h.mem, 1));
  g_assert_cmpint(errno, ==, ENOMEM);

  /* Holes: b[1] (112, lowest), b[5]+b[6] merged (224), b[8] (112). */
  shmheap_free(h.mem, b[8]);
  shmheap_free(h.mem, b[6]);
  shmheap_free(h.mem, b[5]);
  shmheap_free(h.mem, b[1]);
  assert_sane(&h);
  /* A request too big for the lowest hole goes to the next that fits:
   * 150 bytes (carve 160) from the 224-byte hole, 64 left: head carve. */
  char *big = shmheap_alloc(h.mem, 150);
  g_assert_true(big == b[5]);
  /* 50 bytes (carve 64) in b[1]'s hole: 112 - 64 = 48 left, split. */
  char *s1 = shmheap_alloc(h.mem, 50);
  g_assert_true(s1 == b[1]);
  /* The 48-byte rest of b[1] is now the lowest hole: alloc(40) takes it
   * whole; the next one goes to the 64-byte rest of the 224 (16 would be
   * left: whole, usable 56); 100 bytes then only fit in b[8]. */
  char *s2 = shmheap_alloc(h.mem, 40);
  g_assert_true(s2 == b[1] + 64);
  char *s3 = shmheap_alloc(h.mem, 40);
  g_assert_true(s3 == b[5] + 160);
  g_assert_cmpuint(shmheap_usable_size(h.mem, s3), ==, 64 - SHH_TAG);
  /* The exact fit rule: a 112-byte block holds 104 bytes, not 105. */
  errno = 0;
  g_assert_null(shmheap_alloc(h.mem, 105));
  g_assert_cmpint(errno, ==, ENOMEM);
  char *s4 = shmheap_alloc(h.mem, 104);
  g_assert_true(s4 == b[8]);
  errno = 0;
  g_assert_null(shmheap_alloc(h.mem, 0));
  g_assert_cmpint(errno, ==, ENOMEM);
  assert_sane(&h);

  void *all[] = {x, y, big, s1, s2, s3, s4, b[0], b[2], b[4], b[9]};
  for (size_t i = 0; i < G_N_ELEMENTS(all); i++)
    shmheap_free(h.mem, all[i]);
  free_all(&h, rest);
  assert_empty(&h);
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* free                                                                      */

/* Frees P (expected bad) and asserts errno ERR and an unchanged heap. */
static void assert_free_refused(const struct heap *h, void *p, int err) {
  struct snapshot before, after;
  snap_take(h, &before);
  errno = 0;
  shmheap_free(h->mem, p);
  g_assert_cmpint(errno, ==, err);
  snap_take(h, &after);
  snap_assert_equal(&before, &after);
  snap_free(&before);
  snap_free(&after);
  g_assert_cmpint(shmheap_check(h->mem), ==, 0);
}

static void test_free_null(void) {
  struct heap h;
  heap_open(&h, 65536);
  void *p = shmheap_alloc(h.mem, 10);
  struct snapshot before, after;
  snap_take(&h, &before);
  shmheap_free(h.mem, NULL);
  snap_take(&h, &after);
  snap_assert_equal(&before, &after);
  snap_free(&before);
  snap_free(&after);
  shmheap_free(h.mem, p);
  assert_empty(&h);
  heap_close(&h);
}

static void test_free_bad(void) {
  struct heap h;
  heap_open(&h, 1 << 16);
  char *a = shmheap_alloc(h.mem, 200);
  char *b = shmheap_alloc(h.mem, 200);
  char *c = shmheap_alloc(h.mem, 200);
  char *z = shmheap_calloc(h.mem, 1, 512);
  g_assert_nonnull(a);
  g_assert_nonnull(b);
  g_assert_nonnull(c);
  g_assert_nonnull(z);
  th_fill(a, 200, 1, off_of(&h, a));
  th_fill(c, 200, 3, off_of(&h, c));
  shmheap_free(h.mem, b); /* b: a free block between two live ones */

  int stack_var = 0;
  char *heap_var = g_malloc(64);
  /* Double free, and a free of a pointer in a free block. */
  assert_free_refused(&h, b, EINVAL);
  assert_free_refused(&h, b + 16, EINVAL);
  /* Interior and misaligned pointers into live blocks. */
  for (int d = 1; d < 200; d += (d < 20 ? 1 : 13)) {
    assert_free_refused(&h, a + d, EINVAL);
    assert_free_refused(&h, c + d, EINVAL);
  }
  /* Interior pointers into a zeroed block (the would-be tag reads 0). */
  for (int d = 16; d < 512; d += 16)
    assert_free_refused(&h, z + d, EINVAL);
  /* Pointers into the header, the first tag, past the end, elsewhere. */
  assert_free_refused(&h, h.base, EINVAL);
  assert_free_refused(&h, h.base + 8, EINVAL);
  assert_free_refused(&h, h.base + 64, EINVAL);
  assert_free_refused(&h, h.base + SHH_FIRST, EINVAL);
  assert_free_refused(&h, z + carve_for(512), EINVAL); /* the free rest */
  assert_free_refused(&h, h.base + h.len, EINVAL);
  assert_free_refused(&h, h.base + h.len + 16, EINVAL);
  assert_free_refused(&h, h.base - 16, EINVAL);
  assert_free_refused(&h, &stack_var, EINVAL);
  assert_free_refused(&h, heap_var, EINVAL);
  assert_free_refused(&h, (void *)(uintptr_t)16, EINVAL);
  assert_free_refused(&h, (void *)UINTPTR_MAX, EINVAL);
  assert_free_refused(&h, (void *)(UINTPTR_MAX - 15), EINVAL);
  g_free(heap_var);

  /* The live blocks are untouched and still free normally. */
  g_assert_cmpint(th_check_fill(a, 200, 1, off_of(&h, a)), ==, -1);
  g_assert_cmpint(th_check_fill(c, 200, 3, off_of(&h, c)), ==, -1);
  for (int i = 0; i < 512; i++)
    g_assert_cmpint(z[i], ==, 0);
  shmheap_free(h.mem, a);
  shmheap_free(h.mem, c);
  shmheap_free(h.mem, z);
  /* Double free after full merging: still refused. */
  assert_free_refused(&h, a, EINVAL);
  assert_free_refused(&h, c, EINVAL);
  assert_empty(&h);
  heap_close(&h);
}

/* A pointer from another heap is outside this one. */
static void test_free_other_heap(void) {
  struct heap h1, h2;
  heap_open(&h1, 65536);
  heap_open(&h2, 65536);
  void *p = shmheap_alloc(h2.mem, 100);
  g_assert_nonnull(p);
  void *q = shmheap_alloc(h1.mem, 100);
  g_assert_nonnull(q);
  assert_free_refused(&h1, p, EINVAL);
  errno = 0;
  g_assert_null(shmheap_realloc(h1.mem, p, 10));
  g_assert_cmpint(errno, ==, EINVAL);
  errno = 0;
  g_assert_cmpuint(shmheap_usable_size(h1.mem, p), ==, 0);
  g_assert_cmpint(errno, ==, EINVAL);
  shmheap_free(h2.mem, p);
  shmheap_free(h1.mem, q);
  assert_empty(&h1);
  assert_empty(&h2);
  heap_close(&h1);
  heap_close(&h2);
}

/* After freeing everything in any order the heap is one block again. */
static void test_free_merge(void) {
  struct heap h;
  heap_open(&h, 1 << 20);
  enum { N = 300 };
  void *p[N];
  uint64_t rng = 0x1234;
  for (int order = 0; order < 5; order++) {
    for (int i = 0; i < N; i++) {
      p[i] = shmheap_alloc(h.mem, (size_t)th_rand_below(&rng, 2000));
      g_assert_nonnull(p[i]);
    }
    int idx[N];
    for (int i = 0; i < N; i++)
      idx[i] = i;
    switch (order) {
    case 0: /* allocation order (high addresses first) */
      break;
    case 1: /* reverse */
      for (int i = 0; i < N; i++)
        idx[i] = N - 1 - i;
      break;
    case 2: /* evens then odds: every free has live neighbours, then two */
      for (int i = 0; i < N; i++)
        idx[i] = i < N / 2 ? 2 * i : 2 * (i - N / 2) + 1;
      break;
    default: /* shuffled */
      for (int i = N - 1; i > 0; i--) {
        int j = (int)th_rand_below(&rng, (uint64_t)i + 1);
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
      }
    }
    for (int i = 0; i < N; i++) {
      shmheap_free(h.mem, p[idx[i]]);
      if (i % 50 == 0)
        assert_sane(&h);
    }
    assert_empty(&h);
  }
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* handles                                                                   */

static void test_handles(void) {
  struct heap h;
  heap_open(&h, 65536);
  char *p = shmheap_alloc(h.mem, 1000);
  g_assert_nonnull(p);
  shmheap_object_handle hd = shmheap_ptr_to_handle(h.mem, p);
  g_assert_cmpuint(hd, ==, off_of(&h, p));
  g_assert_cmpuint(hd, !=, SHMHEAP_NULL_HANDLE);
  g_assert_true(shmheap_handle_to_ptr(h.mem, hd) == p);
  /* Interior pointers name fields. */
  for (int d = 0; d < 1000; d += 37) {
    shmheap_object_handle f = shmheap_ptr_to_handle(h.mem, p + d);
    g_assert_cmpuint(f, ==, hd + (uint64_t)d);
    g_assert_true(shmheap_handle_to_ptr(h.mem, f) == p + d);
  }
  /* The data area is [SHMHEAP_OVERHEAD, len). */
  g_assert_cmpuint(shmheap_ptr_to_handle(h.mem, NULL), ==, SHMHEAP_NULL_HANDLE);
  g_assert_cmpuint(shmheap_ptr_to_handle(h.mem, h.base), ==,
                   SHMHEAP_NULL_HANDLE);
  g_assert_cmpuint(shmheap_ptr_to_handle(h.mem, h.base + SHMHEAP_OVERHEAD - 1),
                   ==, SHMHEAP_NULL_HANDLE);
  g_assert_cmpuint(shmheap_ptr_to_handle(h.mem, h.base + SHMHEAP_OVERHEAD), ==,
                   SHMHEAP_OVERHEAD);
  g_assert_cmpuint(shmheap_ptr_to_handle(h.mem, h.base + h.len - 1), ==,
                   h.len - 1);
  g_assert_cmpuint(shmheap_ptr_to_handle(h.mem, h.base + h.len), ==,
                   SHMHEAP_NULL_HANDLE);
  g_assert_cmpuint(shmheap_ptr_to_handle(h.mem, h.base - 1), ==,
                   SHMHEAP_NULL_HANDLE);
  int stack_var;
  g_assert_cmpuint(shmheap_ptr_to_handle(h.mem, &stack_var), ==,
                   SHMHEAP_NULL_HANDLE);
  g_assert_cmpuint(shmheap_ptr_to_handle(h.mem, (void *)UINTPTR_MAX), ==,
                   SHMHEAP_NULL_HANDLE);

  g_assert_null(shmheap_handle_to_ptr(h.mem, SHMHEAP_NULL_HANDLE));
  const shmheap_object_handle bad[] = {1,
                                       8,
                                       SHH_FIRST,
                                       SHMHEAP_OVERHEAD - 1,
                                       h.len,
                                       h.len + 1,
                                       h.len * 2,
                                       (uint64_t)1 << 48,
                                       UINT64_MAX,
                                       UINT64_MAX - (SHMHEAP_OVERHEAD - 1),
                                       (uint64_t)INT64_MAX + 1};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
    g_assert_null(shmheap_handle_to_ptr(h.mem, bad[i]));
  g_assert_true(shmheap_handle_to_ptr(h.mem, SHMHEAP_OVERHEAD) ==
                h.base + SHMHEAP_OVERHEAD);
  g_assert_true(shmheap_handle_to_ptr(h.mem, h.len - 1) == h.base + h.len - 1);
  shmheap_free(h.mem, p);
  heap_close(&h);
}

/* Handles stored inside the heap link objects: a list built and walked by
 * handles only. */
static void test_handles_linked(void) {
  struct heap h;
  heap_open(&h, 1 << 20);
  struct node {
    shmheap_object_handle next;
    uint64_t value;
  };
  shmheap_object_handle head = SHMHEAP_NULL_HANDLE;
  for (uint64_t i = 0; i < 1000; i++) {
    struct node *n = shmheap_alloc(h.mem, sizeof *n);
    g_assert_nonnull(n);
    n->value = i;
    n->next = head;
    head = shmheap_ptr_to_handle(h.mem, n);
  }
  uint64_t expect = 1000;
  while (head != SHMHEAP_NULL_HANDLE) {
    struct node *n = shmheap_handle_to_ptr(h.mem, head);
    g_assert_nonnull(n);
    g_assert_cmpuint(n->value, ==, --expect);
    head = n->next;
    shmheap_free(h.mem, n);
  }
  g_assert_cmpuint(expect, ==, 0);
  assert_empty(&h);
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* calloc                                                                    */

static void test_calloc(void) {
  struct heap h;
  heap_open(&h, 1 << 20);
  /* Dirty everything, tags included (many small blocks, then free). */
  GPtrArray *a = g_ptr_array_new();
  void *p;
  while ((p = shmheap_alloc(h.mem, 200)) != NULL) {
    memset(p, 0xa5, 200);
    g_ptr_array_add(a, p);
  }
  free_all(&h, a);
  assert_empty(&h);

  const size_t shapes[][2] = {{1, 1},    {3, 7},     {100, 10}, {1, 5000},
                              {4096, 8}, {7, 12345}, {1, 40},   {40, 1}};
  GPtrArray *live = g_ptr_array_new();
  for (size_t i = 0; i < G_N_ELEMENTS(shapes); i++) {
    size_t n = shapes[i][0], sz = shapes[i][1];
    unsigned char *q = shmheap_calloc(h.mem, n, sz);
    g_assert_nonnull(q);
    g_assert_cmpuint((uintptr_t)q % SHMHEAP_ALIGNMENT, ==, 0);
    size_t us = shmheap_usable_size(h.mem, q);
    g_assert_cmpuint(us, >=, n * sz);
    for (size_t k = 0; k < n * sz; k++)
      if (q[k] != 0)
        g_error("calloc(%zu, %zu): byte %zu is 0x%02x", n, sz, k, q[k]);
    memset(q, 0xa5, us);
    g_ptr_array_add(live, q);
  }
  free_all(&h, live);

  /* Whole heap: the freed, dirty tags must be zeroed too. */
  unsigned char *w = shmheap_calloc(h.mem, 1, h.len - SHMHEAP_OVERHEAD);
  g_assert_nonnull(w);
  for (size_t k = 0; k < h.len - SHMHEAP_OVERHEAD; k++)
    if (w[k] != 0)
      g_error("calloc(whole heap): byte %zu is 0x%02x", k, w[k]);
  shmheap_free(h.mem, w);

  /* Zero elements or zero size: a unique freeable pointer. */
  void *z1 = shmheap_calloc(h.mem, 0, 10);
  void *z2 = shmheap_calloc(h.mem, 10, 0);
  g_assert_nonnull(z1);
  g_assert_nonnull(z2);
  g_assert_true(z1 != z2);
  shmheap_free(h.mem, z1);
  shmheap_free(h.mem, z2);

  /* Overflowing products: ENOMEM, heap unchanged. */
  struct snapshot before, after;
  snap_take(&h, &before);
  const size_t ovf[][2] = {{SIZE_MAX, 2},
                           {2, SIZE_MAX},
                           {SIZE_MAX / 2 + 1, 2},
                           {(size_t)1 << 32, (size_t)1 << 32},
                           {SIZE_MAX, SIZE_MAX},
                           {((size_t)1 << 63) + 1, 2},
                           {(size_t)1 << 33, (size_t)1 << 31}};
  for (size_t i = 0; i < G_N_ELEMENTS(ovf); i++) {
    errno = 0;
    g_assert_null(shmheap_calloc(h.mem, ovf[i][0], ovf[i][1]));
    g_assert_cmpint(errno, ==, ENOMEM);
  }
  /* A product that wraps to a small number must not succeed. */
  errno = 0;
  g_assert_null(shmheap_calloc(h.mem, ((size_t)1 << 63) + 8, 2)); /* = 16 */
  g_assert_cmpint(errno, ==, ENOMEM);
  snap_take(&h, &after);
  snap_assert_equal(&before, &after);
  snap_free(&before);
  snap_free(&after);
  assert_empty(&h);
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* realloc                                                                   */

static void test_realloc_null(void) {
  struct heap h;
  heap_open(&h, 65536);
  char *p = shmheap_realloc(h.mem, NULL, 100);
  g_assert_nonnull(p);
  g_assert_true(p == h.base + SHMHEAP_OVERHEAD);
  g_assert_cmpuint(block_size_of(&h, p), ==, carve_for(100));
  shmheap_free(h.mem, p);
  errno = 0;
  g_assert_null(shmheap_realloc(h.mem, NULL, h.len));
  g_assert_cmpint(errno, ==, ENOMEM);
  assert_empty(&h);
  heap_close(&h);
}

/* Shrinks the heap-wide block step by step down to the minimum; returns it,
 * still allocated. */
static char *shrink_whole_block(const struct heap *h) {
  const size_t whole = h->len - SHMHEAP_OVERHEAD;
  char *p = shmheap_alloc(h->mem, whole);
  g_assert_true(p == h->base + SHMHEAP_OVERHEAD);
  th_fill(p, whole, 5, 80);

  /* Shrink: same pointer, contents kept, tail is a free block. */
  char *q = shmheap_realloc(h->mem, p, 1000);
  g_assert_true(q == p);
  g_assert_cmpuint(block_size_of(h, p), ==, carve_for(1000));
  g_assert_cmpint(th_check_fill(p, 1000, 5, 80), ==, -1);
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(h->mem, &st), ==, 0);
  g_assert_cmpuint(st.used_bytes, ==, carve_for(1000));
  g_assert_cmpuint(st.free_blocks, ==, 1);
  g_assert_cmpuint(st.largest_free, ==,
                   h->len - SHH_FIRST - carve_for(1000) - SHH_TAG);
  assert_sane(h);
  /* The tail is reusable: all of it, right after the block. */
  char *t = shmheap_alloc(h->mem, st.largest_free);
  g_assert_true(t == p + carve_for(1000));
  shmheap_free(h->mem, t);

  /* Shrinking further merges the new tail with the free block after it. */
  q = shmheap_realloc(h->mem, p, 100);
  g_assert_true(q == p);
  g_assert_cmpint(th_check_fill(p, 100, 5, 80), ==, -1);
  g_assert_cmpint(shmheap_stats(h->mem, &st), ==, 0);
  g_assert_cmpuint(st.used_bytes, ==, carve_for(100));
  g_assert_cmpuint(st.free_blocks, ==, 1);
  assert_sane(h);

  /* Leftover < 48 stays in the block: 112 -> need 96 leaves 16. */
  q = shmheap_realloc(h->mem, p, 80);
  g_assert_true(q == p);
  g_assert_cmpuint(block_size_of(h, p), ==, carve_for(100));
  g_assert_cmpint(th_check_fill(p, 80, 5, 80), ==, -1);

  /* realloc(p, 0) shrinks to the minimum block and keeps it. */
  q = shmheap_realloc(h->mem, p, 0);
  g_assert_true(q == p);
  g_assert_cmpuint(block_size_of(h, p), ==, SHH_MIN_BLOCK);
  g_assert_cmpint(th_check_fill(p, 40, 5, 80), ==, -1);
  g_assert_cmpint(shmheap_stats(h->mem, &st), ==, 0);
  g_assert_cmpuint(st.used_blocks, ==, 1);
  assert_sane(h);

  return p;
}

/* Shrinks a block that has a live block after it. P is a live block,
 * freed first. */
static void shrink_before_live(const struct heap *h, char *p) {
  char *q;
  struct shmheap_stats st;
  /* A shrink whose tail has a live block after it: tail becomes a new free
   * block of its own. */
  shmheap_free(h->mem, p);
  p = shmheap_alloc(h->mem, 1000);
  char *next = shmheap_alloc(h->mem, 1000);
  g_assert_true(next == p + carve_for(1000));
  th_fill(p, 1000, 6, off_of(h, p));
  q = shmheap_realloc(h->mem, p, 500);
  g_assert_true(q == p);
  g_assert_cmpint(th_check_fill(p, 500, 6, off_of(h, p)), ==, -1);
  g_assert_cmpuint(block_size_of(h, p), ==, carve_for(500));
  g_assert_cmpint(shmheap_stats(h->mem, &st), ==, 0);
  g_assert_cmpuint(st.free_blocks, ==, 2);
  g_assert_cmpuint(st.used_bytes, ==, carve_for(500) + carve_for(1000));
  assert_sane(h);
  /* A tail of exactly 48 bytes is split off (and merges with the free tail
   * after it); one of 16 is not. */
  q = shmheap_realloc(h->mem, p, 456); /* carve 464 of 512 */
  g_assert_true(q == p);
  g_assert_cmpuint(block_size_of(h, p), ==, 464);
  g_assert_cmpint(shmheap_stats(h->mem, &st), ==, 0);
  g_assert_cmpuint(st.free_blocks, ==, 2);
  g_assert_cmpuint(st.used_bytes, ==, 464 + carve_for(1000));
  q = shmheap_realloc(h->mem, p, 440); /* carve 448 of 464 */
  g_assert_true(q == p);
  g_assert_cmpuint(block_size_of(h, p), ==, 464);
  g_assert_cmpint(th_check_fill(p, 440, 6, off_of(h, p)), ==, -1);
  assert_sane(h);
  shmheap_free(h->mem, p);
  shmheap_free(h->mem, next);
}

static void test_realloc_shrink(void) {
  struct heap h;
  heap_open(&h, 1 << 16);
  char *p = shrink_whole_block(&h);
  shrink_before_live(&h, p);
  assert_empty(&h);
  heap_close(&h);
}

static void test_realloc_grow_in_place(void) {
  struct heap h;
  heap_open(&h, 1 << 16);
  const size_t whole = h.len - SHMHEAP_OVERHEAD;
  char *p = shmheap_alloc(h.mem, whole);
  g_assert_nonnull(p);
  g_assert_true(shmheap_realloc(h.mem, p, 100) == p);
  th_fill(p, 100, 9, 80);

  /* The next block is free and large: grow into its head. */
  char *q = shmheap_realloc(h.mem, p, 3000);
  g_assert_true(q == p);
  g_assert_cmpuint(block_size_of(&h, p), ==, carve_for(3000));
  g_assert_cmpint(th_check_fill(p, 100, 9, 80), ==, -1);
  assert_sane(&h);
  th_fill(p, 3000, 10, 80);

  /* Grow so that the remainder would be < 48: the whole next block. */
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(h.mem, &st), ==, 0);
  size_t nearly = whole - 40; /* need len - 112: 40 bytes would remain */
  q = shmheap_realloc(h.mem, p, nearly);
  g_assert_true(q == p);
  g_assert_cmpuint(block_size_of(&h, p), ==, h.len - SHH_FIRST);
  g_assert_cmpint(th_check_fill(p, 3000, 10, 80), ==, -1);
  g_assert_cmpint(shmheap_stats(h.mem, &st), ==, 0);
  g_assert_cmpuint(st.free_blocks, ==, 0);
  assert_sane(&h);

  /* Back down, then grow to exactly the whole heap (the rest would be
   * negative: 48 + (len - 120) holds len - 80 but carve is len - 64). */
  g_assert_true(shmheap_realloc(h.mem, p, 10) == p);
  g_assert_cmpuint(block_size_of(&h, p), ==, SHH_MIN_BLOCK);
  q = shmheap_realloc(h.mem, p, whole);
  g_assert_true(q == p);
  g_assert_cmpint(th_check_fill(p, 10, 10, 80), ==, -1);
  errno = 0;
  g_assert_null(shmheap_realloc(h.mem, p, whole + 1));
  g_assert_cmpint(errno, ==, ENOMEM);
  g_assert_cmpuint(block_size_of(&h, p), ==, h.len - SHH_FIRST);
  shmheap_free(h.mem, p);
  assert_empty(&h);

  /* Head carving leaves the rest right after a fresh block: it grows in
   * place, again and again. */
  p = shmheap_alloc(h.mem, 100);
  th_fill(p, 100, 15, 80);
  for (size_t sz = 200; sz < 60000; sz = sz * 2 + 1) {
    q = shmheap_realloc(h.mem, p, sz);
    g_assert_true(q == p);
    g_assert_cmpuint(block_size_of(&h, p), ==, carve_for(sz));
    g_assert_cmpint(th_check_fill(p, 100, 15, 80), ==, -1);
  }
  shmheap_free(h.mem, p);
  assert_empty(&h);
  heap_close(&h);
}

static void test_realloc_move(void) {
  struct heap h;
  heap_open(&h, 1 << 16);
  char *p = shmheap_alloc(h.mem, 300);
  char *next = shmheap_alloc(h.mem, 100);
  g_assert_true(p == h.base + SHMHEAP_OVERHEAD);
  g_assert_true(next == p + carve_for(300));
  th_fill(p, 300, 12, off_of(&h, p));

  /* The next block is live: allocate (first fit, the old block still
   * allocated), copy, free. The new block is the head of the free rest,
   * right after NEXT. */
  char *q = shmheap_realloc(h.mem, p, 2000);
  g_assert_nonnull(q);
  g_assert_true(q == next + carve_for(100));
  g_assert_cmpint(th_check_fill(q, 300, 12, 80), ==, -1);
  errno = 0;
  g_assert_cmpuint(shmheap_usable_size(h.mem, p), ==, 0); /* old is freed */
  g_assert_cmpint(errno, ==, EINVAL);
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(h.mem, &st), ==, 0);
  g_assert_cmpuint(st.used_blocks, ==, 2);
  g_assert_cmpuint(st.used_bytes, ==, carve_for(100) + carve_for(2000));
  g_assert_cmpuint(st.free_blocks, ==, 2);
  assert_sane(&h);

  /* The next block is free but too small: it moves. Fill p's old hole,
   * then put a 112-byte hole after q, held in place by a live block g2. */
  char *filler = shmheap_alloc(h.mem, 300);
  g_assert_true(filler == p);
  char *g1 = shmheap_alloc(h.mem, 100);
  char *g2 = shmheap_alloc(h.mem, 100);
  g_assert_true(g1 == q + carve_for(2000));
  g_assert_true(g2 == g1 + carve_for(100));
  shmheap_free(h.mem, g1);
  th_fill(q, 2000, 13, off_of(&h, q));
  /* 2016 + 112 - 8 = 2120 bytes fit in place; 2121 do not, so the new
   * block is carved after g2. */
  char *r = shmheap_realloc(h.mem, q, 2121);
  g_assert_true(r == g2 + carve_for(100));
  g_assert_cmpint(th_check_fill(r, 2000, 13, off_of(&h, q)), ==, -1);
  assert_sane(&h);
  shmheap_free(h.mem, filler);
  shmheap_free(h.mem, r);
  shmheap_free(h.mem, next);
  shmheap_free(h.mem, g2);
  assert_empty(&h);

  /* The in-place limit on a fresh layout: 2120 bytes fit exactly, the
   * whole 112-byte neighbour is taken (the rest would be 0). */
  q = shmheap_alloc(h.mem, 2000);
  g1 = shmheap_alloc(h.mem, 100);
  g2 = shmheap_alloc(h.mem, 100);
  shmheap_free(h.mem, g1);
  /* Growing with a rest of exactly 48 splits: 2016 + 112 = 2128 = 2080 +
   * 48. */
  r = shmheap_realloc(h.mem, q, 2072);
  g_assert_true(r == q);
  g_assert_cmpuint(block_size_of(&h, q), ==, 2080);
  g_assert_cmpint(shmheap_stats(h.mem, &st), ==, 0);
  g_assert_cmpuint(st.free_blocks, ==, 2);
  assert_sane(&h);
  r = shmheap_realloc(h.mem, q, 2120); /* exactly S + Snext - 8 */
  g_assert_true(r == q);
  g_assert_cmpuint(block_size_of(&h, q), ==, carve_for(2000) + 112);
  shmheap_free(h.mem, q);
  shmheap_free(h.mem, g2);
  assert_empty(&h);
  heap_close(&h);
}

/* A realloc that cannot be satisfied leaves the block intact and live. */
static void test_realloc_fail(void) {
  struct heap h;
  heap_open(&h, 1 << 16);
  char *a = shmheap_alloc(h.mem, 20000);
  char *p = shmheap_alloc(h.mem, 1000);
  char *b = shmheap_alloc(h.mem, 20000);
  g_assert_nonnull(a);
  g_assert_nonnull(p);
  g_assert_nonnull(b);
  th_fill(p, 1000, 14, off_of(&h, p));
  struct snapshot before, after;
  snap_take(&h, &before);
  const size_t big[] = {30000,        h.len - SHMHEAP_OVERHEAD,
                        h.len,        SIZE_MAX,
                        SIZE_MAX - 7, SIZE_MAX / 2};
  for (size_t i = 0; i < G_N_ELEMENTS(big); i++) {
    errno = 0;
    g_assert_null(shmheap_realloc(h.mem, p, big[i]));
    g_assert_cmpint(errno, ==, ENOMEM);
    snap_take(&h, &after);
    snap_assert_equal(&before, &after);
    snap_free(&after);
    g_assert_cmpint(th_check_fill(p, 1000, 14, off_of(&h, p)), ==, -1);
    g_assert_cmpuint(shmheap_usable_size(h.mem, p), >=, 1000);
  }
  snap_free(&before);
  shmheap_free(h.mem, a);
  shmheap_free(h.mem, p);
  shmheap_free(h.mem, b);
  assert_empty(&h);
  heap_close(&h);
}

static void test_realloc_bad(void) {
  struct heap h;
  heap_open(&h, 1 << 16);
  char *a = shmheap_alloc(h.mem, 200);
  char *f = shmheap_alloc(h.mem, 200);
  char *c = shmheap_alloc(h.mem, 200);
  shmheap_free(h.mem, f);
  int stack_var;
  void *bad[] = {
      a + 1,          a + 16,    a + 8, f, h.base, c + carve_for(200),
      h.base + h.len, &stack_var};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    struct snapshot before, after;
    snap_take(&h, &before);
    errno = 0;
    g_assert_null(shmheap_realloc(h.mem, bad[i], 100));
    g_assert_cmpint(errno, ==, EINVAL);
    errno = 0;
    g_assert_null(shmheap_realloc(h.mem, bad[i], 0));
    g_assert_cmpint(errno, ==, EINVAL);
    errno = 0;
    g_assert_cmpuint(shmheap_usable_size(h.mem, bad[i]), ==, 0);
    g_assert_cmpint(errno, ==, EINVAL);
    snap_take(&h, &after);
    snap_assert_equal(&before, &after);
    snap_free(&before);
    snap_free(&after);
  }
  errno = 0;
  g_assert_cmpuint(shmheap_usable_size(h.mem, NULL), ==, 0);
  g_assert_cmpint(errno, ==, EINVAL);
  shmheap_free(h.mem, a);
  shmheap_free(h.mem, c);
  assert_empty(&h);
  heap_close(&h);
}

/* Random reallocs keep contents (checked by pattern) and the heap sane. */
static void test_realloc_random(void) {
  struct heap h;
  heap_open(&h, 1 << 20);
  enum { N = 64 };
  char *p[N] = {0};
  size_t sz[N] = {0};
  uint64_t rng = 77;
  g_test_message("realloc random seed 77");
  for (int step = 0; step < 4000; step++) {
    int i = (int)th_rand_below(&rng, N);
    size_t ns =
        (size_t)(th_rand_below(&rng, 4) == 0 ? th_rand_below(&rng, 20000)
                                             : th_rand_below(&rng, 300));
    if (p[i])
      g_assert_cmpint(th_check_fill(p[i], sz[i], (uint64_t)i, sz[i]), ==, -1);
    char *q = shmheap_realloc(h.mem, p[i], ns);
    if (!q) {
      g_assert_cmpint(errno, ==, ENOMEM);
      continue;
    }
    size_t keep = sz[i] < ns ? sz[i] : ns;
    if (p[i])
      g_assert_cmpint(th_check_fill(q, keep, (uint64_t)i, sz[i]), ==, -1);
    p[i] = q;
    sz[i] = ns;
    g_assert_cmpuint(shmheap_usable_size(h.mem, q), >=, ns);
    th_fill(q, ns, (uint64_t)i, ns);
    if (step % 500 == 0)
      assert_sane(&h);
  }
  for (int i = 0; i < N; i++) {
    if (p[i])
      g_assert_cmpint(th_check_fill(p[i], sz[i], (uint64_t)i, sz[i]), ==, -1);
    shmheap_free(h.mem, p[i]);
  }
  assert_empty(&h);
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* usable size, overhead, stats, walk                                        */

/* Measures the per-block overhead: block size - request, and block size -
 * usable size (the tag). */
static void test_overhead(void) {
  struct heap h;
  heap_open(&h, 1 << 20);
  uint64_t tag_min = UINT64_MAX, tag_max = 0;
  uint64_t ovh_max_ge40 = 0, ovh_sum = 0, n = 0;
  for (size_t sz = 1; sz <= 4096; sz++) {
    void *p = shmheap_alloc(h.mem, sz);
    g_assert_nonnull(p);
    uint64_t bs = block_size_of(&h, p);
    size_t us = shmheap_usable_size(h.mem, p);
    g_assert_cmpuint(us, >=, sz);
    g_assert_cmpuint(bs, ==, carve_for(sz));
    uint64_t tag = bs - us;
    tag_min = MIN(tag_min, tag);
    tag_max = MAX(tag_max, tag);
    if (sz >= 40) {
      ovh_max_ge40 = MAX(ovh_max_ge40, bs - sz);
      ovh_sum += bs - sz;
      n++;
    }
    shmheap_free(h.mem, p);
  }
  /* The promised limit: at most 16 bytes beyond the 16-byte-rounded
   * request (8 is the target: the tag). */
  g_assert_cmpuint(tag_min, ==, 8);
  g_assert_cmpuint(tag_max, ==, 8);
  g_assert_cmpuint(ovh_max_ge40, <=, 8 + 15);
  g_test_message("per-block overhead: tag %" G_GUINT64_FORMAT
                 " bytes (block size - usable size) for every size 1..4096; "
                 "block size - request for sizes 40..4096: mean %.2f, max "
                 "%" G_GUINT64_FORMAT
                 " (tag + padding to 16); minimum block %d "
                 "(requests 0..40); alignment %d",
                 tag_max, (double)ovh_sum / (double)n, ovh_max_ge40,
                 SHH_MIN_BLOCK, SHMHEAP_ALIGNMENT);
  assert_empty(&h);
  heap_close(&h);
}

static int stop_at_third(const struct shmheap_block *b, void *arg) {
  (void)b;
  return ++*(int *)arg == 3 ? 42 : 0;
}

static void test_stats_walk(void) {
  struct heap h;
  heap_open(&h, 1 << 20);
  uint64_t rng = 99;
  GPtrArray *live = g_ptr_array_new();
  for (int step = 0; step < 3000; step++) {
    if (live->len > 0 && th_rand_below(&rng, 3) == 0) {
      guint i = (guint)th_rand_below(&rng, live->len);
      shmheap_free(h.mem, g_ptr_array_steal_index_fast(live, i));
    } else {
      void *p = shmheap_alloc(h.mem, (size_t)th_rand_below(&rng, 1500));
      if (p)
        g_ptr_array_add(live, p);
    }
    if (step % 300 == 0) {
      assert_sane(&h);
      /* largest_free is exact: it fits, one more byte does not. */
      struct shmheap_stats st;
      g_assert_cmpint(shmheap_stats(h.mem, &st), ==, 0);
      g_assert_cmpuint(st.used_blocks, ==, live->len);
      if (st.free_blocks > 0) {
        errno = 0;
        g_assert_null(shmheap_alloc(h.mem, st.largest_free + 1));
        g_assert_cmpint(errno, ==, ENOMEM);
        void *p = shmheap_alloc(h.mem, st.largest_free);
        g_assert_nonnull(p);
        shmheap_free(h.mem, p);
      }
    }
  }
  int count = 0;
  g_assert_cmpint(shmheap_walk(h.mem, count_cb, &count), ==, 0);
  g_assert_cmpint(count, >=, 3);
  count = 0;
  g_assert_cmpint(shmheap_walk(h.mem, stop_at_third, &count), ==, 42);
  g_assert_cmpint(count, ==, 3);
  free_all(&h, live);
  assert_empty(&h);
  heap_close(&h);
}

/* Two heaps in one process are independent. */
static void test_two_heaps(void) {
  struct heap a, b;
  heap_open(&a, 65536);
  heap_open(&b, 1 << 20);
  void *pa = shmheap_alloc(a.mem, 1000);
  void *pb = shmheap_alloc(b.mem, 1000);
  g_assert_nonnull(pa);
  g_assert_nonnull(pb);
  g_assert_cmpuint(off_of(&a, pa), ==, SHMHEAP_OVERHEAD);
  g_assert_cmpuint(off_of(&b, pb), ==, SHMHEAP_OVERHEAD);
  g_assert_cmpuint(shmheap_ptr_to_handle(a.mem, pb), ==, SHMHEAP_NULL_HANDLE);
  shmheap_free(a.mem, pa);
  assert_empty(&a);
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(b.mem, &st), ==, 0);
  g_assert_cmpuint(st.used_blocks, ==, 1);
  shmheap_free(b.mem, pb);
  heap_close(&a);
  heap_close(&b);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  th_add_func("/api/create/basic", test_create_basic);
  th_add_func("/api/create/one-page", test_create_small);
  th_add_func("/api/create/mode", test_create_mode);
  th_add_func("/api/create/eexist-foreign", test_create_eexist_foreign);
  th_add_func("/api/create/eexist-heap", test_create_eexist_heap);
  th_add_func("/api/create/bad-len", test_create_bad_len);
  th_add_func("/api/create/bad-name", test_create_bad_name);
  th_add_func("/api/connect/enoent", test_connect_enoent);
  th_add_func("/api/connect/garbage", test_connect_garbage);
  th_add_func("/api/connect/resized", test_connect_resized);
  th_add_func("/api/connect/twice", test_connect_twice);
  th_add_func("/api/destroy", test_destroy);
  th_add_func("/api/no-fd-leak", test_no_fd_leak);
  th_add_func("/api/underlying", test_underlying);
  th_add_func("/api/null-heap", test_null_heap);
  th_add_func("/api/alloc/alignment", test_alloc_alignment);
  th_add_func("/api/alloc/whole", test_alloc_whole);
  th_add_func("/api/alloc/absurd", test_alloc_absurd);
  th_add_func("/api/alloc/zero", test_alloc_zero);
  th_add_func("/api/alloc/placement", test_alloc_placement);
  th_add_func("/api/alloc/first-fit", test_alloc_first_fit);
  th_add_func("/api/free/null", test_free_null);
  th_add_func("/api/free/bad", test_free_bad);
  th_add_func("/api/free/other-heap", test_free_other_heap);
  th_add_func("/api/free/merge", test_free_merge);
  th_add_func("/api/handles/basic", test_handles);
  th_add_func("/api/handles/linked", test_handles_linked);
  th_add_func("/api/calloc", test_calloc);
  th_add_func("/api/realloc/null", test_realloc_null);
  th_add_func("/api/realloc/shrink", test_realloc_shrink);
  th_add_func("/api/realloc/grow-in-place", test_realloc_grow_in_place);
  th_add_func("/api/realloc/move", test_realloc_move);
  th_add_func("/api/realloc/fail", test_realloc_fail);
  th_add_func("/api/realloc/bad", test_realloc_bad);
  th_add_func("/api/realloc/random", test_realloc_random);
  th_add_func("/api/overhead", test_overhead);
  th_add_func("/api/stats-walk", test_stats_walk);
  th_add_func("/api/two-heaps", test_two_heaps);
  return g_test_run();
}

/* api-lifecycle.c: the api cases of create, connect, destroy and calls on a
 * NULL heap: the errors and the "nothing left behind" promise. */
#include <glib/gstdio.h>
#include <limits.h>
#include <shmheap.h>
#include <stdlib.h>

#include "api.h"
#include "layout.h"

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

  /* A directory of the name is never removed; unlink's EISDIR says so. */
  char dir[128];
  g_snprintf(dir, sizeof dir, "/dev/shm%s", h.name);
  g_assert_cmpint(g_mkdir(dir, 0700), ==, 0);
  errno = 0;
  shmheap_destroy(h.name, NULL);
  g_assert_cmpint(errno, ==, EISDIR);
  g_assert_true(g_file_test(dir, G_FILE_TEST_IS_DIR));
  g_assert_cmpint(g_rmdir(dir), ==, 0);

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

void api_lifecycle_cases(void) {
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
}

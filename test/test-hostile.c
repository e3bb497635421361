/* test-hostile: what a careless or hostile caller, user or peer can throw at
 * the library: bad names, other users without access, permission bits,
 * corrupted headers and block tags in the shared object, and pointers that
 * are not the start of a live block. Each is refused with an errno, or
 * survived; never a crash, a hang, or memory handed out beyond the heap.
 * Anything that could crash runs in a forked child with an alarm(), so a
 * crash or a hang shows as a signal the parent counts and asserts on.
 * The corrupted-heap cases live in hostile-corruption.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostile.h"
#include "layout.h"
#include "shmheap.h"
#include "testutil.h"

/* ------------------------------------------------------------------------ */
/* /hostile/names                                                            */

static void expect_einval_everywhere(const char *name, const char *why) {
  const size_t len = 64u << 10;
  errno = 0;
  g_assert_null(shmheap_create(name, len));
  if (errno != EINVAL)
    g_error("create(%s): errno %d, want EINVAL", why, errno);
  errno = 0;
  g_assert_null(shmheap_create_mode(name, len, 0600));
  if (errno != EINVAL)
    g_error("create_mode(%s): errno %d, want EINVAL", why, errno);
  errno = 0;
  g_assert_null(shmheap_connect(name));
  if (errno != EINVAL)
    g_error("connect(%s): errno %d, want EINVAL", why, errno);
  errno = 0;
  shmheap_destroy(name, NULL);
  if (name != NULL && errno != EINVAL)
    g_error("destroy(%s, NULL): errno %d, want EINVAL", why, errno);
}

static void test_names(void) {
  th_watchdog_arm(60, "/hostile/names");
  char base[64];
  th_shm_name(base, sizeof base, "hostile");
  /* base + 1 is the same name without its slash: glibc's shm_open would
   * accept it and create "/<name>", so nothing of that name may appear. */
  expect_einval_everywhere(base + 1, "no leading slash");
  g_assert_false(th_shm_exists(base));

  char two[80];
  snprintf(two, sizeof two, "%s/x", base);
  expect_einval_everywhere(two, "a second slash");
  snprintf(two, sizeof two, "%s/", base);
  expect_einval_everywhere(two, "a trailing slash");
  snprintf(two, sizeof two, "/%s", base);
  expect_einval_everywhere(two, "a double leading slash");
  expect_einval_everywhere("/", "just a slash");
  expect_einval_everywhere("", "empty");
  expect_einval_everywhere(NULL, "NULL");

  char lng[NAME_MAX + 3];
  memset(lng, 'a', sizeof lng);
  lng[0] = '/';
  lng[NAME_MAX + 2] = '\0'; /* NAME_MAX + 1 characters after the slash */
  expect_einval_everywhere(lng, "too long");

  /* exactly NAME_MAX characters after the slash is a valid name */
  snprintf(lng, sizeof lng, "%s-", base);
  size_t n = strlen(lng);
  memset(lng + n, 'b', NAME_MAX + 1 - n);
  lng[NAME_MAX + 1] = '\0';
  g_assert_cmpuint(strlen(lng), ==, NAME_MAX + 1);
  shmheap_memory_handle mem = shmheap_create(lng, 64u << 10);
  g_assert_nonnull(mem);
  shmheap_memory_handle mem2 = shmheap_connect(lng);
  g_assert_nonnull(mem2);
  shmheap_disconnect(mem2);
  shmheap_destroy(NULL, mem);
  g_assert_false(th_shm_exists(lng));

  /* a valid name that does not exist is ENOENT, not EINVAL */
  errno = 0;
  g_assert_null(shmheap_connect(base));
  g_assert_cmpint(errno, ==, ENOENT);
}

/* ------------------------------------------------------------------------ */
/* /hostile/perms                                                            */

static mode_t object_mode(const char *name) {
  int fd = shm_open(name, O_RDONLY, 0);
  g_assert_cmpint(fd, >=, 0);
  struct stat st;
  g_assert_cmpint(fstat(fd, &st), ==, 0);
  close(fd);
  return st.st_mode & 07777;
}

struct drop_arg {
  const char *name;
  gid_t gid;    /* the group the child becomes */
  int want;     /* 0: connect must work; else the errno it must fail with */
  uint64_t hdl; /* a block the parent filled with pattern (seed 9) */
  size_t hdl_sz;
};

/* Becomes user nobody (65534) in group GID, then connects. */
static int dropped_child(void *arg) {
  const struct drop_arg *a = arg;
  TH_CHILD_CHECK(setgroups(0, NULL) == 0);
  TH_CHILD_CHECK(setgid(a->gid) == 0);
  TH_CHILD_CHECK(setuid(65534) == 0);
  TH_CHILD_CHECK(geteuid() == 65534 && getegid() == a->gid);
  errno = 0;
  shmheap_memory_handle mem = shmheap_connect(a->name);
  if (a->want != 0) {
    TH_CHILD_CHECK(mem == NULL);
    TH_CHILD_CHECK(errno == a->want);
    return 0;
  }
  TH_CHILD_CHECK(mem != NULL);
  /* the other user's process reads the parent's block and uses the heap */
  void *p = shmheap_handle_to_ptr(mem, a->hdl);
  TH_CHILD_CHECK(p != NULL && th_check_fill(p, a->hdl_sz, 9, a->hdl) == -1);
  void *q = shmheap_alloc(mem, 1000);
  TH_CHILD_CHECK(q != NULL);
  memset(q, 0x42, 1000);
  errno = 0;
  shmheap_free(mem, q);
  TH_CHILD_CHECK(errno == 0);
  TH_CHILD_CHECK(shmheap_check(mem) == 0);
  shmheap_disconnect(mem);
  return 0;
}

static void expect_dropped(const char *name, gid_t gid, int want,
                           shmheap_memory_handle mem) {
  struct drop_arg a = {name, gid, want, 0, 300};
  void *p = shmheap_alloc(mem, a.hdl_sz);
  g_assert_nonnull(p);
  a.hdl = shmheap_ptr_to_handle(mem, p);
  th_fill(p, a.hdl_sz, 9, a.hdl);
  th_assert_child_ok(th_fork_run(dropped_child, &a, 0));
  shmheap_free(mem, p);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
}

static void test_perms(void) {
  th_watchdog_arm(60, "/hostile/perms");
  const size_t len = 64u << 10;
  if (geteuid() != 0) {
    g_test_skip("needs root to become another user");
    return;
  }
  mode_t old_umask = umask(0);
  char name[64];

  /* default 0600 whatever the umask */
  static const mode_t umasks[] = {0, 022, 077};
  for (size_t i = 0; i < G_N_ELEMENTS(umasks); i++) {
    umask(umasks[i]);
    shmheap_memory_handle mem =
        shmheap_create(th_shm_name(name, sizeof name, "hostile"), len);
    g_assert_nonnull(mem);
    g_assert_cmpuint(object_mode(name), ==, 0600);
    shmheap_destroy(NULL, mem);
  }

  /* create_mode: exactly MODE, the umask does not apply */
  static const struct {
    mode_t mode, umask;
  } modes[] = {{0660, 022}, {0644, 077}, {0666, 022}, {0600, 0}, {0640, 0}};
  for (size_t i = 0; i < G_N_ELEMENTS(modes); i++) {
    umask(modes[i].umask);
    shmheap_memory_handle mem = shmheap_create_mode(
        th_shm_name(name, sizeof name, "hostile"), len, modes[i].mode);
    g_assert_nonnull(mem);
    g_assert_cmpuint(object_mode(name), ==, modes[i].mode);
    shmheap_destroy(NULL, mem);
  }
  umask(022);

  /* bits outside 0777: EINVAL, nothing left behind */
  static const mode_t bad[] = {01000, 02000, 04000, 07777, 0100600, (mode_t)-1};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    errno = 0;
    g_assert_null(shmheap_create_mode(th_shm_name(name, sizeof name, "hostile"),
                                      len, bad[i]));
    g_assert_cmpint(errno, ==, EINVAL);
    g_assert_false(th_shm_exists(name));
  }

  /* a process of another user: no access is EACCES; group or world access
   * with read and write lets it in */
  static const struct {
    mode_t mode;
    gid_t gid;
    int want;
  } access_cases[] = {
      {0600, 65534, EACCES}, /* owner only */
      {0644, 65534, EACCES}, /* others may read but not write */
      {0660, 65534, EACCES}, /* group of root only */
      {0660, 0, 0},          /* ...and the child is in that group */
      {0666, 65534, 0},      /* everyone */
  };
  for (size_t i = 0; i < G_N_ELEMENTS(access_cases); i++) {
    shmheap_memory_handle mem = shmheap_create_mode(
        th_shm_name(name, sizeof name, "hostile"), len, access_cases[i].mode);
    g_assert_nonnull(mem);
    g_test_message("perms: mode %04o, child uid 65534 gid %u: want %s",
                   (unsigned)access_cases[i].mode,
                   (unsigned)access_cases[i].gid,
                   access_cases[i].want ? "EACCES" : "access");
    expect_dropped(name, access_cases[i].gid, access_cases[i].want, mem);
    shmheap_destroy(NULL, mem);
    g_assert_false(th_shm_exists(name));
  }
  umask(old_umask);
}

/* ------------------------------------------------------------------------ */
/* /hostile/bad-pointers                                                     */

static int some_global;

/* Every way to be refused: free, realloc and usable_size say EINVAL. */
static void expect_refused(shmheap_memory_handle mem, void *p,
                           const char *what) {
  errno = 0;
  shmheap_free(mem, p);
  if (errno != EINVAL)
    g_error("free(%s = %p): errno %d, want EINVAL", what, p, errno);
  errno = 0;
  void *q = shmheap_realloc(mem, p, 100);
  if (q != NULL || errno != EINVAL)
    g_error("realloc(%s = %p): %p errno %d, want NULL EINVAL", what, p, q,
            errno);
  errno = 0;
  size_t us = shmheap_usable_size(mem, p);
  if (us != 0 || errno != EINVAL)
    g_error("usable_size(%s = %p): %zu errno %d, want 0 EINVAL", what, p, us,
            errno);
}

/* The heap the bad pointers are thrown at, the live blocks they must not
 * disturb, and pointers that were blocks once or belong to another heap. */
enum { BAD_N = 24 };
struct bad {
  size_t len;
  char name[64], name2[64];
  shmheap_memory_handle mem, other;
  unsigned char *base;
  unsigned char *live[BAD_N], *freed[BAD_N / 3 + 1], *foreign[4];
  unsigned nlive, nfreed, tried;
  uint64_t rng;
};

static void bad_setup(struct bad *b) {
  b->len = 64u << 10;
  b->mem =
      shmheap_create(th_shm_name(b->name, sizeof b->name, "hostile"), b->len);
  b->other =
      shmheap_create(th_shm_name(b->name2, sizeof b->name2, "hostile"), b->len);
  g_assert_nonnull(b->mem);
  g_assert_nonnull(b->other);
  b->base = shmheap_underlying(b->mem);
  b->rng = 0xbad;
  for (unsigned i = 0; i < BAD_N; i++) {
    unsigned char *p = shmheap_alloc(b->mem, 1 + th_rand_below(&b->rng, 700));
    g_assert_nonnull(p);
    memset(p, (int)i, shmheap_usable_size(b->mem, p));
    if (i % 3 == 0)
      b->freed[b->nfreed++] = p;
    else
      b->live[b->nlive++] = p;
  }
  for (unsigned i = 0; i < b->nfreed; i++)
    shmheap_free(b->mem, b->freed[i]);
  for (unsigned i = 0; i < 4; i++) {
    b->foreign[i] = shmheap_alloc(b->other, 100 * i);
    g_assert_nonnull(b->foreign[i]);
  }
  /* freed[0] was the first block, at SHH_FIRST: its payload is not live */
  g_assert_true(b->freed[0] == b->base + SHMHEAP_OVERHEAD);
}

/* Pointers outside the heap, at its edges, in the header: refused, and
 * those outside the data area have no handle. */
static void refuse_outside(struct bad *b) {
  unsigned char *base = b->base;
  size_t len = b->len;
  char what[64];
  int local = 0;
  void *heap_ptr = g_malloc(64);
  unsigned char *outside_ptrs[] = {
      (unsigned char *)1,
      (unsigned char *)16,
      (unsigned char *)4096,
      (unsigned char *)(uintptr_t)-16,
      (unsigned char *)(uintptr_t)-1,
      (unsigned char *)&local,
      (unsigned char *)heap_ptr,
      (unsigned char *)&some_global,
      base - 16,
      base,
      base + 8,
      base + 16,
      base + 64,
      base + SHH_FIRST,
      base + len - 16,
      base + len - 8,
      base + len,
      base + len + 16,
      base + len + 4096,
  };
  for (size_t i = 0; i < G_N_ELEMENTS(outside_ptrs); i++, b->tried++) {
    snprintf(what, sizeof what, "edge pointer %zu", i);
    expect_refused(b->mem, outside_ptrs[i], what);
  }
  for (size_t i = 0; i < G_N_ELEMENTS(outside_ptrs); i++)
    if (outside_ptrs[i] < base + SHMHEAP_OVERHEAD ||
        outside_ptrs[i] >= base + len)
      g_assert_cmpuint(shmheap_ptr_to_handle(b->mem, outside_ptrs[i]), ==,
                       SHMHEAP_NULL_HANDLE);
  g_free(heap_ptr);
}

/* Interior pointers of live blocks, and just before and after them. */
static void refuse_interior(struct bad *b) {
  char what[64];
  for (unsigned i = 0; i < b->nlive; i++) {
    size_t us = shmheap_usable_size(b->mem, b->live[i]);
    const ptrdiff_t deltas[] = {1,
                                8,
                                15,
                                16,
                                32,
                                -8,
                                -16,
                                -1,
                                (ptrdiff_t)us - 16,
                                (ptrdiff_t)us,
                                (ptrdiff_t)us + 1};
    for (size_t d = 0; d < G_N_ELEMENTS(deltas); d++, b->tried++) {
      snprintf(what, sizeof what, "live[%u] %+td", i, deltas[d]);
      expect_refused(b->mem, b->live[i] + deltas[d], what);
    }
  }
}

/* Freed pointers (double frees), pointers into another heap. */
static void refuse_stale(struct bad *b) {
  char what[64];
  for (unsigned i = 0; i < b->nfreed; i++, b->tried++) {
    snprintf(what, sizeof what, "freed[%u]", i);
    expect_refused(b->mem, b->freed[i], what);
  }
  for (unsigned i = 0; i < 4; i++, b->tried++) {
    snprintf(what, sizeof what, "foreign[%u]", i);
    expect_refused(b->mem, b->foreign[i], what);
  }
}

/* Random addresses, and random aligned addresses inside the heap that are
 * not the start of a live block. */
static void refuse_random(struct bad *b) {
  char what[64];
  for (unsigned i = 0; i < 2000; i++, b->tried++) {
    unsigned char *p;
    if (i % 2)
      p = (unsigned char *)(uintptr_t)th_rand(&b->rng);
    else
      p = b->base + (th_rand_below(&b->rng, b->len + 256) &
                     ~(uint64_t)(i % 4 ? SHMHEAP_ALIGNMENT - 1 : 0));
    bool is_live = false;
    for (unsigned k = 0; k < b->nlive; k++)
      is_live |= p == b->live[k];
    if (is_live)
      continue;
    snprintf(what, sizeof what, "random pointer %u", i);
    expect_refused(b->mem, p, what);
  }
}

/* Handles outside the data area give NULL, the others their byte. */
static void check_random_handles(struct bad *b) {
  for (unsigned i = 0; i < 1000; i++) {
    uint64_t h = i % 2 ? th_rand(&b->rng) : th_rand_below(&b->rng, 2 * b->len);
    unsigned char *p = shmheap_handle_to_ptr(b->mem, h);
    if (h < SHMHEAP_OVERHEAD || h >= b->len)
      g_assert_null(p);
    else
      g_assert_true(p == b->base + h);
  }
}

/* The live blocks still work, and the heap empties whole. */
static void bad_finish(struct bad *b) {
  for (unsigned i = 0; i < b->nlive; i++) {
    errno = 0;
    shmheap_free(b->mem, b->live[i]);
    g_assert_cmpint(errno, ==, 0);
  }
  void *all = shmheap_alloc(b->mem, b->len - SHMHEAP_OVERHEAD);
  g_assert_nonnull(all);
  shmheap_free(b->mem, all);
  shmheap_destroy(NULL, b->mem);
  shmheap_destroy(NULL, b->other);
}

static void test_bad_pointers(void) {
  th_watchdog_arm(60, "/hostile/bad-pointers");
  static struct bad b;
  memset(&b, 0, sizeof b);
  bad_setup(&b);

  struct shmheap_stats before, after;
  g_assert_cmpint(shmheap_check(b.mem), ==, 0);
  g_assert_cmpint(shmheap_stats(b.mem, &before), ==, 0);
  unsigned char *snap = g_malloc(b.len);
  memcpy(snap, b.base + SHH_FIRST, b.len - SHH_FIRST);

  refuse_outside(&b);
  refuse_interior(&b);
  refuse_stale(&b);
  refuse_random(&b);
  check_random_handles(&b);

  /* the heap is exactly as it was */
  g_assert_cmpint(shmheap_check(b.mem), ==, 0);
  g_assert_cmpint(shmheap_stats(b.mem, &after), ==, 0);
  g_assert_cmpmem(&before, sizeof before, &after, sizeof after);
  g_assert_true(memcmp(snap, b.base + SHH_FIRST, b.len - SHH_FIRST) == 0);
  g_test_message("bad-pointers: %u bad pointers refused by free, realloc "
                 "and usable_size; heap unchanged",
                 b.tried);
  g_free(snap);
  bad_finish(&b);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  th_add_func("/hostile/names", test_names);
  th_add_func("/hostile/perms", test_perms);
  hostile_corruption_cases();
  th_add_func("/hostile/bad-pointers", test_bad_pointers);
  return g_test_run();
}

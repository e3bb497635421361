/* names-kills.c: the names test program's kills: writers of names (and of
 * the directory itself) killed at random moments and at every ordered
 * write, after which every name must lead to a live block, the heap must
 * check, and no directory or entry block may be left over.
 */
#include <time.h>

#include "layout.h"
#include "names.h"

/* ------------------------------------------------------------------------ */

/* Kills: a child publishes, unpublishes, looks up or allocates, frees named
 * objects and grows the heap; it dies at a random moment, or (crash-point
 * builds) at each ordered write in turn. After each death every name must
 * lead to a live block, the parent's names must all be there, and the heap
 * must check and work. */
struct kill_arg {
  const char *name;
  long crash_at;
  unsigned rounds;
};

static int names_script(void *arg) {
  struct kill_arg *a = arg;
  if (a->crash_at > 0) {
    char buf[32];
    snprintf(buf, sizeof buf, "%ld", a->crash_at);
    setenv("SHMHEAP_CRASH_AT", buf, 1);
  }
  shmheap_memory_handle mem = shmheap_connect(a->name);
  TH_CHILD_CHECK(mem != NULL);
  void *obj[16] = {0};
  char key[32];
  for (unsigned r = 0; r < a->rounds; r++) {
    unsigned i = r % 16;
    snprintf(key, sizeof key, "child-%u", i);
    if (obj[i] == NULL) {
      int created;
      obj[i] = shmheap_lookup_or_alloc(mem, key, 200 + r * 40, &created);
      TH_CHILD_CHECK(obj[i] != NULL && created == 1);
      snprintf(key, sizeof key, "alias-%u", i);
      TH_CHILD_CHECK(
          shmheap_publish(mem, key, shmheap_ptr_to_handle(mem, obj[i])) == 0);
    } else if (r % 3 == 0) {
      TH_CHILD_CHECK(shmheap_unpublish(mem, key) == 0);
      snprintf(key, sizeof key, "alias-%u", i);
      TH_CHILD_CHECK(shmheap_lookup(mem, key) ==
                     shmheap_ptr_to_handle(mem, obj[i]));
      shmheap_free(mem, obj[i]); /* drops alias-i */
      obj[i] = NULL;
    } else {
      /* a realloc that moves drops both names; one in place keeps them */
      void *old = obj[i];
      uint64_t oh = shmheap_ptr_to_handle(mem, old);
      void *n = shmheap_realloc(mem, old, 64 * KIB);
      TH_CHILD_CHECK(n != NULL);
      errno = 0;
      uint64_t now = shmheap_lookup(mem, key);
      TH_CHILD_CHECK(n != old ? now == 0 && errno == ENOENT : now == oh);
      shmheap_free(mem, n);
      obj[i] = NULL;
      errno = 0;
      TH_CHILD_CHECK(shmheap_lookup(mem, key) == 0 && errno == ENOENT);
      snprintf(key, sizeof key, "alias-%u", i);
      TH_CHILD_CHECK(shmheap_unpublish(mem, key) == -1 && errno == ENOENT);
    }
  }
  shmheap_disconnect(mem);
  return 0;
}

static void parent_names(shmheap_memory_handle mem, uint64_t *h, unsigned n) {
  for (unsigned i = 0; i < n; i++) {
    char key[32];
    snprintf(key, sizeof key, "parent-%u", i);
    void *p = shmheap_alloc(mem, 48 + i);
    g_assert_nonnull(p);
    memset(p, (int)i, 48 + i);
    h[i] = shmheap_ptr_to_handle(mem, p);
    g_assert_cmpint(shmheap_publish(mem, key, h[i]), ==, 0);
  }
}

static void verify_after(shmheap_memory_handle mem, const uint64_t *h,
                         unsigned n, const char *what, long at) {
  if (shmheap_check(mem) != 0)
    g_error("%s %ld: check failed after the kill (errno %d)", what, at, errno);
  uint64_t names = verify_names(mem);
  g_assert_cmpuint(names, >=, n);
  for (unsigned i = 0; i < n; i++) {
    char key[32];
    snprintf(key, sizeof key, "parent-%u", i);
    g_assert_cmpuint(shmheap_lookup(mem, key), ==, h[i]);
    unsigned char *p = shmheap_handle_to_ptr(mem, h[i]);
    for (unsigned k = 0; k < 48 + i; k++)
      g_assert_cmpint(p[k], ==, (unsigned char)i);
  }
  /* and the heap still works: a name published and dropped by free */
  void *x = shmheap_lookup_or_alloc(mem, "after", 100, NULL);
  g_assert_nonnull(x);
  shmheap_free(mem, x);
  g_assert_cmpuint(shmheap_lookup(mem, "after"), ==, 0);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
}

void test_kill_random(void) {
  th_watchdog_arm(120, "/names/kill-random");
  uint64_t rng = (uint64_t)time(NULL) ^ 0x1234;
  unsigned kills = 0;
  for (unsigned run = 0; run < 40; run++) {
    char name[96];
    th_shm_name(name, sizeof name, "names");
    shmheap_memory_handle mem =
        shmheap_create_growable(name, 64 * KIB, 64u << 20, 0600);
    g_assert_nonnull(mem);
    uint64_t h[6];
    parent_names(mem, h, 6);
    struct kill_arg a = {name, 0, 400};
    pid_t pid = th_fork_start(names_script, &a, 0);
    kills += (unsigned)th_kill_after(pid, &rng, 3000000);
    verify_after(mem, h, 6, "random kill", run);
    shmheap_destroy(NULL, mem);
  }
  g_test_message("%u of 40 children killed during names operations", kills);
  g_assert_cmpuint(kills, >, 0);
  th_watchdog_disarm();
}

void test_points(void) {
#ifndef SHMHEAP_TEST_CRASH_POINTS
  g_test_skip("needs a build with -Dcrash_points=true");
#else
  th_watchdog_arm(300, "/names/points");
  long covered = 0;
  gboolean completed = FALSE;
  for (long n = 1; n <= 5000 && !completed; n++) {
    char name[96];
    th_shm_name(name, sizeof name, "names");
    /* small, so that the script's objects grow the heap too */
    shmheap_memory_handle mem =
        shmheap_create_growable(name, 64 * KIB, 64u << 20, 0600);
    g_assert_nonnull(mem);
    uint64_t h[6];
    parent_names(mem, h, 6);
    /* 40 rounds: the directory rehashes (16 -> 32 -> 64 slots) on the way */
    struct kill_arg a = {name, n, 40};
    int status = th_fork_run(names_script, &a, 0);
    if (th_killed(status))
      covered++;
    else
      completed = TRUE;
    verify_after(mem, h, 6, "crash point", n);
    shmheap_destroy(NULL, mem);
  }
  g_test_message("names crash points: %ld writes covered", covered);
  g_assert_true(completed);
  g_assert_cmpint(covered, >, 50);
  th_watchdog_disarm();
#endif
}

#ifdef SHMHEAP_TEST_CRASH_POINTS
/* The directory's own life under kills: a child makes the first name and
 * removes the last, over and over, on a heap without other names, killed at
 * each ordered write in turn. After each death no directory or entry block
 * may be left over once no name remains (the child's own objects, 100 and
 * 50 bytes, may leak: it died holding them). */
static int dir_script(void *arg) {
  struct kill_arg *a = arg;
  char buf[32];
  snprintf(buf, sizeof buf, "%ld", a->crash_at);
  setenv("SHMHEAP_CRASH_AT", buf, 1);
  shmheap_memory_handle mem = shmheap_connect(a->name);
  TH_CHILD_CHECK(mem != NULL);
  for (unsigned r = 0; r < a->rounds; r++) {
    void *p = shmheap_alloc(mem, 100);
    TH_CHILD_CHECK(p != NULL);
    TH_CHILD_CHECK(
        shmheap_publish(mem, "only", shmheap_ptr_to_handle(mem, p)) == 0);
    TH_CHILD_CHECK(shmheap_unpublish(mem, "only") == 0);
    void *q = shmheap_lookup_or_alloc(mem, "made", 50, NULL);
    TH_CHILD_CHECK(q != NULL);
    shmheap_free(mem, q); /* drops "made", and the directory */
    shmheap_free(mem, p);
  }
  shmheap_disconnect(mem);
  return 0;
}

/* Counts used blocks of the usable sizes of an entry ("only", "made") and
 * of a 16-slot directory. */
static int count_names_blocks(const struct shmheap_block *b, void *arg) {
  uint64_t *n = arg;
  uint64_t entry = (SHH_ENT_KEY + 5 + SHH_TAG + 15) / 16 * 16 - SHH_TAG;
  uint64_t dir =
      (SHH_DIR_SLOTS + 16 * SHH_DIR_MIN_CAP + SHH_TAG + 15) / 16 * 16 - SHH_TAG;
  if (b->used && (b->usable == entry || b->usable == dir))
    ++*n;
  return 0;
}

#endif

void test_points_directory(void) {
#ifndef SHMHEAP_TEST_CRASH_POINTS
  g_test_skip("needs a build with -Dcrash_points=true");
#else
  th_watchdog_arm(300, "/names/points-directory");
  long covered = 0;
  gboolean completed = FALSE;
  for (long n = 1; n <= 2000 && !completed; n++) {
    struct heap hp;
    th_heap_open(&hp, "names", 64 * KIB);
    struct kill_arg a = {hp.name, n, 3};
    int status = th_fork_run(dir_script, &a, 0);
    if (th_killed(status))
      covered++;
    else
      completed = TRUE;
    if (shmheap_check(hp.mem) != 0)
      g_error("crash point %ld: check failed after the kill (errno %d)", n,
              errno);
    if (verify_names(hp.mem) == 0) {
      uint64_t left = 0;
      g_assert_cmpint(shmheap_walk(hp.mem, count_names_blocks, &left), ==, 0);
      if (left != 0)
        g_error("crash point %ld: %" G_GUINT64_FORMAT
                " directory or entry blocks left without a name",
                n, left);
    }
    verify_after(hp.mem, NULL, 0, "crash point", n);
    heap_close(&hp);
  }
  g_test_message("directory crash points: %ld writes covered", covered);
  g_assert_true(completed);
  g_assert_cmpint(covered, >, 20);
  th_watchdog_disarm();
#endif
}

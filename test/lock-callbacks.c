/* lock-callbacks.c: test-lock's cases of a thread that calls into a heap
 * from inside a walk or names callback: back into the same heap, through
 * the same handle or another connection (EDEADLK, never a hang or a heap
 * repaired under the callback), into other heaps, nesting, and a child
 * forked there, which must leave its parent's lock alone.
 */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lock-callbacks.h"
#include "shmheap.h"
#include "testutil.h"

/* ------------------------------------------------------------------------ */
/* /lock/reentry: a walk callback that calls into the same heap gets
 * EDEADLK, not a hang. */

/* A connect from inside the callback succeeds; calls through it get
 * EDEADLK until the callback returns. */
static int connect_cb(const struct shmheap_block *b, void *arg) {
  (void)b;
  shmheap_memory_handle mem = shmheap_connect(arg);
  if (mem == NULL)
    return 8;
  errno = 0;
  void *p = shmheap_alloc(mem, 16);
  int rc = p == NULL && errno == EDEADLK ? 7 : 8;
  shmheap_disconnect(mem);
  return rc;
}

static int reenter_cb(const struct shmheap_block *b, void *arg) {
  (void)b;
  shmheap_memory_handle mem = arg;
  errno = 0;
  void *p = shmheap_alloc(mem, 16);
  return p == NULL && errno == EDEADLK ? 7 : 8;
}

static void test_reentry(void) {
  th_watchdog_arm(30, "/lock/reentry");
  struct heap h;
  th_heap_open(&h, "lock", 64u << 10);
  g_assert_cmpint(shmheap_walk(h.mem, reenter_cb, h.mem), ==, 7);
  g_assert_cmpint(shmheap_check(h.mem), ==, 0);
  heap_close(&h);
}

/* /lock/reentry-other-connection: the same through a second connection to
 * the heap, which maps it at another address and has its own handle: the
 * lock knows the heap, not the address of its word, so the nested call
 * gets EDEADLK, where it once took the lock for a dead thread's, repaired
 * the heap under the running walk and left it marked broken. */

static int unpublish_cb(const char *key, shmheap_object_handle hdl, void *arg) {
  (void)hdl;
  errno = 0;
  return shmheap_unpublish(arg, key) == -1 && errno == EDEADLK ? 7 : 8;
}

static void test_reentry_other_connection(void) {
  th_watchdog_arm(30, "/lock/reentry-other-connection");
  struct heap h;
  th_heap_open(&h, "lock", 64u << 10);
  shmheap_memory_handle other = shmheap_connect(h.name);
  g_assert_nonnull(other);
  g_assert_true(shmheap_underlying(other) != shmheap_underlying(h.mem));
  void *obj = shmheap_alloc(h.mem, 64);
  g_assert_nonnull(obj);
  g_assert_cmpint(
      shmheap_publish(h.mem, "k", shmheap_ptr_to_handle(h.mem, obj)), ==, 0);
  g_assert_cmpint(shmheap_walk(h.mem, reenter_cb, other), ==, 7);
  g_assert_cmpint(shmheap_names(h.mem, unpublish_cb, other), ==, 7);
  g_assert_cmpint(shmheap_walk(h.mem, connect_cb, h.name), ==, 7);
  g_assert_cmpint(shmheap_check(h.mem), ==, 0);
  g_assert_cmpint(shmheap_check(other), ==, 0);
  g_assert_cmpuint(shmheap_lookup(other, "k"), ==,
                   shmheap_ptr_to_handle(h.mem, obj));
  /* both connections go on working, and so does a new one */
  void *p = shmheap_alloc(other, 32);
  g_assert_nonnull(p);
  shmheap_free(other, p);
  shmheap_disconnect(other);
  other = shmheap_connect(h.name);
  g_assert_nonnull(other);
  shmheap_disconnect(other);
  g_assert_cmpint(shmheap_unpublish(h.mem, "k"), ==, 0);
  shmheap_free(h.mem, obj);
  heap_close(&h);
}

/* /lock/nested-heaps: a callback may call into other heaps, nesting walks
 * through up to 16 heaps; the call that would hold a 17th lock at once
 * gets EDEADLK, and every heap works afterwards. */

enum { NEST_MAX = 16 };

struct nest {
  shmheap_memory_handle mem[NEST_MAX + 1];
  int depth;
  int err_at[NEST_MAX + 1]; /* the errno of the walk of heap i, or 0 */
};

static int nest_cb(const struct shmheap_block *b, void *arg) {
  (void)b;
  struct nest *n = arg;
  int d = ++n->depth;
  if (d <= NEST_MAX) {
    errno = 0;
    if (shmheap_walk(n->mem[d], nest_cb, n) == -1)
      n->err_at[d] = errno;
  }
  return 1; /* one block of each heap is enough */
}

static void test_nested_heaps(void) {
  th_watchdog_arm(30, "/lock/nested-heaps");
  struct heap h[NEST_MAX + 1];
  struct nest n = {.depth = 0};
  for (int i = 0; i <= NEST_MAX; i++) {
    th_heap_open(&h[i], "lock", 64u << 10);
    n.mem[i] = h[i].mem;
  }
  g_assert_cmpint(shmheap_walk(n.mem[0], nest_cb, &n), ==, 1);
  for (int i = 1; i < NEST_MAX; i++)
    g_assert_cmpint(n.err_at[i], ==, 0);
  g_assert_cmpint(n.err_at[NEST_MAX], ==, EDEADLK);
  for (int i = 0; i <= NEST_MAX; i++) {
    void *p = shmheap_alloc(n.mem[i], 32);
    g_assert_nonnull(p);
    shmheap_free(n.mem[i], p);
    g_assert_cmpint(shmheap_check(n.mem[i]), ==, 0);
    heap_close(&h[i]);
  }
}

/* /lock/fork-in-callback: a child forked inside a walk callback inherits
 * the thread that holds the lock, but not the lock: the word names the
 * parent's thread. When the child's walk ends, its unlock must leave the
 * word to the parent, also when the child called into the heap from the
 * callback first (waiting for the parent like anyone else). Once both are
 * done the heap is whole and usable. */

struct fork_cb {
  shmheap_memory_handle mem;
  int call_in; /* the child allocates from inside the callback */
  pid_t child;
};

static int fork_cb(const struct shmheap_block *b, void *arg) {
  (void)b;
  struct fork_cb *f = arg;
  if (f->child != 0)
    return 0;
  pid_t pid = fork();
  if (pid != 0) {
    f->child = pid;
    return 0;
  }
  f->child = -1; /* in the child */
  if (f->call_in) {
    void *p = shmheap_alloc(f->mem, 24);
    if (p == NULL)
      _exit(2);
    shmheap_free(f->mem, p);
  }
  return 0;
}

static void test_fork_in_callback(void) {
  th_watchdog_arm(60, "/lock/fork-in-callback");
  for (int call_in = 0; call_in < 2; call_in++) {
    struct heap h;
    th_heap_open(&h, "lock", 64u << 10);
    void *keep[4];
    for (int i = 0; i < 4; i++)
      g_assert_nonnull(keep[i] = shmheap_alloc(h.mem, 100));
    struct fork_cb f = {h.mem, call_in, 0};
    int rc = shmheap_walk(h.mem, fork_cb, &f);
    if (f.child == -1) {
      /* the child, its walk done: the heap must still be whole */
      _exit(rc == 0 && shmheap_check(h.mem) == 0 ? 0 : 3);
    }
    g_assert_cmpint(rc, ==, 0);
    g_assert_cmpint(f.child, >, 0);
    th_assert_child_ok(th_wait(f.child));
    g_assert_cmpint(shmheap_check(h.mem), ==, 0);
    void *p = shmheap_alloc(h.mem, 100);
    g_assert_nonnull(p);
    shmheap_free(h.mem, p);
    for (int i = 0; i < 4; i++)
      shmheap_free(h.mem, keep[i]);
    heap_close(&h);
  }
}

void lock_callbacks_add_tests(void) {
  th_add_func("/lock/reentry", test_reentry);
  th_add_func("/lock/reentry-other-connection", test_reentry_other_connection);
  th_add_func("/lock/nested-heaps", test_nested_heaps);
  th_add_func("/lock/fork-in-callback", test_fork_in_callback);
}

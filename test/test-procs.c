/* /procs/...: the heap shared by real processes. Children connect at an
 * address other than the parent's and exchange objects by handle in both
 * directions; processes and threads race alloc/free/realloc with blocks
 * filled with their owner's pattern so that any overlap is caught; and a
 * process killed while it holds the heap's lock does not hang the others.
 */
#include "testutil.h"

#include <pthread.h>
#include <shmheap.h>
#include <stdlib.h>

#include "layout.h"

static void heap_open(struct heap *h, size_t len) {
  th_heap_open(h, "procs", len);
}

/* The heap is empty and fully merged: alloc(len - SHMHEAP_OVERHEAD)
 * succeeds. */
static void assert_empty(const struct heap *h) {
  g_assert_cmpint(shmheap_check(h->mem), ==, 0);
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(h->mem, &st), ==, 0);
  g_assert_cmpuint(st.used_blocks, ==, 0);
  g_assert_cmpuint(st.free_blocks, ==, 1);
  g_assert_cmpuint(st.used_bytes + st.free_bytes + SHH_HEADER_SIZE, ==, h->len);
  void *p = shmheap_alloc(h->mem, h->len - SHMHEAP_OVERHEAD);
  g_assert_true(p == h->base + SHMHEAP_OVERHEAD);
  shmheap_free(h->mem, p);
}

/* In a child that inherited the parent's mapping: drop it, put a spacer in
 * its place, and connect anew, so the child's base differs from the
 * parent's. Returns the child's own connection. */
static shmheap_memory_handle child_connect_elsewhere(const struct heap *h,
                                                     void **spacer) {
  /* Map a spacer and connect while the inherited mapping still stands, so
   * the kernel cannot hand the new mapping the parent's address (under
   * ThreadSanitizer's allocator it would, if the old one went first); only
   * then drop the inherited copy of the handle. */
  *spacer = mmap(NULL, h->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  TH_CHILD_CHECK(*spacer != MAP_FAILED);
  shmheap_memory_handle mem = shmheap_connect(h->name);
  TH_CHILD_CHECK(mem != NULL);
  TH_CHILD_CHECK(shmheap_underlying(mem) != (void *)h->base);
  shmheap_disconnect(h->mem);
  return mem;
}

/* ------------------------------------------------------------------------ */
/* Handles across processes                                                  */

struct exchange {
  const struct heap *h;
  shmheap_object_handle hd; /* what the parent wrote */
  size_t n;
  int pipe_w;
};

static int child_reads_parent(void *arg) {
  struct exchange *x = arg;
  void *spacer;
  shmheap_memory_handle mem = child_connect_elsewhere(x->h, &spacer);
  char *base = shmheap_underlying(mem);
  char *p = shmheap_handle_to_ptr(mem, x->hd);
  TH_CHILD_CHECK(p == base + x->hd);
  TH_CHILD_CHECK(th_check_fill(p, x->n, 1, x->hd) == -1);
  TH_CHILD_CHECK(shmheap_ptr_to_handle(mem, p) == x->hd);
  TH_CHILD_CHECK(shmheap_usable_size(mem, p) >= x->n);
  /* Answer in place, and free an object the parent made. */
  th_fill(p, x->n, 2, x->hd);
  uintptr_t b = (uintptr_t)base;
  TH_CHILD_CHECK(th_write_all(x->pipe_w, &b, sizeof b) == 0);
  shmheap_disconnect(mem);
  return 0;
}

static void test_child_reads_parent(void) {
  struct heap h;
  heap_open(&h, 1 << 20);
  const size_t n = 10000;
  char *p = shmheap_alloc(h.mem, n);
  g_assert_nonnull(p);
  shmheap_object_handle hd = shmheap_ptr_to_handle(h.mem, p);
  th_fill(p, n, 1, hd);
  int fds[2];
  g_assert_cmpint(pipe(fds), ==, 0);
  struct exchange x = {&h, hd, n, fds[1]};
  int st = th_fork_run(child_reads_parent, &x, 0);
  th_assert_child_ok(st);
  uintptr_t child_base = 0;
  g_assert_cmpint(th_read_all(fds[0], &child_base, sizeof child_base), ==, 0);
  close(fds[0]);
  close(fds[1]);
  g_test_message("parent base %p, child base %p", (void *)h.base,
                 (void *)child_base);
  g_assert_true(child_base != (uintptr_t)h.base);
  g_assert_cmpint(th_check_fill(p, n, 2, hd), ==, -1);
  shmheap_free(h.mem, p);
  assert_empty(&h);
  heap_close(&h);
}

struct reverse {
  const struct heap *h;
  int pipe_w;
};

static int child_writes_for_parent(void *arg) {
  struct reverse *r = arg;
  void *spacer;
  shmheap_memory_handle mem = child_connect_elsewhere(r->h, &spacer);
  /* Several objects of several sizes, one a linked pair. */
  for (size_t i = 0; i < 10; i++) {
    size_t n = 1 + i * 997;
    char *p = shmheap_alloc(mem, n);
    TH_CHILD_CHECK(p != NULL);
    shmheap_object_handle hd = shmheap_ptr_to_handle(mem, p);
    TH_CHILD_CHECK(hd != SHMHEAP_NULL_HANDLE);
    th_fill(p, n, 100 + i, hd);
    uint64_t msg[2] = {hd, n};
    TH_CHILD_CHECK(th_write_all(r->pipe_w, msg, sizeof msg) == 0);
  }
  uintptr_t b = (uintptr_t)shmheap_underlying(mem);
  TH_CHILD_CHECK(th_write_all(r->pipe_w, &b, sizeof b) == 0);
  shmheap_disconnect(mem);
  return 0;
}

static void test_parent_reads_child(void) {
  struct heap h;
  heap_open(&h, 1 << 20);
  int fds[2];
  g_assert_cmpint(pipe(fds), ==, 0);
  struct reverse r = {&h, fds[1]};
  int st = th_fork_run(child_writes_for_parent, &r, 0);
  th_assert_child_ok(st);
  for (size_t i = 0; i < 10; i++) {
    uint64_t msg[2];
    g_assert_cmpint(th_read_all(fds[0], msg, sizeof msg), ==, 0);
    char *p = shmheap_handle_to_ptr(h.mem, msg[0]);
    g_assert_true(p == h.base + msg[0]);
    g_assert_cmpint(th_check_fill(p, msg[1], 100 + i, msg[0]), ==, -1);
    g_assert_cmpuint(shmheap_usable_size(h.mem, p), >=, msg[1]);
    shmheap_free(h.mem, p);
  }
  uintptr_t child_base;
  g_assert_cmpint(th_read_all(fds[0], &child_base, sizeof child_base), ==, 0);
  g_assert_true(child_base != (uintptr_t)h.base);
  close(fds[0]);
  close(fds[1]);
  assert_empty(&h);
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* A linked list built by several processes at once through handles          */

struct node {
  shmheap_object_handle next;
  uint64_t value;   /* writer << 32 | sequence */
  uint64_t payload; /* bytes of pattern after the node */
};

struct list_arg {
  const struct heap *h;
  shmheap_object_handle root; /* a uint64_t head handle inside the heap */
  int writer;
};

enum { LIST_WRITERS = 4, LIST_NODES = 500 };

static int list_writer(void *arg) {
  struct list_arg *a = arg;
  void *spacer;
  shmheap_memory_handle mem = child_connect_elsewhere(a->h, &spacer);
  uint64_t *head = shmheap_handle_to_ptr(mem, a->root);
  TH_CHILD_CHECK(head != NULL);
  uint64_t rng = (uint64_t)a->writer;
  for (uint64_t i = 0; i < LIST_NODES; i++) {
    uint64_t payload = th_rand_below(&rng, 200);
    struct node *n = shmheap_alloc(mem, sizeof *n + payload);
    TH_CHILD_CHECK(n != NULL);
    shmheap_object_handle hd = shmheap_ptr_to_handle(mem, n);
    n->value = (uint64_t)a->writer << 32 | i;
    n->payload = payload;
    th_fill(n + 1, payload, n->value, hd);
    /* Lock-free push: the heap stores handles, never pointers. */
    uint64_t old = __atomic_load_n(head, __ATOMIC_ACQUIRE);
    do
      n->next = old;
    while (!__atomic_compare_exchange_n(head, &old, hd, 0, __ATOMIC_RELEASE,
                                        __ATOMIC_ACQUIRE));
  }
  shmheap_disconnect(mem);
  return 0;
}

static void test_linked_list(void) {
  struct heap h;
  heap_open(&h, 1 << 20);
  uint64_t *head = shmheap_calloc(h.mem, 1, sizeof *head);
  g_assert_nonnull(head);
  g_assert_cmpuint(*head, ==, SHMHEAP_NULL_HANDLE);
  struct list_arg args[LIST_WRITERS];
  pid_t pids[LIST_WRITERS];
  for (int w = 0; w < LIST_WRITERS; w++) {
    args[w] = (struct list_arg){&h, shmheap_ptr_to_handle(h.mem, head), w};
    pids[w] = th_fork_start(list_writer, &args[w], 0);
  }
  for (int w = 0; w < LIST_WRITERS; w++)
    th_assert_child_ok(th_wait(pids[w]));

  /* Each writer's nodes appear once, newest first. */
  uint64_t next_seq[LIST_WRITERS];
  for (int w = 0; w < LIST_WRITERS; w++)
    next_seq[w] = LIST_NODES;
  unsigned count = 0;
  shmheap_object_handle hd = *head;
  while (hd != SHMHEAP_NULL_HANDLE) {
    struct node *n = shmheap_handle_to_ptr(h.mem, hd);
    g_assert_nonnull(n);
    int w = (int)(n->value >> 32);
    g_assert_cmpint(w, >=, 0);
    g_assert_cmpint(w, <, LIST_WRITERS);
    g_assert_cmpuint(n->value & 0xffffffffu, ==, --next_seq[w]);
    g_assert_cmpint(th_check_fill(n + 1, n->payload, n->value, hd), ==, -1);
    hd = n->next;
    shmheap_free(h.mem, n);
    count++;
  }
  g_assert_cmpuint(count, ==, LIST_WRITERS * LIST_NODES);
  for (int w = 0; w < LIST_WRITERS; w++)
    g_assert_cmpuint(next_seq[w], ==, 0);
  shmheap_free(h.mem, head);
  assert_empty(&h);
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* Processes and threads racing                                              */

enum {
  RACE_PROCS = 4,
  RACE_THREADS = 4,
  RACE_OPS = 12000,
  RACE_LIVE = 48,
};

struct live {
  char *p;
  size_t n;
  uint64_t off;
};

struct racer {
  const struct heap *h;
  shmheap_memory_handle mem; /* shared by the process's threads, or own */
  int own_connection;
  uint64_t owner; /* process << 8 | thread: the pattern seed */
  int failed_line;
};

#define RACE_CHECK(r, cond)                                                    \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: racer %#llx: %s (errno %d)\n", __FILE__,         \
              __LINE__, (unsigned long long)(r)->owner, #cond, errno);         \
      (r)->failed_line = __LINE__;                                             \
      return NULL;                                                             \
    }                                                                          \
  } while (0)

/* Mostly small, sometimes medium, rarely large: like real programs. */
static size_t race_size(uint64_t *rng) {
  uint64_t k = th_rand_below(rng, 100);
  if (k < 85)
    return (size_t)th_rand_below(rng, 257);
  if (k < 99)
    return 257 + (size_t)th_rand_below(rng, 4000);
  return 4257 + (size_t)th_rand_below(rng, 60000);
}

static void *racer_main(void *arg) {
  struct racer *r = arg;
  shmheap_memory_handle mem = r->mem;
  if (r->own_connection) {
    mem = shmheap_connect(r->h->name);
    RACE_CHECK(r, mem != NULL);
  }
  char *base = shmheap_underlying(mem);
  struct live live[RACE_LIVE];
  int nlive = 0;
  uint64_t rng = r->owner * 0x9e37u + 1;
  for (int op = 0; op < RACE_OPS; op++) {
    uint64_t k = th_rand_below(&rng, 100);
    if (nlive == RACE_LIVE || (nlive > 0 && k < 40)) {
      /* free a random live block, after checking nobody wrote into it */
      int i = (int)th_rand_below(&rng, (uint64_t)nlive);
      RACE_CHECK(
          r, th_check_fill(live[i].p, live[i].n, r->owner, live[i].off) == -1);
      shmheap_free(mem, live[i].p);
      live[i] = live[--nlive];
    } else if (nlive > 0 && k < 50) {
      /* realloc: the prefix survives, in place or moved */
      int i = (int)th_rand_below(&rng, (uint64_t)nlive);
      size_t n = race_size(&rng);
      RACE_CHECK(
          r, th_check_fill(live[i].p, live[i].n, r->owner, live[i].off) == -1);
      char *q = shmheap_realloc(mem, live[i].p, n);
      if (q == NULL) {
        RACE_CHECK(r, errno == ENOMEM);
        continue;
      }
      RACE_CHECK(r, (uintptr_t)q % SHMHEAP_ALIGNMENT == 0);
      size_t keep = n < live[i].n ? n : live[i].n;
      RACE_CHECK(r, th_check_fill(q, keep, r->owner, live[i].off) == -1);
      RACE_CHECK(r, shmheap_usable_size(mem, q) >= n);
      live[i].p = q;
      live[i].n = n;
      live[i].off = (uint64_t)(q - base);
      th_fill(q, n, r->owner, live[i].off);
    } else {
      size_t n = race_size(&rng);
      int zero = k >= 95;
      char *p = zero ? shmheap_calloc(mem, 1, n) : shmheap_alloc(mem, n);
      if (p == NULL) {
        RACE_CHECK(r, errno == ENOMEM);
        continue;
      }
      RACE_CHECK(r, (uintptr_t)p % SHMHEAP_ALIGNMENT == 0);
      RACE_CHECK(r, p >= base + SHMHEAP_OVERHEAD && p + n <= base + r->h->len);
      if (zero)
        for (size_t j = 0; j < n; j++)
          RACE_CHECK(r, p[j] == 0);
      live[nlive].p = p;
      live[nlive].n = n;
      live[nlive].off = shmheap_ptr_to_handle(mem, p);
      RACE_CHECK(r, live[nlive].off == (uint64_t)(p - base));
      th_fill(p, n, r->owner, live[nlive].off);
      nlive++;
    }
    if (op % 3000 == 2999)
      RACE_CHECK(r, shmheap_check(mem) == 0);
  }
  while (nlive > 0) {
    nlive--;
    RACE_CHECK(r, th_check_fill(live[nlive].p, live[nlive].n, r->owner,
                                live[nlive].off) == -1);
    shmheap_free(mem, live[nlive].p);
  }
  if (r->own_connection)
    shmheap_disconnect(mem);
  return NULL;
}

struct race_proc {
  const struct heap *h;
  int proc;
};

static int race_child(void *arg) {
  struct race_proc *rp = arg;
  void *spacer;
  shmheap_memory_handle mem = child_connect_elsewhere(rp->h, &spacer);
  struct racer r[RACE_THREADS];
  pthread_t t[RACE_THREADS];
  for (int i = 0; i < RACE_THREADS; i++) {
    r[i] = (struct racer){rp->h, mem, i % 2,
                          (uint64_t)rp->proc << 8 | (uint64_t)i, 0};
    TH_CHILD_CHECK(pthread_create(&t[i], NULL, racer_main, &r[i]) == 0);
  }
  int bad = 0;
  for (int i = 0; i < RACE_THREADS; i++) {
    TH_CHILD_CHECK(pthread_join(t[i], NULL) == 0);
    if (r[i].failed_line)
      bad = r[i].failed_line % 200 + 1;
  }
  TH_CHILD_CHECK(shmheap_check(mem) == 0);
  shmheap_disconnect(mem);
  return bad;
}

static void test_race(void) {
  struct heap h;
  heap_open(&h, 8 << 20);
  g_test_message("race: %d processes x %d threads x %d ops (seeds = owner ids)",
                 RACE_PROCS, RACE_THREADS, RACE_OPS);
  struct race_proc rp[RACE_PROCS];
  pid_t pids[RACE_PROCS];
  for (int i = 0; i < RACE_PROCS; i++) {
    rp[i] = (struct race_proc){&h, i + 1};
    pids[i] = th_fork_start(race_child, &rp[i], 120);
  }
  /* The parent's own threads race too, on its one connection. */
  struct racer r[2];
  pthread_t t[2];
  for (int i = 0; i < 2; i++) {
    r[i] = (struct racer){&h, h.mem, 0, (uint64_t)0xff << 8 | (uint64_t)i, 0};
    g_assert_cmpint(pthread_create(&t[i], NULL, racer_main, &r[i]), ==, 0);
  }
  for (int i = 0; i < 2; i++) {
    g_assert_cmpint(pthread_join(t[i], NULL), ==, 0);
    g_assert_cmpint(r[i].failed_line, ==, 0);
  }
  for (int i = 0; i < RACE_PROCS; i++)
    th_assert_child_ok(th_wait(pids[i]));
  assert_empty(&h);
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* A process killed while it holds the lock                                  */

struct holder {
  const struct heap *h;
  int pipe_w;
  int allocate; /* allocate and free some first, so the heap is not empty */
};

static int hold_lock_forever(const struct shmheap_block *b, void *arg) {
  (void)b;
  struct holder *ho = arg;
  char c = 'L';
  if (th_write_all(ho->pipe_w, &c, 1) != 0)
    _exit(90);
  for (;;)
    pause(); /* SIGKILL ends this; alarm() is the safety net */
}

static int holder_child(void *arg) {
  struct holder *ho = arg;
  void *spacer;
  shmheap_memory_handle mem = child_connect_elsewhere(ho->h, &spacer);
  if (ho->allocate) {
    for (int i = 0; i < 10; i++) {
      void *p = shmheap_alloc(mem, 100 + (size_t)i * 50);
      TH_CHILD_CHECK(p != NULL);
      if (i % 2)
        shmheap_free(mem, p);
    }
  }
  shmheap_walk(mem, hold_lock_forever, ho);
  return 91; /* not reached */
}

/* Starts a child that takes the lock and blocks; returns once it holds it. */
static pid_t start_holder(struct holder *ho, int *rfd) {
  int fds[2];
  g_assert_cmpint(pipe(fds), ==, 0);
  ho->pipe_w = fds[1];
  pid_t pid = th_fork_start(holder_child, ho, 60);
  close(fds[1]);
  char c = 0;
  g_assert_cmpint(th_read_all(fds[0], &c, 1), ==, 0);
  g_assert_cmpint(c, ==, 'L');
  *rfd = fds[0];
  return pid;
}

static void kill_holder(pid_t pid, int rfd) {
  g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
  int st = th_wait(pid);
  g_assert_true(WIFSIGNALED(st));
  g_assert_cmpint(WTERMSIG(st), ==, SIGKILL);
  close(rfd);
}

static void test_kill_holding_lock(void) {
  struct heap h;
  heap_open(&h, 1 << 20);
  char *mine = shmheap_alloc(h.mem, 5000);
  g_assert_nonnull(mine);
  th_fill(mine, 5000, 77, shmheap_ptr_to_handle(h.mem, mine));
  for (int round = 0; round < 50; round++) {
    struct holder ho = {&h, -1, round % 2};
    int rfd;
    pid_t pid = start_holder(&ho, &rfd);
    kill_holder(pid, rfd);

    th_watchdog_arm(30, "parent's alloc/free after the lock holder died");
    void *p = shmheap_alloc(h.mem, 100);
    g_assert_nonnull(p);
    memset(p, 0xcd, 100);
    shmheap_free(h.mem, p);
    g_assert_cmpint(shmheap_check(h.mem), ==, 0);
    th_watchdog_disarm();
    g_assert_cmpint(
        th_check_fill(mine, 5000, 77, shmheap_ptr_to_handle(h.mem, mine)), ==,
        -1);
  }
  /* The dead children's blocks leaked (nobody freed them) but the heap is
   * consistent and every call works. */
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(h.mem, &st), ==, 0);
  g_assert_cmpuint(st.used_blocks, ==, 1 + 25 * 5);
  shmheap_free(h.mem, mine);
  heap_close(&h);
}

/* Another process is waiting for the lock when its holder dies: it gets
 * the lock and completes. The waiter connects before the holder takes the
 * lock (connect itself takes the lock, boundedly). */
struct waiter {
  const struct heap *h;
  int ready_w, go_r;
};

static int waiter_child(void *arg) {
  struct waiter *w = arg;
  void *spacer;
  shmheap_memory_handle mem = child_connect_elsewhere(w->h, &spacer);
  char c = 'W';
  TH_CHILD_CHECK(th_write_all(w->ready_w, &c, 1) == 0);
  TH_CHILD_CHECK(th_read_all(w->go_r, &c, 1) == 0);
  void *p = shmheap_alloc(mem, 1000); /* blocks until the holder dies */
  TH_CHILD_CHECK(p != NULL);
  th_fill(p, 1000, 5, shmheap_ptr_to_handle(mem, p));
  TH_CHILD_CHECK(shmheap_check(mem) == 0);
  shmheap_free(mem, p);
  shmheap_disconnect(mem);
  return 0;
}

static void test_kill_with_waiter(void) {
  struct heap h;
  heap_open(&h, 1 << 20);
  for (int round = 0; round < 10; round++) {
    int ready[2], go[2];
    g_assert_cmpint(pipe(ready), ==, 0);
    g_assert_cmpint(pipe(go), ==, 0);
    struct waiter w = {&h, ready[1], go[0]};
    pid_t waiter = th_fork_start(waiter_child, &w, 60);
    close(ready[1]);
    close(go[0]);
    char c;
    g_assert_cmpint(th_read_all(ready[0], &c, 1), ==, 0);
    close(ready[0]);

    struct holder ho = {&h, -1, 0};
    int rfd;
    pid_t holder = start_holder(&ho, &rfd);
    g_assert_cmpint(th_write_all(go[1], "g", 1), ==, 0);
    close(go[1]);
    /* No sleep-based ordering is asserted: the waiter may or may not be
     * blocked yet; either way it must finish. */
    kill_holder(holder, rfd);
    th_assert_child_ok(th_wait(waiter));
  }
  assert_empty(&h);
  heap_close(&h);
}

/* A live process holds the lock for longer than connect's one-second wait
 * (a slow walk, say) and then lets go: a process connecting meanwhile must
 * get its connection. The header documents EAGAIN only for a creator that
 * has not finished initialising, and tells operators to destroy such an
 * object - so an EAGAIN here would lead them to destroy a healthy heap. */
struct slow_holder {
  int locked_w, release_r;
};

static int hold_lock_until_told(const struct shmheap_block *b, void *arg) {
  (void)b;
  struct slow_holder *s = arg;
  char c = 'L';
  if (th_write_all(s->locked_w, &c, 1) != 0 ||
      th_read_all(s->release_r, &c, 1) != 0)
    _exit(92);
  return 1; /* stop the walk: the lock is released */
}

struct slow_arg {
  const struct heap *h;
  struct slow_holder s;
};

static int slow_holder_child(void *arg) {
  struct slow_arg *a = arg;
  void *spacer;
  shmheap_memory_handle mem = child_connect_elsewhere(a->h, &spacer);
  TH_CHILD_CHECK(shmheap_walk(mem, hold_lock_until_told, &a->s) == 1);
  shmheap_disconnect(mem);
  return 0;
}

struct connector {
  const struct heap *h;
  int started_w;
};

static int connector_child(void *arg) {
  struct connector *c = arg;
  shmheap_disconnect(c->h->mem);
  TH_CHILD_CHECK(th_write_all(c->started_w, "s", 1) == 0);
  shmheap_memory_handle mem = shmheap_connect(c->h->name);
  TH_CHILD_CHECK(mem != NULL);
  void *p = shmheap_alloc(mem, 100);
  TH_CHILD_CHECK(p != NULL);
  shmheap_free(mem, p);
  shmheap_disconnect(mem);
  return 0;
}

static void test_connect_while_locked(void) {
  struct heap h;
  heap_open(&h, 1 << 16);
  int locked[2], release[2], started[2];
  g_assert_cmpint(pipe(locked), ==, 0);
  g_assert_cmpint(pipe(release), ==, 0);
  g_assert_cmpint(pipe(started), ==, 0);
  struct slow_arg sa = {&h, {locked[1], release[0]}};
  pid_t holder = th_fork_start(slow_holder_child, &sa, 60);
  close(locked[1]);
  close(release[0]);
  char c;
  g_assert_cmpint(th_read_all(locked[0], &c, 1), ==, 0);

  struct connector cn = {&h, started[1]};
  pid_t conn = th_fork_start(connector_child, &cn, 60);
  close(started[1]);
  g_assert_cmpint(th_read_all(started[0], &c, 1), ==, 0);
  /* Not a timing assertion: only a delay longer than connect's own bound,
   * so the lock is still held when that bound runs out. */
  g_usleep(1500 * 1000);
  g_assert_cmpint(th_write_all(release[1], "r", 1), ==, 0);
  int st_conn = th_wait(conn);
  th_assert_child_ok(th_wait(holder));
  th_assert_child_ok(st_conn);
  close(locked[0]);
  close(release[1]);
  close(started[0]);
  g_assert_cmpint(shmheap_check(h.mem), ==, 0);
  heap_close(&h);
}

/* The name is destroyed while a child still uses the heap: the child goes
 * on working with its mapping. */
struct survivor {
  const struct heap *h;
  int go_r, done_w;
};

static int survivor_child(void *arg) {
  struct survivor *s = arg;
  void *spacer;
  shmheap_memory_handle mem = child_connect_elsewhere(s->h, &spacer);
  char c;
  TH_CHILD_CHECK(th_write_all(s->done_w, "c", 1) == 0);
  TH_CHILD_CHECK(th_read_all(s->go_r, &c, 1) == 0);
  void *p[100];
  for (int i = 0; i < 100; i++) {
    p[i] = shmheap_alloc(mem, 64);
    TH_CHILD_CHECK(p[i] != NULL);
  }
  for (int i = 0; i < 100; i++)
    shmheap_free(mem, p[i]);
  TH_CHILD_CHECK(shmheap_check(mem) == 0);
  shmheap_disconnect(mem);
  return 0;
}

static void test_destroy_while_mapped(void) {
  struct heap h;
  heap_open(&h, 1 << 16);
  int go[2], done[2];
  g_assert_cmpint(pipe(go), ==, 0);
  g_assert_cmpint(pipe(done), ==, 0);
  struct survivor s = {&h, go[0], done[1]};
  pid_t pid = th_fork_start(survivor_child, &s, 0);
  close(go[0]);
  close(done[1]);
  char c;
  g_assert_cmpint(th_read_all(done[0], &c, 1), ==, 0);
  heap_close(&h);
  g_assert_cmpint(th_write_all(go[1], "g", 1), ==, 0);
  th_assert_child_ok(th_wait(pid));
  close(go[1]);
  close(done[0]);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  th_add_func("/procs/child-reads-parent", test_child_reads_parent);
  th_add_func("/procs/parent-reads-child", test_parent_reads_child);
  th_add_func("/procs/linked-list", test_linked_list);
  th_add_func("/procs/race", test_race);
  th_add_func("/procs/kill-holding-lock", test_kill_holding_lock);
  th_add_func("/procs/kill-with-waiter", test_kill_with_waiter);
  th_add_func("/procs/destroy-while-mapped", test_destroy_while_mapped);
  th_add_func("/procs/connect-while-locked", test_connect_while_locked);
  return g_test_run();
}

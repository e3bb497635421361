/* test-crash: processes that die at any moment, with or without the heap's
 * lock, never take the heap down. Children are SIGKILLed at random moments
 * (a storm), while they block holding the lock, at every ordered write point
 * of alloc/free/realloc (with -Dcrash_points=true), and half-way through
 * create; after each death the survivors' blocks are intact, shmheap_check
 * passes and alloc/free work at once. The thread cases race threads of one
 * process (they are what the ThreadSanitizer CI step runs).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crash.h"
#include "layout.h"
#include "shmheap.h"
#include "testutil.h"

enum {
  NPARENT = 16,   /* blocks the parent holds through a storm */
  REG_SLOTS = 48, /* blocks a storm child holds at most */
};

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

/* Whether [P, P+SZ) lies in the data area of MEM (len LEN) and P is aligned. */
bool in_heap(shmheap_memory_handle mem, size_t len, const void *p, size_t sz) {
  const unsigned char *base = shmheap_underlying(mem);
  const unsigned char *b = p;
  return b >= base + SHMHEAP_OVERHEAD && b <= base + len && sz <= len &&
         (size_t)(b - base) + sz <= len &&
         (uintptr_t)b % SHMHEAP_ALIGNMENT == 0;
}

void pblock_alloc(shmheap_memory_handle mem, size_t len, struct pblock *b,
                  size_t sz, uint64_t seed) {
  b->p = shmheap_alloc(mem, sz);
  g_assert_nonnull(b->p);
  g_assert_true(in_heap(mem, len, b->p, sz));
  b->sz = sz;
  b->seed = seed;
  th_fill(b->p, sz, seed, shmheap_ptr_to_handle(mem, b->p));
}

void pblock_verify(shmheap_memory_handle mem, const struct pblock *b) {
  g_assert_cmpuint(shmheap_usable_size(mem, b->p), >=, b->sz);
  g_assert_cmpint(
      th_check_fill(b->p, b->sz, b->seed, shmheap_ptr_to_handle(mem, b->p)), ==,
      -1);
}

void pblock_free(shmheap_memory_handle mem, struct pblock *b) {
  pblock_verify(mem, b);
  errno = 0;
  shmheap_free(mem, b->p);
  g_assert_cmpint(errno, ==, 0);
  b->p = NULL;
}

/* Asserts the heap's figures agree with each other and with LEN. */
void assert_stats_sane(shmheap_memory_handle mem, size_t len) {
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(mem, &st), ==, 0);
  g_assert_cmpuint(st.size, ==, len);
  g_assert_cmpuint(st.used_bytes + st.free_bytes + SHH_HEADER_SIZE, ==,
                   st.size);
  g_assert_cmpuint(st.format_version, ==, SHMHEAP_FORMAT_VERSION);
  g_assert_cmpuint(st.largest_free, <=, st.free_bytes);
}

/* The heap works right now: check passes, the figures add up, and the
 * largest free request can be allocated, written and freed. */
void assert_heap_works(shmheap_memory_handle mem, size_t len) {
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  assert_stats_sane(mem, len);
  void *p = shmheap_alloc(mem, 100);
  g_assert_nonnull(p);
  g_assert_true(in_heap(mem, len, p, 100));
  memset(p, 0xa5, 100);
  errno = 0;
  shmheap_free(mem, p);
  g_assert_cmpint(errno, ==, 0);
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(mem, &st), ==, 0);
  if (st.largest_free > 0) {
    p = shmheap_alloc(mem, st.largest_free);
    g_assert_nonnull(p);
    g_assert_true(in_heap(mem, len, p, st.largest_free));
    shmheap_free(mem, p);
  }
  g_assert_cmpint(shmheap_check(mem), ==, 0);
}

/* Allocates every free byte of the heap in blocks of falling sizes, fills
 * each with its own pattern, and checks all of them and the parent's blocks:
 * free space handed out twice, or a parent block handed out, would show as a
 * broken pattern, and bytes handed out that the tags do not call free (a
 * block's inside taken for a free block) as more bytes than stats counted
 * free. Frees what it took. Returns the blocks taken. */
unsigned exhaust_and_verify(shmheap_memory_handle mem, size_t len,
                            const struct pblock *pb, unsigned npb) {
  static const size_t sizes[] = {8192, 1024, 128, 40, 0};
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(mem, &st), ==, 0);
  uint64_t taken = 0; /* bytes of the blocks handed out, tags included */
  GArray *got = g_array_new(FALSE, FALSE, sizeof(struct pblock));
  for (size_t s = 0; s < G_N_ELEMENTS(sizes); s++) {
    for (;;) {
      void *p = shmheap_alloc(mem, sizes[s]);
      if (p == NULL) {
        g_assert_cmpint(errno, ==, ENOMEM);
        break;
      }
      g_assert_true(in_heap(mem, len, p, sizes[s]));
      taken += shmheap_usable_size(mem, p) + 8;
      if (taken > st.free_bytes)
        g_error("%llu bytes handed out of %llu free", (unsigned long long)taken,
                (unsigned long long)st.free_bytes);
      struct pblock b = {p, sizes[s], 0xe4a5u + got->len};
      th_fill(p, b.sz, b.seed, shmheap_ptr_to_handle(mem, p));
      g_array_append_val(got, b);
    }
  }
  for (unsigned i = 0; i < npb; i++)
    if (pb[i].p)
      pblock_verify(mem, &pb[i]);
  for (guint i = 0; i < got->len; i++)
    pblock_verify(mem, &g_array_index(got, struct pblock, i));
  for (guint i = 0; i < got->len; i++)
    pblock_free(mem, &g_array_index(got, struct pblock, i));
  unsigned n = got->len;
  g_array_free(got, TRUE);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  return n;
}

bool killed_by(int status, int sig) {
  return WIFSIGNALED(status) && WTERMSIG(status) == sig;
}

const char *describe_status(int status, char *buf, size_t n) {
  if (WIFSIGNALED(status))
    snprintf(buf, n, "signal %d (%s)", WTERMSIG(status),
             strsignal(WTERMSIG(status)));
  else
    snprintf(buf, n, "exit %d", WEXITSTATUS(status));
  return buf;
}

/* Reads one byte from FD within TIMEOUT_MS; returns 1, or 0 on timeout/EOF. */
int read_byte_within(int fd, int timeout_ms) {
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  int r;
  do
    r = poll(&pfd, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  if (r != 1)
    return 0;
  char c;
  return th_read_all(fd, &c, 1) == 0;
}

/* ------------------------------------------------------------------------ */
/* /crash/kill-storm                                                         */

/* Each storm child registers its live blocks in a table inside the heap
 * (allocated by the parent), so the parent can check and free them once the
 * child is dead. The child fills a block before it publishes the handle and
 * unpublishes it before it frees or reallocs, so a kill in between leaks the
 * block instead of handing the parent a block it does not own. */
struct reg_entry {
  uint64_t hdl; /* 0 = empty slot; published last */
  uint64_t size;
  uint64_t seed;
};

struct reg_table {
  uint64_t ops; /* operations the child completed */
  struct reg_entry e[REG_SLOTS];
};

struct storm_arg {
  const char *name;
  size_t len;
  uint64_t reg_hdl;
  uint64_t seed;
};

static int storm_child(void *arg) {
  const struct storm_arg *a = arg;
  shmheap_memory_handle mem = shmheap_connect(a->name);
  TH_CHILD_CHECK(mem != NULL);
  struct reg_table *reg = shmheap_handle_to_ptr(mem, a->reg_hdl);
  TH_CHILD_CHECK(reg != NULL);
  uint64_t rng = a->seed;
  for (;;) {
    struct reg_entry *e = &reg->e[th_rand_below(&rng, REG_SLOTS)];
    uint64_t hdl = __atomic_load_n(&e->hdl, __ATOMIC_RELAXED);
    uint64_t r = th_rand(&rng);
    size_t sz = (size_t)th_rand_below(&rng, r & 1 ? 200 : 2048);
    if (hdl == 0) {
      bool zeroed = (r >> 8) % 4 == 0;
      unsigned char *p =
          zeroed ? shmheap_calloc(mem, 1, sz) : shmheap_alloc(mem, sz);
      if (p == NULL) {
        TH_CHILD_CHECK(errno == ENOMEM);
        continue;
      }
      TH_CHILD_CHECK(in_heap(mem, a->len, p, sz));
      for (size_t i = 0; zeroed && i < sz; i++)
        TH_CHILD_CHECK(p[i] == 0);
      uint64_t h = shmheap_ptr_to_handle(mem, p);
      e->size = sz;
      e->seed = th_rand(&rng);
      th_fill(p, sz, e->seed, h);
      __atomic_store_n(&e->hdl, h, __ATOMIC_RELEASE);
    } else {
      void *p = shmheap_handle_to_ptr(mem, hdl);
      TH_CHILD_CHECK(th_check_fill(p, e->size, e->seed, hdl) == -1);
      __atomic_store_n(&e->hdl, 0, __ATOMIC_RELEASE);
      if ((r >> 8) % 2 == 0) {
        errno = 0;
        shmheap_free(mem, p);
        TH_CHILD_CHECK(errno == 0);
      } else {
        void *q = shmheap_realloc(mem, p, sz);
        if (q == NULL) {
          TH_CHILD_CHECK(errno == ENOMEM);
          TH_CHILD_CHECK(th_check_fill(p, e->size, e->seed, hdl) == -1);
          __atomic_store_n(&e->hdl, hdl, __ATOMIC_RELEASE);
          continue;
        }
        TH_CHILD_CHECK(in_heap(mem, a->len, q, sz));
        size_t keep = sz < e->size ? sz : (size_t)e->size;
        TH_CHILD_CHECK(th_check_fill(q, keep, e->seed, hdl) == -1);
        uint64_t h = shmheap_ptr_to_handle(mem, q);
        e->size = sz;
        e->seed = th_rand(&rng);
        th_fill(q, sz, e->seed, h);
        __atomic_store_n(&e->hdl, h, __ATOMIC_RELEASE);
      }
    }
    __atomic_store_n(&reg->ops, reg->ops + 1, __ATOMIC_RELAXED);
  }
}

/* After a storm child died: its published blocks are intact and live; free
 * them. Returns false (with a message) on the first broken one. */
static bool reap_registry(shmheap_memory_handle mem, struct reg_table *reg) {
  for (unsigned i = 0; i < REG_SLOTS; i++) {
    struct reg_entry *e = &reg->e[i];
    if (e->hdl == 0)
      continue;
    void *p = shmheap_handle_to_ptr(mem, e->hdl);
    if (p == NULL || shmheap_usable_size(mem, p) < e->size) {
      g_test_message("dead child's block at %#" PRIx64 " is not live", e->hdl);
      return false;
    }
    if (th_check_fill(p, e->size, e->seed, e->hdl) != -1) {
      g_test_message("dead child's block at %#" PRIx64 " was overwritten",
                     e->hdl);
      return false;
    }
    errno = 0;
    shmheap_free(mem, p);
    if (errno != 0) {
      g_test_message("freeing a dead child's block: errno %d", errno);
      return false;
    }
    e->hdl = 0;
  }
  return true;
}

enum { STORM_CHILDREN = 3, STORM_KILLS = 500 };

/* A storm under way: the heap, the parent's blocks, the children and their
 * registries, and the tally of kills. */
struct storm {
  char name[64];
  size_t len;
  shmheap_memory_handle mem;
  uint64_t rng;
  struct pblock held[NPARENT], churn[NPARENT];
  struct reg_table *reg[STORM_CHILDREN];
  struct storm_arg args[STORM_CHILDREN];
  pid_t pid[STORM_CHILDREN];
  unsigned tried, survived, child_failures;
  uint64_t child_ops, kills_after_ops;
};

/* The heap, the parent's held and churned blocks, and the children. */
static void storm_start(struct storm *st) {
  st->len = 4u << 20;
  th_shm_name(st->name, sizeof st->name, "crash");
  st->mem = shmheap_create(st->name, st->len);
  g_assert_nonnull(st->mem);
  st->rng = 0x5702u;
  for (unsigned i = 0; i < NPARENT; i++) {
    pblock_alloc(st->mem, st->len, &st->held[i],
                 1 + th_rand_below(&st->rng, 5000), 100 + i);
    pblock_alloc(st->mem, st->len, &st->churn[i], th_rand_below(&st->rng, 700),
                 200 + i);
  }
  for (unsigned c = 0; c < STORM_CHILDREN; c++) {
    st->reg[c] = shmheap_calloc(st->mem, 1, sizeof(struct reg_table));
    g_assert_nonnull(st->reg[c]);
    st->args[c] = (struct storm_arg){st->name, st->len,
                                     shmheap_ptr_to_handle(st->mem, st->reg[c]),
                                     th_rand(&st->rng)};
    st->pid[c] = th_fork_start(storm_child, &st->args[c], 0);
  }
}

/* Kills one child (at a random moment once it got going; the final kills
 * take every child in order) and checks what it leaves: the dead child's
 * blocks are intact, the heap checks clean, the parent's own blocks are
 * intact and its alloc/free work at once. Then starts the child again. */
static void storm_kill_one(struct storm *st) {
  unsigned c = (unsigned)th_rand_below(&st->rng, STORM_CHILDREN);
  bool final = st->tried >= STORM_KILLS;
  if (final) { /* the end: kill every child once more, in order */
    c = st->tried - STORM_KILLS;
  } else {
    /* Let the child get going (a loaded machine may take a while to
     * fork and connect), then kill it at a random moment. */
    for (unsigned w = 0;
         w < 2000 && __atomic_load_n(&st->reg[c]->ops, __ATOMIC_RELAXED) == 0;
         w++)
      g_usleep(500);
    g_usleep((gulong)th_rand_below(&st->rng, 3000));
  }
  g_assert_cmpint(kill(st->pid[c], SIGKILL), ==, 0);
  int status = th_wait(st->pid[c]);
  st->tried++;
  if (!killed_by(status, SIGKILL)) {
    char buf[64];
    g_test_message("storm child %u ended by %s, not by our SIGKILL", c,
                   describe_status(status, buf, sizeof buf));
    st->child_failures++;
  }
  uint64_t ops = st->reg[c]->ops;
  st->child_ops += ops;
  st->kills_after_ops += ops > 0;
  st->reg[c]->ops = 0;

  bool ok = reap_registry(st->mem, st->reg[c]);
  if (ok && shmheap_check(st->mem) != 0) {
    g_test_message("check failed after kill %u: errno %d", st->tried, errno);
    ok = false;
  }
  unsigned k = (unsigned)th_rand_below(&st->rng, NPARENT);
  pblock_free(st->mem, &st->churn[k]);
  pblock_alloc(st->mem, st->len, &st->churn[k], th_rand_below(&st->rng, 700),
               300 + st->tried);
  if (st->tried % 16 == 0)
    for (unsigned i = 0; i < NPARENT; i++)
      pblock_verify(st->mem, &st->held[i]);
  st->survived += ok;
  if (!final)
    st->pid[c] = th_fork_start(storm_child, &st->args[c], 0);
}

/* Everything that is not leaked goes back: after the parent frees all it
 * holds, only the blocks of children killed between alloc and publish
 * remain allocated. */
static void storm_wind_down(struct storm *st) {
  for (unsigned i = 0; i < NPARENT; i++) {
    pblock_free(st->mem, &st->held[i]);
    pblock_free(st->mem, &st->churn[i]);
  }
  for (unsigned c = 0; c < STORM_CHILDREN; c++)
    shmheap_free(st->mem, st->reg[c]);
  struct shmheap_stats stats;
  g_assert_cmpint(shmheap_stats(st->mem, &stats), ==, 0);
  g_test_message(
      "kill-storm: %" PRIu64 " blocks (%" PRIu64
      " bytes) leaked by children killed between an alloc and publishing it",
      stats.used_blocks, stats.used_bytes);
  g_assert_cmpuint(stats.used_blocks, <=, 2 * st->tried);
  assert_heap_works(st->mem, st->len);
  shmheap_destroy(NULL, st->mem);
  g_assert_false(th_shm_exists(st->name));
}

static void test_kill_storm(void) {
  th_watchdog_arm(300, "/crash/kill-storm");
  static struct storm st;
  memset(&st, 0, sizeof st);
  storm_start(&st);
  while (st.tried < STORM_KILLS + STORM_CHILDREN)
    storm_kill_one(&st);

  g_test_message("kill-storm: %u of %u kills survived (%" PRIu64
                 " of them after the child had completed operations, %" PRIu64
                 " child operations in all)",
                 st.survived, st.tried, st.kills_after_ops, st.child_ops);
  g_assert_cmpuint(st.child_failures, ==, 0);
  g_assert_cmpuint(st.survived, ==, st.tried);
  g_assert_cmpuint(st.kills_after_ops, >, STORM_KILLS / 2);

  for (unsigned i = 0; i < NPARENT; i++)
    pblock_verify(st.mem, &st.held[i]);
  assert_heap_works(st.mem, st.len);
  unsigned n = exhaust_and_verify(st.mem, st.len, st.held, NPARENT);
  g_assert_cmpuint(n, >, 0);
  storm_wind_down(&st);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  th_add_func("/crash/kill-storm", test_kill_storm);
  crash_points_cases();
  return g_test_run();
}

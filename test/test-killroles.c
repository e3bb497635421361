/* test-killroles: /lock/kill-storm-roles: a kill storm in which every kill is
 * classified by the victim's role at the instant it died. Worker processes
 * (some with two threads; LIFO and random-live mixes of alloc, calloc, realloc,
 * free and check) hammer one heap and publish their threads' in-call flags and
 * slowest calls on a shared board (roles.c); the parent repeatedly stops a
 * victim (in turn a holder, an idle and a waiting process when it finds one
 * within 100 ms, else a random one), classifies it as holder, waiter or idle,
 * SIGKILLs and respawns it, until each role has been hit enough times (and, in
 * the first STORM_SOFT_S, until WANT_KILLS kills). Asserted: no call that
 * returned took longer than MAX_CALL_S, less the time it overlapped the
 * killer's stop windows (roles.h), shmheap_check passes after every fourth kill
 * and at the end, no block is handed out twice (each is stamped with its
 * owner's pid and serial, verified before it is freed), and once every worker
 * has freed its blocks and exited, the heap holds only blocks of killed
 * processes (plus at most one unstamped block per thread killed inside a call),
 * which the parent frees, leaving the heap empty and whole.
 */
#include "testutil.h"

#include <inttypes.h>
#include <pthread.h>
#include <shmheap.h>

#include "roles.h"

enum {
  PROCS = 5,         /* workers; the first three run two threads */
  THREADS = 2,       /* the most threads a worker runs */
  LIVE = 24,         /* blocks a thread holds at the most */
  MIN_PER_ROLE = 15, /* kills required in each role */
  MIN_KILLS = 60,    /* kills required in all */
  WANT_KILLS = 150,  /* kills made when there is time (STORM_SOFT_S) */
  MAX_KILLS = 600,   /* the storm stops here whatever the roles */
  STAMP_MAGIC = 0x57a3
};

static const size_t HEAP_LEN = 64u << 20;
static const double STORM_SOFT_S = 6.0; /* no kills beyond the required */
static const double STORM_S = 15.0;     /* the storm stops after this */
static const double MAX_CALL_S = 1.5;

/* The head of every block a worker holds: who holds it. */
struct stamp {
  uint32_t magic;
  uint32_t pid;
  uint64_t serial;
};

struct held {
  unsigned char *p;
  size_t n;
  uint64_t serial;
};

struct wthread {
  shmheap_memory_handle mem;
  const struct role_board *board;
  struct role_slot *slot;
  int lifo; /* 1: LIFO (a stack), 0: random live set */
  uint64_t rng, serial;
  struct held h[LIVE];
  unsigned nheld;
};

/* ------------------------------------------------------------------------ */
/* Workers                                                                   */

static size_t rand_size(uint64_t *rng) {
  if (th_rand_below(rng, 16) == 0)
    return 4096 + (size_t)th_rand_below(rng, 60000);
  return sizeof(struct stamp) + (size_t)th_rand_below(rng, 1000);
}

/* Stamps the block B with this thread's next serial: its head says who
 * holds it, its last 32 bytes carry the pattern of (pid, serial). */
static void stamp_block(struct wthread *t, struct held *b) {
  b->serial = ++t->serial;
  struct stamp s = {STAMP_MAGIC, (uint32_t)getpid(), b->serial};
  memcpy(b->p, &s, sizeof s);
  if (b->n >= 64)
    th_fill(b->p + b->n - 32, 32, s.pid, s.serial);
}

/* Whether B still holds this thread's stamp: a block handed to someone
 * else as well would have theirs. */
static int stamp_ok(const struct held *b) {
  struct stamp s;
  memcpy(&s, b->p, sizeof s);
  return s.magic == STAMP_MAGIC && s.pid == (uint32_t)getpid() &&
         s.serial == b->serial &&
         (b->n < 64 ||
          th_check_fill(b->p + b->n - 32, 32, s.pid, s.serial) == -1);
}

/* A new block of a random size into B; 0 when the heap had no room. The
 * stamp is written inside the call's in-call window, so a kill after the
 * call leaves a stamped block. */
static int take(struct wthread *t, struct held *b) {
  size_t n = rand_size(&t->rng);
  int zeroed = th_rand_below(&t->rng, 4) == 0;
  double t0 = role_call_begin(t->slot);
  errno = 0;
  unsigned char *p =
      zeroed ? shmheap_calloc(t->mem, 1, n) : shmheap_alloc(t->mem, n);
  if (p != NULL) {
    TH_CHILD_CHECK(!zeroed || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0));
    *b = (struct held){p, n, 0};
    stamp_block(t, b);
  }
  role_call_end(t->board, t->slot, t0);
  TH_CHILD_CHECK(p != NULL || errno == ENOMEM);
  return p != NULL;
}

static void give_back(struct wthread *t, struct held *b) {
  TH_CHILD_CHECK(stamp_ok(b));
  double t0 = role_call_begin(t->slot);
  errno = 0;
  shmheap_free(t->mem, b->p);
  role_call_end(t->board, t->slot, t0);
  TH_CHILD_CHECK(errno == 0);
}

static void resize(struct wthread *t, struct held *b) {
  TH_CHILD_CHECK(stamp_ok(b));
  size_t n = rand_size(&t->rng);
  double t0 = role_call_begin(t->slot);
  errno = 0;
  unsigned char *p = shmheap_realloc(t->mem, b->p, n);
  if (p != NULL) {
    /* the head is kept, and the old tail when the block did not shrink */
    struct held kept = {p, n < b->n ? sizeof(struct stamp) : b->n, b->serial};
    TH_CHILD_CHECK(stamp_ok(&kept));
    *b = (struct held){p, n, 0};
    stamp_block(t, b);
  }
  role_call_end(t->board, t->slot, t0);
  TH_CHILD_CHECK(p != NULL || errno == ENOMEM);
}

/* One step of the LIFO mix: push a block, pop the top one, or resize it
 * (the top of a LIFO run usually grows in place). */
static void lifo_step(struct wthread *t) {
  uint64_t r = th_rand_below(&t->rng, 100);
  if (t->nheld < LIVE && (t->nheld == 0 || r < 45)) {
    t->nheld += (unsigned)take(t, &t->h[t->nheld]);
  } else if (r < 85) {
    give_back(t, &t->h[--t->nheld]);
  } else {
    resize(t, &t->h[t->nheld - 1]);
  }
}

/* One step of the random-live mix: a random slot is filled, freed or
 * resized. */
static void live_step(struct wthread *t) {
  unsigned i = (unsigned)th_rand_below(&t->rng, LIVE);
  struct held *b = &t->h[i];
  if (b->p == NULL) {
    (void)take(t, b);
  } else if (th_rand_below(&t->rng, 2) == 0) {
    give_back(t, b);
    b->p = NULL;
  } else {
    resize(t, b);
  }
}

static void *wthread_main(void *arg) {
  struct wthread *t = arg;
  role_slot_claim(t->slot);
  for (uint64_t n = 1; !role_stop_asked(t->board); n++) {
    if (t->lifo)
      lifo_step(t);
    else
      live_step(t);
    if (n % 512 == 0) {
      /* a walk of every block under the lock: a long hold */
      double t0 = role_call_begin(t->slot);
      int err = shmheap_check(t->mem);
      role_call_end(t->board, t->slot, t0);
      TH_CHILD_CHECK(err == 0);
    }
    if (n % 256 == 0)
      g_usleep(200); /* outside the library for a while: idle */
  }
  /* asked to finish: every block goes back, each checked first */
  for (unsigned i = 0; i < LIVE; i++)
    if ((t->lifo ? i < t->nheld : t->h[i].p != NULL))
      give_back(t, &t->h[i]);
  return NULL;
}

struct worker {
  const char *name;
  struct role_board *board;
  unsigned first_slot, threads;
  uint64_t seed;
};

static int worker_main(void *arg) {
  const struct worker *w = arg;
  struct role_slot *slots = &w->board->slot[w->first_slot];
  role_slot_claim(&slots[0]);
  double t0 = role_call_begin(&slots[0]);
  shmheap_memory_handle mem = shmheap_connect(w->name);
  role_call_end(w->board, &slots[0], t0);
  TH_CHILD_CHECK(mem != NULL);
  struct wthread *t = calloc(w->threads, sizeof *t);
  pthread_t tid[THREADS];
  TH_CHILD_CHECK(t != NULL);
  for (unsigned i = 0; i < w->threads; i++) {
    t[i] = (struct wthread){.mem = mem,
                            .board = w->board,
                            .slot = &slots[i],
                            .lifo = (w->first_slot / THREADS + i) % 2 == 0,
                            .rng = w->seed + 7919u * i};
    TH_CHILD_CHECK(pthread_create(&tid[i], NULL, wthread_main, &t[i]) == 0);
  }
  for (unsigned i = 0; i < w->threads; i++)
    TH_CHILD_CHECK(pthread_join(tid[i], NULL) == 0);
  free(t);
  shmheap_disconnect(mem);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* The storm                                                                 */

struct storm {
  shmheap_memory_handle mem;
  struct role_board *board;
  struct worker w[PROCS];
  pid_t pid[PROCS];
  pid_t *killed; /* every pid killed */
  unsigned kills, roles[ROLE_N];
  uint64_t calls;    /* calls finished by the killed incarnations */
  double max_call_s; /* the slowest call that returned, anywhere */
  double max_free_s; /* the same, less the stop windows it overlapped */
};

/* Folds the slots of worker C into the totals, and clears them for its
 * next incarnation (C is dead or done: nobody writes them now). */
static void harvest(struct storm *s, unsigned c) {
  for (unsigned i = 0; i < THREADS; i++) {
    struct role_slot *sl = &s->board->slot[c * THREADS + i];
    s->calls += sl->calls;
    s->max_call_s = MAX(s->max_call_s, sl->max_call_s);
    s->max_free_s = MAX(s->max_free_s, sl->max_free_s);
    memset(sl, 0, sizeof *sl);
  }
}

static void spawn(struct storm *s, unsigned c, uint64_t seed) {
  s->w[c].seed = seed;
  s->pid[c] = th_fork_start(worker_main, &s->w[c], 120);
}

/* Stops the victim, into *C, and returns its role. The kills take turns
 * wanting a holder (the process the lock word names), an idle and a
 * waiting process (a random one): the candidate is stopped and, when its
 * role is not the one wanted, let go again, for up to 100 ms; then a
 * random process is killed whatever its role. */
static int stop_victim(struct storm *s, uint64_t *rng, unsigned *c) {
  static const int turn[3] = {ROLE_HOLDER, ROLE_IDLE, ROLE_WAITER};
  int want = turn[s->kills % 3];
  for (double end = th_now_s() + 0.1; th_now_s() < end;) {
    pid_t v = want == ROLE_HOLDER ? role_lock_holder(s->mem, s->pid, PROCS)
                                  : s->pid[th_rand_below(rng, PROCS)];
    for (*c = 0; *c < PROCS && s->pid[*c] != v; ++*c)
      ;
    if (v == 0 || *c == PROCS)
      continue;
    int role = role_stop(s->board, s->mem, v, *c * THREADS, THREADS);
    if (role == want)
      return role;
    g_assert_cmpint(role, >=, 0); /* workers run until asked to finish */
    role_resume(s->board, v);
  }
  *c = (unsigned)th_rand_below(rng, PROCS);
  return role_stop(s->board, s->mem, s->pid[*c], *c * THREADS, THREADS);
}

/* Whether the storm has made the kills it must, and, while it has been
 * going on for less than STORM_SOFT_S, those it wants. */
static gboolean enough(const struct storm *s, double secs) {
  for (int r = 0; r < ROLE_N; r++)
    if (s->roles[r] < MIN_PER_ROLE)
      return FALSE;
  return s->kills >= (secs < STORM_SOFT_S ? WANT_KILLS : MIN_KILLS);
}

/* One kill: stop, classify, kill, check the heap (every fourth time),
 * respawn. */
static void one_kill(struct storm *s, uint64_t *rng) {
  unsigned c;
  int role = stop_victim(s, rng, &c);
  g_assert_cmpint(role, >=, 0); /* workers run until asked to finish */
  role_kill(s->board, s->pid[c]);
  s->killed[s->kills++] = s->pid[c];
  s->roles[role]++;
  harvest(s, c);
  if (s->kills % 4 == 0) {
    /* not after every kill: the workers find most dead owners themselves */
    double t0 = th_now_s();
    g_assert_cmpint(shmheap_check(s->mem), ==, 0);
    s->max_call_s = MAX(s->max_call_s, th_now_s() - t0);
    s->max_free_s = MAX(s->max_free_s, th_now_s() - t0);
  }
  spawn(s, c, th_rand(rng));
}

struct leaks {
  const struct storm *s;
  uint64_t hdl[1 << 16];
  unsigned n, unstamped;
};

/* Collects every used block; counts those whose stamp names no killed
 * process. */
static int collect_leak(const struct shmheap_block *b, void *arg) {
  struct leaks *l = arg;
  if (!b->used)
    return 0;
  g_assert_cmpuint(l->n, <, G_N_ELEMENTS(l->hdl));
  l->hdl[l->n++] = b->handle;
  struct stamp st = {0, 0, 0};
  if (b->usable >= sizeof st)
    memcpy(&st, (char *)shmheap_handle_to_ptr(l->s->mem, b->handle), sizeof st);
  gboolean by_killed = FALSE;
  for (unsigned k = 0; st.magic == STAMP_MAGIC && k < l->s->kills; k++)
    by_killed = by_killed || (pid_t)st.pid == l->s->killed[k];
  l->unstamped += !by_killed;
  return 0;
}

static void test_kill_storm_roles(void) {
  th_watchdog_arm(120, "/lock/kill-storm-roles");
  struct heap h;
  th_heap_open(&h, "killroles", HEAP_LEN);
  struct storm *s = g_new0(struct storm, 1);
  s->mem = h.mem;
  s->board = role_board_new();
  s->killed = g_new0(pid_t, MAX_KILLS);
  uint64_t rng = 0x4b111e5u;
  for (unsigned c = 0; c < PROCS; c++) {
    s->w[c] = (struct worker){h.name, s->board, c * THREADS, c < 3 ? 2 : 1, 0};
    spawn(s, c, th_rand(&rng));
  }
  double start = th_now_s();
  while (!enough(s, th_now_s() - start) && s->kills < MAX_KILLS &&
         th_now_s() - start < STORM_S) {
    g_usleep(1000 + (gulong)th_rand_below(&rng, 5000));
    one_kill(s, &rng);
  }
  double storm_s = th_now_s() - start;
  __atomic_store_n(&s->board->stop, 1, __ATOMIC_RELAXED);
  for (unsigned c = 0; c < PROCS; c++) {
    th_assert_child_ok(th_wait(s->pid[c]));
    harvest(s, c);
  }
  g_test_message("%u kills in %.1f s: %u holder, %u waiter, %u idle; %" PRIu64
                 " calls; the slowest that returned took %.3f s, %.3f s "
                 "outside the stop windows (the longest: %.3f s)",
                 s->kills, storm_s, s->roles[ROLE_HOLDER],
                 s->roles[ROLE_WAITER], s->roles[ROLE_IDLE], s->calls,
                 s->max_call_s, s->max_free_s, role_longest_stop(s->board));
  for (int r = 0; r < ROLE_N; r++)
    g_assert_cmpuint(s->roles[r], >=, MIN_PER_ROLE);
  g_assert_cmpuint(s->kills, >=, MIN_KILLS);
  g_assert_cmpfloat(s->max_free_s, <, MAX_CALL_S);
  g_assert_cmpint(shmheap_check(h.mem), ==, 0);

  /* only the killed processes' blocks are left, and they can be freed */
  struct leaks *l = g_new0(struct leaks, 1);
  l->s = s;
  g_assert_cmpint(shmheap_walk(h.mem, collect_leak, l), ==, 0);
  g_test_message("%u blocks leaked by killed processes, %u of them "
                 "unstamped (killed inside their call)",
                 l->n, l->unstamped);
  g_assert_cmpuint(l->unstamped, <=,
                   (s->roles[ROLE_HOLDER] + s->roles[ROLE_WAITER]) * THREADS);
  for (unsigned i = 0; i < l->n; i++) {
    errno = 0;
    shmheap_free(h.mem, shmheap_handle_to_ptr(h.mem, l->hdl[i]));
    g_assert_cmpint(errno, ==, 0);
  }
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(h.mem, &st), ==, 0);
  g_assert_cmpuint(st.used_blocks, ==, 0);
  g_assert_cmpuint(st.largest_free, ==, HEAP_LEN - SHMHEAP_OVERHEAD);
  g_assert_cmpint(shmheap_check(h.mem), ==, 0);
  g_free(l);
  g_free(s->killed);
  role_board_free(s->board);
  g_free(s);
  heap_close(&h);
  th_watchdog_disarm();
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  th_install_cleanup();
  th_add_func("/lock/kill-storm-roles", test_kill_storm_roles);
  return g_test_run();
}

/* test-hostile: what a careless or hostile caller, user or peer can throw at
 * the library: bad names, other users without access, permission bits,
 * corrupted headers and block tags in the shared object, and pointers that
 * are not the start of a live block. Each is refused with an errno, or
 * survived; never a crash, a hang, or memory handed out beyond the heap.
 * Anything that could crash runs in a forked child with an alarm(), so a
 * crash or a hang shows as a signal the parent counts and asserts on.
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

#include "layout.h"
#include "shmheap.h"
#include "testutil.h"

enum {
  HDR_AND_TAG = SHH_FIRST + SHH_TAG, /* header plus the first block's tag */
  PARALLEL = 16,                     /* corruption trials running at once */
  TRIAL_ALARM = 10,                  /* seconds a corruption trial may take */
};

static bool in_heap(shmheap_memory_handle mem, size_t len, const void *p,
                    size_t sz) {
  const unsigned char *base = shmheap_underlying(mem);
  const unsigned char *b = p;
  return b >= base + SHMHEAP_OVERHEAD && b <= base + len && sz <= len &&
         (size_t)(b - base) + sz <= len &&
         (uintptr_t)b % SHMHEAP_ALIGNMENT == 0;
}

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
/* Corruption trials: a reference image, corrupted copies, forked children  */

enum outcome {
  O_WORKS,      /* connected; every call succeeded, check clean */
  O_DETECTED,   /* connected; a call reported EUCLEAN */
  O_REFUSED,    /* connected; a call refused a pointer (EINVAL) only */
  O_C_EINVAL,   /* connect: NULL + EINVAL */
  O_C_EPROTO,   /* connect: NULL + EPROTO */
  O_C_EAGAIN,   /* connect: NULL + EAGAIN */
  O_C_EUCLEAN,  /* connect: NULL + EUCLEAN */
  O_BAD_ERRNO,  /* a call failed with an undocumented errno */
  O_OUTSIDE,    /* memory handed out beyond the heap's data area */
  O_CHILD_FAIL, /* a check in the child, or a sanitizer, failed it */
  O_CRASHED,    /* the child died by a signal */
  O_TIMEOUT,    /* the child hung (SIGALRM) */
  O_N,
};

static const char *const outcome_names[O_N] = {
    "works",
    "detected (EUCLEAN)",
    "pointer refused (EINVAL)",
    "connect EINVAL",
    "connect EPROTO",
    "connect EAGAIN",
    "connect EUCLEAN",
    "BAD ERRNO",
    "OUTSIDE THE HEAP",
    "CHILD CHECK FAILED",
    "CRASHED",
    "HUNG",
};

/* Exit codes of the trial children: outcome + 100 (TH_CHILD_CHECK uses
 * 1..200 for its lines, so both are told apart by range only roughly; the
 * trial children use TRIAL_EXIT, never TH_CHILD_CHECK). */
#define TRIAL_EXIT(o) _exit(100 + (o))

static enum outcome classify(int status) {
  if (WIFSIGNALED(status))
    return WTERMSIG(status) == SIGALRM ? O_TIMEOUT : O_CRASHED;
  int code = WEXITSTATUS(status);
  if (code >= 100 && code < 100 + O_CRASHED)
    return (enum outcome)(code - 100);
  return O_CHILD_FAIL;
}

struct trial_ctx {
  size_t len;
  /* the reference heap's blocks (offsets of tags), from a walk */
  uint64_t used_off[64], used_size[64];
  unsigned nused;
  uint64_t free_off[64], free_size[64];
  unsigned nfree;
};

struct trial {
  char name[64];
  char desc[160];
  uint64_t seed;
  pid_t pid;
  const struct trial_ctx *ctx;
};

/* Tracks what a trial child saw, to pick its outcome. */
struct seen {
  bool euclean, einval, bad;
  int bad_errno;
  const char *bad_what;
};

static void note_errno(struct seen *s, const char *what, int e, bool einval_ok,
                       bool enomem_ok) {
  if (e == EUCLEAN)
    s->euclean = true;
  else if (e == EINVAL && einval_ok)
    s->einval = true;
  else if (e == ENOMEM && enomem_ok)
    ;
  else if (!s->bad) {
    s->bad = true;
    s->bad_errno = e;
    s->bad_what = what;
  }
}

static void finish(const struct trial *t, const struct seen *s) {
  if (s->bad) {
    fprintf(stderr, "trial %s: %s failed with errno %d (%s)\n", t->desc,
            s->bad_what, s->bad_errno, strerror(s->bad_errno));
    TRIAL_EXIT(O_BAD_ERRNO);
  }
  TRIAL_EXIT(s->euclean ? O_DETECTED : s->einval ? O_REFUSED : O_WORKS);
}

static void outside(const struct trial *t, const char *what, const void *p,
                    size_t sz) {
  fprintf(stderr, "trial %s: %s returned %p (%zu bytes) outside the heap\n",
          t->desc, what, p, sz);
  TRIAL_EXIT(O_OUTSIDE);
}

static int count_block(const struct shmheap_block *b, void *arg) {
  (void)b;
  ++*(unsigned *)arg;
  return 0;
}

enum { MAX_GOT = 12 };

/* Allocates (some with calloc) fixed and random sizes and writes them;
 * returns how many it got, in GOT and GSZ. */
static unsigned exercise_alloc(const struct trial *t, shmheap_memory_handle mem,
                               struct seen *s, uint64_t *rng,
                               void *got[MAX_GOT], size_t gsz[MAX_GOT]) {
  unsigned ngot = 0;
  static const size_t sizes[] = {0, 1, 24, 100, 1000, 5000, 40000};
  for (size_t i = 0; i < G_N_ELEMENTS(sizes) + 3; i++) {
    size_t sz = i < G_N_ELEMENTS(sizes) ? sizes[i] : th_rand_below(rng, 3000);
    errno = 0;
    void *p = i % 3 == 2 ? shmheap_calloc(mem, 1, sz) : shmheap_alloc(mem, sz);
    if (p == NULL) {
      note_errno(s, "alloc", errno, false, true);
      continue;
    }
    if (!in_heap(mem, t->ctx->len, p, sz))
      outside(t, "alloc", p, sz);
    memset(p, 0x5a, sz);
    got[ngot] = p;
    gsz[ngot++] = sz;
  }
  return ngot;
}

/* Frees the reference heap's used blocks, in a random order, some through
 * realloc first. */
static void exercise_free_ref(const struct trial *t, shmheap_memory_handle mem,
                              struct seen *s, uint64_t *rng) {
  const struct trial_ctx *c = t->ctx;
  unsigned order[64];
  for (unsigned i = 0; i < c->nused; i++)
    order[i] = i;
  for (unsigned i = c->nused; i > 1; i--) {
    unsigned j = (unsigned)th_rand_below(rng, i);
    unsigned tmp = order[i - 1];
    order[i - 1] = order[j];
    order[j] = tmp;
  }
  for (unsigned k = 0; k < c->nused; k++) {
    unsigned i = order[k];
    void *p = shmheap_handle_to_ptr(mem, c->used_off[i] + SHH_TAG);
    if (p == NULL) {
      s->bad = true;
      s->bad_errno = 0;
      s->bad_what = "handle_to_ptr of a reference block";
      continue;
    }
    errno = 0;
    size_t us = shmheap_usable_size(mem, p);
    if (us == 0)
      note_errno(s, "usable_size", errno, true, false);
    else if (!in_heap(mem, c->len, p, us))
      outside(t, "usable_size", p, us);
    errno = 0;
    if (k % 3 == 0) {
      size_t sz = th_rand_below(rng, 2000);
      void *q = shmheap_realloc(mem, p, sz);
      if (q == NULL) {
        note_errno(s, "realloc", errno, true, true);
        continue;
      }
      if (!in_heap(mem, c->len, q, sz))
        outside(t, "realloc", q, sz);
      memset(q, 0x3c, sz);
      p = q;
      errno = 0;
    }
    shmheap_free(mem, p);
    if (errno != 0)
      note_errno(s, "free", errno, true, false);
  }
}

/* Frees what exercise_alloc got, every other block grown by realloc
 * first. */
static void exercise_release(const struct trial *t, shmheap_memory_handle mem,
                             struct seen *s, void *got[MAX_GOT],
                             const size_t gsz[MAX_GOT], unsigned ngot) {
  for (unsigned i = 0; i < ngot; i++) {
    void *p = got[i];
    if (i % 2 == 0) {
      errno = 0;
      void *q = shmheap_realloc(mem, p, gsz[i] * 2 + 16);
      if (q == NULL) {
        note_errno(s, "realloc", errno, true, true);
      } else {
        if (!in_heap(mem, t->ctx->len, q, gsz[i] * 2 + 16))
          outside(t, "realloc", q, gsz[i] * 2 + 16);
        p = q;
      }
    }
    errno = 0;
    shmheap_free(mem, p);
    if (errno != 0)
      note_errno(s, "free", errno, true, false);
  }
}

/* Allocates, writes, reallocates and frees on a heap that may be damaged:
 * every call succeeds or fails with a documented errno; every block it gets
 * lies inside the data area. Frees the reference heap's used blocks too
 * (when FREE_REF). */
static void exercise(const struct trial *t, shmheap_memory_handle mem,
                     struct seen *s, bool free_ref) {
  uint64_t rng = t->seed;

  errno = 0;
  if (shmheap_check(mem) != 0)
    note_errno(s, "check", errno, false, false);
  struct shmheap_stats st;
  if (shmheap_stats(mem, &st) != 0)
    note_errno(s, "stats", errno, false, false);

  void *got[MAX_GOT];
  size_t gsz[MAX_GOT];
  unsigned ngot = exercise_alloc(t, mem, s, &rng, got, gsz);
  if (free_ref)
    exercise_free_ref(t, mem, s, &rng);
  exercise_release(t, mem, s, got, gsz, ngot);

  errno = 0;
  if (shmheap_check(mem) != 0)
    note_errno(s, "check", errno, false, false);
  errno = 0;
  unsigned nblocks = 0;
  if (shmheap_walk(mem, count_block, &nblocks) != 0)
    note_errno(s, "walk", errno, false, false);
}

/* The trial child: connect to the corrupted copy and use it. */
static int trial_child(void *arg) {
  const struct trial *t = arg;
  errno = 0;
  shmheap_memory_handle mem = shmheap_connect(t->name);
  if (mem == NULL) {
    switch (errno) {
    case EINVAL:
      TRIAL_EXIT(O_C_EINVAL);
    case EPROTO:
      TRIAL_EXIT(O_C_EPROTO);
    case EAGAIN:
      TRIAL_EXIT(O_C_EAGAIN);
    case EUCLEAN:
      TRIAL_EXIT(O_C_EUCLEAN);
    default:
      fprintf(stderr, "trial %s: connect failed with errno %d (%s)\n", t->desc,
              errno, strerror(errno));
      TRIAL_EXIT(O_BAD_ERRNO);
    }
  }
  struct seen s = {0};
  exercise(t, mem, &s, true);
  shmheap_disconnect(mem);
  finish(t, &s);
  return 0;
}

/* Writes IMG (LEN bytes) as the new shared memory object NAME. */
static void write_object(const char *name, const unsigned char *img,
                         size_t len) {
  int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
  g_assert_cmpint(fd, >=, 0);
  g_assert_cmpint(ftruncate(fd, (off_t)len), ==, 0);
  g_assert_cmpint(th_write_all(fd, img, len), ==, 0);
  close(fd);
}

typedef void (*corrupt_fn)(unsigned char *img, const struct trial_ctx *c,
                           uint64_t *rng, char *desc, size_t n);

/* Runs NTRIALS corrupted copies of REF, PARALLEL at a time (a new one starts
 * as soon as one ends), and counts the outcomes into COUNTS. Logs the first
 * few bad ones. The corruptions depend only on SEED: to replay trial N in
 * this process (say under gdb), run the case with SHMHEAP_TEST_TRIAL=N. */
static void run_trials(const unsigned char *ref, const struct trial_ctx *ctx,
                       unsigned ntrials, corrupt_fn corrupt, uint64_t seed,
                       unsigned counts[O_N]) {
  const size_t len = ctx->len;
  unsigned char *img = g_malloc(len);
  struct trial *tr = g_new0(struct trial, PARALLEL);
  unsigned *index = g_new0(unsigned, PARALLEL);
  uint64_t rng = seed;
  unsigned logged = 0, started = 0, running = 0;
  const char *replay = g_getenv("SHMHEAP_TEST_TRIAL");
  long replay_n = replay ? strtol(replay, NULL, 10) : -1;
  while (started < ntrials || running > 0) {
    if (started < ntrials && running < PARALLEL) {
      unsigned slot = 0;
      while (tr[slot].pid != 0)
        slot++;
      struct trial *t = &tr[slot];
      memcpy(img, ref, len);
      corrupt(img, ctx, &rng, t->desc, sizeof t->desc);
      t->seed = th_rand(&rng);
      t->ctx = ctx;
      index[slot] = started++;
      if (replay_n >= 0 && index[slot] != (unsigned long)replay_n)
        continue;
      th_shm_name(t->name, sizeof t->name, "hostile");
      write_object(t->name, img, len);
      if (replay_n >= 0) {
        g_test_message("replaying trial %ld in process: %s", replay_n, t->desc);
        trial_child(t); /* exits */
      }
      t->pid = th_fork_start(trial_child, t, TRIAL_ALARM);
      running++;
      continue;
    }
    if (running == 0)
      break;
    int status;
    pid_t pid;
    do
      pid = waitpid(-1, &status, 0);
    while (pid < 0 && errno == EINTR);
    g_assert_cmpint(pid, >, 0);
    unsigned slot = 0;
    while (slot < PARALLEL && tr[slot].pid != pid)
      slot++;
    g_assert_cmpuint(slot, <, PARALLEL);
    struct trial *t = &tr[slot];
    enum outcome o = classify(status);
    counts[o]++;
    if (o >= O_BAD_ERRNO && logged++ < 10)
      g_test_message(
          "trial %u (%s): %s (%s %d)", index[slot], t->desc, outcome_names[o],
          WIFSIGNALED(status) ? "signal" : "exit code",
          WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    shm_unlink(t->name);
    t->pid = 0;
    running--;
  }
  g_free(index);
  g_free(tr);
  g_free(img);
}

static void report(const char *what, unsigned ntrials,
                   const unsigned counts[O_N]) {
  GString *s = g_string_new(NULL);
  g_string_append_printf(s, "%s: %u corruptions:", what, ntrials);
  for (int o = 0; o < O_N; o++)
    if (counts[o])
      g_string_append_printf(s, " %s %u;", outcome_names[o], counts[o]);
  g_test_message("%s", s->str);
  g_string_free(s, TRUE);
  for (int o = O_BAD_ERRNO; o < O_N; o++)
    if (counts[o])
      g_error("%s: %u trials %s (see the messages above and stderr)", what,
              counts[o], outcome_names[o]);
}

static int collect_block(const struct shmheap_block *b, void *arg) {
  struct trial_ctx *c = arg;
  if (b->used && c->nused < 64) {
    c->used_off[c->nused] = b->offset;
    c->used_size[c->nused++] = b->size;
  } else if (!b->used && c->nfree < 64) {
    c->free_off[c->nfree] = b->offset;
    c->free_size[c->nfree++] = b->size;
  }
  return 0;
}

/* A heap at rest with used blocks and free blocks between them (so the free
 * index has several nodes), copied into a buffer; CTX gets its blocks. */
static unsigned char *make_reference(struct trial_ctx *ctx, size_t len) {
  char name[64];
  th_shm_name(name, sizeof name, "hostile");
  shmheap_memory_handle mem = shmheap_create(name, len);
  g_assert_nonnull(mem);
  uint64_t rng = 0x4ef;
  void *p[40];
  for (unsigned i = 0; i < 40; i++) {
    p[i] = shmheap_alloc(mem, th_rand_below(&rng, 600));
    g_assert_nonnull(p[i]);
  }
  for (unsigned i = 0; i < 40; i += 3)
    shmheap_free(mem, p[i]);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  memset(ctx, 0, sizeof *ctx);
  ctx->len = len;
  g_assert_cmpint(shmheap_walk(mem, collect_block, ctx), ==, 0);
  g_assert_cmpuint(ctx->nused, >, 20);
  g_assert_cmpuint(ctx->nfree, >, 10);
  unsigned char *ref = g_malloc(len);
  memcpy(ref, shmheap_underlying(mem), len);
  shmheap_destroy(NULL, mem);
  return ref;
}

/* Values that make a header field or a tag wrong in interesting ways. */
static uint64_t garbage_value(uint64_t *rng, size_t len) {
  switch (th_rand_below(rng, 12)) {
  case 0:
    return 0;
  case 1:
    return ~(uint64_t)0;
  case 2:
    return th_rand_below(rng, 4);
  case 3:
    return len;
  case 4:
    return len + 8 * th_rand_below(rng, 4);
  case 5:
    return len - 8 * th_rand_below(rng, 4);
  case 6:
    return (uint64_t)1 << th_rand_below(rng, 64);
  case 7:
    return th_rand_below(rng, len);
  case 8:
    return th_rand_below(rng, len) & ~(uint64_t)15;
  case 9:
    return (th_rand_below(rng, len) & ~(uint64_t)15) | 8;
  case 10:
    return (uint64_t)INT32_MAX + th_rand_below(rng, 3);
  default:
    return th_rand(rng);
  }
}

/* Applies one random corruption to the N bytes at IMG + OFF: random byte
 * values, bit flips, or a whole 2-, 4- or 8-byte field of garbage. */
static void corrupt_range(unsigned char *img, size_t off, size_t n, size_t len,
                          uint64_t *rng, char *desc, size_t dn) {
  int w;
  switch (th_rand_below(rng, 3)) {
  case 0: {
    unsigned k = 1 + (unsigned)th_rand_below(rng, 4);
    w = snprintf(desc, dn, "%u random bytes at", k);
    for (unsigned i = 0; i < k; i++) {
      size_t at = off + th_rand_below(rng, n);
      img[at] = (unsigned char)th_rand(rng);
      w += snprintf(desc + w, dn - (size_t)w, " %zu", at);
    }
    break;
  }
  case 1: {
    unsigned k = 1 + (unsigned)th_rand_below(rng, 3);
    w = snprintf(desc, dn, "%u bit flips at", k);
    for (unsigned i = 0; i < k; i++) {
      size_t bit = th_rand_below(rng, n * 8);
      img[off + bit / 8] ^= (unsigned char)(1u << (bit % 8));
      w += snprintf(desc + w, dn - (size_t)w, " %zu.%zu", off + bit / 8,
                    bit % 8);
    }
    break;
  }
  default: {
    static const size_t widths[] = {2, 4, 8};
    size_t fw = widths[th_rand_below(rng, 3)];
    if (fw > n)
      fw = n;
    size_t at = off + th_rand_below(rng, n / fw) * fw;
    uint64_t v = garbage_value(rng, len);
    memcpy(img + at, &v, fw); /* little-endian: the low bytes */
    snprintf(desc, dn, "field [%zu,+%zu) = %#" PRIx64, at, fw, v);
    break;
  }
  }
}

/* ------------------------------------------------------------------------ */
/* /hostile/header-corruption                                                */

static void corrupt_header(unsigned char *img, const struct trial_ctx *c,
                           uint64_t *rng, char *desc, size_t n) {
  corrupt_range(img, 0, HDR_AND_TAG, c->len, rng, desc, n);
  if (th_rand_below(rng, 5) == 0) { /* sometimes two at once */
    size_t w = strlen(desc);
    if (w + 3 < n) {
      memcpy(desc + w, " + ", 4);
      corrupt_range(img, 0, HDR_AND_TAG, c->len, rng, desc + w + 3, n - w - 3);
    }
  }
}

enum { HEADER_TRIALS = 1000 };

static void test_header_corruption(void) {
  th_watchdog_arm(240, "/hostile/header-corruption");
  struct trial_ctx ctx;
  unsigned char *ref = make_reference(&ctx, 64u << 10);
  unsigned counts[O_N] = {0};
  run_trials(ref, &ctx, HEADER_TRIALS, corrupt_header, 0x4eade7, counts);
  report("header-corruption", HEADER_TRIALS, counts);
  /* the trials really corrupted something that matters */
  g_assert_cmpuint(counts[O_C_EINVAL] + counts[O_C_EPROTO] +
                       counts[O_C_EAGAIN] + counts[O_C_EUCLEAN] +
                       counts[O_DETECTED],
                   >, HEADER_TRIALS / 4);
  g_free(ref);
}

/* ------------------------------------------------------------------------ */
/* /hostile/tag-corruption                                                   */

/* One corruption of a block's bookkeeping: a used block's tag, a free
 * block's tag, its footer, or its node in the free index. */
static void corrupt_tag(unsigned char *img, const struct trial_ctx *c,
                        uint64_t *rng, char *desc, size_t n) {
  int w;
  size_t off, sz;
  switch (th_rand_below(rng, 4)) {
  case 0: {
    unsigned i = (unsigned)th_rand_below(rng, c->nused);
    off = c->used_off[i];
    sz = SHH_TAG;
    w = snprintf(desc, n, "used tag @%zu: ", off);
    break;
  }
  case 1: {
    unsigned i = (unsigned)th_rand_below(rng, c->nfree);
    off = c->free_off[i];
    sz = SHH_TAG;
    w = snprintf(desc, n, "free tag @%zu: ", off);
    break;
  }
  case 2: {
    unsigned i = (unsigned)th_rand_below(rng, c->nfree);
    off = c->free_off[i] + c->free_size[i] - SHH_FOOTER;
    sz = SHH_TAG;
    w = snprintf(desc, n, "free footer @%zu: ", off);
    break;
  }
  default: {
    unsigned i = (unsigned)th_rand_below(rng, c->nfree);
    off = c->free_off[i] + SHH_TAG;
    sz = SHH_MIN_BLOCK - SHH_TAG - SHH_FOOTER; /* the four index words */
    w = snprintf(desc, n, "free index node @%zu: ", off);
    break;
  }
  }
  corrupt_range(img, off, sz, c->len, rng, desc + w, n - (size_t)w);
}

enum { TAG_TRIALS = 800 };

static void test_tag_corruption(void) {
  th_watchdog_arm(240, "/hostile/tag-corruption");
  struct trial_ctx ctx;
  unsigned char *ref = make_reference(&ctx, 64u << 10);
  unsigned counts[O_N] = {0};
  run_trials(ref, &ctx, TAG_TRIALS, corrupt_tag, 0x7a9, counts);
  report("tag-corruption", TAG_TRIALS, counts);
  g_assert_cmpuint(counts[O_DETECTED], >, TAG_TRIALS / 4);
  g_free(ref);
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
  th_add_func("/hostile/header-corruption", test_header_corruption);
  th_add_func("/hostile/tag-corruption", test_tag_corruption);
  th_add_func("/hostile/bad-pointers", test_bad_pointers);
  return g_test_run();
}

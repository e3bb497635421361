/* testutil.c: the test programs' shared helpers (declared in testutil.h),
 * compiled once into a static library that every test program links. It
 * owns the process-wide state the helpers keep: the names handed out (so a
 * dying test removes its objects), the name counter and the watchdog's
 * message.
 */
#include "testutil.h"
#include "layout.h"

/* ------------------------------------------------------------------------ */
/* Test cases                                                                */

/* A registered case: one of the two functions, and its data. */
struct th_case {
  void (*fn)(void);
  void (*data_fn)(gconstpointer);
  gconstpointer data;
};

/* Runs a case between two counts of this process's file descriptors: a
 * case that returns with more or fewer open than it found fails. */
static void th_run_case(gconstpointer arg) {
  const struct th_case *c = arg;
  int before = th_count_fds();
  if (c->fn != NULL)
    c->fn();
  else
    c->data_fn(c->data);
  g_assert_cmpint(th_count_fds(), ==, before);
}

void th_add_func(const char *path, void (*fn)(void)) {
  struct th_case *c = g_new0(struct th_case, 1);
  c->fn = fn;
  g_test_add_data_func_full(path, c, th_run_case, g_free);
}

void th_add_data_func(const char *path, gconstpointer data,
                      void (*fn)(gconstpointer)) {
  struct th_case *c = g_new0(struct th_case, 1);
  c->data_fn = fn;
  c->data = data;
  g_test_add_data_func_full(path, c, th_run_case, g_free);
}

/* ------------------------------------------------------------------------ */
/* Names                                                                     */

/* Every name handed out, with the pid that asked, so that a test that dies
 * on a failed assertion (abort) or a crash still removes the objects it
 * made. Only the entries of the dying process are removed: a child that
 * aborts leaves its parent's heaps alone. A ring: only the newest
 * TH_MAX_NAMES names are remembered. */
enum { TH_MAX_NAMES = 256, TH_NAME_LEN = 128 };

static struct {
  pid_t pid[TH_MAX_NAMES];
  char name[TH_MAX_NAMES][TH_NAME_LEN];
  unsigned next;
  pid_t handlers_for; /* the process whose handlers are installed */
} th_names;

static void th_unlink_own_names(void) {
  pid_t self = getpid();
  for (unsigned i = 0; i < TH_MAX_NAMES; i++)
    if (th_names.pid[i] == self && th_names.name[i][0] == '/')
      (void)shm_unlink(th_names.name[i]); /* async-signal-safe */
}

static void th_fatal_signal(int sig) {
  th_unlink_own_names();
  signal(sig, SIG_DFL);
  raise(sig);
}

void th_install_cleanup(void) {
  static const int sigs[] = {SIGABRT, SIGTRAP, SIGSEGV, SIGBUS,
                             SIGFPE,  SIGILL,  SIGTERM};
  if (th_names.handlers_for == getpid())
    return;
  th_names.handlers_for = getpid();
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    struct sigaction sa;
    /* leave handlers others installed (ASan's SIGSEGV report) alone */
    if (sigaction(sigs[i], NULL, &sa) != 0 || sa.sa_handler != SIG_DFL ||
        (sa.sa_flags & SA_SIGINFO))
      continue;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = th_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigaction(sigs[i], &sa, NULL);
  }
}

char *th_shm_name(char *buf, size_t buflen, const char *area) {
  static unsigned counter;
  int n = snprintf(buf, buflen, "/shmheap-test-%s-%ld-%u", area, (long)getpid(),
                   __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
  g_assert_true(n > 0 && (size_t)n < buflen);
  (void)shm_unlink(buf);
  if ((size_t)n < TH_NAME_LEN) {
    th_install_cleanup();
    unsigned i =
        __atomic_fetch_add(&th_names.next, 1, __ATOMIC_RELAXED) % TH_MAX_NAMES;
    th_names.pid[i] = 0; /* not valid while being written */
    memcpy(th_names.name[i], buf, (size_t)n + 1);
    __atomic_store_n(&th_names.pid[i], getpid(), __ATOMIC_RELEASE);
  }
  return buf;
}

gboolean th_shm_exists(const char *name) {
  int fd = shm_open(name, O_RDONLY, 0);
  if (fd >= 0) {
    close(fd);
    return TRUE;
  }
  /* EACCES would also mean it exists; ENOENT is the only "absent". */
  return errno != ENOENT;
}

/* ------------------------------------------------------------------------ */
/* Children                                                                  */

pid_t th_fork_start(int (*fn)(void *), void *arg, unsigned timeout_s) {
  pid_t pid = fork();
  g_assert_cmpint(pid, >=, 0);
  if (pid == 0) {
    signal(SIGALRM, SIG_DFL); /* a timed-out child dies of SIGALRM */
    alarm(timeout_s ? timeout_s : TH_CHILD_TIMEOUT);
    _exit(fn(arg));
  }
  return pid;
}

int th_wait(pid_t pid) {
  int status = 0;
  pid_t r;
  do
    r = waitpid(pid, &status, 0);
  while (r < 0 && errno == EINTR);
  g_assert_cmpint(r, ==, pid);
  return status;
}

int th_kill_after(pid_t pid, uint64_t *rng, long max_ns) {
  struct timespec nap = {0, (long)th_rand_below(rng, (uint64_t)max_ns)};
  nanosleep(&nap, NULL);
  kill(pid, SIGKILL);
  return th_killed(th_wait(pid));
}

gboolean th_killed(int status) {
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
    return TRUE;
  th_assert_child_ok(status);
  return FALSE;
}

double th_now_s(void) {
  return (double)g_get_monotonic_time() / 1e6;
}

uint64_t *th_lock_word(shmheap_memory_handle mem) {
  return (uint64_t *)(void *)((char *)shmheap_underlying(mem) + SHH_HDR_LOCK);
}

int th_fork_run(int (*fn)(void *), void *arg, unsigned timeout_s) {
  return th_wait(th_fork_start(fn, arg, timeout_s));
}

static const char *volatile th_watchdog_what;

static void th_watchdog_handler(int sig) {
  (void)sig;
  static const char msg[] = "watchdog: timed out in: ";
  const char *w = th_watchdog_what ? th_watchdog_what : "?";
  (void)!write(2, msg, sizeof msg - 1);
  (void)!write(2, w, strlen(w));
  (void)!write(2, "\n", 1);
  abort();
}

void th_watchdog_arm(unsigned secs, const char *what) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = th_watchdog_handler;
  sigemptyset(&sa.sa_mask);
  g_assert_cmpint(sigaction(SIGALRM, &sa, NULL), ==, 0);
  th_watchdog_what = what;
  alarm(secs);
}

void th_watchdog_disarm(void) {
  alarm(0);
  th_watchdog_what = NULL;
}

int th_write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int th_read_all(int fd, void *buf, size_t n) {
  char *p = buf;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* File descriptors                                                          */

int th_count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  g_assert_nonnull(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the directory's own descriptor */
}

/* ------------------------------------------------------------------------ */
/* Deterministic randomness and block patterns                               */

uint64_t th_mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t th_rand(uint64_t *state) {
  *state += 0x9e3779b97f4a7c15ull;
  uint64_t x = *state;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t th_rand_below(uint64_t *state, uint64_t n) {
  return th_rand(state) % n;
}

uint64_t th_pattern_word(uint64_t seed, uint64_t off, uint64_t i) {
  return th_mix64(th_mix64(seed ^ 0x5bd1e995u) ^ th_mix64(off) ^
                  (i * 0x100000001b3ull));
}

void th_fill(void *p, size_t n, uint64_t seed, uint64_t off) {
  unsigned char *b = p;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w = th_pattern_word(seed, off, i / 8);
    memcpy(b + i, &w, 8);
  }
  if (i < n) {
    uint64_t w = th_pattern_word(seed, off, i / 8);
    memcpy(b + i, &w, n - i);
  }
}

ptrdiff_t th_check_fill(const void *p, size_t n, uint64_t seed, uint64_t off) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i += 8) {
    uint64_t w = th_pattern_word(seed, off, i / 8);
    unsigned char wb[8];
    memcpy(wb, &w, 8);
    size_t k = n - i < 8 ? n - i : 8;
    if (memcmp(b + i, wb, k) != 0) {
      for (size_t j = 0; j < k; j++)
        if (b[i + j] != wb[j])
          return (ptrdiff_t)(i + j);
    }
  }
  return -1;
}

/* ------------------------------------------------------------------------ */
/* Address spacing                                                           */

void *th_map_spacer(size_t len) {
  void *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  g_assert_true(p != MAP_FAILED);
  return p;
}

void th_unmap_spacer(void *p, size_t len) {
  g_assert_cmpint(munmap(p, len), ==, 0);
}

/* ------------------------------------------------------------------------ */
/* The one-heap fixture                                                      */

void th_heap_open(struct heap *h, const char *area, size_t len) {
  th_shm_name(h->name, sizeof h->name, area);
  h->len = len;
  h->mem = shmheap_create(h->name, len);
  g_assert_nonnull(h->mem);
  h->base = shmheap_underlying(h->mem);
  g_assert_nonnull(h->base);
}

void heap_close(struct heap *h) {
  shmheap_destroy(NULL, h->mem);
  g_assert_false(th_shm_exists(h->name));
  h->mem = NULL;
}

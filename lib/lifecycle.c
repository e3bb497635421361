/* lifecycle.c: a heap's life as a shared memory object: create, connect,
 * disconnect, destroy, and the header a creator publishes.
 *
 * Publication. A creator makes the object under a private name, reserves
 * its memory, writes every header field, the lock and the first free block,
 * stores state = READY, and only then gives the object its public name with
 * link(2), which never replaces an existing name. So a connector never sees
 * a half-made heap under a public name, and a create that fails removes
 * nothing but its own private object. Where the shared memory directory
 * does not allow links, create falls back to making the object in place
 * (O_EXCL) and, on failure, unlinks the name only while it still names the
 * object it made (same inode).
 *
 * A connector trusts nothing before it has seen READY (acquire) and checked
 * each header field against the object's real size; a heap made in place
 * may still be initialising, so it waits for that, boundedly (EAGAIN).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "block.h"
#include "index.h"
#include "lock.h"
#include "trace.h"

/* How long connect waits for a creator to publish its heap, and for a busy
 * heap's lock (a dead owner is repaired within that time). */
#define SHH_CONNECT_WAIT_NS 1000000000L

/* Where glibc keeps POSIX shared memory objects. */
#define SHM_DIR "/dev/shm"

/* A portable shm name: "/" then 1..NAME_MAX characters, none of them '/',
 * and not "." or "..". */
static int name_ok(const char *name) {
  if (name == NULL || name[0] != '/')
    return 0;
  size_t n = strnlen(name + 1, NAME_MAX + 1);
  if (n < 1 || n > NAME_MAX || strchr(name + 1, '/') != NULL)
    return 0;
  return strcmp(name, "/.") != 0 && strcmp(name, "/..") != 0;
}

static struct shmheap *handle_new(const char *name) {
  size_t n = strlen(name) + 1;
  struct shmheap *h = calloc(1, sizeof *h + n);
  if (h != NULL) {
    memcpy(h->name, name, n);
    h->fd = -1;
  }
  return h;
}

static void handle_free(struct shmheap *h) {
  shh_trace_disarm(h);
  if (h->base != NULL)
    munmap(h->base, h->map_len);
  if (h->fd >= 0)
    close(h->fd);
  free(h);
}

#ifdef SHH_CRASH_POINTS
void shh_crash_point(struct shmheap *h) {
  if (h->crash_at > 0 && ++h->crash_count == h->crash_at)
    raise(SIGKILL);
}

static void crash_points_arm(struct shmheap *h) {
  const char *s = getenv("SHMHEAP_CRASH_AT");
  h->crash_at = s ? atol(s) : 0;
  h->crash_count = 0;
  shh_trace_arm(h);
}
#else
static void crash_points_arm(struct shmheap *h) {
  (void)h;
}
#endif

static uint32_t random_u32(void) {
  uint32_t k = 0;
  if (getrandom(&k, sizeof k, GRND_NONBLOCK) != (ssize_t)sizeof k) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    k = (uint32_t)ts.tv_nsec ^ (uint32_t)getpid() << 16;
  }
  return k;
}

/* Lays out an empty heap in the freshly reserved, zero-filled object. */
static int heap_init(struct shmheap *h, uint32_t key, uint64_t max_len) {
  struct shh_header *hd = shh_hdr(h);
  hd->magic = SHH_MAGIC;
  hd->version = SHMHEAP_FORMAT_VERSION;
  hd->abi = shh_abi();
  hd->key = key;
  hd->len = h->len;
  hd->max_len = max_len;
  hd->check = shh_header_check(hd);
  shh_lock_init(h);
  uint64_t size = h->len - SHH_FIRST;
  uint64_t tag = shh_tag_make(h, SHH_FIRST, size, 0);
  shh_st(h, SHH_FIRST, tag);
  shh_put_footer(h, SHH_FIRST, size, tag);
  hd->root = 0;
  if (shh_index_insert(h, SHH_FIRST) != 0)
    return EIO;
  __atomic_store_n(&hd->state, (uint16_t)SHH_STATE_READY, __ATOMIC_RELEASE);
  return 0;
}

/* Reserves the first LEN bytes of the object in the file system now, so a
 * full /dev/shm is ENOSPC here and never SIGBUS later. */
static int reserve(int fd, uint64_t len) {
  int err;
  while ((err = posix_fallocate(fd, 0, (off_t)len)) == EINTR)
    ;
  return err;
}

/* Maps MAP_LEN bytes of FD. Only the first h->len are backed; the rest is
 * address space kept for growth, never touched beyond the object's size. */
static int map_object(struct shmheap *h, int fd, uint64_t map_len) {
  struct stat st;
  if (fstat(fd, &st) != 0)
    return errno;
  void *base = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED)
    return errno;
  h->base = base;
  h->map_len = map_len;
  h->ident = (uint64_t)st.st_dev << 32 ^ (uint64_t)st.st_ino;
  h->ident += h->ident == 0;
  return 0;
}

/* Reserves, maps and initialises the new object behind FD. */
static int build(struct shmheap *h, int fd, mode_t mode, uint64_t len,
                 uint64_t max_len) {
  /* the umask must not narrow what the caller asked for */
  if (fchmod(fd, mode) != 0)
    return errno;
  int err = reserve(fd, len);
  if (err == 0)
    err = map_object(h, fd, max_len ? max_len : len);
  if (err != 0)
    return err;
  h->len = len;
  h->growable = max_len != 0;
  uint32_t key = random_u32();
  h->key = shh_expand_key(key);
  h->lock_key = key;
  return heap_init(h, key, max_len);
}

/* Builds the heap in FD, an object with no public name, then gives it NAME
 * by linking FROM (a path to FD's object) there, which never replaces an
 * existing name. Keeps FD on success and closes it otherwise. Returns 0, an
 * errno, or -1 when links are not possible here. */
static int build_and_link(struct shmheap *h, int fd, const char *from,
                          const char *name, mode_t mode, uint64_t len,
                          uint64_t max_len) {
  char to[sizeof SHM_DIR + NAME_MAX + 2];
  snprintf(to, sizeof to, "%s%s", SHM_DIR, name);
  int err = build(h, fd, mode, len, max_len);
  /* AT_SYMLINK_FOLLOW: /proc/self/fd/N is a link to the object itself */
  if (err == 0 && linkat(AT_FDCWD, from, AT_FDCWD, to, AT_SYMLINK_FOLLOW) != 0)
    err = errno == EEXIST ? EEXIST : errno == ENOSPC ? ENOSPC : -1;
  if (err == 0)
    h->fd = fd;
  else
    close(fd);
  return err;
}

/* The first choice: makes the object with no name at all (O_TMPFILE), so
 * that a creator killed half-way leaves nothing behind. Returns 0, an errno,
 * or -1 when that is not possible here (no O_TMPFILE on /dev/shm, no
 * /proc). */
static int create_unnamed(struct shmheap *h, const char *name, mode_t mode,
                          uint64_t len, uint64_t max_len) {
  int fd = open(SHM_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0)
    return -1;
  char from[48];
  snprintf(from, sizeof from, "/proc/self/fd/%d", fd);
  return build_and_link(h, fd, from, name, mode, len, max_len);
}

/* The second choice: makes the object under a private name, removed again
 * once it is linked (or has failed). Returns 0, an errno, or -1 when links
 * are not possible here. */
static int create_linked(struct shmheap *h, const char *name, mode_t mode,
                         uint64_t len, uint64_t max_len) {
  char tmp[64], from[sizeof SHM_DIR + sizeof tmp];
  snprintf(tmp, sizeof tmp, "/.shmheap-%ld-%08x", (long)getpid(), random_u32());
  int fd = shm_open(tmp, O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0)
    return -1;
  snprintf(from, sizeof from, "%s%s", SHM_DIR, tmp);
  int err = build_and_link(h, fd, from, name, mode, len, max_len);
  shm_unlink(tmp);
  return err;
}

/* The fallback: makes the object in place; on failure removes the name only
 * while it still names this object. */
static int create_in_place(struct shmheap *h, const char *name, mode_t mode,
                           uint64_t len, uint64_t max_len) {
  int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, mode);
  if (fd < 0)
    return errno;
  int err = build(h, fd, mode, len, max_len);
  if (err == 0) {
    h->fd = fd;
    return 0;
  }
  struct stat mine, now;
  char path[sizeof SHM_DIR + NAME_MAX + 2];
  snprintf(path, sizeof path, "%s%s", SHM_DIR, name);
  if (fstat(fd, &mine) == 0 && stat(path, &now) == 0 &&
      mine.st_ino == now.st_ino && mine.st_dev == now.st_dev)
    shm_unlink(name);
  close(fd);
  return err;
}

/* The end of create and connect: the handle on success (errno left as the
 * caller had it, SAVED), or NULL with ERR in errno and nothing kept. */
static struct shmheap *finish(struct shmheap *h, int err, int saved) {
  if (err != 0) {
    handle_free(h);
    errno = err;
    return NULL;
  }
  crash_points_arm(h);
  errno = saved;
  return h;
}

/* Creates heap NAME: LEN bytes now, growable to MAX_LEN (0: not growable). */
shmheap_memory_handle shh_create(const char *name, size_t len, size_t max_len,
                                 mode_t mode) {
  int saved = errno; /* a create that succeeds leaves errno alone */
  long page = sysconf(_SC_PAGESIZE);
  uint64_t top = max_len ? max_len : len;
  if (!name_ok(name) || len == 0 || page <= 0 || len % (size_t)page != 0 ||
      max_len % (size_t)page != 0 || (max_len != 0 && max_len < len) ||
      (uint64_t)top > SHH_MAX_LEN || len < SHH_FIRST + SHH_MIN_BLOCK ||
      (mode & ~(mode_t)0777) != 0) {
    errno = EINVAL;
    return NULL;
  }
  struct shmheap *h = handle_new(name);
  if (h == NULL)
    return NULL;
  int (*const ways[])(struct shmheap *, const char *, mode_t, uint64_t,
                      uint64_t) = {create_unnamed, create_linked,
                                   create_in_place};
  int err = -1;
  for (size_t i = 0; err == -1 && i < sizeof ways / sizeof ways[0]; i++) {
    if (h->base != NULL)
      munmap(h->base, h->map_len);
    h->base = NULL;
    err = ways[i](h, name, mode, len, max_len);
  }
  return finish(h, err, saved);
}

SHH_EXPORT shmheap_memory_handle shmheap_create_mode(const char *name,
                                                     size_t len, mode_t mode) {
  return shh_create(name, len, 0, mode);
}

SHH_EXPORT shmheap_memory_handle shmheap_create(const char *name, size_t len) {
  return shh_create(name, len, 0, 0600);
}

/* The header of a published heap, checked field by field against what this
 * build expects and against the object's size. Returns 0 or an errno. */
static int header_ok(const struct shh_header *hd, uint64_t real_len,
                     long page) {
  if (hd->magic != SHH_MAGIC)
    return EINVAL;
  if (hd->version != SHMHEAP_FORMAT_VERSION || hd->abi != shh_abi())
    return EPROTO;
  if (hd->state == SHH_STATE_BROKEN)
    return EUCLEAN;
  if (hd->state != SHH_STATE_READY ||
      !shh_sizes_fit(hd->len, hd->max_len, real_len, (uint64_t)page))
    return EINVAL;
  if (hd->check != shh_header_check(hd))
    return EINVAL; /* a scribbled field, or one this format keeps zero */
  return 0;
}

static void deadline_in(struct timespec *ts, long ns) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_nsec += ns;
  ts->tv_sec += ts->tv_nsec / 1000000000L;
  ts->tv_nsec %= 1000000000L;
}

static int passed(const struct timespec *deadline) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec > deadline->tv_sec ||
         (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* Looks at the published header through a mapping of its first page and,
 * when it checks out, maps the whole heap. Returns 0, an errno, or -1 while
 * a creator (of the in-place fallback) is still initialising. */
static int try_map(struct shmheap *h, int fd, uint64_t real_len, long page) {
  const struct shh_header *shared =
      mmap(NULL, (size_t)page, PROT_READ, MAP_SHARED, fd, 0);
  if (shared == MAP_FAILED)
    return errno;
  /* one copy, checked and used: a peer writing the header meanwhile
   * cannot slip an unchecked length past us */
  struct shh_header hd;
  uint16_t state = __atomic_load_n(&shared->state, __ATOMIC_ACQUIRE);
  memcpy(&hd, shared, sizeof hd);
  munmap((void *)shared, (size_t)page);
  int err = state == SHH_STATE_INIT ? -1 : header_ok(&hd, real_len, page);
  if (err == 0 && hd.state != state)
    err = -1; /* changed while we copied: look again */
  /* a creator that has not written its magic yet looks all zero; any other
   * bytes with state INIT are not a heap being made */
  if (err == -1 && state == SHH_STATE_INIT && hd.magic != 0 &&
      hd.magic != SHH_MAGIC)
    err = EINVAL;
  /* a growable heap that grew since the caller's fstat: look again */
  struct stat now;
  if (err == EINVAL && hd.max_len != 0 && hd.len > real_len &&
      fstat(fd, &now) == 0 && (uint64_t)now.st_size > real_len)
    err = -1;
  if (err != 0)
    return err;
  if ((err = map_object(h, fd, hd.max_len ? hd.max_len : hd.len)) != 0)
    return err;
  h->len = hd.len;
  h->growable = hd.max_len != 0;
  h->key = shh_expand_key(hd.key);
  h->lock_key = hd.key;
  return 0;
}

/* Maps the object behind FD once its creator has published it. Returns 0 or
 * an errno; on 0, h->base, h->len and h->map_len are set. */
static int map_published(struct shmheap *h, int fd,
                         const struct timespec *deadline) {
  long page = sysconf(_SC_PAGESIZE);
  for (;;) {
    struct stat st;
    if (fstat(fd, &st) != 0)
      return errno;
    if (!S_ISREG(st.st_mode))
      return EINVAL; /* a FIFO, a device: not a heap */
    uint64_t len = (uint64_t)st.st_size;
    if (len != 0 && (len % (uint64_t)page != 0 || len > SHH_MAX_LEN ||
                     len < SHH_FIRST + SHH_MIN_BLOCK))
      return EINVAL; /* no creator would leave such a size */
    int err = len != 0 ? try_map(h, fd, len, page) : -1;
    if (err != -1)
      return err;
    if (passed(deadline))
      return len == 0 ? EINVAL : EAGAIN; /* empty: truncated, not a heap */
    struct timespec nap = {0, 2000000};
    nanosleep(&nap, NULL);
  }
}

SHH_EXPORT shmheap_memory_handle shmheap_connect(const char *name) {
  int saved = errno; /* a connect that succeeds leaves errno alone */
  if (!name_ok(name)) {
    errno = EINVAL;
    return NULL;
  }
  struct shmheap *h = handle_new(name);
  if (h == NULL)
    return NULL;
  h->fd = shm_open(name, O_RDWR, 0);
  if (h->fd < 0) {
    /* a symlink (ELOOP) or a socket (ENXIO) is not a heap */
    int e = errno == ELOOP || errno == ENXIO ? EINVAL : errno;
    handle_free(h);
    errno = e;
    return NULL;
  }
  struct timespec deadline;
  deadline_in(&deadline, SHH_CONNECT_WAIT_NS);
  int err = map_published(h, h->fd, &deadline);
  /* Take the lock once, boundedly, so that a dead owner is repaired now and
   * a damaged lock word is found now. A live owner past the deadline means
   * a busy heap: connect succeeds, and calls will wait. This thread as the
   * owner (a connect from a walk or names callback) is no damage either:
   * connect succeeds, and calls get EDEADLK until the callback returns. */
  if (err == 0) {
    err = shh_lock(h, &deadline);
    if (err == 0)
      shh_unlock(h);
    else if (err == EAGAIN || err == EDEADLK)
      err = 0;
  }
  return finish(h, err, saved);
}

SHH_EXPORT void shmheap_disconnect(shmheap_memory_handle mem) {
  if (mem != NULL)
    handle_free(mem);
}

SHH_EXPORT void shmheap_destroy(const char *name, shmheap_memory_handle mem) {
  int err = 0;
  const char *target = name != NULL ? name : mem != NULL ? mem->name : NULL;
  if (target != NULL) {
    if (!name_ok(target))
      err = EINVAL;
    else if (shm_unlink(target) != 0)
      err = errno;
  }
  shmheap_disconnect(mem);
  if (err != 0)
    errno = err;
}

SHH_EXPORT void *shmheap_underlying(shmheap_memory_handle mem) {
  if (mem == NULL) {
    errno = EINVAL;
    return NULL;
  }
  return mem->base;
}

/* region.c: the shared memory object and its mapping: create, connect,
 * disconnect, destroy, and the header a creator publishes.
 *
 * Publication order: the creator reserves the object's memory, writes every
 * header field, the lock and the first free block, and only then stores
 * state = READY with release order. A connector trusts nothing before it has
 * seen READY (acquire) and checked each header field against the object's
 * real size; until then it waits, boundedly, and gives up with EAGAIN.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
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

/* How long connect waits for a creator to publish its heap. */
#define SHH_CONNECT_WAIT_NS 1000000000L

/* A portable shm name: "/" then 1..NAME_MAX characters, none of them '/'. */
static int name_ok(const char *name) {
  if (name == NULL || name[0] != '/')
    return 0;
  size_t n = strnlen(name + 1, NAME_MAX + 1);
  return n >= 1 && n <= NAME_MAX && strchr(name + 1, '/') == NULL;
}

static struct shmheap *handle_new(const char *name) {
  size_t n = strlen(name) + 1;
  struct shmheap *h = calloc(1, sizeof *h + n);
  if (h != NULL)
    memcpy(h->name, name, n);
  return h;
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
}
#else
static void crash_points_arm(struct shmheap *h) {
  (void)h;
}
#endif

static uint32_t random_key(void) {
  uint32_t k = 0;
  if (getrandom(&k, sizeof k, GRND_NONBLOCK) != (ssize_t)sizeof k) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    k = (uint32_t)ts.tv_nsec ^ (uint32_t)getpid() << 16;
  }
  return k;
}

/* Lays out an empty heap in the freshly reserved, zero-filled object. */
static int heap_init(struct shmheap *h, uint32_t key) {
  struct shh_header *hd = shh_hdr(h);
  hd->magic = SHH_MAGIC;
  hd->version = SHMHEAP_FORMAT_VERSION;
  hd->abi = shh_abi();
  hd->key = key;
  hd->len = h->len;
  int rc = shh_lock_init(h);
  if (rc != 0)
    return rc;
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

SHH_EXPORT shmheap_memory_handle shmheap_create_mode(const char *name,
                                                     size_t len, mode_t mode) {
  long page = sysconf(_SC_PAGESIZE);
  if (!name_ok(name) || len == 0 || page <= 0 || len % (size_t)page != 0 ||
      (uint64_t)len > SHH_MAX_LEN || len < SHH_FIRST + SHH_MIN_BLOCK ||
      (mode & ~(mode_t)0777) != 0) {
    errno = EINVAL;
    return NULL;
  }
  struct shmheap *h = handle_new(name);
  if (h == NULL)
    return NULL;
  int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, mode);
  if (fd < 0) {
    int e = errno;
    free(h);
    errno = e;
    return NULL;
  }
  int err = 0;
  /* the umask must not narrow what the caller asked for */
  if (fchmod(fd, mode) != 0)
    err = errno;
  /* reserve now, so a full /dev/shm is ENOSPC here and never SIGBUS later */
  while (err == 0 && (err = posix_fallocate(fd, 0, (off_t)len)) == EINTR)
    ;
  void *base = MAP_FAILED;
  if (err == 0) {
    base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED)
      err = errno;
  }
  if (err == 0) {
    h->base = base;
    h->len = len;
    uint32_t key = random_key();
    h->key = shh_expand_key(key);
    err = heap_init(h, key);
  }
  close(fd);
  if (err != 0) {
    if (base != MAP_FAILED)
      munmap(base, len);
    shm_unlink(name);
    free(h);
    errno = err;
    return NULL;
  }
  crash_points_arm(h);
  return h;
}

SHH_EXPORT shmheap_memory_handle shmheap_create(const char *name, size_t len) {
  return shmheap_create_mode(name, len, 0600);
}

/* The header of a published heap, checked field by field against what this
 * build expects and against the object's size. Returns 0 or an errno. */
static int header_ok(const struct shh_header *hd, uint64_t real_len) {
  if (hd->magic != SHH_MAGIC)
    return EINVAL;
  if (hd->version != SHMHEAP_FORMAT_VERSION || hd->abi != shh_abi())
    return EPROTO;
  if (hd->state == SHH_STATE_BROKEN)
    return EUCLEAN;
  if (hd->state != SHH_STATE_READY || hd->len != real_len)
    return EINVAL;
  return 0;
}

static void deadline_in(struct timespec *ts, long ns) {
  clock_gettime(CLOCK_REALTIME, ts);
  ts->tv_nsec += ns;
  ts->tv_sec += ts->tv_nsec / 1000000000L;
  ts->tv_nsec %= 1000000000L;
}

static int passed(const struct timespec *deadline) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return now.tv_sec > deadline->tv_sec ||
         (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* Maps the object behind FD once its creator has published it. Returns 0 or
 * an errno; on 0, h->base and h->len are set. */
static int map_published(struct shmheap *h, int fd,
                         const struct timespec *deadline) {
  long page = sysconf(_SC_PAGESIZE);
  for (;;) {
    struct stat st;
    if (fstat(fd, &st) != 0)
      return errno;
    uint64_t len = (uint64_t)st.st_size;
    if (len != 0 && (len % (uint64_t)page != 0 || len > SHH_MAX_LEN ||
                     len < SHH_FIRST + SHH_MIN_BLOCK))
      return EINVAL; /* no creator would leave such a size */
    if (len != 0) {
      void *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (base == MAP_FAILED)
        return errno;
      const struct shh_header *hd = base;
      uint16_t state = __atomic_load_n(&hd->state, __ATOMIC_ACQUIRE);
      if (state != SHH_STATE_INIT) {
        int err = header_ok(hd, len);
        if (err != 0) {
          munmap(base, len);
          return err;
        }
        h->base = base;
        h->len = len;
        h->key = shh_expand_key(hd->key);
        return 0;
      }
      /* a creator that has not written its magic yet looks all zero; any
       * other bytes with state INIT are not a heap being made */
      uint32_t magic = hd->magic;
      munmap(base, len);
      if (magic != 0 && magic != SHH_MAGIC)
        return EINVAL;
    }
    if (passed(deadline))
      return EAGAIN;
    struct timespec nap = {0, 2000000};
    nanosleep(&nap, NULL);
  }
}

SHH_EXPORT shmheap_memory_handle shmheap_connect(const char *name) {
  if (!name_ok(name)) {
    errno = EINVAL;
    return NULL;
  }
  struct shmheap *h = handle_new(name);
  if (h == NULL)
    return NULL;
  int fd = shm_open(name, O_RDWR, 0);
  if (fd < 0) {
    int e = errno;
    free(h);
    errno = e;
    return NULL;
  }
  struct timespec deadline;
  deadline_in(&deadline, SHH_CONNECT_WAIT_NS);
  int err = map_published(h, fd, &deadline);
  close(fd);
  /* The lock's bytes are the last part of the header to trust: a process
   * that did not create the heap checks them, then takes the lock once
   * (bounded) so that a dead owner is recovered now. If the lock stays
   * taken, a live owner means a busy heap (connect succeeds; calls will
   * wait), a vanished one means lock bytes no recovery will ever fix. */
  if (err == 0 && shh_lock_plausible(h) != 0)
    err = EINVAL;
  if (err == 0) {
    if (shh_lock(h, &deadline) == 0)
      shh_unlock(h);
    else if (errno != EAGAIN)
      err = errno;
    else if (!shh_lock_owner_alive(h))
      err = EINVAL;
  }
  if (err != 0) {
    if (h->base != NULL)
      munmap(h->base, h->len);
    free(h);
    errno = err;
    return NULL;
  }
  crash_points_arm(h);
  return h;
}

SHH_EXPORT void shmheap_disconnect(shmheap_memory_handle mem) {
  if (mem == NULL)
    return;
  munmap(mem->base, mem->len);
  free(mem);
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

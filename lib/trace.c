/* trace.c: the test-only serial-order log (trace.h): mapping the log a
 * test names in SHMHEAP_TRACE at connect, and appending the records under
 * the heap's lock. Built only with crash_points.
 *
 * The appends need no atomic read-modify-write: they run under the heap's
 * lock, which orders them. The stores are ordered for a process killed
 * between them instead: a record's fields before the count that shows it,
 * its result before the state that says DONE.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "region.h"
#include "trace.h"

void shh_trace_arm(struct shmheap *h) {
  h->trace = NULL;
  const char *name = getenv(SHH_TRACE_ENV);
  if (name == NULL || name[0] == '\0')
    return;
  int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
  if (fd < 0)
    return;
  struct stat st;
  void *p = MAP_FAILED;
  if (fstat(fd, &st) == 0 && (uint64_t)st.st_size >= sizeof *h->trace)
    p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
             0);
  close(fd);
  if (p == MAP_FAILED)
    return;
  struct shh_trace_log *log = p;
  uint64_t room = ((uint64_t)st.st_size - sizeof *log) / sizeof log->rec[0];
  if (log->magic != SHH_TRACE_MAGIC || log->cap > room ||
      strncmp(log->heap, h->name, sizeof log->heap) != 0) {
    munmap(p, (size_t)st.st_size);
    return;
  }
  h->trace = log;
  h->trace_len = (uint64_t)st.st_size;
}

void shh_trace_disarm(struct shmheap *h) {
  if (h->trace != NULL)
    munmap(h->trace, (size_t)h->trace_len);
  h->trace = NULL;
}

static uint64_t hdl_of(const struct shmheap *h, const void *p) {
  return p == NULL ? 0 : (uint64_t)((const unsigned char *)p - h->base);
}

void shh_trace_begin(struct shmheap *h, unsigned op, uint64_t size,
                     const void *old) {
  struct shh_trace_log *log = h->trace;
  if (log == NULL)
    return;
  uint64_t n = __atomic_load_n(&log->count, __ATOMIC_RELAXED);
  if (n >= log->cap) {
    __atomic_store_n(&log->lost, log->lost + 1, __ATOMIC_RELAXED);
    return;
  }
  struct shh_trace_rec *r = &log->rec[n];
  r->op = op;
  r->pid = (uint32_t)getpid();
  r->tid = (uint32_t)syscall(SYS_gettid);
  r->size = size;
  r->old_hdl = hdl_of(h, old);
  r->new_hdl = 0;
  r->err = 0;
  __atomic_store_n(&r->state, (uint32_t)SHH_TRACE_PENDING, __ATOMIC_RELEASE);
  __atomic_store_n(&log->count, n + 1, __ATOMIC_RELEASE);
}

void shh_trace_end(struct shmheap *h, const void *out, int err) {
  struct shh_trace_log *log = h->trace;
  if (log == NULL)
    return;
  uint64_t n = __atomic_load_n(&log->count, __ATOMIC_RELAXED);
  if (n == 0 || n > log->cap)
    return;
  struct shh_trace_rec *r = &log->rec[n - 1];
  if (r->state != SHH_TRACE_PENDING || r->pid != (uint32_t)getpid() ||
      r->tid != (uint32_t)syscall(SYS_gettid))
    return; /* its begin did not fit: counted as lost */
  r->new_hdl = err == 0 ? hdl_of(h, out) : 0;
  r->err = err;
  __atomic_store_n(&r->state, (uint32_t)SHH_TRACE_DONE, __ATOMIC_RELEASE);
}

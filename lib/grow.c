/* grow.c: growing a heap in place (not yet built: every call says ENOSYS). */
#include <errno.h>

#include "region.h"

SHH_EXPORT shmheap_memory_handle shmheap_create_growable(const char *name,
                                                         size_t len,
                                                         size_t max_len,
                                                         mode_t mode) {
  (void)name, (void)len, (void)max_len, (void)mode;
  errno = ENOSYS;
  return NULL;
}

SHH_EXPORT int shmheap_grow(shmheap_memory_handle mem, size_t new_len) {
  (void)mem, (void)new_len;
  errno = ENOSYS;
  return -1;
}

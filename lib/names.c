/* names.c: the names directory (not yet built: every call says ENOSYS). */
#include <errno.h>

#include "region.h"

SHH_EXPORT int shmheap_publish(shmheap_memory_handle mem, const char *key,
                               shmheap_object_handle hdl) {
  (void)mem, (void)key, (void)hdl;
  errno = ENOSYS;
  return -1;
}

SHH_EXPORT shmheap_object_handle shmheap_lookup(shmheap_memory_handle mem,
                                                const char *key) {
  (void)mem, (void)key;
  errno = ENOSYS;
  return SHMHEAP_NULL_HANDLE;
}

SHH_EXPORT int shmheap_unpublish(shmheap_memory_handle mem, const char *key) {
  (void)mem, (void)key;
  errno = ENOSYS;
  return -1;
}

SHH_EXPORT void *shmheap_lookup_or_alloc(shmheap_memory_handle mem,
                                         const char *key, size_t sz,
                                         int *created) {
  (void)mem, (void)key, (void)sz, (void)created;
  errno = ENOSYS;
  return NULL;
}

SHH_EXPORT int shmheap_names(shmheap_memory_handle mem,
                             int (*fn)(const char *, shmheap_object_handle,
                                       void *),
                             void *arg) {
  (void)mem, (void)fn, (void)arg;
  errno = ENOSYS;
  return -1;
}

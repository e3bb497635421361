/* version.c: the version of the library that is loaded, for programs that
 * want to know at run time what SHMHEAP_VERSION told them at compile time. */
#include "region.h"

SHH_EXPORT unsigned shmheap_version(void) {
  return SHMHEAP_VERSION;
}

SHH_EXPORT const char *shmheap_version_string(void) {
  return SHMHEAP_VERSION_STRING;
}

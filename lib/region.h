/* region.h: the shared region's header and this process's handle on it.
 *
 * The region is one POSIX shared memory object. It starts with a fixed
 * header (below) followed by blocks up to the end of the object. Everything
 * stored in the region is a fixed-width integer; links are offsets from the
 * region's base, never pointers, because every process maps the region at
 * its own address. Only shh_at() turns an offset into a pointer.
 */
#ifndef SHMHEAP_REGION_H
#define SHMHEAP_REGION_H

#include <pthread.h>
#include <stdint.h>

#include "layout.h"
#include "shmheap.h"

#define SHH_EXPORT __attribute__((visibility("default")))

struct shh_header {
  uint32_t magic;       /* SHH_MAGIC */
  uint16_t version;     /* SHMHEAP_FORMAT_VERSION */
  uint16_t state;       /* SHH_STATE_* */
  uint32_t abi;         /* shh_abi(): a heap of another build is refused */
  uint32_t key;         /* per-heap key of the tag check bits */
  uint64_t len;         /* bytes in the object; must equal fstat's size */
  uint64_t root;        /* offset of the free index's root, 0 if none */
  pthread_mutex_t lock; /* process-shared, robust */
};


#if defined(__x86_64__) && defined(__GLIBC__)
/* The 80-byte promise of SHMHEAP_OVERHEAD (header + first tag) holds here. */
_Static_assert(sizeof(struct shh_header) == 72, "header must be 72 bytes");

#endif
_Static_assert(sizeof(pthread_mutex_t) % 8 == 0, "lock keeps 8-byte fields");
_Static_assert(__builtin_offsetof(struct shh_header, len) == 16, "layout");
_Static_assert(__builtin_offsetof(struct shh_header, root) == 24, "layout");
_Static_assert(__builtin_offsetof(struct shh_header, lock) == 32, "layout");


/* What a connecting process must share with the creator for the region's
 * layout to mean the same thing: pointer width, lock size, alignment, and a
 * byte-order marker. */
static inline uint32_t shh_abi(void) {
  return (uint32_t)sizeof(void *) | (uint32_t)sizeof(pthread_mutex_t) << 8 |
         (uint32_t) _Alignof(max_align_t) << 16 | (uint32_t)0x5a << 24;
}

/* A process's connection. Read-only after connect, so the threads of a
 * process can share it (the crash-point counter is test-only). */
struct shmheap {
  unsigned char *base; /* this process's mapping */
  uint64_t len;        /* validated at connect; never re-read from the region */
  uint64_t key;        /* expanded tag key */
#ifdef SHH_CRASH_POINTS
  long crash_at; /* from SHMHEAP_CRASH_AT at connect; 0 = never */
  long crash_count;
#endif
  char name[]; /* the shm name, for shmheap_destroy(NULL, mem) */
};

static inline struct shh_header *shh_hdr(const struct shmheap *h) {
  return (struct shh_header *)(void *)h->base;
}

/* The one place an offset becomes a pointer. */
static inline uint64_t *shh_at(const struct shmheap *h, uint64_t off) {
  return (uint64_t *)(void *)(h->base + off);
}

static inline uint64_t shh_expand_key(uint32_t key) {
  uint64_t k = (uint64_t)key * 0x9e3779b97f4a7c15ull;
  return k ^ (k >> 31) ^ 0x6a09e667f3bcc909ull;
}

/* Test-only deterministic crash injection: the Nth ordered write point of a
 * process kills it (see meson_options.txt, crash_points). */
#ifdef SHH_CRASH_POINTS
void shh_crash_point(struct shmheap *h);
#define SHH_CRASH_POINT(h) shh_crash_point(h)
#else
#define SHH_CRASH_POINT(h) ((void)(h))
#endif

#endif

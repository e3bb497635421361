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

#include <stddef.h>
#include <stdint.h>

#include "header-rules.h"
#include "layout.h"
#include "shmheap.h"

#define SHH_EXPORT __attribute__((visibility("default")))

struct shh_header {
  uint32_t magic;      /* SHH_MAGIC */
  uint16_t version;    /* SHMHEAP_FORMAT_VERSION */
  uint16_t state;      /* SHH_STATE_* */
  uint32_t abi;        /* shh_abi(): a heap of another build is refused */
  uint32_t key;        /* per-heap key of the tag check bits */
  uint64_t len;        /* the heap's size now; the object holds at least this */
  uint64_t root;       /* offset of the free index's root, 0 if none */
  uint64_t lock;       /* the lock word (lock.h) */
  uint64_t lock_check; /* the lock owner's witness (lock.c) */
  uint64_t max_len;    /* the most len may grow to; 0: the heap cannot grow */
  uint64_t names;      /* offset of the names directory, 0 if none */
  uint64_t check;      /* shh_header_check() of the fields fixed at create */
};

/* The header is made of fixed-width fields only, at the offsets layout.h
 * gives to readers that do not link the library. */
_Static_assert(sizeof(struct shh_header) == SHH_HEADER_SIZE, "header size");
_Static_assert(SHH_FIRST >= SHH_HEADER_SIZE &&
                   SHH_FIRST % SHH_ALIGN == SHH_BLOCK_PHASE &&
                   SHH_BLOCK_PHASE == SHH_TAG,
               "the first payload is aligned");
#define SHH_FIELD_AT(field, off)                                               \
  _Static_assert(__builtin_offsetof(struct shh_header, field) == (off),        \
                 #field " sits at " #off)
SHH_FIELD_AT(version, SHH_HDR_VERSION);
SHH_FIELD_AT(state, SHH_HDR_STATE);
SHH_FIELD_AT(abi, SHH_HDR_ABI);
SHH_FIELD_AT(key, SHH_HDR_KEY);
SHH_FIELD_AT(len, SHH_HDR_LEN);
SHH_FIELD_AT(root, SHH_HDR_ROOT);
SHH_FIELD_AT(lock, SHH_HDR_LOCK);
SHH_FIELD_AT(max_len, SHH_HDR_MAX_LEN);
SHH_FIELD_AT(names, SHH_HDR_NAMES);
SHH_FIELD_AT(check, SHH_HDR_CHECK);
#undef SHH_FIELD_AT
_Static_assert(SHMHEAP_OVERHEAD == SHH_FIRST + SHH_TAG, "the 80-byte promise");
_Static_assert(SHMHEAP_ALIGNMENT == SHH_ALIGN, "alignment");

/* A process's connection. Read-only after connect, so the threads of a
 * process can share it (the crash-point counter is test-only), except len
 * of a growable heap, which is written and read only under the lock
 * (extent.h: shh_len_now is the lock-free reading). */
struct shmheap {
  unsigned char *base; /* this process's mapping */
  uint64_t len;        /* validated at connect; a growable heap's follows the
                          header's under the lock (extent.h) */
  uint64_t map_len;    /* bytes mapped at base (max_len for a growable heap) */
  int growable;        /* made with a max_len: len may change */
  uint64_t key;        /* expanded tag key */
  uint32_t lock_key;   /* the header's key, for the lock word's check bits */
  int fd;              /* the object, kept open to check and grow its size */
  /* The object's identity (its device and inode, never 0), the same in
   * every connection to it and, as fd keeps the object open, shared with
   * no other object while this connection lasts: how the lock knows that a
   * heap this thread locks again is one it holds through another
   * connection (lock.c). */
  uint64_t ident;
#ifdef SHH_CRASH_POINTS
  long crash_at; /* from SHMHEAP_CRASH_AT at connect; 0 = never */
  long crash_count;
  struct shh_trace_log *trace; /* from SHMHEAP_TRACE at connect (trace.h) */
  uint64_t trace_len;
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

/* A keyed hash of the header fields that never change after create, so
 * that a scribble on one of them (say max_len) is refused at connect. */
static inline uint64_t shh_header_check(const struct shh_header *hd) {
  uint64_t x = (uint64_t)hd->magic << 32 ^ (uint64_t)hd->version << 16 ^
               (uint64_t)hd->abi * 0x9e3779b97f4a7c15ull ^ hd->max_len;
  x ^= shh_expand_key(hd->key);
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 29;
  return x;
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

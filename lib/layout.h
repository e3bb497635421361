/* layout.h: the numbers of the shared region's layout, named once.
 *
 * The library's own headers (region.h, block.h) build on these; the tests,
 * the fuzzer, the tool and the benchmarks take them from here (through an
 * internal include directory that is never installed) instead of restating
 * them. Nothing here depends on the compiler: region.h pins the structures
 * to these numbers with _Static_assert.
 */
#ifndef SHMHEAP_LAYOUT_H
#define SHMHEAP_LAYOUT_H

enum {
  /* The region header: bytes [0, SHH_HEADER_SIZE) of the object. */
  SHH_HEADER_SIZE = 72,
  /* Blocks start right after the header, at an offset that is
   * SHH_BLOCK_PHASE mod SHH_ALIGN so that the payload after each tag is
   * SHH_ALIGN-aligned. */
  SHH_FIRST = 72,
  SHH_ALIGN = 16,
  SHH_BLOCK_PHASE = 8,
  /* A block's tag, the 8 bytes before its payload; a free block repeats it
   * in its last SHH_FOOTER bytes. */
  SHH_TAG = 8,
  SHH_FOOTER = 8,
  /* The smallest block: tag + four index words + footer. */
  SHH_MIN_BLOCK = 48,
};

/* Where each field of the region header lives (format version 2), for
 * readers that must not take the lock, such as `shmheap ls`. All fields are
 * little-endian fixed-width integers. */
enum {
  SHH_HDR_MAGIC = 0,    /* u32 SHH_MAGIC */
  SHH_HDR_VERSION = 4,  /* u16 SHMHEAP_FORMAT_VERSION */
  SHH_HDR_STATE = 6,    /* u16 SHH_STATE_* */
  SHH_HDR_ABI = 8,      /* u32 fingerprint of the creator's build */
  SHH_HDR_KEY = 12,     /* u32 key of the tag check bits */
  SHH_HDR_LEN = 16,     /* u64 the heap's current size */
  SHH_HDR_ROOT = 24,    /* u64 offset of the free index's root */
  SHH_HDR_LOCK = 32,    /* 16 bytes: the lock (lock.c) */
  SHH_HDR_MAX_LEN = 48, /* u64 the most LEN may grow to; 0: cannot grow */
  SHH_HDR_NAMES = 56,   /* u64 offset of the names directory, 0 if none */
  SHH_HDR_CHECK = 64,   /* u64 keyed hash of the fields fixed at create */
};

enum {
  SHH_MAGIC = 0x484d4853u, /* "SHMH" read as a little-endian u32 */
  /* state: 0 while the creator initialises, READY once it is done (written
   * last, with release order), BROKEN when the heap was found damaged
   * beyond repair: every later call then fails with EUCLEAN. */
  SHH_STATE_INIT = 0,
  SHH_STATE_READY = 1,
  SHH_STATE_BROKEN = 2,
};

/* Block and heap sizes are kept in 48 bits. */
#define SHH_MAX_LEN ((unsigned long long)1 << 48)

#endif

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

/* The names directory (names.c, directory.h): an allocated block whose
 * handle the header's names field holds (0: no names). Its fields, as
 * offsets from its payload, then two tables of SHH_DIR_CAP u64 slots each,
 * the key table and the handle table. A slot is SHH_SLOT_EMPTY,
 * SHH_SLOT_TOMB (a removed name: probes go on) or the handle of an entry,
 * an allocated block with the SHH_ENT_* fields and the key's bytes and NUL
 * at SHH_ENT_KEY. */
enum {
  SHH_DIR_CHECK = 0,        /* u64 keyed hash of the block's handle and cap */
  SHH_DIR_CAP = 8,          /* u64 slots per table, a power of two */
  SHH_DIR_COUNT = 16,       /* u64 names */
  SHH_DIR_USED = 24,        /* u64 key slots not EMPTY */
  SHH_DIR_HUSED = 32,       /* u64 handle slots not EMPTY */
  SHH_DIR_PENDING = 40,     /* u64 an entry or directory being (un)linked */
  SHH_DIR_PENDING_OBJ = 48, /* u64 lookup_or_alloc's object until named */
  SHH_DIR_SLOTS = 56,       /* the key table, then the handle table */
  SHH_DIR_MIN_CAP = 16,
  SHH_ENT_CHECK = 0, /* u64 keyed hash of the handle and every field */
  SHH_ENT_HDL = 8,   /* u64 the named object's handle */
  SHH_ENT_HASH = 16, /* u64 the key's hash */
  SHH_ENT_LEN = 24,  /* u64 the key's length, 1..SHH_KEY_MAX */
  SHH_ENT_KEY = 32,  /* the key, then its NUL */
  SHH_KEY_MAX = 255,
  SHH_SLOT_EMPTY = 0,
  SHH_SLOT_TOMB = 1,
  /* set in the header's names field, beside the directory's handle, while
   * that directory is being made or dropped: recovery frees it */
  SHH_NAMES_TRANSIENT = 1,
};

/* Block and heap sizes are kept in 48 bits. */
#define SHH_MAX_LEN ((unsigned long long)1 << 48)

#endif

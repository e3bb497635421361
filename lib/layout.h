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

/* Block and heap sizes are kept in 48 bits. */
#define SHH_MAX_LEN ((unsigned long long)1 << 48)

#endif

/* crash.h: what the parts of the crash test program share: blocks the
 * parent owns and verifies, whole-heap checks after a death, and how a
 * child ended. test-crash.c holds them, main and the kill storm;
 * crash-points.c the lock-holder, crash-point, half-created and thread
 * cases.
 */
#ifndef SHMHEAP_TEST_CRASH_H
#define SHMHEAP_TEST_CRASH_H

#include <stdbool.h>

#include "testutil.h"

/* A block the parent owns, filled with the pattern of (seed, handle). */
struct pblock {
  void *p;
  size_t sz;
  uint64_t seed;
};

/* Whether [P, P+SZ) lies in the data area of MEM (len LEN) and P is aligned. */
bool in_heap(shmheap_memory_handle mem, size_t len, const void *p, size_t sz);

/* Allocates SZ bytes into B and fills them with the pattern of SEED. */
void pblock_alloc(shmheap_memory_handle mem, size_t len, struct pblock *b,
                  size_t sz, uint64_t seed);

/* Asserts B still holds its pattern. */
void pblock_verify(shmheap_memory_handle mem, const struct pblock *b);

/* Verifies B, frees it (the free must succeed) and forgets it. */
void pblock_free(shmheap_memory_handle mem, struct pblock *b);

/* Asserts the heap's figures agree with each other and with LEN. */
void assert_stats_sane(shmheap_memory_handle mem, size_t len);

/* The heap works right now: check passes, the figures add up, and the
 * largest free request can be allocated, written and freed. */
void assert_heap_works(shmheap_memory_handle mem, size_t len);

/* Allocates every free byte of the heap in blocks of falling sizes, fills
 * each with its own pattern, and checks all of them and the parent's blocks:
 * free space handed out twice, or a parent block handed out, would show as a
 * broken pattern. Frees what it took. Returns the blocks taken. */
unsigned exhaust_and_verify(shmheap_memory_handle mem, size_t len,
                            const struct pblock *pb, unsigned npb);

/* Whether STATUS says the child died of SIG. */
bool killed_by(int status, int sig);

/* STATUS in words ("exit 3", "signal 9 (Killed)") in BUF. */
const char *describe_status(int status, char *buf, size_t n);

/* Reads one byte from FD within TIMEOUT_MS; returns 1, or 0 on timeout/EOF. */
int read_byte_within(int fd, int timeout_ms);

/* Registers /crash/lock-holder, /crash/points, /crash/half-created,
 * /crash/threads and /crash/threads-kill. */
void crash_points_cases(void);

#endif

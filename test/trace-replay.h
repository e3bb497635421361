/* trace-replay.h: what test-trace's parts share: the serial-order log a
 * test makes for a heap (lib/trace.h), and its replay through the oracle
 * model (trace-replay.c). */
#ifndef SHMHEAP_TEST_TRACE_REPLAY_H
#define SHMHEAP_TEST_TRACE_REPLAY_H

#include <glib.h>
#include <shmheap.h>
#include <stdint.h>

#include "trace.h"

struct tlog {
  char name[96];
  struct shh_trace_log *log;
  size_t len;
};

/* Creates a log of CAP records for the heap named HEAP and names it in
 * SHMHEAP_TRACE, so that connections made from now on trace the heap;
 * tlog_close unsets the variable and removes the log. */
void tlog_open(struct tlog *t, const char *heap, uint64_t cap);
void tlog_close(struct tlog *t);

/* "alloc", "realloc" or "free". */
const char *op_name(uint32_t op);

/* Says (as a test message) WHAT about the record number I, R. */
void say_rec(const char *what, uint64_t i, const struct shh_trace_rec *r);

/* What a replay found: the most candidate states it followed at once, the
 * records that failed with ENOMEM, and the blocks of the final layout. */
struct replay_sum {
  guint most;
  uint64_t nomem;
  size_t blocks;
};

/* Replays LOG through the oracle from an empty heap of LEN bytes and
 * asserts that every record's result is the model's and that MEM's blocks
 * now are the model's. A PENDING record (its process was killed during it)
 * is followed in each outcome the library allows: not at all, done, and
 * for a realloc that moves, its new block taken with the old one kept; the
 * later records and the final layout choose among them. */
struct replay_sum replay(const struct shh_trace_log *log,
                         shmheap_memory_handle mem, size_t len);

#endif

/* scribble.h: what the parts of the scribble test program share: the
 * kinds of scribble, the test's model of the heap (in memory shared by a
 * trial's processes, never the heap), one trial's outcome, and one
 * process's view of a trial. test-scribble.c runs trials and reports;
 * scribble-ops.c holds the operations and the checks after each;
 * scribble-kinds.c makes the scribbles.
 */
#ifndef SHMHEAP_TEST_SCRIBBLE_H
#define SHMHEAP_TEST_SCRIBBLE_H

#include <stdint.h>

#include "shmheap.h"

enum kind {
  K_NONE,        /* no scribble: the harness itself must see nothing */
  K_WAF,         /* write after free into words 0-3 of a freed payload */
  K_TAG_BIT,     /* one bit flipped in a live block's tag */
  K_TAG_SIZE,    /* a forged size in a live block's tag */
  K_INDEX_FIELD, /* a random value in a free block's index field */
  K_LINK_LIVE,   /* an index link into a live block */
  K_LINK_FREE,   /* an index link to another free block */
  K_LOCK,        /* garbage in the lock word */
  K_N
};

enum {
  HEAP_LEN = 64 * 1024,
  MAX_LIVE = 512,    /* blocks the model tracks (a 64 KiB heap has fewer) */
  MAX_FREE = 256,    /* free blocks a walk may report */
  TURNS = 3,         /* processes that take turns on the heap */
  OPS_PER_TURN = 60, /* operations in each turn */
  CALL_TIMEOUT = 3,  /* seconds any one call may take */
  SETUP_TIMEOUT = 20,
  WIDTH = 2,        /* trials at once */
  LOCK_WIDTH = 200, /* lock trials at once: most sleep in a hung call */
  WHY_LEN = 320,
  WHAT_LEN = 240,
};

/* One live block as the test allocated it. Its bytes are the pattern of
 * (hdl, gen); EXACT is 0 when usable_size refused and USABLE is what was
 * asked for. */
struct live {
  uint64_t hdl, usable, gen;
  int exact;
};

/* What the test knows of the heap: shared by the processes of one trial
 * (MAP_SHARED anonymous memory, never the heap). They take turns, so it
 * needs no lock. */
struct model {
  uint64_t gen;
  uint64_t lock_copy; /* a lock word as its owner saw it */
  unsigned n;
  struct live b[MAX_LIVE];
};

/* The one write a trial makes behind the library's back. */
struct scribble {
  uint64_t off;
  unsigned len;
  int solo; /* only the trial's first process may call the library */
  unsigned char old[16], val[16];
  char what[WHAT_LEN];
};

/* One trial's outcome, written by its processes into memory shared with
 * the test's main process. */
struct result {
  int setup_failed;
  unsigned refused;  /* calls that failed, but for ENOMEM */
  int violation;     /* a broken promise, described in WHY */
  int hang, crash;   /* a process died of SIGALRM / of anything else */
  char why[WHY_LEN]; /* the first failure */
  struct scribble s;
};

struct scribble_cfg {
  uint64_t seed;
  unsigned trials;
  long only;   /* -1: every trial */
  int verbose; /* trace every call on stderr */
};
extern struct scribble_cfg cfg;

/* ------------------------------------------------------------------------ */
/* One process's view of a trial (scribble-ops.c)                            */

struct ctx {
  shmheap_memory_handle mem;
  unsigned char *base;
  struct model *m;
  struct result *res;
  uint64_t rng;
  const char *op; /* the last call made, for messages */
  int err;        /* errno after it, 0 if it succeeded */
};

/* Counts a call that failed; ENOMEM is an ordinary answer, not a
 * refusal. */
void failed(struct ctx *c, int e);
/* With SHMHEAP_SCRIBBLE_VERBOSE set, says what the last call (c->op) did;
 * records its errno. */
void trace(struct ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Arms the alarm that a call must beat (CALL_TIMEOUT). */
void arm(void);
uint64_t rnd(struct ctx *c, uint64_t n);
/* A request size: mostly small, some up to 4 KiB. */
size_t rand_size(uint64_t *rng);
/* Every live block still holds its pattern; else records the spread and
 * returns -1. */
int verify_all(struct ctx *c);
/* Takes a block alloc or calloc returned for SZ bytes into the model, once
 * it is checked to lie in the heap and overlap no live block; fills it. */
int adopt(struct ctx *c, void *p, size_t sz);
/* Drops block I from the model. */
void forget(struct model *m, unsigned i);
/* check(); when it passes, walk must list exactly the model's blocks. */
int op_check(struct ctx *c);
/* NOPS random operations, each followed by verify_all; -1 when one spread
 * (the trial stops). */
int run_ops(struct ctx *c, unsigned nops);

/* ------------------------------------------------------------------------ */
/* Scribbles (scribble-kinds.c)                                              */

extern const char *const kind_names[K_N];

struct blk {
  uint64_t off, size;
};

/* The heap's blocks before the scribble, in address order. */
struct layout {
  unsigned nfree, nused;
  struct blk fr[MAX_FREE], used[MAX_LIVE];
};

/* A walk callback that gathers the blocks into the struct layout at ARG. */
int collect_all(const struct shmheap_block *b, void *arg);

typedef void (*scribble_fn)(struct ctx *, struct layout *, struct scribble *);
/* The scribble of each kind: fills in S (what it writes, where) from the
 * heap's blocks L; it may also free a block first, through C. */
extern const scribble_fn scribblers[K_N];

#endif

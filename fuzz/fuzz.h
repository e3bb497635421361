/* fuzz.h: what the libFuzzer target's two parts share: the input decoder,
 * the oracle's state (live blocks and the name map) and its checks.
 * fuzz-ops.c owns the entry point, the block operations and the scribbles;
 * fuzz-names.c the names and growth operations.
 */
#ifndef SHMHEAP_FUZZ_H
#define SHMHEAP_FUZZ_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmheap.h"

enum {
  HEAP_LEN = 64 * 1024,  /* the fixed heap */
  GROW_LEN = 16 * 1024,  /* the growable heap at create */
  GROW_MAX = 256 * 1024, /* and the most it may grow to */
  OTHER_LEN = 16 * 1024,
  MAX_LIVE = 64,
  MAX_STEPS = 4096,
  NKEYS = 12, /* the keys an input may publish under */
};

#define FUZZ_ASSERT(cond)                                                      \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "fuzz-ops:%d: %s failed (errno %d: %s)\n", __LINE__,     \
              #cond, errno, strerror(errno));                                  \
      abort();                                                                 \
    }                                                                          \
  } while (0)

struct live {
  unsigned char *p;
  size_t sz;
  unsigned char fill;
};

struct state {
  const uint8_t *d;
  size_t n;
  struct live live[MAX_LIVE];
  unsigned nlive;
  uint64_t name[NKEYS]; /* the handle published under key k; 0: none */
  unsigned nnames;
  bool corrupted; /* something scribbled on the heap: oracle off */
  bool stop;      /* the heap reported the damage: end this input */
};

/* The heap this input works on, its size now (kept by refresh_len) and the
 * most it may grow to (== HEAP_LEN for the fixed heap). */
extern shmheap_memory_handle heap;
extern uint64_t heap_len, heap_max;

uint8_t u8(struct state *s);
uint64_t uN(struct state *s, unsigned bytes);
size_t pick_size(struct state *s);

unsigned char *base(void);
uint64_t refresh_len(const struct state *s);
bool in_data_area(const unsigned char *p, size_t sz);
bool filled(const unsigned char *p, size_t n, unsigned char c);
void check_new_block(struct state *s, unsigned char *p, size_t sz, int skip);
void check_errno(struct state *s, int e, bool enomem_ok);
void add_live(struct state *s, unsigned char *p, size_t sz);
void drop_live(struct state *s, unsigned i);
void verify_live(const struct state *s, const struct live *l);

/* fuzz-names.c */
void names_init(void);
/* The model's side of freeing the object HDL: its names go, and (while
 * nothing was scribbled) lookup finds none of them. */
void names_forget(struct state *s, uint64_t hdl);
/* Every key's lookup (through MEM) answers as the model says. */
void names_verify(const struct state *s, shmheap_memory_handle mem);
/* The allocated blocks the names take: one per name, plus the directory. */
uint64_t names_blocks(const struct state *s);
void op_publish(struct state *s);
void op_lookup(struct state *s);
void op_unpublish(struct state *s);
void op_lookup_or_alloc(struct state *s);
void op_names_walk(struct state *s);
void op_grow(struct state *s);

#endif

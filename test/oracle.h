/* oracle.h: what the oracle test's parts share: the model of the heap
 * (oracle-model.c: the blocks in address order, growth, the blocks names
 * take), and a trace under way (test-oracle.c runs it, oracle-names.c
 * adds its names operations). */
#ifndef SHMHEAP_TEST_ORACLE_H
#define SHMHEAP_TEST_ORACLE_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

struct oblk {
  uint64_t off;
  uint64_t size;
  int used;
};

struct oracle {
  uint64_t len;     /* the heap's size now */
  uint64_t max_len; /* the most it may grow to; == len: it cannot */
  uint64_t page;
  struct oblk *b;
  size_t n, cap;
  uint64_t grows;   /* growth steps taken */
  uint64_t dir;     /* the names directory's block, 0: none */
  uint64_t dir_cap; /* its slots per table */
  uint64_t names;   /* names published */
};

void oracle_init(struct oracle *o, uint64_t len, uint64_t max_len);
void oracle_fini(struct oracle *o);
/* The block's offset (its tag's), or 0 when nothing fits (growing a
 * growable heap first, as the library's policy says). */
uint64_t oracle_alloc(struct oracle *o, uint64_t sz);
void oracle_free(struct oracle *o, uint64_t off);
/* The block's offset after realloc, or 0 on failure (nothing changed). */
uint64_t oracle_realloc(struct oracle *o, uint64_t off, uint64_t sz);
/* shmheap_grow(N): N > len, a page multiple <= max_len. */
void oracle_grow(struct oracle *o, uint64_t n);
uint64_t oracle_largest_free(const struct oracle *o);

/* Names. The directory is made by the first name (oracle_dir_need: 0, or
 * -1 for ENOMEM), and goes with the last (oracle_dir_drop_if_empty).
 * oracle_entry_add makes one name's entry for a key of KEYLEN bytes,
 * rehashing first when FULL (the library's tables, whose fill depends on
 * the keys' hashes, are 3/4 full): its block, or 0 for ENOMEM (then the
 * directory goes if it holds no name). oracle_entry_remove frees one. */
int oracle_dir_need(struct oracle *o);
uint64_t oracle_entry_add(struct oracle *o, uint64_t keylen, int full);
void oracle_entry_remove(struct oracle *o, uint64_t entry);
void oracle_dir_drop_if_empty(struct oracle *o);

/* ------------------------------------------------------------------------ */
/* Traces                                                                    */

#include <shmheap.h>

struct obj {
  char *p;
  uint64_t block; /* offset of the block's tag */
  size_t n;       /* bytes asked for */
};

struct trace_cfg {
  uint64_t seed;
  size_t len;
  int ops;
  int compare_every; /* full walk comparison every N ops */
  int fill_drain;    /* alternate filling to failure and freeing */
  size_t max_len;    /* nonzero: a growable heap, up to this size */
  int names;         /* names ops in the trace (oracle-names.c) */
};

enum { NKEYS = 16 };

/* A key's name: the object it names (its block), and its entry's block. */
struct tname {
  uint64_t obj, entry;
};

/* One trace under way: the heap, the oracle, and the test's live objects. */
struct trace {
  const struct trace_cfg *cfg;
  shmheap_memory_handle mem;
  char *base;
  struct oracle o;
  GArray *live; /* struct obj */
  uint64_t rng;
  uint64_t n_alloc, n_fail, n_realloc, n_moved, n_names, n_fail_at_max;
  int filling;
  struct tname names[NKEYS];
  char keys[NKEYS][128];
};

/* test-oracle.c */
void mark(const struct obj *x, uint64_t seed);
void assert_marked(const struct obj *x, size_t n, uint64_t seed);
size_t trace_size(uint64_t *rng, uint64_t len, const struct oracle *o);

/* oracle-names.c */
void trace_names_init(struct trace *t);
/* One names operation, chosen at random. */
void trace_names_op(struct trace *t, int op);
/* The object at block OBJ was just freed (by free, or by a realloc that
 * moved it): its names go, in the model and (checked) in the library. */
void trace_forget(struct trace *t, uint64_t obj);
/* Every key's lookup, and a walk of the names, agree with the model. */
void trace_names_check(struct trace *t);

#endif

/* index-node.h: an index node's fields inside its free block, and the one
 * test a link must pass before it is followed (node_ok).
 *
 * The node's fields (block.h) are the left and right children and the
 * largest block size in each subtree (lmax, rmax); the node's AVL balance,
 * height(right) - height(left), plus SHH_BAL_BIAS, sits in the three low bits
 * of lmax (sizes are multiples of 8). For index.c, which changes the tree,
 * and index-scan.c, which rebuilds and checks it.
 */
#ifndef SHMHEAP_INDEX_NODE_H
#define SHMHEAP_INDEX_NODE_H

#include "block.h"

enum {
  SHH_BAL_BIAS = 2, /* the stored balance is the real one plus this */
};
#define SHH_BAL_BITS ((uint64_t)7) /* the balance's bits in the lmax word */

/* The walks take a side from a comparison of offsets or sizes, which no
 * branch predictor can guess; they compute with it instead of branching on
 * it. R is 0 for the left, 1 for the right. */
static inline uint64_t link_at(uint64_t r) {
  return SHH_N_LEFT + r * (SHH_N_RIGHT - SHH_N_LEFT);
}
static inline uint64_t max_at(uint64_t r) {
  return SHH_N_LMAX + r * (SHH_N_RMAX - SHH_N_LMAX);
}
/* A if R is 0, B if it is 1, without a branch. */
static inline uint64_t pick(uint64_t r, uint64_t a, uint64_t b) {
  return a ^ ((a ^ b) & (0 - r));
}

/* ---- fields -------------------------------------------------------------
 * SIDE < 0 is the left, SIDE > 0 the right. */

static inline uint64_t link_field(int side) {
  return link_at(side > 0);
}
static inline uint64_t max_field(int side) {
  return max_at(side > 0);
}
static inline uint64_t child(const struct shmheap *h, uint64_t n, int side) {
  return shh_ld(h, n + link_field(side));
}
static inline void set_child(const struct shmheap *h, uint64_t n, int side,
                             uint64_t v) {
  shh_st(h, n + link_field(side), v);
}
static inline uint64_t side_max(const struct shmheap *h, uint64_t n, int side) {
  return shh_ld(h, n + max_field(side)) & ~SHH_BAL_BITS;
}
/* The lmax word keeps its balance bits. */
static inline void set_side_max(const struct shmheap *h, uint64_t n, int side,
                                uint64_t v) {
  uint64_t f = n + max_field(side), keep = 0 - (uint64_t)(side < 0);
  shh_st(h, f, v | (shh_ld(h, f) & SHH_BAL_BITS & keep));
}
static inline int bal(const struct shmheap *h, uint64_t n) {
  return (int)(shh_ld(h, n + SHH_N_LMAX) & SHH_BAL_BITS) - SHH_BAL_BIAS;
}
static inline void set_bal(const struct shmheap *h, uint64_t n, int b) {
  shh_st(h, n + SHH_N_LMAX, side_max(h, n, -1) | (uint64_t)(b + SHH_BAL_BIAS));
}
static inline uint64_t size_of(const struct shmheap *h, uint64_t n) {
  return shh_tag_size(shh_ld(h, n));
}

static inline uint64_t max3(uint64_t a, uint64_t b, uint64_t c) {
  uint64_t m = a > b ? a : b;
  return m > c ? m : c;
}

/* The largest block size in the subtree rooted at N. */
static inline uint64_t submax(const struct shmheap *h, uint64_t n) {
  return n ? max3(size_of(h, n), side_max(h, n, -1), side_max(h, n, 1)) : 0;
}

/* Makes C N's child on SIDE and that side's maximum C's, storing only what
 * changed (a write dirties a shared cache line). */
static inline void set_side(const struct shmheap *h, uint64_t n, int side,
                            uint64_t c) {
  uint64_t m = submax(h, c);
  if (child(h, n, side) != c)
    set_child(h, n, side, c);
  if (side_max(h, n, side) != m)
    set_side_max(h, n, side, m);
}

/* Whether N may be followed as a node whose block lies in [LO, HI). The one
 * place a link read from the region is judged. The block must end before
 * HI: no free block follows another, and the top, the free block that ends
 * the heap, is not a node (a link to it is refused like any other). */
static inline __attribute__((always_inline)) int
node_ok(const struct shmheap *h, uint64_t n, uint64_t lo, uint64_t hi) {
  if (n - lo >= hi - lo || !shh_phase_ok(n)) /* n in [lo, hi) */
    return 0;
  uint64_t tag = shh_ld(h, n), size = shh_tag_size(tag);
  if (shh_tag_used(tag) || size < SHH_MIN_BLOCK || size >= hi - n)
    return 0;
  /* a balance of -1, 0 or +1 */
  uint64_t b = (shh_ld(h, n + SHH_N_LMAX) & SHH_BAL_BITS) - (SHH_BAL_BIAS - 1);
  return b <= 2 && shh_tag_ok(h, n, tag);
}

#endif

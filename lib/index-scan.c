/* index-scan.c: the free index against the tags: rebuilding it from a scan
 * of the tags (recovery), and checking it against one (shmheap_check).
 * Both run after the caller has verified the whole tag walk. The index
 * holds every free block but the top, a free block that ends the heap. */
#include <errno.h>

#include "index-node.h"
#include "index.h"

uint64_t shh_index_largest(const struct shmheap *h) {
  uint64_t root = shh_hdr(h)->root;
  return root != 0 && node_ok(h, root, SHH_FIRST, h->len) ? submax(h, root) : 0;
}

struct free_iter {
  const struct shmheap *h;
  uint64_t off; /* next block to look at */
};

/* The next free block in address order but the top (which ends the heap
 * and stays out of the index), or 0. The tags were verified by the
 * caller's walk (recovery, check) before this runs. */
static uint64_t next_free(struct free_iter *it) {
  while (it->off < it->h->len) {
    uint64_t b = it->off, tag = shh_ld(it->h, b);
    it->off = b + shh_tag_size(tag);
    if (!shh_tag_used(tag) && it->off != it->h->len)
      return b;
  }
  return 0;
}

/* Builds a balanced tree of the next COUNT free blocks; *HEIGHT gets its
 * height. Recursion depth is log2(COUNT). */
static uint64_t build(struct free_iter *it, uint64_t count, int *height) {
  *height = 0;
  if (count == 0)
    return 0;
  const struct shmheap *h = it->h;
  int hl, hr;
  uint64_t l = build(it, count / 2, &hl);
  uint64_t n = next_free(it);
  uint64_t r = build(it, count - count / 2 - 1, &hr);
  set_child(h, n, -1, l);
  set_child(h, n, 1, r);
  shh_st(h, n + SHH_N_LMAX, submax(h, l) | (uint64_t)(hr - hl + SHH_BAL_BIAS));
  set_side_max(h, n, 1, submax(h, r));
  *height = 1 + (hl > hr ? hl : hr);
  return n;
}

void shh_index_rebuild(const struct shmheap *h, uint64_t count) {
  struct free_iter it = {h, SHH_FIRST};
  int height;
  shh_hdr(h)->root = build(&it, count, &height);
}

struct check_ctx {
  struct free_iter it;
  uint64_t seen;
};

/* Checks the subtree N, whose blocks must lie in [LO, HI); *HEIGHT receives
 * its real height. */
static int check_at(struct check_ctx *c, uint64_t n, uint64_t lo, uint64_t hi,
                    int depth, int *height) {
  const struct shmheap *h = c->it.h;
  *height = 0;
  if (n == 0)
    return 0;
  if (depth >= SHH_MAX_DEPTH || !node_ok(h, n, lo, hi))
    return EUCLEAN;
  int hl, hr;
  uint64_t l = child(h, n, -1), r = child(h, n, 1);
  if (check_at(c, l, lo, n, depth + 1, &hl) != 0)
    return EUCLEAN;
  /* in order, the tree must list exactly the free blocks of the tag walk */
  if (next_free(&c->it) != n)
    return EUCLEAN;
  c->seen++;
  if (check_at(c, r, n + size_of(h, n), hi, depth + 1, &hr) != 0)
    return EUCLEAN;
  *height = 1 + (hl > hr ? hl : hr);
  if (bal(h, n) != hr - hl)
    return EUCLEAN;
  if (side_max(h, n, -1) != submax(h, l) || side_max(h, n, 1) != submax(h, r))
    return EUCLEAN;
  return 0;
}

int shh_index_check(const struct shmheap *h, uint64_t free_count) {
  struct check_ctx c = {{h, SHH_FIRST}, 0};
  int height;
  if (check_at(&c, shh_hdr(h)->root, SHH_FIRST, h->len, 0, &height) != 0)
    return EUCLEAN;
  if (c.seen != free_count || next_free(&c.it) != 0)
    return EUCLEAN;
  return 0;
}

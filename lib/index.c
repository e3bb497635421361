/* index.c: the free index, an AVL tree of free blocks ordered by offset.
 *
 * Every node is a free block. Its fields (block.h) are the left and right
 * children, and the largest block size in each subtree (lmax, rmax); the
 * node's AVL balance, height(right) - height(left), plus SHH_BAL_BIAS, sits in
 * the three low bits of lmax (sizes are multiples of 8; +-2 is held only for
 * the moment between a change and its rotation). Keeping the subtree maxima
 * in the parent, and a balance rather than a height, means that first fit
 * and every update read and write only the nodes on their path (and the
 * few a removal's rotation lifts): at 100k free blocks the path is all that
 * misses the cache.
 *
 * First fit: go left while lmax fits, else take this node if it fits, else
 * go right if rmax fits. The tree holds offsets only; 0 is the empty link.
 * It holds every free block but the top, the one that ends the heap
 * (block.h): heap.c takes the top only when no indexed block fits.
 *
 * Nothing read from the region is trusted. A link is followed only to a
 * node (node_ok, index-node.h): a block whose tag verifies as free, whose
 * balance is possible, and which lies in the span address order leaves it:
 * below the root, [SHH_FIRST, len); a left child ends before its parent starts,
 * a right child starts after its parent ends, each inside its parent's span. So
 * a link scribbled into a live block, or into another part of the tree, is
 * refused before anything is written. The tag and the node share a cache line,
 * and each node's check bits are computed once, on the way down.
 *
 * A removal rebalances on its way up, and its rotations move the sibling of
 * the path (and, for a double rotation, the sibling's inner child): nodes no
 * walk down has seen. plan_shrink follows the removal's climb without
 * writing, with the same balances the removal will read, and verifies each
 * node a rotation will move. Walks are bounded by SHH_MAX_DEPTH. The tree is
 * not crash-consistent by itself and need not be: recovery rebuilds it from
 * the tags (recover.c).
 */
#include "index.h"

#include <errno.h>

#include "index-node.h"

/* The span of node[I]'s subtree on SIDE. */
static void child_span(const struct shmheap *h, const struct shh_path *p, int i,
                       int side, uint64_t *lo, uint64_t *hi) {
  uint64_t n = p->node[i];
  *lo = side < 0 ? p->lo[i] : n + size_of(h, n);
  *hi = side < 0 ? n : p->hi[i];
}

/* Appends N, which must be a node in [LO, HI), to PATH. */
static inline __attribute__((always_inline)) int push(const struct shmheap *h,
                                                      struct shh_path *p,
                                                      uint64_t n, uint64_t lo,
                                                      uint64_t hi) {
  if (p->depth >= SHH_MAX_DEPTH || !node_ok(h, n, lo, hi))
    return EUCLEAN;
  p->node[p->depth] = n;
  p->lo[p->depth] = lo;
  p->hi[p->depth] = hi;
  p->depth++;
  return 0;
}

/* Appends the last node's child on SIDE, which must be there. */
static int step(const struct shmheap *h, struct shh_path *p, int side) {
  int i = p->depth - 1;
  uint64_t lo, hi, c = child(h, p->node[i], side);
  child_span(h, p, i, side, &lo, &hi);
  return c == 0 ? EUCLEAN : push(h, p, c, lo, hi);
}

/* Verifies node[I]'s child on SIDE, if any; *C gets it. */
static int child_ok(const struct shmheap *h, const struct shh_path *p, int i,
                    int side, uint64_t *c) {
  uint64_t lo, hi;
  *c = child(h, p->node[i], side);
  child_span(h, p, i, side, &lo, &hi);
  return *c == 0 || node_ok(h, *c, lo, hi) ? 0 : EUCLEAN;
}

static int start(const struct shmheap *h, struct shh_path *p, uint64_t *root) {
  p->depth = 0;
  p->at = p->with = -1;
  p->reach = SHH_MAX_DEPTH;
  *root = shh_hdr(h)->root;
  return *root == 0 ? 0 : push(h, p, *root, SHH_FIRST, h->len);
}

/* ---- walks down ---------------------------------------------------------- */

/* Whether N, at level D of a walk down, is a node in [LO, HI). The walks
 * read the words they need of N right after it passes and only then record
 * it (put): a store to the path could be a store to the region as far as
 * the compiler knows, and would make it read those words again. */
static inline __attribute__((always_inline)) int
node_at(const struct shmheap *h, int d, uint64_t n, uint64_t lo, uint64_t hi) {
  return d < SHH_MAX_DEPTH && node_ok(h, n, lo, hi);
}

static inline void put(struct shh_path *p, int d, uint64_t n, uint64_t lo,
                       uint64_t hi) {
  p->node[d] = n;
  p->lo[d] = lo;
  p->hi[d] = hi;
}

int shh_index_descend(const struct shmheap *h, uint64_t off,
                      struct shh_path *path) {
  uint64_t lo = SHH_FIRST, hi = h->len, n = shh_hdr(h)->root;
  int d = 0, err = 0;
  shh_index_empty(path);
  for (; n != 0; d++) {
    if (n == off || !node_at(h, d, n, lo, hi)) {
      err = EUCLEAN; /* already indexed, or not a node */
      break;
    }
    uint64_t r = off > n, end = n + size_of(h, n);
    uint64_t next = shh_ld(h, n + link_at(r));
    put(path, d, n, lo, hi);
    lo = pick(r, lo, end);
    hi = pick(r, n, hi);
    n = next;
  }
  path->depth = d;
  return err;
}

int shh_index_find(const struct shmheap *h, uint64_t off,
                   struct shh_path *path) {
  uint64_t n;
  if (start(h, path, &n) != 0 || n == 0)
    return EUCLEAN;
  while (n != off) {
    if (step(h, path, off < n ? -1 : 1) != 0)
      return EUCLEAN;
    n = path->node[path->depth - 1];
  }
  path->at = path->depth - 1;
  return 0;
}

int shh_index_first_fit(const struct shmheap *h, uint64_t need, uint64_t *off,
                        struct shh_path *path) {
  uint64_t lo = SHH_FIRST, hi = h->len, n = shh_hdr(h)->root;
  int d = 0;
  *off = 0;
  path->at = path->with = -1;
  path->reach = SHH_MAX_DEPTH;
  path->depth = 0;
  if (n == 0)
    return 0;
  if (!node_at(h, 0, n, lo, hi))
    return EUCLEAN;
  uint64_t size = size_of(h, n), lm = side_max(h, n, -1),
           rm = side_max(h, n, 1);
  put(path, 0, n, lo, hi);
  path->depth = 1;
  if (max3(size, lm, rm) < need)
    return 0;
  for (;;) {
    /* left while the left subtree fits, else this node, else right; the
     * side is computed (r), so only the last step is a taken branch */
    uint64_t r = lm < need;
    /* one comparison each, or the compiler branches on both halves */
    if (pick(r, 0, size) >= need) {
      *off = n;
      path->at = d;
      path->depth = d + 1;
      return 0;
    }
    if (pick(r, UINT64_MAX, rm) < need)
      return EUCLEAN; /* the parent's maximum promised a fit here */
    lo = pick(r, lo, n + size);
    hi = pick(r, n, hi);
    n = shh_ld(h, n + link_at(r));
    /* an empty link here is a maximum that promised a subtree */
    if (++d, n == 0 || !node_at(h, d, n, lo, hi))
      return EUCLEAN;
    size = size_of(h, n);
    lm = side_max(h, n, -1);
    rm = side_max(h, n, 1);
    put(path, d, n, lo, hi);
  }
}

int shh_index_select(struct shh_path *path, uint64_t off) {
  for (int i = 0; i < path->depth; i++) {
    if (path->node[i] == off) {
      path->at = i;
      return 0;
    }
  }
  return EUCLEAN;
}

/* ---- rebalancing --------------------------------------------------------- */

/* Lifts N's child on side UP into N's place. The maxima stay right from
 * what the moving nodes already know; the balances follow the usual AVL
 * identities (written for UP > 0; UP < 0 is their mirror). */
static uint64_t rotate(const struct shmheap *h, uint64_t n, int up) {
  uint64_t y = child(h, n, up);
  int bn = bal(h, n), by = bal(h, y);
  set_child(h, n, up, child(h, y, -up));
  set_side_max(h, n, up, side_max(h, y, -up));
  set_child(h, y, -up, n);
  bn = bn - up - (up * by > 0 ? by : 0);
  set_bal(h, n, bn);
  set_side_max(h, y, -up, submax(h, n));
  set_bal(h, y, by - up + (up * bn < 0 ? bn : 0));
  return y;
}

/* After N's subtree on SIDE changed height by DELTA (+1 grew, -1 shrank),
 * updates N's balance and rotates if it reached +-2. Returns the subtree's
 * root; *CHANGED says whether the subtree's height changed, which is all the
 * parent needs to know. The nodes it moves were verified beforehand: the
 * path's child for an insertion, plan_shrink's for a removal. */
static uint64_t retilt(const struct shmheap *h, uint64_t n, int side, int delta,
                       int *changed) {
  int b = bal(h, n) + (side < 0 ? -delta : delta);
  set_bal(h, n, b);
  if (b >= -1 && b <= 1) {
    /* growing: taller unless it evened out; shrinking: shorter if it did */
    *changed = delta > 0 ? b != 0 : b == 0;
    return n;
  }
  int heavy = b < 0 ? -1 : 1;
  int cb = bal(h, child(h, n, heavy));
  if (cb * heavy < 0)
    set_child(h, n, heavy, rotate(h, child(h, n, heavy), -heavy));
  /* an insertion's rotation restores the old height; a removal's lowers
   * it, unless the child was even (then a single rotation keeps it) */
  *changed = delta < 0 && cb != 0;
  return rotate(h, n, heavy);
}

/* One level of a removal's climb, as plan_shrink sees it. */
struct climb {
  int level; /* the path level; its node's span bounds the siblings */
  int side;  /* the side whose subtree lost height */
  int b;     /* the balance the node has when the removal reaches it */
};

/* One level of plan_shrink, *SHRANK in and out as retilt's: where the
 * level tips over, the rotation will lift its other child, and for a double
 * rotation that child's inner child; both must be nodes. */
static int plan_level(const struct shmheap *h, const struct shh_path *p,
                      const struct climb *c, int *shrank) {
  int b = c->b + (c->side < 0 ? 1 : -1);
  if (b >= -1 && b <= 1) {
    *shrank = b == 0;
    return 0;
  }
  int heavy = -c->side;
  uint64_t lo, hi, s, g;
  child_span(h, p, c->level, heavy, &lo, &hi);
  s = child(h, p->node[c->level], heavy);
  if (s == 0 || !node_ok(h, s, lo, hi))
    return EUCLEAN; /* a balance that promises a child that is not there */
  int cb = bal(h, s);
  if (cb * heavy < 0) {
    g = child(h, s, -heavy);
    if (heavy < 0) /* g lies right of s, inside the span of s's side */
      lo = s + size_of(h, s);
    else
      hi = s;
    if (g == 0 || !node_ok(h, g, lo, hi))
      return EUCLEAN;
  }
  *shrank = cb != 0;
  return 0;
}

/* Follows the planned removal's climb without writing, with the balances
 * the removal will read (at the replaced node's level, the replaced node's:
 * its successor takes it over), while the subtree keeps shrinking; above
 * that, nothing rotates. */
static int plan_shrink(const struct shmheap *h, const struct shh_path *p) {
  int k = p->at, j = p->with, shrank = 1;
  if (j > k) {
    int d = p->node[k + 1] < p->node[k] ? -1 : 1;
    for (int i = j - 1; i > k && shrank; i--) {
      struct climb c = {i, -d, bal(h, p->node[i])};
      if (plan_level(h, p, &c, &shrank) != 0)
        return EUCLEAN;
    }
    struct climb c = {k, d, bal(h, p->node[k])};
    if (shrank && plan_level(h, p, &c, &shrank) != 0)
      return EUCLEAN;
  }
  for (int i = k - 1; i >= 0 && shrank; i--) {
    struct climb c = {i, p->node[i + 1] < p->node[i] ? -1 : 1,
                      bal(h, p->node[i])};
    if (plan_level(h, p, &c, &shrank) != 0)
      return EUCLEAN;
  }
  return 0;
}

int shh_index_plan_remove(const struct shmheap *h, struct shh_path *path) {
  int k = path->at;
  uint64_t l, r, mc;
  if (k < 0 || child_ok(h, path, k, -1, &l) != 0 ||
      child_ok(h, path, k, 1, &r) != 0)
    return EUCLEAN;
  path->depth = k + 1;
  path->with = k;
  if (l != 0 && r != 0) {
    /* the successor: the leftmost node of the right subtree */
    if (step(h, path, 1) != 0)
      return EUCLEAN;
    while (child(h, path->node[path->depth - 1], -1) != 0)
      if (step(h, path, -1) != 0)
        return EUCLEAN;
    path->with = path->depth - 1;
    if (child_ok(h, path, path->with, 1, &mc) != 0)
      return EUCLEAN;
  }
  return plan_shrink(h, path);
}

/* Whether the path from level TOP down to level BOTTOM (the path's end)
 * turns to SIDE once and then only the other way: BOTTOM is TOP's nearest
 * neighbour on SIDE in address order. */
static int neighbours(const struct shh_path *p, int top, int bottom, int side) {
  if (top >= bottom || bottom != p->depth - 1)
    return 0;
  for (int i = top + 1; i <= bottom; i++) {
    int s = p->node[i] < p->node[i - 1] ? -1 : 1;
    if (s != (i == top + 1 ? side : -side))
      return 0;
  }
  return 1;
}

/* LO and HI are neighbours in address order, so one is the other's
 * descendant, at the path's end, with no child toward the other. If LO is
 * the ancestor, HI goes and LO stays, grown: the climb must reach LO. If HI
 * is, LO leaves its place to take HI's, as a removal by predecessor. */
int shh_index_plan_merge(const struct shmheap *h, struct shh_path *path,
                         uint64_t lo, uint64_t hi) {
  uint64_t c;
  if (shh_index_select(path, lo) != 0)
    return EUCLEAN;
  int il = path->at;
  if (shh_index_select(path, hi) != 0)
    return EUCLEAN;
  int ih = path->at;
  if (il < ih) {
    if (!neighbours(path, il, ih, 1) || child(h, hi, -1) != 0 ||
        child_ok(h, path, ih, 1, &c) != 0)
      return EUCLEAN;
    path->with = ih;
    path->reach = il;
  } else {
    if (!neighbours(path, ih, il, -1) || child(h, lo, 1) != 0 ||
        child_ok(h, path, il, -1, &c) != 0)
      return EUCLEAN;
    path->with = il;
  }
  return plan_shrink(h, path);
}

/* ---- changes --------------------------------------------------------------
 */

/* Points the link that held OLD (in PARENT, or the root) at NEW_CHILD. */
static void relink(const struct shmheap *h, uint64_t parent, uint64_t old,
                   uint64_t new_child) {
  if (parent == 0)
    shh_hdr(h)->root = new_child;
  else
    set_child(h, parent, old < parent ? -1 : 1, new_child);
}

/* Walks up PATH from level I after the subtree below node[I] on the side of
 * node[I + 1] became C, SHRANK saying whether it lost height. Each level
 * stores only what changed and retilts; the walk stops at the first level
 * whose link, side maximum and height all stay as they were (and that lies
 * above PATH->reach), because nothing above it can change then. */
static void fix_up(const struct shmheap *h, const struct shh_path *path, int i,
                   uint64_t c, int shrank) {
  for (; i >= 0; i--) {
    uint64_t n = path->node[i];
    int side = path->node[i + 1] < n ? -1 : 1;
    if (!shrank && i < path->reach && child(h, n, side) == c &&
        side_max(h, n, side) == submax(h, c))
      return;
    set_side(h, n, side, c);
    c = shrank ? retilt(h, n, side, -1, &shrank) : n;
  }
  if (shh_hdr(h)->root != c)
    shh_hdr(h)->root = c;
}

/* AVL deletion of node[at], walking back up the path instead of down from
 * the root again. Where node[with] takes its place (the successor, or for a
 * merge the predecessor), it leaves its own place to its one child and
 * takes the removed node's links, balance and far side's maximum. */
void shh_index_remove(const struct shmheap *h, struct shh_path *path) {
  int k = path->at, j = path->with, shrank = 1;
  uint64_t x = path->node[k];
  if (j == k) {
    uint64_t l = child(h, x, -1);
    fix_up(h, path, k - 1, l ? l : child(h, x, 1), 1);
    return;
  }
  int d = path->node[k + 1] < x ? -1 : 1;
  uint64_t m = path->node[j], c = child(h, m, d);
  if (j > k + 1) {
    /* unlink m from its parent, fixing the levels between m and x */
    uint64_t n = path->node[j - 1];
    set_side(h, n, -d, c);
    c = retilt(h, n, -d, -1, &shrank);
    for (int i = j - 2; i > k; i--) {
      n = path->node[i];
      set_side(h, n, -d, c);
      c = shrank ? retilt(h, n, -d, -1, &shrank) : n;
    }
  }
  set_child(h, m, -d, child(h, x, -d));
  set_side_max(h, m, -d, side_max(h, x, -d));
  set_bal(h, m, bal(h, x));
  set_side(h, m, d, c);
  c = shrank ? retilt(h, m, d, -1, &shrank) : m;
  fix_up(h, path, k - 1, c, shrank);
}

/* Insertion hangs the node where the descent ended, then walks back up only
 * as far as something changes: the side maxima stop at the first ancestor
 * whose side already holds a block as large (every ancestor above holds it
 * too), the balances at the first ancestor whose height does not grow. A
 * rotation only ever lifts the path's own nodes. */
void shh_index_add(const struct shmheap *h, const struct shh_path *path,
                   uint64_t off) {
  int last = path->depth - 1;
  set_child(h, off, -1, 0);
  set_child(h, off, 1, 0);
  shh_st(h, off + SHH_N_LMAX, SHH_BAL_BIAS); /* lmax 0, balance 0 */
  set_side_max(h, off, 1, 0);
  relink(h, last >= 0 ? path->node[last] : 0, off, off);
  uint64_t size = size_of(h, off);
  int grew = 1, raise = 1;
  for (int i = last; i >= 0 && (grew || raise); i--) {
    uint64_t n = path->node[i];
    int side = off < n ? -1 : 1;
    if (raise) {
      if (side_max(h, n, side) >= size)
        raise = 0;
      else
        set_side_max(h, n, side, size);
    }
    if (grew) {
      uint64_t top = retilt(h, n, side, +1, &grew);
      if (top != n)
        relink(h, i ? path->node[i - 1] : 0, n, top);
    }
  }
}

void shh_index_moved(const struct shmheap *h, struct shh_path *path,
                     uint64_t to) {
  /* all words are read before any is written: the two places may overlap
   * when a free block's start moves by less than a node */
  int k = path->at;
  uint64_t from = path->node[k], w[SHH_N_WORDS];
  for (int i = 0; i < SHH_N_WORDS; i++)
    w[i] = shh_ld(h, from + SHH_N_LEFT + 8 * (uint64_t)i);
  for (int i = 0; i < SHH_N_WORDS; i++)
    shh_st(h, to + SHH_N_LEFT + 8 * (uint64_t)i, w[i]);
  relink(h, k ? path->node[k - 1] : 0, from, to);
  path->node[k] = to;
}

void shh_index_resized(const struct shmheap *h, const struct shh_path *path) {
  for (int i = path->at - 1; i >= 0; i--) {
    uint64_t n = path->node[i], c = path->node[i + 1], m = submax(h, c);
    /* the side's maximum word; the left one keeps the balance bits */
    uint64_t r = c > n, f = n + max_at(r), w = shh_ld(h, f);
    /* an unchanged maximum changes nothing above it */
    if ((w & ~SHH_BAL_BITS) == m)
      return;
    shh_st(h, f, m | (w & SHH_BAL_BITS & (r - 1)));
  }
}

int shh_index_insert(const struct shmheap *h, uint64_t off) {
  struct shh_path path;
  if (off + size_of(h, off) == h->len)
    return 0; /* the top stays out */
  if (shh_index_descend(h, off, &path) != 0)
    return EUCLEAN;
  shh_index_add(h, &path, off);
  return 0;
}

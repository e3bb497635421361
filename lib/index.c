/* index.c: the free index, an AVL tree of free blocks ordered by offset.
 *
 * Every node is a free block. Its fields (block.h) are the left and right
 * children, and the largest block size in each subtree (lmax, rmax); the
 * node's AVL balance, height(right) - height(left), plus 2, sits in the
 * three low bits of lmax (sizes are multiples of 8; +-2 is held only for the
 * moment between a change and its rotation). Keeping the subtree maxima in the
 * parent, and a balance rather than a height, means that first fit and every
 * update read and write only the nodes on their path, never a sibling: at
 * 100k free blocks the path is all that misses the cache.
 *
 * First fit: go left while lmax fits, else take this node if it fits, else
 * go right if rmax fits. The tree holds offsets only; 0 is the empty link.
 *
 * Links read from the region are checked (link_ok) before they are followed,
 * and walks are bounded by SHH_MAX_DEPTH, so a scribbled index makes an
 * operation fail with EUCLEAN rather than run off the heap or loop. The tree
 * is not crash-consistent by itself and need not be: recovery rebuilds it
 * from the tags (recover.c).
 */
#include "index.h"

#include "block.h"

#define BAL_MASK ((uint64_t)7)

struct shh_walk {
  const struct shmheap *h;
  int bad;
};

/* A link that may be followed: empty, or a plausible free block. */
static inline __attribute__((always_inline)) int link_ok(struct shh_walk *w,
                                                         uint64_t n) {
  if (n == 0 || (shh_off_ok(w->h, n) && !shh_tag_used(shh_ld(w->h, n))))
    return 1;
  w->bad = 1;
  return 0;
}

/* For walks that only read (first fit, find): a link inside the heap and
 * tag-aligned can be read without harm; whatever a walk then writes is
 * checked with link_ok first (writable). */
static inline __attribute__((always_inline)) uint64_t
peek_at(struct shh_walk *w, uint64_t n, uint64_t field) {
  uint64_t v = shh_ld(w->h, n + field);
  if (v == 0 || shh_off_ok(w->h, v))
    return v;
  w->bad = 1;
  return 0;
}

/* Whether the walk may write into node N: it must be a free block. */
static inline __attribute__((always_inline)) int writable(struct shh_walk *w,
                                                          uint64_t n) {
  if (shh_tag_used(shh_ld(w->h, n)))
    w->bad = 1;
  return !w->bad;
}

/* Every link read from the region goes through here: a link that cannot be
 * a node reads as empty and marks the walk bad. */
static inline __attribute__((always_inline)) uint64_t
link_at(struct shh_walk *w, uint64_t n, uint64_t field) {
  uint64_t v = shh_ld(w->h, n + field);
  return link_ok(w, v) ? v : 0;
}
static uint64_t left(struct shh_walk *w, uint64_t n) {
  return link_at(w, n, SHH_N_LEFT);
}
static uint64_t right(struct shh_walk *w, uint64_t n) {
  return link_at(w, n, SHH_N_RIGHT);
}
static void set_left(const struct shmheap *h, uint64_t n, uint64_t v) {
  shh_st(h, n + SHH_N_LEFT, v);
}
static void set_right(const struct shmheap *h, uint64_t n, uint64_t v) {
  shh_st(h, n + SHH_N_RIGHT, v);
}

static uint64_t lmax(const struct shmheap *h, uint64_t n) {
  return shh_ld(h, n + SHH_N_LMAX) & ~(uint64_t)7;
}
static uint64_t rmax(const struct shmheap *h, uint64_t n) {
  return shh_ld(h, n + SHH_N_RMAX) & ~(uint64_t)7;
}
static int bal(const struct shmheap *h, uint64_t n) {
  return (int)(shh_ld(h, n + SHH_N_LMAX) & BAL_MASK) - 2;
}
static void set_lmax(const struct shmheap *h, uint64_t n, uint64_t v) {
  shh_st(h, n + SHH_N_LMAX, v | (shh_ld(h, n + SHH_N_LMAX) & BAL_MASK));
}
static void set_rmax(const struct shmheap *h, uint64_t n, uint64_t v) {
  shh_st(h, n + SHH_N_RMAX, v);
}
static void set_bal(const struct shmheap *h, uint64_t n, int b) {
  shh_st(h, n + SHH_N_LMAX, lmax(h, n) | (uint64_t)(b + 2));
}

static uint64_t max3(uint64_t a, uint64_t b, uint64_t c) {
  uint64_t m = a > b ? a : b;
  return m > c ? m : c;
}

/* The largest block size in the subtree rooted at N. */
static inline __attribute__((always_inline)) uint64_t
submax(const struct shmheap *h, uint64_t n) {
  return n ? max3(shh_tag_size(shh_ld(h, n)), lmax(h, n), rmax(h, n)) : 0;
}

/* Makes C the left (SIDE < 0) or right child of N and that side's maximum
 * C's, storing only what changed (a write dirties a shared cache line). */
static inline __attribute__((always_inline)) void
set_side(const struct shmheap *h, uint64_t n, int side, uint64_t c) {
  uint64_t m = submax(h, c);
  if (side < 0) {
    if (shh_ld(h, n + SHH_N_LEFT) != c)
      set_left(h, n, c);
    if (lmax(h, n) != m)
      set_lmax(h, n, m);
  } else {
    if (shh_ld(h, n + SHH_N_RIGHT) != c)
      set_right(h, n, c);
    if (rmax(h, n) != m)
      set_rmax(h, n, m);
  }
}

/* Rotations keep the maxima right from what the moving nodes already know,
 * and update the balances by the usual AVL identities. */
static uint64_t rotate_left(struct shh_walk *w, uint64_t x) {
  const struct shmheap *h = w->h;
  uint64_t y = right(w, x);
  if (y == 0) { /* a balance that promises a child that is not there */
    w->bad = 1;
    return x;
  }
  int bx = bal(h, x), by = bal(h, y);
  set_right(h, x, left(w, y));
  set_rmax(h, x, lmax(h, y));
  set_left(h, y, x);
  bx = bx - 1 - (by > 0 ? by : 0);
  set_bal(h, x, bx);
  set_lmax(h, y, submax(h, x));
  set_bal(h, y, by - 1 + (bx < 0 ? bx : 0));
  return y;
}

static uint64_t rotate_right(struct shh_walk *w, uint64_t x) {
  const struct shmheap *h = w->h;
  uint64_t y = left(w, x);
  if (y == 0) {
    w->bad = 1;
    return x;
  }
  int bx = bal(h, x), by = bal(h, y);
  set_left(h, x, right(w, y));
  set_lmax(h, x, rmax(h, y));
  set_right(h, y, x);
  bx = bx + 1 - (by < 0 ? by : 0);
  set_bal(h, x, bx);
  set_rmax(h, y, submax(h, x));
  set_bal(h, y, by + 1 + (bx > 0 ? bx : 0));
  return y;
}

/* After N's left (SIDE < 0) or right subtree changed height by DELTA (+1
 * grew, -1 shrank), updates N's balance and rotates if it reached +-2.
 * Returns the subtree's root; *CHANGED says whether the subtree's height
 * changed, which is all the parent needs to know. */
static uint64_t retilt(struct shh_walk *w, uint64_t n, int side, int delta,
                       int *changed) {
  const struct shmheap *h = w->h;
  int b = bal(h, n) + (side < 0 ? -delta : delta);
  set_bal(h, n, b);
  if (b >= -1 && b <= 1) {
    /* growing: taller unless it evened out; shrinking: shorter if it did */
    *changed = delta > 0 ? b != 0 : b == 0;
    return n;
  }
  uint64_t child = b < 0 ? left(w, n) : right(w, n);
  if (child == 0) {
    w->bad = 1;
    return n;
  }
  int cb = bal(h, child);
  uint64_t root;
  if (b < 0) {
    if (cb > 0)
      set_left(h, n, rotate_left(w, child));
    root = w->bad ? n : rotate_right(w, n);
  } else {
    if (cb < 0)
      set_right(h, n, rotate_right(w, child));
    root = w->bad ? n : rotate_left(w, n);
  }
  /* an insertion's rotation restores the old height; a removal's lowers
   * it, unless the child was even (then a single rotation keeps it) */
  *changed = delta < 0 && cb != 0;
  return root;
}

/* Walks up PATH from level I after the subtree below PATH->node[I] on the
 * side of PATH->node[I + 1] became C, SHRANK saying whether it lost height.
 * Each level stores only what changed and retilts; the walk stops at the
 * first level whose link, side maximum and height all stay as they were,
 * because nothing above it can change then. Returns -1 on a damaged index. */
static int fix_up(struct shh_walk *w, const struct shh_path *path, int i,
                  uint64_t c, int shrank) {
  const struct shmheap *h = w->h;
  for (; i >= 0; i--) {
    uint64_t n = path->node[i];
    if (!writable(w, n))
      return -1;
    int side = path->node[i + 1] < n ? -1 : 1;
    uint64_t lf = side < 0 ? SHH_N_LEFT : SHH_N_RIGHT;
    uint64_t m = submax(h, c), old = side < 0 ? lmax(h, n) : rmax(h, n);
    int same = shh_ld(h, n + lf) == c && old == m;
    if (same && !shrank)
      return 0;
    set_side(h, n, side, c);
    c = shrank ? retilt(w, n, side, -1, &shrank) : n;
    if (w->bad)
      return -1;
  }
  if (shh_hdr(h)->root != c)
    shh_hdr(h)->root = c;
  return 0;
}

/* AVL deletion of the last node of PATH, walking back up the path instead
 * of down from the root again. A node with two children is replaced by its
 * successor, which takes its links, balance and left maximum. */
int shh_index_remove_path(const struct shmheap *h, struct shh_path *path) {
  struct shh_walk w = {h, 0};
  int k = path->depth - 1;
  if (k < 0)
    return -1;
  uint64_t x = path->node[k];
  if (!writable(&w, x))
    return -1;
  uint64_t l = link_at(&w, x, SHH_N_LEFT), r = link_at(&w, x, SHH_N_RIGHT);
  if (w.bad)
    return -1;
  if (l == 0 || r == 0)
    return fix_up(&w, path, k - 1, l ? l : r, 1);
  /* the successor m: the leftmost node of x's right subtree */
  int j = k + 1;
  uint64_t m = r;
  for (;;) {
    if (j >= SHH_MAX_DEPTH)
      return -1;
    path->node[j] = m;
    uint64_t ml = link_at(&w, m, SHH_N_LEFT);
    if (w.bad)
      return -1;
    if (ml == 0)
      break;
    m = ml;
    j++;
  }
  uint64_t mr = link_at(&w, m, SHH_N_RIGHT), c;
  if (w.bad)
    return -1;
  int shrank = 1;
  if (j == k + 1) {
    c = mr; /* m is x's right child: its own right subtree stays */
  } else {
    /* unlink m from its parent, fixing the levels between m and x */
    uint64_t n = path->node[j - 1];
    set_side(h, n, -1, mr);
    c = retilt(&w, n, -1, -1, &shrank);
    for (int i = j - 2; i > k && !w.bad; i--) {
      n = path->node[i];
      set_side(h, n, -1, c);
      c = shrank ? retilt(&w, n, -1, -1, &shrank) : n;
    }
    if (w.bad)
      return -1;
  }
  /* m takes x's place: x's left side and balance, and the right side c */
  set_left(h, m, l);
  shh_st(h, m + SHH_N_LMAX, shh_ld(h, x + SHH_N_LMAX));
  set_side(h, m, 1, c);
  c = shrank ? retilt(&w, m, 1, -1, &shrank) : m;
  if (w.bad)
    return -1;
  return fix_up(&w, path, k - 1, c, shrank);
}

/* Points the link that held OLD (in PARENT, or the root) at NEW. */
static void relink(const struct shmheap *h, uint64_t parent, uint64_t old,
                   uint64_t new_child) {
  if (parent == 0)
    shh_hdr(h)->root = new_child;
  else if (shh_ld(h, parent + SHH_N_LEFT) == old)
    set_left(h, parent, new_child);
  else
    set_right(h, parent, new_child);
}

int shh_index_descend(const struct shmheap *h, uint64_t off,
                      struct shh_path *path) {
  struct shh_walk w = {h, 0};
  uint64_t n = shh_hdr(h)->root;
  path->depth = 0;
  if (!link_ok(&w, n))
    return -1;
  while (n != 0) {
    if (n == off || path->depth >= SHH_MAX_DEPTH)
      return -1; /* already indexed, or a cycle */
    path->node[path->depth++] = n;
    n = peek_at(&w, n, off < n ? SHH_N_LEFT : SHH_N_RIGHT);
    if (w.bad)
      return -1;
  }
  return 0;
}

int shh_index_cut(struct shh_path *path, uint64_t off) {
  for (int i = 0; i < path->depth; i++) {
    if (path->node[i] == off) {
      path->depth = i + 1;
      return 0;
    }
  }
  return -1;
}

/* Insertion hangs the node where the descent ended, then walks back up only
 * as far as something changes: the side maxima stop at the first ancestor
 * whose side already holds a block as large (every ancestor above holds it
 * too), the balances at the first ancestor whose height does not grow. */
int shh_index_insert_path(const struct shmheap *h, uint64_t off,
                          const struct shh_path *path) {
  struct shh_walk w = {h, 0};
  uint64_t parent = path->depth ? path->node[path->depth - 1] : 0;
  if (parent != 0 &&
      (!writable(&w, parent) ||
       shh_ld(h, parent + (off < parent ? SHH_N_LEFT : SHH_N_RIGHT)) != 0))
    return -1; /* the path does not end where OFF hangs */
  set_left(h, off, 0);
  set_right(h, off, 0);
  shh_st(h, off + SHH_N_LMAX, 2); /* lmax 0, balance 0 */
  set_rmax(h, off, 0);
  if (parent == 0)
    shh_hdr(h)->root = off;
  else if (off < parent)
    set_left(h, parent, off);
  else
    set_right(h, parent, off);
  uint64_t size = shh_tag_size(shh_ld(h, off));
  int grew = 1, raise = 1;
  for (int i = path->depth - 1; i >= 0 && (grew || raise); i--) {
    uint64_t n = path->node[i];
    if (!writable(&w, n))
      return -1;
    int side = off < n ? -1 : 1;
    if (raise) {
      uint64_t m = side < 0 ? lmax(h, n) : rmax(h, n);
      if (m >= size)
        raise = 0;
      else if (side < 0)
        set_lmax(h, n, size);
      else
        set_rmax(h, n, size);
    }
    if (grew) {
      uint64_t top = retilt(&w, n, side, +1, &grew);
      if (w.bad)
        return -1;
      if (top != n)
        relink(h, i ? path->node[i - 1] : 0, n, top);
    }
  }
  return 0;
}

int shh_index_insert(const struct shmheap *h, uint64_t off) {
  struct shh_path path;
  if (shh_index_descend(h, off, &path) != 0)
    return -1;
  return shh_index_insert_path(h, off, &path);
}

int shh_index_remove(const struct shmheap *h, uint64_t off) {
  struct shh_path path;
  if (shh_index_find(h, off, &path) != 0)
    return -1;
  return shh_index_remove_path(h, &path);
}

uint64_t shh_index_largest(const struct shmheap *h) {
  struct shh_walk w = {h, 0};
  uint64_t root = shh_hdr(h)->root;
  return link_ok(&w, root) ? submax(h, root) : 0;
}

int shh_index_first_fit(const struct shmheap *h, uint64_t need, uint64_t *off,
                        struct shh_path *path) {
  struct shh_walk w = {h, 0};
  uint64_t n = shh_hdr(h)->root;
  path->depth = 0;
  *off = 0;
  if (!link_ok(&w, n))
    return -1;
  if (n == 0 || submax(h, n) < need)
    return 0;
  for (;;) {
    if (path->depth >= SHH_MAX_DEPTH)
      return -1;
    path->node[path->depth++] = n;
    if (lmax(h, n) >= need) {
      n = peek_at(&w, n, SHH_N_LEFT);
    } else if (shh_tag_size(shh_ld(h, n)) >= need) {
      *off = n;
      return writable(&w, n) ? 0 : -1;
    } else if (rmax(h, n) >= need) {
      n = peek_at(&w, n, SHH_N_RIGHT);
    } else {
      return -1; /* the parent's maximum promised a fit here */
    }
    if (n == 0) /* a maximum that promised a subtree that is not there */
      return -1;
  }
}

int shh_index_find(const struct shmheap *h, uint64_t off,
                   struct shh_path *path) {
  struct shh_walk w = {h, 0};
  uint64_t n = shh_hdr(h)->root;
  path->depth = 0;
  if (!link_ok(&w, n))
    return -1;
  while (n != 0 && path->depth < SHH_MAX_DEPTH) {
    path->node[path->depth++] = n;
    if (off == n)
      return 0;
    n = peek_at(&w, n, off < n ? SHH_N_LEFT : SHH_N_RIGHT);
  }
  return -1;
}

int shh_index_fix_path(const struct shmheap *h, const struct shh_path *path) {
  for (int i = path->depth - 2; i >= 0; i--) {
    uint64_t p = path->node[i], c = path->node[i + 1], m = submax(h, c);
    uint64_t old = c < p ? lmax(h, p) : rmax(h, p);
    /* an unchanged maximum changes nothing above it */
    if (m == old)
      return 0;
    if (shh_tag_used(shh_ld(h, p)))
      return -1;
    if (c < p)
      set_lmax(h, p, m);
    else
      set_rmax(h, p, m);
  }
  return 0;
}

int shh_index_replace(const struct shmheap *h, struct shh_path *path,
                      uint64_t new_off) {
  int last = path->depth - 1;
  uint64_t parent = last > 0 ? path->node[last - 1] : 0;
  if (parent != 0 && shh_tag_used(shh_ld(h, parent)))
    return -1;
  relink(h, parent, path->node[last], new_off);
  path->node[last] = new_off;
  return 0;
}

/* ---- rebuild and check: walk the tags alongside the tree ---------------- */

struct free_iter {
  const struct shmheap *h;
  uint64_t off; /* next block to look at */
};

/* The next free block in address order, or 0. The tags were validated by
 * the caller's walk (recovery, check) before this runs. */
static uint64_t next_free(struct free_iter *it) {
  while (it->off < it->h->len) {
    uint64_t b = it->off, tag = shh_ld(it->h, b);
    it->off = b + shh_tag_size(tag);
    if (!shh_tag_used(tag))
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
  set_left(h, n, l);
  set_right(h, n, r);
  shh_st(h, n + SHH_N_LMAX, submax(h, l) | (uint64_t)(hr - hl + 2));
  set_rmax(h, n, submax(h, r));
  *height = 1 + (hl > hr ? hl : hr);
  return n;
}

int shh_index_rebuild(const struct shmheap *h, uint64_t count) {
  struct free_iter it = {h, SHH_FIRST};
  int height;
  shh_hdr(h)->root = build(&it, count, &height);
  return 0;
}

struct check_ctx {
  struct shh_walk w;
  struct free_iter it;
  uint64_t seen;
};

/* Checks the subtree N; *HEIGHT receives its real height. */
static int check_at(struct check_ctx *c, uint64_t n, int depth, int *height) {
  const struct shmheap *h = c->w.h;
  *height = 0;
  if (n == 0)
    return 0;
  if (depth >= SHH_MAX_DEPTH)
    return -1;
  int hl, hr;
  uint64_t l = left(&c->w, n), r = right(&c->w, n);
  if (c->w.bad || check_at(c, l, depth + 1, &hl) != 0)
    return -1;
  /* in order, the tree must list exactly the free blocks of the tag walk */
  if (next_free(&c->it) != n)
    return -1;
  c->seen++;
  if (check_at(c, r, depth + 1, &hr) != 0)
    return -1;
  *height = 1 + (hl > hr ? hl : hr);
  if (bal(h, n) != hr - hl || hr - hl > 1 || hl - hr > 1)
    return -1;
  if (lmax(h, n) != submax(h, l) || rmax(h, n) != submax(h, r))
    return -1;
  return 0;
}

int shh_index_check(const struct shmheap *h, uint64_t free_count) {
  struct check_ctx c = {{h, 0}, {h, SHH_FIRST}, 0};
  int height;
  uint64_t root = shh_hdr(h)->root;
  if (!link_ok(&c.w, root) || check_at(&c, root, 0, &height) != 0)
    return -1;
  if (c.seen != free_count || next_free(&c.it) != 0)
    return -1;
  return 0;
}

/* index.c: the free index, an AVL tree of free blocks ordered by offset.
 *
 * Every node is a free block; its fields (block.h) are the left and right
 * children, the largest block size in its subtree, and its height. The
 * maximum makes first fit exact and O(log n): go left while the left
 * subtree has a block big enough, else take this node if it is, else go
 * right. The tree holds offsets only; 0 is the empty link.
 *
 * Links read from the region are checked (shh_off_ok) before they are
 * followed, and walks are bounded by SHH_MAX_DEPTH, so a scribbled index
 * makes an operation fail with EUCLEAN rather than run off the heap or loop.
 * The tree is not crash-consistent by itself and need not be: recovery
 * rebuilds it from the tags (lock.c, recover.c).
 */
#include "index.h"

#include "block.h"

struct shh_walk {
  const struct shmheap *h;
  int bad;
};

/* A link that may be followed: empty, or a plausible free block. */
static int link_ok(struct shh_walk *w, uint64_t n) {
  if (n == 0 || (shh_off_ok(w->h, n) && !shh_tag_used(shh_ld(w->h, n))))
    return 1;
  w->bad = 1;
  return 0;
}

/* Every link read from the region goes through here: a link that cannot be
 * a node reads as empty and marks the walk bad, so nothing past it is read
 * or written. */
static uint64_t link_at(struct shh_walk *w, uint64_t n, uint64_t field) {
  uint64_t v = shh_ld(w->h, n + field);
  return link_ok(w, v) ? v : 0;
}
static uint64_t left(struct shh_walk *w, uint64_t n) {
  return link_at(w, n, SHH_N_LEFT);
}
static uint64_t right(struct shh_walk *w, uint64_t n) {
  return link_at(w, n, SHH_N_RIGHT);
}
static uint64_t node_max(const struct shmheap *h, uint64_t n) {
  return n ? shh_ld(h, n + SHH_N_MAX) : 0;
}
static uint64_t node_height(const struct shmheap *h, uint64_t n) {
  return n ? shh_ld(h, n + SHH_N_HEIGHT) : 0;
}
static uint64_t node_size(const struct shmheap *h, uint64_t n) {
  return shh_tag_size(shh_ld(h, n));
}
static void set_left(const struct shmheap *h, uint64_t n, uint64_t v) {
  shh_st(h, n + SHH_N_LEFT, v);
}
static void set_right(const struct shmheap *h, uint64_t n, uint64_t v) {
  shh_st(h, n + SHH_N_RIGHT, v);
}

static uint64_t max3(uint64_t a, uint64_t b, uint64_t c) {
  uint64_t m = a > b ? a : b;
  return m > c ? m : c;
}

/* Recomputes the height and the subtree maximum of N from its children. */
static void node_update(struct shh_walk *w, uint64_t n) {
  const struct shmheap *h = w->h;
  uint64_t l = left(w, n), r = right(w, n);
  uint64_t hl = node_height(h, l), hr = node_height(h, r);
  shh_st(h, n + SHH_N_HEIGHT, 1 + (hl > hr ? hl : hr));
  shh_st(h, n + SHH_N_MAX, max3(node_size(h, n), node_max(h, l), node_max(h, r)));
}

static uint64_t rotate_right(struct shh_walk *w, uint64_t n) {
  uint64_t l = left(w, n);
  if (l == 0) { /* heights that promise a child that is not there */
    w->bad = 1;
    return n;
  }
  set_left(w->h, n, right(w, l));
  set_right(w->h, l, n);
  node_update(w, n);
  node_update(w, l);
  return l;
}

static uint64_t rotate_left(struct shh_walk *w, uint64_t n) {
  uint64_t r = right(w, n);
  if (r == 0) {
    w->bad = 1;
    return n;
  }
  set_right(w->h, n, left(w, r));
  set_left(w->h, r, n);
  node_update(w, n);
  node_update(w, r);
  return r;
}

static int64_t balance_of(struct shh_walk *w, uint64_t n) {
  return (int64_t)node_height(w->h, left(w, n)) -
         (int64_t)node_height(w->h, right(w, n));
}

/* Restores the AVL balance at N after one of its subtrees changed height by
 * one; returns the subtree's new root. */
static uint64_t rebalance(struct shh_walk *w, uint64_t n) {
  const struct shmheap *h = w->h;
  node_update(w, n);
  int64_t b = balance_of(w, n);
  if (w->bad)
    return n;
  if (b > 1) {
    if (balance_of(w, left(w, n)) < 0)
      set_left(h, n, rotate_left(w, left(w, n)));
    return w->bad ? n : rotate_right(w, n);
  }
  if (b < -1) {
    if (balance_of(w, right(w, n)) > 0)
      set_right(h, n, rotate_right(w, right(w, n)));
    return w->bad ? n : rotate_left(w, n);
  }
  return n;
}

static uint64_t insert_at(struct shh_walk *w, uint64_t n, uint64_t key,
                          int depth) {
  const struct shmheap *h = w->h;
  if (!link_ok(w, n) || depth >= SHH_MAX_DEPTH) {
    w->bad = 1;
    return n;
  }
  if (n == 0) {
    set_left(h, key, 0);
    set_right(h, key, 0);
    node_update(w, key);
    return key;
  }
  if (key == n) {
    w->bad = 1; /* already indexed: the tags and the index disagree */
    return n;
  }
  if (key < n)
    set_left(h, n, insert_at(w, left(w, n), key, depth + 1));
  else
    set_right(h, n, insert_at(w, right(w, n), key, depth + 1));
  return w->bad ? n : rebalance(w, n);
}

/* Unlinks the leftmost node of the subtree N into *MIN. */
static uint64_t remove_min(struct shh_walk *w, uint64_t n, uint64_t *min,
                           int depth) {
  const struct shmheap *h = w->h;
  uint64_t l = left(w, n);
  if (w->bad || depth >= SHH_MAX_DEPTH) {
    w->bad = 1;
    return n;
  }
  if (l == 0) {
    *min = n;
    return right(w, n);
  }
  set_left(h, n, remove_min(w, l, min, depth + 1));
  return w->bad ? n : rebalance(w, n);
}

static uint64_t remove_at(struct shh_walk *w, uint64_t n, uint64_t key,
                          int depth) {
  const struct shmheap *h = w->h;
  if (n == 0 || !link_ok(w, n) || depth >= SHH_MAX_DEPTH) {
    w->bad = 1; /* not found: the tags and the index disagree */
    return n;
  }
  if (key < n) {
    set_left(h, n, remove_at(w, left(w, n), key, depth + 1));
  } else if (key > n) {
    set_right(h, n, remove_at(w, right(w, n), key, depth + 1));
  } else {
    uint64_t l = left(w, n), r = right(w, n), m = 0;
    if (w->bad)
      return n;
    if (l == 0)
      return r;
    if (r == 0)
      return l;
    r = remove_min(w, r, &m, depth + 1);
    if (w->bad)
      return n;
    set_left(h, m, l);
    set_right(h, m, r);
    n = m;
  }
  return w->bad ? n : rebalance(w, n);
}

int shh_index_insert(const struct shmheap *h, uint64_t off) {
  struct shh_walk w = {h, 0};
  uint64_t root = insert_at(&w, shh_hdr(h)->root, off, 0);
  if (w.bad)
    return -1;
  shh_hdr(h)->root = root;
  return 0;
}

int shh_index_remove(const struct shmheap *h, uint64_t off) {
  struct shh_walk w = {h, 0};
  uint64_t root = remove_at(&w, shh_hdr(h)->root, off, 0);
  if (w.bad)
    return -1;
  shh_hdr(h)->root = root;
  return 0;
}

int shh_index_first_fit(const struct shmheap *h, uint64_t need, uint64_t *off,
                        struct shh_path *path) {
  struct shh_walk w = {h, 0};
  uint64_t n = shh_hdr(h)->root;
  path->depth = 0;
  *off = 0;
  if (!link_ok(&w, n))
    return -1;
  if (n == 0 || node_max(h, n) < need)
    return 0;
  for (;;) {
    if (path->depth >= SHH_MAX_DEPTH)
      return -1;
    path->node[path->depth++] = n;
    uint64_t l = left(&w, n);
    if (w.bad)
      return -1;
    if (l && node_max(h, l) >= need) {
      n = l;
      continue;
    }
    if (node_size(h, n) >= need) {
      *off = n;
      return 0;
    }
    n = right(&w, n);
    /* the maximum promised a fit below: its absence is damage */
    if (n == 0 || node_max(h, n) < need)
      return -1;
  }
}

int shh_index_find(const struct shmheap *h, uint64_t off,
                   struct shh_path *path) {
  struct shh_walk w = {h, 0};
  uint64_t n = shh_hdr(h)->root;
  path->depth = 0;
  while (n != 0 && link_ok(&w, n) && path->depth < SHH_MAX_DEPTH) {
    path->node[path->depth++] = n;
    if (off == n)
      return 0;
    n = off < n ? left(&w, n) : right(&w, n);
  }
  return -1;
}

int shh_index_fix_path(const struct shmheap *h, const struct shh_path *path) {
  struct shh_walk w = {h, 0};
  for (int i = path->depth - 1; i >= 0; i--) {
    uint64_t n = path->node[i];
    uint64_t m = max3(node_size(h, n), node_max(h, left(&w, n)),
                      node_max(h, right(&w, n)));
    if (w.bad)
      return -1;
    /* above the changed node an unchanged maximum means nothing changes */
    if (m == node_max(h, n) && i != path->depth - 1)
      return 0;
    shh_st(h, n + SHH_N_MAX, m);
  }
  return 0;
}

void shh_index_replace(const struct shmheap *h, struct shh_path *path,
                       uint64_t new_off) {
  int last = path->depth - 1;
  uint64_t old = path->node[last];
  if (last == 0)
    shh_hdr(h)->root = new_off;
  else if (shh_ld(h, path->node[last - 1] + SHH_N_LEFT) == old)
    set_left(h, path->node[last - 1], new_off);
  else
    set_right(h, path->node[last - 1], new_off);
  path->node[last] = new_off;
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

static uint64_t build(struct free_iter *it, uint64_t count) {
  if (count == 0)
    return 0;
  const struct shmheap *h = it->h;
  uint64_t l = build(it, count / 2);
  uint64_t n = next_free(it);
  uint64_t r = build(it, count - count / 2 - 1);
  struct shh_walk w = {h, 0};
  set_left(h, n, l);
  set_right(h, n, r);
  node_update(&w, n);
  return n;
}

int shh_index_rebuild(const struct shmheap *h, uint64_t count) {
  struct free_iter it = {h, SHH_FIRST};
  shh_hdr(h)->root = build(&it, count);
  return 0;
}

struct check_ctx {
  struct shh_walk w;
  struct free_iter it;
  uint64_t seen;
};

/* Checks the subtree N; *HEIGHT and *MAX receive what it really has. */
static int check_at(struct check_ctx *c, uint64_t n, int depth,
                    uint64_t *height, uint64_t *max) {
  const struct shmheap *h = c->w.h;
  *height = 0;
  *max = 0;
  if (n == 0)
    return 0;
  if (!link_ok(&c->w, n) || depth >= SHH_MAX_DEPTH)
    return -1;
  uint64_t lh, lm, rh, rm;
  if (check_at(c, left(&c->w, n), depth + 1, &lh, &lm) != 0 || c->w.bad)
    return -1;
  /* in order, the tree must list exactly the free blocks of the tag walk */
  if (next_free(&c->it) != n)
    return -1;
  c->seen++;
  if (check_at(c, right(&c->w, n), depth + 1, &rh, &rm) != 0 || c->w.bad)
    return -1;
  *height = 1 + (lh > rh ? lh : rh);
  *max = max3(node_size(h, n), lm, rm);
  if (node_height(h, n) != *height || node_max(h, n) != *max)
    return -1;
  if (lh > rh + 1 || rh > lh + 1)
    return -1;
  return 0;
}

int shh_index_check(const struct shmheap *h, uint64_t free_count) {
  struct check_ctx c = {{h, 0}, {h, SHH_FIRST}, 0};
  uint64_t height, max;
  if (check_at(&c, shh_hdr(h)->root, 0, &height, &max) != 0)
    return -1;
  if (c.seen != free_count || next_free(&c.it) != 0)
    return -1;
  return 0;
}

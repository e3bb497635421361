/* heap.c: alloc, free, realloc and the calls built on them; the boundary-tag
 * operations and the order of their writes.
 *
 * Verify, then write. Every operation first gathers and verifies all it
 * will touch: the tags of the block and of each neighbour whose tag it
 * rewrites or whose span it takes over (verified.h: shh_tag_valid, and a
 * size that leads to the next tag: a free neighbour's footer repeats its
 * tag, a used one is followed by a tag that verifies or by the heap's end),
 * and the index path with every node the index change will write (index.h). A
 * failure there returns EINVAL or EUCLEAN with nothing written, so a
 * damaged tag or node stays for shmheap_check to see. Only then does it
 * write, and from then on nothing can fail.
 *
 * Write order, and why it is crash-safe. A process may be SIGKILLed at any
 * instruction while it holds the lock; the next locker rebuilds footers,
 * flags and the free index from the tags alone (recover.c). So every
 * operation keeps one invariant: the tag walk from SHH_FIRST (each tag's
 * size leads to the next tag) is valid at every instant. It does so by
 *   1. writing every new tag and index node into bytes the current walk
 *      does not read as a tag: inside a free block, or inside the block
 *      being freed or shrunk (its contents are the caller's to give up);
 *   2. switching the walk to the new layout with ONE untorn 8-byte store of
 *      an existing tag (shh_commit), fenced so that step 1 is issued first;
 *   3. only then writing the new free block's footer, zeroing tags that the
 *      merge swallowed (so a double free of them is refused) and fixing the
 *      rest of the derived state: neighbours' PREV_FREE flags and the index.
 * Footers are derived too (recovery writes every free block's), and must
 * follow the commit: the top's footer is the heap's last word, which
 * shh_top trusts when the tag it points back to repeats it, and written
 * before a commit that a death prevents, it could stand with that tag
 * inside a block that stays allocated. For the same reason a block growing
 * over the whole top clears the top's footer before its commit.
 * A kill before the commit leaves the old layout, after it the new one. The
 * only in-between states recovery sees are two adjacent free blocks (merged
 * then) and a block allocated by the dead process but never returned to it,
 * which stays allocated: a leak, never memory handed out twice. The index
 * is derived state that recovery rebuilds, so its changes need no place in
 * this order; they come after the commit, where the path verified before it
 * is still the tree, but for a node that moves with its block's start: it
 * is copied (and its parent relinked) in step 1, before the new tags are
 * written over its old place.
 *
 * The crash points (SHH_CRASH_POINT) mark the places between these writes
 * where the crash tests kill a process.
 *
 * Two hooks reach out of this file. An alloc that finds no fit on a growable
 * heap grows it (grow.c) and fits again. A free of a NAMED block, once
 * verified, first removes the block's names (names.c) and then frees it
 * afresh, since removing the names frees their entries.
 */
#include <string.h>

#include "block.h"
#include "extent.h"
#include "grow.h"
#include "heap.h"
#include "index.h"
#include "locked.h"
#include "trace.h"
#include "verified.h"

/* The commit point of an operation, between two crash points. */
static void commit(struct shmheap *h, uint64_t off, uint64_t tag) {
  SHH_CRASH_POINT(h);
  shh_commit(h, off, tag);
  SHH_CRASH_POINT(h);
}

/* Sets or clears the PREV_FREE flag of the verified block B, if any. */
static void set_prev_free(const struct shmheap *h, const struct blk *b,
                          int on) {
  if (b->off == 0)
    return;
  unsigned flags = (unsigned)(b->tag & (SHH_F_USED | SHH_F_NAMED)) |
                   (on ? SHH_F_PREV_FREE : 0);
  shh_st(h, b->off, shh_tag_make(h, b->off, b->size, flags));
}

/* Splits or merges around the free block FROM, the node PATH is about: the
 * free block [TO, TO + SIZE) takes over FROM's node, and the store of TAG at
 * AT switches the walk to it. TO lies where the tags can be written before
 * the commit: inside FROM, inside the block being given up, or at AT itself
 * (then the commit is TO's tag). TO's footer, and the zeroing of FROM's
 * tag if the new layout swallows it, come after. Four operations end this way:
 * a split by alloc or by grow-in-place, a shrink that merges its tail with the
 * next free block, and a free that merges with the next free block only. PATH
 * is NULL when FROM and the new block are the top (block.h), which the index
 * leaves out: then no index node is touched. */
static inline __attribute__((always_inline)) void
move_free(struct shmheap *h, struct shh_path *path, uint64_t from, uint64_t to,
          uint64_t size, uint64_t at, uint64_t tag) {
  uint64_t free_tag = shh_tag_make(h, to, size, 0);
  if (path != NULL)
    shh_index_moved(h, path, to);
  if (to != at)
    shh_st(h, to, free_tag);
  commit(h, at, tag);
  shh_put_footer(h, to, size, free_tag); /* after the commit (write order) */
  if (from != at)
    shh_st(h, from, 0);
  SHH_CRASH_POINT(h);
  if (path != NULL)
    shh_index_resized(h, path);
}

/* Whether the verified free block B is the top, which the index leaves out. */
static int is_top(const struct shmheap *h, const struct blk *b) {
  return b->off + b->size == h->len;
}

/* Takes the whole free block FROM, whose removal PATH has planned, into the
 * block at AT by the store of TAG; AFTER, the block that follows, loses its
 * PREV_FREE flag. PATH is NULL when FROM is the top: nothing follows it,
 * and the index does not hold it. When the top goes into the block before
 * it (AT < FROM), its footer, the heap's last word, is cleared before the
 * commit: a death between the commit and the clearing of FROM's tag would
 * otherwise leave that tag and the footer repeating each other inside the
 * grown block, which shh_top would take for a top (recovery rewrites the
 * footer of a free top, so a death before the commit loses nothing). */
static void take_free(struct shmheap *h, struct shh_path *path, uint64_t from,
                      uint64_t at, uint64_t tag, const struct blk *after) {
  if (path == NULL && from != at) {
    shh_st(h, h->len - SHH_FOOTER, 0);
    SHH_CRASH_POINT(h);
  }
  commit(h, at, tag);
  if (from != at)
    shh_st(h, from, 0);
  set_prev_free(h, after, 0);
  SHH_CRASH_POINT(h);
  if (path != NULL)
    shh_index_remove(h, path);
}

/* Where an internal caller has the new block's handle (ORed with BITS)
 * stored the moment before the block's tag makes it allocated, so that
 * recovery can free it should the caller die before linking it. OFF == 0:
 * nowhere. */
struct note {
  uint64_t off, bits;
};

/* Why shh_top found no top: rightly so when the block that ends the heap
 * is allocated, and then its last word is its owner's, or a footer left
 * there: the top's when an alloc took it whole (pointing back to what is
 * now that block's tag), or one a process that died in mid-call was
 * writing. So a last word that does not verify as a footer, or whose tag
 * is that allocated block's, says the heap is full: ENOMEM in O(1). Any
 * other footer (damage, most often the top's tag overrun by the block
 * before it, or what a death left) is settled by walking to the last
 * block, every tag verified: ENOMEM when it is allocated, EUCLEAN when the
 * walk fails. */
static __attribute__((noinline)) int no_top(const struct shmheap *h) {
  uint64_t f = shh_ld(h, h->len - SHH_FOOTER), size = shh_tag_size(f);
  uint64_t off = h->len - size;
  if (shh_tag_used(f) || size < SHH_MIN_BLOCK || size > h->len - SHH_FIRST ||
      !shh_phase_ok(off) || !shh_tag_ok(h, off, f))
    return ENOMEM;
  uint64_t tag = shh_ld(h, off);
  if (shh_tag_used(tag) && shh_tag_size(tag) == size && shh_tag_ok(h, off, tag))
    return ENOMEM;
  struct shh_last lb;
  return shh_find_last(h, &lb) == 0 ? ENOMEM : EUCLEAN;
}

/* First fit when no indexed block fits: the top, above them all (when the
 * index is empty, as in a LIFO run, it is the only candidate). Its start
 * is carved for SZ bytes (<= h->len) and the rest stays the top; a top too
 * small to split is taken whole. ENOMEM: no top, or it is too small;
 * EUCLEAN: the top is damaged (no_top). FAST: alloc's inline try, which
 * leaves the question of no top to the long way (ENOMEM at once). */
static inline __attribute__((always_inline)) int
fit_top(struct shmheap *h, size_t sz, const struct note *note, void **out,
        int fast) {
  uint64_t t = shh_top(h), size = h->len - t, carve = shh_carve(sz);
  int split = size >= carve + SHH_MIN_BLOCK; /* then it fits */
  if (__builtin_expect(t == 0, 0))
    return fast ? ENOMEM : no_top(h);
  if (__builtin_expect(!split && size < shh_fit(sz), 0))
    return ENOMEM;
  if (note != NULL && note->off != 0)
    shh_st(h, note->off, (t + SHH_TAG) | note->bits);
  if (__builtin_expect(split, 1)) {
    move_free(h, NULL, t, t + carve, size - carve, t,
              shh_tag_make(h, t, carve, SHH_F_USED));
  } else {
    static const struct blk none = {0, 0, 0};
    take_free(h, NULL, t, t, shh_tag_make(h, t, size, SHH_F_USED), &none);
  }
  *out = h->base + t + SHH_TAG;
  return 0;
}

static int fit_locked(struct shmheap *h, size_t sz, const struct note *note,
                      void **out) {
  if ((uint64_t)sz > h->len)
    return ENOMEM;
  struct shh_path path;
  uint64_t b = 0, need = shh_fit(sz);
  int err = 0;
  /* an empty index (only the top is free, as in a LIFO run) skips the walk */
  if (shh_hdr(h)->root != 0 &&
      (err = shh_index_first_fit(h, need, &b, &path)) != 0)
    return err;
  if (b == 0)
    return fit_top(h, sz, note, out, 0);
  uint64_t size = shh_tag_size(shh_ld(h, b)), carve = shh_carve(sz);
  struct blk after = {0, 0, 0};
  if (size < carve + SHH_MIN_BLOCK &&
      ((err = used_after_free(h, b + size, &after)) != 0 ||
       (err = shh_index_plan_remove(h, &path)) != 0))
    return err;
  if (note->off != 0)
    shh_st(h, note->off, (b + SHH_TAG) | note->bits);
  if (size >= carve + SHH_MIN_BLOCK) {
    /* head carving: the rest, after the new block, takes over b's node */
    move_free(h, &path, b, b + carve, size - carve, b,
              shh_tag_make(h, b, carve, SHH_F_USED));
  } else {
    take_free(h, &path, b, b, shh_tag_make(h, b, size, SHH_F_USED), &after);
  }
  *out = h->base + b + SHH_TAG;
  return 0;
}

/* First fit; on a growable heap that has no fit, grow it and fit again. */
static int alloc_noted(struct shmheap *h, size_t sz, const struct note *note,
                       void **out) {
  int err = fit_locked(h, sz, note, out);
  if (err == ENOMEM && h->growable && (err = shh_grow_for(h, sz)) == 0)
    err = fit_locked(h, sz, note, out);
  return err;
}

static int alloc_locked(struct shmheap *h, size_t sz, void **out) {
  static const struct note none = {0, 0};
  return alloc_noted(h, sz, &none, out);
}

void *shh_alloc_noted(struct shmheap *h, size_t sz, uint64_t note_off,
                      uint64_t note_bits, int *err) {
  struct note note = {note_off, note_bits};
  void *p = NULL;
  *err = alloc_noted(h, sz, &note, &p);
  return *err == 0 ? p : NULL;
}

static int free_locked(struct shmheap *h, void *ptr) {
  struct blk a, p, next;
  struct shh_path path;
  /* The walk down the index toward the block comes first. It reads index
   * nodes only, not the block's tags, so the CPU overlaps its cache misses
   * with those of the tags that live_block reads next. Every case below
   * uses it: the block hangs where it ends, and the free blocks just before
   * and after the block lie on it. Its result counts only once the block
   * has proved to be live (a bad pointer is EINVAL, not EUCLEAN). */
  uint64_t off = (uint64_t)((uintptr_t)ptr - (uintptr_t)h->base) - SHH_TAG;
  int found = 0;
  /* the next block's tag, which waits on this one's, is fetched meanwhile */
  if (handle_ok(h, off + SHH_TAG) && shh_phase_ok(off))
    __builtin_prefetch(h->base + off + shh_tag_size(shh_ld(h, off)));
  if (shh_hdr(h)->root != 0)
    found = shh_index_descend(h, off, &path);
  else
    shh_index_empty(&path);
  int err = live_block(h, ptr, &a, &next);
  if (err != 0)
    return err;
  if (found != 0 || prev_block(h, &a, &p) != 0)
    return EUCLEAN;
  struct blk n = next; /* the free block after a, if any */
  if (n.off != 0 && shh_tag_used(n.tag))
    n.off = 0;
  uint64_t start = p.off ? p.off : a.off;
  uint64_t size = (p.off ? p.size : 0) + a.size + (n.off ? n.size : 0);
  /* the freed span becomes the top: the index loses p, if it was there,
   * and gains nothing */
  int top = start + size == h->len;
  if (top && p.off != 0) {
    if ((err = shh_index_select(&path, p.off)) == 0)
      err = shh_index_plan_remove(h, &path);
  } else if (top) {
    err = 0;
  } else if (p.off != 0 && n.off != 0) {
    err = shh_index_plan_merge(h, &path, p.off, n.off);
  } else if (p.off != 0 || n.off != 0) {
    err = shh_index_select(&path, p.off ? p.off : n.off);
  }
  if (err != 0)
    return err;
  if (a.tag & SHH_F_NAMED) {
    /* verified: its names go first (names.c clears the flag), then the
     * block is freed afresh, as the entries' frees changed the index */
    if ((err = shh_names_drop(h, a.off + SHH_TAG)) != 0)
      return err;
    return free_locked(h, ptr);
  }

  uint64_t tag = shh_tag_make(h, start, size, 0);
  if (n.off != 0 && p.off == 0 && !top) {
    /* a swallows n, and takes over its place in the index */
    move_free(h, &path, n.off, a.off, size, a.off, tag);
    return 0;
  }
  commit(h, start, tag);
  shh_put_footer(h, start, size, tag);
  if (p.off != 0)
    shh_st(h, a.off, 0);
  if (n.off != 0)
    shh_st(h, n.off, 0); /* swallowed by a or p */
  else
    set_prev_free(h, &next, 1);
  SHH_CRASH_POINT(h);
  if (top) {
    if (p.off != 0)
      shh_index_remove(h, &path);
  } else if (n.off != 0) {
    shh_index_remove(h, &path); /* p swallowed a and n */
  } else if (p.off != 0) {
    shh_index_resized(h, &path);
  } else {
    shh_index_add(h, &path, a.off);
  }
  return 0;
}

/* A caller's pointer to one of the names directory's own blocks. */
static inline int internal(const struct shmheap *h, const void *ptr) {
  return __atomic_load_n(&shh_hdr(h)->names, __ATOMIC_RELAXED) != 0 &&
         shh_names_internal(h,
                            (uint64_t)((const unsigned char *)ptr - h->base));
}

/* free's fast path, for a LIFO run: no index, no names, and the live block
 * at PTR lies between a used block (or the heap's start) and the top, which
 * it joins. 1 when done; 0, with nothing written, when any of that is not
 * so or anything fails to verify: free_slow then decides. It verifies what
 * free_locked would here: the block's tag (USED, not PREV_FREE nor NAMED),
 * and the next block's, free (not PREV_FREE), ending the heap, repeated by
 * the heap's last word (shh_top's test); its writes are free_locked's. */
static inline __attribute__((always_inline)) int free_top(struct shmheap *h,
                                                          const void *ptr) {
  const struct shh_header *hd = shh_hdr(h);
  uint64_t p = (uint64_t)((uintptr_t)ptr - (uintptr_t)h->base);
  uint64_t a = p - SHH_TAG, len = h->len;
  /* shmheap_free checked handle_ok before the lock, with the same len
   * unless the heap can grow */
  if ((hd->root | __atomic_load_n(&hd->names, __ATOMIC_RELAXED)) != 0 ||
      (h->growable && !handle_ok(h, p)) || !shh_phase_ok(a))
    return 0;
  uint64_t atag = shh_ld(h, a), asize = shh_tag_size(atag), t = a + asize;
  uint64_t f = shh_ld(h, len - SHH_FOOTER), tsize = shh_tag_size(f);
  /* tsize == len - t keeps t inside the heap before its tag is read */
  if ((atag & SHH_F_MASK) != SHH_F_USED || asize < SHH_MIN_BLOCK ||
      (f & SHH_F_MASK) != 0 || tsize != len - t || tsize < SHH_MIN_BLOCK ||
      !shh_phase_ok(t) || shh_ld(h, t) != f || !shh_tag_ok(h, a, atag) ||
      !shh_tag_ok(h, t, f))
    return 0;
  SHH_TRACE_BEGIN(h, SHH_TRACE_FREE, 0, ptr);
  uint64_t size = len - a, tag = shh_tag_make(h, a, size, 0);
  commit(h, a, tag);
  shh_put_footer(h, a, size, tag);
  shh_st(h, t, 0); /* swallowed by the block */
  SHH_CRASH_POINT(h);
  SHH_TRACE_END(h, NULL, 0);
  return 1;
}

/* Gives the tail of A beyond KEEP bytes back to the heap, merging it with
 * NEXT, the verified block after A, when that is free. */
static int shrink_locked(struct shmheap *h, const struct blk *a,
                         const struct blk *next, uint64_t keep) {
  struct shh_path path;
  uint64_t t = a->off + keep, tsize = a->size - keep;
  uint64_t atag = shh_tag_make(h, a->off, keep, (unsigned)flags_of(a->tag));
  if (next->off != 0 && !shh_tag_used(next->tag)) {
    if (is_top(h, next)) {
      move_free(h, NULL, next->off, t, tsize + next->size, a->off, atag);
      return 0;
    }
    int err = shh_index_find(h, next->off, &path);
    if (err != 0)
      return err;
    move_free(h, &path, next->off, t, tsize + next->size, a->off, atag);
    return 0;
  }
  if (next->off == 0) {
    /* the tail ends the heap: it is the new top */
    move_free(h, NULL, a->off, t, tsize, a->off, atag);
    return 0;
  }
  int err = shh_index_descend(h, t, &path);
  if (err != 0)
    return err;
  uint64_t ttag = shh_tag_make(h, t, tsize, 0);
  shh_st(h, t, ttag);
  commit(h, a->off, atag);
  shh_put_footer(h, t, tsize, ttag);
  set_prev_free(h, next, 1);
  SHH_CRASH_POINT(h);
  shh_index_add(h, &path, t);
  return 0;
}

/* Grows A over the free block N that follows it, to hold SZ bytes. */
static int grow_locked(struct shmheap *h, const struct blk *a,
                       const struct blk *n, size_t sz) {
  uint64_t total = a->size + n->size, carve = shh_carve(sz);
  unsigned flags = (unsigned)flags_of(a->tag);
  struct shh_path path, *pp = NULL; /* NULL: n is the top */
  int err = 0;
  if (!is_top(h, n) && (err = shh_index_find(h, n->off, pp = &path)) != 0)
    return err;
  if (total >= carve + SHH_MIN_BLOCK) {
    uint64_t r = a->off + carve;
    move_free(h, pp, n->off, r, total - carve, a->off,
              shh_tag_make(h, a->off, carve, flags));
    return 0;
  }
  struct blk after;
  if ((err = used_after_free(h, a->off + total, &after)) != 0 ||
      (pp != NULL && (err = shh_index_plan_remove(h, pp)) != 0))
    return err;
  take_free(h, pp, n->off, a->off, shh_tag_make(h, a->off, total, flags),
            &after);
  return 0;
}

/* realloc that moves: a new block, the copy, then the old block freed. If
 * freeing the old block fails (a damaged neighbour or index node), the new
 * block is freed again, so the call fails having changed nothing. */
static int move_locked(struct shmheap *h, void *ptr, const struct blk *a,
                       size_t sz, void **out) {
  void *q;
  int err = alloc_locked(h, sz, &q);
  if (err != 0)
    return err;
  memcpy(q, ptr, a->size - SHH_TAG);
  if ((err = free_locked(h, ptr)) != 0) {
    (void)free_locked(h, q); /* q was verified by alloc a moment ago */
    return err;
  }
  *out = q;
  return 0;
}

static int realloc_locked(struct shmheap *h, void *ptr, size_t sz, void **out) {
  struct blk a, next;
  int err = live_block(h, ptr, &a, &next);
  if (err != 0)
    return err;
  if ((uint64_t)sz > h->map_len) /* map_len == len unless growable */
    return ENOMEM;
  *out = ptr;
  if (a.size >= shh_fit(sz)) {
    uint64_t carve = shh_carve(sz);
    return a.size >= carve + SHH_MIN_BLOCK ? shrink_locked(h, &a, &next, carve)
                                           : 0;
  }
  if (next.off != 0 && !shh_tag_used(next.tag) &&
      a.size + next.size >= shh_fit(sz))
    return grow_locked(h, &a, &next, sz);
  return move_locked(h, ptr, &a, sz, out);
}

int shh_free_locked(struct shmheap *h, void *ptr) {
  return free_locked(h, ptr);
}

/* ---- entry points ------------------------------------------------------- */

/* What a public call passes to its locked body. */
struct call {
  void *ptr;
  size_t sz;
  void *out;
};

static int realloc_op(struct shmheap *h, void *arg) {
  struct call *c = arg;
  if (internal(h, c->ptr))
    return EINVAL;
  SHH_TRACE_BEGIN(h, SHH_TRACE_REALLOC, c->sz, c->ptr);
  int err = realloc_locked(h, c->ptr, c->sz, &c->out);
  SHH_TRACE_END(h, c->out, err);
  return err;
}

/* alloc and free try their fast paths (fit_top on an empty index,
 * free_top) inline; the long way and the errors are in functions of their
 * own. */
static __attribute__((noinline)) void *alloc_slow(struct shmheap *h,
                                                  size_t sz) {
  void *p = NULL;
  int err = alloc_locked(h, sz, &p);
  SHH_TRACE_END(h, p, err);
  return shh_leave(h, err) == 0 ? p : NULL;
}

SHH_EXPORT void *shmheap_alloc(shmheap_memory_handle mem, size_t sz) {
  void *p = NULL;
  if (shh_enter(mem) != 0)
    return NULL;
  SHH_TRACE_BEGIN(mem, SHH_TRACE_ALLOC, sz, NULL);
  /* an empty index (a LIFO run): the top is first fit, fit_top all of it */
  if (__builtin_expect(shh_hdr(mem)->root != 0 || (uint64_t)sz > mem->len ||
                           fit_top(mem, sz, NULL, &p, 1) != 0,
                       0))
    return alloc_slow(mem, sz);
  SHH_TRACE_END(mem, p, 0);
  shh_unlock(mem);
  return p;
}

SHH_EXPORT void *shmheap_calloc(shmheap_memory_handle mem, size_t n,
                                size_t sz) {
  if (n != 0 && sz > SIZE_MAX / n) {
    errno = mem ? ENOMEM : EINVAL;
    return NULL;
  }
  void *p = shmheap_alloc(mem, n * sz);
  if (p != NULL)
    memset(p, 0, n * sz);
  return p;
}

SHH_EXPORT void *shmheap_realloc(shmheap_memory_handle mem, void *ptr,
                                 size_t sz) {
  if (ptr == NULL)
    return shmheap_alloc(mem, sz);
  struct call c = {ptr, sz, NULL};
  return shh_locked(mem, realloc_op, &c) == 0 ? c.out : NULL;
}

static __attribute__((noinline)) void free_slow(struct shmheap *h, void *ptr) {
  int err = EINVAL;
  if (!internal(h, ptr)) {
    SHH_TRACE_BEGIN(h, SHH_TRACE_FREE, 0, ptr);
    err = free_locked(h, ptr);
    SHH_TRACE_END(h, NULL, err);
  }
  (void)shh_leave(h, err);
}

SHH_EXPORT void shmheap_free(shmheap_memory_handle mem, void *ptr) {
  uint64_t off;
  if (ptr == NULL)
    return;
  if (mem != NULL && !data_off_now(mem, ptr, &off)) {
    errno = EINVAL; /* not ours: refused without taking the lock */
    return;
  }
  if (shh_enter(mem) != 0)
    return;
  if (__builtin_expect(free_top(mem, ptr), 1))
    shh_unlock(mem);
  else
    free_slow(mem, ptr);
}

/* heap.c: alloc, free, realloc and the calls built on them; the boundary-tag
 * operations and the order of their writes.
 *
 * Write order, and why it is crash-safe. A process may be SIGKILLed at any
 * instruction while it holds the lock; the next locker rebuilds footers,
 * flags and the free index from the tags alone (recover.c). So every
 * operation keeps one invariant: the tag walk from SHH_FIRST (each tag's
 * size leads to the next tag) is valid at every instant. It does so by
 *   1. writing every new tag, footer and index node into bytes the current
 *      walk does not read as a tag: inside a free block, or inside the block
 *      being freed or shrunk (its contents are the caller's to give up);
 *   2. switching the walk to the new layout with ONE untorn 8-byte store of
 *      an existing tag (shh_commit), fenced so that step 1 is issued first;
 *   3. only then zeroing tags that the merge swallowed (so a double free of
 *      them is refused) and fixing derived state: neighbours' PREV_FREE
 *      flags and the index.
 * A kill before the commit leaves the old layout, after it the new one. The
 * only in-between states recovery sees are two adjacent free blocks (merged
 * then) and a block allocated by the dead process but never returned to it,
 * which stays allocated: a leak, never memory handed out twice. Index
 * removals of a block that stops being free happen before the commit, while
 * the block still looks free to the index's checks.
 *
 * The crash points (SHH_CRASH_POINT) mark the places between these writes
 * where the crash tests kill a process.
 */
#include <errno.h>
#include <string.h>

#include "block.h"
#include "index.h"
#include "lock.h"

struct blk {
  uint64_t off, tag, size;
  uint64_t next_tag; /* live blocks: the verified tag that follows, or 0 */
};

static uint64_t flags_of(uint64_t tag) {
  return tag & SHH_F_MASK;
}

/* Checks that PTR is the payload of a live block of this heap. Returns 0 or
 * an errno: EINVAL when PTR cannot be a live block (outside the heap,
 * misaligned, a tag that does not verify: user data under an interior
 * pointer, or a tag left behind by a merge), EUCLEAN when the tag verifies
 * but what it says cannot be. */
static int live_block(const struct shmheap *h, const void *ptr, struct blk *a) {
  uintptr_t p = (uintptr_t)ptr, base = (uintptr_t)h->base;
  if (p < base + SHH_FIRST + SHH_TAG || p - base >= h->len)
    return EINVAL;
  a->off = p - base - SHH_TAG;
  if ((a->off & 15) != 8)
    return EINVAL;
  a->tag = shh_ld(h, a->off);
  if (!shh_tag_ok(h, a->off, a->tag) || !shh_tag_used(a->tag))
    return EINVAL;
  a->size = shh_tag_size(a->tag);
  if (!shh_size_ok(h, a->off, a->size))
    return EUCLEAN;
  uint64_t n = a->off + a->size;
  a->next_tag = 0;
  if (n < h->len) {
    /* a genuine block is followed by a genuine tag that knows it is used */
    uint64_t nt = shh_ld(h, n);
    if (!shh_tag_ok(h, n, nt) || shh_tag_prev_free(nt))
      return EINVAL;
    if (!shh_size_ok(h, n, shh_tag_size(nt)))
      return EUCLEAN;
    a->next_tag = nt;
  }
  return 0;
}

/* The free block just before A into *P (P->off == 0 when there is none).
 * -1 when the footer or the tag it leads to does not hold. */
static int prev_block(const struct shmheap *h, const struct blk *a,
                      struct blk *p) {
  p->off = 0;
  if (!shh_tag_prev_free(a->tag))
    return 0;
  uint64_t ft = shh_ld(h, a->off - 8);
  p->size = shh_tag_size(ft);
  if (p->size > a->off - SHH_FIRST)
    return -1;
  p->off = a->off - p->size;
  p->tag = shh_ld(h, p->off);
  if (p->tag != ft || !shh_tag_ok(h, p->off, ft) || shh_tag_used(ft) ||
      !shh_size_ok(h, p->off, p->size))
    return -1;
  return 0;
}

/* The free block just after the live block A into *N (N->off == 0 when A
 * ends the heap or the next block is allocated). live_block has already
 * verified the next tag, so this reads no memory. */
static void next_block(const struct blk *a, struct blk *n) {
  n->off = 0;
  if (a->next_tag != 0 && !shh_tag_used(a->next_tag)) {
    n->off = a->off + a->size;
    n->tag = a->next_tag;
    n->size = shh_tag_size(a->next_tag);
  }
}

/* Sets or clears the PREV_FREE flag of the block at OFF, if there is one. */
static void mark_prev_free(const struct shmheap *h, uint64_t off, int on) {
  if (off >= h->len)
    return;
  uint64_t tag = shh_ld(h, off);
  unsigned flags = (unsigned)(tag & SHH_F_USED) | (on ? SHH_F_PREV_FREE : 0);
  shh_st(h, off, shh_tag_make(h, off, shh_tag_size(tag), flags));
}

/* Copies the index node of the free block FROM to TO, which takes its place
 * in the tree. The four words are read before any is written: the two may
 * overlap when a free block's start moves by less than a node. */
static void move_node(const struct shmheap *h, uint64_t from, uint64_t to) {
  uint64_t w[4];
  for (int i = 0; i < 4; i++)
    w[i] = shh_ld(h, from + SHH_N_LEFT + 8 * (uint64_t)i);
  for (int i = 0; i < 4; i++)
    shh_st(h, to + SHH_N_LEFT + 8 * (uint64_t)i, w[i]);
}

/* Writes a free block's tag and footer (not yet part of the walk). */
static void lay_free(struct shmheap *h, uint64_t off, uint64_t size) {
  uint64_t tag = shh_tag_make(h, off, size, 0);
  shh_st(h, off, tag);
  shh_put_footer(h, off, size, tag);
}

static void *alloc_locked(struct shmheap *h, size_t sz, int *err) {
  if ((uint64_t)sz > h->len) {
    *err = ENOMEM;
    return NULL;
  }
  struct shh_path path;
  uint64_t b;
  if (shh_index_first_fit(h, shh_fit(sz), &b, &path) != 0) {
    *err = EUCLEAN;
    return NULL;
  }
  if (b == 0) {
    *err = ENOMEM;
    return NULL;
  }
  uint64_t tag = shh_ld(h, b), size = shh_tag_size(tag);
  if (!shh_tag_ok(h, b, tag) || !shh_size_ok(h, b, size)) {
    *err = EUCLEAN;
    return NULL;
  }
  uint64_t carve = shh_carve(sz);
  if (size >= carve + SHH_MIN_BLOCK) {
    /* head carving: the rest, after the new block, takes over b's node */
    uint64_t r = b + carve;
    move_node(h, b, r);
    lay_free(h, r, size - carve);
    SHH_CRASH_POINT(h);
    shh_commit(h, b, shh_tag_make(h, b, carve, SHH_F_USED));
    SHH_CRASH_POINT(h);
    /* the block is ours by its tag even if the index turns out damaged;
     * the next operation that walks there reports it */
    if (shh_index_replace(h, &path, r) == 0)
      (void)shh_index_fix_path(h, &path);
  } else {
    if (shh_index_remove_path(h, &path) != 0) {
      *err = EUCLEAN;
      return NULL;
    }
    SHH_CRASH_POINT(h);
    shh_commit(h, b, shh_tag_make(h, b, size, SHH_F_USED));
    SHH_CRASH_POINT(h);
    mark_prev_free(h, b + size, 0);
  }
  return h->base + b + SHH_TAG;
}

static int free_locked(struct shmheap *h, void *ptr) {
  struct blk a, p, n;
  struct shh_path path;
  /* The walk down the index toward the block comes first. It reads index
   * nodes only, not the block's tags, so the CPU overlaps its cache misses
   * with those of the tags that live_block reads next. Every case below
   * uses it: the block hangs where it ends, and the free blocks just before
   * and after the block lie on it. Its result counts only once the block
   * has proved to be live (a bad pointer is EINVAL, not EUCLEAN). */
  uint64_t off = (uint64_t)((uintptr_t)ptr - (uintptr_t)h->base) - SHH_TAG;
  int walk = shh_index_descend(h, off, &path);
  int err = live_block(h, ptr, &a);
  if (err != 0)
    return err;
  if (walk != 0 || prev_block(h, &a, &p) != 0)
    return EUCLEAN;
  next_block(&a, &n);
  uint64_t start = p.off ? p.off : a.off;
  uint64_t size = (p.off ? p.size : 0) + a.size + (n.off ? n.size : 0);
  uint64_t tag = shh_tag_make(h, start, size, 0);

  if (p.off == 0 && n.off == 0) {
    shh_put_footer(h, a.off, size, tag);
    SHH_CRASH_POINT(h);
    shh_commit(h, a.off, tag);
    SHH_CRASH_POINT(h);
    mark_prev_free(h, a.off + a.size, 1);
    SHH_CRASH_POINT(h);
    return shh_index_insert_path(h, a.off, &path) == 0 ? 0 : EUCLEAN;
  }
  if (p.off != 0 && n.off == 0) {
    if (shh_index_cut(&path, p.off) != 0)
      return EUCLEAN;
    shh_put_footer(h, start, size, tag);
    SHH_CRASH_POINT(h);
    shh_commit(h, p.off, tag);
    SHH_CRASH_POINT(h);
    shh_st(h, a.off, 0);
    mark_prev_free(h, a.off + a.size, 1);
    return shh_index_fix_path(h, &path) == 0 ? 0 : EUCLEAN;
  }
  if (p.off == 0) {
    /* a swallows n, and takes over its place in the index */
    if (shh_index_cut(&path, n.off) != 0)
      return EUCLEAN;
    move_node(h, n.off, a.off);
    shh_put_footer(h, start, size, tag);
    SHH_CRASH_POINT(h);
    shh_commit(h, a.off, tag);
    SHH_CRASH_POINT(h);
    shh_st(h, n.off, 0);
    return shh_index_replace(h, &path, a.off) == 0 &&
                   shh_index_fix_path(h, &path) == 0
               ? 0
               : EUCLEAN;
  }
  /* p swallows a and n; n's removal may rotate the tree, so p's path is
   * looked up again afterwards */
  if (shh_index_cut(&path, n.off) != 0 || shh_index_remove_path(h, &path) != 0)
    return EUCLEAN;
  SHH_CRASH_POINT(h);
  shh_put_footer(h, start, size, tag);
  SHH_CRASH_POINT(h);
  shh_commit(h, p.off, tag);
  SHH_CRASH_POINT(h);
  shh_st(h, a.off, 0);
  shh_st(h, n.off, 0);
  if (shh_index_find(h, p.off, &path) != 0)
    return EUCLEAN;
  return shh_index_fix_path(h, &path) == 0 ? 0 : EUCLEAN;
}

/* Gives the tail of A beyond KEEP bytes back to the heap, merging it with a
 * free next block. */
static int shrink_locked(struct shmheap *h, const struct blk *a,
                         uint64_t keep) {
  struct blk n;
  next_block(a, &n);
  uint64_t t = a->off + keep, tsize = a->size - keep;
  uint64_t atag = shh_tag_make(h, a->off, keep, (unsigned)flags_of(a->tag));
  if (n.off != 0) {
    struct shh_path path;
    if (shh_index_find(h, n.off, &path) != 0)
      return EUCLEAN;
    move_node(h, n.off, t);
    lay_free(h, t, tsize + n.size);
    SHH_CRASH_POINT(h);
    shh_commit(h, a->off, atag);
    SHH_CRASH_POINT(h);
    shh_st(h, n.off, 0);
    return shh_index_replace(h, &path, t) == 0 &&
                   shh_index_fix_path(h, &path) == 0
               ? 0
               : EUCLEAN;
  }
  lay_free(h, t, tsize);
  SHH_CRASH_POINT(h);
  shh_commit(h, a->off, atag);
  SHH_CRASH_POINT(h);
  mark_prev_free(h, t + tsize, 1);
  return shh_index_insert(h, t) == 0 ? 0 : EUCLEAN;
}

/* Grows A over the free block N that follows it, to at least FIT bytes. */
static int grow_locked(struct shmheap *h, const struct blk *a,
                       const struct blk *n, size_t sz) {
  uint64_t total = a->size + n->size, carve = shh_carve(sz);
  unsigned flags = (unsigned)flags_of(a->tag);
  if (total >= carve + SHH_MIN_BLOCK) {
    struct shh_path path;
    if (shh_index_find(h, n->off, &path) != 0)
      return EUCLEAN;
    uint64_t r = a->off + carve;
    move_node(h, n->off, r);
    lay_free(h, r, total - carve);
    SHH_CRASH_POINT(h);
    shh_commit(h, a->off, shh_tag_make(h, a->off, carve, flags));
    SHH_CRASH_POINT(h);
    shh_st(h, n->off, 0);
    return shh_index_replace(h, &path, r) == 0 &&
                   shh_index_fix_path(h, &path) == 0
               ? 0
               : EUCLEAN;
  }
  if (shh_index_remove(h, n->off) != 0)
    return EUCLEAN;
  SHH_CRASH_POINT(h);
  shh_commit(h, a->off, shh_tag_make(h, a->off, total, flags));
  SHH_CRASH_POINT(h);
  shh_st(h, n->off, 0);
  mark_prev_free(h, a->off + total, 0);
  return 0;
}

static void *realloc_locked(struct shmheap *h, void *ptr, size_t sz, int *err) {
  struct blk a, n;
  if ((*err = live_block(h, ptr, &a)) != 0)
    return NULL;
  if ((uint64_t)sz > h->len) {
    *err = ENOMEM;
    return NULL;
  }
  if (a.size >= shh_fit(sz)) {
    uint64_t carve = shh_carve(sz);
    if (a.size >= carve + SHH_MIN_BLOCK)
      *err = shrink_locked(h, &a, carve);
    return *err ? NULL : ptr;
  }
  next_block(&a, &n);
  if (n.off != 0 && a.size + n.size >= shh_fit(sz)) {
    *err = grow_locked(h, &a, &n, sz);
    return *err ? NULL : ptr;
  }
  void *q = alloc_locked(h, sz, err);
  if (q == NULL)
    return NULL;
  memcpy(q, ptr, a.size - SHH_TAG);
  *err = free_locked(h, ptr);
  return q;
}

SHH_EXPORT void *shmheap_alloc(shmheap_memory_handle mem, size_t sz) {
  if (mem == NULL) {
    errno = EINVAL;
    return NULL;
  }
  int lock_err = shh_lock(mem, NULL);
  if (lock_err != 0) {
    errno = lock_err;
    return NULL;
  }
  int err = 0;
  void *p = alloc_locked(mem, sz, &err);
  shh_unlock(mem);
  if (p == NULL)
    errno = err;
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
  if (mem == NULL) {
    errno = EINVAL;
    return NULL;
  }
  int lock_err = shh_lock(mem, NULL);
  if (lock_err != 0) {
    errno = lock_err;
    return NULL;
  }
  int err = 0;
  void *p = realloc_locked(mem, ptr, sz, &err);
  shh_unlock(mem);
  if (p == NULL)
    errno = err;
  return p;
}

SHH_EXPORT void shmheap_free(shmheap_memory_handle mem, void *ptr) {
  if (ptr == NULL)
    return;
  if (mem == NULL) {
    errno = EINVAL;
    return;
  }
  uintptr_t p = (uintptr_t)ptr, base = (uintptr_t)mem->base;
  if (p < base + SHH_FIRST + SHH_TAG || p - base >= mem->len) {
    errno = EINVAL; /* not ours: refused without taking the lock */
    return;
  }
  if (shh_lock(mem, NULL) != 0)
    return;
  int err = free_locked(mem, ptr);
  shh_unlock(mem);
  if (err != 0)
    errno = err;
}

SHH_EXPORT size_t shmheap_usable_size(shmheap_memory_handle mem, void *ptr) {
  if (mem == NULL) {
    errno = EINVAL;
    return 0;
  }
  int lock_err = shh_lock(mem, NULL);
  if (lock_err != 0) {
    errno = lock_err;
    return 0;
  }
  struct blk a;
  int err = live_block(mem, ptr, &a);
  shh_unlock(mem);
  if (err != 0) {
    errno = err;
    return 0;
  }
  return a.size - SHH_TAG;
}

SHH_EXPORT shmheap_object_handle
shmheap_ptr_to_handle(shmheap_memory_handle mem, void *ptr) {
  if (mem == NULL || ptr == NULL)
    return SHMHEAP_NULL_HANDLE;
  uintptr_t p = (uintptr_t)ptr, base = (uintptr_t)mem->base;
  if (p < base + SHH_FIRST + SHH_TAG || p - base >= mem->len)
    return SHMHEAP_NULL_HANDLE;
  return (shmheap_object_handle)(p - base);
}

SHH_EXPORT void *shmheap_handle_to_ptr(shmheap_memory_handle mem,
                                       shmheap_object_handle hdl) {
  if (mem == NULL || hdl < SHH_FIRST + SHH_TAG || hdl >= mem->len)
    return NULL;
  return mem->base + hdl;
}

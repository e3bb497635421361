/* grow.c: growing a heap in place, and the order of its writes.
 *
 * A growable heap is mapped max_len bytes wide in every process, so the new
 * space is already in every process's address space: growth reserves the
 * pages in /dev/shm, makes them one free block, and moves the header's len.
 *
 * The blocks span [SHH_FIRST, len) and every block but the last starts at 8
 * mod 16, so the old last block (8 mod 16 bytes long) must take 8 more bytes
 * and the new free block G starts at old len + 8. Write order:
 *   1. posix_fallocate the new pages: after this no access below the new len
 *      can raise SIGBUS, in any process;
 *   2. write G's tag and footer, beyond the current end (no walk reads them);
 *   3. commit: one untorn store of the header's len;
 *   4. give the old last block its 8 bytes (one store of its tag; a free
 *      last block takes all of G at once, merging);
 *   5. nothing in the index: the free block that now ends the heap (G, or
 *      the old last block grown over it) is the top, which the index leaves
 *      out (block.h).
 * A kill before 3 leaves the heap as it was (the object may be larger than
 * len: harmless). A kill between 3 and 4 leaves a walk that stops 8 bytes
 * short of G's tag: recovery recognises exactly that (extent.h) and
 * completes step 4, then merges a free last block with G like any two
 * adjacent free blocks, and rebuilds the index.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "extent.h"
#include "grow.h"
#include "index.h"
#include "lock.h"
#include "locked.h"

int shh_find_last(const struct shmheap *h, struct shh_last *lb) {
  uint64_t top = shh_top(h);
  lb->free = 0;
  if (top != 0) {
    lb->off = top, lb->tag = shh_ld(h, top), lb->size = h->len - top;
    lb->free = 1;
    return 0;
  }
  struct shh_path path;
  if (shh_index_descend(h, h->len, &path) != 0)
    return EUCLEAN;
  uint64_t off = SHH_FIRST;
  if (path.depth > 0) {
    /* every node ends below len: the descent ends at the rightmost one */
    uint64_t f = path.node[path.depth - 1];
    uint64_t tag = shh_ld(h, f);
    if (!shh_tag_valid(h, f, tag) || shh_tag_used(tag))
      return EUCLEAN;
    off = f + shh_tag_size(tag);
  }
  while (off < h->len) {
    uint64_t tag = shh_ld(h, off), size = shh_tag_size(tag);
    if (!shh_tag_valid(h, off, tag) || !shh_tag_used(tag))
      return EUCLEAN;
    if (off + size == h->len) {
      lb->off = off, lb->tag = tag, lb->size = size;
      return 0;
    }
    off += size;
  }
  return EUCLEAN;
}

/* Reserves the object's bytes [from, to) in the file system. */
static int reserve(int fd, uint64_t from, uint64_t to) {
  int err;
  while ((err = posix_fallocate(fd, (off_t)from, (off_t)(to - from))) == EINTR)
    ;
  return err == 0 ? 0 : ENOSPC;
}

/* Grows the heap to N bytes (a page multiple, len < N <= map_len), whose
 * last block LB shh_find_last found and verified. 0, or
 * ENOSPC with nothing changed: once the pages are reserved nothing fails. */
static int extend(struct shmheap *h, struct shh_last *lb, uint64_t n) {
  uint64_t old = h->len, g = old + SHH_BLOCK_PHASE, gsize = n - g;
  int err = reserve(h->fd, old, n);
  if (err != 0)
    return err;
  uint64_t gtag = shh_tag_make(h, g, gsize, lb->free ? SHH_F_PREV_FREE : 0);
  shh_st(h, g, gtag);
  shh_put_footer(h, g, gsize, gtag);
  SHH_CRASH_POINT(h);
  shh_commit(h, SHH_HDR_LEN, n);
  h->len = n;
  SHH_CRASH_POINT(h);
  unsigned flags = (unsigned)(lb->tag & SHH_F_MASK);
  if (lb->free) {
    /* the free last block takes its 8 bytes and all of G at once */
    uint64_t size = n - lb->off;
    uint64_t tag = shh_tag_make(h, lb->off, size, flags);
    shh_put_footer(h, lb->off, size, tag);
    SHH_CRASH_POINT(h);
    shh_commit(h, lb->off, tag);
    SHH_CRASH_POINT(h);
    shh_st(h, g, 0);
    SHH_CRASH_POINT(h);
    return 0;
  }
  shh_commit(h, lb->off,
             shh_tag_make(h, lb->off, lb->size + SHH_BLOCK_PHASE, flags));
  SHH_CRASH_POINT(h);
  return 0;
}

/* Grows to N under the lock: 0, ENOSPC or EUCLEAN. */
static int grow_to(struct shmheap *h, uint64_t n) {
  struct shh_last lb;
  int err = shh_find_last(h, &lb);
  return err != 0 ? err : extend(h, &lb, n);
}

int shh_grow_for(struct shmheap *h, size_t sz) {
  if ((uint64_t)sz > h->map_len || h->len >= h->map_len)
    return ENOMEM;
  struct shh_last lb;
  int err = shh_find_last(h, &lb);
  if (err != 0)
    return err;
  /* the smallest length at which the last free block holds the request */
  uint64_t page = shh_page_size(), need = shh_fit(sz);
  uint64_t least = lb.free ? lb.off + need : h->len + 8 + need;
  least = (least + page - 1) / page * page;
  if (least <= h->len)
    least = h->len + page;
  if (least > h->map_len)
    return ENOMEM;
  uint64_t doubled = h->len * 2;
  if (doubled > least && doubled <= h->map_len) {
    err = extend(h, &lb, doubled);
    if (err != ENOSPC)
      return err;
  }
  err = extend(h, &lb, least);
  return err == ENOSPC ? ENOMEM : err;
}

SHH_EXPORT shmheap_memory_handle shmheap_create_growable(const char *name,
                                                         size_t len,
                                                         size_t max_len,
                                                         mode_t mode) {
  if (max_len < len || max_len == 0) {
    errno = EINVAL;
    return NULL;
  }
  return shh_create(name, len, max_len, mode);
}

/* shmheap_grow's body under the lock: a size at or below the current one
 * changes nothing. */
static int grow_op(struct shmheap *h, void *arg) {
  size_t new_len = *(const size_t *)arg;
  return (uint64_t)new_len > h->len ? grow_to(h, new_len) : 0;
}

SHH_EXPORT int shmheap_grow(shmheap_memory_handle mem, size_t new_len) {
  if (mem == NULL || !mem->growable || new_len % shh_page_size() != 0 ||
      (uint64_t)new_len > mem->map_len) {
    errno = EINVAL;
    return -1;
  }
  return shh_locked(mem, grow_op, &new_len);
}

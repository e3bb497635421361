/* check.c: looking inside a heap: the integrity check, the figures, and the
 * block walk. All of them walk the tags under the lock, O(n) in blocks. */
#include <errno.h>

#include "block.h"
#include "index.h"
#include "lock.h"

struct tally {
  struct shmheap_stats st;
  int (*fn)(const struct shmheap_block *, void *);
  void *arg;
  int fn_result;
};

/* Walks every tag, checking what the walk itself relies on and, if STRICT,
 * every boundary-tag invariant. Returns 0, -1 on damage, or stops early
 * when T->fn returns nonzero. */
static int walk(const struct shmheap *h, int strict, struct tally *t) {
  uint64_t off = SHH_FIRST;
  int prev_free = 0;
  while (off < h->len) {
    uint64_t tag = shh_ld(h, off), size = shh_tag_size(tag);
    if (!shh_tag_ok(h, off, tag) || !shh_size_ok(h, off, size))
      return -1;
    int used = shh_tag_used(tag);
    if (strict) {
      if (shh_tag_prev_free(tag) != prev_free || (prev_free && !used))
        return -1; /* a stale flag, or two free blocks side by side */
      if (!used && shh_ld(h, off + size - 8) != tag)
        return -1; /* footer and tag disagree */
    }
    if (used) {
      t->st.used_blocks++;
      t->st.used_bytes += size;
    } else {
      t->st.free_blocks++;
      t->st.free_bytes += size;
      if (size - SHH_TAG > t->st.largest_free)
        t->st.largest_free = size - SHH_TAG;
    }
    if (t->fn != NULL) {
      struct shmheap_block blk = {off, size, used, 0, 0, 0};
      if (used) {
        blk.handle = off + SHH_TAG;
        blk.usable = size - SHH_TAG;
      }
      if ((t->fn_result = t->fn(&blk, t->arg)) != 0)
        return 0;
    }
    prev_free = !used;
    off += size;
  }
  return off == h->len ? 0 : -1;
}

/* Locks MEM and walks it; returns 0 or -1 with errno. */
static int locked_walk(shmheap_memory_handle mem, int strict, struct tally *t) {
  if (mem == NULL) {
    errno = EINVAL;
    return -1;
  }
  int lock_err = shh_lock(mem, NULL);
  if (lock_err != 0) {
    errno = lock_err;
    return -1;
  }
  int rc = walk(mem, strict, t);
  if (rc == 0 && strict) {
    /* the index must list exactly the free blocks, and its root's maximum
     * is the largest of them */
    uint64_t largest = t->st.free_blocks ? t->st.largest_free + SHH_TAG : 0;
    if (shh_index_check(mem, t->st.free_blocks) != 0 ||
        shh_index_largest(mem) != largest)
      rc = -1;
  }
  shh_unlock(mem);
  if (rc != 0)
    errno = EUCLEAN;
  return rc;
}

SHH_EXPORT int shmheap_check(shmheap_memory_handle mem) {
  struct tally t = {0};
  return locked_walk(mem, 1, &t);
}

SHH_EXPORT int shmheap_check_detail(shmheap_memory_handle mem,
                                    struct shmheap_damage *out) {
  (void)out; /* the first bad offset is not reported yet */
  return shmheap_check(mem);
}

SHH_EXPORT int shmheap_stats(shmheap_memory_handle mem,
                             struct shmheap_stats *out) {
  struct tally t = {0};
  if (out == NULL) {
    errno = EINVAL;
    return -1;
  }
  if (locked_walk(mem, 0, &t) != 0)
    return -1;
  t.st.size = mem->len;
  t.st.max_size = mem->len;
  t.st.format_version = SHMHEAP_FORMAT_VERSION;
  *out = t.st;
  return 0;
}

SHH_EXPORT int shmheap_walk(shmheap_memory_handle mem,
                            int (*fn)(const struct shmheap_block *, void *),
                            void *arg) {
  struct tally t = {0};
  if (fn == NULL) {
    errno = EINVAL;
    return -1;
  }
  t.fn = fn;
  t.arg = arg;
  if (locked_walk(mem, 0, &t) != 0)
    return -1;
  return t.fn_result;
}

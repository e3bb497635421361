/* check.c: looking inside a heap: the integrity check, the figures, and the
 * public block walk. All of them scan the tags under the lock, O(n) in
 * blocks; they only read. */
#include "block.h"
#include "directory.h"
#include "index.h"
#include "locked.h"

struct tally {
  int strict; /* check every invariant, not only what the scan relies on */
  struct shmheap_stats st;
  int (*fn)(const struct shmheap_block *, void *);
  void *arg;
  int fn_result;
  uint64_t named; /* blocks flagged NAMED (directory.c checks them) */
};

/* Scans every tag in address order, checking what the scan itself relies
 * on and, if T->strict, every boundary-tag invariant. Returns 0, EUCLEAN
 * on damage, or stops early when T->fn returns nonzero. */
static int scan_tags(const struct shmheap *h, struct tally *t) {
  uint64_t off = SHH_FIRST;
  int prev_free = 0;
  while (off < h->len) {
    uint64_t tag = shh_ld(h, off), size = shh_tag_size(tag);
    if (!shh_tag_valid(h, off, tag))
      return EUCLEAN;
    int used = shh_tag_used(tag);
    if (t->strict) {
      if (shh_tag_prev_free(tag) != prev_free || (prev_free && !used))
        return EUCLEAN; /* a stale flag, or two free blocks side by side */
      if (!used && shh_footer(h, off, size) != tag)
        return EUCLEAN; /* footer and tag disagree */
      if (!used && (tag & SHH_F_NAMED))
        return EUCLEAN; /* only a live block can have a name */
    }
    if (used && (tag & SHH_F_NAMED))
      t->named++;
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
  return off == h->len ? 0 : EUCLEAN;
}

/* The body of every call here, under the lock: the scan and, if strict,
 * the index's agreement with it. */
static int scan_op(struct shmheap *h, void *arg) {
  struct tally *t = arg;
  int err = scan_tags(h, t);
  if (err == 0 && t->strict) {
    /* the index must list exactly the free blocks, and its root's maximum
     * is the largest of them */
    uint64_t largest = t->st.free_blocks ? t->st.largest_free + SHH_TAG : 0;
    if (shh_index_check(h, t->st.free_blocks) != 0 ||
        shh_index_largest(h) != largest)
      err = EUCLEAN;
    /* every name leads to a live NAMED block, every NAMED block has one */
    if (err == 0 && shh_names_check(h, t->named) != 0)
      err = EUCLEAN;
  }
  if (err == 0) {
    /* read under the lock: a growable heap's length changes */
    t->st.size = h->len;
    t->st.max_size = h->growable ? h->map_len : h->len;
    t->st.names = shh_names_count(h);
  }
  return err;
}

SHH_EXPORT int shmheap_check(shmheap_memory_handle mem) {
  struct tally t = {.strict = 1};
  return shh_locked(mem, scan_op, &t);
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
  if (shh_locked(mem, scan_op, &t) != 0)
    return -1;
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
  if (shh_locked(mem, scan_op, &t) != 0)
    return -1;
  return t.fn_result;
}

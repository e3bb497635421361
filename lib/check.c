/* check.c: looking inside a heap: the integrity check, the figures, and the
 * public block walk. All of them scan the tags under the lock, O(n) in
 * blocks; they only read. */
#include <string.h>

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
  uint64_t named;   /* blocks flagged NAMED (directory.c checks them) */
  uint64_t bad_off; /* where the first inconsistency is, */
  const char *bad;  /* and what it is (NULL: none found) */
  /* the free blocks the index must hold: all but the top */
  uint64_t indexed, indexed_largest; /* their number, the largest's size */
};

/* Records the first inconsistency for shmheap_check_detail. */
static int damage(struct tally *t, uint64_t off, const char *what) {
  if (t->bad == NULL) {
    t->bad_off = off;
    t->bad = what;
  }
  return EUCLEAN;
}

/* Scans every tag in address order, checking what the scan itself relies
 * on and, if T->strict, every boundary-tag invariant. Returns 0, EUCLEAN
 * on damage, or stops early when T->fn returns nonzero. */
static int scan_tags(const struct shmheap *h, struct tally *t) {
  uint64_t off = SHH_FIRST;
  int prev_free = 0;
  while (off < h->len) {
    uint64_t tag = shh_ld(h, off), size = shh_tag_size(tag);
    if (!shh_tag_valid(h, off, tag))
      return damage(t, off, "the tag's check bits or size do not verify");
    int used = shh_tag_used(tag);
    if (t->strict) {
      if (shh_tag_prev_free(tag) != prev_free)
        return damage(t, off, "the tag's PREV_FREE flag is stale");
      if (prev_free && !used)
        return damage(t, off, "two free blocks side by side");
      if (!used && shh_footer(h, off, size) != tag)
        return damage(t, off, "a free block's footer disagrees with its tag");
      if (!used && (tag & SHH_F_NAMED))
        return damage(t, off, "a free block is flagged as named");
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
      if (off + size != h->len) {
        t->indexed++;
        if (size > t->indexed_largest)
          t->indexed_largest = size;
      }
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
  return off == h->len ? 0 : damage(t, off, "the blocks overrun the heap");
}

/* The body of every call here, under the lock: the scan and, if strict,
 * the index's agreement with it. */
static int scan_op(struct shmheap *h, void *arg) {
  struct tally *t = arg;
  int err = scan_tags(h, t);
  if (err == 0 && t->strict) {
    /* the index must list exactly the free blocks but the top, and its
     * root's maximum is the largest of them */
    if (shh_index_check(h, t->indexed) != 0 ||
        shh_index_largest(h) != t->indexed_largest)
      err =
          damage(t, shh_hdr(h)->root, "the free index disagrees with the tags");
    /* every name leads to a live NAMED block, every NAMED block has one */
    if (err == 0 && shh_names_check(h, t->named) != 0)
      err = damage(t, shh_hdr(h)->names,
                   "the names directory disagrees with the blocks");
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
  struct tally t = {.strict = 1};
  int rc = shh_locked(mem, scan_op, &t);
  if (rc != 0 && errno == EUCLEAN && out != NULL) {
    /* no scan finding: the lock refused, as the heap is marked broken */
    const char *what = t.bad ? t.bad : "the heap is marked broken";
    out->offset = t.bad ? t.bad_off : 0;
    size_t n = strlen(what);
    if (n >= sizeof out->what)
      n = sizeof out->what - 1;
    memcpy(out->what, what, n);
    out->what[n] = '\0';
  }
  return rc;
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

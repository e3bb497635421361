/* oracle-model.c: the oracle test's model of the heap, a simple, obviously
 * correct one. It keeps every block in an address-ordered array and
 * implements the placement rule literally, by linear scan:
 *
 *   carve(sz) = max(48, round_up(sz + 8, 16)); a free block of size S fits
 *   sz when S - 8 >= sz; alloc takes the lowest-addressed fitting block and
 *   carves the request from its head when S - carve >= 48, else hands it out
 *   whole; free merges with free neighbours; realloc stays in place when it
 *   fits (splitting off a tail >= 48), else grows into a free next block when
 *   S + Snext - 8 >= sz (splitting when the rest is >= 48), else allocates
 *   (old block still held), copies and frees.
 *
 * Growth (shmheap.h, lib/grow.c): when nothing fits on a growable heap,
 * least = the smallest page multiple at which the last block, if free,
 * would hold the request, else at which a new free block after it would
 * (an allocated last block takes 8 more bytes, the new block starts at the
 * old len + 8); the heap grows to twice its size when that is more than
 * least and within max_len, else to least (none when least > max_len:
 * ENOMEM); the new space merges with a free last block; then alloc fits
 * again.
 *
 * Names take blocks too: the directory (56 + 16 bytes per slot, 16 slots
 * at first, rehashed to the least power of two >= 2 * (names + 1) when its
 * tables fill, or, when that does not fit, to its own size if the names
 * then fill at most 3/4 of it), one entry per name (33 + the key's length),
 * allocated and freed in the library's order (lib/names.c).
 */
#include "oracle.h"

#include <glib.h>
#include <string.h>

#include "layout.h"

void oracle_init(struct oracle *o, uint64_t len, uint64_t max_len) {
  memset(o, 0, sizeof *o);
  o->len = len;
  o->max_len = max_len > len ? max_len : len;
  o->page = 4096;
  o->cap = 64;
  o->b = g_new(struct oblk, o->cap);
  o->n = 1;
  o->b[0] = (struct oblk){SHH_FIRST, len - SHH_FIRST, 0};
}

void oracle_fini(struct oracle *o) {
  g_free(o->b);
}

static void oracle_insert(struct oracle *o, size_t i, struct oblk blk) {
  if (o->n == o->cap) {
    o->cap *= 2;
    o->b = g_renew(struct oblk, o->b, o->cap);
  }
  memmove(&o->b[i + 1], &o->b[i], (o->n - i) * sizeof *o->b);
  o->b[i] = blk;
  o->n++;
}

static void oracle_remove(struct oracle *o, size_t i) {
  memmove(&o->b[i], &o->b[i + 1], (o->n - i - 1) * sizeof *o->b);
  o->n--;
}

/* The index of the block at OFF; asserts there is one. */
static size_t oracle_find(const struct oracle *o, uint64_t off) {
  size_t lo = 0, hi = o->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (o->b[mid].off < off)
      lo = mid + 1;
    else
      hi = mid;
  }
  g_assert_cmpuint(lo, <, o->n);
  g_assert_cmpuint(o->b[lo].off, ==, off);
  return lo;
}

/* carve(sz), or 0 when sz is larger than any heap could hold. */
static uint64_t carve_of(uint64_t sz) {
  if (sz > ((uint64_t)1 << 50))
    return 0;
  uint64_t c = (sz + SHH_TAG + SHH_ALIGN - 1) & ~(uint64_t)(SHH_ALIGN - 1);
  return c < SHH_MIN_BLOCK ? SHH_MIN_BLOCK : c;
}

/* First fit without growing: the block's offset, or 0. */
static uint64_t fit(struct oracle *o, uint64_t sz, uint64_t carve) {
  for (size_t i = 0; i < o->n; i++) {
    struct oblk *b = &o->b[i];
    if (b->used || b->size - SHH_TAG < sz)
      continue;
    if ((int64_t)b->size - (int64_t)carve >= SHH_MIN_BLOCK) {
      struct oblk rest = {b->off + carve, b->size - carve, 0};
      b->size = carve;
      b->used = 1;
      uint64_t off = b->off;
      oracle_insert(o, i + 1, rest);
      return off;
    }
    b->used = 1;
    return b->off;
  }
  return 0;
}

void oracle_grow(struct oracle *o, uint64_t n) {
  g_assert_cmpuint(n, >, o->len);
  g_assert_cmpuint(n, <=, o->max_len);
  g_assert_cmpuint(n % o->page, ==, 0);
  struct oblk *last = &o->b[o->n - 1];
  if (last->used) {
    last->size += SHH_BLOCK_PHASE;
    oracle_insert(o, o->n,
                  (struct oblk){o->len + SHH_BLOCK_PHASE,
                                n - o->len - SHH_BLOCK_PHASE, 0});
  } else {
    last->size = n - last->off;
  }
  o->len = n;
  o->grows++;
}

/* The growth policy for a request of SZ bytes that found no fit: 1 when
 * the heap grew, 0 when it cannot. */
static int grow_for(struct oracle *o, uint64_t sz) {
  if (sz > o->max_len || o->len >= o->max_len)
    return 0;
  /* the payload of a block of size S holds sz when S - 8 >= sz, and a
   * block's size is a multiple of 8 (SHH_TAG), at least 48 */
  uint64_t need = (sz + 2 * SHH_TAG - 1) / SHH_TAG * SHH_TAG;
  if (need < SHH_MIN_BLOCK)
    need = SHH_MIN_BLOCK;
  const struct oblk *last = &o->b[o->n - 1];
  uint64_t least =
      last->used ? o->len + SHH_BLOCK_PHASE + need : last->off + need;
  least = (least + o->page - 1) / o->page * o->page;
  if (least <= o->len)
    least = o->len + o->page;
  if (least > o->max_len)
    return 0;
  uint64_t doubled = o->len * 2;
  oracle_grow(o, doubled > least && doubled <= o->max_len ? doubled : least);
  return 1;
}

uint64_t oracle_alloc(struct oracle *o, uint64_t sz) {
  uint64_t carve = carve_of(sz);
  if (carve == 0)
    return 0;
  uint64_t off = fit(o, sz, carve);
  if (off == 0 && o->max_len > o->len && grow_for(o, sz)) {
    off = fit(o, sz, carve);
    g_assert_cmpuint(off, !=, 0); /* growth always makes room */
  }
  return off;
}

/* Frees the free block at index I into its free neighbours. */
static void oracle_merge(struct oracle *o, size_t i) {
  if (i + 1 < o->n && !o->b[i + 1].used) {
    o->b[i].size += o->b[i + 1].size;
    oracle_remove(o, i + 1);
  }
  if (i > 0 && !o->b[i - 1].used) {
    o->b[i - 1].size += o->b[i].size;
    oracle_remove(o, i);
  }
}

void oracle_free(struct oracle *o, uint64_t off) {
  size_t i = oracle_find(o, off);
  g_assert_true(o->b[i].used);
  o->b[i].used = 0;
  oracle_merge(o, i);
}

uint64_t oracle_realloc(struct oracle *o, uint64_t off, uint64_t sz) {
  size_t i = oracle_find(o, off);
  g_assert_true(o->b[i].used);
  uint64_t carve = carve_of(sz);
  if (carve == 0 || sz > o->max_len)
    return 0;
  uint64_t s = o->b[i].size;
  if (s - SHH_TAG >= sz) {
    if ((int64_t)s - (int64_t)carve >= SHH_MIN_BLOCK) {
      o->b[i].size = carve;
      oracle_insert(o, i + 1, (struct oblk){off + carve, s - carve, 0});
      oracle_merge(o, i + 1);
    }
    return off;
  }
  if (i + 1 < o->n && !o->b[i + 1].used &&
      s + o->b[i + 1].size - SHH_TAG >= sz) {
    uint64_t total = s + o->b[i + 1].size;
    oracle_remove(o, i + 1);
    if ((int64_t)total - (int64_t)carve >= SHH_MIN_BLOCK) {
      o->b[i].size = carve;
      oracle_insert(o, i + 1, (struct oblk){off + carve, total - carve, 0});
    } else {
      o->b[i].size = total;
    }
    return off;
  }
  uint64_t n = oracle_alloc(o, sz);
  if (n == 0)
    return 0;
  oracle_free(o, off);
  return n;
}

uint64_t oracle_largest_free(const struct oracle *o) {
  uint64_t m = 0;
  for (size_t i = 0; i < o->n; i++)
    if (!o->b[i].used && o->b[i].size - SHH_TAG > m)
      m = o->b[i].size - SHH_TAG;
  return m;
}

/* ------------------------------------------------------------------------ */
/* Names                                                                     */

int oracle_dir_need(struct oracle *o) {
  if (o->dir != 0)
    return 0;
  uint64_t d = oracle_alloc(o, SHH_DIR_SLOTS + 16 * SHH_DIR_MIN_CAP);
  if (d == 0)
    return -1;
  o->dir = d;
  o->dir_cap = SHH_DIR_MIN_CAP;
  return 0;
}

void oracle_dir_drop_if_empty(struct oracle *o) {
  if (o->dir != 0 && o->names == 0) {
    oracle_free(o, o->dir);
    o->dir = 0;
    o->dir_cap = 0;
  }
}

uint64_t oracle_entry_add(struct oracle *o, uint64_t keylen, int full) {
  g_assert_cmpuint(o->dir, !=, 0);
  if (full) { /* rehash: the new directory first, then the old one goes */
    uint64_t cap = SHH_DIR_MIN_CAP;
    while (cap < (o->names + 1) * 2)
      cap *= 2;
    uint64_t d = oracle_alloc(o, SHH_DIR_SLOTS + 16 * cap);
    if (d == 0 && cap > o->dir_cap && (o->names + 1) * 4 <= o->dir_cap * 3) {
      cap = o->dir_cap;
      d = oracle_alloc(o, SHH_DIR_SLOTS + 16 * cap);
    }
    if (d == 0) {
      oracle_dir_drop_if_empty(o);
      return 0;
    }
    oracle_free(o, o->dir);
    o->dir = d;
    o->dir_cap = cap;
  }
  uint64_t e = oracle_alloc(o, SHH_ENT_KEY + keylen + 1);
  if (e == 0) {
    oracle_dir_drop_if_empty(o);
    return 0;
  }
  o->names++;
  return e;
}

void oracle_entry_remove(struct oracle *o, uint64_t entry) {
  g_assert_cmpuint(o->names, >, 0);
  oracle_free(o, entry);
  o->names--;
  oracle_dir_drop_if_empty(o);
}

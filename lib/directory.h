/* directory.h: the names directory's layout (layout.h numbers it) and the
 * small helpers that read and verify it, shared by names.c (publishing and
 * removing) and directory.c (recovery and the integrity check).
 *
 * The directory D is an ordinary allocated block: a keyed check word, the
 * capacity CAP (a power of two), counts, two pending words and two
 * open-addressed tables of CAP slots each: the key table (by a hash of the
 * key) and the handle table (by a hash of the named object's handle, so
 * that free finds an object's names). An entry is an ordinary block: a
 * keyed check word, the object's handle, the key's hash and length, and the
 * key with its NUL. Everything read from them is verified before use: D and
 * every entry must be live blocks as large as they claim, with their check
 * words; probes are bounded by CAP.
 */
#ifndef SHMHEAP_DIRECTORY_H
#define SHMHEAP_DIRECTORY_H

#include <errno.h>
#include <string.h>

#include "block.h"
#include "heap.h"

#define SHH_DIR_MAGIC 0x5348484e44495230ull
#define SHH_ENT_MAGIC 0x5348484e454e5430ull

struct dir {
  uint64_t d, cap; /* d == 0: no directory */
};

struct entry {
  uint64_t e, hdl, hash, len;
  const char *key;
};

static inline uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static inline uint64_t dir_check(const struct shmheap *h, uint64_t d,
                                 uint64_t cap) {
  return mix(h->key ^ SHH_DIR_MAGIC ^ mix(d) ^ (cap << 20));
}

static inline uint64_t entry_check(const struct shmheap *h, uint64_t e,
                                   uint64_t hdl, uint64_t hash, uint64_t len) {
  return mix(h->key ^ SHH_ENT_MAGIC ^ mix(e ^ mix(hdl ^ mix(hash + len))));
}

static inline uint64_t key_hash(const char *key, size_t len) {
  uint64_t x = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < len; i++)
    x = (x ^ (unsigned char)key[i]) * 0x100000001b3ull;
  return mix(x);
}

static inline uint64_t hdl_hash(uint64_t hdl) {
  return mix(hdl ^ 0x2545f4914f6cdd1dull);
}

static inline uint64_t kslot(const struct dir *dr, uint64_t i) {
  return dr->d + SHH_DIR_SLOTS + 8 * i;
}

static inline uint64_t hslot(const struct dir *dr, uint64_t i) {
  return dr->d + SHH_DIR_SLOTS + 8 * (dr->cap + i);
}

/* The payload size of the live block whose payload is at HDL (its tag in
 * *TAG), or 0 when HDL is not one. Reads only the tag. */
static inline uint64_t live_payload(const struct shmheap *h, uint64_t hdl,
                                    uint64_t *tag) {
  if (hdl < SHH_FIRST + SHH_TAG || hdl >= h->len || hdl % SHH_ALIGN != 0)
    return 0;
  uint64_t off = hdl - SHH_TAG, t = shh_ld(h, off);
  if (!shh_tag_ok(h, off, t) || !shh_tag_used(t) ||
      !shh_size_ok(h, off, shh_tag_size(t)))
    return 0;
  *tag = t;
  return shh_tag_size(t) - SHH_TAG;
}

/* Sets or clears the NAMED flag of the live block at HDL (tag TAG). */
static inline void set_named(struct shmheap *h, uint64_t hdl, uint64_t tag,
                             int on) {
  uint64_t off = hdl - SHH_TAG;
  unsigned flags =
      (unsigned)(tag & (SHH_F_USED | SHH_F_PREV_FREE)) | (on ? SHH_F_NAMED : 0);
  shh_commit(h, off, shh_tag_make(h, off, shh_tag_size(tag), flags));
}

/* Whether D could be a directory: a live block, not named, as large as its
 * capacity says, with its check word. */
static inline int dir_at(const struct shmheap *h, uint64_t d, struct dir *dr) {
  uint64_t tag, payload = live_payload(h, d, &tag);
  if (payload < SHH_DIR_SLOTS + 16 * SHH_DIR_MIN_CAP || (tag & SHH_F_NAMED))
    return 0;
  uint64_t cap = shh_ld(h, d + SHH_DIR_CAP);
  if (cap < SHH_DIR_MIN_CAP || (cap & (cap - 1)) != 0 ||
      cap > (payload - SHH_DIR_SLOTS) / 16 ||
      shh_ld(h, d + SHH_DIR_CHECK) != dir_check(h, d, cap))
    return 0;
  dr->d = d;
  dr->cap = cap;
  return 1;
}

/* The current directory into *DR (DR->d == 0 when there is none). 0 or
 * EUCLEAN. */
static inline int open_dir(const struct shmheap *h, struct dir *dr) {
  uint64_t d = __atomic_load_n(&shh_hdr(h)->names, __ATOMIC_RELAXED);
  dr->d = dr->cap = 0;
  if (d == 0)
    return 0;
  /* a directory half made or dropped is recovery's to settle */
  return !(d & SHH_NAMES_TRANSIENT) && dir_at(h, d, dr) ? 0 : EUCLEAN;
}

/* Whether E is an entry: a live unnamed block holding a whole entry whose
 * check word verifies. Fills *EN. */
static inline int entry_at(const struct shmheap *h, uint64_t e,
                           struct entry *en) {
  uint64_t tag, payload = live_payload(h, e, &tag);
  if (payload < SHH_ENT_KEY + 2 || (tag & SHH_F_NAMED))
    return 0;
  uint64_t len = shh_ld(h, e + SHH_ENT_LEN);
  if (len < 1 || len > SHH_KEY_MAX || SHH_ENT_KEY + len + 1 > payload)
    return 0;
  const char *key = (const char *)h->base + e + SHH_ENT_KEY;
  if (key[len] != '\0')
    return 0;
  en->e = e;
  en->hdl = shh_ld(h, e + SHH_ENT_HDL);
  en->hash = shh_ld(h, e + SHH_ENT_HASH);
  en->len = len;
  en->key = key;
  return shh_ld(h, e + SHH_ENT_CHECK) ==
         entry_check(h, e, en->hdl, en->hash, len);
}

/* Frees OFF, one of the directory's own blocks (a directory, an entry, or
 * a block noted while it was being made one), first clearing its check
 * word: a block handed out again at the same offset must never read as a
 * directory or an entry, whatever the allocator leaves in it. */
_Static_assert(SHH_DIR_CHECK == SHH_ENT_CHECK, "one check word position");
static inline int free_own(struct shmheap *h, uint64_t off) {
  shh_st(h, off + SHH_ENT_CHECK, 0);
  return shh_free_locked(h, h->base + off);
}

/* Probes the key table for KEY. 0 with the entry in *EN and its slot in
 * *AT; ENOENT with *AT the first slot an insert may take (or CAP when the
 * table is full); EUCLEAN. */
static inline int find_key(const struct shmheap *h, const struct dir *dr,
                           const char *key, uint64_t len, uint64_t hash,
                           struct entry *en, uint64_t *at) {
  uint64_t mask = dr->cap - 1, i = hash & mask;
  *at = dr->cap;
  for (uint64_t n = 0; n < dr->cap; n++, i = (i + 1) & mask) {
    uint64_t s = shh_ld(h, kslot(dr, i));
    if (s == SHH_SLOT_EMPTY) {
      if (*at == dr->cap)
        *at = i;
      return ENOENT;
    }
    if (s == SHH_SLOT_TOMB) {
      if (*at == dr->cap)
        *at = i;
      continue;
    }
    if (!entry_at(h, s, en))
      return EUCLEAN;
    if (en->hash == hash && en->len == len && memcmp(en->key, key, len) == 0) {
      *at = i;
      return 0;
    }
  }
  return ENOENT;
}

/* Probes the handle table for an entry naming HDL (any, if E is 0; else
 * the slot holding E). 0 with the slot in *AT (and the entry in *EN when E
 * is 0); ENOENT with *AT the first free slot or CAP; EUCLEAN. */
static inline int find_hdl(const struct shmheap *h, const struct dir *dr,
                           uint64_t hdl, uint64_t e, struct entry *en,
                           uint64_t *at) {
  uint64_t mask = dr->cap - 1, i = hdl_hash(hdl) & mask;
  *at = dr->cap;
  for (uint64_t n = 0; n < dr->cap; n++, i = (i + 1) & mask) {
    uint64_t s = shh_ld(h, hslot(dr, i));
    if (s == SHH_SLOT_EMPTY || s == SHH_SLOT_TOMB) {
      if (*at == dr->cap)
        *at = i;
      if (s == SHH_SLOT_EMPTY)
        return ENOENT;
      continue;
    }
    if (e != 0) {
      if (s == e) {
        *at = i;
        return 0;
      }
      continue;
    }
    if (!entry_at(h, s, en))
      return EUCLEAN;
    if (en->hdl == hdl) {
      *at = i;
      return 0;
    }
  }
  return ENOENT;
}

/* The first SHH_SLOT_EMPTY slot of a table (key table when KEYS) from hash
 * HASH, in a table being built (no TOMBs). */
static inline uint64_t empty_slot(const struct shmheap *h, const struct dir *dr,
                                  int keys, uint64_t hash) {
  uint64_t mask = dr->cap - 1, i = hash & mask;
  for (uint64_t n = 0; n < dr->cap; n++, i = (i + 1) & mask)
    if (shh_ld(h, keys ? kslot(dr, i) : hslot(dr, i)) == SHH_SLOT_EMPTY)
      return i;
  return dr->cap;
}

/* Allocates and lays out an empty directory of CAP slots (not yet linked):
 * its handle, or 0 with *ERR. PENDING goes into its pending word. */
/* The integrity check's part (directory.c): 0 when every name leads to a
 * live NAMED block, the two tables and the counts agree, and NAMED_BLOCKS
 * (the tag walk's count) blocks have names; -1 otherwise. */
int shh_names_check(const struct shmheap *h, uint64_t named_blocks);

/* The number of names (0 when the directory is missing or damaged). */
uint64_t shh_names_count(const struct shmheap *h);

#endif

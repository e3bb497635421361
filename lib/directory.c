/* directory.c: the names directory's part of recovery and of the integrity
 * check.
 *
 * The key table is the truth (names.c writes it last when publishing and
 * first when removing). Recovery drops what is not a whole entry naming a
 * live block, rebuilds what is derived from the key table (the handle
 * table, the counts, the NAMED flags), and frees the blocks a dead writer
 * left unlinked: those its pending words name, and a directory the header
 * names as half made or half dropped. It reads no user object's bytes (other
 * threads may be writing them): only tags, and the directory's own blocks.
 */
#include "directory.h"
#include "heap.h"
#include "recover.h"

/* Whether a used block starts at OFF in the tag walk (which recovery has
 * just verified): a tag left inside a free block by a merge that died
 * before erasing it does not count. */
static int walk_has_used(const struct shmheap *h, uint64_t off) {
  for (uint64_t b = SHH_FIRST; b < h->len;) {
    uint64_t tag = shh_ld(h, b);
    if (b == off)
      return shh_tag_used(tag);
    if (b > off)
      return 0;
    b += shh_tag_size(tag);
  }
  return 0;
}

/* Frees the block a dead operation noted in the pending word at PW, unless
 * it is linked (the current directory, or an entry the key table holds) or
 * named. */
static void settle_pending(struct shmheap *h, const struct dir *dr,
                           uint64_t pw) {
  uint64_t x = shh_ld(h, dr->d + pw), tag;
  struct entry en, same;
  struct dir other;
  uint64_t at;
  /* freed before the word is cleared: a repeat finds the block gone */
  if (x != 0 && x != dr->d && live_payload(h, x, &tag) != 0 &&
      !(tag & SHH_F_NAMED) && walk_has_used(h, x - SHH_TAG) &&
      !(pw == SHH_DIR_PENDING && !dir_at(h, x, &other) && entry_at(h, x, &en) &&
        find_key(h, dr, en.key, en.len, en.hash, &same, &at) == 0 &&
        same.e == x)) /* an entry published before the writer died */
    (void)free_own(h, x);
  shh_st(h, dr->d + pw, 0);
}

/* A directory the header names with the transient bit was being made or
 * dropped: it is freed (if the walk still has it) and the header cleared. */
static void settle_transient(struct shmheap *h) {
  uint64_t d = shh_hdr(h)->names;
  if (!(d & SHH_NAMES_TRANSIENT))
    return;
  d &= ~(uint64_t)SHH_NAMES_TRANSIENT;
  uint64_t tag;
  if (live_payload(h, d, &tag) != 0 && !(tag & SHH_F_NAMED) &&
      walk_has_used(h, d - SHH_TAG))
    (void)free_own(h, d);
  shh_commit(h, SHH_HDR_NAMES, 0);
}

int shh_names_recover(struct shmheap *h) {
  struct dir dr;
  struct entry en;
  uint64_t tag, at;
  settle_transient(h);
  if (open_dir(h, &dr) != 0)
    return -1;
  if (dr.d != 0) {
    /* the key table: drop what is not a whole entry naming a live block */
    for (uint64_t i = 0; i < dr.cap; i++) {
      uint64_t s = shh_ld(h, kslot(&dr, i));
      if (s <= SHH_SLOT_TOMB)
        continue;
      if (!entry_at(h, s, &en)) {
        shh_st(h, kslot(&dr, i), SHH_SLOT_TOMB);
      } else if (live_payload(h, en.hdl, &tag) == 0) {
        shh_st(h, kslot(&dr, i), SHH_SLOT_TOMB);
        (void)free_own(h, s);
      }
    }
    settle_pending(h, &dr, SHH_DIR_PENDING);
    /* the handle table, the counts and the flags follow the key table */
    uint64_t count = 0, used = 0;
    for (uint64_t i = 0; i < dr.cap; i++)
      shh_st(h, hslot(&dr, i), SHH_SLOT_EMPTY);
    for (uint64_t i = 0; i < dr.cap; i++) {
      uint64_t s = shh_ld(h, kslot(&dr, i));
      used += s != SHH_SLOT_EMPTY;
      if (s <= SHH_SLOT_TOMB || !entry_at(h, s, &en))
        continue;
      shh_st(h, hslot(&dr, empty_slot(h, &dr, 0, hdl_hash(en.hdl))), s);
      count++;
      if (live_payload(h, en.hdl, &tag) != 0 && !(tag & SHH_F_NAMED))
        set_named(h, en.hdl, tag, 1);
    }
    shh_st(h, dr.d + SHH_DIR_COUNT, count);
    shh_st(h, dr.d + SHH_DIR_USED, used);
    shh_st(h, dr.d + SHH_DIR_HUSED, count);
  }
  /* a NAMED block without a name: the writer died between the flag and the
   * key slot, or between the key slot and the flag */
  for (uint64_t b = SHH_FIRST; b < h->len;) {
    uint64_t t = shh_ld(h, b), size = shh_tag_size(t);
    if (shh_tag_used(t) && (t & SHH_F_NAMED) &&
        (dr.d == 0 || find_hdl(h, &dr, b + SHH_TAG, 0, &en, &at) != 0))
      set_named(h, b + SHH_TAG, t, 0);
    b += size;
  }
  if (dr.d != 0) {
    settle_pending(h, &dr, SHH_DIR_PENDING_OBJ);
    if (shh_ld(h, dr.d + SHH_DIR_COUNT) == 0) {
      /* the writer died before the first name or after the last: the
       * directory goes, as names.c would have dropped it */
      shh_commit(h, SHH_HDR_NAMES, dr.d | SHH_NAMES_TRANSIENT);
      (void)free_own(h, dr.d);
      shh_commit(h, SHH_HDR_NAMES, 0);
    }
  }
  return 0;
}

int shh_names_check(const struct shmheap *h, uint64_t named_blocks) {
  struct dir dr;
  struct entry en, first;
  uint64_t tag, at;
  if (open_dir(h, &dr) != 0)
    return -1;
  if (dr.d == 0)
    return named_blocks == 0 ? 0 : -1;
  if (shh_ld(h, dr.d + SHH_DIR_PENDING) != 0 ||
      shh_ld(h, dr.d + SHH_DIR_PENDING_OBJ) != 0)
    return -1;
  uint64_t count = 0, used = 0, hused = 0, distinct = 0;
  for (uint64_t i = 0; i < dr.cap; i++) {
    uint64_t s = shh_ld(h, kslot(&dr, i));
    used += s != SHH_SLOT_EMPTY;
    hused += shh_ld(h, hslot(&dr, i)) != SHH_SLOT_EMPTY;
    if (s <= SHH_SLOT_TOMB)
      continue;
    if (!entry_at(h, s, &en) || live_payload(h, en.hdl, &tag) == 0 ||
        !(tag & SHH_F_NAMED))
      return -1; /* a name must lead to a live, NAMED block */
    struct entry same;
    if (find_key(h, &dr, en.key, en.len, en.hash, &same, &at) != 0 || at != i)
      return -1; /* a duplicate key, or one its probe cannot reach */
    if (find_hdl(h, &dr, en.hdl, s, &same, &at) != 0)
      return -1; /* missing from the handle table */
    if (find_hdl(h, &dr, en.hdl, 0, &first, &at) != 0)
      return -1;
    distinct += first.e == s;
    count++;
  }
  uint64_t hcount = 0;
  for (uint64_t i = 0; i < dr.cap; i++)
    hcount += shh_ld(h, hslot(&dr, i)) > SHH_SLOT_TOMB;
  if (hcount != count || shh_ld(h, dr.d + SHH_DIR_COUNT) != count ||
      shh_ld(h, dr.d + SHH_DIR_USED) != used ||
      shh_ld(h, dr.d + SHH_DIR_HUSED) != hused)
    return -1;
  return distinct == named_blocks ? 0 : -1;
}

uint64_t shh_names_count(const struct shmheap *h) {
  struct dir dr;
  if (open_dir(h, &dr) != 0 || dr.d == 0)
    return 0;
  return shh_ld(h, dr.d + SHH_DIR_COUNT);
}

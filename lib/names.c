/* names.c: keys that name objects, kept inside the heap: publishing,
 * looking up and removing names, and the public calls.
 *
 * The directory's layout and its verified reading are in directory.h. The
 * named object carries the NAMED flag in its tag, so free (heap.c) calls
 * shh_names_drop only for objects that have names.
 *
 * Truth and order. The key table is the truth: a name exists exactly when
 * a key slot holds its entry. Everything else (the handle table, the counts,
 * the NAMED flags) is derived and recovery rebuilds it (directory.c).
 * Publishing writes the entry, sets NAMED, fills the handle slot and only
 * then commits the key slot (one untorn store); removing first turns the
 * key slot into TOMB (the commit), then clears the rest, and frees the
 * entry last, after the object lost its NAMED flag. So a name never leads
 * to a freed block: free drops the names before the block's own tag
 * changes. A block that an operation allocates is noted the moment before
 * it becomes allocated (shh_alloc_noted: in a pending word, or for a new
 * directory in the header's names field with the transient bit), and one
 * it frees is noted before it is unlinked, so recovery frees whatever a
 * dead writer left unlinked: names never leak blocks. The directory is made
 * by the first publish and freed with the last name, so a heap without
 * names keeps all of its room.
 */
#include "directory.h"
#include "heap.h"
#include "lock.h"

/* A block for a directory of CAP slots, noted at NOTE_OFF (with NOTE_BITS)
 * as it is allocated: its handle, or 0 with *ERR. */
static uint64_t alloc_dir(struct shmheap *h, uint64_t cap, uint64_t note_off,
                          uint64_t note_bits, int *err) {
  unsigned char *p =
      shh_alloc_noted(h, SHH_DIR_SLOTS + 16 * cap, note_off, note_bits, err);
  return p == NULL ? 0 : (uint64_t)(p - h->base);
}

/* Lays out an empty directory of CAP slots at D (not yet linked). */
static void lay_dir(struct shmheap *h, uint64_t d, uint64_t cap,
                    uint64_t pending) {
  memset(h->base + d, 0, SHH_DIR_SLOTS + 16 * cap);
  shh_st(h, d + SHH_DIR_CAP, cap);
  shh_st(h, d + SHH_DIR_PENDING, pending);
  shh_st(h, d + SHH_DIR_CHECK, dir_check(h, d, cap));
}

/* The directory, made if there is none yet. The header names it with the
 * transient bit while it is laid out, so recovery frees a half-made one.
 * 0, ENOMEM or EUCLEAN. */
static int need_dir(struct shmheap *h, struct dir *dr) {
  int err = open_dir(h, dr);
  if (err != 0 || dr->d != 0)
    return err;
  uint64_t d =
      alloc_dir(h, SHH_DIR_MIN_CAP, SHH_HDR_NAMES, SHH_NAMES_TRANSIENT, &err);
  if (d == 0) {
    shh_commit(h, SHH_HDR_NAMES, 0); /* a note a failed alloc may have left */
    return err;
  }
  SHH_CRASH_POINT(h);
  lay_dir(h, d, SHH_DIR_MIN_CAP, 0);
  SHH_CRASH_POINT(h);
  shh_commit(h, SHH_HDR_NAMES, d);
  SHH_CRASH_POINT(h);
  dr->d = d;
  dr->cap = SHH_DIR_MIN_CAP;
  return 0;
}

/* Moves every name into a new directory of NEWCAP slots (no tombs), links
 * it and frees the old one. 0, ENOMEM (nothing changed) or EUCLEAN. */
static int rehash(struct shmheap *h, struct dir *dr, uint64_t newcap) {
  struct entry en = {0, 0, 0, 0, NULL};
  for (uint64_t i = 0; i < dr->cap; i++) {
    uint64_t s = shh_ld(h, kslot(dr, i));
    if (s > SHH_SLOT_TOMB && !entry_at(h, s, &en))
      return EUCLEAN;
  }
  int err;
  struct dir nd = {alloc_dir(h, newcap, dr->d + SHH_DIR_PENDING, 0, &err),
                   newcap};
  if (nd.d == 0) {
    shh_st(h, dr->d + SHH_DIR_PENDING, 0);
    return err;
  }
  SHH_CRASH_POINT(h);
  lay_dir(h, nd.d, newcap, dr->d);
  shh_st(h, nd.d + SHH_DIR_PENDING_OBJ, shh_ld(h, dr->d + SHH_DIR_PENDING_OBJ));
  uint64_t count = 0;
  for (uint64_t i = 0; i < dr->cap; i++) {
    uint64_t s = shh_ld(h, kslot(dr, i));
    if (s <= SHH_SLOT_TOMB)
      continue;
    (void)entry_at(h, s, &en);
    shh_st(h, kslot(&nd, empty_slot(h, &nd, 1, en.hash)), s);
    shh_st(h, hslot(&nd, empty_slot(h, &nd, 0, hdl_hash(en.hdl))), s);
    count++;
  }
  shh_st(h, nd.d + SHH_DIR_COUNT, count);
  shh_st(h, nd.d + SHH_DIR_USED, count);
  shh_st(h, nd.d + SHH_DIR_HUSED, count);
  SHH_CRASH_POINT(h);
  shh_commit(h, SHH_HDR_NAMES, nd.d);
  SHH_CRASH_POINT(h);
  err = free_own(h, dr->d);
  SHH_CRASH_POINT(h);
  shh_st(h, nd.d + SHH_DIR_PENDING, 0);
  *dr = nd;
  return err;
}

/* Makes room for one more name: rehashes when either table would pass 3/4
 * full (names plus tombs), into twice the slots the names need, or, when
 * the heap has no room for that, into as many as now (the tombs go). */
static int room_for_one(struct shmheap *h, struct dir *dr) {
  uint64_t used = shh_ld(h, dr->d + SHH_DIR_USED),
           hused = shh_ld(h, dr->d + SHH_DIR_HUSED),
           count = shh_ld(h, dr->d + SHH_DIR_COUNT);
  uint64_t top = used > hused ? used : hused;
  if (top < dr->cap && (top + 1) * 4 <= dr->cap * 3)
    return 0;
  if (count > dr->cap)
    return EUCLEAN;
  uint64_t cap = SHH_DIR_MIN_CAP;
  while (cap < (count + 1) * 2)
    cap *= 2;
  int err = rehash(h, dr, cap);
  /* no room for a larger table: one of the same size, rebuilt without the
   * slots that removed names left behind, may still take one more */
  if (err == ENOMEM && cap > dr->cap && (count + 1) * 4 <= dr->cap * 3)
    err = rehash(h, dr, dr->cap);
  return err;
}

static void bump(const struct shmheap *h, uint64_t off, int delta) {
  shh_st(h, off, shh_ld(h, off) + (uint64_t)(int64_t)delta);
}

/* Publishes HDL under KEY (LEN bytes, hash HASH): 0, EEXIST, EINVAL,
 * ENOMEM, EUCLEAN. */
static int publish_in(struct shmheap *h, const char *key, uint64_t len,
                      uint64_t hash, uint64_t hdl) {
  uint64_t tag;
  struct entry en = {0, 0, 0, 0, NULL};
  struct dir dr;
  int err = open_dir(h, &dr);
  if (err != 0)
    return err;
  /* not a live object, or one of the directory's own blocks (their
   * handles show in shmheap_walk). Telling an entry reads the object's
   * first words: should the caller write them meanwhile, only a match of
   * the keyed check word could count, which a torn read cannot forge. */
  if (live_payload(h, hdl, &tag) == 0 || entry_at(h, hdl, &en) || hdl == dr.d)
    return EINVAL;
  err = need_dir(h, &dr);
  uint64_t at, hat;
  if (err == 0)
    err = find_key(h, &dr, key, len, hash, &en, &at);
  if (err == 0)
    return EEXIST;
  if (err != ENOENT)
    return err;
  if ((err = room_for_one(h, &dr)) != 0)
    return err;
  unsigned char *p = shh_alloc_noted(h, SHH_ENT_KEY + len + 1,
                                     dr.d + SHH_DIR_PENDING, 0, &err);
  if (p == NULL) {
    shh_st(h, dr.d + SHH_DIR_PENDING, 0);
    return err;
  }
  uint64_t e = (uint64_t)(p - h->base);
  SHH_CRASH_POINT(h);
  shh_st(h, e + SHH_ENT_HDL, hdl);
  shh_st(h, e + SHH_ENT_HASH, hash);
  shh_st(h, e + SHH_ENT_LEN, len);
  memcpy(p + SHH_ENT_KEY, key, len);
  p[SHH_ENT_KEY + len] = '\0';
  shh_st(h, e + SHH_ENT_CHECK, entry_check(h, e, hdl, hash, len));
  SHH_CRASH_POINT(h);
  /* the slots, found again: the allocations may have rehashed */
  if (find_key(h, &dr, key, len, hash, &en, &at) != ENOENT ||
      find_hdl(h, &dr, hdl, e, &en, &hat) != ENOENT || at == dr.cap ||
      hat == dr.cap || live_payload(h, hdl, &tag) == 0) {
    shh_st(h, dr.d + SHH_DIR_PENDING, 0);
    (void)free_own(h, e);
    return EUCLEAN;
  }
  if (!(tag & SHH_F_NAMED)) {
    set_named(h, hdl, tag, 1);
    SHH_CRASH_POINT(h);
  }
  int key_was_empty = shh_ld(h, kslot(&dr, at)) == SHH_SLOT_EMPTY;
  int hdl_was_empty = shh_ld(h, hslot(&dr, hat)) == SHH_SLOT_EMPTY;
  shh_st(h, hslot(&dr, hat), e);
  SHH_CRASH_POINT(h);
  shh_commit(h, kslot(&dr, at), e);
  SHH_CRASH_POINT(h);
  bump(h, dr.d + SHH_DIR_COUNT, 1);
  if (key_was_empty)
    bump(h, dr.d + SHH_DIR_USED, 1);
  if (hdl_was_empty)
    bump(h, dr.d + SHH_DIR_HUSED, 1);
  shh_st(h, dr.d + SHH_DIR_PENDING, 0);
  return 0;
}

static int drop_dir_if_empty(struct shmheap *h, const struct dir *dr);

/* publish_in, and a directory it made for nothing goes again. */
static int publish_locked(struct shmheap *h, const char *key, uint64_t len,
                          uint64_t hash, uint64_t hdl) {
  int err = publish_in(h, key, len, hash, hdl);
  struct dir dr;
  if (err != 0 && err != EUCLEAN && open_dir(h, &dr) == 0)
    (void)drop_dir_if_empty(h, &dr);
  return err;
}

/* Removes the entry EN held by key slot AT; clears the object's NAMED flag
 * when this was its last name and CLEAR. 0 or EUCLEAN. */
static int remove_entry(struct shmheap *h, const struct dir *dr,
                        const struct entry *en, uint64_t at, int clear) {
  struct entry other;
  uint64_t hat, tag;
  if (find_hdl(h, dr, en->hdl, en->e, &other, &hat) != 0 ||
      live_payload(h, en->hdl, &tag) == 0)
    return EUCLEAN;
  shh_st(h, dr->d + SHH_DIR_PENDING, en->e);
  SHH_CRASH_POINT(h);
  shh_commit(h, kslot(dr, at), SHH_SLOT_TOMB);
  SHH_CRASH_POINT(h);
  shh_st(h, hslot(dr, hat), SHH_SLOT_TOMB);
  bump(h, dr->d + SHH_DIR_COUNT, -1);
  SHH_CRASH_POINT(h);
  if (clear && find_hdl(h, dr, en->hdl, 0, &other, &hat) == ENOENT &&
      (tag & SHH_F_NAMED)) {
    set_named(h, en->hdl, tag, 0);
    SHH_CRASH_POINT(h);
  }
  int err = free_own(h, en->e);
  SHH_CRASH_POINT(h);
  shh_st(h, dr->d + SHH_DIR_PENDING, 0);
  return err;
}

/* Unlinks and frees the directory once it holds no name, so that a heap
 * without names keeps no block for them. The header names it with the
 * transient bit meanwhile, so recovery finishes a drop that died. 0 or an
 * errno. */
static int drop_dir_if_empty(struct shmheap *h, const struct dir *dr) {
  if (dr->d == 0 || shh_ld(h, dr->d + SHH_DIR_COUNT) != 0)
    return 0;
  shh_commit(h, SHH_HDR_NAMES, dr->d | SHH_NAMES_TRANSIENT);
  SHH_CRASH_POINT(h);
  int err = free_own(h, dr->d);
  SHH_CRASH_POINT(h);
  shh_commit(h, SHH_HDR_NAMES, 0);
  return err;
}

int shh_names_internal(const struct shmheap *h, uint64_t hdl) {
  uint64_t d = __atomic_load_n(&shh_hdr(h)->names, __ATOMIC_RELAXED);
  struct entry en = {0, 0, 0, 0, NULL};
  if (d == 0)
    return 0; /* no names, no such blocks: the common case costs one load */
  return (d & ~(uint64_t)SHH_NAMES_TRANSIENT) == hdl || entry_at(h, hdl, &en);
}

int shh_names_drop(struct shmheap *h, uint64_t hdl) {
  struct dir dr;
  struct entry en = {0, 0, 0, 0, NULL}, same = {0, 0, 0, 0, NULL};
  uint64_t hat, at, tag;
  int err = open_dir(h, &dr);
  if (err != 0 || dr.d == 0)
    return EUCLEAN; /* NAMED, but no directory */
  for (uint64_t n = 0; n <= dr.cap; n++) {
    err = find_hdl(h, &dr, hdl, 0, &en, &hat);
    if (err == ENOENT)
      break;
    if (err != 0 ||
        find_key(h, &dr, en.key, en.len, en.hash, &same, &at) != 0 ||
        same.e != en.e)
      return EUCLEAN;
    if ((err = remove_entry(h, &dr, &en, at, 0)) != 0)
      return err;
  }
  if (err != ENOENT || live_payload(h, hdl, &tag) == 0)
    return EUCLEAN;
  set_named(h, hdl, tag, 0);
  SHH_CRASH_POINT(h);
  return drop_dir_if_empty(h, &dr);
}

/* KEY's length when it is a valid key (1..SHH_KEY_MAX bytes), else 0. */
static uint64_t key_len(const char *key) {
  if (key == NULL)
    return 0;
  size_t n = strnlen(key, SHH_KEY_MAX + 1);
  return n <= SHH_KEY_MAX ? n : 0;
}

/* Locks MEM for a call on KEY. 0 or an errno. */
static int enter(shmheap_memory_handle mem, const char *key, uint64_t *len) {
  if (mem == NULL || (*len = key_len(key)) == 0)
    return EINVAL;
  return shh_lock(mem, NULL);
}

/* The object named KEY: 0 with *HDL, ENOENT, EUCLEAN. */
static int lookup_locked(const struct shmheap *h, const char *key, uint64_t len,
                         uint64_t hash, uint64_t *hdl) {
  struct dir dr;
  struct entry en = {0, 0, 0, 0, NULL};
  uint64_t at, tag;
  int err = open_dir(h, &dr);
  if (err != 0)
    return err;
  if (dr.d == 0)
    return ENOENT;
  if ((err = find_key(h, &dr, key, len, hash, &en, &at)) != 0)
    return err;
  if (live_payload(h, en.hdl, &tag) == 0 || !(tag & SHH_F_NAMED))
    return EUCLEAN;
  *hdl = en.hdl;
  return 0;
}

SHH_EXPORT int shmheap_publish(shmheap_memory_handle mem, const char *key,
                               shmheap_object_handle hdl) {
  uint64_t len;
  int err = enter(mem, key, &len);
  if (err == 0) {
    err = publish_locked(mem, key, len, key_hash(key, len), hdl);
    shh_unlock(mem);
  }
  if (err != 0) {
    errno = err;
    return -1;
  }
  return 0;
}

SHH_EXPORT shmheap_object_handle shmheap_lookup(shmheap_memory_handle mem,
                                                const char *key) {
  uint64_t len, hdl = SHMHEAP_NULL_HANDLE;
  int err = enter(mem, key, &len);
  if (err == 0) {
    err = lookup_locked(mem, key, len, key_hash(key, len), &hdl);
    shh_unlock(mem);
  }
  if (err != 0) {
    errno = err;
    return SHMHEAP_NULL_HANDLE;
  }
  return hdl;
}

SHH_EXPORT int shmheap_unpublish(shmheap_memory_handle mem, const char *key) {
  uint64_t len;
  int err = enter(mem, key, &len);
  if (err == 0) {
    struct dir dr;
    struct entry en = {0, 0, 0, 0, NULL};
    uint64_t at;
    err = open_dir(mem, &dr);
    if (err == 0 && dr.d == 0)
      err = ENOENT;
    if (err == 0)
      err = find_key(mem, &dr, key, len, key_hash(key, len), &en, &at);
    if (err == 0)
      err = remove_entry(mem, &dr, &en, at, 1);
    if (err == 0)
      err = drop_dir_if_empty(mem, &dr);
    shh_unlock(mem);
  }
  if (err != 0) {
    errno = err;
    return -1;
  }
  return 0;
}

SHH_EXPORT void *shmheap_lookup_or_alloc(shmheap_memory_handle mem,
                                         const char *key, size_t sz,
                                         int *created) {
  uint64_t len, hdl = 0;
  unsigned char *p = NULL;
  int made = 0;
  int err = enter(mem, key, &len);
  if (err == 0) {
    uint64_t hash = key_hash(key, len);
    struct dir dr;
    err = lookup_locked(mem, key, len, hash, &hdl);
    if (err == 0) {
      p = mem->base + hdl;
    } else if (err == ENOENT && (err = need_dir(mem, &dr)) == 0 &&
               (p = shh_alloc_noted(mem, sz, dr.d + SHH_DIR_PENDING_OBJ, 0,
                                    &err)) == NULL) {
      (void)drop_dir_if_empty(mem, &dr);
    } else if (p != NULL) {
      /* noted as it was allocated, so that recovery frees it should this
       * process die before the name is committed */
      SHH_CRASH_POINT(mem);
      memset(p, 0, sz);
      err = publish_locked(mem, key, len, hash, (uint64_t)(p - mem->base));
      if (err != 0) {
        (void)shh_free_locked(mem, p);
        p = NULL;
      }
      /* publish may have moved the directory (rehash carries the word) */
      if (open_dir(mem, &dr) == 0 && dr.d != 0)
        shh_st(mem, dr.d + SHH_DIR_PENDING_OBJ, 0);
      made = 1;
    }
    shh_unlock(mem);
  }
  if (p == NULL) {
    errno = err;
    return NULL;
  }
  if (created != NULL)
    *created = made;
  return p;
}

SHH_EXPORT int shmheap_names(shmheap_memory_handle mem,
                             int (*fn)(const char *, shmheap_object_handle,
                                       void *),
                             void *arg) {
  if (mem == NULL || fn == NULL) {
    errno = EINVAL;
    return -1;
  }
  int err = shh_lock(mem, NULL), rc = 0;
  if (err == 0) {
    struct dir dr;
    struct entry en = {0, 0, 0, 0, NULL};
    err = open_dir(mem, &dr);
    for (uint64_t i = 0; err == 0 && rc == 0 && i < dr.cap; i++) {
      uint64_t s = shh_ld(mem, kslot(&dr, i));
      if (s <= SHH_SLOT_TOMB)
        continue;
      if (!entry_at(mem, s, &en))
        err = EUCLEAN;
      else
        rc = fn(en.key, en.hdl, arg);
    }
    shh_unlock(mem);
  }
  if (err != 0) {
    errno = err;
    return -1;
  }
  return rc;
}

/* fuzz-names.c: the fuzz target's names and growth operations, and the
 * oracle's name map. The map holds, for each of NKEYS keys, the handle
 * published under it; every publish, unpublish, lookup, lookup_or_alloc and
 * names walk must answer as the map says, freeing an object (free, realloc
 * that moves it) drops its names, and shmheap_grow (or an allocation that
 * grows the heap) moves no object. While something was scribbled on the
 * heap the map is not trusted: calls may fail, with the errnos the
 * contract lists, but never crash or hand out memory outside the heap.
 * refresh_len and in_data_area keep track of where the heap ends.
 */
#include <unistd.h>

#include "fuzz.h"
#include "layout.h"

static char keys[NKEYS][SHH_KEY_MAX + 1];

/* Short keys, and a few long ones up to the 255-byte limit. */
void names_init(void) {
  for (unsigned k = 0; k < NKEYS; k++) {
    if (k < 8) {
      snprintf(keys[k], sizeof keys[k], "k%u", k);
    } else {
      size_t n = k == NKEYS - 1 ? SHH_KEY_MAX : 60 * (k - 7);
      memset(keys[k], 'a' + (int)k, n);
      keys[k][n] = '\0';
    }
  }
}

uint64_t refresh_len(const struct state *s) {
  struct shmheap_stats st;
  if (shmheap_stats(heap, &st) != 0)
    return heap_len;
  if (s->corrupted) {
    if (st.size > heap_len && st.size <= heap_max)
      heap_len = st.size;
    return heap_len;
  }
  /* a page multiple, never smaller, never above max_len; and growth moved
   * no live block: every one keeps its contents */
  FUZZ_ASSERT(st.size >= heap_len && st.size <= heap_max);
  FUZZ_ASSERT(st.size % 4096 == 0 && st.max_size == heap_max);
  if (st.size != heap_len) {
    heap_len = st.size;
    for (unsigned i = 0; i < s->nlive; i++)
      verify_live(s, &s->live[i]);
  }
  return heap_len;
}

/* Inside the data area, as far as the heap reaches now. */
bool in_data_area(const unsigned char *p, size_t sz) {
  const unsigned char *b = base();
  uint64_t len = heap_len;
  if (heap_max != heap_len) { /* the call just made may have grown it */
    struct shmheap_stats st;
    uint64_t now;
    if (shmheap_stats(heap, &st) == 0)
      now = st.size;
    else /* scribbled: the length the library itself goes by */
      memcpy(&now, b + SHH_HDR_LEN, sizeof now);
    if (now > len && now <= heap_max)
      len = now;
  }
  return p >= b + SHMHEAP_OVERHEAD && p < b + len &&
         sz <= (size_t)(b + len - p) && (uintptr_t)p % SHMHEAP_ALIGNMENT == 0;
}

uint64_t names_blocks(const struct state *s) {
  return s->nnames + (s->nnames > 0);
}

static uint64_t hdl_of(const unsigned char *p) {
  return (uint64_t)(p - base());
}

void names_forget(struct state *s, uint64_t hdl) {
  for (unsigned k = 0; k < NKEYS; k++) {
    if (s->name[k] != hdl)
      continue;
    s->name[k] = 0;
    s->nnames--;
    if (!s->corrupted) {
      errno = 0;
      FUZZ_ASSERT(shmheap_lookup(heap, keys[k]) == SHMHEAP_NULL_HANDLE);
      FUZZ_ASSERT(errno == ENOENT);
    }
  }
}

void names_verify(const struct state *s, shmheap_memory_handle mem) {
  if (s->corrupted)
    return;
  for (unsigned k = 0; k < NKEYS; k++) {
    errno = 0;
    uint64_t h = shmheap_lookup(mem, keys[k]);
    FUZZ_ASSERT(h == s->name[k]);
    if (h == 0)
      FUZZ_ASSERT(errno == ENOENT);
  }
  struct shmheap_stats st;
  FUZZ_ASSERT(shmheap_stats(mem, &st) == 0 && st.names == s->nnames);
}

/* An errno from a names call on a heap that may be scribbled on. */
static void check_names_errno(struct state *s, int e) {
  FUZZ_ASSERT(e == EUCLEAN || e == EINVAL || e == ENOENT || e == EEXIST ||
              e == ENOMEM);
  if (e == EUCLEAN)
    s->stop = true;
}

/* Whether an intact heap must find room for an object of SZ bytes and a
 * name (a directory of at most 32 slots, a rehash, an entry: well under
 * 2048 bytes): a free block holds them all, or the heap can grow by the
 * object and a few pages more. */
static bool must_fit(uint64_t sz) {
  struct shmheap_stats st;
  FUZZ_ASSERT(shmheap_stats(heap, &st) == 0);
  if (sz <= st.largest_free && st.largest_free - sz >= 2048)
    return true;
  uint64_t room = st.max_size - st.size;
  return sz <= room && room - sz >= 3 * 4096;
}

/* A key: one of the NKEYS, or now and then an invalid one (empty, too
 * long, NULL): *K is then NKEYS. */
static const char *pick_key(struct state *s, unsigned *k) {
  static char too_long[SHH_KEY_MAX + 2];
  uint8_t c = u8(s);
  *k = NKEYS;
  if (c < 240) {
    *k = c % NKEYS;
    return keys[*k];
  }
  if (c < 246)
    return "";
  if (c < 252) {
    memset(too_long, 'z', SHH_KEY_MAX + 1);
    return too_long;
  }
  return NULL;
}

void op_publish(struct state *s) {
  unsigned k;
  const char *key = pick_key(s, &k);
  uint8_t c = u8(s);
  uint64_t hdl;
  bool valid = s->nlive > 0 && c < 200;
  if (valid)
    hdl = hdl_of(s->live[c % s->nlive].p);
  else if (c % 4 == 0 && s->nlive > 0) /* interior */
    hdl = hdl_of(s->live[c % s->nlive].p) + 1 + u8(s) % 32;
  else if (c % 4 == 1)
    hdl = SHMHEAP_NULL_HANDLE;
  else if (c % 8 == 2) /* the directory's own block, if there is one */
    memcpy(&hdl, base() + SHH_HDR_NAMES, sizeof hdl);
  else
    hdl = uN(s, 3) % (heap_max + 64);
  /* a random handle may hit a live object's start (then it is valid) or
   * a names block's (refused, as every handle not an object's start) */
  for (unsigned i = 0; !valid && i < s->nlive; i++)
    valid = hdl_of(s->live[i].p) == hdl;
  bool fits = !s->corrupted && valid && must_fit(0);
  errno = 0;
  int rc = shmheap_publish(heap, key, hdl);
  int e = errno;
  if (s->corrupted) {
    if (rc != 0)
      check_names_errno(s, e);
    else if (k < NKEYS && s->name[k] == 0 && valid)
      s->name[k] = hdl, s->nnames++;
    return;
  }
  if (k == NKEYS) {
    FUZZ_ASSERT(rc == -1 && e == EINVAL);
    return;
  }
  if (!valid) {
    FUZZ_ASSERT(rc == -1 && e == EINVAL);
  } else if (s->name[k] != 0) {
    FUZZ_ASSERT(rc == -1 && e == EEXIST);
  } else if (rc != 0) {
    FUZZ_ASSERT(e == ENOMEM && !fits);
  } else {
    s->name[k] = hdl;
    s->nnames++;
  }
  errno = 0;
  FUZZ_ASSERT(shmheap_lookup(heap, key) == s->name[k]);
  FUZZ_ASSERT(s->name[k] != 0 || errno == ENOENT);
}

void op_lookup(struct state *s) {
  unsigned k;
  const char *key = pick_key(s, &k);
  errno = 0;
  uint64_t h = shmheap_lookup(heap, key);
  if (s->corrupted) {
    if (h == 0)
      check_names_errno(s, errno);
    else
      FUZZ_ASSERT(h >= SHMHEAP_OVERHEAD && h < heap_max);
    return;
  }
  if (k == NKEYS) {
    FUZZ_ASSERT(h == 0 && errno == EINVAL);
    return;
  }
  FUZZ_ASSERT(h == s->name[k]);
  if (h == 0)
    FUZZ_ASSERT(errno == ENOENT);
}

void op_unpublish(struct state *s) {
  unsigned k;
  const char *key = pick_key(s, &k);
  errno = 0;
  int rc = shmheap_unpublish(heap, key);
  int e = errno;
  if (s->corrupted) {
    if (rc != 0)
      check_names_errno(s, e);
    else if (k < NKEYS && s->name[k] != 0)
      s->name[k] = 0, s->nnames--;
    return;
  }
  if (k == NKEYS) {
    FUZZ_ASSERT(rc == -1 && e == EINVAL);
    return;
  }
  if (s->name[k] == 0) {
    FUZZ_ASSERT(rc == -1 && e == ENOENT);
    return;
  }
  FUZZ_ASSERT(rc == 0);
  uint64_t hdl = s->name[k];
  s->name[k] = 0;
  s->nnames--;
  errno = 0;
  FUZZ_ASSERT(shmheap_lookup(heap, key) == 0 && errno == ENOENT);
  /* the object stays, contents and all */
  for (unsigned i = 0; i < s->nlive; i++)
    if (hdl_of(s->live[i].p) == hdl) {
      verify_live(s, &s->live[i]);
      FUZZ_ASSERT(shmheap_usable_size(heap, s->live[i].p) >= s->live[i].sz);
    }
}

void op_lookup_or_alloc(struct state *s) {
  unsigned k;
  const char *key = pick_key(s, &k);
  size_t sz = pick_size(s);
  int created = -1;
  bool fits = !s->corrupted && must_fit(sz);
  errno = 0;
  unsigned char *p = shmheap_lookup_or_alloc(heap, key, sz, &created);
  if (p == NULL) {
    if (s->corrupted) {
      check_names_errno(s, errno);
      return;
    }
    if (k == NKEYS) {
      FUZZ_ASSERT(errno == EINVAL);
      return;
    }
    /* nothing was created: the name is still absent */
    FUZZ_ASSERT(s->name[k] == 0 && errno == ENOMEM && !fits);
    errno = 0;
    FUZZ_ASSERT(shmheap_lookup(heap, key) == 0 && errno == ENOENT);
    return;
  }
  FUZZ_ASSERT(in_data_area(p, 0));
  if (s->corrupted) {
    if (created == 1 && k < NKEYS && s->name[k] == 0 && in_data_area(p, sz)) {
      s->name[k] = hdl_of(p), s->nnames++;
      add_live(s, p, sz);
    }
    return;
  }
  FUZZ_ASSERT(k < NKEYS);
  if (s->name[k] != 0) { /* the existing object, untouched */
    FUZZ_ASSERT(created == 0 && hdl_of(p) == s->name[k]);
    for (unsigned i = 0; i < s->nlive; i++)
      if (s->live[i].p == p)
        verify_live(s, &s->live[i]);
    return;
  }
  FUZZ_ASSERT(created == 1);
  refresh_len(s);
  check_new_block(s, p, sz, -1);
  FUZZ_ASSERT(filled(p, sz, 0));
  s->name[k] = hdl_of(p);
  s->nnames++;
  errno = 0;
  FUZZ_ASSERT(shmheap_lookup(heap, key) == hdl_of(p));
  add_live(s, p, sz);
}

struct seen {
  const struct state *s;
  unsigned visits, stop_at;
  uint64_t hdl[NKEYS];
  bool bad;
};

static int see_name(const char *key, shmheap_object_handle hdl, void *arg) {
  struct seen *sn = arg;
  unsigned k = 0;
  while (k < NKEYS && strcmp(keys[k], key) != 0)
    k++;
  if (k == NKEYS || sn->hdl[k] != 0)
    sn->bad = true; /* a key never published, or seen twice */
  else
    sn->hdl[k] = hdl;
  return ++sn->visits == sn->stop_at ? 7 : 0;
}

void op_names_walk(struct state *s) {
  struct seen sn = {.s = s, .stop_at = u8(s) % 4 == 0 ? 1 : 0};
  errno = 0;
  int rc = shmheap_names(heap, see_name, &sn);
  if (s->corrupted) {
    if (rc < 0)
      check_names_errno(s, errno);
    return;
  }
  FUZZ_ASSERT(!sn.bad);
  if (sn.stop_at == 1 && s->nnames > 0) {
    FUZZ_ASSERT(rc == 7 && sn.visits == 1);
    return;
  }
  FUZZ_ASSERT(rc == 0 && sn.visits == s->nnames);
  for (unsigned k = 0; k < NKEYS; k++)
    FUZZ_ASSERT(sn.hdl[k] == s->name[k]);
  errno = 0;
  FUZZ_ASSERT(shmheap_names(heap, NULL, NULL) == -1 && errno == EINVAL);
}

void op_grow(struct state *s) {
  uint8_t c = u8(s);
  uint64_t page = 4096, to;
  switch (c % 6) {
  case 0:
    to = heap_len + page * (1 + u8(s) % 4);
    break;
  case 1:
    to = heap_len * 2;
    break;
  case 2:
    to = heap_max;
    break;
  case 3:
    to = heap_len - page * (u8(s) % 2); /* no change */
    break;
  case 4:
    to = heap_max + page * (1 + u8(s) % 4); /* above max_len */
    break;
  default:
    to = heap_len + 1 + u8(s) % (page - 1); /* not a page multiple */
    break;
  }
  struct shmheap_stats before;
  bool have = shmheap_stats(heap, &before) == 0;
  errno = 0;
  int rc = shmheap_grow(heap, (size_t)to);
  int e = errno;
  if (s->corrupted) {
    if (rc != 0)
      FUZZ_ASSERT(e == EINVAL || e == EUCLEAN || e == ENOSPC);
    if (rc != 0 && e == EUCLEAN)
      s->stop = true;
    refresh_len(s);
    return;
  }
  FUZZ_ASSERT(have);
  /* a heap made without max_len refuses every length */
  if (to % page != 0 || to > heap_max || heap_max != GROW_MAX) {
    FUZZ_ASSERT(rc == -1 && e == EINVAL);
    FUZZ_ASSERT(refresh_len(s) == before.size);
    return;
  }
  FUZZ_ASSERT(rc == 0);
  uint64_t want = to > before.size ? to : before.size;
  FUZZ_ASSERT(refresh_len(s) == want); /* and every live block intact */
  for (unsigned i = 0; i < s->nlive; i++) {
    const struct live *l = &s->live[i];
    FUZZ_ASSERT(shmheap_handle_to_ptr(heap, hdl_of(l->p)) == l->p);
    FUZZ_ASSERT(shmheap_usable_size(heap, l->p) >= l->sz);
  }
  names_verify(s, heap);
  /* the new space is free, bar the 8 bytes an allocated last block takes */
  struct shmheap_stats after;
  FUZZ_ASSERT(shmheap_stats(heap, &after) == 0);
  uint64_t more = after.used_bytes - before.used_bytes;
  FUZZ_ASSERT(more == 0 || (more == 8 && want > before.size));
  FUZZ_ASSERT(after.used_blocks == before.used_blocks);
  FUZZ_ASSERT(after.free_bytes ==
              before.free_bytes + (want - before.size) - more);
}

/* fuzz-ops: a libFuzzer target that decodes each input into a sequence of
 * heap operations: alloc, calloc, realloc and free of valid blocks, of
 * interior, freed, foreign and random pointers, handle conversions of
 * random values, and now and then a scribble over a block's tag, a free
 * block's footer or index node, or the header (seen through a fresh
 * connect). After every step shmheap_check must pass, unless something was
 * scribbled: then the heap may report EUCLEAN (and the input stops), but no
 * call may crash, hang or hand out memory outside the heap.
 *
 * An oracle mirrors the live blocks (address, size, fill byte) and aborts
 * on any disagreement: a block overlapping another, lost contents, a valid
 * request refused while the heap says it has room, a bad pointer accepted,
 * a heap that is not empty once every block is freed. Its name map
 * (fuzz-names.c) follows publish, unpublish, lookup_or_alloc and frees.
 *
 * The first byte of an input picks its heap: mostly a fixed one of
 * HEAP_LEN bytes ("/shmheap-fuzz-PID"), one input in four a growable one
 * of GROW_LEN bytes that may grow to GROW_MAX ("/shmheap-fuzz-PID-g"), so
 * that allocations grow it. Each is reused across inputs: an input that
 * leaves it intact frees its blocks, so the next starts from the same empty
 * heap; one that scribbled on it, or grew it, gets a new heap. The names
 * are removed at exit; after a crash .ci/fuzz.sh removes them.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "layout.h"

static char fixed_name[64], grow_name[64], other_name[64];
static const char *heap_name; /* the current heap's */
static shmheap_memory_handle fixed, grower, other;
shmheap_memory_handle heap;
uint64_t heap_len, heap_max;
static unsigned char *other_block;
/* SHMHEAP_FUZZ_NO_CORRUPT=1 leaves out the scribbles (to fuzz the oracle
 * alone, say while a corruption bug is being fixed). */
static bool no_corrupt;

/* ------------------------------------------------------------------------ */
/* Input decoding                                                            */

uint8_t u8(struct state *s) {
  if (s->n == 0)
    return 0;
  s->n--;
  return *s->d++;
}

uint64_t uN(struct state *s, unsigned bytes) {
  uint64_t v = 0;
  for (unsigned i = 0; i < bytes; i++)
    v |= (uint64_t)u8(s) << (8 * i);
  return v;
}

static size_t largest_free(void);

/* A request size: mostly small, sometimes large, sometimes at an edge. */
size_t pick_size(struct state *s) {
  uint8_t c = u8(s);
  switch (c >> 5) {
  case 0:
    return c & 31;
  case 1:
    return (size_t)uN(s, 2) % 1024;
  case 2:
    return (size_t)uN(s, 2) % 16384;
  case 3:
    return (size_t)uN(s, 3) % HEAP_LEN;
  case 4: {
    static const size_t edge[] = {0,
                                  1,
                                  8,
                                  9,
                                  24,
                                  40,
                                  41,
                                  HEAP_LEN - 80,
                                  HEAP_LEN - 79,
                                  HEAP_LEN,
                                  SIZE_MAX,
                                  SIZE_MAX - 7,
                                  SIZE_MAX - 16,
                                  SIZE_MAX / 2,
                                  (size_t)1 << 48,
                                  ((size_t)1 << 48) - 1};
    uint8_t k = u8(s);
    if (k % 18 == 16)
      return largest_free();
    if (k % 18 == 17)
      return largest_free() + 1;
    return edge[k % (sizeof edge / sizeof edge[0])];
  }
  default:
    return c & 127;
  }
}

/* ------------------------------------------------------------------------ */
/* The oracle                                                                */

unsigned char *base(void) {
  return shmheap_underlying(heap);
}

static size_t largest_free(void) {
  struct shmheap_stats st;
  if (shmheap_stats(heap, &st) != 0)
    return 0;
  return (size_t)st.largest_free;
}

bool filled(const unsigned char *p, size_t n, unsigned char c) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != c)
      return false;
  return true;
}

/* A block just returned for SZ bytes: inside the data area always; and,
 * while nothing was scribbled, big enough and overlapping no live block. */
void check_new_block(struct state *s, unsigned char *p, size_t sz, int skip) {
  FUZZ_ASSERT(in_data_area(p, sz));
  if (s->corrupted)
    return;
  size_t us = shmheap_usable_size(heap, p);
  FUZZ_ASSERT(us >= sz && in_data_area(p, us));
  for (unsigned i = 0; i < s->nlive; i++) {
    if ((int)i == skip)
      continue;
    const struct live *l = &s->live[i];
    size_t lus = shmheap_usable_size(heap, l->p);
    FUZZ_ASSERT(p + us <= l->p - 8 || l->p + lus <= p - 8);
  }
}

/* An errno from a call that failed: what the heap's state allows. */
void check_errno(struct state *s, int e, bool enomem_ok) {
  if (s->corrupted) {
    FUZZ_ASSERT(e == EUCLEAN || e == EINVAL || (enomem_ok && e == ENOMEM));
    if (e == EUCLEAN)
      s->stop = true;
  } else {
    FUZZ_ASSERT(enomem_ok && e == ENOMEM);
  }
}

void add_live(struct state *s, unsigned char *p, size_t sz) {
  if (s->nlive == MAX_LIVE) { /* full: give the block straight back */
    errno = 0;
    shmheap_free(heap, p);
    if (errno != 0)
      check_errno(s, errno, false);
    names_forget(s, (uint64_t)(p - base()));
    return;
  }
  unsigned char fill = (unsigned char)(0x11 * (s->nlive + 1) + sz);
  memset(p, fill, sz);
  s->live[s->nlive++] = (struct live){p, sz, fill};
}

void drop_live(struct state *s, unsigned i) {
  s->live[i] = s->live[--s->nlive];
}

void verify_live(const struct state *s, const struct live *l) {
  if (!s->corrupted)
    FUZZ_ASSERT(filled(l->p, l->sz, l->fill));
}

/* ------------------------------------------------------------------------ */
/* Operations                                                                */

static void op_alloc(struct state *s, bool zeroed) {
  size_t sz = pick_size(s), n = 1;
  if (zeroed && (u8(s) & 1)) { /* n * sz, sometimes overflowing */
    n = (size_t)uN(s, 1) + 1;
    if (u8(s) & 1)
      n = SIZE_MAX / (sz ? sz : 1) + 1;
  }
  struct shmheap_stats st = {0};
  bool have_room =
      !s->corrupted && shmheap_stats(heap, &st) == 0 && st.free_blocks > 0;
  errno = 0;
  unsigned char *p =
      zeroed ? shmheap_calloc(heap, n, sz) : shmheap_alloc(heap, sz);
  bool overflow = n > 1 && sz != 0 && n > SIZE_MAX / sz;
  if (p == NULL) {
    check_errno(s, errno, true);
    /* first fit: a request that fits the largest free block must succeed
     * (largest_free is 0 both for no free block and for one that holds
     * only alloc(0), hence free_blocks) */
    if (have_room && !overflow)
      FUZZ_ASSERT(n * sz > st.largest_free);
    /* a growable heap grows before it fails: only a request near what
     * max_len leaves can fail */
    uint64_t room = heap_max - heap_len;
    if (!s->corrupted && !overflow)
      FUZZ_ASSERT(n * sz > room || room - n * sz < 2 * 4096);
    return;
  }
  FUZZ_ASSERT(!overflow);
  size_t total = n * sz;
  check_new_block(s, p, total, -1);
  if (zeroed && !s->corrupted)
    FUZZ_ASSERT(filled(p, total, 0));
  add_live(s, p, total);
}

static void op_free(struct state *s) {
  if (s->nlive == 0)
    return;
  unsigned i = u8(s) % s->nlive;
  verify_live(s, &s->live[i]);
  uint64_t hdl = (uint64_t)(s->live[i].p - base());
  errno = 0;
  shmheap_free(heap, s->live[i].p);
  if (errno != 0)
    check_errno(s, errno, false);
  drop_live(s, i);
  names_forget(s, hdl);
}

static void op_realloc(struct state *s) {
  if (s->nlive == 0)
    return;
  unsigned i = u8(s) % s->nlive;
  struct live *l = &s->live[i];
  size_t sz = pick_size(s);
  verify_live(s, l);
  errno = 0;
  unsigned char *q = shmheap_realloc(heap, l->p, sz);
  if (q == NULL) {
    check_errno(s, errno, true);
    verify_live(s, l); /* the old block is intact */
    if (errno == EUCLEAN || errno == EINVAL) {
      uint64_t hdl = (uint64_t)(l->p - base());
      drop_live(s, i);
      names_forget(s, hdl);
    }
    return;
  }
  check_new_block(s, q, sz, (int)i);
  size_t keep = sz < l->sz ? sz : l->sz;
  if (!s->corrupted)
    FUZZ_ASSERT(filled(q, keep, l->fill));
  unsigned char *old = l->p;
  l->p = q;
  l->sz = sz;
  memset(q, l->fill, sz);
  if (q != old) /* moved: the old block was freed, and its names */
    names_forget(s, (uint64_t)(old - base()));
}

static void op_realloc_null(struct state *s) {
  size_t sz = pick_size(s);
  errno = 0;
  unsigned char *p = shmheap_realloc(heap, NULL, sz);
  if (p == NULL) {
    check_errno(s, errno, true);
    return;
  }
  check_new_block(s, p, sz, -1);
  add_live(s, p, sz);
}

/* A pointer that is not the start of a live block. */
static unsigned char *bad_pointer(struct state *s) {
  uint8_t k = u8(s);
  unsigned char *b = base();
  switch (k % 8) {
  case 0:
    if (s->nlive) { /* interior */
      const struct live *l = &s->live[u8(s) % s->nlive];
      int64_t d = (int8_t)u8(s);
      if (d == 0)
        d = 1;
      return l->p + d;
    }
    return b + SHMHEAP_OVERHEAD + 16;
  case 1:
    return other_block; /* another heap's live block */
  case 2:
    return b + uN(s, 3) % (heap_len + 64); /* anywhere in or near the heap */
  case 3:
    return b + (uN(s, 3) % heap_len & ~(uint64_t)(SHMHEAP_ALIGNMENT - 1));
  case 4:
    return (unsigned char *)(uintptr_t)uN(s, 8);
  case 5:
    return b + (int64_t)(int16_t)uN(s, 2); /* around the header */
  case 6:
    return b + heap_len - (uN(s, 1) & ~(uint64_t)(SHH_TAG - 1));
  default: /* a block freed earlier: remembered below */
    return NULL;
  }
}

static bool is_live(const struct state *s, const unsigned char *p) {
  for (unsigned i = 0; i < s->nlive; i++)
    if (s->live[i].p == p)
      return true;
  return false;
}

static unsigned char *last_freed;

static void op_bad_pointer(struct state *s) {
  unsigned char *p = bad_pointer(s);
  if (p == NULL)
    p = last_freed;
  if (p == NULL || is_live(s, p))
    return;
  /* the start of a block the names hold (directory, entry): free takes
   * it like any live block and the names then fail the check, so the
   * target leaves those alone */
  if (!s->corrupted && shmheap_usable_size(heap, p) != 0)
    return;
  struct shmheap_stats before, after;
  bool have = !s->corrupted && shmheap_stats(heap, &before) == 0;
  uint8_t which = u8(s) % 3;
  errno = 0;
  if (which == 0) {
    shmheap_free(heap, p);
  } else if (which == 1) {
    void *q = shmheap_realloc(heap, p, pick_size(s));
    if (!s->corrupted)
      FUZZ_ASSERT(q == NULL);
    else if (q != NULL)
      FUZZ_ASSERT(in_data_area(q, 0));
  } else {
    size_t us = shmheap_usable_size(heap, p);
    if (!s->corrupted)
      FUZZ_ASSERT(us == 0);
  }
  if (s->corrupted) {
    if (errno != 0)
      check_errno(s, errno, true);
    return;
  }
  FUZZ_ASSERT(errno == EINVAL);
  FUZZ_ASSERT(have && shmheap_stats(heap, &after) == 0);
  FUZZ_ASSERT(memcmp(&before, &after, sizeof before) == 0);
}

static void op_handles(struct state *s) {
  unsigned char *b = base();
  uint64_t h = uN(s, u8(s) % 9);
  unsigned char *p = shmheap_handle_to_ptr(heap, h);
  if (h < SHMHEAP_OVERHEAD || h >= heap_len)
    FUZZ_ASSERT(p == NULL);
  else
    FUZZ_ASSERT(p == b + h);
  if (s->nlive) {
    const struct live *l = &s->live[u8(s) % s->nlive];
    size_t k = l->sz ? u8(s) % l->sz : 0;
    shmheap_object_handle lh = shmheap_ptr_to_handle(heap, l->p + k);
    FUZZ_ASSERT(lh == (uint64_t)(l->p + k - b));
    FUZZ_ASSERT(shmheap_handle_to_ptr(heap, lh) == l->p + k);
  }
  FUZZ_ASSERT(shmheap_ptr_to_handle(heap, NULL) == SHMHEAP_NULL_HANDLE);
  FUZZ_ASSERT(shmheap_ptr_to_handle(heap, other_block) == SHMHEAP_NULL_HANDLE);
  FUZZ_ASSERT(shmheap_handle_to_ptr(heap, SHMHEAP_NULL_HANDLE) == NULL);
}

static int count_used(const struct shmheap_block *blk, void *arg) {
  if (blk->used)
    ++*(uint64_t *)arg;
  return 0;
}

static void op_stats(struct state *s) {
  struct shmheap_stats st;
  errno = 0;
  if (shmheap_stats(heap, &st) != 0) {
    check_errno(s, errno, false);
    return;
  }
  if (s->corrupted)
    return;
  FUZZ_ASSERT(st.size == heap_len && st.max_size == heap_max);
  FUZZ_ASSERT(st.used_bytes + st.free_bytes + SHH_HEADER_SIZE == st.size);
  FUZZ_ASSERT(st.used_blocks == s->nlive + names_blocks(s));
  FUZZ_ASSERT(st.names == s->nnames);
  FUZZ_ASSERT(st.format_version == SHMHEAP_FORMAT_VERSION);
  uint64_t used = 0;
  FUZZ_ASSERT(shmheap_walk(heap, count_used, &used) == 0);
  FUZZ_ASSERT(used == s->nlive + names_blocks(s));
  /* largest_free is exact: it fits, one byte more does not */
  if (st.largest_free > 0) {
    void *p = shmheap_alloc(heap, st.largest_free);
    FUZZ_ASSERT(p != NULL);
    shmheap_free(heap, p);
  }
  FUZZ_ASSERT(refresh_len(s) == st.size); /* a fit never grows */
  errno = 0;
  void *q = shmheap_alloc(heap, st.largest_free + 1);
  if (heap_max == st.size) {
    FUZZ_ASSERT(q == NULL && errno == ENOMEM);
    return;
  }
  /* a growable heap grows for it, or fails when max_len cannot hold it */
  if (q == NULL) {
    FUZZ_ASSERT(errno == ENOMEM);
    FUZZ_ASSERT(st.largest_free + 1 + 2 * 4096 > heap_max - st.size);
  } else {
    FUZZ_ASSERT(refresh_len(s) > st.size);
    shmheap_free(heap, q);
  }
}

/* A second connection sees the same blocks at its own address. */
static void op_reconnect(struct state *s) {
  if (s->corrupted)
    return;
  shmheap_memory_handle m2 = shmheap_connect(heap_name);
  FUZZ_ASSERT(m2 != NULL);
  for (unsigned i = 0; i < s->nlive; i++) {
    const struct live *l = &s->live[i];
    unsigned char *p2 =
        shmheap_handle_to_ptr(m2, shmheap_ptr_to_handle(heap, l->p));
    FUZZ_ASSERT(p2 != NULL && shmheap_usable_size(m2, p2) >= l->sz);
  }
  names_verify(s, m2);
  void *q = shmheap_alloc(m2, pick_size(s) % 4096);
  if (q == NULL)
    FUZZ_ASSERT(errno == ENOMEM);
  shmheap_free(m2, q);
  shmheap_disconnect(m2);
  refresh_len(s);
}

struct pick {
  unsigned want, seen;
  uint64_t off, size;
};

static int pick_free(const struct shmheap_block *blk, void *arg) {
  struct pick *pk = arg;
  if (blk->used)
    return 0;
  pk->off = blk->offset;
  pk->size = blk->size;
  return pk->seen++ == pk->want;
}

/* Scribbles on a used block's tag, or a free block's tag, index node or
 * footer. */
static void op_corrupt_tag(struct state *s) {
  unsigned char *b = base();
  uint8_t k = u8(s);
  uint8_t v = u8(s);
  if (k & 1 && s->nlive) {
    const struct live *l = &s->live[u8(s) % s->nlive];
    l->p[-8 + (k >> 1) % 8] ^= v ? v : 1;
  } else {
    struct pick pk = {u8(s), 0, 0, 0};
    if (s->corrupted || shmheap_walk(heap, pick_free, &pk) < 0 || pk.off == 0)
      return;
    uint64_t at = (k >> 1) % 2 ? pk.off + (k >> 2) % 48
                               : pk.off + pk.size - 8 + (k >> 2) % 8;
    if (at >= heap_len)
      return;
    b[at] ^= v ? v : 1;
  }
  s->corrupted = true;
}

/* Scribbles on the header, then connects afresh (connect must validate
 * it) and uses the heap through that connection. Leaves out the bytes whose
 * damage only makes connect wait its bounded second (the state word and
 * the lock word, lib/region.h): test-hostile covers those, and a second
 * per input would stall the fuzzer. */
static void op_corrupt_header(struct state *s) {
  unsigned char *b = base();
  uint8_t at = u8(s) % 80;
  uint8_t v = u8(s);
  if ((at >= 6 && at < 8) || (at >= 32 && at < 36))
    return;
  if (v & 1)
    b[at] ^= (unsigned char)(1u << (v >> 5));
  else
    b[at] = v;
  s->corrupted = true;
  s->stop = true; /* the rest of this input goes to the new connection */
  shmheap_memory_handle m2 = shmheap_connect(heap_name);
  if (m2 == NULL) {
    FUZZ_ASSERT(errno == EINVAL || errno == EPROTO || errno == EAGAIN ||
                errno == EUCLEAN);
    return;
  }
  shmheap_memory_handle main_heap = heap;
  heap = m2; /* base() and the checks now see the new mapping */
  for (unsigned i = 0; i < s->nlive; i++) /* rebase the live blocks */
    s->live[i].p =
        (unsigned char *)shmheap_underlying(m2) +
        (s->live[i].p - (unsigned char *)shmheap_underlying(main_heap));
  s->stop = false;
  for (unsigned step = 0; step < 64 && s->n > 0 && !s->stop; step++) {
    switch (u8(s) % 5) {
    case 0:
      op_alloc(s, false);
      break;
    case 1:
      op_free(s);
      break;
    case 2:
      op_realloc(s);
      break;
    case 3:
      op_bad_pointer(s);
      break;
    default:
      op_stats(s);
      break;
    }
    errno = 0;
    if (shmheap_check(heap) != 0) {
      FUZZ_ASSERT(errno == EUCLEAN);
      break;
    }
  }
  shmheap_disconnect(m2);
  heap = main_heap;
  s->stop = true;
}

/* ------------------------------------------------------------------------ */
/* Set-up and the entry point                                               */

static void destroy_all(void) {
  shmheap_destroy(fixed_name, fixed);
  shmheap_destroy(grow_name, grower);
  shmheap_disconnect(other);
}

static void make_fixed(void) {
  fixed = shmheap_create(fixed_name, HEAP_LEN);
  FUZZ_ASSERT(fixed != NULL);
}

static void make_grower(void) {
  grower = shmheap_create_growable(grow_name, GROW_LEN, GROW_MAX, 0600);
  FUZZ_ASSERT(grower != NULL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  FUZZ_ASSERT(sysconf(_SC_PAGESIZE) == 4096); /* the sizes above assume it */
  snprintf(fixed_name, sizeof fixed_name, "/shmheap-fuzz-%ld", (long)getpid());
  snprintf(grow_name, sizeof grow_name, "/shmheap-fuzz-%ld-g", (long)getpid());
  snprintf(other_name, sizeof other_name, "/shmheap-fuzz-%ld-b",
           (long)getpid());
  shm_unlink(fixed_name);
  shm_unlink(grow_name);
  shm_unlink(other_name);
  make_fixed();
  make_grower();
  other = shmheap_create(other_name, OTHER_LEN);
  FUZZ_ASSERT(other != NULL);
  other_block = shmheap_alloc(other, 64);
  FUZZ_ASSERT(other_block != NULL);
  shmheap_destroy(other_name, NULL); /* the mapping stays; the name goes */
  names_init();
  atexit(destroy_all);
  const char *nc = getenv("SHMHEAP_FUZZ_NO_CORRUPT");
  no_corrupt = nc != NULL && nc[0] == '1';
  return 0;
}

/* One operation, decoded from OP. */
static void run_op(struct state *s, uint8_t op) {
  if (op >= 252 && !no_corrupt) {
    op_corrupt_header(s);
    return;
  }
  if (op >= 244 && !no_corrupt) {
    op_corrupt_tag(s);
    return;
  }
  switch (op % 15) {
  case 0:
  case 1:
    op_alloc(s, false);
    break;
  case 2:
    op_alloc(s, true);
    break;
  case 3:
  case 4:
    if (s->nlive)
      last_freed = s->live[s->nlive - 1].p;
    op_free(s);
    if (last_freed && is_live(s, last_freed))
      last_freed = NULL;
    break;
  case 5:
    op_realloc(s);
    break;
  case 6:
    op_realloc_null(s);
    break;
  case 7:
    op_bad_pointer(s);
    break;
  case 8:
    op_handles(s);
    break;
  case 9:
    if (op & 0x80)
      op_reconnect(s);
    else
      op_stats(s);
    break;
  case 10:
  case 11:
    op_publish(s);
    break;
  case 12:
    if (op & 0x80)
      op_unpublish(s);
    else
      op_lookup(s);
    break;
  case 13:
    op_lookup_or_alloc(s);
    break;
  default:
    if (op & 0x80)
      op_grow(s);
    else
      op_names_walk(s);
    break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct state s = {.d = data, .n = size};
  last_freed = NULL;
  bool growable = u8(&s) % 4 == 0;
  heap = growable ? grower : fixed;
  heap_name = growable ? grow_name : fixed_name;
  heap_len = growable ? GROW_LEN : HEAP_LEN;
  heap_max = growable ? GROW_MAX : HEAP_LEN;
  for (unsigned step = 0; step < MAX_STEPS && s.n > 0 && !s.stop; step++) {
    run_op(&s, u8(&s));
    if (s.stop)
      break;
    errno = 0;
    int rc = shmheap_check(heap);
    if (rc != 0) {
      /* only a scribbled heap may fail its check, and only with EUCLEAN */
      FUZZ_ASSERT(s.corrupted && errno == EUCLEAN);
      break;
    }
    refresh_len(&s);
  }

  if (s.corrupted) {
    shmheap_destroy(NULL, heap);
    if (growable)
      make_grower();
    else
      make_fixed();
    return 0;
  }
  /* Intact: free everything (and so every name); the heap must be empty
   * again (every free merged), so the next input starts from the same
   * heap. */
  names_verify(&s, heap);
  while (s.nlive > 0) {
    verify_live(&s, &s.live[s.nlive - 1]);
    uint64_t hdl = (uint64_t)(s.live[s.nlive - 1].p - base());
    errno = 0;
    shmheap_free(heap, s.live[s.nlive - 1].p);
    FUZZ_ASSERT(errno == 0);
    s.nlive--;
    names_forget(&s, hdl);
  }
  struct shmheap_stats st;
  FUZZ_ASSERT(shmheap_check(heap) == 0);
  FUZZ_ASSERT(shmheap_stats(heap, &st) == 0);
  FUZZ_ASSERT(st.names == 0 && s.nnames == 0);
  FUZZ_ASSERT(st.used_blocks == 0 && st.free_blocks == 1);
  FUZZ_ASSERT(st.size == heap_len);
  FUZZ_ASSERT(st.largest_free == heap_len - SHMHEAP_OVERHEAD);
  if (growable && heap_len != GROW_LEN) { /* grown: start the next afresh */
    shmheap_destroy(NULL, grower);
    make_grower();
  }
  return 0;
}

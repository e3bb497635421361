/* range-bound.c: what exact first fit would give random-live with a
 * per-range summary in place of the per-block tree, measured beside
 * shmheap on the machine at hand.
 *
 * shmheap's free index keeps one AVL node inside each free block, so its
 * walks chase nodes spread over the whole heap: at 100k live blocks, over
 * some 50 MB. This program runs the same policy (exact first fit, the head
 * of the block carved, shmheap's block sizes) over a summary instead. The
 * heap is cut into R-byte ranges; for each range it keeps the largest free
 * block that starts there (the leaves of a max segment tree held in one
 * array) and where its first block starts. First fit descends the tree to
 * the lowest range whose largest block fits, then walks that range's tags;
 * a split, a merge or a take changes one or two leaves, each fixed by a
 * walk of its range's tags, and the tree above them. Blocks carry shmheap's
 * tags with the same check bits, every tag read is verified, and each call
 * takes and gives back a lock word in a shared page with a CAS.
 *
 * It is a measurement, not an allocator: one process, no crash safety, no
 * growth, no names. Nor does it do the rest of shmheap's per-call work:
 * the checks of the caller's pointer and of the neighbours' tags beyond
 * the ones it reads, the zeroing of swallowed tags, the NAMED and growth
 * branches. So its ratios to shmheap credit the index with a little more
 * than its share.
 *
 * It first shows that it is the same policy: on a 1 MiB heap that fills up
 * and empties in turns, some 190,000 allocs, tens of thousands of them
 * ENOMEM, must get the offsets shmheap gives, with the summary checked
 * against the tags every 101 steps and at the end; it exits with status 1
 * otherwise. It does so twice for each R: once with the summary outside
 * the heap, and once with the summary's bytes held in a block at the
 * heap's end that is given back before any alloc would be served otherwise
 * than without it (hold_tail): the way such a summary could live in the
 * heap and cost no utilisation. Then, for R from 256 to 4096 bytes, it
 * times random-live at 1k and 100k live blocks, shmheap and each R on the
 * same stream in an order that rotates from one repetition to the next,
 * and prints the medians, the median of the paired ratios, and the share
 * of the heap such a summary takes. Last, what giving the summary back
 * would cost on the same heaps (give_back_cost).
 *
 * Usage: shmheap-range-bound [REPS]  (default 3)
 */
#include <fcntl.h>
#include <shmheap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "block.h" /* the tag format and its check bits */
#include "median.h"

enum { MAX_REPS = 51, NO_START = 0xffff, N_R = 5 };
static const unsigned range_bytes[N_R] = {256, 512, 1024, 2048, 4096};

struct ranges {
  unsigned char *base;
  uint64_t len, key;
  uint64_t r;        /* bytes per range */
  uint64_t p;        /* leaves: a power of two, at least the ranges */
  uint64_t *max;     /* the max tree: max[1] the root, max[p + i] range i */
  uint16_t *first;   /* where range i's first block starts in it */
  uint64_t *lock;    /* the lock word, in a shared page */
  unsigned long bad; /* tags whose check bits failed */
  uint64_t hold;     /* bytes of the tail block that stands for the summary
                        (8 mod 16, as the top's size), 0 for none */
  uint64_t held;     /* where that block starts while it is there, else 0 */
  unsigned long holds, drops; /* times it was carved, and given back */
};

static void *map_shared(uint64_t len) {
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                 -1, 0);
  if (p == MAP_FAILED) {
    perror("range-bound: mmap");
    exit(2);
  }
  return p;
}

/* The heap's bytes: a POSIX shared memory object, allocated up front and
 * unlinked at once, as shmheap's heap is (shm_open, posix_fallocate), so
 * that both are backed by the same kind of pages. */
static void *map_heap(uint64_t len) {
  char name[64];
  snprintf(name, sizeof name, "/shmheap-range-bound-arena-%ld", (long)getpid());
  int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    perror("range-bound: shm_open");
    exit(2);
  }
  shm_unlink(name);
  int err = posix_fallocate(fd, 0, (off_t)len);
  if (err != 0) {
    fprintf(stderr, "range-bound: posix_fallocate: %s\n", strerror(err));
    exit(2);
  }
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) {
    perror("range-bound: mmap");
    exit(2);
  }
  return p;
}

static uint64_t ranges_count(const struct ranges *g) {
  return (g->len + g->r - 1) / g->r;
}

static uint64_t ld(const struct ranges *g, uint64_t off) {
  uint64_t v;
  memcpy(&v, g->base + off, sizeof v);
  return v;
}
static void st(const struct ranges *g, uint64_t off, uint64_t v) {
  memcpy(g->base + off, &v, sizeof v);
}
static uint64_t tag_make(const struct ranges *g, uint64_t off, uint64_t size,
                         uint64_t flags) {
  uint64_t low = size | flags;
  return low | shh_check_bits(g->key, off, low);
}
/* The tag at OFF, its check bits verified. */
static uint64_t tag_at(struct ranges *g, uint64_t off) {
  uint64_t t = ld(g, off);
  if ((t & ~SHH_LOW_MASK) != shh_check_bits(g->key, off, t & SHH_LOW_MASK))
    g->bad++;
  return t;
}
/* A free block's tag and footer. */
static void put_free(const struct ranges *g, uint64_t off, uint64_t size) {
  uint64_t t = tag_make(g, off, size, 0);
  st(g, off, t);
  st(g, off + size - SHH_FOOTER, t);
}

static void lock(struct ranges *g) {
  uint64_t z = 0;
  while (!__atomic_compare_exchange_n(g->lock, &z, 1, 0, __ATOMIC_ACQUIRE,
                                      __ATOMIC_RELAXED))
    z = 0;
}
static void unlock(struct ranges *g) {
  uint64_t one = 1;
  __atomic_compare_exchange_n(g->lock, &one, 0, 0, __ATOMIC_RELEASE,
                              __ATOMIC_RELAXED);
}

/* Range I's leaf becomes V; the tree above it follows as far as it
 * changes. */
static void leaf_set(struct ranges *g, uint64_t i, uint64_t v) {
  uint64_t k = g->p + i;
  if (g->max[k] == v)
    return;
  g->max[k] = v;
  for (k >>= 1; k != 0; k >>= 1) {
    uint64_t a = g->max[2 * k], b = g->max[2 * k + 1], m = a > b ? a : b;
    if (g->max[k] == m)
      break;
    g->max[k] = m;
  }
}

/* Range I's leaf from its tags. */
static void rescan(struct ranges *g, uint64_t i) {
  uint64_t m = 0;
  if (g->first[i] != NO_START) {
    uint64_t b = i * g->r + g->first[i], end = (i + 1) * g->r;
    while (b < end && b < g->len) {
      uint64_t t = tag_at(g, b), s = shh_tag_size(t);
      if (!shh_tag_used(t) && s > m)
        m = s;
      b += s;
    }
  }
  leaf_set(g, i, m);
}

/* A block now starts at B. */
static void start_at(struct ranges *g, uint64_t b) {
  uint64_t i = b / g->r, o = b % g->r;
  if (g->first[i] == NO_START || o < g->first[i])
    g->first[i] = (uint16_t)o;
}
/* No block starts at B any more: a merge took it into a block that ends at
 * END. */
static void start_gone(struct ranges *g, uint64_t b, uint64_t end) {
  uint64_t i = b / g->r;
  if (g->first[i] == b % g->r)
    g->first[i] = end / g->r == i ? (uint16_t)(end % g->r) : NO_START;
}

static void ranges_init(struct ranges *g, uint64_t len, uint64_t r) {
  memset(g, 0, sizeof *g);
  g->len = len;
  g->r = r;
  g->key = 0x5eed;
  g->base = map_heap(len);
  g->lock = map_shared(4096);
  g->p = 1;
  while (g->p < ranges_count(g))
    g->p <<= 1;
  g->max = map_shared(2 * g->p * sizeof *g->max);
  g->first = map_shared(ranges_count(g) * sizeof *g->first);
  memset(g->first, 0xff, ranges_count(g) * sizeof *g->first);
  put_free(g, SHH_FIRST, len - SHH_FIRST);
  start_at(g, SHH_FIRST);
  leaf_set(g, 0, len - SHH_FIRST);
}

static void ranges_fini(struct ranges *g) {
  munmap(g->base, g->len);
  munmap(g->lock, 4096);
  munmap(g->max, 2 * g->p * sizeof *g->max);
  munmap(g->first, ranges_count(g) * sizeof *g->first);
}

static void free_block(struct ranges *g, uint64_t a) {
  uint64_t t = tag_at(g, a), s = shh_tag_size(t), n = a + s, ns = 0;
  uint64_t start = a, size = s;
  if (n < g->len) {
    uint64_t nt = tag_at(g, n);
    if (!shh_tag_used(nt))
      ns = shh_tag_size(nt);
    else
      st(g, n,
         tag_make(g, n, shh_tag_size(nt), (nt & SHH_F_MASK) | SHH_F_PREV_FREE));
  }
  size += ns;
  if (shh_tag_prev_free(t)) {
    /* the footer repeats the tag, whose check bits are keyed by where the
     * block starts: it is verified there */
    uint64_t f = ld(g, a - SHH_FOOTER), ps = shh_tag_size(f);
    if (ps < SHH_MIN_BLOCK || ps > a - SHH_FIRST || tag_at(g, a - ps) != f) {
      fprintf(stderr, "range-bound: a footer that its tag does not repeat\n");
      exit(1);
    }
    start -= ps;
    size += ps;
  }
  put_free(g, start, size);
  uint64_t end = start + size, is = start / g->r, in = n / g->r;
  if (start != a)
    start_gone(g, a, end);
  if (ns != 0)
    start_gone(g, n, end);
  if (g->max[g->p + is] < size)
    leaf_set(g, is, size);
  /* the block freed was used, so its own range's largest free block stays;
   * the range the next block started in loses that block */
  if (ns != 0 && in != is)
    rescan(g, in);
}

/* Where the summary would live in a heap: a block of g->hold bytes that
 * ends the heap, carved from the tail of the top (the free block that
 * ends the heap) while the top has room for it twice over, and given back
 * before an alloc would be served otherwise than without it. */
static void hold_tail(struct ranges *g) {
  if (g->hold == 0 || g->held != 0)
    return;
  /* the last word is the top's footer only if the tag it points back to
   * repeats it: a used block's last word may be a stale footer */
  uint64_t f = ld(g, g->len - SHH_FOOTER), size = shh_tag_size(f);
  if (shh_tag_used(f) || size < 2 * g->hold + SHH_MIN_BLOCK ||
      size > g->len - SHH_FIRST || tag_at(g, g->len - size) != f)
    return;
  uint64_t top = g->len - size, h = g->len - g->hold;
  put_free(g, top, size - g->hold);
  st(g, h, tag_make(g, h, g->hold, SHH_F_USED | SHH_F_PREV_FREE));
  g->holds++;
  start_at(g, h);
  rescan(g, top / g->r); /* h's range starts no free block, before or after */
  g->held = h;
}

static void *ranges_alloc(struct ranges *g, size_t sz) {
  uint64_t need = shh_fit(sz), carve = shh_carve(sz), b, t, s, i;
  lock(g);
  for (;;) {
    if (g->max[1] < need) {
      if (g->held == 0) {
        unlock(g);
        return NULL;
      }
    } else {
      uint64_t k = 1;
      while (k < g->p)
        k = g->max[2 * k] >= need ? 2 * k : 2 * k + 1;
      i = k - g->p;
      b = i * g->r + g->first[i];
      for (;;) {
        if (b >= (i + 1) * g->r || b >= g->len) {
          /* a summary that disagrees with the tags: a bug here */
          fprintf(stderr, "range-bound: range %llu promised a fit it lacks\n",
                  (unsigned long long)i);
          exit(1);
        }
        t = tag_at(g, b);
        s = shh_tag_size(t);
        if (!shh_tag_used(t) && s >= need)
          break;
        b += s < SHH_MIN_BLOCK ? g->len : s;
      }
      /* the top, shortened by the held tail, taken whole: without the
       * tail it would have been split */
      if (b + s != g->held || s >= carve + SHH_MIN_BLOCK)
        break;
    }
    free_block(g, g->held);
    g->held = 0;
    g->drops++;
  }
  if (s >= carve + SHH_MIN_BLOCK) {
    uint64_t rest = b + carve;
    put_free(g, rest, s - carve);
    st(g, b, tag_make(g, b, carve, SHH_F_USED));
    start_at(g, rest);
    if (rest / g->r != i && g->max[g->p + rest / g->r] < s - carve)
      leaf_set(g, rest / g->r, s - carve);
  } else {
    st(g, b, tag_make(g, b, s, SHH_F_USED));
    if (b + s < g->len) {
      uint64_t nt = tag_at(g, b + s);
      st(g, b + s,
         tag_make(g, b + s, shh_tag_size(nt),
                  nt & SHH_F_MASK & ~(uint64_t)SHH_F_PREV_FREE));
    }
  }
  rescan(g, i);
  unlock(g);
  return g->base + b + SHH_TAG;
}

static void ranges_free(struct ranges *g, void *ptr) {
  lock(g);
  free_block(g, (uint64_t)((unsigned char *)ptr - g->base) - SHH_TAG);
  hold_tail(g);
  unlock(g);
}

/* Each range's largest free block into M and where its first block starts
 * into F (NO_START for none), from a walk of every tag: 0, or -1 when a tag
 * is wrong (said on stderr). */
static int scan_tags(struct ranges *g, uint64_t *m, uint16_t *f) {
  uint64_t n = ranges_count(g), b = SHH_FIRST;
  int prev_free = 0;
  memset(m, 0, n * sizeof *m);
  memset(f, 0xff, n * sizeof *f);
  while (b < g->len) {
    uint64_t t = tag_at(g, b), s = shh_tag_size(t), i = b / g->r;
    if (s < SHH_MIN_BLOCK || shh_tag_prev_free(t) != prev_free) {
      fprintf(stderr, "range-bound: bad tag at %llu\n", (unsigned long long)b);
      return -1;
    }
    if (f[i] == NO_START)
      f[i] = (uint16_t)(b % g->r);
    if (!shh_tag_used(t) && s > m[i])
      m[i] = s;
    prev_free = !shh_tag_used(t);
    b += s;
  }
  return 0;
}

/* The summary against the tags: 0, or -1 with what differs said. */
static int ranges_check(struct ranges *g) {
  uint64_t n = ranges_count(g);
  uint64_t *m = malloc(n * sizeof *m);
  uint16_t *f = malloc(n * sizeof *f);
  int rc = scan_tags(g, m, f);
  for (uint64_t i = 0; i < n && rc == 0; i++)
    if (m[i] != g->max[g->p + i] || f[i] != g->first[i]) {
      fprintf(stderr, "range-bound: range %llu's summary is wrong\n",
              (unsigned long long)i);
      rc = -1;
    }
  for (uint64_t k = g->p - 1; k != 0 && rc == 0; k--) {
    uint64_t x = g->max[2 * k], y = g->max[2 * k + 1];
    if (g->max[k] != (x > y ? x : y)) {
      fprintf(stderr, "range-bound: tree node %llu is wrong\n",
              (unsigned long long)k);
      rc = -1;
    }
  }
  free(m);
  free(f);
  return g->bad != 0 ? -1 : rc;
}

/* The whole summary made anew from the tags, as carving it back (or a
 * recovery) must: the leaves and first starts from one walk of every tag
 * (scratch arrays M and F), then the tree above them. 0 or -1 (a bad tag). */
static int ranges_rebuild(struct ranges *g, uint64_t *m, uint16_t *f) {
  uint64_t n = ranges_count(g);
  if (scan_tags(g, m, f) != 0)
    return -1;
  memcpy(g->first, f, n * sizeof *f);
  memcpy(g->max + g->p, m, n * sizeof *m);
  memset(g->max + g->p + n, 0, (g->p - n) * sizeof *m);
  for (uint64_t k = g->p - 1; k != 0; k--) {
    uint64_t x = g->max[2 * k], y = g->max[2 * k + 1];
    g->max[k] = x > y ? x : y;
  }
  return 0;
}

/* First fit with no index at all: the walk of the tags from the heap's
 * start to the first free block of NEED bytes; its offset, 0 for none. */
static uint64_t walk_first_fit(struct ranges *g, uint64_t need) {
  for (uint64_t b = SHH_FIRST; b < g->len;) {
    uint64_t t = tag_at(g, b), s = shh_tag_size(t);
    if (!shh_tag_used(t) && s >= need)
      return b;
    b += s < SHH_MIN_BLOCK ? g->len : s;
  }
  return 0;
}

static uint64_t rand_state;
static uint32_t rand_range(uint32_t lo, uint32_t hi) {
  rand_state ^= rand_state << 13;
  rand_state ^= rand_state >> 7;
  rand_state ^= rand_state << 17;
  return lo + (uint32_t)(rand_state % (hi - lo + 1));
}

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* Alloc and free through either allocator: HEAP set means shmheap. */
struct either {
  shmheap_memory_handle heap;
  struct ranges *g;
};
static void *e_alloc(struct either *e, size_t sz) {
  return e->heap != NULL ? shmheap_alloc(e->heap, sz) : ranges_alloc(e->g, sz);
}
static void e_free(struct either *e, void *p) {
  if (e->heap != NULL)
    shmheap_free(e->heap, p);
  else if (p != NULL)
    ranges_free(e->g, p);
}
static uint64_t e_offset(struct either *e, void *p) {
  if (p == NULL)
    return 0;
  return e->heap != NULL ? shmheap_ptr_to_handle(e->heap, p)
                         : (uint64_t)((unsigned char *)p - e->g->base);
}

static shmheap_memory_handle heap_create(uint64_t len) {
  char name[64];
  snprintf(name, sizeof name, "/shmheap-range-bound-%ld", (long)getpid());
  shmheap_memory_handle h = shmheap_create(name, len);
  if (h == NULL) {
    perror("range-bound: shmheap_create");
    exit(2);
  }
  /* the name goes at once and the mapping stays, so that no way out of
   * the program leaves the object behind */
  shmheap_destroy(name, NULL);
  return h;
}

/* The bytes such a summary takes for a heap of LEN bytes in R-byte ranges,
 * laid out as here: 8 bytes for each of the tree's 2p words (p leaves, a
 * power of two), and a 2-byte first start per range. */
static uint64_t summary_bytes(uint64_t len, uint64_t r) {
  uint64_t n = (len + r - 1) / r, p = 1;
  while (p < n)
    p <<= 1;
  return 16 * p + 2 * n;
}

/* The same offsets as shmheap's for every call, ENOMEMs included, on a
 * small heap where large requests fail: the same policy. With HOLD, the
 * summary's bytes are held at the heap's end as hold_tail says, and the
 * offsets must still be shmheap's: the summary need cost no utilisation. */
static int same_policy(uint64_t r, int hold) {
  enum { LIVE = 1000, STEPS = 300000, LEN = 1 << 20 };
  struct ranges g;
  struct either a = {heap_create(LEN), NULL}, b = {NULL, &g};
  void **pa = calloc(LIVE, sizeof *pa), **pb = calloc(LIVE, sizeof *pb);
  unsigned long diff = 0, enomem = 0;
  ranges_init(&g, LEN, r);
  if (hold)
    g.hold = ((summary_bytes(LEN, r) + 15) & ~(uint64_t)15) + 8;
  rand_state = 99;
  unsigned long calls = 0;
  for (uint32_t k = 0; k < LIVE + STEPS; k++) {
    uint32_t j = k < LIVE ? k : rand_range(0, LIVE - 1);
    uint32_t sz = rand_range(16, k % 7 == 0 ? 20000 : 1024);
    struct shmheap_stats hs;
    /* now and then just under the largest request that fits, or that fits
     * the top as the held tail shortens it: the top split at its very end,
     * or taken whole */
    if (k % 13 == 0 && shmheap_stats(a.heap, &hs) == 0 && hs.largest_free > 200)
      sz = (uint32_t)(hs.largest_free - rand_range(0, 96));
    if (k % 4 == 1 && g.held != 0 &&
        shh_tag_size(ld(&g, g.held - SHH_FOOTER)) > 200)
      sz = (uint32_t)(shh_tag_size(ld(&g, g.held - SHH_FOOTER)) - SHH_TAG -
                      rand_range(0, 96));
    /* phases of 10,000 steps: the heap fills up (and runs out) in one,
     * and in the next most steps only free, so the top grows and shrinks
     * and the held tail comes and goes */
    int ebb = k >= LIVE && (k / 10000) % 2 == 1 && rand_range(0, 3) != 0;
    e_free(&a, pa[j]);
    e_free(&b, pb[j]);
    pa[j] = pb[j] = NULL;
    if (!ebb) {
      pa[j] = e_alloc(&a, sz);
      pb[j] = e_alloc(&b, sz);
      calls++;
      enomem += pa[j] == NULL;
      diff += e_offset(&a, pa[j]) != e_offset(&b, pb[j]);
    }
    if ((k % 101 == 0 || k + 1 == LIVE + STEPS) && ranges_check(&g) != 0) {
      diff++;
      break;
    }
  }
  printf("same policy, R = %llu: %lu allocs on a 1 MiB heap (%lu ENOMEM): "
         "%lu differ from shmheap's",
         (unsigned long long)r, calls, enomem, diff);
  if (hold)
    printf("; with the summary's %llu bytes held at the end (carved %lu "
           "times, given back %lu)",
           (unsigned long long)g.hold, g.holds, g.drops);
  printf("\n");
  shmheap_disconnect(a.heap);
  ranges_fini(&g);
  free(pa);
  free(pb);
  return diff == 0 ? 0 : -1;
}

/* random-live: LIVE blocks, as many steps of warm-up, then STEPS timed
 * steps (free a random block, allocate a random size); ns per step. */
static double random_live(struct either *e, uint32_t live, uint32_t steps) {
  void **slot = malloc(live * sizeof *slot);
  rand_state = 12345 + live;
  for (uint32_t i = 0; i < live; i++)
    slot[i] = e_alloc(e, rand_range(16, 1024));
  double t0 = 0;
  for (uint32_t k = 0; k < live + steps; k++) {
    if (k == live)
      t0 = now_ns();
    uint32_t j = rand_range(0, live - 1);
    e_free(e, slot[j]);
    slot[j] = e_alloc(e, rand_range(16, 1024));
    if (slot[j] == NULL) {
      fprintf(stderr, "range-bound: ENOMEM in random-live\n");
      exit(2);
    }
    *(volatile unsigned char *)slot[j] = (unsigned char)k;
  }
  double t = (now_ns() - t0) / steps;
  free(slot);
  return t;
}

/* What such a summary costs when it must be given back. Once the heap
 * fills up, the summary's bytes belong to the callers (an empty heap of
 * len bytes serves alloc(len - 80), and the summary may cost no
 * utilisation), so the one alloc that needs them must either build, from
 * the tags, an index that takes no room of its own, or do without one and
 * walk the tags; and a later free must build the summary again. Measured
 * on the random-live heaps of LIVE blocks in LEN bytes at R = 1024: a
 * rebuild of the summary from the tags (the walk any such rebuild makes)
 * and a first fit by the tag walk alone, for the largest free block,
 * beside one random-live step. */
static void give_back_cost(uint32_t live, uint64_t len, int reps) {
  enum { R = 1024 };
  struct ranges g;
  struct either e = {NULL, &g};
  ranges_init(&g, len, R);
  double step = random_live(&e, live, 1000000);
  uint64_t n = ranges_count(&g), blocks = 0;
  for (uint64_t b = SHH_FIRST; b < len; b += shh_tag_size(tag_at(&g, b)))
    blocks++;
  uint64_t *m = malloc(n * sizeof *m);
  uint16_t *f = malloc(n * sizeof *f);
  static double rebuild[MAX_REPS], walk[MAX_REPS];
  for (int rep = 0; rep < reps; rep++) {
    double t0 = now_ns();
    if (ranges_rebuild(&g, m, f) != 0)
      exit(1);
    rebuild[rep] = now_ns() - t0;
    t0 = now_ns();
    uint64_t b = walk_first_fit(&g, g.max[1]);
    walk[rep] = now_ns() - t0;
    if (b == 0) {
      fprintf(stderr, "range-bound: the tag walk missed the largest block\n");
      exit(1);
    }
  }
  if (ranges_check(&g) != 0)
    exit(1);
  double rb = median(rebuild, reps), wk = median(walk, reps);
  printf("%-6u %8llu %10llu %10.0f %12.0f %8.0f %12.0f %8.0f\n", (unsigned)live,
         (unsigned long long)(len >> 20), (unsigned long long)blocks, step, rb,
         rb / step, wk, wk / step);
  free(m);
  free(f);
  ranges_fini(&g);
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 3;
  if (reps < 1 || reps > MAX_REPS) {
    fprintf(stderr, "usage: shmheap-range-bound [REPS (1..%d)]\n", MAX_REPS);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (int k = 0; k < N_R; k++)
    if (same_policy(range_bytes[k], 0) != 0 ||
        same_policy(range_bytes[k], 1) != 0)
      return 1;
  static const struct {
    uint32_t live;
    uint64_t len;
  } sizes[2] = {{1000, 16 << 20}, {100000, 256 << 20}};
  static double shm[2][MAX_REPS], rng[2][N_R][MAX_REPS],
      ratio[2][N_R][MAX_REPS];
  for (int rep = 0; rep < reps; rep++) {
    for (int w = 0; w < 2; w++) {
      /* shmheap, then each R, in an order that rotates from one rep to the
       * next, as the CPU's speed drifts within a run */
      for (int o = 0; o <= N_R; o++) {
        int k = (o + rep) % (N_R + 1) - 1; /* -1: shmheap */
        if (k < 0) {
          struct either e = {heap_create(sizes[w].len), NULL};
          shm[w][rep] = random_live(&e, sizes[w].live, 1000000);
          shmheap_disconnect(e.heap);
          continue;
        }
        struct ranges g;
        struct either f = {NULL, &g};
        ranges_init(&g, sizes[w].len, range_bytes[k]);
        rng[w][k][rep] = random_live(&f, sizes[w].live, 1000000);
        if (g.bad != 0) {
          fprintf(stderr, "range-bound: %lu tags failed their check bits\n",
                  g.bad);
          return 1;
        }
        ranges_fini(&g);
      }
      for (int k = 0; k < N_R; k++)
        ratio[w][k][rep] = rng[w][k][rep] / shm[w][rep];
    }
    printf("rep %d/%d done\n", rep + 1, reps);
  }
  printf("\nrandom-live, ns per step, medians of %d reps; ratio: the median of "
         "the reps' range summary time / shmheap time\n",
         reps);
  printf("%-8s %-16s %-28s %-28s\n", "R bytes", "summary/heap",
         "1k: shmheap ranges ratio", "100k: shmheap ranges ratio");
  for (int k = 0; k < N_R; k++) {
    double m[2][3];
    for (int w = 0; w < 2; w++) {
      m[w][0] = median(shm[w], reps);
      m[w][1] = median(rng[w][k], reps);
      m[w][2] = median(ratio[w][k], reps);
    }
    printf("%-8u %5.2f%%          %7.1f %7.1f %5.2f        %7.1f %7.1f %5.2f\n",
           range_bytes[k],
           100.0 * (double)summary_bytes(sizes[1].len, range_bytes[k]) /
               (double)sizes[1].len,
           m[0][0], m[0][1], m[0][2], m[1][0], m[1][1], m[1][2]);
  }
  printf("\ngiving the summary back at R = 1024: a rebuild from the tags, or "
         "a first fit by the tag walk alone,\nin ns and in random-live "
         "steps (medians of %d)\n",
         reps);
  printf("%-6s %8s %10s %10s %12s %8s %12s %8s\n", "live", "heap MiB", "blocks",
         "step ns", "rebuild ns", "steps", "walk ns", "steps");
  for (int w = 0; w < 2; w++)
    give_back_cost(sizes[w].live, sizes[w].len, reps);
  return 0;
}

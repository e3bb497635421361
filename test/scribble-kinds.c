/* scribble-kinds.c: the one write of each kind a scribble trial makes
 * behind the library's back, described exactly so a spread can be
 * reproduced: write after free, a flipped bit or forged size in a live
 * block's tag, a random index field, an index link into a live block or to
 * another free block, a garbage lock word. No scribble touches a live
 * block's bytes (the test watches those).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block.h"
#include "scribble.h"
#include "shmheap.h"
#include "testutil.h"

const char *const kind_names[K_N] = {
    "none",        "write-after-free", "tag-bit",   "tag-size",
    "index-field", "link-live",        "link-free", "lock",
};

int collect_all(const struct shmheap_block *b, void *arg) {
  struct layout *l = arg;
  if (b->used ? l->nused == MAX_LIVE : l->nfree == MAX_FREE)
    return 1;
  struct blk x = {b->offset, b->size};
  if (b->used)
    l->used[l->nused++] = x;
  else
    l->fr[l->nfree++] = x;
  return 0;
}

static uint64_t ld64(const unsigned char *base, uint64_t off) {
  uint64_t v;
  memcpy(&v, base + off, 8);
  return v;
}

static void set_word(struct scribble *s, const unsigned char *base,
                     uint64_t off, uint64_t v) {
  s->off = off;
  s->len = 8;
  memcpy(s->old, base + off, 8);
  memcpy(s->val, &v, 8);
}

static const struct blk *pick(uint64_t *rng, const struct blk *a, unsigned n) {
  return &a[th_rand_below(rng, n)];
}

/* A live block's tag offset plus 16 * K: the block itself (K = 0) or a
 * tag-aligned offset inside its payload. */
static uint64_t into_live(uint64_t *rng, const struct blk *x) {
  return x->off + 16 * th_rand_below(rng, x->size / 16);
}

/* The value a write after free stores: zero, random, a live block's handle
 * or interior handle, or another free block's handle. */
static uint64_t waf_value(uint64_t *rng, const struct layout *l, uint64_t self,
                          const char **what) {
  const struct blk *x = pick(rng, l->used, l->nused);
  for (unsigned i = 0; x->off == self && i < l->nused; i++)
    x = &l->used[i];
  unsigned how = (unsigned)th_rand_below(rng, 5);
  if (x->off == self && (how == 2 || how == 3))
    how = 0; /* no live block but the one just freed */
  switch (how) {
  case 0:
    *what = "zero";
    return 0;
  case 1:
    *what = "random";
    return th_rand(rng);
  case 2:
    *what = "a live block's handle";
    return x->off + SHH_TAG;
  case 3:
    *what = "a live block's interior handle";
    return x->off + SHH_TAG + 8 * (1 + th_rand_below(rng, x->size / 8 - 2));
  default:
    for (unsigned i = 0; i < l->nfree; i++) {
      const struct blk *g = pick(rng, l->fr, l->nfree);
      if (g->off != self) {
        *what = "another free block's handle";
        return g->off + SHH_TAG;
      }
    }
    *what = "zero (no other free block)";
    return 0;
  }
}

static void scribble_waf(struct ctx *c, struct layout *l, struct scribble *s) {
  uint64_t *rng = &c->rng, blk;
  const char *how, *what;
  if (th_rand_below(rng, 2) == 0) {
    blk = pick(rng, l->fr, l->nfree)->off;
    how = "a free block";
  } else {
    /* the caller frees a live block and keeps writing through its pointer */
    unsigned i = (unsigned)th_rand_below(rng, c->m->n);
    blk = c->m->b[i].hdl - SHH_TAG;
    shmheap_free(c->mem, c->base + c->m->b[i].hdl);
    forget(c->m, i);
    how = "a block just freed";
  }
  unsigned w = (unsigned)th_rand_below(rng, 4);
  uint64_t v = waf_value(rng, l, blk, &what);
  set_word(s, c->base, blk + SHH_TAG + 8 * w, v);
  snprintf(s->what, sizeof s->what,
           "payload word %u of %s at %#" PRIx64 " := %s", w, how, blk, what);
}

static void scribble_tag_bit(struct ctx *c, struct layout *l,
                             struct scribble *s) {
  const struct blk *x = pick(&c->rng, l->used, l->nused);
  unsigned bit = (unsigned)th_rand_below(&c->rng, 64);
  set_word(s, c->base, x->off, ld64(c->base, x->off) ^ (1ull << bit));
  snprintf(s->what, sizeof s->what,
           "tag of live block %#" PRIx64 " (size %" PRIu64 "): bit %u flipped",
           x->off, x->size, bit);
}

/* A size a forged tag of X might carry, never X's own. */
static uint64_t forged_size(uint64_t *rng, const struct layout *l,
                            const struct blk *x, const char **what) {
  uint64_t end = x->off + x->size;
  switch (th_rand_below(rng, 6)) {
  case 0:
    for (unsigned i = 0; i < l->nused; i++)
      if (l->used[i].off == end) {
        *what = "spans the next (live) block";
        return x->size + l->used[i].size;
      }
    for (unsigned i = 0; i < l->nfree; i++)
      if (l->fr[i].off == end) {
        *what = "spans the next (free) block";
        return x->size + l->fr[i].size;
      }
    break;
  case 1:
    *what = "larger by a few granules";
    return x->size + 16 * (1 + th_rand_below(rng, 8));
  case 2:
    if (x->size > SHH_MIN_BLOCK) {
      *what = "smaller";
      return x->size -
             16 * (1 + th_rand_below(rng, (x->size - SHH_MIN_BLOCK) / 16));
    }
    break;
  case 3:
    *what = "reaches the heap's end";
    return HEAP_LEN - x->off;
  case 4: {
    const struct blk *y = pick(rng, l->used, l->nused);
    if (y->off > x->off + x->size) {
      *what = "reaches a later live block";
      return y->off - x->off;
    }
    break;
  }
  default:
    break;
  }
  *what = x->size == SHH_MIN_BLOCK ? "larger by one granule" : "the minimum";
  return x->size == SHH_MIN_BLOCK ? x->size + 16 : SHH_MIN_BLOCK;
}

static void scribble_tag_size(struct ctx *c, struct layout *l,
                              struct scribble *s) {
  uint64_t *rng = &c->rng;
  const struct blk *x = pick(rng, l->used, l->nused);
  uint64_t old = ld64(c->base, x->off);
  const char *what;
  uint64_t size = forged_size(rng, l, x, &what);
  int keep_flags = th_rand_below(rng, 2) == 0;
  int keep_check = th_rand_below(rng, 4) != 0;
  uint64_t flags = keep_flags ? old & SHH_F_MASK : th_rand_below(rng, 8);
  uint64_t check = keep_check ? old & ~SHH_LOW_MASK : 0;
  set_word(s, c->base, x->off, check | (size & SHH_SIZE_MASK) | flags);
  snprintf(s->what, sizeof s->what,
           "tag of live block %#" PRIx64 ": size %" PRIu64 " -> %" PRIu64
           " (%s), flags %s (%" PRIu64 "), check bits %s",
           x->off, x->size, size, what, keep_flags ? "kept" : "random", flags,
           keep_check ? "kept" : "zeroed");
}

static const struct {
  uint64_t off;
  const char *name;
} fields[] = {
    {SHH_N_LEFT, "left"},
    {SHH_N_LMAX, "lmax"},
    {SHH_N_RIGHT, "right"},
    {SHH_N_RMAX, "rmax"},
};

static void scribble_index_field(struct ctx *c, struct layout *l,
                                 struct scribble *s) {
  uint64_t *rng = &c->rng;
  const struct blk *f = pick(rng, l->fr, l->nfree);
  unsigned fi = (unsigned)th_rand_below(rng, 4);
  uint64_t old = ld64(c->base, f->off + fields[fi].off), v;
  const char *what;
  switch (th_rand_below(rng, 5)) {
  case 0:
    v = th_rand(rng);
    what = "random";
    break;
  case 1:
    v = th_rand_below(rng, 4096);
    what = "a small number";
    break;
  case 2:
    v = 16 * th_rand_below(rng, HEAP_LEN / 16) + SHH_BLOCK_PHASE;
    what = "a tag-aligned offset";
    break;
  case 3:
    v = old ^ (1ull << th_rand_below(rng, 64));
    what = "one bit flipped";
    break;
  default:
    v = 0;
    what = "zero";
    break;
  }
  if (v == old)
    v ^= 16;
  set_word(s, c->base, f->off + fields[fi].off, v);
  snprintf(s->what, sizeof s->what,
           "%s field of free block %#" PRIx64 " := %s (%#" PRIx64 ")",
           fields[fi].name, f->off, what, v);
}

static void scribble_link_live(struct ctx *c, struct layout *l,
                               struct scribble *s) {
  uint64_t *rng = &c->rng;
  const struct blk *f = pick(rng, l->fr, l->nfree);
  const struct blk *x = pick(rng, l->used, l->nused);
  unsigned fi = th_rand_below(rng, 2) ? 2 : 0; /* left or right */
  uint64_t v = into_live(rng, x);
  set_word(s, c->base, f->off + fields[fi].off, v);
  snprintf(s->what, sizeof s->what,
           "%s link of free block %#" PRIx64 " := %#" PRIx64
           " (live block %#" PRIx64 " + %" PRIu64 ")",
           fields[fi].name, f->off, v, x->off, v - x->off);
}

static void scribble_link_free(struct ctx *c, struct layout *l,
                               struct scribble *s) {
  uint64_t *rng = &c->rng;
  const struct blk *f = pick(rng, l->fr, l->nfree);
  const struct blk *g = f;
  while (g == f)
    g = pick(rng, l->fr, l->nfree);
  unsigned fi = th_rand_below(rng, 2) ? 2 : 0;
  set_word(s, c->base, f->off + fields[fi].off, g->off);
  snprintf(s->what, sizeof s->what,
           "%s link of free block %#" PRIx64 " := free block %#" PRIx64
           " (was %#" PRIx64 ")",
           fields[fi].name, f->off, g->off,
           ld64(c->base, f->off + fields[fi].off));
}

/* A thread id that no longer exists: a child that has been reaped. */
static pid_t dead_tid(void) {
  pid_t pid = fork();
  if (pid == 0)
    _exit(0);
  int st;
  while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  return pid;
}

/* Copies the lock word while the calling thread holds the lock (walk calls
 * its callback under the lock): a word exactly as the library writes it for
 * its owner. */
static int copy_lock_word(const struct shmheap_block *b, void *arg) {
  (void)b;
  struct ctx *c = arg;
  c->m->lock_copy = ld64(c->base, SHH_HDR_LOCK);
  return 1;
}

/* The word the library writes for an owner that then died: a child takes
 * the lock, copies the word and exits. */
static uint64_t dead_owner_word(struct ctx *c) {
  pid_t pid = fork();
  if (pid == 0)
    _exit(shmheap_walk(c->mem, copy_lock_word, c) == 1 ? 0 : 1);
  int st = 0;
  while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? c->m->lock_copy : 0;
}

/* Lock words name their owner's PID namespace (lock.h: bits 44..63). A
 * scribbled word of another namespace matches its check bits once in 4096
 * and then names an owner the library must wait for, as it waits for a
 * live holder it cannot see: a wait, not damage, and no test of it. So
 * every forged word here names this namespace: LOW (the thread id and the
 * flag bits, and random check bits if any) under this namespace's id. */
static uint64_t word_here(uint64_t low) {
  struct stat st;
  uint64_t ns = stat("/proc/self/ns/pid", &st) == 0 ? st.st_ino & 0xfffff : 0;
  return (low & ((1ull << 44) - 1)) | ns << 44;
}

/* The lock (lock.h): a 64-bit word whose low half holds the owner's thread
 * id, whose high half holds check bits and the owner's PID namespace, and 8
 * spare bytes. A caller's scribble cannot forge the check bits; a genuine
 * word of a dead owner is what a crash leaves. */
static void scribble_lock(struct ctx *c, struct layout *l, struct scribble *s) {
  (void)l;
  uint64_t *rng = &c->rng, w[2];
  memcpy(w, c->base + SHH_HDR_LOCK, 16);
  memcpy(s->old, w, 16);
  const char *what;
  switch (th_rand_below(rng, 7)) {
  case 0:
    w[0] = word_here(th_rand(rng));
    w[1] = th_rand(rng);
    what = "a random word and random spare bytes";
    break;
  case 1:
    w[0] = word_here(th_rand(rng));
    what = "a random word";
    break;
  case 2:
    w[1] = th_rand(rng);
    what = "random spare bytes";
    break;
  case 3:
    w[0] = word_here((uint32_t)dead_tid());
    what = "a dead thread id (no check bits)";
    break;
  case 4:
    w[0] = dead_owner_word(c);
    what = "the word a dead owner left (check bits valid)";
    break;
  case 5:
    w[0] = word_here((uint32_t)getpid());
    what = "the calling process's pid (no check bits)";
    s->solo = 1;
    break;
  default:
    w[0] = word_here((uint32_t)getpid() | 0x80000000u);
    what = "the calling process's pid with the waiters bit";
    s->solo = 1;
    break;
  }
  /* (solo: a word naming this live process whose zero check bits happen to
   * match, once in 4096, is a lock this process holds: its own calls are
   * refused with EDEADLK, and any other process would rightly wait.) */

  s->off = SHH_HDR_LOCK;
  s->len = 16;
  memcpy(s->val, w, 16);
  snprintf(s->what, sizeof s->what, "lock := %s", what);
}

static void scribble_none(struct ctx *c, struct layout *l, struct scribble *s) {
  (void)c;
  (void)l;
  s->len = 0;
  snprintf(s->what, sizeof s->what, "none");
}

const scribble_fn scribblers[K_N] = {
    scribble_none,      scribble_waf,         scribble_tag_bit,
    scribble_tag_size,  scribble_index_field, scribble_link_live,
    scribble_link_free, scribble_lock,
};

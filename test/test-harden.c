/* test-harden: the library writes only to memory it verified in the same
 * call, and a call that fails has changed nothing.
 *
 * Each case lays out a small heap whose blocks the test places exactly,
 * damages one word the way a caller bug would (a flipped tag bit, a stale
 * store through a freed pointer into an index link), and runs the call that
 * would act on the damage in a forked child, which connects by name. The
 * parent then compares every byte of the heap with its copy from before
 * the call: a refused call must leave all of them as they were, and the
 * live blocks' contents must be intact.
 */
#include "block.h"
#include "testutil.h"

enum { LEN = 64 * 1024 };

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

static uint64_t *tag_of(void *payload) {
  return (uint64_t *)(void *)((unsigned char *)payload - SHH_TAG);
}

/* A free block's index link on SIDE (< 0 left), by its old payload. */
static uint64_t *link_of(void *payload, int side) {
  uint64_t field = side < 0 ? SHH_N_LEFT : SHH_N_RIGHT;
  return (uint64_t *)(void *)((unsigned char *)payload - SHH_TAG + field);
}

static uint64_t block_off(struct heap *h, void *payload) {
  return (uint64_t)((unsigned char *)payload - (unsigned char *)h->base) -
         SHH_TAG;
}

static void *alloc_filled(struct heap *h, size_t sz, int byte) {
  void *p = shmheap_alloc(h->mem, sz);
  g_assert_nonnull(p);
  memset(p, byte, sz);
  return p;
}

static void expect_bytes(const void *p, size_t n, int byte) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != (unsigned char)byte)
      g_error("byte %zu of a live block is %#x, want %#x", i, b[i], byte);
}

/* What one child does to the heap, and what it must get back. */
enum op { OP_ALLOC, OP_FREE, OP_REALLOC };

struct act {
  const char *name; /* the heap */
  enum op op;
  uint64_t hdl; /* FREE, REALLOC: the object */
  size_t sz;    /* ALLOC, REALLOC */
  int want;     /* the errno the call must fail with */
};

/* In a child: connect and make the call; exit 0 only if it failed with the
 * errno wanted. */
static int act_child(void *arg) {
  const struct act *a = arg;
  shmheap_memory_handle mem = shmheap_connect(a->name);
  if (mem == NULL)
    return 10;
  void *p = shmheap_handle_to_ptr(mem, a->hdl), *q = NULL;
  errno = 0;
  switch (a->op) {
  case OP_ALLOC:
    q = shmheap_alloc(mem, a->sz);
    break;
  case OP_FREE:
    shmheap_free(mem, p);
    break;
  case OP_REALLOC:
    q = shmheap_realloc(mem, p, a->sz);
    break;
  }
  int e = errno;
  shmheap_disconnect(mem);
  if (q != NULL)
    return 11; /* the call succeeded on a damaged heap */
  return e == a->want ? 0 : 12;
}

/* Runs A in a child and checks that it was refused and that the heap's
 * bytes (the free index's root, and every block) are as they were. */
static void expect_refused_unchanged(struct heap *h, enum op op, void *obj,
                                     size_t sz, int want) {
  unsigned char *snap = g_malloc(h->len);
  memcpy(snap, h->base, h->len);
  struct act a = {
      h->name, op,
      obj ? shmheap_ptr_to_handle(h->mem, obj) : SHMHEAP_NULL_HANDLE, sz, want};
  int status = th_fork_run(act_child, &a, 20);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    g_error("op %d: child status %#x (10: connect, 11: the call succeeded, "
            "12: another errno)",
            (int)op, status);
  g_assert_true(memcmp(snap + SHH_HDR_ROOT, h->base + SHH_HDR_ROOT, 8) == 0);
  for (size_t i = SHH_FIRST; i < h->len; i++)
    if (snap[i] != (unsigned char)h->base[i])
      g_error("op %d: refused, yet byte %zu changed (%#x -> %#x)", (int)op, i,
              snap[i], (unsigned char)h->base[i]);
  g_free(snap);
}

static void expect_check_damaged(struct heap *h) {
  errno = 0;
  g_assert_cmpint(shmheap_check(h->mem), ==, -1);
  g_assert_cmpint(errno, ==, EUCLEAN);
}

/* ------------------------------------------------------------------------ */
/* /harden/flipped-tag                                                       */

/* X (a 64-byte block) has one size bit flipped so that its tag claims its
 * neighbour Y (128 bytes) as well: 64 ^ 128 = 192. The check bits no longer
 * match. No call may re-sign that tag; each that would must fail. */
enum { X_SZ = 56, Y_SZ = 120, SMALL = 40 };

static void flip_size_bit(void *x) {
  g_assert_cmpuint(*tag_of(x) & SHH_SIZE_MASK, ==, 64);
  *tag_of(x) ^= 128;
}

/* After the refused call: the damage is still there for check, X cannot be
 * freed, and nothing later hands out Y's bytes. */
static void after_flip(struct heap *h, void *x, unsigned char *y) {
  expect_check_damaged(h);
  errno = 0;
  shmheap_free(h->mem, x);
  g_assert_cmpint(errno, !=, 0);
  expect_check_damaged(h);
  for (int i = 0; i < 8; i++) {
    unsigned char *q = shmheap_alloc(h->mem, 100);
    if (q != NULL)
      g_assert_true(q + 100 <= y || q >= y + Y_SZ);
  }
  expect_bytes(y, Y_SZ, 0x59);
}

/* The heap of a flipped-tag case: [A] B X Y G, A only if LEAD, B freed if
 * FREE_B, then X's tag flipped. */
struct flipped {
  struct heap h;
  void *a, *b, *x;
  unsigned char *y;
};

static void flipped_setup(struct flipped *s, int lead, int free_b) {
  th_heap_open(&s->h, "harden", LEN);
  s->a = lead ? alloc_filled(&s->h, SMALL, 0x41) : NULL;
  s->b = alloc_filled(&s->h, SMALL, 0x42);
  s->x = alloc_filled(&s->h, X_SZ, 0x58);
  s->y = alloc_filled(&s->h, Y_SZ, 0x59);
  alloc_filled(&s->h, SMALL, 0x47);
  if (free_b)
    shmheap_free(s->h.mem, s->b);
  g_assert_cmpint(shmheap_check(s->h.mem), ==, 0);
  flip_size_bit(s->x);
  expect_check_damaged(&s->h);
}

/* Each call would rewrite X's tag (its PREV_FREE flag). */
enum flip_call { FLIP_ALLOC, FLIP_GROW, FLIP_FREE_BEFORE };

static void test_flipped_tag(gconstpointer data) {
  enum flip_call call = (enum flip_call)GPOINTER_TO_INT(data);
  struct flipped s;
  flipped_setup(&s, call == FLIP_GROW, call != FLIP_FREE_BEFORE);
  switch (call) {
  case FLIP_ALLOC: /* the lowest fit is B, taken whole */
    expect_refused_unchanged(&s.h, OP_ALLOC, NULL, SMALL, EUCLEAN);
    break;
  case FLIP_GROW: /* A grows in place over all of B */
    expect_refused_unchanged(&s.h, OP_REALLOC, s.a, 80, EUCLEAN);
    expect_bytes(s.a, SMALL, 0x41);
    break;
  case FLIP_FREE_BEFORE: /* B is freed */
    expect_refused_unchanged(&s.h, OP_FREE, s.b, 0, EUCLEAN);
    expect_bytes(s.b, SMALL, 0x42);
    break;
  }
  after_flip(&s.h, s.x, s.y);
  heap_close(&s.h);
}

/* Recovery after a lock owner died must not bless the flipped tag either:
 * it refuses the heap (EUCLEAN from then on) and leaves every block as it
 * found it. */
static int die_cb(const struct shmheap_block *b, void *arg) {
  (void)b, (void)arg;
  raise(SIGKILL);
  return 1;
}

static int die_holding_lock(void *arg) {
  shmheap_memory_handle mem = shmheap_connect(arg);
  if (mem == NULL)
    return 10;
  shmheap_walk(mem, die_cb, NULL);
  return 11; /* the walk returned without calling back */
}

static void test_flipped_tag_recover(void) {
  struct flipped s;
  flipped_setup(&s, 0, 1);
  unsigned char *snap = g_malloc(s.h.len);
  memcpy(snap, s.h.base, s.h.len);
  int status = th_fork_run(die_holding_lock, s.h.name, 20);
  g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  expect_check_damaged(&s.h);
  errno = 0;
  g_assert_null(shmheap_alloc(s.h.mem, SMALL));
  g_assert_cmpint(errno, ==, EUCLEAN);
  g_assert_true(
      memcmp(snap + SHH_FIRST, s.h.base + SHH_FIRST, s.h.len - SHH_FIRST) == 0);
  expect_bytes(s.y, Y_SZ, 0x59);
  g_free(snap);
  heap_close(&s.h);
}

/* ------------------------------------------------------------------------ */
/* /harden/index-link                                                        */

/* A freed block FD is the left child of the heap's tail (the root); a
 * store through a stale pointer to FD puts TARGET into FD's right link.
 * Freeing U, which lies right of FD, walks down through that link. */
enum { L_SZ = 256 };

static void link_case(uint64_t (*target)(struct heap *, void *, void *)) {
  struct heap h;
  th_heap_open(&h, "harden", LEN);
  alloc_filled(&h, SMALL, 0x41);
  void *fd = alloc_filled(&h, SMALL, 0x46);
  alloc_filled(&h, SMALL, 0x42);
  unsigned char *l = alloc_filled(&h, L_SZ, 0);
  void *u = alloc_filled(&h, SMALL, 0x55);
  alloc_filled(&h, SMALL, 0x43);
  shmheap_free(h.mem, fd);
  g_assert_cmpint(shmheap_check(h.mem), ==, 0);
  g_assert_cmpuint(*link_of(fd, 1), ==, 0);
  *link_of(fd, 1) = target(&h, fd, l);
  expect_check_damaged(&h);
  expect_refused_unchanged(&h, OP_FREE, u, 0, EUCLEAN);
  expect_bytes(l, L_SZ, 0);
  g_assert_cmpuint(shmheap_usable_size(h.mem, u), >=, SMALL);
  expect_check_damaged(&h);
  heap_close(&h);
}

/* a handle into L's payload, at a tag-aligned offset */
static uint64_t interior_of_live(struct heap *h, void *fd, void *l) {
  (void)fd;
  return shmheap_ptr_to_handle(h->mem, l) + 24;
}

/* L's own block: its tag verifies, but as a used block */
static uint64_t start_of_live(struct heap *h, void *fd, void *l) {
  (void)fd;
  return block_off(h, l);
}

/* FD itself: a link back up the tree */
static uint64_t self_link(struct heap *h, void *fd, void *l) {
  (void)l;
  return block_off(h, fd);
}

static void test_link_interior(void) {
  link_case(interior_of_live);
}

static void test_link_live_block(void) {
  link_case(start_of_live);
}

static void test_link_cycle(void) {
  link_case(self_link);
}

/* ------------------------------------------------------------------------ */
/* /harden/top                                                               */

/* The last block before the top is overrun by one word, over the top's
 * tag: alloc, which would carve the top, must say the heap is damaged
 * (not that it is full), and change nothing. */
static void test_top_overrun(void) {
  struct heap h;
  th_heap_open(&h, "harden", LEN);
  alloc_filled(&h, SMALL, 0x41);
  unsigned char *last = alloc_filled(&h, SMALL, 0x42);
  g_assert_cmpint(shmheap_check(h.mem), ==, 0);
  memset(last, 0x58, shmheap_usable_size(h.mem, last) + SHH_TAG);
  expect_check_damaged(&h);
  expect_refused_unchanged(&h, OP_ALLOC, NULL, SMALL, EUCLEAN);
  expect_check_damaged(&h);
  heap_close(&h);
}

/* A heap whose last block is allocated has no top, and is full, not
 * damaged, whatever that block's owner keeps in its last word: the footer
 * the top left there when it was taken whole, or anything else. */
static void test_top_taken(void) {
  struct heap h;
  th_heap_open(&h, "harden", LEN);
  void *a = alloc_filled(&h, SMALL, 0x41);
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(h.mem, &st), ==, 0);
  /* the top taken whole: its footer stays in the new block's last word */
  unsigned char *last = shmheap_alloc(h.mem, st.largest_free - SHH_TAG);
  g_assert_nonnull(last);
  g_assert_cmpint(shmheap_check(h.mem), ==, 0);
  uint64_t *word = (uint64_t *)(void *)(h.base + h.len - SHH_FOOTER);
  uint64_t stale = *word, top = block_off(&h, last);
  g_assert_cmpuint(stale & SHH_SIZE_MASK, ==, h.len - top);
  const uint64_t kept[] = {stale, 0, ~(uint64_t)0, h.len - top, stale ^ 1};
  for (size_t k = 0; k < G_N_ELEMENTS(kept); k++) {
    *word = kept[k];
    expect_refused_unchanged(&h, OP_ALLOC, NULL, SMALL, ENOMEM);
    g_assert_cmpint(shmheap_check(h.mem), ==, 0);
  }
  /* Footers that a process dying in mid-call can leave there: one that
   * points back to a free block ending well before the heap does, one to
   * the inside of the last block (its tag long since cleared, the owner's
   * data there now). Alloc walks to the last block and finds it allocated:
   * full, not damaged. */
  shmheap_free(h.mem, a);
  uint64_t fa = block_off(&h, a), inside = top + 64;
  memset(last + 64 - SHH_TAG, 0x5a, 64);
  const uint64_t left[] = {shh_tag_make(h.mem, fa, h.len - fa, 0),
                           shh_tag_make(h.mem, inside, h.len - inside, 0)};
  for (size_t k = 0; k < G_N_ELEMENTS(left); k++) {
    *word = left[k];
    expect_refused_unchanged(&h, OP_ALLOC, NULL, 1000, ENOMEM);
    g_assert_cmpint(shmheap_check(h.mem), ==, 0);
  }
  /* the first block's room is there again */
  void *b = shmheap_alloc(h.mem, SMALL);
  g_assert_true(b == a);
  heap_close(&h);
}

/* ------------------------------------------------------------------------ */
/* /harden/no-half-done                                                      */

/* The link that leads to the free block M is redirected to the live block
 * L, and L's payload (the caller's own bytes) is made to look like a node
 * whose right child is M: a path that only a check of every node on it
 * refuses. Each call below would find the damage only after its commit if
 * it checked the nodes as it wrote them. */
struct forged {
  struct heap h;
  void *u, *g, *m;
};

/* The word that links to the node OFF: a child link of its parent, or the
 * root. */
static uint64_t *link_to(struct heap *h, uint64_t off) {
  uint64_t *at = (uint64_t *)(void *)(h->base + SHH_HDR_ROOT);
  for (int depth = 0; *at != off; depth++) {
    g_assert_cmpint(depth, <, 64);
    g_assert_cmpuint(*at, !=, 0);
    uint64_t field = off < *at ? SHH_N_LEFT : SHH_N_RIGHT;
    at = (uint64_t *)(void *)(h->base + *at + field);
  }
  return at;
}

static void forge(struct forged *s) {
  struct heap *h = &s->h;
  void *spare[6];
  th_heap_open(h, "harden", LEN);
  alloc_filled(h, SMALL, 0x41);
  void *f1 = alloc_filled(h, SMALL, 0x46);
  alloc_filled(h, SMALL, 0x42);
  unsigned char *l = alloc_filled(h, L_SZ, 0);
  s->u = alloc_filled(h, 100, 0x55);
  s->g = alloc_filled(h, SMALL, 0x47);
  s->m = alloc_filled(h, 200, 0x4d);
  for (int i = 0; i < 6; i++) {
    alloc_filled(h, SMALL, 0x43);
    spare[i] = alloc_filled(h, SMALL, 0x53);
  }
  alloc_filled(h, SMALL, 0x44);
  shmheap_free(h->mem, f1);
  shmheap_free(h->mem, s->m);
  for (int i = 0; i < 6; i++)
    shmheap_free(h->mem, spare[i]);
  g_assert_cmpint(shmheap_check(h->mem), ==, 0);
  uint64_t *to_m = link_to(h, block_off(h, s->m));
  g_assert_true(to_m != (uint64_t *)(void *)(h->base + SHH_HDR_ROOT));
  *to_m = block_off(h, l);
  *link_of(l, 1) = block_off(h, s->m);
  expect_check_damaged(h);
}

static void test_free_half_done(void) {
  struct forged s;
  forge(&s);
  expect_refused_unchanged(&s.h, OP_FREE, s.u, 0, EUCLEAN);
  g_assert_cmpuint(shmheap_usable_size(s.h.mem, s.u), ==, 104);
  expect_bytes(s.u, 100, 0x55);
  heap_close(&s.h);
}

static void test_shrink_half_done(void) {
  struct forged s;
  forge(&s);
  expect_refused_unchanged(&s.h, OP_REALLOC, s.u, SMALL, EUCLEAN);
  g_assert_cmpuint(shmheap_usable_size(s.h.mem, s.u), ==, 104);
  heap_close(&s.h);
}

static void test_grow_half_done(void) {
  struct forged s;
  forge(&s);
  /* G (48 bytes) grows over part of M (208): a split, M's node moves */
  expect_refused_unchanged(&s.h, OP_REALLOC, s.g, 60, EUCLEAN);
  g_assert_cmpuint(shmheap_usable_size(s.h.mem, s.g), ==, 40);
  expect_bytes(s.g, SMALL, 0x47);
  heap_close(&s.h);
}

/* shmheap_check_detail names the first damaged block and what is wrong
 * there, and leaves OUT alone on a whole heap. */
static void test_check_detail(void) {
  struct heap h;
  th_heap_open(&h, "harden", 64u << 10);
  void *a = shmheap_alloc(h.mem, 100), *b = shmheap_alloc(h.mem, 100);
  g_assert_nonnull(a);
  g_assert_nonnull(b);
  struct shmheap_damage d = {12345, "untouched"};
  g_assert_cmpint(shmheap_check_detail(h.mem, &d), ==, 0);
  g_assert_cmpuint(d.offset, ==, 12345);
  g_assert_cmpstr(d.what, ==, "untouched");
  uint64_t boff = shmheap_ptr_to_handle(h.mem, b) - SHH_TAG;
  uint64_t *tag = (uint64_t *)(void *)((char *)h.base + boff);
  *tag ^= (uint64_t)1 << 60; /* a check bit */
  errno = 0;
  g_assert_cmpint(shmheap_check_detail(h.mem, &d), ==, -1);
  g_assert_cmpint(errno, ==, EUCLEAN);
  g_assert_cmpuint(d.offset, ==, boff);
  g_assert_nonnull(strstr(d.what, "check bits"));
  g_assert_cmpint(shmheap_check_detail(h.mem, NULL), ==, -1);
  *tag ^= (uint64_t)1 << 60;
  g_assert_cmpint(shmheap_check(h.mem), ==, 0);
  heap_close(&h);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  g_test_add_data_func("/harden/flipped-tag/alloc", GINT_TO_POINTER(FLIP_ALLOC),
                       test_flipped_tag);
  g_test_add_data_func("/harden/flipped-tag/grow", GINT_TO_POINTER(FLIP_GROW),
                       test_flipped_tag);
  g_test_add_data_func("/harden/flipped-tag/free-before",
                       GINT_TO_POINTER(FLIP_FREE_BEFORE), test_flipped_tag);
  g_test_add_func("/harden/flipped-tag/recover", test_flipped_tag_recover);
  g_test_add_func("/harden/index-link/interior", test_link_interior);
  g_test_add_func("/harden/index-link/live-block", test_link_live_block);
  g_test_add_func("/harden/index-link/cycle", test_link_cycle);
  g_test_add_func("/harden/no-half-done/free", test_free_half_done);
  g_test_add_func("/harden/no-half-done/shrink", test_shrink_half_done);
  g_test_add_func("/harden/no-half-done/grow", test_grow_half_done);
  g_test_add_func("/harden/top/overrun", test_top_overrun);
  g_test_add_func("/harden/top/taken", test_top_taken);
  g_test_add_func("/harden/check-detail", test_check_detail);
  return g_test_run();
}

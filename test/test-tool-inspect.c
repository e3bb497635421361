/* test-tool-inspect.c: the tool's commands that read one heap, and its
 * exit codes: info (text and JSON, against shmheap_stats), check (the
 * first bad offset of a tag damaged through shmheap_underlying), a heap
 * marked broken (1), no such heap (3), not a heap, another format and
 * another ABI (4), a lock held by a live process and a creator still
 * initialising (5).
 */
#include "test-tool.h"
#include "testutil.h"

#include <layout.h>

static void test_info(void) {
  char name[64];
  tool_name(name, sizeof name);
  shmheap_memory_handle mem = make_fragmented(name, 64 * 1024);
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(mem, &st), ==, 0);
  g_assert_cmpuint(st.used_blocks, ==, 2);
  g_assert_cmpuint(st.free_blocks, ==, 2);
  /* the freed middle object lies outside the largest free block */
  g_assert_cmpfloat(fragmentation(&st), >, 0.0);
  assert_info(name, &st);

  /* An empty heap is not fragmented; a full one has no free block. */
  shmheap_destroy(NULL, mem);
  mem = shmheap_create(name, 64 * 1024);
  g_assert_nonnull(mem);
  g_assert_cmpint(shmheap_stats(mem, &st), ==, 0);
  g_assert_cmpfloat(fragmentation(&st), ==, 0.0);
  assert_info(name, &st);
  g_assert_nonnull(shmheap_alloc(mem, 64 * 1024 - SHMHEAP_OVERHEAD));
  g_assert_cmpint(shmheap_stats(mem, &st), ==, 0);
  g_assert_cmpuint(st.free_blocks, ==, 0);
  assert_info(name, &st);
  shmheap_destroy(NULL, mem);
}

static void test_json_escaping(void) {
  char name[128];
  odd_name(name, sizeof name);
  shmheap_memory_handle mem = make_fragmented(name, 64 * 1024);
  char *want = json_form(name);
  const char *cmds[][3] = {{"info", "--json", NULL},
                           {"check", "--json", NULL},
                           {"map", "--runs", "--json"}};
  for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++) {
    struct run r = cmds[i][2]
                       ? tool(cmds[i][0], name, cmds[i][1], cmds[i][2], NULL)
                       : tool(cmds[i][0], name, cmds[i][1], NULL);
    g_assert_cmpint(r.code, ==, 0);
    GHashTable *j = json_parse(r.out);
    assert_json_str(j, "name", want);
    g_hash_table_unref(j);
    run_clear(&r);
  }
  struct run r = tool("ls", "--json", NULL);
  g_assert_cmpint(r.code, ==, 0);
  GHashTable *j = json_parse(r.out);
  int at = json_find(j, "", "name", want);
  g_assert_cmpint(at, >=, 0);
  char *p = jpath("", at, "state");
  assert_json_str(j, p, "ready");
  g_free(p);
  g_hash_table_unref(j);
  run_clear(&r);
  g_free(want);
  shmheap_destroy(NULL, mem);
}

/* Damages the tag of the heap's first block (at SHH_FIRST) as a stray
 * write would. */
static void damage_first_tag(shmheap_memory_handle mem) {
  unsigned char *base = shmheap_underlying(mem);
  g_assert_nonnull(base);
  memset(base + SHH_FIRST, 0xa5, SHH_TAG);
}

static void test_check(void) {
  char name[64];
  tool_name(name, sizeof name);
  shmheap_memory_handle mem = make_fragmented(name, 64 * 1024);

  struct run r = tool("check", name, NULL);
  g_assert_cmpint(r.code, ==, 0);
  char *want = g_strdup_printf("%s: ok\n", name);
  g_assert_cmpstr(r.out, ==, want);
  g_free(want);
  g_assert_cmpstr(r.err, ==, "");
  run_clear(&r);
  r = tool("check", name, "--json", NULL);
  g_assert_cmpint(r.code, ==, 0);
  GHashTable *j = json_parse(r.out);
  g_assert_true(json_bool(j, "consistent"));
  g_assert_null(g_hash_table_lookup(j, "offset"));
  g_hash_table_unref(j);
  run_clear(&r);

  /* The library must see the damage first, or the test proves nothing;
   * what it reports is what the tool must print. */
  damage_first_tag(mem);
  struct shmheap_damage d;
  memset(&d, 0, sizeof d);
  g_assert_cmpint(shmheap_check_detail(mem, &d), ==, -1);
  g_assert_cmpint(errno, ==, EUCLEAN);
  const char *what = d.what[0] ? d.what : "damaged (no detail)";

  r = tool("check", name, NULL);
  g_assert_cmpint(r.code, ==, EXIT_DAMAGED);
  want =
      g_strdup_printf("%s: inconsistent at offset %" G_GUINT64_FORMAT ": %s\n",
                      name, (guint64)d.offset, what);
  g_assert_cmpstr(r.out, ==, want);
  g_free(want);
  run_clear(&r);
  r = tool("check", name, "--json", NULL);
  g_assert_cmpint(r.code, ==, EXIT_DAMAGED);
  j = json_parse(r.out);
  assert_json_str(j, "name", name);
  g_assert_false(json_bool(j, "consistent"));
  g_assert_cmpuint(json_u64(j, "offset"), ==, d.offset);
  assert_json_str(j, "what", what);
  g_hash_table_unref(j);
  run_clear(&r);

  /* The other commands that need a sound heap say it is damaged. */
  const char *cmds[] = {"info", "map"};
  for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++) {
    r = tool(cmds[i], name, NULL);
    assert_error(&r, EXIT_DAMAGED, "damaged");
    run_clear(&r);
  }

  /* destroy removes a damaged heap too. */
  r = tool("destroy", name, NULL);
  g_assert_cmpint(r.code, ==, 0);
  run_clear(&r);
  g_assert_false(th_shm_exists(name));
  shmheap_disconnect(mem);
}

/* A heap marked broken: exit 1 from check (with a verdict) and from the
 * others; ls says "broken". */
static void test_broken(void) {
  char name[64];
  tool_name(name, sizeof name);
  shmheap_memory_handle mem = make_fragmented(name, 64 * 1024);
  poke_u16(mem, SHH_HDR_STATE, SHH_STATE_BROKEN);
  g_assert_null(shmheap_connect(name));
  g_assert_cmpint(errno, ==, EUCLEAN);

  struct run r = tool("check", name, "--json", NULL);
  g_assert_cmpint(r.code, ==, EXIT_DAMAGED);
  GHashTable *j = json_parse(r.out);
  g_assert_false(json_bool(j, "consistent"));
  assert_json_str(j, "what", "the heap is marked broken");
  g_hash_table_unref(j);
  run_clear(&r);
  r = tool("check", name, NULL);
  g_assert_cmpint(r.code, ==, EXIT_DAMAGED);
  g_assert_nonnull(strstr(r.out, "marked broken"));
  run_clear(&r);
  const char *cmds[] = {"info", "map", "names"};
  for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++) {
    r = tool(cmds[i], name, NULL);
    assert_error(&r, EXIT_DAMAGED, "marked broken");
    run_clear(&r);
  }
  shmheap_destroy(NULL, mem);
}

static void test_missing(void) {
  char name[64];
  tool_name(name, sizeof name);
  const char *cmds[] = {"info", "check", "map", "names", "destroy"};
  for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++) {
    struct run r = tool(cmds[i], name, NULL);
    char *want =
        g_strdup_printf("shmheap: %s: %s: no such heap\n", cmds[i], name);
    assert_error(&r, EXIT_NO_HEAP, NULL);
    g_assert_cmpstr(r.err, ==, want);
    g_free(want);
    run_clear(&r);
  }
  struct run r = tool("grow", name, "64K", NULL);
  assert_error(&r, EXIT_NO_HEAP, "no such heap");
  run_clear(&r);
  g_assert_false(th_shm_exists(name));
}

static void test_not_a_heap(void) {
  char name[64];
  tool_name(name, sizeof name);
  make_non_heap(name, 16384, 0x5a);
  const char *cmds[] = {"info", "check", "map", "names"};
  for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++) {
    struct run r = tool(cmds[i], name, NULL);
    assert_error(&r, EXIT_NOT_HEAP, "not a shmheap heap");
    run_clear(&r);
  }
  /* ls lists it as what it is... */
  struct run r = tool("ls", NULL);
  g_assert_cmpint(r.code, ==, 0);
  char *line = ls_line(r.out, name);
  g_assert_nonnull(line);
  g_assert_true(g_str_has_suffix(line, " not a heap"));
  g_free(line);
  run_clear(&r);
  assert_ls_state(name, "not a heap", 0);
  /* ...and nothing changed it by looking at it. */
  int fd = shm_open(name, O_RDONLY, 0);
  g_assert_cmpint(fd, >=, 0);
  unsigned char *p = mmap(NULL, 16384, PROT_READ, MAP_SHARED, fd, 0);
  g_assert_true(p != MAP_FAILED);
  for (size_t i = 0; i < 16384; i++)
    if (p[i] != 0x5a)
      g_error("byte %zu of a non-heap changed to %#x", i, p[i]);
  munmap(p, 16384);
  close(fd);
  /* destroy removes whatever has the name. */
  r = tool("destroy", name, NULL);
  g_assert_cmpint(r.code, ==, 0);
  run_clear(&r);
  g_assert_false(th_shm_exists(name));
}

/* Asserts that every command that opens NAME refuses it with exit 4 and a
 * message containing WANT. */
static void assert_not_opened(const char *name, const char *want) {
  const char *cmds[] = {"info", "check", "map", "names"};
  for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++) {
    struct run r = tool(cmds[i], name, NULL);
    assert_error(&r, EXIT_NOT_HEAP, want);
    run_clear(&r);
  }
}

/* Copies of a heap cut short, or with a page added: connect refuses both
 * (exit 4), and ls, which checks the sizes as connect does, calls neither
 * ready. A growable heap's object may be larger than its size. */
static void test_resized_copies(void) {
  char name[64], cut[64], added[64];
  tool_name(name, sizeof name);
  tool_name(cut, sizeof cut);
  tool_name(added, sizeof added);
  shmheap_memory_handle mem = shmheap_create(name, 64 * 1024);
  g_assert_nonnull(mem);
  const unsigned char *base = shmheap_underlying(mem);
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  const struct {
    const char *name;
    size_t len;
  } copies[] = {{cut, page}, {added, 64 * 1024 + page}};
  for (size_t i = 0; i < G_N_ELEMENTS(copies); i++) {
    int fd = shm_open(copies[i].name, O_CREAT | O_EXCL | O_RDWR, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, (off_t)copies[i].len), ==, 0);
    size_t n = copies[i].len < 64 * 1024 ? copies[i].len : 64 * 1024;
    g_assert_cmpint(pwrite(fd, base, n, 0), ==, (ssize_t)n);
    close(fd);
    g_assert_null(shmheap_connect(copies[i].name));
    g_assert_cmpint(errno, ==, EINVAL);
    assert_not_opened(copies[i].name, "not a shmheap heap");
    assert_ls_shows(copies[i].name, " not a heap", "not a heap", 0);
    g_assert_cmpint(shm_unlink(copies[i].name), ==, 0);
  }
  assert_ls_shows(name, " ready", "ready", SHMHEAP_FORMAT_VERSION);
  shmheap_destroy(NULL, mem);
}

/* NAME, made by another build (format or ABI), is refused by connect
 * (EPROTO) and by every command that opens it, with SAID in the message. */
static void assert_other_build(const char *name, const char *said) {
  g_assert_null(shmheap_connect(name));
  g_assert_cmpint(errno, ==, EPROTO);
  assert_not_opened(name, said);
}

/* A heap of another format version: exit 4; ls says which format. */
static void test_other_format(void) {
  char name[64];
  tool_name(name, sizeof name);
  shmheap_memory_handle mem = shmheap_create(name, 64 * 1024);
  g_assert_nonnull(mem);
  const unsigned other = SHMHEAP_FORMAT_VERSION + 97;
  poke_u16(mem, SHH_HDR_VERSION, other);
  assert_other_build(name, "another format version");
  char *want = g_strdup_printf(" format %u", other);
  assert_ls_shows(name, want, "other format", other);
  g_free(want);
  shmheap_destroy(NULL, mem);
}

/* A heap of this format made by a build with other pointers (4 bytes wide
 * where ours are 8, and the other way round): connect refuses it (EPROTO),
 * every command that opens it exits 4, and ls, which never connects, says
 * so instead of calling it ready. */
static void test_other_abi(void) {
  char name[64];
  tool_name(name, sizeof name);
  shmheap_memory_handle mem = shmheap_create(name, 64 * 1024);
  g_assert_nonnull(mem);
  assert_ls_state(name, "ready", SHMHEAP_FORMAT_VERSION);
  /* the low half holds the pointer width */
  poke_u16(mem, SHH_HDR_ABI, sizeof(void *) == 4 ? 8 : 4);
  assert_other_build(name, "another format version or ABI");
  assert_ls_shows(name, " other ABI", "other ABI", SHMHEAP_FORMAT_VERSION);
  /* a creator that has written the version but not yet the ABI: ls
   * calls that initialising, not another build's */
  poke_u16(mem, SHH_HDR_ABI, 0);
  poke_u16(mem, SHH_HDR_ABI + 2, 0);
  poke_u16(mem, SHH_HDR_STATE, SHH_STATE_INIT);
  assert_ls_shows(name, " initialising", "initialising",
                  SHMHEAP_FORMAT_VERSION);
  shmheap_destroy(NULL, mem);
}

/* A child that holds the heap's lock: it blocks inside shmheap_walk's
 * callback (which runs under the lock) after telling the parent through a
 * pipe. */
static int hold_fd = -1;

static int hold_block(const struct shmheap_block *b, void *arg) {
  (void)b;
  (void)arg;
  char c = 'L';
  if (th_write_all(hold_fd, &c, 1) != 0)
    _exit(3);
  for (;;)
    pause();
  return 0;
}

static int hold_lock(void *arg) {
  shmheap_memory_handle mem = shmheap_connect(arg);
  TH_CHILD_CHECK(mem != NULL);
  shmheap_walk(mem, hold_block, NULL);
  return 4; /* not reached */
}

static void test_busy(void) {
  char name[64];
  tool_name(name, sizeof name);
  struct run r = tool("create", name, "64K", NULL);
  g_assert_cmpint(r.code, ==, 0);
  run_clear(&r);

  int fds[2];
  g_assert_cmpint(pipe(fds), ==, 0);
  hold_fd = fds[1];
  pid_t pid = th_fork_start(hold_lock, name, 0);
  close(fds[1]);
  char c;
  g_assert_cmpint(th_read_all(fds[0], &c, 1), ==, 0);
  close(fds[0]);

  /* The lock is held by a live process: the heap is busy, not broken. The
   * commands that need the lock give up after a bounded wait with exit 5
   * instead of hanging; ls takes no lock and lists it as ready. */
  r = tool("info", name, NULL);
  assert_error(&r, EXIT_BUSY, "busy: another process has held the heap's lock");
  run_clear(&r);
  r = tool("check", name, "--json", NULL);
  assert_error(&r, EXIT_BUSY, "busy: another process has held the heap's lock");
  run_clear(&r);
  r = tool("ls", NULL);
  g_assert_cmpint(r.code, ==, 0);
  char *line = ls_line(r.out, name);
  g_assert_nonnull(line);
  g_assert_true(g_str_has_suffix(line, " ready"));
  g_free(line);
  run_clear(&r);

  /* Killed while holding it: the next locker recovers the heap. */
  g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
  int status = th_wait(pid);
  g_assert_true(WIFSIGNALED(status));
  r = tool("check", name, NULL);
  g_assert_cmpint(r.code, ==, 0);
  run_clear(&r);
  r = tool("info", name, NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_cmpuint(field_u64(r.out, "free_blocks"), ==, 1);
  run_clear(&r);
  g_assert_cmpint(shm_unlink(name), ==, 0);
}

/* An all-zero object looks like a heap whose creator has not finished: the
 * tool waits its bounded while, then says busy (exit 5). */
static void test_initialising(void) {
  char name[64];
  tool_name(name, sizeof name);
  make_non_heap(name, 8192, 0);
  struct run r = tool("info", name, NULL);
  assert_error(&r, EXIT_BUSY, "has not finished initialising");
  g_assert_nonnull(strstr(r.err, "shmheap destroy"));
  run_clear(&r);
  r = tool("destroy", name, NULL);
  g_assert_cmpint(r.code, ==, 0);
  run_clear(&r);
  g_assert_false(th_shm_exists(name));
}

void add_inspect_tests(void) {
  g_test_add_func("/tool/info", test_info);
  g_test_add_func("/tool/json-escaping", test_json_escaping);
  g_test_add_func("/tool/check", test_check);
  g_test_add_func("/tool/broken", test_broken);
  g_test_add_func("/tool/missing", test_missing);
  g_test_add_func("/tool/not-a-heap", test_not_a_heap);
  g_test_add_func("/tool/other-format", test_other_format);
  g_test_add_func("/tool/other-abi", test_other_abi);
  g_test_add_func("/tool/resized-copies", test_resized_copies);
  g_test_add_func("/tool/busy", test_busy);
  g_test_add_func("/tool/initialising", test_initialising);
}

/* Tests of the shmheap(1) tool, run as a real process: every command, its
 * output (text and --json) and its exit code, the errors on bad input,
 * --help everywhere, and the SVG map. The tool's path and version come from
 * the environment (SHMHEAP_TOOL, SHMHEAP_TOOL_VERSION), which the test
 * definition sets. Heaps are made and inspected through the library too, so
 * the tool's figures are compared with the library's own; JSON output is
 * parsed by python3 (always there where meson runs) and its fields are
 * compared one by one. Damage is made through shmheap_underlying at the
 * offsets of lib/layout.h.
 *
 * This file holds the command line (help, version, usage errors, names,
 * sizes, modes), create, destroy, grow and names; test-tool-inspect.c and
 * test-tool-map.c the rest, test-tool-util.c the helpers.
 */
#include "test-tool.h"
#include "testutil.h"

#include <layout.h>

static const char *const commands[] = {"create", "destroy", "grow", "info",
                                       "check",  "names",   "map",  "ls"};

static void test_version(void) {
  const char *version = g_getenv("SHMHEAP_TOOL_VERSION");
  g_assert_nonnull(version);
  const char *forms[] = {"--version", "-V"};
  for (size_t i = 0; i < G_N_ELEMENTS(forms); i++) {
    struct run r = tool(forms[i], NULL);
    g_assert_cmpint(r.code, ==, 0);
    char *want =
        g_strdup_printf("shmheap %s (library %s, heap format %d)\n", version,
                        shmheap_version_string(), SHMHEAP_FORMAT_VERSION);
    g_assert_cmpstr(r.out, ==, want);
    g_assert_cmpstr(r.err, ==, "");
    g_free(want);
    run_clear(&r);
  }
}

static void test_help(void) {
  const char *forms[] = {"--help", "-h", "help"};
  for (size_t f = 0; f < G_N_ELEMENTS(forms); f++) {
    struct run r = tool(forms[f], NULL);
    g_assert_cmpint(r.code, ==, 0);
    g_assert_true(g_str_has_prefix(r.out, "Usage: shmheap COMMAND"));
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
      char *line = g_strdup_printf("\n  %s", commands[i]);
      g_assert_nonnull(strstr(r.out, line));
      g_free(line);
    }
    g_assert_nonnull(strstr(r.out, "5 busy, 6 other error"));
    g_assert_cmpstr(r.err, ==, "");
    run_clear(&r);
  }

  /* Every command's own help, in both spellings. */
  for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
    char *want = g_strdup_printf("Usage: shmheap %s", commands[i]);
    struct run r = tool(commands[i], "--help", NULL);
    g_assert_cmpint(r.code, ==, 0);
    g_assert_true(g_str_has_prefix(r.out, want));
    g_assert_cmpstr(r.err, ==, "");
    run_clear(&r);
    r = tool("help", commands[i], NULL);
    g_assert_cmpint(r.code, ==, 0);
    g_assert_true(g_str_has_prefix(r.out, want));
    run_clear(&r);
    /* --help wins over missing or bad arguments. */
    r = tool(commands[i], "x", "-h", NULL);
    g_assert_cmpint(r.code, ==, 0);
    g_assert_true(g_str_has_prefix(r.out, want));
    run_clear(&r);
    g_free(want);
  }
}

static void test_usage_errors(void) {
  struct run r = tool(NULL);
  assert_error(&r, EXIT_USAGE, "missing command");
  run_clear(&r);
  r = tool("frobnicate", NULL);
  assert_error(&r, EXIT_USAGE, "unknown command 'frobnicate'");
  run_clear(&r);
  r = tool("--frobnicate", NULL);
  assert_error(&r, EXIT_USAGE, "unknown option");
  run_clear(&r);
  r = tool("help", "frobnicate", NULL);
  assert_error(&r, EXIT_USAGE, "unknown command");
  run_clear(&r);

  for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
    r = tool(commands[i], "--bogus", NULL);
    assert_error(&r, EXIT_USAGE, "unknown option '--bogus'");
    run_clear(&r);
    /* --help wins whatever else is on the line, even a bad option or an
     * option's missing value */
    const char *with_help[][3] = {{"--bogus", "--help", NULL},
                                  {"--mode", "--help", NULL}};
    for (size_t k = 0; k < G_N_ELEMENTS(with_help); k++) {
      r = tool(commands[i], with_help[k][0], with_help[k][1], NULL);
      g_assert_cmpint(r.code, ==, 0);
      g_assert_true(g_str_has_prefix(r.out, "Usage: shmheap "));
      g_assert_cmpstr(r.err, ==, "");
      run_clear(&r);
    }
  }
  /* a name with a newline in it does not split a message in two */
  r = tool("info", "/x\nshmheap: forged", NULL);
  assert_error(&r, EXIT_NO_HEAP, "/x?shmheap: forged: no such heap");
  g_assert_cmpint(strchr(r.err, '\n') - r.err, ==, (long)strlen(r.err) - 1);
  run_clear(&r);
  /* --json only where it is documented. */
  const char *no_json[] = {"create", "destroy", "grow"};
  for (size_t i = 0; i < G_N_ELEMENTS(no_json); i++) {
    r = tool(no_json[i], "--json", NULL);
    assert_error(&r, EXIT_USAGE, "unknown option '--json'");
    run_clear(&r);
  }
  const char *missing[] = {"create", "destroy", "grow", "info",
                           "check",  "names",   "map"};
  for (size_t i = 0; i < G_N_ELEMENTS(missing); i++) {
    r = tool(missing[i], NULL);
    assert_error(&r, EXIT_USAGE, "missing");
    run_clear(&r);
  }
  r = tool("info", "/a", "/b", NULL);
  assert_error(&r, EXIT_USAGE, "unexpected argument '/b'");
  run_clear(&r);
  r = tool("ls", "extra", NULL);
  assert_error(&r, EXIT_USAGE, "unexpected argument");
  run_clear(&r);
  r = tool("create", "/x", NULL);
  assert_error(&r, EXIT_USAGE, "missing NAME and SIZE");
  run_clear(&r);
  r = tool("grow", "/x", NULL);
  assert_error(&r, EXIT_USAGE, "missing NAME and SIZE");
  run_clear(&r);
  r = tool("create", "/x", "4096", "--mode", NULL);
  assert_error(&r, EXIT_USAGE, "needs a value");
  run_clear(&r);
  r = tool("map", "/x", "--width", "0", NULL);
  assert_error(&r, EXIT_USAGE, "bad width");
  run_clear(&r);
  r = tool("map", "/x", "--runs=1", NULL);
  assert_error(&r, EXIT_USAGE, "takes no value");
  run_clear(&r);
  r = tool("map", "/x", "--json", NULL);
  assert_error(&r, EXIT_USAGE, "--json needs --runs");
  run_clear(&r);
  r = tool("info", "/x", "--json=1", NULL);
  assert_error(&r, EXIT_USAGE, "takes no value");
  run_clear(&r);
}

/* One rule for names, the API's: a leading '/', no other '/'. */
static void test_names_rule(void) {
  const char *cmds[] = {"destroy", "info", "check", "names", "map"};
  for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++) {
    struct run r = tool(cmds[i], "jobs", NULL);
    assert_error(&r, EXIT_USAGE, "heap names start with '/': try /jobs");
    run_clear(&r);
  }
  struct run r = tool("create", "jobs", "64K", NULL);
  assert_error(&r, EXIT_USAGE, "heap names start with '/': try /jobs");
  run_clear(&r);
  r = tool("grow", "jobs", "64K", NULL);
  assert_error(&r, EXIT_USAGE, "heap names start with '/': try /jobs");
  run_clear(&r);

  const char *bad[] = {"/", "", "/a/b", "a/b", "//x", "/.", "/.."};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    r = tool("info", bad[i], NULL);
    assert_error(&r, EXIT_USAGE, "is not a heap name");
    g_assert_null(strstr(r.err, "try /"));
    run_clear(&r);
  }
  char *longname = g_strnfill(NAME_MAX + 1, 'x');
  char *slashed = g_strconcat("/", longname, NULL);
  r = tool("info", slashed, NULL);
  assert_error(&r, EXIT_USAGE, "is not a heap name");
  run_clear(&r);
  g_free(slashed);
  g_free(longname);

  /* The library agrees on every one of them. */
  const char *api_bad[] = {"jobs", "/", "", "/a/b", "a/b", "//x", "/.", "/.."};
  for (size_t i = 0; i < G_N_ELEMENTS(api_bad); i++) {
    g_assert_null(shmheap_connect(api_bad[i]));
    g_assert_cmpint(errno, ==, EINVAL);
  }
}

static void test_create_destroy(void) {
  char name[64];
  tool_name(name, sizeof name);

  struct run r = tool("create", name, "1M", NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_cmpstr(r.out, ==, "");
  g_assert_cmpstr(r.err, ==, "");
  run_clear(&r);
  g_assert_true(th_shm_exists(name));
  g_assert_cmpint(shm_mode(name), ==, 0600);

  /* The library sees an empty heap of that size. */
  shmheap_memory_handle mem = shmheap_connect(name);
  g_assert_nonnull(mem);
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(mem, &st), ==, 0);
  g_assert_cmpuint(st.size, ==, 1u << 20);
  g_assert_cmpuint(st.used_blocks, ==, 0);
  g_assert_cmpuint(st.free_blocks, ==, 1);
  g_assert_cmpuint(st.largest_free, ==, (1u << 20) - SHMHEAP_OVERHEAD);
  shmheap_disconnect(mem);

  /* The name is taken now; the heap is untouched. */
  r = tool("create", name, "64K", NULL);
  assert_error(&r, EXIT_ERROR, "already exists");
  run_clear(&r);
  mem = shmheap_connect(name);
  g_assert_nonnull(mem);
  g_assert_cmpint(shmheap_stats(mem, &st), ==, 0);
  g_assert_cmpuint(st.size, ==, 1u << 20);
  shmheap_disconnect(mem);

  r = tool("destroy", name, NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_cmpstr(r.out, ==, "");
  g_assert_cmpstr(r.err, ==, "");
  run_clear(&r);
  g_assert_false(th_shm_exists(name));

  r = tool("destroy", name, NULL);
  assert_error(&r, EXIT_NO_HEAP, "no such heap");
  run_clear(&r);

  /* Without the leading '/' nothing is made. */
  r = tool("create", name + 1, "8192", NULL);
  assert_error(&r, EXIT_USAGE, "heap names start with '/'");
  run_clear(&r);
  g_assert_false(th_shm_exists(name));
}

static void test_create_mode(void) {
  const struct {
    const char *opt, *val;
    mode_t want;
  } cases[] = {
      {"--mode", "0640", 0640},
      {"--mode=660", NULL, 0660},
      {"--mode", "0", 0},
      {"--mode", "777", 0777},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    char name[64];
    tool_name(name, sizeof name);
    struct run r =
        cases[i].val
            ? tool("create", cases[i].opt, cases[i].val, name, "4K", NULL)
            : tool("create", name, "4K", cases[i].opt, NULL);
    g_assert_cmpint(r.code, ==, 0);
    run_clear(&r);
    g_assert_cmpint(shm_mode(name), ==, cases[i].want);
    g_assert_cmpint(shm_unlink(name), ==, 0);
  }

  const char *bad[] = {"0800", "1000", "01777", "abc", "", "-1", "6 4"};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    char name[64];
    tool_name(name, sizeof name);
    struct run r = tool("create", name, "4096", "--mode", bad[i], NULL);
    assert_error(&r, EXIT_USAGE, "bad mode");
    run_clear(&r);
    g_assert_false(th_shm_exists(name));
  }
}

static void test_create_bad_size(void) {
  long page = sysconf(_SC_PAGESIZE);
  char *not_page = g_strdup_printf("%ld", page + 16);
  const struct {
    const char *size, *max, *want;
  } bad[] = {
      {"1000", NULL, "not a multiple of the page size"},
      {not_page, NULL, "not a multiple of the page size"},
      {"0", NULL, "must not be 0"},
      {"0K", NULL, "must not be 0"},
      {"abc", NULL, "bad size"},
      {"", NULL, "bad size"},
      {"12X", NULL, "bad size"},
      {"1.5M", NULL, "bad size"},
      {"-4096", NULL, "unknown option '-4096'"},
      {"4096 ", NULL, "bad size"},
      {"4KB2", NULL, "bad size"},
      {"99999999999999999999", NULL, "bad size"},
      {"99999999999999G", NULL, "bad size"},
      {"1048576G", NULL, "larger than 2^48"},
      {"64K", "32K", "less than SIZE"},
      {"64K", not_page, "bad maximum size"},
      {"64K", "0", "bad maximum size"},
      {"64K", "1048576G", "bad maximum size"},
      {"64K", "x", "bad maximum size"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    char name[64];
    tool_name(name, sizeof name);
    struct run r = bad[i].max ? tool("create", name, bad[i].size, "--max",
                                     bad[i].max, NULL)
                              : tool("create", name, bad[i].size, NULL);
    assert_error(&r, EXIT_USAGE, bad[i].want);
    g_assert_true(g_str_has_prefix(r.err, "shmheap: create: "));
    run_clear(&r);
    g_assert_false(th_shm_exists(name));
  }
  g_free(not_page);

  /* Every suffix spelling the help promises. */
  const struct {
    const char *size;
    guint64 bytes;
  } good[] = {{"8192", 8192},  {"8K", 8192},     {"8k", 8192},
              {"8KiB", 8192},  {"8KB", 8192},    {"1M", 1 << 20},
              {"1m", 1 << 20}, {"2MiB", 2 << 20}};
  for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
    char name[64];
    tool_name(name, sizeof name);
    struct run r = tool("create", name, good[i].size, NULL);
    g_assert_cmpint(r.code, ==, 0);
    run_clear(&r);
    r = tool("info", name, NULL);
    g_assert_cmpint(r.code, ==, 0);
    g_assert_cmpuint(field_u64(r.out, "size"), ==, good[i].bytes);
    run_clear(&r);
    g_assert_cmpint(shm_unlink(name), ==, 0);
  }
}

/* Growable heaps: create --max, grow, info's max_size. Skipped until the
 * library builds growth (it answers ENOSYS until then); the tool must then
 * fail cleanly with exit 6. */
static void test_grow(void) {
  char name[64];
  tool_name(name, sizeof name);
  shmheap_memory_handle probe =
      shmheap_create_growable(name, 64 * 1024, 1024 * 1024, 0600);
  if (!probe && errno == ENOSYS) {
    struct run r = tool("create", name, "64K", "--max", "1M", NULL);
    assert_error(&r, EXIT_ERROR, "not supported");
    run_clear(&r);
    g_assert_false(th_shm_exists(name));
    shmheap_memory_handle mem = shmheap_create(name, 64 * 1024);
    g_assert_nonnull(mem);
    r = tool("grow", name, "128K", NULL);
    assert_error(&r, EXIT_ERROR, "not supported");
    run_clear(&r);
    shmheap_destroy(NULL, mem);
    g_test_skip("growth/names not built");
    return;
  }
  g_assert_nonnull(probe);
  shmheap_destroy(NULL, probe);

  struct run r =
      tool("create", name, "64K", "--max", "1M", "--mode", "0640", NULL);
  g_assert_cmpint(r.code, ==, 0);
  run_clear(&r);
  g_assert_cmpint(shm_mode(name), ==, 0640);
  shmheap_memory_handle mem = shmheap_connect(name);
  g_assert_nonnull(mem);
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(mem, &st), ==, 0);
  g_assert_cmpuint(st.size, ==, 64 * 1024);
  g_assert_cmpuint(st.max_size, ==, 1024 * 1024);
  assert_info(name, &st);

  r = tool("grow", name, "256K", NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_cmpstr(r.out, ==, "");
  run_clear(&r);
  g_assert_cmpint(shmheap_stats(mem, &st), ==, 0);
  g_assert_cmpuint(st.size, ==, 256 * 1024);
  assert_info(name, &st);
  assert_ls_state(name, "ready", 0);

  r = tool("grow", name, "2M", NULL);
  assert_error(&r, EXIT_ERROR, "maximum size");
  run_clear(&r);
  r = tool("grow", name, "1000", NULL);
  assert_error(&r, EXIT_USAGE, "not a multiple of the page size");
  run_clear(&r);
  shmheap_destroy(NULL, mem);

  /* A heap made without --max cannot grow. */
  mem = shmheap_create(name, 64 * 1024);
  g_assert_nonnull(mem);
  r = tool("grow", name, "128K", NULL);
  assert_error(&r, EXIT_ERROR, "without --max");
  run_clear(&r);
  shmheap_destroy(NULL, mem);
}

/* Published names: `names` lists key, handle and size; info counts them.
 * Skipped until the library builds names (ENOSYS until then). */
static void test_names(void) {
  char name[64];
  tool_name(name, sizeof name);
  shmheap_memory_handle mem = make_fragmented(name, 64 * 1024);
  const char *keys[] = {"alpha", "b \"quoted\" \\ key", "z\tlast"};
  const size_t sizes[] = {100, 2000, 16};
  shmheap_object_handle hdl[3];
  for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
    void *p = shmheap_alloc(mem, sizes[i]);
    g_assert_nonnull(p);
    hdl[i] = shmheap_ptr_to_handle(mem, p);
    if (shmheap_publish(mem, keys[i], hdl[i]) != 0) {
      g_assert_cmpint(errno, ==, ENOSYS);
      struct run r = tool("names", name, NULL);
      assert_error(&r, EXIT_ERROR, "not supported");
      run_clear(&r);
      shmheap_destroy(NULL, mem);
      g_test_skip("growth/names not built");
      return;
    }
  }
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(mem, &st), ==, 0);
  g_assert_cmpuint(st.names, ==, 3);
  assert_info(name, &st);

  struct run r = tool("names", name, "--json", NULL);
  g_assert_cmpint(r.code, ==, 0);
  GHashTable *j = json_parse(r.out);
  g_assert_cmpuint(json_u64(j, "#"), ==, 3);
  for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
    int at = json_find(j, "", "key", keys[i]);
    g_assert_cmpint(at, >=, 0);
    char *p = jpath("", at, "handle");
    g_assert_cmpuint(json_u64(j, p), ==, hdl[i]);
    g_free(p);
    p = jpath("", at, "size");
    g_assert_cmpuint(
        json_u64(j, p), ==,
        shmheap_usable_size(mem, shmheap_handle_to_ptr(mem, hdl[i])));
    g_free(p);
  }
  g_hash_table_unref(j);
  run_clear(&r);

  r = tool("names", name, NULL);
  g_assert_cmpint(r.code, ==, 0);
  char *line = g_strdup_printf(
      "\n%-18" G_GUINT64_FORMAT " %-14zu alpha\n", (guint64)hdl[0],
      shmheap_usable_size(mem, shmheap_handle_to_ptr(mem, hdl[0])));
  g_assert_nonnull(strstr(r.out, line));
  g_free(line);
  g_assert_nonnull(strstr(r.out, " z?last\n"));
  run_clear(&r);
  shmheap_destroy(NULL, mem);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  tool_path = g_getenv("SHMHEAP_TOOL");
  if (!tool_path || !g_file_test(tool_path, G_FILE_TEST_IS_EXECUTABLE)) {
    g_printerr("SHMHEAP_TOOL must name the shmheap tool (it is '%s')\n",
               tool_path ? tool_path : "(unset)");
    return 1;
  }
  g_test_add_func("/tool/version", test_version);
  g_test_add_func("/tool/help", test_help);
  g_test_add_func("/tool/usage-errors", test_usage_errors);
  g_test_add_func("/tool/names-rule", test_names_rule);
  g_test_add_func("/tool/create-destroy", test_create_destroy);
  g_test_add_func("/tool/create-mode", test_create_mode);
  g_test_add_func("/tool/create-bad-size", test_create_bad_size);
  add_inspect_tests();
  add_map_tests();
  g_test_add_func("/tool/grow", test_grow);
  g_test_add_func("/tool/names", test_names);
  return g_test_run();
}

/* Tests of the shmheap(1) tool, run as a real process: every command, its
 * output and exit code, the errors on bad input, --help everywhere, and an
 * SVG map that parses as XML. The tool's path comes from the environment
 * variable SHMHEAP_TOOL, which the test definition sets. Heaps are made and
 * inspected through the library too, so the tool's figures are compared with
 * the library's own.
 */
#include "testutil.h"

#include <glib/gstdio.h>
#include <shmheap.h>

#include <stdarg.h>

enum { EXIT_INCONSISTENT = 1, EXIT_ERROR = 2 };

static const char *tool_path;

/* The result of one run of the tool. */
struct run {
  int code; /* exit code */
  char *out;
  char *err;
};

static void run_clear(struct run *r) {
  g_free(r->out);
  g_free(r->err);
  memset(r, 0, sizeof *r);
}

/* Runs the tool with the NULL-terminated arguments and waits for it. The
 * tool must exit normally (not by a signal). */
static struct run tool(const char *first, ...) {
  GPtrArray *argv = g_ptr_array_new();
  g_ptr_array_add(argv, (gpointer)tool_path);
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a; a = va_arg(ap, const char *))
    g_ptr_array_add(argv, (gpointer)a);
  va_end(ap);
  g_ptr_array_add(argv, NULL);

  GString *cmdline = g_string_new("");
  for (guint i = 1; i + 1 < argv->len; i++)
    g_string_append_printf(cmdline, " %s", (const char *)argv->pdata[i]);

  struct run r = {0};
  int status = 0;
  GError *error = NULL;
  gboolean ok = g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_DEFAULT,
                             NULL, NULL, &r.out, &r.err, &status, &error);
  g_assert_no_error(error);
  g_assert_true(ok);
  if (WIFSIGNALED(status))
    g_error("shmheap%s: killed by signal %d", cmdline->str, WTERMSIG(status));
  g_assert_true(WIFEXITED(status));
  r.code = WEXITSTATUS(status);
  g_test_message("shmheap%s -> %d\nstdout:\n%sstderr:\n%s", cmdline->str,
                 r.code, r.out, r.err);
  g_string_free(cmdline, TRUE);
  g_ptr_array_free(argv, TRUE);
  return r;
}

/* Asserts an error run: exit code 2 (or CODE), nothing on stdout, and one
 * stderr message starting "shmheap: " that contains WANT (if not NULL). */
static void assert_error(struct run *r, int code, const char *want) {
  g_assert_cmpint(r->code, ==, code);
  g_assert_cmpstr(r->out, ==, "");
  g_assert_true(g_str_has_prefix(r->err, "shmheap: "));
  if (want && !strstr(r->err, want))
    g_error("stderr '%s' lacks '%s'", r->err, want);
}

/* The value of the line "KEY: value" in TEXT, as a number. */
static guint64 field_u64(const char *text, const char *key) {
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  for (char **l = lines; *l; l++) {
    if (g_str_has_prefix(*l, key) && (*l)[strlen(key)] == ':') {
      const char *v = *l + strlen(key) + 1;
      while (*v == ' ')
        v++;
      char *end = NULL;
      guint64 n = g_ascii_strtoull(v, &end, 10);
      g_assert_true(end != v);
      return n;
    }
  }
  g_error("no field '%s' in:\n%s", key, text);
  return 0;
}

static const char *field_str(const char *text, const char *key, char *buf,
                             size_t len) {
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  for (char **l = lines; *l; l++) {
    if (g_str_has_prefix(*l, key) && (*l)[strlen(key)] == ':') {
      const char *v = *l + strlen(key) + 1;
      while (*v == ' ')
        v++;
      g_strlcpy(buf, v, len);
      return buf;
    }
  }
  g_error("no field '%s' in:\n%s", key, text);
  return NULL;
}

static mode_t shm_mode(const char *name) {
  char *path = g_strconcat("/dev/shm", name, NULL);
  struct stat sb;
  g_assert_cmpint(stat(path, &sb), ==, 0);
  g_free(path);
  return sb.st_mode & 07777;
}

/* Makes a shared memory object NAME of LEN bytes that is not a heap: every
 * byte is BYTE. */
static void make_non_heap(const char *name, size_t len, int byte) {
  int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
  g_assert_cmpint(fd, >=, 0);
  g_assert_cmpint(ftruncate(fd, (off_t)len), ==, 0);
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  g_assert_true(p != MAP_FAILED);
  memset(p, byte, len);
  g_assert_cmpint(munmap(p, len), ==, 0);
  close(fd);
}

/* ------------------------------------------------------------------------ */

static const char *const commands[] = {"create", "destroy", "info",
                                       "check",  "map",     "ls"};

static void test_version(void) {
  struct run r = tool("--version", NULL);
  g_assert_cmpint(r.code, ==, 0);
  char *want = g_strdup_printf("shmheap %d.%d.%d (heap format %d)\n",
                               SHMHEAP_VERSION_MAJOR, SHMHEAP_VERSION_MINOR,
                               SHMHEAP_VERSION_MICRO, SHMHEAP_FORMAT_VERSION);
  g_assert_cmpstr(r.out, ==, want);
  g_assert_cmpstr(r.err, ==, "");
  g_free(want);
  run_clear(&r);
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
    r = tool(commands[i], "/x", "-h", NULL);
    g_assert_cmpint(r.code, ==, 0);
    g_assert_true(g_str_has_prefix(r.out, want));
    run_clear(&r);
    g_free(want);
  }
}

static void test_usage_errors(void) {
  struct run r = tool(NULL);
  assert_error(&r, EXIT_ERROR, "missing command");
  run_clear(&r);
  r = tool("frobnicate", NULL);
  assert_error(&r, EXIT_ERROR, "unknown command 'frobnicate'");
  run_clear(&r);
  r = tool("--frobnicate", NULL);
  assert_error(&r, EXIT_ERROR, "unknown option");
  run_clear(&r);
  r = tool("help", "frobnicate", NULL);
  assert_error(&r, EXIT_ERROR, "unknown command");
  run_clear(&r);

  for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
    r = tool(commands[i], "--bogus", NULL);
    assert_error(&r, EXIT_ERROR, "unknown option '--bogus'");
    run_clear(&r);
  }
  const char *missing[] = {"create", "destroy", "info", "check", "map"};
  for (size_t i = 0; i < G_N_ELEMENTS(missing); i++) {
    r = tool(missing[i], NULL);
    assert_error(&r, EXIT_ERROR, "missing");
    run_clear(&r);
  }
  r = tool("info", "/a", "/b", NULL);
  assert_error(&r, EXIT_ERROR, "unexpected argument '/b'");
  run_clear(&r);
  r = tool("ls", "extra", NULL);
  assert_error(&r, EXIT_ERROR, "unexpected argument");
  run_clear(&r);
  r = tool("create", "/x", NULL);
  assert_error(&r, EXIT_ERROR, "missing NAME and SIZE");
  run_clear(&r);
  r = tool("create", "/x", "4096", "--mode", NULL);
  assert_error(&r, EXIT_ERROR, "needs a value");
  run_clear(&r);
  r = tool("map", "/x", "--width", "0", NULL);
  assert_error(&r, EXIT_ERROR, "bad width");
  run_clear(&r);
  r = tool("map", "/x", "--runs=1", NULL);
  assert_error(&r, EXIT_ERROR, "takes no value");
  run_clear(&r);
  const char *bad_names[] = {"/", "", "/a/b", "a/b"};
  for (size_t i = 0; i < G_N_ELEMENTS(bad_names); i++) {
    r = tool("info", bad_names[i], NULL);
    assert_error(&r, EXIT_ERROR, "not a valid heap name");
    run_clear(&r);
  }
  char *longname = g_strnfill(NAME_MAX + 1, 'x');
  r = tool("info", longname, NULL);
  assert_error(&r, EXIT_ERROR, "not a valid heap name");
  run_clear(&r);
  g_free(longname);
}

static void test_create_destroy(void) {
  char name[64];
  th_shm_name(name, sizeof name, "tool");

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
  assert_error(&r, EXIT_ERROR, "no such heap");
  run_clear(&r);

  /* The leading '/' may be left out. */
  r = tool("create", name + 1, "8192", NULL);
  g_assert_cmpint(r.code, ==, 0);
  run_clear(&r);
  g_assert_true(th_shm_exists(name));
  r = tool("destroy", name + 1, NULL);
  g_assert_cmpint(r.code, ==, 0);
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
    th_shm_name(name, sizeof name, "tool");
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
    th_shm_name(name, sizeof name, "tool");
    struct run r = tool("create", name, "4096", "--mode", bad[i], NULL);
    assert_error(&r, EXIT_ERROR, "bad mode");
    run_clear(&r);
    g_assert_false(th_shm_exists(name));
  }
}

static void test_create_bad_size(void) {
  long page = sysconf(_SC_PAGESIZE);
  char *not_page = g_strdup_printf("%ld", page + 16);
  const struct {
    const char *size, *want;
  } bad[] = {
      {"1000", "not a multiple of the page size"},
      {not_page, "not a multiple of the page size"},
      {"0", "must not be 0"},
      {"0K", "must not be 0"},
      {"abc", "bad size"},
      {"", "bad size"},
      {"12X", "bad size"},
      {"1.5M", "bad size"},
      {"-4096", "unknown option '-4096'"},
      {"4096 ", "bad size"},
      {"4KB2", "bad size"},
      {"99999999999999999999", "bad size"},
      {"99999999999999G", "bad size"},
      {"1048576G", "larger than 2^48"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    char name[64];
    th_shm_name(name, sizeof name, "tool");
    struct run r = tool("create", name, bad[i].size, NULL);
    assert_error(&r, EXIT_ERROR, bad[i].want);
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
    th_shm_name(name, sizeof name, "tool");
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

/* Makes heap NAME of LEN bytes with three objects of which the middle one
 * is freed again, so that it has used and free blocks apart from each
 * other. Returns the connection. */
static shmheap_memory_handle make_fragmented(const char *name, size_t len) {
  shmheap_memory_handle mem = shmheap_create(name, len);
  g_assert_nonnull(mem);
  void *a = shmheap_alloc(mem, 1000);
  void *b = shmheap_alloc(mem, 3000);
  void *c = shmheap_alloc(mem, 500);
  g_assert_nonnull(a);
  g_assert_nonnull(b);
  g_assert_nonnull(c);
  shmheap_free(mem, b);
  g_assert_cmpint(shmheap_check(mem), ==, 0);
  return mem;
}

static void test_info(void) {
  char name[64];
  th_shm_name(name, sizeof name, "tool");
  shmheap_memory_handle mem = make_fragmented(name, 64 * 1024);
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(mem, &st), ==, 0);
  g_assert_cmpuint(st.used_blocks, ==, 2);
  g_assert_cmpuint(st.free_blocks, ==, 2);

  struct run r = tool("info", name, NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_cmpstr(r.err, ==, "");
  char buf[256];
  g_assert_cmpstr(field_str(r.out, "name", buf, sizeof buf), ==, name);
  g_assert_cmpuint(field_u64(r.out, "size"), ==, st.size);
  g_assert_cmpuint(field_u64(r.out, "used"), ==, st.used_bytes);
  g_assert_cmpuint(field_u64(r.out, "free"), ==, st.free_bytes);
  g_assert_cmpuint(field_u64(r.out, "largest request"), ==, st.largest_free);
  g_assert_cmpuint(field_u64(r.out, "largest free"), ==, st.largest_free + 8);
  g_assert_cmpuint(field_u64(r.out, "used blocks"), ==, st.used_blocks);
  g_assert_cmpuint(field_u64(r.out, "free blocks"), ==, st.free_blocks);
  g_assert_cmpuint(field_u64(r.out, "format version"), ==,
                   SHMHEAP_FORMAT_VERSION);
  /* Fragmentation: the share of free bytes outside the largest free block;
   * here the freed middle object is outside it. */
  double frag =
      100.0 * (1.0 - (double)(st.largest_free + 8) / (double)st.free_bytes);
  g_assert_cmpfloat(frag, >, 0.0);
  char *want = g_strdup_printf("%.1f%%", frag);
  g_assert_cmpstr(field_str(r.out, "fragmentation", buf, sizeof buf), ==, want);
  g_free(want);
  run_clear(&r);

  /* An empty heap is not fragmented; a full one has no free block. */
  shmheap_destroy(NULL, mem);
  mem = shmheap_create(name, 64 * 1024);
  g_assert_nonnull(mem);
  r = tool("info", name, NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_cmpstr(field_str(r.out, "fragmentation", buf, sizeof buf), ==,
                  "0.0%");
  g_assert_cmpuint(field_u64(r.out, "used blocks"), ==, 0);
  run_clear(&r);
  g_assert_nonnull(shmheap_alloc(mem, 64 * 1024 - SHMHEAP_OVERHEAD));
  r = tool("info", name, NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_cmpuint(field_u64(r.out, "free"), ==, 0);
  g_assert_cmpuint(field_u64(r.out, "free blocks"), ==, 0);
  g_assert_cmpuint(field_u64(r.out, "largest free"), ==, 0);
  g_assert_cmpstr(field_str(r.out, "fragmentation", buf, sizeof buf), ==,
                  "0.0%");
  run_clear(&r);
  shmheap_destroy(NULL, mem);
}

static void test_check(void) {
  char name[64];
  th_shm_name(name, sizeof name, "tool");
  shmheap_memory_handle mem = make_fragmented(name, 64 * 1024);

  struct run r = tool("check", name, NULL);
  g_assert_cmpint(r.code, ==, 0);
  char *want = g_strdup_printf("%s: ok\n", name);
  g_assert_cmpstr(r.out, ==, want);
  g_free(want);
  g_assert_cmpstr(r.err, ==, "");
  run_clear(&r);

  /* Damage a block's tag (the 8 bytes before its pointer) as a stray write
   * would; the library must see it first, or the test proves nothing. */
  unsigned char *p = shmheap_alloc(mem, 100);
  g_assert_nonnull(p);
  memset(p - 8, 0xa5, 8);
  g_assert_cmpint(shmheap_check(mem), ==, -1);
  g_assert_cmpint(errno, ==, EUCLEAN);

  r = tool("check", name, NULL);
  assert_error(&r, EXIT_INCONSISTENT, "inconsistent");
  run_clear(&r);
  r = tool("info", name, NULL);
  assert_error(&r, EXIT_ERROR, "damaged");
  run_clear(&r);
  r = tool("map", name, NULL);
  assert_error(&r, EXIT_ERROR, "damaged");
  run_clear(&r);

  /* destroy removes a damaged heap too. */
  r = tool("destroy", name, NULL);
  g_assert_cmpint(r.code, ==, 0);
  run_clear(&r);
  g_assert_false(th_shm_exists(name));
  shmheap_disconnect(mem);
}

static void test_missing(void) {
  char name[64];
  th_shm_name(name, sizeof name, "tool");
  const char *cmds[] = {"info", "check", "map", "destroy"};
  for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++) {
    struct run r = tool(cmds[i], name, NULL);
    char *want =
        g_strdup_printf("shmheap: %s: %s: no such heap\n", cmds[i], name);
    assert_error(&r, EXIT_ERROR, NULL);
    g_assert_cmpstr(r.err, ==, want);
    g_free(want);
    run_clear(&r);
  }
}

static void test_not_a_heap(void) {
  char name[64];
  th_shm_name(name, sizeof name, "tool");
  make_non_heap(name, 16384, 0x5a);
  const char *cmds[] = {"info", "check", "map"};
  for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++) {
    struct run r = tool(cmds[i], name, NULL);
    assert_error(&r, EXIT_ERROR, "not a shmheap heap");
    run_clear(&r);
  }
  /* ls does not list it... */
  struct run r = tool("ls", NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_null(strstr(r.out, name));
  run_clear(&r);
  /* ...and it was not changed by being looked at. */
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

/* The bar of `map` output: the text between the '|' of its second line. */
static char *bar_of(const char *out) {
  g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
  g_assert_nonnull(lines[0]);
  g_assert_nonnull(lines[1]);
  const char *l = lines[1];
  size_t n = strlen(l);
  g_assert_cmpuint(n, >=, 2);
  g_assert_cmpint(l[0], ==, '|');
  g_assert_cmpint(l[n - 1], ==, '|');
  return g_strndup(l + 1, n - 2);
}

static size_t count_char(const char *s, char c) {
  size_t n = 0;
  for (; *s; s++)
    n += *s == c;
  return n;
}

static void test_map_text(void) {
  char name[64];
  th_shm_name(name, sizeof name, "tool");
  const size_t len = 64 * 1024;
  shmheap_memory_handle mem = shmheap_create(name, len);
  g_assert_nonnull(mem);

  /* Empty: 16 cells of 4 KiB; the header makes the first one partly used. */
  struct run r = tool("map", name, "--width", "16", NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_cmpstr(r.err, ==, "");
  char *bar = bar_of(r.out);
  g_assert_cmpstr(bar, ==, "-...............");
  g_free(bar);
  g_assert_nonnull(strstr(r.out, "0 used blocks, 1 free blocks"));
  run_clear(&r);

  /* Full. */
  void *all = shmheap_alloc(mem, len - SHMHEAP_OVERHEAD);
  g_assert_nonnull(all);
  r = tool("map", name, "--width=16", NULL);
  g_assert_cmpint(r.code, ==, 0);
  bar = bar_of(r.out);
  g_assert_cmpstr(bar, ==, "################");
  g_free(bar);
  g_assert_nonnull(strstr(r.out, "1 used blocks, 0 free blocks"));
  run_clear(&r);
  shmheap_free(mem, all);

  /* Half: a block of exactly 32 KiB (request + 8-byte tag) fills 8 cells
   * wherever first fit puts it; of the rest one cell holds the header (or
   * the end of the block) and 7 are free. */
  void *half = shmheap_alloc(mem, len / 2 - 8);
  g_assert_nonnull(half);
  r = tool("map", "--width", "16", name, "--runs", NULL);
  g_assert_cmpint(r.code, ==, 0);
  bar = bar_of(r.out);
  g_assert_cmpuint(strlen(bar), ==, 16);
  g_assert_cmpuint(count_char(bar, '#'), ==, 8);
  g_assert_cmpuint(count_char(bar, '.'), ==, 7);
  g_assert_cmpuint(count_char(bar, '-'), ==, 1);
  g_free(bar);
  /* --runs lists the header and the two runs with their offsets. */
  char *line = g_strdup_printf("\n%-14" G_GUINT64_FORMAT " %-14d %-10d used\n",
                               (guint64)shmheap_ptr_to_handle(mem, half) - 8,
                               (int)(len / 2), 1);
  g_assert_nonnull(strstr(r.out, line));
  g_free(line);
  line = g_strdup_printf("\n%-14d %-14d %-10s header\n", 0,
                         SHMHEAP_OVERHEAD - 8, "-");
  g_assert_nonnull(strstr(r.out, line));
  g_free(line);
  run_clear(&r);

  /* The default bar has 64 cells; with many small blocks the cells that
   * mix used and free bytes show it. */
  for (int i = 0; i < 40; i++) {
    void *p = shmheap_alloc(mem, 200);
    g_assert_nonnull(p);
    if (i % 2)
      shmheap_free(mem, p);
  }
  r = tool("map", name, NULL);
  g_assert_cmpint(r.code, ==, 0);
  bar = bar_of(r.out);
  g_assert_cmpuint(strlen(bar), ==, 64);
  g_assert_cmpuint(count_char(bar, '#') + count_char(bar, '+') +
                       count_char(bar, '-') + count_char(bar, '.'),
                   ==, 64);
  g_assert_cmpuint(count_char(bar, '#'), >=, 32);
  g_free(bar);
  run_clear(&r);

  shmheap_destroy(NULL, mem);
}

/* What the SVG parser saw. */
struct svg_seen {
  int depth;
  char *root;
  int rects[4];     /* header, used, free, other */
  double width_sum; /* widths of header, used and free rects */
  GString *text;    /* all character data */
};

static void svg_start(GMarkupParseContext *ctx, const char *element,
                      const char **names, const char **values, gpointer data,
                      GError **error) {
  (void)ctx;
  (void)error;
  struct svg_seen *s = data;
  if (s->depth++ == 0)
    s->root = g_strdup(element);
  if (strcmp(element, "rect") != 0)
    return;
  const char *cls = NULL, *width = NULL;
  for (int i = 0; names[i]; i++) {
    if (strcmp(names[i], "class") == 0)
      cls = values[i];
    else if (strcmp(names[i], "width") == 0)
      width = values[i];
  }
  int k = !cls                         ? 3
          : strcmp(cls, "header") == 0 ? 0
          : strcmp(cls, "used") == 0   ? 1
          : strcmp(cls, "free") == 0   ? 2
                                       : 3;
  s->rects[k]++;
  if (k < 3) {
    g_assert_nonnull(width);
    s->width_sum += g_ascii_strtod(width, NULL);
  }
}

static void svg_end(GMarkupParseContext *ctx, const char *element,
                    gpointer data, GError **error) {
  (void)ctx;
  (void)element;
  (void)error;
  ((struct svg_seen *)data)->depth--;
}

static void svg_text(GMarkupParseContext *ctx, const char *text, gsize len,
                     gpointer data, GError **error) {
  (void)ctx;
  (void)error;
  g_string_append_len(((struct svg_seen *)data)->text, text, (gssize)len);
}

static void test_map_svg(void) {
  /* A name full of XML's special characters: the SVG must escape them. */
  char base[64], name[128];
  th_shm_name(base, sizeof base, "tool");
  g_snprintf(name, sizeof name, "%s-<&>\"'", base);
  (void)shm_unlink(name);
  shmheap_memory_handle mem = make_fragmented(name, 64 * 1024);

  GError *error = NULL;
  char *dir = g_dir_make_tmp("shmheap-tool-XXXXXX", &error);
  g_assert_no_error(error);
  char *svg = g_build_filename(dir, "map.svg", NULL);

  struct run r = tool("map", name, "--svg", svg, NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_cmpstr(r.err, ==, "");
  g_assert_true(g_str_has_prefix(r.out, name));
  run_clear(&r);

  char *xml = NULL;
  gsize xml_len = 0;
  g_assert_true(g_file_get_contents(svg, &xml, &xml_len, &error));
  g_assert_no_error(error);

  struct svg_seen seen = {0};
  seen.text = g_string_new("");
  GMarkupParser parser = {svg_start, svg_end, svg_text, NULL, NULL};
  GMarkupParseContext *ctx =
      g_markup_parse_context_new(&parser, 0, &seen, NULL);
  gboolean ok = g_markup_parse_context_parse(ctx, xml, (gssize)xml_len, &error);
  g_assert_no_error(error);
  g_assert_true(ok);
  ok = g_markup_parse_context_end_parse(ctx, &error);
  g_assert_no_error(error);
  g_assert_true(ok);
  g_markup_parse_context_free(ctx);

  g_assert_cmpstr(seen.root, ==, "svg");
  g_assert_cmpint(seen.depth, ==, 0);
  g_assert_cmpint(seen.rects[0], ==, 1);
  /* Two used and two free blocks, none adjacent to one of its kind. */
  g_assert_cmpint(seen.rects[1], ==, 2);
  g_assert_cmpint(seen.rects[2], ==, 2);
  /* The runs tile the whole bar (960 units wide), to rounding. */
  g_assert_cmpfloat(seen.width_sum, >, 959.9);
  g_assert_cmpfloat(seen.width_sum, <, 960.1);
  /* The name comes back intact after unescaping. */
  g_assert_nonnull(strstr(seen.text->str, name));
  g_string_free(seen.text, TRUE);
  g_free(seen.root);
  g_free(xml);

  /* An SVG file that cannot be written is an error. */
  char *bad = g_build_filename(dir, "no-such-dir", "map.svg", NULL);
  r = tool("map", name, "--svg", bad, NULL);
  g_assert_cmpint(r.code, ==, EXIT_ERROR);
  g_assert_true(g_str_has_prefix(r.err, "shmheap: map: "));
  run_clear(&r);
  g_free(bad);

  g_assert_cmpint(g_unlink(svg), ==, 0);
  g_assert_cmpint(g_rmdir(dir), ==, 0);
  g_free(svg);
  g_free(dir);
  shmheap_destroy(NULL, mem);
}

/* The size ls prints for NAME, or -1 when NAME is not listed. */
static gint64 ls_size(const char *out, const char *name) {
  g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
  for (char **l = lines; *l; l++) {
    g_auto(GStrv) f = g_strsplit_set(*l, " ", -1);
    char *w[3];
    int n = 0;
    for (char **p = f; *p && n < 3; p++)
      if (**p)
        w[n++] = *p;
    if (n >= 2 && strcmp(w[0], name) == 0)
      return (gint64)g_ascii_strtoull(w[1], NULL, 10);
  }
  return -1;
}

static void test_ls(void) {
  char a[64], b[64], junk[64];
  th_shm_name(a, sizeof a, "tool");
  th_shm_name(b, sizeof b, "tool");
  th_shm_name(junk, sizeof junk, "tool");

  struct run r = tool("create", a, "64K", NULL);
  g_assert_cmpint(r.code, ==, 0);
  run_clear(&r);
  r = tool("create", b, "1M", "--mode", "0640", NULL);
  g_assert_cmpint(r.code, ==, 0);
  run_clear(&r);
  make_non_heap(junk, 8192, 0x11);

  r = tool("ls", NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_cmpstr(r.err, ==, "");
  g_assert_cmpint(ls_size(r.out, a), ==, 64 * 1024);
  g_assert_cmpint(ls_size(r.out, b), ==, 1024 * 1024);
  g_assert_cmpint(ls_size(r.out, junk), ==, -1);
  /* Its mode is shown too. */
  g_assert_nonnull(strstr(strstr(r.out, b), "0640"));
  run_clear(&r);

  r = tool("destroy", a, NULL);
  g_assert_cmpint(r.code, ==, 0);
  run_clear(&r);
  r = tool("ls", NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_cmpint(ls_size(r.out, a), ==, -1);
  g_assert_cmpint(ls_size(r.out, b), ==, 1024 * 1024);
  run_clear(&r);

  g_assert_cmpint(shm_unlink(b), ==, 0);
  g_assert_cmpint(shm_unlink(junk), ==, 0);
}

/* A child that holds the heap's lock: it blocks inside shmheap_walk's
 * callback after telling the parent through a pipe. */
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
  th_shm_name(name, sizeof name, "tool");
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

  /* The lock is held by a live process: the heap is busy, not broken.
   * Connecting works; the commands that need the lock give up after a few
   * seconds with a message instead of hanging, and ls lists it as a heap. */
  r = tool("info", name, NULL);
  assert_error(&r, EXIT_ERROR, "busy");
  run_clear(&r);
  r = tool("check", name, NULL);
  assert_error(&r, EXIT_ERROR, "busy");
  run_clear(&r);
  r = tool("ls", NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_cmpint(ls_size(r.out, name), ==, 64 * 1024);
  g_assert_null(strstr(strstr(r.out, name), "(not ready"));
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
  g_assert_cmpuint(field_u64(r.out, "free blocks"), ==, 1);
  run_clear(&r);

  /* An all-zero object looks like a heap whose creator has not finished. */
  g_assert_cmpint(shm_unlink(name), ==, 0);
  make_non_heap(name, 8192, 0);
  r = tool("info", name, NULL);
  assert_error(&r, EXIT_ERROR, "not ready");
  g_assert_nonnull(strstr(r.err, "shmheap destroy"));
  run_clear(&r);
  r = tool("destroy", name, NULL);
  g_assert_cmpint(r.code, ==, 0);
  run_clear(&r);
  g_assert_false(th_shm_exists(name));
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
  g_test_add_func("/tool/create-destroy", test_create_destroy);
  g_test_add_func("/tool/create-mode", test_create_mode);
  g_test_add_func("/tool/create-bad-size", test_create_bad_size);
  g_test_add_func("/tool/info", test_info);
  g_test_add_func("/tool/check", test_check);
  g_test_add_func("/tool/missing", test_missing);
  g_test_add_func("/tool/not-a-heap", test_not_a_heap);
  g_test_add_func("/tool/map-text", test_map_text);
  g_test_add_func("/tool/map-svg", test_map_svg);
  g_test_add_func("/tool/ls", test_ls);
  g_test_add_func("/tool/busy", test_busy);
  return g_test_run();
}

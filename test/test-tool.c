/* Tests of the shmheap(1) tool, run as a real process: every command, its
 * output (text and --json) and its exit code, the errors on bad input,
 * --help everywhere, and the SVG map. The tool's path and version come from
 * the environment (SHMHEAP_TOOL, SHMHEAP_TOOL_VERSION), which the test
 * definition sets. Heaps are made and inspected through the library too, so
 * the tool's figures are compared with the library's own; JSON output is
 * parsed by python3 (always there where meson runs) and its fields are
 * compared one by one. Damage is made through shmheap_underlying at the
 * offsets of lib/layout.h.
 */
#include "testutil.h"

#include <glib/gstdio.h>
#include <layout.h>
#include <shmheap.h>

#include <pwd.h>
#include <stdarg.h>

/* The tool's exit codes (doc/shmheap.1). */
enum {
  EXIT_DAMAGED = 1,
  EXIT_USAGE = 2,
  EXIT_NO_HEAP = 3,
  EXIT_NOT_HEAP = 4,
  EXIT_BUSY = 5,
  EXIT_ERROR = 6,
};

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

/* Runs ARGV (NULL-terminated) and waits for it; it must exit normally. */
static struct run spawn(char **argv, GSpawnFlags flags) {
  struct run r = {0};
  int status = 0;
  GError *error = NULL;
  gboolean ok = g_spawn_sync(NULL, argv, NULL, flags, NULL, NULL, &r.out,
                             &r.err, &status, &error);
  g_assert_no_error(error);
  g_assert_true(ok);
  if (WIFSIGNALED(status))
    g_error("%s: killed by signal %d", argv[0], WTERMSIG(status));
  g_assert_true(WIFEXITED(status));
  r.code = WEXITSTATUS(status);
  return r;
}

/* Runs the tool with the NULL-terminated arguments and waits for it. */
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
  struct run r = spawn((char **)argv->pdata, G_SPAWN_DEFAULT);
  g_test_message("shmheap%s -> %d\nstdout:\n%.4000sstderr:\n%s", cmdline->str,
                 r.code, r.out, r.err);
  g_string_free(cmdline, TRUE);
  g_ptr_array_free(argv, TRUE);
  return r;
}

/* Asserts an error run: exit code CODE, nothing on stdout, and one stderr
 * message starting "shmheap: " that contains WANT (if not NULL). */
static void assert_error(struct run *r, int code, const char *want) {
  g_assert_cmpint(r->code, ==, code);
  g_assert_cmpstr(r->out, ==, "");
  g_assert_true(g_str_has_prefix(r->err, "shmheap: "));
  if (want && !strstr(r->err, want))
    g_error("stderr '%s' lacks '%s'", r->err, want);
}

/* The rest of the line "KEY: value" in TEXT. */
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

/* The value of the line "KEY: value" in TEXT, as a number. */
static guint64 field_u64(const char *text, const char *key) {
  char buf[256];
  const char *v = field_str(text, key, buf, sizeof buf);
  char *end = NULL;
  guint64 n = g_ascii_strtoull(v, &end, 10);
  g_assert_true(end != v);
  return n;
}

/* ------------------------------------------------------------------------ */
/* JSON, read by python3                                                     */

/* Flattens a JSON document into one line per scalar, "PATH=VALUE": PATH
 * joins keys and array indexes with '.', every array also gives "PATH.#"
 * (its length); strings come as 's' and their UTF-8 bytes in hex, numbers
 * as 'n' and their JSON text, and true, false and null as themselves. */
static const char flatten_py[] =
    "import json, sys\n"
    "def j(p, k): return p + '.' + k if p else k\n"
    "def w(p, v):\n"
    "    if isinstance(v, dict):\n"
    "        for k, x in v.items(): w(j(p, k), x)\n"
    "    elif isinstance(v, list):\n"
    "        print(j(p, '#') + '=n' + str(len(v)))\n"
    "        for i, x in enumerate(v): w(j(p, str(i)), x)\n"
    "    elif isinstance(v, str): print(p + '=s' + v.encode().hex())\n"
    "    elif isinstance(v, bool): print(p + '=' + json.dumps(v))\n"
    "    elif v is None: print(p + '=null')\n"
    "    else: print(p + '=n' + json.dumps(v))\n"
    "with open(sys.argv[1], encoding='utf-8') as f: w('', json.load(f))\n";

/* Parses TEXT as JSON (it must be valid) into a table PATH -> VALUE. */
static GHashTable *json_parse(const char *text) {
  GError *error = NULL;
  char *path = NULL;
  int fd = g_file_open_tmp("shmheap-tool-XXXXXX.json", &path, &error);
  g_assert_no_error(error);
  close(fd);
  g_assert_true(g_file_set_contents(path, text, -1, &error));
  g_assert_no_error(error);
  char *argv[] = {(char *)"python3", (char *)"-c", (char *)flatten_py, path,
                  NULL};
  struct run r = spawn(argv, G_SPAWN_SEARCH_PATH);
  if (r.code != 0)
    g_error("not valid JSON (%s):\n%.2000s", r.err, text);
  g_unlink(path);
  g_free(path);
  GHashTable *t =
      g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  g_auto(GStrv) lines = g_strsplit(r.out, "\n", -1);
  for (char **l = lines; *l; l++) {
    char *eq = strchr(*l, '=');
    if (!eq)
      continue;
    *eq = '\0';
    g_hash_table_insert(t, g_strdup(*l), g_strdup(eq + 1));
  }
  run_clear(&r);
  return t;
}

/* The raw value at PATH; the test fails when there is none. */
static const char *json_raw(GHashTable *t, const char *path) {
  const char *v = g_hash_table_lookup(t, path);
  if (!v)
    g_error("no JSON value at '%s'", path);
  return v;
}

static guint64 json_u64(GHashTable *t, const char *path) {
  const char *v = json_raw(t, path);
  g_assert_true(v[0] == 'n');
  char *end = NULL;
  guint64 n = g_ascii_strtoull(v + 1, &end, 10);
  g_assert_true(end != v + 1 && *end == '\0');
  return n;
}

static double json_num(GHashTable *t, const char *path) {
  const char *v = json_raw(t, path);
  g_assert_true(v[0] == 'n');
  return g_ascii_strtod(v + 1, NULL);
}

static gboolean json_bool(GHashTable *t, const char *path) {
  const char *v = json_raw(t, path);
  g_assert_true(strcmp(v, "true") == 0 || strcmp(v, "false") == 0);
  return strcmp(v, "true") == 0;
}

/* The string at PATH, decoded (g_free it). */
static char *json_str(GHashTable *t, const char *path) {
  const char *v = json_raw(t, path);
  g_assert_true(v[0] == 's');
  size_t n = strlen(v + 1) / 2;
  char *s = g_malloc(n + 1);
  for (size_t i = 0; i < n; i++)
    s[i] = (char)(g_ascii_xdigit_value(v[1 + 2 * i]) * 16 +
                  g_ascii_xdigit_value(v[2 + 2 * i]));
  s[n] = '\0';
  return s;
}

static void assert_json_str(GHashTable *t, const char *path, const char *want) {
  char *s = json_str(t, path);
  g_assert_cmpstr(s, ==, want);
  g_free(s);
}

/* The index of the element of the array at PATH whose KEY is the string
 * WANT, or -1. */
static int json_find(GHashTable *t, const char *path, const char *key,
                     const char *want) {
  char *p = g_strdup_printf("%s%s#", path, path[0] ? "." : "");
  guint64 n = json_u64(t, p);
  g_free(p);
  for (guint64 i = 0; i < n; i++) {
    p = g_strdup_printf("%s%s%" G_GUINT64_FORMAT ".%s", path,
                        path[0] ? "." : "", i, key);
    char *s = json_str(t, p);
    gboolean hit = strcmp(s, want) == 0;
    g_free(s);
    g_free(p);
    if (hit)
      return (int)i;
  }
  return -1;
}

/* "PREFIX.I.KEY" (g_free it). */
static char *jpath(const char *prefix, int i, const char *key) {
  return prefix[0] ? g_strdup_printf("%s.%d.%s", prefix, i, key)
                   : g_strdup_printf("%d.%s", i, key);
}

/* ------------------------------------------------------------------------ */
/* Heaps and other objects                                                   */

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

/* Writes the little-endian u16 V at OFF of the heap's header, as a stray
 * write (or another build) would. */
static void poke_u16(shmheap_memory_handle mem, size_t off, unsigned v) {
  unsigned char *base = shmheap_underlying(mem);
  g_assert_nonnull(base);
  base[off] = (unsigned char)(v & 0xff);
  base[off + 1] = (unsigned char)(v >> 8);
}

/* ------------------------------------------------------------------------ */

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
  }
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

  const char *bad[] = {"/", "", "/a/b", "a/b", "//x"};
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
  const char *api_bad[] = {"jobs", "/", "", "/a/b", "a/b", "//x"};
  for (size_t i = 0; i < G_N_ELEMENTS(api_bad); i++) {
    g_assert_null(shmheap_connect(api_bad[i]));
    g_assert_cmpint(errno, ==, EINVAL);
  }
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
    th_shm_name(name, sizeof name, "tool");
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

/* The fragmentation info reports: 1 - largest free block / free bytes. */
static double fragmentation(const struct shmheap_stats *st) {
  if (st->free_bytes == 0)
    return 0.0;
  return 1.0 - (double)(st->largest_free + SHH_TAG) / (double)st->free_bytes;
}

/* Asserts that info NAME, as text and as JSON, shows exactly ST. */
static void assert_info(const char *name, const struct shmheap_stats *st) {
  struct run r = tool("info", name, NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_cmpstr(r.err, ==, "");
  char buf[256];
  g_assert_cmpstr(field_str(r.out, "name", buf, sizeof buf), ==, name);
  g_assert_cmpuint(field_u64(r.out, "size"), ==, st->size);
  g_assert_cmpuint(field_u64(r.out, "max_size"), ==, st->max_size);
  g_assert_cmpuint(field_u64(r.out, "used_bytes"), ==, st->used_bytes);
  g_assert_cmpuint(field_u64(r.out, "free_bytes"), ==, st->free_bytes);
  g_assert_cmpuint(field_u64(r.out, "largest_free"), ==, st->largest_free);
  g_assert_nonnull(strstr(field_str(r.out, "largest_free", buf, sizeof buf),
                          "the largest request that fits now"));
  g_assert_cmpuint(field_u64(r.out, "used_blocks"), ==, st->used_blocks);
  g_assert_cmpuint(field_u64(r.out, "free_blocks"), ==, st->free_blocks);
  g_assert_cmpuint(field_u64(r.out, "format_version"), ==,
                   SHMHEAP_FORMAT_VERSION);
  g_assert_cmpuint(field_u64(r.out, "names"), ==, st->names);
  char *want = g_strdup_printf("%.1f%%", 100.0 * fragmentation(st));
  g_assert_true(g_str_has_prefix(
      field_str(r.out, "fragmentation", buf, sizeof buf), want));
  g_free(want);
  run_clear(&r);

  r = tool("info", name, "--json", NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_cmpstr(r.err, ==, "");
  GHashTable *j = json_parse(r.out);
  assert_json_str(j, "name", name);
  g_assert_cmpuint(json_u64(j, "size"), ==, st->size);
  g_assert_cmpuint(json_u64(j, "max_size"), ==, st->max_size);
  g_assert_cmpuint(json_u64(j, "used_bytes"), ==, st->used_bytes);
  g_assert_cmpuint(json_u64(j, "free_bytes"), ==, st->free_bytes);
  g_assert_cmpuint(json_u64(j, "largest_free"), ==, st->largest_free);
  g_assert_cmpuint(json_u64(j, "used_blocks"), ==, st->used_blocks);
  g_assert_cmpuint(json_u64(j, "free_blocks"), ==, st->free_blocks);
  g_assert_cmpuint(json_u64(j, "format_version"), ==, st->format_version);
  g_assert_cmpuint(json_u64(j, "names"), ==, st->names);
  g_assert_cmpfloat_with_epsilon(json_num(j, "fragmentation"),
                                 fragmentation(st), 1e-5);
  g_hash_table_unref(j);
  run_clear(&r);
}

static void test_info(void) {
  char name[64];
  th_shm_name(name, sizeof name, "tool");
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

/* A name full of JSON's and XML's special characters, and a byte that is
 * not UTF-8: output must escape them. Written into BUF. */
static const char *odd_name(char *buf, size_t len) {
  char base[64];
  th_shm_name(base, sizeof base, "tool");
  g_snprintf(buf, len, "%s-\"\\<&>'\t\x01\xff", base);
  (void)shm_unlink(buf);
  return buf;
}

/* The name as JSON output carries it: the byte that is not UTF-8 becomes
 * U+FFFD. */
static char *json_form(const char *name) {
  GString *s = g_string_new("");
  for (const char *p = name; *p; p++) {
    if ((unsigned char)*p == 0xff)
      g_string_append(s, "\xef\xbf\xbd");
    else
      g_string_append_c(s, *p);
  }
  return g_string_free(s, FALSE);
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
  th_shm_name(name, sizeof name, "tool");
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
  th_shm_name(name, sizeof name, "tool");
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
  th_shm_name(name, sizeof name, "tool");
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

/* Asserts that ls --json lists NAME with STATE (and FORMAT when not 0). */
static void assert_ls_state(const char *name, const char *state,
                            unsigned format) {
  struct run r = tool("ls", "--json", NULL);
  g_assert_cmpint(r.code, ==, 0);
  GHashTable *j = json_parse(r.out);
  int at = json_find(j, "", "name", name);
  g_assert_cmpint(at, >=, 0);
  char *p = jpath("", at, "state");
  assert_json_str(j, p, state);
  g_free(p);
  if (format) {
    p = jpath("", at, "format_version");
    g_assert_cmpuint(json_u64(j, p), ==, format);
    g_free(p);
  }
  g_hash_table_unref(j);
  run_clear(&r);
}

/* The line of text ls prints for NAME (g_free it), or NULL. */
static char *ls_line(const char *out, const char *name) {
  g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
  for (char **l = lines; *l; l++)
    if (g_str_has_prefix(*l, name) && (*l)[strlen(name)] == ' ')
      return g_strdup(*l);
  return NULL;
}

static void test_not_a_heap(void) {
  char name[64];
  th_shm_name(name, sizeof name, "tool");
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

/* A heap of another format version: exit 4; ls says which format. */
static void test_other_format(void) {
  char name[64];
  th_shm_name(name, sizeof name, "tool");
  shmheap_memory_handle mem = shmheap_create(name, 64 * 1024);
  g_assert_nonnull(mem);
  const unsigned other = SHMHEAP_FORMAT_VERSION + 97;
  poke_u16(mem, SHH_HDR_VERSION, other);
  g_assert_null(shmheap_connect(name));
  g_assert_cmpint(errno, ==, EPROTO);
  const char *cmds[] = {"info", "check", "map", "names"};
  for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++) {
    struct run r = tool(cmds[i], name, NULL);
    assert_error(&r, EXIT_NOT_HEAP, "another format version");
    run_clear(&r);
  }
  struct run r = tool("ls", NULL);
  g_assert_cmpint(r.code, ==, 0);
  char *line = ls_line(r.out, name);
  char *want = g_strdup_printf(" format %u", other);
  g_assert_nonnull(line);
  g_assert_true(g_str_has_suffix(line, want));
  g_free(want);
  g_free(line);
  run_clear(&r);
  assert_ls_state(name, "other format", other);
  shmheap_destroy(NULL, mem);
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

  /* Half: a block of exactly 32 KiB (request + tag) fills 8 cells wherever
   * first fit puts it; of the rest one cell holds the header (or the end of
   * the block) and 7 are free. */
  void *half = shmheap_alloc(mem, len / 2 - SHH_TAG);
  g_assert_nonnull(half);
  r = tool("map", "--width", "16", name, NULL);
  g_assert_cmpint(r.code, ==, 0);
  bar = bar_of(r.out);
  g_assert_cmpuint(strlen(bar), ==, 16);
  g_assert_cmpuint(count_char(bar, '#'), ==, 8);
  g_assert_cmpuint(count_char(bar, '.'), ==, 7);
  g_assert_cmpuint(count_char(bar, '-'), ==, 1);
  g_free(bar);
  run_clear(&r);
  /* --runs lists the header and the runs with their offsets, no bar. */
  r = tool("map", name, "--runs", NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_null(strchr(r.out, '|'));
  char *line = g_strdup_printf(
      "\n%-14" G_GUINT64_FORMAT " %-14d %-10d used\n",
      (guint64)shmheap_ptr_to_handle(mem, half) - SHH_TAG, (int)(len / 2), 1);
  g_assert_nonnull(strstr(r.out, line));
  g_free(line);
  line = g_strdup_printf("\n%-14d %-14d %-10s header\n", 0, SHH_FIRST, "-");
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

/* The runs the library's walk shows, merged as map merges them. */
struct walk_runs {
  GArray *off, *size, *blocks, *used;
};

static int walk_run(const struct shmheap_block *b, void *arg) {
  struct walk_runs *w = arg;
  guint n = w->off->len;
  guint64 used = b->used ? 1 : 0;
  if (n && g_array_index(w->used, guint64, n - 1) == used) {
    g_array_index(w->size, guint64, n - 1) += b->size;
    g_array_index(w->blocks, guint64, n - 1) += 1;
    return 0;
  }
  guint64 off = b->offset, size = b->size, one = 1;
  g_array_append_val(w->off, off);
  g_array_append_val(w->size, size);
  g_array_append_val(w->blocks, one);
  g_array_append_val(w->used, used);
  return 0;
}

static void test_map_runs_json(void) {
  char name[64];
  th_shm_name(name, sizeof name, "tool");
  shmheap_memory_handle mem = make_fragmented(name, 64 * 1024);
  void *objs[30];
  for (int i = 0; i < 30; i++) {
    objs[i] = shmheap_alloc(mem, 64 + 16 * (size_t)i);
    g_assert_nonnull(objs[i]);
  }
  for (int i = 0; i < 30; i += 3)
    shmheap_free(mem, objs[i]);
  struct walk_runs w;
  GArray **arrays[] = {&w.off, &w.size, &w.blocks, &w.used};
  for (size_t i = 0; i < G_N_ELEMENTS(arrays); i++)
    *arrays[i] = g_array_new(FALSE, FALSE, sizeof(guint64));
  g_assert_cmpint(shmheap_walk(mem, walk_run, &w), ==, 0);
  g_assert_cmpuint(w.off->len, >, 10);

  struct run r = tool("map", name, "--runs", "--json", NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_cmpstr(r.err, ==, "");
  GHashTable *j = json_parse(r.out);
  assert_json_str(j, "name", name);
  g_assert_cmpuint(json_u64(j, "size"), ==, 64 * 1024);
  g_assert_cmpuint(json_u64(j, "header"), ==, SHH_FIRST);
  g_assert_cmpuint(json_u64(j, "runs.#"), ==, w.off->len);
  for (guint i = 0; i < w.off->len; i++) {
    char *p = jpath("runs", (int)i, "offset");
    g_assert_cmpuint(json_u64(j, p), ==, g_array_index(w.off, guint64, i));
    g_free(p);
    p = jpath("runs", (int)i, "size");
    g_assert_cmpuint(json_u64(j, p), ==, g_array_index(w.size, guint64, i));
    g_free(p);
    p = jpath("runs", (int)i, "blocks");
    g_assert_cmpuint(json_u64(j, p), ==, g_array_index(w.blocks, guint64, i));
    g_free(p);
    p = jpath("runs", (int)i, "used");
    g_assert_cmpint(json_bool(j, p), ==,
                    g_array_index(w.used, guint64, i) != 0);
    g_free(p);
  }
  g_hash_table_unref(j);
  run_clear(&r);
  for (size_t i = 0; i < G_N_ELEMENTS(arrays); i++)
    g_array_free(*arrays[i], TRUE);
  shmheap_destroy(NULL, mem);
}

/* What the SVG parser saw. */
struct svg_seen {
  int depth;
  char *root;
  int rects[4];     /* header, used, free, other */
  double used_area; /* width * height of the used rects */
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
  const char *cls = NULL, *width = NULL, *height = NULL;
  for (int i = 0; names[i]; i++) {
    if (strcmp(names[i], "class") == 0)
      cls = values[i];
    else if (strcmp(names[i], "width") == 0)
      width = values[i];
    else if (strcmp(names[i], "height") == 0)
      height = values[i];
  }
  int k = !cls                         ? 3
          : strcmp(cls, "header") == 0 ? 0
          : strcmp(cls, "used") == 0   ? 1
          : strcmp(cls, "free") == 0   ? 2
                                       : 3;
  s->rects[k]++;
  if (k == 1) {
    g_assert_nonnull(width);
    g_assert_nonnull(height);
    s->used_area += g_ascii_strtod(width, NULL) * g_ascii_strtod(height, NULL);
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

/* Runs map --svg on NAME, parses the file (it must be well-formed SVG of
 * at most MAX_BYTES) and checks that the used rects cover the heap's used
 * share, header included. Fills SEEN (free its root and text). */
static void map_svg(const char *name, shmheap_memory_handle mem,
                    gsize max_bytes, struct svg_seen *seen) {
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
  g_test_message("%s: SVG of %zu bytes", name, (size_t)xml_len);
  g_assert_cmpuint(xml_len, <, max_bytes);
  g_assert_true(g_str_has_prefix(xml, "<svg"));
  g_assert_true(g_str_has_suffix(xml, "</svg>\n"));

  memset(seen, 0, sizeof *seen);
  seen->text = g_string_new("");
  GMarkupParser parser = {svg_start, svg_end, svg_text, NULL, NULL};
  GMarkupParseContext *ctx = g_markup_parse_context_new(&parser, 0, seen, NULL);
  gboolean ok = g_markup_parse_context_parse(ctx, xml, (gssize)xml_len, &error);
  g_assert_no_error(error);
  g_assert_true(ok);
  ok = g_markup_parse_context_end_parse(ctx, &error);
  g_assert_no_error(error);
  g_assert_true(ok);
  g_markup_parse_context_free(ctx);
  g_assert_cmpstr(seen->root, ==, "svg");
  g_assert_cmpint(seen->depth, ==, 0);
  g_assert_cmpint(seen->rects[0], ==, 1); /* the header */
  g_assert_cmpint(seen->rects[2], ==, 1); /* the free background */
  g_assert_cmpint(seen->rects[1], <=, 4096);

  /* The bar is 960 by 60 units; each cell's used rect is as tall as its
   * used share (rounded to 1/1000), so their area is the used share of the
   * bar's. */
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(mem, &st), ==, 0);
  double used = (double)(st.size - st.free_bytes) / (double)st.size;
  g_assert_cmpfloat_with_epsilon(seen->used_area / (960.0 * 60.0), used, 0.001);
  g_free(xml);
  g_assert_cmpint(g_unlink(svg), ==, 0);

  /* An SVG file that cannot be written is an error (not a usage error). */
  char *bad = g_build_filename(dir, "no-such-dir", "map.svg", NULL);
  r = tool("map", name, "--svg", bad, NULL);
  g_assert_cmpint(r.code, ==, EXIT_ERROR);
  g_assert_true(g_str_has_prefix(r.err, "shmheap: map: "));
  run_clear(&r);
  g_free(bad);
  g_assert_cmpint(g_rmdir(dir), ==, 0);
  g_free(svg);
  g_free(dir);
}

static void test_map_svg(void) {
  char name[128];
  odd_name(name, sizeof name);
  shmheap_memory_handle mem = make_fragmented(name, 64 * 1024);
  struct svg_seen seen;
  map_svg(name, mem, 2 * 1024 * 1024, &seen);
  g_assert_cmpint(seen.rects[1], >=, 2);
  /* The name comes back intact after unescaping, but for the control
   * character XML cannot carry and the byte that is not UTF-8. */
  char *want = json_form(name);
  *strchr(want, '\x01') = '?';
  g_assert_nonnull(strstr(seen.text->str, want));
  g_free(want);
  g_string_free(seen.text, TRUE);
  g_free(seen.root);
  shmheap_destroy(NULL, mem);
}

/* A heap of over 100k blocks still makes a small SVG: the map is binned. */
static void test_map_svg_large(void) {
  char name[64];
  th_shm_name(name, sizeof name, "tool");
  enum { OBJECTS = 140000 };
  shmheap_memory_handle mem = shmheap_create(name, 8u << 20);
  g_assert_nonnull(mem);
  void **p = g_new(void *, OBJECTS);
  for (int i = 0; i < OBJECTS; i++) {
    p[i] = shmheap_alloc(mem, 16);
    g_assert_nonnull(p[i]);
  }
  /* every other one freed: free blocks between used ones stay apart */
  for (int i = 0; i < OBJECTS; i += 2)
    shmheap_free(mem, p[i]);
  g_free(p);
  struct shmheap_stats st;
  g_assert_cmpint(shmheap_stats(mem, &st), ==, 0);
  g_assert_cmpuint(st.used_blocks + st.free_blocks, >=, 100000);
  struct svg_seen seen;
  map_svg(name, mem, 2 * 1024 * 1024, &seen);
  g_string_free(seen.text, TRUE);
  g_free(seen.root);
  shmheap_destroy(NULL, mem);
}

/* The little-endian u64 at OFF of NAME's header, read the way ls reads it
 * (read-only, at lib/layout.h's offsets). */
static guint64 header_u64(const char *name, size_t off) {
  int fd = shm_open(name, O_RDONLY, 0);
  g_assert_cmpint(fd, >=, 0);
  unsigned char b[8];
  g_assert_cmpint(pread(fd, b, sizeof b, (off_t)off), ==, (ssize_t)sizeof b);
  close(fd);
  guint64 v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | b[i];
  return v;
}

/* The maximum size ls must show for the heap NAME of LEN bytes, as text:
 * the header's max_len, or LEN when it is 0 (the heap cannot grow); "-"
 * for a value no heap of LEN bytes can have. */
static char *ls_max_size(const char *name, guint64 len) {
  guint64 max = header_u64(name, SHH_HDR_MAX_LEN);
  if (max == 0)
    max = len;
  if (max < len || max > SHH_MAX_LEN)
    return g_strdup("-");
  return g_strdup_printf("%" G_GUINT64_FORMAT, max);
}

/* Asserts ls's text line for NAME: SIZE, MAX (as text), MODE, STATE, and
 * this user as the owner. */
static void assert_ls_line(const char *out, const char *name, int size,
                           const char *max, unsigned mode, const char *state) {
  struct passwd *pw = getpwuid(geteuid());
  g_assert_nonnull(pw);
  char *want = g_strdup_printf("%-32s %14d %14s %04o %-10s %s", name, size, max,
                               mode, pw->pw_name, state);
  char *line = ls_line(out, name);
  g_assert_cmpstr(line, ==, want);
  g_free(line);
  g_free(want);
}

/* Asserts ls --json's entry for the ready heap NAME of SIZE bytes, mode
 * MODE, whose maximum size ls shows as MAX. */
static void assert_ls_json(GHashTable *j, const char *name, guint64 size,
                           const char *mode, const char *max) {
  struct passwd *pw = getpwuid(geteuid());
  g_assert_nonnull(pw);
  int at = json_find(j, "", "name", name);
  g_assert_cmpint(at, >=, 0);
  const struct {
    const char *key;
    guint64 num;
    const char *str;
  } fields[] = {
      {"size", size, NULL},
      {"format_version", SHMHEAP_FORMAT_VERSION, NULL},
      {"uid", geteuid(), NULL},
      {"state", 0, "ready"},
      {"owner", 0, pw->pw_name},
      {"mode", 0, mode},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(fields); i++) {
    char *p = jpath("", at, fields[i].key);
    if (fields[i].str)
      assert_json_str(j, p, fields[i].str);
    else
      g_assert_cmpuint(json_u64(j, p), ==, fields[i].num);
    g_free(p);
  }
  char *p = jpath("", at, "max_size");
  if (strcmp(max, "-") == 0)
    g_assert_cmpstr(json_raw(j, p), ==, "null");
  else
    g_assert_cmpuint(json_u64(j, p), ==, g_ascii_strtoull(max, NULL, 10));
  g_free(p);
  p = jpath("", at, "has_names");
  g_assert_cmpint(json_bool(j, p), ==, header_u64(name, SHH_HDR_NAMES) != 0);
  g_free(p);
}

static void test_ls(void) {
  char a[64], b[64], junk[64], zero[64];
  th_shm_name(a, sizeof a, "tool");
  th_shm_name(b, sizeof b, "tool");
  th_shm_name(junk, sizeof junk, "tool");
  th_shm_name(zero, sizeof zero, "tool");
  struct run r = tool("create", a, "64K", NULL);
  g_assert_cmpint(r.code, ==, 0);
  run_clear(&r);
  r = tool("create", b, "1M", "--mode", "0640", NULL);
  g_assert_cmpint(r.code, ==, 0);
  run_clear(&r);
  make_non_heap(junk, 8192, 0x11);
  make_non_heap(zero, 8192, 0);
  char *max_a = ls_max_size(a, 64 * 1024), *max_b = ls_max_size(b, 1 << 20);

  r = tool("ls", NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_cmpstr(r.err, ==, "");
  g_assert_true(g_str_has_prefix(r.out, "NAME "));
  assert_ls_line(r.out, a, 64 * 1024, max_a, 0600, "ready");
  assert_ls_line(r.out, b, 1024 * 1024, max_b, 0640, "ready");
  assert_ls_line(r.out, junk, 8192, "-", 0600, "not a heap");
  assert_ls_line(r.out, zero, 8192, "-", 0600, "initialising");
  run_clear(&r);

  r = tool("ls", "--json", NULL);
  g_assert_cmpint(r.code, ==, 0);
  GHashTable *j = json_parse(r.out);
  assert_ls_json(j, a, 64 * 1024, "0600", max_a);
  assert_ls_json(j, b, 1024 * 1024, "0640", max_b);
  int at = json_find(j, "", "name", junk);
  g_assert_cmpint(at, >=, 0);
  char *p = jpath("", at, "max_size");
  g_assert_cmpstr(json_raw(j, p), ==, "null");
  g_free(p);
  g_hash_table_unref(j);
  run_clear(&r);
  assert_ls_state(junk, "not a heap", 0);
  assert_ls_state(zero, "initialising", 0);

  r = tool("destroy", a, NULL);
  g_assert_cmpint(r.code, ==, 0);
  run_clear(&r);
  r = tool("ls", NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_null(ls_line(r.out, a));
  assert_ls_line(r.out, b, 1024 * 1024, max_b, 0640, "ready");
  run_clear(&r);
  g_free(max_a);
  g_free(max_b);
  g_assert_cmpint(shm_unlink(b), ==, 0);
  g_assert_cmpint(shm_unlink(junk), ==, 0);
  g_assert_cmpint(shm_unlink(zero), ==, 0);
}

/* Objects the user cannot read are listed as "no access" (root reads
 * everything, so this needs another user). */
static void test_ls_no_access(void) {
  if (geteuid() == 0) {
    g_test_skip("root can read every object");
    return;
  }
  char name[64];
  th_shm_name(name, sizeof name, "tool");
  shmheap_memory_handle mem = shmheap_create_mode(name, 64 * 1024, 0200);
  g_assert_nonnull(mem);
  struct run r = tool("ls", NULL);
  g_assert_cmpint(r.code, ==, 0);
  char *line = ls_line(r.out, name);
  g_assert_nonnull(line);
  g_assert_true(g_str_has_suffix(line, " no access"));
  g_free(line);
  run_clear(&r);
  assert_ls_state(name, "no access", 0);
  /* and a command that needs it says so: exit 6 */
  r = tool("info", name, NULL);
  assert_error(&r, EXIT_ERROR, "permission denied");
  run_clear(&r);
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

  /* The lock is held by a live process: the heap is busy, not broken. The
   * commands that need the lock give up after a bounded wait with exit 5
   * instead of hanging; ls takes no lock and lists it as ready. */
  r = tool("info", name, NULL);
  assert_error(&r, EXIT_BUSY, "busy");
  run_clear(&r);
  r = tool("check", name, "--json", NULL);
  assert_error(&r, EXIT_BUSY, "busy");
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
  th_shm_name(name, sizeof name, "tool");
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

/* Growable heaps: create --max, grow, info's max_size. Skipped until the
 * library builds growth (it answers ENOSYS until then); the tool must then
 * fail cleanly with exit 6. */
static void test_grow(void) {
  char name[64];
  th_shm_name(name, sizeof name, "tool");
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
  th_shm_name(name, sizeof name, "tool");
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
  g_test_add_func("/tool/info", test_info);
  g_test_add_func("/tool/json-escaping", test_json_escaping);
  g_test_add_func("/tool/check", test_check);
  g_test_add_func("/tool/broken", test_broken);
  g_test_add_func("/tool/missing", test_missing);
  g_test_add_func("/tool/not-a-heap", test_not_a_heap);
  g_test_add_func("/tool/other-format", test_other_format);
  g_test_add_func("/tool/map-text", test_map_text);
  g_test_add_func("/tool/map-runs-json", test_map_runs_json);
  g_test_add_func("/tool/map-svg", test_map_svg);
  g_test_add_func("/tool/map-svg-large", test_map_svg_large);
  g_test_add_func("/tool/ls", test_ls);
  g_test_add_func("/tool/ls-no-access", test_ls_no_access);
  g_test_add_func("/tool/busy", test_busy);
  g_test_add_func("/tool/initialising", test_initialising);
  g_test_add_func("/tool/grow", test_grow);
  g_test_add_func("/tool/names", test_names);
  return g_test_run();
}

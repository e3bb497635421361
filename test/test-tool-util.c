/* test-tool-util.c: the helpers of the tool's test (test-tool.h): running
 * the tool, reading its text and JSON output, and making heaps and other
 * objects for it to look at. Every shared memory name of the tool's test is
 * made here (tool_name), so that the one table testutil.h keeps in each
 * file that uses it holds them all and a failing test removes them all.
 */
#include "test-tool.h"
#include "testutil.h"

#include <glib/gstdio.h>
#include <layout.h>

#include <stdarg.h>

const char *tool_path;

char *tool_name(char *buf, size_t len) {
  return th_shm_name(buf, len, "tool");
}

void run_clear(struct run *r) {
  g_free(r->out);
  g_free(r->err);
  memset(r, 0, sizeof *r);
}

/* Runs ARGV (NULL-terminated) and waits for it; it must exit normally. */
struct run spawn(char **argv, GSpawnFlags flags) {
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
struct run tool(const char *first, ...) {
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
  /* TAP lines must be UTF-8: heap names in the output may not be */
  char *msg = g_strdup_printf("shmheap%s -> %d\nstdout:\n%.4000sstderr:\n%s",
                              cmdline->str, r.code, r.out, r.err);
  char *valid = g_utf8_make_valid(msg, -1);
  g_test_message("%s", valid);
  g_free(valid);
  g_free(msg);
  g_string_free(cmdline, TRUE);
  g_ptr_array_free(argv, TRUE);
  return r;
}

/* Asserts an error run: exit code CODE, nothing on stdout, and one stderr
 * message starting "shmheap: " that contains WANT (if not NULL). */
void assert_error(struct run *r, int code, const char *want) {
  g_assert_cmpint(r->code, ==, code);
  g_assert_cmpstr(r->out, ==, "");
  g_assert_true(g_str_has_prefix(r->err, "shmheap: "));
  if (want && !strstr(r->err, want))
    g_error("stderr '%s' lacks '%s'", r->err, want);
}

/* The rest of the line "KEY: value" in TEXT. */
const char *field_str(const char *text, const char *key, char *buf,
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
guint64 field_u64(const char *text, const char *key) {
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
GHashTable *json_parse(const char *text) {
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
const char *json_raw(GHashTable *t, const char *path) {
  const char *v = g_hash_table_lookup(t, path);
  if (!v)
    g_error("no JSON value at '%s'", path);
  return v;
}

guint64 json_u64(GHashTable *t, const char *path) {
  const char *v = json_raw(t, path);
  g_assert_true(v[0] == 'n');
  char *end = NULL;
  guint64 n = g_ascii_strtoull(v + 1, &end, 10);
  g_assert_true(end != v + 1 && *end == '\0');
  return n;
}

double json_num(GHashTable *t, const char *path) {
  const char *v = json_raw(t, path);
  g_assert_true(v[0] == 'n');
  return g_ascii_strtod(v + 1, NULL);
}

gboolean json_bool(GHashTable *t, const char *path) {
  const char *v = json_raw(t, path);
  g_assert_true(strcmp(v, "true") == 0 || strcmp(v, "false") == 0);
  return strcmp(v, "true") == 0;
}

/* The string at PATH, decoded (g_free it). */
char *json_str(GHashTable *t, const char *path) {
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

void assert_json_str(GHashTable *t, const char *path, const char *want) {
  char *s = json_str(t, path);
  g_assert_cmpstr(s, ==, want);
  g_free(s);
}

/* The index of the element of the array at PATH whose KEY is the string
 * WANT, or -1. */
int json_find(GHashTable *t, const char *path, const char *key,
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
char *jpath(const char *prefix, int i, const char *key) {
  return prefix[0] ? g_strdup_printf("%s.%d.%s", prefix, i, key)
                   : g_strdup_printf("%d.%s", i, key);
}

/* ------------------------------------------------------------------------ */
/* Heaps and other objects                                                   */

mode_t shm_mode(const char *name) {
  char *path = g_strconcat("/dev/shm", name, NULL);
  struct stat sb;
  g_assert_cmpint(stat(path, &sb), ==, 0);
  g_free(path);
  return sb.st_mode & 07777;
}

/* Makes a shared memory object NAME of LEN bytes that is not a heap: every
 * byte is BYTE. */
void make_non_heap(const char *name, size_t len, int byte) {
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
shmheap_memory_handle make_fragmented(const char *name, size_t len) {
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
void poke_u16(shmheap_memory_handle mem, size_t off, unsigned v) {
  unsigned char *base = shmheap_underlying(mem);
  g_assert_nonnull(base);
  base[off] = (unsigned char)(v & 0xff);
  base[off + 1] = (unsigned char)(v >> 8);
}

/* The fragmentation info reports: 1 - largest free block / free bytes. */
double fragmentation(const struct shmheap_stats *st) {
  if (st->free_bytes == 0)
    return 0.0;
  return 1.0 - (double)(st->largest_free + SHH_TAG) / (double)st->free_bytes;
}

/* Asserts that info NAME, as text and as JSON, shows exactly ST. */
void assert_info(const char *name, const struct shmheap_stats *st) {
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

/* A name full of JSON's and XML's special characters, and a byte that is
 * not UTF-8: output must escape them. Written into BUF. */
const char *odd_name(char *buf, size_t len) {
  /* the odd bytes in the area, so that the whole name is registered for
   * removal should the test die */
  return th_shm_name(buf, len, "tool-\"\\<&>'\t\x01\xff");
}

/* The name as text output shows it: control characters (C0, DEL, C1)
 * and each byte that is not UTF-8 become '?'. */
char *text_form(const char *name) {
  GString *s = g_string_new("");
  for (const char *p = name; *p;) {
    gunichar c = g_utf8_get_char_validated(p, -1);
    if (c == (gunichar)-1 || c == (gunichar)-2) {
      g_string_append_c(s, '?');
      p++;
      continue;
    }
    const char *next = g_utf8_next_char(p);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
      g_string_append_c(s, '?');
    else
      g_string_append_len(s, p, next - p);
    p = next;
  }
  return g_string_free(s, FALSE);
}

/* The name as JSON output carries it: the byte that is not UTF-8 becomes
 * U+FFFD. */
char *json_form(const char *name) {
  GString *s = g_string_new("");
  for (const char *p = name; *p; p++) {
    if ((unsigned char)*p == 0xff)
      g_string_append(s, "\xef\xbf\xbd");
    else
      g_string_append_c(s, *p);
  }
  return g_string_free(s, FALSE);
}

/* Asserts that ls --json lists NAME with STATE (and FORMAT when not 0). */
void assert_ls_state(const char *name, const char *state, unsigned format) {
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

void assert_ls_shows(const char *name, const char *suffix, const char *state,
                     unsigned format) {
  struct run r = tool("ls", NULL);
  g_assert_cmpint(r.code, ==, 0);
  char *line = ls_line(r.out, name);
  g_assert_nonnull(line);
  if (!g_str_has_suffix(line, suffix))
    g_error("ls shows %s as \"%s\", which does not end with \"%s\"", name, line,
            suffix);
  g_free(line);
  run_clear(&r);
  assert_ls_state(name, state, format);
}

/* The line of text ls prints for NAME (g_free it), or NULL. */
char *ls_line(const char *out, const char *name) {
  g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
  for (char **l = lines; *l; l++)
    if (g_str_has_prefix(*l, name) && (*l)[strlen(name)] == ' ')
      return g_strdup(*l);
  return NULL;
}

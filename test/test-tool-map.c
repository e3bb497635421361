/* test-tool-map.c: the tool's pictures and lists: map's text bar, its
 * --runs list (as JSON, against shmheap_walk), the binned SVG (well-formed,
 * its used area the heap's used share, small for 100k+ blocks), and ls,
 * which reads headers read-only at lib/layout.h's offsets and opens no
 * FIFO.
 */
#include "test-tool.h"
#include "testutil.h"

#include <glib/gstdio.h>
#include <layout.h>

#include <pwd.h>
#include <sys/stat.h>

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
  tool_name(name, sizeof name);
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
  tool_name(name, sizeof name);
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
  char *as_text = text_form(name);
  g_assert_true(g_str_has_prefix(r.out, as_text));
  g_free(as_text);
  run_clear(&r);

  char *xml = NULL;
  gsize xml_len = 0;
  g_assert_true(g_file_get_contents(svg, &xml, &xml_len, &error));
  g_assert_no_error(error);
  char *shown = g_utf8_make_valid(name, -1); /* TAP lines must be UTF-8 */
  g_test_message("%s: SVG of %zu bytes", shown, (size_t)xml_len);
  g_free(shown);
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
  g_assert_cmpstr(r.out, ==, ""); /* no half of the output */
  run_clear(&r);
  r = tool("map", name, "--runs", "--json", "--svg", bad, NULL);
  g_assert_cmpint(r.code, ==, EXIT_ERROR);
  g_assert_cmpstr(r.out, ==, "");
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
  tool_name(name, sizeof name);
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
 * MODE, that cannot grow and has no names. */
static void assert_ls_json(GHashTable *j, const char *name, guint64 size,
                           const char *mode) {
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
      {"max_size", size, NULL},
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
  char *p = jpath("", at, "has_names");
  g_assert_false(json_bool(j, p));
  g_free(p);
}

static void test_ls(void) {
  char a[64], b[64], junk[64], zero[64];
  tool_name(a, sizeof a);
  tool_name(b, sizeof b);
  tool_name(junk, sizeof junk);
  tool_name(zero, sizeof zero);
  struct run r = tool("create", a, "64K", NULL);
  g_assert_cmpint(r.code, ==, 0);
  run_clear(&r);
  r = tool("create", b, "1M", "--mode", "0640", NULL);
  g_assert_cmpint(r.code, ==, 0);
  run_clear(&r);
  make_non_heap(junk, 8192, 0x11);
  make_non_heap(zero, 8192, 0);

  r = tool("ls", NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_cmpstr(r.err, ==, "");
  g_assert_true(g_str_has_prefix(r.out, "NAME "));
  assert_ls_line(r.out, a, 64 * 1024, "65536", 0600, "ready");
  assert_ls_line(r.out, b, 1024 * 1024, "1048576", 0640, "ready");
  assert_ls_line(r.out, junk, 8192, "-", 0600, "not a heap");
  assert_ls_line(r.out, zero, 8192, "-", 0600, "initialising");
  run_clear(&r);

  r = tool("ls", "--json", NULL);
  g_assert_cmpint(r.code, ==, 0);
  GHashTable *j = json_parse(r.out);
  assert_ls_json(j, a, 64 * 1024, "0600");
  assert_ls_json(j, b, 1024 * 1024, "0640");
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
  assert_ls_line(r.out, b, 1024 * 1024, "1048576", 0640, "ready");
  run_clear(&r);
  g_assert_cmpint(shm_unlink(b), ==, 0);
  g_assert_cmpint(shm_unlink(junk), ==, 0);
  g_assert_cmpint(shm_unlink(zero), ==, 0);
}

/* ls leaves out what is not a regular file without opening it: a writer
 * waiting in open() for a FIFO's reader keeps waiting. */
static void test_ls_fifo(void) {
  char name[64], path[96];
  tool_name(name, sizeof name);
  snprintf(path, sizeof path, "/dev/shm%s", name);
  g_assert_cmpint(mkfifo(path, 0600), ==, 0);
  pid_t writer = fork();
  g_assert_cmpint(writer, >=, 0);
  if (writer == 0) {
    signal(SIGPIPE, SIG_DFL);
    int fd = open(path, O_WRONLY); /* waits for a reader */
    _exit(fd >= 0 ? 0 : 1);
  }
  g_usleep(50000); /* the writer is in open() */
  struct run r = tool("ls", NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_null(ls_line(r.out, name));
  run_clear(&r);
  g_usleep(50000);
  int status;
  g_assert_cmpint(waitpid(writer, &status, WNOHANG), ==, 0); /* still waits */
  int fd = open(path, O_RDONLY | O_NONBLOCK);                /* now let it go */
  g_assert_cmpint(fd, >=, 0);
  th_assert_child_ok(th_wait(writer));
  close(fd);
  g_assert_cmpint(unlink(path), ==, 0);
}

/* Names come from /dev/shm, where anyone may create one: in text output
 * their control characters show as '?', so that a name can neither add a
 * line nor send the terminal an escape sequence. */
static void assert_text_only(const struct run *r, int lines) {
  int n = 0;
  for (const char *p = r->out; *p; p++) {
    if (*p == '\n')
      n++;
    else
      g_assert_false((unsigned char)*p < 0x20 || *p == 0x7f);
  }
  g_assert_cmpint(n, ==, lines);
  g_assert_null(strstr(r->out, "\xc2\x9b"));
  g_assert_null(strchr(r->out, '\x9b'));
  g_assert_nonnull(strstr(r->out, "\xc3\xa9"));
}

static void test_text_controls(void) {
  char name[128], junk[128], path[160];
  /* C0 escapes, a newline, C1's CSI as UTF-8 and as one raw byte, and a
   * character that must pass: e acute */
  th_shm_name(name, sizeof name,
              "tool-\033]0;x\007\033[2J\nfake\xc2\x9b"
              "2J\x9b"
              "2J\xc3\xa9");
  th_shm_name(junk, sizeof junk, "tool-junk\nfake");
  g_snprintf(path, sizeof path, "/dev/shm%s", junk);
  shmheap_memory_handle mem = shmheap_create(name, 64 * 1024);
  g_assert_nonnull(mem);
  g_assert_true(g_file_set_contents(path, "hi", 2, NULL));
  char *shown = text_form(name), *junk_shown = text_form(junk);

  struct run r = tool("info", name, NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_nonnull(strstr(r.out, shown));
  assert_text_only(&r, 11); /* as many lines as for any heap */
  run_clear(&r);
  r = tool("check", name, NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_true(g_str_has_prefix(r.out, shown));
  assert_text_only(&r, 1);
  run_clear(&r);
  r = tool("map", name, NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_true(g_str_has_prefix(r.out, shown));
  assert_text_only(&r, 4);
  run_clear(&r);
  /* ls: one line for the heap and one for the plain file, each shown */
  r = tool("ls", NULL);
  g_assert_cmpint(r.code, ==, 0);
  g_assert_nonnull(strstr(r.out, shown));
  g_assert_nonnull(strstr(r.out, junk_shown));
  for (const char *p = r.out; *p; p++)
    g_assert_false(*p != '\n' && ((unsigned char)*p < 0x20 || *p == 0x7f));
  run_clear(&r);

  g_free(shown);
  g_free(junk_shown);
  g_assert_cmpint(unlink(path), ==, 0);
  shmheap_destroy(NULL, mem);
}

/* Objects the user cannot read are listed as "no access" (root reads
 * everything, so this needs another user). */
static void test_ls_no_access(void) {
  if (geteuid() == 0) {
    g_test_skip("root can read every object");
    return;
  }
  char name[64];
  tool_name(name, sizeof name);
  shmheap_memory_handle mem = shmheap_create_mode(name, 64 * 1024, 0200);
  g_assert_nonnull(mem);
  assert_ls_shows(name, " no access", "no access", 0);
  /* and a command that needs it says so: exit 6 */
  struct run r = tool("info", name, NULL);
  assert_error(&r, EXIT_ERROR, "permission denied");
  run_clear(&r);
  shmheap_destroy(NULL, mem);
}

void add_map_tests(void) {
  g_test_add_func("/tool/map-text", test_map_text);
  g_test_add_func("/tool/map-runs-json", test_map_runs_json);
  g_test_add_func("/tool/map-svg", test_map_svg);
  g_test_add_func("/tool/map-svg-large", test_map_svg_large);
  g_test_add_func("/tool/ls", test_ls);
  g_test_add_func("/tool/ls-no-access", test_ls_no_access);
  g_test_add_func("/tool/ls-fifo", test_ls_fifo);
  g_test_add_func("/tool/text-controls", test_text_controls);
}

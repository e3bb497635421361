/* cmd-inspect.c: the commands that read one heap under its lock and report
 * on it: `info` (the figures of shmheap_stats), `check` (the integrity
 * check, with the first bad offset) and `names` (the published names).
 * Each prints text, or one JSON object with --json.
 */
#include "tool.h"

#include <errno.h>
#include <inttypes.h>
#include <layout.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* info                                                                      */

/* 1 - largest free block / free bytes: the share of the free memory that
 * one large request cannot use. The largest free block includes its tag,
 * so that it is in the unit of free_bytes. */
static double fragmentation(const struct shmheap_stats *st) {
  uint64_t largest = st->free_blocks ? st->largest_free + SHH_TAG : 0;
  double frag =
      st->free_bytes ? 1.0 - (double)largest / (double)st->free_bytes : 0.0;
  return frag < 0.0 ? 0.0 : frag;
}

static void info_line(const char *label, uint64_t v, bool human,
                      const char *note) {
  char h[32] = "";
  if (human)
    human_size(v, h, sizeof h);
  printf("%-15s %" PRIu64 "%s%s%s%s\n", label, v, human ? " (" : "", h,
         human ? ")" : "", note ? note : "");
}

static void info_text(const char *name, const struct shmheap_stats *st) {
  char shown[TEXT_SAFE_MAX];
  printf("%-15s %s\n", "name:", text_safe(name, shown, sizeof shown));
  info_line("size:", st->size, true, NULL);
  info_line("max_size:", st->max_size, true,
            st->max_size == st->size ? "  (cannot grow)" : NULL);
  info_line("used_bytes:", st->used_bytes, true, NULL);
  info_line("free_bytes:", st->free_bytes, true, NULL);
  info_line("largest_free:", st->largest_free, true,
            "  the largest request that fits now");
  info_line("used_blocks:", st->used_blocks, false, NULL);
  info_line("free_blocks:", st->free_blocks, false, NULL);
  info_line("format_version:", st->format_version, false, NULL);
  info_line("names:", st->names, false, NULL);
  printf("%-15s %.1f%%  (1 - largest free block / free_bytes)\n",
         "fragmentation:", 100.0 * fragmentation(st));
}

static void info_json(const char *name, const struct shmheap_stats *st) {
  struct json j;
  json_init(&j, stdout);
  json_begin_object(&j);
  json_kv_string(&j, "name", name);
  json_kv_u64(&j, "size", st->size);
  json_kv_u64(&j, "max_size", st->max_size);
  json_kv_u64(&j, "used_bytes", st->used_bytes);
  json_kv_u64(&j, "free_bytes", st->free_bytes);
  json_kv_u64(&j, "largest_free", st->largest_free);
  json_kv_u64(&j, "used_blocks", st->used_blocks);
  json_kv_u64(&j, "free_blocks", st->free_blocks);
  json_kv_u64(&j, "format_version", st->format_version);
  json_kv_u64(&j, "names", st->names);
  json_key(&j, "fragmentation");
  json_double(&j, fragmentation(st));
  json_end_object(&j);
}

static int run_info(const struct opts *o) {
  const char *name = o->pos[0];
  if (!heap_name_ok("info", name))
    return TOOL_USAGE;
  shmheap_memory_handle mem;
  int rc = open_heap("info", name, &mem);
  if (rc != TOOL_OK)
    return rc;
  struct shmheap_stats st;
  int got = shmheap_stats(mem, &st);
  int err = errno;
  close_heap(mem);
  if (got != 0)
    return call_failed("info", name, "shmheap_stats", err);
  if (o->json)
    info_json(name, &st);
  else
    info_text(name, &st);
  return TOOL_OK;
}

const struct command cmd_info = {
    .name = "info",
    .synopsis = "info NAME [--json]",
    .summary = "print the heap's figures",
    .help =
        "Usage: shmheap info NAME [--json]\n"
        "\n"
        "Print the heap's figures (the fields of struct shmheap_stats),\n"
        "taken under its lock so that they agree: size, max_size,\n"
        "used_bytes, free_bytes (tags included), largest_free (the largest\n"
        "request that fits now), used_blocks, free_blocks, format_version,\n"
        "names, and the fragmentation (1 - largest free block / free_bytes).\n"
        "\n"
        "Options:\n"
        "  --json      print one JSON object with those keys\n"
        "  -h, --help  show this help\n",
    .options = OPT_JSON,
    .npos = 1,
    .needs = "NAME",
    .run = run_info,
};

/* ------------------------------------------------------------------------ */
/* check                                                                     */

static void check_report(const char *name, bool json, bool ok,
                         const struct shmheap_damage *d) {
  const char *what = d->what[0] ? d->what : "damaged (no detail)";
  if (json) {
    struct json j;
    json_init(&j, stdout);
    json_begin_object(&j);
    json_kv_string(&j, "name", name);
    json_key(&j, "consistent");
    json_bool(&j, ok);
    if (!ok) {
      json_kv_u64(&j, "offset", d->offset);
      json_kv_string(&j, "what", what);
    }
    json_end_object(&j);
  } else if (ok) {
    char shown[TEXT_SAFE_MAX];
    printf("%s: ok\n", text_safe(name, shown, sizeof shown));
  } else {
    char shown[TEXT_SAFE_MAX];
    printf("%s: inconsistent at offset %" PRIu64 ": %s\n",
           text_safe(name, shown, sizeof shown), d->offset, what);
  }
}

static int run_check(const struct opts *o) {
  const char *name = o->pos[0];
  if (!heap_name_ok("check", name))
    return TOOL_USAGE;
  struct shmheap_damage d;
  memset(&d, 0, sizeof d);
  shmheap_memory_handle mem;
  int err = try_open_heap("check", name, &mem);
  if (err == EUCLEAN) {
    /* A heap marked broken is the verdict, not a failure to give one. */
    snprintf(d.what, sizeof d.what, "the heap is marked broken");
    check_report(name, o->json, false, &d);
    return TOOL_DAMAGED;
  }
  if (err != 0)
    return connect_failed("check", name, err);
  int checked = shmheap_check_detail(mem, &d);
  err = errno;
  close_heap(mem);
  if (checked != 0 && err != EUCLEAN)
    return call_failed("check", name, "shmheap_check_detail", err);
  d.what[sizeof d.what - 1] = '\0';
  check_report(name, o->json, checked == 0, &d);
  return checked == 0 ? TOOL_OK : TOOL_DAMAGED;
}

const struct command cmd_check = {
    .name = "check",
    .synopsis = "check NAME [--json]",
    .summary = "check its integrity (exit 0 / 1)",
    .help =
        "Usage: shmheap check NAME [--json]\n"
        "\n"
        "Check every boundary tag and the free index of the heap, under its\n"
        "lock. Prints 'NAME: ok' and exits 0 when the heap is consistent;\n"
        "prints 'NAME: inconsistent at offset N: WHAT' and exits 1 when it\n"
        "is not, or when the heap is marked broken.\n"
        "\n"
        "Options:\n"
        "  --json      print {\"name\": ..., \"consistent\": true} or\n"
        "              {\"name\": ..., \"consistent\": false, \"offset\": N,\n"
        "              \"what\": \"...\"}\n"
        "  -h, --help  show this help\n",
    .options = OPT_JSON,
    .npos = 1,
    .needs = "NAME",
    .run = run_check,
};

/* ------------------------------------------------------------------------ */
/* names                                                                     */

struct name_entry {
  char *key;
  shmheap_object_handle hdl;
  size_t size;
};

struct name_list {
  struct name_entry *v;
  size_t n, cap;
  bool oom;
};

/* shmheap_names callback: runs under the lock, so it only copies the name
 * out; the object sizes are asked for after the lock is let go. */
static int collect_name(const char *key, shmheap_object_handle hdl, void *arg) {
  struct name_list *l = arg;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    struct name_entry *v = realloc(l->v, cap * sizeof *v);
    if (!v) {
      l->oom = true;
      return 1;
    }
    l->v = v;
    l->cap = cap;
  }
  char *copy = strdup(key);
  if (!copy) {
    l->oom = true;
    return 1;
  }
  l->v[l->n++] = (struct name_entry){copy, hdl, 0};
  return 0;
}

static int cmp_key(const void *a, const void *b) {
  return strcmp(((const struct name_entry *)a)->key,
                ((const struct name_entry *)b)->key);
}

/* Lists the names of MEM into L, with each object's size. */
static int list_names(const char *name, shmheap_memory_handle mem,
                      struct name_list *l) {
  int listed = shmheap_names(mem, collect_name, l);
  int err = errno;
  if (l->oom) {
    error_msg("names: %s: out of memory", name);
    return TOOL_ERROR;
  }
  if (listed != 0)
    return call_failed("names", name, "shmheap_names", err);
  for (size_t i = 0; i < l->n; i++)
    l->v[i].size =
        shmheap_usable_size(mem, shmheap_handle_to_ptr(mem, l->v[i].hdl));
  qsort(l->v, l->n, sizeof *l->v, cmp_key);
  return TOOL_OK;
}

/* A key on a text line: control characters become '?'. */
static void print_key(const char *key) {
  char shown[TEXT_SAFE_MAX];
  fputs(text_safe(key, shown, sizeof shown), stdout);
}

static void names_print(const struct name_list *l, bool json) {
  struct json j;
  if (json) {
    json_init(&j, stdout);
    json_begin_array(&j);
  } else {
    printf("%-18s %-14s %s\n", "handle", "size", "key");
  }
  for (size_t i = 0; i < l->n; i++) {
    const struct name_entry *e = &l->v[i];
    if (json) {
      json_begin_object(&j);
      json_kv_string(&j, "key", e->key);
      json_kv_u64(&j, "handle", e->hdl);
      json_kv_u64(&j, "size", e->size);
      json_end_object(&j);
    } else {
      printf("%-18" PRIu64 " %-14zu ", e->hdl, e->size);
      print_key(e->key);
      putchar('\n');
    }
  }
  if (json)
    json_end_array(&j);
}

static int run_names(const struct opts *o) {
  const char *name = o->pos[0];
  if (!heap_name_ok("names", name))
    return TOOL_USAGE;
  shmheap_memory_handle mem;
  int rc = open_heap("names", name, &mem);
  if (rc != TOOL_OK)
    return rc;
  struct name_list l = {0};
  rc = list_names(name, mem, &l);
  close_heap(mem);
  if (rc == TOOL_OK)
    names_print(&l, o->json);
  for (size_t i = 0; i < l.n; i++)
    free(l.v[i].key);
  free(l.v);
  return rc;
}

const struct command cmd_names = {
    .name = "names",
    .synopsis = "names NAME [--json]",
    .summary = "list its published names",
    .help = "Usage: shmheap names NAME [--json]\n"
            "\n"
            "List the names published in the heap (shmheap_publish), sorted:\n"
            "each object's handle, usable size in bytes, and key.\n"
            "\n"
            "Options:\n"
            "  --json      print a JSON array of {\"key\", \"handle\", "
            "\"size\"}\n"
            "  -h, --help  show this help\n",
    .options = OPT_JSON,
    .npos = 1,
    .needs = "NAME",
    .run = run_names,
};

/* cmd-map.c: `shmheap map`: one walk of the heap under its lock collects
 * the runs of used and free blocks; then, with the lock let go, the runs
 * are drawn as a text bar (render.c), listed (--runs, as text or JSON), and
 * drawn as SVG (--svg).
 */
#include "tool.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

/* The runs one walk has seen so far. */
struct run_list {
  struct map_run *v;
  size_t n, cap;
  bool oom;
  uint64_t first; /* offset of the first block: the header's size */
  uint64_t end;   /* offset just past the last block seen */
};

/* shmheap_walk callback: runs under the heap's lock, so it only appends to
 * a malloc'd array and never calls into the heap. */
static int collect_run(const struct shmheap_block *b, void *arg) {
  struct run_list *r = arg;
  int used = b->used ? 1 : 0;
  if (r->n == 0)
    r->first = b->offset;
  struct map_run *last = r->n ? &r->v[r->n - 1] : NULL;
  if (last && last->used == used && last->off + last->size == b->offset) {
    last->size += b->size;
    last->blocks++;
  } else {
    if (r->n == r->cap) {
      size_t cap = r->cap ? r->cap * 2 : 64;
      struct map_run *v = realloc(r->v, cap * sizeof *v);
      if (!v) {
        r->oom = true;
        return 1;
      }
      r->v = v;
      r->cap = cap;
    }
    r->v[r->n++] = (struct map_run){b->offset, b->size, 1, used};
  }
  r->end = b->offset + b->size;
  return 0;
}

/* Walks the heap NAME into R. Returns an exit code. */
static int walk_heap(const char *name, struct run_list *r) {
  shmheap_memory_handle mem;
  int rc = open_heap("map", name, &mem);
  if (rc != TOOL_OK)
    return rc;
  int walked = shmheap_walk(mem, collect_run, r);
  int err = errno;
  close_heap(mem);
  if (r->oom) {
    error_msg("map: %s: out of memory", name);
    return TOOL_ERROR;
  }
  if (walked != 0)
    return call_failed("map", name, "shmheap_walk", err);
  if (r->n == 0) {
    error_msg("map: %s: the heap has no blocks", name);
    return TOOL_ERROR;
  }
  return TOOL_OK;
}

static void print_summary(const struct heap_map *m) {
  uint64_t used = m->header, nused = 0, nfree = 0;
  for (size_t i = 0; i < m->n; i++) {
    if (m->runs[i].used) {
      used += m->runs[i].size;
      nused += m->runs[i].blocks;
    } else {
      nfree += m->runs[i].blocks;
    }
  }
  char h[32], shown[TEXT_SAFE_MAX];
  human_size(m->size, h, sizeof h);
  printf("%s: %" PRIu64 " bytes (%s), %" PRIu64 " used blocks, %" PRIu64
         " free blocks, %.1f%% used\n",
         text_safe(m->name, shown, sizeof shown), m->size, h, nused, nfree,
         100.0 * (double)used / (double)m->size);
}

static void print_runs_text(const struct heap_map *m) {
  printf("%-14s %-14s %-10s %s\n", "offset", "size", "blocks", "state");
  printf("%-14d %-14" PRIu64 " %-10s %s\n", 0, m->header, "-", "header");
  for (size_t i = 0; i < m->n; i++)
    printf("%-14" PRIu64 " %-14" PRIu64 " %-10" PRIu64 " %s\n", m->runs[i].off,
           m->runs[i].size, m->runs[i].blocks,
           m->runs[i].used ? "used" : "free");
}

static void print_runs_json(const struct heap_map *m) {
  struct json j;
  json_init(&j, stdout);
  json_begin_object(&j);
  json_kv_string(&j, "name", m->name);
  json_kv_u64(&j, "size", m->size);
  json_kv_u64(&j, "header", m->header);
  json_key(&j, "runs");
  json_begin_array(&j);
  for (size_t i = 0; i < m->n; i++) {
    json_begin_object(&j);
    json_kv_u64(&j, "offset", m->runs[i].off);
    json_kv_u64(&j, "size", m->runs[i].size);
    json_kv_u64(&j, "blocks", m->runs[i].blocks);
    json_key(&j, "used");
    json_bool(&j, m->runs[i].used);
    json_end_object(&j);
  }
  json_end_array(&j);
  json_end_object(&j);
}

static int run_map(const struct opts *o) {
  uint64_t width = MAP_WIDTH_DEFAULT;
  if (o->width &&
      (!parse_size(o->width, &width) || width == 0 || width > MAP_WIDTH_MAX))
    return usage_error("map", "bad width '%s' (1 to %d)", o->width,
                       MAP_WIDTH_MAX);
  if (o->json && !o->runs)
    return usage_error("map", "--json needs --runs");
  if (o->runs && o->width)
    return usage_error("map", "--width draws the bar, which --runs leaves out");
  const char *name = o->pos[0];
  if (!heap_name_ok("map", name))
    return TOOL_USAGE;
  struct run_list r = {0};
  int rc = walk_heap(name, &r);
  if (rc == TOOL_OK) {
    /* Blocks tile the heap after the header, so the heap's size is where
     * its last block ends: one walk under one lock gives a coherent map. */
    struct heap_map m = {name, r.end, r.first, r.v, r.n};
    /* The file first: when it cannot be written, nothing is printed, so a
     * failed map leaves no half of its output behind. */
    if (o->svg)
      rc = render_svg(o->svg, &m);
    if (rc == TOOL_OK && o->runs && o->json) {
      print_runs_json(&m);
    } else if (rc == TOOL_OK && o->runs) {
      print_runs_text(&m);
    } else if (rc == TOOL_OK) {
      print_summary(&m);
      rc = render_bar(stdout, &m, (size_t)width);
    }
  }
  free(r.v);
  return rc;
}

const struct command cmd_map = {
    .name = "map",
    .synopsis = "map NAME [--width N | --runs [--json]] [--svg FILE]",
    .summary = "draw or list used and free runs",
    .help =
        "Usage: shmheap map NAME [--width N] [--svg FILE]\n"
        "       shmheap map NAME --runs [--json] [--svg FILE]\n"
        "\n"
        "Draw the heap's used and free runs over its address range as a\n"
        "text bar, one cell per SIZE/N bytes:\n"
        "  '#' all used   '+' mostly used   '-' mostly free   '.' all free\n"
        "(the heap's header counts as used). The blocks are read in one\n"
        "walk under the heap's lock.\n"
        "\n"
        "Options:\n"
        "  --width N   cells in the bar (default 64, at most 4096)\n"
        "  --runs      instead of the bar, list every run of adjacent used\n"
        "              or free blocks: offset, size, blocks, used or free\n"
        "  --json      with --runs: print them as one JSON object\n"
        "  --svg FILE  also write the picture as SVG to FILE: at most 4096\n"
        "              cells, each a bar as tall as its used share\n"
        "  -h, --help  show this help\n",
    .options = OPT_WIDTH | OPT_RUNS | OPT_JSON | OPT_SVG,
    .npos = 1,
    .needs = "NAME",
    .run = run_map,
};

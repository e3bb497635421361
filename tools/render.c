/* render.c: pictures of a heap's map. Both pictures are binned: the
 * address range is cut into a fixed number of cells and each cell shows the
 * share of its bytes that is used, so a picture's size depends on the
 * number of cells, never on the number of blocks. The text bar has one
 * character per cell; the SVG draws each cell as a stacked bar (used share
 * from the bottom, free above), merging neighbouring cells of equal share.
 */
#include "tool.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* No overflow: a heap is at most 2^48 bytes (SHH_MAX_LEN) and there are at
 * most 2^12 cells. */
uint64_t cell_start(const struct heap_map *m, size_t ncells, size_t c) {
  return (uint64_t)c * m->size / (uint64_t)ncells;
}

/* Adds the bytes of [A, B) to the cells they overlap. */
static void add_span(const struct heap_map *m, uint64_t *cell_used,
                     size_t ncells, uint64_t a, uint64_t b) {
  for (size_t c = (size_t)(a * ncells / m->size);
       c < ncells && cell_start(m, ncells, c) < b; c++) {
    uint64_t lo = cell_start(m, ncells, c), hi = cell_start(m, ncells, c + 1);
    uint64_t s = a > lo ? a : lo, e = b < hi ? b : hi;
    if (e > s)
      cell_used[c] += e - s;
  }
}

void map_cells(const struct heap_map *m, uint64_t *cell_used, size_t ncells) {
  memset(cell_used, 0, ncells * sizeof *cell_used);
  if (m->header)
    add_span(m, cell_used, ncells, 0, m->header);
  for (size_t i = 0; i < m->n; i++)
    if (m->runs[i].used)
      add_span(m, cell_used, ncells, m->runs[i].off,
               m->runs[i].off + m->runs[i].size);
}

static char bar_char(uint64_t used, uint64_t span) {
  if (used >= span)
    return '#';
  if (used == 0)
    return '.';
  return 2 * used >= span ? '+' : '-';
}

int render_bar(FILE *f, const struct heap_map *m, size_t width) {
  uint64_t *cells = malloc(width * sizeof *cells);
  if (!cells) {
    error_msg("map: out of memory");
    return TOOL_ERROR;
  }
  map_cells(m, cells, width);
  fputc('|', f);
  for (size_t c = 0; c < width; c++)
    fputc(bar_char(cells[c],
                   cell_start(m, width, c + 1) - cell_start(m, width, c)),
          f);
  fputs("|\n", f);
  free(cells);
  /* Offsets under the bar: 0 under its left edge, the size under its
   * right edge. */
  char end[24], h[32];
  int endlen = snprintf(end, sizeof end, "%" PRIu64, m->size);
  int pad = (int)width + 2 - 1 - endlen;
  fprintf(f, "0%*s%s\n", pad > 1 ? pad : 1, "", end);
  human_size((m->size + width - 1) / width, h, sizeof h);
  fprintf(f,
          "one cell = %s; '#' used, '+' mostly used, '-' mostly free, "
          "'.' free\n",
          h);
  return TOOL_OK;
}

/* Writes S to F with the five XML special characters escaped; control
 * characters other than tab and newline, which XML 1.0 does not allow,
 * become '?', and bytes that are not UTF-8 become U+FFFD. */
static void xml_escape(FILE *f, const char *s) {
  static const char *const special[][2] = {
      {"&", "&amp;"},   {"<", "&lt;"},   {">", "&gt;"},
      {"\"", "&quot;"}, {"'", "&apos;"},
  };
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    size_t n = utf8_len(p);
    const char *esc = NULL;
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
      if (*p == (unsigned char)special[i][0][0])
        esc = special[i][1];
    if (esc)
      fputs(esc, f);
    else if (*p < 0x20 && *p != '\t' && *p != '\n')
      fputc('?', f);
    else if (n == 0)
      fputs("\xef\xbf\xbd", f);
    else
      fwrite(p, 1, n, f);
    p += n ? n : 1;
  }
}

/* The picture's geometry, in SVG user units. */
static const double svg_x0 = 20, svg_w = 960, svg_y0 = 50, svg_h = 60;

static void svg_head(FILE *f, const struct heap_map *m, uint64_t used) {
  fputs("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1000\" "
        "height=\"170\" viewBox=\"0 0 1000 170\" "
        "font-family=\"sans-serif\" font-size=\"12\">\n<title>shmheap map of ",
        f);
  xml_escape(f, m->name);
  fputs("</title>\n<text x=\"20\" y=\"24\" font-size=\"16\">", f);
  xml_escape(f, m->name);
  fprintf(f,
          ": %" PRIu64 " bytes, %" PRIu64 " used (header included)</text>\n"
          "<rect class=\"free\" x=\"%.3f\" y=\"%.3f\" width=\"%.3f\" "
          "height=\"%.3f\" fill=\"#d5f5d5\" stroke=\"#333333\"/>\n",
          m->size, used, svg_x0, svg_y0, svg_w, svg_h);
}

/* Cells [C0, C1) all have USED_SHARE: one rect as tall as that share. */
static void svg_cells(FILE *f, const struct heap_map *m, size_t ncells,
                      size_t c0, size_t c1, double share) {
  uint64_t lo = cell_start(m, ncells, c0), hi = cell_start(m, ncells, c1);
  double x = svg_x0 + svg_w * (double)lo / (double)m->size;
  double w = svg_w * (double)(hi - lo) / (double)m->size;
  double h = svg_h * share;
  fprintf(f,
          "<rect class=\"used\" x=\"%.3f\" y=\"%.3f\" width=\"%.3f\" "
          "height=\"%.3f\" fill=\"#c0392b\"><title>%" PRIu64 "-%" PRIu64
          ": %.1f%% used</title></rect>\n",
          x, svg_y0 + svg_h - h, w, h, lo, hi, 100.0 * share);
}

static void svg_tail(FILE *f, const struct heap_map *m) {
  fprintf(f,
          "<rect class=\"header\" x=\"%.3f\" y=\"%.3f\" width=\"%.3f\" "
          "height=\"%.3f\" fill=\"#888888\"><title>header: offset 0, %" PRIu64
          " bytes</title></rect>\n",
          svg_x0, svg_y0, svg_w * (double)m->header / (double)m->size, svg_h,
          m->header);
  for (int t = 0; t <= 4; t++) {
    double x = svg_x0 + svg_w * t / 4.0;
    fprintf(f,
            "<line x1=\"%.3f\" y1=\"%.3f\" x2=\"%.3f\" y2=\"%.3f\" "
            "stroke=\"#333333\"/>\n"
            "<text x=\"%.3f\" y=\"%.3f\" text-anchor=\"%s\">%" PRIu64
            "</text>\n",
            x, svg_y0 + svg_h, x, svg_y0 + svg_h + 6, x, svg_y0 + svg_h + 20,
            t == 0   ? "start"
            : t == 4 ? "end"
                     : "middle",
            cell_start(m, 4, (size_t)t));
  }
  fputs("<rect x=\"20\" y=\"148\" width=\"12\" height=\"12\" "
        "fill=\"#c0392b\"/><text x=\"38\" y=\"158\">used</text>\n"
        "<rect x=\"90\" y=\"148\" width=\"12\" height=\"12\" "
        "fill=\"#d5f5d5\" stroke=\"#333333\"/>"
        "<text x=\"108\" y=\"158\">free</text>\n"
        "<rect x=\"160\" y=\"148\" width=\"12\" height=\"12\" "
        "fill=\"#888888\"/><text x=\"178\" y=\"158\">header</text>\n"
        "</svg>\n",
        f);
}

/* The used share of cell C, rounded to 1/1000 so that neighbours that look
 * alike are drawn as one rect. */
static unsigned cell_share(const struct heap_map *m, const uint64_t *cells,
                           size_t ncells, size_t c) {
  uint64_t span = cell_start(m, ncells, c + 1) - cell_start(m, ncells, c);
  return span ? (unsigned)((cells[c] * 1000 + span / 2) / span) : 0;
}

static void svg_body(FILE *f, const struct heap_map *m, const uint64_t *cells,
                     size_t ncells) {
  size_t c0 = 0;
  while (c0 < ncells) {
    unsigned share = cell_share(m, cells, ncells, c0);
    size_t c1 = c0 + 1;
    while (c1 < ncells && cell_share(m, cells, ncells, c1) == share)
      c1++;
    if (share)
      svg_cells(f, m, ncells, c0, c1, share / 1000.0);
    c0 = c1;
  }
}

int render_svg(const char *path, const struct heap_map *m) {
  size_t ncells = m->size < MAP_SVG_CELLS ? (size_t)m->size : MAP_SVG_CELLS;
  uint64_t *cells = malloc(ncells * sizeof *cells);
  if (!cells) {
    error_msg("map: out of memory");
    return TOOL_ERROR;
  }
  map_cells(m, cells, ncells);
  uint64_t used = 0;
  for (size_t c = 0; c < ncells; c++)
    used += cells[c];
  FILE *f = fopen(path, "w");
  if (!f) {
    error_msg("map: %s: %s", path, strerror(errno));
    free(cells);
    return TOOL_ERROR;
  }
  svg_head(f, m, used);
  svg_body(f, m, cells, ncells);
  svg_tail(f, m);
  free(cells);
  if (ferror(f) | (fclose(f) != 0)) {
    error_msg("map: %s: write failed", path);
    return TOOL_ERROR;
  }
  return TOOL_OK;
}

/* chart.c: the SVG charts, drawn from the medians. shmheap-bench.svg: ns
 * per alloc+free pair against live blocks, log-log, one line per allocator,
 * shmheap's lock floor as a hollow point under its lifo-small one.
 * shmheap-bench-procs.svg: total lifo-small throughput against the number
 * of processes on one heap (1, 2, 4), log y. Both share one small plotting
 * kit: a frame with log-scale decades on y, series, a legend, and value
 * labels pushed apart where they would overlap. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "bench.h"

struct plot {
  FILE *f;
  const char *path;
  double W, H;     /* the picture */
  double ml, mt;   /* left and top margins */
  double pw, ph;   /* the plotting area */
  double x0, x1;   /* x range, in axis units */
  int y0, ydec;    /* y range: 10^y0 .. 10^(y0 + ydec) */
  int legend_rows; /* legend entries drawn so far */
};

static double px(const struct plot *p, double x) {
  return p->ml + (x - p->x0) / (p->x1 - p->x0) * p->pw;
}

static double py(const struct plot *p, double value) {
  return p->mt + p->ph - (log10(value) - p->y0) / p->ydec * p->ph;
}

/* Opens PATH and sets up a plot whose y axis covers [LO, HI] in whole
 * decades; false (said on stderr) when there is nothing to draw or the
 * file cannot be written. */
static bool plot_open(struct plot *p, const char *path, double lo, double hi,
                      double x0, double x1) {
  if (!(lo <= hi) || !(lo > 0))
    return false;
  p->f = fopen(path, "w");
  p->path = path;
  if (p->f == NULL) {
    out_failed(path);
    return false;
  }
  p->W = 800, p->H = 480, p->ml = 80, p->mt = 50;
  p->pw = p->W - p->ml - 190, p->ph = p->H - p->mt - 60;
  p->x0 = x0, p->x1 = x1;
  p->y0 = (int)floor(log10(lo));
  const int y1 = (int)ceil(log10(hi));
  p->ydec = y1 > p->y0 ? y1 - p->y0 : 1;
  p->legend_rows = 0;
  fprintf(p->f,
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
          "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
          "font-family=\"sans-serif\" font-size=\"12\">\n"
          "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
          p->W, p->H, p->W, p->H);
  return true;
}

static void plot_close(struct plot *p) {
  fprintf(p->f, "</svg>\n");
  close_out(p->f, p->path);
}

/* The title, the decades on y, the N ticks on x, the frame, the axis
 * titles. */
static void plot_frame(const struct plot *p, const char *title, int n,
                       const double *xs, const char *const *xlabels,
                       const char *xtitle, const char *ytitle) {
  FILE *f = p->f;
  fprintf(f,
          "<text x=\"%.0f\" y=\"24\" font-size=\"15\" text-anchor=\"middle\">"
          "%s (median of %d, %s build)</text>\n",
          p->ml + p->pw / 2, title, opt.reps, SHMHEAP_BENCH_BUILDTYPE);
  for (int d = p->y0; d <= p->y0 + p->ydec; d++) {
    const double y = py(p, pow(10, d));
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "stroke=\"#ddd\"/>\n<text x=\"%.1f\" y=\"%.1f\" "
            "text-anchor=\"end\">%.*f</text>\n",
            p->ml, y, p->ml + p->pw, y, p->ml - 6, y + 4, d < 0 ? -d : 0,
            pow(10, d));
  }
  for (int k = 0; k < n; k++) {
    const double x = px(p, xs[k]);
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "stroke=\"#ddd\"/>\n<text x=\"%.1f\" y=\"%.1f\" "
            "text-anchor=\"middle\">%s</text>\n",
            x, p->mt, x, p->mt + p->ph, x, p->mt + p->ph + 18, xlabels[k]);
  }
  fprintf(f,
          "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
          "fill=\"none\" stroke=\"black\"/>\n"
          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n"
          "<text x=\"18\" y=\"%.1f\" text-anchor=\"middle\" "
          "transform=\"rotate(-90 18 %.1f)\">%s</text>\n",
          p->ml, p->mt, p->pw, p->ph, p->ml + p->pw / 2, p->H - 16, xtitle,
          p->mt + p->ph / 2, p->mt + p->ph / 2, ytitle);
}

/* A line through the N points (XS[k], VS[k]) that were measured (VS[k]
 * not NAN), a dot on each, and a legend entry. */
static void plot_series(struct plot *p, const char *color, const char *name,
                        int n, const double *xs, const double *vs) {
  FILE *f = p->f;
  fprintf(f,
          "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
          "points=\"",
          color);
  for (int k = 0; k < n; k++)
    if (!isnan(vs[k]))
      fprintf(f, "%.1f,%.1f ", px(p, xs[k]), py(p, vs[k]));
  fprintf(f, "\"/>\n");
  for (int k = 0; k < n; k++)
    if (!isnan(vs[k]))
      fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n",
              px(p, xs[k]), py(p, vs[k]), color);
  const double lx = p->ml + p->pw + 60, ly = p->mt + 10 + 22 * p->legend_rows++;
  fprintf(f,
          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
          "stroke=\"%s\" stroke-width=\"3\"/>\n<text x=\"%.1f\" "
          "y=\"%.1f\">%s</text>\n",
          lx, ly, lx + 25, ly, color, lx + 31, ly + 4, name);
}

struct label {
  double y; /* where the value sits */
  const char *color;
  char text[48];
};

/* Writes the N labels at X right of their points, top to bottom, each at
 * least 12 px below the one above it. */
static void plot_labels(const struct plot *p, double x, struct label *l,
                        int n) {
  for (int i = 1; i < n; i++) /* insertion sort by y */
    for (int j = i; j > 0 && l[j - 1].y > l[j].y; j--) {
      const struct label t = l[j];
      l[j] = l[j - 1];
      l[j - 1] = t;
    }
  for (int j = 1; j < n; j++)
    if (l[j].y < l[j - 1].y + 12)
      l[j].y = l[j - 1].y + 12;
  for (int j = 0; j < n; j++)
    fprintf(p->f,
            "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" "
            "fill=\"%s\">%s</text>\n",
            x + 6, l[j].y, l[j].color, l[j].text);
}

/* The smallest and largest measured median of ROWS[0..n) over the
 * allocators, widened by EXTRA when it is measured. */
static void median_range(const enum row_id *rs, int n, double extra, double *lo,
                         double *hi) {
  *lo = isnan(extra) ? INFINITY : extra;
  *hi = isnan(extra) ? -INFINITY : extra;
  for (int i = 0; i < n_allocs; i++)
    for (int k = 0; k < n; k++) {
      const double m = row_median(rs[k], i);
      if (!isnan(m)) {
        *lo = fmin(*lo, m);
        *hi = fmax(*hi, m);
      }
    }
}

/* ------------------------------------------------------------------------ */
/* ns per pair against live blocks                                          */

static const enum row_id live_rows[] = {R_LIFO, R_LIVE_1K, R_LIVE_10K,
                                        R_LIVE_100K};
enum { N_LIVE_PTS = sizeof live_rows / sizeof live_rows[0] };

/* The hollow point under shmheap's lifo-small one, and its legend entry. */
static void draw_floor(struct plot *p, int s, double floor_ns) {
  const char *color = allocs[s]->color;
  const double lx = p->ml + p->pw + 72, ly = p->mt + 10 + 22 * p->legend_rows;
  p->legend_rows += 2;
  fprintf(p->f,
          "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"white\" "
          "stroke=\"%s\" stroke-width=\"2\"/>\n"
          "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"white\" "
          "stroke=\"%s\" stroke-width=\"2\"/>\n<text x=\"%.1f\" "
          "y=\"%.1f\">lock floor</text>\n<text x=\"%.1f\" y=\"%.1f\" "
          "font-size=\"10\">shmheap's lock,</text>\n<text "
          "x=\"%.1f\" y=\"%.1f\" font-size=\"10\">2x lock+unlock"
          "</text>\n",
          px(p, 0), py(p, floor_ns), color, lx, ly, color, lx + 19, ly + 4,
          lx + 19, ly + 17, lx + 19, ly + 29);
}

/* The value labels at point K of every line; FLOOR_NS joins lifo-small's. */
static void live_labels(const struct plot *p, int k, int s, double floor_ns) {
  struct label l[MAX_ALLOCATORS + 1];
  int n = 0;
  for (int i = 0; i < n_allocs; i++) {
    const double m = row_median(live_rows[k], i);
    if (isnan(m))
      continue;
    l[n].y = py(p, m) + 4;
    l[n].color = allocs[i]->color;
    snprintf(l[n++].text, sizeof l[0].text, "%.0f%s", m,
             capped[live_rows[k]][i] ? "*" : "");
  }
  if (k == 0 && !isnan(floor_ns)) {
    l[n].y = py(p, floor_ns) + 4;
    l[n].color = allocs[s]->color;
    snprintf(l[n++].text, sizeof l[0].text, "%.0f lock floor", floor_ns);
  }
  plot_labels(p, px(p, log10((double)rows[live_rows[k]].live)), l, n);
}

static void write_live_chart(const char *path) {
  const int s = alloc_index("shmheap");
  const double floor_ns = s >= 0 ? row_median(R_LOCK_FLOOR, s) : NAN;
  double lo, hi;
  median_range(live_rows, N_LIVE_PTS, floor_ns, &lo, &hi);
  struct plot p;
  if (!plot_open(&p, path, lo, hi, 0, 5)) /* 10^0 .. 10^5 live blocks */
    return;
  const double ticks[] = {0, 1, 2, 3, 4, 5};
  const char *const tick_labels[] = {
      "1 (lifo-small)", "10", "100", "1k", "10k", "100k"};
  plot_frame(&p, "ns per alloc+free pair against live blocks", 6, ticks,
             tick_labels, "live blocks (log scale)", "ns per pair (log scale)");
  double xs[N_LIVE_PTS], vs[N_LIVE_PTS];
  for (int k = 0; k < N_LIVE_PTS; k++)
    xs[k] = log10((double)rows[live_rows[k]].live);
  for (int i = 0; i < n_allocs; i++) {
    for (int k = 0; k < N_LIVE_PTS; k++)
      vs[k] = row_median(live_rows[k], i);
    plot_series(&p, allocs[i]->color, allocs[i]->name, N_LIVE_PTS, xs, vs);
  }
  if (!isnan(floor_ns))
    draw_floor(&p, s, floor_ns);
  for (int k = 0; k < N_LIVE_PTS; k++)
    live_labels(&p, k, s, floor_ns);
  fprintf(p.f,
          "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">* fewer timed "
          "steps</text>\n",
          p.ml + p.pw + 60, p.mt + 10 + 22 * p.legend_rows + 6);
  plot_close(&p);
}

/* ------------------------------------------------------------------------ */
/* Total throughput against processes                                       */

static const enum row_id proc_rows[] = {R_PROC_1, R_PROC_2, R_PROC_4};
enum { N_PROC_PTS = sizeof proc_rows / sizeof proc_rows[0] };

static void write_procs_chart(const char *path) {
  double lo, hi;
  median_range(proc_rows, N_PROC_PTS, NAN, &lo, &hi);
  struct plot p;
  if (!plot_open(&p, path, lo, hi, -0.25, 2.25))
    return;
  const double xs[N_PROC_PTS] = {0, 1, 2};
  const char *const tick_labels[N_PROC_PTS] = {"1", "2", "4"};
  char xtitle[96];
  snprintf(xtitle, sizeof xtitle,
           "processes on one heap, pinned round-robin to %d CPU%s", cpu_count(),
           cpu_count() == 1 ? "" : "s");
  plot_frame(&p, "lifo-small: total pairs/s against processes", N_PROC_PTS, xs,
             tick_labels, xtitle, "total Mpairs/s (log scale)");
  double vs[N_PROC_PTS];
  for (int i = 0; i < n_allocs; i++) {
    for (int k = 0; k < N_PROC_PTS; k++)
      vs[k] = row_median(proc_rows[k], i);
    plot_series(&p, allocs[i]->color, allocs[i]->name, N_PROC_PTS, xs, vs);
  }
  for (int k = 0; k < N_PROC_PTS; k++) {
    struct label l[MAX_ALLOCATORS];
    int n = 0;
    for (int i = 0; i < n_allocs; i++) {
      const double m = row_median(proc_rows[k], i);
      if (isnan(m))
        continue;
      l[n].y = py(&p, m) + 4;
      l[n].color = allocs[i]->color;
      snprintf(l[n++].text, sizeof l[0].text, "%.3g", m);
    }
    plot_labels(&p, px(&p, xs[k]), l, n);
  }
  plot_close(&p);
}

void write_charts(const char *dir) {
  char path[4096];
  if (row_selected(R_LIFO) || row_selected(R_LIVE_1K) ||
      row_selected(R_LIVE_10K) || row_selected(R_LIVE_100K)) {
    snprintf(path, sizeof path, "%s/shmheap-bench.svg", dir);
    write_live_chart(path);
  }
  if (row_selected(R_PROC_4) || row_selected(R_PROC_1)) {
    snprintf(path, sizeof path, "%s/shmheap-bench-procs.svg", dir);
    write_procs_chart(path);
  }
}

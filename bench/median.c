/* median.c: the median of a run's values (median.h). */
#include "median.h"

#include <math.h>
#include <stdlib.h>

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double median(const double *v, int n) {
  double *tmp = malloc((n > 0 ? (size_t)n : 1) * sizeof *tmp);
  int k = 0;
  if (tmp == NULL)
    return NAN;
  for (int i = 0; i < n; i++)
    if (!isnan(v[i]))
      tmp[k++] = v[i];
  double m = NAN;
  if (k != 0) {
    qsort(tmp, (size_t)k, sizeof *tmp, cmp_double);
    m = k % 2 ? tmp[k / 2] : (tmp[k / 2 - 1] + tmp[k / 2]) / 2;
  }
  free(tmp);
  return m;
}

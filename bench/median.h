/* median.h: the median every figure of the bench and of its side tools
 * (shmheap-combine-bound, shmheap-range-bound) is quoted as. */
#ifndef SHMHEAP_BENCH_MEDIAN_H
#define SHMHEAP_BENCH_MEDIAN_H

/* The median of the measured values in V[0..N), skipping NANs (a value not
 * measured); NAN when there are none. V is left as it was. */
double median(const double *v, int n);

#endif

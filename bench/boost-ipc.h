/* The C interface of boost-ipc.cpp: Boost.Interprocess managed_shared_memory
 * segments, one set of calls per memory algorithm, so that the benchmark's
 * loops call them directly (no switch on the hot path). A segment pointer
 * is this process's mapping of the named segment; NAME follows Boost's
 * rules (no slash). All calls return NULL or -1 on failure and never
 * throw. */
#ifndef SHMHEAP_BENCH_BOOST_IPC_H
#define SHMHEAP_BENCH_BOOST_IPC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Boost's default: managed_shared_memory (rbtree_best_fit). */
void *bx_rbtree_create(const char *name, size_t len);
void *bx_rbtree_open(const char *name);
void bx_rbtree_close(void *seg);
void *bx_rbtree_alloc(void *seg, size_t sz);
void bx_rbtree_free(void *seg, void *ptr);

/* The same segment type with simple_seq_fit, Boost's first fit. */
void *bx_seqfit_create(const char *name, size_t len);
void *bx_seqfit_open(const char *name);
void bx_seqfit_close(void *seg);
void *bx_seqfit_alloc(void *seg, size_t sz);
void bx_seqfit_free(void *seg, void *ptr);

/* Removes the shared memory object NAME; 0 when it was there. */
int bx_remove(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* SHMHEAP_BENCH_BOOST_IPC_H */

/* The C interface of boost-ipc.cpp: Boost.Interprocess managed_shared_memory
 * segments, one set of calls per memory algorithm, so that the benchmark's
 * loops call them directly (no switch on the hot path), and their named
 * objects. A segment pointer
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

/* Named objects: construct<char>(KEY)[SZ], find<char>(KEY) and
 * destroy<char>(KEY) on either segment type. construct returns the object
 * or NULL with errno ENOMEM (KEY is taken, or nothing fits); find
 * returns it or NULL; destroy returns 0, or -1 with errno ENOENT. */
void *bx_rbtree_construct(void *seg, const char *key, size_t sz);
void *bx_rbtree_find(void *seg, const char *key);
int bx_rbtree_destroy(void *seg, const char *key);
void *bx_seqfit_construct(void *seg, const char *key, size_t sz);
void *bx_seqfit_find(void *seg, const char *key);
int bx_seqfit_destroy(void *seg, const char *key);

/* Removes the shared memory object NAME; 0 when it was there. */
int bx_remove(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* SHMHEAP_BENCH_BOOST_IPC_H */

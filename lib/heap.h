/* heap.h: alloc and free for the library's own callers that already hold
 * the lock (the names directory keeps its tables and entries in ordinary
 * blocks). */
#ifndef SHMHEAP_HEAP_H
#define SHMHEAP_HEAP_H

#include <stddef.h>
#include <stdint.h>

#include "region.h"

/* shmheap_alloc's work under the lock, growing a growable heap: a pointer,
 * or NULL with *ERR set (ENOMEM, EUCLEAN). The new block's handle, ORed
 * with NOTE_BITS, is stored at NOTE_OFF in the region (unless NOTE_OFF is
 * 0) just before the block's tag makes it allocated: a caller that dies
 * before it links the block leaves a note that lets recovery free it. */
void *shh_alloc_noted(struct shmheap *h, size_t sz, uint64_t note_off,
                      uint64_t note_bits, int *err);
/* shmheap_free's work under the lock (dropping the block's names first):
 * 0 or an errno (EINVAL, EUCLEAN). */
int shh_free_locked(struct shmheap *h, void *ptr);

/* What free needs from the names directory (names.c, which builds on this
 * header): removes every name of the live NAMED object HDL and clears its
 * NAMED flag, so the free can go on. 0, or EUCLEAN. */
int shh_names_drop(struct shmheap *h, uint64_t hdl);

/* Whether HDL is one of the names directory's own blocks (the directory or
 * an entry), which a caller must not free or resize: they are the
 * library's, though shmheap_walk shows them as used blocks. */
int shh_names_internal(const struct shmheap *h, uint64_t hdl);

#endif

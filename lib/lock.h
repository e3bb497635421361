/* lock.h: the heap's one lock: a futex word of the project's own that
 * survives the death of its owner.
 *
 * Layout (16 bytes at SHH_HDR_LOCK): one 64-bit word, changed only by
 * 64-bit compare-and-swap or exchange, so that its two halves are always
 * written together:
 *   bits  0..29  the owner's thread id (0: unowned)
 *   bit   30     STARVING: a waiter has waited too long; newcomers queue
 *   bit   31     WAITERS: someone may sleep on the futex (the low half)
 *   bits 32..43  check bits: a keyed hash of the owner's tid and namespace
 *   bits 44..63  the low 20 bits of the owner's PID namespace id
 * and 8 spare bytes. An unowned word has a zero high half. A word whose
 * check bits do not match its owner cannot come from a crash (a crash
 * leaves a whole word), so it means the word was scribbled over.
 */
#ifndef SHMHEAP_LOCK_H
#define SHMHEAP_LOCK_H

#include <time.h>

#include "region.h"

/* Initialises the lock of a new heap. */
void shh_lock_init(struct shmheap *h);
/* Takes the lock. If its owner died holding it, repairs the heap first.
 * Returns 0 or an errno value: EUCLEAN (the heap is broken, or the lock word
 * is damaged: the heap is marked broken), EAGAIN (DEADLINE, a CLOCK_MONOTONIC
 * time or NULL for none, passed while a live process held the lock). */
int shh_lock(struct shmheap *h, const struct timespec *deadline);
void shh_unlock(struct shmheap *h);
/* Marks the heap broken: every later call fails with EUCLEAN. */
void shh_mark_broken(struct shmheap *h);

#endif

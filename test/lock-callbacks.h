/* lock-callbacks.h: test-lock's callback cases (lock-callbacks.c). */
#ifndef SHMHEAP_TEST_LOCK_CALLBACKS_H
#define SHMHEAP_TEST_LOCK_CALLBACKS_H

/* Registers /lock/reentry, /lock/reentry-other-connection,
 * /lock/nested-heaps and /lock/fork-in-callback, in that order. */
void lock_callbacks_add_tests(void);

#endif

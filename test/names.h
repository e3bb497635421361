/* names.h: what the parts of the names test program share: a check that
 * every name leads to a live block, the name count, and the kill cases
 * (names-kills.c) that test-names.c registers.
 */
#ifndef SHMHEAP_TEST_NAMES_H
#define SHMHEAP_TEST_NAMES_H

#include "testutil.h"

enum { KIB = 1024 };

/* The heap's name count, by shmheap_stats. */
uint64_t names_count(shmheap_memory_handle mem);
/* Every name resolves to a live block and the count agrees; returns the
 * number of names. */
uint64_t verify_names(shmheap_memory_handle mem);

void test_kill_random(void);
void test_points(void);
void test_points_directory(void);

#endif

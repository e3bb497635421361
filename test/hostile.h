/* hostile.h: the parts of the hostile test program: test-hostile.c holds
 * main and the cases of names, permissions and bad pointers;
 * hostile-corruption.c the cases of corrupted heap images.
 */
#ifndef SHMHEAP_TEST_HOSTILE_H
#define SHMHEAP_TEST_HOSTILE_H

/* Registers /hostile/header-corruption and /hostile/tag-corruption. */
void hostile_corruption_cases(void);

#endif

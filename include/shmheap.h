/* shmheap: a general-purpose heap inside POSIX shared memory.
 *
 * This header is the whole public API. Several processes map one named heap,
 * each at its own address; they allocate and free in it like malloc/free and
 * pass objects to each other as handles (offsets from the heap's base), never
 * as raw pointers.
 *
 * Policy: first fit. alloc takes the lowest-addressed free block that can
 * hold the request and carves the request from that block's lower end, so
 * the rest stays free right after it (a new block can often grow in place).
 * Blocks carry boundary tags, so free merges with both neighbours in O(1);
 * the free blocks are indexed by address in a balanced tree that finds the
 * first fit in O(log n).
 *
 * Concurrency: every call that touches the heap takes one process-shared
 * lock stored inside the heap. A process that dies holding it does not take
 * the heap down: a process waiting for the lock finds the owner gone
 * (within about 15 ms) and repairs the heap from its boundary tags before it
 * goes on. A contended call waits by looking at the lock at growing
 * intervals, pausing (up to 64 us) for its first 200 us and sleeping (up to
 * 1 ms) after that; the lock favours a running owner, which keeps it for
 * a run of calls, but is handed to a caller that has waited 5 ms. All calls
 * are safe from any number of threads and processes at once; a memory
 * handle may be shared by the threads of one process. A thread that calls
 * into a heap whose lock it already holds (from a walk or names callback),
 * through the same handle or another connection to that heap (even one the
 * callback made: such a connect succeeds), gets EDEADLK. A callback may
 * call into other heaps, and their callbacks further: a thread holds at
 * most 16 heaps' locks at once, and a call that would take a 17th gets
 * EDEADLK. A callback must
 * return: leaving it by longjmp, a C++ exception or thread cancellation
 * leaves the lock held by a live thread, and every other caller waits for
 * it. A child forked inside a callback does not hold the lock (its parent
 * does): its calls wait for the parent like anyone's, and its copy of the
 * walk does not release the parent's lock. None of the calls is
 * async-signal-safe except shmheap_version, shmheap_version_string,
 * shmheap_ptr_to_handle, shmheap_handle_to_ptr and shmheap_underlying.
 *
 * Processes sharing a heap must share a PID namespace for a dead lock
 * owner to be found: an owner in another PID namespace is waited for, never
 * judged (so a process that dies there holding the lock blocks the others
 * until a process of its own namespace calls in and repairs the heap). A
 * lock word that another process scribbled over is detected by its check
 * bits: the heap is then marked broken (EUCLEAN), never waited on for ever.
 *
 * A peer that truncates the shared memory object under connected processes
 * breaks the contract the kernel gives them: their next access beyond the
 * new end raises SIGBUS. The library checks the object's size wherever it
 * walks the heap without being asked to (connect, repair after a crash), so
 * a truncated heap is refused there (EINVAL, or EUCLEAN once marked broken).
 *
 * Errors: calls that fail return NULL, SHMHEAP_NULL_HANDLE, 0 or -1 and set
 * errno; the errno values are listed with each call. The library never
 * prints, exits or aborts on bad input from the caller.
 */
#ifndef SHMHEAP_H
#define SHMHEAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header (the library's version, semantic versioning:
 * see NEWS), and the format version of the heaps this library makes. A
 * process refuses to connect to a heap of another format version (EPROTO).
 * SHMHEAP_CHECK_VERSION(major, minor, micro) is true at compile time when
 * this header is at least that version; shmheap_version() tells the
 * version of the library actually loaded at run time. */
#define SHMHEAP_VERSION_MAJOR 0
#define SHMHEAP_VERSION_MINOR 2
#define SHMHEAP_VERSION_MICRO 0
#define SHMHEAP_VERSION_STRING "0.2.0"
#define SHMHEAP_FORMAT_VERSION 2

#define SHMHEAP_VERSION_ENCODE(major, minor, micro)                           \
  (((major) << 16) | ((minor) << 8) | (micro))
#define SHMHEAP_VERSION                                                        \
  SHMHEAP_VERSION_ENCODE(SHMHEAP_VERSION_MAJOR, SHMHEAP_VERSION_MINOR,         \
                         SHMHEAP_VERSION_MICRO)
#define SHMHEAP_CHECK_VERSION(major, minor, micro)                             \
  (SHMHEAP_VERSION >= SHMHEAP_VERSION_ENCODE(major, minor, micro))

/* Bytes the heap keeps for itself on x86-64 (header plus the first block's
 * tag): on an empty heap of len bytes every request up to len -
 * SHMHEAP_OVERHEAD succeeds. Every allocated block costs 8 bytes of tag;
 * pointers are aligned to SHMHEAP_ALIGNMENT. */
#define SHMHEAP_OVERHEAD 80
#define SHMHEAP_ALIGNMENT 16

/* A process's connection to one heap. Opaque; NULL means failure. */
typedef struct shmheap *shmheap_memory_handle;

/* Names an object in a heap in every process that maps it, whatever the
 * address of the mapping: a plain 8-byte value (the object's offset from the
 * heap's base), safe to store inside the heap to link objects. */
typedef uint64_t shmheap_object_handle;

/* The handle that names no object (a plain constant, clean in C and C++). */
#define SHMHEAP_NULL_HANDLE UINT64_C(0)

/* ------------------------------------------------------------------------ */
/* Version                                                                   */

/* The loaded library's version, SHMHEAP_VERSION_ENCODE(major, minor, micro);
 * compare it with SHMHEAP_VERSION to see what the program was built with.
 * Cost: O(1); async-signal-safe. */
unsigned shmheap_version(void);

/* The loaded library's version as "MAJOR.MINOR.MICRO". A static string.
 * Cost: O(1); async-signal-safe. */
const char *shmheap_version_string(void);

/* ------------------------------------------------------------------------ */
/* Heaps                                                                     */

/* Creates the heap NAME of LEN bytes with permissions 0600, and connects to
 * it. NAME is a POSIX shared memory name: a leading '/', no other '/', at
 * most NAME_MAX characters after the slash, and not "/." or "/..". LEN is a
 * nonzero multiple of the page size. The memory is reserved at once, so a
 * full /dev/shm fails here with ENOSPC rather than with SIGBUS later. The
 * heap is built under a private name and given NAME only once it is whole
 * (an atomic link that never replaces an existing name), so no process
 * ever connects to a half-made heap, and nothing is left behind on failure.
 * Errors: EEXIST (NAME is taken; the existing object is untouched), EINVAL
 * (NAME is not a valid name; LEN is 0, not a multiple of the page size or
 * larger than 2^48), ENOSPC, EACCES, EMFILE, ENFILE, ENOMEM.
 * Cost: O(1) plus the kernel's cost of reserving LEN bytes. */
shmheap_memory_handle shmheap_create(const char *name, size_t len);

/* As shmheap_create, with the object's permission bits set to MODE (for
 * example 0660 to share a heap with a group). The process umask does not
 * apply. Processes of other users need read and write access to connect.
 * Errors: as shmheap_create; EINVAL also when MODE has bits outside 0777. */
shmheap_memory_handle shmheap_create_mode(const char *name, size_t len,
                                          mode_t mode);

/* Like shmheap_create_mode, but the heap may grow to MAX_LEN bytes (a page
 * multiple >= LEN, at most 2^48). Only LEN bytes are reserved in /dev/shm at
 * create; the address space for MAX_LEN is reserved in every process that
 * connects, so the heap grows in place: no object moves, and every pointer
 * and handle stays valid in every process. An alloc, calloc or realloc that
 * finds no fit grows the heap (to twice its size when max_len and /dev/shm
 * allow, else by the least whole pages the request needs) before it fails
 * with ENOMEM; the new pages are reserved in /dev/shm before any process
 * can touch them, so a full /dev/shm is ENOMEM, never SIGBUS.
 * Errors: as shmheap_create_mode; EINVAL also when MAX_LEN < LEN, MAX_LEN is
 * not a page multiple or is larger than 2^48 (nothing is left in /dev/shm).
 * Cost: as shmheap_create, plus reserving (not committing) MAX_LEN bytes of
 * address space. */
shmheap_memory_handle shmheap_create_growable(const char *name, size_t len,
                                              size_t max_len, mode_t mode);

/* Grows the heap to NEW_LEN bytes (a page multiple <= its max_len). The new
 * space joins the heap as free memory. NEW_LEN <= the current size: 0,
 * nothing changes. Every process sees the new size at once, without
 * remapping.
 * Errors: EINVAL (MEM is NULL, NEW_LEN is not a page multiple or is above
 * max_len, or the heap was made without max_len), ENOSPC (/dev/shm cannot
 * hold it: nothing changes), EUCLEAN.
 * Cost: O(log n), plus the kernel's cost of reserving the new pages; when
 * the heap's last block is allocated, plus a walk over the allocated blocks
 * after the last free one (to find that block and give it its 8-byte
 * share of the new end). */
int shmheap_grow(shmheap_memory_handle mem, size_t new_len);

/* Connects to the existing heap NAME, mapping it wherever the kernel
 * chooses. Every field of the heap's header is checked against the object's
 * real size before any is used. If the creator has not finished
 * initialising, waits up to about one second for it. A heap whose lock a
 * live process holds (busy) connects after that second; the first call
 * then waits for the lock like any other.
 * Errors: ENOENT (no such object), EACCES (no read and write access),
 * EINVAL (not a valid name, or the object is not a shmheap: bad magic, a
 * header that disagrees with the object's size or fails its check word, an
 * empty or truncated object, a FIFO, a socket, a symbolic link), EPROTO (a
 * shmheap of another format version, or made by a build with another ABI:
 * pointer width, alignment), EAGAIN (a heap made in place, where /dev/shm
 * does not allow the atomic link create normally uses, has not finished
 * initialising: its creator is slow, or died half-way through create; an
 * object whose header is still all zeros looks just like that, whatever
 * made it, and gets EAGAIN too; an operator removes such an object with
 * shmheap_destroy(name, NULL) or `shmheap destroy NAME`), EUCLEAN (the
 * heap was found damaged beyond repair, or its lock word scribbled over,
 * and marked broken; it can only be destroyed), ENOMEM (also when the
 * address space for a growable heap's max_len cannot be reserved), EMFILE,
 * ENFILE. Each connection keeps the object open (one file descriptor)
 * until it is disconnected. Cost: O(1).
 */
shmheap_memory_handle shmheap_connect(const char *name);

/* Unmaps the heap from this process and frees MEM. The heap and its objects
 * stay for the other processes. NULL is a no-op. No other thread of this
 * process may be using MEM, or pointers into the heap, during or after the
 * call (the one unsafe pairing in the API). Cost: O(1). */
void shmheap_disconnect(shmheap_memory_handle mem);

/* Disconnects MEM (if not NULL) and removes the name NAME (if NAME is NULL,
 * the name MEM was created or connected with), so that no object of that
 * name remains; processes that still map the heap keep using it until they
 * disconnect. destroy(NULL, NULL) is a no-op. Removing a name that is not a
 * heap is allowed: it is how an operator removes a damaged object.
 * On failure to remove the name errno is set: ENOENT (no such name),
 * EACCES (no permission to remove it), EINVAL (a bad name), or another
 * error of unlink(2), such as EISDIR when the name is a directory, which is
 * never removed.
 * As with disconnect, no other thread of this process may be using MEM.
 * Cost: O(1). */
void shmheap_destroy(const char *name, shmheap_memory_handle mem);

/* The base address of this process's mapping of the heap: the address that
 * handle 0 would name. NULL (errno EINVAL) when MEM is NULL.
 * Cost: O(1), no lock. */
void *shmheap_underlying(shmheap_memory_handle mem);

/* ------------------------------------------------------------------------ */
/* Objects                                                                   */

/* Allocates SZ bytes, aligned to SHMHEAP_ALIGNMENT, from the lowest-addressed
 * free block that can hold them. alloc(0) returns a unique pointer that can
 * be freed.
 * Errors: ENOMEM (nothing fits, also for sizes too large to represent),
 * EINVAL (MEM is NULL), EUCLEAN (the heap's bookkeeping is damaged).
 * Cost: O(log n) in the number of free blocks; no system call unless the
 * lock is contended. A failure for want of room on a heap whose last
 * block is allocated walks the blocks after the last free one only when
 * the heap's last word passes for a footer its block does not confirm:
 * damage, what a process killed inside an earlier release left, or by a
 * chance of at most 1 in 65,536, what the last block's owner keeps there. */
void *shmheap_alloc(shmheap_memory_handle mem, size_t sz);

/* Allocates N * SZ bytes, zeroed.
 * Errors: as shmheap_alloc; ENOMEM when N * SZ overflows.
 * Cost: as shmheap_alloc, plus the zeroing. */
void *shmheap_calloc(shmheap_memory_handle mem, size_t n, size_t sz);

/* Changes the size of the block at PTR to SZ bytes, keeping its contents up
 * to the smaller of the two sizes. Shrinks in place (the tail goes back to
 * the heap); grows in place when the next block is free and large enough;
 * otherwise allocates, copies and frees. realloc(mem, NULL, sz) is
 * alloc(mem, sz); realloc(mem, ptr, 0) shrinks the block to the minimum and
 * returns it (it does not free it).
 * Errors: ENOMEM (no room; the old block is intact and still allocated),
 * EINVAL (PTR is not the start of a live block of this heap), EUCLEAN.
 * Cost: O(log n), plus the copy when the block moves. */
void *shmheap_realloc(shmheap_memory_handle mem, void *ptr, size_t sz);

/* Frees the block at PTR. NULL is a no-op. A pointer that is not the start
 * of a live block (a double free, an interior pointer, a pointer outside the
 * heap) is refused with errno EINVAL and the heap is left unchanged. So is a
 * block whose own tag was overwritten: free cannot tell that from a pointer
 * to no block (shmheap_check can). Damage that free does find, in a
 * neighbour's tag or the free index, is refused with errno EUCLEAN, the
 * heap left unchanged too. errno is left alone on
 * success: set it to 0 before the call to see whether free refused.
 * Cost: O(1) merging with both neighbours, O(log n) index update; a named
 * object first loses its names, O(1) expected each. */
void shmheap_free(shmheap_memory_handle mem, void *ptr);

/* The number of bytes usable at PTR (at least what was asked for). 0 with
 * errno EINVAL when PTR is not the start of a live block. Cost: O(1). */
size_t shmheap_usable_size(shmheap_memory_handle mem, void *ptr);

/* The handle of the byte at PTR, valid in every process connected to the
 * heap. Interior pointers are allowed (a handle may name a field of an
 * object). SHMHEAP_NULL_HANDLE for NULL and for pointers outside the heap's
 * data area. Cost: O(1), no lock. */
shmheap_object_handle shmheap_ptr_to_handle(shmheap_memory_handle mem,
                                            void *ptr);

/* The address in this process of the byte named by HDL. NULL for
 * SHMHEAP_NULL_HANDLE and for any value outside the heap's data area.
 * Cost: O(1), no lock. */
void *shmheap_handle_to_ptr(shmheap_memory_handle mem,
                            shmheap_object_handle hdl);

/* ------------------------------------------------------------------------ */
/* Names                                                                     */

/* A name (KEY: 1..255 bytes plus the NUL) refers to an allocated object, by
 * the handle shmheap_alloc's pointer has. Names live in the heap, so every
 * process sees them and they survive crashes like everything else: after
 * any crash a name is either fully there or absent. Freeing a named object
 * (free, or realloc that moves it) removes its names: lookup never returns a
 * freed block. An object may have several names. */

/* Publishes HDL under KEY. Names are stored in the heap itself: each name
 * takes a block of 41 + strlen(KEY) bytes (rounded up as alloc rounds), and
 * the directory one block of 64 + 16 bytes per slot (16 slots at first, kept
 * at least a quarter empty); both sizes count the block's 8-byte tag. A
 * heap without names holds no directory.
 * Returns 0, or -1 with errno EEXIST (KEY is taken), EINVAL (MEM NULL, bad
 * KEY, HDL not the start of a live object, or one of the directory's own
 * blocks), ENOMEM (no room for the name; a growable heap grows first),
 * EUCLEAN. Cost: O(1) expected, plus an allocation, and when the directory
 * fills, a rehash in O(names). */
int shmheap_publish(shmheap_memory_handle mem, const char *key,
                    shmheap_object_handle hdl);

/* The handle published under KEY; SHMHEAP_NULL_HANDLE with errno ENOENT (no
 * such name) or EINVAL (MEM NULL, bad KEY), EUCLEAN. Cost: O(1) expected. */
shmheap_object_handle shmheap_lookup(shmheap_memory_handle mem,
                                     const char *key);

/* Removes the name KEY; the object stays allocated. The last name to go
 * takes the directory with it.
 * Returns 0, or -1 with errno ENOENT, EINVAL, EUCLEAN. Cost: O(1) expected,
 * plus a free. */
int shmheap_unpublish(shmheap_memory_handle mem, const char *key);

/* Atomically: the object named KEY if there is one (*CREATED = 0), else SZ
 * zeroed bytes published under KEY (*CREATED = 1). Racing processes get the
 * same object, and exactly one of them sees *CREATED == 1. CREATED may be
 * NULL. Returns the object's address, or NULL with errno EINVAL, ENOMEM,
 * EUCLEAN (nothing is created then). Cost: lookup, plus alloc and publish. */
void *shmheap_lookup_or_alloc(shmheap_memory_handle mem, const char *key,
                              size_t sz, int *created);

/* Calls FN once per name, under the lock, in no particular order, until FN
 * returns nonzero. FN must not call into the same heap (the key it gets is
 * the heap's own copy, valid during the call).
 * Returns 0 when every name was visited, FN's nonzero value when FN stopped,
 * -1 with errno EINVAL (MEM or FN NULL) or EUCLEAN. Cost: O(directory
 * slots): a few times the most names the heap has held at once. */
int shmheap_names(shmheap_memory_handle mem,
                  int (*fn)(const char *key, shmheap_object_handle hdl,
                            void *arg),
                  void *arg);

/* ------------------------------------------------------------------------ */
/* Integrity and introspection                                              */

/* Checks, under the lock, every boundary tag and the free index: sizes and
 * alignment, headers and footers agree, no two free blocks are adjacent,
 * the index holds exactly the free blocks in address order with correct
 * subtree maxima and balance, the sizes add up to the heap, and every name
 * leads to a live object marked named (and every such object has a name).
 * Returns 0 when consistent; -1 with errno EUCLEAN on the first
 * inconsistency, EINVAL when MEM is NULL.
 * Cost: O(n) in the number of blocks. */
int shmheap_check(shmheap_memory_handle mem);

/* Where shmheap_check_detail found the first inconsistency. */
struct shmheap_damage {
  uint64_t offset; /* the block or index node at fault; 0 for the header */
  char what[120];  /* what is wrong there: one line, NUL-terminated */
};

/* As shmheap_check; on EUCLEAN also fills OUT (which may be NULL) with the
 * first inconsistency's offset and a one-line description. OUT is left
 * untouched when the heap is consistent.
 * Returns 0 or -1 with errno EUCLEAN or EINVAL (MEM is NULL).
 * Cost: O(n) in the number of blocks. */
int shmheap_check_detail(shmheap_memory_handle mem,
                         struct shmheap_damage *out);

struct shmheap_stats {
  uint64_t size;            /* bytes in the heap now (grows with shmheap_grow) */
  uint64_t used_bytes;      /* bytes in allocated blocks, tags included */
  uint64_t free_bytes;      /* bytes in free blocks, tags included */
  uint64_t largest_free;    /* the largest request alloc satisfies now,
                               without growing the heap (the largest free
                               block's size less its 8-byte tag) */
  uint64_t used_blocks;     /* allocated blocks */
  uint64_t free_blocks;     /* free blocks */
  uint32_t format_version;  /* SHMHEAP_FORMAT_VERSION of the heap */
  uint32_t reserved;        /* 0 */
  uint64_t max_size;        /* the most size may grow to; == size when the
                               heap cannot grow */
  uint64_t names;           /* published names */
};


/* Fills OUT with the heap's figures, taken under the lock so they agree with
 * each other. used_bytes + free_bytes + the header equal size.
 * Returns 0, or -1 with errno EINVAL (MEM or OUT is NULL) or EUCLEAN.
 * Cost: O(n) in the number of blocks: the heap's 72-byte header has no room
 * for counters, so the figures are summed by walking the tags. */
int shmheap_stats(shmheap_memory_handle mem, struct shmheap_stats *out);

struct shmheap_block {
  shmheap_object_handle offset; /* offset of the block's tag */
  uint64_t size;                /* bytes in the block, tag included */
  int used;                     /* 1 allocated, 0 free */
  uint32_t reserved;            /* 0 */
  shmheap_object_handle handle; /* used: the object's handle (what
                                   ptr_to_handle gives for alloc's pointer);
                                   free: SHMHEAP_NULL_HANDLE */
  uint64_t usable;              /* used: shmheap_usable_size; free: 0 */
};

/* Calls FN for every block in address order, under the lock, until FN
 * returns nonzero. FN must not call into the same heap (such a call fails
 * with EDEADLK, through any connection to it), must return (not longjmp or
 * throw out: the lock would stay held), and must not keep the block beyond
 * the call.
 * Returns 0 when every block was visited, FN's nonzero value when FN
 * stopped the walk, -1 with errno EINVAL (MEM or FN is NULL) or EUCLEAN.
 * Cost: O(n) in the number of blocks. */
int shmheap_walk(shmheap_memory_handle mem,
                 int (*fn)(const struct shmheap_block *block, void *arg),
                 void *arg);

#ifdef __cplusplus
}
#endif

#endif /* SHMHEAP_H */

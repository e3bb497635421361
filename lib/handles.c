/* handles.c: the calls that map pointers to handles and back, and
 * usable_size: questions about blocks, which change nothing. The mapping
 * takes no lock; usable_size reads the block's tag under it.
 */
#include <shmheap.h>

#include "locked.h"
#include "verified.h"

/* What usable_size passes to its locked body. */
struct usable_call {
  void *ptr;
  size_t sz;
};

static int usable_op(struct shmheap *h, void *arg) {
  struct usable_call *c = arg;
  struct blk a, next;
  int err = live_block(h, c->ptr, &a, &next);
  c->sz = err == 0 ? a.size - SHH_TAG : 0;
  return err;
}

SHH_EXPORT size_t shmheap_usable_size(shmheap_memory_handle mem, void *ptr) {
  struct usable_call c = {ptr, 0};
  (void)shh_locked(mem, usable_op, &c);
  return c.sz;
}

SHH_EXPORT shmheap_object_handle
shmheap_ptr_to_handle(shmheap_memory_handle mem, void *ptr) {
  uint64_t off;
  if (mem == NULL || ptr == NULL || !data_off_now(mem, ptr, &off))
    return SHMHEAP_NULL_HANDLE;
  return (shmheap_object_handle)off;
}

SHH_EXPORT void *shmheap_handle_to_ptr(shmheap_memory_handle mem,
                                       shmheap_object_handle hdl) {
  if (mem == NULL || !handle_ok_now(mem, hdl))
    return NULL;
  return mem->base + hdl;
}

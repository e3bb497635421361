/* The benchmark's bridge to Boost.Interprocess: C-callable wrappers around
 * managed_shared_memory with its default allocator (rbtree_best_fit) and
 * with simple_seq_fit (Boost's first fit), and around their named objects.
 * It owns nothing but these wrappers; the workloads and the timing live in
 * the C files, so every allocator runs the same loops. Compiled only when Boost
 * headers and a C++ compiler are found. */
#include "boost-ipc.h"

#include <boost/interprocess/creation_tags.hpp>
#include <boost/interprocess/indexes/iset_index.hpp>
#include <boost/interprocess/managed_shared_memory.hpp>
#include <boost/interprocess/mem_algo/rbtree_best_fit.hpp>
#include <boost/interprocess/mem_algo/simple_seq_fit.hpp>
#include <boost/interprocess/offset_ptr.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <boost/interprocess/sync/mutex_family.hpp>

#include <cerrno>
#include <new>

namespace bip = boost::interprocess;

namespace {

typedef bip::basic_managed_shared_memory<
    char, bip::rbtree_best_fit<bip::mutex_family, bip::offset_ptr<void>>,
    bip::iset_index>
    rbtree_segment;

typedef bip::basic_managed_shared_memory<
    char, bip::simple_seq_fit<bip::mutex_family, bip::offset_ptr<void>>,
    bip::iset_index>
    seqfit_segment;

template <typename Segment> void *create_segment(const char *name, size_t len) {
  try {
    return new Segment(bip::create_only, name, len);
  } catch (...) {
    return nullptr;
  }
}

template <typename Segment> void *open_segment(const char *name) {
  try {
    return new Segment(bip::open_only, name);
  } catch (...) {
    return nullptr;
  }
}

template <typename Segment>
void *construct_named(void *seg, const char *key, size_t sz) {
  void *p = nullptr;
  try {
    p = static_cast<Segment *>(seg)->template construct<char>(
        key, std::nothrow)[sz](0);
  } catch (...) {
  }
  if (p == nullptr)
    errno = ENOMEM;
  return p;
}

template <typename Segment> void *find_named(void *seg, const char *key) {
  try {
    return static_cast<Segment *>(seg)->template find<char>(key).first;
  } catch (...) {
    return nullptr;
  }
}

template <typename Segment> int destroy_named(void *seg, const char *key) {
  try {
    if (static_cast<Segment *>(seg)->template destroy<char>(key))
      return 0;
  } catch (...) {
  }
  errno = ENOENT;
  return -1;
}

} // namespace

extern "C" {

void *bx_rbtree_create(const char *name, size_t len) {
  return create_segment<rbtree_segment>(name, len);
}

void *bx_rbtree_open(const char *name) {
  return open_segment<rbtree_segment>(name);
}

void bx_rbtree_close(void *seg) {
  delete static_cast<rbtree_segment *>(seg);
}

void *bx_rbtree_alloc(void *seg, size_t sz) {
  return static_cast<rbtree_segment *>(seg)->allocate(sz, std::nothrow);
}

void bx_rbtree_free(void *seg, void *ptr) {
  static_cast<rbtree_segment *>(seg)->deallocate(ptr);
}

void *bx_seqfit_create(const char *name, size_t len) {
  return create_segment<seqfit_segment>(name, len);
}

void *bx_seqfit_open(const char *name) {
  return open_segment<seqfit_segment>(name);
}

void bx_seqfit_close(void *seg) {
  delete static_cast<seqfit_segment *>(seg);
}

void *bx_seqfit_alloc(void *seg, size_t sz) {
  return static_cast<seqfit_segment *>(seg)->allocate(sz, std::nothrow);
}

void bx_seqfit_free(void *seg, void *ptr) {
  static_cast<seqfit_segment *>(seg)->deallocate(ptr);
}

void *bx_rbtree_construct(void *seg, const char *key, size_t sz) {
  return construct_named<rbtree_segment>(seg, key, sz);
}

void *bx_rbtree_find(void *seg, const char *key) {
  return find_named<rbtree_segment>(seg, key);
}

int bx_rbtree_destroy(void *seg, const char *key) {
  return destroy_named<rbtree_segment>(seg, key);
}

void *bx_seqfit_construct(void *seg, const char *key, size_t sz) {
  return construct_named<seqfit_segment>(seg, key, sz);
}

void *bx_seqfit_find(void *seg, const char *key) {
  return find_named<seqfit_segment>(seg, key);
}

int bx_seqfit_destroy(void *seg, const char *key) {
  return destroy_named<seqfit_segment>(seg, key);
}

int bx_remove(const char *name) {
  try {
    return bip::shared_memory_object::remove(name) ? 0 : -1;
  } catch (...) {
    return -1;
  }
}

} // extern "C"

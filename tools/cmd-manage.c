/* cmd-manage.c: the commands that make, grow and remove heaps: `create`
 * (fixed or growable), `grow` and `destroy`. They print nothing on success.
 */
#include "tool.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

/* Why create failed, and its exit code. */
static int create_failed(const char *name, uint64_t size, int err) {
  switch (err) {
  case EEXIST:
    error_msg("create: %s: already exists", name);
    return TOOL_ERROR;
  case EINVAL:
    error_msg("create: %s: invalid name, size or maximum size", name);
    return TOOL_ERROR;
  case ENOSPC:
    error_msg("create: %s: not enough room in %s for %" PRIu64 " bytes", name,
              tool_shm_dir, size);
    return TOOL_ERROR;
  case ENOSYS:
    error_msg("create: %s: growable heaps (--max) are not supported by this "
              "build of the library",
              name);
    return TOOL_ERROR;
  default:
    error_msg("create: %s: %s", name, strerror(err));
    return TOOL_ERROR;
  }
}

static int run_create(const struct opts *o) {
  const char *name = o->pos[0];
  if (!heap_name_ok("create", name))
    return TOOL_USAGE;
  uint64_t size, max = 0;
  if (!parse_heap_size("create", "size", o->pos[1], &size))
    return TOOL_USAGE;
  if (o->max && !parse_heap_size("create", "maximum size", o->max, &max))
    return TOOL_USAGE;
  if (o->max && max < size)
    return usage_error("create", "bad maximum size '%s': less than SIZE",
                       o->max);
  unsigned mode = 0600;
  if (o->mode && !parse_mode(o->mode, &mode))
    return usage_error("create", "bad mode '%s' (octal, at most 0777)",
                       o->mode);
  shmheap_memory_handle mem =
      o->max ? shmheap_create_growable(name, (size_t)size, (size_t)max,
                                       (mode_t)mode)
             : shmheap_create_mode(name, (size_t)size, (mode_t)mode);
  if (!mem)
    return create_failed(name, size, errno);
  shmheap_disconnect(mem);
  return TOOL_OK;
}

const struct command cmd_create = {
    .name = "create",
    .synopsis = "create NAME SIZE [--mode M] [--max SIZE]",
    .summary = "create a heap",
    .help =
        "Usage: shmheap create NAME SIZE [--mode OCTAL] [--max SIZE]\n"
        "\n"
        "Create the heap NAME of SIZE bytes. NAME is a POSIX shared memory\n"
        "name such as /jobs. SIZE is a multiple of the page size and may\n"
        "end in K, M or G (powers of 1024). The memory is reserved at once.\n"
        "\n"
        "Options:\n"
        "  --mode OCTAL  permission bits of the object (default 0600; the\n"
        "                umask does not apply); e.g. 0660 for a group\n"
        "  --max SIZE    make a growable heap that may grow to SIZE bytes\n"
        "                (see 'shmheap grow')\n"
        "  -h, --help    show this help\n",
    .options = OPT_MODE | OPT_MAX,
    .npos = 2,
    .needs = "NAME and SIZE",
    .run = run_create,
};

static int run_grow(const struct opts *o) {
  const char *name = o->pos[0];
  if (!heap_name_ok("grow", name))
    return TOOL_USAGE;
  uint64_t size;
  if (!parse_heap_size("grow", "size", o->pos[1], &size))
    return TOOL_USAGE;
  shmheap_memory_handle mem;
  int rc = open_heap("grow", name, &mem);
  if (rc != TOOL_OK)
    return rc;
  /* reserving the new size happens under the lock and takes time of its
   * own: the wait must not run out on our own work */
  extend_wait("grow", name, size);
  int grown = shmheap_grow(mem, (size_t)size);
  int err = errno;
  close_heap(mem);
  if (grown == 0)
    return TOOL_OK;
  if (err == EINVAL) {
    error_msg("grow: %s: cannot grow to %" PRIu64
              " bytes: more than its maximum size, or made without --max",
              name, size);
    return TOOL_ERROR;
  }
  if (err == ENOSPC) {
    error_msg("grow: %s: not enough room in %s for %" PRIu64 " bytes", name,
              tool_shm_dir, size);
    return TOOL_ERROR;
  }
  return call_failed("grow", name, "shmheap_grow", err);
}

const struct command cmd_grow = {
    .name = "grow",
    .synopsis = "grow NAME SIZE",
    .summary = "grow a growable heap",
    .help = "Usage: shmheap grow NAME SIZE\n"
            "\n"
            "Grow the heap NAME, made with 'shmheap create --max', to SIZE\n"
            "bytes (a page multiple, at most its maximum size). The new space\n"
            "is free memory; no object moves. A SIZE at or below the current\n"
            "size changes nothing.\n"
            "\n"
            "Options:\n"
            "  -h, --help  show this help\n",
    .options = 0,
    .npos = 2,
    .needs = "NAME and SIZE",
    .run = run_grow,
};

static int run_destroy(const struct opts *o) {
  const char *name = o->pos[0];
  if (!heap_name_ok("destroy", name))
    return TOOL_USAGE;
  /* shmheap_destroy returns nothing; it sets errno when it cannot remove
   * the name, so errno is cleared first. */
  errno = 0;
  shmheap_destroy(name, NULL);
  int err = errno;
  if (err == ENOENT) {
    error_msg("destroy: %s: no such heap", name);
    return TOOL_NO_HEAP;
  }
  if (err != 0) {
    error_msg("destroy: %s: %s", name, strerror(err));
    return TOOL_ERROR;
  }
  return TOOL_OK;
}

const struct command cmd_destroy = {
    .name = "destroy",
    .synopsis = "destroy NAME",
    .summary = "remove a heap's name",
    .help = "Usage: shmheap destroy NAME\n"
            "\n"
            "Remove the name NAME. Processes that still map the heap keep\n"
            "using it until they disconnect. Works on damaged or half-made\n"
            "heaps, and on objects that are not heaps, too.\n"
            "\n"
            "Options:\n"
            "  -h, --help  show this help\n",
    .options = 0,
    .npos = 1,
    .needs = "NAME",
    .run = run_destroy,
};

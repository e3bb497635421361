/* cmd-ls.c: `shmheap ls`: the objects in /dev/shm and what they are. It
 * never connects: it opens each object read-only, reads the header's
 * fields at the offsets lib/layout.h names (magic, format version, ABI,
 * state, size, maximum size, names) and fstat's size, owner and mode. So it
 * takes no lock, writes nothing, never waits, and cannot disturb a heap another
 * process is using or recovering. What it reads without the lock is a
 * snapshot that may be changing as it is read.
 */
#include "tool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <header-rules.h>
#include <inttypes.h>
#include <layout.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What ls found out about one object. */
struct entry {
  char name[NAME_MAX + 2];
  struct stat sb;
  const char *state; /* ready, initialising, broken, not a heap, other
                        format, other ABI, no access */
  unsigned format;   /* the header's format version; 0 if none */
  uint64_t max_size; /* 0 when unknown */
  bool has_names;
};

/* The little-endian integer of N bytes at P (the header's byte order). */
static uint64_t le_bytes(const unsigned char *p, size_t n) {
  uint64_t v = 0;
  while (n--)
    v = v << 8 | p[n];
  return v;
}

static uint16_t le16(const unsigned char *p) {
  return (uint16_t)le_bytes(p, sizeof(uint16_t));
}
static uint32_t le32(const unsigned char *p) {
  return (uint32_t)le_bytes(p, sizeof(uint32_t));
}
static uint64_t le64(const unsigned char *p) {
  return le_bytes(p, sizeof(uint64_t));
}

/* Reads E's header from FD (open read-only) and says what E is. */
static void read_header(int fd, struct entry *e) {
  unsigned char h[SHH_HEADER_SIZE];
  uint64_t size = (uint64_t)e->sb.st_size;
  ssize_t got = size >= SHH_HEADER_SIZE ? pread(fd, h, sizeof h, 0) : 0;
  e->state = "not a heap";
  if (got < 0) {
    e->state = "no access";
    return;
  }
  /* A creator that has not written its header yet shows an empty or all-
   * zero object; shmheap_connect waits for such an object too. */
  bool whole = got == (ssize_t)sizeof h;
  uint32_t magic = whole ? le32(h + SHH_HDR_MAGIC) : 0;
  uint16_t state = whole ? le16(h + SHH_HDR_STATE) : SHH_STATE_INIT;
  if (magic == 0 && state == SHH_STATE_INIT && (whole || size == 0))
    e->state = "initialising";
  if (magic != SHH_MAGIC)
    return;
  e->format = le16(h + SHH_HDR_VERSION);
  if (e->format != SHMHEAP_FORMAT_VERSION) {
    e->state = "other format";
    return;
  }
  /* made by a build whose pointer width or alignment differs: connect
   * refuses it as it refuses another format (a heap still being made may
   * have its version written and not yet its ABI: it is initialising) */
  if (state != SHH_STATE_INIT && le32(h + SHH_HDR_ABI) != shh_abi()) {
    e->state = "other ABI";
    return;
  }
  uint64_t len = le64(h + SHH_HDR_LEN);
  uint64_t max_len = le64(h + SHH_HDR_MAX_LEN);
  /* a ready heap's sizes fit its object as connect requires: a copy cut
   * short, or with bytes added, is not a heap */
  if (state == SHH_STATE_READY &&
      !shh_sizes_fit(len, max_len, size, (uint64_t)sysconf(_SC_PAGESIZE)))
    return;
  /* 0: the heap cannot grow; a value below its size or past the largest
   * heap is not one a heap can have, and is shown as unknown. */
  if (max_len == 0)
    max_len = len;
  e->max_size = max_len >= len && max_len <= SHH_MAX_LEN ? max_len : 0;
  e->has_names = le64(h + SHH_HDR_NAMES) != 0;
  e->state = state == SHH_STATE_READY    ? "ready"
             : state == SHH_STATE_INIT   ? "initialising"
             : state == SHH_STATE_BROKEN ? "broken"
                                         : "not a heap";
}

/* Looks at the object /dev/shm/D_NAME. False when it is not listed: gone
 * meanwhile, not a regular file, or a POSIX semaphore (sem.NAME). */
static bool look_at(const char *d_name, struct entry *e) {
  if (d_name[0] == '.' || strncmp(d_name, "sem.", 4) == 0 ||
      strlen(d_name) > NAME_MAX)
    return false;
  memset(e, 0, sizeof *e);
  snprintf(e->name, sizeof e->name, "/%s", d_name);
  char path[sizeof tool_shm_dir + NAME_MAX + 2];
  snprintf(path, sizeof path, "%s/%s", tool_shm_dir, d_name);
  /* Only a regular file is opened: opening a FIFO would let a writer that
   * waits for a reader go on, and then break its pipe. */
  if (lstat(path, &e->sb) != 0 || !S_ISREG(e->sb.st_mode))
    return false;
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    e->state = "no access";
    return errno != ENOENT;
  }
  bool listed = fstat(fd, &e->sb) == 0 && S_ISREG(e->sb.st_mode);
  if (listed)
    read_header(fd, e);
  close(fd);
  return listed;
}

static void owner_name(uid_t uid, char *buf, size_t len) {
  const struct passwd *pw = getpwuid(uid);
  if (pw)
    snprintf(buf, len, "%s", pw->pw_name);
  else
    snprintf(buf, len, "%lu", (unsigned long)uid);
}

static void print_text(const struct entry *e) {
  char owner[64], max[24] = "-", state[32];
  owner_name(e->sb.st_uid, owner, sizeof owner);
  if (e->max_size)
    snprintf(max, sizeof max, "%" PRIu64, e->max_size);
  if (strcmp(e->state, "other format") == 0)
    snprintf(state, sizeof state, "format %u", e->format);
  else
    snprintf(state, sizeof state, "%s", e->state);
  char shown[TEXT_SAFE_MAX];
  printf("%-32s %14" PRIu64 " %14s %04o %-10s %s\n",
         text_safe(e->name, shown, sizeof shown),
         (uint64_t)e->sb.st_size, max, (unsigned)(e->sb.st_mode & 07777), owner,
         state);
}

static void print_json(struct json *j, const struct entry *e) {
  char owner[64];
  owner_name(e->sb.st_uid, owner, sizeof owner);
  json_begin_object(j);
  json_kv_string(j, "name", e->name);
  json_kv_u64(j, "size", (uint64_t)e->sb.st_size);
  json_key(j, "max_size");
  if (e->max_size)
    json_u64(j, e->max_size);
  else
    json_null(j);
  json_kv_string(j, "state", e->state);
  json_key(j, "format_version");
  if (e->format)
    json_u64(j, e->format);
  else
    json_null(j);
  json_key(j, "has_names");
  json_bool(j, e->has_names);
  json_kv_u64(j, "uid", (uint64_t)e->sb.st_uid);
  json_kv_string(j, "owner", owner);
  char mode[8];
  snprintf(mode, sizeof mode, "%04o", (unsigned)(e->sb.st_mode & 07777));
  json_kv_string(j, "mode", mode);
  json_end_object(j);
}

static int cmp_entry(const void *a, const void *b) {
  return strcmp(((const struct entry *)a)->name,
                ((const struct entry *)b)->name);
}

/* Reads /dev/shm into *V (sorted by name). Returns an exit code. */
static int scan(struct entry **v, size_t *n) {
  DIR *d = opendir(tool_shm_dir);
  if (!d) {
    error_msg("ls: %s: %s", tool_shm_dir, strerror(errno));
    return TOOL_ERROR;
  }
  size_t cap = 0;
  int err = 0;
  for (;;) {
    errno = 0;
    const struct dirent *de = readdir(d);
    if (!de) {
      err = errno;
      break;
    }
    if (*n == cap) {
      cap = cap ? cap * 2 : 32;
      struct entry *nv = realloc(*v, cap * sizeof *nv);
      if (!nv) {
        err = ENOMEM;
        break;
      }
      *v = nv;
    }
    if (look_at(de->d_name, &(*v)[*n]))
      ++*n;
  }
  closedir(d);
  if (err) {
    error_msg("ls: %s: %s", tool_shm_dir, strerror(err));
    return TOOL_ERROR;
  }
  qsort(*v, *n, sizeof **v, cmp_entry);
  return TOOL_OK;
}

static int run_ls(const struct opts *o) {
  struct entry *v = NULL;
  size_t n = 0;
  int rc = scan(&v, &n);
  if (rc == TOOL_OK && o->json) {
    struct json j;
    json_init(&j, stdout);
    json_begin_array(&j);
    for (size_t i = 0; i < n; i++)
      print_json(&j, &v[i]);
    json_end_array(&j);
  } else if (rc == TOOL_OK) {
    printf("%-32s %14s %14s %-4s %-10s %s\n", "NAME", "SIZE", "MAX_SIZE",
           "MODE", "OWNER", "STATE");
    for (size_t i = 0; i < n; i++)
      print_text(&v[i]);
  }
  free(v);
  return rc;
}

const struct command cmd_ls = {
    .name = "ls",
    .synopsis = "ls [--json]",
    .summary = "list /dev/shm (takes no lock)",
    .help =
        "Usage: shmheap ls [--json]\n"
        "\n"
        "List the objects in /dev/shm: name, size, maximum size, mode,\n"
        "owner and state: ready, initialising, broken, not a heap, format N\n"
        "(a heap of another format version), other ABI (made by a build\n"
        "with another pointer width or alignment) or no access (cannot be\n"
        "read).\n"
        "ls reads each header read-only: it takes no heap's lock, writes\n"
        "nothing and never waits, so it is safe beside running programs.\n"
        "\n"
        "Options:\n"
        "  --json      print a JSON array of {\"name\", \"size\", "
        "\"max_size\",\n"
        "              \"state\", \"format_version\", \"has_names\", \"uid\",\n"
        "              \"owner\", \"mode\"}\n"
        "  -h, --help  show this help\n",
    .options = OPT_JSON,
    .npos = 0,
    .needs = "",
    .run = run_ls,
};

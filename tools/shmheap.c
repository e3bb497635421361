/* shmheap(1): the command-line tool for operators and developers who need to
 * look inside a heap that is in use. It creates and removes heaps, prints
 * their figures, runs the integrity check, draws the used and free runs over
 * the address range (as a text bar and as SVG) and lists the heaps in
 * /dev/shm. It uses only the public API of <shmheap.h> and libc.
 *
 * Exit codes (as grep and diff): 0 success, 1 `check` found the heap
 * inconsistent, 2 any error (bad arguments, missing heap, not a heap, system
 * error). Every error is one line on stderr starting "shmheap: ".
 */
#include <shmheap.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
  EXIT_OK = 0,
  EXIT_INCONSISTENT = 1, /* only `check` */
  EXIT_ERROR = 2,
};

/* Every allocated block costs this many bytes of tag (<shmheap.h>): the
 * largest request that fits a free block is its size minus the tag. */
enum { TAG_BYTES = 8 };

/* The kernel directory that holds POSIX shared memory objects on Linux. */
static const char shm_dir[] = "/dev/shm";

/* Default width of the text bar of `map`, in cells. */
enum { MAP_WIDTH_DEFAULT = 64, MAP_WIDTH_MAX = 4096 };

/* ------------------------------------------------------------------------ */
/* Messages                                                                  */

static void error_msg(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void error_msg(const char *fmt, ...) {
  va_list ap;
  fputs("shmheap: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

/* A usage error: the message, then where to find help. */
static int usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  fputs("shmheap: ", stderr);
  if (cmd)
    fprintf(stderr, "%s: ", cmd);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nTry 'shmheap %s%s--help'.\n", cmd ? cmd : "",
          cmd ? " " : "");
  return EXIT_ERROR;
}

/* Why connecting to NAME failed, in an operator's words. */
static void connect_error(const char *cmd, const char *name, int err) {
  switch (err) {
  case ENOENT:
    error_msg("%s: %s: no such heap", cmd, name);
    break;
  case EACCES:
    error_msg("%s: %s: permission denied (need read and write access)", cmd,
              name);
    break;
  case EINVAL:
    error_msg("%s: %s: not a shmheap heap (or its header is damaged, or the "
              "name is invalid)",
              cmd, name);
    break;
  case EPROTO:
    error_msg("%s: %s: a shmheap heap of another format version or ABI "
              "(this tool reads format %d)",
              cmd, name, SHMHEAP_FORMAT_VERSION);
    break;
  case EAGAIN:
    error_msg("%s: %s: not ready: its creator has not finished initialising "
              "it (if the creator died, remove it with 'shmheap destroy %s')",
              cmd, name, name);
    break;
  case EUCLEAN:
    error_msg("%s: %s: the heap is damaged: recovery after a crash found "
              "tags it could not trust; remove it with 'shmheap destroy %s'",
              cmd, name, name);
    break;
  default:
    error_msg("%s: %s: %s", cmd, name, strerror(err));
    break;
  }
}

/* Why a call on a connected heap failed. */
static void heap_error(const char *cmd, const char *name, const char *what,
                       int err) {
  if (err == EUCLEAN)
    error_msg("%s: %s: the heap is damaged (%s failed); run 'shmheap check "
              "%s'",
              cmd, name, what, name);
  else
    error_msg("%s: %s: %s: %s", cmd, name, what, strerror(err));
}

/* ------------------------------------------------------------------------ */
/* Help                                                                      */

struct command {
  const char *name;
  const char *synopsis;
  const char *help;
  int (*run)(int argc, char **argv);
};

static const char general_help[] =
    "Usage: shmheap COMMAND [ARGS]\n"
    "       shmheap --help | --version\n"
    "\n"
    "Look inside and manage shmheap heaps (POSIX shared memory).\n"
    "NAME is a shared memory name such as /myheap (the leading '/' may be\n"
    "left out).\n"
    "\n"
    "Commands:\n";

static const char general_help_tail[] =
    "\n"
    "Run 'shmheap COMMAND --help' for a command's options.\n"
    "Exit status: 0 success, 1 'check' found the heap inconsistent, 2 error.\n"
    "See shmheap(1) and shmheap(3).\n";

/* ------------------------------------------------------------------------ */
/* Argument helpers                                                          */

/* Writes the shared memory name for ARG into BUF ("/" prepended when
 * missing). Returns false (after a message) when it cannot be a valid name:
 * empty, another '/' inside, or too long. */
static bool make_name(const char *cmd, const char *arg, char *buf,
                      size_t buflen) {
  const char *base = arg[0] == '/' ? arg + 1 : arg;
  if (base[0] == '\0') {
    usage_error(cmd, "'%s' is not a valid heap name", arg);
    return false;
  }
  if (strchr(base, '/')) {
    usage_error(cmd, "'%s' is not a valid heap name (no '/' after the first)",
                arg);
    return false;
  }
  if (strlen(base) > NAME_MAX || strlen(base) + 2 > buflen) {
    usage_error(cmd, "'%s' is not a valid heap name (longer than %d)", arg,
                NAME_MAX);
    return false;
  }
  snprintf(buf, buflen, "/%s", base);
  return true;
}

/* Parses SIZE: decimal digits with an optional binary suffix K, M or G
 * (case-insensitive, optionally followed by "iB" or "B"). */
static bool parse_size(const char *s, uint64_t *out) {
  if (*s < '0' || *s > '9')
    return false;
  uint64_t v = 0;
  for (; *s >= '0' && *s <= '9'; s++) {
    unsigned d = (unsigned)(*s - '0');
    if (v > (UINT64_MAX - d) / 10)
      return false;
    v = v * 10 + d;
  }
  unsigned shift = 0;
  switch (*s) {
  case '\0':
    break;
  case 'k':
  case 'K':
    shift = 10;
    break;
  case 'm':
  case 'M':
    shift = 20;
    break;
  case 'g':
  case 'G':
    shift = 30;
    break;
  default:
    return false;
  }
  if (shift) {
    const char *rest = s + 1;
    if (strcmp(rest, "iB") != 0 && strcmp(rest, "B") != 0 && *rest != '\0')
      return false;
    if (v > (UINT64_MAX >> shift))
      return false;
    v <<= shift;
  }
  *out = v;
  return true;
}

/* Parses an octal permission mode of at most 0777. */
static bool parse_mode(const char *s, unsigned *out) {
  if (*s == '\0')
    return false;
  unsigned v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '7')
      return false;
    v = v * 8 + (unsigned)(*s - '0');
    if (v > 0777)
      return false;
  }
  *out = v;
  return true;
}

/* "1.0 MiB" for humans, beside the exact byte count. */
static void human_size(uint64_t n, char *buf, size_t buflen) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = (double)n;
  size_t u = 0;
  while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
    v /= 1024.0;
    u++;
  }
  if (u == 0)
    snprintf(buf, buflen, "%" PRIu64 " B", n);
  else
    snprintf(buf, buflen, "%.1f %s", v, units[u]);
}

static bool is_help(const char *arg) {
  return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/* The positional arguments and recognised options of one command line.
 * Options may come before, between or after positionals; "--" ends them. */
struct opts {
  const char *pos[4];
  int npos;
  bool help;
  const char *mode; /* create --mode */
  const char *svg;  /* map --svg */
  const char *width;
  bool runs; /* map --runs */
};

/* Parses ARGV (after the command name). OPTS_WANTED lists the options the
 * command accepts, e.g. "mode". Returns false after a usage message. */
static bool parse_args(const char *cmd, int argc, char **argv,
                       const char *const *wanted, struct opts *o) {
  memset(o, 0, sizeof *o);
  bool only_pos = false;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!only_pos && strcmp(a, "--") == 0) {
      only_pos = true;
      continue;
    }
    if (!only_pos && a[0] == '-' && a[1] != '\0') {
      if (is_help(a)) {
        o->help = true;
        continue;
      }
      /* --opt VALUE or --opt=VALUE */
      const char *eq = strchr(a, '=');
      size_t len = eq ? (size_t)(eq - a) : strlen(a);
      const char *which = NULL;
      for (const char *const *w = wanted; *w; w++)
        if (len == strlen(*w) + 2 && a[0] == '-' && a[1] == '-' &&
            strncmp(a + 2, *w, len - 2) == 0)
          which = *w;
      if (!which) {
        usage_error(cmd, "unknown option '%s'", a);
        return false;
      }
      if (strcmp(which, "runs") == 0) {
        if (eq) {
          usage_error(cmd, "option '--runs' takes no value");
          return false;
        }
        o->runs = true;
        continue;
      }
      const char *val = eq ? eq + 1 : NULL;
      if (!val) {
        if (i + 1 >= argc) {
          usage_error(cmd, "option '--%s' needs a value", which);
          return false;
        }
        val = argv[++i];
      }
      if (strcmp(which, "mode") == 0)
        o->mode = val;
      else if (strcmp(which, "svg") == 0)
        o->svg = val;
      else if (strcmp(which, "width") == 0)
        o->width = val;
      continue;
    }
    if (o->npos == (int)(sizeof o->pos / sizeof o->pos[0])) {
      usage_error(cmd, "too many arguments");
      return false;
    }
    o->pos[o->npos++] = a;
  }
  return true;
}

/* Checks the number of positionals; prints a usage error otherwise. */
static bool want_positionals(const char *cmd, const struct opts *o, int n,
                             const char *what) {
  if (o->npos < n) {
    usage_error(cmd, "missing %s", what);
    return false;
  }
  if (o->npos > n) {
    usage_error(cmd, "unexpected argument '%s'", o->pos[n]);
    return false;
  }
  return true;
}

/* The library waits for a heap's lock as long as it takes, like any mutex.
 * An operator's tool must not hang behind a process that holds the lock and
 * never lets go (stopped, or blocked in a walk callback), so the commands
 * that lock arm an alarm: when it fires the lock was not had in time, and
 * the tool says so and exits. The message is formatted beforehand because
 * only write(2) is safe in the handler. */
static char busy_msg[512];

static void on_busy(int sig) {
  (void)sig;
  ssize_t n = write(STDERR_FILENO, busy_msg, strlen(busy_msg));
  (void)n;
  _exit(EXIT_ERROR);
}

static void arm_busy_alarm(const char *cmd, const char *name, uint64_t size) {
  /* a walk of a very large heap takes a while even unopposed */
  unsigned secs = 3 + (unsigned)(size >> 28);
  snprintf(busy_msg, sizeof busy_msg,
           "shmheap: %s: %s: busy: another process has held the heap's lock "
           "for over %u seconds (if it is stopped or stuck, kill it: the "
           "heap recovers when its lock owner dies)\n",
           cmd, name, secs);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_busy;
  sigaction(SIGALRM, &sa, NULL);
  alarm(secs);
}

/* Connects to the heap named by ARG. NULL after a message. */
static shmheap_memory_handle open_heap(const char *cmd, const char *arg,
                                       char *name, size_t namelen) {
  if (!make_name(cmd, arg, name, namelen))
    return NULL;
  shmheap_memory_handle mem = shmheap_connect(name);
  if (!mem) {
    connect_error(cmd, name, errno);
    return NULL;
  }
  char path[sizeof shm_dir + NAME_MAX + 2];
  struct stat sb;
  snprintf(path, sizeof path, "%s%s", shm_dir, name);
  arm_busy_alarm(cmd, name, stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0);
  return mem;
}

/* ------------------------------------------------------------------------ */
/* create, destroy                                                           */

static const char create_help[] =
    "Usage: shmheap create NAME SIZE [--mode OCTAL]\n"
    "\n"
    "Create the heap NAME of SIZE bytes. SIZE is a multiple of the page size\n"
    "(%ld bytes here) and may end in K, M or G (powers of 1024).\n"
    "The memory is reserved at once.\n"
    "\n"
    "Options:\n"
    "  --mode OCTAL  permission bits of the object (default 0600; the umask\n"
    "                does not apply); e.g. 0660 to share with a group\n"
    "  -h, --help    show this help\n";

static int cmd_create(int argc, char **argv) {
  static const char *const wanted[] = {"mode", NULL};
  struct opts o;
  if (!parse_args("create", argc, argv, wanted, &o))
    return EXIT_ERROR;
  long page = sysconf(_SC_PAGESIZE);
  if (o.help) {
    printf(create_help, page);
    return EXIT_OK;
  }
  if (!want_positionals("create", &o, 2, "NAME and SIZE"))
    return EXIT_ERROR;
  char name[NAME_MAX + 2];
  if (!make_name("create", o.pos[0], name, sizeof name))
    return EXIT_ERROR;
  uint64_t size;
  if (!parse_size(o.pos[1], &size))
    return usage_error("create",
                       "bad size '%s' (a number of bytes, optionally with "
                       "K, M or G)",
                       o.pos[1]);
  if (size == 0)
    return usage_error("create", "bad size '%s': must not be 0", o.pos[1]);
  if (page > 0 && size % (uint64_t)page != 0)
    return usage_error("create",
                       "bad size '%s': %" PRIu64
                       " bytes is not a multiple of the page size (%ld)",
                       o.pos[1], size, page);
  if (size > ((uint64_t)1 << 48) || size > SIZE_MAX)
    return usage_error("create", "bad size '%s': larger than 2^48 bytes",
                       o.pos[1]);
  unsigned mode = 0600;
  if (o.mode && !parse_mode(o.mode, &mode))
    return usage_error("create", "bad mode '%s' (octal, at most 0777)", o.mode);

  shmheap_memory_handle mem =
      shmheap_create_mode(name, (size_t)size, (mode_t)mode);
  if (!mem) {
    int err = errno;
    if (err == EEXIST)
      error_msg("create: %s: already exists", name);
    else if (err == EINVAL)
      error_msg("create: %s: invalid name or size", name);
    else if (err == ENOSPC)
      error_msg("create: %s: not enough room in %s for %" PRIu64 " bytes", name,
                shm_dir, size);
    else
      error_msg("create: %s: %s", name, strerror(err));
    return EXIT_ERROR;
  }
  shmheap_disconnect(mem);
  return EXIT_OK;
}

static const char destroy_help[] =
    "Usage: shmheap destroy NAME\n"
    "\n"
    "Remove the name NAME. Processes that still map the heap keep using it\n"
    "until they disconnect. Works on damaged or half-created objects too.\n"
    "\n"
    "Options:\n"
    "  -h, --help  show this help\n";

static int cmd_destroy(int argc, char **argv) {
  static const char *const wanted[] = {NULL};
  struct opts o;
  if (!parse_args("destroy", argc, argv, wanted, &o))
    return EXIT_ERROR;
  if (o.help) {
    fputs(destroy_help, stdout);
    return EXIT_OK;
  }
  if (!want_positionals("destroy", &o, 1, "NAME"))
    return EXIT_ERROR;
  char name[NAME_MAX + 2];
  if (!make_name("destroy", o.pos[0], name, sizeof name))
    return EXIT_ERROR;
  /* shmheap_destroy returns nothing; it sets errno when it cannot remove the
   * name, so errno is cleared first. */
  errno = 0;
  shmheap_destroy(name, NULL);
  int err = errno;
  if (err == ENOENT) {
    error_msg("destroy: %s: no such heap", name);
    return EXIT_ERROR;
  }
  if (err != 0) {
    error_msg("destroy: %s: %s", name, strerror(err));
    return EXIT_ERROR;
  }
  return EXIT_OK;
}

/* ------------------------------------------------------------------------ */
/* info, check                                                               */

static const char info_help[] =
    "Usage: shmheap info NAME\n"
    "\n"
    "Print the heap's figures, taken under its lock so they agree:\n"
    "size, used and free bytes and blocks, the largest free block,\n"
    "the format version and the fragmentation (1 - largest free block /\n"
    "free bytes). Bytes include the 8-byte block tags.\n"
    "\n"
    "Options:\n"
    "  -h, --help  show this help\n";

static int cmd_info(int argc, char **argv) {
  static const char *const wanted[] = {NULL};
  struct opts o;
  if (!parse_args("info", argc, argv, wanted, &o))
    return EXIT_ERROR;
  if (o.help) {
    fputs(info_help, stdout);
    return EXIT_OK;
  }
  if (!want_positionals("info", &o, 1, "NAME"))
    return EXIT_ERROR;
  char name[NAME_MAX + 2];
  shmheap_memory_handle mem = open_heap("info", o.pos[0], name, sizeof name);
  if (!mem)
    return EXIT_ERROR;
  struct shmheap_stats st;
  int rc = shmheap_stats(mem, &st);
  int err = errno;
  shmheap_disconnect(mem);
  if (rc != 0) {
    heap_error("info", name, "shmheap_stats", err);
    return EXIT_ERROR;
  }
  /* The largest free block, tag included, so that it is in the same unit
   * as free_bytes: a block of B bytes takes requests up to B - TAG_BYTES. */
  uint64_t largest_block = st.free_blocks ? st.largest_free + TAG_BYTES : 0;
  double frag =
      st.free_bytes ? 1.0 - (double)largest_block / (double)st.free_bytes : 0.0;
  if (frag < 0.0)
    frag = 0.0;
  char h1[32], h2[32], h3[32], h4[32];
  human_size(st.size, h1, sizeof h1);
  human_size(st.used_bytes, h2, sizeof h2);
  human_size(st.free_bytes, h3, sizeof h3);
  human_size(largest_block, h4, sizeof h4);
  printf("name:            %s\n", name);
  printf("size:            %" PRIu64 " (%s)\n", st.size, h1);
  printf("used:            %" PRIu64 " (%s)\n", st.used_bytes, h2);
  printf("free:            %" PRIu64 " (%s)\n", st.free_bytes, h3);
  printf("largest free:    %" PRIu64 " (%s)\n", largest_block, h4);
  printf("largest request: %" PRIu64 "\n", st.largest_free);
  printf("used blocks:     %" PRIu64 "\n", st.used_blocks);
  printf("free blocks:     %" PRIu64 "\n", st.free_blocks);
  printf("format version:  %" PRIu32 "\n", st.format_version);
  printf("fragmentation:   %.1f%%\n", frag * 100.0);
  return EXIT_OK;
}

static const char check_help[] =
    "Usage: shmheap check NAME\n"
    "\n"
    "Check every boundary tag and the free index of the heap, under its\n"
    "lock. Prints 'NAME: ok' and exits 0 when the heap is consistent;\n"
    "exits 1 when it is not, 2 when it cannot be checked.\n"
    "\n"
    "Options:\n"
    "  -h, --help  show this help\n";

static int cmd_check(int argc, char **argv) {
  static const char *const wanted[] = {NULL};
  struct opts o;
  if (!parse_args("check", argc, argv, wanted, &o))
    return EXIT_ERROR;
  if (o.help) {
    fputs(check_help, stdout);
    return EXIT_OK;
  }
  if (!want_positionals("check", &o, 1, "NAME"))
    return EXIT_ERROR;
  char name[NAME_MAX + 2];
  shmheap_memory_handle mem = open_heap("check", o.pos[0], name, sizeof name);
  if (!mem)
    return EXIT_ERROR;
  int rc = shmheap_check(mem);
  int err = errno;
  shmheap_disconnect(mem);
  if (rc == 0) {
    printf("%s: ok\n", name);
    return EXIT_OK;
  }
  if (err == EUCLEAN) {
    error_msg("check: %s: inconsistent: the heap is damaged", name);
    return EXIT_INCONSISTENT;
  }
  error_msg("check: %s: %s", name, strerror(err));
  return EXIT_ERROR;
}

/* ------------------------------------------------------------------------ */
/* map                                                                       */

/* A run of adjacent blocks that are all used or all free. */
struct run {
  uint64_t off;
  uint64_t size;
  uint64_t blocks;
  int used;
};

struct runs {
  struct run *v;
  size_t n, cap;
  bool oom;
  uint64_t end; /* offset just past the last block seen */
};

/* shmheap_walk callback: runs under the heap's lock, so it only appends to
 * a malloc'd array and never calls into the heap. */
static int collect_run(const struct shmheap_block *b, void *arg) {
  struct runs *r = arg;
  int used = b->used ? 1 : 0;
  if (r->n && r->v[r->n - 1].used == used &&
      r->v[r->n - 1].off + r->v[r->n - 1].size == b->offset) {
    r->v[r->n - 1].size += b->size;
    r->v[r->n - 1].blocks++;
  } else {
    if (r->n == r->cap) {
      size_t cap = r->cap ? r->cap * 2 : 64;
      struct run *v = realloc(r->v, cap * sizeof *v);
      if (!v) {
        r->oom = true;
        return 1;
      }
      r->v = v;
      r->cap = cap;
    }
    r->v[r->n++] = (struct run){b->offset, b->size, 1, used};
  }
  r->end = b->offset + b->size;
  return 0;
}

/* Writes S to F with the five XML special characters escaped. */
static void xml_escape(FILE *f, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '&':
      fputs("&amp;", f);
      break;
    case '<':
      fputs("&lt;", f);
      break;
    case '>':
      fputs("&gt;", f);
      break;
    case '"':
      fputs("&quot;", f);
      break;
    case '\'':
      fputs("&apos;", f);
      break;
    default:
      /* Control characters are not allowed in XML 1.0 text. */
      if ((unsigned char)*s < 0x20)
        fputc('?', f);
      else
        fputc(*s, f);
      break;
    }
  }
}

/* Draws the runs as SVG: one bar over the address range (header grey, used
 * runs dark, free runs light), offsets underneath, a legend, and a <title>
 * per run so a browser shows its offset and size on hover. */
static int write_svg(const char *path, const char *name, uint64_t size,
                     const struct runs *r, uint64_t used, uint64_t free_b) {
  FILE *f = fopen(path, "w");
  if (!f) {
    error_msg("map: %s: %s", path, strerror(errno));
    return EXIT_ERROR;
  }
  const double x0 = 20, w = 960, y0 = 50, h = 60;
  const uint64_t hdr = r->n ? r->v[0].off : size;
  fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
             "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1000\" "
             "height=\"170\" viewBox=\"0 0 1000 170\" "
             "font-family=\"sans-serif\" font-size=\"12\">\n");
  fputs("<title>shmheap map of ", f);
  xml_escape(f, name);
  fputs("</title>\n", f);
  fputs("<text x=\"20\" y=\"24\" font-size=\"16\">", f);
  xml_escape(f, name);
  fprintf(f,
          ": %" PRIu64 " bytes, %" PRIu64 " in used blocks, %" PRIu64
          " in free blocks</text>\n",
          size, used - hdr, free_b);
  fprintf(f,
          "<rect class=\"frame\" x=\"%.3f\" y=\"%.3f\" width=\"%.3f\" "
          "height=\"%.3f\" fill=\"#ffffff\" stroke=\"#333333\"/>\n",
          x0, y0, w, h);
  fprintf(f,
          "<rect class=\"header\" x=\"%.3f\" y=\"%.3f\" width=\"%.3f\" "
          "height=\"%.3f\" fill=\"#888888\"><title>header: offset 0, %" PRIu64
          " bytes</title></rect>\n",
          x0, y0, w * (double)hdr / (double)size, h, hdr);
  for (size_t i = 0; i < r->n; i++) {
    const struct run *u = &r->v[i];
    fprintf(f,
            "<rect class=\"%s\" x=\"%.3f\" y=\"%.3f\" width=\"%.3f\" "
            "height=\"%.3f\" fill=\"%s\"><title>%s: offset %" PRIu64
            ", %" PRIu64 " bytes, %" PRIu64 " block%s</title></rect>\n",
            u->used ? "used" : "free", x0 + w * (double)u->off / (double)size,
            y0, w * (double)u->size / (double)size, h,
            u->used ? "#c0392b" : "#d5f5d5", u->used ? "used" : "free", u->off,
            u->size, u->blocks, u->blocks == 1 ? "" : "s");
  }
  for (int t = 0; t <= 4; t++) {
    double x = x0 + w * t / 4.0;
    fprintf(f,
            "<line x1=\"%.3f\" y1=\"%.3f\" x2=\"%.3f\" y2=\"%.3f\" "
            "stroke=\"#333333\"/>\n",
            x, y0 + h, x, y0 + h + 6);
    fprintf(f,
            "<text x=\"%.3f\" y=\"%.3f\" text-anchor=\"%s\">%" PRIu64
            "</text>\n",
            x, y0 + h + 20,
            t == 0   ? "start"
            : t == 4 ? "end"
                     : "middle",
            size / 4 * (uint64_t)t + (t == 4 ? size % 4 : 0));
  }
  fprintf(f, "<rect x=\"20\" y=\"148\" width=\"12\" height=\"12\" "
             "fill=\"#c0392b\"/><text x=\"38\" y=\"158\">used</text>\n"
             "<rect x=\"90\" y=\"148\" width=\"12\" height=\"12\" "
             "fill=\"#d5f5d5\" stroke=\"#333333\"/>"
             "<text x=\"108\" y=\"158\">free</text>\n"
             "<rect x=\"160\" y=\"148\" width=\"12\" height=\"12\" "
             "fill=\"#888888\"/><text x=\"178\" y=\"158\">header</text>\n"
             "</svg>\n");
  if (ferror(f) | (fclose(f) != 0)) {
    error_msg("map: %s: write failed", path);
    return EXIT_ERROR;
  }
  return EXIT_OK;
}

static const char map_help[] =
    "Usage: shmheap map NAME [--width N] [--runs] [--svg FILE]\n"
    "\n"
    "Draw the heap's used and free runs over its address range as a text\n"
    "bar, one cell per SIZE/N bytes:\n"
    "  '#' all used   '+' mostly used   '-' mostly free   '.' all free\n"
    "(the heap's header counts as used).\n"
    "\n"
    "Options:\n"
    "  --width N   cells in the bar (default 64, at most 4096)\n"
    "  --runs      also list every run: offset, bytes, blocks, used/free\n"
    "  --svg FILE  also write the picture as SVG to FILE\n"
    "  -h, --help  show this help\n";

static int cmd_map(int argc, char **argv) {
  static const char *const wanted[] = {"svg", "width", "runs", NULL};
  struct opts o;
  if (!parse_args("map", argc, argv, wanted, &o))
    return EXIT_ERROR;
  if (o.help) {
    fputs(map_help, stdout);
    return EXIT_OK;
  }
  if (!want_positionals("map", &o, 1, "NAME"))
    return EXIT_ERROR;
  uint64_t width = MAP_WIDTH_DEFAULT;
  if (o.width &&
      (!parse_size(o.width, &width) || width == 0 || width > MAP_WIDTH_MAX))
    return usage_error("map", "bad width '%s' (1 to %d)", o.width,
                       MAP_WIDTH_MAX);
  char name[NAME_MAX + 2];
  shmheap_memory_handle mem = open_heap("map", o.pos[0], name, sizeof name);
  if (!mem)
    return EXIT_ERROR;
  struct runs r = {0};
  int rc = shmheap_walk(mem, collect_run, &r);
  int err = errno;
  /* The heap's size is where its last block ends (blocks tile the heap
   * after the header), so one walk under one lock gives a coherent map. */
  uint64_t size = r.end;
  shmheap_disconnect(mem);
  if (r.oom) {
    free(r.v);
    error_msg("map: %s: out of memory", name);
    return EXIT_ERROR;
  }
  if (rc != 0) {
    free(r.v);
    heap_error("map", name, "shmheap_walk", err);
    return EXIT_ERROR;
  }
  if (size == 0 || r.n == 0) {
    free(r.v);
    error_msg("map: %s: the heap has no blocks", name);
    return EXIT_ERROR;
  }

  uint64_t used = r.v[0].off, free_b = 0, nused = 0, nfree = 0;
  for (size_t i = 0; i < r.n; i++) {
    if (r.v[i].used) {
      used += r.v[i].size;
      nused += r.v[i].blocks;
    } else {
      free_b += r.v[i].size;
      nfree += r.v[i].blocks;
    }
  }

  /* Bytes used in each cell: the header, then every used run, spread over
   * the cells it overlaps. Cell c covers [c*size/width, (c+1)*size/width). */
  uint64_t *cell_used = calloc((size_t)width, sizeof *cell_used);
  if (!cell_used) {
    free(r.v);
    error_msg("map: out of memory");
    return EXIT_ERROR;
  }
  /* No overflow: size <= 2^48 (create refuses more) and width <= 2^12. */
#define CELL_START(c) ((uint64_t)(c)*size / width)
  for (size_t i = 0; i <= r.n; i++) {
    /* i == r.n stands for the header [0, first block). */
    uint64_t a, b;
    if (i == r.n) {
      a = 0;
      b = r.v[0].off;
    } else if (r.v[i].used) {
      a = r.v[i].off;
      b = a + r.v[i].size;
    } else {
      continue;
    }
    if (a >= b)
      continue;
    uint64_t c = a * width / size;
    for (; c < width && CELL_START(c) < b; c++) {
      uint64_t lo = CELL_START(c), hi = CELL_START(c + 1);
      uint64_t s = a > lo ? a : lo, e = b < hi ? b : hi;
      if (e > s)
        cell_used[c] += e - s;
    }
  }

  char h[32];
  human_size(size, h, sizeof h);
  printf("%s: %" PRIu64 " bytes (%s), %" PRIu64 " used blocks, %" PRIu64
         " free blocks, %.1f%% used\n",
         name, size, h, nused, nfree, 100.0 * (double)used / (double)size);
  putchar('|');
  for (uint64_t c = 0; c < width; c++) {
    uint64_t span = CELL_START(c + 1) - CELL_START(c);
    uint64_t u = cell_used[c];
    char ch;
    if (u >= span)
      ch = '#';
    else if (u == 0)
      ch = '.';
    else if (2 * u >= span)
      ch = '+';
    else
      ch = '-';
    putchar(ch);
  }
  puts("|");
#undef CELL_START
  /* Offsets under the bar: 0 under its left edge, the size under its
   * right edge. */
  char end[24];
  int endlen = snprintf(end, sizeof end, "%" PRIu64, size);
  int pad = (int)width + 2 - 1 - endlen;
  printf("0%*s%s\n", pad > 1 ? pad : 1, "", end);
  human_size((size + width - 1) / width, h, sizeof h);
  printf("one cell = %s; '#' used, '+' mostly used, '-' mostly free, "
         "'.' free\n",
         h);
  if (o.runs) {
    printf("%-14s %-14s %-10s %s\n", "offset", "bytes", "blocks", "state");
    printf("%-14" PRIu64 " %-14" PRIu64 " %-10s %s\n", (uint64_t)0, r.v[0].off,
           "-", "header");
    for (size_t i = 0; i < r.n; i++)
      printf("%-14" PRIu64 " %-14" PRIu64 " %-10" PRIu64 " %s\n", r.v[i].off,
             r.v[i].size, r.v[i].blocks, r.v[i].used ? "used" : "free");
  }
  free(cell_used);
  int ret = EXIT_OK;
  if (o.svg)
    ret = write_svg(o.svg, name, size, &r, used, free_b);
  free(r.v);
  if (fflush(stdout) != 0)
    ret = EXIT_ERROR;
  return ret;
}

/* ------------------------------------------------------------------------ */
/* ls                                                                        */

static const char ls_help[] =
    "Usage: shmheap ls\n"
    "\n"
    "List the shmheap heaps in /dev/shm: name, size in bytes, size for\n"
    "humans, permission bits. An object is listed when shmheap_connect\n"
    "recognises it. Heaps of another format version, damaged heaps and\n"
    "heaps that are not ready (being created, creator dead, or lock held\n"
    "for over a second) are listed with a note. An all-zero object looks\n"
    "like a heap being created: it costs ls a second and is listed so.\n"
    "\n"
    "Options:\n"
    "  -h, --help  show this help\n";

static int cmd_ls(int argc, char **argv) {
  static const char *const wanted[] = {NULL};
  struct opts o;
  if (!parse_args("ls", argc, argv, wanted, &o))
    return EXIT_ERROR;
  if (o.help) {
    fputs(ls_help, stdout);
    return EXIT_OK;
  }
  if (!want_positionals("ls", &o, 0, ""))
    return EXIT_ERROR;
  DIR *d = opendir(shm_dir);
  if (!d) {
    error_msg("ls: %s: %s", shm_dir, strerror(errno));
    return EXIT_ERROR;
  }
  long page = sysconf(_SC_PAGESIZE);
  int err = 0;
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(d);
    if (!e) {
      err = errno;
      break;
    }
    /* POSIX semaphores live here too, as sem.NAME. */
    if (e->d_name[0] == '.' || strncmp(e->d_name, "sem.", 4) == 0)
      continue;
    char path[sizeof shm_dir + NAME_MAX + 2];
    snprintf(path, sizeof path, "%s/%s", shm_dir, e->d_name);
    struct stat sb;
    /* A heap is a regular file of a nonzero multiple of the page size;
     * anything else is skipped before connecting to it. */
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size <= 0 ||
        (page > 0 && sb.st_size % page != 0))
      continue;
    char name[NAME_MAX + 2];
    snprintf(name, sizeof name, "/%s", e->d_name);
    const char *note = NULL;
    shmheap_memory_handle mem = shmheap_connect(name);
    if (mem)
      shmheap_disconnect(mem);
    else if (errno == EPROTO)
      note = "  (another format version or ABI)";
    else if (errno == EAGAIN)
      note = "  (not ready: being created, or its creator died)";
    else if (errno == EUCLEAN)
      note = "  (damaged)";
    else
      continue;
    char h[32];
    human_size((uint64_t)sb.st_size, h, sizeof h);
    printf("%-32s %14" PRIu64 "  %-10s %04o%s\n", name, (uint64_t)sb.st_size, h,
           (unsigned)(sb.st_mode & 07777), note ? note : "");
  }
  closedir(d);
  if (err) {
    error_msg("ls: %s: %s", shm_dir, strerror(err));
    return EXIT_ERROR;
  }
  return EXIT_OK;
}

/* ------------------------------------------------------------------------ */
/* main                                                                      */

static const struct command commands[] = {
    {"create", "create NAME SIZE [--mode OCTAL]", "create a heap", cmd_create},
    {"destroy", "destroy NAME", "remove a heap's name", cmd_destroy},
    {"info", "info NAME", "print sizes, block counts, fragmentation", cmd_info},
    {"check", "check NAME", "check the heap's integrity (exit 0 / 1)",
     cmd_check},
    {"map", "map NAME [--svg FILE] [...]", "draw used and free runs", cmd_map},
    {"ls", "ls", "list the heaps in /dev/shm", cmd_ls},
};

static void print_general_help(void) {
  fputs(general_help, stdout);
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    printf("  %-34s %s\n", commands[i].synopsis, commands[i].help);
  fputs(general_help_tail, stdout);
}

int main(int argc, char **argv) {
  if (argc < 2)
    return usage_error(NULL, "missing command");
  const char *cmd = argv[1];
  if (is_help(cmd) || strcmp(cmd, "help") == 0) {
    if (argc > 2 && strcmp(cmd, "help") == 0) {
      /* "shmheap help CMD" is "shmheap CMD --help". */
      for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[2], commands[i].name) == 0) {
          char help[] = "--help";
          char *args[] = {help, NULL};
          return commands[i].run(1, args);
        }
      return usage_error(NULL, "unknown command '%s'", argv[2]);
    }
    print_general_help();
    return EXIT_OK;
  }
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
    printf("shmheap %d.%d.%d (heap format %d)\n", SHMHEAP_VERSION_MAJOR,
           SHMHEAP_VERSION_MINOR, SHMHEAP_VERSION_MICRO,
           SHMHEAP_FORMAT_VERSION);
    return EXIT_OK;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(cmd, commands[i].name) == 0) {
      int rc = commands[i].run(argc - 2, argv + 2);
      if (fflush(stdout) != 0 && rc == EXIT_OK) {
        error_msg("write error: %s", strerror(errno));
        rc = EXIT_ERROR;
      }
      return rc;
    }
  if (cmd[0] == '-')
    return usage_error(NULL, "unknown option '%s'", cmd);
  return usage_error(NULL, "unknown command '%s'", cmd);
}

/* args.c: the tool's command line: options and positionals, and the checks
 * of the values operators type (heap names, sizes, modes). A heap name
 * follows the API's one rule (a leading '/', no other '/'), so a name that
 * works here works in a program and the other way round.
 */
#include "tool.h"

#include <inttypes.h>
#include <layout.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

/* The options the tool knows: their spelling, bit, and whether they take a
 * value. */
static const struct option {
  const char *name;
  unsigned bit;
  bool takes_value;
} options[] = {
    {"mode", OPT_MODE, true},  {"max", OPT_MAX, true},
    {"svg", OPT_SVG, true},    {"width", OPT_WIDTH, true},
    {"runs", OPT_RUNS, false}, {"json", OPT_JSON, false},
};

static bool is_help(const char *arg) {
  return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/* The option "--NAME" or "--NAME=..." that A spells, or NULL. */
static const struct option *find_option(const char *a, unsigned wanted) {
  if (a[0] != '-' || a[1] != '-')
    return NULL;
  const char *eq = strchr(a, '=');
  size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
  for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
    if ((options[i].bit & wanted) && strlen(options[i].name) == len &&
        strncmp(a + 2, options[i].name, len) == 0)
      return &options[i];
  return NULL;
}

static void set_option(struct opts *o, unsigned bit, const char *val) {
  switch (bit) {
  case OPT_MODE:
    o->mode = val;
    break;
  case OPT_MAX:
    o->max = val;
    break;
  case OPT_SVG:
    o->svg = val;
    break;
  case OPT_WIDTH:
    o->width = val;
    break;
  case OPT_RUNS:
    o->runs = true;
    break;
  case OPT_JSON:
    o->json = true;
    break;
  default:
    break;
  }
}

/* Takes the option at ARGV[*I] (and its value, which may be the next
 * argument). False after a usage message. */
static bool take_option(const char *cmd, int argc, char **argv, int *i,
                        unsigned wanted, struct opts *o) {
  const char *a = argv[*i];
  const struct option *opt = find_option(a, wanted);
  if (!opt) {
    usage_error(cmd, "unknown option '%s'", a);
    return false;
  }
  const char *eq = strchr(a, '=');
  if (!opt->takes_value) {
    if (eq) {
      usage_error(cmd, "option '--%s' takes no value", opt->name);
      return false;
    }
    set_option(o, opt->bit, NULL);
    return true;
  }
  const char *val = eq ? eq + 1 : NULL;
  if (!val) {
    if (*i + 1 >= argc) {
      usage_error(cmd, "option '--%s' needs a value", opt->name);
      return false;
    }
    val = argv[++*i];
  }
  set_option(o, opt->bit, val);
  return true;
}

bool parse_args(const char *cmd, int argc, char **argv, unsigned wanted,
                struct opts *o) {
  memset(o, 0, sizeof *o);
  /* --help wins whatever else is on the line (before a "--") */
  for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++) {
    if (is_help(argv[i])) {
      o->help = true;
      return true;
    }
  }
  bool only_pos = false;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!only_pos && strcmp(a, "--") == 0) {
      only_pos = true;
    } else if (!only_pos && a[0] == '-' && a[1] != '\0') {
      if (!take_option(cmd, argc, argv, &i, wanted, o))
        return false;
    } else if (o->npos == OPTS_MAX_POS) {
      usage_error(cmd, "too many arguments");
      return false;
    } else {
      o->pos[o->npos++] = a;
    }
  }
  return true;
}

bool want_positionals(const char *cmd, const struct opts *o, int n,
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

bool heap_name_ok(const char *cmd, const char *arg) {
  if (arg[0] != '/') {
    if (arg[0] != '\0' && !strchr(arg, '/') && strlen(arg) <= NAME_MAX)
      usage_error(cmd,
                  "'%s' is not a heap name: heap names start with '/': "
                  "try /%s",
                  arg, arg);
    else
      usage_error(cmd,
                  "'%s' is not a heap name: heap names start with '/' and "
                  "have no other '/'",
                  arg);
    return false;
  }
  const char *base = arg + 1;
  if (base[0] == '\0' || strchr(base, '/') || strlen(base) > NAME_MAX) {
    usage_error(cmd,
                "'%s' is not a heap name: a heap name is '/' and 1 to %d "
                "characters other than '/'",
                arg, NAME_MAX);
    return false;
  }
  if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
    usage_error(cmd, "'%s' is not a heap name: it names a directory", arg);
    return false;
  }
  return true;
}

static unsigned suffix_shift(const char *s, bool *ok) {
  static const char units[] = "kmg";
  *ok = true;
  if (*s == '\0')
    return 0;
  const char *u = strchr(units, *s | 0x20);
  const char *rest = s + 1;
  if (!u ||
      (*rest != '\0' && strcmp(rest, "iB") != 0 && strcmp(rest, "B") != 0)) {
    *ok = false;
    return 0;
  }
  return 10 * (unsigned)(u - units + 1);
}

bool parse_size(const char *s, uint64_t *out) {
  if (*s < '0' || *s > '9')
    return false;
  uint64_t v = 0;
  for (; *s >= '0' && *s <= '9'; s++) {
    unsigned d = (unsigned)(*s - '0');
    if (v > (UINT64_MAX - d) / 10)
      return false;
    v = v * 10 + d;
  }
  bool ok;
  unsigned shift = suffix_shift(s, &ok);
  if (!ok || v > (UINT64_MAX >> shift))
    return false;
  *out = v << shift;
  return true;
}

bool parse_heap_size(const char *cmd, const char *what, const char *s,
                     uint64_t *out) {
  long page = sysconf(_SC_PAGESIZE);
  uint64_t size;
  if (!parse_size(s, &size)) {
    usage_error(cmd,
                "bad %s '%s' (a number of bytes, optionally with K, M "
                "or G)",
                what, s);
    return false;
  }
  if (size == 0) {
    usage_error(cmd, "bad %s '%s': must not be 0", what, s);
    return false;
  }
  if (page > 0 && size % (uint64_t)page != 0) {
    usage_error(cmd,
                "bad %s '%s': %" PRIu64
                " bytes is not a multiple of the page size (%ld)",
                what, s, size, page);
    return false;
  }
  if (size > SHH_MAX_LEN || size > SIZE_MAX) {
    usage_error(cmd, "bad %s '%s': larger than 2^48 bytes", what, s);
    return false;
  }
  *out = size;
  return true;
}

bool parse_mode(const char *s, unsigned *out) {
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

void human_size(uint64_t n, char *buf, size_t buflen) {
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

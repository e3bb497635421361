/* tool.h: what the files of the shmheap(1) command share: its exit codes,
 * its messages, the command-line parser and argument checks, opening a heap
 * with a bounded wait for its lock, the JSON writer and the renderers of a
 * heap's map. Internal to tools/; the tool uses only the public API of
 * <shmheap.h> and the layout numbers of lib/layout.h.
 */
#ifndef SHMHEAP_TOOL_H
#define SHMHEAP_TOOL_H

#include <shmheap.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes: each class of outcome has its own, so that scripts can tell
 * them apart (doc/shmheap.1 lists them). */
enum tool_exit {
  TOOL_OK = 0,
  TOOL_DAMAGED = 1,  /* check found damage, or the heap is marked broken */
  TOOL_USAGE = 2,    /* bad command line */
  TOOL_NO_HEAP = 3,  /* no object of that name */
  TOOL_NOT_HEAP = 4, /* not a heap, or another format version or ABI */
  TOOL_BUSY = 5,     /* lock held past the wait, or creator initialising */
  TOOL_ERROR = 6,    /* anything else: permissions, I/O, unsupported */
};

/* The kernel directory that holds POSIX shared memory objects on Linux. */
extern const char tool_shm_dir[sizeof "/dev/shm"];

/* ------------------------------------------------------------------------ */
/* Messages (errors.c)                                                       */

/* One line on stderr: "shmheap: " and the formatted text. */
void error_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* S (a heap name, say) copied into BUF (N bytes) for a line of text, its
 * control characters (C0, DEL, C1) and any bytes that are not UTF-8 shown
 * as '?': a name from /dev/shm, which anyone may create, can neither add a
 * line nor reach the terminal as an escape sequence. The --json forms
 * escape them instead. Returns BUF. */
enum { TEXT_SAFE_MAX = 512 };
const char *text_safe(const char *s, char *buf, size_t n);

/* A usage error: the message, then where to find help. Returns TOOL_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reports why connecting to NAME failed (ERR is connect's errno) and
 * returns the exit code for it. */
int connect_failed(const char *cmd, const char *name, int err);

/* Reports why WHAT failed on the connected heap NAME (ERR is its errno) and
 * returns the exit code for it. */
int call_failed(const char *cmd, const char *name, const char *what, int err);

/* Connects to the heap NAME (already checked by heap_name_ok) and arms the
 * bounded wait for its lock. Returns TOOL_OK with *MEM set, or the exit
 * code after a message. */
int open_heap(const char *cmd, const char *name, shmheap_memory_handle *mem);

/* Gives the bounded wait that open_heap armed the time a heap of SIZE bytes
 * takes: for a call whose own work under the lock grows with a size other
 * than the heap's now (grow reserving the new size). */
void extend_wait(const char *cmd, const char *name, uint64_t size);

/* As open_heap, but quiet: returns 0 or connect's errno. */
int try_open_heap(const char *cmd, const char *name,
                  shmheap_memory_handle *mem);

/* Disarms the wait open_heap armed and disconnects. Call it as soon as the
 * calls that take the lock are done, before printing. */
void close_heap(shmheap_memory_handle mem);

/* ------------------------------------------------------------------------ */
/* Command line (args.c)                                                     */

/* The options a command accepts, as bits. */
enum opt_bit {
  OPT_MODE = 1u << 0,  /* --mode OCTAL */
  OPT_MAX = 1u << 1,   /* --max SIZE */
  OPT_SVG = 1u << 2,   /* --svg FILE */
  OPT_WIDTH = 1u << 3, /* --width N */
  OPT_RUNS = 1u << 4,  /* --runs */
  OPT_JSON = 1u << 5,  /* --json */
};

enum { OPTS_MAX_POS = 4 };

/* The positional arguments and options of one command line. Options may
 * come before, between or after positionals; "--" ends them. */
struct opts {
  const char *pos[OPTS_MAX_POS];
  int npos;
  bool help;
  bool json;
  bool runs;
  const char *mode;
  const char *max;
  const char *svg;
  const char *width;
};

/* Parses ARGV (after the command name), accepting the options in WANTED.
 * Returns false after a usage message. */
bool parse_args(const char *cmd, int argc, char **argv, unsigned wanted,
                struct opts *o);

/* Whether O has exactly N positionals (WHAT names them for the message). */
bool want_positionals(const char *cmd, const struct opts *o, int n,
                      const char *what);

/* Whether ARG is a heap name as the API wants it: a leading '/', no other
 * '/', 1 to NAME_MAX characters after it. False after a usage message. */
bool heap_name_ok(const char *cmd, const char *arg);

/* SIZE: decimal digits with an optional binary suffix K, M or G
 * (either case, optionally followed by "iB" or "B"). */
bool parse_size(const char *s, uint64_t *out);

/* A heap size for create or grow: a nonzero page multiple of at most 2^48.
 * WHAT names the argument in the message. False after a usage message. */
bool parse_heap_size(const char *cmd, const char *what, const char *s,
                     uint64_t *out);

/* An octal permission mode of at most 0777. */
bool parse_mode(const char *s, unsigned *out);

/* "1.0 MiB" for humans, beside an exact byte count. */
void human_size(uint64_t n, char *buf, size_t buflen);

/* ------------------------------------------------------------------------ */
/* Commands (cmd-*.c)                                                        */

struct command {
  const char *name;
  const char *synopsis; /* for the general help */
  const char *summary;
  const char *help;  /* the command's --help text */
  unsigned options;  /* OPT_* it accepts */
  int npos;          /* positionals it takes */
  const char *needs; /* what they are, for "missing ..." */
  int (*run)(const struct opts *o);
};

extern const struct command cmd_create, cmd_destroy, cmd_grow;
extern const struct command cmd_info, cmd_check, cmd_names;
extern const struct command cmd_map, cmd_ls;

/* ------------------------------------------------------------------------ */
/* JSON (json.c)                                                             */

enum { JSON_MAX_DEPTH = 8 };

/* A streaming writer of one JSON document: values go out as they come,
 * commas and nesting are kept track of here. */
struct json {
  FILE *f;
  int depth;
  bool has_items[JSON_MAX_DEPTH]; /* a comma goes before the next item */
  bool after_key;                 /* the next value belongs to a key */
};

void json_init(struct json *j, FILE *f);
void json_begin_object(struct json *j);
void json_end_object(struct json *j);
void json_begin_array(struct json *j);
void json_end_array(struct json *j);
void json_key(struct json *j, const char *key);
void json_string(struct json *j, const char *s);
void json_u64(struct json *j, uint64_t v);
void json_double(struct json *j, double v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);

/* The length of the UTF-8 sequence at S (1 to 4), or 0 when S does not
 * start a valid one (overlong forms, surrogates and values past U+10FFFF
 * are not valid). Output that must be UTF-8 writes U+FFFD for such bytes. */
size_t utf8_len(const unsigned char *s);

/* A key and its value in one call. */
void json_kv_string(struct json *j, const char *key, const char *s);
void json_kv_u64(struct json *j, const char *key, uint64_t v);

/* ------------------------------------------------------------------------ */
/* A heap's map (render.c)                                                   */

/* A run of adjacent blocks that are all used or all free. */
struct map_run {
  uint64_t off;
  uint64_t size;
  uint64_t blocks;
  int used;
};

/* The heap as one walk saw it: the header [0, header), then the runs, which
 * tile [header, size). */
struct heap_map {
  const char *name;
  uint64_t size;
  uint64_t header;
  const struct map_run *runs;
  size_t n;
};

/* Cells in the SVG picture at most, whatever the number of blocks, and in
 * the text bar by default and at most. */
enum { MAP_SVG_CELLS = 4096, MAP_WIDTH_DEFAULT = 64, MAP_WIDTH_MAX = 4096 };

/* Fills CELL_USED[0..NCELLS) with the used bytes (header included) in each
 * cell; cell c covers [cell_start(c), cell_start(c + 1)). */
void map_cells(const struct heap_map *m, uint64_t *cell_used, size_t ncells);
uint64_t cell_start(const struct heap_map *m, size_t ncells, size_t c);

/* Prints the text bar of WIDTH cells with its caption. */
int render_bar(FILE *f, const struct heap_map *m, size_t width);

/* Writes the binned SVG picture to PATH. Returns an exit code. */
int render_svg(const char *path, const struct heap_map *m);

#endif

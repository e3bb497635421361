/* test-tool.h: what the test files of the shmheap(1) tool share: running
 * the tool and checking its errors, reading its text and JSON output (JSON
 * is parsed by python3), and making heaps and other objects to look at.
 * The tool's test is one executable built from test-tool*.c.
 */
#ifndef SHMHEAP_TEST_TOOL_H
#define SHMHEAP_TEST_TOOL_H

#include <glib.h>
#include <shmheap.h>

#include <stddef.h>
#include <sys/types.h>

/* The tool's exit codes (doc/shmheap.1). */
enum {
  EXIT_DAMAGED = 1,
  EXIT_USAGE = 2,
  EXIT_NO_HEAP = 3,
  EXIT_NOT_HEAP = 4,
  EXIT_BUSY = 5,
  EXIT_ERROR = 6,
};

/* The tool under test (from SHMHEAP_TOOL). */
extern const char *tool_path;

/* The result of one run of the tool. */
struct run {
  int code; /* exit code */
  char *out;
  char *err;
};

/* A unique shared memory name for a tool test, written into BUF (at least
 * 64 bytes); removed should the test process die of a signal. */
char *tool_name(char *buf, size_t len);

void run_clear(struct run *r);

/* Runs ARGV (NULL-terminated) and waits for it; it must exit normally. */
struct run spawn(char **argv, GSpawnFlags flags);

/* Runs the tool with the NULL-terminated arguments and waits for it. */
struct run tool(const char *first, ...);

/* Asserts an error run: exit code CODE, nothing on stdout, and one stderr
 * message starting "shmheap: " that contains WANT (if not NULL). */
void assert_error(struct run *r, int code, const char *want);

/* The rest of the line "KEY: value" in TEXT. */
const char *field_str(const char *text, const char *key, char *buf, size_t len);

/* The value of the line "KEY: value" in TEXT, as a number. */
guint64 field_u64(const char *text, const char *key);

/* Parses TEXT as JSON (it must be valid) into a table PATH -> VALUE. */
GHashTable *json_parse(const char *text);

/* The raw value at PATH; the test fails when there is none. */
const char *json_raw(GHashTable *t, const char *path);

guint64 json_u64(GHashTable *t, const char *path);

double json_num(GHashTable *t, const char *path);

gboolean json_bool(GHashTable *t, const char *path);

/* The string at PATH, decoded (g_free it). */
char *json_str(GHashTable *t, const char *path);

void assert_json_str(GHashTable *t, const char *path, const char *want);

/* The index of the element of the array at PATH whose KEY is the string
 * WANT, or -1. */
int json_find(GHashTable *t, const char *path, const char *key,
              const char *want);

/* "PREFIX.I.KEY" (g_free it). */
char *jpath(const char *prefix, int i, const char *key);

mode_t shm_mode(const char *name);

/* Makes a shared memory object NAME of LEN bytes that is not a heap: every
 * byte is BYTE. */
void make_non_heap(const char *name, size_t len, int byte);

/* Makes heap NAME of LEN bytes with three objects of which the middle one
 * is freed again, so that it has used and free blocks apart from each
 * other. Returns the connection. */
shmheap_memory_handle make_fragmented(const char *name, size_t len);

/* Writes the little-endian u16 V at OFF of the heap's header, as a stray
 * write (or another build) would. */
void poke_u16(shmheap_memory_handle mem, size_t off, unsigned v);

/* The fragmentation info reports: 1 - largest free block / free bytes. */
double fragmentation(const struct shmheap_stats *st);

/* Asserts that info NAME, as text and as JSON, shows exactly ST. */
void assert_info(const char *name, const struct shmheap_stats *st);

/* A name full of JSON's and XML's special characters, and a byte that is
 * not UTF-8: output must escape them. Written into BUF. */
const char *odd_name(char *buf, size_t len);

/* NAME as text output shows it: control characters and bytes that are not
 * UTF-8 as '?' (g_free). */
char *text_form(const char *name);
/* The name as JSON output carries it: the byte that is not UTF-8 becomes
 * U+FFFD. */
char *json_form(const char *name);

/* Asserts that ls --json lists NAME with STATE (and FORMAT when not 0). */
void assert_ls_state(const char *name, const char *state, unsigned format);

/* Asserts that ls's line of text for NAME ends with SUFFIX, and that
 * assert_ls_state (NAME, STATE, FORMAT) holds. */
void assert_ls_shows(const char *name, const char *suffix, const char *state,
                     unsigned format);

/* The line of text ls prints for NAME (g_free it), or NULL. */
char *ls_line(const char *out, const char *name);

/* The test cases of each file, registered with g_test_add_func. */
void add_inspect_tests(void);
void add_map_tests(void);

#endif

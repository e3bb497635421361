/* errors.c: the tool's messages and exit codes, and opening a heap. Every
 * error is one line on stderr starting "shmheap: "; each errno the library
 * gives is turned into an operator's words and one of the exit codes of
 * tool.h here, and nowhere else. Opening a heap also arms a bounded wait
 * for its lock, so that no command hangs behind a stuck lock owner.
 */
#include "tool.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char tool_shm_dir[sizeof "/dev/shm"] = "/dev/shm";

/* Control characters of BUF, in place, as '?': C0 and DEL, C1 (U+0080 to
 * U+009F, which some terminals obey as escapes), and bytes that are not
 * UTF-8 (which an 8-bit terminal may read as C1). BUF may shrink. */
static void mask_controls(char *buf) {
  unsigned char *r = (unsigned char *)buf, *w = r;
  while (*r) {
    size_t n = utf8_len(r); /* json.c */
    int ctl = n == 0 || (n == 1 && (*r < 0x20 || *r == 0x7f)) ||
              (n == 2 && r[0] == 0xc2 && r[1] < 0xa0);
    if (ctl) {
      *w++ = '?';
      r += n ? n : 1;
    } else {
      while (n--)
        *w++ = *r++;
    }
  }
  *w = 0;
}

const char *text_safe(const char *s, char *buf, size_t n) {
  snprintf(buf, n, "%s", s);
  mask_controls(buf);
  return buf;
}

/* FMT's message on stderr, its control characters (a newline in a heap
 * name, say) shown as '?', so that a message stays one line. */
static void put_message(const char *fmt, va_list ap) {
  char buf[2048];
  vsnprintf(buf, sizeof buf, fmt, ap);
  mask_controls(buf);
  fputs(buf, stderr);
}

void error_msg(const char *fmt, ...) {
  va_list ap;
  fputs("shmheap: ", stderr);
  va_start(ap, fmt);
  put_message(fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

int usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  fputs("shmheap: ", stderr);
  if (cmd)
    fprintf(stderr, "%s: ", cmd);
  va_start(ap, fmt);
  put_message(fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nTry 'shmheap %s%s--help'.\n", cmd ? cmd : "",
          cmd ? " " : "");
  return TOOL_USAGE;
}

int connect_failed(const char *cmd, const char *name, int err) {
  switch (err) {
  case ENOENT:
    error_msg("%s: %s: no such heap", cmd, name);
    return TOOL_NO_HEAP;
  case EINVAL:
    error_msg("%s: %s: not a shmheap heap (or its header or lock is "
              "damaged)",
              cmd, name);
    return TOOL_NOT_HEAP;
  case EPROTO:
    error_msg("%s: %s: a shmheap heap of another format version or ABI "
              "(this tool reads format %d)",
              cmd, name, SHMHEAP_FORMAT_VERSION);
    return TOOL_NOT_HEAP;
  case EAGAIN:
    error_msg("%s: %s: busy: its creator has not finished initialising it "
              "(if the creator died, remove it with 'shmheap destroy %s')",
              cmd, name, name);
    return TOOL_BUSY;
  case EUCLEAN:
    error_msg("%s: %s: the heap is marked broken: recovery after a crash "
              "found tags it could not trust; remove it with 'shmheap "
              "destroy %s'",
              cmd, name, name);
    return TOOL_DAMAGED;
  case EACCES:
    error_msg("%s: %s: permission denied (need read and write access)", cmd,
              name);
    return TOOL_ERROR;
  default:
    error_msg("%s: %s: %s", cmd, name, strerror(err));
    return TOOL_ERROR;
  }
}

int call_failed(const char *cmd, const char *name, const char *what, int err) {
  if (err == EUCLEAN) {
    error_msg("%s: %s: the heap is damaged (%s failed); run 'shmheap check "
              "%s'",
              cmd, name, what, name);
    return TOOL_DAMAGED;
  }
  if (err == ENOSYS) {
    error_msg("%s: %s: %s is not supported by this build of the library", cmd,
              name, what);
    return TOOL_ERROR;
  }
  error_msg("%s: %s: %s: %s", cmd, name, what, strerror(err));
  return TOOL_ERROR;
}

/* The library waits for a heap's lock as long as it takes, like any mutex.
 * An operator's tool must not hang behind a process that holds the lock and
 * never lets go (stopped, or blocked in a walk callback), so open_heap arms
 * an alarm: when it fires the lock was not had in time, and the tool says
 * so and exits. The message is formatted beforehand because only write(2)
 * is safe in the handler. */
static char busy_msg[512];

static void on_busy(int sig) {
  (void)sig;
  ssize_t n = write(STDERR_FILENO, busy_msg, strlen(busy_msg));
  (void)n;
  _exit(TOOL_BUSY);
}

/* The wait for a heap of SIZE bytes: a walk of a very large heap, or the
 * reservation of a large size, takes a while even unopposed. */
static unsigned wait_secs(uint64_t size) {
  return 3 + (unsigned)(size >> 28);
}

static void arm_busy_alarm(const char *cmd, const char *name, uint64_t size) {
  unsigned secs = wait_secs(size);
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

void extend_wait(const char *cmd, const char *name, uint64_t size) {
  unsigned left = alarm(0);
  if (left >= wait_secs(size))
    alarm(left); /* as long already */
  else
    arm_busy_alarm(cmd, name, size);
}

int try_open_heap(const char *cmd, const char *name,
                  shmheap_memory_handle *mem) {
  *mem = shmheap_connect(name);
  if (!*mem)
    return errno;
  char path[sizeof tool_shm_dir + NAME_MAX + 2];
  struct stat sb;
  snprintf(path, sizeof path, "%s%s", tool_shm_dir, name);
  arm_busy_alarm(cmd, name, stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0);
  return 0;
}

int open_heap(const char *cmd, const char *name, shmheap_memory_handle *mem) {
  int err = try_open_heap(cmd, name, mem);
  return err ? connect_failed(cmd, name, err) : TOOL_OK;
}

void close_heap(shmheap_memory_handle mem) {
  alarm(0);
  shmheap_disconnect(mem);
}

/* A consumer of shmheap: a parent puts a message in a heap, a separate
 * process (this program run again with "child NAME HANDLE") reads it through
 * its own mapping and answers with an object of its own, and the parent reads
 * the answer. Only handles cross between the processes, never pointers.
 * Exits 0 and prints "consumer: ok ..." when everything agreed.
 */
#define _POSIX_C_SOURCE 200809L

#include <shmheap.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* The object both processes agree on; it lives in the heap. */
struct mailbox {
  shmheap_object_handle message; /* a string written by the parent */
  shmheap_object_handle reply;   /* a string written by the child */
};

static int fail(const char *what) {
  fprintf(stderr, "consumer: %s: %s\n", what, strerror(errno));
  return 1;
}

/* Copies S into the heap; returns its handle (SHMHEAP_NULL_HANDLE on
 * failure). */
static shmheap_object_handle heap_strdup(shmheap_memory_handle mem,
                                         const char *s) {
  size_t n = strlen(s) + 1;
  char *p = shmheap_alloc(mem, n);
  if (!p)
    return SHMHEAP_NULL_HANDLE;
  memcpy(p, s, n);
  return shmheap_ptr_to_handle(mem, p);
}

static int child(const char *name, const char *box_arg) {
  shmheap_memory_handle mem = shmheap_connect(name);
  if (!mem)
    return fail("child: shmheap_connect");
  struct mailbox *box = shmheap_handle_to_ptr(
      mem, (shmheap_object_handle)strtoull(box_arg, NULL, 10));
  const char *msg = box ? shmheap_handle_to_ptr(mem, box->message) : NULL;
  if (!msg) {
    fprintf(stderr, "consumer: child: bad handle\n");
    return 1;
  }
  char reply[128];
  snprintf(reply, sizeof reply, "child %ld read \"%s\"", (long)getpid(), msg);
  box->reply = heap_strdup(mem, reply);
  if (box->reply == SHMHEAP_NULL_HANDLE)
    return fail("child: shmheap_alloc");
  shmheap_disconnect(mem);
  return 0;
}

int main(int argc, char **argv) {
  alarm(30);
  if (argc == 4 && strcmp(argv[1], "child") == 0)
    return child(argv[2], argv[3]);

  char name[64];
  snprintf(name, sizeof name, "/shmheap-consumer-%ld", (long)getpid());
  shmheap_memory_handle mem = shmheap_create(name, 1 << 20);
  if (!mem)
    return fail("shmheap_create");

  int rc = 1;
  struct mailbox *box = shmheap_calloc(mem, 1, sizeof *box);
  if (!box) {
    fail("shmheap_calloc");
    goto out;
  }
  char msg[64];
  snprintf(msg, sizeof msg, "hello from %ld", (long)getpid());
  box->message = heap_strdup(mem, msg);
  if (box->message == SHMHEAP_NULL_HANDLE) {
    fail("shmheap_alloc");
    goto out;
  }

  /* A new program image in the child, so it maps the heap on its own. */
  char box_arg[32];
  snprintf(box_arg, sizeof box_arg, "%" PRIu64,
           (uint64_t)shmheap_ptr_to_handle(mem, box));
  pid_t pid = fork();
  if (pid < 0) {
    fail("fork");
    goto out;
  }
  if (pid == 0) {
    char child_arg[] = "child";
    char *args[] = {argv[0], child_arg, name, box_arg, NULL};
    execv("/proc/self/exe", args);
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) {
      fail("waitpid");
      goto out;
    }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "consumer: child failed (status %d)\n", status);
    goto out;
  }

  const char *reply = shmheap_handle_to_ptr(mem, box->reply);
  if (!reply || !strstr(reply, msg)) {
    fprintf(stderr, "consumer: wrong reply '%s'\n", reply ? reply : "(null)");
    goto out;
  }
  struct shmheap_stats st;
  if (shmheap_check(mem) != 0 || shmheap_stats(mem, &st) != 0) {
    fail("shmheap_check");
    goto out;
  }
  if (st.used_blocks != 3) {
    fprintf(stderr, "consumer: %" PRIu64 " used blocks, want 3\n",
            st.used_blocks);
    goto out;
  }
  printf("consumer: ok: %s (shmheap %d.%d.%d)\n", reply, SHMHEAP_VERSION_MAJOR,
         SHMHEAP_VERSION_MINOR, SHMHEAP_VERSION_MICRO);
  rc = 0;
out:
  shmheap_destroy(NULL, mem);
  return rc;
}

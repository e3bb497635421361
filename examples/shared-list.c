/* shared-list: two processes share one linked list through handles.
 *
 * The parent creates a heap, builds a short list in it, publishes the
 * list's root under the name "list" and starts a second program (itself,
 * exec'd afresh, so it maps the heap at an address of its own) with only the
 * heap's name on its command line. The child connects by name, finds the
 * root with shmheap_lookup, walks the list, unlinks and frees one node,
 * appends three of its own and exits; the parent walks the list again, sees
 * the child's work, frees everything (freeing the root drops its name) and
 * checks that the heap is whole.
 *
 * The links are shmheap_object_handle values stored in the heap: a raw
 * pointer would mean nothing in the other process. The two processes take
 * turns (the parent waits for the child), so the list needs no lock of its
 * own; the heap's own calls are safe to make at the same time.
 *
 * Usage: shared-list               run the whole demo
 *        shared-list --child NAME  (started by the demo itself)
 * Exit status 0 when everything the demo checks holds, 1 otherwise.
 */
#include <shmheap.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* Everything stored in the heap has fixed-width fields and no pointers, so
 * both processes read the same bytes the same way. */
struct node {
  shmheap_object_handle next; /* SHMHEAP_NULL_HANDLE ends the list */
  int64_t writer_pid;         /* the process that made the node */
  char text[32];
};

struct list {
  shmheap_object_handle head;
  shmheap_object_handle tail;
  uint64_t count;
};

enum { HEAP_LEN = 1 << 20, MAX_WALK = 64 };

/* The name the list's root is published under, inside the heap. */
static const char ROOT_KEY[] = "list";

static const char *const parent_words[] = {"apple", "banana", "cherry"};
static const char *const child_words[] = {"date", "elderberry", "fig"};
static const char *const final_words[] = {"apple", "cherry", "date",
                                          "elderberry", "fig"};

static const char *role = "parent";

static void fail(const char *what) {
  fprintf(stderr, "shared-list %s: %s: %s\n", role, what, strerror(errno));
}

static struct node *node_at(shmheap_memory_handle mem,
                            shmheap_object_handle hdl) {
  return shmheap_handle_to_ptr(mem, hdl);
}

/* Appends a node holding TEXT; 0 on success, -1 when the heap is full. */
static int list_append(shmheap_memory_handle mem, struct list *list,
                       const char *text) {
  struct node *n = shmheap_alloc(mem, sizeof *n);
  if (n == NULL)
    return -1;
  n->next = SHMHEAP_NULL_HANDLE;
  n->writer_pid = (int64_t)getpid();
  snprintf(n->text, sizeof n->text, "%s", text);

  shmheap_object_handle hdl = shmheap_ptr_to_handle(mem, n);
  if (list->tail == SHMHEAP_NULL_HANDLE)
    list->head = hdl;
  else
    node_at(mem, list->tail)->next = hdl;
  list->tail = hdl;
  list->count++;
  return 0;
}

/* Unlinks and frees the first node whose text is TEXT; 0 if found. */
static int list_remove(shmheap_memory_handle mem, struct list *list,
                       const char *text) {
  shmheap_object_handle prev = SHMHEAP_NULL_HANDLE;
  shmheap_object_handle cur = list->head;
  for (int steps = 0; cur != SHMHEAP_NULL_HANDLE && steps < MAX_WALK; steps++) {
    struct node *n = node_at(mem, cur);
    if (n == NULL)
      return -1;
    if (strcmp(n->text, text) == 0) {
      if (prev == SHMHEAP_NULL_HANDLE)
        list->head = n->next;
      else
        node_at(mem, prev)->next = n->next;
      if (list->tail == cur)
        list->tail = prev;
      list->count--;
      shmheap_free(mem, n);
      return 0;
    }
    prev = cur;
    cur = n->next;
  }
  return -1;
}

/* Prints the list as this process sees it and checks that it holds exactly
 * WANT[0..NWANT); 0 when it does. */
static int list_show_and_check(shmheap_memory_handle mem,
                               const struct list *list, const char *const *want,
                               size_t nwant) {
  int ok = list->count == nwant;
  size_t i = 0;
  shmheap_object_handle cur = list->head;

  printf("%-6s pid %-7ld sees %" PRIu64 " nodes:\n", role, (long)getpid(),
         list->count);
  while (cur != SHMHEAP_NULL_HANDLE && i < MAX_WALK) {
    struct node *n = node_at(mem, cur);
    if (n == NULL) {
      printf("  handle %" PRIu64 " names nothing in this heap\n", cur);
      return -1;
    }
    printf("  handle %-7" PRIu64 " at %p  %-10s (made by pid %" PRId64 ")\n",
           cur, (void *)n, n->text, n->writer_pid);
    if (i >= nwant || strcmp(n->text, want[i]) != 0)
      ok = 0;
    i++;
    cur = n->next;
  }
  if (i != nwant)
    ok = 0;
  if (!ok)
    printf("  expected %zu nodes starting with \"%s\": MISMATCH\n", nwant,
           want[0]);
  return ok ? 0 : -1;
}

static int run_child(const char *name) {
  role = "child";
  alarm(10); /* a stuck demo must not hang the test run */

  /* Take some address space first, so that the heap surely lands at another
   * address than in the parent. */
  void *filler =
      mmap(NULL, 4 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (filler == MAP_FAILED) {
    fail("mmap");
    return 1;
  }

  shmheap_memory_handle mem = shmheap_connect(name);
  if (mem == NULL) {
    fail("shmheap_connect");
    return 1;
  }
  printf("child  pid %-7ld connected to %s, mapped at %p\n", (long)getpid(),
         name, shmheap_underlying(mem));

  int rc = 1;
  shmheap_object_handle root_hdl = shmheap_lookup(mem, ROOT_KEY);
  if (root_hdl == SHMHEAP_NULL_HANDLE) {
    fail("shmheap_lookup");
    goto out;
  }
  printf("child  found \"%s\" at handle %" PRIu64 "\n", ROOT_KEY, root_hdl);
  struct list *list = shmheap_handle_to_ptr(mem, root_hdl);
  if (list == NULL) {
    fprintf(stderr, "shared-list child: root handle %" PRIu64 " is invalid\n",
            root_hdl);
    goto out;
  }
  if (list_show_and_check(mem, list, parent_words, 3) != 0)
    goto out;

  printf("child  removes \"banana\" and appends date, elderberry, fig\n");
  if (list_remove(mem, list, "banana") != 0) {
    fprintf(stderr, "shared-list child: \"banana\" not found\n");
    goto out;
  }
  for (size_t i = 0; i < 3; i++) {
    if (list_append(mem, list, child_words[i]) != 0) {
      fail("shmheap_alloc");
      goto out;
    }
  }
  rc = 0;
out:
  shmheap_disconnect(mem);
  munmap(filler, 4 << 20);
  return rc;
}

/* Starts this program again as the child, waits for it, returns its exit
 * status (or 1 when it did not exit normally). */
static int spawn_child(const char *name) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    fail("fork");
    return 1;
  }
  if (pid == 0) {
    char *const args[] = {"shared-list", "--child", (char *)name, NULL};
    execv("/proc/self/exe", args);
    _exit(127);
  }

  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      fail("waitpid");
      return 1;
    }
  }
  if (WIFSIGNALED(status)) {
    fprintf(stderr, "shared-list parent: child killed by signal %d\n",
            WTERMSIG(status));
    return 1;
  }
  return WEXITSTATUS(status);
}

static int run_parent(void) {
  char name[64];
  snprintf(name, sizeof name, "/shmheap-example-list-%ld", (long)getpid());

  shmheap_memory_handle mem = shmheap_create(name, HEAP_LEN);
  if (mem == NULL) {
    fail("shmheap_create");
    return 1;
  }
  printf("parent pid %-7ld created %s (%d bytes), mapped at %p\n",
         (long)getpid(), name, HEAP_LEN, shmheap_underlying(mem));

  int rc = 1;
  struct list *list = shmheap_alloc(mem, sizeof *list);
  if (list == NULL) {
    fail("shmheap_alloc");
    goto out;
  }
  list->head = list->tail = SHMHEAP_NULL_HANDLE;
  list->count = 0;
  for (size_t i = 0; i < 3; i++) {
    if (list_append(mem, list, parent_words[i]) != 0) {
      fail("shmheap_alloc");
      goto out;
    }
  }
  if (list_show_and_check(mem, list, parent_words, 3) != 0)
    goto out;

  /* Remember where "banana" lives: the child frees it, and first fit hands
   * the lowest-addressed hole that fits to the child's next allocation. */
  shmheap_object_handle banana_hdl = node_at(mem, list->head)->next;
  shmheap_object_handle root_hdl = shmheap_ptr_to_handle(mem, list);
  if (shmheap_publish(mem, ROOT_KEY, root_hdl) != 0) {
    fail("shmheap_publish");
    goto out;
  }
  printf("parent published the root (handle %" PRIu64
         ") as \"%s\" and starts the child\n",
         root_hdl, ROOT_KEY);
  int child_rc = spawn_child(name);
  if (child_rc != 0) {
    fprintf(stderr, "shared-list parent: child failed with status %d\n",
            child_rc);
    goto out;
  }

  printf("parent sees the child's work:\n");
  if (list_show_and_check(mem, list, final_words, 5) != 0)
    goto out;
  /* The list checked out as apple, cherry, date, ...: date is the third. */
  shmheap_object_handle date_hdl =
      node_at(mem, node_at(mem, list->head)->next)->next;
  printf("parent: \"date\" took handle %" PRIu64 ", %s\n", date_hdl,
         date_hdl == banana_hdl ? "the hole \"banana\" left (first fit)"
                                : "not the hole \"banana\" left");

  /* Free every node and the root: the heap must be whole again. */
  while (list->head != SHMHEAP_NULL_HANDLE) {
    struct node *n = node_at(mem, list->head);
    list->head = n->next;
    shmheap_free(mem, n);
  }
  shmheap_free(mem, list); /* its name goes with it */
  list = NULL;
  if (shmheap_lookup(mem, ROOT_KEY) != SHMHEAP_NULL_HANDLE || errno != ENOENT) {
    fprintf(stderr, "shared-list parent: \"%s\" outlived its object\n",
            ROOT_KEY);
    goto out;
  }

  struct shmheap_stats st;
  if (shmheap_check(mem) != 0) {
    fail("shmheap_check");
    goto out;
  }
  if (shmheap_stats(mem, &st) != 0) {
    fail("shmheap_stats");
    goto out;
  }
  printf("parent freed everything: %" PRIu64 " used blocks, %" PRIu64
         " free block(s), largest free %" PRIu64 " bytes\n",
         st.used_blocks, st.free_blocks, st.largest_free);
  if (st.used_blocks != 0 || st.largest_free != HEAP_LEN - SHMHEAP_OVERHEAD) {
    fprintf(stderr, "shared-list parent: the heap is not whole again\n");
    goto out;
  }
  printf("ok\n");
  rc = 0;
out:
  shmheap_destroy(NULL, mem);
  return rc;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--child") == 0)
    return run_child(argv[2]);
  if (argc != 1) {
    fprintf(stderr, "usage: %s\n", argv[0]);
    return 2;
  }
  return run_parent();
}

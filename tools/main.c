/* main.c: shmheap(1)'s entry point, for operators and developers who need
 * to look inside a heap that is in use. It finds the command, parses its
 * command line, prints the help and the version, and turns the outcome
 * into the exit code (tool.h lists them; doc/shmheap.1 documents them). The
 * commands themselves live in cmd-*.c.
 */
#include "tool.h"

#include <errno.h>
#include <string.h>

#ifndef SHMHEAP_TOOL_VERSION
#define SHMHEAP_TOOL_VERSION SHMHEAP_VERSION_STRING
#endif

static const struct command *const commands[] = {
    &cmd_create, &cmd_destroy, &cmd_grow, &cmd_info,
    &cmd_check,  &cmd_names,   &cmd_map,  &cmd_ls,
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

static const char general_help[] =
    "Usage: shmheap COMMAND [ARGS]\n"
    "       shmheap --help | --version\n"
    "\n"
    "Look inside and manage shmheap heaps (POSIX shared memory).\n"
    "NAME is the heap's shared memory name, as in the API: a leading '/'\n"
    "and no other, such as /jobs.\n"
    "\n"
    "Commands:\n";

static const char general_help_tail[] =
    "\n"
    "Run 'shmheap COMMAND --help' for a command's options.\n"
    "Exit status: 0 ok, 1 damaged heap, 2 usage error, 3 no such heap,\n"
    "4 not a heap (or another format or ABI), 5 busy, 6 other error.\n"
    "See shmheap(1) and shmheap(3).\n";

static void print_general_help(void) {
  fputs(general_help, stdout);
  enum { COLUMN = 42 };
  for (size_t i = 0; i < NCOMMANDS; i++) {
    const struct command *c = commands[i];
    if (strlen(c->synopsis) < COLUMN)
      printf("  %-*s %s\n", COLUMN, c->synopsis, c->summary);
    else
      printf("  %s\n  %-*s %s\n", c->synopsis, COLUMN, "", c->summary);
  }
  fputs(general_help_tail, stdout);
}

static void print_version(void) {
  printf("shmheap %s (library %s, heap format %d)\n", SHMHEAP_TOOL_VERSION,
         shmheap_version_string(), SHMHEAP_FORMAT_VERSION);
}

static const struct command *find_command(const char *name) {
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (strcmp(name, commands[i]->name) == 0)
      return commands[i];
  return NULL;
}

/* RC, unless it is TOOL_OK and what was printed could not be written (a
 * full disk, a closed pipe with SIGPIPE ignored): then TOOL_ERROR, said. */
static int flushed(const char *what, int rc) {
  if (fflush(stdout) != 0 && rc == TOOL_OK) {
    error_msg("%s: write error: %s", what, strerror(errno));
    rc = TOOL_ERROR;
  }
  return rc;
}

/* Runs CMD with its arguments ARGV[0..ARGC). */
static int run_command(const struct command *cmd, int argc, char **argv) {
  struct opts o;
  if (!parse_args(cmd->name, argc, argv, cmd->options, &o))
    return TOOL_USAGE;
  if (o.help) {
    fputs(cmd->help, stdout);
    return flushed(cmd->name, TOOL_OK);
  }
  if (!want_positionals(cmd->name, &o, cmd->npos, cmd->needs))
    return TOOL_USAGE;
  return flushed(cmd->name, cmd->run(&o));
}

/* "shmheap --help", "shmheap help" and "shmheap help CMD". */
static int run_help(int argc, char **argv) {
  if (argc > 2 && strcmp(argv[1], "help") == 0) {
    const struct command *cmd = find_command(argv[2]);
    if (!cmd)
      return usage_error(NULL, "unknown command '%s'", argv[2]);
    fputs(cmd->help, stdout);
    return flushed("help", TOOL_OK);
  }
  print_general_help();
  return flushed("help", TOOL_OK);
}

int main(int argc, char **argv) {
  if (argc < 2)
    return usage_error(NULL, "missing command");
  const char *name = argv[1];
  if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
      strcmp(name, "help") == 0)
    return run_help(argc, argv);
  if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
    print_version();
    return flushed("version", TOOL_OK);
  }
  const struct command *cmd = find_command(name);
  if (cmd)
    return run_command(cmd, argc - 2, argv + 2);
  if (name[0] == '-')
    return usage_error(NULL, "unknown option '%s'", name);
  return usage_error(NULL, "unknown command '%s'", name);
}

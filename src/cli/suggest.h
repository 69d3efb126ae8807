/* egress-inspector suggest: turns decision lines (replay's output, the daemon's log in
 * either format) into an allowlist per policy, as a rules file or Portarium documents. */
#ifndef EI_CLI_SUGGEST_H
#define EI_CLI_SUGGEST_H

/* argv[0] is "suggest". Returns the exit status: 0, 2 on a usage error or an unreadable
 * file, 1 when memory runs out. */
int ei_cmd_suggest(int argc, char **argv);

#endif

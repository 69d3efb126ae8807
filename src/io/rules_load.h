/* Loading a rules file from disk for the CLI and the daemon. */
#ifndef EI_IO_RULES_LOAD_H
#define EI_IO_RULES_LOAD_H

#include <stdio.h>

#include "egress_inspector/policy.h"

#define EI_RULES_FILE_MAX (64u << 20)

/* Reads and parses path: a rules file, ClusterNetworkPolicy documents (YAML or JSON, told
 * by their kind), or Portarium MachineExecutionPolicy JSON (told by its first character). Every problem is printed to err as "PATH:LINE: message" (or
 * "PATH: message" when the file cannot be read); returns NULL if there was any, else a
 * set the caller owns (ei_policy_set_free). *errors (may be NULL) receives the count.
 * Files over EI_RULES_FILE_MAX are refused unread. */
EI_MUST_USE ei_policy_set *ei_rules_load(const char *path, FILE *err, unsigned *errors);

/* The whole file, NUL-terminated (*len excludes the NUL), or NULL with errno set: EFBIG
 * past EI_RULES_FILE_MAX. The caller frees it. */
EI_MUST_USE char *ei_rules_read(const char *path, size_t *len);

#endif

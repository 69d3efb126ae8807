/* --hosts FILE: fixed name -> address bindings in /etc/hosts format, for replays that
 * must not depend on the machine's resolver, and for names a node resolves its own way. */
#ifndef EI_CLI_HOSTS_H
#define EI_CLI_HOSTS_H

#include <stdio.h>

#include "egress_inspector/dns_cache.h"

/* Reads "ADDRESS NAME [ALIAS...]" lines ('#' starts a comment) and pins every name to its
 * address in the cache. A file with any error (an address or a name that does not parse,
 * a line without a name) is refused as a whole: every error is printed on err, and
 * nothing is pinned. Returns the number of names pinned, or -1. */
EI_MUST_USE long ei_hosts_load(const char *path, ei_dns_cache *cache, FILE *err);

#endif

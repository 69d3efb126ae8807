/* Portarium MachineExecutionPolicy JSON as an alternative to the rules file. */
#ifndef EGRESS_INSPECTOR_PORTARIUM_H
#define EGRESS_INSPECTOR_PORTARIUM_H

#include <stdio.h>

#include "egress_inspector/policy.h"

struct json_object; /* json-c's */

/* True when text starts (after blanks) like JSON, which no rules file does. */
EI_MUST_USE bool ei_policy_json_sniff(const char *text, size_t len);

/* Parses the documents into a policy set; every error goes to err as
 * "FILE: JSON.PATH: message". NULL (and *errors > 0) when there is any. */
EI_MUST_USE ei_policy_set *ei_policy_json_parse(const char *file, const char *text, size_t len, FILE *err,
                                                unsigned *errors);

/* doc.key, or doc.spec.key (the document bare, or as a Kubernetes object); NULL: neither. */
struct json_object *ei_policy_json_field(struct json_object *doc, const char *key);

#endif

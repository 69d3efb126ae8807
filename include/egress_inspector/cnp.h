/* ClusterNetworkPolicy documents (network-policy-api, policy.networking.k8s.io/v1alpha2)
 * as an alternative to the rules file. What is translated, and what is refused or only
 * warned about: the head comment of src/policy/cnp.c. */
#ifndef EGRESS_INSPECTOR_CNP_H
#define EGRESS_INSPECTOR_CNP_H

#include <stdio.h>

#include "egress_inspector/policy.h"

/* True when text (YAML or JSON) holds a `kind` of ClusterNetworkPolicy or
 * ClusterNetworkPolicyList on a line that is no comment: one policy, a list, or a `kind:
 * List` of them. A rules file never has one; Portarium's JSON names its own kind. */
EI_MUST_USE bool ei_cnp_sniff(const char *text, size_t len);

/* Parses one or more documents (YAML, `---`-separated, or JSON) into a policy set. Every
 * error goes to err as "FILE:LINE: message" with the line of the YAML it came from;
 * warnings and notes go there too ("FILE:LINE: warning: ...") and are not counted. NULL
 * (and *errors > 0) when there is any error. */
EI_MUST_USE ei_policy_set *ei_cnp_parse(const char *file, const char *text, size_t len, FILE *err,
                                        unsigned *errors);

#endif

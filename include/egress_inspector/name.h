/* The hostname grammar every name is read in: the SNI, the Host header, a DNS owner name,
 * an allowlist entry. One function, so that the parsers and the policy can never disagree
 * on what a name is (src/parse/name.c). */
#ifndef EGRESS_INSPECTOR_NAME_H
#define EGRESS_INSPECTOR_NAME_H

#include "egress_inspector/common.h"

#define EI_NAME_MAX 253 /* RFC 1035 presentation form, without the trailing dot */

/* Checks name against the hostname grammar (letters, digits, '-', '_', '.', labels of 1
 * to 63 bytes, at most 253 bytes in all once one trailing dot is dropped) and writes its
 * lower-case form, without the trailing dot and NUL-terminated, into out.
 * Returns EI_REASON_NONE on success, EI_REASON_EMPTY_NAME for a name that is empty (or
 * only "."), EI_REASON_INVALID_NAME for anything else outside the grammar (an embedded
 * NUL, a space, an empty label, a label over 63 bytes, 254 bytes or more). */
EI_MUST_USE ei_reason ei_name_normalize(const uint8_t *name, size_t len,
                                        char out[EI_NAME_MAX + 1], size_t *out_len);

#endif

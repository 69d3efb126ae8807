/* Kubernetes label selectors, as `kubectl -l` takes them (the grammar of
 * k8s.io/apimachinery/pkg/labels): comma-separated requirements, all of which must hold.
 *
 *   key            the label is present          !key           it is absent
 *   key=value      key==value                    key!=value     (absent also matches)
 *   key in (a,b)   key notin (a,b)               (notin: absent also matches)
 *   key>3          key<3                          (the value read as an integer)
 *
 * Keys are [prefix/]name: name 1-63 characters of [A-Za-z0-9_.-] beginning and ending
 * alphanumeric, prefix a DNS subdomain of at most 253; values 0-63 characters of the same
 * set. The empty selector matches everything. Issue 16's first part: policies will select
 * workloads by namespace and pod labels with these. */
#ifndef EGRESS_INSPECTOR_SELECTOR_H
#define EGRESS_INSPECTOR_SELECTOR_H

#include "egress_inspector/common.h"

typedef struct ei_selector ei_selector;

/* One label of an object. Not NUL-terminated. */
typedef struct {
    ei_view key;
    ei_view value;
} ei_label;

/* Parses a selector. NULL on a syntax error (described in err, at most errlen bytes,
 * with the offending position) or when memory runs out. */
EI_MUST_USE ei_selector *ei_selector_parse(const char *text, size_t len, char *err, size_t errlen);
void ei_selector_free(ei_selector *s);

/* Whether an object with these labels (keys distinct) is selected. */
EI_MUST_USE bool ei_selector_matches(const ei_selector *s, const ei_label *labels, size_t n);

/* The number of requirements (0: matches everything). */
size_t ei_selector_requirements(const ei_selector *s);

#endif

/* ei_cnp_parse on the input as ClusterNetworkPolicy YAML or JSON (libyaml underneath).
 *
 * Checks what cnp.h promises: any error gives no set and a count above zero, no error a
 * set; every line written to err has the FILE:LINE: form; a set always has its "default"
 * policy, and the policies it selects by labels can be asked for a workload. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress_inspector/cnp.h"
#include "fuzz.h"

static void check_messages(const char *text, size_t len)
{
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
        CHECK(n > 5 && memcmp(text + pos, "fuzz:", 5) == 0); /* FILE:LINE: message */
        pos += n + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *msgs = NULL;
    size_t msgs_len = 0;
    FILE *err = open_memstream(&msgs, &msgs_len);
    if (err == NULL)
        return 0;
    (void)ei_cnp_sniff((const char *)data, size);
    unsigned errors = 12345;
    ei_policy_set *set = ei_cnp_parse("fuzz", (const char *)data, size, err, &errors);
    fclose(err);
    CHECK((set == NULL) == (errors > 0));
    CHECK(errors == 0 || msgs_len > 0);
    check_messages(msgs, msgs_len);
    free(msgs);
    if (set == NULL)
        return 0;
    CHECK(ei_policy_set_policies(set) >= 1);
    static const ei_label labels[] = { { { (const uint8_t *)"app", 3 }, { (const uint8_t *)"api", 3 } } };
    static const ei_label ns[] = { { { (const uint8_t *)"kubernetes.io/metadata.name", 27 },
                                     { (const uint8_t *)"payments", 8 } } };
    const ei_workload wl = { "payments", "p", "u", labels, 1, ns, 1 };
    ei_addr src;
    CHECK(ei_addr_parse("10.244.0.10", &src));
    ei_policy_iter it;
    ei_policy_iter_init(&it, set, &src, &wl);
    size_t n = 0;
    for (const ei_policy *p; (p = ei_policy_iter_next(&it)) != NULL; n++) {
        CHECK(ei_policy_name(p) != NULL);
        ei_match m = ei_policy_match_name(p, "api.stripe.example", 18, 443);
        CHECK(m.rule == NULL || strchr(m.rule, '/') != NULL); /* POLICY/RULE */
    }
    CHECK(n >= 1 && n <= ei_policy_set_policies(set));
    ei_policy_set_free(set);
    return 0;
}

/* DNS answers: the parser, then the cache fed with what it read. Checked: a parsed answer
 * names only hostnames in normal form, within the bounds the header promises. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress_inspector/dns.h"
#include "egress_inspector/dns_cache.h"
#include "fuzz.h"


static ei_dns_cache *cache;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (cache == NULL) {
        ei_dns_cache_config cfg;
        ei_dns_cache_config_default(&cfg);
        cfg.max_entries = 64;
        cfg.max_per_workload = 8;
        cache = ei_dns_cache_new(&cfg);
        CHECK(cache != NULL);
    }
    /* the same bytes as a question: a name in normal form, or refused */
    ei_dns_query q;
    if (ei_dns_parse_query(data, size, &q) == EI_PARSE_OK) {
        char again[EI_NAME_MAX + 1];
        size_t n = 0;
        CHECK(q.name[0] != '\0');
        CHECK(ei_name_normalize((const uint8_t *)q.name, strlen(q.name), again, &n) == EI_REASON_NONE);
        CHECK(strcmp(again, q.name) == 0);
    }
    ei_dns_answer a;
    ei_parse_status st = ei_dns_parse_response(data, size, &a);
    if (st != EI_PARSE_OK) {
        CHECK(st == EI_PARSE_MALFORMED);
        CHECK(a.problem > EI_DNS_OK && a.problem < EI_DNS_PROBLEM_COUNT);
        return 0;
    }
    CHECK(a.chain_len <= EI_DNS_MAX_CHAIN + 1);
    CHECK(a.naddrs <= EI_DNS_MAX_ADDRS);
    CHECK(a.chain_len > 0 || a.naddrs == 0);
    for (uint8_t i = 0; i < a.chain_len; i++) {
        char norm[EI_NAME_MAX + 1];
        size_t len;
        CHECK(ei_name_normalize((const uint8_t *)a.chain[i], strlen(a.chain[i]), norm, &len) == EI_REASON_NONE);
        CHECK(strcmp(norm, a.chain[i]) == 0);
    }
    for (uint8_t i = 0; i < a.naddrs; i++)
        CHECK(a.addrs[i].family == 4 || a.addrs[i].family == 6);
    static uint64_t now = 1000000000ull;
    now += 1000000000ull;
    ei_addr w = { .family = 4, .bytes = { 10, 244, 0, (uint8_t)(size & 7) } };
    for (uint8_t i = 0; i < a.chain_len; i++) {
        ei_dns_cache_learn(cache, &w, a.chain[i], a.addrs, a.naddrs, a.ttl, now);
        if (a.naddrs > 0)
            CHECK(ei_dns_cache_check(cache, &w, a.chain[i], &a.addrs[0], now) == EI_BIND_YES);
    }
    return 0;
}

/* HTTP request head parser: the name a request is for, every truncation, and each
 * ambiguity that two readers could resolve differently. */
#include <string.h>

#include "egress_inspector/http.h"
#include "unit.h"

static ei_parse_status parse(const char *text, ei_http_request *req)
{
    return ei_http_parse_request((const uint8_t *)text, strlen(text), req);
}

static bool host_is(const ei_http_request *req, const char *want)
{
    return req->host.len == strlen(want) && memcmp(req->host.ptr, want, req->host.len) == 0;
}

static void test_origin_form(void)
{
    ei_http_request req;
    const char *text = "GET /index.html HTTP/1.1\r\nUser-Agent: curl\r\nHost: Allowed.Example:8080\r\n"
                       "Accept: */*\r\n\r\n";
    CU_ASSERT_EQUAL_FATAL(parse(text, &req), EI_PARSE_OK);
    CU_ASSERT(host_is(&req, "Allowed.Example"));
    CU_ASSERT_EQUAL(req.form, EI_HTTP_ORIGIN_FORM);
    CU_ASSERT_EQUAL(req.version_minor, 1);
    CU_ASSERT_EQUAL(req.host_headers, 1);
}

static void test_every_truncation_needs_more(void)
{
    const char *text = "POST /upload HTTP/1.1\r\nHost: allowed.example\r\nContent-Length: 3\r\n\r\n";
    size_t n = strlen(text);
    for (size_t cut = 0; cut < n; cut++) {
        ei_http_request req;
        ei_parse_status st = ei_http_parse_request((const uint8_t *)text, cut, &req);
        CU_ASSERT_EQUAL(st, EI_PARSE_NEED_MORE);
        if (st != EI_PARSE_NEED_MORE) {
            printf("\n  cut at %zu: %d\n", cut, st);
            break;
        }
    }
}

static void expect(const char *text, ei_parse_status st, ei_reason why)
{
    ei_http_request req;
    ei_parse_status got = parse(text, &req);
    CU_ASSERT_EQUAL(got, st);
    if (st == EI_PARSE_MALFORMED)
        CU_ASSERT_EQUAL(req.problem, why);
    if (got != st || (st == EI_PARSE_MALFORMED && req.problem != why))
        printf("\n  %s -> %d %s\n", text, got, ei_reason_name(req.problem));
}

static void test_ambiguities_fail_closed(void)
{
    expect("GET / HTTP/1.1\r\nHost: allowed.example\r\nHost: denied.example\r\n\r\n",
           EI_PARSE_MALFORMED, EI_REASON_HTTP_MULTIPLE_HOST);
    expect("GET / HTTP/1.1\r\nhOsT: allowed.example\r\nHOST: allowed.example\r\n\r\n",
           EI_PARSE_MALFORMED, EI_REASON_HTTP_MULTIPLE_HOST);
    expect("GET http://denied.example/ HTTP/1.1\r\nHost: allowed.example\r\n\r\n",
           EI_PARSE_MALFORMED, EI_REASON_HTTP_HOST_MISMATCH);
    expect("CONNECT denied.example:443 HTTP/1.1\r\nHost: allowed.example:443\r\n\r\n",
           EI_PARSE_MALFORMED, EI_REASON_HTTP_HOST_MISMATCH);
    expect("GET / HTTP/1.1\r\nHost : allowed.example\r\n\r\n",
           EI_PARSE_MALFORMED, EI_REASON_HTTP_MALFORMED);
    expect("GET / HTTP/1.1\r\nHost: allowed.example\r\n  .evil.test\r\n\r\n",
           EI_PARSE_MALFORMED, EI_REASON_HTTP_MALFORMED);
    expect("GET / HTTP/1.1\r\nHost: allowed.example\rX: y\r\n\r\n",
           EI_PARSE_MALFORMED, EI_REASON_HTTP_MALFORMED);
    expect("GET http://allowed.example@evil.test/ HTTP/1.1\r\n\r\n",
           EI_PARSE_MALFORMED, EI_REASON_HTTP_MALFORMED);
    expect("GET / HTTP/1.1\r\nHost: allowed.example:99999\r\n\r\n",
           EI_PARSE_MALFORMED, EI_REASON_HTTP_MALFORMED);
    expect("CONNECT allowed.example HTTP/1.1\r\n\r\n", EI_PARSE_MALFORMED, EI_REASON_HTTP_MALFORMED);
    expect("GET / HTTP/2.0\r\n\r\n", EI_PARSE_MALFORMED, EI_REASON_HTTP_MALFORMED);
    /* a line that is no request line: the head is still read to its end */
    expect("EHLO mail.example\r\n", EI_PARSE_NEED_MORE, EI_REASON_NONE);
    expect("EHLO mail.example\r\n\r\n", EI_PARSE_MALFORMED, EI_REASON_HTTP_MALFORMED);
}

static void test_refused_request_still_names_its_host(void)
{
    ei_http_request req;
    CU_ASSERT_EQUAL(parse("OPTIONS\r\nHost: www.example.com\r\n\r\n", &req), EI_PARSE_MALFORMED);
    CU_ASSERT_FALSE(req.line_ok);
    CU_ASSERT(host_is(&req, "www.example.com"));
    CU_ASSERT_EQUAL(parse("GET   /x HTTP/1.1\r\nHost: a.example:8080\r\nX: 1\r\n\r\n", &req),
                    EI_PARSE_MALFORMED);
    CU_ASSERT(host_is(&req, "a.example"));
    CU_ASSERT_EQUAL(parse("GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", &req),
                    EI_PARSE_MALFORMED);
    CU_ASSERT_EQUAL(req.problem, EI_REASON_HTTP_MULTIPLE_HOST);
    CU_ASSERT(host_is(&req, "a.example"));
}

static void test_proxy_forms(void)
{
    ei_http_request req;
    CU_ASSERT_EQUAL_FATAL(parse("CONNECT Allowed.Example:8443 HTTP/1.1\r\nHost: allowed.example.:8443\r\n\r\n", &req),
                          EI_PARSE_OK);
    CU_ASSERT(host_is(&req, "allowed.example."));
    CU_ASSERT_EQUAL(req.connect_port, 8443);
    CU_ASSERT_EQUAL_FATAL(parse("CONNECT allowed.example:443 HTTP/1.1\r\n\r\n", &req), EI_PARSE_OK);
    CU_ASSERT(host_is(&req, "allowed.example"));
    CU_ASSERT_EQUAL_FATAL(parse("GET HTTP://allowed.example:80/x?y HTTP/1.1\r\n\r\n", &req), EI_PARSE_OK);
    CU_ASSERT(host_is(&req, "allowed.example"));
    CU_ASSERT_EQUAL(req.form, EI_HTTP_ABSOLUTE_FORM);
    CU_ASSERT_EQUAL_FATAL(parse("GET http://[2001:db8::1]:80/ HTTP/1.1\r\nHost: [2001:db8::1]\r\n\r\n", &req), EI_PARSE_OK);
    CU_ASSERT(host_is(&req, "[2001:db8::1]"));
}

static void test_no_name_and_empty_name(void)
{
    ei_http_request req;
    CU_ASSERT_EQUAL_FATAL(parse("GET / HTTP/1.0\r\nAccept: */*\r\n\r\n", &req), EI_PARSE_OK);
    CU_ASSERT_PTR_NULL(req.host.ptr);
    CU_ASSERT_EQUAL_FATAL(parse("GET / HTTP/1.1\r\nHost:\r\n\r\n", &req), EI_PARSE_OK);
    CU_ASSERT_PTR_NOT_NULL(req.host.ptr);
    CU_ASSERT_EQUAL(req.host.len, 0);
}

static void test_bare_lf_and_whitespace(void)
{
    ei_http_request req;
    CU_ASSERT_EQUAL_FATAL(parse("GET / HTTP/1.1\nHost: \t allowed.example \t\n\n", &req), EI_PARSE_OK);
    CU_ASSERT(host_is(&req, "allowed.example"));
}

static void test_sniff(void)
{
    CU_ASSERT(ei_http_sniff((const uint8_t *)"GET ", 4));
    CU_ASSERT(ei_http_sniff((const uint8_t *)"PROPFIND /", 10));
    CU_ASSERT(ei_http_sniff((const uint8_t *)"GE", 2));
    CU_ASSERT_FALSE(ei_http_sniff((const uint8_t *)"get /", 5));
    CU_ASSERT_FALSE(ei_http_sniff((const uint8_t *)"\x16\x03\x01", 3));
    CU_ASSERT_FALSE(ei_http_sniff((const uint8_t *)"SSH-2.0-OpenSSH", 15));
    CU_ASSERT_FALSE(ei_http_sniff((const uint8_t *)" GET", 4));
    CU_ASSERT_FALSE(ei_http_sniff((const uint8_t *)"", 0));
}

int main(void)
{
    static const ei_unit_case cases[] = {
        EI_CASE(test_origin_form),
        EI_CASE(test_every_truncation_needs_more),
        EI_CASE(test_ambiguities_fail_closed),
        EI_CASE(test_refused_request_still_names_its_host),
        EI_CASE(test_proxy_forms),
        EI_CASE(test_no_name_and_empty_name),
        EI_CASE(test_bare_lf_and_whitespace),
        EI_CASE(test_sniff),
    };
    EI_SUITE("http", cases);
    return ei_unit_run();
}

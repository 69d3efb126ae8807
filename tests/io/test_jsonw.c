/* The JSON line writer: whatever is written, the line parses; a field that does not fit
 * is left out whole, later ones still go in, the line says "truncated", and no object is
 * ever left open. Every line here is checked with json-c, a reader we did not write. */
#include <json-c/json.h>
#include <string.h>

#include "io/jsonw.h"
#include "unit.h"

static json_object *parse(const ei_jsonw *w)
{
    CU_ASSERT_EQUAL(w->buf[w->len - 1], '\n');
    CU_ASSERT_EQUAL(strlen(w->buf), w->len);
    return json_tokener_parse(w->buf);
}

static bool has(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v);
}

static void test_every_byte_round_trips(void)
{
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    ei_jsonw w;
    ei_jsonw_begin(&w);
    ei_jsonw_strn(&w, "bytes", all, sizeof all, false);
    ei_jsonw_end(&w);
    json_object *o = parse(&w);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    json_object *v;
    CU_ASSERT_FATAL(json_object_object_get_ex(o, "bytes", &v));
    /* bytes 0x80-0xff come back as U+0080-U+00FF: two bytes of UTF-8 each */
    CU_ASSERT_EQUAL(json_object_get_string_len(v), 128 + 128 * 2);
    CU_ASSERT_EQUAL(memcmp(json_object_get_string(v), all, 128), 0);
    CU_ASSERT_FALSE(has(o, "truncated"));
    json_object_put(o);
}

static void test_field_too_big_is_left_out_and_later_fields_go_in(void)
{
    static char big[EI_JSONW_MAX];
    memset(big, '"', sizeof big); /* 2 bytes out per byte in */
    ei_jsonw w;
    ei_jsonw_begin(&w);
    ei_jsonw_lit(&w, "verdict", "deny");
    ei_jsonw_strn(&w, "host", big, 3000, false);
    ei_jsonw_lit(&w, "reason", "invalid_name");
    ei_jsonw_uint(&w, "n", 42);
    ei_jsonw_end(&w);
    json_object *o = parse(&w);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT(has(o, "verdict"));
    CU_ASSERT_FALSE(has(o, "host"));
    CU_ASSERT(has(o, "reason"));
    CU_ASSERT(has(o, "n"));
    CU_ASSERT(has(o, "truncated"));
    json_object_put(o);
}

/* Fill the line to the last byte with every kind of field, inside a nested object, at
 * every length: the line always parses and the nested object is always closed. */
static void test_full_line_inside_an_object_still_closes(void)
{
    for (size_t fill = 3900; fill < 4096; fill += 7) {
        static char pad[EI_JSONW_MAX];
        memset(pad, 'x', sizeof pad);
        ei_jsonw w;
        ei_jsonw_begin(&w);
        ei_jsonw_lit(&w, "event", "decision");
        ei_jsonw_object(&w, "data");
        ei_jsonw_strn(&w, "pad", pad, fill - 40, false);
        ei_jsonw_object(&w, "inner");
        for (int i = 0; i < 20; i++) {
            ei_jsonw_uint(&w, "u", UINT64_MAX);
            ei_jsonw_bool(&w, "b", true);
            ei_jsonw_null(&w, "z");
            ei_jsonw_number(&w, "f", "1.500");
            ei_jsonw_str(&w, "s", "\x01\x02");
            ei_jsonw_raw_name(&w, "host", pad, 300);
        }
        /* no close: ei_jsonw_end closes what is open */
        ei_jsonw_end(&w);
        CU_ASSERT(w.len < EI_JSONW_MAX);
        json_object *o = parse(&w);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        CU_ASSERT(has(o, "event"));
        CU_ASSERT(has(o, "truncated"));
        json_object_put(o);
    }
}

static void test_too_deep_is_left_out(void)
{
    ei_jsonw w;
    ei_jsonw_begin(&w);
    for (int d = 0; d < EI_JSONW_DEPTH + 3; d++)
        ei_jsonw_object(&w, "o");
    ei_jsonw_uint(&w, "deep", 1);
    for (int d = 0; d < EI_JSONW_DEPTH + 3; d++)
        ei_jsonw_close(&w);
    ei_jsonw_uint(&w, "after", 2);
    ei_jsonw_end(&w);
    json_object *o = parse(&w);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT(has(o, "after"));
    CU_ASSERT(has(o, "truncated"));
    json_object_put(o);
}

static void test_raw_name_cut_and_flagged(void)
{
    static char name[1000];
    memset(name, 'A', sizeof name);
    ei_jsonw w;
    ei_jsonw_begin(&w);
    ei_jsonw_raw_name(&w, "host", name, sizeof name);
    ei_jsonw_end(&w);
    json_object *o = parse(&w);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    json_object *v;
    CU_ASSERT_FATAL(json_object_object_get_ex(o, "host", &v));
    CU_ASSERT_EQUAL(json_object_get_string_len(v), EI_JSONW_RAW_NAME_MAX);
    CU_ASSERT_EQUAL(json_object_get_string(v)[0], 'a'); /* lowered */
    CU_ASSERT(has(o, "host_truncated"));
    CU_ASSERT_FALSE(has(o, "truncated")); /* cut on purpose, nothing left out */
    json_object_put(o);

    ei_jsonw_begin(&w);
    ei_jsonw_raw_name(&w, "host", name, EI_JSONW_RAW_NAME_MAX);
    ei_jsonw_end(&w);
    o = parse(&w);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_FALSE(has(o, "host_truncated"));
    json_object_put(o);
}

int main(void)
{
    static const ei_unit_case cases[] = {
        EI_CASE(test_every_byte_round_trips),
        EI_CASE(test_field_too_big_is_left_out_and_later_fields_go_in),
        EI_CASE(test_full_line_inside_an_object_still_closes),
        EI_CASE(test_too_deep_is_left_out),
        EI_CASE(test_raw_name_cut_and_flagged),
    };
    EI_SUITE("jsonw", cases);
    return ei_unit_run();
}

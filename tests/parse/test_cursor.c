/* The cursor every parser reads through: bounds at the last byte and one past it, sticky
 * failure, blocks that lie by one in either direction, and the helpers that replaced the
 * parsers' reach-ins (peek, find, until, tell/seek, little-endian, zero-filling copy). */
#include <string.h>

#include "parse/cursor.h"
#include "unit.h"

static const uint8_t bytes[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08 };

static void test_reads_to_the_last_byte_and_not_past_it(void)
{
    ei_cursor c = ei_cursor_make(bytes, sizeof bytes);
    ei_cursor_skip(&c, 7);
    CU_ASSERT_EQUAL(ei_cursor_left(&c), 1);
    CU_ASSERT_EQUAL(ei_cursor_u8(&c), 0x08); /* the last byte */
    CU_ASSERT(ei_cursor_finished(&c));
    CU_ASSERT_EQUAL(ei_cursor_u8(&c), 0); /* one past it */
    CU_ASSERT_FALSE(ei_cursor_ok(&c));
    CU_ASSERT_FALSE(ei_cursor_finished(&c));

    /* a wide read that would end one past the end fails and consumes nothing */
    c = ei_cursor_make(bytes, sizeof bytes);
    ei_cursor_skip(&c, 5);
    CU_ASSERT_EQUAL(ei_cursor_u32(&c), 0);
    CU_ASSERT_FALSE(ei_cursor_ok(&c));
    CU_ASSERT_EQUAL(ei_cursor_tell(&c), 5);
}

static void test_failure_is_sticky(void)
{
    ei_cursor c = ei_cursor_make(bytes, sizeof bytes);
    ei_cursor_skip(&c, 9);
    CU_ASSERT_FALSE(ei_cursor_ok(&c));
    /* bytes are there, but a failed cursor yields none of them */
    CU_ASSERT_EQUAL(ei_cursor_u8(&c), 0);
    CU_ASSERT_EQUAL(ei_cursor_u16(&c), 0);
    CU_ASSERT_EQUAL(ei_cursor_left(&c), 0);
    CU_ASSERT_PTR_NULL(ei_cursor_bytes(&c, 1).ptr);
    CU_ASSERT_EQUAL(ei_cursor_peek(&c), EI_CURSOR_NONE);
    CU_ASSERT_EQUAL(ei_cursor_remaining(&c).len, 0);
    ei_cursor_seek(&c, 0); /* a seek does not clear it either */
    CU_ASSERT_FALSE(ei_cursor_ok(&c));

    ei_cursor f = ei_cursor_make(bytes, sizeof bytes);
    ei_cursor_fail(&f);
    CU_ASSERT_EQUAL(ei_cursor_u8(&f), 0);
    CU_ASSERT_FALSE(ei_cursor_ok(&f));
}

static void test_integers(void)
{
    ei_cursor c = ei_cursor_make(bytes, sizeof bytes);
    CU_ASSERT_EQUAL(ei_cursor_u16(&c), 0x0102);
    CU_ASSERT_EQUAL(ei_cursor_u24(&c), 0x030405);
    CU_ASSERT_EQUAL(ei_cursor_u16le(&c), 0x0706);
    CU_ASSERT_EQUAL(ei_cursor_left(&c), 1);
    c = ei_cursor_make(bytes, sizeof bytes);
    CU_ASSERT_EQUAL(ei_cursor_u32(&c), 0x01020304u);
    CU_ASSERT_EQUAL(ei_cursor_u32le(&c), 0x08070605u);
    CU_ASSERT(ei_cursor_finished(&c));
}

static void test_failed_parent_gives_failed_child(void)
{
    ei_cursor c = ei_cursor_make(bytes, sizeof bytes);
    ei_cursor_fail(&c);
    ei_cursor child = ei_cursor_sub(&c, 0);
    CU_ASSERT_FALSE(ei_cursor_ok(&child));
    CU_ASSERT_EQUAL(ei_cursor_u8(&child), 0);

    /* and a child too long for its parent fails both */
    c = ei_cursor_make(bytes, sizeof bytes);
    child = ei_cursor_sub(&c, sizeof bytes + 1);
    CU_ASSERT_FALSE(ei_cursor_ok(&c));
    CU_ASSERT_FALSE(ei_cursor_ok(&child));
}

static void test_block_that_lies_by_one(void)
{
    /* a 16-bit length of 3, then 3 bytes: exact */
    static const uint8_t exact[] = { 0x00, 0x03, 'a', 'b', 'c' };
    ei_cursor c = ei_cursor_make(exact, sizeof exact);
    ei_cursor b = ei_cursor_block16(&c);
    ei_cursor_skip(&b, 3);
    CU_ASSERT(ei_cursor_finished(&b));
    CU_ASSERT(ei_cursor_finished(&c));

    /* the length says one more than is there: the parent fails where it lies */
    static const uint8_t longer[] = { 0x00, 0x04, 'a', 'b', 'c' };
    c = ei_cursor_make(longer, sizeof longer);
    b = ei_cursor_block16(&c);
    CU_ASSERT_FALSE(ei_cursor_ok(&c));
    CU_ASSERT_FALSE(ei_cursor_ok(&b));

    /* the length says one less than its contents: the block's parser, reading 3, fails,
     * and one that reads what it was given is not finished with the parent */
    static const uint8_t shorter[] = { 0x02, 'a', 'b', 'c' };
    c = ei_cursor_make(shorter, sizeof shorter);
    b = ei_cursor_block8(&c);
    ei_cursor_skip(&b, 3);
    CU_ASSERT_FALSE(ei_cursor_ok(&b));
    CU_ASSERT_FALSE(ei_cursor_finished(&c));
    CU_ASSERT_EQUAL(ei_cursor_left(&c), 1);

    static const uint8_t u24[] = { 0x00, 0x00, 0x02, 'x' };
    c = ei_cursor_make(u24, sizeof u24);
    b = ei_cursor_block24(&c);
    CU_ASSERT_FALSE(ei_cursor_ok(&c));
}

static void test_peek_and_find_do_not_consume_or_fail(void)
{
    static const uint8_t text[] = "GET / HTTP/1.1\r\n";
    ei_cursor c = ei_cursor_make(text, sizeof text - 1);
    CU_ASSERT_EQUAL(ei_cursor_peek(&c), 'G');
    CU_ASSERT_EQUAL(ei_cursor_peek_at(&c, 15), '\n'); /* the last byte */
    CU_ASSERT_EQUAL(ei_cursor_peek_at(&c, 16), EI_CURSOR_NONE); /* one past it */
    CU_ASSERT_EQUAL(ei_cursor_find(&c, ' '), 3);
    CU_ASSERT_EQUAL(ei_cursor_find(&c, '#'), SIZE_MAX);
    CU_ASSERT(ei_cursor_ok(&c));
    CU_ASSERT_EQUAL(ei_cursor_tell(&c), 0);
}

static void test_until(void)
{
    static const uint8_t text[] = "Host: a\r\npartial";
    ei_cursor c = ei_cursor_make(text, sizeof text - 1);
    ei_view line;
    CU_ASSERT_TRUE_FATAL(ei_cursor_until(&c, '\n', &line));
    CU_ASSERT_EQUAL(line.len, 8);
    CU_ASSERT_EQUAL(memcmp(line.ptr, "Host: a\r", 8), 0);
    CU_ASSERT_EQUAL(ei_cursor_tell(&c), 9); /* the LF is consumed too */
    CU_ASSERT_FALSE(ei_cursor_until(&c, '\n', &line)); /* no LF yet: nothing consumed */
    CU_ASSERT_EQUAL(ei_cursor_tell(&c), 9);
    CU_ASSERT(ei_cursor_ok(&c));
    ei_view rest = ei_cursor_remaining(&c);
    CU_ASSERT_EQUAL(rest.len, 7);
    CU_ASSERT_EQUAL(ei_cursor_consumed(&c).len, 9);
}

static bool is_digit(uint8_t b)
{
    return b >= '0' && b <= '9';
}

static void test_while(void)
{
    static const uint8_t text[] = "8080/x";
    ei_cursor c = ei_cursor_make(text, sizeof text - 1);
    ei_view port = ei_cursor_while(&c, is_digit);
    CU_ASSERT_EQUAL(port.len, 4);
    CU_ASSERT_EQUAL(ei_cursor_peek(&c), '/');
    ei_cursor_skip(&c, 2);
    CU_ASSERT_EQUAL(ei_cursor_while(&c, is_digit).len, 0); /* at the end: empty, ok */
    CU_ASSERT(ei_cursor_finished(&c));
}

static void test_tell_and_seek(void)
{
    ei_cursor c = ei_cursor_make(bytes, sizeof bytes);
    ei_cursor_skip(&c, 6);
    ei_cursor_seek(&c, 2); /* back, as a DNS compression pointer does */
    CU_ASSERT_EQUAL(ei_cursor_u8(&c), 0x03);
    ei_cursor_seek(&c, sizeof bytes); /* to the very end is allowed */
    CU_ASSERT(ei_cursor_finished(&c));
    ei_cursor_seek(&c, sizeof bytes + 1); /* one past it is not */
    CU_ASSERT_FALSE(ei_cursor_ok(&c));
}

static void test_copy_zero_fills_on_failure(void)
{
    uint8_t out[4];
    ei_cursor c = ei_cursor_make(bytes, sizeof bytes);
    ei_cursor_copy(&c, out, 4);
    CU_ASSERT_EQUAL(memcmp(out, bytes, 4), 0);
    ei_cursor_skip(&c, 1);
    memset(out, 0xee, sizeof out);
    ei_cursor_copy(&c, out, 4); /* 3 left: fails */
    CU_ASSERT_FALSE(ei_cursor_ok(&c));
    static const uint8_t zero[4] = { 0 };
    CU_ASSERT_EQUAL(memcmp(out, zero, 4), 0);
}

static void test_skip_upto_stops_at_the_end(void)
{
    ei_cursor c = ei_cursor_make(bytes, sizeof bytes);
    ei_cursor_skip(&c, 6);
    ei_cursor_skip_upto(&c, 3);
    CU_ASSERT(ei_cursor_finished(&c));
}

static void test_empty_window(void)
{
    ei_cursor c = ei_cursor_make(NULL, 5); /* no bytes, whatever the length says */
    CU_ASSERT_EQUAL(ei_cursor_left(&c), 0);
    CU_ASSERT(ei_cursor_finished(&c));
    CU_ASSERT_EQUAL(ei_cursor_u8(&c), 0);
    CU_ASSERT_FALSE(ei_cursor_ok(&c));
}

int main(void)
{
    static const ei_unit_case cases[] = {
        EI_CASE(test_reads_to_the_last_byte_and_not_past_it),
        EI_CASE(test_failure_is_sticky),
        EI_CASE(test_integers),
        EI_CASE(test_failed_parent_gives_failed_child),
        EI_CASE(test_block_that_lies_by_one),
        EI_CASE(test_peek_and_find_do_not_consume_or_fail),
        EI_CASE(test_until),
        EI_CASE(test_while),
        EI_CASE(test_tell_and_seek),
        EI_CASE(test_copy_zero_fills_on_failure),
        EI_CASE(test_skip_upto_stops_at_the_end),
        EI_CASE(test_empty_window),
    };
    EI_SUITE("cursor", cases);
    return ei_unit_run();
}

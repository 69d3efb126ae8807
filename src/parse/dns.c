/* DNS responses (RFC 1035 section 4, RFC 3596 for AAAA).
 *
 *   header   ID(16) QR(1) OPCODE(4) AA TC RD RA Z(3) RCODE(4)
 *            QDCOUNT(16) ANCOUNT(16) NSCOUNT(16) ARCOUNT(16)
 *   question QNAME QTYPE(16) QCLASS(16)
 *   answer   NAME TYPE(16) CLASS(16) TTL(32) RDLENGTH(16) RDATA
 *   name     a sequence of labels (length byte 1-63, then the bytes) ending with a zero
 *            byte or with a pointer (two bytes, 11 then a 14-bit offset into the message)
 *
 * Only the question and the answer section are read: the authority and additional
 * sections name nothing the workload asked for. A pointer must point strictly before the
 * previous one, so every name ends (a loop cannot) and no more than 255 bytes of labels
 * are accepted, as RFC 1035 allows. */
#include "egress_inspector/dns.h"

#include <string.h>

#include "parse/cursor.h"

enum {
    TYPE_A = 1,
    TYPE_CNAME = 5,
    TYPE_AAAA = 28,
    CLASS_IN = 1,
    NAME_WIRE_MAX = 255,
    MAX_POINTERS = 64,
};

const char *ei_dns_problem_name(ei_dns_problem problem)
{
    static const char *const names[EI_DNS_PROBLEM_COUNT] = {
        [EI_DNS_OK] = "ok",
        [EI_DNS_NOT_RESPONSE] = "not_response",
        [EI_DNS_TRUNCATED] = "truncated",
        [EI_DNS_BAD_QUESTION] = "bad_question",
        [EI_DNS_BAD_NAME] = "bad_name",
        [EI_DNS_BAD_RDATA] = "bad_rdata",
        [EI_DNS_CHAIN_TOO_LONG] = "chain_too_long",
    };
    return (unsigned)problem < EI_DNS_PROBLEM_COUNT ? names[problem] : "unknown";
}

/* One answer record, as far as the chain needs it. */
typedef struct {
    size_t rdata; /* offset into the message */
    uint32_t ttl;
    uint16_t type;
    uint16_t rdlen;
    char owner[EI_NAME_MAX + 1]; /* "" when the owner is outside the hostname grammar */
} record;

/* Reads the name at the cursor, which is left just past the bytes the name takes where it
 * stands (its pointer, if any, included). out receives the normalized name, or "" when
 * the name is well formed on the wire but not a hostname (the root, a label with a '.' or
 * a space in it, ...): such a name can match nothing we allow. The cursor spans the whole
 * message, so that a pointer can be followed with a seek. */
static ei_dns_problem read_name(ei_cursor *msg, char out[EI_NAME_MAX + 1])
{
    char text[NAME_WIRE_MAX + 1];
    size_t tlen = 0, wire = 0, limit = ei_cursor_tell(msg);
    ei_cursor at = *msg; /* follows the pointers; msg stays where the name stands */
    bool jumped = false, usable = true;
    out[0] = '\0';
    for (unsigned pointers = 0;;) {
        uint8_t b = ei_cursor_u8(&at);
        if (!ei_cursor_ok(&at))
            return EI_DNS_TRUNCATED;
        if (b == 0)
            break;
        if ((b & 0xc0) == 0xc0) {
            size_t target = (size_t)(b & 0x3f) << 8 | ei_cursor_u8(&at);
            if (!ei_cursor_ok(&at))
                return EI_DNS_TRUNCATED;
            if (!jumped)
                *msg = at;
            jumped = true;
            if (target >= limit || ++pointers > MAX_POINTERS)
                return EI_DNS_BAD_NAME;
            limit = target;
            ei_cursor_seek(&at, target);
            continue;
        }
        if (b & 0xc0)
            return EI_DNS_BAD_NAME; /* extended label types (RFC 6891) are not names */
        ei_view label = ei_cursor_bytes(&at, b);
        if (!ei_cursor_ok(&at))
            return EI_DNS_TRUNCATED;
        wire += 1u + b;
        if (wire + 1 > NAME_WIRE_MAX)
            return EI_DNS_BAD_NAME;
        if (memchr(label.ptr, '.', label.len) != NULL)
            usable = false; /* "a.b" as one label must not pass for two */
        if (tlen > 0)
            text[tlen++] = '.';
        memcpy(text + tlen, label.ptr, label.len);
        tlen += label.len;
    }
    if (!jumped)
        *msg = at;
    size_t olen;
    if (usable && ei_name_normalize((const uint8_t *)text, tlen, out, &olen) != EI_REASON_NONE)
        out[0] = '\0';
    if (!usable)
        out[0] = '\0';
    return EI_DNS_OK;
}

ei_parse_status ei_dns_tcp_message(ei_view segment, ei_view *msg)
{
    ei_cursor c = ei_cursor_from_view(segment);
    ei_cursor framed = ei_cursor_block16(&c);
    *msg = ei_cursor_rest(&framed);
    if (!ei_cursor_ok(&c)) {
        *msg = (ei_view){ NULL, 0 };
        return EI_PARSE_NEED_MORE;
    }
    return EI_PARSE_OK;
}

/* Header (RFC 1035 4.1.1): ID | QR (1) opcode (4) AA TC RD RA Z RCODE (4) | QDCOUNT |
 * ANCOUNT | NSCOUNT | ARCOUNT, 16 bits each. false when the message is shorter. */
typedef struct {
    uint16_t id, flags, qdcount, ancount;
} dns_header;

static bool read_header(ei_cursor *c, dns_header *h)
{
    h->id = ei_cursor_u16(c);
    h->flags = ei_cursor_u16(c);
    h->qdcount = ei_cursor_u16(c);
    h->ancount = ei_cursor_u16(c);
    ei_cursor_skip(c, 4); /* NSCOUNT, ARCOUNT */
    return ei_cursor_ok(c);
}

static bool is_response(const dns_header *h)
{
    return h->flags & 0x8000;
}

static bool is_standard_query(const dns_header *h) /* opcode QUERY */
{
    return (h->flags >> 11 & 0xf) == 0;
}

/* header | question: QNAME | QTYPE (2) | QCLASS (2) (RFC 1035 4.1.2) */
ei_parse_status ei_dns_parse_query(const uint8_t *msg, size_t len, ei_dns_query *out)
{
    memset(out, 0, sizeof *out);
    ei_cursor c = ei_cursor_make(msg, len);
    dns_header h;
    if (!read_header(&c, &h) || is_response(&h) || !is_standard_query(&h) || h.qdcount != 1)
        return EI_PARSE_MALFORMED;
    out->id = h.id;
    if (read_name(&c, out->name) != EI_DNS_OK || out->name[0] == '\0')
        return EI_PARSE_MALFORMED;
    out->qtype = ei_cursor_u16(&c);
    ei_cursor_skip(&c, 2);
    return ei_cursor_ok(&c) ? EI_PARSE_OK : EI_PARSE_MALFORMED;
}

static uint32_t min_ttl(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

static ei_parse_status malformed(ei_dns_answer *out, ei_dns_problem why)
{
    out->problem = why;
    return EI_PARSE_MALFORMED;
}

ei_parse_status ei_dns_parse_response(const uint8_t *msg, size_t len, ei_dns_answer *out)
{
    memset(out, 0, sizeof *out);
    ei_cursor c = ei_cursor_make(msg, len);
    dns_header h;
    if (!read_header(&c, &h))
        return malformed(out, EI_DNS_TRUNCATED);
    out->id = h.id;
    if (!is_response(&h) || !is_standard_query(&h))
        return malformed(out, EI_DNS_NOT_RESPONSE); /* a query, or an opcode other than QUERY */
    if (h.qdcount != 1)
        return malformed(out, EI_DNS_BAD_QUESTION);
    out->rcode = (uint8_t)(h.flags & 0xf);

    ei_dns_problem why = read_name(&c, out->chain[0]);
    if (why != EI_DNS_OK)
        return malformed(out, why);
    out->qtype = ei_cursor_u16(&c);
    ei_cursor_skip(&c, 2); /* QCLASS */
    if (!ei_cursor_ok(&c))
        return malformed(out, EI_DNS_TRUNCATED);

    record recs[EI_DNS_MAX_RECORDS];
    size_t nrecs = 0;
    for (uint16_t i = 0; i < h.ancount; i++) {
        if (nrecs == EI_DNS_MAX_RECORDS) {
            out->records_dropped = true;
            break;
        }
        record *r = &recs[nrecs];
        why = read_name(&c, r->owner);
        if (why != EI_DNS_OK)
            return malformed(out, why);
        r->type = ei_cursor_u16(&c);
        uint16_t rclass = ei_cursor_u16(&c);
        r->ttl = ei_cursor_u32(&c);
        if (r->ttl > INT32_MAX)
            r->ttl = 0; /* RFC 2181 section 8: a TTL with the top bit set means zero */
        r->rdlen = ei_cursor_u16(&c);
        r->rdata = ei_cursor_tell(&c);
        ei_cursor_skip(&c, r->rdlen);
        if (!ei_cursor_ok(&c))
            return malformed(out, EI_DNS_TRUNCATED);
        if (rclass == CLASS_IN && r->owner[0] != '\0')
            nrecs++;
    }
    if (out->chain[0][0] == '\0')
        return EI_PARSE_OK; /* a question about no hostname teaches nothing */
    out->chain_len = 1;

    /* From the question's name along its CNAME records, then its addresses. */
    uint32_t ttl = UINT32_MAX;
    const char *cur = out->chain[0];
    for (;;) {
        const record *cname = NULL;
        for (size_t i = 0; i < nrecs && cname == NULL; i++)
            if (recs[i].type == TYPE_CNAME && strcmp(recs[i].owner, cur) == 0)
                cname = &recs[i];
        if (cname == NULL)
            break;
        if (out->chain_len > EI_DNS_MAX_CHAIN)
            return malformed(out, EI_DNS_CHAIN_TOO_LONG);
        char *next = out->chain[out->chain_len];
        ei_cursor rdata = c;
        ei_cursor_seek(&rdata, cname->rdata);
        if (read_name(&rdata, next) != EI_DNS_OK ||
            ei_cursor_tell(&rdata) != cname->rdata + cname->rdlen || next[0] == '\0')
            return malformed(out, EI_DNS_BAD_RDATA);
        out->chain_len++;
        ttl = min_ttl(ttl, cname->ttl);
        cur = next;
    }
    for (size_t i = 0; i < nrecs; i++) {
        const record *r = &recs[i];
        if ((r->type != TYPE_A && r->type != TYPE_AAAA) || strcmp(r->owner, cur) != 0)
            continue;
        size_t want = r->type == TYPE_A ? 4 : 16;
        if (r->rdlen != want)
            return malformed(out, EI_DNS_BAD_RDATA);
        if (out->naddrs == EI_DNS_MAX_ADDRS) {
            out->addrs_dropped = true;
            continue;
        }
        ei_addr *a = &out->addrs[out->naddrs++];
        a->family = r->type == TYPE_A ? 4 : 6;
        ei_cursor rdata = c;
        ei_cursor_seek(&rdata, r->rdata);
        ei_cursor_copy(&rdata, a->bytes, want);
        ttl = min_ttl(ttl, r->ttl);
    }
    out->ttl = ttl == UINT32_MAX ? 0 : ttl;
    return EI_PARSE_OK;
}

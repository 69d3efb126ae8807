#!/usr/bin/python3
"""Crafted test captures: the fail-closed ambiguities and the evasions.

Writes every capture under tests/pcaps/crafted/ and tests/pcaps/evasion/, each X.pcap
with its X.expect. The two directories belong to this script: files in them that it does
not write are removed when it runs. Nothing else is written unless asked (--example).

    /usr/bin/python3 tests/pcaps/craft.py            write the captures (Debian python3-scapy)
    /usr/bin/python3 tests/pcaps/craft.py --verify   ... then compare each .expect with tshark
    /usr/bin/python3 tests/pcaps/craft.py --example  also rewrite tests/pcaps/example.pcap

Deterministic: fixed addresses, ports, ISNs, timestamps (1 ms apart from 2025-12-01), and
"random" bytes derived from SHA-256 of fixed labels; running it again rewrites identical
files. Every ClientHello and request is built here byte by byte, so any length can lie and
any extension can repeat.

How every connection looks
--------------------------
Client 10.244.0.10 (fd00:10:244::10 for IPv6), a pod in policy "default" of
tests/pcaps/test.rules (allowed.example and *.allowed.example are allowed; every other
name, e.g. denied.example, blocked.example, evil.test, is denied). Server 203.0.113.10
(2001:db8::10). Ethernet (linktype 1) unless the case is about the link type.
SYN (MSS 1460 or 1440, SACK-permitted, window scale) -> SYN-ACK -> ACK -> the client's
data segments, as the case dictates -> one server ACK -> client FIN. Every segment fits a
1500-byte MTU, so a 1.8 KB hello takes two segments. Client ISN 1000 (one case wraps the
sequence space), server ISN 5000000. Single-connection captures use client port 40000
(tests/e2e/live_test.sh relies on it); the others number their ports from 40000 (20000+N
for the hello split at offset N).

The ClientHellos: "basic" is an OpenSSL 3 / curl-like TLS 1.3 hello (~260 bytes:
server_name first, ec_point_formats, supported_groups, session_ticket, ALPN h2 and
http/1.1, encrypt_then_mac, extended_master_secret, signature_algorithms,
supported_versions, psk_key_exchange_modes, key_share x25519). "pq" is a chromium-like
hello: two GREASE extensions, key_share with a GREASE share, a 1216-byte X25519MLKEM768
share and x25519, server_name after the key share, padding (RFC 7685) to 1800 bytes on
the wire. Extension order is a parameter of client_hello().

The .expect format
------------------
One line per TCP connection, whitespace-separated:

    SRC SPORT DST DPORT L7 HOST VERDICT REASON

L7 is tls, http or none. HOST is the name as parsed, lower-cased, without port or trailing
dot; "-" when the flow carried none; "*" for ambiguous or broken messages (any value, not
checked). VERDICT is allow or deny; REASON is a reason name of src/common.c ("*" = any).
Lines starting with '#' are comments: "# why: ..." says what the case is about, and
"# oracle: skip" marks captures on which tshark's reading is deliberately not comparable
(two names, names outside the grammar, lying lengths, conflicting retransmissions, bounds;
also out-of-order or partly overlapping segments, which tshark reassembles only with
-o tcp.reassemble_out_of_order:TRUE), so tests/tshark_oracle.py leaves them out;
tests/check_pcaps.py replays all of them. --verify reads every capture with tshark as the
oracle does and reports any name that differs from the .expect (for skipped captures it
prints tshark's reading, with out-of-order reassembly, for information).
Connections listed in no .expect line must produce no decision at all.

kube/: workloads by Kubernetes labels (tests/kube/replay_test.py)
-----------------------------------------------------------------
workloads               pods of three namespaces (kube/pods.json, kube/namespaces.json)
                        judged by the policies of kube/kube.rules that select them
workloads_cnp           the same flows, the policies as ClusterNetworkPolicy documents
                        (kube/cnp.yaml)

crafted/: one connection each unless said otherwise
---------------------------------------------------
ok_tls13                basic hello, allowed.example                 allow allowed_name
ok_pq_two_segments      pq hello, 1800 bytes, 1460 + 340 bytes, the name in segment 2: allow
ok_two_records          handshake split over two TLS records: in one segment; and with the
                        record boundary inside the name, one record per segment   allow (x2)
ok_http                 GET / Host: allowed.example (port 80)          allow allowed_name
ok_ipv6                 basic hello over IPv6, api.allowed.example    allow allowed_name
deny_name               denied.example                               deny name_not_allowed
dup_extension           two server_name extensions                   deny tls_duplicate_extension
dup_other_extension     two ALPN extensions                          deny tls_duplicate_extension
two_names               one server_name list, two host_name entries  deny multiple_names
empty_name              host_name of length 0                        deny empty_name
invalid_name_nul        "allowed.example\\0.evil.test"               deny invalid_name
invalid_name_space      "allowed example"                            deny invalid_name
invalid_name_label64    64-byte label under .allowed.example         deny invalid_name
invalid_name_254        254-byte name under .allowed.example         deny invalid_name
invalid_name_nonascii   "allow\\xe9d.example"                         deny invalid_name
lie_record_more         record length +20 past the hello it holds, nothing follows, FIN:
                        a record running past the ClientHello is refused  deny tls_malformed
lie_record_less         record length -20: the hello's last 20 bytes read as a record header
                                                                     deny tls_malformed
truncated_then_fin      honest lengths, only the first half sent, FIN  deny incomplete
lie_handshake_more      handshake length +1, record honest: the message would continue in a
                        record that never comes, FIN                 deny incomplete
lie_handshake_less      handshake length -1: the record holds a byte after the hello
                                                                     deny tls_malformed
lie_session_more/less   legacy_session_id length +1 / -1             deny tls_malformed
lie_suites_more/less    cipher_suites length +1 / -1                 deny tls_malformed
lie_extensions_more/less  extensions block length +1 / -1            deny tls_malformed
lie_ext_more/less       the server_name extension's length +1 / -1   deny tls_malformed
lie_sni_list_more/less  server_name_list length +1 / -1              deny tls_malformed
lie_sni_name_more/less  host_name length +1 / -1                     deny tls_malformed
overlap_conflict        bytes 0..99 of a denied.example hello, then the same range again
                        holding an allowed.example hello, then its rest  deny tcp_overlap_conflict
http_two_host           two Host headers                             deny http_multiple_host
http_absolute_mismatch  GET http://denied.example/, Host: allowed.example  deny http_host_mismatch
http_connect_mismatch   CONNECT denied.example:443, Host: allowed.example:443 (port 3128)
                                                                     deny http_host_mismatch
http_connect_ok         CONNECT allowed.example:443, Host: allowed.example:443  allow
                        (--ports 80,443,3128)
http_connect_uninspected  the same to 3128 with the default ports: port_not_inspected
socks5_ok, socks5_denied  a SOCKS 5 CONNECT by name (port 1080, --ports 80,443,1080):
                        judged by the target name and port      allow / deny name_not_allowed
http_no_host            HTTP/1.0 GET without Host                    deny no_hostname
no_sni                  a hello without server_name                  deny no_hostname
ech                     outer name allowed.example plus encrypted_client_hello (0xfe0d):
                        judged by the outer name                     allow allowed_name
not_tls                 "SSH-2.0-OpenSSH_9.2\\r\\n" to port 443        deny not_tls_or_http
padding_then_hello      40 pure ACKs, keep-alives and other empty segments, then a hello
                        for denied.example: padding never allows     deny name_not_allowed

evasion/
--------
split_every_offset_allowed / _denied   the basic hello split at every byte offset N over two
                        segments, one connection per N (port 20000+N): each decided on its name
one_byte_segments       the whole hello in 1-byte segments: more held packets than the bound
                        (32) before the message completes            deny held_limit
one_byte_name           only the bytes around the name in 1-byte segments (under the bound):
                        allowed.example allow; denied.example deny
out_of_order            three segments sent 3,1,2 (and 3,2,1): allowed allow, denied deny
overlap_same            retransmissions with identical bytes (partial, whole, superset, inside,
                        out of order): decided on the name as usual
overlap_diff            retransmissions with different bytes: blocked.example then
                        allowed.example over it, the reverse, one byte of the random, a
                        segment rewritten by an earlier one sent after it
                                                                     deny tcp_overlap_conflict
acks_and_empty_before   30 segments without data first: pure and duplicate ACKs, empty PSH,
                        window updates, keep-alives (empty, and with one byte at seq ISN); also
                        with empty segments 100000 bytes ahead: allowed allow, denied deny
insertion               a hello without ACK, with URG, in a SYN without Fast Open: deny with
                        tcp_data_without_ack, tcp_urgent, tcp_data_in_syn; HTTP keep-alive
                        whose second request names a denied host: deny name_not_allowed
syn_data                the hello in the SYN (TCP fast open cookie): allowed allow, denied
                        deny; the hello split between SYN and a later segment: allow
seq_wrap                client ISN 2^32-100: the hello crosses the sequence wrap; allow, deny
names                   ALLOWED.EXAMPLE allow; "allowed.example." allow;
                        allowed.example.evil.test deny; evilallowed.example deny;
                        "allowed.example\\0" invalid_name; 254-byte name invalid_name;
                        63-byte label allow; 253-byte name allow; "*.allowed.example" and
                        "allowed..example" invalid_name
http_host_split         Host header split over two segments: allowed allow, denied deny
ipv6_ext_headers        hop-by-hop + destination options + routing before TCP: allow; eight
                        extension headers (the parser's bound): allow; denied.example: deny
ipv6_ext_chain          ten extension headers (past the bound of 8) before an allowed hello:
                        on every packet (dropped, no flow, no decision line); only on the
                        hello's packet after a plain handshake (that packet is dropped, so
                        no byte reaches the server; the flow ends undecided: no line)
ipv4_options            IPv4 options (3 NOPs + record route): allowed allow, denied deny
vlan                    802.1Q tag; 802.1ad + 802.1Q (QinQ)          allow (x2)
sll                     Linux cooked capture (linktype 113), IPv4 and IPv6  allow (x2)
raw_ip                  raw IP (linktype 101), IPv4 and IPv6         allow (x2)

dns/: destination binding, replayed with --dest-check strict (the "# options:" line); DNS
answers come from 10.96.0.10:53 (or fd00:10:96::a) to the client in the same capture
----
bound                   answer allowed.example A 203.0.113.10, hello to it   allow
sni_mismatch            answer A 203.0.113.99, hello to .10             deny sni_ip_mismatch
host_mismatch           the same with an HTTP request                   deny host_ip_mismatch
cname_chain             allowed.example CNAME edge.cdn.test CNAME pop7.cdn.test A .10  allow
aaaa                    api.allowed.example AAAA 2001:db8::10, hello over IPv6  allow
unresolved              no answer at all (replay never looks up)        deny dns_unresolved
ttl_expiry              A .99 (TTL 30), 60 s later A .10: .10 allow, .99 sni_ip_mismatch
other_workload          the answer went to 10.244.0.11, the hello comes from .10  dns_unresolved
nxdomain                NXDOMAIN for allowed.example                    deny sni_ip_mismatch
malformed               an answer whose record name points at itself: teaches nothing
                                                                        deny dns_unresolved
tcp_answer              the answer over TCP, with its 2-byte length     allow
tcp_rule                tcp://db.allowed.example:5432: bytes to its address allow
                        allowed_tcp_name; to another address: deny (no name)
tcp_rule_wildcard       tcp://*.cache.allowed.example:6379, learned r1.cache...  allow

quic/: QUIC client Initials over UDP (RFC 9001 protection, built here with python3-
cryptography: keys from the Destination Connection ID, AES-128-GCM, header protection),
each datagram padded to 1200 bytes unless the case says otherwise; client port 40000 to
203.0.113.10:443, dest-check off:
quic_ok                 one Initial, the ClientHello for allowed.example  allow
quic_denied             the same for denied.example                     deny name_not_allowed
quic_v2                 a QUIC version 2 Initial (RFC 9369)             allow
quic_pq_two_datagrams   a 1,800-byte post-quantum hello over two datagrams, the name
                        in the second                                   allow
quic_three_out_of_order one hello in three CRYPTO pieces, datagrams sent 3, 1, 2  allow
quic_crypto_conflict    two datagrams whose CRYPTO frames overlap with different bytes
                                                                        deny quic_crypto_conflict
quic_two_hellos         two Initials coalesced in one datagram, each a whole hello at
                        offset 0, for two names                         deny quic_crypto_conflict
quic_truncated          a ClientHello that announces more than ever comes  deny incomplete
quic_unknown_version    version 0x1a2b3c4d                              deny quic_version_unknown
quic_short_datagram     a whole Initial in a 1,000-byte datagram (a server drops it)
                                                                        deny quic_malformed
quic_other_port         allowed.example on UDP 4433: its entry covers 443 and 80  deny name_not_allowed
"""
import argparse
import hashlib
import os
import struct
import subprocess
import sys

from scapy.all import (DNS, DNSQR, DNSRR, IP, TCP, UDP, CookedLinux, Dot1AD, Dot1Q, Ether,
                       IPOption_NOP, IPOption_RR, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop,
                       IPv6ExtHdrRouting, PadN, Raw, conf)

HERE = os.path.dirname(os.path.abspath(__file__))
OWNED_DIRS = ("crafted", "evasion", "dns", "quic")
DNS4, DNS6 = "10.96.0.10", "fd00:10:96::a"
CLIENT4, SERVER4 = "10.244.0.10", "203.0.113.10"
CLIENT6, SERVER6 = "fd00:10:244::10", "2001:db8::10"
CLIENT_MAC, SERVER_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
CLIENT_ISN, SERVER_ISN = 1000, 5000000
MTU = 1500
START_US = 1764547200 * 10**6  # 2025-12-01T00:00:00Z


def det(label, n):
    """n pseudo-random bytes, the same on every run."""
    out, i = b"", 0
    while len(out) < n:
        out += hashlib.sha256(f"{label}/{i}".encode()).digest()
        i += 1
    return out[:n]


# ---- TLS ------------------------------------------------------------------------------

def u8(v): return struct.pack("!B", v & 0xff)
def u16(v): return struct.pack("!H", v & 0xffff)
def u24(v): return struct.pack("!I", v & 0xffffff)[1:]


EXT_TYPES = {
    "server_name": 0, "status_request": 5, "supported_groups": 10, "ec_point_formats": 11,
    "signature_algorithms": 13, "alpn": 16, "sct": 18, "padding": 21, "encrypt_then_mac": 22,
    "extended_master_secret": 23, "compress_certificate": 27, "session_ticket": 35,
    "supported_versions": 43, "psk_key_exchange_modes": 45, "key_share": 51,
    "ech": 0xfe0d, "renegotiation_info": 0xff01, "grease_a": 0x0a0a, "grease_b": 0x1a1a,
}

BASIC_ORDER = ["server_name", "ec_point_formats", "supported_groups", "session_ticket", "alpn",
               "encrypt_then_mac", "extended_master_secret", "signature_algorithms",
               "supported_versions", "psk_key_exchange_modes", "key_share"]
PQ_ORDER = ["grease_a", "supported_groups", "extended_master_secret", "alpn", "session_ticket",
            "compress_certificate", "ec_point_formats", "psk_key_exchange_modes",
            "status_request", "sct", "renegotiation_info", "signature_algorithms",
            "supported_versions", "key_share", "server_name", "grease_b"]

BASIC_SUITES = [0x1302, 0x1303, 0x1301, 0xc02c, 0xc030, 0xc02b, 0xc02f, 0xcca9, 0xcca8, 0x00ff]
PQ_SUITES = [0x2a2a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8,
             0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035]
SIGALGS = [0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501,
           0x0601]
X25519, SECP256R1, SECP384R1, X25519MLKEM768 = 0x001d, 0x0017, 0x0018, 0x11ec

LIES = ("handshake", "session", "suites", "extensions", "ext", "sni_list", "sni_name")


def ext(etype, data, lie=0):
    """struct { ExtensionType extension_type; opaque extension_data<0..2^16-1>; }"""
    return u16(etype) + u16(len(data) + lie) + data


def sni_body(names, list_lie=0, name_lie=0):
    """ServerNameList: server_name_list<1..2^16-1> of {NameType host_name(0); HostName<1..2^16-1>}.
    name_lie applies to the first entry's length."""
    entries = b"".join(u8(0) + u16(len(n) + (name_lie if i == 0 else 0)) + n
                       for i, n in enumerate(names))
    return u16(len(entries) + list_lie) + entries


def ech_outer():
    """ECHClientHello, outer (draft-ietf-tls-esni-22 5): type outer(0), HPKE suite
    HKDF-SHA256 / AES-128-GCM, config_id, enc<0..2^16-1> (an X25519 key), payload<1..2^16-1>."""
    enc, payload = det("ech-enc", 32), det("ech-payload", 208)
    return u8(0) + u16(0x0001) + u16(0x0001) + u8(0x2a) + u16(len(enc)) + enc + u16(len(payload)) + payload


def client_hello(names=(b"allowed.example",), *, pq=False, order=None, sni_exts=1,
                 repeat=(), ech=False, pad_to=None, lie=None, delta=0, label="hello"):
    """A TLS 1.3 ClientHello handshake message (msg_type | length24 | body), no record header.

    names: the host_name entries of the server_name extension (None: no server_name).
    pq: the chromium-like profile (GREASE, X25519MLKEM768 share, name after the key share).
    order: extension names (EXT_TYPES keys) in wire order; sni_exts copies of server_name
    go where "server_name" stands. repeat: extension names sent a second time, at the end.
    ech: append an outer encrypted_client_hello. pad_to: a padding extension makes the
    hello this many bytes on the wire, record header included.
    lie/delta: add delta to one length field: "handshake", "session" (legacy_session_id),
    "suites", "extensions" (the block), "ext" (the server_name extension's own length),
    "sni_list" (server_name_list), "sni_name" (the first host_name)."""
    assert lie in LIES + (None,), lie
    d = {k: (delta if lie == k else 0) for k in LIES}
    groups = [0x3a3a, X25519MLKEM768, X25519, SECP256R1, SECP384R1] if pq else \
             [X25519, SECP256R1, SECP384R1, 0x0019]
    shares = u16(X25519) + u16(32) + det(label + "/x25519", 32)
    if pq:
        shares = (u16(0x3a3a) + u16(1) + b"\x00" + u16(X25519MLKEM768) + u16(1216)
                  + det(label + "/mlkem", 1216) + shares)
    versions = ([0x5a5a] if pq else []) + [0x0304, 0x0303]
    alpn_list = u8(2) + b"h2" + u8(8) + b"http/1.1"
    data = {
        "server_name": None if names is None else sni_body(names, d["sni_list"], d["sni_name"]),
        "status_request": u8(1) + u16(0) + u16(0),
        "supported_groups": u16(2 * len(groups)) + b"".join(u16(g) for g in groups),
        "ec_point_formats": u8(1) + u8(0),
        "signature_algorithms": u16(2 * len(SIGALGS)) + b"".join(u16(s) for s in SIGALGS),
        "alpn": u16(len(alpn_list)) + alpn_list,
        "sct": b"", "encrypt_then_mac": b"", "extended_master_secret": b"",
        "compress_certificate": u8(2) + u16(2),
        "session_ticket": b"",
        "supported_versions": u8(2 * len(versions)) + b"".join(u16(v) for v in versions),
        "psk_key_exchange_modes": u8(1) + u8(1),
        "key_share": u16(len(shares)) + shares,
        "renegotiation_info": u8(0),
        "grease_a": b"", "grease_b": b"\x00",
        "ech": ech_outer(),
    }
    exts = b""
    for name in list(order or (PQ_ORDER if pq else BASIC_ORDER)) + list(repeat) + (["ech"] if ech else []):
        if name == "server_name":
            for i in range(sni_exts if names is not None else 0):
                exts += ext(0, data[name], d["ext"] if i == 0 else 0)
        else:
            exts += ext(EXT_TYPES[name], data[name])
    if pq and pad_to is None:
        pad_to = 1800
    if pad_to:
        fixed = 5 + 4 + 2 + 32 + 1 + 32 + 2 + 2 * len(PQ_SUITES if pq else BASIC_SUITES) + 2 + 2
        pad = pad_to - fixed - len(exts) - 4
        assert pad >= 0, pad
        exts += ext(EXT_TYPES["padding"], b"\x00" * pad)
    suites = b"".join(u16(s) for s in (PQ_SUITES if pq else BASIC_SUITES))
    session = det(label + "/session", 32)
    body = (u16(0x0303) + det(label + "/random", 32)
            + u8(len(session) + d["session"]) + session
            + u16(len(suites) + d["suites"]) + suites
            + u8(1) + u8(0)
            + u16(len(exts) + d["extensions"]) + exts)
    return u8(1) + u24(len(body) + d["handshake"]) + body


def records(hs, splits=(), record_lie=0):
    """TLSPlaintext records of type handshake(22), legacy version 0x0301, carrying hs cut at
    the given offsets; record_lie is added to the first record's length."""
    out, start = b"", 0
    for i, end in enumerate(list(splits) + [len(hs)]):
        out += u8(22) + u16(0x0301) + u16(end - start + (record_lie if i == 0 else 0)) + hs[start:end]
        start = end
    return out


def tls(name=b"allowed.example", **kw):
    """A basic (or pq=True) hello for one name, in one record."""
    return records(client_hello(names=(name,), **kw))


def sni_offset(wire, name):
    """Where name's bytes start in a record stream (for cuts around the name)."""
    i = wire.find(name)
    assert i > 0
    return i


def http_get(host, target=b"/", version="1.1", extra=b""):
    head = b"GET " + target + b" HTTP/" + version.encode() + b"\r\n"
    if host is not None:
        head += b"Host: " + host + b"\r\n"
    return head + b"User-Agent: curl/7.88.1\r\nAccept: */*\r\n" + extra + b"\r\n"


# ---- TCP connections ------------------------------------------------------------------

def data(off, payload, flags="PA"):
    """A client segment carrying payload at stream offset off (0 = the first byte after the SYN)."""
    return ("data", off, payload, flags)


def empty(flags="A", rel=None, window=64240, payload=b""):
    """A client segment that carries no stream data: rel is its sequence number relative to the
    first data byte (None: the current edge; -1: the SYN's own number, as keep-alives use)."""
    return ("empty", rel, payload, flags, window)


class Capture:
    """One pcap and its expectations."""

    def __init__(self, path, why, oracle=True, link="ether", options=None):
        self.path, self.why, self.oracle, self.link = path, why, oracle, link
        self.options = options  # replay arguments check_pcaps.py adds for this capture
        self.packets, self.expect, self.notes, self.us = [], [], [], START_US

    def wait(self, seconds):
        self.us += seconds * 10**6

    def dns(self, qname, records, *, v6=False, qtype="A", rcode=0, tcp=False, raw=None, client=None):
        """A DNS answer from the cluster resolver to the client: records are (name, type,
        ttl, rdata) tuples; raw replaces the whole message (malformed answers)."""
        c = client or (CLIENT6 if v6 else CLIENT4)
        if raw is None:
            an = None
            for name, rtype, ttl, rdata in records:
                rr = DNSRR(rrname=name, type=rtype, ttl=ttl, rdata=rdata)
                an = rr if an is None else an / rr
            msg = bytes(DNS(id=0x1234, qr=1, rd=1, ra=1, rcode=rcode,
                            qd=DNSQR(qname=qname, qtype=qtype), an=an))
        else:
            msg = raw
        # the workload's question first: an answer teaches only what was asked
        query = bytes(DNS(id=0x1234, rd=1, qd=DNSQR(qname=qname, qtype=qtype)))
        qip = IPv6(src=c, dst=DNS6, hlim=64) if v6 else IP(src=c, dst=DNS4, ttl=64, id=0)
        self.dns_message(qip, 53000, 53, query, tcp, True)
        ip = IPv6(src=DNS6, dst=c, hlim=64) if v6 else IP(src=DNS4, dst=c, ttl=64, id=0)
        self.dns_message(ip, 53, 53000, msg, tcp, False)

    def dns_message(self, ip, sport, dport, msg, tcp, from_client):
        """One DNS message over UDP, or over TCP with its 2-byte length (RFC 7766)."""
        if tcp:
            seg = TCP(sport=sport, dport=dport, flags="PA", seq=1, ack=1, window=502)
            self.frame(ip / seg / Raw(struct.pack(">H", len(msg)) + msg), from_client)
        else:
            self.frame(ip / UDP(sport=sport, dport=dport) / Raw(msg), from_client)

    def frame(self, ip, from_client):
        self.us += 1000
        src, dst = (CLIENT_MAC, SERVER_MAC) if from_client else (SERVER_MAC, CLIENT_MAC)
        if self.link == "ether":
            pkt = Ether(src=src, dst=dst) / ip
        elif self.link == "vlan":
            pkt = Ether(src=src, dst=dst) / Dot1Q(vlan=42) / ip
        elif self.link == "qinq":
            pkt = Ether(src=src, dst=dst) / Dot1AD(vlan=100) / Dot1Q(vlan=42) / ip
        elif self.link == "sll":
            mac = bytes.fromhex(src.replace(":", "")) + b"\x00\x00"
            pkt = CookedLinux(pkttype=4 if from_client else 0, lladdrtype=1, lladdrlen=6, src=mac) / ip
        else:
            pkt = ip
        assert len(ip) <= MTU, (self.path, len(ip))
        self.packets.append((self.us, bytes(pkt)))

    def conn(self, sport, segments, expect, *, v6=False, dport=443, ip_opts=None, ext_chain=(),
             chain_on_data_only=False, syn_data=None, tfo_cookie=None, client_isn=CLIENT_ISN,
             link=None):
        """One TCP connection: handshake, the client's segments in the given order, one server
        ACK, a client FIN. segments: data(...) / empty(...) items. expect: (l7, host, verdict,
        reason), or None when the connection must produce no decision."""
        if link:
            self.link = link
        c, s = (CLIENT6, SERVER6) if v6 else (CLIENT4, SERVER4)

        def ip(src, dst, chain=True):
            if not v6:
                return IP(src=src, dst=dst, ttl=64, id=0, flags="DF", options=ip_opts or [])
            hdr = IPv6(src=src, dst=dst, hlim=64)
            for h in (ext_chain if chain else ()):
                hdr = hdr / h
            return hdr

        def client(tcp, payload=b"", is_data=False):
            chain = not chain_on_data_only or is_data
            p = ip(c, s, chain) / tcp
            if payload:
                p = p / Raw(payload)
            self.frame(p, True)

        mss = (1440 if v6 else 1460)
        opts = [("MSS", mss), ("NOP", None), ("WScale", 7), ("SAckOK", b""), ("NOP", None), ("NOP", None)]
        if tfo_cookie is not None:
            opts += [("TFO", tfo_cookie)]
        M = 1 << 32
        syn_len = len(syn_data) if syn_data else 0
        first = (client_isn + 1) % M  # sequence number of stream byte 0
        client(TCP(sport=sport, dport=dport, flags="S", seq=client_isn, window=64240, options=opts),
               syn_data or b"", is_data=bool(syn_data))
        srv_ack = (first + syn_len) % M
        self.frame(ip(s, c, not chain_on_data_only) / TCP(
            sport=dport, dport=sport, flags="SA", seq=SERVER_ISN, ack=srv_ack, window=65160,
            options=[("MSS", mss), ("NOP", None), ("NOP", None), ("SAckOK", b""), ("NOP", None),
                     ("WScale", 7)]), False)
        edge = syn_len  # highest stream offset sent so far
        client(TCP(sport=sport, dport=dport, flags="A", seq=(first + edge) % M, ack=SERVER_ISN + 1,
                   window=502))
        for seg in segments:
            if seg[0] == "data":
                _, off, payload, flags = seg
                client(TCP(sport=sport, dport=dport, flags=flags, seq=(first + off) % M,
                           ack=SERVER_ISN + 1, window=502), payload, is_data=True)
                edge = max(edge, off + len(payload))
            else:
                _, rel, payload, flags, window = seg
                seq = first + (edge if rel is None else rel)
                client(TCP(sport=sport, dport=dport, flags=flags, seq=seq % M, ack=SERVER_ISN + 1,
                           window=window), payload)
        self.frame(ip(s, c, not chain_on_data_only) / TCP(
            sport=dport, dport=sport, flags="A", seq=SERVER_ISN + 1, ack=(first + edge) % M,
            window=509), False)
        client(TCP(sport=sport, dport=dport, flags="FA", seq=(first + edge) % M, ack=SERVER_ISN + 1,
                   window=502))
        if expect is not None:
            self.expect.append((c, sport, s, dport) + tuple(expect))

    def linktype(self):
        return {"ether": 1, "vlan": 1, "qinq": 1, "sll": 113, "raw": 101}[self.link]

    def write(self, root=HERE):
        path = os.path.join(root, self.path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:  # pcap 2.4, microseconds, little-endian
            f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 262144, self.linktype()))
            for us, frame in self.packets:
                f.write(struct.pack("<IIII", us // 10**6, us % 10**6, len(frame), len(frame)) + frame)
        if not self.expect and not self.path.startswith(("crafted/", "evasion/", "dns/", "kube/")):
            return path  # the bundled example has no expectations; an empty one means "no decision"
        with open(path.rsplit(".", 1)[0] + ".expect", "w") as f:
            f.write(f"# why: {self.why}\n")
            if self.options:
                f.write(f"# options: {self.options}\n")
            if not self.oracle:
                f.write("# oracle: skip\n")
            f.writelines(f"# {n}\n" for n in self.notes)
            f.write("# src sport dst dport l7 host verdict reason\n")
            for row in self.expect:
                f.write(" ".join(str(x) for x in row) + "\n")
        return path


def whole(payload):
    return [data(0, payload)]


def mss_segments(payload, mss=1460, start=0):
    return [data(start + i, payload[i:i + mss]) for i in range(0, len(payload), mss)]


ALLOW = ("tls", "allowed.example", "allow", "allowed_name")
DENY = ("tls", "denied.example", "deny", "name_not_allowed")
MALFORMED = ("tls", "*", "deny", "tls_malformed")


def padding_segments(n, far=False):
    """n client segments that carry no stream data: pure and duplicate ACKs, empty PSH, a
    window update, keep-alives at the SYN's sequence number (empty, and with one garbage byte
    as Windows sends them). far: also empty segments 100000 bytes ahead of the stream (no
    stack sends them; tshark's reassembly loses its place after one)."""
    kinds = [empty("A"), empty("PA"), empty("A", window=1024), empty("A"),
             empty("A", rel=-1), empty("A", rel=-1, payload=b"\x00")]
    if far:
        kinds.append(empty("A", rel=100000))
    return [kinds[i % len(kinds)] for i in range(n)]


# ---- crafted/ -------------------------------------------------------------------------

def crafted():
    caps = []

    def one(name, why, segments, expect, oracle=True, options=None, **kw):
        cap = Capture(f"crafted/{name}.pcap", why, oracle, options=options)
        cap.conn(40000, segments, expect, **kw)
        caps.append(cap)

    one("ok_tls13", "a plain TLS 1.3 ClientHello for an allowed name (positive control)",
        whole(tls()), ALLOW)
    pq = records(client_hello(pq=True))
    assert len(pq) == 1800 and sni_offset(pq, b"allowed.example") > 1460
    one("ok_pq_two_segments", "a chromium-like post-quantum hello (X25519MLKEM768 share, 1800 bytes) "
        "over two MSS-sized segments, the name after the key share, in the second segment",
        mss_segments(pq), ALLOW)

    cap = Capture("crafted/ok_two_records.pcap",
                  "the handshake message split over two TLS records: both in one segment; and "
                  "one record per segment with the record boundary inside the name")
    hs = client_hello()
    cap.conn(40000, whole(records(hs, [50])), ALLOW)
    cut = sni_offset(hs, b"allowed.example") + 7
    two = records(hs, [cut])
    cap.conn(40001, [data(0, two[:cut + 5]), data(cut + 5, two[cut + 5:])], ALLOW)
    caps.append(cap)

    one("ok_http", "a plain HTTP request (positive control)", whole(http_get(b"allowed.example")),
        ("http", "allowed.example", "allow", "allowed_name"), dport=80)
    one("ok_ipv6", "TLS over IPv6, a wildcard name", whole(tls(b"api.allowed.example")),
        ("tls", "api.allowed.example", "allow", "allowed_name"), v6=True)
    one("deny_name", "a clean hello for a name no entry allows", whole(tls(b"denied.example")), DENY)

    one("dup_extension", "two server_name extensions (both allowed.example): two readers may pick "
        "different copies, so any repeat is refused", whole(records(client_hello(sni_exts=2))),
        ("tls", "*", "deny", "tls_duplicate_extension"), oracle=False)
    one("dup_other_extension", "two ALPN extensions: a repeat of any type is refused",
        whole(records(client_hello(repeat=["alpn"]))),
        ("tls", "*", "deny", "tls_duplicate_extension"), oracle=False)
    one("two_names", "one server_name extension with two host_name entries (allowed, denied)",
        whole(records(client_hello(names=(b"allowed.example", b"denied.example")))),
        ("tls", "*", "deny", "multiple_names"), oracle=False)
    one("empty_name", "a host_name of length 0", whole(tls(b"")),
        ("tls", "*", "deny", "empty_name"), oracle=False)

    long254 = b".".join([b"a" * 63] * 3 + [b"a" * 46]) + b".allowed.example"
    assert len(long254) == 254
    for tag, name, what in [
            ("nul", b"allowed.example\x00.evil.test", "an embedded NUL"),
            ("space", b"allowed example", "a space"),
            ("label64", b"a" * 64 + b".allowed.example", "a 64-byte label under an allowed wildcard"),
            ("254", long254, "a 254-byte name (limit 253) under an allowed wildcard"),
            ("nonascii", b"allow\xe9d.example", "a non-ASCII byte")]:
        one(f"invalid_name_{tag}", f"a name outside the hostname grammar: {what}", whole(tls(name)),
            ("tls", "*", "deny", "invalid_name"), oracle=False)

    hello = tls()
    one("lie_record_more", "the record length claims 20 bytes more than the ClientHello it holds "
        "and nothing follows before FIN; a record running past the end of the ClientHello would "
        "carry a second message in the client's first flight, so this is inconsistent as soon as "
        "the record header and the handshake header are read (not merely truncated)",
        whole(records(client_hello(), record_lie=20)), MALFORMED, oracle=False)
    one("lie_record_less", "the record length claims 20 bytes less than the hello: the hello's "
        "last 20 bytes are read as the next record header (type 0x%02x), which no hello has"
        % hello[-20], whole(records(client_hello(), record_lie=-20)), MALFORMED, oracle=False)
    one("truncated_then_fin", "honest record and handshake lengths, but only the first half of "
        "the hello is sent, then FIN: simply truncated", [data(0, hello[:len(hello) // 2])],
        ("tls", "-", "deny", "incomplete"), oracle=False)
    one("lie_handshake_more", "the handshake length claims 1 byte more than was sent; the record "
        "is honest, so the message would go on in a record that never comes (a handshake "
        "message may span records); FIN", whole(records(client_hello(lie="handshake", delta=1))),
        ("tls", "-", "deny", "incomplete"), oracle=False)
    one("lie_handshake_less", "the handshake length claims 1 byte less than its record holds: a "
        "byte after the ClientHello in the same record",
        whole(records(client_hello(lie="handshake", delta=-1))), MALFORMED, oracle=False)
    what = {"session": "legacy_session_id", "suites": "cipher_suites", "extensions": "extensions block",
            "ext": "server_name extension", "sni_list": "server_name_list", "sni_name": "host_name"}
    for lie in ["session", "suites", "extensions", "ext", "sni_list", "sni_name"]:
        for delta in (1, -1):
            one(f"lie_{lie}_{'more' if delta > 0 else 'less'}",
                f"the {what[lie]} length lies by {delta:+d} "
                + ("(more than its enclosing block holds, FIN after the data)" if delta > 0
                   else "(bytes remain in the enclosing block)"),
                whole(records(client_hello(lie=lie, delta=delta))), MALFORMED, oracle=False)

    denied, allowed = tls(b"denied.example"), tls(b"allowed.example")
    one("overlap_conflict", "bytes 0..99 of a hello for denied.example, then a retransmission of the "
        "same range with other bytes (a hello for allowed.example), then the rest of that hello",
        [data(0, denied[:100]), data(0, allowed[:100]), data(100, allowed[100:])],
        ("tls", "*", "deny", "tcp_overlap_conflict"), oracle=False)

    one("http_two_host", "two Host headers", whole(
        b"GET / HTTP/1.1\r\nHost: allowed.example\r\nHost: denied.example\r\nAccept: */*\r\n\r\n"),
        ("http", "*", "deny", "http_multiple_host"), oracle=False, dport=80)
    one("http_absolute_mismatch", "an absolute URI naming another host than Host",
        whole(http_get(b"allowed.example", target=b"http://denied.example/")),
        ("http", "*", "deny", "http_host_mismatch"), oracle=False, dport=80)
    proxy = "--dest-check off --ports 80,443,3128"  # the proxy's port among the inspected ones
    one("http_connect_mismatch", "CONNECT to one host, Host naming another (to a proxy port "
        "the node rules inspect)",
        whole(b"CONNECT denied.example:443 HTTP/1.1\r\nHost: allowed.example:443\r\n"
              b"User-Agent: curl/7.88.1\r\n\r\n"),
        ("http", "*", "deny", "http_host_mismatch"), oracle=False, options=proxy, dport=3128)
    connect_ok = whole(b"CONNECT allowed.example:443 HTTP/1.1\r\nHost: allowed.example:443\r\n"
                       b"User-Agent: curl/7.88.1\r\n\r\n")
    one("http_connect_ok", "CONNECT through a proxy whose port is inspected, judged by the "
        "target name and its port 443", connect_ok,
        ("http", "allowed.example", "allow", "allowed_name"), options=proxy, dport=3128)
    one("http_connect_uninspected", "the same CONNECT to a proxy port outside --ports (the "
        "default 80,443): the node rules send only its first packet, and the target's name "
        "allows nothing", connect_ok, ("none", "-", "deny", "port_not_inspected"), oracle=False,
        dport=3128)
    socks = "--dest-check off --ports 80,443,1080"  # a SOCKS proxy's port among the inspected ones

    def socks5(name, port):
        greeting = b"\x05\x01\x00"  # no authentication
        return [data(0, greeting),
                data(3, b"\x05\x01\x00\x03" + bytes([len(name)]) + name + port.to_bytes(2, "big"))]
    one("socks5_ok", "a SOCKS 5 CONNECT by name to allowed.example:443 through a proxy on 1080, "
        "judged by the target name and its port", socks5(b"allowed.example", 443),
        ("socks", "allowed.example", "allow", "allowed_name"), oracle=False, options=socks, dport=1080)
    one("socks5_denied", "a SOCKS 5 CONNECT by name to denied.example:443: judged by the target",
        socks5(b"denied.example", 443), ("socks", "denied.example", "deny", "name_not_allowed"),
        oracle=False, options=socks, dport=1080)
    one("http_no_host", "HTTP/1.0 GET without Host names nothing", whole(http_get(None, version="1.0")),
        ("http", "-", "deny", "no_hostname"), dport=80)
    one("no_sni", "a ClientHello without server_name", whole(records(client_hello(names=None))),
        ("tls", "-", "deny", "no_hostname"))
    one("ech", "outer server_name allowed.example plus an encrypted_client_hello (0xfe0d) "
        "extension: judged by the outer name", whole(tls(ech=True)), ALLOW)
    one("not_tls", "an SSH banner to port 443", whole(b"SSH-2.0-OpenSSH_9.2\r\n"),
        ("none", "-", "deny", "not_tls_or_http"), oracle=False)
    one("padding_then_hello", "40 pure ACKs and other empty segments, then a hello for "
        "denied.example: padding never allows", padding_segments(40) + whole(tls(b"denied.example")),
        DENY)
    return caps


# ---- evasion/ -------------------------------------------------------------------------

def evasion():
    caps = []
    hello = tls(b"allowed.example")
    dhello = tls(b"denied.example")

    for name, expect in [(b"allowed.example", ALLOW), (b"denied.example", DENY)]:
        wire = tls(name)
        cap = Capture(f"evasion/split_every_offset_{name.split(b'.')[0].decode()}.pcap",
                      f"the {len(wire)}-byte hello for {name.decode()} split at every byte offset N "
                      "over two segments (client port 20000+N)")
        for k in range(1, len(wire)):
            cap.conn(20000 + k, [data(0, wire[:k]), data(k, wire[k:])], expect)
        caps.append(cap)

    cap = Capture("evasion/one_byte_segments.pcap", "the whole hello in 1-byte segments: the flow "
                  "reaches the bound on held packets (32) before the message completes",
                  oracle=False)
    cap.conn(40000, [data(i, hello[i:i + 1]) for i in range(len(hello))],
             ("tls", "-", "deny", "held_limit"))
    caps.append(cap)

    cap = Capture("evasion/one_byte_name.pcap", "the 20 bytes around the name in 1-byte segments, "
                  "the rest in two segments (22 data segments, under the bound on held packets)")
    for port, wire, name, expect in [(40000, hello, b"allowed.example", ALLOW),
                                     (40001, dhello, b"denied.example", DENY)]:
        a = sni_offset(wire, name) - 3
        segs = [data(0, wire[:a])] + [data(i, wire[i:i + 1]) for i in range(a, a + 20)] + \
               [data(a + 20, wire[a + 20:])]
        cap.conn(port, segs, expect)
    caps.append(cap)

    cap = Capture("evasion/out_of_order.pcap", "the hello in three segments sent 3,1,2 and 3,2,1 "
                  "(oracle skipped: tshark reassembles them only with -o "
                  "tcp.reassemble_out_of_order:TRUE, which tests/tshark_oracle.py does not set; "
                  "with it tshark reads the same names)", oracle=False)
    for port, wire, expect, order in [(40000, hello, ALLOW, (2, 0, 1)), (40001, dhello, DENY, (2, 0, 1)),
                                      (40002, hello, ALLOW, (2, 1, 0)), (40003, dhello, DENY, (2, 1, 0))]:
        a, b = len(wire) // 3, 2 * len(wire) // 3
        parts = [data(0, wire[:a]), data(a, wire[a:b]), data(b, wire[b:])]
        cap.conn(port, [parts[i] for i in order], expect)
    caps.append(cap)

    cap = Capture("evasion/overlap_same.pcap", "retransmissions that overlap with identical bytes "
                  "change nothing: partial overlap, the same segment twice, a superset, a segment "
                  "inside one already seen, an overlap arriving out of order (oracle skipped: "
                  "tshark reads partial overlaps only with -o tcp.reassemble_out_of_order:TRUE, "
                  "which tests/tshark_oracle.py does not set; with it tshark reads the same names)",
                  oracle=False)
    for port, wire, expect in [(40000, hello, ALLOW), (40001, dhello, DENY)]:
        a, b = len(wire) // 3, 2 * len(wire) // 3
        cap.conn(port, [data(0, wire[:b]), data(a, wire[a:])], expect)
    a, b = len(hello) // 3, 2 * len(hello) // 3
    cap.conn(40002, [data(0, hello[:a]), data(0, hello[:a]), data(a, hello[a:])], ALLOW)
    cap.conn(40003, [data(0, hello[:a]), data(0, hello[:b]), data(b, hello[b:])], ALLOW)
    cap.conn(40004, [data(0, hello[:b]), data(a, hello[a:a + 10]), data(b, hello[b:])], ALLOW)
    cap.conn(40005, [data(a, hello[a:]), data(0, hello[:b])], ALLOW)
    caps.append(cap)

    blocked = tls(b"blocked.example")  # as long as allowed.example: every other byte lines up
    assert len(blocked) == len(hello)
    n = sni_offset(hello, b"allowed.example")
    cap = Capture("evasion/overlap_diff.pcap", "retransmissions that overlap with different bytes: "
                  "blocked.example (denied, as long as allowed.example) first then allowed.example, "
                  "the reverse, only one byte of the random differs, an earlier segment rewriting "
                  "one that arrived ahead of it",
                  oracle=False)
    conflict = ("tls", "*", "deny", "tcp_overlap_conflict")
    cap.conn(40000, [data(0, blocked[:n + 10]), data(n - 10, hello[n - 10:])], conflict)
    cap.conn(40001, [data(0, hello[:n + 10]), data(n - 10, blocked[n - 10:])], conflict)
    flipped = bytearray(hello)
    flipped[20] ^= 0x01
    cap.conn(40002, [data(0, hello[:40]), data(10, bytes(flipped[10:]))], conflict)
    # Nothing contiguous from the stream's start has been read when the conflict shows, so
    # no protocol is known yet: l7 none.
    cap.conn(40003, [data(n - 10, hello[n - 10:]), data(0, blocked[:n + 10])],
             ("none", "*", "deny", "tcp_overlap_conflict"))
    caps.append(cap)

    cap = Capture("evasion/acks_and_empty_before.pcap", "30 segments without stream data before the "
                  "hello (pure and duplicate ACKs, empty PSH, window updates, keep-alives at the "
                  "SYN's sequence number, one with a garbage byte); and the same with empty "
                  "segments 100000 bytes ahead of the stream (oracle skipped: after one of those "
                  "tshark no longer reassembles the hello)", oracle=False)
    cap.conn(40000, padding_segments(30) + whole(hello), ALLOW)
    cap.conn(40001, padding_segments(30) + whole(dhello), DENY)
    cap.conn(40002, padding_segments(30, far=True) + whole(hello), ALLOW)
    cap.conn(40003, padding_segments(30, far=True) + whole(dhello), DENY)
    caps.append(cap)

    cap = Capture("evasion/syn_data.pcap", "the hello carried in the SYN (TCP fast open, with a "
                  "cookie): decided on the name; and a hello split between the SYN and a later "
                  "segment")
    cap.conn(40000, [], ALLOW, syn_data=hello, tfo_cookie=det("tfo", 8))
    cap.conn(40001, [], DENY, syn_data=dhello, tfo_cookie=det("tfo", 8))
    k = sni_offset(hello, b"allowed.example") + 4
    cap.conn(40002, [data(k, hello[k:])], ALLOW, syn_data=hello[:k], tfo_cookie=det("tfo", 8))
    caps.append(cap)

    cap = Capture("evasion/seq_wrap.pcap", "client ISN 2^32-100: the hello's bytes cross the "
                  "32-bit sequence number wrap, in three segments")
    for port, wire, expect in [(40000, hello, ALLOW), (40001, dhello, DENY)]:
        cap.conn(port, [data(0, wire[:90]), data(90, wire[90:150]), data(150, wire[150:])], expect,
                 client_isn=(1 << 32) - 100)
    caps.append(cap)

    label63 = b"b" * 63 + b".allowed.example"
    long253 = b".".join([b"a" * 63] * 3 + [b"a" * 45]) + b".allowed.example"
    long254 = b".".join([b"a" * 63] * 3 + [b"a" * 46]) + b".allowed.example"
    assert len(long253) == 253 and len(long254) == 254
    cap = Capture("evasion/names.pcap", "look-alike, case and length variants of the name, one per "
                  "connection (the 63-byte label and the 253-byte name are the limits, allowed)",
                  oracle=False)
    invalid = ("tls", "*", "deny", "invalid_name")
    for port, name, expect in [
            (40000, b"ALLOWED.EXAMPLE", ALLOW),
            (40001, b"allowed.example.", ALLOW),
            (40002, b"allowed.example.evil.test", ("tls", "allowed.example.evil.test", "deny", "name_not_allowed")),
            (40003, b"evilallowed.example", ("tls", "evilallowed.example", "deny", "name_not_allowed")),
            (40004, b"allowed.example\x00", invalid),
            (40005, long254, invalid),
            (40006, label63, ("tls", label63.decode(), "allow", "allowed_name")),
            (40007, long253, ("tls", long253.decode(), "allow", "allowed_name")),
            (40008, b"*.allowed.example", invalid),
            (40009, b"allowed..example", invalid)]:
        cap.conn(port, whole(tls(name)), expect)
    caps.append(cap)

    cap = Capture("evasion/http_host_split.pcap", "a Host header split over two segments, in the "
                  "middle of the name")
    for port, name, expect in [(40000, b"allowed.example", ("http", "allowed.example", "allow", "allowed_name")),
                               (40001, b"denied.example", ("http", "denied.example", "deny", "name_not_allowed"))]:
        req = http_get(name, target=b"/x")
        cut = req.index(b"Host: ") + 9
        cap.conn(port, [data(0, req[:cut]), data(cut, req[cut:])], expect, dport=80)
    caps.append(cap)

    def hbh():
        return IPv6ExtHdrHopByHop(options=[PadN(optdata=b"\x00" * 4)])

    cap = Capture("evasion/ipv6_ext_headers.pcap", "IPv6 extension headers before TCP on every "
                  "packet: hop-by-hop, destination options, routing (type 0, no segments left); "
                  "and a chain of eight, the most the parser walks")
    three = [hbh(), IPv6ExtHdrDestOpt(), IPv6ExtHdrRouting(segleft=0)]
    eight = [hbh()] + [IPv6ExtHdrDestOpt() for _ in range(7)]
    cap.conn(40000, whole(hello), ALLOW, v6=True, ext_chain=three)
    cap.conn(40001, whole(dhello), DENY, v6=True, ext_chain=three)
    cap.conn(40002, whole(hello), ALLOW, v6=True, ext_chain=eight)
    caps.append(cap)

    cap = Capture("evasion/ipv6_ext_chain.pcap", "ten IPv6 extension headers, past the parser's "
                  "bound of 8, before an allowed.example hello (a server's stack would read it): "
                  "its packets must be dropped or the flow denied, never allowed",
                  oracle=False)
    cap.notes = [
        "port 40000: the chain is on every packet, so no TCP header is ever read and there is",
        "no flow to decide: every packet is dropped, no decision line (an allow would show as",
        "an unexpected decision). port 40001: a plain handshake, the chain only on the packet",
        "carrying the hello: that packet is dropped in every mode (its ports cannot be read,",
        "so it cannot be tied to its flow), no byte reaches the server, and the flow closes",
        "with nothing to decide: no line either."]
    ten = [hbh()] + [IPv6ExtHdrDestOpt() for _ in range(9)]
    cap.conn(40000, whole(hello), None, v6=True, ext_chain=ten)
    cap.conn(40001, whole(hello), None, v6=True, ext_chain=ten, chain_on_data_only=True)
    caps.append(cap)

    cap = Capture("evasion/ipv4_options.pcap", "an IPv4 header with options (three NOPs and a "
                  "record route) on every packet")
    opts = [IPOption_NOP(), IPOption_NOP(), IPOption_NOP(), IPOption_RR(routers=["192.0.2.1", "0.0.0.0"])]
    cap.conn(40000, whole(hello), ALLOW, ip_opts=opts)
    cap.conn(40001, whole(dhello), DENY, ip_opts=opts)
    caps.append(cap)

    cap = Capture("evasion/insertion.pcap", "segments the server would not read as the "
                  "inspector does decide nothing: a hello without the ACK flag, with URG, in a "
                  "SYN without Fast Open; and a keep-alive connection whose second request names "
                  "a denied host", oracle=False)
    cap.conn(40000, [data(0, hello, flags="P")], ("none", "-", "deny", "tcp_data_without_ack"))
    cap.conn(40001, [data(0, hello, flags="PAU")], ("none", "-", "deny", "tcp_urgent"))
    cap.conn(40002, [], ("none", "-", "deny", "tcp_data_in_syn"), syn_data=hello)
    req1 = b"GET / HTTP/1.1\r\nHost: allowed.example\r\n\r\n"
    req2 = b"GET / HTTP/1.1\r\nHost: denied.example\r\n\r\n"
    cap.conn(40003, [data(0, req1), data(len(req1), req2)], ("http", "allowed.example", "allow", "allowed_name"),
             dport=80)
    cap.expect.append(cap.expect[-1][:4] + ("http", "denied.example", "deny", "name_not_allowed"))
    caps.append(cap)

    cap = Capture("evasion/vlan.pcap", "an 802.1Q-tagged connection and an 802.1ad + 802.1Q "
                  "(QinQ) one")
    cap.conn(40000, whole(hello), ALLOW, link="vlan")
    cap.conn(40001, whole(hello), ALLOW, link="qinq")
    caps.append(cap)

    for link, fname, why in [("sll", "sll", "Linux cooked capture (linktype 113)"),
                             ("raw", "raw_ip", "raw IP (linktype 101)")]:
        cap = Capture(f"evasion/{fname}.pcap", f"{why}, over IPv4 and IPv6", link=link)
        cap.conn(40000, whole(hello), ALLOW)
        cap.conn(40001, whole(hello), ALLOW, v6=True)
        caps.append(cap)
    return caps


# ---- example.pcap (tests/pcaps/example.pcap, replayed by example.sh) --------------------

def example():
    """The capture example.sh replays against rules/example.rules. Written only with --example.
    The workloads' DNS answers come first, as on a node: replay binds each allowed name to
    the addresses its answer gave, so the last flow (an allowed name sent elsewhere) is denied."""
    cap = Capture("example.pcap", "the bundled example")
    ci, default, payments = "10.244.1.10", "10.244.0.10", "10.244.7.10"
    cap.dns("github.com", [("github.com", "A", 60, "140.82.112.3")], client=ci)
    cap.dns("raw.githubusercontent.com", [("raw.githubusercontent.com", "CNAME", 300, "github.map.fastly.net"),
                                          ("github.map.fastly.net", "A", 30, "185.199.108.133")], client=ci)
    cap.dns("api.stripe.com", [("api.stripe.com", "A", 60, "54.187.174.169")], client=payments)
    cap.dns("api.github.com", [("api.github.com", "A", 60, "140.82.112.5")], client=default)
    pq = records(client_hello(names=(b"raw.githubusercontent.com",), pq=True))
    flows = [
        (ci, "140.82.112.3", 443, whole(tls(b"github.com"))),
        (ci, "185.199.108.133", 443, mss_segments(pq)),
        (ci, "198.51.100.7", 443, whole(tls(b"pastebin.example"))),
        (default, "140.82.112.5", 443, whole(tls(b"api.github.com"))),
        (default, "140.82.112.3", 443, whole(tls(b"github.com"))),
        (default, "151.101.0.1", 80, whole(http_get(b"deb.debian.org", target=b"/debian/"))),
        (default, "198.51.100.8", 443, whole(records(client_hello(names=(b"api.github.com", b"evil.example"))))),
        (payments, "54.187.174.169", 443, whole(tls(b"api.stripe.com"))),
        (payments, "140.82.112.5", 443, whole(tls(b"api.github.com"))),
        (payments, "198.51.100.66", 443, whole(tls(b"api.stripe.com"))),
    ]
    global CLIENT4, SERVER4
    saved = CLIENT4, SERVER4
    try:
        for i, (client, server, dport, segments) in enumerate(flows):
            CLIENT4, SERVER4 = client, server
            cap.conn(41000 + i, segments, None, dport=dport)
    finally:
        CLIENT4, SERVER4 = saved
    return cap


# The flows of kube/: (client, name, expected l7 host verdict reason). See kube/pods.json.
KUBE_FLOWS = [
    ("10.244.1.10", "api.stripe.example", "allow", "allowed_name"),    # payments/api-1
    ("10.244.1.10", "pypi.example", "deny", "name_not_allowed"),
    ("fd00:10:244:1::10", "api.stripe.example", "allow", "allowed_name"),
    ("10.244.1.10", "telemetry.example", "allow", "allowed_name"),     # namespaces env=prod
    ("10.244.1.11", "api.stripe.example", "deny", "name_not_allowed"), # debug: !debug
    ("10.244.2.10", "pypi.example", "allow", "allowed_name"),          # batch/runner-1
    ("10.244.2.10", "telemetry.example", "allow", "allowed_name"),
    ("10.244.3.10", "telemetry.example", "deny", "name_not_allowed"),  # sandbox: env=dev
    ("10.244.9.9", "api.stripe.example", "deny", "workload_unknown"),  # no pod has it
    ("10.244.2.50", "pypi.example", "deny", "workload_unknown"),       # two pods claim it
    ("10.244.2.60", "pypi.example", "deny", "name_not_allowed"),       # handed to a new pod
    ("10.244.2.99", "pypi.example", "deny", "workload_unknown"),       # a finished pod's
    ("10.0.0.5", "pypi.example", "deny", "workload_unknown"),          # hostNetwork
    ("10.250.0.5", "legacy.example", "allow", "allowed_name"),         # source 10.250.0.0/16
]


def kube():
    """Workloads by labels: the same flows replayed with a rules file and with
    ClusterNetworkPolicy documents (the .expect options name each)."""
    caps = []
    for stem, rules in (("workloads", "kube.rules"), ("workloads_cnp", "cnp.yaml")):
        c = Capture(f"kube/{stem}.pcap", "pods judged by the policies that select them", oracle=True,
                    options=f"--dest-check off --rules {{dir}}/{rules} --pods {{dir}}/pods.json "
                            f"--namespaces {{dir}}/namespaces.json")
        global CLIENT4, CLIENT6
        saved = CLIENT4, CLIENT6
        try:
            for i, (client, name, verdict, reason) in enumerate(KUBE_FLOWS):
                v6 = ":" in client
                if v6:
                    CLIENT6 = client
                else:
                    CLIENT4 = client
                if rules == "cnp.yaml" and client.startswith("10.250."):
                    # a ClusterNetworkPolicy selects pods only: no source CIDR covers it
                    verdict, reason = "deny", "workload_unknown"
                # a sender no pod has is denied at its SYN, before any name is read
                seen = ("none", "-") if reason == "workload_unknown" else ("tls", name)
                c.conn(41000 + i, whole(tls(name.encode())), seen + (verdict, reason), v6=v6)
        finally:
            CLIENT4, CLIENT6 = saved
        caps.append(c)
    return caps


def dns_binding():
    """Destination binding: the capture's own DNS answers say where each name may go."""
    global SERVER4
    caps = []
    strict = "--dest-check strict"

    def cap(name, why, oracle=True):
        c = Capture(f"dns/{name}.pcap", why, oracle, options=strict)
        caps.append(c)
        return c

    ALLOW_ = ("tls", "allowed.example", "allow", "allowed_name")
    c = cap("bound", "the name's answer holds the server's address: allowed")
    c.dns("allowed.example", [("allowed.example", "A", 300, SERVER4)])
    c.conn(40000, whole(tls()), ALLOW_)
    c = cap("sni_mismatch", "an allowed SNI sent to an address its answer does not hold (SNI spoofing)")
    c.dns("allowed.example", [("allowed.example", "A", 300, "203.0.113.99")])
    c.conn(40000, whole(tls()), ("tls", "allowed.example", "deny", "sni_ip_mismatch"))
    c = cap("host_mismatch", "an allowed HTTP Host sent to an address its answer does not hold")
    c.dns("allowed.example", [("allowed.example", "A", 300, "203.0.113.99")])
    c.conn(40000, whole(http_get(b"allowed.example")), ("http", "allowed.example", "deny", "host_ip_mismatch"),
           dport=80)
    c = cap("cname_chain", "the answer reaches the address through two CNAMEs")
    c.dns("allowed.example", [("allowed.example", "CNAME", 300, "edge.cdn.test"),
                              ("edge.cdn.test", "CNAME", 60, "pop7.cdn.test"),
                              ("pop7.cdn.test", "A", 20, SERVER4)])
    c.conn(40000, whole(tls()), ALLOW_)
    c = cap("aaaa", "an AAAA answer binds the name for an IPv6 connection")
    c.dns("api.allowed.example", [("api.allowed.example", "AAAA", 300, SERVER6)], v6=True, qtype="AAAA")
    c.conn(40000, whole(tls(b"api.allowed.example")), ("tls", "api.allowed.example", "allow", "allowed_name"),
           v6=True)
    c = cap("unresolved", "no answer in the capture, and replay never looks up: denied")
    c.conn(40000, whole(tls()), ("tls", "allowed.example", "deny", "dns_unresolved"))
    c = cap("ttl_expiry", "an address whose TTL ran out (60 s later) no longer binds; a new answer does")
    c.dns("allowed.example", [("allowed.example", "A", 30, "203.0.113.99")])
    c.wait(60)
    c.dns("allowed.example", [("allowed.example", "A", 300, SERVER4)])
    c.conn(40000, whole(tls()), ALLOW_)
    saved, SERVER4 = SERVER4, "203.0.113.99"
    try:
        c.conn(40001, whole(tls()), ("tls", "allowed.example", "deny", "sni_ip_mismatch"))
    finally:
        SERVER4 = saved
    c = cap("other_workload", "an answer to another workload binds nothing for this one")
    c.dns("allowed.example", [("allowed.example", "A", 300, SERVER4)], client="10.244.0.11")
    c.conn(40000, whole(tls()), ("tls", "allowed.example", "deny", "dns_unresolved"))
    c = cap("nxdomain", "NXDOMAIN: the name has no address, so no address is its own")
    c.dns("allowed.example", [], rcode=3)
    c.conn(40000, whole(tls()), ("tls", "allowed.example", "deny", "sni_ip_mismatch"))
    c = cap("malformed", "a compression pointer loop: the answer teaches nothing")
    loop = bytes.fromhex("1234 8180 0001 0001 0000 0000") + b"\x07allowed\x07example\x00\x00\x01\x00\x01" + \
        bytes.fromhex("c02a 0001 0001 0000012c 0004") + bytes(map(int, SERVER4.split(".")))
    c.dns("allowed.example", [], raw=loop)
    c.conn(40000, whole(tls()), ("tls", "allowed.example", "deny", "dns_unresolved"))
    c = cap("tcp_answer", "an answer over TCP (length-prefixed) binds the same way")
    c.dns("allowed.example", [("allowed.example", "A", 300, SERVER4)], tcp=True)
    c.conn(40000, whole(tls()), ALLOW_)
    # (the question over TCP, to the resolver, is no flow of the inspector's: no line)
    c = cap("tcp_rule", "tcp://db.allowed.example:5432 allows any protocol to the name's address, at SYN "
            "time; the same bytes to another address are not allowed by it", oracle=False)
    c.dns("db.allowed.example", [("db.allowed.example", "A", 300, "203.0.113.20")])
    saved, SERVER4 = SERVER4, "203.0.113.20"
    try:
        c.conn(40000, whole(b"\x00\x00\x00\x08\x04\xd2\x16\x2f"), ("none", "-", "allow", "allowed_tcp_name"),
               dport=5432)
        SERVER4 = "203.0.113.21"
        c.conn(40001, whole(b"\x00\x00\x00\x08\x04\xd2\x16\x2f"), ("none", "-", "deny", "*"),
               dport=5432)
    finally:
        SERVER4 = saved
    c = cap("tcp_rule_wildcard", "tcp://*.cache.allowed.example:6379 matches a learned name below it",
            oracle=False)
    c.dns("r1.cache.allowed.example", [("r1.cache.allowed.example", "A", 300, "203.0.113.30")])
    saved, SERVER4 = SERVER4, "203.0.113.30"
    try:
        c.conn(40000, whole(b"PING\r\n"), ("none", "-", "allow", "allowed_tcp_name"), dport=6379)
    finally:
        SERVER4 = saved
    return caps


# ---- tshark check ---------------------------------------------------------------------

TSHARK_FIELDS = ["ip.src", "ipv6.src", "tcp.srcport", "tls.handshake.type",
                 "tls.handshake.extensions_server_name", "http.request", "http.host"]


def quic_initial(dcid, pn, frames, *, version=1, pad_to=1200):
    """One protected client Initial carrying the frames (bytes), padded with PADDING frames
    so that the datagram it starts is pad_to bytes (RFC 9000 14.1)."""
    import hashlib, hmac
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    v2 = version == 0x6b3343cf
    salt = bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9" if v2 else
                         "38762cf7f55934b34d179ae6a4c80cadccbb7f0a")

    def label(secret, name, n):
        info = struct.pack("!HB", n, 6 + len(name)) + b"tls13 " + name + b"\x00"
        return hmac.new(secret, info + b"\x01", hashlib.sha256).digest()[:n]

    secret = label(hmac.new(salt, dcid, hashlib.sha256).digest(), b"client in", 32)
    pre = b"quicv2 " if v2 else b"quic "
    key, iv, hp = label(secret, pre + b"key", 16), label(secret, pre + b"iv", 12), label(secret, pre + b"hp", 16)
    first = 0xc0 | ((1 if v2 else 0) << 4) | 0x03  # long header, Initial, 4-byte packet number
    head = bytes([first]) + struct.pack("!I", version) + bytes([len(dcid)]) + dcid + b"\x00" + b"\x00"
    pad = max(0, pad_to - (len(head) + 2 + 4 + len(frames) + 16))
    payload = frames + b"\x00" * pad
    length = 4 + len(payload) + 16
    head += struct.pack("!H", 0x4000 | length)
    pn_bytes = struct.pack("!I", pn)
    nonce = bytes(a ^ b for a, b in zip(iv, pn.to_bytes(12, "big")))
    sealed = AESGCM(key).encrypt(nonce, payload, head + pn_bytes)
    packet = bytearray(head + pn_bytes + sealed)
    off = len(head)
    mask = Cipher(algorithms.AES(hp), modes.ECB()).encryptor().update(bytes(packet[off + 4:off + 20]))
    packet[0] ^= mask[0] & 0x0f
    for i in range(4):
        packet[off + i] ^= mask[1 + i]
    return bytes(packet)


def quic_varint(n):
    if n < 0x40:
        return bytes([n])
    if n < 0x4000:
        return struct.pack("!H", 0x4000 | n)
    return struct.pack("!I", 0x80000000 | n)


def crypto_frame(offset, data):
    return b"\x06" + quic_varint(offset) + quic_varint(len(data)) + data


def quic_captures():
    caps = []
    dcid = det("quic dcid", 8)

    def cap(name, why, datagrams, expect, dport=443, oracle=False):
        c = Capture(f"quic/{name}.pcap", why, oracle, options="--dest-check off")
        for d in datagrams:
            c.frame(IP(src=CLIENT4, dst=SERVER4, ttl=64, id=0) / UDP(sport=40000, dport=dport) / Raw(d), True)
        c.expect.append((CLIENT4, 40000, SERVER4, dport) + expect)
        caps.append(c)

    ALLOW_Q = ("quic", "allowed.example", "allow", "allowed_name")
    hello = client_hello()
    cap("quic_ok", "one Initial, the ClientHello for allowed.example", [quic_initial(dcid, 0, crypto_frame(0, hello))],
        ALLOW_Q, oracle=True)
    cap("quic_denied", "the same for denied.example",
        [quic_initial(dcid, 0, crypto_frame(0, client_hello(names=(b"denied.example",))))],
        ("quic", "denied.example", "deny", "name_not_allowed"), oracle=True)
    cap("quic_v2", "a QUIC version 2 Initial (RFC 9369)",
        [quic_initial(dcid, 0, crypto_frame(0, hello), version=0x6b3343cf)], ALLOW_Q)
    pq = client_hello(pq=True)
    cut = 1100
    assert sni_offset(pq, b"allowed.example") > cut
    cap("quic_pq_two_datagrams", "a 1,800-byte post-quantum hello over two datagrams, the name in the second",
        [quic_initial(dcid, 0, crypto_frame(0, pq[:cut])), quic_initial(dcid, 1, crypto_frame(cut, pq[cut:]))],
        ALLOW_Q, oracle=True)
    a, b = len(hello) // 3, 2 * len(hello) // 3
    pieces = [quic_initial(dcid, 0, crypto_frame(0, hello[:a])), quic_initial(dcid, 1, crypto_frame(a, hello[a:b])),
              quic_initial(dcid, 2, crypto_frame(b, hello[b:]))]
    cap("quic_three_out_of_order", "one hello in three CRYPTO pieces, datagrams sent 3, 1, 2",
        [pieces[2], pieces[0], pieces[1]], ALLOW_Q)
    other = client_hello(names=(b"denied.example",))
    cap("quic_crypto_conflict", "two datagrams whose CRYPTO frames overlap with different bytes",
        [quic_initial(dcid, 0, crypto_frame(0, hello[:200])), quic_initial(dcid, 1, crypto_frame(100, other[100:]))],
        ("quic", "-", "deny", "quic_crypto_conflict"))
    two = quic_initial(dcid, 0, crypto_frame(0, hello), pad_to=0) + \
        quic_initial(dcid, 1, crypto_frame(0, client_hello(names=(b"denied.example",))), pad_to=0)
    cap("quic_two_hellos", "two Initials coalesced in one datagram, each a whole hello at offset 0, for two names",
        [two + b"\x00" * max(0, 1200 - len(two))], ("quic", "-", "deny", "quic_crypto_conflict"))
    cap("quic_truncated", "a ClientHello that announces more than ever comes",
        [quic_initial(dcid, 0, crypto_frame(0, hello[:-20]))], ("quic", "-", "deny", "incomplete"))
    cap("quic_unknown_version", "version 0x1a2b3c4d",
        [quic_initial(dcid, 0, crypto_frame(0, hello), version=0x1a2b3c4d)], ("quic", "-", "deny", "quic_version_unknown"))
    cap("quic_short_datagram", "a whole Initial in a 1,000-byte datagram (a server drops it)",
        [quic_initial(dcid, 0, crypto_frame(0, hello), pad_to=1000)], ("quic", "-", "deny", "quic_malformed"))
    cap("quic_other_port", "allowed.example on UDP 4433: its entry covers 443 and 80",
        [quic_initial(dcid, 0, crypto_frame(0, hello))], ("quic", "allowed.example", "deny", "name_not_allowed"),
        dport=4433)
    return caps


def tshark_view(pcap, out_of_order=False):
    """{(src, sport): (l7, name or None)} for the first ClientHello / request tshark finds in
    each connection, read the way tests/tshark_oracle.py reads it (out_of_order: also
    reassemble out-of-order and partly overlapping segments)."""
    extra = ["-o", "tcp.reassemble_out_of_order:TRUE"] if out_of_order else []
    r = subprocess.run(["tshark", "-r", pcap, "-o", "tcp.desegment_tcp_streams:TRUE"] + extra +
                       ["-Y", "tls.handshake.type == 1 || http.request", "-T", "fields",
                        "-E", "separator=\t", "-E", "occurrence=f"]
                       + sum((["-e", f] for f in TSHARK_FIELDS), []),
                       capture_output=True, text=True, timeout=300)
    view = {}
    for line in r.stdout.splitlines():
        s4, s6, sport, hs, sni, _, host = (line.split("\t") + [""] * 7)[:7]
        l7, name = ("tls", sni) if hs else ("http", host)
        name = name.lower()
        if l7 == "http" and name.count(":") == 1:
            name = name.split(":")[0]
        view.setdefault((s4 or s6, sport), (l7, name.rstrip(".") or None))
    return view


def verify(caps):
    """Compares each written .expect with tshark's reading (as the oracle reads; for captures
    the oracle skips, with out-of-order reassembly too) and prints every difference. Returns
    the number of differences in captures the oracle does not skip."""
    bad = 0
    for cap in caps:
        view = tshark_view(os.path.join(HERE, cap.path), out_of_order=not cap.oracle)
        notes = []
        for c, sport, s, dport, l7, host, verdict, reason in cap.expect:
            got = view.get((c, str(sport)))
            if got is None:
                if l7 in ("tls", "http") and host not in ("-",):
                    notes.append(f"{sport}: tshark sees no {l7} message (expect {host} {verdict} {reason})")
                continue
            tl7, tname = got
            want = None if host == "-" else host
            if tl7 != l7:
                notes.append(f"{sport}: tshark reads {tl7} {tname!r}, expect {l7} {host}")
            elif host != "*" and tname != want:
                notes.append(f"{sport}: tshark name {tname!r}, expect {host}")
            elif host == "*":
                notes.append(f"{sport}: (info) tshark name {tname!r}; expect * {verdict} {reason}")
        hard = [n for n in notes if "(info)" not in n]
        if cap.oracle:
            bad += len(hard)
        tag = "ok  " if not hard else ("DIFF" if cap.oracle else "skip")
        print(f"{tag} {cap.path} ({len(cap.expect)} connections, tshark found {len(view)} messages)")
        for n in (notes if not cap.oracle or hard else [])[:12]:
            print("       " + n)
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--verify", action="store_true", help="compare every .expect with tshark")
    ap.add_argument("--example", action="store_true", help="also rewrite tests/pcaps/example.pcap")
    a = ap.parse_args()
    conf.verb = 0
    caps = crafted() + evasion() + dns_binding() + quic_captures() + kube()
    written = set()
    for cap in caps:
        stem = os.path.basename(cap.path)[:-5]
        assert stem in __doc__ or stem.rsplit("_", 1)[0] in __doc__, f"{cap.path}: not in the docstring"
        path = cap.write()
        written |= {path, path[:-5] + ".expect"}
    for d in OWNED_DIRS:
        for f in sorted(os.listdir(os.path.join(HERE, d))):
            p = os.path.join(HERE, d, f)
            if p not in written:
                os.remove(p)
                print(f"removed stale {d}/{f}")
    if a.example:
        example().write()
    print(f"wrote {len(caps)} captures, {len(written)} files")
    if a.verify:
        bad = verify(caps)
        print(f"tshark: {bad} differences in captures the oracle checks")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Writes the crafted captures of tests/pcaps/crafted and tests/pcaps/evasion, each with
its .expect file (format: tests/pcaps/README.md).

Every ClientHello is built here byte by byte, so that any length can be made to lie and
any extension repeated; every capture is deterministic (fixed addresses, ports, sequence
numbers and timestamps), so running the script again rewrites identical files.

    /usr/bin/python3 tests/pcaps/craft.py        (needs python3-scapy)

Clients are pods (10.244.0.10, fd00:10:244::10) in policy "default" of
tests/pcaps/test.rules: allowed.example and *.allowed.example are allowed on 443/80.
"""
import os
import struct

from scapy.all import (IP, TCP, Dot1Q, Ether, IPOption_NOP, IPOption_RR, IPv6,
                       IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, Raw,
                       CookedLinux, PcapWriter, conf)

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT4, SERVER4 = "10.244.0.10", "203.0.113.10"
CLIENT6, SERVER6 = "fd00:10:244::10", "2001:db8::10"
CLIENT_ISN, SERVER_ISN = 1000, 5000000


# ---- TLS ----------------------------------------------------------------------------

def u8(v): return struct.pack("!B", v & 0xff)
def u16(v): return struct.pack("!H", v & 0xffff)
def u24(v): return struct.pack("!I", v & 0xffffff)[1:]


def ext(etype, data, lie=0):
    return u16(etype) + u16(len(data) + lie) + data


def sni_ext(names, list_lie=0, name_lie=0):
    body = b"".join(u8(0) + u16(len(n) + (name_lie if i == 0 else 0)) + n for i, n in enumerate(names))
    return ext(0, u16(len(body) + list_lie) + body)


def client_hello(names=(b"allowed.example",), sni_exts=1, pq=False, sni_after_keyshare=False,
                 ech=False, dup_alpn=False, lie=None, delta=0):
    """A TLS 1.3 ClientHello handshake message (without the record header)."""
    lie = lie or ""
    sv = ext(43, u8(4) + u16(0x0304) + u16(0x0303))
    alpn_list = u8(2) + b"h2" + u8(8) + b"http/1.1"
    alpn = ext(16, u16(len(alpn_list)) + alpn_list)
    sig = ext(13, u16(4) + u16(0x0403) + u16(0x0804))
    groups = ext(10, u16(4) + u16(0x11ec if pq else 0x001d) + u16(0x001d))
    share = u16(0x11ec) + u16(1216) + b"\x33" * 1216 if pq else b""
    share += u16(0x001d) + u16(32) + b"\x44" * 32
    keyshare = ext(51, u16(len(share)) + share)
    sni = b""
    for _ in range(sni_exts):
        sni += sni_ext(list(names), delta if lie == "sni_list" else 0,
                       delta if lie == "sni_name" else 0) if names is not None else b""
    if lie == "ext":
        sni = ext(0, sni[4:], delta)
    exts = (b"" if sni_after_keyshare else sni) + sv + groups + sig + alpn
    if dup_alpn:
        exts += alpn
    exts += keyshare + (sni if sni_after_keyshare else b"")
    if ech:
        exts += ext(0xfe0d, b"\x00\x00\x01\x00\x01\x01" + u16(0) + u16(8) + b"\x55" * 8)
    suites = u16(0x1301) + u16(0x1302) + u16(0xc02f)
    body = (u16(0x0303) + b"\x11" * 32 + u8(32 + (delta if lie == "session" else 0)) + b"\x22" * 32
            + u16(len(suites) + (delta if lie == "suites" else 0)) + suites + u8(1) + u8(0)
            + u16(len(exts) + (delta if lie == "extensions" else 0)) + exts)
    return u8(1) + u24(len(body) + (delta if lie == "handshake" else 0)) + body


def records(hs, splits=(), record_lie=0):
    out, start = b"", 0
    for end in list(splits) + [len(hs)]:
        out += u8(22) + u16(0x0301) + u16(end - start + record_lie) + hs[start:end]
        start = end
    return out


# ---- TCP connections -----------------------------------------------------------------

class Capture:
    """One pcap and its expectations."""

    def __init__(self, path, why, oracle=True, link="ether"):
        self.path, self.why, self.oracle, self.link = path, why, oracle, link
        self.packets, self.expect, self.t = [], [], 1764547200.0

    def frame(self, ip):
        self.t += 0.001
        if self.link == "ether":
            pkt = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / ip
        elif self.link == "vlan":
            pkt = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Dot1Q(vlan=42) / ip
        elif self.link == "sll":
            pkt = CookedLinux(pkttype=4, lladdrtype=1, lladdrlen=6, src=b"\x02\x00\x00\x00\x00\x01\x00\x00") / ip
        else:
            pkt = ip
        pkt.time = self.t
        self.packets.append(pkt)

    def conn(self, sport, segments, expect, v6=False, ip_opts=None, ext_headers=0,
             syn_data=None, close=True, dport=443, client=None, server=None):
        """segments: list of (offset, bytes) client data in sending order; None = an empty
        ACK. expect: (l7, host, verdict, reason), or None when no decision is expected."""
        c, s = (CLIENT6, SERVER6) if v6 else (CLIENT4, SERVER4)
        c, s = client or c, server or s

        def ip(src, dst):
            if not v6:
                return IP(src=src, dst=dst, ttl=64, options=ip_opts or [])
            hdr = IPv6(src=src, dst=dst, hlim=64)
            for i in range(ext_headers):
                hdr = hdr / [IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt, IPv6ExtHdrRouting][0 if i == 0 else 1 + i % 2]()
            return hdr

        cseq = CLIENT_ISN + 1
        syn = ip(c, s) / TCP(sport=sport, dport=dport, flags="S", seq=CLIENT_ISN)
        if syn_data is not None:
            syn = syn / Raw(syn_data)
        self.frame(syn)
        self.frame(ip(s, c) / TCP(sport=dport, dport=sport, flags="SA", seq=SERVER_ISN,
                                  ack=CLIENT_ISN + 1 + (len(syn_data) if syn_data else 0)))
        if syn_data:
            cseq += len(syn_data)
        self.frame(ip(c, s) / TCP(sport=sport, dport=dport, flags="A", seq=cseq, ack=SERVER_ISN + 1))
        top = cseq
        for seg in segments:
            if seg is None:
                self.frame(ip(c, s) / TCP(sport=sport, dport=dport, flags="A", seq=top, ack=SERVER_ISN + 1))
                continue
            off, data = seg
            self.frame(ip(c, s) / TCP(sport=sport, dport=dport, flags="PA", seq=cseq + off,
                                      ack=SERVER_ISN + 1) / Raw(data))
            top = max(top, cseq + off + len(data))
        self.frame(ip(s, c) / TCP(sport=dport, dport=sport, flags="A", seq=SERVER_ISN + 1, ack=top))
        if close:
            self.frame(ip(c, s) / TCP(sport=sport, dport=dport, flags="FA", seq=top, ack=SERVER_ISN + 1))
        if expect is not None:
            self.expect.append((c, sport, s, dport) + tuple(expect))

    def write(self):
        path = os.path.join(HERE, self.path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        linktype = {"ether": 1, "vlan": 1, "sll": 113, "raw": 101}[self.link]
        w = PcapWriter(path, linktype=linktype, sync=True)
        for p in self.packets:
            w.write(p)
        w.close()
        if not self.expect:
            return
        with open(path.rsplit(".", 1)[0] + ".expect", "w") as f:
            f.write(f"# why: {self.why}\n")
            if not self.oracle:
                f.write("# oracle: skip\n")
            f.write("# src sport dst dport l7 host verdict reason\n")
            for row in self.expect:
                f.write(" ".join(str(x) for x in row) + "\n")


def whole(data):
    return [(0, data)]


def tls(name=b"allowed.example", **kw):
    return records(client_hello(names=(name,), **kw))


ALLOW = ("tls", "allowed.example", "allow", "allowed_name")


def crafted():
    caps = []

    def one(name, why, segments, expect, oracle=True, **kw):
        cap = Capture(f"crafted/{name}.pcap", why, oracle)
        cap.conn(40000, segments, expect, **kw)
        caps.append(cap)

    one("ok_tls13", "a plain TLS 1.3 ClientHello for an allowed name", whole(tls()), ALLOW)
    pq = records(client_hello(pq=True, sni_after_keyshare=True))
    one("ok_pq_two_segments", "a post-quantum-sized hello (about 1.5 KB), name after the key share, over two segments",
        [(0, pq[:1000]), (1000, pq[1000:])], ALLOW)
    hs = client_hello()
    one("ok_two_records", "the handshake split across two TLS records", whole(records(hs, [50])), ALLOW)
    one("ok_http", "a plain HTTP request", whole(b"GET / HTTP/1.1\r\nHost: allowed.example\r\nAccept: */*\r\n\r\n"),
        ("http", "allowed.example", "allow", "allowed_name"), dport=80)
    one("ok_ipv6", "TLS over IPv6", whole(tls(b"api.allowed.example")),
        ("tls", "api.allowed.example", "allow", "allowed_name"), v6=True)
    one("deny_name", "a clean hello for a name no entry allows", whole(tls(b"denied.example")),
        ("tls", "denied.example", "deny", "name_not_allowed"))
    one("dup_extension", "two server_name extensions: two readers may pick different ones",
        whole(records(client_hello(names=(b"allowed.example",), sni_exts=2))),
        ("tls", "*", "deny", "tls_duplicate_extension"), oracle=False)
    one("dup_other_extension", "two ALPN extensions", whole(records(client_hello(dup_alpn=True))),
        ("tls", "*", "deny", "tls_duplicate_extension"), oracle=False)
    one("two_names", "one server_name extension with two host_name entries",
        whole(records(client_hello(names=(b"allowed.example", b"denied.example")))),
        ("tls", "*", "deny", "multiple_names"), oracle=False)
    one("empty_name", "a host_name of length 0", whole(tls(b"")), ("tls", "*", "deny", "empty_name"), oracle=False)
    for tag, name in [("nul", b"allowed.example\x00.evil.test"), ("space", b"allowed example"),
                      ("label64", b"a" * 64 + b".allowed.example"),
                      ("254", (b"a" * 62 + b".") * 4 + b"allowed.ex"), ("nonascii", b"allow\xe9d.example")]:
        one(f"invalid_name_{tag}", f"a name outside the hostname grammar ({tag})", whole(tls(name)),
            ("tls", "*", "deny", "invalid_name"), oracle=False)
    for lie in ["session", "suites", "extensions", "ext", "sni_list", "sni_name"]:
        for delta in (1, -1):
            one(f"lie_{lie}_{'more' if delta > 0 else 'less'}", f"the {lie} length lies by {delta:+d}",
                whole(records(client_hello(lie=lie, delta=delta))), ("tls", "*", "deny", "tls_malformed"),
                oracle=False)
    one("lie_handshake_less", "the handshake length claims less than its record holds",
        whole(records(client_hello(lie="handshake", delta=-1))), ("tls", "*", "deny", "tls_malformed"), oracle=False)
    one("lie_record_more", "a record longer than the hello it holds: a second message in the first flight",
        whole(records(client_hello(), record_lie=20) + b"\x00" * 20), ("tls", "*", "deny", "tls_malformed"),
        oracle=False)
    hello = tls()
    one("truncated_then_fin", "half a hello, then FIN: it never completes",
        [(0, hello[:len(hello) // 2])], ("tls", "-", "deny", "incomplete"), oracle=False)
    evil = tls(b"allowed.example")
    good = tls(b"denied.example")
    one("overlap_conflict", "a retransmission of the same bytes with another name in them",
        [(0, good[:100]), (0, evil)], ("tls", "-", "deny", "tcp_overlap_conflict"), oracle=False)
    one("http_two_host", "two Host headers",
        whole(b"GET / HTTP/1.1\r\nHost: allowed.example\r\nHost: denied.example\r\n\r\n"),
        ("http", "allowed.example", "deny", "http_multiple_host"), oracle=False, dport=80)
    one("http_absolute_mismatch", "an absolute URI naming another host than Host",
        whole(b"GET http://denied.example/ HTTP/1.1\r\nHost: allowed.example\r\n\r\n"),
        ("http", "allowed.example", "deny", "http_host_mismatch"), dport=80)
    one("http_connect_mismatch", "CONNECT to one host, Host naming another",
        whole(b"CONNECT denied.example:443 HTTP/1.1\r\nHost: allowed.example:443\r\n\r\n"),
        ("http", "allowed.example", "deny", "http_host_mismatch"), dport=3128)
    one("http_connect_ok", "CONNECT through a proxy, judged by the target and its port",
        whole(b"CONNECT allowed.example:443 HTTP/1.1\r\nHost: allowed.example:443\r\n\r\n"),
        ("http", "allowed.example", "allow", "allowed_name"), dport=3128)
    one("http_no_host", "HTTP/1.0 without Host names nothing",
        whole(b"GET / HTTP/1.0\r\nAccept: */*\r\n\r\n"), ("http", "-", "deny", "no_hostname"), dport=80)
    one("no_sni", "a ClientHello without server_name",
        whole(records(client_hello(names=None, sni_exts=0))), ("tls", "-", "deny", "no_hostname"))
    one("ech", "ECH: judged by the outer name", whole(tls(ech=True)), ALLOW)
    one("not_tls", "SSH to port 443", whole(b"SSH-2.0-OpenSSH_9.2\r\n"), ("none", "-", "deny", "not_tls_or_http"),
        oracle=False)
    one("padding_then_hello", "pure ACKs before the hello change nothing",
        [None] * 40 + [(0, tls(b"denied.example"))], ("tls", "denied.example", "deny", "name_not_allowed"))
    return caps


def evasion():
    caps = []
    hs = tls(b"allowed.example")
    for name, verdict, reason in [(b"allowed.example", "allow", "allowed_name"),
                                  (b"denied.example", "deny", "name_not_allowed")]:
        data = tls(name)
        cap = Capture(f"evasion/split_every_offset_{name.split(b'.')[0].decode()}.pcap",
                      "the hello split at every byte offset across two segments")
        for k in range(1, len(data)):
            cap.conn(20000 + k, [(0, data[:k]), (k, data[k:])], ("tls", name.decode(), verdict, reason))
        caps.append(cap)

    cap = Capture("evasion/one_byte_segments.pcap",
                  "the hello in one-byte segments: more held packets than the bound before a name, so denied",
                  oracle=False)
    cap.conn(40001, [(i, hs[i:i + 1]) for i in range(len(hs))], ("tls", "-", "deny", "held_limit"))
    caps.append(cap)

    cap = Capture("evasion/reordered.pcap", "segments sent 3,1,2; an identical overlap; a differing overlap",
                  oracle=False)
    a, b = len(hs) // 3, 2 * len(hs) // 3
    cap.conn(40002, [(b, hs[b:]), (0, hs[:a]), (a, hs[a:b])], ALLOW)
    cap.conn(40003, [(0, hs[:b]), (a, hs[a:])], ALLOW)
    bad = tls(b"allowed.exbmple")
    cap.conn(40004, [(0, hs[:b]), (a, bad[a:])], ("tls", "-", "deny", "tcp_overlap_conflict"))
    caps.append(cap)

    cap = Capture("evasion/padding.pcap", "pure ACKs and data in the SYN")
    cap.conn(40005, [None, None, None, (0, hs)], ALLOW)
    cap.conn(40006, [], ALLOW, syn_data=hs)
    caps.append(cap)

    cap = Capture("evasion/names.pcap", "case, trailing dot, look-alike names, NUL, 254 bytes", oracle=False)
    for port, name, exp in [
            (40010, b"ALLOWED.EXAMPLE", ("tls", "allowed.example", "allow", "allowed_name")),
            (40011, b"allowed.example.", ("tls", "allowed.example", "allow", "allowed_name")),
            (40012, b"allowed.example.evil.test", ("tls", "allowed.example.evil.test", "deny", "name_not_allowed")),
            (40013, b"evilallowed.example", ("tls", "evilallowed.example", "deny", "name_not_allowed")),
            (40014, b"allowed.example\x00", ("tls", "*", "deny", "invalid_name")),
            (40015, (b"a" * 62 + b".") * 3 + b"b" * 60 + b".example", ("tls", "*", "deny", "invalid_name"))]:
        cap.conn(port, whole(tls(name)), exp)
    caps.append(cap)

    cap = Capture("evasion/http_host_split.pcap", "a Host header split over two segments")
    for port, name, exp in [(40020, b"allowed.example", ("http", "allowed.example", "allow", "allowed_name")),
                            (40021, b"denied.example", ("http", "denied.example", "deny", "name_not_allowed"))]:
        req = b"GET /x HTTP/1.1\r\nHost: " + name + b"\r\nAccept: */*\r\n\r\n"
        cut = req.index(b"Host: ") + 9
        cap.conn(port, [(0, req[:cut]), (cut, req[cut:])], exp, dport=80)
    caps.append(cap)

    cap = Capture("evasion/ip_headers.pcap",
                  "IPv4 options, an IPv6 extension header chain; a chain past the bound is dropped (no decision)",
                  oracle=False)
    cap.conn(40030, whole(hs), ALLOW, ip_opts=[IPOption_NOP(), IPOption_NOP(), IPOption_NOP(), IPOption_RR(routers=["192.0.2.1"])])
    cap.conn(40031, whole(hs), ALLOW, v6=True, ext_headers=3)
    cap.conn(40032, whole(hs), None, v6=True, ext_headers=9)
    caps.append(cap)

    for link in ["vlan", "sll", "raw"]:
        cap = Capture(f"evasion/link_{link}.pcap", f"link type {link}", link=link)
        cap.conn(40040, whole(hs), ALLOW)
        caps.append(cap)
    return caps


def example():
    """The capture README.md's example command replays against rules/example.rules."""
    cap = Capture("example.pcap", "the bundled example")
    ci, default, payments = "10.244.1.10", "10.244.0.10", "10.244.7.10"
    pq = records(client_hello(names=(b"raw.githubusercontent.com",), pq=True, sni_after_keyshare=True))
    flows = [
        (ci, "140.82.112.3", 443, whole(tls(b"github.com"))),
        (ci, "185.199.108.133", 443, [(0, pq[:1200]), (1200, pq[1200:])]),
        (ci, "198.51.100.7", 443, whole(tls(b"pastebin.example"))),
        (default, "140.82.112.5", 443, whole(tls(b"api.github.com"))),
        (default, "140.82.112.3", 443, whole(tls(b"github.com"))),
        (default, "151.101.0.1", 80, whole(b"GET /debian/ HTTP/1.1\r\nHost: deb.debian.org\r\n\r\n")),
        (default, "198.51.100.8", 443, whole(records(client_hello(names=(b"api.github.com", b"evil.example"))))),
        (payments, "54.187.174.169", 443, whole(tls(b"api.stripe.com"))),
        (payments, "140.82.112.5", 443, whole(tls(b"api.github.com"))),
    ]
    for i, (client, server, dport, segments) in enumerate(flows):
        cap.conn(41000 + i, segments, None, client=client, server=server, dport=dport)
    return [cap]


def main():
    conf.verb = 0
    caps = crafted() + evasion() + example()
    for cap in caps:
        cap.write()
    print(f"wrote {len(caps)} captures")


if __name__ == "__main__":
    main()

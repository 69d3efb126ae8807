#!/usr/bin/python3
"""Seed corpora for the libFuzzer targets in fuzz/, built from the captures in tests/pcaps.

Usage: fuzz/seeds.py OUTDIR [--max-files N]

Writes OUTDIR/<target>/<sha1 of the content>, one directory per target (the name of
fuzz/fuzz_<target>.c), each emptied first, so the output depends only on the inputs:

  packet    every frame of every capture (*.pcap, *.pcapng under tests/pcaps), behind the
            byte fuzz_packet.c reads as the link type (index into its links[] table); plus
            a few IP packets of the captures re-framed in every link type the target reads
            (NULL, LOOP, PPP, C-HDLC, radiotap/802.11, SLL, SLL2, NFLOG, VLAN, PPPoE, ...)
  tls       reassembled client streams (and, after a CONNECT or a preamble, the client's
            later flights) that start with a TLS handshake record (0x16)
  http      client flights that start like an HTTP request (and the request head alone)
  preamble  client first bytes that are neither TLS nor HTTP, a few that are, and a built-in
            set of SOCKS 4/4a/5, STARTTLS (SMTP, IMAP, POP3, FTP), LDAP StartTLS,
            PostgreSQL SSLRequest and PROXY v1/v2 preambles (the captures hold none)
  rules     every rules file (rules/*.rules, tests/**/*.rules), without its comments, each
            statement line alone, and the names the captures carry (SNI, Host)
  cnp       every ClusterNetworkPolicy document under tests/ (*.yaml), whole and one by one
  pipeline  the TCP packets of each connection, and of windows of up to 4 consecutive
            connections, in fuzz_pipeline.c's record framing
  suggest   a format byte (even: rules, odd: portarium) and a decision log made from each
            capture's expectations (tests/pcaps/**/*.expect), as json lines and as
            CloudEvents, with a few aggregate and proxy lines
  dns       UDP payloads from port 53, TCP port-53 server messages (2-byte length prefix
            stripped), and a built-in set of responses made with scapy (the captures hold
            no DNS today)

Duplicates (same content) are dropped; each file is cut to what its target reads; each
corpus keeps at most N files (default 500), taken round-robin over the captures and, within
a capture, over kinds of input, so that one large capture does not crowd out the others.
Needs python3 and scapy (Debian: python3-scapy) to read pcap and pcapng files.
"""

import argparse
import collections
import glob
import hashlib
import os
import re
import shutil
import struct
import sys

try:
    from scapy.utils import RawPcapReader, RawPcapNgReader
except ImportError as e:  # pragma: no cover
    sys.exit(f"seeds.py: scapy is needed (apt-get install python3-scapy): {e}")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = ("packet", "tls", "http", "preamble", "rules", "cnp", "pipeline", "dns", "quic", "suggest")


def header_define(header, name, default):
    """A numeric #define of include/egress_inspector/HEADER, or default."""
    try:
        with open(os.path.join(ROOT, "include", "egress_inspector", header)) as f:
            m = re.search(r"#define\s+%s\s+(\d+)" % name, f.read())
            return int(m.group(1)) if m else default
    except OSError:
        return default


TLS_MAX_RECORD = 16384
# Bytes each target reads at most; longer seeds are cut.
CAPS = {
    "packet": 1 + 65535,  # link byte + a frame of the largest snap length
    "tls": 2 * (5 + TLS_MAX_RECORD),  # 16 KiB of scratch: a hello over two full records
    "http": 16384,  # the pipeline's default reassembly_bytes: it never reads a longer head
    "preamble": header_define("preamble.h", "EI_PREAMBLE_MAX", 512),
    "rules": 65536,  # any size parses; longer files only slow the fuzzer down
    "cnp": 65536,  # the same for ClusterNetworkPolicy documents
    # libFuzzer's default -max_len when no seed is longer: 4095 records at most, and every
    # record's payload is at most 255 bytes (1-byte length).
    "pipeline": 4096,
    "dns": 65535,  # a TCP-carried message; UDP ones are smaller
    "suggest": 65536,  # a log of any length is read line by line; longer only slows it
    "quic": 4096,  # a mode byte and a datagram (fuzz_quic reads no more)
}

# fuzz_packet.c: links[data[0] % 12]
PACKET_LINKS = [0, 1, 9, 104, 127, 101, 108, 113, 228, 229, 239, 276]
LINK_ALIASES = {12: 101, 14: 101}  # DLT_RAW as some systems number it

PIPE_MAX_RECORDS = 4095
PIPE_TIME_JUMP_NS = 30 * 10**9  # fuzz_pipeline sets 40 s on flow bit 0x10; undecided timeout is 30 s

# ---------------------------------------------------------------------------------------
# Reading captures


def read_capture(path):
    """[(linktype, time in seconds, frame bytes)] of a pcap or pcapng file."""
    out = []
    try:
        reader = RawPcapReader(path)  # a pcapng file gets RawPcapNgReader
    except Exception as e:  # noqa: BLE001 - any unreadable file is only skipped
        print(f"seeds.py: skipping {rel(path)}: {e}", file=sys.stderr)
        return out
    try:
        for data, meta in reader:
            if isinstance(reader, RawPcapNgReader):
                linktype = meta.linktype
                ts = ((meta.tshigh << 32) | meta.tslow) / float(meta.tsresol or 1000000)
            else:
                linktype = reader.linktype
                ts = meta.sec + meta.usec / (1e9 if getattr(reader, "nano", False) else 1e6)
            out.append((linktype, ts, bytes(data)))
    except Exception as e:  # noqa: BLE001 - keep what was read before a broken record
        print(f"seeds.py: {rel(path)}: stopped after {len(out)} packets: {e}", file=sys.stderr)
    finally:
        reader.close()
    return out


def rel(path):
    return os.path.relpath(path, ROOT)


# ---------------------------------------------------------------------------------------
# Dissecting frames: the same walk as src/parse/packet.c, down to the innermost IP packet


Packet = collections.namedtuple(
    "Packet", "ver src dst proto sport dport flags seq payload ip")


def u16(b, o):
    return struct.unpack_from(">H", b, o)[0]


def u32(b, o):
    return struct.unpack_from(">I", b, o)[0]


def parse_frame(linktype, b):
    """The innermost TCP or UDP packet of a frame, or None."""
    linktype = LINK_ALIASES.get(linktype, linktype)
    try:
        if linktype == 1:
            return parse_ethernet(b, 0)
        if linktype == 113:
            return parse_ethertype(u16(b, 14), b[16:], 0)
        if linktype == 276:
            return parse_ethertype(u16(b, 0), b[20:], 0)
        if linktype in (0, 108):
            fam = struct.unpack_from("<I" if linktype == 0 else ">I", b, 0)[0]
            if linktype == 0 and fam > 0xFFFF:
                fam = struct.unpack_from(">I", b, 0)[0]
            if fam == 2:
                return parse_ipv4(b[4:], 0)
            if fam in (24, 28, 30):
                return parse_ipv6(b[4:], 0)
            return None
        if linktype == 101:
            return parse_ip(b, 0)
        if linktype == 228:
            return parse_ipv4(b, 0)
        if linktype == 229:
            return parse_ipv6(b, 0)
        if linktype == 9:
            return parse_ppp(b, 0)
        if linktype == 104:
            return parse_ethertype(u16(b, 2), b[4:], 0)
        if linktype == 239:
            return parse_nflog(b)
        if linktype == 127:
            rt_len = struct.unpack_from("<H", b, 2)[0]
            return parse_80211(b[rt_len:], 0)
    except (struct.error, IndexError):
        return None
    return None


def parse_ethernet(b, depth):
    t, o = u16(b, 12), 14
    tags = 0
    while t in (0x8100, 0x88A8, 0x9100):
        if tags == 4:
            return None
        t, o, tags = u16(b, o + 2), o + 4, tags + 1
    return parse_ethertype(t, b[o:], depth)


def parse_ethertype(t, b, depth):
    if t == 0x0800:
        return parse_ipv4(b, depth)
    if t == 0x86DD:
        return parse_ipv6(b, depth)
    if t == 0x6558 and depth < 4:
        return parse_ethernet(b, depth + 1)
    if t == 0x8864:
        return parse_ppp(b[6:], depth)
    return None


def parse_ppp(b, depth):
    if b[:2] == b"\xff\x03":
        b = b[2:]
    proto = u16(b, 0)
    if proto == 0x0021:
        return parse_ipv4(b[2:], depth)
    if proto == 0x0057:
        return parse_ipv6(b[2:], depth)
    return None


def parse_nflog(b):
    o = 4
    while o + 4 <= len(b):
        tlv_len, typ = struct.unpack_from("<HH", b, o)
        if tlv_len < 4:
            return None
        if typ & 0x7FFF == 9:
            return parse_ip(b[o + 4:o + tlv_len], 0)
        o += (tlv_len + 3) & ~3
    return None


def parse_80211(b, depth):
    fc0, fc1 = b[0], b[1]
    if (fc0 & 0x0C) != 0x08 or fc1 & 0x40:
        return None
    o = 24 + (6 if fc1 & 3 == 3 else 0) + (2 if fc0 & 0x80 else 0)
    if b[o:o + 3] != b"\xaa\xaa\x03":
        return None
    return parse_ethertype(u16(b, o + 6), b[o + 8:], depth)


def parse_ip(b, depth):
    if not b:
        return None
    if b[0] >> 4 == 4:
        return parse_ipv4(b, depth)
    if b[0] >> 4 == 6:
        return parse_ipv6(b, depth)
    return None


def parse_ipv4(b, depth):
    ihl = (b[0] & 15) * 4
    total = u16(b, 2)
    if b[0] >> 4 != 4 or ihl < 20 or total < ihl or len(b) < ihl:
        return None
    b = b[:total]
    if u16(b, 6) & 0x3FFF:  # a fragment
        return None
    return parse_l4(4, b[12:16], b[16:20], b[9], b[ihl:], b, depth)


def parse_ipv6(b, depth):
    if b[0] >> 4 != 6 or len(b) < 40:
        return None
    plen = u16(b, 4)
    b = b[:40 + plen] if plen else b
    nh, body = b[6], b[40:]
    for _ in range(8):
        if nh in (0, 43, 60, 135, 139, 140):
            hlen = (body[1] + 1) * 8
        elif nh == 51:
            hlen = (body[1] + 2) * 4
        elif nh == 44:
            if u16(body, 2) & 0xFFF9:  # offset or more-fragments
                return None
            hlen = 8
        else:
            break
        nh, body = body[0], body[hlen:]
    return parse_l4(6, b[8:24], b[24:40], nh, body, b, depth)


def parse_l4(ver, src, dst, proto, body, ip, depth):
    if proto in (4, 41) and depth < 4:
        return parse_ipv4(body, depth + 1) if proto == 4 else parse_ipv6(body, depth + 1)
    if proto == 6 and len(body) >= 20:
        off = (body[12] >> 4) * 4
        if off < 20 or off > len(body):
            return None
        return Packet(ver, bytes(src), bytes(dst), 6, u16(body, 0), u16(body, 2), body[13],
                      u32(body, 4), bytes(body[off:]), bytes(ip))
    if proto == 17 and len(body) >= 8:
        ulen = u16(body, 4)
        return Packet(ver, bytes(src), bytes(dst), 17, u16(body, 0), u16(body, 2), 0, 0,
                      bytes(body[8:max(8, ulen)] if ulen >= 8 else body[8:]), bytes(ip))
    return None


# ---------------------------------------------------------------------------------------
# TCP connections and their byte streams

SYN, FIN, RST, ACK = 0x02, 0x01, 0x04, 0x10


class Conn:
    def __init__(self, client, server, ver, first):
        self.client, self.server, self.ver, self.first = client, server, ver, first
        self.pkts = []  # (index, time, Packet, from_client)
        self.isn = {True: None, False: None}

    def add(self, i, ts, p, from_client):
        if p.flags & SYN and self.isn[from_client] is None:
            self.isn[from_client] = p.seq
        self.pkts.append((i, ts, p, from_client))

    def base(self, from_client):
        """Sequence number of the direction's first byte (ISN + 1)."""
        if self.isn[from_client] is not None:
            return (self.isn[from_client] + 1) & 0xFFFFFFFF
        for _, _, p, fc in self.pkts:
            if fc == from_client and p.payload:
                return p.seq
        return 0

    def stream(self, from_client, limit=65536):
        """(bytes, [offsets where a flight of this direction starts]): the direction's
        bytes in order, the first copy of a byte winning, up to the first hole."""
        base = self.base(from_client)
        buf, have = bytearray(limit), bytearray(limit)
        flights, last_payload_dir = [], None
        for _, _, p, fc in self.pkts:
            if not p.payload:
                continue
            if fc == from_client:
                off = (p.seq + (1 if p.flags & SYN else 0) - base) & 0xFFFFFFFF
                if last_payload_dir is not from_client and off < limit:
                    flights.append(off)
                for k, byte in enumerate(p.payload):
                    if off + k < limit and not have[off + k]:
                        buf[off + k], have[off + k] = byte, 1
            last_payload_dir = fc
        n = have.find(0)
        n = limit if n < 0 else n
        return bytes(buf[:n]), sorted(o for o in set(flights) if o < n)


def connections(packets):
    """TCP connections of a capture, in order of their first packet."""
    conns, current = [], {}
    for i, (lt, ts, frame) in enumerate(packets):
        p = parse_frame(lt, frame)
        if p is None or p.proto != 6:
            continue
        a, b = (p.src, p.sport), (p.dst, p.dport)
        key = (p.ver,) + tuple(sorted((a, b)))
        c = current.get(key)
        client_syn = p.flags & (SYN | ACK) == SYN
        if c is not None and client_syn and c.isn[True] is not None and c.isn[True] != p.seq:
            c = None  # port reuse: a new connection on the same tuple
        if c is None:
            if client_syn:
                client = a
            elif p.flags & (SYN | ACK) == SYN | ACK:
                client = b
            elif (p.sport < 1024) != (p.dport < 1024):
                client = a if p.sport >= 1024 else b
            else:
                client = a
            c = Conn(client, b if client == a else a, p.ver, i)
            current[key] = c
            conns.append(c)
        c.add(i, ts, p, a == c.client)
    return conns


def udp_packets(packets):
    for lt, _, frame in packets:
        p = parse_frame(lt, frame)
        if p is not None and p.proto == 17:
            yield p


# ---------------------------------------------------------------------------------------
# What a payload looks like

HTTP_METHODS = (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS",
                b"TRACE", b"PATCH", b"PRI", b"PROPFIND", b"PROPPATCH", b"MKCOL", b"COPY",
                b"MOVE", b"LOCK", b"UNLOCK", b"SEARCH", b"REPORT")


def looks_tls(b):
    return len(b) >= 1 and b[0] == 0x16


def looks_http(b):
    """A known method, or any method token in a request line that names an HTTP version
    (so that "EHLO x" is not taken for a request)."""
    m = re.match(rb"([A-Z_-]{1,24}) ", b[:32])
    if not m:
        return False
    return m.group(1) in HTTP_METHODS or re.match(rb"[A-Z_-]+ \S+ HTTP/\d\.\d\r?\n", b[:8192]) is not None


def tls_handshake_prefix(b):
    """The leading run of whole handshake records (or the input when there is none)."""
    o = 0
    while o + 5 <= len(b) and b[o] == 0x16:
        n = 5 + u16(b, o + 3)
        if o + n > len(b):
            break
        o += n
    return b[:o] if o else b


def tls_hello_clean(b):
    """Whether b is one record holding one ClientHello whose lengths all agree, with no
    extension twice and one server_name."""
    try:
        if b[0] != 0x16 or b[5] != 1 or len(b) != 5 + u16(b, 3) or u16(b, 3) != 4 + u32(b, 5) % (1 << 24):
            return False
        o = 9 + 2 + 32
        o += 1 + b[o]
        o += 2 + u16(b, o)
        o += 1 + b[o]
        if o + 2 + u16(b, o) != len(b):
            return False
        o, seen, names = o + 2, set(), 0
        while o < len(b):
            typ, n = u16(b, o), u16(b, o + 4 - 2)
            if typ in seen or o + 4 + n > len(b):
                return False
            seen.add(typ)
            if typ == 0:
                names = 1 if u16(b, o + 4) == n - 2 and u16(b, o + 7) + 3 == n - 2 else 2
            o += 4 + n
        return names == 1
    except (IndexError, struct.error):
        return False


def http_head(b):
    end = b.find(b"\r\n\r\n")
    return b[:end + 4] if end >= 0 else b


def tls_sni(b):
    """The first server_name of a ClientHello, or None. Tolerant: any error gives None."""
    try:
        if b[0] != 0x16 or b[5] != 1:
            return None
        o = 9 + 2 + 32
        o += 1 + b[o]  # session id
        o += 2 + u16(b, o)  # cipher suites
        o += 1 + b[o]  # compression
        end = o + 2 + u16(b, o)
        o += 2
        while o + 4 <= end:
            typ, n = u16(b, o), u16(b, o + 2)
            if typ == 0:
                name_len = u16(b, o + 7)
                return b[o + 9:o + 9 + name_len]
            o += 4 + n
    except (IndexError, struct.error):
        return None
    return None


def http_host(b):
    m = re.search(rb"\r\nhost:[ \t]*([^\r\n]*)", http_head(b), re.I)
    return m.group(1).strip() if m else None


# ---------------------------------------------------------------------------------------
# Link-layer framings, for fuzz_packet


def framings(ip, ver):
    """(linktype, frame) for one IP packet in every link type fuzz_packet reads."""
    et = 0x0800 if ver == 4 else 0x86DD
    ppp = 0x0021 if ver == 4 else 0x0057
    mac = bytes.fromhex("020000000002" "020000000001")  # destination, source
    out = [
        (101, ip),
        (228 if ver == 4 else 229, ip),
        (0, struct.pack("<I", 2 if ver == 4 else 30) + ip),
        (0, struct.pack(">I", 2 if ver == 4 else 24) + ip),  # other byte order
        (108, struct.pack(">I", 2 if ver == 4 else 28) + ip),
        (9, b"\xff\x03" + struct.pack(">H", ppp) + ip),
        (9, struct.pack(">H", ppp) + ip),
        (104, b"\x0f\x00" + struct.pack(">H", et) + ip),
        (113, struct.pack(">HHH", 4, 1, 6) + mac[6:12] + b"\0\0" + struct.pack(">H", et) + ip),
        (276, struct.pack(">HHIHBB", et, 0, 2, 1, 4, 6) + mac[6:12] + b"\0\0" + ip),
        (1, mac + struct.pack(">H", et) + ip),
        (1, mac + struct.pack(">HHH", 0x8100, 7, et) + ip),
        (1, mac + struct.pack(">HHHHH", 0x88A8, 100, 0x8100, 7, et) + ip),
        (1, mac + struct.pack(">HBBHH", 0x8864, 0x11, 0, 1, len(ip) + 2)
         + struct.pack(">H", ppp) + ip),
    ]
    # NFLOG: family, version, resource id; a prefix TLV, then the payload TLV (type 9)
    prefix = b"egress\0\0"
    nflog = bytes([2 if ver == 4 else 10, 0, 0, 0])
    nflog += struct.pack("<HH", 4 + len(prefix), 10) + prefix
    nflog += struct.pack("<HH", 4 + len(ip), 9) + ip + b"\0" * (-len(ip) % 4)
    out.append((239, nflog))
    # radiotap (8 bytes, no fields) + 802.11 data to-DS + LLC/SNAP; and a QoS data frame
    rt = struct.pack("<BBHI", 0, 0, 8, 0)
    llc = b"\xaa\xaa\x03\0\0\0" + struct.pack(">H", et)
    out.append((127, rt + b"\x08\x01" + b"\0\0" + mac + mac[:6] + b"\0\0" + llc + ip))
    out.append((127, rt + b"\x88\x01" + b"\0\0" + mac + mac[:6] + b"\0\0" + b"\0\0" + llc + ip))
    return out


V4_OUT = (bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2]))
V6_OUT = (bytes.fromhex("20010db8ffff" + "00" * 9 + "01"), bytes.fromhex("20010db8ffff" + "00" * 9 + "02"))
ETH_HDR = bytes.fromhex("020000000002" "020000000001")


def ipv4(proto, payload, frag=0, options=b"", addrs=V4_OUT):
    ihl = 5 + len(options) // 4
    return struct.pack(">BBHHHBBH", 0x40 | ihl, 0, 4 * ihl + len(payload), 1, frag, 64, proto, 0) \
        + addrs[0] + addrs[1] + options + payload


def ipv6(nh, payload, ext=b"", addrs=V6_OUT):
    return struct.pack(">IHBB", 0x60000000, len(ext) + len(payload), nh, 64) + addrs[0] + addrs[1] \
        + ext + payload


def udp(sport, dport, payload):
    return struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload


def encapsulations(ip, ver):
    """(linktype, frame): one IP packet of a capture inside each tunnel packet.c looks
    through (IP in IP, GRE, ERSPAN, VXLAN, VXLAN-GPE, Geneve, GTP-U, CAPWAP, PPPoE is in
    framings), over Ethernet."""
    et = 0x0800 if ver == 4 else 0x86DD
    inner_eth = ETH_HDR + struct.pack(">H", et) + ip
    wifi = b"\x08\x01\0\0" + ETH_HDR + ETH_HDR[:6] + b"\0\0" + b"\xaa\xaa\x03\0\0\0" + struct.pack(">H", et) + ip
    l4s = [
        (4 if ver == 4 else 41, ip),
        (47, struct.pack(">HH", 0, et) + ip),  # GRE
        (47, struct.pack(">HH", 0xB000, et) + b"\0" * 12 + ip),  # GRE with checksum, key, sequence
        (47, struct.pack(">HH", 0, 0x6558) + inner_eth),  # GRE, transparent Ethernet
        (47, struct.pack(">HH", 0x1000, 0x88BE) + b"\0" * 4 + b"\x10\x01\0\0\0\0\0\0" + inner_eth),  # ERSPAN II
        (47, struct.pack(">HH", 0x1000, 0x22EB) + b"\0" * 4 + b"\x20\x01\0\0" + b"\0" * 7 + b"\x01"
         + b"\0" * 8 + inner_eth),  # ERSPAN III with the optional subheader
        (17, udp(40000, 4789, b"\x08\0\0\0\0\0\x01\0" + inner_eth)),  # VXLAN
        (17, udp(40000, 4790, b"\x0c\0\0" + bytes([1 if ver == 4 else 2]) + b"\0\0\x01\0" + ip)),  # VXLAN-GPE
        (17, udp(40000, 6081, struct.pack(">BBH", 0, 0, et) + b"\0\0\x01\0" + ip)),  # Geneve
        (17, udp(40000, 6081, struct.pack(">BBH", 1, 0, 0x6558) + b"\0\0\x01\0" + b"\x01\x02\x03\x04"
                 + inner_eth)),  # Geneve with one option word, Ethernet inside
        (17, udp(2152, 2152, struct.pack(">BBHI", 0x30, 255, len(ip), 1) + ip)),  # GTP-U
        (17, udp(2152, 2152, struct.pack(">BBHI", 0x34, 255, len(ip) + 8, 1) + b"\0\0\0\x85"
                 + b"\x01\x00\x09\x00" + ip)),  # GTP-U with an extension header
        (17, udp(40000, 5247, struct.pack(">I", (2 << 19) | (1 << 9) | (1 << 8)) + b"\0" * 4 + wifi)),  # CAPWAP
    ]
    out = []
    for proto, body in l4s:
        out.append((1, ETH_HDR + b"\x08\x00" + ipv4(proto, body)))
    for proto, body in l4s[:2] + l4s[6:7]:
        out.append((1, ETH_HDR + b"\x86\xdd" + ipv6(proto, body)))
    return out


def extra_ip_packets(tcp_v4, dns_messages):
    """IP packets the captures lack: fragments, IPv6 fragment, routing and AH headers, UDP
    (a DNS answer to a workload over IPv4 and IPv6)."""
    seg = tcp_v4[(tcp_v4[0] & 15) * 4:]
    out = [
        ipv4(6, seg, frag=0x2000),  # first fragment (more fragments)
        ipv4(6, seg[:16], frag=0x0003),  # a later fragment
        ipv4(6, seg, options=b"\x94\x04\0\0\x01\x01\x01\x00"),  # router alert, NOPs, end
        ipv6(44, seg, ext=struct.pack(">BBHI", 6, 0, 0, 7)),  # atomic fragment
        ipv6(44, seg, ext=struct.pack(">BBHI", 6, 0, 1, 7)),  # first fragment
        ipv6(43, seg, ext=struct.pack(">BBBB", 6, 0, 4, 0) + b"\0" * 4),  # routing header
        ipv6(51, seg, ext=struct.pack(">BBH", 6, 1, 0) + b"\0" * 8),  # AH
    ]
    for m in dns_messages[:3]:
        out.append(ipv4(17, udp(53, 40000, m), addrs=(bytes([10, 96, 0, 10]), bytes([10, 244, 0, 10]))))
        out.append(ipv6(17, udp(53, 40000, m)))
    return out


def packet_input(linktype, frame):
    linktype = LINK_ALIASES.get(linktype, linktype)
    if linktype not in PACKET_LINKS:
        return None
    return bytes([PACKET_LINKS.index(linktype)]) + frame


# ---------------------------------------------------------------------------------------
# fuzz_pipeline records: flow (1) | TCP flags (1) | seq offset from ISN (2) | length (1) | payload


def pipeline_window(conns):
    """The first connections of conns that fit fuzz_pipeline's flows: 3 to port 443 and
    flow 3 (203.0.113.250:22, allowed by address) for one to port 22, so that no TLS or
    HTTP connection is let through by its address alone."""
    out, others, ssh = [], 0, 0
    for c in conns:
        if c.server[1] == 22 and ssh == 0:
            ssh += 1
        elif c.server[1] != 22 and others < 3:
            others += 1
        else:
            break
        out.append(c)
    return out


def pipeline_records(conns, server_payload=16):
    """Records for the packets of up to 4 connections, in capture order."""
    slots, free = {}, [0, 1, 2, 3]
    for c in sorted(conns, key=lambda c: c.server[1] != 22):  # port 22 -> flow 3 (ssh rule)
        s = 3 if c.server[1] == 22 and 3 in free else min(free)
        free.remove(s)
        slots[id(c)] = s
    events = sorted(((i, ts, p, fc, c) for c in conns for (i, ts, p, fc) in c.pkts),
                    key=lambda e: e[0])
    out, last_ts, n = bytearray(), None, 0
    for _, ts, p, fc, c in events:
        flow = slots[id(c)] | (4 if c.ver == 6 else 0) | (0 if fc else 8)
        if last_ts is not None and (ts - last_ts) * 1e9 > PIPE_TIME_JUMP_NS:
            flow |= 0x10
        last_ts = ts
        base = (c.base(fc) - 1) & 0xFFFFFFFF  # the ISN: the harness puts it at 1000
        off = (p.seq - base) & 0xFFFFFFFF
        payload = p.payload if fc else p.payload[:server_payload]
        chunks = [payload[k:k + 255] for k in range(0, len(payload), 255)] or [b""]
        for k, chunk in enumerate(chunks):
            flags = p.flags
            if k > 0:
                flags &= ~SYN
            if k < len(chunks) - 1:
                flags &= ~(FIN | RST)
            if off > 0xFFFF or n == PIPE_MAX_RECORDS:
                break
            out += struct.pack(">BBHB", flow, flags & 0xFF, off, len(chunk)) + chunk
            n += 1
            off = (off + len(chunk)) & 0xFFFFFFFF
    return bytes(out)


def cut_records(b, cap):
    """The longest run of whole records within cap bytes."""
    o = 0
    while o + 5 <= len(b):
        n = 5 + b[o + 4]
        if o + n > cap:
            break
        o += n
    return b[:o]


# ---------------------------------------------------------------------------------------
# Built-in inputs for what the captures do not hold yet


def builtin_preambles():
    name = b"allowed.example"
    return [
        b"\x04\x01\x01\xbb\xcb\x00\x71\x0auser\0",  # SOCKS4 to 203.0.113.10:443
        b"\x04\x01\x01\xbb\x00\x00\x00\x01\0" + name + b"\0",  # SOCKS4a
        b"\x05\x01\x00",  # SOCKS5 greeting only
        b"\x05\x01\x00\x05\x01\x00\x03" + bytes([len(name)]) + name + b"\x01\xbb",
        b"\x05\x02\x00\x02\x01\x04user\x04pass\x05\x01\x00\x01\xcb\x00\x71\x0a\x01\xbb",
        b"\x05\x01\x00\x05\x01\x00\x04" + bytes.fromhex("20010db8" + "00" * 11 + "10") + b"\x01\xbb",
        b"EHLO client.example\r\nSTARTTLS\r\n",
        b"HELO client.example\r\nNOOP\r\nSTARTTLS\r\n",
        b"a1 CAPABILITY\r\na2 STARTTLS\r\n",
        b"CAPA\r\nSTLS\r\n",
        b"FEAT\r\nAUTH TLS\r\n",
        b"LHLO x\r\nAUTH SSL\r\n",
        # LDAP ExtendedRequest (StartTLS OID)
        b"\x30\x1d\x02\x01\x01\x77\x18\x80\x161.3.6.1.4.1.1466.20037",
        b"\x00\x00\x00\x08\x04\xd2\x16\x2f",  # PostgreSQL SSLRequest
        b"PROXY TCP4 10.244.0.10 203.0.113.10 40000 443\r\n",
        b"PROXY TCP6 fd00:10:244::10 2001:db8::10 40000 443\r\n",
        b"PROXY UNKNOWN\r\n",
        b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x0a\xf4\x00\x0a\xcb\x00\x71\x0a\x9c\x40\x01\xbb",
        b"\r\n\r\n\x00\r\nQUIT\n\x21\x21\x00\x24" + bytes.fromhex("fd00" + "00" * 13 + "10")
        + bytes.fromhex("20010db8" + "00" * 11 + "10") + b"\x9c\x40\x01\xbb",
    ]


def builtin_dns():
    try:
        from scapy.layers.dns import DNS, DNSQR, DNSRR, dns_compress
    except ImportError:
        return []
    out = []

    def add(pkt, compress=False):
        try:
            out.append(bytes(dns_compress(pkt) if compress else pkt))
        except Exception:  # noqa: BLE001 - an optional extra
            pass

    q = "allowed.example."
    add(DNS(id=1, qr=1, rd=1, ra=1, qd=DNSQR(qname=q, qtype="A"),
            an=DNSRR(rrname=q, type="A", ttl=300, rdata="203.0.113.10")))
    add(DNS(id=2, qr=1, rd=1, ra=1, qd=DNSQR(qname=q, qtype="AAAA"),
            an=DNSRR(rrname=q, type="AAAA", ttl=300, rdata="2001:db8::10")))
    chain = DNSRR(rrname="www.allowed.example.", type="CNAME", ttl=60, rdata="edge.allowed.example.") \
        / DNSRR(rrname="edge.allowed.example.", type="CNAME", ttl=120, rdata=q) \
        / DNSRR(rrname=q, type="A", ttl=30, rdata="203.0.113.10") \
        / DNSRR(rrname=q, type="A", ttl=30, rdata="203.0.113.20")
    pkt = DNS(id=3, qr=1, rd=1, ra=1, qd=DNSQR(qname="www.allowed.example.", qtype="A"), an=chain)
    add(pkt)
    add(pkt, compress=True)
    add(DNS(id=4, qr=1, rd=1, ra=1, rcode=3, qd=DNSQR(qname="nx.denied.example.", qtype="A")))
    add(DNS(id=5, qr=0, rd=1, qd=DNSQR(qname=q, qtype="A")))  # a query
    many = DNSRR(rrname=q, type="A", ttl=5, rdata="203.0.113.1")
    for k in range(2, 20):
        many = many / DNSRR(rrname=q, type="A", ttl=5, rdata=f"203.0.113.{k}")
    add(DNS(id=6, qr=1, qd=DNSQR(qname=q, qtype="A"), an=many), compress=True)
    return out


def preamble_then_hello(preamble, hello, v6=False):
    """fuzz_pipeline records of one connection: handshake, a preamble, the server's
    answer, then a ClientHello (the pipeline reads preambles only in front of a name)."""
    v = 4 if v6 else 0
    out = bytearray()

    def rec(flow, flags, off, data=b""):
        nonlocal out
        chunks = [data[k:k + 255] for k in range(0, len(data), 255)] or [b""]
        for chunk in chunks:
            out += struct.pack(">BBHB", flow | v, flags, off, len(chunk)) + chunk
            off += len(chunk)

    rec(0, SYN, 0)
    rec(8, SYN | ACK, 0)
    rec(0, ACK, 1)
    rec(0, 0x18, 1, preamble)
    rec(8, 0x18, 1, b"\x05\x00" if preamble[:1] in (b"\x04", b"\x05") else b"220 go ahead\r\n")
    rec(0, 0x18, 1 + len(preamble), hello)
    rec(0, FIN | ACK, 1 + len(preamble) + len(hello))
    return bytes(out)


# ---------------------------------------------------------------------------------------
# Collecting, choosing, writing


class Corpus:
    def __init__(self, name):
        self.name, self.cap = name, CAPS[name]
        self.items = collections.OrderedDict()  # sha1 -> (group, kind, data)
        self.always = set()  # sha1 of the few inputs kept whatever the limit

    def add(self, group, kind, data, always=False):
        if data is None or len(data) == 0:
            return
        data = bytes(data[:self.cap])
        h = hashlib.sha1(data).hexdigest()
        if h not in self.items:
            self.items[h] = (group, kind, data)
            if always:
                self.always.add(h)

    def choose(self, limit):
        """At most limit items: the built-in and re-framed ones first, then round-robin over
        groups (captures), and within a group over kinds."""
        chosen = [(h, self.items[h][2]) for h in self.items if h in self.always][:limit]
        groups = collections.OrderedDict()
        for h, (group, kind, data) in self.items.items():
            if h in self.always:
                continue
            groups.setdefault(group, collections.OrderedDict()).setdefault(kind, []).append((h, data))
        queues = []
        for kinds in groups.values():
            order, lists = [], [collections.deque(v) for v in kinds.values()]
            while any(lists):
                for q in lists:
                    if q:
                        order.append(q.popleft())
            queues.append(collections.deque(order))
        while len(chosen) < limit and any(queues):
            for q in queues:
                if q and len(chosen) < limit:
                    chosen.append(q.popleft())
        return chosen


def find_inputs():
    caps = set()
    for pat in ("**/*.pcap", "**/*.pcapng"):
        caps.update(glob.glob(os.path.join(ROOT, "tests", "pcaps", pat), recursive=True))
    rules = set(glob.glob(os.path.join(ROOT, "rules", "*.rules")))
    rules.update(glob.glob(os.path.join(ROOT, "tests", "**", "*.rules"), recursive=True))
    return sorted(caps), sorted(rules)


def quic_seeds(corpus):
    """fuzz_quic's seeds beyond tests/pcaps: the public corpus's QUIC datagrams, when it
    sits beside the repository (read, never copied into the tree), and mode 1 inputs, the
    plaintext frames of Initials (tests/pcaps/craft.py's hellos; the harness protects them)."""
    shared = os.path.join(ROOT, "..", "shared", "corpus")
    for path in sorted(glob.glob(os.path.join(shared, "**", "*quic*.pcap*"), recursive=True)):
        try:
            packets = read_capture(path)
        except (OSError, ValueError, struct.error):
            continue
        for p in udp_packets(packets):
            if len(p.payload) >= 7 and p.payload[0] & 0xc0 == 0xc0:
                corpus.add("corpus/" + os.path.basename(path), "datagram", b"\x00" + p.payload)
    sys.path.insert(0, os.path.join(ROOT, "tests", "pcaps"))
    import craft  # noqa: E402
    pq = craft.client_hello(pq=True)
    for kind, frames in (("hello", craft.crypto_frame(0, craft.client_hello())),
                         ("pq-first", craft.crypto_frame(0, pq[:1100])),
                         ("ack-ping-crypto", b"\x02\x00\x00\x00\x00\x01" + craft.crypto_frame(0, craft.client_hello()))):
        corpus.add("crafted", kind, b"\x01" + frames + b"\x00" * max(0, 1160 - len(frames)), True)


def decision_logs():
    """(group, json log, CloudEvents log) per capture expectation: its rows as the lines
    replay or the daemon would write (fields as src/io/log.c and src/io/audit.c name them)."""
    import json
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "pcaps", "**", "*.expect"), recursive=True)):
        plain, events = [], []
        with open(path) as f:
            for row in f:
                w = row.split()
                if row.startswith("#") or len(w) != 8 or not w[3].isdigit():
                    continue
                src, sport, dst, dport, l7, host, verdict, reason = w
                host = None if host in ("-", "*") else host
                proxied = l7 in ("http", "socks") and dport not in ("80", "443")
                d = {"ts": "2025-12-01T00:00:00.000000Z", "event": "decision", "verdict": verdict,
                     "reason": reason, "policy": "default",
                     "rule": host if verdict == "allow" else None, "mode": "monitor", "enforced": False,
                     "src": src, "sport": int(sport), "dst": dst, "dport": int(dport),
                     "proto": "udp" if l7 == "quic" else "tcp", "l7": l7, "host": host}
                if proxied:
                    d["target_port"] = 443
                plain.append(json.dumps(d))
                data = {"outcome": "allowed", "policy": "default", "rule": d["rule"],
                        "enforcementMode": "monitor",
                        "destination": f"{host or dst}:{443 if proxied else dport}",
                        "destinationAddress": dst, "protocol": l7, "latencyMs": 0.5,
                        "workloadAddress": src, "host": host}
                if verdict == "deny":
                    data["denyReason"] = reason
                if proxied:
                    data["proxyPort"] = int(dport)
                events.append(json.dumps({"specversion": "1.0", "type": "io.portarium.egress.attempt",
                                          "source": "egress-inspector/n", "id": f"n-{len(events)}",
                                          "time": d["ts"], "datacontenttype": "application/json",
                                          "data": data}))
                if verdict == "deny" and host:
                    plain.append(json.dumps({"ts": d["ts"], "event": "decisions_aggregated", "verdict": "deny",
                                             "reason": reason, "count": 7, "interval_s": 10, "src": src,
                                             "dport": int(dport), "host": host}))
        if plain:
            yield rel(path), ("\n".join(plain) + "\n").encode(), ("\n".join(events) + "\n").encode()


def build(max_files):
    captures, rules_files = find_inputs()
    if not captures:
        sys.exit("seeds.py: no captures under tests/pcaps")
    corpora = {t: Corpus(t) for t in TARGETS}
    names = []  # SNI and Host names, for the rules corpus
    reframed = set()  # classes of IP packets already re-framed for every link type
    tls_http_preambles = {"tls": 0, "http": 0}
    tcp_v4 = None  # an IPv4 TCP packet with payload, for extra_ip_packets
    allowed_hello = None  # a ClientHello for allowed.example, behind the built-in preambles

    quic_seeds(corpora["quic"])
    for path in captures:
        g = rel(path)
        packets = read_capture(path)

        # packet: every frame as captured, then a few in every other framing
        for lt, _, frame in packets:
            p = parse_frame(lt, frame)
            kind = (lt, None if p is None else (p.ver, p.proto, p.flags, min(len(p.payload), 1)))
            corpora["packet"].add(g, kind, packet_input(lt, frame))
            if p is not None:
                cls = (p.ver, p.proto, bool(p.payload), len(p.ip) > (20 if p.ver == 4 else 40) + 20 + len(p.payload))
                if cls not in reframed:
                    reframed.add(cls)
                    for flt, fr in framings(p.ip, p.ver):
                        corpora["packet"].add("reframed", (flt, cls), packet_input(flt, fr), True)
                    if p.proto == 6 and p.payload and cls[3] is False:
                        for flt, fr in encapsulations(p.ip, p.ver):
                            corpora["packet"].add("reframed", (flt, cls), packet_input(flt, fr), True)
                        if p.ver == 4:
                            tcp_v4 = p.ip

        # dns over UDP; QUIC datagrams (mode byte 0: as the wire gave them)
        for p in udp_packets(packets):
            if p.sport == 53:
                corpora["dns"].add(g, "udp", p.payload)
            if len(p.payload) >= 7 and p.payload[0] & 0xc0 == 0xc0:
                corpora["quic"].add(g, "datagram", b"\x00" + p.payload)

        conns = connections(packets)
        for c in conns:
            client, cflights = c.stream(True)
            # tls, http: the client stream and its later flights (after CONNECT or a preamble)
            for k, start in enumerate([0] + [f for f in cflights if f > 0]):
                nxt = [f for f in cflights if f > start]
                flight = client[start:nxt[0]] if nxt else client[start:]
                rest = client[start:]
                if looks_tls(rest):
                    corpora["tls"].add(g, ("hello", k > 0), tls_handshake_prefix(rest))
                    corpora["tls"].add(g, ("flight", k > 0), flight)
                    sni = tls_sni(rest)
                    if sni:
                        names.append(sni)
                        hello = tls_handshake_prefix(rest)
                        if (sni == b"allowed.example" and allowed_hello is None and len(hello) < 1000
                                and tls_hello_clean(hello)):
                            allowed_hello = hello
                elif looks_http(rest):
                    corpora["http"].add(g, ("head", k > 0), http_head(rest))
                    corpora["http"].add(g, ("flight", k > 0), flight)
                    host = http_host(rest)
                    if host:
                        names.append(host)
            # preamble: what the client sends first, up to the bound
            if client:
                first = client[:cflights[1]] if len(cflights) > 1 else client
                if not looks_tls(client) and not looks_http(client):
                    corpora["preamble"].add(g, "other", client)
                    corpora["preamble"].add(g, "other-first", first)
                else:  # a few TLS and HTTP starts: what the preamble parser must refuse
                    kind = "tls" if looks_tls(client) else "http"
                    if tls_http_preambles[kind] < 8:
                        before = len(corpora["preamble"].items)
                        corpora["preamble"].add(g, kind, first)
                        tls_http_preambles[kind] += len(corpora["preamble"].items) - before
            # dns over TCP: the server's length-prefixed messages
            if c.server[1] == 53:
                server, _ = c.stream(False)
                o = 0
                while o + 2 <= len(server):
                    n = u16(server, o)
                    corpora["dns"].add(g, "tcp", server[o + 2:o + 2 + n])
                    o += 2 + n

        # pipeline: each connection alone, then windows of 4 consecutive connections
        for c in conns:
            corpora["pipeline"].add(g, "one", cut_records(pipeline_records([c]), CAPS["pipeline"]))
        for k in range(0, max(0, len(conns) - 1)):
            window = pipeline_window(conns[k:])
            if len(window) > 1:
                corpora["pipeline"].add(g, "window", cut_records(pipeline_records(window), CAPS["pipeline"]))

    # built-in extras
    if tcp_v4 is not None:
        for ip in extra_ip_packets(tcp_v4, builtin_dns()):
            corpora["packet"].add("reframed", "extra", packet_input(101, ip), True)
    for k, b in enumerate(builtin_preambles()):
        corpora["preamble"].add("builtin", "builtin", b, True)
        if allowed_hello is not None:
            corpora["pipeline"].add("builtin", "preamble", cut_records(
                preamble_then_hello(b, allowed_hello, v6=k % 2 == 1), CAPS["pipeline"]), True)
    for b in builtin_dns():
        corpora["dns"].add("builtin", "builtin", b, True)

    # rules: the files, without comments, each statement alone, and the captures' names
    for path in rules_files:
        with open(path, "rb") as f:
            text = f.read()
        g = rel(path)
        corpora["rules"].add(g, "file", text)
        lines = [re.sub(rb"\s*#.*", b"", line).rstrip() for line in text.split(b"\n")]
        statements = [line for line in lines if line.strip()]
        corpora["rules"].add(g, "bare", b"\n".join(statements) + b"\n")
        for line in statements:
            corpora["rules"].add(g, "line", line + b"\n")
    # cnp: every ClusterNetworkPolicy document under tests/, whole and one by one
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "**", "*.yaml"), recursive=True)):
        with open(path, "rb") as f:
            text = f.read()
        if b"ClusterNetworkPolicy" not in text:
            continue
        corpora["cnp"].add(rel(path), "file", text, True)
        for doc in text.split(b"\n---"):
            corpora["cnp"].add(rel(path), "document", doc.lstrip(b"-\n"))
    # suggest: each capture's expectations as a decision log, in both formats, both outputs
    for g, plain, events in decision_logs():
        corpora["suggest"].add(g, "json", b"\x00" + plain)
        corpora["suggest"].add(g, "json portarium", b"\x01" + plain)
        corpora["suggest"].add(g, "cloudevents", b"\x00" + events)
        corpora["suggest"].add(g, "cloudevents portarium", b"\x01" + events)
    for name in sorted(set(names)):
        corpora["rules"].add("names", "name", name)
        corpora["rules"].add("names", "allow", b"allow " + name + b"\n")

    return {t: corpora[t].choose(max_files) for t in TARGETS}, {t: len(corpora[t].items) for t in TARGETS}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir", help="seeds go to OUTDIR/<target>/")
    ap.add_argument("--max-files", type=int, default=500, help="per corpus (default 500)")
    args = ap.parse_args()
    chosen, distinct = build(args.max_files)
    for t in TARGETS:
        d = os.path.join(args.outdir, t)
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)
        for h, data in chosen[t]:
            with open(os.path.join(d, h), "wb") as f:
                f.write(data)
        size = sum(len(data) for _, data in chosen[t])
        print(f"seeds {t}: {len(chosen[t])} files ({distinct[t]} distinct), {size} bytes, "
              f"largest {max((len(x) for _, x in chosen[t]), default=0)}")


if __name__ == "__main__":
    main()

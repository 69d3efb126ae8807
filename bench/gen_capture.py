#!/usr/bin/env python3
"""Writes the replay benchmark's capture: N complete outbound TCP flows on Ethernet.

  gen_capture.py --flows N --out FILE [--prefix-flows M --prefix-out FILE2] [--seed S]

Flow mix (weights, drawn from a seeded generator, so the same arguments give the same
bytes and the first M flows of a run are exactly the --prefix-out capture):
  38  TLS 1.3, post-quantum ClientHello: X25519MLKEM768 (1216-byte key share) + x25519,
      about 1.8 KB, sent in two TCP segments (what current browsers send)
  22  TLS 1.2 ClientHello, one segment
  18  HTTP/1.1 request, one segment
  12  TLS 1.3 post-quantum over IPv6
  10  HTTP/1.1 over IPv6
and independently about 10% of flows ask for a name that bench.rules denies.
Each flow: SYN, SYN-ACK, ACK, the client's first message (one or two segments), for
80% a server reply (a ServerHello record or an HTTP response), then FIN each way.
Flows are interleaved in groups of 40, as flows overlap in a real capture.

Written with struct and array only: scapy needs minutes for a million packets, this a
few seconds. Checksums are real (IPv4 header and TCP), so no reader can tell it from a
capture of a real network. On stderr: one JSON line with the counts by kind.
"""
import argparse
import json
import random
import struct
import sys
from array import array

# Names: (name, allowed by bench.rules). Wildcard entries get a random label in front.
EXACT_ALLOWED = [
    "github.com", "api.github.com", "codeload.github.com", "registry.npmjs.org", "pypi.org",
    "files.pythonhosted.org", "deb.debian.org", "security.debian.org", "proxy.golang.org",
    "sum.golang.org", "index.docker.io", "auth.docker.io", "api.stripe.com",
    "hooks.slack.com", "oauth2.googleapis.com", "storage.googleapis.com",
    "login.microsoftonline.com", "sts.amazonaws.com", "api.openai.com", "sentry.io",
]
WILDCARD_ALLOWED = ["githubusercontent.com", "s3.amazonaws.com", "blob.core.windows.net",
                    "cdn.bench.example", "svc.cluster.bench.example"]
DENIED = ["evil.example", "pastebin.com", "exfil.denied.test", "ads.tracker.example",
          "mining-pool.example"]
WILDCARD_DENIED = ["denied.test", "tracker.example"]

CLIENT_MAC, GW_MAC = b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02"
SEGMENT = 1400  # client MSS for this capture: the PQ ClientHello needs two segments
GROUP = 40
LITTLE = sys.byteorder == "little"


def csum(data):
    """Internet checksum (RFC 1071), returned in the byte order to write with '<H'/'>H'.

    The one's complement sum does not depend on byte order, so summing native 16-bit
    words and writing the result back natively gives the network-order checksum."""
    if len(data) & 1:
        data += b"\0"
    s = sum(array("H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def pack_csum(c):
    return struct.pack("=H", c)


class Flow:
    __slots__ = ("v6", "src", "dst", "sport", "dport", "cseq", "sseq", "msgs", "reply")


def tcp_segment(f, from_client, flags, payload=b"", syn_opts=False):
    if from_client:
        src, dst, sport, dport, seq, ack = f.src, f.dst, f.sport, f.dport, f.cseq, f.sseq
    else:
        src, dst, sport, dport, seq, ack = f.dst, f.src, f.dport, f.sport, f.sseq, f.cseq
    # SYNs carry the usual options: MSS, SACK permitted, timestamps, window scale
    opts = (struct.pack("!BBH", 2, 4, SEGMENT) + b"\x04\x02\x08\x0a" + b"\0\0\0\1\0\0\0\0"
            + b"\x01\x03\x03\x07") if syn_opts else b""
    off = (20 + len(opts)) // 4
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack if flags & 0x10 else 0,
                      off << 4, flags, 64240, 0, 0) + opts + payload
    tlen = len(tcp)
    if f.v6:
        pseudo = src + dst + struct.pack("!IxxxB", tlen, 6)
        ip = struct.pack("!IHBB", 0x60000000, tlen, 6, 64) + src + dst
        ether = GW_MAC + CLIENT_MAC + b"\x86\xdd" if from_client else CLIENT_MAC + GW_MAC + b"\x86\xdd"
    else:
        pseudo = src + dst + struct.pack("!xBH", 6, tlen)
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + tlen, 0, 0x4000, 64, 6, 0, src, dst)
        ip = hdr[:10] + pack_csum(csum(hdr)) + hdr[12:]
        ether = GW_MAC + CLIENT_MAC + b"\x08\x00" if from_client else CLIENT_MAC + GW_MAC + b"\x08\x00"
    tcp = tcp[:16] + pack_csum(csum(pseudo + tcp)) + tcp[18:]
    # sequence space: SYN and FIN count one, data its length
    n = len(payload) + (1 if flags & 0x03 else 0)
    if from_client:
        f.cseq = (f.cseq + n) & 0xFFFFFFFF
    else:
        f.sseq = (f.sseq + n) & 0xFFFFFFFF
    return ether + ip + tcp


def ext(etype, body):
    return struct.pack("!HH", etype, len(body)) + body


def client_hello(rng, name, tls13_pq):
    """A TLS ClientHello record (RFC 8446 4.1.2 / RFC 5246 7.4.1.2)."""
    n = name.encode()
    sni = ext(0x0000, struct.pack("!HBH", len(n) + 3, 0, len(n)) + n)
    alpn_protos = b"\x02h2\x08http/1.1"
    exts = [sni, ext(0x0017, b""), ext(0xFF01, b"\x00"),
            ext(0x000B, b"\x01\x00"), ext(0x0023, b""),
            ext(0x0010, struct.pack("!H", len(alpn_protos)) + alpn_protos),
            ext(0x0005, b"\x01\x00\x00\x00\x00"),
            ext(0x000D, struct.pack("!H8H", 16, 0x0403, 0x0804, 0x0401, 0x0503, 0x0805,
                                    0x0501, 0x0806, 0x0601))]
    if tls13_pq:
        suites = [0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8,
                  0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035]
        exts.append(ext(0x000A, struct.pack("!5H", 8, 0x11EC, 0x001D, 0x0017, 0x0018)))
        shares = (struct.pack("!HH", 0x11EC, 1216) + rng.randbytes(1216)
                  + struct.pack("!HH", 0x001D, 32) + rng.randbytes(32))
        exts += [ext(0x0033, struct.pack("!H", len(shares)) + shares),
                 ext(0x002D, b"\x01\x01"), ext(0x002B, b"\x04\x03\x04\x03\x03"),
                 ext(0x001B, b"\x02\x00\x02")]
    else:
        suites = [0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013, 0xC014, 0x009C,
                  0x009D, 0x002F, 0x0035]
        exts.append(ext(0x000A, struct.pack("!4H", 6, 0x001D, 0x0017, 0x0018)))
    extb = b"".join(exts)
    body = (b"\x03\x03" + rng.randbytes(32) + b"\x20" + rng.randbytes(32)
            + struct.pack("!H", 2 * len(suites)) + struct.pack(f"!{len(suites)}H", *suites)
            + b"\x01\x00" + struct.pack("!H", len(extb)) + extb)
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


SERVER_HELLO = (lambda body: b"\x16\x03\x03" + struct.pack("!H", len(body) + 4) + b"\x02"
                + struct.pack("!I", len(body))[1:] + body)(
    b"\x03\x03" + bytes(range(32)) + b"\x00" + b"\xc0\x2f" + b"\x00" + b"\x00\x00")
HTTP_REPLY = b"HTTP/1.1 204 No Content\r\nServer: bench\r\nContent-Length: 0\r\n\r\n"


def http_request(rng, name, i):
    return (f"GET /v1/objects/{i}?r={rng.getrandbits(32):08x} HTTP/1.1\r\nHost: {name}\r\n"
            "User-Agent: bench-client/1.0\r\nAccept: */*\r\nAccept-Encoding: gzip\r\n\r\n").encode()


def pick_name(rng):
    if rng.random() < 0.10:
        if rng.random() < 0.5:
            return rng.choice(DENIED), False
        return f"x{rng.getrandbits(24):06x}.{rng.choice(WILDCARD_DENIED)}", False
    if rng.random() < 0.6:
        return rng.choice(EXACT_ALLOWED), True
    return f"b{rng.getrandbits(28):07x}.{rng.choice(WILDCARD_ALLOWED)}", True


KINDS = [("tls13_pq_v4", 38), ("tls12_v4", 22), ("http_v4", 18), ("tls13_pq_v6", 12), ("http_v6", 10)]


def make_flow(rng, i, counts):
    kind = rng.choices([k for k, _ in KINDS], weights=[w for _, w in KINDS])[0]
    name, allowed = pick_name(rng)
    counts[kind] = counts.get(kind, 0) + 1
    counts["denied_names" if not allowed else "allowed_names"] += 1
    f = Flow()
    f.v6 = kind.endswith("v6")
    # clients: 4096 pod addresses; a client's ports never repeat within the capture
    pod = i % 4096
    if f.v6:
        # fd00:10:244:1:1:1:1:<pod + 1>: no run of zero groups, so every tool prints
        # the address the same way (ndpiReader 4.2 misprints some with two zero runs)
        f.src = bytes.fromhex("fd00001002440001000100010001") + struct.pack("!H", pod + 1)
        f.dst = bytes.fromhex("20010db8000000000000000000") + struct.pack("!BH", 0, rng.getrandbits(16))
    else:
        f.src = bytes([10, 244, pod >> 8, pod & 0xFF])
        f.dst = bytes([203, 0, 113, rng.getrandbits(8)])
    f.sport = 1024 + (i // 4096) % 64000
    f.cseq, f.sseq = rng.getrandbits(32), rng.getrandbits(32)
    if kind.startswith("http"):
        f.dport, msg, reply = 80, http_request(rng, name, i), HTTP_REPLY
    else:
        f.dport, msg, reply = 443, client_hello(rng, name, kind.startswith("tls13")), SERVER_HELLO
    f.msgs = [msg[j:j + SEGMENT] for j in range(0, len(msg), SEGMENT)]
    f.reply = reply if rng.random() < 0.8 else None
    if len(f.msgs) > 1:
        counts["two_segment_hellos"] += 1
    return f


def flow_packets(f):
    yield tcp_segment(f, True, 0x02, syn_opts=True)
    yield tcp_segment(f, False, 0x12, syn_opts=True)
    yield tcp_segment(f, True, 0x10)
    for m in f.msgs:
        yield tcp_segment(f, True, 0x18, m)
    if f.reply:
        yield tcp_segment(f, False, 0x18, f.reply)
    yield tcp_segment(f, True, 0x11)
    yield tcp_segment(f, False, 0x11)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flows", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--prefix-flows", type=int, default=0)
    ap.add_argument("--prefix-out")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    if a.flows % GROUP or a.prefix_flows % GROUP:
        ap.error(f"flow counts must be multiples of {GROUP}")
    rng = random.Random(a.seed)
    counts = {"allowed_names": 0, "denied_names": 0, "two_segment_hellos": 0}
    hdr = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # pcap, Ethernet
    outs = [open(a.out, "wb")]
    if a.prefix_out:
        outs.append(open(a.prefix_out, "wb"))
    for o in outs:
        o.write(hdr)
    t_us, packets, nbytes = 1_764_547_200 * 1_000_000, 0, 0
    for base in range(0, a.flows, GROUP):
        targets = outs if base < a.prefix_flows else outs[:1]
        gens = [flow_packets(make_flow(rng, base + k, counts)) for k in range(GROUP)]
        chunk = []
        # round robin over the group: packet 1 of every flow, then packet 2, ...
        while gens:
            alive = []
            for g in gens:
                p = next(g, None)
                if p is None:
                    continue
                alive.append(g)
                t_us += 5  # 200k packets per second of capture time
                chunk.append(struct.pack("<IIII", t_us // 1_000_000, t_us % 1_000_000, len(p), len(p)))
                chunk.append(p)
                packets += 1
                nbytes += len(p)
            gens = alive
        data = b"".join(chunk)
        for o in targets:
            o.write(data)
    for o in outs:
        o.close()
    counts.update(flows=a.flows, packets=packets, bytes=nbytes)
    print(json.dumps(counts, sort_keys=True), file=sys.stderr)


main()

#!/usr/bin/env python3
"""Writes hostile-load captures for bench/flood.sh (plain struct packing: fast, no scapy).

  flood.py syn N OUT        N distinct SYNs (distinct client address and port each)
  flood.py halfhello N OUT  N connections that each send half a ClientHello and stop
"""
import struct, sys

def ip4(n):
    return bytes([10, 100 + (n >> 16) % 100, (n >> 8) & 0xff, n & 0xff])

def tcp_ipv4(src, dst, sport, dport, seq, flags, payload=b""):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src, dst)
    return ip + tcp

def hello_half():
    name = b"allowed.example"
    sni = struct.pack("!HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    body = b"\x03\x03" + b"\x11" * 32 + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    body += struct.pack("!H", len(sni)) + sni + b"\x00\x15" + struct.pack("!H", 1200) + b"\x00" * 1200
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    rec = b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs
    return rec[: len(rec) // 2]

def main():
    kind, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    dst = bytes([203, 0, 113, 10])
    half = hello_half()
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 101))  # raw IP
        t = 1764547200
        for i in range(n):
            src, sport = ip4(i // 50000), 1024 + i % 50000
            pkts = [tcp_ipv4(src, dst, sport, 443, 1000, 0x02)]
            if kind == "halfhello":
                pkts.append(tcp_ipv4(src, dst, sport, 443, 1001, 0x18, half))
            for p in pkts:
                usec = i % 1000000
                f.write(struct.pack("<IIII", t + i // 1000000, usec, len(p), len(p)) + p)

main()

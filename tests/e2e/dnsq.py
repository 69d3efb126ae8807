#!/usr/bin/env python3
"""dnsq.py SERVER NAME: asks SERVER for NAME's A record over UDP; exits 0 on an answer
(any rcode), 1 on none within 1 s. Used to wait for a DNS server to come up."""
import os, socket, struct, sys

server, name = sys.argv[1], sys.argv[2]
qid = int.from_bytes(os.urandom(2), "big")
query = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
query += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
s.sendto(query, (server, 53))
try:
    reply = s.recv(512)
except OSError:
    sys.exit(1)
sys.exit(0 if reply[:2] == query[:2] else 1)

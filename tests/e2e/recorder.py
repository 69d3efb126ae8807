#!/usr/bin/python3
"""The attack test's ground truth: a server that records what its application read.

    recorder.py serve --log FILE [--ports 80,443] [--http-ports 80] [--idle 3]
                      [--reset-ports LIST]
    recorder.py verdict --log FILE --sport N --expect KIND [--marker M]

serve: plain TCP listeners (dual-stack, [::] with IPV6_V6ONLY off) that accept every
connection and recv() until the peer closes, resets, or ~3 s pass with nothing to read.
Nothing is interpreted: what is recorded is exactly what the application got from the
kernel (so an urgent byte the stack took out of the stream is not there). Each recv is
written at once as a "read" line, each connection's end as a "close" line (JSON lines,
bytes in hex), so a test can look before the connection ends. On the HTTP ports every
request head read (CRLF CRLF) gets a tiny keep-alive answer, so that a client sends its
next request. A connection from a client port in --reset-ports is closed with SO_LINGER 0
(a reset from the server's own stack) right after its first read.

verdict: what the application read from one client port (all its connections), judged:
  allowed    a ClientHello naming allowed.example was read (the harness's controls)
  two_allowed_requests  two HTTP request heads with Host: allowed.example were read
  insertion  neither "denied.example" nor "allowed.example" was read: the denied name
             must not get through, and an insertion the server's stack is meant to
             discard must really be discarded (if the app read it, the case tests nothing)
  denied     "denied.example" was not read (an honest allowed message may have been)
  marker     the --marker bytes were not read
  nothing    not one byte was read
Prints one line saying what was read; exit 0 when the expectation holds, else 1.
"""
import argparse
import json
import socket
import struct
import sys
import threading
import time

DENIED = b"denied.example"
ALLOWED = b"allowed.example"


# ---- a strict TLS ClientHello reader (shared with attacks.py) ----
#   TLSPlaintext: type(1)=22 version(2) length(2) fragment
#   Handshake:    msg_type(1)=1 length(3) ClientHello
#   ClientHello:  version(2) random(32) session_id<0..32> cipher_suites<2..2^16-2>
#                 compression_methods<1..2^8-1> extensions<0..2^16-1>
#   server_name:  ServerNameList<1..2^16-1>: name_type(1) HostName<1..2^16-1>
def parse_client_hello(buf):
    """Returns (names, None) for one complete, exactly consumed ClientHello at the start
    of buf (one record), or (None, why)."""
    buf = bytes(buf)
    if len(buf) < 5 or buf[0] != 0x16:
        return None, "not a TLS handshake record"
    rlen = struct.unpack("!H", buf[3:5])[0]
    if len(buf) < 5 + rlen:
        return None, "record incomplete (%d of %d bytes)" % (len(buf) - 5, rlen)
    rec = buf[5:5 + rlen]
    if len(rec) < 4 or rec[0] != 1:
        return None, "not a ClientHello"
    hlen = int.from_bytes(rec[1:4], "big")
    if 4 + hlen != rlen:
        return None, "handshake length %d does not fill the record (%d)" % (hlen, rlen)
    b = rec[4:]
    p = 2 + 32
    try:
        sid = b[p]
        p += 1 + sid
        cs = struct.unpack("!H", b[p:p + 2])[0]
        p += 2 + cs
        comp = b[p]
        p += 1 + comp
        if p == len(b):
            return [], None
        elen = struct.unpack("!H", b[p:p + 2])[0]
        p += 2
        if p + elen != len(b):
            return None, "extensions length %d does not fill the hello" % elen
        names, seen = [], set()
        end = p + elen
        while p < end:
            if p + 4 > end:
                return None, "extension header cut"
            t, ln = struct.unpack("!HH", b[p:p + 4])
            p += 4
            if p + ln > end:
                return None, "extension %#x overruns" % t
            if t in seen:
                return None, "duplicate extension %#x" % t
            seen.add(t)
            if t == 0:
                e = b[p:p + ln]
                llen = struct.unpack("!H", e[0:2])[0]
                if 2 + llen != ln:
                    return None, "server_name list length lies"
                q = 2
                while q < ln:
                    nt = e[q]
                    nl = struct.unpack("!H", e[q + 1:q + 3])[0]
                    if q + 3 + nl > ln:
                        return None, "host name overruns"
                    if nt == 0:
                        names.append(e[q + 3:q + 3 + nl].decode("latin-1"))
                    q += 3 + nl
            p += ln
        return names, None
    except (IndexError, struct.error):
        return None, "cut short"


# ---- serve ----
class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    def write(self, obj):
        line = json.dumps(obj, separators=(",", ":"))
        with self.lock:
            self.f.write(line + "\n")
            self.f.flush()


def peer_of(addr):
    host = addr[0]
    if host.startswith("::ffff:"):
        host = host[7:]
    return host, addr[1]


def handle(conn, addr, lport, args, log, cid):
    host, port = peer_of(addr)
    t0 = time.time()
    got = bytearray()
    answered = 0
    why = "eof"
    conn.settimeout(args.idle)
    log.write({"event": "accept", "id": cid, "peer": host, "sport": port, "lport": lport, "t": t0})
    try:
        while len(got) < (1 << 20):
            try:
                d = conn.recv(65536)
            except socket.timeout:
                why = "idle"
                break
            except ConnectionResetError:
                why = "reset"
                break
            except OSError as e:
                why = "error %s" % e.errno
                break
            if not d:
                break
            got += d
            log.write({"event": "read", "id": cid, "peer": host, "sport": port, "lport": lport,
                       "t": time.time(), "hex": d.hex()})
            if lport in args.http_ports:
                heads = got.count(b"\r\n\r\n")
                try:
                    while answered < heads:
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        answered += 1
                except OSError:
                    pass
            if port in args.reset_ports:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                why = "reset by us"
                break
    finally:
        conn.close()
        log.write({"event": "close", "id": cid, "peer": host, "sport": port, "lport": lport,
                   "t": time.time(), "why": why, "len": len(got), "hex": bytes(got).hex(),
                   "denied": DENIED in got, "allowed": ALLOWED in got})


def serve(args):
    log = Log(args.log)
    counter = [0]
    lock = threading.Lock()

    def listen(lport):
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", lport))
        s.listen(1024)
        return s

    socks = [(p, listen(p)) for p in args.ports]

    def accept_loop(lport, s):
        while True:
            conn, addr = s.accept()
            with lock:
                counter[0] += 1
                cid = counter[0]
            threading.Thread(target=handle, args=(conn, addr, lport, args, log, cid), daemon=True).start()

    for lport, s in socks:
        threading.Thread(target=accept_loop, args=(lport, s), daemon=True).start()
    print("recorder listening on %s" % ",".join(map(str, args.ports)), flush=True)
    while True:
        time.sleep(3600)


# ---- verdict ----
def verdict(args):
    conns = {}
    try:
        with open(args.log) as f:
            for line in f:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("sport") != args.sport:
                    continue
                c = conns.setdefault(ev["id"], {"data": bytearray(), "why": "open", "peer": ev["peer"]})
                if ev["event"] == "read":
                    c["data"] += bytes.fromhex(ev["hex"])
                elif ev["event"] == "close":
                    c["why"] = ev["why"]
    except FileNotFoundError:
        pass
    marker = args.marker.encode() if args.marker else None
    everything = b"".join(bytes(c["data"]) for c in conns.values())
    parts = []
    for cid in sorted(conns):
        c = conns[cid]
        d = bytes(c["data"])
        desc = "%d bytes" % len(d)
        if d:
            names, err = parse_client_hello(d)
            if names is not None:
                desc += ", a ClientHello naming %s" % (",".join(names) or "nothing")
            elif d[:1] == b"\x16":
                desc += ", TLS that does not parse (%s)" % err
            else:
                desc += ", %r" % d[:48]
            flags = [w for w, hit in (("denied.example", DENIED in d), ("allowed.example", ALLOWED in d),
                                      ("MARKER", marker is not None and marker in d)) if hit]
            if flags:
                desc += " [contains %s]" % " ".join(flags)
        parts.append("conn %d (%s, %s): %s" % (cid, c["peer"], c["why"], desc))
    print("    app read: " + ("; ".join(parts) if parts else "no connection accepted"))
    denied, allowed = DENIED in everything, ALLOWED in everything
    if args.expect == "allowed":
        ok = any((parse_client_hello(bytes(c["data"]))[0] or []) == ["allowed.example"] for c in conns.values())
    elif args.expect == "two_allowed_requests":
        ok = everything.count(b"\r\nHost: allowed.example\r\n") >= 2 and not denied
    elif args.expect == "insertion":
        ok = not denied and not allowed
        if allowed:
            print("    HARNESS: the app read the allowed insertion: the server's stack did not discard it")
    elif args.expect == "denied":
        ok = not denied
    elif args.expect == "marker":
        ok = marker not in everything
    elif args.expect == "nothing":
        ok = len(everything) == 0
    else:
        sys.exit("unknown --expect %s" % args.expect)
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--log", required=True)
    s.add_argument("--ports", default="80,443")
    s.add_argument("--http-ports", default="80")
    s.add_argument("--idle", type=float, default=3.0)
    s.add_argument("--reset-ports", default="")
    v = sub.add_parser("verdict")
    v.add_argument("--log", required=True)
    v.add_argument("--sport", type=int, required=True)
    v.add_argument("--expect", required=True)
    v.add_argument("--marker")
    args = ap.parse_args()
    if args.cmd == "serve":
        ints = lambda s: {int(x) for x in s.split(",") if x}
        args.ports = sorted(ints(args.ports))
        args.http_ports = ints(args.http_ports)
        args.reset_ports = ints(args.reset_ports)
        serve(args)
    else:
        sys.exit(verdict(args))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""The coverage test's peers (tests/e2e/coverage_test.sh): what the servers received is
the ground truth, not what the daemon logged.

    coverage_servers.py serve --log FILE --cert CERT --key KEY
        The internet side, until killed. Every message an application read is written at
        once to FILE as a JSON line {"ev", "proto", "src", "sport", "dst", "dport", "data"}:
          TCP [::]:22, 8443, 5000  each read ("data"); answered "ack " + what was read
          TCP [::]:80, 443 (TLS)   each request head ("http": data is the request line);
                                   answered 200 "hello HOST"
          UDP 443, 5000, 5001      each datagram ("data"), on every address of the
                                   namespace (one socket each, so that the answer leaves
                                   from the address asked); answered "ack " + datagram
          DNS UDP 203.0.113.53:53 and 203.0.113.54:53, TCP [::]:53  each question ("dns":
                                   data is the name); answered with an A 203.0.113.10
          ICMP and ICMPv6 echo requests ("echo": data is the payload, sport the
                                   identifier), read on raw sockets beside the kernel's
                                   own replies
          IP protocol 253 (RFC 3692 experimentation), IPv4 ("raw")
    coverage_servers.py tcp|udp|dns|dnstcp|ping|raw DST PORT|ID|PROTO MARKER
        A client, in the pod: sends MARKER (dns: asks for the name MARKER) and prints one
        JSON line {"result": reply|refused|reset|timeout|sent|error, "ms", "sport"};
        sport is the client's port (ping: the echo identifier). Waits 1.5 s at most.
    coverage_servers.py decisions LOG SKIP SRC SPORT DST PROTO
        The daemon's decision lines for that flow after the log's first SKIP lines, one
        "verdict reason enforced" a line (SPORT "-" for any).
"""
import json
import os
import select
import socket
import ssl
import struct
import sys
import threading
import time

ADDRS = ["203.0.113.10", "203.0.113.20", "203.0.113.250",
         "2001:db8::10", "2001:db8::20", "2001:db8::250"]
RESOLVERS = ["203.0.113.53", "203.0.113.54"]
RAW_PROTO = 253
WAIT = 1.5


# ---- serve ----
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recorder  # noqa: E402  (the attack suite's recorder: its log and address helpers)


class Log(recorder.Log):
    def write(self, **kv):
        super().write(kv)


def plain(addr):
    return recorder.peer_of(addr)[0]


def text(b):
    return b.decode("latin-1")


def dual_listener(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.listen(64)
    return s


def dns_name(q):
    p, labels = 12, []
    while p < len(q) and q[p] != 0:
        n = q[p]
        labels.append(q[p + 1:p + 1 + n])
        p += 1 + n
    return text(b".".join(labels)), p + 5  # the name, the end of the question


def dns_answer(q):
    name, end = dns_name(q)
    qtype = struct.unpack("!H", q[end - 4:end - 2])[0] if end <= len(q) else 0
    head = q[:2] + b"\x81\x80" + b"\x00\x01" + (b"\x00\x01" if qtype == 1 else b"\x00\x00") + b"\x00\x00\x00\x00"
    ans = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x01\x2c\x00\x04" + socket.inet_aton("203.0.113.10") if qtype == 1 else b""
    return name, head + q[12:end] + ans


def tcp_conn(conn, port, log, tls):
    src, sport = plain(conn.getpeername()), conn.getpeername()[1]
    dst = plain(conn.getsockname())
    rec = dict(proto="tcp", src=src, sport=sport, dst=dst, dport=port)
    try:
        conn.settimeout(3)
        if tls is not None:
            conn = tls.wrap_socket(conn, server_side=True)
        buf = b""
        while True:
            if port == 53:  # DNS over TCP: length-prefixed questions
                while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
                    d = conn.recv(4096)
                    if not d:
                        return
                    buf += d
                n = struct.unpack("!H", buf[:2])[0]
                q, buf = buf[2:2 + n], buf[2 + n:]
                name, a = dns_answer(q)
                log.write(ev="dns", data=name, **rec)
                conn.sendall(struct.pack("!H", len(a)) + a)
                continue
            d = conn.recv(65536)
            if not d:
                return
            if port in (80, 443):
                buf += d
                while b"\r\n\r\n" in buf:
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    lines = head.split(b"\r\n")
                    host = next((l[5:].strip() for l in lines if l.lower().startswith(b"host:")), b"-")
                    log.write(ev="http", data=text(lines[0]), host=text(host), **rec)
                    body = b"hello " + host + b"\n"
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            else:
                log.write(ev="data", data=text(d), **rec)
                conn.sendall(b"ack " + d)
    except (OSError, ssl.SSLError, ValueError):
        pass  # resets are what denied flows end with
    finally:
        conn.close()


def tcp_server(s, port, log, tls=None):
    while True:
        conn, _ = s.accept()
        threading.Thread(target=tcp_conn, args=(conn, port, log, tls), daemon=True).start()


def udp_sockets():
    socks = []
    for a in ADDRS:
        fam = socket.AF_INET6 if ":" in a else socket.AF_INET
        for port in (443, 5000, 5001):
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.bind((a, port))
            socks.append((s, a, port, False))
    for a in RESOLVERS:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((a, 53))
        socks.append((s, a, 53, True))
    return socks


def udp_server(socks, log):
    by_fd = {s.fileno(): (s, a, p, dns) for s, a, p, dns in socks}
    while True:
        ready, _, _ = select.select([s for s, _, _, _ in socks], [], [])
        for s in ready:
            _, a, port, dns = by_fd[s.fileno()]
            d, peer = s.recvfrom(65536)
            rec = dict(proto="udp", src=peer[0], sport=peer[1], dst=a, dport=port)
            if dns:
                name, ans = dns_answer(d)
                log.write(ev="dns", data=name, **rec)
                s.sendto(ans, peer)
            else:
                log.write(ev="data", data=text(d), **rec)
                s.sendto(b"ack " + d, peer)


def icmp4_server(s, log):
    while True:
        pkt, _ = s.recvfrom(65536)
        ihl = (pkt[0] & 15) * 4
        icmp = pkt[ihl:]
        if len(icmp) >= 8 and icmp[0] == 8:
            log.write(ev="echo", proto="icmp", src=socket.inet_ntoa(pkt[12:16]), dst=socket.inet_ntoa(pkt[16:20]),
                      sport=struct.unpack("!H", icmp[4:6])[0], dport=0, data=text(icmp[8:]))


def icmp6_server(s, log):
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    while True:
        icmp, anc, _, peer = s.recvmsg(65536, 256)
        dst = "?"
        for level, kind, data in anc:
            if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
                dst = socket.inet_ntop(socket.AF_INET6, data[:16])
        if len(icmp) >= 8 and icmp[0] == 128:
            log.write(ev="echo", proto="icmpv6", src=peer[0], dst=dst,
                      sport=struct.unpack("!H", icmp[4:6])[0], dport=0, data=text(icmp[8:]))


def raw_server(s, log):
    while True:
        pkt, _ = s.recvfrom(65536)
        ihl = (pkt[0] & 15) * 4
        log.write(ev="raw", proto=str(RAW_PROTO), src=socket.inet_ntoa(pkt[12:16]), dst=socket.inet_ntoa(pkt[16:20]),
                  sport=0, dport=0, data=text(pkt[ihl:]))


def serve(argv):
    opts = dict(zip(argv[0::2], argv[1::2]))
    log = Log(opts["--log"])
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(opts["--cert"], opts["--key"])
    # every socket is bound before any thread starts: one that cannot be is an exit
    jobs = [(tcp_server, (dual_listener(p), p, log)) for p in (22, 8443, 5000, 80, 53)]
    jobs += [(tcp_server, (dual_listener(443), 443, log, tls)), (udp_server, (udp_sockets(), log)),
             (icmp4_server, (socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP), log)),
             (icmp6_server, (socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6), log)),
             (raw_server, (socket.socket(socket.AF_INET, socket.SOCK_RAW, RAW_PROTO), log))]
    for fn, args in jobs:
        threading.Thread(target=fn, args=args, daemon=True).start()
    log.write(ev="ready")
    threading.Event().wait()


# ---- clients ----
def family(dst):
    return socket.AF_INET6 if ":" in dst else socket.AF_INET


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def dns_question(name):
    q = struct.pack("!HHHHHH", int.from_bytes(os.urandom(2), "big"), 0x0100, 1, 0, 0, 0)
    return q + b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0\x00\x01\x00\x01"


def client(kind, dst, arg, marker):
    t0 = time.monotonic()
    out = {"sport": 0}
    try:
        if kind in ("tcp", "dnstcp"):
            s = socket.socket(family(dst), socket.SOCK_STREAM)
            s.settimeout(WAIT)
            s.bind(("::" if ":" in dst else "0.0.0.0", 0))
            out["sport"] = s.getsockname()[1]
            s.connect((dst, int(arg)))
            if kind == "tcp":
                s.sendall(marker.encode())
                got = s.recv(4096)
                out["result"] = "reply" if got.startswith(b"ack ") else "closed"
            else:
                q = dns_question(marker)
                s.sendall(struct.pack("!H", len(q)) + q)
                got = s.recv(4096)
                out["result"] = "reply" if got[2:4] == q[:2] else "closed"
        elif kind in ("udp", "dns"):
            s = socket.socket(family(dst), socket.SOCK_DGRAM)
            s.settimeout(WAIT)
            s.connect((dst, int(arg)))
            out["sport"] = s.getsockname()[1]
            q = dns_question(marker) if kind == "dns" else marker.encode()
            s.send(q)
            got = s.recv(4096)
            ok = got[:2] == q[:2] and len(got) >= 12 and got[7] == 1 if kind == "dns" else got == b"ack " + q
            out["result"] = "reply" if ok else "bad_reply"
        elif kind == "ping":
            ident, v6 = int(arg), ":" in dst
            proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
            s = socket.socket(family(dst), socket.SOCK_RAW, proto)
            hdr = struct.pack("!BBHHH", 128 if v6 else 8, 0, 0, ident, 1)
            pkt = hdr + marker.encode()
            if not v6:  # the kernel sums ICMPv6 itself
                pkt = hdr[:2] + struct.pack("!H", checksum(pkt)) + hdr[4:] + marker.encode()
            out["sport"] = ident
            s.sendto(pkt, (dst, 0))
            out["result"] = "timeout"
            while time.monotonic() - t0 < WAIT:
                s.settimeout(max(0.01, WAIT - (time.monotonic() - t0)))
                try:
                    got, peer = s.recvfrom(65536)
                except socket.timeout:
                    break
                icmp = got if v6 else got[(got[0] & 15) * 4:]
                if len(icmp) >= 8 and icmp[0] == (129 if v6 else 0) and struct.unpack("!H", icmp[4:6])[0] == ident:
                    out["result"] = "reply"
                    break
        elif kind == "raw":
            s = socket.socket(family(dst), socket.SOCK_RAW, int(arg))
            s.sendto(marker.encode(), (dst, 0))
            out["result"] = "sent"
    except ConnectionRefusedError:
        out["result"] = "refused"
    except ConnectionResetError:
        out["result"] = "reset"
    except socket.timeout:
        out["result"] = "timeout"
    except OSError as e:
        out["result"] = "error"
        out["error"] = str(e)
    out["ms"] = int((time.monotonic() - t0) * 1000)
    print(json.dumps(out))


def decisions(log, skip, src, sport, dst, proto):
    with open(log) as f:
        for i, line in enumerate(f):
            if i < int(skip):
                continue
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if d.get("event") != "decision" or d.get("src") != src or d.get("dst") != dst:
                continue
            if d.get("proto") != proto or (sport != "-" and str(d.get("sport")) != sport):
                continue
            print(d["verdict"], d["reason"], "true" if d["enforced"] else "false")


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2:])
    elif sys.argv[1] == "decisions":
        decisions(*sys.argv[2:8])
    else:
        client(*sys.argv[1:5])

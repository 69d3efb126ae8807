#!/usr/bin/env bash
# Captures real clients (curl, openssl, gnutls-cli, python3, chromium) talking TLS, HTTP and
# plain TCP into tests/pcaps/real/NAME.pcap, one small capture per scenario, and writes
# NAME.expect beside each: the decision every connection must get under
# tests/pcaps/test.rules (format and scenarios: tests/pcaps/README.md).
#
# Everything stays inside network namespaces made here and removed on exit (even on failure):
#   POD  (10.244.0.10/24, fd00:10:244::10/64)    -- eth0 --  SRV (pod0: 10.244.0.1, fd00:10:244::1)
#   POD7 (10.244.7.10/24, fd00:10:244:7::10/64)  -- eth0 --  SRV (pod7: 10.244.7.1, fd00:10:244:7::1)
#   SRV serves on 203.0.113.10, .20, .250 and 2001:db8::10, ::20, ::250 (on its lo):
#     443 TLS (HTTP/1.1 behind it), 80 and 8080 HTTP, 22 an SSH-like banner, 3128 a CONNECT proxy.
# tcpdump runs in the pod on its eth0 (full snaplen, filter "tcp"). The veth offloads
# (checksum, TSO/GSO, GRO) are switched off so the capture looks like a wire: MTU-sized
# segments and correct checksums.
#
# Usage (root, Debian 12): bash tests/pcaps/capture_real.sh [SCENARIO...]
#   with no argument every scenario runs; CHROMIUM=0 skips the two chromium scenarios.
# Needs tshark, tcpdump, openssl, gnutls-bin, curl, python3, iproute2, chromium (optional).
# Exits non-zero if a scenario did not produce what its expectation says.
set -uo pipefail
ONLY=("$@")  # scenarios to run; none: all

HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="$HERE/real"
PY=/usr/bin/python3
TAG="eicap$$"
POD="$TAG-pod" POD7="$TAG-pod7" SRV="$TAG-srv"
WORK="$(mktemp -d /tmp/eic-capture.XXXXXX)"
PIDS=()
FAILED=()

cleanup() {
    local p ns
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
    # anything still running inside our namespaces (chromium helpers, say) was started here
    for ns in "$POD" "$POD7" "$SRV"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null; done
    done
    sleep 0.3
    for ns in "$POD" "$POD7" "$SRV"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "capture_real: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"
for c in ip tcpdump tshark openssl gnutls-cli curl "$PY"; do
    command -v "$c" >/dev/null || die "missing $c"
done
mkdir -p "$OUT"

# ---------------------------------------------------------------- topology
# Switch a device's offloads off through the legacy ethtool ioctls (no ethtool binary needed).
cat >"$WORK/offload_off.py" <<'EOF'
import ctypes, fcntl, socket, struct, sys
SIOCETHTOOL = 0x8946
SET = {"gro": 0x2c, "gso": 0x24, "tso": 0x1f, "sg": 0x19, "tx": 0x17}
GET = {"gro": 0x2b, "gso": 0x23, "tso": 0x1e, "sg": 0x18, "tx": 0x16}
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def call(dev, cmd, data=0):
    ev = ctypes.create_string_buffer(struct.pack("II", cmd, data))
    ifr = struct.pack("16sP", dev.encode(), ctypes.addressof(ev)).ljust(40, b"\0")
    fcntl.ioctl(s, SIOCETHTOOL, ifr)
    return struct.unpack("II", ev.raw[:8])[1]
for dev in sys.argv[1:]:
    for k in SET:
        call(dev, SET[k], 0)
    on = [k for k in GET if call(dev, GET[k])]
    if on:
        sys.exit(f"{dev}: offloads still on: {on}")
EOF

for ns in "$POD" "$POD7" "$SRV"; do
    ip netns add "$ns" || die "cannot create netns $ns"
    ip -n "$ns" link set lo up
done
ip link add eth0 netns "$POD" type veth peer name pod0 netns "$SRV" || die "veth"
ip link add eth0 netns "$POD7" type veth peer name pod7 netns "$SRV" || die "veth"
for pair in "$POD eth0" "$POD7 eth0" "$SRV pod0" "$SRV pod7"; do
    set -- $pair
    ip -n "$1" link set "$2" mtu 1500 up
    ip netns exec "$1" "$PY" "$WORK/offload_off.py" "$2" || die "offloads on $1/$2"
done
ip -n "$POD" addr add 10.244.0.10/24 dev eth0
ip -n "$POD" addr add fd00:10:244::10/64 dev eth0 nodad
ip -n "$POD" route add default via 10.244.0.1
ip -n "$POD" -6 route add default via fd00:10:244::1
ip -n "$POD7" addr add 10.244.7.10/24 dev eth0
ip -n "$POD7" addr add fd00:10:244:7::10/64 dev eth0 nodad
ip -n "$POD7" route add default via 10.244.7.1
ip -n "$POD7" -6 route add default via fd00:10:244:7::1
ip -n "$SRV" addr add 10.244.0.1/24 dev pod0
ip -n "$SRV" addr add fd00:10:244::1/64 dev pod0 nodad
ip -n "$SRV" addr add 10.244.7.1/24 dev pod7
ip -n "$SRV" addr add fd00:10:244:7::1/64 dev pod7 nodad
for a in 203.0.113.10/32 203.0.113.20/32 203.0.113.250/32; do ip -n "$SRV" addr add "$a" dev lo; done
for a in 2001:db8::10/128 2001:db8::20/128 2001:db8::250/128; do ip -n "$SRV" addr add "$a" dev lo nodad; done

# ---------------------------------------------------------------- servers
SANS="DNS:allowed.example,DNS:api.allowed.example,DNS:a.b.allowed.example,DNS:denied.example"
SANS="$SANS,DNS:api.portarium.example,DNS:api.stripe.example"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -subj /CN=allowed.example \
    -addext "subjectAltName=$SANS" 2>"$WORK/openssl-req.log" || die "cannot make the certificate"

cat >"$WORK/servers.py" <<'EOF'
# All servers of the capture topology, one process, dual-stack listeners on [::].
import http.server, socket, socketserver, ssl, sys, threading

CERT, KEY = sys.argv[1], sys.argv[2]

class Dual:
    address_family = socket.AF_INET6
    allow_reuse_address = True
    daemon_threads = True
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b"<html><body>hello from %s</body></html>\n" % (self.headers.get("Host") or "-").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

class HTTP(Dual, http.server.ThreadingHTTPServer):
    pass

def serve(srv):
    threading.Thread(target=srv.serve_forever, daemon=True).start()

for port in (80, 8080):
    serve(HTTP(("::", port), Handler))

tls = HTTP(("::", 443), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(CERT, KEY)
# the handshake runs in the handler's thread, at its first read
tls.socket = ctx.wrap_socket(tls.socket, server_side=True, do_handshake_on_connect=False)
serve(tls)

class Banner(socketserver.BaseRequestHandler):
    """Port 22: says an SSH-like hello, reads what the client says, closes."""
    def handle(self):
        self.request.settimeout(3)
        try:
            self.request.sendall(b"SSH-2.0-OpenSSH_9.2p1 capture\r\n")
            self.request.recv(4096)
        except OSError:
            pass

class TCP(Dual, socketserver.ThreadingTCPServer):
    pass

serve(TCP(("::", 22), Banner))

class Proxy(socketserver.BaseRequestHandler):
    """Port 3128: CONNECT proxy; every name is served by 203.0.113.10."""
    def handle(self):
        c = self.request
        head = b""
        while b"\r\n\r\n" not in head:
            d = c.recv(4096)
            if not d:
                return
            head += d
        line = head.split(b"\r\n", 1)[0].split()
        if len(line) < 2 or line[0] != b"CONNECT":
            c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        port = int(line[1].rsplit(b":", 1)[1])
        u = socket.create_connection(("203.0.113.10", port), timeout=10)
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        rest = head.split(b"\r\n\r\n", 1)[1]
        if rest:
            u.sendall(rest)
        def pump(a, b):
            try:
                while True:
                    d = a.recv(65536)
                    if not d:
                        break
                    b.sendall(d)
            except OSError:
                pass
            try:
                b.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        t = threading.Thread(target=pump, args=(u, c), daemon=True)
        t.start()
        pump(c, u)
        t.join(10)
        u.close()

serve(TCP(("::", 3128), Proxy))
print("ready", flush=True)
threading.Event().wait()
EOF
ip netns exec "$SRV" "$PY" "$WORK/servers.py" "$WORK/cert.pem" "$WORK/key.pem" \
    >"$WORK/servers.log" 2>&1 </dev/null &
PIDS+=($!)
for _ in $(seq 1 100); do
    n=$(ip netns exec "$SRV" ss -ltnH 2>/dev/null | grep -cE ':(443|80|8080|22|3128)\b')
    [ "${n:-0}" -ge 5 ] && break
    sleep 0.1
done
[ "${n:-0}" -ge 5 ] || { cat "$WORK/servers.log"; die "servers did not start"; }

# ---------------------------------------------------------------- expectations
# expect.py PCAP EXPECT [options] < SPEC
# SPEC lines, in the order the client opens its connections:
#   SRC DST DPORT L7 HOST VERDICT REASON [+]
#     the next connection from SRC to DST:DPORT must carry HOST (tshark's SNI or Host) over
#     L7; with "+" every connection from SRC to DST:DPORT carrying HOST (one at least).
#   EXTRA REGEX VERDICT REASON
#     any other connection whose tshark host matches REGEX (connections a client opens on its
#     own, e.g. chromium's background requests) gets VERDICT REASON.
# Any connection left unmatched, or a spec line with no connection, is an error.
# Writes EXPECT with the real addresses and ephemeral ports read from the capture and prints
# the table of what tshark saw. Also checks every frame is wire-sized with a good checksum.
cat >"$WORK/expect.py" <<'EOF'
import argparse, re, subprocess, sys

ap = argparse.ArgumentParser()
ap.add_argument("pcap"); ap.add_argument("expect")
ap.add_argument("--why", default="")
ap.add_argument("--client", default="")
ap.add_argument("--oracle-skip", action="store_true")
ap.add_argument("--options", default="", help="replay arguments check_pcaps.py adds")
ap.add_argument("--hello-segments", type=int, help="every ClientHello spans this many segments")
ap.add_argument("--key-share", type=int, help="every ClientHello offers a key share of this group")
a = ap.parse_args()

F = ["tcp.stream", "frame.len", "ip.src", "ipv6.src", "tcp.srcport", "ip.dst", "ipv6.dst",
     "tcp.dstport", "tcp.flags.syn", "tcp.flags.ack", "tcp.len", "tcp.checksum.status",
     "tls.handshake.type", "tls.handshake.extensions_server_name", "http.request.method",
     "http.host", "tcp.segment.count", "tls.handshake.extensions_key_share_group"]
r = subprocess.run(["tshark", "-r", a.pcap, "-o", "tcp.desegment_tcp_streams:TRUE",
                    "-o", "tcp.check_checksum:TRUE", "-T", "fields", "-E", "separator=\t",
                    "-E", "occurrence=a", "-E", "aggregator=,"] + sum((["-e", f] for f in F), []),
                   capture_output=True, text=True)
if r.returncode != 0:
    sys.exit(f"tshark failed on {a.pcap}: {r.stderr}")
errors, conns, frames = [], {}, 0
for line in r.stdout.splitlines():
    v = dict(zip(F, (line.split("\t") + [""] * len(F))[:len(F)]))
    frames += 1
    if int(v["frame.len"]) > 1514:
        errors.append(f"frame of {v['frame.len']} bytes: offloads were not off")
    if v["tcp.checksum.status"] not in ("1", "2"):
        errors.append(f"TCP checksum status {v['tcp.checksum.status']!r}: offloads were not off")
    src, dst = v["ip.src"] or v["ipv6.src"], v["ip.dst"] or v["ipv6.dst"]
    st = v["tcp.stream"]
    if v["tcp.flags.syn"] in ("1", "True") and v["tcp.flags.ack"] in ("0", "False"):
        conns.setdefault(st, dict(order=len(conns), src=src, sport=v["tcp.srcport"], dst=dst,
                                  dport=v["tcp.dstport"], l7="none", host="-", seen=False,
                                  data=0, segs=None, groups=""))
    c = conns.get(st)
    if c is None or src != c["src"] or v["tcp.srcport"] != c["sport"]:
        continue  # server side, or a flow whose SYN is not in the capture
    c["data"] += int(v["tcp.len"] or 0)
    if c["seen"]:
        continue
    if "1" in v["tls.handshake.type"].split(","):
        c.update(seen=True, l7="tls", host=(v["tls.handshake.extensions_server_name"] or "-").lower(),
                 segs=int(v["tcp.segment.count"] or 1), groups=v["tls.handshake.extensions_key_share_group"])
    elif v["http.request.method"]:
        h = v["http.host"].split(",")[0].lower() or "-"
        h = h[1:].split("]")[0] if h.startswith("[") else h.rsplit(":", 1)[0] if h.count(":") == 1 else h
        c.update(seen=True, l7="http", host=h)

order = sorted(conns.values(), key=lambda c: c["order"])
rows = []  # (conn, verdict, reason)
specs = [l.split() for l in sys.stdin.read().splitlines() if l.strip() and not l.startswith("#")]
for s in specs:
    if s[0] == "EXTRA":
        continue
    src, dst, dport, l7, host, verdict, reason = s[:7]
    many = len(s) > 7 and s[7] == "+"
    free = [c for c in order if "claimed" not in c and (c["src"], c["dst"], c["dport"]) == (src, dst, dport)]
    if many:
        free = [c for c in free if c["host"] == host]
        if not free:
            errors.append(f"no connection {src} -> {dst}:{dport} for {host}")
        pick = free
    else:
        if not free:
            errors.append(f"no connection {src} -> {dst}:{dport} for {host}")
            continue
        pick = free[:1]
    for c in pick:
        c["claimed"] = True
        if (c["l7"], c["host"]) != (l7, host):
            errors.append(f"{c['src']}:{c['sport']} -> {dst}:{dport}: tshark sees {c['l7']} {c['host']}, "
                          f"the scenario meant {l7} {host}")
        rows.append((c, l7, host, verdict, reason))
for s in specs:
    if s[0] != "EXTRA":
        continue
    for c in order:
        if "claimed" not in c and c["host"] != "-" and re.search(s[1], c["host"]):
            c["claimed"] = True
            rows.append((c, c["l7"], c["host"], s[2], s[3]))
for c in order:
    if "claimed" not in c:
        errors.append(f"unexpected connection {c['src']}:{c['sport']} -> {c['dst']}:{c['dport']} "
                      f"({c['l7']} {c['host']}, {c['data']} bytes)")
for c, l7, host, *_ in rows:
    if l7 == "tls" and a.hello_segments and c["segs"] != a.hello_segments:
        errors.append(f"{c['sport']}: ClientHello in {c['segs']} segment(s), wanted {a.hello_segments}")
    if l7 == "tls" and a.key_share and str(a.key_share) not in c["groups"].split(","):
        errors.append(f"{c['sport']}: no key share of group {a.key_share} (groups {c['groups']})")

rows.sort(key=lambda r: r[0]["order"])
with open(a.expect, "w") as f:
    if a.why:
        f.write(f"# why: {a.why}\n")
    if a.client:
        f.write(f"# client: {a.client}\n")
    if a.oracle_skip:
        f.write("# oracle: skip (no ClientHello or HTTP request for tshark to name)\n")
    if a.options:
        f.write(f"# options: {a.options}\n")
    f.write("# generated by tests/pcaps/capture_real.sh from the capture; see tests/pcaps/README.md\n")
    f.write("# src sport dst dport l7 host verdict reason\n")
    for c, l7, host, verdict, reason in rows:
        f.write(f"{c['src']} {c['sport']} {c['dst']} {c['dport']} {l7} {host} {verdict} {reason}\n")
name = a.pcap.rsplit("/", 1)[-1]
for c, l7, host, verdict, reason in rows:
    print(f"  {name:24} {c['src']:>16} {c['sport']:>5} {c['dst']:>14} {c['dport']:>4}  tshark: {c['l7']:4} "
          f"{c['host']:40} segs={c['segs'] or '-'}  expect: {verdict} {reason}")
for e in errors:
    print(f"  ERROR {name}: {e}", file=sys.stderr)
sys.exit(1 if errors else 0)
EOF

# ---------------------------------------------------------------- capture helpers
CAP_PID=
CAP_FILE=
cap_start() {
    CAP_FILE="$OUT/$1.pcap"
    rm -f "$CAP_FILE" "$OUT/$1.expect"
    : >"$WORK/tcpdump.log"
    ip netns exec "$2" tcpdump -Z root -i eth0 -s 0 -U --immediate-mode -n -w "$CAP_FILE" tcp \
        >"$WORK/tcpdump.log" 2>&1 </dev/null &
    CAP_PID=$!
    PIDS+=("$CAP_PID")
    for _ in $(seq 1 50); do grep -q "listening on" "$WORK/tcpdump.log" && break; sleep 0.1; done
    grep -q "listening on" "$WORK/tcpdump.log" || { cat "$WORK/tcpdump.log"; die "tcpdump did not start"; }
}
cap_stop() {
    sleep 0.5  # let the last FIN/ACKs through
    kill -INT "$CAP_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$CAP_PID" 2>/dev/null || break; sleep 0.1; done
    wait "$CAP_PID" 2>/dev/null
    CAP_PID=
    chmod 644 "$CAP_FILE"
}
# expect NAME [expect.py options] <<SPEC
expect() {
    local name="$1"; shift
    if ! "$PY" "$WORK/expect.py" "$OUT/$name.pcap" "$OUT/$name.expect" "$@"; then
        FAILED+=("$name")
    fi
}

P=10.244.0.10 P6=fd00:10:244::10 Q=10.244.7.10 Q6=fd00:10:244:7::10
S=203.0.113.10 S2=203.0.113.20 SSH=203.0.113.250 S6=2001:db8::10 S26=2001:db8::20 SSH6=2001:db8::250
CURL="curl -sk --max-time 10 -o /dev/null"
CURL_V="$(curl --version | head -1 | cut -d' ' -f1-2,5)"
OSSL_V="$(openssl version | cut -d' ' -f1-2)"

want() { [ ${#ONLY[@]} -eq 0 ] && return 0; local s; for s in "${ONLY[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

# ---------------------------------------------------------------- scenarios
if want curl_tls13; then
    echo "== curl_tls13"
    cap_start curl_tls13 "$POD"
    ip netns exec "$POD" $CURL --tlsv1.3 --resolve allowed.example:443:$S https://allowed.example/
    cap_stop
    expect curl_tls13 --why "curl, TLS 1.3, an exactly allowed name" --client "$CURL_V" <<EOF
$P $S 443 tls allowed.example allow allowed_name
EOF
fi

if want curl_tls12; then
    echo "== curl_tls12"
    cap_start curl_tls12 "$POD"
    ip netns exec "$POD" $CURL --tls-max 1.2 --resolve api.allowed.example:443:$S https://api.allowed.example/
    cap_stop
    expect curl_tls12 --why "curl, TLS 1.2 at most, a name allowed by *.allowed.example" --client "$CURL_V" <<EOF
$P $S 443 tls api.allowed.example allow allowed_name
EOF
fi

if want curl_denied; then
    echo "== curl_denied"
    cap_start curl_denied "$POD"
    ip netns exec "$POD" $CURL --tlsv1.3 --resolve denied.example:443:$S https://denied.example/
    cap_stop
    expect curl_denied --why "curl, TLS 1.3, a name no entry allows" --client "$CURL_V" <<EOF
$P $S 443 tls denied.example deny name_not_allowed
EOF
fi

if want curl_ipv6; then
    echo "== curl_ipv6"
    cap_start curl_ipv6 "$POD"
    ip netns exec "$POD" $CURL -6 --resolve "a.b.allowed.example:443:[$S6]" https://a.b.allowed.example/
    cap_stop
    expect curl_ipv6 --why "curl over IPv6, a name two labels below allowed.example" --client "$CURL_V" <<EOF
$P6 $S6 443 tls a.b.allowed.example allow allowed_name
EOF
fi

if want curl_http; then
    echo "== curl_http"
    cap_start curl_http "$POD"
    ip netns exec "$POD" $CURL --resolve allowed.example:80:$S http://allowed.example/
    ip netns exec "$POD" $CURL --resolve denied.example:80:$S http://denied.example/
    ip netns exec "$POD" $CURL --resolve plain.allowed.example:8080:$S http://plain.allowed.example:8080/
    cap_stop
    expect curl_http --why "curl, plain HTTP: allowed on 80, denied on 80, allowed on 8080 (http://plain.allowed.example:8080)" \
        --client "$CURL_V" --options "--dest-check off --ports 80,443,8080" <<EOF
$P $S 80 http allowed.example allow allowed_name
$P $S 80 http denied.example deny name_not_allowed
$P $S 8080 http plain.allowed.example allow allowed_name
EOF
fi

if want openssl_sclient; then
    echo "== openssl_sclient"
    cap_start openssl_sclient "$POD"
    for v in -tls1_3 -tls1_2; do
        echo | ip netns exec "$POD" timeout 10 openssl s_client -connect $S:443 \
            -servername api.portarium.example $v >/dev/null 2>&1
    done
    cap_stop
    expect openssl_sclient --why "openssl s_client, TLS 1.3 then TLS 1.2, allowed by https://api.portarium.example/..." \
        --client "$OSSL_V s_client" <<EOF
$P $S 443 tls api.portarium.example allow allowed_name
$P $S 443 tls api.portarium.example allow allowed_name
EOF
fi

if want openssl_nosni; then
    echo "== openssl_nosni"
    cap_start openssl_nosni "$POD"
    echo | ip netns exec "$POD" timeout 10 openssl s_client -connect $S:443 -noservername >/dev/null 2>&1
    cap_stop
    expect openssl_nosni --why "openssl s_client -noservername: a ClientHello without server_name" \
        --client "$OSSL_V s_client" <<EOF
$P $S 443 tls - deny no_hostname
EOF
fi

if want gnutls; then
    echo "== gnutls"
    cap_start gnutls "$POD"
    printf 'GET / HTTP/1.1\r\nHost: allowed.example\r\nConnection: close\r\n\r\n' |
        ip netns exec "$POD" timeout 10 gnutls-cli --insecure --sni-hostname=allowed.example -p 443 $S >/dev/null 2>&1
    printf 'GET / HTTP/1.1\r\nHost: denied.example\r\nConnection: close\r\n\r\n' |
        ip netns exec "$POD" timeout 10 gnutls-cli --insecure --sni-hostname=denied.example -p 443 $S2 >/dev/null 2>&1
    cap_stop
    expect gnutls --why "gnutls-cli: an allowed name, then a denied name at the second server address" \
        --client "$(gnutls-cli --version | head -1)" <<EOF
$P $S 443 tls allowed.example allow allowed_name
$P $S2 443 tls denied.example deny name_not_allowed
EOF
fi

if want python; then
    echo "== python"
    cap_start python "$POD"
    ip netns exec "$POD" "$PY" - <<'EOF'
import socket, ssl, urllib.request
real = socket.getaddrinfo
def fake(host, *a, **k):  # no DNS in the pod: every name is served by 203.0.113.10
    return real("203.0.113.10" if host.endswith(".example") else host, *a, **k)
socket.getaddrinfo = fake
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
urllib.request.urlopen("https://allowed.example/", context=ctx, timeout=10).read()
urllib.request.urlopen("http://allowed.example/", timeout=10).read()
EOF
    cap_stop
    expect python --why "python3 urllib (ssl, http.client): HTTPS then HTTP to an allowed name" \
        --client "python3 $("$PY" -c 'import platform,ssl;print(platform.python_version(),ssl.OPENSSL_VERSION)')" <<EOF
$P $S 443 tls allowed.example allow allowed_name
$P $S 80 http allowed.example allow allowed_name
EOF
fi

# chromium NAME HOST: one headless page load; also opens connections of its own (time, update,
# accounts, ...) which MAP * sends to 203.0.113.10 too: all denied, all in the .expect.
chromium_run() {
    local name="$1" host="$2" udd
    udd="$(mktemp -d "$WORK/chromium.XXXXXX")"
    cap_start "$name" "$POD"
    ip netns exec "$POD" timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic \
        --no-first-run --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$udd" --ignore-certificate-errors \
        --host-resolver-rules="MAP * 203.0.113.10" --dump-dom "https://$host/" \
        >"$WORK/$name.dom" 2>"$WORK/$name.err"
    echo "  chromium exit $?, page: $(grep -o 'hello from [^<]*' "$WORK/$name.dom")"
    cap_stop
}
CHROMIUM_EXTRA='(^|\.)(google\.com|googleapis\.com|gstatic\.com|gvt1\.com|gvt2\.com|googleusercontent\.com)$'
if [ "${CHROMIUM:-1}" != 0 ] && command -v chromium >/dev/null; then
    CHROME_V="$(chromium --version 2>/dev/null | cut -d' ' -f1-2)"
    if want chromium_pq; then
        echo "== chromium_pq"
        chromium_run chromium_pq allowed.example
        expect chromium_pq --hello-segments 2 --key-share 4588 --client "$CHROME_V headless" \
            --why "chromium: X25519MLKEM768 key share, ClientHello ~1.9 KB over two segments; allowed name (plus chromium's own requests, denied)" <<EOF
$P $S 443 tls allowed.example allow allowed_name +
EXTRA $CHROMIUM_EXTRA deny name_not_allowed
EOF
    fi
    if want chromium_pq_denied; then
        echo "== chromium_pq_denied"
        chromium_run chromium_pq_denied denied.example
        expect chromium_pq_denied --hello-segments 2 --key-share 4588 --client "$CHROME_V headless" \
            --why "chromium: X25519MLKEM768 key share, ClientHello ~1.9 KB over two segments; denied name (plus chromium's own requests, denied)" <<EOF
$P $S 443 tls denied.example deny name_not_allowed +
EXTRA $CHROMIUM_EXTRA deny name_not_allowed
EOF
    fi
else
    echo "== chromium scenarios skipped (CHROMIUM=0 or no chromium)"
fi

if want pod7_payments; then
    echo "== pod7_payments"
    cap_start pod7_payments "$POD7"
    ip netns exec "$POD7" $CURL --resolve api.stripe.example:443:$S2 https://api.stripe.example/
    ip netns exec "$POD7" $CURL --resolve allowed.example:443:$S https://allowed.example/
    ip netns exec "$POD7" $CURL -6 --resolve "api.stripe.example:443:[$S26]" https://api.stripe.example/
    ip netns exec "$POD7" $CURL --resolve api.stripe.example:80:$S2 http://api.stripe.example/
    ip netns exec "$POD7" "$PY" - <<'EOF'
import socket
s = socket.create_connection(("203.0.113.250", 22), timeout=5)
s.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
s.recv(4096)
s.close()
EOF
    cap_stop
    expect pod7_payments --client "$CURL_V; python3 socket" \
        --why "second pod (policy payments): api.stripe.example allowed (v4, v6, http); allowed.example and 203.0.113.250:22 are the default policy's, denied here" <<EOF
$Q $S2 443 tls api.stripe.example allow allowed_name
$Q $S 443 tls allowed.example deny name_not_allowed
$Q6 $S26 443 tls api.stripe.example allow allowed_name
$Q $S2 80 http api.stripe.example allow allowed_name
$Q $SSH 22 none - deny port_not_inspected
EOF
fi

if want plain_tcp; then
    echo "== plain_tcp"
    cap_start plain_tcp "$POD"
    # curl's telnet:// sends stdin as it is (after its option negotiation)
    printf 'SSH-2.0-curl-telnet\r\n' | ip netns exec "$POD" curl -s --max-time 5 telnet://$SSH:22 >/dev/null
    ip netns exec "$POD" "$PY" - <<'EOF'
import socket
for addr in ("2001:db8::250", "203.0.113.20"):
    s = socket.create_connection((addr, 22), timeout=5)
    s.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
    s.recv(4096)
    s.close()
EOF
    cap_stop
    expect plain_tcp --oracle-skip --client "$CURL_V telnet://; python3 socket" \
        --why "plain TCP to port 22: allowed by address (v4 and v6 entries); the same bytes to an address with no entry are denied (22 is not an inspected port)" <<EOF
$P $SSH 22 none - allow allowed_address
$P6 $SSH6 22 none - allow allowed_address
$P $S2 22 none - deny port_not_inspected
EOF
fi

if want http_connect; then
    echo "== http_connect"
    cap_start http_connect "$POD"
    ip netns exec "$POD" $CURL -x http://$S2:3128 https://allowed.example/
    ip netns exec "$POD" $CURL -x http://$S2:3128 https://denied.example/
    cap_stop
    expect http_connect --client "$CURL_V -x" --options "--dest-check off --ports 80,443,3128" \
        --why "HTTPS through a CONNECT proxy at 203.0.113.20:3128, a port the node rules inspect: judged by the CONNECT target" <<EOF
$P $S2 3128 http allowed.example allow allowed_name
$P $S2 3128 http denied.example deny name_not_allowed
EOF
fi

echo
echo "== captures"
for f in "$OUT"/*.pcap; do
    printf '  %-26s %6d bytes %4d frames\n' "$(basename "$f")" "$(stat -c %s "$f")" \
        "$(tshark -r "$f" 2>/dev/null | wc -l)"
done
if [ ${#FAILED[@]} -gt 0 ]; then
    echo "FAILED: ${FAILED[*]}" >&2
    exit 1
fi
echo "all scenarios captured as expected"

#!/usr/bin/env bash
# Capture real client TLS/HTTP/TCP traffic into tests/pcaps/real/*.pcap.
# All traffic stays inside two network namespaces created (and removed) here:
#   eic-pod (client, 10.244.0.10/16, fd00:10:244::10/64)
#   eic-srv (servers: 203.0.113.10, 203.0.113.250, 2001:db8::10, gw 10.244.0.1 / fd00:10:244::1)
# Must be run as root. Optional: CHROMIUM=0 to skip the chromium scenario.
set -u

HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="$HERE/real"
mkdir -p "$OUT"
WORK="$(mktemp -d /tmp/eic-capture.XXXXXX)"
POD=eic-pod
SRV=eic-srv
VP=veth-pod
VS=veth-srv
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.2
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  ip netns del "$POD" 2>/dev/null
  ip netns del "$SRV" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

inpod() { ip netns exec "$POD" "$@"; }
insrv() { ip netns exec "$SRV" "$@"; }

# ---------- topology ----------
ip netns del "$POD" 2>/dev/null; ip netns del "$SRV" 2>/dev/null
ip netns add "$POD"
ip netns add "$SRV"
ip link add "$VP" netns "$POD" type veth peer name "$VS" netns "$SRV"
inpod ip link set lo up
insrv ip link set lo up
inpod ip addr add 10.244.0.10/16 dev "$VP"
inpod ip -6 addr add fd00:10:244::10/64 dev "$VP" nodad
inpod ip link set "$VP" up
insrv ip addr add 10.244.0.1/16 dev "$VS"
insrv ip addr add 203.0.113.10/24 dev "$VS"
insrv ip addr add 203.0.113.250/24 dev "$VS"
insrv ip -6 addr add fd00:10:244::1/64 dev "$VS" nodad
insrv ip -6 addr add 2001:db8::10/64 dev "$VS" nodad
insrv ip link set "$VS" up
inpod ip route add default via 10.244.0.1
inpod ip -6 route add default via fd00:10:244::1
inpod ip route add 203.0.113.0/24 via 10.244.0.1
inpod ip -6 route add 2001:db8::/32 via fd00:10:244::1
# pod's return routes in srv are connected (10.244/16, fd00:10:244::/64)

# ---------- servers ----------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -subj /CN=allowed.example \
  -addext subjectAltName=DNS:allowed.example,DNS:*.allowed.example,DNS:denied.example,DNS:api.portarium.example,DNS:a.b.allowed.example \
  2>/dev/null || { echo "cert generation failed"; exit 1; }

insrv openssl s_server -accept '[::]:443' -www -cert "$WORK/cert.pem" -key "$WORK/key.pem" \
  >"$WORK/s_server.log" 2>&1 </dev/null &
PIDS+=($!)
mkdir -p "$WORK/www"; echo "hello" >"$WORK/www/index.html"
for port in 80 8080; do
  (cd "$WORK/www" && exec ip netns exec "$SRV" /usr/bin/python3 -m http.server --bind :: "$port") \
    >"$WORK/http$port.log" 2>&1 </dev/null &
  PIDS+=($!)
done
insrv /usr/bin/python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("203.0.113.250", 22)); s.listen(8)
while True:
    c, _ = s.accept()
    try:
        c.sendall(b"SSH-2.0-OpenSSH_9.2 fake\r\n"); c.settimeout(2); c.recv(4096)
    except Exception: pass
    c.close()
' >"$WORK/ssh.log" 2>&1 </dev/null &
PIDS+=($!)

# wait for listeners
for i in $(seq 1 50); do
  n=$(insrv ss -ltnH 2>/dev/null | grep -cE ':(443|80|8080|22)\b')
  [ "${n:-0}" -ge 4 ] && break
  sleep 0.1
done
insrv ss -ltn

# ---------- capture helpers ----------
CAP_PID=
cap_start() {
  rm -f "$OUT/$1"
  inpod tcpdump -i "$VP" -s 0 -U -w "$OUT/$1" 'tcp' >"$WORK/tcpdump.log" 2>&1 &
  CAP_PID=$!
  sleep 0.5
}
cap_stop() {
  sleep 0.5
  kill -INT "$CAP_PID" 2>/dev/null
  wait "$CAP_PID" 2>/dev/null
  CAP_PID=
}
SKIPPED=()

# ---------- scenarios ----------
echo "== curl_tls13"
cap_start curl_tls13.pcap
inpod curl -sk --tlsv1.3 --max-time 10 --resolve allowed.example:443:203.0.113.10 https://allowed.example/ -o /dev/null
cap_stop

echo "== curl_tls12"
cap_start curl_tls12.pcap
inpod curl -sk --tls-max 1.2 --max-time 10 --resolve api.allowed.example:443:203.0.113.10 https://api.allowed.example/ -o /dev/null
cap_stop

echo "== curl_denied"
cap_start curl_denied.pcap
inpod curl -sk --max-time 10 --resolve denied.example:443:203.0.113.10 https://denied.example/ -o /dev/null
cap_stop

echo "== curl_ipv6"
cap_start curl_ipv6.pcap
inpod curl -sk -6 --max-time 10 --resolve 'a.b.allowed.example:443:[2001:db8::10]' https://a.b.allowed.example/ -o /dev/null
cap_stop

echo "== curl_http"
cap_start curl_http.pcap
inpod curl -s --max-time 10 --resolve allowed.example:80:203.0.113.10 http://allowed.example/ -o /dev/null
inpod curl -s --max-time 10 --resolve denied.example:80:203.0.113.10 http://denied.example/ -o /dev/null
inpod curl -s --max-time 10 --resolve plain.allowed.example:8080:203.0.113.10 http://plain.allowed.example:8080/ -o /dev/null
cap_stop

echo "== openssl_sclient"
cap_start openssl_sclient.pcap
echo | inpod timeout 10 openssl s_client -connect 203.0.113.10:443 -servername api.portarium.example -tls1_3 >/dev/null 2>&1
echo | inpod timeout 10 openssl s_client -connect 203.0.113.10:443 -servername api.portarium.example -tls1_2 >/dev/null 2>&1
cap_stop

echo "== openssl_nosni"
cap_start openssl_nosni.pcap
echo | inpod timeout 10 openssl s_client -connect 203.0.113.10:443 -noservername >/dev/null 2>&1
cap_stop

echo "== gnutls"
cap_start gnutls.pcap
inpod timeout 10 gnutls-cli --insecure -p 443 203.0.113.10 --sni-hostname=allowed.example </dev/null >/dev/null 2>&1
cap_stop

echo "== python"
cap_start python.pcap
inpod /usr/bin/python3 - <<'EOF'
import socket, ssl, http.client
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with socket.create_connection(("203.0.113.10", 443), timeout=10) as s:
    with ctx.wrap_socket(s, server_hostname="allowed.example") as t:
        t.sendall(b"GET / HTTP/1.1\r\nHost: allowed.example\r\nConnection: close\r\n\r\n")
        try:
            while t.recv(4096):
                pass
        except Exception:
            pass
c = http.client.HTTPConnection("203.0.113.10", 80, timeout=10)
c.request("GET", "/", headers={"Host": "allowed.example"})
c.getresponse().read()
c.close()
EOF
cap_stop

echo "== plain_tcp"
cap_start plain_tcp.pcap
inpod /usr/bin/python3 - <<'EOF'
import socket
s = socket.create_connection(("203.0.113.250", 22), timeout=10)
s.sendall(b"SSH-2.0-test\r\n")
try:
    s.recv(4096)
except Exception:
    pass
s.close()
EOF
cap_stop

if [ "${CHROMIUM:-1}" != 0 ] && command -v chromium >/dev/null 2>&1; then
  echo "== chromium_pq"
  UDD="$(mktemp -d "$WORK/chrome.XXXXXX")"
  cap_start chromium_pq.pcap
  inpod timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$UDD" --ignore-certificate-errors \
    --host-resolver-rules="MAP * 203.0.113.10" --dump-dom https://allowed.example/ \
    >"$WORK/chromium.out" 2>"$WORK/chromium.err"
  echo "chromium rc=$? dom_bytes=$(wc -c <"$WORK/chromium.out")"
  cap_stop
  echo "chromium ClientHello (reassembled_len, sni):"
  tshark -r "$OUT/chromium_pq.pcap" -Y 'tls.handshake.type==1' -T fields \
    -e tcp.reassembled.length -e tls.handshake.extensions_server_name -e tcp.len 2>/dev/null
else
  SKIPPED+=(chromium_pq)
fi

chmod 644 "$OUT"/*.pcap 2>/dev/null

# ---------- summary ----------
echo
echo "== summary"
for f in "$OUT"/*.pcap; do
  echo "--- $(basename "$f") ($(stat -c %s "$f") bytes, $(tshark -r "$f" 2>/dev/null | wc -l) pkts)"
  tshark -r "$f" -Y 'tls.handshake.type==1 || http.request' -T fields \
    -e ip.src -e ipv6.src -e tcp.srcport -e tls.handshake.extensions_server_name -e http.host 2>/dev/null
done
[ ${#SKIPPED[@]} -gt 0 ] && echo "skipped: ${SKIPPED[*]}"
exit 0

#!/usr/bin/env bash
# How fast a browser gives up on QUIC when the node denies it: port unreachable (REJECT,
# what the node rules answer) against a silent drop. Debian's chromium with QUIC forced on
# the origin fetches a page from ngtcp2's server through a namespace that answers UDP 443
# not at all, with REJECT, and with DROP; the time until chromium reports the failure is
# what a client waits before it falls back to TCP. (Debian 12's curl has no HTTP/3.)
# Needs root, chromium, ngtcp2-server, openssl. Usage: bash bench/quic_fallback.sh
set -euo pipefail
command -v chromium >/dev/null && command -v gtlsserver >/dev/null || { echo "needs chromium and ngtcp2-server"; exit 1; }
W=$(mktemp -d) A=eifb$$-c B=eifb$$-s
cleanup() {
    for n in "$A" "$B"; do ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null || true; done
    sleep 0.2; ip netns del "$A" 2>/dev/null || true; ip netns del "$B" 2>/dev/null || true; rm -rf "$W"
}
trap cleanup EXIT
ip netns add "$A"; ip netns add "$B"
ip link add eth0 netns "$A" type veth peer name pod0 netns "$B"
for n in "$A" "$B"; do ip -n "$n" link set lo up; done
ip -n "$A" link set eth0 up; ip -n "$B" link set pod0 up
ip -n "$A" addr add 10.244.0.10/24 dev eth0; ip -n "$B" addr add 10.244.0.1/24 dev pod0
ip -n "$B" addr add 203.0.113.10/32 dev lo; ip -n "$A" route add default via 10.244.0.1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=allowed.example \
    -addext "subjectAltName=DNS:allowed.example" -keyout "$W/key.pem" -out "$W/cert.pem" 2>/dev/null
spki=$(openssl x509 -in "$W/cert.pem" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)
mkdir -p "$W/www"; echo page > "$W/www/index.html"
ip netns exec "$B" gtlsserver -q -d "$W/www" 203.0.113.10 443 "$W/key.pem" "$W/cert.pem" >/dev/null 2>&1 &
sleep 0.5
run() {
    rm -rf "$W/profile"
    local t0 t1
    t0=$(date +%s%N)
    ip netns exec "$A" timeout 60 chromium --headless --no-sandbox --disable-gpu --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$W/profile" \
        --enable-quic --origin-to-force-quic-on=allowed.example:443 --ignore-certificate-errors-spki-list="$spki" \
        --host-resolver-rules="MAP allowed.example 203.0.113.10" --dump-dom https://allowed.example/index.html \
        >"$W/out" 2>"$W/err" || true
    t1=$(date +%s%N)
    printf '| %s | %d | %s |\n' "$1" $(( (t1 - t0) / 1000000 )) "$(grep -o 'net::ERR_[A-Z_]*' "$W/err" | head -1 || true)"
}
echo "| UDP 443 at the server's side | chromium ms to the end | error |"
echo "|---|---|---|"
run "answered (no filter)"
ip netns exec "$B" iptables -A INPUT -p udp --dport 443 -j REJECT --reject-with icmp-port-unreachable
run "port unreachable (REJECT)"
ip netns exec "$B" iptables -F INPUT
ip netns exec "$B" iptables -A INPUT -p udp --dport 443 -j DROP
run "dropped"

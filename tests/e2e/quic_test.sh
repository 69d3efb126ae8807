#!/usr/bin/env bash
# End-to-end QUIC: ngtcp2's client (Debian's ngtcp2-client, gtlsclient) in a pod speaks
# HTTP/3 through the node rules and the daemon to ngtcp2's server (gtlsserver) in the
# internet namespace. The ground truth is the server's own log of the requests it served
# (":path: /MARKER"), not the daemon's. Checked: an allowed name over QUIC works and is
# logged l7 quic; a denied name never reaches the server and the client fails at once
# (ICMP port unreachable), so that a browser falls back to TCP; the same over IPv6;
# monitor mode logs the deny and lets it through; an allowed Initial lost after the node
# cannot let another on the same tuple through before the server answers; --quic block
# denies every QUIC flow (quic_not_inspected). Needs root. Traffic stays inside the namespaces this script
# creates; they are removed on exit, also on failure.
# Usage: quic_test.sh path/to/egress-inspector     Ends with 'N passed, N failed'.
set -euo pipefail
BIN=$(readlink -f "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
EI_TAG=eiquic$$
source "$HERE/topology.sh"
cleanup() {
    local rc=$?
    if [ "${FAILED:-0}" != 0 ] || [ "$rc" != 0 ]; then
        local dir=${EI_E2E_KEEP:-/tmp}
        cp "$WORK/daemon.log" "$dir/ei-quic-daemon.log" 2>/dev/null || true
        cp "$WORK/server.log" "$dir/ei-quic-server.log" 2>/dev/null || true
        echo "daemon and server logs kept in $dir/ei-quic-*"
    fi
    topology_cleanup
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in gtlsclient gtlsserver; do
    command -v "$tool" >/dev/null || { echo "$tool not found (apt-get install ngtcp2-client ngtcp2-server)"; exit 1; }
done
topology_up
make_cert "$WORK" allowed.example denied.example
mkdir -p "$WORK/www"
for m in $(seq -w 1 20); do echo "page $m" > "$WORK/www/q$m"; done
SERVER_LOG=$WORK/server.log
for addr in 203.0.113.10 2001:db8::10; do
    in_net gtlsserver -d "$WORK/www" --no-quic-dump "$addr" 443 "$WORK/key.pem" "$WORK/cert.pem" \
        >>"$SERVER_LOG" 2>&1 &
    EI_PIDS+=($!)
done
# IPv6 waits for duplicate address detection on the links (about 2 s)
for _ in $(seq 40); do
    ip -n "$NS_POD" -6 addr | grep -q tentative || ip -n "$NS_NODE" -6 addr | grep -q tentative ||
        ip -n "$NS_NET" -6 addr | grep -q tentative || break
    sleep 0.1
done

# the pod resolves the names to the server, as the cluster DNS would (gtlsclient sends
# its HOST argument as the server name)
mkdir -p "/etc/netns/$NS_POD"
pod_hosts() { echo "$1 allowed.example denied.example" > "/etc/netns/$NS_POD/hosts"; }
pod_hosts 203.0.113.10
RULES=$WORK/rules
echo "allow allowed.example" > "$RULES"
HOSTS=$WORK/hosts
printf '203.0.113.10 allowed.example denied.example\n203.0.113.20 allowed.example denied.example\n2001:db8::10 allowed.example denied.example\n' > "$HOSTS"
DAEMON_LOG=$WORK/daemon.log
node_rules() { in_node "$BIN" iptables --apply --in-iface veth-pod+ --hook forward --queue 0 "$@"; }
start_daemon() { # start_daemon [extra args]
    ip netns exec "$NS_NODE" "$BIN" run --rules "$RULES" --queue 0 --metrics 127.0.0.1:9157 \
        --hosts "$HOSTS" --resolver 127.0.0.1:9 "$@" >>"$DAEMON_LOG" 2>>"$WORK/daemon.err" &
    DAEMON=$!
    EI_PIDS+=($DAEMON)
    for _ in $(seq 50); do
        [ "$(in_node curl -s --max-time 1 http://127.0.0.1:9157/readyz 2>/dev/null)" = ready ] && return 0
        sleep 0.1
    done
    echo "daemon did not start:"; cat "$WORK/daemon.err"; return 1
}
stop_daemon() { kill -TERM "$DAEMON"; wait "$DAEMON" 2>/dev/null || true; }

# h3 NAME MARKER: the client asks https://NAME/MARKER over QUIC, NAME resolved by the
# pod's hosts file. gtlsclient exits 0 whether or not it got an answer: the server's log
# says what it served.
h3() {
    in_pod timeout 10 gtlsclient -q --exit-on-first-stream-close --handshake-timeout=3s --timeout=3s \
        "$1" 443 "https://$1/$2" >"$WORK/client.out" 2>&1 || true
}
served() { grep -q "\[:path: /$1\]" "$SERVER_LOG"; }
# refused NAME ADDR: one client Initial for NAME from a connected UDP socket; prints the ms
# until the ICMP port unreachable (ECONNREFUSED) came back, "answer", or "none" in 2 s
refused() {
    in_pod /usr/bin/python3 "$HERE/quic_refused.py" "$HERE/../pcaps" "$1" "$2"
}
fast() { [ "${1//[^0-9]/}" = "$1" ] && [ -n "$1" ] && [ "$1" -lt 1000 ]; }
# decision SRC NAME: "verdict reason enforced l7 quic_version" of the last decision line
decision() {
    /usr/bin/python3 -c '
import json, sys
last = ""
for line in open(sys.argv[1]):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if d.get("event") == "decision" and d.get("src") == sys.argv[2] and d.get("host") == sys.argv[3]:
        last = "%s %s %s %s %s" % (d["verdict"], d["reason"], str(d["enforced"]).lower(), d["l7"], d.get("quic_version"))
print(last)' "$DAEMON_LOG" "$1" "$2"
}
wait_decision() { # wait_decision SRC NAME WANT
    local got=""
    for _ in $(seq 20); do
        got=$(decision "$1" "$2")
        [ "$got" = "$3" ] && break
        sleep 0.1
    done
    echo "$got"
}

echo "== without the inspector: HTTP/3 works in this topology"
h3 allowed.example q01
check "gtlsclient fetches over QUIC with no node rules: the server served it" served q01

echo "== enforce, --quic inspect (the default)"
node_rules
start_daemon --mode enforce
h3 allowed.example q02
check "an allowed name over HTTP/3 works: the server served it" served q02
got=$(wait_decision 10.244.0.10 allowed.example "allow allowed_name false quic 1")
check "... decided allow allowed_name, l7 quic, version 1 (got: $got)" [ "$got" = "allow allowed_name false quic 1" ]
h3 denied.example q03
check "a denied name: the server never served it" not served q03
got=$(wait_decision 10.244.0.10 denied.example "deny name_not_allowed true quic 1")
check "... decided deny name_not_allowed (got: $got)" [ "$got" = "deny name_not_allowed true quic 1" ]
ms=$(refused denied.example 203.0.113.10)
check "... a client is refused at once, so a browser falls back to TCP (port unreachable: $ms ms)" fast "$ms"
pod_hosts 2001:db8::10
h3 allowed.example q04
check "IPv6: an allowed name works: the server served it" served q04
h3 denied.example q05
check "IPv6: a denied name: the server never served it" not served q05
got=$(wait_decision fd00:10:244::10 denied.example "deny name_not_allowed true quic 1")
check "... decided deny name_not_allowed (got: $got)" [ "$got" = "deny name_not_allowed true quic 1" ]
ms=$(refused denied.example 2001:db8::10)
check "... refused at once (port unreachable: $ms ms)" fast "$ms"

pod_hosts 203.0.113.10

echo "== attack: the judged Initial lost after the node, another one on the same tuple"
# A rule in the internet drops datagrams carrying connection ID A (as a loss past the node
# would); the recorder at 203.0.113.20:443 writes every connection ID it receives.
in_net iptables -A INPUT -p udp --dport 443 -m string --hex-string "|4141414141414141|" --algo bm -j DROP
LOST_LOG=$WORK/lost.log
in_net /usr/bin/python3 "$HERE/quic_lost.py" record 203.0.113.20 "$LOST_LOG" &
EI_PIDS+=($!)
for _ in $(seq 30); do grep -q ready "$LOST_LOG" 2>/dev/null && break; sleep 0.1; done
lost_attack() { in_pod /usr/bin/python3 "$HERE/quic_lost.py" send "$HERE/../pcaps" 203.0.113.20 allowed.example denied.example; }
lost_attack
sleep 0.3
check "the server never received the second Initial (connection ID B)" not grep -q 4242424242424242 "$LOST_LOG"
check "... the allow was revoked when it came" bash -c "grep '\"revoked\":true' '$DAEMON_LOG' | grep -q '\"dst\":\"203.0.113.20\"'"

echo "== monitor (SIGUSR2)"
kill -USR2 "$DAEMON"
for _ in $(seq 20); do grep -q '"to":"monitor"' "$DAEMON_LOG" && break; sleep 0.1; done
h3 denied.example q06
check "monitor: a denied name goes through: the server served it" served q06
got=$(wait_decision 10.244.0.10 denied.example "deny name_not_allowed false quic 1")
check "... logged deny, enforced false (got: $got)" [ "$got" = "deny name_not_allowed false quic 1" ]
lost_attack
sleep 0.3
check "monitor (nothing enforced): the same attack reaches the server, so the case is live" \
    grep -q 4242424242424242 "$LOST_LOG"
stop_daemon

echo "== --quic block"
node_rules --quic block
start_daemon --mode enforce --quic block
h3 allowed.example q07
check "--quic block: even an allowed name: the server never served it" not served q07
check "... decided quic_not_inspected" grep -q '"reason":"quic_not_inspected"' "$DAEMON_LOG"
ms=$(refused allowed.example 203.0.113.10)
check "... refused at once (port unreachable: $ms ms)" fast "$ms"
stop_daemon
check "every queued packet got its verdict" bash -c \
    "grep '\"event\":\"shutdown\"' '$DAEMON_LOG' | python3 -c 'import json,sys; print(all(json.loads(l)[\"queued\"] == json.loads(l)[\"verdicts\"] for l in sys.stdin))' | grep -q True"
in_node "$BIN" iptables --remove

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]

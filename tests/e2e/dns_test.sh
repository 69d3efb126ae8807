#!/usr/bin/env bash
# End-to-end DNS binding. dnsmasq runs in the "internet" namespace (203.0.113.53) and is
# the pod's resolver and the inspector's (--resolver). The node rules queue the answers to
# the pod (answer queue 1), so the daemon learns what the pod was told before the pod
# hears it; names it never saw answered, it looks up itself while the flow waits.
# Needs root. Traffic stays inside the namespaces this script creates; they, and the
# pod's resolv.conf under /etc/netns, are removed on exit, also on failure.
# Usage: dns_test.sh path/to/egress-inspector     Ends with 'N passed, N failed'.
set -euo pipefail
BIN=$(readlink -f "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
EI_TAG=eidns$$
source "$HERE/topology.sh"
cleanup() {
    local rc=$?
    if [ "${FAILED:-0}" != 0 ] || [ "$rc" != 0 ]; then
        cp "$WORK/daemon.log" "${EI_E2E_KEEP:-/tmp}/ei-dns-daemon.log" 2>/dev/null || true
        cp "$WORK/daemon.err" "${EI_E2E_KEEP:-/tmp}/ei-dns-daemon.err" 2>/dev/null || true
        cp "$WORK/cap.pcap" "${EI_E2E_KEEP:-/tmp}/ei-dns-cap.pcap" 2>/dev/null || true
        echo "daemon log kept in ${EI_E2E_KEEP:-/tmp}/ei-dns-daemon.log"
    fi
    [ -n "${DNS_PID:-}" ] && kill -CONT "$DNS_PID" 2>/dev/null
    topology_cleanup
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

topology_up
pod_dns_up
make_cert "$WORK" allowed.example '*.allowed.example'
start_servers "$WORK"

# start_dns TTL_ADDRESS: (re)starts dnsmasq; ttl.allowed.example has a 1 s TTL
start_dns() {
    if [ -n "${DNS_PID:-}" ]; then kill "$DNS_PID"; wait "$DNS_PID" 2>/dev/null || true; fi
    # ip netns exec execs dnsmasq: $! is dnsmasq itself, for kill -STOP below
    ip netns exec "$NS_NET" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
        --listen-address=203.0.113.53 --bind-interfaces --port=53 --user=root --pid-file= \
        --log-queries --log-facility="$WORK/dnsmasq.log" \
        --host-record=allowed.example,203.0.113.10,300 \
        --host-record=cap.allowed.example,203.0.113.10,300 \
        --host-record=own.allowed.example,203.0.113.10,300 \
        --host-record=stopped.allowed.example,203.0.113.10,300 \
        --host-record=svc.allowed.example,203.0.113.10,300 \
        --host-record=spoofed.allowed.example,203.0.113.10,300 \
        --host-record=edge.cdn.test,203.0.113.10,300 \
        --cname=www.allowed.example,edge.cdn.test \
        --host-record=v6.allowed.example,2001:db8::10,300 \
        --host-record=db.allowed.example,203.0.113.20,300 \
        --address=/miss.allowed.example/203.0.113.10 \
        --host-record=ttl.allowed.example,"$1",1 &
    DNS_PID=$!
    EI_PIDS+=($DNS_PID)
    for _ in $(seq 50); do
        in_node /usr/bin/python3 "$HERE/dnsq.py" 203.0.113.53 allowed.example >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "dnsmasq did not start"; return 1
}
start_dns 203.0.113.10

cat > "$WORK/rules" <<RULES
allow allowed.example
allow *.allowed.example
allow tcp://db.allowed.example:22
RULES
# The named resolvers: dnsmasq, the cluster DNS service address (a DNAT to dnsmasq, as
# kube-proxy makes one) and 203.0.113.20, whose malformed answer below must reach the parser.
RESOLVERS=(--dns-from 203.0.113.53 --dns-from 10.96.0.10 --dns-from 203.0.113.20)
in_node "$BIN" iptables --apply --in-iface veth-pod+ --hook forward --ports 80,443,22 --queue 0 "${RESOLVERS[@]}"
in_node iptables -t nat -A PREROUTING -d 10.96.0.10 -p udp --dport 53 -j DNAT --to-destination 203.0.113.53
DAEMON_LOG=$WORK/daemon.log
ip netns exec "$NS_NODE" "$BIN" run --rules "$WORK/rules" --queue 0 --ports 80,443,22 --metrics 127.0.0.1:9155 \
    --resolver 203.0.113.53 --dns-min-ttl 1 >>"$DAEMON_LOG" 2>>"$WORK/daemon.err" &
DAEMON=$!
EI_PIDS+=($DAEMON)
for _ in $(seq 50); do grep -q '"event":"start"' "$DAEMON_LOG" 2>/dev/null && break; sleep 0.1; done

metric() { # metric NAME: its value now (0 when absent)
    in_node curl -s http://127.0.0.1:9155/metrics | awk -v m="$1" '$1 == m { print $2; found=1 } END { if (!found) print 0 }'
}
fetch() { # fetch URL [curl args]: prints curl's exit code; the body goes to $WORK/body
    local url=$1 rc=0; shift
    in_pod curl -sk --max-time 5 "$url" -o "$WORK/body" "$@" 2>/dev/null || rc=$?
    echo "$rc"
}
fetched() { [ "$(fetch "$@")" = 0 ] && grep -q hello "$WORK/body"; }
refused_fast() { # the connection fails within 1 s (a reset)
    local t0 rc t1; t0=$(now_ms); rc=$(fetch "$@"); t1=$(now_ms)
    echo "    (curl exit $rc after $((t1 - t0)) ms)"
    [ "$rc" != 0 ] && [ $((t1 - t0)) -lt 1000 ]
}
decided() { # decided HOST DST REASON: the daemon logged that decision
    sleep 0.2
    grep '"event":"decision"' "$DAEMON_LOG" | grep "\"dst\":\"$2\"" | grep "\"host\":\"$1\"" | grep -q "\"reason\":\"$3\""
}
own_lookups() { echo $(( $(metric egress_inspector_dns_lookups_total) - $(metric egress_inspector_dns_refreshes_total) )); }

echo "== names the pod resolved itself"
check "the pod resolves allowed.example and fetches it" fetched https://allowed.example/
check "decided allowed_name at the answer's address" decided allowed.example 203.0.113.10 allowed_name
check "the daemon learned the pod's answer (answer queue)" test "$(metric egress_inspector_dns_answers_total)" -ge 1
check "no lookup of its own was needed" test "$(own_lookups)" = 0
check "the allowed SNI sent to another server's address is reset" \
    refused_fast https://allowed.example/ --resolve allowed.example:443:203.0.113.20
check "decided sni_ip_mismatch" decided allowed.example 203.0.113.20 sni_ip_mismatch
check "an HTTP Host sent to another server's address is reset" \
    refused_fast http://203.0.113.20/ -H "Host: allowed.example"
check "decided host_ip_mismatch" decided allowed.example 203.0.113.20 host_ip_mismatch
check "HTTP to the name's own address is allowed" fetched http://allowed.example/
check "a CNAME chain (www.allowed.example -> edge.cdn.test) binds its address" fetched https://www.allowed.example/
check "decided allowed_name for the alias" decided www.allowed.example 203.0.113.10 allowed_name
check "an AAAA answer binds the name over IPv6" fetched https://v6.allowed.example/ -6
check "decided allowed_name at the IPv6 address" decided v6.allowed.example 2001:db8::10 allowed_name

echo "== TTL expiry, then a new address"
check "ttl.allowed.example at its first address" fetched https://ttl.allowed.example/
start_dns 203.0.113.20
sleep 2.5
check "after the TTL, the pod resolves the new address and fetches it" fetched https://ttl.allowed.example/
check "decided allowed_name at the new address" decided ttl.allowed.example 203.0.113.20 allowed_name
check "the expired address no longer binds the name" \
    refused_fast https://ttl.allowed.example/ --resolve ttl.allowed.example:443:203.0.113.10
check "decided sni_ip_mismatch at the old address" decided ttl.allowed.example 203.0.113.10 sni_ip_mismatch

echo "== names the pod never resolved: the daemon looks them up, the flow waits"
check "a name the pod did not resolve is looked up and allowed" \
    fetched https://own.allowed.example/ --resolve own.allowed.example:443:203.0.113.10
check "decided allowed_name after a lookup of its own" decided own.allowed.example 203.0.113.10 allowed_name
check "the lookup is counted" test "$(own_lookups)" -ge 1
miss_us=$(grep '"host":"own.allowed.example"' "$DAEMON_LOG" | grep -o '"held_us":[0-9]*' | tail -1 | cut -d: -f2)
hit_line=$(grep '"host":"allowed.example"' "$DAEMON_LOG" | grep '"reason":"allowed_name"' | head -1)
hit_us=$(echo "$hit_line" | grep -o '"held_us":[0-9]*' | cut -d: -f2 || true)
echo "    measured: a flow held for a lookup (cache miss) waited ${miss_us:-?} us; on a hit ${hit_us:-0} us (not held)"
check "a cache hit holds nothing" test -z "$hit_us"
# 20 names nobody resolved before (n.miss.allowed.example): each waits for a lookup
for i in $(seq 20); do
    fetch "https://n$i.miss.allowed.example/" --resolve "n$i.miss.allowed.example:443:203.0.113.10" >/dev/null
done
sleep 0.3
held=$(grep '"host":"n[0-9]*.miss.allowed.example"' "$DAEMON_LOG" | grep '"reason":"allowed_name"' |
    grep -o '"held_us":[0-9]*' | cut -d: -f2 | sort -n)
echo "    measured: 20 cache misses held their flow $(echo $held | tr ' ' ,) us" \
     "(median $(echo "$held" | sed -n 10p) us, max $(echo "$held" | tail -1) us)"
check "20 cache misses: each looked up, held, and allowed" test "$(echo "$held" | grep -c .)" = 20

echo "== the resolver stops answering"
kill -STOP "$DNS_PID"
t0=$(now_ms)
( fetch https://stopped.allowed.example/ --resolve stopped.allowed.example:443:203.0.113.10 > "$WORK/stopped.rc" ) &
BG=$!
sleep 0.3
t1=$(now_ms)
check "meanwhile a name already bound is fetched at once" fetched https://allowed.example/ --resolve allowed.example:443:203.0.113.10
t2=$(now_ms)
echo "    (the bound name took $((t2 - t1)) ms while the other waited)"
check "... in under 1 s" test $((t2 - t1)) -lt 1000
wait "$BG" || true
t3=$(now_ms)
echo "    (the waiting flow ended after $((t3 - t0)) ms, curl exit $(cat "$WORK/stopped.rc"))"
check "the waiting flow is refused" test "$(cat "$WORK/stopped.rc")" != 0
check "decided dns_timeout" decided stopped.allowed.example 203.0.113.10 dns_timeout
check "within the 2 s bound (and not long after)" test $((t3 - t0)) -ge 1900 -a $((t3 - t0)) -lt 4000
sleep 2 # the resolver's own tries end too (they are not answered late)
kill -CONT "$DNS_PID"
sleep 0.5
check "the failed lookup is counted" test "$(metric egress_inspector_dns_lookup_failures_total)" -ge 1

echo "== tcp:// entries: any protocol to the name's addresses, at SYN time"
echo_ok() { # echo_ok IP: the echo server on IP:22 answers through the node
    in_pod /usr/bin/python3 -c "
import socket, sys
s = socket.create_connection(('$1', 22), 3); s.settimeout(3); s.recv(64); s.sendall(b'hi')
sys.exit(0 if s.recv(64) == b'echo hi' else 1)" 2>/dev/null
}
check "tcp://db.allowed.example:22 reaches db's address" echo_ok 203.0.113.20
check "decided allowed_tcp_name" bash -c "sleep 0.2; grep '\"dst\":\"203.0.113.20\"' '$DAEMON_LOG' | grep -q '\"reason\":\"allowed_tcp_name\"'"
check "the same port at another address is not allowed by it" not echo_ok 203.0.113.10

echo "== a malformed answer passes, teaches nothing, and is counted"
# the pod asks 203.0.113.20 (a named resolver) and gets a malformed answer back
in_net /usr/bin/python3 -c "
import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('203.0.113.20', 53)); s.settimeout(5)
q, peer = s.recvfrom(512)
s.sendto(q[:2] + bytes.fromhex('8180000100010000000003657669047465737400'), peer)" &
RESPONDER=$!
sleep 0.3
in_pod /usr/bin/python3 -c "
import socket, struct; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 53999)); s.settimeout(3)
s.sendto(struct.pack('>HHHHHH', 0x1234, 0x0100, 1, 0, 0, 0) + b'\x03evi\x04test\x00\x00\x01\x00\x01', ('203.0.113.20', 53))
open('$WORK/junk.got', 'wb').write(s.recv(512))" || true
wait "$RESPONDER" || true
check "the malformed answer reached the pod" test -s "$WORK/junk.got"
check "it is counted as malformed (truncated)" \
    test "$(metric 'egress_inspector_dns_answers_malformed_total{kind="truncated"}')" -ge 1

echo "== only the named resolvers teach, and only with answers to questions asked"
# a resolver of the pod's own choosing, which binds every name to 203.0.113.20
in_net /usr/bin/python3 -c "
import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('203.0.113.250', 53)); s.settimeout(5)
q, peer = s.recvfrom(512)
open('$WORK/rogue.got', 'wb').write(q)
s.sendto(q[:2] + b'\x81\x80' + q[4:6] + b'\x00\x01\x00\x00\x00\x00' + q[12:] + bytes.fromhex('c00c000100010000012c0004cb007114'), peer)" &
RESPONDER=$!
sleep 0.3
# (--coverage all: DNS goes only to the named resolvers; the question is refused on its way)
check "the pod asks a resolver of its own: refused" not in_pod /usr/bin/python3 "$HERE/dnsq.py" 203.0.113.250 own.allowed.example
check "... and the rogue resolver never got the question" test ! -e "$WORK/rogue.got"
check "decided dns_resolver_not_named" bash -c "grep '\"dst\":\"203.0.113.250\"' '$DAEMON_LOG' | grep -q '\"reason\":\"dns_resolver_not_named\"'"
kill "$RESPONDER" 2>/dev/null; wait "$RESPONDER" 2>/dev/null || true
check "its answer binds nothing: the allowed name at the rogue's address is reset" \
    refused_fast https://own.allowed.example/ --resolve own.allowed.example:443:203.0.113.20
check "decided sni_ip_mismatch (the binding is the named resolver's)" decided own.allowed.example 203.0.113.20 sni_ip_mismatch
# an answer nobody asked for, claiming the real resolver's address (scapy in the internet)
in_net /usr/bin/python3 -c "
from scapy.all import IP, UDP, DNS, DNSQR, DNSRR, send, conf
conf.verb = 0
send(IP(src='203.0.113.53', dst='10.244.0.10') / UDP(sport=53, dport=53000) /
     DNS(id=0x4242, qr=1, aa=1, qd=DNSQR(qname='spoofed.allowed.example'),
         an=DNSRR(rrname='spoofed.allowed.example', ttl=300, rdata='203.0.113.20')))"
check "an unasked answer from the resolver's address binds nothing" \
    refused_fast https://spoofed.allowed.example/ --resolve spoofed.allowed.example:443:203.0.113.20
check "decided sni_ip_mismatch for it" decided spoofed.allowed.example 203.0.113.20 sni_ip_mismatch
# the cluster DNS service: a DNAT from 10.96.0.10 to dnsmasq; the question goes to the
# service address, the answer comes from dnsmasq's until POSTROUTING puts it back
lookups_before=$(own_lookups)
check "the pod asks the service address (DNAT to the resolver)" in_pod /usr/bin/python3 "$HERE/dnsq.py" 10.96.0.10 svc.allowed.example
check "its answer binds: svc.allowed.example is fetched" fetched https://svc.allowed.example/ --resolve svc.allowed.example:443:203.0.113.10
check "... without a lookup of the daemon's own" test "$(own_lookups)" = "$lookups_before"

echo "== a capture of the pod's DNS answer and its connection replays the same way"
ip netns exec "$NS_NODE" timeout 10 tcpdump -i veth-pod --immediate-mode -U -w "$WORK/cap.pcap" 'port 53 or port 443' 2>/dev/null &
TD=$!
sleep 1
check "the pod resolves and fetches cap.allowed.example" fetched https://cap.allowed.example/
sleep 1
kill "$TD" 2>/dev/null; wait "$TD" 2>/dev/null || true
replay_decides() { # (grep reads to the end: with pipefail, -q would fail the replay on SIGPIPE)
    "$BIN" replay --rules "$WORK/rules" --pcap "$WORK/cap.pcap" | grep '"host":"cap.allowed.example"' |
        grep "\"reason\":\"$1\"" >/dev/null
}
check "replayed with the answer: allowed_name" replay_decides allowed_name
check "replayed with only a resolver not named (--dns-from): dns_unresolved" bash -c "
    '$BIN' replay --rules '$WORK/rules' --dns-from 203.0.113.99 --pcap '$WORK/cap.pcap' | grep '\"host\":\"cap.allowed.example\"' | grep -q dns_unresolved"
check "replayed with the questions filtered out (answers nobody asked): dns_unresolved" bash -c "
    tcpdump -r '$WORK/cap.pcap' -w '$WORK/noq.pcap' 'not dst port 53' 2>/dev/null &&
    '$BIN' replay --rules '$WORK/rules' --pcap '$WORK/noq.pcap' | grep '\"host\":\"cap.allowed.example\"' | grep -q dns_unresolved"
check "replayed with the answers filtered out: dns_unresolved" bash -c "
    tcpdump -r '$WORK/cap.pcap' -w '$WORK/noans.pcap' 'not port 53' 2>/dev/null &&
    '$BIN' replay --rules '$WORK/rules' --pcap '$WORK/noans.pcap' | grep '\"host\":\"cap.allowed.example\"' | grep -q dns_unresolved"

echo "== metrics"
check "the lookup latency histogram counts the lookups" \
    test "$(metric egress_inspector_dns_lookup_seconds_count)" -ge 2
check "dest checks: matches and mismatches counted" bash -c \
    "[ $(metric 'egress_inspector_dest_checks_total{result="match"}') -ge 5 ] && [ $(metric 'egress_inspector_dest_checks_total{result="mismatch"}') -ge 3 ]"

kill -TERM "$DAEMON"; wait "$DAEMON" 2>/dev/null || true
check "every queued packet got its verdict" bash -c \
    "grep '\"event\":\"shutdown\"' '$DAEMON_LOG' | /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); sys.exit(0 if d[\"queued\"] == d[\"verdicts\"] else 1)'"
in_node "$BIN" iptables --remove
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]

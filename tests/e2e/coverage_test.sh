#!/usr/bin/env bash
# End-to-end coverage: what the daemon decides besides the TLS and HTTP it reads, with real
# traffic from the pods through the node rules to servers in the "internet" namespace.
# --coverage all (the default) decides every flow a workload begins at its first packet
# by the address entries, and denies the rest with a reason of its own (TCP to another
# port, UDP, QUIC, ICMP, other IP protocols, DNS to a resolver not named by --dns-from);
# --mode monitor logs those denies and lets the traffic go; --coverage inspected --quic
# block judges only TCP to --ports. (UDP 443 here carries no QUIC: with --quic inspect,
# the default, it is quic_not_initial; tests/e2e/quic_test.sh speaks real QUIC.) The ground truth is what the servers' applications received
# (tests/e2e/coverage_servers.py records it); each case checks that, what the client saw
# (a reset or ICMP port unreachable within 1 s for denied TCP and UDP), and the daemon's
# decision line (reason, proto, enforced). The table at the end is the README's.
# Needs root. Traffic stays inside the namespaces this script creates; they are removed
# on exit, also on failure.
# Usage: coverage_test.sh path/to/egress-inspector     Ends with 'N passed, N failed'.
set -euo pipefail
BIN=$(readlink -f "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
PEERS=$HERE/coverage_servers.py
WORK=$(mktemp -d)
EI_TAG=eicov$$
source "$HERE/topology.sh"
cleanup() {
    local rc=$?
    if [ "${FAILED:-0}" != 0 ] || [ "$rc" != 0 ]; then
        local dir=${EI_E2E_KEEP:-/tmp}
        for f in daemon.log daemon.err server.log node-rules.txt; do
            cp "$WORK/$f" "$dir/ei-coverage-$f" 2>/dev/null || true
        done
        echo "daemon log, server log and node rules kept in $dir/ei-coverage-*"
    fi
    topology_cleanup
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

topology_up
pod_dns_up # 203.0.113.53, the named resolver
ip -n "$NS_NET" addr add 203.0.113.54/24 dev eth0 # a resolver of the pod's own choosing
make_cert "$WORK" allowed.example denied.example
SERVER_LOG=$WORK/server.log
in_net /usr/bin/python3 "$PEERS" serve --log "$SERVER_LOG" --cert "$WORK/cert.pem" --key "$WORK/key.pem" \
    2>"$WORK/server.err" &
EI_PIDS+=($!)
for _ in $(seq 50); do grep -q '"ev":"ready"' "$SERVER_LOG" 2>/dev/null && break; sleep 0.1; done
grep -q '"ev":"ready"' "$SERVER_LOG" || { echo "servers did not start:"; cat "$WORK/server.err"; exit 1; }
# IPv6 is not quite up before the link-local addresses' duplicate detection ends (~2 s): a
# first packet meanwhile waits a second for its neighbour's address
for _ in $(seq 40); do
    tentative=no
    for ns in "$NS_POD" "$NS_POD2" "$NS_NODE" "$NS_NET"; do
        ip -n "$ns" -6 addr | grep -q tentative && tentative=yes
    done
    [ "$tentative" = no ] && break
    sleep 0.1
done

RULES=$WORK/rules
cat > "$RULES" <<RULES
allow allowed.example
allow 203.0.113.250/32
allow 2001:db8::250/128
allow 203.0.113.20/32:5000
RULES
HOSTS=$WORK/hosts
echo "203.0.113.10 allowed.example denied.example" > "$HOSTS"

# run and iptables get the same --ports and --coverage. The named resolvers are the node
# rules' (--dns-from, by the conntrack entry's original destination): they let DNS to
# them go, so DNS that reaches the daemon went elsewhere. (Should run take --dns-from
# too, it gets it.)
COMMON=(--ports 80,443 --queue 0)
DNS_FROM=(--dns-from 203.0.113.53)
RUN_DNS_FROM=()
grep -q "unrecognized option" <<<"$("$BIN" run "${DNS_FROM[@]}" 2>&1 || true)" || RUN_DNS_FROM=("${DNS_FROM[@]}")

node_rules() { # node_rules [--coverage inspected]
    in_node "$BIN" iptables --apply --in-iface veth-pod+ --hook forward "${COMMON[@]}" "${DNS_FROM[@]}" "$@"
    { echo "== iptables --apply $*"; in_node iptables-save; in_node ip6tables-save; } >> "$WORK/node-rules.txt"
}
DAEMON_LOG=$WORK/daemon.log
start_daemon() { # start_daemon [extra args]
    # ip netns exec execs the daemon: $! is the daemon itself, and signals reach it
    ip netns exec "$NS_NODE" "$BIN" run --rules "$RULES" "${COMMON[@]}" "${RUN_DNS_FROM[@]}" \
        --metrics 127.0.0.1:9156 --hosts "$HOSTS" --resolver 127.0.0.1:9 "$@" \
        >>"$DAEMON_LOG" 2>>"$WORK/daemon.err" &
    DAEMON=$!
    EI_PIDS+=($DAEMON)
    for _ in $(seq 50); do
        [ "$(in_node curl -s --max-time 1 http://127.0.0.1:9156/readyz 2>/dev/null)" = ready ] && return 0
        sleep 0.1
    done
    echo "daemon did not start:"; cat "$WORK/daemon.err"; return 1
}
stop_daemon() { kill -TERM "$DAEMON"; wait "$DAEMON" 2>/dev/null || true; }

# ---- one case: a client in a pod, the server's record, the daemon's line ----
N=0
ROWS=()
POD_SRC=(10.244.0.10 fd00:10:244::10) POD2_SRC=(10.244.7.10 fd00:10:244:7::10)
field() { sed -n "s/.*\"$1\": \"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$2"; }
# run_client POD KIND DST ARG MARKER: prints the client's JSON line
run_client() {
    local pod=$1 kind=$2 dst=$3 arg=$4 marker=$5 ns=$NS_POD
    [ "$pod" = pod2 ] && ns=$NS_POD2
    case $kind in
    https|http)
        local host=$arg t0 rc=0 url target=$dst; [[ $dst == *:* ]] && target="[$dst]"
        if [ "$kind" = https ]; then url="https://$host/$marker"; else url="http://$host/$marker"; fi
        t0=$(now_ms)
        ip netns exec "$ns" curl -sk --max-time 3 --resolve "$host:443:$target" --resolve "$host:80:$target" \
            "$url" -o "$WORK/body" 2>/dev/null || rc=$?
        local result=error
        if [ "$rc" = 0 ] && grep -q "hello $host" "$WORK/body"; then result=reply
        elif [ "$rc" = 7 ] || [ "$rc" = 35 ] || [ "$rc" = 56 ]; then result=reset
        elif [ "$rc" = 28 ]; then result=timeout; fi
        echo "{\"result\": \"$result\", \"ms\": $(($(now_ms) - t0)), \"sport\": \"-\"}" ;;
    *) ip netns exec "$ns" /usr/bin/python3 "$PEERS" "$kind" "$dst" "$arg" "$marker" ;;
    esac
}
# try CONFIG POD KIND DST ARG EXPECT [LABEL]
#   KIND: tcp|udp PORT, dns|dnstcp 53, ping ID, raw PROTO, https|http HOST
#   EXPECT: allow:REASON, deny:REASON (enforced: not delivered; monitor: delivered, logged
#   with enforced false), or none (not judged: delivered, no decision line)
try() {
    local config=$1 pod=$2 kind=$3 dst=$4 arg=$5 expect=$6 label=${7:-}
    N=$((N + 1))
    local marker proto=$kind target=$dst
    [[ $dst == *:* ]] && target="[$dst]"
    marker=$(printf 'm%02d-%s' "$N" "$config")
    case $kind in
    dns) marker="$marker.example"; proto=udp ;;
    dnstcp) marker="$marker.example"; proto=tcp ;;
    https|http) proto=tcp ;;
    ping) if [[ $dst == *:* ]]; then proto=icmpv6; else proto=icmp; fi ;;
    raw) proto=$arg ;;
    esac
    local what
    case $kind in
    tcp|udp) what="$kind $target:$arg" ;;
    dns|dnstcp) what="dns/$proto $dst" ;;
    ping) what="$proto echo $dst" ;;
    raw) what="ip proto $arg $dst" ;;
    https|http) what="$kind $arg" ;;
    esac
    [ -n "$label" ] && what="$what ($label)"
    [ "$pod" = pod2 ] && what="$what [pod2]"
    local src=${POD_SRC[0]}
    [ "$pod" = pod2 ] && src=${POD2_SRC[0]}
    if [[ $dst == *:* ]]; then src=${POD_SRC[1]}; [ "$pod" = pod2 ] && src=${POD2_SRC[1]}; fi

    local skip out result ms sport
    skip=$(wc -l < "$DAEMON_LOG")
    out=$(run_client "$pod" "$kind" "$dst" "$arg" "$marker")
    result=$(field result "$out") ms=$(field ms "$out") sport=$(field sport "$out")
    [ "$kind" = raw ] && sport=-
    [ "$kind" = raw ] && sleep 0.3 # nothing answers: let it arrive (or not)

    local verdict=${expect%%:*} reason=${expect#*:} enforced=false
    [ "$verdict" = deny ] && [ "$config" != monitor ] && enforced=true
    local delivered=no want_delivered=yes want_line
    grep -qF -- "$marker" "$SERVER_LOG" && delivered=yes
    [ "$enforced" = true ] && want_delivered=no
    if [ "$verdict" = none ]; then want_line=""; else want_line="$verdict $reason $enforced"; fi
    # the decision line: wait for it (the log is written by a thread of its own)
    local line="" i
    for i in $(seq 20); do
        line=$(/usr/bin/python3 "$PEERS" decisions "$DAEMON_LOG" "$skip" "$src" "$sport" "$dst" "$proto")
        [ -n "$line" ] && [ -n "$want_line" ] && break
        [ -z "$want_line" ] && [ "$i" -ge 3 ] && break
        sleep 0.1
    done

    local tag="[$config] $what"
    check "$tag: server received: $delivered (want $want_delivered)" [ "$delivered" = "$want_delivered" ]
    case $want_delivered/$kind in
    yes/raw) ;; # no answer to wait for
    yes/*) check "$tag: client got an answer ($result, $ms ms)" [ "$result" = reply ] ;;
    no/ping|no/raw) check "$tag: client got no answer ($result)" [ "$result" != reply ] ;;
    no/https|no/http) check "$tag: client reset within 1 s ($result, $ms ms)" \
        [ "$result" = reset -a "$ms" -lt 1000 ] ;;
    no/udp|no/dns) check "$tag: client refused (ICMP port unreachable) within 1 s ($result, $ms ms)" \
        [ "$result" = refused -a "$ms" -lt 1000 ] ;;
    no/*) check "$tag: client reset within 1 s ($result, $ms ms)" [ "$result" = refused -a "$ms" -lt 1000 ] ;;
    esac
    local shown=${line:-no line}
    shown=$(echo "$shown" | tr '\n' '|' | sed 's/|$//')
    if [ -z "$want_line" ]; then
        check "$tag: not judged (decision line: $shown)" [ -z "$line" ]
    else
        check "$tag: decided '$want_line', proto $proto (got: $shown)" [ "$line" = "$want_line" ]
    fi
    local expected=$verdict
    [ "$verdict" = none ] && expected="pass"
    [ "$verdict" = deny ] && [ "$enforced" = false ] && expected="deny (logged)"
    local logged=${line:-"-"}
    logged=$(echo "$logged" | head -1 | awk '{print $1, $2}')
    [ -z "$line" ] && logged="- (not judged)"
    ROWS+=("$(printf '%-56s %-9s %-14s %-4s %-14s %s' "$what" "$config" "$expected" "$delivered" \
        "$result ${ms}ms" "$logged")")
}

echo "== 1. enforce, --coverage all (the default)"
node_rules
start_daemon
E=enforce
try $E pod  tcp    203.0.113.10  8443 deny:port_not_inspected
try $E pod  tcp    203.0.113.250 22   allow:allowed_address "address entry"
try $E pod  tcp    203.0.113.250 8443 allow:allowed_address "address entry"
try $E pod  tcp    203.0.113.20  5000 allow:allowed_address "port entry"
try $E pod  udp    203.0.113.10  443  deny:quic_not_initial
try $E pod  udp    2001:db8::10  443  deny:quic_not_initial
try $E pod  udp    203.0.113.10  5000 deny:udp_not_inspected
try $E pod  udp    203.0.113.20  5000 allow:allowed_address "port entry"
try $E pod  udp    203.0.113.20  5001 deny:udp_not_inspected "port entry is :5000"
try $E pod  udp    2001:db8::250 5000 allow:allowed_address "address entry"
try $E pod  ping   203.0.113.10  1101 deny:icmp_not_inspected
try $E pod  ping   203.0.113.250 1102 allow:allowed_address "address entry"
try $E pod2 ping   203.0.113.20  1103 deny:icmp_not_inspected "port entry: TCP/UDP only"
try $E pod  ping   2001:db8::10  1104 deny:icmp_not_inspected
try $E pod  ping   2001:db8::250 1105 allow:allowed_address "address entry"
try $E pod  raw    203.0.113.10  253  deny:proto_not_inspected
try $E pod  raw    203.0.113.250 253  allow:allowed_address "address entry"
try $E pod  dns    203.0.113.53  53   none "named resolver"
try $E pod  dns    203.0.113.54  53   deny:dns_resolver_not_named "not named"
try $E pod2 dnstcp 203.0.113.54  53   deny:dns_resolver_not_named "not named"
try $E pod  https  203.0.113.10  allowed.example allow:allowed_name
try $E pod  https  203.0.113.10  denied.example  deny:name_not_allowed
try $E pod  http   203.0.113.10  allowed.example allow:allowed_name

echo "== 2. monitor (SIGUSR2), --coverage all"
kill -USR2 "$DAEMON"
for _ in $(seq 20); do grep -q '"event":"mode","from":"enforce","to":"monitor"' "$DAEMON_LOG" && break; sleep 0.1; done
check "the mode change is logged" grep -q '"event":"mode","from":"enforce","to":"monitor"' "$DAEMON_LOG"
M=monitor
try $M pod  tcp    203.0.113.10  8443 deny:port_not_inspected
try $M pod  udp    203.0.113.10  443  deny:quic_not_initial
try $M pod  udp    2001:db8::10  443  deny:quic_not_initial
try $M pod  udp    203.0.113.10  5000 deny:udp_not_inspected
try $M pod  udp    203.0.113.20  5001 deny:udp_not_inspected "port entry is :5000"
# the very exchange denied in enforce (the same echo identifier): nothing of it stayed
# on the node, and the mode change judges it afresh
try $M pod  ping   203.0.113.10  1101 deny:icmp_not_inspected "the same identifier: judged afresh"
try $M pod2 ping   203.0.113.10  1201 deny:icmp_not_inspected
try $M pod2 ping   203.0.113.20  1202 deny:icmp_not_inspected "port entry: TCP/UDP only"
try $M pod  ping   2001:db8::10  1203 deny:icmp_not_inspected
try $M pod  raw    203.0.113.20  253  deny:proto_not_inspected "port entry: TCP/UDP only"
# a protocol without ports: the exchange denied in enforce, judged afresh too
try $M pod  raw    203.0.113.10  253  deny:proto_not_inspected "denied in enforce: judged afresh"
try $M pod  dns    203.0.113.54  53   deny:dns_resolver_not_named "not named"
try $M pod2 dnstcp 203.0.113.54  53   deny:dns_resolver_not_named "not named"
try $M pod  udp    203.0.113.20  5000 allow:allowed_address "port entry"
kill -USR1 "$DAEMON"
for _ in $(seq 20); do grep -q '"event":"mode","from":"monitor","to":"enforce"' "$DAEMON_LOG" && break; sleep 0.1; done
# (from pod2: repeated denies of one kind, source and port are one line per 10 s window)
try $E pod2 udp    203.0.113.10  5000 deny:udp_not_inspected "enforce again"
stop_daemon

echo "== 3. enforce, --coverage inspected --quic block (node rules and daemon): the old behaviour"
node_rules --coverage inspected --quic block
check "the node rules queue only TCP to the inspected ports" bash -c \
    "! ip netns exec $NS_NODE iptables-save | grep -q -- '-m conntrack --ctdir ORIGINAL -j NFQUEUE'"
start_daemon --coverage inspected --quic block
I=inspected
try $I pod  tcp    203.0.113.10  8443 none
try $I pod  udp    203.0.113.10  443  none
try $I pod  udp    2001:db8::10  443  none
try $I pod  udp    203.0.113.10  5000 none
try $I pod  ping   203.0.113.10  1301 none
try $I pod  ping   2001:db8::10  1302 none
try $I pod  raw    203.0.113.10  253  none
try $I pod  dns    203.0.113.54  53   none "not named"
try $I pod  https  203.0.113.10  allowed.example allow:allowed_name
try $I pod  https  203.0.113.10  denied.example  deny:name_not_allowed
stop_daemon
check "every queued packet got its verdict" bash -c \
    "grep '\"event\":\"shutdown\"' '$DAEMON_LOG' | tail -1 | /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); sys.exit(0 if d[\"queued\"] == d[\"verdicts\"] else 1)'"
in_node "$BIN" iptables --remove
check "iptables --remove leaves no chain of ours" bash -c "! ip netns exec $NS_NODE iptables-save | grep -q EGRESS-INSPECTOR"

echo
echo "coverage, as the servers saw it (pod 10.244.0.10, pod2 10.244.7.10; rules: allowed.example,"
echo "203.0.113.250/32, 2001:db8::250/128, 203.0.113.20/32:5000; --dns-from 203.0.113.53):"
printf '%-56s %-9s %-14s %-4s %-14s %s\n' "case" "config" "expected" "recv" "client" "decision"
printf '%s\n' "${ROWS[@]}"
echo
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]

#!/usr/bin/env bash
# End-to-end: the daemon on a node between pods and the internet, real clients and servers,
# node rules from `egress-inspector iptables --apply`. Needs root. Traffic stays inside the
# namespaces this script creates; they are removed on exit, also on failure.
# Usage: live_test.sh path/to/egress-inspector     Ends with 'N passed, N failed'.
set -euo pipefail
BIN=$(readlink -f "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
source "$HERE/topology.sh"
trap 'rc=$?; keep_logs $rc ei-e2e daemon.log daemon.err; topology_cleanup; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

topology_up
make_cert "$WORK" allowed.example '*.allowed.example' denied.example api.stripe.example new.example cm.example
start_servers "$WORK"

RULES=$WORK/rules
write_rules() { # write_rules [extra default-policy lines] [file]
cat > "${2:-$RULES}" <<RULES
allow allowed.example
allow *.allowed.example
${1:-}
allow 203.0.113.250/32:22
allow [2001:db8::250]:22
policy payments
source 10.244.7.0/24
source fd00:10:244:7::/64
allow api.stripe.example
RULES
}
write_rules
# The names these tests use, bound to the test servers (the DNS binding itself is tested
# with a real DNS server in dns_test.sh). No lookup leaves the node: the resolver is down.
HOSTS=$WORK/hosts
cat > "$HOSTS" <<HOSTS
203.0.113.10 allowed.example api.allowed.example denied.example api.stripe.example new.example cm.example
2001:db8::10 allowed.example a.b.allowed.example denied.example api.stripe.example
HOSTS

PORTS=(--ports 80,443,22) # the daemon and the node rules read the same ports
NODE_RULES=(--in-iface veth-pod+ --hook forward "${PORTS[@]}" --queue 0)
in_node "$BIN" iptables --apply "${NODE_RULES[@]}"
DAEMON_LOG=$WORK/daemon.log
start_daemon() { # start_daemon [extra args]
    # ip netns exec execs the daemon, so $! is the daemon itself and signals reach it
    ip netns exec "$NS_NODE" "$BIN" run --rules "$RULES" --queue 0 "${PORTS[@]}" --metrics 127.0.0.1:9153 \
        --hosts "$HOSTS" --resolver 127.0.0.1:9 "$@" \
        >>"$DAEMON_LOG" 2>>"$WORK/daemon.err" &
    DAEMON=$!
    EI_PIDS+=($DAEMON)
    for _ in $(seq 50); do grep -q '"event":"start"' "$DAEMON_LOG" 2>/dev/null && return 0; sleep 0.1; done
    echo "daemon did not start:"; cat "$WORK/daemon.err"; return 1
}
stop_daemon() { kill -TERM "$DAEMON"; wait "$DAEMON" 2>/dev/null || true; }
start_daemon
for _ in $(seq 50); do in_pod bash -c 'exec 3<>/dev/tcp/203.0.113.250/22' 2>/dev/null && break; sleep 0.1; done

# https NAME [IP] [extra curl args]: fetch over TLS from the pod; prints curl's exit code
https() {
    local name=$1 ip=${2:-203.0.113.10}; shift 2 || shift $#
    local target=$ip; [[ $ip == *:* ]] && target="[$ip]"
    in_pod curl -sk --max-time 5 --resolve "$name:443:$target" "https://$name/" -o "$WORK/body" "$@" \
        2>"$WORK/curl.err"; echo $?
}
allowed_https() { [ "$(https "$@")" = 0 ] && grep -q "hello" "$WORK/body"; }
# reset_fast NAME [IP]: the connection fails with a reset within 1 s
reset_fast() {
    local t0 rc t1; t0=$(now_ms); rc=$(https "$@"); t1=$(now_ms)
    echo "    (curl exit $rc after $((t1 - t0)) ms)"
    [ "$rc" != 0 ] && [ $((t1 - t0)) -lt 1000 ] && [ "$rc" = 35 -o "$rc" = 56 -o "$rc" = 7 ]
}
last_decision() { grep '"event":"decision"' "$DAEMON_LOG" | grep "\"host\":\"$1\"" | tail -1; }

echo "== names, IPv4 and IPv6"
check "allowed name connects and transfers (TLS 1.3, IPv4)" allowed_https allowed.example 203.0.113.10 --tlsv1.3
check "allowed wildcard connects (TLS 1.2, IPv4)" allowed_https api.allowed.example 203.0.113.10 --tls-max 1.2
check "allowed name connects over IPv6" allowed_https a.b.allowed.example 2001:db8::10
check "denied name is reset within 1 s (IPv4)" reset_fast denied.example 203.0.113.10
check "denied name is reset within 1 s (IPv6)" reset_fast denied.example 2001:db8::10
# The server's half of a denied connection is reset too: without it the server would wait
# for a ClientHello that never comes, until its own timeout (its socket shows ESTABLISHED).
server_half_reset() { # server_half_reset LOCAL_PORT [IP]
    local port=$1 ip=${2:-203.0.113.10} target=${2:-203.0.113.10}
    [[ $ip == *:* ]] && target="[$ip]"
    in_pod curl -sk --max-time 3 --local-port "$port" --resolve "denied.example:443:$target" \
        https://denied.example/ -o /dev/null 2>/dev/null || true
    sleep 0.3
    local left; left=$(in_net ss -Htn state established "( sport = :443 and dport = :$port )")
    echo "    server sockets of the denied connection left: ${left:-none}"
    [ -z "$left" ]
}
check "the server's half of a denied connection is reset too (IPv4)" server_half_reset 23001
check "the server's half of a denied connection is reset too (IPv6)" server_half_reset 23002 2001:db8::10
# the pipeline runs on the monotonic clock; its decision lines must still carry wall time
stamp_is_now() {
    grep '"event":"decision"' "$DAEMON_LOG" | tail -1 | /usr/bin/python3 -c '
import datetime, json, sys
ts = json.loads(sys.stdin.read())["ts"]
t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
lag = abs((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())
print("    last decision stamped", ts, "(%.1f s ago)" % lag)
sys.exit(0 if lag < 60 else 1)'
}
check "decision lines are stamped with wall time (the pipeline's clock is monotonic)" stamp_is_now
check "the deny is logged as enforced" bash -c "grep '\"host\":\"denied.example\"' '$DAEMON_LOG' | grep '\"verdict\":\"deny\"' | grep -q '\"enforced\":true'"
# s_client prints the server's certificate only once the handshake got that far
sclient_got_cert() {
    echo Q | in_pod timeout 5 openssl s_client -connect 203.0.113.10:443 "$@" >"$WORK/sclient.out" 2>&1 || true
    grep -q 'BEGIN CERTIFICATE' "$WORK/sclient.out"
}
check "openssl s_client with an allowed SNI completes a handshake" sclient_got_cert -servername allowed.example
check "openssl s_client without SNI is refused" not sclient_got_cert -noservername
check "python http.client over plain HTTP with an allowed Host" bash -c \
    "ip netns exec $NS_POD /usr/bin/python3 -c \"import http.client as h; c=h.HTTPConnection('203.0.113.10', 80, timeout=5); c.request('GET', '/', headers={'Host': 'allowed.example'}); assert c.getresponse().status == 200\""
check "plain HTTP with a denied Host fails" bash -c \
    "! ip netns exec $NS_POD curl -s --max-time 3 -H 'Host: denied.example' http://203.0.113.10/ >/dev/null"
check "an address entry allows a plain TCP service" bash -c \
    "ip netns exec $NS_POD /usr/bin/python3 -c \"import socket; s=socket.create_connection(('203.0.113.250', 22), 3); s.recv(64); s.sendall(b'hi'); assert s.recv(64) == b'echo hi'\""

echo "== metrics and health"
metric() { in_node curl -s --max-time 2 http://127.0.0.1:9153/metrics | awk -v m="$1" '$1 == m {print $2}'; }
check "/readyz says ready once the queue is bound" bash -c "[ \"\$(ip netns exec $NS_NODE curl -s http://127.0.0.1:9153/readyz)\" = ready ]"
check "/healthz says the loop is alive" bash -c "[ \"\$(ip netns exec $NS_NODE curl -s http://127.0.0.1:9153/healthz)\" = ok ]"
allows=$(metric 'egress_inspector_decisions_total{verdict="allow",reason="allowed_name"}')
denies=$(metric 'egress_inspector_decisions_total{verdict="deny",reason="name_not_allowed"}')
decided=$(grep '"event":"decision"' "$DAEMON_LOG" | grep -c '"reason":"allowed_name"')
echo "    metrics: allowed_name $allows, name_not_allowed $denies; log: allowed_name $decided"
check "the decision counters move as the flows did" [ "${allows:-0}" = "$decided" -a "${denies:-0}" -ge 3 ]
queued=$(metric 'egress_inspector_packets_total{queue="0"}')
check "the queue counters move ($queued packets)" [ "${queued:-0}" -gt 10 ]
check "the mode is exported" [ "$(metric 'egress_inspector_mode{mode="enforce"}')" = 1 ]
check "the resets sent to servers are counted" [ "$(metric egress_inspector_server_resets_total)" -ge 2 ]
check "the decision latency histogram counts every decision (log lines may be aggregated)" \
    [ "$(metric 'egress_inspector_decision_hold_seconds_count')" -ge "$(grep -c '"event":"decision"' "$DAEMON_LOG")" ]
# a second daemon cannot bind the taken queue: it exits and never says ready
second_daemon_refused() {
    local rc=0
    in_node timeout 10 "$BIN" run --rules "$RULES" --queue 0 "${PORTS[@]}" --metrics 127.0.0.1:9154 >/dev/null 2>"$WORK/second.err" || rc=$?
    ! in_node curl -s --max-time 1 http://127.0.0.1:9154/readyz >/dev/null && [ "$rc" = 1 ] &&
        grep -q "cannot bind NFQUEUE" "$WORK/second.err"
}
check "a daemon whose queue is taken exits and is never ready" second_daemon_refused

echo "== two pods, two policies"
https_pod2() { in_pod2 curl -sk --max-time 5 --resolve "$1:443:203.0.113.10" "https://$1/" -o /dev/null; }
check "pod2 (payments) reaches api.stripe.example" https_pod2 api.stripe.example
check "pod2 is denied allowed.example (not in its policy)" not https_pod2 allowed.example
check "pod1 is denied api.stripe.example" reset_fast api.stripe.example

echo "== monitor and enforce by signal"
kill -USR2 "$DAEMON"; sleep 0.3
check "monitor lets the denied name through" allowed_https denied.example
check "monitor logs the would-deny with enforced false" bash -c \
    "grep '\"host\":\"denied.example\"' '$DAEMON_LOG' | tail -1 | grep -q '\"verdict\":\"deny\".*\"mode\":\"monitor\",\"enforced\":false'"
check "the mode change is logged" grep -q '"event":"mode","from":"enforce","to":"monitor"' "$DAEMON_LOG"
kill -USR1 "$DAEMON"; sleep 0.3
check "enforce again: the denied name is reset" reset_fast denied.example

echo "== reload"
check "new.example is denied before the reload" reset_fast new.example
write_rules "allow new.example"
kill -HUP "$DAEMON"; sleep 0.5
check "SIGHUP with a changed file allows a new name" allowed_https new.example
write_rules "allow new.example
allow bad..name"
kill -HUP "$DAEMON"; sleep 0.5
check "a broken file is rejected and logged" grep -q '"event":"reload".*"result":"rejected"' "$DAEMON_LOG"
check "the old rules stay in force" allowed_https new.example
check "the broken file's error names its line" grep -q "rules:4: bad name 'bad..name'" "$WORK/daemon.err"
write_rules "allow new.example"

echo "== a ConfigMap update (symlink swap, no signal) reloads the rules"
# kubelet's layout: rules -> ..data/rules, ..data -> ..2026_1; an update writes a new
# directory and renames a new ..data link over the old one
stop_daemon
mkdir -p "$WORK/cm/..2026_1" "$WORK/cm/..2026_2"
write_rules "allow new.example" "$WORK/cm/..2026_1/rules"
ln -s ..2026_1 "$WORK/cm/..data"
ln -s ..data/rules "$WORK/cm/rules"
RULES=$WORK/cm/rules
start_daemon
check "cm.example is denied before the update" not allowed_https cm.example
write_rules "allow new.example
allow cm.example" "$WORK/cm/..2026_2/rules"
ln -s ..2026_2 "$WORK/cm/..data_tmp"
mv -T "$WORK/cm/..data_tmp" "$WORK/cm/..data"
sleep 0.6
check "the swap was seen and applied" grep -q '"event":"reload".*"trigger":"inotify","result":"applied"' "$DAEMON_LOG"
check "cm.example is allowed after the update, with no signal sent" allowed_https cm.example

echo "== SIGTERM under load"
for i in $(seq 16); do
    ( for _ in $(seq 40); do in_pod curl -sk --max-time 3 --resolve allowed.example:443:203.0.113.10 https://allowed.example/ -o /dev/null; done ) &
    LOAD[$i]=$!
done
sleep 1.5
stop_daemon
check "every queued packet got a verdict (queued == verdicts)" bash -c \
    "grep '\"event\":\"shutdown\"' '$DAEMON_LOG' | tail -1 | /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(\"    queued\", d[\"queued\"], \"verdicts\", d[\"verdicts\"]); sys.exit(0 if d[\"queued\"] == d[\"verdicts\"] and d[\"queued\"] > 0 else 1)'"
t0=$(now_ms)
for pid in "${LOAD[@]}"; do wait "$pid" 2>/dev/null || true; done
t1=$(now_ms)
check "no client hangs after the daemon stops (all done in $((t1 - t0)) ms)" [ $((t1 - t0)) -lt 15000 ]

echo "== fail closed, fail open, restart"
check "fail closed: with the daemon gone, new flows are blocked" not allowed_https allowed.example 203.0.113.10 --max-time 2
in_node "$BIN" iptables --apply "${NODE_RULES[@]}" --fail open
check "fail open: with the daemon gone, new flows pass" allowed_https allowed.example
in_node "$BIN" iptables --apply "${NODE_RULES[@]}"
start_daemon
# a long-lived connection accepted before a restart keeps working after it
exec 5< <(in_pod /usr/bin/python3 -c "
import socket, ssl, sys, time
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection(('203.0.113.10', 443), 5), server_hostname='allowed.example')
s.settimeout(5)
for i in range(2):
    s.sendall(b'GET / HTTP/1.1\r\nHost: allowed.example\r\n\r\n')
    got = b''
    while b'hello' not in got:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    print('ok' if b'hello' in got else 'bad', flush=True)
    if i == 0: time.sleep(3)
")
read -r -t 5 first <&5 || first=none
stop_daemon
# a 1 s window for repeated denies, so that the replayed denies below are logged in full
start_daemon --log-interval 1
read -r -t 10 second <&5 || second=none
check "a restarted daemon resumes: new flows are judged again" allowed_https allowed.example
check "a flow accepted before the restart keeps working ($first/$second)" [ "$first/$second" = ok/ok ]
check "and a denied name is still reset" reset_fast denied.example

echo "== a capture replayed into the pod interface gives the replay's decisions"
sleep 2.2 # let the deny window of the checks above close
PCAP=$HERE/../pcaps/crafted
MAC=$(ip -n "$NS_NODE" link show veth-pod | awk '/ether/ {print $2}')
# each capture gets its own client port, so that no two share a connection; the pod's own
# stack has no socket for these connections and would reset them when the server answers,
# racing the replayed packets: its resets are dropped meanwhile (tcpreplay's packets do not
# pass the pod's OUTPUT chain)
in_pod iptables -A OUTPUT -p tcp --tcp-flags RST RST -j DROP
port=21000 # below the ephemeral range, so no client of the earlier checks used it
for f in ok_tls13 deny_name two_names ok_http; do
    port=$((port + 1))
    tcprewrite --enet-dmac="$MAC" --portmap=40000:$port --infile="$PCAP/$f.pcap" --outfile="$WORK/$f.pcap" 2>/dev/null
    # only the client's packets: the pod sends them, the real server answers
    tcpdump -r "$WORK/$f.pcap" -w "$WORK/$f.client.pcap" 'src host 10.244.0.10' 2>/dev/null
    in_pod tcpreplay -q -i eth0 "$WORK/$f.client.pcap" >/dev/null 2>&1
done
sleep 0.5
in_pod iptables -D OUTPUT -p tcp --tcp-flags RST RST -j DROP
# the decision the daemon logged for a client port, as "verdict reason host"
decision_for_port() {
    grep '"event":"decision"' "$DAEMON_LOG" | /usr/bin/python3 -c \
        "import json,sys; [print(d['verdict'], d['reason'], d['host']) for d in map(json.loads, sys.stdin) if d['sport'] == $1]"
}
# A blind replay of a capture's client packets is what a pod with a raw socket can send:
# the real server never took that ISN nor sent what those packets acknowledge, so the
# daemon, which sees the server's SYN-ACK, must never allow it (replay, which reads the
# capture's own server, does allow two of them). The server's reaction (a reset) may also
# end the flow before its data: then no line at all, which is no allow either.
blind_replay_never_allowed() {
    local f=$1 port=$2 want got
    want=$("$BIN" replay --rules "$WORK/rules" --hosts "$HOSTS" --pcap "$PCAP/$f.pcap" | /usr/bin/python3 -c \
        'import json,sys; [print(d["verdict"], d["reason"], d["host"]) for d in map(json.loads, sys.stdin)]')
    got=$(decision_for_port "$port")
    echo "    replay of the capture: $want | live, blind: ${got:-no line}"
    [ -n "$want" ] && ! grep -q '^allow' <<<"$got"
}
port=21000 # below the ephemeral range, so no client of the earlier checks used it
for f in ok_tls13 deny_name two_names ok_http; do
    port=$((port + 1))
    check "a blind tcpreplay of $f's client side is never allowed live" blind_replay_never_allowed "$f" "$port"
done
check "the blind replays are denied for what the stream shows (bad ack, no handshake, midstream)" bash -c \
    "grep '\"event\":\"decision\"' '$DAEMON_LOG' | grep -E '\"sport\":2100[1-4]' | grep -qE 'tcp_bad_ack|tcp_no_handshake|midstream'"
stop_daemon

echo "== a log reader that never reads does not slow the queue"
# stdout is a FIFO held open and never read: its 64 kB fill, then a 4 kB log buffer, then
# lines are dropped (counted); the queue thread must not wait for any of it
mkfifo "$WORK/stalled"
exec 7<>"$WORK/stalled"
ip netns exec "$NS_NODE" "$BIN" run --rules "$RULES" --queue 0 "${PORTS[@]}" --metrics 127.0.0.1:9153 \
    --hosts "$HOSTS" --resolver 127.0.0.1:9 --log-buffer 4096 >"$WORK/stalled" 2>>"$WORK/daemon.err" &
DAEMON=$!
EI_PIDS+=($DAEMON)
for _ in $(seq 50); do [ "$(in_node curl -s --max-time 1 http://127.0.0.1:9153/readyz)" = ready ] && break; sleep 0.1; done
ok=0
t0=$(now_ms)
for _ in $(seq 300); do
    [ "$(https allowed.example 203.0.113.10)" = 0 ] && ok=$((ok + 1))
done
t1=$(now_ms)
dropped=$(metric egress_inspector_log_lines_dropped_total)
check "300 allowed connections all complete with the log stalled ($ok ok in $((t1 - t0)) ms)" [ "$ok" = 300 ]
check "the lines that found no room are counted (${dropped:-none} dropped)" [ "${dropped:-0}" -gt 0 ]
check "the pipe's reader still being stalled, the daemon's queue loop is healthy" \
    bash -c "[ \"\$(ip netns exec $NS_NODE curl -s http://127.0.0.1:9153/healthz)\" = ok ]"
t0=$(now_ms)
stop_daemon
t1=$(now_ms)
check "SIGTERM with the log stalled still exits, bounded ($((t1 - t0)) ms)" [ $((t1 - t0)) -lt 6000 ]
check "and says what it could not write" grep -q "bytes of log could not be written" "$WORK/daemon.err"
exec 7>&-
in_node "$BIN" iptables --remove
check "iptables --remove leaves no chain of ours" bash -c "! ip netns exec $NS_NODE iptables-save | grep -q EGRESS-INSPECTOR"

echo "figures: $(grep -c '"event":"decision"' "$DAEMON_LOG") decisions," \
     "$(grep '"event":"decision"' "$DAEMON_LOG" | grep -c '"verdict":"allow"') allowed," \
     "$(grep '"event":"decision"' "$DAEMON_LOG" | grep -c '"enforced":true') reset"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]

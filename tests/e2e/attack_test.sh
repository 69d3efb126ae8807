#!/usr/bin/env bash
# Live attacks on the daemon: TCP insertion and evasion (Ptacek & Newsham 1998, Geneva),
# state loss (restart, flood, idle), keep-alive, preambles. Needs root.
# Usage: attack_test.sh path/to/egress-inspector        Ends with 'N passed, N failed'.
# EI_ATTACK_MODE=monitor runs the same cases with the daemon in monitor mode: it then lets
# everything through, so every case except the allowed controls must FAIL. That shows each
# attack is live (its bytes reach the server, whose application reads the denied name),
# so that a pass in enforce mode is the daemon's doing and not the harness's.
# EI_ATTACK_MODE=none applies no node rules and starts no daemon: what the servers' stack
# makes of each case by itself (the same expectations as monitor).
#
# pod -> node (daemon, node rules on FORWARD) -> net (a router) -> srv (the servers)
# The net <-> srv link has an MTU of 1280, so a packet of 1400 bytes with DF passes the node
# and dies at the router, and so does a TTL (hop limit) of 2 from the pod. allowed.example
# and denied.example share the server's addresses (a CDN): only the stream can tell them
# apart. tests/e2e/attacks.py (scapy, in the pod) plays the client; tests/e2e/recorder.py
# (in srv) records everything its application read. A case's verdict is only what that
# application read from the case's client port: never the denied name (or the case's
# marker). The daemon's decision for the port is printed for information, never judged.
# Traffic stays inside the namespaces made here; they and every process are removed on
# exit, also on failure.
set -euo pipefail
BIN=$(readlink -f "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
EI_TAG=atk$$
source "$HERE/topology.sh"
NS_SRV=${EI_TAG}-srv
PY=/usr/bin/python3
in_srv() { ip netns exec "$NS_SRV" "$@"; }

attack_cleanup() {
    ip netns pids "$NS_SRV" 2>/dev/null | xargs -r kill 2>/dev/null || true
    topology_cleanup
    ip netns del "$NS_SRV" 2>/dev/null || true
}
trap 'rc=$?; keep_logs $rc ei-attack daemon.log daemon.err recorder.log; attack_cleanup; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

V4=198.51.100.10 V6=2001:db8:1::10
topology_up
# ---- the servers' namespace, behind the net namespace (now a router) ----
ip netns add "$NS_SRV"
ip -n "$NS_SRV" link set lo up
ip link add srv0 netns "$NS_NET" type veth peer name eth0 netns "$NS_SRV"
ip -n "$NS_NET" link set srv0 mtu 1280 up
ip -n "$NS_SRV" link set eth0 mtu 1280 up
ip -n "$NS_NET" addr add 198.51.100.1/24 dev srv0
ip -n "$NS_NET" addr add 2001:db8:1::1/64 dev srv0 nodad
ip -n "$NS_SRV" addr add $V4/24 dev eth0
ip -n "$NS_SRV" addr add $V6/64 dev eth0 nodad
in_net sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
ip -n "$NS_SRV" route add default via 198.51.100.1
ip -n "$NS_SRV" -6 route add default via 2001:db8:1::1
ip -n "$NS_NODE" route add 198.51.100.0/24 via 192.0.2.2
ip -n "$NS_NODE" -6 route add 2001:db8:1::/64 via 2001:db8:ffff::2

# scapy drives whole sessions from the pod: the pod's own stack, which knows nothing of
# them, must not reset them (packets scapy sends leave through a packet socket, not OUTPUT)
in_pod iptables -A OUTPUT -p tcp --tcp-flags RST RST -j DROP
in_pod ip6tables -A OUTPUT -p tcp --tcp-flags RST RST -j DROP

# Client ports: the cases' own (20000-29999, below the pod's ephemeral range). The reuse
# cases' ports are reset by the server after their first read.
P_REUSE4=20120 P_REUSE6=20121
REC_LOG=$WORK/recorder.log
in_srv $PY "$HERE/recorder.py" serve --log "$REC_LOG" --ports 80,443 --http-ports 80 --idle 20 \
    --reset-ports "$P_REUSE4,$P_REUSE6" >"$WORK/recorder.out" 2>&1 &
EI_PIDS+=($!)
for _ in $(seq 50); do
    in_srv ss -ltn | grep -q ':443 ' && in_srv ss -ltn | grep -q ':80 ' && break
    sleep 0.1
done

RULES=$WORK/rules
printf 'allow allowed.example\nallow *.allowed.example\n' > "$RULES"
HOSTS=$WORK/hosts
printf '%s allowed.example denied.example\n%s allowed.example denied.example\n' $V4 $V6 > "$HOSTS"
MODE=${EI_ATTACK_MODE:-enforce}
echo "daemon: $("$BIN" version 2>&1 | head -1), mode $MODE"
# exactly the node rules the README recommends (its defaults for whatever else it offers)
[ "$MODE" = none ] || in_node "$BIN" iptables --apply --in-iface veth-pod+ --hook forward --ports 80,443 --queue 0
DAEMON_LOG=$WORK/daemon.log
start_daemon() { # start_daemon [extra args]
    [ "$MODE" != none ] || return 0
    local n; n=$(grep -c '"event":"start"' "$DAEMON_LOG" 2>/dev/null || true)
    # a 1 s window for repeated denies, so that nearly every case's decision is logged in full
    ip netns exec "$NS_NODE" "$BIN" run --rules "$RULES" --queue 0 --metrics 127.0.0.1:9153 \
        --hosts "$HOSTS" --resolver 127.0.0.1:9 --log-interval 1 --mode "$MODE" "$@" \
        >>"$DAEMON_LOG" 2>>"$WORK/daemon.err" &
    DAEMON=$!
    EI_PIDS+=($DAEMON)
    for _ in $(seq 50); do
        [ "$(grep -c '"event":"start"' "$DAEMON_LOG" 2>/dev/null || true)" -gt "${n:-0}" ] && return 0
        sleep 0.1
    done
    echo "daemon did not start:"; cat "$WORK/daemon.err"; return 1
}
stop_daemon() {
    [ "$MODE" != none ] || return 0
    kill -TERM "$DAEMON" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$DAEMON" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DAEMON" 2>/dev/null || true
    wait "$DAEMON" 2>/dev/null || true
}
has_option() { local h; h=$({ "$BIN" help; "$BIN" run --help; } 2>&1 || true); grep -q -- "$1" <<<"$h"; }
start_daemon
# the path works end to end before any case runs (a bare connect: no name needed)
for _ in $(seq 50); do in_pod timeout 2 bash -c "exec 3<>/dev/tcp/$V4/443" 2>/dev/null && break; sleep 0.1; done

# ---- the cases ----
# A case: NAME, its attacks.py line, what the app must (not) have read (recorder.py's
# --expect), the client port. They run in batches (scapy takes ~2 s to import), then each
# is judged from the recorder's log.
NAMES=() SPECS=() EXPECTS=() PORTS=() MARKERS=()
MARK=EXFILTRATED-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
port=20000
add() { # add NAME EXPECT CASE [DST] [extra attacks.py args]
    local name=$1 expect=$2 case=$3 dst=${4:-$V4}; shift 3; shift || true
    port=$((port + 1))
    local p=$port
    case $case in reuse) [[ $dst == *:* ]] && p=$P_REUSE6 || p=$P_REUSE4 ;; esac
    NAMES+=("$name") EXPECTS+=("$expect") PORTS+=("$p") MARKERS+=("$MARK")
    SPECS+=("$case --dst $dst --sport $p --marker $MARK $*")
}
section() { # a heading, printed where the cases after it are judged
    NAMES+=("$1") EXPECTS+=("") PORTS+=("") MARKERS+=("") SPECS+=("")
}
run_batch() { # run_batch FIRST_INDEX: runs SPECS[FIRST..] in one attacks.py process
    local i
    for ((i = $1; i < ${#SPECS[@]}; i++)); do if [ -n "${SPECS[$i]}" ]; then echo "${SPECS[$i]}"; fi; done > "$WORK/batch"
    in_pod timeout "${BATCH_TIMEOUT:-60}" $PY "$HERE/attacks.py" batch < "$WORK/batch" >> "$WORK/attacks.out" 2>&1 || true
}
decisions() { # the daemon's decision lines for a client port, for information
    [ "$MODE" != none ] || { echo "(no daemon)"; return 0; }
    grep '"event":"decision"' "$DAEMON_LOG" 2>/dev/null | $PY -c '
import json, sys
port = int(sys.argv[1])
out = []
for line in sys.stdin:
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if d.get("sport") == port:
        out.append("%s %s%s%s" % (d.get("verdict"), d.get("reason"),
                   " host=%s" % d["host"] if d.get("host") else "", " [midstream]" if d.get("midstream") else ""))
print("; ".join(out) if out else "no decision line (none, or aggregated with an earlier deny)")' "$1"
}
judge() { # judge INDEX
    local i=$1 p=${PORTS[$1]}
    grep " sport=$p:" "$WORK/attacks.out" | sed 's/^  /    attacker: /' || echo "    attacker: no output"
    echo "    daemon: $(decisions "$p")"
    $PY "$HERE/recorder.py" verdict --log "$REC_LOG" --sport "$p" --expect "${EXPECTS[$i]}" --marker "${MARKERS[$i]}"
}
judge_from() { # judge_from FIRST_INDEX
    local i
    for ((i = $1; i < ${#SPECS[@]}; i++)); do
        if [ -z "${SPECS[$i]}" ]; then echo "${NAMES[$i]}"; else check "${NAMES[$i]}" judge "$i"; fi
    done
}
settle() { # lets the last segments arrive and the recorder read them
    sleep "${1:-1.5}"
}

section "== controls (must pass: the harness works)"
add "control: honest allowed ClientHello is read by the app" allowed control_allowed
add "control: honest denied ClientHello is not read by the app" insertion control_denied
add "control: honest allowed ClientHello over IPv6 is read by the app" allowed control_allowed $V6
run_batch 0
P_CURL=29999
in_pod curl -sk --max-time 3 --local-port $P_CURL --resolve "allowed.example:443:$V4" \
    https://allowed.example/ -o /dev/null 2>/dev/null || true
settle
judge_from 0
curl_read() {
    echo "    daemon: $(decisions $P_CURL)"
    $PY "$HERE/recorder.py" verdict --log "$REC_LOG" --sport $P_CURL --expect allowed
}
check "control: curl https://allowed.example reaches the app with its ClientHello" curl_read

FIRST=${#SPECS[@]}
section "== insertion: a segment the server discards carries an allowed ClientHello, the real one names denied.example"
add "bad TCP checksum" insertion bad_checksum
add "bad TCP checksum (IPv6)" insertion bad_checksum $V6
add "TTL 2 (dies at the router)" insertion ttl
add "hop limit 2 (IPv6)" insertion ttl $V6
add "1400 bytes with DF over a 1280 link" insertion mtu_df
add "1400 bytes over a 1280 link (IPv6)" insertion mtu_df $V6
add "no ACK flag" insertion no_ack
add "ACK of data never sent" insertion bad_ack
add "PAWS: a stale timestamp" insertion paws
add "TCP-MD5 option on a connection without a key" insertion md5
add "SYN+ACK flags with data" insertion synack_data
add "data on the SYN (no Fast Open)" insertion syn_data
add "a second SYN on the established connection" insertion resyn
add "two SYNs: allowed on the ISN the server did not ack" insertion two_syns
add "4-tuple reuse after the server's reset" denied reuse
add "4-tuple reuse after the server's reset (IPv6)" denied reuse $V6
add "URG: the urgent byte changes the app's ClientHello" nothing urgent
add "4-tuple reuse after the client's own reset" denied reuse_client_rst
section "== more from the literature"
add "RST with TTL 2, then the denied ClientHello" insertion rst_ttl
add "RST with hop limit 2, then the denied ClientHello (IPv6)" insertion rst_ttl $V6
add "a second SYN and the allowed ClientHello, both with TTL 2" insertion resyn_ttl
add "RST, SYN and allowed ClientHello with TTL 2, then the denied one" insertion rst_ttl_resyn
add "RST, SYN and allowed ClientHello with hop limit 2, then the denied one (IPv6)" insertion rst_ttl_resyn $V6
add "IPv6 Destination Options with a must-discard option" insertion v6_dstopt $V6
add "FIN with a bad checksum, then the denied ClientHello" insertion fin_badsum
add "overlap in order: second copy of the name differs" insertion overlap_inorder
add "overlap out of order: the in-order copy wins at the server" insertion overlap_ooo
add "out of order: a later segment replaces one it covers" insertion ofo_replace
add "IP options on the denied ClientHello" insertion ip_options
add "data offset shorter than the TCP header" insertion doff_short
section "== plain HTTP keep-alive (port 80)"
add "keep-alive: a second request with a denied Host" denied keepalive
add "keep-alive: a second request with an allowed Host is read (no false deny)" two_allowed_requests keepalive $V4 --name allowed.example
add "keep-alive pipelined: both requests in one segment" denied pipelined
section "== preambles on 443 (no byte before a verdict)"
add "SMTP EHLO with 400 bytes of marker" marker pre_ehlo
add "PROXY v2 with 480 bytes of TLVs holding a marker" marker pre_proxy2
add "SOCKS5 user/password holding a marker" marker pre_socks5
add "SOCKS4 CONNECT with a marker as user id" marker pre_socks4
BATCH_TIMEOUT=150 run_batch "$FIRST"
settle 2
judge_from "$FIRST"

FIRST=${#SPECS[@]}
section "== state loss: the daemon restarted between the handshake and the ClientHello"
add "restart: the denied ClientHello after the restart" insertion send_saved $V4 --state "$WORK/r1" --name denied.example
P_R1=${PORTS[-1]}
port=$((port + 1)); P_R2=$port
in_pod timeout 30 $PY "$HERE/attacks.py" batch >> "$WORK/attacks.out" 2>&1 <<EOF || true
hs_save --dst $V4 --sport $P_R1 --state $WORK/r1
hs_save --dst $V4 --sport $P_R2 --state $WORK/r2
EOF
stop_daemon
start_daemon
SPECS+=("sleep --seconds 1") # the two denies would share a log window
SPECS+=("send_saved --dst $V4 --sport $P_R2 --state $WORK/r2 --name allowed.example")
run_batch "$FIRST"
unset 'SPECS[-1]' 'SPECS[-1]'
settle
judge_from "$FIRST"
echo "  info: an allowed ClientHello after the restart (sport $P_R2), not judged:"
echo "    daemon: $(decisions $P_R2)"
$PY "$HERE/recorder.py" verdict --log "$REC_LOG" --sport $P_R2 --expect allowed >/dev/null &&
    echo "    observed: the app read it (a name read midstream allowed the flow)" ||
    echo "    observed: refused (the app read nothing of it)"

stop_daemon
start_daemon --max-flows 64
FIRST=${#SPECS[@]}
section "== state loss: a flood of SYNs evicts the flow (--max-flows 64)"
add "flood: the denied ClientHello after 200 other flows" insertion send_saved $V4 --state "$WORK/f1" --name denied.example
P_F1=${PORTS[-1]}
SPECS[-1]="hs_save --dst $V4 --sport $P_F1 --state $WORK/f1"
SPECS+=("flood --dst $V4 --sport 25000 --count 200")
SPECS+=("send_saved --dst $V4 --sport $P_F1 --state $WORK/f1 --name denied.example")
run_batch "$FIRST"
unset 'SPECS[-1]' 'SPECS[-1]'
settle
judge_from "$FIRST"
metric() {
    [ "$MODE" != none ] || { echo "(no daemon)"; return 0; }
    in_node curl -s --max-time 2 http://127.0.0.1:9153/metrics | awk -v m="$1" '$1 == m {print $2}'
}
echo "  info: flows evicted by the flood: $(metric egress_inspector_flows_evicted_total)"

stop_daemon
if has_option --undecided-timeout; then
    start_daemon --undecided-timeout 2
    FIRST=${#SPECS[@]}
    section "== state loss: an undecided flow left idle"
    add "idle 3 s past --undecided-timeout 2, then the denied ClientHello" insertion hs_save
    P_I1=${PORTS[-1]}
    port=$((port + 1)); P_I2=$port
    SPECS[-1]="hs_save --dst $V4 --sport $P_I1 --state $WORK/i1"
    SPECS+=("hs_save --dst $V4 --sport $P_I2 --state $WORK/i2")
    SPECS+=("sleep --seconds 3")
    SPECS+=("send_saved --dst $V4 --sport $P_I1 --state $WORK/i1 --name denied.example")
    SPECS+=("sleep --seconds 1")
    SPECS+=("send_saved --dst $V4 --sport $P_I2 --state $WORK/i2 --name allowed.example")
    run_batch "$FIRST"
    unset 'SPECS[-1]' 'SPECS[-1]' 'SPECS[-1]' 'SPECS[-1]' 'SPECS[-1]'
    settle
    judge_from "$FIRST"
    echo "  info: flows expired: $(metric egress_inspector_flows_expired_total)"
    echo "  info: an allowed ClientHello after the same idle wait (sport $P_I2), not judged:"
    echo "    daemon: $(decisions $P_I2)"
    $PY "$HERE/recorder.py" verdict --log "$REC_LOG" --sport $P_I2 --expect allowed >/dev/null &&
        echo "    observed: the app read it" || echo "    observed: refused (the app read nothing of it)"
else
    echo "== state loss: an undecided flow left idle"
    echo "skip idle: this daemon has no --undecided-timeout"
fi
stop_daemon

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]

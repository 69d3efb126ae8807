#!/usr/bin/env bash
# Live connection rate and latency through a node, in network namespaces of our own:
#
#   pod (10.244.0.10) --veth--> node (forwards; node rules, queue listener) --veth--> srv (203.0.113.10, nginx TLS)
#
# Four set-ups, each on a fresh topology (a fresh node namespace has an empty conntrack
# table, so no connection marks or states leak from one set-up into the next):
#   none      no queue: the cost of the network path and the TLS server alone
#   nfq       the node rules of `egress-inspector iptables` and bench/nfq_accept, which
#             accepts every queued packet at once (the first data packet with the allow
#             mark, so the connection leaves the queue as it does for the daemon): the
#             floor of the mechanism
#   inspector the same node rules and `egress-inspector run --mode enforce`, allowing the
#             server's name (with --hosts binding it to the server's address, when the
#             build has --hosts: the DNS binding is on and its cache warm)
#   opensnitch opensnitch-daemon (Debian) in the pod's namespace with an allow-all rule: it
#             is a per-host firewall that finds the process behind each new connection
#             through /proc, so it sits where the client runs, not on a forwarding node
# Rounds go through the four set-ups in turn (a,b,c,d,a,b,c,d,...), so that drift on a
# shared machine falls on all of them alike. In each: a warm-up, then bench/tls_conn with
# one connection at a time (latency without load) and with $CONC in flight (rate), for a
# one-segment ClientHello and a post-quantum one over two segments.
#
# Latency differences of tens of microseconds are within the drift between rounds on a
# small shared machine, so (b) and (c) are also compared paired: on one topology, the two
# listeners take turns on the queue ($PAIRS turns each, the order alternating), one
# connection at a time, and the samples of all turns are pooled ($RES/live_paired.json).
# A third listener takes its turns there too: the daemon with its decision lines sent to
# /dev/null instead of a file, which shows what writing them costs on the verdict path.
#
# Called by bench/run with BIN, HELPERS, RES and WORK set; appends JSON lines to
# $RES/live.jsonl (one per client run) and $RES/live_setups.jsonl (one per set-up and
# round: packets queued, connections, decisions). Needs root. Traffic goes only to the
# addresses of the namespaces made here, which are removed on exit, also on failure.
set -euo pipefail
: "${BIN:?}" "${HELPERS:?}" "${RES:?}" "${WORK:?}"
ROUNDS=${BENCH_ROUNDS:-3}
SECS=${BENCH_LIVE_SECONDS:-4}
CONC=${BENCH_CONCURRENCY:-32}
SETUPS=${BENCH_SETUPS:-none nfq inspector opensnitch}
PAIRS=${BENCH_PAIRS:-8}
PAIR_SECS=${BENCH_PAIR_SECONDS:-1.5}

TAG=eib$$
NS_POD=$TAG-pod NS_NODE=$TAG-node NS_SRV=$TAG-srv
SERVER=203.0.113.10 NAME=bench.example ALLOW_MARK=0x1000
L=$WORK/live
mkdir -p "$L"
PIDS=()

in_pod() { ip netns exec "$NS_POD" "$@"; }
in_node() { ip netns exec "$NS_NODE" "$@"; }
in_srv() { ip netns exec "$NS_SRV" "$@"; }
# Background processes are started with `ip netns exec` itself, never through these
# functions: ip execs the program, so $! is the program and a signal sent to it arrives.

# Ends every process in our namespaces (ip netns exec execs, so $! is the process itself)
# and waits for it: opensnitch takes seconds to remove its rules and release its queue.
stop_all() {
    local ns pid
    for ns in "$NS_POD" "$NS_NODE" "$NS_SRV"; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
    done
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] || continue
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    PIDS=()
}
topology_down() {
    stop_all
    for ns in "$NS_POD" "$NS_NODE" "$NS_SRV"; do ip netns del "$ns" 2>/dev/null || true; done
}
trap topology_down EXIT
trap 'exit 130' INT TERM

topology_up() {
    for ns in "$NS_POD" "$NS_NODE" "$NS_SRV"; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
    done
    # the node side of the pod's veth is named as a CNI names it
    ip link add veth-pod netns "$NS_NODE" type veth peer name eth0 netns "$NS_POD"
    ip link add uplink netns "$NS_NODE" type veth peer name eth0 netns "$NS_SRV"
    ip -n "$NS_POD" link set eth0 up
    ip -n "$NS_SRV" link set eth0 up
    ip -n "$NS_NODE" link set veth-pod up
    ip -n "$NS_NODE" link set uplink up
    ip -n "$NS_POD" addr add 10.244.0.10/24 dev eth0
    ip -n "$NS_POD" route add default via 10.244.0.1
    ip -n "$NS_NODE" addr add 10.244.0.1/24 dev veth-pod
    ip -n "$NS_NODE" addr add 192.0.2.1/24 dev uplink
    ip -n "$NS_NODE" route add 203.0.113.0/24 via 192.0.2.2
    ip -n "$NS_SRV" addr add $SERVER/24 dev eth0
    ip -n "$NS_SRV" addr add 192.0.2.2/24 dev eth0
    ip -n "$NS_SRV" route add 10.244.0.0/16 via 192.0.2.1
    in_node sysctl -qw net.ipv4.ip_forward=1
    # the client closes with a reset, so it keeps no TIME_WAIT; a wide port range all the same
    in_pod sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
    in_srv sysctl -qw net.core.somaxconn=8192
}

server_up() {
    local d=$L/nginx
    mkdir -p "$d"
    # TLS 1.3 with an ECDSA P-256 certificate, no session resumption: every connection
    # is a full handshake, as a first connection to a new destination is
    cat >"$d/nginx.conf" <<EOF
worker_processes 2;
pid $d/nginx.pid;
error_log $d/error.log crit;
events { worker_connections 16384; multi_accept on; }
http {
    access_log off;
    client_body_temp_path $d/body; proxy_temp_path $d/proxy; fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi; scgi_temp_path $d/scgi;
    server {
        listen $SERVER:443 ssl backlog=8192;
        ssl_certificate $L/cert.pem;
        ssl_certificate_key $L/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets off;
        location / { return 200 "ok\n"; }
    }
}
EOF
    ip netns exec "$NS_SRV" nginx -e "$d/error.log" -p "$d" -c "$d/nginx.conf" -g 'daemon off;' &
    PIDS+=($!)
    for _ in $(seq 50); do
        probe >/dev/null && return 0
        sleep 0.1
    done
    echo "live: nginx did not answer" >&2
    return 1
}

# One short connection from the pod; fails unless it got an answer.
probe() {
    in_pod "$HELPERS/tls_conn" --dst $SERVER --sni $NAME --concurrency 1 --duration 0.05 \
        --timeout-ms 1000 | grep -qv '"connections":0,'
}

node_rules() {
    in_node "$BIN" iptables --apply --in-iface veth-pod --hook forward --ports 443 --queue 0 \
        --mark-allow $ALLOW_MARK
}

wait_for() { # wait_for FILE PATTERN WHAT
    for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "live: $3 did not start:" >&2
    cat "$1" >&2 || true
    return 1
}

# What --hosts / --dest-check the build has, told by its usage text.
usage_has() { "$BIN" help 2>&1 | grep -q -- "$1"; }
DAEMON_ARGS=(run --rules "$L/live.rules" --queue 0 --mode enforce --mark-allow $ALLOW_MARK)
DNS_BINDING="not in this build (no --dest-check)"
if usage_has "--hosts"; then
    DAEMON_ARGS+=(--hosts "$L/hosts")
    DNS_BINDING="on: --hosts binds $NAME to $SERVER (cache warm from the start)"
elif usage_has "--dest-check"; then
    DAEMON_ARGS+=(--dest-check off)
    DNS_BINDING="off: this build has --dest-check but no --hosts to warm the cache"
fi
echo "allow $NAME" >"$L/live.rules"
echo "$SERVER $NAME" >"$L/hosts"

# opensnitch: an allow-all rule of its own (so the result does not depend on
# /etc/opensnitchd/default-config.json), and the rules directory and UI socket in $L
mkdir -p "$L/opensnitch-rules"
cat >"$L/opensnitch-rules/000-allow-all.json" <<'EOF'
{ "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z",
  "name": "000-allow-all", "enabled": true, "precedence": false,
  "action": "allow", "duration": "always",
  "operator": { "type": "simple", "operand": "true", "sensitive": false, "data": "", "list": [] } }
EOF

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$NAME" \
    -addext "subjectAltName=DNS:$NAME" -keyout "$L/key.pem" -out "$L/cert.pem" 2>/dev/null

# Starts the set-up's queue listener; prints nothing, fails with a reason on stderr.
mechanism_up() {
    case $1 in
    none) ;;
    nfq)
        node_rules
        ip netns exec "$NS_NODE" "$HELPERS/nfq_accept" --queue 0 --mark-payload $ALLOW_MARK >"$L/nfq.out" 2>"$L/nfq.err" &
        PIDS+=($!)
        wait_for "$L/nfq.err" "bound" nfq_accept
        ;;
    inspector)
        node_rules
        ip netns exec "$NS_NODE" "$BIN" "${DAEMON_ARGS[@]}" >"$L/daemon.log" 2>"$L/daemon.err" &
        PIDS+=($!)
        wait_for "$L/daemon.log" '"event":"start"' egress-inspector
        ;;
    inspector-nolog)
        # the same daemon with its decision lines thrown away: in the paired turns only,
        # to show what writing them costs on the verdict path
        node_rules
        ip netns exec "$NS_NODE" "$BIN" "${DAEMON_ARGS[@]}" >/dev/null 2>"$L/daemon.err" &
        PIDS+=($!)
        for _ in $(seq 100); do
            in_node awk '$1 == 0 {found = 1} END {exit !found}' /proc/net/netfilter/nfnetlink_queue && return 0
            sleep 0.05
        done
        echo "live: egress-inspector did not bind the queue" >&2
        return 1
        ;;
    opensnitch)
        command -v opensnitchd >/dev/null || { echo "live: opensnitchd is not installed" >&2; return 1; }
        rm -f "$L/opensnitch.log"
        ip netns exec "$NS_POD" opensnitchd -rules-path "$L/opensnitch-rules" -ui-socket "unix://$L/osui.sock" \
            -process-monitor-method proc -queue-num 0 -log-file "$L/opensnitch.log" \
            >"$L/opensnitch.out" 2>&1 &
        PIDS+=($!)
        wait_for "$L/opensnitch.log" "Running on netfilter queue" opensnitchd
        in_pod iptables-save | grep -q NFQUEUE || { echo "live: opensnitchd set no NFQUEUE rule" >&2; return 1; }
        ;;
    esac
}

# Packets the kernel queued on queue 0 of a namespace (id_sequence of
# /proc/net/netfilter/nfnetlink_queue): the same count for every listener.
queued_in() {
    ip netns exec "$1" awk '$1 == 0 {print $8}' /proc/net/netfilter/nfnetlink_queue 2>/dev/null || echo 0
}

# CPU time (user + system, all threads) a process has used so far, in microseconds.
cpu_us() {
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) * 1000000 / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# A perf profile of the daemon during one rate run (round 1, one-segment hello), when perf
# works here: where its CPU goes under load.
PERF_PID=
profile_start() { # profile_start SETUP ROUND HELLO
    [ "$1" = inspector ] && [ "$2" = 1 ] && [ "$3" = classic ] || return 0
    command -v perf >/dev/null || return 0
    perf record -q -g -F 1999 -p "${PIDS[-1]}" -o "$L/perf.data" -- sleep "$SECS" >/dev/null 2>&1 &
    PERF_PID=$!
}
profile_stop() {
    [ -n "$PERF_PID" ] || return 0
    wait "$PERF_PID" 2>/dev/null || true
    PERF_PID=
    perf report -i "$L/perf.data" --stdio --no-children --sort dso,symbol -g none --percent-limit 1 \
        2>/dev/null | grep -v -e '^#' -e '^$' | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]-]*$//' |
        head -25 >"$RES/perf_daemon.txt" || true
    perf report -i "$L/perf.data" --stdio --no-children --sort dso -g none 2>/dev/null |
        grep -v -e '^#' -e '^$' | sed -e 's/^[[:space:]]*//' >"$RES/perf_daemon_dso.txt" || true
}

client() { # client SETUP ROUND HELLO CONCURRENCY KIND
    local out
    out=$(in_pod "$HELPERS/tls_conn" --dst $SERVER --sni $NAME --hello "$3" --concurrency "$4" \
        --duration "$SECS" --timeout-ms 3000)
    echo "$out" >>"$L/client.jsonl"
    printf '{"setup":"%s","round":%d,"hello":"%s","kind":"%s","result":%s}\n' "$1" "$2" "$3" "$5" "$out" \
        >>"$RES/live.jsonl"
    echo "  $1 round $2 $3 $5: $out" >&2
}

run_setup() { # run_setup SETUP ROUND
    local setup=$1 round=$2 qns=$NS_NODE
    [ "$setup" = opensnitch ] && qns=$NS_POD
    topology_up
    server_up
    : >"$L/client.jsonl"
    if ! mechanism_up "$setup" 2>"$L/why"; then
        printf '{"setup":"%s","round":%d,"failed":%s}\n' "$setup" "$round" \
            "$(python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().strip()))' <"$L/why")" \
            >>"$RES/live_setups.jsonl"
        cat "$L/why" >&2
        topology_down
        return 0
    fi
    # warm-up: first connections pay for ARP, route and page-cache misses
    in_pod "$HELPERS/tls_conn" --dst $SERVER --sni $NAME --concurrency 8 --duration 1 >>"$L/client.jsonl"
    for hello in classic pq; do
        client "$setup" "$round" $hello 1 latency
        profile_start "$setup" "$round" $hello
        client "$setup" "$round" $hello "$CONC" rate
        profile_stop
    done
    local queued extra='{}' cpu=0
    queued=$(queued_in "$qns")
    # the queue listener's CPU time over the whole set-up (warm-up included)
    [ "$setup" != none ] && cpu=$(cpu_us "${PIDS[-1]}")
    case $setup in
    nfq)
        kill -TERM "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
        extra=$(cat "$L/nfq.out")
        ;;
    inspector)
        kill -TERM "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
        # decisions by verdict and reason; denies may be aggregated, allows never are
        extra=$(python3 - "$L/daemon.log" <<'PY'
import collections, json, sys
reasons, shutdown = collections.Counter(), {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    if d.get("event") == "decision":
        reasons[d["verdict"] + ":" + d["reason"]] += 1
    elif d.get("event") == "decisions_aggregated":
        reasons[d["verdict"] + ":" + d["reason"]] += d.get("count", 0)
    elif d.get("event") == "shutdown":
        shutdown = d
print(json.dumps({"decisions": reasons, "shutdown": shutdown}))
PY
)
        ;;
    esac
    local conns
    conns=$(python3 -c '
import json, sys
print(sum(d["connections"] + d["errors"] + d["timeouts"] for d in map(json.loads, open(sys.argv[1]))))' "$L/client.jsonl")
    printf '{"setup":"%s","round":%d,"queued":%s,"connections":%s,"listener_cpu_us":%s,"extra":%s}\n' \
        "$setup" "$round" "${queued:-0}" "$conns" "${cpu:-0}" "$extra" >>"$RES/live_setups.jsonl"
    topology_down
}

# (b) and (c) in turns on one topology; latency samples pooled per listener and hello.
run_paired() {
    local hello i setup order
    topology_up
    server_up
    mkdir -p "$L/samples"
    rm -f "$L/samples/"*
    in_pod "$HELPERS/tls_conn" --dst $SERVER --sni $NAME --concurrency 8 --duration 1 >/dev/null
    for hello in classic pq; do
        for i in $(seq "$PAIRS"); do
            order="nfq inspector inspector-nolog"
            [ $((i % 2)) = 0 ] && order="inspector-nolog inspector nfq"
            for setup in $order; do
                mechanism_up "$setup"
                in_pod "$HELPERS/tls_conn" --dst $SERVER --sni $NAME --hello $hello --concurrency 1 \
                    --duration "$PAIR_SECS" --samples "$L/samples/$setup.$hello.$i" >/dev/null
                kill -TERM "${PIDS[-1]}"
                wait "${PIDS[-1]}" 2>/dev/null || true
                unset 'PIDS[-1]'
            done
        done
    done
    topology_down
    python3 - "$L/samples" "$PAIRS" >"$RES/live_paired.json" <<'PY'
import json, os, statistics, sys
d, pairs = sys.argv[1], int(sys.argv[2])
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, round(p / 100 * (len(v) - 1)))] if v else None
def read(name):
    p = os.path.join(d, name)
    return [float(x) for x in open(p)] if os.path.exists(p) else []
out = {"pairs": pairs}
for hello in ("classic", "pq"):
    res = {}
    for setup in ("nfq", "inspector", "inspector-nolog"):
        runs = [read(f"{setup}.{hello}.{i}") for i in range(1, pairs + 1)]
        pooled = [x for r in runs for x in r]
        res[setup] = {"samples": len(pooled), "p50_us": pct(pooled, 50), "p90_us": pct(pooled, 90),
                      "p99_us": pct(pooled, 99), "p999_us": pct(pooled, 99.9),
                      "per_turn_p99_us": [pct(r, 99) for r in runs]}
    diffs = [a - b for a, b in zip(res["inspector"]["per_turn_p99_us"], res["nfq"]["per_turn_p99_us"])
             if a is not None and b is not None]
    res["median_paired_p99_diff_us"] = statistics.median(diffs) if diffs else None
    out[hello] = res
print(json.dumps(out))
PY
}

printf '{"dns_binding":"%s","rounds":%d,"seconds":%s,"concurrency":%d,"pairs":%d,"pair_seconds":%s,"daemon_command":"%s"}\n' \
    "$DNS_BINDING" "$ROUNDS" "$SECS" "$CONC" "$PAIRS" "$PAIR_SECS" "egress-inspector ${DAEMON_ARGS[*]}" >"$RES/live_meta.json"
node_rules_text=$("$BIN" iptables --print --in-iface veth-pod --hook forward --ports 443 --queue 0 --mark-allow $ALLOW_MARK)
echo "$node_rules_text" >"$RES/live_node_rules.txt"
for round in $(seq "$ROUNDS"); do
    for setup in $SETUPS; do
        echo "live: round $round, $setup" >&2
        run_setup "$setup" "$round"
    done
done
if [ "$PAIRS" -gt 0 ]; then
    echo "live: (b) and (c) in turns, $PAIRS each" >&2
    run_paired
fi

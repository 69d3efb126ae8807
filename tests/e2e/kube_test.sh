#!/usr/bin/env bash
# End-to-end: policies that select pods by Kubernetes labels, the pod view watched from an
# API server. The API server is tests/kube/apiserver.py (the stand-in that kubectl accepts,
# tests/kube/kubectl_test.sh), on the node's loopback over HTTPS with a bearer token; the
# daemon reads it through a kubeconfig, as --kubeconfig does on a node. Two pods in two
# namespaces with different policies; a pod deleted and its address given to a pod of
# another policy; a pod that connects before its event arrives (it waits, then is judged
# with its own policy); an address no pod has (denied workload_unknown after the wait);
# the API server restarted mid-stream, and a 410 Gone: the daemon resumes or lists again
# and keeps judging with the right pods; the token rotated. The ground truth is what the
# server application received (tests/e2e/coverage_servers.py's log).
# Needs root. Usage: kube_test.sh path/to/egress-inspector    Ends with 'N passed, N failed'.
set -euo pipefail
BIN=$(readlink -f "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
PEERS=$HERE/coverage_servers.py
WORK=$(mktemp -d)
EI_TAG=eikube$$
source "$HERE/topology.sh"
cleanup() {
    local rc=$?
    if [ "${FAILED:-0}" != 0 ] || [ "$rc" != 0 ]; then
        local dir=${EI_E2E_KEEP:-/tmp}
        for f in daemon.log daemon.err server.log api.err; do cp "$WORK/$f" "$dir/ei-kube-$f" 2>/dev/null || true; done
        echo "logs kept in $dir/ei-kube-*"
    fi
    topology_cleanup
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

topology_up
pod_dns_up # the peers answer DNS on 203.0.113.53 and .54 (unused here)
ip -n "$NS_NET" addr add 203.0.113.54/24 dev eth0
make_cert "$WORK" allowed.example other.example
SERVER_LOG=$WORK/server.log
in_net /usr/bin/python3 "$PEERS" serve --log "$SERVER_LOG" --cert "$WORK/cert.pem" --key "$WORK/key.pem" \
    2>"$WORK/server.err" &
EI_PIDS+=($!)
for _ in $(seq 50); do grep -q '"ev":"ready"' "$SERVER_LOG" 2>/dev/null && break; sleep 0.1; done
grep -q '"ev":"ready"' "$SERVER_LOG" || { echo "servers did not start:"; cat "$WORK/server.err"; exit 1; }

# ---- the API server, on the node's loopback ----
source "$HERE/kube_api.sh"
kube_api_setup "$WORK"
NODE=node-a
python3 - "$WORK/state.json" "$NODE" <<'PYEOF'
import json, sys
path, node = sys.argv[1], sys.argv[2]
C = [{"name": "main", "image": "example/app:1"}]
ns = lambda name, **l: {"metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **l}}}
json.dump({"namespaces": [ns("payments", env="prod"), ns("batch", env="dev")], "pods": [
    {"metadata": {"name": "api-1", "namespace": "payments", "labels": {"app": "api"}},
     "spec": {"nodeName": node, "containers": C}, "status": {"phase": "Running", "podIP": "10.244.0.10",
                                            "podIPs": [{"ip": "10.244.0.10"}, {"ip": "fd00:10:244::10"}]}},
    {"metadata": {"name": "runner-1", "namespace": "batch", "labels": {"app": "runner"}},
     "spec": {"nodeName": node, "containers": C}, "status": {"phase": "Running", "podIP": "10.244.7.10"}},
    {"metadata": {"name": "elsewhere", "namespace": "batch", "labels": {"app": "runner"}},
     "spec": {"nodeName": "node-b", "containers": C}, "status": {"phase": "Running", "podIP": "10.244.0.99"}},
]}, open(path, "w"))
PYEOF
start_api() { kube_api_start "$WORK"; }
ctl() { kube_ctl "$@"; }
pod() { kube_pod "$NODE" "$@"; }
cat > "$WORK/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: $WORK/ca.pem
users:
- name: egress-inspector
  user:
    tokenFile: $WORK/sa/token
contexts:
- name: test
  context: {cluster: test, user: egress-inspector}
current-context: test
EOF

RULES=$WORK/rules
cat > "$RULES" <<'RULES'
# nothing by default
policy payments
namespaces kubernetes.io/metadata.name=payments
pods app=api
allow allowed.example

policy runners
pods app in (runner)
allow other.example
RULES
echo "203.0.113.10 allowed.example other.example" > "$WORK/hosts"
COMMON=(--ports 80,443 --queue 0)
in_node "$BIN" iptables --apply --in-iface veth-pod+ --hook forward "${COMMON[@]}" --coverage inspected
DAEMON_LOG=$WORK/daemon.log
ip netns exec "$NS_NODE" "$BIN" run --rules "$RULES" "${COMMON[@]}" --coverage inspected --metrics 127.0.0.1:9156 \
    --hosts "$WORK/hosts" --resolver 127.0.0.1:9 --kubeconfig "$WORK/kubeconfig" --node-name "$NODE" \
    --workload-wait 3000 >>"$DAEMON_LOG" 2>>"$WORK/daemon.err" &
DAEMON=$!
EI_PIDS+=($DAEMON)
# The API server is not up yet: the daemon runs, judges nothing as any pod's, and is not ready
sleep 1.5
check "not ready while the API server cannot be reached" \
    test "$(in_node curl -s --max-time 1 http://127.0.0.1:9156/readyz 2>/dev/null)" != ready
start_api
ready=no
for _ in $(seq 150); do
    [ "$(in_node curl -s --max-time 1 http://127.0.0.1:9156/readyz 2>/dev/null)" = ready ] && { ready=yes; break; }
    sleep 0.1
done
check "ready once the pods and namespaces are listed" test "$ready" = yes
metric() { in_node curl -s --max-time 2 http://127.0.0.1:9156/metrics | awk -v m="egress_inspector_$1" '$1 == m { print $2 }'; }
check "the view knows the node's two pods (not node-b's)" test "$(metric workloads)" = 2
check "kube_synced is 1" test "$(metric kube_synced)" = 1

N=0
# fetch POD HOST [MAX-SECONDS]: GOT=reply|denied, MARK the marker in the request's path
fetch() {
    local ns=$NS_POD; [ "$1" = pod2 ] && ns=$NS_POD2
    N=$((N + 1)); MARK=k$N-$$
    if ip netns exec "$ns" curl -sk --max-time "${3:-3}" --resolve "$2:443:203.0.113.10" "https://$2/$MARK" \
        -o "$WORK/body" 2>/dev/null && grep -q "hello $2" "$WORK/body"; then GOT=reply; else GOT=denied; fi
}
received() { grep -q "/$MARK " "$SERVER_LOG"; }
decision() { # decision HOST: the daemon's last decision line for that host
    grep '"event":"decision"' "$DAEMON_LOG" | grep "\"host\":\"$1\"" | tail -1
}
has() { grep -q "$1" <<<"$2"; }

# ---- two pods, two namespaces, two policies ----
fetch pod allowed.example; check "payments/api-1 reaches allowed.example" test "$GOT" = reply
check "... the server read it" received
sleep 0.3
line=$(decision allowed.example)
check "... decided by policy payments, naming the pod" has '"policy":"payments".*"namespace":"payments","pod":"api-1"' "$line"
fetch pod other.example; check "payments/api-1 may not reach other.example" test "$GOT" = denied
check "... the server read nothing" not received
fetch pod2 other.example; check "batch/runner-1 reaches other.example" test "$GOT" = reply
check "... the server read it" received
fetch pod2 allowed.example; check "batch/runner-1 may not reach allowed.example" test "$GOT" = denied
check "... the server read nothing" not received

# ---- a pod deleted, its address given to a pod of another policy ----
ctl DELETE /pods/payments/api-1
pod batch web-1 10.244.0.10 '{"app":"web"}'
sleep 0.5
fetch pod allowed.example
check "the address's new pod (batch/web-1, no policy) may not reach allowed.example" test "$GOT" = denied
check "... the server read nothing" not received
sleep 0.3
check "... denied as web-1's, by the default policy" has '"reason":"name_not_allowed","policy":"default".*"pod":"web-1"' "$(decision allowed.example)"

# ---- a pod that connects before its event arrives ----
ctl DELETE /pods/batch/web-1
sleep 0.5
before=$(metric 'workload_waits_total{outcome="found"}')
( sleep 1; pod payments api-2 10.244.0.10 '{"app":"api"}' ) &
t0=$(now_ms)
fetch pod allowed.example 6; check "a new pod connecting before its event waits for it, then is allowed" test "$GOT" = reply
waited=$(($(now_ms) - t0))
check "... the server read it" received
check "... after waiting for the event (${waited} ms)" test "$waited" -ge 800
check "... counted as a wait that found its pod" test "$(metric 'workload_waits_total{outcome="found"}')" -gt "${before:-0}"
sleep 0.3
check "... judged as payments/api-2" has '"policy":"payments".*"pod":"api-2"' "$(decision allowed.example)"

# ---- an address no pod has ----
ctl DELETE /pods/payments/api-2
sleep 0.5
t0=$(now_ms)
fetch pod allowed.example 8; check "an address no pod has is denied" test "$GOT" = denied
waited=$(($(now_ms) - t0))
check "... the server read nothing" not received
check "... after the bounded wait (${waited} ms)" test "$waited" -ge 2500
sleep 0.3
check "... workload_unknown" has '"reason":"workload_unknown"' "$(grep '"event":"decision"' "$DAEMON_LOG" | grep '"src":"10.244.0.10"' | tail -1)"

# ---- the API server restarted mid-stream ----
restarts=$(metric kube_watch_restarts_total)
kill -KILL "$API_PID"; wait "$API_PID" 2>/dev/null || true # a crash: the streams just end
sleep 1
start_api
pod payments api-3 10.244.0.10 '{"app":"api"}'
ok=no
for _ in $(seq 40); do [ "$(metric workloads)" = 2 ] && { ok=yes; break; }; sleep 0.25; done
check "after the API server's restart, the daemon watches again and knows the new pod" test "$ok" = yes
check "... counted as watch restarts" test "$(metric kube_watch_restarts_total)" -gt "$restarts"
check "... resumed from the last version seen (its bookmarks kept it current): no relist" \
    test "$(metric kube_relists_total)" = 0
fetch pod allowed.example; check "payments/api-3 reaches allowed.example" test "$GOT" = reply
check "... the server read it" received

# ---- 410 Gone: list again ----
relists=$(metric kube_relists_total)
ctl POST /expire-watches
ctl DELETE /pods/payments/api-3
pod batch runner-2 10.244.0.10 '{"app":"runner"}'
ok=no
for _ in $(seq 40); do
    [ "$(metric kube_relists_total)" -gt "$relists" ] && [ "$(metric workloads)" = 2 ] && { ok=yes; break; }
    sleep 0.25
done
check "after a 410 the daemon lists again" test "$ok" = yes
fetch pod other.example; check "the address's pod is now batch/runner-2: other.example allowed" test "$GOT" = reply
fetch pod allowed.example; check "... and allowed.example denied" test "$GOT" = denied
check "... the server read nothing of it" not received

# ---- the token rotated ----
echo "token-two-$$" > "$WORK/sa/token"
ctl POST /drop-watches
pod payments api-4 10.244.0.11 '{"app":"api"}'
ok=no
for _ in $(seq 40); do [ "$(metric workloads)" = 3 ] && { ok=yes; break; }; sleep 0.25; done
check "after the token rotated the daemon still watches (a new pod seen)" test "$ok" = yes
check "... the new token was read" test "$(metric kube_token_changes_total)" -ge 1
check "no request was refused" test "$(metric kube_unauthorized_total)" = 0

kill -TERM "$DAEMON"; wait "$DAEMON" 2>/dev/null || true
check "the daemon stopped cleanly" grep -q '"event":"shutdown"' "$DAEMON_LOG"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]

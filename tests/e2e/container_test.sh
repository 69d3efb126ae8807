#!/usr/bin/env bash
# The image, run as the DaemonSet runs it: built from deploy/Dockerfile, the DaemonSet's own
# environment (read from deploy/daemonset.yaml; only the node-specific EI_IN_IFACES and
# EI_RESOLVER are set for this topology), NET_ADMIN and NET_RAW only, the ConfigMap's rules
# mounted read-only with the ..data symlink layout. The node's network namespace is held by
# a pause container (as a Kubernetes pod sandbox holds it), attached as the topology's node,
# so that replacing the inspector container keeps the node. Real curl in the pod, DNS from
# dnsmasq, and the ground truth is what the server answered ("hello NAME").
# Needs root and dockerd. Usage: container_test.sh [IMAGE]. Ends 'N passed, N failed'.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
IMAGE=${1:-egress-inspector:e2e}
WORK=$(mktemp -d)
source "$HERE/topology.sh"
PAUSE=${EI_TAG}-pause EI=${EI_TAG}-ei
cleanup() {
    docker rm -f "$EI" "$EI-bad" "$PAUSE" >/dev/null 2>&1 || true
    topology_cleanup
    rm -rf "$WORK"
}
trap cleanup EXIT

# Docker, and the base images the Dockerfile names (no registry here: made from Debian's
# mirror when missing; a user's machine pulls the real ones).
if ! docker info >/dev/null 2>&1; then
    (dockerd >"${TMPDIR:-/tmp}/ei-dockerd.log" 2>&1 &)
    for _ in $(seq 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
fi
if ! docker image inspect debian:12 >/dev/null 2>&1; then
    debootstrap --variant=minbase bookworm "$WORK/rootfs" >/dev/null
    tar -C "$WORK/rootfs" -c . | docker import - debian:12 >/dev/null
    rm -rf "$WORK/rootfs"
fi
docker image inspect debian:12-slim >/dev/null 2>&1 || docker tag debian:12 debian:12-slim
echo "== docker build -f deploy/Dockerfile"
t0=$(date +%s)
docker build -q -f "$ROOT/deploy/Dockerfile" -t "$IMAGE" "$ROOT" >/dev/null 2>"$WORK/build.err" \
    || { cat "$WORK/build.err"; exit 1; }
echo "    built in $(( $(date +%s) - t0 )) s"
modprobe -q ip_tables 2>/dev/null || true; modprobe -q ip6_tables 2>/dev/null || true

# The node: a pause container's namespace, attached under the topology's node name.
docker run -d --name "$PAUSE" --network none --entrypoint sleep "$IMAGE" infinity >/dev/null
ip netns attach "$NS_NODE" "$(docker inspect -f '{{.State.Pid}}' "$PAUSE")"
# docker turns IPv6 off in a --network none namespace; a node has it
in_node sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0
topology_up
pod_dns_up
make_cert "$WORK" allowed.example denied.example later.example
start_servers "$WORK"
ip netns exec "$NS_NET" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --listen-address=203.0.113.53 --bind-interfaces --port=53 --user=root --pid-file= \
    --host-record=allowed.example,203.0.113.10,300 --host-record=denied.example,203.0.113.10,300 \
    --host-record=later.example,203.0.113.10,300 &
EI_PIDS+=($!)

# The cluster's API server (the stand-in of tests/kube), on the node's loopback, with the
# node's pods: the DaemonSet watches them with its service account (EI_KUBE=auto).
source "$HERE/kube_api.sh"
kube_api_setup "$WORK"
python3 - "$WORK/state.json" <<'PY'
import json, sys
pod = lambda ns, name, ip, node: {
    "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
    "spec": {"nodeName": node, "containers": [{"name": "main", "image": "example/app:1"}]},
    "status": {"phase": "Running", "podIP": ip}}
json.dump({"namespaces": [{"metadata": {"name": "default"}}],
           "pods": [pod("default", "client", "10.244.0.10", "node-a"),
                    pod("default", "other", "10.244.0.20", "node-b")]}, open(sys.argv[1], "w"))
PY
kube_api_start "$WORK"

# The DaemonSet's environment (the downward API's and the kubelet's values for this node),
# the service account's token and CA where the kubelet mounts them, and a ConfigMap
# volume as the kubelet lays it out.
python3 - "$ROOT/deploy/daemonset.yaml" > "$WORK/env" <<'PY'
import sys, yaml
spec = yaml.safe_load(open(sys.argv[1]))["spec"]["template"]["spec"]
assert spec["serviceAccountName"] == "egress-inspector"
c = spec["containers"][0]
node = {"EI_IN_IFACES": "veth-pod+", "EI_RESOLVER": "203.0.113.53"}   # this node's
downward = {"spec.nodeName": "node-a"}
for e in c["env"]:
    value = e["value"] if "value" in e else downward[e["valueFrom"]["fieldRef"]["fieldPath"]]
    print(f"{e['name']}={node.get(e['name'], value)}")
# what the kubelet gives every pod with a service account
print("KUBERNETES_SERVICE_HOST=127.0.0.1\nKUBERNETES_SERVICE_PORT=6443")
PY
grep -q '^EI_MODE=monitor$' "$WORK/env"
grep -q '^EI_KUBE=auto$' "$WORK/env"
CM=$WORK/configmap
configmap() { # configmap RULES-TEXT: a new ..data generation, swapped in atomically
    local gen="..$(date +%s%N)"
    mkdir -p "$CM/$gen"
    printf '%s\n' "$1" > "$CM/$gen/rules"
    ln -sfn "$gen" "$CM/..data.tmp" && mv -T "$CM/..data.tmp" "$CM/..data"
    [ -L "$CM/rules" ] || ln -s ..data/rules "$CM/rules"
}
RULES='allow allowed.example'
start() { # start NAME [docker run args]: the inspector as the DaemonSet runs it
    local name=$1; shift
    docker run -d --name "$name" --network "container:$PAUSE" --cap-drop ALL \
        --cap-add NET_ADMIN --cap-add NET_RAW -v "$CM:/etc/egress-inspector:ro" \
        -v "$WORK/sa:/var/run/secrets/kubernetes.io/serviceaccount:ro" \
        --env-file "$WORK/env" "$@" "$IMAGE" >/dev/null
}
ready() { for _ in $(seq 100); do in_node curl -sf -o /dev/null http://127.0.0.1:9153/readyz && return 0; sleep 0.1; done; return 1; }
# started NAME: the entrypoint applied the node rules (after /readyz: queues bound first)
started() { for _ in $(seq 100); do docker logs "$1" 2>&1 | grep -q '"outcome":"started"' && return 0; sleep 0.1; done; return 1; }
# fetch NAME: what the server answered the pod (empty when the connection failed)
fetch() { in_pod curl -sk --max-time 5 "https://$1/" 2>/dev/null || true; }
our_rules() { { in_node iptables-nft-save; in_node iptables-legacy-save; } 2>/dev/null | grep -c EGRESS-INSPECTOR || true; }

echo "== a broken start leaves the node alone"
configmap 'allow allowed.example
allow bad..name'
start "$EI-bad"
st=$(docker wait "$EI-bad")
check "bad rules: the container exits non-zero" test "$st" != 0
check "bad rules: the error is logged with its line" bash -c "docker logs '$EI-bad' 2>&1 | grep -q 'rules:2:'"
check "bad rules: no node rule in either backend" test "$(our_rules)" = 0
check "bad rules: the pod still reaches the internet" test "$(fetch denied.example)" = "hello denied.example"
docker rm -f "$EI-bad" >/dev/null
printf 'EI_PORTS=80,44x\n' > "$WORK/env.bad"
start "$EI-bad" --env-file "$WORK/env.bad"
configmap "$RULES"
st=$(docker wait "$EI-bad")
check "a bad option: exits non-zero, no node rule" test "$st" != 0 -a "$(our_rules)" = 0
docker rm -f "$EI-bad" >/dev/null

echo "== monitor, then enforce by signal"
start "$EI"
check "ready on the DaemonSet's port" ready
check "the entrypoint applied the node rules after the queues were bound" started "$EI"
check "the node rules are in nft (an empty node)" \
    bash -c "ip netns exec '$NS_NODE' iptables-nft-save | grep -q '^-A FORWARD -j EGRESS-INSPECTOR'"
check "monitor: an allowed name is fetched" test "$(fetch allowed.example)" = "hello allowed.example"
check "monitor: a denied name reaches its server" test "$(fetch denied.example)" = "hello denied.example"
sleep 0.3
check "monitor: the would-deny is logged, not enforced" bash -c \
    "docker logs '$EI' 2>/dev/null | grep 'denied.example' | grep -q '\"enforcementMode\":\"monitor\"'"
docker kill -s USR1 "$EI" >/dev/null
sleep 0.3
check "enforce: the denied name never reaches its server" test -z "$(fetch denied.example)"
check "enforce: the allowed name still works" test "$(fetch allowed.example)" = "hello allowed.example"
metrics=$(in_node curl -s http://127.0.0.1:9153/metrics)
check "/metrics answers on the DaemonSet's port" grep -q '^egress_inspector_' <<<"$metrics"
check "the service account's watch knows this node's pod (not node-b's)" \
    grep -q '^egress_inspector_workloads 1$' <<<"$metrics"
check "the decision line names the pod" bash -c \
    "docker logs '$EI' 2>/dev/null | grep 'allowed.example' | grep -q '\"workloadPod\":\"client\"'"

echo "== the control socket, as kubectl exec reaches it"
CTL=$(sed -n 's/^EI_CONTROL=//p' "$WORK/env")
first_of() { docker logs "$EI" 2>&1 | grep -o '"view":"synced"\|"outcome":"started"' | head -1; }
check "the start listed the pods before it applied the node rules" test "$(first_of)" = '"view":"synced"'
status=$(docker exec "$EI" egress-inspector status --control "$CTL" 2>&1 || true)
check "status through docker exec: enforce, the pod view synced, one pod" python3 -c '
import json, sys
s = json.loads(sys.argv[1])
sys.exit(not (s["mode"] == "enforce" and s["kube_synced"] is True and s["pods"] == 1))' "$status"
docker exec "$EI" egress-inspector observe --control "$CTL" --name 'allowed.*' --count 1 --output json \
    >"$WORK/observed" 2>&1 &
OBS=$!
observers() { docker exec "$EI" egress-inspector status --control "$CTL" | python3 -c \
    'import json, sys; print(json.load(sys.stdin)["control"]["observers"])'; }
for _ in $(seq 50); do [ "$(observers)" -ge 1 ] && break; sleep 0.1; done
fetch denied.example >/dev/null
fetch allowed.example >/dev/null
for _ in $(seq 50); do kill -0 "$OBS" 2>/dev/null || break; sleep 0.1; done
kill "$OBS" 2>/dev/null || true
check "observe through docker exec: the allowed flow's line, filtered, the very line logged" bash -c \
    "[ \"\$(wc -l <'$WORK/observed')\" = 1 ] && grep -q '\"host\":\"allowed.example\"' '$WORK/observed' &&
     docker logs '$EI' 2>/dev/null | grep -qxF \"\$(cat '$WORK/observed')\""

echo "== a ConfigMap update, applied without a restart"
configmap "$RULES
allow later.example"
for _ in $(seq 50); do docker logs "$EI" 2>/dev/null | grep -q '"event":"reload"' && break; sleep 0.1; done
check "the updated rules allow later.example" test "$(fetch later.example)" = "hello later.example"
check "the container was not restarted" test "$(docker inspect -f '{{.RestartCount}}' "$EI")" = 0

echo "== rolling update: a client loop while the container is replaced"
in_pod bash -c 'for i in $(seq 60); do
        curl -sk --max-time 10 -o /dev/null -w "%{http_code} %{time_connect}\n" https://allowed.example/ || echo "fail 0"
        sleep 0.05; done' > "$WORK/loop" &
LOOP=$!
sleep 0.5
docker stop -t 10 "$EI" >/dev/null
check "docker stop: exit status 0" test "$(docker inspect -f '{{.State.ExitCode}}' "$EI")" = 0
check "docker stop: every queued packet answered" bash -c \
    "docker logs '$EI' 2>/dev/null | grep '\"event\":\"shutdown\"' | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); sys.exit(d[\"queued\"] != d[\"verdicts\"])'"
docker rm "$EI" >/dev/null
start "$EI" -e EI_MODE=enforce
wait "$LOOP"
fails=$(grep -vc '^200 ' "$WORK/loop" || true)
worst=$(awk '$1 == 200 {if ($2 > m) m = $2} END {printf "%.3f", m}' "$WORK/loop")
echo "    rolling update: $(wc -l < "$WORK/loop") connections, $fails failed, longest connect ${worst} s"
check "rolling update: no connection failed" test "$fails" = 0

echo "== a node whose rules are in iptables-legacy"
started "$EI"
docker stop "$EI" >/dev/null; docker rm "$EI" >/dev/null
docker run --rm --network "container:$PAUSE" --cap-drop ALL --cap-add NET_ADMIN --cap-add NET_RAW \
    --entrypoint egress-inspector "$IMAGE" iptables --remove
in_node iptables-legacy -N KUBE-KUBELET-CANARY
in_node iptables-legacy -A KUBE-KUBELET-CANARY -j RETURN
start "$EI" -e EI_MODE=enforce
check "ready, node rules applied" started "$EI"
check "our rules went to legacy, as the node's" bash -c \
    "ip netns exec '$NS_NODE' iptables-legacy-save | grep -q '^-A FORWARD -j EGRESS-INSPECTOR' && ! ip netns exec '$NS_NODE' iptables-nft-save | grep -q EGRESS-INSPECTOR"
check "legacy: the denied name never reaches its server" test -z "$(fetch denied.example)"
check "legacy: the allowed name works" test "$(fetch allowed.example)" = "hello allowed.example"

echo "== a start while the API server is down: the node rules go in after EI_VIEW_TIMEOUT, fail closed"
docker stop "$EI" >/dev/null; docker rm "$EI" >/dev/null
kill "$API_PID"; wait "$API_PID" 2>/dev/null || true
start "$EI" -e EI_MODE=enforce -e EI_VIEW_TIMEOUT=2
check "started after the view timeout, with a warning" bash -c \
    "for _ in \$(seq 100); do docker logs '$EI' 2>&1 | grep -q '\"outcome\":\"started\"' && break; sleep 0.1; done
     docker logs '$EI' 2>&1 | grep -q 'pods were not listed within 2 s'"
check "not ready while the pods are not listed" not ready
check "a pod the view does not know: denied, never reaches its server" test -z "$(fetch allowed.example)"
check "... denied workload_unknown at its SYN (the sender is no workload yet)" bash -c \
    "docker logs '$EI' 2>/dev/null | grep '\"workloadAddress\":\"10.244.0.10\"' | grep -q '\"denyReason\":\"workload_unknown\"'"
kube_api_start "$WORK"
ready_within() { for _ in $(seq $(($1 * 10))); do in_node curl -sf -o /dev/null http://127.0.0.1:9153/readyz && return 0; sleep 0.1; done; return 1; }
check "the API server back: ready (the watch's backoff is at most 30 s)" ready_within 40
check "... and the pod's allowed name works" test "$(fetch allowed.example)" = "hello allowed.example"

[ "$FAILED" = 0 ] || docker logs "$EI" 2>&1 | tail -20
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]

#!/usr/bin/env bash
# The stand-in API server (apiserver.py) against a real kubectl: discovery, tables, JSON,
# field selectors, chunked lists, bearer tokens, kubectl's own watch, raw watches with
# bookmarks, selectors and 410 after compaction, dropped and expired watches, and a
# restart on the same port from the saved state. Everything listens on 127.0.0.1; the
# processes it starts and its temp dir are removed on exit, also on failure.
# Usage: kubectl_test.sh     KUBECTL=path picks the kubectl (default: the one on PATH).
# Prints 'ok - ...' / 'not ok - ...' per check and ends with 'N passed, N failed'; exits
# 77 (skipped) without kubectl.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KUBECTL=${KUBECTL:-kubectl}
PY=${PYTHON:-python3}
if ! command -v "$KUBECTL" >/dev/null 2>&1; then
    echo "skipped: no kubectl (Debian: apt-get install kubernetes-client)"
    exit 77
fi
WORK=$(mktemp -d)
PIDS=()          # everything started in the background, killed on exit
SERVER_PID=""
cleanup() {
    local rc=$? p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ "$rc" != 0 ] || [ "${FAILED:-0}" != 0 ]; then
        echo "# server log (last 40 lines):"
        tail -n 40 "$WORK"/server*.log 2>/dev/null | sed 's/^/#   /' || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PASSED=0 FAILED=0
check() { # check NAME COMMAND...: the command must succeed
    local name=$1; shift
    if "$@"; then PASSED=$((PASSED + 1)); echo "ok - $name"
    else FAILED=$((FAILED + 1)); echo "not ok - $name"; fi
}
not() { ! "$@"; }
wait_for() { # wait_for SECONDS COMMAND...: polls every 0.1 s
    local end=$((SECONDS + $1)); shift
    until "$@"; do [ "$SECONDS" -ge "$end" ] && return 1; sleep 0.1; done
}
# kubectl with this test's kubeconfig, and a HOME and cache of its own (nothing in ~/.kube);
# `timeout` bounds it (not --request-timeout: that would add timeout= to every query)
kc() { HOME="$WORK/home" timeout 60 "$KUBECTL" --kubeconfig "$WORK/kubeconfig" --cache-dir "$WORK/cache" "$@"; }
ctl() { # ctl METHOD PATH [JSON]: the server's control interface
    curl -sf -X "$1" "http://127.0.0.1:$CPORT$2" ${3:+-H 'Content-Type: application/json' -d "$3"}
}
# jsonpy EXPR < JSON: prints the Python expression over the parsed input as `d`
jsonpy() { "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
# events FILE: the watch events in FILE (JSON objects back to back, pretty or not), one
# compact line each: TYPE NAME RV (for ERROR: ERROR CODE REASON MESSAGE)
events() {
    "$PY" - "$1" <<'EOF'
import json, sys
text, dec, i = open(sys.argv[1]).read(), json.JSONDecoder(), 0
while True:
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        break
    try:
        ev, i = dec.raw_decode(text, i)
    except ValueError:
        break  # a line still being written
    o = ev.get("object", {})
    if ev.get("type") == "ERROR":
        print("ERROR", o.get("code"), o.get("reason"), o.get("message"))
    else:
        print(ev.get("type"), o.get("metadata", {}).get("name", "-"), o.get("metadata", {}).get("resourceVersion"))
EOF
}
stats() { ctl GET /stats | jsonpy "$1"; }
stats_is() { [ "$(stats "$1")" = "$2" ]; }          # stats_is EXPR VALUE
events_are() { [ "$(events "$1" | tr '\n' ' ')" = "$2" ]; }  # events_are FILE "T NAME RV ..."
fails_with() { [ "$1" != 0 ] && grep -Eq "$2" "$3"; }  # fails_with RC REGEX FILE

# ---- a CA, a server certificate for 127.0.0.1, a token, a fresh cluster's state
cd "$WORK"
mkdir home cache
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=fake-kube-ca" \
    -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=kube-apiserver" \
    -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" -days 2 \
    -extfile server.ext -out server.pem 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=other-ca" \
    -keyout other.key -out other.pem 2>/dev/null
TOKEN=$(openssl rand -hex 16)
echo "$TOKEN" > token

# No "resourceVersion": a fresh cluster, created at start as RV 1..6 (namespaces first).
cat > state.json <<'EOF'
{"namespaces": [{"metadata": {"name": "payments", "labels": {"team": "pay"}}},
                {"metadata": {"name": "batch"}}],
 "pods": [
  {"metadata": {"name": "api-1", "namespace": "payments", "labels": {"app": "api"}},
   "spec": {"nodeName": "node-a", "containers": [{"name": "api", "image": "registry.example/api:1"}]},
   "status": {"phase": "Running", "podIP": "10.244.1.5"}},
  {"metadata": {"name": "node-agent", "namespace": "payments", "labels": {"app": "agent"}},
   "spec": {"nodeName": "node-a", "hostNetwork": true, "containers": [{"name": "agent", "image": "registry.example/agent:1"}]},
   "status": {"phase": "Running", "podIP": "192.0.2.1"}},
  {"metadata": {"name": "job-1", "namespace": "batch", "labels": {"app": "job"}},
   "spec": {"nodeName": "node-a", "containers": [{"name": "job", "image": "registry.example/job:1"}]},
   "status": {"phase": "Running", "podIP": "10.244.1.6", "podIPs": [{"ip": "10.244.1.6"}, {"ip": "fd00:10:244:1::6"}]}},
  {"metadata": {"name": "job-2", "namespace": "batch", "labels": {"app": "job"}},
   "spec": {"nodeName": "node-b", "containers": [{"name": "job", "image": "registry.example/job:1"}]},
   "status": {"phase": "Pending", "podIP": "10.244.2.7"}}]}
EOF

start_server() { # start_server API_PORT CONTROL_PORT LOG (0: any free port)
    rm -f port cport
    "$PY" "$HERE/apiserver.py" --listen "127.0.0.1:$1" --port-file port --control "127.0.0.1:$2" \
        --control-port-file cport --cert server.pem --key server.key --token-file token \
        --state state.json --bookmark-interval 1 2>"$3" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    wait_for 10 test -s port || { echo "the server did not start"; cat "$3"; exit 1; }
    PORT=$(cat port) CPORT=$(cat cport)
}
start_server 0 0 server.log

write_kubeconfig() { # write_kubeconfig FILE CA
    cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: https://127.0.0.1:$PORT
    certificate-authority: $2
users:
- name: tester
  user:
    token: $TOKEN
contexts:
- name: fake
  context:
    cluster: fake
    user: tester
current-context: fake
EOF
}
write_kubeconfig kubeconfig "$WORK/ca.pem"
echo "# $("$KUBECTL" version --client 2>/dev/null | head -n 1); server on 127.0.0.1:$PORT, control on 127.0.0.1:$CPORT"

# ---- reads
kc get namespaces > ns.txt 2>&1 || true
check "kubectl get namespaces prints NAME STATUS AGE and both namespaces" \
    grep -Eq '^NAME +STATUS +AGE' ns.txt
check "  ... batch and payments are Active" \
    bash -c 'grep -Eq "^batch +Active " ns.txt && grep -Eq "^payments +Active " ns.txt && [ $(wc -l < ns.txt) = 3 ]'

kc get pods -A > pods.txt 2>&1 || true
check "kubectl get pods -A prints the table's columns" \
    grep -Eq '^NAMESPACE +NAME +READY +STATUS +RESTARTS +AGE *$' pods.txt
check "  ... and names every pod with its namespace and status" \
    bash -c 'grep -Eq "^payments +api-1 +0/1 +Running " pods.txt && grep -Eq "^payments +node-agent .* Running " pods.txt &&
             grep -Eq "^batch +job-1 .* Running " pods.txt && grep -Eq "^batch +job-2 .* Pending " pods.txt &&
             [ $(wc -l < pods.txt) = 5 ]'
kc get pods -A -o wide > wide.txt 2>&1 || true
check "kubectl get pods -A -o wide shows IP and NODE" \
    bash -c 'grep -Eq "^NAMESPACE +NAME .* IP +NODE " wide.txt && grep -Eq "^payments +node-agent .* 192\.0\.2\.1 +node-a " wide.txt &&
             grep -Eq "^batch +job-2 .* 10\.244\.2\.7 +node-b " wide.txt'
kc get pod -n batch job-1 > one.txt 2>&1 || true
check "kubectl get pod -n batch job-1 (a single object as a table)" grep -Eq '^job-1 +0/1 +Running ' one.txt
kc get pod -n batch nope > nope.txt 2>&1 && rc=0 || rc=$?
check "a pod that is not there: NotFound" fails_with "$rc" 'pods "nope" not found' nope.txt

kc get pods -A -o json > pods.json 2>pods.err || true
check "kubectl get pods -A -o json: four Pods with their podIPs" bash -c "$PY"' - pods.json <<"EOF"
import json, sys
d = json.load(open(sys.argv[1]))
pods = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in d["items"]}
assert d["kind"] == "List" and len(pods) == 4, d
assert all(p["kind"] == "Pod" and p["apiVersion"] == "v1" and p["metadata"]["uid"] and
           p["metadata"]["resourceVersion"].isdigit() for p in pods.values())
ips = {k: [i["ip"] for i in p["status"]["podIPs"]] for k, p in pods.items()}
assert ips == {("payments", "api-1"): ["10.244.1.5"], ("payments", "node-agent"): ["192.0.2.1"],
               ("batch", "job-1"): ["10.244.1.6", "fd00:10:244:1::6"], ("batch", "job-2"): ["10.244.2.7"]}, ips
assert pods[("payments", "node-agent")]["spec"]["hostNetwork"] is True
assert "hostNetwork" not in pods[("payments", "api-1")]["spec"]
EOF'
kc get namespaces -o json > ns.json 2>&1 || true
check "namespaces carry the kubernetes.io/metadata.name label" bash -c "$PY"' - ns.json <<"EOF"
import json, sys
d = json.load(open(sys.argv[1]))
assert sorted(n["metadata"]["name"] for n in d["items"]) == ["batch", "payments"]
for n in d["items"]:
    assert n["metadata"]["labels"]["kubernetes.io/metadata.name"] == n["metadata"]["name"], n
    assert n["status"]["phase"] == "Active"
EOF'

kc get pods -A --field-selector spec.nodeName=node-a -o name > node-a.txt 2>&1 || true
check "--field-selector spec.nodeName=node-a: exactly node-a's three pods" \
    test "$(sort node-a.txt | tr '\n' ' ')" = "pod/api-1 pod/job-1 pod/node-agent "
check "  ... sent as fieldSelector=spec.nodeName%3Dnode-a" \
    test "$(stats '[q["query"] for q in d["queries"] if "fieldSelector" in q["query"]][-1]')" = \
         "fieldSelector=spec.nodeName%3Dnode-a&limit=500"
kc get pods -A --field-selector spec.nodeName=node-a,metadata.namespace=batch -o name > sel2.txt 2>&1 || true
check "  ... joined with metadata.namespace=batch: job-1 alone" test "$(cat sel2.txt)" = "pod/job-1"
kc get pods -A -l 'app in (api,agent)' -o name > lsel.txt 2>&1 || true
check "-l 'app in (api,agent)': api-1 and node-agent" test "$(sort lsel.txt | tr '\n' ' ')" = "pod/api-1 pod/node-agent "
kc get pods -A --field-selector spec.nodeNam=node-a > badsel.txt 2>&1 && rc=0 || rc=$?
check "an unsupported field label is refused (400), not ignored" \
    fails_with "$rc" 'field label not supported: spec.nodeNam' badsel.txt

kc get pods -A --chunk-size=1 -o name > chunks.txt 2>&1 || true
check "--chunk-size=1: all four pods over four pages (limit + continue)" \
    test "$(wc -l < chunks.txt) $(stats 'sum(1 for q in d["queries"] if "continue=" in q["query"])')" = "4 3"

# ---- authentication: a wrong token, a rotated token file, a CA the client does not trust
kc --token=wrong-token get pods -A > wrong.txt 2>&1 && rc=0 || rc=$?
check "a wrong token: Unauthorized" fails_with "$rc" Unauthorized wrong.txt
curl -s --cacert ca.pem "https://127.0.0.1:$PORT/api/v1/pods" > notoken.json || true
check "no token: 401 with the v1 Status body" test "$(cat notoken.json)" = \
    '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}'
NEW_TOKEN=$(openssl rand -hex 16)
echo "$NEW_TOKEN" > token
kc get pods -A -o name > rotated-old.txt 2>&1 && rc=0 || rc=$?
kc --token="$NEW_TOKEN" get pods -A -o name > rotated-new.txt 2>&1 && rc2=0 || rc2=$?
check "the token file is re-read: after rotation the old token fails" fails_with "$rc" Unauthorized rotated-old.txt
check "  ... and the new one works" test "$rc2 $(wc -l < rotated-new.txt)" = "0 4"
echo "$TOKEN" > token
check "  ... and 401s are counted in /stats" stats_is 'd["unauthorized"] >= 3' True
write_kubeconfig other.kubeconfig "$WORK/other.pem"
HOME="$WORK/home" timeout 60 "$KUBECTL" --kubeconfig other.kubeconfig --cache-dir "$WORK/cache2" get pods -A > untrusted.txt 2>&1 && rc=0 || rc=$?
check "a client that does not trust the CA is refused (x509)" fails_with "$rc" 'x509|certificate' untrusted.txt

# ---- kubectl's own watch: list, then watch from the list's resourceVersion
ctl POST /reset-stats >/dev/null
kc get pods -A --watch --output-watch-events -o json > watch.json 2>watch.err &
PIDS+=($!)
kc get pods -A --watch > watch.txt 2>watch-table.err &
PIDS+=($!)
check "both kubectl watches are open" wait_for 15 stats_is 'd["open_watches"]' 2
check "  ... each resumed from its list's resourceVersion (6)" \
    test "$(stats '[q["query"] for q in d["queries"] if "watch" in q["query"]]')" = \
         "['resourceVersion=6&watch=true', 'resourceVersion=6&watch=true']"
POD='{"metadata":{"name":"web-9","namespace":"payments","labels":{"app":"web"}},
      "spec":{"nodeName":"node-a","containers":[{"name":"web","image":"registry.example/web:1"}]},
      "status":{"phase":"Running","podIP":"10.244.1.9"}}'
ADDED_RV=$(ctl POST /pods "$POD" | jsonpy 'd["metadata"]["resourceVersion"]')
DELETED_RV=$(ctl DELETE /pods/payments/web-9 | jsonpy 'd["metadata"]["resourceVersion"]')
check "the control interface stamps RV 7 on the add and 8 on the delete" test "$ADDED_RV $DELETED_RV" = "7 8"
web9_events() { [ "$(events watch.json | grep web-9 | tr '\n' ' ')" = "ADDED web-9 7 DELETED web-9 8 " ]; }
check "kubectl --watch -o json sees web-9 ADDED then DELETED" wait_for 10 web9_events
check "  ... after the four pods it listed" test "$(events watch.json | grep -c '^ADDED .* [3-6]$')" = 4
check "kubectl --watch prints web-9's row in the table" \
    wait_for 10 grep -Eq '^payments +web-9 +0/1 +Running ' watch.txt

# ---- raw watches: history from an RV, bookmarks, selectors, the cacher's DELETED rule
kc get --raw '/api/v1/pods?watch=1&resourceVersion=1&allowWatchBookmarks=true&timeoutSeconds=3' > raw.json 2>raw.err && rc=0 || rc=$?
events raw.json > raw.txt || true
check "raw watch from RV 1 ends after timeoutSeconds=3, cleanly" test "$rc" = 0
check "  ... replays the history: 4 pods ADDED, web-9 ADDED and DELETED" \
    test "$(grep -v BOOKMARK raw.txt | tr '\n' ' ')" = \
         "ADDED api-1 3 ADDED node-agent 4 ADDED job-1 5 ADDED job-2 6 ADDED web-9 7 DELETED web-9 8 "
check "  ... and sends BOOKMARKs at RV 8" grep -q '^BOOKMARK - 8$' raw.txt
check "  ... the watch asked for bookmarks from RV 1 (as /stats shows)" \
    stats_is 'any(__import__("urllib.parse").parse.parse_qs(q["query"]) == {"watch": ["1"], "resourceVersion": ["1"],
              "allowWatchBookmarks": ["true"], "timeoutSeconds": ["3"]} for q in d["queries"])' True
kc get --raw '/api/v1/namespaces/batch/pods?watch=1&fieldSelector=spec.nodeName%3Dnode-b&timeoutSeconds=1' > rawsel.json 2>&1 || true
check "raw watch in batch with spec.nodeName=node-b, no RV: job-2's synthetic ADDED alone" \
    events_are rawsel.json "ADDED job-2 6 "
ctl POST /pods '{"metadata":{"name":"api-1","namespace":"payments","labels":{"app":"api-old"}},
                 "spec":{"nodeName":"node-a","containers":[{"name":"api","image":"registry.example/api:1"}]},
                 "status":{"phase":"Running","podIP":"10.244.1.5"}}' >/dev/null
kc get --raw '/api/v1/pods?watch=1&resourceVersion=8&labelSelector=app%3Dapi&timeoutSeconds=1' > rawlab.json 2>&1 || true
check "a pod that stops matching the watch's selector is DELETED for it (RV 9)" \
    events_are rawlab.json "DELETED api-1 9 "

# ---- control: dropped and expired watches
kc get --raw '/api/v1/pods?watch=1&resourceVersion=9' > dropped.json 2>dropped.err &
DROP_PID=$!; PIDS+=($DROP_PID)
check "a raw watch is open" wait_for 10 stats_is 'd["open_watches_by_resource"]["pods"]' 3
check "POST /drop-watches aborts all three" test "$(ctl POST /drop-watches | jsonpy 'd["dropped"]')" = 3
wait "$DROP_PID" && rc=0 || rc=$?
check "  ... mid-stream: kubectl get --raw fails (no final chunk)" fails_with "$rc" EOF dropped.err
check "  ... and no watch is left open" wait_for 10 stats_is 'd["open_watches"]' 0
kc get --raw '/api/v1/pods?watch=1&resourceVersion=9' > expired.json 2>expired.err &
EXP_PID=$!; PIDS+=($EXP_PID)
wait_for 10 stats_is 'd["open_watches"]' 1 || true
check "POST /expire-watches ends the open watch" test "$(ctl POST /expire-watches | jsonpy 'd["expired"]')" = 1
wait "$EXP_PID" && rc=0 || rc=$?
check "  ... cleanly, with the 410 ERROR event" \
    test "$rc $(events expired.json)" = "0 ERROR 410 Expired too old resource version: 9 (9)"

# ---- compaction: watch and list from an old RV
ctl POST /pods "$POD" >/dev/null   # RV 10
check "POST /compact: everything before RV 10 is too old" test "$(ctl POST /compact | jsonpy 'd["compacted"]')" = 10
kc get --raw '/api/v1/pods?watch=1&resourceVersion=1&allowWatchBookmarks=true&timeoutSeconds=3' > old.json 2>&1 || true
check "raw watch from RV 1 after compaction: the single 410 ERROR event" \
    test "$(events old.json)" = "ERROR 410 Expired too old resource version: 1 (10)"
kc get --raw '/api/v1/pods?resourceVersion=1&limit=1' > oldlist.txt 2>&1 && rc=0 || rc=$?
check "a list at RV 1 after compaction: 410 Expired" fails_with "$rc" Expired oldlist.txt
kc get --raw '/api/v1/pods?watch=1&resourceVersion=10&timeoutSeconds=1' > current.json 2>&1 && rc=0 || rc=$?
check "a watch from the compaction point itself is fine (no events, clean end)" \
    test "$rc $(wc -c < current.json)" = "0 0"

# ---- restart on the same port from the saved state
OLD_RV=$(kc get --raw /api/v1/pods | jsonpy 'd["metadata"]["resourceVersion"]')
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
check "the server stops on SIGTERM" not kill -0 "$SERVER_PID" 2>/dev/null
start_server "$PORT" "$CPORT" server2.log
kc get pods -A -o name > after.txt 2>&1 || true
check "restarted on the same port: the five pods are back" test "$(wc -l < after.txt)" = 5
check "  ... at the same resourceVersion ($OLD_RV)" \
    test "$(kc get --raw /api/v1/pods | jsonpy 'd["metadata"]["resourceVersion"]')" = "$OLD_RV"
ctl DELETE /namespaces/batch >/dev/null
check "  ... RVs go on after it: deleting batch is 11 (Terminating) .. 14 (gone)" \
    test "$(kc get --raw /api/v1/namespaces | jsonpy 'd["metadata"]["resourceVersion"], [n["metadata"]["name"] for n in d["items"]]')" = \
         "('14', ['payments'])"
kc get --raw '/api/v1/pods?watch=1&resourceVersion=9&timeoutSeconds=1' > restart-old.json 2>&1 || true
check "  ... a watch from before the restart (RV 9, never compacted) is 410" \
    test "$(events restart-old.json)" = "ERROR 410 Expired too old resource version: 9 (10)"
kc get --raw '/api/v1/pods?watch=1&resourceVersion=10&timeoutSeconds=1' > restart-new.json 2>&1 || true
check "  ... a watch from the restart point sees batch's two pods DELETED" \
    events_are restart-new.json "DELETED job-1 12 DELETED job-2 13 "

kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
none_alive() { local p; for p in "${PIDS[@]}"; do ! kill -0 "$p" 2>/dev/null || return 1; done; }
check "no process of this test is left" none_alive
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]

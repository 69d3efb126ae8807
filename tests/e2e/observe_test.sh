#!/usr/bin/env bash
# End-to-end: the daemon's control socket (run --control). `observe` sees exactly the
# decision lines the daemon logs (same lines, same order), filtered ones exactly their
# subset, the table is aligned, `status` answers, CloudEvents are read too, and a client
# that never reads neither slows nor blocks the queue (its drops are counted). Then the
# operator tools on the live log: suggest's rules, diff's changed flows, explain agreeing
# with every TCP decision, and the suggestion applied to the daemon. Needs root.
# Usage: observe_test.sh path/to/egress-inspector     Ends with 'N passed, N failed'.
set -euo pipefail
BIN=$(readlink -f "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
source "$HERE/topology.sh"
trap 'rc=$?; keep_logs $rc ei-e2e-observe daemon.log daemon.err observed; topology_cleanup; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

topology_up
make_cert "$WORK" allowed.example '*.allowed.example' denied.example denied2.example other.example
start_servers "$WORK"
RULES=$WORK/rules
cat > "$RULES" <<RULES
allow allowed.example
allow *.allowed.example
allow 203.0.113.250/32:22
allow [2001:db8::250]:22
RULES
HOSTS=$WORK/hosts
cat > "$HOSTS" <<HOSTS
203.0.113.10 allowed.example api.allowed.example denied.example denied2.example other.example
2001:db8::10 allowed.example denied.example
HOSTS
PORTS=(--ports 80,443,22)
in_node "$BIN" iptables --apply --in-iface veth-pod+ --hook forward "${PORTS[@]}" --queue 0
# the socket's directory is open to all, so that only the socket's own mode keeps others out
chmod 711 "$WORK"
mkdir -m 755 "$WORK/run"
CONTROL=$WORK/run/control.sock
DAEMON_LOG=$WORK/daemon.log
start_daemon() { # start_daemon [extra args]
    : >"$DAEMON_LOG"
    ip netns exec "$NS_NODE" "$BIN" run --rules "$RULES" --queue 0 "${PORTS[@]}" --metrics 127.0.0.1:9153 \
        --hosts "$HOSTS" --resolver 127.0.0.1:9 --control "$CONTROL" "$@" \
        >>"$DAEMON_LOG" 2>>"$WORK/daemon.err" &
    DAEMON=$!
    EI_PIDS+=($DAEMON)
    for _ in $(seq 50); do grep -q '"event":"start"' "$DAEMON_LOG" 2>/dev/null && return 0; sleep 0.1; done
    echo "daemon did not start:"; cat "$WORK/daemon.err"; return 1
}
stop_daemon() { kill -TERM "$DAEMON"; wait "$DAEMON" 2>/dev/null || true; }
status_field() { # status_field PYTHON-EXPRESSION-OF-s
    "$BIN" status --control "$CONTROL" | /usr/bin/python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"
}
wait_observers() { # wait_observers N: until the daemon counts N observers
    for _ in $(seq 100); do [ "$(status_field 's["control"]["observers"]' 2>/dev/null)" = "$1" ] && return 0; sleep 0.1; done
    echo "    observers never reached $1"; return 1
}
https() { # https NAME [IP]: curl's exit code
    local name=$1 ip=${2:-203.0.113.10} target=${2:-203.0.113.10}
    [[ $ip == *:* ]] && target="[$ip]"
    local rc=0
    in_pod curl -sk --max-time 5 --resolve "$name:443:$target" "https://$name/" -o /dev/null 2>/dev/null || rc=$?
    echo $rc
}
metric() { in_node curl -s --max-time 2 http://127.0.0.1:9153/metrics | awk -v m="$1" '$1 == m {print $2}'; }
audit_lines() { grep -E '"event":"(decision|decisions_aggregated)"' "$DAEMON_LOG" || true; }

echo "== a missing socket"
rc=0; "$BIN" observe --control "$WORK/run/nothing.sock" >/dev/null 2>"$WORK/missing.err" || rc=$?
check "observe on a socket that is not there: exit 1, and says so" \
    bash -c "[ $rc = 1 ] && grep -q 'no control socket at' '$WORK/missing.err'"
check "run --control-group without --control is refused" not "$BIN" run --rules "$RULES" --control-group root

echo "== observe sees exactly what the daemon logs"
start_daemon
check "the socket is 0600 ($(stat -c %a "$CONTROL"))" [ "$(stat -c %a "$CONTROL")" = 600 ]
check "another user cannot connect" bash -c "! setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 -c \
    'import socket,sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' '$CONTROL' 2>/dev/null"
check "a second daemon on the same socket is refused" bash -c \
    "! ip netns exec $NS_NODE timeout 10 '$BIN' run --rules '$RULES' --queue 5 --dns-queue off --control '$CONTROL' >/dev/null 2>'$WORK/second.err' &&
     grep -q 'listens on' '$WORK/second.err'"
check "status: the mode and the rules generation" \
    [ "$(status_field 's["mode"], s["rules_generation"]')" = "enforce 1" ]
"$BIN" observe --control "$CONTROL" --output json --follow >"$WORK/observed" 2>"$WORK/observe.err" &
OBS_ALL=$!
"$BIN" observe --control "$CONTROL" --verdict deny --name 'denied*' --output json --follow >"$WORK/filtered" 2>/dev/null &
OBS_FILTERED=$!
"$BIN" observe --control "$CONTROL" --output table --count 3 >"$WORK/table" 2>/dev/null &
OBS_TABLE=$!
# on a terminal: a table, with colour unless NO_COLOR is set
script -qefc "'$BIN' observe --control '$CONTROL' --count 1" /dev/null >"$WORK/tty" 2>/dev/null </dev/null &
OBS_TTY=$!
NO_COLOR=1 script -qefc "'$BIN' observe --control '$CONTROL' --count 1" /dev/null >"$WORK/tty_nocolor" 2>/dev/null </dev/null &
OBS_TTY_NC=$!
EI_PIDS+=($OBS_ALL $OBS_FILTERED $OBS_TABLE $OBS_TTY $OBS_TTY_NC)
check "five observers are counted" wait_observers 5
for _ in $(seq 50); do in_pod bash -c 'exec 3<>/dev/tcp/203.0.113.250/22' 2>/dev/null && break; sleep 0.1; done
ok=0
for name in allowed.example api.allowed.example; do [ "$(https $name)" = 0 ] && ok=$((ok + 1)); done
[ "$(https allowed.example 2001:db8::10)" = 0 ] && ok=$((ok + 1))
for _ in 1 2 3; do https denied.example >/dev/null; done # one line, then an aggregate at stop
https denied2.example >/dev/null
https other.example >/dev/null
https denied.example 2001:db8::10 >/dev/null
in_pod curl -s --max-time 3 -H 'Host: denied.example' http://203.0.113.10/ >/dev/null 2>&1 || true
check "the allowed names were allowed ($ok of 3)" [ "$ok" = 3 ]
for _ in $(seq 50); do kill -0 "$OBS_TABLE" 2>/dev/null || break; sleep 0.1; done
check "observe --count 3 ends by itself, exit 0" wait "$OBS_TABLE"
kill -USR2 "$DAEMON"; sleep 0.3
check "status follows the mode (SIGUSR2: monitor)" [ "$(status_field 's["mode"]')" = monitor ]
check "status counts the decisions" [ "$(status_field 's["decisions"]["allowed"] >= 4 and s["decisions"]["denied"] >= 5')" = True ]
check "status has the queue's packets and verdicts" \
    [ "$(status_field 's["queues"][0]["queue"] == 0 and s["queues"][0]["packets"] > 0')" = True ]
stop_daemon
check "the socket file is gone after stop" [ ! -e "$CONTROL" ]
sleep 0.5
kill -TERM "$OBS_ALL" "$OBS_FILTERED" 2>/dev/null || true
check "observe --follow exits 0 on SIGTERM" wait "$OBS_ALL"
wait "$OBS_FILTERED" 2>/dev/null || true
audit_lines >"$WORK/logged"
cp "$DAEMON_LOG" "$WORK/first.log" # the operator tools read it at the end
echo "    the log: $(wc -l <"$WORK/logged") decision lines ($(grep -c decisions_aggregated "$WORK/logged" || true) aggregated); observed: $(wc -l <"$WORK/observed")"
check "observe printed exactly the daemon's decision lines, in order" cmp -s "$WORK/logged" "$WORK/observed"
check "... and an aggregate line among them" grep -q '"event":"decisions_aggregated"' "$WORK/observed"
/usr/bin/python3 - "$WORK/logged" >"$WORK/filtered.want" <<'PY'
import fnmatch, json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    if d.get("verdict") == "deny" and d.get("host") and fnmatch.fnmatch(d["host"], "denied*"):
        print(line, end="")
PY
echo "    filtered: $(wc -l <"$WORK/filtered") lines, $(wc -l <"$WORK/filtered.want") wanted"
check "--verdict deny --name 'denied*' printed exactly the matching subset" \
    bash -c "[ -s '$WORK/filtered.want' ] && cmp -s '$WORK/filtered.want' '$WORK/filtered'"
table_aligned() {
    local header row
    header=$(head -1 "$WORK/table"); row=$(grep ' allow ' "$WORK/table" | grep 'allowed.example:443' | head -1)
    echo "    $header"; echo "    $row"
    [ "$(wc -l <"$WORK/table")" = 4 ] || return 1
    [[ $header =~ ^TIME\ +VERDICT\ +REASON\ +POLICY\ +SOURCE\ +DESTINATION\ +MODE$ ]] || return 1
    /usr/bin/python3 - "$header" "$row" <<'PY'
import sys
header, row = sys.argv[1], sys.argv[2]
cols = ["VERDICT", "REASON", "POLICY", "SOURCE", "DESTINATION", "MODE"]
want = ["allow", "allowed_name", "default", "10.244.0.10", "allowed.example:443", "enforce"]
sys.exit(0 if all(row.find(w, header.index(c)) == header.index(c) for c, w in zip(cols, want)) else 1)
PY
}
check "--output table: a header and aligned rows (no colour off a terminal)" table_aligned
check "... no escape codes in a file" not grep -q $'\033' "$WORK/table"
wait "$OBS_TTY" "$OBS_TTY_NC" 2>/dev/null || true
check "on a terminal: the table, the verdict in colour" grep -qE $'\033\\[3[12]m(allow|deny)' "$WORK/tty"
no_colour() { grep -q VERDICT "$WORK/tty_nocolor" && ! grep -q $'\033' "$WORK/tty_nocolor"; }
check "on a terminal with NO_COLOR: the table, no colour" no_colour
rc=0; "$BIN" status --control "$CONTROL" >/dev/null 2>&1 || rc=$?
check "status with the daemon stopped: exit 1" [ "$rc" = 1 ]

echo "== CloudEvents are read too"
start_daemon --log-format cloudevents
"$BIN" observe --control "$CONTROL" --verdict deny --source 10.244.0.0/24 --count 1 --output json >"$WORK/ce" 2>/dev/null &
OBS_CE=$!
EI_PIDS+=($OBS_CE)
wait_observers 1 || true
https allowed.example >/dev/null
https denied2.example >/dev/null
for _ in $(seq 50); do kill -0 "$OBS_CE" 2>/dev/null || break; sleep 0.1; done
check "a CloudEvent deny is filtered by verdict and source" bash -c \
    "[ \"\$(wc -l <'$WORK/ce')\" = 1 ] && grep -q '\"outcome\":\"denied\".*\"host\":\"denied2.example\"' '$WORK/ce'"
check "the line is the daemon's own" bash -c "grep -qxF \"\$(cat '$WORK/ce')\" '$DAEMON_LOG'"
stop_daemon

echo "== a client that never reads does not slow the daemon"
start_daemon
burst() { # N connections, one at a time, each a decision line; prints how many succeeded
    in_pod /usr/bin/python3 -c '
import socket, sys
ok = 0
for i in range(int(sys.argv[1])):
    try:
        s = socket.create_connection(("203.0.113.250", 22), 3)
        s.recv(64)  # the banner: the server has answered, the flow is settled
        s.close()
        ok += 1
    except OSError:
        pass
print(ok)' "$1"
}
t0=$(now_ms)
base=$(burst 2000)
t1=$(now_ms)
base_us=$(( (t1 - t0) * 1000 / 2000 ))
echo "    with no client: $base connections in $((t1 - t0)) ms ($base_us us each)"
/usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"observe\n"); time.sleep(600)' "$CONTROL" &
STALL=$!
EI_PIDS+=($STALL)
check "the stalled observer is counted" wait_observers 1
t0=$(now_ms)
got=$(burst 8000)
t1=$(now_ms)
dropped=$(metric egress_inspector_control_lines_dropped_total)
stall_us=$(( (t1 - t0) * 1000 / 8000 ))
check "a burst of 8000 connections is all allowed with the stall connected ($got in $((t1 - t0)) ms, $stall_us us each)" \
    [ "$got" = 8000 -a "$base" = 2000 -a $((t1 - t0)) -lt 60000 ]
check "... and no slower than with no client at all (within 3x: $stall_us vs $base_us us)" \
    [ "$stall_us" -le $((3 * base_us + 200)) ]
check "the stall's missed lines are counted in /metrics (${dropped:-none})" [ "${dropped:-0}" -gt 0 ]
check "/metrics counts the control client" [ "$(metric egress_inspector_control_clients)" -ge 1 ]
check "the daemon's own log got every line ($(grep -c '"reason":"allowed_address"' "$DAEMON_LOG"))" \
    [ "$(grep -c '"reason":"allowed_address"' "$DAEMON_LOG")" -ge 8000 ]
check "/healthz: the queue loop is alive" [ "$(in_node curl -s --max-time 2 http://127.0.0.1:9153/healthz)" = ok ]
check "status still answers, counting the drops" [ "$(status_field 's["control"]["lines_dropped"] > 0')" = True ]
check "an allowed name still connects" [ "$(https allowed.example)" = 0 ]
/usr/bin/python3 -c '
import socket, sys, time
held = []
for _ in range(16):  # with the stall: more than the 16 the daemon serves
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); held.append(s)
time.sleep(4)' "$CONTROL" &
CROWD=$!
EI_PIDS+=($CROWD)
sleep 0.5
rc=0; "$BIN" status --control "$CONTROL" >/dev/null 2>"$WORK/crowded" || rc=$?
check "status as the 17th client: exit 1, told why ($(cat "$WORK/crowded"))" \
    bash -c "[ $rc = 1 ] && grep -q 'too many clients' '$WORK/crowded'"
rc=0; "$BIN" observe --control "$CONTROL" >/dev/null 2>"$WORK/crowded" || rc=$?
check "observe as the 17th client: exit 1, told why" bash -c "[ $rc = 1 ] && grep -q 'too many clients' '$WORK/crowded'"
kill "$CROWD" 2>/dev/null || true
wait "$CROWD" 2>/dev/null || true
t0=$(now_ms)
stop_daemon
t1=$(now_ms)
check "SIGTERM with the stall connected exits, bounded ($((t1 - t0)) ms)" [ $((t1 - t0)) -lt 6000 ]
check "the socket file is gone" [ ! -e "$CONTROL" ]
kill "$STALL" 2>/dev/null || true
wait "$STALL" 2>/dev/null || true

echo "== suggest, diff and explain on the live log; the suggestion applied live"
"$BIN" suggest --from "$WORK/first.log" --rules "$RULES" >"$WORK/suggested" 2>"$WORK/suggest.err"
sed -n 's/^allow /    suggested: allow /p' "$WORK/suggested" | grep -v 'allowed.example\|:22' || true
check "suggest on the daemon's log: rules check-rules takes" "$BIN" check-rules "$WORK/suggested"
suggested() { for name in "$@"; do grep -q "^allow $name  # seen" "$WORK/suggested" || return 1; done; }
check "... which allow the names denied live (denied.example, denied2.example, other.example)" \
    suggested denied.example denied2.example other.example
check "... and keep the rules in force, nothing else added" bash -c \
    "[ \"\$(grep -c '^allow ' '$WORK/suggested')\" = 7 ] && grep -q '^allow \*.allowed.example\$' '$WORK/suggested'"
"$BIN" diff --from "$WORK/first.log" --hosts "$HOSTS" "$RULES" "$WORK/suggested" >"$WORK/diff" 2>"$WORK/diff.err"
check "diff: exactly the flows denied by name turn allowed ($(wc -l <"$WORK/diff") flows)" /usr/bin/python3 - \
    "$WORK/diff" "$WORK/logged" <<'PY'
import json, sys
changed = [json.loads(l) for l in open(sys.argv[1])]
denied = {(d["src"], d.get("host"), d["dst"], d["dport"]) for d in map(json.loads, open(sys.argv[2]))
          if d.get("event") == "decision" and d["reason"] == "name_not_allowed"}
got = {(c["src"], c["host"], c["dst"], c["dport"]) for c in changed}
ok = all(c["old"]["verdict"] == "deny" and c["new"]["verdict"] == "allow" for c in changed)
sys.exit(0 if ok and denied and got == denied else 1)
PY
# explain, for every TCP flow decided live: the daemon's verdict, reason, policy and rule
/usr/bin/python3 - "$BIN" "$RULES" "$HOSTS" "$WORK/logged" >"$WORK/explained" <<'PY'
import json, subprocess, sys
bin_, rules, hosts, logged = sys.argv[1:]
agree = differ = 0
for d in map(json.loads, open(logged)):
    if d.get("event") != "decision" or d["proto"] != "tcp" or d["l7"] not in ("tls", "http", "none"):
        continue
    args = [bin_, "explain", "--rules", rules, "--source", d["src"], "--dest", d["dst"], "--port", str(d["dport"]),
            "--hosts", hosts, "--dest-check", "strict", "--ports", "80,443,22"]
    if d.get("host"):
        args += ["--name", d["host"], "--l7", d["l7"]]
    e = json.loads(subprocess.run(args, capture_output=True, text=True).stdout or "{}")
    same = all(e.get(k) == d.get(k) for k in ("verdict", "reason", "policy", "rule"))
    agree, differ = agree + same, differ + (not same)
    if not same:
        print("    differ:", d, e)
print(agree, differ)
PY
read -r agree differ < <(tail -1 "$WORK/explained")
grep '    differ' "$WORK/explained" || true
check "explain agrees with the daemon on every TCP flow it decided live ($agree agree, $differ differ)" \
    [ "$agree" -ge 8 -a "$differ" = 0 ]
RULES=$WORK/suggested start_daemon
check "with the suggestion: denied.example is fetched" [ "$(https denied.example)" = 0 ]
check "... other.example too, and allowed.example still" [ "$(https other.example)$(https allowed.example)" = 00 ]
check "... and no name_not_allowed is left in the log" not grep -q '"reason":"name_not_allowed"' "$DAEMON_LOG"
stop_daemon
in_node "$BIN" iptables --remove

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]

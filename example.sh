#!/usr/bin/env bash
# Installs what is missing, builds egress-inspector, and replays the bundled capture
# (tests/pcaps/example.pcap) against rules/example.rules: one JSON line per decided flow.
#   bash example.sh --live   (root) the live daemon instead: pod, node and internet network
#                            namespaces, the node rules, curl to an allowed and a denied
#                            name, the decision lines, then everything removed again.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps "$([ "${1:-}" = --live ] && echo test || echo build)"
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
if [ "${1:-}" != --live ]; then
    ./build/egress-inspector check-rules rules/example.rules >&2
    exec ./build/egress-inspector replay --rules rules/example.rules --pcap tests/pcaps/example.pcap --summary
fi

[ "$(id -u)" = 0 ] || { echo "example.sh --live builds network namespaces: run it as root" >&2; exit 1; }
BIN=$PWD/build/egress-inspector
WORK=$(mktemp -d)
source tests/e2e/topology.sh # pod 10.244.0.10 -> node -> internet 203.0.113.0/24; removed on exit
trap 'topology_cleanup; rm -rf "$WORK"' EXIT
topology_up
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=example \
    -addext "subjectAltName=DNS:allowed.example,DNS:denied.example" \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
in_net python3 tests/e2e/servers.py "$WORK/cert.pem" "$WORK/key.pem" &
EI_PIDS+=($!)
printf 'allow allowed.example\n' > "$WORK/rules"
printf '203.0.113.10 allowed.example denied.example\n' > "$WORK/hosts"
echo "# rules: allow allowed.example (everything else denied); both names live at 203.0.113.10" >&2
in_node "$BIN" run --rules "$WORK/rules" --queue 0 --mode enforce --hosts "$WORK/hosts" \
    --resolver 127.0.0.1:9 > "$WORK/log" 2>&1 &
EI_PIDS+=($!)
for _ in $(seq 50); do grep -q '"event":"start"' "$WORK/log" && break; sleep 0.1; done
for _ in $(seq 50); do in_node bash -c 'exec 3<>/dev/tcp/203.0.113.10/443' 2>/dev/null && break; sleep 0.1; done
in_node "$BIN" iptables --apply --in-iface veth-pod+ --hook forward --ports 80,443 --queue 0
for name in allowed.example denied.example; do
    echo "# pod: curl https://$name/" >&2
    in_pod curl -sk --max-time 5 --resolve "$name:443:203.0.113.10" "https://$name/" \
        || echo "curl: connection reset by the inspector (exit $?)"
done
sleep 0.2
echo "# the inspector's decision lines:" >&2
grep '"event":"decision"' "$WORK/log"

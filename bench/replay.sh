#!/usr/bin/env bash
# Replay throughput against peers, name agreement, and instructions per packet.
#
# 1. gen_capture.py writes the capture ($BENCH_FLOWS flows) and, from the same bytes, a
#    slice of its first $BENCH_CG_FLOWS flows for callgrind.
# 2. hyperfine times, on the same capture and in the same run: egress-inspector replay
#    (decision lines to /dev/null, hyperfine's default), ndpiReader, tshark extracting the
#    same names, and bench/pcap_floor (libpcap reading the packets and nothing else).
#    The capture is read once before, so every reader starts from the page cache.
# 3. names_agree.py: the inspector's and ndpiReader's names against tshark's, per flow.
# 4. valgrind --tool=callgrind on the slice: replay, and the floor for context.
#
# Called by bench/run with BIN, HELPERS, RES and WORK set; writes into $RES.
set -euo pipefail
: "${BIN:?}" "${HELPERS:?}" "${RES:?}" "${WORK:?}"
HERE=$(cd "$(dirname "$0")" && pwd)
FLOWS=${BENCH_FLOWS:-200000}
CG_FLOWS=${BENCH_CG_FLOWS:-20000}
RUNS=${BENCH_RUNS:-5}            # the fast readers: replay, floor
NDPI_RUNS=${BENCH_NDPI_RUNS:-3}
TSHARK_RUNS=${BENCH_TSHARK_RUNS:-1}
RULES=$HERE/bench.rules
CAP=$WORK/capture.pcap
SLICE=$WORK/slice.pcap

echo "replay: generating $FLOWS flows" >&2
python3 "$HERE/gen_capture.py" --flows "$FLOWS" --out "$CAP" \
    --prefix-flows "$CG_FLOWS" --prefix-out "$SLICE" 2>"$RES/capture.json"
"$HELPERS/pcap_floor" "$SLICE" >"$RES/slice.json"
cat "$CAP" >/dev/null

# Once the build checks each allowed name against the addresses DNS gave it (the default,
# --dest-check strict), a capture without DNS answers is all dns_unresolved denies: this
# benchmark measures parsing and policy, so it turns that check off where the option exists.
EXTRA=()
if "$BIN" replay --rules "$RULES" --pcap "$SLICE" --dest-check off >/dev/null 2>&1; then
    EXTRA=(--dest-check off)
fi
REPLAY="$BIN replay --rules $RULES --pcap $CAP ${EXTRA[*]}"
echo "${EXTRA[*]}" >"$RES/replay_extra.txt"

bench() { # bench NAME RUNS COMMAND [hyperfine options]
    local name=$1 runs=$2 cmd=$3; shift 3
    echo "replay: timing $name ($runs runs)" >&2
    hyperfine --style basic --runs "$runs" --export-json "$RES/time_$name.json" "$@" "$cmd" >&2
}
bench inspector "$RUNS" "$REPLAY" -N --warmup 1
bench floor "$RUNS" "$HELPERS/pcap_floor $CAP" -N --warmup 1
bench ndpi "$NDPI_RUNS" "ndpiReader -q -i $CAP" -N
# tshark writes the names it extracted: they are the oracle for step 3 (-n: no name
# resolution, which would otherwise look up every address)
TSHARK="tshark -n -r $CAP -Y 'tls.handshake.type == 1 || http.request' -T fields -e ip.src -e ipv6.src -e tcp.srcport -e tls.handshake.extensions_server_name -e http.host"
bench tshark "$TSHARK_RUNS" "$TSHARK > $WORK/tshark.txt 2>/dev/null"

echo "replay: comparing names" >&2
$REPLAY --summary >"$WORK/decisions.jsonl" 2>"$RES/replay_summary.json"
ndpiReader -q -i "$CAP" -C "$WORK/ndpi.csv" >/dev/null 2>&1
python3 "$HERE/names_agree.py" --tshark "$WORK/tshark.txt" --inspector "$WORK/decisions.jsonl" \
    --ndpi "$WORK/ndpi.csv" >"$RES/names.json"

echo "replay: callgrind on $CG_FLOWS flows" >&2
valgrind --tool=callgrind --callgrind-out-file="$RES/callgrind.inspector" \
    "$BIN" replay --rules "$RULES" --pcap "$SLICE" "${EXTRA[@]}" >/dev/null 2>"$WORK/cg_inspector.err"
valgrind --tool=callgrind --callgrind-out-file="$RES/callgrind.floor" \
    "$HELPERS/pcap_floor" "$SLICE" >/dev/null 2>"$WORK/cg_floor.err"
callgrind_annotate "$RES/callgrind.inspector" >"$RES/callgrind_inspector.txt"
callgrind_annotate --inclusive=yes "$RES/callgrind.inspector" >"$RES/callgrind_inspector_inclusive.txt"
callgrind_annotate "$RES/callgrind.floor" >"$RES/callgrind_floor.txt"

#!/usr/bin/env bash
# Resource bounds under hostile load: replay a flood of 1,000,000 distinct SYNs and of
# 100,000 half-sent ClientHellos; report peak RSS, flows evicted, and bytes per tracked flow.
# Usage: bench/flood.sh [BIN]   (builds build/egress-inspector if BIN is not given)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/egress-inspector}
[ -x "$BIN" ] || { cmake -S . -B build >/dev/null && cmake --build build -j"$(nproc)" >/dev/null; }
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
python3 bench/flood.py syn 1000000 "$WORK/syn.pcap"
python3 bench/flood.py halfhello 100000 "$WORK/half.pcap"
echo "allow allowed.example" > "$WORK/rules"

run() { # run NAME PCAP MAX_FLOWS
    /usr/bin/time -f "%M" -o "$WORK/rss" "$BIN" replay --rules "$WORK/rules" --pcap "$2" \
        --max-flows "$3" --summary >/dev/null 2>"$WORK/summary"
    local rss; rss=$(cat "$WORK/rss")
    local s; s=$(grep replay_summary "$WORK/summary")
    python3 - "$1" "$3" "$rss" "$s" <<'PY'
import json, sys
name, maxf, rss_kb, s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
print(f"| {name} | {maxf:,} | {s['frames']:,} | {s['flows']:,} | {s['flows_evicted']:,} | "
      f"{s.get('decided_flow_evicted', 0):,} | {s['buffer_budget_exhausted']:,} | {rss_kb/1024:.1f} MiB |")
PY
}
echo "| load | max flows | packets | flows created | evicted | held flows denied on eviction | denied at the 64 MiB buffer budget | peak RSS |"
echo "|---|---|---|---|---|---|---|---|"
run "1M distinct SYNs" "$WORK/syn.pcap" 262144
run "1M distinct SYNs" "$WORK/syn.pcap" 1000000
run "100k half ClientHellos" "$WORK/half.pcap" 262144
run "100k half ClientHellos" "$WORK/half.pcap" 10000
# bytes per tracked flow: RSS growth between 1,000 and 1,000,000 tracked flows
python3 bench/flood.py syn 1000 "$WORK/small.pcap"
/usr/bin/time -f "%M" -o "$WORK/rss_small" "$BIN" replay --rules "$WORK/rules" --pcap "$WORK/small.pcap" --max-flows 1000000 >/dev/null
/usr/bin/time -f "%M" -o "$WORK/rss_big" "$BIN" replay --rules "$WORK/rules" --pcap "$WORK/syn.pcap" --max-flows 1000000 >/dev/null
echo "bytes per tracked flow: $(( ($(cat "$WORK/rss_big") - $(cat "$WORK/rss_small")) * 1024 / 999000 ))"

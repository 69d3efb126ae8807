#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs every fuzz_* binary built
# for SECONDS each, starting from its seed corpus. Fails on any crash, leak, sanitizer
# report or broken invariant; the input that did it is left as fuzz/crash-* for a unit
# test. Ends with 'N passed, N failed'.
#
# Seeds: fuzz/seeds.py writes build-fuzz/seeds/<name>/ for fuzz_<name> from the captures in
# tests/pcaps and the rules files (needs python3-scapy; test.sh installs it). Each run
# copies them into a fresh build-fuzz/corpus/<name>/, where libFuzzer adds what it finds,
# so the seed directory stays as generated. A binary without a seed directory starts empty.
# Usage: fuzz/run.sh [SECONDS]
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-30}
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DEI_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz --target fuzz -j"$(nproc)" >/dev/null || { echo "fuzz: build failed"; echo "0 passed, 1 failed"; exit 1; }

seeds=build-fuzz/seeds
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3 || true)
if [ -n "$python" ] && "$python" -c 'import scapy' 2>/dev/null; then
    if ! "$python" fuzz/seeds.py "$seeds" >build-fuzz/seeds.log 2>&1; then
        cat build-fuzz/seeds.log
        echo "fuzz: seed generation failed (fuzz/seeds.py, log above)"
        echo "fuzz: 0 passed, 1 failed"
        exit 1
    fi
else
    echo "fuzz: python3 with scapy not found (apt-get install python3-scapy): no seeds, every target starts empty"
    rm -rf "$seeds"
fi

passed=0 failed=0
for bin in build-fuzz/fuzz/fuzz_*; do
    [ -f "$bin" ] && [ -x "$bin" ] || continue
    t=${bin##*/}
    name=${t#fuzz_}
    corpus=build-fuzz/corpus/$name
    rm -rf "$corpus"
    mkdir -p "$corpus"
    nseeds=0
    if [ -d "$seeds/$name" ]; then
        cp -r -- "$seeds/$name"/. "$corpus"/
        nseeds=$(find "$corpus" -type f | wc -l)
    fi
    log=build-fuzz/$t.log
    if "$bin" -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix=fuzz/ "$corpus" >"$log" 2>&1; then
        passed=$((passed + 1)); result=OK
    else
        failed=$((failed + 1)); result=CRASH
        grep -E "invariant failed|ERROR|SUMMARY" "$log" | head -5
    fi
    inited=$(grep -m1 -oE 'INITED cov: [0-9]+' "$log" | awk '{print $3}')
    final=$(grep -E '^#[0-9]+.* cov: [0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+' | awk '{print $2}')
    echo "fuzz $t: $nseeds seeds, cov ${inited:-?} at start, ${final:-?} at end," \
         "$(awk '/stat::number_of_executed_units/ {print $2}' "$log") execs in ${SECONDS_EACH} s, exit $result"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]

#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for SECONDS.
# Fails on any crash, leak, sanitizer report or broken invariant; the input that did it
# is left as fuzz/crash-* for a unit test. Ends with 'N passed, N failed'.
# Usage: fuzz/run.sh [SECONDS]
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-30}
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DEI_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz --target fuzz -j"$(nproc)" >/dev/null || { echo "fuzz: build failed"; echo "0 passed, 1 failed"; exit 1; }
passed=0 failed=0
for t in fuzz_packet fuzz_tls fuzz_http fuzz_preamble fuzz_rules fuzz_pipeline; do
    corpus=fuzz/corpus-$t
    mkdir -p "$corpus"
    log=build-fuzz/$t.log
    if build-fuzz/fuzz/$t -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix=fuzz/ "$corpus" >"$log" 2>&1; then
        passed=$((passed + 1)); result=OK
    else
        failed=$((failed + 1)); result=CRASH
        grep -E "invariant failed|ERROR|SUMMARY" "$log" | head -5
    fi
    echo "fuzz $t: $(awk '/stat::number_of_executed_units/ {print $2}' "$log") execs in ${SECONDS_EACH} s, exit $result"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]

#!/usr/bin/env bash
# valgrind (memcheck) on a replay of every capture in tests/pcaps: no error, no leak.
# Usage: valgrind_replay.sh path/to/egress-inspector. Ends with 'N passed, N failed'.
set -uo pipefail
BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
passed=0 failed=0
while IFS= read -r pcap; do
    if valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=all \
            "$BIN" replay --rules "$HERE/pcaps/test.rules" --pcap "$pcap" >/dev/null 2>"/tmp/vg.$$"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1)); echo "FAIL ${pcap#$HERE/}"; head -30 "/tmp/vg.$$"
    fi
done < <(find "$HERE/pcaps" -name '*.pcap' | sort)
rm -f "/tmp/vg.$$"
echo "valgrind: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]

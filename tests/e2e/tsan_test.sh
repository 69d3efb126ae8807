#!/usr/bin/env bash
# The daemon's end-to-end test, run with a ThreadSanitizer build: queue threads, the log
# ring's writer, the resolver, the metrics thread, reloads, mode signals and shutdown
# under load, all as live_test.sh drives them. Any data race or lock-order report fails
# the test (each report is a file under TSAN_OPTIONS's log_path).
#   tsan_test.sh BUILD-TSAN/egress-inspector [SCRIPT]   (SCRIPT: live_test.sh, or kube_test.sh
#   for the watch threads and the pod views they hand the queue threads)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$1
REPORTS=$(mktemp -d)
trap 'rm -rf "$REPORTS"' EXIT
export TSAN_OPTIONS="log_path=$REPORTS/race second_deadlock_stack=1 history_size=4"
bash "$HERE/${2:-live_test.sh}" "$BIN"
rc=$?
found=$(ls "$REPORTS" | wc -l)
for f in "$REPORTS"/*; do
    [ -e "$f" ] || continue
    echo "== ThreadSanitizer: $f"
    head -60 "$f"
done
echo "ThreadSanitizer reports: $found"
[ "$rc" = 0 ] && [ "$found" = 0 ]

#!/usr/bin/env bash
# The shipped binary carries the hardening CMakeLists.txt asks for, read back with readelf:
# PIE, full RELRO (BIND_NOW), a non-executable stack, the stack protector, and fortified
# libc calls. Usage: check_hardening.sh path/to/egress-inspector. Ends 'N passed, N failed'.
set -uo pipefail
BIN=$1
PASSED=0 FAILED=0
check() {
    if eval "$2"; then PASSED=$((PASSED + 1)); echo "ok   $1"
    else FAILED=$((FAILED + 1)); echo "FAIL $1"; fi
}
check "position-independent executable" "readelf -h '$BIN' | grep >/dev/null 'DYN (Position-Independent'"
check "full RELRO: GNU_RELRO and BIND_NOW" \
    "readelf -lW '$BIN' | grep >/dev/null GNU_RELRO && readelf -d '$BIN' | grep >/dev/null 'FLAGS.*BIND_NOW'"
check "non-executable stack" "readelf -lW '$BIN' | grep GNU_STACK | grep -v >/dev/null RWE"
check "stack protector" "readelf -sW '$BIN' | grep >/dev/null __stack_chk_fail"
check "fortified libc calls (_FORTIFY_SOURCE)" "readelf -sW '$BIN' | grep >/dev/null '__[a-z_]*_chk@'"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]

#!/usr/bin/env bash
# Installs what is missing, builds egress-inspector three times (Release, ASan+UBSan, and
# ThreadSanitizer), runs the whole test suite on the first two and the daemon's threads
# under the third. Needs root for the packages and for the
# tests that build network namespaces.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps test

jobs=$(nproc)
# Release: the configuration the image ships (deploy/Dockerfile builds the same).
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DEI_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
cmake -S . -B build-asan -DEI_WERROR=ON -DEI_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$jobs"
cmake -S . -B build-tsan -DEI_WERROR=ON -DEI_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-tsan -j"$jobs"

echo "== libFuzzer targets, 30 s each (clang, ASan + UBSan)"
bash fuzz/run.sh 30
echo "== sanitizer build (ASan + UBSan)"
ctest --test-dir build-asan --output-on-failure -j"$jobs"
echo "== ThreadSanitizer build: the daemon end to end, and the io threads' unit tests"
ctest --test-dir build-tsan --output-on-failure -R "tsan_e2e|tsan_kube_e2e|test_logring|test_nfq|test_dns|test_control"
echo "== release build"
ctest --test-dir build --output-on-failure -j"$jobs"

#!/usr/bin/env bash
# Installs what is missing, builds egress-inspector twice (Release, and with ASan+UBSan),
# and runs the whole test suite on both builds. Needs root for the packages and for the
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

echo "== libFuzzer targets, 30 s each (clang, ASan + UBSan)"
bash fuzz/run.sh 30
echo "== sanitizer build (ASan + UBSan)"
ctest --test-dir build-asan --output-on-failure -j"$jobs"
echo "== release build"
ctest --test-dir build --output-on-failure -j"$jobs"

#!/usr/bin/env bash
# Installs what is missing, builds egress-inspector, and replays the bundled capture
# (tests/pcaps/example.pcap) against rules/example.rules: one JSON line per decided flow.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps build
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
./build/egress-inspector check-rules rules/example.rules >&2
exec ./build/egress-inspector replay --rules rules/example.rules --pcap tests/pcaps/example.pcap --summary

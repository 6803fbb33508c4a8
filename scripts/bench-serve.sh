#!/usr/bin/env bash
# weft serve under wrk, beside wasmtime serve and a native hyper hello, in one
# sitting: the goal table's HTTP rows (benches/benches/table.rs, `served`).
#
# Installs what they need when missing: wasmtime-cli at the version weft pins
# (cargo install, once, into target/bench-tools: about 20 minutes on two cores)
# and wrk (apt-get, if it can). Not part of CI.
# Usage: scripts/bench-serve.sh   (WEFT_BENCH_RUNS=3 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
version=48.0.8
tools=target/bench-tools
if ! "$tools/bin/wasmtime" --version 2>/dev/null | grep -q "^wasmtime $version"; then
  echo "== installing wasmtime-cli $version into $tools"
  cargo install --locked wasmtime-cli --version "$version" --root "$tools" --target-dir "$tools/build"
fi
if ! command -v wrk >/dev/null; then
  echo "== installing wrk"
  apt-get install -y wrk || { echo "wrk is needed: apt-get install wrk"; exit 1; }
fi
echo "== load: $(uptime)"
# Built first, so that no compilation runs beside a measurement.
cargo build --release -p weft
cargo bench -p weft-benches --bench table --no-run
WASMTIME="$tools/bin/wasmtime" WEFT_TABLE_ONLY=serve cargo bench -p weft-benches --bench table

#!/usr/bin/env bash
# Builds weft's fuzz targets (cargo-fuzz, on the nightly toolchain; weft itself stays
# on stable) and the fuzz guest, then gives each target a short smoke run.
#
#   fuzz/run.sh             build, then run each target for RUNS inputs (default 200)
#   fuzz/run.sh build       build only
#   RUNS=5000 fuzz/run.sh
#
# Longer sessions: see fuzz/README.md. A crash is saved under fuzz/artifacts/TARGET/
# and makes this script fail.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-200}
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz/run.sh: cargo-fuzz needs the nightly toolchain: rustup toolchain install nightly" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
rustup target add wasm32-wasip2 >/dev/null

# The guest of the `boundary` target, in a target directory of the fuzz crate's own.
cargo build --release --target wasm32-wasip2 --target-dir fuzz/target/guest \
    -p weft-test-guests --bin fuzz_calls
# No sanitizer: wasmtime's JIT code and ASan do not mix, and the code under test is
# safe Rust; libFuzzer's coverage and its panic and leak checks still apply. `-O`:
# optimised without debug assertions, but weft's own are kept (fuzz/Cargo.toml).
cargo +nightly fuzz build -O -s none
[ "${1:-}" = build ] && exit 0

for target in parsers channel_model boundary; do
    mkdir -p "fuzz/corpus/$target"
    echo "fuzz/run.sh: $target, $runs inputs"
    # The first directory is the corpus libFuzzer grows; the second the committed
    # inputs of past findings and seeds, replayed first.
    cargo +nightly fuzz run -O -s none "$target" "fuzz/corpus/$target" "fuzz/regressions/$target" -- \
        -runs="$runs" -timeout=60 -print_final_stats=1
done

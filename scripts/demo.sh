#!/usr/bin/env sh
# Builds the example guests for wasm32-wasip2 and runs two of them under `weft run`:
# `hello` (microthreads computing in parallel) and `fairness` (a CPU hog that never
# calls the host beside a 1 ms sleeper, on one worker: fuel preemption keeps the
# sleeper on time); `weft test` finding the seed of a race in `lost-update`; then
# `host/examples/embed.rs`, an application that embeds weft and feeds the `workers`
# guest over host channels.
set -eu
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
cargo build --release --target wasm32-wasip2 --target-dir target/guest -p weft-examples
cargo build -p weft
guests=target/guest/wasm32-wasip2/release
echo "\$ weft run hello.wasm"
target/debug/weft run "$guests/hello.wasm"
echo "\$ weft run --workers 1 fairness.wasm -- 2000000000 200"
target/debug/weft run --workers 1 "$guests/fairness.wasm" -- 2000000000 200
echo "\$ weft test --seeds 0..1000 lost-update.wasm    # deterministic mode finds the seed of a race"
target/debug/weft test --seeds 0..1000 "$guests/lost-update.wasm" || echo "(exit $?: a seed that loses an update, as expected)"
echo "\$ cargo run -p weft --example embed -- workers.wasm"
cargo run -q -p weft --example embed -- "$guests/workers.wasm"

#!/usr/bin/env sh
# Builds the example guests for wasm32-wasip2 and runs them under `weft run`: `hello`
# (microthreads computing in parallel) and `fairness` (a CPU hog that never calls the
# host beside a 1 ms sleeper, on one worker: fuel preemption keeps the sleeper on
# time); `weft test` finding the seed of a race in `lost-update`; `supervised-server`,
# a TCP service under a supervisor tree, with a client of its own on loopback (a crash
# answered by a restarted worker, then an orderly shutdown); then
# `host/examples/embed.rs`, an application that embeds weft and feeds the `workers`
# guest over host channels; and, when nats-server is installed, the same program on
# four nodes joined by NATS (`scripts/cluster-demo.sh`).
#
# The first time, step 3 compiles wasmtime: some minutes on two cores. `cargo test`
# and the examples share that build, so it happens once.
set -eu
cd "$(dirname "$0")/.."
step() { printf '\n== [%s/7] %s\n' "$1" "$2"; }

step 1 "the wasm32-wasip2 target (rustup)"
rustup target add wasm32-wasip2
step 2 "building the example guests for wasm32-wasip2"
cargo build --release --target wasm32-wasip2 --target-dir target/guest -p weft-examples
step 3 "building weft and the embedding example (the first time this compiles wasmtime: some minutes)"
cargo build -p weft --bins --examples
guests=target/guest/wasm32-wasip2/release
step 4 "running the guests"
echo "\$ weft run hello.wasm"
target/debug/weft run "$guests/hello.wasm"
echo "\$ weft run --workers 1 fairness.wasm -- 2000000000 200"
target/debug/weft run --workers 1 "$guests/fairness.wasm" -- 2000000000 200
echo "\$ weft test --seeds 0..1000 lost-update.wasm    # deterministic mode finds the seed of a race"
target/debug/weft test --seeds 0..1000 "$guests/lost-update.wasm" || echo "(exit $?: a seed that loses an update, as expected)"
step 5 "a supervised server: a worker crashes, a fresh one answers"
echo "\$ weft run --stats --listen 127.0.0.1:* --connect 127.0.0.1:* supervised-server.wasm -- demo"
target/debug/weft run --stats --listen '127.0.0.1:*' --connect '127.0.0.1:*' "$guests/supervised-server.wasm" -- demo
step 6 "an application embedding weft"
echo "\$ cargo run -p weft --example embed -- workers.wasm"
cargo run -q -p weft --example embed -- "$guests/workers.wasm"
step 7 "one program on several nodes, joined by NATS (needs nats-server)"
if [ -x "${WEFT_NATS_SERVER:-$(command -v nats-server 2>/dev/null || echo /usr/sbin/nats-server)}" ]; then
    echo "\$ sh scripts/cluster-demo.sh    # a collector, two workers and a producer, four weft processes"
    sh scripts/cluster-demo.sh
else
    echo "(skipped: nats-server is not installed; apt-get install nats-server, then sh scripts/cluster-demo.sh)"
fi

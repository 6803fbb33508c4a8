#!/usr/bin/env sh
# One program on several nodes, on one machine: starts a local nats-server on a free
# loopback port, then
# 1. four `weft run --cluster` processes of examples/src/bin/cluster-pipeline.rs: a
#    collector, two workers and a producer, joined by NATS. Jobs go from the
#    producer to both workers over one channel homed on the producer's node; results
#    go to the collector over one homed on its node;
# 2. examples/src/bin/cluster-wordcount.rs on three nodes: two `weft node` processes
#    lend themselves to the cluster, and a `weft run` counts the words of this
#    repository's sources with `cluster::parallel_map`, spawning on all three.
# Needs `nats-server` (Debian: apt-get install nats-server).
set -eu
cd "$(dirname "$0")/.."
nats_server=${WEFT_NATS_SERVER:-$(command -v nats-server 2>/dev/null || echo /usr/sbin/nats-server)}
if [ ! -x "$nats_server" ]; then
    echo "cluster-demo: nats-server is not installed (Debian: apt-get install nats-server; or sh scripts/nats-server.sh)" >&2
    exit 1
fi
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo build -q --release --target wasm32-wasip2 --target-dir target/guest -p weft-examples
cargo build -q -p weft
weft=target/debug/weft
guest=target/guest/wasm32-wasip2/release/cluster-pipeline.wasm
wordcount=target/guest/wasm32-wasip2/release/cluster-wordcount.wasm
jobs=${JOBS:-200}

dir=$(mktemp -d)
"$nats_server" -a 127.0.0.1 -p -1 --ports_file_dir "$dir" >"$dir/nats.log" 2>&1 &
nats=$!
trap 'kill "$nats" 2>/dev/null || true; rm -rf "$dir"' EXIT INT TERM
tries=0
while [ -z "$(ls "$dir"/*.ports 2>/dev/null)" ]; do
    tries=$((tries + 1))
    if [ "$tries" -gt 200 ]; then
        echo "cluster-demo: nats-server did not start:" >&2
        cat "$dir/nats.log" >&2
        exit 1
    fi
    sleep 0.05
done
url=$(sed 's/.*\["\([^"]*\)".*/\1/' "$dir"/*.ports)
echo "nats-server at $url"

echo "\$ weft run --cluster $url --node collector --export-receiver results=32 cluster-pipeline.wasm collector $jobs"
"$weft" run --cluster "$url" --node collector --export-receiver results=32 "$guest" collector "$jobs" &
collector=$!
for w in a b; do
    echo "\$ weft run --cluster $url --node worker-$w --import-sender results --import-receiver jobs cluster-pipeline.wasm worker"
    "$weft" run --cluster "$url" --node "worker-$w" --import-sender results --import-receiver jobs "$guest" worker &
    eval "worker_$w=\$!"
done
echo "\$ weft run --cluster $url --node producer --export-sender jobs=32 cluster-pipeline.wasm producer $jobs"
"$weft" run --cluster "$url" --node producer --export-sender jobs=32 "$guest" producer "$jobs"
status=0
wait "$worker_a" || status=$?
wait "$worker_b" || status=$?
wait "$collector" || status=$?
[ "$status" -eq 0 ] || exit "$status"

echo
for n in a b; do
    echo "\$ weft node --cluster $url --node lender-$n cluster-wordcount.wasm &"
    "$weft" node --cluster "$url" --node "lender-$n" "$wordcount" &
    eval "lender_$n=\$!"
done
files=$(ls README.md wit/runtime.wit guest/src/*.rs host/src/cluster/*.rs | sed 's|^|/repo/|')
echo "\$ weft run --cluster $url --node counter --dir-ro .::/repo cluster-wordcount.wasm --nodes 3 /repo/README.md …"
# shellcheck disable=SC2086 # one argument per file
"$weft" run --cluster "$url" --node counter --dir-ro .::/repo "$wordcount" --nodes 3 $files || status=$?
# The lenders serve until they are stopped: Ctrl-C (exit 130).
echo "stopping the lenders (Ctrl-C):"
kill -INT "$lender_a" "$lender_b"
for lender in "$lender_a" "$lender_b"; do
    code=0
    wait "$lender" || code=$?
    [ "$code" -eq 130 ] || status=$code
done
exit "$status"

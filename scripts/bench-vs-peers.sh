#!/usr/bin/env bash
# Runs the peers' programs (../shared/peers: Go, Erlang, tokio, gevent) and weft's
# benchmarks in one sitting, so that their figures can be compared: machines here
# differ up to 3x from one day to the next, so only figures from one run compare.
#
# Needs what the peers need: apt-get install -y golang-go erlang-base; pip install gevent.
# Usage: scripts/bench-vs-peers.sh   (RUNS=1 by default for the peers; SHARED=path to
#        the shared folder, default ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${SHARED:-../shared}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== load: $(uptime)"
if [ -x "$shared/peers/run.sh" ] && command -v go >/dev/null && command -v erl >/dev/null; then
  # The shared folder may be read-only: run the peers from a copy.
  cp -r "$shared/peers" "$work/peers"
  echo "== peers (${RUNS:-1} run(s))"
  RUNS=${RUNS:-1} RAW="$work/peers-raw.txt" bash "$work/peers/run.sh"
else
  echo "== peers skipped: need $shared/peers, go and erl (see the header of this script)"
fi

echo "== weft"
cargo build --release -p weft
cargo bench -p weft-benches --bench weft -- --warm-up-time 1 --measurement-time 3 2>&1 |
  grep -E '^(microthread|fuel|multicore|channel|memory|fairness)|time:|thrpt:'
cargo bench -p weft-benches --bench startup 2>&1 | grep -E '^startup|time:'
echo "== load: $(uptime)"

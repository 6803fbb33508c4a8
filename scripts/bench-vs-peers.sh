#!/usr/bin/env bash
# Runs the peers' programs (../shared/peers: Go, Erlang, tokio, gevent) and weft's
# goal table (benches/benches/table.rs) in one sitting, and prints the table with
# the peers' figures and weft's ratio to each: machines here differ up to 3x from
# one day to the next, so only figures from one run compare.
#
# Needs what the peers need: apt-get install -y golang-go erlang-base; pip install gevent.
# Without them the table is printed without the peers.
# Usage: scripts/bench-vs-peers.sh   (RUNS=1 for the peers and WEFT_BENCH_RUNS=3 for
#        weft by default; SHARED=path to the shared folder, default ../shared;
#        CRITERION=1 also runs the criterion groups and the start-up benchmark)
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${SHARED:-../shared}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== load: $(uptime)"
# Build everything first, so that no compilation runs beside a measurement. The
# goal table builds its Python and JavaScript guests with the release `weft` and
# the tools scripts/guest-tools.sh installs.
cargo build --release -p weft
cargo bench -p weft-benches --no-run
tools=$(sh scripts/guest-tools.sh)
eval "$tools"
peers_raw=
if [ -x "$shared/peers/run.sh" ] && command -v go >/dev/null && command -v erl >/dev/null; then
  # The shared folder may be read-only: run the peers from a copy.
  cp -r "$shared/peers" "$work/peers"
  echo "== peers (${RUNS:-1} run(s))"
  RUNS=${RUNS:-1} RAW="$work/peers-raw.txt" bash "$work/peers/run.sh"
  peers_raw="$work/peers-raw.txt"
else
  echo "== peers skipped: need $shared/peers, go and erl (see the header of this script)"
fi

echo "== weft"
PEERS_RAW=$peers_raw cargo bench -p weft-benches --bench table
if [ "${CRITERION:-0}" = 1 ]; then
  cargo bench -p weft-benches --bench weft -- --warm-up-time 1 --measurement-time 3 2>&1 |
    grep -E '^(microthread|fuel|multicore|channel|memory|fairness)|time:|thrpt:'
  cargo bench -p weft-benches --bench startup 2>&1 | grep -E '^startup|time:'
fi
echo "== load: $(uptime)"

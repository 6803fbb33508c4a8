#!/usr/bin/env sh
# The tests, from a clean clone: the wasm32-wasip2 target (the tests build the guest
# programs), a nats-server for the cluster's tests (scripts/nats-server.sh finds or
# installs one), componentize-py and componentize-js for the Python and JavaScript
# guests (scripts/guest-tools.sh installs them into target/guest-tools), a Chromium
# for the dashboard's browser test (scripts/chromium.sh finds or installs one), then
# `cargo test` with any arguments given.
set -eu
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
WEFT_NATS_SERVER=$(sh scripts/nats-server.sh)
export WEFT_NATS_SERVER
WEFT_CHROMIUM=$(sh scripts/chromium.sh)
export WEFT_CHROMIUM
tools=$(sh scripts/guest-tools.sh)
eval "$tools"
exec cargo test "$@"

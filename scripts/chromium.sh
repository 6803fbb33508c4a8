#!/usr/bin/env sh
# Print the path of a Chromium for the dashboard's browser test, installing one when
# there is none: WEFT_CHROMIUM, else chromium, chromium-browser or google-chrome on
# the PATH, else Debian's package (as root, or with sudo). Fails, saying what to do,
# when none of these can be had.
set -eu
say() { echo "chromium.sh: $*" >&2; }
if [ -n "${WEFT_CHROMIUM:-}" ]; then
    echo "$WEFT_CHROMIUM"
    exit 0
fi
for name in chromium chromium-browser google-chrome; do
    found=$(command -v "$name" 2>/dev/null || true)
    if [ -n "$found" ]; then
        echo "$found"
        exit 0
    fi
done
if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        say "installing Debian's chromium"
        apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >&2 && { command -v chromium; exit 0; }
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        say "installing Debian's chromium (sudo)"
        sudo apt-get update >&2 && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >&2 && { command -v chromium; exit 0; }
    fi
fi
say "no Chromium, and none could be installed: apt-get install chromium (Debian),"
say "or set WEFT_CHROMIUM to a Chromium or Chrome binary"
exit 1

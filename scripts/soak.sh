#!/usr/bin/env bash
# Soak test: the `echo-server` example under the release `weft` binary, with
# connection churn from clients that vanish, for a while; the weft process's RSS,
# open fds and threads are sampled from /proc every few seconds, printed as a table,
# and judged: flat after warm-up, or not.
#
#   scripts/soak.sh [SECONDS]          (default 60)
#
# Environment: WEFT (the weft binary; default target/release/weft, built if
# missing), ECHO_WASM (the guest; default built into target/guest), CLIENTS
# (concurrent clients, default 16), INTERVAL (seconds between samples, default 5).
#
# The clients (python3) run on loopback only, each doing one kind of connection
# after another: a full echo of a few lines (checked), a line cut mid-way then a
# close, a reset (SO_LINGER 0) after writing, a write of 64 KiB then a close without
# reading, and a connect then an immediate close. Every socket has a 5 s timeout.
#
# Exit status: 0 if RSS and fds are flat after warm-up, every checked echo came back
# and the server still answers at the end; 1 otherwise; 2 on a usage or setup error.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${1:-60}
case $duration in
'' | *[!0-9]*)
    echo "usage: scripts/soak.sh [SECONDS]  (a whole number of seconds, default 60)" >&2
    exit 2
    ;;
esac
if [ "$duration" -lt 20 ]; then
    echo "soak: $duration s is too short to judge a trend: give at least 20" >&2
    exit 2
fi
clients=${CLIENTS:-16}
interval=${INTERVAL:-5}
command -v python3 >/dev/null || {
    echo "soak: python3 is needed for the clients" >&2
    exit 2
}

weft=${WEFT:-target/release/weft}
if [ ! -x "$weft" ]; then
    echo "soak: building the release weft ($weft)" >&2
    cargo build --release -p weft
fi
echo_wasm=${ECHO_WASM:-target/guest/wasm32-wasip2/release/echo-server.wasm}
if [ ! -f "$echo_wasm" ]; then
    echo "soak: building the echo-server guest ($echo_wasm)" >&2
    cargo build --release --target wasm32-wasip2 --target-dir target/guest -p weft-examples --bin echo-server
fi

work=$(mktemp -d)
server_pid=
clients_pid=
cleanup() {
    [ -n "$clients_pid" ] && kill "$clients_pid" 2>/dev/null || true
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# A free loopback port (the system's choice, released for the server to take).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
addr=127.0.0.1:$port
"$weft" run --listen "$addr" "$echo_wasm" "$addr" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 1 300); do
    grep -q "listening on" "$work/server.out" 2>/dev/null && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "soak: the server ended before listening:" >&2
        cat "$work/server.err" >&2
        exit 2
    fi
    sleep 0.1
done
grep -q "listening on" "$work/server.out" || {
    echo "soak: the server did not say it listens within 30 s" >&2
    exit 2
}
echo "soak: weft (pid $server_pid) serves echo-server on $addr; $clients clients for $duration s, a sample every $interval s"

cat >"$work/clients.py" <<'PY'
import socket, struct, sys, threading, time, random

host, port, seconds, n = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
until = time.monotonic() + seconds
lock = threading.Lock()
counts = {"echo": 0, "cut": 0, "reset": 0, "unread": 0, "bare": 0, "bad_echo": 0, "error": 0}

def connect():
    s = socket.create_connection((host, port), timeout=5)
    s.settimeout(5)
    return s

def echo(rng):
    lines = b"".join(b"line %d of a client\n" % rng.randrange(10**9) for _ in range(rng.randrange(1, 6)))
    with connect() as s:
        s.sendall(lines)
        got = b""
        while len(got) < len(lines):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    return "echo" if got == lines else "bad_echo"

def cut(rng):
    with connect() as s:
        s.sendall(b"a line cut in the mid")
    return "cut"

def reset(rng):
    s = connect()
    s.sendall(b"about to vanish\n")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    return "reset"

def unread(rng):
    with connect() as s:
        s.sendall(b"x" * 65536)
    return "unread"

def bare(rng):
    connect().close()
    return "bare"

kinds = [echo, echo, cut, reset, unread, bare]

def client(i):
    rng = random.Random(i)
    while time.monotonic() < until:
        try:
            what = rng.choice(kinds)(rng)
        except OSError:
            what = "error"
        with lock:
            counts[what] += 1

threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(" ".join("%s=%d" % kv for kv in counts.items()))
PY
sample() { # elapsed -> "elapsed rss_kib fds threads"
    local rss fds threads
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status")
    threads=$(awk '/^Threads:/ {print $2}' "/proc/$server_pid/status")
    fds=$(find "/proc/$server_pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    echo "$1 $rss $fds $threads"
}

start=$(date +%s)
: >"$work/samples"
printf '%8s %10s %6s %8s\n' "t (s)" "RSS (KiB)" "fds" "threads"
baseline=$(sample 0)
printf '%8s %10s %6s %8s   (before the clients)\n' $baseline
python3 "$work/clients.py" 127.0.0.1 "$port" "$duration" "$clients" >"$work/clients.out" 2>"$work/clients.err" &
clients_pid=$!
while kill -0 "$clients_pid" 2>/dev/null; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "soak: the server died:" >&2
        cat "$work/server.err" >&2
        exit 1
    fi
    line=$(sample $(($(date +%s) - start)))
    echo "$line" >>"$work/samples"
    printf '%8s %10s %6s %8s\n' $line
    sleep "$interval"
done
clients_status=0
wait "$clients_pid" || clients_status=$?
clients_pid=
# Idle again: what the churn left behind shows now.
sleep "$interval"
idle=$(sample $(($(date +%s) - start)))
printf '%8s %10s %6s %8s   (idle, after the clients)\n' $idle

# The server still answers.
final=$(python3 - "$port" <<'PY'
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as s:
    s.sendall(b"still there?\n")
    got = b""
    while not got.endswith(b"\n"):
        chunk = s.recv(100)
        if not chunk:
            break
        got += chunk
print("answers" if got == b"still there?\n" else "wrong answer %r" % got)
PY
) || final="no answer"

echo "clients: $(cat "$work/clients.out")"
[ "$clients_status" = 0 ] || {
    echo "soak: the clients failed:" >&2
    cat "$work/clients.err" >&2
}
echo "server at the end: $final"

# The verdict: after a warm-up (the first third of the samples), the RSS may not
# grow by more than 10% (or 4 MiB, whichever is larger) from the warm-up's end to
# the last sample, and once idle again the fds must be back to what they were
# before the clients came.
verdict=$(awk -v idle_fds="$(echo "$idle" | cut -d' ' -f3)" -v base_fds="$(echo "$baseline" | cut -d' ' -f3)" '
    { t[NR] = $1; rss[NR] = $2; fds[NR] = $3 }
    END {
        if (NR < 3) { print "too few samples"; exit }
        w = int(NR / 3); if (w < 1) w = 1
        base = rss[w]; top = 0
        for (i = w; i <= NR; i++) if (rss[i] > top) top = rss[i]
        slack = base / 10; if (slack < 4096) slack = 4096
        growth = top - base
        rss_ok = growth <= slack
        fds_ok = idle_fds <= base_fds
        printf "RSS after warm-up (t=%ss): %d KiB, at most %d KiB later (%+d KiB, allowed %d); fds before the clients %d, idle at the end %d: ",
            t[w], base, top, growth, slack, base_fds, idle_fds
        print (rss_ok && fds_ok) ? "FLAT" : "GROWING"
    }' "$work/samples")
echo "verdict: $verdict"

kill -INT "$server_pid"
wait "$server_pid" || true
server_pid=
case $verdict in
*FLAT) ;;
*) exit 1 ;;
esac
grep -q "bad_echo=0" "$work/clients.out" || exit 1
[ "$final" = answers ] || exit 1

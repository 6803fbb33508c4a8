"""A concurrency bug for deterministic mode to find: a counter microthread, and
clients that each read the counter, yield, and write it back plus one. When
another client reads between a read and its write, an update is lost and the
program exits with 1, under some interleavings only.

    weft build lost_update.py
    weft test --seeds 0..200 lost_update.wasm

finds a seed that loses an update and prints the `weft run --seed N` that
replays it. Arguments: CLIENTS (default 2), WORK (loop iterations each client
does first, default 20,000: the more work, the rarer the bug).
"""

import sys

import weft


@weft.entry
def counter(requests):
    value = 0
    for reply, new in requests:
        if reply is not None:
            reply.send(value)
        else:
            value = new
    return value


@weft.entry
def client(number, work, server):
    x = 0
    for i in range(work):
        x = (x * 31 + i) & 0xFFFFFFFF
    reply, answer = weft.channel()
    server.send((reply, 0))
    seen = answer.recv()
    weft.yield_now()  # the window
    server.send((None, seen + 1))
    print(f"client {number}: read {seen}, wrote {seen + 1}")


def main():
    clients = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    work = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    tx, rx = weft.channel()
    server = weft.spawn(counter, rx)
    # Each client gets a sender of its own: an endpoint passed to spawn moves.
    handles = [weft.spawn(client, n, work, tx.clone()) for n in range(clients)]
    tx.close()
    for h in handles:
        h.join()
    total = server.join()
    if total == clients:
        print(f"counter {total}: no update lost")
    else:
        print(f"lost update: the counter is {total} after {clients} increments")
        sys.exit(1)

//! A concurrency bug for deterministic mode to find: a counter microthread, and
//! clients that each read the counter, yield, and write it back plus one. When
//! another client reads between a read and its write, an update is lost and the
//! program exits with 1 — under some interleavings only.
//!
//! `weft test --seeds 0..1000 lost-update.wasm` finds a seed that loses an update
//! and prints the `weft run --seed N` that replays it; `--trace-schedule FILE` shows
//! the interleaving. Arguments: CLIENTS (default 2), WORK (loop iterations each
//! client does first, default 1,000,000: the more work, the rarer the bug).

use weft_guest::{Receiver, Sender, channel, spawn, yield_now};

/// A request to the counter: `Some(reply)` reads it, `None` writes the value.
type Request = (Option<Sender<u64>>, u64);

fn counter(requests: Receiver<Request>) -> u64 {
    let mut value = 0;
    for (reply, new) in requests {
        match reply {
            Some(reply) => reply.send(value).expect("the client waits for its read"),
            None => value = new,
        }
    }
    value
}

fn client((id, work, server): (u32, u64, Sender<Request>)) {
    let mut x = 0u64;
    for i in 0..work {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
    }
    let (reply, answer) = channel(0);
    server.send((Some(reply), 0)).expect("the counter serves");
    let seen = answer.recv().expect("the counter answers");
    yield_now(); // the window
    server.send((None, seen + 1)).expect("the counter serves");
    println!("client {id}: read {seen}, wrote {}", seen + 1);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let clients: u32 = args.next().map_or(2, |a| a.parse().expect("CLIENTS: a number"));
    let work: u64 = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("WORK: a number"));
    let (tx, rx) = channel::<Request>(0);
    let server = spawn(counter, rx);
    let handles: Vec<_> = (0..clients)
        .map(|id| spawn(client, (id, work, tx.clone())))
        .collect();
    drop(tx);
    for h in handles {
        h.join().expect("a client");
    }
    let total = server.join().expect("the counter");
    if total == u64::from(clients) {
        println!("counter {total}: no update lost");
    } else {
        println!("lost update: the counter is {total} after {clients} increments");
        std::process::exit(1);
    }
}

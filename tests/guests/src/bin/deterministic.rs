//! Programs whose outcome depends on the schedule, for deterministic mode; chosen by
//! the first argument:
//! - `racy CLIENTS WORK`: a lost update. A server microthread holds a counter; each
//!   client works a while (WORK loop iterations), reads the counter, yields, and
//!   writes it back plus one. When another client reads
//!   between a read and its write, an update is lost: the program prints so and
//!   exits with 1. Whether that happens depends only on the interleaving.
//! - `sleepy`: sleeps an hour (a weft sleep and a WASI one) and prints how much
//!   time its monotonic and wall clocks saw pass, and what they read.
//! - `select ROUNDS`: three channels, each with a message ready; a select takes
//!   one, ROUNDS times; prints which.
//! - `ticks`: an hour of `tick(1 min)`, then an `after(1 h)` that loses a select to
//!   a channel: prints what its clock saw.
//! - `leftover`: `main` returns while a detached microthread still ticks; it counts
//!   its ticks until it is cancelled, and says how many.
//! - `exit`: a microthread exits the program with 3 while another ticks.
//! - `noise`: microthreads that print, draw random numbers (WASI and a `HashMap`'s
//!   order) and read the clocks: all of it the same under one seed.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use weft_guest::{Receiver, Select, Selected, Sender, channel, spawn, yield_now};

/// A request to the counter: `Some(reply)` reads it, `None` writes `value`.
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
    // Some work first: where its slices end decides who reads first.
    let mut x = 0u64;
    for i in 0..work {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
    }
    let (reply, answer) = channel(0);
    server.send((Some(reply), 0)).expect("the counter serves");
    let seen = answer.recv().expect("the counter answers");
    println!("client {id} read {seen}");
    yield_now();
    server.send((None, seen + 1)).expect("the counter serves");
    println!("client {id} wrote {}", seen + 1);
}

fn racy(clients: u32, work: u64) {
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
        println!("lost update: the counter is {total}, after {clients} increments");
        std::process::exit(1);
    }
}

fn sleepy() {
    let (t0, w0) = (Instant::now(), SystemTime::now());
    weft_guest::sleep(Duration::from_secs(1800)).expect("not cancelled");
    std::thread::sleep(Duration::from_secs(1800));
    let (mono, wall) = (t0.elapsed(), w0.elapsed().expect("the wall clock moves forward"));
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970");
    println!(
        "monotonic {} s, wall {} s, wall clock at {} s since 1970",
        mono.as_secs(),
        wall.as_secs(),
        since_epoch.as_secs()
    );
}

fn select(rounds: u32) {
    let ends: Vec<(Sender<u32>, Receiver<u32>)> = (0..3).map(|_| channel(1)).collect();
    let mut picks = Vec::new();
    for round in 0..rounds {
        for (tx, _) in &ends {
            if tx.try_send(round).is_err() {
                // Still full from an earlier round: its message is ready anyway.
            }
        }
        let mut sel = Select::new();
        for (_, rx) in &ends {
            sel.recv(rx);
        }
        match sel.wait() {
            Selected::Received { index, message } => {
                let _round: u32 = message.decode();
                picks.push(index.to_string());
            }
            other => panic!("a select over three full channels ended with {other:?}"),
        }
    }
    println!("picks {}", picks.join(""));
}

fn noisy(id: u32) -> u64 {
    let mut keys: Vec<u32> = (0..8)
        .map(|k| (k, ()))
        .collect::<HashMap<u32, ()>>()
        .into_keys()
        .collect();
    keys.truncate(3);
    let mut state = 0u64;
    for step in 0..3 {
        // Work of a size that depends on the id, so that slices end in many places.
        for i in 0..(20_000 * u64::from(id + 1)) {
            state = std::hint::black_box(state.wrapping_mul(31).wrapping_add(i));
        }
        println!(
            "microthread {id} step {step}: keys {keys:?}, clock {:?}",
            Instant::now()
        );
    }
    state
}

fn noise() {
    // A hash with fresh keys: a number drawn from the random source.
    let drawn = std::collections::hash_map::RandomState::new().hash_one(0u8);
    println!("random {drawn:x}");
    let handles: Vec<_> = (0..4).map(|id| spawn(noisy, id)).collect();
    let sum = handles
        .into_iter()
        .map(|h| h.join().expect("a noisy microthread"))
        .fold(0u64, u64::wrapping_add);
    println!("sum {sum}, at {:?}", SystemTime::now().duration_since(UNIX_EPOCH));
}

/// Counts turns until cancelled (printing every 1,000th), then says how many.
fn ticker(_: ()) {
    let mut ticks = 0u64;
    while !weft_guest::is_cancelled() {
        ticks += 1;
        if ticks.is_multiple_of(1000) {
            println!("tick {ticks}");
        }
        yield_now();
    }
    println!("ticker: cancelled after {ticks} ticks");
}

fn exiter(_: ()) {
    for _ in 0..100 {
        yield_now();
    }
    println!("exiter: exiting with 3");
    weft_guest::exit(3);
}

fn ticks() {
    let start = Instant::now();
    let minutes = weft_guest::tick(Duration::from_secs(60));
    for _ in 0..60 {
        minutes.recv().expect("a tick");
    }
    let hour = start.elapsed().as_secs();
    let (tx, rx) = channel::<u32>(1);
    tx.send(7).expect("room");
    let late = weft_guest::after(Duration::from_secs(3600));
    let mut sel = Select::new();
    let c = sel.recv(&rx);
    let _t = sel.recv(&late);
    let first = match sel.wait() {
        Selected::Received { index, .. } if index == c => "the channel",
        _ => "the timer",
    };
    late.recv().expect("the timer fires");
    println!(
        "ticks: 60 in {hour} s; {first} first; the hour timer after {} s",
        start.elapsed().as_secs()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let number = |i: usize, default: u32| args.get(i).map_or(default, |a| a.parse().expect("a number"));
    match args.get(1).map(String::as_str) {
        Some("racy") => racy(
            number(2, 2),
            args.get(3).map_or(100_000, |a| a.parse().expect("a number")),
        ),
        Some("sleepy") => sleepy(),
        Some("select") => select(number(2, 32)),
        Some("noise") => noise(),
        Some("ticks") => ticks(),
        Some("leftover") => {
            let _ticker = weft_guest::spawn_detached(ticker, ());
            for _ in 0..2500 {
                yield_now();
            }
            println!("main: done");
        }
        Some("exit") => {
            let _ticker = weft_guest::spawn_detached(ticker, ());
            let _exiter = spawn(exiter, ());
            loop {
                yield_now();
            }
        }
        other => panic!("unknown mode {other:?}"),
    }
}

//! Workloads for the benchmarks in `benches/`. Each measures itself with the guest's
//! monotonic clock and prints `elapsed_ns N`, so that program start-up is not counted.
//!
//! - `spawn N`: spawn and join N microthreads that return at once (in waves of 1000).
//! - `spawn-join N`: N times, spawn a microthread that returns at once and join it:
//!   a spawn's latency, one at a time.
//! - `yield N`: N `yield_now` round trips.
//! - `sleepers N MS`: spawn N microthreads blocked in a `sleep` of MS ms, print
//!   `ready`, and wait for them.
//! - `lcg N`: N steps of an integer LCG loop (calls nothing).
//! - `sieve N`: N runs of a sieve of Eratosthenes over 100,000 numbers.
//! - `pingpong N`: N round trips of a u64 between two microthreads (rendezvous).
//! - `ring N`: 503 microthreads pass a token N hops (rendezvous channels).
//! - `parallel N`: 8 microthreads share N LCG steps (no communication).
//! - `throughput N SIZE`: N messages of SIZE bytes from one producer to one
//!   consumer through a channel of capacity 1024.
//! - `hostcall N`: N calls of `current()`: two host calls each (id, name).
//! - `resourcecall N`: N calls of a sender's `channel_id()`: a host call on a
//!   borrowed resource handle, as every channel operation is.
//! - `tryrecv N`: N `try_recv`s on an empty channel: a host call that never waits
//!   (bound synchronously on the host), on a borrowed resource, with an error back.
//! - `atomic N`: N empty atomic sections: `atomic-begin` (never waits, bound
//!   synchronously) and `atomic-end` (may yield, so bound `async`; nothing is due
//!   here, so it never does).
//! - `selfchan N`: N sends and receives of a u64 on a buffered channel, by one
//!   microthread: a channel operation's cost without any switch (a small message,
//!   which crosses the boundary by value).
//! - `selfchan-large N`: the same with a 64-byte value, which crosses as a list.
//! - `respawn N`: N times, spawn a microthread that blocks in a receive, cancel it,
//!   join it: what a restart costs by hand (cancel + join + a fresh spawn).
//! - `restart N`: N restarts by a supervisor (`weft_guest::supervisor`, one-for-one)
//!   of a permanent child that announces each start on a rendezvous channel and
//!   returns: the whole cycle (its end seen by a monitor, joined, counted, a fresh
//!   instance spawned and watched).
//! - `echo N`: take the host channels `in` and `out` (`RunOptions::receiver` and
//!   `sender`) and send back every u64 received, plus one, until `in` closes: the
//!   guest half of a host ↔ guest round trip, which the host times (N is unused).

use std::time::{Duration, Instant};

use weft_guest::supervisor::{Child, Supervisor};
use weft_guest::{Receiver, Sender, channel};

fn nothing(x: u32) -> u32 {
    x
}

fn nap(ms: u64) {
    // Cancelled or not, the nap is over.
    let _cancelled = weft_guest::sleep(Duration::from_millis(ms));
}

fn lcg(n: u64) -> u64 {
    let mut x = std::hint::black_box(1u64);
    for i in 0..n {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407)
            ^ i;
    }
    x
}

fn sieve(runs: u64) -> usize {
    let mut primes = 0;
    for _ in 0..runs {
        let n = std::hint::black_box(100_000usize);
        let mut composite = vec![false; n + 1];
        let mut count = 0;
        for i in 2..=n {
            if !composite[i] {
                count += 1;
                let mut j = i * i;
                while j <= n {
                    composite[j] = true;
                    j += i;
                }
            }
        }
        primes = count;
    }
    primes
}

fn ponger((rx, tx): (Receiver<u64>, Sender<u64>)) {
    for n in rx {
        if tx.send(n + 1).is_err() {
            return;
        }
    }
}

/// Passes the token on; whoever receives 0 reports its number and keeps the token
/// (the ring stays up for the next token).
fn ring_member((number, input, output, done): (u32, Receiver<u64>, Sender<u64>, Sender<u32>)) {
    for token in input {
        let sent = if token == 0 {
            done.send(number).is_ok()
        } else {
            output.send(token - 1).is_ok()
        };
        if !sent {
            return;
        }
    }
}

/// The ponger of `pingpong-fused`: each answer sent, and the next ping waited for,
/// in one call.
fn ponger_fused((rx, tx): (Receiver<u64>, Sender<u64>)) {
    let Ok(mut n) = rx.recv() else { return };
    while let Ok(next) = tx.send_then_recv(n + 1, &rx) {
        n = next;
    }
}

/// The ring member of `ring-fused`: each token passed on, and the next waited for,
/// in one call.
fn ring_member_fused((number, input, output, done): (u32, Receiver<u64>, Sender<u64>, Sender<u32>)) {
    let Ok(mut token) = input.recv() else { return };
    loop {
        let next = if token == 0 {
            done.send_then_recv(number, &input).map_err(|_| ())
        } else {
            output.send_then_recv(token - 1, &input).map_err(|_| ())
        };
        match next {
            Ok(t) => token = t,
            Err(()) => return,
        }
    }
}

/// Blocks until cancelled (its channel's sender is kept).
fn blocked(rx: Receiver<()>) {
    // Cancelled: the receive fails, and it returns.
    let _cancelled = rx.recv();
}

/// Announces its start, then returns (its supervisor starts it again).
fn announce(started: Sender<()>) {
    // Refused only when the bench is over and the supervisor shut down.
    let _over = started.send(());
}

fn consume(rx: Receiver<Vec<u8>>) -> u64 {
    rx.into_iter().map(|m| m.len() as u64).sum()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u64 = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .expect("usage: bench MODE N");
    // Set-up that is not measured.
    let mut pingpong = None;
    let mut ring = None;
    let fused = args[0].ends_with("-fused");
    if args[0] == "pingpong" || args[0] == "pingpong-fused" {
        let (ping_tx, ping_rx) = channel::<u64>(0);
        let (pong_tx, pong_rx) = channel::<u64>(0);
        let h = weft_guest::spawn(if fused { ponger_fused } else { ponger }, (ping_rx, pong_tx));
        ping_tx.send(0).unwrap(); // the ponger is up
        pong_rx.recv().unwrap();
        pingpong = Some((ping_tx, pong_rx, h));
    }
    if args[0] == "ring" || args[0] == "ring-fused" {
        let member = if fused { ring_member_fused } else { ring_member };
        let (done_tx, done_rx) = channel::<u32>(1);
        let (first_tx, mut prev_rx) = channel::<u64>(0);
        for number in 1..503 {
            let (tx, rx) = channel(0);
            let _ = weft_guest::spawn(member, (number, prev_rx, tx, done_tx.clone()));
            prev_rx = rx;
        }
        let _ = weft_guest::spawn(member, (503, prev_rx, first_tx.clone(), done_tx));
        // One lap first, so that every member is up and waiting.
        first_tx.send(503).unwrap();
        assert_eq!(done_rx.recv().unwrap(), 1);
        ring = Some((first_tx, done_rx));
    }
    let start = Instant::now();
    match args[0].as_str() {
        "pingpong" => {
            let (ping_tx, pong_rx, _h) = pingpong.as_ref().unwrap();
            for i in 0..n {
                ping_tx.send(i).unwrap();
                assert_eq!(pong_rx.recv().unwrap(), i + 1);
            }
        }
        "ring" => {
            let (first_tx, done_rx) = ring.as_ref().unwrap();
            first_tx.send(n).unwrap();
            let holder = done_rx.recv().unwrap();
            assert_eq!(u64::from(holder), n % 503 + 1);
        }
        "pingpong-fused" => {
            let (ping_tx, pong_rx, _h) = pingpong.as_ref().unwrap();
            for i in 0..n {
                assert_eq!(ping_tx.send_then_recv(i, pong_rx).unwrap(), i + 1);
            }
        }
        "ring-fused" => {
            let (first_tx, done_rx) = ring.as_ref().unwrap();
            let holder = first_tx.send_then_recv(n, done_rx).unwrap();
            assert_eq!(u64::from(holder), n % 503 + 1);
        }
        "throughput" => {
            let size: usize = args[2].parse().expect("SIZE");
            let (tx, rx) = channel::<Vec<u8>>(1024);
            let h = weft_guest::spawn(consume, rx);
            let payload = vec![7u8; size];
            for _ in 0..n {
                tx.send(payload.clone()).unwrap();
            }
            drop(tx);
            assert_eq!(h.join().unwrap(), n * size as u64);
        }
        "spawn" => {
            let mut left = n;
            while left > 0 {
                let wave = left.min(1000);
                let handles: Vec<_> = (0..wave).map(|i| weft_guest::spawn(nothing, i as u32)).collect();
                for h in handles {
                    h.join().expect("join");
                }
                left -= wave;
            }
        }
        "spawn-join" => {
            for i in 0..n {
                let h = weft_guest::spawn(nothing, i as u32);
                std::hint::black_box(h.join().expect("join"));
            }
        }
        "respawn" => {
            let (_keep, rx) = channel::<()>(1);
            for _ in 0..n {
                let h = weft_guest::spawn(blocked, rx.clone());
                h.cancel();
                assert!(h.join().is_err(), "a cancelled microthread fails");
            }
        }
        "restart" => {
            let (tx, started) = channel::<()>(0);
            // No intensity limit: within a window of zero, no restarts accumulate.
            let sup = Supervisor::new("bench")
                .intensity(u32::MAX, Duration::ZERO)
                .child(Child::new("announcer", announce, tx))
                .start()
                .expect("the supervisor starts");
            started.recv().expect("the first start");
            for _ in 0..n {
                started.recv().expect("a restart");
            }
            sup.shutdown().expect("not cancelled");
            sup.join().expect("a shut-down supervisor returns");
        }
        "hostcall" => {
            for _ in 0..n {
                std::hint::black_box(weft_guest::current());
            }
        }
        "resourcecall" => {
            let (tx, _rx) = channel::<u64>(1);
            for _ in 0..n {
                std::hint::black_box(tx.channel_id());
            }
        }
        "tryrecv" => {
            let (_tx, rx) = channel::<u64>(1);
            for _ in 0..n {
                assert!(matches!(rx.try_recv(), Err(weft_guest::TryRecvError::Empty)));
            }
        }
        "atomic" => {
            for i in 0..n {
                std::hint::black_box(weft_guest::atomic(|| std::hint::black_box(i)));
            }
        }
        "echo" => {
            let rx = weft_guest::host_receiver::<u64>("in").expect("the host hands `in`");
            let tx = weft_guest::host_sender::<u64>("out").expect("the host hands `out`");
            for v in rx {
                tx.send(v + 1).expect("the host receives on `out`");
            }
        }
        "selfchan" => {
            let (tx, rx) = channel::<u64>(1);
            for i in 0..n {
                tx.send(i).unwrap();
                assert_eq!(rx.recv().unwrap(), i);
            }
        }
        "selfchan-large" => {
            // 64 bytes: past what travels by value, so every message is a list.
            let (tx, rx) = channel::<[[u8; 32]; 2]>(1);
            for i in 0..n {
                let b = i as u8;
                tx.send([[b; 32]; 2]).unwrap();
                assert_eq!(rx.recv().unwrap()[1][31], b);
            }
        }
        "yield" => {
            for _ in 0..n {
                weft_guest::yield_now();
            }
        }
        "sleepers" => {
            let ms: u64 = args[2].parse().expect("MS");
            let handles: Vec<_> = (0..n).map(|_| weft_guest::spawn(nap, ms)).collect();
            println!("ready");
            for h in handles {
                h.join().expect("join");
            }
        }
        "lcg" => {
            std::hint::black_box(lcg(n));
        }
        "parallel" => {
            let handles: Vec<_> = (0..8).map(|_| weft_guest::spawn(lcg, n / 8)).collect();
            for h in handles {
                std::hint::black_box(h.join().unwrap());
            }
        }
        "sieve" => {
            assert_eq!(sieve(n), 9592);
        }
        other => panic!("unknown mode {other}"),
    }
    let elapsed = start.elapsed();
    println!("elapsed_ns {}", elapsed.as_nanos());
    drop(pingpong);
    if ring.is_some() {
        // The ring never closes by itself: end the program.
        weft_guest::exit(0);
    }
}

//! The Benchmarks Game's thread-ring: 503 microthreads in a ring pass a token N
//! times (first argument, default 1000); prints the number (1-based) of the
//! microthread holding the token when it reaches 0.

use weft_guest::{Receiver, Sender, channel};

const RING: u32 = 503;

/// Passes the token on, decremented; the one that receives 0 reports its number.
fn member((number, input, output, done): (u32, Receiver<u64>, Sender<u64>, Sender<u32>)) {
    for token in input {
        if token == 0 {
            done.send(number).unwrap();
            return;
        }
        if output.send(token - 1).is_err() {
            return;
        }
    }
}

fn main() {
    let hops: u64 = std::env::args().nth(1).map_or(1000, |a| a.parse().expect("N"));
    let (done_tx, done_rx) = channel::<u32>(1);
    let (first_tx, mut prev_rx) = channel::<u64>(0);
    let start = std::time::Instant::now();
    for number in 1..RING {
        let (tx, rx) = channel(0);
        let _ = weft_guest::spawn(member, (number, prev_rx, tx, done_tx.clone()));
        prev_rx = rx;
    }
    let _ = weft_guest::spawn(member, (RING, prev_rx, first_tx.clone(), done_tx.clone()));
    drop(done_tx);
    first_tx.send(hops).unwrap();
    drop(first_tx);
    let holder = done_rx.recv().unwrap();
    let elapsed = start.elapsed();
    println!("{holder}");
    eprintln!("{:.0} ns per hop", elapsed.as_nanos() as f64 / hops.max(1) as f64);
    // The holder has returned, dropping its ends: the ring unwinds by itself.
}

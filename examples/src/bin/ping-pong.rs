//! Two microthreads bounce a counter N times (first argument, default 100000) over
//! two rendezvous channels.

use weft_guest::{Receiver, Sender, channel};

fn ponger((rx, tx): (Receiver<u64>, Sender<u64>)) -> u64 {
    let mut count = 0;
    for n in rx {
        tx.send(n + 1).expect("pinger gone");
        count += 1;
    }
    count
}

fn main() {
    let n: u64 = std::env::args().nth(1).map_or(100_000, |a| a.parse().expect("N"));
    let (ping_tx, ping_rx) = channel::<u64>(0);
    let (pong_tx, pong_rx) = channel::<u64>(0);
    let ponger = weft_guest::Builder::new()
        .name("ponger")
        .spawn(ponger, (ping_rx, pong_tx))
        .unwrap();
    let start = std::time::Instant::now();
    let mut value = 0;
    for _ in 0..n {
        ping_tx.send(value).unwrap();
        value = pong_rx.recv().unwrap();
    }
    let elapsed = start.elapsed();
    drop(ping_tx);
    let bounced = ponger.join().unwrap();
    assert_eq!(value, n);
    println!("ping-pong: {n} round trips, counter {value}, ponger saw {bounced}");
    println!(
        "{:.0} ns per round trip",
        elapsed.as_nanos() as f64 / n.max(1) as f64
    );
}

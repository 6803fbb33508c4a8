//! A CPU hog that never calls the host, beside a microthread that sleeps 1 ms many
//! times and reports how late each wake-up was. Under fuel preemption the sleeper
//! finishes while the hog still runs; with preemption off (on one worker) it cannot.
//!
//! Usage: fairness [HOG_ITERATIONS] [SLEEPS]

use std::time::{Duration, Instant};

/// An LCG loop: no host call, no yield, no allocation inside.
fn hog(iterations: u64) -> u64 {
    let mut x = std::hint::black_box(0x2545_f491_4f6c_dd1du64);
    for i in 0..iterations {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407)
            ^ i;
    }
    println!("hog done (checksum {x:x})");
    x
}

/// Sleeps 1 ms `sleeps` times; returns each wake-up's lateness in microseconds.
fn sleeper(sleeps: u32) -> Vec<u64> {
    let mut lateness = Vec::with_capacity(sleeps as usize);
    for _ in 0..sleeps {
        let start = Instant::now();
        if weft_guest::sleep(Duration::from_millis(1)).is_err() {
            break; // cancelled: the program is ending
        }
        let late = start.elapsed().saturating_sub(Duration::from_millis(1));
        lateness.push(late.as_micros() as u64);
    }
    println!("sleeper done ({sleeps} sleeps)");
    lateness
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let iterations: u64 = args
        .next()
        .map_or(2_000_000_000, |a| a.parse().expect("HOG_ITERATIONS"));
    let sleeps: u32 = args.next().map_or(200, |a| a.parse().expect("SLEEPS"));
    let sleeper = weft_guest::Builder::new()
        .name("sleeper")
        .spawn(sleeper, sleeps)
        .expect("spawn");
    let hog = weft_guest::Builder::new()
        .name("hog")
        .spawn(hog, iterations)
        .expect("spawn");
    let mut lateness = sleeper.join().expect("sleeper failed");
    hog.join().expect("hog failed");
    lateness.sort_unstable();
    println!(
        "lateness of {sleeps} 1 ms sleeps beside the hog: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&lateness, 0.5),
        percentile(&lateness, 0.99),
        percentile(&lateness, 1.0),
    );
}

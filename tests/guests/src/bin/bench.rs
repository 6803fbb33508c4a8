//! Workloads for the benchmarks in `benches/`. Each measures itself with the guest's
//! monotonic clock and prints `elapsed_ns N`, so that program start-up is not counted.
//!
//! - `spawn N`: spawn and join N microthreads that return at once (in waves of 1000).
//! - `yield N`: N `yield_now` round trips.
//! - `sleepers N MS`: spawn N microthreads blocked in a `sleep` of MS ms, print
//!   `ready`, and wait for them.
//! - `lcg N`: N steps of an integer LCG loop (calls nothing).
//! - `sieve N`: N runs of a sieve of Eratosthenes over 100,000 numbers.

use std::time::{Duration, Instant};

fn nothing(x: u32) -> u32 {
    x
}

fn nap(ms: u64) {
    weft_guest::sleep(Duration::from_millis(ms));
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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u64 = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .expect("usage: bench MODE N");
    let start = Instant::now();
    match args[0].as_str() {
        "spawn" => {
            let mut left = n;
            while left > 0 {
                let wave = left.min(1000);
                let handles: Vec<_> = (0..wave)
                    .map(|i| weft_guest::spawn(nothing, i as u32))
                    .collect();
                for h in handles {
                    h.join().expect("join");
                }
                left -= wave;
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
        "sieve" => {
            assert_eq!(sieve(n), 9592);
        }
        other => panic!("unknown mode {other}"),
    }
    println!("elapsed_ns {}", start.elapsed().as_nanos());
}

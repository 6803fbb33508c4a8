//! The raw NATS floor the goal table compares weft's remote channels with: a
//! request/reply round trip, and publishing with an acknowledgement window, over
//! loopback through a real `nats-server` with async-nats (see
//! `weft_benches::nats_floor`); then, in the same sitting, weft's remote channels
//! (`weft_benches::cluster`): a ping-pong round trip between two nodes, and a
//! stream of small values on a buffered remote channel of capacity 64, with their
//! ratios to the floor. Each figure is the median of `WEFT_BENCH_RUNS` runs
//! (default 3).
//!
//! `cargo bench -p weft-benches --bench nats_floor`. The sizes of a run:
//! `WEFT_NATS_ROUND_TRIPS` (default 10,000), `WEFT_NATS_MESSAGES` (default 100,000),
//! `WEFT_NATS_WINDOWS` (default `16,64,256`), `WEFT_NATS_SIZES` in bytes (default
//! `64,1024`).

use std::process::ExitCode;
use std::time::Duration;

use weft_benches::cluster::{remote_ping_pong, remote_stream};
use weft_benches::nats_floor::{publish_with_ack_window, request_reply_round_trip};
use weft_tests::nats::NatsServer;

/// Median, min and max of `runs` measurements, in the unit `f` gives.
fn repeat(runs: usize, f: impl FnMut() -> Duration, unit: fn(Duration) -> f64) -> (f64, f64, f64) {
    let mut f = f;
    let mut v: Vec<f64> = (0..runs).map(|_| unit(f())).collect();
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// A positive number from the environment variable `var`, else `default`.
fn number(var: &str, default: u32) -> Result<u32, String> {
    match std::env::var(var) {
        Err(std::env::VarError::NotPresent) => Ok(default),
        Err(e) => Err(format!("{var}: {e}")),
        Ok(s) => s
            .trim()
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{var}={s:?}: expected a positive whole number")),
    }
}

/// A comma-separated list of positive numbers from `var`, else `default`.
fn numbers(var: &str, default: &[u32]) -> Result<Vec<u32>, String> {
    match std::env::var(var) {
        Err(std::env::VarError::NotPresent) => Ok(default.to_vec()),
        Err(e) => Err(format!("{var}: {e}")),
        Ok(s) => s
            .split(',')
            .map(|w| {
                w.trim().parse().ok().filter(|&n: &u32| n > 0).ok_or_else(|| {
                    format!("{var}={s:?}: expected positive whole numbers separated by commas")
                })
            })
            .collect(),
    }
}

struct Sizes {
    runs: usize,
    round_trips: u32,
    messages: u32,
    windows: Vec<u32>,
    sizes: Vec<u32>,
}

fn sizes() -> Result<Sizes, String> {
    Ok(Sizes {
        runs: number("WEFT_BENCH_RUNS", 3)? as usize,
        round_trips: number("WEFT_NATS_ROUND_TRIPS", 10_000)?,
        messages: number("WEFT_NATS_MESSAGES", 100_000)?,
        windows: numbers("WEFT_NATS_WINDOWS", &[16, 64, 256])?,
        sizes: numbers("WEFT_NATS_SIZES", &[64, 1024])?,
    })
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; a name filter is not supported here.
    let s = match sizes() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nats_floor: {e}");
            return ExitCode::from(2);
        }
    };
    let server = NatsServer::start();
    let range = |(median, min, max): (f64, f64, f64)| {
        if s.runs == 1 {
            format!("{median:.1}")
        } else {
            format!("{median:.1} (median of {} runs: {min:.1}–{max:.1})", s.runs)
        }
    };

    eprintln!("request/reply…");
    let rr = repeat(
        s.runs,
        || request_reply_round_trip(&server, s.round_trips),
        |d| d.as_nanos() as f64 / 1000.0,
    );
    println!("nats request/reply round trip: {} µs", range(rr));

    for &window in &s.windows {
        for &size in &s.sizes {
            eprintln!("publish, window {window}, {size} bytes…");
            let p = repeat(
                s.runs,
                || publish_with_ack_window(&server, s.messages, window, size as usize),
                |d| d.as_nanos() as f64,
            );
            println!("nats publish, window {window}, {size} bytes: {} ns/msg", range(p));
        }
    }

    // weft's remote channels, in the same sitting, against the floor.
    eprintln!("weft remote ping-pong…");
    let pp = repeat(
        s.runs,
        || remote_ping_pong(&server, s.round_trips),
        |d| d.as_nanos() as f64 / 1000.0,
    );
    println!(
        "weft remote ping-pong round trip: {} µs ({:.2}x the request/reply floor; goal <= 1.3x)",
        range(pp),
        pp.0 / rr.0
    );
    eprintln!("raw publish, window 64, 16 bytes (the stream's floor)…");
    let floor = repeat(
        s.runs,
        || publish_with_ack_window(&server, s.messages, 64, 16),
        |d| d.as_nanos() as f64,
    );
    println!("nats publish, window 64, 16 bytes: {} ns/msg", range(floor));
    eprintln!("weft remote stream…");
    let st = repeat(
        s.runs,
        || remote_stream(&server, s.messages, 64),
        |d| d.as_nanos() as f64,
    );
    println!(
        "weft remote stream, capacity 64, u64 values: {} ns/msg ({:.2}x the floor's throughput; goal >= 0.5x)",
        range(st),
        floor.0 / st.0
    );
    ExitCode::SUCCESS
}

//! Cancellation: a microthread blocked in `recv` and another spinning in a tight
//! loop are both cancelled. The blocked one sees the cancellation as an error from
//! its `recv`, and its cleanup runs; the busy one never blocks, so it is stopped at
//! its next fuel yield. Joining either gives a failure of kind `Cancelled`.
//!
//! `weft run cancel.wasm`

use std::time::Duration;

use weft_guest::{FailureKind, JoinError, Receiver, RecvError, channel, spawn};

/// Waits for a job that never comes; cleans up when cancelled.
fn worker(jobs: Receiver<String>) {
    println!("worker: waiting for a job");
    match jobs.recv() {
        Ok(job) => println!("worker: got {job}"),
        Err(RecvError::Cancelled) => println!("worker: cancelled; closing my files"),
        Err(e) => println!("worker: {e}"),
    }
}

/// Computes forever without calling the host.
fn spinner(_: ()) -> u64 {
    let mut x = std::hint::black_box(1u64);
    loop {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
}

fn report(who: &str, joined: Result<impl std::fmt::Debug, JoinError>) {
    match joined {
        Err(JoinError::Failed(f)) if f.kind == FailureKind::Cancelled => {
            println!("main: {who} was cancelled")
        }
        other => println!("main: {who} ended otherwise: {other:?}"),
    }
}

fn main() {
    let (_jobs, rx) = channel::<String>(0);
    let blocked = spawn(worker, rx);
    let busy = spawn(spinner, ());
    weft_guest::sleep(Duration::from_millis(100)).expect("main is not cancelled");
    println!("main: cancelling both");
    blocked.cancel();
    busy.cancel();
    report("the blocked worker", blocked.join());
    report("the spinner", busy.join());
}

//! `Sender::send_then_recv` and `call`: one host call for a send and the receive
//! after it, with the two calls' semantics on every path (the `fused` guest).

use weft::ExitStatus;

mod common;
use common::{run_on, runtime};

/// Run mode `args` of the fused guest on 1 and 2 workers: it exits 0, and prints
/// `want`.
fn prints(args: &[&str], want: &str) {
    for workers in [1, 2] {
        let r = run_on(&runtime(workers), "fused", args);
        assert_eq!(r.status, ExitStatus::Exited(0), "{args:?}: {}", r.stderr);
        assert_eq!(r.stdout, want, "{args:?} on {workers} worker(s): {}", r.stderr);
    }
}

#[test]
fn round_trips_and_calls_carry_every_value_there_and_back() {
    // The sum of the squares of 0..500.
    let sum: u64 = (0..500u64).map(|i| i * i).sum();
    prints(
        &["roundtrip", "500"],
        &format!("round trips 500, counter 500\ncalls 500, sum {sum}\n"),
    );
}

#[test]
fn a_failed_send_gives_its_value_back_and_receives_nothing() {
    prints(&["send-closed"], "send: Closed(41)\nstill there: Ok(7)\n");
    prints(&["send-timeout"], "send: Timeout(2)\nstill there: Ok(7)\n");
}

#[test]
fn a_message_over_the_limit_is_refused_before_anything_is_received() {
    for workers in [1, 2] {
        let rt = runtime(workers);
        let options = weft::RunOptions::new().max_message_size(16 * 1024);
        let r = common::run_with(&rt, "fused", &["too-large"], options);
        assert_eq!(r.status, ExitStatus::Exited(0), "{}", r.stderr);
        assert_eq!(r.stdout, "send: TooLarge(65536)\nstill there: Ok(7)\n");
    }
}

#[test]
fn a_failed_receive_after_a_send_says_why_and_the_message_was_delivered() {
    prints(&["recv-closed"], "recv: Closed\ndelivered: Ok(5)\n");
    prints(&["recv-timeout"], "recv: Timeout\ndelivered: Ok(3)\n");
    prints(&["recv-failed"], "recv: Failed(Panic)\n");
}

#[test]
fn a_cancellation_fails_whichever_half_it_meets() {
    prints(&["cancel-send"], "send: Cancelled(9)\n");
    prints(&["cancel-recv"], "recv: Cancelled\n");
}

#[test]
fn two_microthreads_waiting_for_each_other_in_the_call_are_a_deadlock() {
    for workers in [1, 2] {
        let r = run_on(&runtime(workers), "fused", &["deadlock"]);
        let ExitStatus::Deadlocked(report) = &r.status else {
            panic!("{:?}: {}", r.status, r.stderr)
        };
        assert!(report.contains("(left): receiving on channel"), "{report}");
        assert!(report.contains("(right): receiving on channel"), "{report}");
    }
}

//! Monitors through a real guest (`monitors`): exactly one `Down` per monitor, for
//! a finished, a failed and a cancelled microthread; several on one; an id that
//! ended and one that never was; a receiver moved to another microthread; dropped
//! receivers, which leave no channel open; a watcher that finishes first; `select`
//! over monitors; the run's channel limit; and deterministic runs. On one worker
//! and on two.

mod common;
use common::runtime;

use std::time::Duration;

use weft::{ExitStatus, RunOptions};

/// Run mode `mode` on `workers` workers with `options`: its exit status and stdout.
fn run_with(workers: usize, mode: &str, options: RunOptions) -> (ExitStatus, String) {
    let options = options.cancel_grace(Duration::from_secs(5));
    let r = common::run_with(&runtime(workers), "monitors", &[mode], options);
    eprintln!("{mode} on {workers}: {:?}\n{}{}", r.status, r.stdout, r.stderr);
    (r.status, r.stdout)
}

/// Run `mode` on 1 and on 2 workers: it exits with 0 and prints exactly `want`.
fn expect(mode: &str, want: &[&str]) {
    for workers in [1, 2] {
        let (status, out) = run_with(workers, mode, RunOptions::new());
        assert_eq!(status, ExitStatus::Exited(0), "{mode} on {workers}");
        assert_eq!(out.lines().collect::<Vec<_>>(), want, "{mode} on {workers}");
    }
}

#[test]
fn a_finished_microthread_sends_one_down() {
    expect(
        "finished",
        &["down: the watched Some(\"ok\") finished", "join: Ok(7)"],
    );
}

#[test]
fn a_failure_arrives_with_its_kind_and_message() {
    expect(
        "failed",
        &[
            "down: the watched Some(\"bad\") failed Panic: panicked at \
             tests/guests/src/bin/monitors.rs:25:5: boom at the gate (failure of the watched)",
            "join: failed Panic, the same failure: true",
        ],
    );
}

#[test]
fn a_cancelled_microthread_sends_one_down() {
    expect(
        "cancelled",
        &[
            "down: the watched Some(\"blocked\") failed Cancelled: cancelled (failure of the watched)",
            "join: failed Cancelled, the same failure: true",
        ],
    );
}

#[test]
fn each_of_several_monitors_gets_its_down() {
    expect(
        "several",
        &[
            "down 0: the watched Some(\"gated\") finished",
            "down 1: the watched Some(\"gated\") finished",
            "down 2: the watched Some(\"gated\") finished",
        ],
    );
}

#[test]
fn an_id_that_is_not_live_gets_no_such_at_once() {
    expect(
        "not-live",
        &[
            "ended: the watched None no such",
            "never: the watched None no such",
            "main's id: 0",
        ],
    );
}

#[test]
fn a_receiver_moved_to_another_microthread_still_gets_its_down() {
    expect("moved", &["moved: the watched Some(\"gated\") finished"]);
}

#[test]
fn a_watcher_finishes_first_and_cancels_nobody() {
    expect(
        "watcher-first",
        &[
            "watcher: nothing yet, returning",
            "watched still running: true",
            "watched: join Ok(7)",
        ],
    );
}

#[test]
fn select_over_monitors_gets_each_down_in_turn() {
    expect(
        "select",
        &[
            "select: monitor 2: the watched Some(\"gated\") finished",
            "select: monitor 0: the watched Some(\"gated\") finished",
            "select: monitor 1: the watched Some(\"gated\") finished",
        ],
    );
}

#[test]
fn dropped_receivers_end_their_monitors_and_hold_no_channel() {
    for workers in [1, 2] {
        let (report_tx, report) = weft::channel::<String>(1);
        let (go, go_rx) = weft::channel::<()>(1);
        let (run, out) = common::start(
            &runtime(workers),
            "monitors",
            &["dropped"],
            RunOptions::new()
                .sender("report", report_tx)
                .receiver("go", go_rx),
        );
        let at = |step: &str| {
            assert_eq!(report.recv_blocking().expect("the guest reports"), step);
            run.open_channels()
        };
        let before = at("before");
        go.send_blocking(()).unwrap();
        assert_eq!(at("opened"), before + 50, "each monitor is an open channel");
        go.send_blocking(()).unwrap();
        assert_eq!(at("dropped"), before, "dropped monitors hold no channel");
        go.send_blocking(()).unwrap();
        assert_eq!(run.wait(), ExitStatus::Exited(0), "on {workers}");
        assert_eq!(out.to_string_lossy(), "dropped: join Ok(7)\n");
    }
}

#[test]
fn monitors_count_against_the_run_s_channels() {
    for workers in [1, 2] {
        let (status, out) = run_with(workers, "limit", RunOptions::new().max_channels(16));
        assert_eq!(status, ExitStatus::Exited(0));
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            [
                "limit: refused after 16: cannot open a channel: the program already has its \
                 maximum of 16 open channels",
                "limit: after dropping, true",
            ]
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_downs() {
    let churn = |seed| run_with(2, "churn", RunOptions::new().deterministic(seed));
    for seed in [3, 17] {
        let (status, first) = churn(seed);
        assert_eq!(status, ExitStatus::Exited(0));
        assert_eq!(first.lines().count(), 10, "one Down per monitor: {first}");
        assert_eq!(churn(seed), (ExitStatus::Exited(0), first));
    }
}

#[test]
fn monitors_count_against_the_microthread_s_handles() {
    let (status, _) = run_with(1, "limit", RunOptions::new().max_channels(1000).max_handles(16));
    match status {
        ExitStatus::Failed(f) => {
            assert_eq!(f.kind, weft::FailureKind::Trap, "{f}");
            assert!(f.message.contains("max_handles"), "{f}");
        }
        other => panic!("the guest holds more handles than it may: {other:?}"),
    }
}

#[test]
fn waiting_on_a_monitor_counts_in_the_deadlock_detector() {
    for workers in [1, 2] {
        let (status, out) = run_with(workers, "deadlock", RunOptions::new());
        let ExitStatus::Deadlocked(report) = &status else {
            panic!("a deadlock on {workers}: {status:?}");
        };
        // Channel 1 is the one the watched waits on, 2 the monitor's.
        assert_eq!(
            report.lines().collect::<Vec<_>>(),
            [
                "microthread 0 (main): receiving on channel 2",
                "microthread 1: receiving on channel 1"
            ]
        );
        assert_eq!(out, "deadlock: the wait ended with the cancellation\n");
    }
}

//! Structured concurrency, through real guests: cancelling microthreads (blocked,
//! busy, stubborn, with children), joined and unjoined failures, detached
//! microthreads, atomic sections, whole-line output, and the examples `cancel` and
//! `supervisor`. Where scheduling matters, on one worker and on two.

use std::time::Duration;

use weft::{ExitStatus, FailureKind, RunOptions};

mod common;
use common::{Ran, lines, run_with, runtime};

fn structure(workers: usize, mode: &str) -> Ran {
    let r = run_with(
        &runtime(workers),
        "structure",
        &[mode],
        RunOptions::new()
            .cancel_grace(Duration::from_millis(500))
            .shutdown_grace(Duration::from_millis(500)),
    );
    eprintln!("{mode} on {workers}: {:?}\n{}{}", r.status, r.stdout, r.stderr);
    r
}

#[test]
fn cancelling_a_blocked_microthread_runs_its_cleanup() {
    for workers in [1, 2] {
        let r = structure(workers, "cancel-blocked");
        assert_eq!(r.status, ExitStatus::Exited(0));
        assert_eq!(
            lines(&r.stdout),
            ["blocked: recv cancelled, cleaning up", "joined: Cancelled"]
        );
    }
}

#[test]
fn cancelling_a_wait_with_a_timeout_ends_it_at_once() {
    // Its timeout is a minute; the grace period half a second: the wait ends at the
    // cancellation, with the error, not at the grace period's end.
    let r = structure(2, "cancel-timed");
    assert_eq!(
        lines(&r.stdout),
        ["timed: recv_timeout cancelled", "joined: Cancelled"]
    );
}

#[test]
fn cancelling_a_busy_microthread_stops_it_at_a_fuel_yield() {
    for workers in [1, 2] {
        let r = structure(workers, "cancel-busy");
        assert_eq!(r.status, ExitStatus::Exited(0));
        assert_eq!(
            lines(&r.stdout),
            ["joined: microthread 1 (spin) failed: cancelled"]
        );
    }
}

#[test]
fn a_cancellation_cannot_be_swallowed() {
    // It sees the cancellation, blocks again (which fails at once), then spins:
    // the grace period stops it.
    let r = structure(2, "cancel-stubborn");
    assert_eq!(r.status, ExitStatus::Exited(0));
    assert_eq!(
        lines(&r.stdout),
        [
            "stubborn: sleep after the cancellation: this microthread was cancelled",
            "joined: Cancelled"
        ]
    );
}

#[test]
fn a_cancelled_microthreads_endpoints_close_and_its_children_are_cancelled() {
    let r = structure(2, "cancel-closes");
    assert_eq!(lines(&r.stdout), ["recv: Err(Closed)", "joined: Cancelled"]);
    let r = structure(2, "cancel-children");
    let out = lines(&r.stdout);
    let mut cleanups = out[..2].to_vec();
    cleanups.sort();
    assert_eq!(
        cleanups,
        ["grandchild: cancelled with its parent", "parent: cancelled"]
    );
    assert_eq!(out[2..], ["joined: Cancelled"]);
}

#[test]
fn cancelling_a_finished_microthread_does_nothing_and_join_timeout_hands_the_handle_back() {
    let r = structure(1, "cancel-finished");
    assert_eq!(lines(&r.stdout), ["joined: true"]);
    let r = structure(2, "join-timeout");
    assert_eq!(
        lines(&r.stdout),
        [
            "finished before the cancel: false",
            "blocked: recv cancelled, cleaning up",
            "joined after the cancel: Cancelled"
        ]
    );
}

#[test]
fn an_unjoined_failure_cancels_the_siblings_and_fails_the_parent() {
    for workers in [1, 2] {
        let r = structure(workers, "unjoined-siblings");
        // The sibling would sleep 30 s and main 60 s: both are cancelled once the
        // trapper fails (the two, in either order).
        let out = lines(&r.stdout);
        assert_eq!(out[0], "trapper: trapping");
        let mut rest = out[1..].to_vec();
        rest.sort();
        assert_eq!(
            rest,
            ["main: this microthread was cancelled", "sibling: cancelled"]
        );
        let ExitStatus::Failed(f) = &r.status else {
            panic!("{:?}", r.status)
        };
        assert_eq!(f.kind, FailureKind::ChildFailed);
        assert!(
            f.summary().starts_with(
                "a child failed and nobody joined it: microthread 2 (trap_soon) failed: wasm trap"
            ),
            "{f}"
        );
        assert!(f.message.contains("structure::trap_soon"), "the backtrace: {f}");
        assert_eq!(
            f.message.matches("wasm backtrace:").count(),
            1,
            "one report, the backtrace once: {f}"
        );
    }
}

#[test]
fn running_out_of_memory_is_a_failure_of_its_own_kind() {
    let r = run_with(
        &runtime(1),
        "structure",
        &["oom"],
        RunOptions::new().max_memory(16 << 20),
    );
    assert_eq!(r.status, ExitStatus::Exited(0));
    assert!(
        r.stdout.starts_with(
            "joined: OutOfMemory: out of memory: its linear memory may not grow past 16777216 bytes"
        ),
        "{}",
        r.stdout
    );
}

#[test]
fn a_joined_failure_lets_the_parent_carry_on() {
    let r = structure(2, "joined-trap");
    assert_eq!(r.status, ExitStatus::Exited(0));
    assert_eq!(
        lines(&r.stdout),
        ["trapper: trapping", "main: handled a Trap, carrying on"]
    );
}

#[test]
fn a_detached_failure_is_reported_and_the_program_carries_on() {
    let r = structure(2, "detached-failure");
    assert_eq!(r.status, ExitStatus::Exited(0));
    assert_eq!(lines(&r.stdout), ["main: carries on"]);
    let report: Vec<&str> = r.stderr.lines().collect();
    assert!(
        report[0].starts_with("weft: detached microthread 1 (panic_now) failed: panicked at")
            && report[0].ends_with("detached boom"),
        "{}",
        r.stderr
    );
    assert_eq!(report[1], "wasm backtrace:");
    assert!(
        report[2].contains("structure::panic_now"),
        "the panic machinery is left out: {}",
        r.stderr
    );
}

#[test]
fn detached_microthreads_are_cancelled_when_main_ends() {
    let r = structure(2, "detached-outlives");
    assert_eq!(r.status, ExitStatus::Exited(0));
    assert_eq!(
        lines(&r.stdout),
        [
            "main: returns",
            "detached: cancelled at the end of main, cleaning up"
        ]
    );
    assert_eq!(r.stderr, "", "a cancellation is not a failure to report");
}

#[test]
fn an_abandoned_generator_ends_its_producer() {
    let r = structure(2, "abandoned-generate");
    assert_eq!(r.status, ExitStatus::Exited(0));
    // The producer's send fails as the receiver goes: before or after main prints.
    let mut out = lines(&r.stdout);
    out.sort();
    assert_eq!(
        out,
        ["main: took Some(0)", "producer: the reader is gone, cleaning up"]
    );
}

#[test]
fn an_atomic_section_holds_off_preemption_until_it_ends() {
    // One worker: the spinner gets a turn only when main is preempted.
    let r = structure(1, "no-atomic");
    assert_eq!(
        lines(&r.stdout),
        [
            "main: section begins",
            "spinner: ran",
            "main: section done",
            "main: after the section"
        ]
    );
    let r = structure(1, "atomic");
    // Not inside the section; right after it, before main goes on.
    assert_eq!(
        lines(&r.stdout),
        [
            "main: section begins",
            "main: section done",
            "spinner: ran",
            "main: after the section"
        ]
    );
}

#[test]
fn an_atomic_section_has_a_cap_and_a_blocking_call_ends_it() {
    let r = run_with(
        &runtime(1),
        "structure",
        &["atomic-cap"],
        RunOptions::new().atomic_cap(Duration::from_millis(100)),
    );
    let ExitStatus::Failed(f) = &r.status else {
        panic!("{:?}", r.status)
    };
    assert!(
        f.summary()
            .starts_with("an atomic section ran longer than 100ms, the cap"),
        "{f}"
    );
    let r = structure(1, "atomic-blocking");
    assert_eq!(r.status, ExitStatus::Exited(0));
    assert_eq!(
        lines(&r.stdout),
        ["main: a blocking call ended the section (true)"]
    );
}

#[test]
fn output_is_never_interleaved_within_a_line() {
    // Four microthreads on two workers write 50 lines of 600 bytes each, every line
    // in ten writes with a yield between them.
    let r = structure(2, "lines");
    assert_eq!(r.status, ExitStatus::Exited(0));
    let lines = lines(&r.stdout);
    assert_eq!(lines.len(), 200);
    for line in lines {
        let first = line.chars().next().unwrap();
        assert!(
            line.len() == 600 && line.chars().all(|c| c == first),
            "a mixed line: {line}"
        );
    }
}

#[test]
fn the_cancel_example() {
    let r = run_with(&runtime(2), "cancel", &[], RunOptions::new());
    assert_eq!(r.status, ExitStatus::Exited(0));
    assert_eq!(
        lines(&r.stdout),
        [
            "worker: waiting for a job",
            "main: cancelling both",
            "worker: cancelled; closing my files",
            "main: the blocked worker was cancelled",
            "main: the spinner was cancelled"
        ]
    );
}

#[test]
fn the_supervisor_example() {
    let r = run_with(&runtime(2), "supervisor", &["unjoined"], RunOptions::new());
    let ExitStatus::Failed(f) = &r.status else {
        panic!("{:?}", r.status)
    };
    assert_eq!(f.kind, FailureKind::ChildFailed);
    assert!(f.message.contains("(worker-3) failed: panicked at"), "{f}");
    assert!(f.message.contains("job 3 hit a corrupt record"), "{f}");
    let mut out = lines(&r.stdout);
    out.sort();
    assert_eq!(
        out,
        [
            "supervisor: cancelled, because a worker failed",
            "worker 1: cancelled, cleaning up",
            "worker 2: cancelled, cleaning up",
            "worker 4: cancelled, cleaning up"
        ]
    );

    let r = run_with(&runtime(2), "supervisor", &["restart"], RunOptions::new());
    assert_eq!(r.status, ExitStatus::Exited(0));
    assert!(r.stdout.contains("supervisor: worker 3 failed"), "{}", r.stdout);
    assert!(
        r.stdout.ends_with("worker 3: done\nsupervisor: total 100\n"),
        "{}",
        r.stdout
    );
}

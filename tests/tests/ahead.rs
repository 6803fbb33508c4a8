//! Instances made ahead of need and stores dropped off the critical path (issue
//! 28, lever 3): a spawn may start in a fresh instance an idle worker made, and an
//! ended microthread's store may be dropped by an idle worker; neither changes
//! what a guest sees (the `ahead` guest).

use weft::{ExitStatus, RunOptions, RunStats, Runtime};

mod common;
use common::{eventually, run_on, runtime, start};

/// Run the guest's `fresh` mode (`rounds` rounds, 20 ms apart) on `runtime` with
/// `options`: it exits 0 and prints that every child was fresh. Its counters.
fn fresh_rounds(runtime: &Runtime, rounds: u64, options: RunOptions) -> RunStats {
    let (run, out) = start(runtime, "ahead", &["fresh", &rounds.to_string(), "20"], options);
    eventually("the run has finished", || run.is_finished());
    let stats = run.stats();
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    assert_eq!(out.to_string_lossy(), format!("fresh {rounds}\n"));
    stats
}

#[test]
fn spawns_start_in_instances_made_ahead_and_every_one_is_fresh() {
    // One worker: while `main` sleeps it has nothing to run, and makes instances
    // for the next spawns. Every round after the first starts in one.
    let rounds = 12;
    let stats = fresh_rounds(&runtime(1), rounds, RunOptions::new());
    assert_eq!(
        stats.started_prepared,
        rounds - 1,
        "every spawn after the first started in an instance made ahead: {stats:?}"
    );
    assert_eq!(stats.spawned, rounds + 1, "main and a child a round");
}

#[test]
fn a_deterministic_run_makes_no_instances_ahead() {
    let stats = fresh_rounds(&runtime(1), 4, RunOptions::new().deterministic(7));
    assert_eq!(stats.started_prepared, 0, "{stats:?}");
}

#[test]
fn a_runtime_told_not_to_makes_no_instances_ahead() {
    let rt = Runtime::builder()
        .workers(1)
        .ahead_of_need(false)
        .cache_dir(Some(weft_tests::cache_dir()))
        .build()
        .expect("a runtime");
    let stats = fresh_rounds(&rt, 4, RunOptions::new());
    assert_eq!(stats.started_prepared, 0, "{stats:?}");
}

#[test]
fn a_joined_child_has_let_go_of_its_senders_though_its_store_is_dropped_later() {
    for workers in [1, 2] {
        let r = run_on(&runtime(workers), "ahead", &["released", "200"]);
        assert_eq!(
            r.status,
            ExitStatus::Exited(0),
            "{workers} worker(s): {}",
            r.stderr
        );
        assert_eq!(r.stdout, "released 200\n");
    }
}

#[test]
fn stores_waiting_to_be_dropped_never_take_a_live_microthread_s_slot() {
    // A runtime of 8 live microthreads at most: `main` and 7 children, round after
    // round, while the last round's stores may still wait for an idle worker.
    for workers in [1, 2] {
        let rt = Runtime::builder()
            .workers(workers)
            .max_microthreads(8)
            .cache_dir(Some(weft_tests::cache_dir()))
            .build()
            .expect("a runtime");
        let r = run_on(&rt, "ahead", &["full", "7", "40"]);
        assert_eq!(
            r.status,
            ExitStatus::Exited(0),
            "{workers} worker(s): {}",
            r.stderr
        );
        assert_eq!(r.stdout, "full 40\n");
    }
}

//! Supervisors through a real guest (`supervision`): each strategy (which siblings
//! restart, in which order), each restart type, the intensity exceeded (the
//! failure's kind and message) and escalation through two levels, shutdown in
//! reverse order with nested supervisors, a child ignoring its cancellation past
//! its shutdown time, `which_children`, the `restarts` count in
//! `RunHandle::stats()`, a crash loop replayed under a seed, and a cancelled tree
//! (by the end of the run, or by its handle) stopping in reverse start order within
//! its supervisor's grace. On one worker and on two.

use std::time::Duration;

use weft::{ExitStatus, OutputBuffer, RunOptions};
use weft_tests::guest;

mod common;
use common::{eventually, runtime, start};

/// How a run of mode `mode` went: its status, stdout, and the restarts counted.
struct Ran {
    status: ExitStatus,
    out: String,
    restarts: u64,
}

/// Run mode `mode` on `workers` workers with `options`.
fn run_with(workers: usize, mode: &str, options: RunOptions) -> Ran {
    let program = runtime(workers).load(guest("supervision")).unwrap();
    let (out, err) = (OutputBuffer::new(), OutputBuffer::new());
    let options = options
        .args([mode])
        .stdout(out.clone())
        .stderr(err.clone())
        // A hang guard only: every mode ends long before.
        .deadline(Duration::from_secs(120));
    let mut run = program.start(&options).unwrap();
    // Awaited by reference: the handle keeps the run, whose counters are read
    // once it has ended.
    let status = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(&mut run);
    let (out, err) = (out.to_string_lossy(), err.to_string_lossy());
    eprintln!("{mode} on {workers}: {status:?}\n{out}{err}");
    Ran {
        status,
        out,
        restarts: run.stats().restarts,
    }
}

/// Run `mode` on 1 and on 2 workers: it exits with 0, prints exactly `want` and
/// counts `restarts` restarts.
fn expect_with(mode: &str, options: impl Fn() -> RunOptions, want: &[&str], restarts: u64) {
    for workers in [1, 2] {
        let ran = run_with(workers, mode, options());
        assert_eq!(ran.status, ExitStatus::Exited(0), "{mode} on {workers}");
        assert_eq!(ran.out.lines().collect::<Vec<_>>(), want, "{mode} on {workers}");
        assert_eq!(ran.restarts, restarts, "{mode} on {workers}: RunStats::restarts");
    }
}

fn expect(mode: &str, want: &[&str], restarts: u64) {
    expect_with(mode, RunOptions::new, want, restarts);
}

/// Where the guest's `crasher` panics, as its panic message says.
fn crasher_at() -> String {
    let source = include_str!("../guests/src/bin/supervision.rs");
    let line = source
        .lines()
        .position(|l| l.contains("panic!(\"{what} crashes at once\")"))
        .expect("the guest has its crasher");
    format!("tests/guests/src/bin/supervision.rs:{}:5", line + 1)
}

/// [`expect`], with `AT` in `want` standing for where the crasher panics.
fn expect_at_crasher(mode: &str, want: &[&str], restarts: u64) {
    let at = crasher_at();
    let want: Vec<String> = want.iter().map(|l| l.replace("AT", &at)).collect();
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    expect(mode, &want, restarts);
}

#[test]
fn one_for_one_restarts_only_the_child_that_failed() {
    expect(
        "one-for-one",
        &[
            "started: a b c",
            "restarted: b",
            "child a Running restarts 0 id of its latest start: true",
            "child b Running restarts 1 id of its latest start: true",
            "child c Running restarts 0 id of its latest start: true",
            "stopped c",
            "stopped b",
            "stopped a",
            "joined: Ok(())",
        ],
        1,
    );
}

#[test]
fn one_for_all_stops_the_others_in_reverse_and_restarts_all_in_order() {
    expect(
        "one-for-all",
        &[
            "started: a b c",
            "stopped c",
            "stopped a",
            "restarted: a b c",
            "child a Running restarts 1 id of its latest start: true",
            "child b Running restarts 1 id of its latest start: true",
            "child c Running restarts 1 id of its latest start: true",
            "stopped c",
            "stopped b",
            "stopped a",
            "joined: Ok(())",
        ],
        3,
    );
}

#[test]
fn rest_for_one_restarts_the_child_and_those_started_after_it() {
    expect(
        "rest-for-one",
        &[
            "started: a b c",
            "stopped c",
            "restarted: b c",
            "child a Running restarts 0 id of its latest start: true",
            "child b Running restarts 1 id of its latest start: true",
            "child c Running restarts 1 id of its latest start: true",
            "stopped c",
            "stopped b",
            "stopped a",
            "joined: Ok(())",
        ],
        2,
    );
}

#[test]
fn restart_types_permanent_transient_temporary_and_which_children_of_ended_ones() {
    expect(
        "restart-types",
        &[
            "started: t m",
            "t returns",
            "first joined: Ok(())",
            "started: p t",
            "p returns",
            "restarted: t p p",
            "child p Running restarts 2 id of its latest start: true",
            "child t Running restarts 1 id of its latest start: true",
            "stopped t",
            "stopped p",
            "second joined: Ok(())",
            "started: t m k",
            "t returns",
            "child t Finished restarts 0 id of its latest start: true",
            "child m Failed restarts 0 id of its latest start: true",
            "child k Running restarts 0 id of its latest start: true",
            "stopped k",
            "third joined: Ok(())",
        ],
        3,
    );
}

#[test]
fn past_its_intensity_a_supervisor_fails_naming_the_child_and_its_failures() {
    expect_at_crasher(
        "intensity",
        &[
            "failed RestartIntensity (true)",
            "supervisor sup gave up: child crasher needed more than 2 restarts within 60s; the recent ends:",
            "  child crasher (microthread 2) panicked: panicked at AT: crasher crashes at once",
            "  child crasher (microthread 3) panicked: panicked at AT: crasher crashes at once",
            "  child crasher (microthread 4) panicked: panicked at AT: crasher crashes at once",
        ],
        2,
    );
}

#[test]
fn a_long_account_of_failures_is_cut_at_the_panic_message_limit() {
    // 101 failures of some 300 bytes each: far over the limit.
    let max = weft::limits::MAX_PANIC_MESSAGE + weft::limits::TRUNCATED.len();
    let bytes = format!("message bytes: {max}");
    expect(
        "long-account",
        &["failed RestartIntensity", &bytes, "cut: true"],
        100,
    );
}

#[test]
fn a_child_the_host_refuses_to_spawn_ends_each_time_until_the_supervisor_gives_up() {
    expect_with(
        "unstartable",
        || RunOptions::new().max_microthreads(2),
        &[
            "failed RestartIntensity",
            "supervisor sup gave up: child never needed more than 1000 restarts within 3600s; the recent ends:",
            "  child never (microthread none) could not be restarted: cannot spawn: the program already \
             has its maximum of 2 live microthreads (or the host, all programs together)",
            "cut: true",
        ],
        // It never ran: no restart of it is counted.
        0,
    );
}

#[test]
fn an_exceeded_intensity_escalates_through_two_levels() {
    expect_at_crasher(
        "escalation",
        &[
            "failed RestartIntensity (true)",
            "supervisor top gave up: child middle needed more than 1 restarts within 60s; the recent ends:",
            "  child middle (microthread 2) gave up: supervisor middle gave up: child crasher needed \
             more than 1 restarts within 60s; the recent ends:",
            "    child crasher (microthread 3) panicked: panicked at AT: crasher crashes at once",
            "    child crasher (microthread 4) panicked: panicked at AT: crasher crashes at once",
            "  child middle (microthread 5) gave up: supervisor middle gave up: child crasher needed \
             more than 1 restarts within 60s; the recent ends:",
            "    child crasher (microthread 6) panicked: panicked at AT: crasher crashes at once",
            "    child crasher (microthread 7) panicked: panicked at AT: crasher crashes at once",
        ],
        3,
    );
}

#[test]
fn shutdown_stops_children_in_reverse_order_and_a_stubborn_one_past_its_time() {
    // The run's own grace is an hour: only the child's shutdown time (50 ms) can
    // stop the stubborn child before the hang guard.
    expect_with(
        "shutdown",
        || RunOptions::new().cancel_grace(Duration::from_secs(3600)),
        &[
            "started: a b c s",
            "s ignores the cancellation",
            // The nested supervisor stops its children first, in reverse order.
            "stopped c",
            "stopped b",
            "stopped a",
            "down: Finished",
            "which_children: Err(Finished)",
            "joined: Ok(())",
        ],
        0,
    );
}

#[test]
fn a_supervised_crash_loop_replays_identically_under_a_seed() {
    for seed in [1, 7, 42] {
        let first = run_with(2, "crash-loop", RunOptions::new().deterministic(seed));
        assert_eq!(first.status, ExitStatus::Exited(0), "seed {seed}");
        assert!(
            first.out.contains("failed RestartIntensity (true)"),
            "seed {seed}: {}",
            first.out
        );
        assert_eq!(
            first.restarts, 12,
            "seed {seed}: 4 rounds of one-for-all restarts of 3"
        );
        for workers in [1, 2] {
            let again = run_with(workers, "crash-loop", RunOptions::new().deterministic(seed));
            assert_eq!(again.status, first.status, "seed {seed} on {workers}");
            assert_eq!(again.out, first.out, "seed {seed} on {workers}");
            assert_eq!(again.restarts, first.restarts, "seed {seed} on {workers}");
        }
    }
}

#[test]
fn the_end_of_the_run_stops_a_tree_in_reverse_start_order_nested_ones_included() {
    for workers in [1, 2] {
        let (mut run, out) = start(
            &runtime(workers),
            "supervision",
            &["cancelled-run"],
            RunOptions::new(),
        );
        eventually("the tree has started", || {
            out.to_string_lossy().contains("started:")
        });
        // As Ctrl-C does (`weft run` ends the run so on SIGINT).
        run.cancel();
        let status = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(&mut run);
        let out = out.to_string_lossy();
        assert_eq!(status, ExitStatus::Cancelled, "on {workers}: {out}");
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            [
                "started: a b c d",
                // `outer` stops d, then `inner` (which stops c, then b), then a.
                "stopped d",
                "stopped c",
                "stopped b",
                "stopped a",
            ],
            "on {workers}"
        );
        assert_eq!(run.stats().restarts, 0, "on {workers}: nothing restarted");
    }
}

#[test]
fn cancelling_a_supervisor_by_its_handle_stops_its_tree_in_reverse_order_first() {
    expect_with(
        "cancel-supervisor",
        RunOptions::new,
        &[
            "started: a b c d",
            "stopped d",
            "stopped c",
            "stopped b",
            "stopped a",
            "joined: Cancelled",
        ],
        0,
    );
}

#[test]
fn a_cancelled_supervisor_held_up_by_a_stubborn_child_is_stopped_with_its_tree_at_its_grace() {
    // The child's shutdown time is an hour: only the supervisor's grace (the run's
    // cancel grace, 200 ms) ends its shutdown.
    expect_with(
        "stubborn-under-cancel",
        || RunOptions::new().cancel_grace(Duration::from_millis(200)),
        &[
            "started: a s",
            "s ignores the cancellation",
            "joined: Cancelled",
            "down a: Cancelled",
            "down s: Cancelled",
        ],
        0,
    );
}

#[test]
fn a_microthread_that_owns_its_shutdown_gets_one_notice_and_stops_its_children_itself() {
    expect_with(
        "own-shutdown",
        RunOptions::new,
        &[
            "owner started: x y z",
            // One call fails with the cancellation; later ones work.
            "owner: Err(Cancelled), is_cancelled: true",
            "owner: a sleep after the notice: Ok(())",
            // Its children were not cancelled with it: it stops them, z first.
            "stopped z",
            "owner: joined a child: Cancelled",
            "stopped y",
            "owner: joined a child: Cancelled",
            "stopped x",
            "owner: joined a child: Cancelled",
            "joined: Cancelled",
        ],
        0,
    );
}

//! A run is a handle the application owns: wait, poll as a future, cancel, drop,
//! deadlines, fuel budgets, the run's own limits, limits shared by every run of a
//! runtime, and dropping runtimes wherever. Real guests, the real host.

use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use weft::{Error, ExitStatus, OutputBuffer, Preemption, RunHandle, RunOptions, Runtime};
use weft_tests::guest;

mod common;
use common::{eventually, run_on};

fn builder() -> weft::RuntimeBuilder {
    Runtime::builder()
        .max_microthreads(64)
        .workers(2)
        .cache_dir(Some(weft_tests::cache_dir()))
}

fn fuel() -> Runtime {
    builder().build().unwrap()
}

fn unmetered() -> Runtime {
    builder().preemption(Preemption::Off).build().unwrap()
}

/// Start `control` with `args`; its stdout is collected in the returned buffer.
fn start(rt: &Runtime, args: &[&str], options: RunOptions) -> (RunHandle, OutputBuffer) {
    common::start(rt, "control", args, options)
}

fn started(out: &OutputBuffer, line: &str) {
    eventually(&format!("the guest printed {line:?}"), || {
        out.to_string_lossy().contains(line)
    });
}

/// The smallest executor there is: poll on this thread, park between polls. The
/// handle needs nothing of tokio.
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

#[test]
fn start_returns_at_once_and_wait_gives_the_status() {
    let rt = fuel();
    let (run, out) = start(&rt, &["sleep", "300"], RunOptions::new());
    assert!(!run.is_finished(), "start does not wait for the program");
    assert_eq!(run.status(), None);
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    assert_eq!(out.to_string_lossy(), "slept\n");
}

#[test]
fn a_run_handle_is_a_future_that_any_executor_can_poll() {
    let rt = fuel();
    let (run, out) = start(&rt, &["sleep", "50"], RunOptions::new());
    assert_eq!(block_on(run), ExitStatus::Exited(0));
    assert_eq!(out.to_string_lossy(), "slept\n");
    // `run_async` is the same future.
    let program = rt.load(guest("control")).unwrap();
    let out = OutputBuffer::new();
    let status =
        block_on(program.run_async(&RunOptions::new().args(["burn", "1000"]).stdout(out.clone()))).unwrap();
    assert_eq!(status, ExitStatus::Exited(0));
    assert!(out.to_string_lossy().starts_with("burnt "));
}

/// A cancelled run ends as soon as its microthreads have stopped: the blocked ones
/// through the cancellation their blocking call returns (their cleanup runs), the
/// busy ones at their next fuel yield or epoch check. Neither waits for the shutdown
/// grace's enforcement: with a grace of an hour, the run still ends (the wait is
/// bounded only as a hang guard).
fn cancelled_promptly(rt: &Runtime, args: &[&str], ready: &str) -> String {
    let options = RunOptions::new().shutdown_grace(Duration::from_secs(3600));
    let (run, out) = start(rt, args, options);
    started(&out, ready);
    run.cancel();
    run.cancel(); // twice is once
    eventually(
        "the cancelled run ends before its grace period is enforced",
        || run.is_finished(),
    );
    assert_eq!(run.wait(), ExitStatus::Cancelled);
    eventually("every microthread of the run is gone", || {
        rt.live_microthreads() == 0
    });
    out.to_string_lossy()
}

#[test]
fn cancel_stops_a_blocked_program() {
    let out = cancelled_promptly(&fuel(), &["hold-tidy", "3", "60000"], "holding 3");
    // Each sleeper's sleep returned the cancellation and its cleanup ran: it was
    // not stopped where it was.
    assert_eq!(out.matches("tidied up\n").count(), 3, "{out}");
}

#[test]
fn cancel_stops_busy_loops_at_their_next_fuel_yield() {
    cancelled_promptly(&fuel(), &["spin", "3"], "spinning");
}

#[test]
fn cancel_stops_busy_loops_that_run_without_fuel() {
    // No fuel, no yields: on two workers, two of these spin forever unless the
    // epoch interruption stops them.
    cancelled_promptly(&unmetered(), &["spin", "3"], "spinning");
}

#[test]
fn a_child_born_into_a_cancelled_parent_is_stopped_after_its_grace() {
    // The grandchild ignores its cancellation forever: only the grace period's
    // enforcement stops it, and only then does its channel close (the deadline is a
    // hang guard).
    let options = RunOptions::new()
        .cancel_grace(Duration::from_millis(100))
        .deadline(Duration::from_secs(120));
    let (run, out) = start(&fuel(), &["born-cancelled"], options);
    assert_eq!(run.wait(), ExitStatus::Exited(0), "{}", out.to_string_lossy());
    let text = out.to_string_lossy();
    assert!(
        text.contains("the parent: microthread 1 (cancelled_parent) failed: cancelled"),
        "{text}"
    );
    assert!(text.contains("the stubborn grandchild was stopped"), "{text}");
}

#[test]
fn an_exit_from_main_ends_the_run_at_once() {
    for rt in [fuel(), unmetered()] {
        let (run, out) = start(&rt, &["exit-main"], RunOptions::new());
        assert_eq!(run.wait(), ExitStatus::Exited(5));
        // The detached microthread was stopped where it was: no cleanup ran.
        assert_eq!(out.to_string_lossy(), "main exits\n");
    }
}

#[test]
fn a_deterministic_run_takes_its_grace_periods_on_virtual_time() {
    // Both cleanups run longer than their grace: where they are cut depends on
    // virtual time only, so two runs print the same bytes.
    let rt = fuel();
    let once = || {
        let options = RunOptions::new()
            .deterministic(7)
            .cancel_grace(Duration::from_millis(2))
            .shutdown_grace(Duration::from_millis(2));
        let (run, out) = start(&rt, &["slow-cleanup"], options);
        assert_eq!(run.wait(), ExitStatus::Exited(0), "{}", out.to_string_lossy());
        out.to_string_lossy()
    };
    let first = once();
    for who in ["child", "detached"] {
        assert!(first.contains(&format!("{who} cleanup step 0:")), "{first}");
        assert!(!first.contains(&format!("{who} cleanup finished")), "{first}");
    }
    assert!(
        first.contains("joined the child: microthread 1 (slow_cleanup) failed: cancelled"),
        "{first}"
    );
    assert_eq!(once(), first, "the same seed, the same bytes");
}

#[test]
fn dropping_a_run_handle_cancels_its_run() {
    for (rt, args, ready) in [
        (fuel(), &["hold", "2", "60000"][..], "holding 2"),
        (fuel(), &["spin", "2"][..], "spinning"),
        (unmetered(), &["spin", "2"][..], "spinning"),
    ] {
        let (run, out) = start(&rt, args, RunOptions::new());
        started(&out, ready);
        assert!(rt.live_microthreads() >= 2);
        drop(run);
        eventually(
            &format!("the run of {args:?} ends once its handle is dropped"),
            || rt.live_microthreads() == 0,
        );
    }
}

#[test]
fn cancelling_a_finished_run_does_nothing() {
    let rt = fuel();
    let (run, _) = start(&rt, &["burn", "10"], RunOptions::new());
    eventually("the run ends", || run.is_finished());
    run.cancel();
    assert_eq!(run.status(), Some(ExitStatus::Exited(0)));
    assert_eq!(run.wait(), ExitStatus::Exited(0));
}

#[test]
fn a_deadline_ends_the_run() {
    let options = || RunOptions::new().deadline(Duration::from_millis(200));
    let (run, out) = start(&fuel(), &["sleep", "60000"], options());
    assert_eq!(run.wait(), ExitStatus::DeadlineExceeded);
    // The sleep failed with the cancellation, and main's own code said so.
    assert_eq!(out.to_string_lossy(), "this microthread was cancelled\n");
    // Without fuel, with every worker busy in a loop that never yields.
    let rt = unmetered();
    let (run, _) = start(&rt, &["spin", "3"], options());
    assert_eq!(run.wait(), ExitStatus::DeadlineExceeded);
    eventually("the spinning microthreads are gone", || {
        rt.live_microthreads() == 0
    });
    assert_eq!(ExitStatus::DeadlineExceeded.code(), 124);
    // A run that ends in time is not affected.
    let (run, _) = start(&fuel(), &["sleep", "1"], options());
    assert_eq!(run.wait(), ExitStatus::Exited(0));
}

#[test]
fn a_zero_deadline_ends_the_run_before_it_runs() {
    let (run, out) = start(
        &fuel(),
        &["burn", "10"],
        RunOptions::new().deadline(Duration::ZERO),
    );
    assert_eq!(run.wait(), ExitStatus::DeadlineExceeded);
    assert_eq!(out.to_string_lossy(), "", "main never ran");
}

#[test]
fn a_fuel_budget_per_microthread_stops_a_runaway_alone() {
    let rt = fuel();
    let budget = || RunOptions::new().fuel_budget_per_microthread(2_000_000);
    let (run, _) = start(&rt, &["burn", "1000000000"], budget());
    let ExitStatus::Failed(f) = run.wait() else {
        panic!("main should fail")
    };
    assert_eq!(f.kind, weft::FailureKind::FuelExhausted);
    assert!(
        f.message
            .starts_with("fuel budget exhausted: it used all of its 2000000 units"),
        "{f}"
    );
    assert!(f.message.contains("wasm backtrace"), "{f}");
    // In children: each fails alone, and the joiner sees why.
    let (run, out) = start(&rt, &["burn-children", "3", "1000000000"], budget());
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    assert_eq!(out.to_string_lossy().matches("fuel budget exhausted").count(), 3);
    // Within the budget, nothing happens.
    let (run, out) = start(&rt, &["burn-children", "3", "1000"], budget());
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    assert_eq!(out.to_string_lossy().matches("joined ").count(), 3);
}

#[test]
fn a_fuel_budget_for_the_run_stops_all_of_it() {
    let rt = fuel();
    // Four children that would burn about 4 × 10^9 units between them.
    let (run, _) = start(
        &rt,
        &["burn-children", "4", "1000000000"],
        RunOptions::new().fuel_budget(50_000_000),
    );
    let ExitStatus::Failed(f) = run.wait() else {
        panic!("the run should fail")
    };
    assert!(
        f.message
            .starts_with("fuel budget exhausted: the run used all of its 50000000 units"),
        "{f}"
    );
    eventually("the run's microthreads are gone", || rt.live_microthreads() == 0);
    let (run, _) = start(
        &rt,
        &["burn-children", "4", "1000"],
        RunOptions::new().fuel_budget(50_000_000),
    );
    assert_eq!(run.wait(), ExitStatus::Exited(0));
}

#[test]
fn run_options_are_checked_against_the_runtime() {
    let program = fuel().load(guest("control")).unwrap();
    let refused = |options: RunOptions| match program.start(&options) {
        Err(Error::InvalidOptions(why)) => why,
        other => panic!("{other:?}"),
    };
    assert!(refused(RunOptions::new().max_microthreads(65)).contains("over the runtime's limit of 64"));
    assert!(refused(RunOptions::new().max_microthreads(0)).contains("at least 1"));
    assert!(refused(RunOptions::new().max_memory(1 << 40)).contains("max_memory"));
    assert!(refused(RunOptions::new().max_memory(1024)).contains("one wasm page"));
    let unmetered = unmetered().load(guest("control")).unwrap();
    match unmetered.start(&RunOptions::new().fuel_budget(1)) {
        Err(Error::InvalidOptions(why)) => assert!(why.contains("meters fuel"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_runs_own_limits_hold_for_that_run() {
    let rt = fuel();
    let run = |args: &[&str], options: RunOptions| {
        let (run, out) = start_program(&rt, "limits", args, options);
        assert_eq!(run.wait(), ExitStatus::Exited(0));
        out.to_string_lossy()
    };
    let out = run(&["spawn-past-max"], RunOptions::new().max_microthreads(4));
    assert!(out.contains("spawned 3 then: cannot spawn"), "{out}");
    let out = run(&["grow", "64"], RunOptions::new().max_memory(16 << 20));
    assert!(out.contains("grow 64 MiB: refused"), "{out}");
    let out = run(&["grow", "4"], RunOptions::new().max_memory(16 << 20));
    assert!(out.contains("grow 4 MiB: granted"), "{out}");
    let out = run(
        &["big-argument", "5000"],
        RunOptions::new().max_message_size(1024),
    );
    assert!(out.contains("over the message size limit of 1024 bytes"), "{out}");
    // The next run of the same program on the same runtime has the runtime's.
    let out = run(&["grow", "64"], RunOptions::new());
    assert!(out.contains("grow 64 MiB: granted"), "{out}");
}

fn start_program(rt: &Runtime, name: &str, args: &[&str], options: RunOptions) -> (RunHandle, OutputBuffer) {
    let program = rt.load(guest(name)).unwrap();
    let out = OutputBuffer::new();
    (
        program
            .start(&options.args(args.iter().copied()).stdout(out.clone()))
            .unwrap(),
        out,
    )
}

#[test]
fn two_programs_share_the_runtimes_microthread_limit() {
    let rt = builder().max_microthreads(10).build().unwrap();
    // The first holds 6 (main and 5 sleepers) ...
    let (first, out) = start(&rt, &["hold", "5", "60000"], RunOptions::new());
    started(&out, "holding 5");
    assert_eq!(rt.live_microthreads(), 6);
    // ... so the second gets 4: its main and 3 children, then a clean refusal, never
    // a failure to instantiate.
    let r = run_on(&rt, "limits", &["spawn-past-max"]);
    assert_eq!(r.status, ExitStatus::Exited(0), "{}", r.stderr);
    assert!(
        r.stdout
            .contains("spawned 3 then: cannot spawn: the program already has its maximum of 10"),
        "{}",
        r.stdout
    );
    drop(first);
    eventually("the first run is gone", || rt.live_microthreads() == 0);
    // With the first gone, the second gets all 10.
    let r = run_on(&rt, "limits", &["spawn-past-max"]);
    assert!(r.stdout.contains("spawned 9 then"), "{}", r.stdout);
}

#[test]
fn a_run_cannot_start_when_the_runtime_is_full() {
    let rt = builder().max_microthreads(3).build().unwrap();
    let (first, out) = start(&rt, &["hold", "2", "60000"], RunOptions::new());
    started(&out, "holding 2");
    let program = rt.load(guest("control")).unwrap();
    match program.start(&RunOptions::new().args(["sleep", "1"])) {
        Err(e @ Error::LimitReached { max: 3 }) => {
            assert!(e.to_string().contains("maximum of 3 live microthreads"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    first.cancel();
    assert_eq!(first.wait(), ExitStatus::Cancelled);
    eventually("the first run is gone", || rt.live_microthreads() == 0);
    let options = RunOptions::new().args(["sleep", "1"]).stdout(OutputBuffer::new());
    assert_eq!(program.run(&options).unwrap(), ExitStatus::Exited(0));
}

#[test]
fn channels_cannot_buffer_past_the_runs_budget() {
    let rt = fuel();
    let budget = 256 << 10;
    let (run, out) = start(
        &rt,
        &["fill", "4000"],
        RunOptions::new().max_buffered_bytes(budget),
    );
    started(&out, "accepted");
    // The guest is now blocked in a send that waits for room: what the host holds
    // buffered is within the budget.
    assert!(
        run.buffered_bytes() <= budget,
        "{} > {budget}",
        run.buffered_bytes()
    );
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    let text = out.to_string_lossy();
    let per = 4000 + weft::limits::MESSAGE_OVERHEAD;
    let fits = budget / per;
    assert!(
        text.contains(&format!("accepted {fits} messages of 4000 bytes")),
        "{text}"
    );
    assert!(
        text.contains("sent after waiting; the child drained 4000 bytes"),
        "{text}"
    );
}

#[test]
fn the_number_of_open_channels_is_bounded() {
    let rt = fuel();
    let (run, out) = start(&rt, &["channels"], RunOptions::new().max_channels(25));
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    assert_eq!(
        out.to_string_lossy().trim(),
        "opened 25 then: cannot open a channel: the program already has its maximum of 25 open channels"
    );
}

#[test]
fn a_microthread_holds_more_handles_than_wasmtimes_default_and_the_limit_is_named() {
    let rt = fuel();
    // 60,000 channels: 120,000 ends held at once, past wasmtime's own 100,000.
    let (run, out) = start(&rt, &["channels"], RunOptions::new().max_channels(60_000));
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    assert!(
        out.to_string_lossy()
            .starts_with("opened 60000 then: cannot open a channel"),
        "{}",
        out.to_string_lossy()
    );
    // Past the run's own limit: a failure that names it.
    let (run, _out) = start(
        &rt,
        &["channels"],
        RunOptions::new().max_channels(60_000).max_handles(1000),
    );
    match run.wait() {
        ExitStatus::Failed(f) => {
            assert!(
                f.message
                    .contains("as a microthread may, 1000; raise it with RunOptions::max_handles"),
                "{f}"
            );
        }
        other => panic!("{other:?}"),
    }
    match fuel()
        .load(weft_tests::guest("control"))
        .unwrap()
        .start(&RunOptions::new().max_handles(0))
    {
        Err(weft::Error::InvalidOptions(why)) => assert!(why.contains("max_handles"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_refused_spawn_gives_the_endpoints_in_its_argument_back() {
    let rt = fuel();
    // Refused for its size: the sender inside comes back, is dropped, and the
    // receiver sees the channel close (instead of waiting forever).
    let (run, out) = start(
        &rt,
        &["refused-spawn", "5000"],
        RunOptions::new().max_message_size(1024),
    );
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    let text = out.to_string_lossy();
    assert!(
        text.contains("refused: cannot spawn: the argument is over"),
        "{text}"
    );
    assert!(text.contains("the channel closed"), "{text}");
    // Refused for want of room.
    let (run, out) = start(
        &rt,
        &["refused-spawn", "10"],
        RunOptions::new().max_microthreads(1),
    );
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    let text = out.to_string_lossy();
    assert!(
        text.contains("refused: cannot spawn: the program already has its maximum of 1"),
        "{text}"
    );
    assert!(text.contains("the channel closed"), "{text}");
}

#[test]
fn dropping_the_program_and_runtime_while_a_run_goes_on() {
    // The handle keeps its program and runtime: the run goes on without them.
    let rt = fuel();
    let (run, out) = start(&rt, &["sleep", "200"], RunOptions::new());
    drop(rt);
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    assert_eq!(out.to_string_lossy(), "slept\n");
    // Dropping everything, the handle last, while it blocks and while it spins
    // without fuel: each drop returns, and nothing is left running.
    for (rt, args) in [
        (fuel(), &["hold", "2", "60000"][..]),
        (unmetered(), &["spin", "2"][..]),
    ] {
        let (run, out) = start(&rt, args, RunOptions::new());
        started(&out, if args[0] == "hold" { "holding" } else { "spinning" });
        drop(rt);
        drop(run);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_made_and_dropped_inside_tokio_main() {
    let rt = fuel();
    let program = rt.load(guest("control")).unwrap();
    let status = program
        .run_async(&RunOptions::new().args(["burn", "10"]).stdout(OutputBuffer::new()))
        .await
        .unwrap();
    assert_eq!(status, ExitStatus::Exited(0));
    // Dropped in an async context while a run still spins on it.
    let (run, out) = start(&rt, &["spin", "1"], RunOptions::new());
    while !out.to_string_lossy().contains("spinning") {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(program);
    drop(rt);
    drop(run);
}

#[tokio::test(flavor = "current_thread")]
async fn a_runtime_dropped_inside_a_current_thread_runtime() {
    let rt = unmetered();
    let (run, out) = start(&rt, &["spin"], RunOptions::new());
    while !out.to_string_lossy().contains("spinning") {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(rt);
    run.cancel();
    assert_eq!(run.await, ExitStatus::Cancelled);
}

#[test]
fn dropping_the_future_of_run_async_cancels_the_run() {
    let rt = fuel();
    let program = rt.load(guest("control")).unwrap();
    let out = OutputBuffer::new();
    let options = RunOptions::new().args(["hold", "2", "60000"]).stdout(out.clone());
    let mut fut = Box::pin(program.run_async(&options));
    let waker = Waker::noop();
    assert!(fut.as_mut().poll(&mut Context::from_waker(waker)).is_pending());
    started(&out, "holding 2");
    drop(fut);
    eventually("the run ends once its future is dropped", || {
        rt.live_microthreads() == 0
    });
}

//! Channels, select, generate, parallel_map and deadlock reports, through real
//! guests built from source and run by the host.

use std::time::Duration;

use weft::{ExitStatus, MicrothreadState, OutputBuffer, RunOptions, Runtime, RuntimeBuilder};

mod common;
use common::{eventually, run_on, start};

fn small() -> RuntimeBuilder {
    Runtime::builder()
        .max_microthreads(600)
        .cache_dir(Some(weft_tests::cache_dir()))
}
/// Run a case of the `channels` guest on 1 and on 2 workers; it asserts inside.
fn case(name: &str) -> String {
    let mut last = String::new();
    for workers in [1, 2] {
        let rt = small().workers(workers).build().unwrap();
        let r = run_on(&rt, "channels", &[name]);
        assert_eq!(
            r.status,
            ExitStatus::Exited(0),
            "case {name} on {workers} workers:\nstdout: {}\nstderr: {}",
            r.stdout,
            r.stderr
        );
        assert!(r.stdout.contains(&format!("{name} ok")), "{}", r.stdout);
        last = r.stdout;
    }
    last
}

#[test]
fn rendezvous_waits_for_the_receiver() {
    case("rendezvous");
}

#[test]
fn buffered_holds_exactly_capacity() {
    case("buffered");
}

#[test]
fn receivers_drain_then_see_closed_when_senders_drop() {
    case("close-on-drop");
}

#[test]
fn a_senders_microthread_ending_closes_the_channel() {
    case("close-on-end");
}

#[test]
fn a_senders_microthread_trapping_delivers_its_failure() {
    let out = case("close-on-trap");
    assert!(
        out.contains("failure: microthread 1 (send_one_and_panic) failed: panicked at"),
        "{out}"
    );
}

#[test]
fn send_without_receivers_fails_at_once_with_the_message() {
    case("no-receiver");
}

#[test]
fn select_is_fair_among_ready_channels() {
    case("select-fair");
}

#[test]
fn select_is_fair_among_three_and_more_operations() {
    case("select-fair-4");
}

#[test]
fn select_sends_and_try_wait() {
    case("select-send");
}

#[test]
fn timeouts_fire() {
    case("timeouts");
}

#[test]
fn small_and_large_messages_travel_every_path() {
    case("message-sizes");
}

#[test]
fn a_channel_of_channels_works() {
    case("channel-of-channels");
}

#[test]
fn endpoints_move_at_spawn_and_receivers_iterate() {
    case("iterator");
}

#[test]
fn generate_propagates_the_producers_failure() {
    case("generate-failure");
    // Iterating a failed stream is not a quiet end: the reader fails, with the cause.
    let rt = small().workers(1).build().unwrap();
    let r = run_on(&rt, "channels", &["generate-iter-failure"]);
    let ExitStatus::Failed(f) = &r.status else {
        panic!("{:?} {}", r.status, r.stdout)
    };
    assert!(
        f.message.contains("the producer failed") && f.message.contains("producer boom"),
        "{f}"
    );
    assert!(!r.stdout.contains("unreachable"));
}

#[test]
fn parallel_map_keeps_order_and_returns_the_failure() {
    case("parallel-map");
}

#[test]
fn limits_on_message_size_and_capacity() {
    let rt = small().workers(1).max_message_size(1024).build().unwrap();
    let r = run_on(&rt, "channels", &["too-large"]);
    assert_eq!(r.status, ExitStatus::Exited(0), "{} {}", r.stdout, r.stderr);
    let rt = small().workers(1).max_channel_capacity(1000).build().unwrap();
    let r = run_on(&rt, "channels", &["capacity-too-large"]);
    let ExitStatus::Failed(f) = &r.status else {
        panic!("{:?}", r.status)
    };
    assert!(
        f.message
            .contains("channel capacity 1000000 is over the host's limit of 1000"),
        "{f}"
    );
}

#[test]
fn a_deadlock_is_reported_with_who_waits_on_what() {
    for workers in [1, 2] {
        let rt = small().workers(workers).build().unwrap();
        let r = run_on(&rt, "deadlock", &[]);
        let ExitStatus::Deadlocked(report) = &r.status else {
            panic!("{:?}", r.status)
        };
        assert_eq!(r.status.code(), 70);
        assert!(
            report.contains("microthread 0 (main): receiving on channel 2"),
            "{report}"
        );
        assert!(
            report.contains("microthread 1 (left): receiving on channel 1"),
            "{report}"
        );
        assert_eq!(report.lines().count(), 2, "{report}");
    }
}

#[test]
fn the_seeds_one_line_hang_is_reported() {
    let rt = small().workers(1).build().unwrap();
    let r = run_on(&rt, "deadlock", &["classic"]);
    let ExitStatus::Deadlocked(report) = &r.status else {
        panic!("{:?}", r.status)
    };
    assert_eq!(report.trim(), "microthread 0 (main): receiving on channel 1");
}

#[test]
fn ping_pong_bounces_the_counter() {
    for workers in [1, 2] {
        let rt = small().workers(workers).build().unwrap();
        let r = run_on(&rt, "ping-pong", &["2000"]);
        assert_eq!(r.status, ExitStatus::Exited(0), "{}", r.stderr);
        assert!(
            r.stdout
                .contains("2000 round trips, counter 2000, ponger saw 2000"),
            "{}",
            r.stdout
        );
    }
}

#[test]
fn pipeline_prints_the_first_primes() {
    let first_30 =
        "2 3 5 7 11 13 17 19 23 29 31 37 41 43 47 53 59 61 67 71 73 79 83 89 97 101 103 107 109 113";
    for workers in [1, 2] {
        let rt = small().workers(workers).build().unwrap();
        let r = run_on(&rt, "pipeline", &["30"]);
        assert_eq!(r.status, ExitStatus::Exited(0), "{}", r.stderr);
        assert_eq!(r.stdout.trim(), first_30);
    }
}

#[test]
fn thread_ring_ends_at_the_right_holder() {
    for (workers, hops, holder) in [(1, 10_000u64, 10_000 % 503 + 1), (2, 5_000, 5_000 % 503 + 1)] {
        let rt = small().workers(workers).build().unwrap();
        let r = run_on(&rt, "thread-ring", &[&hops.to_string()]);
        assert_eq!(r.status, ExitStatus::Exited(0), "{}", r.stderr);
        assert_eq!(r.stdout.trim(), holder.to_string());
    }
}

/// The id of the application's channel `id` as the live view shows it.
fn host_channel(id: u64) -> String {
    format!("host channel {}", id - (1 << 62))
}

#[test]
fn timers_whose_receivers_are_dropped_free_their_channels_at_once() {
    let rt = small().workers(2).build().unwrap();
    let (run, out) = start(
        &rt,
        "channels",
        &["timers-churn", "100000"],
        RunOptions::new().max_channels(4),
    );
    let status = run.wait();
    let text = out.to_string_lossy();
    assert_eq!(status, ExitStatus::Exited(0), "{text}");
    assert!(text.contains("100000 timers made and dropped"), "{text}");
    // Open at the end: the guest's one channel and the timer it holds, no more.
    assert!(
        text.contains(
            "then 2 more channels, then: cannot open a channel: the program already has its maximum of 4 open channels"
        ),
        "{text}"
    );
}

#[test]
fn a_ticker_of_period_zero_is_clamped_to_the_minimum_period() {
    let out = case("tick-zero");
    assert!(out.contains(" ticks"), "{out}");
    println!("tick-zero: {}", out.lines().next().unwrap_or_default());
}

#[test]
fn what_a_guest_buffers_in_an_applications_channel_counts_against_its_runs_budget() {
    let rt = small().workers(2).build().unwrap();
    let budget = 64 << 10;
    // The application's channel could hold a million values: the run's budget stops
    // the guest long before.
    let (sink_for_guest, sink) = weft::channel::<Vec<u8>>(1_000_000);
    let (stop, stop_for_guest) = weft::channel::<u8>(0);
    let stop_id = stop.channel_id();
    let options = RunOptions::new()
        .max_buffered_bytes(budget)
        .sender("sink", sink_for_guest)
        .receiver("stop", stop_for_guest);
    let (run, out) = start(&rt, "hostchan", &["flood", "1000"], options);
    eventually("the flood stops", || out.to_string_lossy().contains("flooded"));
    // A value of 1000 bytes is 1002 bytes on the wire (its length first).
    let cost = 1002 + weft::limits::MESSAGE_OVERHEAD;
    let fits = budget / cost;
    let text = out.to_string_lossy();
    assert_eq!(
        text.trim(),
        format!(
            "flooded {fits}, then: the channel is full, or the program's budget of buffered bytes is spent"
        )
    );
    assert_eq!(run.buffered_bytes(), fits * cost);
    // The live view names the application's channel the guest now waits on.
    eventually("main waits for `stop`", || {
        run.microthreads()
            .first()
            .is_some_and(|m| matches!(m.state, MicrothreadState::Receiving { .. }))
    });
    let state = run.microthreads()[0].state.to_string();
    assert_eq!(state, format!("receiving on {}", host_channel(stop_id)));
    assert!(
        run.view().table().contains(&host_channel(stop_id)),
        "{}",
        run.view().table()
    );
    // What the application receives leaves the run's budget.
    assert_eq!(sink.try_recv().unwrap(), vec![0u8; 1000]);
    assert_eq!(run.buffered_bytes(), (fits - 1) * cost);
    drop(stop);
    eventually("the run ends", || run.is_finished());
    assert_eq!(run.status(), Some(ExitStatus::Exited(0)));
    // The run has ended; what it sent is still there, and still counted.
    assert_eq!(run.buffered_bytes(), (fits - 1) * cost);
    for i in 1..fits {
        assert_eq!(sink.try_recv().unwrap(), vec![(i % 251) as u8; 1000]);
    }
    assert_eq!(run.buffered_bytes(), 0);
}

#[test]
fn a_select_over_two_runs_channels_with_equal_ids_receives_from_the_right_one() {
    let rt = small().workers(2).build().unwrap();
    // One application channel's ends in two runs: run A passes a receiver of its
    // channel 1 to run B, whose own first channel is 1 too.
    let (pass_tx, pass_rx) = weft::channel::<u8>(1);
    let (stop, stop_rx) = weft::channel::<u8>(0);
    let options_a = RunOptions::new()
        .sender("pass", pass_tx)
        .receiver("stop", stop_rx.clone());
    let options_b = RunOptions::new()
        .receiver("pass", pass_rx)
        .receiver("stop", stop_rx);
    let (a, out_a) = start(&rt, "hostchan", &["pass"], options_a);
    let (b, out_b) = start(&rt, "hostchan", &["collide"], options_b);
    eventually("B has selected twice", || {
        out_b.to_string_lossy().contains("collide ok") || b.is_finished()
    });
    drop(stop);
    assert_eq!(b.wait(), ExitStatus::Exited(0), "{}", out_b.to_string_lossy());
    assert_eq!(a.wait(), ExitStatus::Exited(0), "{}", out_a.to_string_lossy());
    assert_eq!(out_a.to_string_lossy().trim(), "passed channel 1");
    assert_eq!(
        out_b.to_string_lossy().trim(),
        "both channels have id 1\ncollide ok"
    );
}

#[test]
fn a_failure_handler_that_uses_the_channel_whose_end_it_is_told_about_does_not_deadlock() {
    let rt = small().workers(2).build().unwrap();
    let (results_for_guest, results) = weft::channel::<u64>(4);
    let (stop, stop_for_guest) = weft::channel::<u8>(0);
    // The handler sends on the very channel whose last receiver's drop reports the
    // failure (the send fails: that receiver is gone).
    let probe = results_for_guest.clone();
    let (report_tx, report_rx) = std::sync::mpsc::channel::<(String, String, Option<String>)>();
    let report_tx = std::sync::Mutex::new(report_tx);
    let options = RunOptions::new()
        .sender("results", results_for_guest)
        .receiver("stop", stop_for_guest)
        .on_failure(move |failure| {
            let sent = probe.try_send(99);
            let thread = std::thread::current().name().map(String::from);
            let report = (failure.to_string(), format!("{sent:?}"), thread);
            report_tx.lock().unwrap().send(report).expect("the test listens");
        });
    let (run, out) = start(&rt, "hostchan", &["failing-producer"], options);
    // The producer failed holding a sender: the channel holds its failure for the
    // application's receiver, so the handler has not been called yet.
    eventually("the producer has failed", || run.stats().failed == 1);
    assert_eq!(out.to_string_lossy().trim(), "detached");
    assert!(
        report_rx.try_recv().is_err(),
        "the failure waits for the receiver"
    );
    // Dropping the receiver discards the failure: the handler runs, on the
    // supervisor, not in the drop.
    let (dropped_tx, dropped_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(results);
        dropped_tx.send(()).expect("the test listens");
    });
    dropped_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("dropping the receiver deadlocked in the failure handler");
    let (failure, sent, thread) = report_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the handler was called");
    assert_eq!(thread.as_deref(), Some("weft-supervisor"));
    assert!(
        failure.contains("the producer fails while holding the host sender"),
        "{failure}"
    );
    assert!(sent.contains("receivers are all gone"), "{sent}");
    drop(stop);
    assert_eq!(run.wait(), ExitStatus::Exited(0));
}

#[test]
fn a_failure_handler_runs_on_the_supervisor_and_a_panic_in_it_stops_neither_the_run_nor_later_failures() {
    // One worker: the microthreads that fail after the handler's panic run on it.
    let rt = small().workers(1).build().unwrap();
    let (go, go_for_guest) = weft::channel::<u32>(0);
    let (seen_tx, seen_rx) = std::sync::mpsc::channel::<(String, Option<String>)>();
    let seen_tx = std::sync::Mutex::new(seen_tx);
    let err = OutputBuffer::new();
    let options = RunOptions::new()
        .receiver("go", go_for_guest)
        .stderr(err.clone())
        .on_failure(move |failure| {
            let thread = std::thread::current().name().map(String::from);
            let seen = (failure.message.clone(), thread);
            seen_tx.lock().unwrap().send(seen).expect("the test listens");
            if failure.message.contains("detached failure 1") {
                panic!("the handler cannot take failure 1");
            }
        });
    let (run, out) = start(&rt, "hostchan", &["failures"], options);
    for n in 1..=3 {
        go.send_blocking(n).expect("the guest receives");
        let (message, thread) = seen_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("failure {n} never reached the handler: {e}"));
        assert!(message.contains(&format!("detached failure {n}")), "{message}");
        assert_eq!(thread.as_deref(), Some("weft-supervisor"), "failure {n}");
    }
    drop(go);
    // Awaited by reference: the handle keeps the run, whose counters are read once
    // it has ended (a view would not keep it).
    let mut run = run;
    let status = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(&mut run);
    assert_eq!(status, ExitStatus::Exited(0), "{}", err.to_string_lossy());
    assert_eq!(out.to_string_lossy(), "failures done\n");
    assert_eq!(run.stats().failed, 3);
    assert!(seen_rx.try_recv().is_err(), "each failure is handed over once");
    // The panic is reported once, with the failure the handler did not take.
    let err = err.to_string_lossy();
    assert_eq!(err.matches("weft: ").count(), 1, "{err}");
    assert!(
        err.starts_with("weft: the failure handler panicked: the handler cannot take failure 1; the run goes on. It was given: detached microthread"),
        "{err}"
    );
    assert!(err.contains("detached failure 1"), "{err}");
    // The worker lives on: another run on it ends as it should.
    let (go, go_for_guest) = weft::channel::<u32>(0);
    drop(go);
    let (again, out) = start(
        &rt,
        "hostchan",
        &["failures"],
        RunOptions::new().receiver("go", go_for_guest),
    );
    assert_eq!(again.wait(), ExitStatus::Exited(0));
    assert_eq!(out.to_string_lossy(), "failures done\n");
}

#[test]
fn a_runs_end_is_published_only_once_the_failure_handler_has_seen_every_failure() {
    let rt = small().workers(2).build().unwrap();
    let (go, go_for_guest) = weft::channel::<u32>(0);
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let entered_tx = std::sync::Mutex::new(entered_tx);
    let release_rx = std::sync::Mutex::new(release_rx);
    let handled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handled_by_handler = handled.clone();
    let options = RunOptions::new()
        .receiver("go", go_for_guest)
        .on_failure(move |_| {
            entered_tx.lock().unwrap().send(()).expect("the test listens");
            // Held here until the test has seen the run's microthreads all gone.
            release_rx
                .lock()
                .unwrap()
                .recv()
                .expect("the test releases the handler");
            handled_by_handler.store(true, std::sync::atomic::Ordering::SeqCst);
        });
    let (run, out) = start(&rt, "hostchan", &["failures"], options);
    go.send_blocking(1).expect("the guest receives");
    entered_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the handler was called");
    drop(go);
    eventually("the run's microthreads are all gone", || {
        run.live_microthreads() == 0
    });
    assert_eq!(out.to_string_lossy(), "failures done\n");
    assert!(
        !run.is_finished(),
        "the run's end was published while the handler still held a failure"
    );
    release_tx.send(()).expect("the handler waits");
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    assert!(
        handled.load(std::sync::atomic::Ordering::SeqCst),
        "wait returned before the handler had returned"
    );
}

//! Channels, select, generate, parallel_map and deadlock reports, through real
//! guests built from source and run by the host.

use weft::{ExitStatus, Runtime, RuntimeBuilder};

mod common;
use common::run_on;

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
        out.contains("failure: microthread 1 failed: panicked at"),
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

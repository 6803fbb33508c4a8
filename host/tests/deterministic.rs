//! Deterministic mode through the binary: `weft run --deterministic --seed N` and
//! `weft test --seeds`, on real guests (`tests/guests/src/bin/deterministic.rs`).

use std::process::Output;

use weft_tests::guest;

mod common;
use common::{text, weft};

/// `weft run FLAGS deterministic.wasm ARGS`.
fn run(flags: &[&str], guest_args: &[&str]) -> Output {
    let file = guest("deterministic");
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    args.push(file.to_str().unwrap());
    args.extend_from_slice(guest_args);
    weft(&args)
}

/// Exit code, stdout and stderr: what must repeat under one seed.
fn outcome(o: &Output) -> (Option<i32>, String, String) {
    (o.status.code(), text(&o.stdout), text(&o.stderr))
}

/// The lost update is rare with this much work before each read.
const RACY: &[&str] = &["racy", "2", "1000000"];

#[test]
fn weft_test_finds_the_seed_of_a_lost_update_and_it_replays_identically() {
    let file = guest("deterministic");
    let o = weft(&[
        "test",
        "--seeds",
        "0..1000",
        file.to_str().unwrap(),
        "racy",
        "2",
        "1000000",
    ]);
    let err = text(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout: {} stderr: {err}",
        text(&o.stdout)
    );
    assert!(err.contains("lost update"), "{err}");
    let seed: u64 = err
        .split("weft test: seed ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no failing seed named: {err}"));
    let replay = err
        .lines()
        .skip_while(|l| !l.starts_with("replay it with:"))
        .nth(1)
        .unwrap_or_else(|| panic!("no replay command: {err}"));
    assert!(
        replay.contains(&format!("run --seed {seed} ")) && replay.ends_with("racy 2 1000000"),
        "{replay}"
    );

    let seed = seed.to_string();
    let first = outcome(&run(&["--seed", &seed], RACY));
    assert_eq!(first.0, Some(1), "{first:?}");
    assert!(first.1.contains("lost update"), "{first:?}");
    for _ in 0..9 {
        assert_eq!(outcome(&run(&["--seed", &seed], RACY)), first);
    }
}

#[test]
fn weft_test_finds_the_race_of_the_lost_update_example() {
    let file = guest("lost-update");
    let o = weft(&["test", "--seeds", "0..1000", file.to_str().unwrap()]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("lost update: the counter is 1 after 2 increments"),
        "{err}"
    );
    assert!(err.contains("replay it with:"), "{err}");
}

#[test]
fn a_passing_seed_replays_identically_and_seeds_differ() {
    let outcomes: Vec<_> = (0..30u64)
        .map(|seed| outcome(&run(&["--seed", &seed.to_string()], &["racy", "2", "100000"])))
        .collect();
    assert!(
        outcomes.iter().any(|o| o.0 == Some(1)),
        "some seed loses an update: {outcomes:?}"
    );
    let passing = outcomes
        .iter()
        .position(|o| o.0 == Some(0))
        .unwrap_or_else(|| panic!("some seed loses no update: {outcomes:?}"));
    let seed = passing.to_string();
    let first = outcome(&run(
        &["--deterministic", "--seed", &seed],
        &["racy", "2", "100000"],
    ));
    assert_eq!(first.0, Some(0), "{first:?}");
    assert!(first.1.contains("no update lost"), "{first:?}");
    for _ in 0..3 {
        assert_eq!(outcome(&run(&["--seed", &seed], &["racy", "2", "100000"])), first);
    }
}

#[test]
fn the_racy_guest_still_runs_under_the_ordinary_scheduler() {
    let o = outcome(&run(&[], RACY));
    match o.0 {
        Some(0) => assert!(o.1.contains("no update lost"), "{o:?}"),
        Some(1) => assert!(o.1.contains("lost update"), "{o:?}"),
        _ => panic!("{o:?}"),
    }
}

#[test]
fn an_hour_of_sleep_passes_in_virtual_time() {
    // Were the hour real, the run would end at --timeout (exit 124).
    let o = run(&["--seed", "3", "--timeout", "60s"], &["sleepy"]);
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(0), "{out} {err}");
    let numbers: Vec<u64> = out
        .split(|c: char| !c.is_ascii_digit())
        .filter(|n| !n.is_empty())
        .map(|n| n.parse().unwrap())
        .collect();
    let [mono, wall, at, 1970] = numbers[..] else {
        panic!("{out}");
    };
    assert!((3600..3700).contains(&mono), "{out}");
    assert!((3600..3700).contains(&wall), "{out}");
    // The wall clock starts at 2000-01-01T00:00:00Z.
    assert!((946_684_800 + 3600..946_684_800 + 3700).contains(&at), "{out}");
}

#[test]
fn timers_run_on_virtual_time() {
    let o = run(&["--seed", "4", "--timeout", "60s"], &["ticks"]);
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(0), "{out} {err}");
    assert!(
        out.starts_with("ticks: 60 in 3600 s; the channel first; the hour timer after 7200 s"),
        "{out}"
    );
}

#[test]
fn select_picks_by_the_seed() {
    let picks = |seed: u64| outcome(&run(&["--seed", &seed.to_string()], &["select", "32"]));
    let all: Vec<_> = (0..6).map(picks).collect();
    for o in &all {
        assert_eq!(o.0, Some(0), "{o:?}");
        assert!(o.1.starts_with("picks "), "{o:?}");
    }
    let distinct: std::collections::BTreeSet<&String> = all.iter().map(|o| &o.1).collect();
    assert!(distinct.len() > 1, "six seeds, one choice: {all:?}");
    assert_eq!(picks(4), all[4]);
    // Each of the three cases is taken under some seed.
    for case in ['0', '1', '2'] {
        assert!(
            all.iter().any(|o| o.1["picks ".len()..].contains(case)),
            "{all:?}"
        );
    }
}

#[test]
fn one_seed_gives_the_same_bytes_on_a_busy_machine() {
    let quiet = outcome(&run(&["--seed", "11"], &["noise"]));
    assert_eq!(quiet.0, Some(0), "{quiet:?}");
    assert!(
        quiet.1.contains("random ") && quiet.1.contains("sum "),
        "{quiet:?}"
    );
    // Two threads spin beside the next runs, on this 2-core machine or any.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hogs: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 1u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
                }
            })
        })
        .collect();
    let busy = [
        run(&["--seed", "11"], &["noise"]),
        run(&["--seed", "11"], &["noise"]),
    ];
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    hogs.into_iter().for_each(|h| h.join().unwrap());
    for o in &busy {
        assert_eq!(outcome(o), quiet);
    }
    // Another seed: other random numbers.
    let other = outcome(&run(&["--seed", "12"], &["noise"]));
    assert_ne!(other.1, quiet.1);
}

#[test]
fn the_end_of_the_program_comes_at_the_same_point_of_the_schedule() {
    // What still runs when `main` returns, or when a microthread exits, is stopped
    // where the schedule is, not when the supervisor thread gets to it.
    for (mode, code, says) in [
        ("leftover", 0, "ticker: cancelled after "),
        ("exit", 3, "exiter: exiting with 3"),
    ] {
        let first = outcome(&run(&["--seed", "2"], &[mode]));
        assert_eq!(first.0, Some(code), "{first:?}");
        assert!(first.1.contains(says), "{first:?}");
        for _ in 0..4 {
            assert_eq!(outcome(&run(&["--seed", "2"], &[mode])), first);
        }
    }
}

#[test]
fn the_schedule_trace_says_who_ran_and_why_it_stopped() {
    let dir = std::env::temp_dir().join(format!("weft-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let traces: Vec<String> = (0..2)
        .map(|i| {
            let path = dir.join(format!("trace-{i}"));
            let o = run(
                &["--seed", "5", "--trace-schedule", path.to_str().unwrap()],
                &["racy", "2", "1000"],
            );
            assert!(matches!(o.status.code(), Some(0 | 1)), "{:?}", outcome(&o));
            std::fs::read_to_string(&path).unwrap()
        })
        .collect();
    assert_eq!(traces[0], traces[1]);
    let trace = &traces[0];
    assert!(trace.starts_with("1 microthread 0: "), "{trace}");
    for what in [
        "microthread 0: blocked: joining microthread",
        ": blocked: receiving on channel",
        ": yielded",
        ": finished",
    ] {
        assert!(trace.contains(what), "no `{what}` in\n{trace}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn weft_test_counts_the_seeds_that_pass() {
    let file = guest("hello");
    let o = weft(&["test", "--seeds", "5..=9", "--jobs", "2", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("all 5 seeds passed (5..10)"),
        "{}",
        text(&o.stdout)
    );
}

/// A usage error, or one line that says what is wrong: never a panic.
fn refused(o: &Output, says: &str) {
    let err = text(&o.stderr);
    assert!(matches!(o.status.code(), Some(1 | 2)), "{err}");
    assert!(err.contains(says), "expected `{says}` in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_deterministic_flags_are_refused() {
    refused(
        &run(&["--seed", "1", "--workers", "2"], RACY),
        "--workers must be 1",
    );
    refused(
        &run(&["--deterministic", "--no-preempt"], RACY),
        "--no-preempt turns off",
    );
    refused(
        &run(&["--trace-schedule", "/dev/null"], RACY),
        "--trace-schedule is for deterministic runs",
    );
    refused(&run(&["--seed", "minus-one"], RACY), "invalid value");
    let file = guest("deterministic");
    let file = file.to_str().unwrap();
    for (seeds, says) in [
        ("5..5", "holds no seed"),
        ("9..2", "holds no seed"),
        ("0", "holds no seed"),
        ("a..b", "is not a seed"),
        ("1...3", "is not a seed"),
        (
            "18446744073709551615..=18446744073709551615",
            "past the largest seed",
        ),
    ] {
        refused(&weft(&["test", "--seeds", seeds, file, "racy"]), says);
    }
    refused(
        &weft(&["test", "--jobs", "0", file, "racy"]),
        "--jobs must be at least 1",
    );
}

//! Deterministic runs through the embedding API (`RunOptions::deterministic`):
//! the same bytes under one seed, a schedule trace, run control, host channels,
//! and the options it refuses. Real guests, the real host.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use weft::{Error, ExitStatus, OutputBuffer, Preemption, RunOptions, Runtime};
use weft_tests::guest;

fn runtime() -> Runtime {
    Runtime::builder()
        .workers(2)
        .max_microthreads(64)
        .cache_dir(Some(weft_tests::cache_dir()))
        .build()
        .unwrap()
}

/// A writer the test can read back.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Exit status, output and schedule trace of the `deterministic` guest under `seed`.
fn outcome(rt: &Runtime, seed: u64, args: &[&str]) -> (ExitStatus, String, String) {
    let program = rt.load(guest("deterministic")).unwrap();
    let (out, trace) = (OutputBuffer::new(), Shared::default());
    let options = RunOptions::new()
        .args(args.iter().copied())
        .stdout(out.clone())
        .deterministic(seed)
        .trace_schedule(trace.clone());
    let status = program.run(&options).unwrap();
    let trace = String::from_utf8(trace.0.lock().unwrap().clone()).unwrap();
    (status, out.to_string_lossy(), trace)
}

#[test]
fn one_seed_one_schedule_for_an_embedder_too() {
    let rt = runtime();
    let first = outcome(&rt, 21, &["noise"]);
    assert_eq!(first.0, ExitStatus::Exited(0), "{first:?}");
    assert!(first.2.lines().count() > 10, "{}", first.2);
    // Two at once, on a runtime whose workers are busy with an ordinary run.
    let busy = rt.load(guest("deterministic")).unwrap();
    let spinning = busy
        .start(
            &RunOptions::new()
                .args(["racy", "2", "100000000"])
                .stdout(OutputBuffer::new()),
        )
        .unwrap();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| outcome(&rt, 21, &["noise"]));
        let b = s.spawn(|| outcome(&rt, 21, &["noise"]));
        (a.join().unwrap(), b.join().unwrap())
    });
    spinning.cancel();
    assert_eq!(a, first);
    assert_eq!(b, first);
    let other = outcome(&rt, 22, &["noise"]);
    assert_ne!(other.1, first.1);
    assert_ne!(other.2, first.2);
}

#[test]
fn a_deterministic_run_is_controlled_like_any_other() {
    let rt = runtime();
    let program = rt.load(guest("deterministic")).unwrap();
    let endless = || {
        RunOptions::new()
            .args(["racy", "2", "100000000000"])
            .stdout(OutputBuffer::new())
            .deterministic(1)
    };
    let run = program.start(&endless()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    run.cancel();
    assert_eq!(run.wait(), ExitStatus::Cancelled);

    let run = program
        .start(&endless().deadline(Duration::from_millis(50)))
        .unwrap();
    assert_eq!(run.wait(), ExitStatus::DeadlineExceeded);

    // Dropped while it runs: cancelled, and nothing hangs.
    drop(program.start(&endless()).unwrap());
}

#[test]
fn host_channels_reach_a_deterministic_run() {
    let rt = runtime();
    let program = rt.load(guest("bench")).unwrap();
    let (to_guest, guest_in) = weft::channel::<u64>(0);
    let (guest_out, from_guest) = weft::channel::<u64>(0);
    let options = RunOptions::new()
        .args(["echo", "0"])
        .receiver("in", guest_in)
        .sender("out", guest_out)
        .deterministic(9);
    let run = program.start(&options).unwrap();
    for v in 0..100 {
        to_guest.send_blocking(v).unwrap();
        assert_eq!(from_guest.recv_blocking().unwrap(), v + 1);
    }
    drop(to_guest);
    assert_eq!(run.wait(), ExitStatus::Exited(0));
}

#[test]
fn what_a_deterministic_run_refuses() {
    let rt = runtime();
    let program = rt.load(guest("deterministic")).unwrap();
    let traced = RunOptions::new().trace_schedule(Shared::default());
    match program.start(&traced) {
        Err(Error::InvalidOptions(why)) => {
            assert!(why.contains("only kept for a deterministic run"), "{why}")
        }
        other => panic!("a trace without a seed: {other:?}"),
    }

    let unmetered = Runtime::builder()
        .preemption(Preemption::Off)
        .cache_dir(Some(weft_tests::cache_dir()))
        .build()
        .unwrap();
    let program = unmetered.load(guest("deterministic")).unwrap();
    match program.start(&RunOptions::new().deterministic(1)) {
        Err(Error::InvalidOptions(why)) => assert!(why.contains("needs a runtime that meters fuel"), "{why}"),
        other => panic!("deterministic without fuel: {other:?}"),
    }
}

//! The registry of named endpoints, through a real guest (`registry`): a sender
//! registered by one microthread is found by another and carries its messages; a
//! taken name, a wrong type, a name over the limit and a run whose handles are all
//! taken are refused with a clear error; a name is released when its registrant
//! ends (failed or returned), so that a restarted server is found under it; and
//! the application finds a guest's sender with `RunHandle::whereis`. Each on one
//! worker and on two.

mod common;

use weft::{ExitStatus, RunOptions};

use common::{Ran, lines, run_on, runtime, start};

fn registry(workers: usize, mode: &str) -> Ran {
    let r = run_on(&runtime(workers), "registry", &[mode]);
    eprintln!("{mode} on {workers}: {:?}\n{}{}", r.status, r.stdout, r.stderr);
    r
}

#[test]
fn a_registered_sender_is_found_by_another_microthread_and_carries_its_messages() {
    for workers in [1, 2] {
        let r = registry(workers, "find");
        assert_eq!(r.status, ExitStatus::Exited(0));
        assert_eq!(lines(&r.stdout), ["client: 41 + 1 = 42", "client: 99 + 1 = 100"]);
    }
}

#[test]
fn a_taken_name_is_refused_naming_its_holder() {
    for workers in [1, 2] {
        let r = registry(workers, "taken");
        assert_eq!(r.status, ExitStatus::Exited(0));
        assert_eq!(
            lines(&r.stdout),
            ["taken: by the server", "taken: by the server", "unknown: true"]
        );
    }
}

#[test]
fn asking_for_the_wrong_type_panics_the_asker_naming_both_types() {
    for workers in [1, 2] {
        let r = registry(workers, "wrong-type");
        assert_eq!(r.status, ExitStatus::Exited(0));
        let out = lines(&r.stdout);
        assert_eq!(out.len(), 2, "{out:?}");
        // The panic is the asker's: where it asked.
        assert!(
            out[0].starts_with("asker: Panic: panicked at tests/guests/src/bin/registry.rs:"),
            "{}",
            out[0]
        );
        assert!(
            out[0].contains(
                "whereis(\"svc\") asked for a Sender<alloc::string::String>, but the name is \
                 registered with a Sender<registry::Request>"
            ),
            "{}",
            out[0]
        );
        // The registration is unharmed: the right type is found and served.
        assert_eq!(out[1], "right type: 2");
    }
}

/// What the `restart` mode prints: each server's answer to 10, and that the name
/// was free once the one before it had ended.
const RESTART: [&str; 9] = [
    "first: 11",
    "first failed: Panic",
    "after the failure, found: false",
    "second: 12",
    "after the return, found: false",
    "third: 13",
    "third cancelled: Cancelled",
    "after the cancellation, found: false",
    "fourth: 14",
];

#[test]
fn a_name_is_released_when_its_registrant_fails_returns_or_is_cancelled_and_a_restarted_server_takes_it() {
    for workers in [1, 2] {
        let r = registry(workers, "restart");
        assert_eq!(r.status, ExitStatus::Exited(0));
        assert_eq!(lines(&r.stdout), RESTART);
        // The first server's failure was joined: nothing else reports it.
        assert!(!r.stderr.contains("failed"), "{}", r.stderr);
    }
}

#[test]
fn names_and_fingerprints_over_the_limit_are_refused() {
    assert_eq!(weft::limits::MAX_NAME, 256);
    assert_eq!(weft::limits::MAX_FINGERPRINT, 1024);
    for workers in [1, 2] {
        let r = registry(workers, "too-long");
        assert_eq!(r.status, ExitStatus::Exited(0));
        assert_eq!(
            lines(&r.stdout),
            [
                "256 bytes: Ok(())",
                "257 bytes: NameTooLong { max: 256 }: the name is longer than the host's limit of 256 bytes",
                "found: false",
                "fingerprint of 1025 bytes: Err(\"RegisterError::FingerprintTooLong(1024)\")",
                "found: false",
            ]
        );
    }
}

/// The hostile guest registers names until refused: each registration holds one
/// of the run's handles, so the run's bound holds, and the refusal says so.
#[test]
fn registrations_hold_the_runs_handles_and_stop_at_its_bound() {
    for workers in [1, 2] {
        let program = runtime(workers).load(weft_tests::guest("registry")).unwrap();
        let out = weft::OutputBuffer::new();
        let options = RunOptions::new()
            .args(["many"])
            .max_run_handles(64)
            .stdout(out.clone());
        let status = program.start(&options).unwrap().wait();
        let stdout = out.to_string_lossy();
        eprintln!("many on {workers}: {status:?}\n{stdout}");
        assert_eq!(status, ExitStatus::Exited(0));
        // 64 handles: 2 for the channel's ends, 62 for the names.
        assert_eq!(
            lines(&stdout),
            [
                "refused after 62: the program's microthreads already hold the host's maximum of 64 \
                 handles (each registration holds one): drop some, or raise the host's max_run_handles",
                "found 62 of 62",
            ]
        );
    }
}

#[derive(serde::Serialize, serde::Deserialize, Debug)]
struct Job {
    n: u64,
    text: String,
}

#[test]
fn the_application_finds_a_guests_sender_by_name() {
    for workers in [1, 2] {
        let rt = runtime(workers);
        let (events_tx, events) = weft::channel::<String>(8);
        let (done, done_rx) = weft::channel::<u8>(0);
        let (go, go_rx) = weft::channel::<u8>(1);
        let options = RunOptions::new()
            .sender("events", events_tx)
            .receiver("done", done_rx)
            .receiver("go", go_rx);
        let (run, _out) = start(&rt, "registry", &["app"], options);

        assert_eq!(events.recv_blocking().unwrap(), "registered");
        // An unknown name.
        assert!(run.whereis::<Job>("nobody").unwrap().is_none());
        // The wrong type: an error naming both.
        let wrong = run.whereis::<String>("jobs").unwrap_err();
        assert_eq!(wrong.registered, "registry::Job");
        assert_eq!(wrong.asked, "alloc::string::String");
        let message = wrong.to_string();
        assert!(
            message.contains("`registry::Job`") && message.contains("`alloc::string::String`"),
            "{message}"
        );
        // The right type, the application's copy of it (another crate's `Job`).
        let jobs = run.whereis::<Job>("jobs").unwrap().expect("jobs is registered");
        // The application holds a sender of `jobs` now: the guest may wait on it.
        go.send_blocking(1).unwrap();
        jobs.send_blocking(Job {
            n: 1,
            text: "count these words".into(),
        })
        .unwrap();
        assert_eq!(events.recv_blocking().unwrap(), "job 1: count these words");
        jobs.send_blocking(Job {
            n: 2,
            text: "stop".into(),
        })
        .unwrap();
        // The registrant returned and was joined: its name is released.
        assert_eq!(events.recv_blocking().unwrap(), "released");
        assert!(run.whereis::<Job>("jobs").unwrap().is_none());
        drop(jobs);
        drop(done);
        assert_eq!(run.wait(), ExitStatus::Exited(0));
    }
}

/// Under a deterministic schedule the registry behaves the same: each seed's run
/// of the restart pattern gives the same output as a run on the workers.
#[test]
fn a_deterministic_run_registers_releases_and_finds_the_same() {
    let program = runtime(1).load(weft_tests::guest("registry")).unwrap();
    for seed in [1, 7] {
        let out = weft::OutputBuffer::new();
        let options = RunOptions::new()
            .args(["restart"])
            .deterministic(seed)
            .stdout(out.clone());
        let status = program.run(&options).unwrap();
        let stdout = out.to_string_lossy();
        assert_eq!(status, ExitStatus::Exited(0), "seed {seed}: {stdout}");
        assert_eq!(lines(&stdout), RESTART, "seed {seed}");
    }
}

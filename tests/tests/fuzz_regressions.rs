//! The fuzz targets' checks (`fuzz/src/`), replayed on stable Rust: every input
//! saved under `fuzz/regressions/TARGET/` (a past crash, or a seed), and a few
//! written here whose outcome is known. The boundary inputs run the `fuzz_calls`
//! guest under the real host, as the fuzz target does.

#[path = "../../fuzz/src/boundary.rs"]
mod boundary;
#[path = "../../fuzz/src/channel_model.rs"]
mod channel_model;
#[path = "../../fuzz/src/parsers.rs"]
mod parsers;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use weft::{ExitStatus, FailureKind};

/// The inputs saved for `target`, with their names.
fn saved(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut inputs: Vec<(String, Vec<u8>)> = entries
        .map(|e| {
            let path = e.expect("a directory entry").path();
            let bytes =
                std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            (path.display().to_string(), bytes)
        })
        .collect();
    inputs.sort();
    inputs
}

/// Host panics, counted by a hook: the host catches a panic in a microthread's task
/// (the microthread fails), but a fuzz target aborts on any, so these tests must see
/// them too.
static HOST_PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            HOST_PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

fn program() -> weft::Program {
    let runtime = boundary::runtime(Some(weft_tests::cache_dir()));
    runtime
        .load(weft_tests::guest("fuzz_calls"))
        .expect("the fuzz guest loads")
}

/// Run `input` and return how it ended, checking that the host did not panic.
fn boundary_run(program: &weft::Program, name: &str, input: &[u8]) -> ExitStatus {
    count_panics();
    let before = HOST_PANICS.load(Ordering::SeqCst);
    let status = boundary::check(program, input);
    assert_eq!(
        HOST_PANICS.load(Ordering::SeqCst),
        before,
        "{name}: the host panicked"
    );
    status
}

fn trapped_with(status: &ExitStatus, says: &str) -> bool {
    matches!(status, ExitStatus::Failed(f) if f.kind == FailureKind::Trap && f.message.contains(says))
}

#[test]
fn boundary_inputs_leave_nothing_behind() {
    let program = program();
    for (name, input) in saved("boundary") {
        boundary_run(&program, &name, &input);
    }

    // Deterministic runs (first byte 1, seed 0); then the guest's calls.
    // A small message whose length says 200 bytes: the host refuses it (a trap of
    // the sender), and the channel it was for is freed.
    let mut forged_small = vec![
        1, 0, /* open(1) */ 0, 1, /* try_send small len 200 */ 5, 0, 1, 0, 200,
    ];
    forged_small.extend([7u8; 24]);
    let status = boundary_run(&program, "forged small", &forged_small);
    assert!(trapped_with(&status, "small message of 200 bytes"), "{status:?}");

    // A sender handle (77) the guest never had: a trap, not a host error.
    let status = boundary_run(&program, "forged handle", &[1, 0, 18, 0, 1, 77]);
    assert!(
        matches!(&status, ExitStatus::Failed(f) if f.kind == FailureKind::Trap),
        "{status:?}"
    );

    // A spawn at trampoline u32::MAX: the child traps in `call_indirect`; main joins
    // its failure and ends well.
    let bogus = [
        1, 0, /* spawn_bogus */ 9, 1, 0, 0, 0, 0, 1, 0, 0, /* join */ 10, 0, 0,
    ];
    let status = boundary_run(&program, "bogus spawn", &bogus);
    assert_eq!(status, ExitStatus::Exited(0));

    // A select of 40 receives on one rendezvous channel, with a 1 ns timeout.
    let mut select = vec![1, 0, /* open(0) */ 0, 0, /* select, 40 ops */ 7, 6, 40];
    select.extend([0u8, 0].repeat(40));
    select.extend([1, 1, 1]);
    let status = boundary_run(&program, "odd select", &select);
    assert_eq!(status, ExitStatus::Exited(0));

    // Register the sender of a channel as "a" (fingerprint ""), find it, register
    // "a" again (taken) and a name of 257 bytes (too long): the run ends well, and
    // the registry lets go of the sender it held (no channel is left open).
    let registry = [
        1, 0, /* open(1) */ 0, 1, /* register "a" */ 31, 0, 1, 0, 2, /* whereis "a" */ 31, 1,
        1, 0, /* register "a" */ 31, 0, 1, 0, 2, /* register "n" x 257 */ 31, 0, 1, 2, 2,
    ];
    let status = boundary_run(&program, "registry", &registry);
    assert_eq!(status, ExitStatus::Exited(0));

    // A sleep of u64::MAX nanoseconds in virtual time: the run still ends (its
    // deadline is real time) and leaves nothing.
    boundary_run(&program, "endless sleep", &[1, 0, 12, 0, 6]);

    // In real time (first byte 0), with loopback grants: bind, connect to it,
    // accept, write 24 bytes on one end and read them on the other; the run's
    // sockets are all closed once it has ended.
    let net = [
        0, 0, /* bind 127.0.0.1:0 */ 19, 0, /* connect to listener 0 */ 20, 4, 0, 0,
        /* accept */ 21, 0, 2, 0, /* write 24 bytes on stream 0 */ 22, 0, 3, 2, 0,
        /* read up to 255 on stream 1 */ 22, 1, 2, 1, 255, 0,
    ];
    let status = boundary_run(&program, "loopback", &net);
    assert_eq!(status, ExitStatus::Exited(0));
}

#[test]
fn parser_inputs_hold() {
    for (_, input) in saved("parsers") {
        parsers::check(&input);
    }
    for text in [
        "127.0.0.1:90-80",
        "[::1]:*",
        "*:0-65535",
        "::1:80",
        "localhost:7000",
        ":80",
        "1e400",
        "NaN",
        "-0",
        "18446744073709551615GiB",
        "17179869183G",
        "0..=18446744073709551615",
        "5..5",
        " 64 kib ",
        "1h30m",
    ] {
        parsers::check(text.as_bytes());
    }
}

#[test]
fn channel_inputs_match_the_model() {
    for (_, input) in saved("channel_model") {
        channel_model::check(&input);
    }
    // Capacity 0 (a rendezvous): a pending receive, a try_send it takes; a pending
    // send, cancelled; a pending receive, then every sender dropped.
    channel_model::check(&[0, 12, 0, 0, 0, 11, 0, 10, 0, 12, 0, 8, 0]);
    // Capacity 1: fill, a pending send, a receive that lets it in, clones and drops.
    channel_model::check(&[1, 0, 0, 11, 0, 3, 0, 6, 0, 7, 0, 8, 1, 9, 0, 5, 0, 4, 0]);
}

//! What one microthread or run must not see or hold of another: memory left in a
//! reused pool slot.

use weft::{ExitStatus, Runtime};

mod common;
use common::run_on;

fn small() -> weft::RuntimeBuilder {
    Runtime::builder()
        .max_microthreads(8)
        .cache_dir(Some(weft_tests::cache_dir()))
}

/// Each child writes a pattern into 3 MiB of fresh memory and ends; the next one,
/// in the same pool slot (one worker, children one at a time: the pool hands a
/// freed slot back to the next instance of the same module), must find those pages
/// zero. 3 MiB is past what a reset keeps resident (1 MiB at most), so both the
/// pages reset in place and those given back to the kernel are checked, by
/// whichever reset this host uses (`Runtime::memory_reset`).
#[test]
fn a_microthread_never_sees_what_an_earlier_one_left_in_its_pool_slot() {
    let rt = small().workers(1).max_microthreads(2).build().unwrap();
    eprintln!("memory reset on this host: {}", rt.memory_reset());
    // Twice: the second run's microthreads reuse the first run's slots too.
    for run in 0..2 {
        let r = run_on(&rt, "isolation", &["reuse", "12", "3"]);
        assert_eq!(r.status, ExitStatus::Exited(0), "run {run}: {}", r.stderr);
        assert_eq!(
            r.stdout.lines().filter(|l| l.starts_with("round ")).count(),
            12,
            "run {run}: {}",
            r.stdout
        );
        assert!(
            r.stdout.contains("not zero in all rounds: 0\n"),
            "run {run}: {}",
            r.stdout
        );
    }
}

//! What one microthread or run must not see or hold of another: memory left in a
//! reused pool slot, a worker thread blocked by another program's file I/O, a run
//! kept alive by a view of it.

use std::time::{Duration, Instant};

use weft::{ExitStatus, OutputBuffer, RunOptions, RunStats, Runtime};
use weft_tests::guest;
#[cfg(target_os = "linux")]
use weft_tests::threads_named;

mod common;
use common::run_on;

/// An upper bound on waits that only guards against a hang.
const HANG: Duration = Duration::from_secs(60);

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

/// Make a FIFO at `path`.
#[cfg(target_os = "linux")]
fn fifo(path: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    let made = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(
        made,
        0,
        "mkfifo {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// Threads of this process blocked opening a FIFO that nobody writes.
#[cfg(target_os = "linux")]
fn threads_opening_a_fifo() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter(|t| {
            let wchan = std::fs::read_to_string(t.as_ref().unwrap().path().join("wchan")).unwrap_or_default();
            wchan.trim_end() == "wait_for_partner"
        })
        .count()
}

/// Programs that cannot spawn, blocked opening a FIFO (file I/O that waits for
/// another process), never hold every worker: with one worker none of them blocks
/// it, with two only one may, and another program on the same runtime runs to its
/// end meanwhile.
#[cfg(target_os = "linux")]
#[test]
fn programs_blocked_in_file_io_leave_a_worker_to_the_others() {
    for workers in [1, 2] {
        let dir = std::env::temp_dir().join(format!("weft-isolation-fifo-{}-{workers}", std::process::id()));
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("cannot clear {}: {e}", dir.display()),
        }
        std::fs::create_dir_all(&dir).unwrap();
        let rt = small().workers(workers).build().unwrap();
        let plain = rt.load(guest("plain-hello")).unwrap();
        // As many blocked openers as there are workers.
        let mut openers = Vec::new();
        for i in 0..workers {
            fifo(&dir.join(format!("fifo{i}")));
            let out = OutputBuffer::new();
            let options = RunOptions::new()
                .args(["open", &format!("/data/fifo{i}")])
                .dir(&dir, "/data")
                .stdout(out.clone());
            openers.push((plain.start(&options).unwrap(), out));
        }
        // Wait until all of them are blocked in the kernel (the bound only guards
        // against a hang).
        let give_up = Instant::now() + HANG;
        while threads_opening_a_fifo() < workers {
            for (i, (handle, out)) in openers.iter().enumerate() {
                assert!(
                    !handle.is_finished(),
                    "opener {i} ended: {}",
                    out.to_string_lossy()
                );
            }
            assert!(Instant::now() < give_up, "the openers never blocked");
            std::thread::yield_now();
        }
        // Another program on the same runtime runs to its end meanwhile.
        let hello = rt.load(guest("hello")).unwrap();
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let out = OutputBuffer::new();
            let status = hello.run(&RunOptions::new().stdout(out.clone())).unwrap();
            done_tx.send((status, out.to_string_lossy())).unwrap();
        });
        let ended = done.recv_timeout(HANG);
        // Let the openers go (a writer opening each FIFO) before any assertion.
        for i in 0..workers {
            drop(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(dir.join(format!("fifo{i}")))
                    .unwrap(),
            );
        }
        let (status, out) = ended
            .unwrap_or_else(|_| panic!("{workers} worker(s): hello never ended beside the blocked openers"));
        assert_eq!(status, ExitStatus::Exited(0), "{workers} worker(s)");
        assert!(out.contains("= 333833500"), "{out}");
        for (handle, out) in openers {
            assert_eq!(handle.wait(), ExitStatus::Exited(0));
            assert_eq!(out.to_string_lossy(), "opened\n");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// A view sees its run without keeping it: once the run has ended and its handle
/// is dropped, the run goes (and a deterministic run's thread with it), and the
/// view sees an empty run.
#[cfg(target_os = "linux")]
#[test]
fn a_view_keeps_nothing_of_its_run_alive() {
    let rt = small().workers(1).build().unwrap();
    let program = rt.load(guest("hello")).unwrap();
    let options = RunOptions::new().deterministic(3).stdout(OutputBuffer::new());
    let handle = program.start(&options).unwrap();
    // The run's thread names itself once it runs.
    let give_up = Instant::now() + HANG;
    while threads_named("weft-deterministic") == 0 && Instant::now() < give_up {
        std::thread::yield_now();
    }
    assert_eq!(threads_named("weft-deterministic"), 1);
    let view = handle.view();
    assert!(!view.is_gone());
    assert_eq!(handle.wait(), ExitStatus::Exited(0));
    // The run goes once the last of its tasks lets go of it (the hang guard only
    // bounds the wait).
    let give_up = Instant::now() + HANG;
    while (!view.is_gone() || threads_named("weft-deterministic") > 0) && Instant::now() < give_up {
        std::thread::yield_now();
    }
    assert!(view.is_gone(), "the view kept its run");
    assert_eq!(threads_named("weft-deterministic"), 0, "the run's thread is left");
    assert_eq!(view.stats(), RunStats::default());
    assert!(view.microthreads().is_empty());
}

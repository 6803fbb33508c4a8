//! The WIT host boundary: the `fuzz_calls` guest (`tests/guests/src/bin/
//! fuzz_calls.rs`) turns an input into raw `weft:runtime` calls, run by the real
//! host, in-process, with low limits and a deadline. Whatever the guest does (a
//! trap or a panic of the guest is an expected end, a failed microthread), the host
//! must not panic, the run must end, and once it has ended nothing of it may be
//! left: no live microthread, no open channel or socket, no buffered byte, and the
//! application's channel ends it handed the run must see the run let go of them.
//!
//! Shared by the `boundary` fuzz target and the regression tests of `tests/`
//! (which include this file): it depends on `weft` and `std` only.

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use weft::net::Grant;
use weft::{ExitStatus, OutputBuffer, Program, RunOptions, Runtime};

/// A run's deadline: the hang guard of one input.
pub const DEADLINE: Duration = Duration::from_secs(3);

/// How long after its deadline a run may take to end, and then to let go of the
/// application's channel ends, before the harness calls it a hang or a leak.
const GUARD: Duration = Duration::from_secs(30);

/// The runtime the guest runs on: two workers, and small runtime-wide limits.
/// `cache`: where compiled programs are kept (none: compile every time).
pub fn runtime(cache: Option<PathBuf>) -> Runtime {
    Runtime::builder()
        .workers(2)
        .max_microthreads(64)
        .max_memory(16 << 20)
        .max_channel_capacity(64)
        .use_cache(cache.is_some())
        .cache_dir(cache)
        .build()
        .unwrap_or_else(|e| panic!("cannot build the fuzz runtime: {e}"))
}

/// Block the calling thread on `f`, at most `guard`: `None` if it had not finished.
fn block_on<F: Future>(f: F, guard: Duration) -> Option<F::Output> {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    let until = Instant::now() + guard;
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return Some(v);
        }
        let now = Instant::now();
        if now >= until {
            return None;
        }
        std::thread::park_timeout(until - now);
    }
}

/// The options of one run of `input`: its first byte chooses a deterministic run
/// (most inputs: reproducible, and time is virtual) or one in real time with
/// loopback grants; its second is the seed; the rest is the guest's stdin.
fn options(input: &[u8]) -> RunOptions {
    let flags = input.first().copied().unwrap_or(0);
    let seed = u64::from(input.get(1).copied().unwrap_or(0));
    let stdin = input.get(2..).unwrap_or_default().to_vec();
    let options = RunOptions::new()
        .program_name("fuzz_calls")
        .stdin_bytes(stdin)
        .stdout(OutputBuffer::with_capacity(64 << 10))
        .stderr(OutputBuffer::with_capacity(64 << 10))
        .deadline(DEADLINE)
        .cancel_grace(Duration::from_millis(100))
        .shutdown_grace(Duration::from_millis(100))
        .atomic_cap(Duration::from_millis(50))
        .fuel_budget(100_000_000)
        .max_microthreads(12)
        .max_memory(8 << 20)
        .max_message_size(4096)
        .max_buffered_bytes(16 << 10)
        .max_channels(16)
        .max_handles(48)
        .max_sockets(4);
    if flags % 4 != 0 {
        return options.deterministic(seed);
    }
    let grant = |spec: &str| Grant::parse(spec).unwrap_or_else(|e| panic!("the fuzz grant {spec}: {e}"));
    options
        .arg("real")
        .listen(grant("127.0.0.1:*"))
        .listen(grant("[::1]:*"))
        .connect(grant("127.0.0.1:*"))
        .connect(grant("[::1]:*"))
}

/// Run `input` through `program` (the `fuzz_calls` guest) and check the host.
/// Returns how the run ended. Panics when the host misbehaves: a panic of the host
/// (the run ends "abnormally"), a run that does not end, or anything of the run
/// left once it has ended.
pub fn check(program: &Program, input: &[u8]) -> ExitStatus {
    // The application's own channels, handed to the run by name: what the guest
    // sends on `out` is read (and its garbage refused) by a thread of the
    // application until the channel closes.
    let (to_guest, from_app) = weft::channel::<Vec<u8>>(2);
    let (to_app, from_guest) = weft::channel::<Vec<u8>>(2);
    let options = options(input).receiver("in", from_app).sender("out", to_app);
    let run = program
        .start(&options)
        .unwrap_or_else(|e| panic!("the run could not start: {e}"));
    drop(options);
    let (closed_tx, closed) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let end = loop {
            match from_guest.recv_blocking() {
                Ok(_) | Err(weft::RecvError::Malformed(_)) => continue,
                Err(e) => break e,
            }
        };
        // The sender is the run's: once it is gone the run has let go of it.
        closed_tx.send(end).expect("the harness waits for the reader");
    });
    for (i, chunk) in input.chunks(7).take(3).enumerate() {
        // A full or closed channel is the guest's business: the value is dropped.
        if to_guest.try_send(chunk.to_vec()).is_err() && i == 0 {
            break;
        }
    }
    drop(to_guest);

    let mut run = run;
    let Some(status) = block_on(&mut run, DEADLINE + GUARD) else {
        panic!(
            "the run did not end {GUARD:?} after its deadline: live {}, microthreads {:#?}",
            run.live_microthreads(),
            run.microthreads()
        );
    };
    if let ExitStatus::Failed(f) = &status {
        assert!(
            !f.message.contains("ended abnormally"),
            "a host task panicked: {f}"
        );
    }
    // The run lets go of the application's `out` sender; the application reads
    // what is left in `out` (dropping the endpoints a guest put in its messages:
    // until then those keep the run's channels open).
    let end = closed.recv_timeout(GUARD).unwrap_or_else(|_| {
        panic!("the run ended ({status:?}) but still holds the application's `out` sender")
    });
    reader.join().expect("the reader thread");
    assert!(
        matches!(end, weft::RecvError::Closed | weft::RecvError::Failed(_)),
        "the application's receiver ended with {end:?}"
    );
    // Then nothing of the run is left.
    let stats = run.stats();
    assert_eq!(
        run.live_microthreads(),
        0,
        "live microthreads after the end: {stats}"
    );
    assert_eq!(stats.live, 0, "{stats}");
    assert_eq!(
        stats.spawned, stats.finished,
        "every microthread started has ended: {stats}"
    );
    assert_eq!(
        run.buffered_bytes(),
        0,
        "bytes still buffered after the end ({stats})"
    );
    assert_eq!(
        run.open_channels(),
        0,
        "channels still open after the end ({stats})"
    );
    assert_eq!(
        run.open_sockets(),
        0,
        "sockets still open after the end ({stats})"
    );
    assert_eq!(
        program.runtime().live_microthreads(),
        0,
        "the runtime still counts live microthreads"
    );
    drop(run);
    status
}

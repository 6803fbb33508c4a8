//! Helpers for the benchmarks: run a bench guest and read what it measured; the raw
//! NATS floor under weft's remote channels ([`nats_floor`]), and those channels
//! ([`cluster`]); HTTP servers under `wrk` ([`http`]).

pub mod cluster;
pub mod http;
pub mod nats_floor;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use weft::{ExitStatus, MicrothreadState, OutputBuffer, RunOptions, Runtime};

/// Run the `bench` guest with `args` on `runtime`; returns the time it measured.
pub fn measured(runtime: &Runtime, args: &[String]) -> Duration {
    let program = runtime
        .load(weft_tests::guest("bench"))
        .expect("load the bench guest");
    let out = OutputBuffer::new();
    let status = program
        .run(&RunOptions::new().args(args.iter().cloned()).stdout(out.clone()))
        .expect("run");
    assert_eq!(status, ExitStatus::Exited(0), "bench {args:?} failed");
    elapsed(&out.to_string_lossy()).unwrap_or_else(|| panic!("no elapsed_ns in the output of {args:?}"))
}

fn elapsed(output: &str) -> Option<Duration> {
    let line = output.lines().find_map(|l| l.strip_prefix("elapsed_ns "))?;
    Some(Duration::from_nanos(line.trim().parse().ok()?))
}

/// Time per run of a trivial program (the `bench` guest's `yield 0`: `main` reads
/// its arguments, prints one line and returns) over `n` runs, the program loaded
/// once: what starting a run, running its `main` and waiting for its end costs.
pub fn per_run(runtime: &Runtime, n: u32) -> Duration {
    let program = runtime
        .load(weft_tests::guest("bench"))
        .expect("load the bench guest");
    let options = RunOptions::new().args(["yield", "0"]).stdout(OutputBuffer::new());
    let start = Instant::now();
    for _ in 0..n {
        let status = program.run(&options).expect("run");
        assert_eq!(status, ExitStatus::Exited(0));
    }
    start.elapsed() / n
}

/// Resident memory of this process, in KiB (Linux).
pub fn resident_kib() -> Option<u64> {
    status_kib("VmRSS:")
}

/// A figure of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Proportional set size of this process, in KiB (Linux): a page mapped in N
/// places counts 1/N, so the pages of a compiled image that every microthread
/// maps copy-on-write count once, where `VmRSS` counts them in every mapping.
pub fn proportional_kib() -> Option<u64> {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    let line = rollup.lines().find(|l| l.starts_with("Pss:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Memory per blocked microthread, in KiB.
#[derive(Clone, Copy, Debug)]
pub struct PerMicrothread {
    /// By `VmRSS`: what the peers are measured by.
    pub resident: f64,
    /// By `Pss` (see [`proportional_kib`]).
    pub proportional: f64,
    /// The page tables that map it (`VmPTE`), which neither counts.
    pub page_tables: f64,
}

/// KiB per microthread while `n` microthreads are blocked in `sleep`: the
/// process's size while they wait, less before, over `n`.
pub fn kib_per_blocked_microthread(runtime: &Runtime, n: u32) -> PerMicrothread {
    kib_per_blocked_microthread_and(runtime, n, || ()).0
}

/// Time per spawn→join of a trivial function, one at a time, by a guest built from
/// Python or JavaScript source (`weft_tests::built_from_source`): its `bench-spawn N`
/// mode prints `elapsed_ns` for `n` of them, after one to warm up.
pub fn other_language_spawn_join(runtime: &Runtime, wasm: &std::path::Path, n: u32) -> Duration {
    let program = runtime.load(wasm).expect("load the guest");
    let out = OutputBuffer::new();
    let status = program
        .run(
            &RunOptions::new()
                .args(["bench-spawn".to_string(), n.to_string()])
                .stdout(out.clone()),
        )
        .expect("run");
    let printed = out.to_string_lossy();
    assert_eq!(status, ExitStatus::Exited(0), "{printed}");
    elapsed(&printed).unwrap_or_else(|| panic!("no elapsed_ns in {printed}")) / n
}

/// KiB per microthread while `n` microthreads of a guest built from Python or
/// JavaScript source sleep (its `bench-sleepers N MS` mode): as
/// [`kib_per_blocked_microthread`].
pub fn other_language_kib_per_blocked(runtime: &Runtime, wasm: &std::path::Path, n: u32) -> PerMicrothread {
    let program = runtime.load(wasm).expect("load the guest");
    // Warm: the pool's first slots, the compiled code.
    let _ = other_language_spawn_join(runtime, wasm, 10);
    let ms = 5000 + u64::from(n) * 5;
    blocked_sizes(
        &program,
        &["bench-sleepers".to_string(), n.to_string(), ms.to_string()],
        n,
        || (),
    )
    .0
}

/// [`kib_per_blocked_microthread`], and what `probe` returns before the
/// microthreads are spawned and while they are all blocked (e.g. [`smaps_by_mapping`]).
pub fn kib_per_blocked_microthread_and<T>(
    runtime: &Runtime,
    n: u32,
    probe: impl Fn() -> T,
) -> (PerMicrothread, T, T) {
    let program = runtime.load(weft_tests::guest("bench")).expect("load");
    // One run first, so that code, the pool and the allocator are warm.
    let _ = measured(runtime, &["spawn".into(), "100".into()]);
    // Long enough that the first sleepers still sleep when the last one is up
    // (bringing up 100k fresh pool slots takes seconds).
    let ms = 3000 + u64::from(n) / 2;
    blocked_sizes(
        &program,
        &["sleepers".to_string(), n.to_string(), ms.to_string()],
        n,
        probe,
    )
}

/// The process's sizes before and while `program`, run with `args`, has `n`
/// microthreads asleep, over `n`; and what `probe` returns then.
fn blocked_sizes<T>(
    program: &weft::Program,
    args: &[String],
    n: u32,
    probe: impl Fn() -> T,
) -> (PerMicrothread, T, T) {
    let sizes = || {
        (
            resident_kib().expect("VmRSS"),
            proportional_kib().expect("Pss"),
            status_kib("VmPTE:").expect("VmPTE"),
        )
    };
    let before = sizes();
    let probed_before = probe();
    let options = RunOptions::new()
        .args(args.iter().cloned())
        .stdout(OutputBuffer::new());
    let run = program.start(&options).expect("start the sleepers");
    // Wait until all `n` are asleep: a spawn returns before its instance exists.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let asleep = run
            .microthreads()
            .iter()
            .filter(|m| matches!(m.state, MicrothreadState::Sleeping { .. }))
            .count();
        if asleep >= n as usize {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {asleep} of {n} sleepers are asleep after 300 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (peak, probed_peak) = (sizes(), probe());
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    let per = PerMicrothread {
        resident: peak.0.saturating_sub(before.0) as f64 / f64::from(n),
        proportional: peak.1.saturating_sub(before.1) as f64 / f64::from(n),
        page_tables: peak.2.saturating_sub(before.2) as f64 / f64::from(n),
    };
    (per, probed_before, probed_peak)
}

/// This process's mappings grouped by what they are (`/proc/self/smaps`, Linux): for
/// each group, its number of mappings and their Pss and private KiB. A mapping of a
/// file is grouped by the file's name; an anonymous one by its size and permissions
/// (a pool's slots are mappings of one size each).
pub fn smaps_by_mapping() -> BTreeMap<String, MappingGroup> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").expect("/proc/self/smaps");
    let mut groups: BTreeMap<String, MappingGroup> = BTreeMap::new();
    let mut current: Option<String> = None;
    let field = |line: &str| -> u64 {
        line.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        {
            let perms = words.next().unwrap_or("");
            let name = words.nth(3).unwrap_or("");
            let key = if name.is_empty() {
                format!("anon {perms} {} KiB", (end - start) >> 10)
            } else {
                format!("{name} {perms}")
            };
            groups.entry(key.clone()).or_default().mappings += 1;
            current = Some(key);
        } else if let Some(key) = &current {
            let group = groups.get_mut(key).expect("the group of this mapping");
            if first == "Pss:" {
                group.pss += field(line);
            } else if first == "Private_Clean:" || first == "Private_Dirty:" {
                group.private += field(line);
            }
        }
    }
    groups
}

/// One group of [`smaps_by_mapping`].
#[derive(Clone, Copy, Debug, Default)]
pub struct MappingGroup {
    /// How many mappings.
    pub mappings: u64,
    /// Their Pss, KiB.
    pub pss: u64,
    /// Their private pages, KiB.
    pub private: u64,
}

/// Lateness of 1 ms sleeps beside a CPU hog that never calls the host, on `runtime`
/// (the `fairness` example): (p50, p99, max) in ms. `hog_iterations` 0 measures the
/// idle sleeper.
pub fn sleep_lateness(runtime: &Runtime, hog_iterations: u64, sleeps: u32) -> (f64, f64, f64) {
    let program = runtime.load(weft_tests::guest("fairness")).expect("load");
    let out = OutputBuffer::new();
    let options = RunOptions::new()
        .args([hog_iterations.to_string(), sleeps.to_string()])
        .stdout(out.clone());
    assert_eq!(program.run(&options).expect("run"), ExitStatus::Exited(0));
    let text = out.to_string_lossy();
    if hog_iterations > 0 {
        let sleeper = text.find("sleeper done").expect("sleeper done");
        let hog = text.find("hog done").expect("hog done");
        assert!(
            sleeper < hog,
            "the hog ended before the sleeper: the figures would not be beside it"
        );
    }
    let line = text
        .lines()
        .find(|l| l.starts_with("lateness"))
        .expect("a lateness line");
    let num = |key: &str| -> f64 {
        let rest = &line[line.find(key).expect(key) + key.len()..];
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };
    (num("p50"), num("p99"), num("max"))
}

/// How the application side of a host ↔ guest round trip waits.
#[derive(Clone, Copy, Debug)]
pub enum HostSide {
    /// A plain thread: `send_blocking` and `recv_blocking`.
    Thread,
    /// A task on a current-thread tokio runtime: `send().await` and `recv().await`.
    Tokio,
}

/// Time per round trip of a u64 from the application to a guest microthread and
/// back, over two rendezvous host channels (the `bench` guest's `echo`), `n` round
/// trips after one that warms up. The run is started once and not counted.
pub fn host_round_trip(runtime: &Runtime, n: u64, side: HostSide) -> Duration {
    let program = runtime
        .load(weft_tests::guest("bench"))
        .expect("load the bench guest");
    let (to_guest, guest_in) = weft::channel::<u64>(0);
    let (guest_out, from_guest) = weft::channel::<u64>(0);
    let options = RunOptions::new()
        .args(["echo", "0"])
        .stdout(OutputBuffer::new())
        .receiver("in", guest_in)
        .sender("out", guest_out);
    let run = program.start(&options).expect("start the echo run");
    let elapsed = match side {
        HostSide::Thread => {
            let trip = |v: u64| {
                to_guest.send_blocking(v).expect("the guest receives");
                assert_eq!(from_guest.recv_blocking().expect("the guest answers"), v + 1);
            };
            trip(0);
            let start = Instant::now();
            (1..=n).for_each(trip);
            start.elapsed()
        }
        HostSide::Tokio => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(async {
                let trip = |v: u64| {
                    let (to_guest, from_guest) = (&to_guest, &from_guest);
                    async move {
                        to_guest.send(v).await.expect("the guest receives");
                        assert_eq!(from_guest.recv().await.expect("the guest answers"), v + 1);
                    }
                };
                trip(0).await;
                let start = Instant::now();
                for v in 1..=n {
                    trip(v).await;
                }
                start.elapsed()
            }),
    };
    drop(to_guest);
    assert_eq!(run.wait(), ExitStatus::Exited(0), "the echo guest failed");
    elapsed / n as u32
}

/// Time per round trip of a u64 between two plain threads over two rendezvous
/// `std::sync::mpsc` channels: what waking a thread and being woken costs on this
/// machine, the floor under [`host_round_trip`] (whose two sides are two threads too).
pub fn thread_round_trip(n: u64) -> Duration {
    let (to_echo, echo_in) = std::sync::mpsc::sync_channel::<u64>(0);
    let (echo_out, back) = std::sync::mpsc::sync_channel::<u64>(0);
    let echo = std::thread::spawn(move || {
        for v in echo_in {
            echo_out.send(v + 1).expect("the timing thread receives");
        }
    });
    let trip = |v: u64| {
        to_echo.send(v).expect("the echo thread receives");
        assert_eq!(back.recv().expect("the echo thread answers"), v + 1);
    };
    trip(0);
    let start = Instant::now();
    (1..=n).for_each(trip);
    let elapsed = start.elapsed();
    drop(to_echo);
    echo.join().expect("the echo thread");
    elapsed / n as u32
}

/// Wall time of one run of the `bench` guest's `mode n`, measured by the host from
/// start to end; deterministic under `seed` if given (where the guest's own clock is
/// virtual, so only the host can time it).
fn run_time(runtime: &Runtime, mode: &str, n: u64, seed: Option<u64>) -> Duration {
    let program = runtime
        .load(weft_tests::guest("bench"))
        .expect("load the bench guest");
    let mut options = RunOptions::new()
        .args([mode.to_string(), n.to_string()])
        .stdout(OutputBuffer::new());
    if let Some(seed) = seed {
        options = options.deterministic(seed);
    }
    let start = Instant::now();
    let status = program.run(&options).expect("run");
    let elapsed = start.elapsed();
    assert_eq!(status, ExitStatus::Exited(0), "bench {mode} {n} failed");
    elapsed
}

/// Time per unit of the `bench` guest's `mode` (`pingpong`: a round trip; `ring`: a
/// hop), timed by the host, deterministic under `seed` if given: the difference
/// between runs of `n` and `n / 4` units, over `3n / 4`, so that the run's start
/// and the workload's set-up cancel out.
pub fn host_timed(runtime: &Runtime, mode: &str, n: u64, seed: Option<u64>) -> Duration {
    let long = run_time(runtime, mode, n, seed);
    let short = run_time(runtime, mode, n / 4, seed);
    long.saturating_sub(short) / u32::try_from(n - n / 4).expect("n fits a u32")
}

/// What `weft test` does, as the library does it: `count` deterministic runs of a
/// small racy guest (two clients of a counter, `deterministic racy 2 1000`), one seed
/// each, on `jobs` threads. Returns seeds per second.
pub fn seeds_per_second(runtime: &Runtime, count: u64, jobs: usize) -> f64 {
    let program = runtime
        .load(weft_tests::guest("deterministic"))
        .expect("load the deterministic guest");
    let next = std::sync::atomic::AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if seed >= count {
                        return;
                    }
                    let options = RunOptions::new()
                        .args(["racy", "2", "1000"])
                        .stdout(OutputBuffer::new())
                        .deterministic(seed);
                    match program.run(&options).expect("run") {
                        ExitStatus::Exited(0 | 1) => {}
                        other => panic!("seed {seed}: {other:?}"),
                    }
                }
            });
        }
    });
    count as f64 / start.elapsed().as_secs_f64()
}

/// Time per round trip of a 64-byte message through the `echo-server` example, from a
/// client thread of this process over loopback, one connection, `n` round trips
/// after one that warms up (the server's start is not counted).
pub fn echo_round_trip(runtime: &Runtime, n: u32) -> Duration {
    let program = runtime
        .load(weft_tests::guest("echo-server"))
        .expect("load the echo server");
    let out = OutputBuffer::new();
    let options = RunOptions::new()
        .args(["127.0.0.1:0"])
        .stdout(out.clone())
        .listen(weft::net::Grant::parse("127.0.0.1:*").expect("a grant"));
    let run = program.start(&options).expect("start the echo server");
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        let text = out.to_string_lossy();
        if let Some(addr) = text
            .lines()
            .find_map(|l| l.strip_prefix("echo-server: listening on "))
        {
            break addr.trim().to_string();
        }
        assert!(Instant::now() < deadline, "the echo server did not start: {text}");
        std::thread::sleep(Duration::from_millis(2));
    };
    let per_trip = time_echo(&addr, n);
    run.cancel();
    per_trip
}

/// Time per round trip of a 64-byte message to the echo server at `addr`, over one
/// connection, `n` round trips after one that warms up.
fn time_echo(addr: &str, n: u32) -> Duration {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the echo server");
    s.set_nodelay(true).expect("nodelay");
    let msg = [42u8; 64];
    let mut back = [0u8; 64];
    let mut trip = || {
        s.write_all(&msg).expect("write");
        s.read_exact(&mut back).expect("read");
    };
    trip();
    let start = Instant::now();
    (0..n).for_each(|_| trip());
    start.elapsed() / n
}

/// [`echo_round_trip`] against a native echo server: a std thread serving the
/// connection with blocking reads and writes. The floor under weft's figure.
pub fn native_echo_round_trip(n: u32) -> Duration {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("its address");
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("the client");
        let mut buf = [0u8; 16 << 10];
        while let Ok(n @ 1..) = s.read(&mut buf) {
            if s.write_all(&buf[..n]).is_err() {
                return;
            }
        }
    });
    // The client's connection is closed when timing ends: the server thread ends.
    let per_trip = time_echo(&addr.to_string(), n);
    server.join().expect("the native server");
    per_trip
}

/// Where a spawned microthread's time goes, in ns each: instantiation (store and
/// instance), running its function, and dropping its store; and what is left of a
/// whole spawn + run + join (the spawn call, scheduling, the join).
#[derive(Clone, Copy, Debug)]
pub struct SpawnPhases {
    /// From the task's start to its instance ready: a store, an instance.
    pub instantiate: f64,
    /// The entry call: the function, and the argument and result crossing.
    pub run: f64,
    /// Dropping the store: the instance goes back to the pool.
    pub drop: f64,
    /// A whole spawn + run + join as the guest times it, with the events on.
    pub total: f64,
}

mod phases {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Mutex, OnceLock};
    use std::time::Instant;

    use tracing::field::{Field, Visit};
    use tracing_subscriber::layer::{Context, Layer};

    /// The phase events weft emits (target `weft::microthread`), in order.
    pub(crate) const NAMES: [&str; 4] = ["instantiating", "instantiated", "returned", "dropped"];

    /// When each microthread reached each phase, while recording.
    #[derive(Default)]
    pub(crate) struct Recorder {
        pub(crate) on: AtomicBool,
        pub(crate) seen: Mutex<HashMap<u64, [Option<Instant>; 4]>>,
    }

    pub(crate) fn recorder() -> &'static Recorder {
        static RECORDER: OnceLock<Recorder> = OnceLock::new();
        RECORDER.get_or_init(Recorder::default)
    }

    struct Id(Option<u64>);

    impl Visit for Id {
        fn record_u64(&mut self, field: &Field, value: u64) {
            if field.name() == "id" {
                self.0 = Some(value);
            }
        }
        fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
    }

    /// Listens to the phase events only: every other callsite stays disabled, so
    /// the rest of the table measures weft as if no subscriber were installed.
    pub(crate) struct Phases;

    impl<S: tracing::Subscriber> Layer<S> for Phases {
        fn register_callsite(
            &self,
            meta: &'static tracing::Metadata<'static>,
        ) -> tracing::subscriber::Interest {
            if meta.target() == "weft::microthread" && NAMES.contains(&meta.name()) {
                tracing::subscriber::Interest::always()
            } else {
                tracing::subscriber::Interest::never()
            }
        }

        fn enabled(&self, meta: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
            meta.target() == "weft::microthread" && NAMES.contains(&meta.name())
        }

        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            let recorder = recorder();
            if !recorder.on.load(Ordering::Relaxed) {
                return;
            }
            let now = Instant::now();
            let Some(phase) = NAMES.iter().position(|n| *n == event.metadata().name()) else {
                return;
            };
            let mut id = Id(None);
            event.record(&mut id);
            if let Some(id) = id.0 {
                let mut seen = recorder.seen.lock().unwrap_or_else(|e| e.into_inner());
                seen.entry(id).or_default()[phase] = Some(now);
            }
        }
    }
}

/// Time the phases of `n` spawns (the `spawn` workload), listening to weft's trace
/// events for them. Installs a global subscriber for those events on first use:
/// call it after the other measurements. `None` if weft emitted no phase events
/// (built with the `no-tracing` feature).
pub fn spawn_phases(runtime: &Runtime, n: u64) -> Option<SpawnPhases> {
    use tracing_subscriber::layer::SubscriberExt;
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(phases::Phases);
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
    });
    let recorder = phases::recorder();
    recorder.seen.lock().unwrap_or_else(|e| e.into_inner()).clear();
    recorder.on.store(true, std::sync::atomic::Ordering::Relaxed);
    let total = measured(runtime, &["spawn".to_string(), n.to_string()]);
    recorder.on.store(false, std::sync::atomic::Ordering::Relaxed);
    let seen = std::mem::take(&mut *recorder.seen.lock().unwrap_or_else(|e| e.into_inner()));
    let mut sums = [0f64; 3];
    let mut count = 0u32;
    for times in seen.values() {
        if let [Some(a), Some(b), Some(c), Some(d)] = times {
            sums[0] += (*b - *a).as_nanos() as f64;
            sums[1] += (*c - *b).as_nanos() as f64;
            sums[2] += (*d - *c).as_nanos() as f64;
            count += 1;
        }
    }
    if count == 0 {
        return None;
    }
    let per = |s: f64| s / f64::from(count);
    Some(SpawnPhases {
        instantiate: per(sums[0]),
        run: per(sums[1]),
        drop: per(sums[2]),
        total: total.as_nanos() as f64 / n as f64,
    })
}

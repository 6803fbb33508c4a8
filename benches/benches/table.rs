//! Every performance goal of weft in one table: spawn, a restart, yield, ping-pong, a host ↔ guest
//! round trip, thread-ring, deterministic mode's cost and `weft test`'s seeds per second,
//! memory per blocked microthread, fuel cost, fairness, multi-core scaling, the
//! cluster's remote channels beside raw NATS through a local nats-server (which it
//! needs: see `scripts/nats-server.sh`), the cost of a second worker, and guests in
//! Python and JavaScript (built with the release `weft`: `cargo build --release -p
//! weft`, and the tools of `scripts/guest-tools.sh`). Each figure is the median of `WEFT_BENCH_RUNS` runs
//! (default 3) of a real guest (`tests/guests/src/bin/bench.rs`) that times itself.
//!
//! `cargo bench -p weft-benches --bench table`. With `PEERS_RAW=file` (the raw
//! output of `shared/peers/run.sh`, which `scripts/bench-vs-peers.sh` produces in the
//! same sitting) the peers' figures and weft's ratio to each are printed beside.

use std::collections::BTreeMap;
use weft::{Preemption, Runtime};
use weft_benches::cluster::{MapNodes, SpawnJoin, SpawnNodes, remote_ping_pong, remote_stream};
use weft_benches::nats_floor::{publish_with_ack_window, request_reply_round_trip};
use weft_benches::{
    HostSide, SpawnPhases, echo_round_trip, host_round_trip, host_timed, kib_per_blocked_microthread,
    measured, native_echo_round_trip, other_language_kib_per_blocked, other_language_spawn_join, per_run,
    seeds_per_second, sleep_lateness, spawn_phases, thread_round_trip,
};
use weft_tests::nats::NatsServer;

fn runtime(workers: usize, preemption: Preemption, max: u32) -> Result<Runtime, weft::Error> {
    Runtime::builder()
        .cache_dir(Some(weft_tests::cache_dir()))
        .workers(workers)
        .preemption(preemption)
        .max_microthreads(max)
        .build()
}

/// The calls of the cluster's parallel_map figure, and the rounds of a hash each
/// (about 35 ms on this machine, so that the NATS round trips weigh little).
const MAP_CALLS: u32 = 40;
const MAP_ROUNDS: u64 = 16_000_000;

fn default_slice() -> Preemption {
    Preemption::Fuel {
        slice: weft::DEFAULT_FUEL_SLICE,
    }
}

/// Median, min and max of `runs` measurements.
#[derive(Clone, Copy)]
struct Stat {
    median: f64,
    min: f64,
    max: f64,
}

fn stat(mut v: Vec<f64>) -> Stat {
    v.sort_by(f64::total_cmp);
    Stat {
        median: v[v.len() / 2],
        min: v[0],
        max: v[v.len() - 1],
    }
}

fn repeat(runs: usize, mut f: impl FnMut() -> f64) -> Stat {
    stat((0..runs).map(|_| f()).collect())
}

/// Two measurements to compare, taken in turn (a, b, a, b, …) so that a change of
/// the machine's speed during the runs (it happens here, within minutes) weighs on
/// both alike.
fn paired(runs: usize, mut a: impl FnMut() -> f64, mut b: impl FnMut() -> f64) -> (Stat, Stat) {
    let (mut va, mut vb) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        va.push(a());
        vb.push(b());
    }
    (stat(va), stat(vb))
}

/// Nanoseconds per unit of a guest workload `mode n` on `rt`.
fn per_unit(rt: &Runtime, mode: &str, n: u64) -> f64 {
    measured(rt, &[mode.to_string(), n.to_string()]).as_nanos() as f64 / n as f64
}

fn fmt(x: f64) -> String {
    if x >= 100.0 {
        let s = format!("{x:.0}");
        // Thousands separators.
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn cell(s: Stat) -> String {
    if s.min == s.max {
        fmt(s.median)
    } else {
        format!("{} [{}–{}]", fmt(s.median), fmt(s.min), fmt(s.max))
    }
}

/// The peers' figures, from the raw output of `peers/run.sh`: (peer, workload) →
/// runs, each a list of fields.
struct Peers(BTreeMap<(String, String), Vec<Vec<f64>>>);

const PEERS: [&str; 4] = ["go", "erlang", "tokio", "gevent"];

impl Peers {
    fn load() -> Option<Peers> {
        let path = std::env::var_os("PEERS_RAW").filter(|p| !p.is_empty())?;
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("PEERS_RAW {}: {e}; peers left out", path.to_string_lossy());
                return None;
            }
        };
        let mut map: BTreeMap<(String, String), Vec<Vec<f64>>> = BTreeMap::new();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if words.next() != Some("run") {
                continue;
            }
            let (Some(_run), Some(peer), Some(what)) = (words.next(), words.next(), words.next()) else {
                continue;
            };
            let fields = words.map(|w| w.parse().unwrap_or(f64::NAN)).collect();
            map.entry((peer.into(), what.into())).or_default().push(fields);
        }
        Some(Peers(map))
    }

    /// Median over runs of field `i` of `what`.
    fn get(&self, peer: &str, what: &str, i: usize) -> Option<f64> {
        let v: Vec<f64> = self
            .0
            .get(&(peer.to_string(), what.to_string()))?
            .iter()
            .filter_map(|f| f.get(i).copied())
            .filter(|x| x.is_finite())
            .collect();
        (!v.is_empty()).then(|| stat(v).median)
    }
}

/// How a row reads a peer's figure for its workload.
type PeerFigure = Box<dyn Fn(&Peers, &str) -> Option<f64>>;

/// A row: what, weft's figure (for ratios), its cell, the goal, whether met, and
/// how to read a peer's figure for the same workload.
struct Row {
    what: String,
    weft: Option<f64>,
    cell: String,
    goal: String,
    met: bool,
    peer: Option<PeerFigure>,
}

fn row(what: &str, s: Stat, goal: &str, met: bool) -> Row {
    Row {
        what: what.into(),
        weft: Some(s.median),
        cell: cell(s),
        goal: goal.into(),
        met,
        peer: None,
    }
}

/// A row of a ratio of weft's own figures: no peer to compare with.
fn ratio_row(what: String, cell: String, goal: &str, met: bool) -> Row {
    Row {
        what,
        weft: None,
        cell,
        goal: goal.into(),
        met,
        peer: None,
    }
}

impl Row {
    /// Compare with field `field` of the peers' workload `what`.
    fn with_peer(mut self, what: &'static str, field: usize) -> Row {
        self.peer = Some(Box::new(move |p, peer| p.get(peer, what, field)));
        self
    }
}

/// Nanoseconds per unit of `mode n` on 1 and 2 workers, taken in turn: two rows,
/// the first with the goal (at most `goal` ns) and the peers' figure for `mode`.
fn on_one_and_two(
    rows: &mut Vec<Row>,
    runs: usize,
    (rt1, rt2): (&Runtime, &Runtime),
    what: &str,
    (mode, n): (&'static str, u64),
    goal: f64,
) -> (Stat, Stat) {
    let (one, two) = paired(runs, || per_unit(rt1, mode, n), || per_unit(rt2, mode, n));
    let goal_cell = format!("≤ {}", fmt(goal));
    rows.push(row(&format!("{what} (1 worker)"), one, &goal_cell, one.median <= goal).with_peer(mode, 0));
    rows.push(row(&format!("{what} (2 workers)"), two, "", true));
    (one, two)
}

/// Guests built from Python and JavaScript source (`weft build`, with the tools
/// `scripts/guest-tools.sh` installs, and the release `weft`): a spawn→join one at a
/// time on 1 worker, beside Rust's (`rust_latency`), and the memory of 1,000
/// asleep. Each microthread is a whole interpreter in a fresh instance.
/// `WEFT_TABLE_ONLY=languages` runs only these rows.
fn other_languages(rows: &mut Vec<Row>, runs: usize, rust_latency: Option<Stat>) {
    for (language, source) in [
        ("Python", "tests/python/sdk.py"),
        ("JavaScript", "tests/js/sdk.js"),
    ] {
        let wasm = weft_tests::built_from_source(source);
        let bytes = std::fs::read(&wasm).expect("read the guest");
        let sized = |workers: usize, max: u32| {
            Runtime::builder()
                .cache_dir(Some(weft_tests::cache_dir()))
                .workers(workers)
                .preemption(default_slice())
                .max_microthreads(max)
                .pool_for(&bytes)
                .build()
                .expect("runtime")
        };
        let rt = sized(1, 16);
        let latency = repeat(runs, || {
            other_language_spawn_join(&rt, &wasm, 200).as_nanos() as f64
        });
        drop(rt);
        rows.push(row(
            &format!("{language} guest: spawn→join latency, one at a time, ns (1 worker)"),
            latency,
            "",
            true,
        ));
        if let Some(rust) = rust_latency {
            rows.push(ratio_row(
                format!("{language} ÷ Rust, spawn→join latency (1 worker)"),
                format!("{:.0}×", latency.median / rust.median),
                "",
                true,
            ));
        }
        let rt = sized(2, 1_010);
        let per = other_language_kib_per_blocked(&rt, &wasm, 1_000);
        drop(rt);
        rows.push(row(
            &format!("{language} guest: KiB per blocked microthread, 1,000 asleep: Pss + page tables"),
            stat(vec![per.proportional + per.page_tables]),
            "",
            true,
        ));
    }
}

/// The wasmtime to serve beside weft: `$WASMTIME`, or `target/bench-tools/bin/wasmtime`
/// (`scripts/bench-serve.sh` installs wasmtime-cli there at the version weft pins),
/// or `wasmtime` on the PATH; with its version, which must be weft's.
fn wasmtime_for_serve() -> Result<std::path::PathBuf, String> {
    let candidates = [
        std::env::var_os("WASMTIME").map(std::path::PathBuf::from),
        Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-tools/bin/wasmtime")),
        Some("wasmtime".into()),
    ];
    for candidate in candidates.into_iter().flatten() {
        let Ok(out) = std::process::Command::new(&candidate).arg("--version").output() else {
            continue;
        };
        let version = String::from_utf8_lossy(&out.stdout).into_owned();
        if version.starts_with("wasmtime 48.") {
            return Ok(candidate);
        }
        return Err(format!(
            "{} is {}, not wasmtime 48 (weft's): scripts/bench-serve.sh installs it",
            candidate.display(),
            version.trim()
        ));
    }
    Err("no wasmtime: scripts/bench-serve.sh installs wasmtime-cli 48.0.8 in target/bench-tools".into())
}

/// `weft serve` against `wasmtime serve` and a native hyper hello, in turn: a
/// hello handler (the wstd guest `http-handler`, built as a user builds it:
/// [`http::plain_handler`]) under `wrk` (2 threads, 50 connections, 10 s after 2 s
/// of warm-up: requests/s, p50 and p99 at each server's most), and under the same
/// open-loop load for all ([`http::paced`], [`PACED_RATE`]: p50 and p99); then both
/// again while one request spins in the handler. Needs the release `weft`, `wrk`
/// (apt-get install wrk) and wasmtime 48 ([`wasmtime_for_serve`]).
/// `WEFT_TABLE_ONLY=serve` runs only these rows.
fn served(rows: &mut Vec<Row>, runs: usize) {
    use weft_benches::http;
    let weft = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/weft");
    assert!(
        weft.exists(),
        "{} is not built: run `cargo build --release -p weft` first",
        weft.display()
    );
    let wasmtime = wasmtime_for_serve().unwrap_or_else(|e| panic!("{e}"));
    let hyper = std::path::PathBuf::from(env!("CARGO_BIN_EXE_hyper-hello"));
    let wasm = http::plain_handler();
    let load = |server: &http::Server| {
        http::wrk(server.addr, 50, 2);
        let load = http::wrk(server.addr, 50, 10);
        assert_eq!(load.errors, 0, "{load:?}");
        load
    };
    let mut figures: BTreeMap<&str, Vec<http::Load>> = BTreeMap::new();
    // The same load for both, below what either serves at most.
    let paced = |server: &http::Server| {
        let load = http::paced(server.addr, 50, PACED_RATE, 10);
        assert_eq!(load.errors, 0, "{load:?}");
        load
    };
    for run in 0..runs {
        eprintln!("serve, run {}/{runs}…", run + 1);
        let server = http::weft_serve(&weft, &wasm, &["--request-timeout", "10m"]);
        figures.entry("weft").or_default().push(load(&server));
        figures.entry("weft paced").or_default().push(paced(&server));
        let spinning = http::spinning(server.addr, "/spin");
        figures.entry("weft spin").or_default().push(load(&server));
        figures.entry("weft paced spin").or_default().push(paced(&server));
        drop((spinning, server));
        let server = http::wasmtime_serve(&wasmtime, &wasm);
        figures.entry("wasmtime").or_default().push(load(&server));
        figures.entry("wasmtime paced").or_default().push(paced(&server));
        let spinning = http::spinning(server.addr, "/spin");
        figures.entry("wasmtime spin").or_default().push(load(&server));
        figures
            .entry("wasmtime paced spin")
            .or_default()
            .push(paced(&server));
        drop((spinning, server));
        let server = http::hyper_hello(&hyper);
        figures.entry("hyper").or_default().push(load(&server));
        figures.entry("hyper paced").or_default().push(paced(&server));
    }
    let of = |key: &str, f: fn(&http::Load) -> f64| stat(figures[key].iter().map(f).collect());
    let rps = |l: &http::Load| l.requests_per_second;
    let p50 = |l: &http::Load| l.p50_ms;
    let p99 = |l: &http::Load| l.p99_ms;
    for (key, name) in [
        ("weft", "weft serve"),
        ("wasmtime", "wasmtime serve"),
        ("hyper", "native hyper"),
    ] {
        rows.push(row(
            &format!("HTTP hello, 50 connections (wrk): {name}, requests/s"),
            of(key, rps),
            "",
            true,
        ));
        rows.push(row(&format!("… {name}, p50 ms"), of(key, p50), "", true));
        rows.push(row(&format!("… {name}, p99 ms"), of(key, p99), "", true));
    }
    let ratio = of("weft", rps).median / of("wasmtime", rps).median;
    rows.push(ratio_row(
        "weft serve ÷ wasmtime serve, requests/s".into(),
        format!("{ratio:.2}×"),
        "≥ 1.0×",
        ratio >= 1.0,
    ));
    for (key, name) in [("weft spin", "weft serve"), ("wasmtime spin", "wasmtime serve")] {
        rows.push(row(
            &format!("HTTP hello while one request spins: {name}, requests/s"),
            of(key, rps),
            "",
            true,
        ));
        rows.push(row(&format!("… {name}, p99 ms"), of(key, p99), "", true));
    }
    let rate = PACED_RATE;
    for (key, name) in [
        ("weft paced", "weft serve"),
        ("wasmtime paced", "wasmtime serve"),
        ("hyper paced", "native hyper"),
        ("weft paced spin", "weft serve, one request spinning"),
        ("wasmtime paced spin", "wasmtime serve, one request spinning"),
    ] {
        rows.push(row(
            &format!("HTTP hello at {rate} requests/s (open loop, 50 connections): {name}, p50 ms"),
            of(key, p50),
            "",
            true,
        ));
        rows.push(row(&format!("… {name}, p99 ms"), of(key, p99), "", true));
    }
    let (weft_p99, wasmtime_p99) = (
        of("weft paced spin", p99).median,
        of("wasmtime paced spin", p99).median,
    );
    rows.push(ratio_row(
        format!("weft serve's p99 ÷ wasmtime serve's at {rate} requests/s, one request spinning"),
        format!("{:.2}×", weft_p99 / wasmtime_p99),
        "< 1×",
        weft_p99 < wasmtime_p99,
    ));
}

/// The rate of the open-loop rows (`http::paced`): below what `wasmtime serve`
/// serves at most here (about 4,600 requests/s), so that both servers see the
/// same load.
const PACED_RATE: u32 = 2_000;

/// What watching a run costs it: ping-pong and spawn→join on 1 worker while a
/// thread reads the runtime's metrics and its live view every 100 ms (as a
/// dashboard does twice a second, and Prometheus every 15 s or so), against the
/// same with nothing reading, taken in turn. weft counts what the metrics show
/// whether or not anyone reads them (each run's counters, a lifetime histogram,
/// the workers' idle spells): its cost is in both columns; that part is measured
/// apart, against the weft before it (see the README). `WEFT_TABLE_ONLY=metrics`
/// runs only these rows.
fn observed(rows: &mut Vec<Row>, runs: usize) {
    let rt = runtime(1, default_slice(), 1_010).expect("runtime");
    let watching = |f: &mut dyn FnMut() -> f64| -> f64 {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let metrics = rt.metrics().clone();
        let reader = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut bytes = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    bytes += metrics.encode().len();
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                bytes
            })
        };
        let x = f();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().expect("the reader") > 0);
        x
    };
    for (what, mode, n) in [
        ("ping-pong, ns per round trip", "pingpong", 300_000u64),
        ("spawn→join latency, one at a time, ns", "spawn-join", 50_000),
    ] {
        let (off, on) = paired(
            runs,
            || per_unit(&rt, mode, n),
            || watching(&mut || per_unit(&rt, mode, n)),
        );
        rows.push(row(
            &format!("{what}, nothing reading the metrics (1 worker)"),
            off,
            "",
            true,
        ));
        rows.push(row(
            &format!("{what}, metrics read every 100 ms (1 worker)"),
            on,
            "",
            true,
        ));
        let extra = on.median / off.median - 1.0;
        rows.push(ratio_row(
            format!("{what}: extra with the metrics read"),
            format!("{:+.1} %", extra * 100.0),
            "≤ 3 %",
            extra <= 0.03,
        ));
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a name filter is not supported here.
    let runs: usize = std::env::var("WEFT_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1);
    let peers = Peers::load();
    let mut rows: Vec<Row> = Vec::new();
    if std::env::var("WEFT_TABLE_ONLY").is_ok_and(|only| only == "languages") {
        other_languages(&mut rows, runs, None);
        print_table(&rows, peers.as_ref(), runs);
        return;
    }
    if std::env::var("WEFT_TABLE_ONLY").is_ok_and(|only| only == "serve") {
        served(&mut rows, runs);
        print_table(&rows, peers.as_ref(), runs);
        return;
    }
    if std::env::var("WEFT_TABLE_ONLY").is_ok_and(|only| only == "metrics") {
        observed(&mut rows, runs);
        print_table(&rows, peers.as_ref(), runs);
        return;
    }
    // First, while its runtime is the only one: every runtime's pool holds memory
    // mappings, and the kernel's limit on them is per process.
    eprintln!("memory…");
    // 100,000 live microthreads if the kernel's map count allows it, else 10,000.
    let (n, rt_mem) = match runtime(1, default_slice(), 100_010) {
        Ok(rt) => (100_000, rt),
        Err(e) => {
            eprintln!("100k microthreads do not fit ({e}); measuring 10k");
            (10_000, runtime(1, default_slice(), 10_010).expect("runtime"))
        }
    };
    let per = kib_per_blocked_microthread(&rt_mem, n);
    let (mem, pss, pte) = (
        stat(vec![per.resident]),
        stat(vec![per.proportional]),
        stat(vec![per.page_tables]),
    );
    drop(rt_mem);

    let rt1 = runtime(1, default_slice(), 1_010).expect("runtime");
    let rt2 = runtime(2, default_slice(), 1_010).expect("runtime");

    eprintln!("spawn…");
    let rts = (&rt1, &rt2);
    // Performance III's goals for spawn are ratios to Go's spawn throughput: ≤ 8×
    // for throughput, ≤ 3× for latency (3 µs and 1 µs without the peers).
    let go_spawn = peers.as_ref().and_then(|p| p.get("go", "spawn", 0));
    on_one_and_two(
        &mut rows,
        runs,
        rts,
        "spawn throughput: spawn + run + join in waves of 1000, every worker busy, ns each",
        ("spawn", 100_000),
        go_spawn.map_or(3000.0, |go| 8.0 * go),
    );

    eprintln!("spawn latency…");
    // Lever 3 of Performance III: one spawn→join at a time. On one worker there is
    // never an idle moment (the child is ready when its parent blocks), so nothing
    // is made ahead and every store is dropped in place; on two, one worker runs
    // the spawner and its child while the other's core is idle, and makes
    // instances ahead and drops the ended stores: measured with that and without
    // (`RuntimeBuilder::ahead_of_need(false)`), in turn. Go's figure is its spawn
    // throughput (the only spawn it has).
    let rt2_in_place = Runtime::builder()
        .cache_dir(Some(weft_tests::cache_dir()))
        .workers(2)
        .preemption(default_slice())
        .max_microthreads(1_010)
        .ahead_of_need(false)
        .build()
        .expect("runtime");
    let latency1 = repeat(runs, || per_unit(&rt1, "spawn-join", 50_000));
    let (in_place2, latency2) = paired(
        runs,
        || per_unit(&rt2_in_place, "spawn-join", 50_000),
        || per_unit(&rt2, "spawn-join", 50_000),
    );
    drop(rt2_in_place);
    rows.push(
        row(
            "spawn→join latency, one at a time, ns: 1 worker, busy (nothing made ahead, stores dropped in place)",
            latency1,
            "",
            true,
        )
        .with_peer("spawn", 0),
    );
    rows.push(
        row(
            "spawn→join latency, one at a time, ns: 2 workers, one busy and an idle core, nothing done ahead (`ahead_of_need(false)`)",
            in_place2,
            "",
            true,
        )
        .with_peer("spawn", 0),
    );
    let latency_goal = go_spawn.map_or(1000.0, |go| 3.0 * go);
    rows.push(
        row(
            "spawn→join latency, one at a time, ns: 2 workers, one busy and an idle core (instances made ahead, stores dropped by the idle worker)",
            latency2,
            &format!("≤ {} (3× Go)", fmt(latency_goal)),
            latency2.median <= latency_goal,
        )
        .with_peer("spawn", 0),
    );
    rows.push(ratio_row(
        "work done ahead of need ÷ none, spawn→join latency (2 workers)".into(),
        format!("{:.2}×", latency2.median / in_place2.median),
        "",
        true,
    ));

    eprintln!("other languages…");
    other_languages(&mut rows, runs, Some(latency1));

    eprintln!("metrics read…");
    observed(&mut rows, runs);

    eprintln!("restart…");
    // Beside the spawn rows: what a supervised restart costs against a plain spawn.
    let (respawn, restart) = paired(
        runs,
        || per_unit(&rt1, "respawn", 20_000),
        || per_unit(&rt1, "restart", 20_000),
    );
    rows.push(row(
        "a restart by hand: spawn a blocked microthread + cancel + join, ns each (1 worker)",
        respawn,
        "",
        true,
    ));
    rows.push(row(
        "a supervised restart (weft_guest::supervisor, one-for-one): end seen + join + fresh spawn, ns each (1 worker)",
        restart,
        "",
        true,
    ));

    eprintln!("yield…");
    let y = repeat(runs, || per_unit(&rt1, "yield", 1_000_000));
    rows.push(row("`yield_now` round trip, ns", y, "≤ 300", y.median <= 300.0));

    eprintln!("a run…");
    let r = repeat(runs, || per_run(&rt1, 2_000).as_nanos() as f64 / 1000.0);
    rows.push(row(
        "a run of a trivial program: start + wait, µs (1 worker)",
        r,
        "",
        true,
    ));

    eprintln!("ping-pong…");
    let (pp1, pp2) = on_one_and_two(
        &mut rows,
        runs,
        rts,
        "ping-pong, ns per round trip",
        ("pingpong", 300_000),
        500.0,
    );

    // Lever 2 of Performance III: a send and the next receive in one host call.
    let fused_pp = repeat(runs, || per_unit(&rt1, "pingpong-fused", 300_000));
    rows.push(
        row(
            "ping-pong with send_then_recv (a send and the next receive in one host call), ns per round trip (1 worker)",
            fused_pp,
            "",
            true,
        )
        .with_peer("pingpong", 0),
    );
    rows.push(ratio_row(
        "send_then_recv ping-pong ÷ send + recv ping-pong (1 worker)".into(),
        format!("{:.2}×", fused_pp.median / pp1.median),
        "",
        true,
    ));

    // Where a round trip goes: a host call, and a send and a receive that need no
    // switch (one microthread, buffered channel). No goals: a breakdown.
    let call = repeat(runs, || per_unit(&rt1, "hostcall", 1_000_000) / 2.0);
    rows.push(row("breakdown: a trivial host call, ns", call, "", true));
    let on_resource = repeat(runs, || per_unit(&rt1, "resourcecall", 1_000_000));
    rows.push(row(
        "breakdown: a host call on a borrowed resource (a sender's id), as every channel call is, ns",
        on_resource,
        "",
        true,
    ));
    // A host call of each kind: one bound synchronously (it never waits), and an
    // atomic section, whose end is bound `async` (it may yield) but waits for
    // nothing here.
    let try_recv = repeat(runs, || per_unit(&rt1, "tryrecv", 1_000_000));
    rows.push(row(
        "breakdown: a host call that never waits, bound sync (`try_recv` on an empty channel), ns",
        try_recv,
        "",
        true,
    ));
    let atomic = repeat(runs, || per_unit(&rt1, "atomic", 1_000_000));
    rows.push(row(
        "breakdown: an empty atomic section: atomic-begin (sync) + atomic-end (async, nothing due), ns",
        atomic,
        "",
        true,
    ));
    let pair = repeat(runs, || per_unit(&rt1, "selfchan", 1_000_000));
    rows.push(row(
        "breakdown: send + receive, buffered, one microthread (no switch), small message (a u64, by value), ns",
        pair,
        "",
        true,
    ));
    let large = repeat(runs, || per_unit(&rt1, "selfchan-large", 1_000_000));
    rows.push(row(
        "breakdown: the same with a 64-byte message (a list), ns",
        large,
        "",
        true,
    ));

    eprintln!("host ↔ guest…");
    // The application's side of a round trip: from a plain thread and from tokio.
    let (thread, task) = paired(
        runs,
        || host_round_trip(&rt1, 100_000, HostSide::Thread).as_nanos() as f64,
        || host_round_trip(&rt1, 100_000, HostSide::Tokio).as_nanos() as f64,
    );
    rows.push(row(
        "host ↔ guest round trip over host channels, ns: application on a thread (1 worker)",
        thread,
        "",
        true,
    ));
    rows.push(row(
        "host ↔ guest round trip over host channels, ns: application on tokio (1 worker)",
        task,
        "",
        true,
    ));
    let floor = repeat(runs, || thread_round_trip(100_000).as_nanos() as f64);
    rows.push(row(
        "floor: the same round trip between two OS threads (std rendezvous channels), ns",
        floor,
        "",
        true,
    ));

    eprintln!("network…");
    // The echo server's connection microthread sets no TCP_NODELAY: a 64-byte echo
    // is one read and one write, which Nagle does not delay.
    let echo = repeat(runs, || echo_round_trip(&rt1, 20_000).as_nanos() as f64);
    rows.push(row(
        "echo-server round trip over loopback, 64 bytes, one connection, ns (1 worker)",
        echo,
        "",
        true,
    ));
    let native = repeat(runs, || native_echo_round_trip(20_000).as_nanos() as f64);
    rows.push(row(
        "floor: the same round trip to a native thread serving the connection, ns",
        native,
        "",
        true,
    ));

    eprintln!("thread-ring…");
    // 1,000 laps of the 503-member ring.
    let (ring1, ring2) = on_one_and_two(
        &mut rows,
        runs,
        rts,
        "thread-ring, ns per hop",
        ("ring", 503_000),
        250.0,
    );
    let fused_ring = repeat(runs, || per_unit(&rt1, "ring-fused", 503_000));
    rows.push(
        row(
            "thread-ring with send_then_recv (a hop's send and the next receive in one host call), ns per hop (1 worker)",
            fused_ring,
            "",
            true,
        )
        .with_peer("ring", 0),
    );
    rows.push(ratio_row(
        "send_then_recv thread-ring ÷ send + recv thread-ring (1 worker)".into(),
        format!("{:.2}×", fused_ring.median / ring1.median),
        "",
        true,
    ));
    eprintln!("deterministic mode…");
    // Its own thread and seeded choices against the default scheduler, both timed by
    // the host (in deterministic mode the guest's clock is virtual).
    for (what, mode, n) in [
        ("ping-pong, ns per round trip", "pingpong", 200_000),
        ("thread-ring, ns per hop", "ring", 503_000),
    ] {
        let (default, seeded) = paired(
            runs,
            || host_timed(&rt1, mode, n, None).as_nanos() as f64,
            || host_timed(&rt1, mode, n, Some(7)).as_nanos() as f64,
        );
        rows.push(row(
            &format!("deterministic mode: {what}, timed by the host: default scheduler (1 worker)"),
            default,
            "",
            true,
        ));
        rows.push(row(
            &format!("deterministic mode: {what}, timed by the host: deterministic"),
            seeded,
            "",
            true,
        ));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let seeds = repeat(runs, || seeds_per_second(&rt2, 400, cores));
    rows.push(row(
        &format!("deterministic mode: seeds per second, a small racy guest, {cores} at once (weft test)"),
        seeds,
        "",
        true,
    ));

    let ratio_pp = pp2.median / pp1.median;
    let ratio_ring = ring2.median / ring1.median;
    rows.push(ratio_row(
        "2 workers ÷ 1 worker: ping-pong, thread-ring".into(),
        format!("{ratio_pp:.2}×, {ratio_ring:.2}×"),
        "≤ 1.5×",
        ratio_pp <= 1.5 && ratio_ring <= 1.5,
    ));

    rows.push(
        row(
            &format!(
                "resident KiB per microthread blocked in `sleep`, {}k live",
                n / 1000
            ),
            mem,
            "≤ 16, 100k live",
            mem.median <= 16.0 && n == 100_000,
        )
        .with_peer("mem", 0),
    );
    rows.push(row(
        &format!(
            "the same by Pss (a page every microthread maps from the compiled image counts once), {}k live",
            n / 1000
        ),
        pss,
        "",
        true,
    ));
    rows.push(row(
        &format!(
            "the page tables that map it (VmPTE), which neither counts, KiB, {}k live",
            n / 1000
        ),
        pte,
        "",
        true,
    ));
    // Performance III's goal: all a blocked microthread costs, its private pages
    // and the page tables that map them.
    let in_all = pss.median + pte.median;
    rows.push(ratio_row(
        format!(
            "Pss + page tables per blocked microthread, KiB, {}k live",
            n / 1000
        ),
        format!("{in_all:.1}"),
        "≤ 32, 100k live",
        in_all <= 32.0 && n == 100_000,
    ));

    eprintln!("fuel…");
    let metered = runtime(1, Preemption::Fuel { slice: u64::MAX }, 16).expect("runtime");
    let sliced = runtime(1, default_slice(), 16).expect("runtime");
    // Runs of about half a second each.
    for (kernel, n) in [("lcg", 200_000_000u64), ("sieve", 1_000)] {
        let (m, s) = paired(
            runs,
            || per_unit(&metered, kernel, n),
            || per_unit(&sliced, kernel, n),
        );
        let ratio = s.median / m.median;
        rows.push(ratio_row(
            format!("fuel: {kernel}, default slice ÷ metering alone"),
            format!("{ratio:.3}×"),
            "≤ 1.10×",
            ratio <= 1.10,
        ));
    }

    eprintln!("fairness…");
    let idle = sleep_lateness(&rt1, 0, 1000);
    // A hog of ~3 s: the sleeper's 1,000 sleeps all fall beside it.
    let hog = sleep_lateness(&rt1, 3_000_000_000, 1000);
    let above = hog.1 - idle.1;
    let fairness = Row {
        what: "fairness: 1 ms sleeps beside a CPU hog, p50 / p99 / max ms (1 worker)".into(),
        weft: Some(hog.1),
        cell: format!(
            "{:.2} / {:.2} / {:.2} (idle {:.2} / {:.2} / {:.2})",
            hog.0, hog.1, hog.2, idle.0, idle.1, idle.2
        ),
        goal: "p99 ≤ 1 ms above idle".into(),
        met: above <= 1.0,
        peer: None,
    };
    // The peers' p99 of the sleeps due while their hog ran.
    rows.push(fairness.with_peer("fair", 5));

    eprintln!("multi-core…");
    // About a quarter of a second on one worker: short runs measure how soon the
    // second worker wakes, not how the work scales.
    let par = |rt: &Runtime| per_unit(rt, "parallel", 200_000_000);
    let (p1, p2) = paired(runs, || par(&rt1), || par(&rt2));
    let speedup = p1.median / p2.median;
    rows.push(ratio_row(
        "multi-core: 8 compute microthreads (200M LCG steps), 2 workers vs 1".into(),
        format!("{speedup:.2}×"),
        "≥ 1.8×",
        speedup >= 1.8,
    ));

    // Two nodes of a cluster in this process, and the raw NATS floor through the
    // same local nats-server, pair by pair.
    eprintln!("cluster (a local nats-server)…");
    let server = NatsServer::start();
    let ns = |d: std::time::Duration| d.as_nanos() as f64;
    let (raw_rr, remote_pp) = paired(
        runs,
        || ns(request_reply_round_trip(&server, 3_000)),
        || ns(remote_ping_pong(&server, 3_000)),
    );
    rows.push(row(
        "cluster: raw NATS request/reply round trip over loopback (async-nats), ns",
        raw_rr,
        "",
        true,
    ));
    let pp_ratio = remote_pp.median / raw_rr.median;
    rows.push(row(
        "cluster: remote ping-pong round trip, two nodes, capacity-1 channels, ns",
        remote_pp,
        "≤ 1.3× raw request/reply",
        pp_ratio <= 1.3,
    ));
    rows.push(ratio_row(
        "cluster: remote ping-pong ÷ raw request/reply".into(),
        format!("{pp_ratio:.2}×"),
        "≤ 1.3×",
        pp_ratio <= 1.3,
    ));
    let (raw_pub, remote_stream_ns) = paired(
        runs,
        || ns(publish_with_ack_window(&server, 50_000, 64, 16)),
        || ns(remote_stream(&server, 50_000, 64)),
    );
    rows.push(row(
        "cluster: raw NATS publish of 16 bytes, acknowledgement window 64, ns/message",
        raw_pub,
        "",
        true,
    ));
    let throughput = raw_pub.median / remote_stream_ns.median;
    rows.push(row(
        "cluster: remote stream of u64 values, capacity 64 (credit window 64), ns/message",
        remote_stream_ns,
        "≥ 0.5× raw throughput",
        throughput >= 0.5,
    ));
    rows.push(ratio_row(
        "cluster: remote stream throughput ÷ raw publish throughput".into(),
        format!("{throughput:.2}×"),
        "≥ 0.5×",
        throughput >= 0.5,
    ));

    // Spawn on another node: a spawn→join of a trivial function on the other node
    // and on this one, beside the raw request/reply, in turn.
    let spawn_nodes = SpawnNodes::start(&server);
    let (mut rr, mut remote, mut local) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        rr.push(ns(request_reply_round_trip(&server, 2_000)));
        remote.push(spawn_nodes.remote(2_000));
        local.push(spawn_nodes.local(20_000));
    }
    drop(spawn_nodes);
    let of = |v: &[SpawnJoin], f: fn(&SpawnJoin) -> std::time::Duration| {
        stat(v.iter().map(|s| ns(f(s))).collect())
    };
    let (raw_rr, remote_spawn, local_spawn) = (stat(rr), of(&remote, |s| s.whole), of(&local, |s| s.whole));
    let spawn_ratio = remote_spawn.median / raw_rr.median;
    rows.push(row(
        "cluster: raw NATS request/reply round trip over loopback (async-nats), beside the spawns, ns",
        raw_rr,
        "",
        true,
    ));
    rows.push(row(
        "cluster: remote spawn→join of a trivial function on the other node, ns (1 worker each)",
        remote_spawn,
        "≤ 2× raw request/reply",
        spawn_ratio <= 2.0,
    ));
    // The split of the run whose whole is the median (medians of the parts, taken
    // from different runs, need not add up).
    let median_run = remote
        .iter()
        .find(|s| ns(s.whole) == remote_spawn.median)
        .expect("the median is one of the runs");
    rows.push(ratio_row(
        "breakdown: the remote spawn→join's spawn call (to the other node's Started) / join (to its result), ns, of the median run"
            .into(),
        format!(
            "{} / {} of {}",
            fmt(ns(median_run.spawn)),
            fmt(ns(median_run.join)),
            fmt(ns(median_run.whole))
        ),
        "",
        true,
    ));
    rows.push(row(
        "cluster: the same spawn→join on this node (local), one at a time, ns",
        local_spawn,
        "",
        true,
    ));
    rows.push(ratio_row(
        "cluster: remote spawn→join ÷ raw request/reply".into(),
        format!("{spawn_ratio:.2}×"),
        "≤ 2×",
        spawn_ratio <= 2.0,
    ));

    // cluster::parallel_map of a CPU-bound function (about 35 ms a call) on one
    // node and on two, each of one worker, in turn.
    let (one_node, two_nodes) = (MapNodes::start(&server, 1), MapNodes::start(&server, 2));
    let (mut digests, mut spreads) = (Vec::new(), Vec::new());
    let (map1, map2) = {
        let digests = std::cell::RefCell::new(&mut digests);
        paired(
            runs,
            || {
                let m = one_node.map(MAP_CALLS, MAP_ROUNDS);
                digests.borrow_mut().push(m.digest);
                m.elapsed.as_secs_f64() * 1000.0
            },
            || {
                let m = two_nodes.map(MAP_CALLS, MAP_ROUNDS);
                digests.borrow_mut().push(m.digest);
                spreads.push(m.spread);
                m.elapsed.as_secs_f64() * 1000.0
            },
        )
    };
    drop((one_node, two_nodes));
    assert!(
        digests.windows(2).all(|w| w[0] == w[1]),
        "parallel_map gave other results on 1 node and on 2: digests {digests:?}"
    );
    let spread = spreads.last().expect("at least one run");
    let map_speedup = map1.median / map2.median;
    rows.push(row(
        &format!("cluster: parallel_map of {MAP_CALLS} CPU-bound calls, 1 node of 1 worker, ms"),
        map1,
        "",
        true,
    ));
    rows.push(row(
        &format!(
            "cluster: the same on 2 nodes of 1 worker each, ms (calls per node: {})",
            spread
                .iter()
                .map(|(n, c)| format!("{n}={c}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        map2,
        "",
        true,
    ));
    rows.push(ratio_row(
        "cluster: parallel_map throughput, 2 nodes ÷ 1 node".into(),
        format!("{map_speedup:.2}×"),
        "≥ 1.7×",
        map_speedup >= 1.7,
    ));
    drop(server);

    // Last: it installs a global subscriber for weft's phase events (every other
    // event stays disabled).
    eprintln!("spawn phases…");
    let phases: Vec<_> = (0..runs)
        .map(|_| spawn_phases(&rt1, 100_000).expect("phase events (not with --features no-tracing)"))
        .collect();
    let phase = |f: fn(&SpawnPhases) -> f64| stat(phases.iter().map(f).collect());
    let (inst, ran, dropped, total) = (
        phase(|p| p.instantiate),
        phase(|p| p.run),
        phase(|p| p.drop),
        phase(|p| p.total),
    );
    rows.push(ratio_row(
        "breakdown: a spawn's phases, ns each (1 worker): instantiate / run / drop / the rest (spawn call, scheduling, join) of the whole".into(),
        format!(
            "{} / {} / {} / {} of {}",
            fmt(inst.median),
            fmt(ran.median),
            fmt(dropped.median),
            fmt((total.median - inst.median - ran.median - dropped.median).max(0.0)),
            fmt(total.median)
        ),
        "",
        true,
    ));

    // HTTP, when wasmtime (to serve beside) and wrk are here: said when not.
    eprintln!("serve…");
    match wasmtime_for_serve() {
        Ok(_) => served(&mut rows, runs),
        Err(e) => {
            eprintln!("the HTTP rows are left out: {e}");
            rows.push(ratio_row(
                "HTTP hello under wrk".into(),
                format!("left out: {e}"),
                "",
                true,
            ));
        }
    }

    print_table(&rows, peers.as_ref(), runs);
}

fn print_table(rows: &[Row], peers: Option<&Peers>, runs: usize) {
    println!();
    print!("| benchmark | weft | goal | met |");
    if peers.is_some() {
        for p in PEERS {
            print!(" {p} (weft ÷ {p}) |");
        }
    }
    println!();
    print!("|---|---|---|---|");
    if peers.is_some() {
        print!("{}", "---|".repeat(PEERS.len()));
    }
    println!();
    for r in rows {
        let met = if r.goal.is_empty() {
            ""
        } else if r.met {
            "yes"
        } else {
            "no"
        };
        print!("| {} | {} | {} | {met} |", r.what, r.cell, r.goal);
        if let Some(peers) = peers {
            for p in PEERS {
                let figure = r.peer.as_ref().and_then(|f| f(peers, p));
                match (figure, r.weft) {
                    (Some(x), Some(w)) if x > 0.0 => print!(" {} ({:.1}×) |", fmt(x), w / x),
                    (Some(x), _) => print!(" {} |", fmt(x)),
                    (None, _) => print!(" — |"),
                }
            }
        }
        println!();
    }
    println!();
    println!(
        "weft: median [min–max] of {runs} run(s); memory and fairness: one run. Peers: medians of \
         their runs; fairness peers: p99 of the sleeps due while the hog ran."
    );
}

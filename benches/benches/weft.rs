//! The microbenchmarks weft is judged by (see `shared/DESIGN.md`, "Performance
//! budget"), over real guests built from source. Each guest measures itself, so
//! program start-up is not counted. `cargo bench -p weft-benches`; filter by name as
//! usual (`cargo bench -p weft-benches -- spawn`). The memory figure is printed after
//! the criterion groups (skipped when a filter excludes "memory").

use std::time::Duration;

use criterion::{Criterion, criterion_group};
use weft::{Preemption, Runtime};
use weft_benches::{HostSide, host_round_trip, kib_per_blocked_microthread, measured};

fn runtime(workers: usize, preemption: Preemption) -> Runtime {
    Runtime::builder()
        .cache_dir(Some(weft_tests::cache_dir()))
        .workers(workers)
        .preemption(preemption)
        .max_microthreads(10_010)
        .build()
        .expect("runtime")
}

fn default_preemption() -> Preemption {
    Preemption::Fuel {
        slice: weft::DEFAULT_FUEL_SLICE,
    }
}

fn args(mode: &str, n: u64) -> Vec<String> {
    vec![mode.to_string(), n.to_string()]
}

fn spawn_and_yield(c: &mut Criterion) {
    let rt = runtime(1, default_preemption());
    let mut g = c.benchmark_group("microthread");
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("spawn+join (1 worker)", |b| {
        b.iter_custom(|n| measured(&rt, &args("spawn", n)))
    });
    g.bench_function("yield (1 worker)", |b| {
        b.iter_custom(|n| measured(&rt, &args("yield", n)))
    });
    g.bench_function("run of a trivial program: start + wait (1 worker)", |b| {
        b.iter_custom(|n| weft_benches::per_run(&rt, n as u32) * n as u32)
    });
    let rt2 = runtime(2, default_preemption());
    g.bench_function("spawn+join (2 workers)", |b| {
        b.iter_custom(|n| measured(&rt2, &args("spawn", n)))
    });
    g.finish();
}

fn fuel(c: &mut Criterion) {
    // Made one at a time: each runtime's pool holds memory mappings.
    let unchecked = || {
        Runtime::builder()
            .cache_dir(Some(weft_tests::cache_dir()))
            .workers(1)
            .preemption(Preemption::Off)
            .epoch_interruption(false)
            .max_microthreads(16)
            .build()
            .expect("runtime")
    };
    type Make = Box<dyn Fn() -> Runtime>;
    let configs: [(&str, Make); 5] = [
        ("unmetered", Box::new(unchecked)),
        (
            "unmetered, epoch checks",
            Box::new(|| runtime(1, Preemption::Off)),
        ),
        (
            "metered, no slicing",
            Box::new(|| runtime(1, Preemption::Fuel { slice: u64::MAX })),
        ),
        ("default slice", Box::new(|| runtime(1, default_preemption()))),
        (
            "slice 10k",
            Box::new(|| runtime(1, Preemption::Fuel { slice: 10_000 })),
        ),
    ];
    let mut g = c.benchmark_group("fuel");
    g.measurement_time(Duration::from_secs(5));
    for (name, make) in configs {
        let rt = make();
        // Per iteration: 1,000 LCG steps, or one sieve of 100,000.
        g.bench_function(format!("lcg x1000, {name}"), |b| {
            b.iter_custom(|n| measured(&rt, &args("lcg", n * 1000)))
        });
        g.bench_function(format!("sieve 1e5, {name}"), |b| {
            b.iter_custom(|n| measured(&rt, &args("sieve", n)))
        });
    }
    g.finish();
}

fn multicore(c: &mut Criterion) {
    let mut g = c.benchmark_group("multicore");
    g.measurement_time(Duration::from_secs(5));
    for workers in [1, 2] {
        let rt = runtime(workers, default_preemption());
        // Per iteration: 8 microthreads x 125,000 LCG steps.
        g.bench_function(format!("parallel compute ({workers} workers)"), |b| {
            b.iter_custom(|n| measured(&rt, &args("parallel", n * 1_000_000)))
        });
    }
    g.finish();
}

fn channels(c: &mut Criterion) {
    let mut g = c.benchmark_group("channel");
    g.measurement_time(Duration::from_secs(5));
    for workers in [1, 2] {
        let rt = runtime(workers, default_preemption());
        let w = if workers == 1 { "1 worker" } else { "2 workers" };
        g.bench_function(format!("ping-pong ({w})"), |b| {
            b.iter_custom(|n| measured(&rt, &args("pingpong", n)))
        });
        // 100 hops an iteration: a lap takes long enough to amortise the ring's
        // start (about 8 ms for its first few thousand hops).
        g.bench_function(format!("thread-ring hop ({w})"), |b| {
            b.iter_custom(|n| measured(&rt, &args("ring", n * 100)) / 100)
        });
    }
    let rt = runtime(1, default_preemption());
    for (side, name) in [(HostSide::Thread, "thread"), (HostSide::Tokio, "tokio")] {
        g.bench_function(
            format!("host <-> guest round trip, application on {name} (1 worker)"),
            |b| b.iter_custom(|n| host_round_trip(&rt, n, side) * n as u32),
        );
    }
    for size in [8u64, 4096] {
        g.throughput(criterion::Throughput::Elements(1));
        g.bench_function(format!("throughput {size} B (1 worker)"), |b| {
            b.iter_custom(|n| measured(&rt, &["throughput".into(), n.to_string(), size.to_string()]))
        });
    }
    g.finish();
}

criterion_group!(benches, spawn_and_yield, fuel, multicore, channels);

fn main() {
    benches();
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    if filter.is_empty() || filter.iter().any(|f| "memory".contains(f.as_str())) {
        let rt = runtime(1, default_preemption());
        let n = 10_000;
        let kib = kib_per_blocked_microthread(&rt, n);
        println!(
            "memory/blocked in sleep: {:.1} KiB resident ({:.1} by Pss, and {:.1} of page tables) per microthread at {n} live",
            kib.resident, kib.proportional, kib.page_tables
        );
    }
    if filter.is_empty() || filter.iter().any(|f| "fairness".contains(f.as_str())) {
        let rt = runtime(1, default_preemption());
        let (p50, p99, max) = weft_benches::sleep_lateness(&rt, 0, 1000);
        println!("fairness/idle sleeper (1 worker): lateness p50 {p50:.2} p99 {p99:.2} max {max:.2} ms");
        // A hog of ~3 s of compute: the sleeper's 1,000 sleeps all fall beside it.
        let (p50, p99, max) = weft_benches::sleep_lateness(&rt, 3_000_000_000, 1000);
        println!("fairness/beside a CPU hog (1 worker): lateness p50 {p50:.2} p99 {p99:.2} max {max:.2} ms");
    }
    Criterion::default().configure_from_args().final_summary();
}

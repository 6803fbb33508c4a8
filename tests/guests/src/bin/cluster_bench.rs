//! Workloads of the goal table's cluster figures (`benches/src/cluster.rs`), run as
//! node A of a two-node cluster (node B serves spawns with the same program). Each
//! times itself with the guest's monotonic clock and prints `elapsed_ns N` (the
//! whole timed part), so that the run's start and the wait for the nodes are not
//! counted. Every line is flushed at once; a failure exits 1 with the reason on
//! stderr.
//!
//! - `spawn-remote N`: once another node is live (waiting at most 10 s), N spawns
//!   one after another of a trivial function on that node, each joined before the
//!   next (after 100 that warm up); every result is checked. Also prints
//!   `spawn_ns N` and `join_ns N`: how much of it the spawn calls took (to the
//!   other node's answer that the child started) and the joins (to its result).
//! - `spawn-local N`: the same on this node (a plain local spawn).
//! - `map N NODES [ROUNDS]`: once NODES nodes are live (waiting at most 10 s),
//!   `cluster::parallel_map` of a CPU-bound pure function (ROUNDS rounds of an
//!   integer hash, default 8,000,000) over N items with concurrency 2 × NODES,
//!   after a warm-up map of 2 × NODES items; prints `elapsed_ns`, `digest D` of
//!   the results (the same for any number of nodes) and `spread: NODE=CALLS …`
//!   (by node name) of where the timed calls ran.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use weft_guest::cluster::{self, node_name as name};
use weft_test_guests::{fail, say, wait_for_nodes};

/// The trivial function of a spawn→join.
fn next(x: u64) -> u64 {
    x + 1
}

/// Spawn `next(i)` by `spawn`, join it and check the result; the time the spawn
/// call took and the time the join took.
fn spawn_join(i: u64, spawn: &dyn Fn(u64) -> weft_guest::JoinHandle<u64>) -> (Duration, Duration) {
    let started = Instant::now();
    let handle = spawn(i);
    let spawned = Instant::now();
    match handle.join() {
        Ok(r) if r == i + 1 => {}
        Ok(r) => fail(format!("spawn {i}: the child returned {r}, not {}", i + 1)),
        Err(e) => fail(format!("spawn {i}: join failed: {e}")),
    }
    (spawned - started, spawned.elapsed())
}

/// N spawn→joins by `spawn`, after 100 that warm up; prints the time of the N,
/// and of their spawn calls and their joins.
fn spawn_joins(n: u64, spawn: &dyn Fn(u64) -> weft_guest::JoinHandle<u64>) {
    for i in 0..100 {
        spawn_join(i, spawn);
    }
    let (mut spawning, mut joining) = (Duration::ZERO, Duration::ZERO);
    let started = Instant::now();
    for i in 0..n {
        let (s, j) = spawn_join(i, spawn);
        spawning += s;
        joining += j;
    }
    say(format!("elapsed_ns {}", started.elapsed().as_nanos()));
    say(format!("spawn_ns {}", spawning.as_nanos()));
    say(format!("join_ns {}", joining.as_nanos()));
}

fn spawn_remote(n: u64) {
    let me = cluster::this_node();
    let Some(other) = wait_for_nodes(2)
        .into_iter()
        .find(|node| node.id() != Some(me.as_str()))
    else {
        fail("wait_for_nodes returned no other node");
    };
    spawn_joins(n, &|i| {
        cluster::spawn_on(other.clone(), next, i)
            .unwrap_or_else(|e| fail(format!("spawn {i} on {other}: {e}")))
    });
}

fn spawn_local(n: u64) {
    spawn_joins(n, &|i| {
        weft_guest::Builder::new()
            .spawn(next, i)
            .unwrap_or_else(|e| fail(format!("spawn {i}: {e}")))
    });
}

/// A CPU-bound pure function: `rounds` rounds of an integer hash of `seed`;
/// returns the hash and the node it ran on.
fn crunch((seed, rounds): (u64, u64)) -> (u64, String) {
    let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
    for _ in 0..rounds {
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 29;
    }
    (h, name(&cluster::this_node()).to_string())
}

fn map(n: u64, want: usize, rounds: u64) {
    wait_for_nodes(want);
    let concurrency = 2 * want;
    let items = |count: u64| (0..count).map(move |i| (i, rounds));
    if let Err(e) = cluster::parallel_map(crunch, items(concurrency as u64), concurrency) {
        fail(format!("the warm-up map: {e}"));
    }
    let started = Instant::now();
    let results = cluster::parallel_map(crunch, items(n), concurrency)
        .unwrap_or_else(|e| fail(format!("cluster::parallel_map: {e}")));
    let elapsed = started.elapsed();
    let digest = results.iter().fold(0u64, |d, (v, _)| {
        d.rotate_left(5) ^ v.wrapping_mul(0x0100_0000_01b3)
    });
    let mut spread: BTreeMap<&str, u32> = BTreeMap::new();
    for (_, node) in &results {
        *spread.entry(node.as_str()).or_default() += 1;
    }
    let spread: Vec<String> = spread.iter().map(|(node, n)| format!("{node}={n}")).collect();
    say(format!("elapsed_ns {}", elapsed.as_nanos()));
    say(format!("digest {digest:016x}"));
    say(format!("spread: {}", spread.join(" ")));
}

fn number<T: std::str::FromStr>(what: &str, arg: Option<&str>) -> T {
    let arg = arg.unwrap_or_else(|| fail(format!("missing {what}")));
    arg.parse()
        .unwrap_or_else(|_| fail(format!("{what}: expected a number, got {arg:?}")))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    match arg(1).unwrap_or("") {
        "spawn-remote" => spawn_remote(number("N", arg(2))),
        "spawn-local" => spawn_local(number("N", arg(2))),
        "map" => {
            let rounds = arg(4).map_or(8_000_000, |r| number("ROUNDS", Some(r)));
            map(number("N", arg(2)), number("NODES", arg(3)), rounds);
        }
        other => {
            eprintln!("unknown mode {other:?}: spawn-remote N, spawn-local N, map N NODES [ROUNDS]");
            std::process::exit(2);
        }
    }
}

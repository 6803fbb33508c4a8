//! One program, several nodes: a pipeline whose stages run on different weft
//! processes joined by NATS, talking through the ordinary channels they would use
//! on one machine. `scripts/cluster-demo.sh` starts it on one machine: a local
//! `nats-server`, a collector, two workers and a producer.
//!
//! ```text
//! producer ──jobs──▶ worker a ─┐
//!          └───────▶ worker b ─┴──results──▶ collector
//! ```
//!
//! Each role is the first argument; the channels come from `weft run`'s flags, and
//! the guest takes them by name with `host_sender` / `host_receiver`:
//!
//! - `collector N` (`--export-receiver results`): receives until every worker is
//!   done, checks that each of the N jobs came back once, and prints how many each
//!   worker did.
//! - `worker` (`--import-receiver jobs --import-sender results`): four microthreads
//!   take jobs from the shared remote receiver, count the primes below each job's
//!   bound, and send the count back with this node's id.
//! - `producer N` (`--export-sender jobs`): sends N jobs, then drops the sender: the
//!   workers drain the channel and see it close.
//!
//! Every node also prints the live nodes it sees.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use weft_guest::{Receiver, RecvError, Sender, host_receiver, host_sender};

#[derive(Serialize, Deserialize)]
struct Job {
    id: u32,
    bound: u32,
}

#[derive(Serialize, Deserialize)]
struct Done {
    job: u32,
    primes: u32,
    node: String,
}

fn primes_below(n: u32) -> u32 {
    (2..n)
        .filter(|&k| (2..).take_while(|d| d * d <= k).all(|d| k % d != 0))
        .count() as u32
}

fn usage() -> ! {
    eprintln!("usage: cluster-pipeline (collector N | worker | producer N)");
    weft_guest::exit(2)
}

fn count(arg: Option<&String>) -> u32 {
    match arg.map(|s| s.parse::<u32>()) {
        Some(Ok(n)) if n > 0 => n,
        _ => usage(),
    }
}

fn node() -> String {
    weft_guest::cluster::node_id().unwrap_or_else(|| {
        eprintln!("cluster-pipeline: not in a cluster: run it with weft run --cluster nats://HOST:PORT");
        weft_guest::exit(2)
    })
}

/// The live nodes' ids, for a report.
fn live_nodes() -> Vec<String> {
    weft_guest::cluster::nodes()
        .iter()
        .map(|n| n.to_string())
        .collect()
}

fn work((jobs, results, me): (Receiver<Job>, Sender<Done>, String)) -> u32 {
    let mut done = 0;
    loop {
        match jobs.recv() {
            Ok(job) => {
                let d = Done {
                    job: job.id,
                    primes: primes_below(job.bound),
                    node: me.clone(),
                };
                if let Err(e) = results.send(d) {
                    panic!("the collector is gone: {e}");
                }
                done += 1;
            }
            Err(RecvError::Closed) => return done,
            Err(e) => panic!("the jobs channel failed: {e}"),
        }
    }
}

fn worker() {
    let me = node();
    let jobs = host_receiver::<Job>("jobs").unwrap_or_else(|| usage());
    let results = host_sender::<Done>("results").unwrap_or_else(|| usage());
    println!("worker {me}: nodes {:?}", live_nodes());
    let hands: Vec<_> = (0..4)
        .map(|_| weft_guest::spawn(work, (jobs.clone(), results.clone(), me.clone())))
        .collect();
    let done: u32 = hands
        .into_iter()
        .map(|h| h.join().expect("a worker microthread"))
        .sum();
    println!("worker {me}: did {done} jobs");
}

fn producer(n: u32) {
    let me = node();
    let jobs = host_sender::<Job>("jobs").unwrap_or_else(|| usage());
    println!("producer {me}: nodes {:?}", live_nodes());
    for id in 0..n {
        let job = Job {
            id,
            bound: 20_000 + id % 7 * 1000,
        };
        if let Err(e) = jobs.send(job) {
            eprintln!("producer: job {id} not sent: {e}");
            weft_guest::exit(1);
        }
    }
    println!("producer {me}: sent {n} jobs");
}

fn collector(n: u32) {
    let me = node();
    let results = host_receiver::<Done>("results").unwrap_or_else(|| usage());
    let mut seen = vec![false; n as usize];
    let mut by_node: BTreeMap<String, u32> = BTreeMap::new();
    loop {
        match results.recv() {
            Ok(d) => {
                let slot = seen
                    .get_mut(d.job as usize)
                    .unwrap_or_else(|| panic!("job {} was never sent", d.job));
                assert!(!*slot, "job {} came back twice", d.job);
                *slot = true;
                *by_node.entry(d.node).or_default() += 1;
            }
            Err(RecvError::Closed) => break,
            Err(e) => {
                eprintln!("collector: the results channel failed: {e}");
                weft_guest::exit(1);
            }
        }
    }
    let missing = seen.iter().filter(|s| !**s).count();
    println!(
        "collector {me}: {} of {n} jobs came back, each once",
        n as usize - missing
    );
    for (node, jobs) in by_node {
        println!("  {node}: {jobs}");
    }
    if missing > 0 {
        weft_guest::exit(1);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("collector") => collector(count(args.get(1))),
        Some("worker") => worker(),
        Some("producer") => producer(count(args.get(1))),
        _ => usage(),
    }
}

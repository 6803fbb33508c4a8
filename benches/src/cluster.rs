//! weft's remote channels, measured as the application uses them: two runtimes in
//! this process, each a node of the cluster at a real `nats-server` on loopback
//! ([`weft_tests::nats::NatsServer`]), with channels exported on one node and
//! imported on the other. Beside [`nats_floor`](crate::nats_floor), which measures
//! core NATS alone with the same client.
//!
//! - [`remote_ping_pong`]: a value to the other node and one back, on two remote
//!   channels of capacity 1 (a thread on the other node answers each);
//! - [`remote_stream`]: small values streamed to the other node on a buffered
//!   remote channel (credit window: its capacity, at most 64);
//! - [`SpawnNodes`]: spawn→join of a trivial function on the other node and on
//!   this one (the `cluster_bench` guest's `spawn-remote` / `spawn-local`);
//! - [`MapNodes`]: `cluster::parallel_map` of a CPU-bound function over one node
//!   or two (`cluster_bench map`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use weft::cluster::ClusterConfig;
use weft::{ExitStatus, OutputBuffer, Program, RunHandle, RunOptions, Runtime};
use weft_tests::nats::NatsServer;

/// A runtime that is node `name` of the cluster at `server`.
fn node(server: &NatsServer, name: &str) -> Runtime {
    Runtime::builder()
        .workers(1)
        .max_microthreads(16)
        .cluster(ClusterConfig::new(server.url()).node_name(name))
        .build()
        .expect("a node of the cluster")
}

/// Mean time of a round trip over `n` (after a warm-up): node B sends a value to
/// node A on a remote channel and waits for A's answer on another.
pub fn remote_ping_pong(server: &NatsServer, n: u32) -> Duration {
    let (a, b) = (node(server, "ping-a"), node(server, "ping-b"));
    let ping_rx = a.cluster().unwrap().export_receiver::<u64>("ping", 1).unwrap();
    let pong_rx = b.cluster().unwrap().export_receiver::<u64>("pong", 1).unwrap();
    let ping_tx = b.cluster().unwrap().import_sender::<u64>("ping").unwrap();
    let pong_tx = a.cluster().unwrap().import_sender::<u64>("pong").unwrap();
    let answering = std::thread::spawn(move || {
        while let Ok(v) = ping_rx.recv_blocking() {
            if pong_tx.send_blocking(v).is_err() {
                return;
            }
        }
    });
    let warm_up = 200;
    for i in 0..warm_up {
        ping_tx.send_blocking(i).unwrap();
        assert_eq!(pong_rx.recv_blocking().unwrap(), i);
    }
    let started = Instant::now();
    for i in 0..u64::from(n) {
        ping_tx.send_blocking(i).unwrap();
        assert_eq!(
            pong_rx.recv_blocking().unwrap(),
            i,
            "a round trip lost or reordered its value"
        );
    }
    let took = started.elapsed() / n;
    drop(ping_tx);
    answering.join().unwrap();
    took
}

/// Mean time per value of `n` small values (u64) streamed from node B to node A on
/// a remote channel of `capacity`, from the first send to the last receive.
pub fn remote_stream(server: &NatsServer, n: u32, capacity: usize) -> Duration {
    let (a, b) = (node(server, "stream-a"), node(server, "stream-b"));
    let rx = a
        .cluster()
        .unwrap()
        .export_receiver::<u64>("stream", capacity)
        .unwrap();
    let tx = b.cluster().unwrap().import_sender::<u64>("stream").unwrap();
    // Warm up the path.
    for i in 0..200 {
        tx.send_blocking(i).unwrap();
        rx.recv_blocking().unwrap();
    }
    let n = u64::from(n);
    let started = Instant::now();
    let sending = std::thread::spawn(move || {
        for i in 0..n {
            tx.send_blocking(i).unwrap();
        }
    });
    for i in 0..n {
        assert_eq!(rx.recv_blocking().unwrap(), i, "a value was lost or reordered");
    }
    let took = started.elapsed() / n as u32;
    sending.join().unwrap();
    took
}

/// A cluster name not used before in this process: the nodes of one measurement
/// see no node of another (a dropped runtime stays listed until its timeout).
fn fresh_cluster(what: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("bench-{what}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A runtime of one worker that is node `name` of the cluster `cluster` at
/// `server`, with the tests' compilation cache.
fn worker_node(server: &NatsServer, cluster: &str, name: &str) -> Runtime {
    Runtime::builder()
        .cache_dir(Some(weft_tests::cache_dir()))
        .workers(1)
        .max_microthreads(64)
        .cluster(
            ClusterConfig::new(server.url())
                .cluster_name(cluster)
                .node_name(name),
        )
        .build()
        .unwrap_or_else(|e| panic!("node {name} of cluster {cluster}: {e}"))
}

/// The `cluster_bench` guest on `runtime`.
fn bench_program(runtime: &Runtime) -> Program {
    runtime
        .load(weft_tests::guest("cluster_bench"))
        .expect("load the cluster_bench guest")
}

/// Run `program` with `args` to its end; its stdout. Panics with its stderr if it
/// fails.
fn run_to_end(program: &Program, args: &[String]) -> String {
    let (out, err) = (OutputBuffer::new(), OutputBuffer::new());
    let options = RunOptions::new()
        .args(args.iter().cloned())
        .stdout(out.clone())
        .stderr(err.clone());
    let status = program.run(&options).expect("start the cluster_bench run");
    assert_eq!(
        status,
        ExitStatus::Exited(0),
        "cluster_bench {args:?} failed: {}",
        err.to_string_lossy()
    );
    out.to_string_lossy()
}

/// The value of the line `key VALUE` of `output`.
fn field<'a>(output: &'a str, key: &str) -> &'a str {
    output
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no `{key}` line in the output: {output}"))
        .trim()
}

fn elapsed(output: &str) -> Duration {
    let ns = field(output, "elapsed_ns");
    Duration::from_nanos(
        ns.parse()
            .unwrap_or_else(|_| panic!("elapsed_ns {ns:?} is not a number")),
    )
}

/// Two nodes, each a runtime of one worker: A runs the `cluster_bench` guest's
/// spawn modes, B serves their spawns (`Program::start_node`).
pub struct SpawnNodes {
    a: Program,
    // Dropped before the runtimes (fields drop in order): B's run is cancelled.
    _serving: RunHandle,
    _b: Program,
    _runtimes: (Runtime, Runtime),
}

impl SpawnNodes {
    /// Start both nodes, in a cluster of their own at `server`.
    pub fn start(server: &NatsServer) -> SpawnNodes {
        let cluster = fresh_cluster("spawn");
        let (ra, rb) = (
            worker_node(server, &cluster, "spawn-a"),
            worker_node(server, &cluster, "spawn-b"),
        );
        let b = bench_program(&rb);
        let serving = b
            .start_node(&RunOptions::new().stdout(OutputBuffer::new()))
            .expect("node B serves spawns");
        SpawnNodes {
            a: bench_program(&ra),
            _serving: serving,
            _b: b,
            _runtimes: (ra, rb),
        }
    }

    /// Mean times of a spawn→join of a trivial function on node B from node A,
    /// over `n` (after a warm-up), one after another.
    pub fn remote(&self, n: u32) -> SpawnJoin {
        SpawnJoin::of(&run_to_end(&self.a, &["spawn-remote".into(), n.to_string()]), n)
    }

    /// The same on node A itself (a local spawn), in the same cluster.
    pub fn local(&self, n: u32) -> SpawnJoin {
        SpawnJoin::of(&run_to_end(&self.a, &["spawn-local".into(), n.to_string()]), n)
    }
}

/// Mean times of one spawn→join, as the guest timed them.
#[derive(Clone, Copy, Debug)]
pub struct SpawnJoin {
    /// The whole spawn→join.
    pub whole: Duration,
    /// The spawn call (remote: until the other node answered that the child
    /// started).
    pub spawn: Duration,
    /// The join (remote: until the child's result came back).
    pub join: Duration,
}

impl SpawnJoin {
    fn of(output: &str, n: u32) -> SpawnJoin {
        let ns = |key: &str| {
            let v = field(output, key);
            Duration::from_nanos(
                v.parse()
                    .unwrap_or_else(|_| panic!("{key} {v:?} is not a number")),
            ) / n
        };
        let spawn_join = SpawnJoin {
            whole: ns("elapsed_ns"),
            spawn: ns("spawn_ns"),
            join: ns("join_ns"),
        };
        assert!(
            spawn_join.spawn + spawn_join.join <= spawn_join.whole,
            "the spawns and joins took longer than the whole: {output}"
        );
        spawn_join
    }
}

/// One node or two, each a runtime of one worker, for `cluster::parallel_map`:
/// A runs the `cluster_bench` guest's `map`, B (if any) serves spawns.
pub struct MapNodes {
    nodes: usize,
    a: Program,
    _serving: Option<(RunHandle, Program, Runtime)>,
    _ra: Runtime,
}

/// What a timed map gave.
#[derive(Clone, Debug)]
pub struct Mapped {
    /// Its time, from its first call's spawn to its last result.
    pub elapsed: Duration,
    /// A digest of the results, the same for any number of nodes.
    pub digest: String,
    /// How many calls ran on each node, by name.
    pub spread: Vec<(String, u32)>,
}

impl MapNodes {
    /// Start `nodes` nodes (1 or 2), in a cluster of their own at `server`.
    pub fn start(server: &NatsServer, nodes: usize) -> MapNodes {
        assert!(matches!(nodes, 1 | 2), "MapNodes: 1 or 2 nodes, not {nodes}");
        let cluster = fresh_cluster(&format!("map{nodes}"));
        let ra = worker_node(server, &cluster, "map-a");
        let serving = (nodes == 2).then(|| {
            let rb = worker_node(server, &cluster, "map-b");
            let b = bench_program(&rb);
            let serving = b
                .start_node(&RunOptions::new().stdout(OutputBuffer::new()))
                .expect("node B serves spawns");
            (serving, b, rb)
        });
        MapNodes {
            nodes,
            a: bench_program(&ra),
            _serving: serving,
            _ra: ra,
        }
    }

    /// `cluster::parallel_map` of `n` calls of `rounds` rounds of a hash each, with
    /// concurrency 2 × the nodes.
    pub fn map(&self, n: u32, rounds: u64) -> Mapped {
        let args = [
            "map".to_string(),
            n.to_string(),
            self.nodes.to_string(),
            rounds.to_string(),
        ];
        let out = run_to_end(&self.a, &args);
        let spread = field(&out, "spread:")
            .split_whitespace()
            .map(|pair| {
                let (node, calls) = pair
                    .split_once('=')
                    .unwrap_or_else(|| panic!("spread {pair:?}: not NODE=CALLS"));
                let calls = calls
                    .parse()
                    .unwrap_or_else(|_| panic!("spread {pair:?}: not a count"));
                (node.to_string(), calls)
            })
            .collect::<Vec<_>>();
        let total: u32 = spread.iter().map(|(_, c)| c).sum();
        assert_eq!(total, n, "the map's spread counts {total} calls, not {n}: {out}");
        assert_eq!(
            spread.len(),
            self.nodes,
            "the map's calls ran on {spread:?}, not on all {} nodes",
            self.nodes
        );
        Mapped {
            elapsed: elapsed(&out),
            digest: field(&out, "digest").to_string(),
            spread,
        }
    }
}

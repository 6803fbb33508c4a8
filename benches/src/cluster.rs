//! weft's remote channels, measured as the application uses them: two runtimes in
//! this process, each a node of the cluster at a real `nats-server` on loopback
//! ([`weft_tests::nats::NatsServer`]), with channels exported on one node and
//! imported on the other. Beside [`nats_floor`](crate::nats_floor), which measures
//! core NATS alone with the same client.
//!
//! - [`remote_ping_pong`]: a value to the other node and one back, on two remote
//!   channels of capacity 1 (a thread on the other node answers each);
//! - [`remote_stream`]: small values streamed to the other node on a buffered
//!   remote channel (credit window: its capacity, at most 64).

use std::time::{Duration, Instant};

use weft::Runtime;
use weft::cluster::ClusterConfig;
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

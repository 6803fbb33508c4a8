//! The goal table's figures of spawning on another node run against a real
//! nats-server: two nodes in this process, the `cluster_bench` guest on node A
//! spawning on node B (every result checked by the guest), and its
//! `cluster::parallel_map` on one node and on two, with the same results and the
//! calls spread over both nodes. No time is compared.

use std::time::Duration;

use weft_benches::cluster::{MapNodes, SpawnNodes};
use weft_tests::nats::NatsServer;

#[test]
fn remote_and_local_spawn_joins_are_measured() {
    let server = NatsServer::start();
    let nodes = SpawnNodes::start(&server);
    for measured in [nodes.remote(20), nodes.local(20)] {
        assert!(
            measured.spawn > Duration::ZERO && measured.join > Duration::ZERO,
            "{measured:?}"
        );
    }
    // Again on the same nodes: each measurement is a run of its own on node A.
    assert!(nodes.remote(1).whole > Duration::ZERO);
}

#[test]
fn parallel_map_on_two_nodes_gives_the_one_node_results_from_both() {
    let server = NatsServer::start();
    let one = MapNodes::start(&server, 1).map(12, 10_000);
    let two = MapNodes::start(&server, 2).map(12, 10_000);
    assert_eq!(one.digest, two.digest, "results differ on 1 and 2 nodes");
    assert_eq!(one.spread.len(), 1, "{:?}", one.spread);
    // MapNodes::map asserts that the calls ran on every node and are all counted.
    assert_eq!(two.spread.len(), 2, "{:?}", two.spread);
    assert!(two.spread.iter().all(|(_, calls)| *calls > 0), "{:?}", two.spread);
}

//! Spawning on another node, embedded: two runtimes in this process joined to a
//! real nats-server on loopback, one serving spawns with `Program::start_node`, the
//! other running the `cluster_spawn` guest. A remote child is a child as any:
//! its parent's run waits for it, its unjoined failure cancels its siblings and
//! fails its parent, and the live views and counters of both runs show it.

use std::time::Duration;

use weft::{ExitStatus, FailureKind, MicrothreadState, OutputBuffer, RunHandle, RunOptions, Runtime};
use weft_tests::guest;
use weft_tests::nats::NatsServer;

mod common;
use common::{eventually, node_with_timeout};

/// A runtime that is node `name` of the cluster at `server`.
fn node(server: &NatsServer, name: &str) -> Runtime {
    node_with_timeout(server, name, Duration::from_secs(3))
}

/// Options with stdout and stderr collected, and a hang guard.
fn collected() -> (RunOptions, OutputBuffer, OutputBuffer) {
    let (out, err) = (OutputBuffer::new(), OutputBuffer::new());
    let options = RunOptions::new()
        .stdout(out.clone())
        .stderr(err.clone())
        .deadline(Duration::from_secs(120));
    (options, out, err)
}

/// Node `b` serving spawns of the cluster_spawn guest, with its stdout.
fn serving(b: &Runtime) -> (RunHandle, OutputBuffer) {
    let program = b.load(guest("cluster_spawn")).expect("load");
    let (options, out, _err) = collected();
    (program.start_node(&options).expect("start the node's run"), out)
}

/// Mode `args` of the cluster_spawn guest on node `a`.
fn start(a: &Runtime, args: &[&str]) -> (RunHandle, OutputBuffer, OutputBuffer) {
    let program = a.load(guest("cluster_spawn")).expect("load");
    let (options, out, err) = collected();
    let run = program.start(&options.args(args.iter().copied())).expect("start");
    (run, out, err)
}

#[test]
fn a_parent_run_waits_for_its_remote_child_and_both_runs_count_it() {
    let server = NatsServer::start();
    let (a, b) = (node(&server, "a"), node(&server, "b"));
    let (node_run, node_out) = serving(&b);
    let (run, out, err) = start(&a, &["prejoin"]);
    let status = run.wait();
    assert_eq!(status, ExitStatus::Exited(0), "{}", err.to_string_lossy());
    assert_eq!(out.to_string_lossy(), "main returns\n");
    // The run ended after its child on b, which printed there before it ended.
    assert_eq!(node_out.to_string_lossy(), "remote child done on b\n");
    assert_eq!(node_run.stats().started_for_others, 1);
    assert!(!node_run.is_finished(), "a node's run serves until it is stopped");
    node_run.cancel();
    assert_eq!(node_run.wait(), ExitStatus::Cancelled);
}

#[test]
fn a_remote_childs_unjoined_failure_cancels_its_sibling_and_fails_its_parent() {
    let server = NatsServer::start();
    let (a, b) = (node(&server, "a"), node(&server, "b"));
    let (_node_run, _node_out) = serving(&b);
    let (run, out, err) = start(&a, &["unjoined"]);
    let status = run.wait();
    let ExitStatus::Failed(f) = &status else {
        panic!("{status:?}: {}", err.to_string_lossy());
    };
    assert_eq!(f.kind, FailureKind::ChildFailed, "{f}");
    assert!(f.message.contains("boom on b"), "{f}");
    let out = out.to_string_lossy();
    assert!(out.contains("sibling cancelled\n"), "{out}");
    assert!(out.contains("main cancelled\n"), "{out}");
}

#[test]
fn the_live_views_show_a_remote_child_with_its_node_and_a_serving_main() {
    let server = NatsServer::start();
    let (a, b) = (node(&server, "a"), node(&server, "b"));
    let (node_run, node_out) = serving(&b);
    let (run, out, err) = start(&a, &["node-down"]);
    eventually("the remote child started", || {
        out.to_string_lossy() == "started on b\n"
    });
    let b_id = b.cluster().unwrap().node_id();
    let remote: Vec<_> = run
        .microthreads()
        .into_iter()
        .filter(|m| m.state == MicrothreadState::Remote { node: b_id.clone() })
        .collect();
    assert_eq!(remote.len(), 1, "{}", run.view().table());
    assert_eq!(remote[0].parent, Some(0));
    assert!(
        run.view().table().contains(&format!("running on node {b_id}")),
        "{}",
        run.view().table()
    );
    assert_eq!(run.stats().spawned_remote, 1);
    let there = node_run.microthreads();
    assert!(
        there
            .iter()
            .any(|m| m.id == 0 && m.state == MicrothreadState::Serving),
        "{}",
        node_run.view().table()
    );
    assert_eq!(
        there.len(),
        2,
        "main, serving, and the child there: {}",
        node_run.view().table()
    );
    // The node's run stops: the child there is cancelled, and its parent hears so.
    node_run.cancel();
    assert_eq!(node_run.wait(), ExitStatus::Cancelled);
    assert_eq!(node_out.to_string_lossy(), "cleanup: recv child on b\n");
    assert_eq!(run.wait(), ExitStatus::Exited(0), "{}", err.to_string_lossy());
    let out = out.to_string_lossy();
    assert!(
        out.starts_with("started on b\njoin failed: kind=Cancelled"),
        "{out}"
    );
    assert!(out.ends_with("\ndown: kind=Cancelled\n"), "{out}");
}

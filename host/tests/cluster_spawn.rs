//! Spawning on another node, as a user runs it: `weft run` and `weft node`
//! processes on one machine joined by a real nats-server on loopback
//! (`weft_tests::nats`), with the `cluster_spawn` test guest. A child on another
//! node joins as a local one (results small and large, a carried sender, a panic
//! with its backtrace, a cancellation whose cleanup runs there); a node killed
//! under a child fails its join with `NodeDown`, a supervisor restarts its child
//! on the surviving node, and `cluster::parallel_map` re-runs the calls of a node
//! lost mid-way. And the refusals: another program, a receiver in the argument,
//! `weft node` without a cluster.

use std::io::BufReader;
use std::process::{Child, ChildStdout, Stdio};

use weft_tests::guest;
use weft_tests::nats::NatsServer;

mod common;
use common::{Reaped, error_exit, finish, next_line, signal, text, weft, weft_cmd, weft_on_cluster};

/// Compile guest `file` into the tests' cache once (a run with an unknown mode:
/// the guest refuses it), so that the nodes of a test do
/// not all compile it at once, which on a cold cache may outlast their patience
/// for each other.
fn compiled(file: &str) {
    static DONE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !done.iter().any(|f| f == file) {
        let o = weft(&["run", guest(file).to_str().unwrap(), "usage"]);
        // The guest's own refusal, not one of weft's (which start `error: `).
        let err = text(&o.stderr);
        assert!(
            matches!(o.status.code(), Some(1 | 2)) && !err.starts_with("error: "),
            "{err}"
        );
        done.push(file.to_string());
    }
}

/// `weft SUBCOMMAND` of guest `file` as node `name` of `server`'s cluster.
fn weft_on(server: &NatsServer, subcommand: &str, name: &str, file: &str, args: &[&str]) -> Child {
    compiled(file);
    weft_on_cluster(server, subcommand, name, &[], &guest(file), args)
}

/// A `weft node` of guest `file`, and its stdout.
fn node_of(server: &NatsServer, name: &str, file: &str) -> (Reaped, BufReader<ChildStdout>) {
    let mut node = weft_on(server, "node", name, file, &[]);
    let out = BufReader::new(node.stdout.take().unwrap());
    (Reaped::new(node), out)
}

/// A `weft node` of the cluster_spawn guest, and its stdout.
fn serving(server: &NatsServer, name: &str) -> (Reaped, BufReader<ChildStdout>) {
    node_of(server, name, "cluster_spawn")
}

/// `weft run` of cluster_spawn mode `args` on node `name`, and its stdout.
fn running(server: &NatsServer, name: &str, args: &[&str]) -> (Child, BufReader<ChildStdout>) {
    let mut run = weft_on(server, "run", name, "cluster_spawn", args);
    let out = BufReader::new(run.stdout.take().unwrap());
    (run, out)
}

/// Run cluster_spawn mode `args` on node `a` to its end: its exit code, stdout and
/// stderr.
fn run_to_end(server: &NatsServer, args: &[&str]) -> (Option<i32>, String, String) {
    let (run, out) = running(server, "a", args);
    finish(run, out)
}

/// Stop a `weft node` with Ctrl-C (SIGINT): it exits with 130 after its
/// microthreads' cleanup. Its stdout and stderr.
fn stop(node: Reaped, out: BufReader<ChildStdout>) -> (String, String) {
    let node = node.take();
    signal(&node, libc::SIGINT);
    let (code, rest, err) = finish(node, out);
    assert_eq!(code, Some(130), "{rest}{err}");
    (rest, err)
}

#[test]
fn a_child_on_another_node_returns_small_and_large_results_and_reports_progress_on_a_sender() {
    let server = NatsServer::start();
    let (b, b_out) = serving(&server, "b");
    compiled("cluster_spawn");
    let mut a = weft_cmd()
        .args(["run", "--cluster", &server.url(), "--node", "a", "--stats"])
        .arg(guest("cluster_spawn"))
        .arg("join")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start weft");
    let a_out = BufReader::new(a.stdout.take().unwrap());
    let (code, out, err) = finish(a, a_out);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(
        out, "small: b 42\nlarge: 204800 checksum ok\nprogress 1\nprogress 2\nprogress 3\nprogress joined\n",
        "{err}"
    );
    // --stats counts the children that ran on b.
    assert!(
        err.contains(", spawned on other nodes 3, started for other nodes 0"),
        "{err}"
    );
    let (_, b_err) = stop(b, b_out);
    assert_eq!(b_err, "weft: interrupted\n");
}

#[test]
fn a_remote_childs_panic_reaches_its_parent_with_kind_message_and_guest_backtrace() {
    let server = NatsServer::start();
    let (b, b_out) = serving(&server, "b");
    let (code, out, err) = run_to_end(&server, &["panic"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let mut lines = out.lines();
    let first = lines.next().unwrap_or_default();
    assert!(
        first.starts_with("join failed: kind=Panic message=panicked at "),
        "{out}"
    );
    assert!(first.ends_with(": boom on b"), "{out}");
    assert_eq!(lines.next(), Some("whole message:"), "{out}");
    assert!(out.contains("wasm backtrace:"), "{out}");
    assert!(
        out.contains("cluster_spawn::boom"),
        "the backtrace names the function: {out}"
    );
    stop(b, b_out);
}

#[test]
fn cancelling_a_remote_child_runs_its_cleanup_on_its_node_whether_it_waits_or_spins() {
    let server = NatsServer::start();
    let (b, b_out) = serving(&server, "b");
    for mode in ["cancel-recv", "cancel-spin"] {
        let (code, out, err) = run_to_end(&server, &[mode]);
        assert_eq!(code, Some(0), "{mode}: {out}{err}");
        assert_eq!(out, "cancelled: kind=Cancelled\n", "{mode}: {err}");
    }
    // The cleanup of the one that waited ran where it ran.
    let (rest, err) = stop(b, b_out);
    assert_eq!(rest, "cleanup: recv child on b\n", "{err}");
}

#[test]
fn a_killed_node_fails_its_childs_join_and_its_monitor_with_node_down() {
    let server = NatsServer::start();
    let (mut b, _b_out) = serving(&server, "b");
    let (a, mut a_out) = running(&server, "a", &["node-down"]);
    assert_eq!(next_line(&mut a_out), "started on b");
    b.child().kill().expect("kill node b");
    b.child().wait().expect("reap node b");
    let (code, rest, err) = finish(a, a_out);
    assert_eq!(code, Some(0), "{rest}{err}");
    assert!(
        rest.starts_with("join failed: kind=NodeDown message=it ran on node b."),
        "{rest}{err}"
    );
    assert!(rest.contains("which went down"), "{rest}");
    // A monitor of the remote child's id had the same end.
    assert!(rest.ends_with("\ndown: kind=NodeDown\n"), "{rest}");
}

#[test]
fn a_supervised_child_on_a_killed_node_is_restarted_on_the_surviving_one() {
    let server = NatsServer::start();
    let (mut b, _b_out) = serving(&server, "b");
    let (a, mut a_out) = running(&server, "a", &["supervised"]);
    assert_eq!(next_line(&mut a_out), "child on b");
    assert_eq!(next_line(&mut a_out), "which: b");
    b.child().kill().expect("kill node b");
    b.child().wait().expect("reap node b");
    let (code, rest, err) = finish(a, a_out);
    assert_eq!(code, Some(0), "{rest}{err}");
    // Its node went down: it starts again on any live node, here the only one.
    assert_eq!(
        rest, "child on a\nwhich: this node\nsupervisor shut down\n",
        "{err}"
    );
}

#[test]
fn parallel_map_over_three_nodes_gives_the_local_result_also_when_a_node_is_killed_midway() {
    let server = NatsServer::start();
    let (b, b_out) = serving(&server, "b");
    let (c, c_out) = serving(&server, "c");
    let (code, out, err) = run_to_end(&server, &["map", "12", "3"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("\nsame\n"), "{out}");
    // Spread over all three (each with four: the fewest in flight, in turn).
    assert!(out.contains("spread: a=4 b=4 c=4"), "{out}");

    // Now node c is killed once it runs a call.
    let (a, mut a_out) = running(&server, "a", &["map-slow", "12", "3"]);
    let mut c = Some(c);
    let mut started = Vec::new();
    loop {
        let line = next_line(&mut a_out);
        assert!(line.starts_with("call "), "{line}");
        if line.ends_with(" on c")
            && let Some(mut c) = c.take()
        {
            c.child().kill().expect("kill node c");
            c.child().wait().expect("reap node c");
            drop(c_out);
            break;
        }
        started.push(line);
    }
    let (code, rest, err) = finish(a, a_out);
    assert_eq!(code, Some(0), "{rest}{err}");
    let ran: Vec<&str> = rest.lines().filter(|l| l.starts_with("ran ")).collect();
    // Every call came back, in order, none from the dead node.
    assert_eq!(ran.len(), 12, "{rest}");
    for (i, line) in ran.iter().enumerate() {
        assert!(line.starts_with(&format!("ran {i} on ")), "{rest}");
        assert!(
            !line.ends_with(" on c"),
            "a call of the killed node came back: {rest}"
        );
    }
    assert!(rest.ends_with("map done\n"), "{rest}");
    stop(b, b_out);
}

#[test]
fn a_spawn_is_refused_by_a_node_of_another_program_and_for_a_receiver_in_its_argument() {
    let server = NatsServer::start();
    let (other, other_out) = node_of(&server, "b", "cluster");
    let (code, out, err) = run_to_end(&server, &["wrong-program"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("refused: NoSuchProgram(\"node b."), "{out}");
    assert!(out.contains("does not run program"), "{out}");
    let (code, out, err) = run_to_end(&server, &["receiver-arg"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.starts_with("refused: CannotMove(\"the argument carries a receiver"),
        "{out}"
    );
    stop(other, other_out);
}

#[test]
fn weft_node_needs_a_cluster_and_no_seed() {
    let file = guest("cluster_spawn");
    let file = file.to_str().unwrap();
    let err = error_exit(&weft(&["node", file]), 1);
    assert!(err.contains("give --cluster nats://HOST:PORT"), "{err}");
    let err = error_exit(
        &weft(&["node", "--seed", "3", "--cluster", "nats://127.0.0.1:1", file]),
        1,
    );
    assert!(
        err.contains("a deterministic run cannot serve a cluster"),
        "{err}"
    );
    // A program that cannot be spawned on: a plain command.
    let server = NatsServer::start();
    let o = weft(&[
        "node",
        "--cluster",
        &server.url(),
        guest("plain-hello").to_str().unwrap(),
    ]);
    let err = text(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("does not use the weft world"), "{err}");
}

#[test]
fn a_spawn_on_any_node_passes_over_a_full_one() {
    let server = NatsServer::start();
    let (b, b_out) = serving(&server, "b");
    // Node a's run holds main and two more: the others go to b.
    let a = weft_cmd()
        .args(["run", "--cluster", &server.url(), "--node", "a"])
        .args(["--node-timeout", "1s", "--max-microthreads", "3"])
        .arg(guest("cluster_spawn"))
        .args(["any", "8"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start weft");
    let mut a = a;
    let a_out = BufReader::new(a.stdout.take().unwrap());
    let (code, out, err) = finish(a, a_out);
    assert_eq!(code, Some(0), "{out}{err}");
    let counts: std::collections::HashMap<&str, u32> = out
        .trim_end()
        .strip_prefix("any: ")
        .unwrap_or_else(|| panic!("{out}"))
        .split(' ')
        .map(|kv| {
            let (node, n) = kv.split_once('=').unwrap();
            (node, n.parse().unwrap())
        })
        .collect();
    let (on_a, on_b) = (
        counts.get("a").copied().unwrap_or(0),
        counts.get("b").copied().unwrap_or(0),
    );
    assert_eq!(on_a + on_b, 8, "{out}");
    assert!(on_a <= 2, "node a's run holds main and two more: {out}");
    stop(b, b_out);
}

#[test]
fn the_wordcount_example_counts_on_three_nodes_what_one_counts_alone() {
    let texts = tempfile::tempdir().expect("a directory of texts");
    // 40 files: file i holds "alpha" i+1 times, "beta" twice, and its own word.
    for i in 0..40 {
        let text = format!("{}beta, Beta! file{i}\n", "alpha ".repeat(i + 1));
        std::fs::write(texts.path().join(format!("{i:02}.txt")), text).expect("write a text");
    }
    let grant = format!("{}::/texts", texts.path().display());
    let server = NatsServer::start();
    let lenders: Vec<(Reaped, BufReader<ChildStdout>)> = ["a", "b"]
        .iter()
        .map(|n| node_of(&server, n, "cluster-wordcount"))
        .collect();
    let mut counter = weft_cmd()
        .args([
            "run",
            "--cluster",
            &server.url(),
            "--node",
            "counter",
            "--dir-ro",
            &grant,
        ])
        .arg(guest("cluster-wordcount"))
        .args(["--nodes", "3", "--dir", "/texts"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start weft");
    let out = BufReader::new(counter.stdout.take().unwrap());
    let (code, out, err) = finish(counter, out);
    assert_eq!(code, Some(0), "{out}{err}");
    // alpha: 1 + 2 + … + 40; beta: 2 × 40; 40 words of their own.
    assert!(out.contains("total: 940 words, 42 distinct"), "{out}");
    assert!(out.contains("       820  alpha\n"), "{out}");
    assert!(out.contains("        80  beta\n"), "{out}");
    for node in ["counter", "a", "b"] {
        assert!(
            out.contains(&format!("  node {node}: ")),
            "every node counted some: {out}"
        );
    }
    for (node, out) in lenders {
        stop(node, out);
    }
}

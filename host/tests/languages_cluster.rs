//! Python and JavaScript guests in a cluster, as a user runs them: `weft run` and
//! `weft node` processes on one machine joined by a real nats-server on loopback
//! (`weft_tests::nats`), with `tests/python/cluster.py` and `tests/js/cluster.js`
//! built from source by `weft build` (componentize-py and componentize-js, which
//! `scripts/test.sh` installs: without them these tests fail, saying so). For
//! each language: a child spawned on the other node runs there and its result
//! comes back; its exception reaches the parent as a failure with the traceback
//! (the stack); a supervisor's child pinned to a node that is killed restarts on
//! the surviving node. And, with no cluster, what the cluster calls say and the
//! refusals of bad placements.

use std::io::BufReader;
use std::path::PathBuf;
use std::process::{Child, ChildStdout};
use std::sync::Mutex;

use weft_tests::nats::NatsServer;

mod common;
use common::{Reaped, finish, next_line, signal, text, weft_cmd, weft_on_cluster};

/// The two languages' test programs.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Lang {
    Python,
    Js,
}

impl Lang {
    fn source(self) -> &'static str {
        match self {
            Lang::Python => "tests/python/cluster.py",
            Lang::Js => "tests/js/cluster.js",
        }
    }
}

/// The language's test program, built from source once per test process and
/// compiled into the tests' cache once (a run with an unknown mode: the program
/// refuses it with exit code 2), so that the nodes of a test do not all compile
/// it at once, which on a cold cache may outlast their patience for each other.
fn program(lang: Lang) -> PathBuf {
    static COMPILED: Mutex<Vec<(&str, PathBuf)>> = Mutex::new(Vec::new());
    let mut compiled = COMPILED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, wasm)) = compiled.iter().find(|(s, _)| *s == lang.source()) {
        return wasm.clone();
    }
    let wasm = common::built_from_source(lang.source());
    let o = weft_cmd()
        .arg("run")
        .arg(&wasm)
        .arg("usage")
        .output()
        .expect("run weft");
    let err = text(&o.stderr);
    assert!(
        o.status.code() == Some(2) && err.starts_with("unknown mode "),
        "{lang:?}: exit {:?}: {err}",
        o.status.code()
    );
    compiled.push((lang.source(), wasm.clone()));
    wasm
}

/// `weft SUBCOMMAND` of the language's program as node `name` of `server`'s
/// cluster.
fn weft_on(server: &NatsServer, subcommand: &str, name: &str, lang: Lang, args: &[&str]) -> Child {
    weft_on_cluster(server, subcommand, name, &[], &program(lang), args)
}

/// A `weft node` of the language's program, named `name`, and its stdout.
fn serving(server: &NatsServer, name: &str, lang: Lang) -> (Reaped, BufReader<ChildStdout>) {
    let mut node = weft_on(server, "node", name, lang, &[]);
    let out = BufReader::new(node.stdout.take().unwrap());
    (Reaped::new(node), out)
}

/// `weft run` of mode `mode` on node `a`, and its stdout.
fn running(server: &NatsServer, lang: Lang, mode: &str) -> (Reaped, BufReader<ChildStdout>) {
    let mut run = weft_on(server, "run", "a", lang, &[mode]);
    let out = BufReader::new(run.stdout.take().unwrap());
    (Reaped::new(run), out)
}

/// Run mode `mode` on node `a` to its end, which must be a success: its stdout.
fn run_to_end(server: &NatsServer, lang: Lang, mode: &str) -> String {
    let (run, out) = running(server, lang, mode);
    let (code, out, err) = finish(run.take(), out);
    assert_eq!(code, Some(0), "{lang:?} {mode}: stdout {out}\nstderr {err}");
    out
}

/// Stop a `weft node` with Ctrl-C (SIGINT): it exits with 130 after its
/// microthreads' cleanup. Its stdout.
fn stop(node: Reaped, out: BufReader<ChildStdout>) -> String {
    let node = node.take();
    signal(&node, libc::SIGINT);
    let (code, rest, err) = finish(node, out);
    assert_eq!(code, Some(130), "stdout {rest}\nstderr {err}");
    assert_eq!(err, "weft: interrupted\n");
    rest
}

/// `spawn(square, 7, node=...)`: the child prints on node b's stdout, and returns
/// its node's name with the square, which its parent on a joins.
fn spawned_on_another_node(lang: Lang) {
    let server = NatsServer::start();
    let (b, b_out) = serving(&server, "b", lang);
    let out = run_to_end(&server, lang, "spawn");
    assert_eq!(out, "joined 49 from b (handle on b)\n", "{lang:?}");
    assert_eq!(stop(b, b_out), "square 7 on b\n", "{lang:?}: it ran on b");
}

#[test]
fn python_a_child_spawned_on_another_node_runs_there_and_its_result_comes_back() {
    spawned_on_another_node(Lang::Python);
}

#[test]
fn js_a_child_spawned_on_another_node_runs_there_and_its_result_comes_back() {
    spawned_on_another_node(Lang::Js);
}

/// A child on b raises: its parent on a gets a failure of kind panic whose
/// message is the child's traceback (Python) or its error and stack (JS), in
/// the program's own functions.
fn remote_exception(lang: Lang) -> String {
    let server = NatsServer::start();
    let (b, b_out) = serving(&server, "b", lang);
    let out = run_to_end(&server, lang, "fail");
    assert!(out.starts_with("failed panic on b\n"), "{lang:?}: {out}");
    stop(b, b_out);
    out
}

#[test]
fn python_a_remote_childs_exception_reaches_its_parent_as_a_failure_with_the_traceback() {
    let out = remote_exception(Lang::Python);
    assert!(out.contains("\nTraceback (most recent call last):\n"), "{out}");
    let boom = out.find(", in boom\n").unwrap_or_else(|| panic!("{out}"));
    let deeper = out.find(", in deeper\n").unwrap_or_else(|| panic!("{out}"));
    assert!(boom < deeper, "the frames in call order: {out}");
    assert!(out.ends_with("\nValueError: boom 3 on b\n"), "{out}");
}

#[test]
fn js_a_remote_childs_error_reaches_its_parent_as_a_failure_with_the_stack() {
    let out = remote_exception(Lang::Js);
    let mut lines = out.lines().skip(1);
    assert_eq!(lines.next(), Some("RangeError: boom 3 on b"), "{out}");
    assert!(
        lines.next().is_some_and(|l| l.starts_with("deeper@cluster.js:")),
        "{out}"
    );
    assert!(
        lines.next().is_some_and(|l| l.starts_with("boom@cluster.js:")),
        "{out}"
    );
}

/// A supervisor on a with its child pinned to b: the child starts on b; b's
/// process is killed; the child's failure (node-down) makes the supervisor
/// restart it on any live node, here a, which `which_children` reports too.
fn supervised_child_outlives_its_node(lang: Lang) {
    let server = NatsServer::start();
    let (mut b, _b_out) = serving(&server, "b", lang);
    let (a, mut a_out) = running(&server, lang, "supervised");
    assert_eq!(next_line(&mut a_out), "child on b", "{lang:?}");
    assert_eq!(next_line(&mut a_out), "which: b", "{lang:?}");
    b.child().kill().expect("kill node b");
    b.child().wait().expect("reap node b");
    let (code, rest, err) = finish(a.take(), a_out);
    assert_eq!(code, Some(0), "{lang:?}: stdout {rest}\nstderr {err}");
    assert_eq!(
        rest, "child on a\nwhich: this node\nsupervisor shut down\n",
        "{lang:?}: {err}"
    );
}

#[test]
fn python_a_supervised_child_pinned_to_a_killed_node_restarts_on_the_surviving_one() {
    supervised_child_outlives_its_node(Lang::Python);
}

#[test]
fn js_a_supervised_child_pinned_to_a_killed_node_restarts_on_the_surviving_one() {
    supervised_child_outlives_its_node(Lang::Js);
}

/// With no cluster: no nodes, no node id; a spawn on a node is refused as no such
/// node; bad placements are refused where they are made, saying why.
fn alone(lang: Lang) -> Vec<String> {
    let o = weft_cmd()
        .arg("run")
        .arg(program(lang))
        .arg("alone")
        .output()
        .expect("run weft");
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    out.lines().map(str::to_string).collect()
}

const NO_CLUSTER: &str = "no such node: this program runs in no cluster: start it with `weft run --cluster URL` \
     (or on a runtime built with RuntimeBuilder::cluster), or spawn it here with `spawn`";

const ONLY_SENDERS: &str =
    "only senders move to another node (give it a sender to ask for what it needs, or leave it on this node)";

#[test]
fn python_outside_a_cluster_and_bad_placements() {
    let lines = alone(Lang::Python);
    assert_eq!(
        lines,
        [
            "nodes [] node_id None this_node is str True".to_string(),
            format!("NoSuchNode {NO_CLUSTER}"),
            "ValueError spawn: give node= or any_node=True, not both".to_string(),
            "TypeError spawn: node is a node's id (a non-empty string, as weft.nodes() gives it) or a \
             weft.Node, not 7"
                .to_string(),
            format!(
                "ValueError the arguments of child 'c' carry a Receiver, and it is to run on node b.1: \
                 {ONLY_SENDERS}"
            ),
            format!(
                "ValueError the arguments of child 'c' carry a Receiver, and it is to run on any node: \
                 {ONLY_SENDERS}"
            ),
            "ValueError supervisor child 'inner' runs on its supervisor's node (it is asked to stop on a \
             receiver, which cannot move to another node): give its children node= instead"
                .to_string(),
            "Child('c', pinned, restart=permanent, shutdown=5, node='b.1')".to_string(),
            "Child('c', pinned, restart=permanent, shutdown=5, any_node=True)".to_string(),
        ]
    );
}

#[test]
fn js_outside_a_cluster_and_bad_placements() {
    let lines = alone(Lang::Js);
    let child = "TypeError supervisor.start: child 0";
    assert_eq!(
        lines,
        [
            "nodes [] nodeId null thisNode is a string true".to_string(),
            format!("NoSuchNode spawn: {NO_CLUSTER}"),
            "TypeError spawn: give node or anyNode, not both".to_string(),
            "TypeError spawn: node is a node's id (a non-empty string) or a node of weft.nodes() (got 7)"
                .to_string(),
            format!(
                "{child} (pinned): its arg carries a Receiver, and it is to run on node b.1: {ONLY_SENDERS}"
            ),
            format!(
                "{child} (pinned): its arg carries a Receiver, and it is to run on any node: {ONLY_SENDERS}"
            ),
            format!(
                "{child}: a supervisor child runs on its supervisor's node (it is asked to stop on a \
                 receiver, which cannot move to another node): give its children a node instead"
            ),
        ]
    );
}

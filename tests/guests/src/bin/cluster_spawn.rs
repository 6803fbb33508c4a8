//! Spawning on another node of a cluster (`weft run --cluster …`), chosen by the
//! first argument. Every mode but `this-node` first finds "the other node": the
//! first of `cluster::nodes()` that is not this one, waiting for one (asking every
//! 50 ms, for at most 10 s, then exit 1). Nodes are printed by name (the id
//! without its incarnation). Each outcome is one line on stdout, flushed at once:
//! - `join`: a small call on the other node (`small: NODE RESULT`), one with a
//!   200 KiB argument and result (`large: LEN checksum ok`), and one whose
//!   argument carries a sender on which it reports progress back (`progress 1`..`3`,
//!   then `progress joined`).
//! - `panic`: the remote child panics (`boom on NODE`): `join failed: kind=Panic
//!   message=FIRST LINE`, then `whole message:` and the message as the host gave it
//!   (with the guest backtrace).
//! - `cancel-recv`: the remote child blocks in `recv`; it is cancelled and prints
//!   `cleanup: recv child on NODE` on its own node; here: `cancelled: kind=KIND`.
//! - `cancel-spin`: the same with a child that spins: `cancelled: kind=KIND`.
//! - `node-down`: `started on NODE`, then the join's end, once the test has killed
//!   the other node: `join failed: kind=NodeDown message=FIRST LINE`, and what a
//!   monitor of the child's id said: `down: kind=NodeDown`.
//! - `supervised`: a supervisor's child pinned to the other node: `child on NODE`
//!   and `which: NODE` (its `ChildInfo::node`, `this node` for none) at each of its
//!   first two starts (the test kills the other node after the first), then
//!   `supervisor shut down`.
//! - `map N [NODES]`: once NODES nodes are live (default 2), `cluster::parallel_map`
//!   of a CPU-bound function over N items, and the local `parallel_map` of the same:
//!   `map: cluster DIGEST`, `map: local DIGEST`, `same` (or `different`), and
//!   `spread: NODE=CALLS …`.
//! - `map-slow N [NODES]`: each call reports `call I started on NODE`, sleeps
//!   300 ms and returns (I, its node); then `ran I on NODE` per result, in order,
//!   and `map done` (the test kills a node mid-way).
//! - `receiver-arg`: a spawn whose argument carries a receiver: `refused: ERROR`.
//! - `wrong-program`: a spawn on the other node, which runs another program:
//!   `refused: ERROR`.
//! - `this-node`: `this node: ID`, then `node ID free=F load=L` per live node.
//! - `prejoin`: a child on the other node, its handle dropped: `main returns`,
//!   and there `remote child done on NODE` (before this run ends).
//! - `unjoined`: a local child waiting and a remote one that panics, its handle
//!   dropped: `sibling cancelled`, `main cancelled`, and the run fails
//!   (child-failed).
//! - `any N`: N children spawned at once on `Node::any()`, each napping 500 ms:
//!   `any: NODE=COUNT …`, where they ran (a node whose run is full passes them on).

use std::collections::BTreeMap;
use std::time::Duration;

use weft_guest::cluster::{self, Node, node_name as name};
use weft_guest::supervisor::{Child, Supervisor};
use weft_guest::{JoinError, Receiver, RecvError, Sender, channel};
use weft_test_guests::{fail, say, wait_for_nodes};

/// The calling microthread's node, by name.
fn here() -> String {
    name(&cluster::this_node()).to_string()
}

/// The first live node that is not this one, once there is one.
fn other() -> Node {
    let me = cluster::this_node();
    match wait_for_nodes(2)
        .into_iter()
        .find(|n| n.id() != Some(me.as_str()))
    {
        Some(node) => node,
        None => unreachable!("wait_for_nodes returns another node among the live ones"),
    }
}

fn node_name(node: &Node) -> &str {
    node.name().unwrap_or("any")
}

/// How a join failed, on one line.
fn join_failed(e: &JoinError) -> String {
    match e {
        JoinError::Failed(f) => format!(
            "join failed: kind={:?} message={}",
            f.kind,
            f.message.lines().next().unwrap_or("")
        ),
        JoinError::Cancelled => "join failed: this microthread was cancelled".to_string(),
    }
}

fn small(x: u64) -> (String, u64) {
    (here(), x * 2)
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The large call: the argument's length and checksum, and a large result of its
/// own (the argument reversed).
fn large(bytes: Vec<u8>) -> (usize, u64, Vec<u8>) {
    let sum = checksum(&bytes);
    let mut back = bytes;
    back.reverse();
    (back.len(), sum, back)
}

fn report_progress(progress: Sender<String>) -> u32 {
    for i in 1..=3 {
        if let Err(e) = progress.send(format!("progress {i}")) {
            panic!("cannot report progress {i}: {e}");
        }
    }
    3
}

fn join() {
    let other = other();
    let h = cluster::spawn_on(other.clone(), small, 21).unwrap_or_else(|e| fail(format!("small: {e}")));
    if h.node().as_deref() != other.id() {
        fail(format!("small: the handle says node {:?}, not {other}", h.node()));
    }
    match h.join() {
        Ok((node, result)) => say(format!("small: {node} {result}")),
        Err(e) => fail(format!("small: {}", join_failed(&e))),
    }

    let bytes: Vec<u8> = (0..200 * 1024u32)
        .map(|i| (i.wrapping_mul(7) ^ (i >> 8)) as u8)
        .collect();
    let want = checksum(&bytes);
    let len = bytes.len();
    let mut reversed = bytes.clone();
    reversed.reverse();
    let h = cluster::spawn_on(other.clone(), large, bytes).unwrap_or_else(|e| fail(format!("large: {e}")));
    match h.join() {
        Ok((n, sum, back)) => {
            let ok = if n == len && sum == want && back == reversed {
                "checksum ok"
            } else {
                "checksum wrong"
            };
            say(format!("large: {n} {ok}"));
        }
        Err(e) => fail(format!("large: {}", join_failed(&e))),
    }

    let (tx, rx) = channel::<String>(4);
    let h = cluster::spawn_on(other, report_progress, tx).unwrap_or_else(|e| fail(format!("progress: {e}")));
    for _ in 0..3 {
        match rx.recv() {
            Ok(line) => say(line),
            Err(e) => fail(format!("progress: {e}")),
        }
    }
    match h.join() {
        Ok(3) => say("progress joined"),
        Ok(n) => fail(format!("progress: the child returned {n}, not 3")),
        Err(e) => fail(format!("progress: {}", join_failed(&e))),
    }
}

fn boom(_: ()) {
    panic!("boom on {}", here());
}

fn panics() {
    let h = cluster::spawn_on(other(), boom, ()).unwrap_or_else(|e| fail(format!("panic: {e}")));
    match h.join() {
        Ok(()) => fail("the panicking child returned"),
        Err(e) => {
            say(join_failed(&e));
            if let JoinError::Failed(f) = e {
                say("whole message:");
                say(f.message);
            }
        }
    }
}

/// Say it started, then block in `recv` on a channel of its own until cancelled.
fn recv_child(started: Sender<String>) {
    let (_keep, rx) = channel::<()>(1);
    if let Err(e) = started.send(here()) {
        panic!("cannot say it started: {e}");
    }
    match rx.recv() {
        Err(RecvError::Cancelled) => say(format!("cleanup: recv child on {}", here())),
        other => panic!("recv child: the receive ended with {other:?}, not a cancellation"),
    }
}

/// Say it started, then spin.
fn spin_child(started: Sender<String>) {
    if let Err(e) = started.send(here()) {
        panic!("cannot say it started: {e}");
    }
    let mut x = 0u64;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

/// Start `child` on the other node, wait until it says it started, and return its
/// handle and node.
fn started(child: fn(Sender<String>)) -> (weft_guest::JoinHandle<()>, String) {
    let (tx, rx) = channel::<String>(1);
    let h = cluster::spawn_on(other(), child, tx).unwrap_or_else(|e| fail(format!("spawn: {e}")));
    match rx.recv() {
        Ok(node) => (h, node),
        Err(e) => fail(format!("the child did not say it started: {e}")),
    }
}

fn cancel(child: fn(Sender<String>)) {
    let (h, _node) = started(child);
    h.cancel();
    match h.join() {
        Ok(()) => say("cancelled: the child returned"),
        Err(JoinError::Failed(f)) => say(format!("cancelled: kind={:?}", f.kind)),
        Err(JoinError::Cancelled) => fail("this microthread was cancelled"),
    }
}

fn node_down() {
    let (h, node) = started(recv_child);
    // Its id is one of this run's: a monitor watches it as any other.
    let down = weft_guest::monitor(h.id());
    say(format!("started on {node}"));
    match h.join() {
        Ok(()) => fail("the child returned"),
        Err(e) => say(join_failed(&e)),
    }
    match down.recv() {
        Ok(weft_guest::Down {
            outcome: weft_guest::DownOutcome::Failed(f),
            ..
        }) => say(format!("down: kind={:?}", f.kind)),
        other => fail(format!("the monitor said {other:?}")),
    }
}

/// A supervised child: says where it runs at each start, then blocks until its
/// supervisor stops it.
fn supervised_child(starts: Sender<String>) {
    if let Err(e) = starts.send(here()) {
        panic!("cannot say where it started: {e}");
    }
    let (_keep, rx) = channel::<()>(1);
    match rx.recv() {
        Err(RecvError::Cancelled) => {}
        other => panic!("supervised child: the receive ended with {other:?}"),
    }
}

fn supervised() {
    let other = other();
    let (tx, starts) = channel::<String>(4);
    let handle = Supervisor::new("pinned")
        .intensity(3, Duration::from_secs(60))
        .child(Child::new("remote", supervised_child, tx).node(other))
        .start()
        .unwrap_or_else(|e| fail(format!("cannot start the supervisor: {e}")));
    for _ in 0..2 {
        match starts.recv() {
            Ok(node) => say(format!("child on {node}")),
            Err(e) => fail(format!("no start heard of: {e}")),
        }
        match handle.which_children() {
            Ok(children) => {
                let node = children
                    .first()
                    .unwrap_or_else(|| fail("the supervisor lists no child"))
                    .node
                    .clone();
                say(format!("which: {}", node.as_deref().map_or("this node", name)));
            }
            Err(e) => fail(format!("which_children: {e}")),
        }
    }
    if let Err(e) = handle.shutdown() {
        fail(format!("shutdown: {e}"));
    }
    match handle.join() {
        Ok(()) => say("supervisor shut down"),
        Err(e) => fail(format!("the supervisor: {}", join_failed(&e))),
    }
}

/// A CPU-bound pure function: two million rounds of an integer hash.
fn crunch(seed: u64) -> u64 {
    let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2_000_000 {
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 29;
    }
    h
}

fn crunch_where(seed: u64) -> (u64, String) {
    (crunch(seed), here())
}

fn digest(values: &[u64]) -> u64 {
    values
        .iter()
        .fold(0u64, |d, &v| d.rotate_left(5) ^ v.wrapping_mul(0x0100_0000_01b3))
}

fn count(arg: &str) -> u64 {
    arg.parse()
        .unwrap_or_else(|_| fail(format!("expected a count, got {arg:?}")))
}

/// How many live nodes a map waits for: the argument, or 2.
fn want(arg: &str) -> usize {
    match arg {
        "" => 2,
        n => n
            .parse()
            .unwrap_or_else(|_| fail(format!("expected a number of nodes, got {n:?}"))),
    }
}

fn concurrency() -> usize {
    2 * cluster::nodes().len().max(1)
}

fn map(n: u64, want: usize) {
    wait_for_nodes(want);
    let spread = cluster::parallel_map(crunch_where, 0..n, concurrency())
        .unwrap_or_else(|e| fail(format!("cluster::parallel_map: {e}")));
    let remote: Vec<u64> = spread.iter().map(|(v, _)| *v).collect();
    let local =
        weft_guest::parallel_map(crunch, 0..n, 2).unwrap_or_else(|e| fail(format!("parallel_map: {e}")));
    say(format!("map: cluster {:016x}", digest(&remote)));
    say(format!("map: local {:016x}", digest(&local)));
    say(if remote == local { "same" } else { "different" });
    let mut by_node: BTreeMap<&str, u32> = BTreeMap::new();
    for (_, node) in &spread {
        *by_node.entry(node.as_str()).or_default() += 1;
    }
    let by_node: Vec<String> = by_node.iter().map(|(node, n)| format!("{node}={n}")).collect();
    say(format!("spread: {}", by_node.join(" ")));
}

/// A slow call: reports that it started, sleeps 300 ms, returns its item and node.
fn slow((item, started): (u64, Sender<String>)) -> (u64, String) {
    if let Err(e) = started.send(format!("call {item} started on {}", here())) {
        panic!("call {item}: cannot report its start: {e}");
    }
    if weft_guest::sleep(Duration::from_millis(300)).is_err() {
        panic!("call {item} was cancelled");
    }
    (item, here())
}

/// Print the starts the calls report (a detached microthread: cancelled when
/// `main` ends).
fn print_starts(starts: Receiver<String>) {
    while let Ok(line) = starts.recv() {
        say(line);
    }
}

fn map_slow(n: u64, want: usize) {
    wait_for_nodes(want);
    let (tx, rx) = channel::<String>(64);
    weft_guest::spawn_detached(print_starts, rx);
    let items: Vec<(u64, Sender<String>)> = (0..n).map(|i| (i, tx.clone())).collect();
    drop(tx);
    let results = cluster::parallel_map(slow, items, concurrency())
        .unwrap_or_else(|e| fail(format!("cluster::parallel_map: {e}")));
    for (i, (item, node)) in results.iter().enumerate() {
        if *item != i as u64 {
            fail(format!("result {i} is of item {item}"));
        }
        say(format!("ran {item} on {node}"));
    }
    say("map done");
}

fn never(_: Receiver<u32>) {
    unreachable!("a spawn carrying a receiver to another node must be refused");
}

fn refused<R>(what: &str, spawned: Result<weft_guest::JoinHandle<R>, weft_guest::SpawnError>) {
    match spawned {
        Err(e) => say(format!("refused: {e:?}")),
        Ok(h) => fail(format!(
            "{what}: the spawn was not refused (microthread {})",
            h.id()
        )),
    }
}

fn twice(x: u32) -> u32 {
    x * 2
}

fn this_node() {
    say(format!("this node: {}", cluster::this_node()));
    for node in cluster::nodes() {
        say(format!(
            "node {node} name={} free={} load={}",
            node_name(&node),
            node.free(),
            node.load()
        ));
    }
}

/// Sleep a while (so that the calls overlap) and say where it ran.
fn nap_here(ms: u64) -> String {
    if let Err(e) = weft_guest::sleep(Duration::from_millis(ms)) {
        fail(format!("nap_here: {e}"));
    }
    here()
}

/// `any N`: N children spawned at once on `Node::any()`, each napping 500 ms;
/// `any: NODE=COUNT …` of where they ran, once all are joined.
fn any(n: u64) {
    wait_for_nodes(2);
    let handles: Vec<_> = (0..n)
        .map(|_| match cluster::spawn_on(Node::any(), nap_here, 500) {
            Ok(handle) => handle,
            Err(e) => fail(format!("any: {e}")),
        })
        .collect();
    let mut spread = BTreeMap::new();
    for handle in handles {
        match handle.join() {
            Ok(node) => *spread.entry(node).or_insert(0u32) += 1,
            Err(e) => fail(format!("any: {e}")),
        }
    }
    let spread: Vec<String> = spread.iter().map(|(n, c)| format!("{n}={c}")).collect();
    say(format!("any: {}", spread.join(" ")));
}

/// Nap 300 ms, then print that it is done, on its node.
fn done_later(_: ()) {
    nap_here(300);
    say(format!("remote child done on {}", here()));
}

/// `prejoin`: spawn a child on the other node, drop its handle, return: the run
/// ends only once that child has (`main returns` comes first).
fn prejoin() {
    let h = cluster::spawn_on(other(), done_later, ()).unwrap_or_else(|e| fail(format!("prejoin: {e}")));
    drop(h);
    say("main returns");
}

/// A local child that waits until cancelled, and says so.
fn sibling(_: ()) {
    let (_keep, rx) = channel::<()>(1);
    match rx.recv() {
        Err(RecvError::Cancelled) => say("sibling cancelled"),
        other => panic!("sibling: the receive ended with {other:?}, not a cancellation"),
    }
}

/// `unjoined`: a local child that waits, and a child on the other node that
/// panics, its handle dropped: its failure cancels the sibling and fails `main`
/// (which waits in a sleep until cancelled: `main cancelled`).
fn unjoined() {
    let _sibling = weft_guest::spawn(sibling, ());
    let remote = cluster::spawn_on(other(), boom, ()).unwrap_or_else(|e| fail(format!("unjoined: {e}")));
    drop(remote);
    match weft_guest::sleep(Duration::from_secs(60)) {
        Err(_) => say("main cancelled"),
        Ok(()) => say("main slept on: nothing cancelled it"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    match arg(1) {
        "join" => join(),
        "panic" => panics(),
        "cancel-recv" => cancel(recv_child),
        "cancel-spin" => cancel(spin_child),
        "node-down" => node_down(),
        "supervised" => supervised(),
        "map" => map(count(arg(2)), want(arg(3))),
        "map-slow" => map_slow(count(arg(2)), want(arg(3))),
        "receiver-arg" => {
            let (_tx, rx) = channel::<u32>(1);
            refused("receiver-arg", cluster::spawn_on(other(), never, rx));
        }
        "wrong-program" => refused("wrong-program", cluster::spawn_on(other(), twice, 21)),
        "this-node" => this_node(),
        "any" => any(count(arg(2))),
        "prejoin" => prejoin(),
        "unjoined" => unjoined(),
        other => {
            eprintln!(
                "unknown mode {other:?}: join, panic, cancel-recv, cancel-spin, node-down, supervised, \
                 map N, map-slow N, receiver-arg, wrong-program, this-node, any N, prejoin, unjoined"
            );
            std::process::exit(2);
        }
    }
}

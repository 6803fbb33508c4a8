//! A node's guest in a cluster (`weft run --cluster …`), chosen by the first
//! argument:
//! - `produce ID COUNT`: sends COUNT messages of mixed sizes (0 to 4 KiB, and every
//!   1000th one 600 KiB) on the host sender `jobs`, each carrying ID, its sequence
//!   number and a payload whose bytes are derived from both; then one of 2 MiB,
//!   which no link carries: it must come back (`too-large`). Prints `produced ID
//!   COUNT, refused 1 too large`.
//! - `consume`: receives from the host receiver `jobs` until it ends, checking
//!   each message's payload and that each producer's sequence numbers come in
//!   order with no gap and no duplicate; prints `receiving from ID` at each
//!   producer's first message, then
//!   `received N from K producers, in order` and how it ended (`closed`, or
//!   `failed KIND: MESSAGE`).
//! - `fail-after ID N`: sends N messages as `produce` does, then panics while it
//!   holds the sender: the receivers get its failure once they drained.
//! - `select-mixed`: a select over a local receiver, the host receiver `jobs` (a
//!   remote channel's proxy) and a timer, three times: prints which case came.
//! - `register NAME N`: registers a channel of strings under NAME (the cluster's
//!   registry), prints `registered NAME` (or why not), then prints the N strings
//!   it receives. `lookup NAME K`: waits for NAME anywhere in the cluster, sends K
//!   strings on it. `lookup-once NAME`: `found NAME` or `not found: NAME`.
//!   `lookup-wrong-type NAME`: asks for NAME as a sender of `u64` (it panics).
//! - `ask TEXT` / `answer`: a question with a reply sender in it, across nodes (on
//!   the host ends `asks`), and its answer on that sender.
//! - `give-receiver` / `take-receiver`: a receiver carried across nodes (on the
//!   host ends `boxes`), and what comes on its channel.
//! - `nodes WANT`: print this node's name and the live nodes' names
//!   (`nodes: a b`), once they are `WANT` (the second argument) many.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_guest::{RecvError, Select, Selected, SendError, host_receiver, host_sender};

#[derive(Serialize, Deserialize)]
struct Job {
    from: u32,
    seq: u64,
    payload: Vec<u8>,
}

fn size_of(seq: u64) -> usize {
    if seq % 1000 == 999 {
        600 * 1024
    } else {
        [0, 8, 64, 512, 4096][(seq % 5) as usize]
    }
}

fn payload(from: u32, seq: u64) -> Vec<u8> {
    (0..size_of(seq))
        .map(|i| {
            (seq as usize)
                .wrapping_mul(31)
                .wrapping_add(i)
                .wrapping_add(from as usize) as u8
        })
        .collect()
}

fn produce(from: u32, count: u64) {
    let jobs = host_sender::<Job>("jobs").expect("the node imports a sender `jobs`");
    for seq in 0..count {
        let job = Job {
            from,
            seq,
            payload: payload(from, seq),
        };
        if let Err(e) = jobs.send(job) {
            eprintln!("producer {from}: message {seq} not sent: {e}");
            std::process::exit(1);
        }
    }
    let huge = Job {
        from,
        seq: count,
        payload: vec![7; 2 << 20],
    };
    match jobs.send(huge) {
        Err(SendError::TooLarge(_)) => {}
        other => {
            eprintln!("producer {from}: a 2 MiB message was not refused as too large: {other:?}");
            std::process::exit(1);
        }
    }
    println!("produced {from} {count}, refused 1 too large");
}

fn fail_after(from: u32, count: u64) {
    let jobs = host_sender::<Job>("jobs").expect("the node imports a sender `jobs`");
    for seq in 0..count {
        let job = Job {
            from,
            seq,
            payload: payload(from, seq),
        };
        jobs.send(job).expect("the consumer listens");
    }
    panic!("producer {from} fails after {count} messages");
}

fn consume() {
    let jobs = host_receiver::<Job>("jobs").expect("the node exports a receiver `jobs`");
    let mut next: HashMap<u32, u64> = HashMap::new();
    let mut received = 0u64;
    let end = loop {
        match jobs.recv() {
            Ok(job) => {
                if !next.contains_key(&job.from) {
                    println!("receiving from {}", job.from);
                }
                let want = next.entry(job.from).or_insert(0);
                if job.seq != *want {
                    eprintln!(
                        "producer {}: got message {}, expected {}",
                        job.from, job.seq, want
                    );
                    std::process::exit(1);
                }
                if job.payload != payload(job.from, job.seq) {
                    eprintln!("producer {}: message {} is corrupt", job.from, job.seq);
                    std::process::exit(1);
                }
                *want += 1;
                received += 1;
            }
            Err(RecvError::Closed) => break "closed".to_string(),
            Err(RecvError::Failed(f)) => break format!("failed {:?}: {}", f.kind, f.message),
            Err(RecvError::Cancelled) => break "cancelled".to_string(),
        }
    };
    println!("received {received} from {} producers, in order", next.len());
    println!("{end}");
}

fn select_mixed() {
    let jobs = host_receiver::<Job>("jobs").expect("the node imports a receiver `jobs`");
    let (local_tx, local_rx) = weft_guest::channel::<u32>(1);
    local_tx.send(1).expect("room for one");
    let mut seen = Vec::new();
    for _ in 0..3 {
        let timer = weft_guest::after(Duration::from_millis(300));
        let mut select = Select::new();
        select.recv(&local_rx);
        select.recv(&jobs);
        select.recv(&timer);
        match select.wait() {
            Selected::Received { index: 0, .. } => seen.push("local"),
            Selected::Received { index: 1, message } => {
                let job: Job = message.decode();
                println!("remote job {} {}", job.from, job.seq);
                seen.push("remote");
            }
            Selected::Received { index: 2, .. } => seen.push("timer"),
            other => {
                eprintln!("unexpected {other:?}");
                std::process::exit(1);
            }
        }
    }
    seen.sort();
    println!("select: {}", seen.join(" "));
}

fn nodes(want: usize) {
    let me = weft_guest::cluster::node_id().expect("the program runs in a cluster");
    loop {
        let nodes = weft_guest::cluster::nodes();
        if nodes.len() >= want {
            let mut names: Vec<&str> = nodes
                .iter()
                .map(|node| node.name().expect("a live node has a name"))
                .collect();
            names.sort();
            println!("me: {}", me.rsplit_once('.').map_or(me.as_str(), |(n, _)| n));
            println!("nodes: {}", names.join(" "));
            return;
        }
        weft_guest::sleep(Duration::from_millis(20)).expect("not cancelled");
    }
}

/// Register a channel of strings under `name` (across the cluster), then print
/// the `n` strings it receives.
fn register(name: &str, n: usize) {
    let (tx, rx) = weft_guest::channel::<String>(4);
    match weft_guest::register(name, &tx) {
        Ok(()) => println!("registered {name}"),
        Err(weft_guest::RegisterError::TakenOn { node }) => {
            let node = node
                .rsplit_once('.')
                .map_or(node.as_str(), |(n, _)| n)
                .to_string();
            println!("refused: {name} is taken on {node}");
            return;
        }
        Err(e) => {
            println!("refused: {e}");
            return;
        }
    }
    for _ in 0..n {
        println!("got {}", rx.recv().expect("the senders stay"));
    }
}

/// Wait until `name` is registered somewhere in the cluster, then send `k`
/// strings on it.
fn lookup(name: &str, k: usize) {
    let me = weft_guest::cluster::node_id().expect("in a cluster");
    let me = me.rsplit_once('.').map_or(me.as_str(), |(n, _)| n).to_string();
    let tx = loop {
        match weft_guest::whereis::<String>(name) {
            Some(tx) => break tx,
            None => weft_guest::sleep(Duration::from_millis(20)).expect("not cancelled"),
        }
    };
    for i in 0..k {
        tx.send(format!("hello {i} from {me}"))
            .expect("the registrant listens");
    }
    println!("sent {k}");
}

/// A question with the channel its answer goes back on.
#[derive(Serialize, Deserialize)]
struct Ask {
    text: String,
    reply: weft_guest::Sender<String>,
}

/// Ask on the host sender `asks`, with a reply channel of this microthread's
/// (its sender travels in the message, to whichever node answers); print the
/// answer.
fn ask(text: &str) {
    let asks = host_sender::<Ask>("asks").expect("the node has a sender `asks`");
    let (reply, answers) = weft_guest::channel::<String>(1);
    asks.send(Ask {
        text: text.to_string(),
        reply,
    })
    .unwrap_or_else(|e| panic!("cannot ask: {e}"));
    println!("answer: {}", answers.recv().expect("an answer comes back"));
}

/// Answer one question from the host receiver `asks` on the sender it carries.
fn answer() {
    let asks = host_receiver::<Ask>("asks").expect("the node has a receiver `asks`");
    let q = asks.recv().expect("a question comes");
    let me = weft_guest::cluster::node_id().expect("in a cluster");
    let me = me.rsplit_once('.').map_or(me.as_str(), |(n, _)| n).to_string();
    q.reply
        .send(format!("{me} says pong to {}", q.text))
        .unwrap_or_else(|e| panic!("cannot answer: {e}"));
    println!("answered {}", q.text);
}

/// Send a receiver of a channel of this microthread's on the host sender
/// `boxes` (it crosses to whichever node receives it), then two strings on the
/// channel, then close it; then wait until the application closes `done` (the end
/// of a run empties its channels).
fn give_receiver() {
    let boxes = host_sender::<weft_guest::Receiver<String>>("boxes").expect("the node has a sender `boxes`");
    let (tx, rx) = weft_guest::channel::<String>(4);
    boxes
        .send(rx)
        .unwrap_or_else(|e| panic!("cannot give the receiver: {e}"));
    for s in ["one", "two"] {
        tx.send(s.to_string())
            .expect("the receiver is alive, wherever it is");
    }
    drop(tx);
    println!("gave");
    let done = host_receiver::<()>("done").expect("the application hands `done`");
    while done.recv().is_ok() {}
}

/// Take a receiver from the host receiver `boxes`, and print what comes on it.
fn take_receiver() {
    let boxes =
        host_receiver::<weft_guest::Receiver<String>>("boxes").expect("the node has a receiver `boxes`");
    let rx = boxes.recv().expect("a receiver comes");
    loop {
        match rx.recv() {
            Ok(s) => println!("took {s}"),
            Err(e) => {
                println!("then {e}");
                return;
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    match arg(1) {
        "produce" => produce(arg(2).parse().expect("ID"), arg(3).parse().expect("COUNT")),
        "consume" => consume(),
        "fail-after" => fail_after(arg(2).parse().expect("ID"), arg(3).parse().expect("N")),
        "select-mixed" => select_mixed(),
        "nodes" => nodes(arg(2).parse().expect("WANT")),
        "register" => register(arg(2), arg(3).parse().expect("N")),
        "ask" => ask(arg(2)),
        "answer" => answer(),
        "give-receiver" => give_receiver(),
        "take-receiver" => take_receiver(),
        "lookup" => lookup(arg(2), arg(3).parse().expect("K")),
        "lookup-once" => match weft_guest::whereis::<String>(arg(2)) {
            Some(_) => println!("found {}", arg(2)),
            None => println!("not found: {}", arg(2)),
        },
        "lookup-wrong-type" => {
            let _ = weft_guest::whereis::<u64>(arg(2));
        }
        other => {
            eprintln!("unknown mode {other:?}");
            std::process::exit(2);
        }
    }
}

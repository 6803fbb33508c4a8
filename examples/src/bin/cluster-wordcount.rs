//! Word counts over a set of files, spread over the nodes of a cluster: one program
//! on every node, the counting node spawning the work on the others with
//! `cluster::parallel_map`, as it would spawn microthreads on one machine.
//!
//! ```text
//! counter ──parallel_map──▶ counter ┐
//!         ├───────────────▶ node a  ├──word counts──▶ counter: merge, top 10
//!         └───────────────▶ node b  ┘
//! ```
//!
//! `main` (arguments `[--nodes N] (--dir DIR | FILE…)`) reads the files named (or
//! every file of DIR), waits until N nodes are live (default 1: this one), counts
//! the words of each file with `cluster::parallel_map` over the live nodes (a file
//! of more than 256 KiB goes in parts, cut at white space), merges the counts, and
//! prints the 10 most frequent words, the totals, and which nodes counted each
//! file. Outside a cluster it counts on this node alone. The other nodes run the
//! same program without its `main` (`weft node`): they only run what is spawned
//! on them.
//!
//! The files must be in a directory granted to the guest (`weft run --dir-ro
//! HOST::GUEST`). On one machine, with a `nats-server` at URL
//! (`scripts/cluster-demo.sh` does this):
//!
//! ```text
//! weft node --cluster URL --node a cluster-wordcount.wasm &
//! weft node --cluster URL --node b cluster-wordcount.wasm &
//! weft run --cluster URL --node counter --dir-ro ./texts::/texts \
//!     cluster-wordcount.wasm --nodes 3 --dir /texts
//! ```
//!
//! A node lost while counting has its calls run again on another one: counting a
//! text is safe to re-run.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use weft_guest::cluster::{self, node_name as name};

/// The most a call's argument carries: a file larger than this is counted in
/// parts (a link between nodes carries messages of a bounded size).
const PART: usize = 256 * 1024;

/// How long `count --nodes N` waits for N live nodes.
const WAIT_FOR_NODES: Duration = Duration::from_secs(120);

fn usage() -> ! {
    eprintln!("usage: cluster-wordcount [--nodes N] (--dir DIR | FILE...)");
    weft_guest::exit(2)
}

fn fail(message: String) -> ! {
    eprintln!("cluster-wordcount: {message}");
    weft_guest::exit(1)
}

/// Count the words of `text` (letters and digits, lower-cased), on whichever node
/// runs it: the counts, and that node's name.
fn count_words(text: String) -> (HashMap<String, u64>, String) {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        *counts.entry(word.to_lowercase()).or_default() += 1;
    }
    (counts, name(&cluster::this_node()).to_string())
}

/// `text` cut into parts of at most [`PART`] bytes, at white space where there is
/// some (a word longer than a part is cut where it must be).
fn parts(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while rest.len() > PART {
        let mut cut = PART;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let at = rest[..cut]
            .rfind(char::is_whitespace)
            .map_or(cut, |i| i + rest[i..].chars().next().map_or(1, char::len_utf8));
        parts.push(rest[..at].to_string());
        rest = &rest[at..];
    }
    parts.push(rest.to_string());
    parts
}

/// The files to count: those named, or those of the directory after `--dir`.
fn files(args: &[String]) -> Vec<PathBuf> {
    match args {
        [flag, dir] if flag == "--dir" => {
            let entries = std::fs::read_dir(dir)
                .unwrap_or_else(|e| fail(format!("cannot list {dir}: {e} (is it granted with --dir-ro?)")));
            let mut files = Vec::new();
            for entry in entries {
                let entry = entry.unwrap_or_else(|e| fail(format!("cannot list {dir}: {e}")));
                let kind = entry
                    .file_type()
                    .unwrap_or_else(|e| fail(format!("{}: {e}", entry.path().display())));
                if kind.is_file() {
                    files.push(entry.path());
                }
            }
            files.sort();
            if files.is_empty() {
                fail(format!("{dir} has no files to count"));
            }
            files
        }
        [] => usage(),
        files if files.iter().any(|f| f.starts_with("--")) => usage(),
        files => files.iter().map(PathBuf::from).collect(),
    }
}

/// Wait until `want` nodes are live (this one included).
fn wait_for_nodes(want: usize) {
    let deadline = Instant::now() + WAIT_FOR_NODES;
    loop {
        let live = cluster::nodes();
        if live.len() >= want {
            return;
        }
        if Instant::now() >= deadline {
            let names: Vec<&str> = live.iter().filter_map(|n| n.name()).collect();
            fail(format!(
                "{want} nodes wanted, {} live after {WAIT_FOR_NODES:?}: {names:?}; start the others with `weft node`",
                live.len()
            ));
        }
        if weft_guest::sleep(Duration::from_millis(100)).is_err() {
            fail("cancelled while waiting for the nodes".to_string());
        }
    }
}

fn count(args: &[String]) {
    let (want, rest) = match args {
        [flag, n, rest @ ..] if flag == "--nodes" => match n.parse::<usize>() {
            Ok(n) if n > 0 => (n, rest),
            _ => usage(),
        },
        rest => (1, rest),
    };
    let files = files(rest);
    let mut texts = Vec::new();
    // Which file each part is of.
    let mut part_of = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| {
            fail(format!(
                "cannot read {}: {e} (is it UTF-8 text, in a directory granted with --dir-ro?)",
                file.display()
            ))
        });
        for part in parts(&text) {
            texts.push(part);
            part_of.push(i);
        }
    }
    if cluster::node_id().is_some() {
        wait_for_nodes(want);
    } else if want > 1 {
        fail(format!(
            "--nodes {want}: not in a cluster: run it with weft run --cluster nats://HOST:PORT"
        ));
    }
    let live: Vec<String> = cluster::nodes().iter().map(|n| n.to_string()).collect();
    println!(
        "counting {} files ({} parts) on {} nodes: {live:?}",
        files.len(),
        texts.len(),
        live.len().max(1)
    );
    let concurrency = 2 * live.len().max(1);
    let counted = cluster::parallel_map(count_words, texts, concurrency)
        .unwrap_or_else(|e| fail(format!("counting failed: {e}")));

    let mut total: HashMap<String, u64> = HashMap::new();
    let mut by_file: Vec<BTreeSet<String>> = vec![BTreeSet::new(); files.len()];
    let mut by_node: BTreeMap<String, usize> = BTreeMap::new();
    for ((counts, node), &file) in counted.into_iter().zip(&part_of) {
        for (word, n) in counts {
            *total.entry(word).or_default() += n;
        }
        by_file[file].insert(node.clone());
        *by_node.entry(node).or_default() += 1;
    }
    let mut words: Vec<(&String, &u64)> = total.iter().collect();
    words.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    println!("top 10:");
    for (word, n) in words.iter().take(10) {
        println!("  {n:>8}  {word}");
    }
    println!(
        "total: {} words, {} distinct",
        total.values().sum::<u64>(),
        total.len()
    );
    println!("counted by:");
    for (file, nodes) in files.iter().zip(&by_file) {
        let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
        println!("  {}: {}", file.display(), nodes.join(", "));
    }
    for (node, parts) in by_node {
        println!("  node {node}: {parts} parts");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    count(&args);
}

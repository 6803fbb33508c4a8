//! What several test guests share: a line printed and flushed at once, a failure
//! with its reason, and the wait for a cluster's nodes.

use std::io::Write;
use std::time::{Duration, Instant};

use weft_guest::cluster::{self, Node};

/// Print a line and flush it, so that a test sees it at once.
pub fn say(line: impl AsRef<str>) {
    let mut out = std::io::stdout();
    if let Err(e) = writeln!(out, "{}", line.as_ref()).and_then(|()| out.flush()) {
        eprintln!("cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// Fail the run with `message` on stderr, after the program's name.
pub fn fail(message: impl AsRef<str>) -> ! {
    let program = std::env::args().next().unwrap_or_default();
    let name = std::path::Path::new(&program)
        .file_stem()
        .map_or("guest".into(), |s| s.to_string_lossy());
    eprintln!("{name}: {}", message.as_ref());
    std::process::exit(1)
}

/// Wait until `want` nodes are live (this one counts, and for `want` ≥ 2 another
/// must be among them), for at most 10 s: the live nodes. Fails the run past that.
pub fn wait_for_nodes(want: usize) -> Vec<Node> {
    let me = cluster::this_node();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let live = cluster::nodes();
        let other = live.iter().any(|n| n.id() != Some(me.as_str()));
        if live.len() >= want && (want < 2 || other) {
            return live;
        }
        if Instant::now() >= deadline {
            fail(format!(
                "{want} live nodes wanted within 10 s (this node is {me}; live: {:?})",
                live.iter().map(|n| n.to_string()).collect::<Vec<_>>()
            ));
        }
        if weft_guest::sleep(Duration::from_millis(20)).is_err() {
            fail("cancelled while waiting for the nodes");
        }
    }
}

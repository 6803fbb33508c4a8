//! Spawns that may start in an instance made ahead of need by an idle worker, and
//! ends whose store an idle worker drops; chosen by the first argument:
//! - `fresh N MS`: N rounds of: spawn a child that bumps a global and reads a
//!   byte it wrote on the heap last time, join it, sleep MS (the worker is idle:
//!   it makes instances ahead). Every child must see a fresh instance: `fresh N`.
//! - `released N`: N rounds of: a child takes a sender and ends; once it is
//!   joined, its sender is gone (dropped before the join returned), so the
//!   receiver reads `Closed`, never `Empty`: `released N`.
//! - `full LIVE ROUNDS`: ROUNDS rounds of LIVE children alive at once (the
//!   runtime's limit, with `main`), each joined, so that every pool slot is
//!   used while the stores of the last round may still wait to be dropped:
//!   `full ROUNDS`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use weft_guest::{Receiver, Sender, TryRecvError, channel};

static BUMPS: AtomicU64 = AtomicU64::new(0);
static mut MARK: Option<Box<u8>> = None;

/// What this instance had seen before: the global's old value, and whether the
/// heap byte was already there. A fresh instance has seen nothing.
fn bump(_: ()) -> (u64, bool) {
    let before = BUMPS.fetch_add(1, Ordering::SeqCst);
    // SAFETY: one microthread per instance: nobody else touches it.
    let marked = unsafe {
        let mark = &mut *std::ptr::addr_of_mut!(MARK);
        let had = mark.is_some();
        *mark = Some(Box::new(7));
        had
    };
    (before, marked)
}

fn hold(sender: Sender<u64>) {
    drop(sender.send(1));
    // Ends holding a clone, dropped with it.
    let _clone = sender.clone();
}

fn wait(rx: Receiver<()>) {
    drop(rx.recv());
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| -> u64 { args[i].parse().expect("a number") };
    match args[0].as_str() {
        "fresh" => {
            let (n, ms) = (num(1), num(2));
            for round in 0..n {
                let seen = weft_guest::spawn(bump, ()).join().expect("the child ends");
                assert_eq!(
                    seen,
                    (0, false),
                    "round {round}: the child's instance was not fresh"
                );
                weft_guest::sleep(Duration::from_millis(ms)).expect("not cancelled");
            }
            println!("fresh {n}");
        }
        "released" => {
            let n = num(1);
            for round in 0..n {
                let (tx, rx) = channel::<u64>(4);
                weft_guest::spawn(hold, tx).join().expect("the child ends");
                assert_eq!(rx.try_recv(), Ok(1), "round {round}");
                assert_eq!(
                    rx.try_recv(),
                    Err(TryRecvError::Closed),
                    "round {round}: the joined child's senders are gone"
                );
            }
            println!("released {n}");
        }
        "full" => {
            let (live, rounds) = (num(1), num(2));
            for _ in 0..rounds {
                let (senders, children): (Vec<_>, Vec<_>) = (0..live)
                    .map(|_| {
                        let (tx, rx) = channel::<()>(0);
                        (tx, weft_guest::spawn(wait, rx))
                    })
                    .unzip();
                // All LIVE are alive now; each ends at its channel's closing.
                drop(senders);
                for child in children {
                    child.join().expect("the child ends");
                }
            }
            println!("full {rounds}");
        }
        other => panic!("unknown mode {other}"),
    }
}

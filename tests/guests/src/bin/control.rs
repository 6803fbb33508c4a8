//! Runs for the embedder to control, chosen by the first argument:
//! - `sleep MS`: main sleeps MS ms, then prints `slept`.
//! - `spin [CHILDREN]`: prints `spinning`, then loops forever without calling the
//!   host, in main and in CHILDREN spawned microthreads.
//! - `hold N MS`: spawns N microthreads that sleep MS ms, prints `holding N`, joins.
//! - `burn STEPS`: STEPS steps of an LCG loop in main; prints the result.
//! - `burn-children K STEPS`: K microthreads of STEPS steps each; prints what each
//!   join returned.
//! - `fill SIZE`: fills channels with SIZE-byte messages (`try_send`) until the
//!   run's buffered-bytes budget refuses; prints how many went in; then a blocking
//!   send on the channel the budget refused waits until a child has drained a
//!   message from it, and prints `sent after waiting`.
//! - `channels`: opens channels until the host refuses; prints how many.
//! - `refused-spawn`: a spawn the host refuses (argument too large or no room) whose
//!   argument carries the only sender of a channel: the receiver then sees the
//!   channel closed.
//! - `flood`: prints numbered lines until stdout fails, then exits with code 3.
//! - `hold-tidy N MS`: as `hold`, but each sleeper that is cancelled prints
//!   `tidied up` (its cleanup ran).
//! - `born-cancelled`: a child, cancelled, spawns in its cleanup a grandchild that
//!   ignores its cancellation in a loop, holding the only sender of a channel;
//!   main prints `the stubborn grandchild was stopped` once that channel closes.
//! - `exit-main`: a detached microthread goes to sleep (printing `cleanup after
//!   the exit` should its sleep be cancelled); main then exits with code 5.
//! - `slow-cleanup`: a child, cancelled by main, and then a detached microthread,
//!   cancelled by the end of main, each clean up in numbered steps for longer than
//!   any grace period.

use std::io::Write;
use std::time::Duration;

use weft_guest::{Receiver, RecvTimeoutError, Sender, channel, try_channel};

fn spin(_: ()) {
    let mut x = std::hint::black_box(1u64);
    loop {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
}

fn nap(ms: u64) -> u64 {
    // Cancelled or not, the nap is over.
    let _cancelled = weft_guest::sleep(Duration::from_millis(ms));
    ms
}

fn burn(steps: u64) -> u64 {
    let mut x = std::hint::black_box(1u64);
    for i in 0..steps {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407)
            ^ i;
    }
    x
}

/// Takes one message off `rx` after a while, so that a blocked sender can go on.
fn drain_one((rx, ms): (Receiver<Vec<u8>>, u64)) -> usize {
    weft_guest::sleep(Duration::from_millis(ms)).expect("not cancelled");
    rx.recv().map(|m| m.len()).unwrap_or(0)
}

fn keep_sender(tx: (Sender<u8>, Vec<u8>)) {
    drop(tx);
}

fn tidy_nap(ms: u64) -> u64 {
    if weft_guest::sleep(Duration::from_millis(ms)).is_err() {
        println!("tidied up");
    }
    ms
}

/// Ignores its cancellation: every sleep fails at once, and it sleeps again.
fn stubborn(tx: Sender<u8>) {
    let _held = tx;
    loop {
        let _ignored = weft_guest::sleep(Duration::from_millis(5));
    }
}

fn cancelled_parent(tx: Sender<u8>) {
    if weft_guest::sleep(Duration::from_secs(600)).is_ok() {
        return;
    }
    // Its cleanup starts a child: born into the cancellation.
    let child = weft_guest::spawn(stubborn, tx);
    let _cancelled = child.join();
}

fn detached_sleeper(tx: Sender<u8>) {
    tx.send(1).expect("main listens");
    if weft_guest::sleep(Duration::from_secs(600)).is_err() {
        println!("cleanup after the exit");
    }
}

fn slow_cleanup(who: String) {
    if weft_guest::sleep(Duration::from_secs(600)).is_ok() {
        return;
    }
    for step in 0..10_000u64 {
        println!("{who} cleanup step {step}: {}", burn(50_000) % 1000);
    }
    println!("{who} cleanup finished");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> u64 { args[i].parse().expect("a number") };
    match args.first().map(String::as_str) {
        Some("sleep") => match weft_guest::sleep(Duration::from_millis(arg(1))) {
            Ok(()) => println!("slept"),
            Err(e) => println!("{e}"),
        },
        Some("spin") => {
            let children = if args.len() > 1 { arg(1) } else { 0 };
            let _handles: Vec<_> = (0..children).map(|_| weft_guest::spawn(spin, ())).collect();
            println!("spinning");
            std::io::stdout().flush().unwrap();
            spin(());
        }
        Some("hold") => {
            let (n, ms) = (arg(1), arg(2));
            let handles: Vec<_> = (0..n).map(|_| weft_guest::spawn(nap, ms)).collect();
            println!("holding {n}");
            std::io::stdout().flush().unwrap();
            for h in handles {
                h.join().unwrap();
            }
        }
        Some("burn") => println!("burnt {}", burn(arg(1))),
        Some("burn-children") => {
            let handles: Vec<_> = (0..arg(1)).map(|_| weft_guest::spawn(burn, arg(2))).collect();
            for h in handles {
                match h.join() {
                    Ok(x) => println!("joined {x}"),
                    Err(f) => println!("joined failure: {f}"),
                }
            }
        }
        Some("fill") => {
            let size = arg(1) as usize;
            let mut channels = Vec::new();
            let mut accepted = 0u64;
            'fill: loop {
                let (tx, rx) = channel::<Vec<u8>>(64);
                for _ in 0..64 {
                    match tx.try_send(vec![7u8; size]) {
                        Ok(()) => accepted += 1,
                        Err(_) => {
                            channels.push((tx, rx));
                            break 'fill;
                        }
                    }
                }
                channels.push((tx, rx));
            }
            println!("accepted {accepted} messages of {size} bytes");
            std::io::stdout().flush().unwrap();
            // The budget is spent (the last channel's buffer has room, the run has
            // none): this send waits until the child takes a message off that channel.
            let (tx, rx) = channels.last().expect("a channel");
            let drained = weft_guest::spawn(drain_one, (rx.clone(), 300));
            tx.send(vec![1u8; size]).expect("a blocking send");
            println!(
                "sent after waiting; the child drained {} bytes",
                drained.join().unwrap()
            );
        }
        Some("channels") => {
            let mut open = Vec::new();
            loop {
                match try_channel::<u8>(0) {
                    Ok(c) => open.push(c),
                    Err(e) => {
                        println!("opened {} then: {e}", open.len());
                        break;
                    }
                }
            }
        }
        Some("refused-spawn") => {
            let (tx, rx) = channel::<u8>(0);
            let big = vec![0u8; arg(1) as usize];
            match weft_guest::Builder::new().spawn(keep_sender, (tx, big)) {
                Ok(h) => println!("spawned {}", h.id()),
                Err(e) => println!("refused: {e}"),
            }
            match rx.recv_timeout(Duration::from_secs(10)) {
                Err(RecvTimeoutError::Closed) => println!("the channel closed"),
                other => println!("the channel did not close: {other:?}"),
            }
        }
        Some("flood") => {
            let mut out = std::io::stdout();
            for i in 0u64.. {
                if writeln!(out, "line {i}").and_then(|()| out.flush()).is_err() {
                    weft_guest::exit(3);
                }
            }
        }
        Some("hold-tidy") => {
            let (n, ms) = (arg(1), arg(2));
            let handles: Vec<_> = (0..n).map(|_| weft_guest::spawn(tidy_nap, ms)).collect();
            println!("holding {n}");
            std::io::stdout().flush().unwrap();
            for h in handles {
                if h.join().is_err() {
                    println!("a sleeper was cancelled");
                }
            }
        }
        Some("born-cancelled") => {
            let (tx, rx) = channel::<u8>(0);
            let parent = weft_guest::spawn(cancelled_parent, tx);
            parent.cancel();
            match parent.join() {
                Ok(()) => println!("the parent was not cancelled"),
                Err(e) => println!("the parent: {e}"),
            }
            match rx.recv() {
                Err(_) => println!("the stubborn grandchild was stopped"),
                Ok(_) => println!("the grandchild sent something"),
            }
        }
        Some("exit-main") => {
            let (tx, rx) = channel::<u8>(0);
            weft_guest::spawn_detached(detached_sleeper, tx);
            rx.recv().expect("the detached one is up");
            println!("main exits");
            std::io::stdout().flush().unwrap();
            weft_guest::exit(5);
        }
        Some("slow-cleanup") => {
            let child = weft_guest::spawn(slow_cleanup, "child".to_string());
            weft_guest::sleep(Duration::from_millis(1)).expect("not cancelled");
            child.cancel();
            match child.join() {
                Ok(()) => println!("the child was not cancelled"),
                Err(e) => println!("joined the child: {e}"),
            }
            weft_guest::spawn_detached(slow_cleanup, "detached".to_string());
            weft_guest::sleep(Duration::from_millis(1)).expect("not cancelled");
            println!("main returns");
        }
        _ => {
            eprintln!("usage: control sleep MS | spin [N] | hold N MS | burn STEPS | …");
            std::process::exit(2);
        }
    }
}

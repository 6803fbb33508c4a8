//! Structured concurrency, chosen by the first argument: cancellation (of blocked,
//! busy and stubborn microthreads, and of their children), unjoined and joined
//! failures, detached microthreads, atomic sections, and whole-line output.

use std::io::Write;
use std::time::Duration;

use weft_guest::{
    FailureKind, JoinError, JoinTimeoutError, Receiver, RecvError, RecvTimeoutError, Sender, channel,
    generate, spawn, spawn_detached,
};

fn say(line: &str) {
    println!("{line}");
}

/// Waits on a channel nobody sends on; on cancellation, cleans up and returns.
fn wait_forever(rx: Receiver<u8>) -> u32 {
    match rx.recv() {
        Err(RecvError::Cancelled) => say("blocked: recv cancelled, cleaning up"),
        other => say(&format!("blocked: unexpected {other:?}")),
    }
    7
}

/// Waits with a timeout of a minute; cancellation ends the wait at once.
fn wait_a_minute(rx: Receiver<u8>) {
    match rx.recv_timeout(Duration::from_secs(60)) {
        Err(RecvTimeoutError::Cancelled) => say("timed: recv_timeout cancelled"),
        other => say(&format!("timed: unexpected {other:?}")),
    }
}

fn spin(_: ()) {
    let mut x = std::hint::black_box(1u64);
    loop {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
}

fn burn(steps: u64) -> u64 {
    let mut x = std::hint::black_box(1u64);
    for i in 0..steps {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
    }
    x
}

/// Sees the cancellation, ignores it, blocks again (which fails at once), then
/// keeps busy: the grace period ends it.
fn stubborn(rx: Receiver<u8>) {
    let _ = rx.recv();
    match weft_guest::sleep(Duration::from_secs(60)) {
        Err(e) => say(&format!("stubborn: sleep after the cancellation: {e}")),
        Ok(()) => say("stubborn: slept a minute"),
    }
    spin(());
}

/// Holds `tx` while it sleeps: cancelled, it drops it.
fn hold_sender(tx: Sender<u8>) {
    let _tx = tx;
    let _cancelled = weft_guest::sleep(Duration::from_secs(60));
}

fn grandchild(_: ()) {
    if weft_guest::sleep(Duration::from_secs(60)).is_err() {
        say("grandchild: cancelled with its parent");
    }
}

fn parent_of_one(_: ()) {
    let h = spawn(grandchild, ());
    if weft_guest::sleep(Duration::from_secs(60)).is_err() {
        say("parent: cancelled");
    }
    let _ = h.join();
}

fn sleep_long(_: ()) {
    match weft_guest::sleep(Duration::from_secs(30)) {
        Err(_) => say("sibling: cancelled"),
        Ok(()) => say("sibling: slept 30 s"),
    }
}

fn trap_soon(_: ()) {
    let _ = weft_guest::sleep(Duration::from_millis(50));
    say("trapper: trapping");
    core::arch::wasm32::unreachable()
}

fn panic_now(_: ()) {
    panic!("detached boom");
}

fn detached_sleeper(_: ()) {
    if weft_guest::sleep(Duration::from_secs(60)).is_err() {
        say("detached: cancelled at the end of main, cleaning up");
    }
}

fn numbers(tx: Sender<u64>) {
    for n in 0.. {
        if tx.send(n).is_err() {
            say("producer: the reader is gone, cleaning up");
            return;
        }
    }
}

fn print_once(_: ()) {
    say("spinner: ran");
    spin(());
}

/// Prints `lines` long lines, each in many small writes.
fn long_lines((letter, lines): (char, u32)) {
    let piece: String = std::iter::repeat_n(letter, 60).collect();
    let mut out = std::io::stdout();
    for _ in 0..lines {
        for _ in 0..10 {
            write!(out, "{piece}").unwrap();
            out.flush().unwrap();
            weft_guest::yield_now();
        }
        writeln!(out).unwrap();
    }
}

/// Allocates 1 MiB blocks until the allocator fails.
fn hoard(_: ()) -> usize {
    let mut blocks = Vec::new();
    loop {
        blocks.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&blocks);
    }
}

fn kind(e: &JoinError) -> String {
    match e {
        JoinError::Failed(f) => format!("{:?}", f.kind),
        JoinError::Cancelled => "joiner cancelled".into(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("cancel-blocked") => {
            let (_tx, rx) = channel::<u8>(0);
            let h = spawn(wait_forever, rx);
            weft_guest::sleep(Duration::from_millis(50)).unwrap();
            h.cancel();
            h.cancel(); // twice is once
            let joined = h.join();
            say(&format!("joined: {}", kind(joined.as_ref().unwrap_err())));
        }
        Some("cancel-timed") => {
            let (_tx, rx) = channel::<u8>(0);
            let h = spawn(wait_a_minute, rx);
            weft_guest::sleep(Duration::from_millis(50)).unwrap();
            h.cancel();
            say(&format!("joined: {}", kind(&h.join().unwrap_err())));
        }
        Some("cancel-busy") => {
            let h = spawn(spin, ());
            weft_guest::sleep(Duration::from_millis(50)).unwrap();
            h.cancel();
            match h.join() {
                Err(JoinError::Failed(f)) if f.kind == FailureKind::Cancelled => say(&format!("joined: {f}")),
                other => say(&format!("joined: unexpected {other:?}")),
            }
        }
        Some("cancel-stubborn") => {
            let (_tx, rx) = channel::<u8>(0);
            let h = spawn(stubborn, rx);
            weft_guest::sleep(Duration::from_millis(50)).unwrap();
            h.cancel();
            let joined = h.join();
            say(&format!("joined: {}", kind(joined.as_ref().unwrap_err())));
        }
        Some("cancel-closes") => {
            let (tx, rx) = channel::<u8>(0);
            let h = spawn(hold_sender, tx);
            weft_guest::sleep(Duration::from_millis(50)).unwrap();
            h.cancel();
            // The child's sender closes for its peer: no failure, no hang.
            say(&format!("recv: {:?}", rx.recv()));
            say(&format!("joined: {}", kind(&h.join().unwrap_err())));
        }
        Some("cancel-children") => {
            let h = spawn(parent_of_one, ());
            weft_guest::sleep(Duration::from_millis(50)).unwrap();
            h.cancel();
            say(&format!("joined: {}", kind(&h.join().unwrap_err())));
        }
        Some("cancel-finished") => {
            let h = spawn(burn, 10);
            while !h.is_finished() {
                weft_guest::yield_now();
            }
            h.cancel();
            say(&format!("joined: {:?}", h.join().is_ok()));
        }
        Some("join-timeout") => {
            let (_tx, rx) = channel::<u8>(0);
            let h = spawn(wait_forever, rx);
            let h = match h.join_timeout(Duration::ZERO) {
                Err(JoinTimeoutError::Timeout(h)) => h,
                other => panic!("{other:?}"),
            };
            let h = match h.join_timeout(Duration::from_millis(20)) {
                Err(JoinTimeoutError::Timeout(h)) => h,
                other => panic!("{other:?}"),
            };
            say(&format!("finished before the cancel: {}", h.is_finished()));
            h.cancel();
            match h.join_timeout(Duration::from_secs(10)) {
                Err(JoinTimeoutError::Failed(f)) => say(&format!("joined after the cancel: {:?}", f.kind)),
                other => say(&format!("unexpected {other:?}")),
            }
        }
        Some("unjoined-siblings") => {
            spawn(sleep_long, ());
            spawn(trap_soon, ());
            match weft_guest::sleep(Duration::from_secs(60)) {
                Err(e) => say(&format!("main: {e}")),
                Ok(()) => say("main: slept a minute"),
            }
        }
        Some("oom") => match spawn(hoard, ()).join() {
            Err(JoinError::Failed(f)) => say(&format!(
                "joined: {:?}: {}",
                f.kind,
                f.message.lines().next().unwrap_or("")
            )),
            other => say(&format!("joined: unexpected {other:?}")),
        },
        Some("joined-trap") => {
            let _sibling = spawn(burn, 1000);
            match spawn(trap_soon, ()).join() {
                Err(JoinError::Failed(f)) => say(&format!("main: handled a {:?}, carrying on", f.kind)),
                other => say(&format!("main: unexpected {other:?}")),
            }
        }
        Some("detached-failure") => {
            spawn_detached(panic_now, ());
            weft_guest::sleep(Duration::from_millis(100)).unwrap();
            say("main: carries on");
        }
        Some("detached-outlives") => {
            spawn_detached(detached_sleeper, ());
            weft_guest::sleep(Duration::from_millis(50)).unwrap();
            say("main: returns");
        }
        Some("abandoned-generate") => {
            let first = generate(numbers).unwrap().next();
            say(&format!("main: took {first:?}"));
        }
        Some(mode @ ("atomic" | "no-atomic")) => {
            let _spinner = spawn(print_once, ());
            let section = || {
                say("main: section begins");
                std::hint::black_box(burn(std::hint::black_box(30_000_000)));
                say("main: section done");
            };
            if mode == "atomic" {
                weft_guest::atomic(section);
            } else {
                section();
            }
            say("main: after the section");
            weft_guest::exit(0);
        }
        Some("atomic-cap") => {
            std::hint::black_box(weft_guest::atomic(|| burn(std::hint::black_box(10_000_000_000))));
            say("main: unreachable");
        }
        Some("atomic-blocking") => {
            let x = weft_guest::atomic(|| {
                weft_guest::sleep(Duration::from_millis(1)).unwrap();
                burn(1000)
            });
            say(&format!("main: a blocking call ended the section ({})", x != 0));
        }
        Some("lines") => {
            let handles: Vec<_> = ['a', 'b', 'c', 'd']
                .into_iter()
                .map(|c| spawn(long_lines, (c, 50)))
                .collect();
            for h in handles {
                h.join().unwrap();
            }
        }
        Some("cleanup-on-signal") => {
            let h = spawn(grandchild, ());
            say("ready");
            std::io::stdout().flush().unwrap();
            let _ = h.join();
            match weft_guest::sleep(Duration::from_secs(60)) {
                Err(e) => say(&format!("main: {e}")),
                Ok(()) => say("main: slept"),
            }
        }
        _ => {
            eprintln!("usage: structure MODE");
            std::process::exit(2);
        }
    }
}

//! Guests that try to make the host hold more than its bounds allow, chosen by the
//! first argument. Each reports what the host answered on stdout.
//! - `hold-results N BYTES`: N children each return BYTES bytes; main keeps their
//!   join handles until all have finished, sends `held` on the application's
//!   `events` and waits for a byte on its `go`; then joins them all, printing
//!   `child I: ok LEN` or `child I: failed: …`, sends `joined` and waits again.
//! - `big-result BYTES`: a child returns BYTES bytes; main prints how its join went.
//! - `long-panic BYTES`: a child panics with a message of BYTES bytes; main prints
//!   how long the first line of the failure it joined is. Then a child with a name
//!   of BYTES bytes prints how long the name it sees is.
//! - `alone oom|stack|handles|spawn`: a child allocates until its memory is full,
//!   recurses until its stack ends, clones a channel end until it holds its maximum
//!   of handles, or spawns until the limit; a sibling works beside it. Main joins
//!   both and prints `hostile: …` and `sibling: …`.
//! - `run-handles K`: K children each clone a channel end until the host refuses;
//!   main joins them, prints each failure, then clones one more end itself.
//! - `sdk-at-limit`: spawns sleepers until the host refuses, then tries
//!   `parallel_map` and `generate`, which return the refusal; prints it.
//! - `partial-line BYTES`: main writes BYTES bytes without a line end, sends
//!   `written` on `events`, waits for `go`, then ends the line.

use std::io::Write;
use std::time::Duration;

use weft_guest::{
    Builder, JoinError, MapError, Receiver, Sender, channel, generate, host_receiver, host_sender,
    parallel_map, spawn,
};

fn events() -> (Sender<String>, Receiver<u8>) {
    let events = host_sender::<String>("events").expect("the application gives `events`");
    let go = host_receiver::<u8>("go").expect("the application gives `go`");
    (events, go)
}

fn bytes(n: usize) -> Vec<u8> {
    vec![7u8; n]
}

fn panic_with(n: usize) {
    panic!("{}", "p".repeat(n));
}

fn my_name_len(_: ()) -> usize {
    weft_guest::current().name.map_or(0, |n| n.len())
}

fn oom(_: ()) -> usize {
    let mut blocks = Vec::new();
    loop {
        blocks.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&blocks);
    }
}

fn deep(n: u64) -> u64 {
    if n == u64::MAX {
        return 0;
    }
    let below = deep(std::hint::black_box(n + 1));
    std::hint::black_box(below).wrapping_add(n)
}

fn stack(_: ()) -> usize {
    deep(0) as usize
}

/// Clone `tx` until the host stops it; never returns normally.
fn clones(tx: Sender<u8>) -> usize {
    let mut ends = Vec::new();
    loop {
        ends.push(tx.clone());
        std::hint::black_box(&ends);
    }
}

fn handles(_: ()) -> usize {
    let (tx, _rx) = channel::<u8>(0);
    clones(tx)
}

fn nap(ms: u64) -> u64 {
    // Cancelled or not, the nap is over.
    let _cancelled = weft_guest::sleep(Duration::from_millis(ms));
    ms
}

fn spawn_until_refused(_: ()) -> usize {
    let mut naps = Vec::new();
    loop {
        match Builder::new().spawn(nap, 500) {
            Ok(h) => naps.push(h),
            Err(e) => {
                println!("hostile: refused after {} spawns: {e}", naps.len());
                return naps.len();
            }
        }
    }
}

/// Works in steps, giving the others a turn after each.
fn steady(steps: u64) -> u64 {
    let mut x = 1u64;
    for i in 0..steps {
        for _ in 0..10_000 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
        }
        weft_guest::yield_now();
    }
    steps
}

fn double(x: u64) -> u64 {
    2 * x
}

fn count_to_three(tx: Sender<u64>) {
    for i in 1..=3 {
        if tx.send(i).is_err() {
            return;
        }
    }
}

fn describe<R: std::fmt::Debug>(r: Result<R, JoinError>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(JoinError::Failed(f)) => format!("{:?}: {}", f.kind, f.message.lines().next().unwrap_or("")),
        Err(e) => format!("{e}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| -> usize { args[i].parse().expect("a number") };
    match args.first().map(String::as_str) {
        Some("hold-results") => {
            let (n, size) = (num(1), num(2));
            let (events, go) = events();
            let handles: Vec<_> = (0..n).map(|_| spawn(bytes, size)).collect();
            while !handles.iter().all(|h| h.is_finished()) {
                weft_guest::sleep(Duration::from_millis(1)).expect("not cancelled");
            }
            events.send("held".into()).expect("the application listens");
            go.recv().expect("go");
            for (i, h) in handles.into_iter().enumerate() {
                match h.join() {
                    Ok(v) => println!("child {i}: ok {}", v.len()),
                    Err(e) => println!(
                        "child {i}: failed: {}",
                        e.to_string().lines().next().unwrap_or("")
                    ),
                }
            }
            std::io::stdout().flush().unwrap();
            events.send("joined".into()).expect("the application listens");
            go.recv().expect("go");
        }
        Some("big-result") => {
            let r = spawn(bytes, num(1)).join();
            println!("joined: {}", describe(r.map(|v| v.len())));
            println!("main carries on");
        }
        Some("long-panic") => {
            let n = num(1);
            match spawn(panic_with, n).join() {
                Err(JoinError::Failed(f)) => {
                    let first = f.message.lines().next().unwrap_or("");
                    println!(
                        "panic {:?}, first line {} bytes, marked as cut: {}",
                        f.kind,
                        first.len(),
                        first.ends_with("…[truncated]")
                    );
                }
                other => println!("unexpected: {other:?}"),
            }
            let h = Builder::new()
                .name("n".repeat(n))
                .spawn(my_name_len, ())
                .expect("spawned");
            println!("name {} bytes", h.join().expect("joined"));
        }
        Some("alone") => {
            let sibling = spawn(steady, 50);
            let hostile = match args[1].as_str() {
                "oom" => spawn(oom, ()),
                "stack" => spawn(stack, ()),
                "handles" => spawn(handles, ()),
                "spawn" => spawn(spawn_until_refused, ()),
                other => panic!("no such hostile child: {other}"),
            };
            println!("hostile: {}", describe(hostile.join()));
            println!("sibling: {}", describe(sibling.join()));
        }
        Some("run-handles") => {
            let (tx, _rx) = channel::<u8>(0);
            let children: Vec<_> = (0..num(1)).map(|_| spawn(clones, tx.clone())).collect();
            for (i, c) in children.into_iter().enumerate() {
                println!("child {i}: {}", describe(c.join()));
            }
            let more = tx.clone();
            drop(more);
            println!("main cloned one more end");
        }
        Some("sdk-at-limit") => {
            let mut naps = Vec::new();
            while let Ok(h) = Builder::new().spawn(nap, 60_000) {
                naps.push(h);
            }
            match parallel_map(double, 0..10u64, 4) {
                Err(MapError::Spawn(e)) => println!("parallel_map: {e}"),
                other => println!("parallel_map: unexpected {other:?}"),
            }
            match generate(count_to_three) {
                Err(e) => println!("generate: {e}"),
                Ok(rx) => println!("generate: unexpected {:?}", rx.recv()),
            }
            for h in &naps {
                h.cancel();
            }
            for h in naps {
                // It was cancelled: its join says so; what matters is that it ended.
                let _cancelled = h.join();
            }
            // Room again.
            println!("parallel_map then: {:?}", parallel_map(double, 0..3u64, 2));
            println!(
                "generate then: {:?}",
                generate(count_to_three).map(|rx| rx.collect::<Vec<_>>())
            );
        }
        Some("partial-line") => {
            let (events, go) = events();
            let mut out = std::io::stdout();
            out.write_all("x".repeat(num(1)).as_bytes()).unwrap();
            out.flush().unwrap();
            events.send("written".into()).expect("the application listens");
            go.recv().expect("go");
            writeln!(out, " and the line ends").unwrap();
        }
        _ => {
            eprintln!(
                "usage: hostile hold-results N BYTES | big-result BYTES | long-panic BYTES | alone KIND | …"
            );
            std::process::exit(2);
        }
    }
}

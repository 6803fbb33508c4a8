//! Monitors, chosen by the first argument: one `Down` per monitor for a finished, a
//! failed and a cancelled microthread; several monitors on one; an id that ended
//! and one that never was; a receiver moved to another microthread; dropped
//! receivers; a watcher that finishes first; `select` over monitors; a churn of
//! mixed ends for deterministic runs; and the run's channel limit.

use weft_guest::{
    Down, DownOutcome, FailureKind, JoinError, Receiver, RecvError, Select, Selected, Sender, TryRecvError,
    channel, current_id, host_receiver, host_sender, monitor, spawn, try_monitor,
};

fn say(line: &str) {
    println!("{line}");
}

/// Waits for the gate, then returns.
fn gated(gate: Receiver<()>) -> u32 {
    gate.recv().expect("the gate opens");
    7
}

/// Waits for the gate, then panics.
fn gated_panic(gate: Receiver<()>) {
    gate.recv().expect("the gate opens");
    panic!("boom at the gate");
}

/// Waits on a channel nobody sends on, until it is cancelled.
fn blocked(rx: Receiver<()>) {
    match rx.recv() {
        Err(RecvError::Cancelled) => {}
        other => say(&format!("blocked: unexpected {other:?}")),
    }
}

/// How a `Down` reads, for comparing: whose it is and what its outcome says.
fn describe(down: &Down, expected_id: u64) -> String {
    let who = if down.id == expected_id {
        "the watched".to_string()
    } else {
        format!("id {} (expected {expected_id})", down.id)
    };
    let outcome = match &down.outcome {
        DownOutcome::Finished => "finished".to_string(),
        DownOutcome::Failed(f) => format!(
            "failed {:?}: {} (failure of {})",
            f.kind,
            f.message.lines().next().unwrap_or(""),
            if f.id == expected_id {
                "the watched"
            } else {
                "another"
            }
        ),
        DownOutcome::NoSuch => "no such".to_string(),
        other => format!("{other:?}"),
    };
    format!("{who} {:?} {outcome}", down.name)
}

/// The one `Down`, then the channel closed: exactly one.
fn the_down(rx: &Receiver<Down>) -> Down {
    let down = rx.recv().expect("a Down arrives");
    match rx.recv() {
        Err(RecvError::Closed) => {}
        other => say(&format!("after the Down: unexpected {other:?}")),
    }
    down
}

/// [`the_down`], described.
fn exactly_one(rx: &Receiver<Down>, expected_id: u64) -> String {
    describe(&the_down(rx), expected_id)
}

/// Whether the joiner saw the very failure the monitor did.
fn join_agrees<R: std::fmt::Debug>(down: &Down, joined: Result<R, JoinError>) -> String {
    match (joined, &down.outcome) {
        (Err(JoinError::Failed(f)), DownOutcome::Failed(seen)) => {
            format!("join: failed {:?}, the same failure: {}", f.kind, f == *seen)
        }
        (other, _) => format!("join: unexpected {other:?}"),
    }
}

fn finished() {
    let (open, gate) = channel::<()>(0);
    let h = weft_guest::Builder::new()
        .name("ok")
        .spawn(gated, gate)
        .expect("spawn");
    let m = monitor(h.id());
    open.send(()).expect("the gate");
    say(&format!("down: {}", exactly_one(&m, h.id())));
    say(&format!("join: {:?}", h.join()));
}

fn failed() {
    let (open, gate) = channel::<()>(0);
    let h = weft_guest::Builder::new()
        .name("bad")
        .spawn(gated_panic, gate)
        .expect("spawn");
    let m = monitor(h.id());
    open.send(()).expect("the gate");
    let down = the_down(&m);
    say(&format!("down: {}", describe(&down, h.id())));
    say(&join_agrees(&down, h.join()));
}

fn cancelled() {
    let (_keep, rx) = channel::<()>(0);
    let h = spawn(blocked, rx);
    let m = monitor(h.id());
    h.cancel();
    let down = the_down(&m);
    say(&format!("down: {}", describe(&down, h.id())));
    say(&join_agrees(&down, h.join()));
}

fn several() {
    let (open, gate) = channel::<()>(0);
    let h = spawn(gated, gate);
    let ms: Vec<Receiver<Down>> = (0..3).map(|_| monitor(h.id())).collect();
    open.send(()).expect("the gate");
    for (i, m) in ms.iter().enumerate() {
        say(&format!("down {i}: {}", exactly_one(m, h.id())));
    }
    h.join().expect("it returned");
}

fn not_live() {
    let h = spawn(|x: u32| x + 1, 1);
    let id = h.id();
    h.join().expect("it returned");
    // At once: no waiting.
    match monitor(id).try_recv() {
        Ok(down) => say(&format!("ended: {}", describe(&down, id))),
        Err(e) => say(&format!("ended: not at once: {e:?}")),
    }
    let never = 1_000_000;
    match monitor(never).try_recv() {
        Ok(down) => say(&format!("never: {}", describe(&down, never))),
        Err(e) => say(&format!("never: not at once: {e:?}")),
    }
    let me = current_id();
    say(&format!("main's id: {me}"));
}

/// Receives a monitor's receiver, waits for its `Down`, and reports it.
fn watch_for(args: (Receiver<Receiver<Down>>, u64, Sender<String>)) {
    let (inbox, id, report) = args;
    let m = inbox.recv().expect("a monitor arrives");
    report.send(exactly_one(&m, id)).expect("main listens");
}

fn moved() {
    let (open, gate) = channel::<()>(0);
    let h = spawn(gated, gate);
    let (give, inbox) = channel::<Receiver<Down>>(1);
    let (report, reports) = channel::<String>(1);
    let watcher = spawn(watch_for, (inbox, h.id(), report));
    give.send(monitor(h.id())).expect("the watcher takes it");
    open.send(()).expect("the gate");
    say(&format!(
        "moved: {}",
        reports.recv().expect("the watcher reports")
    ));
    watcher.join().expect("the watcher returned");
    h.join().expect("it returned");
}

/// The host checks the run's open channels between the steps.
fn dropped() {
    let report = host_sender::<String>("report").expect("the host's report channel");
    let go = host_receiver::<()>("go").expect("the host's go channel");
    let step = |what: &str| {
        report.send(what.to_string()).expect("the host listens");
        go.recv().expect("the host says go");
    };
    let (open, gate) = channel::<()>(0);
    let h = spawn(gated, gate);
    step("before");
    let ms: Vec<Receiver<Down>> = (0..50).map(|_| monitor(h.id())).collect();
    step("opened");
    drop(ms);
    step("dropped");
    open.send(()).expect("the gate");
    say(&format!("dropped: join {:?}", h.join()));
}

/// Monitors a microthread and returns without reading its `Down`.
fn watcher(id: u64) -> String {
    let m = monitor(id);
    match m.try_recv() {
        Err(TryRecvError::Empty) => "watcher: nothing yet, returning".to_string(),
        other => format!("watcher: unexpected {other:?}"),
    }
}

fn watcher_first() {
    let (open, gate) = channel::<()>(0);
    let h = spawn(gated, gate);
    let w = spawn(watcher, h.id());
    say(&w.join().expect("the watcher returns while the watched waits"));
    say(&format!("watched still running: {}", !h.is_finished()));
    open.send(()).expect("the gate: nobody cancelled the watched");
    say(&format!("watched: join {:?}", h.join()));
}

fn select_over() {
    let mut gates = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..3 {
        let (open, gate) = channel::<()>(0);
        handles.push(spawn(gated, gate));
        gates.push(open);
    }
    let ms: Vec<Receiver<Down>> = handles.iter().map(|h| monitor(h.id())).collect();
    let mut left = [true; 3];
    for which in [2, 0, 1] {
        gates[which].send(()).expect("the gate");
        let mut sel = Select::new();
        let indices: Vec<(usize, usize)> = (0..3)
            .filter(|&i| left[i])
            .map(|i| (sel.recv(&ms[i]), i))
            .collect();
        match sel.wait() {
            Selected::Received { index, message } => {
                let i = indices
                    .iter()
                    .find(|(op, _)| *op == index)
                    .expect("an operation")
                    .1;
                let down: Down = message.decode();
                left[i] = false;
                say(&format!(
                    "select: monitor {i}: {}",
                    describe(&down, handles[i].id())
                ));
            }
            other => say(&format!("select: unexpected {other:?}")),
        }
    }
    for h in handles {
        h.join().expect("it returned");
    }
}

fn fail_with(n: u32) -> u32 {
    if n % 3 == 1 {
        panic!("churn {n}");
    }
    n
}

/// Mixed ends, monitored as they happen and read in the order they arrive (some
/// end before their monitor is made: `no such`): under a seed, the same output
/// each time.
fn churn() {
    let mut handles = Vec::new();
    let mut monitors = Vec::new();
    for n in 0..9u32 {
        let h = spawn(fail_with, n);
        if n % 2 == 0 {
            weft_guest::yield_now();
        }
        monitors.push((h.id(), monitor(h.id())));
        handles.push(h);
    }
    let (_keep, rx) = channel::<()>(0);
    let stuck = spawn(blocked, rx);
    monitors.push((stuck.id(), monitor(stuck.id())));
    stuck.cancel();
    let mut left: Vec<usize> = (0..monitors.len()).collect();
    while !left.is_empty() {
        let mut sel = Select::new();
        let ops: Vec<usize> = left.iter().map(|&i| sel.recv(&monitors[i].1)).collect();
        match sel.wait() {
            Selected::Received { index, message } => {
                let at = ops.iter().position(|op| *op == index).expect("an operation");
                let (id, _) = &monitors[left[at]];
                let down: Down = message.decode();
                say(&format!("churn {id}: {}", describe(&down, *id)));
                left.remove(at);
            }
            other => say(&format!("churn: unexpected {other:?}")),
        }
    }
    // Their ends were reported by their monitors; joined, so that no failure is
    // left unjoined.
    for h in handles {
        let _seen_above = h.join();
    }
    let _seen_above = stuck.join();
}

/// Waits on a monitor of a microthread that waits forever (main holds the sender
/// it waits on): a deadlock, which the host reports.
fn deadlock() {
    let (_never, rx) = channel::<()>(0);
    let h = spawn(|rx: Receiver<()>| rx.recv().is_ok(), rx);
    let m = monitor(h.id());
    // The detector ends the run, which cancels both: whichever sees its cancellation
    // first decides whether this wait fails, or the watched one's Down (cancelled)
    // arrives first. Either way the cancellation ended it.
    match m.recv() {
        Err(RecvError::Cancelled) => say("deadlock: the wait ended with the cancellation"),
        Ok(Down {
            outcome: DownOutcome::Failed(f),
            ..
        }) if f.kind == FailureKind::Cancelled => say("deadlock: the wait ended with the cancellation"),
        other => say(&format!("deadlock: unexpected {other:?}")),
    }
}

/// Opens monitors until the host refuses one.
fn limit() {
    let mut held = Vec::new();
    loop {
        match try_monitor(current_id()) {
            Ok(m) => held.push(m),
            Err(e) => {
                say(&format!("limit: refused after {}: {e}", held.len()));
                break;
            }
        }
        if held.len() > 10_000 {
            say("limit: never refused");
            break;
        }
    }
    drop(held);
    // Room again once they are dropped.
    say(&format!("limit: after dropping, {}", try_monitor(0).is_ok()));
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    match mode.as_str() {
        "finished" => finished(),
        "failed" => failed(),
        "cancelled" => cancelled(),
        "several" => several(),
        "not-live" => not_live(),
        "moved" => moved(),
        "dropped" => dropped(),
        "watcher-first" => watcher_first(),
        "select" => select_over(),
        "churn" => churn(),
        "limit" => limit(),
        "deadlock" => deadlock(),
        other => {
            eprintln!("unknown mode {other:?}");
            std::process::exit(2);
        }
    }
}

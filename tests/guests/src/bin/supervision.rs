//! Supervisors, chosen by the first argument: each strategy (which siblings
//! restart, in which order), each restart type, the intensity exceeded, escalation
//! through two levels, a supervisor's long account of failures (the host cuts it),
//! shutdown order, a child ignoring its cancellation past its
//! shutdown time, `which_children`, a crash loop for deterministic runs, and the
//! order a cancelled tree stops in (by the end of the program, or by its handle),
//! within the supervisor's grace.
//!
//! A worker announces each start on the events channel (its name and microthread
//! id: ids grow in spawn order, so sorting by id gives the start order), then waits
//! for a command on its own channel, which its restarts share (its argument is
//! given afresh, the channel's end cloned): crash, or return. Cancelled, it prints
//! `stopped <name>` (its cleanup).

use std::time::Duration;

use weft_guest::supervisor::{Child, ChildState, Restart, Strategy, Supervisor, SupervisorHandle};
use weft_guest::{
    DownOutcome, FailureKind, JoinError, Receiver, RecvError, Sender, channel, current_id, monitor,
};

/// Crash on command.
const CRASH: u8 = 0;
/// Return on command.
const RETURN: u8 = 1;

/// A worker's argument: its name, its commands, where it announces its starts.
type Worker = (String, Receiver<u8>, Sender<(String, u64)>);

fn say(line: &str) {
    println!("{line}");
}

fn worker((name, commands, events): Worker) {
    events
        .send((name.clone(), current_id()))
        .expect("the test listens for starts");
    match commands.recv() {
        Ok(CRASH) => panic!("{name} crashes on command"),
        Ok(_) => say(&format!("{name} returns")),
        Err(RecvError::Cancelled) => say(&format!("stopped {name}")),
        Err(e) => panic!("{name}: unexpected {e:?}"),
    }
}

/// A worker named `name`: its child, and the sender of its commands.
fn child(name: &str, events: &Sender<(String, u64)>) -> (Child, Sender<u8>) {
    let (tx, rx) = channel(4);
    let child = Child::new(name, worker, (name.to_string(), rx, events.clone()));
    (child, tx)
}

/// Receive `n` start announcements: the names, in start (id) order, and the
/// latest id of each.
fn starts(events: &Receiver<(String, u64)>, n: usize) -> Vec<(String, u64)> {
    let mut got: Vec<(String, u64)> = (0..n)
        .map(|_| events.recv().expect("a start announcement"))
        .collect();
    got.sort_by_key(|(_, id)| *id);
    got
}

fn names(started: &[(String, u64)]) -> String {
    started
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Print the supervisor's children: name, state, restarts, and whether the id is
/// that of the child's latest start.
fn which(handle: &SupervisorHandle, latest: &[(String, u64)]) {
    for c in handle.which_children().expect("the supervisor answers") {
        let id_ok = latest
            .iter()
            .rev()
            .find(|(n, _)| *n == c.name)
            .is_some_and(|(_, id)| Some(*id) == c.id);
        say(&format!(
            "child {} {:?} restarts {} id of its latest start: {id_ok}",
            c.name, c.state, c.restarts
        ));
    }
}

/// Three permanent workers a, b, c under `strategy`; b crashes; then shutdown.
fn strategy(strategy: Strategy) {
    let (events_tx, events) = channel(16);
    let (a, _a) = child("a", &events_tx);
    let (b, crash_b) = child("b", &events_tx);
    let (c, _c) = child("c", &events_tx);
    let sup = Supervisor::new("sup")
        .strategy(strategy)
        .intensity(3, Duration::from_secs(60))
        .child(a)
        .child(b)
        .child(c)
        .start()
        .expect("the supervisor starts");
    let mut latest = starts(&events, 3);
    say(&format!("started: {}", names(&latest)));
    crash_b.send(CRASH).expect("b listens");
    let again = match strategy {
        Strategy::OneForOne => 1,
        Strategy::RestForOne => 2,
        _ => 3,
    };
    let restarted = starts(&events, again);
    say(&format!("restarted: {}", names(&restarted)));
    latest.extend(restarted);
    which(&sup, &latest);
    sup.shutdown().expect("not cancelled");
    say(&format!("joined: {:?}", sup.join()));
}

/// Restart types: transient and temporary children end for good (the
/// supervisor, with nothing left to run, finishes); a transient one restarts
/// after a failure, a permanent one after a return and a failure.
fn restart_types() {
    let (events_tx, events) = channel(16);
    let (t, t_cmd) = child("t", &events_tx);
    let (m, m_cmd) = child("m", &events_tx);
    let first = Supervisor::new("first")
        .child(t.restart(Restart::Transient))
        .child(m.restart(Restart::Temporary))
        .start()
        .expect("the supervisor starts");
    say(&format!("started: {}", names(&starts(&events, 2))));
    t_cmd.send(RETURN).expect("t listens");
    m_cmd.send(CRASH).expect("m listens");
    say(&format!("first joined: {:?}", first.join()));

    let (p, p_cmd) = child("p", &events_tx);
    let (t, t_cmd) = child("t", &events_tx);
    let second = Supervisor::new("second")
        .intensity(5, Duration::from_secs(60))
        .child(p)
        .child(t.restart(Restart::Transient))
        .start()
        .expect("the supervisor starts");
    let mut latest = starts(&events, 2);
    say(&format!("started: {}", names(&latest)));
    t_cmd.send(CRASH).expect("t listens");
    latest.extend(starts(&events, 1));
    p_cmd.send(RETURN).expect("p listens");
    latest.extend(starts(&events, 1));
    p_cmd.send(CRASH).expect("p listens");
    latest.extend(starts(&events, 1));
    say(&format!("restarted: {}", names(&latest[2..])));
    which(&second, &latest);
    second.shutdown().expect("not cancelled");
    say(&format!("second joined: {:?}", second.join()));

    // Ended for good, beside a permanent child that keeps the supervisor up:
    // `which_children` says how each ended.
    let (t, t_cmd) = child("t", &events_tx);
    let (m, m_cmd) = child("m", &events_tx);
    let (k, _k) = child("k", &events_tx);
    let third = Supervisor::new("third")
        .child(t.restart(Restart::Transient))
        .child(m.restart(Restart::Temporary))
        .child(k)
        .start()
        .expect("the supervisor starts");
    let latest = starts(&events, 3);
    say(&format!("started: {}", names(&latest)));
    t_cmd.send(RETURN).expect("t listens");
    m_cmd.send(CRASH).expect("m listens");
    // Until the supervisor has seen both ends (each question waits for its answer).
    while third
        .which_children()
        .expect("the supervisor answers")
        .iter()
        .any(|c| c.name != "k" && c.state == ChildState::Running)
    {
        weft_guest::yield_now();
    }
    which(&third, &latest);
    third.shutdown().expect("not cancelled");
    say(&format!("third joined: {:?}", third.join()));
}

/// Panics as soon as it starts.
fn crasher(what: String) {
    panic!("{what} crashes at once");
}

fn report(joined: Result<(), JoinError>) {
    match joined {
        Err(JoinError::Failed(f)) => {
            say(&format!(
                "failed {:?} ({})",
                f.kind,
                f.kind == FailureKind::RestartIntensity
            ));
            for line in f.message.lines() {
                say(line);
            }
        }
        other => say(&format!("joined: {other:?}")),
    }
}

/// A child that fails at once, past an intensity of 2 restarts.
fn intensity() {
    let sup = Supervisor::new("sup")
        .intensity(2, Duration::from_secs(60))
        .child(Child::new("crasher", crasher, "crasher".to_string()))
        .start()
        .expect("the supervisor starts");
    report(sup.join());
}

/// A supervisor whose account of its children's failures is long (100 restarts
/// allowed, each failure listed): the host cuts its failure's message.
fn long_account() {
    let sup = Supervisor::new("sup")
        .intensity(100, Duration::from_secs(3600))
        .child(Child::new("crasher", crasher, "x".repeat(200)))
        .start()
        .expect("the supervisor starts");
    match sup.join() {
        Err(JoinError::Failed(f)) => {
            say(&format!("failed {:?}", f.kind));
            say(&format!("message bytes: {}", f.message.len()));
            say(&format!("cut: {}", f.message.ends_with("…[truncated]")));
        }
        other => say(&format!("joined: {other:?}")),
    }
}

/// A child the host refuses to spawn (the run allows only `main` and the
/// supervisor): each refusal is an end, 1,000 restarts allowed, until it gives up.
fn unstartable() {
    let sup = Supervisor::new("sup")
        .intensity(1000, Duration::from_secs(3600))
        .child(Child::new("never", crasher, "never".to_string()))
        .start()
        .expect("the supervisor starts");
    match sup.join() {
        Err(JoinError::Failed(f)) => {
            say(&format!("failed {:?}", f.kind));
            for line in f.message.lines().take(2) {
                say(line);
            }
            say(&format!("cut: {}", f.message.ends_with("…[truncated]")));
        }
        other => say(&format!("joined: {other:?}")),
    }
}

/// A supervisor giving up is a failed child one level up, which gives up in turn.
fn escalation() {
    let middle = Supervisor::new("middle")
        .intensity(1, Duration::from_secs(60))
        .child(Child::new("crasher", crasher, "crasher".to_string()));
    let top = Supervisor::new("top")
        .intensity(1, Duration::from_secs(60))
        .child(Child::supervisor(middle))
        .start()
        .expect("the supervisor starts");
    report(top.join());
}

/// Ignores its cancellation: announces it, then spins until stopped.
fn stubborn((name, commands, events): Worker) {
    events
        .send((name.clone(), current_id()))
        .expect("the test listens for starts");
    if let Err(RecvError::Cancelled) = commands.recv() {
        say(&format!("{name} ignores the cancellation"));
        let mut n = 0u64;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

/// Shutdown in reverse start order, nested supervisors included: each stops its
/// children first; a stubborn child is stopped once its shutdown time is over.
fn shutdown() {
    let (events_tx, events) = channel(16);
    let (a, _a) = child("a", &events_tx);
    let (b, _b) = child("b", &events_tx);
    let (c, _c) = child("c", &events_tx);
    let (_s_cmd, s_rx) = channel(1);
    let stubborn = Child::new("s", stubborn, ("s".to_string(), s_rx, events_tx.clone()))
        .shutdown(Duration::from_millis(50));
    let inner = Supervisor::new("inner").child(b).child(c);
    let sup = Supervisor::new("outer")
        .child(a)
        .child(Child::supervisor(inner))
        .child(stubborn)
        .start()
        .expect("the supervisor starts");
    // Spawned by two supervisors, their ids race: by name.
    let mut started: Vec<String> = starts(&events, 4).into_iter().map(|(n, _)| n).collect();
    started.sort();
    say(&format!("started: {}", started.join(" ")));
    sup.shutdown().expect("not cancelled");
    // Once it has finished, it answers no more.
    let down = monitor(sup.id()).recv().expect("one Down");
    say(&format!("down: {:?}", down.outcome));
    say(&format!("which_children: {:?}", sup.which_children()));
    say(&format!("joined: {:?}", sup.join()));
}

/// Sleep until cancelled, then print `stopped <name>` (its cleanup). Its start is
/// announced as a worker's is.
fn sleeper((name, events): (String, Sender<(String, u64)>)) {
    events
        .send((name.clone(), current_id()))
        .expect("the test listens for starts");
    if weft_guest::sleep(Duration::from_secs(3600)).is_err() {
        say(&format!("stopped {name}"));
    }
}

/// The tree `outer(a, inner(b, c), d)` of sleepers, started; the names once all
/// have started.
fn sleeping_tree() -> SupervisorHandle {
    let (events_tx, events) = channel(16);
    let sleeper_child = |name: &str| Child::new(name, sleeper, (name.to_string(), events_tx.clone()));
    let inner = Supervisor::new("inner")
        .child(sleeper_child("b"))
        .child(sleeper_child("c"));
    let sup = Supervisor::new("outer")
        .child(sleeper_child("a"))
        .child(Child::supervisor(inner))
        .child(sleeper_child("d"))
        .start()
        .expect("the supervisor starts");
    let mut started: Vec<String> = starts(&events, 4).into_iter().map(|(n, _)| n).collect();
    started.sort();
    say(&format!("started: {}", started.join(" ")));
    sup
}

/// The end of the program (the test cancels the run, as Ctrl-C does) stops the
/// tree in reverse start order, nested supervisors included.
fn cancelled_run() {
    let _sup = sleeping_tree();
    // Until the run is cancelled (main's own cancellation; the tree's is the
    // supervisor's to carry out).
    let _cancelled = weft_guest::sleep(Duration::from_secs(3600));
}

/// How a join ended, in a word.
fn joined(result: Result<(), JoinError>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(JoinError::Failed(f)) => format!("{:?}", f.kind),
        Err(e) => format!("{e:?}"),
    }
}

/// Cancelling a supervisor by its handle stops its children in reverse start
/// order too, before it ends.
fn cancel_supervisor() {
    let sup = sleeping_tree();
    sup.cancel();
    say(&format!("joined: {}", joined(sup.join())));
}

/// A cancelled supervisor's grace bounds its shutdown: a child that ignores its
/// cancellation (with an hour of shutdown time) holds the supervisor up until the
/// supervisor's grace is over, and then it, the supervisor and the child not yet
/// stopped are all stopped where they are.
fn stubborn_under_cancel() {
    let (events_tx, events) = channel(16);
    let (a, _a) = child("a", &events_tx);
    let (_s_cmd, s_rx) = channel(1);
    let stubborn = Child::new("s", stubborn, ("s".to_string(), s_rx, events_tx.clone()))
        .shutdown(Duration::from_secs(3600));
    let sup = Supervisor::new("outer")
        .child(a)
        .child(stubborn)
        .start()
        .expect("the supervisor starts");
    let started = starts(&events, 2);
    say(&format!("started: {}", names(&started)));
    let downs: Vec<_> = started.iter().map(|(n, id)| (n.clone(), monitor(*id))).collect();
    sup.cancel();
    say(&format!("joined: {}", joined(sup.join())));
    for (name, down) in downs {
        let down = down.recv().expect("one Down");
        let outcome = match down.outcome {
            DownOutcome::Failed(f) => format!("{:?}", f.kind),
            other => format!("{other:?}"),
        };
        say(&format!("down {name}: {outcome}"));
    }
}

/// A microthread of the program's own that owns its shutdown: its cancellation
/// comes once, as a notice; its later calls work; its children are not cancelled
/// with it, and it stops them itself, the last started first.
fn owner(ready: Sender<()>) {
    weft_guest::own_shutdown();
    let (events_tx, events) = channel(4);
    let children: Vec<_> = ["x", "y", "z"]
        .into_iter()
        .map(|name| {
            weft_guest::Builder::new()
                .name(name)
                .spawn(sleeper, (name.to_string(), events_tx.clone()))
                .expect("a child starts")
        })
        .collect();
    let started = starts(&events, 3);
    say(&format!("owner started: {}", names(&started)));
    ready.send(()).expect("its parent waits");
    // Blocks until the notice comes (nothing is sent: it holds a sender).
    let notice = events.recv();
    say(&format!(
        "owner: {notice:?}, is_cancelled: {}",
        weft_guest::is_cancelled()
    ));
    let nap = weft_guest::sleep(Duration::from_millis(1));
    say(&format!("owner: a sleep after the notice: {nap:?}"));
    for child in children.into_iter().rev() {
        child.cancel();
        say(&format!("owner: joined a child: {}", joined(child.join())));
    }
}

/// [`owner`], cancelled by its parent.
fn own_shutdown() {
    let (ready_tx, ready) = channel(1);
    let handle = weft_guest::spawn(owner, ready_tx);
    ready.recv().expect("the owner and its children have started");
    handle.cancel();
    say(&format!("joined: {}", joined(handle.join())));
}

/// A crash loop for deterministic runs: workers crash one after the other under
/// one-for-all until the supervisor gives up.
fn crash_loop() {
    let (events_tx, events) = channel(64);
    let mut commands = Vec::new();
    let mut sup = Supervisor::new("loop")
        .strategy(Strategy::OneForAll)
        .intensity(4, Duration::from_secs(60));
    for name in ["w0", "w1", "w2"] {
        let (c, tx) = child(name, &events_tx);
        sup = sup.child(c);
        commands.push(tx);
    }
    let sup = sup.start().expect("the supervisor starts");
    drop(events_tx);
    for round in 0..5 {
        // In the order the schedule ran them, which picks the one to crash.
        let started: Vec<(String, u64)> = (0..3)
            .map(|_| events.recv().expect("a start announcement"))
            .collect();
        say(&format!("round {round}: {}", names(&started)));
        let pick = match started[0].0.as_str() {
            "w0" => 0,
            "w1" => 1,
            _ => 2,
        };
        commands[pick].send(CRASH).expect("the worker listens");
    }
    report(sup.join());
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    match mode.as_str() {
        "one-for-one" => strategy(Strategy::OneForOne),
        "one-for-all" => strategy(Strategy::OneForAll),
        "rest-for-one" => strategy(Strategy::RestForOne),
        "restart-types" => restart_types(),
        "intensity" => intensity(),
        "escalation" => escalation(),
        "long-account" => long_account(),
        "unstartable" => unstartable(),
        "shutdown" => shutdown(),
        "crash-loop" => crash_loop(),
        "cancelled-run" => cancelled_run(),
        "cancel-supervisor" => cancel_supervisor(),
        "stubborn-under-cancel" => stubborn_under_cancel(),
        "own-shutdown" => own_shutdown(),
        other => {
            eprintln!("unknown mode {other:?}");
            std::process::exit(2);
        }
    }
}

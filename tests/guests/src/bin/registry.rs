//! The registry of named endpoints (`weft_guest::register`, `whereis`), chosen by
//! the first argument:
//! - `find`: a server registers its requests' sender as `adder`; a client (another
//!   microthread, handed nothing) finds it and sends through it; prints
//!   `client: N + 1 = M` for each answer.
//! - `taken`: a server holds `svc`; main's registration of it fails, naming the
//!   server; so does another microthread's; prints `taken: by the server` twice.
//! - `wrong-type`: a server holds `svc` (a sender of `Request`); a child asks for a
//!   sender of `String` and must panic; main prints its failure.
//! - `restart`: a server holds `svc` and fails on a request; once it is joined the
//!   name is free, a second server registers it and is found; it returns, and a
//!   third one registers it again; it is cancelled, and a fourth one registers
//!   it again; prints each step.
//! - `too-long`: names of `MAX_NAME` bytes and one more, a fingerprint over the
//!   limit; prints each outcome.
//! - `many`: registers `n0`, `n1`, … until refused; prints
//!   `refused after K: <error>`, then that the names held are still found.
//! - `app`: a child registers `jobs` (a sender of `Job`) and prints on the host
//!   channel `events` each `Job` it receives until one says `stop`, then returns;
//!   main waits for a byte on the host channel `go`, joins it, sends `released`,
//!   and waits for the host channel `done` to close.

use serde::{Deserialize, Serialize};
use weft_guest::{JoinError, RegisterError, Sender, channel, register, spawn, whereis};

#[derive(Serialize, Deserialize)]
enum Request {
    Add(u64, Sender<u64>),
    Crash,
    Stop,
}

/// What the application sends to `jobs`: its copy of this type lives in another
/// crate.
#[derive(Serialize, Deserialize, Debug)]
struct Job {
    n: u64,
    text: String,
}

/// Register a channel of requests under `name`, say so on `ready` (with this
/// server's generation), then serve: `Add` answers n + generation, `Crash`
/// panics, `Stop` returns.
fn server((name, generation, ready): (String, u64, Sender<u64>)) {
    let (tx, rx) = channel::<Request>(4);
    register(&name, &tx).unwrap_or_else(|e| panic!("server {generation}: register {name}: {e}"));
    drop(tx);
    let me = weft_guest::current().id;
    ready.send(me).expect("main waits for the server");
    for request in rx {
        match request {
            Request::Add(n, reply) => reply.send(n + generation).expect("the client waits"),
            Request::Crash => panic!("server {generation} crashes on request"),
            Request::Stop => return,
        }
    }
    panic!("server {generation}: the registry holds a sender, so the channel cannot close");
}

/// Start a server of `generation` under `name`; its join handle and id, once it
/// has registered.
fn start_server(name: &str, generation: u64) -> (weft_guest::JoinHandle<()>, u64) {
    let (ready, is_ready) = channel::<u64>(1);
    let h = spawn(server, (name.to_string(), generation, ready));
    let id = is_ready
        .recv()
        .expect("the server registers, or fails and the join says why");
    (h, id)
}

/// Ask the server registered as `name` for n + its generation.
fn ask(name: &str, n: u64) -> u64 {
    let svc = whereis::<Request>(name).unwrap_or_else(|| panic!("{name} is registered"));
    let (reply, answer) = channel::<u64>(1);
    svc.send(Request::Add(n, reply)).expect("the server listens");
    answer.recv().expect("the server answers")
}

fn client(n: u64) -> u64 {
    ask("adder", n)
}

fn wrong_type(_: ()) {
    let _never: Option<Sender<String>> = whereis::<String>("svc");
    println!("whereis gave a sender of the wrong type");
}

fn stop(name: &str) {
    let svc = whereis::<Request>(name).expect("registered");
    svc.send(Request::Stop).expect("the server listens");
}

fn jobs_server(events: Sender<String>) {
    let (tx, rx) = channel::<Job>(4);
    register("jobs", &tx).expect("jobs is free");
    drop(tx);
    events.send("registered".into()).expect("the application listens");
    for job in rx {
        if job.text == "stop" {
            return;
        }
        events
            .send(format!("job {}: {}", job.n, job.text))
            .expect("the application listens");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("find") => {
            let (server, _) = start_server("adder", 1);
            let clients: Vec<_> = [41, 99].into_iter().map(|n| spawn(client, n)).collect();
            for (n, c) in [41, 99].into_iter().zip(clients) {
                println!("client: {n} + 1 = {}", c.join().expect("the client"));
            }
            stop("adder");
            server.join().expect("the server stops");
        }
        Some("taken") => {
            let (server, id) = start_server("svc", 1);
            let (tx, _rx) = channel::<Request>(1);
            match register("svc", &tx) {
                Err(RegisterError::Taken { by }) if by == id => println!("taken: by the server"),
                other => println!("main's register: {other:?} (the server is {id})"),
            }
            // Another microthread's registration of it is refused too.
            let again = spawn(
                |(tx, id): (Sender<Request>, u64)| match register("svc", &tx) {
                    Err(RegisterError::Taken { by }) if by == id => "taken: by the server".to_string(),
                    other => format!("second register: {other:?}"),
                },
                (tx.clone(), id),
            );
            println!("{}", again.join().expect("the second registrant"));
            // A name that nobody registered is not found.
            println!("unknown: {}", whereis::<Request>("nobody").is_none());
            stop("svc");
            server.join().expect("the server stops");
        }
        Some("wrong-type") => {
            let (server, _) = start_server("svc", 1);
            match spawn(wrong_type, ()).join() {
                Err(JoinError::Failed(f)) => {
                    // The message's first line (a backtrace follows).
                    let first = f.message.lines().next().unwrap_or_default();
                    println!("asker: {:?}: {first}", f.kind)
                }
                Ok(()) => println!("asker: returned"),
                Err(e) => println!("asker: {e:?}"),
            }
            // The right type is still found.
            println!("right type: {}", ask("svc", 1));
            stop("svc");
            server.join().expect("the server stops");
        }
        Some("restart") => {
            let (first, _) = start_server("svc", 1);
            println!("first: {}", ask("svc", 10));
            whereis::<Request>("svc")
                .expect("registered")
                .send(Request::Crash)
                .expect("the server listens");
            match first.join() {
                Err(JoinError::Failed(f)) => println!("first failed: {:?}", f.kind),
                other => println!("first: {other:?}"),
            }
            println!(
                "after the failure, found: {}",
                whereis::<Request>("svc").is_some()
            );
            let (second, _) = start_server("svc", 2);
            println!("second: {}", ask("svc", 10));
            stop("svc");
            second.join().expect("the second server returns");
            println!("after the return, found: {}", whereis::<Request>("svc").is_some());
            let (third, _) = start_server("svc", 3);
            println!("third: {}", ask("svc", 10));
            third.cancel();
            match third.join() {
                Err(JoinError::Failed(f)) => println!("third cancelled: {:?}", f.kind),
                other => println!("third: {other:?}"),
            }
            println!(
                "after the cancellation, found: {}",
                whereis::<Request>("svc").is_some()
            );
            let (fourth, _) = start_server("svc", 4);
            println!("fourth: {}", ask("svc", 10));
            stop("svc");
            fourth.join().expect("the fourth server returns");
        }
        Some("too-long") => {
            let (tx, _rx) = channel::<u64>(1);
            let max = "m".repeat(256);
            println!("{} bytes: {:?}", max.len(), register(&max, &tx));
            let over = "o".repeat(257);
            match register(&over, &tx) {
                Err(e) => println!("{} bytes: {e:?}: {e}", over.len()),
                Ok(()) => println!("{} bytes: registered", over.len()),
            }
            println!("found: {}", whereis::<u64>(&over).is_some());
            let fingerprint = "f".repeat(1025);
            println!(
                "fingerprint of {} bytes: {:?}",
                fingerprint.len(),
                weft_guest::__private::register_raw("fp", &fingerprint, &tx)
            );
            println!("found: {}", whereis::<u64>("fp").is_some());
        }
        Some("many") => {
            let (tx, rx) = channel::<u64>(1);
            let mut k = 0u64;
            let refusal = loop {
                match register(&format!("n{k}"), &tx) {
                    Ok(()) => k += 1,
                    Err(e) => break e,
                }
            };
            println!("refused after {k}: {refusal}");
            // A lookup needs a handle of its own: give one back.
            drop(rx);
            let found = (0..k).filter(|i| whereis_and_drop(&format!("n{i}"))).count();
            println!("found {found} of {k}");
        }
        Some("app") => {
            let events = weft_guest::host_sender::<String>("events").expect("the application hands `events`");
            let jobs = spawn(jobs_server, events.clone());
            // Until the application holds a sender of `jobs` (it says so on `go`),
            // a run whose microthreads all waited, the server on `jobs`, would be
            // deadlocked: the registry's sender is no one's.
            let go = weft_guest::host_receiver::<u8>("go").expect("the application hands `go`");
            go.recv().expect("the application says go");
            jobs.join().expect("the jobs server returns");
            events.send("released".into()).expect("the application listens");
            let done = weft_guest::host_receiver::<u8>("done").expect("the application hands `done`");
            while done.recv().is_ok() {}
        }
        other => panic!("unknown mode {other:?}"),
    }
}

/// Whether `name` is found (the sender found is dropped at once: the run has one
/// handle free, and a lookup needs one).
fn whereis_and_drop(name: &str) -> bool {
    whereis::<u64>(name).is_some()
}

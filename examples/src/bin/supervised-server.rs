//! A line service whose acceptor and workers run under a supervisor tree:
//!
//! ```text
//! server          (one-for-one, at most 1 restart within 60 s)
//! ├── connections (one-for-one, at most 3 restarts within 60 s)
//! │   ├── worker-1
//! │   ├── …
//! │   └── worker-N
//! └── acceptor
//! ```
//!
//! Every child is [`Transient`](Restart::Transient): it returns only when it is
//! stopped, and then it is done; it restarts when it fails.
//!
//! The acceptor hands each connection to the workers through a queue; a worker serves
//! one connection at a time, until the client closes it, answering each line `L` with
//! `ok: L`. Two lines make the worker that reads them panic:
//!
//! - `crash`: the worker hands the connection back to its own slot before it panics
//!   (on a channel that its supervisor keeps in the worker's argument, so that it
//!   outlives the crash); the supervisor starts a fresh worker in that slot, which
//!   takes the connection first, answers `recovered: …` (naming itself and the
//!   microthread that crashed) and serves the connection on. The client loses
//!   nothing and does not reconnect.
//! - `crashloop`: the worker hands the connection back marked so that each fresh
//!   worker crashes on it again. Past the intensity of `connections` it gives up,
//!   `server` restarts it, and it crashes again; past the intensity of `server` the
//!   whole tree gives up, and the program fails with one report that lists the
//!   restarts of both levels (weft exits with 134, as for any failed `main`).
//!
//! Ctrl-C (SIGINT) cancels the program, and the tree stops in reverse start order,
//! as it does at a supervisor's own shutdown (the `demo` mode's end): the acceptor
//! first, then `connections`, which stops the workers from the last to the first.
//! Each prints its cleanup line as it stops, and weft exits with 130.
//!
//! `weft run --listen 127.0.0.1:7000 supervised-server.wasm [ADDRESS [WORKERS]]`
//! (default 127.0.0.1:7000 and 3 workers; port 0 lets the system choose). It prints
//! the address it listens on.
//!
//! `weft run --listen 127.0.0.1:* --connect 127.0.0.1:* supervised-server.wasm -- demo`
//! runs the server on a port of the system's choosing and a client microthread against
//! it over loopback: a normal answer, a crash answered by the restarted worker,
//! `which_children` before and after, then an orderly shutdown; it exits with 0.

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_guest::net::{TcpListener, TcpStream, is_cancelled};
use weft_guest::supervisor::{Child, Restart, Strategy, Supervisor, SupervisorHandle};
use weft_guest::{FailureKind, JoinError, Receiver, Sender, channel};

const USAGE: &str = "usage: weft run --listen ADDRESS supervised-server.wasm [ADDRESS [WORKERS]]\n       \
     weft run --listen 127.0.0.1:* --connect 127.0.0.1:* supervised-server.wasm -- demo";

/// How many workers serve connections at once, unless given.
const DEFAULT_WORKERS: usize = 3;

/// A request that made a worker panic.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum Crash {
    /// `crash`: the fresh worker answers it.
    Once,
    /// `crashloop`: every fresh worker crashes on it again.
    Loop,
}

/// A connection for a worker: a new one from the acceptor, or one handed back by a
/// worker that crashed on a request of it.
#[derive(Serialize, Deserialize)]
struct Connection {
    stream: TcpStream,
    /// The request that crashed the worker that had it, and that worker's microthread.
    crashed: Option<(Crash, u64)>,
}

/// The listening socket, shared by each acceptor the supervisor starts: a restarted
/// acceptor listens on the same socket, at the same address.
#[derive(Serialize, Deserialize)]
struct Listener(TcpListener);

impl Clone for Listener {
    fn clone(&self) -> Self {
        // Another handle to the same socket: the host only shares it.
        Listener(
            self.0
                .try_clone()
                .expect("sharing a listener's handle cannot fail"),
        )
    }
}

/// What the acceptor is started with (afresh at each restart).
#[derive(Clone, Serialize, Deserialize)]
struct Acceptor {
    listener: Listener,
    queue: Sender<Connection>,
}

/// What a worker is started with (afresh at each restart): both ends of its slot's
/// hand-back channel, which its supervisor keeps alive across its crashes.
#[derive(Clone, Serialize, Deserialize)]
struct Worker {
    name: String,
    queue: Receiver<Connection>,
    hand_back: Sender<Connection>,
    handed_back: Receiver<Connection>,
}

/// Accept connections and queue them for the workers, until cancelled.
fn acceptor(a: Acceptor) {
    println!("acceptor: accepting connections");
    // `incoming()` ends when the acceptor is cancelled (stopped by its supervisor,
    // or the program is being stopped).
    for stream in a.listener.0.incoming() {
        match stream {
            Ok(stream) => {
                // Waits while every worker is busy and the queue is full; fails only
                // when the acceptor is cancelled meanwhile (its supervisor keeps a
                // receiver of the queue, so it never closes).
                if a.queue
                    .send(Connection {
                        stream,
                        crashed: None,
                    })
                    .is_err()
                {
                    break;
                }
            }
            // Over the socket limit, say: this connection is refused, the next may not be.
            Err(e) => eprintln!("supervised-server: accept: {e}"),
        }
    }
    println!("acceptor: stopped, no longer accepting");
}

/// Serve connections one at a time until cancelled: first the one the previous
/// worker of this slot crashed on, if any.
fn worker(w: Worker) {
    let first = match w.handed_back.try_recv() {
        Ok(connection) => serve(&w, connection),
        // Nothing handed back: the slot's first start, or its worker was stopped.
        Err(_) => Served::Closed,
    };
    if let Served::Closed = first {
        // The receive fails when the worker is cancelled: it is being stopped.
        while let Ok(connection) = w.queue.recv() {
            if let Served::Stopped = serve(&w, connection) {
                break;
            }
        }
    }
    println!("{}: stopped, cleaning up", w.name);
}

/// How serving one connection ended.
enum Served {
    /// The client closed it (or it broke): take the next.
    Closed,
    /// The worker was cancelled.
    Stopped,
}

/// Answer `stream`'s lines until the client closes it.
fn serve(w: &Worker, Connection { stream, crashed }: Connection) -> Served {
    match crashed {
        Some((Crash::Once, by)) => {
            let me = weft_guest::current_id();
            let answer = format!(
                "recovered: {} was restarted (microthread {by} crashed, microthread {me} answers)",
                w.name
            );
            if !reply(&stream, &answer) {
                return Served::Closed;
            }
        }
        Some((Crash::Loop, _)) => crash(w, stream, Crash::Loop),
        None => {}
    }
    let mut lines = BufReader::new(&stream);
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line) {
            Ok(0) => return Served::Closed,
            Ok(_) => {}
            Err(e) if is_cancelled(&e) => return Served::Stopped,
            // Reset, say: this connection only.
            Err(_) => return Served::Closed,
        }
        match line.trim_end() {
            // A client sends its next line once it has the answer: nothing read
            // ahead is lost with the reader.
            "crash" => {
                drop(lines);
                crash(w, stream, Crash::Once)
            }
            "crashloop" => {
                drop(lines);
                crash(w, stream, Crash::Loop)
            }
            request => {
                if !reply(&stream, &format!("ok: {request}")) {
                    return Served::Closed;
                }
            }
        }
    }
}

/// Hand the connection back to this worker's slot, then panic.
fn crash(w: &Worker, stream: TcpStream, how: Crash) -> ! {
    let connection = Connection {
        stream,
        crashed: Some((how, weft_guest::current_id())),
    };
    // The slot holds at most this one connection: the send does not wait. It fails
    // only if this worker was cancelled meanwhile, and then the connection goes.
    if let Err(e) = w.hand_back.try_send(connection) {
        eprintln!("{}: the connection could not be handed back: {e}", w.name);
    }
    panic!("{}: a request asked it to crash ({how:?})", w.name);
}

/// Write one line; false if the client is gone.
fn reply(mut stream: &TcpStream, line: &str) -> bool {
    stream.write_all(format!("{line}\n").as_bytes()).is_ok()
}

/// Bind, print the address, and start the supervisor tree.
fn start(address: &str, workers: usize) -> (std::net::SocketAddr, SupervisorHandle) {
    let listener = TcpListener::bind(address).unwrap_or_else(|e| {
        eprintln!("supervised-server: cannot listen on {address}: {e}");
        std::process::exit(1);
    });
    let addr = listener.local_addr().unwrap_or_else(|e| {
        eprintln!("supervised-server: the address it listens on is unknown: {e}");
        std::process::exit(1);
    });
    println!("supervised-server: listening on {addr}");
    let (queue_tx, queue_rx) = channel::<Connection>(workers);
    let mut connections = Supervisor::new("connections")
        .strategy(Strategy::OneForOne)
        .intensity(3, Duration::from_secs(60));
    for i in 1..=workers {
        let (hand_back, handed_back) = channel(1);
        let w = Worker {
            name: format!("worker-{i}"),
            queue: queue_rx.clone(),
            hand_back,
            handed_back,
        };
        connections = connections.child(
            Child::new(w.name.clone(), worker, w)
                .restart(Restart::Transient)
                .shutdown(Duration::from_secs(1)),
        );
    }
    let server = Supervisor::new("server")
        .strategy(Strategy::OneForOne)
        .intensity(1, Duration::from_secs(60))
        .child(Child::supervisor(connections).restart(Restart::Transient))
        .child(
            Child::new(
                "acceptor",
                acceptor,
                Acceptor {
                    listener: Listener(listener),
                    queue: queue_tx,
                },
            )
            .restart(Restart::Transient)
            .shutdown(Duration::from_secs(1)),
        )
        .start()
        .unwrap_or_else(|e| {
            eprintln!("supervised-server: cannot start the supervisor: {e}");
            std::process::exit(1);
        });
    (addr, server)
}

/// Print the top supervisor's children.
fn show(when: &str, server: &SupervisorHandle) {
    match server.which_children() {
        Ok(children) => {
            println!("which_children ({when}):");
            for c in children {
                let id = c.id.map_or_else(|| "none".to_string(), |id| id.to_string());
                println!(
                    "  {:<12} microthread {id:<4} {:?}, restarted {} times",
                    c.name, c.state, c.restarts
                );
            }
        }
        Err(e) => println!("which_children ({when}): no answer: {e}"),
    }
}

/// The demo's client: a normal request, a crash, and a request after it.
fn client(addr: String) -> Result<(), String> {
    let stream = TcpStream::connect(addr.as_str()).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let mut lines = BufReader::new(&stream);
    for request in ["hello", "crash", "hello again"] {
        println!("client: > {request}");
        (&stream)
            .write_all(format!("{request}\n").as_bytes())
            .map_err(|e| format!("cannot send {request:?}: {e}"))?;
        let mut answer = String::new();
        match lines.read_line(&mut answer) {
            Ok(0) => return Err(format!("the server closed the connection after {request:?}")),
            Ok(_) => println!("client: < {}", answer.trim_end()),
            Err(e) => return Err(format!("no answer to {request:?}: {e}")),
        }
    }
    Ok(())
}

fn demo() {
    let (addr, server) = start("127.0.0.1:0", 2);
    show("before", &server);
    let joined = weft_guest::Builder::new()
        .name("client")
        .spawn(client, addr.to_string())
        .map_err(|e| format!("cannot start the client: {e}"))
        .and_then(|c| c.join().map_err(|e| format!("the client failed: {e}")));
    if let Err(e) = joined.and_then(|r| r) {
        eprintln!("supervised-server demo: {e}");
        std::process::exit(1);
    }
    // The worker's crash was handled one level down: `connections` still runs, as
    // the same microthread, and `weft run --stats` counts the worker's restart.
    show("after", &server);
    println!("demo: shutting the tree down (children stop in reverse start order)");
    if server.shutdown().is_err() {
        eprintln!("supervised-server demo: cancelled before the shutdown");
        std::process::exit(1);
    }
    match server.join() {
        Ok(()) => println!("demo: done"),
        Err(e) => {
            eprintln!("supervised-server demo: the supervisor failed: {e}");
            std::process::exit(1);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("demo") {
        return demo();
    }
    let address = args.first().map_or("127.0.0.1:7000", String::as_str);
    let workers = match args.get(1).map(|n| n.parse::<usize>()) {
        None => DEFAULT_WORKERS,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("supervised-server: WORKERS must be a whole number above 0\n{USAGE}");
            weft_guest::exit(2);
        }
    };
    if args.len() > 2 {
        eprintln!("supervised-server: too many arguments\n{USAGE}");
        weft_guest::exit(2);
    }
    let (_, server) = start(address, workers);
    match server.join() {
        Ok(()) => println!("supervised-server: stopped"),
        // Ctrl-C: this join is cancelled (or sees the tree cancelled first), and
        // the tree stops on its own, in order, each child printing its cleanup line.
        Err(JoinError::Cancelled) => println!("supervised-server: stopping"),
        Err(JoinError::Failed(f)) if f.kind == FailureKind::Cancelled => {
            println!("supervised-server: stopping")
        }
        // The tree gave up: fail `main` with its report (one, listing the restarts).
        Err(JoinError::Failed(f)) => panic!("the service gave up: {}", f.message),
    }
}

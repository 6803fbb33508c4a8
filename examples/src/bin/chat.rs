//! A chat server: a hub microthread broadcasts each line a client sends to every
//! other client. Each connection has a reader microthread (lines from the client to
//! the hub) and a writer microthread (lines from the hub to the client); a client
//! may leave at any time, and only its own microthreads end.
//!
//! `weft run --listen 127.0.0.1:7070 chat.wasm [ADDRESS]` (default 127.0.0.1:7070;
//! port 0 lets the system choose), then `nc 127.0.0.1 7070` from a few terminals.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};

use serde::{Deserialize, Serialize};
use weft_guest::net::{TcpListener, TcpStream};
use weft_guest::{Receiver, Sender, channel};

/// What the hub hears.
#[derive(Serialize, Deserialize)]
enum Event {
    /// A client arrived: where its lines go.
    Join(u64, Sender<String>),
    /// A client said something.
    Line(u64, String),
    /// A client left.
    Leave(u64),
}

/// Keeps the clients' outboxes; passes every line to everyone else.
fn hub(events: Receiver<Event>) {
    let mut clients: BTreeMap<u64, Sender<String>> = BTreeMap::new();
    for event in events {
        let (from, text) = match event {
            Event::Join(id, outbox) => {
                let here = clients.len() + 1;
                // The newcomer hears it is in (its outbox is empty: this fits).
                let _ = outbox.try_send(format!("* welcome, client {id} ({here} here)"));
                clients.insert(id, outbox);
                (id, format!("* client {id} joined ({here} here)"))
            }
            Event::Leave(id) => {
                clients.remove(&id);
                (id, format!("* client {id} left"))
            }
            Event::Line(id, line) => (id, format!("{id}: {line}")),
        };
        // A client whose outbox is full (it does not read) or gone misses the line.
        clients.retain(|&id, outbox| {
            id == from
                || !matches!(
                    outbox.try_send(text.clone()),
                    Err(weft_guest::TrySendError::Closed(_))
                )
        });
    }
}

/// Writes what the hub sends to one client, until the hub drops its outbox or the
/// client is gone.
fn writer((stream, outbox): (TcpStream, Receiver<String>)) {
    for line in outbox {
        if writeln!(&stream, "{line}").is_err() {
            return;
        }
    }
}

/// Reads one client's lines for the hub, until it leaves.
fn client((id, stream, hub): (u64, TcpStream, Sender<Event>)) {
    let (to_client, outbox) = channel::<String>(64);
    let writing = stream.try_clone().expect("a second handle to the connection");
    let _writer = weft_guest::spawn(writer, (writing, outbox));
    if hub.send(Event::Join(id, to_client)).is_err() {
        return;
    }
    for line in BufReader::new(&stream).lines() {
        let Ok(line) = line else { break };
        if hub.send(Event::Line(id, line)).is_err() {
            return;
        }
    }
    let _ = hub.send(Event::Leave(id));
    // The hub drops the outbox: the writer ends, then this microthread does.
}

fn main() {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:7070".into());
    let listener = TcpListener::bind(address.as_str()).unwrap_or_else(|e| {
        eprintln!("chat: cannot listen on {address}: {e}");
        std::process::exit(1);
    });
    match listener.local_addr() {
        Ok(addr) => println!("chat: listening on {addr}"),
        Err(e) => println!("chat: listening (address unknown: {e})"),
    }
    let (events, inbox) = channel::<Event>(256);
    let _hub = weft_guest::spawn(hub, inbox);
    // `incoming()` ends when the program is being stopped, and so does the server.
    for (id, stream) in (1..).zip(listener.incoming()) {
        match stream {
            Ok(stream) => {
                // At the microthread limit the connection is refused (closed).
                if let Err(e) =
                    weft_guest::Builder::new().spawn_detached(client, (id, stream, events.clone()))
                {
                    eprintln!("chat: connection refused: {e}");
                }
            }
            Err(e) => eprintln!("chat: accept: {e}"),
        }
    }
}

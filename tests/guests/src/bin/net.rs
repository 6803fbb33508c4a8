//! Sockets, chosen by the first argument; every mode prints what happened, a line
//! each, and `ready ADDRESS` once it listens (for the test to connect):
//! - `denied ADDRESS`: bind and connect without a grant.
//! - `bad PORT`: a malformed address, a name that does not resolve, and a connection
//!   to a port on which nobody listens (PORT).
//! - `faults`: the faults a server meets, one connection each, in order: a peer that
//!   resets mid-read; a peer that half-closes (it still gets an answer); a peer that
//!   is gone while it is written to. Then it still serves: one echo.
//! - `move`: the listener moves to a child in a message; the child accepts and
//!   sends the stream to another microthread, which echoes a line.
//! - `ends-holding`: a microthread accepts a connection and ends (it panics)
//!   holding it: the peer sees the stream close.
//! - `limit`: accepts until the run's socket limit refuses; then still serves one
//!   echo on a connection it accepts once a socket is free.
//! - `cancel`: microthreads blocked in accept, in read and in a write the peer
//!   does not drain are cancelled: each says what error it got.
//! - `select`: a select over a channel, a listener and a timer fires on each.
//! - `hog`: an echo server beside a microthread that computes for a long time.
//! - `shared-select N`: two microthreads select on one (shared) listener, a third
//!   polls it with selects that do not wait; the first two accept and echo a line
//!   on each connection. Prints `shared: served N` once N connections are served.
//! - `idle-readers N`: accepts N connections and blocks a microthread in `read` on
//!   each; prints `idle: N reading` once all are accepted.

use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use weft_guest::net::{TcpListener, TcpStream, is_cancelled};
use weft_guest::{Select, Selected, after, channel, spawn};

fn say(line: &str) {
    println!("{line}");
}

fn listen() -> TcpListener {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a grant for 127.0.0.1");
    say(&format!("ready {}", listener.local_addr().expect("an address")));
    listener
}

/// Echo one line on `stream`.
fn echo_line(stream: TcpStream) {
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).expect("a line");
    (&stream).write_all(line.as_bytes()).expect("the peer reads");
}

fn denied(address: &str) {
    match TcpListener::bind(address) {
        Err(e) => say(&format!("bind: {:?}: {e}", e.kind())),
        Ok(_) => say("bind: allowed"),
    }
    match TcpStream::connect(address) {
        Err(e) => say(&format!("connect: {:?}: {e}", e.kind())),
        Ok(_) => say("connect: allowed"),
    }
}

fn bad(port: &str) {
    for address in ["nonsense", "127.0.0.1:99999", "no-such-host.invalid:80"] {
        match TcpStream::connect(address) {
            Err(e) => say(&format!("{address}: {:?}: {e}", e.kind())),
            Ok(_) => say(&format!("{address}: connected")),
        }
    }
    match TcpStream::connect(("127.0.0.1", port.parse::<u16>().expect("a port"))) {
        Err(e) => say(&format!("refused: {:?}", e.kind())),
        Ok(_) => say("refused: connected"),
    }
}

fn faults() {
    let listener = listen();
    // 1. The peer resets while this side reads.
    let (stream, _) = listener.accept().expect("the first peer");
    let mut buf = [0u8; 64];
    loop {
        match (&stream).read(&mut buf) {
            Ok(0) => {
                say("reset: the stream ended");
                break;
            }
            Ok(_) => continue,
            Err(e) => {
                say(&format!("reset: {:?}", e.kind()));
                break;
            }
        }
    }
    drop(stream);
    // 2. The peer half-closes: read to the end, then answer.
    let (stream, _) = listener.accept().expect("the second peer");
    let mut got = String::new();
    (&stream).read_to_string(&mut got).expect("to the end");
    (&stream)
        .write_all(format!("you said {got:?}\n").as_bytes())
        .expect("the half-closed peer still reads");
    say(&format!("half-close: read {got:?}, answered"));
    drop(stream);
    // 3. The peer is gone: writing fails (at once, or once the reset comes back).
    let (stream, _) = listener.accept().expect("the third peer");
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .expect("its go-ahead");
    let chunk = [7u8; 4096];
    let failed = (0..10_000).find_map(|_| (&stream).write_all(&chunk).err());
    match failed {
        Some(e) => say(&format!("write to a closed peer: {:?}", e.kind())),
        None => say("write to a closed peer: never failed"),
    }
    // Still serving.
    let (stream, _) = listener.accept().expect("the last peer");
    echo_line(stream);
    say("still serving");
}

fn accept_and_pass((listener, to): (TcpListener, weft_guest::Sender<TcpStream>)) {
    let (stream, _) = listener.accept().expect("a peer");
    to.send(stream).expect("the echoer takes it");
}

fn echo_from(streams: weft_guest::Receiver<TcpStream>) {
    let stream = streams.recv().expect("a stream");
    echo_line(stream);
}

fn moved() {
    let listener = listen();
    let (to_child, from_main) = channel::<TcpListener>(1);
    let (streams_tx, streams_rx) = channel::<TcpStream>(1);
    to_child.send(listener).expect("the child is there");
    let echoer = spawn(echo_from, streams_rx);
    let acceptor = spawn(
        |(listeners, to): (weft_guest::Receiver<TcpListener>, weft_guest::Sender<TcpStream>)| {
            let listener = listeners.recv().expect("the listener");
            accept_and_pass((listener, to));
        },
        (from_main, streams_tx),
    );
    acceptor.join().expect("the acceptor");
    echoer.join().expect("the echoer");
    say("moved: echoed by the microthread the stream was sent to");
}

fn hold_and_die(listener: TcpListener) {
    let (_stream, _) = listener.accept().expect("a peer");
    panic!("ending while holding the connection");
}

fn ends_holding() {
    let listener = listen();
    let holder = spawn(hold_and_die, listener.try_clone().expect("a second handle"));
    match holder.join() {
        Err(e) => say(&format!("holder failed: {e}")),
        Ok(()) => say("holder returned"),
    }
}

fn limit() {
    let listener = listen();
    let mut held = Vec::new();
    loop {
        match listener.accept() {
            Ok((stream, _)) => held.push(stream),
            Err(e) => {
                say(&format!("limit: {} accepted, then: {e}", held.len()));
                break;
            }
        }
    }
    held.clear();
    let (stream, _) = listener.accept().expect("a peer, once sockets are free");
    echo_line(stream);
    say("limit: still serving");
}

fn wait_accept(listener: TcpListener) {
    match listener.accept() {
        Err(e) => say(&format!("accept: cancelled {}", is_cancelled(&e))),
        Ok(_) => say("accept: a connection"),
    }
}

fn wait_read(stream: TcpStream) {
    let mut buf = [0u8; 16];
    match (&stream).read(&mut buf) {
        Err(e) => say(&format!("read: cancelled {}", is_cancelled(&e))),
        Ok(n) => say(&format!("read: {n} bytes")),
    }
}

fn wait_write(stream: TcpStream) {
    let chunk = vec![1u8; 1 << 16];
    loop {
        if let Err(e) = (&stream).write_all(&chunk) {
            say(&format!("write: cancelled {}", is_cancelled(&e)));
            return;
        }
    }
}

fn cancel() {
    let listener = listen();
    let (reader_side, _) = listener.accept().expect("the peer that sends nothing");
    let (writer_side, _) = listener.accept().expect("the peer that reads nothing");
    let waiting = [
        spawn(wait_accept, listener),
        spawn(wait_read, reader_side),
        spawn(wait_write, writer_side),
    ];
    // Long enough for the writer to fill the socket's buffers and wait.
    weft_guest::sleep(Duration::from_millis(300)).expect("not cancelled");
    for w in &waiting {
        w.cancel();
    }
    for w in waiting {
        let _ = w.join();
    }
    say("cancel: done");
}

fn select() {
    let listener = listen();
    let (tx, rx) = channel::<u32>(1);
    let (_quiet_tx, quiet) = channel::<u32>(1);
    // 1. The channel.
    spawn(
        |tx: weft_guest::Sender<u32>| tx.send(1).expect("main receives"),
        tx,
    );
    let mut sel = Select::new();
    let c = sel.recv(&rx);
    let a = sel.accept(&listener);
    let timer = after(Duration::from_secs(60));
    let t = sel.recv(&timer);
    match sel.wait() {
        Selected::Received { index, .. } if index == c => say("select: the channel fired"),
        other => say(&format!("select 1: {other:?} ({c} {a} {t})")),
    }
    // 2. The listener (the test connects once it reads this line).
    say("select: waiting for a connection");
    let mut sel = Select::new();
    let c = sel.recv(&quiet);
    let a = sel.accept(&listener);
    let t = sel.recv(&timer);
    match sel.wait() {
        Selected::Ready { index } if index == a => say("select: the listener fired"),
        other => say(&format!("select 2: {other:?} ({c} {a} {t})")),
    }
    let (stream, _) = listener.accept().expect("the connection the select saw");
    // 3. The timer (the peer sends nothing).
    let short = after(Duration::from_millis(50));
    let mut sel = Select::new();
    let c = sel.recv(&quiet);
    let r = sel.readable(&stream);
    let t = sel.recv(&short);
    match sel.wait() {
        Selected::Received { index, .. } if index == t => say("select: the timer fired"),
        other => say(&format!("select 3: {other:?} ({c} {r} {t})")),
    }
    // And the stream, once the peer writes.
    say("select: waiting for bytes");
    let mut sel = Select::new();
    let r = sel.readable(&stream);
    match sel.wait_timeout(Duration::from_secs(60)) {
        Selected::Ready { index } if index == r => say("select: the stream fired"),
        other => say(&format!("select 4: {other:?}")),
    }
}

fn hog(iterations: u64) {
    let mut x = 1u64;
    for i in 0..iterations {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
    }
    say(&format!("hog done ({x:x})"));
}

fn echo_all(stream: TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = (&stream).read(&mut buf) {
        if (&stream).write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

fn hog_beside_echo() {
    let listener = listen();
    weft_guest::spawn_detached(hog, 1_000_000_000_000);
    for stream in listener.incoming() {
        weft_guest::spawn_detached(echo_all, stream.expect("a connection"));
    }
}

/// One of `shared_select`'s two selectors: select, accept, echo, tell main.
fn selector((listener, served): (TcpListener, weft_guest::Sender<u32>)) {
    loop {
        let mut sel = Select::new();
        let a = sel.accept(&listener);
        match sel.wait() {
            Selected::Ready { index } if index == a => {}
            other => panic!("selector: {other:?}"),
        }
        // The other selector may have been woken for the same connection and taken
        // it: then this one waits in accept for the next.
        let (stream, _) = listener.accept().expect("a connection");
        echo_line(stream);
        served.send(1).expect("main counts");
    }
}

/// `shared_select`'s third: selects on the listener that do not wait, until told
/// to stop.
fn poller((listener, stop): (TcpListener, weft_guest::Receiver<()>)) {
    loop {
        let mut sel = Select::new();
        sel.accept(&listener);
        let looked = sel.try_wait();
        std::hint::black_box(looked);
        let mut sel = Select::new();
        let s = sel.recv(&stop);
        sel.accept(&listener);
        match sel.wait_timeout(Duration::ZERO) {
            Selected::Received { index, .. } if index == s => return,
            _ => weft_guest::yield_now(),
        }
    }
}

fn shared_select(n: usize) {
    let listener = listen();
    let (served_tx, served) = channel::<u32>(16);
    for _ in 0..2 {
        let mine = listener.try_clone().expect("a shared listener");
        weft_guest::spawn_detached(selector, (mine, served_tx.clone()));
    }
    let (stop_tx, stop) = channel::<()>(1);
    let polling = spawn(poller, (listener.try_clone().expect("a shared listener"), stop));
    for _ in 0..n {
        served.recv().expect("the selectors serve");
    }
    stop_tx.send(()).expect("the poller stops");
    polling.join().expect("the poller");
    say(&format!("shared: served {n}"));
    std::process::exit(0);
}

/// Read once from an idle connection, then tell main.
fn read_once((stream, done): (TcpStream, weft_guest::Sender<()>)) {
    let mut buf = vec![0u8; 64 << 10];
    let read = (&stream).read(&mut buf);
    say(&format!("idle: read {read:?}"));
    done.send(()).expect("main counts");
}

fn idle_readers(n: usize) {
    let listener = listen();
    let (done_tx, done) = channel::<()>(n);
    for _ in 0..n {
        let (stream, _) = listener.accept().expect("a connection");
        weft_guest::spawn_detached(read_once, (stream, done_tx.clone()));
    }
    say(&format!("idle: {n} reading"));
    for _ in 0..n {
        done.recv().expect("the readers end");
    }
    say("idle: all read");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    match arg(1) {
        "denied" => denied(arg(2)),
        "bad" => bad(arg(2)),
        "faults" => faults(),
        "move" => moved(),
        "ends-holding" => ends_holding(),
        "limit" => limit(),
        "cancel" => cancel(),
        "select" => select(),
        "hog" => hog_beside_echo(),
        "shared-select" => shared_select(arg(2).parse().expect("a count")),
        "idle-readers" => idle_readers(arg(2).parse().expect("a count")),
        other => panic!("unknown mode {other:?}"),
    }
}

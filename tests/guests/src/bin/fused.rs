//! `Sender::send_then_recv` and `call` on every path the two calls they fuse
//! have, chosen by the first argument; one line per outcome:
//! - `roundtrip N`: N round trips where both sides use `send_then_recv` (the
//!   ponger answers each ping and waits for the next in one call), then N calls
//!   to a server with `call`: `round trips N, counter N` and `calls N, sum S`.
//! - `send-closed`: the receivers are gone: `send: Closed(V)` with the value back,
//!   and the reply channel still holds what was in it (nothing was received).
//! - `too-large`: a value over the run's message size: `send: TooLarge(LEN)`, and
//!   nothing received.
//! - `recv-closed`: sent, then the reply channel closes: `recv: Closed`, and the
//!   message was delivered.
//! - `recv-failed`: sent, then the reply channel's producer fails: `recv: Failed`
//!   with its kind.
//! - `send-timeout` / `recv-timeout`: the whole call bounded: `send: Timeout(V)`
//!   (a full channel), `recv: Timeout` (sent, no reply).
//! - `cancel-send` / `cancel-recv`: a child blocked in the send half (a full
//!   channel), or in the receive half (no reply), is cancelled: `send: Cancelled`
//!   with its value back, or `recv: Cancelled`.
//! - `deadlock`: two microthreads each send to the other and then wait for a
//!   reply that never comes: the run ends deadlocked (its report shows them).

use std::time::Duration;

use weft_guest::{
    Receiver, RecvError, RecvTimeoutError, SendError, SendRecvError, SendRecvTimeoutError, SendTimeoutError,
    Sender, call, channel,
};

fn ponger((rx, tx): (Receiver<u64>, Sender<u64>)) {
    let Ok(mut ping) = rx.recv() else { return };
    // Each answer is sent, and the next ping waited for, in one call.
    loop {
        match tx.send_then_recv(ping + 1, &rx) {
            Ok(next) => ping = next,
            Err(_) => return,
        }
    }
}

/// Answers each request (a number and where to reply) with its square.
fn server(requests: Receiver<(u64, Sender<u64>)>) {
    for (n, reply) in requests {
        if reply.send(n * n).is_err() {
            return;
        }
    }
}

fn roundtrip(n: u64) {
    let (ping_tx, ping_rx) = channel::<u64>(0);
    let (pong_tx, pong_rx) = channel::<u64>(0);
    let _ponger = weft_guest::spawn(ponger, (ping_rx, pong_tx));
    let mut counter = 0;
    for i in 0..n {
        let pong = ping_tx.send_then_recv(i, &pong_rx).expect("a round trip");
        assert_eq!(pong, i + 1, "the pong answers the ping");
        counter += 1;
    }
    println!("round trips {n}, counter {counter}");
    drop(ping_tx);

    let (requests, incoming) = channel::<(u64, Sender<u64>)>(4);
    let _server = weft_guest::spawn(server, incoming);
    let (reply_tx, reply_rx) = channel::<u64>(1);
    let mut sum = 0;
    for i in 0..n {
        sum += call(&requests, (i, reply_tx.clone()), &reply_rx).expect("a call");
    }
    println!("calls {n}, sum {sum}");
}

/// A reply channel that already holds 7, to show a failed send received nothing.
fn primed() -> (Sender<u64>, Receiver<u64>) {
    let (tx, rx) = channel::<u64>(1);
    tx.send(7).expect("room for one");
    (tx, rx)
}

fn send_closed() {
    let (tx, rx) = channel::<u64>(1);
    drop(rx);
    let (_keep, replies) = primed();
    match tx.send_then_recv(41, &replies) {
        Err(SendRecvError::Send(SendError::Closed(v))) => println!("send: Closed({v})"),
        other => println!("unexpected: {other:?}"),
    }
    println!("still there: {:?}", replies.try_recv());
}

fn too_large() {
    let (tx, _rx) = channel::<Vec<u8>>(1);
    let (_keep, replies) = primed();
    match tx.send_then_recv(vec![1u8; 64 * 1024], &replies) {
        Err(SendRecvError::Send(SendError::TooLarge(v))) => println!("send: TooLarge({})", v.len()),
        other => println!("unexpected: {other:?}"),
    }
    println!("still there: {:?}", replies.try_recv());
}

fn recv_closed() {
    let (tx, rx) = channel::<u64>(1);
    let (reply_tx, replies) = channel::<u64>(1);
    drop(reply_tx);
    match tx.send_then_recv(5, &replies) {
        Err(SendRecvError::Recv(RecvError::Closed)) => println!("recv: Closed"),
        other => println!("unexpected: {other:?}"),
    }
    println!("delivered: {:?}", rx.try_recv());
}

fn fail_holding(tx: Sender<u64>) {
    let _held = tx;
    panic!("the producer of the replies fails");
}

fn recv_failed() {
    let (tx, _rx) = channel::<u64>(1);
    let (reply_tx, replies) = channel::<u64>(1);
    let producer = weft_guest::spawn(fail_holding, reply_tx);
    match tx.send_then_recv(5, &replies) {
        Err(SendRecvError::Recv(RecvError::Failed(f))) => println!("recv: Failed({:?})", f.kind),
        other => println!("unexpected: {other:?}"),
    }
    // Its failure was delivered to the reader: joined, nothing more to report.
    let _failed = producer.join();
}

fn send_timeout() {
    let (tx, _rx) = channel::<u64>(1);
    tx.send(1).expect("room for one");
    let (_keep, replies) = primed();
    match tx.send_then_recv_timeout(2, &replies, Duration::from_millis(50)) {
        Err(SendRecvTimeoutError::Send(SendTimeoutError::Timeout(v))) => println!("send: Timeout({v})"),
        other => println!("unexpected: {other:?}"),
    }
    println!("still there: {:?}", replies.try_recv());
}

fn recv_timeout() {
    let (tx, rx) = channel::<u64>(1);
    let (_reply_tx, replies) = channel::<u64>(1);
    match tx.send_then_recv_timeout(3, &replies, Duration::from_millis(50)) {
        Err(SendRecvTimeoutError::Recv(RecvTimeoutError::Timeout)) => println!("recv: Timeout"),
        other => println!("unexpected: {other:?}"),
    }
    println!("delivered: {:?}", rx.try_recv());
}

/// Says it started, then blocks in the send half (its channel is full) until
/// cancelled; says what the call returned.
fn blocked_in_send(started: Sender<()>) {
    let (tx, _rx) = channel::<u64>(1);
    tx.send(0).expect("room for one");
    let (_reply_tx, replies) = channel::<u64>(1);
    started.send(()).expect("main waits for the start");
    match tx.send_then_recv(9, &replies) {
        Err(SendRecvError::Send(SendError::Cancelled(v))) => println!("send: Cancelled({v})"),
        other => println!("unexpected: {other:?}"),
    }
}

/// Says it started with the call's own send, then blocks in its receive half
/// until cancelled; says what the call returned.
fn blocked_in_recv(started: Sender<()>) {
    let (_reply_tx, replies) = channel::<u64>(1);
    match started.send_then_recv((), &replies) {
        Err(SendRecvError::Recv(RecvError::Cancelled)) => println!("recv: Cancelled"),
        other => println!("unexpected: {other:?}"),
    }
}

fn cancel(child: fn(Sender<()>)) {
    let (started_tx, started) = channel::<()>(0);
    let h = weft_guest::spawn(child, started_tx);
    started.recv().expect("the child starts");
    // It is in the call now, or about to be: either way the half it is in (or
    // begins) fails.
    h.cancel();
    let _cancelled = h.join();
}

/// Sends on a channel of its own, then waits for a reply on `from`, whose sender
/// the other side holds (`keep` is the other side's) and never uses.
fn one_way((keep, from): (Sender<u64>, Receiver<u64>)) {
    let _held = keep;
    let (tx, _rx) = channel::<u64>(1);
    let _never = tx.send_then_recv(1, &from);
}

fn deadlock() {
    let (a_tx, a_rx) = channel::<u64>(1);
    let (b_tx, b_rx) = channel::<u64>(1);
    let _left = weft_guest::Builder::new()
        .name("left")
        .spawn(one_way, (b_tx, a_rx))
        .expect("spawn left");
    let _right = weft_guest::Builder::new()
        .name("right")
        .spawn(one_way, (a_tx, b_rx))
        .expect("spawn right");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = || -> u64 {
        args.get(1)
            .and_then(|a| a.parse().ok())
            .expect("usage: fused roundtrip N")
    };
    match args.first().map(String::as_str) {
        Some("roundtrip") => roundtrip(n()),
        Some("send-closed") => send_closed(),
        Some("too-large") => too_large(),
        Some("recv-closed") => recv_closed(),
        Some("recv-failed") => recv_failed(),
        Some("send-timeout") => send_timeout(),
        Some("recv-timeout") => recv_timeout(),
        Some("cancel-send") => cancel(blocked_in_send),
        Some("cancel-recv") => cancel(blocked_in_recv),
        Some("deadlock") => deadlock(),
        other => {
            eprintln!("unknown mode {other:?}");
            std::process::exit(2);
        }
    }
}

//! `std::net` (WASI sockets) trying what the grants and the run's socket limit do
//! not allow, chosen by the first argument; every mode prints what happened:
//! - `open`: holds one weft listener (`weft_guest::net`), then opens UDP sockets
//!   on 127.0.0.1 until refused; prints `held N, then KIND`, drops them all and
//!   opens one more (`again: ok`).
//! - `udp-recv`: binds UDP on all interfaces (0.0.0.0:0, which a connect grant
//!   allows, for sending), prints `bound PORT`, and prints the first datagram it
//!   receives as `received TEXT from ADDRESS`.
//! - `listen-any`: listens with TCP on all interfaces (0.0.0.0:0).
//! - `connect ADDRESS`: connects with TCP (a name is looked up through WASI).

use std::net::{TcpListener, TcpStream, UdpSocket};

fn open() {
    let _weft = weft_guest::net::TcpListener::bind("127.0.0.1:0").expect("a listen grant");
    let mut held = Vec::new();
    let refused = loop {
        match UdpSocket::bind("127.0.0.1:0") {
            Ok(s) => held.push(s),
            Err(e) => break e,
        }
        assert!(held.len() <= 100_000, "the socket limit never came");
    };
    println!("held {}, then {:?}", held.len(), refused.kind());
    drop(held);
    match UdpSocket::bind("127.0.0.1:0") {
        Ok(_) => println!("again: ok"),
        Err(e) => println!("again: {:?}: {e}", e.kind()),
    }
}

fn udp_recv() {
    let socket = UdpSocket::bind("0.0.0.0:0").expect("a bind to any address");
    println!("bound {}", socket.local_addr().expect("an address").port());
    let mut buf = [0u8; 256];
    match socket.recv_from(&mut buf) {
        Ok((n, from)) => println!("received {} from {from}", String::from_utf8_lossy(&buf[..n])),
        Err(e) => println!("receive: {:?}: {e}", e.kind()),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("open") => open(),
        Some("udp-recv") => udp_recv(),
        Some("listen-any") => match TcpListener::bind("0.0.0.0:0") {
            Ok(l) => println!("listen-any: listening on {:?}", l.local_addr()),
            Err(e) => println!("listen-any: {:?}", e.kind()),
        },
        Some("connect") => match TcpStream::connect(args[2].as_str()) {
            Ok(s) => println!("connect: connected to {:?}", s.peer_addr()),
            Err(e) => println!("connect: {:?}", e.kind()),
        },
        other => panic!("unknown mode {other:?}"),
    }
}

//! A plain program that knows nothing of weft and serves with `std::net` (WASI
//! sockets): it listens on the address given (default 127.0.0.1:0), prints
//! `ready ADDRESS`, and answers each line of each of N connections (second argument,
//! default 1) in upper case.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

fn main() {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".into());
    let n: usize = std::env::args().nth(2).map_or(1, |a| a.parse().expect("a count"));
    let listener = match TcpListener::bind(&address) {
        Ok(l) => l,
        Err(e) => {
            println!("bind: {:?}: {e}", e.kind());
            std::process::exit(3);
        }
    };
    println!("ready {}", listener.local_addr().expect("an address"));
    for stream in listener.incoming().take(n) {
        let stream = stream.expect("a connection");
        let mut lines = BufReader::new(&stream);
        let mut line = String::new();
        while lines.read_line(&mut line).expect("a line") > 0 {
            (&stream)
                .write_all(line.to_uppercase().as_bytes())
                .expect("the peer reads");
            line.clear();
        }
    }
    println!("served {n}");
}

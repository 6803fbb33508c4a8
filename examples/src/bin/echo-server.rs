//! The echo server of the seeds: bind, loop on `accept`, and hand each connection to
//! a detached microthread of its own that echoes until the client closes. An error
//! on one connection ends only its microthread; the server keeps serving.
//!
//! `weft run --listen 127.0.0.1:7000 echo-server.wasm [ADDRESS]` (default
//! 127.0.0.1:7000; port 0 lets the system choose). It prints the address it
//! listens on.

use std::io::{Read, Write};

use weft_guest::net::{TcpListener, TcpStream};

/// Echo what `stream` sends until it closes.
fn echo(stream: TcpStream) {
    let mut buf = [0u8; 16 << 10];
    loop {
        match (&stream).read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if (&stream).write_all(&buf[..n]).is_err() {
                    return; // the client went away mid-echo
                }
            }
            Err(_) => return, // reset, or cancelled: this connection only
        }
    }
}

fn main() {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:7000".into());
    let listener = TcpListener::bind(address.as_str()).unwrap_or_else(|e| {
        eprintln!("echo-server: cannot listen on {address}: {e}");
        std::process::exit(1);
    });
    match listener.local_addr() {
        Ok(addr) => println!("echo-server: listening on {addr}"),
        Err(e) => println!("echo-server: listening (address unknown: {e})"),
    }
    // `incoming()` ends when the program is being stopped, and so does the server.
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                // At the microthread limit the connection is refused (closed), and
                // the server goes on with the next.
                if let Err(e) = weft_guest::Builder::new().spawn_detached(echo, stream) {
                    eprintln!("echo-server: connection refused: {e}");
                }
            }
            // Over the socket limit, say: this connection is refused, the next may not be.
            Err(e) => eprintln!("echo-server: accept: {e}"),
        }
    }
}

//! The README's network pattern, as a newcomer copies it: `main` returns
//! `io::Result`, and the accept loop is `for stream in listener.incoming()` with
//! `stream?`. Stopping it (Ctrl-C, SIGTERM, --timeout) must end it quietly.
//!
//! `readme-echo ADDRESS`: prints the address it listens on, then serves.

use std::io::{Read, Write};

use weft_guest::net::{TcpListener, TcpStream};

fn echo(stream: TcpStream) {
    let mut buf = [0u8; 16 << 10];
    while let Ok(n @ 1..) = (&stream).read(&mut buf) {
        if (&stream).write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

fn main() -> std::io::Result<()> {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:7000".into());
    let listener = TcpListener::bind(address.as_str())?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    for stream in listener.incoming() {
        // A microthread per connection: an error on one ends only its microthread; at the
        // microthread limit the connection is refused (closed) and the server goes on.
        if let Err(e) = weft_guest::Builder::new().spawn_detached(echo, stream?) {
            eprintln!("refused: {e}");
        }
    }
    Ok(())
}

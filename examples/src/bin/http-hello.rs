//! A minimal HTTP/1.1 server with keep-alive, one microthread per connection: every
//! request (any method, any path) gets `Hello, world!`. Enough for `curl`, `wrk` and
//! `ab` to drive.
//!
//! `weft run --listen 127.0.0.1:8080 http-hello.wasm [ADDRESS]` (default
//! 127.0.0.1:8080; port 0 lets the system choose). It prints the address it
//! listens on.

use std::io::{BufRead, BufReader, Write};

use weft_guest::net::{TcpListener, TcpStream};

const BODY: &str = "Hello, world!\n";

/// One request's head: whether the connection stays open after it, and the length
/// of its body. `None` at the end of the stream.
fn request(reader: &mut impl BufRead) -> std::io::Result<Option<(bool, usize)>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut keep_alive = !line.trim_end().ends_with("HTTP/1.0");
    let mut length = 0;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let header = line.trim_end();
        if header.is_empty() {
            return Ok(Some((keep_alive, length)));
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "connection" => keep_alive = value.eq_ignore_ascii_case("keep-alive"),
                "content-length" => length = value.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
}

fn serve(stream: TcpStream) {
    let mut reader = BufReader::new(&stream);
    while let Ok(Some((keep_alive, length))) = request(&mut reader) {
        // The body, if any, is read and ignored.
        let mut left = length;
        while left > 0 {
            let n = match reader.fill_buf() {
                Ok([]) | Err(_) => return,
                Ok(buf) => buf.len().min(left),
            };
            reader.consume(n);
            left -= n;
        }
        let connection = if keep_alive { "keep-alive" } else { "close" };
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n{BODY}",
            BODY.len()
        );
        if (&stream).write_all(response.as_bytes()).is_err() || !keep_alive {
            return;
        }
    }
}

fn main() {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(address.as_str()).unwrap_or_else(|e| {
        eprintln!("http-hello: cannot listen on {address}: {e}");
        std::process::exit(1);
    });
    match listener.local_addr() {
        Ok(addr) => println!("http-hello: listening on http://{addr}/"),
        Err(e) => println!("http-hello: listening (address unknown: {e})"),
    }
    // `incoming()` ends when the program is being stopped, and so does the server.
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                // At the microthread limit the connection is refused (closed), and
                // the server goes on with the next.
                if let Err(e) = weft_guest::Builder::new().spawn_detached(serve, stream) {
                    eprintln!("http-hello: connection refused: {e}");
                }
            }
            Err(e) => eprintln!("http-hello: accept: {e}"),
        }
    }
}

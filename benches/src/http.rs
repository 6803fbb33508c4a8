//! HTTP servers under load: `weft serve`, `wasmtime serve` and a native hyper
//! hello started as processes on a free port, and `wrk` run against them (its
//! requests per second and latency percentiles), with or without one request
//! that spins in the handler meanwhile.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The handler the benchmark serves (`tests/http-guests`' `http-handler`) built
/// as a user builds one: a crate of its own outside this repository, plain `cargo
/// build --release --target wasm32-wasip2` (so without this repository's flags,
/// `.cargo/config.toml`'s small stack). Built once, in the system's temporary
/// directory.
///
/// # Panics
/// If the build fails: the message says why.
pub fn plain_handler() -> std::path::PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join("weft-bench-plain-http-handler");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).expect("make the handler's crate");
    let manifest = "[package]\nname = \"http-handler\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
        [dependencies]\nwstd = \"0.6\"\nfutures-lite = \"1\"\nhttp-body-util = \"0.1\"\n\n[workspace]\n";
    std::fs::write(dir.join("Cargo.toml"), manifest).expect("write the handler's manifest");
    let source = repo.join("tests/http-guests/src/bin/http-handler.rs");
    std::fs::copy(&source, src.join("main.rs")).expect("copy the handler's source");
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    // Nothing of the outer build leaks in: its flags, its target directory.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        cargo.env_remove(var);
    }
    let out = cargo
        .current_dir(&dir)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "building the plain handler failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("target/wasm32-wasip2/release/http-handler.wasm")
}

/// What `wrk` measured.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub requests_per_second: f64,
    /// Latency percentiles, in milliseconds.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Responses that were not 2xx or 3xx, and socket errors.
    pub errors: u64,
}

/// A server process, killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Err(e) = self.child.kill() {
            eprintln!("cannot kill a server: {e}");
        }
        let _reaped = self.child.wait();
    }
}

/// A free port on loopback (a race with others is possible, and unlikely here).
fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address")
}

/// Start `command` serving on `addr`, and wait until a GET of `/` answers.
fn start(mut command: Command, addr: SocketAddr, what: &str) -> Server {
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let server = Server { child, addr };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if get_ok(addr) {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not answer on {addr} within 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a GET of `/` at `addr` is answered 200.
fn get_ok(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("HTTP/1.1 200")
}

/// `weft serve` (the binary `weft`) serving `wasm`, with `flags`.
pub fn weft_serve(weft: &Path, wasm: &Path, flags: &[&str]) -> Server {
    let addr = free_addr();
    let mut command = Command::new(weft);
    command
        .env("WEFT_CACHE_DIR", weft_tests::cache_dir())
        .args(["serve", "--listen", &addr.to_string()])
        .args(flags)
        .arg(wasm);
    start(command, addr, "weft serve")
}

/// `wasmtime serve` (the binary `wasmtime`) serving `wasm`.
pub fn wasmtime_serve(wasmtime: &Path, wasm: &Path) -> Server {
    let addr = free_addr();
    let mut command = Command::new(wasmtime);
    command
        .args(["serve", "-Scli", "--addr", &addr.to_string()])
        .arg(wasm);
    start(command, addr, "wasmtime serve")
}

/// The native hello (`hyper-hello`).
pub fn hyper_hello(binary: &Path) -> Server {
    let addr = free_addr();
    let mut command = Command::new(binary);
    command.arg(addr.to_string());
    start(command, addr, "hyper-hello")
}

/// A request to `path` that the handler spins on: sent, and its connection
/// held open (dropping it closes the connection).
pub fn spinning(addr: SocketAddr, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect to the server");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .expect("send the spinning request");
    // Let it start spinning.
    std::thread::sleep(Duration::from_millis(300));
    stream
}

/// `wrk` against `/` at `addr`: `connections` connections over 2 threads for
/// `seconds`.
///
/// # Panics
/// If `wrk` is missing (`apt-get install wrk`), fails, or prints no figures.
pub fn wrk(addr: SocketAddr, connections: u32, seconds: u32) -> Load {
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "--timeout",
            "10s",
        ])
        .arg(format!("http://{addr}/"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run wrk (apt-get install wrk): {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_wrk(&text).unwrap_or_else(|| panic!("no figures in wrk's output:\n{text}"))
}

/// An open-loop load: `connections` keep-alive connections to `/` at `addr`,
/// `rate` requests per second in all, each connection sending at fixed times
/// for `seconds`. A request's latency counts from the time it was due, not from
/// when it could be sent (a late answer delays the next send, and that delay is
/// counted: no coordinated omission), so the percentiles say what a client
/// arriving at that rate sees, at the same load for every server.
pub fn paced(addr: SocketAddr, connections: u32, rate: u32, seconds: u32) -> Load {
    let interval = Duration::from_secs_f64(f64::from(connections) / f64::from(rate));
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs(u64::from(seconds));
    let clients: Vec<_> = (0..connections)
        .map(|i| {
            // Spread over the interval, so that the sends are even.
            let first = start + interval.mul_f64(f64::from(i) / f64::from(connections));
            std::thread::spawn(move || paced_connection(addr, first, interval, end))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for client in clients {
        let (mine, failed) = client.join().expect("a paced client");
        latencies.extend(mine);
        errors += failed;
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(i).copied().unwrap_or(f64::NAN)
    };
    Load {
        requests_per_second: latencies.len() as f64 / f64::from(seconds),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        errors,
    }
}

/// One connection of [`paced`]: its latencies in milliseconds, and its errors.
fn paced_connection(addr: SocketAddr, first: Instant, interval: Duration, end: Instant) -> (Vec<f64>, u64) {
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut connection: Option<BufReader<TcpStream>> = None;
    let mut due = first;
    while due < end {
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let reader = match connection.as_mut() {
            Some(reader) => reader,
            None => match TcpStream::connect(addr) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    connection.insert(BufReader::new(stream))
                }
                Err(_) => {
                    errors += 1;
                    due += interval;
                    continue;
                }
            },
        };
        let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        let answered = reader.get_mut().write_all(request.as_bytes()).is_ok() && read_response(reader);
        if answered {
            latencies.push(Instant::now().duration_since(due).as_secs_f64() * 1e3);
        } else {
            errors += 1;
            connection = None;
        }
        due += interval;
    }
    (latencies, errors)
}

/// Read one response (its body by `content-length` or chunked); whether it was
/// a whole 200.
fn read_response(reader: &mut BufReader<TcpStream>) -> bool {
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 || !line.starts_with("HTTP/1.1 200") {
        return false;
    }
    let (mut length, mut chunked) = (0usize, false);
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let lower = header.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    let skip = |n: usize, reader: &mut BufReader<TcpStream>| {
        let mut body = vec![0u8; n];
        std::io::Read::read_exact(reader, &mut body).is_ok()
    };
    if !chunked {
        return skip(length, reader);
    }
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        let Ok(size) = usize::from_str_radix(line.trim_end(), 16) else {
            return false;
        };
        // The chunk and its CRLF; the last (size 0) is followed by a blank line.
        if !skip(size + 2, reader) {
            return false;
        }
        if size == 0 {
            return true;
        }
    }
}

/// wrk's requests per second, 50th and 99th percentiles, and errors.
fn parse_wrk(text: &str) -> Option<Load> {
    let requests_per_second = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))?
        .trim()
        .parse()
        .ok()?;
    let percentile = |p: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(p))
            .and_then(|v| milliseconds(v.trim()))
    };
    // "Non-2xx or 3xx responses: N", "Socket errors: connect A, read B, write C, timeout D".
    let mut errors = 0;
    for line in text.lines().map(str::trim) {
        if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
            errors += n.trim().parse::<u64>().unwrap_or(0);
        }
        if let Some(list) = line.strip_prefix("Socket errors:") {
            errors += list
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    Some(Load {
        requests_per_second,
        p50_ms: percentile("50%")?,
        p99_ms: percentile("99%")?,
        errors,
    })
}

/// A wrk duration (`812.00us`, `1.53ms`, `2.01s`) in milliseconds.
fn milliseconds(v: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = v.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60e3)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1e3)
    } else {
        return None;
    };
    Some(number.parse::<f64>().ok()? * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_figures_are_read() {
        let text = "Running 10s test @ http://127.0.0.1:8080/\n  2 threads and 50 connections\n  \
            Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     1.53ms  812.00us  20.01ms   80.00%\n  \
            Latency Distribution\n     50%  812.00us\n     75%    1.53ms\n     90%    2.00ms\n     99%    2.01s\n  \
            123456 requests in 10.00s, 12.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 3\n  \
            Non-2xx or 3xx responses: 4\nRequests/sec:  12345.67\nTransfer/sec:      1.20MB\n";
        let load = parse_wrk(text).unwrap();
        assert_eq!(load.requests_per_second, 12345.67);
        assert!((load.p50_ms - 0.812).abs() < 1e-9);
        assert!((load.p99_ms - 2010.0).abs() < 1e-6);
        assert_eq!(load.errors, 9);
        assert_eq!(milliseconds("1.5m"), Some(90_000.0));
        assert_eq!(milliseconds("soon"), None);
    }
}

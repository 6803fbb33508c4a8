//! `weft serve`: real `wasi:http/proxy` components built from source (a Rust
//! handler written with wstd, a JavaScript one built by componentize-js's default
//! build), served by the real binary, and a real HTTP client against them.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Reaped, error_exit, signal, text, weft, weft_cmd};

/// A `weft serve` under test: its address, and its stderr as it comes.
struct Served {
    process: Reaped,
    addr: SocketAddr,
    /// What it said up to its address.
    banner: String,
    stderr: Arc<Mutex<String>>,
    /// The thread that reads its stderr into `stderr`, to its end.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Served {
    /// `weft serve --listen 127.0.0.1:0 FLAGS WASM`, once it listens.
    fn start(wasm: &std::path::Path, flags: &[&str]) -> Served {
        let child = weft_cmd()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(flags)
            .arg(wasm)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start weft serve");
        Served::listening(child)
    }

    fn listening(mut child: Child) -> Served {
        let mut err = BufReader::new(child.stderr.take().expect("piped stderr"));
        let mut seen = String::new();
        let addr = loop {
            let mut line = String::new();
            if err.read_line(&mut line).expect("read weft serve's stderr") == 0 {
                let status = child.wait().expect("wait for weft serve");
                panic!("weft serve ended ({status}) before it listened:\n{seen}");
            }
            seen.push_str(&line);
            if let Some(rest) = line.trim_end().strip_prefix("weft: serving ") {
                let url = rest.rsplit(" on http://").next().expect("an address");
                break url.trim_end_matches('/').parse().expect("a socket address");
            }
        };
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            let mut line = String::new();
            while err.read_line(&mut line).unwrap_or(0) > 0 {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        Served {
            process: Reaped::new(child),
            addr,
            banner: seen,
            stderr,
            reader: Some(reader),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Its stderr once it says `text` (or after 10 s: the caller's assertion
    /// then shows what it said).
    fn stderr_once_it_says(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stderr = self.stderr();
            if stderr.contains(text) || Instant::now() > deadline {
                return stderr;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stop it with `sig` and wait for its end: its exit code. Its stderr is
    /// then whole.
    fn stop(mut self, sig: i32) -> Option<i32> {
        signal(self.process.child(), sig);
        let child = self.process.child();
        let started = Instant::now();
        let code = loop {
            if let Some(status) = child.try_wait().expect("wait for weft serve") {
                break status.code();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "weft serve did not stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the stderr reader");
        }
        code
    }
}

/// An HTTP client that reads every status as a response.
fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// GET `url`: its status and body.
fn get(url: &str) -> (u16, Vec<u8>) {
    let mut response = client()
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let mut body = Vec::new();
    response
        .body_mut()
        .as_reader()
        .read_to_end(&mut body)
        .unwrap_or_else(|e| panic!("GET {url}: reading the body: {e}"));
    (status, body)
}

/// POST `body` to `url`: its status and body.
fn post(url: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut response = client()
        .post(url)
        .send(body)
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = response.status().as_u16();
    let mut back = Vec::new();
    response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .reader()
        .read_to_end(&mut back)
        .unwrap_or_else(|e| panic!("POST {url}: reading the body: {e}"));
    (status, back)
}

/// GETs of `/bytes?n=N` and POSTs to `/echo` with bodies of 0 B, 1 KiB and 10
/// MiB: each of the right length (made of `fill`, if given), each echoed whole.
fn bodies_stream_both_ways(served: &Served, fill: Option<u8>) {
    for size in [0usize, 1 << 10, 10 << 20] {
        let (status, body) = get(&served.url(&format!("/bytes?n={size}")));
        assert_eq!(status, 200);
        assert_eq!(body.len(), size, "GET of {size} bytes");
        if let Some(fill) = fill {
            assert!(body.iter().all(|&b| b == fill));
        }
        let sent: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let (status, back) = post(&served.url("/echo"), &sent);
        assert_eq!(status, 200);
        assert!(
            back == sent,
            "POST of {size} bytes came back as {} bytes",
            back.len()
        );
    }
}

fn hello() -> std::path::PathBuf {
    weft_tests::guest("http-handler")
}

#[test]
fn a_rust_handler_answers_gets_and_posts_with_bodies_streamed_both_ways() {
    let served = Served::start(&hello(), &[]);
    let (status, body) = get(&served.url("/"));
    assert_eq!(
        (status, text(&body)),
        (200, "Hello from a wasi:http handler\n".into())
    );
    bodies_stream_both_ways(&served, Some(b'w'));
    let (status, _) = get(&served.url("/nothing-here"));
    assert_eq!(status, 404);
    assert_eq!(served.stop(libc::SIGINT), Some(130));
}

#[test]
fn two_hundred_requests_at_once_are_all_answered() {
    let served = Served::start(&hello(), &["--stats"]);
    let url = served.url("/sleep?ms=200");
    let answers: Vec<_> = (0..200)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || get(&url))
        })
        .collect();
    for answer in answers {
        let (status, body) = answer.join().expect("a client thread");
        assert_eq!((status, text(&body)), (200, "slept 200 ms\n".into()));
    }
    let stderr = served.stderr.clone();
    assert_eq!(served.stop(libc::SIGTERM), Some(143));
    let stderr = stderr.lock().unwrap().clone();
    assert!(
        stderr.contains(
            "requests: 200 started, 200 answered, 0 failed (500), 0 timed out (504), 0 refused (503)"
        ),
        "{stderr}"
    );
}

#[test]
fn a_handler_that_traps_answers_500_once_reported_and_the_next_request_is_fine() {
    let served = Served::start(&hello(), &[]);
    let (status, body) = get(&served.url("/trap"));
    assert_eq!(status, 500);
    assert!(
        text(&body).contains("the handler gave no response"),
        "{}",
        text(&body)
    );
    let (status, body) = get(&served.url("/"));
    assert_eq!(
        (status, text(&body)),
        (200, "Hello from a wasi:http handler\n".into())
    );
    // Reported once, with the guest's backtrace and the request it handled.
    let stderr = served.stderr_once_it_says("wasm backtrace");
    assert_eq!(stderr.matches("(GET /trap) failed").count(), 1, "{stderr}");
    assert!(stderr.contains("the handler panicked on purpose"), "{stderr}");
    assert!(stderr.contains("wasm backtrace"), "{stderr}");
    assert_eq!(served.stop(libc::SIGINT), Some(130));
}

#[test]
fn a_spinning_handler_does_not_hold_up_fifty_others_and_is_stopped_at_its_timeout() {
    // One worker: the spinning handler and the others share it, by fuel.
    let served = Served::start(
        &hello(),
        &["--workers", "1", "--request-timeout", "3s", "--stats"],
    );
    let spin_url = served.url("/spin");
    let spinner = std::thread::spawn(move || {
        let started = Instant::now();
        let (status, body) = get(&spin_url);
        (status, text(&body), started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    for _ in 0..50 {
        let (status, _) = get(&served.url("/"));
        assert_eq!(status, 200);
    }
    let fifty = started.elapsed();
    let (status, body, waited) = spinner.join().expect("the spinner's client");
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("request timeout of 3s"), "{body}");
    assert!(
        fifty < waited,
        "the fifty took {fifty:?}, longer than the spinner's {waited:?}"
    );
    let stderr = served.stderr.clone();
    assert_eq!(served.stop(libc::SIGINT), Some(130));
    let stderr = stderr.lock().unwrap().clone();
    assert!(
        stderr.contains("(GET /spin) ran past the request timeout of 3s: stopped"),
        "{stderr}"
    );
    assert!(
        stderr.contains("51 started, 50 answered, 0 failed (500), 1 timed out (504)"),
        "{stderr}"
    );
}

#[test]
fn past_max_requests_a_request_is_refused_with_503_at_once() {
    let served = Served::start(&hello(), &["--max-requests", "2"]);
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let url = served.url("/sleep?ms=1500");
            std::thread::spawn(move || get(&url))
        })
        .collect();
    // Both in flight.
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let (status, body) = get(&served.url("/"));
    assert_eq!(status, 503, "{}", text(&body));
    assert!(text(&body).contains("handles 2 at once"), "{}", text(&body));
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "refused at once, not after the others"
    );
    for answer in slow {
        assert_eq!(answer.join().expect("a client thread").0, 200);
    }
    // Room again, once their microthreads have ended (just after their answers).
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&served.url("/")).0 != 200 {
        assert!(Instant::now() < deadline, "no room again after the slow requests");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(served.stop(libc::SIGINT), Some(130));
}

#[test]
fn a_stop_lets_the_requests_in_flight_finish_and_refuses_new_connections() {
    let served = Served::start(&hello(), &["--grace", "10s"]);
    let url = served.url("/sleep?ms=1500");
    let in_flight = std::thread::spawn(move || get(&url));
    std::thread::sleep(Duration::from_millis(400));
    let addr = served.addr;
    let stopping = std::thread::spawn(move || served.stop(libc::SIGTERM));
    std::thread::sleep(Duration::from_millis(300));
    // No longer accepting.
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "the server still accepts connections while it stops"
    );
    let (status, body) = in_flight.join().expect("the client in flight");
    assert_eq!((status, text(&body)), (200, "slept 1500 ms\n".into()));
    assert_eq!(stopping.join().expect("the stop"), Some(143));
}

#[test]
fn a_stop_stops_what_is_still_in_flight_after_the_grace_period() {
    let served = Served::start(&hello(), &["--grace", "500ms"]);
    let url = served.url("/spin");
    let in_flight = std::thread::spawn(move || client().get(&url).call().map(|r| r.status().as_u16()));
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(served.stop(libc::SIGINT), Some(130));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the stop waited {:?}",
        started.elapsed()
    );
    // Stopped, it is answered so.
    assert_eq!(in_flight.join().expect("the client").expect("an answer"), 503);
}

#[test]
fn outgoing_requests_need_a_connect_grant() {
    let port = common::http_server("from upstream\n");
    let target = format!("http://127.0.0.1:{port}/x");
    // Without a grant: denied before any connection, and told.
    let served = Served::start(&hello(), &[]);
    // Every time (the guest's request body, which nobody sends, must not fail
    // first).
    for _ in 0..10 {
        let (status, body) = get(&served.url(&format!("/fetch?url={target}")));
        assert_eq!(status, 502, "{}", text(&body));
        assert!(text(&body).contains("HttpRequestDenied"), "{}", text(&body));
    }
    let told = format!(
        "weft: an outgoing request to 127.0.0.1:{port} was denied: no grant covers it (--connect 127.0.0.1:{port}"
    );
    let stderr = served.stderr_once_it_says(&told);
    assert!(stderr.contains(&told), "{stderr}");
    // A name no grant names is not even looked up.
    let (status, body) = get(&served.url("/fetch?url=http://no-such-host.invalid/"));
    assert_eq!(status, 502);
    assert!(text(&body).contains("HttpRequestDenied"), "{}", text(&body));
    assert_eq!(served.stop(libc::SIGINT), Some(130));
    // With one: through.
    let grant = format!("127.0.0.1:{port}");
    let served = Served::start(&hello(), &["--connect", &grant]);
    let (status, body) = get(&served.url(&format!("/fetch?url={target}")));
    assert_eq!((status, text(&body)), (200, "200 OK: from upstream\n".into()));
    // Another port of the same host is still denied.
    let other = format!("/fetch?url=http://127.0.0.1:{}/", port.wrapping_add(1));
    assert_eq!(get(&served.url(&other)).0, 502);
    assert_eq!(served.stop(libc::SIGINT), Some(130));
}

#[test]
fn the_memory_limit_holds_for_each_request() {
    let served = Served::start(&hello(), &["--max-memory", "32MiB"]);
    let (status, _) = get(&served.url("/memory?mib=64"));
    assert_eq!(status, 500);
    let (status, body) = get(&served.url("/memory?mib=8"));
    assert_eq!((status, text(&body)), (200, "touched 2048 pages\n".into()));
    let stderr = served.stderr_once_it_says("(GET /memory) failed");
    assert!(stderr.contains("(GET /memory) failed"), "{stderr}");
    assert_eq!(served.stop(libc::SIGINT), Some(130));
}

#[test]
fn the_metrics_count_requests_by_outcome() {
    let served = Served::start(
        &hello(),
        &[
            "--metrics",
            "127.0.0.1:0",
            "--max-requests",
            "2",
            "--request-timeout",
            "1s",
        ],
    );
    // The metrics' address came first.
    let metrics = served
        .banner
        .lines()
        .find_map(|l| l.strip_prefix("weft: metrics at "))
        .unwrap_or_else(|| panic!("no metrics address in {}", served.banner))
        .to_string();
    // The scrape once it says `line` (a request is counted when its microthread
    // has ended, just after its answer).
    let scrape_once = |line: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let body = text(&get(&metrics).1);
            if body.contains(line) || Instant::now() > deadline {
                return body;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert_eq!(get(&served.url("/")).0, 200);
    assert_eq!(get(&served.url("/")).0, 200);
    assert_eq!(get(&served.url("/trap")).0, 500);
    assert_eq!(get(&served.url("/spin")).0, 504);
    scrape_once("weft_http_requests_in_flight 0");
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let url = served.url("/sleep?ms=800");
            std::thread::spawn(move || get(&url))
        })
        .collect();
    let body = scrape_once("weft_http_requests_in_flight 2");
    assert!(body.contains("weft_http_requests_in_flight 2"), "{body}");
    assert_eq!(get(&served.url("/")).0, 503);
    for answer in slow {
        assert_eq!(answer.join().unwrap().0, 200);
    }
    let body = scrape_once("weft_http_requests_in_flight 0");
    for line in [
        "weft_http_requests_total{outcome=\"answered\"} 4",
        "weft_http_requests_total{outcome=\"failed\"} 1",
        "weft_http_requests_total{outcome=\"timed_out\"} 1",
        "weft_http_requests_total{outcome=\"refused\"} 1",
        "weft_http_requests_in_flight 0",
    ] {
        assert!(body.contains(line), "no `{line}` in:\n{body}");
    }
    assert_eq!(served.stop(libc::SIGINT), Some(130));
}

#[test]
fn bad_inputs_are_refused_with_a_clear_error() {
    // A program that handles no requests.
    let o = weft(&["serve", weft_tests::guest("hello").to_str().unwrap()]);
    let err = error_exit(&o, 1);
    assert!(err.contains("handles no HTTP requests"), "{err}");
    assert!(err.contains("weft run"), "{err}");
    // A handler whose `main` only fails (wstd's) is told to be served.
    let o = weft(&["run", hello().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(134));
    let err = text(&o.stderr);
    assert!(
        err.contains("handles HTTP requests") && err.contains("weft serve"),
        "{err}"
    );
    // An address in use.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = weft(&["serve", "--listen", &addr, hello().to_str().unwrap()]);
    let err = error_exit(&o, 1);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    // A malformed address, a bad timeout.
    let o = weft(&["serve", "--listen", "localhost", hello().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let o = weft(&["serve", "--request-timeout", "soon", hello().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
}

#[test]
fn a_javascript_handler_built_by_componentize_js_is_served() {
    let wasm = weft_tests::componentized_js("tests/js/http-hello.js");
    let served = Served::start(&wasm, &[]);
    let (status, body) = get(&served.url("/"));
    assert_eq!(
        (status, text(&body)),
        (200, "Hello from a JavaScript handler\n".into())
    );
    bodies_stream_both_ways(&served, None);
    // An exception answers 500 (the engine's answer), and the next request is fine.
    assert_eq!(get(&served.url("/throw")).0, 500);
    assert_eq!(get(&served.url("/")).0, 200);
    let stderr = served.stderr_once_it_says("handle@http-hello.js");
    assert!(stderr.contains("the handler threw on purpose"), "{stderr}");
    assert!(stderr.contains("handle@http-hello.js"), "{stderr}");
    // Its `fetch` is under the grants too.
    let (status, body) = get(&served.url("/fetch?url=http://127.0.0.1:9/"));
    assert_eq!(status, 502, "{}", text(&body));
    let stderr = served.stderr_once_it_says("an outgoing request to 127.0.0.1:9 was denied");
    assert!(
        stderr.contains("an outgoing request to 127.0.0.1:9 was denied"),
        "{stderr}"
    );
    assert_eq!(served.stop(libc::SIGINT), Some(130));
    // It has no `main`: run, it is told to be served.
    let o = weft(&["run", wasm.to_str().unwrap()]);
    let err = error_exit(&o, 1);
    assert!(
        err.contains("is an HTTP handler") && err.contains("weft serve"),
        "{err}"
    );
}

#[test]
fn a_fuel_budget_holds_for_each_request() {
    let served = Served::start(&hello(), &["--fuel-budget-per-microthread", "50000000"]);
    let (status, _) = get(&served.url("/spin"));
    assert_eq!(status, 500);
    let stderr = served.stderr_once_it_says("(GET /spin) failed");
    assert!(stderr.contains("fuel"), "{stderr}");
    // Each request has a budget of its own.
    for _ in 0..3 {
        assert_eq!(get(&served.url("/")).0, 200);
    }
    assert_eq!(served.stop(libc::SIGINT), Some(130));
}

#[test]
fn ctrl_backslash_shows_the_requests_in_flight() {
    let served = Served::start(&hello(), &[]);
    let url = served.url("/sleep?ms=1500");
    let slow = std::thread::spawn(move || get(&url));
    std::thread::sleep(Duration::from_millis(500));
    let mut served = served;
    signal(served.process.child(), libc::SIGQUIT);
    let stderr = served.stderr_once_it_says("requests 1 (answered 0");
    assert!(stderr.contains("GET /sleep"), "{stderr}");
    assert!(
        stderr.contains("requests 1 (answered 0, failed 0, timed out 0, refused 0)"),
        "{stderr}"
    );
    assert_eq!(slow.join().expect("the client").0, 200);
    assert_eq!(served.stop(libc::SIGINT), Some(130));
}

#[test]
fn a_handler_compiled_ahead_of_time_is_served() {
    let dir = tempfile_dir("precompiled-handler");
    let cwasm = dir.join("handler.cwasm");
    let o = weft(&[
        "compile",
        hello().to_str().unwrap(),
        "-o",
        cwasm.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let served = Served::start(&cwasm, &["--request-timeout", "2s"]);
    assert_eq!(
        get(&served.url("/")),
        (200, b"Hello from a wasi:http handler\n".to_vec())
    );
    // Compiled for serving: with fuel, so a spinning handler is stopped.
    assert_eq!(get(&served.url("/spin")).0, 504);
    assert_eq!(served.stop(libc::SIGTERM), Some(143));
}

/// A fresh directory of this test's own under the target directory.
fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("clear the test's directory");
    }
    std::fs::create_dir_all(&dir).expect("make the test's directory");
    dir
}

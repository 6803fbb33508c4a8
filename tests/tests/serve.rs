//! An application serves a `wasi:http/proxy` component (a wstd handler built from
//! source) through the library: `Program::serve`, its `Server`, its `Stopper`,
//! and what it refuses.

use std::io::Read;
use std::time::Duration;

use weft::{Error, ExitStatus, RunOptions, ServeOptions};

mod common;
use common::{eventually, runtime};

/// GET `url`: its status and body.
fn get(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut response = agent.get(url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let mut body = String::new();
    response
        .body_mut()
        .as_reader()
        .read_to_string(&mut body)
        .expect("read the body");
    (response.status().as_u16(), body)
}

#[test]
fn an_application_serves_a_handler_watches_its_requests_and_stops_it() {
    let rt = runtime(2);
    let program = rt
        .load(weft_tests::guest("http-handler"))
        .expect("load the handler");
    assert!(program.is_http_handler());
    let options = ServeOptions::new()
        .listen("127.0.0.1:0".parse().unwrap())
        .request_timeout(Duration::from_secs(20))
        .run_options(RunOptions::new().env("GREETING", "hello from the application"));
    let server = program.serve(&options).expect("serve");
    let base = format!("http://{}", server.local_addr());
    // The run's options hold for each request: its environment here.
    assert_eq!(
        get(&format!("{base}/env?name=GREETING")),
        (200, "hello from the application\n".into())
    );
    // A request in flight is a microthread of the server's run, named after it.
    let slow = {
        let url = format!("{base}/sleep?ms=1000");
        std::thread::spawn(move || get(&url))
    };
    let view = server.view();
    eventually("the request in flight shows in the view", || {
        view.microthreads()
            .iter()
            .any(|m| m.name.as_deref() == Some("GET /sleep"))
    });
    assert_eq!(server.stats().in_flight, 1);
    // Stopped from another thread: the request in flight still finishes.
    let stopper = server.stopper();
    stopper.stop();
    assert_eq!(slow.join().expect("the client"), (200, "slept 1000 ms\n".into()));
    let stopped = server.wait();
    assert_eq!(stopped.status, ExitStatus::Cancelled);
    assert_eq!(
        (
            stopped.stats.started,
            stopped.stats.answered,
            stopped.stats.in_flight
        ),
        (2, 2, 0)
    );
    // Gone: nothing listens there.
    assert!(std::net::TcpStream::connect(base.trim_start_matches("http://")).is_err());
}

#[test]
fn a_server_dropped_stops_at_once() {
    let rt = runtime(1);
    let program = rt
        .load(weft_tests::guest("http-handler"))
        .expect("load the handler");
    let server = program
        .serve(&ServeOptions::new().listen("127.0.0.1:0".parse().unwrap()))
        .expect("serve");
    let addr = server.local_addr();
    let spinning = std::thread::spawn(move || {
        let url = format!("http://{addr}/spin");
        ureq::get(&url).call().map(|r| r.status().as_u16())
    });
    std::thread::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    drop(server);
    // Its spinning request was stopped, and its connection closed unanswered.
    assert!(spinning.join().expect("the client").is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
    eventually("nothing listens any more", || {
        std::net::TcpStream::connect(addr).is_err()
    });
}

#[test]
fn serve_refuses_what_it_cannot_serve() {
    let rt = runtime(1);
    // A command: it has a main, no handler.
    let hello = rt.load(weft_tests::guest("hello")).expect("load hello");
    assert!(!hello.is_http_handler());
    match hello.serve(&ServeOptions::new().listen("127.0.0.1:0".parse().unwrap())) {
        Err(Error::NotHttpHandler { hint, .. }) => assert!(hint.contains("weft run"), "{hint}"),
        other => panic!("expected NotHttpHandler, got {other:?}"),
    }
    let handler = rt
        .load(weft_tests::guest("http-handler"))
        .expect("load the handler");
    // A deterministic run cannot serve.
    let options = ServeOptions::new()
        .listen("127.0.0.1:0".parse().unwrap())
        .run_options(RunOptions::new().deterministic(1));
    assert!(matches!(handler.serve(&options), Err(Error::Config(_))));
    // An address in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    match handler.serve(&ServeOptions::new().listen(addr)) {
        Err(e @ Error::Serve(_)) => {
            assert!(e.to_string().contains(&format!("cannot listen on {addr}")), "{e}")
        }
        other => panic!("expected Serve, got {other:?}"),
    }
}

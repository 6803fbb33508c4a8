//! The network through the binary: `weft run --listen/--connect` with real guests,
//! on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::time::Duration;

use weft_tests::guest;

mod common;
use common::{text, weft, weft_cmd};

/// `weft run ARGS`, its stdout piped; and the address its first line ends with.
fn serve(args: &[&str]) -> (Child, String) {
    let mut child = weft_cmd()
        .arg("run")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run weft");
    let mut first = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first.split_whitespace().last().unwrap_or_default().to_string();
    (child, addr)
}

#[test]
fn the_echo_server_example_under_weft_run_and_ctrl_c() {
    let file = guest("echo-server");
    let (child, addr) = serve(&["--listen", "127.0.0.1:*", file.to_str().unwrap(), "127.0.0.1:0"]);
    let mut s = std::net::TcpStream::connect(&addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"through the binary\n").unwrap();
    let mut back = [0u8; 19];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"through the binary\n");
    // SAFETY: a plain kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("accept:"), "{}", text(&out.stderr));
}

#[test]
fn network_flags_are_checked() {
    let file = guest("echo-server");
    let file = file.to_str().unwrap();
    for (grant, says) in [
        ("127.0.0.1", "expected HOST:PORT"),
        ("127.0.0.1:http", "is not a port"),
        ("127.0.0.1:9-1", "is empty"),
    ] {
        let o = weft(&["run", "--listen", grant, file]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
        assert!(text(&o.stderr).contains(says), "{}", text(&o.stderr));
    }
    let o = weft(&["run", "--seed", "1", "--listen", "127.0.0.1:*", file]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("cannot use the network"),
        "{}",
        text(&o.stderr)
    );
    // No grant: the guest is told, naming the address and the flag to add.
    let o = weft(&["run", file, "127.0.0.1:0"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("listening on 127.0.0.1:0 is not allowed") && err.contains("--listen 127.0.0.1:0"),
        "{err}"
    );
}

#[test]
fn a_weft_program_sends_http_requests_from_any_microthread_under_the_connect_grants() {
    let port = common::http_server("from upstream");
    let client = guest("http-client");
    let url = format!("http://127.0.0.1:{port}/x");
    let grant = format!("127.0.0.1:{port}");
    let o = weft(&["run", "--connect", &grant, client.to_str().unwrap(), &url]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "main: 200 from upstream\nspawned: 200 from upstream\n"
    );
    // Without it, denied in both before any connection, and said why.
    let o = weft(&["run", client.to_str().unwrap(), &url]);
    assert_eq!(
        text(&o.stdout),
        "main: failed: ErrorCode::HttpRequestDenied\nspawned: failed: ErrorCode::HttpRequestDenied\n"
    );
    let err = text(&o.stderr);
    let told = format!("weft: an outgoing request to 127.0.0.1:{port} was denied: no grant covers it");
    assert_eq!(err.matches(&told).count(), 2, "{err}");
}

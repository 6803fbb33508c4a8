//! The test harness's `nats-server` (`weft_tests::nats`): it starts on a loopback port
//! of its own, answers as a NATS server, crashes and comes back on the same port, asks
//! for credentials when told to, and leaves no process or directory behind.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use weft_tests::nats::NatsServer;

/// A hang guard only: the server answers at once.
const GUARD: Duration = Duration::from_secs(10);

/// A connection to the server with its first line, the `INFO {...}` it greets with.
fn greet(port: u16) -> (BufReader<TcpStream>, String) {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to nats-server");
    stream.set_read_timeout(Some(GUARD)).unwrap();
    let mut reader = BufReader::new(stream);
    let info = line(&mut reader);
    assert!(info.starts_with("INFO {"), "not an INFO line: {info:?}");
    (reader, info)
}

fn line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read a line from nats-server");
    line
}

fn send(reader: &mut BufReader<TcpStream>, text: &str) {
    reader
        .get_mut()
        .write_all(text.as_bytes())
        .expect("write to nats-server");
}

/// Whether a process `pid` exists, a zombie included (Linux).
fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn it_starts_on_a_loopback_port_and_greets_with_info() {
    let server = NatsServer::start();
    assert_eq!(server.url(), format!("nats://127.0.0.1:{}", server.port()));
    let (_conn, info) = greet(server.port());
    assert!(info.contains("\"max_payload\":1048576"), "{info}");
    assert!(info.contains(&format!("\"port\":{}", server.port())), "{info}");
    assert!(!info.contains("\"auth_required\":true"), "{info}");
    assert!(server.log().contains("Server is ready"), "{}", server.log());
}

#[test]
fn a_killed_server_refuses_connections_and_a_restart_answers_on_the_same_port() {
    let mut server = NatsServer::start();
    let (port, first) = (server.port(), server.pid());
    let (mut conn, _) = greet(port);

    server.kill();
    assert!(!server.is_running());
    assert!(!process_exists(first), "the killed server {first} was not reaped");
    // Its clients see the connection end.
    assert_eq!(line(&mut conn), "", "the connection outlived the server");
    let refused = TcpStream::connect(("127.0.0.1", port)).expect_err("nothing listens any more");
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused, "{refused}");

    server.restart();
    assert!(server.is_running());
    assert_ne!(server.pid(), first);
    assert_eq!(server.port(), port);
    assert_eq!(server.url(), format!("nats://127.0.0.1:{port}"));
    let (_conn, info) = greet(port);
    assert!(info.contains(&format!("\"port\":{port}")), "{info}");

    // A restart of a running server is a crash and a start.
    let second = server.pid();
    server.restart();
    assert!(!process_exists(second));
    greet(port);
    // The log holds every start.
    assert_eq!(
        server.log().matches("Server is ready").count(),
        3,
        "{}",
        server.log()
    );
}

#[test]
fn a_user_and_password_are_required_when_configured() {
    let server = NatsServer::with_user("app", "secret");
    let (mut conn, info) = greet(server.port());
    assert!(info.contains("\"auth_required\":true"), "{info}");
    send(
        &mut conn,
        "CONNECT {\"verbose\":true,\"user\":\"app\",\"pass\":\"wrong\"}\r\n",
    );
    let refused = line(&mut conn);
    assert!(
        refused.starts_with("-ERR 'Authorization Violation'"),
        "{refused:?}"
    );

    let (mut conn, _) = greet(server.port());
    send(
        &mut conn,
        "CONNECT {\"verbose\":true,\"user\":\"app\",\"pass\":\"secret\"}\r\nPING\r\n",
    );
    assert_eq!(line(&mut conn), "+OK\r\n");
    assert_eq!(line(&mut conn), "PONG\r\n");

    // The same configuration after a restart.
    let mut server = server;
    server.restart();
    let (_conn, info) = greet(server.port());
    assert!(info.contains("\"auth_required\":true"), "{info}");
}

#[test]
fn extra_configuration_is_applied() {
    let server = NatsServer::builder().config("max_payload: 4096").start();
    let (_conn, info) = greet(server.port());
    assert!(info.contains("\"max_payload\":4096"), "{info}");
}

#[test]
fn two_servers_at_once_listen_on_different_ports() {
    let a = NatsServer::start();
    let b = NatsServer::start();
    assert_ne!(a.port(), b.port());
    assert_ne!(a.dir(), b.dir());
    for server in [&a, &b] {
        let (_conn, info) = greet(server.port());
        assert!(info.contains(&format!("\"port\":{}", server.port())), "{info}");
    }
}

#[test]
fn a_dropped_server_leaves_no_process_and_no_directory() {
    let server = NatsServer::start();
    let (pid, dir) = (server.pid(), server.dir().to_path_buf());
    assert!(process_exists(pid) && dir.is_dir());
    drop(server);
    assert!(!process_exists(pid), "nats-server {pid} outlived its NatsServer");
    assert!(!dir.exists(), "{} outlived its NatsServer", dir.display());
}

#[test]
fn a_test_that_panics_leaves_no_process_and_no_directory() {
    let (tx, rx) = std::sync::mpsc::channel();
    let test = std::thread::spawn(move || {
        let server = NatsServer::start();
        tx.send((server.pid(), server.dir().to_path_buf())).unwrap();
        panic!("a failing test holding a nats-server");
    });
    let panicked = test.join().expect_err("the thread panicked");
    assert_eq!(
        panicked.downcast_ref::<&str>(),
        Some(&"a failing test holding a nats-server")
    );
    let (pid, dir) = rx.recv().unwrap();
    assert!(!process_exists(pid), "nats-server {pid} outlived the panic");
    assert!(!dir.exists(), "{} outlived the panic", dir.display());
}

#[test]
fn a_restart_onto_a_port_someone_else_took_fails_clearly() {
    let mut server = NatsServer::start();
    let port = server.port();
    server.kill();
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port)).expect("take the freed port");
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.restart()))
        .expect_err("the port is taken");
    let message = failed
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(
        message.contains(&format!("port {port} stayed taken")) && message.contains("address already in use"),
        "{message}"
    );
    assert!(!server.is_running());
    // Once the port is free again, the server comes back on it.
    drop(squatter);
    server.restart();
    let (_conn, info) = greet(port);
    assert!(info.contains(&format!("\"port\":{port}")), "{info}");
}

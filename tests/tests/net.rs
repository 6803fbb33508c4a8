//! Guests on the network: TCP listeners and streams of `weft_guest::net`, and
//! `std::net` through WASI sockets, under the run's grants. Real guests, the real
//! host, clients in this process on loopback only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use weft::net::Grant;
use weft::{Error, ExitStatus, OutputBuffer, RunHandle, RunOptions, Runtime};
use weft_tests::guest;

mod common;

fn runtime(workers: usize) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .max_microthreads(4000)
        .cache_dir(Some(weft_tests::cache_dir()))
        .build()
        .unwrap()
}

fn loopback() -> Grant {
    Grant::parse("127.0.0.1:*").unwrap()
}

/// Start guest `name` with `args`, allowed to listen on and connect to loopback.
fn start(rt: &Runtime, name: &str, args: &[&str], options: RunOptions) -> (RunHandle, OutputBuffer) {
    common::start(rt, name, args, options.listen(loopback()).connect(loopback()))
}

/// Wait (bounded: a hang fails the test) until the output has a line containing
/// `text`; returns that line.
fn line_with(out: &OutputBuffer, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(line) = out.to_string_lossy().lines().find(|l| l.contains(text)) {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no `{text}` in:\n{}",
            out.to_string_lossy()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The address a guest printed as `… ADDRESS` at the end of a line containing `text`.
fn address(out: &OutputBuffer, text: &str) -> SocketAddr {
    let line = line_with(out, text);
    let word = line.split_whitespace().last().unwrap();
    word.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

/// Close `s` with a reset (RST), as a peer that vanishes does.
fn reset(s: TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
}

/// Room for `n` more open files in this process (server and clients share it).
fn room_for_files(n: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain calls with a valid pointer to a local.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < n {
            assert!(
                limit.rlim_max >= n,
                "this test needs {n} open files; the hard limit is {} (raise it: ulimit -Hn)",
                limit.rlim_max
            );
            limit.rlim_cur = n;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
}

#[test]
fn the_echo_server_serves_a_thousand_connections_and_outlives_clients_that_vanish() {
    room_for_files(4096);
    let rt = runtime(2);
    let (run, out) = start(&rt, "echo-server", &["127.0.0.1:0"], RunOptions::new());
    let addr = address(&out, "listening on");
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let echoed = client.block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        const CLIENTS: usize = 1000;
        // All connected at once, then all talking.
        let all_in = std::sync::Arc::new(tokio::sync::Barrier::new(CLIENTS));
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|id| {
                let all_in = all_in.clone();
                tokio::spawn(async move {
                    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
                    all_in.wait().await;
                    let mut bytes = 0;
                    for k in 0..5 {
                        let len = (id * 7 + k * 131) % 3000 + 1;
                        let msg: Vec<u8> = (0..len).map(|i| (id + k + i) as u8).collect();
                        s.write_all(&msg).await.expect("write");
                        let mut back = vec![0; len];
                        s.read_exact(&mut back).await.expect("read back");
                        assert_eq!(back, msg, "client {id}, message {k}");
                        bytes += len;
                    }
                    bytes
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += tokio::time::timeout(Duration::from_secs(120), t)
                .await
                .expect("every client is answered")
                .expect("a client");
        }
        total
    });
    assert!(echoed > 1000 * 5, "{echoed} bytes");

    // Clients that vanish mid-message, some with a reset.
    for i in 0..100 {
        let mut s = connect(addr);
        s.write_all(b"half a mess").unwrap();
        if i % 2 == 0 {
            reset(s);
        }
    }
    // The server still serves.
    for i in 0..20 {
        let mut s = connect(addr);
        let msg = format!("still there {i}\n");
        s.write_all(msg.as_bytes()).unwrap();
        let mut back = vec![0; msg.len()];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, msg.as_bytes());
    }
    assert!(run.status().is_none(), "the server ended: {:?}", run.status());
    run.cancel();
    assert_eq!(run.wait(), ExitStatus::Cancelled);
}

#[test]
fn http_hello_answers_a_real_client_and_keeps_connections_alive() {
    let rt = runtime(2);
    let (run, out) = start(&rt, "http-hello", &["127.0.0.1:0"], RunOptions::new());
    let addr = address(&out, "listening on");

    // A real HTTP client, many requests.
    let agent = ureq::Agent::new_with_defaults();
    for _ in 0..50 {
        let mut response = agent.get(&format!("http://{addr}/hello")).call().unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.body_mut().read_to_string().unwrap(), "Hello, world!\n");
    }

    // Many requests on one connection: it stays open between them.
    let s = connect(addr);
    let mut reader = BufReader::new(s.try_clone().unwrap());
    for i in 0..100 {
        write!(&s, "GET /{i} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert_eq!(status, "HTTP/1.1 200 OK\r\n", "request {i}");
        let mut length = 0;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            if header == "\r\n" {
                break;
            }
            if let Some(v) = header.strip_prefix("Content-Length: ") {
                length = v.trim().parse().unwrap();
            }
            if header.starts_with("Connection: ") {
                assert_eq!(header, "Connection: keep-alive\r\n");
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        assert_eq!(body, b"Hello, world!\n");
    }
    // A request that asks to close gets its answer, then the end of the stream.
    write!(&s, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert!(
        rest.contains("Connection: close") && rest.ends_with("Hello, world!\n"),
        "{rest}"
    );
    run.cancel();
}

#[test]
fn a_select_fires_on_a_channel_a_socket_and_a_timer() {
    let rt = runtime(2);
    let (run, out) = start(&rt, "net", &["select"], RunOptions::new());
    let addr = address(&out, "ready");
    line_with(&out, "select: the channel fired");
    line_with(&out, "select: waiting for a connection");
    let mut s = connect(addr);
    line_with(&out, "select: the listener fired");
    line_with(&out, "select: the timer fired");
    line_with(&out, "select: waiting for bytes");
    s.write_all(b"x").unwrap();
    line_with(&out, "select: the stream fired");
    assert_eq!(run.wait(), ExitStatus::Exited(0), "{}", out.to_string_lossy());
}

#[test]
fn a_cpu_hog_does_not_stop_the_server_on_one_worker() {
    let rt = runtime(1);
    let (run, out) = start(&rt, "net", &["hog"], RunOptions::new());
    let addr = address(&out, "ready");
    let mut s = connect(addr);
    for i in 0..20 {
        let msg = format!("ping {i}\n");
        s.write_all(msg.as_bytes()).unwrap();
        let mut back = vec![0; msg.len()];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, msg.as_bytes());
    }
    // The answers came while the hog still ran.
    assert!(
        !out.to_string_lossy().contains("hog done"),
        "{}",
        out.to_string_lossy()
    );
    run.cancel();
    assert_eq!(run.wait(), ExitStatus::Cancelled);
}

#[test]
fn a_plain_std_net_program_serves_under_a_grant_and_is_refused_without() {
    let rt = runtime(2);
    let (run, out) = start(&rt, "stdnet", &["127.0.0.1:0", "2"], RunOptions::new());
    let addr = address(&out, "ready");
    for word in ["hello", "again"] {
        let mut s = connect(addr);
        s.write_all(format!("{word}\n").as_bytes()).unwrap();
        let mut back = String::new();
        BufReader::new(&s).read_line(&mut back).unwrap();
        assert_eq!(back, format!("{}\n", word.to_uppercase()));
        s.shutdown(Shutdown::Write).unwrap();
    }
    assert_eq!(run.wait(), ExitStatus::Exited(0), "{}", out.to_string_lossy());
    assert!(out.to_string_lossy().contains("served 2"));

    let program = rt.load(guest("stdnet")).unwrap();
    let (out, err) = (OutputBuffer::new(), OutputBuffer::new());
    let status = program
        .run(
            &RunOptions::new()
                .args(["127.0.0.1:7071"])
                .stdout(out.clone())
                .stderr(err.clone()),
        )
        .unwrap();
    // WASI's exit carries only success or failure: the guest's 3 is a 1.
    assert_eq!(status, ExitStatus::Exited(1), "{}", out.to_string_lossy());
    assert!(
        out.to_string_lossy().contains("bind: PermissionDenied"),
        "{}",
        out.to_string_lossy()
    );
    // The guest sees only an errno: weft says on the run's stderr what to grant.
    let err = err.to_string_lossy();
    assert!(
        err.contains(
            "weft: listening on 127.0.0.1:7071 is not allowed: no grant covers it \
             (weft run --listen 127.0.0.1:7071, or RunOptions::listen)"
        ),
        "{err}"
    );
}

/// Run the `stdsock` guest with `args` and `options` to its end: its status,
/// stdout and stderr.
fn stdsock(rt: &Runtime, args: &[&str], options: RunOptions) -> (ExitStatus, String, String) {
    let (out, err) = (OutputBuffer::new(), OutputBuffer::new());
    let options = options
        .args(args.iter().copied())
        .stdout(out.clone())
        .stderr(err.clone());
    let status = rt.load(guest("stdsock")).unwrap().run(&options).unwrap();
    (status, out.to_string_lossy(), err.to_string_lossy())
}

#[test]
fn std_net_sockets_count_against_the_runs_socket_limit() {
    let rt = runtime(2);
    let options = RunOptions::new().listen(loopback()).max_sockets(5);
    let (status, out, err) = stdsock(&rt, &["open"], options);
    assert_eq!(status, ExitStatus::Exited(0), "{out}{err}");
    // weft's listener took one of the 5: four WASI sockets, then a refusal that
    // names the limit; and the slots come back when the sockets close.
    assert!(out.contains("held 4, then"), "{out}");
    assert!(out.contains("again: ok"), "{out}");
    assert!(
        err.contains("the program already has its maximum of 5 open sockets"),
        "{err}"
    );
}

#[test]
fn a_connect_grant_lets_neither_tcp_listen_nor_udp_receive_from_others() {
    let rt = runtime(2);
    let granted = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let other = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (granted_at, other_at) = (granted.local_addr().unwrap(), other.local_addr().unwrap());
    let connect_only = || RunOptions::new().connect(Grant::parse(&granted_at.to_string()).unwrap());

    let (status, out, err) = stdsock(&rt, &["listen-any"], connect_only());
    assert_eq!(status, ExitStatus::Exited(0), "{out}{err}");
    assert!(out.contains("listen-any: PermissionDenied"), "{out}");
    assert!(err.contains("weft: listening on 0.0.0.0:"), "{err}");

    let program = rt.load(guest("stdsock")).unwrap();
    let (out, err) = (OutputBuffer::new(), OutputBuffer::new());
    let run = program
        .start(
            &connect_only()
                .args(["udp-recv"])
                .stdout(out.clone())
                .stderr(err.clone()),
        )
        .unwrap();
    let line = line_with(&out, "bound");
    let port: u16 = line.split_whitespace().last().unwrap().parse().unwrap();
    // In order: the datagram from an address no grant covers is dropped, the one
    // from the granted address is the first the guest receives.
    other.send_to(b"from-anyone", ("127.0.0.1", port)).unwrap();
    granted.send_to(b"from-granted", ("127.0.0.1", port)).unwrap();
    assert_eq!(run.wait(), ExitStatus::Exited(0), "{}", out.to_string_lossy());
    let (out, err) = (out.to_string_lossy(), err.to_string_lossy());
    assert!(
        out.contains(&format!("received from-granted from {granted_at}")),
        "{out}"
    );
    assert!(
        err.contains(&format!("weft: dropped a datagram from {other_at}")),
        "{err}"
    );
}

#[test]
fn std_net_looks_a_name_up_only_when_a_grant_could_cover_it() {
    use std::sync::atomic::Ordering::SeqCst;
    let (rt, queries) = counting_runtime("127.0.0.1");
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let address = format!("anything.example:{port}");
    for options in [RunOptions::new(), RunOptions::new().connect(loopback())] {
        let (status, out, err) = stdsock(&rt, &["connect", &address], options);
        assert_eq!(status, ExitStatus::Exited(0), "{out}{err}");
        assert!(out.contains("connect: ") && !out.contains("connected"), "{out}");
        assert!(err.contains("weft: denied looking up anything.example"), "{err}");
    }
    assert_eq!(queries.load(SeqCst), 0);
    // Positive control: a `*` grant could cover it.
    let any_host = RunOptions::new().connect(Grant::parse(&format!("*:{port}")).unwrap());
    let (status, out, err) = stdsock(&rt, &["connect", &address], any_host);
    assert_eq!(status, ExitStatus::Exited(0), "{out}{err}");
    assert!(out.contains("connect: connected"), "{out}{err}");
    assert!(queries.load(SeqCst) > 0);
}

#[test]
fn bind_and_connect_without_a_grant_are_denied_naming_the_address() {
    let rt = runtime(2);
    let program = rt.load(guest("net")).unwrap();
    let out = OutputBuffer::new();
    // A grant for another port covers neither.
    let options = RunOptions::new()
        .args(["denied", "127.0.0.1:9"])
        .stdout(out.clone())
        .listen(Grant::parse("127.0.0.1:10").unwrap());
    assert_eq!(program.run(&options).unwrap(), ExitStatus::Exited(0));
    let text = out.to_string_lossy();
    assert!(
        text.contains("bind: PermissionDenied: listening on 127.0.0.1:9 is not allowed")
            && text.contains("--listen 127.0.0.1:9"),
        "{text}"
    );
    assert!(
        text.contains("connect: PermissionDenied: connecting to 127.0.0.1:9 is not allowed"),
        "{text}"
    );
}

#[test]
fn bad_addresses_and_refused_connections_are_errors_of_the_guest() {
    let rt = runtime(2);
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let program = rt.load(guest("net")).unwrap();
    let out = OutputBuffer::new();
    let options = RunOptions::new()
        .args(["bad".to_string(), port.to_string()])
        .stdout(out.clone())
        .connect(loopback());
    assert_eq!(program.run(&options).unwrap(), ExitStatus::Exited(0));
    let text = out.to_string_lossy();
    assert!(
        text.contains("nonsense: InvalidInput: `nonsense`: expected HOST:PORT"),
        "{text}"
    );
    assert!(text.contains("127.0.0.1:99999: InvalidInput"), "{text}");
    assert!(text.contains("refused: ConnectionRefused"), "{text}");
}

#[test]
fn a_server_meets_resets_half_closes_and_vanished_peers_and_serves_on() {
    let rt = runtime(2);
    let (run, out) = start(&rt, "net", &["faults"], RunOptions::new());
    let addr = address(&out, "ready");

    let mut s = connect(addr);
    s.write_all(b"some bytes").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    reset(s);
    line_with(&out, "reset: ConnectionReset");

    let mut s = connect(addr);
    s.write_all(b"half").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "you said \"half\"\n");

    let mut s = connect(addr);
    s.write_all(b"go\n").unwrap();
    reset(s);
    let line = line_with(&out, "write to a closed peer");
    assert!(
        line.ends_with("BrokenPipe") || line.ends_with("ConnectionReset"),
        "{line}"
    );

    let mut s = connect(addr);
    s.write_all(b"ping\n").unwrap();
    let mut back = String::new();
    BufReader::new(&s).read_line(&mut back).unwrap();
    assert_eq!(back, "ping\n");
    line_with(&out, "still serving");
    assert_eq!(run.wait(), ExitStatus::Exited(0), "{}", out.to_string_lossy());
}

#[test]
fn listeners_and_streams_move_between_microthreads() {
    let rt = runtime(2);
    let (run, out) = start(&rt, "net", &["move"], RunOptions::new());
    let addr = address(&out, "ready");
    let mut s = connect(addr);
    s.write_all(b"over there\n").unwrap();
    let mut back = String::new();
    BufReader::new(&s).read_line(&mut back).unwrap();
    assert_eq!(back, "over there\n");
    assert_eq!(run.wait(), ExitStatus::Exited(0), "{}", out.to_string_lossy());
    assert!(
        out.to_string_lossy()
            .contains("moved: echoed by the microthread the stream was sent to")
    );
}

#[test]
fn a_microthread_that_ends_holding_a_socket_closes_it() {
    let rt = runtime(2);
    let (run, out) = start(&rt, "net", &["ends-holding"], RunOptions::new());
    let addr = address(&out, "ready");
    let mut s = connect(addr);
    let mut rest = Vec::new();
    // The end of the stream, or a reset: either way it is closed, not left open.
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty());
    line_with(&out, "holder failed");
    assert_eq!(run.wait(), ExitStatus::Exited(0), "{}", out.to_string_lossy());
}

#[test]
fn more_sockets_than_the_runs_limit_is_an_error_the_guest_sees() {
    let rt = runtime(2);
    let (run, out) = start(&rt, "net", &["limit"], RunOptions::new().max_sockets(3));
    let addr = address(&out, "ready");
    let held: Vec<TcpStream> = (0..3).map(|_| connect(addr)).collect();
    line_with(
        &out,
        "limit: 2 accepted, then: the program already has its maximum of 3 open sockets",
    );
    let mut s = connect(addr);
    s.write_all(b"room again\n").unwrap();
    let mut back = String::new();
    BufReader::new(&s).read_line(&mut back).unwrap();
    assert_eq!(back, "room again\n");
    line_with(&out, "limit: still serving");
    drop(held);
    assert_eq!(run.wait(), ExitStatus::Exited(0), "{}", out.to_string_lossy());
}

#[test]
fn cancellation_reaches_accept_read_and_write() {
    let rt = runtime(2);
    let (run, out) = start(&rt, "net", &["cancel"], RunOptions::new());
    let addr = address(&out, "ready");
    let _silent = connect(addr);
    let _deaf = connect(addr);
    line_with(&out, "cancel: done");
    for call in ["accept", "read", "write"] {
        line_with(&out, &format!("{call}: cancelled true"));
    }
    assert_eq!(run.wait(), ExitStatus::Exited(0), "{}", out.to_string_lossy());
}

#[test]
fn the_live_view_shows_a_microthread_blocked_on_a_socket() {
    let rt = runtime(2);
    let (run, out) = start(&rt, "echo-server", &["127.0.0.1:0"], RunOptions::new());
    let addr = address(&out, "listening on");
    let shown = |what: &str| {
        run.microthreads()
            .iter()
            .any(|m| m.state.to_string().starts_with(what))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !shown(&format!("accepting on {addr}")) {
        assert!(Instant::now() < deadline, "{:?}", run.microthreads());
        std::thread::sleep(Duration::from_millis(5));
    }
    let _client = connect(addr);
    while !shown("reading from 127.0.0.1:") {
        assert!(Instant::now() < deadline, "{:?}", run.microthreads());
        std::thread::sleep(Duration::from_millis(5));
    }
    run.cancel();
}

#[test]
fn a_deterministic_run_gets_no_network() {
    let rt = runtime(2);
    let program = rt.load(guest("net")).unwrap();
    let with_grant = RunOptions::new().deterministic(1).listen(loopback());
    match program.start(&with_grant) {
        Err(Error::InvalidOptions(why)) => assert!(why.contains("cannot use the network"), "{why}"),
        other => panic!("a deterministic run with a grant: {other:?}"),
    }
    let out = OutputBuffer::new();
    let options = RunOptions::new()
        .args(["denied", "127.0.0.1:9"])
        .stdout(out.clone())
        .deterministic(1);
    assert_eq!(program.run(&options).unwrap(), ExitStatus::Exited(0));
    assert!(
        out.to_string_lossy()
            .contains("bind: PermissionDenied: a deterministic run cannot use the network"),
        "{}",
        out.to_string_lossy()
    );
}

#[test]
fn chat_broadcasts_to_clients_that_come_and_go() {
    let rt = runtime(2);
    let (run, out) = start(&rt, "chat", &["127.0.0.1:0"], RunOptions::new());
    let addr = address(&out, "listening on");
    let read = |lines: &mut BufReader<TcpStream>| {
        let mut line = String::new();
        lines.read_line(&mut line).unwrap();
        line
    };
    // A newcomer is welcomed; the others hear that it joined.
    let join = |id: u32, here: u32| {
        let s = connect(addr);
        let mut lines = BufReader::new(s.try_clone().unwrap());
        assert_eq!(
            read(&mut lines),
            format!("* welcome, client {id} ({here} here)\n")
        );
        (s, lines)
    };
    let (a, mut a_lines) = join(1, 1);
    let (b, mut b_lines) = join(2, 2);
    assert_eq!(read(&mut a_lines), "* client 2 joined (2 here)\n");
    let (c, mut c_lines) = join(3, 3);
    assert_eq!(read(&mut a_lines), "* client 3 joined (3 here)\n");
    assert_eq!(read(&mut b_lines), "* client 3 joined (3 here)\n");

    writeln!(&a, "hello from a").unwrap();
    assert_eq!(read(&mut b_lines), "1: hello from a\n");
    assert_eq!(read(&mut c_lines), "1: hello from a\n");

    // b vanishes with a reset; the others hear that it left, and go on talking.
    reset(b);
    drop(b_lines);
    assert_eq!(read(&mut a_lines), "* client 2 left\n");
    assert_eq!(read(&mut c_lines), "* client 2 left\n");
    writeln!(&c, "still here").unwrap();
    assert_eq!(read(&mut a_lines), "3: still here\n");
    run.cancel();
}

#[test]
fn at_the_microthread_limit_the_echo_server_refuses_a_connection_and_serves_on() {
    let rt = runtime(2);
    // main and two connections.
    let (run, out) = start(
        &rt,
        "echo-server",
        &["127.0.0.1:0"],
        RunOptions::new().max_microthreads(3),
    );
    let addr = address(&out, "listening on");
    let echo = |s: &mut TcpStream, text: &str| {
        s.write_all(text.as_bytes()).unwrap();
        let mut back = vec![0; text.len()];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, text.as_bytes());
    };
    let mut first = connect(addr);
    echo(&mut first, "one\n");
    let mut second = connect(addr);
    echo(&mut second, "two\n");
    // The third is closed at once.
    let mut third = connect(addr);
    let mut rest = Vec::new();
    let _ = third.read_to_end(&mut rest);
    assert!(rest.is_empty());
    drop(first);
    // Room again, once the first connection's microthread has ended.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut s = connect(addr);
        if s.write_all(b"four\n").is_ok() {
            let mut back = [0u8; 5];
            if s.read_exact(&mut back).is_ok() {
                assert_eq!(&back, b"four\n");
                break;
            }
        }
        assert!(Instant::now() < deadline, "never served again");
        std::thread::sleep(Duration::from_millis(20));
    }
    echo(&mut second, "still two\n");
    run.cancel();
}

/// A resolver that counts the names it is asked for and answers `answer` for all.
struct Counting {
    queries: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    answer: std::net::IpAddr,
}

impl weft::net::Resolve for Counting {
    fn resolve(&self, _host: &str, port: u16) -> weft::net::Lookup {
        self.queries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let addr = SocketAddr::new(self.answer, port);
        Box::pin(async move { Ok(vec![addr]) })
    }
}

/// A runtime whose resolver counts its queries (the count) and answers `answer`.
fn counting_runtime(answer: &str) -> (Runtime, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let queries = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let rt = Runtime::builder()
        .workers(2)
        .max_microthreads(100)
        .cache_dir(Some(weft_tests::cache_dir()))
        .resolver(Counting {
            queries: queries.clone(),
            answer: answer.parse().unwrap(),
        })
        .build()
        .unwrap();
    (rt, queries)
}

#[test]
fn a_name_is_looked_up_only_when_a_grant_could_cover_it_and_never_shown_resolved() {
    use std::sync::atomic::Ordering::SeqCst;
    let run_denied = |rt: &Runtime, address: &str, options: RunOptions| {
        let out = OutputBuffer::new();
        let options = options.args(["denied", address]).stdout(out.clone());
        let status = rt.load(guest("net")).unwrap().run(&options).unwrap();
        assert_eq!(status, ExitStatus::Exited(0), "{}", out.to_string_lossy());
        out.to_string_lossy()
    };
    // No grant at all, and grants that name addresses only: no lookup.
    let (rt, queries) = counting_runtime("127.0.0.1");
    let text = run_denied(&rt, "anything.example:80", RunOptions::new());
    assert!(
        text.contains("bind: PermissionDenied: listening on anything.example:80 is not allowed")
            && text.contains("connect: PermissionDenied: connecting to anything.example:80 is not allowed"),
        "{text}"
    );
    let addresses_only = RunOptions::new().listen(loopback()).connect(loopback());
    let text = run_denied(&rt, "anything.example:80", addresses_only);
    assert!(text.contains("connect: PermissionDenied"), "{text}");
    // A `*` grant for another port could not cover it either.
    let other_port = RunOptions::new().connect(Grant::parse("*:81").unwrap());
    let text = run_denied(&rt, "anything.example:80", other_port);
    assert!(text.contains("connect: PermissionDenied"), "{text}");
    assert_eq!(
        queries.load(SeqCst),
        0,
        "no name may be looked up without a grant that could cover it"
    );

    // Positive control: a `*` connect grant for the port could cover the name, so it
    // is looked up (once, for connect: bind has no listen grant) and connected.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let address = format!("anything.example:{port}");
    let any_host = RunOptions::new().connect(Grant::parse(&format!("*:{port}")).unwrap());
    let text = run_denied(&rt, &address, any_host);
    assert!(
        text.contains("bind: PermissionDenied") && text.contains("connect: allowed"),
        "{text}"
    );
    assert_eq!(queries.load(SeqCst), 1, "{text}");

    // A grant by name covers that name; what it resolves to (an address no grant
    // covers) is denied, and the denial names the address as the guest gave it.
    let (rt, queries) = counting_runtime("10.1.2.3");
    let named = RunOptions::new().connect(Grant::parse(&format!("localhost:{port}")).unwrap());
    let text = run_denied(&rt, &format!("localhost:{port}"), named);
    assert!(
        text.contains(&format!("connecting to localhost:{port} is not allowed"))
            && !text.contains("10.1.2.3"),
        "{text}"
    );
    assert_eq!(queries.load(SeqCst), 1, "{text}");
}

#[test]
fn selectors_sharing_a_listener_miss_no_connection() {
    const CONNECTIONS: usize = 40;
    let rt = runtime(2);
    let (run, out) = start(
        &rt,
        "net",
        &["shared-select", &CONNECTIONS.to_string()],
        RunOptions::new(),
    );
    let addr = address(&out, "ready");
    for i in 0..CONNECTIONS {
        // One at a time: each must be accepted (and echoed) while the others wait;
        // the read timeout only guards against a hang.
        let mut s = connect(addr);
        s.write_all(format!("line {i}\n").as_bytes()).unwrap();
        let mut back = String::new();
        BufReader::new(&s).read_line(&mut back).unwrap();
        assert_eq!(back, format!("line {i}\n"), "{}", out.to_string_lossy());
    }
    line_with(&out, &format!("shared: served {CONNECTIONS}"));
    assert_eq!(run.wait(), ExitStatus::Exited(0), "{}", out.to_string_lossy());
}

#[test]
fn microthreads_blocked_in_read_hold_no_read_buffer() {
    const READERS: usize = 200;
    room_for_files(4096);
    let rt = runtime(2);
    let (run, out) = start(
        &rt,
        "net",
        &["idle-readers", &READERS.to_string()],
        RunOptions::new(),
    );
    let addr = address(&out, "ready");
    let clients: Vec<TcpStream> = (0..READERS).map(|_| connect(addr)).collect();
    line_with(&out, &format!("idle: {READERS} reading"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let reading = || {
        run.microthreads()
            .iter()
            .filter(|m| m.state.to_string().starts_with("reading from"))
            .count()
    };
    while reading() < READERS {
        assert!(Instant::now() < deadline, "{:?}", run.microthreads());
        std::thread::sleep(Duration::from_millis(5));
    }
    // Each asked for 64 KiB: none is held while they wait. (A reader woken by a
    // readiness that turns out false holds its buffer for the moment of one
    // `WouldBlock` read: what must not be is a buffer held through the wait.)
    common::eventually("no read buffer held by the waiting readers", || {
        run.socket_read_bytes() == 0
    });
    assert_eq!(run.open_sockets(), READERS as u32 + 1);
    // And a read that gets bytes gets them.
    for mut c in clients {
        c.write_all(b"x").unwrap();
    }
    line_with(&out, "idle: all read");
    assert!(out.to_string_lossy().contains("idle: read Ok(1)"));
    assert_eq!(run.socket_read_bytes(), 0);
    assert_eq!(run.wait(), ExitStatus::Exited(0), "{}", out.to_string_lossy());
}

/// A resolver whose lookups never end.
struct Stuck;

impl weft::net::Resolve for Stuck {
    fn resolve(&self, _host: &str, _port: u16) -> weft::net::Lookup {
        Box::pin(std::future::pending())
    }
}

#[test]
fn a_bind_waiting_for_a_lookup_is_shown_and_cancelled() {
    let rt = Runtime::builder()
        .workers(2)
        .max_microthreads(100)
        .cache_dir(Some(weft_tests::cache_dir()))
        .resolver(Stuck)
        .build()
        .unwrap();
    let program = rt.load(guest("net")).unwrap();
    let out = OutputBuffer::new();
    let options = RunOptions::new()
        .args(["denied", "slow.example:0"])
        .stdout(out.clone())
        .listen(Grant::parse("*:*").unwrap());
    let run = program.start(&options).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !run
        .microthreads()
        .iter()
        .any(|m| m.state.to_string().starts_with("binding slow.example:0"))
    {
        assert!(Instant::now() < deadline, "{:?}", run.microthreads());
        std::thread::sleep(Duration::from_millis(5));
    }
    run.cancel();
    assert_eq!(run.wait(), ExitStatus::Cancelled, "{}", out.to_string_lossy());
}

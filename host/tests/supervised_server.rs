//! The `supervised-server` example through the binary: its supervisor tree serving
//! real TCP clients on loopback, a crash answered by a restarted worker, a crash loop
//! that ends the program with one report, Ctrl-C, and the demo mode.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use weft_tests::guest;

mod common;
use common::{text, weft_cmd};

/// Only a guard against a hang: no test waits this long when weft works.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// The server under `weft run`, on a port of the system's choosing, with `workers`
/// workers: the process, its stdout (its first line read) and the address it
/// listens on.
fn serve(workers: &str) -> (Child, BufReader<ChildStdout>, String) {
    let file = guest("supervised-server");
    let mut child = weft_cmd()
        .args(["run", "--listen", "127.0.0.1:*"])
        .arg(&file)
        .args(["127.0.0.1:0", workers])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run weft");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let first = next_line(&mut stdout);
    assert!(first.starts_with("supervised-server: listening on "), "{first}");
    let addr = first.split_whitespace().last().unwrap_or_default().to_string();
    (child, stdout, addr)
}

/// The next line the server prints (it never ends its stdout before its end).
fn next_line(stdout: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    let n = stdout.read_line(&mut line).expect("read weft's stdout");
    assert!(n > 0, "weft's stdout ended");
    line.trim_end().to_string()
}

/// A client of the line protocol, its reads guarded against a hang.
struct Client {
    stream: TcpStream,
    lines: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: &str) -> Client {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
        stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
        let lines = BufReader::new(stream.try_clone().unwrap());
        Client { stream, lines }
    }

    /// Send `request`, and read its answer ("" if the server closed the connection,
    /// or reset it as its process ended).
    fn ask(&mut self, request: &str) -> String {
        self.stream.write_all(format!("{request}\n").as_bytes()).unwrap();
        let mut answer = String::new();
        match self.lines.read_line(&mut answer) {
            Ok(_) => answer.trim_end().to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => String::new(),
            Err(e) => panic!("no answer to {request:?}: {e}"),
        }
    }
}

/// Wait for the process to end and collect its output, killing it should it hang.
fn finish(child: Child, mut stdout: BufReader<ChildStdout>) -> (Output, String) {
    let pid = child.id() as i32;
    let (done, guard) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if guard.recv_timeout(HANG_GUARD) == Err(mpsc::RecvTimeoutError::Timeout) {
            // SAFETY: a plain kill(2) of our own child, not reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    // Read the rest of stdout here, as `wait_with_output` would have read it all.
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("read weft's stdout");
    let out = child.wait_with_output().expect("wait for weft");
    done.send(()).expect("the watchdog waits");
    watchdog.join().expect("the watchdog");
    (out, rest)
}

fn sigint(child: &Child) {
    // SAFETY: a plain kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
}

#[test]
fn a_crash_is_answered_by_the_restarted_worker_on_the_same_connection() {
    let (child, stdout, addr) = serve("2");
    let mut c = Client::connect(&addr);
    assert_eq!(c.ask("hello"), "ok: hello");
    let recovered = c.ask("crash");
    // "recovered: worker-N was restarted (microthread A crashed, microthread B answers)"
    assert!(recovered.starts_with("recovered: worker-"), "{recovered}");
    let ids: Vec<&str> = recovered
        .split("microthread ")
        .skip(1)
        .map(|s| s.split_whitespace().next().unwrap_or_default())
        .collect();
    assert_eq!(ids.len(), 2, "{recovered}");
    assert_ne!(ids[0], ids[1], "a fresh microthread answers: {recovered}");
    // The connection goes on with the fresh worker; another client is served too.
    assert_eq!(c.ask("after the crash"), "ok: after the crash");
    let mut other = Client::connect(&addr);
    assert_eq!(other.ask("another client"), "ok: another client");
    // A second crash is answered as well (2 restarts, within the intensity of 3).
    assert!(c.ask("crash").starts_with("recovered: worker-"));
    assert_eq!(c.ask("still here"), "ok: still here");
    drop((c, other));
    sigint(&child);
    let (out, _) = finish(child, stdout);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        !err.contains("error:"),
        "the handled crashes are not reported: {err}"
    );
}

#[test]
fn a_crash_loop_past_the_intensity_ends_the_program_with_one_report_of_the_restarts() {
    let (child, stdout, addr) = serve("2");
    let mut c = Client::connect(&addr);
    assert_eq!(c.ask("hello"), "ok: hello");
    // Each fresh worker crashes on it again, until the tree gives up and the program
    // ends: the connection closes with no answer.
    assert_eq!(c.ask("crashloop"), "");
    let (out, _) = finish(child, stdout);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(134), "{err}");
    // One report: main's failure, carrying the tree's account.
    assert_eq!(err.matches("error:").count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("the service gave up"), "{err}");
    // The top supervisor gave up once, past 1 restart of `connections`, which gave
    // up each of the two times it ran, past 3 restarts of the worker: 8 crashes.
    assert_eq!(
        err.matches("supervisor server gave up: child connections needed more than 1 restarts")
            .count(),
        1,
        "{err}"
    );
    assert_eq!(
        err.matches("supervisor connections gave up: child worker-")
            .count(),
        2,
        "{err}"
    );
    assert_eq!(err.matches("asked it to crash (Loop)").count(), 8, "{err}");
}

#[test]
fn ctrl_c_stops_the_tree_in_reverse_start_order_with_cleanup_lines_and_exits_130() {
    let (child, mut stdout, addr) = serve("3");
    // Every worker busy with a connection of its own, and the acceptor running.
    let mut clients: Vec<Client> = (0..3).map(|_| Client::connect(&addr)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.ask(&format!("client {i}")), format!("ok: client {i}"));
    }
    assert_eq!(next_line(&mut stdout), "acceptor: accepting connections");
    sigint(&child);
    let (out, rest) = finish(child, stdout);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    // `main`'s join is cancelled at once; the tree stops on its own, in order:
    // `server` stops the acceptor, then `connections`, which stops its workers
    // from the last to the first. Each child once: nothing is restarted.
    let cleanup: Vec<&str> = rest.lines().filter(|l| l.contains(": stopped")).collect();
    assert_eq!(
        cleanup,
        [
            "acceptor: stopped, no longer accepting",
            "worker-3: stopped, cleaning up",
            "worker-2: stopped, cleaning up",
            "worker-1: stopped, cleaning up",
        ],
        "{rest}{}",
        text(&out.stderr)
    );
    assert!(
        rest.lines().any(|l| l == "supervised-server: stopping"),
        "{rest}{}",
        text(&out.stderr)
    );
}

#[test]
fn the_demo_shows_a_crash_answered_by_a_restarted_worker_and_ends_cleanly() {
    let file = guest("supervised-server");
    let out = weft_cmd()
        .args([
            "run",
            "--stats",
            "--listen",
            "127.0.0.1:*",
            "--connect",
            "127.0.0.1:*",
        ])
        .arg(&file)
        .args(["--", "demo"])
        .output()
        .expect("run weft");
    let (stdout, err) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{err}");
    // In this order (the client's lines among them).
    let expected = [
        "which_children (before):",
        "client: < ok: hello",
        "client: > crash",
        "client: < recovered: worker-",
        "client: < ok: hello again",
        "which_children (after):",
        // The shutdown: the children in reverse start order.
        "acceptor: stopped, no longer accepting",
        "worker-2: stopped, cleaning up",
        "worker-1: stopped, cleaning up",
        "demo: done",
    ];
    let mut from = 0;
    for line in expected {
        let at = stdout[from..]
            .find(line)
            .unwrap_or_else(|| panic!("no {line:?} after the earlier lines in:\n{stdout}"));
        from += at + line.len();
    }
    // The restart is one level down: `connections` was not restarted.
    let connections: Vec<&str> = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("connections "))
        .collect();
    assert_eq!(connections.len(), 2, "{stdout}");
    assert_eq!(connections[0], connections[1], "the same microthread: {stdout}");
    assert!(connections[0].ends_with("Running, restarted 0 times"), "{stdout}");
    assert!(err.contains("restarts 1"), "{err}");
}

#[test]
fn bad_arguments_and_a_missing_grant_are_clear_errors() {
    let file = guest("supervised-server");
    let file = file.to_str().unwrap();
    for args in [
        vec!["run", "--listen", "127.0.0.1:*", file, "127.0.0.1:0", "none"],
        vec!["run", "--listen", "127.0.0.1:*", file, "127.0.0.1:0", "0"],
        vec!["run", "--listen", "127.0.0.1:*", file, "127.0.0.1:0", "2", "more"],
    ] {
        let o = common::weft(&args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("usage: weft run --listen ADDRESS supervised-server.wasm"),
            "{err}"
        );
    }
    // No grant: the server says so, naming the flag to add, and nothing starts.
    let o = common::weft(&["run", file, "127.0.0.1:0"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot listen on 127.0.0.1:0") && err.contains("--listen 127.0.0.1:0"),
        "{err}"
    );
    assert!(!text(&o.stdout).contains("acceptor"), "{}", text(&o.stdout));
}

//! What the tests of the `weft` binary share: running it, with the tests' own
//! compilation cache, and reading what it printed.
// Each test binary uses its own part of this.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Output};
use std::time::{Duration, Instant};

/// The `weft` binary, with the tests' own compilation cache.
pub fn weft_cmd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    cmd.env("WEFT_CACHE_DIR", weft_tests::cache_dir());
    cmd
}

/// `weft SUBCOMMAND --cluster URL --node NAME --node-timeout 1s FLAGS PROGRAM
/// ARGS`, a node of `server`'s cluster, started with its stdout and stderr piped.
pub fn weft_on_cluster(
    server: &weft_tests::nats::NatsServer,
    subcommand: &str,
    name: &str,
    flags: &[&str],
    program: &std::path::Path,
    args: &[&str],
) -> Child {
    let url = server.url();
    weft_cmd()
        .args([
            subcommand,
            "--cluster",
            &url,
            "--node",
            name,
            "--node-timeout",
            "1s",
        ])
        .args(flags)
        .arg(program)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start weft")
}

/// `weft ARGS`, run to its end.
pub fn weft(args: &[&str]) -> Output {
    weft_cmd().args(args).output().expect("run weft")
}

/// `weft build SOURCE -o OUTPUT`, run to its end.
pub fn weft_build(source: &std::path::Path, output: &std::path::Path) -> Output {
    weft_cmd()
        .arg("build")
        .arg(source)
        .arg("-o")
        .arg(output)
        .output()
        .expect("run weft build")
}

/// The component `weft build` (this `weft`) makes of `source`, a Python or
/// JavaScript program from the workspace's root: once per test process.
pub fn built_from_source(source: &str) -> std::path::PathBuf {
    weft_tests::built_from_source_by(std::path::Path::new(env!("CARGO_BIN_EXE_weft")), source)
}

/// Bytes a program printed, as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An error of weft's own: exit code `code`, a message that starts with `error: `
/// and is no panic. Returns stderr.
pub fn error_exit(o: &Output, code: i32) -> String {
    let err = text(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {} stderr: {err}",
        text(&o.stdout)
    );
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// The next line the process prints (empty at its end).
pub fn next_line(out: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    out.read_line(&mut line).expect("read the node's stdout");
    line.trim_end().to_string()
}

/// Wait for the process to end (killing it should it hang), with its exit code,
/// the rest of its stdout and its stderr.
pub fn finish(mut child: Child, mut out: BufReader<ChildStdout>) -> (Option<i32>, String, String) {
    let started = Instant::now();
    while child.try_wait().expect("wait for weft").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().expect("kill a hung weft");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("read stdout");
    let output = child.wait_with_output().expect("collect weft");
    (output.status.code(), rest, text(&output.stderr))
}

pub fn signal(child: &Child, sig: i32) {
    // SAFETY: a plain kill(2) of our own child, not reaped yet.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// A process the test must not leave behind: killed (SIGKILL) and reaped when
/// dropped, should the test end without ending it (a failed assertion).
pub struct Reaped(Option<Child>);

impl Reaped {
    pub fn new(child: Child) -> Reaped {
        Reaped(Some(child))
    }

    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("the process is still held")
    }

    /// The process, no longer killed when this is dropped.
    pub fn take(mut self) -> Child {
        self.0.take().expect("the process is still held")
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take()
            && let Ok(None) = child.try_wait()
        {
            if let Err(e) = child.kill() {
                eprintln!("cannot kill a process the test left running: {e}");
            }
            if let Err(e) = child.wait() {
                eprintln!("cannot reap a process the test left running: {e}");
            }
        }
    }
}

/// The application feeds a guest (`wasm`, run with the argument `mode`) over its
/// channels in CBOR (`weft::channel_with(.., Codec::Cbor)`): Rust structs in on
/// "jobs", Rust structs out on "results", each job's name upper-cased, its area,
/// its tags sorted, its width over its height and its bytes reversed. The same
/// for a guest in any language.
pub fn cbor_round_trips(wasm: &std::path::Path, mode: &str) {
    #[derive(serde::Serialize)]
    struct Job {
        name: String,
        width: u32,
        height: u32,
        tags: Vec<String>,
        #[serde(with = "serde_bytes")]
        raw: Vec<u8>,
    }
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Done {
        name: String,
        area: u64,
        tags: Vec<String>,
        ratio: f64,
        #[serde(with = "serde_bytes")]
        raw: Vec<u8>,
    }
    let runtime = weft::Runtime::builder()
        .workers(2)
        .max_microthreads(16)
        .cache_dir(Some(weft_tests::cache_dir()))
        .pool_for(&std::fs::read(wasm).expect("read the program"))
        .build()
        .expect("runtime");
    let program = runtime.load(wasm).expect("load");
    let (jobs, jobs_for_guest) = weft::channel_with::<Job>(4, weft::Codec::Cbor);
    let (results_for_guest, results) = weft::channel_with::<Done>(4, weft::Codec::Cbor);
    assert_eq!(jobs.codec(), weft::Codec::Cbor);
    let options = weft::RunOptions::new()
        .args([mode])
        .receiver("jobs", jobs_for_guest)
        .sender("results", results_for_guest);
    let run = program.start(&options).expect("start");
    for (i, name) in ["tile", "door"].into_iter().enumerate() {
        // Widths are odd: the ratio is no whole number (a JS number that is one
        // would travel as an integer).
        let width = 3 + 2 * i as u32;
        let job = Job {
            name: name.to_string(),
            width,
            height: 2,
            tags: vec!["b".into(), "a".into()],
            raw: vec![1, 2, 3],
        };
        jobs.send_blocking(job).expect("the guest receives");
        let done = results.recv_blocking().expect("the guest answers");
        assert_eq!(
            done,
            Done {
                name: name.to_uppercase(),
                area: 2 * u64::from(width),
                tags: vec!["a".into(), "b".into()],
                ratio: f64::from(width) / 2.0,
                raw: vec![3, 2, 1],
            }
        );
    }
    drop(jobs);
    assert_eq!(run.wait(), weft::ExitStatus::Exited(0));
    assert!(matches!(results.recv_blocking(), Err(weft::RecvError::Closed)));
}

/// A local HTTP server that answers every request with 200 and `body`, one
/// connection at a time, each closed after its answer: its port. It reads each
/// request whole first: a socket closed with bytes unread (a chunked body's last
/// chunk, say) resets the connection instead of closing it.
pub fn http_server(body: &'static str) -> u16 {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a test server");
    let port = listener.local_addr().expect("its address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream);
            if let Err(e) = read_request(&mut reader) {
                eprintln!("the test server could not read a request: {e}");
                continue;
            }
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            if let Err(e) = reader.get_mut().write_all(answer.as_bytes()) {
                eprintln!("the test server could not answer: {e}");
            }
        }
    });
    port
}

/// Read one HTTP/1.1 request whole: its head, and its body by `content-length`
/// or chunked.
fn read_request(reader: &mut BufReader<std::net::TcpStream>) -> std::io::Result<()> {
    use std::io::Read;
    let (mut length, mut chunked) = (0usize, false);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(n) = lower.strip_prefix("content-length:") {
            length = n.trim().parse().unwrap_or(0);
        }
        chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
    }
    if !chunked {
        return reader.read_exact(&mut vec![0; length]);
    }
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let size = usize::from_str_radix(line.trim_end(), 16)
            .map_err(|_| std::io::Error::other(format!("a bad chunk size: {line:?}")))?;
        // The chunk and its CRLF (the last, empty one: the blank line after it).
        reader.read_exact(&mut vec![0; size + 2])?;
        if size == 0 {
            return Ok(());
        }
    }
}

//! The endpoints a run is watched through, as an operator uses them: `weft run
//! --metrics` scraped with a real HTTP client, and `weft run --dashboard` in a
//! real headless Chromium, while the `chat` example serves real clients on
//! loopback (the numbers and the table move as clients come and go; a
//! microthread cancelled from the page with the token, refused without it); and
//! the refusals (an address that is not loopback without `--…-public`, an
//! address in use, a malformed one, a cancel without `--dashboard-control`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use weft_tests::browser::Browser;
use weft_tests::guest;

mod common;
use common::{Reaped, error_exit, next_line, text, weft, weft_cmd};

/// Only a guard against a hang: no test waits this long when weft works.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// One scrape of `url`: each sample (`name{labels}`) and its value.
fn scrape(url: &str) -> HashMap<String, f64> {
    let mut response = ureq::get(url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .expect("a content type")
        .to_str()
        .unwrap();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let body = response.body_mut().read_to_string().unwrap();
    assert!(body.ends_with("# EOF\n"), "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("a sample: {l}"));
            (
                name.to_string(),
                value.parse().unwrap_or_else(|_| panic!("a number: {l}")),
            )
        })
        .collect()
}

/// Scrape `url` until `good` holds of a scrape (the run moves on its own
/// time); that scrape.
fn scrape_until(url: &str, what: &str, good: impl Fn(&HashMap<String, f64>) -> bool) -> HashMap<String, f64> {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let metrics = scrape(url);
        if good(&metrics) {
            return metrics;
        }
        assert!(Instant::now() < deadline, "never {what}: {metrics:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn value(metrics: &HashMap<String, f64>, sample: &str) -> f64 {
    *metrics
        .get(sample)
        .unwrap_or_else(|| panic!("no {sample} in {metrics:?}"))
}

/// The URL in weft's first line on stderr, which gives the metrics' address.
fn metrics_url(first: &str) -> String {
    first
        .strip_prefix("weft: metrics at ")
        .unwrap_or_else(|| panic!("the metrics' address first: {first}"))
        .to_string()
}

/// A chat client: its welcome read.
fn join(addr: &str) -> (TcpStream, BufReader<TcpStream>) {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let mut lines = BufReader::new(stream.try_clone().unwrap());
    let mut welcome = String::new();
    lines.read_line(&mut welcome).unwrap();
    assert!(welcome.starts_with("* welcome, client"), "{welcome}");
    (stream, lines)
}

#[test]
fn metrics_move_as_chat_clients_come_and_go() {
    let (child, first, addr) = chat_with(&["--metrics", "127.0.0.1:0"]);
    let url = metrics_url(&first);

    // main and the hub wait; the listener is the one socket.
    let before = scrape_until(&url, "main and the hub waiting", |m| {
        value(m, "weft_microthreads_live{state=\"receiving\"}") >= 1.0 && value(m, "weft_sockets_open") == 1.0
    });
    let spawned = value(&before, "weft_microthreads_spawned_total");
    for name in [
        "weft_microthreads_finished_total",
        "weft_microthreads_failed_total{kind=\"panic\"}",
        "weft_microthreads_restarted_total",
        "weft_messages_sent_total",
        "weft_channels_open",
        "weft_channel_buffered_bytes",
        "weft_fuel_consumed_total",
        "weft_runs_live",
        "weft_worker_busy_seconds_total{worker=\"0\"}",
        "weft_worker_runs_total{worker=\"0\"}",
        "weft_worker_queue_length{worker=\"0\"}",
        "weft_injected_queue_length",
        "weft_microthread_lifetime_seconds_count",
        "weft_microthreads_live{state=\"socket\"}",
    ] {
        value(&before, name);
    }
    assert_eq!(value(&before, "weft_runs_live"), 1.0);

    // Two clients: each has a reader and a writer, and a socket.
    let (a, mut a_lines) = join(&addr);
    let (b, mut b_lines) = join(&addr);
    let mut line = String::new();
    a_lines.read_line(&mut line).unwrap();
    assert!(line.contains("client 2 joined"), "{line}");
    let with_two = scrape_until(&url, "two clients' microthreads and sockets", |m| {
        value(m, "weft_sockets_open") == 3.0 && value(m, "weft_microthreads_spawned_total") >= spawned + 4.0
    });
    let sent = value(&with_two, "weft_messages_sent_total");

    // A line goes through the hub: messages move.
    writeln!(&a, "hello").unwrap();
    line.clear();
    b_lines.read_line(&mut line).unwrap();
    assert_eq!(line, "1: hello\n");
    // The first message each microthread sends carries its send time: the
    // line's trip through the hub is in the latency histogram.
    scrape_until(&url, "messages sent, their latency measured", |m| {
        value(m, "weft_messages_sent_total") > sent && value(m, "weft_message_latency_seconds_count") >= 1.0
    });

    // b leaves: its socket closes, its two microthreads end (counted, and timed).
    drop(b_lines);
    drop(b);
    line.clear();
    a_lines.read_line(&mut line).unwrap();
    assert!(line.contains("client 2 left"), "{line}");
    let after = scrape_until(&url, "b's microthreads ended", |m| {
        value(m, "weft_sockets_open") == 2.0 && value(m, "weft_microthreads_finished_total") >= 2.0
    });
    assert!(
        value(&after, "weft_microthread_lifetime_seconds_count") >= 2.0,
        "{after:?}"
    );
    assert_eq!(
        value(&after, "weft_microthreads_failed_total{kind=\"panic\"}"),
        0.0
    );
    let busy: f64 = (0..2)
        .filter_map(|w| after.get(&format!("weft_worker_busy_seconds_total{{worker=\"{w}\"}}")))
        .sum();
    assert!(busy > 0.0, "{after:?}");

    // Anything else is refused, clearly.
    let base = url.strip_suffix("/metrics").unwrap();
    match ureq::get(&format!("{base}/nothing")).call() {
        Err(ureq::Error::StatusCode(404)) => {}
        other => panic!("a 404 for an unknown path: {other:?}"),
    }
    match ureq::post(&url).send("x") {
        Err(ureq::Error::StatusCode(405)) => {}
        other => panic!("a 405 for a POST: {other:?}"),
    }
    drop(a);
    drop(child);
}

#[test]
fn metrics_listen_on_loopback_only_unless_told() {
    let hello = guest("hello");
    let hello = hello.to_str().unwrap();
    // Refused before anything is bound or run.
    let o = weft(&["run", "--metrics", "0.0.0.0:0", hello]);
    let err = error_exit(&o, 1);
    assert!(err.contains("not a loopback address"), "{err}");
    assert!(err.contains("--metrics-public"), "{err}");
    assert!(
        text(&o.stdout).is_empty(),
        "the program did not run: {}",
        text(&o.stdout)
    );
    // --metrics-public lifts the rule (shown here on loopback: the tests do not
    // listen elsewhere).
    let o = weft(&["run", "--metrics", "127.0.0.1:0", "--metrics-public", hello]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).starts_with("weft: metrics at http://127.0.0.1:"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn bad_metrics_addresses_are_refused_clearly() {
    let hello = guest("hello");
    let hello = hello.to_str().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let o = weft(&["run", "--metrics", &taken, hello]);
    let err = error_exit(&o, 1);
    assert!(
        err.contains(&format!("--metrics: cannot listen on {taken}")),
        "{err}"
    );
    // Malformed, or public without an address: the command line's own errors.
    let o = weft(&["run", "--metrics", "localhost", hello]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("--metrics"), "{}", text(&o.stderr));
    let o = weft(&["run", "--metrics-public", hello]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
}

/// The chat example under `weft run` with `flags`: the process, the first line
/// of its stderr (where the endpoint is) and the address it chats on.
fn chat_with(flags: &[&str]) -> (Reaped, String, String) {
    let mut child = weft_cmd()
        .args(["run", "--listen", "127.0.0.1:*"])
        .args(flags)
        .arg(guest("chat"))
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run weft");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).expect("read weft's stderr");
    let chat = next_line(&mut stdout);
    assert!(chat.contains("listening on"), "{chat}");
    let addr = chat.split_whitespace().last().expect("an address").to_string();
    // Drained, so that the program never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (Reaped::new(child), first.trim_end().to_string(), addr)
}

/// What `weft run --dashboard` says first on stderr: the dashboard's URL
/// (`http://ADDR/`), and its control token if it has one.
fn dashboard_at(first: &str) -> (String, Option<String>) {
    let rest = first
        .trim_end()
        .strip_prefix("weft: dashboard at ")
        .unwrap_or_else(|| panic!("the dashboard's address first: {first}"));
    match rest.split_once(" (control token ") {
        Some((url, token)) => (url.to_string(), Some(token.trim_end_matches(')').to_string())),
        None => (rest.to_string(), None),
    }
}

/// `ADDR` of a URL `http://ADDR/`: what `weft top` takes.
fn address_of(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

/// The rows of the page's microthread table: `id|name|parent|node|state`.
const ROWS: &str = "[...document.querySelectorAll('#microthreads tbody tr')]\
    .map(r => [...r.children].slice(0, 5).map(c => c.textContent).join('|'))";

#[test]
fn the_dashboard_shows_the_run_live_in_a_real_browser() {
    let (child, first, addr) = chat_with(&["--dashboard", "127.0.0.1:0", "--dashboard-control"]);
    let (url, token) = dashboard_at(&first);
    let token = token.expect("a control token");
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    let mut browser = Browser::open(&url, &dir);
    browser.wait_for(
        &format!("(r => r.includes('0|main|||socket') && r.includes('1|hub|0||receiving'))({ROWS})"),
        "main and the hub",
    );
    browser.wait_for(
        "document.getElementById('status').textContent === 'running'",
        "the run running",
    );
    // Marks this load of the page: a reload would lose it.
    browser.eval("window.sameLoad = true");

    // A client comes: its microthreads appear, without a reload.
    let (client, mut lines) = join(&addr);
    browser.wait_for(
        &format!("(r => r.some(x => x.includes('|client|')) && r.some(x => x.includes('|writer|')))({ROWS})"),
        "the client's microthreads",
    );
    assert_eq!(
        browser.eval("window.sameLoad === true"),
        serde_json::json!(true),
        "the page was reloaded"
    );
    browser.wait_for(
        "document.querySelector('#channels tbody').textContent.includes('receiving')",
        "a channel waited on",
    );
    browser.wait_for("document.querySelectorAll('#tree li').length >= 4", "the tree");
    // Taken for the README, a client connected.
    let shot = dir.join("dashboard.png");
    browser.screenshot(&shot);
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "a screenshot in {}",
        shot.display()
    );
    eprintln!("the dashboard's screenshot: {}", shot.display());

    // Cancel the client from the page: refused without the token, and with a
    // wrong one; done with the right one.
    let id = browser.eval(&format!(
        "({ROWS}).find(x => x.includes('|client|')).split('|')[0]"
    ));
    let id = id.as_str().expect("an id").to_string();
    let click = format!("document.querySelector('#microthreads tr[data-id=\"{id}\"] button.cancel').click()");
    let notice = "document.getElementById('notice').textContent";
    browser.eval(&click);
    browser.wait_for(
        &format!("{notice} === 'give the control token first'"),
        "the token asked for",
    );
    browser.eval("document.getElementById('token').value = 'wrong'");
    browser.eval(&click);
    browser.wait_for(
        &format!("{notice}.includes('missing or wrong token')"),
        "a wrong token refused",
    );
    browser.eval(&format!("document.getElementById('token').value = '{token}'"));
    browser.eval(&click);
    browser.wait_for(
        &format!("{notice} === 'cancelled microthread {id}'"),
        "the cancel done",
    );
    browser.wait_for(
        &format!("!({ROWS}).some(x => x.startsWith('{id}|'))"),
        "the cancelled client gone from the table",
    );
    // Its connection is closed.
    let mut line = String::new();
    assert_eq!(lines.read_line(&mut line).unwrap_or(0), 0, "{line}");
    drop(client);
    drop(child);
}

#[test]
fn the_dashboards_api_refuses_what_it_must() {
    // No control: cancelling is off.
    let (child, first, _) = chat_with(&["--dashboard", "127.0.0.1:0"]);
    let (url, token) = dashboard_at(&first);
    assert_eq!(token, None, "{first}");
    match ureq::post(&format!("{url}api/cancel/0")).send("") {
        Err(ureq::Error::StatusCode(403)) => {}
        other => panic!("a 403 without --dashboard-control: {other:?}"),
    }
    // The snapshot, as `weft top` reads it.
    let snapshot: serde_json::Value = serde_json::from_str(
        &ureq::get(&format!("{url}api/snapshot"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(snapshot["microthreads"][0]["name"], "main", "{snapshot}");
    assert_eq!(snapshot["control"], false, "{snapshot}");
    assert!(snapshot["status"].is_null(), "{snapshot}");
    // A request for another host (a name that resolves to loopback) is not
    // answered on a loopback endpoint.
    let port = url.trim_end_matches('/').rsplit(':').next().unwrap();
    let mut s = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    write!(
        s,
        "GET /api/snapshot HTTP/1.1\r\nHost: evil.example:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut status = String::new();
    BufReader::new(s).read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 421"), "{status}");
    drop(child);

    // Control: the token, a number, a live microthread.
    let (child, first, _) = chat_with(&["--dashboard", "127.0.0.1:0", "--dashboard-control"]);
    let (url, token) = dashboard_at(&first);
    let token = token.expect("a control token");
    let cancel = |id: &str, auth: Option<&str>| {
        let mut request = ureq::post(&format!("{url}api/cancel/{id}"));
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        match request.send("") {
            Ok(r) => r.status().as_u16(),
            Err(ureq::Error::StatusCode(code)) => code,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(cancel("1", None), 401);
    assert_eq!(cancel("1", Some("Bearer wrong")), 401);
    let bearer = format!("Bearer {token}");
    assert_eq!(cancel("x", Some(&bearer)), 400);
    assert_eq!(cancel("99", Some(&bearer)), 404);
    drop(child);

    // Not loopback, and no --dashboard-public: refused before the run.
    let o = weft(&[
        "run",
        "--dashboard",
        "0.0.0.0:0",
        guest("hello").to_str().unwrap(),
    ]);
    let err = error_exit(&o, 1);
    assert!(err.contains("--dashboard-public"), "{err}");
    let o = weft(&["run", "--dashboard-control", guest("hello").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
}

/// `weft top ADDR` under a pseudo-terminal (`script(1)`): its screens, as the
/// terminal receives them, and a way to press keys.
struct Top {
    child: Reaped,
    screen: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Top {
    fn start(addr: &str) -> Top {
        let command = format!("{} top --interval 200ms {addr}", env!("CARGO_BIN_EXE_weft"));
        let mut child = std::process::Command::new("script")
            .args(["-qfc", &command, "/dev/null"])
            .env("TERM", "xterm")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("script(1) runs weft top under a pseudo-terminal (util-linux)");
        let mut stdout = child.stdout.take().unwrap();
        let screen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let filled = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
                if n == 0 {
                    break;
                }
                filled
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Top {
            child: Reaped::new(child),
            screen,
        }
    }

    /// The last screen drawn, once it shows `what` (lines without the
    /// terminal's control sequences).
    fn screen_with(&self, what: &str) -> Vec<String> {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            let all = self.screen.lock().unwrap().clone();
            // Each screen starts by clearing the terminal.
            let last = all.rsplit("\x1b[2J").next().unwrap_or("").to_string();
            if last.contains(what) && last.contains("SENT") {
                return last.split("\x1b[1E").map(|l| l.trim_end().to_string()).collect();
            }
            assert!(Instant::now() < deadline, "weft top never showed {what}: {all:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn press(&mut self, key: &str) {
        let stdin = self.child.child().stdin.as_mut().unwrap();
        stdin.write_all(key.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
}

#[test]
fn weft_top_shows_the_table_in_a_terminal_and_sorts_it_by_key() {
    let (child, first, addr) = chat_with(&["--dashboard", "127.0.0.1:0"]);
    let dashboard = address_of(&dashboard_at(&first).0);
    let (client, _lines) = join(&addr);

    let mut top = Top::start(&dashboard);
    let screen = top.screen_with("sorted by id");
    let rows: Vec<&String> = screen
        .iter()
        .filter(|l| l.contains(" receiving ") || l.contains(" socket "))
        .collect();
    assert_eq!(rows.len(), 4, "{screen:#?}");
    assert!(rows[0].trim_start().starts_with("0 main"), "{screen:#?}");
    assert!(rows[1].trim_start().starts_with("1 hub"), "{screen:#?}");

    // `f`: most fuel first.
    top.press("f");
    let screen = top.screen_with("sorted by fuel");
    let fuel: Vec<u64> = screen
        .iter()
        .filter(|l| l.contains(" receiving ") || l.contains(" socket "))
        .map(|l| l.split_whitespace().rev().nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(fuel.len(), 4, "{screen:#?}");
    assert!(fuel.windows(2).all(|w| w[0] >= w[1]), "{fuel:?} {screen:#?}");

    // `q`: it ends, and gives the terminal back.
    top.press("q");
    let mut script = top.child.take();
    let deadline = Instant::now() + HANG_GUARD;
    let status = loop {
        if let Some(status) = script.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "weft top never quit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    assert!(
        top.screen.lock().unwrap().ends_with("\x1b[?1049l"),
        "the terminal restored"
    );
    drop(client);
    drop(child);
}

#[test]
fn weft_top_prints_one_snapshot_into_a_pipe_and_refuses_bad_input() {
    let (child, first, _) = chat_with(&["--dashboard", "127.0.0.1:0"]);
    let dashboard = address_of(&dashboard_at(&first).0);
    let o = weft(&["top", &dashboard]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.starts_with(&format!("weft top {dashboard}: running")),
        "{out}"
    );
    assert!(out.contains("main") && out.contains("hub"), "{out}");
    // Into a pipe closed before it writes (`| head -0`): SIGPIPE's code, no panic.
    let mut closed = weft_cmd()
        .args(["top", &dashboard])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run weft top");
    drop(closed.stdout.take());
    let o = closed.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(141), "{}", text(&o.stderr));
    assert!(text(&o.stderr).is_empty(), "{}", text(&o.stderr));
    let o = weft(&["top", "--interval", "1ms", &dashboard]);
    assert!(error_exit(&o, 1).contains("--interval"), "{}", text(&o.stderr));
    drop(child);

    // Nothing serves there.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let o = weft(&["top", &free]);
    let err = error_exit(&o, 1);
    assert!(err.contains("is `weft run --dashboard` serving there?"), "{err}");
}

#[test]
fn the_dashboard_shows_a_deadlock_and_its_report() {
    let mut child = weft_cmd()
        .args(["run", "--dashboard", "127.0.0.1:0"])
        .arg(guest("deadlock"))
        .args(["after", "1500"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run weft");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    let (url, _) = dashboard_at(&first);
    let child = Reaped::new(child);
    // The page's stream, as the page reads it: snapshots until the last, which
    // says how the run ended.
    let mut events = ureq::get(&format!("{url}events")).call().unwrap();
    assert_eq!(events.headers().get("content-type").unwrap(), "text/event-stream");
    let mut last = serde_json::Value::Null;
    for line in BufReader::new(events.body_mut().as_reader()).lines() {
        let line = line.expect("the stream");
        if let Some(data) = line.strip_prefix("data: ") {
            last = serde_json::from_str(data).unwrap();
            if last["status"].is_string() {
                break;
            }
        }
    }
    assert_eq!(last["status"], "deadlocked", "{last}");
    let report = last["report"].as_str().expect("a report");
    assert!(
        report.contains("microthread 1 (left): receiving on channel"),
        "{report}"
    );
    let mut child = child.take();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(70));
}

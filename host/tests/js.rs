//! JavaScript guests: the SDK's test program (`tests/js/sdk.js`) and the examples
//! (`examples/js/`), built from source by `weft build` with componentize-js (found
//! through `WEFT_COMPONENTIZE_JS`, or beside the program, or installed globally),
//! run through `weft run`, their outcome asserted. A missing tool fails the tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

mod common;
use common::{Reaped, text, weft_build, weft_cmd};

/// A JavaScript program built by `weft build`, once per test process.
fn js_guest(source: &str) -> PathBuf {
    common::built_from_source(source)
}

fn sdk() -> PathBuf {
    js_guest("tests/js/sdk.js")
}

/// `weft run FLAGS FILE ARGS`, run to its end.
fn run(flags: &[&str], file: &Path, args: &[&str]) -> Output {
    weft_cmd()
        .arg("run")
        .args(flags)
        .arg(file)
        .args(args)
        .output()
        .expect("run weft")
}

fn lines(o: &Output) -> Vec<String> {
    text(&o.stdout).lines().map(str::to_string).collect()
}

/// The lines of a run that must have exited 0.
fn succeeded(o: &Output) -> Vec<String> {
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
    lines(o)
}

#[test]
fn every_sdk_function_through_the_real_host() {
    let o = run(&[], &sdk(), &["api"]);
    assert_eq!(
        succeeded(&o),
        [
            "main: id 0 name main",
            "values: 18 round trips",
            "square: 49 (id ok)",
            "full: value back 3",
            "recv: 1 2",
            "collect: [0,1,2,\"last\"]",
            "reply: {\"n\":3,\"squared\":9,\"by\":\"squarer\"}",
            "reply: {\"n\":4,\"squared\":16,\"by\":\"squarer\"}",
            "server: server done",
            "refused: still mine",
            "cancelled: kind cancelled name blocked",
            "detached: wake",
            "atomic: 42 cancelled false async 2",
            "select: index 1 kind received value undefined",
            "trySelect: null",
            "select send: sent via select",
            "tick: twice",
            "producer: got one then panic from producer",
            "host channels: null null",
        ],
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn an_exception_is_a_panic_with_the_js_stack() {
    let o = run(&[], &sdk(), &["fail"]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(134), "{out}{err}");
    // A child's exception: its joiner sees a panic, the message and the stack in
    // the program's own files and lines.
    assert!(out.contains("child failed: kind panic name thrower"), "{out}");
    assert!(
        out.contains("child message: RangeError: child says boom"),
        "{out}"
    );
    assert!(out.contains("deeper@sdk.js:"), "{out}");
    assert!(out.contains("thrower@sdk.js:"), "{out}");
    // An error the SDK threw: the stack starts at the program's frame, the SDK's
    // modules (weft.js, weft/*.js) left out.
    assert!(
        out.contains(
            "sdk error: Closed: recv: the channel is closed: every sender is gone\nclosedReader@sdk.js:"
        ),
        "{out}"
    );
    assert!(!out.contains("@weft"), "the SDK's frames are left out: {out}");
    // main's: the run fails (134), the report names it, with its stack.
    assert!(
        err.contains("microthread 0 (main) failed: RangeError: child says main too"),
        "{err}"
    );
    assert!(
        err.contains("fail@sdk.js:") && err.contains("main@sdk.js:"),
        "{err}"
    );
    assert!(!err.contains("__runMain"), "the SDK's frames are left out: {err}");
}

#[test]
fn an_exception_fails_as_a_panic_under_a_tiny_message_size_limit_too() {
    // Under 25 bytes the host refuses the call the SDK fails by, before it traps:
    // a child then fails through the engine's abort, main by exiting with 134.
    let o = run(&["--max-message-size", "16"], &sdk(), &["fail"]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(134), "{out}{err}");
    assert!(out.contains("child failed: kind panic name thrower"), "{out}");
    assert!(
        out.contains("child message: RangeError: child says boom"),
        "{out}"
    );
    assert!(out.contains("thrower@sdk.js:"), "{out}");
    assert!(
        err.contains("main failed: RangeError: child says main too"),
        "{err}"
    );
}

#[test]
fn spawning_an_unregistered_function_says_to_register_it() {
    let o = run(&[], &sdk(), &["unregistered"]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(134), "{out}{err}");
    assert!(
        out.contains("TypeError: spawn: notRegistered is not registered: register it with weft.entry(notRegistered) at the top level"),
        "{out}"
    );
    // An arrow function, uncaught: main fails with the same advice.
    assert!(
        err.contains("is not registered: register it with weft.entry"),
        "{err}"
    );
}

#[test]
fn registering_after_the_start_is_refused() {
    let o = run(&[], &sdk(), &["late"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(134), "{err}");
    assert!(
        err.contains("weft.entry(tooLate): too late, the program is running: register spawnable functions at the top level"),
        "{err}"
    );
}

#[test]
fn exit_ends_the_program_with_its_code() {
    let o = run(&[], &sdk(), &["exit"]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o.stderr));
    assert_eq!(lines(&o), ["exiting with 7"]);
}

#[test]
fn a_socket_echo_on_loopback() {
    let o = run(
        &["--listen", "127.0.0.1:*", "--connect", "127.0.0.1:*"],
        &sdk(),
        &["echo"],
    );
    assert_eq!(
        succeeded(&o),
        [
            "echo: ping over loopback (18 bytes, true)",
            "denied: permission-denied"
        ]
    );
}

#[test]
fn a_seed_replays_the_same_run() {
    let sdk = sdk();
    let runs: Vec<Output> = ["5", "5", "6"]
        .iter()
        .map(|seed| run(&["--seed", seed], &sdk, &["replay"]))
        .collect();
    for o in &runs {
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    }
    let first = text(&runs[0].stdout);
    // Three producers' five values each, in the order the schedule gave.
    let order: Vec<&str> = first
        .trim()
        .strip_prefix("order: ")
        .expect("the order line")
        .split(' ')
        .collect();
    assert_eq!(order.len(), 15 + 2, "{first}");
    assert_eq!(first, text(&runs[1].stdout), "the same seed, the same output");
    assert_eq!(runs[0].stderr, runs[1].stderr);
    // (Another seed may give another order: nothing is asserted of it but success.)
}

#[test]
fn the_hello_example() {
    let o = run(&[], &js_guest("examples/js/hello.js"), &["3"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        lines(&o),
        [
            "hello from microthread 1 (greet): 1 squared is 1",
            "hello from microthread 2 (greet): 2 squared is 4",
            "hello from microthread 3 (greet): 3 squared is 9",
        ]
    );
}

#[test]
fn the_pipeline_example_sieves_primes() {
    let o = run(&[], &js_guest("examples/js/pipeline.js"), &["10"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(lines(&o), ["2 3 5 7 11 13 17 19 23 29"]);
}

#[test]
fn the_echo_server_example_serves_until_ctrl_c() {
    let file = js_guest("examples/js/echo-server.js");
    let mut child = Reaped::new(
        weft_cmd()
            .args(["run", "--listen", "127.0.0.1:*"])
            .arg(&file)
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run weft"),
    );
    let mut first = String::new();
    BufReader::new(child.child().stdout.as_mut().expect("stdout"))
        .read_line(&mut first)
        .expect("read the server's first line");
    assert!(
        first.starts_with("echo-server: listening on 127.0.0.1:"),
        "{first}"
    );
    let addr = first.split_whitespace().last().expect("an address").to_string();
    for message in [&b"first client\n"[..], b"second client\n"] {
        let mut s = std::net::TcpStream::connect(&addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(message).unwrap();
        let mut back = vec![0u8; message.len()];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, message);
    }
    common::signal(child.child(), libc::SIGINT);
    let out = child.take().wait_with_output().expect("collect weft");
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("accept:"), "{}", text(&out.stderr));
}

/// A program of the bad-input tests: written into a fresh directory of its own.
fn bad_program(name: &str, source: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join(name);
    std::fs::write(&path, source).expect("write the program");
    (dir, path)
}

#[test]
fn a_program_without_main_is_refused_by_weft_build() {
    let (dir, source) = bad_program("nomain.js", "export function notMain() {}\n");
    let o = weft_build(&source, &dir.path().join("nomain.wasm"));
    let err = text(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("exports no function main"), "{err}");
    assert!(err.contains("export function main(args)"), "{err}");
    assert!(!dir.path().join("nomain.wasm").exists());
}

#[test]
fn a_syntax_error_is_reported_by_weft_build() {
    let (dir, source) = bad_program("syntax.js", "export function main() {\n  let x = ;\n}\n");
    let o = weft_build(&source, &dir.path().join("syntax.wasm"));
    let err = text(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("cannot build"), "{err}");
    assert!(err.contains("syntax.js:2"), "the error names the line: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn an_exception_at_the_top_level_is_reported_by_weft_build() {
    let (dir, source) = bad_program(
        "toplevel.js",
        "import * as weft from 'weft';\nif (weft.currentId) throw new Error('top-level boom');\nexport function main() {}\n",
    );
    let o = weft_build(&source, &dir.path().join("toplevel.wasm"));
    let err = text(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("top-level boom"), "{err}");
    assert!(
        err.contains("toplevel.js:2"),
        "the error names the program's line: {err}"
    );
}

#[test]
fn componentize_js_missing_names_the_package_to_install() {
    let (dir, source) = bad_program("hello.js", "export function main() {}\n");
    let empty = tempfile::tempdir().expect("a temporary directory");
    let o = weft_cmd()
        .arg("build")
        .arg(&source)
        .arg("-o")
        .arg(dir.path().join("hello.wasm"))
        // Nothing under WEFT_COMPONENTIZE_JS, nor in a global npm prefix.
        .env("WEFT_COMPONENTIZE_JS", empty.path())
        .env("npm_config_prefix", empty.path())
        .output()
        .expect("run weft build");
    let err = text(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("npm install @bytecodealliance/componentize-js@0.23.0"),
        "{err}"
    );
    assert!(err.contains("WEFT_COMPONENTIZE_JS"), "{err}");
}

/// The application feeds a JavaScript guest over its channels in CBOR
/// (`weft::channel_with(.., Codec::Cbor)`, `weft.hostReceiver(name, { codec: weft.CBOR })`).
#[test]
fn a_rust_host_channel_feeds_a_js_guest_in_cbor() {
    common::cbor_round_trips(&sdk(), "host-cbor");
}

/// generate, parallelMap (and its failure), the registry (a name found, one
/// missing, one taken), cancel with a grace period.
#[test]
fn patterns_and_the_registry() {
    let o = run(&[], &sdk(), &["patterns"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut got = lines(&o);
    assert_eq!(got.len(), 6, "{got:?}");
    let taken = got.remove(4);
    assert!(
        taken.starts_with("taken: register: the name \"service\" is registered by microthread "),
        "{taken}"
    );
    assert_eq!(
        got,
        [
            "generate [0,1,2,3]",
            "parallelMap [1,4,9,16,25]",
            "parallelMap failed: Failed panic",
            "registry via the registry null",
            "cancelled: Failed cancelled node null",
        ]
    );
}

/// Monitors: a microthread that returns, one that fails (through select: its kind,
/// name and message), one that has ended and one that never was; a bad id.
#[test]
fn a_monitor_sees_how_a_microthread_ends() {
    let o = run(&[], &sdk(), &["monitor"]);
    assert_eq!(
        succeeded(&o),
        [
            "down: same id true name finisher finished failure null",
            "joined: done",
            "down: received name failer failed kind panic of failer same id true",
            "message: RangeError: the gated child fails as told",
            "no-such: no-such name null; no-such id 123456789",
            "bad: monitor: a microthread's id is an integer, at least 0 (got -1)",
        ]
    );
}

/// The restarts a run counts (`weft run --stats`: the supervisors' `count-restart`).
fn restarts(o: &Output) -> String {
    let err = text(&o.stderr);
    err.lines()
        .find_map(|l| l.split(", ").find_map(|part| part.strip_prefix("restarts ")))
        .unwrap_or_else(|| panic!("no restarts count: {err}"))
        .to_string()
}

#[test]
fn a_one_for_one_supervisor_restarts_a_failing_child_alone() {
    let o = run(&["--stats"], &sdk(), &["one-for-one"]);
    assert_eq!(
        succeeded(&o),
        [
            "started: flaky up, steady up",
            "restarted: flaky up",
            "restarted: flaky up",
            "restarted: flaky up",
            "children: steady running 0, flaky running 3",
            "steady kept its microthread: true",
            // Shutdown: reverse start order.
            "flaky cleanup",
            "steady cleanup",
            "joined",
        ]
    );
    assert_eq!(restarts(&o), "3");
}

/// A transient child restarts after a failure, not after a return; once none is
/// left to run, the supervisor ends.
#[test]
fn a_transient_child_that_returns_is_not_restarted() {
    let o = run(&["--stats"], &sdk(), &["transient"]);
    assert_eq!(
        succeeded(&o),
        ["started: once up, twice up", "restarted: twice up", "joined"]
    );
    assert_eq!(restarts(&o), "1", "only the failure restarted a child");
}

#[test]
fn one_for_all_restarts_the_siblings_and_rest_for_one_those_after() {
    let o = run(&["--stats"], &sdk(), &["one-for-all"]);
    assert_eq!(
        succeeded(&o),
        [
            "started: a up, b up, c up",
            // b failed: the others stop, in reverse order, and all start again.
            "c cleanup",
            "a cleanup",
            "restarted: a up, b up, c up",
            "children: a running 1, b running 1, c running 1",
            "c cleanup",
            "b cleanup",
            "a cleanup",
            "joined",
        ]
    );
    assert_eq!(restarts(&o), "3");
    let o = run(&["--stats"], &sdk(), &["rest-for-one"]);
    assert_eq!(
        succeeded(&o),
        [
            "started: a up, b up, c up",
            // b failed: c (started after it) stops; b and c start again; a runs on.
            "c cleanup",
            "restarted: b up, c up",
            "children: a running 0, b running 1, c running 1",
            "c cleanup",
            "b cleanup",
            "a cleanup",
            "joined",
        ]
    );
    assert_eq!(restarts(&o), "2");
}

#[test]
fn past_its_intensity_a_supervisor_gives_up_with_restart_intensity() {
    let o = run(&["--stats"], &sdk(), &["intensity"]);
    assert_eq!(
        succeeded(&o),
        [
            "started: bad up, steady up",
            // Giving up stops the other children first.
            "steady cleanup",
            "failed: restart-intensity name crashy",
            "message: supervisor crashy gave up: child bad needed more than 2 restarts within 3600000 ms; the recent ends:",
            "  child bad (microthread N) panicked: Error: bad fails as ordered",
            "  child bad (microthread N) panicked: Error: bad fails as ordered",
            "  child bad (microthread N) panicked: Error: bad fails as ordered",
        ]
    );
    assert_eq!(restarts(&o), "2");
}

/// Shutdown stops the children in reverse start order (a nested supervisor stops
/// its own first); a cancelled supervisor does the same, then ends cancelled.
#[test]
fn shutdown_and_cancel_stop_the_children_in_reverse_order() {
    let o = run(&[], &sdk(), &["supervise-shutdown"]);
    assert_eq!(
        succeeded(&o),
        [
            "started: a up, c up, x up, y up",
            "children: a running 0, inner running 0, c running 0",
            "c cleanup",
            "y cleanup",
            "x cleanup",
            "a cleanup",
            "shut down",
            "started: p up, q up, r up",
            "r cleanup",
            "q cleanup",
            "p cleanup",
            "cancelled: Failed cancelled name cancelled",
        ]
    );
}

#[test]
fn bad_supervisor_options_are_clear_errors() {
    let o = run(&[], &sdk(), &["supervise-bad"]);
    assert_eq!(
        succeeded(&o),
        [
            "supervisor.start: options.strategy is one of 'one-for-one', 'one-for-all', 'rest-for-one' (got \"one-for-some\")",
            "supervisor.start: child 0 (worker): restart is one of 'permanent', 'transient', 'temporary' (got \"sometimes\")",
            "supervisor.start: child 0: notRegistered is not registered: register it with weft.entry(notRegistered) at the top level of its module (a microthread starts in a fresh instance of the program, which knows only the functions its top level registered)",
            "supervisor.start: two children are named \"worker\": name each child apart",
            "supervisor.start: options.intensity.maxRestarts is an integer, at least 0 (got -1)",
            "supervisor.start: unknown option \"childs\" (the options are name, strategy, intensity, children)",
            "supervisor.start: options.name is a non-empty string (the supervisor's microthread's name)",
        ]
    );
}

/// A temporary child is not restarted after its failure; a nested supervisor that
/// gives up (past an intensity of 0) is a failed child one level up, restarted
/// there; shutdown reaches the nested supervisor's child.
#[test]
fn a_nested_supervisor_that_gives_up_is_restarted_and_a_temporary_child_is_not() {
    let o = run(&["--stats"], &sdk(), &["nested"]);
    assert_eq!(
        succeeded(&o),
        [
            "started: bad up, temp up",
            "restarted: bad up",
            "children: temp failed 0, inner running 1",
            "bad cleanup",
            "joined",
        ]
    );
    assert_eq!(restarts(&o), "1", "only the nested supervisor restarted");
}

#[test]
fn fetch_works_in_any_microthread_under_the_connect_grants() {
    let port = common::http_server("from upstream");
    let wasm = js_guest("tests/js/fetch.js");
    let url = format!("http://127.0.0.1:{port}/x");
    let grant = format!("127.0.0.1:{port}");
    let o = run(&["--connect", &grant], &wasm, &[&url]);
    assert_eq!(
        succeeded(&o),
        ["main: 200 from upstream", "spawned: 200 from upstream"]
    );
    // Without the grant: refused in both, and said why.
    let o = run(&[], &wasm, &[&url]);
    let out = succeeded(&o);
    assert!(
        out.iter().all(|l| l.contains("failed: TypeError: NetworkError")),
        "{out:?}"
    );
    let err = text(&o.stderr);
    assert_eq!(
        err.matches(&format!(
            "weft: an outgoing request to 127.0.0.1:{port} was denied"
        ))
        .count(),
        2,
        "{err}"
    );
}

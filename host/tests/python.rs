//! Python guests: programs built from source by `weft build` (componentize-py, which
//! `scripts/test.sh` installs: without it these tests fail, saying so), run by the
//! real host. `tests/python/sdk.py` has one mode per feature of the SDK;
//! `examples/python/` the examples.

mod common;

use std::path::PathBuf;
use std::process::Output;
use std::sync::OnceLock;

use common::{Reaped, error_exit, next_line, text, weft, weft_cmd};

/// A Python program built by `weft build`, once per test process.
fn built(source: &str) -> PathBuf {
    common::built_from_source(source)
}

/// The test program, precompiled once (`weft compile`), so that the tests that run
/// it at the same time do not each compile it.
fn sdk() -> PathBuf {
    static COMPILED: OnceLock<PathBuf> = OnceLock::new();
    COMPILED
        .get_or_init(|| {
            let wasm = built("tests/python/sdk.py");
            let cwasm = wasm.with_extension("cwasm");
            let warm = weft(&["compile", wasm.to_str().unwrap(), "-o", cwasm.to_str().unwrap()]);
            assert!(warm.status.success(), "weft compile: {}", text(&warm.stderr));
            cwasm
        })
        .clone()
}

/// `weft run [FLAGS] sdk MODE`: exit code, stdout, stderr.
fn run_mode(flags: &[&str], mode: &str) -> (Option<i32>, String, String) {
    let program = sdk();
    let out = weft_cmd()
        .arg("run")
        .args(flags)
        .arg(&program)
        .arg(mode)
        .output()
        .expect("run weft");
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// A mode that must end well: its stdout.
fn ok(flags: &[&str], mode: &str) -> String {
    let (code, out, err) = run_mode(flags, mode);
    assert_eq!(code, Some(0), "mode {mode}: stdout {out}\nstderr {err}");
    out
}

#[test]
fn spawn_join_channels_select_timers_registry() {
    let out = ok(&[], "basics");
    let expected = [
        "squares [1, 4, 9, 16] square",
        "add 3 6",
        "helper 42",
        "ids 0 main True",
        "finished True",
        "full 3",
        "send timeout 3 True",
        "recv 1 {'two': [2]}",
        "empty",
        "recv timeout",
        "large True",
        "closed here True False",
        "closed",
        "generate [0, 1, 2, 3, 4]",
        "iterate 3",
        "parallel_map [0, 1, 4, 9, 16, 25]",
        "select received 1 received ready",
        "select timeout",
        "select timer 1 received None",
        "try_select None",
        "select sent 0 sent sent by select",
        "ticks [None, None, None]",
        "atomic 499500",
        "registry via registry",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected, "{out}");
}

#[test]
fn endpoints_move_inside_messages_and_results() {
    let out = ok(&[], "endpoints");
    assert!(out.contains("moved False True\n"), "{out}");
    assert!(
        out.contains("use after move: this receiver was closed, or moved into a message\n"),
        "{out}"
    );
    assert!(out.contains("reply ('got', 'hello') moved\n"), "{out}");
    assert!(out.contains("returned end inside\n"), "{out}");
    assert!(
        out.contains("pickle outside: a sender travels only inside a weft message"),
        "{out}"
    );
}

#[test]
fn a_child_exception_is_its_failure_with_the_traceback() {
    let out = ok(&[], "fail");
    assert_eq!(
        out,
        "failed panic boom\ntraceback has True True True\nno wasm backtrace True\n"
    );
}

#[test]
fn an_unjoined_failure_fails_main_with_the_traceback() {
    let (code, _, err) = run_mode(&[], "unjoined");
    assert_eq!(code, Some(134), "{err}");
    assert!(
        err.contains("a child failed and nobody joined it: microthread 1 (boom) failed"),
        "{err}"
    );
    assert!(err.contains("Traceback (most recent call last):\n"), "{err}");
    assert!(err.contains("in boom\nValueError: boom 8"), "{err}");
}

#[test]
fn an_exception_in_main_fails_the_run_with_its_traceback() {
    let (code, out, err) = run_mode(&[], "main-raises");
    assert_eq!(code, Some(134), "{out} {err}");
    assert!(
        err.contains("microthread 0 (main) failed: Traceback (most recent call last):\n"),
        "{err}"
    );
    assert!(err.contains("in main_raises\nKeyError: 'from main'"), "{err}");
    assert!(!err.contains("wasm backtrace"), "{err}");
}

#[test]
fn cancel_runs_the_cleanup() {
    assert_eq!(ok(&[], "cancel"), "cancelled cancelled\ncleanup cleaned up\n");
}

#[test]
fn only_registered_entries_spawn() {
    let out = ok(&[], "unregistered");
    assert!(
        out.contains("lambda: cannot spawn unregistered.<locals>.<lambda>: it is not an entry"),
        "{out}"
    );
    assert!(
        out.contains("nested: cannot spawn unregistered.<locals>.inner: it is not an entry"),
        "{out}"
    );
    assert!(
        out.contains("late: weft.entry(square): entries are registered at module top level"),
        "{out}"
    );
}

#[test]
fn sockets_echo_and_grants_hold() {
    let out = ok(
        &["--listen", "127.0.0.1:0", "--connect", "127.0.0.1:1-65535"],
        "net",
    );
    assert!(out.starts_with("echo FIRST\necho SECOND\n"), "{out}");
    assert!(
        out.contains("denied: connecting to 127.0.0.2:80 is not allowed"),
        "{out}"
    );
}

#[test]
fn exit_codes() {
    assert_eq!(run_mode(&[], "exit-main").0, Some(3));
    assert_eq!(run_mode(&[], "exit-sys").0, Some(5));
    assert_eq!(run_mode(&[], "exit-child").0, Some(4));
}

#[test]
fn arguments_reach_sys_argv() {
    let program = sdk();
    let out = weft_cmd()
        .arg("run")
        .arg(&program)
        .args(["args", "one", "two words"])
        .output()
        .expect("run weft");
    assert_eq!(
        text(&out.stdout),
        "args ['one', 'two words']\n",
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_seed_replays_the_same_schedule() {
    let first = ok(&["--seed", "11"], "race");
    assert!(first.starts_with("order ["), "{first}");
    for _ in 0..2 {
        assert_eq!(ok(&["--seed", "11"], "race"), first);
    }
}

#[test]
fn the_live_limit_is_a_refused_spawn() {
    assert_eq!(
        ok(&["--max-microthreads", "20"], "limit"),
        "limit reached after 19 limit 20\n"
    );
}

/// "limit reached after N limit L" from a run of the `limit` mode on `runtime`.
fn limit_on(runtime: &weft::Runtime) -> (u32, u32) {
    let program = runtime
        .load(built("tests/python/sdk.py"))
        .expect("load the Python program");
    let out = weft::OutputBuffer::new();
    let options = weft::RunOptions::new().args(["limit"]).stdout(out.clone());
    let run = program.start(&options).expect("start");
    let status = run.wait();
    let printed = out.to_string_lossy();
    assert_eq!(status, weft::ExitStatus::Exited(0), "{printed}");
    let words: Vec<&str> = printed.split_whitespace().collect();
    match words[..] {
        ["limit", "reached", "after", n, "limit", l] => (n.parse().unwrap(), l.parse().unwrap()),
        _ => panic!("unexpected output: {printed}"),
    }
}

/// A Python microthread takes more of the instance pool than the runtime gives
/// each by default (componentize-py's 14 core instances against 8): the spawn
/// past what the pool holds is refused, `limit-reached` at spawn, with the
/// maximum this program can have, not a child failing to instantiate. Sized for
/// the program (`pool_for`, as `weft run` does), the live limit holds.
#[test]
fn the_pool_admits_what_it_holds_of_a_big_program() {
    let runtime = |sized: bool| {
        let mut builder = weft::Runtime::builder()
            .workers(1)
            .max_microthreads(40)
            .cache_dir(Some(weft_tests::cache_dir()));
        if sized {
            let bytes = std::fs::read(built("tests/python/sdk.py")).expect("read the program");
            builder = builder.pool_for(&bytes);
        }
        builder.build().expect("runtime")
    };
    // 40 + 24 instances of 8 core instances: 512, for 36 microthreads of 14.
    let (spawned, limit) = limit_on(&runtime(false));
    assert_eq!(limit, 36);
    assert!(spawned < limit, "{spawned} of {limit}");
    assert_eq!(limit_on(&runtime(true)), (39, 40));
}

#[test]
fn example_hello() {
    let wasm = built("examples/python/hello.py");
    let out = weft(&["run", wasm.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("(square) squares 3\n"), "{stdout}");
    assert!(
        stdout.ends_with("hello from Python: the squares are [1, 4, 9, 16], their sum 30\n"),
        "{stdout}"
    );
}

#[test]
fn example_pipeline() {
    let wasm = built("examples/python/pipeline.py");
    let out = weft(&["run", wasm.to_str().unwrap(), "12"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "2 3 5 7 11 13 17 19 23 29 31 37\n");
}

#[test]
fn example_lost_update_is_found_by_weft_test() {
    let wasm = built("examples/python/lost_update.py");
    let out = weft(&["test", "--seeds", "0..200", wasm.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("lost update: the counter is 1 after 2 increments"),
        "{err}"
    );
    assert!(err.contains("replay it with:"), "{err}");
}

#[test]
fn example_echo_server() {
    use std::io::{BufReader, Read, Write};
    let wasm = built("examples/python/echo_server.py");
    let child = weft_cmd()
        .args([
            "run",
            "--listen",
            "127.0.0.1:0",
            wasm.to_str().unwrap(),
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the echo server");
    let mut server = Reaped::new(child);
    let mut out = BufReader::new(server.child().stdout.take().unwrap());
    let line = next_line(&mut out);
    let address = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line}"));
    for message in ["one", "two, longer"] {
        let mut client = std::net::TcpStream::connect(address).expect("connect");
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        client.write_all(message.as_bytes()).unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let mut echoed = String::new();
        client.read_to_string(&mut echoed).expect("read the echo");
        assert_eq!(echoed, message);
    }
    let mut child = server.take();
    child.kill().expect("stop the server");
    child.wait().expect("reap the server");
}

/// A program named `name` with `code`, built in a temporary directory: the
/// build's output, and the directory (with `out.wasm`).
fn build_source(name: &str, code: &str) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let source = dir.path().join(name);
    std::fs::write(&source, code).expect("write the program");
    let wasm = dir.path().join("out.wasm");
    let out = common::weft_build(&source, &wasm);
    (out, dir)
}

#[test]
fn weft_build_refuses_bad_programs_clearly() {
    let (out, _) = build_source("no_main.py", "import weft\n\ndef helper():\n    pass\n");
    let err = error_exit(&out, 1);
    assert!(err.contains("no_main.py defines no main()"), "{err}");

    let (out, _) = build_source("broken.py", "def main(:\n    pass\n");
    let err = error_exit(&out, 1);
    assert!(err.contains("SyntaxError"), "{err}");

    let (out, _) = build_source("echo-server.py", "def main():\n    pass\n");
    let err = error_exit(&out, 1);
    assert!(err.contains("cannot be imported as a Python module"), "{err}");

    let (out, _) = build_source("weft.py", "def main():\n    pass\n");
    let err = error_exit(&out, 1);
    assert!(err.contains("would hide weft's own module weft"), "{err}");

    let (out, _) = build_source("app.rb", "puts 1\n");
    let err = error_exit(&out, 1);
    assert!(
        err.contains("weft build takes a Python program (.py) or a JavaScript one (.js, .mjs)"),
        "{err}"
    );

    let out = weft(&["build", "no/such/app.py"]);
    let err = error_exit(&out, 1);
    assert!(err.contains("cannot read no/such/app.py"), "{err}");
}

#[test]
fn weft_build_says_which_tool_to_install() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let source = dir.path().join("app.py");
    std::fs::write(&source, "def main():\n    print('hi')\n").unwrap();
    let missing = dir.path().join("no-such-componentize-py");
    let out = weft_cmd()
        .env("WEFT_COMPONENTIZE_PY", &missing)
        .arg("build")
        .arg(&source)
        .output()
        .expect("run weft build");
    let err = error_exit(&out, 1);
    assert!(err.contains("pip install componentize-py==0.25.1"), "{err}");

    // Another version: its bindings differ from the SDK's.
    let other = dir.path().join("componentize-py");
    std::fs::write(&other, "#!/bin/sh\necho componentize-py 0.19.0\n").unwrap();
    let mut permissions = std::fs::metadata(&other).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&other, permissions).unwrap();
    let out = weft_cmd()
        .env("WEFT_COMPONENTIZE_PY", &other)
        .arg("build")
        .arg(&source)
        .output()
        .expect("run weft build");
    let err = error_exit(&out, 1);
    assert!(
        err.contains("is componentize-py 0.19.0; this weft's Python SDK needs componentize-py 0.25"),
        "{err}"
    );
}

#[test]
fn a_plain_program_without_weft_builds_and_runs() {
    let (out, dir) = build_source(
        "plain.py",
        "import sys\n\ndef main():\n    print('plain', sys.argv[1:])\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let wasm = dir.path().join("out.wasm");
    let run = weft(&["run", wasm.to_str().unwrap(), "x"]);
    assert_eq!(text(&run.stdout), "plain ['x']\n", "{}", text(&run.stderr));
}

/// A big program's first run says, on a terminal, that it is compiling, and
/// that this happens once; the line is gone when the program runs. (A terminal
/// from util-linux's `script`.)
#[test]
fn the_first_run_says_it_is_compiling_on_a_terminal() {
    let wasm = built("examples/python/hello.py");
    let command = format!("{} run --no-cache {}", env!("CARGO_BIN_EXE_weft"), wasm.display());
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .output()
        .expect("run script (util-linux), which gives weft a terminal");
    let screen = text(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains(&format!("compiling {}… (once: it is cached)", wasm.display())),
        "{screen}"
    );
    // Cleared before the program's output.
    assert!(screen.contains("\r\x1b[Kmicrothread "), "{screen:?}");
}

/// The application feeds a Python guest over its channels in CBOR
/// (`weft::channel_with(.., Codec::Cbor)`, `weft.host_receiver(.., codec=weft.CBOR)`):
/// Rust structs in, Python dicts, Rust structs out.
#[test]
fn a_rust_host_channel_feeds_a_python_guest_in_cbor() {
    common::cbor_round_trips(&built("tests/python/sdk.py"), "host-cbor");
}

/// `weft.monitor`: the host's `Down` (postcard), decoded: a microthread that
/// returned, one that failed (its kind, name and traceback), and ids that are not
/// live (one that was joined, one that never was). The channel closes after it.
#[test]
fn a_monitor_sees_how_a_microthread_ended() {
    let out = ok(&[], "monitor");
    let expected = [
        "down True watched finished None",
        "then closed",
        "down failing failed panic failing True",
        "message True",
        "joined panic",
        "down True None no-such None",
        "down 1099511627776 None no-such",
        "bad id: a microthread's id is from 0 to 2**64 - 1, not -1",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected, "{out}");
}

/// The `restarts` counter of `weft run --stats` (on stderr).
fn restarts_counted(stderr: &str) -> &str {
    let line = stderr
        .lines()
        .rfind(|l| l.starts_with("weft: spawned "))
        .unwrap_or_else(|| panic!("no statistics in: {stderr}"));
    line.rsplit_once("restarts ")
        .map(|(_, n)| n)
        .unwrap_or_else(|| panic!("{line}"))
}

/// One-for-one: a worker that fails on a bad job is restarted (a fresh instance
/// takes the next job, from the same channel); a transient child that returns is
/// not; the children's arguments moved to the supervisor; a shut down supervisor
/// answers no more.
#[test]
fn a_one_for_one_supervisor_restarts_the_child_that_failed() {
    let (code, out, err) = run_mode(&["--stats"], "sup-one-for-one");
    assert_eq!(code, Some(0), "{out}\n{err}");
    let expected = [
        "moved True True",
        "result ('worker', 42)",
        "child worker running 1 True",
        "child quick finished 0 True",
        "joined True",
        "after: the supervisor has finished: join it to see how",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected, "{out}\n{err}");
    assert_eq!(restarts_counted(&err), "1", "{err}");
}

/// One-for-all restarts every child when one fails, rest-for-one the failed one
/// and those after it; the siblings stop in reverse start order first.
#[test]
fn one_for_all_and_rest_for_one_restart_the_siblings() {
    let (code, out, err) = run_mode(&["--stats"], "sup-strategies");
    assert_eq!(code, Some(0), "{out}\n{err}");
    let expected = [
        "started ['a', 'b', 'c']",
        "stopped b",
        "stopped c",
        "stopped a",
        "restarted ['a', 'b', 'c']",
        "restarts [('a', 1), ('b', 1), ('c', 1)]",
        "stopped c",
        "stopped b",
        "stopped a",
        "joined one-for-all",
        "started ['a', 'b', 'c']",
        "stopped b",
        "stopped c",
        "restarted ['b', 'c']",
        "restarts [('a', 0), ('b', 1), ('c', 1)]",
        "stopped c",
        "stopped b",
        "stopped a",
        "joined rest-for-one",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected, "{out}\n{err}");
    assert_eq!(restarts_counted(&err), "5", "{err}");
}

/// Past its intensity a supervisor gives up: its joiner sees a failure of kind
/// `restart-intensity` naming the child and listing the recent ends.
#[test]
fn past_its_intensity_a_supervisor_gives_up() {
    let (code, out, err) = run_mode(&["--stats"], "sup-intensity");
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.starts_with("gave up restart-intensity crashy True\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "supervisor crashy gave up: child crasher needed more than 2 restarts within 60 s; \
             the recent ends:\n"
        ),
        "{out}"
    );
    let ends = out
        .lines()
        .filter(|l| {
            l.starts_with("  child crasher (microthread ")
                && l.ends_with(") panicked: RuntimeError: always crashes")
        })
        .count();
    assert_eq!(ends, 3, "{out}");
    assert_eq!(restarts_counted(&err), "2", "{err}");
}

/// A shutdown, and a cancellation, stop the children in reverse start order, each
/// running its cleanup.
#[test]
fn a_supervisor_stops_its_children_in_reverse_order() {
    let out = ok(&[], "sup-shutdown");
    let expected = [
        "started ['a', 'b', 'c']",
        "stopped c",
        "stopped b",
        "stopped a",
        "joined",
        "started ['a', 'b', 'c']",
        "stopped c",
        "stopped b",
        "stopped a",
        "cancelled cancelled",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected, "{out}");
}

/// `Child.supervisor`: a supervisor under another is stopped through its control
/// channel (its children first, in reverse order, then the outer's); one that gives
/// up is a failed child, restarted, and past the outer's intensity the outer gives
/// up with the inner one's account inside its own.
#[test]
fn supervisors_nest() {
    let (code, out, err) = run_mode(&["--stats"], "sup-nested");
    assert_eq!(code, Some(0), "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..7],
        [
            "started ['w', 'x', 'y']",
            "children [('w', 'running'), ('inner', 'running')]",
            "stopped y",
            "stopped x",
            "stopped w",
            "joined",
            "gave up restart-intensity outer",
        ],
        "{out}"
    );
    assert_eq!(
        lines[7],
        "supervisor outer gave up: child inner needed more than 1 restarts within 60 s; the recent ends:"
    );
    let inner = lines
        .iter()
        .filter(|l| {
            l.starts_with("  child inner (microthread ")
                && l.ends_with(
                    ") gave up: supervisor inner gave up: child crasher needed more than 1 restarts \
                     within 60 s; the recent ends:",
                )
        })
        .count();
    let crashes = lines
        .iter()
        .filter(|l| {
            l.starts_with("    child crasher (microthread ")
                && l.ends_with(") panicked: RuntimeError: always crashes")
        })
        .count();
    assert_eq!((inner, crashes, lines.len()), (2, 4, 14), "{out}");
    // The outer restarted the inner once, the inner its crasher once each time.
    assert_eq!(restarts_counted(&err), "3", "{err}");
}

/// A child or supervisor built wrong is refused where it is built, saying why.
#[test]
fn bad_supervisor_specs_are_refused_clearly() {
    let out = ok(&["--listen", "127.0.0.1:0"], "sup-bad-specs");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert!(
        lines[0].starts_with(
            "TypeError cannot spawn sup_bad_specs.<locals>.<lambda>.<locals>.<lambda>: it is not an entry"
        ),
        "{out}"
    );
    assert_eq!(
        lines[1],
        "ValueError a child's restart is one of 'permanent', 'transient', 'temporary' \
         (or weft.supervisor.Restart), not 'sometimes'"
    );
    assert_eq!(
        lines[2],
        "ValueError a supervisor's strategy is one of 'one-for-one', 'one-for-all', \
         'rest-for-one' (or weft.supervisor.Strategy), not 'one-for-some'"
    );
    assert_eq!(
        lines[3],
        "TypeError an intensity is (max_restarts, within_seconds), not 3"
    );
    assert_eq!(
        lines[4],
        "ValueError a child's shutdown time must be zero or more seconds, not -1"
    );
    assert!(
        lines[5].starts_with("TypeError the arguments of child 'x' carry a TcpListener: "),
        "{out}"
    );
}

/// The supervised worker pool: each bad job fails a worker, which is restarted;
/// the good jobs are all done.
#[test]
fn example_supervised() {
    let wasm = built("examples/python/supervised.py");
    let out = weft(&["run", "--stats", wasm.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let restarted = stdout
        .lines()
        .filter(|l| l.ends_with("failed on a bad job and was restarted"))
        .count();
    assert_eq!(restarted, 2, "{stdout}");
    assert!(stdout.contains("squares: [1, 4, 16, 25, 49]\n"), "{stdout}");
    assert!(stdout.contains("restarts: 2\n"), "{stdout}");
    assert!(stdout.ends_with("the pool is shut down\n"), "{stdout}");
    assert_eq!(restarts_counted(&stderr), "2", "{stderr}");
}

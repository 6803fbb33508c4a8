//! The `weft` binary, driven as a user would: real guests built to wasm32-wasip2,
//! exit codes and output asserted.

use std::path::Path;
use std::process::{Command, Output};

use weft_tests::guest;

mod common;
use common::{error_exit, text, weft, weft_cmd};

fn weft_run(file: &Path, flags: &[&str], guest_args: &[&str]) -> Output {
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    let file = file.to_str().unwrap();
    args.push(file);
    if !guest_args.is_empty() {
        args.push("--");
        args.extend_from_slice(guest_args);
    }
    weft(&args)
}

fn stdout(o: &Output) -> String {
    text(&o.stdout)
}

fn stderr(o: &Output) -> String {
    text(&o.stderr)
}

#[test]
fn hello_runs_through_the_binary() {
    let o = weft_run(&guest("hello"), &[], &[]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert!(
        stdout(&o).contains("sum of squares 1..=1000 = 333833500"),
        "{}",
        stdout(&o)
    );
}

/// Whether, in the `fairness` example under `flags`, the 1 ms sleeper finished
/// before the CPU hog (which runs about a second without calling the host).
fn sleeper_first(flags: &[&str]) -> bool {
    let o = weft_run(&guest("fairness"), flags, &["1000000000", "40"]);
    assert_eq!(o.status.code(), Some(0), "{flags:?}: {}", stderr(&o));
    let out = stdout(&o);
    let sleeper = out.find("sleeper done").expect("the sleeper finished");
    let hog = out.find("hog done").expect("the hog finished");
    sleeper < hog
}

#[test]
fn flags_are_honoured() {
    // --workers 1: one worker, so without preemption the hog starves the sleeper.
    assert!(
        !sleeper_first(&["--workers", "1", "--no-preempt"]),
        "--no-preempt on one worker"
    );
    // --fuel-slice: a slice longer than the hog's whole run is no preemption at all.
    assert!(
        !sleeper_first(&["--workers", "1", "--fuel-slice", "1000000000000000"]),
        "a huge --fuel-slice"
    );
    // The default slice preempts the hog.
    assert!(sleeper_first(&["--workers", "1"]), "the default slice");
    // --workers 2: the sleeper gets the other worker.
    assert!(sleeper_first(&["--workers", "2", "--no-preempt"]), "--workers 2");

    // --max-memory bounds linear memory.
    let grow = |flags: &[&str], mib: &str| stdout(&weft_run(&guest("limits"), flags, &["grow", mib]));
    assert!(grow(&["--max-memory", "16MiB"], "64").contains("grow 64 MiB: refused"));
    assert!(grow(&["--max-memory", "16MiB"], "4").contains("grow 4 MiB: granted"));
    assert!(grow(&[], "64").contains("grow 64 MiB: granted"));

    // --max-message-size bounds a spawn argument.
    let o = weft_run(
        &guest("limits"),
        &["--max-message-size", "1KiB"],
        &["big-argument", "5000"],
    );
    assert!(
        stdout(&o).contains("over the message size limit of 1024 bytes"),
        "{}",
        stdout(&o)
    );

    // --max-buffered and --max-channels bound what a run's channels hold.
    let o = weft_run(&guest("control"), &["--max-buffered", "64KiB"], &["fill", "1000"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // 1000 bytes and 64 of bookkeeping each: 61 fit in 64 KiB.
    assert!(stdout(&o).contains("accepted 61 messages"), "{}", stdout(&o));
    let o = weft_run(&guest("control"), &["--max-channels", "7"], &["channels"]);
    assert!(stdout(&o).starts_with("opened 7 then"), "{}", stdout(&o));
}

#[test]
fn plain_command_gets_args_and_only_granted_env() {
    let o = weft_cmd()
        .args([
            "run",
            "--env",
            "GREETING=hello there",
            guest("plain-hello").to_str().unwrap(),
            "--",
            "x",
            "--flag",
        ])
        .env("SECRET", "must not leak")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("args: x --flag"), "{out}");
    assert!(out.contains("GREETING=hello there"), "{out}");
    assert!(
        out.contains("env keys: [GREETING]"),
        "nothing else of the host's environment: {out}"
    );

    // `--env K` passes the host's value of K.
    let o = weft_cmd()
        .args(["run", "--env", "GREETING", guest("plain-hello").to_str().unwrap()])
        .env("GREETING", "from the host")
        .output()
        .unwrap();
    assert!(stdout(&o).contains("GREETING=from the host"), "{}", stdout(&o));
}

#[test]
fn exit_codes_pass_through() {
    assert_eq!(
        weft_run(&guest("limits"), &[], &["exit", "42"]).status.code(),
        Some(42)
    );
    assert_eq!(
        weft_run(&guest("limits"), &[], &["exit", "3", "child"])
            .status
            .code(),
        Some(3)
    );
    assert_eq!(
        weft_run(&guest("spawn-many"), &[], &["not-a-number"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn a_trapping_main_names_the_microthread_the_trap_and_the_backtrace() {
    let o = weft_run(&guest("failures"), &[], &["main-trap"]);
    assert_eq!(o.status.code(), Some(134));
    let err = stderr(&o);
    let first = err.lines().next().unwrap_or("");
    assert!(
        first.starts_with("error: microthread 0 (main) failed: wasm trap"),
        "{err}"
    );
    assert!(first.contains("unreachable"), "{err}");
    assert!(
        err.contains("wasm backtrace:") && err.contains("failures::main"),
        "{err}"
    );
    assert!(
        !err.contains("panicked at host"),
        "the host must not panic: {err}"
    );
}

#[test]
fn an_unjoined_child_failure_fails_the_program() {
    let o = weft_run(&guest("failures"), &[], &["unjoined-panic"]);
    assert_eq!(o.status.code(), Some(134));
    let err = stderr(&o);
    assert!(err.contains("microthread 1 (lost) failed: panicked at"), "{err}");
    assert!(err.contains("boom in a child"), "{err}");
}

#[test]
fn spawning_past_max_microthreads_is_an_error_the_guest_sees() {
    let o = weft_run(
        &guest("limits"),
        &["--max-microthreads", "5"],
        &["spawn-past-max"],
    );
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert!(
        stdout(&o).contains("spawned 4 then: cannot spawn"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn max_run_handles_bounds_the_handles_of_all_microthreads_together() {
    // Four children each clone a channel end until the run's limit refuses them.
    let o = weft_run(
        &guest("hostile"),
        &["--max-run-handles", "300"],
        &["run-handles", "4"],
    );
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    let refused = out
        .lines()
        .filter(|l| {
            l.contains("the run's microthreads already hold its maximum of 300 handles")
                && l.contains("weft run --max-run-handles")
        })
        .count();
    assert_eq!(refused, 4, "{out}");
    assert!(out.contains("main cloned one more end"), "{out}");
}

/// An error of weft's own, on one line, and exit code 1.
fn one_line_error(o: &Output) -> String {
    let err = error_exit(o, 1);
    assert_eq!(err.trim_end().lines().count(), 1, "one line expected: {err}");
    err
}

#[test]
fn bad_files_get_one_clear_line_and_exit_1() {
    let dir = std::env::temp_dir().join(format!("weft-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let err = one_line_error(&weft_run(&dir.join("missing.wasm"), &[], &[]));
    assert!(
        err.contains("cannot read") && err.contains("missing.wasm"),
        "{err}"
    );
    // The cause is said once.
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
    let err = one_line_error(&weft_run(&dir, &[], &[]));
    assert_eq!(err.matches("os error").count(), 1, "{err}");

    let text = dir.join("text.wasm");
    std::fs::write(&text, "hello, I am text").unwrap();
    assert!(one_line_error(&weft_run(&text, &[], &[])).contains("is not a WebAssembly file"));

    let core = dir.join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let err = one_line_error(&weft_run(&core, &[], &[]));
    assert!(err.contains("core WebAssembly module, not a component"), "{err}");

    let empty = dir.join("empty.wasm");
    std::fs::write(&empty, b"\0asm\x0d\0\x01\0").unwrap();
    assert!(one_line_error(&weft_run(&empty, &[], &[])).contains("not a program weft can run"));

    let garbage = dir.join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm\x0d\0\x01\0\x07\x07\x07").unwrap();
    assert!(one_line_error(&weft_run(&garbage, &[], &[])).contains("cannot compile"));

    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_flags_are_refused() {
    let o = weft_run(&guest("hello"), &["--workers", "0"], &[]);
    assert!(one_line_error(&o).contains("workers must be at least 1"));
    let o = weft_run(&guest("hello"), &["--max-memory", "lots"], &[]);
    assert_eq!(o.status.code(), Some(2), "clap usage error");
    let o = weft_run(&guest("hello"), &["--env", "=x"], &[]);
    assert!(one_line_error(&o).contains("variable name is empty"));
    let o = weft_run(&guest("hello"), &["--env", "WEFT_SURELY_UNSET_VARIABLE"], &[]);
    assert!(one_line_error(&o).contains("has no variable"));
}

/// A usage error: clap's message and exit code 2, as `wasmtime run` gives.
fn usage_error(o: &Output) -> String {
    error_exit(o, 2)
}

#[test]
fn usage_errors_exit_2_other_errors_1() {
    let hello = guest("hello");
    let file = hello.to_str().unwrap();
    assert!(usage_error(&weft(&["run"])).contains("required arguments were not provided"));
    assert!(usage_error(&weft(&["runn", file])).contains("similar subcommand exists: 'run'"));
    assert!(usage_error(&weft(&["run", "--max-memory", "64XB", file])).contains("unknown unit"));
    assert!(usage_error(&weft(&["compile", file])).contains("--output"));
    // A value the runtime refuses is not a usage error: one line, exit 1.
    assert!(one_line_error(&weft(&["run", "--max-memory", "1KiB", file])).contains("at least 64 KiB"));
}

#[test]
fn a_mistyped_flag_before_the_file_is_an_unknown_flag_not_a_file() {
    let hello = guest("hello");
    let file = hello.to_str().unwrap();
    let err = usage_error(&weft(&["run", "--timout", "5s", file]));
    assert!(err.contains("unexpected argument '--timout'"), "{err}");
    assert!(err.contains("similar argument exists: '--timeout'"), "{err}");
    assert!(!err.contains("cannot read"), "{err}");
    let err = usage_error(&weft(&["test", "--bogus", file]));
    assert!(err.contains("unexpected argument '--bogus'"), "{err}");
    // After the file, flags are the guest's.
    let o = weft(&["run", guest("plain-hello").to_str().unwrap(), "--timout", "5s"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("args: --timout 5s"), "{}", stdout(&o));
}

#[test]
fn help_explains_every_flag() {
    let o = weft(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("run"));
    let o = weft(&["run", "--help"]);
    let help = stdout(&o);
    for flag in [
        "--fuel-slice",
        "--no-preempt",
        "--workers",
        "--max-microthreads",
        "--max-memory",
        "--max-handles",
        "--max-run-handles",
        "--env",
    ] {
        assert!(help.contains(flag), "`weft run --help` lacks {flag}:\n{help}");
    }
    assert!(
        help.contains("[default: 256MiB]"),
        "--max-memory's default:\n{help}"
    );
    assert!(help.contains("--listen") && help.contains("--connect"), "{help}");
    // A deterministic run cannot use the network: `weft test` has no such flags.
    let o = weft(&["test", "--help"]);
    let help = stdout(&o);
    assert!(help.contains("--seeds"), "{help}");
    assert!(
        !help.contains("--listen") && !help.contains("--connect"),
        "{help}"
    );
    let o = weft(&[
        "test",
        "--listen",
        "127.0.0.1:9000",
        guest("hello").to_str().unwrap(),
    ]);
    assert!(usage_error(&o).contains("unexpected argument '--listen'"));
}

#[test]
fn weft_log_has_no_colour_codes_in_a_pipe() {
    let o = weft_cmd()
        .env("WEFT_LOG", "weft::cache=info")
        .args(["run", guest("hello").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("weft::cache"), "{err}");
    assert!(!err.contains('\x1b'), "ANSI codes in a pipe: {err:?}");
}

#[test]
fn a_deadlock_is_reported_and_exits_70() {
    let o = weft_run(&guest("deadlock"), &[], &[]);
    assert_eq!(o.status.code(), Some(70));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: deadlock: every microthread is blocked"),
        "{err}"
    );
    assert!(
        err.contains("  microthread 0 (main): receiving on channel 2"),
        "{err}"
    );
    assert!(
        err.contains("  microthread 1 (left): receiving on channel 1"),
        "{err}"
    );
}

#[test]
fn channel_examples_run_through_the_binary() {
    let o = weft_run(&guest("pipeline"), &[], &["10"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "2 3 5 7 11 13 17 19 23 29");
    let o = weft_run(&guest("thread-ring"), &["--workers", "1"], &["1000"]);
    assert_eq!(stdout(&o).trim(), (1000 % 503 + 1).to_string());
}

/// `weft` with its cache in `cache`.
fn weft_in(cache: &Path, args: &[&str]) -> Output {
    weft_cmd()
        .args(args)
        .env("WEFT_CACHE_DIR", cache)
        .env("WEFT_LOG", "weft::cache=info")
        .output()
        .expect("run weft")
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_cache_is_used_the_second_time_and_can_be_cleared() {
    let cache = temp_dir("cache");
    let hello = guest("hello");
    let hello = hello.to_str().unwrap();
    let first = weft_in(&cache, &["run", hello]);
    assert_eq!(first.status.code(), Some(0));
    assert!(stderr(&first).contains("cache miss"), "{}", stderr(&first));
    assert!(
        !stderr(&first).contains("compiling"),
        "no progress line when stderr is not a terminal"
    );
    let second = weft_in(&cache, &["run", hello]);
    assert!(stderr(&second).contains("cache hit"), "{}", stderr(&second));
    assert!(stdout(&second).contains("333833500"));
    let off = weft_in(&cache, &["run", "--no-cache", hello]);
    assert!(stderr(&off).contains("Disabled"), "{}", stderr(&off));

    let dir = weft_in(&cache, &["cache", "dir"]);
    assert_eq!(stdout(&dir).trim(), cache.to_str().unwrap());
    let cleared = weft_in(&cache, &["cache", "clear"]);
    assert!(
        stdout(&cleared).starts_with("removed 1 compiled programs"),
        "{}",
        stdout(&cleared)
    );
    assert!(stderr(&weft_in(&cache, &["run", hello])).contains("cache miss"));
    std::fs::remove_dir_all(&cache).ok();
}

#[test]
fn compile_ahead_of_time_then_run_the_cwasm() {
    let cache = temp_dir("aot");
    let out = cache.join("hello.cwasm");
    let (hello, out_s) = (guest("hello"), out.to_str().unwrap().to_owned());
    let o = weft_in(&cache, &["compile", hello.to_str().unwrap(), "-o", &out_s]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = weft_in(&cache, &["run", &out_s]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("333833500"));
    assert!(stderr(&o).contains("Precompiled"), "{}", stderr(&o));

    // Compiled for other settings: refused, with the way out.
    let o = weft_in(&cache, &["run", "--no-preempt", &out_s]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("other engine settings"), "{}", stderr(&o));
    // Corrupt: refused, never loaded.
    let mut bytes = std::fs::read(&out).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&out, &bytes).unwrap();
    let o = weft_in(&cache, &["run", &out_s]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("failed verification"), "{}", stderr(&o));
    std::fs::remove_dir_all(&cache).ok();
}

/// A precompiled file has no name section left: it keeps the names of the
/// program's spawnable functions, which name its microthreads by default.
#[test]
fn a_precompiled_file_keeps_the_names_of_spawned_functions() {
    let dir = temp_dir("aot-names");
    let out = dir.join("names.cwasm");
    let (names, out_s) = (guest("names"), out.to_str().unwrap().to_owned());
    let o = weft_in(&dir, &["compile", names.to_str().unwrap(), "-o", &out_s]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for program in [names.to_str().unwrap(), &out_s] {
        let o = weft_in(&dir, &["run", program]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(
            stdout(&o).contains("child: id 2 name Some(\"who\")"),
            "{program}: {}",
            stdout(&o)
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn directory_grants_and_stdin_through_the_binary() {
    let dir = temp_dir("grants");
    std::fs::write(dir.join("in.txt"), "granted").unwrap();
    let files = guest("files");
    let (files, d) = (files.to_str().unwrap(), dir.to_str().unwrap());
    let ro = format!("{d}::/g");
    let o = weft(&["run", "--dir-ro", &ro, files, "--", "read", "/g/in.txt"]);
    assert_eq!(stdout(&o), "granted");
    let o = weft(&["run", "--dir-ro", &ro, files, "--", "write", "/g/out.txt", "x"]);
    assert!(stdout(&o).starts_with("error:"), "{}", stdout(&o));
    let o = weft(&["run", "--dir", &ro, files, "--", "write", "/g/out.txt", "x"]);
    assert_eq!(stdout(&o).trim(), "wrote");
    assert_eq!(std::fs::read_to_string(dir.join("out.txt")).unwrap(), "x");
    // Same path in the guest as on the host.
    let o = weft(&["run", "--dir", d, files, "--", "read", &format!("{d}/in.txt")]);
    assert_eq!(stdout(&o), "granted");
    let o = weft(&["run", "--dir", "/no/such/dir", files, "--", "read", "x"]);
    assert!(one_line_error(&o).contains("cannot grant /no/such/dir"));

    use std::io::Write;
    let mut child = weft_cmd()
        .args(["run", files, "--", "upper"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"through a pipe\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "THROUGH A PIPE\n");
    std::fs::remove_dir_all(&dir).ok();
}

/// The embedding example, compiled into this test (so it is always built and
/// checked, never skipped), driven through its own code.
#[allow(dead_code)]
#[path = "../examples/embed.rs"]
mod embed;

#[test]
fn the_embedding_example_runs_a_guest() {
    let mut out = Vec::new();
    let workers = guest("workers");
    let status = embed::run(workers.to_str().unwrap(), &mut out).expect("the example runs");
    assert!(status.success(), "{status:?}");
    let out = String::from_utf8(out).unwrap();
    // 100 texts, 25 of each of 3 + 4 + 1 + 6 words.
    assert!(out.starts_with("words counted by the guest: 350\n"), "{out}");
    assert!(
        out.contains("microthread 0 \"main\": joining microthread 1"),
        "{out}"
    );
    assert!(out.contains("microthread 1 \"worker-0\": "), "{out}");
    assert!(
        out.contains("workers: 100 texts counted\nthe workers ended: Exited(0)\n"),
        "{out}"
    );
    assert!(
        out.ends_with("the idle program ended: Cancelled\nshut down\n"),
        "{out}"
    );
}

#[test]
fn ctrl_c_cancels_the_program_and_exits_130() {
    let guest = guest("bench");
    let (mut child, _out, first) = started(&["run", guest.to_str().unwrap(), "--", "sleepers", "3", "60000"]);
    assert_eq!(first.trim_end(), "ready");
    let mut err = until_sleeping(&mut child, 3);
    kill("-INT", &child);
    // Uncancelled, the sleepers would end after 60 s and the program with 0.
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130), "{rest}");
    assert!(rest.contains("interrupted"), "{rest}");
}

#[test]
fn arguments_after_the_file_go_to_the_guest_as_with_wasmtime_run() {
    let hello = guest("plain-hello");
    let file = hello.to_str().unwrap();
    // Flags after the file are the guest's, not weft's.
    let o = weft(&["run", file, "needle", "-", "--workers", "3"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("args: needle - --workers 3"),
        "{}",
        stdout(&o)
    );
    // A `--` right after the file still works, and is not passed on.
    let o = weft(&["run", file, "--", "a", "b"]);
    assert!(stdout(&o).contains("args: a b\n"), "{}", stdout(&o));
    // weft's own flags go before the file.
    let o = weft(&["run", "--env", "GREETING=hi", file, "x"]);
    assert!(stdout(&o).contains("GREETING=hi"), "{}", stdout(&o));
    assert!(stdout(&o).contains("args: x\n"), "{}", stdout(&o));
}

#[test]
fn the_cwasm_of_a_program_that_cannot_spawn_runs() {
    let dir = temp_dir("aot-plain");
    let out = dir.join("plain.cwasm");
    let out_s = out.to_str().unwrap();
    let o = weft(&["compile", guest("plain-hello").to_str().unwrap(), "-o", out_s]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = weft(&["run", out_s, "from", "cwasm"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("args: from cwasm"), "{}", stdout(&o));
    std::fs::remove_dir_all(&dir).ok();
}

/// `weft run FILE ARGS | head -1`: stdout closed after one line. The exit code, the
/// first line, and all of stderr.
fn closed_after_one_line(file: &Path, guest_args: &[&str]) -> (Option<i32>, String, String) {
    use std::io::{BufRead, BufReader, Read};
    let (reader, writer) = std::io::pipe().unwrap();
    let mut cmd = weft_cmd();
    cmd.arg("run").arg(file).args(guest_args);
    cmd.stdout(writer).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    let mut first = String::new();
    BufReader::new(reader).read_line(&mut first).unwrap();
    // The reader is gone: every later write fails with a broken pipe.
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = child.wait().unwrap();
    (status.code(), first, err)
}

#[test]
fn a_closed_stdout_ends_the_program_quietly_as_sigpipe_does() {
    // A program that can spawn, and a plain one (whose panic on the failed write
    // would have printed a message and a backtrace).
    for (file, args, first_line) in [
        (guest("control"), &["flood"][..], "line 0\n"),
        (guest("plain-hello"), &["flood"][..], "plain line 0\n"),
    ] {
        let (code, first, err) = closed_after_one_line(&file, args);
        assert_eq!(first, first_line);
        // 128 + SIGPIPE, nothing said: as `| head -1` ends a native program.
        assert_eq!(code, Some(141), "{file:?}: {err}");
        assert_eq!(err, "", "{file:?}");
    }
}

#[test]
fn a_failure_reported_to_a_closed_stderr_keeps_its_exit_code() {
    // The guest fails (134) and weft's report of it goes to a closed pipe.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = weft_cmd()
        .args(["run", guest("failures").to_str().unwrap(), "main-trap"])
        .stdout(std::process::Stdio::null())
        .stderr(writer)
        .status()
        .unwrap();
    assert_eq!(o.code(), Some(134));
}

#[test]
fn timeout_stops_a_program_and_exits_124() {
    let control = guest("control");
    let o = weft(&[
        "run",
        "--timeout",
        "300ms",
        control.to_str().unwrap(),
        "sleep",
        "60000",
    ]);
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
    assert!(stderr(&o).contains("timed out after 300ms"), "{}", stderr(&o));
    assert!(!stdout(&o).contains("slept"));
    // A busy loop with fuel off is stopped too (by epoch).
    let o = weft(&[
        "run",
        "--timeout",
        "300ms",
        "--no-preempt",
        control.to_str().unwrap(),
        "spin",
    ]);
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
    // A plain command, unmetered and without epoch checks, busy: the timeout ends
    // the process.
    let o = weft(&[
        "run",
        "--timeout",
        "300ms",
        guest("plain-hello").to_str().unwrap(),
        "spin",
    ]);
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
    assert_eq!(stdout(&o), "spinning\n");
    // A program that ends in time is not affected.
    let o = weft(&["run", "--timeout", "60s", control.to_str().unwrap(), "sleep", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn fuel_budget_stops_a_runaway() {
    let control = guest("control");
    let c = control.to_str().unwrap();
    let o = weft(&["run", "--fuel-budget", "1000000", c, "burn", "1000000000"]);
    assert_eq!(o.status.code(), Some(134), "{}", stderr(&o));
    assert!(stderr(&o).contains("fuel budget exhausted"), "{}", stderr(&o));
    let o = weft(&["run", "--fuel-budget", "1000000000", c, "burn", "1000"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = weft(&[
        "run",
        "--fuel-budget-per-microthread",
        "1000000",
        c,
        "burn-children",
        "2",
        "100000000",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o)
            .matches("fuel budget exhausted: it used all of its 1000000 units")
            .count(),
        2,
        "{}",
        stdout(&o)
    );
    // A plain command (unmetered by default) is metered when it has a budget.
    let o = weft(&[
        "run",
        "--fuel-budget",
        "10",
        guest("plain-hello").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(134), "{}", stderr(&o));
    assert!(stderr(&o).contains("fuel budget exhausted"), "{}", stderr(&o));
}

#[test]
fn bad_run_control_flags_are_refused() {
    let control = guest("control");
    let c = control.to_str().unwrap();
    let o = weft(&["run", "--timeout", "soon", c, "sleep", "1"]);
    assert_eq!(o.status.code(), Some(2), "clap usage error: {}", stderr(&o));
    assert!(stderr(&o).contains("is not a duration"), "{}", stderr(&o));
    let o = weft(&["run", "--no-preempt", "--fuel-budget", "5", c, "sleep", "1"]);
    assert!(one_line_error(&o).contains("fuel budget needs fuel metering"));
    let o = weft(&[
        "run",
        "--max-microthreads",
        "5",
        "--workers",
        "1",
        c,
        "hold",
        "10",
        "10",
    ]);
    assert_eq!(o.status.code(), Some(134), "main fails: its spawn was refused");
}

/// `weft ARGS` with stdout and stderr piped, once it has printed its first line:
/// the child, the rest of its stdout, and that line.
fn started(
    args: &[&str],
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
    String,
) {
    use std::io::BufRead;
    let mut child = weft_cmd()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    (child, out, first)
}

/// Send `signal` (`-INT`, `-QUIT`, …) to `child`.
fn kill(signal: &str, child: &std::process::Child) {
    let killed = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
}

/// Ask `child` (a `weft run`) for its table of live microthreads (SIGQUIT) and read
/// it from its stderr, `err`.
fn microthread_table(
    child: &std::process::Child,
    err: &mut std::io::BufReader<std::process::ChildStderr>,
) -> String {
    use std::io::BufRead;
    kill("-QUIT", child);
    let mut table = String::new();
    while !table.contains("weft: spawned") {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "stderr ended: {table}");
        table.push_str(&line);
    }
    table
}

/// Wait until `n` microthreads of `child` (a `weft run`) sleep, as its table of live
/// microthreads shows; returns its stderr, read up to there.
fn until_sleeping(
    child: &mut std::process::Child,
    n: usize,
) -> std::io::BufReader<std::process::ChildStderr> {
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    // A hang guard only: the table is asked for again as soon as one is read.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let table = microthread_table(child, &mut err);
        if table.matches(": sleeping").count() >= n {
            return err;
        }
        assert!(std::time::Instant::now() < deadline, "never {n} asleep: {table}");
    }
}

/// `weft run` of a program whose microthreads clean up when cancelled, stopped by
/// `signal`: the exit code, and what the cleanup printed.
fn stopped_by(signal: &str) -> (Option<i32>, String, String) {
    use std::io::Read;
    let guest = guest("structure");
    let (mut child, mut out, first) = started(&[
        "run",
        "--grace",
        "5s",
        guest.to_str().unwrap(),
        "cleanup-on-signal",
    ]);
    assert_eq!(first, "ready\n");
    let mut err = until_sleeping(&mut child, 1);
    kill(signal, &child);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let mut said = String::new();
    err.read_to_string(&mut said).unwrap();
    (child.wait().unwrap().code(), rest, said)
}

#[test]
fn sigint_and_sigterm_let_the_cleanup_run_then_exit_130_and_143() {
    for (signal, code, said) in [
        ("-INT", 130, "weft: interrupted"),
        ("-TERM", 143, "weft: terminated"),
    ] {
        let (got, out, err) = stopped_by(signal);
        assert_eq!(got, Some(code), "{signal}: {err}");
        // The child's sleep and main's join and sleep failed with the cancellation,
        // and their code ran on.
        let mut lines: Vec<&str> = out.lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            [
                "grandchild: cancelled with its parent",
                "main: this microthread was cancelled"
            ],
            "{signal}"
        );
        assert_eq!(err.trim(), said, "{signal}");
    }
}

#[test]
fn stats_prints_the_runs_counters_at_exit() {
    let o = weft(&[
        "run",
        "--stats",
        guest("control").to_str().unwrap(),
        "hold",
        "3",
        "10",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).trim(),
        "weft: spawned 4, live 0, peak live 4, finished 4, failed 0, messages sent 0, restarts 0"
    );
}

#[test]
fn stats_counts_a_supervisors_restarts() {
    // The `supervision` guest's supervisor restarts a crashing child twice, then
    // gives up (its failure is joined and printed by `main`).
    let o = weft(&[
        "run",
        "--stats",
        guest("supervision").to_str().unwrap(),
        "intensity",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let stats = stderr(&o);
    assert!(
        stats.trim().ends_with("failed 4, messages sent 0, restarts 2"),
        "{stats}"
    );
}

#[test]
fn sigquit_prints_the_live_microthreads_and_the_program_carries_on() {
    use std::io::{BufReader, Read};
    let guest = guest("control");
    let (mut child, _out, first) = started(&["run", guest.to_str().unwrap(), "hold", "2", "60000"]);
    assert_eq!(first, "holding 2\n");
    let mut err = BufReader::new(child.stderr.take().unwrap());
    // Ctrl-\ until the sleepers are seen sleeping.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let table = loop {
        let table = microthread_table(&child, &mut err);
        if table.matches(": sleeping").count() == 2 {
            break table;
        }
        assert!(std::time::Instant::now() < deadline, "never both asleep: {table}");
    };
    assert!(table.starts_with("weft: 3 live microthreads (SIGQUIT"), "{table}");
    assert!(
        table.contains("microthread 0 (main): joining microthread 1"),
        "{table}"
    );
    // Named after the function each runs.
    assert!(table.contains("microthread 1 (nap): sleeping"), "{table}");
    assert!(table.contains("microthread 2 (nap): sleeping"), "{table}");
    // Still running: SIGQUIT did not stop it. Ctrl-C does.
    assert!(child.try_wait().unwrap().is_none(), "the program carries on");
    kill("-INT", &child);
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
}

/// Wait for `child` to end, at most 30 s (a hang guard, not a measure).
fn wait_guarded(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("still running after 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn a_plain_program_is_stopped_without_a_grace_period() {
    // A grace of an hour: were it waited for, the hang guard would fail the test. A
    // plain program cannot see its cancellation, so no cleanup could use it.
    let plain = guest("plain-hello");
    let plain = plain.to_str().unwrap();
    let mut child = weft_cmd()
        .args(["run", "--grace", "1h", "--timeout", "100ms", plain, "spin"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(wait_guarded(&mut child).code(), Some(124));
    let o = child.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "spinning\n");
    assert_eq!(stderr(&o).trim_end(), "weft: timed out after 100ms");
    for (signal, code) in [("-INT", 130), ("-TERM", 143)] {
        let (mut child, _out, first) = started(&["run", "--grace", "1h", plain, "spin"]);
        assert_eq!(first, "spinning\n");
        kill(signal, &child);
        assert_eq!(wait_guarded(&mut child).code(), Some(code), "{signal}");
    }
    // A weft program still gets its grace: its cleanup runs (see
    // `sigint_and_sigterm_let_the_cleanup_run_then_exit_130_and_143`).
}

#[test]
fn a_panic_in_main_before_any_sdk_call_is_reported_as_a_panic() {
    let o = weft_run(&guest("failures"), &[], &["main-panic"]);
    assert_eq!(o.status.code(), Some(134), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: microthread 0 (main) failed: panicked at ")
            && err.contains("main gives up before calling weft"),
        "{err}"
    );
    assert!(!err.contains("unreachable"), "reported as a trap: {err}");
}

#[test]
fn the_readme_server_pattern_stops_quietly_on_ctrl_c() {
    use std::io::{Read, Write};
    let file = guest("readme-echo");
    let (child, _out, first) = started(&[
        "run",
        "--listen",
        "127.0.0.1:*",
        file.to_str().unwrap(),
        "127.0.0.1:0",
    ]);
    let addr = first
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{first}"))
        .to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    s.write_all(b"echo me").unwrap();
    let mut back = [0u8; 7];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"echo me");
    kill("-INT", &child);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    // `stream?` never saw the cancellation: `incoming()` ended.
    assert_eq!(stderr(&o).trim_end(), "weft: interrupted");
}

#[test]
fn weft_test_gives_each_seed_its_own_microthread_limit_and_stdin() {
    // Three microthreads a seed, at most three each: four seeds at once would need
    // twelve of one shared pool.
    let control = guest("control");
    let o = weft(&[
        "test",
        "--seeds",
        "40",
        "--jobs",
        "4",
        "--max-microthreads",
        "3",
        control.to_str().unwrap(),
        "hold",
        "2",
        "1000",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("all 40 seeds passed"), "{}", stdout(&o));
    // Every seed reads all of stdin, as its replay would.
    let files = guest("files");
    let mut child = weft_cmd()
        .args([
            "test",
            "--seeds",
            "20",
            "--jobs",
            "4",
            files.to_str().unwrap(),
            "expect",
            "the input\n",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"the input\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("all 20 seeds passed"), "{}", stdout(&o));
}

#[test]
fn weft_test_reports_a_deadlock_with_the_count_first() {
    let o = weft(&["test", "--seeds", "1", guest("deadlock").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(70), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("weft test: seed 0 fails (0 other seeds passed): it deadlocked:\n"),
        "{err}"
    );
    assert!(
        err.contains("microthread 1 (left): receiving on channel"),
        "{err}"
    );
    // The count is said once, on the first line, not after the last microthread.
    assert_eq!(err.matches("other seeds passed").count(), 1, "{err}");
}

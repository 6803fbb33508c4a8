//! The `weft` binary, driven as a user would: real guests built to wasm32-wasip2,
//! exit codes and output asserted.

use std::path::Path;
use std::process::{Command, Output};

use weft_tests::guest;

fn weft(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .output()
        .expect("run weft")
}

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
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
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

#[test]
fn flags_are_honoured() {
    let o = weft_run(
        &guest("hello"),
        &["--workers", "1", "--fuel-slice", "10000", "--max-memory", "16MiB"],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let o = weft_run(&guest("hello"), &["--no-preempt"], &[]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
}

#[test]
fn plain_command_gets_args_and_only_granted_env() {
    let o = Command::new(env!("CARGO_BIN_EXE_weft"))
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
    let o = Command::new(env!("CARGO_BIN_EXE_weft"))
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

fn one_line_error(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout: {} stderr: {}",
        stdout(o),
        stderr(o)
    );
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "one line expected: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
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
        "--env",
    ] {
        assert!(help.contains(flag), "`weft run --help` lacks {flag}:\n{help}");
    }
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
    Command::new(env!("CARGO_BIN_EXE_weft"))
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
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

#[test]
fn the_embedding_example_runs_a_guest() {
    // The example is built with the tests; find it beside the test binary.
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("embed");
    if !example.exists() {
        // `cargo test` builds examples; a filtered build may not have.
        return;
    }
    let o = Command::new(example).arg(guest("hello")).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("333833500") && out.contains("the guest succeeded"),
        "{out}"
    );
}

#[test]
fn ctrl_c_cancels_the_program_and_exits_130() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args([
            "run",
            guest("bench").to_str().unwrap(),
            "--",
            "sleepers",
            "3",
            "60000",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    // Let the sleepers reach their sleep.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Uncancelled, the sleepers would end after 60 s and the program with 0.
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
}

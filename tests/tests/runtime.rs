//! The embedding API driving real guests: built from source to wasm32-wasip2 by the
//! test helpers (`weft_tests::guest`), run by the real host, outcomes asserted.

use weft::{Error, ExitStatus, OutputBuffer, Preemption, RunOptions, Runtime};
use weft_tests::guest;

mod common;
use common::{Ran, run_on};

/// Tests run in parallel, and every runtime's pool holds memory mappings for its
/// maximum of microthreads up front: keep them small unless a test needs more.
fn small() -> weft::RuntimeBuilder {
    Runtime::builder()
        .max_microthreads(64)
        .cache_dir(Some(weft_tests::cache_dir()))
}

fn run(name: &str, args: &[&str]) -> Ran {
    run_on(&small().workers(2).build().unwrap(), name, args)
}

#[test]
fn hello_combines_the_workers_results() {
    let r = run("hello", &[]);
    assert_eq!(r.status, ExitStatus::Exited(0), "stderr: {}", r.stderr);
    // 1² + … + 1000² = 1000·1001·2001/6
    assert!(r.stdout.contains("= 333833500"), "stdout: {}", r.stdout);
}

#[test]
fn hello_runs_on_one_worker_too() {
    let rt = small().workers(1).build().unwrap();
    let r = run_on(&rt, "hello", &[]);
    assert!(r.status.success());
    assert!(r.stdout.contains("= 333833500"));
}

#[test]
fn a_program_runs_many_times_on_one_runtime() {
    let rt = small().workers(2).build().unwrap();
    for _ in 0..3 {
        assert!(run_on(&rt, "hello", &[]).stdout.contains("= 333833500"));
    }
}

#[test]
fn plain_wasip2_command_runs_as_one_microthread() {
    let rt = small().workers(1).build().unwrap();
    let program = rt.load(guest("plain-hello")).unwrap();
    assert!(!program.is_spawnable());
    let out = OutputBuffer::new();
    let options = RunOptions::new()
        .args(["a", "b c"])
        .env("GREETING", "hi")
        .stdout(out.clone());
    assert_eq!(program.run(&options).unwrap(), ExitStatus::Exited(0));
    let text = out.to_string_lossy();
    assert!(text.contains("hello from a plain wasip2 command"), "{text}");
    assert!(text.contains("args: a b c"), "{text}");
    assert!(text.contains("GREETING=hi"), "{text}");
}

#[test]
fn spawn_many_spawns_and_joins_10000() {
    // 10,000 microthreads, in waves of 1,000 live at a time.
    let rt = small().workers(2).max_microthreads(1_001).build().unwrap();
    let r = run_on(&rt, "spawn-many", &["10000", "1000"]);
    assert_eq!(r.status, ExitStatus::Exited(0), "stderr: {}", r.stderr);
    assert!(
        r.stdout
            .contains("spawned and joined 10000 microthreads, sum 99990000"),
        "{}",
        r.stdout
    );
}

/// Which of the sleeper and the hog printed "done" first.
fn fairness_order(preemption: Preemption) -> (usize, usize, String) {
    let rt = small().workers(1).preemption(preemption).build().unwrap();
    // The hog runs about a second; the sleeper needs ~50 ms when it gets the CPU.
    let r = run_on(&rt, "fairness", &["1000000000", "40"]);
    assert_eq!(r.status, ExitStatus::Exited(0), "stderr: {}", r.stderr);
    let sleeper = r.stdout.find("sleeper done").expect("sleeper finished");
    let hog = r.stdout.find("hog done").expect("hog finished");
    (sleeper, hog, r.stdout)
}

#[test]
fn fuel_preemption_lets_the_sleeper_finish_while_the_hog_runs() {
    let (sleeper, hog, out) = fairness_order(Preemption::Fuel {
        slice: weft::DEFAULT_FUEL_SLICE,
    });
    assert!(
        sleeper < hog,
        "the sleeper should finish first under preemption:\n{out}"
    );
}

#[test]
fn without_preemption_the_hog_starves_the_sleeper() {
    let (sleeper, hog, out) = fairness_order(Preemption::Off);
    assert!(
        hog < sleeper,
        "without preemption the hog should finish first:\n{out}"
    );
}

#[test]
fn a_joined_panic_reaches_the_joiner_with_its_message() {
    let r = run("failures", &["join-panic"]);
    assert_eq!(r.status, ExitStatus::Exited(0), "stderr: {}", r.stderr);
    assert!(
        r.stdout.contains("joined failure: id=1 name=Some(\"boomer\")"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("boom in a child"), "{}", r.stdout);
    assert!(r.stdout.contains("wasm backtrace"), "{}", r.stdout);
}

#[test]
fn a_joined_trap_reaches_the_joiner() {
    let r = run("failures", &["join-trap"]);
    assert_eq!(r.status, ExitStatus::Exited(0));
    assert!(
        r.stdout
            .contains("joined failure: microthread 1 (trap) failed: wasm trap"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("unreachable"), "{}", r.stdout);
    assert!(
        r.stdout.contains("failures::trap"),
        "backtrace names the function: {}",
        r.stdout
    );
}

#[test]
fn an_unjoined_failure_fails_the_parent() {
    let r = run("failures", &["unjoined-panic"]);
    let ExitStatus::Failed(f) = &r.status else {
        panic!("main should fail: {:?}", r.status)
    };
    assert_eq!((f.id, f.name.as_deref()), (0, Some("main")));
    assert!(f.message.contains("microthread 1 (lost) failed"), "{f}");
    assert!(f.message.contains("boom in a child"), "{f}");
    assert_eq!(r.status.code(), 134);
}

#[test]
fn a_trap_in_main_is_a_failure_with_a_backtrace() {
    let r = run("failures", &["main-trap"]);
    let ExitStatus::Failed(f) = &r.status else {
        panic!("main should fail: {:?}", r.status)
    };
    assert_eq!(f.id, 0);
    assert!(f.summary().contains("unreachable"), "{f}");
    assert!(f.message.contains("failures::main"), "{f}");
    assert!(r.stdout.contains("main is about to trap"));
}

#[test]
fn an_unknown_function_index_fails_only_that_microthread() {
    let r = run("failures", &["bad-index"]);
    assert_eq!(r.status, ExitStatus::Exited(0));
    assert!(
        r.stdout.contains("joined failure: microthread 1 failed"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("out of bounds table access"), "{}", r.stdout);
}

#[test]
fn a_forged_small_message_fails_only_its_sender() {
    let r = run("failures", &["forged-small"]);
    assert_eq!(r.status, ExitStatus::Exited(0), "stderr: {}", r.stderr);
    assert!(
        r.stdout.contains("joined failure: microthread 1 failed")
            && r.stdout
                .contains("a small message of 200 bytes (at most 24 fit one)"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_message_that_carries_another_kind_of_endpoint_fails_only_its_reader() {
    let r = run("failures", &["wrong-endpoint"]);
    assert_eq!(r.status, ExitStatus::Exited(0), "stderr: {}", r.stderr);
    // Each outcome is one line (a failure's backtrace follows on lines of its own).
    let outcome = |kind: &str| {
        let prefix = format!("{kind}: ");
        r.stdout
            .lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no outcome for {kind}: {}", r.stdout))
    };
    assert!(
        outcome("sender").starts_with("decoded Sender { channel: "),
        "{}",
        r.stdout
    );
    for (kind, expected) in [
        ("receiver", "receiver"),
        ("tcp-stream", "TCP stream"),
        ("tcp-listener", "TCP listener"),
    ] {
        let outcome = outcome(kind);
        assert!(
            outcome.starts_with("joined failure: microthread ")
                && outcome.ends_with(&format!(
                    "cannot deserialize a received message: the message does not carry the expected {expected}"
                )),
            "{}",
            r.stdout
        );
    }
}

#[test]
fn spawning_past_the_limit_returns_an_error_the_guest_handles() {
    let rt = small().workers(2).max_microthreads(10).build().unwrap();
    let r = run_on(&rt, "limits", &["spawn-past-max"]);
    assert_eq!(r.status, ExitStatus::Exited(0), "stderr: {}", r.stderr);
    assert!(
        r.stdout
            .contains("spawned 9 then: cannot spawn: the program already has its maximum of 10"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("joined 9"), "{}", r.stdout);
}

/// The memory limit holds whatever address space a slot reserves: 4 GiB when the
/// runtime's address-space budget allows (bounds checks elided), `max_memory` when not.
#[test]
fn linear_memory_cannot_grow_past_the_limit() {
    for address_space in [weft::DEFAULT_ADDRESS_SPACE, 0] {
        let rt = small()
            .workers(1)
            .max_memory(16 << 20)
            .address_space(address_space)
            .build()
            .unwrap();
        let r = run_on(&rt, "limits", &["grow", "64"]);
        assert!(
            r.stdout.contains("grow 64 MiB: refused"),
            "budget {address_space}: {}",
            r.stdout
        );
        let r = run_on(&rt, "limits", &["grow", "4"]);
        assert!(
            r.stdout.contains("grow 4 MiB: granted"),
            "budget {address_space}: {}",
            r.stdout
        );
    }
}

#[test]
fn an_argument_over_the_message_limit_is_refused() {
    let rt = small().workers(1).max_message_size(1024).build().unwrap();
    let r = run_on(&rt, "limits", &["big-argument", "5000"]);
    assert!(
        r.stdout
            .contains("refused: cannot spawn: the argument is over the message size limit of 1024 bytes"),
        "{}",
        r.stdout
    );
    let r = run_on(&rt, "limits", &["big-argument", "500"]);
    assert!(r.stdout.contains("spawned, child saw 500 bytes"), "{}", r.stdout);
}

#[test]
fn exit_codes_come_from_main_or_any_microthread() {
    assert_eq!(run("limits", &["exit", "7"]).status, ExitStatus::Exited(7));
    assert_eq!(run("limits", &["exit", "0"]).status, ExitStatus::Exited(0));
    let r = run("limits", &["exit", "9", "child"]);
    assert_eq!(r.status, ExitStatus::Exited(9));
    assert!(!r.stdout.contains("main still running"), "{}", r.stdout);
    // WASI 0.2's exit carries success or failure only.
    assert_eq!(run("limits", &["exit", "1", "std"]).status, ExitStatus::Exited(1));
    assert_eq!(run("limits", &["exit", "0", "std"]).status, ExitStatus::Exited(0));
}

#[test]
fn current_names_and_ids() {
    let r = run("names", &[]);
    assert_eq!(r.status, ExitStatus::Exited(0), "stderr: {}", r.stderr);
    assert!(
        r.stdout.contains("main: id 0 name Some(\"main\")"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("child: id 1 name Some(\"alice\")"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("child: id 2 name Some(\"who\")"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("yielded 100 times"), "{}", r.stdout);
}

fn load_err(bytes: &[u8]) -> Error {
    let rt = small().workers(1).build().unwrap();
    rt.compile(bytes, "input.wasm").expect_err("should be refused")
}

#[test]
fn bad_inputs_are_refused_with_clear_errors() {
    let rt = small().workers(1).build().unwrap();
    let e = rt.load("no/such/file.wasm").unwrap_err();
    assert!(matches!(e, Error::Read { .. }), "{e}");
    assert!(e.to_string().starts_with("cannot read no/such/file.wasm"), "{e}");

    let e = load_err(b"#!/bin/sh\necho not wasm\n");
    assert!(matches!(e, Error::NotWasm { .. }), "{e}");
    assert!(load_err(b"").to_string().contains("not a WebAssembly file"));

    // The smallest core module: magic and version 1.
    let e = load_err(b"\0asm\x01\0\0\0");
    assert!(matches!(e, Error::CoreModule { .. }), "{e}");
    assert!(e.to_string().contains("wasm32-wasip2"), "{e}");

    // The smallest component (layer 1): valid, but it exports nothing.
    let e = load_err(b"\0asm\x0d\0\x01\0");
    assert!(matches!(e, Error::NotRunnable { .. }), "{e}");

    // A component header followed by garbage.
    let e = load_err(b"\0asm\x0d\0\x01\0\xff\xff\xff\xff");
    assert!(matches!(e, Error::Compile { .. }), "{e}");
}

#[test]
fn bad_configurations_are_refused() {
    assert!(matches!(small().workers(0).build(), Err(Error::Config(_))));
    assert!(matches!(
        small().max_microthreads(0).build(),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        small().preemption(Preemption::Fuel { slice: 0 }).build(),
        Err(Error::Config(_))
    ));
}

#[test]
fn which_programs_can_spawn_is_known_before_compiling() {
    let bytes = |name: &str| std::fs::read(guest(name)).unwrap();
    assert_eq!(weft::imports_weft(&bytes("hello")), Some(true));
    assert_eq!(weft::imports_weft(&bytes("plain-hello")), Some(false));
    assert_eq!(
        weft::imports_weft(&std::fs::read(weft_tests::ripgrep()).unwrap()),
        Some(false)
    );
    assert_eq!(weft::imports_weft(b"\0asm\x01\0\0\0"), None);
    assert_eq!(weft::imports_weft(b"not wasm"), None);
    assert_eq!(weft::imports_weft(b"\0asm\x0d\0\x01\0\xff\xff"), None);
}

#[test]
fn a_component_that_cannot_fit_the_pool_is_refused_at_load() {
    // Two linear memories: a microthread's pool slot holds one.
    let bytes = wat::parse_str(
        r#"(component
            (core module $m (memory 1))
            (core instance $a (instantiate $m))
            (core instance $b (instantiate $m)))"#,
    )
    .unwrap();
    let e = load_err(&bytes);
    assert!(matches!(e, Error::Compile { .. }), "{e}");
    let text = e.to_string();
    assert!(text.contains("2 Wasm linear memories"), "{text}");
    assert!(text.contains("weft's instance pool"), "{text}");
}

/// A component exporting `name` with a `run` of the wrong shape.
fn exporting_entry(name: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component
            (core module $m (func (export "run") (param i32)))
            (core instance $i (instantiate $m))
            (func $run (param "x" u32) (canon lift (core func $i "run")))
            (instance $e (export "run" (func $run)))
            (export "{name}" (instance $e)))"#
    ))
    .unwrap()
}

#[test]
fn a_guest_built_against_another_entry_is_told_why() {
    let e = load_err(&exporting_entry("weft:runtime/entry@0.1.0"));
    assert!(matches!(e, Error::Link { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("`weft:runtime/entry@0.1.0`") && text.contains("weft:runtime@0.6.0"),
        "{text}"
    );
    assert!(text.contains("Rebuild the guest"), "{text}");

    let e = load_err(&exporting_entry("weft:runtime/entry@0.6.0"));
    assert!(matches!(e, Error::Link { .. }), "{e}");
    assert!(e.to_string().contains("not as this host expects"), "{e}");
}

#[test]
fn a_guest_importing_another_version_of_weft_is_told_why() {
    let bytes = wat::parse_str(
        r#"(component
            (import "weft:runtime/thread@0.1.0" (instance (export "yield-now" (func))))
            (core module $m (func (export "run") (result i32) i32.const 0))
            (core instance $i (instantiate $m))
            (func $run (result (result)) (canon lift (core func $i "run")))
            (instance $e (export "run" (func $run)))
            (export "wasi:cli/run@0.2.0" (instance $e)))"#,
    )
    .unwrap();
    let e = load_err(&bytes);
    assert!(matches!(e, Error::Link { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("`weft:runtime/thread@0.1.0`") && text.contains("weft:runtime@0.6.0"),
        "{text}"
    );
}

/// Start `hostile` with `args` and the application's `events` and `go` channels.
fn hostile_with_events(
    rt: &Runtime,
    args: &[&str],
    options: RunOptions,
) -> (
    weft::RunHandle,
    OutputBuffer,
    weft::Receiver<String>,
    weft::Sender<u8>,
) {
    let program = rt.load(guest("hostile")).expect("load");
    let (events_tx, events) = weft::channel::<String>(4);
    let (go, go_rx) = weft::channel::<u8>(4);
    let out = OutputBuffer::new();
    let options = options
        .args(args.iter().copied())
        .stdout(out.clone())
        .sender("events", events_tx)
        .receiver("go", go_rx);
    (program.start(&options).expect("start"), out, events, go)
}

/// The next event from the guest (a hang, or the run's end, fails the test).
fn next_event(events: &weft::Receiver<String>, out: &OutputBuffer) -> String {
    events
        .recv_timeout_blocking(std::time::Duration::from_secs(60))
        .unwrap_or_else(|e| {
            panic!(
                "no event from the guest ({e}); it printed: {}",
                out.to_string_lossy()
            )
        })
}

#[test]
fn results_waiting_to_be_joined_count_against_the_runs_budget() {
    const BUDGET: u64 = 1 << 20;
    const SIZE: usize = 100_000;
    let rt = small().workers(2).build().unwrap();
    let options = RunOptions::new().max_buffered_bytes(BUDGET);
    let (run, out, events, go) =
        hostile_with_events(&rt, &["hold-results", "20", &SIZE.to_string()], options);
    assert_eq!(next_event(&events, &out), "held");
    // Twenty results of 100 kB were returned; the run holds what its budget allows.
    let held = run.buffered_bytes();
    assert!(
        held <= BUDGET,
        "the run holds {held} bytes, over its budget of {BUDGET}"
    );
    assert!(held >= 5 * SIZE as u64, "the results waiting are counted: {held}");
    go.send_blocking(1).unwrap();
    assert_eq!(next_event(&events, &out), "joined");
    // Joined: nothing of them is held any more.
    let after = run.buffered_bytes();
    assert!(
        after < SIZE as u64,
        "the joined results are let go: {after} bytes still held"
    );
    go.send_blocking(1).unwrap();
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    let text = out.to_string_lossy();
    let ok = text
        .lines()
        .filter(|l| l.ends_with(&format!(": ok {SIZE}")))
        .count();
    let refused = text
        .lines()
        .filter(|l| {
            l.contains("failed:")
                && l.contains("its result of ")
                && l.contains(&format!(
                    "bytes does not fit in the run's budget of {BUDGET} buffered bytes"
                ))
                && l.contains("max_buffered_bytes")
        })
        .count();
    assert_eq!(ok + refused, 20, "{text}");
    assert!(ok >= 5 && refused >= 1, "{text}");
    assert!(
        ok as u64 * (SIZE as u64 + weft::limits::MESSAGE_OVERHEAD) <= BUDGET,
        "{text}"
    );
}

#[test]
fn a_result_over_the_message_limit_fails_its_microthread_alone() {
    let rt = small().workers(1).build().unwrap();
    let program = rt.load(guest("hostile")).unwrap();
    let out = OutputBuffer::new();
    let options = RunOptions::new()
        .max_message_size(1024)
        .args(["big-result", "5000"])
        .stdout(out.clone());
    assert_eq!(program.run(&options).unwrap(), ExitStatus::Exited(0));
    let text = out.to_string_lossy();
    assert!(
        text.contains("joined: Trap: its result of 500") // and its serialized length
            && text.contains("bytes is over the message size limit of 1024 bytes (max_message_size)"),
        "{text}"
    );
    assert!(text.contains("main carries on"), "{text}");
}

#[test]
fn panic_messages_and_names_are_cut_to_their_limits() {
    let r = run("hostile", &["long-panic", "100000"]);
    assert_eq!(r.status, ExitStatus::Exited(0), "stderr: {}", r.stderr);
    let limit = weft::limits::MAX_PANIC_MESSAGE + weft::limits::TRUNCATED.len();
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("panic "))
        .expect("the panic line");
    assert!(line.starts_with("panic Panic, first line "), "{line}");
    let bytes: usize = line["panic Panic, first line ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(bytes <= limit && bytes > limit / 2, "{line}");
    assert!(line.ends_with("marked as cut: true"), "{line}");
    let name_limit = weft::limits::MAX_NAME + weft::limits::TRUNCATED.len();
    assert!(
        r.stdout.contains(&format!("name {name_limit} bytes")),
        "{}",
        r.stdout
    );
}

/// A hostile microthread fails alone, with a failure that names the cause; its
/// sibling and the program go on.
fn fails_alone(kind: &str, options: RunOptions, expected: &str) {
    let rt = small().workers(2).build().unwrap();
    let program = rt.load(guest("hostile")).unwrap();
    let out = OutputBuffer::new();
    let options = options.args(["alone", kind]).stdout(out.clone());
    let status = program.run(&options).unwrap();
    let text = out.to_string_lossy();
    assert_eq!(status, ExitStatus::Exited(0), "{kind}: {text}");
    let hostile = text
        .lines()
        .find(|l| l.starts_with("hostile: "))
        .unwrap_or_else(|| panic!("{kind}: {text}"));
    assert!(hostile.contains(expected), "{kind}: {text}");
    assert!(text.contains("sibling: ok 50"), "{kind}: {text}");
}

#[test]
fn a_microthread_that_allocates_without_end_fails_alone() {
    fails_alone(
        "oom",
        RunOptions::new().max_memory(16 << 20),
        "hostile: OutOfMemory: out of memory: its linear memory may not grow past 16777216 bytes",
    );
}

#[test]
fn a_microthread_that_recurses_without_end_fails_alone() {
    fails_alone("stack", RunOptions::new(), "hostile: Trap: ");
}

#[test]
fn a_microthread_that_grows_its_handle_table_without_end_fails_alone() {
    fails_alone(
        "handles",
        RunOptions::new().max_handles(500),
        "store handle limit exceeded: it holds as many handles (join handles, channel ends, \
         sockets) as a microthread may, 500",
    );
}

/// A command whose `run` grows its table one element at a time until `table.grow`
/// returns -1, then traps in a function that says whether the table stopped at
/// `limit` elements. Stable Rust cannot emit `table.grow`: it is written in WAT.
fn table_grower(limit: usize) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component
            (core module $m
                (table $t 1 funcref)
                (func $stopped_at_the_limit unreachable)
                (func $stopped_elsewhere unreachable)
                (func (export "run") (result i32)
                    (loop $grow
                        (br_if $grow
                            (i32.ne (table.grow $t (ref.null func) (i32.const 1)) (i32.const -1))))
                    (if (i32.eq (table.size $t) (i32.const {limit}))
                        (then (call $stopped_at_the_limit))
                        (else (call $stopped_elsewhere)))
                    i32.const 0))
            (core instance $i (instantiate $m))
            (func $run (result (result)) (canon lift (core func $i "run")))
            (instance $e (export "run" (func $run)))
            (export "wasi:cli/run@0.2.0" (instance $e)))"#
    ))
    .unwrap()
}

#[test]
fn a_microthread_that_grows_a_table_without_end_fails_alone() {
    const LIMIT: usize = weft::limits::MAX_TABLE_ELEMENTS;
    let rt = small().workers(2).build().unwrap();
    let program = rt.compile(&table_grower(LIMIT), "table-grower.wasm").unwrap();
    let status = program.run(&RunOptions::new()).unwrap();
    let ExitStatus::Failed(failure) = status else {
        panic!("the table grower should fail: {status:?}");
    };
    assert_eq!(failure.kind, weft::FailureKind::OutOfMemory, "{failure}");
    assert!(
        failure.summary().starts_with(&format!(
            "out of memory: a table of it may not grow past {LIMIT} elements \
             (weft::limits::MAX_TABLE_ELEMENTS) (wasm trap: wasm `unreachable` instruction executed)"
        )),
        "{failure}"
    );
    // The guest saw its table stop at the limit, not before nor after.
    assert!(failure.message.contains("stopped_at_the_limit"), "{failure}");
    assert!(!failure.message.contains("stopped_elsewhere"), "{failure}");
    // It failed alone: the runtime runs the next program.
    let r = run_on(&rt, "hello", &[]);
    assert_eq!(r.status, ExitStatus::Exited(0), "stderr: {}", r.stderr);
    assert!(r.stdout.contains("= 333833500"), "{}", r.stdout);
}

#[test]
fn a_microthread_that_spawns_without_end_is_refused_alone() {
    let rt = small().workers(2).max_microthreads(20).build().unwrap();
    let r = run_on(&rt, "hostile", &["alone", "spawn"]);
    assert_eq!(r.status, ExitStatus::Exited(0), "{}", r.stdout);
    // main and the hostile one hold 2 of the 20, the sibling one until it ends.
    let refused = r
        .stdout
        .lines()
        .find(|l| l.starts_with("hostile: refused after "))
        .unwrap_or_else(|| panic!("no refusal: {}", r.stdout));
    assert!(
        refused.contains("spawns: cannot spawn: the program already has its maximum of 20 live microthreads"),
        "{refused}"
    );
    let n: usize = refused["hostile: refused after ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(n == 17 || n == 18, "{refused}");
    assert!(r.stdout.contains(&format!("hostile: ok {n}")), "{}", r.stdout);
    assert!(r.stdout.contains("sibling: ok 50"), "{}", r.stdout);
}

#[test]
fn the_handles_of_a_run_are_bounded_all_microthreads_together() {
    let rt = small().workers(2).build().unwrap();
    let program = rt.load(guest("hostile")).unwrap();
    let out = OutputBuffer::new();
    let options = RunOptions::new()
        .max_run_handles(2000)
        .args(["run-handles", "4"])
        .stdout(out.clone());
    let run = program.start(&options).unwrap();
    let mut most = 0;
    while !run.is_finished() {
        most = most.max(run.open_handles());
        std::thread::yield_now();
    }
    assert_eq!(
        run.status(),
        Some(ExitStatus::Exited(0)),
        "{}",
        out.to_string_lossy()
    );
    assert!(most <= 2000, "the run held {most} handles");
    assert_eq!(
        run.open_handles(),
        0,
        "every microthread's handles were given back"
    );
    let text = out.to_string_lossy();
    let refused = text
        .lines()
        .filter(|l| {
            l.contains("Trap: the run's microthreads already hold its maximum of 2000 handles")
                && l.contains("RunOptions::max_run_handles")
        })
        .count();
    assert_eq!(
        refused, 4,
        "each child cloned until the run's limit stopped it: {text}"
    );
    assert!(text.contains("main cloned one more end"), "{text}");
}

#[test]
fn a_partial_line_counts_against_the_runs_budget() {
    const LINE: usize = 30_000;
    let rt = small().workers(1).build().unwrap();
    // Room for it: the partial line waits for its end, counted.
    let (run, out, events, go) =
        hostile_with_events(&rt, &["partial-line", &LINE.to_string()], RunOptions::new());
    assert_eq!(next_event(&events, &out), "written");
    assert!(
        run.buffered_bytes() >= LINE as u64,
        "held: {}",
        run.buffered_bytes()
    );
    assert_eq!(out.to_string_lossy(), "", "the partial line waits for its end");
    go.send_blocking(1).unwrap();
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    assert_eq!(
        out.to_string_lossy(),
        format!("{} and the line ends\n", "x".repeat(LINE))
    );
    // No room: what does not fit is written out at once.
    const BUDGET: u64 = 8 << 10;
    let options = RunOptions::new().max_buffered_bytes(BUDGET);
    let (run, out, events, go) = hostile_with_events(&rt, &["partial-line", &LINE.to_string()], options);
    assert_eq!(next_event(&events, &out), "written");
    assert!(run.buffered_bytes() <= BUDGET, "held: {}", run.buffered_bytes());
    let written = out.to_string_lossy().len();
    assert!(written as u64 >= LINE as u64 - BUDGET, "written out: {written}");
    go.send_blocking(1).unwrap();
    assert_eq!(run.wait(), ExitStatus::Exited(0));
    assert_eq!(
        out.to_string_lossy(),
        format!("{} and the line ends\n", "x".repeat(LINE))
    );
}

#[test]
fn the_sdk_helpers_return_the_refusal_at_the_microthread_limit() {
    let rt = small().workers(2).max_microthreads(8).build().unwrap();
    let r = run_on(&rt, "hostile", &["sdk-at-limit"]);
    assert_eq!(r.status, ExitStatus::Exited(0), "{}{}", r.stdout, r.stderr);
    let refusal = "cannot spawn: the program already has its maximum of 8 live microthreads";
    assert!(
        r.stdout.contains(&format!("parallel_map: {refusal}")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(&format!("generate: {refusal}")), "{}", r.stdout);
    assert!(
        r.stdout.contains("parallel_map then: Ok([0, 2, 4])"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("generate then: Ok([1, 2, 3])"), "{}", r.stdout);
}

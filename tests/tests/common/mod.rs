//! What the integration tests share: running a guest and collecting what it printed,
//! starting one and watching it, waiting for what must happen.
// Each test binary uses its own part of this.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use weft::{ExitStatus, OutputBuffer, RunHandle, RunOptions, Runtime};
use weft_tests::guest;

/// How a guest run ended and what it printed.
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// A runtime of `workers` workers for at most 64 live microthreads, with the
/// tests' compilation cache.
pub fn runtime(workers: usize) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .max_microthreads(64)
        .cache_dir(Some(weft_tests::cache_dir()))
        .build()
        .expect("a runtime")
}

/// Run the guest program `name` with `args` on `runtime`, collecting its output.
pub fn run_on(runtime: &Runtime, name: &str, args: &[&str]) -> Ran {
    run_with(runtime, name, args, RunOptions::new().program_name(name))
}

/// Run the guest program `name` with `args` and `options` on `runtime`, collecting
/// its output.
pub fn run_with(runtime: &Runtime, name: &str, args: &[&str], options: RunOptions) -> Ran {
    let program = runtime.load(guest(name)).expect("load");
    let (out, err) = (OutputBuffer::new(), OutputBuffer::new());
    let options = options
        .args(args.iter().copied())
        .stdout(out.clone())
        .stderr(err.clone());
    let status = program.run(&options).expect("run");
    Ran {
        status,
        stdout: out.to_string_lossy(),
        stderr: err.to_string_lossy(),
    }
}

/// The lines of `text`.
pub fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

/// Start guest `name` with `args` on `runtime`, with `options`; its stdout is
/// collected in the returned buffer.
pub fn start(runtime: &Runtime, name: &str, args: &[&str], options: RunOptions) -> (RunHandle, OutputBuffer) {
    let program = runtime.load(guest(name)).expect("load");
    let out = OutputBuffer::new();
    let options = options.args(args.iter().copied()).stdout(out.clone());
    (program.start(&options).expect("start"), out)
}

/// Wait (bounded: a hang fails the test) until `cond` holds.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A runtime of 2 workers (at most 64 live microthreads) that is node `name` of
/// the cluster at `server`, declared down after `timeout` of silence.
pub fn node_with_timeout(server: &weft_tests::nats::NatsServer, name: &str, timeout: Duration) -> Runtime {
    Runtime::builder()
        .workers(2)
        .max_microthreads(64)
        .cache_dir(Some(weft_tests::cache_dir()))
        .cluster(
            weft::cluster::ClusterConfig::new(server.url())
                .node_name(name)
                .node_timeout(timeout)
                .import_timeout(Duration::from_secs(20)),
        )
        .build()
        .expect("the node joins the cluster")
}

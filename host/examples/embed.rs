//! Embedding weft in a Rust application: start a guest program with arguments, an
//! environment and a deadline, collect its output, and handle how it ended.
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2 -p weft-examples --target-dir target/guest
//! cargo run -p weft --example embed -- target/guest/wasm32-wasip2/release/hello.wasm
//! ```

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use weft::{ExitStatus, OutputBuffer, Preemption, RunOptions, Runtime};

fn main() -> Result<()> {
    let Some(path) = std::env::args().nth(1) else {
        bail!("usage: embed GUEST.wasm [ARGS...]");
    };
    let args: Vec<String> = std::env::args().skip(2).collect();
    let status = run(&path, &args, &mut std::io::stdout())?;
    std::process::exit(status.code());
}

/// Run the guest at `path` with `args`, writing what happens to `out`.
pub fn run(path: &str, args: &[String], out: &mut impl Write) -> Result<ExitStatus> {
    // One runtime serves any number of programs and runs.
    let runtime = Runtime::builder()
        .workers(2)
        .preemption(Preemption::Fuel {
            slice: weft::DEFAULT_FUEL_SLICE,
        })
        .max_microthreads(1_000)
        .build()
        .context("setting up the runtime")?;
    let program = runtime.load(path).with_context(|| format!("loading {path}"))?;
    writeln!(out, "loaded {} ({:?})", program.name(), program.cache_status())?;

    let stdout = OutputBuffer::new();
    let options = RunOptions::new()
        .program_name(path)
        .args(args.iter().cloned())
        .env("FROM", "embed")
        .stdout(stdout.clone())
        // The application owns the run: it ends by itself, or after 30 s.
        .deadline(Duration::from_secs(30));
    // `start` returns at once; the guest runs on the runtime's workers meanwhile.
    let run = program.start(&options)?;
    // `run.cancel()` would stop it; dropping `run` would too. Here: wait.
    let status = run.wait();

    write!(out, "{}", stdout.to_string_lossy())?;
    match &status {
        ExitStatus::Exited(0) => writeln!(out, "the guest succeeded")?,
        ExitStatus::Exited(code) => writeln!(out, "the guest exited with {code}")?,
        ExitStatus::Failed(failure) => writeln!(out, "the guest failed: {}", failure.summary())?,
        ExitStatus::Deadlocked(report) => writeln!(out, "the guest deadlocked:\n{report}")?,
        ExitStatus::DeadlineExceeded => writeln!(out, "the guest ran out of time")?,
        other => writeln!(out, "the guest ended: {other:?}")?,
    }
    Ok(status)
}

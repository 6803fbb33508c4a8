//! Embedding weft in a Rust application: run a guest program with arguments and an
//! environment, collect its output, and handle how it ended.
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2 -p weft-examples --target-dir target/guest
//! cargo run -p weft --example embed -- target/guest/wasm32-wasip2/release/hello.wasm
//! ```

use anyhow::{Context, Result, bail};
use weft::{ExitStatus, OutputBuffer, Preemption, RunOptions, Runtime};

fn main() -> Result<()> {
    let Some(path) = std::env::args().nth(1) else {
        bail!("usage: embed GUEST.wasm [ARGS...]");
    };
    let args: Vec<String> = std::env::args().skip(2).collect();

    // One runtime serves any number of programs and runs.
    let runtime = Runtime::builder()
        .workers(2)
        .preemption(Preemption::Fuel {
            slice: weft::DEFAULT_FUEL_SLICE,
        })
        .max_microthreads(1_000)
        .build()
        .context("setting up the runtime")?;
    let program = runtime.load(&path).with_context(|| format!("loading {path}"))?;
    println!("loaded {} ({:?})", program.name(), program.cache_status());

    let stdout = OutputBuffer::new();
    let options = RunOptions::new()
        .program_name(&path)
        .args(args)
        .env("FROM", "embed")
        .stdout(stdout.clone());
    let status = program.run(&options)?;

    print!("{}", stdout.to_string_lossy());
    match status {
        ExitStatus::Exited(0) => println!("the guest succeeded"),
        ExitStatus::Exited(code) => println!("the guest exited with {code}"),
        ExitStatus::Failed(failure) => println!("the guest failed: {}", failure.summary()),
        ExitStatus::Deadlocked(report) => println!("the guest deadlocked:\n{report}"),
        other => println!("the guest ended: {other:?}"),
    }
    Ok(())
}

//! An application that embeds weft: it loads a guest program (`examples/src/bin/workers.rs`),
//! feeds it work over a host channel from tokio, collects the results, looks at the
//! live view while the guest works, cancels a second program from outside, and
//! shuts down cleanly.
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2 -p weft-examples --target-dir target/guest
//! cargo run -p weft --example embed -- target/guest/wasm32-wasip2/release/workers.wasm
//! ```

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use weft::{ExitStatus, MicrothreadState, OutputBuffer, RunOptions, Runtime};

fn main() -> Result<()> {
    let Some(path) = std::env::args().nth(1) else {
        bail!("usage: embed WORKERS.wasm");
    };
    let status = run(&path, &mut std::io::stdout())?;
    std::process::exit(status.code());
}

/// Run the workers guest at `path`, writing what happens to `out`.
pub fn run(path: &str, out: &mut impl Write) -> Result<ExitStatus> {
    // One runtime serves any number of programs and runs.
    let runtime = Runtime::builder()
        .workers(2)
        .max_microthreads(1_000)
        .build()
        .context("setting up the runtime")?;
    let program = runtime.load(path).with_context(|| format!("loading {path}"))?;

    // The application's ends of two channels; the guest gets the other ends.
    let (jobs, jobs_for_guest) = weft::channel::<String>(16);
    let (results_for_guest, results) = weft::channel::<(String, usize)>(16);
    let guest_out = OutputBuffer::new();
    let options = RunOptions::new()
        .arg("4")
        .receiver("jobs", jobs_for_guest)
        .sender("results", results_for_guest)
        .stdout(guest_out.clone())
        // The application owns the run: it ends by itself, or after 30 s.
        .deadline(Duration::from_secs(30));
    // `start` returns at once; the guest runs on weft's workers meanwhile.
    let workers = program.start(&options)?;

    // A second program, which the application will cancel from outside.
    let (_idle_jobs, idle_jobs) = weft::channel::<String>(0);
    let (idle_results, _results) = weft::channel::<(String, usize)>(0);
    let idle = program.start(
        &RunOptions::new()
            .receiver("jobs", idle_jobs)
            .sender("results", idle_results)
            .stdout(OutputBuffer::new()),
    )?;

    // The application's own async code (here on a tokio runtime of its own) talks
    // to the guest over the channels.
    let app = tokio::runtime::Runtime::new().context("starting the application's tokio")?;
    let (total, live) = app.block_on(async {
        let texts = ["one two three", "the quick brown fox", "weft", "a b c d e f"];
        let feeder = tokio::spawn(async move {
            for i in 0..100 {
                let text = texts[i % texts.len()].to_string();
                if jobs.send(text).await.is_err() {
                    break;
                }
            }
            // Dropping `jobs` closes it: the workers finish.
        });
        let mut total = 0;
        let mut live = Vec::new();
        let mut received = 0;
        while let Ok((_text, words)) = results.recv().await {
            total += words;
            received += 1;
            if received == 50 {
                // Halfway: what is each microthread doing?
                live = workers.microthreads();
            }
        }
        feeder.await.context("the feeder")?;
        anyhow::Ok((total, live))
    })?;
    writeln!(out, "words counted by the guest: {total}")?;
    writeln!(out, "halfway, {} microthreads were alive:", live.len())?;
    for m in &live {
        let what = match &m.state {
            MicrothreadState::Receiving { .. } => "receiving".to_string(),
            MicrothreadState::Sending { .. } => "sending".to_string(),
            other => other.to_string(),
        };
        writeln!(
            out,
            "  microthread {} {:?}: {what}",
            m.id,
            m.name.as_deref().unwrap_or("-")
        )?;
    }

    let status = workers.wait();
    write!(out, "{}", guest_out.to_string_lossy())?;
    writeln!(out, "the workers ended: {status:?}")?;

    // The second program waits for jobs that never come: cancel it.
    idle.cancel();
    writeln!(out, "the idle program ended: {:?}", idle.wait())?;
    // Dropping the runtime (and the program) shuts weft down cleanly.
    drop(program);
    drop(runtime);
    writeln!(out, "shut down")?;
    Ok(status)
}

//! The `weft` command line: a thin layer over the library, the same API an embedder
//! uses.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use weft::{ExitStatus, Preemption, RunOptions, Runtime};

/// Run WebAssembly programs as preemptively scheduled microthreads.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a wasm32-wasip2 component: a weft guest, or any plain WASI command.
    ///
    /// The program's `main` runs as microthread 0; the microthreads it spawns are
    /// instances of the same component. The exit code is the guest's: what `main`
    /// returned or passed to `exit`, 134 if `main` failed (trap, panic, or a child's
    /// failure nobody joined), 130 on Ctrl-C.
    Run(RunArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The component to run (`.wasm`).
    file: PathBuf,

    /// Arguments passed to the guest (after `--`).
    #[arg(last = true)]
    args: Vec<OsString>,

    /// Fuel units a microthread runs before it yields to the scheduler. Smaller is
    /// fairer to other microthreads, larger costs less on compute.
    #[arg(long, value_name = "UNITS", default_value_t = weft::DEFAULT_FUEL_SLICE, conflicts_with = "no_preempt")]
    fuel_slice: u64,

    /// Turn preemption (and fuel metering) off: a microthread runs until it calls the
    /// host. A loop that never does starves the others on its worker.
    #[arg(long)]
    no_preempt: bool,

    /// Worker threads that run microthreads [default: one per core].
    #[arg(long, value_name = "N")]
    workers: Option<usize>,

    /// Maximum number of live microthreads; a spawn past it returns an error to the
    /// guest.
    #[arg(long, value_name = "N", default_value_t = weft::Limits::default().max_microthreads)]
    max_microthreads: u32,

    /// Maximum linear memory per microthread, e.g. 64MiB, 1GiB, or bytes.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_memory: Option<u64>,

    /// Set an environment variable for the guest: `K=V`, or `K` to pass the host's
    /// value of K. Nothing else of the host's environment is visible. Repeatable.
    #[arg(long = "env", value_name = "K[=V]")]
    env: Vec<String>,
}

/// Parse `123`, `64K`, `64KiB`, `16M`, `16MiB`, `1G`, `1GiB` (binary units).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 64MiB)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => {
            return Err(format!(
                "`{s}`: unknown unit `{unit}` (use KiB, MiB or GiB)"
            ));
        }
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("`{s}` is too large"))
}

impl Cli {
    /// Run the command; returns the process exit code.
    pub fn run(self) -> Result<i32> {
        match self.command {
            Command::Run(args) => run(args),
        }
    }
}

fn run(args: RunArgs) -> Result<i32> {
    let mut builder = Runtime::builder().max_microthreads(args.max_microthreads);
    builder = builder.preemption(if args.no_preempt {
        Preemption::Off
    } else {
        Preemption::Fuel {
            slice: args.fuel_slice,
        }
    });
    if let Some(workers) = args.workers {
        builder = builder.workers(workers);
    }
    if let Some(bytes) = args.max_memory {
        builder = builder.max_memory(bytes);
    }
    let runtime = builder.build().context("cannot set up the runtime")?;

    let mut options = RunOptions::new()
        .program_name(args.file.display().to_string())
        .interrupt_on_ctrl_c(true);
    for arg in &args.args {
        let Some(arg) = arg.to_str() else {
            bail!("argument {arg:?} is not valid UTF-8, which WASI requires");
        };
        options = options.arg(arg);
    }
    for spec in &args.env {
        options = match spec.split_once('=') {
            Some((k, v)) if !k.is_empty() => options.env(k, v),
            Some(_) => bail!("--env `{spec}`: the variable name is empty"),
            None => match std::env::var(spec) {
                Ok(v) => options.env(spec, v),
                Err(_) => bail!(
                    "--env `{spec}`: the host has no variable `{spec}` to pass (or it is not UTF-8)"
                ),
            },
        };
    }

    let program = runtime.load(&args.file)?;
    let status = program.run(&options)?;
    match &status {
        ExitStatus::Failed(failure) => eprintln!("error: {failure}"),
        ExitStatus::Interrupted => eprintln!("weft: interrupted"),
        ExitStatus::Deadlocked(report) => {
            eprintln!(
                "error: deadlock: every microthread is blocked and nothing can wake any of them:"
            );
            const SHOWN: usize = 40;
            for line in report.lines().take(SHOWN) {
                eprintln!("  {line}");
            }
            let more = report.lines().count().saturating_sub(SHOWN);
            if more > 0 {
                eprintln!("  … and {more} more microthreads");
            }
        }
        _ => {}
    }
    Ok(status.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

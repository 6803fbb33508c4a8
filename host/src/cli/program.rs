//! From flags to a running start: the runtime `weft run`, `weft test` and `weft
//! compile` build for a program, the program loaded into it, and the run's options.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use weft::{Preemption, RunOptions, Runtime};

use super::args::{EngineArgs, ProgramArgs};

/// The runtime for `program` (its bytes, when known): a program that cannot spawn
/// gets a pool for one microthread, unless the user asked otherwise, and runs
/// unmetered unless it needs fuel (`metered`: a fuel budget was asked for). Its
/// pool is for `at_once` runs: each its --max-microthreads, or, by default, a share
/// of the default.
pub(super) fn runtime(
    engine: &EngineArgs,
    workers: Option<usize>,
    program: Option<&[u8]>,
    metered: bool,
    at_once: u32,
    cluster: Option<weft::cluster::ClusterConfig>,
    serves: bool,
) -> Result<Runtime> {
    // A server's requests are microthreads, each of its own, whatever it imports.
    let cannot_spawn = !serves && program.and_then(weft::runs_alone) == Some(true);
    let max = match engine.max_microthreads {
        Some(n) => n.checked_mul(at_once).with_context(|| {
            format!("{at_once} runs at once of {n} microthreads each are too many: lower --jobs")
        })?,
        None if cannot_spawn => at_once,
        // The default is what the kernel's map count allows in one process: runs
        // at once share it out.
        None => weft::Limits::default().max_microthreads,
    };
    if engine.no_preempt && metered {
        bail!("a fuel budget needs fuel metering, which --no-preempt turns off");
    }
    let preemption = match engine.fuel_slice {
        _ if engine.no_preempt => Preemption::Off,
        Some(slice) => Preemption::Fuel { slice },
        None if cannot_spawn && !metered => Preemption::Off,
        None => Preemption::Fuel {
            slice: weft::DEFAULT_FUEL_SLICE,
        },
    };
    // One runtime in its own process: it may take half of the address space, which
    // gives the default 10,000 microthreads 4 GiB memory slots (no bounds checks).
    // A program that cannot spawn, unmetered, runs without epoch checks too (as
    // fast as under `wasmtime run`): Ctrl-C or --timeout end it by ending the process.
    let mut builder = Runtime::builder()
        .epoch_interruption(!(cannot_spawn && preemption == Preemption::Off))
        .address_space(64 << 40)
        .max_microthreads(max)
        .use_cache(!engine.no_cache)
        .preemption(preemption);
    if let Some(bytes) = program {
        // Room in the pool for what each microthread of this program takes.
        builder = builder.pool_for(bytes);
    }
    if let Some(workers) = workers {
        builder = builder.workers(workers);
    }
    if let Some(bytes) = engine.max_memory {
        builder = builder.max_memory(bytes);
    }
    if let Some(bytes) = engine.max_message_size {
        let bytes =
            u32::try_from(bytes).map_err(|_| anyhow::anyhow!("--max-message-size: at most 4GiB - 1"))?;
        builder = builder.max_message_size(bytes);
    }
    if let Some(config) = cluster {
        builder = builder.cluster(config);
    }
    builder.build().context("cannot set up the runtime")
}

/// Load a program, saying "compiling …" on a terminal while it compiles, with the
/// seconds it has taken so far (a big program, a Python one say, takes some: only
/// the first time, then it is cached).
fn load(runtime: &Runtime, bytes: &[u8], file: &std::path::Path) -> Result<weft::Program> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let terminal = std::io::stderr().is_terminal();
    let done = Arc::new(AtomicBool::new(false));
    let (mut shown, mut ticker) = (false, None);
    let program = runtime.compile_with(bytes, &file.display().to_string(), || {
        if !terminal {
            return;
        }
        let (done, name) = (done.clone(), file.display().to_string());
        let started = std::time::Instant::now();
        eprint!("compiling {name}… (once: it is cached)");
        shown = true;
        let ticking = std::thread::Builder::new()
            .name("weft-compiling".into())
            .spawn(move || {
                while !done.load(Ordering::Acquire) {
                    std::thread::park_timeout(std::time::Duration::from_secs(1));
                    if !done.load(Ordering::Acquire) {
                        let seconds = started.elapsed().as_secs();
                        eprint!("\r\x1b[Kcompiling {name}… {seconds} s (once: it is cached)");
                    }
                }
            });
        match ticking {
            Ok(thread) => ticker = Some(thread),
            // It still compiles: only the seconds go unshown.
            Err(e) => tracing::debug!(target: "weft::cli", "no compile ticker: {e}"),
        }
    });
    done.store(true, Ordering::Release);
    if let Some(ticker) = ticker {
        ticker.thread().unpark();
        if ticker.join().is_err() {
            tracing::debug!(target: "weft::cli", "the compile ticker panicked");
        }
    }
    if shown {
        eprint!("\r\x1b[K");
    }
    Ok(program?)
}

/// `HOST` or `HOST::GUEST`.
fn grant(spec: &str) -> Result<(PathBuf, String)> {
    let (host, guest) = match spec.split_once("::") {
        Some((h, g)) => (h, g),
        None => (spec, spec),
    };
    if host.is_empty() || guest.is_empty() {
        bail!("--dir `{spec}`: expected HOST or HOST::GUEST");
    }
    Ok((PathBuf::from(host), guest.to_string()))
}

impl ProgramArgs {
    /// The run's options, but for what only `weft run` decides (Ctrl-C, seeds,
    /// stdio, network grants).
    pub(super) fn options(&self) -> Result<RunOptions> {
        // A flag given sets its option; one left out leaves the library's default.
        fn given<T>(
            options: RunOptions,
            flag: Option<T>,
            set: fn(RunOptions, T) -> RunOptions,
        ) -> RunOptions {
            match flag {
                Some(value) => set(options, value),
                None => options,
            }
        }
        let mut options = RunOptions::new().program_name(self.file().display().to_string());
        options = given(options, self.timeout, RunOptions::deadline);
        options = given(options, self.fuel_budget, RunOptions::fuel_budget);
        options = given(
            options,
            self.fuel_budget_per_microthread,
            RunOptions::fuel_budget_per_microthread,
        );
        options = given(options, self.max_buffered, RunOptions::max_buffered_bytes);
        options = given(options, self.max_channels, RunOptions::max_channels);
        options = given(options, self.grace, RunOptions::shutdown_grace);
        options = given(options, self.max_sockets, RunOptions::max_sockets);
        options = given(options, self.max_handles, RunOptions::max_handles);
        options = given(options, self.max_run_handles, RunOptions::max_run_handles);
        for arg in self.guest_args() {
            let Some(arg) = arg.to_str() else {
                bail!("argument {arg:?} is not valid UTF-8, which WASI requires");
            };
            options = options.arg(arg);
        }
        for spec in &self.env {
            options = match spec.split_once('=') {
                Some((k, v)) if !k.is_empty() => options.env(k, v),
                Some(_) => bail!("--env `{spec}`: the variable name is empty"),
                None => match std::env::var(spec) {
                    Ok(v) => options.env(spec, v),
                    Err(_) => {
                        bail!(
                            "--env `{spec}`: the host has no variable `{spec}` to pass (or it is not UTF-8)"
                        )
                    }
                },
            };
        }
        for spec in &self.dirs {
            let (host, guest) = grant(spec)?;
            options = options.dir(host, guest);
        }
        for spec in &self.dirs_read_only {
            let (host, guest) = grant(spec)?;
            options = options.dir_read_only(host, guest);
        }
        Ok(options)
    }

    /// The runtime and the loaded program. `deterministic`: the program's runs are
    /// deterministic, and so metered.
    /// `at_once`: runs of it at once, each with its own live-microthread limit.
    pub(super) fn load(
        &self,
        workers: Option<usize>,
        deterministic: bool,
        at_once: u32,
        cluster: Option<weft::cluster::ClusterConfig>,
    ) -> Result<(Runtime, weft::Program)> {
        self.load_for(workers, deterministic, at_once, cluster, false)
    }

    /// The runtime and the loaded program, to serve HTTP: every request is a
    /// microthread, preempted by fuel.
    pub(super) fn load_to_serve(&self, workers: Option<usize>) -> Result<(Runtime, weft::Program)> {
        self.load_for(workers, false, 1, None, true)
    }

    fn load_for(
        &self,
        workers: Option<usize>,
        deterministic: bool,
        at_once: u32,
        cluster: Option<weft::cluster::ClusterConfig>,
        serves: bool,
    ) -> Result<(Runtime, weft::Program)> {
        let file = self.file();
        if deterministic && self.engine.no_preempt {
            bail!("deterministic runs need fuel metering, which --no-preempt turns off");
        }
        let bytes = std::fs::read(&file).ok();
        let runtime = runtime(
            &self.engine,
            workers,
            bytes.as_deref(),
            self.metered() || deterministic,
            at_once,
            cluster,
            serves,
        )?;
        let program = match bytes {
            Some(bytes) => load(&runtime, &bytes, &file)?,
            // Unreadable: let the library say why, in its words.
            None => runtime.load(&file)?,
        };
        tracing::info!(target: "weft::cache", status = ?program.cache_status(), "loaded {}", program.name());
        Ok((runtime, program))
    }
}

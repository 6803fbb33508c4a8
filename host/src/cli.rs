//! The `weft` command line: a thin layer over the library, the same API an embedder
//! uses.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use weft::cli_values::{parse_duration, parse_seeds, parse_size};
use weft::{ExitStatus, Preemption, RunOptions, Runtime};

mod explore;

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
    /// failure nobody joined, an exhausted fuel budget), 70 on a deadlock, 124 when
    /// --timeout passes, 130 on Ctrl-C, 143 on SIGTERM (after --grace for cleanup),
    /// 141 when its stdout is a pipe nobody reads any more (`| head`), as SIGPIPE.
    /// FILE may also be a precompiled `.cwasm` from
    /// `weft compile`. weft's own options go before FILE; everything after it goes
    /// to the guest, as with `wasmtime run`.
    Run(RunArgs),
    /// Run a program deterministically under many seeds, in parallel over the
    /// cores, to find a schedule under which it fails.
    ///
    /// Each seed is one `weft run --seed N` of FILE with ARGS: exit 0 passes;
    /// anything else (a non-zero exit, a failure, a deadlock, --timeout) fails. At
    /// the first failure no new seed starts; weft prints the lowest failing seed,
    /// its output and the command that replays it, and exits with its exit code.
    /// All pass: exit 0, with the count.
    Test(TestArgs),
    /// Compile a component ahead of time into a `.cwasm` that `weft run` loads
    /// without compiling. Use the same engine flags as for `run`.
    Compile(CompileArgs),
    /// The compilation cache: `weft cache dir` shows where it is, `weft cache clear`
    /// empties it.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
}

impl Command {
    /// The subcommand's name on the command line.
    fn name(&self) -> &'static str {
        match self {
            Command::Run(_) => "run",
            Command::Test(_) => "test",
            Command::Compile(_) => "compile",
            Command::Cache { .. } => "cache",
        }
    }
}

#[derive(Debug, Subcommand)]
enum CacheAction {
    /// Print the cache directory.
    Dir,
    /// Remove every compiled program from the cache.
    Clear,
}

/// Settings that shape the engine, and so the compiled code.
#[derive(Debug, Args)]
struct EngineArgs {
    /// Fuel units a microthread runs before it yields to the scheduler. Smaller is
    /// fairer to other microthreads, larger costs less on compute [default: 100000;
    /// none for a program that does not import weft:runtime: it is one microthread,
    /// with nobody to be fair to, and runs unmetered].
    #[arg(long, value_name = "UNITS", conflicts_with = "no_preempt")]
    fuel_slice: Option<u64>,

    /// Turn preemption (and fuel metering) off: a microthread runs until it calls the
    /// host. A loop that never does starves the others on its worker.
    #[arg(long)]
    no_preempt: bool,

    /// Maximum number of live microthreads; a spawn past it returns an error to the
    /// guest [default: 10000; 1 for a program that does not import weft:runtime,
    /// which cannot spawn].
    #[arg(long, value_name = "N")]
    max_microthreads: Option<u32>,

    /// Maximum linear memory per microthread, e.g. 64MiB, 1GiB, or bytes
    /// [default: 256MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_memory: Option<u64>,

    /// Maximum size of a message or spawn argument, e.g. 1MiB.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_message_size: Option<u64>,

    /// Do not look up or store compiled programs in the cache.
    #[arg(long)]
    no_cache: bool,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    program: ProgramArgs,

    /// Print the run's counters to stderr when it ends: microthreads spawned, peak
    /// live, finished, failed, messages sent.
    #[arg(long)]
    stats: bool,

    /// Worker threads that run microthreads [default: one per core; a
    /// deterministic run has one thread of its own].
    #[arg(long, value_name = "N")]
    workers: Option<usize>,

    /// Run deterministically: every scheduling choice (which ready microthread runs
    /// next, which ready case a select takes, where a fuel slice ends) comes from a
    /// PRNG seeded with --seed (default 0); the guest's clocks are virtual (they
    /// start at fixed values, advance with the fuel burnt, and jump ahead when
    /// every microthread waits for a timer) and its random source is seeded. The
    /// same program, seed and input give byte-identical output and exit code.
    /// Stdin, granted files and --timeout are not virtual.
    #[arg(long)]
    deterministic: bool,

    /// The seed of a deterministic run; implies --deterministic.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,

    /// Write the schedule of a deterministic run to FILE, a line per slice: which
    /// microthread ran and why it stopped (yielded, blocked on what, finished).
    #[arg(long, value_name = "FILE")]
    trace_schedule: Option<PathBuf>,

    /// Let the guest listen on ADDR:PORTS: an IP address (IPv6 in brackets), a name
    /// such as localhost, or * for any address; a port, a range 8000-8100, or *.
    /// Covers weft's sockets and std::net alike. Repeatable; nothing is allowed
    /// without a grant.
    #[arg(long = "listen", value_name = "ADDR:PORTS", value_parser = parse_grant)]
    listen: Vec<weft::net::Grant>,

    /// Let the guest connect to ADDR:PORTS (as --listen). Repeatable.
    #[arg(long = "connect", value_name = "ADDR:PORTS", value_parser = parse_grant)]
    connect: Vec<weft::net::Grant>,
}

#[derive(Debug, Args)]
struct TestArgs {
    /// The seeds to run: a range `A..B` (B excluded), `A..=B`, or a count `N`
    /// (seeds 0 to N-1).
    #[arg(long, value_name = "A..B|N", value_parser = parse_seeds, default_value = "100")]
    seeds: std::ops::Range<u64>,

    /// Seeds run at once [default: one per core]. Each seed has a limit of live
    /// microthreads of its own, which the seeds beside it never take from:
    /// --max-microthreads, or by default 10000 shared out among the seeds run at
    /// once (the replay command says which).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,

    #[command(flatten)]
    program: ProgramArgs,
}

/// What a program is run with, by `weft run` and by `weft test`.
#[derive(Debug, Args)]
struct ProgramArgs {
    /// The component to run (`.wasm`) or a precompiled `.cwasm`, then the arguments
    /// passed to the guest: everything after FILE, flags included (a `--` right
    /// after FILE is dropped, for compatibility).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "FILE [ARGS]"
    )]
    file_and_args: Vec<OsString>,

    #[command(flatten)]
    engine: EngineArgs,

    /// Stop the program after this long, e.g. 5s, 500ms, 2m; it exits with 124.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,

    /// Fuel the program may consume, all its microthreads together (about one unit
    /// per wasm instruction); past it, the program is stopped with a failure that
    /// says "fuel budget exhausted" (exit 134).
    #[arg(long, value_name = "UNITS")]
    fuel_budget: Option<u64>,

    /// Fuel each microthread may consume; one that uses it up fails alone.
    #[arg(long, value_name = "UNITS")]
    fuel_budget_per_microthread: Option<u64>,

    /// Bytes the program's channels may hold buffered, all together, e.g. 64MiB
    /// [default: 256MiB]; a send past it waits as if its channel were full.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_buffered: Option<u64>,

    /// Channels the program may have open at once [default: 1048576].
    #[arg(long, value_name = "N")]
    max_channels: Option<u32>,

    /// How long the microthreads still running when the program ends (Ctrl-C,
    /// SIGTERM, --timeout, or detached ones when main ends) get for their cleanup
    /// before they are stopped [default: 2s; none for a program that does not
    /// import weft:runtime, which cannot see its cancellation].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    grace: Option<Duration>,

    /// Set an environment variable for the guest: `K=V`, or `K` to pass the host's
    /// value of K. Nothing else of the host's environment is visible. Repeatable.
    #[arg(long = "env", value_name = "K[=V]")]
    env: Vec<String>,

    /// Grant the guest a host directory, read-write: `HOST` (seen as the same path)
    /// or `HOST::GUEST`. Nothing of the host's file system is visible otherwise.
    /// Repeatable.
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    dirs: Vec<String>,

    /// Like --dir, read-only: writes fail in the guest with a permission error.
    #[arg(long = "dir-ro", value_name = "HOST[::GUEST]")]
    dirs_read_only: Vec<String>,

    /// Sockets the program may have open at once, listeners and connections
    /// together [default: 10000].
    #[arg(long, value_name = "N")]
    max_sockets: Option<u32>,

    /// Handles each microthread may hold at once: join handles, channel ends and
    /// sockets together [default: 1048576].
    #[arg(long, value_name = "N")]
    max_handles: Option<u32>,

    /// Handles the program's microthreads may hold at once, all together: join
    /// handles, channel ends and sockets [default: 1048576].
    #[arg(long, value_name = "N")]
    max_run_handles: Option<u32>,
}

fn parse_grant(s: &str) -> Result<weft::net::Grant, String> {
    weft::net::Grant::parse(s).map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
struct CompileArgs {
    /// The component to compile (`.wasm`).
    file: PathBuf,

    /// Where to write the precompiled program.
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,

    #[command(flatten)]
    engine: EngineArgs,
}

/// Write a line to stderr. A closed stderr (`weft run … 2>&1 | head`) is not
/// weft's failure: the line is dropped, and the exit code stays the program's.
fn report(line: std::fmt::Arguments<'_>) {
    let _closed = writeln!(std::io::stderr(), "{line}");
}

/// An error and its causes on one line, each said once: a cause whose text the
/// message before it already holds (`cannot read x: No such file…`) is not repeated.
pub fn message(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

impl Cli {
    /// The command line of this process, parsed; a usage error ends the process
    /// as clap does (the message, then exit code 2).
    pub fn parse_args() -> Cli {
        let args: Vec<OsString> = std::env::args_os().collect();
        let cli = Cli::try_parse_from(&args).unwrap_or_else(|e| e.exit());
        if let Some(flag) = cli.flag_as_file() {
            // FILE takes values that start with `-` (those after it are the
            // guest's), so a mistyped weft flag before it was read as the file. Parse
            // again without that, for clap's own error and its "similar argument" tip.
            let subcommand = cli.command.name();
            let strict = <Cli as clap::CommandFactory>::command().mut_subcommand(subcommand, |c| {
                c.mut_arg("file_and_args", |a| a.allow_hyphen_values(false))
            });
            if let Err(e) = strict.clone().try_get_matches_from(&args) {
                e.exit();
            }
            strict
                .clone()
                .error(
                    clap::error::ErrorKind::UnknownArgument,
                    format!("unexpected argument '{flag}' where FILE was expected"),
                )
                .exit();
        }
        cli
    }

    /// The program's "file", when it is a flag.
    fn flag_as_file(&self) -> Option<String> {
        let program = match &self.command {
            Command::Run(args) => &args.program,
            Command::Test(args) => &args.program,
            _ => return None,
        };
        let file = program.file_and_args.first()?.to_string_lossy();
        (file.starts_with('-') && file.len() > 1).then(|| file.into_owned())
    }

    /// Run the command; returns the process exit code.
    pub fn run(self) -> Result<i32> {
        match self.command {
            Command::Run(args) => run(args),
            Command::Test(args) => explore::test(args),
            Command::Compile(args) => compile(args),
            Command::Cache { action } => cache(action),
        }
    }
}

/// The runtime for `program` (its bytes, when known): a program that cannot spawn
/// gets a pool for one microthread, unless the user asked otherwise, and runs
/// unmetered unless it needs fuel (`metered`: a fuel budget was asked for). Its
/// pool is for `at_once` runs: each its --max-microthreads, or, by default, a share
/// of the default.
fn runtime(
    engine: &EngineArgs,
    workers: Option<usize>,
    program: Option<&[u8]>,
    metered: bool,
    at_once: u32,
) -> Result<Runtime> {
    let cannot_spawn = program.and_then(weft::imports_weft) == Some(false);
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
    builder.build().context("cannot set up the runtime")
}

/// Load a program, saying "compiling …" on a terminal while it compiles.
fn load(runtime: &Runtime, bytes: &[u8], file: &std::path::Path) -> Result<weft::Program> {
    let terminal = std::io::stderr().is_terminal();
    let mut shown = false;
    let program = runtime.compile_with(bytes, &file.display().to_string(), || {
        if terminal {
            eprint!("compiling {}…", file.display());
            shown = true;
        }
    });
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
    /// The program's file.
    fn file(&self) -> PathBuf {
        PathBuf::from(&self.file_and_args[0])
    }

    /// The guest's arguments. `weft run app.wasm -- a b`, as before arguments
    /// followed the file: the `--` goes.
    fn guest_args(&self) -> &[OsString] {
        match self.file_and_args.get(1) {
            Some(first) if first == "--" => &self.file_and_args[2..],
            _ => &self.file_and_args[1..],
        }
    }

    /// Whether a fuel budget was asked for.
    fn metered(&self) -> bool {
        self.fuel_budget.is_some() || self.fuel_budget_per_microthread.is_some()
    }

    /// The run's options, but for what only `weft run` decides (Ctrl-C, seeds,
    /// stdio, network grants).
    fn options(&self) -> Result<RunOptions> {
        let mut options = RunOptions::new().program_name(self.file().display().to_string());
        if let Some(timeout) = self.timeout {
            options = options.deadline(timeout);
        }
        if let Some(units) = self.fuel_budget {
            options = options.fuel_budget(units);
        }
        if let Some(units) = self.fuel_budget_per_microthread {
            options = options.fuel_budget_per_microthread(units);
        }
        if let Some(bytes) = self.max_buffered {
            options = options.max_buffered_bytes(bytes);
        }
        if let Some(n) = self.max_channels {
            options = options.max_channels(n);
        }
        if let Some(grace) = self.grace {
            options = options.shutdown_grace(grace);
        }
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
        if let Some(n) = self.max_sockets {
            options = options.max_sockets(n);
        }
        if let Some(n) = self.max_handles {
            options = options.max_handles(n);
        }
        if let Some(n) = self.max_run_handles {
            options = options.max_run_handles(n);
        }
        Ok(options)
    }

    /// The runtime and the loaded program. `deterministic`: the program's runs are
    /// deterministic, and so metered.
    /// `at_once`: runs of it at once, each with its own live-microthread limit.
    fn load(
        &self,
        workers: Option<usize>,
        deterministic: bool,
        at_once: u32,
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

/// Say how a run ended, on stderr, when it did not end well.
fn report_status(status: &ExitStatus, timeout: Option<Duration>) {
    match status {
        ExitStatus::Failed(failure) => report(format_args!("error: {failure}")),
        ExitStatus::Interrupted => report(format_args!("weft: interrupted")),
        ExitStatus::Terminated => report(format_args!("weft: terminated")),
        ExitStatus::DeadlineExceeded => report(format_args!(
            "weft: timed out after {}",
            humantime::format_duration(timeout.unwrap_or_default())
        )),
        ExitStatus::Deadlocked(lines) => {
            report(format_args!(
                "error: deadlock: every microthread is blocked and nothing can wake any of them:"
            ));
            const SHOWN: usize = 40;
            for line in lines.lines().take(SHOWN) {
                report(format_args!("  {line}"));
            }
            let more = lines.lines().count().saturating_sub(SHOWN);
            if more > 0 {
                report(format_args!("  … and {more} more microthreads"));
            }
        }
        _ => {}
    }
}

/// A writer shared between the run (which writes the schedule trace) and `weft
/// run` (which flushes it at the end and says if that failed).
#[derive(Clone)]
struct SharedFile(std::sync::Arc<std::sync::Mutex<std::io::BufWriter<std::fs::File>>>);

impl SharedFile {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::io::BufWriter<std::fs::File>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Write for SharedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lock().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.lock().flush()
    }
}

fn run(args: RunArgs) -> Result<i32> {
    let deterministic = args.deterministic || args.seed.is_some();
    if deterministic && args.workers.is_some_and(|w| w != 1) {
        bail!("a deterministic run has one worker: --workers must be 1 (or left out)");
    }
    if args.trace_schedule.is_some() && !deterministic {
        bail!("--trace-schedule is for deterministic runs: add --deterministic or --seed N");
    }
    let workers = if deterministic { Some(1) } else { args.workers };
    let mut options = args.program.options()?.interrupt_on_ctrl_c(true).inherit_stdio();
    for grant in &args.listen {
        options = options.listen(grant.clone());
    }
    for grant in &args.connect {
        options = options.connect(grant.clone());
    }
    if deterministic {
        options = options.deterministic(args.seed.unwrap_or(0));
    }
    let trace = match &args.trace_schedule {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("--trace-schedule: cannot create {}", path.display()))?;
            let shared = SharedFile(std::sync::Arc::new(std::sync::Mutex::new(
                std::io::BufWriter::new(file),
            )));
            options = options.trace_schedule(shared.clone());
            Some((shared, path))
        }
        None => None,
    };
    let (runtime, program) = args.program.load(workers, deterministic, 1)?;
    // Listening before the program starts: a SIGQUIT as soon as it prints must not
    // find the default action (ending the process) still there.
    let shown = show_microthreads_on_sigquit();
    let mut run = program.start(&options)?;
    shown.get_or_init(|| run.view());
    let status = if args.stats {
        // Awaited by reference: the handle keeps the run, whose counters are read
        // once it has ended (a view does not keep it).
        let status = tokio::runtime::Builder::new_current_thread()
            .build()
            .context("--stats: cannot start a runtime to wait on")?
            .block_on(&mut run);
        report(format_args!("weft: {}", run.stats()));
        status
    } else {
        run.wait()
    };
    report_status(&status, args.program.timeout);
    if let Some((mut trace, path)) = trace
        && let Err(e) = trace.flush()
    {
        report(format_args!(
            "weft: the schedule trace in {} is incomplete: {e}",
            path.display()
        ));
    }
    // The process ends now: tearing the instance pool down would only cost time
    // (dropping it is prompt and correct too, but unmaps every slot).
    std::mem::forget(program);
    std::mem::forget(runtime);
    Ok(status.code())
}

/// On SIGQUIT (Ctrl-\\), print what every live microthread of the run whose view
/// is put in the returned slot is doing to stderr, as Go does for its goroutines,
/// and carry on.
fn show_microthreads_on_sigquit() -> std::sync::Arc<std::sync::OnceLock<weft::RunView>> {
    let slot = std::sync::Arc::new(std::sync::OnceLock::new());
    listen_to_sigquit(slot.clone());
    slot
}

/// Listen to SIGQUIT from now on, on a thread of its own, showing `view`'s table.
fn listen_to_sigquit(view: std::sync::Arc<std::sync::OnceLock<weft::RunView>>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        // Without the listener, SIGQUIT keeps its default: the process ends.
        let cannot =
            |e: std::io::Error| report(format_args!("weft: Ctrl-\\ will not show the microthreads: {e}"));
        let rt = match tokio::runtime::Builder::new_current_thread().enable_io().build() {
            Ok(rt) => rt,
            Err(e) => return cannot(e),
        };
        // Listening from now on, before the program runs far.
        let mut quit = match rt.block_on(async { signal(SignalKind::quit()) }) {
            Ok(quit) => quit,
            Err(e) => return cannot(e),
        };
        let listen = move || {
            // A SIGQUIT before the run has started waits for it (the signal is
            // kept); should it not start, the process ends with its error.
            let view = view.wait();
            rt.block_on(async {
                while quit.recv().await.is_some() {
                    let stats = view.stats();
                    report(format_args!(
                        "weft: {} live microthreads (SIGQUIT; the program carries on):\n{}weft: {stats}",
                        stats.live,
                        view.table()
                    ));
                }
            });
        };
        if let Err(e) = std::thread::Builder::new()
            .name("weft-sigquit".into())
            .spawn(listen)
        {
            cannot(e);
        }
    }
    #[cfg(not(unix))]
    let _ = view;
}

fn compile(args: CompileArgs) -> Result<i32> {
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let runtime = runtime(&args.engine, Some(1), Some(&bytes), false, 1)?;
    let compiled = runtime.precompile(&bytes, &args.file.display().to_string())?;
    std::fs::write(&args.output, compiled)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    Ok(0)
}

fn cache(action: CacheAction) -> Result<i32> {
    let runtime = Runtime::builder()
        .workers(1)
        .max_microthreads(1)
        .build()
        .context("cannot set up the runtime")?;
    let Some(dir) = runtime.cache_dir() else {
        bail!("there is no cache directory: set WEFT_CACHE_DIR, XDG_CACHE_HOME or HOME");
    };
    let mut out = std::io::stdout();
    let written = match action {
        CacheAction::Dir => writeln!(out, "{}", dir.display()),
        CacheAction::Clear => {
            let n = runtime.clear_cache()?;
            writeln!(out, "removed {n} compiled programs from {}", dir.display())
        }
    };
    written.context("cannot write to stdout")?;
    Ok(0)
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
    fn durations_parse() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn guest_arguments_follow_the_file() {
        let parse = |args: &[&str]| -> Vec<String> {
            let cli = Cli::try_parse_from(args).unwrap();
            let Command::Run(run) = cli.command else { panic!() };
            run.program
                .guest_args()
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(parse(&["weft", "run", "rg.wasm", "needle", "-"]), ["needle", "-"]);
        assert_eq!(
            parse(&["weft", "run", "--workers", "1", "a.wasm", "--workers", "2"]),
            ["--workers", "2"]
        );
        assert_eq!(
            parse(&["weft", "run", "a.wasm", "-x", "--", "y"]),
            ["-x", "--", "y"]
        );
        assert_eq!(parse(&["weft", "run", "a.wasm", "--", "-x"]), ["-x"]);
        assert_eq!(parse(&["weft", "run", "a.wasm"]), Vec::<String>::new());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

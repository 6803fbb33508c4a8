//! The command line's words: what each subcommand and flag of `weft` takes, as clap
//! parses it, and the little that reading a flag needs (which argument is the file).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use weft::cli_values::{parse_duration, parse_seeds, parse_size};

#[derive(Debug, Subcommand)]
pub(super) enum CacheAction {
    /// Print the cache directory.
    Dir,
    /// Remove every compiled program from the cache.
    Clear,
}

/// Settings that shape the engine, and so the compiled code.
#[derive(Debug, Args)]
pub(super) struct EngineArgs {
    /// Fuel units a microthread runs before it yields to the scheduler. Smaller is
    /// fairer to other microthreads, larger costs less on compute [default: 100000;
    /// none for a program that does not import weft:runtime: it is one microthread,
    /// with nobody to be fair to, and runs unmetered].
    #[arg(long, value_name = "UNITS", conflicts_with = "no_preempt")]
    pub(super) fuel_slice: Option<u64>,

    /// Turn preemption (and fuel metering) off: a microthread runs until it calls the
    /// host. A loop that never does starves the others on its worker.
    #[arg(long)]
    pub(super) no_preempt: bool,

    /// Maximum number of live microthreads; a spawn past it returns an error to the
    /// guest [default: 10000; 1 for a program that does not import weft:runtime,
    /// which cannot spawn].
    #[arg(long, value_name = "N")]
    pub(super) max_microthreads: Option<u32>,

    /// Maximum linear memory per microthread, e.g. 64MiB, 1GiB, or bytes
    /// [default: 256MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub(super) max_memory: Option<u64>,

    /// Maximum size of a message or spawn argument, e.g. 1MiB.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub(super) max_message_size: Option<u64>,

    /// Do not look up or store compiled programs in the cache.
    #[arg(long)]
    pub(super) no_cache: bool,
}

#[derive(Debug, Args)]
pub(super) struct RunArgs {
    #[command(flatten)]
    pub(super) program: ProgramArgs,

    /// Print the run's counters to stderr when it ends: microthreads spawned, peak
    /// live, finished, failed, messages sent, restarts by supervisors.
    #[arg(long)]
    pub(super) stats: bool,

    #[command(flatten)]
    pub(super) observe: ObserveArgs,

    /// Worker threads that run microthreads [default: one per core; a
    /// deterministic run has one thread of its own].
    #[arg(long, value_name = "N")]
    pub(super) workers: Option<usize>,

    /// Run deterministically: every scheduling choice (which ready microthread runs
    /// next, which ready case a select takes, where a fuel slice ends) comes from a
    /// PRNG seeded with --seed (default 0); the guest's clocks are virtual (they
    /// start at fixed values, advance with the fuel burnt, and jump ahead when
    /// every microthread waits for a timer) and its random source is seeded. The
    /// same program, seed and input give byte-identical output and exit code.
    /// Stdin, granted files and --timeout are not virtual.
    #[arg(long)]
    pub(super) deterministic: bool,

    /// The seed of a deterministic run; implies --deterministic.
    #[arg(long, value_name = "N")]
    pub(super) seed: Option<u64>,

    /// Write the schedule of a deterministic run to FILE, a line per slice: which
    /// microthread ran and why it stopped (yielded, blocked on what, finished).
    #[arg(long, value_name = "FILE")]
    pub(super) trace_schedule: Option<PathBuf>,

    /// Let the guest listen on ADDR:PORTS: an IP address (IPv6 in brackets), a name
    /// such as localhost, or * for any address; a port, a range 8000-8100, or *.
    /// Covers weft's sockets and std::net alike. Repeatable; nothing is allowed
    /// without a grant.
    #[arg(long = "listen", value_name = "ADDR:PORTS", value_parser = parse_grant)]
    pub(super) listen: Vec<weft::net::Grant>,

    /// Let the guest connect to ADDR:PORTS (as --listen), with its sockets or
    /// with outgoing HTTP requests (wasi:http: `fetch` in JavaScript, wstd's
    /// client in Rust). Repeatable.
    #[arg(long = "connect", value_name = "ADDR:PORTS", value_parser = parse_grant)]
    pub(super) connect: Vec<weft::net::Grant>,

    #[command(flatten)]
    pub(super) cluster: super::cluster::ClusterArgs,
}

/// Watching a run: its metrics, its dashboard.
#[derive(Debug, Args)]
pub(super) struct ObserveArgs {
    /// Serve the runtime's metrics at http://ADDR/metrics in the text format
    /// Prometheus scrapes (microthreads spawned, finished, failed by kind, live by
    /// state; messages, channels, sockets, fuel; each worker's busy time and
    /// queue). ADDR must be a loopback address (127.0.0.1:9464), unless
    /// --metrics-public is given; port 0 picks a free port. The address is printed
    /// on stderr.
    #[arg(long, value_name = "ADDR")]
    pub(super) metrics: Option<std::net::SocketAddr>,

    /// Let --metrics listen on an address other than loopback.
    #[arg(long, requires = "metrics")]
    pub(super) metrics_public: bool,

    /// Serve a live dashboard of the run at http://ADDR/ (the microthreads, their
    /// tree, the channels, the workers, charts of the last minutes; `weft top ADDR`
    /// shows it in the terminal). ADDR must be a loopback address
    /// (127.0.0.1:9465), unless --dashboard-public is given; port 0 picks a free
    /// port. The address is printed on stderr.
    #[arg(long, value_name = "ADDR")]
    pub(super) dashboard: Option<std::net::SocketAddr>,

    /// Let --dashboard listen on an address other than loopback.
    #[arg(long, requires = "dashboard")]
    pub(super) dashboard_public: bool,

    /// Let the dashboard cancel microthreads, with a token printed on stderr at
    /// start that the page asks for.
    #[arg(long, requires = "dashboard")]
    pub(super) dashboard_control: bool,
}

#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    #[command(flatten)]
    pub(super) program: ProgramArgs,

    /// The address to serve HTTP on (port 0: any free port; the address is
    /// printed on stderr).
    #[arg(long, value_name = "ADDR:PORT", default_value = weft::serve::DEFAULT_LISTEN)]
    pub(super) listen: std::net::SocketAddr,

    /// End a request that takes longer than this, its response's body included
    /// (a handler spinning without host calls too): not yet answered, it gets 504
    /// [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(super) request_timeout: Option<Duration>,

    /// Requests handled at once; one more is answered 503 at once [default: as
    /// many as --max-microthreads allows].
    #[arg(long, value_name = "N")]
    pub(super) max_requests: Option<u32>,

    /// Print the requests' counts to stderr when the server stops (answered,
    /// failed, timed out, refused) with the run's counters.
    #[arg(long)]
    pub(super) stats: bool,

    #[command(flatten)]
    pub(super) observe: ObserveArgs,

    /// Worker threads that run the handlers [default: one per core].
    #[arg(long, value_name = "N")]
    pub(super) workers: Option<usize>,

    /// Let handlers send outgoing requests (wasi:http/outgoing-handler) and
    /// connect to ADDR:PORTS: an IP address (IPv6 in brackets), a name such as
    /// localhost, or * for any address; a port, a range 8000-8100, or *. Checked
    /// before any name is looked up. Repeatable; nothing is allowed without one.
    #[arg(long = "connect", value_name = "ADDR:PORTS", value_parser = parse_grant)]
    pub(super) connect: Vec<weft::net::Grant>,
}

#[derive(Debug, Args)]
pub(super) struct TestArgs {
    /// The seeds to run: a range `A..B` (B excluded), `A..=B`, or a count `N`
    /// (seeds 0 to N-1).
    #[arg(long, value_name = "A..B|N", value_parser = parse_seeds, default_value = "100")]
    pub(super) seeds: std::ops::Range<u64>,

    /// Seeds run at once [default: one per core]. Each seed has a limit of live
    /// microthreads of its own, which the seeds beside it never take from:
    /// --max-microthreads, or by default 10000 shared out among the seeds run at
    /// once (the replay command says which).
    #[arg(long, value_name = "N")]
    pub(super) jobs: Option<usize>,

    #[command(flatten)]
    pub(super) program: ProgramArgs,
}

/// What a program is run with, by `weft run` and by `weft test`.
#[derive(Debug, Args)]
pub(super) struct ProgramArgs {
    /// The component to run (`.wasm`) or a precompiled `.cwasm`, then the arguments
    /// passed to the guest: everything after FILE, flags included (a `--` right
    /// after FILE is dropped, for compatibility).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "FILE [ARGS]"
    )]
    pub(super) file_and_args: Vec<OsString>,

    #[command(flatten)]
    pub(super) engine: EngineArgs,

    /// Stop the program after this long, e.g. 5s, 500ms, 2m; it exits with 124.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(super) timeout: Option<Duration>,

    /// Fuel the program may consume, all its microthreads together (about one unit
    /// per wasm instruction); past it, the program is stopped with a failure that
    /// says "fuel budget exhausted" (exit 134).
    #[arg(long, value_name = "UNITS")]
    pub(super) fuel_budget: Option<u64>,

    /// Fuel each microthread may consume; one that uses it up fails alone.
    #[arg(long, value_name = "UNITS")]
    pub(super) fuel_budget_per_microthread: Option<u64>,

    /// Bytes the program's channels may hold buffered, all together, e.g. 64MiB
    /// [default: 256MiB]; a send past it waits as if its channel were full.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub(super) max_buffered: Option<u64>,

    /// Channels the program may have open at once [default: 1048576].
    #[arg(long, value_name = "N")]
    pub(super) max_channels: Option<u32>,

    /// How long the microthreads still running when the program ends (Ctrl-C,
    /// SIGTERM, --timeout, or detached ones when main ends) get for their cleanup
    /// before they are stopped [default: 2s; none for a program that does not
    /// import weft:runtime, which cannot see its cancellation].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(super) grace: Option<Duration>,

    /// Set an environment variable for the guest: `K=V`, or `K` to pass the host's
    /// value of K. Nothing else of the host's environment is visible. Repeatable.
    #[arg(long = "env", value_name = "K[=V]")]
    pub(super) env: Vec<String>,

    /// Grant the guest a host directory, read-write: `HOST` (seen as the same path)
    /// or `HOST::GUEST`. Nothing of the host's file system is visible otherwise.
    /// Repeatable.
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    pub(super) dirs: Vec<String>,

    /// Like --dir, read-only: writes fail in the guest with a permission error.
    #[arg(long = "dir-ro", value_name = "HOST[::GUEST]")]
    pub(super) dirs_read_only: Vec<String>,

    /// Sockets the program may have open at once, listeners and connections
    /// together [default: 10000].
    #[arg(long, value_name = "N")]
    pub(super) max_sockets: Option<u32>,

    /// Handles each microthread may hold at once: join handles, channel ends and
    /// sockets together [default: 1048576].
    #[arg(long, value_name = "N")]
    pub(super) max_handles: Option<u32>,

    /// Handles the program's microthreads may hold at once, all together: join
    /// handles, channel ends, sockets and registered names [default: 1048576].
    #[arg(long, value_name = "N")]
    pub(super) max_run_handles: Option<u32>,
}

fn parse_grant(s: &str) -> Result<weft::net::Grant, String> {
    weft::net::Grant::parse(s).map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub(super) struct CompileArgs {
    /// The component to compile (`.wasm`).
    pub(super) file: PathBuf,

    /// Where to write the precompiled program.
    #[arg(short, long, value_name = "OUT")]
    pub(super) output: PathBuf,

    #[command(flatten)]
    pub(super) engine: EngineArgs,
}

impl ProgramArgs {
    /// The program's file.
    pub(super) fn file(&self) -> PathBuf {
        PathBuf::from(&self.file_and_args[0])
    }

    /// The guest's arguments. `weft run app.wasm -- a b`, as before arguments
    /// followed the file: the `--` goes.
    pub(super) fn guest_args(&self) -> &[OsString] {
        match self.file_and_args.get(1) {
            Some(first) if first == "--" => &self.file_and_args[2..],
            _ => &self.file_and_args[1..],
        }
    }

    /// Whether a fuel budget was asked for.
    pub(super) fn metered(&self) -> bool {
        self.fuel_budget.is_some() || self.fuel_budget_per_microthread.is_some()
    }
}

#[derive(Debug, Args)]
pub(super) struct BuildArgs {
    /// The program's source: a Python file (`.py`) whose `main()` is the entry
    /// point, or a JavaScript module (`.js`, `.mjs`) that exports `main`.
    pub(super) file: PathBuf,

    /// Where to write the component [default: FILE with the extension `.wasm`].
    #[arg(short, long, value_name = "OUT")]
    pub(super) output: Option<PathBuf>,
}

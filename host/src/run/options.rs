//! What one run of a program gets ([`RunOptions`]), the public builder: arguments,
//! environment, stdio, directory and network grants, a deadline, fuel budgets and
//! the run's own limits; and the channel ends the application hands to a run.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;

use super::output::{Output, OutputBuffer, StdoutClosed};
use crate::channel::{HostHold, ReceiverHandle, SenderHandle};
use crate::deterministic::TraceSink;
use crate::error::Error;
use crate::net::{Grant, Grants};
use crate::sync::Unpoisoned;

#[cfg(doc)]
use crate::limits::Limits;

/// Sockets a run may have open at once, unless told otherwise.
pub const DEFAULT_MAX_SOCKETS: u32 = 10_000;

/// Handles a microthread may hold at once, unless told otherwise.
pub const DEFAULT_MAX_HANDLES: u32 = 1 << 20;

/// Handles the microthreads of a run may hold at once, all together, unless told
/// otherwise (each costs the host about 100 bytes: about 100 MiB in all).
pub const DEFAULT_MAX_RUN_HANDLES: u32 = 1 << 20;

/// What one run of a program gets: its arguments and environment, what it may see
/// of the host, how long and how much it may run, and its limits. Nothing of the
/// host's environment is passed unless listed here: by default a guest's stdin is
/// empty and what it writes to stdout and stderr is discarded (see
/// [`inherit_stdio`](RunOptions::inherit_stdio), [`stdin_bytes`](RunOptions::stdin_bytes),
/// [`stdout`](RunOptions::stdout)).
///
/// ```no_run
/// # fn main() -> Result<(), weft::Error> {
/// use std::time::Duration;
/// let program = weft::Runtime::new()?.load("job.wasm")?;
/// let options = weft::RunOptions::new()
///     .arg("--input=data")
///     .deadline(Duration::from_secs(5))
///     .fuel_budget(10_000_000_000)
///     .max_microthreads(100)
///     .max_buffered_bytes(16 << 20);
/// let status = program.start(&options)?.wait();
/// println!("{status:?}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub(crate) program_name: String,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) ctrl_c: bool,
    /// Bytes for stdin: each run reads them from the start ([`for_run`](Self::for_run)).
    pub(crate) stdin: Option<Bytes>,
    /// This run's reader of `stdin`, shared by its microthreads.
    pub(crate) stdin_pipe: Option<MemoryInputPipe>,
    pub(crate) inherit_stdin: bool,
    pub(crate) stdout: Output,
    pub(crate) stderr: Output,
    /// Set when the host's stdout, inherited, is a closed pipe: the run ends.
    pub(crate) stdout_closed: StdoutClosed,
    pub(crate) dirs: Vec<DirGrant>,
    pub(crate) deadline: Option<Duration>,
    pub(crate) fuel_budget: Option<u64>,
    pub(crate) microthread_fuel_budget: Option<u64>,
    /// The bounds of [`Limits`] this run lowers.
    pub(crate) requested: Requested,
    pub(crate) cancel_grace: Duration,
    pub(crate) shutdown_grace: Duration,
    pub(crate) atomic_cap: Duration,
    /// Set by `Program::start` for a program that cannot spawn and holds a worker
    /// of its own: its file I/O may block that worker (see `wasi_ctx`).
    pub(crate) held_worker: Option<Arc<crate::scheduler::WorkerHold>>,
    pub(crate) endpoints: Vec<(String, Handed)>,
    pub(crate) data: Option<AppData>,
    pub(crate) on_failure: Option<FailureHandler>,
    pub(crate) deterministic: Option<u64>,
    pub(crate) trace_schedule: Option<ScheduleTrace>,
    pub(crate) net: Grants,
    pub(crate) max_sockets: u32,
    pub(crate) max_handles: u32,
    pub(crate) max_run_handles: u32,
}

/// The bounds one run asks for ([`RunOptions::max_microthreads`] and its
/// siblings): each, when set, is this run's value of the [`Limits`] field of the
/// same name, which says what it bounds; unset, the run has the runtime's.
#[derive(Debug, Clone, Default)]
pub(crate) struct Requested {
    pub(crate) max_microthreads: Option<u32>,
    pub(crate) max_memory: Option<u64>,
    pub(crate) max_message_size: Option<u32>,
    pub(crate) max_buffered_bytes: Option<u64>,
    pub(crate) max_channels: Option<u32>,
}

/// Where a deterministic run writes its schedule.
#[derive(Clone)]
pub(crate) struct ScheduleTrace(pub(crate) TraceSink);

impl std::fmt::Debug for ScheduleTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScheduleTrace")
    }
}

/// The application's handler of failures nobody else handles.
#[derive(Clone)]
pub(crate) struct FailureHandler(pub(crate) Arc<dyn Fn(&crate::error::Failure) + Send + Sync>);

impl std::fmt::Debug for FailureHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FailureHandler")
    }
}

/// The application's data for the host functions it adds, shared.
#[derive(Clone)]
pub(crate) struct AppData(pub(crate) Arc<dyn std::any::Any + Send + Sync>);

impl AppData {
    pub(crate) fn downcast_ref<T: std::any::Any>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }
}

impl std::fmt::Debug for AppData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppData")
    }
}

/// A channel end the application hands to a run: shared by the clones of the
/// options, and taken by the first run started with them.
#[derive(Clone)]
pub(crate) struct Handed(Arc<Mutex<Option<HostEndpoint>>>);

impl Handed {
    fn new(endpoint: HostEndpoint) -> Self {
        Handed(Arc::new(Mutex::new(Some(endpoint))))
    }

    /// Take the endpoint, unless a run took it already.
    pub(crate) fn take(&self) -> Option<HostEndpoint> {
        self.0.locked().take()
    }

    /// Put back an endpoint taken by a run that could not start.
    fn put_back(&self, endpoint: HostEndpoint) {
        *self.0.locked() = Some(endpoint);
    }
}

impl std::fmt::Debug for Handed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.0.locked();
        f.write_str(match st.as_ref() {
            Some(HostEndpoint::Sender(..)) => "sender",
            Some(HostEndpoint::Receiver(..)) => "receiver",
            None => "taken",
        })
    }
}

/// A channel end of the application's, on its way into a guest. While it waits to
/// be taken, it still counts as the application's (a microthread waiting on its
/// channel may yet be woken).
pub(crate) enum HostEndpoint {
    // The holds are dropped when a guest takes the end.
    Sender(SenderHandle, HostHold),
    Receiver(ReceiverHandle, HostHold),
}

/// A host directory visible to the guest.
#[derive(Debug, Clone)]
pub(crate) struct DirGrant {
    pub(crate) host: PathBuf,
    pub(crate) guest: String,
    pub(crate) read_only: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            program_name: "main".into(),
            args: Vec::new(),
            env: Vec::new(),
            ctrl_c: false,
            stdin: None,
            stdin_pipe: None,
            inherit_stdin: false,
            stdout: Output::Discarded,
            stderr: Output::Discarded,
            stdout_closed: StdoutClosed::default(),
            dirs: Vec::new(),
            deadline: None,
            fuel_budget: None,
            microthread_fuel_budget: None,
            requested: Requested::default(),
            cancel_grace: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(2),
            endpoints: Vec::new(),
            data: None,
            on_failure: None,
            atomic_cap: Duration::from_secs(1),
            held_worker: None,
            deterministic: None,
            trace_schedule: None,
            net: Grants::default(),
            max_sockets: DEFAULT_MAX_SOCKETS,
            max_handles: DEFAULT_MAX_HANDLES,
            max_run_handles: DEFAULT_MAX_RUN_HANDLES,
        }
    }
}

impl RunOptions {
    /// No arguments, an empty environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// The guest's `argv[0]`.
    pub fn program_name(mut self, name: impl Into<String>) -> Self {
        self.program_name = name.into();
        self
    }

    /// Append an argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Append arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Set an environment variable for the guest.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Let every microthread of the program read and write the host directory `host`,
    /// seen in the guest as `guest`. Nothing of the host's file system is visible
    /// without a grant.
    pub fn dir(mut self, host: impl Into<PathBuf>, guest: impl Into<String>) -> Self {
        self.dirs.push(DirGrant {
            host: host.into(),
            guest: guest.into(),
            read_only: false,
        });
        self
    }

    /// Like [`dir`](RunOptions::dir), read-only: writes fail in the guest with a
    /// permission error.
    pub fn dir_read_only(mut self, host: impl Into<PathBuf>, guest: impl Into<String>) -> Self {
        self.dirs.push(DirGrant {
            host: host.into(),
            guest: guest.into(),
            read_only: true,
        });
        self
    }

    /// Give the program these bytes as its stdin (default: an empty stdin). Each
    /// run started with these options (or their clones) reads them from the start.
    pub fn stdin_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(Bytes::from(bytes.into()));
        self.inherit_stdin = false;
        self
    }

    /// Collect the program's stdout in `buffer` (default: discarded).
    pub fn stdout(mut self, buffer: OutputBuffer) -> Self {
        self.stdout = Output::Buffer(buffer);
        self
    }

    /// Collect the program's stderr in `buffer` (default: discarded; weft's own
    /// reports of failures nobody handled go to the application's log).
    pub fn stderr(mut self, buffer: OutputBuffer) -> Self {
        self.stderr = Output::Buffer(buffer);
        self
    }

    /// Let the program read the host process's stdin (instead of
    /// [`stdin_bytes`](Self::stdin_bytes), or of an empty stdin).
    pub fn inherit_stdin(mut self) -> Self {
        self.stdin = None;
        self.inherit_stdin = true;
        self
    }

    /// Let the program write to the host process's stdout (instead of a
    /// [buffer](Self::stdout), or of discarding it). Should the host's stdout be a
    /// pipe whose reader has gone (`| head -1`), the run ends at the program's next
    /// write, quietly, with [`ExitStatus::Exited`](crate::ExitStatus::Exited)`(141)`,
    /// as SIGPIPE ends a native program.
    pub fn inherit_stdout(mut self) -> Self {
        self.stdout = Output::Inherited;
        self
    }

    /// Let the program write to the host process's stderr (instead of a
    /// [buffer](Self::stderr), or of discarding it). weft's reports of failures
    /// nobody handled go there too.
    pub fn inherit_stderr(mut self) -> Self {
        self.stderr = Output::Inherited;
        self
    }

    /// The host process's stdin, stdout and stderr for the program, as a command
    /// line runner gives them: [`inherit_stdin`](Self::inherit_stdin),
    /// [`inherit_stdout`](Self::inherit_stdout) and
    /// [`inherit_stderr`](Self::inherit_stderr).
    pub fn inherit_stdio(self) -> Self {
        self.inherit_stdin().inherit_stdout().inherit_stderr()
    }

    /// Let Ctrl-C (SIGINT) and SIGTERM stop the program: it is cancelled (its
    /// microthreads' blocking calls fail with `cancelled`, so their cleanup runs,
    /// for the [`shutdown_grace`](RunOptions::shutdown_grace) period) and ends with
    /// [`ExitStatus::Interrupted`](crate::ExitStatus::Interrupted) or
    /// [`ExitStatus::Terminated`](crate::ExitStatus::Terminated).
    ///
    /// The handlers this installs (tokio's) stay installed for the life of the
    /// process, as tokio never removes one: after the run ends, SIGINT and SIGTERM
    /// no longer end the process, they are caught and, with no run listening,
    /// ignored. An application that should still stop on Ctrl-C afterwards listens
    /// for it itself (`tokio::signal::ctrl_c`, say) or ends when its run does, as
    /// `weft run` does.
    pub fn interrupt_on_ctrl_c(mut self, yes: bool) -> Self {
        self.ctrl_c = yes;
        self
    }

    /// How long a microthread cancelled by its parent (or by a sibling's failure)
    /// has, once its cancellation was asked for, to finish its cleanup before it is
    /// stopped wherever it is (default 1 s). A guest may give one cancellation a
    /// grace of its own (`cancel-within`: a supervisor gives a child its shutdown
    /// time).
    pub fn cancel_grace(mut self, grace: Duration) -> Self {
        self.cancel_grace = grace;
        self
    }

    /// How long the microthreads still running when the run ends (it was cancelled,
    /// its deadline passed, a signal came, or `main` ended while detached
    /// microthreads ran) have for their cleanup before they are stopped (default
    /// 2 s). A program that imports nothing of weft cannot see its cancellation, so
    /// it gets none: it is stopped at once.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Handle the failures nobody else handles: those of detached microthreads that
    /// nobody joined. By default each is reported on the run's stderr.
    ///
    /// The handler is called on a thread of the runtime's supervisor, named
    /// `weft-supervisor`, one failure at a time, in the order they were reported;
    /// never from a drop, under one of weft's locks, or on the application's
    /// threads, so it may use the run's channels. A handler that panics is reported
    /// on the run's stderr, with the failure it was given, and the run goes on; it
    /// is called again for the next failure. The run's end waits for the handler:
    /// [`RunHandle::wait`](crate::RunHandle::wait) returns only once it has seen
    /// every failure of the run. It should return soon (send the failure on, say):
    /// the handlers of all the runtime's runs share that thread.
    pub fn on_failure(mut self, handler: impl Fn(&crate::error::Failure) + Send + Sync + 'static) -> Self {
        self.on_failure = Some(FailureHandler(Arc::new(handler)));
        self
    }

    /// Data for the application's own host functions during this run:
    /// [`Microthread::data`](crate::Microthread::data) finds it (before the
    /// runtime's, [`RuntimeBuilder::data`](crate::RuntimeBuilder::data)).
    pub fn data<T: std::any::Any + Send + Sync>(mut self, value: T) -> Self {
        self.data = Some(AppData(Arc::new(value)));
        self
    }

    /// Hand the sending end of an application's channel ([`crate::channel()`]) to the
    /// run, under `name`: a guest takes it with `weft_guest::host_sender::<T>(name)`
    /// (the first call gets it) and may move it to other microthreads. Values are
    /// serialized as the guest SDK does, so `T` must match the guest's. The first
    /// run started with these options takes it.
    pub fn sender<T>(mut self, name: impl Into<String>, tx: crate::channel::Sender<T>) -> Self {
        let endpoint = HostEndpoint::Sender(tx.handle, tx.hold);
        self.endpoints.push((name.into(), Handed::new(endpoint)));
        self
    }

    /// Hand the receiving end of an application's channel to the run, under
    /// `name`: a guest takes it with `weft_guest::host_receiver::<T>(name)`. See
    /// [`sender`](RunOptions::sender).
    pub fn receiver<T>(mut self, name: impl Into<String>, rx: crate::channel::Receiver<T>) -> Self {
        let endpoint = HostEndpoint::Receiver(rx.handle, rx.hold);
        self.endpoints.push((name.into(), Handed::new(endpoint)));
        self
    }

    /// How long an atomic section may run (default 1 s): past it, its microthread
    /// fails with a failure that says so.
    pub fn atomic_cap(mut self, cap: Duration) -> Self {
        self.atomic_cap = cap;
        self
    }

    /// Let the program listen on what `grant` covers (repeatable): its own TCP
    /// listeners (`weft_guest::net`) and `std::net` (WASI sockets) alike. Without
    /// a grant that could cover it, nothing is bound, sent or received, and no
    /// name is looked up (a name is looked up only for a grant whose host is `*`
    /// or that same name). A UDP socket receives only from what a connect grant
    /// covers, unless it is bound where a listen grant covers. A denied WASI
    /// socket use is told in a line on the run's stderr.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use weft::net::Grant;
    /// let options = weft::RunOptions::new()
    ///     .listen(Grant::parse("127.0.0.1:8080")?)
    ///     .connect(Grant::parse("localhost:5432-5433")?);
    /// # Ok(()) }
    /// ```
    pub fn listen(mut self, grant: Grant) -> Self {
        self.net.listen.push(grant);
        self
    }

    /// Let the program connect to what `grant` covers (repeatable); see
    /// [`listen`](Self::listen).
    pub fn connect(mut self, grant: Grant) -> Self {
        self.net.connect.push(grant);
        self
    }

    /// Handles each microthread may hold at once: join handles, channel ends and
    /// sockets together (default [`DEFAULT_MAX_HANDLES`]). Past it, the microthread
    /// that asks for one more fails with a message that names the limit. A cap on
    /// what a guest can make the host hold.
    pub fn max_handles(mut self, n: u32) -> Self {
        self.max_handles = n;
        self
    }

    /// Handles the run's microthreads may hold at once, all together: join
    /// handles, channel ends and sockets, and one for each name registered in the
    /// run's registry (default [`DEFAULT_MAX_RUN_HANDLES`]). Past it, the
    /// microthread that asks for one more fails with a message that names the
    /// limit (a registration is refused with an error that does); the others go
    /// on. [`max_handles`](Self::max_handles) bounds each microthread, this bounds
    /// their sum (the handles WASI itself gives out, streams and the like, count
    /// against `max_handles` only).
    pub fn max_run_handles(mut self, n: u32) -> Self {
        self.max_run_handles = n;
        self
    }

    /// Sockets the program may have open at once, listeners and connections
    /// together, `weft_guest::net`'s and `std::net`'s (WASI sockets) alike
    /// (default [`DEFAULT_MAX_SOCKETS`]); past it, a bind, connect or accept
    /// fails in the guest with an error that says so (for a WASI socket, an
    /// errno, and a line on the run's stderr).
    pub fn max_sockets(mut self, n: u32) -> Self {
        self.max_sockets = n;
        self
    }

    /// Run deterministically: every scheduling choice (which ready microthread runs
    /// next, which ready operation a `select` takes, where a fuel slice ends) is
    /// drawn from a PRNG seeded with `seed`, on a thread of the run's own, so that
    /// the same program with the same seed and input makes the same choices and
    /// prints the same bytes, however busy the machine.
    ///
    /// What the guest sees is virtual:
    /// - its monotonic clock starts at 1 s and its wall clock at
    ///   2000-01-01T00:00:00Z; both advance by one nanosecond per unit of fuel
    ///   the run burns, and when every microthread waits for a timer (a sleep, a
    ///   timeout), time jumps to the next deadline: a program that sleeps an hour
    ///   finishes at once and sees the hour pass;
    /// - its random source (`wasi:random`, and so Rust's `HashMap` keys) is a PRNG
    ///   seeded from `seed` and the microthread's id.
    ///
    /// Not virtual: what comes from outside the run. Reading stdin or granted
    /// files gives the same bytes for the same files, but the run does not wait for
    /// stdin in virtual time; host channels fed by the application bring their
    /// messages when the application sends them; a [`deadline`](Self::deadline) is
    /// real time. The run needs a runtime that meters fuel ([`crate::Preemption::Fuel`]).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), weft::Error> {
    /// let program = weft::Runtime::new()?.load("racy.wasm")?;
    /// let out = weft::OutputBuffer::new();
    /// let status = program.run(&weft::RunOptions::new().deterministic(42).stdout(out.clone()))?;
    /// println!("{status:?}: {}", out.to_string_lossy());
    /// # Ok(()) }
    /// ```
    pub fn deterministic(mut self, seed: u64) -> Self {
        self.deterministic = Some(seed);
        self
    }

    /// Write the schedule of a [deterministic](Self::deterministic) run to `to`: a
    /// line per slice, numbered, saying which microthread ran and why it stopped
    /// (`yielded` at the end of its fuel slice or a yield; `blocked: ...` on what;
    /// `finished`). Only for deterministic runs.
    pub fn trace_schedule(mut self, to: impl std::io::Write + Send + 'static) -> Self {
        self.trace_schedule = Some(ScheduleTrace(Arc::new(Mutex::new(Box::new(to)))));
        self
    }

    /// End the run once `after` has passed since it started: its microthreads are
    /// cancelled and it ends with
    /// [`ExitStatus::DeadlineExceeded`](crate::ExitStatus::DeadlineExceeded). A zero
    /// deadline ends it before its guest code runs.
    pub fn deadline(mut self, after: Duration) -> Self {
        self.deadline = Some(after);
        self
    }

    /// Fuel the whole run may consume, all its microthreads together (roughly one
    /// unit per wasm instruction). The microthread that uses the last of it is
    /// stopped, the run is cancelled and ends with
    /// [`ExitStatus::Failed`](crate::ExitStatus::Failed), whose message says "fuel
    /// budget exhausted". Checked at every fuel slice, so the run may go over it by
    /// less than a slice per microthread. Needs a runtime that meters fuel
    /// ([`Preemption::Fuel`](crate::Preemption::Fuel)).
    pub fn fuel_budget(mut self, units: u64) -> Self {
        self.fuel_budget = Some(units);
        self
    }

    /// Fuel each microthread of the run may consume. One that uses it up fails
    /// alone, like a trap, with a failure that says "fuel budget exhausted"; its
    /// joiner (or its parent) gets the failure. Needs a runtime that meters fuel.
    pub fn fuel_budget_per_microthread(mut self, units: u64) -> Self {
        self.microthread_fuel_budget = Some(units);
        self
    }

    /// This run's [`Limits::max_microthreads`], at most the runtime's.
    pub fn max_microthreads(mut self, max: u32) -> Self {
        self.requested.max_microthreads = Some(max);
        self
    }

    /// This run's [`Limits::max_memory`], at most the runtime's.
    pub fn max_memory(mut self, bytes: u64) -> Self {
        self.requested.max_memory = Some(bytes);
        self
    }

    /// This run's [`Limits::max_message_size`], at most the runtime's.
    pub fn max_message_size(mut self, bytes: u32) -> Self {
        self.requested.max_message_size = Some(bytes);
        self
    }

    /// This run's [`Limits::max_buffered_bytes`], at most the runtime's.
    pub fn max_buffered_bytes(mut self, bytes: u64) -> Self {
        self.requested.max_buffered_bytes = Some(bytes);
        self
    }

    /// This run's [`Limits::max_channels`], at most the runtime's.
    pub fn max_channels(mut self, max: u32) -> Self {
        self.requested.max_channels = Some(max);
        self
    }

    /// These options as one run gets them: a stdin reader of its own (the bytes,
    /// from their start) and its own signal of a closed stdout.
    pub(crate) fn for_run(&self) -> RunOptions {
        let mut options = self.clone();
        options.stdin_pipe = self.stdin.clone().map(MemoryInputPipe::new);
        options.stdout_closed = StdoutClosed::default();
        options
    }

    /// The run's network grants.
    pub(crate) fn grants(&self) -> &Grants {
        &self.net
    }

    /// The channel ends handed to the run, by name, taken out of the options. A
    /// refusal takes none.
    pub(crate) fn take_endpoints(&self) -> Result<std::collections::HashMap<String, HostEndpoint>, Error> {
        let mut names = std::collections::HashSet::new();
        for (name, _) in &self.endpoints {
            if !names.insert(name) {
                return Err(Error::InvalidOptions(format!(
                    "two channel ends are handed to the run under the name `{name}`"
                )));
            }
        }
        let mut taken = std::collections::HashMap::new();
        for (name, handed) in &self.endpoints {
            if let Some(endpoint) = handed.take() {
                taken.insert(name.clone(), endpoint);
            }
        }
        Ok(taken)
    }

    /// Put back the ends [`take_endpoints`](Self::take_endpoints) took, for a run
    /// that could not start: the next run started with these options gets them.
    pub(crate) fn give_back_endpoints(&self, mut taken: std::collections::HashMap<String, HostEndpoint>) {
        for (name, handed) in &self.endpoints {
            if let Some(endpoint) = taken.remove(name) {
                handed.put_back(endpoint);
            }
        }
    }

    /// Check what can be checked before the run starts.
    pub(crate) fn check_grants(&self) -> Result<(), Error> {
        for grant in &self.dirs {
            if !grant.host.is_dir() {
                return Err(Error::Grant {
                    path: grant.host.clone(),
                    reason: "not a directory on the host".into(),
                });
            }
        }
        Ok(())
    }

    /// Write `line` on the run's stderr (its buffer, the host's, or the log).
    pub(crate) fn note(&self, line: &str) {
        self.stderr.write(&format!("{line}\n"));
    }
}

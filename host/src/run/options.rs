//! What one run of a program gets ([`RunOptions`]): arguments, environment, stdio,
//! directory grants, a deadline, fuel budgets and the run's own limits; and the
//! limits a run ends up with once the runtime's are applied ([`RunLimits`]).

use std::path::PathBuf;
use std::time::Duration;

use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx};

use std::sync::{Arc, Mutex};

use super::output::Lines;
use crate::channel::{Budget, HostHold, ReceiverHandle, SenderHandle};
use crate::deterministic::{Schedule, SeededRandom, TraceSink};
use crate::net::{Direction, Grant, Grants};

/// Sockets a run may have open at once, unless told otherwise.
pub const DEFAULT_MAX_SOCKETS: u32 = 10_000;

/// Handles a microthread may hold at once, unless told otherwise.
pub const DEFAULT_MAX_HANDLES: u32 = 1 << 20;

/// Handles the microthreads of a run may hold at once, all together, unless told
/// otherwise (each costs the host about 100 bytes: about 100 MiB in all).
pub const DEFAULT_MAX_RUN_HANDLES: u32 = 1 << 20;
use crate::error::Error;
use crate::limits::Limits;

/// What one run of a program gets: its arguments and environment, what it may see
/// of the host, how long and how much it may run, and its limits. Nothing of the
/// host's environment is passed unless listed here.
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
    pub(crate) stdin: Option<MemoryInputPipe>,
    pub(crate) stdout: Option<OutputBuffer>,
    pub(crate) stderr: Option<OutputBuffer>,
    pub(crate) dirs: Vec<DirGrant>,
    pub(crate) deadline: Option<Duration>,
    pub(crate) fuel_budget: Option<u64>,
    pub(crate) microthread_fuel_budget: Option<u64>,
    pub(crate) max_microthreads: Option<u32>,
    pub(crate) max_memory: Option<u64>,
    pub(crate) max_message_size: Option<u32>,
    pub(crate) max_buffered_bytes: Option<u64>,
    pub(crate) max_channels: Option<u32>,
    pub(crate) cancel_grace: Duration,
    pub(crate) shutdown_grace: Duration,
    pub(crate) atomic_cap: Duration,
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
pub(crate) struct FailureHandler(pub(crate) Arc<dyn Fn(&crate::Failure) + Send + Sync>);

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
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl std::fmt::Debug for Handed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.0.lock().unwrap_or_else(|e| e.into_inner());
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
            stdout: None,
            stderr: None,
            dirs: Vec::new(),
            deadline: None,
            fuel_budget: None,
            microthread_fuel_budget: None,
            max_microthreads: None,
            max_memory: None,
            max_message_size: None,
            max_buffered_bytes: None,
            max_channels: None,
            cancel_grace: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(2),
            endpoints: Vec::new(),
            data: None,
            on_failure: None,
            atomic_cap: Duration::from_secs(1),
            deterministic: None,
            trace_schedule: None,
            net: Grants::default(),
            max_sockets: DEFAULT_MAX_SOCKETS,
            max_handles: DEFAULT_MAX_HANDLES,
            max_run_handles: DEFAULT_MAX_RUN_HANDLES,
        }
    }
}

/// Collects what a program writes to its stdout or stderr, for the embedder to
/// read; shared by all the program's microthreads. Cheap to clone.
///
/// ```no_run
/// # fn main() -> Result<(), weft::Error> {
/// let out = weft::OutputBuffer::new();
/// let program = weft::Runtime::new()?.load("hello.wasm")?;
/// program.run(&weft::RunOptions::new().stdout(out.clone()))?;
/// print!("{}", out.to_string_lossy());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OutputBuffer(pub(crate) MemoryOutputPipe);

impl OutputBuffer {
    /// A buffer that holds up to 64 MiB; a guest writing past that gets a write error.
    pub fn new() -> Self {
        Self::with_capacity(64 << 20)
    }

    /// A buffer that holds up to `bytes`.
    pub fn with_capacity(bytes: usize) -> Self {
        OutputBuffer(MemoryOutputPipe::new(bytes))
    }

    /// Append `bytes`, as a guest's write does (what does not fit is dropped).
    pub(crate) fn append(&self, bytes: &[u8]) {
        use wasmtime_wasi::p2::OutputStream;
        let mut pipe = self.0.clone();
        // Full: the host's report is dropped, as a guest's write would fail.
        let _full = pipe.write(bytes::Bytes::copy_from_slice(bytes));
    }

    /// Everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.0.contents().to_vec()
    }

    /// Everything written so far, as text.
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(&self.0.contents()).into_owned()
    }
}

impl Default for OutputBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for OutputBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputBuffer")
            .field("len", &self.0.contents().len())
            .finish()
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

    /// Give the program these bytes as its stdin (default: the host's stdin).
    pub fn stdin_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(MemoryInputPipe::new(bytes.into()));
        self
    }

    /// Collect the program's stdout in `buffer` (default: the host's stdout).
    pub fn stdout(mut self, buffer: OutputBuffer) -> Self {
        self.stdout = Some(buffer);
        self
    }

    /// Collect the program's stderr in `buffer` (default: the host's stderr).
    pub fn stderr(mut self, buffer: OutputBuffer) -> Self {
        self.stderr = Some(buffer);
        self
    }

    /// Let Ctrl-C (SIGINT) and SIGTERM stop the program: it is cancelled (its
    /// microthreads' blocking calls fail with `cancelled`, so their cleanup runs,
    /// for the [`shutdown_grace`](RunOptions::shutdown_grace) period) and ends with
    /// [`ExitStatus::Interrupted`](crate::ExitStatus::Interrupted) or
    /// [`ExitStatus::Terminated`](crate::ExitStatus::Terminated).
    pub fn interrupt_on_ctrl_c(mut self, yes: bool) -> Self {
        self.ctrl_c = yes;
        self
    }

    /// How long a microthread cancelled by its parent (or by a sibling's failure)
    /// has, once its cancellation was asked for, to finish its cleanup before it is
    /// stopped wherever it is (default 1 s).
    pub fn cancel_grace(mut self, grace: Duration) -> Self {
        self.cancel_grace = grace;
        self
    }

    /// How long the microthreads still running when the run ends (it was cancelled,
    /// its deadline passed, a signal came, or `main` ended while detached
    /// microthreads ran) have for their cleanup before they are stopped (default
    /// 2 s).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Handle the failures nobody else handles: those of detached microthreads that
    /// nobody joined. By default each is reported on the run's stderr. The handler
    /// runs on a weft worker: it should return soon (send the failure on, say).
    pub fn on_failure(mut self, handler: impl Fn(&crate::Failure) + Send + Sync + 'static) -> Self {
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

    /// Hand the sending end of an application's channel ([`crate::channel`]) to the
    /// run, under `name`: a guest takes it with `weft_guest::host_sender::<T>(name)`
    /// (the first call gets it) and may move it to other microthreads. Values are
    /// serialized as the guest SDK does, so `T` must match the guest's. The first
    /// run started with these options takes it.
    pub fn sender<T>(mut self, name: impl Into<String>, tx: crate::Sender<T>) -> Self {
        let endpoint = HostEndpoint::Sender(tx.handle, tx.hold);
        self.endpoints.push((name.into(), Handed::new(endpoint)));
        self
    }

    /// Hand the receiving end of an application's channel to the run, under
    /// `name`: a guest takes it with `weft_guest::host_receiver::<T>(name)`. See
    /// [`sender`](RunOptions::sender).
    pub fn receiver<T>(mut self, name: impl Into<String>, rx: crate::Receiver<T>) -> Self {
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
    /// listeners (`weft_guest::net`) and `std::net` (WASI sockets) alike. Nothing
    /// network-related is allowed without a grant.
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
    /// handles, channel ends and sockets (default [`DEFAULT_MAX_RUN_HANDLES`]).
    /// Past it, the microthread that asks for one more fails with a message that
    /// names the limit; the others go on. [`max_handles`](Self::max_handles) bounds
    /// each microthread, this bounds their sum (the handles WASI itself gives out,
    /// streams and the like, count against `max_handles` only).
    pub fn max_run_handles(mut self, n: u32) -> Self {
        self.max_run_handles = n;
        self
    }

    /// Sockets the program may have open at once, listeners and connections
    /// together (default [`DEFAULT_MAX_SOCKETS`]); past it, a bind, connect or
    /// accept fails in the guest with an error that says so.
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

    /// Live microthreads of this run, `main` included (at most the runtime's
    /// [`Limits::max_microthreads`], which also holds for all runs together).
    pub fn max_microthreads(mut self, max: u32) -> Self {
        self.max_microthreads = Some(max);
        self
    }

    /// Linear memory per microthread of this run, in bytes (at most the runtime's
    /// [`Limits::max_memory`]).
    pub fn max_memory(mut self, bytes: u64) -> Self {
        self.max_memory = Some(bytes);
        self
    }

    /// Largest message, spawn argument or spawned function's result of this run,
    /// in bytes (at most the runtime's [`Limits::max_message_size`]).
    pub fn max_message_size(mut self, bytes: u32) -> Self {
        self.max_message_size = Some(bytes);
        self
    }

    /// Bytes this run may hold buffered, all together: in its channels, in the
    /// results of its microthreads waiting to be joined, and in their partial
    /// lines of output (at most the runtime's [`Limits::max_buffered_bytes`], which
    /// says what happens at the limit). A send that would go over it waits as if
    /// its channel were full.
    pub fn max_buffered_bytes(mut self, bytes: u64) -> Self {
        self.max_buffered_bytes = Some(bytes);
        self
    }

    /// Channels this run may have open at once (at most the runtime's
    /// [`Limits::max_channels`]).
    pub fn max_channels(mut self, max: u32) -> Self {
        self.max_channels = Some(max);
        self
    }

    /// The run's limits: these options within the runtime's `limits`. Errors if an
    /// option asks for more than the runtime allows, or for fuel budgets where
    /// fuel is not metered.
    pub(crate) fn limits(
        &self,
        runtime: &Limits,
        fuel_slice: Option<u64>,
        interruptible: bool,
    ) -> Result<RunLimits, Error> {
        fn within<T: PartialOrd + std::fmt::Display + Copy>(
            what: &str,
            asked: Option<T>,
            ceiling: T,
        ) -> Result<T, Error> {
            match asked {
                Some(v) if v > ceiling => Err(Error::InvalidOptions(format!(
                    "{what} {v} is over the runtime's limit of {ceiling}"
                ))),
                Some(v) => Ok(v),
                None => Ok(ceiling),
            }
        }
        let max_microthreads = within(
            "max_microthreads",
            self.max_microthreads,
            runtime.max_microthreads,
        )?;
        if max_microthreads == 0 {
            return Err(Error::InvalidOptions(
                "max_microthreads must be at least 1".into(),
            ));
        }
        let max_memory = within("max_memory", self.max_memory, runtime.max_memory)?;
        if max_memory < 64 << 10 {
            return Err(Error::InvalidOptions(
                "max_memory must be at least 64 KiB (one wasm page)".into(),
            ));
        }
        if fuel_slice.is_none() && self.deterministic.is_some() {
            return Err(Error::InvalidOptions(
                "deterministic mode needs a runtime that meters fuel (Preemption::Fuel), \
                 but this one runs with preemption off"
                    .into(),
            ));
        }
        if self.deterministic.is_some() && self.net.any() {
            return Err(Error::InvalidOptions(
                "a deterministic run cannot use the network (what arrives from it, and when, \
                 is not the run's to decide): drop its listen and connect grants"
                    .into(),
            ));
        }
        if self.trace_schedule.is_some() && self.deterministic.is_none() {
            return Err(Error::InvalidOptions(
                "a schedule trace is only kept for a deterministic run (RunOptions::deterministic)".into(),
            ));
        }
        if fuel_slice.is_none() && (self.fuel_budget.is_some() || self.microthread_fuel_budget.is_some()) {
            return Err(Error::InvalidOptions(
                "fuel budgets need a runtime that meters fuel (Preemption::Fuel), \
                 but this one runs with preemption off"
                    .into(),
            ));
        }
        Ok(RunLimits {
            max_microthreads,
            max_memory,
            max_message_size: within(
                "max_message_size",
                self.max_message_size,
                runtime.max_message_size,
            )?,
            max_channel_capacity: runtime.max_channel_capacity,
            max_buffered_bytes: within(
                "max_buffered_bytes",
                self.max_buffered_bytes,
                runtime.max_buffered_bytes,
            )?,
            max_channels: within("max_channels", self.max_channels, runtime.max_channels)?,
            store_handles: match self.max_handles {
                0 => return Err(Error::InvalidOptions("max_handles must be at least 1".into())),
                n => n,
            },
            run_handles: match self.max_run_handles {
                0 => return Err(Error::InvalidOptions("max_run_handles must be at least 1".into())),
                n => n,
            },
            fuel_slice,
            interruptible,
            cancel_grace: self.cancel_grace,
            shutdown_grace: self.shutdown_grace,
            atomic_cap: self.atomic_cap,
            fuel_budget: self.fuel_budget,
            microthread_fuel_budget: self.microthread_fuel_budget,
        })
    }

    /// A fresh WASI context for one microthread: the run's arguments, environment
    /// and directory grants, the host's stdio (or the run's buffers), nothing else.
    /// `alone`: the program cannot spawn, so its file I/O may block its worker.
    ///
    /// In a deterministic run (`schedule`, and the microthread's id), its clocks
    /// read virtual time, its random source is seeded, and file I/O is done in
    /// place, so that its completion cannot race with the other microthreads.
    /// The partial lines its stdout and stderr hold count against `budget`, the
    /// run's buffered bytes.
    pub(crate) fn wasi_ctx(
        &self,
        alone: bool,
        schedule: Option<(&Arc<Schedule>, u64)>,
        budget: &Arc<Budget>,
    ) -> wasmtime::Result<WasiCtx> {
        let mut b = WasiCtx::builder();
        // File I/O goes to tokio's blocking pool so that it does not stall the other
        // microthreads of a worker; a program that cannot spawn is alone, and does it
        // in place, saving a thread hop per operation.
        b.allow_blocking_current_thread(alone || schedule.is_some());
        if self.net.any() {
            // `std::net` (WASI sockets) under the same grants as weft's own sockets.
            let grants = Arc::new(self.net.clone());
            b.allow_tcp(true).allow_udp(true).allow_ip_name_lookup(true);
            b.socket_addr_check(move |addr, use_| {
                let allowed = wasi_socket_allowed(&grants, addr, use_);
                Box::pin(async move { allowed })
            });
        }
        if let Some((schedule, id)) = schedule {
            let seed = schedule.seed_for(id);
            b.monotonic_clock(schedule.clock())
                .wall_clock(schedule.clock())
                .secure_random(SeededRandom::new(seed))
                .insecure_random(SeededRandom::new(seed.rotate_left(32)))
                .insecure_random_seed(u128::from(seed) << 64 | u128::from(!seed));
        }
        match &self.stdin {
            Some(pipe) => b.stdin(pipe.clone()),
            None => b.inherit_stdin(),
        };
        // Microthreads write whole lines, so that their output never interleaves
        // within a line; a program that cannot spawn is alone, and writes through.
        match (&self.stdout, alone) {
            (Some(buffer), true) => b.stdout(buffer.0.clone()),
            (Some(buffer), false) => b.stdout(Lines::new(buffer.0.clone(), budget)),
            (None, true) => b.inherit_stdout(),
            (None, false) => b.stdout(Lines::new(std::io::stdout(), budget)),
        };
        match (&self.stderr, alone) {
            (Some(buffer), true) => b.stderr(buffer.0.clone()),
            (Some(buffer), false) => b.stderr(Lines::new(buffer.0.clone(), budget)),
            (None, true) => b.inherit_stderr(),
            (None, false) => b.stderr(Lines::new(std::io::stderr(), budget)),
        };
        b.arg(&self.program_name);
        b.args(&self.args);
        b.envs(&self.env);
        for grant in &self.dirs {
            let perms = if grant.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            b.preopened_dir(&grant.host, &grant.guest, perms)?;
        }
        Ok(b.build())
    }

    /// The run's network grants.
    pub(crate) fn grants(&self) -> &Grants {
        &self.net
    }

    /// The channel ends handed to the run, by name, taken out of the options.
    pub(crate) fn take_endpoints(&self) -> Result<std::collections::HashMap<String, HostEndpoint>, Error> {
        let mut taken = std::collections::HashMap::new();
        for (name, handed) in &self.endpoints {
            if taken.contains_key(name) {
                return Err(Error::InvalidOptions(format!(
                    "two channel ends are handed to the run under the name `{name}`"
                )));
            }
            if let Some(endpoint) = handed.take() {
                taken.insert(name.clone(), endpoint);
            }
        }
        Ok(taken)
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
}

/// The limits of one run: its options within the runtime's limits, cached in the
/// run so that every check is one field away.
#[derive(Debug, Clone)]
pub(crate) struct RunLimits {
    pub(crate) max_microthreads: u32,
    pub(crate) max_memory: u64,
    pub(crate) max_message_size: u32,
    pub(crate) max_channel_capacity: u32,
    pub(crate) max_buffered_bytes: u64,
    pub(crate) max_channels: u32,
    /// Handles a microthread's store may hold (`RunOptions::max_handles`).
    pub(crate) store_handles: u32,
    /// Handles the run's microthreads may hold together (`RunOptions::max_run_handles`).
    pub(crate) run_handles: u32,
    pub(crate) fuel_slice: Option<u64>,
    /// A busy microthread can be stopped (fuel, or epoch checks).
    pub(crate) interruptible: bool,
    pub(crate) cancel_grace: Duration,
    pub(crate) shutdown_grace: Duration,
    pub(crate) atomic_cap: Duration,
    pub(crate) fuel_budget: Option<u64>,
    pub(crate) microthread_fuel_budget: Option<u64>,
}

/// Whether a WASI socket may use `addr` so, under `grants`.
fn wasi_socket_allowed(grants: &Grants, addr: std::net::SocketAddr, use_: SocketAddrUse) -> bool {
    match use_ {
        // An implicit bind, before a connect or a send: any address, any port.
        SocketAddrUse::TcpBind | SocketAddrUse::UdpBind if addr.ip().is_unspecified() && addr.port() == 0 => {
            !grants.connect.is_empty() || grants.allows(Direction::Listen, &addr)
        }
        SocketAddrUse::TcpBind | SocketAddrUse::TcpListen | SocketAddrUse::UdpBind => {
            grants.allows(Direction::Listen, &addr)
        }
        SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend => grants.allows(Direction::Connect, &addr),
        // From a peer, to a socket whose bind was allowed.
        SocketAddrUse::TcpAccept | SocketAddrUse::UdpReceive => true,
    }
}

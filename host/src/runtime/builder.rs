//! Configuring and building a runtime ([`RuntimeBuilder`]): its preemption, its
//! workers, its limits, its cache, the application's host interfaces and data;
//! `build` starts its engine and threads.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use wasmtime::Engine;
use wasmtime::component::Linker;

use super::engine;
use super::state::{Inner, Runtime};
use crate::cache;
use crate::error::Error;
use crate::limits::{Footprint, Limits, Pool, Quota};
use crate::microthread::Microthread;
use crate::net::{Resolve, Resolver};
use crate::run::{AppData, RunContext};
use crate::scheduler::Scheduler;

/// The default fuel slice: how much a microthread runs before it yields to the
/// scheduler. 100k units (roughly 100k wasm instructions, tens of microseconds)
/// keeps a 1 ms sleeper's p99 lateness at its idle level beside a CPU hog, for a
/// few percent of compute (see `shared/PEERS.md`, "The tuned probe").
pub const DEFAULT_FUEL_SLICE: u64 = 100_000;

/// The most blocking threads the runtime's I/O thread starts (for WASI's file
/// I/O and name lookups); more work waits for one.
const MAX_BLOCKING_THREADS: usize = 64;

/// How microthreads are preempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Preemption {
    /// Fuel metering: every `slice` units of fuel the microthread yields to the
    /// scheduler. Deterministic.
    Fuel {
        /// Fuel units per slice.
        slice: u64,
    },
    /// No preemption and no metering: a microthread runs until it calls the host.
    /// One that never does starves the others on its worker. It can still be
    /// stopped: compiled code checks an epoch counter at loops and calls, which the
    /// runtime advances when a run is cancelled (see
    /// [`RuntimeBuilder::epoch_interruption`] for what that costs, and how to do
    /// without).
    Off,
}

/// Configures a [`Runtime`].
///
/// ```no_run
/// # fn main() -> Result<(), weft::Error> {
/// let runtime = weft::Runtime::builder()
///     .workers(1)
///     .preemption(weft::Preemption::Fuel { slice: 1_000_000 })
///     .max_microthreads(100_000)
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RuntimeBuilder {
    preemption: Preemption,
    workers: usize,
    limits: Limits,
    event_interval: Option<u32>,
    epoch_interruption: bool,
    ahead_of_need: bool,
    /// Room in the instance pool for each possible microthread ([`pool_for`](RuntimeBuilder::pool_for)).
    footprint: Footprint,
    cache_dir: CacheDir,
    use_cache: bool,
    address_space: u64,
    host_interfaces: Vec<Arc<HostInterfaces>>,
    data: Option<AppData>,
    resolver: Resolver,
    #[cfg(feature = "cluster")]
    cluster: Option<crate::cluster::ClusterConfig>,
}

/// A hook that adds an application's own host functions to the linker.
type HostInterfaces = dyn Fn(&mut Linker<Microthread>) -> wasmtime::Result<()> + Send + Sync;

impl std::fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeBuilder")
            .field("preemption", &self.preemption)
            .field("workers", &self.workers)
            .field("limits", &self.limits)
            .field("host_interfaces", &self.host_interfaces.len())
            .finish_non_exhaustive()
    }
}

/// The default of [`RuntimeBuilder::address_space`]: 16 TiB, an eighth of a
/// process's 128 TiB, so that a few runtimes fit in one process.
pub const DEFAULT_ADDRESS_SPACE: u64 = 16 << 40;

#[derive(Debug, Clone)]
enum CacheDir {
    Default,
    At(PathBuf),
    None,
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        RuntimeBuilder {
            preemption: Preemption::Fuel {
                slice: DEFAULT_FUEL_SLICE,
            },
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            limits: Limits::default(),
            event_interval: None,
            epoch_interruption: true,
            ahead_of_need: true,
            footprint: Footprint::DEFAULT,
            cache_dir: CacheDir::Default,
            use_cache: true,
            address_space: DEFAULT_ADDRESS_SPACE,
            host_interfaces: Vec::new(),
            data: None,
            resolver: Resolver::default(),
            #[cfg(feature = "cluster")]
            cluster: None,
        }
    }
}

/// The setters of [`RuntimeBuilder`] that store their argument as it is, each
/// written `name: Type => field` under its documentation. The `max_*` ones set a
/// field of [`Limits`], whose documentation says what the bound means and what
/// happens at it.
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty => $($field:ident).+;)*) => {$(
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.$($field).+ = value;
            self
        }
    )*};
}

impl RuntimeBuilder {
    setters! {
        /// How microthreads are preempted (default: fuel, [`DEFAULT_FUEL_SLICE`]).
        preemption: Preemption => preemption;

        /// Worker threads that run microthreads (default: one per core).
        workers: usize => workers;

        /// Sets [`Limits::max_microthreads`] (default 10,000).
        max_microthreads: u32 => limits.max_microthreads;

        /// Sets [`Limits::max_memory`] (default 256 MiB).
        max_memory: u64 => limits.max_memory;

        /// Sets [`Limits::max_message_size`] (default 16 MiB).
        max_message_size: u32 => limits.max_message_size;

        /// Sets [`Limits::max_channel_capacity`] (default 2^20).
        max_channel_capacity: u32 => limits.max_channel_capacity;

        /// Sets [`Limits::max_buffered_bytes`] (default 256 MiB).
        max_buffered_bytes: u64 => limits.max_buffered_bytes;

        /// Sets [`Limits::max_channels`] (default 2^20).
        max_channels: u32 => limits.max_channels;

        /// All limits at once.
        limits: Limits => limits;

        /// With [`Preemption::Off`], whether compiled code checks an epoch counter at
        /// loops and calls (default: yes), which is what lets a run be cancelled, or
        /// end at its deadline, while a microthread is busy in a loop that never calls
        /// the host. The checks cost: up to 2x on tight memory-bound loops (a sieve),
        /// a few percent on most code. Without them a busy microthread of a cancelled
        /// run is abandoned, not stopped: its run ends, but it keeps its worker until
        /// it returns. That suits a process that ends when its run does (`weft run`
        /// runs a program that cannot spawn this way). Fuel metering needs no epochs:
        /// with [`Preemption::Fuel`] this setting does nothing.
        epoch_interruption: bool => epoch_interruption;

        /// Whether a worker with nothing to run does a spawn's work ahead of need
        /// (default: yes): it makes fresh instances of each run's program (a few per
        /// run that spawns), so that a spawn skips its instantiation, and drops the
        /// stores of ended microthreads, so that a joiner is woken without waiting
        /// for the drop. Every microthread still starts in a fresh instance, never
        /// run; what a guest sees is the same either way. Costs a few spare
        /// instances of the pool (16 for the runtime at most) and the memory of
        /// those kept. A deterministic run never does it.
        ahead_of_need: bool => ahead_of_need;

        /// Whether to look up and store compiled programs in the cache (default: yes).
        /// Precompiled files still load when this is off.
        use_cache: bool => use_cache;

        /// Virtual address space the runtime may reserve for linear memories (default
        /// [`DEFAULT_ADDRESS_SPACE`], 16 TiB). If it holds 4 GiB for every possible
        /// microthread (`max_microthreads` × 4 GiB), each memory gets a 4 GiB slot, no
        /// 32-bit index can leave it, and compiled guest code needs no bounds check on
        /// most accesses: memory-bound code runs about 1.2x faster. Otherwise each slot
        /// is `max_memory` and code checks bounds. Reserving costs no memory, only
        /// address space: a process has 128 TiB, so a program that owns its process can
        /// give one runtime most of it (`weft run` gives 64 TiB).
        ///
        /// The two layouts compile to different code, so the compilation cache keeps
        /// their entries apart: with the defaults (16 TiB, 10,000 microthreads, slots
        /// of `max_memory`) a runtime does not reuse what `weft run` compiled (64 TiB:
        /// 4 GiB slots). One built with `.address_space(64 << 40)` and otherwise the
        /// same settings as `weft run` (fuel slice, `max_memory`; for a program that
        /// cannot spawn, `weft run` turns fuel and epochs off) shares its entries, in
        /// the same cache directory.
        address_space: u64 => address_space;
    }

    /// Size the instance pool for `program` (a component's bytes, or a precompiled
    /// file's): each possible microthread gets room for the core instances and
    /// tables one of it takes, if that is more than the default (enough for any
    /// Rust program; a Python program built by componentize-py needs more). Call
    /// it for each program the runtime will run. Without it, a program that needs
    /// more still runs, with fewer live microthreads: a spawn past what the pool
    /// holds is refused as past the live-microthread limit (`limit-reached`).
    /// Bytes that are not a component change nothing (loading them will say why).
    pub fn pool_for(mut self, program: &[u8]) -> Self {
        if let Some(footprint) = super::load::footprint(program) {
            self.footprint = self.footprint.max(footprint);
        }
        self
    }

    /// How many tasks tokio polls between checks for timers and I/O (tokio's
    /// `event_interval`; default tokio's). tokio runs on a thread of its own beside
    /// the workers, with only the host's own tasks: a microthread woken by a timer
    /// or a socket is queued for the workers at once, whatever this says.
    pub fn event_interval(mut self, ticks: u32) -> Self {
        self.event_interval = Some(ticks);
        self
    }

    /// Add the application's own host interfaces to what guests may import: `add`
    /// receives the linker after WASI and `weft:runtime` are in it, and adds
    /// functions (sync with `func_wrap`, async with `func_wrap_async`) or whole
    /// interfaces (through wasmtime's `bindgen!`). A host function reaches the
    /// microthread that calls it, and through it the application's data
    /// ([`data`](RuntimeBuilder::data), [`Microthread::data`]), from its
    /// `StoreContextMut<Microthread>`. An error it returns traps the calling
    /// microthread, which fails alone. May be called more than once.
    pub fn host_interfaces(
        mut self,
        add: impl Fn(&mut Linker<Microthread>) -> wasmtime::Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.host_interfaces.push(Arc::new(add));
        self
    }

    /// Data for the application's own host functions, shared by every run:
    /// [`Microthread::data`] finds it.
    pub fn data<T: std::any::Any + Send + Sync>(mut self, value: T) -> Self {
        self.data = Some(AppData(Arc::new(value)));
        self
    }

    /// Where compiled programs are cached, and the secret that signs them (and the
    /// files of `weft compile`) is kept: `Some(dir)`, or `None` for no cache and no
    /// precompiled files. Default: [`cache::default_dir`]
    /// (`$WEFT_CACHE_DIR`, `$XDG_CACHE_HOME/weft` or `~/.cache/weft`).
    pub fn cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = match dir {
            Some(d) => CacheDir::At(d),
            None => CacheDir::None,
        };
        self
    }

    /// How the runtime's guests' host names are looked up (default:
    /// [`SystemResolver`](crate::net::SystemResolver)): only names one of the
    /// run's grants could cover, [`MAX_LOOKUPS`](crate::net::MAX_LOOKUPS) at once,
    /// each within [`LOOKUP_TIMEOUT`](crate::net::LOOKUP_TIMEOUT). For
    /// `weft_guest::net` and `std::net` (WASI's `ip-name-lookup`) alike.
    pub fn resolver(mut self, resolver: impl Resolve) -> Self {
        self.resolver = Resolver::new(Arc::new(resolver));
        self
    }

    /// Join the cluster `config` describes when the runtime is built: this runtime
    /// is then a node of it ([`Runtime::cluster`](crate::Runtime::cluster)), whose
    /// channels other nodes can attach to (see [`crate::cluster`]). `build` fails
    /// with [`Error::Cluster`] if the server cannot be reached or refuses the node;
    /// it blocks while it connects (at most the connect timeout).
    #[cfg(feature = "cluster")]
    pub fn cluster(mut self, config: crate::cluster::ClusterConfig) -> Self {
        self.cluster = Some(config);
        self
    }

    /// Create the runtime: the engine, its instance pool, and the worker threads.
    pub fn build(self) -> Result<Runtime, Error> {
        let limits = &self.limits;
        if self.workers == 0 {
            return Err(Error::Config("workers must be at least 1".into()));
        }
        limits.check_floors().map_err(Error::Config)?;
        crate::limits::check_map_count(limits.max_microthreads).map_err(Error::Config)?;
        let fuel_slice = match self.preemption {
            Preemption::Fuel { slice: 0 } => {
                return Err(Error::Config("the fuel slice must be at least 1".into()));
            }
            Preemption::Fuel { slice } => Some(slice),
            Preemption::Off => None,
        };

        let epochs = fuel_slice.is_none() && self.epoch_interruption;
        let reset = engine::memory_reset();
        tracing::debug!(target: "weft::runtime", "freed memory slots are reset by: {reset}");
        let engine = Engine::new(&engine::engine_config(
            limits,
            self.footprint,
            fuel_slice.is_some(),
            epochs,
            self.address_space,
            reset,
        ))
        .map_err(|e| Error::Config(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        crate::wit::add_to_linker(&mut linker).map_err(Error::Config)?;
        for add in &self.host_interfaces {
            add(&mut linker)
                .map_err(|e| Error::Config(format!("adding the application's host interfaces: {e:#}")))?;
        }

        // tokio drives timers, sockets and host tasks on a thread of its own; the
        // microthreads run on weft's workers (`scheduler`).
        let mut tokio = tokio::runtime::Builder::new_multi_thread();
        // Its blocking threads do WASI's file I/O and the system's name lookups (at
        // most `MAX_LOOKUPS` of these at once): bounded, so that guests cannot make
        // the process start hundreds of threads.
        tokio
            .worker_threads(1)
            .max_blocking_threads(MAX_BLOCKING_THREADS)
            .thread_name("weft-io")
            .enable_all();
        if let Some(ticks) = self.event_interval {
            tokio.event_interval(ticks);
        }
        let tokio = tokio
            .build()
            .map_err(|e| Error::Config(format!("starting the scheduler: {e}")))?;
        let handle = tokio.handle().clone();
        #[cfg(feature = "cluster")]
        let cluster = match &self.cluster {
            Some(config) => Some(crate::cluster::Cluster::join(config, &handle)?),
            None => None,
        };
        let scheduler = Scheduler::new(self.workers, "weft-worker", handle.clone())
            .map_err(|e| Error::Config(format!("starting the worker threads: {e}")))?;
        // Runs are watched from a thread of their own: with preemption off, every
        // worker may be busy in a guest that never yields, and a deadline, a cancel
        // or Ctrl-C must still end the run.
        let supervisor = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(1)
            .thread_name("weft-supervisor")
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("starting the supervisor thread: {e}")))?;

        let keys = match &self.cache_dir {
            CacheDir::None => None,
            CacheDir::At(dir) => Some(cache::Store::open(dir).map_err(|e| Error::Config(e.to_string()))?),
            CacheDir::Default => match cache::default_dir().map(|d| cache::Store::open(&d)) {
                Some(Ok(store)) => Some(store),
                Some(Err(e)) => {
                    tracing::warn!(target: "weft::cache", "no compilation cache: {e}");
                    None
                }
                None => None,
            },
        };

        let live = Arc::new(Quota::new(self.limits.max_microthreads));
        #[cfg(feature = "cluster")]
        if let Some(cluster) = &cluster {
            // What this node tells the others of its room, in its heartbeats.
            let (live, workers) = (live.clone(), self.workers.max(1) as f32);
            cluster.set_room(Box::new(move || {
                let used = live.used();
                (live.max().saturating_sub(used), used as f32 / workers)
            }));
        }
        let (scheduler, tally) = (Arc::new(scheduler), Arc::default());
        let metrics = crate::metrics::Metrics::new(Arc::clone(&tally), scheduler.clone());
        Ok(Runtime {
            inner: Arc::new(Inner {
                context: RunContext {
                    io: tokio.handle().clone(),
                    scheduler,
                    supervisor: supervisor.handle().clone(),
                    engine,
                    live,
                    spare: Arc::new(Quota::new(crate::limits::SPARE_INSTANCES)),
                    pool: Arc::new(Pool::new(engine::pool_instances(limits), self.footprint)),
                    ahead_of_need: self.ahead_of_need,
                    resolver: self.resolver,
                    data: self.data,
                    tally,
                    #[cfg(feature = "cluster")]
                    cluster,
                },
                linker,
                tokio: Some(tokio),
                supervisor: Some(supervisor),
                fuel_slice,
                epochs,
                limits: self.limits,
                workers: self.workers,
                memory_reset: reset,
                keys,
                use_cache: self.use_cache,
                runs: Mutex::default(),
                metrics,
            }),
        })
    }
}

//! The runtime: one wasmtime `Engine` (pooling allocator, fuel or epochs), the
//! linker that provides WASI and `weft:runtime` to guests, the worker threads that
//! run microthreads (`scheduler`), the tokio thread that drives their timers and
//! sockets, and what all its runs share: the instance pool and its count of live
//! microthreads. Configured by [`RuntimeBuilder`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::cache;
use crate::error::Error;
use crate::limits::{Limits, Quota};
use crate::microthread::Microthread;
use crate::net::{Resolve, Resolver};
use crate::run::{AppData, Run};
use crate::scheduler::Scheduler;
use crate::sync::Unpoisoned;

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
    cache_dir: CacheDir,
    use_cache: bool,
    address_space: u64,
    host_interfaces: Vec<Arc<HostInterfaces>>,
    data: Option<AppData>,
    resolver: Resolver,
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
            cache_dir: CacheDir::Default,
            use_cache: true,
            address_space: DEFAULT_ADDRESS_SPACE,
            host_interfaces: Vec::new(),
            data: None,
            resolver: Resolver::default(),
        }
    }
}

impl RuntimeBuilder {
    /// How microthreads are preempted (default: fuel, [`DEFAULT_FUEL_SLICE`]).
    pub fn preemption(mut self, preemption: Preemption) -> Self {
        self.preemption = preemption;
        self
    }

    /// Worker threads that run microthreads (default: one per core).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Maximum live microthreads, all runs together (default 10,000): the instance
    /// pool holds this many.
    pub fn max_microthreads(mut self, max: u32) -> Self {
        self.limits.max_microthreads = max;
        self
    }

    /// Maximum linear memory per microthread, in bytes (default 256 MiB).
    pub fn max_memory(mut self, bytes: u64) -> Self {
        self.limits.max_memory = bytes;
        self
    }

    /// Maximum size of a message or spawn argument, in bytes (default 16 MiB).
    pub fn max_message_size(mut self, bytes: u32) -> Self {
        self.limits.max_message_size = bytes;
        self
    }

    /// Maximum capacity of a buffered channel, in messages (default 2^20).
    pub fn max_channel_capacity(mut self, messages: u32) -> Self {
        self.limits.max_channel_capacity = messages;
        self
    }

    /// Maximum bytes buffered in a run's channels, all together (default 256 MiB).
    pub fn max_buffered_bytes(mut self, bytes: u64) -> Self {
        self.limits.max_buffered_bytes = bytes;
        self
    }

    /// Maximum channels a run may have open at once (default 2^20).
    pub fn max_channels(mut self, max: u32) -> Self {
        self.limits.max_channels = max;
        self
    }

    /// All limits at once.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
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

    /// With [`Preemption::Off`], whether compiled code checks an epoch counter at
    /// loops and calls (default: yes), which is what lets a run be cancelled, or
    /// end at its deadline, while a microthread is busy in a loop that never calls
    /// the host. The checks cost: up to 2x on tight memory-bound loops (a sieve),
    /// a few percent on most code. Without them a busy microthread of a cancelled
    /// run is abandoned, not stopped: its run ends, but it keeps its worker until
    /// it returns. That suits a process that ends when its run does (`weft run`
    /// runs a program that cannot spawn this way). Fuel metering needs no epochs:
    /// with [`Preemption::Fuel`] this setting does nothing.
    pub fn epoch_interruption(mut self, yes: bool) -> Self {
        self.epoch_interruption = yes;
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

    /// Whether to look up and store compiled programs in the cache (default: yes).
    /// Precompiled files still load when this is off.
    pub fn use_cache(mut self, yes: bool) -> Self {
        self.use_cache = yes;
        self
    }

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
    pub fn address_space(mut self, bytes: u64) -> Self {
        self.address_space = bytes;
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

    /// Create the runtime: the engine, its instance pool, and the worker threads.
    pub fn build(self) -> Result<Runtime, Error> {
        let limits = &self.limits;
        if self.workers == 0 {
            return Err(Error::Config("workers must be at least 1".into()));
        }
        if limits.max_microthreads == 0 {
            return Err(Error::Config("max_microthreads must be at least 1".into()));
        }
        if limits.max_memory < 64 << 10 {
            return Err(Error::Config(
                "max_memory must be at least 64 KiB (one wasm page)".into(),
            ));
        }
        crate::limits::check_map_count(limits.max_microthreads).map_err(Error::Config)?;
        let fuel_slice = match self.preemption {
            Preemption::Fuel { slice: 0 } => {
                return Err(Error::Config("the fuel slice must be at least 1".into()));
            }
            Preemption::Fuel { slice } => Some(slice),
            Preemption::Off => None,
        };

        let epochs = fuel_slice.is_none() && self.epoch_interruption;
        let reset = memory_reset();
        tracing::debug!(target: "weft::runtime", "freed memory slots are reset by: {reset}");
        let engine = Engine::new(&engine_config(
            limits,
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

        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                tokio: Some(tokio),
                handle,
                scheduler: Arc::new(scheduler),
                supervisor: Some(supervisor),
                fuel_slice,
                epochs,
                live: Arc::new(Quota::new(self.limits.max_microthreads)),
                limits: self.limits,
                workers: self.workers,
                memory_reset: reset,
                keys,
                use_cache: self.use_cache,
                runs: Mutex::default(),
                data: self.data,
                resolver: self.resolver,
            }),
        })
    }
}

/// The wasmtime configuration: async fibers, fuel if preempting, and a pooling
/// allocator sized for `limits.max_microthreads` instances with copy-on-write images.
fn engine_config(
    limits: &Limits,
    fuel: bool,
    epochs: bool,
    address_space: u64,
    reset: MemoryReset,
) -> Config {
    // A component built by Rust for wasm32-wasip2 holds a few core instances (the
    // program and small adapter shims) and tables, and one memory.
    const CORE_INSTANCES_PER_COMPONENT: u32 = 8;
    const TABLES_PER_COMPONENT: u32 = 8;
    let instances = limits.max_microthreads.saturating_add(8);

    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT * 4)
        .total_memories(instances)
        .max_memories_per_component(1)
        .total_tables(instances.saturating_mul(TABLES_PER_COMPONENT))
        .max_tables_per_component(TABLES_PER_COMPONENT * 4)
        .table_elements(crate::limits::MAX_TABLE_ELEMENTS)
        .total_stacks(instances)
        .max_memory_size(limits.max_memory as usize)
        // A freed slot keeps its pages and is reset in place, so a spawn that
        // reuses it takes no page faults: without this, spawn is 2-3x slower.
        // `PAGEMAP_SCAN` (Linux 6.7+, and only without swap: see `MemoryReset`)
        // makes the reset touch only the pages the microthread dirtied; without it
        // the whole kept range is zeroed, and a burst of microthreads leaves every
        // slot it used that much resident: keep less there.
        .linear_memory_keep_resident(match reset {
            MemoryReset::PagemapScan => 1 << 20,
            MemoryReset::Plain => 128 << 10,
        })
        .table_keep_resident(64 << 10)
        .pagemap_scan(match reset {
            MemoryReset::PagemapScan => Enabled::Auto,
            MemoryReset::Plain => Enabled::No,
        });

    let mut config = Config::new();
    config
        .consume_fuel(fuel)
        // Without fuel nothing yields: epoch checks are what stop a busy microthread.
        .epoch_interruption(epochs)
        .max_wasm_stack(512 << 10)
        .async_stack_size(1 << 20)
        .memory_reservation(memory_reservation(limits, address_space))
        .memory_guard_size(64 << 10)
        .memory_reservation_for_growth(0)
        // weft drives components with `call_async`, not the component model's
        // async ABI: without its bookkeeping every call and instance is cheaper.
        .concurrency_support(false)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// Address space each linear memory's slot reserves: 4 GiB when that fits in the
/// runtime's `address_space` for every slot (see [`RuntimeBuilder::address_space`]),
/// else `max_memory`.
fn memory_reservation(limits: &Limits, address_space: u64) -> u64 {
    const FULL: u64 = 4 << 30;
    let slots = u64::from(limits.max_microthreads) + 8;
    if slots.saturating_mul(FULL) <= address_space {
        FULL.max(limits.max_memory)
    } else {
        limits.max_memory
    }
}

/// How a freed slot of the instance pool has its linear memory reset before the
/// next microthread uses it (see [`Runtime::memory_reset`]). Either way a
/// microthread never sees what an earlier one left in its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemoryReset {
    /// Linux's `PAGEMAP_SCAN` finds the pages the last microthread wrote: those
    /// are reset in place (up to 1 MiB, kept resident), the rest given back to
    /// the kernel. Cheapest for a microthread that wrote little.
    PagemapScan,
    /// The first 128 KiB are reset in place (kept resident), and the rest of what
    /// the microthread could have written is given back to the kernel, whatever
    /// it wrote.
    Plain,
}

impl std::fmt::Display for MemoryReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MemoryReset::PagemapScan => "PAGEMAP_SCAN (the pages written)",
            MemoryReset::Plain => "plain (zero the kept pages, give back the rest)",
        })
    }
}

/// Which reset this host allows: `PAGEMAP_SCAN` only on a kernel that has it
/// (Linux 6.7 and later: `kernel_release`, from `/proc/sys/kernel/osrelease`) and
/// with no swap active (`swaps`, the contents of `/proc/swaps`; `None` when it
/// cannot be read, which counts as swap). wasmtime 48's scan looks only at pages
/// present in memory, so a page a microthread wrote that was then swapped out
/// would be neither reset nor given back, and the next microthread in the slot
/// could read it (fixed upstream in wasmtime 50). Swap turned on after the
/// runtime was built is not seen: build runtimes after `swapon`.
pub(crate) fn memory_reset_for(kernel_release: Option<&str>, swaps: Option<&str>) -> MemoryReset {
    let has_scan = kernel_release.is_some_and(|release| {
        let mut parts = release
            .trim()
            .split(['.', '-'])
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        (major, minor) >= (6, 7)
    });
    // The first line of `/proc/swaps` is a header; each further line, an active
    // swap area.
    let no_swap = swaps.is_some_and(|s| s.lines().skip(1).all(|l| l.trim().is_empty()));
    if has_scan && no_swap {
        MemoryReset::PagemapScan
    } else {
        MemoryReset::Plain
    }
}

/// [`memory_reset_for`] this host.
fn memory_reset() -> MemoryReset {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    memory_reset_for(
        read("/proc/sys/kernel/osrelease").as_deref(),
        read("/proc/swaps").as_deref(),
    )
}

/// Runs programs as microthreads. Cheap to clone (it is shared).
///
/// Dropping the last clone (with every [`Program`](crate::Program) and
/// [`RunHandle`](crate::RunHandle), which hold one) cancels the runs still going and
/// stops the worker threads, from any thread, inside an async context or not.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<Microthread>,
    /// tokio: the thread that drives timers, sockets and host tasks (not the
    /// workers, which are `scheduler`'s). Taken only when the runtime is dropped.
    tokio: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    /// The worker threads that run microthreads.
    scheduler: Arc<Scheduler>,
    /// The thread that watches runs to their end. Taken only when dropped.
    supervisor: Option<tokio::runtime::Runtime>,
    fuel_slice: Option<u64>,
    /// Compiled code checks epochs (fuel off, and not turned off).
    epochs: bool,
    limits: Limits,
    /// Live microthreads of all runs: the pool holds `limits.max_microthreads`.
    live: Arc<Quota>,
    workers: usize,
    memory_reset: MemoryReset,
    /// The cache directory and its secret.
    keys: Option<cache::Store>,
    use_cache: bool,
    /// The runs started on this runtime, to cancel those still going when it is
    /// dropped.
    runs: Mutex<Runs>,
    /// The application's data for its host functions.
    data: Option<AppData>,
    /// Looks up its guests' host names.
    resolver: Resolver,
}

#[derive(Default)]
struct Runs {
    runs: Vec<Weak<Run>>,
    /// `runs.len()` after the last pruning, to prune in amortised O(1).
    pruned_len: usize,
}

/// How long dropping a runtime waits for its cancelled microthreads to stop, when it
/// may wait at all (not in an async context).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

impl Drop for Inner {
    fn drop(&mut self) {
        let runs = std::mem::take(&mut self.runs.value_mut().runs);
        for run in runs.iter().filter_map(Weak::upgrade) {
            run.cancel();
            run.cancel_all();
        }
        // tokio panics when a runtime that waits for its workers is dropped in an
        // async context (on one of its own workers, say): there, let it stop in the
        // background. The cancelled microthreads stop at their next yield or epoch
        // check, so the workers do stop.
        let in_async = tokio::runtime::Handle::try_current().is_ok();
        self.scheduler
            .shutdown(if in_async { Duration::ZERO } else { SHUTDOWN_GRACE });
        for rt in [self.supervisor.take(), self.tokio.take()].into_iter().flatten() {
            if in_async {
                rt.shutdown_background();
            } else {
                rt.shutdown_timeout(SHUTDOWN_GRACE);
            }
        }
    }
}

impl Runtime {
    /// A runtime with the default configuration.
    pub fn new() -> Result<Runtime, Error> {
        RuntimeBuilder::default().build()
    }

    /// Configure a runtime.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// The cache directory, if there is one.
    pub fn cache_dir(&self) -> Option<&Path> {
        self.inner.keys.as_ref().map(cache::Store::dir)
    }

    /// Remove every compiled program from the cache; returns how many.
    pub fn clear_cache(&self) -> Result<usize, Error> {
        match &self.inner.keys {
            Some(store) => store
                .clear()
                .map_err(|e| Error::Config(format!("cannot clear the cache: {e}"))),
            None => Ok(0),
        }
    }

    /// The cache, when compiled programs are to be looked up and stored.
    pub(crate) fn cache(&self) -> Option<&cache::Store> {
        self.inner.keys.as_ref().filter(|_| self.inner.use_cache)
    }

    /// The store whose secret verifies precompiled files.
    pub(crate) fn key_store(&self) -> Result<&cache::Store, cache::Unusable> {
        self.inner.keys.as_ref().ok_or_else(|| {
            cache::Unusable::Io(
                "precompiled files need weft's cache directory, which holds the secret that signs them"
                    .into(),
            )
        })
    }

    /// The limits every program of this runtime runs under.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Live microthreads now, all runs together.
    pub fn live_microthreads(&self) -> u32 {
        self.inner.live.used()
    }

    /// Worker threads.
    pub fn workers(&self) -> usize {
        self.inner.workers
    }

    /// How a freed slot's memory is reset for the next microthread: decided when
    /// the runtime is built, by the kernel and whether swap is on (see
    /// [`MemoryReset`]).
    pub fn memory_reset(&self) -> MemoryReset {
        self.inner.memory_reset
    }

    /// The fuel slice, if microthreads are preempted.
    pub fn fuel_slice(&self) -> Option<u64> {
        self.inner.fuel_slice
    }

    /// Whether a busy microthread can be stopped: by fuel, or by epochs.
    pub(crate) fn interruptible(&self) -> bool {
        self.inner.fuel_slice.is_some() || self.inner.epochs
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn linker(&self) -> &Linker<Microthread> {
        &self.inner.linker
    }

    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        &self.inner.handle
    }

    /// The worker threads that run microthreads.
    pub(crate) fn scheduler(&self) -> &Arc<Scheduler> {
        &self.inner.scheduler
    }

    /// Where runs are watched (see `run::Run::supervise`).
    pub(crate) fn supervisor(&self) -> &tokio::runtime::Handle {
        self.inner
            .supervisor
            .as_ref()
            .expect("taken only on drop")
            .handle()
    }

    pub(crate) fn data(&self) -> Option<&AppData> {
        self.inner.data.as_ref()
    }

    pub(crate) fn resolver(&self) -> &Resolver {
        &self.inner.resolver
    }

    pub(crate) fn live_quota(&self) -> &Arc<Quota> {
        &self.inner.live
    }

    /// Keep track of `run`, to cancel it should the runtime be dropped first.
    pub(crate) fn register(&self, run: &Arc<Run>) {
        let mut r = self.inner.runs.locked();
        if r.runs.len() >= 2 * r.pruned_len.max(16) {
            r.runs.retain(|w| w.strong_count() > 0);
            r.pruned_len = r.runs.len();
        }
        r.runs.push(Arc::downgrade(run));
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.inner.workers)
            .field("fuel_slice", &self.inner.fuel_slice)
            .field("limits", &self.inner.limits)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_SWAP: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
    const SWAP: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
                        /swapfile                               file\t\t2097148\t\t0\t\t-2\n";

    /// What the cache shares between runtimes: the key follows the code's memory
    /// layout (4 GiB slots or not), not, say, the number of workers.
    #[test]
    fn the_cache_key_follows_the_slot_layout_not_the_workers() {
        // 1,008 slots of 4 GiB take about 4 TiB.
        let build = |workers: usize, space: u64| {
            Runtime::builder()
                .workers(workers)
                .max_microthreads(1000)
                .address_space(space)
                .cache_dir(None)
                .build()
                .unwrap()
        };
        let key = |rt: &Runtime| cache::engine_key(rt.engine());
        let four_gib_slots = build(1, 8 << 40);
        assert_eq!(key(&four_gib_slots), key(&build(2, 8 << 40)));
        assert_ne!(key(&four_gib_slots), key(&build(1, 2 << 40)));
    }

    #[test]
    fn pagemap_scan_only_without_swap_on_a_kernel_that_has_it() {
        assert_eq!(
            memory_reset_for(Some("6.7.0\n"), Some(NO_SWAP)),
            MemoryReset::PagemapScan
        );
        assert_eq!(
            memory_reset_for(Some("6.18.44-fc-v1272\n"), Some(NO_SWAP)),
            MemoryReset::PagemapScan
        );
        // Swap on (a file, a partition, zram): a written page may be swapped out,
        // and wasmtime 48's scan would skip it.
        assert_eq!(memory_reset_for(Some("6.18.44"), Some(SWAP)), MemoryReset::Plain);
        let zram =
            format!("{NO_SWAP}/dev/zram0                              partition\t8388604\t\t0\t\t100\n");
        assert_eq!(memory_reset_for(Some("6.18.44"), Some(&zram)), MemoryReset::Plain);
        // Unknown swap counts as swap.
        assert_eq!(memory_reset_for(Some("6.18.44"), None), MemoryReset::Plain);
        // A kernel without the ioctl, or none known.
        assert_eq!(
            memory_reset_for(Some("6.6.30"), Some(NO_SWAP)),
            MemoryReset::Plain
        );
        assert_eq!(
            memory_reset_for(Some("5.15.0-91-generic"), Some(NO_SWAP)),
            MemoryReset::Plain
        );
        assert_eq!(memory_reset_for(None, Some(NO_SWAP)), MemoryReset::Plain);
    }

    #[test]
    fn the_last_runtime_may_be_dropped_on_one_of_its_own_workers() {
        let rt = Runtime::builder()
            .workers(1)
            .max_microthreads(1)
            .cache_dir(None)
            .build()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        rt.handle().clone().spawn(async move {
            drop(rt);
            tx.send(()).unwrap();
        });
        rx.recv_timeout(Duration::from_secs(30))
            .expect("dropping the runtime on its worker returned");
    }

    #[test]
    fn a_runtime_may_be_dropped_inside_another_async_runtime() {
        let outer = tokio::runtime::Builder::new_current_thread().build().unwrap();
        outer.block_on(async {
            let rt = Runtime::builder()
                .workers(1)
                .max_microthreads(1)
                .cache_dir(None)
                .build()
                .unwrap();
            drop(rt);
        });
    }
}

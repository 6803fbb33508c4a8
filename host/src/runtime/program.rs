//! A program: a component compiled once (or found in the cache, or precompiled) and
//! pre-linked against the host, from which every microthread of every run is
//! instantiated; and starting a run of it. Loading one is `load`'s.

use std::sync::Arc;

use super::state::Runtime;
use crate::cache::CacheStatus;
use crate::deterministic::Lane;
use crate::error::Error;
use crate::microthread::{self, Image};
use crate::run::{ExitStatus, Refused, Run, RunHandle, RunOptions};

/// A compiled, pre-linked program. Cheap to clone; run it as often as you like.
///
/// ```no_run
/// # fn main() -> Result<(), weft::Error> {
/// let runtime = weft::Runtime::new()?;
/// let program = runtime.load("app.wasm")?;
/// let status = program.run(&weft::RunOptions::new().arg("--verbose"))?;
/// std::process::exit(status.code());
/// # }
/// ```
#[derive(Clone)]
pub struct Program {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Runtime,
    name: String,
    cache_status: CacheStatus,
    image: Arc<dyn Image>,
}

impl Program {
    pub(super) fn new(
        runtime: Runtime,
        name: String,
        cache_status: CacheStatus,
        image: Arc<dyn Image>,
    ) -> Program {
        Program {
            inner: Arc::new(Inner {
                runtime,
                name,
                cache_status,
                image,
            }),
        }
    }

    /// How the compiled code was obtained: compiled, from the cache, or from a
    /// precompiled file.
    pub fn cache_status(&self) -> &CacheStatus {
        &self.inner.cache_status
    }

    /// The name the program was loaded under (its path, usually).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Whether the program uses the weft world, i.e. can spawn microthreads.
    pub fn is_spawnable(&self) -> bool {
        self.inner.image.can_spawn()
    }

    /// The runtime the program was loaded on.
    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    /// Start a run of the program's `main` with `options`, on the runtime's workers,
    /// and return its handle at once. The run ends when `main` and its structured
    /// children are done, a microthread calls `exit`, or the handle ends it
    /// ([`RunHandle::cancel`], a deadline, a budget): see [`RunHandle`]. Dropping the
    /// handle cancels the run.
    ///
    /// Errors, before anything runs, if the program has no `main`, a directory grant
    /// is not a directory, an option asks for more than the runtime allows, or the
    /// runtime already runs its maximum of microthreads. A start refused so takes
    /// none of the channel ends handed with `options`: a retry gets them.
    pub fn start(&self, options: &RunOptions) -> Result<RunHandle, Error> {
        let runtime = &self.inner.runtime;
        if !self.inner.image.has_main() {
            return Err(Error::NoMain {
                what: self.inner.name.clone(),
            });
        }
        options.check_grants()?;
        let mut limits = options.limits(runtime.limits(), runtime.fuel_slice(), runtime.interruptible())?;
        limits.graceful_end = self.inner.image.can_spawn();
        let deterministic = match options.deterministic {
            Some(seed) => Some(
                Lane::start(seed, options.trace_schedule.as_ref().map(|t| t.0.clone()))
                    .map_err(|e| Error::Config(format!("starting the thread of a deterministic run: {e}")))?,
            ),
            None => None,
        };
        let endpoints = options.take_endpoints()?;
        let mut for_run = options.for_run();
        if !self.inner.image.can_spawn() && options.deterministic.is_none() {
            // Its file I/O may then block the worker it holds (see `RunOptions::wasi_ctx`).
            for_run.held_worker = runtime.scheduler().hold_a_worker().map(Arc::new);
        }
        let run = Run::new(
            for_run,
            endpoints,
            runtime.data().cloned(),
            limits,
            runtime.handle().clone(),
            runtime.scheduler().clone(),
            runtime.supervisor().clone(),
            runtime.engine().clone(),
            runtime.live_quota().clone(),
            deterministic,
            runtime.resolver().clone(),
        );
        let handle = RunHandle::new(run.clone(), Arc::new(self.clone()));
        if options.deadline == Some(std::time::Duration::ZERO) {
            run.finish_now(ExitStatus::DeadlineExceeded);
            return Ok(handle);
        }
        // Registered first: should the runtime go away now, it cancels this run too.
        runtime.register(&run);
        let main = match microthread::start_main(&run, &self.inner.image) {
            Ok(main) => main,
            Err(Refused::LimitReached(max)) => {
                // Nothing ran: the ends go back, for a retry with the same options.
                options.give_back_endpoints(run.untaken_endpoints());
                return Err(Error::LimitReached { max });
            }
        };
        run.supervise(main);
        Ok(handle)
    }

    /// Run the program's `main` with `options`, blocking the calling thread until the
    /// program has ended: [`start`](Program::start), then [`RunHandle::wait`].
    pub fn run(&self, options: &RunOptions) -> Result<ExitStatus, Error> {
        Ok(self.start(options)?.wait())
    }

    /// Like [`run`](Program::run), as a future that any executor can poll: the
    /// microthreads run on the runtime's own workers. Dropping the future cancels
    /// the run.
    pub async fn run_async(&self, options: &RunOptions) -> Result<ExitStatus, Error> {
        Ok(self.start(options)?.await)
    }
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("name", &self.inner.name)
            .field("spawnable", &self.is_spawnable())
            .field("cache_status", &self.inner.cache_status)
            .finish()
    }
}

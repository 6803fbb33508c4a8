//! A runtime's state, shared by its clones, its programs and its runs: the
//! engine and linker, the tokio and supervisor threads, the workers, the count of
//! live microthreads, the cache, and the runs it started (cancelled when the last
//! clone goes).

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use wasmtime::Engine;
use wasmtime::component::Linker;

use super::engine::MemoryReset;
use crate::cache;
use crate::limits::Limits;
use crate::microthread::Microthread;
use crate::run::{Run, RunContext};
use crate::sync::{Pruned, Unpoisoned};

/// Runs programs as microthreads. Cheap to clone (it is shared).
///
/// Dropping the last clone (with every [`Program`](crate::Program) and
/// [`RunHandle`](crate::RunHandle), which hold one) cancels the runs still going and
/// stops the worker threads, from any thread, inside an async context or not.
#[derive(Clone)]
pub struct Runtime {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    /// What each run gets from the runtime: its engine, its threads (tokio's,
    /// the workers, the supervisor's), the count of live microthreads of all runs
    /// (the pool holds `limits.max_microthreads`), the resolver, the data.
    pub(super) context: RunContext,
    pub(super) linker: Linker<Microthread>,
    /// tokio: the thread that drives timers, sockets and host tasks (not the
    /// workers, which are the context's `scheduler`). Taken only when the
    /// runtime is dropped.
    pub(super) tokio: Option<tokio::runtime::Runtime>,
    /// The thread that watches runs to their end. Taken only when dropped.
    pub(super) supervisor: Option<tokio::runtime::Runtime>,
    pub(super) fuel_slice: Option<u64>,
    /// Compiled code checks epochs (fuel off, and not turned off).
    pub(super) epochs: bool,
    pub(super) limits: Limits,
    pub(super) workers: usize,
    pub(super) memory_reset: MemoryReset,
    /// The cache directory and its secret.
    pub(super) keys: Option<cache::Store>,
    pub(super) use_cache: bool,
    /// The runs started on this runtime, to cancel those still going when it is
    /// dropped.
    pub(super) runs: Mutex<Runs>,
    /// What it shows Prometheus.
    pub(super) metrics: crate::metrics::Metrics,
}

/// The runs a runtime started, those that have gone pruned as more start.
pub(super) type Runs = Pruned<Vec<Weak<Run>>>;

/// How long dropping a runtime waits for its cancelled microthreads to stop, when it
/// may wait at all (not in an async context).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

impl Drop for Inner {
    fn drop(&mut self) {
        let runs = self.runs.value_mut().take();
        for run in runs.iter().filter_map(Weak::upgrade) {
            run.cancel();
            run.abort_all();
        }
        // tokio panics when a runtime that waits for its workers is dropped in an
        // async context (on one of its own workers, say): there, let it stop in the
        // background. The cancelled microthreads stop at their next yield or epoch
        // check, so the workers do stop.
        let in_async = tokio::runtime::Handle::try_current().is_ok();
        self.context
            .scheduler
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
    /// The cache, when compiled programs are to be looked up and stored.
    pub(super) fn cache(&self) -> Option<&cache::Store> {
        self.inner.keys.as_ref().filter(|_| self.inner.use_cache)
    }

    /// The store whose secret verifies precompiled files.
    pub(super) fn key_store(&self) -> Result<&cache::Store, cache::Unusable> {
        self.inner.keys.as_ref().ok_or_else(|| {
            cache::Unusable::Io(
                "precompiled files need weft's cache directory, which holds the secret that signs them"
                    .into(),
            )
        })
    }

    pub(super) fn engine(&self) -> &Engine {
        &self.inner.context.engine
    }

    pub(super) fn linker(&self) -> &Linker<Microthread> {
        &self.inner.linker
    }

    /// Its metrics, read from its runs and workers at each scrape: for an
    /// application's own Prometheus registry, or encoded on their own (see
    /// [`metrics`](crate::metrics) for the list).
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.inner.metrics
    }

    /// Keep track of `run`, to cancel it should the runtime be dropped first.
    pub(super) fn register(&self, run: &Arc<Run>) {
        let mut runs = self.inner.runs.locked();
        runs.make_room(16, |w| w.strong_count() > 0)
            .push(Arc::downgrade(run));
    }
}

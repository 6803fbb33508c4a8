//! The runtime: one wasmtime `Engine` (pooling allocator, fuel or epochs), the
//! linker that provides WASI and `weft:runtime` to guests, the worker threads that
//! run microthreads (`scheduler`), the tokio thread that drives their timers and
//! sockets, and what all its runs share: the instance pool and its count of live
//! microthreads. Configured by [`RuntimeBuilder`].
//!
//! `Runtime`'s whole API is here: building one (`builder`), loading programs
//! (`load`), and what it reports. Its state is `state`'s, its engine `engine`'s,
//! a program and the start of a run of it `program`'s.

mod builder;
mod engine;
pub(crate) mod load;
pub(crate) mod program;
mod start;
mod state;

use std::path::Path;

pub use builder::{DEFAULT_ADDRESS_SPACE, DEFAULT_FUEL_SLICE, Preemption, RuntimeBuilder};
pub use engine::MemoryReset;
use program::Program;
pub use state::Runtime;

use crate::cache;
use crate::error::Error;
use crate::limits::Limits;

impl Runtime {
    /// A runtime with the default configuration.
    pub fn new() -> Result<Runtime, Error> {
        RuntimeBuilder::default().build()
    }

    /// Configure a runtime.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// Read, compile (or find in the cache) and link a program from a `.wasm`
    /// component file, or load a precompiled `.cwasm` written by
    /// [`precompile`](Runtime::precompile).
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Program, Error> {
        load::from_file(self, path.as_ref(), &mut || ())
    }

    /// Like [`load`](Runtime::load), calling `on_compile` just before compiling
    /// (not when the cache or a precompiled file has the code): to tell a user why
    /// they wait.
    pub fn load_with(&self, path: impl AsRef<Path>, mut on_compile: impl FnMut()) -> Result<Program, Error> {
        load::from_file(self, path.as_ref(), &mut on_compile)
    }

    /// Compile and link a program from the bytes of a component (or of a
    /// precompiled file); `name` names it in errors.
    pub fn compile(&self, bytes: &[u8], name: &str) -> Result<Program, Error> {
        load::from_bytes(self, bytes, name, &mut || ())
    }

    /// Like [`compile`](Runtime::compile), calling `on_compile` just before
    /// compiling (not when the cache or a precompiled file has the code).
    pub fn compile_with(
        &self,
        bytes: &[u8],
        name: &str,
        mut on_compile: impl FnMut(),
    ) -> Result<Program, Error> {
        load::from_bytes(self, bytes, name, &mut on_compile)
    }

    /// Compile a component ahead of time, into the bytes of a precompiled file that
    /// a runtime with the same engine settings (and the same cache directory, whose
    /// secret signs it) loads without compiling.
    pub fn precompile(&self, bytes: &[u8], name: &str) -> Result<Vec<u8>, Error> {
        load::precompile(self, bytes, name)
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

    /// The limits every program of this runtime runs under.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Live microthreads now, all runs together.
    pub fn live_microthreads(&self) -> u32 {
        self.inner.context.live.used()
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

    /// The cluster this runtime is a node of, if it joined one
    /// ([`RuntimeBuilder::cluster`]).
    #[cfg(feature = "cluster")]
    pub fn cluster(&self) -> Option<&crate::cluster::Cluster> {
        self.inner.context.cluster.as_ref()
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
    use std::time::Duration;

    use super::*;

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

    /// The smallest runtime: one worker, one microthread, no cache.
    fn smallest() -> Runtime {
        Runtime::builder()
            .workers(1)
            .max_microthreads(1)
            .cache_dir(None)
            .build()
            .unwrap()
    }

    #[test]
    fn the_last_runtime_may_be_dropped_on_one_of_its_own_workers() {
        let rt = smallest();
        let (tx, rx) = std::sync::mpsc::channel();
        rt.inner.context.io.clone().spawn(async move {
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
            drop(smallest());
        });
    }
}

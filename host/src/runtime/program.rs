//! A program: a component compiled once (or found in the cache, or precompiled) and
//! pre-linked against the host, from which every microthread of every run is
//! instantiated. Loading one is `load`'s; a run of it starts through the
//! runtime (`start`).

use std::sync::Arc;

use super::state::Runtime;
use crate::cache::CacheStatus;
use crate::error::Error;
use crate::microthread::Image;
use crate::run::{ExitStatus, RunHandle, RunOptions};

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

    /// The content hash of the file the program was loaded from (BLAKE3, in hex):
    /// the nodes of a cluster spawn on each other only for the same program.
    pub fn content_hash(&self) -> &str {
        self.inner.image.program()
    }

    /// Whether the program uses the weft world, i.e. can spawn microthreads.
    pub fn is_spawnable(&self) -> bool {
        self.inner.image.can_spawn()
    }

    /// Whether the program handles HTTP requests (it exports
    /// `wasi:http/incoming-handler`): [`serve`](Program::serve) serves it.
    pub fn is_http_handler(&self) -> bool {
        self.inner.image.serves_http()
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
        if !self.inner.image.has_main() && self.inner.image.serves_http() {
            return Err(Error::IsHttpHandler {
                what: self.inner.name.clone(),
            });
        }
        if !self.inner.image.has_main() {
            return Err(Error::NoMain {
                what: self.inner.name.clone(),
            });
        }
        self.inner
            .runtime
            .start_run(&self.inner.image, options, false, Arc::new(self.clone()))
    }

    /// Start a run of the program *without* its `main`, on a runtime that belongs
    /// to a cluster ([`RuntimeBuilder::cluster`](crate::RuntimeBuilder::cluster)):
    /// it serves spawns from the other nodes (a guest's `spawn_on`), until it is
    /// cancelled ([`RunHandle::cancel`], Ctrl-C with
    /// [`RunOptions::interrupt_on_ctrl_c`], dropping the handle). This is what
    /// `weft node` runs. (Any run of a program on a runtime in a cluster serves
    /// spawns too, while it runs.)
    ///
    /// Errors if the runtime belongs to no cluster, the program cannot spawn (it
    /// does not use the weft world), or the options are refused as
    /// [`start`](Program::start)'s are.
    #[cfg(feature = "cluster")]
    pub fn start_node(&self, options: &RunOptions) -> Result<RunHandle, Error> {
        if self.inner.runtime.cluster().is_none() {
            return Err(Error::Config(
                "a node's run serves spawns from a cluster: build the runtime with RuntimeBuilder::cluster"
                    .into(),
            ));
        }
        if !self.inner.image.can_spawn() {
            return Err(Error::Config(format!(
                "{} cannot be spawned on: it does not use the weft world (weft:runtime/entry)",
                self.inner.name
            )));
        }
        if options.deterministic.is_some() {
            return Err(Error::Config("a deterministic run cannot serve a cluster".into()));
        }
        self.inner
            .runtime
            .start_run(&self.inner.image, options, true, Arc::new(self.clone()))
    }

    /// Serve HTTP with the program's `wasi:http/incoming-handler` (the
    /// `wasi:http/proxy` world): every request is handled by a fresh instance
    /// in a microthread of its own, on the runtime's workers, preempted by fuel
    /// like any other (see [`serve`](crate::serve)). Returns once it listens; the
    /// [`Server`](crate::Server) stops it.
    ///
    /// The run's options in `options` hold for each request: its memory and fuel
    /// limits, its grants (an outgoing request needs a `connect` grant), its
    /// environment and stdio.
    ///
    /// Errors if the program handles no HTTP requests, the address cannot be
    /// listened on, or the options are refused as [`start`](Program::start)'s are.
    pub fn serve(&self, options: &crate::serve::ServeOptions) -> Result<crate::serve::Server, Error> {
        let image = &self.inner.image;
        if !image.serves_http() {
            let hint = if image.has_main() {
                format!(": it has a `main`, so run it (weft run {})", self.inner.name)
            } else {
                String::new()
            };
            return Err(Error::NotHttpHandler {
                what: self.inner.name.clone(),
                hint,
            });
        }
        if options.run.deterministic.is_some() {
            return Err(Error::Config("a deterministic run cannot serve HTTP".into()));
        }
        let listener = std::net::TcpListener::bind(options.listen)
            .map_err(|e| Error::Serve(format!("cannot listen on {}: {e}", options.listen)))?;
        let run = self
            .inner
            .runtime
            .start_run(image, &options.run, true, Arc::new(self.clone()))?;
        crate::serve::Server::start(image.clone(), run, listener, options)
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

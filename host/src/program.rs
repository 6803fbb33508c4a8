//! A program: a component compiled once (or found in the cache, or precompiled) and
//! pre-linked against the host, from which every microthread of every run is
//! instantiated; and starting a run of it.

use std::path::Path;
use std::sync::Arc;

use wasmtime::component::Component;

use crate::cache::{self, CacheStatus};
use crate::deterministic::Lane;
use crate::error::Error;
use crate::microthread::{self, Image};
use crate::run::{ExitStatus, Refused, Run, RunHandle, RunOptions};
use crate::runtime::Runtime;
use crate::wit;

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

/// The 8-byte headers of WebAssembly binaries: magic, then version and layer.
const WASM_MAGIC: &[u8; 4] = b"\0asm";
const CORE_MODULE_VERSION: [u8; 4] = [1, 0, 0, 0];

impl Program {
    pub(crate) fn from_file(
        runtime: &Runtime,
        path: &Path,
        on_compile: &mut dyn FnMut(),
    ) -> Result<Program, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Program::from_bytes(runtime, &bytes, &path.display().to_string(), on_compile)
    }

    pub(crate) fn from_bytes(
        runtime: &Runtime,
        bytes: &[u8],
        what: &str,
        on_compile: &mut dyn FnMut(),
    ) -> Result<Program, Error> {
        let what = what.to_string();
        let (component, cache_status) = if bytes.starts_with(cache::MAGIC) {
            let store = runtime.key_store().map_err(|reason| Error::Precompiled {
                what: what.clone(),
                reason,
            })?;
            let component =
                store
                    .deserialize(runtime.engine(), bytes)
                    .map_err(|reason| Error::Precompiled {
                        what: what.clone(),
                        reason,
                    })?;
            (component, CacheStatus::Precompiled)
        } else {
            check_header(bytes, &what)?;
            match runtime.cache() {
                None => (compile(runtime, bytes, &what, on_compile)?, CacheStatus::Disabled),
                Some(store) => match store.load(runtime.engine(), bytes) {
                    Ok(Some(component)) => {
                        tracing::info!(target: "weft::cache", program = %what, "cache hit");
                        (component, CacheStatus::Hit)
                    }
                    found => {
                        let status = match found {
                            Err(reason) => {
                                tracing::warn!(target: "weft::cache", program = %what, %reason, "unusable cache entry, recompiling");
                                CacheStatus::Replaced(reason.to_string())
                            }
                            _ => CacheStatus::Miss,
                        };
                        tracing::info!(target: "weft::cache", program = %what, "cache miss");
                        let component = compile(runtime, bytes, &what, on_compile)?;
                        if let Err(reason) = store.save(runtime.engine(), bytes, &component) {
                            tracing::warn!(target: "weft::cache", %reason, "cannot store the compiled program");
                        }
                        (component, status)
                    }
                },
            }
        };
        let pre = wit::link(runtime.linker(), &component, &what)?;
        let image = Arc::new(wit::Exports::new(&component, pre, &what)?);
        Ok(Program {
            inner: Arc::new(Inner {
                runtime: runtime.clone(),
                name: what,
                cache_status,
                image,
            }),
        })
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

impl Runtime {
    /// Read, compile (or find in the cache) and link a program from a `.wasm`
    /// component file, or load a precompiled `.cwasm` written by
    /// [`precompile`](Runtime::precompile).
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Program, Error> {
        Program::from_file(self, path.as_ref(), &mut || ())
    }

    /// Like [`load`](Runtime::load), calling `on_compile` just before compiling
    /// (not when the cache or a precompiled file has the code): to tell a user why
    /// they wait.
    pub fn load_with(&self, path: impl AsRef<Path>, mut on_compile: impl FnMut()) -> Result<Program, Error> {
        Program::from_file(self, path.as_ref(), &mut on_compile)
    }

    /// Compile and link a program from the bytes of a component (or of a
    /// precompiled file); `name` names it in errors.
    pub fn compile(&self, bytes: &[u8], name: &str) -> Result<Program, Error> {
        Program::from_bytes(self, bytes, name, &mut || ())
    }

    /// Like [`compile`](Runtime::compile), calling `on_compile` just before
    /// compiling (not when the cache or a precompiled file has the code).
    pub fn compile_with(
        &self,
        bytes: &[u8],
        name: &str,
        mut on_compile: impl FnMut(),
    ) -> Result<Program, Error> {
        Program::from_bytes(self, bytes, name, &mut on_compile)
    }

    /// Compile a component ahead of time, into the bytes of a precompiled file that
    /// a runtime with the same engine settings (and the same cache directory, whose
    /// secret signs it) loads without compiling.
    pub fn precompile(&self, bytes: &[u8], name: &str) -> Result<Vec<u8>, Error> {
        precompile(self, bytes, name)
    }
}

/// Whether a component (its bytes) imports any `weft:runtime` interface, i.e. can
/// ever spawn a microthread. `None` if the bytes are not a readable component (the
/// compiler will say why). A program that does not is exactly one microthread, so a
/// runner can size its instance pool for one, which starts much faster.
///
/// For a precompiled file ([`Runtime::precompile`]) it tells what the component it
/// was compiled from did, so that the file is loaded with the engine settings it was
/// compiled with (the file's check refuses it if it lies).
pub fn imports_weft(bytes: &[u8]) -> Option<bool> {
    use wasmparser::{Parser, Payload};
    if bytes.starts_with(cache::MAGIC) {
        return cache::precompiled_imports_weft(bytes);
    }
    if !bytes.starts_with(WASM_MAGIC) || bytes.get(4..8) == Some(&CORE_MODULE_VERSION[..]) {
        return None;
    }
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.ok()? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    if import.ok()?.name.name.starts_with("weft:runtime/") {
                        return Some(true);
                    }
                }
            }
            _ => {}
        }
    }
    Some(false)
}

/// Refuse what is not a component before handing it to the compiler.
fn check_header(bytes: &[u8], what: &str) -> Result<(), Error> {
    if bytes.len() < 8 || &bytes[..4] != WASM_MAGIC {
        return Err(Error::NotWasm { what: what.into() });
    }
    if bytes[4..8] == CORE_MODULE_VERSION {
        return Err(Error::CoreModule { what: what.into() });
    }
    Ok(())
}

fn compile(
    runtime: &Runtime,
    bytes: &[u8],
    what: &str,
    on_compile: &mut dyn FnMut(),
) -> Result<Component, Error> {
    on_compile();
    Component::new(runtime.engine(), bytes).map_err(|e| {
        let mut message = format!("{e:#}");
        if message.contains("pooling allocator") {
            message.push_str(
                ": it does not fit weft's instance pool, which gives each microthread one linear \
                 memory and a bounded number of core instances and tables",
            );
        }
        Error::Compile {
            what: what.into(),
            message,
        }
    })
}

/// Compile a component into the bytes of a precompiled file (`weft compile`).
fn precompile(runtime: &Runtime, bytes: &[u8], what: &str) -> Result<Vec<u8>, Error> {
    check_header(bytes, what)?;
    let component = compile(runtime, bytes, what, &mut || ())?;
    // Refuse now what would not link later.
    wit::link(runtime.linker(), &component, what)?;
    let store = runtime.key_store().map_err(|reason| Error::Precompiled {
        what: what.into(),
        reason,
    })?;
    let alone = imports_weft(bytes) == Some(false);
    store
        .serialize(runtime.engine(), &component, alone)
        .map_err(|reason| Error::Precompiled {
            what: what.into(),
            reason,
        })
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

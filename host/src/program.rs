//! A program: a component compiled once (or found in the cache, or precompiled) and
//! pre-linked against the host, from which every microthread of every run is
//! instantiated; and starting a run of it.

use std::path::Path;
use std::sync::Arc;

use wasmtime::component::{Component, InstancePre};
use wasmtime_wasi::p2::bindings::CommandPre;

use crate::cache::{self, CacheStatus};
use crate::deterministic::Lane;
use crate::error::Error;
use crate::microthread::{self, Image, Microthread};
use crate::run::{ExitStatus, Refused, Run, RunHandle, RunOptions};
use crate::runtime::Runtime;
use crate::wit::bindings::{MicrothreadPre, WIT_PACKAGE};

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
    image: Arc<Image>,
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
        let pre = link(runtime, &component, &what)?;
        let image = image(runtime, &component, pre, &what)?;
        Ok(Program {
            inner: Arc::new(Inner {
                runtime: runtime.clone(),
                name: what,
                cache_status,
                image: Arc::new(image),
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
        !self.inner.image.is_alone()
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
        if self.inner.image.command.is_none() {
            return Err(Error::NoMain {
                what: self.inner.name.clone(),
            });
        }
        options.check_grants()?;
        let mut limits = options.limits(runtime.limits(), runtime.fuel_slice(), runtime.interruptible())?;
        limits.graceful_end = !self.inner.image.is_alone();
        let deterministic = match options.deterministic {
            Some(seed) => Some(
                Lane::start(seed, options.trace_schedule.as_ref().map(|t| t.0.clone()))
                    .map_err(|e| Error::Config(format!("starting the thread of a deterministic run: {e}")))?,
            ),
            None => None,
        };
        let endpoints = options.take_endpoints()?;
        let mut for_run = options.for_run();
        if self.inner.image.is_alone() && options.deterministic.is_none() {
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

/// What a program's component can start: `main` (`wasi:cli/run`), spawned
/// microthreads (`weft:runtime/entry`), or both. An export that is there but does
/// not match what this host expects is an error that says so, not a quiet "cannot
/// spawn".
fn image(
    runtime: &Runtime,
    component: &Component,
    pre: InstancePre<Microthread>,
    what: &str,
) -> Result<Image, Error> {
    let engine = runtime.engine();
    let ty = component.component_type();
    let exported = |prefix: &str| {
        ty.exports(engine)
            .map(|(name, _)| name)
            .find(|n| n.starts_with(prefix))
    };
    let mismatch = |name: &str, e: wasmtime::Error| Error::Link {
        what: what.into(),
        message: format!("it exports `{name}`, but not as this host expects: {e:#}"),
    };
    let command = match exported("wasi:cli/run") {
        None => None,
        Some(name) => Some(CommandPre::new(pre.clone()).map_err(|e| mismatch(name, e))?),
    };
    let entry = match exported("weft:runtime/entry") {
        None => None,
        Some(name) if !name.ends_with(&WIT_PACKAGE["weft:runtime".len()..]) => {
            return Err(Error::Link {
                what: what.into(),
                message: format!(
                    "it exports `{name}`, which this host does not provide: it implements {WIT_PACKAGE}. \
                     Rebuild the guest with the weft-guest SDK of this version of weft"
                ),
            });
        }
        Some(name) => {
            check_entry(&ty, engine, name).map_err(|e| mismatch(name, e))?;
            Some(MicrothreadPre::new(pre).map_err(|e| mismatch(name, e))?)
        }
    };
    if command.is_none() && entry.is_none() {
        return Err(Error::NotRunnable { what: what.into() });
    }
    Ok(Image { command, entry })
}

/// The `message` variant of `weft:runtime/channel`, as [`shape`] writes it.
const MESSAGE: &str = "variant{small(record{len: u8, w0: u64, w1: u64, w2: u64}), large(record{bytes: list<u8>, endpoints: list<variant{sender(own), receiver(own), tcp-listener(own), tcp-stream(own)}>})}";

/// Check the types of the entry export, which wasmtime would otherwise check only
/// at the first spawn: `run(trampoline: u32, function: u32, argument: message) ->
/// message`.
fn check_entry(
    ty: &wasmtime::component::types::Component,
    engine: &wasmtime::Engine,
    name: &str,
) -> wasmtime::Result<()> {
    use wasmtime::component::types::ComponentItem;
    let expected = format!("func(u32, u32, {MESSAGE}) -> {MESSAGE}");
    let run = match ty.get_export(engine, name).map(|e| e.ty) {
        Some(ComponentItem::ComponentInstance(instance)) => instance.get_export(engine, "run").map(|e| e.ty),
        _ => None,
    };
    let found = match run {
        Some(ComponentItem::ComponentFunc(f)) => {
            let params: Vec<String> = f.params().map(|(_, t)| shape(&t)).collect();
            let results: Vec<String> = f.results().map(|t| shape(&t)).collect();
            format!("func({}) -> {}", params.join(", "), results.join(", "))
        }
        Some(other) => format!("{other:?}"),
        None => "nothing".into(),
    };
    if found == expected {
        Ok(())
    } else {
        Err(wasmtime::format_err!(
            "its `run` is `{found}`, where this host calls `{expected}`"
        ))
    }
}

/// A component type written out, to compare an export with what the host expects.
fn shape(ty: &wasmtime::component::types::Type) -> String {
    use wasmtime::component::types::Type;
    match ty {
        Type::U8 => "u8".into(),
        Type::U32 => "u32".into(),
        Type::U64 => "u64".into(),
        Type::List(l) => format!("list<{}>", shape(&l.ty())),
        Type::Record(r) => {
            let fields: Vec<String> = r
                .fields()
                .map(|f| format!("{}: {}", f.name, shape(&f.ty)))
                .collect();
            format!("record{{{}}}", fields.join(", "))
        }
        Type::Variant(v) => {
            let cases: Vec<String> = v
                .cases()
                .map(|c| match &c.ty {
                    Some(t) => format!("{}({})", c.name, shape(t)),
                    None => c.name.to_string(),
                })
                .collect();
            format!("variant{{{}}}", cases.join(", "))
        }
        Type::Own(_) => "own".into(),
        Type::Borrow(_) => "borrow".into(),
        other => format!("{other:?}"),
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

/// Link a component against what the host provides (WASI and `weft:runtime`). A
/// guest built against another version of `weft:runtime` is told so.
fn link(runtime: &Runtime, component: &Component, what: &str) -> Result<InstancePre<Microthread>, Error> {
    runtime.linker().instantiate_pre(component).map_err(|e| {
        let ty = component.component_type();
        let other = ty
            .imports(runtime.engine())
            .map(|(name, _)| name)
            .find(|n| n.starts_with("weft:runtime/") && !n.ends_with(&WIT_PACKAGE["weft:runtime".len()..]));
        let message = match other {
            Some(name) => format!(
                "it imports `{name}`, but this host implements {WIT_PACKAGE}: rebuild the guest \
                 with the weft-guest SDK of this version of weft ({e:#})"
            ),
            None => format!("{e:#}"),
        };
        Error::Link {
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
    link(runtime, &component, what)?;
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

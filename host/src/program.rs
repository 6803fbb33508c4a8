//! A program: a component compiled once and pre-linked against the host, from which
//! every microthread of every run is instantiated.

use std::path::Path;
use std::sync::Arc;

use wasmtime::component::{Component, InstancePre};
use wasmtime_wasi::p2::bindings::CommandPre;

use crate::bindings::MicrothreadPre;
use crate::cache::{self, CacheStatus};
use crate::error::Error;
use crate::microthread::MtState;
use crate::runtime::{RunOptions, Runtime};
use crate::scheduler::{ExitStatus, ProgramRun};

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
    command: Option<CommandPre<MtState>>,
    entry: Option<MicrothreadPre<MtState>>,
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
        let command = CommandPre::new(pre.clone()).ok();
        let entry = MicrothreadPre::new(pre).ok();
        if command.is_none() && entry.is_none() {
            return Err(Error::NotRunnable { what });
        }
        Ok(Program {
            inner: Arc::new(Inner {
                runtime: runtime.clone(),
                name: what,
                cache_status,
                command,
                entry,
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
        self.inner.entry.is_some()
    }

    pub(crate) fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    pub(crate) fn command_pre(&self) -> Option<&CommandPre<MtState>> {
        self.inner.command.as_ref()
    }

    pub(crate) fn entry_pre(&self) -> Option<&MicrothreadPre<MtState>> {
        self.inner.entry.as_ref()
    }

    /// Run the program's `main` with `options`, blocking the calling thread until the
    /// program has ended: `main` and its structured children are done, or a
    /// microthread called `exit`. Must not be called from inside an async context;
    /// use [`run_async`](Program::run_async) there.
    pub fn run(&self, options: &RunOptions) -> Result<ExitStatus, Error> {
        self.runtime().block_on(self.run_async(options))
    }

    /// Like [`run`](Program::run), as a future. The microthreads run on the
    /// runtime's own workers whatever executor polls this future.
    pub async fn run_async(&self, options: &RunOptions) -> Result<ExitStatus, Error> {
        if self.inner.command.is_none() {
            return Err(Error::NoMain {
                what: self.inner.name.clone(),
            });
        }
        for grant in &options.dirs {
            if !grant.host.is_dir() {
                return Err(Error::Grant {
                    path: grant.host.clone(),
                    reason: "not a directory on the host".into(),
                });
            }
        }
        let run = Arc::new(ProgramRun::new(
            self.clone(),
            options.clone(),
            self.runtime().handle(),
        ));
        run.run_main().await
    }
}

/// Whether a component (its bytes) imports any `weft:runtime` interface, i.e. can
/// ever spawn a microthread. `None` if the bytes are not a readable component (the
/// compiler will say why). A program that does not is exactly one microthread, so a
/// runner can size its instance pool for one, which starts much faster.
pub fn imports_weft(bytes: &[u8]) -> Option<bool> {
    use wasmparser::{Parser, Payload};
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
    Component::new(runtime.engine(), bytes).map_err(|e| Error::Compile {
        what: what.into(),
        message: format!("{e:#}"),
    })
}

/// Link a component against what the host provides (WASI and `weft:runtime`).
fn link(runtime: &Runtime, component: &Component, what: &str) -> Result<InstancePre<MtState>, Error> {
    runtime
        .linker()
        .instantiate_pre(component)
        .map_err(|e| Error::Link {
            what: what.into(),
            message: format!("{e:#}"),
        })
}

/// Compile a component into the bytes of a precompiled file (`weft compile`).
pub(crate) fn precompile(runtime: &Runtime, bytes: &[u8], what: &str) -> Result<Vec<u8>, Error> {
    check_header(bytes, what)?;
    let component = compile(runtime, bytes, what, &mut || ())?;
    // Refuse now what would not link later.
    link(runtime, &component, what)?;
    let store = runtime.key_store().map_err(|reason| Error::Precompiled {
        what: what.into(),
        reason,
    })?;
    store
        .serialize(runtime.engine(), &component)
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
            .finish()
    }
}

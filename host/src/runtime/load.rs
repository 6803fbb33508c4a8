//! Loading a program: from a precompiled file, from the cache, or compiled (and
//! then cached); linked against the host, and its exports checked (`wit`); and
//! writing a precompiled file.

use std::path::Path;
use std::sync::Arc;

use wasmtime::component::Component;

use super::program::Program;
use super::state::Runtime;
use crate::cache::{self, CacheStatus};
use crate::entry_names::EntryNames;
use crate::error::Error;
use crate::limits::Footprint;
use crate::wit;

/// The 8-byte headers of WebAssembly binaries: magic, then version and layer.
const WASM_MAGIC: &[u8; 4] = b"\0asm";
const CORE_MODULE_VERSION: [u8; 4] = [1, 0, 0, 0];

pub(super) fn from_file(
    runtime: &Runtime,
    path: &Path,
    on_compile: &mut dyn FnMut(),
) -> Result<Program, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    from_bytes(runtime, &bytes, &path.display().to_string(), on_compile)
}

pub(super) fn from_bytes(
    runtime: &Runtime,
    bytes: &[u8],
    what: &str,
    on_compile: &mut dyn FnMut(),
) -> Result<Program, Error> {
    let what = what.to_string();
    let (component, cache_status, names) = if bytes.starts_with(cache::MAGIC) {
        let store = runtime.key_store().map_err(|reason| Error::Precompiled {
            what: what.clone(),
            reason,
        })?;
        let (component, names) =
            store
                .deserialize(runtime.engine(), bytes)
                .map_err(|reason| Error::Precompiled {
                    what: what.clone(),
                    reason,
                })?;
        (component, CacheStatus::Precompiled, names)
    } else {
        check_header(bytes, &what)?;
        let (component, status) = match runtime.cache() {
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
        };
        (component, status, EntryNames::read(bytes))
    };
    let pre = wit::link(runtime.linker(), &component, &what)?;
    // What nodes of a cluster compare: they spawn on each other only for the
    // same program.
    let hash = blake3::hash(bytes).to_hex().to_string();
    let footprint = footprint(bytes).unwrap_or(Footprint::DEFAULT);
    tracing::debug!(
        target: "weft::runtime",
        program = %what,
        core_instances = footprint.core_instances,
        tables = footprint.tables,
        "each microthread takes this much of the instance pool"
    );
    tracing::debug!(target: "weft::runtime", program = %what, named = !names.is_empty(), "spawned functions' names");
    let image = Arc::new(wit::Exports::new(&component, pre, &what, hash, footprint, names)?);
    Ok(Program::new(runtime.clone(), what, cache_status, image))
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
    if bytes.starts_with(cache::MAGIC) {
        return cache::precompiled_imports_weft(bytes);
    }
    surface(bytes).map(|s| s.imports_weft)
}

/// What a component's own imports and exports (not its nested components') say
/// of how it runs.
struct Surface {
    /// It imports a `weft:runtime` interface.
    imports_weft: bool,
    /// It exports `wasi:http/incoming-handler`.
    handles_http: bool,
}

/// A component's [`Surface`], read in one pass; `None` if the bytes are not a
/// readable component.
fn surface(bytes: &[u8]) -> Option<Surface> {
    use wasmparser::{Parser, Payload};
    if !bytes.starts_with(WASM_MAGIC) || bytes.get(4..8) == Some(&CORE_MODULE_VERSION[..]) {
        return None;
    }
    let mut found = Surface {
        imports_weft: false,
        handles_http: false,
    };
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.ok()? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    found.imports_weft |= import.ok()?.name.name.starts_with("weft:runtime/");
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    found.handles_http |= export.ok()?.name.name.starts_with("wasi:http/incoming-handler");
                }
            }
            _ => {}
        }
    }
    Some(found)
}

/// What each microthread of a component (its bytes, or a precompiled file's)
/// takes from the instance pool: the core instances it instantiates and the
/// tables its core modules define, nested components included. `None` if the
/// bytes are not a readable component (or a precompiled file that does not say).
pub(crate) fn footprint(bytes: &[u8]) -> Option<Footprint> {
    use wasmparser::{Instance, Parser, Payload};
    if bytes.starts_with(cache::MAGIC) {
        return cache::precompiled_footprint(bytes);
    }
    if !bytes.starts_with(WASM_MAGIC) || bytes.get(4..8) == Some(&CORE_MODULE_VERSION[..]) {
        return None;
    }
    let mut counted = Footprint {
        core_instances: 0,
        tables: 0,
    };
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.ok()? {
            Payload::InstanceSection(reader) => {
                for instance in reader {
                    if matches!(instance.ok()?, Instance::Instantiate { .. }) {
                        counted.core_instances += 1;
                    }
                }
            }
            Payload::TableSection(reader) => counted.tables += reader.count(),
            _ => {}
        }
    }
    Some(counted)
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

/// Whether every run of a program (its bytes) is one microthread: it imports no
/// `weft:runtime` interface, so it cannot spawn, and it handles no HTTP requests
/// (a server's requests are a microthread each). `None` if the bytes are not a
/// readable component. A runner may then size its pool for one microthread and
/// leave fuel off; a precompiled file says what its component did (see
/// [`imports_weft`]), so that a handler compiled by `weft compile` is served with
/// the engine settings it was compiled with.
pub fn runs_alone(bytes: &[u8]) -> Option<bool> {
    if bytes.starts_with(cache::MAGIC) {
        return cache::precompiled_imports_weft(bytes).map(|weft| !weft);
    }
    surface(bytes).map(|s| !s.imports_weft && !s.handles_http)
}

/// Compile a component into the bytes of a precompiled file (`weft compile`).
pub(super) fn precompile(runtime: &Runtime, bytes: &[u8], what: &str) -> Result<Vec<u8>, Error> {
    check_header(bytes, what)?;
    let component = compile(runtime, bytes, what, &mut || ())?;
    // Refuse now what would not link later.
    wit::link(runtime.linker(), &component, what)?;
    let store = runtime.key_store().map_err(|reason| Error::Precompiled {
        what: what.into(),
        reason,
    })?;
    let alone = runs_alone(bytes) == Some(true);
    store
        .serialize(
            runtime.engine(),
            &component,
            alone,
            footprint(bytes),
            &EntryNames::read(bytes),
        )
        .map_err(|reason| Error::Precompiled {
            what: what.into(),
            reason,
        })
}

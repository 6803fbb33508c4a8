//! A program as this host sees it: linked against what the host provides, and
//! what its component exports, checked against this host's `weft:runtime` when
//! the program is loaded: `main` (`wasi:cli/run`), the entry of spawned
//! microthreads (`weft:runtime/entry`) and the handler of HTTP requests
//! (`wasi:http/incoming-handler`). [`Exports`] is the microthread's
//! [`Image`]: it calls into an instance with the generated bindings.

use wasmtime::Store;
use wasmtime::component::{Component, Instance, InstancePre, Linker};
use wasmtime_wasi::p2::bindings::CommandIndices;
use wasmtime_wasi_http::p2::bindings::ProxyIndices;

use super::bindings::{self, WIT_PACKAGE};
use crate::channel::Message;
use crate::entry_names::EntryNames;
use crate::error::Error;
use crate::limits::Footprint;
use crate::microthread::{Call, Image, Microthread, Request, Spawned};

/// What a program's component can start, pre-linked: `main`, spawned
/// microthreads, or both.
pub(crate) struct Exports {
    pre: InstancePre<Microthread>,
    /// `wasi:cli/run`, if the component exports it: where `main` starts.
    main: Option<CommandIndices>,
    /// `weft:runtime/entry`, if the component exports it: where spawned
    /// microthreads start.
    entry: Option<bindings::MicrothreadIndices>,
    /// `wasi:http/incoming-handler`, if the component exports it: where a
    /// request's microthread starts (`weft serve`).
    http: Option<ProxyIndices>,
    /// The content hash of the file it came from.
    program: String,
    /// What each of its microthreads takes from the instance pool.
    footprint: Footprint,
    /// The names of its spawnable functions.
    names: EntryNames,
}

impl Exports {
    /// What `component` (linked as `pre`) can start. An export that is there but
    /// does not match what this host expects is an error that says so, not a quiet
    /// "cannot spawn"; `what` names the program in errors.
    pub(crate) fn new(
        component: &Component,
        pre: InstancePre<Microthread>,
        what: &str,
        program: String,
        footprint: Footprint,
        names: EntryNames,
    ) -> Result<Exports, Error> {
        let engine = pre.engine();
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
        let main = match exported("wasi:cli/run") {
            None => None,
            Some(name) => Some(CommandIndices::new(&pre).map_err(|e| mismatch(name, e))?),
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
                Some(bindings::MicrothreadIndices::new(&pre).map_err(|e| mismatch(name, e))?)
            }
        };
        let http = match exported("wasi:http/incoming-handler") {
            None => None,
            Some(name) => Some(ProxyIndices::new(&pre).map_err(|e| mismatch(name, e))?),
        };
        if main.is_none() && entry.is_none() && http.is_none() {
            return Err(Error::NotRunnable { what: what.into() });
        }
        Ok(Exports {
            pre,
            main,
            entry,
            http,
            program,
            footprint,
            names,
        })
    }
}

impl Image for Exports {
    fn instance_pre(&self) -> &InstancePre<Microthread> {
        &self.pre
    }

    fn has_main(&self) -> bool {
        self.main.is_some()
    }

    fn can_spawn(&self) -> bool {
        self.entry.is_some()
    }

    fn program(&self) -> &str {
        &self.program
    }

    fn footprint(&self) -> Footprint {
        self.footprint
    }

    fn entry_name(&self, trampoline: u32, function: u32) -> Option<&std::sync::Arc<str>> {
        self.names.of(trampoline, function)
    }

    fn serves_http(&self) -> bool {
        self.http.is_some()
    }

    fn call_request<'a>(
        &'a self,
        store: &'a mut Store<Microthread>,
        instance: Instance,
        request: Request,
    ) -> Call<'a, ()> {
        Box::pin(async move {
            let http = exported(&self.http, "handles no HTTP requests")?;
            super::http::call_handle(http, store, instance, request).await
        })
    }

    fn call_main<'a>(
        &'a self,
        store: &'a mut Store<Microthread>,
        instance: Instance,
    ) -> Call<'a, Result<(), ()>> {
        Box::pin(async move {
            let main = exported(&self.main, "has no `main`")?.load(&mut *store, &instance)?;
            main.wasi_cli_run().call_run(&mut *store).await
        })
    }

    fn call_spawned<'a>(
        &'a self,
        store: &'a mut Store<Microthread>,
        instance: Instance,
        spawned: Spawned,
    ) -> Call<'a, Message> {
        Box::pin(async move {
            let entry = exported(&self.entry, "cannot spawn")?.load(&mut *store, &instance)?;
            let argument = store.data_mut().give_message(spawned.argument)?;
            let result = entry
                .weft_runtime_entry()
                .call_run(&mut *store, spawned.trampoline, spawned.function, &argument)
                .await?;
            // A result waits on the host until it is joined: it may be no larger
            // than a message.
            let max = store.data().run.limits.max_message_size;
            if result.byte_len() > max as usize {
                return Err(wasmtime::format_err!(
                    "its result of {} bytes is over the message size limit of {max} bytes \
                     (max_message_size): return less (send large data over a channel in \
                     parts), or raise the limit",
                    result.byte_len()
                ));
            }
            store.data_mut().take_message(result)
        })
    }
}

/// The indices of an export the program has, or an error that says what it
/// `lacks` (the run or the spawn is refused before it gets here: see
/// [`Image::has_main`], [`Image::can_spawn`]).
fn exported<'a, I>(indices: &'a Option<I>, lacks: &str) -> wasmtime::Result<&'a I> {
    indices
        .as_ref()
        .ok_or_else(|| wasmtime::format_err!("the program {lacks}"))
}

/// Link a component against what the host provides (`linker`: WASI,
/// `weft:runtime`, the application's interfaces). A guest built against another
/// version of `weft:runtime` is told so.
pub(crate) fn link(
    linker: &Linker<Microthread>,
    component: &Component,
    what: &str,
) -> Result<InstancePre<Microthread>, Error> {
    linker.instantiate_pre(component).map_err(|e| {
        let ty = component.component_type();
        let other = ty
            .imports(linker.engine())
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

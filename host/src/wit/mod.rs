//! The WIT glue: the host side of each `weft:runtime` interface a guest imports
//! (`impl Host for Microthread` for `thread`, `channel`, `net` and `types`), and the
//! bindings generated from `wit/`, which nothing outside this module touches. Each
//! call is translated to the microthread, run and channel operations that do the
//! work. ("Host" elsewhere in the crate means the application that embeds weft:
//! a host channel, a host endpoint.)

mod bindings;
mod channel;
mod exports;
mod message;
mod net;
mod thread;

pub(crate) use exports::{Exports, link};

use wasmtime::component::{HasSelf, Linker};

use crate::error::{Failure, FailureKind};
use crate::microthread::Microthread;
use bindings::types as wit_types;

/// Add WASI and `weft:runtime` to `linker`: everything a guest may import.
pub(crate) fn add_to_linker(linker: &mut Linker<Microthread>) -> Result<(), String> {
    wasmtime_wasi::p2::add_to_linker_async(linker).map_err(|e| format!("linking WASI: {e:#}"))?;
    net::add_wasi_sockets_to_linker(linker).map_err(|e| format!("linking WASI sockets: {e:#}"))?;
    bindings::thread::add_to_linker::<Microthread, HasSelf<Microthread>>(linker, |s| s)
        .and_then(|()| bindings::channel::add_to_linker::<Microthread, HasSelf<Microthread>>(linker, |s| s))
        .and_then(|()| bindings::types::add_to_linker::<Microthread, HasSelf<Microthread>>(linker, |s| s))
        .and_then(|()| bindings::net::add_to_linker::<Microthread, HasSelf<Microthread>>(linker, |s| s))
        .map_err(|e| format!("linking weft:runtime: {e:#}"))
}

fn wit_failure(f: Failure) -> wit_types::Failure {
    use wit_types::FailureKind as K;
    let kind = match f.kind {
        FailureKind::Panic => K::Panic,
        FailureKind::Trap => K::Trap,
        FailureKind::OutOfMemory => K::OutOfMemory,
        FailureKind::FuelExhausted => K::FuelExhausted,
        FailureKind::Cancelled => K::Cancelled,
        FailureKind::ChildFailed => K::ChildFailed,
        FailureKind::Exited => K::Exited,
    };
    wit_types::Failure {
        id: f.id,
        name: f.name,
        kind,
        message: f.message,
    }
}

impl wit_types::Host for Microthread {}

//! The WIT glue: the host side of each `weft:runtime` interface a guest imports
//! (`impl Host for Microthread` for `thread`, `channel`, `net`, `registry`,
//! `cluster` and `types`), the WASI socket calls weft puts over wasmtime-wasi's (`wasi_sockets`), and the
//! bindings generated from `wit/`, which nothing outside this module touches. Each
//! call is translated to the microthread, run and channel operations that do the
//! work.
//! `wasi:http` has a file of its own (`http`): wasmtime-wasi-http's host on a
//! microthread's table, and the call of a program's request handler.
//! `thread.spawn-on` has a file of its own (`spawn_on`, with the cluster), and
//! what it shares with `thread.spawn` is in `spawn`.
//!
//! Its words. A program's **exports** ([`Exports`], `exports`) are its `main` and
//! its entry for spawned microthreads, checked against this host's WIT when it is
//! **linked**; they are the microthread's `Image`. A message is **taken** from a
//! guest (its endpoints leave the microthread's table) and **given** to one (they
//! enter it): `message`. ("Host" elsewhere in the crate means the application that
//! embeds weft: a host channel, a host endpoint.)

mod bindings;
mod channel;
mod cluster;
mod exports;
mod http;
mod message;
mod net;
mod registry;
mod spawn;
#[cfg(feature = "cluster")]
mod spawn_on;
mod thread;
mod types;
mod wasi_sockets;

pub(crate) use exports::{Exports, link};

use wasmtime::component::{HasSelf, Linker};

use crate::microthread::Microthread;

/// Add WASI and `weft:runtime` to `linker`: everything a guest may import.
pub(crate) fn add_to_linker(linker: &mut Linker<Microthread>) -> Result<(), String> {
    wasmtime_wasi::p2::add_to_linker_async(linker).map_err(|e| format!("linking WASI: {e:#}"))?;
    wasi_sockets::add_to_linker(linker).map_err(|e| format!("linking WASI sockets: {e:#}"))?;
    http::add_to_linker(linker).map_err(|e| format!("linking wasi:http: {e:#}"))?;
    bindings::thread::add_to_linker::<Microthread, HasSelf<Microthread>>(linker, |s| s)
        .and_then(|()| bindings::channel::add_to_linker::<Microthread, HasSelf<Microthread>>(linker, |s| s))
        .and_then(|()| bindings::types::add_to_linker::<Microthread, HasSelf<Microthread>>(linker, |s| s))
        .and_then(|()| bindings::net::add_to_linker::<Microthread, HasSelf<Microthread>>(linker, |s| s))
        .and_then(|()| bindings::registry::add_to_linker::<Microthread, HasSelf<Microthread>>(linker, |s| s))
        .and_then(|()| bindings::cluster::add_to_linker::<Microthread, HasSelf<Microthread>>(linker, |s| s))
        .map_err(|e| format!("linking weft:runtime: {e:#}"))
}

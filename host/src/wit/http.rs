//! `wasi:http`'s glue: wasmtime-wasi-http's host of `wasi:http/types` and
//! `wasi:http/outgoing-handler` on a microthread's table (its sending is weft's,
//! `net::http`), and the call of a program's `wasi:http/incoming-handler` with
//! a request.

use wasmtime::Store;
use wasmtime::component::{Instance, Linker};
use wasmtime_wasi_http::p2::bindings::ProxyIndices;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use crate::microthread::{Microthread, Request};

/// Add `wasi:http/types` and `wasi:http/outgoing-handler` to `linker`.
pub(super) fn add_to_linker(linker: &mut Linker<Microthread>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
}

impl WasiHttpView for Microthread {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let (table, state) = self.http_parts();
        WasiHttpCtxView {
            ctx: &mut state.ctx,
            table,
            hooks: &mut state.outgoing,
        }
    }
}

/// Call the program's `handle` (through `indices`) in `instance` with `request`:
/// the guest sets the response through its outparam, which sends it on.
pub(super) async fn call_handle(
    indices: &ProxyIndices,
    store: &mut Store<Microthread>,
    instance: Instance,
    request: Request,
) -> wasmtime::Result<()> {
    let proxy = indices.load(&mut *store, &instance)?;
    let mut http = store.data_mut().http();
    let incoming = http.new_incoming_request(Scheme::Http, request.request)?;
    let outparam = http.new_response_outparam_from_callback(request.respond)?;
    proxy
        .wasi_http_incoming_handler()
        .call_handle(&mut *store, incoming, outparam)
        .await
}

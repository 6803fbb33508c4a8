//! Network I/O for guests: TCP listeners and streams on tokio's reactor, and the
//! grants that say which addresses a run may listen on and connect to; and
//! outgoing HTTP requests (`http`, `wasi:http/outgoing-handler`) under those grants.
//!
//! A socket is a host object behind an `Arc`: a guest holds it as a WIT resource,
//! and it moves between microthreads like a channel endpoint (a handle is shared,
//! the socket closes when the last handle is dropped). Its operations wait on the
//! reactor, so a guest blocked in `accept` or `read` suspends only its own
//! microthread. Every socket takes a slot of its run's quota while it is open.
//!
//! This module knows nothing of guests or runs: the WIT glue (`wit::net`) checks
//! the grants, marks the microthread blocked and watches for its cancellation.

mod grants;
pub(crate) mod http;
mod resolve;
pub(crate) mod tcp;

pub(crate) use grants::{Direction, Grants};
pub use grants::{Grant, GrantError};
pub(crate) use resolve::Resolver;
pub use resolve::{LOOKUP_TIMEOUT, Lookup, MAX_LOOKUPS, Resolve, SystemResolver};
pub(crate) use tcp::{
    ListenerHandle, NetError, ReadBuffers, SocketSlot, StreamHandle, Target, WasiSlots, within,
};

//! The guest SDK of weft: the safe Rust API a `wasm32-wasip2` program uses to run as
//! microthreads under a weft host.
//!
//! A microthread is a function of this program running in its own instance (its own
//! linear memory), scheduled by the host. Guest code is written in a plain blocking
//! style: [`JoinHandle::join`], [`sleep`] and [`yield_now`] suspend only the calling
//! microthread, while the host keeps running the others. A loop that never calls the
//! host is still preempted by the host's fuel slices.
//!
//! ```no_run
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! let handles: Vec<_> = (1..=4).map(|i| weft_guest::spawn(square, i)).collect();
//! let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
//! assert_eq!(sum, 30);
//! ```
//!
//! Values (spawn arguments, results, what is sent on a channel) cross between
//! instances as messages, encoded with serde + postcard: they are copied, never
//! shared. The endpoints inside them (channel ends, sockets) move. Only plain
//! functions (`fn(T) -> R`, or closures that capture nothing) can be spawned,
//! because a microthread starts in a fresh instance that shares no memory with its
//! parent.
//!
//! Concurrency is structured: a spawned microthread is a child of its spawner, which
//! does not finish before it; a child's failure that nobody joins cancels its
//! siblings and fails its parent. [`JoinHandle::cancel`] cancels a microthread: its
//! blocking calls fail with a cancellation error (every blocking call returns a
//! `Result`), so its cleanup runs. [`spawn_detached`] starts one with no parent, and
//! [`atomic`] runs a section without preemption. [`monitor`] watches any microthread
//! by id, parent or not: one [`Down`] arrives when it finishes. A [`supervisor`]
//! restarts the children that end, fresh, by OTP's strategies, within limits.
//!
//! [`net`] has TCP listeners and streams on the host's reactor (a server is a loop
//! on `accept` handing each connection to a microthread of its own), and [`after`]
//! and [`tick`] are timers to [`Select`] on beside channels and sockets.
//! [`register`] and [`whereis`] name a sender in the run's registry, so that a
//! microthread (a restarted server, say) is found by name.
//!
//! In a [`cluster`] of nodes (`weft run --cluster`), a microthread can run on
//! another node ([`Builder::node`], [`cluster::spawn_on`]) with the same
//! [`JoinHandle`], and [`cluster::parallel_map`] spreads calls over the live nodes;
//! a child whose node goes down fails with [`FailureKind::NodeDown`], and a
//! supervisor restarts it elsewhere.
//!
//! A program never sees the bindings generated from `wit/`: this crate wraps all of
//! them.
//!
//! # Layout
//!
//! One module per concern; a module that wraps a WIT interface of
//! `wit/runtime.wit` is named after it. The modules form layers: each uses only
//! modules of the layers below it, and no two modules use each other. A guest SDK
//! for another language (Python, JS) is to follow the same layout, module for
//! module, and the same words.
//!
//! | layer | module | owns | wraps |
//! |---|---|---|---|
//! | 1 | `bindings` | the code `wit-bindgen` generates from `wit/`, and nothing else | the `microthread` world |
//! | 2 | `message` | marshalling: a value to and from a WIT `message` (postcard bytes, small ones by value, endpoints beside the bytes; or CBOR, [`Codec`]) | `channel.message`, `channel.endpoint` |
//! | 2 | `time` | a `Duration` as the nanoseconds every WIT timeout, sleep and timer takes | |
//! | 2 | `failure` | [`Failure`], [`FailureKind`], [`Cancelled`] | `types` |
//! | 2 | `node` | the nodes: [`Node`](cluster::Node) (a live node, or any), the live ones, this one (re-exported by [`cluster`]) | `cluster` |
//! | 3 | `entry` | how a microthread starts: the trampolines, the `entry` export, the panic hook | `entry` (exported) |
//! | 4 | `thread` | spawning ([`Builder`], [`spawn`]; on another node: [`Builder::node`]), [`JoinHandle`], [`sleep`], [`yield_now`], [`atomic`], [`exit`], [`current`], [`current_id`] | `thread`, but `monitor` |
//! | 4 | `channel` | opening channels; in `channel/`: the ends ([`Sender`], [`Receiver`]), what both ends share (`end`), their errors, timers ([`after`], [`tick`]) | `channel`, but `select` |
//! | 4 | [`net`] | TCP listeners and streams | `net` |
//! | 5 | `select` | [`Select`]: one of several channel operations, socket readiness and timers | `channel.select` |
//! | 5 | `monitor` | [`monitor`]: watching any microthread by id for its one [`Down`] | `thread.monitor` |
//! | 5 | `patterns` | [`generate`], [`parallel_map`]: built from spawn and channels | |
//! | 5 | `registry` | named endpoints: [`register`], [`whereis`], [`RegisterError`] | `registry` |
//! | 6 | [`cluster`] | the nodes (from `node`), spawning on one ([`cluster::spawn_on`]), [`cluster::parallel_map`] over the live nodes | |
//! | 6 | [`supervisor`] | supervisors (OTP's): children restarted by a strategy within an intensity, stopped in reverse order | `thread.give-up`, `thread.count-restart` |
//! | 7 | `lib` | the public API: re-exports, and `__private`, raw access for weft's own tests | |
//!
//! # Words
//!
//! One word per concept, here and in every module's docs:
//! - The *host* is the weft runtime that runs this program; the *application* is the
//!   program that embeds the host and may hand channels to a run
//!   ([`host_receiver`], [`host_sender`]: named for where the channel comes from).
//! - A microthread *finishes*: it returns, fails (a [`Failure`]), or is stopped.
//!   *Cancelling* asks it to finish (its blocking calls fail with [`Cancelled`], so
//!   its cleanup runs); *stopping* is the host ending it where it is (at a fuel
//!   yield, or once a grace period is over).
//! - A *value* is what a program sends, receives, spawns with or returns; a
//!   *message* is a value encoded to cross between instances.
//! - An *end* of a channel is a [`Sender`] or a [`Receiver`]; an *endpoint* is what a
//!   message carries beside its bytes: a channel's end or a socket. A *handle* is the
//!   host's resource that an end, a socket or a [`JoinHandle`] holds.
//! - A channel is *closed* for its receivers once every sender is gone and the
//!   buffer is drained, and for its senders once every receiver is gone. A
//!   *producer* is a microthread that holds a sender of it.
//! - A *failure* is how a microthread finished when it did not return; an *error*
//!   is why one call gave no value.

mod bindings;
mod channel;
pub mod cluster;
mod entry;
mod failure;
mod message;
mod monitor;
pub mod net;
mod node;
mod patterns;
mod registry;
mod select;
pub mod supervisor;
mod thread;
mod time;

pub use channel::{
    ChannelError, Receiver, RecvError, RecvTimeoutError, SendError, SendRecvError, SendRecvTimeoutError,
    SendTimeoutError, Sender, TryRecvError, TrySendError, after, call, channel, host_receiver, host_sender,
    tick, try_after, try_channel, try_tick,
};
pub use failure::{Cancelled, Failure, FailureKind};
pub use message::Codec;
pub use monitor::{Down, DownOutcome, monitor, try_monitor};
pub use patterns::{MapError, generate, parallel_map};
pub use registry::{RegisterError, register, whereis};
pub use select::{Received, Select, Selected};
pub use thread::{
    Builder, JoinError, JoinHandle, JoinTimeoutError, Microthread, SpawnError, atomic, current, current_id,
    exit, is_cancelled, own_shutdown, sleep, spawn, spawn_detached, yield_now,
};

/// Not part of the API: raw access for weft's own tests of bad input.
#[doc(hidden)]
pub mod __private {
    /// Spawn with raw table indices, bypassing the type-safe [`spawn`](crate::spawn).
    ///
    /// # Safety
    /// `trampoline` must be the table index of a trampoline of this SDK and
    /// `function` that of a function of the type the trampoline expects, with
    /// `argument` its serialized argument; anything else is undefined behaviour in
    /// the new microthread (at best, a trap that fails it).
    pub unsafe fn spawn_raw(
        trampoline: u32,
        function: u32,
        argument: Vec<u8>,
    ) -> Result<crate::JoinHandle<Vec<u8>>, crate::SpawnError> {
        let argument = crate::message::from_bytes(&argument);
        crate::thread::spawn_raw(trampoline, function, argument, None, false, None)
    }

    /// Register `tx` under `name` with a fingerprint of the caller's choosing,
    /// bypassing [`register`](crate::register)'s type name.
    pub fn register_raw<T>(name: &str, fingerprint: &str, tx: &crate::Sender<T>) -> Result<(), String> {
        crate::bindings::registry::register(name, fingerprint, &tx.inner).map_err(|e| format!("{e:?}"))
    }

    /// Send a small message as the raw WIT `small-message`, `len` unchecked: the
    /// host must refuse a length over what fits.
    pub fn send_small<T>(tx: &crate::Sender<T>, len: u8, words: [u64; 3]) {
        let message = crate::bindings::channel::Message::Small(crate::bindings::channel::SmallMessage {
            len,
            w0: words[0],
            w1: words[1],
            w2: words[2],
        });
        // The host fails this microthread before there is anything to return.
        let _refused = tx.inner.send(message);
    }
}

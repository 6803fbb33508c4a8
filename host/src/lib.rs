//! weft runs many small WebAssembly programs ("microthreads") concurrently on one
//! host, fairly, safely and fast.
//!
//! A guest is an ordinary `wasm32-wasip2` component. Each microthread is one instance
//! of it in its own `Store` and linear memory, run on a wasmtime async fiber, scheduled
//! by weft's own run queue on its worker threads, and preempted by fuel so that a busy
//! loop cannot starve the others. Guests spawn and join microthreads through the
//! `weft:runtime` WIT interfaces (in Rust, with the `weft-guest` SDK); a plain command
//! that knows nothing of weft runs as a single microthread.
//!
//! A run of a program is a [`RunHandle`] the application owns: wait for it (blocking
//! or as a future), cancel it, give it a deadline and a fuel budget, look at what its
//! microthreads are doing; dropping it cancels the run. The application talks to its
//! guests over [`channel`]s, whose ends it hands to a run by name, and may add its own
//! host interfaces ([`RuntimeBuilder::host_interfaces`]). A run may be deterministic
//! ([`RunOptions::deterministic`]): a seed decides its schedule and its clocks are
//! virtual, so a concurrency bug found under one seed replays every time.
//!
//! A complete application: it hands a guest (`examples/src/bin/workers.rs`) a channel
//! of texts and a channel for their word counts, feeds it from a plain thread, and
//! reads the answers.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let runtime = weft::Runtime::builder().workers(2).build()?;
//!     let program = runtime.load("workers.wasm")?;
//!
//!     let (jobs, jobs_for_guest) = weft::channel::<String>(16);
//!     let (results_for_guest, results) = weft::channel::<(String, usize)>(16);
//!     let options = weft::RunOptions::new()
//!         .receiver("jobs", jobs_for_guest)
//!         .sender("results", results_for_guest)
//!         .deadline(Duration::from_secs(10));
//!     let run = program.start(&options)?;
//!
//!     let feeder = std::thread::spawn(move || {
//!         for text in ["one two three", "four five"] {
//!             jobs.send_blocking(text.to_string()).expect("the guest listens");
//!         }
//!         // `jobs` is dropped: the guest's workers see the channel close.
//!     });
//!     while let Ok((text, words)) = results.recv_blocking() {
//!         println!("{text:?}: {words} words");
//!     }
//!     feeder.join().expect("the feeder");
//!     for m in run.microthreads() {
//!         println!("microthread {} is {}", m.id, m.state);
//!     }
//!     match run.wait() {
//!         weft::ExitStatus::Exited(0) => Ok(()),
//!         weft::ExitStatus::Failed(failure) => Err(failure.into()),
//!         other => Err(format!("the guest ended: {other:?}").into()),
//!     }
//! }
//! ```
//!
//! Modules, from the bottom up, each using only those before it (the dependencies
//! point one way):
//! - leaves: [`limits`] (every bound, its default and what happens at it), [`cache`]
//!   (compiled programs on disk), `sync` (locking without poisoning, waiting on a
//!   `Notify`, lists pruned as they grow), `entry_names` (a Rust guest's function
//!   names, the default names of its microthreads);
//! - `error` (the library's errors, a microthread's [`Failure`]), `deterministic`
//!   (the seeded schedule and virtual time of a deterministic run), [`net`]
//!   (sockets on tokio's reactor, the grants, the resolver, outgoing HTTP
//!   requests);
//! - `channel` (channels, which know nothing of guests: they carry messages and
//!   sockets, and a deterministic schedule picks among ready operations) and
//!   `scheduler` (weft's run queue: the worker threads and which ready microthread
//!   runs next);
//! - [`cluster`] (nodes joined over NATS, with the `cluster` feature: channels whose
//!   ends live on different nodes, carried by bridges over the ordinary channels;
//!   the registry across nodes);
//! - `run` (one run: its shared state, its options and limits, its supervisor and
//!   end, [`RunHandle`], [`RunOptions`]; its module doc holds the run's vocabulary);
//! - `microthread` (a store's lifecycle, which knows nothing of WIT: the program's
//!   `Image` is a trait);
//! - `wit` (the WIT glue: the host side of each `weft:runtime` interface, the
//!   message marshalling, WASI sockets under the run's grants, `wasi:http`, and
//!   the bindings generated from `wit/`, which nothing else touches);
//! - [`serve`] (HTTP served by a `wasi:http/proxy` component, a microthread per
//!   request: [`Program::serve`], [`ServeOptions`], [`Server`]);
//! - [`metrics`] (what a runtime shows Prometheus, read from its runs and
//!   workers);
//! - [`runtime`] (the engine and its configuration, the instance pool, the
//!   workers, loading a [`Program`], and starting runs of it with the runtime's
//!   `RunContext`).
//!
//! Where a name in this crate says "host" (`HostEndpoint`, a host channel), it means
//! the application that embeds weft; the side of the WIT interfaces that weft
//! implements is the glue, `wit`.

#![warn(missing_docs)]

pub mod cache;
#[doc(hidden)]
pub mod cli_values;
mod entry_names;
mod error;
pub mod limits;
pub mod net;
mod sync;

mod channel;
#[cfg(feature = "cluster")]
pub mod cluster;
mod deterministic;
mod run;
mod scheduler;

mod microthread;
mod node_name;

pub mod metrics;

mod wit;

pub mod serve;

pub mod runtime;

/// The wasmtime this weft is built on, for an application's own host interfaces
/// ([`RuntimeBuilder::host_interfaces`]): its `Linker`, `StoreContextMut` and
/// `bindgen!` at the very version weft uses.
pub use wasmtime;

pub use cache::CacheStatus;
pub use channel::{
    Codec, Receiver, RecvError, SendError, SendTimeoutError, Sender, TrySendError, channel, channel_with,
};
pub use error::{Error, Failure, FailureKind};
pub use limits::Limits;
pub use microthread::Microthread;
pub use run::{
    ChannelInfo, DEFAULT_MAX_HANDLES, DEFAULT_MAX_RUN_HANDLES, DEFAULT_MAX_SOCKETS, ExitStatus,
    MicrothreadInfo, MicrothreadState, OutputBuffer, RunHandle, RunOptions, RunStats, RunView, WrongType,
};
pub use runtime::load::{imports_weft, runs_alone};
pub use runtime::program::Program;
pub use runtime::{
    DEFAULT_ADDRESS_SPACE, DEFAULT_FUEL_SLICE, MemoryReset, Preemption, Runtime, RuntimeBuilder,
};
pub use serve::{ServeOptions, ServeStats, Server, Stopped, Stopper};

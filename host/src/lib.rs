//! weft runs many small WebAssembly programs ("microthreads") concurrently on one
//! host, fairly, safely and fast.
//!
//! A guest is an ordinary `wasm32-wasip2` component. Each microthread is one instance
//! of it in its own `Store` and linear memory, run on a wasmtime async fiber, scheduled
//! by tokio, and preempted by fuel so that a busy loop cannot starve the others. Guests
//! spawn and join microthreads through the `weft:runtime` WIT interfaces (in Rust, with
//! the `weft-guest` SDK); a plain command that knows nothing of weft runs as a single
//! microthread.
//!
//! A run of a program is a [`RunHandle`] the application owns: wait for it (blocking
//! or as a future), cancel it, give it a deadline and a fuel budget; dropping it
//! cancels the run.
//!
//! ```no_run
//! # fn main() -> Result<(), weft::Error> {
//! use std::time::Duration;
//! let runtime = weft::Runtime::builder().workers(2).build()?;
//! let program = runtime.load("hello.wasm")?;
//! let run = program.start(&weft::RunOptions::new().args(["a", "b"]).deadline(Duration::from_secs(10)))?;
//! let status = run.wait();
//! if let weft::ExitStatus::Failed(failure) = &status {
//!     eprintln!("{failure}");
//! }
//! std::process::exit(status.code());
//! # }
//! ```
//!
//! Modules, each depending only on those above it: [`limits`], [`cache`] and `error`
//! (leaves); `channel` (host channels, which know nothing of guests); `run` (one run:
//! its shared state, its end, [`RunHandle`], [`RunOptions`]); `bindings` (generated
//! from `wit/`); `microthread` (a store's lifecycle); `host` (the WIT glue);
//! [`runtime`] (engine, pool, workers); `program` (a compiled component, and
//! starting runs of it).

pub mod cache;
mod error;
pub mod limits;

mod channel;
mod run;

mod bindings;
mod microthread;

mod host;
pub mod runtime;

mod program;

pub use cache::CacheStatus;
pub use error::{Error, Failure, FailureKind};
pub use limits::Limits;
pub use program::{Program, imports_weft};
pub use run::{ExitStatus, OutputBuffer, RunHandle, RunOptions};
pub use runtime::{DEFAULT_ADDRESS_SPACE, DEFAULT_FUEL_SLICE, Preemption, Runtime, RuntimeBuilder};

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
//! ```no_run
//! # fn main() -> Result<(), weft::Error> {
//! let runtime = weft::Runtime::builder().workers(2).build()?;
//! let program = runtime.load("hello.wasm")?;
//! let status = program.run(&weft::RunOptions::new().args(["a", "b"]))?;
//! if let weft::ExitStatus::Failed(failure) = &status {
//!     eprintln!("{failure}");
//! }
//! std::process::exit(status.code());
//! # }
//! ```
//!
//! Modules: [`runtime`] (engine, pool, scheduler threads, configuration), `program`
//! (a compiled component), `scheduler` (one run of a program: spawning, exit,
//! cancellation), `microthread` (one instance and the host side of
//! `weft:runtime/thread`), [`limits`].

mod bindings;
pub mod cache;
mod channel;
mod error;
pub mod limits;
mod microthread;
mod program;
pub mod runtime;
mod scheduler;

pub use cache::CacheStatus;
pub use error::{Error, Failure};
pub use limits::Limits;
pub use program::{Program, imports_weft};
pub use runtime::{
    DEFAULT_ADDRESS_SPACE, DEFAULT_FUEL_SLICE, OutputBuffer, Preemption, RunOptions, Runtime, RuntimeBuilder,
};
pub use scheduler::ExitStatus;

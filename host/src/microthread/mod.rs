//! A microthread: one instance of the program's component in its own `Store`, driven
//! by `call_async` on a wasmtime fiber, as a task of its run on weft's run queue. This module owns
//! a store's lifecycle: its state ([`Microthread`]), its fuel, epoch and memory
//! settings, starting it at `main` or at a spawned function (structured or
//! detached), moving endpoints into and out of its resource table, how its end
//! becomes the outcome its joiner sees (`ending`), the prejoin of its children, and
//! how its call is driven through cancellation and atomic sections (`driver`).

mod driver;
mod ending;
mod handles;
mod life;
mod spawn;
mod store;

pub(crate) use spawn::{Link, spawn, start_main};
pub use store::Microthread;
pub(crate) use store::{Call, Image, Spawned};

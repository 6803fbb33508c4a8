//! A microthread: one instance of the program's component in its own `Store`,
//! driven by `call_async` on a wasmtime fiber, as a task of its run on weft's run
//! queue. This module owns a store's lifecycle, and knows nothing of WIT: the glue
//! (`wit`) implements its [`Image`] and moves messages in and out of its table.
//!
//! Its words. The **image** ([`Image`]) is the pre-linked program every
//! microthread is instantiated from. A microthread **starts** at `main` or at a
//! **spawned** function ([`Spawned`]), **linked** to the microthread that spawned
//! it as a structured **child** or **detached** ([`Link`]). Its **store** holds its
//! data ([`Microthread`]), its **handles** (the resource table, counted against
//! the run's), its memory limit and its fuel accounting. The **driver** polls its
//! call: a cancelled microthread busy in guest code is **stopped** where it gives
//! control back, and inside an atomic section a fuel yield is skipped. Its
//! **ending** is how it ended (a supervisor's giving up, [`GaveUp`], among them), which becomes what its joiner sees; before it
//! finishes it **waits for its children** (what the design and `run` call its
//! prejoin), and a child failure nobody joined **dooms** it (fails it once its
//! own call is over).
//!
//! A microthread may also run on another node of the cluster: here it has a
//! **stand-in**, a member without a store that ends as it does; and a node's run
//! without `main` **serves** spawns from the others.
//!
//! Files: `spawn` (starting one: `spawn`, `spawn_remote`, `start_main`,
//! `start_serving`), `life` (its task: the store made, the program instantiated and
//! called, its end settled, its children waited for; or a stand-in's wait),
//! `remote` (a run as the cluster's target of spawns), `reserve` (instances made
//! ahead of need, stores dropped off the critical path), `store`, `handles`,
//! `driver`, `ending`.

mod driver;
mod ending;
mod handles;
mod life;
#[cfg(feature = "cluster")]
mod remote;
mod reserve;
mod spawn;
mod store;

pub(crate) use ending::GaveUp;
pub(crate) use life::RemoteBody;
#[cfg(feature = "cluster")]
pub(crate) use remote::Serve;
pub(crate) use spawn::{Link, spawn, spawn_remote, spawn_request, start_main, start_serving};
pub use store::Microthread;
pub(crate) use store::{Call, Image, Request, Responded, Spawned};

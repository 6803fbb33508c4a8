//! What a run gets from the runtime that starts it ([`RunContext`]): where its
//! microthreads run and where its timers and sockets are driven, where it is
//! watched, the engine, the runtime's count of live microthreads, its resolver, the
//! application's data, and the cluster its node belongs to. The runtime holds one, and hands it to each run.

use std::sync::Arc;

use wasmtime::Engine;

use super::options::AppData;
use crate::limits::{Pool, Quota};
use crate::net::Resolver;
use crate::scheduler::Scheduler;

/// What every run of a runtime shares with it.
#[derive(Clone)]
pub(crate) struct RunContext {
    /// tokio: the thread that drives timers, sockets and host tasks.
    pub(crate) io: tokio::runtime::Handle,
    /// The worker threads that run microthreads.
    pub(crate) scheduler: Arc<Scheduler>,
    /// The runtime's supervisor thread, where runs are watched.
    pub(crate) supervisor: tokio::runtime::Handle,
    /// To interrupt, by epoch, microthreads that run without fuel.
    pub(crate) engine: Engine,
    /// Live microthreads of all the runtime's runs (they share its instance pool).
    pub(crate) live: Arc<Quota>,
    /// The pool's instances beyond the live microthreads' (see
    /// [`SPARE_INSTANCES`](crate::limits::SPARE_INSTANCES)): for instances made
    /// ahead of need, and stores waiting to be dropped.
    pub(crate) spare: Arc<Quota>,
    /// The instance pool's core instances and tables, all runs together.
    pub(crate) pool: Arc<Pool>,
    /// Whether idle workers make instances ahead of need and drop ended stores
    /// ([`RuntimeBuilder::ahead_of_need`](crate::RuntimeBuilder::ahead_of_need)).
    pub(crate) ahead_of_need: bool,
    /// Looks up the host names its guests use.
    pub(crate) resolver: Resolver,
    /// The runtime's data for the application's host functions.
    pub(crate) data: Option<AppData>,
    /// The runtime's tally of its runs (its metrics).
    pub(crate) tally: Arc<super::counters::Tally>,
    /// The cluster the runtime's node belongs to, if any.
    #[cfg(feature = "cluster")]
    pub(crate) cluster: Option<crate::cluster::Cluster>,
}

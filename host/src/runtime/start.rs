//! Starting a run: the one way a run begins. The runtime checks the options
//! against its limits, hands the run its [`RunContext`](crate::run::RunContext),
//! registers it (to cancel it, should the runtime go first), starts `main`, and
//! gives the run to its supervisor.

use std::sync::Arc;
use std::time::Duration;

use super::state::Runtime;
use crate::deterministic::Lane;
use crate::error::Error;
use crate::microthread::{self, Image};
use crate::run::{ExitStatus, Refused, Run, RunHandle, RunOptions};

impl Runtime {
    /// Start a run of `image`'s `main` with `options` (see
    /// [`Program::start`](crate::Program::start)); the handle holds `keep` (the
    /// program) for as long as it lives.
    pub(super) fn start_run(
        &self,
        image: &Arc<dyn Image>,
        options: &RunOptions,
        serving: bool,
        keep: Arc<dyn Send + Sync>,
    ) -> Result<RunHandle, Error> {
        let inner = &*self.inner;
        options.check_grants()?;
        // A busy microthread can be stopped: by fuel, or by epochs.
        let interruptible = inner.fuel_slice.is_some() || inner.epochs;
        let mut limits = options.limits(&inner.limits, inner.fuel_slice, interruptible)?;
        limits.graceful_end = image.can_spawn();
        limits.footprint = image.footprint();
        let deterministic = match options.deterministic {
            Some(seed) => Some(
                Lane::start(seed, options.trace_schedule.as_ref().map(|t| t.0.clone()))
                    .map_err(|e| Error::Config(format!("starting the thread of a deterministic run: {e}")))?,
            ),
            None => None,
        };
        let endpoints = options.take_endpoints()?;
        let mut for_run = options.for_run();
        if !serving && !image.can_spawn() && options.deterministic.is_none() {
            // Its file I/O may then block the worker it holds (see `RunOptions::wasi_ctx`).
            for_run.held_worker = inner.context.scheduler.hold_a_worker().map(Arc::new);
        }
        let run = Run::new(for_run, endpoints, limits, deterministic, &inner.context);
        let handle = RunHandle::new(run.clone(), keep);
        if options.deadline == Some(Duration::ZERO) {
            run.finish_now(ExitStatus::DeadlineExceeded);
            return Ok(handle);
        }
        // Registered first: should the runtime go away now, it cancels this run too.
        self.register(&run);
        #[cfg(feature = "cluster")]
        if let Some(cluster) = &inner.context.cluster
            && options.deterministic.is_none()
            && image.can_spawn()
        {
            // Other nodes may spawn in this run while it runs.
            cluster.serve(image.program(), microthread::Serve::new(&run, image));
        }
        // A run without `main` serves: spawns from other nodes, or HTTP requests.
        let first = match serving {
            true => microthread::start_serving(&run, image),
            false => microthread::start_main(&run, image),
        };
        let main = match first {
            Ok(main) => main,
            Err(Refused::LimitReached(max)) => {
                // Nothing ran: the ends go back, for a retry with the same options.
                options.give_back_endpoints(run.untaken_endpoints());
                return Err(Error::LimitReached { max });
            }
        };
        run.supervise(main);
        Ok(handle)
    }
}

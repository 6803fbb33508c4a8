//! The limits one run ends up with ([`RunLimits`]): the bounds it asks for
//! (`Requested`, in its options) checked against the runtime's [`Limits`] in one place, and its
//! other options checked against what the runtime can do.

use std::time::Duration;

use super::options::{Requested, RunOptions};
use crate::error::Error;
use crate::limits::{Footprint, Limits};

impl Requested {
    /// The run's bounds: the runtime's `limits`, lowered where the run asks. An
    /// error names a request over the runtime's limit, or a bound under the least
    /// it may be ([`Limits::check_floors`]).
    fn within(&self, runtime: &Limits) -> Result<Limits, Error> {
        fn lower<T: PartialOrd + std::fmt::Display + Copy>(
            what: &str,
            asked: Option<T>,
            bound: &mut T,
        ) -> Result<(), Error> {
            match asked {
                Some(v) if v > *bound => Err(Error::InvalidOptions(format!(
                    "{what} {v} is over the runtime's limit of {bound}"
                ))),
                Some(v) => {
                    *bound = v;
                    Ok(())
                }
                None => Ok(()),
            }
        }
        let mut run = runtime.clone();
        lower(
            "max_microthreads",
            self.max_microthreads,
            &mut run.max_microthreads,
        )?;
        lower("max_memory", self.max_memory, &mut run.max_memory)?;
        lower(
            "max_message_size",
            self.max_message_size,
            &mut run.max_message_size,
        )?;
        lower(
            "max_buffered_bytes",
            self.max_buffered_bytes,
            &mut run.max_buffered_bytes,
        )?;
        lower("max_channels", self.max_channels, &mut run.max_channels)?;
        run.check_floors().map_err(Error::InvalidOptions)?;
        Ok(run)
    }
}

impl RunOptions {
    /// The run's limits: these options within the runtime's `limits`. Errors if an
    /// option asks for more than the runtime allows, or for fuel budgets where
    /// fuel is not metered.
    pub(crate) fn limits(
        &self,
        runtime: &Limits,
        fuel_slice: Option<u64>,
        interruptible: bool,
    ) -> Result<RunLimits, Error> {
        let bounds = self.requested.within(runtime)?;
        let at_least_one = |what: &str, n: u32| match n {
            0 => Err(Error::InvalidOptions(format!("{what} must be at least 1"))),
            n => Ok(n),
        };
        if fuel_slice.is_none() && self.deterministic.is_some() {
            return Err(Error::InvalidOptions(
                "deterministic mode needs a runtime that meters fuel (Preemption::Fuel), \
                 but this one runs with preemption off"
                    .into(),
            ));
        }
        if self.deterministic.is_some() && self.net.any() {
            return Err(Error::InvalidOptions(
                "a deterministic run cannot use the network (what arrives from it, and when, \
                 is not the run's to decide): drop its listen and connect grants"
                    .into(),
            ));
        }
        if self.trace_schedule.is_some() && self.deterministic.is_none() {
            return Err(Error::InvalidOptions(
                "a schedule trace is only kept for a deterministic run (RunOptions::deterministic)".into(),
            ));
        }
        if fuel_slice.is_none() && (self.fuel_budget.is_some() || self.microthread_fuel_budget.is_some()) {
            return Err(Error::InvalidOptions(
                "fuel budgets need a runtime that meters fuel (Preemption::Fuel), \
                 but this one runs with preemption off"
                    .into(),
            ));
        }
        Ok(RunLimits {
            bounds,
            store_handles: at_least_one("max_handles", self.max_handles)?,
            run_handles: at_least_one("max_run_handles", self.max_run_handles)?,
            fuel_slice,
            interruptible,
            graceful_end: true,
            footprint: Footprint::DEFAULT,
            atomic_cap: self.atomic_cap,
            fuel_budget: self.fuel_budget,
            microthread_fuel_budget: self.microthread_fuel_budget,
        })
    }
}

/// The limits of one run: its options within the runtime's limits, cached in the
/// run so that every check is one field away. It reads as its [`Limits`]
/// (`limits.max_message_size`), the runtime's lowered for this run.
#[derive(Debug, Clone)]
pub(crate) struct RunLimits {
    /// The run's bounds: the runtime's [`Limits`], lowered where the run asked.
    bounds: Limits,
    /// Handles a microthread's store may hold (`RunOptions::max_handles`).
    pub(crate) store_handles: u32,
    /// Handles the run's microthreads may hold together (`RunOptions::max_run_handles`).
    pub(crate) run_handles: u32,
    pub(crate) fuel_slice: Option<u64>,
    /// A busy microthread can be stopped (fuel, or epoch checks).
    pub(crate) interruptible: bool,
    /// The program can see a cancellation (it imports weft): at its end, what still
    /// runs gets the shutdown grace for its cleanup. Set by `Program::start`.
    pub(crate) graceful_end: bool,
    /// What each of its microthreads takes from the instance pool: the program's.
    /// Set by `Program::start`.
    pub(crate) footprint: Footprint,
    pub(crate) atomic_cap: Duration,
    pub(crate) fuel_budget: Option<u64>,
    pub(crate) microthread_fuel_budget: Option<u64>,
}

impl std::ops::Deref for RunLimits {
    type Target = Limits;

    fn deref(&self) -> &Limits {
        &self.bounds
    }
}

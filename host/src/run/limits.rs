//! The limits one run ends up with ([`RunLimits`]): its options checked against the
//! runtime's limits, in one place.

use std::time::Duration;

use super::RunOptions;
use crate::error::Error;
use crate::limits::Limits;

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
        fn within<T: PartialOrd + std::fmt::Display + Copy>(
            what: &str,
            asked: Option<T>,
            ceiling: T,
        ) -> Result<T, Error> {
            match asked {
                Some(v) if v > ceiling => Err(Error::InvalidOptions(format!(
                    "{what} {v} is over the runtime's limit of {ceiling}"
                ))),
                Some(v) => Ok(v),
                None => Ok(ceiling),
            }
        }
        let max_microthreads = within(
            "max_microthreads",
            self.max_microthreads,
            runtime.max_microthreads,
        )?;
        if max_microthreads == 0 {
            return Err(Error::InvalidOptions(
                "max_microthreads must be at least 1".into(),
            ));
        }
        let max_memory = within("max_memory", self.max_memory, runtime.max_memory)?;
        if max_memory < 64 << 10 {
            return Err(Error::InvalidOptions(
                "max_memory must be at least 64 KiB (one wasm page)".into(),
            ));
        }
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
            max_microthreads,
            max_memory,
            max_message_size: within(
                "max_message_size",
                self.max_message_size,
                runtime.max_message_size,
            )?,
            max_channel_capacity: runtime.max_channel_capacity,
            max_buffered_bytes: within(
                "max_buffered_bytes",
                self.max_buffered_bytes,
                runtime.max_buffered_bytes,
            )?,
            max_channels: within("max_channels", self.max_channels, runtime.max_channels)?,
            store_handles: match self.max_handles {
                0 => return Err(Error::InvalidOptions("max_handles must be at least 1".into())),
                n => n,
            },
            run_handles: match self.max_run_handles {
                0 => return Err(Error::InvalidOptions("max_run_handles must be at least 1".into())),
                n => n,
            },
            fuel_slice,
            interruptible,
            graceful_end: true,
            cancel_grace: self.cancel_grace,
            shutdown_grace: self.shutdown_grace,
            atomic_cap: self.atomic_cap,
            fuel_budget: self.fuel_budget,
            microthread_fuel_budget: self.microthread_fuel_budget,
        })
    }
}

/// The limits of one run: its options within the runtime's limits, cached in the
/// run so that every check is one field away.
#[derive(Debug, Clone)]
pub(crate) struct RunLimits {
    pub(crate) max_microthreads: u32,
    pub(crate) max_memory: u64,
    pub(crate) max_message_size: u32,
    pub(crate) max_channel_capacity: u32,
    pub(crate) max_buffered_bytes: u64,
    pub(crate) max_channels: u32,
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
    pub(crate) cancel_grace: Duration,
    pub(crate) shutdown_grace: Duration,
    pub(crate) atomic_cap: Duration,
    pub(crate) fuel_budget: Option<u64>,
    pub(crate) microthread_fuel_budget: Option<u64>,
}

//! A run's counters, and the runtime's tally of all its runs.
//!
//! A run's [`Counters`] live apart from the run, so that they outlive it: the
//! runtime's [`Tally`] holds every run's counters, reads the live runs' state
//! when asked (what the metrics show), and folds a run's counters into its totals
//! once the run is gone, so that a total never goes down.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use super::view::{MicrothreadInfo, MicrothreadState};
use crate::error::FailureKind;
use crate::sync::Unpoisoned;

/// The kinds of failure, as many as `FailureKind` has (its `index`es).
pub(crate) const FAILURE_KINDS: usize = 10;

/// How an HTTP request a run served ended (`weft serve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestOutcome {
    /// The handler set a response.
    Answered,
    /// The handler failed, or ended without a response: answered 500.
    Failed,
    /// It ran past the request timeout: stopped, answered 504.
    TimedOut,
    /// Refused at once, too many in flight (or the server stopping): 503.
    Refused,
}

impl RequestOutcome {
    /// Every outcome, in the order of their counters.
    pub(crate) const ALL: [RequestOutcome; 4] = [
        RequestOutcome::Answered,
        RequestOutcome::Failed,
        RequestOutcome::TimedOut,
        RequestOutcome::Refused,
    ];

    /// Its name, as a metric's label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            RequestOutcome::Answered => "answered",
            RequestOutcome::Failed => "failed",
            RequestOutcome::TimedOut => "timed_out",
            RequestOutcome::Refused => "refused",
        }
    }
}

/// One run's counters (the live count is the run's `live`).
#[derive(Default)]
pub(crate) struct Counters {
    pub(super) spawned: AtomicU64,
    pub(super) peak_live: AtomicU32,
    pub(super) finished: AtomicU64,
    /// Failures (cancellations included), by `FailureKind::index`.
    pub(super) failed: [AtomicU64; FAILURE_KINDS],
    /// Messages sent by microthreads that have ended.
    pub(super) sent_by_ended: AtomicU64,
    /// Fuel consumed by microthreads that have ended.
    pub(super) fuel_by_ended: AtomicU64,
    /// Restarts counted by the run's supervisors (`thread.count-restart`).
    pub(super) restarts: AtomicU64,
    /// Microthreads spawned on other nodes, and started here for other nodes.
    pub(super) spawned_remote: AtomicU64,
    pub(super) started_for_others: AtomicU64,
    /// Spawned microthreads that started in an instance made ahead of need.
    pub(super) started_prepared: AtomicU64,
    /// HTTP requests started (a microthread each), and ended by outcome
    /// (`RequestOutcome` in order; a refused one never started).
    pub(super) requests_started: AtomicU64,
    pub(super) requests: [AtomicU64; 4],
}

impl Counters {
    /// The requests that ended with `outcome`.
    pub(super) fn requests(&self, outcome: RequestOutcome) -> u64 {
        self.requests[outcome as usize].load(Ordering::Relaxed)
    }

    pub(super) fn failed_total(&self) -> u64 {
        self.failed.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// A microthread ended, failed with `kind` or not.
    pub(super) fn count_end(&self, failed: Option<FailureKind>, sent: u64, fuel: Option<u64>) {
        self.finished.fetch_add(1, Ordering::Relaxed);
        if let Some(kind) = failed {
            self.failed[kind.index() as usize].fetch_add(1, Ordering::Relaxed);
        }
        self.sent_by_ended.fetch_add(sent, Ordering::Relaxed);
        if let Some(fuel) = fuel {
            self.fuel_by_ended.fetch_add(fuel, Ordering::Relaxed);
        }
    }
}

/// Totals over runs: what [`Tally::read`] reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) spawned: u64,
    pub(crate) finished: u64,
    pub(crate) failed: [u64; FAILURE_KINDS],
    pub(crate) messages_sent: u64,
    pub(crate) fuel: u64,
    pub(crate) restarts: u64,
    pub(crate) requests_started: u64,
    /// HTTP requests by outcome (`RequestOutcome::ALL`'s order).
    pub(crate) requests: [u64; 4],
}

impl Totals {
    /// Add the ended microthreads' part of `counters`.
    fn add_ended(&mut self, counters: &Counters) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        self.spawned += load(&counters.spawned);
        self.finished += load(&counters.finished);
        for (total, c) in self.failed.iter_mut().zip(&counters.failed) {
            *total += load(c);
        }
        self.messages_sent += load(&counters.sent_by_ended);
        self.fuel += load(&counters.fuel_by_ended);
        self.restarts += load(&counters.restarts);
        self.requests_started += load(&counters.requests_started);
        for (total, c) in self.requests.iter_mut().zip(&counters.requests) {
            *total += load(c);
        }
    }
}

/// What the runtime's runs are doing now, with their totals.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reading {
    pub(crate) totals: Totals,
    /// Runs not yet finished.
    pub(crate) runs_live: u64,
    /// Live microthreads, by state (`MicrothreadState` as a label): every state,
    /// 0 for those no microthread is in.
    pub(crate) live: BTreeMap<&'static str, u64>,
    pub(crate) buffered_bytes: u64,
    pub(crate) channels_open: u64,
    pub(crate) sockets_open: u64,
}

/// What the tally reads of a live run (the run implements it: the tally knows
/// nothing else of it).
pub(crate) trait Observed: Send + Sync {
    /// Whether the run has finished.
    fn finished(&self) -> bool;
    /// Its live microthreads.
    fn microthreads(&self) -> Vec<MicrothreadInfo>;
    /// Bytes its channels buffer, channels open, sockets open.
    fn holds(&self) -> (u64, u32, u32);
}

/// A run as the tally holds it: without keeping it alive, with its counters.
type Held = (Weak<dyn Observed>, Arc<Counters>);

/// A runtime's tally of its runs: their counters, and how long its microthreads
/// live.
pub(crate) struct Tally {
    runs: Mutex<Vec<Held>>,
    /// The counters of the runs that are gone, summed.
    gone: Mutex<Totals>,
    /// From spawn to end, in seconds: what a joiner that waited from the spawn on
    /// waited.
    lifetimes: Histogram,
    /// From a send to the receive that returns the message, in seconds (sampled:
    /// see `channel::LATENCY_SAMPLE`).
    latencies: Histogram,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            runs: Mutex::default(),
            gone: Mutex::default(),
            // 10 µs to about 3 min.
            lifetimes: Histogram::new(exponential_buckets(1e-5, 4.0, 13)),
            // 1 µs to about 4 s.
            latencies: Histogram::new(exponential_buckets(1e-6, 4.0, 12)),
        }
    }
}

impl Tally {
    /// Count `run`, whose counters are `counters`, from now on.
    pub(super) fn register(&self, run: Weak<dyn Observed>, counters: Arc<Counters>) {
        let mut runs = self.runs.locked();
        let mut gone = None;
        runs.retain(|(run, counters)| {
            if run.strong_count() > 0 {
                return true;
            }
            gone.get_or_insert_with(|| self.gone.locked()).add_ended(counters);
            false
        });
        runs.push((run, counters));
    }

    /// A microthread lived `age`.
    pub(super) fn observe_lifetime(&self, age: Duration) {
        self.lifetimes.observe(age.as_secs_f64());
    }

    /// The histogram of microthreads' lifetimes.
    pub(crate) fn lifetimes(&self) -> &Histogram {
        &self.lifetimes
    }

    /// A sampled message took `latency` from its send to its receive.
    pub(super) fn observe_latency(&self, latency: Duration) {
        self.latencies.observe(latency.as_secs_f64());
    }

    /// The histogram of sampled messages' latencies.
    pub(crate) fn latencies(&self) -> &Histogram {
        &self.latencies
    }

    /// The runs' totals and what their microthreads are doing now.
    pub(crate) fn read(&self) -> Reading {
        let mut reading = Reading {
            live: MicrothreadState::LABELS.iter().map(|s| (*s, 0)).collect(),
            ..Reading::default()
        };
        let runs = self.runs.locked();
        // Under the runs' lock: a run folded into `gone` meanwhile is counted once.
        reading.totals = self.gone.locked().clone();
        for (run, counters) in runs.iter() {
            // A run gone but not folded in yet has no microthread left.
            reading.totals.add_ended(counters);
            let Some(run) = run.upgrade() else { continue };
            if !run.finished() {
                reading.runs_live += 1;
            }
            for m in run.microthreads() {
                *reading.live.entry(m.state.label()).or_default() += 1;
                reading.totals.messages_sent += m.messages_sent;
                reading.totals.fuel += m.fuel.unwrap_or(0);
            }
            let (buffered, channels, sockets) = run.holds();
            reading.buffered_bytes += buffered;
            reading.channels_open += u64::from(channels);
            reading.sockets_open += u64::from(sockets);
        }
        reading
    }
}

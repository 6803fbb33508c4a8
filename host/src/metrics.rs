//! What a runtime shows Prometheus: [`Metrics`], a collector that reads the
//! runtime's runs and workers at each scrape (nothing is counted twice on the
//! microthreads' path: the runs' own counters are read), for an application's
//! own registry or encoded on its own (`weft run --metrics` serves that).
//!
//! The metrics, all prefixed `weft_`:
//!
//! | metric | type | what |
//! |---|---|---|
//! | `weft_microthreads_spawned_total` | counter | microthreads started, `main` included |
//! | `weft_microthreads_finished_total` | counter | microthreads ended (failed ones included) |
//! | `weft_microthreads_failed_total{kind}` | counter | failures by kind (`panic`, `trap`, `cancelled`, …) |
//! | `weft_microthreads_restarted_total` | counter | children restarted by supervisors |
//! | `weft_microthreads_live{state}` | gauge | live microthreads by state (`running`, `ready`, `receiving`, `sleeping`, …) |
//! | `weft_microthread_lifetime_seconds` | histogram | spawn to end: what a joiner waiting from the spawn waits |
//! | `weft_message_latency_seconds` | histogram | from a send to the receive that returns the message, one message in 64 each microthread sends (a round trip is two) |
//! | `weft_messages_sent_total` | counter | messages sent on channels |
//! | `weft_channel_buffered_bytes` | gauge | bytes buffered in channels now |
//! | `weft_channels_open` | gauge | channels open now |
//! | `weft_sockets_open` | gauge | sockets open now |
//! | `weft_fuel_consumed_total` | counter | fuel the microthreads consumed (with fuel metering) |
//! | `weft_runs_live` | gauge | runs not yet finished |
//! | `weft_worker_busy_seconds_total{worker}` | counter | time each worker was not idle |
//! | `weft_worker_runs_total{worker}` | counter | microthread runs (polls) by each worker |
//! | `weft_worker_queue_length{worker}` | gauge | microthreads waiting in each worker's queue |
//! | `weft_injected_queue_length` | gauge | woken microthreads no worker has taken yet |
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = weft::Runtime::new()?;
//! // Into the application's own registry, beside its metrics:
//! let mut registry = weft::metrics::prometheus_client::registry::Registry::default();
//! runtime.metrics().register(&mut registry);
//! // Or on its own, in the text format:
//! let text = runtime.metrics().encode();
//! assert!(text.contains("weft_microthreads_spawned_total 0"));
//! # Ok(()) }
//! ```

use std::sync::{Arc, Mutex};

/// The Prometheus client weft's metrics are written for, at the version weft
/// uses: an application registers them in a [`Registry`] of this crate.
pub use prometheus_client;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use crate::error::FailureKind;
use crate::run::{FAILURE_KINDS, RequestOutcome, Tally};
use crate::scheduler::Scheduler;
pub use crate::scheduler::WorkerStats;
use crate::sync::Unpoisoned;

/// A runtime's metrics: from [`Runtime::metrics`](crate::Runtime::metrics).
/// Cloning it is cheap; every clone reads the same runtime.
#[derive(Clone)]
pub struct Metrics {
    tally: Arc<Tally>,
    scheduler: Arc<Scheduler>,
    /// The counters as last reported: a counter never goes down (a microthread
    /// that ends between two reads of its run may be missed by one of them).
    reported: Arc<Mutex<Vec<u64>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub(crate) fn new(tally: Arc<Tally>, scheduler: Arc<Scheduler>) -> Metrics {
        Metrics {
            tally,
            scheduler,
            reported: Arc::default(),
        }
    }

    /// Add weft's metrics to `registry`, to be served with the application's.
    pub fn register(&self, registry: &mut Registry) {
        registry.register_collector(Box::new(self.clone()));
    }

    /// weft's metrics alone, in the OpenMetrics text format (which Prometheus
    /// reads; serve it as `application/openmetrics-text; version=1.0.0;
    /// charset=utf-8`).
    pub fn encode(&self) -> String {
        let mut registry = Registry::default();
        self.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing metrics to a String does not fail");
        out
    }

    /// What each worker thread has done, and what waits for it now.
    pub fn workers(&self) -> Vec<WorkerStats> {
        self.scheduler.loads()
    }

    /// `value`, or what was reported before under `slot` if that is more.
    fn monotonic(&self, reported: &mut Vec<u64>, slot: usize, value: u64) -> u64 {
        if reported.len() <= slot {
            reported.resize(slot + 1, 0);
        }
        reported[slot] = reported[slot].max(value);
        reported[slot]
    }
}

impl Collector for Metrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let reading = self.tally.read();
        let loads = self.scheduler.loads();
        let mut reported = self.reported.locked();
        let mut slot = 0usize;
        let mut next = |value: u64| {
            slot += 1;
            self.monotonic(&mut reported, slot - 1, value)
        };
        let t = &reading.totals;
        let (spawned, finished, restarted, sent, fuel) = (
            next(t.spawned),
            next(t.finished),
            next(t.restarts),
            next(t.messages_sent),
            next(t.fuel),
        );
        let failed: Vec<u64> = t.failed.iter().map(|&n| next(n)).collect();
        let requests: Vec<u64> = t.requests.iter().map(|&n| next(n)).collect();
        let requests_ended: u64 = t.requests[..3].iter().sum();
        let in_flight = t.requests_started.saturating_sub(requests_ended);
        let busy: Vec<u64> = loads.iter().map(|l| next(l.busy.as_nanos() as u64)).collect();
        let runs: Vec<u64> = loads.iter().map(|l| next(l.runs)).collect();
        drop(reported);

        counter(
            &mut encoder,
            "weft_microthreads_spawned",
            "Microthreads started, main included",
            spawned,
        )?;
        counter(
            &mut encoder,
            "weft_microthreads_finished",
            "Microthreads ended, failed ones included",
            finished,
        )?;
        {
            let mut family = encoder.encode_descriptor(
                "weft_microthreads_failed",
                "Microthreads failed, by kind of failure (cancellations included)",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (index, n) in failed.iter().enumerate().take(FAILURE_KINDS) {
                let kind = FailureKind::from_index(index as u8).map_or("unknown", kind_label);
                ConstCounter::new(*n).encode(family.encode_family(&[("kind", kind)])?)?;
            }
        }
        counter(
            &mut encoder,
            "weft_microthreads_restarted",
            "Children restarted by supervisors",
            restarted,
        )?;
        {
            let mut family = encoder.encode_descriptor(
                "weft_microthreads_live",
                "Live microthreads, by state",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for (state, n) in &reading.live {
                ConstGauge::new(*n as i64).encode(family.encode_family(&[("state", *state)])?)?;
            }
        }
        let lifetimes = self.tally.lifetimes();
        lifetimes.encode(encoder.encode_descriptor(
            "weft_microthread_lifetime",
            "From spawn to end: what a joiner waiting from the spawn on waits",
            Some(&Unit::Seconds),
            lifetimes.metric_type(),
        )?)?;
        let latencies = self.tally.latencies();
        latencies.encode(encoder.encode_descriptor(
            "weft_message_latency",
            "From a send to the receive that returns the message (one message in 64 a microthread sends); a request and its reply are two",
            Some(&Unit::Seconds),
            latencies.metric_type(),
        )?)?;
        counter(
            &mut encoder,
            "weft_messages_sent",
            "Messages sent on channels",
            sent,
        )?;
        gauge(
            &mut encoder,
            "weft_channel_buffered_bytes",
            "Bytes buffered in channels now",
            reading.buffered_bytes,
        )?;
        gauge(
            &mut encoder,
            "weft_channels_open",
            "Channels open now",
            reading.channels_open,
        )?;
        gauge(
            &mut encoder,
            "weft_sockets_open",
            "Sockets open now",
            reading.sockets_open,
        )?;
        counter(
            &mut encoder,
            "weft_fuel_consumed",
            "Fuel consumed by microthreads (when fuel is metered)",
            fuel,
        )?;
        {
            let mut family = encoder.encode_descriptor(
                "weft_http_requests",
                "HTTP requests served (weft serve), by outcome: answered by the handler, failed (500), timed_out (504), refused at once (503)",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (outcome, n) in RequestOutcome::ALL.iter().zip(&requests) {
                ConstCounter::new(*n).encode(family.encode_family(&[("outcome", outcome.label())])?)?;
            }
        }
        gauge(
            &mut encoder,
            "weft_http_requests_in_flight",
            "HTTP requests being handled now (weft serve)",
            in_flight,
        )?;
        gauge(
            &mut encoder,
            "weft_runs_live",
            "Runs not yet finished",
            reading.runs_live,
        )?;
        {
            let mut family = encoder.encode_descriptor(
                "weft_worker_busy",
                "Time each worker was not idle (running microthreads, chores, looking for work)",
                Some(&Unit::Seconds),
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (i, ns) in busy.iter().enumerate() {
                let worker = i.to_string();
                ConstCounter::new(*ns as f64 / 1e9)
                    .encode(family.encode_family(&[("worker", worker.as_str())])?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "weft_worker_runs",
                "Microthread runs (each up to its next block, yield or fuel yield) by each worker",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (i, n) in runs.iter().enumerate() {
                let worker = i.to_string();
                ConstCounter::new(*n).encode(family.encode_family(&[("worker", worker.as_str())])?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "weft_worker_queue_length",
                "Microthreads waiting in each worker's queue",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for (i, load) in loads.iter().enumerate() {
                let worker = i.to_string();
                ConstGauge::new(load.queued as i64)
                    .encode(family.encode_family(&[("worker", worker.as_str())])?)?;
            }
        }
        gauge(
            &mut encoder,
            "weft_injected_queue_length",
            "Woken microthreads that no worker has taken yet",
            self.scheduler.injected() as u64,
        )?;
        Ok(())
    }
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value as i64);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// A kind of failure as a label: `panic`, `out_of_memory`, ….
fn kind_label(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Panic => "panic",
        FailureKind::Trap => "trap",
        FailureKind::OutOfMemory => "out_of_memory",
        FailureKind::FuelExhausted => "fuel_exhausted",
        FailureKind::Cancelled => "cancelled",
        FailureKind::ChildFailed => "child_failed",
        FailureKind::Exited => "exited",
        FailureKind::RestartIntensity => "restart_intensity",
        FailureKind::Disconnected => "disconnected",
        FailureKind::NodeDown => "node_down",
    }
}

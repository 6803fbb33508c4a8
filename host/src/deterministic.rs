//! Deterministic mode: everything a run's schedule depends on, drawn from one seed.
//!
//! A deterministic run has a thread of its own with a single-threaded tokio
//! scheduler whose clock is paused: time moves only when the run says so. Its
//! [`Schedule`] owns a PRNG seeded with the run's seed, and every choice that
//! decides the order of events comes from it:
//! - which ready microthread runs next: one of them, uniformly (the run's queue,
//!   `scheduler::Seeded`, asks [`Schedule::choose`]);
//! - which ready operation a `select` takes ([`Schedule::choose`]);
//! - where each fuel slice ends ([`Schedule::slice`]).
//!
//! Virtual time advances by one nanosecond per unit of fuel the run burns (about
//! an instruction; counted at host calls and fuel yields, in steps of at least a
//! microsecond), and when every microthread waits for a timer it jumps to the
//! next deadline (tokio's auto-advance). The guest's clocks read it
//! ([`VirtualClock`]), starting at fixed values, and its random source is seeded
//! from the seed ([`SeededRandom`]). The same program with the same seed and input
//! then makes the same choices in the same order, and prints the same bytes.
//!
//! This module knows nothing of runs: the run owns a `Schedule` and a [`Lane`].

use std::convert::Infallible;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::sync::Unpoisoned;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// What the guest's wall clock reads when a deterministic run starts:
/// 2000-01-01T00:00:00Z.
pub const WALL_CLOCK_START: Duration = Duration::from_secs(946_684_800);

/// What the guest's monotonic clock reads when a deterministic run starts (one
/// second, so that no guest sees zero).
const MONOTONIC_START: Duration = Duration::from_secs(1);

/// Where a schedule trace goes.
pub(crate) type TraceSink = Arc<Mutex<Box<dyn Write + Send>>>;

/// The choices of one deterministic run.
pub(crate) struct Schedule {
    seed: u64,
    rng: Mutex<fastrand::Rng>,
    /// Virtual time zero, on the run's paused clock.
    zero: tokio::time::Instant,
    trace: Option<TraceSink>,
    /// Slices run so far (numbered in the trace).
    slices: AtomicU64,
}

impl Schedule {
    fn draw<R>(&self, f: impl FnOnce(&mut fastrand::Rng) -> R) -> R {
        f(&mut self.rng.locked())
    }

    /// Which of `n` ready things goes first: a microthread to run, an operation of
    /// a `select` to try.
    pub(crate) fn choose(&self, n: usize) -> usize {
        self.draw(|r| r.usize(..n))
    }

    /// The length of the next fuel slice, around `slice`: from half of it to one
    /// and a half times it.
    pub(crate) fn slice(&self, slice: u64) -> u64 {
        let half = (slice / 2).max(1);
        self.draw(|r| r.u64(half..=half.saturating_add(slice)))
    }

    /// A seed of its own for the random source of microthread `id`.
    pub(crate) fn seed_for(&self, id: u64) -> u64 {
        // splitmix64's finaliser over the pair: neighbouring ids get unrelated seeds.
        let mut z = self.seed ^ id.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The run burnt `fuel` units: virtual time moves on by as many nanoseconds.
    /// Only on the run's own thread (the paused clock is that thread's).
    pub(crate) fn burnt(&self, fuel: u64) {
        if fuel == 0 {
            return;
        }
        // `advance` moves the paused clock at once, then yields; the yield is not
        // wanted here (the caller is in the middle of a host call), so its future
        // is polled once and dropped. (The yield leaves a no-op waker on the
        // scheduler's list of deferred wakes until its next tick: hence the
        // caller's steps of a microsecond.)
        let advance = std::pin::pin!(tokio::time::advance(Duration::from_nanos(fuel)));
        let _yield = advance.poll(&mut Context::from_waker(Waker::noop()));
    }

    /// Virtual time since the run started.
    fn elapsed(&self) -> Duration {
        tokio::time::Instant::now().saturating_duration_since(self.zero)
    }

    /// The guest's clocks.
    pub(crate) fn clock(self: &Arc<Self>) -> VirtualClock {
        VirtualClock(self.clone())
    }

    /// Note a slice in the trace, if there is one: microthread `id` ran and `why`
    /// it stopped. A line that cannot be written is dropped with a warning.
    fn trace(&self, id: u64, why: &dyn Fn() -> String) {
        let Some(sink) = &self.trace else {
            return;
        };
        let n = self.slices.fetch_add(1, Ordering::Relaxed) + 1;
        let line = format!("{n} microthread {id}: {}\n", why());
        let mut sink = sink.locked();
        if let Err(e) = sink.write_all(line.as_bytes()) {
            tracing::warn!(target: "weft::deterministic", "the schedule trace cannot be written: {e}");
        }
    }
}

/// The thread of a deterministic run: a single-threaded tokio scheduler with a
/// paused clock. It ends when the `Lane` is dropped (with the run), dropping any
/// task still on it.
pub(crate) struct Lane {
    handle: tokio::runtime::Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Lane {
    /// Start the thread of a run with `seed`; the run's schedule traces to `trace`.
    pub(crate) fn start(seed: u64, trace: Option<TraceSink>) -> std::io::Result<(Lane, Arc<Schedule>)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()?;
        let zero = {
            let _in = rt.enter();
            tokio::time::Instant::now()
        };
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("weft-deterministic".into())
            .spawn(move || {
                rt.block_on(async {
                    // Err: the lane was dropped, which is the signal.
                    let _dropped = stopped.await;
                });
            })?;
        let schedule = Arc::new(Schedule {
            seed,
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            zero,
            trace,
            slices: AtomicU64::new(0),
        });
        Ok((Lane { handle, _stop: stop }, schedule))
    }

    /// Where the run's microthreads are spawned.
    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

/// A microthread's task in a deterministic run: after each poll the slice is
/// traced (`why` says what it waits for).
pub(crate) struct Traced<F, W> {
    inner: Pin<Box<F>>,
    schedule: Arc<Schedule>,
    id: u64,
    why: W,
}

impl<F, W> Traced<F, W> {
    pub(crate) fn new(inner: F, schedule: Arc<Schedule>, id: u64, why: W) -> Self {
        Traced {
            inner: Box::pin(inner),
            schedule,
            id,
            why,
        }
    }
}

impl<F: Future, W: Fn() -> String + Unpin> Future for Traced<F, W> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let poll = this.inner.as_mut().poll(cx);
        match &poll {
            Poll::Ready(_) => this.schedule.trace(this.id, &|| "finished".into()),
            Poll::Pending => this.schedule.trace(this.id, &this.why),
        }
        poll
    }
}

/// The guest's monotonic and wall clocks in a deterministic run: virtual time.
#[derive(Clone)]
pub(crate) struct VirtualClock(Arc<Schedule>);

impl HostMonotonicClock for VirtualClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        let now = MONOTONIC_START + self.0.elapsed();
        u64::try_from(now.as_nanos()).unwrap_or(u64::MAX)
    }
}

impl HostWallClock for VirtualClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        WALL_CLOCK_START + self.0.elapsed()
    }
}

/// The guest's random source in a deterministic run: a PRNG with a seed drawn from
/// the run's (never use this for secrets: it is meant to repeat).
pub(crate) struct SeededRandom(fastrand::Rng);

impl SeededRandom {
    pub(crate) fn new(seed: u64) -> Self {
        SeededRandom(fastrand::Rng::with_seed(seed))
    }
}

impl rand_core::TryRng for SeededRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.0.u32(..))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.0.u64(..))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill(dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_time_moves_with_fuel_and_jumps_to_timers() {
        let (lane, schedule) = Lane::start(7, None).unwrap();
        let clock = schedule.clock();
        let (tx, rx) = std::sync::mpsc::channel();
        lane.handle().spawn(async move {
            let t0 = HostMonotonicClock::now(&clock);
            schedule.burnt(1_500);
            let t1 = HostMonotonicClock::now(&clock);
            tokio::time::sleep(Duration::from_secs(3600)).await;
            let t2 = HostMonotonicClock::now(&clock);
            tx.send((t0, t1, t2, HostWallClock::now(&clock))).unwrap();
        });
        let (t0, t1, t2, wall) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("an hour passes at once");
        assert_eq!(t0, 1_000_000_000);
        assert_eq!(t1 - t0, 1_500);
        assert!(t2 - t1 >= 3_600_000_000_000, "{t1} {t2}");
        assert!(wall >= WALL_CLOCK_START + Duration::from_secs(3600));
    }

    #[test]
    fn the_same_seed_draws_the_same_choices() {
        let draw = |seed| {
            let (_lane, s) = Lane::start(seed, None).unwrap();
            (0..64)
                .map(|_| (s.choose(5), s.slice(1000), s.seed_for(7)))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }
}

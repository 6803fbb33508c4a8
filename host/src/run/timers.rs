//! A run's timers (`weft_guest::after`, `tick`): one task per run drives them all,
//! from a map ordered by deadline, on the run's tokio handle (the runtime's I/O
//! thread, or a deterministic run's lane, whose clock is virtual).
//!
//! A timer holds its channel weakly ([`TimerEnd`]): when the guest drops the
//! receiver, the channel goes at once (and its slot in the run's `max_channels`
//! with it), and the timer leaves the map in the same step, whatever its deadline.
//! A ticker's period is at least [`MIN_TICK_PERIOD`], and the ticks it misses (its
//! thread was busy) are skipped, not caught up: the timers cannot keep the thread
//! they share with every other run busy.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::channel::{Tick, TimerEnd};
use crate::sync::Unpoisoned;

/// The shortest period of a ticker: a shorter one (zero, say) is taken as this.
pub(crate) const MIN_TICK_PERIOD: Duration = Duration::from_millis(1);

/// The timers of one run.
#[derive(Default)]
pub(crate) struct Timers {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// A deadline earlier than the driver's next one, or the run's end.
    changed: Notify,
}

#[derive(Default)]
struct State {
    timers: HashMap<u64, Timer>,
    /// The timers by deadline: (deadline, key).
    due: BTreeSet<(Instant, u64)>,
    next_key: u64,
    driving: bool,
    stopped: bool,
}

struct Timer {
    at: Instant,
    every: Option<Duration>,
    end: TimerEnd,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.locked()
    }

    /// The timer's channel is gone: forget it.
    fn forget(&self, key: u64) {
        let gone = {
            let mut st = self.lock();
            let gone = st.timers.remove(&key);
            if let Some(t) = &gone {
                st.due.remove(&(t.at, key));
            }
            gone
        };
        // Outside the lock (its channel is gone: dropping it does nothing more).
        drop(gone);
    }
}

impl Timers {
    /// Tick on `end` after `after`, then every `every` (at least
    /// [`MIN_TICK_PERIOD`]), on `handle`, until its receivers are gone or the run
    /// ends ([`stop`](Timers::stop)).
    pub(crate) fn start(
        &self,
        handle: &tokio::runtime::Handle,
        end: TimerEnd,
        after: Duration,
        every: Option<Duration>,
    ) {
        let every = every.map(|e| e.max(MIN_TICK_PERIOD));
        // The clock of the run's handle (a deterministic run's is virtual).
        let now = {
            let _in_runtime = handle.enter();
            Instant::now()
        };
        let at = now.checked_add(after).unwrap_or_else(far_future);
        let key = {
            let mut st = self.shared.lock();
            st.next_key += 1;
            st.next_key
        };
        // Not under the lock: should the channel go meanwhile, this runs at once.
        let shared = Arc::downgrade(&self.shared);
        end.on_channel_drop(Box::new(move || {
            if let Some(shared) = shared.upgrade() {
                shared.forget(key);
            }
        }));
        let start_driver = {
            let mut st = self.shared.lock();
            if st.stopped {
                drop(st);
                // The run has ended: the timer's channel closes at once.
                drop(end);
                return;
            }
            let earliest = st.due.first().is_none_or(|&(first, _)| at < first);
            st.timers.insert(key, Timer { at, every, end });
            st.due.insert((at, key));
            if earliest {
                self.shared.changed.notify_one();
            }
            !std::mem::replace(&mut st.driving, true)
        };
        if start_driver {
            handle.spawn(drive(self.shared.clone()));
        }
    }

    /// The run has ended: stop every timer (their channels close) and the driver.
    pub(crate) fn stop(&self) {
        let timers = {
            let mut st = self.shared.lock();
            st.stopped = true;
            st.due.clear();
            std::mem::take(&mut st.timers)
        };
        self.shared.changed.notify_one();
        drop(timers);
    }

    /// Timers waiting now.
    #[cfg(test)]
    fn pending(&self) -> usize {
        self.shared.lock().timers.len()
    }
}

impl Drop for Timers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Far enough that it never comes.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365 * 30)
}

/// Fire the timers as they come due, until the run ends.
async fn drive(s: Arc<Shared>) {
    loop {
        let notified = s.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let now = Instant::now();
        let (due, next) = {
            let mut st = s.lock();
            if st.stopped {
                return;
            }
            let mut due = Vec::new();
            while let Some(&(at, key)) = st.due.first()
                && at <= now
            {
                st.due.pop_first();
                if let Some(t) = st.timers.remove(&key) {
                    due.push((key, t));
                }
            }
            (due, st.due.first().map(|&(at, _)| at))
        };
        if !due.is_empty() {
            // Outside the lock: a tick wakes a receiver; an ended timer closes its
            // channel.
            let mut again = Vec::new();
            for (key, mut t) in due {
                let tick = t.end.tick();
                if let (Some(every), false) = (t.every, tick == Tick::Gone) {
                    t.at = next_tick(t.at, every, now);
                    again.push((key, t));
                }
            }
            let again: Vec<(u64, Timer)> = again.into_iter().filter(|(_, t)| t.end.is_alive()).collect();
            let ended = {
                let mut st = s.lock();
                if st.stopped {
                    again
                } else {
                    for (key, t) in again {
                        st.due.insert((t.at, key));
                        st.timers.insert(key, t);
                    }
                    Vec::new()
                }
            };
            drop(ended);
            continue;
        }
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = &mut notified => {}
                }
            }
            None => notified.await,
        }
    }
}

/// A ticker's next deadline after the one at `at`, at `now`: the first of its
/// deadlines (`at + k * every`) after `now`. The ones missed are skipped.
fn next_tick(at: Instant, every: Duration, now: Instant) -> Instant {
    let next = at + every;
    if next > now {
        return next;
    }
    let behind = now.duration_since(at).as_nanos();
    let period = every.as_nanos().max(1);
    let periods = u32::try_from(behind / period + 1).unwrap_or(u32::MAX);
    at.checked_add(every.saturating_mul(periods))
        .unwrap_or_else(far_future)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{Budget, Channel};

    #[test]
    fn missed_ticks_are_skipped() {
        let at = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(next_tick(at, ms(10), at), at + ms(10));
        assert_eq!(next_tick(at, ms(10), at + ms(10)), at + ms(20));
        assert_eq!(next_tick(at, ms(10), at + ms(35)), at + ms(40));
    }

    #[test]
    fn a_timer_whose_receiver_is_dropped_is_gone_at_once() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let budget = Arc::new(Budget::new(1 << 20, 4));
        let timers = Timers::default();
        // Far more timers than the budget has channels, one at a time.
        for i in 0..1000 {
            let (end, rx) = Channel::open_timer(i, &budget).expect("room for a channel");
            timers.start(rt.handle(), end, Duration::from_secs(3600), None);
            assert_eq!(timers.pending(), 1);
            drop(rx);
            assert_eq!(timers.pending(), 0);
            assert_eq!(budget.open_channels(), 0);
        }
        // A ticker of period zero is taken as the minimum period.
        let (end, _rx) = Channel::open_timer(0, &budget).unwrap();
        timers.start(rt.handle(), end, Duration::ZERO, Some(Duration::ZERO));
        let every = timers.shared.lock().timers.values().map(|t| t.every).next();
        assert_eq!(every, Some(Some(MIN_TICK_PERIOD)));
        timers.stop();
        assert_eq!(timers.pending(), 0);
    }
}

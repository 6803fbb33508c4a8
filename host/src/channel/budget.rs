//! What the channels of one run may hold on the host, all together: bytes buffered
//! and channels open. Every channel of a run shares its run's budget, so no guest
//! grows host memory past it however many channels it opens.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use super::{Channel, Message};
use crate::limits::{MESSAGE_OVERHEAD, Quota};
use crate::sync::{Pruned, Unpoisoned};

/// The buffered bytes and open channels of one run, under their maximums.
pub(crate) struct Budget {
    buffered: AtomicU64,
    max_buffered: u64,
    channels: Quota,
    /// Every channel opened, and every channel of another budget where this one's
    /// run buffered endpoints, to empty them when the run ends: a message that holds
    /// a receiver of its own channel keeps that channel alive in a cycle. `None` for
    /// the application's channels, which no run's end empties (the application's
    /// values carry no endpoints: only runs put cycles in them, and their ends
    /// break them).
    opened: Option<Mutex<Registry>>,
}

#[derive(Default)]
struct Registry {
    /// By address: a channel is there once. (A `Weak` keeps its allocation, so no
    /// other channel takes that address while it is there.)
    channels: Pruned<HashMap<usize, Weak<Channel>>>,
}

impl Budget {
    pub(crate) fn new(max_buffered: u64, max_channels: u32) -> Self {
        Budget {
            buffered: AtomicU64::new(0),
            max_buffered,
            channels: Quota::new(max_channels),
            opened: Some(Mutex::default()),
        }
    }

    /// The budget of the application's channels: no maximum, and no registry
    /// (see [`Budget::opened`]).
    pub(crate) fn unbounded() -> Self {
        Budget {
            buffered: AtomicU64::new(0),
            max_buffered: u64::MAX,
            channels: Quota::new(u32::MAX),
            opened: None,
        }
    }

    /// Bytes buffered in the run's channels now.
    pub(crate) fn buffered(&self) -> u64 {
        self.buffered.load(Ordering::Acquire)
    }

    /// The most channels the run may have open.
    pub(crate) fn max_channels(&self) -> u32 {
        self.channels.max()
    }

    /// Channels open now.
    pub(crate) fn open_channels(&self) -> u32 {
        self.channels.used()
    }

    /// Count `message` as buffered, unless that would go over the maximum.
    pub(crate) fn reserve(&self, message: &Message) -> bool {
        self.hold(cost(message))
    }

    /// Count `message` as buffered even past the maximum: for what must not be
    /// lost and is bounded otherwise (a monitor's one message).
    pub(crate) fn reserve_anyway(&self, message: &Message) {
        self.buffered.fetch_add(cost(message), Ordering::AcqRel);
    }

    /// `message` left the buffer.
    pub(crate) fn release(&self, message: &Message) {
        self.let_go(cost(message));
    }

    /// Count `n` bytes the run holds elsewhere than in a channel (a result waiting
    /// for its join, a partial line of output), unless that would go over the
    /// maximum.
    pub(crate) fn hold(&self, n: u64) -> bool {
        let mut now = self.buffered.load(Ordering::Relaxed);
        loop {
            let Some(after) = now.checked_add(n).filter(|&a| a <= self.max_buffered) else {
                return false;
            };
            match self
                .buffered
                .compare_exchange_weak(now, after, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(seen) => now = seen,
            }
        }
    }

    /// `n` bytes counted by [`hold`](Budget::hold) are no longer held.
    pub(crate) fn let_go(&self, n: u64) {
        self.buffered.fetch_sub(n, Ordering::AcqRel);
    }

    /// The most bytes the run may hold.
    pub(crate) fn max_buffered(&self) -> u64 {
        self.max_buffered
    }

    /// Count one more open channel, unless the maximum is reached.
    pub(super) fn open(&self) -> bool {
        self.channels.take()
    }

    /// A channel was dropped.
    pub(super) fn close(&self) {
        self.channels.give_back();
    }

    /// Remember `chan` (opened under this budget, or holding endpoints it buffered),
    /// to empty it at the run's end.
    pub(super) fn register(&self, chan: &Arc<Channel>) {
        let Some(opened) = &self.opened else {
            return;
        };
        let mut r = opened.locked();
        r.channels
            .make_room(64, |c| c.strong_count() > 0)
            .entry(Arc::as_ptr(chan) as usize)
            .or_insert_with(|| Arc::downgrade(chan));
    }

    /// Channels remembered now (for tests).
    #[cfg(test)]
    pub(super) fn registered(&self) -> usize {
        self.opened.as_ref().map_or(0, |o| {
            let r = o.locked();
            r.channels
                .list()
                .values()
                .filter(|c| c.strong_count() > 0)
                .count()
        })
    }

    /// The channels opened under this budget that are still open, each as
    /// `Channel::info` says, in order of id.
    pub(crate) fn channels(&self) -> Vec<super::ChannelState> {
        let Some(opened) = &self.opened else {
            return Vec::new();
        };
        let channels: Vec<Arc<Channel>> = opened
            .locked()
            .channels
            .list()
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        let mut infos: Vec<super::ChannelState> = channels
            .iter()
            .filter(|c| std::ptr::eq(&*c.budget, self))
            .map(|c| c.state())
            .filter(|i| i.senders + i.receivers > 0)
            .collect();
        infos.sort_by_key(|i| i.id);
        infos
    }

    /// The run has ended: drop what every channel of its own still buffers and
    /// every waiter it holds, and the endpoints it buffered in other channels,
    /// which breaks the cycles of channels that carry their own endpoints.
    pub(crate) fn empty_all(&self) {
        let Some(opened) = &self.opened else {
            return;
        };
        let channels = opened.locked().channels.take();
        for chan in channels.values().filter_map(Weak::upgrade) {
            if std::ptr::eq(&*chan.budget, self) {
                chan.empty();
            } else {
                chan.drop_endpoints_charged_to(self);
            }
        }
    }
}

/// What a buffered message costs the budget.
fn cost(message: &Message) -> u64 {
    message.bytes.len() as u64 + MESSAGE_OVERHEAD
}

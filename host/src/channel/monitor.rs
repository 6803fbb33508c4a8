//! A monitor's channel: capacity 1, one message ever (the `Down` of the watched
//! microthread), sent by a [`MonitorEnd`] that holds the channel weakly, so that a
//! monitor whose receivers are gone holds nothing.

use std::sync::{Arc, Weak};

use super::{Budget, Channel, Message, ReceiverHandle, SendStep};

/// A monitor's sending side. It counts as the channel's one sender, which is no
/// application's: a microthread that waits on the receiver waits for a
/// microthread, and the deadlock detector counts the wait like any receive.
/// Delivering (or dropping) it closes the channel once its message is read.
pub(crate) struct MonitorEnd {
    chan: Weak<Channel>,
}

impl Channel {
    /// A new monitor's channel (capacity 1) and its receiver; `None` if the budget
    /// has no room for another open channel.
    pub(crate) fn open_monitor(id: u64, budget: &Arc<Budget>) -> Option<(MonitorEnd, ReceiverHandle)> {
        let chan = Channel::new(id, 1, budget)?;
        Some((
            MonitorEnd {
                chan: Arc::downgrade(&chan),
            },
            ReceiverHandle { chan },
        ))
    }
}

impl MonitorEnd {
    /// Whether the channel still has receivers: a monitor without is over.
    pub(crate) fn is_alive(&self) -> bool {
        self.chan.upgrade().is_some_and(|chan| chan.lock().receivers > 0)
    }

    /// Send the one message, then close the channel. The buffer always has room
    /// (nothing else sends); the message counts in the run's buffered bytes even
    /// past their maximum, so that a `Down` is never lost: it is small (a failure's
    /// message and backtrace are cut), and there is at most one per open channel.
    /// Nobody receiving any more (the receivers are gone), it is dropped.
    pub(crate) fn deliver(self, message: Message) {
        let Some(chan) = self.chan.upgrade() else {
            return;
        };
        let dropped = {
            let mut st = chan.lock();
            match st.try_send(&chan, message, &None) {
                SendStep::Sent => None,
                SendStep::Closed(m) | SendStep::Broken(m, _) => Some(m),
                SendStep::NotReady(m) => {
                    chan.budget.reserve_anyway(&m);
                    st.buffer(&chan, m, None);
                    None
                }
            }
        };
        // Outside the lock, as every dropped message is.
        drop(dropped);
    }
}

impl Drop for MonitorEnd {
    fn drop(&mut self) {
        if let Some(chan) = self.chan.upgrade() {
            chan.sender_gone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{Bytes, Op, Ready, Selected, select_blocking};

    fn recv(rx: &ReceiverHandle) -> Selected {
        select_blocking(vec![Op::Recv(rx.channel().clone())], None, false).0
    }

    #[test]
    fn a_down_is_delivered_even_past_the_buffered_bytes_and_closes_its_channel() {
        // Room for nothing: a message's overhead alone is over it.
        let budget = Arc::new(Budget::new(1, 4));
        let (end, rx) = Channel::open_monitor(1, &budget).expect("room for a channel");
        assert!(end.is_alive());
        end.deliver(Message {
            sent_at: None,
            bytes: Bytes::copy_from(b"down"),
            endpoints: Vec::new(),
        });
        assert!(
            budget.buffered() > budget.max_buffered(),
            "counted past the maximum"
        );
        match recv(&rx) {
            Selected::Op(0, Ready::Received(m)) => assert_eq!(&*m.bytes, b"down"),
            _ => panic!("the Down arrives"),
        }
        assert!(
            matches!(recv(&rx), Selected::Op(0, Ready::Closed)),
            "then the channel closes"
        );
        assert_eq!(budget.buffered(), 0, "given back once read");
        drop(rx);
        assert_eq!(budget.open_channels(), 0);
    }

    #[test]
    fn a_monitor_whose_receivers_are_gone_holds_nothing() {
        let budget = Arc::new(Budget::new(1 << 20, 4));
        let (end, rx) = Channel::open_monitor(1, &budget).expect("room for a channel");
        drop(rx);
        assert!(!end.is_alive());
        assert_eq!(budget.open_channels(), 0);
        end.deliver(Message::default());
    }
}

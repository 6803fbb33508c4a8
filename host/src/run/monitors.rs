//! Monitors: who watches a live microthread, and the one `Down` each gets when it
//! ends. A monitor is a [`MonitorEnd`] kept with the watched microthread's
//! `Member`; it makes nobody a parent: it prejoins nothing, cancels nothing and
//! keeps nothing alive (its channel is held weakly: a monitor whose receivers are
//! gone is pruned).
//!
//! The `Down` is the guest SDK's `Down { id, name, outcome }` encoded with postcard,
//! as `wit/runtime.wit` describes it field by field (`thread.monitor`).

use std::sync::Mutex;

use serde::Serialize;

use super::completion::Identity;
use crate::channel::{Bytes, Message, MonitorEnd};
use crate::error::Failure;
use crate::sync::{Pruned, Unpoisoned};

/// How a microthread ended, as its monitors are told: it finished (returned), or
/// its failure. What its joiner sees, once its end is settled.
pub(crate) type Ended = Result<(), Failure>;

/// The monitors on one live microthread.
#[derive(Default)]
pub(crate) struct Monitors {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Its `Down`s are sent: a monitor that comes now finds it gone.
    ended: bool,
    ends: Pruned<Vec<MonitorEnd>>,
}

impl Monitors {
    /// Add a monitor; given back if the microthread has ended already.
    pub(crate) fn watch(&self, end: MonitorEnd) -> Result<(), MonitorEnd> {
        let mut st = self.state.locked();
        if st.ended {
            return Err(end);
        }
        st.ends.make_room(8, MonitorEnd::is_alive).push(end);
        Ok(())
    }

    /// The microthread `me` has ended as `ended` says (asked only when someone
    /// watches it): each monitor gets its one `Down`, and a later one is told
    /// `NoSuch`.
    pub(crate) fn end(&self, me: &Identity, ended: impl FnOnce() -> Ended) {
        let ends = {
            let mut st = self.state.locked();
            st.ended = true;
            st.ends.take()
        };
        if ends.is_empty() {
            return;
        }
        let ended = ended();
        let outcome = match &ended {
            Ok(()) => Outcome::Finished,
            Err(f) => Outcome::Failed(WireFailure::of(f)),
        };
        let bytes = encode(&Down {
            id: me.id,
            name: me.name.as_deref(),
            outcome,
        });
        for end in ends {
            end.deliver(Message {
                sent_at: None,
                bytes: Bytes::copy_from(&bytes),
                endpoints: Vec::new(),
            });
        }
    }

    /// Monitors held now, pruned or not (for tests).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.state.locked().ends.list().len()
    }
}

/// Tell a monitor of microthread `id`, which is not live (it ended, or never
/// was), so at once.
pub(crate) fn no_such(end: MonitorEnd, id: u64) {
    let bytes = encode(&Down {
        id,
        name: None,
        outcome: Outcome::NoSuch,
    });
    end.deliver(Message {
        sent_at: None,
        bytes: Bytes::from(bytes),
        endpoints: Vec::new(),
    });
}

/// The guest SDK's `Down`, on the wire.
#[derive(Serialize)]
struct Down<'a> {
    id: u64,
    name: Option<&'a str>,
    outcome: Outcome<'a>,
}

/// The guest SDK's `DownOutcome`, on the wire: the variants in this order.
#[derive(Serialize)]
enum Outcome<'a> {
    Finished,
    Failed(WireFailure<'a>),
    NoSuch,
}

/// A failure on the wire: its kind as its index in WIT's `failure-kind`.
#[derive(Serialize)]
struct WireFailure<'a> {
    id: u64,
    name: Option<&'a str>,
    kind: u32,
    message: &'a str,
}

impl<'a> WireFailure<'a> {
    fn of(f: &'a Failure) -> Self {
        // Its index among the cases of `failure-kind` in `wit/runtime.wit`.
        let kind = u32::from(f.kind.index());
        WireFailure {
            id: f.id,
            name: f.name.as_deref(),
            kind,
            message: &f.message,
        }
    }
}

fn encode(down: &Down<'_>) -> Vec<u8> {
    // Strings, integers and options always serialize into a vector.
    postcard::to_allocvec(down).expect("a Down serializes")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::channel::{Budget, Channel};

    fn identity(id: u64, name: Option<&str>) -> Identity {
        Identity {
            id,
            name: name.map(Arc::from),
        }
    }

    #[test]
    fn the_encoding_is_the_one_the_wit_describes() {
        let me = identity(5, Some("ab"));
        let bytes = encode(&Down {
            id: me.id,
            name: me.name.as_deref(),
            outcome: Outcome::Finished,
        });
        assert_eq!(bytes, [5, 1, 2, b'a', b'b', 0]);
        let failure = me.failure(crate::error::FailureKind::Cancelled, "x".into());
        let bytes = encode(&Down {
            id: 300,
            name: None,
            outcome: Outcome::Failed(WireFailure::of(&failure)),
        });
        assert_eq!(bytes, [0xac, 0x02, 0, 1, 5, 1, 2, b'a', b'b', 4, 1, b'x']);
        let bytes = encode(&Down {
            id: 7,
            name: None,
            outcome: Outcome::NoSuch,
        });
        assert_eq!(bytes, [7, 0, 2]);
    }

    #[test]
    fn monitors_whose_receivers_are_gone_are_pruned() {
        let budget = Arc::new(Budget::new(1 << 20, 10_000));
        let monitors = Monitors::default();
        for id in 0..1000 {
            let (end, rx) = Channel::open_monitor(id, &budget).expect("room for a channel");
            drop(rx);
            assert!(monitors.watch(end).is_ok());
        }
        assert!(monitors.held() <= 16, "{} monitors held", monitors.held());
        assert_eq!(budget.open_channels(), 0);
        // One whose receiver lives is kept and told.
        let (end, rx) = Channel::open_monitor(1000, &budget).expect("room for a channel");
        assert!(monitors.watch(end).is_ok());
        monitors.end(&identity(3, None), || Ok(()));
        assert_eq!(budget.open_channels(), 1);
        drop(rx);
        assert_eq!(budget.open_channels(), 0);
        // After the end, a monitor is given back.
        let (end, _rx) = Channel::open_monitor(1001, &budget).expect("room for a channel");
        assert!(monitors.watch(end).is_err());
    }
}

//! Monitors, the WIT `thread` interface's `monitor`: any microthread can watch any
//! other of its program by id ([`JoinHandle::id`](crate::JoinHandle::id),
//! [`current_id`](crate::current_id); an id is a value and travels in messages).
//! [`monitor`] gives a [`Receiver`] on which exactly one [`Down`] arrives when the
//! watched microthread finishes, saying how ([`DownOutcome`]); at once, with
//! [`DownOutcome::NoSuch`], if it is not live (it finished already, or never was).
//! Dropping the receiver ends the monitor. A monitor makes nobody a parent: it
//! prejoins nothing, cancels nothing, and keeps nothing alive.
//!
//! ```no_run
//! use weft_guest::{DownOutcome, monitor, spawn};
//!
//! fn work(n: u64) -> u64 {
//!     n * 2
//! }
//!
//! let handle = spawn(work, 21);
//! let down = monitor(handle.id()).recv().unwrap();
//! assert!(matches!(down.outcome, DownOutcome::Finished | DownOutcome::NoSuch));
//! ```

use serde::{Deserialize, Serialize};

use crate::bindings::channel as wit_channel;
use crate::bindings::thread as wit;
use crate::channel::{ChannelError, Receiver};
use crate::entry::install_panic_hook;
use crate::failure::{Failure, FailureKind};

/// A watched microthread has finished (or was not live): the one message a
/// [`monitor`]'s receiver gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "WireDown", try_from = "WireDown")]
pub struct Down {
    /// Id of the watched microthread.
    pub id: u64,
    /// Its name, if it had one (`None` for [`DownOutcome::NoSuch`]).
    pub name: Option<String>,
    /// How it finished.
    pub outcome: DownOutcome,
}

/// How a watched microthread finished, as its joiner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DownOutcome {
    /// It returned (for `main`, also an [`exit`](crate::exit) with code 0).
    Finished,
    /// It failed, or was cancelled or stopped: its [`Failure`].
    Failed(Failure),
    /// It was not live when the monitor was made: it had finished already, or no
    /// microthread of this program ever had that id.
    NoSuch,
}

/// Watch microthread `id` of this program: exactly one [`Down`] arrives on the
/// receiver when it finishes (at once if it is not live). The receiver is one of
/// the program's open channels until it is dropped, which ends the monitor.
///
/// # Panics
/// If the program already has its maximum of open channels: see [`try_monitor`].
pub fn monitor(id: u64) -> Receiver<Down> {
    try_monitor(id).unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`monitor`], returning the host's refusal (the program already has its
/// maximum of open channels) instead of panicking.
pub fn try_monitor(id: u64) -> Result<Receiver<Down>, ChannelError> {
    install_panic_hook();
    match wit::monitor(id) {
        Ok(inner) => Ok(Receiver::new(inner)),
        Err(wit_channel::OpenError::TooManyChannels(max)) => Err(ChannelError::TooManyChannels { max }),
        Err(wit_channel::OpenError::CapacityTooLarge(max)) => {
            Err(ChannelError::CapacityTooLarge { capacity: 1, max })
        }
    }
}

/// [`Down`] on the wire, as `wit/runtime.wit` describes it (`thread.monitor`).
#[derive(Serialize, Deserialize)]
struct WireDown {
    id: u64,
    name: Option<String>,
    outcome: WireOutcome,
}

/// [`DownOutcome`] on the wire: the variants in this order.
#[derive(Serialize, Deserialize)]
enum WireOutcome {
    Finished,
    Failed(WireFailure),
    NoSuch,
}

/// A [`Failure`] on the wire: its kind as its index in WIT's `failure-kind`.
#[derive(Serialize, Deserialize)]
struct WireFailure {
    id: u64,
    name: Option<String>,
    kind: u32,
    message: String,
}

/// The kinds of failure, in the order of WIT's `failure-kind`.
const KINDS: [FailureKind; 10] = [
    FailureKind::Panic,
    FailureKind::Trap,
    FailureKind::OutOfMemory,
    FailureKind::FuelExhausted,
    FailureKind::Cancelled,
    FailureKind::ChildFailed,
    FailureKind::Exited,
    FailureKind::RestartIntensity,
    FailureKind::Disconnected,
    FailureKind::NodeDown,
];

impl From<Down> for WireDown {
    fn from(d: Down) -> Self {
        let outcome = match d.outcome {
            DownOutcome::Finished => WireOutcome::Finished,
            DownOutcome::NoSuch => WireOutcome::NoSuch,
            DownOutcome::Failed(f) => WireOutcome::Failed(WireFailure {
                id: f.id,
                name: f.name,
                kind: KINDS.iter().position(|k| *k == f.kind).unwrap_or(1) as u32,
                message: f.message,
            }),
        };
        WireDown {
            id: d.id,
            name: d.name,
            outcome,
        }
    }
}

impl TryFrom<WireDown> for Down {
    type Error = String;

    fn try_from(d: WireDown) -> Result<Self, String> {
        let outcome = match d.outcome {
            WireOutcome::Finished => DownOutcome::Finished,
            WireOutcome::NoSuch => DownOutcome::NoSuch,
            WireOutcome::Failed(f) => {
                let kind = *KINDS.get(f.kind as usize).ok_or_else(|| {
                    format!(
                        "a Down of microthread {} has failure kind {}, which this SDK does not know \
                         (it knows 0 to {}): update weft-guest to the host's version",
                        d.id,
                        f.kind,
                        KINDS.len() - 1
                    )
                })?;
                DownOutcome::Failed(Failure {
                    id: f.id,
                    name: f.name,
                    kind,
                    message: f.message,
                })
            }
        };
        Ok(Down {
            id: d.id,
            name: d.name,
            outcome,
        })
    }
}

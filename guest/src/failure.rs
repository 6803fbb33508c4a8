//! How a microthread that finished without returning looks to the others: a
//! [`Failure`] (who failed, a [`FailureKind`], what happened), the WIT `types`
//! interface's `failure` in Rust; and [`Cancelled`], the error of every blocking call
//! of a microthread that was cancelled. A *failure* is how a microthread finished;
//! an *error* (of `thread`, `channel`, `net`) is why one call gave no value.

use std::fmt;

use crate::bindings::types as wit;

/// How a microthread failed: a trap, a panic, out of memory, an exhausted budget, a
/// cancellation, the loss of the node it ran on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Id of the microthread that failed.
    pub id: u64,
    /// Its name, if it had one (by default its function's).
    pub name: Option<String>,
    /// What kind of failure it was.
    pub kind: FailureKind,
    /// What happened, with the guest backtrace where there is one.
    pub message: String,
}

/// What kind of failure a [`Failure`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// It panicked.
    Panic,
    /// It trapped.
    Trap,
    /// Its linear memory, or one of its tables, could not grow.
    OutOfMemory,
    /// It used up its fuel budget, or the program's.
    FuelExhausted,
    /// It was cancelled.
    Cancelled,
    /// A child of it failed and nobody joined the child.
    ChildFailed,
    /// It ended the program with [`exit`](crate::exit).
    Exited,
    /// It was a [`Supervisor`](crate::supervisor::Supervisor) that gave up: its
    /// children needed restarting more often than its intensity allows. The message
    /// names the child and lists the recent failures.
    RestartIntensity,
    /// A channel's remote end lost its link: the node at the other end went
    /// silent past the cluster's node timeout, or the link broke. The message names
    /// the node and the evidence.
    Disconnected,
    /// It ran on another node of the cluster
    /// ([`spawn_on`](crate::cluster::spawn_on)), and that node went down (silent
    /// past the node timeout, or its link broke): whether it finished is unknown.
    /// The message names the node and the evidence.
    NodeDown,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "microthread {} ({name}) failed: {}", self.id, self.message),
            None => write!(f, "microthread {} failed: {}", self.id, self.message),
        }
    }
}

impl std::error::Error for Failure {}

impl From<wit::Failure> for Failure {
    fn from(f: wit::Failure) -> Self {
        use wit::FailureKind as K;
        Failure {
            id: f.id,
            name: f.name,
            kind: match f.kind {
                K::Panic => FailureKind::Panic,
                K::Trap => FailureKind::Trap,
                K::OutOfMemory => FailureKind::OutOfMemory,
                K::FuelExhausted => FailureKind::FuelExhausted,
                K::Cancelled => FailureKind::Cancelled,
                K::ChildFailed => FailureKind::ChildFailed,
                K::Exited => FailureKind::Exited,
                K::RestartIntensity => FailureKind::RestartIntensity,
                K::Disconnected => FailureKind::Disconnected,
                K::NodeDown => FailureKind::NodeDown,
            },
            message: f.message,
        }
    }
}

/// The calling microthread was cancelled: every blocking call of it fails so, so
/// that its cleanup runs and it finishes soon (a grace period later it is stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("this microthread was cancelled")
    }
}

impl std::error::Error for Cancelled {}

//! The host side of `weft:runtime/types`: a failure as a guest sees it.

use super::bindings::types as wit;
use crate::error::{Failure, FailureKind};
use crate::microthread::Microthread;

/// A failure, as the guest that joins or receives it sees it.
pub(super) fn wit_failure(f: Failure) -> wit::Failure {
    use wit::FailureKind as K;
    let kind = match f.kind {
        FailureKind::Panic => K::Panic,
        FailureKind::Trap => K::Trap,
        FailureKind::OutOfMemory => K::OutOfMemory,
        FailureKind::FuelExhausted => K::FuelExhausted,
        FailureKind::Cancelled => K::Cancelled,
        FailureKind::ChildFailed => K::ChildFailed,
        FailureKind::Exited => K::Exited,
        FailureKind::RestartIntensity => K::RestartIntensity,
        FailureKind::Disconnected => K::Disconnected,
        FailureKind::NodeDown => K::NodeDown,
    };
    wit::Failure {
        id: f.id,
        name: f.name,
        kind,
        message: f.message,
    }
}

impl wit::Host for Microthread {}

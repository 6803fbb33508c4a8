//! Why a channel could not be opened ([`ChannelError`]), and why a send or a receive
//! did not complete: one error type per way of calling (blocking, `try_`,
//! `_timeout`), so that no type holds a variant its call cannot return.

use std::fmt;

use crate::failure::Failure;

/// Why the host refused to open a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelError {
    /// The capacity asked for is over the host's limit.
    CapacityTooLarge {
        /// What was asked for.
        capacity: u32,
        /// The host's limit.
        max: u32,
    },
    /// The program already has its maximum of open channels.
    TooManyChannels {
        /// The host's limit.
        max: u32,
    },
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::CapacityTooLarge { capacity, max } => {
                write!(f, "channel capacity {capacity} is over the host's limit of {max}")
            }
            ChannelError::TooManyChannels { max } => {
                write!(
                    f,
                    "cannot open a channel: the program already has its maximum of {max} open channels"
                )
            }
        }
    }
}

impl std::error::Error for ChannelError {}

/// A [`send`](crate::Sender::send) failed; the value comes back.
#[derive(PartialEq, Eq)]
pub enum SendError<T> {
    /// Every receiver is gone.
    Closed(T),
    /// The serialized value is over the host's message size limit.
    TooLarge(T),
    /// This microthread was cancelled.
    Cancelled(T),
    /// The channel's remote end lost its link to the node at the other end (a
    /// cluster's channel): why, a failure of kind
    /// [`Disconnected`](crate::FailureKind::Disconnected).
    Disconnected(T, Failure),
}

/// A [`try_send`](crate::Sender::try_send) failed; the value comes back.
#[derive(PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel is full, or (rendezvous) no receiver is waiting, or the program's
    /// budget of buffered bytes (the host's `max_buffered_bytes`, which counts what
    /// this program buffers in every channel, an application's channels included)
    /// has no room for the message. A blocking send waits for room in both.
    Full(T),
    /// Every receiver is gone.
    Closed(T),
    /// The serialized value is over the host's message size limit.
    TooLarge(T),
    /// The channel's remote end lost its link to the node at the other end (a
    /// cluster's channel): why, a failure of kind
    /// [`Disconnected`](crate::FailureKind::Disconnected).
    Disconnected(T, Failure),
}

/// A [`send_timeout`](crate::Sender::send_timeout) failed; the value comes back.
#[derive(PartialEq, Eq)]
pub enum SendTimeoutError<T> {
    /// The time ran out.
    Timeout(T),
    /// Every receiver is gone.
    Closed(T),
    /// The serialized value is over the host's message size limit.
    TooLarge(T),
    /// This microthread was cancelled.
    Cancelled(T),
    /// The channel's remote end lost its link to the node at the other end (a
    /// cluster's channel): why, a failure of kind
    /// [`Disconnected`](crate::FailureKind::Disconnected).
    Disconnected(T, Failure),
}

impl<T> SendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendError::Closed(v)
            | SendError::TooLarge(v)
            | SendError::Cancelled(v)
            | SendError::Disconnected(v, _) => v,
        }
    }
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v)
            | TrySendError::Closed(v)
            | TrySendError::TooLarge(v)
            | TrySendError::Disconnected(v, _) => v,
        }
    }
}

impl<T> SendTimeoutError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(v)
            | SendTimeoutError::Closed(v)
            | SendTimeoutError::TooLarge(v)
            | SendTimeoutError::Cancelled(v)
            | SendTimeoutError::Disconnected(v, _) => v,
        }
    }
}

const CLOSED_FOR_SENDER: &str = "sending on a channel whose receivers are all gone";
const TOO_LARGE: &str = "the message is over the host's message size limit";
const CANCELLED: &str = "this microthread was cancelled";

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Closed(_) => CLOSED_FOR_SENDER,
            SendError::TooLarge(_) => TOO_LARGE,
            SendError::Cancelled(_) => CANCELLED,
            SendError::Disconnected(_, why) => return disconnected(f, why),
        })
    }
}

fn disconnected(f: &mut fmt::Formatter<'_>, why: &Failure) -> fmt::Result {
    write!(f, "the channel's remote end is disconnected: {}", why.message)
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => {
                "the channel is full, or the program's budget of buffered bytes is spent"
            }
            TrySendError::Closed(_) => CLOSED_FOR_SENDER,
            TrySendError::TooLarge(_) => TOO_LARGE,
            TrySendError::Disconnected(_, why) => return disconnected(f, why),
        })
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendTimeoutError::Timeout(_) => "the send timed out",
            SendTimeoutError::Closed(_) => CLOSED_FOR_SENDER,
            SendTimeoutError::TooLarge(_) => TOO_LARGE,
            SendTimeoutError::Cancelled(_) => CANCELLED,
            SendTimeoutError::Disconnected(_, why) => return disconnected(f, why),
        })
    }
}

macro_rules! debug_as_display {
    ($($t:ident),*) => {$(
        impl<T> fmt::Debug for $t<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
        impl<T> std::error::Error for $t<T> {}
    )*};
}
debug_as_display!(SendError, TrySendError, SendTimeoutError);

/// A [`recv`](crate::Receiver::recv) returned no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecvError {
    /// Every sender is gone and everything sent was received.
    Closed,
    /// A microthread that was sending on the channel failed: its failure.
    Failed(Failure),
    /// This microthread was cancelled.
    Cancelled,
}

/// A [`try_recv`](crate::Receiver::try_recv) returned no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing to receive now.
    Empty,
    /// Every sender is gone and everything sent was received.
    Closed,
    /// A microthread that was sending on the channel failed: its failure.
    Failed(Failure),
}

/// A [`recv_timeout`](crate::Receiver::recv_timeout) returned no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// The time ran out.
    Timeout,
    /// Every sender is gone and everything sent was received.
    Closed,
    /// A microthread that was sending on the channel failed: its failure.
    Failed(Failure),
    /// This microthread was cancelled.
    Cancelled,
}

const CLOSED_FOR_RECEIVER: &str = "the channel is closed: every sender is gone";

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Closed => f.write_str(CLOSED_FOR_RECEIVER),
            RecvError::Failed(failure) => write!(f, "the producer failed: {failure}"),
            RecvError::Cancelled => f.write_str(CANCELLED),
        }
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("the channel is empty"),
            TryRecvError::Closed => f.write_str(CLOSED_FOR_RECEIVER),
            TryRecvError::Failed(failure) => write!(f, "the producer failed: {failure}"),
        }
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("the receive timed out"),
            RecvTimeoutError::Closed => f.write_str(CLOSED_FOR_RECEIVER),
            RecvTimeoutError::Failed(failure) => write!(f, "the producer failed: {failure}"),
            RecvTimeoutError::Cancelled => f.write_str(CANCELLED),
        }
    }
}

impl std::error::Error for RecvError {}
impl std::error::Error for TryRecvError {}
impl std::error::Error for RecvTimeoutError {}

/// A [`send_then_recv`](crate::Sender::send_then_recv) (or [`call`](crate::call))
/// returned no value: the send failed (the value comes back, nothing was
/// received), or it succeeded and the receive failed.
#[derive(PartialEq, Eq)]
pub enum SendRecvError<T> {
    /// The send failed, as [`send`](crate::Sender::send) fails.
    Send(SendError<T>),
    /// The value was sent; the receive failed, as [`recv`](crate::Receiver::recv)
    /// fails.
    Recv(RecvError),
}

/// A [`send_then_recv_timeout`](crate::Sender::send_then_recv_timeout) returned no
/// value: the send failed or timed out (the value comes back, nothing was
/// received), or it succeeded and the receive failed or timed out.
#[derive(PartialEq, Eq)]
pub enum SendRecvTimeoutError<T> {
    /// The send failed, as [`send_timeout`](crate::Sender::send_timeout) fails.
    Send(SendTimeoutError<T>),
    /// The value was sent; the receive failed, as
    /// [`recv_timeout`](crate::Receiver::recv_timeout) fails.
    Recv(RecvTimeoutError),
}

impl<T> fmt::Display for SendRecvError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendRecvError::Send(e) => write!(f, "nothing was received: {e}"),
            SendRecvError::Recv(e) => write!(f, "sent, but nothing was received: {e}"),
        }
    }
}

impl<T> fmt::Display for SendRecvTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendRecvTimeoutError::Send(e) => write!(f, "nothing was received: {e}"),
            SendRecvTimeoutError::Recv(e) => write!(f, "sent, but nothing was received: {e}"),
        }
    }
}

debug_as_display!(SendRecvError, SendRecvTimeoutError);

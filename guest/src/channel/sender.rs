//! The sending end of a channel, [`Sender`]: send, try, or wait at most so long.

use std::marker::PhantomData;
use std::time::Duration;

use serde::Serialize;

use super::error::{SendError, SendTimeoutError, TrySendError};
use crate::bindings::channel as wit;
use crate::message::encode;
use crate::time::nanos;

/// The sending end of a channel of `T`.
pub struct Sender<T> {
    pub(crate) inner: wit::Sender,
    _t: PhantomData<fn(T)>,
}

impl<T> Sender<T> {
    /// The typed end of the host's `sender`.
    pub(crate) fn new(inner: wit::Sender) -> Self {
        Sender {
            inner,
            _t: PhantomData,
        }
    }
}

impl<T: Serialize> Sender<T> {
    /// Serialize `value` and hand it to `op`; on failure the value comes back. The
    /// host gives the message back too, but `value` still holds the original
    /// endpoints, so the returned copies are simply dropped.
    fn send_with(
        &self,
        value: T,
        op: impl FnOnce(wit::Message) -> Result<(), wit::SendError>,
    ) -> Result<(), (wit::SendError, T)> {
        let message = encode(&value).unwrap_or_else(|e| panic!("weft: cannot serialize the message: {e}"));
        op(message).map_err(|e| (e, value))
    }

    /// Send `value`, waiting (only this microthread) while the channel is full; on a
    /// rendezvous channel, until a receiver has taken it.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.send_with(value, |m| self.inner.send(m))
            .map_err(|(e, v)| match e {
                wit::SendError::Closed(_) => SendError::Closed(v),
                wit::SendError::TooLarge(_) => SendError::TooLarge(v),
                wit::SendError::Cancelled(_) => SendError::Cancelled(v),
                wit::SendError::Disconnected((_, why)) => SendError::Disconnected(v, why.into()),
                wit::SendError::Full(_) | wit::SendError::Timeout(_) => {
                    unreachable!("a blocking send is neither full nor timed out")
                }
            })
    }

    /// Send `value` only if that needs no waiting.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.send_with(value, |m| self.inner.try_send(m))
            .map_err(|(e, v)| match e {
                wit::SendError::Full(_) => TrySendError::Full(v),
                wit::SendError::Closed(_) => TrySendError::Closed(v),
                wit::SendError::TooLarge(_) => TrySendError::TooLarge(v),
                wit::SendError::Disconnected((_, why)) => TrySendError::Disconnected(v, why.into()),
                wit::SendError::Timeout(_) | wit::SendError::Cancelled(_) => {
                    unreachable!("a send that does not wait neither times out nor is cancelled")
                }
            })
    }

    /// Send `value`, waiting at most `timeout`.
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_with(value, |m| self.inner.send_timeout(m, nanos(timeout)))
            .map_err(|(e, v)| match e {
                wit::SendError::Timeout(_) | wit::SendError::Full(_) => SendTimeoutError::Timeout(v),
                wit::SendError::Closed(_) => SendTimeoutError::Closed(v),
                wit::SendError::TooLarge(_) => SendTimeoutError::TooLarge(v),
                wit::SendError::Cancelled(_) => SendTimeoutError::Cancelled(v),
                wit::SendError::Disconnected((_, why)) => SendTimeoutError::Disconnected(v, why.into()),
            })
    }
}

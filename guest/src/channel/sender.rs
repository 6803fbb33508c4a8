//! The sending end of a channel, [`Sender`]: send, try, or wait at most so long.

use std::marker::PhantomData;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::{SendError, SendRecvError, SendRecvTimeoutError, SendTimeoutError, TrySendError};
use super::receiver::{Receiver, blocking_recv_error, decode_in, timed_recv_error};
use crate::bindings::channel as wit;
use crate::message::{Codec, encode_as};
use crate::time::nanos;

/// The sending end of a channel of `T`.
pub struct Sender<T> {
    pub(crate) inner: wit::Sender,
    pub(crate) codec: Codec,
    _t: PhantomData<fn(T)>,
}

impl<T> Sender<T> {
    /// The typed end of the host's `sender`, writing postcard.
    pub(crate) fn new(inner: wit::Sender) -> Self {
        Sender {
            inner,
            codec: Codec::Postcard,
            _t: PhantomData,
        }
    }

    /// This end, writing its values in `codec`: [`Codec::Cbor`] for a channel read
    /// by a guest in Python or JavaScript, or by the application in CBOR. A CBOR
    /// value carries no channel ends or sockets (sending one panics, as a value
    /// that cannot be serialized does).
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// How this end writes its values.
    pub fn codec(&self) -> Codec {
        self.codec
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
        let message = encode_as(&value, self.codec)
            .unwrap_or_else(|e| panic!("weft: cannot serialize the message: {e}"));
        op(message).map_err(|e| (e, value))
    }

    /// Send `value`, waiting (only this microthread) while the channel is full; on a
    /// rendezvous channel, until a receiver has taken it.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.send_with(value, |m| self.inner.send(m))
            .map_err(|(e, v)| blocking_send_error(e, v))
    }

    /// Send `value` as [`send`](Sender::send) does, then receive from `rx` as
    /// [`recv`](Receiver::recv) does, in one host call: both halves of a round trip
    /// (a request and its reply, a ping and its pong, a ring's hop) for the price of
    /// one. The same as the two calls in sequence: a failed send gives the value
    /// back ([`SendRecvError::Send`]) and receives nothing.
    ///
    /// ```no_run
    /// # let (tx, _) = weft_guest::channel::<u64>(0);
    /// # let (_, rx) = weft_guest::channel::<u64>(0);
    /// let pong = tx.send_then_recv(1, &rx)?;
    /// # Ok::<(), weft_guest::SendRecvError<u64>>(())
    /// ```
    pub fn send_then_recv<R: DeserializeOwned>(
        &self,
        value: T,
        rx: &Receiver<R>,
    ) -> Result<R, SendRecvError<T>> {
        match self.fused(value, &rx.inner, None) {
            Err((e, v)) => Err(SendRecvError::Send(blocking_send_error(e, v))),
            Ok(Ok(reply)) => Ok(decode_in(rx.codec, reply)),
            Ok(Err(e)) => Err(SendRecvError::Recv(blocking_recv_error(e))),
        }
    }

    /// Like [`send_then_recv`](Sender::send_then_recv), the whole call bounded by
    /// `timeout`: the send waits at most that long, and the receive what is left.
    pub fn send_then_recv_timeout<R: DeserializeOwned>(
        &self,
        value: T,
        rx: &Receiver<R>,
        timeout: Duration,
    ) -> Result<R, SendRecvTimeoutError<T>> {
        match self.fused(value, &rx.inner, Some(nanos(timeout))) {
            Err((e, v)) => Err(SendRecvTimeoutError::Send(timed_send_error(e, v))),
            Ok(Ok(reply)) => Ok(decode_in(rx.codec, reply)),
            Ok(Err(e)) => Err(SendRecvTimeoutError::Recv(timed_recv_error(e))),
        }
    }

    /// The host's `send-then-recv`: the send's error with the value back, or the
    /// receive's outcome.
    fn fused(
        &self,
        value: T,
        rx: &wit::Receiver,
        timeout: Option<u64>,
    ) -> Result<Result<wit::Message, wit::RecvError>, (wit::SendError, T)> {
        let mut received = None;
        self.send_with(value, |m| match self.inner.send_then_recv(m, rx, timeout) {
            Ok(reply) => {
                received = Some(Ok(reply));
                Ok(())
            }
            Err(wit::SendRecvError::Send(e)) => Err(e),
            Err(wit::SendRecvError::Recv(e)) => {
                received = Some(Err(e));
                Ok(())
            }
        })?;
        Ok(received.expect("a send that succeeded was followed by a receive"))
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
            .map_err(|(e, v)| timed_send_error(e, v))
    }
}

/// What a blocking send's error is, with its value back.
fn blocking_send_error<T>(e: wit::SendError, v: T) -> SendError<T> {
    match e {
        wit::SendError::Closed(_) => SendError::Closed(v),
        wit::SendError::TooLarge(_) => SendError::TooLarge(v),
        wit::SendError::Cancelled(_) => SendError::Cancelled(v),
        wit::SendError::Disconnected((_, why)) => SendError::Disconnected(v, why.into()),
        wit::SendError::Full(_) | wit::SendError::Timeout(_) => {
            unreachable!("a blocking send is neither full nor timed out")
        }
    }
}

/// What a send with a timeout's error is, with its value back.
fn timed_send_error<T>(e: wit::SendError, v: T) -> SendTimeoutError<T> {
    match e {
        wit::SendError::Timeout(_) | wit::SendError::Full(_) => SendTimeoutError::Timeout(v),
        wit::SendError::Closed(_) => SendTimeoutError::Closed(v),
        wit::SendError::TooLarge(_) => SendTimeoutError::TooLarge(v),
        wit::SendError::Cancelled(_) => SendTimeoutError::Cancelled(v),
        wit::SendError::Disconnected((_, why)) => SendTimeoutError::Disconnected(v, why.into()),
    }
}

/// Send `request` on `tx` and wait for the reply on `reply`, in one host call:
/// [`Sender::send_then_recv`], as a request/reply reads.
///
/// ```no_run
/// # let (requests, _) = weft_guest::channel::<String>(8);
/// # let (_, replies) = weft_guest::channel::<usize>(1);
/// let len = weft_guest::call(&requests, "hello".to_string(), &replies)?;
/// # Ok::<(), weft_guest::SendRecvError<String>>(())
/// ```
pub fn call<T: Serialize, R: DeserializeOwned>(
    tx: &Sender<T>,
    request: T,
    reply: &Receiver<R>,
) -> Result<R, SendRecvError<T>> {
    tx.send_then_recv(request, reply)
}

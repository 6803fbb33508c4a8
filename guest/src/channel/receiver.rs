//! The receiving end of a channel, [`Receiver`]: receive, try, or wait at most so
//! long, or iterate until the channel is closed.

use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::error::{RecvError, RecvTimeoutError, TryRecvError};
use crate::bindings::channel as wit;
use crate::message::{Codec, decode_as};
use crate::time::nanos;

/// The receiving end of a channel of `T`. An iterator over the values received,
/// which ends when the channel is closed.
pub struct Receiver<T> {
    pub(crate) inner: wit::Receiver,
    pub(crate) codec: Codec,
    _t: PhantomData<fn() -> T>,
}

impl<T> Receiver<T> {
    /// The typed end of the host's `receiver`, reading postcard.
    pub(crate) fn new(inner: wit::Receiver) -> Self {
        Receiver {
            inner,
            codec: Codec::Postcard,
            _t: PhantomData,
        }
    }

    /// This end, reading its values in `codec`: [`Codec::Cbor`] for a channel
    /// written by a guest in Python or JavaScript, or by the application in CBOR.
    ///
    /// ```no_run
    /// # #[derive(serde::Deserialize)] struct Job { name: String }
    /// let jobs = weft_guest::host_receiver::<Job>("jobs")
    ///     .expect("the application gives jobs")
    ///     .with_codec(weft_guest::Codec::Cbor);
    /// ```
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// How this end reads its values.
    pub fn codec(&self) -> Codec {
        self.codec
    }
}

/// What a blocking receive's error is.
pub(super) fn blocking_recv_error(e: wit::RecvError) -> RecvError {
    match e {
        wit::RecvError::Closed => RecvError::Closed,
        wit::RecvError::Failed(f) => RecvError::Failed(f.into()),
        wit::RecvError::Cancelled => RecvError::Cancelled,
        wit::RecvError::Empty | wit::RecvError::Timeout => {
            unreachable!("a blocking receive is neither empty nor timed out")
        }
    }
}

/// What a receive with a timeout's error is.
pub(super) fn timed_recv_error(e: wit::RecvError) -> RecvTimeoutError {
    match e {
        wit::RecvError::Timeout | wit::RecvError::Empty => RecvTimeoutError::Timeout,
        wit::RecvError::Closed => RecvTimeoutError::Closed,
        wit::RecvError::Failed(f) => RecvTimeoutError::Failed(f.into()),
        wit::RecvError::Cancelled => RecvTimeoutError::Cancelled,
    }
}

/// A received message as a `T`, in `codec`.
pub(crate) fn decode_in<T: DeserializeOwned>(codec: Codec, message: wit::Message) -> T {
    decode_as(message, codec).unwrap_or_else(|e| panic!("weft: cannot deserialize a received message: {e}"))
}

impl<T: DeserializeOwned> Receiver<T> {
    /// Receive a value, waiting (only this microthread) until one arrives. `Closed`
    /// once every sender is gone and the buffer is drained; `Failed` if a microthread
    /// that held a sender failed; `Cancelled` if this microthread is cancelled.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.inner
            .recv()
            .map(|m| decode_in(self.codec, m))
            .map_err(blocking_recv_error)
    }

    /// Receive only if that needs no waiting.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.inner
            .try_recv()
            .map(|m| decode_in(self.codec, m))
            .map_err(|e| match e {
                wit::RecvError::Empty => TryRecvError::Empty,
                wit::RecvError::Closed => TryRecvError::Closed,
                wit::RecvError::Failed(f) => TryRecvError::Failed(f.into()),
                wit::RecvError::Timeout | wit::RecvError::Cancelled => {
                    unreachable!("a receive that does not wait neither times out nor is cancelled")
                }
            })
    }

    /// Receive, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.inner
            .recv_timeout(nanos(timeout))
            .map(|m| decode_in(self.codec, m))
            .map_err(timed_recv_error)
    }
}

/// Iterating receives until the channel is closed, or this microthread is
/// cancelled.
///
/// # Panics
/// If a producer failed: a failure is never a quiet end of the stream. Use
/// [`Receiver::recv`] to handle it instead.
impl<T: DeserializeOwned> Iterator for Receiver<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match self.recv() {
            Ok(v) => Some(v),
            Err(RecvError::Closed | RecvError::Cancelled) => None,
            Err(RecvError::Failed(f)) => panic!("the producer failed: {f}"),
        }
    }
}

//! Channels: typed, multi-producer multi-consumer, rendezvous (capacity 0) or
//! buffered. The channel lives on the host; a [`Sender`] or [`Receiver`] is a handle
//! to it that can be cloned, and moved to another microthread inside a message or a
//! spawn argument.
//!
//! ```no_run
//! use weft_guest::{channel, spawn, Sender};
//!
//! fn produce(tx: Sender<u32>) {
//!     for i in 0..10 {
//!         tx.send(i).unwrap();
//!     }
//! }
//!
//! let (tx, rx) = channel::<u32>(0);
//! let _producer = spawn(produce, tx);
//! let total: u32 = rx.into_iter().sum(); // ends when the producer's sender is gone
//! assert_eq!(total, 45);
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::DeserializeOwned};

use crate::bindings::channel as wit;
use crate::entry::install_panic_hook;
use crate::failure::Failure;
use crate::message::{decode, encode, push_endpoint, take_endpoint};
use crate::thread::{Builder, MapError, SpawnError};
use crate::time::nanos;

/// The sending end of a channel of `T`.
pub struct Sender<T> {
    pub(crate) inner: wit::Sender,
    _t: PhantomData<fn(T)>,
}

/// The receiving end of a channel of `T`. An iterator over the messages, which ends
/// when every sender is gone.
pub struct Receiver<T> {
    pub(crate) inner: wit::Receiver,
    _t: PhantomData<fn() -> T>,
}

/// Open a channel: `capacity` 0 is a rendezvous (a send returns once a receiver has
/// taken the value), `n` buffers up to `n` values.
///
/// # Panics
/// If the host refuses it: see [`try_channel`].
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    try_channel(capacity).unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`channel`], returning the host's refusal instead of panicking: the
/// capacity is over the host's limit, or the program already has its maximum of
/// open channels.
pub fn try_channel<T>(capacity: usize) -> Result<(Sender<T>, Receiver<T>), ChannelError> {
    install_panic_hook();
    let capacity = u32::try_from(capacity).unwrap_or(u32::MAX);
    match wit::open(capacity) {
        Ok((tx, rx)) => Ok((
            Sender {
                inner: tx,
                _t: PhantomData,
            },
            Receiver {
                inner: rx,
                _t: PhantomData,
            },
        )),
        Err(wit::OpenError::CapacityTooLarge(max)) => Err(ChannelError::CapacityTooLarge { capacity, max }),
        Err(wit::OpenError::TooManyChannels(max)) => Err(ChannelError::TooManyChannels { max }),
    }
}

/// A timer: a receiver that gets `()` once, `delay` from now, and then sees its
/// channel closed. Use it in a [`Select`](crate::Select) for "this, or that, or
/// give up after 5 s". The timer is a channel, one of the program's open channels
/// until its receiver is dropped: then it stops at once, and its channel is gone.
///
/// # Panics
/// If the program already has its maximum of open channels: see [`try_after`].
pub fn after(delay: Duration) -> Receiver<()> {
    try_after(delay).unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`after`], returning the host's refusal (the program already has its
/// maximum of open channels) instead of panicking.
pub fn try_after(delay: Duration) -> Result<Receiver<()>, ChannelError> {
    timer(delay, None)
}

/// A ticker: a receiver that gets `()` every `period`, from `period` from now. A
/// tick that finds the previous one still unread is dropped, so a slow reader is
/// not flooded; ticks the host could not send on time are skipped, not caught up.
/// The period is at least 1 ms: a shorter one (zero, say) is taken as 1 ms. The
/// ticker is one of the program's open channels until its receiver is dropped:
/// then it stops at once.
///
/// # Panics
/// If the program already has its maximum of open channels: see [`try_tick`].
pub fn tick(period: Duration) -> Receiver<()> {
    try_tick(period).unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`tick`], returning the host's refusal (the program already has its
/// maximum of open channels) instead of panicking.
pub fn try_tick(period: Duration) -> Result<Receiver<()>, ChannelError> {
    timer(period, Some(period))
}

fn timer(delay: Duration, every: Option<Duration>) -> Result<Receiver<()>, ChannelError> {
    install_panic_hook();
    match wit::timer(nanos(delay), every.map(nanos)) {
        Ok(inner) => Ok(Receiver {
            inner,
            _t: PhantomData,
        }),
        Err(wit::OpenError::TooManyChannels(max)) => Err(ChannelError::TooManyChannels { max }),
        Err(wit::OpenError::CapacityTooLarge(max)) => {
            Err(ChannelError::CapacityTooLarge { capacity: 1, max })
        }
    }
}

/// The receiving end of a channel that the embedding application handed to this
/// run under `name` (`RunOptions::receiver` on the host), if it did. The first call
/// takes it; later calls get `None`. It can be cloned and moved to other
/// microthreads like any receiver. `T` must be what the application sends: a
/// message that is not a `T` fails the microthread that receives it.
pub fn host_receiver<T>(name: &str) -> Option<Receiver<T>> {
    install_panic_hook();
    wit::host_receiver(name).map(|inner| Receiver {
        inner,
        _t: PhantomData,
    })
}

/// The sending end of a channel that the embedding application handed to this run
/// under `name` (`RunOptions::sender` on the host), if it did. See
/// [`host_receiver`].
pub fn host_sender<T>(name: &str) -> Option<Sender<T>> {
    install_panic_hook();
    wit::host_sender(name).map(|inner| Sender {
        inner,
        _t: PhantomData,
    })
}

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

/// A [`send`](Sender::send) failed; the value comes back.
#[derive(PartialEq, Eq)]
pub enum SendError<T> {
    /// Every receiver is gone.
    Closed(T),
    /// The serialized value is over the host's message size limit.
    TooLarge(T),
    /// This microthread was cancelled.
    Cancelled(T),
}

/// A [`try_send`](Sender::try_send) failed; the value comes back.
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
}

/// A [`send_timeout`](Sender::send_timeout) failed; the value comes back.
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
}

impl<T> SendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendError::Closed(v) | SendError::TooLarge(v) | SendError::Cancelled(v) => v,
        }
    }
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) | TrySendError::TooLarge(v) => v,
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
            | SendTimeoutError::Cancelled(v) => v,
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
        })
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => {
                "the channel is full, or the program's budget of buffered bytes is spent"
            }
            TrySendError::Closed(_) => CLOSED_FOR_SENDER,
            TrySendError::TooLarge(_) => TOO_LARGE,
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

/// A [`recv`](Receiver::recv) returned no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecvError {
    /// Every sender is gone and everything sent was received.
    Closed,
    /// A microthread that was sending on the channel failed: its failure.
    Failed(Failure),
    /// This microthread was cancelled.
    Cancelled,
}

/// A [`try_recv`](Receiver::try_recv) returned no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing to receive now.
    Empty,
    /// Every sender is gone and everything sent was received.
    Closed,
    /// A microthread that was sending on the channel failed: its failure.
    Failed(Failure),
}

/// A [`recv_timeout`](Receiver::recv_timeout) returned no value.
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
            })
    }
}

impl<T> Sender<T> {
    /// The channel's id, unique among the channels this program opened. (A channel
    /// of another program that came through an application's channel may have the
    /// same id as one of this program's.)
    pub fn channel_id(&self) -> u64 {
        self.inner.id()
    }
}

pub(crate) fn decode_value<T: DeserializeOwned>(message: wit::Message) -> T {
    decode(message).unwrap_or_else(|e| panic!("weft: cannot deserialize a received message: {e}"))
}

impl<T: DeserializeOwned> Receiver<T> {
    /// Receive a value, waiting (only this microthread) until one arrives. `Closed`
    /// once every sender is gone and the buffer is drained; `Failed` if a microthread
    /// that held a sender failed; `Cancelled` if this microthread is cancelled.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.inner.recv().map(decode_value).map_err(|e| match e {
            wit::RecvError::Closed => RecvError::Closed,
            wit::RecvError::Failed(f) => RecvError::Failed(f.into()),
            wit::RecvError::Cancelled => RecvError::Cancelled,
            wit::RecvError::Empty | wit::RecvError::Timeout => {
                unreachable!("a blocking receive is neither empty nor timed out")
            }
        })
    }

    /// Receive only if that needs no waiting.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.inner.try_recv().map(decode_value).map_err(|e| match e {
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
            .map(decode_value)
            .map_err(|e| match e {
                wit::RecvError::Timeout | wit::RecvError::Empty => RecvTimeoutError::Timeout,
                wit::RecvError::Closed => RecvTimeoutError::Closed,
                wit::RecvError::Failed(f) => RecvTimeoutError::Failed(f.into()),
                wit::RecvError::Cancelled => RecvTimeoutError::Cancelled,
            })
    }
}

impl<T> Receiver<T> {
    /// The channel's id: see [`Sender::channel_id`].
    pub fn channel_id(&self) -> u64 {
        self.inner.id()
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

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            inner: self.inner.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Receiver {
            inner: self.inner.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("channel", &self.inner.id())
            .finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("channel", &self.inner.id())
            .finish()
    }
}

impl<T> Serialize for Sender<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        push_endpoint(wit::Endpoint::Sender(self.inner.clone())).serialize(s)
    }
}

impl<T> Serialize for Receiver<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        push_endpoint(wit::Endpoint::Receiver(self.inner.clone())).serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for Sender<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match take_endpoint(u32::deserialize(d)?) {
            Some(wit::Endpoint::Sender(inner)) => Ok(Sender {
                inner,
                _t: PhantomData,
            }),
            _ => Err(serde::de::Error::custom(
                "the message does not carry the expected sender",
            )),
        }
    }
}

impl<'de, T> Deserialize<'de> for Receiver<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match take_endpoint(u32::deserialize(d)?) {
            Some(wit::Endpoint::Receiver(inner)) => Ok(Receiver {
                inner,
                _t: PhantomData,
            }),
            _ => Err(serde::de::Error::custom(
                "the message does not carry the expected receiver",
            )),
        }
    }
}

/// Run `producer` in a new microthread with the sending end of a rendezvous channel,
/// and return the receiving end: a lazy stream of what it sends. The stream ends when
/// the producer returns; if the producer fails, the reader's `recv` returns
/// [`RecvError::Failed`] with its failure (and iterating panics with it).
///
/// The producer is a child of the caller: the caller does not finish before it.
/// Errors if the host refuses to start it (the program already has its maximum of
/// live microthreads).
pub fn generate<T>(producer: fn(Sender<T>)) -> Result<Receiver<T>, SpawnError>
where
    T: Serialize + DeserializeOwned,
{
    let (tx, rx) = channel(0);
    let _child = Builder::new().spawn(producer, tx)?;
    Ok(rx)
}

/// Compute `f(item)` for every item, each in its own microthread, with at most
/// `concurrency` running at once; the results come back in the order of the items.
///
/// If a call fails (or the caller is cancelled), or the host refuses to start one
/// (the program already has its maximum of live microthreads), no further calls
/// are started; the calls already running are drained (joined, their results
/// discarded), and the first error is returned.
pub fn parallel_map<T, R>(
    f: fn(T) -> R,
    items: impl IntoIterator<Item = T>,
    concurrency: usize,
) -> Result<Vec<R>, MapError>
where
    T: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    let mut items = items.into_iter();
    let mut running = VecDeque::new();
    let mut results = Vec::new();
    let mut failure = None;
    loop {
        while failure.is_none() && running.len() < concurrency.max(1) {
            match items.next() {
                Some(item) => match Builder::new().spawn(f, item) {
                    Ok(handle) => running.push_back(handle),
                    Err(e) => failure = Some(MapError::Spawn(e)),
                },
                None => break,
            }
        }
        let Some(handle) = running.pop_front() else {
            break;
        };
        match handle.join() {
            Ok(r) if failure.is_none() => results.push(r),
            Ok(_) => {}
            Err(e) => {
                failure.get_or_insert(MapError::Failed(e));
            }
        }
    }
    match failure {
        Some(f) => Err(f),
        None => Ok(results),
    }
}

//! Channels for the application: typed ends of the same host channels guests use,
//! so that the application is one more peer on a channel. Values travel in the
//! Rust guest SDK's wire format (serde + postcard): a guest's `Receiver<T>` reads
//! what the application's [`Sender<T>`] sends, and the other way round; or, for
//! guests in other languages, in CBOR, which each SDK reads ([`Codec`]).
//!
//! Each operation comes in an async form (for async code, under any executor) and a
//! blocking form (for a plain thread), with `try_` and timeout forms. The semantics
//! are those between guests: when every sender is gone, receivers drain what is
//! buffered and then see [`RecvError::Closed`], or the failure of a guest that held
//! a sender when it failed; when every receiver is gone, a send fails at once and
//! gives the value back.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    Budget, Bytes, Channel, HostHold, Message, Op, Ready, ReceiverHandle, Selected, SenderHandle, select,
};
use crate::error::Failure;

/// Open a channel for the application: `capacity` 0 is a rendezvous (a send
/// completes once a receiver has taken the value), `n` buffers up to `n` values.
/// Hand its ends to a run with [`RunOptions::sender`](crate::RunOptions::sender)
/// and [`RunOptions::receiver`](crate::RunOptions::receiver).
///
/// ```no_run
/// # async fn demo(program: weft::Program) -> Result<(), Box<dyn std::error::Error>> {
/// let (jobs, jobs_for_guest) = weft::channel::<String>(16);
/// let (results_for_guest, results) = weft::channel::<u64>(16);
/// let options = weft::RunOptions::new()
///     .receiver("jobs", jobs_for_guest)
///     .sender("results", results_for_guest);
/// let run = program.start(&options)?;
/// jobs.send("count these words".to_string()).await?;
/// let n = results.recv().await?;
/// # Ok(()) }
/// ```
///
/// What a guest sends on such a channel and the channel buffers counts against
/// that guest's run's budget ([`RunOptions::max_buffered_bytes`](crate::RunOptions::max_buffered_bytes),
/// shown by [`RunHandle::buffered_bytes`](crate::RunHandle::buffered_bytes)) until
/// it is received, even after the run has ended: when the budget has no room, the
/// guest's send waits as if the channel were full. What the application sends
/// counts against no budget.
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    channel_with(capacity, Codec::Postcard)
}

/// How an application's channel encodes its values ([`channel_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Codec {
    /// serde + postcard: what the Rust guest SDK's `Sender<T>` and `Receiver<T>`
    /// use. Compact; not self-describing, so both ends must agree on `T`.
    #[default]
    Postcard,
    /// CBOR (RFC 8949), self-describing: what a Python or JavaScript guest reads
    /// and writes with the SDK's CBOR codec (`weft.CBOR`; `{ codec: weft.CBOR }`).
    /// Maps, lists, strings, byte strings, integers, floats, booleans and null.
    Cbor,
}

impl Codec {
    fn encode<T: Serialize>(self, value: &T) -> Result<Message, String> {
        match self {
            Codec::Postcard => encode(value).map_err(|e| e.to_string()),
            Codec::Cbor => {
                let mut bytes = Vec::new();
                ciborium::into_writer(value, &mut bytes).map_err(|e| e.to_string())?;
                Ok(Message {
                    sent_at: None,
                    bytes: Bytes::from(bytes),
                    endpoints: Vec::new(),
                })
            }
        }
    }

    fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, RecvError> {
        match self {
            Codec::Postcard => match postcard::take_from_bytes(bytes) {
                Ok((value, [])) => Ok(value),
                Ok((_, rest)) => Err(RecvError::Malformed(format!(
                    "{} bytes left over after the value (was another type sent?)",
                    rest.len()
                ))),
                Err(e) => Err(RecvError::Malformed(e.to_string())),
            },
            Codec::Cbor => {
                ciborium::from_reader(bytes).map_err(|e| RecvError::Malformed(format!("CBOR: {e}")))
            }
        }
    }
}

/// Like [`channel`], with the values encoded by `codec`: [`Codec::Cbor`] for a
/// channel to or from a guest in Python or JavaScript.
///
/// ```no_run
/// # async fn demo(program: weft::Program) -> Result<(), Box<dyn std::error::Error>> {
/// use std::collections::BTreeMap;
/// let (jobs, jobs_for_guest) = weft::channel_with::<BTreeMap<String, u32>>(16, weft::Codec::Cbor);
/// let run = program.start(&weft::RunOptions::new().receiver("jobs", jobs_for_guest))?;
/// jobs.send(BTreeMap::from([("width".to_string(), 3)])).await?;
/// # Ok(()) }
/// ```
pub fn channel_with<T>(capacity: usize, codec: Codec) -> (Sender<T>, Receiver<T>) {
    // What the application itself buffers answers to no run's budget: it is
    // bounded by the channel's capacity.
    static BUDGET: std::sync::OnceLock<Arc<Budget>> = std::sync::OnceLock::new();
    let budget = BUDGET.get_or_init(|| Arc::new(Budget::unbounded()));
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(HOST_CHANNEL_IDS + 1);
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (tx, rx) = Channel::open(id, capacity, budget).expect("the application's channels are not counted");
    (Sender::new(tx, codec), Receiver::new(rx, codec))
}

/// The application's channels have ids from `HOST_CHANNEL_IDS + 1` on (a run's own
/// channels count from 1): the application's channel `HOST_CHANNEL_IDS + n` is shown
/// as `host channel n`.
pub(crate) const HOST_CHANNEL_IDS: u64 = 1 << 62;

/// Whether channel `id` is one of the application's.
pub(crate) fn is_host_channel(id: u64) -> bool {
    id > HOST_CHANNEL_IDS
}

/// The application's sending end of a channel of `T`. Clone it for more senders.
pub struct Sender<T> {
    pub(crate) handle: SenderHandle,
    pub(crate) hold: HostHold,
    codec: Codec,
    _t: PhantomData<fn(T)>,
}

/// The application's receiving end of a channel of `T`. Clone it for more
/// receivers.
pub struct Receiver<T> {
    pub(crate) handle: ReceiverHandle,
    pub(crate) hold: HostHold,
    codec: Codec,
    _t: PhantomData<fn() -> T>,
}

/// What the application's two ends share: made from a handle (which holds the
/// channel open for the application), the channel's id, and a `Debug` that shows it.
macro_rules! app_end {
    ($end:ident, $handle:ty, $sends:expr) => {
        impl<T> $end<T> {
            fn new(handle: $handle, codec: Codec) -> Self {
                let hold = HostHold::new(handle.channel(), $sends);
                $end {
                    handle,
                    hold,
                    codec,
                    _t: PhantomData,
                }
            }

            /// How its values are encoded.
            pub fn codec(&self) -> Codec {
                self.codec
            }

            /// The channel's id (the live view shows the application's channel
            /// `2^62 + n` as `host channel n`).
            pub fn channel_id(&self) -> u64 {
                self.handle.channel().id()
            }
        }

        impl<T> fmt::Debug for $end<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($end))
                    .field("channel", &self.channel_id())
                    .finish()
            }
        }
    };
}
app_end!(Sender, SenderHandle, true);
app_end!(Receiver, ReceiverHandle, false);

impl<T> Sender<T> {
    /// The application's end of a guest's channel (a registered sender it looked
    /// up): the application now holds it.
    pub(crate) fn from_handle(handle: SenderHandle) -> Self {
        Sender::new(handle, Codec::Postcard)
    }

    /// Its handle, for a guest to hold (the application no longer does).
    pub(crate) fn into_handle(self) -> SenderHandle {
        self.handle
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender::new(self.handle.clone_for(None), self.codec)
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Receiver::new(self.handle.clone(), self.codec)
    }
}

/// Defines a send's error: the ways its kind of send fails on its own (each
/// giving the value back), then those every send shares (`Closed`, `Serialize`);
/// `into_inner`; and a `Debug` that reads as its `Display`.
macro_rules! send_error {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident,)* }) => {
        $(#[$doc])*
        #[derive(PartialEq, Eq, thiserror::Error)]
        #[non_exhaustive]
        pub enum $name<T> {
            $($(#[$vdoc])* $variant(T),)*
            /// Every receiver is gone.
            #[error("sending on a channel whose receivers are all gone")]
            Closed(T),
            /// The value cannot be serialized in the channels' wire format (postcard),
            /// so nothing was sent: the reason. (A `#[serde(flatten)]` field, a map or
            /// sequence of unknown length, or a `Serialize` impl that fails, say.)
            #[error("cannot serialize the value to send: {1}")]
            Serialize(T, String),
            /// The channel's remote end lost its link to the node at the other end
            /// (a [cluster](crate::cluster)'s channel): why, a failure of kind
            /// [`Disconnected`](crate::FailureKind::Disconnected).
            #[error("the channel's remote end is disconnected: {}", .1.message)]
            Disconnected(T, Failure),
        }

        impl<T> $name<T> {
            /// The value that was not sent.
            pub fn into_inner(self) -> T {
                match self {
                    $($name::$variant(v) |)* $name::Closed(v) | $name::Serialize(v, _)
                    | $name::Disconnected(v, _) => v,
                }
            }
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
    };
}

send_error! {
    /// A send failed; the value comes back.
    SendError {}
}

send_error! {
    /// A `try_send` failed; the value comes back.
    TrySendError {
        /// The channel is full, or (rendezvous) no receiver is waiting.
        #[error("the channel is full")]
        Full,
    }
}

send_error! {
    /// A send with a timeout failed; the value comes back.
    SendTimeoutError {
        /// The time ran out.
        #[error("the send timed out")]
        Timeout,
    }
}

/// A receive returned no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// Every sender is gone and everything sent was received.
    #[error("the channel is closed: every sender is gone")]
    Closed,
    /// A microthread that held a sender failed: its failure.
    #[error("the producer failed: {0}")]
    Failed(Failure),
    /// A message arrived that is not a `T` (the guest sent another type).
    #[error("a message is not of the channel's type: {0}")]
    Malformed(String),
    /// `try_recv`: nothing to receive now.
    #[error("the channel is empty")]
    Empty,
    /// A receive with a timeout: the time ran out.
    #[error("the receive timed out")]
    Timeout,
}

/// The value as a message; the serializer's error if it cannot be one.
fn encode<T: Serialize>(value: &T) -> Result<Message, postcard::Error> {
    // Most values fit inline: then nothing is allocated (else it is serialized again).
    let mut inline = [0; super::bytes::INLINE];
    let bytes = match postcard::to_slice(value, &mut inline) {
        Ok(used) => Bytes::copy_from(used),
        Err(postcard::Error::SerializeBufferFull) => Bytes::from(postcard::to_allocvec(value)?),
        Err(e) => return Err(e),
    };
    Ok(Message {
        sent_at: None,
        bytes,
        endpoints: Vec::new(),
    })
}

fn received<T: DeserializeOwned>(codec: Codec, selected: Selected) -> Result<T, RecvError> {
    match selected {
        // Endpoints a guest put in the message are dropped: the application's
        // values carry none.
        Selected::Op(_, Ready::Received(m)) => codec.decode(&m.bytes),
        Selected::Op(_, Ready::Failed(f)) => Err(RecvError::Failed(f)),
        Selected::Op(_, _) => Err(RecvError::Closed),
        Selected::Timeout => Err(RecvError::Timeout),
        Selected::WouldBlock => Err(RecvError::Empty),
        Selected::Interrupted | Selected::Also(_) => {
            unreachable!("nothing interrupts the application's waits, which watch nothing else")
        }
    }
}

/// How a send ended: `Ok`, or why not and whether the value was given back.
enum Sent {
    Delivered,
    Closed,
    Disconnected(Failure),
    Full,
    Timeout,
    /// The value could not be serialized: why.
    Unserializable(String),
}

fn sent(selected: &Selected) -> Sent {
    match selected {
        Selected::Op(_, Ready::Sent) => Sent::Delivered,
        Selected::Op(_, Ready::Failed(f)) => Sent::Disconnected(f.clone()),
        Selected::Op(_, _) => Sent::Closed,
        Selected::Timeout => Sent::Timeout,
        Selected::WouldBlock => Sent::Full,
        Selected::Interrupted | Selected::Also(_) => {
            unreachable!("nothing interrupts the application's waits, which watch nothing else")
        }
    }
}

impl<T: Serialize> Sender<T> {
    /// The send, with the message counted against the channel's own budget (the
    /// application's, which has no maximum).
    fn op(&self, value: &T) -> Result<[Op; 1], String> {
        let message = self.codec.encode(value)?;
        Ok([Op::Send(self.handle.channel().clone(), message, None)])
    }

    async fn send_async(&self, value: T, timeout: Option<Duration>, block: bool) -> (Sent, T) {
        let op = match self.op(&value) {
            Ok(op) => op,
            Err(why) => return (Sent::Unserializable(why), value),
        };
        let (selected, _) = select(op, timeout, block, super::host_progress(), |_, _, _| ()).await;
        (sent(&selected), value)
    }

    fn send_sync(&self, value: T, timeout: Option<Duration>, block: bool) -> (Sent, T) {
        let op = match self.op(&value) {
            Ok(op) => op,
            Err(why) => return (Sent::Unserializable(why), value),
        };
        let (selected, _) = super::select_blocking(op, timeout, block);
        (sent(&selected), value)
    }

    /// Send `value`, waiting while the channel is full (on a rendezvous channel,
    /// until a receiver has taken it).
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        send_result(self.send_async(value, None, true).await)
    }

    /// Like [`send`](Sender::send), blocking the calling thread.
    pub fn send_blocking(&self, value: T) -> Result<(), SendError<T>> {
        send_result(self.send_sync(value, None, true))
    }

    /// Send `value` only if that needs no waiting.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        match self.send_sync(value, None, false) {
            (Sent::Delivered, _) => Ok(()),
            (Sent::Closed, v) => Err(TrySendError::Closed(v)),
            (Sent::Disconnected(f), v) => Err(TrySendError::Disconnected(v, f)),
            (Sent::Unserializable(why), v) => Err(TrySendError::Serialize(v, why)),
            (Sent::Full | Sent::Timeout, v) => Err(TrySendError::Full(v)),
        }
    }

    /// Send `value`, waiting at most `timeout`.
    pub async fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        send_timeout_result(self.send_async(value, Some(timeout), true).await)
    }

    /// Like [`send_timeout`](Sender::send_timeout), blocking the calling thread.
    pub fn send_timeout_blocking(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        send_timeout_result(self.send_sync(value, Some(timeout), true))
    }
}

fn send_result<T>(sent: (Sent, T)) -> Result<(), SendError<T>> {
    match sent {
        (Sent::Delivered, _) => Ok(()),
        (Sent::Unserializable(why), v) => Err(SendError::Serialize(v, why)),
        (Sent::Disconnected(f), v) => Err(SendError::Disconnected(v, f)),
        // A blocking send without a timeout ends only so.
        (Sent::Closed | Sent::Full | Sent::Timeout, v) => Err(SendError::Closed(v)),
    }
}

fn send_timeout_result<T>(sent: (Sent, T)) -> Result<(), SendTimeoutError<T>> {
    match sent {
        (Sent::Delivered, _) => Ok(()),
        (Sent::Closed, v) => Err(SendTimeoutError::Closed(v)),
        (Sent::Disconnected(f), v) => Err(SendTimeoutError::Disconnected(v, f)),
        (Sent::Unserializable(why), v) => Err(SendTimeoutError::Serialize(v, why)),
        (Sent::Full | Sent::Timeout, v) => Err(SendTimeoutError::Timeout(v)),
    }
}

impl<T> Receiver<T> {
    /// Its handle, for a guest to hold (the application no longer does).
    pub(crate) fn into_handle(self) -> ReceiverHandle {
        self.handle
    }

    /// How many messages the channel holds now, buffered for its receivers (for a
    /// channel exported to a [cluster](crate::cluster), its home's buffer: what
    /// remote senders may still send is bounded by the capacity too).
    pub fn buffered(&self) -> usize {
        self.handle.channel().buffered()
    }
}

impl<T: DeserializeOwned> Receiver<T> {
    fn op(&self) -> [Op; 1] {
        [Op::Recv(self.handle.channel().clone())]
    }

    /// Receive a value, waiting until one arrives: [`RecvError::Closed`] once every
    /// sender is gone and the buffer is drained, [`RecvError::Failed`] if a
    /// microthread that held a sender failed.
    pub async fn recv(&self) -> Result<T, RecvError> {
        received(
            self.codec,
            select(self.op(), None, true, super::host_progress(), |_, _, _| ())
                .await
                .0,
        )
    }

    /// Like [`recv`](Receiver::recv), blocking the calling thread.
    pub fn recv_blocking(&self) -> Result<T, RecvError> {
        received(self.codec, super::select_blocking(self.op(), None, true).0)
    }

    /// Receive only if that needs no waiting ([`RecvError::Empty`] otherwise).
    pub fn try_recv(&self) -> Result<T, RecvError> {
        received(self.codec, super::select_blocking(self.op(), None, false).0)
    }

    /// Receive, waiting at most `timeout` ([`RecvError::Timeout`] then).
    pub async fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvError> {
        let waited = select(
            self.op(),
            Some(timeout),
            true,
            super::host_progress(),
            |_, _, _| (),
        )
        .await;
        received(self.codec, waited.0)
    }

    /// Like [`recv_timeout`](Receiver::recv_timeout), blocking the calling thread.
    pub fn recv_timeout_blocking(&self, timeout: Duration) -> Result<T, RecvError> {
        received(
            self.codec,
            super::select_blocking(self.op(), Some(timeout), true).0,
        )
    }
}

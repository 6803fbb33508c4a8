//! How typed values travel: a *value* is *encoded* (serialized with serde + postcard)
//! into a *message*, the WIT `message`, and decoded from one; the *endpoints* inside
//! it (channel ends, sockets: the WIT `endpoint`) travel beside the bytes as moved
//! handles. A channel shared with a guest in another language, or with the
//! application in CBOR, encodes its values in CBOR instead ([`Codec`]), without
//! endpoints.
//!
//! Serializing an endpoint (a [`Sender`](crate::Sender), a
//! [`Receiver`](crate::Receiver), a socket) clones its handle into the outgoing list and writes the list index; the value's own handle is
//! dropped with the value once the message is sent, so the endpoint has moved.
//! Deserializing takes the handle at that index from the incoming list.
//!
//! A message whose encoding fits [`INLINE`] bytes and that moves no endpoint (most
//! messages: a number, a small struct) travels by value, as the WIT `small-message`:
//! it is serialized into a buffer on the stack and nothing is allocated on either
//! side of the boundary.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::DeserializeOwned};

use crate::bindings::channel as wit;

thread_local! {
    static OUTGOING: RefCell<Vec<wit::Endpoint>> = const { RefCell::new(Vec::new()) };
    static INCOMING: RefCell<Vec<Option<wit::Endpoint>>> = const { RefCell::new(Vec::new()) };
    /// The endpoint that the value being decoded expected and the message did not
    /// carry: postcard keeps no text of a custom error, so [`decode`] takes it from here.
    static MISSING_ENDPOINT: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// How many endpoints wait in `OUTGOING`: most messages carry none, and then
/// encoding does not touch the thread-local at all. (A microthread is one thread.)
static OUTGOING_LEN: AtomicUsize = AtomicUsize::new(0);

/// At most this many bytes travel by value: the size of the WIT `small-message`.
const INLINE: usize = 24;

/// A postcard output that fills a buffer on the stack and moves to the heap only
/// when the value does not fit it.
struct Spill {
    inline: [u8; INLINE],
    len: usize,
    heap: Vec<u8>,
}

impl postcard::ser_flavors::Flavor for Spill {
    type Output = Spill;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if self.heap.is_empty() && self.len + data.len() <= INLINE {
            self.inline[self.len..self.len + data.len()].copy_from_slice(data);
            self.len += data.len();
        } else {
            if self.heap.is_empty() {
                self.heap.reserve(2 * INLINE + data.len());
                self.heap.extend_from_slice(&self.inline[..self.len]);
            }
            self.heap.extend_from_slice(data);
        }
        Ok(())
    }

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.try_extend(&[byte])
    }

    fn finalize(self) -> postcard::Result<Spill> {
        Ok(self)
    }
}

/// A message of these bytes and no endpoints, by value if they fit.
pub(crate) fn from_bytes(bytes: &[u8]) -> wit::Message {
    if bytes.len() > INLINE {
        return wit::Message::Large(wit::LargeMessage {
            bytes: bytes.to_vec(),
            endpoints: Vec::new(),
        });
    }
    let mut inline = [0; INLINE];
    inline[..bytes.len()].copy_from_slice(bytes);
    small(bytes.len(), &inline)
}

/// The small message of the first `len` bytes of `inline` (the rest are zero).
fn small(len: usize, inline: &[u8; INLINE]) -> wit::Message {
    let word = |i: usize| u64::from_le_bytes(inline[8 * i..8 * i + 8].try_into().expect("8 bytes"));
    wit::Message::Small(wit::SmallMessage {
        len: len as u8,
        w0: word(0),
        w1: word(1),
        w2: word(2),
    })
}

/// How many bytes the message's encoding has.
pub(crate) fn byte_len(message: &wit::Message) -> usize {
    match message {
        wit::Message::Small(s) => usize::from(s.len),
        wit::Message::Large(m) => m.bytes.len(),
    }
}

/// A small message's bytes: a buffer, and how many of it are the message's (the
/// host never sends more than fit; a longer length reads them all).
fn small_bytes(s: &wit::SmallMessage) -> ([u8; INLINE], usize) {
    let mut inline = [0; INLINE];
    for (chunk, w) in inline.chunks_exact_mut(8).zip([s.w0, s.w1, s.w2]) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    (inline, usize::from(s.len).min(INLINE))
}

/// Serialize `value` into a message.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<wit::Message, postcard::Error> {
    // A panic while (de)serializing leaves the lists as they are, but it fails the
    // microthread, and its instance goes with them (guests abort on panic).
    let out = Spill {
        inline: [0; INLINE],
        len: 0,
        heap: Vec::new(),
    };
    let out = postcard::serialize_with_flavor(value, out);
    // The endpoints the value's senders and receivers put aside (taken even when
    // serializing failed half-way, so that none is left for the next message).
    let endpoints = match OUTGOING_LEN.swap(0, Ordering::Relaxed) {
        0 => Vec::new(),
        _ => OUTGOING.with(|o| std::mem::take(&mut *o.borrow_mut())),
    };
    let out = out?;
    if endpoints.is_empty() && out.heap.is_empty() {
        // The buffer is zero past what the value wrote: its words as they are.
        return Ok(small(out.len, &out.inline));
    }
    let bytes = match out.heap.is_empty() {
        true => out.inline[..out.len].to_vec(),
        false => out.heap,
    };
    Ok(wit::Message::Large(wit::LargeMessage { bytes, endpoints }))
}

/// How a channel's values are encoded: [`Sender::with_codec`](crate::Sender::with_codec),
/// [`Receiver::with_codec`](crate::Receiver::with_codec).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Codec {
    /// serde + postcard, with the channel ends and sockets inside a value moving
    /// beside its bytes: what every Rust guest reads unless told otherwise.
    #[default]
    Postcard,
    /// CBOR (RFC 8949), self-describing: what the Python and JavaScript SDKs'
    /// `weft.CBOR` codec and the application's `weft::Codec::Cbor` channels read and
    /// write. Maps, sequences, strings, byte strings, integers, floats, booleans and
    /// null; no channel ends or sockets.
    Cbor,
}

/// Serialize `value` into a message in `codec`.
pub(crate) fn encode_as<T: Serialize + ?Sized>(value: &T, codec: Codec) -> Result<wit::Message, String> {
    match codec {
        Codec::Postcard => encode(value).map_err(|e| e.to_string()),
        Codec::Cbor => {
            let mut bytes = Vec::new();
            let written = ciborium::into_writer(value, &mut bytes).map_err(|e| e.to_string());
            // An end or a socket in the value was put aside: CBOR carries none.
            if OUTGOING_LEN.swap(0, Ordering::Relaxed) > 0 {
                OUTGOING.with(|o| o.borrow_mut().clear());
                return Err("a CBOR message carries no channel ends or sockets".into());
            }
            written?;
            Ok(from_bytes(&bytes))
        }
    }
}

/// Deserialize a message in `codec`.
pub(crate) fn decode_as<T: DeserializeOwned>(message: wit::Message, codec: Codec) -> Result<T, Malformed> {
    match codec {
        Codec::Postcard => decode(message),
        Codec::Cbor => {
            let read =
                |bytes: &[u8]| ciborium::from_reader(bytes).map_err(|e| Malformed::Cbor(e.to_string()));
            match message {
                wit::Message::Small(s) => {
                    let (inline, len) = small_bytes(&s);
                    read(&inline[..len])
                }
                wit::Message::Large(m) => read(&m.bytes),
            }
        }
    }
}

/// Why a message is not a `T`.
#[derive(Debug)]
pub(crate) enum Malformed {
    /// It is not the CBOR of a `T`: why.
    Cbor(String),
    /// postcard could not read a `T` from it.
    Decode(postcard::Error),
    /// A `T` was read, and bytes were left over: the sender sent another type.
    LeftOver(usize),
    /// The value has an endpoint (a channel's end, a socket) of this kind where the
    /// message carries none, or one of another kind.
    MissingEndpoint(&'static str),
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Malformed::Decode(e) => e.fmt(f),
            Malformed::Cbor(e) => write!(f, "CBOR: {e}"),
            Malformed::LeftOver(n) => {
                write!(f, "{n} bytes left over after the value (was another type sent?)")
            }
            Malformed::MissingEndpoint(expected) => {
                write!(f, "the message does not carry the expected {expected}")
            }
        }
    }
}

/// Deserialize a message, all of it; endpoints it carries but the value does not
/// use are dropped.
pub(crate) fn decode<T: DeserializeOwned>(message: wit::Message) -> Result<T, Malformed> {
    let whole = |bytes: &[u8]| match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(Malformed::LeftOver(rest.len())),
        Err(e) => Err(match MISSING_ENDPOINT.take() {
            Some(expected) => Malformed::MissingEndpoint(expected),
            None => Malformed::Decode(e),
        }),
    };
    MISSING_ENDPOINT.set(None);
    let message = match message {
        wit::Message::Small(s) => {
            let (inline, len) = small_bytes(&s);
            return whole(&inline[..len]);
        }
        wit::Message::Large(m) => m,
    };
    if message.endpoints.is_empty() {
        // `INCOMING` is empty between messages: a value that expects an endpoint
        // finds none, and fails to deserialize.
        return whole(&message.bytes);
    }
    INCOMING.with(|i| *i.borrow_mut() = message.endpoints.into_iter().map(Some).collect());
    let value = whole(&message.bytes);
    INCOMING.with(|i| i.borrow_mut().clear());
    value
}

/// Serialize an endpoint (a channel's end or a socket): put `endpoint`, a clone of
/// the value's handle, beside the bytes and write its index there.
pub(crate) fn serialize_endpoint<S: Serializer>(endpoint: wit::Endpoint, s: S) -> Result<S::Ok, S::Error> {
    OUTGOING
        .with(|o| {
            let mut o = o.borrow_mut();
            o.push(endpoint);
            OUTGOING_LEN.store(o.len(), Ordering::Relaxed);
            (o.len() - 1) as u32
        })
        .serialize(s)
}

/// Deserialize an endpoint: read its index and take the handle there, which `pick`
/// turns into the value if it is of the kind expected. A missing handle, or one of
/// another kind (dropped then), fails the decoding with
/// [`Malformed::MissingEndpoint`].
pub(crate) fn deserialize_endpoint<'de, D: Deserializer<'de>, T>(
    d: D,
    expected: &'static str,
    pick: impl FnOnce(wit::Endpoint) -> Option<T>,
) -> Result<T, D::Error> {
    let index = u32::deserialize(d)?;
    let taken = INCOMING.with(|i| i.borrow_mut().get_mut(index as usize)?.take());
    taken.and_then(pick).ok_or_else(|| {
        MISSING_ENDPOINT.set(Some(expected));
        serde::de::Error::custom(format_args!("the message does not carry the expected {expected}"))
    })
}

/// A value encoded once, to make a message of again and again (a supervised
/// child's argument, given afresh at each restart): its bytes, and its endpoints,
/// of which each message gets clones. It is itself a value: serializing it puts
/// clones of its endpoints beside the outer message's bytes, so it travels inside
/// another message (a supervisor's specification, to the supervisor's microthread).
pub(crate) struct Encoded {
    bytes: Vec<u8>,
    endpoints: Vec<AnyEndpoint>,
}

/// An endpoint of any kind inside an [`Encoded`]: it serializes as a clone.
struct AnyEndpoint(wit::Endpoint);

impl AnyEndpoint {
    /// Another handle to the same channel end or socket.
    fn share(&self) -> wit::Endpoint {
        match &self.0 {
            wit::Endpoint::Sender(s) => wit::Endpoint::Sender(s.clone()),
            wit::Endpoint::Receiver(r) => wit::Endpoint::Receiver(r.clone()),
            wit::Endpoint::TcpListener(l) => wit::Endpoint::TcpListener(l.share()),
            wit::Endpoint::TcpStream(s) => wit::Endpoint::TcpStream(s.share()),
        }
    }
}

impl Serialize for AnyEndpoint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_endpoint(self.share(), s)
    }
}

impl<'de> Deserialize<'de> for AnyEndpoint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_endpoint(d, "endpoint", |e| Some(AnyEndpoint(e)))
    }
}

impl Encoded {
    /// Encode `value` (its endpoints are cloned: the value keeps its own).
    pub(crate) fn new<T: Serialize + ?Sized>(value: &T) -> Result<Self, postcard::Error> {
        Ok(match encode(value)? {
            wit::Message::Small(m) => {
                let mut bytes = Vec::with_capacity(INLINE);
                for w in [m.w0, m.w1, m.w2] {
                    bytes.extend_from_slice(&w.to_le_bytes());
                }
                bytes.truncate(usize::from(m.len));
                Encoded {
                    bytes,
                    endpoints: Vec::new(),
                }
            }
            wit::Message::Large(m) => Encoded {
                bytes: m.bytes,
                endpoints: m.endpoints.into_iter().map(AnyEndpoint).collect(),
            },
        })
    }

    /// A message of the value, with clones of its endpoints.
    pub(crate) fn message(&self) -> wit::Message {
        if self.endpoints.is_empty() {
            return from_bytes(&self.bytes);
        }
        wit::Message::Large(wit::LargeMessage {
            bytes: self.bytes.clone(),
            endpoints: self.endpoints.iter().map(AnyEndpoint::share).collect(),
        })
    }
}

impl Serialize for Encoded {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&self.bytes, &self.endpoints).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Encoded {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (bytes, endpoints) = <(Vec<u8>, Vec<AnyEndpoint>)>::deserialize(d)?;
        Ok(Encoded { bytes, endpoints })
    }
}

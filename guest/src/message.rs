//! How typed values travel: serialized with serde + postcard into bytes, while the
//! channel endpoints inside them travel beside the bytes as moved handles.
//!
//! Serializing a [`Sender`](crate::Sender) or [`Receiver`](crate::Receiver) clones its
//! handle into the outgoing list and writes the list index; the value's own handle is
//! dropped with the value once the message is sent, so the endpoint has moved.
//! Deserializing takes the handle at that index from the incoming list.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Serialize, de::DeserializeOwned};

use crate::bindings::channel as wit;

thread_local! {
    static OUTGOING: RefCell<Vec<wit::Endpoint>> = const { RefCell::new(Vec::new()) };
    static INCOMING: RefCell<Vec<Option<wit::Endpoint>>> = const { RefCell::new(Vec::new()) };
}

/// How many endpoints wait in `OUTGOING`: most messages carry none, and then
/// encoding does not touch the thread-local at all. (A microthread is one thread.)
static OUTGOING_LEN: AtomicUsize = AtomicUsize::new(0);

/// Serialize `value` into a message.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<wit::Message, postcard::Error> {
    // A panic while (de)serializing leaves the lists as they are, but it ends the
    // microthread, and its instance with them (guests abort on panic).
    // Room for a small value from the start: most messages need no reallocation.
    let bytes = postcard::to_extend(value, Vec::with_capacity(16));
    // The endpoints the value's senders and receivers put aside (taken even when
    // serializing failed half-way, so that none is left for the next message).
    let endpoints = match OUTGOING_LEN.swap(0, Ordering::Relaxed) {
        0 => Vec::new(),
        _ => OUTGOING.with(|o| std::mem::take(&mut *o.borrow_mut())),
    };
    Ok(wit::Message {
        bytes: bytes?,
        endpoints,
    })
}

/// Why a message is not a `T`.
#[derive(Debug)]
pub(crate) enum Malformed {
    /// postcard could not read a `T` from it.
    Decode(postcard::Error),
    /// A `T` was read, and bytes were left over: the sender sent another type.
    LeftOver(usize),
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Malformed::Decode(e) => e.fmt(f),
            Malformed::LeftOver(n) => {
                write!(f, "{n} bytes left over after the value (was another type sent?)")
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
        Err(e) => Err(Malformed::Decode(e)),
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

/// Serializing an endpoint: put (a clone of) its handle beside the bytes.
pub(crate) fn push_endpoint(endpoint: wit::Endpoint) -> u32 {
    OUTGOING.with(|o| {
        let mut o = o.borrow_mut();
        o.push(endpoint);
        OUTGOING_LEN.store(o.len(), Ordering::Relaxed);
        (o.len() - 1) as u32
    })
}

/// Deserializing an endpoint: take the handle at `index`.
pub(crate) fn take_endpoint(index: u32) -> Option<wit::Endpoint> {
    INCOMING.with(|i| i.borrow_mut().get_mut(index as usize)?.take())
}

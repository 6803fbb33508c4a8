//! How typed values travel: serialized with serde + postcard into bytes, while the
//! channel endpoints inside them travel beside the bytes as moved handles.
//!
//! Serializing a [`Sender`](crate::Sender) or [`Receiver`](crate::Receiver) clones its
//! handle into the outgoing list and writes the list index; the value's own handle is
//! dropped with the value once the message is sent, so the endpoint has moved.
//! Deserializing takes the handle at that index from the incoming list.

use std::cell::RefCell;

use serde::{Serialize, de::DeserializeOwned};

use crate::bindings::channel as wit;

thread_local! {
    static OUTGOING: RefCell<Vec<wit::Endpoint>> = const { RefCell::new(Vec::new()) };
    static INCOMING: RefCell<Vec<Option<wit::Endpoint>>> = const { RefCell::new(Vec::new()) };
}

/// Serialize `value` into a message.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<wit::Message, postcard::Error> {
    OUTGOING.with(|o| o.borrow_mut().clear());
    let bytes = postcard::to_allocvec(value);
    let endpoints = OUTGOING.with(|o| std::mem::take(&mut *o.borrow_mut()));
    Ok(wit::Message {
        bytes: bytes?,
        endpoints,
    })
}

/// Deserialize a message; endpoints it carries but the value does not use are dropped.
pub(crate) fn decode<T: DeserializeOwned>(message: wit::Message) -> Result<T, postcard::Error> {
    INCOMING.with(|i| *i.borrow_mut() = message.endpoints.into_iter().map(Some).collect());
    let value = postcard::from_bytes(&message.bytes);
    INCOMING.with(|i| i.borrow_mut().clear());
    value
}

/// Serializing an endpoint: put (a clone of) its handle beside the bytes.
pub(crate) fn push_endpoint(endpoint: wit::Endpoint) -> u32 {
    OUTGOING.with(|o| {
        let mut o = o.borrow_mut();
        o.push(endpoint);
        (o.len() - 1) as u32
    })
}

/// Deserializing an endpoint: take the handle at `index`.
pub(crate) fn take_endpoint(index: u32) -> Option<wit::Endpoint> {
    INCOMING.with(|i| i.borrow_mut().get_mut(index as usize)?.take())
}

//! How a channel's end travels in a message: serializing a [`Sender`] or
//! [`Receiver`] puts a clone of its handle beside the bytes (see
//! [`message`](crate::message)), deserializing takes it back out.

use std::marker::PhantomData;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::receiver::Receiver;
use super::sender::Sender;
use crate::bindings::channel as wit;
use crate::message::{push_endpoint, take_endpoint};

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

//! Messages across the WIT boundary: a guest's `message` (small, three inline
//! words; or large, bytes and endpoints) to and from the host's [`Message`]. The
//! endpoints a message carries leave the sending microthread's resource table, and
//! enter the receiving one's.

use super::bindings::channel as wit;
use crate::channel::{Bytes, Endpoint, Message};
use crate::microthread::Microthread;

impl wit::Message {
    /// How many bytes the message's encoding has.
    pub(super) fn byte_len(&self) -> usize {
        match self {
            wit::Message::Small(s) => usize::from(s.len),
            wit::Message::Large(m) => m.bytes.len(),
        }
    }
}

impl Microthread {
    /// Take a message the guest gave up: its endpoints leave this store's table.
    pub(super) fn take_message(&mut self, m: wit::Message) -> wasmtime::Result<Message> {
        let m = match m {
            wit::Message::Small(s) => {
                let bytes = Bytes::from_words(s.len, [s.w0, s.w1, s.w2]).ok_or_else(|| {
                    wasmtime::format_err!(
                        "a small message of {} bytes (at most {} fit one)",
                        s.len,
                        crate::channel::bytes::INLINE
                    )
                })?;
                return Ok(Message {
                    sent_at: None,
                    bytes,
                    endpoints: Vec::new(),
                });
            }
            wit::Message::Large(m) => m,
        };
        let mut endpoints = Vec::with_capacity(m.endpoints.len());
        for e in m.endpoints {
            endpoints.push(match e {
                wit::Endpoint::Sender(r) => {
                    let mut h = self.table.delete(r)?;
                    h.set_holder(None);
                    Endpoint::Sender(h)
                }
                wit::Endpoint::Receiver(r) => Endpoint::Receiver(self.table.delete(r)?),
                wit::Endpoint::TcpListener(r) => Endpoint::Listener(self.table.delete(r)?),
                wit::Endpoint::TcpStream(r) => Endpoint::Stream(self.table.delete(r)?),
            });
        }
        Ok(Message {
            sent_at: None,
            bytes: m.bytes.into(),
            endpoints,
        })
    }

    /// Hand a message to the guest: its endpoints enter this store's table.
    pub(super) fn give_message(&mut self, m: Message) -> wasmtime::Result<wit::Message> {
        if m.endpoints.is_empty()
            && let Some((len, [w0, w1, w2])) = m.bytes.to_words()
        {
            return Ok(wit::Message::Small(wit::SmallMessage { len, w0, w1, w2 }));
        }
        let mut endpoints = Vec::with_capacity(m.endpoints.len());
        for e in m.endpoints {
            endpoints.push(match e {
                Endpoint::Sender(mut h) => {
                    h.set_holder(Some(self.holder.clone()));
                    wit::Endpoint::Sender(self.table.push(h)?)
                }
                Endpoint::Receiver(h) => wit::Endpoint::Receiver(self.table.push(h)?),
                Endpoint::Listener(h) => wit::Endpoint::TcpListener(self.table.push(h)?),
                Endpoint::Stream(h) => wit::Endpoint::TcpStream(self.table.push(h)?),
            });
        }
        Ok(wit::Message::Large(wit::LargeMessage {
            bytes: m.bytes.into_vec(),
            endpoints,
        }))
    }

    /// Hand the guest each of `ms` there is (the messages of a select's sends that
    /// did not complete).
    pub(super) fn give_messages(
        &mut self,
        ms: Vec<Option<Message>>,
    ) -> wasmtime::Result<Vec<Option<wit::Message>>> {
        ms.into_iter()
            .map(|m| m.map(|m| self.give_message(m)).transpose())
            .collect()
    }
}

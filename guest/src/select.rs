//! [`Select`], the WIT `channel` interface's `select`: wait on several channel
//! operations (and sockets becoming ready, and timers: [`after`](crate::after),
//! [`tick`](crate::tick)) at once and complete exactly one. A received message
//! comes back undecoded ([`Received`]): the caller decodes it as the value type of
//! the receiver it came from.
//!
//! ```no_run
//! use std::time::Duration;
//! use weft_guest::{channel, Select, Selected};
//!
//! let (tx_a, rx_a) = channel::<u32>(1);
//! let (_tx_b, rx_b) = channel::<String>(1);
//! tx_a.send(7).unwrap();
//! let mut sel = Select::new();
//! let a = sel.recv(&rx_a);
//! let b = sel.recv(&rx_b);
//! match sel.wait_timeout(Duration::from_millis(10)) {
//!     Selected::Received { index, message } if index == a => assert_eq!(message.decode::<u32>(), 7),
//!     Selected::Received { index, message } if index == b => println!("{}", message.decode::<String>()),
//!     other => println!("{other:?}"),
//! }
//! ```

use std::fmt;
use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};

use crate::bindings::channel as wit;
use crate::channel::{Receiver, Sender, decode_in};
use crate::failure::Failure;
use crate::message::{Codec, encode_as};
use crate::net::{TcpListener, TcpStream};
use crate::time::nanos;

/// A set of channel operations to complete exactly one of.
///
/// Among operations that are ready at once, one is chosen uniformly at random, so
/// that none starves. A send operation serializes its value when added: endpoints inside the
/// value are cloned into the message, not moved.
#[derive(Default)]
pub struct Select<'a> {
    ops: Vec<wit::SelectOp<'a>>,
    /// Each receive's codec, by operation index (postcard for the others).
    codecs: Vec<Codec>,
}

/// A message received by a [`Select`]; [`decode`](Received::decode) it as the type of
/// the receiver it came from.
pub struct Received(wit::Message, Codec);

impl Received {
    /// The value.
    ///
    /// # Panics
    /// If the message is not a `T`.
    pub fn decode<T: DeserializeOwned>(self) -> T {
        decode_in(self.1, self.0)
    }
}

impl fmt::Debug for Received {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Received")
            .field("bytes", &crate::message::byte_len(&self.0))
            .finish()
    }
}

/// Which operation completed, by the index its `recv`, `send`, `accept`,
/// `readable` or `writable` returned.
#[derive(Debug)]
#[non_exhaustive]
pub enum Selected {
    /// A receive got a message.
    Received {
        /// The operation.
        index: usize,
        /// What it got.
        message: Received,
    },
    /// A send delivered its value.
    Sent {
        /// The operation.
        index: usize,
    },
    /// An operation found its channel closed (no senders left for a receive, no
    /// receivers for a send).
    Closed {
        /// The operation.
        index: usize,
    },
    /// A receive found that a producer failed.
    Failed {
        /// The operation.
        index: usize,
        /// The producer's failure.
        failure: Failure,
    },
    /// A send's value is over the host's message size limit (nothing was waited for).
    TooLarge {
        /// The operation.
        index: usize,
    },
    /// `wait_timeout`: no operation completed in time.
    Timeout,
    /// `try_wait`: no operation was ready.
    WouldBlock,
    /// This microthread was cancelled (a waiting select fails so).
    Cancelled,
    /// A socket is ready: a connection waits to be accepted, the stream has
    /// something to read (bytes, its end, or an error), or it can take bytes. The
    /// select only reports it: accept, read or write now.
    Ready {
        /// The operation.
        index: usize,
    },
}

impl<'a> Select<'a> {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a receive on `rx`; returns the operation's index.
    pub fn recv<T>(&mut self, rx: &'a Receiver<T>) -> usize {
        self.ops.push(wit::SelectOp::Recv(&rx.inner));
        self.codecs.push(rx.codec);
        self.ops.len() - 1
    }

    /// Add a send of `value` on `tx`; returns the operation's index.
    pub fn send<T: Serialize>(&mut self, tx: &'a Sender<T>, value: &T) -> usize {
        let message =
            encode_as(value, tx.codec).unwrap_or_else(|e| panic!("weft: cannot serialize the message: {e}"));
        self.ops.push(wit::SelectOp::Send((&tx.inner, message)));
        self.codecs.push(tx.codec);
        self.ops.len() - 1
    }

    /// Add a watch for a connection waiting on `listener`; returns the operation's
    /// index.
    pub fn accept(&mut self, listener: &'a TcpListener) -> usize {
        self.ops.push(wit::SelectOp::Accept(&listener.inner));
        self.codecs.push(Codec::Postcard);
        self.ops.len() - 1
    }

    /// Add a watch for `stream` having something to read; returns the operation's
    /// index.
    pub fn readable(&mut self, stream: &'a TcpStream) -> usize {
        self.ops.push(wit::SelectOp::Readable(&stream.inner));
        self.codecs.push(Codec::Postcard);
        self.ops.len() - 1
    }

    /// Add a watch for `stream` being able to take bytes; returns the operation's
    /// index.
    pub fn writable(&mut self, stream: &'a TcpStream) -> usize {
        self.ops.push(wit::SelectOp::Writable(&stream.inner));
        self.codecs.push(Codec::Postcard);
        self.ops.len() - 1
    }

    fn run(self, timeout: Option<Duration>, block: bool) -> Selected {
        let (selected, _unsent) = wit::select(&self.ops, timeout.map(nanos), block);
        match selected {
            wit::Selected::Received((i, m)) => Selected::Received {
                index: i as usize,
                message: Received(m, self.codecs.get(i as usize).copied().unwrap_or_default()),
            },
            wit::Selected::Sent(i) => Selected::Sent { index: i as usize },
            wit::Selected::Closed(i) => Selected::Closed { index: i as usize },
            wit::Selected::Failed((i, f)) => Selected::Failed {
                index: i as usize,
                failure: f.into(),
            },
            wit::Selected::TooLarge(i) => Selected::TooLarge { index: i as usize },
            wit::Selected::Timeout => Selected::Timeout,
            wit::Selected::WouldBlock => Selected::WouldBlock,
            wit::Selected::Cancelled => Selected::Cancelled,
            wit::Selected::Ready(i) => Selected::Ready { index: i as usize },
        }
    }

    /// Wait (only this microthread) until an operation completes.
    pub fn wait(self) -> Selected {
        self.run(None, true)
    }

    /// Wait at most `timeout`.
    pub fn wait_timeout(self, timeout: Duration) -> Selected {
        self.run(Some(timeout), true)
    }

    /// Complete an operation only if one is ready now.
    pub fn try_wait(self) -> Selected {
        self.run(None, false)
    }
}

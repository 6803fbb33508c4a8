//! What nodes say to each other over NATS: the subjects, and the frames (postcard,
//! behind a protocol version byte and the sender's node id).
//!
//! Every node subscribes to one subject of its own, `weft.<cluster>.node.<name>.<incarnation>`,
//! where every frame for it arrives, to one subject per exported name
//! (`weft.<cluster>.name.<name>`), which answers attachments, and to the cluster's
//! heartbeats (`weft.<cluster>.hb`).
//!
//! A *lease* is one remote end of a channel, between the node that holds it and the
//! channel's home; its id is chosen by the holder. Frames of a lease carry sequence
//! numbers where messages travel: a gap fails the lease, so a message is never lost
//! silently, and never delivered twice.

use serde::{Deserialize, Serialize};

use crate::error::{Failure, FailureKind};

/// The protocol version: a frame of another version is refused.
pub(super) const VERSION: u8 = 1;

/// Bytes a frame adds to a message's own (generous: the envelope, the node id, the
/// lease, the sequence number).
pub(super) const FRAME_OVERHEAD: usize = 512;

/// Credit a remote sender holds at most (slots of the home's buffer reserved for
/// it), and so the room of its proxy.
pub(super) const SEND_WINDOW: usize = 64;

/// Which end of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Side {
    Sender,
    Receiver,
}

/// A failure, as it travels.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct WireFailure {
    pub(super) id: u64,
    pub(super) name: Option<String>,
    pub(super) kind: u8,
    pub(super) message: String,
}

impl From<&Failure> for WireFailure {
    fn from(f: &Failure) -> Self {
        WireFailure {
            id: f.id,
            name: f.name.clone(),
            kind: f.kind.index(),
            message: f.message.clone(),
        }
    }
}

impl From<WireFailure> for Failure {
    fn from(w: WireFailure) -> Self {
        Failure {
            id: w.id,
            name: w.name,
            kind: FailureKind::from_index(w.kind).unwrap_or(FailureKind::Disconnected),
            message: w.message,
        }
    }
}

/// A frame, with who sent it.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Envelope {
    pub(super) version: u8,
    /// The sending node's id (`name.incarnation`).
    pub(super) from: String,
    pub(super) frame: Frame,
}

/// What a node tells another about a lease.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Frame {
    /// Holder of a sender → home: a message, on one credit, and the senders it
    /// carries.
    Send {
        lease: u64,
        seq: u64,
        bytes: Vec<u8>,
        ends: Vec<EndRef>,
    },
    /// Home → holder of a sender: `n` more messages may be sent.
    Credit { lease: u64, n: u32 },
    /// Home → holder of a sender: every receiver is gone; sends fail `closed`.
    Closed { lease: u64 },
    /// Holder of a sender → home of a rendezvous channel: a waiting send's
    /// message, offered to the home's receivers (one at a time).
    Offer {
        lease: u64,
        seq: u64,
        bytes: Vec<u8>,
        ends: Vec<EndRef>,
    },
    /// Home of a rendezvous channel → holder of a sender: a receiver took offer
    /// `seq`; its send completes.
    Taken { lease: u64, seq: u64 },
    /// Holder of a receiver → home: `n` more messages may be delivered.
    Demand { lease: u64, n: u32 },
    /// Holder of a receiver → home of a rendezvous channel: a receiver took
    /// delivery `seq` (its send completes).
    Ack { lease: u64, seq: u64 },
    /// Holder of a receiver → home of a rendezvous channel: nobody waited for
    /// delivery `seq` any more (its send waits on).
    Nack { lease: u64, seq: u64 },
    /// Home → holder of a receiver: a message, and the senders it carries.
    Deliver {
        lease: u64,
        seq: u64,
        bytes: Vec<u8>,
        ends: Vec<EndRef>,
    },
    /// Home → holder of a receiver: every sender is gone and the buffer drained:
    /// closed, or the failure of a producer that failed.
    End {
        lease: u64,
        failure: Option<WireFailure>,
    },
    /// Holder → home: the holder dropped its last end of the lease (its failure, if
    /// the holding microthread failed).
    Release {
        lease: u64,
        failure: Option<WireFailure>,
    },
    /// Either way: the lease is not known here (any more): it has failed.
    Unknown { lease: u64 },
    /// To a node declared down that spoke again: every lease between the two
    /// nodes has failed; it is a stranger now.
    Forgotten,
}

/// A channel end carried in a message: the token the node it left publishes it
/// under, its channel's capacity, and which end it is.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct EndRef {
    pub(super) token: String,
    pub(super) capacity: u64,
    /// Which end it is.
    pub(super) side: Side,
}

/// A request on a name's subject: attach a remote end of the channel exported
/// under that name.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Attach {
    pub(super) version: u8,
    /// The node that will hold the end.
    pub(super) holder: String,
    /// The lease id it chose.
    pub(super) lease: u64,
    /// Which end it wants.
    pub(super) side: Side,
}

/// The home's answer to an [`Attach`].
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Attached {
    /// Attached: the home node's id, the channel's capacity, and (for a name of
    /// the registry) the fingerprint of the type it was registered with.
    Yes {
        home: String,
        capacity: u64,
        fingerprint: Option<String>,
    },
    /// Refused: why.
    No(String),
}

/// A request on a registry name's subject (`weft.<cluster>.reg.<hex of the name>`).
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum RegistryRequest {
    /// Is the name registered? Answered with [`Held`].
    Probe,
    /// Attach a sender of the channel registered under it: answered with
    /// [`Attached`].
    Attach(Attach),
}

/// The answer to a [`RegistryRequest::Probe`]: the node where the name is held.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Held {
    pub(super) node: String,
}

/// A node's heartbeat, on the cluster's heartbeat subject.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Heartbeat {
    pub(super) version: u8,
    /// Its id (`name.incarnation`).
    pub(super) node: String,
}

/// Encode `value` for the wire.
pub(super) fn encode<T: Serialize>(value: &T) -> bytes::Bytes {
    bytes::Bytes::from(postcard::to_allocvec(value).expect("weft's own frames always serialize"))
}

/// Decode a frame from the wire; why not, if it cannot be.
pub(super) fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    postcard::from_bytes(bytes).map_err(|e| format!("a malformed frame ({} bytes): {e}", bytes.len()))
}

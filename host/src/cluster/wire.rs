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
pub(super) const VERSION: u8 = 2;

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
    /// Node of a spawned microthread → node of its parent: spawn `ticket` ended,
    /// with its result (bytes, and the ends it carries) or its failure.
    Finished {
        ticket: u64,
        outcome: Result<(Vec<u8>, Vec<EndRef>), WireFailure>,
    },
    /// Node of a parent → node of the microthread it spawned there: cancel spawn
    /// `ticket` (with that node's grace), or stop it `now`, wherever it is.
    Stop { ticket: u64, now: bool },
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
    /// How many more microthreads it may run.
    pub(super) free: u32,
    /// Its live microthreads per worker.
    pub(super) load: f32,
}

/// A request on a node's spawn subject (`weft.<cluster>.spawn.<node id>`): start a
/// microthread of `program` there, as a child of a microthread of `parent`'s.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SpawnRequest {
    pub(super) version: u8,
    /// The parent's node.
    pub(super) parent: String,
    /// The parent node's id of this spawn: its frames name it.
    pub(super) ticket: u64,
    /// The program's content hash: the node must run the same.
    pub(super) program: String,
    pub(super) trampoline: u32,
    pub(super) function: u32,
    pub(super) name: Option<String>,
    /// The argument, and the senders it carries.
    pub(super) bytes: Vec<u8>,
    pub(super) ends: Vec<EndRef>,
}

/// The answer to a [`SpawnRequest`].
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum SpawnReply {
    /// Started: the microthread's id in the run there.
    Started { id: u64 },
    /// Not started: why.
    Refused(Refusal),
}

/// Why a node refused a spawn (or why it could not be asked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Refusal {
    /// It runs its maximum of live microthreads (the payload: that maximum).
    LimitReached(u32),
    /// It does not run this program (the payload says so, naming both).
    NoSuchProgram(String),
    /// The program exports no entry to start a function at.
    NotSpawnable,
    /// The node is not live, or did not answer (the payload says which).
    NoSuchNode(String),
    /// The argument carries an endpoint that cannot move to another node.
    CannotMove(String),
    /// The argument is larger than a link between nodes carries (the payload:
    /// that limit, in bytes).
    TooLarge(u32),
}

/// Encode `value` for the wire.
pub(super) fn encode<T: Serialize>(value: &T) -> bytes::Bytes {
    bytes::Bytes::from(postcard::to_allocvec(value).expect("weft's own frames always serialize"))
}

/// Decode a frame from the wire; why not, if it cannot be.
pub(super) fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    postcard::from_bytes(bytes).map_err(|e| format!("a malformed frame ({} bytes): {e}", bytes.len()))
}

//! Channels, the WIT `channel` interface (but `select`, which has a module of its
//! own): typed, multi-producer multi-consumer, rendezvous (capacity 0) or buffered.
//! The channel lives on the host; each of its two *ends*, a [`Sender`] or a
//! [`Receiver`], holds a handle to it, can be cloned, and moves to another
//! microthread inside a value it sends or spawns with.
//!
//! Here: opening a channel ([`channel`], [`try_channel`]) and taking the channels the
//! application hands to the run ([`host_receiver`], [`host_sender`]: "host" in their
//! names says where the channel comes from, the application that embeds the host).
//! In files of their own: each end (`sender`, `receiver`), what both ends share
//! (`end`: id, clone, debug, travelling in a message), the errors (`error`) and the
//! timers (`timer`). A channel is *closed* for its receivers once every sender is
//! gone and the buffer is drained, and for its senders once every receiver is gone.
//! A *producer* is a microthread that holds a sender of the channel: when one fails,
//! the receivers learn it (`RecvError::Failed`, "the producer failed").
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

mod end;
mod error;
mod receiver;
mod sender;
mod timer;

pub use error::{
    ChannelError, RecvError, RecvTimeoutError, SendError, SendRecvError, SendRecvTimeoutError,
    SendTimeoutError, TryRecvError, TrySendError,
};
pub use receiver::Receiver;
pub(crate) use receiver::decode_in;
pub use sender::{Sender, call};
pub use timer::{after, tick, try_after, try_tick};

use crate::bindings::channel as wit;
use crate::entry::install_panic_hook;

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
        Ok((tx, rx)) => Ok((Sender::new(tx), Receiver::new(rx))),
        Err(wit::OpenError::CapacityTooLarge(max)) => Err(ChannelError::CapacityTooLarge { capacity, max }),
        Err(wit::OpenError::TooManyChannels(max)) => Err(ChannelError::TooManyChannels { max }),
    }
}

/// The receiving end of a channel that the embedding application handed to this
/// run under `name` (`RunOptions::receiver` on the host), if it did. The first call
/// takes it; later calls get `None`. It can be cloned and moved to other
/// microthreads like any receiver. `T` must be what the application sends: a
/// message that is not a `T` fails the microthread that receives it.
pub fn host_receiver<T>(name: &str) -> Option<Receiver<T>> {
    install_panic_hook();
    wit::host_receiver(name).map(Receiver::new)
}

/// The sending end of a channel that the embedding application handed to this run
/// under `name` (`RunOptions::sender` on the host), if it did. See
/// [`host_receiver`].
pub fn host_sender<T>(name: &str) -> Option<Sender<T>> {
    install_panic_hook();
    wit::host_sender(name).map(Sender::new)
}

//! The registry of named endpoints, the WIT `registry` interface: one per run, a
//! name → a [`Sender`]. A server registers the sender of its requests under a
//! name ([`register`]); any microthread of the run finds it there ([`whereis`]),
//! without being handed it at spawn. A name is *released* when the microthread
//! that registered it finishes, however it finishes, so that a restarted server
//! registers the same name again and is found under it; registering a name that a
//! live microthread holds is an error ([`RegisterError::Taken`]).
//!
//! Each registration records the type the channel carries (its
//! `std::any::type_name`, the *fingerprint*). Asking for a `Sender` of another
//! type is a programming error, like a failed downcast: [`whereis`] panics with a
//! message that names both types, never hands out a sender whose messages the
//! other side cannot read. Within a program types compare exactly; the embedding
//! application's `RunHandle::whereis` compares its own copy of a type by name
//! with every path cut to its last segment (`my_guest::proto::Job` is `Job`).
//!
//! The registry holds a sender of the channel for as long as the registrant
//! lives, so the channel's receivers do not see it close before then: a server
//! that registers its own channel stops on a request, not on the channel's end.
//!
//! ```no_run
//! use weft_guest::{channel, register, spawn, whereis, Sender};
//!
//! fn server(ready: Sender<()>) {
//!     let (tx, requests) = channel::<u64>(16);
//!     register("server", &tx).expect("the name is free");
//!     drop(tx);
//!     ready.send(()).unwrap();
//!     for n in requests {
//!         if n == 0 {
//!             return; // a request to stop: the name is released
//!         }
//!         println!("request {n}");
//!     }
//! }
//!
//! let (ready, is_ready) = channel::<()>(1);
//! let server = spawn(server, ready);
//! is_ready.recv().unwrap();
//! let found = whereis::<u64>("server").expect("registered");
//! found.send(7).unwrap();
//! found.send(0).unwrap();
//! server.join().unwrap();
//! assert!(whereis::<u64>("server").is_none());
//! ```

use std::fmt;

use crate::bindings::registry as wit;
use crate::channel::Sender;
use crate::entry::install_panic_hook;

/// Why a name could not be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterError {
    /// A live microthread registered the name: it is released when that one
    /// finishes.
    Taken {
        /// The id of the microthread that holds the name.
        by: u64,
    },
    /// The name is longer than the host keeps.
    NameTooLong {
        /// The host's limit, in bytes.
        max: u32,
    },
    /// The type's name (the fingerprint) is longer than the host keeps.
    TypeNameTooLong {
        /// The host's limit, in bytes.
        max: u32,
    },
    /// The program's microthreads already hold the host's maximum of handles:
    /// each registration holds one.
    TooManyHandles {
        /// The host's limit.
        max: u32,
    },
    /// A microthread on another node of the cluster registered the name (in a
    /// cluster, names are the cluster's): it is released when that one finishes,
    /// or when its node goes down.
    TakenOn {
        /// The id of the node where it is registered.
        node: String,
    },
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::Taken { by } => write!(
                f,
                "the name is registered by microthread {by}, which is still live: it is released \
                 when that one finishes"
            ),
            RegisterError::NameTooLong { max } => {
                write!(f, "the name is longer than the host's limit of {max} bytes")
            }
            RegisterError::TypeNameTooLong { max } => write!(
                f,
                "the name of the channel's type is longer than the host's limit of {max} bytes: \
                 register a channel of a type with a shorter name"
            ),
            RegisterError::TakenOn { node } => write!(
                f,
                "the name is registered on node {node} of the cluster: it is released when the \
                 microthread that holds it finishes, or when that node goes down"
            ),
            RegisterError::TooManyHandles { max } => write!(
                f,
                "the program's microthreads already hold the host's maximum of {max} handles \
                 (each registration holds one): drop some, or raise the host's max_run_handles"
            ),
        }
    }
}

impl std::error::Error for RegisterError {}

/// Register (another sender of) `sender`'s channel under `name` in the run's
/// registry, until this microthread finishes, however it finishes: then the name
/// is released, and another microthread (a restarted server, say) may register it
/// again. Any microthread of the run finds it with [`whereis`], and the
/// application with `RunHandle::whereis`.
///
/// The registry holds that sender while this microthread lives, so the channel's
/// receivers do not see it close before then: a server that registers its own
/// channel stops on a request, not on the channel's end. Each registration holds
/// one of the run's handles.
///
/// A name that a live microthread holds is refused ([`RegisterError::Taken`]), as
/// is a name longer than the host keeps (256 bytes).
///
/// In a cluster (`weft run --cluster`), the name is the cluster's: [`whereis`] on
/// any node finds it (a sender across nodes), and another node's registration of
/// it is refused ([`RegisterError::TakenOn`]) until this microthread ends or its
/// node goes down.
pub fn register<T>(name: &str, sender: &Sender<T>) -> Result<(), RegisterError> {
    install_panic_hook();
    wit::register(name, std::any::type_name::<T>(), &sender.inner).map_err(|e| match e {
        wit::RegisterError::Taken(by) => RegisterError::Taken { by },
        wit::RegisterError::NameTooLong(max) => RegisterError::NameTooLong { max },
        wit::RegisterError::FingerprintTooLong(max) => RegisterError::TypeNameTooLong { max },
        wit::RegisterError::TooManyHandles(max) => RegisterError::TooManyHandles { max },
        wit::RegisterError::TakenOn(node) => RegisterError::TakenOn { node },
    })
}

/// The sender registered under `name` (another sender of its channel, for this
/// microthread), or `None` if no live microthread registered it. In a cluster,
/// a name registered on another node is found too (a sender across nodes); one
/// not found here costs a request to the cluster.
///
/// The registration recorded `std::any::type_name` of its `T`; within a program,
/// the types compare exactly. (The embedding application's `RunHandle::whereis`,
/// whose copy of the type lives in another crate, compares them by name with
/// every path cut to its last segment: `my_guest::proto::Job` is its `Job`.)
///
/// # Panics
/// If the name is registered with a sender of another type than `T`: the message
/// names both types.
#[track_caller]
pub fn whereis<T>(name: &str) -> Option<Sender<T>> {
    install_panic_hook();
    let (inner, fingerprint) = wit::whereis(name)?;
    let asked = std::any::type_name::<T>();
    if fingerprint != asked {
        // The handle goes back before the panic; nothing else was done with it.
        drop(inner);
        panic!(
            "weft: whereis({name:?}) asked for a Sender<{asked}>, but the name is registered \
             with a Sender<{fingerprint}>"
        );
    }
    Some(Sender::new(inner))
}

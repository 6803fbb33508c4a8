//! The run's registry of named endpoints: a name → the sender a microthread
//! registered under it, the fingerprint of the type its channel carries, and the
//! id of that microthread (its **registrant**). A name is **released** when its
//! registrant ends, however it ends, so that a restarted server can register it
//! again and be found under it.
//!
//! The registry's bounds are the run's: a name is at most
//! [`MAX_NAME`](crate::limits::MAX_NAME) bytes, a fingerprint at most
//! [`MAX_FINGERPRINT`](crate::limits::MAX_FINGERPRINT), and each registration
//! holds one of the run's handles (`RunOptions::max_run_handles`) until it is
//! released, as the sender it keeps is one more handle.
//!
//! Fingerprints are the guest SDK's `std::any::type_name`. Guests of a run are the
//! same program, so a guest's lookup compares them exactly (in the guest SDK); the
//! application's copy of a type lives in another crate, so
//! [`RunHandle::whereis`](super::RunHandle::whereis) compares them by
//! [`short_type_name`]: every path cut to its last segment.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::channel::SenderHandle;
use crate::limits::{MAX_FINGERPRINT, MAX_NAME, Quota, QuotaUnit};
use crate::sync::Unpoisoned;

/// Why a name could not be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RegisterError {
    /// Microthread `by` (live) registered the name.
    Taken { by: u64 },
    /// The name is longer than [`MAX_NAME`].
    NameTooLong,
    /// The fingerprint is longer than [`MAX_FINGERPRINT`].
    FingerprintTooLong,
    /// The run's handles are all taken (the payload is their maximum).
    TooManyHandles(u32),
}

/// The application asked [`RunHandle::whereis`](super::RunHandle::whereis) for a
/// sender of one type, and the name is registered with a sender of another.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the endpoint registered as {name:?} is a sender of `{registered}`, not of `{asked}` \
     (types compare by name, every path cut to its last segment: `{registered_short}` and \
     `{asked_short}`): ask for the type the guest registered"
)]
#[non_exhaustive]
pub struct WrongType {
    /// The name looked up.
    pub name: String,
    /// The type the guest registered the sender with (its full name, in the guest).
    pub registered: String,
    /// The type the application asked for (its full name, in the application).
    pub asked: String,
    registered_short: String,
    asked_short: String,
}

impl WrongType {
    pub(crate) fn new(name: &str, registered: &str, asked: &str) -> Self {
        WrongType {
            name: name.to_string(),
            registered: registered.to_string(),
            asked: asked.to_string(),
            registered_short: short_type_name(registered),
            asked_short: short_type_name(asked),
        }
    }
}

/// A registered sender, as a lookup finds it.
pub(crate) struct Found {
    /// Another sender of the registered channel (held by nobody yet).
    pub(crate) sender: SenderHandle,
    pub(crate) fingerprint: Arc<str>,
}

/// One registration: the sender it keeps, and the run handle that counts it.
struct Entry {
    sender: SenderHandle,
    fingerprint: Arc<str>,
    registrant: u64,
    _handle: QuotaUnit,
    /// What else holds the name while it is registered (its publication to the
    /// cluster, withdrawn when dropped).
    _also: Option<Box<dyn Send + Sync>>,
}

#[derive(Default)]
struct Names {
    by_name: HashMap<Arc<str>, Entry>,
    /// The names each registrant holds, to release them when it ends.
    by_registrant: HashMap<u64, Vec<Arc<str>>>,
}

/// The run's registry of named endpoints.
#[derive(Default)]
pub(crate) struct Registry {
    names: Mutex<Names>,
    /// How many names are registered: a microthread ending in a run that has none
    /// does not take the lock.
    len: AtomicUsize,
}

impl Registry {
    /// Register `sender` under `name` for microthread `registrant`, holding a unit
    /// of the run's `handles` while it is registered.
    pub(crate) fn register(
        &self,
        name: &str,
        fingerprint: &str,
        sender: SenderHandle,
        registrant: u64,
        handles: &Arc<Quota>,
    ) -> Result<(), RegisterError> {
        if name.len() > MAX_NAME {
            return Err(RegisterError::NameTooLong);
        }
        if fingerprint.len() > MAX_FINGERPRINT {
            return Err(RegisterError::FingerprintTooLong);
        }
        let mut names = self.names.locked();
        if let Some(e) = names.by_name.get(name) {
            return Err(RegisterError::Taken { by: e.registrant });
        }
        let Some(handle) = handles.unit() else {
            return Err(RegisterError::TooManyHandles(handles.max()));
        };
        let name: Arc<str> = Arc::from(name);
        let entry = Entry {
            sender,
            fingerprint: Arc::from(fingerprint),
            registrant,
            _handle: handle,
            _also: None,
        };
        names.by_name.insert(name.clone(), entry);
        names.by_registrant.entry(registrant).or_default().push(name);
        self.len.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// The sender registered under `name` (another sender of its channel), and its
    /// fingerprint.
    pub(crate) fn whereis(&self, name: &str) -> Option<Found> {
        let names = self.names.locked();
        let entry = names.by_name.get(name)?;
        Some(Found {
            sender: entry.sender.clone_for(None),
            fingerprint: entry.fingerprint.clone(),
        })
    }

    /// Release every name microthread `registrant` registered (it ended).
    /// Keep `also` with the registration of `name` by `registrant` while it lasts
    /// (dropped at once if the name is no longer registered so).
    pub(crate) fn keep(&self, name: &str, registrant: u64, also: Box<dyn Send + Sync>) {
        let mut names = self.names.locked();
        match names.by_name.get_mut(name) {
            Some(e) if e.registrant == registrant => e._also = Some(also),
            _ => {
                drop(names);
                drop(also);
            }
        }
    }

    /// Undo `registrant`'s registration of `name` (the cluster refused it).
    pub(crate) fn unregister(&self, name: &str, registrant: u64) {
        let removed = {
            let mut names = self.names.locked();
            if names.by_name.get(name).is_none_or(|e| e.registrant != registrant) {
                return;
            }
            if let Some(held) = names.by_registrant.get_mut(&registrant) {
                held.retain(|n| &**n != name);
            }
            names.by_name.remove(name)
        };
        if removed.is_some() {
            self.len.fetch_sub(1, Ordering::AcqRel);
        }
        drop(removed);
    }

    pub(crate) fn release(&self, registrant: u64) {
        if self.len.load(Ordering::Acquire) == 0 {
            return;
        }
        let released: Vec<Entry> = {
            let mut names = self.names.locked();
            let Some(held) = names.by_registrant.remove(&registrant) else {
                return;
            };
            held.iter().filter_map(|n| names.by_name.remove(n)).collect()
        };
        self.len.fetch_sub(released.len(), Ordering::AcqRel);
        // Dropped unlocked: dropping a sender may close its channel, and what that
        // wakes may look names up.
        drop(released);
    }
}

/// A type's name as the application's `whereis` compares it with a guest's
/// fingerprint: every path in it cut to its last segment, so that the same type
/// defined in two crates (the guest's and the application's copy of it) compares
/// equal. `alloc::vec::Vec<guest::proto::Job>` is `Vec<Job>`, `(u64,
/// alloc::string::String)` is `(u64, String)`.
pub(crate) fn short_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    // Where the segment being read began in `out`: a `::` cuts what came before.
    let mut segment = 0;
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            out.truncate(segment);
        } else if c.is_alphanumeric() || c == '_' {
            out.push(c);
        } else {
            out.push(c);
            segment = out.len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::short_type_name;

    #[test]
    fn a_short_type_name_keeps_the_last_segment_of_each_path() {
        assert_eq!(short_type_name("u64"), "u64");
        assert_eq!(short_type_name("alloc::string::String"), "String");
        assert_eq!(short_type_name("registry::Job"), "Job");
        assert_eq!(short_type_name("alloc::vec::Vec<guest::proto::Job>"), "Vec<Job>");
        assert_eq!(
            short_type_name("(u64, alloc::string::String, core::option::Option<a::B>)"),
            "(u64, String, Option<B>)"
        );
        assert_eq!(short_type_name("[a::b::C; 4]"), "[C; 4]");
        assert_eq!(
            short_type_name("std::collections::hash::map::HashMap<x::K, y::V>"),
            "HashMap<K, V>"
        );
        assert_ne!(short_type_name("a::Job"), short_type_name("a::Task"));
    }
}

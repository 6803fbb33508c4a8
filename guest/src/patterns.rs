//! Patterns built from spawn and channels: [`generate`] (a producer microthread read
//! as a lazy stream) and [`parallel_map`] (a bounded fan-out whose results come back
//! in order).

use std::collections::VecDeque;
use std::fmt;

use serde::{Serialize, de::DeserializeOwned};

use crate::channel::{Receiver, Sender, channel};
use crate::thread::{Builder, JoinError, SpawnError};

/// Run `producer` in a new microthread with the sending end of a rendezvous channel,
/// and return the receiving end: a lazy stream of what it sends. The stream ends when
/// the producer returns; if the producer fails, the reader's `recv` returns
/// [`RecvError::Failed`](crate::RecvError::Failed) with its failure (and iterating panics with it).
///
/// The producer is a child of the caller: the caller does not finish before it.
/// Errors if the host refuses to start it (the program already has its maximum of
/// live microthreads).
pub fn generate<T>(producer: fn(Sender<T>)) -> Result<Receiver<T>, SpawnError>
where
    T: Serialize + DeserializeOwned,
{
    let (tx, rx) = channel(0);
    let _child = Builder::new().spawn(producer, tx)?;
    Ok(rx)
}

/// Compute `f(item)` for every item, each in its own microthread, with at most
/// `concurrency` running at once; the results come back in the order of the items.
///
/// If a call fails (or the caller is cancelled), or the host refuses to start one
/// (the program already has its maximum of live microthreads), no further calls
/// are started; the calls already running are drained (joined, their results
/// discarded), and the first error is returned.
pub fn parallel_map<T, R>(
    f: fn(T) -> R,
    items: impl IntoIterator<Item = T>,
    concurrency: usize,
) -> Result<Vec<R>, MapError>
where
    T: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    let mut items = items.into_iter();
    let mut running = VecDeque::new();
    let mut results = Vec::new();
    let mut failure = None;
    loop {
        while failure.is_none() && running.len() < concurrency.max(1) {
            match items.next() {
                Some(item) => match Builder::new().spawn(f, item) {
                    Ok(handle) => running.push_back(handle),
                    Err(e) => failure = Some(MapError::Spawn(e)),
                },
                None => break,
            }
        }
        let Some(handle) = running.pop_front() else {
            break;
        };
        match handle.join() {
            Ok(r) if failure.is_none() => results.push(r),
            Ok(_) => {}
            Err(e) => {
                failure.get_or_insert(MapError::Failed(e));
            }
        }
    }
    match failure {
        Some(f) => Err(f),
        None => Ok(results),
    }
}

/// Why [`parallel_map`] returned no results.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MapError {
    /// A call could not be started: the host refused the spawn.
    Spawn(SpawnError),
    /// A call failed, or the caller was cancelled while it waited.
    Failed(JoinError),
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::Spawn(e) => e.fmt(f),
            MapError::Failed(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for MapError {}

//! Who is in the cluster: the nodes heard from (by heartbeat or any frame) and
//! when, the nodes declared down (an incarnation declared down stays down: its
//! later frames are answered with `Forgotten`), and the silence that declares one
//! down.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::Unpoisoned;

/// A live node of the cluster ([`Cluster::nodes`](super::Cluster::nodes)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NodeInfo {
    /// Its id: `name.incarnation`.
    pub id: String,
    /// Its name (the id without the incarnation).
    pub name: String,
    /// How long ago it was last heard from (`None` for this node).
    pub last_heard: Option<Duration>,
    /// How many more microthreads it may run, as of its last heartbeat (this
    /// node's: now).
    pub free: u32,
    /// Its live microthreads per worker, as of its last heartbeat.
    pub load: f32,
}

/// What hearing from a node found.
pub(super) enum Heard {
    /// It is live.
    Live,
    /// It was declared down: it must be told.
    Dead,
}

pub(super) struct Members {
    timeout: Duration,
    live: Mutex<HashMap<String, Seen>>,
    dead: Mutex<HashSet<String>>,
    /// When each node declared down that spoke again was last told so.
    told: Mutex<HashMap<String, Instant>>,
}

/// When a live node was last heard from, and what its last heartbeat said of its
/// room.
struct Seen {
    at: Instant,
    free: u32,
    load: f32,
}

/// How often a node declared down that keeps speaking is told so, at most.
const TELL_EVERY: Duration = Duration::from_millis(500);

/// Whether a node declared down is to be told now, and whether for the first time.
pub(super) enum Tell {
    First,
    Again,
    NotYet,
}

impl Members {
    pub(super) fn new(timeout: Duration) -> Self {
        Members {
            timeout,
            live: Mutex::new(HashMap::new()),
            dead: Mutex::new(HashSet::new()),
            told: Mutex::new(HashMap::new()),
        }
    }

    /// Node `id` was heard from now.
    pub(super) fn heard(&self, id: &str) -> Heard {
        if self.is_dead(id) {
            return Heard::Dead;
        }
        let mut live = self.live.locked();
        match live.get_mut(id) {
            Some(seen) => seen.at = Instant::now(),
            None => {
                // Room unknown until its first heartbeat: none, so that spawns
                // without a node go where the room is known.
                let seen = Seen {
                    at: Instant::now(),
                    free: 0,
                    load: f32::MAX,
                };
                live.insert(id.to_string(), seen);
            }
        }
        Heard::Live
    }

    /// Node `id`'s heartbeat came, saying how much room it has.
    pub(super) fn beat(&self, id: &str, free: u32, load: f32) -> Heard {
        let heard = self.heard(id);
        if let Some(seen) = self.live.locked().get_mut(id) {
            seen.free = free;
            seen.load = load;
        }
        heard
    }

    /// Whether node `id` is live now.
    pub(super) fn is_live(&self, id: &str) -> bool {
        self.live.locked().contains_key(id)
    }

    pub(super) fn is_dead(&self, id: &str) -> bool {
        self.dead.locked().contains(id)
    }

    /// Node `id`, declared down, spoke again: whether to tell it (each
    /// [`TELL_EVERY`] at most: a frame may be lost, but a flood of them is not
    /// answered frame by frame).
    pub(super) fn tell(&self, id: &str) -> Tell {
        let mut told = self.told.locked();
        match told.get_mut(id) {
            None => {
                told.insert(id.to_string(), Instant::now());
                Tell::First
            }
            Some(at) if at.elapsed() >= TELL_EVERY => {
                *at = Instant::now();
                Tell::Again
            }
            Some(_) => Tell::NotYet,
        }
    }

    /// Node `id` is down, for good.
    pub(super) fn declare_dead(&self, id: &str) {
        self.live.locked().remove(id);
        self.dead.locked().insert(id.to_string());
    }

    /// The nodes silent past the timeout, and for how long (they are not live any
    /// more; the caller declares them down).
    pub(super) fn expired(&self) -> Vec<(String, Duration)> {
        let live = self.live.locked();
        live.iter()
            .map(|(id, seen)| (id.clone(), seen.at.elapsed()))
            .filter(|(_, silent)| *silent > self.timeout)
            .collect()
    }

    /// The live nodes and this one (`me`, with its room now), by id.
    pub(super) fn live(&self, me: &str, (free, load): (u32, f32)) -> Vec<NodeInfo> {
        let mut all: Vec<NodeInfo> = self
            .live
            .locked()
            .iter()
            .map(|(id, seen)| info(id, Some(seen.at.elapsed()), seen.free, seen.load))
            .collect();
        all.push(info(me, None, free, load));
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }
}

fn info(id: &str, last_heard: Option<Duration>, free: u32, load: f32) -> NodeInfo {
    NodeInfo {
        id: id.to_string(),
        name: id.rsplit_once('.').map_or(id, |(name, _)| name).to_string(),
        last_heard,
        free,
        load,
    }
}

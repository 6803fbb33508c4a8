//! What the application sees of a run while it runs: what each microthread is doing
//! ([`MicrothreadInfo`]) and the run's counters ([`RunStats`]), plain data read
//! through a [`RunHandle`](super::RunHandle) or a [`RunView`](super::RunView).

use std::time::{Duration, Instant};

/// What one live microthread is doing, and what it has done.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MicrothreadInfo {
    /// Its id (`main` is 0).
    pub id: u64,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// Its parent's id; none for `main` and detached microthreads.
    pub parent: Option<u64>,
    /// What it is doing.
    pub state: MicrothreadState,
    /// Fuel it has consumed, as of its last host call or fuel yield; none when the
    /// runtime does not meter fuel.
    pub fuel: Option<u64>,
    /// How long it has lived.
    pub age: Duration,
    /// Messages it has sent.
    pub messages_sent: u64,
}

/// What a live microthread is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MicrothreadState {
    /// Its code runs on a worker now.
    Running,
    /// It can run and waits for a worker (or it waits in a WASI call: a read of
    /// stdin or of a file).
    Ready,
    /// Blocked receiving on a channel.
    Receiving {
        /// The channel's id.
        channel: u64,
    },
    /// Blocked sending on a channel.
    Sending {
        /// The channel's id.
        channel: u64,
    },
    /// Blocked in a select over channels.
    Selecting {
        /// The channels' ids.
        channels: Vec<u64>,
    },
    /// Blocked joining a microthread.
    Joining {
        /// The joined microthread's id.
        id: u64,
    },
    /// Its code has ended; it waits for a child to finish (prejoin).
    AwaitingChild {
        /// The child's id.
        id: u64,
    },
    /// Asleep.
    Sleeping {
        /// When it wakes (in a deterministic run, on the run's virtual clock).
        until: Instant,
    },
    /// Blocked on a socket.
    Socket {
        /// What it waits for: `accepting on 127.0.0.1:8080`, `reading from
        /// 10.0.0.2:5100`, `writing to …`, `connecting to …`.
        what: String,
    },
    /// It runs on another node of the cluster (spawned there with `spawn_on`):
    /// this is its stand-in, which its parent joins, cancels and monitors.
    Remote {
        /// That node's id.
        node: String,
    },
    /// A node's run without `main` ([`Program::start_node`](crate::Program::start_node),
    /// `weft node`): it waits for spawns from the other nodes.
    Serving,
}

impl MicrothreadState {
    /// Every state's [`label`](MicrothreadState::label).
    pub const LABELS: [&'static str; 11] = [
        "running",
        "ready",
        "receiving",
        "sending",
        "selecting",
        "joining",
        "awaiting_child",
        "sleeping",
        "socket",
        "remote",
        "serving",
    ];

    /// The state in one word, without what it waits on: `receiving`,
    /// `awaiting_child`, … (one of [`LABELS`](MicrothreadState::LABELS); the
    /// metrics' `state` label).
    pub fn label(&self) -> &'static str {
        match self {
            MicrothreadState::Running => "running",
            MicrothreadState::Ready => "ready",
            MicrothreadState::Receiving { .. } => "receiving",
            MicrothreadState::Sending { .. } => "sending",
            MicrothreadState::Selecting { .. } => "selecting",
            MicrothreadState::Joining { .. } => "joining",
            MicrothreadState::AwaitingChild { .. } => "awaiting_child",
            MicrothreadState::Sleeping { .. } => "sleeping",
            MicrothreadState::Socket { .. } => "socket",
            MicrothreadState::Remote { .. } => "remote",
            MicrothreadState::Serving => "serving",
        }
    }
}

impl std::fmt::Display for MicrothreadState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MicrothreadState::Running => f.write_str("running"),
            MicrothreadState::Ready => f.write_str("ready"),
            MicrothreadState::Receiving { channel } => write!(f, "receiving on {}", Channel(*channel)),
            MicrothreadState::Sending { channel } => write!(f, "sending on {}", Channel(*channel)),
            MicrothreadState::Selecting { channels } => {
                // `select over channels 1, 3` (`…, host channel 2` for the application's).
                let names: Vec<String> = channels
                    .iter()
                    .map(|&c| match crate::channel::is_host_channel(c) {
                        true => Channel(c).to_string(),
                        false => c.to_string(),
                    })
                    .collect();
                write!(f, "select over channels {}", names.join(", "))
            }
            MicrothreadState::Joining { id } => write!(f, "joining microthread {id}"),
            MicrothreadState::AwaitingChild { id } => write!(f, "awaiting child {id}"),
            MicrothreadState::Socket { what } => f.write_str(what),
            MicrothreadState::Remote { node } => write!(f, "running on node {node}"),
            MicrothreadState::Serving => f.write_str("serving spawns from the cluster"),
            MicrothreadState::Sleeping { until } => {
                write!(
                    f,
                    "sleeping, {:?} left",
                    until.saturating_duration_since(Instant::now())
                )
            }
        }
    }
}

/// A channel, by id: `channel 3` (the run's own), or `host channel 2` (one the
/// application made with [`weft::channel`](crate::channel()), whose ids are
/// `2^62 + n`).
struct Channel(u64);

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if crate::channel::is_host_channel(self.0) {
            write!(f, "host channel {}", self.0 - crate::channel::HOST_CHANNEL_IDS)
        } else {
            write!(f, "channel {}", self.0)
        }
    }
}

/// An open channel of a run, as its live view shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelInfo {
    /// Its id (what [`MicrothreadState::Receiving`] and the others name).
    pub id: u64,
    /// Messages it buffers at most (0: a rendezvous).
    pub capacity: usize,
    /// Messages it buffers now.
    pub queued: usize,
    /// Its senders, wherever they are (in microthreads, in messages, in the
    /// application).
    pub senders: usize,
    /// Its receivers, wherever they are.
    pub receivers: usize,
}

impl From<crate::channel::ChannelState> for ChannelInfo {
    fn from(c: crate::channel::ChannelState) -> Self {
        ChannelInfo {
            id: c.id,
            capacity: c.capacity,
            queued: c.queued,
            senders: c.senders,
            receivers: c.receivers,
        }
    }
}

/// A run's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunStats {
    /// Microthreads started, `main` included.
    pub spawned: u64,
    /// Microthreads alive now.
    pub live: u32,
    /// The most microthreads alive at once.
    pub peak_live: u32,
    /// Microthreads that have ended (failed ones included).
    pub finished: u64,
    /// Microthreads that failed (cancelled ones included).
    pub failed: u64,
    /// Messages sent on channels by the run's microthreads.
    pub messages_sent: u64,
    /// Checks the deadlock detector has made of the run (one about every 100 ms
    /// while it runs; each either found a microthread that can go on, or ended
    /// the run as deadlocked).
    pub deadlock_checks: u64,
    /// Restarts of supervised microthreads: each time a supervisor (the guest
    /// SDK's `weft_guest::supervisor`) spawned a child again in place of one that
    /// ended.
    pub restarts: u64,
    /// Microthreads spawned on other nodes of the cluster (`spawn_on`): each has
    /// a stand-in here, counted in `spawned` too.
    pub spawned_remote: u64,
    /// Microthreads started here for other nodes' spawns (counted in `spawned`
    /// too).
    pub started_for_others: u64,
    /// Spawned microthreads that started in a fresh instance an idle worker had
    /// made ahead of need, and so skipped their instantiation (counted in
    /// `spawned` too). Depends on how often a worker is idle: not in the
    /// summary `weft run --stats` prints.
    pub started_prepared: u64,
    /// HTTP requests served (`weft serve`): handed to the handler, and by how
    /// they ended: answered by it, failed (500), timed out (504); and refused
    /// at once (503).
    pub requests_started: u64,
    /// See `requests_started`.
    pub requests_answered: u64,
    /// See `requests_started`.
    pub requests_failed: u64,
    /// See `requests_started`.
    pub requests_timed_out: u64,
    /// See `requests_started`.
    pub requests_refused: u64,
}

impl std::fmt::Display for RunStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "spawned {}, live {}, peak live {}, finished {}, failed {}, messages sent {}, restarts {}",
            self.spawned,
            self.live,
            self.peak_live,
            self.finished,
            self.failed,
            self.messages_sent,
            self.restarts
        )?;
        if self.spawned_remote > 0 || self.started_for_others > 0 {
            write!(
                f,
                ", spawned on other nodes {}, started for other nodes {}",
                self.spawned_remote, self.started_for_others
            )?;
        }
        if self.requests_started > 0 || self.requests_refused > 0 {
            write!(
                f,
                ", requests {} (answered {}, failed {}, timed out {}, refused {})",
                self.requests_started,
                self.requests_answered,
                self.requests_failed,
                self.requests_timed_out,
                self.requests_refused
            )?;
        }
        Ok(())
    }
}

//! Supervisors, as in Erlang/OTP: a microthread that starts children, watches them
//! ([`monitor`](crate::monitor)) and restarts the ones that end, fresh (a restarted
//! child is a new instance with new memory: nothing of the crashed one survives),
//! within limits.
//!
//! - A [`Supervisor`] has a name, a [`Strategy`] (which children restart when one
//!   ends: [`OneForOne`](Strategy::OneForOne) only it,
//!   [`OneForAll`](Strategy::OneForAll) all of them,
//!   [`RestForOne`](Strategy::RestForOne) it and those started after it), an
//!   intensity (at most `max_restarts` restarts within `within`, 3 in 5 s unless
//!   set) and its children, started in the order given.
//! - A [`Child`] is a name, a function and its argument, which is encoded once and
//!   given afresh at each start (its endpoints cloned, as `Clone` clones them); its
//!   [`Restart`] says when it restarts: [`Permanent`](Restart::Permanent) always,
//!   [`Transient`](Restart::Transient) only after a failure,
//!   [`Temporary`](Restart::Temporary) never; its shutdown time is the grace its
//!   cancellation gets before it is stopped where it is (5 s unless set).
//! - A child runs on this node unless [`Child::node`] names another node of the
//!   cluster (or [`Node::any`]); it restarts there. A child whose node went down
//!   (its failure is of kind [`NodeDown`](crate::FailureKind::NodeDown)), or that
//!   its node refuses as gone ([`SpawnError::NoSuchNode`]), restarts on
//!   [`Node::any`] from then on, wherever it was pinned: a node that comes back is
//!   a new incarnation, with a new id. Such a restart counts in the intensity as
//!   any other.
//! - [`Supervisor::start`] runs the supervisor as a microthread, a child of the
//!   caller. Its [`join`](SupervisorHandle::join) returns once no child is left to
//!   run (every child has ended and is not to restart), or fails with
//!   [`FailureKind::RestartIntensity`](crate::FailureKind::RestartIntensity), whose
//!   message names the child and lists the recent failures (the latest 32), when a
//!   restart would exceed the intensity: the supervisor then stops its children and
//!   gives up.
//! - Supervisors nest: [`Child::supervisor`] makes a supervisor a child of another,
//!   so a supervisor that gives up is a failed child one level up, which restarts
//!   it or, past its own intensity, gives up in turn.
//! - Children stop in reverse start order, each within its shutdown time: when a
//!   strategy restarts siblings, when the supervisor gives up, at
//!   [`SupervisorHandle::shutdown`] (a supervisor's supervisor stops it so), and
//!   when the supervisor is cancelled (by its handle, or its parent's cancellation,
//!   or the end of the program, Ctrl-C included): a supervisor
//!   [owns its shutdown](crate::own_shutdown), so a cancellation stops at it, and
//!   it stops its children in order within its own grace period (past which
//!   everything under it is stopped where it is).
//!
//! Each restart counts in the host's `restarts` statistic (`weft run --stats`).
//!
//! ```no_run
//! use std::time::Duration;
//! use weft_guest::supervisor::{Child, Restart, Strategy, Supervisor};
//!
//! fn worker(id: u32) {
//!     // … serve, and panic on a bad request: the supervisor starts a fresh one.
//! }
//!
//! let handle = Supervisor::new("workers")
//!     .strategy(Strategy::OneForOne)
//!     .intensity(5, Duration::from_secs(10))
//!     .child(Child::new("worker-1", worker, 1))
//!     .child(Child::new("worker-2", worker, 2).restart(Restart::Transient))
//!     .start()
//!     .unwrap();
//! for child in handle.which_children().unwrap() {
//!     println!("{} is microthread {:?}, {:?}, restarted {} times", child.name, child.id, child.state, child.restarts);
//! }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::bindings::thread as wit;
use crate::channel::SendError;
use crate::channel::{Receiver, Sender, channel};
use crate::entry::{Trampoline, install_panic_hook, trampoline};
use crate::failure::{Cancelled, Failure, FailureKind};
use crate::message::Encoded;
use crate::monitor::{Down, monitor};
use crate::node::Node;
use crate::select::{Select, Selected};
use crate::thread::{Builder, JoinError, JoinHandle, SpawnError, is_cancelled, own_shutdown, spawn_raw};

/// Which children a supervisor restarts when one of them ends and is to restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Strategy {
    /// Only the child that ended.
    #[default]
    OneForOne,
    /// All children: the others are stopped (in reverse start order), then all
    /// start again in order (a [`Temporary`](Restart::Temporary) one stopped so
    /// does not).
    OneForAll,
    /// The child that ended and those started after it: they are stopped (in
    /// reverse start order), then start again in order.
    RestForOne,
}

/// When a child restarts after it ends (OTP's restart types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Restart {
    /// Always, however it ended.
    #[default]
    Permanent,
    /// Only if it failed (a panic, a trap, …); a child that returns is done.
    Transient,
    /// Never: once it ends it is done.
    Temporary,
}

/// OTP's default shutdown time of a worker.
const DEFAULT_SHUTDOWN: Duration = Duration::from_secs(5);

/// A child of a [`Supervisor`]: what to run, and how to restart and stop it.
#[derive(Serialize, Deserialize)]
pub struct Child {
    name: String,
    restart: Restart,
    shutdown: Duration,
    trampoline: u32,
    function: u32,
    argument: Encoded,
    /// The node it runs on: `None` for this one.
    node: Option<Node>,
    /// A supervisor child's control channel: it is asked to stop through it.
    control: Option<Sender<Control>>,
}

impl Child {
    /// A [`Permanent`](Restart::Permanent) child named `name` that runs `f(arg)`,
    /// with a shutdown time of 5 s. `arg` is encoded now and given afresh (decoded
    /// again, its endpoints cloned) at each start: a restarted child gets the same
    /// argument as the first.
    ///
    /// # Panics
    /// If `arg` does not serialize.
    pub fn new<T, R>(name: impl Into<String>, f: fn(T) -> R, arg: T) -> Self
    where
        T: Serialize + DeserializeOwned + Clone,
        R: Serialize + DeserializeOwned,
    {
        Child::encoding(name.into(), f, &arg)
    }

    /// A child that runs `f(arg)`, `arg` encoded now.
    fn encoding<T, R>(name: String, f: fn(T) -> R, arg: &T) -> Self
    where
        T: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let argument = Encoded::new(arg)
            .unwrap_or_else(|e| panic!("the argument of child {name:?} does not serialize: {e}"));
        Child {
            name,
            restart: Restart::Permanent,
            shutdown: DEFAULT_SHUTDOWN,
            trampoline: trampoline::<T, R> as Trampoline as usize as u32,
            function: f as usize as u32,
            argument,
            node: None,
            control: None,
        }
    }

    /// A child that runs `supervisor` (named as it is): it restarts as a
    /// [`Permanent`](Restart::Permanent) child does, and its giving up is its
    /// failure, which this child's supervisor sees. It is stopped as a supervisor
    /// is, its own children first, in reverse order; its shutdown time is that of
    /// all its children together, and a second more, unless set.
    pub fn supervisor(supervisor: Supervisor) -> Self {
        let (control, requests) = channel(CONTROL_CAPACITY);
        let shutdown = supervisor
            .children
            .iter()
            .fold(Duration::from_secs(1), |sum, c| sum.saturating_add(c.shutdown));
        let name = supervisor.name.clone();
        let spec = Spec {
            supervisor,
            requests,
            nested: true,
        };
        let mut child = Child::encoding(name, run_nested, &spec);
        child.shutdown = shutdown;
        child.control = Some(control);
        child
    }

    /// When it restarts (by default [`Permanent`](Restart::Permanent)).
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// How long its cancellation's grace is when the supervisor stops it: past
    /// that, it is stopped wherever it is, its cleanup done or not.
    pub fn shutdown(mut self, shutdown: Duration) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Run it on `node` of the cluster (one of
    /// [`cluster::nodes`](crate::cluster::nodes), or [`Node::any`]) rather than on
    /// the supervisor's node: it starts and restarts there, as long as that node
    /// is live. Once that node goes down (the child fails with kind
    /// [`NodeDown`](crate::FailureKind::NodeDown), or a start is refused with
    /// [`SpawnError::NoSuchNode`]), it restarts on [`Node::any`] instead, from then
    /// on. Its argument may carry senders, but no receiver or socket: a
    /// [supervisor child](Child::supervisor), whose requests come on a receiver,
    /// runs on its supervisor's node (elsewhere its start is refused with
    /// [`SpawnError::CannotMove`]).
    pub fn node(mut self, node: Node) -> Self {
        self.node = Some(node);
        self
    }

    /// Start it: where it is to run, or on any node if `elsewhere`.
    fn spawn(&self, elsewhere: bool) -> Result<JoinHandle<Ended>, SpawnError> {
        let any = Node::any();
        let node = if elsewhere { Some(&any) } else { self.node.as_ref() };
        spawn_raw(
            self.trampoline,
            self.function,
            self.argument.message(),
            Some(&self.name),
            false,
            node,
        )
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("name", &self.name)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("node", &self.node)
            .field("supervisor", &self.control.is_some())
            .finish()
    }
}

/// A child's result, never read: the supervisor only learns how it ended.
enum Ended {}

/// A supervisor, built up, then [started](Supervisor::start) as a microthread (or
/// made a child of another with [`Child::supervisor`]).
#[derive(Debug, Serialize, Deserialize)]
pub struct Supervisor {
    name: String,
    strategy: Strategy,
    max_restarts: u32,
    within: Duration,
    children: Vec<Child>,
}

impl Supervisor {
    /// A supervisor named `name` (its microthread's name), without children,
    /// [`OneForOne`](Strategy::OneForOne), allowing 3 restarts within 5 s.
    pub fn new(name: impl Into<String>) -> Self {
        Supervisor {
            name: name.into(),
            strategy: Strategy::OneForOne,
            max_restarts: 3,
            within: Duration::from_secs(5),
            children: Vec::new(),
        }
    }

    /// Which children restart when one ends.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Allow at most `max_restarts` restarts within any `within`: the restart
    /// that would be one more fails the supervisor with
    /// [`FailureKind::RestartIntensity`](crate::FailureKind::RestartIntensity).
    pub fn intensity(mut self, max_restarts: u32, within: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.within = within;
        self
    }

    /// Add a child, started after those added before it.
    pub fn child(mut self, child: Child) -> Self {
        self.children.push(child);
        self
    }

    /// Run the supervisor as a microthread, a child of the caller, which starts
    /// its children in order: see the [module](self) for what it does. Errors if
    /// the host refuses to spawn it.
    ///
    /// # Panics
    /// If the program already has its maximum of open channels (the supervisor's
    /// requests travel on one).
    pub fn start(self) -> Result<SupervisorHandle, SpawnError> {
        let (control, requests) = channel(CONTROL_CAPACITY);
        let name = self.name.clone();
        let handle = Builder::new().name(name).spawn(
            run_nested,
            Spec {
                supervisor: self,
                requests,
                nested: false,
            },
        )?;
        Ok(SupervisorHandle { handle, control })
    }
}

/// A started supervisor.
#[derive(Debug)]
pub struct SupervisorHandle {
    handle: JoinHandle<()>,
    control: Sender<Control>,
}

/// Why [`SupervisorHandle::which_children`] gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WhichChildrenError {
    /// The supervisor has finished (or failed): it answers no more.
    Finished,
    /// The asking microthread was cancelled while it waited.
    Cancelled,
}

impl fmt::Display for WhichChildrenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WhichChildrenError::Finished => f.write_str("the supervisor has finished: join it to see how"),
            WhichChildrenError::Cancelled => f.write_str("this microthread was cancelled"),
        }
    }
}

impl std::error::Error for WhichChildrenError {}

/// One child of a supervisor, as [`SupervisorHandle::which_children`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildInfo {
    /// Its name.
    pub name: String,
    /// The id of its microthread now, or of the last one if it is done.
    pub id: Option<u64>,
    /// The node that microthread runs (or ran) on, if it is another node of the
    /// cluster ([`JoinHandle::node`]); `None` for this node.
    pub node: Option<String>,
    /// Whether it runs.
    pub state: ChildState,
    /// How many times it was restarted.
    pub restarts: u32,
}

/// Whether a supervised child runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ChildState {
    /// It runs.
    Running,
    /// It returned and is not to restart.
    Finished,
    /// It failed and is not to restart.
    Failed,
}

impl SupervisorHandle {
    /// Id of the supervisor's microthread.
    pub fn id(&self) -> u64 {
        self.handle.id()
    }

    /// Its children, in start order: name, microthread id and node, state and
    /// restarts.
    pub fn which_children(&self) -> Result<Vec<ChildInfo>, WhichChildrenError> {
        let (reply, answer) = channel(1);
        if self.control.send(Control::WhichChildren(reply)).is_err() {
            return Err(WhichChildrenError::Finished);
        }
        match answer.recv() {
            Ok(children) => Ok(children),
            Err(crate::RecvError::Cancelled) => Err(WhichChildrenError::Cancelled),
            Err(_) => Err(WhichChildrenError::Finished),
        }
    }

    /// Ask it to stop: its children stop in reverse start order, each within its
    /// shutdown time, then it finishes ([`join`](SupervisorHandle::join) returns).
    /// Asking one that has finished does nothing. Waits only while earlier
    /// requests fill its queue; fails if the caller is cancelled meanwhile.
    pub fn shutdown(&self) -> Result<(), Cancelled> {
        match self.control.send(Control::Shutdown) {
            // A finished supervisor has nothing to stop.
            Ok(()) | Err(SendError::Closed(_)) => Ok(()),
            Err(SendError::Cancelled(_)) => Err(Cancelled),
            Err(SendError::TooLarge(_)) => unreachable!("a shutdown request is a few bytes"),
            Err(SendError::Disconnected(..)) => unreachable!("a supervisor's channel is local to its node"),
        }
    }

    /// Cancel it: it stops its children in reverse start order, within its grace
    /// period, as at a [`shutdown`](SupervisorHandle::shutdown), and then ends
    /// (joining it gives `Cancelled`; past the grace, it and its tree are stopped
    /// where they are).
    pub fn cancel(&self) {
        self.handle.cancel();
    }

    /// Wait for it to finish: when no child is left to run, or once shut down; or
    /// its failure, of kind
    /// [`RestartIntensity`](crate::FailureKind::RestartIntensity) if it gave up.
    pub fn join(self) -> Result<(), JoinError> {
        self.handle.join()
    }
}

/// How many requests may wait for a supervisor.
const CONTROL_CAPACITY: usize = 16;

/// What a supervisor is asked.
#[derive(Serialize, Deserialize)]
enum Control {
    /// Report the children on this sender.
    WhichChildren(Sender<Vec<ChildInfo>>),
    /// Stop the children in reverse order, and finish.
    Shutdown,
}

/// What a supervisor's microthread starts with.
#[derive(Serialize, Deserialize)]
struct Spec {
    supervisor: Supervisor,
    requests: Receiver<Control>,
    /// It is another supervisor's child (see `run_nested`).
    nested: bool,
}

/// A supervisor's microthread (at the top, or as another's child).
fn run_nested(spec: Spec) {
    install_panic_hook();
    // A cancellation stops here: the children are stopped in order, below.
    own_shutdown();
    if spec.nested {
        // Its supervisor asks only a running instance to shut down: a request still
        // queued was for an instance stopped before it read it, not for this one.
        while spec.requests.try_recv().is_ok() {}
    }
    let mut s = Running::new(spec.supervisor);
    if let Err(message) = s.run(spec.requests) {
        wit::give_up(&message);
        unreachable!("the host ends a microthread that gives up");
    }
}

/// A child as its supervisor keeps it.
struct Slot {
    child: Child,
    /// Its microthread, while it runs, and the monitor that says when it ends.
    running: Option<(JoinHandle<Ended>, Receiver<Down>)>,
    id: Option<u64>,
    /// The node its microthread runs on, if another.
    node: Option<String>,
    /// Its node went down: it starts on any node from now on.
    elsewhere: bool,
    state: ChildState,
    restarts: u32,
}

/// How many of the latest ends a supervisor keeps an account of, to list when it
/// gives up (it counts all those within its intensity's window).
const MAX_ACCOUNTS: usize = 32;

/// A running supervisor.
struct Running {
    name: String,
    strategy: Strategy,
    max_restarts: u32,
    within: Duration,
    slots: Vec<Slot>,
    /// When the restarts within the intensity's window were.
    recent: VecDeque<Instant>,
    /// When and what the latest of those were (at most [`MAX_ACCOUNTS`]).
    accounts: VecDeque<(Instant, String)>,
}

/// The supervisor is to give up: the message of its failure.
type GiveUp = String;

impl Running {
    fn new(s: Supervisor) -> Self {
        Running {
            name: s.name,
            strategy: s.strategy,
            max_restarts: s.max_restarts,
            within: s.within,
            slots: s
                .children
                .into_iter()
                .map(|child| Slot {
                    child,
                    running: None,
                    id: None,
                    node: None,
                    elsewhere: false,
                    state: ChildState::Running,
                    restarts: 0,
                })
                .collect(),
            recent: VecDeque::new(),
            accounts: VecDeque::new(),
        }
    }

    /// Start the children, then supervise them until none is left to run, a
    /// shutdown is asked for, or it is cancelled (`Ok`, after the children are
    /// stopped), or the intensity is exceeded (`Err`, after the same).
    fn run(&mut self, requests: Receiver<Control>) -> Result<(), GiveUp> {
        let result = self.supervise(requests);
        // However it ends, nothing it started runs on (a shutdown, a cancellation,
        // giving up): the children stop in reverse start order.
        self.stop_all_from(0);
        result
    }

    fn supervise(&mut self, requests: Receiver<Control>) -> Result<(), GiveUp> {
        for i in 0..self.slots.len() {
            if is_cancelled() {
                return Ok(());
            }
            // A strategy may have started it already, at an earlier child's failure.
            if self.slots[i].running.is_some() {
                continue;
            }
            if let Err(e) = self.start(i) {
                // As if the child had failed at once: restart it within the limits.
                let what = format!("could not be started: {e}");
                self.ended(i, Err(what))?;
            }
        }
        let mut requests = Some(requests);
        loop {
            // The notice of a cancellation may have come to another call (a
            // reply's send, a sibling's stop): it is seen here.
            if is_cancelled() {
                return Ok(());
            }
            let watched: Vec<usize> = (0..self.slots.len())
                .filter(|&i| self.slots[i].running.is_some())
                .collect();
            if watched.is_empty() {
                return Ok(());
            }
            let selected = {
                let mut select = Select::new();
                for &i in &watched {
                    let (_, down) = self.slots[i].running.as_ref().expect("watched children run");
                    select.recv(down);
                }
                if let Some(r) = &requests {
                    select.recv(r);
                }
                select.wait()
            };
            match selected {
                Selected::Received { index, message } if index == watched.len() => {
                    match message.decode::<Control>() {
                        Control::WhichChildren(reply) => {
                            // The asker may have given up waiting: nothing to do.
                            let _gone = reply.send(self.which_children());
                        }
                        Control::Shutdown => return Ok(()),
                    }
                }
                Selected::Closed { index } if index == watched.len() => {
                    // Nobody can ask anything any more: supervise on.
                    requests = None;
                }
                Selected::Received { index, .. }
                | Selected::Closed { index }
                | Selected::Failed { index, .. } => {
                    let i = watched[index];
                    let (handle, _down) = self.slots[i].running.take().expect("watched children run");
                    let outcome = match join_ended(handle) {
                        Ok(()) => Ok(()),
                        Err(JoinError::Failed(f)) => {
                            if f.kind == FailureKind::NodeDown {
                                // Its node is gone for good (one that comes back
                                // has a new id): it restarts elsewhere.
                                self.slots[i].elsewhere = true;
                            }
                            Err(describe(&f))
                        }
                        // Stopped by the end of its grace: this one is, too.
                        Err(JoinError::Cancelled) => return Ok(()),
                    };
                    if is_cancelled() {
                        // The child ended as this supervisor was being cancelled:
                        // no restart; the others stop.
                        return Ok(());
                    }
                    self.ended(i, outcome)?;
                }
                // Cancelled: the children stop in order (see `run`).
                Selected::Cancelled => return Ok(()),
                other => unreachable!("a blocking select of receives gives no {other:?}"),
            }
        }
    }

    /// Spawn child `i`, and watch it.
    fn start(&mut self, i: usize) -> Result<(), SpawnError> {
        let slot = &mut self.slots[i];
        let handle = match slot.child.spawn(slot.elsewhere) {
            Ok(handle) => handle,
            Err(e) => {
                if matches!(e, SpawnError::NoSuchNode(_)) {
                    slot.elsewhere = true;
                }
                return Err(e);
            }
        };
        let down = monitor(handle.id());
        slot.id = Some(handle.id());
        slot.node = handle.node();
        slot.state = ChildState::Running;
        slot.running = Some((handle, down));
        Ok(())
    }

    /// Child `i` has ended (`Ok`: it returned; `Err`: how it failed): restart what
    /// the strategy says, within the intensity.
    fn ended(&mut self, i: usize, outcome: Result<(), String>) -> Result<(), GiveUp> {
        // Children that could not be started again end at once, in turn (a loop,
        // not a recursion: with a high intensity they may be many).
        let mut ends = VecDeque::from([(i, outcome)]);
        while let Some((i, outcome)) = ends.pop_front() {
            self.one_ended(i, outcome, &mut ends)?;
        }
        Ok(())
    }

    /// Child `i` has ended: restart what the strategy says; the children that
    /// could not be started again go to `ends`.
    fn one_ended(
        &mut self,
        i: usize,
        outcome: Result<(), String>,
        ends: &mut VecDeque<(usize, Result<(), String>)>,
    ) -> Result<(), GiveUp> {
        let slot = &mut self.slots[i];
        let restart = match slot.child.restart {
            Restart::Permanent => true,
            Restart::Transient => outcome.is_err(),
            Restart::Temporary => false,
        };
        if !restart {
            slot.state = if outcome.is_ok() {
                ChildState::Finished
            } else {
                ChildState::Failed
            };
            return Ok(());
        }
        let what = format!(
            "child {} (microthread {}) {}",
            slot.child.name,
            slot.id.map_or_else(|| "none".to_string(), |id| id.to_string()),
            match &outcome {
                Ok(()) => "returned".to_string(),
                Err(e) => e.clone(),
            }
        );
        let now = Instant::now();
        while self
            .recent
            .front()
            .is_some_and(|at| now.duration_since(*at) > self.within)
        {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        while self.accounts.len() >= MAX_ACCOUNTS
            || self
                .accounts
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) > self.within)
        {
            self.accounts.pop_front();
        }
        self.accounts.push_back((now, what));
        if self.recent.len() > self.max_restarts as usize {
            let name = self.slots[i].child.name.clone();
            self.stop_all_from(0);
            let list: Vec<&str> = self.accounts.iter().map(|(_, what)| what.as_str()).collect();
            return Err(format!(
                "supervisor {} gave up: child {name} needed more than {} restarts within {:?}; \
                 the recent ends:\n  {}",
                self.name,
                self.max_restarts,
                self.within,
                list.join("\n  ")
            ));
        }
        // Which children start again: `i`, and the siblings the strategy stops.
        if is_cancelled() {
            // Being cancelled: nothing starts again; `run` stops the rest.
            return Ok(());
        }
        let again: Vec<usize> = match self.strategy {
            Strategy::OneForOne => vec![i],
            Strategy::OneForAll => {
                self.stop_all_from(0);
                self.restartable_from(0, i)
            }
            Strategy::RestForOne => {
                self.stop_all_from(i + 1);
                self.restartable_from(i + 1, i)
            }
        };
        for j in again {
            // Restarted already, when an earlier one of these could not be.
            if self.slots[j].running.is_some() {
                continue;
            }
            // (At the first start, a strategy may start one that never ran.)
            if self.slots[j].id.is_some() {
                self.slots[j].restarts += 1;
                wit::count_restart();
            }
            if let Err(e) = self.start(j) {
                ends.push_back((j, Err(format!("could not be restarted: {e}"))));
            }
        }
        Ok(())
    }

    /// The children from `from` on that were stopped to restart and are to start
    /// again (not the temporary ones), with `i`, in start order.
    fn restartable_from(&mut self, from: usize, i: usize) -> Vec<usize> {
        let mut again = Vec::new();
        for j in 0..self.slots.len() {
            if j == i {
                again.push(j);
            } else if j >= from
                && self.slots[j].state == ChildState::Running
                && self.slots[j].running.is_none()
            {
                if self.slots[j].child.restart == Restart::Temporary {
                    self.slots[j].state = ChildState::Finished;
                } else {
                    again.push(j);
                }
            }
        }
        again
    }

    /// Stop the running children from `from` on, in reverse start order. One
    /// whose node went down meanwhile starts on any node from then on.
    fn stop_all_from(&mut self, from: usize) {
        for j in (from..self.slots.len()).rev() {
            if let Some((handle, down)) = self.slots[j].running.take()
                && let Err(JoinError::Failed(f)) = stop(&self.slots[j].child, handle, down)
                && f.kind == FailureKind::NodeDown
            {
                self.slots[j].elsewhere = true;
            }
        }
    }

    fn which_children(&self) -> Vec<ChildInfo> {
        self.slots
            .iter()
            .map(|s| ChildInfo {
                name: s.child.name.clone(),
                id: s.id,
                node: s.node.clone(),
                state: s.state,
                restarts: s.restarts,
            })
            .collect()
    }
}

/// Stop a child within its shutdown time: a supervisor is asked to shut down (its
/// children stop in order) and cancelled only once the time is over; any other
/// child is cancelled with its shutdown time as the grace.
///
/// The supervisor owns its shutdown: its own cancellation, should it come
/// meanwhile, fails one of these calls, and the stop goes on. How it ended comes
/// back.
fn stop(child: &Child, handle: JoinHandle<Ended>, down: Receiver<Down>) -> Result<(), JoinError> {
    match &child.control {
        Some(control) if control.try_send(Control::Shutdown).is_ok() => {
            let deadline = Instant::now() + child.shutdown;
            let mut noticed = false;
            loop {
                let mut select = Select::new();
                select.recv(&down);
                match select.wait_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Selected::Timeout => {
                        handle.cancel_within(Duration::ZERO);
                        break;
                    }
                    // The notice of this supervisor's cancellation: wait on (once:
                    // a second means its grace is over, and it is being stopped).
                    Selected::Cancelled if !noticed => noticed = true,
                    _ => break,
                }
            }
        }
        _ => handle.cancel_within(child.shutdown),
    }
    // However it ended, it was stopped: how, only a lost node matters (to the
    // caller, for where it starts again).
    join_ended(handle)
}

/// Join a child that has ended or is being stopped. The supervisor owns its
/// shutdown: the notice of its cancellation fails one join, not the next (once
/// its grace is over, it is stopped where it is).
fn join_ended(handle: JoinHandle<Ended>) -> Result<(), JoinError> {
    match handle.join_discarding() {
        Err(JoinError::Cancelled) => handle.join_discarding(),
        other => other,
    }
}

/// How a failure reads in a supervisor's list of recent ends: its first line, or,
/// for a supervisor that gave up, all of its account.
fn describe(f: &Failure) -> String {
    let kind = match f.kind {
        FailureKind::Panic => "panicked",
        FailureKind::Trap => "trapped",
        FailureKind::OutOfMemory => "ran out of memory",
        FailureKind::FuelExhausted => "ran out of fuel",
        FailureKind::Cancelled => "was cancelled",
        FailureKind::ChildFailed => "failed with a child",
        FailureKind::Exited => "exited",
        FailureKind::RestartIntensity => "gave up",
        FailureKind::Disconnected => "lost its link",
        FailureKind::NodeDown => "lost its node",
    };
    let message = match f.kind {
        FailureKind::RestartIntensity => f.message.replace('\n', "\n  "),
        _ => f.message.lines().next().unwrap_or("").to_string(),
    };
    format!("{kind}: {message}")
}

//! Microthreads, the WIT `thread` interface: spawning one by function reference
//! ([`Builder`], [`spawn`], [`spawn_detached`]), on this node or on another node of
//! the cluster ([`Builder::node`]), and through its [`JoinHandle`]
//! joining it (for its result, or its [`Failure`]) and cancelling
//! it; and what a microthread does to itself: [`sleep`], [`yield_now`], [`atomic`]
//! sections, [`is_cancelled`], [`own_shutdown`], [`exit`], [`current`], [`current_id`].
//!
//! A microthread *finishes*: it returns, fails, or is stopped. *Cancelling* asks it to
//! finish (its blocking calls fail, so its cleanup runs); *stopping* is the host
//! ending it where it is. The errors here say why a call gave no value
//! ([`SpawnError`], [`JoinError`], [`JoinTimeoutError`]).

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};

use crate::bindings::channel::Message;
use crate::bindings::thread as wit;
use crate::entry::{Trampoline, install_panic_hook, trampoline};
use crate::failure::{Cancelled, Failure, FailureKind};
use crate::message::{decode, encode};
use crate::node::Node;
use crate::time::nanos;

/// Why a microthread could not be spawned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpawnError {
    /// The program (or the host, all programs together) already has its maximum
    /// number of live microthreads.
    LimitReached {
        /// The host's limit.
        max: u32,
    },
    /// The serialized argument is over the host's message size limit.
    ArgumentTooLarge {
        /// The host's limit, in bytes.
        max_bytes: u32,
    },
    /// The argument could not be serialized.
    Serialize(String),
    /// The host cannot start microthreads of this program.
    NotSpawnable,
    /// A spawn on another node ([`Builder::node`]): the node is not a live node of
    /// the cluster, or it went down before it answered, or this program runs in
    /// no cluster (the text says which).
    NoSuchNode(String),
    /// A spawn on another node: that node runs another program (every node of a
    /// spawn must run the same one, identified by its content hash; the text names
    /// the node and the program).
    NoSuchProgram(String),
    /// A spawn on another node: the argument carries an endpoint that cannot move
    /// to another node, a receiver or a socket (senders can); the text says which.
    /// Nothing was sent.
    CannotMove(String),
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::LimitReached { max } => {
                write!(
                    f,
                    "cannot spawn: the program already has its maximum of {max} live microthreads \
                     (or the host, all programs together)"
                )
            }
            SpawnError::ArgumentTooLarge { max_bytes } => {
                write!(
                    f,
                    "cannot spawn: the argument is over the message size limit of {max_bytes} bytes"
                )
            }
            SpawnError::Serialize(e) => {
                write!(f, "cannot spawn: the argument does not serialize: {e}")
            }
            SpawnError::NotSpawnable => write!(
                f,
                "cannot spawn: the host cannot start microthreads of this program"
            ),
            SpawnError::NoSuchNode(why) => write!(
                f,
                "cannot spawn on that node: {why}; pick a live node from cluster::nodes() \
                 (or Node::any()), in a program run with weft run --cluster"
            ),
            SpawnError::NoSuchProgram(why) => write!(
                f,
                "cannot spawn on that node: {why}; every node of the cluster must run the \
                 same program (the same .wasm): start that node with this program"
            ),
            SpawnError::CannotMove(why) => write!(
                f,
                "cannot spawn on another node: {why}; only senders move between nodes: keep \
                 the receiver (or socket) here and pass a sender, or spawn on this node"
            ),
        }
    }
}

impl std::error::Error for SpawnError {}

/// Why a join returned no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinError {
    /// The microthread failed (or was cancelled: the failure's kind says so).
    Failed(Failure),
    /// The joining microthread itself was cancelled while it waited.
    Cancelled,
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Failed(failure) => failure.fmt(f),
            JoinError::Cancelled => f.write_str("the join was cancelled: this microthread was cancelled"),
        }
    }
}

impl std::error::Error for JoinError {}

/// Why [`JoinHandle::join_timeout`] returned no result.
pub enum JoinTimeoutError<R> {
    /// It had not finished in time: the handle comes back, to join again.
    Timeout(JoinHandle<R>),
    /// It failed.
    Failed(Failure),
    /// The joining microthread was cancelled.
    Cancelled,
}

impl<R> fmt::Debug for JoinTimeoutError<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinTimeoutError::Timeout(h) => f.debug_tuple("Timeout").field(h).finish(),
            JoinTimeoutError::Failed(failure) => f.debug_tuple("Failed").field(failure).finish(),
            JoinTimeoutError::Cancelled => f.write_str("Cancelled"),
        }
    }
}

impl<R> fmt::Display for JoinTimeoutError<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinTimeoutError::Timeout(h) => write!(f, "microthread {} had not finished in time", h.id()),
            JoinTimeoutError::Failed(failure) => failure.fmt(f),
            JoinTimeoutError::Cancelled => {
                f.write_str("the join was cancelled: this microthread was cancelled")
            }
        }
    }
}

impl<R> std::error::Error for JoinTimeoutError<R> {}

/// A spawned microthread: [`join`](JoinHandle::join) it for its result, or
/// [`cancel`](JoinHandle::cancel) it.
///
/// Dropping the handle does not detach the microthread: the microthread that spawned
/// it does not finish before it, and a failure that nobody joins cancels its
/// siblings and fails the parent. (A [detached](spawn_detached) microthread's
/// failure goes to the host's failure handler instead.)
pub struct JoinHandle<R> {
    handle: wit::JoinHandle,
    _result: PhantomData<fn() -> R>,
}

impl<R> JoinHandle<R> {
    /// Id of the spawned microthread.
    pub fn id(&self) -> u64 {
        self.handle.id()
    }

    /// The node the microthread runs on, if another node of the cluster runs it
    /// (spawned with [`Builder::node`] or
    /// [`cluster::spawn_on`](crate::cluster::spawn_on)); `None` for a microthread
    /// of this node.
    pub fn node(&self) -> Option<String> {
        self.handle.node()
    }

    /// Whether the microthread has finished.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Cancel the microthread: its next blocking call (and every later one) fails
    /// with a cancellation error, so its cleanup code runs; if it does not block it
    /// is stopped at its next fuel yield; if it has not finished a grace period
    /// later, it is stopped wherever it is. Its children are cancelled too, and
    /// the channel ends it holds close for their peers when it finishes. Joining it then
    /// gives a failure of kind [`FailureKind::Cancelled`]. Cancelling a finished
    /// microthread does nothing.
    pub fn cancel(&self) {
        self.handle.cancel();
    }

    /// Like [`cancel`](JoinHandle::cancel), with a grace period of `grace` (counted
    /// from now) instead of the host's: if the microthread has not finished by
    /// then, cleanup or not, it is stopped wherever it is. (A supervisor gives each
    /// child its [shutdown time](crate::supervisor::Child::shutdown) so.)
    pub fn cancel_within(&self, grace: Duration) {
        self.handle.cancel_within(nanos(grace));
    }

    /// Wait for the microthread to finish, dropping its result unread (the
    /// endpoints in it close): whether it returned, or its failure. A join that
    /// failed with `Cancelled` can be made again.
    pub(crate) fn join_discarding(&self) -> Result<(), JoinError> {
        match self.handle.join() {
            Ok(_result) => Ok(()),
            Err(wit::JoinError::Failed(f)) => Err(JoinError::Failed(f.into())),
            Err(wit::JoinError::Cancelled) => Err(JoinError::Cancelled),
            Err(wit::JoinError::Timeout) => unreachable!("a join without a timeout does not time out"),
        }
    }
}

impl<R: DeserializeOwned> JoinHandle<R> {
    fn result(&self, joined: Result<Message, wit::JoinError>) -> Result<R, JoinError> {
        match joined {
            Ok(message) => decode(message).map_err(|e| {
                JoinError::Failed(Failure {
                    id: self.handle.id(),
                    name: None,
                    kind: FailureKind::Trap,
                    message: format!("the microthread's result does not deserialize: {e}"),
                })
            }),
            Err(wit::JoinError::Failed(f)) => Err(JoinError::Failed(f.into())),
            Err(wit::JoinError::Cancelled) => Err(JoinError::Cancelled),
            Err(wit::JoinError::Timeout) => unreachable!("a join without a timeout does not time out"),
        }
    }

    /// Wait for the microthread to finish (only the calling microthread waits) and
    /// return its result, or its failure.
    pub fn join(self) -> Result<R, JoinError> {
        let joined = self.handle.join();
        self.result(joined)
    }

    /// Like [`join`](JoinHandle::join), waiting at most `timeout`; on a timeout the
    /// handle comes back in the error.
    pub fn join_timeout(self, timeout: Duration) -> Result<R, JoinTimeoutError<R>> {
        match self.handle.join_timeout(nanos(timeout)) {
            Err(wit::JoinError::Timeout) => Err(JoinTimeoutError::Timeout(self)),
            joined => self.result(joined).map_err(|e| match e {
                JoinError::Failed(f) => JoinTimeoutError::Failed(f),
                JoinError::Cancelled => JoinTimeoutError::Cancelled,
            }),
        }
    }
}

impl<R> fmt::Debug for JoinHandle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.handle.id())
            .field("node", &self.handle.node())
            .finish()
    }
}

/// Configures a microthread before spawning it.
///
/// ```no_run
/// fn work(n: u32) -> u32 { n + 1 }
/// let h = weft_guest::Builder::new().name("worker").spawn(work, 41)?;
/// assert_eq!(h.join().unwrap(), 42);
/// # Ok::<(), weft_guest::SpawnError>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<String>,
    node: Option<Node>,
}

impl Builder {
    /// A builder for a microthread named after its function (`worker`,
    /// `server::handle`: its path without the crate), as the host reads it from
    /// the program's name section, which plain `cargo build --release` keeps; a
    /// closure, or a program built with `strip = true`, gives no name.
    pub fn new() -> Self {
        Self::default()
    }

    /// Name the microthread (instead of its function's name): the name shows in
    /// failures and in [`current`].
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Run the microthread on `node` of the cluster (one of
    /// [`cluster::nodes`](crate::cluster::nodes), or [`Node::any`], the least
    /// loaded live node, this one included): the spawn goes through the host's
    /// `spawn-on`. Without it, the microthread runs on this node.
    ///
    /// The handle behaves as a local child's (join, cancel with the remote node's
    /// grace, the parent's wait, an unjoined failure failing the parent); if that
    /// node goes down, the child fails with [`FailureKind::NodeDown`]. The argument
    /// may carry senders (they become remote senders there) but no receiver or
    /// socket ([`SpawnError::CannotMove`]); every node must run this same program
    /// ([`SpawnError::NoSuchProgram`]).
    pub fn node(mut self, node: Node) -> Self {
        self.node = Some(node);
        self
    }

    /// Spawn a microthread that runs `f(arg)`, a child of the caller. Errors if the
    /// host refuses (too many live microthreads, argument too large, and for a
    /// [node](Builder::node): no such node, another program there, an endpoint
    /// that cannot move).
    pub fn spawn<T, R>(self, f: fn(T) -> R, arg: T) -> Result<JoinHandle<R>, SpawnError>
    where
        T: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        self.start(f, arg, false)
    }

    /// Spawn a detached microthread that runs `f(arg)`: see [`spawn_detached`].
    pub fn spawn_detached<T, R>(self, f: fn(T) -> R, arg: T) -> Result<JoinHandle<R>, SpawnError>
    where
        T: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        self.start(f, arg, true)
    }

    fn start<T, R>(self, f: fn(T) -> R, arg: T, detached: bool) -> Result<JoinHandle<R>, SpawnError>
    where
        T: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let argument = encode(&arg).map_err(|e| SpawnError::Serialize(e.to_string()))?;
        let trampoline = trampoline::<T, R> as Trampoline as usize as u32;
        // The argument's endpoints were cloned into the message: drop the originals
        // (on failure too: the value does not come back from a refused spawn).
        let handle = spawn_raw(
            trampoline,
            f as usize as u32,
            argument,
            self.name.as_deref(),
            detached,
            self.node.as_ref(),
        );
        drop(arg);
        handle
    }
}

/// Spawn through the host: on this node (`node` is `None`), or with `spawn-on` on
/// `node`. A refused spawn gives the argument back, and with it the endpoints it
/// carried: dropping it closes them (the caller's value, dropped too, held only
/// clones).
pub(crate) fn spawn_raw<R>(
    trampoline: u32,
    function: u32,
    argument: Message,
    name: Option<&str>,
    detached: bool,
    node: Option<&Node>,
) -> Result<JoinHandle<R>, SpawnError> {
    install_panic_hook();
    let spawned = match node {
        None => wit::spawn(trampoline, function, argument, name, detached),
        Some(node) => wit::spawn_on(node.id(), trampoline, function, argument, name, detached),
    };
    match spawned {
        Ok(handle) => Ok(JoinHandle {
            handle,
            _result: PhantomData,
        }),
        Err(refused) => Err(match refused.error {
            wit::SpawnError::LimitReached(max) => SpawnError::LimitReached { max },
            wit::SpawnError::ArgumentTooLarge(max_bytes) => SpawnError::ArgumentTooLarge { max_bytes },
            wit::SpawnError::NotSpawnable => SpawnError::NotSpawnable,
            wit::SpawnError::NoSuchNode(why) => SpawnError::NoSuchNode(why),
            wit::SpawnError::NoSuchProgram(why) => SpawnError::NoSuchProgram(why),
            wit::SpawnError::CannotMove(why) => SpawnError::CannotMove(why),
        }),
    }
}

/// Spawn a microthread that runs `f(arg)` and return its handle. It is named
/// after `f` (see [`Builder::new`]), so its failures say which function failed.
///
/// # Panics
/// If the host refuses the spawn; use [`Builder::spawn`] to handle that.
pub fn spawn<T, R>(f: fn(T) -> R, arg: T) -> JoinHandle<R>
where
    T: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    Builder::new().spawn(f, arg).unwrap_or_else(|e| panic!("{e}"))
}

/// Spawn a detached microthread that runs `f(arg)`: it is no child of the caller.
/// Nobody waits for it (the caller may finish first), it is not cancelled with the
/// caller, and its failure, unless someone joins it, goes to the host's failure
/// handler (by default one report on stderr) while the program carries on. When
/// `main` returns, detached microthreads still running are cancelled.
///
/// # Panics
/// If the host refuses the spawn; use [`Builder::spawn_detached`] to handle that.
pub fn spawn_detached<T, R>(f: fn(T) -> R, arg: T) -> JoinHandle<R>
where
    T: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    Builder::new()
        .spawn_detached(f, arg)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Let the other microthreads run; return when the scheduler comes back to this one.
pub fn yield_now() {
    wit::yield_now();
}

/// Suspend the calling microthread (only it) for at least `duration`. Fails if it is
/// cancelled (at once, if it was already).
pub fn sleep(duration: Duration) -> Result<(), Cancelled> {
    wit::sleep(nanos(duration)).map_err(|()| Cancelled)
}

/// Whether the calling microthread has been cancelled: a loop that never blocks can
/// look, to stop cleanly before it is stopped.
pub fn is_cancelled() -> bool {
    wit::cancelled()
}

/// From now on the calling microthread owns its shutdown, as a
/// [`Supervisor`](crate::supervisor::Supervisor) does: its cancellation is a notice,
/// not a stop.
///
/// - It is delivered once: one blocking call fails with it (a receive, a join, a
///   select gives [`Selected::Cancelled`](crate::Selected::Cancelled), …), and later
///   ones work again; [`is_cancelled`] stays true. A busy microthread is not stopped
///   for it at its next fuel yield.
/// - It does not reach the microthread's children: it stops them itself, in the
///   order it chooses (cancelling each, joining it), and then returns.
/// - The grace period still bounds it: once that is over, it and every microthread
///   under it are stopped wherever they are. Children it leaves running when it
///   ends are cancelled then.
///
/// ```no_run
/// use weft_guest::{Receiver, channel, own_shutdown, spawn};
///
/// fn wait(rx: Receiver<u32>) {
///     // Fails once this child is cancelled: its cleanup would run here.
///     let _ = rx.recv();
/// }
///
/// own_shutdown();
/// let (tx, rx) = channel::<u32>(1);
/// let children: Vec<_> = (0..3).map(|_| spawn(wait, rx.clone())).collect();
/// // Blocks until the cancellation comes (the end of the program, say) …
/// let _ = rx.recv();
/// // … then stops the children, the last started first.
/// for child in children.into_iter().rev() {
///     child.cancel();
///     let _ = child.join();
/// }
/// drop(tx);
/// ```
pub fn own_shutdown() {
    wit::own_shutdown();
}

/// Run `f` with no preemption: no fuel slice interrupts it, and a preemption that
/// falls due meanwhile is taken when it returns. Sections nest. A blocking call
/// (a receive, a sleep, a join, a yield, …) inside the section ends it. A section
/// that runs longer than the host's cap (1 s by default) fails the microthread.
///
/// ```no_run
/// let total = weft_guest::atomic(|| (0..1_000u64).sum::<u64>());
/// ```
pub fn atomic<T>(f: impl FnOnce() -> T) -> T {
    struct End;
    impl Drop for End {
        fn drop(&mut self) {
            wit::atomic_end();
        }
    }
    wit::atomic_begin();
    let _end = End;
    f()
}

/// End the whole program with exit `code`, from any microthread; the other
/// microthreads are cancelled.
///
/// `std::process::exit` works too, but WASI 0.2 carries only success or failure
/// through it: any non-zero code becomes 1.
pub fn exit(code: u8) -> ! {
    wit::exit(code);
    unreachable!("the host ends the program at exit")
}

/// The calling microthread's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Microthread {
    /// Unique within the program; `main` is 0.
    pub id: u64,
    /// The name given at spawn; `main` is named "main".
    pub name: Option<String>,
}

/// The id of the calling microthread: unique within the program (`main` is 0), a
/// value to send to others, say to [`monitor`](crate::monitor) it.
pub fn current_id() -> u64 {
    wit::current_id()
}

/// The calling microthread.
pub fn current() -> Microthread {
    Microthread {
        id: wit::current_id(),
        name: wit::current_name(),
    }
}

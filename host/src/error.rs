//! The library's typed errors, and the failure of a microthread.

use std::fmt;
use std::path::PathBuf;

/// What can go wrong when weft loads or runs a program (as opposed to a guest failing,
/// which is a [`Failure`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The program file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The bytes are not WebAssembly at all.
    #[error("{what} is not a WebAssembly file (it does not start with the `\\0asm` magic number)")]
    NotWasm {
        /// The file or a description of the bytes.
        what: String,
    },
    /// A core module was given where a component is needed.
    #[error(
        "{what} is a core WebAssembly module, not a component: weft runs components; \
         build for the `wasm32-wasip2` target (or convert it with `wasm-tools component new`)"
    )]
    CoreModule {
        /// The file or a description of the bytes.
        what: String,
    },
    /// The component failed to validate or compile.
    #[error("cannot compile {what}: {message}")]
    Compile {
        /// The file or a description of the bytes.
        what: String,
        /// wasmtime's explanation.
        message: String,
    },
    /// The component imports something weft does not provide.
    #[error("cannot link {what}: {message}")]
    Link {
        /// The file or a description of the bytes.
        what: String,
        /// wasmtime's explanation (names the missing import).
        message: String,
    },
    /// The component exports none of `wasi:cli/run`, `weft:runtime/entry` and
    /// `wasi:http/incoming-handler`.
    #[error(
        "{what} is not a program weft can run: it exports neither `wasi:cli/run` (a command, \
         i.e. a `fn main`), nor `weft:runtime/entry` (the weft world), nor \
         `wasi:http/incoming-handler` (an HTTP handler, for `weft serve`)"
    )]
    NotRunnable {
        /// The file or a description of the bytes.
        what: String,
    },
    /// The component is a library of microthreads without `main`.
    #[error("{what} has no `main`: it does not export `wasi:cli/run`, so `run` cannot start it")]
    NoMain {
        /// The file or a description of the bytes.
        what: String,
    },
    /// The component handles HTTP requests and has no `main`: it is served, not run.
    #[error(
        "{what} is an HTTP handler (it exports `wasi:http/incoming-handler`, not `wasi:cli/run`): \
         serve it with `weft serve {what}` (Program::serve)"
    )]
    IsHttpHandler {
        /// The file or a description of the bytes.
        what: String,
    },
    /// The component does not handle HTTP requests, so it cannot be served.
    #[error(
        "{what} handles no HTTP requests: it does not export `wasi:http/incoming-handler` (the \
         wasi:http/proxy world), so `serve` cannot start it{hint}"
    )]
    NotHttpHandler {
        /// The file or a description of the bytes.
        what: String,
        /// What to do instead, if it can be run.
        hint: String,
    },
    /// A server could not be started: its address, its socket, its thread.
    #[error("cannot serve: {0}")]
    Serve(String),
    /// The runtime could not be set up with the given configuration.
    #[error("invalid runtime configuration: {0}")]
    Config(String),
    /// The main microthread could not be started.
    #[error("cannot start the program: {0}")]
    Start(String),
    /// The runtime could not join its cluster.
    #[cfg(feature = "cluster")]
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The runtime already runs its maximum of live microthreads (all runs
    /// together), so a new run cannot start its `main`.
    #[error(
        "cannot start the program: the runtime already runs its maximum of {max} live \
         microthreads (all runs together); wait for a run to end, or build the runtime \
         with a higher max_microthreads"
    )]
    LimitReached {
        /// The runtime's limit.
        max: u32,
    },
    /// The run options ask for something the runtime cannot give.
    #[error("invalid run options: {0}")]
    InvalidOptions(String),
    /// A precompiled file (`weft compile`) cannot be used.
    #[error("cannot load {what}: {reason}")]
    Precompiled {
        /// The file.
        what: String,
        /// Why.
        reason: crate::cache::Unusable,
    },
    /// A directory grant names something that is not a directory.
    #[error("cannot grant {path}: {reason}")]
    Grant {
        /// The host directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// How a microthread failed: a trap, a panic, running out of memory, an exhausted
/// fuel budget, a cancellation, or a child's failure that nobody joined. Failures
/// are never silent: they reach the joiner, or the parent, and in the end the
/// program's exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Id of the microthread that failed (`main` is 0).
    pub id: u64,
    /// Its name, if it had one.
    pub name: Option<String>,
    /// What kind of failure it was.
    pub kind: FailureKind,
    /// What happened: the panic message or trap, then the guest backtrace.
    pub message: String,
}

/// What kind of failure a [`Failure`] is, so that a program can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// The guest panicked.
    Panic,
    /// The guest trapped: `unreachable`, an out-of-bounds access, a bad function
    /// index, a stack overflow, …
    Trap,
    /// Its linear memory, or one of its tables, could not grow.
    OutOfMemory,
    /// It used up its fuel budget, or its run's.
    FuelExhausted,
    /// It was cancelled.
    Cancelled,
    /// A child of it failed and nobody joined the child.
    ChildFailed,
    /// It ended the whole program with `exit`.
    Exited,
    /// It was a supervisor that gave up: its children failed more often than its
    /// restart intensity allows. The message names the child and lists the recent
    /// failures.
    RestartIntensity,
    /// The node it ran on, or the link to it, was lost (a cluster's remote end):
    /// the message names the node and the evidence.
    Disconnected,
    /// It ran on another node of the cluster
    /// ([`spawn-on`](crate::cluster)), and that node went down: whether it
    /// finished is unknown. The message names the node and the evidence.
    NodeDown,
}

impl FailureKind {
    /// Its index among the cases of `failure-kind` in `wit/runtime.wit` (how it
    /// travels in a monitor's `Down` and between nodes).
    pub(crate) fn index(self) -> u8 {
        match self {
            FailureKind::Panic => 0,
            FailureKind::Trap => 1,
            FailureKind::OutOfMemory => 2,
            FailureKind::FuelExhausted => 3,
            FailureKind::Cancelled => 4,
            FailureKind::ChildFailed => 5,
            FailureKind::Exited => 6,
            FailureKind::RestartIntensity => 7,
            FailureKind::Disconnected => 8,
            FailureKind::NodeDown => 9,
        }
    }

    /// The kind of index `i` (see [`index`](FailureKind::index)), if there is one.
    pub(crate) fn from_index(i: u8) -> Option<FailureKind> {
        Some(match i {
            0 => FailureKind::Panic,
            1 => FailureKind::Trap,
            2 => FailureKind::OutOfMemory,
            3 => FailureKind::FuelExhausted,
            4 => FailureKind::Cancelled,
            5 => FailureKind::ChildFailed,
            6 => FailureKind::Exited,
            7 => FailureKind::RestartIntensity,
            8 => FailureKind::Disconnected,
            9 => FailureKind::NodeDown,
            _ => return None,
        })
    }
}

impl Failure {
    /// The first line of the message: the panic or trap, without the backtrace.
    pub fn summary(&self) -> &str {
        self.message.lines().next().unwrap_or("")
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "microthread {}", self.id)?;
        if let Some(name) = &self.name {
            write!(f, " ({name})")?;
        }
        write!(f, " failed: {}", self.message)
    }
}

impl std::error::Error for Failure {}

/// Why joining a cluster, exporting or importing failed.
#[cfg(feature = "cluster")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The settings are not valid.
    #[error("invalid cluster settings: {0}")]
    Config(String),
    /// The NATS server could not be reached, or refused the node.
    #[error("cannot join the cluster at {url}: {reason}")]
    Connect {
        /// The server's address.
        url: String,
        /// Why.
        reason: String,
    },
    /// The name is exported by this node already.
    #[error("the name {0:?} is exported by this node already: each name is exported once")]
    NameTaken(String),
    /// No node answered for the name within the import timeout.
    #[error(
        "no node of cluster {cluster:?} exports {name:?} (waited {waited:?}): start the node that \
         exports it, or check the cluster's name"
    )]
    NoSuchName {
        /// The name.
        name: String,
        /// The cluster's name.
        cluster: String,
        /// How long the import waited.
        waited: std::time::Duration,
    },
    /// The exporting node refused the attachment.
    #[error("the node exporting {name:?} refused: {reason}")]
    Refused {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The connection to the cluster is lost or closed.
    #[error("the cluster connection is lost: {0}")]
    Lost(String),
}

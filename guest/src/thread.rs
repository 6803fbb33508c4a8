//! Microthreads: spawn by function reference, join, yield, sleep, identity.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Once;
use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};

use crate::bindings::channel::Message;
use crate::bindings::thread as wit;
use crate::message::{decode, encode};

/// What the entry export calls: deserializes the argument, calls the function at the
/// given table index, serializes its result.
pub(crate) type Trampoline = fn(usize, Message) -> Message;

fn trampoline<T: DeserializeOwned, R: Serialize>(function: usize, argument: Message) -> Message {
    // SAFETY: `function` is the table index of an `fn(T) -> R` taken in `Builder::spawn`
    // together with this very instantiation of the trampoline.
    let function: fn(T) -> R = unsafe { core::mem::transmute(function) };
    let argument: T =
        decode(argument).unwrap_or_else(|e| panic!("weft: cannot deserialize the spawn argument: {e}"));
    let result = function(argument);
    encode(&result).unwrap_or_else(|e| panic!("weft: cannot serialize the microthread's result: {e}"))
}

/// Route panic messages to the host, so that a panicking microthread's failure says
/// why it panicked. A panic aborts the microthread (`panic = abort` on wasm).
pub(crate) fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            wit::set_panic_message(&info.to_string());
        }));
    });
}

/// Why a microthread could not be spawned.
#[derive(Debug, Clone, PartialEq, Eq)]
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
        }
    }
}

impl std::error::Error for SpawnError {}

/// How a microthread failed: a trap, a panic, out of memory, an exhausted budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Id of the microthread that failed.
    pub id: u64,
    /// Its name, if it had one.
    pub name: Option<String>,
    /// What happened, with the guest backtrace where there is one.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "microthread {} ({name}) failed: {}", self.id, self.message),
            None => write!(f, "microthread {} failed: {}", self.id, self.message),
        }
    }
}

impl std::error::Error for Failure {}

impl From<crate::bindings::types::Failure> for Failure {
    fn from(f: crate::bindings::types::Failure) -> Self {
        Failure {
            id: f.id,
            name: f.name,
            message: f.message,
        }
    }
}

/// A spawned microthread. [`join`](JoinHandle::join) it for its result.
///
/// Dropping the handle does not detach the microthread: the microthread that spawned
/// it does not finish before it, and a failure that nobody joins fails the parent.
pub struct JoinHandle<R> {
    handle: wit::JoinHandle,
    _result: PhantomData<fn() -> R>,
}

impl<R: DeserializeOwned> JoinHandle<R> {
    /// Id of the spawned microthread.
    pub fn id(&self) -> u64 {
        self.handle.id()
    }

    /// Wait for the microthread to finish (only the calling microthread waits) and
    /// return its result, or its failure.
    pub fn join(self) -> Result<R, Failure> {
        let message = self.handle.join().map_err(Failure::from)?;
        decode(message).map_err(|e| Failure {
            id: self.handle.id(),
            name: None,
            message: format!("the microthread's result does not deserialize: {e}"),
        })
    }
}

impl<R> fmt::Debug for JoinHandle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.handle.id())
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
}

impl Builder {
    /// A builder for an unnamed microthread.
    pub fn new() -> Self {
        Self::default()
    }

    /// Name the microthread: the name shows in failures and in [`current`].
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Spawn a microthread that runs `f(arg)`. Errors if the host refuses (too many
    /// live microthreads, argument too large).
    pub fn spawn<T, R>(self, f: fn(T) -> R, arg: T) -> Result<JoinHandle<R>, SpawnError>
    where
        T: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let argument = encode(&arg).map_err(|e| SpawnError::Serialize(e.to_string()))?;
        let trampoline = trampoline::<T, R> as Trampoline as usize as u32;
        // The argument's endpoints were cloned into the message: drop the originals
        // (on failure too: the value does not come back from a refused spawn).
        let handle = spawn_raw(trampoline, f as usize as u32, argument, self.name.as_deref());
        drop(arg);
        handle
    }
}

/// Spawn through the host. A refused spawn gives the argument back, and with it
/// the endpoints it carried: dropping it closes them (the caller's value, dropped
/// too, held only clones).
pub(crate) fn spawn_raw<R>(
    trampoline: u32,
    function: u32,
    argument: Message,
    name: Option<&str>,
) -> Result<JoinHandle<R>, SpawnError> {
    install_panic_hook();
    match wit::spawn(trampoline, function, argument, name) {
        Ok(handle) => Ok(JoinHandle {
            handle,
            _result: PhantomData,
        }),
        Err(refused) => Err(match refused.error {
            wit::SpawnError::LimitReached(max) => SpawnError::LimitReached { max },
            wit::SpawnError::ArgumentTooLarge(max_bytes) => SpawnError::ArgumentTooLarge { max_bytes },
            wit::SpawnError::NotSpawnable => SpawnError::NotSpawnable,
        }),
    }
}

/// Spawn a microthread that runs `f(arg)` and return its handle.
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

/// Let the other microthreads run; return when the scheduler comes back to this one.
pub fn yield_now() {
    wit::yield_now();
}

/// Suspend the calling microthread (only it) for at least `duration`.
pub fn sleep(duration: Duration) {
    wit::sleep(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
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

/// The calling microthread.
pub fn current() -> Microthread {
    Microthread {
        id: wit::current_id(),
        name: wit::current_name(),
    }
}

//! How a microthread's end becomes what its joiner sees: the kind of a failure
//! (panic, trap, out of memory, exhausted fuel, cancelled), one clear message, and
//! the guest backtrace once.

use super::driver::{AtomicTooLong, Stopped};
use crate::error::{Failure, FailureKind};
use crate::run::{Identity, Run};

/// A microthread was stopped because its run's fuel budget ran out.
#[derive(Debug, thiserror::Error)]
#[error("fuel budget exhausted: the run used all of its {0} units")]
pub(super) struct RunFuelExhausted(pub(super) u64);

/// A supervisor gave up (`thread.give-up`): it fails with kind
/// [`FailureKind::RestartIntensity`] and this message (no backtrace: the message
/// is the supervisor's account of its children's failures).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct GaveUp(pub(crate) String);

/// The most lines of a guest backtrace a failure keeps (the innermost ones).
const MAX_FRAMES: usize = 64;

/// What the store saw of a failing microthread, beside the error its call ended
/// with.
pub(super) struct Evidence {
    /// The panic message its panic hook sent, if it panicked.
    pub(super) panic: Option<String>,
    /// A `memory.grow` of it was refused.
    pub(super) memory_refused: bool,
    /// A `table.grow` of one of its tables past weft's limit was refused.
    pub(super) table_refused: bool,
}

/// Describe how a microthread's call failed: its kind, the panic message or the
/// trap in words a user can act on, then the guest backtrace, once.
pub(super) fn failure(run: &Run, me: &Identity, error: &wasmtime::Error, evidence: Evidence) -> Failure {
    if let Some(GaveUp(message)) = error.downcast_ref::<GaveUp>() {
        return me.failure(FailureKind::RestartIntensity, message.clone());
    }
    let trap = error.downcast_ref::<wasmtime::Trap>();
    let (kind, what) = if let Some(exhausted) = error.downcast_ref::<RunFuelExhausted>() {
        (FailureKind::FuelExhausted, exhausted.to_string())
    } else if error.downcast_ref::<Stopped>().is_some() {
        (FailureKind::Cancelled, "cancelled".to_string())
    } else if let Some(long) = error.downcast_ref::<AtomicTooLong>() {
        (FailureKind::Trap, long.to_string())
    } else if let Some(wasmtime::Trap::OutOfFuel) = trap {
        (
            FailureKind::FuelExhausted,
            format!(
                "fuel budget exhausted: it used all of its {} units",
                run.limits.microthread_fuel_budget.unwrap_or(u64::MAX)
            ),
        )
    } else if let Some(wasmtime::Trap::Interrupt) = trap {
        (FailureKind::Cancelled, "cancelled".to_string())
    } else if let Some(p) = evidence.panic {
        // As the guest gave it: a Python traceback keeps its lines (the Rust SDK
        // puts its panics on one line).
        (FailureKind::Panic, p)
    } else if evidence.memory_refused {
        let t = trap.map_or_else(|| root_cause(error), |t| t.to_string());
        (
            FailureKind::OutOfMemory,
            format!(
                "out of memory: its linear memory may not grow past {} bytes ({t})",
                run.limits.max_memory
            ),
        )
    } else if evidence.table_refused {
        let t = trap.map_or_else(|| root_cause(error), |t| t.to_string());
        (
            FailureKind::OutOfMemory,
            format!(
                "out of memory: a table of it may not grow past {} elements \
                 (weft::limits::MAX_TABLE_ELEMENTS) ({t})",
                crate::limits::MAX_TABLE_ELEMENTS
            ),
        )
    } else {
        let t = trap.map_or_else(|| root_cause(error), |t| t.to_string());
        if t.contains("store handle limit exceeded") {
            (
                FailureKind::Trap,
                format!(
                    "{t}: it holds as many handles (join handles, channel ends, sockets) as a \
                     microthread may, {}; raise it with RunOptions::max_handles or \
                     weft run --max-handles",
                    run.limits.store_handles
                ),
            )
        } else {
            (FailureKind::Trap, t)
        }
    };
    let mut message = what;
    if let Some(bt) = error.downcast_ref::<wasmtime::WasmBacktrace>() {
        // wasmtime's rendering, without its heading and its closing note.
        let frames = bt.to_string();
        let mut frames: Vec<&str> = frames
            .lines()
            .filter(|l| l.starts_with(' ') && !l.trim().is_empty())
            .collect();
        if kind == FailureKind::Panic {
            // The innermost frames are the panic machinery (panicking, abort): the
            // message says it panicked; show where.
            let machinery = frames.iter().take_while(|f| is_panic_machinery(f)).count();
            if machinery < frames.len() {
                frames.drain(..machinery);
            }
            // A guest in an interpreted language gave its own backtrace in the
            // message (a Python traceback): the interpreter's frames say nothing more.
            if frames.iter().all(|f| is_interpreter_frame(f)) {
                frames.clear();
            }
        }
        // A deep recursion has as many frames as calls: the innermost lines say
        // where it failed, and the failure stays small.
        let more = frames.len().saturating_sub(MAX_FRAMES);
        frames.truncate(MAX_FRAMES);
        if !frames.is_empty() {
            message.push_str("\nwasm backtrace:\n");
            message.push_str(&frames.join("\n"));
        }
        if more > 0 {
            message.push_str(&format!("\n    … and {more} more lines of backtrace"));
        }
    }
    me.failure(kind, message)
}

/// Whether a backtrace frame belongs to Rust's panic and abort machinery.
fn is_panic_machinery(frame: &str) -> bool {
    const MACHINERY: [&str; 8] = [
        "!abort",
        "panicking",
        "rust_panic",
        "__rust_start_panic",
        "__rust_abort",
        "rust_begin_unwind",
        "process::abort",
        "abort_internal",
    ];
    MACHINERY.iter().any(|m| frame.contains(m)) || frame.contains("__rust_end_short_backtrace")
}

/// Whether a backtrace frame belongs to the interpreter of a guest written in an
/// interpreted language (CPython and componentize-py's runtime; the glue a
/// component's tools generate, which has no names), not to the program's code.
fn is_interpreter_frame(frame: &str) -> bool {
    const INTERPRETERS: [&str; 3] = ["libpython3", "componentize_py_runtime", "<unknown>!"];
    INTERPRETERS.iter().any(|i| frame.contains(i))
}

/// The innermost cause of an error that is not a trap, without the backtrace
/// wasmtime attaches as context (the backtrace is shown once, on its own).
fn root_cause(error: &wasmtime::Error) -> String {
    let chain: Vec<String> = error
        .chain()
        .map(ToString::to_string)
        .filter(|e| !e.contains("wasm backtrace:"))
        .collect();
    chain.join(": ")
}

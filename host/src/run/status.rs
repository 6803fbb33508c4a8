//! How a run ended ([`ExitStatus`]), and the exit code a command-line runner gives for it.

use crate::error::Failure;

/// How a program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitStatus {
    /// `main` returned (code 0), returned an error (code 1), or some microthread
    /// called `exit(code)`; 141 when it wrote to the host's stdout, inherited, and
    /// that was a closed pipe
    /// ([`RunOptions::inherit_stdout`](crate::RunOptions::inherit_stdout)).
    Exited(i32),
    /// `main` failed: it trapped, panicked, used up its fuel budget, or a child
    /// failure reached it; or the run's fuel budget ran out.
    Failed(Failure),
    /// The program was interrupted (Ctrl-C, SIGINT) and cancelled.
    Interrupted,
    /// The program was asked to stop (SIGTERM) and cancelled.
    Terminated,
    /// Every live microthread was blocked on a channel or a join that nothing could
    /// ever complete: the program was stopped. The report has one line per
    /// microthread: who it is and what it waits on.
    Deadlocked(String),
    /// The run was cancelled: [`RunHandle::cancel`](crate::RunHandle::cancel), the
    /// handle dropped, or the runtime dropped while it ran.
    Cancelled,
    /// The run's deadline ([`RunOptions::deadline`](crate::RunOptions::deadline))
    /// passed before it ended.
    DeadlineExceeded,
}

impl ExitStatus {
    /// The process exit code a command-line runner should use: the guest's code;
    /// 134 for a failure (what `wasmtime run` gives a trap); 130 for an interrupt or
    /// a cancellation, 143 for SIGTERM (128 + the signal, as shells do); 124 for a
    /// deadline (as `timeout(1)` does); 70 (`EX_SOFTWARE`) for a deadlock.
    pub fn code(&self) -> i32 {
        match self {
            ExitStatus::Exited(code) => *code,
            ExitStatus::Failed(_) => 134,
            ExitStatus::Interrupted | ExitStatus::Cancelled => 130,
            ExitStatus::Terminated => 143,
            ExitStatus::DeadlineExceeded => 124,
            ExitStatus::Deadlocked(_) => 70,
        }
    }

    /// Whether the program exited with code 0.
    pub fn success(&self) -> bool {
        matches!(self, ExitStatus::Exited(0))
    }
}

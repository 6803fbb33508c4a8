//! What a microthread writes to stdout and stderr reaches them in whole lines, so
//! that the output of many microthreads is never interleaved within a line: each
//! microthread's stream keeps a line until its end arrives, then writes it in one
//! piece (a single write to the host's stdio, or to the run's buffer).
//!
//! A partial line is written when its end comes, when it grows past
//! [`MAX_PARTIAL`], when the run's buffered-bytes budget has no room for it (the
//! partial lines held count against it, as the messages in its channels do), or
//! when the microthread's stream goes away (the microthread ended). A flush does
//! not write it: a prompt without a newline waits for one.

use std::sync::Arc;

use bytes::Bytes;

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

use crate::channel::Budget;
use crate::sync::until;

/// The longest partial line kept back.
pub(crate) const MAX_PARTIAL: usize = 64 << 10;

/// Wraps a guest's stdout or stderr so that each microthread writes whole lines.
pub(crate) struct Lines<S> {
    stream: S,
    /// The run's budget, which the partial lines held count against.
    budget: Arc<Budget>,
}

impl<S> Lines<S> {
    pub(crate) fn new(stream: S, budget: &Arc<Budget>) -> Self {
        Lines {
            stream,
            budget: budget.clone(),
        }
    }
}

impl<S: IsTerminal> IsTerminal for Lines<S> {
    fn is_terminal(&self) -> bool {
        self.stream.is_terminal()
    }
}

impl<S: StdoutStream> StdoutStream for Lines<S> {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // The async (WASI 0.3) stream is not used by weft's guests: no lines there.
        self.stream.async_stream()
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineStream {
            inner: self.stream.p2_stream(),
            partial: Vec::new(),
            budget: self.budget.clone(),
        })
    }
}

/// One microthread's stream: complete lines go through, the rest waits.
struct LineStream {
    inner: Box<dyn OutputStream>,
    /// Counted in `budget`, all of it.
    partial: Vec<u8>,
    budget: Arc<Budget>,
}

impl LineStream {
    /// The partial line, no longer held.
    fn take_partial(&mut self) -> Vec<u8> {
        let partial = std::mem::take(&mut self.partial);
        self.budget.let_go(partial.len() as u64);
        partial
    }

    /// Keep `rest` (no line end in it) after the partial line; write them out now
    /// if that makes the line too long, or if the run's budget has no room.
    fn keep(&mut self, rest: &[u8]) -> StreamResult<()> {
        if rest.is_empty() {
            return Ok(());
        }
        if self.partial.len() + rest.len() >= MAX_PARTIAL || !self.budget.hold(rest.len() as u64) {
            let mut long = self.take_partial();
            long.extend_from_slice(rest);
            return self.inner.write(long.into());
        }
        self.partial.extend_from_slice(rest);
        Ok(())
    }
}

impl OutputStream for LineStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        match bytes.iter().rposition(|&b| b == b'\n') {
            Some(end) if self.partial.is_empty() && end + 1 == bytes.len() => self.inner.write(bytes),
            Some(end) => {
                let mut lines = self.take_partial();
                lines.extend_from_slice(&bytes[..=end]);
                self.inner.write(lines.into())?;
                self.keep(&bytes[end + 1..])
            }
            None => self.keep(&bytes),
        }
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineStream {
    async fn ready(&mut self) {
        self.inner.ready().await;
    }
}

impl Drop for LineStream {
    fn drop(&mut self) {
        if !self.partial.is_empty() {
            let rest = self.take_partial();
            // The microthread has ended: a write error has nobody left to tell.
            let _unreported = self.inner.write(rest.into());
        }
    }
}

/// The exit code of a run whose inherited stdout was a closed pipe: 128 + SIGPIPE,
/// what a shell reports for a native program that SIGPIPE ended.
pub(crate) const SIGPIPE_EXIT: i32 = 141;

/// Whether the host's stdout, as a run inherited it, turned out to be a pipe nobody
/// reads any more (`weft run app.wasm | head -1`). One per run.
#[derive(Clone, Default)]
pub(crate) struct StdoutClosed(std::sync::Arc<(std::sync::atomic::AtomicBool, tokio::sync::Notify)>);

impl StdoutClosed {
    fn close(&self) {
        self.0.0.store(true, std::sync::atomic::Ordering::Release);
        self.0.1.notify_waiters();
    }

    fn is_closed(&self) -> bool {
        self.0.0.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Resolves once the stdout is found closed.
    pub(crate) async fn wait(&self) {
        until(&self.0.1, || self.is_closed().then_some(())).await;
    }
}

impl std::fmt::Debug for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_closed() { "closed" } else { "open" })
    }
}

/// The host's stdout, for a run that inherits it. A write that finds it a closed
/// pipe ends the run, as SIGPIPE ends a native program: the guest never sees an
/// error (which it would report, to a stderr that may well be a terminal); its
/// stdout just never becomes writable again, until the run's end stops it.
pub(crate) struct HostStdout(pub(crate) StdoutClosed);

impl IsTerminal for HostStdout {
    fn is_terminal(&self) -> bool {
        std::io::IsTerminal::is_terminal(&std::io::stdout())
    }
}

impl StdoutStream for HostStdout {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        std::io::stdout().async_stream()
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(HostStdoutStream {
            inner: std::io::stdout().p2_stream(),
            closed: self.0.clone(),
        })
    }
}

struct HostStdoutStream {
    inner: Box<dyn OutputStream>,
    closed: StdoutClosed,
}

impl HostStdoutStream {
    /// `result`, unless it says the pipe is closed: then the run ends.
    fn seen(&self, result: StreamResult<()>) -> StreamResult<()> {
        match result {
            // wasmtime-wasi maps EPIPE to `Closed`.
            Err(StreamError::Closed) => {
                self.closed.close();
                Ok(())
            }
            other => other,
        }
    }
}

impl OutputStream for HostStdoutStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if self.closed.is_closed() {
            return Ok(());
        }
        let written = self.inner.write(bytes);
        self.seen(written)
    }

    fn flush(&mut self) -> StreamResult<()> {
        if self.closed.is_closed() {
            return Ok(());
        }
        let flushed = self.inner.flush();
        self.seen(flushed)
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        if self.closed.is_closed() {
            return Ok(0);
        }
        self.inner.check_write()
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for HostStdoutStream {
    async fn ready(&mut self) {
        if self.closed.is_closed() {
            // Never writable again: the run is ending, and stops this microthread.
            return std::future::pending().await;
        }
        self.inner.ready().await;
    }
}

/// Where a program's stdout or stderr goes: discarded (the default), the host
/// process's, or a buffer. For stderr, also where the run's own reports go (the
/// application's log when discarded).
#[derive(Clone, Debug, Default)]
pub(crate) enum Output {
    #[default]
    Discarded,
    Inherited,
    Buffer(OutputBuffer),
}

impl Output {
    /// Write one of the run's own reports, `line` (ending in a newline), there.
    pub(crate) fn write(&self, line: &str) {
        match self {
            Output::Buffer(buffer) => buffer.append(line.as_bytes()),
            Output::Inherited => {
                use std::io::Write;
                // A closed stderr: nowhere left to report to.
                let _closed = std::io::stderr().write_all(line.as_bytes());
            }
            Output::Discarded => tracing::warn!("{}", line.trim_end()),
        }
    }
}

/// Collects what a program writes to its stdout or stderr, for the embedder to
/// read; shared by all the program's microthreads. Cheap to clone.
///
/// ```no_run
/// # fn main() -> Result<(), weft::Error> {
/// let out = weft::OutputBuffer::new();
/// let program = weft::Runtime::new()?.load("hello.wasm")?;
/// program.run(&weft::RunOptions::new().stdout(out.clone()))?;
/// print!("{}", out.to_string_lossy());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OutputBuffer(pub(crate) MemoryOutputPipe);

impl OutputBuffer {
    /// A buffer that holds up to 64 MiB; a guest writing past that gets a write error.
    pub fn new() -> Self {
        Self::with_capacity(64 << 20)
    }

    /// A buffer that holds up to `bytes`.
    pub fn with_capacity(bytes: usize) -> Self {
        OutputBuffer(MemoryOutputPipe::new(bytes))
    }

    /// Append `bytes`, as a guest's write does (what does not fit is dropped).
    pub(crate) fn append(&self, bytes: &[u8]) {
        use wasmtime_wasi::p2::OutputStream;
        let mut pipe = self.0.clone();
        // Full: the host's report is dropped, as a guest's write would fail.
        let _full = pipe.write(bytes::Bytes::copy_from_slice(bytes));
    }

    /// Everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.0.contents().to_vec()
    }

    /// Everything written so far, as text.
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(&self.0.contents()).into_owned()
    }
}

impl Default for OutputBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for OutputBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputBuffer")
            .field("len", &self.0.contents().len())
            .finish()
    }
}

//! What a microthread writes to stdout and stderr reaches them in whole lines, so
//! that the output of many microthreads is never interleaved within a line: each
//! microthread's stream keeps a line until its end arrives, then writes it in one
//! piece (a single write to the host's stdio, or to the run's buffer).
//!
//! A partial line is written when its end comes, when it grows past
//! [`MAX_PARTIAL`], or when the microthread's stream goes away (the microthread
//! ended). A flush does not write it: a prompt without a newline waits for one.

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// The longest partial line kept back.
pub(crate) const MAX_PARTIAL: usize = 64 << 10;

/// Wraps a guest's stdout or stderr so that each microthread writes whole lines.
pub(crate) struct Lines<S>(pub(crate) S);

impl<S: IsTerminal> IsTerminal for Lines<S> {
    fn is_terminal(&self) -> bool {
        self.0.is_terminal()
    }
}

impl<S: StdoutStream> StdoutStream for Lines<S> {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // The async (WASI 0.3) stream is not used by weft's guests: no lines there.
        self.0.async_stream()
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineStream {
            inner: self.0.p2_stream(),
            partial: Vec::new(),
        })
    }
}

/// One microthread's stream: complete lines go through, the rest waits.
struct LineStream {
    inner: Box<dyn OutputStream>,
    partial: Vec<u8>,
}

impl OutputStream for LineStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        match bytes.iter().rposition(|&b| b == b'\n') {
            Some(end) if self.partial.is_empty() && end + 1 == bytes.len() => self.inner.write(bytes),
            Some(end) => {
                let mut lines = std::mem::take(&mut self.partial);
                lines.extend_from_slice(&bytes[..=end]);
                self.partial.extend_from_slice(&bytes[end + 1..]);
                self.inner.write(lines.into())
            }
            None => {
                self.partial.extend_from_slice(&bytes);
                if self.partial.len() >= MAX_PARTIAL {
                    let long = std::mem::take(&mut self.partial);
                    return self.inner.write(long.into());
                }
                Ok(())
            }
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
            let rest = std::mem::take(&mut self.partial);
            // The microthread has ended: a write error has nobody left to tell.
            let _unreported = self.inner.write(rest.into());
        }
    }
}

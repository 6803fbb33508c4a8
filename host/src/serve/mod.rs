//! Serving HTTP: a `wasi:http/proxy` component answers each request in a
//! microthread of its own, a fresh instance, scheduled with fuel beside the
//! others, so that a handler that spins cannot hold the rest up
//! ([`Program::serve`](crate::Program::serve), `weft serve`).
//!
//! A server is a run without `main` (its microthread 0 only waits) whose
//! microthreads are the requests in flight: the run's limits hold for each
//! request (memory, fuel), its view and metrics show them, and its stderr says
//! what failed. Connections are hyper's, on a thread of the server's own
//! (`accept`); a request's microthread, its deadline and its answer when the
//! handler gives none are `request`'s.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = weft::Runtime::new()?;
//! let program = runtime.load("hello-http.wasm")?;
//! let server = program.serve(&weft::ServeOptions::new().listen("127.0.0.1:0".parse()?))?;
//! println!("serving on http://{}/", server.local_addr());
//! // … later: let the requests in flight finish, then stop.
//! server.stop();
//! let stopped = server.wait();
//! println!("{}", stopped.stats);
//! # Ok(()) }
//! ```

mod accept;
mod request;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::Error;
use crate::microthread::Image;
use crate::run::{ExitStatus, RequestOutcome, Run, RunHandle, RunOptions, RunView};

/// The address a server listens on unless told otherwise (`wasmtime serve`'s).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// How long a request may take, its response's body included, unless told
/// otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the requests in flight get to finish when a server stops, unless
/// told otherwise.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);

/// How [`Program::serve`](crate::Program::serve) serves: where it listens, how
/// long and how many requests it lets run, and the run's options (limits, grants,
/// environment), which hold for each request.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub(crate) listen: SocketAddr,
    pub(crate) request_timeout: Duration,
    pub(crate) max_requests: Option<u32>,
    pub(crate) grace: Duration,
    pub(crate) run: RunOptions,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions::new()
    }
}

impl ServeOptions {
    /// Listen on 127.0.0.1:8080, 30 s per request, as many requests at once as
    /// the run may have microthreads, 10 s for those in flight at a stop.
    pub fn new() -> ServeOptions {
        ServeOptions {
            listen: DEFAULT_LISTEN.parse().expect("a socket address"),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_requests: None,
            grace: DEFAULT_STOP_GRACE,
            run: RunOptions::new(),
        }
    }

    /// Listen on `addr` (port 0: any free port; see [`Server::local_addr`]).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// End a request that takes longer than `timeout`, its response's body
    /// included: its microthread is stopped (even one spinning without host
    /// calls, at its next fuel yield), and a request not yet answered gets 504.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Handle at most `n` requests at once; one more is answered 503 at once.
    pub fn max_requests(mut self, n: u32) -> Self {
        self.max_requests = Some(n);
        self
    }

    /// How long the requests in flight get to finish when the server stops
    /// ([`Server::stop`]) before they are stopped.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The run's options: its limits (memory and fuel hold for each request),
    /// grants (outgoing requests need `connect` ones), environment, stdio.
    pub fn run_options(mut self, options: RunOptions) -> Self {
        self.run = options;
        self
    }
}

/// What a server has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServeStats {
    /// Requests handed to a handler.
    pub started: u64,
    /// Requests the handler answered.
    pub answered: u64,
    /// Requests whose handler failed or ended without an answer (500).
    pub failed: u64,
    /// Requests stopped at the request timeout (504).
    pub timed_out: u64,
    /// Requests refused at once: too many in flight, or the server stopping (503).
    pub refused: u64,
    /// Requests being handled now.
    pub in_flight: u64,
}

impl ServeStats {
    fn of(run: &Run) -> ServeStats {
        let s = run.stats();
        ServeStats {
            started: s.requests_started,
            answered: s.requests_answered,
            failed: s.requests_failed,
            timed_out: s.requests_timed_out,
            refused: s.requests_refused,
            in_flight: s
                .requests_started
                .saturating_sub(s.requests_answered + s.requests_failed + s.requests_timed_out),
        }
    }
}

impl std::fmt::Display for ServeStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "requests: {} started, {} answered, {} failed (500), {} timed out (504), {} refused (503), {} in flight",
            self.started, self.answered, self.failed, self.timed_out, self.refused, self.in_flight
        )
    }
}

/// What a server's requests share: its run, the program, its bounds.
pub(crate) struct Serving {
    run: Arc<Run>,
    image: Arc<dyn Image>,
    request_timeout: Duration,
    /// Requests in flight: a permit each.
    room: Arc<tokio::sync::Semaphore>,
    max_requests: u32,
    stopping: AtomicBool,
}

/// A server started by [`Program::serve`](crate::Program::serve): it serves
/// until [`stop`](Server::stop) (or until its run ends: a deadline, a spent fuel
/// budget). Dropping it stops it at once, without a grace period.
pub struct Server {
    addr: SocketAddr,
    serving: Arc<Serving>,
    run: RunHandle,
    stop: Arc<accept::Stop>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Serve `image` in `run` (started without `main`) on `listener`.
    pub(crate) fn start(
        image: Arc<dyn Image>,
        run: RunHandle,
        listener: std::net::TcpListener,
        options: &ServeOptions,
    ) -> Result<Server, Error> {
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Serve(format!("its socket: {e}")))?;
        let max_requests = options
            .max_requests
            .unwrap_or(run.run().limits.max_microthreads.saturating_sub(1).max(1));
        let serving = Arc::new(Serving {
            run: run.run().clone(),
            image,
            request_timeout: options.request_timeout,
            room: Arc::new(tokio::sync::Semaphore::new(max_requests as usize)),
            max_requests,
            stopping: AtomicBool::new(false),
        });
        let stop = Arc::new(accept::Stop::default());
        let thread = accept::start(listener, serving.clone(), stop.clone(), options.grace)
            .map_err(|e| Error::Serve(format!("cannot start its thread: {e}")))?;
        Ok(Server {
            addr,
            serving,
            run,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its requests so far.
    pub fn stats(&self) -> ServeStats {
        ServeStats::of(&self.serving.run)
    }

    /// A view of its run: the requests in flight are its microthreads.
    pub fn view(&self) -> RunView {
        self.run.view()
    }

    /// Stop: accept no more connections, answer new requests on open ones 503,
    /// let the requests in flight finish within the grace period, then stop
    /// what still runs and end the run. Returns at once; [`wait`](Server::wait)
    /// for the end.
    pub fn stop(&self) {
        self.stopper().stop();
    }

    /// A handle that stops the server from anywhere ([`Stopper::stop`]).
    pub fn stopper(&self) -> Stopper {
        Stopper {
            serving: self.serving.clone(),
            stop: self.stop.clone(),
        }
    }

    /// Wait until the server has stopped (after [`stop`](Server::stop), or
    /// because its run ended: a deadline, a spent fuel budget), and return how.
    pub fn wait(mut self) -> Stopped {
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(target: "weft::serve", "the server's thread panicked");
        }
        // Stopped, its thread has cancelled the run; else the run ended first.
        self.run.cancel();
        let status = self.run.wait_by_ref();
        let stats = self.stats();
        drop(self);
        Stopped { status, stats }
    }
}

/// How a server ended: [`Server::wait`]'s answer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Stopped {
    /// How its run ended: [`ExitStatus::Cancelled`] when it was stopped, else
    /// what ended it (a deadline, a spent fuel budget).
    pub status: ExitStatus,
    /// What it did.
    pub stats: ServeStats,
}

/// Stops a server, from any thread: [`Server::stopper`].
#[derive(Clone)]
pub struct Stopper {
    serving: Arc<Serving>,
    stop: Arc<accept::Stop>,
}

impl Stopper {
    /// As [`Server::stop`].
    pub fn stop(&self) {
        self.serving.stopping.store(true, Ordering::Release);
        self.stop.request();
    }
}

impl std::fmt::Debug for Stopper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stopper").finish_non_exhaustive()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.serving.stopping.store(true, Ordering::Release);
            self.stop.now();
        }
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Serving {
    fn count(&self, outcome: RequestOutcome) {
        self.run.count_request(outcome);
    }
}

//! `--dashboard ADDR`: a page that shows the run live, in the browser.
//!
//! - `GET /` the page (`page/`: HTML, script and style embedded in the binary; no
//!   CDN), which follows `GET /events`: server-sent events, a snapshot of the run
//!   every [`TICK`], the last one when the run ends (its status, and a deadlock's
//!   report).
//! - `GET /api/snapshot` one snapshot, as JSON (what `weft top` reads): the
//!   microthreads (at most [`MAX_ROWS`]; `total` says how many there are), the
//!   open channels with who waits on them (as many; `channels_total`), the
//!   counters, the workers, and a sample a second of the last [`HISTORY`]
//!   seconds for the charts.
//! - `POST /api/cancel/ID` cancels microthread ID, only with
//!   `--dashboard-control`, and only with the token printed at start in an
//!   `Authorization: Bearer TOKEN` header (which a page from elsewhere cannot
//!   send without the browser asking this endpoint first, which it never allows).

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use weft::{ExitStatus, MicrothreadState, RunView};

use super::{Body, Handled, bind, respond, serve, text};

/// How often the page gets a snapshot.
const TICK: Duration = Duration::from_millis(500);

/// Seconds of history kept for the charts (a sample a second).
const HISTORY: usize = 300;

/// Microthreads a snapshot lists at most.
const MAX_ROWS: usize = 1000;

const INDEX: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");
const STYLE: &str = include_str!("page/style.css");

/// The dashboard of a run: told of the run once it starts, and of its end.
#[derive(Clone)]
pub(in crate::cli) struct Dashboard(Arc<Shared>);

struct Shared {
    view: OnceLock<RunView>,
    metrics: weft::metrics::Metrics,
    started: Instant,
    history: Mutex<VecDeque<Value>>,
    /// How the run ended, once it has: the last snapshot's `status` and `report`.
    ended: Mutex<Option<(String, Option<String>)>>,
    /// The event streams open now.
    streams: AtomicUsize,
    /// The streams that have sent the end.
    told: AtomicUsize,
    /// The token that allows cancelling (`--dashboard-control`).
    token: Option<String>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Dashboard {
    /// Show `view`, the run's, from now on.
    pub(in crate::cli) fn watch(&self, view: RunView) {
        let _ = self.0.view.set(view);
    }

    /// The run ended with `status`: the pages get it, and then the process may
    /// end (waited for at most a second, for the pages open now to be told).
    pub(in crate::cli) fn ended(&self, status: &ExitStatus) {
        let report = match status {
            ExitStatus::Deadlocked(report) => Some(report.clone()),
            ExitStatus::Failed(f) => Some(f.to_string()),
            _ => None,
        };
        *lock(&self.0.ended) = Some((describe(status), report));
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.0.told.load(Ordering::SeqCst) < self.0.streams.load(Ordering::SeqCst)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn describe(status: &ExitStatus) -> String {
    match status {
        ExitStatus::Exited(code) => format!("exited with {code}"),
        ExitStatus::Failed(f) => format!("failed: {}", f.summary()),
        ExitStatus::Interrupted => "interrupted".into(),
        ExitStatus::Terminated => "terminated".into(),
        ExitStatus::Deadlocked(_) => "deadlocked".into(),
        ExitStatus::Cancelled => "cancelled".into(),
        ExitStatus::DeadlineExceeded => "past its deadline".into(),
        other => format!("{other:?}"),
    }
}

/// Serve the dashboard on `addr` (`--dashboard`) from now until the process ends:
/// the dashboard, the address it listens on (port 0 is chosen by the system), and
/// the token that allows cancelling, if `control`.
pub(in crate::cli) fn serve_dashboard(
    addr: SocketAddr,
    public: bool,
    control: bool,
    metrics: weft::metrics::Metrics,
) -> Result<(Dashboard, SocketAddr, Option<String>)> {
    let listener = bind("--dashboard", addr, public)?;
    let bound = listener
        .local_addr()
        .context("--dashboard: the socket has no address")?;
    let token = match control {
        true => Some(new_token().context("--dashboard-control: cannot make a token")?),
        false => None,
    };
    let dashboard = Dashboard(Arc::new(Shared {
        view: OnceLock::new(),
        metrics,
        started: Instant::now(),
        history: Mutex::new(VecDeque::with_capacity(HISTORY)),
        ended: Mutex::new(None),
        streams: AtomicUsize::new(0),
        told: AtomicUsize::new(0),
        token: token.clone(),
    }));
    let shared = dashboard.0.clone();
    let handler = Arc::new(move |request: Request<Incoming>| -> Handled {
        let shared = shared.clone();
        Box::pin(async move { route(&shared, request) })
    });
    serve(listener, "weft-dashboard", public, handler)?;
    // A sample a second for the charts, from now on (a thread: the server's
    // runtime serves requests).
    let sampled = Arc::downgrade(&dashboard.0);
    std::thread::Builder::new()
        .name("weft-dashboard-samples".into())
        .spawn(move || {
            while let Some(shared) = sampled.upgrade() {
                shared.sample();
                drop(shared);
                std::thread::sleep(Duration::from_secs(1));
            }
        })
        .context("--dashboard: cannot start its sampler")?;
    Ok((dashboard, bound, token))
}

/// 128 random bits, in hex.
fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn route(shared: &Arc<Shared>, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_string();
    match (request.method(), path.as_str()) {
        (&Method::GET, "/") => respond(StatusCode::OK, "text/html; charset=utf-8", INDEX),
        (&Method::GET, "/app.js") => respond(StatusCode::OK, "text/javascript; charset=utf-8", SCRIPT),
        (&Method::GET, "/style.css") => respond(StatusCode::OK, "text/css; charset=utf-8", STYLE),
        (&Method::GET, "/api/snapshot") => respond(
            StatusCode::OK,
            "application/json",
            shared.snapshot(true).to_string(),
        ),
        (&Method::GET, "/events") => events(shared.clone()),
        (&Method::POST, p) if p.starts_with("/api/cancel/") => {
            cancel(shared, &request, &p["/api/cancel/".len()..])
        }
        (&Method::GET, _) => text(StatusCode::NOT_FOUND, "not found: the dashboard is at /"),
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "not served here"),
    }
}

fn cancel(shared: &Shared, request: &Request<Incoming>, id: &str) -> Response<Body> {
    let Some(token) = &shared.token else {
        return text(
            StatusCode::FORBIDDEN,
            "cancelling from the dashboard is off: start the run with --dashboard-control",
        );
    };
    let given = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same(given.as_bytes(), token.as_bytes()) {
        return text(
            StatusCode::UNAUTHORIZED,
            "a missing or wrong token: give the one weft printed at start",
        );
    }
    let Ok(id) = id.parse::<u64>() else {
        return text(StatusCode::BAD_REQUEST, format!("{id:?} is no microthread id"));
    };
    match shared.view.get().is_some_and(|v| v.cancel_microthread(id)) {
        true => text(StatusCode::OK, format!("cancelled microthread {id}")),
        false => text(StatusCode::NOT_FOUND, format!("no live microthread {id}")),
    }
}

/// Equal, in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The event stream: a snapshot now, then every [`TICK`], until the run's end
/// has been sent.
fn events(shared: Arc<Shared>) -> Response<Body> {
    shared.streams.fetch_add(1, Ordering::SeqCst);
    struct Open(Arc<Shared>, bool);
    impl Drop for Open {
        fn drop(&mut self) {
            self.0.streams.fetch_sub(1, Ordering::SeqCst);
            if self.1 {
                self.0.told.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
    let open = Open(shared, false);
    let stream = futures_util::stream::unfold((open, true), |(mut open, first)| async move {
        if open.1 {
            return None;
        }
        if !first {
            tokio::time::sleep(TICK).await;
        }
        let snapshot = open.0.snapshot(first);
        if snapshot["status"].is_string() {
            open.1 = true;
            open.0.told.fetch_add(1, Ordering::SeqCst);
        }
        let frame = Frame::data(Bytes::from(format!("data: {snapshot}\n\n")));
        Some((Ok::<_, Infallible>(frame), (open, false)))
    });
    let mut response = Response::new(StreamBody::new(stream.boxed()).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        "text/event-stream".parse().expect("a header"),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        "no-cache".parse().expect("a header"),
    );
    response
}

impl Shared {
    /// Record a sample for the charts.
    fn sample(&self) {
        let Some(view) = self.view.get() else { return };
        let stats = view.stats();
        let workers = self.metrics.workers();
        let busy: f64 = workers.iter().map(|w| w.busy.as_secs_f64()).sum();
        let mut history = lock(&self.history);
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(json!({
            "t": self.started.elapsed().as_secs_f64(),
            "spawned": stats.spawned,
            "live": stats.live,
            "sent": stats.messages_sent,
            "busy": busy,
            "workers": workers.len(),
        }));
    }

    /// The run now; with its whole `history`, or only the last sample.
    fn snapshot(&self, history: bool) -> Value {
        let ended = lock(&self.ended).clone();
        let view = self.view.get();
        let microthreads = view.map(RunView::microthreads).unwrap_or_default();
        let channels = view.map(RunView::channels).unwrap_or_default();
        let stats = view.map(RunView::stats).unwrap_or_default();
        // Who waits on each channel.
        let mut waiting: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
        for m in &microthreads {
            let mut on = |channel: u64, how: &str| {
                waiting
                    .entry(channel)
                    .or_default()
                    .push(json!({"id": m.id, "how": how}));
            };
            match &m.state {
                MicrothreadState::Receiving { channel } => on(*channel, "receiving"),
                MicrothreadState::Sending { channel } => on(*channel, "sending"),
                MicrothreadState::Selecting { channels } => channels.iter().for_each(|c| on(*c, "selecting")),
                _ => {}
            }
        }
        let rows: Vec<Value> = microthreads
            .iter()
            .take(MAX_ROWS)
            .map(|m| {
                json!({
                    "id": m.id,
                    "name": m.name,
                    "parent": m.parent,
                    "node": match &m.state { MicrothreadState::Remote { node } => Some(node.clone()), _ => None },
                    "state": m.state.label(),
                    "waits": m.state.to_string(),
                    "age": m.age.as_secs_f64(),
                    "fuel": m.fuel,
                    "sent": m.messages_sent,
                })
            })
            .collect();
        let channel_total = channels.len();
        let channels: Vec<Value> = channels
            .iter()
            .take(MAX_ROWS)
            .map(|c| {
                json!({
                    "id": c.id,
                    "capacity": c.capacity,
                    "queued": c.queued,
                    "senders": c.senders,
                    "receivers": c.receivers,
                    "waiting": waiting.remove(&c.id).unwrap_or_default(),
                })
            })
            .collect();
        let workers: Vec<Value> = self
            .metrics
            .workers()
            .iter()
            .map(|w| json!({"busy": w.busy.as_secs_f64(), "runs": w.runs, "queued": w.queued}))
            .collect();
        let samples = lock(&self.history);
        let history: Vec<&Value> = match history {
            true => samples.iter().collect(),
            false => samples.back().into_iter().collect(),
        };
        json!({
            "t": self.started.elapsed().as_secs_f64(),
            "control": self.token.is_some(),
            "status": ended.as_ref().map(|e| e.0.clone()),
            "report": ended.and_then(|e| e.1),
            "stats": {
                "spawned": stats.spawned,
                "live": stats.live,
                "peak_live": stats.peak_live,
                "finished": stats.finished,
                "failed": stats.failed,
                "messages_sent": stats.messages_sent,
                "restarts": stats.restarts,
            },
            "total": microthreads.len(),
            "microthreads": rows,
            "channels": channels,
            "channels_total": channel_total,
            "workers": workers,
            "history": history,
        })
    }
}

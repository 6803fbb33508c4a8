//! The endpoints a run is watched through: `--metrics ADDR` serves the runtime's
//! metrics at `/metrics`, in the text format Prometheus scrapes.
//!
//! An endpoint binds only where it is told, and only to a loopback address unless
//! its `--…-public` flag says otherwise: what it shows (the program's names,
//! states, load) is for the operator, not for whoever can reach the machine. It
//! serves on a thread of its own, apart from the run's workers and tokio, at most
//! [`MAX_CONNECTIONS`] connections at once, each closed if its request does not
//! come within [`REQUEST_TIMEOUT`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

/// Connections an endpoint serves at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 64;

/// How long a connection may take to send its request's head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What OpenMetrics text is served as.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Bind `addr` for the endpoint `flag` names (`--metrics`): a loopback address,
/// unless `public`.
fn bind(flag: &str, addr: SocketAddr, public: bool) -> Result<std::net::TcpListener> {
    if !public && !addr.ip().is_loopback() {
        bail!(
            "{flag} {addr}: not a loopback address, so anyone who can reach this machine could \
             watch the run: give 127.0.0.1:PORT, or add {flag}-public to serve it there anyway"
        );
    }
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("{flag}: cannot listen on {addr}"))?;
    listener
        .set_nonblocking(true)
        .with_context(|| format!("{flag}: cannot set up the socket on {addr}"))?;
    Ok(listener)
}

/// Serve `metrics` at `/metrics` on `addr` (`--metrics`), from now until the
/// process ends; the address it listens on (a port 0 is chosen by the system).
pub(super) fn serve_metrics(
    addr: SocketAddr,
    public: bool,
    metrics: weft::metrics::Metrics,
) -> Result<SocketAddr> {
    let listener = bind("--metrics", addr, public)?;
    let bound = listener
        .local_addr()
        .context("--metrics: the socket has no address")?;
    let handler = Arc::new(move |request: &Request<Incoming>| -> Response<Full<Bytes>> {
        match (request.method(), request.uri().path()) {
            (&Method::GET, "/metrics") => respond(StatusCode::OK, OPENMETRICS, metrics.encode()),
            (&Method::GET, "/") => respond(
                StatusCode::OK,
                "text/plain; charset=utf-8",
                "weft: the run's metrics are at /metrics\n".into(),
            ),
            (&Method::GET, _) => respond(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "not found: try /metrics\n".into(),
            ),
            _ => respond(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                "only GET is served here\n".into(),
            ),
        }
    });
    serve(listener, "weft-metrics", handler)?;
    Ok(bound)
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

type Handler = Arc<dyn Fn(&Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync>;

/// Serve `listener` with `handler` on a thread named `name`, with a tokio
/// runtime of its own.
fn serve(listener: std::net::TcpListener, name: &str, handler: Handler) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .with_context(|| format!("{name}: cannot start its runtime"))?;
    let listener = {
        let _entered = runtime.enter();
        tokio::net::TcpListener::from_std(listener)
            .with_context(|| format!("{name}: cannot use its socket"))?
    };
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || runtime.block_on(accept(listener, handler)))
        .with_context(|| format!("{name}: cannot start its thread"))?;
    Ok(())
}

async fn accept(listener: tokio::net::TcpListener, handler: Handler) {
    let room = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = room.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, say: wait a little rather than spin.
                tracing::warn!(target: "weft::observe", "cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let response = handler(&request);
                async move { Ok::<_, Infallible>(response) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(REQUEST_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(target: "weft::observe", "a connection ended: {e}");
            }
            drop(permit);
        });
    }
}

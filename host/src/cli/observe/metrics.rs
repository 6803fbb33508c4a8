//! `--metrics ADDR`: the runtime's metrics at `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};

use super::{Handled, bind, respond, serve, text};

/// What OpenMetrics text is served as.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serve `metrics` at `/metrics` on `addr` (`--metrics`), from now until the
/// process ends; the address it listens on (a port 0 is chosen by the system).
pub(in crate::cli) fn serve_metrics(
    addr: SocketAddr,
    public: bool,
    metrics: weft::metrics::Metrics,
) -> Result<SocketAddr> {
    let listener = bind("--metrics", addr, public)?;
    let bound = listener
        .local_addr()
        .context("--metrics: the socket has no address")?;
    let handler = Arc::new(move |request: Request<Incoming>| -> Handled {
        let response = match (request.method(), request.uri().path()) {
            (&Method::GET, "/metrics") => respond(StatusCode::OK, OPENMETRICS, metrics.encode()),
            (&Method::GET, "/") => text(StatusCode::OK, "weft: the run's metrics are at /metrics"),
            (&Method::GET, _) => text(StatusCode::NOT_FOUND, "not found: try /metrics"),
            _ => text(StatusCode::METHOD_NOT_ALLOWED, "only GET is served here"),
        };
        Box::pin(async move { response })
    });
    serve(listener, "weft-metrics", public, handler)?;
    Ok(bound)
}

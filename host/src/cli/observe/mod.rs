//! The endpoints a run is watched through: `--metrics ADDR` serves the runtime's
//! metrics at `/metrics`, in the text format Prometheus scrapes (`metrics`);
//! `--dashboard ADDR` serves a page that shows the run live, and the JSON it
//! reads, which `weft top` reads too (`dashboard`).
//!
//! An endpoint binds only where it is told, and only to a loopback address unless
//! its `--…-public` flag says otherwise: what it shows (the program's names,
//! states, load) is for the operator, not for whoever can reach the machine. On
//! loopback it also answers only requests addressed to loopback (a `Host` of
//! `127.0.0.1`, `localhost` or `[::1]`), so that a web page elsewhere cannot read
//! it through a name that resolves to 127.0.0.1. It serves on a thread of its
//! own, apart from the run's workers and tokio, at most [`MAX_CONNECTIONS`]
//! connections at once, each closed if its request does not come within
//! [`REQUEST_TIMEOUT`].

mod dashboard;
mod metrics;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

pub(super) use dashboard::{Dashboard, serve_dashboard};
pub(super) use metrics::serve_metrics;

/// Connections an endpoint serves at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 64;

/// How long a connection may take to send its request's head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A response's body: whole, or a stream (the dashboard's events).
type Body = UnsyncBoxBody<Bytes, Infallible>;

type Handled = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// What answers an endpoint's requests.
type Handler = Arc<dyn Fn(Request<Incoming>) -> Handled + Send + Sync>;

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

/// A whole response.
fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed_unsync());
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

/// A short plain-text answer.
fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut body = body.into();
    body.push('\n');
    respond(status, "text/plain; charset=utf-8", body)
}

/// Whether a request's `Host` names loopback (what a request to a loopback
/// endpoint from this machine's own clients says).
fn addressed_to_loopback(request: &Request<Incoming>) -> bool {
    let Some(host) = request
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Serve `listener` with `handler` on a thread named `name`, with a tokio
/// runtime of its own; `public`: answer requests for any host.
fn serve(listener: std::net::TcpListener, name: &str, public: bool, handler: Handler) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .with_context(|| format!("{name}: cannot start its runtime"))?;
    let listener = {
        let _entered = runtime.enter();
        tokio::net::TcpListener::from_std(listener)
            .with_context(|| format!("{name}: cannot use its socket"))?
    };
    let handler: Handler = match public {
        true => handler,
        false => Arc::new(move |request: Request<Incoming>| -> Handled {
            if addressed_to_loopback(&request) {
                handler(request)
            } else {
                Box::pin(async {
                    text(
                        StatusCode::MISDIRECTED_REQUEST,
                        "this endpoint answers requests to 127.0.0.1, localhost or [::1] only",
                    )
                })
            }
        }),
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
                let response = handler(request);
                async move { Ok::<_, Infallible>(response.await) }
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

/// Start what `args` asks for to watch a run of `runtime`: its metrics, its
/// dashboard (to be given the run's view), each said on stderr with its address.
pub(super) fn start(args: &super::args::ObserveArgs, runtime: &weft::Runtime) -> Result<Option<Dashboard>> {
    if let Some(addr) = args.metrics {
        let bound = serve_metrics(addr, args.metrics_public, runtime.metrics().clone())?;
        super::report::report(format_args!("weft: metrics at http://{bound}/metrics"));
    }
    let Some(addr) = args.dashboard else {
        return Ok(None);
    };
    let (dashboard, bound, token) = serve_dashboard(
        addr,
        args.dashboard_public,
        args.dashboard_control,
        runtime.metrics().clone(),
    )?;
    match token {
        Some(token) => super::report::report(format_args!(
            "weft: dashboard at http://{bound}/ (control token {token})"
        )),
        None => super::report::report(format_args!("weft: dashboard at http://{bound}/")),
    }
    Ok(Some(dashboard))
}

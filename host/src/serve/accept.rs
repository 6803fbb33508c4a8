//! A server's connections: accepted on a thread of the server's own (a tokio
//! runtime of one thread: parsing HTTP is little work beside the handlers', which
//! run on the workers), each served by hyper; and its stop, gentle or at once.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Notify;

use super::Serving;

/// How long the requests stopped at the end get to be counted.
const COUNT_WAIT: Duration = Duration::from_secs(5);

/// How long a client may take to send a request's head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// A request to stop, gently (the requests in flight get the grace period) or
/// at once.
#[derive(Default)]
pub(super) struct Stop {
    asked: AtomicBool,
    at_once: AtomicBool,
    notify: Notify,
}

impl Stop {
    pub(super) fn request(&self) {
        self.asked.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    pub(super) fn now(&self) {
        self.at_once.store(true, Ordering::Release);
        self.request();
    }

    async fn requested(&self) {
        self.until(&self.asked).await;
    }

    async fn at_once(&self) {
        self.until(&self.at_once).await;
    }

    async fn until(&self, flag: &AtomicBool) {
        loop {
            let notified = self.notify.notified();
            if flag.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

/// Serve `listener` on a thread of its own until `stop` or the run's end; then
/// let the requests in flight finish within `grace`, and end the run.
pub(super) fn start(
    listener: std::net::TcpListener,
    serving: Arc<Serving>,
    stop: Arc<Stop>,
    grace: Duration,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    listener.set_nonblocking(true)?;
    let listener = {
        let _entered = runtime.enter();
        tokio::net::TcpListener::from_std(listener)?
    };
    std::thread::Builder::new()
        .name("weft-serve".into())
        .spawn(move || runtime.block_on(serve(listener, serving, stop, grace)))
}

async fn serve(listener: tokio::net::TcpListener, serving: Arc<Serving>, stop: Arc<Stop>, grace: Duration) {
    let connections = hyper_util::server::graceful::GracefulShutdown::new();
    let run = serving.run.clone();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, say: wait a little rather than spin.
                    tracing::warn!(target: "weft::serve", "cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.requested() => break,
            _ = run.end() => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(target: "weft::serve", "no TCP_NODELAY on a connection: {e}");
        }
        let serving = serving.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let serving = serving.clone();
            async move { Ok::<_, Infallible>(super::request::answer(serving, request).await) }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEAD_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(target: "weft::serve", "a connection ended: {e}");
            }
        });
    }
    drop(listener);
    serving.stopping.store(true, Ordering::Release);
    let all = serving.max_requests;
    if !stop.at_once.load(Ordering::Acquire) {
        // Each connection ends once its request in flight is answered (an idle
        // one at once), and each request once its microthread has ended (it may
        // go on after its answer, or have lost its client).
        let drained = async {
            connections.shutdown().await;
            let _all_back = serving.room.acquire_many(all).await;
        };
        let drained = tokio::select! {
            () = drained => true,
            () = tokio::time::sleep(grace) => false,
            () = stop.at_once() => false,
        };
        if !drained {
            tracing::debug!(target: "weft::serve", "the stop's grace period is over: the requests in flight are stopped");
        }
    }
    run.cancel();
    // The requests stopped now are counted as their microthreads end, which is
    // soon: each is stopped where it is.
    let counted = tokio::time::timeout(COUNT_WAIT, serving.room.acquire_many(all)).await;
    if counted.is_err() {
        tracing::debug!(target: "weft::serve", "some requests stopped at the end were not counted");
    }
}

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

/// How long the requests stopped at the end get to be answered and counted.
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
    // Each connection ends once its request in flight is answered (an idle one
    // at once), and each request once its microthread has ended (it may go on
    // after its answer, or have lost its client): both within the grace.
    let connections_closed = connections.shutdown();
    tokio::pin!(connections_closed);
    let mut closed = false;
    if !stop.at_once.load(Ordering::Acquire) {
        let grace_over = tokio::time::sleep(grace);
        tokio::pin!(grace_over);
        closed = tokio::select! {
            () = &mut connections_closed => true,
            () = &mut grace_over => false,
            () = stop.at_once() => false,
        };
        let drained = closed
            && tokio::select! {
                all_back = serving.room.acquire_many(all) => all_back.is_ok(),
                () = &mut grace_over => false,
                () = stop.at_once() => false,
            };
        if !drained {
            tracing::debug!(target: "weft::serve", "the stop's grace period is over: the requests in flight are stopped");
        }
    }
    run.cancel();
    // The requests stopped now are answered (503) on their connections, which
    // then close, and counted as their microthreads end: soon, each is stopped
    // where it is.
    let answered_and_counted = tokio::time::timeout(COUNT_WAIT, async {
        if !closed {
            (&mut connections_closed).await;
        }
        let _all_back = serving.room.acquire_many(all).await;
    })
    .await;
    if answered_and_counted.is_err() {
        tracing::debug!(target: "weft::serve", "some requests stopped at the end were not answered or counted");
    }
}

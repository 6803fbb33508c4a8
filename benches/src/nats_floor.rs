//! The raw NATS floor under weft's remote channels: what core NATS itself costs over
//! loopback, with async-nats (the client weft's cluster uses) against a real
//! `nats-server` ([`weft_tests::nats::NatsServer`]).
//!
//! Two figures, each with two clients of the server in this process (two
//! connections, as two nodes have), on a tokio runtime of two worker threads:
//! - [`request_reply_round_trip`]: one client answers requests on a subject, the other
//!   sends them one after another (a remote rendezvous handoff is one such round trip);
//! - [`publish_with_ack_window`]: a publisher streams messages with at most `window`
//!   unacknowledged, the subscriber acknowledges cumulatively every `window / 2` (the
//!   credit window of a remote buffered channel, with nothing of weft's on top).
//!
//! Every message is counted at the other end: a lost one fails the measurement
//! rather than go unnoticed.

use std::time::{Duration, Instant};

use async_nats::{Client, Subscriber, client::RequestErrorKind};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::task::JoinHandle;
use weft_tests::nats::NatsServer;

/// A hang guard only: on loopback every reply comes within microseconds.
const GUARD: Duration = Duration::from_secs(10);

/// How many round trips or messages warm up (connections, buffers, caches) first.
const WARM_UP: u64 = 200;

const REQUESTS: &str = "floor.requests";
const DATA: &str = "floor.data";
const ACKS: &str = "floor.acks";
const READY: &str = "floor.ready";

/// Mean time per request/reply round trip over `n` requests sent one after another
/// (after a warm-up), each a 8-byte payload echoed back by another client.
///
/// # Panics
/// If the server cannot be reached, or a request fails or goes unanswered.
pub fn request_reply_round_trip(server: &NatsServer, n: u32) -> Duration {
    assert!(n > 0, "request_reply_round_trip: n must be at least 1");
    let url = server.url();
    runtime().block_on(async move {
        let responder = connect(&url, "floor-responder").await;
        let mut requests = subscribe(&responder, REQUESTS).await;
        let serving = tokio::spawn(async move {
            while let Some(request) = requests.next().await {
                let reply = request.reply.expect("a request carries a reply subject");
                responder
                    .publish(reply, request.payload)
                    .await
                    .expect("the responder publishes a reply");
            }
        });

        let requester = connect(&url, "floor-requester").await;
        let payload = Bytes::from_static(&[7; 8]);
        await_responder(&requester, REQUESTS, payload.clone()).await;
        for _ in 0..WARM_UP {
            request(&requester, REQUESTS, payload.clone()).await;
        }
        let start = Instant::now();
        for _ in 0..n {
            let reply = request(&requester, REQUESTS, payload.clone()).await;
            assert_eq!(reply.payload, payload, "the reply is the request's payload");
        }
        let elapsed = start.elapsed();
        stop(serving).await;
        elapsed / n
    })
}

/// Mean time per message of `n` messages of `size` bytes (after a warm-up), published
/// with at most `window` unacknowledged; the subscriber acknowledges cumulatively
/// (the count received so far, on a subject of its own) every `max(window / 2, 1)`
/// messages and at the last one. Timed from the first publish to the last
/// acknowledgement.
///
/// # Panics
/// If `n` or `window` is 0, `size` exceeds the server's `max_payload`, or a message
/// or acknowledgement is lost (no progress within 10 s).
pub fn publish_with_ack_window(server: &NatsServer, n: u32, window: u32, size: usize) -> Duration {
    assert!(n > 0, "publish_with_ack_window: n must be at least 1");
    assert!(window > 0, "publish_with_ack_window: window must be at least 1");
    let (n, window) = (u64::from(n), u64::from(window));
    let every = (window / 2).max(1);
    let total = WARM_UP + n;
    let url = server.url();
    runtime().block_on(async move {
        // The publisher hears acknowledgements before anything is published.
        let publisher = connect(&url, "floor-publisher").await;
        let mut acks = subscribe(&publisher, ACKS).await;

        let subscriber = connect(&url, "floor-subscriber").await;
        let mut data = subscribe(&subscriber, DATA).await;
        // Subscribed after the data on the same connection: once it answers, the
        // server knows the data subscription too.
        let mut ready = subscribe(&subscriber, READY).await;
        let answering = {
            let subscriber = subscriber.clone();
            tokio::spawn(async move {
                while let Some(request) = ready.next().await {
                    let reply = request.reply.expect("a request carries a reply subject");
                    subscriber
                        .publish(reply, Bytes::new())
                        .await
                        .expect("the subscriber answers");
                }
            })
        };
        let consuming = tokio::spawn(async move {
            let mut received = 0u64;
            while received < total {
                let message = tokio::time::timeout(GUARD, data.next())
                    .await
                    .unwrap_or_else(|_| {
                        panic!("the subscriber got no message within {GUARD:?} after {received}")
                    })
                    .expect("the data subscription ended early");
                assert_eq!(
                    message.payload.len(),
                    size,
                    "message {received} has the wrong size"
                );
                received += 1;
                if received.is_multiple_of(every) || received == WARM_UP || received == total {
                    subscriber
                        .publish(ACKS, Bytes::copy_from_slice(&received.to_le_bytes()))
                        .await
                        .expect("the subscriber acknowledges");
                }
            }
        });

        await_responder(&publisher, READY, Bytes::new()).await;
        let payload = Bytes::from(vec![0x5a; size]);
        let mut acked = 0u64;
        let mut pump = async |from: u64, to: u64| {
            for sent in from..to {
                while sent - acked >= window {
                    acked = next_ack(&mut acks, acked).await;
                }
                publisher
                    .publish(DATA, payload.clone())
                    .await
                    .unwrap_or_else(|e| panic!("publish {size} bytes: {e}"));
            }
            while acked < to {
                acked = next_ack(&mut acks, acked).await;
            }
        };
        pump(0, WARM_UP).await;
        let start = Instant::now();
        pump(WARM_UP, total).await;
        let elapsed = start.elapsed();

        consuming.await.unwrap_or_else(|e| match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("the subscriber's task: {e}"),
        });
        stop(answering).await;
        elapsed / u32::try_from(n).expect("n came from a u32")
    })
}

/// The next cumulative acknowledgement (more than `acked`).
async fn next_ack(acks: &mut Subscriber, acked: u64) -> u64 {
    let message = tokio::time::timeout(GUARD, acks.next())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no acknowledgement within {GUARD:?} after {acked} (a message was lost, or the \
                 subscriber failed: see above)"
            )
        })
        .expect("the acknowledgement subscription ended early");
    let count = <[u8; 8]>::try_from(&message.payload[..])
        .map(u64::from_le_bytes)
        .unwrap_or_else(|_| panic!("an acknowledgement of {} bytes, not 8", message.payload.len()));
    assert!(
        count > acked,
        "acknowledgement {count} after {acked}: out of order"
    );
    count
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

async fn connect(url: &str, name: &str) -> Client {
    async_nats::ConnectOptions::new()
        .name(name)
        .request_timeout(Some(GUARD))
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("{name}: cannot connect to nats-server at {url}: {e}"))
}

async fn subscribe(client: &Client, subject: &'static str) -> Subscriber {
    let subscriber = client
        .subscribe(subject)
        .await
        .unwrap_or_else(|e| panic!("subscribe to {subject}: {e}"));
    client
        .flush()
        .await
        .unwrap_or_else(|e| panic!("flush the subscription to {subject}: {e}"));
    subscriber
}

async fn request(client: &Client, subject: &'static str, payload: Bytes) -> async_nats::Message {
    client
        .request(subject, payload)
        .await
        .unwrap_or_else(|e| panic!("request on {subject}: {e}"))
}

/// Wait until another connection's subscription to `subject` answers: until then the
/// server answers "no responders" at once. Bounded by [`GUARD`].
async fn await_responder(client: &Client, subject: &'static str, payload: Bytes) {
    let deadline = Instant::now() + GUARD;
    loop {
        match client.request(subject, payload.clone()).await {
            Ok(_) => return,
            Err(e) if e.kind() == RequestErrorKind::NoResponders && Instant::now() < deadline => {
                // Not subscribed yet: poll again (the subscription is in flight).
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(e) => panic!("no responder on {subject} within {GUARD:?}: {e}"),
        }
    }
}

/// Stop a serving task; a panic in it is this one's.
async fn stop(task: JoinHandle<()>) {
    task.abort();
    match task.await {
        Err(e) if e.is_cancelled() => {}
        Err(e) => std::panic::resume_unwind(e.into_panic()),
        Ok(()) => panic!("a serving task ended before it was stopped (its subscription closed)"),
    }
}

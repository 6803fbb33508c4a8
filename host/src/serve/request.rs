//! One request: a microthread of the server's run handles it, within the
//! request timeout (its response's body included), and the server answers for
//! it when it cannot: 503 when too many are in flight, 504 past the timeout,
//! 500 when the handler fails or ends without an answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::Serving;
use crate::error::FailureKind;
use crate::limits::{MAX_NAME, truncate};
use crate::microthread::{Request, spawn_request};
use crate::run::{Refused, RequestOutcome};

/// A response of the server's own, in plain text.
fn text(status: StatusCode, message: String) -> Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from(message + "\n"))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Answer `request`: by the program's handler in a microthread of its own, or
/// by the server when it cannot.
pub(super) async fn answer(
    serving: Arc<Serving>,
    request: hyper::Request<Incoming>,
) -> Response<HyperOutgoingBody> {
    let refused = |message: String| {
        serving.count(RequestOutcome::Refused);
        text(StatusCode::SERVICE_UNAVAILABLE, message)
    };
    if serving.stopping.load(Ordering::Acquire) {
        return refused("the server is stopping".into());
    }
    let Ok(permit) = serving.room.clone().try_acquire_owned() else {
        return refused(format!(
            "too many requests in flight: this server handles {} at once (max_requests)",
            serving.max_requests
        ));
    };
    let name = truncate(format!("{} {}", request.method(), request.uri().path()), MAX_NAME);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let responded = Arc::new(AtomicBool::new(false));
    let respond = {
        let responded = responded.clone();
        Box::new(move |response: crate::microthread::Responded| {
            responded.store(response.is_ok(), Ordering::Release);
            // The client may have gone: nobody to answer.
            let _gone = tx.send(response);
        })
    };
    let run = &serving.run;
    let (completion, member) = match spawn_request(
        run,
        &serving.image,
        Request { request, respond },
        Some(name.into()),
    ) {
        Ok(started) => started,
        Err(Refused::LimitReached(max)) => {
            return refused(format!(
                "too many requests in flight: the server's run has its {max} microthreads live (max_microthreads)"
            ));
        }
    };
    // Nobody joins it: a failure goes to the run's stderr (or failure handler).
    completion.abandon();
    run.count_request_start();
    let timed_out = Arc::new(AtomicBool::new(false));
    // The deadline holds for the whole request, its response's body included,
    // whether or not the client still waits: watched apart from the answer.
    let watch = {
        let (serving, completion, timed_out) = (serving.clone(), completion.clone(), timed_out.clone());
        async move {
            let timeout = serving.request_timeout;
            if tokio::time::timeout(timeout, completion.finished())
                .await
                .is_err()
            {
                timed_out.store(true, Ordering::Release);
                let what = match &member.me.name {
                    Some(name) => format!("microthread {} ({name})", member.me.id),
                    None => format!("microthread {}", member.me.id),
                };
                serving.run.options.stderr.write(&format!(
                    "weft: request: {what} ran past the request timeout of {}: stopped\n",
                    humantime::format_duration(timeout)
                ));
                serving.run.cancel_member_within(&member, Some(Duration::ZERO));
                completion.finished().await;
            }
            let outcome = match completion.ended() {
                _ if timed_out.load(Ordering::Acquire) => RequestOutcome::TimedOut,
                Some(Ok(())) if responded.load(Ordering::Acquire) => RequestOutcome::Answered,
                _ => RequestOutcome::Failed,
            };
            serving.count(outcome);
            drop(permit);
        }
    };
    tokio::spawn(watch);
    match rx.await {
        Ok(Ok(response)) => response,
        Ok(Err(code)) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the handler answered with an error: {code:?}"),
        ),
        // The handler ended without setting its response: the microthread
        // has ended, or is ending.
        Err(_) => {
            completion.finished().await;
            if timed_out.load(Ordering::Acquire) {
                return text(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!(
                        "the handler ran past the request timeout of {}",
                        humantime::format_duration(serving.request_timeout)
                    ),
                );
            }
            let why = match completion.ended() {
                Some(Err(f))
                    if f.kind == FailureKind::Cancelled && serving.stopping.load(Ordering::Acquire) =>
                {
                    return text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the server stopped before the handler answered".into(),
                    );
                }
                Some(Err(f)) if f.kind == FailureKind::Cancelled => "it was stopped".to_string(),
                Some(Err(f)) => format!("it failed ({:?}): see the server's stderr", f.kind),
                _ => "it returned without setting a response".to_string(),
            };
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the handler gave no response: {why}"),
            )
        }
    }
}

//! A `wasi:http/proxy` handler written with wstd, as anyone writes one: what
//! `weft serve`'s tests and benchmark serve. Its routes:
//! - `/`: a hello (the benchmark's);
//! - `/echo`: the request's body back, streamed;
//! - `/bytes?n=N`: N bytes, streamed in 64 KiB chunks;
//! - `/sleep?ms=N`: an answer after N ms;
//! - `/trap`: a panic;
//! - `/spin`: a loop that never calls the host;
//! - `/memory?mib=N`: N MiB allocated and touched, then an answer;
//! - `/fetch?url=U`: an outgoing GET of U, answered with its status and body
//!   (502 and the error when it fails);
//! - `/env?name=K`: the environment variable K.

use futures_lite::stream::unfold;
use std::convert::Infallible;
use wstd::http::body::{Body, Bytes};
use wstd::http::{Client, Error, Request, Response, StatusCode};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, Error> {
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let param = |key: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    };
    match path.as_str() {
        "/" => Ok(Response::new(
            "Hello from a wasi:http handler\n".to_owned().into(),
        )),
        "/echo" => Ok(Response::new(request.into_body())),
        "/bytes" => {
            let n: usize = param("n").and_then(|n| n.parse().ok()).unwrap_or(0);
            let chunks = unfold(n, |left| async move {
                if left == 0 {
                    return None;
                }
                let size = left.min(64 << 10);
                Some((Ok::<_, Infallible>(Bytes::from(vec![b'w'; size])), left - size))
            });
            Ok(Response::new(Body::from_try_stream(chunks)))
        }
        "/sleep" => {
            let ms: u64 = param("ms").and_then(|n| n.parse().ok()).unwrap_or(0);
            wstd::task::sleep(wstd::time::Duration::from_millis(ms)).await;
            Ok(Response::new(format!("slept {ms} ms\n").into()))
        }
        "/trap" => panic!("the handler panicked on purpose"),
        "/spin" => {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "/memory" => {
            let mib: usize = param("mib").and_then(|n| n.parse().ok()).unwrap_or(0);
            let block = vec![1u8; mib << 20];
            let sum: u64 = block.iter().step_by(4096).map(|&b| u64::from(b)).sum();
            Ok(Response::new(format!("touched {sum} pages\n").into()))
        }
        "/fetch" => {
            let url = param("url").unwrap_or_default();
            let outgoing = Request::get(url.as_str()).body(Body::empty())?;
            match Client::new().send(outgoing).await {
                Ok(response) => {
                    let status = response.status();
                    let body = response.into_body().str_contents().await?.to_string();
                    Ok(Response::new(format!("{status}: {body}").into()))
                }
                Err(e) => Ok(Response::builder()
                    .status(StatusCode::BAD_GATEWAY)
                    .body(format!("the outgoing request failed: {e:?}\n").into())?),
            }
        }
        "/env" => {
            let name = param("name").unwrap_or_default();
            let value = std::env::var(&name).unwrap_or_else(|_| "<unset>".into());
            Ok(Response::new(format!("{value}\n").into()))
        }
        _ => Ok(Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::empty())?),
    }
}

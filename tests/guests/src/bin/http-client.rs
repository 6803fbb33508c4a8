//! Outgoing HTTP (wasi:http) from a weft program, with wstd's client: main and
//! a spawned microthread each GET the URL given, and print what came back (or
//! why not). Only the calling microthread waits for the answer.

fn fetch(url: String) -> String {
    wstd::runtime::block_on(async move {
        let request = match wstd::http::Request::get(url.as_str()).body(wstd::http::Body::empty()) {
            Ok(request) => request,
            Err(e) => return format!("bad request: {e}"),
        };
        match wstd::http::Client::new().send(request).await {
            Ok(response) => {
                let status = response.status();
                match response.into_body().str_contents().await {
                    Ok(body) => format!("{} {}", status.as_u16(), body.trim()),
                    Err(e) => format!("{} and then: {e:?}", status.as_u16()),
                }
            }
            Err(e) => format!("failed: {e:?}"),
        }
    })
}

fn main() {
    let url = std::env::args().nth(1).expect("usage: http-client.wasm URL");
    let child = weft_guest::spawn(fetch, url.clone());
    println!("main: {}", fetch(url));
    println!("spawned: {}", child.join().expect("the fetcher"));
}

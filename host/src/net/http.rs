//! Outgoing HTTP requests (`wasi:http/outgoing-handler`), under the run's grants.
//!
//! wasmtime-wasi-http builds the request from the guest's resources and hands it
//! to [`Outgoing::send`]; weft does the rest: the host and port are checked
//! against the `--connect` grants before any name is looked up (a name is looked
//! up only if a grant could cover it, through the runtime's resolver, and then
//! every address it connects to is checked), the connection holds a place in the
//! run's socket quota for as long as it is open, and `https` goes over TLS checked
//! against the system's roots.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http_body::{Body, Frame};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use super::grants::{Direction, Grants};
use super::resolve::Resolver;
use super::tcp::{NetError, SocketSlot};
use crate::limits::Quota;

/// How long a connection, a response's first byte, or a pause between its bytes
/// may take when the guest's request options do not say (wasmtime's defaults
/// are 600 s).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The response and the future that drives its connection, as
/// `WasiHttpHooks::send_request` returns them.
pub(crate) type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
);

/// What a microthread's outgoing requests are checked against and counted in:
/// its run's grants, resolver and socket quota.
#[derive(Clone)]
pub(crate) struct Outgoing {
    pub(crate) grants: Arc<Grants>,
    pub(crate) resolver: Resolver,
    pub(crate) sockets: Arc<Quota>,
    /// Where a denial is told (the run's stderr): the guest sees only
    /// `HTTP-request-denied`.
    pub(crate) tell: Arc<dyn Fn(&str) + Send + Sync>,
}

impl Outgoing {
    /// Send `request` (its URI absolute: scheme and authority) and return its
    /// response once its head has come.
    pub(crate) async fn send(
        self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<Sent, Error> {
        let options = options.unwrap_or_default();
        // Should the request go no further (refused, or the server answered
        // before its end), what the guest still writes to its body is drained.
        let request = request.map(|body| Drained(Some(body)));
        let connected = self.connect_for(request.uri(), &options).await?;
        send_on(connected, request, &options).await
    }

    /// A connection for a request to `uri`, if a grant allows it and the server answers:
    /// the request's sender, its connection, and the socket slot it holds.
    async fn connect_for(&self, uri: &http::Uri, options: &RequestOptions) -> Result<Connected, Error> {
        let tls = uri.scheme() == Some(&Scheme::HTTPS);
        let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let shown = format!("{}:{port}", authority.host());
        let addrs = self.allowed(&host, port, &shown).await?;
        let slot = SocketSlot::take(&self.sockets).map_err(|e| match e {
            NetError::TooManySockets(max) => {
                (self.tell)(&format!(
                    "weft: an outgoing request to {shown} was refused: the run has its {max} sockets open (max_sockets)"
                ));
                Error::ConnectionLimitReached
            }
            _ => Error::ConnectionLimitReached,
        })?;
        let connect_timeout = options.connect_timeout.unwrap_or(DEFAULT_TIMEOUT);
        let stream = tokio::time::timeout(connect_timeout, connect(&addrs))
            .await
            .map_err(|_| Error::ConnectionTimeout)??;
        let io: Box<dyn Io> = match tls {
            false => Box::new(stream),
            true => Box::new(tls_connect(&host, stream).await?),
        };
        let (sender, connection) = tokio::time::timeout(
            connect_timeout,
            hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(io)),
        )
        .await
        .map_err(|_| Error::ConnectionTimeout)??;
        Ok(Connected {
            sender,
            connection,
            slot,
        })
    }
}

/// A connection made for a request ([`Outgoing::connect_for`]).
struct Connected {
    sender: hyper::client::conn::http1::SendRequest<Drained>,
    connection: hyper::client::conn::http1::Connection<TokioIo<Box<dyn Io>>, Drained>,
    slot: SocketSlot,
}

/// A request's body as weft sends it. Dropped before the guest has finished it
/// (the request refused, or the server answered at once and closed), it takes
/// what the guest still writes and drops it, until the guest finishes (or drops)
/// the body: the guest's writes succeed, and it learns how its request went from
/// the response, not from a body nobody reads.
struct Drained(Option<WasiBody>);

impl Body for Drained {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match self.0.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0
            .as_ref()
            .map_or_else(|| http_body::SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for Drained {
    fn drop(&mut self) {
        let Some(mut body) = self.0.take() else { return };
        // Outside a tokio runtime (at the runtime's end), just dropped.
        if !body.is_end_stream()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                while let Some(Ok(_)) = http_body_util::BodyExt::frame(&mut body).await {}
            });
        }
    }
}

/// Send `request` on `connected`; its response once its head has come.
async fn send_on(
    connected: Connected,
    mut request: http::Request<Drained>,
    options: &RequestOptions,
) -> Result<Sent, Error> {
    let Connected {
        mut sender,
        connection,
        slot,
    } = connected;
    {
        // On the wire, the request names only its path: the authority went to
        // the connection (and the `Host` header).
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
        *request.uri_mut() = http::Uri::builder()
            .path_and_query(path)
            .build()
            .map_err(|_| Error::HttpRequestUriInvalid)?;
        // The connection is driven by its own task: the response's head comes
        // through it, and so does its body after.
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let ended = connection.await;
            drop(slot);
            let _gone = done_tx.send(ended);
        });
        let first_byte = options.first_byte_timeout.unwrap_or(DEFAULT_TIMEOUT);
        let response = tokio::time::timeout(first_byte, sender.send_request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)??;
        let between = options
            .between_bytes_timeout
            .unwrap_or(DEFAULT_TIMEOUT)
            .max(Duration::from_nanos(1));
        let response = response.map(|incoming| {
            http_body_util::BodyExt::boxed_unsync(Paced {
                incoming,
                between,
                sleep: Box::pin(tokio::time::sleep(between)),
            })
        });
        let connection = Box::new(async move {
            match done_rx.await {
                Ok(Ok(())) | Err(_) => Ok(()),
                Ok(Err(e)) if e.is_timeout() => Err(Error::HttpResponseTimeout),
                Ok(Err(e)) => Err(Error::Hyper(e)),
            }
        });
        Ok((response, connection))
    }
}

impl Outgoing {
    /// The addresses of `host` at `port` that a grant covers, looked up only if
    /// one could; none: denied, and told.
    async fn allowed(&self, host: &str, port: u16, shown: &str) -> Result<Vec<SocketAddr>, Error> {
        let denied = || {
            (self.tell)(&format!(
                "weft: an outgoing request to {shown} was denied: no grant covers it (--connect {shown}, or RunOptions::connect)"
            ));
            Error::HttpRequestDenied
        };
        let addrs = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => {
                if !self.grants.may_resolve(Direction::Connect, host, port) {
                    return Err(denied());
                }
                self.resolver
                    .lookup(host, port)
                    .await
                    .map_err(|e| Error::DnsError {
                        rcode: Some(match e {
                            NetError::InvalidAddress(why) => why,
                            NetError::Io(e) => e.to_string(),
                            other => format!("{other:?}"),
                        }),
                        info_code: None,
                    })?
            }
        };
        let allowed: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| self.grants.allows(Direction::Connect, a))
            .collect();
        if allowed.is_empty() {
            return Err(denied());
        }
        Ok(allowed)
    }
}

/// A connection's stream: TCP, or TLS over it.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Io for T {}

/// Connect to the first of `addrs` that answers.
async fn connect(addrs: &[SocketAddr]) -> Result<TcpStream, Error> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Error::ConnectionRefused,
        Some(e) => Error::Connect(e),
        None => Error::DestinationNotFound,
    })
}

/// TLS over `stream` to `host`, checked against the system's roots.
async fn tls_connect(
    host: &str,
    stream: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Error> {
    use tokio_rustls::rustls::{self, pki_types::ServerName};
    let config = tls_config().map_err(|e| Error::Tls(std::io::Error::other(e)))?;
    let name = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ServerName::from(ip),
        Err(_) => ServerName::try_from(host.to_string()).map_err(|_| Error::HttpRequestUriInvalid)?,
    };
    let connector = tokio_rustls::TlsConnector::from(config);
    connector.connect(name, stream).await.map_err(|e| {
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(rustls::Error::InvalidCertificate(_)) => Error::TlsCertificateError,
            _ => Error::Tls(e),
        }
    })
}

/// The TLS client configuration: made once, with the system's roots.
fn tls_config() -> Result<Arc<tokio_rustls::rustls::ClientConfig>, String> {
    use std::sync::OnceLock;
    use tokio_rustls::rustls;
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = rustls::RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(format!(
                    "no root certificates found on this system to check an https server with ({} errors)",
                    found.errors.len()
                ));
            }
            // The process's provider: ring, the one rustls is built with here.
            let config = rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
}

/// A response body that fails once it pauses longer than `between` between
/// frames (the guest's `between-bytes-timeout`).
struct Paced {
    incoming: hyper::body::Incoming,
    between: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Body for Paced {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) if e.is_timeout() => Poll::Ready(Some(Err(Error::HttpResponseTimeout))),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Error::Hyper(e)))),
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + self.between;
                self.sleep.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => match self.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}

/// A microthread's `wasi:http` state: wasmtime-wasi-http's context, and its
/// outgoing requests' checks. Made on its first `wasi:http` call.
pub(crate) struct HttpState {
    pub(crate) ctx: wasmtime_wasi_http::WasiHttpCtx,
    pub(crate) outgoing: Outgoing,
}

impl wasmtime_wasi_http::WasiHttpHooks for Outgoing {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Result<Sent, Error>> + Send> {
        Box::new(self.clone().send(request, options))
    }
}

//! The host side of `weft:runtime/net`: a guest's socket calls, checked against
//! the run's grants, marked in the live view while they wait, and ended by the
//! microthread's cancellation.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use wasmtime::component::Resource;

use super::bindings::net::{self as wit, IoErrorKind, NetError as WitError, Shutdown};
use crate::microthread::Microthread;
use crate::net::{Direction, Grants, ListenerHandle, NetError, StreamHandle, Target, within};
use crate::run::{BlockedOn, Probe, Run};

fn wit_error(e: NetError) -> WitError {
    match e {
        NetError::PermissionDenied(why) => WitError::PermissionDenied(why),
        NetError::InvalidAddress(why) => WitError::InvalidAddress(why),
        NetError::TooManySockets(max) => WitError::TooManySockets(max),
        NetError::TimedOut => WitError::TimedOut,
        NetError::Io(e) => io_error(&e),
    }
}

fn io_error(e: &io::Error) -> WitError {
    use io::ErrorKind as K;
    let kind = match e.kind() {
        K::ConnectionRefused => IoErrorKind::ConnectionRefused,
        K::ConnectionReset => IoErrorKind::ConnectionReset,
        K::ConnectionAborted => IoErrorKind::ConnectionAborted,
        K::NotConnected => IoErrorKind::NotConnected,
        K::AddrInUse => IoErrorKind::AddressInUse,
        K::AddrNotAvailable => IoErrorKind::AddressNotAvailable,
        K::BrokenPipe => IoErrorKind::BrokenPipe,
        K::UnexpectedEof => IoErrorKind::UnexpectedEof,
        K::TimedOut => return WitError::TimedOut,
        K::PermissionDenied => return WitError::PermissionDenied(e.to_string()),
        _ => IoErrorKind::Other,
    };
    WitError::Io((kind, e.to_string()))
}

/// A socket's address, as a guest is told it.
fn address(addr: io::Result<SocketAddr>) -> String {
    addr.map_or_else(|e| format!("unknown ({e})"), |a| a.to_string())
}

fn nanos(timeout: Option<u64>) -> Option<Duration> {
    timeout.map(Duration::from_nanos)
}

impl Microthread {
    /// Wait for `op` as a blocking call of this microthread: shown in the live view
    /// as `what`, failing with `cancelled` if the microthread is cancelled.
    async fn on_socket<T>(
        &mut self,
        what: impl FnOnce() -> String,
        op: impl Future<Output = Result<T, NetError>>,
    ) -> Result<T, WitError> {
        self.begin_blocking();
        let _blocked = self
            .run
            .members
            .block(&self.member, BlockedOn::Socket(what()), Probe::Nothing, true);
        match self.member.cancel.or_cancelled(op).await {
            Ok(done) => done.map_err(wit_error),
            Err(_cancelled) => Err(WitError::Cancelled),
        }
    }
}

/// The addresses `address` names that `run`'s grants allow for `direction`. A
/// name is looked up only if a grant could cover it; a denial names the address
/// as the guest gave it (never what a name resolved to).
async fn granted(run: &Run, address: &str, direction: Direction) -> Result<Vec<SocketAddr>, NetError> {
    if run.schedule().is_some() {
        return Err(NetError::PermissionDenied(
            "a deterministic run cannot use the network".into(),
        ));
    }
    let grants = run.options.grants();
    let denied = || NetError::PermissionDenied(Grants::denial(direction, address));
    let addrs = match Target::parse(address)? {
        Target::Addr(addr) => vec![addr],
        Target::Name(host, port) if grants.may_resolve(direction, &host, port) => {
            run.resolver.lookup(&host, port).await?
        }
        Target::Name(..) => return Err(denied()),
    };
    let allowed: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| grants.allows(direction, a))
        .collect();
    if allowed.is_empty() {
        return Err(denied());
    }
    Ok(allowed)
}

impl wit::Host for Microthread {
    async fn bind(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<ListenerHandle>, WitError>> {
        let run = self.run.clone();
        let what = format!("binding {address}");
        let bound = async move {
            let mut last = None;
            for addr in granted(&run, &address, Direction::Listen).await? {
                match ListenerHandle::bind(addr, &run.sockets).await {
                    Ok(listener) => return Ok(listener),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| NetError::InvalidAddress(format!("`{address}`: no address"))))
        };
        Ok(match self.on_socket(|| what, bound).await {
            Ok(listener) => Ok(self.table.push(listener)?),
            Err(e) => Err(e),
        })
    }

    async fn connect(
        &mut self,
        address: String,
        timeout: Option<u64>,
    ) -> wasmtime::Result<Result<Resource<StreamHandle>, WitError>> {
        let run = self.run.clone();
        let what = format!("connecting to {address}");
        // The timeout covers the lookup too.
        let connected = within(nanos(timeout), async move {
            let addrs = granted(&run, &address, Direction::Connect).await?;
            StreamHandle::connect(&addrs, &run.sockets).await
        });
        Ok(match self.on_socket(|| what, connected).await {
            Ok(stream) => Ok(self.table.push(stream)?),
            Err(e) => Err(e),
        })
    }
}

impl wit::HostTcpListener for Microthread {
    fn share(&mut self, l: Resource<ListenerHandle>) -> wasmtime::Result<Resource<ListenerHandle>> {
        Ok(self.table.share(&l)?)
    }

    fn local_address(&mut self, l: Resource<ListenerHandle>) -> wasmtime::Result<String> {
        Ok(address(self.table.get(&l)?.local_addr()))
    }

    async fn accept(
        &mut self,
        l: Resource<ListenerHandle>,
        timeout: Option<u64>,
    ) -> wasmtime::Result<Result<Resource<StreamHandle>, WitError>> {
        let listener = self.table.get(&l)?.clone();
        let on = listener
            .local_addr()
            .map_or_else(|_| "a listener".into(), |a| a.to_string());
        let accepted = self
            .on_socket(|| format!("accepting on {on}"), listener.accept(nanos(timeout)))
            .await;
        Ok(match accepted {
            Ok(stream) => Ok(self.table.push(stream)?),
            Err(e) => Err(e),
        })
    }

    fn drop(&mut self, l: Resource<ListenerHandle>) -> wasmtime::Result<()> {
        self.table.delete(l)?;
        Ok(())
    }
}

impl wit::HostTcpStream for Microthread {
    fn share(&mut self, s: Resource<StreamHandle>) -> wasmtime::Result<Resource<StreamHandle>> {
        Ok(self.table.share(&s)?)
    }

    fn local_address(&mut self, s: Resource<StreamHandle>) -> wasmtime::Result<String> {
        Ok(address(self.table.get(&s)?.local_addr()))
    }

    fn peer_address(&mut self, s: Resource<StreamHandle>) -> wasmtime::Result<String> {
        Ok(self.table.get(&s)?.peer_addr().to_string())
    }

    async fn read(
        &mut self,
        s: Resource<StreamHandle>,
        max: u32,
        timeout: Option<u64>,
    ) -> wasmtime::Result<Result<Vec<u8>, WitError>> {
        let stream = self.table.get(&s)?.clone();
        let peer = stream.peer_addr();
        let run = self.run.clone();
        Ok(self
            .on_socket(
                || format!("reading from {peer}"),
                stream.read(max as usize, nanos(timeout), &run.read_buffers),
            )
            .await)
    }

    async fn write(
        &mut self,
        s: Resource<StreamHandle>,
        bytes: Vec<u8>,
        timeout: Option<u64>,
    ) -> wasmtime::Result<Result<u32, WitError>> {
        let stream = self.table.get(&s)?.clone();
        let peer = stream.peer_addr();
        let written = self
            .on_socket(
                || format!("writing to {peer}"),
                stream.write(&bytes, nanos(timeout)),
            )
            .await;
        Ok(written.map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    fn shutdown(
        &mut self,
        s: Resource<StreamHandle>,
        how: Shutdown,
    ) -> wasmtime::Result<Result<(), WitError>> {
        let how = match how {
            Shutdown::Read => std::net::Shutdown::Read,
            Shutdown::Write => std::net::Shutdown::Write,
            Shutdown::Both => std::net::Shutdown::Both,
        };
        Ok(self.table.get(&s)?.shutdown(how).map_err(|e| io_error(&e)))
    }

    fn set_nodelay(
        &mut self,
        s: Resource<StreamHandle>,
        nodelay: bool,
    ) -> wasmtime::Result<Result<(), WitError>> {
        Ok(self.table.get(&s)?.set_nodelay(nodelay).map_err(|e| io_error(&e)))
    }

    fn drop(&mut self, s: Resource<StreamHandle>) -> wasmtime::Result<()> {
        self.table.delete(s)?;
        Ok(())
    }
}

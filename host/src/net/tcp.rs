//! TCP listeners and streams, shared by `Arc`, on tokio's reactor.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::limits::{Quota, QuotaUnit};
use crate::sync::Unpoisoned;

/// The most a read returns at once (a guest asking for more gets this much).
const MAX_READ: usize = 64 << 10;

/// Why a network operation failed.
#[derive(Debug)]
pub(crate) enum NetError {
    PermissionDenied(String),
    InvalidAddress(String),
    TooManySockets(u32),
    TimedOut,
    Io(io::Error),
}

impl From<io::Error> for NetError {
    fn from(e: io::Error) -> Self {
        NetError::Io(e)
    }
}

/// A socket's place in its run's quota, given back when the socket closes.
pub(crate) struct SocketSlot {
    _unit: QuotaUnit,
}

impl SocketSlot {
    pub(crate) fn take(quota: &Arc<Quota>) -> Result<SocketSlot, NetError> {
        match quota.unit() {
            Some(unit) => Ok(SocketSlot { _unit: unit }),
            None => Err(NetError::TooManySockets(quota.max())),
        }
    }
}

/// The quota slots of a microthread's WASI sockets (`std::net`), by resource:
/// given back when a socket's resource is dropped, or when the microthread ends.
#[derive(Default)]
pub(crate) struct WasiSlots {
    held: HashMap<u32, SocketSlot>,
    refused: bool,
}

impl WasiSlots {
    pub(crate) fn hold(&mut self, rep: u32, slot: SocketSlot) {
        self.held.insert(rep, slot);
    }

    pub(crate) fn release(&mut self, rep: u32) {
        self.held.remove(&rep);
    }

    /// Whether this is the first socket refused (to tell it once).
    pub(crate) fn first_refusal(&mut self) -> bool {
        !std::mem::replace(&mut self.refused, true)
    }
}

/// Run `f` for at most `timeout`, if given.
pub(crate) async fn within<T>(
    timeout: Option<Duration>,
    f: impl Future<Output = Result<T, NetError>>,
) -> Result<T, NetError> {
    match timeout {
        None => f.await,
        Some(d) => tokio::time::timeout(d, f)
            .await
            .unwrap_or(Err(NetError::TimedOut)),
    }
}

/// What a guest's address names: a socket address, or a host name and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Addr(SocketAddr),
    Name(String, u16),
}

impl Target {
    /// Parse `HOST:PORT` (an IPv6 address in brackets), without looking anything up.
    pub(crate) fn parse(address: &str) -> Result<Target, NetError> {
        if let Ok(addr) = address.parse::<SocketAddr>() {
            return Ok(Target::Addr(addr));
        }
        let invalid = || {
            NetError::InvalidAddress(format!(
                "`{address}`: expected HOST:PORT, e.g. 127.0.0.1:8080, [::1]:80, localhost:7000"
            ))
        };
        let (host, port) = address.rsplit_once(':').ok_or_else(invalid)?;
        let port = port.parse::<u16>().map_err(|_| invalid())?;
        if host.is_empty() || host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok() {
            return Err(invalid());
        }
        Ok(Target::Name(host.to_string(), port))
    }
}

/// Bytes the host holds for socket reads under way (a run's, see
/// `RunHandle::socket_read_bytes`).
#[derive(Debug, Default)]
pub(crate) struct ReadBuffers(AtomicU64);

impl ReadBuffers {
    pub(crate) fn bytes(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn hold(&self, bytes: usize) -> Held<'_> {
        self.0.fetch_add(bytes as u64, Ordering::Relaxed);
        Held(self, bytes as u64)
    }
}

/// A read's buffer, counted until the read returns it.
struct Held<'a>(&'a ReadBuffers, u64);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.0.fetch_sub(self.1, Ordering::Relaxed);
    }
}

struct Listener {
    listener: TcpListener,
    /// Connections (or errors) taken while a select watched for one, for the
    /// next `accept`s, in order.
    pending: Mutex<VecDeque<io::Result<(TcpStream, SocketAddr)>>>,
    /// Told when a connection is put in `pending`: every microthread that waits on
    /// the listener looks again.
    queued: Notify,
    quota: Arc<Quota>,
    _slot: SocketSlot,
}

/// A listening socket; clones share it.
#[derive(Clone)]
pub struct ListenerHandle(Arc<Listener>);

impl ListenerHandle {
    /// Listen on `addr`, within `quota`.
    pub(crate) async fn bind(addr: SocketAddr, quota: &Arc<Quota>) -> Result<ListenerHandle, NetError> {
        let slot = SocketSlot::take(quota)?;
        let listener = TcpListener::bind(addr).await?;
        Ok(ListenerHandle(Arc::new(Listener {
            listener,
            pending: Mutex::new(VecDeque::new()),
            queued: Notify::new(),
            quota: quota.clone(),
            _slot: slot,
        })))
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.listener.local_addr()
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, VecDeque<io::Result<(TcpStream, SocketAddr)>>> {
        self.0.pending.locked()
    }

    /// The next connection, waiting at most `timeout`.
    pub(crate) async fn accept(&self, timeout: Option<Duration>) -> Result<StreamHandle, NetError> {
        let (stream, peer) = within(timeout, async { Ok(self.next().await?) }).await?;
        // Over the quota: the connection is closed at once, and the guest told why.
        let slot = SocketSlot::take(&self.0.quota)?;
        Ok(StreamHandle::new(stream, peer, slot))
    }

    /// The next connection: one a select took, or the listener's next.
    async fn next(&self) -> io::Result<(TcpStream, SocketAddr)> {
        loop {
            let queued = self.0.queued.notified();
            let mut queued = std::pin::pin!(queued);
            // Registered before `pending` is looked at: a connection put there
            // after the look wakes this one.
            queued.as_mut().enable();
            if let Some(taken) = self.pending().pop_front() {
                return taken;
            }
            tokio::select! {
                taken = self.0.listener.accept() => return taken,
                () = &mut queued => {}
            }
        }
    }

    /// Resolves when a connection waits (taken, for the next `accept`). Any number
    /// of microthreads may wait so on one listener, and a select that only looks
    /// (polled once, with a waker that does nothing) takes no one's wake-up away:
    /// tokio's `accept` keeps every waiter, and `pending` wakes them all.
    pub(crate) async fn acceptable(&self) {
        loop {
            let queued = self.0.queued.notified();
            let mut queued = std::pin::pin!(queued);
            queued.as_mut().enable();
            if !self.pending().is_empty() {
                return;
            }
            tokio::select! {
                taken = self.0.listener.accept() => {
                    self.pending().push_back(taken);
                    self.0.queued.notify_waiters();
                    return;
                }
                () = &mut queued => {}
            }
        }
    }
}

struct Stream {
    stream: TcpStream,
    /// The peer's address, known from the start (asking the system for it fails
    /// once the peer has reset the connection).
    peer: SocketAddr,
    _slot: SocketSlot,
}

/// A TCP connection; clones share it.
#[derive(Clone)]
pub struct StreamHandle(Arc<Stream>);

impl StreamHandle {
    fn new(stream: TcpStream, peer: SocketAddr, slot: SocketSlot) -> StreamHandle {
        StreamHandle(Arc::new(Stream {
            stream,
            peer,
            _slot: slot,
        }))
    }

    /// Connect to the first of `addrs` that answers, within `quota` (the caller
    /// bounds the time, its lookup included).
    pub(crate) async fn connect(addrs: &[SocketAddr], quota: &Arc<Quota>) -> Result<StreamHandle, NetError> {
        let slot = SocketSlot::take(quota)?;
        let mut last = None;
        for &addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => return Ok(StreamHandle::new(s, addr, slot)),
                Err(e) => last = Some(e),
            }
        }
        Err(NetError::Io(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to connect to")
        })))
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.stream.local_addr()
    }

    pub(crate) fn peer_addr(&self) -> SocketAddr {
        self.0.peer
    }

    /// Up to `max` bytes, waiting until some arrive; empty at the end of the stream.
    /// The buffer is reserved only once the socket is readable (a read that waits
    /// holds none), and counted in `held` while the host holds it.
    pub(crate) async fn read(
        &self,
        max: usize,
        timeout: Option<Duration>,
        held: &ReadBuffers,
    ) -> Result<Vec<u8>, NetError> {
        let size = max.clamp(1, MAX_READ);
        within(timeout, async {
            loop {
                self.0.stream.readable().await?;
                // Read into spare capacity: no zeroing of a buffer the read overwrites.
                let _held = held.hold(size);
                let mut buf = Vec::with_capacity(size);
                match self.0.stream.try_read_buf(&mut buf) {
                    Ok(_) => return Ok(buf),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        })
        .await
    }

    /// Write some of `bytes`, waiting until the socket takes some: how many it took.
    pub(crate) async fn write(&self, bytes: &[u8], timeout: Option<Duration>) -> Result<usize, NetError> {
        if bytes.is_empty() {
            return Ok(0);
        }
        within(timeout, async {
            loop {
                self.0.stream.writable().await?;
                match self.0.stream.try_write(bytes) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        })
        .await
    }

    /// Resolves when a read would not wait: bytes, the end of the stream, or an
    /// error (which the read that follows reports).
    pub(crate) async fn readable(&self) {
        let stream = &self.0.stream;
        loop {
            if stream.readable().await.is_err() {
                return;
            }
            // tokio's readiness may be a false positive: peek to be sure (a
            // `WouldBlock` clears it, and the loop waits again).
            let peeked = stream.try_io(tokio::io::Interest::READABLE, || {
                let mut byte = [std::mem::MaybeUninit::<u8>::uninit()];
                socket2::SockRef::from(stream).peek(&mut byte)
            });
            match peeked {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                _ => return,
            }
        }
    }

    /// Resolves when a write would not wait.
    pub(crate) async fn writable(&self) {
        let _ = self.0.stream.writable().await;
    }

    pub(crate) fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        socket2::SockRef::from(&self.0.stream).shutdown(how)
    }

    pub(crate) fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.0.stream.set_nodelay(nodelay)
    }
}

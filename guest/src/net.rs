//! TCP networking on the host's reactor, the WIT `net` interface: [`TcpListener`] and
//! [`TcpStream`], with
//! std-like methods. A blocking call (`accept`, `connect`, `read`, `write`)
//! suspends only the calling microthread. `TcpStream` implements
//! [`std::io::Read`] and [`std::io::Write`], so ordinary code (a `BufReader`, a line
//! protocol) works on it unchanged.
//!
//! Sockets move between microthreads like channel endpoints: pass one to
//! [`spawn`](crate::spawn) or send it in a message, and the receiver owns it. The
//! socket closes when the last microthread holding it drops it, or finishes, however
//! it finishes.
//!
//! Nothing is allowed unless the host grants it (`weft run --listen ADDR`,
//! `--connect ADDR`): a denied bind or connect fails with
//! [`io::ErrorKind::PermissionDenied`], naming the address. A cancelled
//! microthread's socket calls fail with an error whose source is
//! [`Cancelled`] (see [`is_cancelled`]).
//!
//! ```no_run
//! use std::io::{BufRead, BufReader, Write};
//! use weft_guest::net::{TcpListener, TcpStream};
//!
//! fn serve(stream: TcpStream) {
//!     let mut lines = BufReader::new(&stream);
//!     let mut line = String::new();
//!     while lines.read_line(&mut line).map_or(false, |n| n > 0) {
//!         if (&stream).write_all(line.as_bytes()).is_err() {
//!             return;
//!         }
//!         line.clear();
//!     }
//! }
//!
//! let listener = TcpListener::bind("127.0.0.1:7000").unwrap();
//! for stream in listener.incoming() {
//!     weft_guest::spawn_detached(serve, stream.unwrap());
//! }
//! ```

use std::cell::Cell;
use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::bindings::channel as wit_channel;
use crate::bindings::net as wit;
use crate::failure::Cancelled;
use crate::message::{deserialize_endpoint, serialize_endpoint};
use crate::time::nanos;

/// Something that names a socket address for the host: `"127.0.0.1:8080"`,
/// `"[::1]:80"`, `"localhost:7000"`, a [`SocketAddr`], `(ip, port)`, `(name, port)`.
/// Names are resolved by the host (the guest has no resolver of its own).
pub trait ToSocketAddress {
    /// The address as text.
    fn to_socket_address(&self) -> String;
}

impl ToSocketAddress for str {
    fn to_socket_address(&self) -> String {
        self.to_string()
    }
}

impl ToSocketAddress for String {
    fn to_socket_address(&self) -> String {
        self.clone()
    }
}

impl ToSocketAddress for SocketAddr {
    fn to_socket_address(&self) -> String {
        self.to_string()
    }
}

impl<H: fmt::Display> ToSocketAddress for (H, u16) {
    fn to_socket_address(&self) -> String {
        let host = self.0.to_string();
        if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{}", self.1)
        } else {
            format!("{host}:{}", self.1)
        }
    }
}

impl<T: ToSocketAddress + ?Sized> ToSocketAddress for &T {
    fn to_socket_address(&self) -> String {
        (**self).to_socket_address()
    }
}

/// Whether `e` is the error of a socket call made by a cancelled microthread.
pub fn is_cancelled(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Cancelled>())
}

fn io_error(e: wit::NetError) -> io::Error {
    use io::ErrorKind as K;
    use wit::IoErrorKind as W;
    match e {
        wit::NetError::PermissionDenied(why) => io::Error::new(K::PermissionDenied, why),
        wit::NetError::InvalidAddress(why) => io::Error::new(K::InvalidInput, why),
        wit::NetError::TooManySockets(max) => io::Error::other(format!(
            "the program already has its maximum of {max} open sockets"
        )),
        wit::NetError::TimedOut => io::Error::new(K::TimedOut, "the socket's timeout ran out"),
        wit::NetError::Cancelled => io::Error::other(Cancelled),
        wit::NetError::Io((kind, message)) => {
            let kind = match kind {
                W::ConnectionRefused => K::ConnectionRefused,
                W::ConnectionReset => K::ConnectionReset,
                W::ConnectionAborted => K::ConnectionAborted,
                W::NotConnected => K::NotConnected,
                W::AddressInUse => K::AddrInUse,
                W::AddressNotAvailable => K::AddrNotAvailable,
                W::BrokenPipe => K::BrokenPipe,
                W::UnexpectedEof => K::UnexpectedEof,
                W::Other => K::Other,
            };
            io::Error::new(kind, message)
        }
    }
}

fn parse_addr(text: String) -> io::Result<SocketAddr> {
    text.parse()
        .map_err(|_| io::Error::other(format!("the host gave no address: {text}")))
}

fn timeout_nanos(timeout: Option<Duration>) -> io::Result<Option<u64>> {
    match timeout {
        Some(d) if d.is_zero() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a zero timeout is not allowed (as with std::net)",
        )),
        other => Ok(other.map(nanos)),
    }
}

/// A socket listening for TCP connections.
pub struct TcpListener {
    pub(crate) inner: wit::TcpListener,
}

impl TcpListener {
    /// Listen on `address` (port 0: the system chooses; see
    /// [`local_addr`](Self::local_addr)).
    pub fn bind(address: impl ToSocketAddress) -> io::Result<TcpListener> {
        let inner = wit::bind(&address.to_socket_address()).map_err(io_error)?;
        Ok(TcpListener { inner })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        parse_addr(self.inner.local_address())
    }

    /// Wait (only this microthread) for the next connection.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let stream = TcpStream::new(self.inner.accept(None).map_err(io_error)?);
        let peer = stream.peer_addr()?;
        Ok((stream, peer))
    }

    /// Like [`accept`](Self::accept), waiting at most `timeout` (then
    /// [`io::ErrorKind::TimedOut`]).
    pub fn accept_timeout(&self, timeout: Duration) -> io::Result<(TcpStream, SocketAddr)> {
        let stream = TcpStream::new(self.inner.accept(Some(nanos(timeout))).map_err(io_error)?);
        let peer = stream.peer_addr()?;
        Ok((stream, peer))
    }

    /// The connections as they come, until the microthread is cancelled (the
    /// program is being stopped: Ctrl-C, SIGTERM, a timeout): then the iteration
    /// ends, so that `for stream in listener.incoming() { … stream? … }` ends
    /// quietly. Other errors (over the socket limit, say) are items.
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<TcpStream>> + '_ {
        std::iter::from_fn(move || match self.accept() {
            Err(e) if is_cancelled(&e) => None,
            accepted => Some(accepted.map(|(s, _)| s)),
        })
    }

    /// Another handle to the same listener.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: self.inner.share(),
        })
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("local_addr", &self.inner.local_address())
            .finish()
    }
}

/// A TCP connection.
pub struct TcpStream {
    pub(crate) inner: wit::TcpStream,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
}

impl TcpStream {
    fn new(inner: wit::TcpStream) -> TcpStream {
        TcpStream {
            inner,
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
        }
    }

    /// Connect to `address` (a name may resolve to several addresses: each the host
    /// allows is tried in turn).
    pub fn connect(address: impl ToSocketAddress) -> io::Result<TcpStream> {
        let inner = wit::connect(&address.to_socket_address(), None).map_err(io_error)?;
        Ok(TcpStream::new(inner))
    }

    /// Like [`connect`](Self::connect), waiting at most `timeout`.
    pub fn connect_timeout(address: impl ToSocketAddress, timeout: Duration) -> io::Result<TcpStream> {
        let inner =
            wit::connect(&address.to_socket_address(), timeout_nanos(Some(timeout))?).map_err(io_error)?;
        Ok(TcpStream::new(inner))
    }

    /// This end's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        parse_addr(self.inner.local_address())
    }

    /// The other end's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        parse_addr(self.inner.peer_address())
    }

    /// Close the reading half, the writing half (the peer reads the end of the
    /// stream), or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let how = match how {
            Shutdown::Read => wit::Shutdown::Read,
            Shutdown::Write => wit::Shutdown::Write,
            Shutdown::Both => wit::Shutdown::Both,
        };
        self.inner.shutdown(how).map_err(io_error)
    }

    /// Turn Nagle's algorithm off (`true`) or on.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.set_nodelay(nodelay).map_err(io_error)
    }

    /// How long a read waits at most (`None`: as long as it takes); past it the
    /// read fails with [`io::ErrorKind::TimedOut`]. A zero duration is an error, as
    /// with `std::net`.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        timeout_nanos(timeout)?;
        self.read_timeout.set(timeout);
        Ok(())
    }

    /// How long a write waits at most; see [`set_read_timeout`](Self::set_read_timeout).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        timeout_nanos(timeout)?;
        self.write_timeout.set(timeout);
        Ok(())
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.read_timeout.get())
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.write_timeout.get())
    }

    /// Another handle to the same connection (its timeouts start unset).
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream::new(self.inner.share()))
    }

    fn read_into(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let max = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let timeout = self.read_timeout.get().map(nanos);
        let bytes = self.inner.read(max, timeout).map_err(io_error)?;
        buf[..bytes.len()].copy_from_slice(&bytes);
        Ok(bytes.len())
    }

    fn write_from(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let timeout = self.write_timeout.get().map(nanos);
        let n = self.inner.write(buf, timeout).map_err(io_error)?;
        Ok(n as usize)
    }
}

impl io::Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_into(buf)
    }
}

impl io::Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_into(buf)
    }
}

impl io::Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_from(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl io::Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_from(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("local_addr", &self.inner.local_address())
            .field("peer_addr", &self.inner.peer_address())
            .finish()
    }
}

// Sockets move in messages as channel endpoints do: serializing puts a handle to
// the socket beside the bytes; the value's own handle goes with the value.

impl Serialize for TcpListener {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_endpoint(wit_channel::Endpoint::TcpListener(self.inner.share()), s)
    }
}

impl Serialize for TcpStream {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_endpoint(wit_channel::Endpoint::TcpStream(self.inner.share()), s)
    }
}

impl<'de> Deserialize<'de> for TcpListener {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_endpoint(d, "TCP listener", |endpoint| match endpoint {
            wit_channel::Endpoint::TcpListener(inner) => Some(TcpListener { inner }),
            _ => None,
        })
    }
}

impl<'de> Deserialize<'de> for TcpStream {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_endpoint(d, "TCP stream", |endpoint| match endpoint {
            wit_channel::Endpoint::TcpStream(inner) => Some(TcpStream::new(inner)),
            _ => None,
        })
    }
}

//! `std::net`: WASI sockets, under the run's socket quota, and their names looked
//! up through the runtime's resolver. wasmtime-wasi provides them; weft shadows, in
//! the linker, the calls that open a socket (creating one, accepting one), the
//! destructors that close one, and `ip-name-lookup`.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, LinkerInstance, Resource, ResourceType};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress, IpAddressFamily, Network};
use wasmtime_wasi::p2::bindings::sockets::tcp::HostTcpSocket;
use wasmtime_wasi::p2::bindings::sockets::{tcp_create_socket, udp_create_socket};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, Pollable, SocketError, TcpSocket, UdpSocket, subscribe,
};
use wasmtime_wasi::sockets::{WasiSocketsCtxView, WasiSocketsView};

use crate::microthread::Microthread;
use crate::net::{NetError, SocketSlot};

/// The version of `wasi:sockets` wasmtime-wasi provides (guests that import an
/// older 0.2 get it too).
const WASI_SOCKETS: &str = "0.2.12";

/// Put weft's WASI socket calls over wasmtime-wasi's in `linker`.
pub(super) fn add_to_linker(linker: &mut Linker<Microthread>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let added = shadow_wasi_sockets(linker);
    linker.allow_shadowing(false);
    added
}

fn shadow_wasi_sockets(linker: &mut Linker<Microthread>) -> wasmtime::Result<()> {
    let mut tcp_create = linker.instance(&format!("wasi:sockets/tcp-create-socket@{WASI_SOCKETS}"))?;
    tcp_create.func_wrap(
        "create-tcp-socket",
        |mut store: StoreContextMut<'_, Microthread>, (family,): (IpAddressFamily,)| {
            Ok((store.data_mut().create_wasi_tcp(family)?,))
        },
    )?;
    let mut udp_create = linker.instance(&format!("wasi:sockets/udp-create-socket@{WASI_SOCKETS}"))?;
    udp_create.func_wrap_async(
        "create-udp-socket",
        |mut store: StoreContextMut<'_, Microthread>, (family,): (IpAddressFamily,)| {
            Box::new(async move { Ok((store.data_mut().create_wasi_udp(family).await?,)) })
        },
    )?;
    let mut tcp = linker.instance(&format!("wasi:sockets/tcp@{WASI_SOCKETS}"))?;
    socket_resource::<TcpSocket>(&mut tcp, "tcp-socket")?;
    tcp.func_wrap(
        "[method]tcp-socket.accept",
        |mut store: StoreContextMut<'_, Microthread>, (this,): (Resource<TcpSocket>,)| {
            Ok((store.data_mut().accept_wasi_tcp(this)?,))
        },
    )?;
    let mut udp = linker.instance(&format!("wasi:sockets/udp@{WASI_SOCKETS}"))?;
    socket_resource::<UdpSocket>(&mut udp, "udp-socket")?;
    let mut lookup = linker.instance(&format!("wasi:sockets/ip-name-lookup@{WASI_SOCKETS}"))?;
    lookup.resource(
        "resolve-address-stream",
        ResourceType::host::<NameLookup>(),
        |mut store, rep| {
            store
                .data_mut()
                .table
                .wasi()
                .delete(Resource::<NameLookup>::new_own(rep))?;
            Ok(())
        },
    )?;
    lookup.func_wrap(
        "resolve-addresses",
        |mut store: StoreContextMut<'_, Microthread>, (network, name): (Resource<Network>, String)| {
            Ok((store.data_mut().look_up(network, name)?,))
        },
    )?;
    lookup.func_wrap(
        "[method]resolve-address-stream.resolve-next-address",
        |mut store: StoreContextMut<'_, Microthread>, (this,): (Resource<NameLookup>,)| {
            let lookup = store.data_mut().table.wasi().get_mut(&this)?;
            Ok((lookup.next(),))
        },
    )?;
    lookup.func_wrap(
        "[method]resolve-address-stream.subscribe",
        |mut store: StoreContextMut<'_, Microthread>, (this,): (Resource<NameLookup>,)| {
            Ok((subscribe(store.data_mut().table.wasi(), this)?,))
        },
    )?;
    Ok(())
}

/// Define the WASI socket resource `name` (of type `T`) in `instance`, with weft's
/// destructor, which gives the socket's quota slot back.
fn socket_resource<T: 'static>(
    instance: &mut LinkerInstance<'_, Microthread>,
    name: &str,
) -> wasmtime::Result<()> {
    instance.resource(name, ResourceType::host::<T>(), |mut store, rep| {
        store.data_mut().close_wasi_socket::<T>(rep)
    })
}

/// A WASI socket opened (created or accepted), or why not.
type Opened<T> = wasmtime::Result<Result<T, ErrorCode>>;

/// The accepted socket and its streams, as `tcp-socket.accept` returns them.
type Accepted = (
    Resource<TcpSocket>,
    Resource<DynInputStream>,
    Resource<DynOutputStream>,
);

impl Microthread {
    /// A slot of the run's socket quota for a new WASI socket; refused (over the
    /// quota, or in a deterministic run), the run's stderr says why (once per
    /// microthread over the quota).
    fn wasi_slot(&mut self) -> Result<SocketSlot, ErrorCode> {
        if self.run.schedule().is_some() {
            self.run
                .options
                .note("weft: a socket refused: a deterministic run cannot use the network");
            return Err(ErrorCode::AccessDenied);
        }
        SocketSlot::take(&self.run.sockets).map_err(|_| {
            if self.wasi_sockets.first_refusal() {
                self.run.options.note(&format!(
                    "weft: a socket refused: the program already has its maximum of {} open \
                     sockets (RunOptions::max_sockets; weft run --max-sockets)",
                    self.run.sockets.max()
                ));
            }
            ErrorCode::NewSocketLimit
        })
    }

    fn create_wasi_tcp(&mut self, family: IpAddressFamily) -> Opened<Resource<TcpSocket>> {
        let slot = match self.wasi_slot() {
            Ok(slot) => slot,
            Err(refused) => return Ok(Err(refused)),
        };
        let opened = tcp_create_socket::Host::create_tcp_socket(&mut self.sockets(), family);
        self.hold_wasi_socket(slot, opened, Resource::rep)
    }

    async fn create_wasi_udp(&mut self, family: IpAddressFamily) -> Opened<Resource<UdpSocket>> {
        let slot = match self.wasi_slot() {
            Ok(slot) => slot,
            Err(refused) => return Ok(Err(refused)),
        };
        // Each UDP socket has a check of its own, which remembers whether it was
        // bound where a listen grant covers (then it may receive from anyone).
        let mut own = WasiCtx::builder();
        own.allow_udp(true)
            .socket_addr_check(self.run.options.wasi_socket_check(Arc::default()));
        let mut own = own.build().sockets().clone();
        let mut view = WasiSocketsCtxView {
            ctx: &mut own,
            table: self.table.wasi(),
        };
        let opened = udp_create_socket::Host::create_udp_socket(&mut view, family).await;
        self.hold_wasi_socket(slot, opened, Resource::rep)
    }

    fn accept_wasi_tcp(&mut self, this: Resource<TcpSocket>) -> Opened<Accepted> {
        // The slot first: over the quota, the connection waits in the backlog.
        let slot = match self.wasi_slot() {
            Ok(slot) => slot,
            Err(refused) => return Ok(Err(refused)),
        };
        let accepted = HostTcpSocket::accept(&mut self.sockets(), this);
        self.hold_wasi_socket(slot, accepted, |(socket, _, _)| socket.rep())
    }

    /// The WASI socket just `opened` holds `slot` (the socket is found by its
    /// resource's `rep`); or the guest gets the error its opening ended with.
    fn hold_wasi_socket<T>(
        &mut self,
        slot: SocketSlot,
        opened: Result<T, SocketError>,
        rep: impl FnOnce(&T) -> u32,
    ) -> Opened<T> {
        match opened {
            Ok(socket) => {
                self.wasi_sockets.hold(rep(&socket), slot);
                Ok(Ok(socket))
            }
            Err(e) => Ok(Err(e.downcast()?)),
        }
    }

    /// A WASI socket's destructor: closed, its slot given back.
    fn close_wasi_socket<T: 'static>(&mut self, rep: u32) -> wasmtime::Result<()> {
        self.table.wasi().delete(Resource::<T>::new_own(rep))?;
        self.wasi_sockets.release(rep);
        Ok(())
    }

    /// WASI's `resolve-addresses`: an IP address as it is; a name only if one of
    /// the run's grants could cover it, through the runtime's resolver.
    fn look_up(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> wasmtime::Result<Result<Resource<NameLookup>, ErrorCode>> {
        // The network resource is the capability to look up: it must be real.
        self.table.wasi().get(&network)?;
        let found = match name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            Ok(ip) => Ok(vec![ip]),
            Err(_) if name.is_empty() || name.contains(['/', ':', ' ']) => Err(ErrorCode::InvalidArgument),
            Err(_) if self.run.schedule().is_some() || !self.run.options.grants().may_look_up(&name) => {
                self.run.options.note(&format!(
                    "weft: denied looking up {name}: no grant could cover it (a grant by name \
                     covers that name, `*` any: weft run --connect {name}:PORT, or \
                     RunOptions::connect)"
                ));
                Err(ErrorCode::AccessDenied)
            }
            Err(_) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let resolver = self.run.resolver.clone();
                tokio::spawn(async move {
                    let found = match resolver.lookup(&name, 0).await {
                        Ok(addrs) => Ok(addrs.into_iter().map(|a| a.ip().to_canonical()).collect()),
                        Err(NetError::Io(e)) if e.kind() == io::ErrorKind::TimedOut => {
                            Err(ErrorCode::TemporaryResolverFailure)
                        }
                        Err(_) => Err(ErrorCode::NameUnresolvable),
                    };
                    // The guest may have dropped the lookup: nobody left to tell.
                    let _unwanted = tx.send(found);
                });
                return Ok(Ok(self.table.wasi().push(NameLookup::Waiting(rx))?));
            }
        };
        Ok(match found {
            Ok(ips) => Ok(self.table.wasi().push(NameLookup::Found(ips.into_iter()))?),
            Err(e) => Err(e),
        })
    }
}

/// A WASI name lookup: under way, or its addresses.
pub(crate) enum NameLookup {
    Waiting(tokio::sync::oneshot::Receiver<Result<Vec<IpAddr>, ErrorCode>>),
    Found(std::vec::IntoIter<IpAddr>),
    Failed(ErrorCode),
}

impl NameLookup {
    fn settle(&mut self, found: Result<Vec<IpAddr>, ErrorCode>) {
        *self = match found {
            Ok(ips) => NameLookup::Found(ips.into_iter()),
            Err(e) => NameLookup::Failed(e),
        };
    }

    /// `resolve-next-address`: the next address, none at the end, `would-block`
    /// while the lookup is under way.
    fn next(&mut self) -> Result<Option<IpAddress>, ErrorCode> {
        if let NameLookup::Waiting(rx) = self {
            match rx.try_recv() {
                Ok(found) => self.settle(found),
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => return Err(ErrorCode::WouldBlock),
                Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
                    self.settle(Err(ErrorCode::Unknown))
                }
            }
        }
        match self {
            NameLookup::Found(ips) => Ok(ips.next().map(IpAddress::from)),
            NameLookup::Failed(e) => Err(*e),
            NameLookup::Waiting(_) => Err(ErrorCode::WouldBlock),
        }
    }
}

impl Pollable for NameLookup {
    fn ready<'a, 'b>(&'a mut self) -> Pin<Box<dyn Future<Output = ()> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(async move {
            if let NameLookup::Waiting(rx) = self {
                let found = rx.await.unwrap_or(Err(ErrorCode::Unknown));
                self.settle(found);
            }
        })
    }
}

//! The WASI context of a microthread: its arguments, environment, directory grants,
//! stdio, clocks and random source; and the check of its WASI sockets' addresses
//! against the run's network grants.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx};

use super::options::RunOptions;
use super::output::{HostStdout, Lines, Output};
use crate::channel::Budget;
use crate::deterministic::{Schedule, SeededRandom};
use crate::net::{Direction, Grants};

impl RunOptions {
    /// A fresh WASI context for one microthread: the run's arguments, environment
    /// and directory grants, the host's stdio (or the run's buffers), nothing else.
    /// `alone`: the program cannot spawn, so its file I/O may block its worker if
    /// it holds one (`held_worker`).
    ///
    /// In a deterministic run (`schedule`, and the microthread's id), its clocks
    /// read virtual time, its random source is seeded, and file I/O is done in
    /// place, so that its completion cannot race with the other microthreads.
    /// The partial lines its stdout and stderr hold count against `budget`, the
    /// run's buffered bytes.
    pub(crate) fn wasi_ctx(
        &self,
        alone: bool,
        schedule: Option<(&Arc<Schedule>, u64)>,
        budget: &Arc<Budget>,
    ) -> wasmtime::Result<WasiCtx> {
        let mut b = WasiCtx::builder();
        // File I/O goes to tokio's blocking pool so that it does not stall the other
        // microthreads of a worker. A program that cannot spawn does it in place,
        // saving a thread hop per operation, only when it holds a worker of its own
        // (another remains for every other run: `Scheduler::hold_a_worker`); a
        // deterministic run, on its own thread.
        b.allow_blocking_current_thread((alone && self.held_worker.is_some()) || schedule.is_some());
        // `std::net` (WASI sockets) under the same grants as weft's own sockets, and
        // the run's quota (`wit::wasi_sockets` wraps their creation). Without a grant, they
        // may still be made, to be denied with a line on stderr that says why.
        // Host names go through the runtime's resolver (`wit::wasi_sockets` again).
        // A deterministic run has no network (`wit::wasi_sockets` tells the guest).
        if schedule.is_none() {
            b.allow_tcp(true).allow_udp(true);
            b.socket_addr_check(self.wasi_socket_check(Arc::default()));
        }
        if let Some((schedule, id)) = schedule {
            let seed = schedule.seed_for(id);
            b.monotonic_clock(schedule.clock())
                .wall_clock(schedule.clock())
                .secure_random(SeededRandom::new(seed))
                .insecure_random(SeededRandom::new(seed.rotate_left(32)))
                .insecure_random_seed(u128::from(seed) << 64 | u128::from(!seed));
        }
        match (&self.stdin_pipe, &self.stdin) {
            (Some(pipe), _) => {
                b.stdin(pipe.clone());
            }
            // Not from `start` (which made the run's pipe): a reader of its own.
            (None, Some(bytes)) => {
                b.stdin(MemoryInputPipe::new(bytes.clone()));
            }
            (None, None) if self.inherit_stdin => {
                b.inherit_stdin();
            }
            // The builder's default: an empty stdin.
            (None, None) => {}
        }
        // Microthreads write whole lines, so that their output never interleaves
        // within a line; a program that cannot spawn is alone, and writes through.
        // Neither a buffer nor the host's: the builder's default, a sink.
        let host_stdout = HostStdout(self.stdout_closed.clone());
        match (&self.stdout, alone) {
            (Output::Buffer(buffer), true) => b.stdout(buffer.0.clone()),
            (Output::Buffer(buffer), false) => b.stdout(Lines::new(buffer.0.clone(), budget)),
            (Output::Inherited, true) => b.stdout(host_stdout),
            (Output::Inherited, false) => b.stdout(Lines::new(host_stdout, budget)),
            (Output::Discarded, _) => &mut b,
        };
        match (&self.stderr, alone) {
            (Output::Buffer(buffer), true) => b.stderr(buffer.0.clone()),
            (Output::Buffer(buffer), false) => b.stderr(Lines::new(buffer.0.clone(), budget)),
            (Output::Inherited, true) => b.inherit_stderr(),
            (Output::Inherited, false) => b.stderr(Lines::new(std::io::stderr(), budget)),
            (Output::Discarded, _) => &mut b,
        };
        b.arg(&self.program_name);
        b.args(&self.args);
        b.envs(&self.env);
        for grant in &self.dirs {
            let perms = if grant.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            b.preopened_dir(&grant.host, &grant.guest, perms)?;
        }
        Ok(b.build())
    }

    /// The check for WASI sockets with `state` (one socket's, for a UDP socket):
    /// the grants, and a line on the run's stderr for each denial.
    pub(crate) fn wasi_socket_check(&self, state: Arc<WasiSocketState>) -> Box<WasiSocketCheck> {
        let grants = Arc::new(self.net.clone());
        let stderr = self.stderr.clone();
        Box::new(move |addr, use_| {
            let allowed = wasi_socket_allowed(&grants, addr, use_, &state);
            if !allowed {
                let told =
                    matches!(use_, SocketAddrUse::UdpReceive) && state.dropped.swap(true, Ordering::Relaxed);
                if !told {
                    stderr.write(&format!("{}\n", wasi_denial(addr, use_)));
                }
            }
            Box::pin(async move { allowed })
        })
    }
}

/// What a WASI socket has been allowed so far.
#[derive(Debug, Default)]
pub(crate) struct WasiSocketState {
    /// A UDP socket bound where a listen grant covers: it may receive from anyone.
    listen_bound: AtomicBool,
    /// A datagram from an address no grant covers has been dropped (and told).
    dropped: AtomicBool,
}

/// The check wasmtime-wasi makes before a WASI socket's every use of an address.
type WasiSocketCheck =
    dyn Fn(SocketAddr, SocketAddrUse) -> Pin<Box<dyn Future<Output = bool> + Send + Sync>> + Send + Sync;

/// Whether a WASI socket with `state` may use `addr` so, under `grants`.
fn wasi_socket_allowed(
    grants: &Grants,
    addr: SocketAddr,
    use_: SocketAddrUse,
    state: &WasiSocketState,
) -> bool {
    let any = addr.ip().is_unspecified() && addr.port() == 0;
    match use_ {
        // A bind to any address and port, checked before a connect (which the OS
        // makes) or asked for: it lets the socket neither listen nor connect, each
        // checked when asked for (and denied naming its address).
        SocketAddrUse::TcpBind if any => true,
        SocketAddrUse::UdpBind => {
            let listen = grants.allows(Direction::Listen, &addr);
            state.listen_bound.store(listen, Ordering::Relaxed);
            listen || (any && !grants.connect.is_empty())
        }
        SocketAddrUse::TcpBind | SocketAddrUse::TcpListen => grants.allows(Direction::Listen, &addr),
        SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend => grants.allows(Direction::Connect, &addr),
        // From a peer, to a listener whose address a grant covers.
        SocketAddrUse::TcpAccept => true,
        // A datagram: from a peer a connect grant covers, or to a socket bound
        // where a listen grant covers.
        SocketAddrUse::UdpReceive => {
            state.listen_bound.load(Ordering::Relaxed) || grants.allows(Direction::Connect, &addr)
        }
    }
}

/// The line on stderr for a WASI socket's denied use of `addr`.
fn wasi_denial(addr: SocketAddr, use_: SocketAddrUse) -> String {
    let any = addr.ip().is_unspecified() && addr.port() == 0;
    match use_ {
        SocketAddrUse::UdpBind if any => format!(
            "weft: denied a socket on any address ({addr}): no grant lets the run connect \
             anywhere or listen there (weft run --connect HOST:PORT or --listen HOST:PORT, \
             or RunOptions::connect/listen)"
        ),
        SocketAddrUse::TcpBind | SocketAddrUse::TcpListen | SocketAddrUse::UdpBind => {
            format!("weft: {}", Grants::denial(Direction::Listen, &addr.to_string()))
        }
        SocketAddrUse::UdpSend => format!(
            "weft: denied sending to {addr}: no grant covers it (weft run --connect {addr}, \
             or RunOptions::connect)"
        ),
        SocketAddrUse::UdpReceive => format!(
            "weft: dropped a datagram from {addr} (and may drop more, untold): no grant \
             covers it (weft run --connect {addr}, or bind under a --listen grant)"
        ),
        _ => format!("weft: {}", Grants::denial(Direction::Connect, &addr.to_string())),
    }
}

impl super::Run {
    /// What a microthread's outgoing `wasi:http` requests are checked against
    /// and counted in: the run's connect grants, its resolver and socket quota;
    /// a denial is told on the run's stderr.
    pub(crate) fn outgoing_http(&self) -> crate::net::http::Outgoing {
        let stderr = self.options.stderr.clone();
        crate::net::http::Outgoing {
            grants: Arc::new(self.options.net.clone()),
            resolver: self.resolver.clone(),
            sockets: self.sockets.clone(),
            tell: Arc::new(move |line: &str| stderr.write(&format!("{line}\n"))),
        }
    }
}

#[cfg(test)]
mod wasi_socket_tests {
    use super::*;
    use crate::net::Grant;

    #[test]
    fn a_connect_grant_gives_udp_no_listener_and_tcp_no_listen() {
        let grants = Grants {
            listen: vec![],
            connect: vec![Grant::parse("127.0.0.1:53").unwrap()],
        };
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        let allowed =
            |state: &WasiSocketState, a: &str, use_| wasi_socket_allowed(&grants, addr(a), use_, state);
        let udp = WasiSocketState::default();
        // Bound on any address (for sends): receives only from what the grant covers.
        assert!(allowed(&udp, "0.0.0.0:0", SocketAddrUse::UdpBind));
        assert!(allowed(&udp, "127.0.0.1:53", SocketAddrUse::UdpReceive));
        assert!(!allowed(&udp, "127.0.0.1:54", SocketAddrUse::UdpReceive));
        assert!(!allowed(&udp, "10.0.0.1:53", SocketAddrUse::UdpReceive));
        assert!(!allowed(&udp, "127.0.0.1:9000", SocketAddrUse::UdpBind));
        assert!(!allowed(&udp, "127.0.0.1:54", SocketAddrUse::UdpSend));
        let tcp = WasiSocketState::default();
        assert!(allowed(&tcp, "0.0.0.0:0", SocketAddrUse::TcpBind));
        assert!(!allowed(&tcp, "0.0.0.0:41000", SocketAddrUse::TcpListen));
        assert!(allowed(&tcp, "127.0.0.1:53", SocketAddrUse::TcpConnect));

        // Bound where a listen grant covers: a server, it receives from anyone.
        let grants = Grants {
            listen: vec![Grant::parse("127.0.0.1:9000").unwrap()],
            connect: vec![],
        };
        let server = WasiSocketState::default();
        assert!(wasi_socket_allowed(
            &grants,
            addr("127.0.0.1:9000"),
            SocketAddrUse::UdpBind,
            &server
        ));
        assert!(wasi_socket_allowed(
            &grants,
            addr("10.0.0.1:1234"),
            SocketAddrUse::UdpReceive,
            &server
        ));
        // Without any connect grant, not even a bind on any address.
        let other = WasiSocketState::default();
        assert!(!wasi_socket_allowed(
            &grants,
            addr("0.0.0.0:0"),
            SocketAddrUse::UdpBind,
            &other
        ));
        assert!(!wasi_socket_allowed(
            &grants,
            addr("10.0.0.1:1234"),
            SocketAddrUse::UdpReceive,
            &other
        ));
    }
}

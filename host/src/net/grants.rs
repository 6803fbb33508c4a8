//! Which addresses a run may listen on (`--listen`) and connect to (`--connect`).
//!
//! A grant is `HOST:PORTS`: HOST an IP address (IPv6 in brackets), a name resolved
//! when the grant is made (`localhost`), or `*` for any address; PORTS a port, a
//! range `8000-8100`, or `*`. Nothing is allowed that no grant covers.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// A grant that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{spec}`: {reason}")]
pub struct GrantError {
    spec: String,
    reason: String,
}

/// One network grant: addresses and ports (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    spec: String,
    /// None: any address.
    hosts: Option<Vec<IpAddr>>,
    ports: (u16, u16),
}

impl Grant {
    /// Parse `HOST:PORTS`, resolving a HOST that is a name.
    pub fn parse(spec: &str) -> Result<Grant, GrantError> {
        let err = |reason: &str| GrantError {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let (host, ports) = spec
            .rsplit_once(':')
            .ok_or_else(|| err("expected HOST:PORT, e.g. 127.0.0.1:8080, [::1]:*, localhost:8000-8100"))?;
        let ports = match ports {
            "*" => (0, u16::MAX),
            _ => {
                let port = |p: &str| p.parse::<u16>().map_err(|_| err(&format!("`{p}` is not a port")));
                let (a, b) = match ports.split_once('-') {
                    Some((a, b)) => (port(a)?, port(b)?),
                    None => (port(ports)?, port(ports)?),
                };
                if a > b {
                    return Err(err(&format!("the port range {a}-{b} is empty")));
                }
                (a, b)
            }
        };
        let hosts = match host.trim_start_matches('[').trim_end_matches(']') {
            "*" => None,
            "" => return Err(err("the host is missing (use * for any)")),
            h => match h.parse::<IpAddr>() {
                Ok(ip) => Some(vec![ip]),
                Err(_) => {
                    let ips: Vec<IpAddr> = (h, 0)
                        .to_socket_addrs()
                        .map_err(|e| err(&format!("`{h}` does not resolve: {e}")))?
                        .map(|a| a.ip())
                        .collect();
                    if ips.is_empty() {
                        return Err(err(&format!("`{h}` resolves to no address")));
                    }
                    Some(ips)
                }
            },
        };
        Ok(Grant {
            spec: spec.to_string(),
            hosts,
            ports,
        })
    }

    /// Whether it covers `addr`.
    pub fn allows(&self, addr: &SocketAddr) -> bool {
        let port = addr.port();
        let ip = addr.ip().to_canonical();
        (self.ports.0..=self.ports.1).contains(&port)
            && self
                .hosts
                .as_ref()
                .is_none_or(|hosts| hosts.iter().any(|h| h.to_canonical() == ip))
    }
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.spec)
    }
}

/// Listening, or connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Listen,
    Connect,
}

/// A run's network grants.
#[derive(Debug, Clone, Default)]
pub(crate) struct Grants {
    pub(crate) listen: Vec<Grant>,
    pub(crate) connect: Vec<Grant>,
}

impl Grants {
    /// Whether any grant is given.
    pub(crate) fn any(&self) -> bool {
        !self.listen.is_empty() || !self.connect.is_empty()
    }

    /// Whether `addr` may be used so.
    pub(crate) fn allows(&self, direction: Direction, addr: &SocketAddr) -> bool {
        let grants = match direction {
            Direction::Listen => &self.listen,
            Direction::Connect => &self.connect,
        };
        grants.iter().any(|g| g.allows(addr))
    }

    /// Why `addr` may not be used so, for the guest's error.
    pub(crate) fn denial(direction: Direction, addr: &SocketAddr) -> String {
        match direction {
            Direction::Listen => format!(
                "listening on {addr} is not allowed: no grant covers it (weft run --listen {addr}, or RunOptions::listen)"
            ),
            Direction::Connect => format!(
                "connecting to {addr} is not allowed: no grant covers it (weft run --connect {addr}, or RunOptions::connect)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn grants_cover_what_they_say() {
        let g = Grant::parse("127.0.0.1:8000-8002").unwrap();
        assert!(g.allows(&addr("127.0.0.1:8000")) && g.allows(&addr("127.0.0.1:8002")));
        assert!(!g.allows(&addr("127.0.0.1:8003")) && !g.allows(&addr("127.0.0.2:8000")));
        let g = Grant::parse("[::1]:*").unwrap();
        assert!(g.allows(&addr("[::1]:1")) && !g.allows(&addr("127.0.0.1:1")));
        let g = Grant::parse("*:443").unwrap();
        assert!(g.allows(&addr("10.1.2.3:443")) && g.allows(&addr("[::1]:443")));
        assert!(!g.allows(&addr("10.1.2.3:80")));
        let g = Grant::parse("localhost:7000").unwrap();
        assert!(g.allows(&addr("127.0.0.1:7000")));
        // An IPv4 address seen as IPv6 is the same address.
        let g = Grant::parse("127.0.0.1:7").unwrap();
        assert!(g.allows(&addr("[::ffff:127.0.0.1]:7")));
    }

    #[test]
    fn bad_grants_say_why() {
        for (spec, says) in [
            ("127.0.0.1", "expected HOST:PORT"),
            ("127.0.0.1:http", "is not a port"),
            ("127.0.0.1:90-80", "is empty"),
            (":80", "host is missing"),
        ] {
            let e = Grant::parse(spec).unwrap_err().to_string();
            assert!(e.contains(says), "{spec}: {e}");
        }
    }
}

//! Which addresses a run may listen on (`--listen`) and connect to (`--connect`).
//!
//! A grant is `HOST:PORTS`: HOST an IP address (IPv6 in brackets), a name resolved
//! when the grant is made (`localhost`), or `*` for any address; PORTS a port, a
//! range `8000-8100`, or `*`. Nothing is allowed that no grant covers.
//!
//! A guest may name a host by a name, too: that name is looked up only if a grant
//! could cover it (one of that direction, for its port, whose host is `*` or that
//! same name); otherwise it is denied without a lookup.

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
    /// The name the host was given by, in lower case, if it was a name.
    name: Option<String>,
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
        let mut name = None;
        let hosts = match host.trim_start_matches('[').trim_end_matches(']') {
            "*" => None,
            "" => return Err(err("the host is missing (use * for any)")),
            h => match h.parse::<IpAddr>() {
                Ok(ip) => Some(vec![ip]),
                Err(_) => {
                    name = Some(canonical_name(h));
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
            name,
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

impl Grant {
    /// Whether an address that `name` resolves to could be covered: the port is,
    /// and the host is `*` or was given as that same name.
    fn may_cover_name(&self, name: &str, port: Option<u16>) -> bool {
        port.is_none_or(|port| (self.ports.0..=self.ports.1).contains(&port))
            && (self.hosts.is_none() || self.name.as_deref() == Some(name))
    }
}

/// A host name as grants compare it: lower case, without a final dot.
fn canonical_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
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

    fn of(&self, direction: Direction) -> &[Grant] {
        match direction {
            Direction::Listen => &self.listen,
            Direction::Connect => &self.connect,
        }
    }

    /// Whether `addr` may be used so.
    pub(crate) fn allows(&self, direction: Direction, addr: &SocketAddr) -> bool {
        self.of(direction).iter().any(|g| g.allows(addr))
    }

    /// Whether the host name `name` may be looked up to be used so with `port`:
    /// whether a grant could cover what it resolves to. Nothing else is ever
    /// looked up.
    pub(crate) fn may_resolve(&self, direction: Direction, name: &str, port: u16) -> bool {
        let name = canonical_name(name);
        self.of(direction)
            .iter()
            .any(|g| g.may_cover_name(&name, Some(port)))
    }

    /// Whether the host name `name` may be looked up with no port known (WASI's
    /// `ip-name-lookup`): whether a grant of either direction could cover it.
    pub(crate) fn may_look_up(&self, name: &str) -> bool {
        let name = canonical_name(name);
        self.listen
            .iter()
            .chain(&self.connect)
            .any(|g| g.may_cover_name(&name, None))
    }

    /// Why `address` (as the guest gave it: a name is not shown resolved) may
    /// not be used so, for the guest's error.
    pub(crate) fn denial(direction: Direction, address: &str) -> String {
        match direction {
            Direction::Listen => format!(
                "listening on {address} is not allowed: no grant covers it (weft run --listen {address}, or RunOptions::listen)"
            ),
            Direction::Connect => format!(
                "connecting to {address} is not allowed: no grant covers it (weft run --connect {address}, or RunOptions::connect)"
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
    fn a_name_may_be_looked_up_only_if_a_grant_could_cover_it() {
        let grants = |listen: &[&str], connect: &[&str]| Grants {
            listen: listen.iter().map(|g| Grant::parse(g).unwrap()).collect(),
            connect: connect.iter().map(|g| Grant::parse(g).unwrap()).collect(),
        };
        let none = grants(&[], &[]);
        assert!(!none.may_resolve(Direction::Connect, "example.org", 80));
        assert!(!none.may_look_up("example.org"));
        // An address grant covers no name; a grant of the other direction neither.
        let ip = grants(&["*:80"], &["127.0.0.1:80"]);
        assert!(!ip.may_resolve(Direction::Connect, "example.org", 80));
        assert!(ip.may_resolve(Direction::Listen, "example.org", 80));
        assert!(!ip.may_resolve(Direction::Listen, "example.org", 81));
        // A name covers itself (in any case, with or without its final dot), only.
        let named = grants(&[], &["localhost:7000-7001"]);
        assert!(named.may_resolve(Direction::Connect, "LocalHost.", 7001));
        assert!(!named.may_resolve(Direction::Connect, "localhost", 7002));
        assert!(!named.may_resolve(Direction::Connect, "attacker.example", 7000));
        assert!(named.may_look_up("localhost") && !named.may_look_up("attacker.example"));
        assert!(grants(&[], &["*:53"]).may_look_up("anything.example"));
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

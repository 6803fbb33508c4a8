//! The grant parser (`weft::net::Grant::parse`) and the command line's value
//! parsers (sizes, durations, seed ranges) on any text: no panic, and what they
//! accept means what it says.
//!
//! Shared by the `parsers` fuzz target and the regression tests of `tests/`
//! (which include this file): it depends on `weft` and `std` only.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use weft::cli_values::{parse_duration, parse_seeds, parse_size};
use weft::net::Grant;

/// Check every parser on `data` (as text, lossily: the command line hands clap's
/// values over as UTF-8). Panics when a parser misbehaves.
pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    grant(&text);
    size(&text);
    duration(&text);
    seeds(&text);
}

/// Whether `host` (a grant's host part) resolves without a name service: the fuzz
/// target must not depend on the network (a name is resolved by the system, not by
/// weft's code).
fn resolves_locally(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h == "*" || h.is_empty() || h == "localhost" || h.parse::<IpAddr>().is_ok()
}

fn grant(text: &str) {
    let Some((host, _)) = text.rsplit_once(':') else {
        let e = Grant::parse(text).expect_err("a grant without a port");
        assert!(e.to_string().contains("expected HOST:PORT"), "{text:?}: {e}");
        return;
    };
    if !resolves_locally(host) {
        return;
    }
    let g = match Grant::parse(text) {
        Ok(g) => g,
        Err(e) => {
            // An error names what it refused.
            assert!(e.to_string().contains(text), "{text:?}: {e}");
            return;
        }
    };
    assert_eq!(g.to_string(), text, "a grant shows what it was made from");
    assert_eq!(
        Grant::parse(&g.to_string()),
        Ok(g.clone()),
        "{text:?} parses again the same"
    );
    // The port part: `*`, a port, or a non-empty range.
    let ports = text.rsplit_once(':').map(|(_, p)| p).unwrap_or_default();
    let (lo, hi) = match ports {
        "*" => (0, u16::MAX),
        p => match p.split_once('-') {
            Some((a, b)) => (
                a.parse::<u16>().expect("a port"),
                b.parse::<u16>().expect("a port"),
            ),
            None => {
                let p = p.parse::<u16>().expect("a port");
                (p, p)
            }
        },
    };
    assert!(lo <= hi, "{text:?}: an empty range accepted");
    let any = host.trim_start_matches('[').trim_end_matches(']') == "*";
    for ip in [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
    ] {
        for port in [lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1), 0, u16::MAX] {
            let allowed = g.allows(&SocketAddr::new(ip, port));
            if allowed {
                assert!((lo..=hi).contains(&port), "{text:?} allows port {port}");
            }
            if any && (lo..=hi).contains(&port) {
                assert!(allowed, "{text:?} refuses {ip} port {port}");
            }
        }
    }
}

fn size(text: &str) {
    let Ok(n) = parse_size(text) else {
        return;
    };
    // A size reads back as its bytes, and in the unit it was given in.
    assert_eq!(parse_size(&n.to_string()), Ok(n), "{text:?}");
    let digits: String = text.trim().chars().take_while(char::is_ascii_digit).collect();
    let unit = text.trim()[digits.len()..].trim().to_ascii_lowercase();
    let shift = match unit.as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        other => panic!("{text:?} accepted with unit {other:?}"),
    };
    let d: u64 = digits.parse().expect("the digits of an accepted size");
    assert_eq!(d.checked_mul(1 << shift), Some(n), "{text:?}");
}

fn duration(text: &str) {
    let Ok(d) = parse_duration(text) else {
        return;
    };
    // A number of seconds is what it says (to within float rounding).
    if let Ok(secs) = text.trim().parse::<f64>() {
        assert!(secs >= 0.0, "{text:?} gave {d:?}");
        let back = d.as_secs_f64();
        assert!(
            (back - secs).abs() <= secs.abs() * 1e-9 + 1e-9,
            "{text:?} gave {d:?}"
        );
    }
    // The duration a run's options take is what the parser gave: a deadline so far
    // off must not overflow anything when it is set.
    let _options = weft::RunOptions::new().deadline(d).shutdown_grace(d);
}

fn seeds(text: &str) {
    let Ok(r) = parse_seeds(text) else {
        return;
    };
    assert!(!r.is_empty(), "{text:?} gave the empty range {r:?}");
    if !text.contains("..") {
        assert_eq!(r.start, 0, "{text:?}: a count starts at 0");
    }
}

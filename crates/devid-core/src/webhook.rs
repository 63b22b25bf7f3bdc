//! Webhook rules that need no I/O: the addresses a webhook may never be delivered to,
//! and when a failed delivery is tried again.
//!
//! A webhook URL is chosen by whoever holds an admin key, and the server then sends
//! requests there on its own: pointed at the server's own host, its private network or
//! a cloud metadata service, that is a way to reach what the key holder cannot. So such
//! addresses are refused, when the URL is registered and again, resolved afresh, before
//! every delivery, unless the server was started to allow them (tests, a receiver on the
//! same host).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a webhook may not be delivered to `ip`, if it may not.
pub fn forbidden_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => forbidden_v4(v4),
            None => forbidden_v6(v6),
        },
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address (this host)")
    } else if ip.is_private() {
        Some("a private network address")
    } else if ip.is_link_local() {
        Some("a link-local address (where cloud metadata services answer)")
    } else if ip.is_unspecified() || a == 0 {
        Some("an unspecified address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a carrier-grade NAT address (shared, not public)")
    } else if ip.is_multicast() || ip.is_broadcast() {
        Some("a multicast or broadcast address")
    } else if ip.is_documentation() || a >= 240 {
        Some("a reserved address")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("a loopback address (this host)")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if first & 0xfe00 == 0xfc00 {
        Some("a unique local (private) address")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if first == 0x2001 && ip.segments()[1] == 0x0db8 {
        Some("a reserved address")
    } else {
        None
    }
}

/// Deliveries are tried for this long after the change, then marked failed.
pub const RETRY_FOR_MICROS: i64 = 24 * 3600 * 1_000_000;

/// How long to wait before attempt `attempt + 1` (the first retry follows attempt 1):
/// doubling from 10 s up to an hour, with up to a quarter more or less of jitter from
/// `jitter` (any number: receivers that fail together do not retry together).
pub fn backoff_micros(attempt: u32, jitter: u64) -> i64 {
    let base: i64 = 10_000_000i64.saturating_mul(1i64 << attempt.saturating_sub(1).min(12)).min(3600 * 1_000_000);
    let quarter = base / 4;
    let offset = if quarter > 0 { (jitter % (2 * quarter as u64 + 1)) as i64 - quarter } else { 0 };
    base + offset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_and_public_ones_allowed() {
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            let ip: IpAddr = refused.parse().expect("address");
            assert!(forbidden_address(ip).is_some(), "{refused}");
        }
        for allowed in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            let ip: IpAddr = allowed.parse().expect("address");
            assert_eq!(forbidden_address(ip), None, "{allowed}");
        }
    }

    #[test]
    fn retries_back_off_to_an_hour_with_jitter() {
        let second = backoff_micros(1, 0);
        assert!((7_500_000..=12_500_000).contains(&second), "{second}");
        let waits: Vec<i64> = (1..20).map(|a| backoff_micros(a, 12345)).collect();
        assert!(waits.windows(2).take(8).all(|w| w[1] > w[0]), "{waits:?}");
        assert!(waits.iter().all(|w| *w <= 3600 * 1_000_000 * 5 / 4), "{waits:?}");
        assert_ne!(backoff_micros(5, 1), backoff_micros(5, 999_999), "jitter spreads retries");
    }
}

//! Webhooks: where change sets are announced, how a URL is checked before anything is
//! sent to it, and how a delivery is signed. The dispatcher that sends them is in
//! [`dispatch`]; the endpoints in `routes::webhooks`.
//!
//! Verifying a delivery (receiver side): take the `x-devid-timestamp` header and the
//! raw body, compute HMAC-SHA256 over `{timestamp}.{body}` with the webhook's secret,
//! and compare its hex with the `v1=` value of `x-devid-signature` in constant time;
//! refuse timestamps more than five minutes old. docs/changes.md has a snippet.

pub mod dispatch;

use std::net::{IpAddr, SocketAddr};

use devid_core::webhook::forbidden_address;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The URLs accepted, narrower than what a URL may be, so that the API document can
/// state them exactly (`WEBHOOK_URL_PATTERN` there says the same): a label starting
/// with a digit could be read as part of an IPv4 address, so only whole IPv4 addresses
/// start with one; no credentials, no IPv6 literal, no fragment.
fn in_accepted_form(raw: &str) -> bool {
    let lower = raw.get(..8).map(str::to_ascii_lowercase).unwrap_or_default();
    let rest = if lower.starts_with("https://") {
        &raw[8..]
    } else if lower.starts_with("http://") {
        &raw[7..]
    } else {
        return false;
    };
    let host_end = rest.find(['/', '?', ':']).unwrap_or(rest.len());
    let (host, mut rest) = rest.split_at(host_end);
    let is_ipv4 = host.split('.').count() == 4 && host.split('.').all(canonical_octet);
    let is_name = !host.is_empty()
        && host.split('.').all(|label| {
            label.len() <= 63
                && label.starts_with(|c: char| c.is_ascii_alphabetic())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !(is_ipv4 || is_name) {
        return false;
    }
    if let Some(after) = rest.strip_prefix(':') {
        let end = after.find(['/', '?']).unwrap_or(after.len());
        let port = &after[..end];
        if port.is_empty() || port.starts_with('0') || port.len() > 5 || port.parse::<u16>().map_or(true, |p| p == 0) {
            return false;
        }
        rest = &after[end..];
    }
    let path_char = |c: char| c.is_ascii_alphanumeric() || "._~/%-".contains(c);
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    (path.is_empty() || (path.starts_with('/') && path.chars().all(path_char)))
        && query.is_none_or(|q| q.chars().all(|c| path_char(c) || "&=+".contains(c)))
}

/// 0 to 255 written without a leading zero.
fn canonical_octet(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 3
        && text.bytes().all(|b| b.is_ascii_digit())
        && !(text.len() > 1 && text.starts_with('0'))
        && text.parse::<u16>().is_ok_and(|n| n <= 255)
}

/// Whether webhooks may point at this host or its private network.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookPolicy {
    /// `devid serve --allow-private-webhooks`: for a receiver on the same host or
    /// network (and the tests, on loopback). Off by default.
    pub allow_private: bool,
}

/// A webhook URL, checked: http or https, a host, no credentials in it.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: reqwest::Url,
    pub host: String,
    pub port: u16,
}

/// Checks the form of `raw`; the addresses it resolves to are checked by [`resolve`].
pub fn parse_url(raw: &str) -> Result<Target, String> {
    if !in_accepted_form(raw) {
        return Err(format!(
            "`{}` is not a webhook URL devid takes: http:// or https://, a host name whose labels start with a letter (or an IPv4 address), an optional port, then an optional path and query of letters, digits and ._~/%-&=+",
            raw.chars().take(80).collect::<String>()
        ));
    }
    let url = reqwest::Url::parse(raw).map_err(|e| format!("`{raw}` is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("a webhook URL is http or https, not `{}`", url.scheme()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a webhook URL may not carry credentials; the signature proves who sent a delivery".into());
    }
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| format!("`{raw}` names no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    Ok(Target { url, host, port })
}

/// Longest a webhook host's name may take to resolve.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Why a webhook's host cannot be sent to now.
#[derive(Debug, Clone)]
pub enum Unreachable {
    /// It resolves to an address webhooks may not reach.
    Forbidden(String),
    /// It does not resolve (now).
    Unresolved(String),
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreachable::Forbidden(why) | Unreachable::Unresolved(why) => f.write_str(why),
        }
    }
}

/// The address to send to: the host resolved now, every address it resolves to checked
/// (a name that resolves to one public and one private address is refused), and the
/// first one pinned for the request, so that the name cannot resolve elsewhere between
/// the check and the connection.
pub async fn resolve(target: &Target, policy: WebhookPolicy) -> Result<SocketAddr, Unreachable> {
    let addresses: Vec<SocketAddr> = match target.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, target.port)],
        Err(_) => {
            let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
            tokio::time::timeout(RESOLVE_TIMEOUT, lookup)
                .await
                .map_err(|_| Unreachable::Unresolved(format!("`{}` did not resolve in time", target.host)))?
                .map_err(|e| Unreachable::Unresolved(format!("`{}` does not resolve ({e})", target.host)))?
                .collect()
        }
    };
    let first = *addresses
        .first()
        .ok_or_else(|| Unreachable::Unresolved(format!("`{}` resolves to no address", target.host)))?;
    if !policy.allow_private {
        for address in &addresses {
            if let Some(why) = forbidden_address(address.ip()) {
                return Err(Unreachable::Forbidden(format!(
                    "`{}` resolves to {}, {why}; webhooks may only reach public addresses unless the server is started with --allow-private-webhooks",
                    target.host,
                    address.ip()
                )));
            }
        }
    }
    Ok(first)
}

/// The `x-devid-signature` value for `body` sent at `timestamp` (Unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("v1={hex}")
}

/// A new secret: 32 random bytes, hex.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_with_a_host_and_no_credentials() {
        assert!(parse_url("https://hooks.example.com/devid").is_ok());
        assert_eq!(
            parse_url("HTTP://10.0.0.1:9000/x?a=b").map(|t| (t.host, t.port)).ok(),
            Some(("10.0.0.1".into(), 9000))
        );
        for bad in [
            "ftp://example.com",
            "https://user:pw@example.com/",
            "not a url",
            "file:///etc/passwd",
            " https://example.com",
            "https://9example.com",
            "https://01.2.3.4",
            "https://1.2.3.256",
            "https://example.com:0",
            "https://example.com:65536",
            "https://example.com/#frag",
            "http://[::1]:9000/x",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn private_addresses_are_refused_unless_allowed() {
        for raw in ["http://127.0.0.1:8080/", "http://169.254.169.254/latest/meta-data", "http://10.0.0.5/"] {
            let target = parse_url(raw).expect("parses");
            let refused = resolve(&target, WebhookPolicy::default()).await;
            assert!(
                matches!(&refused, Err(Unreachable::Forbidden(e)) if e.contains("--allow-private-webhooks")),
                "{raw}: {refused:?}"
            );
            assert!(resolve(&target, WebhookPolicy { allow_private: true }).await.is_ok(), "{raw}");
        }
    }

    #[test]
    fn signatures_cover_the_timestamp_and_the_body() {
        let a = signature("s3cret", 1_700_000_000, b"{\"x\":1}");
        assert!(a.starts_with("v1=") && a.len() == 3 + 64, "{a}");
        assert_ne!(a, signature("s3cret", 1_700_000_001, b"{\"x\":1}"));
        assert_ne!(a, signature("s3cret", 1_700_000_000, b"{\"x\":2}"));
        assert_ne!(a, signature("other", 1_700_000_000, b"{\"x\":1}"));
        assert_eq!(new_secret().len(), 64);
        assert_ne!(new_secret(), new_secret());
    }
}

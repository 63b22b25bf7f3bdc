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
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| format!("`{raw}` is not a URL ({e})"))?;
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

/// The address to send to: the host resolved now, every address it resolves to checked
/// (a name that resolves to one public and one private address is refused), and the
/// first one pinned for the request, so that the name cannot resolve elsewhere between
/// the check and the connection.
pub async fn resolve(target: &Target, policy: WebhookPolicy) -> Result<SocketAddr, String> {
    let addresses: Vec<SocketAddr> = match target.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, target.port)],
        Err(_) => tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| format!("`{}` does not resolve ({e})", target.host))?
            .collect(),
    };
    let first = *addresses.first().ok_or_else(|| format!("`{}` resolves to no address", target.host))?;
    if !policy.allow_private {
        for address in &addresses {
            if let Some(why) = forbidden_address(address.ip()) {
                return Err(format!(
                    "`{}` resolves to {}, {why}; webhooks may only reach public addresses unless the server is started with --allow-private-webhooks",
                    target.host,
                    address.ip()
                ));
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
        assert_eq!(parse_url("http://[::1]:9000/x").map(|t| (t.host, t.port)).ok(), Some(("::1".into(), 9000)));
        for bad in ["ftp://example.com", "https://user:pw@example.com/", "not a url", "file:///etc/passwd"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn private_addresses_are_refused_unless_allowed() {
        for raw in
            ["http://127.0.0.1:8080/", "http://169.254.169.254/latest/meta-data", "http://[::1]/", "http://10.0.0.5/"]
        {
            let target = parse_url(raw).expect("parses");
            let refused = resolve(&target, WebhookPolicy::default()).await;
            assert!(refused.as_ref().is_err_and(|e| e.contains("--allow-private-webhooks")), "{raw}: {refused:?}");
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

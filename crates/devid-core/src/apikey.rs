//! The API key format, `pat.<account>.<keyId>.<secret>`, and where a request carries it.
//! Generating and checking secrets is the store's business; this is only the syntax.

pub const KEY_PREFIX: &str = "pat";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    pub account: &'a str,
    pub key_id: &'a str,
    pub secret: &'a str,
}

/// Splits a presented key. The secret is the rest after the third dot, so secrets may
/// contain dots even though ours do not.
pub fn parse_key(presented: &str) -> Option<ParsedKey<'_>> {
    let mut parts = presented.trim().splitn(4, '.');
    let (Some(prefix), Some(account), Some(key_id), Some(secret)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if prefix != KEY_PREFIX || account.is_empty() || key_id.is_empty() || secret.is_empty() {
        return None;
    }
    Some(ParsedKey { account, key_id, secret })
}

pub fn format_key(account: &str, key_id: &str, secret: &str) -> String {
    format!("{KEY_PREFIX}.{account}.{key_id}.{secret}")
}

/// Finds the key among the header forms Harness documents: `x-api-key: <key>`, or
/// `Authorization:` with `ApiKey`, `APIKEY` or `Bearer` before the key, or the key alone.
pub fn key_from_headers<'a>(x_api_key: Option<&'a str>, authorization: Option<&'a str>) -> Option<&'a str> {
    if let Some(key) = x_api_key.map(str::trim).filter(|k| !k.is_empty()) {
        return Some(key);
    }
    let value = authorization?.trim();
    if value.eq_ignore_ascii_case("apikey") || value.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let key = match value.split_once(char::is_whitespace) {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("apikey") || scheme.eq_ignore_ascii_case("bearer") => {
            rest.trim()
        }
        _ => value,
    };
    (!key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_into_their_parts() {
        let k = parse_key("pat.default.k1.s3cr3t").expect("valid");
        assert_eq!((k.account, k.key_id, k.secret), ("default", "k1", "s3cr3t"));
        assert_eq!(parse_key(&format_key("a", "b", "c.d")).map(|k| k.secret), Some("c.d"));
        for bad in ["", "pat", "pat.a.b", "pat..b.c", "sat.a.b.c", "pat.a.b."] {
            assert_eq!(parse_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_documented_header_form_yields_the_key() {
        let key = "pat.default.k1.secret";
        assert_eq!(key_from_headers(Some(key), None), Some(key));
        for auth in [
            format!("ApiKey {key}"),
            format!("APIKEY {key}"),
            format!("apikey {key}"),
            format!("Bearer {key}"),
            key.to_string(),
        ] {
            assert_eq!(key_from_headers(None, Some(&auth)), Some(key), "{auth}");
        }
        assert_eq!(key_from_headers(None, Some("Bearer ")), None);
        assert_eq!(key_from_headers(Some(" "), None), None);
    }
}

//! Keyset cursors for listings: opaque tokens that say where the next page starts.
//! Each is authenticated with HMAC-SHA256 under a secret of the database (the same in
//! every replica), over the account it was issued to and the filters and sort it
//! continues, so a client can neither forge a position, nor carry a cursor to another
//! account or another query. A token shows nothing of the account it belongs to.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use devid_store::query::CursorKey;
use devid_store::{AccountId, IdentityQuery};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Name of the database secret that keys cursor MACs.
pub const CURSOR_SECRET: &str = "cursor-mac";

/// Bytes of the MAC a token carries: 128 bits, beyond guessing.
const MAC_BYTES: usize = 16;
/// Bytes of the filter digest a token carries, to tell "other filters" apart from
/// "altered" in the error; the MAC, not this, is what binds the two.
const FILTER_TAG_BYTES: usize = 8;

/// SHA-256 of a listing's filters and sort in a canonical form: what caches of that
/// listing are keyed by, and what a cursor is bound to. Collisions are infeasible, so
/// two different filters never share a cached total or a remembered page position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FilterDigest([u8; 32]);

impl FilterDigest {
    pub fn of(q: &IdentityQuery) -> Self {
        // Debug forms quote and escape strings, so no two filters read the same.
        let canonical = format!(
            "identities|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            q.emails, q.integration_ids, q.application_types, q.search, q.updated_after, q.sort, q.order
        );
        Self(Sha256::digest(canonical.as_bytes()).into())
    }

    /// The digest of a contributor listing's filters and sort.
    pub fn of_contributors(q: &devid_store::contributors::ContributorQuery) -> Self {
        let canonical = format!(
            "contributors|{:?}|{:?}|{:?}|{:?}|{:?}",
            q.status, q.integration_ids, q.search, q.active_after, q.sort
        );
        Self(Sha256::digest(canonical.as_bytes()).into())
    }

    /// The digest of a coverage request.
    pub fn of_coverage(q: &devid_store::contributors::CoverageQuery) -> Self {
        Self(Sha256::digest(format!("coverage|{q:?}").as_bytes()).into())
    }

    /// This digest bound to a version of something else the cached value depends on
    /// (contributor totals depend on identities too): a cache keyed by it misses once
    /// that version moves.
    pub fn at_version(&self, what: &str, version: i64) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(self.0);
        hasher.update(what.as_bytes());
        hasher.update(version.to_be_bytes());
        Self(hasher.finalize().into())
    }

    fn tag(&self) -> [u8; FILTER_TAG_BYTES] {
        let mut tag = [0u8; FILTER_TAG_BYTES];
        tag.copy_from_slice(&self.0[..FILTER_TAG_BYTES]);
        tag
    }
}

/// Signs and checks cursors with the database's cursor secret.
#[derive(Clone)]
pub struct CursorSigner {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for CursorSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorSigner(..)")
    }
}

#[derive(Serialize, Deserialize)]
struct Payload {
    /// Where the next page starts.
    k: CursorKey,
    /// The first bytes of the filter digest, base64.
    f: String,
}

impl CursorSigner {
    pub fn new(secret: &[u8]) -> Self {
        // HMAC takes a key of any length; this cannot fail.
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
        Self { mac }
    }

    fn sign(&self, account: AccountId, payload: &[u8]) -> [u8; MAC_BYTES] {
        let mut mac = self.mac.clone();
        mac.update(b"devid-cursor/v2\0");
        mac.update(&account.0.to_be_bytes());
        mac.update(payload);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; MAC_BYTES];
        out.copy_from_slice(&full[..MAC_BYTES]);
        out
    }

    pub fn encode(&self, key: &CursorKey, account: AccountId, filter: &FilterDigest) -> String {
        let payload = Payload { k: key.clone(), f: URL_SAFE_NO_PAD.encode(filter.tag()) };
        let payload = serde_json::to_vec(&payload).unwrap_or_default();
        let mac = self.sign(account, &payload);
        format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(mac))
    }

    /// The position a cursor holds, if this server issued it to `account` for exactly
    /// `filter`.
    pub fn decode(&self, raw: &str, account: AccountId, filter: &FilterDigest) -> Result<CursorKey, ApiError> {
        let invalid = |why: &str| invalid_cursor(raw, why);
        let (payload, mac) = raw.trim().split_once('.').ok_or_else(|| invalid("is not one devid issued"))?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid("is not one devid issued"))?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| invalid("is not one devid issued"))?;
        let expected = self.sign(account, &payload);
        // Compared in constant time: a timing difference would let a client find a
        // valid MAC byte by byte.
        if mac.len() != MAC_BYTES || !bool::from(subtle::ConstantTimeEq::ct_eq(&mac[..], &expected[..])) {
            return Err(invalid("has been altered, belongs to another account, or was not issued by this server"));
        }
        let payload: Payload = serde_json::from_slice(&payload).map_err(|_| invalid("is not one devid issued"))?;
        if payload.f != URL_SAFE_NO_PAD.encode(filter.tag()) {
            return Err(invalid("was issued for other filters or another sort"));
        }
        Ok(payload.k)
    }
}

fn invalid_cursor(raw: &str, why: &str) -> ApiError {
    let mut problems = devid_core::Problems::new();
    let message =
        format!("The cursor {why}. Start again from the first page (no cursor) with the same filters and sort.");
    problems.add_with_reason(
        devid_core::ErrorType::InvalidCursor,
        "cursor",
        devid_core::errors::Position::Whole,
        raw,
        Some(message.clone()),
    );
    ApiError { status: axum::http::StatusCode::BAD_REQUEST, message, errors: problems.into_groups(), retry_after: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CursorKey {
        CursorKey { value: Some("jane@x.com".into()), integration_id: 3, identity_key: "jdoe".into() }
    }

    #[test]
    fn a_cursor_opens_only_for_its_account_filter_and_secret() {
        let signer = CursorSigner::new(b"secret one");
        let filter = FilterDigest::of(&IdentityQuery::default());
        let other_filter = FilterDigest::of(&IdentityQuery { search: Some("x".into()), ..Default::default() });
        let token = signer.encode(&key(), AccountId(7), &filter);
        assert_eq!(signer.decode(&token, AccountId(7), &filter).expect("opens"), key());
        assert!(signer.decode(&token, AccountId(8), &filter).is_err(), "another account");
        assert!(signer.decode(&token, AccountId(7), &other_filter).is_err(), "other filters");
        assert!(CursorSigner::new(b"secret two").decode(&token, AccountId(7), &filter).is_err(), "other database");
        let payload = URL_SAFE_NO_PAD.decode(token.split_once('.').expect("two parts").0).expect("base64");
        let fields: serde_json::Value = serde_json::from_slice(&payload).expect("json");
        let names: Vec<&String> = fields.as_object().expect("object").keys().collect();
        assert_eq!(names, ["f", "k"], "the position and the filter tag, nothing of the account");
    }

    #[test]
    fn an_edited_position_is_refused() {
        let signer = CursorSigner::new(b"secret");
        let filter = FilterDigest::of(&IdentityQuery::default());
        let token = signer.encode(&key(), AccountId(1), &filter);
        let (payload, mac) = token.split_once('.').expect("two parts");
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json");
        let edited = URL_SAFE_NO_PAD.encode(text.replace("jdoe", "jdof"));
        let err = signer.decode(&format!("{edited}.{mac}"), AccountId(1), &filter).expect_err("refused");
        assert!(err.message.contains("altered"), "{}", err.message);
    }
}

//! Contract checks of the session family: a sign-in lives on its key, ends when idle,
//! signed out or when the key goes, and carries the key's account and scopes.

use devid_core::types::Scope;

use super::{account, ok};
use crate::sessions::NewSession;
use crate::{NewKey, Store, StoreError};

/// A minute and an hour, in microseconds.
const MINUTE: i64 = 60_000_000;
const HOUR: i64 = 60 * MINUTE;

fn new_session(token_hash: &str, key_id: &str) -> NewSession {
    NewSession { token_hash: token_hash.into(), key_id: key_id.into(), csrf_token: format!("csrf-{token_hash}") }
}

pub async fn sessions_live_on_their_key_and_end_when_signed_out_or_idle(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    let new_key = NewKey { scopes: vec![Scope::DeveloperRecordsRead], label: "ui".into(), expires_at: None };
    let key = ok(store.create_key(&ctx, new_key).await, "create key");
    ok(store.create_session(new_session("h1", &key.info.id)).await, "open");
    let session = ok(store.session("h1", HOUR).await, "read").expect("a live session");
    assert_eq!(session.principal.account, ctx.account);
    assert_eq!(session.principal.account_name, "acme");
    assert_eq!(session.principal.scopes, vec![Scope::DeveloperRecordsRead]);
    assert_eq!(session.csrf_token, "csrf-h1");
    assert!(ok(store.session("unknown", HOUR).await, "read").is_none());

    let again = store.create_session(new_session("h1", &key.info.id)).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "a taken token hash: {again:?}");
    let nobody = store.create_session(new_session("h2", "no-such-key")).await;
    assert!(matches!(nobody, Err(StoreError::Invalid(_))), "an unknown key: {nobody:?}");

    ok(store.end_session("h1").await, "sign out");
    assert!(ok(store.session("h1", HOUR).await, "read").is_none(), "signed out");
    ok(store.end_session("h1").await, "signing out twice is harmless");

    // Idle longer than allowed: gone, and gone for good.
    ok(store.create_session(new_session("h3", &key.info.id)).await, "open");
    assert!(ok(store.session("h3", -MINUTE).await, "read").is_none(), "idle past the limit");
    assert!(ok(store.session("h3", HOUR).await, "read").is_none(), "an expired session is deleted");

    // Revoking the key ends its sessions.
    ok(store.create_session(new_session("h4", &key.info.id)).await, "open");
    ok(store.revoke_key(&ctx, &key.info.id, false).await, "revoke");
    assert!(ok(store.session("h4", HOUR).await, "read").is_none(), "the key was revoked");
}

pub async fn idle_sessions_are_purged(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    let new_key = NewKey { scopes: vec![Scope::Admin], label: "ui".into(), expires_at: None };
    let key = ok(store.create_key(&ctx, new_key).await, "create key");
    ok(store.create_session(new_session("p1", &key.info.id)).await, "open");
    ok(store.create_session(new_session("p2", &key.info.id)).await, "open");
    assert_eq!(ok(store.purge_sessions(HOUR).await, "purge"), 0, "both are fresh");
    assert_eq!(ok(store.purge_sessions(-MINUTE).await, "purge"), 2, "both are idle past a limit in the past");
    assert!(ok(store.session("p1", HOUR).await, "read").is_none());
}

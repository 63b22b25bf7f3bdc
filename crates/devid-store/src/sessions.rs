//! The session family of the storage contract: sign-ins of the review UI.
//!
//! A session is opened with an API key the server has just authenticated and lives on
//! that key: it is found by the SHA-256 of its random token (the cookie's value is never
//! stored), carries the key's account and scopes as they are now (a revoked or expired
//! key ends every session opened with it), ends when idle longer than the caller allows,
//! and holds the token every state-changing form must echo (CSRF). Sessions are stored,
//! not kept in memory, so replicas behind one load balancer share them.

use async_trait::async_trait;
use devid_core::time::Micros;

use crate::{Principal, StoreResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// Hex SHA-256 of the token the browser holds.
    pub token_hash: String,
    /// The key signed in with; its account and scopes are read from it on every use.
    pub key_id: String,
    /// Echoed by every form that changes something.
    pub csrf_token: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub principal: Principal,
    pub csrf_token: String,
    pub created_at: Micros,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Opens a session. Errors: `Conflict` when the token hash exists already (a
    /// caller that draws 256 random bits never sees it); `Invalid` when the key does not
    /// exist.
    async fn create_session(&self, session: NewSession) -> StoreResult<()>;

    /// The session with this token hash, if it was used within `idle` microseconds and
    /// its key is still valid; its last use becomes now. A session past that is deleted
    /// and `None` is returned, as for an unknown hash. Errors: `Unavailable`.
    async fn session(&self, token_hash: &str, idle: Micros) -> StoreResult<Option<Session>>;

    /// Ends a session (sign-out); unknown hashes are ignored. Errors: `Unavailable`.
    async fn end_session(&self, token_hash: &str) -> StoreResult<()>;

    /// Deletes every session idle longer than `idle`; returns how many. Errors:
    /// `Unavailable`.
    async fn purge_sessions(&self, idle: Micros) -> StoreResult<u64>;
}

//! Storage for devid: one trait, [`Store`], that the HTTP server is written against, and
//! its backends. Every method that changes identities takes a whole upload and applies
//! it in one transaction, so a backend never sees a call per row.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use devid_core::plan::{DeletePlan, IntegrationInfo, UploadPlan};
use devid_core::time::Micros;
use devid_core::types::{ApplicationType, IntegrationId, Scope};
use serde::Serialize;

pub mod changes;
#[doc(hidden)]
pub mod contract;
pub mod contributors;
pub mod keys;
pub mod locks;
pub mod matching;
pub mod memory;
pub mod postgres;
pub mod query;
pub mod revert;
pub mod sessions;
pub mod sql;
pub mod sqlite;
pub mod webhooks;

pub use changes::ChangeStore;
pub use contributors::ContributorStore;
pub use locks::LockStore;
pub use matching::MatchStore;
pub use sessions::SessionStore;
pub use webhooks::WebhookStore;

/// The store traits, for code that holds a concrete store rather than `dyn Store`.
pub mod prelude {
    pub use crate::Store;
    pub use crate::changes::ChangeStore;
    pub use crate::contributors::ContributorStore;
    pub use crate::locks::LockStore;
    pub use crate::matching::MatchStore;
    pub use crate::sessions::SessionStore;
    pub use crate::webhooks::WebhookStore;
}
pub use postgres::PostgresStore;
pub use query::{AuditQuery, IdentityQuery, Paging, SortKey, SortOrder};
pub use sqlite::SqliteStore;

/// An account's internal number; every row of every table belongs to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccountId(pub i64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
}

/// Who is making a change, recorded with every audit event.
#[derive(Debug, Clone)]
pub struct ChangeContext {
    pub account: AccountId,
    /// `None` for changes made by the CLI directly on the database.
    pub key_id: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// The database cannot be reached or is busy beyond patience; callers answer 503.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("storage failure: {0}")]
    Internal(String),
    /// An upload would move locked identities (`total` of them; `rows` are the first).
    #[error("{total} locked identities would move")]
    Locked { total: u64, rows: Vec<LockedMove> },
}

/// A locked identity an upload would have moved to another developer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedMove {
    pub integration_id: IntegrationId,
    pub identity: String,
    /// The developer it is locked to.
    pub locked_to: String,
    /// Where the upload would have moved it.
    pub requested: String,
}

/// Most locked rows an error lists; the total says how many more there are.
pub const MAX_LOCKED_SAMPLES: usize = 100;

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    pub id: IntegrationId,
    pub application_type: ApplicationType,
    pub name: String,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
    /// How many identities this integration holds.
    pub identity_count: u64,
}

#[derive(Debug, Clone)]
pub struct NewIntegration {
    /// `None` picks the next free id.
    pub id: Option<IntegrationId>,
    pub application_type: ApplicationType,
    pub name: String,
}

#[derive(Debug, Clone, Default)]
pub struct IntegrationPatch {
    pub name: Option<String>,
    pub application_type: Option<ApplicationType>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteIntegrationOutcome {
    Deleted {
        identities_deleted: u64,
    },
    NotFound,
    /// Refused without `force`: deleting would drop this many identities.
    HasIdentities(u64),
}

#[derive(Debug, Clone)]
pub struct NewKey {
    pub scopes: Vec<Scope>,
    pub label: String,
    pub expires_at: Option<Micros>,
}

/// A key as listed: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyInfo {
    pub id: String,
    pub account: String,
    pub scopes: Vec<Scope>,
    pub label: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
    pub revoked: bool,
}

/// A key just created: the only moment its full text exists outside the client.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub info: ApiKeyInfo,
    pub key: String,
}

/// What a valid key lets its holder act as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account: AccountId,
    pub account_name: String,
    pub key_id: String,
    pub scopes: Vec<Scope>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    Valid(Principal),
    /// Not a key of ours, or a wrong secret: indistinguishable on purpose.
    Unknown,
    Revoked,
    Expired,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadSummary {
    pub received: u64,
    pub created: u64,
    pub reassigned: u64,
    pub unchanged: u64,
    pub duplicates: u64,
    pub developers_created: u64,
    /// Integrations the previous endpoints created for an application type that had none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub integrations_created: Vec<Integration>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteSummary {
    pub received: u64,
    pub deleted: u64,
    pub not_found: u64,
    pub duplicates: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentityRecord {
    pub email: String,
    pub integration_id: IntegrationId,
    pub application_type: ApplicationType,
    pub identity: String,
    pub created_at: String,
    pub updated_at: String,
    /// Whether uploads may move it to another developer (see POST /v2/developers/identities/lock).
    pub locked: bool,
    /// How the mapping was made: upload, csv, previous-api, suggestion, ui, cli, or
    /// unrecorded (before devid recorded it).
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityPage {
    pub records: Vec<IdentityRecord>,
    pub total_count: u64,
    pub has_next: bool,
    /// Keyset position after the last record, when there is a next page.
    pub next_cursor: Option<query::CursorKey>,
    /// Keyset position after the first record (the rows after it start with the
    /// second), when there is a record.
    pub first_cursor: Option<query::CursorKey>,
}

/// One identity as an export reads it, borrowed from the database's row.
#[derive(Debug, Clone, Copy)]
pub struct ExportRow<'a> {
    pub email: &'a str,
    pub integration_id: IntegrationId,
    pub application_type: &'a str,
    pub identity: &'a str,
    pub updated_at: Micros,
    pub locked: bool,
    /// How the mapping was made, as [`IdentityRecord::source`].
    pub source: &'a str,
}

/// Appends one row, in the export's format, to the batch being built. It runs where
/// the rows are read, so a row is encoded straight from the database's buffers.
pub type ExportEncoder = std::sync::Arc<dyn Fn(&ExportRow<'_>, &mut Vec<u8>) + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportBatch {
    pub bytes: Vec<u8>,
    pub rows: u64,
    /// Where the next batch starts, when there is one.
    pub next_cursor: Option<query::CursorKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub id: i64,
    pub at: String,
    pub action: String,
    pub key_id: Option<String>,
    pub request_id: Option<String>,
    pub integration_id: Option<IntegrationId>,
    pub identity: Option<String>,
    pub old_email: Option<String>,
    pub new_email: Option<String>,
    /// Further facts as JSON text (an integration's old and new name, a key's scopes).
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    pub total_count: u64,
    pub has_next: bool,
}

/// The storage contract. Implementations must keep every account's data apart, apply
/// each upload or delete atomically, and answer `Unavailable` (not `Internal`) when the
/// database cannot be reached, so the server can say 503 and the client can retry.
#[async_trait]
pub trait Store:
    ChangeStore + ContributorStore + LockStore + MatchStore + SessionStore + WebhookStore + Send + Sync + 'static
{
    fn backend(&self) -> &'static str;

    /// A cheap round trip to the database, for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;

    /// On a database with no account, creates account `default` and an admin key for it
    /// and returns the key; otherwise does nothing and returns `None`.
    async fn bootstrap(&self) -> StoreResult<Option<CreatedKey>>;

    async fn account_by_name(&self, name: &str) -> StoreResult<Option<Account>>;

    /// Returns the account, creating it if needed.
    async fn ensure_account(&self, name: &str) -> StoreResult<Account>;

    async fn create_key(&self, ctx: &ChangeContext, new: NewKey) -> StoreResult<CreatedKey>;

    /// Keys of one account, or of all accounts for `None` (the CLI).
    async fn list_keys(&self, account: Option<AccountId>) -> StoreResult<Vec<ApiKeyInfo>>;

    /// Revokes a key of `ctx.account` (any account when `any_account`). `NotFound` if absent;
    /// `Conflict` when, over the API (`!any_account`), it is the account's last active
    /// admin key. The CLI (`any_account`) may still revoke it: it is the way back in.
    async fn revoke_key(&self, ctx: &ChangeContext, key_id: &str, any_account: bool) -> StoreResult<ApiKeyInfo>;

    /// Checks a presented key in constant time against the stored hash.
    async fn authenticate(&self, presented: &str) -> StoreResult<AuthOutcome>;

    async fn list_integrations(&self, account: AccountId) -> StoreResult<Vec<Integration>>;

    async fn get_integration(&self, account: AccountId, id: IntegrationId) -> StoreResult<Option<Integration>>;

    /// What upload validation needs of the account's integrations, without the identity
    /// counts that `list_integrations` pays for.
    async fn integration_infos(&self, account: AccountId) -> StoreResult<Vec<IntegrationInfo>>;

    /// `Conflict` when the id is taken.
    async fn create_integration(&self, ctx: &ChangeContext, new: NewIntegration) -> StoreResult<Integration>;

    async fn update_integration(
        &self,
        ctx: &ChangeContext,
        id: IntegrationId,
        patch: IntegrationPatch,
    ) -> StoreResult<Option<Integration>>;

    async fn delete_integration(
        &self,
        ctx: &ChangeContext,
        id: IntegrationId,
        force: bool,
    ) -> StoreResult<DeleteIntegrationOutcome>;

    /// Applies a validated upload in one transaction; with `dry_run` computes the same
    /// summary and rolls back.
    async fn apply_upload(&self, ctx: &ChangeContext, plan: UploadPlan, dry_run: bool) -> StoreResult<UploadSummary>;

    async fn delete_identities(
        &self,
        ctx: &ChangeContext,
        plan: DeletePlan,
        dry_run: bool,
    ) -> StoreResult<DeleteSummary>;

    async fn list_identities(&self, account: AccountId, query: IdentityQuery) -> StoreResult<IdentityPage>;

    /// The page `query` selects (same filters, order and paging as `list_identities`,
    /// never a total), each row passed through `encode` into one buffer: a whole export
    /// is a loop over batches, following `next_cursor`, that allocates nothing per row.
    async fn export_batch(
        &self,
        account: AccountId,
        query: IdentityQuery,
        encode: ExportEncoder,
    ) -> StoreResult<ExportBatch>;

    /// A number that changes whenever the account's identities change (in any process
    /// sharing the database): what is derived from them may be cached until it moves.
    async fn identities_version(&self, account: AccountId) -> StoreResult<i64>;

    async fn list_audit(&self, account: AccountId, query: AuditQuery) -> StoreResult<AuditPage>;

    /// Leaves the database as a clean stop should: on SQLite every committed write is
    /// copied from the WAL into the main file and the WAL emptied, so the one file holds
    /// everything. Call it once, after the last request; the store may still be used,
    /// but nothing after it is flushed. Never fails: what it cannot do it logs.
    async fn close(&self) {}

    /// The database's secret called `name`: 32 random bytes created on the first call
    /// and the same afterwards for every process that opens the database (replicas
    /// sign cursors one of them can check). `Unavailable` on database trouble.
    async fn ensure_secret(&self, name: &str) -> StoreResult<Vec<u8>>;
}

/// Length of the secrets [`Store::ensure_secret`] creates.
pub const SECRET_BYTES: usize = 32;

/// A fresh secret from the OS random source.
pub(crate) fn new_database_secret() -> Vec<u8> {
    use rand::RngCore;
    let mut secret = vec![0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    secret
}

/// Records when each key was last used, but writes it at most once a minute per key:
/// a busy sync job must not turn every read into a write.
#[derive(Debug, Default)]
pub struct LastUsedThrottle {
    written: Mutex<HashMap<String, Instant>>,
}

impl LastUsedThrottle {
    pub const INTERVAL: Duration = Duration::from_secs(60);

    /// True when the caller should write `last_used_at` now.
    pub fn should_write(&self, key_id: &str) -> bool {
        let now = Instant::now();
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        match written.get(key_id) {
            Some(at) if now.duration_since(*at) < Self::INTERVAL => false,
            _ => {
                written.insert(key_id.to_string(), now);
                true
            }
        }
    }
}

pub fn now_micros() -> Micros {
    devid_core::time::micros_from(time::OffsetDateTime::now_utc())
}

/// An integration's type may change only where that keeps how its identities compare:
/// otherwise stored identity keys would no longer match what uploads compute.
pub(crate) fn check_type_change(before: &Integration, new: Option<ApplicationType>) -> StoreResult<()> {
    match new {
        Some(t)
            if t.identity_is_case_insensitive() != before.application_type.identity_is_case_insensitive()
                && before.identity_count > 0 =>
        {
            Err(StoreError::Conflict(format!(
                "integration {} holds {} identities compared {}; changing its type to {t} would change how they are matched. Create a new integration instead.",
                before.id,
                before.identity_count,
                if before.application_type.identity_is_case_insensitive() { "case-insensitively" } else { "exactly" },
            )))
        }
        _ => Ok(()),
    }
}

/// The refusal to revoke an account's last active admin key over the API.
pub(crate) fn last_admin_key_conflict(key_id: &str) -> StoreError {
    StoreError::Conflict(format!(
        "Key {key_id} is this account's last active admin key; revoking it would leave nobody able to manage the account. Create another admin key first (POST /v2/api-keys with \"scopes\": [\"admin\"]), then revoke this one with it."
    ))
}

pub fn default_integration_name(t: ApplicationType) -> String {
    format!("{t} (default)")
}

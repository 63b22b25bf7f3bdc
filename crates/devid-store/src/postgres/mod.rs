//! The PostgreSQL backend, for several stateless devid replicas sharing one database.
//! Writes to one account are serialised by a transaction-scoped advisory lock on the
//! account, so concurrent uploads from any replica apply in some serial order and never
//! deadlock; uploads stage their rows with binary COPY and apply them with a handful of
//! set-based statements, never a round trip per row.

mod changes;
mod contributors;

use changes::close_change_set;
use devid_core::change::ChangeKind;
mod locks;
mod matching;
mod migrations;
mod secrets;
mod sessions;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime};
use devid_core::apikey::{format_key, parse_key};
use devid_core::plan::{DeletePlan, IntegrationInfo, IntegrationRef, UploadPlan};
use devid_core::time::{Micros, to_rfc3339};
use devid_core::types::{
    ApplicationType, IntegrationId, MAX_INTEGRATION_ID, Scope, scopes_from_string, scopes_to_string,
};
use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{NoTls, Row};

use crate::keys::{hash_secret, new_key_id, new_secret, secret_matches};
use crate::query::{AuditQuery, IdentityQuery};
use crate::sql::{self, Arg, Dialect};
use crate::{
    Account, AccountId, ApiKeyInfo, AuditEvent, AuditPage, AuthOutcome, ChangeContext, CreatedKey,
    DeleteIntegrationOutcome, DeleteSummary, ExportBatch, ExportEncoder, ExportRow, IdentityPage, IdentityRecord,
    Integration, IntegrationPatch, LastUsedThrottle, LockedMove, MAX_LOCKED_SAMPLES, NewIntegration, NewKey, Principal,
    Store, StoreError, StoreResult, UploadSummary, default_integration_name, now_micros,
};

use migrations::LOCK_CLASS;

/// Attempts for a transaction that failed on a serialization failure or deadlock.
const MAX_ATTEMPTS: u32 = 4;
const POOL_SIZE: usize = 16;
/// Rows an upload must create or move before the table's statistics are refreshed.
const ANALYZE_AFTER_ROWS: u64 = 50_000;

pub struct PostgresStore {
    pool: Pool,
    throttle: Arc<LastUsedThrottle>,
    groups: Arc<UploadGroups>,
}

/// Small uploads waiting to be applied; whoever holds `leader` next applies them all in
/// one transaction.
#[derive(Default)]
struct UploadGroups {
    queued: std::sync::Mutex<Vec<QueuedUpload>>,
    leader: tokio::sync::Mutex<()>,
}

struct QueuedUpload {
    ctx: ChangeContext,
    plan: UploadPlan,
    answer: tokio::sync::oneshot::Sender<StoreResult<UploadSummary>>,
}

/// Uploads up to this many rows share transactions (group commit); larger ones, and
/// dry runs, get one of their own.
const GROUP_COMMIT_MAX_ROWS: usize = 1_000;

enum PgError {
    Db(tokio_postgres::Error),
    Pool(String),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        PgError::Db(e)
    }
}

impl From<PoolError> for PgError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Backend(e) => PgError::Db(e),
            other => PgError::Pool(other.to_string()),
        }
    }
}

impl From<StoreError> for PgError {
    fn from(e: StoreError) -> Self {
        PgError::Store(e)
    }
}

impl PgError {
    fn is_transient(&self) -> bool {
        matches!(self, PgError::Db(e) if matches!(e.code(), Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED))
    }

    fn into_store(self) -> StoreError {
        match self {
            PgError::Store(e) => e,
            PgError::Pool(m) => StoreError::Unavailable(format!("no PostgreSQL connection: {m}")),
            PgError::Db(e) => match e.code() {
                Some(c) if *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::FOREIGN_KEY_VIOLATION => {
                    StoreError::Conflict(e.to_string())
                }
                Some(c) if c.code().starts_with("08") || c.code().starts_with("57P") || c.code().starts_with("53") => {
                    StoreError::Unavailable(e.to_string())
                }
                Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED => {
                    StoreError::Unavailable("the database stayed busy; retry shortly".into())
                }
                Some(_) => StoreError::Internal(e.to_string()),
                // No SQLSTATE: the connection broke (I/O, closed, timed out).
                None => StoreError::Unavailable(e.to_string()),
            },
        }
    }
}

type PgResult<T> = Result<T, PgError>;

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db`, with any libpq-style options)
    /// and brings the schema up to date.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| StoreError::Invalid(format!("the PostgreSQL URL is not valid: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.application_name("devid");
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| StoreError::Internal(format!("cannot build the connection pool: {e}")))?;
        let store = Self { pool, throttle: Arc::new(LastUsedThrottle::default()), groups: Arc::default() };
        store.migrate().await?;
        Ok(store)
    }

    /// Re-runs migrations; returns how many were applied.
    pub async fn migrate(&self) -> StoreResult<usize> {
        let mut client = self.client().await.map_err(PgError::into_store)?;
        migrations::run(&mut client).await.map_err(|e| PgError::Db(e).into_store())
    }

    async fn client(&self) -> PgResult<Object> {
        Ok(self.pool.get().await?)
    }

    /// Runs `op` again after a serialization failure or deadlock, a few times, with a
    /// short growing pause; other errors return at once.
    async fn retrying<T, F, Fut>(&self, mut op: F) -> StoreResult<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = PgResult<T>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(attempt, "transaction retried after a serialization failure");
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                }
                Err(e) => return Err(e.into_store()),
            }
        }
    }
}

async fn lock_account(tx: &impl GenericClient, account: AccountId) -> PgResult<()> {
    let id = i32::try_from(account.0).map_err(|_| StoreError::Internal("account id out of range".into()))?;
    tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&LOCK_CLASS, &id]).await?;
    Ok(())
}

async fn bump_version(tx: &impl GenericClient, account: AccountId) -> PgResult<()> {
    tx.execute("UPDATE accounts SET identities_version = identities_version + 1 WHERE id = $1", &[&account.0]).await?;
    Ok(())
}

fn parse_type(s: &str) -> PgResult<ApplicationType> {
    s.parse().map_err(|_| PgError::Store(StoreError::Internal(format!("stored application type `{s}` is unknown"))))
}

/// An identity row's state before a move or a delete (the row aliased `old`), as an audit
/// event's detail: what a revert puts back. See the SQLite store's `BEFORE_STATE`.
const BEFORE_STATE: &str = "json_build_object('before', json_build_object('createdAt', old.created_at,
    'updatedAt', old.updated_at, 'source', old.source, 'sourceKeyId', old.source_key_id, 'locked', old.locked,
    'identity', old.identity))::TEXT";

/// One audit event; fields that do not apply stay `None`.
#[derive(Default)]
struct Audit<'a> {
    action: &'a str,
    integration_id: Option<IntegrationId>,
    identity: Option<&'a str>,
    old_email: Option<&'a str>,
    new_email: Option<&'a str>,
    detail: Option<&'a str>,
}

async fn insert_audit(tx: &impl GenericClient, ctx: &ChangeContext, at: Micros, e: Audit<'_>) -> PgResult<()> {
    tx.execute(
        "INSERT INTO audit_events (account_id, at, action, key_id, request_id, integration_id, identity, old_email, new_email, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[&ctx.account.0, &at, &e.action, &ctx.key_id, &ctx.request_id, &e.integration_id, &e.identity, &e.old_email, &e.new_email, &e.detail],
    )
    .await?;
    Ok(())
}

/// An audit event read in the order of [`sql::AUDIT_COLUMNS`].
fn audit_event_from_row(r: &Row) -> PgResult<AuditEvent> {
    Ok(AuditEvent {
        id: r.try_get(0)?,
        at: to_rfc3339(r.try_get(1)?),
        action: r.try_get(2)?,
        key_id: r.try_get(3)?,
        request_id: r.try_get(4)?,
        integration_id: r.try_get(5)?,
        identity: r.try_get(6)?,
        old_email: r.try_get(7)?,
        new_email: r.try_get(8)?,
        detail: r.try_get(9)?,
    })
}

async fn account_name(tx: &impl GenericClient, account: AccountId) -> PgResult<String> {
    match tx.query_opt("SELECT name FROM accounts WHERE id = $1", &[&account.0]).await? {
        Some(row) => Ok(row.try_get(0)?),
        None => Err(StoreError::NotFound(format!("account {} does not exist", account.0)).into()),
    }
}

const KEY_COLUMNS: &str = "k.id, a.name, k.scopes, k.label, k.created_at, k.last_used_at, k.expires_at, k.revoked_at FROM api_keys k JOIN accounts a ON a.id = k.account_id";

fn key_info(row: &Row) -> PgResult<ApiKeyInfo> {
    let scopes: String = row.try_get(2)?;
    Ok(ApiKeyInfo {
        id: row.try_get(0)?,
        account: row.try_get(1)?,
        scopes: scopes_from_string(&scopes).map_err(|e| StoreError::Internal(e.to_string()))?,
        label: row.try_get(3)?,
        created_at: to_rfc3339(row.try_get(4)?),
        last_used_at: row.try_get::<_, Option<i64>>(5)?.map(to_rfc3339),
        expires_at: row.try_get::<_, Option<i64>>(6)?.map(to_rfc3339),
        revoked: row.try_get::<_, Option<i64>>(7)?.is_some(),
    })
}

async fn create_key_in(tx: &impl GenericClient, ctx: &ChangeContext, new: &NewKey) -> PgResult<CreatedKey> {
    let name = account_name(tx, ctx.account).await?;
    let key_id = new_key_id();
    let secret = new_secret();
    let now = now_micros();
    tx.execute(
        "INSERT INTO api_keys (id, account_id, secret_hash, scopes, label, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&key_id, &ctx.account.0, &hash_secret(&secret), &scopes_to_string(&new.scopes), &new.label, &now, &new.expires_at],
    )
    .await?;
    let detail = serde_json::json!({"keyId": key_id, "scopes": new.scopes, "label": new.label}).to_string();
    insert_audit(tx, ctx, now, Audit { action: "key.created", detail: Some(&detail), ..Default::default() }).await?;
    Ok(CreatedKey {
        key: format_key(&name, &key_id, &secret),
        info: ApiKeyInfo {
            id: key_id,
            account: name,
            scopes: new.scopes.clone(),
            label: new.label.clone(),
            created_at: to_rfc3339(now),
            last_used_at: None,
            expires_at: new.expires_at.map(to_rfc3339),
            revoked: false,
        },
    })
}

async fn ensure_account_in(tx: &impl GenericClient, name: &str) -> PgResult<Account> {
    devid_core::types::validate_account_name(name).map_err(StoreError::Invalid)?;
    tx.execute(
        "INSERT INTO accounts (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        &[&name, &now_micros()],
    )
    .await?;
    let id: i64 = tx.query_one("SELECT id FROM accounts WHERE name = $1", &[&name]).await?.try_get(0)?;
    Ok(Account { id: AccountId(id), name: name.to_string() })
}

const INTEGRATION_COLUMNS: &str = "i.id, i.application_type, i.name, i.created_at, i.updated_at,
    (SELECT COUNT(*) FROM identities d WHERE d.account_id = i.account_id AND d.integration_id = i.id)
    FROM integrations i";

fn integration(row: &Row) -> PgResult<Integration> {
    let t: String = row.try_get(1)?;
    Ok(Integration {
        id: row.try_get(0)?,
        application_type: parse_type(&t)?,
        name: row.try_get(2)?,
        created_at: to_rfc3339(row.try_get(3)?),
        updated_at: to_rfc3339(row.try_get(4)?),
        identity_count: row.try_get::<_, i64>(5)?.max(0) as u64,
    })
}

async fn get_integration_in(
    tx: &impl GenericClient,
    account: AccountId,
    id: IntegrationId,
) -> PgResult<Option<Integration>> {
    let row = tx
        .query_opt(&format!("SELECT {INTEGRATION_COLUMNS} WHERE i.account_id = $1 AND i.id = $2"), &[&account.0, &id])
        .await?;
    row.as_ref().map(integration).transpose()
}

async fn insert_integration(
    tx: &impl GenericClient,
    ctx: &ChangeContext,
    id: Option<IntegrationId>,
    application_type: ApplicationType,
    name: &str,
    now: Micros,
) -> PgResult<Integration> {
    let id = match id {
        Some(id) => {
            let taken: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM integrations WHERE account_id = $1 AND id = $2)",
                    &[&ctx.account.0, &id],
                )
                .await?
                .try_get(0)?;
            if taken {
                return Err(StoreError::Conflict(format!(
                    "integration {id} already exists; choose another id or leave it out to get the next free one"
                ))
                .into());
            }
            id
        }
        None => {
            let next: i64 = tx
                .query_one("SELECT COALESCE(MAX(id), 0) + 1 FROM integrations WHERE account_id = $1", &[&ctx.account.0])
                .await?
                .try_get(0)?;
            if next <= MAX_INTEGRATION_ID {
                next
            } else {
                // Someone chose the largest id: take the first gap instead of passing 2^53 - 1.
                tx.query_one(
                    "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM integrations WHERE account_id = $1 AND id = 1) THEN 1
                     ELSE (SELECT MIN(i.id) + 1 FROM integrations i WHERE i.account_id = $1
                           AND NOT EXISTS (SELECT 1 FROM integrations j WHERE j.account_id = i.account_id AND j.id = i.id + 1)) END",
                    &[&ctx.account.0],
                )
                .await?
                .try_get(0)?
            }
        }
    };
    tx.execute(
        "INSERT INTO integrations (account_id, id, application_type, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
        &[&ctx.account.0, &id, &application_type.as_str(), &name, &now],
    )
    .await?;
    contributors::integrations_changed_in(tx, ctx.account).await?;
    let detail = serde_json::json!({"applicationType": application_type, "name": name}).to_string();
    insert_audit(
        tx,
        ctx,
        now,
        Audit { action: "integration.created", integration_id: Some(id), detail: Some(&detail), ..Default::default() },
    )
    .await?;
    Ok(Integration {
        id,
        application_type,
        name: name.to_string(),
        created_at: to_rfc3339(now),
        updated_at: to_rfc3339(now),
        identity_count: 0,
    })
}

fn params(args: &[Arg]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    args.iter()
        .map(|a| -> Box<dyn ToSql + Sync + Send> {
            match a {
                Arg::Int(i) => Box::new(*i),
                Arg::Text(t) => Box::new(t.clone()),
            }
        })
        .collect()
}

fn refs(boxed: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    boxed.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)).collect()
}

/// The rows of an upload, resolved to integration ids, streamed into a temporary table.
async fn apply_group(pool: &Pool, mut group: Vec<QueuedUpload>) {
    // Account locks taken in one order everywhere: two replicas' groups that touch the
    // same accounts wait for each other instead of deadlocking.
    group.sort_by_key(|upload| upload.ctx.account.0);
    let mut attempt = 0;
    let failure = loop {
        attempt += 1;
        match apply_group_once(pool, &group).await {
            Ok(outcomes) => {
                for (upload, outcome) in group.into_iter().zip(outcomes) {
                    let _ = upload.answer.send(outcome);
                }
                return;
            }
            Err(e) if e.is_transient() && attempt < MAX_ATTEMPTS => {
                tracing::debug!(attempt, "upload group retried after a serialization failure");
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
            }
            Err(e) => break e.into_store(),
        }
    };
    for upload in group {
        let _ = upload.answer.send(Err(failure.clone()));
    }
}

async fn apply_group_once(pool: &Pool, group: &[QueuedUpload]) -> PgResult<Vec<StoreResult<UploadSummary>>> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let mut outcomes = Vec::with_capacity(group.len());
    for upload in group {
        tx.batch_execute("SAVEPOINT upload").await?;
        match apply_upload_in(&tx, &upload.ctx, &upload.plan).await {
            Ok(summary) => {
                tx.batch_execute("RELEASE SAVEPOINT upload").await?;
                outcomes.push(Ok(summary));
            }
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                tx.batch_execute("ROLLBACK TO SAVEPOINT upload; RELEASE SAVEPOINT upload").await?;
                outcomes.push(Err(e.into_store()));
            }
        }
    }
    tx.commit().await?;
    Ok(outcomes)
}

async fn stage_rows(
    tx: &Transaction<'_>,
    plan: &UploadPlan,
    new_ids: &[(ApplicationType, IntegrationId)],
) -> PgResult<()> {
    // Created once per connection and emptied by every commit or rollback: creating and
    // dropping a table per upload would churn the catalog on every small request. The
    // DELETE empties it of the previous upload when several share a transaction.
    tx.batch_execute(
        "CREATE TEMP TABLE IF NOT EXISTS upload_rows (ord BIGINT, email TEXT COLLATE \"C\", integration_id BIGINT, identity_key TEXT COLLATE \"C\", identity TEXT) ON COMMIT DELETE ROWS;
         DELETE FROM upload_rows",
    )
    .await?;
    let sink =
        tx.copy_in("COPY upload_rows (ord, email, integration_id, identity_key, identity) FROM STDIN BINARY").await?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::TEXT, Type::INT8, Type::TEXT, Type::TEXT]);
    pin_mut!(writer);
    for (ord, row) in plan.rows.iter().enumerate() {
        let ord = ord as i64;
        let integration_id = match row.integration {
            IntegrationRef::Existing(id) => id,
            IntegrationRef::New(t) => new_ids
                .iter()
                .find(|(nt, _)| *nt == t)
                .map(|(_, id)| *id)
                .ok_or_else(|| StoreError::Internal(format!("no integration was made for {t}")))?,
        };
        let (email, key, identity): (&str, &str, &str) = (&row.email, row.key(), &row.identity);
        writer.as_mut().write(&[&ord, &email, &integration_id, &key, &identity]).await?;
    }
    writer.finish().await?;
    // Always, however few the rows: without statistics the planner guesses a table of
    // thousands and joins a million identities by hash for a 10-row upload (30 ms and
    // more each, measured; with them, the indexes).
    tx.batch_execute("ANALYZE upload_rows").await?;
    Ok(())
}

const UPLOAD_SOURCE: &str = "WITH src AS (
    SELECT u.ord, u.email, u.integration_id, u.identity_key, u.identity, d.id AS developer_id
    FROM upload_rows u JOIN developers d ON d.account_id = $1 AND d.email = u.email)";

/// Fails with the locked identities the staged rows would move to another developer.
async fn refuse_locked_moves(tx: &Transaction<'_>, account: AccountId) -> PgResult<()> {
    let rows = tx
        .query(
            &format!(
                "{UPLOAD_SOURCE}
                 SELECT i.integration_id, i.identity, i.email, src.email, COUNT(*) OVER ()
                 FROM src JOIN identities i
                   ON i.account_id = $1 AND i.integration_id = src.integration_id AND i.identity_key = src.identity_key
                 WHERE i.locked <> 0 AND i.developer_id <> src.developer_id
                 ORDER BY src.ord LIMIT {MAX_LOCKED_SAMPLES}"
            ),
            &[&account.0],
        )
        .await?;
    let Some(first) = rows.first() else { return Ok(()) };
    let total: i64 = first.try_get(4)?;
    let mut moves = Vec::with_capacity(rows.len());
    for r in &rows {
        moves.push(LockedMove {
            integration_id: r.try_get(0)?,
            identity: r.try_get(1)?,
            locked_to: r.try_get(2)?,
            requested: r.try_get(3)?,
        });
    }
    Err(StoreError::Locked { total: total.max(0) as u64, rows: moves }.into())
}

/// An upload's rows, then its change set: the one place both upload paths (grouped and
/// alone) record it.
async fn apply_upload_in(tx: &Transaction<'_>, ctx: &ChangeContext, plan: &UploadPlan) -> PgResult<UploadSummary> {
    let summary = apply_upload_rows(tx, ctx, plan).await?;
    close_change_set(tx, ctx, crate::changes::upload_change_kind(plan)).await?;
    Ok(summary)
}

async fn apply_upload_rows(tx: &Transaction<'_>, ctx: &ChangeContext, plan: &UploadPlan) -> PgResult<UploadSummary> {
    lock_account(tx, ctx.account).await?;
    let now = now_micros();
    let mut summary = UploadSummary { received: plan.received, duplicates: plan.duplicates, ..Default::default() };

    let mut new_ids = Vec::new();
    for t in &plan.new_integrations {
        let existing: Option<i64> = tx
            .query_one(
                "SELECT MIN(id) FROM integrations WHERE account_id = $1 AND application_type = $2",
                &[&ctx.account.0, &t.as_str()],
            )
            .await?
            .try_get(0)?;
        let id = match existing {
            Some(id) => id,
            None => {
                let created = insert_integration(tx, ctx, None, *t, &default_integration_name(*t), now).await?;
                let id = created.id;
                summary.integrations_created.push(created);
                id
            }
        };
        new_ids.push((*t, id));
    }
    stage_rows(tx, plan, &new_ids).await?;

    let developers_created: i64 = tx
        .query_one(
            "WITH new AS (
                INSERT INTO developers (account_id, email, created_at, updated_at)
                SELECT DISTINCT $1::BIGINT, email, $2::BIGINT, $2::BIGINT FROM upload_rows
                ON CONFLICT (account_id, email) DO NOTHING RETURNING 1)
             SELECT COUNT(*) FROM new",
            &[&ctx.account.0, &now],
        )
        .await?
        .try_get(0)?;
    let audit_args: [&(dyn ToSql + Sync); 4] = [&ctx.account.0, &now, &ctx.key_id, &ctx.request_id];
    if !plan.force {
        refuse_locked_moves(tx, ctx.account).await?;
    }
    let (source, lock) = (plan.provenance.as_str(), i32::from(plan.lock));
    let write_args: [&(dyn ToSql + Sync); 6] = [&ctx.account.0, &now, &ctx.key_id, &ctx.request_id, &source, &lock];

    // `old` is the row as it was before this statement: PostgreSQL evaluates a self-join
    // in UPDATE ... FROM against the pre-update snapshot.
    let reassigned: i64 = tx
        .query_one(
            &format!(
                "{UPLOAD_SOURCE},
                 upd AS (
                    UPDATE identities i SET developer_id = src.developer_id, email = src.email, identity = src.identity, updated_at = $2,
                                            source = $5, source_key_id = $3, locked = $6
                    FROM src, identities old
                    WHERE old.id = i.id AND i.account_id = $1 AND i.integration_id = src.integration_id
                      AND i.identity_key = src.identity_key AND i.developer_id <> src.developer_id
                    RETURNING src.ord, i.integration_id, src.identity, old.email AS old_email, src.email AS new_email,
                              {BEFORE_STATE} AS before),
                 aud AS (
                    INSERT INTO audit_events (account_id, at, action, key_id, request_id, integration_id, identity, old_email, new_email, detail)
                    SELECT $1, $2, 'identity.reassigned', $3, $4, integration_id, identity, old_email, new_email, before
                    FROM upd ORDER BY ord RETURNING 1)
                 SELECT COUNT(*) FROM upd"
            ),
            &write_args,
        )
        .await?
        .try_get(0)?;
    tx.query_one(
        &format!(
            "{UPLOAD_SOURCE},
             upd AS (
                UPDATE identities i SET identity = src.identity, updated_at = $2
                FROM src, identities old
                WHERE old.id = i.id AND i.account_id = $1 AND i.integration_id = src.integration_id
                  AND i.identity_key = src.identity_key AND i.developer_id = src.developer_id AND i.identity <> src.identity
                RETURNING src.ord, i.integration_id, src.identity, src.email, old.identity AS before),
             aud AS (
                INSERT INTO audit_events (account_id, at, action, key_id, request_id, integration_id, identity, old_email, new_email, detail)
                SELECT $1, $2, 'identity.updated', $3, $4, integration_id, identity, email, email, json_build_object('before', before)::TEXT
                FROM upd ORDER BY ord RETURNING 1)
             SELECT COUNT(*) FROM upd"
        ),
        &audit_args,
    )
    .await?;
    let created: i64 = tx
        .query_one(
            &format!(
                "{UPLOAD_SOURCE},
                 ins AS (
                    INSERT INTO identities (account_id, integration_id, identity_key, identity, developer_id, email, created_at, updated_at,
                                            source, source_key_id, locked)
                    SELECT $1, integration_id, identity_key, identity, developer_id, email, $2, $2, $5, $3, $6 FROM src ORDER BY ord
                    ON CONFLICT (account_id, integration_id, identity_key) DO NOTHING
                    RETURNING integration_id, identity_key, identity, email),
                 aud AS (
                    INSERT INTO audit_events (account_id, at, action, key_id, request_id, integration_id, identity, new_email)
                    SELECT $1, $2, 'identity.created', $3, $4, ins.integration_id, ins.identity, ins.email
                    FROM ins JOIN upload_rows u ON u.integration_id = ins.integration_id AND u.identity_key = ins.identity_key
                    ORDER BY u.ord RETURNING 1)
                 SELECT COUNT(*) FROM ins"
            ),
            &write_args,
        )
        .await?
        .try_get(0)?;
    bump_version(tx, ctx.account).await?;
    summary.developers_created = developers_created.max(0) as u64;
    summary.reassigned = reassigned.max(0) as u64;
    summary.created = created.max(0) as u64;
    summary.unchanged = (plan.rows.len() as u64).saturating_sub(summary.created + summary.reassigned);
    Ok(summary)
}

impl PostgresStore {
    async fn apply_upload_once(
        &self,
        ctx: &ChangeContext,
        plan: &UploadPlan,
        dry_run: bool,
    ) -> PgResult<UploadSummary> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let summary = apply_upload_in(&tx, ctx, plan).await?;
        if dry_run {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(summary)
    }

    /// Group commit. Each small upload joins a queue; the task that next becomes the
    /// leader applies everything queued in one transaction, each upload inside a
    /// savepoint, and commits once. Waiting happens here, not on the account lock
    /// inside PostgreSQL: otherwise concurrent uploads hold pooled connections while
    /// they queue on that lock, and reads starve for connections. An upload that fails
    /// rolls back to its savepoint alone; a serialization failure or a deadlock runs
    /// the whole group again; any other failure of the transaction reaches every upload
    /// in it, none of which is applied.
    async fn apply_upload_in_group(&self, ctx: ChangeContext, plan: UploadPlan) -> StoreResult<UploadSummary> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.groups.queued.lock().unwrap_or_else(|e| e.into_inner()).push(QueuedUpload { ctx, plan, answer });
        let (pool, groups) = (self.pool.clone(), Arc::clone(&self.groups));
        // A task of its own: a client that hangs up must not cancel a group that
        // carries other clients' uploads.
        tokio::spawn(async move {
            let _leader = groups.leader.lock().await;
            let group = std::mem::take(&mut *groups.queued.lock().unwrap_or_else(|e| e.into_inner()));
            if !group.is_empty() {
                apply_group(&pool, group).await;
            }
        });
        answered.await.map_err(|_| StoreError::Internal("the upload's group ended without an answer".into()))?
    }

    async fn delete_identities_once(
        &self,
        ctx: &ChangeContext,
        plan: &DeletePlan,
        dry_run: bool,
    ) -> PgResult<DeleteSummary> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_account(&tx, ctx.account).await?;
        let now = now_micros();
        let ids: Vec<i64> = plan.rows.iter().map(|r| r.integration_id).collect();
        let keys: Vec<&str> = plan.rows.iter().map(|r| r.key()).collect();
        let deleted: i64 = tx
            .query_one(
                &format!(
                    "WITH del AS (
                        DELETE FROM identities old USING UNNEST($5::BIGINT[], $6::TEXT[]) AS r(integration_id, identity_key)
                        WHERE old.account_id = $1 AND old.integration_id = r.integration_id AND old.identity_key = r.identity_key
                        RETURNING old.integration_id, old.identity, old.email, {BEFORE_STATE} AS before),
                     aud AS (
                        INSERT INTO audit_events (account_id, at, action, key_id, request_id, integration_id, identity, old_email, detail)
                        SELECT $1, $2, 'identity.deleted', $3, $4, integration_id, identity, email, before FROM del RETURNING 1)
                     SELECT COUNT(*) FROM del"
                ),
                &[&ctx.account.0, &now, &ctx.key_id, &ctx.request_id, &ids, &keys],
            )
            .await?
            .try_get(0)?;
        bump_version(&tx, ctx.account).await?;
        if dry_run {
            tx.rollback().await?;
        } else {
            close_change_set(&tx, ctx, ChangeKind::Delete).await?;
            tx.commit().await?;
        }
        let deleted = deleted.max(0) as u64;
        Ok(DeleteSummary {
            received: plan.received,
            duplicates: plan.duplicates,
            deleted,
            not_found: (plan.rows.len() as u64).saturating_sub(deleted),
        })
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> StoreResult<()> {
        async {
            let client = self.client().await?;
            client.query_one("SELECT 1", &[]).await?;
            Ok(())
        }
        .await
        .map_err(PgError::into_store)
    }

    async fn bootstrap(&self) -> StoreResult<Option<CreatedKey>> {
        self.retrying(|| async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            // Replicas starting together: one creates the account, the others see it.
            tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&LOCK_CLASS, &migrations::MIGRATION_LOCK]).await?;
            let accounts: i64 = tx.query_one("SELECT COUNT(*) FROM accounts", &[]).await?.try_get(0)?;
            if accounts > 0 {
                tx.rollback().await?;
                return Ok(None);
            }
            let account = ensure_account_in(&tx, "default").await?;
            let ctx = ChangeContext { account: account.id, key_id: None, request_id: None };
            let key = create_key_in(
                &tx,
                &ctx,
                &NewKey { scopes: vec![Scope::Admin], label: "bootstrap admin key".into(), expires_at: None },
            )
            .await?;
            close_change_set(&tx, &ctx, ChangeKind::Key).await?;
            tx.commit().await?;
            Ok(Some(key))
        })
        .await
    }

    async fn account_by_name(&self, name: &str) -> StoreResult<Option<Account>> {
        async {
            let client = self.client().await?;
            let row = client.query_opt("SELECT id FROM accounts WHERE name = $1", &[&name]).await?;
            Ok(match row {
                Some(row) => Some(Account { id: AccountId(row.try_get(0)?), name: name.to_string() }),
                None => None,
            })
        }
        .await
        .map_err(PgError::into_store)
    }

    async fn ensure_account(&self, name: &str) -> StoreResult<Account> {
        self.retrying(|| async {
            let client = self.client().await?;
            ensure_account_in(&client, name).await
        })
        .await
    }

    async fn create_key(&self, ctx: &ChangeContext, new: NewKey) -> StoreResult<CreatedKey> {
        self.retrying(|| async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let key = create_key_in(&tx, ctx, &new).await?;
            close_change_set(&tx, ctx, ChangeKind::Key).await?;
            tx.commit().await?;
            Ok(key)
        })
        .await
    }

    async fn list_keys(&self, account: Option<AccountId>) -> StoreResult<Vec<ApiKeyInfo>> {
        async {
            let client = self.client().await?;
            let rows = client
                .query(
                    &format!("SELECT {KEY_COLUMNS} WHERE ($1::BIGINT IS NULL OR k.account_id = $1) ORDER BY a.name, k.created_at, k.id"),
                    &[&account.map(|a| a.0)],
                )
                .await?;
            rows.iter().map(key_info).collect::<PgResult<Vec<_>>>()
        }
        .await
        .map_err(PgError::into_store)
    }

    async fn revoke_key(&self, ctx: &ChangeContext, key_id: &str, any_account: bool) -> StoreResult<ApiKeyInfo> {
        self.retrying(|| async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let owner = tx
                .query_opt("SELECT account_id, revoked_at FROM api_keys WHERE id = $1 FOR UPDATE", &[&key_id])
                .await?;
            let owner = match owner {
                Some(row) => Some((row.try_get::<_, i64>(0)?, row.try_get::<_, Option<i64>>(1)?)),
                None => None,
            };
            let Some((owner, revoked_at)) = owner.filter(|(owner, _)| any_account || *owner == ctx.account.0) else {
                return Err(StoreError::NotFound(format!("there is no API key `{key_id}`")).into());
            };
            if revoked_at.is_none() {
                let now = now_micros();
                if !any_account {
                    // Two admins revoking each other's keys at once must not both pass.
                    lock_account(&tx, AccountId(owner)).await?;
                    let row = tx
                        .query_one(
                            "SELECT
                               (SELECT COUNT(*) FROM api_keys WHERE account_id = $1 AND id <> $2 AND revoked_at IS NULL
                                AND (expires_at IS NULL OR expires_at > $3) AND (',' || scopes || ',') LIKE '%,admin,%'),
                               (SELECT (',' || scopes || ',') LIKE '%,admin,%' AND (expires_at IS NULL OR expires_at > $3)
                                FROM api_keys WHERE id = $2)",
                            &[&owner, &key_id, &now],
                        )
                        .await?;
                    let (others, is_admin): (i64, bool) = (row.try_get(0)?, row.try_get(1)?);
                    if is_admin && others == 0 {
                        return Err(crate::last_admin_key_conflict(key_id).into());
                    }
                }
                tx.execute("UPDATE api_keys SET revoked_at = $1 WHERE id = $2", &[&now, &key_id]).await?;
                let owner_ctx = ChangeContext { account: AccountId(owner), ..ctx.clone() };
                let detail = serde_json::json!({"keyId": key_id}).to_string();
                insert_audit(
                    &tx,
                    &owner_ctx,
                    now,
                    Audit { action: "key.revoked", detail: Some(&detail), ..Default::default() },
                )
                .await?;
            }
            let row = tx.query_one(&format!("SELECT {KEY_COLUMNS} WHERE k.id = $1"), &[&key_id]).await?;
            let info = key_info(&row)?;
            close_change_set(&tx, ctx, ChangeKind::Key).await?;
            tx.commit().await?;
            Ok(info)
        })
        .await
    }

    async fn authenticate(&self, presented: &str) -> StoreResult<AuthOutcome> {
        let Some(parsed) = parse_key(presented) else {
            return Ok(AuthOutcome::Unknown);
        };
        let outcome = async {
            let client = self.client().await?;
            let statement = client
                .prepare_cached(
                    "SELECT k.secret_hash, k.scopes, k.expires_at, k.revoked_at, a.id, a.name
                     FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.id = $1",
                )
                .await?;
            let Some(row) = client.query_opt(&statement, &[&parsed.key_id]).await? else {
                return Ok(AuthOutcome::Unknown);
            };
            let hash: Vec<u8> = row.try_get(0)?;
            let account_name: String = row.try_get(5)?;
            if account_name != parsed.account || !secret_matches(parsed.secret, &hash) {
                return Ok(AuthOutcome::Unknown);
            }
            if row.try_get::<_, Option<i64>>(3)?.is_some() {
                return Ok(AuthOutcome::Revoked);
            }
            if row.try_get::<_, Option<i64>>(2)?.is_some_and(|e| e <= now_micros()) {
                return Ok(AuthOutcome::Expired);
            }
            let scopes: String = row.try_get(1)?;
            Ok(AuthOutcome::Valid(Principal {
                account: AccountId(row.try_get(4)?),
                account_name,
                key_id: parsed.key_id.to_string(),
                scopes: scopes_from_string(&scopes).map_err(|e| StoreError::Internal(e.to_string()))?,
            }))
        }
        .await
        .map_err(PgError::into_store)?;
        if let AuthOutcome::Valid(p) = &outcome
            && self.throttle.should_write(&p.key_id)
        {
            let pool = self.pool.clone();
            let key_id = p.key_id.clone();
            tokio::spawn(async move {
                let result = async {
                    let client = pool.get().await?;
                    client
                        .execute("UPDATE api_keys SET last_used_at = $1 WHERE id = $2", &[&now_micros(), &key_id])
                        .await?;
                    Ok::<_, PgError>(())
                }
                .await;
                if let Err(e) = result {
                    tracing::warn!(error = %e.into_store(), "could not record when the key was last used");
                }
            });
        }
        Ok(outcome)
    }

    async fn list_integrations(&self, account: AccountId) -> StoreResult<Vec<Integration>> {
        async {
            let client = self.client().await?;
            let rows = client
                .query(&format!("SELECT {INTEGRATION_COLUMNS} WHERE i.account_id = $1 ORDER BY i.id"), &[&account.0])
                .await?;
            rows.iter().map(integration).collect::<PgResult<Vec<_>>>()
        }
        .await
        .map_err(PgError::into_store)
    }

    async fn get_integration(&self, account: AccountId, id: IntegrationId) -> StoreResult<Option<Integration>> {
        async {
            let client = self.client().await?;
            get_integration_in(&client, account, id).await
        }
        .await
        .map_err(PgError::into_store)
    }

    async fn integration_infos(&self, account: AccountId) -> StoreResult<Vec<IntegrationInfo>> {
        async {
            let client = self.client().await?;
            let rows = client
                .query("SELECT id, application_type FROM integrations WHERE account_id = $1 ORDER BY id", &[&account.0])
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(IntegrationInfo {
                        id: r.try_get(0)?,
                        application_type: parse_type(&r.try_get::<_, String>(1)?)?,
                    })
                })
                .collect::<PgResult<Vec<_>>>()
        }
        .await
        .map_err(PgError::into_store)
    }

    async fn create_integration(&self, ctx: &ChangeContext, new: NewIntegration) -> StoreResult<Integration> {
        self.retrying(|| async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            lock_account(&tx, ctx.account).await?;
            let created = insert_integration(&tx, ctx, new.id, new.application_type, &new.name, now_micros()).await?;
            close_change_set(&tx, ctx, ChangeKind::Integration).await?;
            tx.commit().await?;
            Ok(created)
        })
        .await
    }

    async fn update_integration(
        &self,
        ctx: &ChangeContext,
        id: IntegrationId,
        patch: IntegrationPatch,
    ) -> StoreResult<Option<Integration>> {
        self.retrying(|| async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            lock_account(&tx, ctx.account).await?;
            let Some(before) = get_integration_in(&tx, ctx.account, id).await? else {
                tx.rollback().await?;
                return Ok(None);
            };
            crate::check_type_change(&before, patch.application_type)?;
            let name = patch.name.clone().unwrap_or_else(|| before.name.clone());
            let application_type = patch.application_type.unwrap_or(before.application_type);
            if name == before.name && application_type == before.application_type {
                // A change that changes nothing records nothing.
                tx.rollback().await?;
                return Ok(Some(before));
            }
            let now = now_micros();
            tx.execute(
                "UPDATE integrations SET name = $1, application_type = $2, updated_at = $3 WHERE account_id = $4 AND id = $5",
                &[&name, &application_type.as_str(), &now, &ctx.account.0, &id],
            )
            .await?;
            contributors::integrations_changed_in(&tx, ctx.account).await?;
            if application_type != before.application_type {
                // Listings filter by application type: totals cached for the old type are stale.
                bump_version(&tx, ctx.account).await?;
            }
            let detail = serde_json::json!({
                "before": {"name": before.name, "applicationType": before.application_type},
                "after": {"name": name, "applicationType": application_type},
            })
            .to_string();
            insert_audit(
                &tx,
                ctx,
                now,
                Audit { action: "integration.updated", integration_id: Some(id), detail: Some(&detail), ..Default::default() },
            )
            .await?;
            let after = get_integration_in(&tx, ctx.account, id).await?;
            close_change_set(&tx, ctx, ChangeKind::Integration).await?;
            tx.commit().await?;
            Ok(after)
        })
        .await
    }

    async fn delete_integration(
        &self,
        ctx: &ChangeContext,
        id: IntegrationId,
        force: bool,
    ) -> StoreResult<DeleteIntegrationOutcome> {
        self.retrying(|| async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            lock_account(&tx, ctx.account).await?;
            let Some(before) = get_integration_in(&tx, ctx.account, id).await? else {
                tx.rollback().await?;
                return Ok(DeleteIntegrationOutcome::NotFound);
            };
            if before.identity_count > 0 && !force {
                tx.rollback().await?;
                return Ok(DeleteIntegrationOutcome::HasIdentities(before.identity_count));
            }
            let now = now_micros();
            tx.execute(
                &format!(
                    "INSERT INTO audit_events (account_id, at, action, key_id, request_id, integration_id, identity, old_email, detail)
                     SELECT account_id, $1, 'identity.deleted', $2, $3, integration_id, identity, email, {BEFORE_STATE}
                     FROM identities old WHERE account_id = $4 AND integration_id = $5"
                ),
                &[&now, &ctx.key_id, &ctx.request_id, &ctx.account.0, &id],
            )
            .await?;
            let deleted =
                tx.execute("DELETE FROM identities WHERE account_id = $1 AND integration_id = $2", &[&ctx.account.0, &id]).await?;
            contributors::delete_integration_contributors_in(&tx, ctx.account, id).await?;
            tx.execute("DELETE FROM integrations WHERE account_id = $1 AND id = $2", &[&ctx.account.0, &id]).await?;
            bump_version(&tx, ctx.account).await?;
            let detail = serde_json::json!({
                "applicationType": before.application_type, "name": before.name, "identitiesDeleted": deleted,
            })
            .to_string();
            insert_audit(
                &tx,
                ctx,
                now,
                Audit { action: "integration.deleted", integration_id: Some(id), detail: Some(&detail), ..Default::default() },
            )
            .await?;
            close_change_set(&tx, ctx, ChangeKind::Integration).await?;
            tx.commit().await?;
            Ok(DeleteIntegrationOutcome::Deleted { identities_deleted: deleted })
        })
        .await
    }

    async fn apply_upload(&self, ctx: &ChangeContext, plan: UploadPlan, dry_run: bool) -> StoreResult<UploadSummary> {
        if !dry_run && plan.rows.len() <= GROUP_COMMIT_MAX_ROWS {
            return self.apply_upload_in_group(ctx.clone(), plan).await;
        }
        let summary = self.retrying(|| self.apply_upload_once(ctx, &plan, dry_run)).await?;
        if !dry_run && summary.created + summary.reassigned >= ANALYZE_AFTER_ROWS {
            // A bulk load changes the table faster than autovacuum notices; without
            // fresh statistics the planner sorts whole integrations for a 100-row page.
            let pool = self.pool.clone();
            tokio::spawn(async move {
                let result = async {
                    let client = pool.get().await?;
                    client.batch_execute("ANALYZE identities").await?;
                    Ok::<_, PgError>(())
                }
                .await;
                if let Err(e) = result {
                    tracing::warn!(error = %e.into_store(), "could not refresh statistics after a large upload");
                }
            });
        }
        Ok(summary)
    }

    async fn delete_identities(
        &self,
        ctx: &ChangeContext,
        plan: DeletePlan,
        dry_run: bool,
    ) -> StoreResult<DeleteSummary> {
        self.retrying(|| self.delete_identities_once(ctx, &plan, dry_run)).await
    }

    async fn export_batch(
        &self,
        account: AccountId,
        query: IdentityQuery,
        encode: ExportEncoder,
    ) -> StoreResult<ExportBatch> {
        async {
            let query = IdentityQuery { count_total: false, ..query };
            let built = sql::identity_sql(Dialect::Postgres, account, &query).map_err(StoreError::Invalid)?;
            let limit = built.limit.unwrap_or(u64::MAX);
            let client = self.client().await?;
            let p = params(&built.page.args);
            let statement = client.prepare_cached(&built.page.text).await?;
            let rows = client.query(&statement, &refs(&p)).await?;
            let mut bytes = Vec::with_capacity(rows.len() * 96);
            let (mut n, mut last) = (0u64, None);
            for r in rows.iter().take(usize::try_from(limit).unwrap_or(usize::MAX)) {
                let row = ExportRow {
                    email: r.try_get(0)?,
                    integration_id: r.try_get(1)?,
                    application_type: r.try_get(2)?,
                    identity: r.try_get(3)?,
                    updated_at: r.try_get(5)?,
                    source: r.try_get(7)?,
                    locked: r.try_get::<_, i32>(8)? != 0,
                };
                encode(&row, &mut bytes);
                n += 1;
                if n == limit {
                    last = Some(sql::next_cursor(
                        query.sort,
                        row.email,
                        row.integration_id,
                        r.try_get(6)?,
                        row.updated_at,
                    ));
                }
            }
            let has_next = rows.len() as u64 > n;
            Ok(ExportBatch { bytes, rows: n, next_cursor: if has_next { last } else { None } })
        }
        .await
        .map_err(PgError::into_store)
    }

    async fn list_identities(&self, account: AccountId, query: IdentityQuery) -> StoreResult<IdentityPage> {
        async {
            let built = sql::identity_sql(Dialect::Postgres, account, &query).map_err(StoreError::Invalid)?;
            let client = self.client().await?;
            let total: i64 = match &built.count {
                Some(count) => {
                    let p = params(&count.args);
                    client.query_one(&count.text, &refs(&p)).await?.try_get(0)?
                }
                None => 0,
            };
            let p = params(&built.page.args);
            let statement = client.prepare_cached(&built.page.text).await?;
            let rows = client.query(&statement, &refs(&p)).await?;
            let mut records = Vec::with_capacity(rows.len());
            let mut has_next = false;
            let mut first_cursor = None;
            let mut next_cursor = None;
            for r in &rows {
                if built.limit.is_some_and(|l| records.len() as u64 >= l) {
                    has_next = true;
                    break;
                }
                let t: String = r.try_get(2)?;
                let updated_at: i64 = r.try_get(5)?;
                let identity_key: String = r.try_get(6)?;
                let record = IdentityRecord {
                    email: r.try_get(0)?,
                    integration_id: r.try_get(1)?,
                    application_type: parse_type(&t)?,
                    identity: r.try_get(3)?,
                    created_at: to_rfc3339(r.try_get(4)?),
                    updated_at: to_rfc3339(updated_at),
                    source: r.try_get(7)?,
                    locked: r.try_get::<_, i32>(8)? != 0,
                };
                next_cursor =
                    Some(sql::next_cursor(query.sort, &record.email, record.integration_id, &identity_key, updated_at));
                if records.is_empty() {
                    first_cursor.clone_from(&next_cursor);
                }
                records.push(record);
            }
            if !has_next {
                next_cursor = None;
            }
            Ok(IdentityPage { records, total_count: total.max(0) as u64, has_next, next_cursor, first_cursor })
        }
        .await
        .map_err(PgError::into_store)
    }

    async fn ensure_secret(&self, name: &str) -> StoreResult<Vec<u8>> {
        async {
            let client = self.client().await?;
            Ok(secrets::ensure_secret_in(&client, name).await?)
        }
        .await
        .map_err(PgError::into_store)
    }

    async fn identities_version(&self, account: AccountId) -> StoreResult<i64> {
        async {
            let client = self.client().await?;
            let statement = client.prepare_cached("SELECT identities_version FROM accounts WHERE id = $1").await?;
            Ok(match client.query_opt(&statement, &[&account.0]).await? {
                Some(row) => row.try_get(0)?,
                None => 0,
            })
        }
        .await
        .map_err(PgError::into_store)
    }

    async fn list_audit(&self, account: AccountId, query: AuditQuery) -> StoreResult<AuditPage> {
        async {
            let (count, page) = sql::audit_sql(Dialect::Postgres, account, &query);
            let client = self.client().await?;
            let p = params(&count.args);
            let total: i64 = client.query_one(&count.text, &refs(&p)).await?.try_get(0)?;
            let p = params(&page.args);
            let rows = client.query(&page.text, &refs(&p)).await?;
            let mut events = rows.iter().map(audit_event_from_row).collect::<PgResult<Vec<_>>>()?;
            let has_next = events.len() as u64 > query.page_size;
            events.truncate(query.page_size as usize);
            Ok(AuditPage { events, total_count: total.max(0) as u64, has_next })
        }
        .await
        .map_err(PgError::into_store)
    }
}

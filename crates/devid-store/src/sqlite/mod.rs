//! The embedded backend: one SQLite file in WAL mode. Writes go through a single
//! connection guarded by a mutex (SQLite allows one writer at a time; queueing here is
//! cheaper and fairer than retrying on SQLITE_BUSY), reads use a small pool and run
//! beside writes thanks to WAL. All database work runs on tokio's blocking threads.

pub mod backup;
mod changes;

use changes::close_change_set;
use devid_core::change::ChangeKind;
mod contributors;
mod dry_run;
mod locks;
mod matching;
mod migrations;
mod secrets;
mod sessions;
mod webhooks;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use devid_core::apikey::{format_key, parse_key};
use devid_core::plan::{DeletePlan, IntegrationInfo, IntegrationRef, UploadPlan};
use devid_core::time::{Micros, to_rfc3339};
use devid_core::types::{
    ApplicationType, IntegrationId, MAX_INTEGRATION_ID, Scope, scopes_from_string, scopes_to_string,
};
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::keys::{hash_secret, new_key_id, new_secret, secret_matches};
use crate::query::{AuditQuery, IdentityQuery};
use crate::sql::{self, Arg, Dialect};
use crate::{
    Account, AccountId, ApiKeyInfo, AuditEvent, AuditPage, AuthOutcome, ChangeContext, CreatedKey,
    DeleteIntegrationOutcome, DeleteSummary, ExportBatch, ExportEncoder, ExportRow, IdentityPage, IdentityRecord,
    Integration, IntegrationPatch, LastUsedThrottle, LockedMove, MAX_LOCKED_SAMPLES, NewIntegration, NewKey, Principal,
    Store, StoreError, StoreResult, UploadSummary, default_integration_name, now_micros,
};

/// How long a write waits for another process holding the SQLite write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_IDLE_READERS: usize = 8;

pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    throttle: LastUsedThrottle,
    /// Test hook: fail an upload after this many rows were written (0: never).
    fail_after_rows: AtomicU64,
    /// Tells the checkpointer that a write transaction committed.
    committed: SyncSender<()>,
    /// Small uploads waiting for the writer; whoever holds it next commits them all.
    queued_uploads: Mutex<Vec<QueuedUpload>>,
    /// A bulk load's index rebuild failed: whoever next takes the writer tries again.
    indexes_pending: AtomicBool,
    /// Test hook: the next post-answer index rebuild fails.
    fail_next_rebuild: AtomicBool,
}

impl Inner {
    /// The writer connection, after building any indexes a failed rebuild left out, so
    /// that they are missing no longer than until the next write.
    fn writer(&self) -> std::sync::MutexGuard<'_, Connection> {
        let mut conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if self.indexes_pending.load(Ordering::SeqCst) {
            match rebuild_pending_indexes(&mut conn) {
                Ok(_) => self.indexes_pending.store(false, Ordering::SeqCst),
                Err(e) => tracing::error!(error = %e, "still cannot rebuild the indexes a bulk load dropped"),
            }
        }
        conn
    }
}

struct QueuedUpload {
    ctx: ChangeContext,
    plan: UploadPlan,
    answer: tokio::sync::oneshot::Sender<StoreResult<UploadSummary>>,
}

/// Uploads up to this many rows share transactions (group commit); larger ones, and
/// dry runs, get one of their own.
const GROUP_COMMIT_MAX_ROWS: usize = 1_000;

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        let path = path.as_ref().to_path_buf();
        create_private_if_missing(&path)?;
        let mut writer = connect(&path)?;
        set_cache(&writer, WRITER_CACHE_KIB)?;
        migrations::run(&mut writer).map_err(map_err)?;
        let rebuilt = rebuild_pending_indexes(&mut writer)?;
        if rebuilt > 0 {
            tracing::warn!(indexes = rebuilt, "rebuilt indexes that a bulk load dropped before the last stop");
        }
        // History from before migration 13, or a large write whose process stopped
        // before listing its addresses (after the upgrade, the whole history once).
        let started = std::time::Instant::now();
        let listed = changes::list_pending_change_set_emails(&mut writer).map_err(map_err)?;
        if listed > 0 {
            tracing::info!(
                change_sets = listed,
                ms = started.elapsed().as_millis() as u64,
                "listed the addresses of change sets written before this version or left unlisted by a stop"
            );
        }
        // Checkpoints run on a thread of their own (see `checkpoint_in_background`), so
        // a commit costs the WAL append and its fsync, not also copying pages into the
        // main file. After a checkpoint lets the WAL start over, SQLite cuts it back
        // to this size: a million-row upload must not leave a file that big behind.
        writer
            .execute_batch(&format!("PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit={WAL_SIZE_LIMIT};"))
            .map_err(map_err)?;
        let (committed, commits) = std::sync::mpsc::sync_channel(1);
        let checkpointer = connect(&path)?;
        std::thread::Builder::new()
            .name("devid-sqlite-checkpoint".into())
            .spawn(move || checkpoint_in_background(checkpointer, commits))
            .map_err(|e| StoreError::Internal(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                throttle: LastUsedThrottle::default(),
                fail_after_rows: AtomicU64::new(0),
                committed,
                queued_uploads: Mutex::new(Vec::new()),
                indexes_pending: AtomicBool::new(false),
                fail_next_rebuild: AtomicBool::new(false),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Makes the next uploads fail after `rows` rows were written, to prove that a
    /// failure mid-upload leaves nothing behind. Tests only.
    #[doc(hidden)]
    pub fn inject_failure_after_rows(&self, rows: u64) {
        self.inner.fail_after_rows.store(rows, Ordering::SeqCst);
    }

    /// Makes the next rebuild of indexes a bulk load dropped fail once. Tests only.
    #[doc(hidden)]
    pub fn inject_rebuild_failure(&self) {
        self.inner.fail_next_rebuild.store(true, Ordering::SeqCst);
    }

    /// Re-runs migrations; returns how many were applied (0 on an up-to-date file).
    pub fn migrate(&self) -> StoreResult<usize> {
        let mut conn = self.inner.writer();
        migrations::run(&mut conn).map_err(map_err)
    }

    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Inner) -> StoreResult<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer();
            let result = f(&mut conn, &inner);
            // A large revert may have dropped indexes (as a bulk load does) and leaves
            // its addresses to list: both after the answer. Until the rebuild, the next
            // write to take the writer builds the indexes first.
            let indexes_dropped = indexes_listed_as_dropped(&conn);
            if indexes_dropped {
                inner.indexes_pending.store(true, Ordering::SeqCst);
            }
            let after_answer_due = indexes_dropped || changes::change_set_emails_pending(&conn);
            drop(conn);
            // A full channel means a checkpoint is already due; nothing is lost.
            let _ = inner.committed.try_send(());
            if after_answer_due {
                let inner = Arc::clone(&inner);
                drop(tokio::task::spawn_blocking(move || rebuild_after_bulk_load(&mut inner.writer(), &inner)));
            }
            result
        })
        .await
        .map_err(|e| StoreError::Internal(format!("database task failed: {e}")))?
    }

    /// Group commit. Each small upload joins a queue; the task that next gets the writer
    /// applies everything queued, each upload inside a savepoint of one transaction,
    /// and commits once: one fsync for many requests instead of one each. An upload
    /// that fails rolls back to its savepoint alone; if the transaction itself fails,
    /// every upload in it gets the error and none of them is applied. Nobody is
    /// answered before the commit is durable.
    async fn apply_upload_in_group(&self, ctx: ChangeContext, plan: UploadPlan) -> StoreResult<UploadSummary> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.inner.queued_uploads.lock().unwrap_or_else(|e| e.into_inner()).push(QueuedUpload { ctx, plan, answer });
        let inner = Arc::clone(&self.inner);
        // Not awaited: the answer comes through the channel, from this task or from
        // the one that took the queue before it.
        drop(tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer();
            let group = std::mem::take(&mut *inner.queued_uploads.lock().unwrap_or_else(|e| e.into_inner()));
            if group.is_empty() {
                return;
            }
            apply_upload_group(&mut conn, &inner, group);
            drop(conn);
            let _ = inner.committed.try_send(());
        }));
        answered.await.map_err(|_| StoreError::Internal("the upload's database task ended without an answer".into()))?
    }

    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let conn = match pooled {
                Some(c) => c,
                None => {
                    let conn = connect(&inner.path)?;
                    set_cache(&conn, READER_CACHE_KIB)?;
                    conn
                }
            };
            let result = f(&conn);
            let mut idle = inner.readers.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Internal(format!("database task failed: {e}")))?
    }
}

/// Bytes SQLite truncates the WAL file back to once it starts over.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;
/// Shortest pause between two background checkpoints: commits arriving meanwhile are
/// copied into the main file together, each page once.
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(250);

/// Copies committed pages from the WAL into the database file after writes, off the
/// request path. PASSIVE never blocks readers or the writer; what it cannot copy yet
/// (a reader still needs the old page) is copied on a later round. Ends when the store
/// is dropped.
fn checkpoint_in_background(conn: Connection, commits: Receiver<()>) {
    while commits.recv().is_ok() {
        let started = std::time::Instant::now();
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        }) {
            Ok((_, wal_pages, copied)) if copied > 0 => {
                tracing::debug!(wal_pages, copied, ms = started.elapsed().as_millis() as u64, "checkpoint")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "background checkpoint failed; the next write retries it"),
        }
        std::thread::sleep(CHECKPOINT_PAUSE);
    }
}

/// Creates the database file readable and writable by its owner only (0600) when it
/// does not exist yet: it holds every account's emails, mappings, audit trail and key
/// hashes. SQLite gives the `-wal` and `-shm` files it creates beside it the same
/// mode. An existing file keeps the mode its operator chose; a world-readable one is
/// reported.
fn create_private_if_missing(path: &Path) -> StoreResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if let Ok(meta) = std::fs::metadata(path)
                    && meta.permissions().mode() & 0o077 != 0
                {
                    tracing::warn!(
                        path = %path.display(),
                        mode = format!("{:o}", meta.permissions().mode() & 0o777),
                        "the database file is readable by other users; `chmod 600` it (and its -wal and -shm files)"
                    );
                }
            }
            // Opening will fail with SQLite's own, clearer error (a missing directory,
            // no permission); let it.
            Err(_) => {}
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn connect(path: &Path) -> StoreResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::Unavailable(format!("cannot open SQLite database {}: {e}", path.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(map_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "SQLite database {} could not switch to WAL mode (got {mode})",
            path.display()
        )));
    }
    // FULL: an acknowledged write survives power loss, not just a process crash.
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;")
        .map_err(map_err)?;
    Ok(conn)
}

/// Page cache per connection, in KiB: the writer holds the indexes a large upload
/// walks; readers need far less, and there may be several of them.
const WRITER_CACHE_KIB: i64 = 48 * 1024;
const READER_CACHE_KIB: i64 = 16 * 1024;

/// The smallest integration id of an account that is not taken (1 when free).
const FIRST_FREE_INTEGRATION_ID_SQLITE: &str =
    "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM integrations WHERE account_id = ?1 AND id = 1) THEN 1
     ELSE (SELECT MIN(i.id) + 1 FROM integrations i WHERE i.account_id = ?1
           AND NOT EXISTS (SELECT 1 FROM integrations j WHERE j.account_id = i.account_id AND j.id = i.id + 1)) END";

fn set_cache(conn: &Connection, kib: i64) -> StoreResult<()> {
    conn.execute_batch(&format!("PRAGMA cache_size=-{kib};")).map_err(map_err)
}

fn map_err(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable("the database is busy; retry shortly".into())
        }
        Some(
            ErrorCode::CannotOpen
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::ReadOnly
            | ErrorCode::PermissionDenied,
        ) => StoreError::Unavailable(e.to_string()),
        Some(ErrorCode::ConstraintViolation) => StoreError::Conflict(e.to_string()),
        _ => StoreError::Internal(e.to_string()),
    }
}

fn parse_type(s: &str) -> StoreResult<ApplicationType> {
    s.parse().map_err(|_| StoreError::Internal(format!("stored application type `{s}` is unknown")))
}

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

const INSERT_AUDIT: &str =
    "INSERT INTO audit_events (account_id, at, action, key_id, request_id, integration_id, identity, old_email, new_email, detail)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// The `identity.created` events of an upload: every identity with an id above the
/// largest one before it (SQLite gives a new row the largest id plus one; in a group
/// commit, uploads before this one in the transaction hold the lower ids). The rowid
/// range is the whole filter, so the copy walks the new rows in order: with a filter on
/// `account_id` as well, SQLite chose the unique index and sorted a million rows in
/// memory (+150 MiB). OR FAIL: no partial-statement undo to record, as any error fails
/// the upload's transaction or savepoint anyway.
const AUDIT_CREATED_SINCE: &str =
    "INSERT OR FAIL INTO audit_events (account_id, at, action, key_id, request_id, integration_id, identity, new_email)
     SELECT ?4, ?1, 'identity.created', ?2, ?3, integration_id, identity, email
     FROM identities WHERE id > ?5 ORDER BY id";

/// An identity row's state before a move or a delete, as an audit event's detail: what
/// a revert puts back (`createdAt`, provenance, lock, the identity as spelled).
const BEFORE_STATE: &str = "json_object('before', json_object('createdAt', created_at, 'updatedAt', updated_at,
    'source', source, 'sourceKeyId', source_key_id, 'locked', locked, 'identity', identity))";

/// The `identity.reassigned` event of a move, written before the row is moved: the row
/// gives the old email and the state a revert restores.
fn audit_move_sql() -> String {
    format!(
        "INSERT INTO audit_events (account_id, at, action, key_id, request_id, integration_id, identity, old_email, new_email, detail)
         SELECT ?1, ?2, 'identity.reassigned', ?3, ?4, integration_id, ?5, email, ?6, {BEFORE_STATE} FROM identities WHERE id = ?7"
    )
}

/// The `identity.deleted` event of a row, written before it is deleted.
fn audit_delete_sql() -> String {
    format!(
        "INSERT INTO audit_events (account_id, at, action, key_id, request_id, integration_id, identity, old_email, detail)
         SELECT ?1, ?2, 'identity.deleted', ?3, ?4, integration_id, identity, email, {BEFORE_STATE} FROM identities WHERE id = ?5"
    )
}

fn insert_audit(tx: &Transaction<'_>, ctx: &ChangeContext, at: Micros, e: Audit<'_>) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(INSERT_AUDIT)?;
    write_audit(&mut stmt, ctx, at, e)
}

/// [`insert_audit`] through a statement the caller holds: an upload writes one audit
/// row per change, and looking the statement up in the cache each time was measurable.
fn write_audit(
    stmt: &mut rusqlite::Statement<'_>,
    ctx: &ChangeContext,
    at: Micros,
    e: Audit<'_>,
) -> rusqlite::Result<()> {
    stmt.execute(params![
        ctx.account.0,
        at,
        e.action,
        ctx.key_id,
        ctx.request_id,
        e.integration_id,
        e.identity,
        e.old_email,
        e.new_email,
        e.detail
    ])?;
    Ok(())
}

fn bump_version(tx: &Transaction<'_>, account: AccountId) -> StoreResult<()> {
    tx.prepare_cached("UPDATE accounts SET identities_version = identities_version + 1 WHERE id = ?1")
        .and_then(|mut s| s.execute([account.0]))
        .map_err(map_err)?;
    Ok(())
}

fn account_name(conn: &Connection, account: AccountId) -> StoreResult<String> {
    conn.query_row("SELECT name FROM accounts WHERE id = ?1", [account.0], |r| r.get(0))
        .optional()
        .map_err(map_err)?
        .ok_or_else(|| StoreError::NotFound(format!("account {} does not exist", account.0)))
}

type KeyRow = (String, String, String, String, i64, Option<i64>, Option<i64>, Option<i64>);

fn key_info_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
}

fn key_info(row: KeyRow) -> StoreResult<ApiKeyInfo> {
    let (id, account, scopes, label, created_at, last_used_at, expires_at, revoked_at) = row;
    Ok(ApiKeyInfo {
        id,
        account,
        scopes: scopes_from_string(&scopes).map_err(|e| StoreError::Internal(e.to_string()))?,
        label,
        created_at: to_rfc3339(created_at),
        last_used_at: last_used_at.map(to_rfc3339),
        expires_at: expires_at.map(to_rfc3339),
        revoked: revoked_at.is_some(),
    })
}

const KEY_COLUMNS: &str = "k.id, a.name, k.scopes, k.label, k.created_at, k.last_used_at, k.expires_at, k.revoked_at FROM api_keys k JOIN accounts a ON a.id = k.account_id";

fn create_key_in(tx: &Transaction<'_>, ctx: &ChangeContext, new: &NewKey) -> StoreResult<CreatedKey> {
    let name = account_name(tx, ctx.account)?;
    let key_id = new_key_id();
    let secret = new_secret();
    let now = now_micros();
    let scopes = scopes_to_string(&new.scopes);
    tx.execute(
        "INSERT INTO api_keys (id, account_id, secret_hash, scopes, label, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![key_id, ctx.account.0, hash_secret(&secret), scopes, new.label, now, new.expires_at],
    )
    .map_err(map_err)?;
    let detail = serde_json::json!({"keyId": key_id, "scopes": new.scopes, "label": new.label}).to_string();
    insert_audit(tx, ctx, now, Audit { action: "key.created", detail: Some(&detail), ..Default::default() })
        .map_err(map_err)?;
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

fn ensure_account_in(tx: &Transaction<'_>, name: &str) -> StoreResult<Account> {
    devid_core::types::validate_account_name(name).map_err(StoreError::Invalid)?;
    tx.execute("INSERT OR IGNORE INTO accounts (name, created_at) VALUES (?1, ?2)", params![name, now_micros()])
        .map_err(map_err)?;
    let id: i64 = tx.query_row("SELECT id FROM accounts WHERE name = ?1", [name], |r| r.get(0)).map_err(map_err)?;
    Ok(Account { id: AccountId(id), name: name.to_string() })
}

const INTEGRATION_COLUMNS: &str = "i.id, i.application_type, i.name, i.created_at, i.updated_at,
    (SELECT COUNT(*) FROM identities d WHERE d.account_id = i.account_id AND d.integration_id = i.id)
    FROM integrations i";

fn integration_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, String, i64, i64, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

fn integration(row: (i64, String, String, i64, i64, i64)) -> StoreResult<Integration> {
    let (id, t, name, created_at, updated_at, count) = row;
    Ok(Integration {
        id,
        application_type: parse_type(&t)?,
        name,
        created_at: to_rfc3339(created_at),
        updated_at: to_rfc3339(updated_at),
        identity_count: count.max(0) as u64,
    })
}

fn get_integration_in(conn: &Connection, account: AccountId, id: IntegrationId) -> StoreResult<Option<Integration>> {
    let row = conn
        .query_row(
            &format!("SELECT {INTEGRATION_COLUMNS} WHERE i.account_id = ?1 AND i.id = ?2"),
            params![account.0, id],
            integration_from_row,
        )
        .optional()
        .map_err(map_err)?;
    row.map(integration).transpose()
}

fn insert_integration(
    tx: &Transaction<'_>,
    ctx: &ChangeContext,
    id: Option<IntegrationId>,
    application_type: ApplicationType,
    name: &str,
    now: Micros,
) -> StoreResult<Integration> {
    let id = match id {
        Some(id) => {
            let taken: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM integrations WHERE account_id = ?1 AND id = ?2)",
                    params![ctx.account.0, id],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            if taken {
                return Err(StoreError::Conflict(format!(
                    "integration {id} already exists; choose another id or leave it out to get the next free one"
                )));
            }
            id
        }
        None => {
            let next: i64 = tx
                .query_row(
                    "SELECT COALESCE(MAX(id), 0) + 1 FROM integrations WHERE account_id = ?1",
                    [ctx.account.0],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            if next <= MAX_INTEGRATION_ID {
                next
            } else {
                // Someone chose the largest id: take the first gap instead of passing 2^53 - 1.
                tx.query_row(FIRST_FREE_INTEGRATION_ID_SQLITE, [ctx.account.0], |r| r.get(0)).map_err(map_err)?
            }
        }
    };
    tx.execute(
        "INSERT INTO integrations (account_id, id, application_type, name, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![ctx.account.0, id, application_type.as_str(), name, now],
    )
    .map_err(map_err)?;
    contributors::integrations_changed_in(tx, ctx.account)?;
    let detail = serde_json::json!({"applicationType": application_type, "name": name}).to_string();
    insert_audit(
        tx,
        ctx,
        now,
        Audit { action: "integration.created", integration_id: Some(id), detail: Some(&detail), ..Default::default() },
    )
    .map_err(map_err)?;
    Ok(Integration {
        id,
        application_type,
        name: name.to_string(),
        created_at: to_rfc3339(now),
        updated_at: to_rfc3339(now),
        identity_count: 0,
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|conn| conn.query_row("SELECT 1 FROM schema_migrations LIMIT 1", [], |_| Ok(())).map_err(map_err))
            .await
    }

    async fn close(&self) {
        let inner = Arc::clone(&self.inner);
        let done = tokio::task::spawn_blocking(move || backup::checkpoint_and_truncate(&inner.writer(), &inner.path));
        if let Err(e) = done.await {
            tracing::warn!(error = %e, "the final checkpoint did not run; the WAL file still holds the latest writes");
        }
    }

    async fn bootstrap(&self) -> StoreResult<Option<CreatedKey>> {
        self.write(|conn, _| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(map_err)?;
            let accounts: i64 = tx.query_row("SELECT COUNT(*) FROM accounts", [], |r| r.get(0)).map_err(map_err)?;
            if accounts > 0 {
                return Ok(None);
            }
            let account = ensure_account_in(&tx, "default")?;
            let ctx = ChangeContext { account: account.id, key_id: None, request_id: None };
            let key = create_key_in(
                &tx,
                &ctx,
                &NewKey { scopes: vec![Scope::Admin], label: "bootstrap admin key".into(), expires_at: None },
            )?;
            close_change_set(&tx, &ctx, ChangeKind::Key).map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            Ok(Some(key))
        })
        .await
    }

    async fn account_by_name(&self, name: &str) -> StoreResult<Option<Account>> {
        let name = name.to_string();
        self.read(move |conn| {
            let id: Option<i64> = conn
                .query_row("SELECT id FROM accounts WHERE name = ?1", [&name], |r| r.get(0))
                .optional()
                .map_err(map_err)?;
            Ok(id.map(|id| Account { id: AccountId(id), name }))
        })
        .await
    }

    async fn ensure_account(&self, name: &str) -> StoreResult<Account> {
        let name = name.to_string();
        self.write(move |conn, _| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(map_err)?;
            let account = ensure_account_in(&tx, &name)?;
            tx.commit().map_err(map_err)?;
            Ok(account)
        })
        .await
    }

    async fn create_key(&self, ctx: &ChangeContext, new: NewKey) -> StoreResult<CreatedKey> {
        let ctx = ctx.clone();
        self.write(move |conn, _| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(map_err)?;
            let key = create_key_in(&tx, &ctx, &new)?;
            close_change_set(&tx, &ctx, ChangeKind::Key).map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            Ok(key)
        })
        .await
    }

    async fn list_keys(&self, account: Option<AccountId>) -> StoreResult<Vec<ApiKeyInfo>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {KEY_COLUMNS} WHERE (?1 IS NULL OR k.account_id = ?1) ORDER BY a.name, k.created_at, k.id"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map([account.map(|a| a.0)], key_info_from_row)
                .map_err(map_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(map_err)?;
            rows.into_iter().map(key_info).collect()
        })
        .await
    }

    async fn revoke_key(&self, ctx: &ChangeContext, key_id: &str, any_account: bool) -> StoreResult<ApiKeyInfo> {
        let ctx = ctx.clone();
        let key_id = key_id.to_string();
        self.write(move |conn, _| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(map_err)?;
            let owner: Option<(i64, Option<i64>)> = tx
                .query_row("SELECT account_id, revoked_at FROM api_keys WHERE id = ?1", [&key_id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(map_err)?;
            let Some((owner, revoked_at)) = owner.filter(|(owner, _)| any_account || *owner == ctx.account.0) else {
                return Err(StoreError::NotFound(format!("there is no API key `{key_id}`")));
            };
            if revoked_at.is_none() {
                let now = now_micros();
                if !any_account {
                    // Active admin keys of the account that would be left: none locks it out.
                    let others: i64 = tx
                        .query_row(
                            "SELECT COUNT(*) FROM api_keys WHERE account_id = ?1 AND id <> ?2 AND revoked_at IS NULL
                             AND (expires_at IS NULL OR expires_at > ?3) AND (',' || scopes || ',') LIKE '%,admin,%'",
                            params![owner, key_id, now],
                            |r| r.get(0),
                        )
                        .map_err(map_err)?;
                    let is_admin: bool = tx
                        .query_row(
                            "SELECT (',' || scopes || ',') LIKE '%,admin,%' AND (expires_at IS NULL OR expires_at > ?2) FROM api_keys WHERE id = ?1",
                            params![key_id, now],
                            |r| r.get(0),
                        )
                        .map_err(map_err)?;
                    if is_admin && others == 0 {
                        return Err(crate::last_admin_key_conflict(&key_id));
                    }
                }
                tx.execute("UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2", params![now, key_id])
                    .map_err(map_err)?;
                let owner_ctx = ChangeContext { account: AccountId(owner), ..ctx.clone() };
                let detail = serde_json::json!({"keyId": key_id}).to_string();
                insert_audit(
                    &tx,
                    &owner_ctx,
                    now,
                    Audit { action: "key.revoked", detail: Some(&detail), ..Default::default() },
                )
                .map_err(map_err)?;
            }
            let row = tx
                .query_row(&format!("SELECT {KEY_COLUMNS} WHERE k.id = ?1"), [&key_id], key_info_from_row)
                .map_err(map_err)?;
            close_change_set(&tx, &ctx, ChangeKind::Key).map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            key_info(row)
        })
        .await
    }

    async fn authenticate(&self, presented: &str) -> StoreResult<AuthOutcome> {
        let Some(parsed) = parse_key(presented) else {
            return Ok(AuthOutcome::Unknown);
        };
        let (account, key_id, secret) =
            (parsed.account.to_string(), parsed.key_id.to_string(), parsed.secret.to_string());
        let outcome = self
            .read(move |conn| {
                let row: Option<(Vec<u8>, String, Option<i64>, Option<i64>, i64, String)> = conn
                    .prepare_cached(
                        "SELECT k.secret_hash, k.scopes, k.expires_at, k.revoked_at, a.id, a.name
                         FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.id = ?1",
                    )
                    .and_then(|mut s| {
                        s.query_row([&key_id], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                        })
                        .optional()
                    })
                    .map_err(map_err)?;
                let Some((hash, scopes, expires_at, revoked_at, account_id, account_name)) = row else {
                    return Ok(AuthOutcome::Unknown);
                };
                if account_name != account || !secret_matches(&secret, &hash) {
                    return Ok(AuthOutcome::Unknown);
                }
                if revoked_at.is_some() {
                    return Ok(AuthOutcome::Revoked);
                }
                if expires_at.is_some_and(|e| e <= now_micros()) {
                    return Ok(AuthOutcome::Expired);
                }
                Ok(AuthOutcome::Valid(Principal {
                    account: AccountId(account_id),
                    account_name,
                    key_id,
                    scopes: scopes_from_string(&scopes).map_err(|e| StoreError::Internal(e.to_string()))?,
                }))
            })
            .await?;
        if let AuthOutcome::Valid(p) = &outcome
            && self.inner.throttle.should_write(&p.key_id)
        {
            // Off the request path: a long upload holding the writer must not delay reads.
            let key_id = p.key_id.clone();
            let inner = Arc::clone(&self.inner);
            tokio::task::spawn_blocking(move || {
                let conn = inner.writer();
                if let Err(e) =
                    conn.execute("UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2", params![now_micros(), key_id])
                {
                    tracing::warn!(error = %e, key_id, "could not record when the key was last used");
                }
            });
        }
        Ok(outcome)
    }

    async fn list_integrations(&self, account: AccountId) -> StoreResult<Vec<Integration>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!("SELECT {INTEGRATION_COLUMNS} WHERE i.account_id = ?1 ORDER BY i.id"))
                .map_err(map_err)?;
            let rows = stmt
                .query_map([account.0], integration_from_row)
                .map_err(map_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(map_err)?;
            rows.into_iter().map(integration).collect()
        })
        .await
    }

    async fn get_integration(&self, account: AccountId, id: IntegrationId) -> StoreResult<Option<Integration>> {
        self.read(move |conn| get_integration_in(conn, account, id)).await
    }

    async fn integration_infos(&self, account: AccountId) -> StoreResult<Vec<IntegrationInfo>> {
        self.read(move |conn| integration_infos_in(conn, account)).await
    }

    async fn create_integration(&self, ctx: &ChangeContext, new: NewIntegration) -> StoreResult<Integration> {
        let ctx = ctx.clone();
        self.write(move |conn, _| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(map_err)?;
            let created = insert_integration(&tx, &ctx, new.id, new.application_type, &new.name, now_micros())?;
            close_change_set(&tx, &ctx, ChangeKind::Integration).map_err(map_err)?;
            tx.commit().map_err(map_err)?;
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
        let ctx = ctx.clone();
        self.write(move |conn, _| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(map_err)?;
            let Some(before) = get_integration_in(&tx, ctx.account, id)? else {
                return Ok(None);
            };
            crate::check_type_change(&before, patch.application_type)?;
            let name = patch.name.clone().unwrap_or_else(|| before.name.clone());
            let application_type = patch.application_type.unwrap_or(before.application_type);
            if name == before.name && application_type == before.application_type {
                // A change that changes nothing records nothing.
                return Ok(Some(before));
            }
            let now = now_micros();
            tx.execute(
                "UPDATE integrations SET name = ?1, application_type = ?2, updated_at = ?3 WHERE account_id = ?4 AND id = ?5",
                params![name, application_type.as_str(), now, ctx.account.0, id],
            )
            .map_err(map_err)?;
            contributors::integrations_changed_in(&tx, ctx.account)?;
            if application_type != before.application_type {
                // Listings filter by application type: totals cached for the old type are stale.
                bump_version(&tx, ctx.account)?;
            }
            let detail = serde_json::json!({
                "before": {"name": before.name, "applicationType": before.application_type},
                "after": {"name": name, "applicationType": application_type},
            })
            .to_string();
            insert_audit(
                &tx,
                &ctx,
                now,
                Audit { action: "integration.updated", integration_id: Some(id), detail: Some(&detail), ..Default::default() },
            ).map_err(map_err)?;
            let after = get_integration_in(&tx, ctx.account, id)?;
            close_change_set(&tx, &ctx, ChangeKind::Integration).map_err(map_err)?;
            tx.commit().map_err(map_err)?;
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
        let ctx = ctx.clone();
        self.write(move |conn, _| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(map_err)?;
            let Some(before) = get_integration_in(&tx, ctx.account, id)? else {
                return Ok(DeleteIntegrationOutcome::NotFound);
            };
            if before.identity_count > 0 && !force {
                return Ok(DeleteIntegrationOutcome::HasIdentities(before.identity_count));
            }
            let now = now_micros();
            tx.execute(
                &format!(
                    "INSERT INTO audit_events (account_id, at, action, key_id, request_id, integration_id, identity, old_email, detail)
                     SELECT account_id, ?1, 'identity.deleted', ?2, ?3, integration_id, identity, email, {BEFORE_STATE}
                     FROM identities WHERE account_id = ?4 AND integration_id = ?5"
                ),
                params![now, ctx.key_id, ctx.request_id, ctx.account.0, id],
            )
            .map_err(map_err)?;
            let deleted = tx
                .execute("DELETE FROM identities WHERE account_id = ?1 AND integration_id = ?2", params![ctx.account.0, id])
                .map_err(map_err)?;
            contributors::delete_integration_contributors_in(&tx, ctx.account, id)?;
            tx.execute("DELETE FROM integrations WHERE account_id = ?1 AND id = ?2", params![ctx.account.0, id])
                .map_err(map_err)?;
            bump_version(&tx, ctx.account)?;
            let detail = serde_json::json!({
                "applicationType": before.application_type, "name": before.name, "identitiesDeleted": deleted,
            })
            .to_string();
            insert_audit(
                &tx,
                &ctx,
                now,
                Audit { action: "integration.deleted", integration_id: Some(id), detail: Some(&detail), ..Default::default() },
            ).map_err(map_err)?;
            close_change_set(&tx, &ctx, ChangeKind::Integration).map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            Ok(DeleteIntegrationOutcome::Deleted { identities_deleted: deleted as u64 })
        })
        .await
    }

    async fn apply_upload(&self, ctx: &ChangeContext, plan: UploadPlan, dry_run: bool) -> StoreResult<UploadSummary> {
        if !dry_run && plan.rows.len() <= GROUP_COMMIT_MAX_ROWS {
            return self.apply_upload_in_group(ctx.clone(), plan).await;
        }
        if dry_run && plan.new_integrations.is_empty() {
            let account = ctx.account;
            return self.read(move |conn| dry_run::count_upload_in(conn, account, &plan)).await;
        }
        let ctx = ctx.clone();
        let (answer, answered) = tokio::sync::oneshot::channel();
        let inner = Arc::clone(&self.inner);
        // Not awaited: the answer comes through the channel as soon as the upload has
        // committed; the same task then rebuilds whatever indexes the load dropped,
        // still holding the writer, so no other write sees the table without them.
        drop(tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer();
            let applied = apply_large_upload(&mut conn, &inner, &ctx, plan, dry_run);
            let committed = applied.is_ok() && !dry_run;
            let _ = answer.send(applied);
            if committed {
                rebuild_after_bulk_load(&mut conn, &inner);
            }
            drop(conn);
            let _ = inner.committed.try_send(());
        }));
        answered.await.map_err(|_| StoreError::Internal("the upload's database task ended without an answer".into()))?
    }

    async fn delete_identities(
        &self,
        ctx: &ChangeContext,
        plan: DeletePlan,
        dry_run: bool,
    ) -> StoreResult<DeleteSummary> {
        let ctx = ctx.clone();
        self.write(move |conn, _| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(map_err)?;
            let now = now_micros();
            let mut summary = DeleteSummary { received: plan.received, duplicates: plan.duplicates, ..Default::default() };
            {
                let mut find = tx
                    .prepare_cached(
                        "SELECT id, identity, email FROM identities WHERE account_id = ?1 AND integration_id = ?2 AND identity_key = ?3",
                    )
                    .map_err(map_err)?;
                let mut delete = tx.prepare_cached("DELETE FROM identities WHERE id = ?1").map_err(map_err)?;
                let mut audit_delete = tx.prepare_cached(&audit_delete_sql()).map_err(map_err)?;
                for row in &plan.rows {
                    let found: Option<(i64, String, String)> = find
                        .query_row(params![ctx.account.0, row.integration_id, row.key()], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        })
                        .optional()
                        .map_err(map_err)?;
                    match found {
                        Some((id, _, _)) => {
                            audit_delete
                                .execute(params![ctx.account.0, now, ctx.key_id, ctx.request_id, id])
                                .map_err(map_err)?;
                            delete.execute([id]).map_err(map_err)?;
                            summary.deleted += 1;
                        }
                        None => summary.not_found += 1,
                    }
                }
            }
            bump_version(&tx, ctx.account)?;
            if dry_run {
                tx.rollback().map_err(map_err)?;
            } else {
                close_change_set(&tx, &ctx, ChangeKind::Delete).map_err(map_err)?;
                tx.commit().map_err(map_err)?;
            }
            Ok(summary)
        })
        .await
    }

    async fn list_identities(&self, account: AccountId, query: IdentityQuery) -> StoreResult<IdentityPage> {
        self.read(move |conn| list_identities_in(conn, account, &query)).await
    }

    async fn list_audit(&self, account: AccountId, query: AuditQuery) -> StoreResult<AuditPage> {
        self.read(move |conn| list_audit_in(conn, account, &query)).await
    }

    async fn export_batch(
        &self,
        account: AccountId,
        query: IdentityQuery,
        encode: ExportEncoder,
    ) -> StoreResult<ExportBatch> {
        self.read(move |conn| export_batch_in(conn, account, &query, &*encode)).await
    }

    async fn ensure_secret(&self, name: &str) -> StoreResult<Vec<u8>> {
        let name = name.to_string();
        self.write(move |conn, _| secrets::ensure_secret_in(conn, &name).map_err(map_err)).await
    }

    async fn identities_version(&self, account: AccountId) -> StoreResult<i64> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT identities_version FROM accounts WHERE id = ?1")
                .and_then(|mut s| s.query_row([account.0], |r| r.get(0)).optional())
                .map(|v| v.unwrap_or(0))
                .map_err(map_err)
        })
        .await
    }
}

pub(crate) fn integration_infos_in(conn: &Connection, account: AccountId) -> StoreResult<Vec<IntegrationInfo>> {
    let mut stmt = conn
        .prepare_cached("SELECT id, application_type FROM integrations WHERE account_id = ?1 ORDER BY id")
        .map_err(map_err)?;
    let rows = stmt
        .query_map([account.0], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .map_err(map_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(map_err)?;
    rows.into_iter().map(|(id, t)| Ok(IntegrationInfo { id, application_type: parse_type(&t)? })).collect()
}

fn apply_upload_group(conn: &mut Connection, inner: &Inner, group: Vec<QueuedUpload>) {
    tracing::trace!(uploads = group.len(), "group commit");
    let fail_after = inner.fail_after_rows.load(Ordering::SeqCst);
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let error = map_err(e);
            for upload in group {
                let _ = upload.answer.send(Err(error.clone()));
            }
            return;
        }
    };
    let mut outcomes = Vec::with_capacity(group.len());
    let mut broken = None;
    let mut group = group.into_iter();
    for QueuedUpload { ctx, plan, answer } in group.by_ref() {
        let outcome = tx.execute_batch("SAVEPOINT upload").map_err(map_err).and_then(|()| {
            let applied = apply_upload_in(&tx, &ctx, plan, fail_after).and_then(|summary| {
                bump_version(&tx, ctx.account)?;
                Ok(summary)
            });
            let end = if applied.is_ok() { "RELEASE upload" } else { "ROLLBACK TO upload; RELEASE upload" };
            tx.execute_batch(end).map_err(map_err)?;
            Ok(applied)
        });
        match outcome {
            Ok(applied) => outcomes.push((answer, applied)),
            Err(e) => {
                // The savepoint itself failed: the transaction can no longer be trusted.
                broken = Some(e);
                outcomes.push((answer, Err(StoreError::Internal("aborted with its group".into()))));
                break;
            }
        }
    }
    for left in group {
        outcomes.push((left.answer, Err(StoreError::Internal("aborted with its group".into()))));
    }
    let committed = match broken {
        Some(e) => Err(e),
        None => tx.commit().map_err(map_err),
    };
    for (answer, applied) in outcomes {
        let _ = answer.send(match &committed {
            Ok(()) => applied,
            Err(e) => Err(e.clone()),
        });
    }
}

/// The row an ordered walk of the unique index stands on.
#[derive(Default)]
struct WalkedIdentity {
    present: bool,
    exhausted: bool,
    key: String,
    id: i64,
    developer_id: i64,
    email: String,
    identity: String,
}

impl WalkedIdentity {
    fn read(&mut self, r: &rusqlite::Row<'_>) -> StoreResult<()> {
        for (buffer, column) in [(&mut self.key, 0), (&mut self.email, 3), (&mut self.identity, 4)] {
            buffer.clear();
            buffer.push_str(text_column(r, column)?);
        }
        self.id = r.get(1).map_err(map_err)?;
        self.developer_id = r.get(2).map_err(map_err)?;
        self.present = true;
        Ok(())
    }
}

/// An upload in a transaction of its own (large ones, and dry runs).
fn apply_large_upload(
    conn: &mut Connection,
    inner: &Inner,
    ctx: &ChangeContext,
    plan: UploadPlan,
    dry_run: bool,
) -> StoreResult<UploadSummary> {
    let fail_after = inner.fail_after_rows.load(Ordering::SeqCst);
    // Foreign keys cost two lookups per inserted row; a bulk load checks its parents
    // once instead (`verify_parents`), inside the same write transaction, where nobody
    // can delete them. The setting only changes outside a transaction, and is restored
    // whatever happens.
    let parents_checked_once = checks_parents_itself(plan.rows.len());
    if parents_checked_once {
        conn.execute_batch("PRAGMA foreign_keys=OFF").map_err(map_err)?;
    }
    let applied = (|| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(map_err)?;
        let summary = apply_upload_in(&tx, ctx, plan, fail_after)?;
        bump_version(&tx, ctx.account)?;
        let committing = std::time::Instant::now();
        if dry_run {
            // Also brings back any index the load dropped, with nothing to rebuild.
            tx.rollback().map_err(map_err)?;
        } else {
            tx.commit().map_err(map_err)?;
        }
        tracing::debug!(commit_ms = committing.elapsed().as_millis() as u64, "upload committed");
        Ok(summary)
    })();
    if parents_checked_once && let Err(e) = conn.execute_batch("PRAGMA foreign_keys=ON") {
        tracing::error!(error = %e, "could not switch foreign keys back on after a bulk load");
        return Err(map_err(e));
    }
    applied
}

#[allow(unused_assignments)] // see `walk = None` below
/// An upload's rows, then its change set: the one place both upload paths (grouped and
/// alone) record it.
fn apply_upload_in(
    tx: &Transaction<'_>,
    ctx: &ChangeContext,
    plan: UploadPlan,
    fail_after: u64,
) -> StoreResult<UploadSummary> {
    let kind = crate::changes::upload_change_kind(&plan);
    let summary = apply_upload_rows(tx, ctx, plan, fail_after)?;
    close_change_set(tx, ctx, kind).map_err(map_err)?;
    Ok(summary)
}

fn apply_upload_rows(
    tx: &Transaction<'_>,
    ctx: &ChangeContext,
    plan: UploadPlan,
    fail_after: u64,
) -> StoreResult<UploadSummary> {
    let started = std::time::Instant::now();
    let now = now_micros();
    let mut summary = UploadSummary { received: plan.received, duplicates: plan.duplicates, ..Default::default() };
    let created_above: i64 =
        tx.query_row("SELECT COALESCE(MAX(id), 0) FROM identities", [], |r| r.get(0)).map_err(map_err)?;

    // The previous endpoints may name a type with no integration yet. Another upload
    // may have created one since validation; then that one is used.
    let mut new_ids: HashMap<ApplicationType, IntegrationId> = HashMap::new();
    for t in &plan.new_integrations {
        let existing: Option<i64> = tx
            .query_row(
                "SELECT MIN(id) FROM integrations WHERE account_id = ?1 AND application_type = ?2",
                params![ctx.account.0, t.as_str()],
                |r| r.get(0),
            )
            .map_err(map_err)?;
        let id = match existing {
            Some(id) => id,
            None => {
                let created = insert_integration(tx, ctx, None, *t, &default_integration_name(*t), now)?;
                let id = created.id;
                summary.integrations_created.push(created);
                id
            }
        };
        new_ids.insert(*t, id);
    }

    let mut find_developer =
        tx.prepare_cached("SELECT id FROM developers WHERE account_id = ?1 AND email = ?2").map_err(map_err)?;
    let mut insert_developer = tx
        .prepare_cached("INSERT INTO developers (account_id, email, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)")
        .map_err(map_err)?;
    let mut find_identity = tx
        .prepare_cached(
            "SELECT id, developer_id, email, identity, locked FROM identities WHERE account_id = ?1 AND integration_id = ?2 AND identity_key = ?3",
        )
        .map_err(map_err)?;
    let mut insert_identity = tx
        .prepare_cached(
            "INSERT INTO identities (account_id, integration_id, identity_key, identity, developer_id, email, created_at, updated_at,
                                     source, source_key_id, locked)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10)",
        )
        .map_err(map_err)?;
    let mut reassign = tx
        .prepare_cached(
            "UPDATE identities SET developer_id = ?1, email = ?2, identity = ?3, updated_at = ?4,
                                   source = ?6, source_key_id = ?7, locked = ?8
             WHERE id = ?5",
        )
        .map_err(map_err)?;
    let mut audit = tx.prepare_cached(INSERT_AUDIT).map_err(map_err)?;
    let mut audit_move = tx.prepare_cached(&audit_move_sql()).map_err(map_err)?;
    let mut lock_of = tx.prepare_cached("SELECT locked FROM identities WHERE id = ?1").map_err(map_err)?;
    let mut respell =
        tx.prepare_cached("UPDATE identities SET identity = ?1, updated_at = ?2 WHERE id = ?3").map_err(map_err)?;

    let integration_of = |row: &devid_core::plan::PlannedRow| match row.integration {
        IntegrationRef::Existing(id) => id,
        IntegrationRef::New(t) => new_ids.get(&t).copied().unwrap_or_default(),
    };

    // Developers first, in email order, and rows in (integration, identity) order: the
    // B-tree pages touched then follow one another instead of jumping across a
    // million-row index, which is most of the cost of a large upload.
    //
    // The plan lists each email once and every row names its email's position there, so
    // developer ids live in a vector indexed by it: no per-row hashing (hashing emails
    // was 15 % of a million-row upload). Equal texts listed twice would still get one
    // developer: they meet when sorted.
    let mut developers: Vec<i64> = vec![0; plan.emails.len()];
    let mut emails: Vec<(&str, usize)> = plan.emails.iter().enumerate().map(|(i, e)| (&**e, i)).collect();
    emails.sort_unstable();
    // Many emails: one ordered walk of the account's developers beside them, as for
    // identities below, instead of a lookup each.
    let mut developer_walk = match emails.len() {
        n if n >= MERGE_MIN_ROWS => Some(
            tx.prepare_cached("SELECT email, id FROM developers WHERE account_id = ?1 AND email >= ?2 ORDER BY email")
                .map_err(map_err)?,
        ),
        _ => None,
    };
    let mut walked_developers = match (developer_walk.as_mut(), emails.first()) {
        (Some(stmt), Some((first, _))) => Some(stmt.query(params![ctx.account.0, first]).map_err(map_err)?),
        _ => None,
    };
    let (mut walked_email, mut walked_id, mut walked_present) = (String::new(), 0i64, false);
    let mut previous: Option<(&str, i64)> = None;
    for (email, listed_at) in emails {
        if let Some((text, id)) = previous
            && text == email
        {
            developers[listed_at] = id;
            continue;
        }
        let found = match walked_developers.as_mut() {
            Some(walk) => {
                // Developers this upload inserted show up as smaller emails: passed over.
                while !walked_present || walked_email.as_str() < email {
                    match walk.next().map_err(map_err)? {
                        Some(r) => {
                            walked_email.clear();
                            walked_email.push_str(text_column(r, 0)?);
                            walked_id = r.get(1).map_err(map_err)?;
                            walked_present = true;
                        }
                        None => {
                            walked_present = false;
                            break;
                        }
                    }
                }
                (walked_present && walked_email == email).then_some(walked_id)
            }
            None => find_developer
                .query_row(params![ctx.account.0, email], |r| r.get::<_, i64>(0))
                .optional()
                .map_err(map_err)?,
        };
        let id = match found {
            Some(id) => id,
            None => {
                insert_developer.execute(params![ctx.account.0, email, now]).map_err(map_err)?;
                summary.developers_created += 1;
                tx.last_insert_rowid()
            }
        };
        developers[listed_at] = id;
        previous = Some((email, id));
    }
    drop(walked_developers);
    drop(developer_walk);
    let developers_done = std::time::Instant::now();
    // The plan comes in (integration, key) order already; only integrations created
    // above (their rows sort after every existing one's in the plan) need sorting in.
    let mut order: Vec<usize> = (0..plan.rows.len()).collect();
    if !plan.new_integrations.is_empty() {
        order.sort_unstable_by(|a, b| {
            let (a, b) = (&plan.rows[*a], &plan.rows[*b]);
            integration_of(a).cmp(&integration_of(b)).then_with(|| a.key().cmp(b.key()))
        });
    }

    if checks_parents_itself(plan.rows.len()) {
        verify_parents(tx, ctx.account, plan.rows.iter().map(integration_of))?;
    }
    drop_secondary_indexes_for_bulk_load(tx, plan.rows.len(), created_above)?;

    // Rows of one integration arrive sorted by identity key. For many of them, one
    // ordered walk of the unique index beside the rows beats a point lookup per row.
    let mut rows_in_integration: foldhash::HashMap<IntegrationId, usize> = foldhash::HashMap::default();
    for row in &plan.rows {
        *rows_in_integration.entry(integration_of(row)).or_default() += 1;
    }
    let mut scan = tx
        .prepare_cached(
            "SELECT identity_key, id, developer_id, email, identity FROM identities
             WHERE account_id = ?1 AND integration_id = ?2 AND identity_key >= ?3 ORDER BY identity_key",
        )
        .map_err(map_err)?;
    let (source, lock, force) = (plan.provenance.as_str(), plan.lock, plan.force);
    let (mut locked_total, mut locked_rows) = (0u64, Vec::new());
    let mut walking: Option<IntegrationId> = None;
    let mut walk: Option<rusqlite::Rows<'_>> = None;
    // The walk's current row; its buffers are reused from row to row.
    let mut ahead = WalkedIdentity::default();
    let mut sequential = false;

    for (written, row) in order.into_iter().map(|i| &plan.rows[i]).enumerate() {
        if fail_after > 0 && written as u64 >= fail_after {
            return Err(StoreError::Internal(format!("injected failure after {written} rows")));
        }
        let integration_id = integration_of(row);
        let Some(&developer_id) = developers.get(row.developer as usize) else {
            return Err(StoreError::Internal(format!(
                "the upload plan names developer {} of {}",
                row.developer,
                developers.len()
            )));
        };
        if walking != Some(integration_id) {
            sequential = rows_in_integration.get(&integration_id).copied().unwrap_or(0) >= MERGE_MIN_ROWS;
            // Assigning (not `take()`) ends the previous walk's borrow of `scan`.
            walk = None;
            if sequential {
                walk = Some(scan.query(params![ctx.account.0, integration_id, row.key()]).map_err(map_err)?);
            }
            walking = Some(integration_id);
            ahead.present = false;
            ahead.exhausted = false;
        }
        let existing: Option<(i64, i64, String, String, Option<bool>)> = if sequential {
            // Rows this upload inserted may show up in the walk; they sort before the
            // current key and are passed over like any other smaller key.
            while !ahead.exhausted && (!ahead.present || ahead.key.as_str() < row.key()) {
                let next = match walk.as_mut() {
                    Some(rows) => rows.next().map_err(map_err)?,
                    None => None,
                };
                match next {
                    Some(r) => ahead.read(r)?,
                    None => {
                        ahead.present = false;
                        ahead.exhausted = true;
                    }
                }
            }
            if ahead.present && ahead.key == row.key() {
                if ahead.developer_id == developer_id && *ahead.identity == *row.identity {
                    // Unchanged, the common case of a re-upload: nothing to copy.
                    summary.unchanged += 1;
                    continue;
                }
                // Whether it is locked matters only for a move: read then, by rowid, so
                // that the walk over a re-upload's unchanged rows reads no more than before.
                Some((ahead.id, ahead.developer_id, ahead.email.clone(), ahead.identity.clone(), None))
            } else {
                None
            }
        } else {
            find_identity
                .query_row(params![ctx.account.0, integration_id, row.key()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, Some(r.get::<_, i64>(4)? != 0)))
                })
                .optional()
                .map_err(map_err)?
        };
        match existing {
            None => {
                insert_identity
                    .execute(params![
                        ctx.account.0,
                        integration_id,
                        row.key(),
                        &*row.identity,
                        developer_id,
                        &*row.email,
                        now,
                        source,
                        ctx.key_id,
                        lock
                    ])
                    .map_err(|e| match map_err(e) {
                        StoreError::Conflict(_) => {
                            StoreError::Conflict(format!("integration {integration_id} no longer exists; upload again"))
                        }
                        other => other,
                    })?;
                summary.created += 1;
            }
            Some((id, current_developer, old_email, _, locked)) if current_developer != developer_id => {
                let locked = match locked {
                    Some(locked) => locked,
                    None => lock_of.query_row([id], |r| r.get::<_, i64>(0)).map_err(map_err)? != 0,
                };
                if locked && !force {
                    locked_total += 1;
                    if locked_rows.len() < MAX_LOCKED_SAMPLES {
                        locked_rows.push(LockedMove {
                            integration_id,
                            identity: row.identity.to_string(),
                            locked_to: old_email,
                            requested: row.email.to_string(),
                        });
                    }
                    continue;
                }
                audit_move
                    .execute(params![ctx.account.0, now, ctx.key_id, ctx.request_id, &*row.identity, &*row.email, id])
                    .map_err(map_err)?;
                reassign
                    .execute(params![developer_id, &*row.email, &*row.identity, now, id, source, ctx.key_id, lock])
                    .map_err(map_err)?;
                summary.reassigned += 1;
            }
            Some((id, _, email, shown, _)) => {
                if *shown != *row.identity {
                    respell.execute(params![&*row.identity, now, id]).map_err(map_err)?;
                    let detail = serde_json::json!({"before": shown}).to_string();
                    write_audit(
                        &mut audit,
                        ctx,
                        now,
                        Audit {
                            action: "identity.updated",
                            integration_id: Some(integration_id),
                            identity: Some(&*row.identity),
                            old_email: Some(&email),
                            new_email: Some(&email),
                            detail: Some(&detail),
                        },
                    )
                    .map_err(map_err)?;
                }
                summary.unchanged += 1;
            }
        }
    }
    if locked_total > 0 {
        // The caller's transaction rolls back: nothing of this upload stays.
        return Err(StoreError::Locked { total: locked_total, rows: locked_rows });
    }
    drop(walk);
    drop(scan);
    drop(audit);
    // The rows are written: free them before the audit copy and the commit grow the
    // page cache, so that the two never add up.
    drop(developers);
    drop(plan);
    if summary.created > 0 {
        // One statement for every creation: SQLite copies the rows it just wrote,
        // instead of Rust binding seven values per row (half the cost, measured).
        // New rows take ids above the previous largest one, in the order written.
        tx.prepare_cached(AUDIT_CREATED_SINCE)
            .and_then(|mut s| s.execute(params![now, ctx.key_id, ctx.request_id, ctx.account.0, created_above]))
            .map_err(map_err)?;
    }
    tracing::debug!(
        developers_ms = (developers_done - started).as_millis() as u64,
        rows_ms = developers_done.elapsed().as_millis() as u64,
        "upload written"
    );
    Ok(summary)
}

/// Uploads this large run with foreign keys off and check their parents once.
fn checks_parents_itself(rows: usize) -> bool {
    rows >= BULK_MIN_ROWS
}

/// What the foreign keys of `identities` would check row by row, once per upload: every
/// integration exists in the account (developers are found or made by the upload in
/// the same transaction).
fn verify_parents(
    tx: &Transaction<'_>,
    account: AccountId,
    integrations: impl Iterator<Item = IntegrationId>,
) -> StoreResult<()> {
    let mut distinct: Vec<IntegrationId> = integrations.collect::<foldhash::HashSet<_>>().into_iter().collect();
    distinct.sort_unstable();
    let mut exists =
        tx.prepare_cached("SELECT 1 FROM integrations WHERE account_id = ?1 AND id = ?2").map_err(map_err)?;
    for id in distinct {
        if !exists.exists(params![account.0, id]).map_err(map_err)? {
            return Err(StoreError::Conflict(format!("integration {id} no longer exists; upload again")));
        }
    }
    Ok(())
}

/// Rows of one integration from which an upload walks the unique index instead of
/// looking each identity up.
const MERGE_MIN_ROWS: usize = 5_000;

/// Uploads at least this large may load without secondary indexes.
const BULK_MIN_ROWS: usize = 50_000;

/// Loading many rows into a comparatively small table (identities, and separately the
/// audit trail): its secondary indexes are dropped and built again afterwards — one sort
/// each instead of a million B-tree insertions — by [`rebuild_pending_indexes`], which
/// finds them in `pending_indexes`. Dropped and listed inside the upload's transaction,
/// so a failure or a dry run restores them and leaves nothing listed.
fn drop_secondary_indexes_for_bulk_load(tx: &Transaction<'_>, rows: usize, identities_before: i64) -> StoreResult<()> {
    if rows < BULK_MIN_ROWS {
        return Ok(());
    }
    let audit_before: i64 =
        tx.query_row("SELECT COALESCE(MAX(id), 0) FROM audit_events", [], |r| r.get(0)).map_err(map_err)?;
    // The unique index stays: the upload walks it, and it is what keeps identities unique.
    let mut tables = Vec::new();
    if rows as i64 > identities_before {
        tables.push("identities");
    }
    if rows as i64 > audit_before {
        tables.push("audit_events");
    }
    for table in tables {
        drop_indexes_for_bulk_load(tx, table, &["identities_by_key"])?;
    }
    Ok(())
}

/// After a committed write has been answered: builds the indexes a bulk load dropped,
/// if it dropped any, still holding the writer so no other write runs without them (a
/// failure is retried by the next write, see `Inner::writer`); then lists the large
/// change set's addresses.
fn rebuild_after_bulk_load(conn: &mut Connection, inner: &Inner) {
    rebuild_dropped_indexes(conn, inner);
    list_change_set_emails_after_answer(conn, inner);
}

/// Lists the addresses of a large change set after its write was answered (see
/// `changes::list_pending_change_set_emails`); a failure is logged, and retried after
/// the next large write or at start-up.
fn list_change_set_emails_after_answer(conn: &mut Connection, inner: &Inner) {
    if !changes::change_set_emails_pending(conn) {
        return;
    }
    match changes::list_pending_change_set_emails(conn) {
        Ok(_) => {
            let _ = inner.committed.try_send(());
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not list a change set's addresses; the change feed reads its events meanwhile")
        }
    }
}

/// Whether a bulk load or a large revert left dropped indexes to build again.
fn indexes_listed_as_dropped(conn: &Connection) -> bool {
    conn.query_row("SELECT EXISTS (SELECT 1 FROM pending_indexes)", [], |r| r.get::<_, bool>(0)).unwrap_or(true)
}

/// The first half of [`rebuild_after_bulk_load`].
fn rebuild_dropped_indexes(conn: &mut Connection, inner: &Inner) {
    // Most large writes drop no index; only a bulk load or a large revert leaves some listed.
    if !indexes_listed_as_dropped(conn) {
        return;
    }
    let _ = inner.committed.try_send(());
    // Give back what the write freed first: the index builds allocate their own
    // (large) buffers, which would not reuse it.
    crate::memory::return_free_memory();
    let rebuilt = if inner.fail_next_rebuild.swap(false, Ordering::SeqCst) {
        Err(StoreError::Internal("injected rebuild failure".into()))
    } else {
        rebuild_pending_indexes(conn)
    };
    match rebuilt {
        // The builds' sort buffers, freed now, would otherwise stay with the process
        // until the next large write.
        Ok(built) if built > 0 => crate::memory::return_free_memory(),
        Ok(_) => {}
        Err(e) => {
            inner.indexes_pending.store(true, Ordering::SeqCst);
            tracing::error!(error = %e, "could not rebuild the indexes a bulk load dropped; the next write retries");
        }
    }
}

/// Drops every index of `table` but those in `keep`, noting each in `pending_indexes`
/// (in the caller's transaction) for [`rebuild_pending_indexes`] to build again.
fn drop_indexes_for_bulk_load(tx: &Transaction<'_>, table: &str, keep: &[&str]) -> StoreResult<()> {
    let indexes = tx
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL")
        .and_then(|mut stmt| {
            stmt.query_map([table], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(map_err)?;
    let mut pending = tx.prepare("INSERT INTO pending_indexes (name, sql) VALUES (?1, ?2)").map_err(map_err)?;
    for (name, sql) in indexes.into_iter().filter(|(name, _)| !keep.contains(&name.as_str())) {
        tx.execute_batch(&format!("DROP INDEX \"{name}\"")).map_err(map_err)?;
        pending.execute(params![name, sql]).map_err(map_err)?;
    }
    Ok(())
}

/// Builds the indexes a bulk load dropped, in a transaction of its own. The load itself
/// has committed and been answered by then; until this commits, readers get the same
/// results, found without those indexes. Also run at start-up, for a load whose process
/// stopped in between: the list is written in the load's own transaction.
fn rebuild_pending_indexes(conn: &mut Connection) -> StoreResult<usize> {
    let started = std::time::Instant::now();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(map_err)?;
    let pending = tx
        .prepare("SELECT name, sql FROM pending_indexes ORDER BY name")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?.collect::<Result<Vec<_>, _>>()
        })
        .map_err(map_err)?;
    for (name, sql) in &pending {
        // Skipped if it exists: a migration run since the stop may have made it anew.
        let exists: bool = tx
            .query_row("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?1)", [name], |r| {
                r.get(0)
            })
            .map_err(map_err)?;
        if !exists {
            tx.execute_batch(sql).map_err(map_err)?;
        }
        tx.execute("DELETE FROM pending_indexes WHERE name = ?1", [name]).map_err(map_err)?;
    }
    tx.commit().map_err(map_err)?;
    if !pending.is_empty() {
        tracing::debug!(indexes = pending.len(), ms = started.elapsed().as_millis() as u64, "indexes rebuilt");
    }
    Ok(pending.len())
}

fn to_values(args: &[Arg]) -> Vec<Value> {
    args.iter()
        .map(|a| match a {
            Arg::Int(i) => Value::Integer(*i),
            Arg::Text(t) => Value::Text(t.clone()),
        })
        .collect()
}

fn list_identities_in(conn: &Connection, account: AccountId, q: &IdentityQuery) -> StoreResult<IdentityPage> {
    let built = sql::identity_sql(Dialect::Sqlite, account, q).map_err(StoreError::Invalid)?;
    let total: i64 = match &built.count {
        Some(count) => conn
            .query_row(&count.text, rusqlite::params_from_iter(to_values(&count.args)), |r| r.get(0))
            .map_err(map_err)?,
        None => 0,
    };
    let mut stmt = conn.prepare_cached(&built.page.text).map_err(map_err)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(to_values(&built.page.args))).map_err(map_err)?;
    let mut records = Vec::new();
    let mut first_cursor = None;
    let mut next_cursor = None;
    let mut has_next = false;
    while let Some(r) = rows.next().map_err(map_err)? {
        if built.limit.is_some_and(|l| records.len() as u64 >= l) {
            has_next = true;
            break;
        }
        let t: String = r.get(2).map_err(map_err)?;
        let updated_at: i64 = r.get(5).map_err(map_err)?;
        let identity_key: String = r.get(6).map_err(map_err)?;
        let record = IdentityRecord {
            email: r.get(0).map_err(map_err)?,
            integration_id: r.get(1).map_err(map_err)?,
            application_type: parse_type(&t)?,
            identity: r.get(3).map_err(map_err)?,
            created_at: to_rfc3339(r.get(4).map_err(map_err)?),
            updated_at: to_rfc3339(updated_at),
            source: r.get(7).map_err(map_err)?,
            locked: r.get::<_, i64>(8).map_err(map_err)? != 0,
        };
        next_cursor = Some(sql::next_cursor(q.sort, &record.email, record.integration_id, &identity_key, updated_at));
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

/// A text column borrowed from the row, without copying it.
fn text_column<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> StoreResult<&'r str> {
    r.get_ref(i).map_err(map_err)?.as_str().map_err(|e| StoreError::Internal(format!("column {i}: {e}")))
}

fn export_batch_in(
    conn: &Connection,
    account: AccountId,
    q: &IdentityQuery,
    encode: &(dyn Fn(&ExportRow<'_>, &mut Vec<u8>) + Send + Sync),
) -> StoreResult<ExportBatch> {
    let q = IdentityQuery { count_total: false, ..q.clone() };
    let built = sql::identity_sql(Dialect::Sqlite, account, &q).map_err(StoreError::Invalid)?;
    let limit = built.limit.unwrap_or(u64::MAX);
    let mut stmt = conn.prepare_cached(&built.page.text).map_err(map_err)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(to_values(&built.page.args))).map_err(map_err)?;
    let mut bytes = Vec::with_capacity(limit.min(10_000) as usize * 96);
    let (mut n, mut last, mut has_next) = (0u64, None, false);
    while let Some(r) = rows.next().map_err(map_err)? {
        if n >= limit {
            has_next = true;
            break;
        }
        let row = ExportRow {
            email: text_column(r, 0)?,
            integration_id: r.get(1).map_err(map_err)?,
            application_type: text_column(r, 2)?,
            identity: text_column(r, 3)?,
            updated_at: r.get(5).map_err(map_err)?,
            source: text_column(r, 7)?,
            locked: r.get::<_, i64>(8).map_err(map_err)? != 0,
        };
        encode(&row, &mut bytes);
        n += 1;
        if n == limit {
            last = Some(sql::next_cursor(q.sort, row.email, row.integration_id, text_column(r, 6)?, row.updated_at));
        }
    }
    Ok(ExportBatch { bytes, rows: n, next_cursor: if has_next { last } else { None } })
}

/// An audit event read in the order of [`sql::AUDIT_COLUMNS`].
fn audit_event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEvent> {
    Ok(AuditEvent {
        id: r.get(0)?,
        at: to_rfc3339(r.get(1)?),
        action: r.get(2)?,
        key_id: r.get(3)?,
        request_id: r.get(4)?,
        integration_id: r.get(5)?,
        identity: r.get(6)?,
        old_email: r.get(7)?,
        new_email: r.get(8)?,
        detail: r.get(9)?,
    })
}

fn list_audit_in(conn: &Connection, account: AccountId, q: &AuditQuery) -> StoreResult<AuditPage> {
    let (count, page) = sql::audit_sql(Dialect::Sqlite, account, q);
    let total: i64 = conn
        .query_row(&count.text, rusqlite::params_from_iter(to_values(&count.args)), |r| r.get(0))
        .map_err(map_err)?;
    let mut stmt = conn.prepare(&page.text).map_err(map_err)?;
    let mut events = stmt
        .query_map(rusqlite::params_from_iter(to_values(&page.args)), audit_event_from_row)
        .map_err(map_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(map_err)?;
    let has_next = events.len() as u64 > q.page_size;
    events.truncate(q.page_size as usize);
    Ok(AuditPage { events, total_count: total.max(0) as u64, has_next })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The creation copy must walk the new rows by id, never sort them: a sort holds
    /// every created row in memory at once.
    #[test]
    fn creation_audit_copy_walks_rows_in_id_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path().join("devid.db")).expect("open");
        let conn = store.inner.writer.lock().expect("writer");
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {AUDIT_CREATED_SINCE}")).expect("explain");
        let plan: Vec<String> = stmt
            .query_map(params![0, "k", "r", 1, 0], |r| r.get::<_, String>(3))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("plan");
        assert!(plan.iter().any(|step| step.contains("INTEGER PRIMARY KEY")), "{plan:?}");
        assert!(!plan.iter().any(|step| step.contains("TEMP B-TREE")), "{plan:?}");
    }
}

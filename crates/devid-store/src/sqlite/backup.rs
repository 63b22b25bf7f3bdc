//! Copies of a live SQLite database, and the checkpoint a clean stop ends with.
//!
//! A backup is one read transaction (`VACUUM INTO`), so it is a consistent snapshot of
//! committed data even while a server writes, and in WAL mode it never blocks that
//! server's writer. The copy is written beside its destination under a temporary name,
//! checked, flushed to disk and only then renamed: a backup that stops half-way never
//! leaves a file under the name the operator asked for.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::{BUSY_TIMEOUT, map_err};
use crate::{StoreError, StoreResult};

/// What a finished backup holds.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupSummary {
    pub bytes: u64,
    pub accounts: i64,
    pub identities: i64,
    pub seconds: f64,
}

/// Writes a consistent snapshot of the database at `source` to the new file `dest`.
///
/// `NotFound` when `source` does not exist (a backup never creates a database),
/// `Conflict` when `dest` already exists, `Unavailable` when either file cannot be
/// read or written, `Internal` when the copy fails its integrity check.
pub fn backup(source: &Path, dest: &Path) -> StoreResult<BackupSummary> {
    let started = Instant::now();
    if !source.is_file() {
        return Err(StoreError::NotFound(format!(
            "There is no SQLite database at {}. Check --database (or DEVID_DATABASE).",
            source.display()
        )));
    }
    if dest.exists() {
        return Err(StoreError::Conflict(format!(
            "{} already exists. Choose a new file name for the backup, or remove the old file first.",
            dest.display()
        )));
    }
    let partial = partial_name(dest);
    // A leftover from a backup that was interrupted; it was never a complete copy.
    let _ = std::fs::remove_file(&partial);
    let result = copy_and_check(source, &partial);
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    // VACUUM INTO does not fsync its output; the backup must survive a power cut
    // before it is given its final name.
    let io = |what: &str, e: std::io::Error| StoreError::Unavailable(format!("cannot {what}: {e}"));
    std::fs::File::open(&partial).and_then(|f| f.sync_all()).map_err(|e| io("flush the backup to disk", e))?;
    std::fs::rename(&partial, dest).map_err(|e| io(&format!("rename the backup to {}", dest.display()), e))?;
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename itself is durable only once the directory is flushed.
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    let bytes = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
    Ok(BackupSummary { bytes, seconds: started.elapsed().as_secs_f64(), ..summary })
}

fn partial_name(dest: &Path) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "backup".into());
    dest.with_file_name(format!(".{name}.partial"))
}

fn copy_and_check(source: &Path, partial: &Path) -> StoreResult<BackupSummary> {
    // Read-write without CREATE: SQLite must be able to join the WAL of a live
    // server, and a mistyped path must not become an empty database.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(source, flags)
        .map_err(|e| StoreError::Unavailable(format!("cannot open SQLite database {}: {e}", source.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
    let target = partial.to_string_lossy().into_owned();
    conn.execute("VACUUM INTO ?1", [&target]).map_err(|e| {
        StoreError::Unavailable(format!("cannot copy {} to {}: {e}", source.display(), partial.display()))
    })?;
    drop(conn);

    let copy = Connection::open_with_flags(partial, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| StoreError::Unavailable(format!("cannot reopen the backup {}: {e}", partial.display())))?;
    let check: String = copy.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(map_err)?;
    if check != "ok" {
        return Err(StoreError::Internal(format!(
            "The backup failed its integrity check ({check}); nothing was written. Check the source with `sqlite3 {} 'PRAGMA integrity_check'`.",
            source.display()
        )));
    }
    let count = |table: &str| -> StoreResult<i64> {
        copy.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).map_err(map_err)
    };
    Ok(BackupSummary { bytes: 0, accounts: count("accounts")?, identities: count("identities")?, seconds: 0.0 })
}

/// How long the final checkpoint keeps trying while other connections use the WAL.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Pause between two attempts of the final checkpoint.
const CLOSE_RETRY: Duration = Duration::from_millis(50);

/// Copies every committed page from the WAL into the database file and empties the
/// WAL, so that after a clean stop the database file alone is complete. Another
/// checkpoint running at that moment (the background one) makes SQLite answer "busy"
/// at once rather than wait, so this tries again for a while. If another process still
/// uses the database the WAL is left as it is (nothing is lost; it belongs with the
/// file) and a warning says so.
pub(crate) fn checkpoint_and_truncate(conn: &Connection, path: &Path) {
    let deadline = Instant::now() + CLOSE_WAIT;
    let _ = conn.busy_timeout(CLOSE_RETRY);
    let outcome = loop {
        let attempt = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0));
        let busy = match &attempt {
            Ok(busy) => *busy != 0,
            Err(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
        };
        if !busy || Instant::now() >= deadline {
            break attempt;
        }
        std::thread::sleep(CLOSE_RETRY);
    };
    let _ = conn.busy_timeout(BUSY_TIMEOUT);
    match outcome {
        Ok(0) => tracing::debug!(database = %path.display(), "checkpointed; the database file holds every write"),
        Ok(_) => tracing::warn!(
            database = %path.display(),
            "another process still uses the database, so its WAL file could not be emptied; keep the -wal file beside the database when copying it, or use `devid backup`"
        ),
        Err(e) => tracing::warn!(
            database = %path.display(),
            error = %e,
            "the final checkpoint failed; keep the -wal file beside the database when copying it, or use `devid backup`"
        ),
    }
}

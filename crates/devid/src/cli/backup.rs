//! `devid backup`: a consistent copy of a SQLite database, safe while `devid serve`
//! runs on it. PostgreSQL has its own tools (pg_dump), which devid points to rather
//! than wraps.

use std::path::Path;

use anyhow::{Result, bail};

use super::BackupArgs;

pub(super) fn backup(args: BackupArgs) -> Result<()> {
    if args.db.is_postgres() {
        bail!(
            "devid backup copies SQLite databases only. Back up PostgreSQL with `pg_dump --format=custom` (see \"Backup and restore\" in the README)."
        );
    }
    let source = Path::new(&args.db.database);
    let summary = devid_store::sqlite::backup::backup(source, &args.to)?;
    eprintln!(
        "Backed up {} to {}: {}, {}, {:.1} MiB in {:.1} s, a consistent snapshot. To restore it, stop devid, copy the backup over {} and delete {}-wal and {}-shm.",
        source.display(),
        args.to.display(),
        count(summary.accounts, "account"),
        count(summary.identities, "identity"),
        summary.bytes as f64 / 1_048_576.0,
        summary.seconds,
        source.display(),
        source.display(),
        source.display(),
    );
    Ok(())
}

/// "1 account", "2 accounts", "1 identity", "2 identities".
fn count(n: i64, noun: &str) -> String {
    match (n, noun.strip_suffix('y')) {
        (1, _) => format!("1 {noun}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        (_, None) => format!("{n} {noun}s"),
    }
}

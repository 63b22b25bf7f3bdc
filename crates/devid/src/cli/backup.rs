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
        "Backed up {} to {}: {} accounts, {} identities, {:.1} MiB in {:.1} s, a consistent snapshot. To restore it, stop devid, copy the backup over {} and delete {}-wal and {}-shm.",
        source.display(),
        args.to.display(),
        summary.accounts,
        summary.identities,
        summary.bytes as f64 / 1_048_576.0,
        summary.seconds,
        source.display(),
        source.display(),
        source.display(),
    );
    Ok(())
}

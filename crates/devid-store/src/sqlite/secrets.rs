//! The database's own secrets (see `Store::ensure_secret`).

use rusqlite::{Connection, params};

/// Creates the secret if no process has yet, then reads whichever one won.
pub(super) fn ensure_secret_in(conn: &Connection, name: &str) -> rusqlite::Result<Vec<u8>> {
    conn.execute(
        "INSERT OR IGNORE INTO server_secrets (name, secret, created_at) VALUES (?1, ?2, ?3)",
        params![name, crate::new_database_secret(), crate::now_micros()],
    )?;
    conn.query_row("SELECT secret FROM server_secrets WHERE name = ?1", [name], |r| r.get(0))
}

//! The session family on SQLite: one row per sign-in, read with its key on every use.

use async_trait::async_trait;
use devid_core::time::Micros;
use devid_core::types::scopes_from_string;
use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, map_err};
use crate::sessions::{NewSession, Session, SessionStore};
use crate::{AccountId, Principal, StoreError, StoreResult, now_micros};

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, session: NewSession) -> StoreResult<()> {
        self.write(move |conn, _| {
            let known: bool = conn
                .query_row("SELECT EXISTS (SELECT 1 FROM api_keys WHERE id = ?1)", [&session.key_id], |r| r.get(0))
                .map_err(map_err)?;
            if !known {
                return Err(StoreError::Invalid(format!("There is no API key {}.", session.key_id)));
            }
            let now = now_micros();
            let inserted = conn
                .execute(
                    "INSERT OR IGNORE INTO ui_sessions (token_hash, key_id, csrf_token, created_at, last_seen_at)
                     VALUES (?1, ?2, ?3, ?4, ?4)",
                    params![session.token_hash, session.key_id, session.csrf_token, now],
                )
                .map_err(map_err)?;
            if inserted == 0 {
                return Err(StoreError::Conflict("That session token is taken; draw another.".into()));
            }
            Ok(())
        })
        .await
    }

    async fn session(&self, token_hash: &str, idle: Micros) -> StoreResult<Option<Session>> {
        let token_hash = token_hash.to_string();
        let now = now_micros();
        let found = self
            .read({
                let token_hash = token_hash.clone();
                move |conn| {
                    conn.query_row(
                        "SELECT s.csrf_token, s.created_at, s.last_seen_at, k.id, k.scopes, k.expires_at, k.revoked_at, a.id, a.name
                         FROM ui_sessions s JOIN api_keys k ON k.id = s.key_id JOIN accounts a ON a.id = k.account_id
                         WHERE s.token_hash = ?1",
                        [&token_hash],
                        |r| {
                            Ok(SessionRow {
                                csrf_token: r.get(0)?,
                                created_at: r.get(1)?,
                                last_seen_at: r.get(2)?,
                                key_id: r.get(3)?,
                                scopes: r.get(4)?,
                                expires_at: r.get(5)?,
                                revoked_at: r.get(6)?,
                                account_id: r.get(7)?,
                                account_name: r.get(8)?,
                            })
                        },
                    )
                    .optional()
                    .map_err(map_err)
                }
            })
            .await?;
        let Some(row) = found else { return Ok(None) };
        let live = row.last_seen_at > now - idle
            && row.revoked_at.is_none()
            && row.expires_at.is_none_or(|expires| expires > now);
        if !live {
            self.end_session(&token_hash).await?;
            return Ok(None);
        }
        // A page view writes at most once a minute per session: reads stay reads.
        if now - row.last_seen_at > 60_000_000 {
            self.write(move |conn, _| {
                conn.execute("UPDATE ui_sessions SET last_seen_at = ?1 WHERE token_hash = ?2", params![now, token_hash])
                    .map_err(map_err)
            })
            .await?;
        }
        let scopes = scopes_from_string(&row.scopes).map_err(|e| StoreError::Internal(e.to_string()))?;
        Ok(Some(Session {
            principal: Principal {
                account: AccountId(row.account_id),
                account_name: row.account_name,
                key_id: row.key_id,
                scopes,
            },
            csrf_token: row.csrf_token,
            created_at: row.created_at,
        }))
    }

    async fn end_session(&self, token_hash: &str) -> StoreResult<()> {
        let token_hash = token_hash.to_string();
        self.write(move |conn, _| {
            conn.execute("DELETE FROM ui_sessions WHERE token_hash = ?1", [token_hash]).map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn purge_sessions(&self, idle: Micros) -> StoreResult<u64> {
        let before = now_micros() - idle;
        self.write(move |conn, _| {
            let n = conn.execute("DELETE FROM ui_sessions WHERE last_seen_at <= ?1", [before]).map_err(map_err)?;
            Ok(n as u64)
        })
        .await
    }
}

struct SessionRow {
    csrf_token: String,
    created_at: Micros,
    last_seen_at: Micros,
    key_id: String,
    scopes: String,
    expires_at: Option<Micros>,
    revoked_at: Option<Micros>,
    account_id: i64,
    account_name: String,
}

//! The session family on PostgreSQL: one row per sign-in, read with its key on every use.

use async_trait::async_trait;
use devid_core::time::Micros;
use devid_core::types::scopes_from_string;

use super::{PgResult, PostgresStore};
use crate::sessions::{NewSession, Session, SessionStore};
use crate::{AccountId, Principal, StoreError, StoreResult, now_micros};

#[async_trait]
impl SessionStore for PostgresStore {
    async fn create_session(&self, session: NewSession) -> StoreResult<()> {
        self.retrying(|| async {
            let client = self.client().await?;
            let known = client.query_opt("SELECT 1 FROM api_keys WHERE id = $1", &[&session.key_id]).await?.is_some();
            if !known {
                return Err(StoreError::Invalid(format!("There is no API key {}.", session.key_id)).into());
            }
            let now = now_micros();
            let inserted = client
                .execute(
                    "INSERT INTO ui_sessions (token_hash, key_id, csrf_token, created_at, last_seen_at)
                     VALUES ($1, $2, $3, $4, $4) ON CONFLICT (token_hash) DO NOTHING",
                    &[&session.token_hash, &session.key_id, &session.csrf_token, &now],
                )
                .await?;
            if inserted == 0 {
                return Err(StoreError::Conflict("That session token is taken; draw another.".into()).into());
            }
            Ok(())
        })
        .await
    }

    async fn session(&self, token_hash: &str, idle: Micros) -> StoreResult<Option<Session>> {
        let now = now_micros();
        let found = self
            .retrying(|| async {
                let client = self.client().await?;
                let row = client
                    .query_opt(
                        "SELECT s.csrf_token, s.created_at, s.last_seen_at, k.id, k.scopes, k.expires_at, k.revoked_at, a.id, a.name
                         FROM ui_sessions s JOIN api_keys k ON k.id = s.key_id JOIN accounts a ON a.id = k.account_id
                         WHERE s.token_hash = $1",
                        &[&token_hash],
                    )
                    .await?;
                let Some(r) = row else { return Ok(None) };
                let last_seen_at: Micros = r.try_get(2)?;
                let expires_at: Option<Micros> = r.try_get(5)?;
                let revoked_at: Option<Micros> = r.try_get(6)?;
                let live =
                    last_seen_at > now - idle && revoked_at.is_none() && expires_at.is_none_or(|expires| expires > now);
                if !live {
                    client.execute("DELETE FROM ui_sessions WHERE token_hash = $1", &[&token_hash]).await?;
                    return Ok(None);
                }
                // A page view writes at most once a minute per session.
                if now - last_seen_at > 60_000_000 {
                    client
                        .execute("UPDATE ui_sessions SET last_seen_at = $1 WHERE token_hash = $2", &[&now, &token_hash])
                        .await?;
                }
                let scopes: String = r.try_get(4)?;
                let scopes = scopes_from_string(&scopes).map_err(|e| StoreError::Internal(e.to_string()))?;
                PgResult::Ok(Some(Session {
                    principal: Principal {
                        account: AccountId(r.try_get(7)?),
                        account_name: r.try_get(8)?,
                        key_id: r.try_get(3)?,
                        scopes,
                    },
                    csrf_token: r.try_get(0)?,
                    created_at: r.try_get(1)?,
                }))
            })
            .await?;
        Ok(found)
    }

    async fn end_session(&self, token_hash: &str) -> StoreResult<()> {
        self.retrying(|| async {
            let client = self.client().await?;
            client.execute("DELETE FROM ui_sessions WHERE token_hash = $1", &[&token_hash]).await?;
            Ok(())
        })
        .await
    }

    async fn purge_sessions(&self, idle: Micros) -> StoreResult<u64> {
        let before = now_micros() - idle;
        self.retrying(|| async {
            let client = self.client().await?;
            Ok(client.execute("DELETE FROM ui_sessions WHERE last_seen_at <= $1", &[&before]).await?)
        })
        .await
    }
}

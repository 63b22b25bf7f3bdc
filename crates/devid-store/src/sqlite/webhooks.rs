//! The webhook family on SQLite.

use async_trait::async_trait;
use devid_core::change::ChangeKind;
use devid_core::time::{Micros, to_rfc3339};
use devid_core::webhook::RETRY_FOR_MICROS;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::changes::{close_change_set, get_change_in};
use super::{Audit, SqliteStore, insert_audit, map_err};
use crate::webhooks::{
    Attempt, Delivery, DueDelivery, NewWebhook, OutboxDepth, Webhook, WebhookStore, kinds_list, kinds_text,
};
use crate::{AccountId, ChangeContext, StoreResult, now_micros};

/// Writes one pending delivery of change set `change` per webhook of the account that
/// wants its kind: called by the change's own transaction, as it records the change set.
pub(crate) fn enqueue_deliveries(
    conn: &Connection,
    account: AccountId,
    change: i64,
    kind: ChangeKind,
    at: Micros,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "INSERT INTO webhook_deliveries (account_id, webhook_id, change_set_id, kind, status, created_at, next_attempt_at,
                                         expires_at)
         SELECT ?1, id, ?2, ?3, 'pending', ?4, ?4, ?5 FROM webhooks
         WHERE account_id = ?1 AND (kinds = '' OR instr(',' || kinds || ',', ',' || ?3 || ',') > 0)",
    )?
    .execute(params![account.0, change, kind.as_str(), at, at.saturating_add(RETRY_FOR_MICROS)])
}

const WEBHOOK_COLUMNS: &str = "w.id, w.url, w.kinds, w.created_at,
    (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.status = 'pending'),
    (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.status = 'failed')";

fn webhook_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Webhook> {
    Ok(Webhook {
        id: r.get(0)?,
        url: r.get(1)?,
        kinds: kinds_list(&r.get::<_, String>(2)?),
        created_at: to_rfc3339(r.get(3)?),
        pending: r.get::<_, i64>(4)?.max(0) as u64,
        failed: r.get::<_, i64>(5)?.max(0) as u64,
    })
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, change_set_id, kind, status, attempts, created_at, next_attempt_at,
    last_attempt_at, last_status, last_error, delivered_at";

fn delivery_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
    let status: String = r.get(4)?;
    Ok(Delivery {
        id: r.get(0)?,
        webhook_id: r.get(1)?,
        change_id: r.get(2)?,
        kind: r.get(3)?,
        attempts: r.get::<_, i64>(5)?.clamp(0, i64::from(u32::MAX)) as u32,
        created_at: to_rfc3339(r.get(6)?),
        next_attempt_at: if status == "pending" { r.get::<_, Option<i64>>(7)?.map(to_rfc3339) } else { None },
        last_attempt_at: r.get::<_, Option<i64>>(8)?.map(to_rfc3339),
        last_status: r.get::<_, Option<i64>>(9)?.and_then(|s| u16::try_from(s).ok()),
        last_error: r.get(10)?,
        delivered_at: r.get::<_, Option<i64>>(11)?.map(to_rfc3339),
        status,
    })
}

fn get_delivery(conn: &Connection, account: AccountId, webhook: i64, id: i64) -> StoreResult<Option<Delivery>> {
    conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE account_id = ?1 AND webhook_id = ?2 AND id = ?3"
    ))
    .and_then(|mut s| s.query_row(params![account.0, webhook, id], delivery_from_row).optional())
    .map_err(map_err)
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn create_webhook(&self, ctx: &ChangeContext, new: NewWebhook) -> StoreResult<Webhook> {
        let ctx = ctx.clone();
        self.write(move |conn, _| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(map_err)?;
            let now = now_micros();
            tx.execute(
                "INSERT INTO webhooks (account_id, url, kinds, secret, key_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![ctx.account.0, new.url, kinds_text(&new.kinds), new.secret, ctx.key_id, now],
            )
            .map_err(map_err)?;
            let id = tx.last_insert_rowid();
            let detail = serde_json::json!({"webhook": id, "url": new.url, "kinds": kinds_text(&new.kinds)}).to_string();
            insert_audit(&tx, &ctx, now, Audit { action: "webhook.created", detail: Some(&detail), ..Default::default() })
                .map_err(map_err)?;
            close_change_set(&tx, &ctx, ChangeKind::Webhook).map_err(map_err)?;
            let created = tx
                .query_row(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE w.id = ?1"), [id], webhook_from_row)
                .map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            Ok(created)
        })
        .await
    }

    async fn list_webhooks(&self, account: AccountId) -> StoreResult<Vec<Webhook>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE w.account_id = ?1 ORDER BY w.id"
                ))
                .map_err(map_err)?;
            let rows = stmt.query_map([account.0], webhook_from_row).map_err(map_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
        .await
    }

    async fn delete_webhook(&self, ctx: &ChangeContext, id: i64) -> StoreResult<bool> {
        let ctx = ctx.clone();
        self.write(move |conn, _| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(map_err)?;
            let url: Option<String> = tx
                .query_row(
                    "SELECT url FROM webhooks WHERE account_id = ?1 AND id = ?2",
                    params![ctx.account.0, id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(map_err)?;
            let Some(url) = url else { return Ok(false) };
            tx.execute("DELETE FROM webhook_deliveries WHERE webhook_id = ?1", [id]).map_err(map_err)?;
            tx.execute("DELETE FROM webhooks WHERE id = ?1", [id]).map_err(map_err)?;
            let detail = serde_json::json!({"webhook": id, "url": url}).to_string();
            insert_audit(
                &tx,
                &ctx,
                now_micros(),
                Audit { action: "webhook.deleted", detail: Some(&detail), ..Default::default() },
            )
            .map_err(map_err)?;
            close_change_set(&tx, &ctx, ChangeKind::Webhook).map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            Ok(true)
        })
        .await
    }

    async fn list_deliveries(
        &self,
        account: AccountId,
        webhook: i64,
        before: i64,
        limit: u64,
    ) -> StoreResult<Option<(Vec<Delivery>, bool)>> {
        self.read(move |conn| {
            let exists = conn
                .query_row(
                    "SELECT 1 FROM webhooks WHERE account_id = ?1 AND id = ?2",
                    params![account.0, webhook],
                    |_| Ok(()),
                )
                .optional()
                .map_err(map_err)?
                .is_some();
            if !exists {
                return Ok(None);
            }
            let before = if before <= 0 { i64::MAX } else { before };
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = ?1 AND id < ?2
                     ORDER BY id DESC LIMIT ?3"
                ))
                .map_err(map_err)?;
            let mut rows = stmt
                .query_map(
                    params![webhook, before, i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)],
                    delivery_from_row,
                )
                .map_err(map_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(map_err)?;
            let has_next = rows.len() as u64 > limit;
            rows.truncate(limit as usize);
            Ok(Some((rows, has_next)))
        })
        .await
    }

    async fn redeliver(&self, ctx: &ChangeContext, webhook: i64, delivery: i64) -> StoreResult<Option<Delivery>> {
        let account = ctx.account;
        self.write(move |conn, _| {
            let changed = conn
                .execute(
                    "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?1, expires_at = ?5
                     WHERE account_id = ?2 AND webhook_id = ?3 AND id = ?4",
                    params![now_micros(), account.0, webhook, delivery, now_micros().saturating_add(RETRY_FOR_MICROS)],
                )
                .map_err(map_err)?;
            if changed == 0 {
                return Ok(None);
            }
            get_delivery(conn, account, webhook, delivery)
        })
        .await
    }

    async fn due_deliveries(&self, now: Micros, limit: u64) -> StoreResult<Vec<DueDelivery>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT d.id, d.account_id, d.webhook_id, w.url, w.secret, d.change_set_id, d.attempts, d.expires_at
                     FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
                     WHERE d.id IN (SELECT (SELECT h.id FROM webhook_deliveries h WHERE h.status = 'pending' AND h.webhook_id = hw.id ORDER BY h.id LIMIT 1) FROM webhooks hw)
                       AND d.next_attempt_at <= ?1
                     ORDER BY d.next_attempt_at, d.id LIMIT ?2",
                )
                .map_err(map_err)?;
            let heads = stmt
                .query_map(params![now, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        AccountId(r.get(1)?),
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, i64>(7)?,
                    ))
                })
                .map_err(map_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(map_err)?;
            let mut due = Vec::with_capacity(heads.len());
            for (id, account, webhook_id, url, secret, change, attempts, expires_at) in heads {
                // A change set is never deleted; one missing is skipped, not fatal.
                let Some(change) = get_change_in(conn, account, change)? else { continue };
                let attempts = attempts.clamp(0, i64::from(u32::MAX)) as u32;
                due.push(DueDelivery { id, account, webhook_id, url, secret, change, attempts, expires_at });
            }
            Ok(due)
        })
        .await
    }

    async fn next_due(&self) -> StoreResult<Option<Micros>> {
        self.read(|conn| {
            conn.query_row(
                "SELECT MIN(next_attempt_at) FROM webhook_deliveries
                 WHERE id IN (SELECT (SELECT h.id FROM webhook_deliveries h WHERE h.status = 'pending' AND h.webhook_id = hw.id ORDER BY h.id LIMIT 1) FROM webhooks hw)",
                [],
                |r| r.get(0),
            )
            .map_err(map_err)
        })
        .await
    }

    async fn record_attempt(&self, delivery: i64, attempt: Attempt) -> StoreResult<()> {
        self.write(move |conn, _| {
            let status = match (attempt.delivered, attempt.retry_at) {
                (true, _) => "delivered",
                (false, Some(_)) => "pending",
                (false, None) => "failed",
            };
            conn.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = ?1, last_status = ?2,
                        last_error = ?3, status = ?4, next_attempt_at = ?5,
                        delivered_at = CASE WHEN ?4 = 'delivered' THEN ?1 ELSE delivered_at END
                 WHERE id = ?6",
                params![attempt.at, attempt.status, attempt.error, status, attempt.retry_at, delivery],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn outbox_depth(&self) -> StoreResult<OutboxDepth> {
        self.read(|conn| {
            conn.query_row(
                "SELECT COUNT(*), MIN(created_at) FROM webhook_deliveries WHERE status = 'pending'",
                [],
                |r| Ok(OutboxDepth { pending: r.get::<_, i64>(0)?.max(0) as u64, oldest_pending: r.get(1)? }),
            )
            .map_err(map_err)
        })
        .await
    }
}

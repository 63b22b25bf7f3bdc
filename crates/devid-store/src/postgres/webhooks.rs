//! The webhook family on PostgreSQL.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use devid_core::change::ChangeKind;
use devid_core::time::{Micros, to_rfc3339};
use devid_core::webhook::RETRY_FOR_MICROS;
use tokio_postgres::Row;

use super::changes::{close_change_set, get_change_in};
use super::{Audit, PgError, PgResult, PostgresStore, insert_audit, lock_account};
use crate::webhooks::{
    Attempt, Delivery, DueDelivery, NewWebhook, OutboxDepth, Webhook, WebhookStore, kinds_list, kinds_text,
};
use crate::{AccountId, ChangeContext, StoreResult, now_micros};

/// Writes one pending delivery of change set `change` per webhook of the account that
/// wants its kind: called by the change's own transaction, as it records the change set.
pub(in crate::postgres) async fn enqueue_deliveries(
    tx: &impl GenericClient,
    account: AccountId,
    change: i64,
    kind: ChangeKind,
    at: Micros,
) -> PgResult<u64> {
    Ok(tx
        .execute(
            "INSERT INTO webhook_deliveries (account_id, webhook_id, change_set_id, kind, status, created_at, next_attempt_at,
                                             expires_at)
             SELECT $1, id, $2, $3::TEXT, 'pending', $4, $4, $5 FROM webhooks
             WHERE account_id = $1 AND (kinds = '' OR strpos(',' || kinds || ',', ',' || $3::TEXT || ',') > 0)",
            &[&account.0, &change, &kind.as_str(), &at, &at.saturating_add(RETRY_FOR_MICROS)],
        )
        .await?)
}

const WEBHOOK_COLUMNS: &str = "w.id, w.url, w.kinds, w.created_at,
    (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.status = 'pending'),
    (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.status = 'failed')";

fn webhook_from_row(r: &Row) -> PgResult<Webhook> {
    Ok(Webhook {
        id: r.try_get(0)?,
        url: r.try_get(1)?,
        kinds: kinds_list(r.try_get(2)?),
        created_at: to_rfc3339(r.try_get(3)?),
        pending: r.try_get::<_, i64>(4)?.max(0) as u64,
        failed: r.try_get::<_, i64>(5)?.max(0) as u64,
    })
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, change_set_id, kind, status, attempts, created_at, next_attempt_at,
    last_attempt_at, last_status, last_error, delivered_at";

fn delivery_from_row(r: &Row) -> PgResult<Delivery> {
    let status: String = r.try_get(4)?;
    Ok(Delivery {
        id: r.try_get(0)?,
        webhook_id: r.try_get(1)?,
        change_id: r.try_get(2)?,
        kind: r.try_get(3)?,
        attempts: r.try_get::<_, i32>(5)?.max(0) as u32,
        created_at: to_rfc3339(r.try_get(6)?),
        next_attempt_at: if status == "pending" { r.try_get::<_, Option<i64>>(7)?.map(to_rfc3339) } else { None },
        last_attempt_at: r.try_get::<_, Option<i64>>(8)?.map(to_rfc3339),
        last_status: r.try_get::<_, Option<i32>>(9)?.and_then(|s| u16::try_from(s).ok()),
        last_error: r.try_get(10)?,
        delivered_at: r.try_get::<_, Option<i64>>(11)?.map(to_rfc3339),
        status,
    })
}

#[async_trait]
impl WebhookStore for PostgresStore {
    async fn create_webhook(&self, ctx: &ChangeContext, new: NewWebhook) -> StoreResult<Webhook> {
        self.retrying(|| async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            lock_account(&tx, ctx.account).await?;
            let now = now_micros();
            let kinds = kinds_text(&new.kinds);
            let id: i64 = tx
                .query_one(
                    "INSERT INTO webhooks (account_id, url, kinds, secret, key_id, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    &[&ctx.account.0, &new.url, &kinds, &new.secret, &ctx.key_id, &now],
                )
                .await?
                .try_get(0)?;
            let detail = serde_json::json!({"webhook": id, "url": new.url, "kinds": kinds}).to_string();
            insert_audit(
                &tx,
                ctx,
                now,
                Audit { action: "webhook.created", detail: Some(&detail), ..Default::default() },
            )
            .await?;
            close_change_set(&tx, ctx, ChangeKind::Webhook).await?;
            let row =
                tx.query_one(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE w.id = $1"), &[&id]).await?;
            let created = webhook_from_row(&row)?;
            tx.commit().await?;
            Ok(created)
        })
        .await
    }

    async fn list_webhooks(&self, account: AccountId) -> StoreResult<Vec<Webhook>> {
        async {
            let client = self.client().await?;
            let rows = client
                .query(
                    &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE w.account_id = $1 ORDER BY w.id"),
                    &[&account.0],
                )
                .await?;
            rows.iter().map(webhook_from_row).collect::<PgResult<Vec<_>>>()
        }
        .await
        .map_err(PgError::into_store)
    }

    async fn delete_webhook(&self, ctx: &ChangeContext, id: i64) -> StoreResult<bool> {
        self.retrying(|| async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            lock_account(&tx, ctx.account).await?;
            let Some(row) = tx
                .query_opt("SELECT url FROM webhooks WHERE account_id = $1 AND id = $2", &[&ctx.account.0, &id])
                .await?
            else {
                tx.rollback().await?;
                return Ok(false);
            };
            let url: String = row.try_get(0)?;
            tx.execute("DELETE FROM webhook_deliveries WHERE webhook_id = $1", &[&id]).await?;
            tx.execute("DELETE FROM webhooks WHERE id = $1", &[&id]).await?;
            let detail = serde_json::json!({"webhook": id, "url": url}).to_string();
            insert_audit(
                &tx,
                ctx,
                now_micros(),
                Audit { action: "webhook.deleted", detail: Some(&detail), ..Default::default() },
            )
            .await?;
            close_change_set(&tx, ctx, ChangeKind::Webhook).await?;
            tx.commit().await?;
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
        async {
            let client = self.client().await?;
            let exists = client
                .query_opt("SELECT 1 FROM webhooks WHERE account_id = $1 AND id = $2", &[&account.0, &webhook])
                .await?
                .is_some();
            if !exists {
                return Ok(None);
            }
            let before = if before <= 0 { i64::MAX } else { before };
            let rows = client
                .query(
                    &format!(
                        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 AND id < $2
                         ORDER BY id DESC LIMIT $3"
                    ),
                    &[&webhook, &before, &i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)],
                )
                .await?;
            let mut deliveries = rows.iter().map(delivery_from_row).collect::<PgResult<Vec<_>>>()?;
            let has_next = deliveries.len() as u64 > limit;
            deliveries.truncate(limit as usize);
            Ok(Some((deliveries, has_next)))
        }
        .await
        .map_err(PgError::into_store)
    }

    async fn redeliver(&self, ctx: &ChangeContext, webhook: i64, delivery: i64) -> StoreResult<Option<Delivery>> {
        async {
            let client = self.client().await?;
            let now = now_micros();
            let row = client
                .query_opt(
                    &format!(
                        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $1, expires_at = $2
                         WHERE account_id = $3 AND webhook_id = $4 AND id = $5 RETURNING {DELIVERY_COLUMNS}"
                    ),
                    &[&now, &now.saturating_add(RETRY_FOR_MICROS), &ctx.account.0, &webhook, &delivery],
                )
                .await?;
            row.as_ref().map(delivery_from_row).transpose()
        }
        .await
        .map_err(PgError::into_store)
    }

    async fn due_deliveries(&self, now: Micros, limit: u64) -> StoreResult<Vec<DueDelivery>> {
        async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT d.id, d.account_id, d.webhook_id, w.url, w.secret, d.change_set_id, d.attempts, d.expires_at
                     FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
                     WHERE d.id IN (SELECT (SELECT h.id FROM webhook_deliveries h WHERE h.status = 'pending' AND h.webhook_id = hw.id ORDER BY h.id LIMIT 1) FROM webhooks hw)
                       AND d.next_attempt_at <= $1
                     ORDER BY d.next_attempt_at, d.id LIMIT $2",
                    &[&now, &i64::try_from(limit).unwrap_or(i64::MAX)],
                )
                .await?;
            let mut due = Vec::with_capacity(rows.len());
            for r in &rows {
                let account = AccountId(r.try_get(1)?);
                let change_id: i64 = r.try_get(5)?;
                // A change set is never deleted; one missing is skipped, not fatal.
                let Some(change) = get_change_in(&client, account, change_id).await? else { continue };
                due.push(DueDelivery {
                    id: r.try_get(0)?,
                    account,
                    webhook_id: r.try_get(2)?,
                    url: r.try_get(3)?,
                    secret: r.try_get(4)?,
                    change,
                    attempts: r.try_get::<_, i32>(6)?.max(0) as u32,
                    expires_at: r.try_get(7)?,
                });
            }
            Ok(due)
        }
        .await
        .map_err(PgError::into_store)
    }

    async fn next_due(&self) -> StoreResult<Option<Micros>> {
        async {
            let client = self.client().await?;
            let row = client
                .query_one(
                    "SELECT MIN(next_attempt_at) FROM webhook_deliveries
                     WHERE id IN (SELECT (SELECT h.id FROM webhook_deliveries h WHERE h.status = 'pending' AND h.webhook_id = hw.id ORDER BY h.id LIMIT 1) FROM webhooks hw)",
                    &[],
                )
                .await?;
            Ok(row.try_get(0)?)
        }
        .await
        .map_err(PgError::into_store)
    }

    async fn record_attempt(&self, delivery: i64, attempt: Attempt) -> StoreResult<()> {
        async {
            let client = self.client().await?;
            let status = match (attempt.delivered, attempt.retry_at) {
                (true, _) => "delivered",
                (false, Some(_)) => "pending",
                (false, None) => "failed",
            };
            let http_status = attempt.status.map(i32::from);
            client
                .execute(
                    "UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = $1, last_status = $2,
                            last_error = $3, status = $4, next_attempt_at = $5,
                            delivered_at = CASE WHEN $4 = 'delivered' THEN $1 ELSE delivered_at END
                     WHERE id = $6",
                    &[&attempt.at, &http_status, &attempt.error, &status, &attempt.retry_at, &delivery],
                )
                .await?;
            Ok(())
        }
        .await
        .map_err(PgError::into_store)
    }

    async fn outbox_depth(&self) -> StoreResult<OutboxDepth> {
        async {
            let client = self.client().await?;
            let row = client
                .query_one("SELECT COUNT(*), MIN(created_at) FROM webhook_deliveries WHERE status = 'pending'", &[])
                .await?;
            Ok(OutboxDepth { pending: row.try_get::<_, i64>(0)?.max(0) as u64, oldest_pending: row.try_get(1)? })
        }
        .await
        .map_err(PgError::into_store)
    }
}

//! The change family on PostgreSQL.

use std::collections::BTreeMap;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use devid_core::change::ChangeKind;
use devid_core::time::{Micros, to_rfc3339};
use tokio_postgres::Row;

use super::{PgError, PgResult, PostgresStore, params, refs};
use crate::changes::{
    CHANGE_COLUMNS, ChangeEventsPage, ChangePage, ChangeQuery, ChangeSet, ChangeStore, change_events_sql, changes_sql,
    counts_json, parse_counts,
};
use crate::sql::Dialect;
use crate::{AccountId, AuditEvent, ChangeContext, StoreResult};

/// Records the events this write added as one change set of `kind`, inside the write's
/// transaction and under its account lock (call it last, before the commit). A write
/// that recorded no event changed nothing and makes no change set: `None`. Its time is
/// the time the write stamped its events with.
pub(in crate::postgres) async fn close_change_set(
    tx: &impl GenericClient,
    ctx: &ChangeContext,
    kind: ChangeKind,
) -> PgResult<Option<i64>> {
    let after: i64 = tx
        .query_one(
            "SELECT COALESCE((SELECT last_event FROM change_sets WHERE account_id = $1 ORDER BY id DESC LIMIT 1), 0)",
            &[&ctx.account.0],
        )
        .await?
        .try_get(0)?;
    let rows = tx
        .query(
            "SELECT action, COUNT(*), MAX(id), MIN(at) FROM audit_events WHERE account_id = $1 AND id > $2 GROUP BY action",
            &[&ctx.account.0, &after],
        )
        .await?;
    let mut counts = BTreeMap::new();
    let mut last = after;
    let mut at = Micros::MAX;
    for row in &rows {
        counts.insert(row.try_get::<_, String>(0)?, row.try_get::<_, i64>(1)?.max(0) as u64);
        last = last.max(row.try_get(2)?);
        at = at.min(row.try_get(3)?);
    }
    if counts.is_empty() {
        return Ok(None);
    }
    let events = i64::try_from(counts.values().sum::<u64>()).unwrap_or(i64::MAX);
    let id: i64 = tx
        .query_one(
            "INSERT INTO change_sets (account_id, at, kind, key_id, request_id, after_event, last_event, events, counts)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            &[
                &ctx.account.0,
                &at,
                &kind.as_str(),
                &ctx.key_id,
                &ctx.request_id,
                &after,
                &last,
                &events,
                &counts_json(&counts),
            ],
        )
        .await?
        .try_get(0)?;
    Ok(Some(id))
}

fn change_from_row(r: &Row) -> PgResult<ChangeSet> {
    Ok(ChangeSet {
        id: r.try_get(0)?,
        at: to_rfc3339(r.try_get(1)?),
        kind: r.try_get(2)?,
        key_id: r.try_get(3)?,
        request_id: r.try_get(4)?,
        events: r.try_get::<_, i64>(5)?.max(0) as u64,
        counts: parse_counts(r.try_get(6)?),
    })
}

#[async_trait]
impl ChangeStore for PostgresStore {
    async fn list_changes(&self, account: AccountId, query: ChangeQuery) -> StoreResult<ChangePage> {
        async {
            let sql = changes_sql(Dialect::Postgres, account, &query);
            let client = self.client().await?;
            let p = params(&sql.args);
            let rows = client.query(&sql.text, &refs(&p)).await?;
            let mut changes = rows.iter().map(change_from_row).collect::<PgResult<Vec<_>>>()?;
            let has_next = changes.len() as u64 > query.limit;
            changes.truncate(query.limit as usize);
            Ok(ChangePage { changes, has_next })
        }
        .await
        .map_err(PgError::into_store)
    }

    async fn get_change(&self, account: AccountId, id: i64) -> StoreResult<Option<ChangeSet>> {
        async {
            let client = self.client().await?;
            let row = client
                .query_opt(
                    &format!("SELECT {CHANGE_COLUMNS} FROM change_sets c WHERE c.account_id = $1 AND c.id = $2"),
                    &[&account.0, &id],
                )
                .await?;
            row.as_ref().map(change_from_row).transpose()
        }
        .await
        .map_err(PgError::into_store)
    }

    async fn change_events(
        &self,
        account: AccountId,
        id: i64,
        after_event: i64,
        limit: u64,
    ) -> StoreResult<ChangeEventsPage> {
        async {
            let sql = change_events_sql(Dialect::Postgres, account, id, after_event, limit);
            let client = self.client().await?;
            let p = params(&sql.args);
            let rows = client.query(&sql.text, &refs(&p)).await?;
            let mut events = rows
                .iter()
                .map(|r| {
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
                })
                .collect::<PgResult<Vec<_>>>()?;
            let has_next = events.len() as u64 > limit;
            events.truncate(limit as usize);
            Ok(ChangeEventsPage { events, has_next })
        }
        .await
        .map_err(PgError::into_store)
    }
}

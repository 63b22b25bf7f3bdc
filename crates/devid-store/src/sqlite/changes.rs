//! The change family on SQLite.

use std::collections::BTreeMap;

use async_trait::async_trait;
use devid_core::change::ChangeKind;
use devid_core::time::{Micros, to_rfc3339};
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, map_err, to_values};
use crate::changes::{
    CHANGE_COLUMNS, ChangeEventsPage, ChangePage, ChangeQuery, ChangeSet, ChangeStore, change_events_sql, changes_sql,
    counts_json, parse_counts,
};
use crate::sql::Dialect;
use crate::{AccountId, AuditEvent, ChangeContext, StoreResult};

/// Records the events this write added as one change set of `kind`, inside the write's
/// transaction (call it last, before the commit). Its time is the time the write
/// stamped its events with. A write that recorded no event changed nothing and makes
/// no change set: `None`.
pub(crate) fn close_change_set(
    conn: &Connection,
    ctx: &ChangeContext,
    kind: ChangeKind,
) -> rusqlite::Result<Option<i64>> {
    let after: i64 = conn
        .prepare_cached(
            "SELECT COALESCE((SELECT last_event FROM change_sets WHERE account_id = ?1 ORDER BY id DESC LIMIT 1), 0)",
        )?
        .query_row([ctx.account.0], |r| r.get(0))?;
    let mut counts = BTreeMap::new();
    let mut last = after;
    let mut at = Micros::MAX;
    {
        let mut stmt = conn.prepare_cached(
            "SELECT action, COUNT(*), MAX(id), MIN(at) FROM audit_events WHERE account_id = ?1 AND id > ?2 GROUP BY action",
        )?;
        let mut rows = stmt.query(params![ctx.account.0, after])?;
        while let Some(row) = rows.next()? {
            counts.insert(row.get::<_, String>(0)?, row.get::<_, i64>(1)?.max(0) as u64);
            last = last.max(row.get(2)?);
            at = at.min(row.get(3)?);
        }
    }
    if counts.is_empty() {
        return Ok(None);
    }
    let events: u64 = counts.values().sum();
    conn.prepare_cached(
        "INSERT INTO change_sets (account_id, at, kind, key_id, request_id, after_event, last_event, events, counts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        ctx.account.0,
        at,
        kind.as_str(),
        ctx.key_id,
        ctx.request_id,
        after,
        last,
        i64::try_from(events).unwrap_or(i64::MAX),
        counts_json(&counts)
    ])?;
    Ok(Some(conn.last_insert_rowid()))
}

fn change_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChangeSet> {
    Ok(ChangeSet {
        id: r.get(0)?,
        at: to_rfc3339(r.get(1)?),
        kind: r.get(2)?,
        key_id: r.get(3)?,
        request_id: r.get(4)?,
        events: r.get::<_, i64>(5)?.max(0) as u64,
        counts: parse_counts(&r.get::<_, String>(6)?),
    })
}

#[async_trait]
impl ChangeStore for SqliteStore {
    async fn list_changes(&self, account: AccountId, query: ChangeQuery) -> StoreResult<ChangePage> {
        self.read(move |conn| {
            let sql = changes_sql(Dialect::Sqlite, account, &query);
            let mut stmt = conn.prepare(&sql.text).map_err(map_err)?;
            let mut changes = stmt
                .query_map(rusqlite::params_from_iter(to_values(&sql.args)), change_from_row)
                .map_err(map_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(map_err)?;
            let has_next = changes.len() as u64 > query.limit;
            changes.truncate(query.limit as usize);
            Ok(ChangePage { changes, has_next })
        })
        .await
    }

    async fn get_change(&self, account: AccountId, id: i64) -> StoreResult<Option<ChangeSet>> {
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {CHANGE_COLUMNS} FROM change_sets c WHERE c.account_id = ?1 AND c.id = ?2"
            ))
            .and_then(|mut s| s.query_row(params![account.0, id], change_from_row).optional())
            .map_err(map_err)
        })
        .await
    }

    async fn change_events(
        &self,
        account: AccountId,
        id: i64,
        after_event: i64,
        limit: u64,
    ) -> StoreResult<ChangeEventsPage> {
        self.read(move |conn| {
            let sql = change_events_sql(Dialect::Sqlite, account, id, after_event, limit);
            let mut stmt = conn.prepare(&sql.text).map_err(map_err)?;
            let mut events = stmt
                .query_map(rusqlite::params_from_iter(to_values(&sql.args)), |r| {
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
                })
                .map_err(map_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(map_err)?;
            let has_next = events.len() as u64 > limit;
            events.truncate(limit as usize);
            Ok(ChangeEventsPage { events, has_next })
        })
        .await
    }
}

//! The change family on SQLite.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use devid_core::change::ChangeKind;
use devid_core::time::{Micros, to_rfc3339};
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, map_err, to_values};
use crate::changes::{
    CHANGE_COLUMNS, ChangeEventsPage, ChangePage, ChangeQuery, ChangeSet, ChangeStore, change_events_sql, changes_sql,
    counts_json, parse_counts,
};
use crate::revert::{RevertConflict, RevertOptions, RevertOutcome, RevertSummary, Step, Target, key_of, plan_revert};
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
    let emails_now = events <= EMAILS_IN_THE_WRITE_MAX_EVENTS;
    conn.prepare_cached(
        "INSERT INTO change_sets (account_id, at, kind, key_id, request_id, after_event, last_event, events, counts,
                                  emails_indexed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
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
        counts_json(&counts),
        emails_now
    ])?;
    let id = conn.last_insert_rowid();
    if emails_now {
        list_change_set_emails(conn, ctx.account, id, after, last)?;
    }
    super::webhooks::enqueue_deliveries(conn, ctx.account, id, kind, crate::now_micros())?;
    Ok(Some(id))
}

/// Change sets of up to this many events list their addresses in their own transaction
/// (a group-committed upload is at most a thousand rows); larger ones after their write
/// was answered, by [`list_pending_change_set_emails`], as one sort instead of a
/// million B-tree insertions in the write.
const EMAILS_IN_THE_WRITE_MAX_EVENTS: u64 = 5_000;

/// Writes the distinct addresses that change set `id`'s events (ids in `(after, last]`)
/// name, as old or new address, into `change_set_emails`.
fn list_change_set_emails(
    conn: &Connection,
    account: AccountId,
    id: i64,
    after: i64,
    last: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO change_set_emails (account_id, email, change_set_id)
         SELECT ?1, email, ?2 FROM (
             SELECT new_email AS email FROM audit_events
             WHERE account_id = ?1 AND id > ?3 AND id <= ?4 AND new_email IS NOT NULL
             UNION
             SELECT old_email FROM audit_events
             WHERE account_id = ?1 AND id > ?3 AND id <= ?4 AND old_email IS NOT NULL)",
    )?
    .execute(params![account.0, id, after, last])?;
    Ok(())
}

/// Whether some change set's addresses are not listed yet (one probe of a partial index).
pub(crate) fn change_set_emails_pending(conn: &Connection) -> bool {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM change_sets WHERE emails_indexed = 0)")
        .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
        .unwrap_or(false)
}

/// Lists the addresses of every change set whose write left them out (a large one, or
/// history migrated into change sets), in one transaction of its own. Until it commits
/// the feed's `email` filter reads those change sets' events instead, so nothing is
/// missed meanwhile; a failure leaves them for the next call. Returns how many change
/// sets were listed.
pub(crate) fn list_pending_change_set_emails(conn: &mut Connection) -> rusqlite::Result<usize> {
    let started = std::time::Instant::now();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let pending = tx
        .prepare(
            "SELECT id, account_id, after_event, last_event FROM change_sets WHERE emails_indexed = 0 ORDER BY id",
        )?
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, AccountId(r.get(1)?), r.get::<_, i64>(2)?, r.get::<_, i64>(3)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    for &(id, account, after, last) in &pending {
        list_change_set_emails(&tx, account, id, after, last)?;
        tx.execute("UPDATE change_sets SET emails_indexed = 1 WHERE id = ?1", [id])?;
    }
    tx.commit()?;
    if !pending.is_empty() {
        tracing::debug!(
            change_sets = pending.len(),
            ms = started.elapsed().as_millis() as u64,
            "change set addresses listed"
        );
    }
    Ok(pending.len())
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
        reverts: r.get(7)?,
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
        self.read(move |conn| get_change_in(conn, account, id)).await
    }

    async fn revert_change(&self, ctx: &ChangeContext, id: i64, options: RevertOptions) -> StoreResult<RevertOutcome> {
        let ctx = ctx.clone();
        self.write(move |conn, _| revert_in(conn, &ctx, id, options)).await
    }

    async fn change_events(
        &self,
        account: AccountId,
        id: i64,
        after_event: i64,
        limit: u64,
    ) -> StoreResult<ChangeEventsPage> {
        self.read(move |conn| events_page(conn, account, id, after_event, limit)).await
    }
}

/// How many conflicting or skipped identities a revert reports by name.
const MAX_REPORTED: usize = 100;

/// Up to `limit` of change set `id`'s events after `after_event`.
fn events_page(
    conn: &Connection,
    account: AccountId,
    id: i64,
    after_event: i64,
    limit: u64,
) -> StoreResult<ChangeEventsPage> {
    let sql = change_events_sql(Dialect::Sqlite, account, id, after_event, limit);
    let mut stmt = conn.prepare(&sql.text).map_err(map_err)?;
    let mut events = stmt
        .query_map(rusqlite::params_from_iter(to_values(&sql.args)), super::audit_event_from_row)
        .map_err(map_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(map_err)?;
    let has_next = events.len() as u64 > limit;
    events.truncate(limit as usize);
    Ok(ChangeEventsPage { events, has_next })
}

/// Every event of `change`, to work out its inverse.
fn events_of(conn: &Connection, account: AccountId, change: &ChangeSet) -> StoreResult<Vec<AuditEvent>> {
    Ok(events_page(conn, account, change.id, 0, i64::MAX as u64 - 1)?.events)
}

/// For each target touched by a later change (an identity event after the change set's
/// last), the ids of those later events.
fn later_touches(
    conn: &Connection,
    account: AccountId,
    change_last_event: i64,
    targets: &[Target],
    integrations: &HashMap<i64, devid_core::plan::IntegrationInfo>,
) -> StoreResult<HashMap<usize, Vec<i64>>> {
    let index: HashMap<(i64, &str), usize> =
        targets.iter().enumerate().map(|(i, t)| ((t.integration_id, t.key.as_str()), i)).collect();
    let mut touched: HashMap<usize, Vec<i64>> = HashMap::new();
    let mut stmt = conn
        .prepare(
            "SELECT id, integration_id, identity FROM audit_events
             WHERE account_id = ?1 AND id > ?2 AND action LIKE 'identity.%' ORDER BY id",
        )
        .map_err(map_err)?;
    let mut rows = stmt.query(params![account.0, change_last_event]).map_err(map_err)?;
    while let Some(row) = rows.next().map_err(map_err)? {
        let (event, integration_id, identity): (i64, Option<i64>, Option<String>) =
            (row.get(0).map_err(map_err)?, row.get(1).map_err(map_err)?, row.get(2).map_err(map_err)?);
        let (Some(integration_id), Some(identity)) = (integration_id, identity) else { continue };
        let key = key_of(integrations, integration_id, &identity);
        if let Some(&target) = index.get(&(integration_id, key.as_str())) {
            touched.entry(target).or_default().push(event);
        }
    }
    Ok(touched)
}

/// The change sets holding `events` (ascending event ids), oldest first.
fn change_ids_of(conn: &Connection, account: AccountId, events: &[i64]) -> StoreResult<Vec<i64>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id FROM change_sets WHERE account_id = ?1 AND after_event < ?2 AND last_event >= ?2
             ORDER BY id LIMIT 1",
        )
        .map_err(map_err)?;
    let mut ids = Vec::new();
    for &event in events {
        if let Some(id) =
            stmt.query_row(params![account.0, event], |r| r.get::<_, i64>(0)).optional().map_err(map_err)?
            && ids.last() != Some(&id)
        {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// The developer holding `email`, made if there is none.
fn developer_for(tx: &Connection, account: AccountId, email: &str, now: Micros) -> StoreResult<i64> {
    tx.prepare_cached(
        "INSERT INTO developers (account_id, email, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (account_id, email) DO NOTHING",
    )
    .and_then(|mut s| s.execute(params![account.0, email, now]))
    .map_err(map_err)?;
    tx.prepare_cached("SELECT id FROM developers WHERE account_id = ?1 AND email = ?2")
        .and_then(|mut s| s.query_row(params![account.0, email], |r| r.get(0)))
        .map_err(map_err)
}

/// Applies one target's inverse (deletes go together, in [`delete_created`]); `false`
/// when the row is not as the change left it (then it is skipped, not forced).
fn undo(tx: &Connection, ctx: &ChangeContext, now: Micros, target: &Target) -> StoreResult<bool> {
    let account = ctx.account.0;
    let row: Option<(i64, String, i64)> = tx
        .prepare_cached(
            "SELECT id, identity, locked FROM identities WHERE account_id = ?1 AND integration_id = ?2 AND identity_key = ?3",
        )
        .and_then(|mut s| {
            s.query_row(params![account, target.integration_id, target.key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(map_err)?;
    let audit = |action: &str, identity: &str, old: Option<&str>, new: Option<&str>, detail: Option<&str>| {
        tx.prepare_cached(super::INSERT_AUDIT)
            .and_then(|mut s| {
                s.execute(params![
                    account,
                    now,
                    action,
                    ctx.key_id,
                    ctx.request_id,
                    target.integration_id,
                    identity,
                    old,
                    new,
                    detail
                ])
            })
            .map_err(map_err)
    };
    match (&target.step, row) {
        (Step::MoveBack { email, before }, Some((id, current, _))) => {
            let developer = developer_for(tx, ctx.account, email, now)?;
            let spelling = before.identity.clone().unwrap_or(current);
            tx.prepare_cached(&super::audit_move_sql())
                .and_then(|mut s| s.execute(params![account, now, ctx.key_id, ctx.request_id, spelling, email, id]))
                .map_err(map_err)?;
            tx.prepare_cached(
                "UPDATE identities SET developer_id = ?1, email = ?2, identity = ?3, updated_at = ?4,
                        source = ?5, source_key_id = ?6, locked = ?7 WHERE id = ?8",
            )
            .and_then(|mut s| {
                s.execute(params![
                    developer,
                    email,
                    spelling,
                    now,
                    before.source(),
                    before.source_key_id,
                    i64::from(before.locked.unwrap_or(false)),
                    id
                ])
            })
            .map_err(map_err)?;
        }
        (Step::Respell { spelling }, Some((id, current, _))) => {
            let detail = serde_json::json!({"before": current}).to_string();
            let email: String =
                tx.query_row("SELECT email FROM identities WHERE id = ?1", [id], |r| r.get(0)).map_err(map_err)?;
            audit("identity.updated", spelling, Some(&email), Some(&email), Some(&detail))?;
            tx.execute(
                "UPDATE identities SET identity = ?1, updated_at = ?2 WHERE id = ?3",
                params![spelling, now, id],
            )
            .map_err(map_err)?;
        }
        (Step::Restore { email, before }, None) => {
            let developer = developer_for(tx, ctx.account, email, now)?;
            let spelling = before.identity.clone().unwrap_or_else(|| target.identity.clone());
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO identities (account_id, integration_id, identity_key, identity, developer_id, email,
                                             created_at, updated_at, source, source_key_id, locked)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11
                     WHERE EXISTS (SELECT 1 FROM integrations WHERE account_id = ?1 AND id = ?2)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        account,
                        target.integration_id,
                        target.key,
                        spelling,
                        developer,
                        email,
                        before.created_at.unwrap_or(now),
                        now,
                        before.source(),
                        before.source_key_id,
                        i64::from(before.locked.unwrap_or(false))
                    ])
                })
                .map_err(map_err)?;
            if inserted == 0 {
                // Its integration is gone: nothing to restore it into.
                return Ok(false);
            }
            audit("identity.created", &spelling, None, Some(email), None)?;
        }
        (Step::SetLock { locked }, Some((id, current, was))) => {
            if (was != 0) == *locked {
                return Ok(false);
            }
            tx.execute("UPDATE identities SET locked = ?1 WHERE id = ?2", params![i64::from(*locked), id])
                .map_err(map_err)?;
            let action = if *locked { "identity.locked" } else { "identity.unlocked" };
            audit(action, &current, None, None, None)?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Deletes the identities `targets` name, each with its `identity.deleted` event (in
/// the targets' order), and answers how many there were.
fn delete_created(tx: &Connection, ctx: &ChangeContext, now: Micros, targets: &[&Target]) -> StoreResult<u64> {
    if targets.is_empty() {
        return Ok(0);
    }
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS revert_keys (integration_id INTEGER NOT NULL, identity_key TEXT NOT NULL);
         DELETE FROM revert_keys;",
    )
    .map_err(map_err)?;
    {
        let mut insert = tx
            .prepare_cached("INSERT INTO revert_keys (integration_id, identity_key) VALUES (?1, ?2)")
            .map_err(map_err)?;
        for target in targets {
            insert.execute(params![target.integration_id, target.key]).map_err(map_err)?;
        }
    }
    let joined = "revert_keys r JOIN identities i
        ON i.account_id = ?1 AND i.integration_id = r.integration_id AND i.identity_key = r.identity_key";
    tx.execute(
        &format!(
            "INSERT INTO audit_events (account_id, at, action, key_id, request_id, integration_id, identity, old_email, detail)
             SELECT ?1, ?2, 'identity.deleted', ?3, ?4, i.integration_id, i.identity, i.email, {}
             FROM {joined} ORDER BY r.rowid",
            super::BEFORE_STATE
        ),
        params![ctx.account.0, now, ctx.key_id, ctx.request_id],
    )
    .map_err(map_err)?;
    let deleted = tx
        .execute(&format!("DELETE FROM identities WHERE id IN (SELECT i.id FROM {joined})"), params![ctx.account.0])
        .map_err(map_err)?;
    tx.execute_batch("DELETE FROM revert_keys;").map_err(map_err)?;
    Ok(deleted as u64)
}

/// A revert that deletes most of the identities table (a large upload into a small or
/// empty one, undone) takes the table's secondary indexes off first, as a bulk load
/// does: deleting a million rows from each of three indexes in the order of the rows was
/// three quarters of such a revert's time, and rebuilding them over what remains is one
/// sort of the rest. Dropped in the revert's transaction and listed in
/// `pending_indexes`, so a rollback or dry run keeps them and a stop before the rebuild
/// is mended at start-up; the rebuild runs after the answer (see `SqliteStore::write`).
fn drop_identity_indexes_for_mass_delete(tx: &rusqlite::Transaction<'_>, deletes: usize) -> StoreResult<()> {
    if deletes < super::BULK_MIN_ROWS {
        return Ok(());
    }
    let rows: i64 = tx.query_row("SELECT COUNT(*) FROM identities", [], |r| r.get(0)).map_err(map_err)?;
    if (deletes as i64).saturating_mul(2) <= rows {
        return Ok(());
    }
    // The unique index stays: the delete finds its rows by it.
    super::drop_indexes_for_bulk_load(tx, "identities", &["identities_by_key"])
}

fn count(summary: &mut RevertSummary, step: &Step) {
    match step {
        Step::Delete => summary.deleted += 1,
        Step::MoveBack { .. } => summary.moved_back += 1,
        Step::Respell { .. } => summary.respelled += 1,
        Step::Restore { .. } => summary.restored += 1,
        Step::SetLock { .. } => summary.relocked += 1,
    }
}

fn revert_in(
    conn: &mut Connection,
    ctx: &ChangeContext,
    id: i64,
    options: RevertOptions,
) -> StoreResult<RevertOutcome> {
    let started = std::time::Instant::now();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(map_err)?;
    let account = ctx.account;
    let Some(change) = get_change_in(&tx, account, id)? else { return Ok(RevertOutcome::NotFound) };
    let last_event: i64 =
        tx.query_row("SELECT last_event FROM change_sets WHERE id = ?1", [id], |r| r.get(0)).map_err(map_err)?;
    let events = events_of(&tx, account, &change)?;
    let infos = super::integration_infos_in(&tx, account)?;
    let targets = match plan_revert(&change, &events, &infos) {
        Ok(targets) => targets,
        Err(why) => return Ok(RevertOutcome::NotRevertible(why)),
    };
    let integrations: HashMap<i64, devid_core::plan::IntegrationInfo> = infos.into_iter().map(|i| (i.id, i)).collect();
    let planned_ms = started.elapsed().as_millis() as u64;
    let touched = later_touches(&tx, account, last_event, &targets, &integrations)?;
    let checked_ms = started.elapsed().as_millis() as u64;
    let mut conflicts = Vec::new();
    let mut order: Vec<usize> = touched.keys().copied().collect();
    order.sort_unstable();
    for &t in order.iter().take(MAX_REPORTED) {
        conflicts.push(RevertConflict {
            integration_id: targets[t].integration_id,
            identity: targets[t].identity.clone(),
            later_changes: change_ids_of(&tx, account, &touched[&t])?,
        });
    }
    if !touched.is_empty() && !options.force {
        return Ok(RevertOutcome::Conflicts { total: touched.len() as u64, rows: conflicts });
    }
    let now = crate::now_micros();
    let mut summary = RevertSummary::default();
    // What the change created is deleted in one pass over a temporary key table (a
    // row at a time, three statements each, a million took 13 s); the rest row by row.
    let deletes: Vec<&Target> = targets
        .iter()
        .enumerate()
        .filter(|(t, target)| matches!(target.step, Step::Delete) && !touched.contains_key(t))
        .map(|(_, target)| target)
        .collect();
    drop_identity_indexes_for_mass_delete(&tx, deletes.len())?;
    let deleted = delete_created(&tx, ctx, now, &deletes)?;
    let deleted_ms = started.elapsed().as_millis() as u64;
    summary.deleted = deleted;
    summary.skipped = deletes.len() as u64 - deleted;
    for (t, target) in targets.iter().enumerate() {
        if matches!(target.step, Step::Delete) && !touched.contains_key(&t) {
            continue;
        }
        if touched.contains_key(&t) || !undo(&tx, ctx, now, target)? {
            summary.skipped += 1;
            continue;
        }
        count(&mut summary, &target.step);
    }
    let undone_ms = started.elapsed().as_millis() as u64;
    super::bump_version(&tx, account)?;
    let reverted = close_change_set(&tx, ctx, ChangeKind::Revert).map_err(map_err)?;
    if let Some(new) = reverted {
        tx.execute("UPDATE change_sets SET reverts = ?1 WHERE id = ?2", params![id, new]).map_err(map_err)?;
    }
    let change = match reverted {
        Some(new) if !options.dry_run => get_change_in(&tx, account, new)?,
        _ => None,
    };
    let closed_ms = started.elapsed().as_millis() as u64;
    if options.dry_run {
        tx.rollback().map_err(map_err)?;
    } else {
        tx.commit().map_err(map_err)?;
    }
    // Where a slow revert's time goes, by phase (milliseconds since it started).
    tracing::debug!(
        events = events.len(),
        planned_ms,
        checked_ms,
        deleted_ms,
        undone_ms,
        closed_ms,
        committed_ms = started.elapsed().as_millis() as u64,
        "revert applied"
    );
    Ok(RevertOutcome::Reverted { change, summary, skipped: conflicts })
}

pub(super) fn get_change_in(conn: &Connection, account: AccountId, id: i64) -> StoreResult<Option<ChangeSet>> {
    conn.prepare_cached(&format!("SELECT {CHANGE_COLUMNS} FROM change_sets c WHERE c.account_id = ?1 AND c.id = ?2"))
        .and_then(|mut s| s.query_row(params![account.0, id], change_from_row).optional())
        .map_err(map_err)
}

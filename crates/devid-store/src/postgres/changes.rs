//! The change family on PostgreSQL.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use devid_core::change::ChangeKind;
use devid_core::time::{Micros, to_rfc3339};
use tokio_postgres::Row;

use super::{
    BEFORE_STATE, PgError, PgResult, PostgresStore, audit_event_from_row, bump_version, lock_account, params,
    parse_type, refs,
};
use crate::changes::{
    CHANGE_COLUMNS, ChangeEventsPage, ChangePage, ChangeQuery, ChangeSet, ChangeStore, change_events_sql, changes_sql,
    counts_json, parse_counts,
};
use crate::revert::{RevertConflict, RevertOptions, RevertOutcome, RevertSummary, Step, Target, key_of, plan_revert};
use crate::sql::Dialect;
use crate::{AccountId, ChangeContext, StoreResult};
use devid_core::plan::IntegrationInfo;

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
    super::webhooks::enqueue_deliveries(tx, ctx.account, id, kind, crate::now_micros()).await?;
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
        reverts: r.try_get(7)?,
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

    async fn revert_change(&self, ctx: &ChangeContext, id: i64, options: RevertOptions) -> StoreResult<RevertOutcome> {
        self.retrying(|| async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let (outcome, commit) = revert_in(&tx, ctx, id, options).await?;
            if commit {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            Ok(outcome)
        })
        .await
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
            let mut events = rows.iter().map(audit_event_from_row).collect::<PgResult<Vec<_>>>()?;
            let has_next = events.len() as u64 > limit;
            events.truncate(limit as usize);
            Ok(ChangeEventsPage { events, has_next })
        }
        .await
        .map_err(PgError::into_store)
    }
}

/// How many conflicting or skipped identities a revert reports by name.
const MAX_REPORTED: usize = 100;

pub(in crate::postgres) async fn get_change_in(
    tx: &impl GenericClient,
    account: AccountId,
    id: i64,
) -> PgResult<Option<ChangeSet>> {
    let row = tx
        .query_opt(
            &format!("SELECT {CHANGE_COLUMNS} FROM change_sets c WHERE c.account_id = $1 AND c.id = $2"),
            &[&account.0, &id],
        )
        .await?;
    row.as_ref().map(change_from_row).transpose()
}

/// The developer holding `email`, made if there is none.
async fn developer_for(tx: &impl GenericClient, account: AccountId, email: &str, now: Micros) -> PgResult<i64> {
    tx.execute(
        "INSERT INTO developers (account_id, email, created_at, updated_at) VALUES ($1, $2, $3, $3)
         ON CONFLICT (account_id, email) DO NOTHING",
        &[&account.0, &email, &now],
    )
    .await?;
    Ok(tx
        .query_one("SELECT id FROM developers WHERE account_id = $1 AND email = $2", &[&account.0, &email])
        .await?
        .try_get(0)?)
}

/// Applies one target's inverse (deletes go together, in `revert_in`); `false` when the
/// row is not as the change left it.
async fn undo(tx: &impl GenericClient, ctx: &ChangeContext, now: Micros, target: &Target) -> PgResult<bool> {
    let account = ctx.account.0;
    let row = tx
        .query_opt(
            "SELECT id, identity, locked, email FROM identities
             WHERE account_id = $1 AND integration_id = $2 AND identity_key = $3",
            &[&account, &target.integration_id, &target.key],
        )
        .await?;
    let row: Option<(i64, String, i32, String)> = match row {
        Some(r) => Some((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)),
        None => None,
    };
    let audit = |action: &'static str,
                 identity: String,
                 old: Option<String>,
                 new: Option<String>,
                 detail: Option<String>| async move {
        tx.execute(
            "INSERT INTO audit_events (account_id, at, action, key_id, request_id, integration_id, identity, old_email, new_email, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[&account, &now, &action, &ctx.key_id, &ctx.request_id, &target.integration_id, &identity, &old, &new, &detail],
        )
        .await
    };
    match (&target.step, row) {
        (Step::MoveBack { email, before }, Some((id, current, _, _))) => {
            let developer = developer_for(tx, ctx.account, email, now).await?;
            let spelling = before.identity.clone().unwrap_or(current);
            let locked = i32::from(before.locked.unwrap_or(false));
            tx.execute(
                &format!(
                    "WITH upd AS (
                        UPDATE identities i SET developer_id = $5, email = $6, identity = $7, updated_at = $2,
                               source = $8, source_key_id = $9, locked = $10
                        FROM identities old WHERE old.id = i.id AND i.id = $11
                        RETURNING i.integration_id, old.email AS old_email, {BEFORE_STATE} AS before)
                     INSERT INTO audit_events (account_id, at, action, key_id, request_id, integration_id, identity, old_email, new_email, detail)
                     SELECT $1, $2, 'identity.reassigned', $3, $4, integration_id, $7, old_email, $6, before FROM upd"
                ),
                &[
                    &account,
                    &now,
                    &ctx.key_id,
                    &ctx.request_id,
                    &developer,
                    email,
                    &spelling,
                    &before.source(),
                    &before.source_key_id,
                    &locked,
                    &id,
                ],
            )
            .await?;
        }
        (Step::Respell { spelling }, Some((id, current, _, email))) => {
            let detail = serde_json::json!({"before": current}).to_string();
            audit("identity.updated", spelling.clone(), Some(email.clone()), Some(email), Some(detail)).await?;
            tx.execute("UPDATE identities SET identity = $1, updated_at = $2 WHERE id = $3", &[spelling, &now, &id])
                .await?;
        }
        (Step::Restore { email, before }, None) => {
            let exists = tx
                .query_opt(
                    "SELECT 1 FROM integrations WHERE account_id = $1 AND id = $2",
                    &[&account, &target.integration_id],
                )
                .await?
                .is_some();
            if !exists {
                // Its integration is gone: nothing to restore it into.
                return Ok(false);
            }
            let developer = developer_for(tx, ctx.account, email, now).await?;
            let spelling = before.identity.clone().unwrap_or_else(|| target.identity.clone());
            tx.execute(
                "INSERT INTO identities (account_id, integration_id, identity_key, identity, developer_id, email,
                                         created_at, updated_at, source, source_key_id, locked)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                &[
                    &account,
                    &target.integration_id,
                    &target.key,
                    &spelling,
                    &developer,
                    email,
                    &before.created_at.unwrap_or(now),
                    &now,
                    &before.source(),
                    &before.source_key_id,
                    &i32::from(before.locked.unwrap_or(false)),
                ],
            )
            .await?;
            audit("identity.created", spelling, None, Some(email.clone()), None).await?;
        }
        (Step::SetLock { locked }, Some((id, current, was, _))) => {
            if (was != 0) == *locked {
                return Ok(false);
            }
            tx.execute("UPDATE identities SET locked = $1 WHERE id = $2", &[&i32::from(*locked), &id]).await?;
            let action = if *locked { "identity.locked" } else { "identity.unlocked" };
            audit(action, current, None, None, None).await?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

async fn revert_in(
    tx: &impl GenericClient,
    ctx: &ChangeContext,
    id: i64,
    options: RevertOptions,
) -> PgResult<(RevertOutcome, bool)> {
    let account = ctx.account;
    lock_account(tx, account).await?;
    let Some(change) = get_change_in(tx, account, id).await? else { return Ok((RevertOutcome::NotFound, false)) };
    let last_event: i64 = tx.query_one("SELECT last_event FROM change_sets WHERE id = $1", &[&id]).await?.try_get(0)?;
    let sql = change_events_sql(Dialect::Postgres, account, id, 0, i64::MAX as u64 - 1);
    let p = params(&sql.args);
    let events =
        tx.query(&sql.text, &refs(&p)).await?.iter().map(audit_event_from_row).collect::<PgResult<Vec<_>>>()?;
    let infos = tx
        .query("SELECT id, application_type FROM integrations WHERE account_id = $1 ORDER BY id", &[&account.0])
        .await?
        .iter()
        .map(|r| Ok(IntegrationInfo { id: r.try_get(0)?, application_type: parse_type(&r.try_get::<_, String>(1)?)? }))
        .collect::<PgResult<Vec<_>>>()?;
    let targets = match plan_revert(&change, &events, &infos) {
        Ok(targets) => targets,
        Err(why) => return Ok((RevertOutcome::NotRevertible(why), false)),
    };
    let integrations: HashMap<i64, IntegrationInfo> = infos.into_iter().map(|i| (i.id, i)).collect();
    let index: HashMap<(i64, &str), usize> =
        targets.iter().enumerate().map(|(i, t)| ((t.integration_id, t.key.as_str()), i)).collect();
    let mut touched: HashMap<usize, Vec<i64>> = HashMap::new();
    let later = tx
        .query(
            "SELECT id, integration_id, identity FROM audit_events
             WHERE account_id = $1 AND id > $2 AND action LIKE 'identity.%' ORDER BY id",
            &[&account.0, &last_event],
        )
        .await?;
    for row in &later {
        let (event, integration_id, identity): (i64, Option<i64>, Option<String>) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        let (Some(integration_id), Some(identity)) = (integration_id, identity) else { continue };
        let key = key_of(&integrations, integration_id, &identity);
        if let Some(&target) = index.get(&(integration_id, key.as_str())) {
            touched.entry(target).or_default().push(event);
        }
    }
    let mut order: Vec<usize> = touched.keys().copied().collect();
    order.sort_unstable();
    let mut conflicts = Vec::new();
    for &t in order.iter().take(MAX_REPORTED) {
        let mut later_changes: Vec<i64> = Vec::new();
        for event in &touched[&t] {
            let holder = tx
                .query_opt(
                    "SELECT id FROM change_sets WHERE account_id = $1 AND after_event < $2 AND last_event >= $2
                     ORDER BY id LIMIT 1",
                    &[&account.0, event],
                )
                .await?;
            if let Some(row) = holder {
                let change: i64 = row.try_get(0)?;
                if later_changes.last() != Some(&change) {
                    later_changes.push(change);
                }
            }
        }
        conflicts.push(RevertConflict {
            integration_id: targets[t].integration_id,
            identity: targets[t].identity.clone(),
            later_changes,
        });
    }
    if !touched.is_empty() && !options.force {
        return Ok((RevertOutcome::Conflicts { total: touched.len() as u64, rows: conflicts }, false));
    }
    let now = crate::now_micros();
    let mut summary = RevertSummary::default();
    // What the change created is deleted in one statement; the rest row by row.
    let (ids, keys): (Vec<i64>, Vec<String>) = targets
        .iter()
        .enumerate()
        .filter(|(t, target)| matches!(target.step, Step::Delete) && !touched.contains_key(t))
        .map(|(_, target)| (target.integration_id, target.key.clone()))
        .unzip();
    if !ids.is_empty() {
        let deleted: i64 = tx
            .query_one(
                &format!(
                    "WITH del AS (
                        DELETE FROM identities old USING UNNEST($5::BIGINT[], $6::TEXT[]) WITH ORDINALITY AS r(integration_id, identity_key, ord)
                        WHERE old.account_id = $1 AND old.integration_id = r.integration_id AND old.identity_key = r.identity_key
                        RETURNING r.ord, old.integration_id, old.identity, old.email, {BEFORE_STATE} AS before),
                     aud AS (
                        INSERT INTO audit_events (account_id, at, action, key_id, request_id, integration_id, identity, old_email, detail)
                        SELECT $1, $2, 'identity.deleted', $3, $4, integration_id, identity, email, before FROM del ORDER BY ord
                        RETURNING 1)
                     SELECT COUNT(*) FROM del"
                ),
                &[&account.0, &now, &ctx.key_id, &ctx.request_id, &ids, &keys],
            )
            .await?
            .try_get(0)?;
        summary.deleted = deleted.max(0) as u64;
        summary.skipped = ids.len() as u64 - summary.deleted;
    }
    for (t, target) in targets.iter().enumerate() {
        if matches!(target.step, Step::Delete) && !touched.contains_key(&t) {
            continue;
        }
        if touched.contains_key(&t) || !undo(tx, ctx, now, target).await? {
            summary.skipped += 1;
            continue;
        }
        match target.step {
            Step::Delete => summary.deleted += 1,
            Step::MoveBack { .. } => summary.moved_back += 1,
            Step::Respell { .. } => summary.respelled += 1,
            Step::Restore { .. } => summary.restored += 1,
            Step::SetLock { .. } => summary.relocked += 1,
        }
    }
    bump_version(tx, account).await?;
    let reverted = close_change_set(tx, ctx, ChangeKind::Revert).await?;
    if let Some(new) = reverted {
        tx.execute("UPDATE change_sets SET reverts = $1 WHERE id = $2", &[&id, &new]).await?;
    }
    let change = match reverted {
        Some(new) if !options.dry_run => get_change_in(tx, account, new).await?,
        _ => None,
    };
    Ok((RevertOutcome::Reverted { change, summary, skipped: conflicts }, !options.dry_run))
}

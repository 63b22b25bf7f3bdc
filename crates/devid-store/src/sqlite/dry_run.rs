//! Dry runs of uploads, counted on a read snapshot. A dry run changes nothing, so it
//! takes no part of the single writer: other accounts' writes go on while a million-row
//! dry run is counted (it held the writer for its whole length before, 6.9 s at 1M
//! rows). The counts are those the upload would get if applied now: `created` for an
//! identity that does not exist, `unchanged` for one already mapped to the row's email,
//! `reassigned` otherwise, and a developer for every email that has none yet.

use devid_core::plan::{IntegrationRef, PlannedRow, UploadPlan};
use devid_core::types::IntegrationId;
use rusqlite::{Connection, OptionalExtension, params};

use super::{MERGE_MIN_ROWS, map_err, text_column};
use crate::{AccountId, LockedMove, MAX_LOCKED_SAMPLES, StoreError, StoreResult, UploadSummary};

/// Counts what applying `plan` would do. Plans that create an integration (the
/// previous endpoints, on the first upload of a type) are applied and rolled back by
/// the caller instead, so the answer names the integration exactly as it would be.
pub(super) fn count_upload_in(conn: &Connection, account: AccountId, plan: &UploadPlan) -> StoreResult<UploadSummary> {
    // One read transaction: every lookup sees the same snapshot.
    let snapshot = conn.unchecked_transaction().map_err(map_err)?;
    let mut summary = UploadSummary { received: plan.received, duplicates: plan.duplicates, ..Default::default() };
    summary.developers_created = count_new_developers(&snapshot, account, plan)?;
    let mut locked = LockedMoves::default();
    let mut start = 0;
    while start < plan.rows.len() {
        let integration = integration_of(&plan.rows[start])?;
        let end = start
            + plan.rows[start..]
                .iter()
                .take_while(|r| matches!(r.integration, IntegrationRef::Existing(id) if id == integration))
                .count();
        ensure_integration(&snapshot, account, integration)?;
        classify_rows(&snapshot, account, integration, &plan.rows[start..end], plan.force, &mut summary, &mut locked)?;
        start = end;
    }
    if locked.total > 0 {
        return Err(StoreError::Locked { total: locked.total, rows: locked.rows });
    }
    Ok(summary)
}

fn integration_of(row: &PlannedRow) -> StoreResult<IntegrationId> {
    match row.integration {
        IntegrationRef::Existing(id) => Ok(id),
        IntegrationRef::New(t) => {
            Err(StoreError::Internal(format!("a dry run was counted for a plan that creates a {t} integration")))
        }
    }
}

fn ensure_integration(conn: &Connection, account: AccountId, id: IntegrationId) -> StoreResult<()> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM integrations WHERE account_id = ?1 AND id = ?2")
        .and_then(|mut s| s.query_row(params![account.0, id], |_| Ok(())).optional())
        .map_err(map_err)?
        .is_some();
    if exists { Ok(()) } else { Err(StoreError::Conflict(format!("integration {id} no longer exists; upload again"))) }
}

/// Emails of the plan with no developer yet, each counted once.
fn count_new_developers(conn: &Connection, account: AccountId, plan: &UploadPlan) -> StoreResult<u64> {
    let mut emails: Vec<&str> = plan.emails.iter().map(|e| &**e).collect();
    emails.sort_unstable();
    emails.dedup();
    let mut missing = 0;
    if emails.len() >= MERGE_MIN_ROWS {
        // One ordered walk of the account's developers beside the sorted emails.
        let mut walk = conn
            .prepare_cached("SELECT email FROM developers WHERE account_id = ?1 AND email >= ?2 ORDER BY email")
            .map_err(map_err)?;
        let mut rows = walk.query(params![account.0, emails[0]]).map_err(map_err)?;
        let mut ahead: Option<String> = None;
        let mut exhausted = false;
        for email in emails {
            while !exhausted && ahead.as_deref().is_none_or(|a| a < email) {
                match rows.next().map_err(map_err)? {
                    Some(r) => ahead = Some(text_column(r, 0)?.to_string()),
                    None => exhausted = true,
                }
            }
            if ahead.as_deref() != Some(email) {
                missing += 1;
            }
        }
    } else {
        let mut find =
            conn.prepare_cached("SELECT 1 FROM developers WHERE account_id = ?1 AND email = ?2").map_err(map_err)?;
        for email in emails {
            if find.query_row(params![account.0, email], |_| Ok(())).optional().map_err(map_err)?.is_none() {
                missing += 1;
            }
        }
    }
    Ok(missing)
}

/// Locked identities the upload would move, as the upload itself reports them.
#[derive(Default)]
struct LockedMoves {
    total: u64,
    rows: Vec<LockedMove>,
}

/// Counts one integration's rows (in identity key order, as plans come) against its
/// stored identities: a walk of the unique index for many rows, a lookup each for few.
fn classify_rows(
    conn: &Connection,
    account: AccountId,
    integration: IntegrationId,
    rows: &[PlannedRow],
    force: bool,
    summary: &mut UploadSummary,
    locked: &mut LockedMoves,
) -> StoreResult<()> {
    let mut count = |existing: Option<(&str, bool)>, row: &PlannedRow| match existing {
        None => summary.created += 1,
        Some((email, _)) if email == &*row.email => summary.unchanged += 1,
        Some((email, true)) if !force => {
            locked.total += 1;
            if locked.rows.len() < MAX_LOCKED_SAMPLES {
                locked.rows.push(LockedMove {
                    integration_id: integration,
                    identity: row.identity.to_string(),
                    locked_to: email.to_string(),
                    requested: row.email.to_string(),
                });
            }
        }
        Some(_) => summary.reassigned += 1,
    };
    let Some(first) = rows.first() else { return Ok(()) };
    if rows.len() >= MERGE_MIN_ROWS {
        let mut walk = conn
            .prepare_cached(
                "SELECT identity_key, email, locked FROM identities
                 WHERE account_id = ?1 AND integration_id = ?2 AND identity_key >= ?3 ORDER BY identity_key",
            )
            .map_err(map_err)?;
        let mut stored = walk.query(params![account.0, integration, first.key()]).map_err(map_err)?;
        let (mut key, mut email, mut is_locked) = (String::new(), String::new(), false);
        let (mut present, mut exhausted) = (false, false);
        for row in rows {
            while !exhausted && (!present || key.as_str() < row.key()) {
                match stored.next().map_err(map_err)? {
                    Some(r) => {
                        key.clear();
                        key.push_str(text_column(r, 0)?);
                        email.clear();
                        email.push_str(text_column(r, 1)?);
                        is_locked = r.get::<_, i64>(2).map_err(map_err)? != 0;
                        present = true;
                    }
                    None => {
                        present = false;
                        exhausted = true;
                    }
                }
            }
            count((present && key == row.key()).then_some((email.as_str(), is_locked)), row);
        }
    } else {
        let mut find = conn
            .prepare_cached(
                "SELECT email, locked FROM identities WHERE account_id = ?1 AND integration_id = ?2 AND identity_key = ?3",
            )
            .map_err(map_err)?;
        for row in rows {
            let stored: Option<(String, bool)> = find
                .query_row(params![account.0, integration, row.key()], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? != 0)))
                .optional()
                .map_err(map_err)?;
            count(stored.as_ref().map(|(email, locked)| (email.as_str(), *locked)), row);
        }
    }
    Ok(())
}

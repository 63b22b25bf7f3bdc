//! The lock family on SQLite.

use super::changes::close_change_set;
use async_trait::async_trait;
use devid_core::change::AuditAction;
use devid_core::change::ChangeKind;
use devid_core::plan::DeletePlan;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{Audit, SqliteStore, bump_version, insert_audit, map_err};
use crate::locks::{LockStore, LockSummary};
use crate::{ChangeContext, StoreResult, now_micros};

#[async_trait]
impl LockStore for SqliteStore {
    async fn set_locked(&self, ctx: &ChangeContext, plan: DeletePlan, locked: bool) -> StoreResult<LockSummary> {
        let ctx = ctx.clone();
        self.write(move |conn, _| set_locked_in(conn, &ctx, &plan, locked)).await
    }
}

fn set_locked_in(
    conn: &mut Connection,
    ctx: &ChangeContext,
    plan: &DeletePlan,
    locked: bool,
) -> StoreResult<LockSummary> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(map_err)?;
    let now = now_micros();
    let mut summary = LockSummary { received: plan.received, duplicates: plan.duplicates, ..Default::default() };
    let action = if locked { AuditAction::IdentityLocked } else { AuditAction::IdentityUnlocked };
    {
        let mut find = tx
            .prepare_cached(
                "SELECT id, identity, email, locked FROM identities
                 WHERE account_id = ?1 AND integration_id = ?2 AND identity_key = ?3",
            )
            .map_err(map_err)?;
        let mut set = tx.prepare_cached("UPDATE identities SET locked = ?1 WHERE id = ?2").map_err(map_err)?;
        for row in &plan.rows {
            let found: Option<(i64, String, String, i64)> = find
                .query_row(params![ctx.account.0, row.integration_id, row.key()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()
                .map_err(map_err)?;
            match found {
                None => summary.not_found += 1,
                Some((_, _, _, state)) if (state != 0) == locked => summary.unchanged += 1,
                Some((id, identity, email, _)) => {
                    set.execute(params![i64::from(locked), id]).map_err(map_err)?;
                    insert_audit(
                        &tx,
                        ctx,
                        now,
                        Audit {
                            action: action.as_str(),
                            integration_id: Some(row.integration_id),
                            identity: Some(&identity),
                            old_email: Some(&email),
                            new_email: Some(&email),
                            detail: None,
                        },
                    )
                    .map_err(map_err)?;
                    summary.changed += 1;
                }
            }
        }
    }
    if summary.changed > 0 {
        bump_version(&tx, ctx.account)?;
    }
    close_change_set(&tx, ctx, ChangeKind::Lock).map_err(map_err)?;
    tx.commit().map_err(map_err)?;
    Ok(summary)
}

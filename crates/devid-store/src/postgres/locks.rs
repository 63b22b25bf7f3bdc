//! The lock family on PostgreSQL.

use crate::postgres::changes::close_change_set;
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use devid_core::change::AuditAction;
use devid_core::change::ChangeKind;
use devid_core::plan::DeletePlan;

use super::{Audit, PgResult, PostgresStore, bump_version, insert_audit, lock_account};
use crate::locks::{LockStore, LockSummary};
use crate::{ChangeContext, StoreResult, now_micros};

#[async_trait]
impl LockStore for PostgresStore {
    async fn set_locked(&self, ctx: &ChangeContext, plan: DeletePlan, locked: bool) -> StoreResult<LockSummary> {
        self.retrying(|| async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let summary = set_locked_in(&tx, ctx, &plan, locked).await?;
            close_change_set(&tx, ctx, ChangeKind::Lock).await?;
            tx.commit().await?;
            Ok(summary)
        })
        .await
    }
}

async fn set_locked_in(
    tx: &impl GenericClient,
    ctx: &ChangeContext,
    plan: &DeletePlan,
    locked: bool,
) -> PgResult<LockSummary> {
    lock_account(tx, ctx.account).await?;
    let now = now_micros();
    let mut summary = LockSummary { received: plan.received, duplicates: plan.duplicates, ..Default::default() };
    let action = if locked { AuditAction::IdentityLocked } else { AuditAction::IdentityUnlocked };
    let find = tx
        .prepare_cached(
            "SELECT id, identity, email, locked FROM identities
             WHERE account_id = $1 AND integration_id = $2 AND identity_key = $3",
        )
        .await?;
    let set = tx.prepare_cached("UPDATE identities SET locked = $1 WHERE id = $2").await?;
    let wanted = i32::from(locked);
    for row in &plan.rows {
        let found = tx.query_opt(&find, &[&ctx.account.0, &row.integration_id, &row.key()]).await?;
        let Some(found) = found else {
            summary.not_found += 1;
            continue;
        };
        let state: i32 = found.try_get(3)?;
        if (state != 0) == locked {
            summary.unchanged += 1;
            continue;
        }
        let (id, identity, email): (i64, String, String) = (found.try_get(0)?, found.try_get(1)?, found.try_get(2)?);
        tx.execute(&set, &[&wanted, &id]).await?;
        insert_audit(
            tx,
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
        .await?;
        summary.changed += 1;
    }
    if summary.changed > 0 {
        bump_version(tx, ctx.account).await?;
    }
    Ok(summary)
}

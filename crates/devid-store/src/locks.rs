//! The lock family of the storage contract: identities an upload may not move. Accepted
//! suggestions are locked as they are written; people lock and unlock others here.

use async_trait::async_trait;
use devid_core::plan::DeletePlan;
use serde::Serialize;

use crate::{ChangeContext, StoreResult};

/// What a lock or unlock request did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LockSummary {
    pub received: u64,
    /// Identities whose state this request changed.
    pub changed: u64,
    /// Identities already in the state asked for.
    pub unchanged: u64,
    pub not_found: u64,
    pub duplicates: u64,
}

#[async_trait]
pub trait LockStore: Send + Sync {
    /// Locks (`locked`) or unlocks the identities the plan names, in one transaction,
    /// with one audit event per identity whose state changed; identities that do not
    /// exist are counted, not created.
    async fn set_locked(&self, ctx: &ChangeContext, plan: DeletePlan, locked: bool) -> StoreResult<LockSummary>;
}

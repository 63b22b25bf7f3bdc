//! The contributor family on PostgreSQL. Not built yet: every call answers that the
//! feature needs the SQLite backend for now.

use async_trait::async_trait;
use devid_core::contributor::IngestMode;
use devid_core::contributor::plan::ContributorPlan;

use super::PostgresStore;
use crate::contributors::{
    BotFlag, BotFlagSummary, ContributorPage, ContributorQuery, ContributorStore, Coverage, CoverageQuery,
    IngestSummary,
};
use crate::{AccountId, ChangeContext, StoreError, StoreResult};

fn not_yet() -> StoreError {
    StoreError::Unavailable("contributors are not stored on PostgreSQL yet; use the SQLite backend.".into())
}

#[async_trait]
impl ContributorStore for PostgresStore {
    async fn ingest_contributors(
        &self,
        _ctx: &ChangeContext,
        _source: &str,
        _mode: IngestMode,
        _plan: ContributorPlan,
        _dry_run: bool,
    ) -> StoreResult<IngestSummary> {
        Err(not_yet())
    }

    async fn list_contributors(&self, _account: AccountId, _query: ContributorQuery) -> StoreResult<ContributorPage> {
        Err(not_yet())
    }

    async fn set_bot_flags(&self, _ctx: &ChangeContext, _flags: Vec<BotFlag>) -> StoreResult<BotFlagSummary> {
        Err(not_yet())
    }

    async fn coverage(&self, _account: AccountId, _query: CoverageQuery) -> StoreResult<Coverage> {
        Err(not_yet())
    }

    async fn contributors_version(&self, _account: AccountId) -> StoreResult<i64> {
        Err(not_yet())
    }
}

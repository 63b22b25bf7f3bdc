//! The contributor family on PostgreSQL: ingest of a source's report, listings, manual
//! bot decisions and coverage, with exactly the semantics of the SQLite backend. Every
//! write is one transaction under the account's advisory lock and runs a fixed handful
//! of set-based statements (rows go in as arrays through UNNEST), never a round trip per
//! contributor; the decisions between them are made in Rust, as on SQLite. Split in
//! three (this file: the trait, listings, coverage and integration deletes; `ingest.rs`;
//! `bot_flags.rs`) to keep each under the size the style guide allows.

mod bot_flags;
mod ingest;

use std::collections::{HashMap, HashSet};

use crate::postgres::changes::close_change_set;
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use devid_core::change::ChangeKind;
use devid_core::contributor::plan::ContributorPlan;
use devid_core::contributor::zones::UtcOffsets;
use devid_core::contributor::{ActivityCounts, IngestMode};
use devid_core::types::IntegrationId;
use tokio_postgres::Row;

use super::{PgError, PgResult, PostgresStore, params, parse_type, refs};
use crate::contributors::{
    BotFlag, BotFlagSummary, ContributorId, ContributorPage, ContributorPaging, ContributorQuery, ContributorRecord,
    ContributorStatus, ContributorStore, Coverage, CoverageQuery, DeveloperIdentityCount, IngestSummary,
    IntegrationCoverage, SourceReport, bot_status, merge_tallies, most_seen_first, stored_count,
};
use crate::sql::{self, Dialect};
use crate::{AccountId, ChangeContext, StoreError, StoreResult};

#[async_trait]
impl ContributorStore for PostgresStore {
    async fn ingest_contributors(
        &self,
        ctx: &ChangeContext,
        source: &str,
        mode: IngestMode,
        plan: ContributorPlan,
        dry_run: bool,
    ) -> StoreResult<IngestSummary> {
        self.retrying(|| async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let summary = ingest::ingest_in(&tx, ctx, source, mode, &plan, dry_run).await?;
            if dry_run {
                tx.rollback().await?;
            } else {
                close_change_set(&tx, ctx, ChangeKind::Contributors).await?;
                tx.commit().await?;
            }
            Ok(summary)
        })
        .await
    }

    async fn list_contributors(&self, account: AccountId, query: ContributorQuery) -> StoreResult<ContributorPage> {
        async {
            let client = self.client().await?;
            list_in(&client, account, &query).await
        }
        .await
        .map_err(PgError::into_store)
    }

    async fn set_bot_flags(&self, ctx: &ChangeContext, flags: Vec<BotFlag>) -> StoreResult<BotFlagSummary> {
        self.retrying(|| async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let summary = bot_flags::set_bot_flags_in(&tx, ctx, &flags).await?;
            close_change_set(&tx, ctx, ChangeKind::BotFlag).await?;
            tx.commit().await?;
            Ok(summary)
        })
        .await
    }

    async fn coverage(&self, account: AccountId, query: CoverageQuery) -> StoreResult<Coverage> {
        async {
            let client = self.client().await?;
            coverage_in(&client, account, &query).await
        }
        .await
        .map_err(PgError::into_store)
    }

    async fn contributors_version(&self, account: AccountId) -> StoreResult<i64> {
        async {
            let client = self.client().await?;
            let statement = client.prepare_cached("SELECT contributors_version FROM accounts WHERE id = $1").await?;
            Ok(match client.query_opt(&statement, &[&account.0]).await? {
                Some(row) => row.try_get(0)?,
                None => 0,
            })
        }
        .await
        .map_err(PgError::into_store)
    }
}

/// The ids of the account's integrations.
async fn integration_ids_in(tx: &impl GenericClient, account: AccountId) -> PgResult<HashSet<IntegrationId>> {
    let rows = tx.query("SELECT id FROM integrations WHERE account_id = $1", &[&account.0]).await?;
    rows.iter().map(|r| Ok(r.try_get::<_, i64>(0)?)).collect()
}

async fn bump_contributors_version(tx: &impl GenericClient, account: AccountId) -> PgResult<()> {
    tx.execute("UPDATE accounts SET contributors_version = contributors_version + 1 WHERE id = $1", &[&account.0])
        .await?;
    Ok(())
}

/// Removes an integration's contributors, their sources and bot decisions: called in the
/// transaction that deletes the integration.
pub(super) async fn delete_integration_contributors_in(
    tx: &impl GenericClient,
    account: AccountId,
    integration: IntegrationId,
) -> PgResult<()> {
    tx.execute(
        "DELETE FROM contributor_sources WHERE contributor_id IN
         (SELECT id FROM contributors WHERE account_id = $1 AND integration_id = $2)",
        &[&account.0, &integration],
    )
    .await?;
    let removed = tx
        .execute("DELETE FROM contributors WHERE account_id = $1 AND integration_id = $2", &[&account.0, &integration])
        .await?;
    let flags = tx
        .execute(
            "DELETE FROM contributor_bot_flags WHERE account_id = $1 AND integration_id = $2",
            &[&account.0, &integration],
        )
        .await?;
    let _ = (removed, flags);
    // Always: coverage lists the account's integrations, this one included until now.
    bump_contributors_version(tx, account).await?;
    Ok(())
}

/// Marks what is derived from contributors as stale after an integration was created,
/// renamed or retyped: coverage lists integrations by name and type.
pub(super) async fn integrations_changed_in(tx: &impl GenericClient, account: AccountId) -> PgResult<()> {
    bump_contributors_version(tx, account).await
}

/// One listed row and the values its keyset cursor is made of.
struct ListedRow {
    record: ContributorRecord,
    identity_key: String,
    activity: i64,
    last_seen: i64,
}

/// Reads a row of `sql::CONTRIBUTOR_COLUMNS`.
fn contributor_from_row(r: &Row) -> PgResult<ListedRow> {
    let application_type = match r.try_get::<_, Option<String>>(2)? {
        Some(t) => parse_type(&t)?,
        None => return Err(StoreError::Internal("A listed contributor's integration is missing.".into()).into()),
    };
    let mut counts = ActivityCounts::default();
    for (i, slot) in counts.0.iter_mut().enumerate() {
        *slot = r.try_get::<_, i64>(6 + i)?.max(0) as u64;
    }
    let last_seen: i64 = r.try_get(12)?;
    let rule: Option<String> = r.try_get(13)?;
    let manual: Option<i32> = r.try_get(15)?;
    Ok(ListedRow {
        record: ContributorRecord {
            id: ContributorId(r.try_get(0)?),
            integration_id: r.try_get(1)?,
            application_type,
            identity: r.try_get(3)?,
            name: r.try_get(4)?,
            email: r.try_get(5)?,
            counts,
            first_seen: r.try_get(11)?,
            last_seen: (last_seen != 0).then_some(last_seen),
            bot: bot_status(manual.map(|b| b != 0), rule.as_deref()),
            mapped_email: r.try_get(16)?,
            sources: Vec::new(),
            names: Vec::new(),
            emails: Vec::new(),
            utc_offsets: UtcOffsets::default(),
        },
        identity_key: r.try_get(17)?,
        activity: r.try_get(18)?,
        last_seen,
    })
}

async fn list_in(client: &impl GenericClient, account: AccountId, q: &ContributorQuery) -> PgResult<ContributorPage> {
    let built = sql::contributor_sql(Dialect::Postgres, account, q).map_err(StoreError::Invalid)?;
    let total_count = match &built.count {
        Some(count) => {
            let p = params(&count.args);
            let n: i64 = client.query_one(&count.text, &refs(&p)).await?.try_get(0)?;
            n.max(0) as u64
        }
        None => 0,
    };
    let p = params(&built.page.args);
    let statement = client.prepare_cached(&built.page.text).await?;
    let rows = client.query(&statement, &refs(&p)).await?;
    let mut listed = rows.iter().map(contributor_from_row).collect::<PgResult<Vec<_>>>()?;
    let has_next = built.limit.is_some_and(|limit| listed.len() as u64 > limit);
    if let Some(limit) = built.limit {
        listed.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    let next_cursor = match (has_next, listed.last()) {
        (true, Some(last)) => Some(sql::contributor_cursor(
            q.sort,
            last.activity,
            last.last_seen,
            last.record.integration_id,
            &last.identity_key,
        )),
        _ => None,
    };
    let mut records: Vec<ContributorRecord> = listed.into_iter().map(|l| l.record).collect();
    if !matches!(q.paging, ContributorPaging::All) {
        fill_sources(client, &mut records).await?;
    }
    Ok(ContributorPage { records, total_count, has_next, next_cursor })
}

/// Adds each record's sources and every name, email and UTC offset they saw: one query
/// for the page.
async fn fill_sources(client: &impl GenericClient, records: &mut [ContributorRecord]) -> PgResult<()> {
    if records.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = records.iter().map(|r| r.id.0).collect();
    let index: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let statement = client
        .prepare_cached(
            "SELECT contributor_id, source, names, emails, utc_offsets FROM contributor_sources
             WHERE contributor_id = ANY($1::BIGINT[]) ORDER BY contributor_id, source",
        )
        .await?;
    for r in client.query(&statement, &[&ids]).await? {
        let Some(record) = index.get(&r.try_get::<_, i64>(0)?).and_then(|i| records.get_mut(*i)) else { continue };
        record.sources.push(r.try_get(1)?);
        merge_tallies(&mut record.names, SourceReport::decode_tallies(&r.try_get::<_, String>(2)?));
        merge_tallies(&mut record.emails, SourceReport::decode_tallies(&r.try_get::<_, String>(3)?));
        record.utc_offsets = record.utc_offsets.union(&UtcOffsets::decode(r.try_get::<_, &str>(4)?));
    }
    for record in records {
        record.names = most_seen_first(std::mem::take(&mut record.names));
        record.emails = most_seen_first(std::mem::take(&mut record.emails));
    }
    Ok(())
}

/// Counts per integration. PostgreSQL sums BIGINT into NUMERIC, so each sum is cast back.
const COVERAGE_BY_INTEGRATION: &str = "SELECT c.integration_id, COUNT(*), SUM(c.is_bot)::BIGINT,
    SUM(CASE WHEN c.is_bot = 0 AND d.id IS NOT NULL THEN 1 ELSE 0 END)::BIGINT,
    SUM(CASE WHEN c.is_bot = 0 THEN c.commits ELSE 0 END)::BIGINT,
    SUM(CASE WHEN c.is_bot = 0 THEN c.prs ELSE 0 END)::BIGINT,
    SUM(CASE WHEN c.is_bot = 0 THEN c.reviews ELSE 0 END)::BIGINT,
    SUM(CASE WHEN c.is_bot = 0 THEN c.issues ELSE 0 END)::BIGINT,
    SUM(CASE WHEN c.is_bot = 0 THEN c.others ELSE 0 END)::BIGINT,
    SUM(CASE WHEN c.is_bot = 0 AND d.id IS NOT NULL THEN c.commits ELSE 0 END)::BIGINT,
    SUM(CASE WHEN c.is_bot = 0 AND d.id IS NOT NULL THEN c.prs ELSE 0 END)::BIGINT,
    SUM(CASE WHEN c.is_bot = 0 AND d.id IS NOT NULL THEN c.reviews ELSE 0 END)::BIGINT,
    SUM(CASE WHEN c.is_bot = 0 AND d.id IS NOT NULL THEN c.issues ELSE 0 END)::BIGINT,
    SUM(CASE WHEN c.is_bot = 0 AND d.id IS NOT NULL THEN c.others ELSE 0 END)::BIGINT
    FROM contributors c
    LEFT JOIN identities d
      ON d.account_id = c.account_id AND d.integration_id = c.integration_id AND d.identity_key = c.identity_key
    WHERE c.account_id = $1
    GROUP BY c.integration_id";

async fn coverage_in(client: &impl GenericClient, account: AccountId, q: &CoverageQuery) -> PgResult<Coverage> {
    let mut integrations = Vec::new();
    let statement = client
        .prepare_cached("SELECT id, application_type, name FROM integrations WHERE account_id = $1 ORDER BY id")
        .await?;
    for r in client.query(&statement, &[&account.0]).await? {
        integrations.push(IntegrationCoverage {
            integration_id: r.try_get(0)?,
            application_type: Some(parse_type(&r.try_get::<_, String>(1)?)?),
            name: r.try_get(2)?,
            ..Default::default()
        });
    }
    let statement = client.prepare_cached(COVERAGE_BY_INTEGRATION).await?;
    for r in client.query(&statement, &[&account.0]).await? {
        let number = |i: usize| -> PgResult<u64> { Ok(r.try_get::<_, Option<i64>>(i)?.unwrap_or(0).max(0) as u64) };
        let id: i64 = r.try_get(0)?;
        let Some(entry) = integrations.iter_mut().find(|c| c.integration_id == id) else { continue };
        entry.contributors = number(1)?;
        entry.bots = number(2)?;
        entry.mapped = number(3)?;
        // Mapped counts people only, so the three never overlap; saturating all the same.
        entry.unmapped = entry.contributors.saturating_sub(entry.bots).saturating_sub(entry.mapped);
        for k in 0..5 {
            entry.activity.0[k] = number(4 + k)?;
            entry.attributed.0[k] = number(9 + k)?;
        }
    }

    let top = list_in(
        client,
        account,
        &ContributorQuery {
            status: Some(ContributorStatus::Unmapped),
            paging: ContributorPaging::Offset { page_index: 0, page_size: q.top_unmapped },
            count_total: false,
            ..Default::default()
        },
    )
    .await?;

    let statement = client
        .prepare_cached(
            "SELECT email, COUNT(*) AS n FROM identities WHERE account_id = $1
             GROUP BY email HAVING COUNT(*) > $2 ORDER BY n DESC, email LIMIT $3",
        )
        .await?;
    let many_identities = client
        .query(&statement, &[&account.0, &stored_count(q.many_identities_over), &stored_count(q.list_limit)])
        .await?
        .iter()
        .map(|r| Ok(DeveloperIdentityCount { email: r.try_get(0)?, identities: r.try_get::<_, i64>(1)?.max(0) as u64 }))
        .collect::<PgResult<Vec<_>>>()?;

    let (missing, missing_total) = match q.missing_in {
        None => (Vec::new(), 0),
        Some(integration) => {
            const WITHOUT: &str = "FROM developers v WHERE v.account_id = $1
                AND EXISTS (SELECT 1 FROM identities d WHERE d.account_id = v.account_id AND d.email = v.email)
                AND NOT EXISTS (SELECT 1 FROM identities d
                    WHERE d.account_id = v.account_id AND d.email = v.email AND d.integration_id = $2)";
            let total: i64 = client
                .query_one(&format!("SELECT COUNT(*) {WITHOUT}"), &[&account.0, &integration])
                .await?
                .try_get(0)?;
            let statement =
                client.prepare_cached(&format!("SELECT v.email {WITHOUT} ORDER BY v.email LIMIT $3")).await?;
            let emails = client
                .query(&statement, &[&account.0, &integration, &stored_count(q.list_limit)])
                .await?
                .iter()
                .map(|r| r.try_get::<_, String>(0))
                .collect::<Result<Vec<_>, _>>()?;
            (emails, total.max(0) as u64)
        }
    };
    Ok(Coverage { integrations, top_unmapped: top.records, many_identities, missing, missing_total })
}

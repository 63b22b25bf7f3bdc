//! The contributor family on PostgreSQL: ingest of a source's report, listings, manual
//! bot decisions and coverage, with exactly the semantics of the SQLite backend. Every
//! write is one transaction under the account's advisory lock and runs a fixed handful
//! of set-based statements (rows go in as arrays through UNNEST), never a round trip per
//! contributor; the decisions between them are made in Rust, as on SQLite.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use devid_core::change::AuditAction;
use devid_core::contributor::bots::BotRule;
use devid_core::contributor::plan::{ContributorPlan, PlannedContributor};
use devid_core::contributor::{ActivityCounts, IngestMode};
use devid_core::time::Micros;
use devid_core::types::IntegrationId;
use tokio_postgres::Row;

use super::{Audit, PgError, PgResult, PostgresStore, insert_audit, lock_account, params, parse_type, refs};
use crate::contributors::{
    BotFlag, BotFlagSummary, ContributorId, ContributorPage, ContributorPaging, ContributorQuery, ContributorRecord,
    ContributorStatus, ContributorStore, Coverage, CoverageQuery, DeveloperIdentityCount, IngestSummary,
    IntegrationCoverage, SourceReport, bot_status, merge_tallies, most_seen_first, stored_count,
};
use crate::sql::{self, Dialect};
use crate::{AccountId, ChangeContext, StoreError, StoreResult, now_micros};

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
            let summary = ingest_in(&tx, ctx, source, mode, &plan, dry_run).await?;
            if dry_run {
                tx.rollback().await?;
            } else {
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
            let summary = set_bot_flags_in(&tx, ctx, &flags).await?;
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

/// What the database holds for one row of a plan.
#[derive(Default)]
struct Found {
    /// The contributor with the row's key: its id, stored rule and bot flag.
    existing: Option<(i64, Option<String>, bool)>,
    /// Its report from the source being ingested.
    report: Option<SourceReport>,
    /// A manual bot decision about the key.
    manual: Option<bool>,
}

/// Every plan row's contributor, report from `source` and manual decision, in plan order:
/// one query for the whole plan.
async fn find_in(
    tx: &Transaction<'_>,
    account: AccountId,
    source: &str,
    plan: &ContributorPlan,
) -> PgResult<Vec<Found>> {
    let ids: Vec<i64> = plan.rows.iter().map(|r| r.integration_id).collect();
    let keys: Vec<&str> = plan.rows.iter().map(PlannedContributor::key).collect();
    let statement = tx
        .prepare_cached(
            "SELECT r.ord, c.id, c.bot_rule, c.is_bot, f.is_bot,
                    s.commits, s.prs, s.reviews, s.issues, s.others, s.first_seen, s.last_seen, s.names, s.emails
             FROM UNNEST($2::BIGINT[], $3::TEXT[]) WITH ORDINALITY AS r(integration_id, identity_key, ord)
             LEFT JOIN contributors c
               ON c.account_id = $1 AND c.integration_id = r.integration_id AND c.identity_key = r.identity_key
             LEFT JOIN contributor_bot_flags f
               ON f.account_id = $1 AND f.integration_id = r.integration_id AND f.identity_key = r.identity_key
             LEFT JOIN contributor_sources s ON s.contributor_id = c.id AND s.source = $4",
        )
        .await?;
    let rows = tx.query(&statement, &[&account.0, &ids, &keys, &source]).await?;
    let mut found: Vec<Found> = std::iter::repeat_with(Found::default).take(plan.rows.len()).collect();
    for r in &rows {
        let ord: i64 = r.try_get(0)?;
        let slot = usize::try_from(ord - 1)
            .ok()
            .and_then(|i| found.get_mut(i))
            .ok_or_else(|| StoreError::Internal(format!("the plan has no row {ord}")))?;
        if let Some(id) = r.try_get::<_, Option<i64>>(1)? {
            slot.existing = Some((id, r.try_get(2)?, r.try_get::<_, i32>(3)? != 0));
        }
        slot.manual = r.try_get::<_, Option<i32>>(4)?.map(|b| b != 0);
        if let Some(names) = r.try_get::<_, Option<String>>(12)? {
            let mut counts = ActivityCounts::default();
            for (i, count) in counts.0.iter_mut().enumerate() {
                *count = r.try_get::<_, i64>(5 + i)?.max(0) as u64;
            }
            slot.report = Some(SourceReport {
                counts,
                first_seen: r.try_get(10)?,
                last_seen: r.try_get(11)?,
                names: SourceReport::decode_tallies(&names),
                emails: SourceReport::decode_tallies(&r.try_get::<_, String>(13)?),
            });
        }
    }
    Ok(found)
}

/// Source reports as column arrays, for statements that take their rows through UNNEST.
#[derive(Default)]
struct ReportColumns {
    counts: [Vec<i64>; 5],
    first_seen: Vec<Option<Micros>>,
    last_seen: Vec<Option<Micros>>,
    names: Vec<String>,
    emails: Vec<String>,
}

impl ReportColumns {
    fn push(&mut self, report: &SourceReport) {
        for (column, count) in self.counts.iter_mut().zip(report.counts.0) {
            column.push(stored_count(count));
        }
        self.first_seen.push(report.first_seen);
        self.last_seen.push(report.last_seen);
        self.names.push(SourceReport::encode_tallies(&report.names));
        self.emails.push(SourceReport::encode_tallies(&report.emails));
    }
}

/// Contributors the ingest creates, as column arrays.
#[derive(Default)]
struct NewColumns<'a> {
    integration_ids: Vec<i64>,
    keys: Vec<&'a str>,
    identities: Vec<&'a str>,
    names: Vec<Option<&'a str>>,
    emails: Vec<Option<&'a str>>,
    activity: Vec<i64>,
    rules: Vec<Option<&'static str>>,
    bots: Vec<i32>,
    reports: ReportColumns,
}

/// An existing contributor whose report from the source changed.
struct Changed<'a> {
    id: i64,
    row: &'a PlannedContributor,
    report: SourceReport,
    is_bot: bool,
}

async fn ingest_in(
    tx: &Transaction<'_>,
    ctx: &ChangeContext,
    source: &str,
    mode: IngestMode,
    plan: &ContributorPlan,
    dry_run: bool,
) -> PgResult<IngestSummary> {
    let account = ctx.account;
    lock_account(tx, account).await?;
    let known = integration_ids_in(tx, account).await?;
    if let Some(row) = plan.rows.iter().find(|r| !known.contains(&r.integration_id)) {
        return Err(StoreError::Invalid(format!(
            "Integration {} no longer exists; it was deleted while the upload was read. Check GET /v2/integrations and send the upload again.",
            row.integration_id
        ))
        .into());
    }
    let now = now_micros();
    let mut summary =
        IngestSummary { received: plan.received, contributors: plan.rows.len() as u64, ..Default::default() };
    let found = find_in(tx, account, source, plan).await?;
    let mut fresh = NewColumns::default();
    let mut changed = Vec::new();
    let mut reported = HashSet::new();
    for (row, found) in plan.rows.iter().zip(found) {
        let is_bot = found.manual.unwrap_or(row.bot_rule.is_some());
        summary.bots += u64::from(is_bot);
        let rule = row.bot_rule.map(BotRule::as_str);
        let Some((id, stored_rule, stored_bot)) = found.existing else {
            fresh.integration_ids.push(row.integration_id);
            fresh.keys.push(row.key());
            fresh.identities.push(&row.identity);
            fresh.names.push(row.top_name());
            fresh.emails.push(row.top_email());
            fresh.activity.push(stored_count(row.counts.total()));
            fresh.rules.push(rule);
            fresh.bots.push(i32::from(is_bot));
            fresh.reports.push(&SourceReport::of(row));
            summary.created += 1;
            continue;
        };
        reported.insert(id);
        let new = match (mode, &found.report) {
            (IngestMode::Add, Some(old)) => old.merged(&SourceReport::of(row)),
            _ => SourceReport::of(row),
        };
        if found.report.as_ref() == Some(&new) && stored_rule.as_deref() == rule && stored_bot == is_bot {
            summary.unchanged += 1;
            continue;
        }
        changed.push(Changed { id, row, report: new, is_bot });
        summary.updated += 1;
    }
    // Before the inserts: the source's new contributors are not in `reported`, and
    // would otherwise count as no longer reported.
    let mut refresh: Vec<i64> = changed.iter().map(|c| c.id).collect();
    if mode == IngestMode::Replace {
        let (removed, detached) = drop_unreported_in(tx, account, source, &reported).await?;
        summary.removed = removed;
        summary.detached = detached.len() as u64;
        refresh.extend(detached);
    }
    insert_new_in(tx, account, source, &fresh, now).await?;
    put_sources_in(tx, account, source, &changed).await?;
    refresh_totals_in(tx, &refresh, now).await?;
    describe_in(tx, &changed).await?;
    if dry_run {
        return Ok(summary);
    }
    let detail = serde_json::json!({
        "source": source, "mode": mode.as_str(), "received": summary.received,
        "created": summary.created, "updated": summary.updated, "unchanged": summary.unchanged,
        "removed": summary.removed, "detached": summary.detached,
    })
    .to_string();
    insert_audit(
        tx,
        ctx,
        now,
        Audit { action: AuditAction::ContributorsIngested.as_str(), detail: Some(&detail), ..Default::default() },
    )
    .await?;
    if summary.created + summary.updated + summary.removed + summary.detached > 0 {
        bump_contributors_version(tx, account).await?;
    }
    Ok(summary)
}

/// Creates the new contributors and their report from `source`, in one statement.
async fn insert_new_in(
    tx: &Transaction<'_>,
    account: AccountId,
    source: &str,
    new: &NewColumns<'_>,
    now: Micros,
) -> PgResult<()> {
    if new.keys.is_empty() {
        return Ok(());
    }
    let statement = tx
        .prepare_cached(
            "WITH r AS (
                SELECT * FROM UNNEST($4::BIGINT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::BIGINT[],
                                     $10::TEXT[], $11::INTEGER[], $12::BIGINT[], $13::BIGINT[], $14::BIGINT[],
                                     $15::BIGINT[], $16::BIGINT[], $17::BIGINT[], $18::BIGINT[], $19::TEXT[], $20::TEXT[])
                    AS r(integration_id, identity_key, identity, name, email, activity, bot_rule, is_bot,
                         commits, prs, reviews, issues, others, first_seen, last_seen, names, emails)),
             ins AS (
                INSERT INTO contributors (account_id, integration_id, identity_key, identity, name, email,
                    commits, prs, reviews, issues, others, activity, first_seen, last_seen, bot_rule, is_bot,
                    created_at, updated_at)
                SELECT $1::BIGINT, integration_id, identity_key, identity, name, email,
                    commits, prs, reviews, issues, others, activity, first_seen, COALESCE(last_seen, 0), bot_rule, is_bot,
                    $2::BIGINT, $2::BIGINT
                FROM r
                RETURNING id, integration_id, identity_key)
             INSERT INTO contributor_sources (contributor_id, source, account_id,
                 commits, prs, reviews, issues, others, first_seen, last_seen, names, emails)
             SELECT ins.id, $3::TEXT, $1::BIGINT,
                 r.commits, r.prs, r.reviews, r.issues, r.others, r.first_seen, r.last_seen, r.names, r.emails
             FROM ins JOIN r ON r.integration_id = ins.integration_id AND r.identity_key = ins.identity_key",
        )
        .await?;
    let c = &new.reports.counts;
    tx.execute(
        &statement,
        &[
            &account.0,
            &now,
            &source,
            &new.integration_ids,
            &new.keys,
            &new.identities,
            &new.names,
            &new.emails,
            &new.activity,
            &new.rules,
            &new.bots,
            &c[0],
            &c[1],
            &c[2],
            &c[3],
            &c[4],
            &new.reports.first_seen,
            &new.reports.last_seen,
            &new.reports.names,
            &new.reports.emails,
        ],
    )
    .await?;
    Ok(())
}

/// Writes each changed contributor's report from `source`, replacing the one it had.
async fn put_sources_in(
    tx: &Transaction<'_>,
    account: AccountId,
    source: &str,
    changed: &[Changed<'_>],
) -> PgResult<()> {
    if changed.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = changed.iter().map(|c| c.id).collect();
    let mut reports = ReportColumns::default();
    for c in changed {
        reports.push(&c.report);
    }
    let statement = tx
        .prepare_cached(
            "INSERT INTO contributor_sources (contributor_id, source, account_id,
                 commits, prs, reviews, issues, others, first_seen, last_seen, names, emails)
             SELECT r.id, $1::TEXT, $2::BIGINT,
                 r.commits, r.prs, r.reviews, r.issues, r.others, r.first_seen, r.last_seen, r.names, r.emails
             FROM UNNEST($3::BIGINT[], $4::BIGINT[], $5::BIGINT[], $6::BIGINT[], $7::BIGINT[], $8::BIGINT[],
                         $9::BIGINT[], $10::BIGINT[], $11::TEXT[], $12::TEXT[])
                 AS r(id, commits, prs, reviews, issues, others, first_seen, last_seen, names, emails)
             ON CONFLICT (contributor_id, source) DO UPDATE SET
                 account_id = EXCLUDED.account_id, commits = EXCLUDED.commits, prs = EXCLUDED.prs,
                 reviews = EXCLUDED.reviews, issues = EXCLUDED.issues, others = EXCLUDED.others,
                 first_seen = EXCLUDED.first_seen, last_seen = EXCLUDED.last_seen,
                 names = EXCLUDED.names, emails = EXCLUDED.emails",
        )
        .await?;
    let c = &reports.counts;
    tx.execute(
        &statement,
        &[
            &source,
            &account.0,
            &ids,
            &c[0],
            &c[1],
            &c[2],
            &c[3],
            &c[4],
            &reports.first_seen,
            &reports.last_seen,
            &reports.names,
            &reports.emails,
        ],
    )
    .await?;
    Ok(())
}

/// Replace mode: drops `source`'s report of every contributor it no longer reports.
/// Those left without a report are removed; returns how many, and the ids of the others
/// (detached: another source still reports them).
async fn drop_unreported_in(
    tx: &Transaction<'_>,
    account: AccountId,
    source: &str,
    reported: &HashSet<i64>,
) -> PgResult<(u64, Vec<i64>)> {
    let statement = tx
        .prepare_cached("SELECT contributor_id FROM contributor_sources WHERE account_id = $1 AND source = $2")
        .await?;
    let mut gone = Vec::new();
    for r in tx.query(&statement, &[&account.0, &source]).await? {
        let id: i64 = r.try_get(0)?;
        if !reported.contains(&id) {
            gone.push(id);
        }
    }
    if gone.is_empty() {
        return Ok((0, Vec::new()));
    }
    gone.sort_unstable();
    let statement = tx
        .prepare_cached("DELETE FROM contributor_sources WHERE contributor_id = ANY($1::BIGINT[]) AND source = $2")
        .await?;
    tx.execute(&statement, &[&gone, &source]).await?;
    let statement = tx
        .prepare_cached(
            "DELETE FROM contributors c WHERE c.id = ANY($1::BIGINT[])
               AND NOT EXISTS (SELECT 1 FROM contributor_sources s WHERE s.contributor_id = c.id)
             RETURNING c.id",
        )
        .await?;
    let removed: HashSet<i64> =
        tx.query(&statement, &[&gone]).await?.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
    let detached: Vec<i64> = gone.into_iter().filter(|id| !removed.contains(id)).collect();
    Ok((removed.len() as u64, detached))
}

/// Sums each contributor's totals again over its sources.
async fn refresh_totals_in(tx: &Transaction<'_>, ids: &[i64], now: Micros) -> PgResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let statement = tx
        .prepare_cached(
            "UPDATE contributors c SET commits = t.commits, prs = t.prs, reviews = t.reviews, issues = t.issues,
                 others = t.others, activity = t.activity, first_seen = t.first_seen, last_seen = t.last_seen,
                 updated_at = $2
             FROM (SELECT contributor_id, SUM(commits) AS commits, SUM(prs) AS prs, SUM(reviews) AS reviews,
                       SUM(issues) AS issues, SUM(others) AS others,
                       SUM(commits + prs + reviews + issues + others) AS activity,
                       MIN(first_seen) AS first_seen, COALESCE(MAX(last_seen), 0) AS last_seen
                   FROM contributor_sources WHERE contributor_id = ANY($1::BIGINT[])
                   GROUP BY contributor_id) t
             WHERE c.id = t.contributor_id",
        )
        .await?;
    tx.execute(&statement, &[&ids, &now]).await?;
    Ok(())
}

/// Sets what the changed contributors' latest report says of them: the identity as
/// written, the most seen name and email, the bot rule and the bot flag.
async fn describe_in(tx: &Transaction<'_>, changed: &[Changed<'_>]) -> PgResult<()> {
    if changed.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = changed.iter().map(|c| c.id).collect();
    let identities: Vec<&str> = changed.iter().map(|c| &*c.row.identity).collect();
    let names: Vec<Option<&str>> = changed.iter().map(|c| c.report.top_name()).collect();
    let emails: Vec<Option<&str>> = changed.iter().map(|c| c.report.top_email()).collect();
    let rules: Vec<Option<&str>> = changed.iter().map(|c| c.row.bot_rule.map(BotRule::as_str)).collect();
    let bots: Vec<i32> = changed.iter().map(|c| i32::from(c.is_bot)).collect();
    let statement = tx
        .prepare_cached(
            "UPDATE contributors c SET identity = r.identity, name = r.name, email = r.email,
                 bot_rule = r.bot_rule, is_bot = r.is_bot
             FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::INTEGER[])
                 AS r(id, identity, name, email, bot_rule, is_bot)
             WHERE c.id = r.id",
        )
        .await?;
    tx.execute(&statement, &[&ids, &identities, &names, &emails, &rules, &bots]).await?;
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
    if removed + flags > 0 {
        bump_contributors_version(tx, account).await?;
    }
    Ok(())
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
        None => return Err(StoreError::Internal("a contributor's integration is missing".into()).into()),
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

/// Adds each record's sources and every name and email they saw: one query for the page.
async fn fill_sources(client: &impl GenericClient, records: &mut [ContributorRecord]) -> PgResult<()> {
    if records.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = records.iter().map(|r| r.id.0).collect();
    let statement = client
        .prepare_cached(
            "SELECT contributor_id, source, names, emails FROM contributor_sources
             WHERE contributor_id = ANY($1::BIGINT[]) ORDER BY contributor_id, source",
        )
        .await?;
    let mut by_id: HashMap<i64, (Vec<String>, Vec<(String, u64)>, Vec<(String, u64)>)> = HashMap::new();
    for r in client.query(&statement, &[&ids]).await? {
        let entry = by_id.entry(r.try_get(0)?).or_default();
        entry.0.push(r.try_get(1)?);
        merge_tallies(&mut entry.1, SourceReport::decode_tallies(&r.try_get::<_, String>(2)?));
        merge_tallies(&mut entry.2, SourceReport::decode_tallies(&r.try_get::<_, String>(3)?));
    }
    for record in records {
        if let Some((sources, names, emails)) = by_id.remove(&record.id.0) {
            record.sources = sources;
            record.names = most_seen_first(names);
            record.emails = most_seen_first(emails);
        }
    }
    Ok(())
}

/// One change a bot decision makes, in the order the decisions came.
struct FlagChange<'a> {
    flag: &'a BotFlag,
    action: AuditAction,
}

async fn set_bot_flags_in(tx: &Transaction<'_>, ctx: &ChangeContext, flags: &[BotFlag]) -> PgResult<BotFlagSummary> {
    let account = ctx.account;
    lock_account(tx, account).await?;
    let known = integration_ids_in(tx, account).await?;
    if let Some(flag) = flags.iter().find(|f| !known.contains(&f.integration_id)) {
        return Err(StoreError::Invalid(format!(
            "Integration {} does not exist; list them with GET /v2/integrations.",
            flag.integration_id
        ))
        .into());
    }
    let now = now_micros();
    let mut summary = BotFlagSummary { received: flags.len() as u64, ..Default::default() };
    // Each key's decision and whether a contributor carries it, as stored. Decisions are
    // then taken one by one against `decided`, so a key named twice behaves as on SQLite,
    // where the second sees the first.
    let (mut decided, carried) = flags_in(tx, account, flags).await?;
    let mut changes = Vec::new();
    for flag in flags {
        let key = (flag.integration_id, flag.identity_key.as_str());
        let current = decided.get(&key).copied().flatten();
        if current == flag.bot {
            summary.unchanged += 1;
            continue;
        }
        decided.insert(key, flag.bot);
        let action = match flag.bot {
            Some(true) => {
                summary.flagged += 1;
                AuditAction::ContributorBotFlagged
            }
            Some(false) => {
                summary.unflagged += 1;
                AuditAction::ContributorBotUnflagged
            }
            None => {
                summary.cleared += 1;
                AuditAction::ContributorBotFlagCleared
            }
        };
        if !carried.contains(&key) {
            summary.not_seen_yet += 1;
        }
        changes.push(FlagChange { flag, action });
    }
    if changes.is_empty() {
        return Ok(summary);
    }
    // The last change of each key is the decision that stays.
    let mut last: HashMap<(IntegrationId, &str), &BotFlag> = HashMap::new();
    for change in &changes {
        last.insert((change.flag.integration_id, change.flag.identity_key.as_str()), change.flag);
    }
    let mut last: Vec<&BotFlag> = last.into_values().collect();
    last.sort_unstable_by(|a, b| (a.integration_id, &a.identity_key).cmp(&(b.integration_id, &b.identity_key)));
    apply_flags_in(tx, ctx, &last, now).await?;
    audit_flags_in(tx, ctx, &changes, now).await?;
    bump_contributors_version(tx, account).await?;
    Ok(summary)
}

type FlagKey<'a> = (IntegrationId, &'a str);

/// The stored decision of every key `flags` name, and the keys a contributor carries.
async fn flags_in<'a>(
    tx: &Transaction<'_>,
    account: AccountId,
    flags: &'a [BotFlag],
) -> PgResult<(HashMap<FlagKey<'a>, Option<bool>>, HashSet<FlagKey<'a>>)> {
    let ids: Vec<i64> = flags.iter().map(|f| f.integration_id).collect();
    let keys: Vec<&str> = flags.iter().map(|f| f.identity_key.as_str()).collect();
    let statement = tx
        .prepare_cached(
            "SELECT r.ord, f.is_bot, EXISTS (SELECT 1 FROM contributors c
                 WHERE c.account_id = $1 AND c.integration_id = r.integration_id AND c.identity_key = r.identity_key)
             FROM UNNEST($2::BIGINT[], $3::TEXT[]) WITH ORDINALITY AS r(integration_id, identity_key, ord)
             LEFT JOIN contributor_bot_flags f
               ON f.account_id = $1 AND f.integration_id = r.integration_id AND f.identity_key = r.identity_key",
        )
        .await?;
    let (mut decided, mut carried) = (HashMap::new(), HashSet::new());
    for r in tx.query(&statement, &[&account.0, &ids, &keys]).await? {
        let ord: i64 = r.try_get(0)?;
        let flag = usize::try_from(ord - 1)
            .ok()
            .and_then(|i| flags.get(i))
            .ok_or_else(|| StoreError::Internal(format!("there is no bot decision {ord}")))?;
        let key = (flag.integration_id, flag.identity_key.as_str());
        decided.insert(key, r.try_get::<_, Option<i32>>(1)?.map(|b| b != 0));
        if r.try_get::<_, bool>(2)? {
            carried.insert(key);
        }
    }
    Ok((decided, carried))
}

/// Stores each key's final decision (or withdraws it) and applies it to the contributor
/// carrying the key, if any.
async fn apply_flags_in(tx: &Transaction<'_>, ctx: &ChangeContext, last: &[&BotFlag], now: Micros) -> PgResult<()> {
    let account = ctx.account;
    let ids: Vec<i64> = last.iter().map(|f| f.integration_id).collect();
    let keys: Vec<&str> = last.iter().map(|f| f.identity_key.as_str()).collect();
    let identities: Vec<&str> = last.iter().map(|f| f.identity.as_str()).collect();
    let bots: Vec<Option<i32>> = last.iter().map(|f| f.bot.map(i32::from)).collect();
    let statement = tx
        .prepare_cached(
            "INSERT INTO contributor_bot_flags (account_id, integration_id, identity_key, identity, is_bot, key_id, set_at)
             SELECT $1::BIGINT, r.integration_id, r.identity_key, r.identity, r.is_bot, $2::TEXT, $3::BIGINT
             FROM UNNEST($4::BIGINT[], $5::TEXT[], $6::TEXT[], $7::INTEGER[]) AS r(integration_id, identity_key, identity, is_bot)
             WHERE r.is_bot IS NOT NULL
             ON CONFLICT (account_id, integration_id, identity_key) DO UPDATE SET
                 identity = EXCLUDED.identity, is_bot = EXCLUDED.is_bot, key_id = EXCLUDED.key_id, set_at = EXCLUDED.set_at",
        )
        .await?;
    tx.execute(&statement, &[&account.0, &ctx.key_id, &now, &ids, &keys, &identities, &bots]).await?;
    let statement = tx
        .prepare_cached(
            "DELETE FROM contributor_bot_flags f
             USING UNNEST($2::BIGINT[], $3::TEXT[], $4::INTEGER[]) AS r(integration_id, identity_key, is_bot)
             WHERE r.is_bot IS NULL
               AND f.account_id = $1 AND f.integration_id = r.integration_id AND f.identity_key = r.identity_key",
        )
        .await?;
    tx.execute(&statement, &[&account.0, &ids, &keys, &bots]).await?;
    let statement = tx
        .prepare_cached(
            "UPDATE contributors c SET is_bot = COALESCE(r.is_bot, (c.bot_rule IS NOT NULL)::INTEGER), updated_at = $2
             FROM UNNEST($3::BIGINT[], $4::TEXT[], $5::INTEGER[]) AS r(integration_id, identity_key, is_bot)
             WHERE c.account_id = $1 AND c.integration_id = r.integration_id AND c.identity_key = r.identity_key",
        )
        .await?;
    tx.execute(&statement, &[&account.0, &now, &ids, &keys, &bots]).await?;
    Ok(())
}

/// One audit event per change, in the order the decisions came.
async fn audit_flags_in(
    tx: &Transaction<'_>,
    ctx: &ChangeContext,
    changes: &[FlagChange<'_>],
    now: Micros,
) -> PgResult<()> {
    let actions: Vec<&str> = changes.iter().map(|c| c.action.as_str()).collect();
    let ids: Vec<i64> = changes.iter().map(|c| c.flag.integration_id).collect();
    let identities: Vec<&str> = changes.iter().map(|c| c.flag.identity.as_str()).collect();
    let statement = tx
        .prepare_cached(
            "INSERT INTO audit_events (account_id, at, action, key_id, request_id, integration_id, identity)
             SELECT $1::BIGINT, $2::BIGINT, r.action, $3::TEXT, $4::TEXT, r.integration_id, r.identity
             FROM UNNEST($5::TEXT[], $6::BIGINT[], $7::TEXT[]) WITH ORDINALITY AS r(action, integration_id, identity, ord)
             ORDER BY r.ord",
        )
        .await?;
    tx.execute(&statement, &[&ctx.account.0, &now, &ctx.key_id, &ctx.request_id, &actions, &ids, &identities]).await?;
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
        entry.unmapped = entry.contributors - entry.bots.min(entry.contributors) - entry.mapped.min(entry.contributors);
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

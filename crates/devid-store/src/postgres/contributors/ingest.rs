//! Ingest of one source's report on PostgreSQL: one query reads what the database holds
//! for every row of the plan, Rust decides what each row does (as SQLite does row by
//! row), and a few set-based statements apply it.

use std::collections::HashSet;

use deadpool_postgres::Transaction;
use devid_core::change::AuditAction;
use devid_core::contributor::bots::BotRule;
use devid_core::contributor::plan::{ContributorPlan, PlannedContributor};
use devid_core::contributor::zones::UtcOffsets;
use devid_core::contributor::{ActivityCounts, IngestMode};
use devid_core::time::Micros;

use super::{bump_contributors_version, integration_ids_in};
use crate::contributors::{IngestSummary, SourceReport, stored_count};
use crate::postgres::{Audit, PgResult, insert_audit, lock_account};
use crate::{AccountId, ChangeContext, StoreError, now_micros};

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
                    s.commits, s.prs, s.reviews, s.issues, s.others, s.first_seen, s.last_seen, s.names, s.emails,
                    s.utc_offsets
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
        let slot = usize::try_from(ord - 1).ok().and_then(|i| found.get_mut(i)).ok_or_else(|| {
            StoreError::Internal(format!("PostgreSQL answered for plan row {ord}, which the plan does not have."))
        })?;
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
                utc_offsets: UtcOffsets::decode(&r.try_get::<_, String>(14)?),
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
    utc_offsets: Vec<String>,
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
        self.utc_offsets.push(report.utc_offsets.encode());
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

/// Applies `plan` as `source`'s report, in `tx`. With `dry_run` does the same work but
/// records no audit event; the caller rolls back.
pub(super) async fn ingest_in(
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
            fresh.identities.push(row.identity());
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
                                     $15::BIGINT[], $16::BIGINT[], $17::BIGINT[], $18::BIGINT[], $19::TEXT[], $20::TEXT[],
                                     $21::TEXT[])
                    AS r(integration_id, identity_key, identity, name, email, activity, bot_rule, is_bot,
                         commits, prs, reviews, issues, others, first_seen, last_seen, names, emails, utc_offsets)),
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
                 commits, prs, reviews, issues, others, first_seen, last_seen, names, emails, utc_offsets)
             SELECT ins.id, $3::TEXT, $1::BIGINT,
                 r.commits, r.prs, r.reviews, r.issues, r.others, r.first_seen, r.last_seen, r.names, r.emails,
                 r.utc_offsets
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
            &new.reports.utc_offsets,
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
                 commits, prs, reviews, issues, others, first_seen, last_seen, names, emails, utc_offsets)
             SELECT r.id, $1::TEXT, $2::BIGINT,
                 r.commits, r.prs, r.reviews, r.issues, r.others, r.first_seen, r.last_seen, r.names, r.emails,
                 r.utc_offsets
             FROM UNNEST($3::BIGINT[], $4::BIGINT[], $5::BIGINT[], $6::BIGINT[], $7::BIGINT[], $8::BIGINT[],
                         $9::BIGINT[], $10::BIGINT[], $11::TEXT[], $12::TEXT[], $13::TEXT[])
                 AS r(id, commits, prs, reviews, issues, others, first_seen, last_seen, names, emails, utc_offsets)
             ON CONFLICT (contributor_id, source) DO UPDATE SET
                 account_id = EXCLUDED.account_id, commits = EXCLUDED.commits, prs = EXCLUDED.prs,
                 reviews = EXCLUDED.reviews, issues = EXCLUDED.issues, others = EXCLUDED.others,
                 first_seen = EXCLUDED.first_seen, last_seen = EXCLUDED.last_seen,
                 names = EXCLUDED.names, emails = EXCLUDED.emails, utc_offsets = EXCLUDED.utc_offsets",
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
            &reports.utc_offsets,
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
    let identities: Vec<&str> = changed.iter().map(|c| c.row.identity()).collect();
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

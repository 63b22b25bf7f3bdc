//! The contributor family on SQLite: ingest of a source's report, listings, manual bot
//! decisions and coverage. Every write is one immediate transaction on the writer.

use std::collections::{HashMap, HashSet};

use super::changes::close_change_set;
use async_trait::async_trait;
use devid_core::change::AuditAction;
use devid_core::change::ChangeKind;
use devid_core::contributor::bots::BotRule;
use devid_core::contributor::plan::{ContributorPlan, PlannedContributor};
use devid_core::contributor::zones::UtcOffsets;
use devid_core::contributor::{ActivityCounts, IngestMode};
use devid_core::types::IntegrationId;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use std::sync::Arc;

use super::{
    Audit, BULK_MIN_ROWS, SqliteStore, drop_indexes_for_bulk_load, insert_audit, integration_infos_in, map_err,
    parse_type, rebuild_after_bulk_load, to_values,
};
use crate::contributors::{
    BotFlag, BotFlagSummary, ContributorId, ContributorPage, ContributorPaging, ContributorQuery, ContributorRecord,
    ContributorStatus, ContributorStore, Coverage, CoverageQuery, DeveloperIdentityCount, IngestSummary,
    IntegrationCoverage, SourceReport, bot_status, merge_tallies, stored_count,
};
use crate::sql::{self, Dialect};
use crate::{AccountId, ChangeContext, StoreError, StoreResult, now_micros};

#[async_trait]
impl ContributorStore for SqliteStore {
    async fn ingest_contributors(
        &self,
        ctx: &ChangeContext,
        source: &str,
        mode: IngestMode,
        plan: ContributorPlan,
        dry_run: bool,
    ) -> StoreResult<IngestSummary> {
        let (ctx, source) = (ctx.clone(), source.to_string());
        let inner = Arc::clone(&self.inner);
        let (answer, answered) = tokio::sync::oneshot::channel();
        // Answered as soon as the ingest commits; indexes a bulk load dropped are built
        // again after that, still holding the writer (as for identity uploads).
        drop(tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer();
            let ingested = ingest_in(&mut conn, &ctx, &source, mode, &plan, dry_run);
            drop(plan);
            let committed = ingested.is_ok() && !dry_run;
            let _ = answer.send(ingested);
            if committed {
                rebuild_after_bulk_load(&mut conn, &inner);
            }
            drop(conn);
            let _ = inner.committed.try_send(());
        }));
        answered.await.map_err(|_| StoreError::Internal("the ingest's database task ended without an answer".into()))?
    }

    async fn list_contributors(&self, account: AccountId, query: ContributorQuery) -> StoreResult<ContributorPage> {
        self.read(move |conn| list_in(conn, account, &query)).await
    }

    async fn set_bot_flags(&self, ctx: &ChangeContext, flags: Vec<BotFlag>) -> StoreResult<BotFlagSummary> {
        let ctx = ctx.clone();
        self.write(move |conn, _| set_bot_flags_in(conn, &ctx, &flags)).await
    }

    async fn coverage(&self, account: AccountId, query: CoverageQuery) -> StoreResult<Coverage> {
        self.read(move |conn| coverage_in(conn, account, &query)).await
    }

    async fn contributors_version(&self, account: AccountId) -> StoreResult<i64> {
        self.read(move |conn| {
            conn.query_row("SELECT contributors_version FROM accounts WHERE id = ?1", [account.0], |r| r.get(0))
                .optional()
                .map_err(map_err)
                .map(|v| v.unwrap_or(0))
        })
        .await
    }
}

/// Manual decisions of an account, by integration and identity key.
type Flags = HashMap<IntegrationId, HashMap<String, bool>>;

fn load_flags(tx: &Transaction<'_>, account: AccountId) -> StoreResult<Flags> {
    let mut stmt = tx
        .prepare("SELECT integration_id, identity_key, is_bot FROM contributor_bot_flags WHERE account_id = ?1")
        .map_err(map_err)?;
    let mut flags: Flags = HashMap::new();
    let rows = stmt
        .query_map([account.0], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, bool>(2)?)))
        .map_err(map_err)?;
    for row in rows {
        let (integration, key, bot) = row.map_err(map_err)?;
        flags.entry(integration).or_default().insert(key, bot);
    }
    Ok(flags)
}

fn read_report(r: &rusqlite::Row<'_>) -> rusqlite::Result<(SourceReport, String, String)> {
    let mut counts = ActivityCounts::default();
    for (i, slot) in counts.0.iter_mut().enumerate() {
        *slot = r.get::<_, i64>(i)?.max(0) as u64;
    }
    Ok((
        SourceReport {
            counts,
            first_seen: r.get(5)?,
            last_seen: r.get(6)?,
            names: Vec::new(),
            emails: Vec::new(),
            utc_offsets: UtcOffsets::decode(&r.get::<_, String>(9)?),
        },
        r.get(7)?,
        r.get(8)?,
    ))
}

fn report_of(row: (SourceReport, String, String)) -> SourceReport {
    let (mut report, names, emails) = row;
    report.names = SourceReport::decode_tallies(&names);
    report.emails = SourceReport::decode_tallies(&emails);
    report
}

const INSERT_CONTRIBUTOR: &str = "INSERT INTO contributors
    (account_id, integration_id, identity_key, identity, name, email, commits, prs, reviews, issues, others,
     activity, first_seen, last_seen, bot_rule, is_bot, created_at, updated_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?17)";

const PUT_SOURCE: &str = "INSERT OR REPLACE INTO contributor_sources
    (contributor_id, source, account_id, commits, prs, reviews, issues, others, first_seen, last_seen, names, emails,
     utc_offsets)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

/// A contributor's totals, summed again over its sources.
const REFRESH_TOTALS: &str = "UPDATE contributors SET
    (commits, prs, reviews, issues, others, activity, first_seen, last_seen) =
    (SELECT SUM(commits), SUM(prs), SUM(reviews), SUM(issues), SUM(others),
            SUM(commits + prs + reviews + issues + others), MIN(first_seen), COALESCE(MAX(last_seen), 0)
     FROM contributor_sources WHERE contributor_id = ?1),
    updated_at = ?2
    WHERE id = ?1";

/// One source's report as a `contributor_sources` row stores it.
struct StoredReport<'a> {
    counts: &'a ActivityCounts,
    first_seen: Option<i64>,
    last_seen: Option<i64>,
    names: String,
    emails: String,
    utc_offsets: String,
}

impl<'a> StoredReport<'a> {
    fn of_report(report: &'a SourceReport) -> Self {
        Self {
            counts: &report.counts,
            first_seen: report.first_seen,
            last_seen: report.last_seen,
            names: SourceReport::encode_tallies(&report.names),
            emails: SourceReport::encode_tallies(&report.emails),
            utc_offsets: report.utc_offsets.encode(),
        }
    }

    /// A new contributor's report, written straight from the plan.
    fn of_plan(row: &'a PlannedContributor) -> Self {
        Self {
            counts: &row.counts,
            first_seen: row.first_seen(),
            last_seen: row.last_seen(),
            names: SourceReport::encode_seen(row.names()),
            emails: SourceReport::encode_seen(row.emails()),
            utc_offsets: row.utc_offsets.encode(),
        }
    }
}

fn put_source(
    stmt: &mut rusqlite::Statement<'_>,
    id: i64,
    source: &str,
    account: AccountId,
    report: StoredReport<'_>,
) -> rusqlite::Result<()> {
    let c = &report.counts.0;
    stmt.execute(params![
        id,
        source,
        account.0,
        stored_count(c[0]),
        stored_count(c[1]),
        stored_count(c[2]),
        stored_count(c[3]),
        stored_count(c[4]),
        report.first_seen,
        report.last_seen,
        report.names,
        report.emails,
        report.utc_offsets,
    ])?;
    Ok(())
}

fn ingest_in(
    conn: &mut Connection,
    ctx: &ChangeContext,
    source: &str,
    mode: IngestMode,
    plan: &ContributorPlan,
    dry_run: bool,
) -> StoreResult<IngestSummary> {
    let account = ctx.account;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(map_err)?;
    let known: HashSet<IntegrationId> = integration_infos_in(&tx, account)?.iter().map(|i| i.id).collect();
    if let Some(row) = plan.rows.iter().find(|r| !known.contains(&r.integration_id)) {
        return Err(StoreError::Invalid(format!(
            "Integration {} no longer exists; it was deleted while the upload was read. Check GET /v2/integrations and send the upload again.",
            row.integration_id
        )));
    }
    let flags = load_flags(&tx, account)?;
    // An account's first ingest finds nothing to look up: every row is new.
    let account_has_contributors: bool = tx
        .query_row("SELECT EXISTS (SELECT 1 FROM contributors WHERE account_id = ?1)", [account.0], |r| r.get(0))
        .map_err(map_err)?;
    // Into a table smaller than the upload, the secondary indexes are dropped and built
    // again after the answer: a sorted build beats a million insertions in random order.
    if !dry_run && plan.rows.len() >= BULK_MIN_ROWS {
        let largest: i64 =
            tx.query_row("SELECT COALESCE(MAX(id), 0) FROM contributors", [], |r| r.get(0)).map_err(map_err)?;
        if plan.rows.len() as i64 > largest {
            drop_indexes_for_bulk_load(&tx, "contributors", &["contributors_by_key"])?;
            drop_indexes_for_bulk_load(&tx, "contributor_sources", &[])?;
        }
    }
    let mut not_reported: HashSet<i64> = match mode {
        IngestMode::Replace => {
            let mut stmt = tx
                .prepare("SELECT contributor_id FROM contributor_sources WHERE account_id = ?1 AND source = ?2")
                .map_err(map_err)?;
            stmt.query_map(params![account.0, source], |r| r.get(0))
                .map_err(map_err)?
                .collect::<rusqlite::Result<_>>()
                .map_err(map_err)?
        }
        IngestMode::Add => HashSet::new(),
    };
    let now = now_micros();
    let mut summary =
        IngestSummary { received: plan.received, contributors: plan.rows.len() as u64, ..Default::default() };
    {
        let mut find = tx
            .prepare_cached(
                "SELECT id, bot_rule, is_bot FROM contributors WHERE account_id = ?1 AND integration_id = ?2 AND identity_key = ?3",
            )
            .map_err(map_err)?;
        let mut insert = tx.prepare_cached(INSERT_CONTRIBUTOR).map_err(map_err)?;
        let mut put = tx.prepare_cached(PUT_SOURCE).map_err(map_err)?;
        let mut get_source = tx
            .prepare_cached(
                "SELECT commits, prs, reviews, issues, others, first_seen, last_seen, names, emails, utc_offsets
                 FROM contributor_sources WHERE contributor_id = ?1 AND source = ?2",
            )
            .map_err(map_err)?;
        let mut refresh = tx.prepare_cached(REFRESH_TOTALS).map_err(map_err)?;
        let mut describe = tx
            .prepare_cached(
                "UPDATE contributors SET identity = ?2, name = ?3, email = ?4, bot_rule = ?5, is_bot = ?6 WHERE id = ?1",
            )
            .map_err(map_err)?;
        for row in &plan.rows {
            let key = row.key();
            let manual = flags.get(&row.integration_id).and_then(|m| m.get(key)).copied();
            let is_bot = manual.unwrap_or(row.bot_rule.is_some());
            summary.bots += u64::from(is_bot);
            let rule = row.bot_rule.map(BotRule::as_str);
            let existing = if account_has_contributors {
                find.query_row(params![account.0, row.integration_id, key], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, bool>(2)?))
                })
                .optional()
                .map_err(map_err)?
            } else {
                None
            };
            let Some((id, stored_rule, stored_bot)) = existing else {
                insert_new(&mut insert, account, row, rule, is_bot, now)?;
                put_source(&mut put, tx.last_insert_rowid(), source, account, StoredReport::of_plan(row))
                    .map_err(map_err)?;
                summary.created += 1;
                continue;
            };
            not_reported.remove(&id);
            let old =
                get_source.query_row(params![id, source], read_report).optional().map_err(map_err)?.map(report_of);
            let new = match (mode, &old) {
                (IngestMode::Add, Some(old)) => old.merged(&SourceReport::of(row)),
                _ => SourceReport::of(row),
            };
            if old.as_ref() == Some(&new) && stored_rule.as_deref() == rule && stored_bot == is_bot {
                summary.unchanged += 1;
                continue;
            }
            put_source(&mut put, id, source, account, StoredReport::of_report(&new)).map_err(map_err)?;
            refresh.execute(params![id, now]).map_err(map_err)?;
            describe
                .execute(params![id, row.identity(), new.top_name(), new.top_email(), rule, is_bot])
                .map_err(map_err)?;
            summary.updated += 1;
        }
        let mut drop_source = tx
            .prepare_cached("DELETE FROM contributor_sources WHERE contributor_id = ?1 AND source = ?2")
            .map_err(map_err)?;
        let mut remaining =
            tx.prepare_cached("SELECT COUNT(*) FROM contributor_sources WHERE contributor_id = ?1").map_err(map_err)?;
        let mut remove = tx.prepare_cached("DELETE FROM contributors WHERE id = ?1").map_err(map_err)?;
        let mut gone: Vec<i64> = not_reported.into_iter().collect();
        gone.sort_unstable();
        for id in gone {
            drop_source.execute(params![id, source]).map_err(map_err)?;
            let left: i64 = remaining.query_row([id], |r| r.get(0)).map_err(map_err)?;
            if left == 0 {
                remove.execute([id]).map_err(map_err)?;
                summary.removed += 1;
            } else {
                refresh.execute(params![id, now]).map_err(map_err)?;
                summary.detached += 1;
            }
        }
    }
    if dry_run {
        tx.rollback().map_err(map_err)?;
        return Ok(summary);
    }
    let detail = serde_json::json!({
        "source": source, "mode": mode.as_str(), "received": summary.received,
        "created": summary.created, "updated": summary.updated, "unchanged": summary.unchanged,
        "removed": summary.removed, "detached": summary.detached,
    })
    .to_string();
    insert_audit(
        &tx,
        ctx,
        now,
        Audit { action: AuditAction::ContributorsIngested.as_str(), detail: Some(&detail), ..Default::default() },
    )
    .map_err(map_err)?;
    if summary.created + summary.updated + summary.removed + summary.detached > 0 {
        bump_contributors_version(&tx, account)?;
    }
    close_change_set(&tx, ctx, ChangeKind::Contributors).map_err(map_err)?;
    tx.commit().map_err(map_err)?;
    Ok(summary)
}

fn insert_new(
    stmt: &mut rusqlite::Statement<'_>,
    account: AccountId,
    row: &PlannedContributor,
    rule: Option<&str>,
    is_bot: bool,
    now: i64,
) -> StoreResult<()> {
    let c = &row.counts.0;
    stmt.execute(params![
        account.0,
        row.integration_id,
        row.key(),
        row.identity(),
        row.top_name(),
        row.top_email(),
        stored_count(c[0]),
        stored_count(c[1]),
        stored_count(c[2]),
        stored_count(c[3]),
        stored_count(c[4]),
        stored_count(row.counts.total()),
        row.first_seen(),
        row.last_seen().unwrap_or(0),
        rule,
        is_bot,
        now,
    ])
    .map_err(map_err)?;
    Ok(())
}

fn bump_contributors_version(tx: &Transaction<'_>, account: AccountId) -> StoreResult<()> {
    tx.prepare_cached("UPDATE accounts SET contributors_version = contributors_version + 1 WHERE id = ?1")
        .and_then(|mut s| s.execute([account.0]))
        .map_err(map_err)?;
    Ok(())
}

/// Removes an integration's contributors, their sources and bot decisions: called in the
/// transaction that deletes the integration.
pub(super) fn delete_integration_contributors_in(
    tx: &Transaction<'_>,
    account: AccountId,
    integration: IntegrationId,
) -> StoreResult<()> {
    tx.execute(
        "DELETE FROM contributor_sources WHERE contributor_id IN
         (SELECT id FROM contributors WHERE account_id = ?1 AND integration_id = ?2)",
        params![account.0, integration],
    )
    .map_err(map_err)?;
    let removed = tx
        .execute(
            "DELETE FROM contributors WHERE account_id = ?1 AND integration_id = ?2",
            params![account.0, integration],
        )
        .map_err(map_err)?;
    let flags = tx
        .execute(
            "DELETE FROM contributor_bot_flags WHERE account_id = ?1 AND integration_id = ?2",
            params![account.0, integration],
        )
        .map_err(map_err)?;
    let _ = (removed, flags);
    // Always: coverage lists the account's integrations, this one included until now.
    bump_contributors_version(tx, account)
}

/// Marks what is derived from contributors as stale after an integration was created,
/// renamed or retyped: coverage lists integrations by name and type.
pub(super) fn integrations_changed_in(tx: &Transaction<'_>, account: AccountId) -> StoreResult<()> {
    bump_contributors_version(tx, account)
}

/// One listed row and the values its keyset cursor is made of.
struct ListedRow {
    record: ContributorRecord,
    identity_key: String,
    activity: i64,
    last_seen: i64,
}

fn contributor_from_row(r: &rusqlite::Row<'_>) -> StoreResult<ListedRow> {
    let get = |e: rusqlite::Error| map_err(e);
    let type_text: Option<String> = r.get(2).map_err(get)?;
    let application_type = match type_text {
        Some(t) => parse_type(&t)?,
        None => return Err(StoreError::Internal("a contributor's integration is missing".into())),
    };
    let mut counts = ActivityCounts::default();
    for (i, slot) in counts.0.iter_mut().enumerate() {
        *slot = r.get::<_, i64>(6 + i).map_err(get)?.max(0) as u64;
    }
    let last_seen: i64 = r.get(12).map_err(get)?;
    let rule: Option<String> = r.get(13).map_err(get)?;
    let manual: Option<bool> = r.get(15).map_err(get)?;
    let bot = bot_status(manual, rule.as_deref());
    Ok(ListedRow {
        record: ContributorRecord {
            id: ContributorId(r.get(0).map_err(get)?),
            integration_id: r.get(1).map_err(get)?,
            application_type,
            identity: r.get(3).map_err(get)?,
            name: r.get(4).map_err(get)?,
            email: r.get(5).map_err(get)?,
            counts,
            first_seen: r.get(11).map_err(get)?,
            last_seen: (last_seen != 0).then_some(last_seen),
            bot,
            mapped_email: r.get(16).map_err(get)?,
            sources: Vec::new(),
            names: Vec::new(),
            emails: Vec::new(),
            utc_offsets: UtcOffsets::default(),
        },
        identity_key: r.get(17).map_err(get)?,
        activity: r.get(18).map_err(get)?,
        last_seen,
    })
}

fn list_in(conn: &Connection, account: AccountId, q: &ContributorQuery) -> StoreResult<ContributorPage> {
    let built = sql::contributor_sql(Dialect::Sqlite, account, q).map_err(StoreError::Invalid)?;
    let total_count = match &built.count {
        Some(count) => {
            let n: i64 = conn
                .prepare_cached(&count.text)
                .and_then(|mut s| s.query_row(rusqlite::params_from_iter(to_values(&count.args)), |r| r.get(0)))
                .map_err(map_err)?;
            n as u64
        }
        None => 0,
    };
    let mut stmt = conn.prepare_cached(&built.page.text).map_err(map_err)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(to_values(&built.page.args))).map_err(map_err)?;
    let mut listed = Vec::new();
    while let Some(r) = rows.next().map_err(map_err)? {
        listed.push(contributor_from_row(r)?);
    }
    let has_next = built.limit.is_some_and(|limit| listed.len() as u64 > limit);
    if let Some(limit) = built.limit {
        listed.truncate(limit as usize);
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
        fill_sources(conn, &mut records)?;
    }
    Ok(ContributorPage { records, total_count, has_next, next_cursor })
}

/// Adds each record's sources and every name, email and UTC offset they saw.
fn fill_sources(conn: &Connection, records: &mut [ContributorRecord]) -> StoreResult<()> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT source, names, emails, utc_offsets FROM contributor_sources WHERE contributor_id = ?1
             ORDER BY source",
        )
        .map_err(map_err)?;
    for record in records {
        let rows = stmt
            .query_map([record.id.0], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
            })
            .map_err(map_err)?;
        let (mut names, mut emails) = (Vec::new(), Vec::new());
        for row in rows {
            let (source, n, e, offsets) = row.map_err(map_err)?;
            record.sources.push(source);
            merge_tallies(&mut names, SourceReport::decode_tallies(&n));
            merge_tallies(&mut emails, SourceReport::decode_tallies(&e));
            record.utc_offsets = record.utc_offsets.union(&UtcOffsets::decode(&offsets));
        }
        record.names = crate::contributors::most_seen_first(names);
        record.emails = crate::contributors::most_seen_first(emails);
    }
    Ok(())
}

fn set_bot_flags_in(conn: &mut Connection, ctx: &ChangeContext, flags: &[BotFlag]) -> StoreResult<BotFlagSummary> {
    let account = ctx.account;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(map_err)?;
    let known: HashSet<IntegrationId> = integration_infos_in(&tx, account)?.iter().map(|i| i.id).collect();
    if let Some(flag) = flags.iter().find(|f| !known.contains(&f.integration_id)) {
        return Err(StoreError::Invalid(format!(
            "Integration {} does not exist; list them with GET /v2/integrations.",
            flag.integration_id
        )));
    }
    let now = now_micros();
    let mut summary = BotFlagSummary { received: flags.len() as u64, ..Default::default() };
    let mut changed = false;
    for flag in flags {
        let existing: Option<bool> = tx
            .query_row(
                "SELECT is_bot FROM contributor_bot_flags WHERE account_id = ?1 AND integration_id = ?2 AND identity_key = ?3",
                params![account.0, flag.integration_id, flag.identity_key],
                |r| r.get(0),
            )
            .optional()
            .map_err(map_err)?;
        if existing == flag.bot {
            summary.unchanged += 1;
            continue;
        }
        let action = match flag.bot {
            Some(bot) => {
                tx.execute(
                    "INSERT OR REPLACE INTO contributor_bot_flags
                     (account_id, integration_id, identity_key, identity, is_bot, key_id, set_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![account.0, flag.integration_id, flag.identity_key, flag.identity, bot, ctx.key_id, now],
                )
                .map_err(map_err)?;
                if bot {
                    summary.flagged += 1;
                    AuditAction::ContributorBotFlagged
                } else {
                    summary.unflagged += 1;
                    AuditAction::ContributorBotUnflagged
                }
            }
            None => {
                tx.execute(
                    "DELETE FROM contributor_bot_flags WHERE account_id = ?1 AND integration_id = ?2 AND identity_key = ?3",
                    params![account.0, flag.integration_id, flag.identity_key],
                )
                .map_err(map_err)?;
                summary.cleared += 1;
                AuditAction::ContributorBotFlagCleared
            }
        };
        let applied = tx
            .execute(
                "UPDATE contributors SET is_bot = COALESCE(?4, bot_rule IS NOT NULL), updated_at = ?5
                 WHERE account_id = ?1 AND integration_id = ?2 AND identity_key = ?3",
                params![account.0, flag.integration_id, flag.identity_key, flag.bot, now],
            )
            .map_err(map_err)?;
        if applied == 0 {
            summary.not_seen_yet += 1;
        }
        insert_audit(
            &tx,
            ctx,
            now,
            Audit {
                action: action.as_str(),
                integration_id: Some(flag.integration_id),
                identity: Some(&flag.identity),
                ..Default::default()
            },
        )
        .map_err(map_err)?;
        changed = true;
    }
    if changed {
        bump_contributors_version(&tx, account)?;
    }
    close_change_set(&tx, ctx, ChangeKind::BotFlag).map_err(map_err)?;
    tx.commit().map_err(map_err)?;
    Ok(summary)
}

const COVERAGE_BY_INTEGRATION: &str = "SELECT c.integration_id, COUNT(*), SUM(c.is_bot),
    SUM(CASE WHEN c.is_bot = 0 AND d.id IS NOT NULL THEN 1 ELSE 0 END),
    SUM(CASE WHEN c.is_bot = 0 THEN c.commits ELSE 0 END), SUM(CASE WHEN c.is_bot = 0 THEN c.prs ELSE 0 END),
    SUM(CASE WHEN c.is_bot = 0 THEN c.reviews ELSE 0 END), SUM(CASE WHEN c.is_bot = 0 THEN c.issues ELSE 0 END),
    SUM(CASE WHEN c.is_bot = 0 THEN c.others ELSE 0 END),
    SUM(CASE WHEN c.is_bot = 0 AND d.id IS NOT NULL THEN c.commits ELSE 0 END),
    SUM(CASE WHEN c.is_bot = 0 AND d.id IS NOT NULL THEN c.prs ELSE 0 END),
    SUM(CASE WHEN c.is_bot = 0 AND d.id IS NOT NULL THEN c.reviews ELSE 0 END),
    SUM(CASE WHEN c.is_bot = 0 AND d.id IS NOT NULL THEN c.issues ELSE 0 END),
    SUM(CASE WHEN c.is_bot = 0 AND d.id IS NOT NULL THEN c.others ELSE 0 END)
    FROM contributors c
    LEFT JOIN identities d
      ON d.account_id = c.account_id AND d.integration_id = c.integration_id AND d.identity_key = c.identity_key
    WHERE c.account_id = ?1
    GROUP BY c.integration_id";

fn coverage_in(conn: &Connection, account: AccountId, q: &CoverageQuery) -> StoreResult<Coverage> {
    let mut integrations: Vec<IntegrationCoverage> = {
        let mut stmt = conn
            .prepare_cached("SELECT id, application_type, name FROM integrations WHERE account_id = ?1 ORDER BY id")
            .map_err(map_err)?;
        let rows = stmt
            .query_map([account.0], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
            .map_err(map_err)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, t, name) = row.map_err(map_err)?;
            out.push(IntegrationCoverage {
                integration_id: id,
                application_type: Some(parse_type(&t)?),
                name,
                ..Default::default()
            });
        }
        out
    };
    let mut stmt = conn.prepare_cached(COVERAGE_BY_INTEGRATION).map_err(map_err)?;
    let mut rows = stmt.query([account.0]).map_err(map_err)?;
    while let Some(r) = rows.next().map_err(map_err)? {
        let number = |i: usize| -> StoreResult<u64> {
            Ok(r.get::<_, Option<i64>>(i).map_err(map_err)?.unwrap_or(0).max(0) as u64)
        };
        let id: i64 = r.get(0).map_err(map_err)?;
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
    drop(rows);
    drop(stmt);

    let top = list_in(
        conn,
        account,
        &ContributorQuery {
            status: Some(ContributorStatus::Unmapped),
            paging: ContributorPaging::Offset { page_index: 0, page_size: q.top_unmapped },
            count_total: false,
            ..Default::default()
        },
    )?;

    let many_identities = {
        let mut stmt = conn
            .prepare_cached(
                "SELECT email, COUNT(*) AS n FROM identities WHERE account_id = ?1
                 GROUP BY email HAVING COUNT(*) > ?2 ORDER BY n DESC, email LIMIT ?3",
            )
            .map_err(map_err)?;
        let rows = stmt
            .query_map(params![account.0, stored_count(q.many_identities_over), stored_count(q.list_limit)], |r| {
                Ok(DeveloperIdentityCount { email: r.get(0)?, identities: r.get::<_, i64>(1)?.max(0) as u64 })
            })
            .map_err(map_err)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map_err)?
    };

    let (missing, missing_total) = match q.missing_in {
        None => (Vec::new(), 0),
        Some(integration) => {
            const WITHOUT: &str = "FROM developers v WHERE v.account_id = ?1
                AND EXISTS (SELECT 1 FROM identities d WHERE d.account_id = v.account_id AND d.email = v.email)
                AND NOT EXISTS (SELECT 1 FROM identities d
                    WHERE d.account_id = v.account_id AND d.email = v.email AND d.integration_id = ?2)";
            let total: i64 = conn
                .query_row(&format!("SELECT COUNT(*) {WITHOUT}"), params![account.0, integration], |r| r.get(0))
                .map_err(map_err)?;
            let mut stmt =
                conn.prepare_cached(&format!("SELECT v.email {WITHOUT} ORDER BY v.email LIMIT ?3")).map_err(map_err)?;
            let emails = stmt
                .query_map(params![account.0, integration, stored_count(q.list_limit)], |r| r.get::<_, String>(0))
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_err)?;
            (emails, total.max(0) as u64)
        }
    };
    Ok(Coverage { integrations, top_unmapped: top.records, many_identities, missing, missing_total })
}

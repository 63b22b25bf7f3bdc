//! The change family of the storage contract: every write that changed something is one
//! change set, recorded in the write's own transaction, and read back as an ordered feed
//! so that whatever depends on the mappings recomputes only what changed.
//!
//! A change set owns the account's audit events with ids in `(after_event, last_event]`:
//! writes to one account are serialised on both backends, so the events one write adds
//! are exactly the account's events after the previous change set's.

use std::collections::BTreeMap;

use async_trait::async_trait;
use devid_core::change::ChangeKind;
use devid_core::time::Micros;
use serde::Serialize;

use crate::revert::{RevertOptions, RevertOutcome};
use crate::sql::{Arg, Dialect, Sql};
use crate::{AccountId, AuditEvent, ChangeContext, StoreResult};

/// One write, as the feed shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangeSet {
    /// Increases with every change set of the account: the feed's order and cursor.
    pub id: i64,
    /// When it was committed (RFC 3339).
    pub at: String,
    /// upload, delete, integration, key, contributors, bot-flag, suggestion, lock or revert.
    pub kind: String,
    /// The API key that made it; absent for changes made with the CLI on the server.
    pub key_id: Option<String>,
    pub request_id: Option<String>,
    /// How many audit events it holds.
    pub events: u64,
    /// Its events counted by action (`identity.created`: 3, …).
    pub counts: BTreeMap<String, u64>,
    /// For a revert: the change set it undid.
    pub reverts: Option<i64>,
}

/// Which change sets to list, oldest first.
#[derive(Debug, Clone, Default)]
pub struct ChangeQuery {
    /// Only change sets after this id (the last one a reader has seen).
    pub after: i64,
    pub limit: u64,
    pub kind: Option<ChangeKind>,
    /// Committed at or after (inclusive) and before (exclusive).
    pub from: Option<Micros>,
    pub to: Option<Micros>,
    pub key_id: Option<String>,
    /// Change sets with an event about this identity (as written, any integration).
    pub identity: Option<String>,
    /// Change sets with an event whose old or new email is this one.
    pub email: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ChangePage {
    pub changes: Vec<ChangeSet>,
    pub has_next: bool,
}

/// A change set's events, in the order they were written.
#[derive(Debug, Clone, Default)]
pub struct ChangeEventsPage {
    pub events: Vec<AuditEvent>,
    pub has_next: bool,
}

#[async_trait]
pub trait ChangeStore: Send + Sync {
    /// The account's change sets after `query.after`, oldest first, at most `limit`.
    async fn list_changes(&self, account: AccountId, query: ChangeQuery) -> StoreResult<ChangePage>;

    /// One change set, `None` when the account has none with that id.
    async fn get_change(&self, account: AccountId, id: i64) -> StoreResult<Option<ChangeSet>>;

    /// Up to `limit` of change set `id`'s events with ids after `after_event`; an empty
    /// page when the change set does not exist.
    async fn change_events(
        &self,
        account: AccountId,
        id: i64,
        after_event: i64,
        limit: u64,
    ) -> StoreResult<ChangeEventsPage>;

    /// Undoes change set `id` exactly, in one transaction, as a new change set of kind
    /// `revert` (see [`crate::revert`]).
    async fn revert_change(&self, ctx: &ChangeContext, id: i64, options: RevertOptions) -> StoreResult<RevertOutcome>;
}

pub(crate) const CHANGE_COLUMNS: &str = "c.id, c.at, c.kind, c.key_id, c.request_id, c.events, c.counts, c.reverts";

/// The feed query: one row more than `limit`, to know whether there is a next page.
pub fn changes_sql(dialect: Dialect, account: AccountId, q: &ChangeQuery) -> Sql {
    let mut sql = Sql::new(dialect);
    let mut filters = vec![
        format!("c.account_id = {}", sql.arg(Arg::Int(account.0))),
        format!("c.id > {}", sql.arg(Arg::Int(q.after))),
    ];
    if let Some(kind) = q.kind {
        filters.push(format!("c.kind = {}", sql.arg(Arg::Text(kind.as_str().to_string()))));
    }
    if let Some(from) = q.from {
        filters.push(format!("c.at >= {}", sql.arg(Arg::Int(from))));
    }
    if let Some(to) = q.to {
        filters.push(format!("c.at < {}", sql.arg(Arg::Int(to))));
    }
    if let Some(key) = &q.key_id {
        filters.push(format!("c.key_id = {}", sql.arg(Arg::Text(key.clone()))));
    }
    // An event filter reads the change set's own events (a range of the account's audit
    // index), so the identity filter costs what the change sets it passes over hold; the
    // email filter looks the address up instead (below).
    let events_of = "e.account_id = c.account_id AND e.id > c.after_event AND e.id <= c.last_event";
    if let Some(identity) = &q.identity {
        let p = sql.arg(Arg::Text(identity.clone()));
        filters.push(format!("EXISTS (SELECT 1 FROM audit_events e WHERE {events_of} AND e.identity = {p})"));
    }
    if let Some(email) = &q.email {
        filters.push(email_filter(&mut sql, dialect, account, q.after, email, events_of));
    }
    sql.text = format!(
        "SELECT {CHANGE_COLUMNS} FROM change_sets c WHERE {} ORDER BY c.id LIMIT {}",
        filters.join(" AND "),
        q.limit.saturating_add(1)
    );
    sql
}

/// The change sets whose events name `email` as old or new address, without reading
/// every event of each change set passed (a million-row upload is one change set of a
/// million events).
///
/// SQLite lists each change set's addresses in `change_set_emails` (two rows for a
/// ten-row move, where indexes of the events by address cost two entries per event on
/// the one writer's small-upload path); a change set whose addresses are not listed yet
/// (`emails_indexed = 0`, a large write just answered) has its events read. The ids
/// found drive the query (one rowid lookup each), rather than every change set being
/// tested in turn (on a generated table of a million change sets, 0.03-0.6 ms instead
/// of 170-230 ms).
/// PostgreSQL, with no single writer to spare, keeps partial indexes of the events by
/// address and probes them within each change set's event range.
fn email_filter(
    sql: &mut Sql,
    dialect: Dialect,
    account: AccountId,
    after: i64,
    email: &str,
    events_of: &str,
) -> String {
    match dialect {
        Dialect::Sqlite => {
            let (account_a, email_a, after_a) =
                (sql.arg(Arg::Int(account.0)), sql.arg(Arg::Text(email.to_string())), sql.arg(Arg::Int(after)));
            let (account_b, after_b) = (sql.arg(Arg::Int(account.0)), sql.arg(Arg::Int(after)));
            let (new_email, old_email) = (sql.arg(Arg::Text(email.to_string())), sql.arg(Arg::Text(email.to_string())));
            let events_of_p = "e.account_id = p.account_id AND e.id > p.after_event AND e.id <= p.last_event";
            format!(
                "c.id IN (SELECT x.change_set_id FROM change_set_emails x
                          WHERE x.account_id = {account_a} AND x.email = {email_a} AND x.change_set_id > {after_a}
                          UNION ALL
                          SELECT p.id FROM change_sets p
                          WHERE p.emails_indexed = 0 AND p.account_id = {account_b} AND p.id > {after_b}
                            AND EXISTS (SELECT 1 FROM audit_events e
                                        WHERE {events_of_p} AND (e.new_email = {new_email} OR e.old_email = {old_email})))"
            )
        }
        Dialect::Postgres => {
            let (a, b) = (sql.arg(Arg::Text(email.to_string())), sql.arg(Arg::Text(email.to_string())));
            format!(
                "(EXISTS (SELECT 1 FROM audit_events e WHERE {events_of} AND e.new_email = {a})
                  OR EXISTS (SELECT 1 FROM audit_events e WHERE {events_of} AND e.old_email = {b}))"
            )
        }
    }
}

/// A change set's events after `after_event`, one more than `limit`. The bounds are
/// worked out first, as constants: with two lower bounds on `e.id` (the change set's
/// and the page's), SQLite walked from the change set's start, so a deep page of a
/// million-event change set read most of it.
pub(crate) fn change_events_sql(dialect: Dialect, account: AccountId, id: i64, after_event: i64, limit: u64) -> Sql {
    let mut sql = Sql::new(dialect);
    // Placeholders in the order they appear: SQLite's `?` are positional.
    let account_a = sql.arg(Arg::Int(account.0));
    let after = sql.arg(Arg::Int(after_event));
    let (account_b, change_b) = (sql.arg(Arg::Int(account.0)), sql.arg(Arg::Int(id)));
    let (account_c, change_c) = (sql.arg(Arg::Int(account.0)), sql.arg(Arg::Int(id)));
    let greatest = match dialect {
        Dialect::Sqlite => "max",
        Dialect::Postgres => "GREATEST",
    };
    sql.text = format!(
        "SELECT {} FROM audit_events e
         WHERE e.account_id = {account_a}
           AND e.id > {greatest}({after}, (SELECT after_event FROM change_sets WHERE account_id = {account_b} AND id = {change_b}))
           AND e.id <= (SELECT last_event FROM change_sets WHERE account_id = {account_c} AND id = {change_c})
         ORDER BY e.id LIMIT {}",
        crate::sql::AUDIT_COLUMNS.split(", ").map(|c| format!("e.{c}")).collect::<Vec<_>>().join(", "),
        limit.saturating_add(1)
    );
    sql
}

/// The kind of change set an upload makes: an accepted suggestion's identities are
/// written as an upload, but are the suggestion's change.
pub(crate) fn upload_change_kind(plan: &devid_core::plan::UploadPlan) -> ChangeKind {
    match plan.provenance {
        devid_core::plan::Provenance::Suggestion => ChangeKind::Suggestion,
        _ => ChangeKind::Upload,
    }
}

/// Reads a change set's stored counts; a malformed value (never written by devid) reads
/// as none rather than failing the feed.
pub(crate) fn parse_counts(text: &str) -> BTreeMap<String, u64> {
    serde_json::from_str(text).unwrap_or_default()
}

/// The counts as stored.
pub(crate) fn counts_json(counts: &BTreeMap<String, u64>) -> String {
    serde_json::to_string(counts).unwrap_or_else(|_| "{}".into())
}

//! The contributor family of the storage contract: accounts seen in activity, each
//! source's report kept apart so a source can be re-sent, manual bot decisions kept
//! apart from contributors so they outlive every ingest, and the coverage figures
//! derived from contributors and identities together.

use async_trait::async_trait;
use devid_core::contributor::bots::BotRule;
use devid_core::contributor::plan::ContributorPlan;
use devid_core::contributor::zones::UtcOffsets;
use devid_core::contributor::{ActivityCounts, IngestMode};
use devid_core::time::Micros;
use devid_core::types::{ApplicationType, IntegrationId};

use crate::query::CursorKey;
use crate::{AccountId, ChangeContext, StoreResult};

/// A contributor's internal number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContributorId(pub i64);

/// What one contributor upload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestSummary {
    /// Rows the upload carried.
    pub received: u64,
    /// Distinct contributors in the upload.
    pub contributors: u64,
    pub created: u64,
    /// Existing contributors whose report from this source changed.
    pub updated: u64,
    pub unchanged: u64,
    /// Contributors this source no longer reports (replace mode) and no other source
    /// does either: they are gone.
    pub removed: u64,
    /// Contributors this source no longer reports but another source still does.
    pub detached: u64,
    /// Contributors of the upload that count as bots (rule or manual decision).
    pub bots: u64,
}

/// Which contributors a listing shows. The three are disjoint: a bot is never counted
/// as mapped or unmapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContributorStatus {
    Mapped,
    Unmapped,
    Bot,
}

impl ContributorStatus {
    pub const ALL: [(ContributorStatus, &'static str); 3] = [
        (ContributorStatus::Mapped, "mapped"),
        (ContributorStatus::Unmapped, "unmapped"),
        (ContributorStatus::Bot, "bot"),
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| n.eq_ignore_ascii_case(s.trim())).map(|(k, _)| *k)
    }
}

/// Listing orders. Activity and last seen run from the most to the least, ties broken by
/// integration and identity (descending, so a keyset cursor is one index seek); identity
/// runs A to Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ContributorSort {
    #[default]
    Activity,
    LastSeen,
    Identity,
}

impl ContributorSort {
    pub const ALL: [(ContributorSort, &'static str); 3] = [
        (ContributorSort::Activity, "activity"),
        (ContributorSort::LastSeen, "lastSeen"),
        (ContributorSort::Identity, "identity"),
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| n.eq_ignore_ascii_case(s.trim())).map(|(k, _)| *k)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContributorPaging {
    Offset {
        page_index: u64,
        page_size: u64,
    },
    After {
        cursor: CursorKey,
        page_size: u64,
    },
    /// Everything that matches (the CSV download walks it in batches by cursor).
    All,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContributorQuery {
    pub status: Option<ContributorStatus>,
    pub integration_ids: Vec<IntegrationId>,
    /// Case-insensitive substring of the identity, the name or the email.
    pub search: Option<String>,
    /// Only contributors mapped to the developer with this (normalised) email.
    pub developer: Option<String>,
    /// Only contributors last seen after this time.
    pub active_after: Option<Micros>,
    pub sort: ContributorSort,
    pub paging: ContributorPaging,
    /// Whether to count every match for `total_count`.
    pub count_total: bool,
}

impl Default for ContributorQuery {
    fn default() -> Self {
        Self {
            status: None,
            integration_ids: Vec::new(),
            search: None,
            developer: None,
            active_after: None,
            sort: ContributorSort::Activity,
            paging: ContributorPaging::All,
            count_total: true,
        }
    }
}

/// Why a contributor counts as a bot, or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotStatus {
    Person,
    /// A rule took it for a bot.
    Rule(BotRule),
    /// A person marked it a bot.
    Flagged,
    /// A person marked it not a bot, overriding the rules.
    Unflagged,
}

impl BotStatus {
    pub fn is_bot(self) -> bool {
        matches!(self, BotStatus::Rule(_) | BotStatus::Flagged)
    }
}

/// A listed contributor's bot status, from its manual decision (stored apart, so it
/// outlives the contributor) and the rule its latest ingest stored: the decision wins.
pub(crate) fn bot_status(manual: Option<bool>, rule: Option<&str>) -> BotStatus {
    match (manual, rule.and_then(BotRule::parse)) {
        (Some(true), _) => BotStatus::Flagged,
        (Some(false), _) => BotStatus::Unflagged,
        (None, Some(rule)) => BotStatus::Rule(rule),
        (None, None) => BotStatus::Person,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContributorRecord {
    pub id: ContributorId,
    pub integration_id: IntegrationId,
    pub application_type: ApplicationType,
    pub identity: String,
    /// The name and email seen with the most activity in the latest report.
    pub name: Option<String>,
    pub email: Option<String>,
    pub counts: ActivityCounts,
    pub first_seen: Option<Micros>,
    pub last_seen: Option<Micros>,
    pub bot: BotStatus,
    /// The developer an identity with the same key maps it to.
    pub mapped_email: Option<String>,
    /// Each source that reports it.
    pub sources: Vec<String>,
    /// Every name and email seen, summed over sources, most seen first.
    pub names: Vec<(String, u64)>,
    pub emails: Vec<(String, u64)>,
    /// The UTC offsets its activity was recorded in, over its sources.
    pub utc_offsets: UtcOffsets,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContributorPage {
    pub records: Vec<ContributorRecord>,
    pub total_count: u64,
    pub has_next: bool,
    pub next_cursor: Option<CursorKey>,
}

/// One manual bot decision, as core validated it.
pub use devid_core::contributor::bots::BotDecision as BotFlag;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BotFlagSummary {
    pub received: u64,
    pub flagged: u64,
    pub unflagged: u64,
    pub cleared: u64,
    /// Decisions that were already in place.
    pub unchanged: u64,
    /// Decisions about identities no contributor carries yet: kept for when one appears.
    pub not_seen_yet: u64,
}

/// Coverage of one integration by developers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrationCoverage {
    pub integration_id: IntegrationId,
    pub application_type: Option<ApplicationType>,
    pub name: String,
    pub contributors: u64,
    pub mapped: u64,
    pub unmapped: u64,
    pub bots: u64,
    /// Activity of contributors that are not bots, per kind.
    pub activity: ActivityCounts,
    /// The part of it carried by mapped contributors.
    pub attributed: ActivityCounts,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeveloperIdentityCount {
    pub email: String,
    pub identities: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverageQuery {
    /// How many unmapped contributors to list.
    pub top_unmapped: u64,
    /// Developers holding more identities than this are listed.
    pub many_identities_over: u64,
    /// List developers without an identity in this integration.
    pub missing_in: Option<IntegrationId>,
    /// At most this many entries in each developer list.
    pub list_limit: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    pub integrations: Vec<IntegrationCoverage>,
    pub top_unmapped: Vec<ContributorRecord>,
    /// Most identities first.
    pub many_identities: Vec<DeveloperIdentityCount>,
    /// Emails of developers without an identity in `missing_in`, A to Z.
    pub missing: Vec<String>,
    pub missing_total: u64,
}

/// Contributors on a backend. Every method keeps accounts apart.
#[async_trait]
pub trait ContributorStore: Send + Sync {
    /// Applies a validated contributor upload from `source` in one transaction; with
    /// `dry_run` computes the same summary and rolls back. `Invalid` when an integration
    /// of the plan no longer exists; `Unavailable` on database trouble.
    async fn ingest_contributors(
        &self,
        ctx: &ChangeContext,
        source: &str,
        mode: IngestMode,
        plan: ContributorPlan,
        dry_run: bool,
    ) -> StoreResult<IngestSummary>;

    /// One page of contributors. `Unavailable` on database trouble.
    async fn list_contributors(&self, account: AccountId, query: ContributorQuery) -> StoreResult<ContributorPage>;

    /// Records manual bot decisions (one audit event per change) in one transaction and
    /// applies them to the contributors they name. `Invalid` when an integration does not
    /// exist.
    async fn set_bot_flags(&self, ctx: &ChangeContext, flags: Vec<BotFlag>) -> StoreResult<BotFlagSummary>;

    /// Coverage of every integration with contributors, and the developer checks.
    async fn coverage(&self, account: AccountId, query: CoverageQuery) -> StoreResult<Coverage>;

    /// A number that changes whenever the account's contributors, bot decisions or
    /// integrations change (coverage lists integrations by name and type).
    async fn contributors_version(&self, account: AccountId) -> StoreResult<i64>;
}

/// What one source reported of one contributor: a row of `contributor_sources` on both
/// backends. Names and emails are stored as a JSON array of `[value, count]` pairs, in
/// first-seen order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceReport {
    pub counts: ActivityCounts,
    pub first_seen: Option<Micros>,
    pub last_seen: Option<Micros>,
    pub names: Vec<(String, u64)>,
    pub emails: Vec<(String, u64)>,
    pub utc_offsets: UtcOffsets,
}

impl SourceReport {
    pub fn of(row: &devid_core::contributor::plan::PlannedContributor) -> Self {
        Self {
            counts: row.counts,
            first_seen: row.first_seen(),
            last_seen: row.last_seen(),
            names: row.names().map(|(v, n)| (v.to_string(), n)).collect(),
            emails: row.emails().map(|(v, n)| (v.to_string(), n)).collect(),
            utc_offsets: row.utc_offsets,
        }
    }

    /// This report with `more` added to it (`mode=add`).
    pub fn merged(&self, more: &SourceReport) -> Self {
        let mut out = self.clone();
        out.counts.add_all(&more.counts);
        out.first_seen = match (self.first_seen, more.first_seen) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        out.last_seen = match (self.last_seen, more.last_seen) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        merge_tallies(&mut out.names, more.names.clone());
        merge_tallies(&mut out.emails, more.emails.clone());
        out.utc_offsets = out.utc_offsets.union(&more.utc_offsets);
        out
    }

    pub fn top_name(&self) -> Option<&str> {
        top(&self.names)
    }

    pub fn top_email(&self) -> Option<&str> {
        top(&self.emails)
    }

    /// The stored form of names or emails with their counts: a JSON array of pairs.
    pub fn encode_seen<'a>(values: impl Iterator<Item = (&'a str, u64)>) -> String {
        let borrowed: Vec<(&str, u64)> = values.collect();
        serde_json::to_string(&borrowed).unwrap_or_else(|_| "[]".into())
    }

    pub fn encode_tallies(values: &[(String, u64)]) -> String {
        Self::encode_seen(values.iter().map(|(v, n)| (v.as_str(), *n)))
    }

    /// Unreadable text (never written by devid) reads as no values rather than failing
    /// a listing.
    pub fn decode_tallies(text: &str) -> Vec<(String, u64)> {
        serde_json::from_str(text).unwrap_or_default()
    }
}

fn top(values: &[(String, u64)]) -> Option<&str> {
    let mut best: Option<&(String, u64)> = None;
    for v in values {
        if best.is_none_or(|b| v.1 > b.1) {
            best = Some(v);
        }
    }
    best.map(|(v, _)| v.as_str())
}

/// Adds `more` into `into`, value by value.
pub(crate) fn merge_tallies(into: &mut Vec<(String, u64)>, more: Vec<(String, u64)>) {
    for (value, n) in more {
        match into.iter_mut().find(|(v, _)| *v == value) {
            Some((_, count)) => *count = count.saturating_add(n),
            None => into.push((value, n)),
        }
    }
}

/// Most seen first; equal counts keep their first-seen order.
pub(crate) fn most_seen_first(mut values: Vec<(String, u64)>) -> Vec<(String, u64)> {
    values.sort_by_key(|v| std::cmp::Reverse(v.1));
    values
}

/// Largest count stored: 2^53 − 1, exact in every JSON client, and far enough from
/// i64::MAX that summing a contributor's sources cannot overflow the database.
pub const MAX_STORED_COUNT: u64 = (1 << 53) - 1;

pub(crate) fn stored_count(n: u64) -> i64 {
    n.min(MAX_STORED_COUNT) as i64
}

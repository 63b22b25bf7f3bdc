//! Contributors and coverage as the API shows them.

use devid_core::contributor::zones::format_offset;
use devid_core::contributor::{ActivityCounts, ActivityKind};
use devid_core::time::to_rfc3339;
use devid_core::types::{ApplicationType, IntegrationId};
use devid_store::contributors::{
    BotFlagSummary, BotStatus, ContributorRecord, Coverage, IngestSummary, IntegrationCoverage,
};
use serde::{Deserialize, Serialize};

/// Activity per kind, and their sum.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Activity {
    pub commit: u64,
    pub pr: u64,
    pub review: u64,
    pub issue: u64,
    pub other: u64,
    pub total: u64,
}

impl From<&ActivityCounts> for Activity {
    fn from(c: &ActivityCounts) -> Self {
        Self {
            commit: c.get(ActivityKind::Commit),
            pr: c.get(ActivityKind::Pr),
            review: c.get(ActivityKind::Review),
            issue: c.get(ActivityKind::Issue),
            other: c.get(ActivityKind::Other),
            total: c.total(),
        }
    }
}

/// A value seen in activity (a name, an email) and how much activity came with it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SeenValue {
    pub value: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Contributor {
    pub id: i64,
    pub integration_id: IntegrationId,
    pub application_type: ApplicationType,
    pub identity: String,
    /// The name seen with the most activity in the latest report.
    pub name: Option<String>,
    pub email: Option<String>,
    /// `mapped`, `unmapped` or `bot`.
    pub status: String,
    /// The developer an identity with the same key maps this contributor to.
    pub mapped_email: Option<String>,
    pub bot: bool,
    /// Why it is or is not a bot: a rule (`bot-suffix`, `bot-token`, `service-account`,
    /// `service-noreply`), `flagged` or `unflagged` by a person; `null` for a person no
    /// rule matched.
    pub bot_reason: Option<String>,
    pub activity: Activity,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// Each source reporting it (empty in the CSV download).
    pub sources: Vec<String>,
    pub names: Vec<SeenValue>,
    pub emails: Vec<SeenValue>,
    /// The UTC offsets its activity was recorded in (`+01:00`), over its sources; empty
    /// when no source said (and in the CSV download).
    #[serde(default)]
    pub utc_offsets: Vec<String>,
}

pub fn status_of(r: &ContributorRecord) -> &'static str {
    if r.bot.is_bot() {
        "bot"
    } else if r.mapped_email.is_some() {
        "mapped"
    } else {
        "unmapped"
    }
}

pub fn bot_reason(bot: BotStatus) -> Option<&'static str> {
    match bot {
        BotStatus::Person => None,
        BotStatus::Rule(rule) => Some(rule.as_str()),
        BotStatus::Flagged => Some("flagged"),
        BotStatus::Unflagged => Some("unflagged"),
    }
}

impl From<ContributorRecord> for Contributor {
    fn from(r: ContributorRecord) -> Self {
        let seen =
            |values: Vec<(String, u64)>| values.into_iter().map(|(value, count)| SeenValue { value, count }).collect();
        Self {
            status: status_of(&r).into(),
            bot: r.bot.is_bot(),
            bot_reason: bot_reason(r.bot).map(str::to_string),
            activity: Activity::from(&r.counts),
            first_seen: r.first_seen.map(to_rfc3339),
            last_seen: r.last_seen.map(to_rfc3339),
            id: r.id.0,
            integration_id: r.integration_id,
            application_type: r.application_type,
            identity: r.identity,
            name: r.name,
            email: r.email,
            mapped_email: r.mapped_email,
            sources: r.sources,
            names: seen(r.names),
            emails: seen(r.emails),
            utc_offsets: r.utc_offsets.minutes().map(format_offset).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngestCounts {
    /// Rows the upload carried.
    pub received: u64,
    /// Distinct contributors among them.
    pub contributors: u64,
    pub contributors_created: u64,
    /// Contributors whose report from this source changed.
    pub contributors_updated: u64,
    pub contributors_unchanged: u64,
    /// Contributors no source reports any more (replace mode): removed.
    pub contributors_removed: u64,
    /// Contributors this source stopped reporting that another source still reports.
    pub contributors_detached: u64,
    /// Contributors of the upload that count as bots.
    pub bots: u64,
}

impl From<IngestSummary> for IngestCounts {
    fn from(s: IngestSummary) -> Self {
        Self {
            received: s.received,
            contributors: s.contributors,
            contributors_created: s.created,
            contributors_updated: s.updated,
            contributors_unchanged: s.unchanged,
            contributors_removed: s.removed,
            contributors_detached: s.detached,
            bots: s.bots,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngestResponse {
    pub status: String,
    pub message: String,
    pub source: String,
    /// `replace` or `add`.
    pub mode: String,
    pub summary: IngestCounts,
    pub dry_run: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BotFlagCounts {
    pub received: u64,
    pub flagged: u64,
    pub unflagged: u64,
    pub cleared: u64,
    pub unchanged: u64,
    /// Decisions about identities no contributor carries yet; they apply when one appears.
    pub not_seen_yet: u64,
}

impl From<BotFlagSummary> for BotFlagCounts {
    fn from(s: BotFlagSummary) -> Self {
        Self {
            received: s.received,
            flagged: s.flagged,
            unflagged: s.unflagged,
            cleared: s.cleared,
            unchanged: s.unchanged,
            not_seen_yet: s.not_seen_yet,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BotFlagResponse {
    pub status: String,
    pub message: String,
    pub summary: BotFlagCounts,
}

/// The share of activity that is attributed, per kind, between 0 and 1; `null` where
/// there is no activity of that kind.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Shares {
    pub commit: Option<f64>,
    pub pr: Option<f64>,
    pub review: Option<f64>,
    pub issue: Option<f64>,
    pub other: Option<f64>,
    pub total: Option<f64>,
}

fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl Shares {
    fn of(attributed: &Activity, all: &Activity) -> Self {
        Self {
            commit: share(attributed.commit, all.commit),
            pr: share(attributed.pr, all.pr),
            review: share(attributed.review, all.review),
            issue: share(attributed.issue, all.issue),
            other: share(attributed.other, all.other),
            total: share(attributed.total, all.total),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationCoverageEntry {
    pub integration_id: IntegrationId,
    pub application_type: Option<ApplicationType>,
    pub name: String,
    pub contributors: u64,
    pub mapped: u64,
    pub unmapped: u64,
    pub bots: u64,
    /// Activity of contributors that are not bots.
    pub activity: Activity,
    /// The part of it carried by mapped contributors.
    pub attributed_activity: Activity,
    pub attributed_share: Shares,
}

impl From<&IntegrationCoverage> for IntegrationCoverageEntry {
    fn from(c: &IntegrationCoverage) -> Self {
        let activity = Activity::from(&c.activity);
        let attributed = Activity::from(&c.attributed);
        Self {
            integration_id: c.integration_id,
            application_type: c.application_type,
            name: c.name.clone(),
            contributors: c.contributors,
            mapped: c.mapped,
            unmapped: c.unmapped,
            bots: c.bots,
            attributed_share: Shares::of(&attributed, &activity),
            activity,
            attributed_activity: attributed,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeveloperIdentities {
    pub email: String,
    pub identities: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MissingDevelopers {
    pub integration_id: IntegrationId,
    /// Developers (with at least one identity elsewhere) holding none in this integration, A to Z.
    pub emails: Vec<String>,
    pub total_count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoverageResponse {
    pub integrations: Vec<IntegrationCoverageEntry>,
    /// All integrations together.
    pub overall: IntegrationTotals,
    /// The unmapped contributors with the most activity.
    pub top_unmapped: Vec<Contributor>,
    /// Developers holding more identities than `manyIdentitiesOver`, most first: the
    /// sign of a wrong merge.
    pub many_identities: Vec<DeveloperIdentities>,
    pub many_identities_over: u64,
    /// With `missingIn`: developers without an identity in that integration.
    pub missing: Option<MissingDevelopers>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationTotals {
    pub contributors: u64,
    pub mapped: u64,
    pub unmapped: u64,
    pub bots: u64,
    pub activity: Activity,
    pub attributed_activity: Activity,
    pub attributed_share: Shares,
}

impl CoverageResponse {
    pub fn of(c: &Coverage, many_over: u64, missing_in: Option<IntegrationId>) -> Self {
        let mut activity = ActivityCounts::default();
        let mut attributed = ActivityCounts::default();
        let (mut contributors, mut mapped, mut unmapped, mut bots) = (0, 0, 0, 0);
        for i in &c.integrations {
            activity.add_all(&i.activity);
            attributed.add_all(&i.attributed);
            contributors += i.contributors;
            mapped += i.mapped;
            unmapped += i.unmapped;
            bots += i.bots;
        }
        let (activity, attributed) = (Activity::from(&activity), Activity::from(&attributed));
        Self {
            integrations: c.integrations.iter().map(IntegrationCoverageEntry::from).collect(),
            overall: IntegrationTotals {
                contributors,
                mapped,
                unmapped,
                bots,
                attributed_share: Shares::of(&attributed, &activity),
                activity,
                attributed_activity: attributed,
            },
            top_unmapped: c.top_unmapped.iter().cloned().map(Contributor::from).collect(),
            many_identities: c
                .many_identities
                .iter()
                .map(|d| DeveloperIdentities { email: d.email.clone(), identities: d.identities })
                .collect(),
            many_identities_over: many_over,
            missing: missing_in.map(|integration_id| MissingDevelopers {
                integration_id,
                emails: c.missing.clone(),
                total_count: c.missing_total,
            }),
        }
    }
}

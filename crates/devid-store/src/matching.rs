//! The matching family of the storage contract: what the engine reads (contributors,
//! developers, cannot-links) and the decisions people make on its suggestions. The
//! suggestions themselves are computed in core from [`MatchInput`] and never stored:
//! only decisions are, so a rule change can never resurrect a rejected pairing or
//! forget an accepted one.

use async_trait::async_trait;
use devid_core::change::AuditAction;
use devid_core::contributor::zones::UtcOffsets;
use devid_core::resolve::suggest::Party;
use devid_core::types::{ApplicationType, IntegrationId};

use crate::{AccountId, ChangeContext, StoreResult};

/// A contributor as matching sees it: its most-seen name and email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchContributor {
    pub integration_id: IntegrationId,
    pub application_type: ApplicationType,
    /// As the source wrote it.
    pub identity: String,
    /// As identities compare it (the integration's case rules applied).
    pub identity_key: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub is_bot: bool,
    pub activity: u64,
    /// The developer (its id) the contributor is mapped to.
    pub developer_id: Option<i64>,
    /// The UTC offsets its activity was recorded in, over every source.
    pub utc_offsets: UtcOffsets,
    /// Every name it was seen under, over every source, most seen first (`name` is the
    /// first): one address written as "Jane Doe" and as "jdoe" is evidence both ways.
    pub names: Vec<String>,
    /// When its activity began, over every source (microseconds), when known.
    pub first_seen: Option<i64>,
    /// When its activity ended, over every source (microseconds), when known.
    pub last_seen: Option<i64>,
}

/// Separates the sources' texts in the one column a contributor's sources are read
/// into: a control character, which never appears unescaped inside JSON.
pub(crate) const SOURCE_SEPARATOR: char = '\u{1e}';

/// The names of a contributor's sources (each a stored `[[name, count], ...]` array,
/// joined by [`SOURCE_SEPARATOR`]) as one list, most seen first.
pub(crate) fn names_over_sources(joined: &str) -> Vec<String> {
    let mut names = Vec::new();
    for part in joined.split(SOURCE_SEPARATOR).filter(|p| !p.is_empty()) {
        crate::contributors::merge_tallies(&mut names, crate::contributors::SourceReport::decode_tallies(part));
    }
    crate::contributors::most_seen_first(names).into_iter().map(|(name, _)| name).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchDeveloper {
    pub id: i64,
    pub email: String,
    pub name: Option<String>,
}

/// A decision already taken on a suggestion id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecisionKind {
    Accept,
    Reject,
    Skip,
}

impl DecisionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Accept => "accept",
            DecisionKind::Reject => "reject",
            DecisionKind::Skip => "skip",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "accept" => Some(DecisionKind::Accept),
            "reject" => Some(DecisionKind::Reject),
            "skip" => Some(DecisionKind::Skip),
            _ => None,
        }
    }
}

/// Everything the engine needs for one account, read in one snapshot.
#[derive(Debug, Clone, Default)]
pub struct MatchInput {
    pub contributors: Vec<MatchContributor>,
    pub developers: Vec<MatchDeveloper>,
    pub cannot_link: Vec<(Party, Party)>,
    /// Suggestion ids already decided, with the decision.
    pub decided: Vec<(String, DecisionKind)>,
}

/// A decision on one suggestion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDecision {
    pub suggestion_id: String,
    pub kind: DecisionKind,
    /// For a reject: the pairings that must never be suggested again.
    pub cannot_link: Vec<(Party, Party)>,
    /// The evidence the suggestion showed (`rule: value`), kept in the audit trail.
    pub evidence: Vec<String>,
}

impl NewDecision {
    /// The audit event's action and detail (the suggestion, its cannot-links, its evidence).
    pub(crate) fn audit(&self) -> (AuditAction, String) {
        let action = match self.kind {
            DecisionKind::Reject => AuditAction::SuggestionRejected,
            DecisionKind::Skip => AuditAction::SuggestionSkipped,
            DecisionKind::Accept => AuditAction::SuggestionAccepted,
        };
        let detail = serde_json::json!({
            "suggestionId": self.suggestion_id,
            "cannotLinks": self.cannot_link.len(),
            "evidence": self.evidence,
        })
        .to_string();
        (action, detail)
    }
}

/// Encodes a party as stored: `contributor <US> integration <US> identity key`, or
/// `developer <US> email`. Pairs are stored smaller first, so one pairing is one row.
pub fn party_text(party: &Party) -> String {
    match party {
        Party::Contributor { integration_id, identity } => format!("contributor\u{1f}{integration_id}\u{1f}{identity}"),
        Party::Developer { email } => format!("developer\u{1f}{email}"),
    }
}

pub fn party_from_text(text: &str) -> Option<Party> {
    let mut parts = text.splitn(3, '\u{1f}');
    match (parts.next()?, parts.next()?, parts.next()) {
        ("contributor", integration, Some(identity)) => {
            Some(Party::Contributor { integration_id: integration.to_string(), identity: identity.to_string() })
        }
        ("developer", email, None) => Some(Party::Developer { email: email.to_string() }),
        _ => None,
    }
}

/// The two texts of a pairing, smaller first.
pub fn pairing_texts(a: &Party, b: &Party) -> (String, String) {
    let (x, y) = (party_text(a), party_text(b));
    if x <= y { (x, y) } else { (y, x) }
}

#[async_trait]
pub trait MatchStore: Send + Sync {
    /// The engine's input for `account`: every contributor with its mapping, every
    /// developer, every cannot-link, every decided suggestion id. Errors:
    /// `Unavailable` when the database is.
    async fn match_input(&self, account: AccountId) -> StoreResult<MatchInput>;

    /// Records decisions in one transaction, with one audit event each, and
    /// bumps the account's decisions version. Errors: `Conflict` when a suggestion id
    /// was already decided (nothing recorded).
    async fn record_decisions(&self, ctx: &ChangeContext, decisions: Vec<NewDecision>) -> StoreResult<u64>;

    /// Accepting suggestions: applies `plan` (their contributors mapped to their
    /// developers, locked, provenance `suggestion`) and records `decisions`, in one
    /// transaction and one change set of kind `suggestion`, so the feed shows one change
    /// and one revert undoes it. Errors: as `apply_upload` and `record_decisions`;
    /// either way nothing is applied.
    async fn accept_suggestions(
        &self,
        ctx: &ChangeContext,
        plan: devid_core::plan::UploadPlan,
        decisions: Vec<NewDecision>,
    ) -> StoreResult<crate::UploadSummary>;

    /// Changes whenever a decision is recorded: with the identities and contributors
    /// versions, it says when suggestions must be computed again.
    async fn decisions_version(&self, account: AccountId) -> StoreResult<i64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parties_read_back_as_written() {
        for party in [
            Party::Contributor { integration_id: "7".into(), identity: "jane@corp.com".into() },
            Party::Developer { email: "jane@corp.com".into() },
        ] {
            assert_eq!(party_from_text(&party_text(&party)), Some(party));
        }
        assert_eq!(party_from_text("nobody"), None);
    }
}

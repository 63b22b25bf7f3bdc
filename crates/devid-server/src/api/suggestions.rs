//! Suggestions and decisions as the API shows them.

use devid_core::types::IntegrationId;
use serde::{Deserialize, Serialize};

use devid_store::UploadSummary;

/// What a suggestion proposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum SuggestionKind {
    /// Map unmapped contributors to an existing developer.
    Link,
    /// Create a developer and map a group of unmapped contributors to it.
    NewDeveloper,
}

/// One suggestion with the evidence that holds it together.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuggestionRecord {
    /// Stable while the proposal and its evidence stay the same.
    pub id: String,
    pub kind: SuggestionKind,
    /// `auto`: safe to accept without reading; `review`: a person should look.
    pub tier: String,
    /// How much the weakest rule holding it together says, from 0 to 1.
    pub confidence: f64,
    /// The developer the contributors would be mapped to (existing for `link`, created
    /// for `newDeveloper`).
    pub developer: SuggestedDeveloper,
    pub contributors: Vec<SuggestedContributor>,
    pub evidence: Vec<EvidenceRecord>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuggestedDeveloper {
    pub email: String,
    /// Whether a developer with this email exists already.
    pub existing: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuggestedContributor {
    pub integration_id: IntegrationId,
    pub identity: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// Activity counted over every kind.
    pub activity: u64,
}

/// One link between two parties and the rule that made it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceRecord {
    /// same-email, same-github-account, same-name-corroborated, same-name-same-timezone,
    /// name-is-login, login-matches-local-part, same-name-only, same-handle,
    /// committed-by-same-name, handle-spells-name, same-mailbox, handles-begin-alike,
    /// one-typo-apart, one-word-name-same-time, handle-with-a-slip, truncated-handle,
    /// name-is-address, same-account, same-developer.
    pub rule: String,
    /// The value the rule matched on (an email, a name, a login).
    pub value: String,
    pub between: Vec<PartyRecord>,
}

/// A contributor (by integration and identity) or a developer (by email).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartyRecord {
    /// `contributor` or `developer`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<IntegrationId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuggestionMetadata {
    pub page: u64,
    pub page_size: u64,
    pub has_next: bool,
    pub total_count: u64,
    /// Suggestions at `auto` and at `review` over the whole account, before filters.
    pub auto_count: u64,
    pub review_count: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SuggestionList {
    pub records: Vec<SuggestionRecord>,
    /// Records in this page.
    pub count: usize,
    #[serde(rename = "_metadata")]
    pub metadata: SuggestionMetadata,
}

/// A batch to accept: the ids, or every suggestion of a tier.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AcceptBatch {
    /// Suggestion ids, as listed by GET /v2/suggestions.
    #[serde(default)]
    pub ids: Option<Vec<String>>,
    /// `auto`: accept every suggestion at tier auto.
    #[serde(default)]
    pub tier: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcceptResponse {
    pub status: String,
    pub message: String,
    /// The suggestion ids accepted.
    pub accepted: Vec<String>,
    /// The identities written, as an upload reports them.
    pub summary: UploadSummary,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecisionResponse {
    pub status: String,
    pub message: String,
    pub id: String,
    /// reject | skip.
    pub decision: String,
    /// Pairings recorded as never to be suggested again (reject only).
    pub cannot_links: usize,
}

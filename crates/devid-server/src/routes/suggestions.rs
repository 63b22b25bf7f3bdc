//! Suggestions: who is who, computed by devid-core's resolve engine from the account's
//! contributors, developers and decisions, and the decisions people take on them.
//!
//! Suggestions are computed on demand and never stored. An account's answer is kept in
//! memory with the versions it was computed at (identities, contributors, decisions);
//! any write to one of them makes the next request compute again. Ids are stable (a
//! hash of the proposal and its evidence), so an id that was listed before and is gone
//! now is known to be stale rather than unknown: the ids of earlier answers are kept
//! for that, with the versions they were made at.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, RawQuery, Request, State};
use devid_core::errors::{Position, Problems};
use devid_core::plan::{Addressing, Planner, Provenance, RawRow, RawValue};
use devid_core::resolve::suggest::{
    ContributorFacts, DeveloperFacts, Party, Proposal, SuggestInput, Suggestion, suggest_by_tier,
};
use devid_core::resolve::{Options, Tier};
use devid_core::types::{ApplicationType, Scope};
use devid_store::AccountId;
use devid_store::matching::{DecisionKind, MatchContributor, MatchInput, NewDecision};

use super::QueryParams;
use super::admin::json_body_within;
use crate::AppState;
use crate::api::suggestions::{
    AcceptBatch, AcceptResponse, DecisionResponse, EvidenceRecord, PartyRecord, SuggestedContributor,
    SuggestedDeveloper, SuggestionKind, SuggestionList, SuggestionMetadata, SuggestionRecord,
};
use crate::auth::Authenticated;
use crate::error::{ApiError, ErrorBody};

/// Largest page and page number of the listing.
pub const MAX_PAGE_SIZE: u64 = 1000;
pub const MAX_PAGE_INDEX: u64 = 1_000_000;

/// Ids of earlier answers kept per account to tell stale from unknown; beyond this the
/// oldest answer's ids are dropped (and such an id is then reported as unknown).
const MAX_RETIRED_IDS: usize = 200_000;

/// Accounts whose suggestions are kept in memory at once.
const MAX_ACCOUNTS: usize = 64;

/// Most suggestions one batch may accept.
pub const MAX_BATCH: usize = 100_000;

/// Largest batch body: `MAX_BATCH` ids of 16 hex digits, quoted, with room to spare.
const MAX_BATCH_BODY: usize = 4 * 1024 * 1024;

/// Largest `developer` filter: an email's longest.
pub const MAX_DEVELOPER_FILTER_CHARS: usize = 254;

/// The versions an answer was computed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Versions {
    identities: i64,
    contributors: i64,
    decisions: i64,
}

impl Versions {
    /// What changed between `self` (older) and `now`, for a stale suggestion's error.
    fn changes_since(self, now: Versions) -> String {
        let mut changed = Vec::new();
        if self.contributors != now.contributors {
            changed.push("contributors were uploaded or flagged");
        }
        if self.identities != now.identities {
            changed.push("identities were uploaded, deleted or accepted");
        }
        if self.decisions != now.decisions {
            changed.push("other suggestions were decided");
        }
        if changed.is_empty() { "the account changed".to_string() } else { changed.join(", and ") }
    }
}

/// One account's suggestions at one set of versions.
#[derive(Debug)]
pub struct Computed {
    versions: Versions,
    input: MatchInput,
    suggestions: Vec<Suggestion>,
    by_id: HashMap<String, usize>,
    decided: HashMap<String, DecisionKind>,
}

#[derive(Debug, Default)]
struct AccountSuggestions {
    current: Option<Arc<Computed>>,
    /// Ids of earlier answers no longer current, with the versions they were made at.
    retired: HashMap<String, Versions>,
    last_used: u64,
}

#[derive(Debug, Default)]
pub struct SuggestionCache {
    accounts: Mutex<(u64, HashMap<i64, AccountSuggestions>)>,
    /// One computation at a time, server-wide: a large account's takes seconds and
    /// hundreds of MiB, and requests arriving meanwhile for the same account are then
    /// answered from its result instead of each computing it again.
    computing: tokio::sync::Mutex<()>,
}

impl SuggestionCache {
    fn current(&self, account: i64, versions: Versions) -> Option<Arc<Computed>> {
        let mut guard = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        guard.0 += 1;
        let clock = guard.0;
        let entry = guard.1.get_mut(&account)?;
        entry.last_used = clock;
        entry.current.as_ref().filter(|c| c.versions == versions).cloned()
    }

    fn replace(&self, account: i64, computed: Arc<Computed>) {
        let mut guard = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        guard.0 += 1;
        let clock = guard.0;
        if !guard.1.contains_key(&account)
            && guard.1.len() >= MAX_ACCOUNTS
            && let Some(oldest) = guard.1.iter().min_by_key(|(_, e)| e.last_used).map(|(a, _)| *a)
        {
            guard.1.remove(&oldest);
        }
        let entry = guard.1.entry(account).or_default();
        entry.last_used = clock;
        if let Some(previous) = entry.current.take() {
            if entry.retired.len() + previous.suggestions.len() > MAX_RETIRED_IDS {
                entry.retired.clear();
            }
            for suggestion in &previous.suggestions {
                if !computed.by_id.contains_key(&suggestion.id) {
                    entry.retired.insert(suggestion.id.clone(), previous.versions);
                }
            }
        }
        for id in computed.by_id.keys() {
            entry.retired.remove(id);
        }
        entry.current = Some(computed);
    }

    fn retired_at(&self, account: i64, id: &str) -> Option<Versions> {
        let guard = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        guard.1.get(&account).and_then(|e| e.retired.get(id).copied())
    }
}

async fn versions(state: &AppState, account: AccountId) -> Result<Versions, ApiError> {
    Ok(Versions {
        identities: state.store.identities_version(account).await?,
        contributors: state.store.contributors_version(account).await?,
        decisions: state.store.decisions_version(account).await?,
    })
}

/// The account's suggestions as of now: from memory when nothing changed, computed
/// otherwise (off the async threads: a million contributors take seconds).
async fn current(state: &AppState, account: AccountId) -> Result<Arc<Computed>, ApiError> {
    let versions = versions(state, account).await?;
    if let Some(computed) = state.suggestions.current(account.0, versions) {
        return Ok(computed);
    }
    let _computing = state.suggestions.computing.lock().await;
    if let Some(computed) = state.suggestions.current(account.0, versions) {
        return Ok(computed);
    }
    let input = state.store.match_input(account).await?;
    let computed = tokio::task::spawn_blocking(move || Arc::new(compute(input, versions)))
        .await
        .map_err(|e| ApiError::from(devid_store::StoreError::Internal(format!("computing suggestions failed: {e}"))))?;
    state.suggestions.replace(account.0, computed.clone());
    Ok(computed)
}

fn is_github(t: ApplicationType) -> bool {
    matches!(t, ApplicationType::Github | ApplicationType::GithubEnterprise)
}

/// A contributor's first and last day of activity, from its first and last seen
/// (microseconds); either alone stands for both.
fn active_days(first_seen: Option<i64>, last_seen: Option<i64>) -> Option<(i32, i32)> {
    const MICROS_PER_DAY: i64 = 86_400_000_000;
    let day = |micros: i64| i32::try_from(micros.div_euclid(MICROS_PER_DAY)).ok();
    let (first, last) = match (first_seen, last_seen) {
        (Some(first), Some(last)) => (day(first)?, day(last)?),
        (Some(only), None) | (None, Some(only)) => (day(only)?, day(only)?),
        (None, None) => return None,
    };
    Some((first.min(last), first.max(last)))
}

/// A contributor's emails: the one its source reported and, for a git author (whose
/// identity is the address as recorded), the identity itself.
fn emails_of(c: &MatchContributor) -> Vec<String> {
    let mut emails: Vec<String> = c.email.iter().cloned().collect();
    if c.application_type == ApplicationType::Git && !emails.iter().any(|e| e.eq_ignore_ascii_case(&c.identity)) {
        emails.push(c.identity.clone());
    }
    emails
}

/// Runs the engine over an account's input; decided suggestions are left out.
fn compute(input: MatchInput, versions: Versions) -> Computed {
    let developer_index: HashMap<i64, usize> = input.developers.iter().enumerate().map(|(i, d)| (d.id, i)).collect();
    let facts = SuggestInput {
        contributors: input
            .contributors
            .iter()
            .map(|c| ContributorFacts {
                integration_id: c.integration_id.to_string(),
                identity: c.identity_key.clone(),
                github: is_github(c.application_type),
                names: if c.names.is_empty() { c.name.iter().cloned().collect() } else { c.names.clone() },
                emails: emails_of(c),
                bot: c.is_bot,
                developer: c.developer_id.and_then(|d| developer_index.get(&d).copied()),
                activity: c.activity,
                utc_offsets: c.utc_offsets.minutes().collect(),
                active_days: active_days(c.first_seen, c.last_seen),
            })
            .collect(),
        developers: input.developers.iter().map(|d| DeveloperFacts { email: d.email.clone() }).collect(),
        cannot_link: input.cannot_link.clone(),
    };
    let decided: HashMap<String, DecisionKind> = input.decided.iter().cloned().collect();
    let suggestions: Vec<Suggestion> =
        suggest_by_tier(&facts, Options::default()).into_iter().filter(|s| !decided.contains_key(&s.id)).collect();
    let by_id = suggestions.iter().enumerate().map(|(i, s)| (s.id.clone(), i)).collect();
    Computed { versions, input, suggestions, by_id, decided }
}

fn developer_of(computed: &Computed, suggestion: &Suggestion) -> SuggestedDeveloper {
    match &suggestion.proposal {
        Proposal::Link { developer, .. } => {
            SuggestedDeveloper { email: computed.input.developers[*developer].email.clone(), existing: true }
        }
        Proposal::NewDeveloper { email, .. } => SuggestedDeveloper {
            email: email.clone(),
            existing: computed.input.developers.iter().any(|d| d.email == *email),
        },
    }
}

fn party_record(party: &Party) -> PartyRecord {
    match party {
        Party::Contributor { integration_id, identity } => PartyRecord {
            kind: "contributor".into(),
            integration_id: integration_id.parse().ok(),
            identity: Some(identity.clone()),
            email: None,
        },
        Party::Developer { email } => {
            PartyRecord { kind: "developer".into(), integration_id: None, identity: None, email: Some(email.clone()) }
        }
    }
}

fn record(computed: &Computed, suggestion: &Suggestion) -> SuggestionRecord {
    SuggestionRecord {
        id: suggestion.id.clone(),
        kind: match suggestion.proposal {
            Proposal::Link { .. } => SuggestionKind::Link,
            Proposal::NewDeveloper { .. } => SuggestionKind::NewDeveloper,
        },
        tier: suggestion.tier.as_str().into(),
        confidence: suggestion.confidence,
        developer: developer_of(computed, suggestion),
        contributors: suggestion
            .proposal
            .contributors()
            .iter()
            .map(|&c| {
                let c = &computed.input.contributors[c];
                SuggestedContributor {
                    integration_id: c.integration_id,
                    identity: c.identity.clone(),
                    name: c.name.clone(),
                    email: c.email.clone(),
                    activity: c.activity,
                }
            })
            .collect(),
        evidence: suggestion
            .evidence
            .iter()
            .map(|e| EvidenceRecord {
                rule: e.rule.as_str().into(),
                value: e.value.clone(),
                between: vec![party_record(&e.between.0), party_record(&e.between.1)],
            })
            .collect(),
    }
}

const LIST_PARAMS: [&str; 5] = ["tier", "integrationId", "developer", "pageIndex", "pageSize"];

/// List suggestions: links of unmapped contributors to developers, and groups of
/// unmapped contributors that are one new developer; strongest first.
#[utoipa::path(
    get,
    path = "/v2/suggestions",
    tag = "matching",
    params(
        ("tier" = Option<String>, Query, description = "auto | review; default both"),
        ("integrationId" = Option<i64>, Query, description = "Only suggestions with a contributor of this integration"),
        ("developer" = Option<String>, Query, description = "Only suggestions for the developer with this email"),
        ("pageIndex" = Option<u64>, Query, description = "Page number from 0 (at most 1000000)"),
        ("pageSize" = Option<u64>, Query, description = "1 to 1000; default 100"),
    ),
    responses(
        (status = 200, body = SuggestionList),
        (status = 400, description = "An unknown or invalid query parameter", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list_suggestions(
    State(state): State<AppState>,
    auth: Authenticated,
    RawQuery(query): RawQuery,
) -> Result<Json<SuggestionList>, ApiError> {
    auth.require(Scope::DeveloperRecordsRead)?;
    let params = QueryParams::parse(query.as_deref(), &LIST_PARAMS)?;
    let tier = match params.get("tier") {
        None => None,
        Some(raw) => Some(parse_tier(raw)?),
    };
    let integration = match params.get("integrationId") {
        None => None,
        Some(raw) => match devid_core::plan::parse_integration_id(raw) {
            Some(id) => Some(id),
            None => {
                return Err(ApiError::invalid_parameter(
                    "integrationId",
                    raw,
                    format!("`integrationId` must be an integration's number, not `{raw}`."),
                ));
            }
        },
    };
    let developer = params.get("developer").map(|d| d.trim().to_lowercase());
    if let Some(d) = &developer
        && d.chars().count() > MAX_DEVELOPER_FILTER_CHARS
    {
        return Err(ApiError::invalid_parameter(
            "developer",
            d,
            format!("`developer` is an email, at most {MAX_DEVELOPER_FILTER_CHARS} characters."),
        ));
    }
    let page = params.u64_in("pageIndex", 0, MAX_PAGE_INDEX, 0)?;
    let page_size = params.u64_in("pageSize", 1, MAX_PAGE_SIZE, 100)?;

    let computed = current(&state, auth.principal.account).await?;
    let matches = |s: &&Suggestion| {
        tier.is_none_or(|t| s.tier == t)
            && integration.is_none_or(|i| {
                s.proposal.contributors().iter().any(|&c| computed.input.contributors[c].integration_id == i)
            })
            && developer.as_ref().is_none_or(|d| developer_of(&computed, s).email.to_lowercase() == *d)
    };
    let selected: Vec<&Suggestion> = computed.suggestions.iter().filter(matches).collect();
    let start = (page * page_size) as usize;
    let records: Vec<SuggestionRecord> =
        selected.iter().skip(start).take(page_size as usize).map(|s| record(&computed, s)).collect();
    let auto_count = computed.suggestions.iter().filter(|s| s.tier == Tier::Auto).count() as u64;
    Ok(Json(SuggestionList {
        count: records.len(),
        records,
        metadata: SuggestionMetadata {
            page,
            page_size,
            has_next: start + (page_size as usize) < selected.len(),
            total_count: selected.len() as u64,
            auto_count,
            review_count: computed.suggestions.len() as u64 - auto_count,
        },
    }))
}

fn parse_tier(raw: &str) -> Result<Tier, ApiError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(Tier::Auto),
        "review" => Ok(Tier::Review),
        _ => Err(ApiError::invalid_parameter("tier", raw, format!("`tier` must be auto or review, not `{raw}`."))),
    }
}

/// Finds a current suggestion, or says why there is none: decided already (409), stale
/// since it was listed (409, with what changed), or never made (404).
async fn find<'c>(
    state: &AppState,
    account: AccountId,
    computed: &'c Computed,
    id: &str,
) -> Result<&'c Suggestion, ApiError> {
    if let Some(&i) = computed.by_id.get(id) {
        return Ok(&computed.suggestions[i]);
    }
    if let Some(kind) = computed.decided.get(id) {
        let done = match kind {
            DecisionKind::Accept => "accepted",
            DecisionKind::Reject => "rejected",
            DecisionKind::Skip => "skipped",
        };
        return Err(ApiError::conflict(format!(
            "Suggestion {id} was already {done}; a decision is taken once. Nothing was changed."
        )));
    }
    if let Some(then) = state.suggestions.retired_at(account.0, id) {
        return Err(ApiError::conflict(format!(
            "Suggestion {id} is stale: since it was listed, {}. Nothing was changed; list the suggestions again (GET /v2/suggestions) and decide on the current ones.",
            then.changes_since(computed.versions)
        )));
    }
    Err(ApiError::not_found(format!(
        "There is no suggestion {id} in this account. Suggestion ids come from GET /v2/suggestions."
    )))
}

fn accept_decision(suggestion: &Suggestion) -> NewDecision {
    NewDecision {
        suggestion_id: suggestion.id.clone(),
        kind: DecisionKind::Accept,
        cannot_link: Vec::new(),
        evidence: evidence_lines(suggestion),
    }
}

fn evidence_lines(suggestion: &Suggestion) -> Vec<String> {
    suggestion.evidence.iter().map(|e| format!("{}: {}", e.rule.as_str(), e.value)).collect()
}

/// Accepts suggestions: their contributors are mapped to their developers and the
/// decisions recorded, in one transaction and one change set.
async fn accept(state: &AppState, auth: &Authenticated, ids: &[String]) -> Result<AcceptResponse, ApiError> {
    let account = auth.principal.account;
    let computed = current(state, account).await?;
    let mut chosen: Vec<&Suggestion> = Vec::with_capacity(ids.len());
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id.as_str()) {
            return Err(ApiError::invalid_parameter(
                "ids",
                id,
                format!("Suggestion {id} is listed twice in the batch; list each id once. Nothing was changed."),
            ));
        }
        chosen.push(find(state, account, &computed, id).await?);
    }
    let integrations = state.store.integration_infos(account).await?;
    let mut planner = Planner::new(&integrations);
    let mut row = 0u64;
    for suggestion in &chosen {
        let email = developer_of(&computed, suggestion).email;
        for &c in suggestion.proposal.contributors() {
            let contributor = &computed.input.contributors[c];
            planner.push(
                Addressing::IntegrationId,
                RawRow {
                    position: Position::Index(row),
                    email: RawValue::Text(email.clone()),
                    integration: RawValue::Number(contributor.integration_id.to_string()),
                    identity: RawValue::Text(contributor.identity.clone()),
                },
            );
            row += 1;
        }
    }
    let mut plan = planner.finish(Problems::new()).map_err(ApiError::upload)?;
    // A person (or a rule they chose to trust) decided: later uploads must not undo it.
    plan.provenance = Provenance::Suggestion;
    plan.lock = true;
    let ctx = auth.change_context();
    let decisions = chosen.iter().map(|s| accept_decision(s)).collect();
    let summary = state.store.accept_suggestions(&ctx, plan, decisions).await?;
    super::coverage::changed(state, account);
    let accepted: Vec<String> = chosen.iter().map(|s| s.id.clone()).collect();
    Ok(AcceptResponse {
        status: "success".into(),
        message: format!(
            "Accepted {} suggestion(s): {} identities created, {} moved, {} developers created.",
            accepted.len(),
            summary.created,
            summary.reassigned,
            summary.developers_created
        ),
        accepted,
        summary,
    })
}

/// Accept one suggestion: its contributors are mapped to its developer.
#[utoipa::path(
    post,
    path = "/v2/suggestions/{id}/accept",
    tag = "matching",
    params(("id" = String, Path, description = "A suggestion id from GET /v2/suggestions")),
    responses(
        (status = 200, body = AcceptResponse),
        (status = 404, description = "No such suggestion", body = ErrorBody),
        (status = 409, description = "Decided already, or stale: the account changed since it was listed", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn accept_one(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<AcceptResponse>, ApiError> {
    auth.require(Scope::DeveloperRecordsWrite)?;
    Ok(Json(accept(&state, &auth, &[id]).await?))
}

/// Accept a batch: the ids given, or every suggestion at tier `auto`. One bad id and
/// nothing is applied.
#[utoipa::path(
    post,
    path = "/v2/suggestions/accept",
    tag = "matching",
    request_body = AcceptBatch,
    responses(
        (status = 200, body = AcceptResponse),
        (status = 400, description = "Neither or both of ids and tier, or a repeated id", body = ErrorBody),
        (status = 404, description = "An id names no suggestion", body = ErrorBody),
        (status = 409, description = "An id was decided already, or is stale", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn accept_batch(
    State(state): State<AppState>,
    auth: Authenticated,
    request: Request,
) -> Result<Json<AcceptResponse>, ApiError> {
    auth.require(Scope::DeveloperRecordsWrite)?;
    let body: serde_json::Map<String, serde_json::Value> = json_body_within(request, MAX_BATCH_BODY).await?;
    let batch = read_batch(body)?;
    let ids = match (batch.ids, batch.tier) {
        (Some(ids), None) => {
            if ids.is_empty() {
                return Err(ApiError::invalid_parameter("ids", "", "`ids` is empty; list at least one suggestion id."));
            }
            if ids.len() > MAX_BATCH {
                return Err(ApiError::invalid_parameter(
                    "ids",
                    &ids.len().to_string(),
                    format!("A batch accepts at most {MAX_BATCH} suggestions; split it."),
                ));
            }
            ids
        }
        (None, Some(tier)) => {
            if parse_tier(&tier)? != Tier::Auto {
                return Err(ApiError::invalid_parameter(
                    "tier",
                    &tier,
                    "Only `auto` suggestions can be accepted by tier; review suggestions are accepted by id after a person has read them.",
                ));
            }
            let computed = current(&state, auth.principal.account).await?;
            let ids: Vec<String> =
                computed.suggestions.iter().filter(|s| s.tier == Tier::Auto).map(|s| s.id.clone()).collect();
            if ids.is_empty() {
                return Ok(Json(AcceptResponse {
                    status: "success".into(),
                    message: "There are no suggestions at tier auto; nothing was changed.".into(),
                    accepted: Vec::new(),
                    summary: Default::default(),
                }));
            }
            ids
        }
        _ => {
            return Err(ApiError::bad_request(
                "Send either `ids` (a list of suggestion ids) or `tier: \"auto\"`, not both and not neither.",
            ));
        }
    };
    Ok(Json(accept(&state, &auth, &ids).await?))
}

/// A value as shown in an error: its first 100 characters.
fn sample(value: &serde_json::Value) -> String {
    value.to_string().chars().take(100).collect()
}

/// The batch body, read strictly: `null` is not a way to leave a field out, and an
/// unknown field is a mistake to report rather than ignore.
fn read_batch(body: serde_json::Map<String, serde_json::Value>) -> Result<AcceptBatch, ApiError> {
    let mut batch = AcceptBatch { ids: None, tier: None };
    for (field, value) in body {
        match field.as_str() {
            "ids" => {
                let ids = value
                    .as_array()
                    .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_string)).collect::<Option<Vec<String>>>());
                let Some(ids) = ids else {
                    return Err(ApiError::invalid_parameter(
                        "ids",
                        &sample(&value),
                        "`ids` must be a list of suggestion ids (strings).",
                    ));
                };
                batch.ids = Some(ids);
            }
            "tier" => {
                let Some(tier) = value.as_str() else {
                    return Err(ApiError::invalid_parameter("tier", &sample(&value), "`tier` must be \"auto\"."));
                };
                batch.tier = Some(tier.to_string());
            }
            other => {
                return Err(ApiError::invalid_parameter(
                    other,
                    &sample(&value),
                    format!("Unknown field `{other}`; the body takes `ids` or `tier`."),
                ));
            }
        }
    }
    Ok(batch)
}

/// The pairings a rejection forbids: each contributor with the developer for a link;
/// the links that held the group together for a new developer.
fn rejected_pairings(computed: &Computed, suggestion: &Suggestion) -> Vec<(Party, Party)> {
    match &suggestion.proposal {
        Proposal::Link { contributors, developer } => {
            let developer = Party::Developer { email: computed.input.developers[*developer].email.clone() };
            contributors
                .iter()
                .map(|&c| {
                    let c = &computed.input.contributors[c];
                    (
                        Party::Contributor {
                            integration_id: c.integration_id.to_string(),
                            identity: c.identity_key.clone(),
                        },
                        developer.clone(),
                    )
                })
                .collect()
        }
        Proposal::NewDeveloper { .. } => suggestion.evidence.iter().map(|e| e.between.clone()).collect(),
    }
}

async fn decide(
    state: &AppState,
    auth: &Authenticated,
    id: &str,
    kind: DecisionKind,
) -> Result<DecisionResponse, ApiError> {
    let account = auth.principal.account;
    let computed = current(state, account).await?;
    let suggestion = find(state, account, &computed, id).await?;
    let cannot_link = if kind == DecisionKind::Reject { rejected_pairings(&computed, suggestion) } else { Vec::new() };
    let cannot_links = cannot_link.len();
    let decision =
        NewDecision { suggestion_id: id.to_string(), kind, cannot_link, evidence: evidence_lines(suggestion) };
    state.store.record_decisions(&auth.change_context(), vec![decision]).await?;
    let message = match kind {
        DecisionKind::Reject => format!(
            "Rejected: {cannots} pairing(s) will never be suggested again, whatever the rules say.",
            cannots = cannot_links
        ),
        _ => "Skipped: hidden until new evidence changes the suggestion.".to_string(),
    };
    Ok(DecisionResponse {
        status: "success".into(),
        message,
        id: id.to_string(),
        decision: kind.as_str().into(),
        cannot_links,
    })
}

/// Reject a suggestion: its pairings become cannot-links that no rule overrides.
#[utoipa::path(
    post,
    path = "/v2/suggestions/{id}/reject",
    tag = "matching",
    params(("id" = String, Path, description = "A suggestion id from GET /v2/suggestions")),
    responses(
        (status = 200, body = DecisionResponse),
        (status = 404, description = "No such suggestion", body = ErrorBody),
        (status = 409, description = "Decided already, or stale", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn reject_one(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<DecisionResponse>, ApiError> {
    auth.require(Scope::DeveloperRecordsWrite)?;
    Ok(Json(decide(&state, &auth, &id, DecisionKind::Reject).await?))
}

/// Skip a suggestion: hidden until its evidence changes (which gives it a new id).
#[utoipa::path(
    post,
    path = "/v2/suggestions/{id}/skip",
    tag = "matching",
    params(("id" = String, Path, description = "A suggestion id from GET /v2/suggestions")),
    responses(
        (status = 200, body = DecisionResponse),
        (status = 404, description = "No such suggestion", body = ErrorBody),
        (status = 409, description = "Decided already, or stale", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn skip_one(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<DecisionResponse>, ApiError> {
    auth.require(Scope::DeveloperRecordsWrite)?;
    Ok(Json(decide(&state, &auth, &id, DecisionKind::Skip).await?))
}

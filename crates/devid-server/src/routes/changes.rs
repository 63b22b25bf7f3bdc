//! The change feed: every write that changed something, oldest first, so that whatever
//! depends on the mappings can ask "what changed since the last change I saw?"
//! (`GET /v2/changes?after=<id>`) and recompute only that; and one change set with its
//! events (`GET /v2/changes/{id}`).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use devid_core::change::ChangeKind;
use devid_core::types::Scope;
use devid_store::AuditEvent;
use devid_store::changes::{ChangeQuery, ChangeSet};
use devid_store::revert::{RevertConflict, RevertOptions, RevertOutcome, RevertSummary};
use serde::Serialize;

use super::QueryParams;
use crate::AppState;
use crate::auth::Authenticated;
use crate::error::{ApiError, ErrorBody};

/// Most change sets, or events, one page holds.
pub(crate) const MAX_CHANGES_LIMIT: u64 = 1000;
const DEFAULT_CHANGES_LIMIT: u64 = 100;
/// Largest change set or event id (2^53 − 1: exact in every JSON number).
pub(crate) const MAX_CHANGE_ID: i64 = devid_core::types::MAX_INTEGRATION_ID;

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangesResponse {
    /// Oldest first.
    pub changes: Vec<ChangeSet>,
    pub has_next: bool,
    /// What to send as `after` next: the last change set's id here, or the `after` sent
    /// when there was none. Keep it: the feed continues from it.
    pub next_after: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangeResponse {
    pub change: ChangeSet,
    /// Its events in the order written, after the `after` sent.
    pub events: Vec<AuditEvent>,
    pub has_next: bool,
    /// What to send as `after` for the next page of events.
    pub next_after: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevertResponse {
    /// The change set undone.
    pub reverted: i64,
    pub dry_run: bool,
    /// The revert's own change set (revertible in turn); absent in a dry run or when
    /// nothing was left to revert.
    pub change: Option<ChangeSet>,
    pub summary: RevertSummary,
    /// With `force`: identities left alone because later changes touched them (the
    /// first 100).
    pub skipped: Vec<RevertConflict>,
}

/// A revert refused because later changes touched the same identities.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevertConflictBody {
    /// Always `error`.
    pub status: &'static str,
    pub message: String,
    /// How many identities later changes touched (0 when the change set is of a kind
    /// that has no inverse: the message says so).
    pub total: u64,
    /// The first 100 of them, with the later change sets that touched each.
    pub conflicts: Vec<RevertConflict>,
}

fn cursor(params: &QueryParams) -> Result<i64, ApiError> {
    match params.get("after") {
        None => Ok(0),
        Some(raw) => raw.parse::<i64>().ok().filter(|n| (0..=MAX_CHANGE_ID).contains(n)).ok_or_else(|| {
            ApiError::invalid_parameter(
                "after",
                raw,
                format!(
                    "`after` is the id of the last change set (or event) already read, a whole number from 0 to {MAX_CHANGE_ID}, not `{}`; leave it out to start from the beginning.",
                    raw.chars().take(40).collect::<String>()
                ),
            )
        }),
    }
}

/// The account's change sets, oldest first: what a downstream tool reads to learn what
/// changed since the last change set it saw.
#[utoipa::path(get, path = "/v2/changes", tag = "changes",
    params(
        ("after" = Option<i64>, Query, description = "Only change sets after this id (the `nextAfter` of the previous page); 0 or absent from the beginning"),
        ("limit" = Option<u64>, Query, description = "1 to 1000 (default 100)"),
        ("kind" = Option<String>, Query, description = "upload, delete, integration, key, contributors, bot-flag, suggestion, lock or revert"),
        ("from" = Option<String>, Query, description = "RFC 3339, inclusive"), ("to" = Option<String>, Query, description = "RFC 3339, exclusive"),
        ("keyId" = Option<String>, Query, description = "Made with this API key"),
        ("identity" = Option<String>, Query, description = "With an event about this identity, as written"),
        ("email" = Option<String>, Query, description = "With an event whose old or new email is this one"),
    ),
    responses((status = 200, body = ChangesResponse), (status = 400, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_changes(
    State(state): State<AppState>,
    auth: Authenticated,
    RawQuery(query): RawQuery,
) -> Result<Json<ChangesResponse>, ApiError> {
    auth.require(Scope::DeveloperRecordsRead)?;
    let params =
        QueryParams::parse(query.as_deref(), &["after", "limit", "kind", "from", "to", "keyId", "identity", "email"])?;
    let kind = params
        .get("kind")
        .map(|raw| {
            ChangeKind::parse(raw).ok_or_else(|| {
                let known: Vec<&str> = ChangeKind::ALL.iter().map(|k| k.as_str()).collect();
                ApiError::invalid_parameter(
                    "kind",
                    raw,
                    format!(
                        "`kind` is one of {}, not `{}`.",
                        known.join(", "),
                        raw.chars().take(40).collect::<String>()
                    ),
                )
            })
        })
        .transpose()?;
    let after = cursor(&params)?;
    let q = ChangeQuery {
        after,
        limit: params.u64_in("limit", 1, MAX_CHANGES_LIMIT, DEFAULT_CHANGES_LIMIT)?,
        kind,
        from: params.time("from")?,
        to: params.time("to")?,
        key_id: params.get("keyId").map(|s| s.trim().to_string()),
        identity: params.get("identity").map(|s| s.trim().to_string()),
        email: params.get("email").map(|s| s.trim().to_lowercase()),
    };
    let page = state.store.list_changes(auth.principal.account, q).await?;
    let next_after = page.changes.last().map_or(after, |c| c.id);
    Ok(Json(ChangesResponse { changes: page.changes, has_next: page.has_next, next_after }))
}

/// One change set, with its events in the order written, paged.
#[utoipa::path(get, path = "/v2/changes/{id}", tag = "changes",
    params(
        ("id" = i64, Path),
        ("after" = Option<i64>, Query, description = "Only events after this event id (the `nextAfter` of the previous page)"),
        ("limit" = Option<u64>, Query, description = "Events per page, 1 to 1000 (default 100)"),
    ),
    responses((status = 200, body = ChangeResponse), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_change(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<ChangeResponse>, ApiError> {
    auth.require(Scope::DeveloperRecordsRead)?;
    let params = QueryParams::parse(query.as_deref(), &["after", "limit"])?;
    let not_found = || {
        ApiError::not_found(format!(
            "There is no change set `{}` in this account; list them with GET /v2/changes.",
            id.chars().take(40).collect::<String>()
        ))
    };
    let change_id = id.parse::<i64>().ok().filter(|n| (1..=MAX_CHANGE_ID).contains(n)).ok_or_else(not_found)?;
    let after = cursor(&params)?;
    let limit = params.u64_in("limit", 1, MAX_CHANGES_LIMIT, DEFAULT_CHANGES_LIMIT)?;
    let account = auth.principal.account;
    let change = state.store.get_change(account, change_id).await?.ok_or_else(not_found)?;
    let page = state.store.change_events(account, change_id, after, limit).await?;
    let next_after = page.events.last().map_or(after, |e| e.id);
    Ok(Json(ChangeResponse { change, events: page.events, has_next: page.has_next, next_after }))
}

/// Undoes a change set exactly, in one transaction, recorded as a change set of kind
/// `revert` that can itself be reverted. Refused (409, nothing applied) when a later
/// change touched any of the same identities, unless `force=true`.
#[utoipa::path(post, path = "/v2/changes/{id}/revert", tag = "changes",
    params(
        ("id" = i64, Path),
        ("force" = Option<bool>, Query, description = "Revert the identities no later change touched, and report the others as skipped"),
        ("dryRun" = Option<bool>, Query, description = "Answer the same counts, change nothing"),
    ),
    responses(
        (status = 200, body = RevertResponse),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Later changes touched the same identities (listed with their change ids), or the change set is of a kind that has no inverse; nothing was applied", body = RevertConflictBody),
    ),
    security(("api_key" = [])))]
pub async fn revert_change(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    auth.require(Scope::Admin)?;
    let params = QueryParams::parse(query.as_deref(), &["force", "dryRun"])?;
    let options = RevertOptions { force: params.flag("force")?, dry_run: params.flag("dryRun")? };
    let not_found = || {
        ApiError::not_found(format!(
            "There is no change set `{}` in this account; list them with GET /v2/changes.",
            id.chars().take(40).collect::<String>()
        ))
    };
    let change_id = id.parse::<i64>().ok().filter(|n| (1..=MAX_CHANGE_ID).contains(n)).ok_or_else(not_found)?;
    match state.store.revert_change(&auth.change_context(), change_id, options).await? {
        RevertOutcome::NotFound => Err(not_found()),
        RevertOutcome::NotRevertible(why) => {
            // The same body as a conflict, with nothing listed: one 409 shape to read.
            let body = RevertConflictBody { status: "error", message: why, total: 0, conflicts: Vec::new() };
            Ok((StatusCode::CONFLICT, Json(body)).into_response())
        }
        RevertOutcome::Conflicts { total, rows } => {
            let message = format!(
                "Later changes touched {total} of the identities change set {change_id} changed, so nothing was reverted: reverting would undo them too. Revert those later change sets first (newest first), or send force=true to revert the rest and skip these."
            );
            let body = RevertConflictBody { status: "error", message, total, conflicts: rows };
            Ok((StatusCode::CONFLICT, Json(body)).into_response())
        }
        RevertOutcome::Reverted { change, summary, skipped } => {
            Ok(Json(RevertResponse { reverted: change_id, dry_run: options.dry_run, change, summary, skipped })
                .into_response())
        }
    }
}

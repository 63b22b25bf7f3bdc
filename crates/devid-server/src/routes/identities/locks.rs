//! Locks: identities an upload may not move to another developer unless an admin forces
//! it. Accepted suggestions are locked as they are written; these endpoints lock and
//! unlock any others.

use axum::Json;
use axum::extract::{Request, State};
use devid_core::json_upload::JsonBody;
use devid_core::plan::plan_delete;
use devid_core::types::Scope;
use devid_store::locks::LockSummary;
use serde::Serialize;

use super::DeleteRowBody;
use crate::AppState;
use crate::auth::Authenticated;
use crate::body::read_json;
use crate::error::{ApiError, ErrorBody};
use crate::routes::QueryParams;

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LockResponse {
    pub status: &'static str,
    pub message: String,
    pub summary: LockSummary,
}

/// Lock identities: `[{integrationId, identity}]`. Uploads that would move a locked
/// identity to another developer are refused (LOCKED_IDENTITY) unless forced by an admin.
#[utoipa::path(
    post,
    path = "/v2/developers/identities/lock",
    tag = "identities",
    request_body(content = Vec<DeleteRowBody>, content_type = "application/json"),
    responses((status = 200, body = LockResponse), (status = 400, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn lock_identities(
    State(state): State<AppState>,
    auth: Authenticated,
    request: Request,
) -> Result<Json<LockResponse>, ApiError> {
    auth.require(Scope::DeveloperRecordsWrite)?;
    set_locked(state, auth, request, true).await
}

/// Unlock identities (admin scope: unlocking is how a locked mapping becomes movable).
#[utoipa::path(
    post,
    path = "/v2/developers/identities/unlock",
    tag = "identities",
    request_body(content = Vec<DeleteRowBody>, content_type = "application/json"),
    responses((status = 200, body = LockResponse), (status = 400, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn unlock_identities(
    State(state): State<AppState>,
    auth: Authenticated,
    request: Request,
) -> Result<Json<LockResponse>, ApiError> {
    auth.require(Scope::Admin)?;
    set_locked(state, auth, request, false).await
}

async fn set_locked(
    state: AppState,
    auth: Authenticated,
    request: Request,
    locked: bool,
) -> Result<Json<LockResponse>, ApiError> {
    QueryParams::parse(request.uri().query(), &[])?;
    crate::body::require_json(
        request.headers(),
        "Locks take a JSON body `[{\"integrationId\":1,\"identity\":\"dev-123\"}]` with `Content-Type: application/json`.",
    )?;
    let _permit =
        state.uploads.enter(auth.principal.account.0, crate::body::declared_length(request.headers())).await?;
    let request = crate::body::bound_trickle(request, &state.limits);
    let parsed = read_json(request, &state, JsonBody::Delete).await?;
    let integrations = state.store.integration_infos(auth.principal.account).await?;
    let plan = plan_delete(parsed, &integrations).map_err(ApiError::upload)?;
    let summary = state.store.set_locked(&auth.change_context(), plan, locked).await?;
    let (done, state_word) = if locked { ("locked", "locked") } else { ("unlocked", "unlocked") };
    let message = format!(
        "{} identit{} {done}; {} already {state_word}; {} not found.",
        summary.changed,
        if summary.changed == 1 { "y" } else { "ies" },
        summary.unchanged,
        summary.not_found
    );
    Ok(Json(LockResponse { status: "success", message, summary }))
}

//! The developer identity endpoints: uploads (current and previous API) and deletes
//! here; the JSON listing in `list`, the streamed CSV download in `export`.

pub(crate) mod export;
pub(crate) mod list;
pub(crate) mod locks;

pub use list::{MAX_FILTER_VALUES, MAX_PAGE_INDEX, MAX_PAGE_SIZE, MAX_SEARCH_CHARS};

use axum::Json;
use axum::extract::{Request, State};
use devid_core::json_upload::JsonBody;
use devid_core::plan::{Addressing, Provenance, plan_delete};
use devid_core::types::{ApplicationType, Scope};
use devid_store::{DeleteSummary, UploadSummary};
use serde::{Deserialize, Serialize};

use super::QueryParams;
use crate::AppState;
use crate::auth::Authenticated;
use crate::body::{read_and_plan, read_json};
use crate::error::{ApiError, ErrorBody};

/// Uploads from this size on give the memory they used back to the system afterwards.
const RETURN_MEMORY_AFTER_ROWS: u64 = 100_000;

pub const JSON_SUCCESS: &str = "Developer identities updated successfully.";
pub const CSV_SUCCESS: &str = "CSV processed and developer identities updated successfully.";
const DRY_RUN_SUCCESS: &str =
    "Dry run: the upload is valid; the summary shows what it would change. Nothing was changed.";

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadResponse {
    /// Always `success`.
    pub status: &'static str,
    pub message: String,
    pub summary: UploadSummary,
    pub dry_run: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteResponse {
    pub status: &'static str,
    pub message: String,
    pub summary: DeleteSummary,
    pub dry_run: bool,
}

/// Add or update developer identities (JSON array or multipart CSV).
#[utoipa::path(
    patch,
    path = "/v2/developers/identities",
    tag = "identities",
    params(
        ("dryRun" = Option<bool>, Query, description = "Validate and report without changing anything"),
        ("force" = Option<bool>, Query, description = "Move locked identities too (admin scope); without it an upload that would move one is refused whole as LOCKED_IDENTITY"),
    ),
    request_body(description = "JSON `[{email, integrationId, identity}]`, or multipart/form-data with a CSV in the field `file` (header `email,integrationId,identity`)", content(
        (Vec<IdentityRow> = "application/json"),
        (String = "multipart/form-data"),
        (String = "text/csv"),
    )),
    responses(
        (status = 200, description = "Applied (or, with dryRun, validated)", body = UploadResponse),
        (status = 400, description = "Invalid upload: nothing applied; errors grouped by type", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, description = "Body or row count over the limit", body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn upload_identities(
    State(state): State<AppState>,
    auth: Authenticated,
    request: Request,
) -> Result<Json<UploadResponse>, ApiError> {
    upload(state, auth, request, JsonBody::Identities, Addressing::IntegrationId, false).await
}

/// A mapping a person set in the review UI: written like `PATCH /v2/developers/identities`
/// (JSON or CSV), recorded with provenance `ui`, and locked, since a person confirmed it.
pub(crate) async fn upload_from_ui(
    state: AppState,
    auth: Authenticated,
    request: Request,
) -> Result<Json<UploadResponse>, ApiError> {
    upload(state, auth, request, JsonBody::Identities, Addressing::IntegrationId, true).await
}

/// Previous API: add or update identities addressed by application type (JSON).
#[utoipa::path(
    post,
    path = "/v2/developers/cloud-ids",
    tag = "identities",
    params(
        ("dryRun" = Option<bool>, Query, description = "Validate and report without changing anything"),
        ("force" = Option<bool>, Query, description = "Move locked identities too (admin scope); without it an upload that would move one is refused whole as LOCKED_IDENTITY"),
    ),
    request_body(content = CloudIdsBody, content_type = "application/json"),
    responses(
        (status = 200, body = UploadResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn upload_cloud_ids(
    State(state): State<AppState>,
    auth: Authenticated,
    request: Request,
) -> Result<Json<UploadResponse>, ApiError> {
    upload(state, auth, request, JsonBody::CloudIds, Addressing::ApplicationType, false).await
}

/// Previous API: add or update identities from a multipart CSV (`email,applicationType,cloudId`).
#[utoipa::path(
    post,
    path = "/v2/developers/cloud-ids/upload",
    tag = "identities",
    params(
        ("dryRun" = Option<bool>, Query, description = "Validate and report without changing anything"),
        ("force" = Option<bool>, Query, description = "Move locked identities too (admin scope); without it an upload that would move one is refused whole as LOCKED_IDENTITY"),
    ),
    request_body(content = String, content_type = "multipart/form-data", description = "CSV in the field `file`"),
    responses(
        (status = 200, body = UploadResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn upload_cloud_ids_csv(
    State(state): State<AppState>,
    auth: Authenticated,
    request: Request,
) -> Result<Json<UploadResponse>, ApiError> {
    upload(state, auth, request, JsonBody::CloudIds, Addressing::ApplicationType, false).await
}

/// One row of a JSON upload (documentation only: bodies are read by devid-core).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct IdentityRow {
    email: String,
    integration_id: i64,
    identity: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct CloudIdRow {
    email: String,
    application_type: ApplicationType,
    cloud_id: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct CloudIdsBody {
    integration_users: Vec<CloudIdRow>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct DeleteRowBody {
    integration_id: i64,
    identity: String,
}

async fn upload(
    state: AppState,
    auth: Authenticated,
    request: Request,
    json_kind: JsonBody,
    csv_native: Addressing,
    ui_edit: bool,
) -> Result<Json<UploadResponse>, ApiError> {
    auth.require(Scope::DeveloperRecordsWrite)?;
    let params = QueryParams::parse(request.uri().query(), &["dryRun", "force"])?;
    let dry_run = params.flag("dryRun")?;
    let force = params.flag("force")?;
    if force && auth.require(Scope::Admin).is_err() {
        return Err(ApiError::forbidden(
            "force=true moves locked identities, which needs an admin key; send the upload without force, or ask an admin.",
        ));
    }
    let _permit =
        state.uploads.enter(auth.principal.account.0, crate::body::declared_length(request.headers())).await?;
    let request = crate::body::bound_trickle(request, &state.limits);
    let started = std::time::Instant::now();
    let integrations = state.store.integration_infos(auth.principal.account).await?;
    let previous_api = matches!(json_kind, JsonBody::CloudIds);
    let (mut plan, from_csv) = read_and_plan(request, &state, json_kind, csv_native, integrations).await?;
    plan.provenance = match (ui_edit, previous_api, from_csv) {
        (true, _, _) => Provenance::Ui,
        (false, true, _) => Provenance::PreviousApi,
        (false, false, true) => Provenance::Csv,
        (false, false, false) => Provenance::Upload,
    };
    plan.lock |= ui_edit;
    plan.force = force;
    let planned_at = started.elapsed();
    let summary = state.store.apply_upload(&auth.change_context(), plan, dry_run).await?;
    if summary.received >= RETURN_MEMORY_AFTER_ROWS {
        // Off the request path: trimming a large heap takes a moment.
        tokio::task::spawn_blocking(devid_store::memory::return_free_memory);
    }
    // Where an upload's time goes, for operators and for the benchmark notes.
    tracing::info!(
        received = summary.received,
        created = summary.created,
        reassigned = summary.reassigned,
        unchanged = summary.unchanged,
        dry_run,
        read_and_validate_ms = planned_at.as_millis() as u64,
        apply_ms = (started.elapsed() - planned_at).as_millis() as u64,
        "upload applied"
    );
    let message = match (dry_run, from_csv) {
        (true, _) => DRY_RUN_SUCCESS,
        (false, true) => CSV_SUCCESS,
        (false, false) => JSON_SUCCESS,
    };
    if !dry_run {
        crate::routes::coverage::changed(&state, auth.principal.account);
    }
    Ok(Json(UploadResponse { status: "success", message: message.into(), summary, dry_run }))
}

/// Delete identities: `[{integrationId, identity}]`, atomically.
#[utoipa::path(
    delete,
    path = "/v2/developers/identities",
    tag = "identities",
    params(("dryRun" = Option<bool>, Query, description = "Report without deleting")),
    request_body(content = Vec<DeleteRowBody>, content_type = "application/json"),
    responses(
        (status = 200, body = DeleteResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn delete_identities(
    State(state): State<AppState>,
    auth: Authenticated,
    request: Request,
) -> Result<Json<DeleteResponse>, ApiError> {
    auth.require(Scope::DeveloperRecordsWrite)?;
    let params = QueryParams::parse(request.uri().query(), &["dryRun"])?;
    let dry_run = params.flag("dryRun")?;
    crate::body::require_json(
        request.headers(),
        "Deletes take a JSON body `[{\"integrationId\":1,\"identity\":\"dev-123\"}]` with `Content-Type: application/json`.",
    )?;
    let _permit =
        state.uploads.enter(auth.principal.account.0, crate::body::declared_length(request.headers())).await?;
    let request = crate::body::bound_trickle(request, &state.limits);
    let parsed = read_json(request, &state, JsonBody::Delete).await?;
    let integrations = state.store.integration_infos(auth.principal.account).await?;
    let plan = plan_delete(parsed, &integrations).map_err(ApiError::upload)?;
    let summary = state.store.delete_identities(&auth.change_context(), plan, dry_run).await?;
    let message = if dry_run {
        "Dry run: the summary shows what would be deleted. Nothing was changed."
    } else {
        "Developer identities deleted successfully."
    };
    if !dry_run {
        crate::routes::coverage::changed(&state, auth.principal.account);
    }
    Ok(Json(DeleteResponse { status: "success", message: message.into(), summary, dry_run }))
}

//! Admin endpoints: integrations, API keys and the audit trail. All need the `admin` scope.

use axum::Json;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use devid_core::types::{ApplicationType, IntegrationId, MAX_INTEGRATION_ID, Scope};
use devid_store::{
    ApiKeyInfo, AuditEvent, AuditQuery, DeleteIntegrationOutcome, Integration, IntegrationPatch, NewIntegration, NewKey,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::QueryParams;
use crate::AppState;
use crate::auth::Authenticated;
use crate::body::{read_limited, require_json};
use crate::error::{ApiError, ErrorBody};

/// Admin bodies are a few fields; anything larger is a mistake.
const MAX_ADMIN_BODY: usize = 64 * 1024;

/// Reads a small JSON body into `T`, refusing unknown fields with a sentence that
/// names the field.
async fn json_body<T: DeserializeOwned>(request: Request) -> Result<T, ApiError> {
    json_body_within(request, MAX_ADMIN_BODY).await
}

/// A JSON object body of at most `limit` bytes, read into `T` with errors a person can act on.
pub(crate) async fn json_body_within<T: DeserializeOwned>(request: Request, limit: usize) -> Result<T, ApiError> {
    require_json(request.headers(), "This endpoint takes a JSON object with `Content-Type: application/json`.")?;
    let (parts, body) = request.into_parts();
    let bytes = read_limited(body, &parts.headers, limit, "JSON body").await?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("The JSON body is not valid JSON: {e}.")))?;
    // serde reads a struct from an array by position too; a client sending `[778, "CUSTOM"]`
    // has made a mistake that must not create anything.
    if !value.is_object() {
        return Err(ApiError::bad_request(format!(
            "The JSON body must be an object such as {{\"name\": \"…\"}}, not {}.",
            json_kind(&value)
        )));
    }
    serde_json::from_value(value).map_err(|e| ApiError::bad_request(format!("The JSON body is not valid: {e}.")))
}

/// A whole number written either way JSON allows (`5` or `5.0`, as JSON Schema's
/// `integer` does); `null` or absent is `None`.
fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    let Some(value) = Option::<serde_json::Number>::deserialize(deserializer)? else { return Ok(None) };
    if let Some(n) = value.as_i64() {
        return Ok(Some(n));
    }
    match value.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => Ok(Some(f as i64)),
        _ => Err(serde::de::Error::custom(format!("expected a whole number, got {value}"))),
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Longest lifetime a key may be given over the API: 100 years.
pub const MAX_KEY_DAYS: u32 = 36_500;

/// The path's integration id. Anything that is not one names no integration: 404, as
/// for an id that does not exist.
fn parse_id(raw: &str) -> Result<IntegrationId, ApiError> {
    devid_core::plan::parse_integration_id(raw).ok_or_else(|| {
        ApiError::not_found(format!(
            "There is no integration `{}`: integration ids are whole numbers from 1 to {MAX_INTEGRATION_ID}; list them with GET /v2/integrations.",
            raw.chars().take(40).collect::<String>()
        ))
    })
}

/// An integration id given as `field` (the path's `id`, or the audit's `integrationId`).
fn parse_id_named(field: &str, raw: &str) -> Result<IntegrationId, ApiError> {
    devid_core::plan::parse_integration_id(raw).ok_or_else(|| {
        ApiError::invalid_parameter(field, raw, format!("An integration id is a positive whole number, not `{raw}`."))
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IntegrationList {
    pub integrations: Vec<Integration>,
}

/// List the account's integrations.
#[utoipa::path(get, path = "/v2/integrations", tag = "admin",
    responses((status = 200, body = IntegrationList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_integrations(
    State(state): State<AppState>,
    auth: Authenticated,
    RawQuery(query): RawQuery,
) -> Result<Json<IntegrationList>, ApiError> {
    auth.require(Scope::Admin)?;
    QueryParams::parse(query.as_deref(), &[])?;
    Ok(Json(IntegrationList { integrations: state.store.list_integrations(auth.principal.account).await? }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateIntegration {
    /// Leave out to get the next free id.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(value_type = Option<i64>)]
    pub id: Option<IntegrationId>,
    pub application_type: ApplicationType,
    pub name: String,
}

fn check_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    if name.is_empty() || raw.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid_parameter(
            "name",
            name,
            "An integration name must be 1 to 200 characters without control characters.",
        ));
    }
    Ok(name.to_string())
}

/// Create an integration.
#[utoipa::path(post, path = "/v2/integrations", tag = "admin", request_body = CreateIntegration,
    responses((status = 201, body = Integration), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_integration(
    State(state): State<AppState>,
    auth: Authenticated,
    request: Request,
) -> Result<(StatusCode, Json<Integration>), ApiError> {
    auth.require(Scope::Admin)?;
    let body: CreateIntegration = json_body(request).await?;
    if let Some(id) = body.id
        && !(1..=MAX_INTEGRATION_ID).contains(&id)
    {
        return Err(ApiError::invalid_parameter(
            "id",
            &id.to_string(),
            format!(
                "An integration id is a whole number from 1 to {MAX_INTEGRATION_ID}; leave it out to have one assigned."
            ),
        ));
    }
    let new = NewIntegration { id: body.id, application_type: body.application_type, name: check_name(&body.name)? };
    let created = state.store.create_integration(&auth.change_context(), new).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// One integration.
#[utoipa::path(get, path = "/v2/integrations/{id}", tag = "admin",
    params(("id" = i64, Path)),
    responses((status = 200, body = Integration), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_integration(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Integration>, ApiError> {
    auth.require(Scope::Admin)?;
    let id = parse_id(&id)?;
    state.store.get_integration(auth.principal.account, id).await?.map(Json).ok_or_else(|| no_integration(id))
}

fn no_integration(id: IntegrationId) -> ApiError {
    ApiError::not_found(format!("There is no integration {id} in this account; list them with GET /v2/integrations."))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateIntegration {
    pub name: Option<String>,
    pub application_type: Option<ApplicationType>,
}

/// Rename an integration or change its type.
#[utoipa::path(patch, path = "/v2/integrations/{id}", tag = "admin", params(("id" = i64, Path)),
    request_body = UpdateIntegration,
    responses((status = 200, body = Integration), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update_integration(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    request: Request,
) -> Result<Json<Integration>, ApiError> {
    auth.require(Scope::Admin)?;
    let id = parse_id(&id)?;
    let body: UpdateIntegration = json_body(request).await?;
    let patch = IntegrationPatch {
        name: body.name.as_deref().map(check_name).transpose()?,
        application_type: body.application_type,
    };
    state.store.update_integration(&auth.change_context(), id, patch).await?.map(Json).ok_or_else(|| no_integration(id))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletedIntegration {
    pub status: &'static str,
    pub message: String,
    pub identities_deleted: u64,
}

/// Delete an integration; with identities only when `force=true`.
#[utoipa::path(delete, path = "/v2/integrations/{id}", tag = "admin",
    params(("id" = i64, Path), ("force" = Option<bool>, Query, description = "Also delete its identities")),
    responses((status = 200, body = DeletedIntegration), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete_integration(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<DeletedIntegration>, ApiError> {
    auth.require(Scope::Admin)?;
    let id = parse_id(&id)?;
    let force = QueryParams::parse(query.as_deref(), &["force"])?.flag("force")?;
    match state.store.delete_integration(&auth.change_context(), id, force).await? {
        DeleteIntegrationOutcome::Deleted { identities_deleted } => Ok(Json(DeletedIntegration {
            status: "success",
            message: format!("Integration {id} deleted with its {identities_deleted} identities."),
            identities_deleted,
        })),
        DeleteIntegrationOutcome::NotFound => Err(no_integration(id)),
        DeleteIntegrationOutcome::HasIdentities(n) => Err(ApiError::conflict(format!(
            "Integration {id} still holds {n} identities; delete them first, or send ?force=true to delete them with it."
        ))),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyList {
    pub keys: Vec<ApiKeyInfo>,
}

/// List the account's API keys (never their secrets).
#[utoipa::path(get, path = "/v2/api-keys", tag = "admin",
    responses((status = 200, body = KeyList), (status = 403, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_keys(State(state): State<AppState>, auth: Authenticated) -> Result<Json<KeyList>, ApiError> {
    auth.require(Scope::Admin)?;
    Ok(Json(KeyList { keys: state.store.list_keys(Some(auth.principal.account)).await? }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateKey {
    pub scopes: Vec<Scope>,
    #[serde(default)]
    pub label: String,
    /// Days until the key stops working (1 to 36500); leave out for a key that does not expire.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 36500)]
    pub expires_in_days: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedKeyResponse {
    /// The key itself. It is shown this once: store it now.
    pub key: String,
    pub api_key: ApiKeyInfo,
    pub message: String,
}

/// Create an API key; the answer is the only time its secret is shown.
#[utoipa::path(post, path = "/v2/api-keys", tag = "admin", request_body = CreateKey,
    responses((status = 201, body = CreatedKeyResponse), (status = 400, body = ErrorBody)), security(("api_key" = [])))]
pub async fn create_key(
    State(state): State<AppState>,
    auth: Authenticated,
    request: Request,
) -> Result<(StatusCode, Json<CreatedKeyResponse>), ApiError> {
    auth.require(Scope::Admin)?;
    let body: CreateKey = json_body(request).await?;
    if body.scopes.is_empty() {
        return Err(ApiError::invalid_parameter(
            "scopes",
            "",
            format!("A key needs at least one scope: {}.", Scope::allowed_values()),
        ));
    }
    let expires_at = match body.expires_in_days {
        Some(days) if !(1..=i64::from(MAX_KEY_DAYS)).contains(&days) => {
            return Err(ApiError::invalid_parameter(
                "expiresInDays",
                &days.to_string(),
                format!(
                    "`expiresInDays` must be from 1 to {MAX_KEY_DAYS} (100 years); leave it out for a key that does not expire."
                ),
            ));
        }
        Some(days) => Some(devid_store::now_micros() + days * 86_400 * 1_000_000),
        None => None,
    };
    if body.label.chars().count() > 200 {
        return Err(ApiError::invalid_parameter("label", &body.label, "A key's label is at most 200 characters."));
    }
    let created = state
        .store
        .create_key(
            &auth.change_context(),
            NewKey { scopes: body.scopes, label: body.label.trim().to_string(), expires_at },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKeyResponse {
            key: created.key,
            api_key: created.info,
            message: "Store this key now: devid keeps only a hash of it and cannot show it again.".into(),
        }),
    ))
}

/// Revoke an API key.
#[utoipa::path(delete, path = "/v2/api-keys/{id}", tag = "admin", params(("id" = String, Path)),
    responses((status = 200, body = ApiKeyInfo), (status = 404, body = ErrorBody),
        (status = 409, description = "The account's last active admin key, or the key making the request", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn revoke_key(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyInfo>, ApiError> {
    auth.require(Scope::Admin)?;
    if id.trim() == auth.principal.key_id {
        // A key that revokes itself locks out whoever holds only it, mid-session.
        return Err(ApiError::conflict(format!(
            "Key {id} is the key making this request; a key cannot revoke itself. Revoke it with another admin key (create one first with POST /v2/api-keys), or with `devid keys revoke` on the server."
        )));
    }
    Ok(Json(state.store.revoke_key(&auth.change_context(), &id, false).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditMetadata {
    pub page: u64,
    pub page_size: u64,
    pub has_next: bool,
    pub total_count: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditResponse {
    pub records: Vec<AuditEvent>,
    pub count: usize,
    #[serde(rename = "_metadata")]
    pub metadata: AuditMetadata,
}

/// The audit trail, newest first.
#[utoipa::path(get, path = "/v2/audit", tag = "admin",
    params(
        ("pageIndex" = Option<u64>, Query), ("pageSize" = Option<u64>, Query, description = "1 to 1000 (default 50)"),
        ("from" = Option<String>, Query, description = "RFC 3339, inclusive"), ("to" = Option<String>, Query, description = "RFC 3339, exclusive"),
        ("integrationId" = Option<i64>, Query), ("identity" = Option<String>, Query),
        ("email" = Option<String>, Query, description = "Matches the old or the new email"),
    ),
    responses((status = 200, body = AuditResponse), (status = 400, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_audit(
    State(state): State<AppState>,
    auth: Authenticated,
    RawQuery(query): RawQuery,
) -> Result<Json<AuditResponse>, ApiError> {
    auth.require(Scope::Admin)?;
    let params = QueryParams::parse(
        query.as_deref(),
        &["pageIndex", "pageSize", "from", "to", "integrationId", "identity", "email"],
    )?;
    let q = AuditQuery {
        from: params.time("from")?,
        to: params.time("to")?,
        integration_id: params.get("integrationId").map(|raw| parse_id_named("integrationId", raw)).transpose()?,
        identity: params.get("identity").map(|s| s.trim().to_string()),
        email: params.get("email").map(|s| s.trim().to_lowercase()),
        page_index: params.u64_in("pageIndex", 0, super::identities::MAX_PAGE_INDEX, 0)?,
        page_size: params.u64_in("pageSize", 1, super::identities::MAX_PAGE_SIZE, 50)?,
    };
    let (page_index, page_size) = (q.page_index, q.page_size);
    let page = state.store.list_audit(auth.principal.account, q).await?;
    Ok(Json(AuditResponse {
        count: page.events.len(),
        records: page.events,
        metadata: AuditMetadata { page: page_index, page_size, has_next: page.has_next, total_count: page.total_count },
    }))
}

//! Webhooks (scope admin): register where change sets are announced, list and delete
//! them, and read or redeliver their deliveries.

use axum::Json;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use devid_core::change::ChangeKind;
use devid_core::types::Scope;
use devid_store::webhooks::{Delivery, NewWebhook, Webhook};
use serde::{Deserialize, Serialize};

use super::QueryParams;
use crate::AppState;
use crate::auth::Authenticated;
use crate::error::{ApiError, ErrorBody};
use crate::webhooks::{Unreachable, new_secret, parse_url, resolve};

/// Longest webhook URL accepted.
pub(crate) const MAX_URL_CHARS: usize = 2048;
/// Secrets given by the caller: long enough to be a secret, short enough to be sane.
pub(crate) const SECRET_CHARS: (usize, usize) = (16, 256);
/// Webhooks one account may register.
const MAX_WEBHOOKS: usize = 20;
pub(crate) const MAX_DELIVERIES_LIMIT: u64 = 1000;
pub(crate) const MAX_WEBHOOK_ID: i64 = devid_core::types::MAX_INTEGRATION_ID;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWebhook {
    /// http or https; a public address unless the server allows private ones.
    pub url: String,
    /// The kinds of change set to receive (upload, delete, …); absent or empty for all.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Signs every delivery (16 to 256 characters); generated when absent.
    pub secret: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// Shown here only: keep it to verify `x-devid-signature`.
    pub secret: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveriesResponse {
    /// Newest first.
    pub deliveries: Vec<Delivery>,
    pub has_next: bool,
    /// What to send as `before` for the next (older) page.
    pub next_before: Option<i64>,
}

fn no_webhook(id: i64) -> ApiError {
    ApiError::not_found(format!("There is no webhook {id} in this account; list them with GET /v2/webhooks."))
}

fn parse_id(raw: &str, what: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().ok().filter(|n| (1..=MAX_WEBHOOK_ID).contains(n)).ok_or_else(|| {
        ApiError::not_found(format!(
            "There is no {what} `{}` in this account; list webhooks with GET /v2/webhooks.",
            raw.chars().take(40).collect::<String>()
        ))
    })
}

/// Registers a webhook: every change set committed after this, of the kinds asked for,
/// is delivered to the URL, signed with the secret (shown in this answer only).
#[utoipa::path(post, path = "/v2/webhooks", tag = "changes",
    request_body(content = CreateWebhook, content_type = "application/json"),
    responses((status = 201, body = CreatedWebhook), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_webhook(
    State(state): State<AppState>,
    auth: Authenticated,
    request: Request,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    auth.require(Scope::Admin)?;
    let body: CreateWebhook = super::admin::json_body_within(request, 64 * 1024).await?;
    let url = body.url.as_str();
    if url.chars().count() > MAX_URL_CHARS {
        return Err(ApiError::bad_request(format!("`url` is longer than {MAX_URL_CHARS} characters.")));
    }
    let target = parse_url(url).map_err(|e| ApiError::bad_request(format!("`url`: {e}.")))?;
    // Refused now when it points inward; a name that does not resolve yet is kept (it
    // is resolved, and checked, before every delivery).
    match resolve(&target, state.webhook_policy).await {
        Err(Unreachable::Forbidden(e)) => return Err(ApiError::bad_request(format!("`url`: {e}."))),
        Err(Unreachable::Unresolved(e)) => {
            tracing::info!(error = %e, "webhook registered with a host that does not resolve now")
        }
        Ok(_) => {}
    }
    let mut kinds = Vec::new();
    for raw in &body.kinds {
        let kind = ChangeKind::parse(raw).ok_or_else(|| {
            let known: Vec<&str> = ChangeKind::ALL.iter().map(|k| k.as_str()).collect();
            ApiError::bad_request(format!(
                "`kinds`: `{}` is not a kind of change; the kinds are {}.",
                raw.chars().take(40).collect::<String>(),
                known.join(", ")
            ))
        })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    let secret = match body.secret {
        Some(secret) => {
            let n = secret.chars().count();
            if n < SECRET_CHARS.0 || n > SECRET_CHARS.1 || secret.chars().any(char::is_control) {
                return Err(ApiError::bad_request(format!(
                    "`secret` is {} to {} characters without control characters; leave it out to have one generated.",
                    SECRET_CHARS.0, SECRET_CHARS.1
                )));
            }
            secret
        }
        None => new_secret(),
    };
    let account = auth.principal.account;
    if state.store.list_webhooks(account).await?.len() >= MAX_WEBHOOKS {
        return Err(ApiError::conflict(format!(
            "This account already has {MAX_WEBHOOKS} webhooks, the most it may have; delete one first (DELETE /v2/webhooks/{{id}})."
        )));
    }
    let new = NewWebhook { url: target.url.to_string(), kinds, secret: secret.clone() };
    let webhook = state.store.create_webhook(&auth.change_context(), new).await?;
    Ok((StatusCode::CREATED, Json(CreatedWebhook { webhook, secret })))
}

/// The account's webhooks (never their secrets), with their pending and failed deliveries.
#[utoipa::path(get, path = "/v2/webhooks", tag = "changes",
    responses((status = 200, body = Vec<Webhook>)), security(("api_key" = [])))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    auth: Authenticated,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<Webhook>>, ApiError> {
    auth.require(Scope::Admin)?;
    QueryParams::parse(query.as_deref(), &[])?;
    Ok(Json(state.store.list_webhooks(auth.principal.account).await?))
}

/// Deletes a webhook and its deliveries, sent or not.
#[utoipa::path(delete, path = "/v2/webhooks/{id}", tag = "changes",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require(Scope::Admin)?;
    let id = parse_id(&id, "webhook")?;
    if state.store.delete_webhook(&auth.change_context(), id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_webhook(id))
    }
}

/// A webhook's deliveries, newest first, with each one's attempts and last answer.
#[utoipa::path(get, path = "/v2/webhooks/{id}/deliveries", tag = "changes",
    params(
        ("id" = i64, Path),
        ("before" = Option<i64>, Query, description = "Only deliveries older than this delivery id (the `nextBefore` of the previous page)"),
        ("limit" = Option<u64>, Query, description = "1 to 1000 (default 100)"),
    ),
    responses((status = 200, body = DeliveriesResponse), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<DeliveriesResponse>, ApiError> {
    auth.require(Scope::Admin)?;
    let params = QueryParams::parse(query.as_deref(), &["before", "limit"])?;
    let webhook = parse_id(&id, "webhook")?;
    let before = match params.get("before") {
        None => 0,
        Some(raw) => raw.parse::<i64>().ok().filter(|n| (0..=MAX_WEBHOOK_ID).contains(n)).ok_or_else(|| {
            ApiError::invalid_parameter(
                "before",
                raw,
                format!("`before` is a delivery id, a whole number from 0 to {MAX_WEBHOOK_ID}."),
            )
        })?,
    };
    let limit = params.u64_in("limit", 1, MAX_DELIVERIES_LIMIT, 100)?;
    let Some((deliveries, has_next)) =
        state.store.list_deliveries(auth.principal.account, webhook, before, limit).await?
    else {
        return Err(no_webhook(webhook));
    };
    let next_before = if has_next { deliveries.last().map(|d| d.id) } else { None };
    Ok(Json(DeliveriesResponse { deliveries, has_next, next_before }))
}

/// Sends a delivery again, whatever became of it: it goes out after the webhook's
/// earlier pending deliveries, and is retried for 24 hours from now.
#[utoipa::path(post, path = "/v2/webhooks/{id}/deliveries/{deliveryId}/redeliver", tag = "changes",
    params(("id" = i64, Path), ("deliveryId" = i64, Path)),
    responses((status = 200, body = Delivery), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn redeliver(
    State(state): State<AppState>,
    auth: Authenticated,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<Json<Delivery>, ApiError> {
    auth.require(Scope::Admin)?;
    let webhook = parse_id(&id, "webhook")?;
    let delivery = parse_id(&delivery, "delivery")?;
    state.store.redeliver(&auth.change_context(), webhook, delivery).await?.map(Json).ok_or_else(|| {
        ApiError::not_found(format!(
            "Webhook {webhook} of this account has no delivery {delivery}; list them with GET /v2/webhooks/{webhook}/deliveries."
        ))
    })
}

//! Routes, one module per resource.

pub(crate) mod admin;
pub(crate) mod changes;
pub(crate) mod contributors;
pub(crate) mod coverage;
pub(crate) mod identities;
pub(crate) mod ops;
pub(crate) mod suggestions;
pub(crate) mod webhooks;

use axum::Router;
use axum::routing::{delete, get, patch, post};

use crate::AppState;

pub use ops::ops_routes;

/// The API as served under each prefix of [`crate::API_PREFIXES`].
pub fn api_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/developers/identities",
            patch(identities::upload_identities)
                .get(identities::list::list_identities)
                .delete(identities::delete_identities),
        )
        .route("/developers/identities/lock", post(identities::locks::lock_identities))
        .route("/developers/identities/unlock", post(identities::locks::unlock_identities))
        .route("/developers/cloud-ids", post(identities::upload_cloud_ids))
        .route("/developers/cloud-ids/upload", post(identities::upload_cloud_ids_csv))
        .route("/integrations", get(admin::list_integrations).post(admin::create_integration))
        .route(
            "/integrations/{id}",
            get(admin::get_integration).patch(admin::update_integration).delete(admin::delete_integration),
        )
        .route("/api-keys", get(admin::list_keys).post(admin::create_key))
        .route("/api-keys/{id}", delete(admin::revoke_key))
        .route("/audit", get(admin::list_audit))
        .route("/changes", get(changes::list_changes))
        .route("/changes/{id}", get(changes::get_change))
        .route("/changes/{id}/revert", post(changes::revert_change))
        .route("/webhooks", get(webhooks::list_webhooks).post(webhooks::create_webhook))
        .route("/webhooks/{id}", delete(webhooks::delete_webhook))
        .route("/webhooks/{id}/deliveries", get(webhooks::list_deliveries))
        .route("/webhooks/{id}/deliveries/{deliveryId}/redeliver", post(webhooks::redeliver))
        .route("/contributors", post(contributors::upload_contributors).get(contributors::list_contributors))
        .route("/contributors/bots", post(contributors::set_bots))
        .route("/coverage", get(coverage::get_coverage))
        .route("/suggestions", get(suggestions::list_suggestions))
        .route("/suggestions/accept", post(suggestions::accept_batch))
        .route("/suggestions/{id}/accept", post(suggestions::accept_one))
        .route("/suggestions/{id}/reject", post(suggestions::reject_one))
        .route("/suggestions/{id}/skip", post(suggestions::skip_one))
}

/// Parses `true`/`false` (and `1`/`0`) query flags.
pub(crate) fn parse_flag(name: &str, value: &str) -> Result<bool, crate::error::ApiError> {
    // Not trimmed: the document lists the accepted forms exactly.
    match value.to_ascii_lowercase().as_str() {
        "" | "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(crate::error::ApiError::invalid_parameter(
            name,
            value,
            format!("`{name}` must be true or false, not `{value}`."),
        )),
    }
}

/// Query parameters, checked against the names an endpoint accepts so a typo such as
/// `pagesize` is an error instead of being silently ignored. Names match
/// case-insensitively; Harness's own `accountIdentifier` and `routingId` are always
/// accepted.
pub(crate) struct QueryParams {
    pairs: Vec<(String, String)>,
}

/// Longest value any query parameter may have. Filters hold at most a list of emails;
/// beyond this a value only costs memory and database work.
pub(crate) const MAX_PARAM_CHARS: usize = 32 * 1024;

impl QueryParams {
    pub fn parse(query: Option<&str>, allowed: &[&str]) -> Result<Self, crate::error::ApiError> {
        let mut pairs = Vec::new();
        for (k, v) in crate::auth::form_pairs(query.unwrap_or("")) {
            if v.chars().count() > MAX_PARAM_CHARS {
                let shown: String = k.chars().take(64).collect();
                return Err(crate::error::ApiError::invalid_parameter(
                    &shown,
                    &v,
                    format!(
                        "The query parameter `{shown}` is longer than {MAX_PARAM_CHARS} characters; send a shorter value."
                    ),
                ));
            }
            let known =
                allowed.iter().chain(["accountIdentifier", "routingId"].iter()).find(|a| a.eq_ignore_ascii_case(&k));
            match known {
                Some(name) => pairs.push((name.to_string(), v)),
                None => {
                    let accepted = if allowed.is_empty() {
                        "this endpoint takes no query parameters".to_string()
                    } else {
                        format!("this endpoint accepts: {}", allowed.join(", "))
                    };
                    return Err(crate::error::ApiError::invalid_parameter(
                        &k,
                        &v,
                        format!("Unknown query parameter `{k}`; {accepted}."),
                    ));
                }
            }
        }
        Ok(Self { pairs })
    }

    /// The value of a parameter; the last one wins when repeated.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn flag(&self, name: &str) -> Result<bool, crate::error::ApiError> {
        self.get(name).map_or(Ok(false), |v| parse_flag(name, v))
    }

    pub fn u64_in(&self, name: &str, min: u64, max: u64, default: u64) -> Result<u64, crate::error::ApiError> {
        let Some(raw) = self.get(name) else { return Ok(default) };
        match raw.parse::<u64>() {
            Ok(v) if (min..=max).contains(&v) => Ok(v),
            _ => Err(crate::error::ApiError::invalid_parameter(
                name,
                raw,
                format!("`{name}` must be a whole number from {min} to {max}, not `{raw}`."),
            )),
        }
    }

    /// An RFC 3339 time parameter, as microseconds; absent is `None`.
    pub fn time(&self, name: &str) -> Result<Option<i64>, crate::error::ApiError> {
        self.get(name)
            .map(|raw| {
                devid_core::time::parse_rfc3339(raw)
                    .map_err(|e| crate::error::ApiError::invalid_parameter(name, raw, format!("`{name}`: {e}.")))
            })
            .transpose()
    }
}

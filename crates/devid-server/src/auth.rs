//! Who is calling: the API key from any of the documented header forms, checked against
//! the store, then the scope each endpoint needs.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use devid_core::apikey::key_from_headers;
use devid_core::types::{Scope, scopes_grant};
use devid_store::{AuthOutcome, ChangeContext, Principal};

use crate::AppState;
use crate::error::ApiError;

/// A request whose key is valid. Handlers call [`Authenticated::require`] for their scope.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: Principal,
    pub request_id: Option<String>,
}

impl Authenticated {
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if scopes_grant(&self.principal.scopes, scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "This API key lacks the `{scope}` scope this endpoint needs (it has: {}). Ask an admin for a key with that scope.",
                self.principal.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            )))
        }
    }

    pub fn change_context(&self) -> ChangeContext {
        ChangeContext {
            account: self.principal.account,
            key_id: Some(self.principal.key_id.clone()),
            request_id: self.request_id.clone(),
        }
    }
}

const HOW_TO_SEND: &str = "send it as `x-api-key: <key>` or `Authorization: Bearer <key>`";

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // Failed attempts are limited per client address before any database work, and
        // per key id once a wrong secret is seen, so guessing is slow and cheap to refuse.
        let address = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| format!("ip:{}", c.0.ip()));
        if let Some(address) = &address
            && let Err(retry_after) = state.auth_failures.peek(address)
        {
            return Err(too_many_failures(retry_after, "from this address"));
        }
        let failed = |error: ApiError, key_id: Option<&str>| {
            if let Some(address) = &address {
                let _ = state.auth_failures.check(address);
            }
            match key_id.map(|id| state.auth_failures.check(&format!("key:{id}"))) {
                Some(Err(retry_after)) => too_many_failures(retry_after, "with this key id"),
                _ => error,
            }
        };
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let Some(key) = key_from_headers(header("x-api-key"), header("authorization")) else {
            return Err(failed(ApiError::unauthorized(format!("No API key was sent; {HOW_TO_SEND}.")), None));
        };
        // Only ids of the shape devid issues are tracked: a client-chosen string of any
        // length must not become a key of the failure table.
        let key_id = devid_core::apikey::parse_key(key)
            .map(|k| k.key_id)
            .filter(|id| id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric()));
        let principal = match state.store.authenticate(key).await? {
            AuthOutcome::Valid(p) => p,
            AuthOutcome::Unknown => {
                return Err(failed(
                    ApiError::unauthorized(format!(
                        "The API key is not valid. Check that it was copied whole (pat.<account>.<keyId>.<secret>); {HOW_TO_SEND}."
                    )),
                    key_id,
                ));
            }
            AuthOutcome::Revoked => {
                return Err(failed(
                    ApiError::unauthorized("This API key has been revoked; ask an admin for a new one."),
                    None,
                ));
            }
            AuthOutcome::Expired => {
                return Err(failed(
                    ApiError::unauthorized("This API key has expired; ask an admin for a new one."),
                    None,
                ));
            }
        };
        for named in named_accounts(parts)? {
            if !named.is_empty() && named != principal.account_name {
                return Err(ApiError::forbidden(format!(
                    "This API key belongs to account `{}`, not `{named}`; use a key of that account.",
                    principal.account_name,
                )));
            }
        }
        tracing::Span::current().record("key_id", principal.key_id.as_str());
        if let Err(retry_after) = state.rate.check(&principal.key_id) {
            return Err(ApiError::rate_limited(retry_after));
        }
        if let Err(retry_after) = state.account_rate.check(&principal.account.0.to_string()) {
            return Err(ApiError::rate_limited_because(
                retry_after,
                format!(
                    "The keys of this account together sent more requests than the account's limit per minute; retry in {retry_after} s (see Retry-After)."
                ),
            ));
        }
        let request_id = header("x-request-id").map(str::to_string);
        Ok(Authenticated { principal, request_id })
    }
}

fn too_many_failures(retry_after: u64, source: &str) -> ApiError {
    ApiError::rate_limited_because(
        retry_after,
        format!(
            "Too many requests with a missing or wrong API key came {source}; retry in {retry_after} s (see Retry-After) with a valid key."
        ),
    )
}

/// The accounts a request names, from the `Harness-Account` header and the
/// `accountIdentifier` query parameter (trimmed). Each may be given once: a repeat could
/// name one account where a check reads it and another where a proxy does.
fn named_accounts(parts: &Parts) -> Result<Vec<String>, ApiError> {
    let mut named = Vec::new();
    let mut headers = parts.headers.get_all("harness-account").iter();
    if let Some(first) = headers.next() {
        if headers.next().is_some() {
            return Err(ApiError::bad_request(
                "The Harness-Account header was sent more than once; send it once, naming the key's account.",
            ));
        }
        let value = first.to_str().map_err(|_| {
            ApiError::bad_request("The Harness-Account header is not readable text; send the account name.")
        })?;
        named.push(value.trim().to_string());
    }
    let query = parts.uri.query().unwrap_or("");
    let mut in_query = form_pairs(query).filter(|(k, _)| k.eq_ignore_ascii_case("accountIdentifier")).map(|(_, v)| v);
    if let Some(first) = in_query.next() {
        if in_query.next().is_some() {
            return Err(ApiError::invalid_parameter(
                "accountIdentifier",
                &first,
                "`accountIdentifier` was given more than once; give it once, naming the key's account.",
            ));
        }
        named.push(first.trim().to_string());
    }
    Ok(named)
}

/// Decoded `key=value` pairs of a query string.
pub fn form_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()))
}

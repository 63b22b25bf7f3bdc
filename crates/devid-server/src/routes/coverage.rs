//! Coverage: how much of each integration's activity is attributed to developers, who
//! is unmapped, and which developers look wrong (too many identities, or none in a
//! given integration). Answers are remembered per account until contributors or
//! identities change, so a dashboard polling it costs one version check.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use devid_core::types::Scope;
use devid_store::contributors::{Coverage, CoverageQuery};

use super::QueryParams;
use crate::AppState;
use crate::account_cache::PerAccountCache;
use crate::api::contributors::CoverageResponse;
use crate::auth::Authenticated;
use crate::cursor::FilterDigest;
use crate::error::{ApiError, ErrorBody};

/// Coverage answers kept per account (by request), with the versions they were computed at.
#[derive(Debug)]
pub struct CoverageCache {
    entries: PerAccountCache<(i64, i64, Arc<Coverage>)>,
}

impl Default for CoverageCache {
    fn default() -> Self {
        // A few distinct requests per account (dashboards ask the same one), many accounts.
        Self { entries: PerAccountCache::new(16, 256) }
    }
}

/// Default number of unmapped contributors listed.
pub const DEFAULT_TOP_UNMAPPED: u64 = 20;
/// Developers with more identities than this are listed as possible wrong merges.
pub const DEFAULT_MANY_IDENTITIES: u64 = 10;
/// Default and largest length of the developer lists.
pub const DEFAULT_LIST_LIMIT: u64 = 100;
pub const MAX_LIST_LIMIT: u64 = 1000;
/// Largest `manyIdentitiesOver`.
pub const MAX_MANY_IDENTITIES: u64 = 1_000_000;

/// Coverage of every integration, the top unmapped contributors and the developer checks.
#[utoipa::path(
    get,
    path = "/v2/coverage",
    tag = "contributors",
    params(
        ("top" = Option<u64>, Query, description = "How many unmapped contributors to list, 0 to 1000 (default 20)"),
        ("manyIdentitiesOver" = Option<u64>, Query, description = "List developers holding more identities than this (default 10)"),
        ("missingIn" = Option<i64>, Query, description = "List developers without an identity in this integration"),
        ("limit" = Option<u64>, Query, description = "Most developers in each list, 1 to 1000 (default 100)"),
    ),
    responses(
        (status = 200, body = CoverageResponse),
        (status = 400, body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get_coverage(
    State(state): State<AppState>,
    auth: Authenticated,
    RawQuery(query): RawQuery,
) -> Result<Json<CoverageResponse>, ApiError> {
    auth.require(Scope::DeveloperRecordsRead)?;
    let params = QueryParams::parse(query.as_deref(), &["top", "manyIdentitiesOver", "missingIn", "limit"])?;
    let account = auth.principal.account;
    let q = CoverageQuery {
        top_unmapped: params.u64_in("top", 0, super::identities::MAX_PAGE_SIZE, DEFAULT_TOP_UNMAPPED)?,
        many_identities_over: params.u64_in("manyIdentitiesOver", 0, MAX_MANY_IDENTITIES, DEFAULT_MANY_IDENTITIES)?,
        list_limit: params.u64_in("limit", 1, MAX_LIST_LIMIT, DEFAULT_LIST_LIMIT)?,
        missing_in: match params.get("missingIn") {
            None => None,
            Some(raw) => {
                let id = devid_core::plan::parse_integration_id(raw).ok_or_else(|| {
                    ApiError::invalid_parameter(
                        "missingIn",
                        raw,
                        format!("`missingIn` must be an integration id, a positive whole number; not `{raw}`."),
                    )
                })?;
                if state.store.get_integration(account, id).await?.is_none() {
                    return Err(ApiError::invalid_parameter(
                        "missingIn",
                        raw,
                        format!(
                            "`missingIn`: this account has no integration {id}; list them with GET /v2/integrations."
                        ),
                    ));
                }
                Some(id)
            }
        },
    };
    let key = FilterDigest::of_coverage(&q);
    let identities = state.store.identities_version(account).await?;
    let contributors = state.store.contributors_version(account).await?;
    let cached = state
        .coverage
        .entries
        .read(account.0, &key, |(i, c, coverage)| (*i == identities && *c == contributors).then(|| coverage.clone()));
    let coverage = match cached {
        Some(coverage) => coverage,
        None => {
            let coverage = Arc::new(state.store.coverage(account, q.clone()).await?);
            let entry = (identities, contributors, coverage.clone());
            state.coverage.entries.update(account.0, key, || entry.clone(), |e| *e = entry.clone());
            coverage
        }
    };
    Ok(Json(CoverageResponse::of(&coverage, q.many_identities_over, q.missing_in)))
}

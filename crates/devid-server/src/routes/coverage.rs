//! Coverage: how much of each integration's activity is attributed to developers, who
//! is unmapped, and which developers look wrong (too many identities, or none in a
//! given integration). Answers are remembered per account until contributors or
//! identities change, so a dashboard polling it costs one version check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Accounts that asked for coverage lately, and whether a warm-up runs for them.
///
/// Coverage is computed from every contributor and identity of an account (about a
/// second at a million each, docs/benchmarks.md), so after a write that changes either,
/// the default answer is computed again off the request path for accounts that use
/// coverage: their next request is answered from memory. One warm-up per account runs at
/// a time; writes arriving meanwhile fold into one more run after it.
#[derive(Debug, Default)]
pub struct CoverageWarmer {
    accounts: Mutex<HashMap<i64, Warmth>>,
}

#[derive(Debug)]
struct Warmth {
    asked_at: Instant,
    running: bool,
    again: bool,
}

/// Shortest time between the starts of two warm-ups of one account.
const MIN_WARM_UP_INTERVAL: Duration = Duration::from_secs(10);

/// How long after its last coverage request an account's coverage is kept warm.
const KEEP_WARM_FOR: Duration = Duration::from_secs(3600);

impl CoverageWarmer {
    fn asked(&self, account: i64) {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        accounts.retain(|_, w| w.running || w.asked_at.elapsed() < KEEP_WARM_FOR);
        accounts.entry(account).and_modify(|w| w.asked_at = Instant::now()).or_insert(Warmth {
            asked_at: Instant::now(),
            running: false,
            again: false,
        });
    }

    /// Whether to start a warm-up now (none running); marks one to follow otherwise.
    fn start(&self, account: i64) -> bool {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        match accounts.get_mut(&account) {
            Some(w) if w.asked_at.elapsed() < KEEP_WARM_FOR => {
                if w.running {
                    w.again = true;
                    false
                } else {
                    w.running = true;
                    true
                }
            }
            _ => false,
        }
    }

    /// After a run: whether another is due (a write came in meanwhile).
    fn finish(&self, account: i64) -> bool {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        match accounts.get_mut(&account) {
            Some(w) if w.again => {
                w.again = false;
                true
            }
            Some(w) => {
                w.running = false;
                false
            }
            None => false,
        }
    }
}

/// Called after a write that may change coverage: recomputes the account's default
/// coverage in the background if the account uses coverage.
pub(crate) fn changed(state: &AppState, account: devid_store::AccountId) {
    if !state.coverage_warmer.start(account.0) {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        loop {
            let started = Instant::now();
            if let Err(e) = compute(&state, account, default_query()).await {
                tracing::warn!(error = %e.message, "coverage warm-up failed; the next request computes it");
            }
            if !state.coverage_warmer.finish(account.0) {
                break;
            }
            // A sync job writing every second must not keep a core busy recomputing:
            // runs of one account start at most this often.
            tokio::time::sleep(MIN_WARM_UP_INTERVAL.saturating_sub(started.elapsed())).await;
        }
    });
}

fn default_query() -> CoverageQuery {
    CoverageQuery {
        top_unmapped: DEFAULT_TOP_UNMAPPED,
        many_identities_over: DEFAULT_MANY_IDENTITIES,
        missing_in: None,
        list_limit: DEFAULT_LIST_LIMIT,
    }
}

/// The coverage `q` asks for, from memory when nothing changed since it was computed.
async fn compute(
    state: &AppState,
    account: devid_store::AccountId,
    q: CoverageQuery,
) -> Result<Arc<Coverage>, ApiError> {
    let key = FilterDigest::of_coverage(&q);
    // Versions are read before computing: a write that lands meanwhile moves them, and
    // the next reader computes again rather than trust this answer.
    let identities = state.store.identities_version(account).await?;
    let contributors = state.store.contributors_version(account).await?;
    let cached = state
        .coverage
        .entries
        .read(account.0, &key, |(i, c, coverage)| (*i == identities && *c == contributors).then(|| coverage.clone()));
    if let Some(coverage) = cached {
        return Ok(coverage);
    }
    let coverage = Arc::new(state.store.coverage(account, q).await?);
    let entry = (identities, contributors, coverage.clone());
    state.coverage.entries.update(account.0, key, || entry.clone(), |e| *e = entry.clone());
    Ok(coverage)
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
    if q == default_query() {
        state.coverage_warmer.asked(account.0);
    }
    let coverage = compute(&state, account, q.clone()).await?;
    Ok(Json(CoverageResponse::of(&coverage, q.many_identities_over, q.missing_in)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_ups_run_only_for_accounts_that_ask_and_writes_fold_into_one_more_run() {
        let warmer = CoverageWarmer::default();
        assert!(!warmer.start(7), "an account that never asked is not warmed");
        warmer.asked(7);
        assert!(warmer.start(7), "the first write starts a run");
        assert!(!warmer.start(7), "a write during the run starts nothing");
        assert!(!warmer.start(7), "nor does a third");
        assert!(warmer.finish(7), "the writes fold into one more run");
        assert!(!warmer.finish(7), "and then it stops");
        assert!(warmer.start(7), "a later write starts again");
    }
}

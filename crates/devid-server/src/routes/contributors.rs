//! Contributors: uploads of activity by source, the listing (JSON pages or the whole
//! CSV), and manual bot decisions.

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use devid_core::contributor::bots::plan_bot_decisions;
use devid_core::contributor::plan::parse_seen_time;
use devid_core::contributor::{DEFAULT_SOURCE_LABEL, IngestMode, check_source_label};
use devid_core::types::Scope;
use devid_store::AccountId;
use devid_store::contributors::{ContributorPaging, ContributorQuery, ContributorSort, ContributorStatus};
use serde::Deserialize;

use super::QueryParams;
use super::identities::export::push_csv_cell;
use super::identities::list::{ListMetadata, integration_ids, search_value, wants_csv};
use super::identities::{MAX_PAGE_INDEX, MAX_PAGE_SIZE};
use crate::AppState;
use crate::api::contributors::{BotFlagResponse, Contributor, IngestResponse, bot_reason, status_of};
use crate::auth::Authenticated;
use crate::cursor::FilterDigest;
use crate::error::{ApiError, ErrorBody};

/// Ingests from this size on give the memory they used back to the system afterwards.
const RETURN_MEMORY_AFTER_ROWS: u64 = 100_000;

/// Upload contributors seen in a source's activity (JSON array, NDJSON or CSV).
#[utoipa::path(
    post,
    path = "/v2/contributors",
    tag = "contributors",
    params(
        ("source" = Option<String>, Query, description = "Where the activity came from (`git:numpy`); default `default`. Re-sending a source replaces what it reported before."),
        ("mode" = Option<String>, Query, description = "replace (default) | add: add to the source's counts instead (incremental feeds)"),
        ("dryRun" = Option<bool>, Query, description = "Validate and report without changing anything"),
    ),
    request_body(description = "JSON `[{integrationId, identity, name?, email?, kind?, count?, firstSeen?, lastSeen?, utcOffset?}]`, NDJSON (one such object per line), or CSV with those columns (`text/csv`, or multipart/form-data in the field `file`)", content(
        (Vec<ContributorRow> = "application/json"),
        (String = "application/x-ndjson"),
        (String = "text/csv"),
        (String = "multipart/form-data"),
    )),
    responses(
        (status = 200, description = "Applied (or, with dryRun, validated)", body = IngestResponse),
        (status = 400, description = "Invalid upload: nothing applied; errors grouped by type with rows", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn upload_contributors(
    State(state): State<AppState>,
    auth: Authenticated,
    request: Request,
) -> Result<Json<IngestResponse>, ApiError> {
    auth.require(Scope::DeveloperRecordsWrite)?;
    let params = QueryParams::parse(request.uri().query(), &["source", "mode", "dryRun"])?;
    let dry_run = params.flag("dryRun")?;
    let source = params.get("source").unwrap_or(DEFAULT_SOURCE_LABEL).to_string();
    check_source_label(&source)
        .map_err(|why| ApiError::invalid_parameter("source", &source, format!("`source`: {why}")))?;
    let mode = match params.get("mode") {
        None => IngestMode::Replace,
        Some(raw) => IngestMode::parse(raw).ok_or_else(|| {
            ApiError::invalid_parameter("mode", raw, format!("`mode` must be replace or add, not `{raw}`."))
        })?,
    };
    let _permit =
        state.uploads.enter(auth.principal.account.0, crate::body::declared_length(request.headers())).await?;
    let request = crate::body::bound_trickle(request, &state.limits);
    let started = std::time::Instant::now();
    let integrations = state.store.integration_infos(auth.principal.account).await?;
    let plan = crate::body::read_contributors(request, &state, integrations).await?;
    let planned_at = started.elapsed();
    let summary = state.store.ingest_contributors(&auth.change_context(), &source, mode, plan, dry_run).await?;
    if summary.received >= RETURN_MEMORY_AFTER_ROWS {
        // Off the request path: trimming a large heap takes a moment.
        tokio::task::spawn_blocking(devid_store::memory::return_free_memory);
    }
    // Where an ingest's time goes, for operators and for the benchmark notes.
    tracing::info!(
        received = summary.received,
        created = summary.created,
        updated = summary.updated,
        unchanged = summary.unchanged,
        removed = summary.removed,
        dry_run,
        read_and_validate_ms = planned_at.as_millis() as u64,
        apply_ms = (started.elapsed() - planned_at).as_millis() as u64,
        "contributors ingested"
    );
    let message = if dry_run {
        "Dry run: the upload is valid; the summary shows what it would change. Nothing was changed."
    } else {
        "Contributors updated successfully."
    };
    if !dry_run {
        super::coverage::changed(&state, auth.principal.account);
    }
    Ok(Json(IngestResponse {
        status: "success".into(),
        message: message.into(),
        source,
        mode: mode.as_str().into(),
        summary: summary.into(),
        dry_run,
    }))
}

/// One contributor row (documentation only: bodies are read by devid-core).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct ContributorRow {
    integration_id: i64,
    identity: String,
    name: Option<String>,
    email: Option<String>,
    /// commit | pr | review | issue | other; default commit for GIT integrations, other elsewhere.
    kind: Option<String>,
    /// Default 1.
    count: Option<u64>,
    /// A date (2026-01-31) or RFC 3339 timestamp.
    first_seen: Option<String>,
    last_seen: Option<String>,
    /// The UTC offset this activity was recorded in (`+01:00`, `-0530`, `Z`): evidence for
    /// matching accounts of one name. Send one row per offset; a contributor's offsets are
    /// gathered over its rows.
    utc_offset: Option<String>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ContributorList {
    pub records: Vec<Contributor>,
    /// Records in this page.
    pub count: usize,
    #[serde(rename = "_metadata")]
    pub metadata: ListMetadata,
}

const LIST_PARAMS: [&str; 10] = [
    "status",
    "integrationIds",
    "searchValue",
    "developer",
    "activeAfter",
    "sortKey",
    "pageIndex",
    "pageSize",
    "cursor",
    "format",
];

/// List contributors (JSON page), or download them all as CSV.
#[utoipa::path(
    get,
    path = "/v2/contributors",
    tag = "contributors",
    params(
        ("status" = Option<String>, Query, description = "mapped | unmapped | bot (bots are never mapped or unmapped)"),
        ("integrationIds" = Option<String>, Query, description = "Comma-separated integration ids"),
        ("searchValue" = Option<String>, Query, description = "Case-insensitive substring of the identity, name or email"),
        ("developer" = Option<String>, Query, description = "Only contributors mapped to the developer with this email"),
        ("activeAfter" = Option<String>, Query, description = "Only contributors last seen after this date or RFC 3339 time"),
        ("sortKey" = Option<String>, Query, description = "activity (default, most first) | lastSeen (latest first) | identity (A to Z)"),
        ("pageIndex" = Option<u64>, Query, description = "0-based page (default 0)"),
        ("pageSize" = Option<u64>, Query, description = "1 to 1000 (default 50)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("format" = Option<String>, Query, description = "json | csv (or send Accept: text/csv)"),
    ),
    responses(
        (status = 200, description = "A page of contributors, or the whole CSV", body = ContributorList),
        (status = 400, body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list_contributors(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    auth.require(Scope::DeveloperRecordsRead)?;
    let params = QueryParams::parse(query.as_deref(), &LIST_PARAMS)?;
    let mut q = parse_filters(&params)?;
    let account = auth.principal.account;
    let page_size = params.u64_in("pageSize", 1, MAX_PAGE_SIZE, 50)?;
    let page_index_param = params.u64_in("pageIndex", 0, MAX_PAGE_INDEX, 0)?;
    if wants_csv(&params, &headers)? {
        return csv_download(state, account, q);
    }
    let filter = FilterDigest::of_contributors(&q);
    let signer = state.cursor_signer().await?;
    let cursor = params.get("cursor").filter(|c| !c.trim().is_empty());
    let page_index = match (cursor, params.get("pageIndex")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_parameter(
                "cursor",
                "",
                "Send either `cursor` or `pageIndex`, not both: a cursor already says where the page starts.",
            ));
        }
        (Some(cursor), None) => {
            q.paging = ContributorPaging::After { cursor: signer.decode(cursor, account, &filter)?, page_size };
            None
        }
        (None, _) => {
            q.paging = ContributorPaging::Offset { page_index: page_index_param, page_size };
            Some(page_index_param)
        }
    };
    // Whether a contributor is mapped depends on identities as well: the total is
    // remembered per version of both.
    let identities = state.store.identities_version(account).await?;
    let contributors = state.store.contributors_version(account).await?;
    let total_key = filter.at_version("identities", identities);
    let cached_total = state.counts.get(account.0, &total_key, contributors);
    q.count_total = cached_total.is_none();
    let mut page = state.store.list_contributors(account, q).await?;
    match cached_total {
        Some(total) => page.total_count = total,
        None => state.counts.put(account.0, total_key, contributors, page.total_count),
    }
    let next_cursor = page.next_cursor.as_ref().map(|k| signer.encode(k, account, &filter));
    let records: Vec<Contributor> = page.records.into_iter().map(Contributor::from).collect();
    Ok(Json(ContributorList {
        count: records.len(),
        records,
        metadata: ListMetadata {
            page: page_index,
            page_size,
            has_next: page.has_next,
            total_count: page.total_count,
            next_cursor,
        },
    })
    .into_response())
}

fn parse_filters(params: &QueryParams) -> Result<ContributorQuery, ApiError> {
    let mut q = ContributorQuery::default();
    if let Some(raw) = params.get("status") {
        q.status = Some(ContributorStatus::parse(raw).ok_or_else(|| {
            ApiError::invalid_parameter(
                "status",
                raw,
                format!("`status` must be mapped, unmapped or bot, not `{raw}`."),
            )
        })?);
    }
    if let Some(raw) = params.get("sortKey") {
        q.sort = ContributorSort::parse(raw).ok_or_else(|| {
            ApiError::invalid_parameter(
                "sortKey",
                raw,
                format!("`sortKey` must be activity, lastSeen or identity, not `{raw}`."),
            )
        })?;
    }
    if let Some(raw) = params.get("integrationIds").filter(|raw| raw.trim().is_empty()) {
        // A filter sent empty is a client's mistake (a list it meant to fill), not "all".
        return Err(ApiError::invalid_parameter(
            "integrationIds",
            raw,
            "`integrationIds` is empty: list comma-separated integration ids, or leave the parameter out for all.",
        ));
    }
    q.integration_ids = integration_ids(params)?;
    q.search = search_value(params, "identity, name or email")?;
    if let Some(raw) = params.get("developer") {
        let email = raw.trim().to_lowercase();
        if email.is_empty() || email.chars().count() > crate::routes::suggestions::MAX_DEVELOPER_FILTER_CHARS {
            return Err(ApiError::invalid_parameter(
                "developer",
                raw,
                format!(
                    "`developer` is a developer's email, 1 to {} characters; leave it out for every contributor.",
                    crate::routes::suggestions::MAX_DEVELOPER_FILTER_CHARS
                ),
            ));
        }
        q.developer = Some(email);
    }
    if let Some(raw) = params.get("activeAfter") {
        q.active_after = Some(
            parse_seen_time(raw)
                .map_err(|e| ApiError::invalid_parameter("activeAfter", raw, format!("`activeAfter`: {e}.")))?,
        );
    }
    Ok(q)
}

/// Rows per batch of the CSV download.
const EXPORT_BATCH_ROWS: u64 = 1000;

pub const CSV_HEADER: [&str; 16] = [
    "integrationId",
    "applicationType",
    "identity",
    "name",
    "email",
    "status",
    "mappedEmail",
    "botReason",
    "commit",
    "pr",
    "review",
    "issue",
    "other",
    "activity",
    "firstSeen",
    "lastSeen",
];

/// Every matching contributor, streamed a batch at a time by keyset.
fn csv_download(state: AppState, account: AccountId, query: ContributorQuery) -> Result<Response, ApiError> {
    let permit = state.exports.try_enter(account.0).ok_or_else(|| {
        ApiError::rate_limited_because(
            5,
            format!(
                "This account already has {} CSV downloads running, the most it may run at once; wait for one to finish, then ask again.",
                state.limits.max_exports_per_account
            ),
        )
    })?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(2);
    tokio::spawn(async move {
        let _permit = permit;
        let mut header = CSV_HEADER.join(",").into_bytes();
        header.extend_from_slice(b"\r\n");
        if tx.send(Ok(bytes::Bytes::from(header))).await.is_err() {
            return;
        }
        let mut paging = Some(ContributorPaging::Offset { page_index: 0, page_size: EXPORT_BATCH_ROWS });
        while let Some(next) = paging.take() {
            let q = ContributorQuery { paging: next, count_total: false, ..query.clone() };
            let page = match state.store.list_contributors(account, q).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(error = %e, "contributor CSV download aborted");
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
            let mut out = Vec::with_capacity(page.records.len() * 160);
            for r in &page.records {
                let counts = &r.counts;
                let cells: [String; 16] = [
                    r.integration_id.to_string(),
                    r.application_type.as_str().to_string(),
                    r.identity.clone(),
                    r.name.clone().unwrap_or_default(),
                    r.email.clone().unwrap_or_default(),
                    status_of(r).to_string(),
                    r.mapped_email.clone().unwrap_or_default(),
                    bot_reason(r.bot).unwrap_or_default().to_string(),
                    counts.0[0].to_string(),
                    counts.0[1].to_string(),
                    counts.0[2].to_string(),
                    counts.0[3].to_string(),
                    counts.0[4].to_string(),
                    counts.total().to_string(),
                    r.first_seen.map(devid_core::time::to_rfc3339).unwrap_or_default(),
                    r.last_seen.map(devid_core::time::to_rfc3339).unwrap_or_default(),
                ];
                for (i, cell) in cells.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    push_csv_cell(&mut out, cell);
                }
                out.extend_from_slice(b"\r\n");
            }
            paging = page.next_cursor.map(|cursor| ContributorPaging::After { cursor, page_size: EXPORT_BATCH_ROWS });
            if tx.send(Ok(bytes::Bytes::from(out))).await.is_err() {
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"contributors.csv\""));
    Ok(response)
}

/// One manual bot decision (documentation only: devid-core reads the body).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct BotDecisionRow {
    integration_id: i64,
    identity: String,
    /// true: a bot; false: a person, whatever the rules say; null: back to the rules.
    bot: Option<bool>,
}

/// Mark contributors as bots or people by hand; the decision outlives every later
/// upload and rule change (audited).
#[utoipa::path(
    post,
    path = "/v2/contributors/bots",
    tag = "contributors",
    request_body(content = Vec<BotDecisionRow>, content_type = "application/json"),
    responses(
        (status = 200, body = BotFlagResponse),
        (status = 400, description = "Invalid decisions: none applied", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn set_bots(
    State(state): State<AppState>,
    auth: Authenticated,
    request: Request,
) -> Result<Json<BotFlagResponse>, ApiError> {
    auth.require(Scope::DeveloperRecordsWrite)?;
    QueryParams::parse(request.uri().query(), &[])?;
    crate::body::require_json(
        request.headers(),
        "Bot decisions take a JSON body `[{\"integrationId\":1,\"identity\":\"ci-runner\",\"bot\":true}]` with `Content-Type: application/json`.",
    )?;
    let (parts, body) = request.into_parts();
    let bytes = crate::body::read_limited(body, &parts.headers, state.limits.max_json_body, "JSON body").await?;
    let integrations = state.store.integration_infos(auth.principal.account).await?;
    let decisions = plan_bot_decisions(&bytes, &integrations).map_err(|problems| {
        // Too many decisions is a bound of the body's array, stated in the document,
        // not a body too large to read: 400 like every other invalid body here.
        let mut error = ApiError::upload(problems);
        error.status = axum::http::StatusCode::BAD_REQUEST;
        error
    })?;
    let summary = state.store.set_bot_flags(&auth.change_context(), decisions).await?;
    super::coverage::changed(&state, auth.principal.account);
    Ok(Json(BotFlagResponse {
        status: "success".into(),
        message: "Bot decisions recorded; they hold over every later upload.".into(),
        summary: summary.into(),
    }))
}

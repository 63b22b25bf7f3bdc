//! The developer identity endpoints: uploads (current and previous API), deletes, the
//! JSON listing and the streamed CSV download.

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use devid_core::json_upload::JsonBody;
use devid_core::normalize::guard_formula;
use devid_core::plan::{Addressing, plan_delete};
use devid_core::time::parse_rfc3339;
use devid_core::types::{ApplicationType, Scope};
use devid_store::query::CursorKey;
use devid_store::{AccountId, DeleteSummary, IdentityQuery, IdentityRecord, Paging, SortKey, SortOrder, UploadSummary};
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
    params(("dryRun" = Option<bool>, Query, description = "Validate and report without changing anything")),
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
    upload(state, auth, request, JsonBody::Identities, Addressing::IntegrationId).await
}

/// Previous API: add or update identities addressed by application type (JSON).
#[utoipa::path(
    post,
    path = "/v2/developers/cloud-ids",
    tag = "identities",
    params(("dryRun" = Option<bool>, Query, description = "Validate and report without changing anything")),
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
    upload(state, auth, request, JsonBody::CloudIds, Addressing::ApplicationType).await
}

/// Previous API: add or update identities from a multipart CSV (`email,applicationType,cloudId`).
#[utoipa::path(
    post,
    path = "/v2/developers/cloud-ids/upload",
    tag = "identities",
    params(("dryRun" = Option<bool>, Query, description = "Validate and report without changing anything")),
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
    upload(state, auth, request, JsonBody::CloudIds, Addressing::ApplicationType).await
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
) -> Result<Json<UploadResponse>, ApiError> {
    auth.require(Scope::DeveloperRecordsWrite)?;
    let params = QueryParams::parse(request.uri().query(), &["dryRun"])?;
    let dry_run = params.flag("dryRun")?;
    let _permit = state.uploads.enter(crate::body::declared_length(request.headers())).await?;
    let started = std::time::Instant::now();
    let integrations = state.store.integration_infos(auth.principal.account).await?;
    let (plan, from_csv) = read_and_plan(request, &state, json_kind, csv_native, integrations).await?;
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
    if crate::body::content_kind(request.headers())? != crate::body::ContentKind::Json {
        return Err(ApiError::unsupported_media_type(
            "Deletes take a JSON body `[{\"integrationId\":1,\"identity\":\"dev-123\"}]` with `Content-Type: application/json`.",
        ));
    }
    let _permit = state.uploads.enter(crate::body::declared_length(request.headers())).await?;
    let parsed = read_json(request, &state, JsonBody::Delete).await?;
    let integrations = state.store.integration_infos(auth.principal.account).await?;
    let plan = plan_delete(parsed, &integrations).map_err(ApiError::upload)?;
    let summary = state.store.delete_identities(&auth.change_context(), plan, dry_run).await?;
    let message = if dry_run {
        "Dry run: the summary shows what would be deleted. Nothing was changed."
    } else {
        "Developer identities deleted successfully."
    };
    Ok(Json(DeleteResponse { status: "success", message: message.into(), summary, dry_run }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListMetadata {
    /// The page index asked for; `null` for a page reached by cursor.
    pub page: Option<u64>,
    pub page_size: u64,
    pub has_next: bool,
    pub total_count: u64,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListResponse {
    pub records: Vec<IdentityRecord>,
    /// Records in this page.
    pub count: usize,
    #[serde(rename = "_metadata")]
    pub metadata: ListMetadata,
}

const LIST_PARAMS: [&str; 11] = [
    "pageIndex",
    "pageSize",
    "sortKey",
    "sortOrder",
    "emails",
    "integrationIds",
    "applicationTypes",
    "searchValue",
    "updatedAfter",
    "cursor",
    "format",
];
pub const MAX_PAGE_SIZE: u64 = 1000;
/// Largest `pageIndex`: pageIndex × pageSize must fit the 64-bit signed OFFSET both
/// databases take (beyond it SQLite failed the query, a 500).
pub const MAX_PAGE_INDEX: u64 = i64::MAX as u64 / MAX_PAGE_SIZE;
const EXPORT_BATCH: u64 = 10_000;
const EXPORT_BATCHES_IN_FLIGHT: usize = 2;

/// List identities (JSON page), or download them all as CSV.
#[utoipa::path(
    get,
    path = "/v2/developers/identities",
    tag = "identities",
    params(
        ("pageIndex" = Option<u64>, Query, description = "0-based page (default 0)"),
        ("pageSize" = Option<u64>, Query, description = "1 to 1000 (default 50)"),
        ("sortKey" = Option<String>, Query, description = "email | integrationId | identity | updatedAt"),
        ("sortOrder" = Option<String>, Query, description = "asc | desc"),
        ("emails" = Option<String>, Query, description = "Comma-separated emails"),
        ("integrationIds" = Option<String>, Query, description = "Comma-separated integration ids"),
        ("applicationTypes" = Option<String>, Query, description = "Comma-separated application types"),
        ("searchValue" = Option<String>, Query, description = "Case-insensitive substring of email or identity"),
        ("updatedAfter" = Option<String>, Query, description = "RFC 3339 timestamp"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("format" = Option<String>, Query, description = "json | csv (or send Accept: text/csv)"),
    ),
    responses(
        (status = 200, description = "A page of identities, or the whole CSV", body = ListResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list_identities(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    auth.require(Scope::DeveloperRecordsRead)?;
    let params = QueryParams::parse(query.as_deref(), &LIST_PARAMS)?;
    let mut q = parse_filters(&params)?;
    let account = auth.principal.account;
    if wants_csv(&params, &headers)? {
        q.count_total = false;
        return Ok(csv_download(state, account, q));
    }
    let page_size = params.u64_in("pageSize", 1, MAX_PAGE_SIZE, 50)?;
    let fingerprint = query_fingerprint(&q);
    let page_index = match (params.get("cursor"), params.get("pageIndex")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_parameter(
                "cursor",
                "",
                "Send either `cursor` or `pageIndex`, not both: a cursor already says where the page starts.",
            ));
        }
        (Some(cursor), None) => {
            q.paging = Paging::After { cursor: decode_cursor(cursor, account, fingerprint)?, page_size };
            None
        }
        (None, _) => {
            let page_index = params.u64_in("pageIndex", 0, MAX_PAGE_INDEX, 0)?;
            q.paging = Paging::Offset { page_index, page_size };
            Some(page_index)
        }
    };
    let version = state.store.identities_version(account).await?;
    let cached_total = state.counts.get(account.0, fingerprint, version);
    q.count_total = cached_total.is_none();
    let offset = page_index.map(|i| i.saturating_mul(page_size)).filter(|o| *o > 0);
    // A deep offset page starts from the nearest position remembered (see `anchors`);
    // without one, it is read with the row before it, whose position is remembered
    // for the next request of this page.
    let mut reads_row_before = false;
    if let Some(offset) = offset {
        q.paging = match state.anchors.nearest(account.0, fingerprint, version, offset) {
            Some((at, cursor)) => Paging::Window { after: Some(cursor), skip: offset - at, page_size },
            None => {
                reads_row_before = true;
                Paging::Window { after: None, skip: offset - 1, page_size: page_size + 1 }
            }
        };
    }
    let mut page = state.store.list_identities(account, q).await?;
    if let Some(offset) = offset {
        if reads_row_before && !page.records.is_empty() {
            page.records.remove(0);
            if let Some(before) = page.first_cursor.take() {
                state.anchors.put(account.0, fingerprint, version, offset, before);
            }
        }
        if let Some(next) = &page.next_cursor {
            state.anchors.put(account.0, fingerprint, version, offset.saturating_add(page_size), next.clone());
        }
    }
    match cached_total {
        Some(total) => page.total_count = total,
        None => state.counts.put(account.0, fingerprint, version, page.total_count),
    }
    let next_cursor = page.next_cursor.as_ref().map(|k| encode_cursor(k, account, fingerprint));
    Ok(Json(ListResponse {
        count: page.records.len(),
        records: page.records,
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

fn parse_filters(params: &QueryParams) -> Result<IdentityQuery, ApiError> {
    let mut q = IdentityQuery::default();
    if let Some(raw) = params.get("sortKey") {
        q.sort = SortKey::parse(raw).ok_or_else(|| {
            ApiError::invalid_parameter(
                "sortKey",
                raw,
                format!("`sortKey` must be one of email, integrationId, identity, updatedAt; not `{raw}`."),
            )
        })?;
    }
    if let Some(raw) = params.get("sortOrder") {
        q.order = match raw.trim().to_ascii_lowercase().as_str() {
            "asc" => SortOrder::Asc,
            "desc" => SortOrder::Desc,
            _ => {
                return Err(ApiError::invalid_parameter(
                    "sortOrder",
                    raw,
                    format!("`sortOrder` must be asc or desc, not `{raw}`."),
                ));
            }
        };
    }
    if let Some(raw) = params.get("emails") {
        q.emails = list(raw).map(|e| e.to_lowercase()).collect();
    }
    if let Some(raw) = params.get("integrationIds") {
        q.integration_ids = list(raw)
            .map(|id| {
                devid_core::plan::parse_integration_id(id).ok_or_else(|| {
                    ApiError::invalid_parameter(
                        "integrationIds",
                        raw,
                        format!("`integrationIds` must be comma-separated positive whole numbers; `{id}` is not one."),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(raw) = params.get("applicationTypes") {
        q.application_types = list(raw)
            .map(|t| {
                t.parse::<ApplicationType>().map_err(|_| {
                    ApiError::invalid_parameter(
                        "applicationTypes",
                        raw,
                        format!(
                            "`{t}` is not an application type; expected one of {}.",
                            ApplicationType::allowed_values()
                        ),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(raw) = params.get("searchValue")
        && !raw.trim().is_empty()
    {
        q.search = Some(raw.trim().to_string());
    }
    if let Some(raw) = params.get("updatedAfter") {
        q.updated_after = Some(
            parse_rfc3339(raw)
                .map_err(|e| ApiError::invalid_parameter("updatedAfter", raw, format!("`updatedAfter`: {e}.")))?,
        );
    }
    Ok(q)
}

fn list(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// CSV when asked by `format=csv`, or by an Accept header naming text/csv before any
/// JSON type; `*/*` and no Accept header get JSON.
fn wants_csv(params: &QueryParams, headers: &HeaderMap) -> Result<bool, ApiError> {
    if let Some(format) = params.get("format") {
        return match format.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(true),
            "json" => Ok(false),
            _ => Err(ApiError::invalid_parameter(
                "format",
                format,
                format!("`format` must be json or csv, not `{format}`."),
            )),
        };
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    for media in accept.split(',') {
        match media.split(';').next().unwrap_or("").trim().to_ascii_lowercase().as_str() {
            "text/csv" => return Ok(true),
            "application/json" | "*/*" | "application/*" => return Ok(false),
            _ => {}
        }
    }
    Ok(false)
}

pub const CSV_HEADER: [&str; 5] = ["email", "integrationId", "identity", "applicationType", "updatedAt"];

/// Streams every matching row, a batch at a time by keyset, so the server holds a few
/// batches at most whatever the row count. A producer task reads and encodes the next
/// batches while the client receives the previous ones; rows are encoded where they
/// are read, straight from the database's buffers.
fn csv_download(state: AppState, account: AccountId, query: IdentityQuery) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(EXPORT_BATCHES_IN_FLIGHT);
    tokio::spawn(async move {
        let encoder: devid_store::ExportEncoder = std::sync::Arc::new(push_csv_row);
        if tx.send(Ok(bytes::Bytes::from(csv_header()))).await.is_err() {
            return;
        }
        let mut paging = Some(Paging::Offset { page_index: 0, page_size: EXPORT_BATCH });
        while let Some(page_request) = paging.take() {
            let batch = match state
                .store
                .export_batch(account, IdentityQuery { paging: page_request, ..query.clone() }, encoder.clone())
                .await
            {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::error!(error = %e, "CSV download aborted");
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
            paging = batch.next_cursor.map(|cursor| Paging::After { cursor, page_size: EXPORT_BATCH });
            if tx.send(Ok(bytes::Bytes::from(batch.bytes))).await.is_err() {
                return; // the client went away
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"developer-identities.csv\""),
    );
    response
}

fn csv_header() -> Vec<u8> {
    let mut out = CSV_HEADER.join(",").into_bytes();
    out.extend_from_slice(b"\r\n");
    out
}

/// One export row: the upload header's columns plus the type and the last change, each
/// cell guarded against spreadsheet formulas and quoted only where CSV needs it (the
/// same rule as the `csv` crate's writer, whose reader takes it back).
fn push_csv_row(row: &devid_store::ExportRow<'_>, out: &mut Vec<u8>) {
    let mut id = [0u8; 20];
    push_csv_cell(out, row.email);
    out.push(b',');
    push_csv_cell(out, format_id(row.integration_id, &mut id));
    out.push(b',');
    push_csv_cell(out, row.identity);
    out.push(b',');
    push_csv_cell(out, row.application_type);
    out.push(b',');
    // A timestamp starts with a digit and holds no character CSV quotes.
    devid_core::time::push_rfc3339(row.updated_at, out);
    out.extend_from_slice(b"\r\n");
}

fn push_csv_cell(out: &mut Vec<u8>, cell: &str) {
    let cell = guard_formula(cell);
    let bytes = cell.as_bytes();
    if !bytes.iter().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n')) {
        out.extend_from_slice(bytes);
        return;
    }
    out.push(b'"');
    for &b in bytes {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// `id` in decimal, in `buffer`, without allocating.
fn format_id(id: i64, buffer: &mut [u8; 20]) -> &str {
    let mut v = id.unsigned_abs();
    let mut start = buffer.len();
    loop {
        start -= 1;
        buffer[start] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if id < 0 {
        start -= 1;
        buffer[start] = b'-';
    }
    std::str::from_utf8(&buffer[start..]).unwrap_or("0")
}

/// Binds a cursor to the filters and sort it was issued for: FNV-1a over their debug
/// form, stable across processes and replicas (unlike std's randomly keyed hasher).
fn query_fingerprint(q: &IdentityQuery) -> u64 {
    let canonical = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        q.emails, q.integration_ids, q.application_types, q.search, q.updated_after, q.sort, q.order
    );
    fnv1a(canonical.as_bytes())
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[derive(Serialize, Deserialize)]
struct CursorToken {
    a: i64,
    q: u64,
    k: CursorKey,
    c: u64,
}

fn encode_cursor(key: &CursorKey, account: AccountId, fingerprint: u64) -> String {
    let check = cursor_check(key, account.0, fingerprint);
    let token = CursorToken { a: account.0, q: fingerprint, k: key.clone(), c: check };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
}

fn cursor_check(key: &CursorKey, account: i64, fingerprint: u64) -> u64 {
    fnv1a(format!("devid-cursor|{account}|{fingerprint}|{key:?}").as_bytes())
}

fn decode_cursor(raw: &str, account: AccountId, fingerprint: u64) -> Result<CursorKey, ApiError> {
    let invalid = |why: &str| {
        let mut problems = devid_core::Problems::new();
        let message =
            format!("The cursor {why}. Start again from the first page (no cursor) with the same filters and sort.");
        problems.add_with_reason(
            devid_core::ErrorType::InvalidCursor,
            "cursor",
            devid_core::errors::Position::Whole,
            raw,
            Some(message.clone()),
        );
        ApiError {
            status: axum::http::StatusCode::BAD_REQUEST,
            message,
            errors: problems.into_groups(),
            retry_after: None,
        }
    };
    let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| invalid("is not one devid issued"))?;
    let token: CursorToken = serde_json::from_slice(&bytes).map_err(|_| invalid("is not one devid issued"))?;
    if token.c != cursor_check(&token.k, token.a, token.q) {
        return Err(invalid("has been altered"));
    }
    if token.a != account.0 {
        return Err(invalid("belongs to another account"));
    }
    if token.q != fingerprint {
        return Err(invalid("was issued for other filters or another sort"));
    }
    Ok(token.k)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written encoder must write exactly what the `csv` crate would.
    #[test]
    fn export_rows_are_encoded_as_the_csv_crate_would() {
        let cells = [
            "plain",
            "",
            "with,comma",
            "with \"quotes\"",
            "line\nbreak",
            "cr\rhere",
            "=SUM(A1)",
            "+1",
            "-2",
            "@x",
            "'=already",
            " lead",
            "ünïcødé",
            "\"",
            ",",
            "tab\tinside",
        ];
        for (n, cell) in cells.iter().enumerate() {
            let row = devid_store::ExportRow {
                email: cell,
                integration_id: [-7, 0, 1, 42, i64::MAX, i64::MIN][n % 6],
                application_type: "GITHUB",
                identity: cells[(n + 3) % cells.len()],
                updated_at: 1_764_000_000_123_456,
            };
            let mut ours = Vec::new();
            push_csv_row(&row, &mut ours);
            let mut expected = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
            let id = row.integration_id.to_string();
            let updated = devid_core::time::to_rfc3339(row.updated_at);
            let fields = [row.email, &id, row.identity, row.application_type, &updated];
            expected.write_record(fields.iter().map(|f| guard_formula(f).into_owned())).expect("write");
            let expected = expected.into_inner().expect("flush");
            assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&expected), "cell {cell:?}");
        }
    }
}

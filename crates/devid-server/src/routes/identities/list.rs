//! The JSON listing of identities: filters, sort, offset and keyset paging, with
//! totals and deep-page positions remembered per account (see `counts`, `anchors`).

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use devid_core::time::parse_rfc3339;
use devid_core::types::{ApplicationType, Scope};
use devid_store::{IdentityQuery, IdentityRecord, Paging, SortKey, SortOrder};
use serde::Serialize;

use super::export::CsvColumns;
use crate::AppState;
use crate::auth::Authenticated;
use crate::cursor::FilterDigest;
use crate::error::{ApiError, ErrorBody};
use crate::routes::QueryParams;

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

const LIST_PARAMS: [&str; 12] = [
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
    "provenance",
];
pub const MAX_PAGE_SIZE: u64 = 1000;
/// Largest `pageIndex`: pageIndex × pageSize must fit the 64-bit signed OFFSET both
/// databases take (beyond it SQLite failed the query, a 500).
pub const MAX_PAGE_INDEX: u64 = i64::MAX as u64 / MAX_PAGE_SIZE;

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
        ("provenance" = Option<bool>, Query, description = "CSV only: add the columns locked and source after updatedAt (JSON records always carry them)"),
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
    // Checked on both paths: the JSON page ignores it, but a bad value is still an error.
    let provenance = params.flag("provenance")?;
    if wants_csv(&params, &headers)? {
        // The download has no pages, but a bad paging parameter is still an error.
        params.u64_in("pageSize", 1, MAX_PAGE_SIZE, 50)?;
        params.u64_in("pageIndex", 0, MAX_PAGE_INDEX, 0)?;
        q.count_total = false;
        let columns = if provenance { CsvColumns::WithProvenance } else { CsvColumns::Harness };
        return super::export::csv_download(state, account, q, columns);
    }
    let page_size = params.u64_in("pageSize", 1, MAX_PAGE_SIZE, 50)?;
    let filter = FilterDigest::of(&q);
    let signer = state.cursor_signer().await?;
    // An empty `cursor=` is no cursor: what a client sends that fills the next page's
    // cursor from a `null` it was given.
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
            q.paging = Paging::After { cursor: signer.decode(cursor, account, &filter)?, page_size };
            None
        }
        (None, _) => {
            let page_index = params.u64_in("pageIndex", 0, MAX_PAGE_INDEX, 0)?;
            q.paging = Paging::Offset { page_index, page_size };
            Some(page_index)
        }
    };
    let version = state.store.identities_version(account).await?;
    let cached_total = state.counts.get(account.0, &filter, version);
    q.count_total = cached_total.is_none();
    let offset = page_index.map(|i| i.saturating_mul(page_size)).filter(|o| *o > 0);
    // A deep offset page starts from the nearest position remembered (see `anchors`);
    // without one, it is read with the row before it, whose position is remembered
    // for the next request of this page.
    let mut reads_row_before = false;
    if let Some(offset) = offset {
        q.paging = match state.anchors.nearest(account.0, &filter, version, offset) {
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
                state.anchors.put(account.0, filter, version, offset, before);
            }
        }
        if let Some(next) = &page.next_cursor {
            state.anchors.put(account.0, filter, version, offset.saturating_add(page_size), next.clone());
        }
    }
    match cached_total {
        Some(total) => page.total_count = total,
        None => state.counts.put(account.0, filter, version, page.total_count),
    }
    let next_cursor = page.next_cursor.as_ref().map(|k| signer.encode(k, account, &filter));
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
        q.order = match raw.to_ascii_lowercase().as_str() {
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
        at_most_listed("emails", raw)?;
    }
    q.integration_ids = integration_ids(params)?;
    if let Some(raw) = params.get("applicationTypes") {
        if raw.trim().is_empty() {
            // An empty filter is a client's mistake (a list it meant to fill), not "all".
            return Err(ApiError::invalid_parameter(
                "applicationTypes",
                raw,
                format!(
                    "`applicationTypes` is empty: list comma-separated types ({}), or leave the parameter out for all.",
                    ApplicationType::allowed_values()
                ),
            ));
        }
        q.application_types = entries(raw)
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
        at_most_listed("applicationTypes", raw)?;
    }
    q.search = search_value(params, "email or identity")?;
    if let Some(raw) = params.get("updatedAfter") {
        q.updated_after = Some(
            parse_rfc3339(raw)
                .map_err(|e| ApiError::invalid_parameter("updatedAfter", raw, format!("`updatedAfter`: {e}.")))?,
        );
    }
    Ok(q)
}

/// The `integrationIds` filter: comma-separated ids, each a positive whole number.
pub(crate) fn integration_ids(params: &QueryParams) -> Result<Vec<i64>, ApiError> {
    let Some(raw) = params.get("integrationIds") else { return Ok(Vec::new()) };
    let ids = entries(raw)
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
    at_most_listed("integrationIds", raw)?;
    Ok(ids)
}

/// The `searchValue` filter, trimmed; `None` when blank. `what` names what it searches,
/// for the error.
pub(crate) fn search_value(params: &QueryParams, what: &str) -> Result<Option<String>, ApiError> {
    let Some(raw) = params.get("searchValue").filter(|raw| !raw.trim().is_empty()) else { return Ok(None) };
    if raw.trim().chars().count() > MAX_SEARCH_CHARS {
        return Err(ApiError::invalid_parameter(
            "searchValue",
            raw,
            format!(
                "`searchValue` is longer than {MAX_SEARCH_CHARS} characters, the longest an identity can be, so it could match nothing; send a shorter part of the {what}."
            ),
        ));
    }
    Ok(Some(raw.trim().to_string()))
}

/// Longest `searchValue`: no email (254) or identity (255) is longer, and SQLite
/// refuses LIKE patterns past 50,000 bytes.
pub const MAX_SEARCH_CHARS: usize = devid_core::normalize::MAX_IDENTITY_LEN;
/// Most values one list filter may name; each is a bound parameter of the query, and
/// 100 of the longest emails still fit the 32 KiB a parameter may hold.
pub const MAX_FILTER_VALUES: usize = 100;

/// Counts what the client listed, empty entries included, as the document's `maxItems` does.
pub(crate) fn at_most_listed(name: &str, raw: &str) -> Result<(), ApiError> {
    let count = if raw.is_empty() { 0 } else { raw.split(',').count() };
    if count > MAX_FILTER_VALUES {
        return Err(ApiError::invalid_parameter(
            name,
            raw,
            format!("`{name}` lists {count} values; at most {MAX_FILTER_VALUES} are accepted. Split the request."),
        ));
    }
    Ok(())
}

fn list(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Every entry of a list whose entries must each be valid (`1,,2` names an empty one);
/// an empty parameter is an empty list.
pub(crate) fn entries(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(',').map(str::trim).filter(move |_| !raw.trim().is_empty())
}

/// CSV when asked by `format=csv`, or by an Accept header naming text/csv before any
/// JSON type; `*/*` and no Accept header get JSON.
pub(crate) fn wants_csv(params: &QueryParams, headers: &HeaderMap) -> Result<bool, ApiError> {
    if let Some(format) = params.get("format") {
        return match format.to_ascii_lowercase().as_str() {
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

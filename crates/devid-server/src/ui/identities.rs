//! The identities table with the listing's filters, sort and keyset paging, and the
//! edits a person makes to one mapping: reassign, lock or unlock, delete (confirmed).

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use devid_core::types::Scope;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Section, count, csrf};
use super::session::{CsrfForm, CsrfProtected, UiSession};
use super::{Notice, UiError, api_request, encode, integration_id_json, json_of, redirect_with, render};
use crate::AppState;
use crate::routes::identities::list::list_identities;
use crate::routes::identities::locks::{lock_identities, unlock_identities};
use crate::routes::identities::{delete_identities, upload_from_ui};

const PAGE_SIZE: u64 = 50;

/// One identity as the listing's JSON gives it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct IdentityRow {
    pub email: String,
    pub integration_id: i64,
    pub application_type: String,
    pub identity: String,
    pub updated_at: String,
    #[serde(default)]
    pub locked: bool,
    #[serde(default)]
    pub source: String,
}

/// The listing's `_metadata`, in Harness's snake_case.
#[derive(Debug, Deserialize)]
struct ListMetadata {
    total_count: u64,
    has_next: bool,
    #[serde(default)]
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct IdentityList {
    pub records: Vec<IdentityRow>,
    #[serde(rename = "_metadata")]
    metadata: ListMetadata,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentitiesQuery {
    #[serde(default)]
    search: Option<String>,
    #[serde(default)]
    integration_id: Option<String>,
    #[serde(default)]
    sort: Option<String>,
    #[serde(default)]
    order: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl IdentitiesQuery {
    fn filters(&self) -> Vec<(&'static str, &str)> {
        let mut pairs = Vec::new();
        if let Some(s) = non_empty(&self.search) {
            pairs.push(("search", s));
        }
        if let Some(i) = non_empty(&self.integration_id) {
            pairs.push(("integrationId", i));
        }
        if let Some(s) = non_empty(&self.sort) {
            pairs.push(("sort", s));
        }
        if let Some(o) = non_empty(&self.order) {
            pairs.push(("order", o));
        }
        pairs
    }

    fn api_query(&self) -> String {
        let mut q = format!("pageSize={PAGE_SIZE}");
        for (name, value) in self.filters() {
            let api_name = match name {
                "search" => "searchValue",
                "integrationId" => "integrationIds",
                "sort" => "sortKey",
                _ => "sortOrder",
            };
            q.push_str(&format!("&{api_name}={}", encode(value)));
        }
        if let Some(c) = non_empty(&self.cursor) {
            q.push_str(&format!("&cursor={}", encode(c)));
        }
        q
    }

    fn link(&self, cursor: Option<&str>) -> String {
        let mut q = String::from("/ui/identities?");
        for (name, value) in self.filters() {
            q.push_str(&format!("{name}={}&", encode(value)));
        }
        if let Some(c) = cursor {
            q.push_str(&format!("cursor={}", encode(c)));
        }
        q.trim_end_matches(['&', '?']).to_string()
    }
}

pub async fn page(
    State(state): State<AppState>,
    session: UiSession,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<IdentitiesQuery>,
) -> Result<Response, UiError> {
    let response =
        list_identities(State(state), session.auth.clone(), HeaderMap::new(), RawQuery(Some(query.api_query()))).await;
    let list: IdentityList = json_of(response).await?;
    let notice = Notice::take(&headers);
    let back = query.link(non_empty(&query.cursor));
    let selected = |field: &Option<String>, value: &str| non_empty(field) == Some(value);
    let body = html! {
        h1 { "Identities" }
        form.filters method="get" action="/ui/identities" role="search" {
            label for="search" { "Email or identity contains" }
            input #search type="search" name="search" value=[non_empty(&query.search)];
            label for="integration" { "Integration id" }
            input #integration type="text" inputmode="numeric" name="integrationId" size="6" value=[non_empty(&query.integration_id)];
            label for="sort" { "Sort by" }
            select #sort name="sort" {
                @for (value, label) in [("email", "email"), ("integrationId", "integration"), ("identity", "identity"), ("updatedAt", "last change")] {
                    option value=(value) selected[selected(&query.sort, value)] { (label) }
                }
            }
            label for="order" { "Order" }
            select #order name="order" {
                option value="asc" selected[selected(&query.order, "asc")] { "ascending" }
                option value="desc" selected[selected(&query.order, "desc")] { "descending" }
            }
            button type="submit" { "Show" }
        }
        p { (count(list.metadata.total_count)) " identities match." }
        (table(&session, &list.records, &back))
        nav.pager aria-label="Pages" {
            @if non_empty(&query.cursor).is_some() { a href=(query.link(None)) { "← First page" } }
            @if list.metadata.has_next {
                @if let Some(next) = &list.metadata.next_cursor { a href=(query.link(Some(next))) rel="next" { "Next →" } }
            }
        }
    };
    Ok(render(&headers, layout::page(&session, Section::Identities, "Identities", notice.as_ref(), body)))
}

/// The identities with the controls the key may use; shared with the developer page.
pub(super) fn table(session: &UiSession, rows: &[IdentityRow], back: &str) -> Markup {
    let writable = session.can(Scope::DeveloperRecordsWrite);
    let admin = session.can(Scope::Admin);
    html! {
        div.scroll { table.identities {
            thead { tr {
                th scope="col" { "Email" } th scope="col" { "Integration" } th scope="col" { "Identity" }
                th scope="col" { "Source" } th scope="col" { "Locked" } th scope="col" { "Changed" }
                @if writable { th scope="col" { "Actions" } }
            } }
            tbody {
                @for r in rows {
                    tr data-identity=(r.identity) {
                        td { a href=(format!("/ui/developer?email={}", encode(&r.email))) { (r.email) } }
                        td { (r.application_type) " #" (r.integration_id) }
                        td { code { (r.identity) } }
                        td { (r.source) }
                        td { @if r.locked { span.locked title="A person confirmed this mapping; uploads cannot move it" { "🔒 locked" } } @else { "no" } }
                        td { time datetime=(r.updated_at) { (r.updated_at.get(..10).unwrap_or(&r.updated_at)) } }
                        @if writable {
                            td.actions { (row_actions(session, r, admin, back)) }
                        }
                    }
                }
            }
        } }
    }
}

fn row_actions(session: &UiSession, r: &IdentityRow, admin: bool, back: &str) -> Markup {
    let label = format!("{} in integration {}", r.identity, r.integration_id);
    html! {
        @if !r.locked || admin {
            form.inline method="post" action="/ui/identities/lock" {
                (csrf(session)) (key_fields(r)) input type="hidden" name="back" value=(back);
                input type="hidden" name="locked" value=(if r.locked { "false" } else { "true" });
                button type="submit" aria-label=(format!("{} {label}", if r.locked { "Unlock" } else { "Lock" })) {
                    @if r.locked { "Unlock" } @else { "Lock" } }
            }
        }
        @if !r.locked || admin {
            details.reassign {
                summary { "Reassign" }
                form method="post" action="/ui/identities/reassign" {
                    (csrf(session)) (key_fields(r)) input type="hidden" name="back" value=(back);
                    @if r.locked { input type="hidden" name="force" value="true"; }
                    label { "New email for " (label) input type="email" name="email" required; }
                    button type="submit" { "Move" }
                }
            }
            a href=(format!("/ui/identities/delete?integrationId={}&identity={}&back={}", r.integration_id, encode(&r.identity), encode(back)))
                aria-label=(format!("Delete {label}")) { "Delete" }
        }
    }
}

fn key_fields(r: &IdentityRow) -> Markup {
    html! {
        input type="hidden" name="integrationId" value=(r.integration_id);
        input type="hidden" name="identity" value=(r.identity);
    }
}

/// Only pages of the UI are returned to after a form.
pub(super) fn back_to(back: Option<&str>) -> &str {
    match back {
        Some(b) if b.starts_with("/ui/") && !b.contains("//") && !b.contains('\\') => b,
        _ => "/ui/identities",
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    integration_id: String,
    #[serde(default)]
    identity: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    locked: String,
    #[serde(default)]
    force: String,
    #[serde(default)]
    back: Option<String>,
}

impl CsrfProtected for IdentityForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl IdentityForm {
    /// The row as the API's lock and delete bodies take it; the API validates it.
    fn key_body(&self) -> String {
        let id = integration_id_json(&self.integration_id);
        serde_json::json!([{ "integrationId": id, "identity": self.identity }]).to_string()
    }
}

fn notice_of<T>(result: Result<axum::Json<T>, crate::error::ApiError>, ok: impl FnOnce(T) -> String) -> Notice {
    match result {
        Ok(axum::Json(value)) => Notice { ok: true, text: ok(value) },
        Err(e) => Notice { ok: false, text: UiError::from(e).message() },
    }
}

pub async fn set_lock(
    State(state): State<AppState>,
    CsrfForm(session, form): CsrfForm<IdentityForm>,
) -> Result<Response, UiError> {
    let request = api_request("/", "application/json", form.key_body());
    let result = if form.locked == "false" {
        unlock_identities(State(state), session.auth.clone(), request).await
    } else {
        lock_identities(State(state), session.auth.clone(), request).await
    };
    let notice = notice_of(result, |r| r.message);
    Ok(redirect_with(back_to(form.back.as_deref()), notice, session.secure))
}

pub async fn reassign(
    State(state): State<AppState>,
    CsrfForm(session, form): CsrfForm<IdentityForm>,
) -> Result<Response, UiError> {
    let id = integration_id_json(&form.integration_id);
    let body = serde_json::json!([{ "email": form.email.trim(), "integrationId": id, "identity": form.identity }]);
    let uri = if form.force == "true" { "/?force=true" } else { "/" };
    let request = api_request(uri, "application/json", body.to_string());
    let result = upload_from_ui(state, session.auth.clone(), request).await;
    let email = form.email.trim().to_lowercase();
    let notice = notice_of(result, |r| {
        if r.summary.reassigned + r.summary.created > 0 {
            format!("{} now belongs to {email}, locked.", form.identity)
        } else {
            format!("{} already belonged to {email}; it is locked now.", form.identity)
        }
    });
    Ok(redirect_with(back_to(form.back.as_deref()), notice, session.secure))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteQuery {
    #[serde(default)]
    integration_id: String,
    #[serde(default)]
    identity: String,
    #[serde(default)]
    back: Option<String>,
}

pub async fn confirm_delete(
    session: UiSession,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<DeleteQuery>,
) -> Result<Response, UiError> {
    let back = back_to(query.back.as_deref());
    let body = html! {
        h1 { "Delete an identity?" }
        p { "Identity " code { (query.identity) } " of integration " (query.integration_id)
            " will no longer be mapped to any developer. The Changes page can restore it." }
        form method="post" action="/ui/identities/delete" {
            (csrf(&session))
            input type="hidden" name="integrationId" value=(query.integration_id);
            input type="hidden" name="identity" value=(query.identity);
            input type="hidden" name="back" value=(back);
            button.danger type="submit" { "Delete it" }
            " " a href=(back) { "Cancel" }
        }
    };
    Ok(render(&headers, layout::page(&session, Section::Identities, "Delete an identity", None, body)))
}

pub async fn delete(
    State(state): State<AppState>,
    CsrfForm(session, form): CsrfForm<IdentityForm>,
) -> Result<Response, UiError> {
    let request = api_request("/", "application/json", form.key_body());
    let result = delete_identities(State(state), session.auth.clone(), request).await;
    let notice = notice_of(result, |r| {
        if r.summary.deleted > 0 {
            format!("Deleted {}. The Changes page can restore it.", form.identity)
        } else {
            format!("{} was not mapped; nothing was deleted.", form.identity)
        }
    });
    Ok(redirect_with(back_to(form.back.as_deref()), notice, session.secure))
}

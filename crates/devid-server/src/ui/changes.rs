//! The changes timeline: every change set of the account, with a revert button for
//! admins. A revert is itself a change set, so a wrong revert is undone the same way.

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use devid_core::change::ChangeKind;
use devid_core::types::Scope;
use devid_store::changes::ChangeSet;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Section, count, csrf};
use super::session::{CsrfForm, CsrfProtected, UiSession};
use super::{Notice, UiError, encode, json_of, redirect_with, render};
use crate::AppState;
use crate::routes::changes::{list_changes, revert_change};

const PAGE_SIZE: u64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct ChangesQuery {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    after: Option<i64>,
}

impl ChangesQuery {
    fn filters(&self) -> String {
        let mut q = String::new();
        if let Some(k) = self.kind.as_deref().filter(|k| !k.is_empty()) {
            q.push_str(&format!("&kind={}", encode(k)));
        }
        if let Some(e) = self.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
            q.push_str(&format!("&email={}", encode(e)));
        }
        q
    }
}

pub async fn page(
    State(state): State<AppState>,
    session: UiSession,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<ChangesQuery>,
) -> Result<Response, UiError> {
    let after = query.after.unwrap_or(0);
    let api_query = format!("limit={PAGE_SIZE}&after={after}{}", query.filters());
    let feed = list_changes(State(state), session.auth.clone(), RawQuery(Some(api_query))).await?.0;
    let notice = Notice::take(&headers);
    let back = format!("/ui/changes?after={after}{}", query.filters());
    let body = html! {
        h1 { "Changes" }
        p { "Every write is one change set, oldest first. Reverting one applies its exact inverse in one transaction "
            "and is recorded as a change set of its own." }
        form.filters method="get" action="/ui/changes" {
            label for="kind" { "Kind" }
            select #kind name="kind" {
                option value="" { "all" }
                @for k in ChangeKind::ALL.iter().map(|k| k.as_str()) {
                    option value=(k) selected[query.kind.as_deref() == Some(k)] { (k) }
                }
            }
            label for="email" { "Email" }
            input #email type="email" name="email" value=[query.email.as_deref()];
            button type="submit" { "Show" }
        }
        (timeline(&session, &feed.changes, &back))
        nav.pager aria-label="Pages" {
            @if after > 0 { a href=(format!("/ui/changes?after=0{}", query.filters())) { "← From the start" } }
            @if feed.has_next { a href=(format!("/ui/changes?after={}{}", feed.next_after, query.filters())) rel="next" { "Later changes →" } }
        }
    };
    Ok(render(&headers, layout::page(&session, Section::Changes, "Changes", notice.as_ref(), body)))
}

fn counts(change: &ChangeSet) -> String {
    change.counts.iter().map(|(k, n)| format!("{} {k}", count(*n))).collect::<Vec<_>>().join(", ")
}

/// Change sets as a table, with revert for admins; shared with the developer page.
pub(super) fn timeline(session: &UiSession, changes: &[ChangeSet], back: &str) -> Markup {
    let admin = session.can(Scope::Admin);
    html! {
        @if changes.is_empty() {
            p { "No changes." }
        } @else {
            div.scroll { table.changes {
                thead { tr {
                    th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Kind" }
                    th scope="col" { "What" } th scope="col" { "Key" }
                    @if admin { th scope="col" { "Undo" } }
                } }
                tbody {
                    @for c in changes {
                        tr data-change=(c.id) data-kind=(c.kind) {
                            td { (c.id) }
                            td { time datetime=(c.at) { (c.at.get(..19).unwrap_or(&c.at).replace('T', " ")) } }
                            td { (c.kind) @if let Some(r) = c.reverts { " of #" (r) } }
                            td { (counts(c)) }
                            td { code { (c.key_id.as_deref().unwrap_or("—")) } }
                            @if admin {
                                td {
                                    form.inline method="post" action=(format!("/ui/changes/{}/revert", c.id)) {
                                        (csrf(session))
                                        input type="hidden" name="back" value=(back);
                                        button type="submit" aria-label=(format!("Revert change set {}", c.id)) { "Revert" }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct RevertForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    back: Option<String>,
}

impl CsrfProtected for RevertForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reverted {
    change: Option<RevertChange>,
    summary: RevertCounts,
}

#[derive(Debug, Deserialize)]
struct RevertChange {
    id: i64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RevertCounts {
    deleted: u64,
    restored: u64,
    moved_back: u64,
    relocked: u64,
}

pub async fn revert(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(session, form): CsrfForm<RevertForm>,
) -> Result<Response, UiError> {
    let back = super::identities::back_to(form.back.as_deref());
    let back = if back == "/ui/identities" && form.back.is_none() { "/ui/changes" } else { back };
    let outcome: Result<Reverted, UiError> =
        json_of(revert_change(State(state), session.auth.clone(), Path(id.clone()), RawQuery(None)).await).await;
    let notice = match outcome {
        Ok(r) => {
            let s = &r.summary;
            Notice {
                ok: true,
                text: match r.change {
                    Some(c) => format!(
                        "Reverted change set {id} as change set {}: {} deleted, {} restored, {} moved back, {} relocked.",
                        c.id, s.deleted, s.restored, s.moved_back, s.relocked
                    ),
                    None => format!("Change set {id} had nothing left to revert."),
                },
            }
        }
        Err(e) => Notice { ok: false, text: e.message() },
    };
    Ok(redirect_with(back, notice, session.secure))
}

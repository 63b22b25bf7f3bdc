//! The review queue: what devid suggests, why in plain words, and one click to accept,
//! reject or skip; `auto` suggestions can be accepted together.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use devid_core::resolve::Rule;
use devid_core::types::{ApplicationType, IntegrationId, Scope};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Section, count, csrf};
use super::session::{CsrfForm, CsrfProtected, UiSession};
use super::{Notice, UiError, api_request, encode, redirect_with, render};
use crate::AppState;
use crate::api::suggestions::{PartyRecord, SuggestionKind, SuggestionRecord};
use crate::error::ApiError;
use crate::routes::suggestions::{accept_batch, accept_one, list_suggestions, reject_one, skip_one};

const PAGE_SIZE: u64 = 25;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewQuery {
    #[serde(default)]
    tier: Option<String>,
    #[serde(default)]
    integration_id: Option<String>,
    #[serde(default)]
    page_index: Option<u64>,
}

impl ReviewQuery {
    /// The API's query for this page; empty filters are left out.
    fn api_query(&self) -> String {
        let mut q = format!("pageSize={PAGE_SIZE}&pageIndex={}", self.page_index.unwrap_or(0));
        if let Some(t) = self.tier.as_deref().filter(|t| !t.is_empty()) {
            q.push_str(&format!("&tier={}", encode(t)));
        }
        if let Some(i) = self.integration_id.as_deref().filter(|i| !i.is_empty()) {
            q.push_str(&format!("&integrationId={}", encode(i)));
        }
        q
    }

    fn link(&self, page_index: u64) -> String {
        let mut q = format!("/ui/review?pageIndex={page_index}");
        if let Some(t) = self.tier.as_deref().filter(|t| !t.is_empty()) {
            q.push_str(&format!("&tier={}", encode(t)));
        }
        if let Some(i) = self.integration_id.as_deref().filter(|i| !i.is_empty()) {
            q.push_str(&format!("&integrationId={}", encode(i)));
        }
        q
    }
}

pub async fn page(
    State(state): State<AppState>,
    session: UiSession,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<ReviewQuery>,
) -> Result<Response, UiError> {
    let list = list_suggestions(State(state.clone()), session.auth.clone(), RawQuery(Some(query.api_query()))).await?.0;
    let integrations = integration_types(&state, &session).await?;
    let notice = Notice::take(&headers);
    let writable = session.can(Scope::DeveloperRecordsWrite);
    let back = query.link(query.page_index.unwrap_or(0));
    let m = &list.metadata;
    let body = html! {
        h1 { "Review queue" }
        p { (count(m.total_count)) " suggestions: " (count(m.auto_count)) " auto (strong evidence, nothing contradicts them), "
            (count(m.review_count)) " for review (a person should read them). Accepting maps the contributors and locks the mappings; "
            "rejecting remembers that the pairing is wrong, so it never returns." }
        form.filters method="get" action="/ui/review" {
            label for="tier" { "Tier" }
            select #tier name="tier" {
                option value="" selected[query.tier.as_deref().unwrap_or("").is_empty()] { "all" }
                option value="auto" selected[query.tier.as_deref() == Some("auto")] { "auto" }
                option value="review" selected[query.tier.as_deref() == Some("review")] { "review" }
            }
            label for="integration" { "Integration" }
            select #integration name="integrationId" {
                option value="" { "all" }
                @for (id, t) in sorted(&integrations) {
                    option value=(id) selected[query.integration_id.as_deref() == Some(id.to_string().as_str())] {
                        (t) " #" (id) }
                }
            }
            button type="submit" { "Filter" }
        }
        @if writable && m.auto_count > 0 {
            form.batch method="post" action="/ui/review/accept-auto" {
                (csrf(&session))
                button type="submit" { "Accept all " (count(m.auto_count)) " auto suggestions" }
                span.hint { " One change set: the Changes page can undo it whole." }
            }
        }
        @if list.records.is_empty() {
            p.empty { "Nothing to review here." }
        }
        @for s in &list.records {
            (suggestion(s, &integrations, writable.then_some(&session), &back))
        }
        nav.pager aria-label="Pages" {
            @if m.page > 0 { a href=(query.link(m.page - 1)) rel="prev" { "← Previous" } }
            span { "Page " (m.page + 1) }
            @if m.has_next { a href=(query.link(m.page + 1)) rel="next" { "Next →" } }
        }
    };
    Ok(render(&headers, layout::page(&session, Section::Review, "Review queue", notice.as_ref(), body)))
}

fn sorted(types: &HashMap<IntegrationId, ApplicationType>) -> Vec<(IntegrationId, ApplicationType)> {
    let mut all: Vec<_> = types.iter().map(|(i, t)| (*i, *t)).collect();
    all.sort();
    all
}

pub(super) async fn integration_types(
    state: &AppState,
    session: &UiSession,
) -> Result<HashMap<IntegrationId, ApplicationType>, UiError> {
    let infos = state.store.integration_infos(session.auth.principal.account).await.map_err(ApiError::from)?;
    Ok(infos.into_iter().map(|i| (i.id, i.application_type)).collect())
}

fn integration_label(types: &HashMap<IntegrationId, ApplicationType>, id: IntegrationId) -> String {
    match types.get(&id) {
        Some(t) => format!("{t} #{id}"),
        None => format!("integration #{id}"),
    }
}

fn party(types: &HashMap<IntegrationId, ApplicationType>, p: &PartyRecord) -> String {
    match (p.integration_id, &p.identity, &p.email) {
        (Some(i), Some(identity), _) => format!("{identity} in {}", integration_label(types, i)),
        (_, _, Some(email)) => format!("developer {email}"),
        _ => p.kind.clone(),
    }
}

/// "the same email jane@x.com: jdoe in github #1 and developer jane@x.com".
pub(super) fn evidence_sentence(
    types: &HashMap<IntegrationId, ApplicationType>,
    rule: &str,
    value: &str,
    between: &[PartyRecord],
) -> String {
    let words = Rule::parse(rule).map_or_else(|| format!("{rule}: {value}"), |r| r.in_plain_words(value));
    let parties: Vec<String> = between.iter().map(|p| party(types, p)).collect();
    let mut sentence = words;
    if !parties.is_empty() {
        sentence.push_str(" — ");
        sentence.push_str(&parties.join(" and "));
    }
    let mut chars = sentence.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => sentence,
    }
}

fn suggestion(
    s: &SuggestionRecord,
    types: &HashMap<IntegrationId, ApplicationType>,
    writer: Option<&UiSession>,
    back: &str,
) -> Markup {
    let heading = match (s.kind, s.developer.existing) {
        (SuggestionKind::Link, _) | (_, true) => format!("Map to {}", s.developer.email),
        (SuggestionKind::NewDeveloper, false) => format!("New developer {}", s.developer.email),
    };
    html! {
        article.suggestion data-id=(s.id) aria-labelledby=(format!("s-{}", s.id)) {
            header {
                h2 id=(format!("s-{}", s.id)) { (heading) }
                span class=(format!("tier {}", s.tier)) { (s.tier) }
                span.confidence { (format!("{:.0} %", s.confidence * 100.0)) " confidence" }
            }
            h3.visually-hidden { "Contributors" }
            ul.contributors {
                @for c in &s.contributors {
                    li {
                        span.muted { (integration_label(types, c.integration_id)) } " "
                        code { (c.identity) }
                        @if let Some(name) = &c.name { " · " (name) }
                        @if let Some(email) = &c.email { " · " (email) }
                        " · " (count(c.activity)) " activity"
                    }
                }
            }
            h3 { "Why" }
            ul.evidence {
                @for e in &s.evidence {
                    li { (evidence_sentence(types, &e.rule, &e.value, &e.between)) }
                }
            }
            @if let Some(session) = writer {
                div.actions {
                    @for (decision, label, class) in [("accept", "Accept", "primary"), ("reject", "Reject", "danger"), ("skip", "Skip", "")] {
                        form method="post" action=(format!("/ui/review/{}/{decision}", s.id)) {
                            (csrf(session))
                            input type="hidden" name="back" value=(back);
                            button type="submit" class=(class) aria-label=(format!("{label} {heading}")) { (label) }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    back: Option<String>,
}

impl CsrfProtected for DecisionForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

fn back_to(back: Option<&str>) -> &str {
    match back {
        Some(b) if b.starts_with("/ui/review") && !b.contains("//") => b,
        _ => "/ui/review",
    }
}

pub async fn decide(
    State(state): State<AppState>,
    Path((id, decision)): Path<(String, String)>,
    CsrfForm(session, form): CsrfForm<DecisionForm>,
) -> Result<Response, UiError> {
    let back = back_to(form.back.as_deref());
    let auth = session.auth.clone();
    let outcome = match decision.as_str() {
        "accept" => accept_one(State(state), auth, Path(id)).await.map(|r| {
            let s = &r.0.summary;
            format!(
                "Accepted: {} identit{} created, {} moved, all locked. Undo it from the Changes page.",
                s.created,
                if s.created == 1 { "y" } else { "ies" },
                s.reassigned
            )
        }),
        "reject" => reject_one(State(state), auth, Path(id)).await.map(|r| {
            format!("Rejected: that pairing will not be suggested again ({} pairing(s) remembered).", r.0.cannot_links)
        }),
        "skip" => skip_one(State(state), auth, Path(id))
            .await
            .map(|_| "Skipped: it comes back when new evidence arrives.".to_string()),
        other => return Err(UiError::bad_request(format!("`{other}` is not a decision; accept, reject or skip."))),
    };
    let notice = match outcome {
        Ok(text) => Notice { ok: true, text },
        Err(e) => Notice { ok: false, text: UiError::from(e).message() },
    };
    Ok(redirect_with(back, notice, session.secure))
}

pub async fn accept_auto(
    State(state): State<AppState>,
    CsrfForm(session, _): CsrfForm<super::session::PlainForm>,
) -> Result<Response, UiError> {
    let request = api_request("/?", "application/json", r#"{"tier":"auto"}"#);
    let notice = match accept_batch(State(state), session.auth.clone(), request).await {
        Ok(r) => Notice {
            ok: true,
            text: format!(
                "Accepted {} suggestions: {} identities created, {} moved, all locked. One change set; the Changes page can undo it.",
                r.0.accepted.len(),
                r.0.summary.created,
                r.0.summary.reassigned
            ),
        },
        Err(e) => Notice { ok: false, text: UiError::from(e).message() },
    };
    Ok(redirect_with("/ui/review", notice, session.secure))
}

//! Bots: the contributors flagged as bots (by the rules or by hand), and the manual
//! decisions that outlive every later upload: flag, unflag, or back to the rules.

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use devid_core::types::Scope;
use maud::html;
use serde::Deserialize;

use super::layout::{self, Section, count, csrf};
use super::session::{CsrfForm, CsrfProtected, UiSession};
use super::{Notice, UiError, api_request, encode, integration_id_json, json_of, redirect_with, render};
use crate::AppState;
use crate::api::contributors::Contributor;
use crate::routes::contributors::{list_contributors, set_bots};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BotPage {
    records: Vec<Contributor>,
    #[serde(rename = "_metadata")]
    metadata: BotMetadata,
}

/// The listing's `_metadata`, in Harness's snake_case.
#[derive(Debug, Deserialize)]
struct BotMetadata {
    total_count: u64,
    has_next: bool,
    #[serde(default)]
    next_cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct BotsQuery {
    #[serde(default)]
    cursor: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    session: UiSession,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<BotsQuery>,
) -> Result<Response, UiError> {
    let mut api_query = "status=bot&pageSize=100".to_string();
    if let Some(c) = query.cursor.as_deref().filter(|c| !c.is_empty()) {
        api_query.push_str(&format!("&cursor={}", encode(c)));
    }
    let bots: BotPage = json_of(
        list_contributors(State(state), session.auth.clone(), HeaderMap::new(), RawQuery(Some(api_query))).await,
    )
    .await?;
    let writable = session.can(Scope::DeveloperRecordsWrite);
    let notice = Notice::take(&headers);
    let body = html! {
        h1 { "Bots" }
        p { (count(bots.metadata.total_count)) " contributors are flagged as bots: their activity is not counted as anyone's, "
            "and devid never suggests them. A decision made here outlives every later upload." }
        @if writable {
            form.card method="post" action="/ui/bots" {
                h2 { "Flag a contributor as a bot" }
                (csrf(&session))
                input type="hidden" name="bot" value="true";
                label for="flag-integration" { "Integration id" }
                input #flag-integration type="text" inputmode="numeric" name="integrationId" required size="6";
                label for="flag-identity" { "Identity" }
                input #flag-identity type="text" name="identity" required;
                button type="submit" { "Flag as bot" }
            }
        }
        @if bots.records.is_empty() {
            p.empty { "No bots." }
        } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Integration" } th scope="col" { "Identity" } th scope="col" { "Name" }
                    th scope="col" { "Why" } th scope="col" class="num" { "Activity" }
                    @if writable { th scope="col" { "Decide" } } } }
                tbody {
                    @for c in &bots.records {
                        tr {
                            td { (c.application_type) " #" (c.integration_id) }
                            td { code { (c.identity) } }
                            td { (c.name.as_deref().unwrap_or("")) }
                            td { (c.bot_reason.as_deref().unwrap_or("")) }
                            td.num { (count(c.activity.total)) }
                            @if writable {
                                td.actions {
                                    @for (value, label) in [("false", "Not a bot"), ("", "Back to the rules")] {
                                        form.inline method="post" action="/ui/bots" {
                                            (csrf(&session))
                                            input type="hidden" name="integrationId" value=(c.integration_id);
                                            input type="hidden" name="identity" value=(c.identity);
                                            input type="hidden" name="bot" value=(value);
                                            button type="submit" aria-label=(format!("{label}: {}", c.identity)) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
        }
        nav.pager aria-label="Pages" {
            @if query.cursor.is_some() { a href="/ui/bots" { "← First page" } }
            @if bots.metadata.has_next {
                @if let Some(next) = &bots.metadata.next_cursor { a href=(format!("/ui/bots?cursor={}", encode(next))) rel="next" { "Next →" } }
            }
        }
    };
    Ok(render(&headers, layout::page(&session, Section::Bots, "Bots", notice.as_ref(), body)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BotForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    integration_id: String,
    #[serde(default)]
    identity: String,
    /// `true`, `false`, or empty for "back to the rules".
    #[serde(default)]
    bot: String,
}

impl CsrfProtected for BotForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub async fn set_bot(
    State(state): State<AppState>,
    CsrfForm(session, form): CsrfForm<BotForm>,
) -> Result<Response, UiError> {
    let id = integration_id_json(&form.integration_id);
    let bot = match form.bot.as_str() {
        "true" => serde_json::Value::Bool(true),
        "false" => serde_json::Value::Bool(false),
        _ => serde_json::Value::Null,
    };
    let body = serde_json::json!([{ "integrationId": id, "identity": form.identity.trim(), "bot": bot }]);
    let request = api_request("/", "application/json", body.to_string());
    let notice = match set_bots(State(state), session.auth.clone(), request).await {
        Ok(r) => Notice { ok: true, text: r.0.message },
        Err(e) => Notice { ok: false, text: UiError::from(e).message() },
    };
    Ok(redirect_with("/ui/bots", notice, session.secure))
}

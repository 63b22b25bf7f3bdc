//! One developer: every identity mapped to their email, the contributors seen with it,
//! and the change sets that touched it, each revertible.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::changes::timeline;
use super::identities::{IdentityList, table};
use super::layout::{self, Section, count};
use super::session::UiSession;
use super::{Notice, UiError, encode, json_of, render};
use crate::AppState;
use crate::api::contributors::Contributor;
use crate::routes::changes::list_changes;
use crate::routes::contributors::list_contributors;
use crate::routes::identities::list::list_identities;

#[derive(Debug, Deserialize)]
pub struct DeveloperQuery {
    #[serde(default)]
    email: String,
}

#[derive(Debug, Deserialize)]
struct ContributorPage {
    records: Vec<Contributor>,
}

pub async fn page(
    State(state): State<AppState>,
    session: UiSession,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<DeveloperQuery>,
) -> Result<Response, UiError> {
    let email = query.email.trim().to_lowercase();
    if email.is_empty() {
        return Err(UiError::new(StatusCode::BAD_REQUEST, "Name a developer: /ui/developer?email=jane@company.com."));
    }
    let auth = session.auth.clone();
    let identities: IdentityList = json_of(
        list_identities(
            State(state.clone()),
            auth.clone(),
            HeaderMap::new(),
            RawQuery(Some(format!("emails={}&pageSize=1000", encode(&email)))),
        )
        .await,
    )
    .await?;
    let seen: ContributorPage = json_of(
        list_contributors(
            State(state.clone()),
            auth.clone(),
            HeaderMap::new(),
            RawQuery(Some(format!("developer={}&pageSize=100", encode(&email)))),
        )
        .await,
    )
    .await?;
    let history =
        list_changes(State(state.clone()), auth, RawQuery(Some(format!("email={}&limit=100", encode(&email)))))
            .await?
            .0;
    let notice = Notice::take(&headers);
    let back = format!("/ui/developer?email={}", encode(&email));
    let body = html! {
        h1 { (email) }
        section aria-labelledby="ids-title" {
            h2 #ids-title { "Identities (" (count(identities.records.len() as u64)) ")" }
            @if identities.records.is_empty() {
                p { "No identity is mapped to this email." }
            } @else {
                (table(&session, &identities.records, &back))
            }
        }
        section aria-labelledby="seen-title" {
            h2 #seen-title { "Contributors mapped to this developer" }
            @if seen.records.is_empty() {
                p { "No source reported activity of these identities yet." }
            } @else {
                div.scroll { table {
                    thead { tr { th scope="col" { "Integration" } th scope="col" { "Identity" } th scope="col" { "Name" }
                        th scope="col" { "Status" } th scope="col" class="num" { "Activity" } th scope="col" { "Last seen" } } }
                    tbody {
                        @for c in &seen.records {
                            tr {
                                td { (c.application_type) " #" (c.integration_id) }
                                td { code { (c.identity) } }
                                td { (c.name.as_deref().unwrap_or("")) }
                                td { (c.status) }
                                td.num { (count(c.activity.total)) }
                                td { (c.last_seen.as_deref().and_then(|t| t.get(..10)).unwrap_or("")) }
                            }
                        }
                    }
                } }
            }
        }
        section aria-labelledby="history-title" {
            h2 #history-title { "History" }
            (timeline(&session, &history.changes, &back))
        }
    };
    Ok(render(&headers, layout::page(&session, Section::Identities, &email, notice.as_ref(), body)))
}

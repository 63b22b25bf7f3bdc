//! The overview: coverage per integration as a chart drawn here (inline SVG), the busiest
//! unmapped contributors, and developers holding suspiciously many identities.

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};

use super::layout::{self, Section, count, percent};
use super::session::UiSession;
use super::{Notice, UiError, encode, render};
use crate::AppState;
use crate::api::contributors::{CoverageResponse, IntegrationCoverageEntry};
use crate::routes::coverage::get_coverage;

pub async fn page(State(state): State<AppState>, session: UiSession, headers: HeaderMap) -> Result<Response, UiError> {
    let coverage = get_coverage(State(state), session.auth.clone(), RawQuery(None)).await?.0;
    let notice = Notice::take(&headers);
    let body = html! {
        h1 { "Overview" }
        (totals(&coverage))
        section aria-labelledby="coverage-title" {
            h2 #coverage-title { "Coverage per integration" }
            @if coverage.integrations.is_empty() {
                p { "No contributors yet. Send what each source has seen to " code { "POST /v2/contributors" }
                    ", or run " code { "devid discover --git PATH" } "." }
            } @else {
                (chart(&coverage.integrations))
                (coverage_table(&coverage.integrations))
            }
        }
        section aria-labelledby="unmapped-title" {
            h2 #unmapped-title { "Busiest unmapped contributors" }
            @if coverage.top_unmapped.is_empty() {
                p { "Every active contributor is mapped or flagged as a bot." }
            } @else {
                p { a href="/ui/review" { "Open the review queue" } " to see what devid suggests for them." }
                div.scroll { table {
                    thead { tr { th scope="col" { "Integration" } th scope="col" { "Identity" } th scope="col" { "Name" }
                        th scope="col" { "Email" } th scope="col" class="num" { "Activity" } } }
                    tbody {
                        @for c in &coverage.top_unmapped {
                            tr {
                                td { (c.integration_id) " · " (c.application_type) }
                                td { code { (c.identity) } }
                                td { (c.name.as_deref().unwrap_or("")) }
                                td { (c.email.as_deref().unwrap_or("")) }
                                td.num { (count(c.activity.total)) }
                            }
                        }
                    }
                } }
            }
        }
        section aria-labelledby="snowball-title" {
            h2 #snowball-title { "Snowball check" }
            @if coverage.many_identities.is_empty() {
                p { "No developer holds more than " (coverage.many_identities_over) " identities." }
            } @else {
                p.warning { "These developers hold more than " (coverage.many_identities_over)
                    " identities each: the usual sign of strangers merged together. Open one to check and undo." }
                ul {
                    @for d in &coverage.many_identities {
                        li { a href=(format!("/ui/developer?email={}", encode(&d.email))) { (d.email) }
                            " — " (count(d.identities)) " identities" }
                    }
                }
            }
        }
    };
    Ok(render(&headers, layout::page(&session, Section::Overview, "Overview", notice.as_ref(), body)))
}

fn totals(coverage: &CoverageResponse) -> Markup {
    let o = &coverage.overall;
    html! {
        dl.totals {
            div { dt { "Contributors" } dd { (count(o.contributors)) } }
            div { dt { "Mapped" } dd { (count(o.mapped)) } }
            div { dt { "Unmapped" } dd { (count(o.unmapped)) } }
            div { dt { "Bots" } dd { (count(o.bots)) } }
            div { dt { "Activity attributed" } dd { (percent(o.attributed_share.total)) } }
        }
    }
}

const BAR_WIDTH: f64 = 600.0;
const ROW_HEIGHT: u32 = 34;
const LABEL_WIDTH: f64 = 180.0;

/// One stacked bar per integration (mapped, unmapped, bots), each as wide as the chart:
/// shares compare across integrations of very different sizes.
fn chart(integrations: &[IntegrationCoverageEntry]) -> Markup {
    let height = ROW_HEIGHT * integrations.len() as u32 + 30;
    let width = LABEL_WIDTH + BAR_WIDTH + 10.0;
    html! {
        figure.chart {
            svg role="img" aria-labelledby="chart-title" viewBox=(format!("0 0 {width} {height}"))
                width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg" {
                title #chart-title { "Contributors mapped, unmapped and bots, per integration" }
                @for (row, i) in integrations.iter().enumerate() {
                    @let y = row as u32 * ROW_HEIGHT;
                    @let total = i.contributors.max(1) as f64;
                    @let mapped = BAR_WIDTH * i.mapped as f64 / total;
                    @let unmapped = BAR_WIDTH * i.unmapped as f64 / total;
                    @let bots = BAR_WIDTH * i.bots as f64 / total;
                    text x="0" y=(y + 20) class="label" { (truncate(&i.name, 24)) }
                    rect x=(LABEL_WIDTH) y=(y + 6) width=(format!("{mapped:.1}")) height="20" class="mapped" {
                        title { (i.name) ": " (count(i.mapped)) " mapped" } }
                    rect x=(format!("{:.1}", LABEL_WIDTH + mapped)) y=(y + 6) width=(format!("{unmapped:.1}")) height="20" class="unmapped" {
                        title { (i.name) ": " (count(i.unmapped)) " unmapped" } }
                    rect x=(format!("{:.1}", LABEL_WIDTH + mapped + unmapped)) y=(y + 6) width=(format!("{bots:.1}")) height="20" class="bots" {
                        title { (i.name) ": " (count(i.bots)) " bots" } }
                }
                @let legend = ROW_HEIGHT * integrations.len() as u32 + 18;
                rect x=(LABEL_WIDTH) y=(legend - 10) width="12" height="12" class="mapped" {}
                text x=(LABEL_WIDTH + 16.0) y=(legend) class="legend" { "mapped" }
                rect x=(LABEL_WIDTH + 90.0) y=(legend - 10) width="12" height="12" class="unmapped" {}
                text x=(LABEL_WIDTH + 106.0) y=(legend) class="legend" { "unmapped" }
                rect x=(LABEL_WIDTH + 190.0) y=(legend - 10) width="12" height="12" class="bots" {}
                text x=(LABEL_WIDTH + 206.0) y=(legend) class="legend" { "bots" }
            }
        }
    }
}

fn truncate(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(chars - 1).collect();
        cut.push('…');
        cut
    }
}

fn coverage_table(integrations: &[IntegrationCoverageEntry]) -> Markup {
    html! {
        div.scroll { table {
            caption.visually-hidden { "Coverage per integration" }
            thead { tr {
                th scope="col" { "Integration" } th scope="col" class="num" { "Contributors" }
                th scope="col" class="num" { "Mapped" } th scope="col" class="num" { "Unmapped" }
                th scope="col" class="num" { "Bots" } th scope="col" class="num" { "Activity attributed" }
            } }
            tbody {
                @for i in integrations {
                    tr {
                        th scope="row" { (i.name) " " span.muted { "(" (i.integration_id)
                            @if let Some(t) = i.application_type { ", " (t) } ")" } }
                        td.num { (count(i.contributors)) }
                        td.num { (count(i.mapped)) }
                        td.num { a href=(format!("/ui/review?integrationId={}", i.integration_id)) { (count(i.unmapped)) } }
                        td.num { (count(i.bots)) }
                        td.num { (percent(i.attributed_share.total)) }
                    }
                }
            }
        } }
    }
}

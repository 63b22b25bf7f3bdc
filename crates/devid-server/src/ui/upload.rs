//! Upload a CSV: the file is checked as a dry run first (counts, or the grouped errors
//! with their line numbers), and applied only when the person confirms the preview.
//! The preview carries the file's text back in its form, so nothing is kept on the
//! server between the two steps.

use axum::extract::{FromRequest, FromRequestParts, Multipart, Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use devid_core::types::Scope;
use devid_store::UploadSummary;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Section, count, csrf};
use super::session::{CsrfForm, CsrfProtected, UiSession, check_csrf};
use super::{Notice, UiError, api_request, redirect_with, render};
use crate::AppState;
use crate::routes::identities::upload_identities;

/// Largest file the page takes; larger ones go through `devid import`, which streams.
const MAX_UI_UPLOAD: usize = 32 * 1024 * 1024;

pub async fn page(session: UiSession, headers: HeaderMap) -> Result<Response, UiError> {
    let notice = Notice::take(&headers);
    let body = html! {
        h1 { "Upload identities" }
        (upload_form(&session))
    };
    Ok(render(&headers, layout::page(&session, Section::Upload, "Upload", notice.as_ref(), body)))
}

fn upload_form(session: &UiSession) -> Markup {
    html! {
        @if session.can(Scope::DeveloperRecordsWrite) {
            form.card method="post" action="/ui/upload" enctype="multipart/form-data" {
                (csrf(session))
                label for="file" { "CSV file" }
                input #file type="file" name="file" accept=".csv,text/csv" required;
                p.hint { "Columns " code { "email,integrationId,identity" } " (Harness's CSV), one mapping per line. "
                    "You will see what it would change, or each problem with its line, before anything is applied. "
                    "Files over 32 MiB: use " code { "devid import FILE" } "." }
                button type="submit" { "Check the file" }
            }
        } @else {
            p { "This key can read but not upload: sign in with a key that has the "
                code { "developer_records:write" } " scope." }
        }
    }
}

/// The multipart form: its CSRF token, and the file's text.
async fn read_form(mut multipart: Multipart) -> Result<(String, String), UiError> {
    let (mut csrf_token, mut file) = (String::new(), None);
    while let Some(field) =
        multipart.next_field().await.map_err(|e| UiError::bad_request(format!("The form could not be read: {e}.")))?
    {
        match field.name() {
            Some("csrf") => csrf_token = field.text().await.unwrap_or_default(),
            Some("file") => {
                let bytes = field.bytes().await.map_err(|e| {
                    UiError::bad_request(format!(
                        "The file could not be read ({e}); files over 32 MiB go through devid import."
                    ))
                })?;
                if bytes.len() > MAX_UI_UPLOAD {
                    return Err(UiError::bad_request(
                        "The file is larger than 32 MiB, more than this page takes; upload it with `devid import FILE`, which streams it.",
                    ));
                }
                let text = String::from_utf8(bytes.to_vec()).map_err(|e| {
                    UiError::bad_request(format!(
                        "The file is not UTF-8 text (byte {} is not); save it as UTF-8 CSV and choose it again.",
                        e.utf8_error().valid_up_to() + 1
                    ))
                })?;
                file = Some(text);
            }
            _ => {}
        }
    }
    let file = file.ok_or_else(|| UiError::bad_request("Choose a CSV file to upload."))?;
    Ok((csrf_token, file))
}

pub async fn preview(State(state): State<AppState>, request: Request) -> Result<Response, UiError> {
    let (mut parts, body) = request.into_parts();
    let session = UiSession::from_request_parts(&mut parts, &state).await?;
    let request = Request::from_parts(parts, body);
    let multipart = Multipart::from_request(request, &state)
        .await
        .map_err(|e| UiError::bad_request(format!("The form could not be read: {}.", e.body_text())))?;
    let (sent_csrf, csv) = read_form(multipart).await?;
    check_csrf(&session, &sent_csrf)?;
    let dry_run =
        upload_identities(State(state), session.auth.clone(), api_request("/?dryRun=true", "text/csv", csv.clone()))
            .await;
    let body = match dry_run {
        Ok(r) => html! {
            h1 { "Upload preview" }
            p.notice.ok role="status" { "The file is valid. Nothing has changed yet; this is what applying it would do:" }
            (summary(&r.0.summary))
            form method="post" action="/ui/upload/apply" {
                (csrf(&session))
                textarea name="csv" hidden readonly { (csv) }
                button.primary type="submit" { "Apply " (count(r.0.summary.received)) " rows" }
                " " a href="/ui/upload" { "Cancel" }
            }
        },
        Err(e) => {
            let error = UiError::from(e);
            let (message, groups) = match &error {
                // The API's sentence points at its JSON; here the problems are listed below.
                UiError::Page { message, errors, .. } => {
                    (message.replace("listed under `errors`", "listed below"), errors.clone())
                }
                other => (other.message(), Vec::new()),
            };
            html! {
                h1 { "Upload preview" }
                p.notice.error role="alert" { (message) }
                (layout::error_groups(&groups))
                h2 { "Fix the file and check it again" }
                (upload_form(&session))
            }
        }
    };
    Ok(render(&HeaderMap::new(), layout::page(&session, Section::Upload, "Upload preview", None, body)))
}

fn summary(s: &UploadSummary) -> Markup {
    html! {
        dl.totals {
            div { dt { "Rows" } dd { (count(s.received)) } }
            div { dt { "New mappings" } dd { (count(s.created)) } }
            div { dt { "Moved to another email" } dd { (count(s.reassigned)) } }
            div { dt { "Unchanged" } dd { (count(s.unchanged)) } }
            div { dt { "New developers" } dd { (count(s.developers_created)) } }
            div { dt { "Duplicate rows" } dd { (count(s.duplicates)) } }
        }
        @if !s.integrations_created.is_empty() {
            p { "New integrations: "
                @for (n, i) in s.integrations_created.iter().enumerate() { @if n > 0 { ", " } (i.name) } }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ApplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    csv: String,
}

impl CsrfProtected for ApplyForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub async fn apply(
    State(state): State<AppState>,
    CsrfForm(session, form): CsrfForm<ApplyForm>,
) -> Result<Response, UiError> {
    let result = upload_identities(State(state), session.auth.clone(), api_request("/", "text/csv", form.csv)).await;
    let (to, notice) = match result {
        Ok(r) => {
            let s = &r.0.summary;
            (
                "/ui/identities",
                Notice {
                    ok: true,
                    text: format!(
                        "Applied: {} new, {} moved, {} unchanged. The Changes page can undo this upload.",
                        s.created, s.reassigned, s.unchanged
                    ),
                },
            )
        }
        Err(e) => ("/ui/upload", Notice { ok: false, text: UiError::from(e).message() }),
    };
    Ok(redirect_with(to, notice, session.secure))
}

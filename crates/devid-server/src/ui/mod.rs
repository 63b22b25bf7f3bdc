//! The review UI at `/ui`: server-rendered pages over the same handlers the API serves,
//! so a page can do nothing its key could not do through the API, and every rule (scopes,
//! validation, stale suggestions, locks) is the API's own.
//!
//! Each page is a module; `session` signs in and out and checks every form's CSRF token;
//! `layout` draws the frame around a page; errors are HTML pages here, never the API's
//! JSON (the JSON error layer leaves `text/html` answers alone).

mod bots;
mod changes;
mod developer;
mod identities;
mod layout;
mod overview;
mod review;
pub(crate) mod session;
mod upload;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use devid_core::errors::ErrorGroup;
use maud::{Markup, html};
use serde::de::DeserializeOwned;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::AppState;
use crate::error::ApiError;

pub use session::DEFAULT_SESSION_IDLE;

/// The UI's routes; merged beside the API, outside its prefixes.
pub fn ui_routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(overview::page))
        .route("/ui/static/ui.css", get(stylesheet))
        .route("/ui/sign-in", get(session::sign_in_page).post(session::sign_in))
        .route("/ui/sign-out", post(session::sign_out))
        .route("/ui/identities", get(identities::page))
        .route("/ui/identities/lock", post(identities::set_lock))
        .route("/ui/identities/reassign", post(identities::reassign))
        .route("/ui/identities/delete", get(identities::confirm_delete).post(identities::delete))
        .route("/ui/developer", get(developer::page))
        .route("/ui/review", get(review::page))
        .route("/ui/review/accept-auto", post(review::accept_auto))
        .route("/ui/review/{id}/{decision}", post(review::decide))
        .route("/ui/bots", get(bots::page).post(bots::set_bot))
        .route("/ui/upload", get(upload::page).post(upload::preview))
        .route("/ui/upload/apply", post(upload::apply))
        .route("/ui/changes", get(changes::page))
        .route("/ui/changes/{id}/revert", post(changes::revert))
        // Pages load only devid's own stylesheet and post only to devid; no script runs.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

const STYLESHEET: &str = include_str!("ui.css");

async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], STYLESHEET)
        .into_response()
}

/// What went wrong, as the person at the browser sees it.
#[derive(Debug)]
pub enum UiError {
    /// No session, or it expired: back to sign-in, then to where they were going.
    SignIn {
        next: String,
    },
    Page {
        status: StatusCode,
        message: String,
        errors: Vec<ErrorGroup>,
    },
}

impl UiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self::Page { status, message: message.into(), errors: Vec::new() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// The sentence shown to the person, for notices after a refused action.
    pub fn message(&self) -> String {
        match self {
            UiError::SignIn { .. } => "Your session ended; sign in again.".into(),
            UiError::Page { message, errors, .. } => {
                let mut text = message.clone();
                for group in errors {
                    text.push(' ');
                    text.push_str(&group.message);
                }
                text
            }
        }
    }
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        UiError::Page { status: e.status, message: e.message, errors: e.errors }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            UiError::SignIn { next } => {
                let target = format!(
                    "/ui/sign-in?next={}",
                    form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                Redirect::to(&target).into_response()
            }
            UiError::Page { status, message, errors } => {
                let title = status.canonical_reason().unwrap_or("Error");
                let body = html! {
                    h1 { (title) }
                    p.error role="alert" { (message) }
                    (layout::error_groups(&errors))
                    p { a href="/ui/" { "Back to the overview" } }
                };
                (status, axum::response::Html(layout::bare(title, body).into_string())).into_response()
            }
        }
    }
}

/// The JSON of an API handler's answer, or its error as a page: how pages reuse the
/// API's handlers (which return a `Response` where they also stream CSV).
async fn json_of<T: DeserializeOwned>(response: Result<Response, ApiError>) -> Result<T, UiError> {
    let response = response?;
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 256 * 1024 * 1024)
        .await
        .map_err(|_| UiError::new(StatusCode::INTERNAL_SERVER_ERROR, "The server's answer could not be read."))?;
    if !status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
            .unwrap_or_else(|| format!("The server answered {status}."));
        return Err(UiError::new(status, message));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        UiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("The server's answer was not what the page expects: {e}."),
        )
    })
}

/// A request for an API handler that reads its own body: `uri` carries the query.
fn api_request(uri: &str, content_type: &str, body: impl Into<Body>) -> axum::extract::Request {
    let mut request = axum::extract::Request::new(body.into());
    *request.uri_mut() = uri.parse().unwrap_or_default();
    request.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    request
}

/// A message carried across the redirect after a form (post/redirect/get), in a cookie
/// only this server sets: the next page shows it once and clears it.
const NOTICE_COOKIE: &str = "devid_notice";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub ok: bool,
    pub text: String,
}

impl Notice {
    fn encode(&self) -> String {
        let text = format!("{}{}", if self.ok { "ok:" } else { "error:" }, self.text);
        form_urlencoded::byte_serialize(text.as_bytes()).collect()
    }

    fn decode(raw: &str) -> Option<Notice> {
        let text: String = form_urlencoded::parse(format!("n={raw}").as_bytes()).next()?.1.into_owned();
        if let Some(rest) = text.strip_prefix("ok:") {
            Some(Notice { ok: true, text: rest.to_string() })
        } else {
            text.strip_prefix("error:").map(|rest| Notice { ok: false, text: rest.to_string() })
        }
    }

    /// The notice waiting in the request's cookies, if any.
    pub fn take(headers: &HeaderMap) -> Option<Notice> {
        cookie(headers, NOTICE_COOKIE).and_then(Notice::decode)
    }
}

/// Redirects to `to` with a notice for the page there.
fn redirect_with(to: &str, notice: Notice, secure: bool) -> Response {
    let mut response = Redirect::to(to).into_response();
    // Notices are short sentences; a long one (an upload's many errors) is cut.
    let mut notice = notice;
    if notice.text.len() > 1500 {
        let mut cut = 1500;
        while !notice.text.is_char_boundary(cut) {
            cut -= 1;
        }
        notice.text.truncate(cut);
        notice.text.push('…');
    }
    let value = format!(
        "{NOTICE_COOKIE}={}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=60{}",
        notice.encode(),
        if secure { "; Secure" } else { "" }
    );
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// A page, clearing the notice it showed.
fn render(headers: &HeaderMap, markup: Markup) -> Response {
    let mut response = axum::response::Html(markup.into_string()).into_response();
    if cookie(headers, NOTICE_COOKIE).is_some() {
        response
            .headers_mut()
            .append(header::SET_COOKIE, HeaderValue::from_static("devid_notice=; Path=/ui; Max-Age=0"));
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The value of one cookie of the request.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the browser reached us over HTTPS (directly or through a proxy that says
/// so): cookies are then marked `Secure`.
pub(crate) fn is_https(headers: &HeaderMap) -> bool {
    headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// A form's integration id as the API's JSON bodies take it: a number when it is one,
/// else the text as typed, for the API to refuse with its own sentence.
pub(crate) fn integration_id_json(raw: &str) -> serde_json::Value {
    raw.trim().parse::<i64>().map_or_else(|_| raw.trim().into(), Into::into)
}

/// A query-string value, percent-encoded.
pub(crate) fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_survives_its_cookie() {
        let notice = Notice { ok: false, text: "Line 3: `x` is not an email; fix it & retry = ok".into() };
        assert_eq!(Notice::decode(&notice.encode()), Some(notice));
        assert_eq!(Notice::decode("forged"), None);
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; devid_session=abc; b=2"));
        assert_eq!(cookie(&headers, "devid_session"), Some("abc"));
        assert_eq!(cookie(&headers, "devid"), None);
    }
}

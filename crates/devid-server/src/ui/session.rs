//! Sign-in with an API key, the session that follows it, and the CSRF check of every
//! form that changes something.
//!
//! The browser holds a random 256-bit token in an HttpOnly, SameSite=Strict cookie
//! (Secure behind HTTPS); the store keeps only its SHA-256, the key it was opened with
//! (so revoking the key ends the session) and the CSRF token forms must echo. Each page
//! then acts as that key: the API's handlers check its scopes, so a forged form gets
//! what the key would get from the API.

use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, extract::State};
use devid_core::types::{Scope, scopes_grant};
use devid_store::sessions::NewSession;
use maud::html;
use rand::RngCore;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Notice, UiError, cookie, is_https, layout, redirect_with, render};
use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;

/// How long a session lasts without use, unless the server is told otherwise.
pub const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(30 * 60);

const SESSION_COOKIE: &str = "devid_session";

/// A signed-in browser: the key it acts as, and the token its forms must carry.
#[derive(Debug, Clone)]
pub struct UiSession {
    pub auth: Authenticated,
    pub csrf: String,
    token_hash: String,
    /// Whether cookies set for it are `Secure`.
    pub secure: bool,
}

impl UiSession {
    /// Whether the key may do what `scope` allows; pages show controls only then.
    pub fn can(&self, scope: Scope) -> bool {
        scopes_grant(&self.auth.principal.scopes, scope)
    }

    pub fn scopes(&self) -> String {
        self.auth.principal.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
    }
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn idle_micros(state: &AppState) -> i64 {
    i64::try_from(state.limits.ui_session_idle.as_micros()).unwrap_or(i64::MAX)
}

impl FromRequestParts<AppState> for UiSession {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // After sign-in, a page is where the person was; a form's target is not a page.
        let next = if parts.method == axum::http::Method::GET {
            parts.uri.path_and_query().map_or("/ui/", |p| p.as_str()).to_string()
        } else {
            "/ui/".to_string()
        };
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(UiError::SignIn { next });
        };
        let token_hash = sha256_hex(token);
        let Some(session) = state.store.session(&token_hash, idle_micros(state)).await.map_err(ApiError::from)? else {
            return Err(UiError::SignIn { next });
        };
        let request_id = parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
        Ok(UiSession {
            auth: Authenticated { principal: session.principal, request_id },
            csrf: session.csrf_token,
            token_hash,
            secure: is_https(&parts.headers),
        })
    }
}

/// Forms that change something say which CSRF token they carry.
pub trait CsrfProtected {
    fn csrf(&self) -> &str;
}

/// A form posted by a page of this session: the session, then the form, whose CSRF
/// token matched. A missing or wrong token is 403 and nothing is done.
pub struct CsrfForm<T>(pub UiSession, pub T);

impl<T: DeserializeOwned + CsrfProtected + Send> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = UiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let session = UiSession::from_request_parts(&mut parts, state).await?;
        let request = Request::from_parts(parts, body);
        let Form(form) = Form::<T>::from_request(request, state).await.map_err(|rejection| {
            UiError::bad_request(format!("The form could not be read: {}.", rejection.body_text()))
        })?;
        check_csrf(&session, form.csrf())?;
        Ok(CsrfForm(session, form))
    }
}

/// Compares in constant time, so the token cannot be guessed a character at a time.
pub fn check_csrf(session: &UiSession, sent: &str) -> Result<(), UiError> {
    if !sent.is_empty() && bool::from(sent.as_bytes().ct_eq(session.csrf.as_bytes())) {
        Ok(())
    } else {
        Err(UiError::new(
            StatusCode::FORBIDDEN,
            "This form did not come from a devid page of your session (its CSRF token is missing or wrong), so nothing was done. Reload the page and try again.",
        ))
    }
}

#[derive(Debug, Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    next: Option<String>,
}

/// Only pages of the UI are followed after sign-in: never another site.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with("/ui/") && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/ui/",
    }
}

pub async fn sign_in_page(
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<SignInQuery>,
) -> Response {
    let notice = Notice::take(&headers);
    render(&headers, sign_in_form(safe_next(query.next.as_deref()), notice.as_ref()))
}

fn sign_in_form(next: &str, notice: Option<&Notice>) -> maud::Markup {
    layout::bare(
        "Sign in",
        html! {
            h1 { "Sign in to devid" }
            (layout::notice(notice))
            form method="post" action="/ui/sign-in" class="card narrow" {
                label for="key" { "API key" }
                input #key type="password" name="key" autocomplete="off" required
                    placeholder="pat.<account>.<keyId>.<secret>" autofocus;
                input type="hidden" name="next" value=(next);
                button type="submit" { "Sign in" }
                p.hint {
                    "The key's scopes decide what you can do here: a read-only key can look, "
                    "a write key can also decide suggestions and upload, an admin key can also revert and unlock."
                }
            }
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    next: Option<String>,
}

pub async fn sign_in(State(state): State<AppState>, request: Request) -> Response {
    match open_session(&state, request).await {
        Ok(response) => response,
        Err((status, next, message)) => {
            let notice = Notice { ok: false, text: message };
            let mut response = render(&HeaderMap::new(), sign_in_form(&next, Some(&notice)));
            *response.status_mut() = status;
            response
        }
    }
}

async fn open_session(state: &AppState, request: Request) -> Result<Response, (StatusCode, String, String)> {
    let (parts, body) = request.into_parts();
    // A sign-in posted from another site would sign this browser in as someone else.
    if parts.headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
        return Err((StatusCode::FORBIDDEN, "/ui/".into(), "Sign in from devid's own sign-in page.".into()));
    }
    let secure = is_https(&parts.headers);
    let connect_info = parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>().cloned();
    let Form(form) = Form::<SignInForm>::from_request(Request::from_parts(parts, body), state).await.map_err(|r| {
        (StatusCode::BAD_REQUEST, "/ui/".to_string(), format!("The form could not be read: {}.", r.body_text()))
    })?;
    let next = safe_next(form.next.as_deref()).to_string();
    let key = form.key.trim();
    if key.is_empty() {
        return Err((StatusCode::BAD_REQUEST, next, "Paste an API key to sign in.".into()));
    }
    // The API's own check: the same failure limits, revocation and expiry.
    let mut probe = Request::new(axum::body::Body::empty());
    if let Ok(value) = HeaderValue::from_str(key) {
        probe.headers_mut().insert("x-api-key", value);
    }
    if let Some(info) = connect_info {
        probe.extensions_mut().insert(info);
    }
    let (mut probe, _) = probe.into_parts();
    let auth =
        Authenticated::from_request_parts(&mut probe, state).await.map_err(|e| (e.status, next.clone(), e.message))?;
    let token = random_hex();
    let session =
        NewSession { token_hash: sha256_hex(&token), key_id: auth.principal.key_id.clone(), csrf_token: random_hex() };
    let unavailable =
        |_| (StatusCode::SERVICE_UNAVAILABLE, next.clone(), "The database did not answer; try again.".to_string());
    // Sign-ins are rare: a good moment to forget the sessions nobody came back to.
    let _ = state.store.purge_sessions(idle_micros(state)).await;
    state.store.create_session(session).await.map_err(unavailable)?;
    let mut response = Redirect::to(&next).into_response();
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/ui; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct PlainForm {
    #[serde(default)]
    csrf: String,
}

impl CsrfProtected for PlainForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub async fn sign_out(
    State(state): State<AppState>,
    CsrfForm(session, _): CsrfForm<PlainForm>,
) -> Result<Response, UiError> {
    state.store.end_session(&session.token_hash).await.map_err(ApiError::from)?;
    let mut response =
        redirect_with("/ui/sign-in", Notice { ok: true, text: "You are signed out.".into() }, session.secure);
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("devid_session=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_only_returns_to_pages_of_the_ui() {
        assert_eq!(safe_next(Some("/ui/review?tier=auto")), "/ui/review?tier=auto");
        assert_eq!(safe_next(Some("https://evil.example/ui/")), "/ui/");
        assert_eq!(safe_next(Some("//evil.example/ui/")), "/ui/");
        assert_eq!(safe_next(Some("/v2/api-keys")), "/ui/");
        assert_eq!(safe_next(None), "/ui/");
    }
}

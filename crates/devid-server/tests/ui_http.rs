//! The review UI over plain HTTP, on both backends: the session cookie's flags, what
//! ends a session, the CSRF and cross-site checks, and errors answered as pages.
//! (What a person does in it is tested in a real browser: ui_browser.rs.)

#[macro_use]
mod common;

use common::{TestApp, expect_status};
use devid_core::types::Scope;
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, SET_COOKIE};

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// Signs in with `key`; returns the sign-in answer.
async fn sign_in_response(app: &TestApp, key: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut request = no_redirects().post(app.url("/ui/sign-in")).form(&[("key", key), ("next", "/ui/review")]);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.expect("send")
}

/// The `devid_session=<token>` pair of a sign-in answer.
fn session_cookie(response: &reqwest::Response) -> String {
    let set = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("devid_session="))
        .expect("a session cookie");
    set.split(';').next().expect("pair").to_string()
}

async fn page(app: &TestApp, path: &str, cookie: &str) -> reqwest::Response {
    no_redirects().get(app.url(path)).header("cookie", cookie).send().await.expect("send")
}

/// The CSRF token of a signed-in page (the sign-out form carries it).
async fn csrf_of(app: &TestApp, cookie: &str) -> String {
    let html = page(app, "/ui/changes", cookie).await.text().await.expect("body");
    let at = html.find(r#"name="csrf" value=""#).expect("a csrf field") + r#"name="csrf" value=""#.len();
    html[at..].split('"').next().expect("value").to_string()
}

both_backends! {
    async fn a_session_cookie_is_http_only_strict_and_secure_behind_https() {
        let app = TestApp::spawn().await;
        let plain = sign_in_response(&app, &app.admin_key, &[]).await;
        assert_eq!(plain.status(), 303);
        assert_eq!(plain.headers()[LOCATION], "/ui/review", "sign-in returns to the page asked for");
        let set: Vec<&str> = plain.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).collect();
        let cookie = set.iter().find(|v| v.starts_with("devid_session=")).expect("cookie");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/ui"), "{cookie}");
        assert!(!cookie.contains("Secure"), "plain HTTP cannot carry a Secure cookie back: {cookie}");
        let token = cookie.split(';').next().and_then(|p| p.split_once('=')).map(|(_, v)| v).expect("token");
        assert_eq!(token.len(), 64, "256 random bits");

        let https = sign_in_response(&app, &app.admin_key, &[("x-forwarded-proto", "https")]).await;
        let set: Vec<&str> = https.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).collect();
        assert!(set.iter().any(|v| v.starts_with("devid_session=") && v.contains("; Secure")), "{set:?}");

        let overview = page(&app, "/ui/", &session_cookie(&plain)).await;
        assert_eq!(overview.status(), 200);
        assert!(overview.headers()[CONTENT_TYPE].to_str().unwrap_or("").starts_with("text/html"));
        let csp = overview.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap_or("").to_string();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(overview.headers()["cache-control"], "no-store");
    }

    async fn without_a_session_pages_lead_to_sign_in_and_a_wrong_key_is_told_so() {
        let app = TestApp::spawn().await;
        let r = page(&app, "/ui/identities?search=jane", "").await;
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()[LOCATION], "/ui/sign-in?next=%2Fui%2Fidentities%3Fsearch%3Djane");
        let r = page(&app, "/ui/", "devid_session=0123456789abcdef").await;
        assert_eq!(r.status(), 303, "an unknown token is no session");

        let wrong = sign_in_response(&app, "pat.default.nope.wrong", &[]).await;
        assert_eq!(wrong.status(), 401);
        assert!(wrong.headers().get(SET_COOKIE).is_none());
        let html = wrong.text().await.expect("body");
        assert!(html.contains("The API key is not valid"), "the API's own sentence: {html}");

        let empty = sign_in_response(&app, "  ", &[]).await;
        assert_eq!(empty.status(), 400);
        assert!(empty.text().await.expect("body").contains("Paste an API key"));

        let cross_site = sign_in_response(&app, &app.admin_key, &[("sec-fetch-site", "cross-site")]).await;
        assert_eq!(cross_site.status(), 403, "a sign-in posted by another site is refused");
        assert!(cross_site.headers().get(SET_COOKIE).is_none());

        let away = no_redirects()
            .post(app.url("/ui/sign-in"))
            .form(&[("key", app.admin_key.as_str()), ("next", "https://evil.example/ui/")])
            .send()
            .await
            .expect("send");
        assert_eq!(away.headers()[LOCATION], "/ui/", "sign-in never leads to another site");
    }

    async fn revoking_the_key_or_signing_out_ends_the_session() {
        let app = TestApp::spawn().await;
        let writer = app.key("default", &[Scope::DeveloperRecordsRead, Scope::DeveloperRecordsWrite]).await;
        let cookie = session_cookie(&sign_in_response(&app, &writer, &[]).await);
        assert_eq!(page(&app, "/ui/review", &cookie).await.status(), 200);
        let key_id = writer.split('.').nth(2).expect("key id");
        let r = app.client.delete(app.url(&format!("/v2/api-keys/{key_id}"))).header("x-api-key", &app.admin_key).send().await.expect("send");
        expect_status(r, 200).await;
        assert_eq!(page(&app, "/ui/review", &cookie).await.status(), 303, "a revoked key's session is over");

        let cookie = session_cookie(&sign_in_response(&app, &app.admin_key, &[]).await);
        let csrf = csrf_of(&app, &cookie).await;
        let forged = no_redirects().post(app.url("/ui/sign-out")).header("cookie", &cookie).form(&[("csrf", "x")]).send().await.expect("send");
        assert_eq!(forged.status(), 403, "sign-out needs the token too");
        assert_eq!(page(&app, "/ui/", &cookie).await.status(), 200, "and the session lives on");
        let out = no_redirects().post(app.url("/ui/sign-out")).header("cookie", &cookie).form(&[("csrf", csrf.as_str())]).send().await.expect("send");
        assert_eq!(out.status(), 303);
        assert_eq!(page(&app, "/ui/", &cookie).await.status(), 303, "signed out, the token opens nothing");
    }

    async fn ui_errors_are_pages_that_say_what_went_wrong() {
        let app = TestApp::spawn().await;
        let cookie = session_cookie(&sign_in_response(&app, &app.admin_key, &[]).await);
        let csrf = csrf_of(&app, &cookie).await;
        let r = no_redirects()
            .post(app.url("/ui/review/abc/approve"))
            .header("cookie", &cookie)
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 400);
        assert!(r.headers()[CONTENT_TYPE].to_str().unwrap_or("").starts_with("text/html"), "a page, not JSON");
        assert!(r.text().await.expect("body").contains("`approve` is not a decision; accept, reject or skip."));

        let r = page(&app, "/ui/developer", &cookie).await;
        assert_eq!(r.status(), 400);
        assert!(r.text().await.expect("body").contains("Name a developer"));

        let r = page(&app, "/ui/identities?sort=shoe-size", &cookie).await;
        assert_eq!(r.status(), 400, "the listing's own validation");
        assert!(r.text().await.expect("body").contains("`sortKey` must be one of email"));

        let r = no_redirects()
            .post(app.url("/ui/identities/lock"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("csrf=%ZZ")
            .send()
            .await
            .expect("send");
        assert!(r.status().is_client_error(), "a broken form is a 4xx, not a 500: {}", r.status());

        let r = no_redirects()
            .post(app.url("/ui/upload"))
            .header("cookie", &cookie)
            .header("content-type", "multipart/form-data; boundary=x")
            .body("--x\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nwrong\r\n--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\nemail,integrationId,identity\r\n--x--\r\n")
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 403, "an upload without this session's token is refused");
    }
}

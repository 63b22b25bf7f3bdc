//! The review UI in a real browser: Debian's chromium, driven through chromedriver
//! (WebDriver) by fantoccini, against the real server on port 0 and a fresh database.
//!
//! Without /usr/bin/chromedriver these tests say so and pass, unless
//! DEVID_REQUIRE_BROWSER=1 (CI sets it after installing chromium), when they fail.
//! Each test saves screenshots under target/ui-screenshots/; docs/ui.md shows them.

#[macro_use]
mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{TestApp, expect_status};
use devid_core::types::{ApplicationType, Scope};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Browsers are heavy on two cores: one test drives one at a time.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Browser {
    client: Client,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn browser_available() -> bool {
    if std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists() {
        return true;
    }
    assert!(
        std::env::var("DEVID_REQUIRE_BROWSER").is_err(),
        "DEVID_REQUIRE_BROWSER is set but {CHROMEDRIVER} or {CHROMIUM} is missing: apt-get install chromium chromium-driver"
    );
    eprintln!("skipping: {CHROMEDRIVER} or {CHROMIUM} is missing (apt-get install chromium chromium-driver)");
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

async fn browser(width: u32, height: u32) -> Browser {
    let port = free_port();
    let driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let mut caps = serde_json::Map::new();
    let mut options = json!({
        "binary": CHROMIUM,
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 format!("--window-size={width},{height}")],
    });
    // A window is never narrower than 500 px: a phone's width is emulated instead.
    if width < 500 {
        options["mobileEmulation"] = json!({"deviceMetrics": {"width": width, "height": height, "pixelRatio": 1.0}});
    }
    caps.insert("goog:chromeOptions".into(), options);
    let url = format!("http://127.0.0.1:{port}");
    let mut last_error = String::new();
    for _ in 0..100 {
        // chromedriver listens on loopback over plain HTTP: no TLS stack is needed.
        let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        match builder.capabilities(caps.clone()).connect(&url).await {
            Ok(client) => return Browser { client, driver },
            Err(e) => last_error = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start a session: {last_error}");
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("..").join("target"));
    let dir = target.join("ui-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

async fn screenshot(b: &Browser, name: &str) {
    let png = b.client.screenshot().await.expect("screenshot");
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).expect("write screenshot");
}

async fn css(b: &Browser, selector: &str) -> fantoccini::elements::Element {
    match b.client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(selector)).await {
        Ok(element) => element,
        Err(e) => {
            let url = b.client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
            let source = b.client.source().await.unwrap_or_default();
            panic!("no element `{selector}` at {url} ({e}); the page:\n{source}")
        }
    }
}

/// Clicks a button that submits a form, and waits for the page that answers it.
async fn submit(b: &Browser, selector: &str) {
    let old_page = css(b, "html").await;
    css(b, selector).await.click().await.unwrap_or_else(|e| panic!("click `{selector}`: {e}"));
    for _ in 0..200 {
        // The old page's root goes stale once the answer replaced it.
        if old_page.tag_name().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("clicking `{selector}` did not lead to another page");
}

async fn text_of(b: &Browser, selector: &str) -> String {
    css(b, selector).await.text().await.expect("text")
}

async fn page_text(b: &Browser) -> String {
    text_of(b, "body").await
}

async fn path(b: &Browser) -> String {
    let url = b.client.current_url().await.expect("url");
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

async fn sign_in(b: &Browser, app: &TestApp, key: &str, to: &str) {
    b.client.goto(&app.url(to)).await.expect("goto");
    assert!(path(b).await.starts_with("/ui/sign-in"), "an unsigned visit lands on sign-in, not {}", path(b).await);
    css(b, "#key").await.send_keys(key).await.expect("type key");
    submit(b, "form button[type=submit]").await;
    css(b, "header.top nav").await;
}

/// Jane has her GitHub login mapped; git saw her address unmapped: one `auto` link.
async fn seeded() -> TestApp {
    let app = TestApp::spawn().await;
    app.integration("default", 1, ApplicationType::Github).await;
    app.integration("default", 3, ApplicationType::Git).await;
    let r = app
        .patch_json(
            "/v2/developers/identities",
            &app.admin_key,
            &json!([{"email": "jane@corp.com", "integrationId": 1, "identity": "jdoe"}]),
        )
        .send()
        .await
        .expect("send");
    expect_status(r, 200).await;
    let r = app
        .client
        .post(app.url("/v2/contributors?source=default"))
        .header("x-api-key", &app.admin_key)
        .json(&json!([
            {"integrationId": 1, "identity": "jdoe", "name": "Jane Doe", "email": "jane@corp.com", "count": 40},
            {"integrationId": 3, "identity": "jane@corp.com", "name": "Jane Doe", "email": "jane@corp.com", "count": 90},
            {"integrationId": 3, "identity": "ci@corp.com", "name": "Build Bot", "email": "ci@corp.com", "count": 500},
        ]))
        .send()
        .await
        .expect("send");
    expect_status(r, 200).await;
    app
}

async fn identities(app: &TestApp, query: &str) -> Vec<Value> {
    let r = app.get(&format!("/v2/developers/identities?{query}"), &app.admin_key).send().await.expect("send");
    expect_status(r, 200).await["records"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_with_a_bad_row_is_previewed_fixed_and_applied() {
    if !browser_available() {
        return;
    }
    let _one = ONE_BROWSER.lock().await;
    let app = seeded().await;
    let b = browser(1280, 900).await;
    sign_in(&b, &app, &app.admin_key, "/ui/upload").await;
    assert_eq!(path(&b).await, "/ui/upload", "sign-in returns to the page asked for");
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("identities.csv");
    std::fs::write(&file, "email,integrationId,identity\nann@corp.com,1,ann-gh\nnot-an-email,1,bob-gh\n").expect("csv");
    css(&b, "#file").await.send_keys(&file.to_string_lossy()).await.expect("choose file");
    submit(&b, "form.card button[type=submit]").await;
    let errors = text_of(&b, "section.errors").await;
    assert!(errors.contains("Line 3"), "the preview names the bad line: {errors}");
    assert!(errors.contains("not-an-email"), "and shows the value: {errors}");
    screenshot(&b, "upload-errors").await;
    assert!(identities(&app, "searchValue=ann-gh").await.is_empty(), "nothing is applied from a file with an error");

    std::fs::write(&file, "email,integrationId,identity\nann@corp.com,1,ann-gh\nbob@corp.com,1,bob-gh\n").expect("csv");
    css(&b, "#file").await.send_keys(&file.to_string_lossy()).await.expect("choose file");
    submit(&b, "form.card button[type=submit]").await;
    let preview = text_of(&b, "p.notice.ok").await;
    assert!(preview.contains("The file is valid"), "{preview}");
    screenshot(&b, "upload-preview").await;
    assert!(identities(&app, "searchValue=ann-gh").await.is_empty(), "the preview is a dry run");
    submit(&b, "button.primary").await;
    css(&b, "table.identities").await;
    assert_eq!(path(&b).await, "/ui/identities");
    let notice = text_of(&b, ".notice.ok").await;
    assert!(notice.contains("Applied: 2 new"), "{notice}");
    let table = text_of(&b, "table.identities").await;
    assert!(table.contains("ann-gh") && table.contains("bob@corp.com"), "{table}");
    screenshot(&b, "identities").await;
    assert_eq!(identities(&app, "searchValue=gh").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_suggestion_is_mapped_locked_and_reverted_from_the_changes_page() {
    if !browser_available() {
        return;
    }
    let _one = ONE_BROWSER.lock().await;
    let app = seeded().await;
    let b = browser(1280, 1000).await;
    sign_in(&b, &app, &app.admin_key, "/ui/").await;
    let overview = page_text(&b).await;
    assert!(overview.contains("Coverage per integration"), "{overview}");
    screenshot(&b, "overview").await;

    b.client.goto(&app.url("/ui/review")).await.expect("goto");
    let card = text_of(&b, "article.suggestion").await;
    assert!(card.contains("Map to jane@corp.com"), "{card}");
    assert!(card.contains("The same email jane@corp.com"), "evidence in plain words: {card}");
    screenshot(&b, "review").await;
    submit(&b, "article.suggestion button.primary").await;
    let notice = text_of(&b, ".notice").await;
    assert!(notice.starts_with("Accepted"), "{notice}");

    let mapped = identities(&app, "searchValue=jane%40corp.com&integrationIds=3").await;
    assert_eq!(mapped.len(), 1, "{mapped:?}");
    assert_eq!(mapped[0]["email"], "jane@corp.com");
    assert_eq!(mapped[0]["locked"], true, "an accepted suggestion is locked");
    assert_eq!(mapped[0]["source"], "suggestion");

    b.client.goto(&app.url("/ui/developer?email=jane%40corp.com")).await.expect("goto");
    let developer = page_text(&b).await;
    assert!(developer.contains("locked") && developer.contains("suggestion"), "{developer}");
    screenshot(&b, "developer").await;

    b.client.goto(&app.url("/ui/changes?kind=suggestion")).await.expect("goto");
    screenshot(&b, "changes").await;
    submit(&b, "tr[data-kind=suggestion] button").await;
    let notice = text_of(&b, ".notice").await;
    assert!(notice.starts_with("Reverted change set"), "{notice}");
    assert!(
        identities(&app, "searchValue=jane%40corp.com&integrationIds=3").await.is_empty(),
        "the revert unmapped it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_the_csrf_token_and_writes_of_a_read_only_key_are_refused() {
    if !browser_available() {
        return;
    }
    let _one = ONE_BROWSER.lock().await;
    let app = seeded().await;
    let reader = app.key("default", &[Scope::DeveloperRecordsRead]).await;
    let b = browser(1280, 900).await;
    sign_in(&b, &app, &reader, "/ui/review").await;
    let review = page_text(&b).await;
    assert!(review.contains("Map to jane@corp.com"), "a reader sees the queue: {review}");
    assert!(b.client.find(Locator::Css("article.suggestion button")).await.is_err(), "but no decision buttons");
    assert!(b.client.find(Locator::Css("form.batch")).await.is_err(), "nor the batch accept");
    b.client.goto(&app.url("/ui/identities")).await.expect("goto");
    assert!(b.client.find(Locator::Css("td.actions")).await.is_err(), "nor edit controls");
    screenshot(&b, "read-only-identities").await;

    // The browser's own session, used outside it: a forged form post.
    let cookie = b.client.get_named_cookie("devid_session").await.expect("session cookie");
    let session = format!("devid_session={}", cookie.value());
    let csrf = b
        .client
        .find(Locator::Css("input[name=csrf]"))
        .await
        .expect("sign-out form")
        .attr("value")
        .await
        .expect("attr")
        .expect("csrf value");
    let suggestion = app.get("/v2/suggestions", &app.admin_key).send().await.expect("send");
    let id = expect_status(suggestion, 200).await["records"][0]["id"].as_str().expect("id").to_string();
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");

    let without = no_redirects
        .post(app.url(&format!("/ui/review/{id}/accept")))
        .header("cookie", &session)
        .form(&[("back", "/ui/review")])
        .send()
        .await
        .expect("send");
    assert_eq!(without.status(), 403);
    let page = without.text().await.expect("body");
    assert!(page.contains("CSRF token is missing or wrong"), "{page}");

    let with_token = no_redirects
        .post(app.url(&format!("/ui/review/{id}/accept")))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str()), ("back", "/ui/review")])
        .send()
        .await
        .expect("send");
    assert_eq!(with_token.status(), 303, "the form is answered with the page again");
    let notice_cookie = with_token
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("devid_notice="))
        .and_then(|v| v.split(';').next())
        .expect("a notice for the next page")
        .to_string();
    let next = no_redirects
        .get(app.url("/ui/review"))
        .header("cookie", format!("{session}; {notice_cookie}"))
        .send()
        .await
        .expect("send");
    let page = next.text().await.expect("body");
    assert!(page.contains("lacks the `developer_records:write` scope"), "the API's own refusal is shown: {page}");
    assert!(
        identities(&app, "integrationIds=3").await.is_empty(),
        "neither the forged form nor the read-only key changed anything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_returns_to_sign_in_and_sign_out_ends_it() {
    if !browser_available() {
        return;
    }
    let _one = ONE_BROWSER.lock().await;
    let limits = devid_server::Limits { ui_session_idle: Duration::from_secs(2), ..Default::default() };
    let app = TestApp::spawn_with(limits).await;
    let b = browser(390, 844).await;
    sign_in(&b, &app, &app.admin_key, "/ui/changes").await;
    screenshot(&b, "changes-390px").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    b.client.goto(&app.url("/ui/bots")).await.expect("goto");
    assert_eq!(path(&b).await, "/ui/sign-in?next=%2Fui%2Fbots", "an idle session is over");
    css(&b, "#key").await.send_keys(&app.admin_key).await.expect("type key");
    submit(&b, "form button[type=submit]").await;
    css(&b, "header.top nav").await;
    assert_eq!(path(&b).await, "/ui/bots");

    submit(&b, ".who button").await;
    let notice = text_of(&b, ".notice").await;
    assert!(notice.contains("signed out"), "{notice}");
    b.client.goto(&app.url("/ui/")).await.expect("goto");
    assert!(path(&b).await.starts_with("/ui/sign-in"), "signed out means signed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_told_so_on_the_sign_in_page() {
    if !browser_available() {
        return;
    }
    let _one = ONE_BROWSER.lock().await;
    let app = TestApp::spawn().await;
    let b = browser(1280, 900).await;
    b.client.goto(&app.url("/ui/")).await.expect("goto");
    css(&b, "#key").await.send_keys("pat.default.nope.wrong").await.expect("type key");
    submit(&b, "form button[type=submit]").await;
    let notice = text_of(&b, ".notice.error").await;
    assert!(notice.contains("not valid"), "{notice}");
    screenshot(&b, "sign-in").await;
}

//! Webhooks over HTTP, delivered to a real receiver on loopback: every change set
//! announced once, in order, signed; a failing receiver retried and redeliverable; URLs
//! that point inward refused unless the server allows them.

#[macro_use]
mod common;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use common::{TestApp, expect_error, expect_status};
use devid_core::types::{ApplicationType, Scope};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

#[derive(Clone)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A receiver that records every request and answers with the status it is set to.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

impl Receiver {
    async fn start() -> Receiver {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(204));
        let (log, answer) = (Arc::clone(&received), Arc::clone(&status));
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (log, answer) = (Arc::clone(&log), Arc::clone(&answer));
                async move {
                    log.lock().expect("log").push(Received { headers, body: body.to_vec() });
                    StatusCode::from_u16(answer.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, received, status }
    }

    fn all(&self) -> Vec<Received> {
        self.received.lock().expect("log").clone()
    }

    /// Waits until `n` requests have arrived (the dispatcher polls twice a second).
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..100 {
            if self.all().len() >= n {
                return self.all();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{} deliveries arrived, expected {n}", self.all().len())
    }
}

fn header<'a>(r: &'a Received, name: &str) -> &'a str {
    r.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// Checks the signature as a receiver would, with the secret it was given.
fn verify(r: &Received, secret: &str) -> bool {
    let timestamp = header(r, "x-devid-timestamp");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&r.body);
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    header(r, "x-devid-signature") == format!("v1={expected}")
}

fn body(r: &Received) -> Value {
    serde_json::from_slice(&r.body).expect("a JSON body")
}

async fn register(app: &TestApp, url: &str, kinds: Value) -> Value {
    let r = app
        .client
        .post(app.url("/v2/webhooks"))
        .header("x-api-key", &app.admin_key)
        .json(&json!({"url": url, "kinds": kinds}))
        .send()
        .await
        .expect("send");
    expect_status(r, 201).await
}

async fn upload(app: &TestApp, rows: Value) {
    expect_status(app.patch_json("/v2/developers/identities", &app.admin_key, &rows).send().await.expect("send"), 200)
        .await;
}

both_backends! {
async fn every_change_set_is_delivered_once_in_order_and_signed() {
    let app = TestApp::spawn_allowing_private_webhooks().await;
    app.integration("default", 1, ApplicationType::Github).await;
    let receiver = Receiver::start().await;
    let created = register(&app, &receiver.url, json!([])).await;
    let secret = created["secret"].as_str().expect("the secret is shown once").to_string();
    assert_eq!(secret.len(), 64);
    upload(&app, json!([{"email": "a@x.com", "integrationId": 1, "identity": "alice"}])).await;
    upload(&app, json!([{"email": "b@x.com", "integrationId": 1, "identity": "bob"}])).await;
    let got = receiver.wait_for(3).await;
    let kinds: Vec<&str> = got.iter().map(|r| header(r, "x-devid-event")).collect();
    assert_eq!(kinds, ["webhook", "upload", "upload"], "its own registration first, then in commit order");
    assert!(got.iter().all(|r| verify(r, &secret)), "every delivery is signed with the secret");
    assert!(!verify(&got[1], "another secret"));
    let ids: Vec<i64> = got.iter().filter_map(|r| body(r)["change"]["id"].as_i64()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let second = body(&got[1]);
    assert_eq!(second["events"], format!("/v2/changes/{}", ids[1]));
    assert_eq!(second["change"]["counts"], json!({"identity.created": 1}));
    assert_eq!(header(&got[1], "x-devid-delivery"), second["deliveryId"].to_string());
    // Each once: nothing more arrives, and the deliveries are listed as delivered.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(receiver.all().len(), 3);
    let id = created["id"].as_i64().expect("id");
    let listed = expect_status(app.get(&format!("/v2/webhooks/{id}/deliveries"), &app.admin_key).send().await.expect("send"), 200).await;
    let states: Vec<&str> = listed["deliveries"].as_array().expect("deliveries").iter().filter_map(|d| d["status"].as_str()).collect();
    assert_eq!(states, ["delivered", "delivered", "delivered"]);
    let hooks = expect_status(app.get("/v2/webhooks", &app.admin_key).send().await.expect("send"), 200).await;
    assert!(hooks[0].get("secret").is_none(), "the listing never shows the secret: {hooks}");
    assert_eq!(hooks[0]["pending"], 0);
}

async fn a_failing_receiver_holds_its_queue_and_deliveries_can_be_sent_again() {
    let app = TestApp::spawn_allowing_private_webhooks().await;
    app.integration("default", 1, ApplicationType::Github).await;
    let receiver = Receiver::start().await;
    receiver.status.store(500, Ordering::SeqCst);
    let created = register(&app, &receiver.url, json!(["upload"])).await;
    let id = created["id"].as_i64().expect("id");
    upload(&app, json!([{"email": "a@x.com", "integrationId": 1, "identity": "alice"}])).await;
    upload(&app, json!([{"email": "b@x.com", "integrationId": 1, "identity": "bob"}])).await;
    receiver.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(receiver.all().len(), 1, "the second waits behind the first, which waits to be retried");
    let deliveries = |app: &TestApp| {
        let request = app.get(&format!("/v2/webhooks/{id}/deliveries"), &app.admin_key);
        async move { expect_status(request.send().await.expect("send"), 200).await["deliveries"].clone() }
    };
    let listed = deliveries(&app).await;
    let first = &listed[1];
    assert_eq!((first["status"].as_str(), first["attempts"].as_i64(), first["lastStatus"].as_i64()), (Some("pending"), Some(1), Some(500)));
    assert!(first["nextAttemptAt"].is_string(), "a retry is scheduled: {first}");
    // The receiver recovers; redelivering sends it now, and the queue follows in order.
    receiver.status.store(200, Ordering::SeqCst);
    let url = app.url(&format!("/v2/webhooks/{id}/deliveries/{}/redeliver", first["id"]));
    let again = app.client.post(url).header("x-api-key", &app.admin_key).send().await.expect("send");
    assert_eq!(expect_status(again, 200).await["status"], "pending");
    let got = receiver.wait_for(3).await;
    let identities: Vec<i64> = got.iter().filter_map(|r| body(r)["change"]["id"].as_i64()).collect();
    assert_eq!(identities[1], identities[0], "the first again");
    assert!(identities[2] > identities[1], "then the second");
    let listed = deliveries(&app).await;
    assert_eq!(listed[1]["status"], "delivered");
    assert_eq!(listed[1]["attempts"], 2);
    // Unknown deliveries and webhooks are 404; deleting a webhook stops its deliveries.
    let missing = app.client.post(app.url(&format!("/v2/webhooks/{id}/deliveries/99999/redeliver"))).header("x-api-key", &app.admin_key).send().await.expect("send");
    expect_error(missing, 404).await;
    let deleted = app.client.delete(app.url(&format!("/v2/webhooks/{id}"))).header("x-api-key", &app.admin_key).send().await.expect("send");
    assert_eq!(deleted.status().as_u16(), 204);
    expect_error(app.get(&format!("/v2/webhooks/{id}/deliveries"), &app.admin_key).send().await.expect("send"), 404).await;
}

async fn a_receiver_that_hangs_holds_back_only_its_own_deliveries() {
    let app = TestApp::spawn_allowing_private_webhooks().await;
    app.integration("default", 1, ApplicationType::Github).await;
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hanging_url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    let healthy = Receiver::start().await;
    let stuck = register(&app, &hanging_url, json!(["upload"])).await["id"].as_i64().expect("id");
    register(&app, &healthy.url, json!(["upload"])).await;
    for i in 0..5 {
        upload(&app, json!([{"email": format!("u{i}@x.com"), "integrationId": 1, "identity": format!("u{i}")}])).await;
    }
    // The healthy receiver gets all five while the other attempt waits on its timeout.
    let got = healthy.wait_for(5).await;
    assert_eq!(got.len(), 5);
    assert!(accepted.load(Ordering::SeqCst) >= 1, "the hanging receiver was tried");
    let listed = expect_status(app.get(&format!("/v2/webhooks/{stuck}/deliveries"), &app.admin_key).send().await.expect("send"), 200).await;
    let states: Vec<&str> = listed["deliveries"].as_array().expect("deliveries").iter().filter_map(|d| d["status"].as_str()).collect();
    assert_eq!(states, ["pending"; 5], "nothing of the hanging receiver's is lost");
}

async fn webhook_urls_and_bodies_are_checked() {
    let app = TestApp::spawn().await;
    let k = app.admin_key.clone();
    let post = |body: Value| app.client.post(app.url("/v2/webhooks")).header("x-api-key", &k).json(&body).send();
    let inward = expect_error(post(json!({"url": "http://127.0.0.1:9/hook"})).await.expect("send"), 400).await;
    assert!(inward["message"].as_str().is_some_and(|m| m.contains("--allow-private-webhooks")), "{inward}");
    let metadata = expect_error(post(json!({"url": "http://169.254.169.254/latest"})).await.expect("send"), 400).await;
    assert!(metadata["message"].as_str().is_some_and(|m| m.contains("link-local")), "{metadata}");
    for bad in [
        json!({"url": "ftp://example.com/x"}),
        json!({"url": "https://user:pw@example.com/x"}),
        json!({"url": "https://93.184.216.34/x", "kinds": ["merge"]}),
        json!({"url": "https://93.184.216.34/x", "secret": "short"}),
        json!({"url": "https://93.184.216.34/x", "colour": "blue"}),
        json!({"kinds": []}),
    ] {
        expect_error(post(bad.clone()).await.expect("send"), 400).await;
    }
    let made = expect_status(post(json!({"url": "https://93.184.216.34/x", "kinds": ["upload", "DELETE"], "secret": "a-secret-of-my-own"})).await.expect("send"), 201).await;
    assert_eq!((made["kinds"].clone(), made["secret"].clone()), (json!(["upload", "delete"]), json!("a-secret-of-my-own")));
    let reader = app.key("default", &[Scope::DeveloperRecordsRead, Scope::DeveloperRecordsWrite]).await;
    assert_eq!(app.get("/v2/webhooks", &reader).send().await.expect("send").status().as_u16(), 403);
    for path in ["/v2/webhooks/abc/deliveries", "/v2/webhooks/424242/deliveries"] {
        expect_error(app.get(path, &k).send().await.expect("send"), 404).await;
    }
    // Other accounts do not see it.
    let other = app.key("other", &[Scope::Admin]).await;
    let theirs = expect_status(app.get("/v2/webhooks", &other).send().await.expect("send"), 200).await;
    assert_eq!(theirs, json!([]));
}
}

//! Webhook deliveries survive a crash, with the real binary: a change committed while
//! its receiver was down is delivered after `kill -9` and a restart, and a write that
//! committed nothing (a dry run) is never announced.

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::start_with;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a minimal HTTP receiver got: each request's headers (lower-cased) and body.
type Log = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Answers every request on `listener` 204 and records it.
async fn receive(listener: tokio::net::TcpListener, log: Log) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else { return };
        let log = Arc::clone(&log);
        tokio::spawn(async move {
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let Ok(n) = socket.read(&mut chunk).await else { return };
                if n == 0 {
                    return;
                }
                buffer.extend_from_slice(&chunk[..n]);
                let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if buffer.len() >= end + 4 + length {
                    let body = buffer[end + 4..end + 4 + length].to_vec();
                    log.lock().expect("log").push((head, body));
                    let _ = socket.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n").await;
                    return;
                }
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_change_is_delivered_after_kill_9_and_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("devid.db");
    let key = common::admin_key_and_github(&db);
    // A port where nothing listens yet: the receiver is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();

    let client = reqwest::Client::new();
    let server = start_with(&db, &["--allow-private-webhooks"]);
    let base = server.base.clone();
    let created: Value = client
        .post(format!("{base}/v2/webhooks"))
        .header("x-api-key", &key)
        .json(&json!({"url": format!("http://127.0.0.1:{port}/hook"), "kinds": ["upload"]}))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("json");
    let webhook = created["id"].as_i64().expect("webhook id");
    let rows = json!([{"email": "a@x.com", "integrationId": 1, "identity": "alice"}]);
    for query in ["?dryRun=true", ""] {
        let r = client
            .patch(format!("{base}/v2/developers/identities{query}"))
            .header("x-api-key", &key)
            .json(&rows)
            .send()
            .await
            .expect("upload");
        assert_eq!(r.status().as_u16(), 200);
    }
    // The first attempt fails (nobody listens); a retry is scheduled in about 10 s.
    let mut attempted = false;
    for _ in 0..100 {
        let listed: Value = client
            .get(format!("{base}/v2/webhooks/{webhook}/deliveries"))
            .header("x-api-key", &key)
            .send()
            .await
            .expect("deliveries")
            .json()
            .await
            .expect("json");
        let deliveries = listed["deliveries"].as_array().cloned().unwrap_or_default();
        assert_eq!(deliveries.len(), 1, "the dry run is not announced: {listed}");
        if deliveries[0]["attempts"].as_i64() >= Some(1) {
            assert_eq!(deliveries[0]["status"], "pending");
            attempted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(attempted, "the dispatcher tried the receiver");
    let killed = Command::new("kill").args(["-KILL", &server.child.id().to_string()]).status().expect("kill");
    assert!(killed.success());
    drop(server);

    // The receiver comes up, then the server: the delivery is made after the restart.
    let log: Log = Arc::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("receiver");
    tokio::spawn(receive(listener, Arc::clone(&log)));
    let _restarted = start_with(&db, &["--allow-private-webhooks"]);
    for _ in 0..300 {
        if !log.lock().expect("log").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = log.lock().expect("log").clone();
    assert_eq!(got.len(), 1, "exactly the committed change, once");
    let (head, body) = &got[0];
    assert!(head.contains("x-devid-event: upload"), "{head}");
    assert!(head.contains("x-devid-signature: v1="), "{head}");
    let body: Value = serde_json::from_slice(body).expect("json body");
    assert_eq!(body["change"]["counts"], json!({"identity.created": 1}));
}

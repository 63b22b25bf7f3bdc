//! Several devid replicas on one PostgreSQL database, and PostgreSQL going away and
//! coming back under a live server. Ignored unless run with `--include-ignored`, which needs
//! DEVID_TEST_POSTGRES_URL.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use devid_core::types::ApplicationType;
use devid_server::{AppState, Limits};
use devid_store::contract::PgTestSchema;
use devid_store::{NewIntegration, PostgresStore, Store};
use reqwest::Client;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

struct Replica {
    base: String,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

async fn replica(url: &str) -> Replica {
    let store = PostgresStore::connect(url).await.expect("connect");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let state = AppState::new(Arc::new(store), Limits::default());
    tokio::spawn(devid_server::serve(listener, state, async move {
        let _ = rx.await;
    }));
    Replica { base, _shutdown: tx }
}

async fn setup(url: &str) -> String {
    let store = PostgresStore::connect(url).await.expect("connect");
    let key = store.bootstrap().await.expect("bootstrap").expect("key").key;
    let account = store.account_by_name("default").await.expect("account").expect("exists");
    let ctx = devid_store::ChangeContext { account: account.id, key_id: None, request_id: None };
    for (id, t) in [(1, ApplicationType::Github), (2, ApplicationType::Jira)] {
        store
            .create_integration(&ctx, NewIntegration { id: Some(id), application_type: t, name: format!("{t}") })
            .await
            .expect("integration");
    }
    key
}

fn rows(email: &str, n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"email": email, "integrationId": 1 + (i % 2), "identity": format!("user-{i}")}))
            .collect(),
    )
}

async fn owners(client: &Client, base: &str, key: &str) -> (usize, HashSet<String>) {
    let csv = client
        .get(format!("{base}/v2/developers/identities?format=csv"))
        .header("x-api-key", key)
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("csv");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let emails: Vec<String> = reader.records().map(|r| r.expect("record")[0].to_string()).collect();
    (emails.len(), emails.into_iter().collect())
}

#[ignore = "needs DEVID_TEST_POSTGRES_URL"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_apply_concurrent_uploads_in_some_serial_order() {
    let (url, _schema) = PgTestSchema::create().await;
    let key = setup(&url).await;
    let (a, b) = (replica(&url).await, replica(&url).await);
    let client = Client::new();
    for round in 0..4 {
        let (first, second) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let one = client
            .patch(format!("{}/v2/developers/identities", first.base))
            .header("x-api-key", &key)
            .json(&rows("one@x.com", 3000))
            .send();
        let two = client
            .patch(format!("{}/v2/developers/identities", second.base))
            .header("x-api-key", &key)
            .json(&rows("two@x.com", 3000))
            .send();
        let (one, two) = tokio::join!(one, two);
        for r in [one.expect("send"), two.expect("send")] {
            let status = r.status().as_u16();
            assert_eq!(status, 200, "{}", r.text().await.unwrap_or_default());
        }
        let (count, emails) = owners(&client, &a.base, &key).await;
        assert_eq!(count, 3000);
        assert_eq!(emails.len(), 1, "the final state is one upload's, not a mix: {emails:?}");
        let (_, seen_by_b) = owners(&client, &b.base, &key).await;
        assert_eq!(emails, seen_by_b, "both replicas read the same state");
    }
}

/// A TCP proxy the test can cut: it closes every open connection and refuses new
/// ones until restored.
struct Proxy {
    addr: String,
    cut: watch::Sender<bool>,
}

async fn proxy(upstream: String) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("addr").to_string();
    let (cut, watcher) = watch::channel(false);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            if *watcher.borrow() {
                drop(inbound);
                continue;
            }
            let upstream = upstream.clone();
            let mut watcher = watcher.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(&upstream).await else { return };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = watcher.wait_for(|cut| *cut) => {}
                }
            });
        }
    });
    Proxy { addr, cut }
}

#[ignore = "needs DEVID_TEST_POSTGRES_URL"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_answers_503_leaves_uploads_whole_and_heals_by_itself() {
    let (url, _schema) = PgTestSchema::create().await;
    let key = setup(&url).await;
    let direct: tokio_postgres::Config = url.parse().expect("url");
    let host = match &direct.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        #[allow(unreachable_patterns)]
        _ => "127.0.0.1".into(),
    };
    let port = direct.get_ports().first().copied().unwrap_or(5432);
    let proxy = proxy(format!("{host}:{port}")).await;
    let (proxy_host, proxy_port) = proxy.addr.split_once(':').expect("host:port");
    let via_proxy = url.replacen(&format!("{host}:{port}"), &format!("{proxy_host}:{proxy_port}"), 1);
    assert_ne!(via_proxy, url, "the test URL names host:port explicitly");
    let server = replica(&via_proxy).await;
    let client = Client::new();
    let seed = client
        .patch(format!("{}/v2/developers/identities", server.base))
        .header("x-api-key", &key)
        .json(&rows("seed@x.com", 100))
        .send()
        .await
        .expect("send");
    assert_eq!(seed.status().as_u16(), 200);

    for (attempt, delay_ms) in [5u64, 40, 120, 300, 600, 1200].into_iter().enumerate() {
        let before = owners(&client, &server.base, &key).await.0;
        let email = format!("big{attempt}@x.com");
        let upload = client
            .patch(format!("{}/v2/developers/identities", server.base))
            .header("x-api-key", &key)
            .json(&Value::Array(
                (0..20_000)
                    .map(|i| json!({"email": email, "integrationId": 1, "identity": format!("bulk-{attempt}-{i}")}))
                    .collect(),
            ))
            .send();
        let cutter = async {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            proxy.cut.send_replace(true);
        };
        let (answer, ()) = tokio::join!(upload, cutter);
        let answer = answer.expect("send");
        let status = answer.status().as_u16();
        let retry_after = answer.headers().get("retry-after").is_some();
        let body = answer.text().await.unwrap_or_default();
        eprintln!("cut after {delay_ms} ms: upload answered {status}");
        assert!(status == 200 || status == 503, "cut after {delay_ms} ms: {status} {body}");
        if status == 503 {
            assert!(retry_after, "503 carries Retry-After");
            assert!(body.contains("\"status\":\"error\""), "{body}");
        }

        // While the database is away: 503, and not ready.
        let ready = client.get(format!("{}/readyz", server.base)).send().await.expect("send");
        assert_eq!(ready.status().as_u16(), 503);
        assert!(ready.headers().get("retry-after").is_some());
        let listing = client
            .get(format!("{}/v2/developers/identities", server.base))
            .header("x-api-key", &key)
            .send()
            .await
            .expect("send");
        assert_eq!(listing.status().as_u16(), 503, "{}", listing.text().await.unwrap_or_default());

        // Back again: devid recovers without a restart.
        proxy.cut.send_replace(false);
        let mut healed = false;
        for _ in 0..100 {
            let ready = client.get(format!("{}/readyz", server.base)).send().await.expect("send");
            if ready.status().as_u16() == 200 {
                healed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(healed, "devid did not become ready again within 10 s");
        let after = owners(&client, &server.base, &key).await.0;
        assert!(
            after == before || after == before + 20_000,
            "cut after {delay_ms} ms: {before} rows before, {after} after — the upload must be all or nothing"
        );
        if status == 200 {
            assert_eq!(after, before + 20_000, "a 200 means it was applied");
        }
    }
}

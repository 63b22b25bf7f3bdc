//! Boots the real server on port 0 against a fresh database for each test.
#![allow(dead_code)]

use std::sync::Arc;

use devid_core::types::{ApplicationType, Scope};
use devid_server::{AppState, Limits};
use devid_store::contract::PgTestSchema;
use devid_store::{ChangeContext, NewIntegration, NewKey, PostgresStore, SqliteStore, Store};
use reqwest::{Client, RequestBuilder, Response};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

tokio::task_local! {
    /// The backend the running test was generated for by `both_backends!`.
    pub static BACKEND: Backend;
}

/// Generates each test twice, `sqlite::name` and `postgres::name`. The PostgreSQL copy
/// is `#[ignore]`d, so without DEVID_TEST_POSTGRES_URL the runner reports it as ignored
/// rather than passed; `.ci/run` sets the variable and adds `--include-ignored`.
#[allow(unused_macros)]
macro_rules! both_backends {
    ($( $(#[$meta:meta])* async fn $name:ident() $body:block )*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    common::BACKEND.scope(common::Backend::Sqlite, async move $body).await
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                #[ignore = "needs DEVID_TEST_POSTGRES_URL"]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    common::BACKEND.scope(common::Backend::Postgres, async move $body).await
                }
            )*
        }
    };
}

pub struct TestApp {
    pub base: String,
    pub client: Client,
    /// Admin key of account `default`.
    pub admin_key: String,
    pub store: Arc<dyn Store>,
    /// The SQLite store itself, for SQLite-only hooks.
    pub sqlite: Option<Arc<SqliteStore>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
    _schema: Option<PgTestSchema>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(Limits::default()).await
    }

    pub async fn spawn_with(limits: Limits) -> TestApp {
        Self::spawn_with_connections(limits, devid_server::ConnectionLimits::default()).await
    }

    pub async fn spawn_with_connections(limits: Limits, connections: devid_server::ConnectionLimits) -> TestApp {
        Self::spawn_configured(limits, connections, devid_server::webhooks::WebhookPolicy::default()).await
    }

    /// A server whose webhooks may reach loopback, where the tests' receivers listen.
    pub async fn spawn_allowing_private_webhooks() -> TestApp {
        let policy = devid_server::webhooks::WebhookPolicy { allow_private: true };
        Self::spawn_configured(Limits::default(), devid_server::ConnectionLimits::default(), policy).await
    }

    pub async fn spawn_configured(
        limits: Limits,
        connections: devid_server::ConnectionLimits,
        policy: devid_server::webhooks::WebhookPolicy,
    ) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let backend = BACKEND.try_with(|b| *b).unwrap_or(Backend::Sqlite);
        let (store, sqlite, schema): (Arc<dyn Store>, _, _) = match backend {
            Backend::Sqlite => {
                let sqlite = Arc::new(SqliteStore::open(dir.path().join("devid.db")).expect("open store"));
                (sqlite.clone(), Some(sqlite), None)
            }
            Backend::Postgres => {
                let (url, schema) = PgTestSchema::create().await;
                let store = PostgresStore::connect(&url).await.expect("connect to PostgreSQL");
                (Arc::new(store), None, Some(schema))
            }
        };
        let admin_key = store.bootstrap().await.expect("bootstrap").expect("fresh database gives a key").key;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = AppState::new(store.clone(), limits).with_webhook_policy(policy);
        let server = tokio::spawn(devid_server::serve_with(listener, state, connections, async move {
            let _ = rx.await;
        }));
        TestApp {
            base,
            client: Client::new(),
            admin_key,
            store,
            sqlite,
            shutdown: Some(tx),
            server: Some(server),
            _dir: dir,
            _schema: schema,
        }
    }

    /// Stops accepting and waits for in-flight requests to finish.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server result");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn get(&self, path: &str, key: &str) -> RequestBuilder {
        self.client.get(self.url(path)).header("x-api-key", key)
    }

    pub fn patch_json(&self, path: &str, key: &str, body: &Value) -> RequestBuilder {
        self.client.patch(self.url(path)).header("x-api-key", key).json(body)
    }

    pub fn upload_csv(&self, path: &str, key: &str, csv: impl Into<Vec<u8>>) -> RequestBuilder {
        let part =
            reqwest::multipart::Part::bytes(csv.into()).file_name("identities.csv").mime_str("text/csv").expect("mime");
        self.client
            .patch(self.url(path))
            .header("x-api-key", key)
            .multipart(reqwest::multipart::Form::new().part("file", part))
    }

    pub async fn account_ctx(&self, account: &str) -> ChangeContext {
        let account = self.store.ensure_account(account).await.expect("account");
        ChangeContext { account: account.id, key_id: None, request_id: None }
    }

    /// A key of `account` (created if needed) with `scopes`.
    pub async fn key(&self, account: &str, scopes: &[Scope]) -> String {
        let ctx = self.account_ctx(account).await;
        self.store
            .create_key(&ctx, NewKey { scopes: scopes.to_vec(), label: "test".into(), expires_at: None })
            .await
            .expect("create key")
            .key
    }

    pub async fn integration(&self, account: &str, id: i64, t: ApplicationType) {
        let ctx = self.account_ctx(account).await;
        self.store
            .create_integration(&ctx, NewIntegration { id: Some(id), application_type: t, name: format!("{t} {id}") })
            .await
            .expect("create integration");
    }

    /// Every identity of `default` over the CSV download, however many there are.
    pub async fn dump_all(&self) -> Vec<(String, i64, String)> {
        let text = self
            .get("/v2/developers/identities?format=csv", &self.admin_key)
            .send()
            .await
            .expect("send")
            .text()
            .await
            .expect("csv");
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        reader
            .records()
            .map(|r| {
                let r = r.expect("csv record");
                (r[0].to_string(), r[1].parse().expect("id"), r[2].to_string())
            })
            .collect()
    }

    /// Every identity of `default`, via the API, as (email, integrationId, identity).
    pub async fn dump(&self) -> Vec<(String, i64, String)> {
        let body = self.get("/v2/developers/identities?pageSize=1000", &self.admin_key).send().await.expect("send");
        let json = expect_status(body, 200).await;
        json["records"]
            .as_array()
            .expect("records")
            .iter()
            .map(|r| {
                (
                    r["email"].as_str().unwrap_or_default().to_string(),
                    r["integrationId"].as_i64().unwrap_or_default(),
                    r["identity"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}

/// Asserts the status and returns the JSON body (every answer of devid is JSON unless
/// it is a CSV download).
pub async fn expect_status(response: Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let text = response.text().await.expect("body");
    assert_eq!(got, status, "unexpected status; body: {text}");
    assert!(content_type.starts_with("application/json"), "content-type {content_type} for body {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts a devid error body with the given status and returns it.
pub async fn expect_error(response: Response, status: u16) -> Value {
    let body = expect_status(response, status).await;
    assert_eq!(body["status"], "error", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.len() > 10, "the message should be a sentence: {body}");
    body
}

/// The error types of an error body, in order.
pub fn error_types(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|a| a.iter().map(|e| e["errorType"].as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default()
}

/// numpy's commits as (lower-cased author email, author name, author email as written,
/// the UTC offset the commit was authored in: `Z` or `-06:00`).
pub fn numpy_commits() -> Vec<(String, String, String, String)> {
    // Beside the repository, in /work/shared/data, or where DEVID_SHARED_DATA points; a
    // missing file fails the test rather than skipping it.
    let beside = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let path = [
        std::env::var_os("DEVID_SHARED_DATA").map(std::path::PathBuf::from),
        Some(beside),
        Some("/work/shared/data".into()),
    ]
    .into_iter()
    .flatten()
    .map(|dir| dir.join("numpy/commits.csv"))
    .find(|p| p.exists())
    .expect("shared/data/numpy/commits.csv is beside the repository, in /work/shared/data, or under DEVID_SHARED_DATA");
    let mut reader = csv::Reader::from_path(path).expect("numpy commits.csv is readable");
    reader
        .records()
        .map(|r| {
            let r = r.expect("a commit row");
            let authored_at = &r[3];
            let offset = if authored_at.ends_with('Z') { "Z" } else { &authored_at[authored_at.len() - 6..] };
            (r[2].to_lowercase(), r[1].to_string(), r[2].to_string(), offset.to_string())
        })
        .collect()
}

/// One contributor CSV row per commit of integration `integration`, as a plain export
/// of `git log` would give.
pub fn commits_as_contributor_csv(commits: &[(String, String, String, String)], integration: i64) -> String {
    let mut csv = String::from("integrationId,identity,name,kind,utcOffset\n");
    let mut writer = csv::Writer::from_writer(Vec::new());
    let integration = integration.to_string();
    for (_, name, email, offset) in commits {
        writer.write_record([integration.as_str(), email, name, "commit", offset]).expect("csv row");
    }
    csv.push_str(&String::from_utf8(writer.into_inner().expect("csv")).expect("utf-8"));
    csv
}

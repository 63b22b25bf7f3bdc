//! The real `devid` binary: admin commands on a database file, and `serve` started,
//! used, stopped with SIGTERM and restarted.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn devid(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_devid"))
        .args(args)
        .arg("--database")
        .arg(db)
        .env_remove("DEVID_DATABASE")
        .output()
        .expect("run devid")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn keys_commands_create_list_and_revoke() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("devid.db");
    let out = devid(
        &db,
        &[
            "keys",
            "create",
            "--account",
            "acme",
            "--scope",
            "developer_records:read",
            "--scope",
            "admin",
            "--label",
            "ci",
            "--expires-in",
            "90d",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = text(&out.stdout).trim().to_string();
    assert!(key.starts_with("pat.acme."), "{key}");
    assert!(text(&out.stderr).contains("shown only this once"));
    let key_id = key.split('.').nth(2).expect("key id").to_string();
    let secret = key.rsplit('.').next().expect("secret").to_string();

    let listed = devid(&db, &["keys", "list"]);
    assert!(listed.status.success());
    let listing = text(&listed.stdout);
    assert!(listing.contains(&key_id) && listing.contains("acme") && listing.contains("expiring"), "{listing}");
    assert!(!listing.contains(&secret), "the list never shows a secret");

    let bad = devid(&db, &["keys", "create", "--scope", "root"]);
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("unknown scope `root`"), "{}", text(&bad.stderr));
    let bad_account = devid(&db, &["keys", "create", "--account", "a.b", "--scope", "admin"]);
    assert!(!bad_account.status.success());
    assert!(text(&bad_account.stderr).contains("account name"), "{}", text(&bad_account.stderr));

    let revoked = devid(&db, &["keys", "revoke", &key_id]);
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    assert!(text(&devid(&db, &["keys", "list", "--account", "acme"]).stdout).contains("revoked"));
    let missing = devid(&db, &["keys", "revoke", "nope"]);
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("no API key"), "{}", text(&missing.stderr));
}

#[test]
fn integrations_commands_add_and_list() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("devid.db");
    let added = devid(&db, &["integrations", "add", "--id", "1", "--type", "github", "--name", "GitHub Cloud"]);
    assert!(added.status.success(), "{}", text(&added.stderr));
    let dup = devid(&db, &["integrations", "add", "--id", "1", "--type", "JIRA", "--name", "Jira"]);
    assert!(!dup.status.success());
    assert!(text(&dup.stderr).contains("already exists"), "{}", text(&dup.stderr));
    let bad_type = devid(&db, &["integrations", "add", "--id", "2", "--type", "SVN", "--name", "x"]);
    assert!(!bad_type.status.success());
    assert!(text(&bad_type.stderr).contains("GITHUB_ENTERPRISE"), "the error lists the valid types");
    let listed = devid(&db, &["integrations", "list"]);
    let listing = text(&listed.stdout);
    assert!(listing.contains("GITHUB") && listing.contains("GitHub Cloud"), "{listing}");
}

#[test]
fn help_explains_the_commands() {
    let out = Command::new(env!("CARGO_BIN_EXE_devid")).arg("--help").output().expect("run");
    let help = text(&out.stdout);
    for word in ["serve", "keys", "integrations"] {
        assert!(help.contains(word), "{help}");
    }
    let serve =
        text(&Command::new(env!("CARGO_BIN_EXE_devid")).args(["serve", "--help"]).output().expect("run").stdout);
    for flag in ["--listen", "--database", "--max-upload-rows", "DEVID_LISTEN"] {
        assert!(serve.contains(flag), "{serve}");
    }
}

struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    address: String,
    printed: Vec<String>,
}

/// Starts `devid serve` on a free port and waits until it listens.
fn start(db: &Path) -> Server {
    start_logging(db, "info")
}

fn start_logging(db: &Path, log_level: &str) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_devid"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database"])
        .arg(db)
        .env("RUST_LOG", log_level)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn devid serve");
    let (tx, lines) = mpsc::channel();
    let mut server = Server { child, lines, address: String::new(), printed: Vec::new() };
    let stderr = server.child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    while server.address.is_empty() {
        let line = server.lines.recv_timeout(Duration::from_secs(20)).expect("devid serve printed nothing in time");
        if let Some(rest) = line.split("address=").nth(1) {
            server.address = rest.split_whitespace().next().unwrap_or_default().to_string();
        }
        server.printed.push(line);
    }
    server
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn get(address: &str, path: &str, key: &str) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let r = reqwest::Client::new()
            .get(format!("http://{address}{path}"))
            .header("x-api-key", key)
            .send()
            .await
            .expect("send");
        (r.status().as_u16(), r.text().await.expect("text"))
    })
}

fn post_integration(address: &str, key: &str) -> u16 {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("http://{address}/v2/integrations"))
            .header("x-api-key", key)
            .json(&serde_json::json!({"id": 3, "applicationType": "JIRA", "name": "Jira"}))
            .send()
            .await
            .expect("send")
            .status()
            .as_u16()
    })
}

fn terminate(server: &mut Server) -> std::process::ExitStatus {
    let pid = server.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(killed.success());
    for _ in 0..100 {
        if let Some(status) = server.child.try_wait().expect("wait") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = server.child.kill();
    panic!("devid did not stop within 10 s of SIGTERM");
}

#[test]
fn serve_prints_a_key_once_keeps_data_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("devid.db");
    let mut first = start(&db);
    let key_line = first.printed.iter().find(|l| l.trim_start().starts_with("pat.default.")).cloned();
    let key = key_line.expect("the first start prints an admin key").trim().to_string();
    let hint = first.printed.iter().find(|l| l.contains("curl -H \"x-api-key: ")).expect("a line shows how to use it");
    assert!(hint.contains(&format!("http://{}/", first.address)), "the hint names the port in use: {hint}");
    let (status, body) = get(&first.address, "/v2/integrations", &key);
    assert_eq!(status, 200, "{body}");
    assert_eq!(post_integration(&first.address, &key), 201);
    let exit = terminate(&mut first);
    assert!(exit.success(), "SIGTERM exits 0, got {exit:?}");
    let rest: Vec<String> = first.lines.try_iter().collect();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
    let secret = key.rsplit('.').next().unwrap_or("x");
    let leaks: Vec<&String> = first
        .printed
        .iter()
        .chain(rest.iter())
        .filter(|l| l.contains(secret) && !l.trim_start().starts_with("pat.") && !l.starts_with("Try it:"))
        .collect();
    assert!(leaks.is_empty(), "the secret appears only in the one-time notice: {leaks:?}");

    let mut second = start(&db);
    assert!(!second.printed.iter().any(|l| l.contains("pat.default.")), "a second start prints no key");
    let (status, body) = get(&second.address, "/v2/integrations", &key);
    assert_eq!(status, 200);
    assert!(body.contains("\"id\":3"), "data survived the restart: {body}");
    assert!(terminate(&mut second).success());
}

fn request(
    method: reqwest::Method,
    url: String,
    headers: &[(&str, String)],
    body: Option<serde_json::Value>,
) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let mut r = reqwest::Client::new().request(method, url);
        for (name, value) in headers {
            r = r.header(*name, value);
        }
        if let Some(body) = body {
            r = r.json(&body);
        }
        let r = r.send().await.expect("send");
        (r.status().as_u16(), r.text().await.expect("text"))
    })
}

/// A whole session — every header form, wrong and revoked keys, keys created over the
/// API, uploads, failures — with debug logging: no secret reaches the log, and the
/// database holds none in plain text.
#[test]
fn no_secret_is_logged_or_stored_in_plain_text() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("devid.db");
    let mut server = start_logging(&db, "trace");
    let admin = server.printed.iter().find(|l| l.trim_start().starts_with("pat.")).expect("key").trim().to_string();
    let base = format!("http://{}", server.address);
    let mut secrets = vec![admin.rsplit('.').next().unwrap_or_default().to_string()];

    let forms = [
        ("x-api-key", admin.clone()),
        ("authorization", format!("ApiKey {admin}")),
        ("authorization", format!("Bearer {admin}")),
        ("authorization", admin.clone()),
    ];
    for (name, value) in &forms {
        assert_eq!(
            request(reqwest::Method::GET, format!("{base}/v2/integrations"), &[(name, value.clone())], None).0,
            200
        );
    }
    let wrong = format!("{}WRONGSECRET", &admin[..admin.len() - 11]);
    secrets.push("WRONGSECRET".into());
    assert_eq!(request(reqwest::Method::GET, format!("{base}/v2/integrations"), &[("x-api-key", wrong)], None).0, 401);
    let (status, created) = request(
        reqwest::Method::POST,
        format!("{base}/v2/api-keys"),
        &[("x-api-key", admin.clone())],
        Some(serde_json::json!({"scopes": ["developer_records:write"], "label": "sync"})),
    );
    assert_eq!(status, 201, "{created}");
    let created: serde_json::Value = serde_json::from_str(&created).expect("json");
    let writer = created["key"].as_str().expect("key").to_string();
    secrets.push(writer.rsplit('.').next().unwrap_or_default().to_string());
    let id = created["apiKey"]["id"].as_str().expect("id").to_string();
    request(
        reqwest::Method::POST,
        format!("{base}/v2/integrations"),
        &[("x-api-key", admin.clone())],
        Some(serde_json::json!({"id": 1, "applicationType": "GITHUB", "name": "gh"})),
    );
    let rows = serde_json::json!([{"email": "a@x.com", "integrationId": 1, "identity": "a"}]);
    assert_eq!(
        request(
            reqwest::Method::PATCH,
            format!("{base}/v2/developers/identities"),
            &[("authorization", format!("Bearer {writer}"))],
            Some(rows.clone())
        )
        .0,
        200
    );
    assert_eq!(
        request(
            reqwest::Method::PATCH,
            format!("{base}/v2/developers/identities"),
            &[("authorization", writer.clone())],
            Some(serde_json::json!([{"email": "bad"}]))
        )
        .0,
        400
    );
    assert_eq!(
        request(reqwest::Method::DELETE, format!("{base}/v2/api-keys/{id}"), &[("x-api-key", admin.clone())], None).0,
        200
    );
    assert_eq!(
        request(
            reqwest::Method::PATCH,
            format!("{base}/v2/developers/identities"),
            &[("x-api-key", writer.clone())],
            Some(rows)
        )
        .0,
        401
    );
    assert!(terminate(&mut server).success());

    let log: Vec<String> = server.printed.iter().cloned().chain(server.lines.try_iter()).collect();
    assert!(log.iter().any(|l| l.contains("request")), "requests were logged");
    for secret in &secrets {
        let leaks: Vec<&String> = log
            .iter()
            .filter(|l| l.contains(secret.as_str()) && !l.trim_start().starts_with("pat.") && !l.starts_with("Try it:"))
            .collect();
        assert!(leaks.is_empty(), "secret in the log: {leaks:?}");
    }
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
        for secret in &secrets {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "a secret is stored in plain text");
        }
    }
}

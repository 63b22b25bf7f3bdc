//! The real `devid` binary: admin commands on a database file, and `serve` started,
//! used, stopped with SIGTERM and restarted; where its first admin key goes, and that
//! no secret reaches its log in either log format.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::devid;

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
    assert!(listing.contains(&key_id) && listing.contains("acme") && listing.contains("active"), "{listing}");
    let expiry = (time_in_days(90)).to_string();
    assert!(listing.contains(&expiry), "the listing shows the expiry date {expiry}: {listing}");
    assert!(listing.lines().next().is_some_and(|h| h.contains("EXPIRES")), "{listing}");
    assert!(!listing.contains(&secret), "the list never shows a secret");

    let bad = devid(&db, &["keys", "create", "--scope", "root"]);
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("unknown scope `root`"), "{}", text(&bad.stderr));
    let bad_account = devid(&db, &["keys", "create", "--account", "a.b", "--scope", "admin"]);
    assert!(!bad_account.status.success());
    assert!(text(&bad_account.stderr).contains("account name"), "{}", text(&bad_account.stderr));

    let revoked = devid(&db, &["keys", "revoke", &key_id]);
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    assert!(text(&revoked.stderr).starts_with("Revoked key"), "{}", text(&revoked.stderr));
    assert!(text(&devid(&db, &["keys", "list", "--account", "acme"]).stdout).contains("revoked"));
    let again = devid(&db, &["keys", "revoke", &key_id]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains("was already revoked; nothing changed."),
        "a second revoke says it already was: {}",
        text(&again.stderr)
    );
    let missing = devid(&db, &["keys", "revoke", "nope"]);
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("no API key `nope`"), "{}", text(&missing.stderr));
    assert!(text(&missing.stderr).contains("devid keys list"), "says how to find the ids");
}

/// The UTC date (YYYY-MM-DD) `days` from now.
fn time_in_days(days: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    let date = Command::new("date")
        .args(["-u", "-d", &format!("@{}", now + days * 86_400), "+%Y-%m-%d"])
        .output()
        .expect("date");
    text(&date.stdout).trim().to_string()
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
    let long = devid(&db, &["integrations", "add", "--id", "123456789", "--type", "BITBUCKET_SERVER", "--name", "BB"]);
    assert!(long.status.success(), "{}", text(&long.stderr));
    let listed = devid(&db, &["integrations", "list"]);
    let listing = text(&listed.stdout);
    assert!(listing.contains("GITHUB") && listing.contains("GitHub Cloud"), "{listing}");
    let lines: Vec<&str> = listing.lines().collect();
    let column = |line: &str, word: &str| line.find(word).unwrap_or_else(|| panic!("{word} in {line:?}"));
    assert_eq!(column(lines[0], "TYPE"), column(lines[1], "GITHUB"), "columns line up:\n{listing}");
    assert_eq!(column(lines[1], "GITHUB"), column(lines[2], "BITBUCKET_SERVER"), "columns line up:\n{listing}");
    assert_eq!(column(lines[0], "NAME"), column(lines[2], "BB"), "columns line up:\n{listing}");
}

#[test]
fn commands_that_only_read_refuse_a_database_that_does_not_exist() {
    let dir = tempfile::tempdir().expect("dir");
    let typo = dir.path().join("typo.db");
    let backup = dir.path().join("backup.db");
    for args in [
        vec!["keys", "list"],
        vec!["keys", "revoke", "0123456789abcdef"],
        vec!["integrations", "list"],
        vec!["backup", "--to", backup.to_str().expect("utf-8 path")],
    ] {
        let out = devid(&typo, &args);
        assert!(!out.status.success(), "{args:?} must fail on a missing database");
        let message = text(&out.stderr);
        assert!(message.contains("There is no") && message.contains("typo.db"), "{args:?}: {message}");
        assert!(message.contains("--database"), "{args:?} says what to check: {message}");
        assert!(!typo.exists(), "{args:?} created the database it was only to read");
        assert!(!backup.exists(), "{args:?} wrote a backup of nothing");
    }
    let created = devid(&typo, &["integrations", "add", "--type", "GITHUB", "--name", "GitHub"]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    assert!(typo.exists(), "a command that exists to create something creates the database");
    assert!(devid(&typo, &["keys", "list"]).status.success());
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
    for flag in ["--listen", "--database", "--max-upload-rows", "DEVID_LISTEN", "--first-key-file"] {
        assert!(serve.contains(flag), "{serve}");
    }
    let help_of = |args: &[&str]| {
        text(&Command::new(env!("CARGO_BIN_EXE_devid")).args(args).arg("--help").output().expect("run").stdout)
    };
    let revoke = help_of(&["keys", "revoke"]);
    assert!(revoke.contains("The key's id"), "keys revoke <ID> has help: {revoke}");
    let add = help_of(&["integrations", "add"]);
    assert!(add.contains("A name people recognise"), "--name has help: {add}");
    assert!(add.contains("Account the integration belongs to"), "--account has help: {add}");
    assert!(help_of(&["integrations", "list"]).contains("Whose integrations to list"));
    assert!(help_of(&["backup"]).contains("--to"));
}

struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    address: String,
    printed: Vec<String>,
}

/// Starts `devid serve` on a free port and waits until it listens. Its stderr is a
/// pipe, not a terminal, as under a service manager or a container runtime.
fn start(db: &Path) -> Server {
    start_logging(db, "info", "text")
}

fn start_logging(db: &Path, log_level: &str, log_format: &str) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_devid"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", log_format, "--database"])
        .arg(db)
        .env("RUST_LOG", log_level)
        .env_remove("DEVID_FIRST_KEY_FILE")
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
        let field = line.split("address=").nth(1).or_else(|| line.split("\"address\":\"").nth(1));
        if let Some(rest) = field {
            server.address = rest.split(|c: char| c.is_whitespace() || c == '"').next().unwrap_or_default().to_string();
        }
        server.printed.push(line);
    }
    server
}

/// Where `serve` writes the first admin key of a SQLite database by default.
fn key_file(db: &Path) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".first-admin-key");
    name.into()
}

/// The first admin key from its file, after checking that only its owner can read it.
fn first_key(db: &Path) -> String {
    let path = key_file(db);
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).expect("key file").permissions());
    assert_eq!(mode & 0o777, 0o600, "the key file is readable by its owner only");
    std::fs::read_to_string(&path).expect("read key file").trim().to_string()
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
fn serve_writes_the_first_key_to_a_private_file_keeps_data_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("devid.db");
    let mut first = start(&db);
    let key = first_key(&db);
    assert!(key.starts_with("pat.default."), "{key}");
    let path = key_file(&db).display().to_string();
    assert!(first.printed.iter().any(|l| l.contains(&path)), "the log names the key file: {:?}", first.printed);
    let (status, body) = get(&first.address, "/v2/integrations", &key);
    assert_eq!(status, 200, "{body}");
    assert_eq!(post_integration(&first.address, &key), 201);
    let exit = terminate(&mut first);
    assert!(exit.success(), "SIGTERM exits 0, got {exit:?}");
    let rest: Vec<String> = first.lines.try_iter().collect();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
    let secret = key.rsplit('.').next().unwrap_or("x");
    let leaks: Vec<&String> = first.printed.iter().chain(rest.iter()).filter(|l| l.contains(secret)).collect();
    assert!(leaks.is_empty(), "the secret never reaches the log: {leaks:?}");

    // A clean stop leaves every write in the database file itself: copying that one
    // file is a complete copy.
    let wal = dir.path().join("devid.db-wal");
    let wal_bytes = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_bytes, 0, "the WAL is empty after a clean stop; the log ended with {rest:?}");
    let copy_dir = tempfile::tempdir().expect("dir");
    let copy = copy_dir.path().join("devid.db");
    std::fs::copy(&db, &copy).expect("copy the one file");
    let conn = rusqlite::Connection::open(&copy).expect("open the copy");
    let integrations: i64 =
        conn.query_row("SELECT COUNT(*) FROM integrations WHERE id = 3", [], |r| r.get(0)).expect("count");
    assert_eq!(integrations, 1, "the copy of the one file holds the last write");

    let mut reminded = start(&db);
    assert!(
        reminded.printed.iter().any(|l| l.contains("still in") && l.contains(&path)),
        "a start while the key file remains says to delete it: {:?}",
        reminded.printed
    );
    assert!(terminate(&mut reminded).success());
    std::fs::remove_file(key_file(&db)).expect("the operator deletes the key file");
    let mut second = start(&db);
    assert!(!second.printed.iter().any(|l| l.contains("still in")), "{:?}", second.printed);
    assert!(!key_file(&db).exists(), "a second start writes no key");
    assert!(!second.printed.iter().any(|l| l.contains("first admin key")), "{:?}", second.printed);
    assert!(!second.printed.iter().any(|l| l.contains("No usable admin key")), "the first key still works");
    let (status, body) = get(&second.address, "/v2/integrations", &key);
    assert_eq!(status, 200);
    assert!(body.contains("\"id\":3"), "data survived the restart: {body}");
    assert!(terminate(&mut second).success());
}

/// A user who ran an admin command before `serve` has an account but no admin key;
/// so has one who revoked the last one. `serve` says so, with the command that helps.
#[test]
fn serve_names_the_command_that_makes_an_admin_key_when_none_is_usable() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("devid.db");
    assert!(devid(&db, &["integrations", "add", "--type", "GITHUB", "--name", "GitHub"]).status.success());
    let mut server = start(&db);
    assert!(!key_file(&db).exists(), "no key is made on a database that has an account");
    let command = format!("devid keys create --account default --scope admin --database {}", db.display());
    let warning = server.printed.iter().find(|l| l.contains("No usable admin key")).cloned();
    let warning = warning.unwrap_or_else(|| panic!("serve warns: {:?}", server.printed));
    assert!(warning.contains(&command), "the warning names `{command}`: {warning}");
    assert!(terminate(&mut server).success());

    // The command it names works, and the key it prints administers the server.
    let made = devid(&db, &["keys", "create", "--account", "default", "--scope", "admin"]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let key = text(&made.stdout).trim().to_string();
    let mut server = start(&db);
    assert!(!server.printed.iter().any(|l| l.contains("No usable admin key")), "{:?}", server.printed);
    assert_eq!(get(&server.address, "/v2/integrations", &key).0, 200);
    assert!(terminate(&mut server).success());

    // Revoked, and a key without the admin scope, count as none.
    let id = key.split('.').nth(2).expect("key id");
    assert!(devid(&db, &["keys", "revoke", id]).status.success());
    assert!(devid(&db, &["keys", "create", "--scope", "developer_records:write"]).status.success());
    let mut server = start(&db);
    assert!(server.printed.iter().any(|l| l.contains("No usable admin key")), "{:?}", server.printed);
    assert!(terminate(&mut server).success());
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
/// API, uploads, failures — with trace logging, in both log formats: no secret reaches
/// the log (the first key included), and the database holds none in plain text.
#[test]
fn no_secret_is_logged_or_stored_in_plain_text_in_text_logs() {
    session_without_secrets_in_the_log("text");
}

#[test]
fn no_secret_is_logged_or_stored_in_plain_text_in_json_logs() {
    session_without_secrets_in_the_log("json");
}

fn session_without_secrets_in_the_log(log_format: &str) {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("devid.db");
    let mut server = start_logging(&db, "trace", log_format);
    let admin = first_key(&db);
    if log_format == "json" {
        for line in &server.printed {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|e| panic!("every line of a JSON log is JSON ({e}): {line}"));
        }
    }
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
        let leaks: Vec<&String> = log.iter().filter(|l| l.contains(secret.as_str())).collect();
        assert!(leaks.is_empty(), "secret in the log: {leaks:?}");
    }
    std::fs::remove_file(key_file(&db)).expect("the operator deletes the key file");
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
        for secret in &secrets {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "a secret is stored in plain text");
        }
    }
}

/// Runs `devid serve` with a pseudo-terminal as its stderr (through `script`), until it
/// listens; returns everything it wrote there.
fn serve_on_a_terminal(db: &Path, log_format: &str) -> String {
    use std::os::unix::process::CommandExt;
    let command = format!(
        "{} serve --listen 127.0.0.1:0 --log-format {log_format} --database {}",
        env!("CARGO_BIN_EXE_devid"),
        db.display()
    );
    let mut child = Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .env("RUST_LOG", "info")
        .env_remove("DEVID_FIRST_KEY_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("script (util-linux) runs devid on a pseudo-terminal");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    while !seen.contains("devid listening") {
        match lines.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(_) => break,
        }
    }
    let group = format!("-{}", child.id());
    let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
    let _ = child.wait();
    assert!(seen.contains("devid listening"), "devid started on the terminal: {seen}");
    seen
}

/// On a terminal, text logs are read by a person: the key is shown there, once, and no
/// file holds it. JSON logs are for machines even on a terminal: the key goes to the
/// file and the stream carries only its path.
#[test]
fn on_a_terminal_text_logs_show_the_key_and_json_logs_still_keep_it_out() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("text.db");
    let shown = serve_on_a_terminal(&db, "text");
    assert!(shown.contains("It is shown only this once"), "{shown}");
    let key_line = shown.lines().find(|l| l.trim_start().starts_with("pat.default.")).expect("the key is shown");
    let key = key_line.trim().to_string();
    assert!(!key_file(&db).exists(), "a key shown on the terminal is not also left in a file");
    let listed = text(&devid(&db, &["keys", "list"]).stdout);
    assert!(listed.contains(key.split('.').nth(2).expect("key id")), "the shown key is the one created: {listed}");

    let db = dir.path().join("json.db");
    let logged = serve_on_a_terminal(&db, "json");
    let key = first_key(&db);
    let secret = key.rsplit('.').next().expect("secret");
    assert!(!logged.contains(secret), "a JSON log never carries the key, even on a terminal: {logged}");
    assert!(logged.contains(&key_file(&db).display().to_string()), "the JSON log names the file: {logged}");
}

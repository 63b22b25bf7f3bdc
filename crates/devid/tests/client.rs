//! The client commands (`import`, `export`, `sync`, `doctor`, `completions`, `man`) run
//! as the real binary against a real `devid serve` on a fresh SQLite file, and what they
//! did is checked through the HTTP API, independently of the client's own output.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Server, admin_key_and_github, devid, start};
use serde_json::{Value, json};

/// A server with an admin key, GitHub as integration 1 and Jira as integration 2.
struct Setup {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    server: Server,
    key: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("devid.db");
    let key = admin_key_and_github(&db);
    let added = devid(&db, &["integrations", "add", "--id", "2", "--type", "JIRA", "--name", "jira"]);
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let server = start(&db);
    Setup { dir: dir.path().to_path_buf(), _dir: dir, server, key }
}

impl Setup {
    /// `devid <args>` with this server's URL and key in the environment, no terminal.
    fn client(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run devid")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_devid"));
        command
            .args(args)
            .current_dir(&self.dir)
            .env("DEVID_URL", &self.server.base)
            .env("DEVID_API_KEY", &self.key)
            .env("DEVID_CONFIG", self.dir.join("no-config.toml"))
            .env_remove("DEVID_API_KEY_FILE")
            .env_remove("DEVID_PROFILE")
            .stdin(Stdio::null());
        command
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let mut request = reqwest::Client::new()
                .request(method, format!("{}{path}", self.server.base))
                .header("x-api-key", &self.key);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let r = request.send().await.expect("send");
            let status = r.status();
            let body: Value = r.json().await.expect("json");
            assert!(status.is_success(), "{status}: {body}");
            body
        })
    }

    /// Every identity the server holds, as `(integrationId, identity, email, locked)`, sorted.
    fn identities(&self) -> Vec<(i64, String, String, bool)> {
        let page = self.call(reqwest::Method::GET, "/v2/developers/identities?pageSize=1000&sortKey=identity", None);
        let mut out: Vec<_> = page["records"]
            .as_array()
            .expect("records")
            .iter()
            .map(|r| {
                (
                    r["integrationId"].as_i64().expect("id"),
                    r["identity"].as_str().expect("identity").to_string(),
                    r["email"].as_str().expect("email").to_string(),
                    r["locked"].as_bool().expect("locked"),
                )
            })
            .collect();
        out.sort();
        out
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn row(integration: i64, identity: &str, email: &str) -> (i64, String, String, bool) {
    (integration, identity.to_string(), email.to_string(), false)
}

#[test]
fn import_checks_offline_previews_then_applies_only_when_told() {
    let s = setup();
    let bad = s.write("bad.csv", "email,integrationId,identity\nann@x.com,1,ann\nbob@,1,bob\ncid@x.com,2,C-1\n");
    let out = s.client(&["import", bad.to_str().expect("path"), "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("line 3") && shown.contains("INVALID_EMAIL") && shown.contains("bob@"), "{shown}");
    assert!(s.identities().is_empty(), "a file that fails the checks sends nothing");

    // Unknown integrations are only known to the server: the dry run reports the line.
    let unknown = s.write("unknown.csv", "email,integrationId,identity\nann@x.com,1,ann\ncid@x.com,9,C-1\n");
    let out = s.client(&["import", unknown.to_str().expect("path"), "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("line 3") && text(&out).contains("UNKNOWN_INTEGRATION"), "{}", text(&out));
    assert!(s.identities().is_empty());

    let good = s.write("good.csv", "email,integrationId,identity\nann@x.com,1,ann\nbob@x.com,1,bob\ncid@x.com,2,C-1\n");
    let out = s.client(&["import", good.to_str().expect("path"), "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("created: 3"), "{}", text(&out));
    assert!(s.identities().is_empty(), "--dry-run changes nothing");

    let out = s.client(&["import", good.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(2), "no terminal to ask on and no --yes: {}", text(&out));
    assert!(text(&out).contains("--yes"), "{}", text(&out));
    assert!(s.identities().is_empty());

    let out = s.client(&["import", good.to_str().expect("path"), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("Applied"), "{}", text(&out));
    assert_eq!(s.identities(), [row(1, "ann", "ann@x.com"), row(1, "bob", "bob@x.com"), row(2, "C-1", "cid@x.com")]);

    // JSON is told by its first character, and standard input works too.
    let mut child = s
        .command(&["import", "-", "--yes"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(br#"[{"email":"dan@x.com","integrationId":1,"identity":"dan"}]"#)
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(s.identities().contains(&row(1, "dan", "dan@x.com")));
}

#[test]
fn exit_codes_tell_usage_from_refusal_from_an_unreachable_server() {
    let s = setup();
    let good = s.write("good.csv", "email,integrationId,identity\nann@x.com,1,ann\n");
    let missing = s.client(&["import", "nope.csv", "--yes"]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(text(&missing).contains("nope.csv"));

    let out = s
        .command(&["import", good.to_str().expect("path"), "--yes"])
        .env("DEVID_API_KEY", "pat.default.nokey.nosecret")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "a wrong key is a usage error: {}", text(&out));
    assert!(!text(&out).contains("nosecret"), "the key is never printed: {}", text(&out));

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let out =
        s.command(&["import", good.to_str().expect("path"), "--yes"]).env("DEVID_URL", &closed).output().expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("Cannot talk to the devid server"), "{}", text(&out));
    assert!(!text(&out).contains(&s.key), "the key is never printed");
}

#[test]
fn a_profile_supplies_the_url_and_a_key_file() {
    let s = setup();
    let key_file = s.write("prod.key", &format!("{}\n", s.key));
    let config = s.write(
        "config.toml",
        &format!(
            "default_profile = \"prod\"\n[profiles.prod]\nurl = \"{}\"\napi_key_file = \"{}\"\n",
            s.server.base,
            key_file.display()
        ),
    );
    let good = s.write("good.csv", "email,integrationId,identity\nann@x.com,1,ann\n");
    let out = s
        .command(&["import", good.to_str().expect("path"), "--yes"])
        .env_remove("DEVID_URL")
        .env_remove("DEVID_API_KEY")
        .env("DEVID_CONFIG", &config)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(s.identities(), [row(1, "ann", "ann@x.com")]);

    let out = s
        .command(&["export", "--profile", "staging"])
        .env_remove("DEVID_URL")
        .env_remove("DEVID_API_KEY")
        .env("DEVID_CONFIG", &config)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no profile `staging`") && text(&out).contains("prod"), "{}", text(&out));
}

#[test]
fn export_writes_the_servers_csv_and_json_records() {
    let s = setup();
    let mut csv = String::from("email,integrationId,identity\n");
    for n in 0..2_500 {
        csv.push_str(&format!("dev{n}@x.com,{},user-{n}\n", 1 + n % 2));
    }
    csv.push_str("eve@x.com,2,=HYPERLINK(\"x\")\n");
    let file = s.write("many.csv", &csv);
    let out = s.client(&["import", file.to_str().expect("path"), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let out = s.client(&["export", "-o", "all.csv"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("Exported 2501 identities"), "{}", text(&out));
    let exported = std::fs::read_to_string(s.dir.join("all.csv")).expect("exported");
    assert!(exported.starts_with("email,integrationId,identity,applicationType,updatedAt\r\n"));
    assert_eq!(exported.lines().count(), 2_502);
    assert!(exported.contains("'=HYPERLINK"), "formulas stay guarded");
    assert!(!s.dir.join("all.csv.partial").exists());

    // Filters pass through; standard output when piped, with no progress bar on it.
    let out = s.client(&["export", "--integration-ids", "2", "--provenance"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let piped = String::from_utf8_lossy(&out.stdout);
    assert!(piped.starts_with("email,integrationId,identity,applicationType,updatedAt,locked,source\r\n"), "{piped}");
    assert_eq!(piped.lines().count(), 1 + 1_251);
    assert!(piped.lines().skip(1).all(|l| l.contains(",2,") && l.contains(",JIRA,") && l.contains(",false,")));

    // What was exported uploads back unchanged.
    let out = s.client(&["import", "all.csv", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("unchanged: 2501"), "{}", text(&out));

    let out = s.client(&["export", "--format", "json", "-o", "all.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let records: Value =
        serde_json::from_slice(&std::fs::read(s.dir.join("all.json")).expect("json")).expect("a JSON array");
    let records = records.as_array().expect("array");
    assert_eq!(records.len(), 2_501, "the cursor walk returns every record once");
    let mut identities: Vec<&str> = records.iter().map(|r| r["identity"].as_str().expect("identity")).collect();
    identities.sort_unstable();
    identities.dedup();
    assert_eq!(identities.len(), 2_501);
    assert!(records.iter().all(|r| r.get("createdAt").is_some() && r.get("locked").is_some()));
}

#[test]
fn sync_sends_only_the_difference_leaves_locked_alone_and_prunes_within_the_guard() {
    let s = setup();
    let mut held = String::from("email,integrationId,identity\n");
    for n in 0..40 {
        held.push_str(&format!("dev{n}@x.com,1,user-{n}\n"));
    }
    held.push_str("jira@x.com,2,J-1\n");
    let file = s.write("held.csv", &held);
    assert_eq!(s.client(&["import", file.to_str().expect("path"), "--yes"]).status.code(), Some(0));
    s.call(
        reqwest::Method::POST,
        "/v2/developers/identities/lock",
        Some(json!([{"integrationId": 1, "identity": "user-0"}, {"integrationId": 1, "identity": "user-1"}])),
    );

    // The source: user-0 (locked) moves, user-2 moves, user-1 (locked) and user-39 are
    // gone, user-40 is new, the rest unchanged; it says nothing of Jira.
    let mut source = String::from("email,integrationId,identity\n");
    source.push_str("someone-else@x.com,1,user-0\nnew-owner@x.com,1,USER-2\n");
    for n in 3..39 {
        source.push_str(&format!("dev{n}@x.com,1,user-{n}\n"));
    }
    source.push_str("dev40@x.com,1,user-40\n");
    let source_path = s.write("source.csv", &source);
    let source_arg = source_path.to_str().expect("path");

    let out = s.client(&["sync", "--source", source_arg, "--dry-run", "--prune"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan = text(&out);
    for expected in [
        "create:    1",
        "reassign:  1",
        "delete:    1",
        "unchanged: 36",
        "locked, left alone: 1 the source maps elsewhere, 1 absent",
    ] {
        assert!(plan.contains(expected), "`{expected}` in {plan}");
    }
    let before = s.identities();
    assert_eq!(before.len(), 41, "a dry run sends nothing");

    let changes_before =
        s.call(reqwest::Method::GET, "/v2/changes?limit=100", None)["changes"].as_array().map(Vec::len);
    let out = s.client(&["sync", "--source", source_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("received: 2"), "only the two changed rows are sent: {}", text(&out));
    assert!(text(&out).contains("1 absent kept"), "{}", text(&out));
    let after = s.identities();
    assert!(after.contains(&row(1, "user-40", "dev40@x.com")));
    assert!(after.contains(&row(1, "USER-2", "new-owner@x.com")), "USER-2 is user-2 on GitHub, shown as sent");
    assert!(!after.iter().any(|r| r.1 == "user-2"), "moved, not doubled");
    assert!(after.contains(&(1, "user-0".into(), "dev0@x.com".into(), true)), "locked: not moved");
    assert!(after.contains(&row(1, "user-39", "dev39@x.com")), "no --prune, no delete");
    let changes_after = s.call(reqwest::Method::GET, "/v2/changes?limit=100", None)["changes"].as_array().map(Vec::len);
    assert_eq!(changes_after.zip(changes_before).map(|(a, b)| a - b), Some(1), "one upload, nothing else");

    let out = s.client(&["sync", "--source", source_arg, "--prune"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let after = s.identities();
    assert!(!after.iter().any(|r| r.1 == "user-39"), "pruned");
    assert!(after.contains(&(1, "user-1".into(), "dev1@x.com".into(), true)), "locked: never pruned");
    assert!(after.contains(&row(2, "J-1", "jira@x.com")), "Jira is outside the source's scope");

    // A truncated source: everything but three rows would go.
    let truncated = s.write(
        "truncated.csv",
        "email,integrationId,identity\ndev3@x.com,1,user-3\ndev4@x.com,1,user-4\ndev5@x.com,1,user-5\n",
    );
    let before = s.identities();
    let out = s.client(&["sync", "--source", truncated.to_str().expect("path"), "--prune"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("delete:    35") && text(&out).contains("Nothing was sent"), "{}", text(&out));
    assert_eq!(s.identities(), before, "the guard deletes nothing");
    let out = s.client(&["sync", "--source", truncated.to_str().expect("path"), "--prune", "--max-deletes", "50"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let left: Vec<String> = s.identities().into_iter().filter(|r| r.0 == 1).map(|r| r.1).collect();
    assert_eq!(left, ["user-0", "user-1", "user-3", "user-4", "user-5"], "the locked two stay");
}

#[test]
fn sync_every_keeps_running_through_an_outage() {
    let s = setup();
    let source = s.write("source.csv", "email,integrationId,identity\nann@x.com,1,ann\n");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let mut child = s
        .command(&["sync", "--source", source.to_str().expect("path"), "--every", "10s"])
        .env("DEVID_URL", &closed)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_secs(2));
    assert!(child.try_wait().expect("wait").is_none(), "still running after the first failure");
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("sync failed, retrying in") && log.contains("Cannot talk to the devid server"), "{log}");
}

#[test]
fn an_interrupted_sync_leaves_the_server_before_or_after_its_upload() {
    let s = setup();
    let mut source = String::from("email,integrationId,identity\n");
    for n in 0..200_000 {
        source.push_str(&format!("dev{n}@example.com,1,user-{n}\n"));
    }
    let source = s.write("big.csv", &source);
    let count = || {
        s.call(reqwest::Method::GET, "/v2/developers/identities?pageSize=1", None)["_metadata"]["total_count"]
            .as_u64()
            .expect("count")
    };
    // Killed at several moments of its run: while reading, while sending, while the
    // server applies; each time the server holds none or all of the upload.
    for delay in [300u64, 900, 1_500] {
        let mut child = s
            .command(&["sync", "--source", source.to_str().expect("path")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(delay));
        let _ = Command::new("kill").args(["-9", &child.id().to_string()]).status();
        let _ = child.wait();
        // Give a request the server already has time to commit or roll back.
        std::thread::sleep(Duration::from_millis(500));
        let held = count();
        assert!(held == 0 || held == 200_000, "after kill at {delay} ms the server holds {held}");
        if held == 200_000 {
            break;
        }
    }
    let out = s.client(&["sync", "--source", source.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(count(), 200_000, "a rerun completes it");
}

#[test]
fn doctor_applies_the_server_rules_offline() {
    let dir = tempfile::tempdir().expect("dir");
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "email,integrationId,identity\nann@x.com,1,Ann\ncid@,2,c\n,3,d\n").expect("write");
    let run = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_devid")).args(args).output().expect("run");
    let known = ["--integration", "1=GITHUB", "--integration", "2=JIRA"];
    let out = run(&[&["doctor", bad.to_str().expect("path")][..], &known].concat());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let shown = text(&out);
    for expected in ["line 3", "INVALID_EMAIL", "UNKNOWN_INTEGRATION", "line 4", "REQUIRED_VALUE_MISSING"] {
        assert!(shown.contains(expected), "`{expected}` in {shown}");
    }
    // Rows that are each valid can still clash, as the server compares them: Ann and
    // ann are one GitHub user.
    let clash = dir.path().join("clash.csv");
    std::fs::write(&clash, "email,integrationId,identity\nann@x.com,1,Ann\nbob@x.com,1,ann\n").expect("write");
    let out = run(&[&["doctor", clash.to_str().expect("path")][..], &known].concat());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("CONFLICTING_ROWS") && text(&out).contains("line 3"), "{}", text(&out));
    let out = run(&["doctor", clash.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(0), "without the types, identities compare exactly: {}", text(&out));
    assert!(text(&out).contains("--integration ID=TYPE"), "and it says so: {}", text(&out));
    let good = dir.path().join("good.json");
    std::fs::write(&good, r#"[{"email":"ann@x.com","integrationId":1,"identity":"ann"},{"email":"ann@x.com","integrationId":1,"identity":"ann"}]"#)
        .expect("write");
    let out = run(&["doctor", good.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("valid JSON") && text(&out).contains("repeated rows (folded): 1"), "{}", text(&out));
}

fn numpy_mailmap() -> PathBuf {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    [std::env::var_os("DEVID_SHARED_DATA").map(PathBuf::from), Some(beside), Some(PathBuf::from("/work/shared/data"))]
        .into_iter()
        .flatten()
        .map(|dir| dir.join("numpy/mailmap"))
        .find(|p| p.exists())
        .expect("shared/data/numpy/mailmap is beside the repository, in /work/shared/data, or under DEVID_SHARED_DATA")
}

#[test]
fn a_mailmap_becomes_git_identities_of_the_canonical_developers() {
    let s = setup();
    let db_added = s.call(
        reqwest::Method::POST,
        "/v2/integrations",
        Some(json!({"id": 3, "applicationType": "GIT", "name": "numpy"})),
    );
    assert_eq!(db_added["id"], 3, "{db_added}");
    let mailmap = numpy_mailmap();
    let out = s.client(&["import", "--mailmap", mailmap.to_str().expect("path"), "--integration", "3", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("mailmap:775: skipped"), "the unterminated line is reported: {shown}");
    assert!(shown.contains("mailmap:653: skipped"), "a canonical email that is no address is reported: {shown}");
    assert!(shown.contains("mailmap:529: note"), "text after `>` is reported: {shown}");
    // A broken address git recorded is still an alias of the person the line names.
    let alias =
        s.call(reqwest::Method::GET, "/v2/developers/identities?integrationIds=3&searchValue=dhuard%40localhost", None);
    assert_eq!(alias["records"][0]["email"], "david.huard@gmail.com", "{alias}");

    // Checked against the file read here, independently: every two-email line's commit
    // email is an identity of its canonical email's developer.
    let text = std::fs::read_to_string(&mailmap).expect("mailmap");
    let listing = s.call(reqwest::Method::GET, "/v2/developers/identities?integrationIds=3&pageSize=1000", None);
    let total = listing["_metadata"]["total_count"].as_u64().expect("count");
    assert!(total > 700, "{total} identities");
    let mut checked = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let emails: Vec<&str> =
            line.split('<').skip(1).filter_map(|p| p.split_once('>').map(|(e, _)| e.trim())).collect();
        if emails.len() == 2 && emails.iter().all(|e| e.contains('@') && !e.contains("localhost")) && checked < 40 {
            let found = s.call(
                reqwest::Method::GET,
                &format!("/v2/developers/identities?integrationIds=3&searchValue={}", urlencode(emails[1])),
                None,
            );
            let records = found["records"].as_array().expect("records");
            let hit =
                records.iter().find(|r| r["identity"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(emails[1])));
            if let Some(hit) = hit {
                assert_eq!(hit["email"].as_str().map(str::to_lowercase), Some(emails[0].to_lowercase()), "{line}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 40, "checked {checked} aliases");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn completions_and_the_man_page_come_from_the_command_definitions() {
    let run = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_devid")).args(args).output().expect("run");
    let bash = run(&["completions", "bash"]);
    assert!(bash.status.success());
    let script = String::from_utf8_lossy(&bash.stdout);
    assert!(
        script.contains("_devid") && script.contains("sync") && script.contains("--max-deletes"),
        "bash completion"
    );
    for shell in ["zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("import"), "{shell}");
    }
    let man = run(&["man"]);
    assert!(man.status.success());
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(page.contains(".TH devid") && page.contains("sync"), "{page}");
    assert_eq!(run(&["completions", "tcsh"]).status.code(), Some(2), "an unknown shell is a usage error");
}

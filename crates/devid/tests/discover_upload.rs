//! `devid discover --commits-csv` against a running `devid serve`, end to end: numpy's
//! history goes in, a few identities are mapped, and the unmapped authors and the
//! attributed share the server reports are checked against numbers computed here from
//! the CSV, independently of devid's readers.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use common::{devid, start};
use serde_json::{Value, json};

fn numpy_commits_csv() -> PathBuf {
    let beside = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    [std::env::var_os("DEVID_SHARED_DATA").map(PathBuf::from), Some(beside), Some(PathBuf::from("/work/shared/data"))]
        .into_iter()
        .flatten()
        .map(|dir| dir.join("numpy/commits.csv"))
        .find(|p| p.exists())
        .expect(
            "shared/data/numpy/commits.csv is beside the repository, in /work/shared/data, or under DEVID_SHARED_DATA",
        )
}

fn call(method: reqwest::Method, url: String, key: &str, body: Option<Value>) -> Value {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let mut request = reqwest::Client::new().request(method, url).header("x-api-key", key);
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

#[test]
fn discovered_history_shows_the_unmapped_authors_and_the_attributed_share() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("devid.db");
    let made = devid(&db, &["keys", "create", "--scope", "admin"]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let key = String::from_utf8_lossy(&made.stdout).trim().to_string();
    let added = devid(&db, &["integrations", "add", "--id", "3", "--type", "GIT", "--name", "numpy"]);
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let server = start(&db);

    let csv_path = numpy_commits_csv();
    let run = Command::new(env!("CARGO_BIN_EXE_devid"))
        .args(["discover", "--integration", "3", "--commits-csv"])
        .arg(&csv_path)
        .env("DEVID_URL", &server.base)
        .env("DEVID_API_KEY", &key)
        .output()
        .expect("run devid discover");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));

    // Independently: per lower-cased email, commits authored, and commits committed for
    // someone else (kind `other`), each commit counted once.
    let mut reader = csv::Reader::from_path(&csv_path).expect("open the CSV");
    let mut authored: HashMap<String, u64> = HashMap::new();
    let mut committed: HashMap<String, u64> = HashMap::new();
    for record in reader.records() {
        let r = record.expect("a commit");
        let (author, committer) = (r[2].to_lowercase(), r[5].to_lowercase());
        if !author.is_empty() {
            *authored.entry(author.clone()).or_default() += 1;
        }
        if !committer.is_empty() && committer != author {
            *committed.entry(committer).or_default() += 1;
        }
    }
    let activity = |email: &str| authored.get(email).copied().unwrap_or(0) + committed.get(email).copied().unwrap_or(0);
    let is_bot =
        |email: &str| email.contains("[bot]") || email == "bot@stepsecurity.io" || email == "noreply@github.com";
    let mut people: Vec<&String> = authored.keys().filter(|e| !is_bot(e)).collect();
    people.sort_by_key(|e| std::cmp::Reverse(activity(e)));
    let mapped: Vec<&String> = people.iter().take(3).copied().collect();
    let rows: Vec<Value> = mapped
        .iter()
        .enumerate()
        .map(|(i, e)| json!({"email": format!("dev{i}@corp.example"), "integrationId": 3, "identity": e}))
        .collect();
    call(reqwest::Method::PATCH, format!("{}/v2/developers/identities", server.base), &key, Some(json!(rows)));

    let page =
        call(reqwest::Method::GET, format!("{}/v2/contributors?status=unmapped&pageSize=10", server.base), &key, None);
    let records = page["records"].as_array().expect("records");
    let mut everyone: Vec<&String> =
        authored.keys().chain(committed.keys()).filter(|e| !is_bot(e) && !mapped.contains(e)).collect();
    everyone.sort();
    everyone.dedup();
    let mut expected: Vec<u64> = everyone.iter().map(|e| activity(e)).collect();
    expected.sort_by_key(|n| std::cmp::Reverse(*n));
    let reported: Vec<u64> = records.iter().map(|r| r["activity"]["total"].as_u64().expect("total")).collect();
    assert_eq!(reported, expected[..10].to_vec(), "the ten most active unmapped, by activity");
    for r in records {
        let email = r["identity"].as_str().expect("identity").to_lowercase();
        assert_eq!(r["activity"]["commit"].as_u64(), Some(authored.get(&email).copied().unwrap_or(0)), "{email}");
    }
    assert_eq!(page["_metadata"]["total_count"].as_u64(), Some(everyone.len() as u64));

    let coverage = call(reqwest::Method::GET, format!("{}/v2/coverage", server.base), &key, None);
    let git = &coverage["integrations"][0];
    let human_commits: u64 = authored.iter().filter(|(e, _)| !is_bot(e)).map(|(_, n)| n).sum();
    let attributed: u64 = mapped.iter().map(|e| authored[*e]).sum();
    assert_eq!(git["activity"]["commit"].as_u64(), Some(human_commits));
    assert_eq!(git["attributedActivity"]["commit"].as_u64(), Some(attributed));
    let share = git["attributedShare"]["commit"].as_f64().expect("a share");
    assert!((share - attributed as f64 / human_commits as f64).abs() < 1e-12, "{share}");
    let bots =
        call(reqwest::Method::GET, format!("{}/v2/contributors?status=bot&sortKey=identity", server.base), &key, None);
    let flagged: Vec<String> = bots["records"]
        .as_array()
        .expect("bots")
        .iter()
        .map(|r| r["identity"].as_str().unwrap_or_default().to_lowercase())
        .collect();
    for bot in [
        "49699333+dependabot[bot]@users.noreply.github.com",
        "27856297+dependabot-preview[bot]@users.noreply.github.com",
        "bot@stepsecurity.io",
        "noreply@github.com",
    ] {
        assert!(flagged.contains(&bot.to_string()), "{bot} is flagged: {flagged:?}");
    }

    // The same scan again: nothing changes.
    let again = Command::new(env!("CARGO_BIN_EXE_devid"))
        .args(["discover", "--integration", "3", "--commits-csv"])
        .arg(&csv_path)
        .env("DEVID_URL", &server.base)
        .env("DEVID_API_KEY", &key)
        .output()
        .expect("run devid discover");
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let after = call(reqwest::Method::GET, format!("{}/v2/coverage", server.base), &key, None);
    assert_eq!(after["integrations"], coverage["integrations"], "a re-run scan changes nothing");
}

//! Crash safety with the real binary: an upload killed with SIGKILL at any point leaves
//! all of it or none of it, and an intact database; SIGTERM lets it finish.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{Server, start};

const ROWS: usize = 500_000;

fn signal(server: &Server, name: &str) {
    let status =
        Command::new("kill").args([&format!("-{name}"), &server.child.id().to_string()]).status().expect("kill");
    assert!(status.success());
}

fn csv(tag: &str) -> Vec<u8> {
    let mut out = String::with_capacity(ROWS * 40);
    out.push_str("email,integrationId,identity\n");
    for i in 0..ROWS {
        out.push_str(&format!("{tag}{}@x.com,1,{tag}-user-{i}\n", i / 5));
    }
    out.into_bytes()
}

fn count(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).expect("open");
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity check");
    assert_eq!(check, "ok", "the database is intact");
    conn.query_row("SELECT COUNT(*) FROM identities", [], |r| r.get(0)).expect("count")
}

/// Index names and definitions, and how many indexes a bulk load left to rebuild.
fn indexes(db: &Path) -> (Vec<(String, String)>, i64) {
    let conn = rusqlite::Connection::open(db).expect("open");
    let mut stmt = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name")
        .expect("prepare");
    let all = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<Vec<_>, _>>()
        .expect("indexes");
    let pending = conn.query_row("SELECT COUNT(*) FROM pending_indexes", [], |r| r.get(0)).expect("pending");
    (all, pending)
}

async fn upload(base: &str, key: &str, body: Vec<u8>) -> Result<reqwest::Response, reqwest::Error> {
    let form = reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(body).file_name("x.csv"));
    reqwest::Client::new()
        .patch(format!("{base}/v2/developers/identities"))
        .header("x-api-key", key)
        .multipart(form)
        .send()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_upload_leaves_all_or_nothing_and_sigterm_finishes_it() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("devid.db");
    let key = common::admin_key_and_github(&db);

    let (schema_indexes, _) = indexes(&db);
    // A full upload first: the baseline, and how long one takes here. Into an empty
    // table it is answered before its listing indexes are rebuilt, and the kill that
    // follows (dropping the server) usually lands during that rebuild.
    let server = start(&db);
    let started = Instant::now();
    let r = upload(&server.base, &key, csv("base")).await.expect("upload");
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap_or_default());
    let full = started.elapsed();
    drop(server);
    let mut expected = ROWS as i64;
    assert_eq!(count(&db), expected);
    let (_, left_to_build) = indexes(&db);
    eprintln!("killed after the bulk load's answer: {left_to_build} indexes left to build");
    drop(start(&db));
    assert_eq!(indexes(&db), (schema_indexes, 0), "the next start builds every index the load left out");

    for (attempt, fraction) in [0.2, 0.5, 0.8, 0.95].into_iter().enumerate() {
        let server = start(&db);
        let tag = format!("k{attempt}");
        let upload = tokio::spawn({
            let (base, key) = (server.base.clone(), key.clone());
            async move { upload(&base, &key, csv(&tag)).await }
        });
        tokio::time::sleep(full.mul_f64(fraction)).await;
        signal(&server, "KILL");
        let answered = upload.await.expect("task");
        drop(server);
        let after = count(&db);
        assert!(
            after == expected || after == expected + ROWS as i64,
            "killed at {:.0} % of an upload: {after} identities, expected {expected} or {}",
            fraction * 100.0,
            expected + ROWS as i64
        );
        if let Ok(r) = answered
            && r.status().is_success()
        {
            assert_eq!(after, expected + ROWS as i64, "a 200 means it was committed");
        }
        expected = after;
        eprintln!("killed at {:.0} %: {after} identities", fraction * 100.0);
    }

    let server = start(&db);
    let upload = tokio::spawn({
        let (base, key) = (server.base.clone(), key.clone());
        async move { upload(&base, &key, csv("term")).await }
    });
    tokio::time::sleep(full.mul_f64(0.5)).await;
    signal(&server, "TERM");
    let r = upload.await.expect("task").expect("the in-flight upload is answered");
    assert_eq!(r.status().as_u16(), 200, "SIGTERM lets the upload finish");
    let mut server = server;
    let status = tokio::task::spawn_blocking(move || server.child.wait()).await.expect("join").expect("wait");
    assert!(status.success(), "exit {status:?}");
    assert_eq!(count(&db), expected + ROWS as i64);
}

/// A revert killed with SIGKILL undoes all of the change or none of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_revert_leaves_all_or_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("devid.db");
    let key = common::admin_key_and_github(&db);
    let server = start(&db);
    let r = upload(&server.base, &key, csv("rev")).await.expect("upload");
    assert_eq!(r.status().as_u16(), 200);
    let client = reqwest::Client::new();
    let changes: serde_json::Value = client
        .get(format!("{}/v2/changes?kind=upload", server.base))
        .header("x-api-key", &key)
        .send()
        .await
        .expect("feed")
        .json()
        .await
        .expect("json");
    let change = changes["changes"][0]["id"].as_i64().expect("the upload's change set");
    let revert = move |base: String, key: String, query: &'static str| async move {
        reqwest::Client::new()
            .post(format!("{base}/v2/changes/{change}/revert{query}"))
            .header("x-api-key", key)
            .send()
            .await
    };
    // A dry run does the same work and rolls it back: how long a revert takes here.
    let started = Instant::now();
    let dry = revert(server.base.clone(), key.clone(), "?dryRun=true").await.expect("dry run");
    assert_eq!(dry.status().as_u16(), 200);
    let full = started.elapsed();
    drop(server);
    assert_eq!(count(&db), ROWS as i64);

    let server = start(&db);
    let task = tokio::spawn(revert(server.base.clone(), key.clone(), ""));
    tokio::time::sleep(full.mul_f64(0.5)).await;
    signal(&server, "KILL");
    let answered = task.await.expect("task");
    drop(server);
    let after = count(&db);
    assert!(after == ROWS as i64 || after == 0, "killed mid-revert: {after} identities, expected {ROWS} or 0");
    if let Ok(r) = answered
        && r.status().is_success()
    {
        assert_eq!(after, 0, "a 200 means the revert was committed");
    }
    eprintln!("killed at half a revert's time: {after} identities left");
}

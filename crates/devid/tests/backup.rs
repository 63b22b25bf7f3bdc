//! `devid backup` against a live server: every backup taken while a large upload runs
//! holds a complete state (all of that upload or none of it, in an intact database),
//! and a backup copied into place is a database devid serves.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{devid, start};

const BASE_ROWS: usize = 1_000;
const UPLOAD_ROWS: usize = 300_000;

fn csv(tag: &str, rows: usize) -> Vec<u8> {
    let mut out = String::with_capacity(rows * 40);
    out.push_str("email,integrationId,identity\n");
    for i in 0..rows {
        out.push_str(&format!("{tag}{}@x.com,1,{tag}-user-{i}\n", i / 5));
    }
    out.into_bytes()
}

fn upload(base: &str, key: &str, body: Vec<u8>) -> serde_json::Value {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let part = reqwest::multipart::Part::bytes(body).file_name("identities.csv");
        let r = reqwest::Client::new()
            .patch(format!("{base}/v2/developers/identities"))
            .header("x-api-key", key)
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await
            .expect("send the upload");
        assert_eq!(r.status(), 200, "the upload succeeds");
        r.json().await.expect("json")
    })
}

fn total_count(base: &str, key: &str) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let page: serde_json::Value = reqwest::Client::new()
            .get(format!("{base}/v2/developers/identities?pageSize=5&sortKey=email"))
            .header("x-api-key", key)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        page["_metadata"]["total_count"].as_u64().expect("a total count")
    })
}

/// Identities in an intact copy.
fn identities_in(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).expect("open the backup");
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity check");
    assert_eq!(check, "ok", "{} is intact", db.display());
    conn.query_row("SELECT COUNT(*) FROM identities", [], |r| r.get(0)).expect("count")
}

/// Copies `backup` into a fresh directory as its database, as the README's restore does.
fn restore(backup: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("devid.db");
    std::fs::copy(backup, &db).expect("copy the backup into place");
    (dir, db)
}

#[test]
fn backups_taken_during_an_upload_hold_a_complete_state_and_restore() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("devid.db");
    let made = devid(&db, &["keys", "create", "--scope", "admin"]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let key = String::from_utf8_lossy(&made.stdout).trim().to_string();
    assert!(devid(&db, &["integrations", "add", "--id", "1", "--type", "GITHUB", "--name", "GitHub"]).status.success());
    let server = start(&db);
    let summary = upload(&server.base, &key, csv("base", BASE_ROWS));
    assert_eq!(summary["summary"]["created"], BASE_ROWS);

    let done = Arc::new(AtomicBool::new(false));
    let uploading = {
        let (base, key, done) = (server.base.clone(), key.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let answer = upload(&base, &key, csv("big", UPLOAD_ROWS));
            done.store(true, Ordering::SeqCst);
            answer
        })
    };
    let mut during = Vec::new();
    let mut n = 0;
    // Spread over the whole upload (body, validation, the write transaction, its
    // commit and index rebuild), however long it takes here.
    while !done.load(Ordering::SeqCst) && n < 1_000 {
        n += 1;
        let to = dir.path().join(format!("backup-{n}.db"));
        let out = devid(&db, &["backup", "--to", to.to_str().expect("utf-8")]);
        assert!(out.status.success(), "backup {n}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("consistent snapshot"));
        if !done.load(Ordering::SeqCst) {
            during.push(to);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let answer = uploading.join().expect("upload thread");
    assert_eq!(answer["summary"]["created"], UPLOAD_ROWS);
    assert!(!during.is_empty(), "at least one backup finished while the upload was still running");
    eprintln!("{} backups finished while the upload ran", during.len());

    let complete = [BASE_ROWS as i64, (BASE_ROWS + UPLOAD_ROWS) as i64];
    for backup in &during {
        let n = identities_in(backup);
        assert!(complete.contains(&n), "{} holds {n} identities: part of an upload", backup.display());
    }
    let final_backup = dir.path().join("final.db");
    assert!(devid(&db, &["backup", "--to", final_backup.to_str().expect("utf-8")]).status.success());
    assert_eq!(identities_in(&final_backup), complete[1]);
    let again = devid(&db, &["backup", "--to", final_backup.to_str().expect("utf-8")]);
    assert!(!again.status.success(), "a backup never overwrites a file");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    drop(server);

    // Restored, each backup opens and serves its whole state, listing included (a
    // backup taken between a bulk load and its index rebuild is rebuilt on start).
    for (backup, expected) in [
        (&final_backup, complete[1]),
        (during.last().expect("a backup during the upload"), identities_in(&during[during.len() - 1])),
    ] {
        let (_dir, restored) = restore(backup);
        let server = start(&restored);
        assert_eq!(total_count(&server.base, &key) as i64, expected, "{} restored", backup.display());
    }
}

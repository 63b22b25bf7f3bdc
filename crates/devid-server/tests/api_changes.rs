//! The change feed over HTTP: every write that changed something once, oldest first,
//! paged by the last id seen, filtered; one change set with its events; bad requests
//! answered with a sentence, and other accounts' changes never shown.

#[macro_use]
mod common;

use common::{TestApp, expect_error, expect_status};
use devid_core::types::{ApplicationType, Scope};
use serde_json::{Value, json};

async fn get(app: &TestApp, path: &str, key: &str) -> Value {
    expect_status(app.get(path, key).send().await.expect("send"), 200).await
}

fn ids(page: &Value) -> Vec<i64> {
    page["changes"].as_array().map(|a| a.iter().filter_map(|c| c["id"].as_i64()).collect()).unwrap_or_default()
}

both_backends! {
async fn every_write_appears_once_in_order_with_its_events() {
    let app = TestApp::spawn().await;
    app.integration("default", 1, ApplicationType::Github).await;
    let k = app.admin_key.clone();
    let rows = json!([
        {"email": "a@x.com", "integrationId": 1, "identity": "alice"},
        {"email": "b@x.com", "integrationId": 1, "identity": "bob"},
    ]);
    let sent = app.patch_json("/v2/developers/identities", &k, &rows).header("x-request-id", "sync-42").send().await.expect("send");
    expect_status(sent, 200).await;
    // The same rows again change nothing, and make no change set.
    expect_status(app.patch_json("/v2/developers/identities", &k, &rows).send().await.expect("send"), 200).await;
    let del = app.client.delete(app.url("/v2/developers/identities")).header("x-api-key", &k)
        .json(&json!([{"integrationId": 1, "identity": "bob"}]));
    expect_status(del.send().await.expect("send"), 200).await;

    let all = get(&app, "/v2/changes", &k).await;
    let changes = all["changes"].as_array().expect("changes").clone();
    let kinds: Vec<&str> = changes.iter().filter_map(|c| c["kind"].as_str()).collect();
    assert_eq!(kinds[kinds.len() - 2..], ["upload", "delete"], "{all}");
    assert_eq!(all["hasNext"], false);
    assert_eq!(all["nextAfter"], changes.last().expect("one")["id"]);
    let upload = &changes[changes.len() - 2];
    assert_eq!(upload["requestId"], "sync-42");
    assert_eq!((upload["events"].as_i64(), &upload["counts"]), (Some(2), &json!({"identity.created": 2})));
    assert!(upload["keyId"].is_string());

    // Paged one at a time by the last id seen: every change set once, in order.
    let mut walked = Vec::new();
    let mut after = 0;
    loop {
        let page = get(&app, &format!("/v2/changes?limit=1&after={after}"), &k).await;
        walked.extend(ids(&page));
        after = page["nextAfter"].as_i64().expect("nextAfter");
        if page["hasNext"] == false {
            break;
        }
    }
    assert_eq!(walked, ids(&all));
    // Past the end: nothing, and the cursor stays where it was.
    let end = get(&app, &format!("/v2/changes?after={after}"), &k).await;
    assert_eq!((ids(&end).len(), end["nextAfter"].as_i64()), (0, Some(after)));

    let deletes = get(&app, "/v2/changes?kind=DELETE", &k).await;
    assert_eq!(ids(&deletes), [changes.last().expect("delete")["id"].as_i64().expect("id")]);
    let about_bob = get(&app, "/v2/changes?identity=bob", &k).await;
    assert_eq!(ids(&about_bob).len(), 2, "bob was created, then deleted: {about_bob}");
    let by_email = get(&app, "/v2/changes?email=A@X.com", &k).await;
    assert_eq!(ids(&by_email), [upload["id"].as_i64().expect("id")]);

    // One change set, its events paged.
    let id = upload["id"].as_i64().expect("id");
    let first = get(&app, &format!("/v2/changes/{id}?limit=1"), &k).await;
    assert_eq!(first["change"], *upload);
    assert_eq!((first["events"].as_array().map(Vec::len), &first["hasNext"]), (Some(1), &json!(true)));
    let next = get(&app, &format!("/v2/changes/{id}?after={}", first["nextAfter"]), &k).await;
    let identities: Vec<&str> = first["events"].as_array().into_iter().chain(next["events"].as_array())
        .flatten().filter_map(|e| e["identity"].as_str()).collect();
    assert_eq!(identities, ["alice", "bob"]);
    assert_eq!(next["hasNext"], false);
}

async fn bad_feed_requests_are_refused_with_a_sentence_and_accounts_stay_apart() {
    let app = TestApp::spawn().await;
    let k = app.admin_key.clone();
    for query in ["after=-1", "after=abc", "after=9007199254740992", "limit=0", "limit=1001", "kind=merge", "from=yesterday", "pagesize=5"] {
        let body = expect_error(app.get(&format!("/v2/changes?{query}"), &k).send().await.expect("send"), 400).await;
        let message = body["message"].as_str().unwrap_or_default().to_string();
        assert!(!message.is_empty(), "{query}: {body}");
    }
    let kinds = expect_error(app.get("/v2/changes?kind=merge", &k).send().await.expect("send"), 400).await;
    assert!(kinds.to_string().contains("bot-flag"), "the error lists the kinds: {kinds}");
    for path in ["/v2/changes/abc", "/v2/changes/0", "/v2/changes/-3", "/v2/changes/999999"] {
        expect_error(app.get(path, &k).send().await.expect("send"), 404).await;
    }
    // Another account's change set is not found here, and not in the feed.
    let other = app.key("other", &[Scope::Admin]).await;
    app.integration("other", 1, ApplicationType::Github).await;
    let rows = json!([{"email": "secret@other.com", "integrationId": 1, "identity": "hidden"}]);
    expect_status(app.patch_json("/v2/developers/identities", &other, &rows).send().await.expect("send"), 200).await;
    let theirs = get(&app, "/v2/changes?kind=upload", &other).await;
    let id = ids(&theirs)[0];
    expect_error(app.get(&format!("/v2/changes/{id}"), &k).send().await.expect("send"), 404).await;
    let mine = get(&app, "/v2/changes?identity=hidden", &k).await;
    assert!(ids(&mine).is_empty());
    // A key without read scope may not read the feed.
    let writer = app.key("default", &[Scope::DeveloperRecordsWrite]).await;
    let refused = app.get("/v2/changes", &writer).send().await.expect("send");
    assert_eq!(refused.status().as_u16(), 403);
}
}

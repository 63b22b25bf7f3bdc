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

async fn a_change_set_is_reverted_exactly_and_later_changes_are_protected() {
    let app = TestApp::spawn().await;
    app.integration("default", 1, ApplicationType::Github).await;
    let k = app.admin_key.clone();
    let patch = |rows: Value| app.patch_json("/v2/developers/identities", &k, &rows).send();
    expect_status(patch(json!([{"email": "a@x.com", "integrationId": 1, "identity": "alice"}])).await.expect("send"), 200).await;
    let before = app.dump().await;
    expect_status(patch(json!([
        {"email": "moved@x.com", "integrationId": 1, "identity": "alice"},
        {"email": "b@x.com", "integrationId": 1, "identity": "bob"},
    ])).await.expect("send"), 200).await;
    let feed = get(&app, "/v2/changes?kind=upload", &k).await;
    let second = *ids(&feed).last().expect("the second upload");

    // A dry run answers the counts and changes nothing.
    let post = |path: String, key: &str| app.client.post(app.url(&path)).header("x-api-key", key).send();
    let dry = expect_status(post(format!("/v2/changes/{second}/revert?dryRun=true"), &k).await.expect("send"), 200).await;
    assert_eq!((dry["dryRun"].as_bool(), dry["summary"]["deleted"].as_i64(), dry["summary"]["movedBack"].as_i64()), (Some(true), Some(1), Some(1)));
    assert!(dry["change"].is_null());
    assert_ne!(app.dump().await, before);

    let done = expect_status(post(format!("/v2/changes/{second}/revert"), &k).await.expect("send"), 200).await;
    assert_eq!(done["change"]["kind"], "revert");
    assert_eq!(done["change"]["reverts"], second);
    assert_eq!(app.dump().await, before, "back exactly");
    let reverts = get(&app, "/v2/changes?kind=revert", &k).await;
    assert_eq!(ids(&reverts), [done["change"]["id"].as_i64().expect("id")]);

    // A later change protects what it touched: 409 naming it, nothing applied.
    expect_status(patch(json!([{"email": "c@x.com", "integrationId": 1, "identity": "alice"}])).await.expect("send"), 200).await;
    let later = *ids(&get(&app, "/v2/changes?kind=upload", &k).await).last().expect("later");
    let first = ids(&feed)[0];
    let state = app.dump().await;
    let refused = post(format!("/v2/changes/{first}/revert"), &k).await.expect("send");
    let body = expect_status(refused, 409).await;
    assert_eq!(body["conflicts"][0]["identity"], "alice", "{body}");
    assert_eq!(body["conflicts"][0]["laterChanges"].as_array().and_then(|a| a.last()).and_then(Value::as_i64), Some(later));
    assert!(body["message"].as_str().is_some_and(|m| m.contains("force=true")), "{body}");
    assert_eq!(app.dump().await, state, "nothing applied");
    let forced = expect_status(post(format!("/v2/changes/{first}/revert?force=true"), &k).await.expect("send"), 200).await;
    assert_eq!(forced["summary"]["skipped"], 1);
    assert_eq!(forced["skipped"][0]["identity"], "alice");

    // What has no inverse, what is not there, and who may not.
    let integration_change = ids(&get(&app, "/v2/changes?kind=integration", &k).await)[0];
    let body = expect_error(post(format!("/v2/changes/{integration_change}/revert"), &k).await.expect("send"), 409).await;
    assert!(body["message"].as_str().is_some_and(|m| m.contains("integration")), "{body}");
    assert_eq!((body["total"].as_i64(), body["conflicts"].as_array().map(Vec::len)), (Some(0), Some(0)), "{body}");
    // An upload that made an integration on the way reverts its identities and leaves
    // the integration, empty.
    let cloud = json!({"integrationUsers": [{"email": "j@x.com", "applicationType": "JIRA", "cloudId": "acc-1"}]});
    let made = app.client.post(app.url("/v2/developers/cloud-ids")).header("x-api-key", &k).json(&cloud).send().await.expect("send");
    expect_status(made, 200).await;
    let with_integration = *ids(&get(&app, "/v2/changes?kind=upload", &k).await).last().expect("upload");
    let undone = expect_status(post(format!("/v2/changes/{with_integration}/revert"), &k).await.expect("send"), 200).await;
    assert_eq!(undone["summary"]["deleted"], 1, "{undone}");
    assert!(app.dump().await.iter().all(|(_, _, identity)| identity != "acc-1"));
    let integrations = get(&app, "/v2/integrations", &k).await;
    assert!(integrations.to_string().contains("JIRA"), "{integrations}");
    expect_error(post("/v2/changes/999999/revert".into(), &k).await.expect("send"), 404).await;
    expect_error(post("/v2/changes/x/revert".into(), &k).await.expect("send"), 404).await;
    expect_error(post(format!("/v2/changes/{first}/revert?force=maybe"), &k).await.expect("send"), 400).await;
    let reader = app.key("default", &[Scope::DeveloperRecordsRead, Scope::DeveloperRecordsWrite]).await;
    assert_eq!(post(format!("/v2/changes/{first}/revert"), &reader).await.expect("send").status().as_u16(), 403);
}
}

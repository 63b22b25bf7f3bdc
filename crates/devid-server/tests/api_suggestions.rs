//! Suggestions over HTTP: listed with their evidence, accepted (one, a batch, every
//! `auto`), rejected for good, skipped; stale, unknown and decided ids refused with
//! nothing applied.

#[macro_use]
mod common;

use common::{TestApp, expect_error, expect_status};
use devid_core::types::{ApplicationType, Scope};
use serde_json::{Value, json};

fn post(app: &TestApp, path: &str, key: &str) -> reqwest::RequestBuilder {
    app.client.post(app.url(path)).header("x-api-key", key)
}

async fn ingest(app: &TestApp, source: &str, rows: &Value) {
    let r =
        post(app, &format!("/v2/contributors?source={source}"), &app.admin_key).json(rows).send().await.expect("send");
    expect_status(r, 200).await;
}

async fn suggestions(app: &TestApp, query: &str) -> Value {
    expect_status(app.get(&format!("/v2/suggestions{query}"), &app.admin_key).send().await.expect("send"), 200).await
}

fn records(page: &Value) -> Vec<Value> {
    page["records"].as_array().cloned().unwrap_or_default()
}

/// The suggestion whose contributors include `identity`.
fn about(page: &Value, identity: &str) -> Option<Value> {
    records(page)
        .into_iter()
        .find(|s| s["contributors"].as_array().is_some_and(|cs| cs.iter().any(|c| c["identity"] == identity)))
}

/// Jane is a developer with her GitHub login mapped; her Jira account carries her
/// address. Bob is two unmapped accounts with one address. Two Davids share only a
/// first name.
async fn seeded() -> TestApp {
    let app = TestApp::spawn().await;
    app.integration("default", 1, ApplicationType::Github).await;
    app.integration("default", 2, ApplicationType::Jira).await;
    app.integration("default", 3, ApplicationType::Git).await;
    let r = app
        .patch_json(
            "/v2/developers/identities",
            &app.admin_key,
            &json!([{"email": "jane@corp.com", "integrationId": 1, "identity": "jdoe"}]),
        )
        .send()
        .await
        .expect("send");
    expect_status(r, 200).await;
    ingest(
        &app,
        "default",
        &json!([
            {"integrationId": 1, "identity": "jdoe", "name": "Jane Doe", "email": "jane@corp.com", "count": 40},
            {"integrationId": 2, "identity": "acc-jane", "name": "Jane Doe", "email": "jane@corp.com", "count": 12},
            {"integrationId": 3, "identity": "bob@corp.com", "name": "Bob Stone", "count": 30},
            {"integrationId": 2, "identity": "acc-bob", "name": "Bob Stone", "email": "bob@corp.com", "count": 5},
            {"integrationId": 3, "identity": "david@a.com", "name": "David", "count": 3},
            {"integrationId": 3, "identity": "david@b.org", "name": "David", "count": 2},
        ]),
    )
    .await;
    app
}

both_backends! {
async fn suggestions_come_with_their_evidence_and_filters() {
    let app = seeded().await;
    let page = suggestions(&app, "").await;
    let jane = about(&page, "acc-jane").expect("Jane's Jira account is suggested");
    assert_eq!(jane["kind"], "link");
    assert_eq!(jane["tier"], "auto");
    assert_eq!(jane["developer"], json!({"email": "jane@corp.com", "existing": true}));
    assert_eq!(jane["contributors"].as_array().map(Vec::len), Some(1));
    assert_eq!(jane["contributors"][0]["integrationId"], 2);
    let rules: Vec<&str> = jane["evidence"].as_array().expect("evidence").iter().filter_map(|e| e["rule"].as_str()).collect();
    assert!(rules.contains(&"same-email"), "{jane}");
    assert!(jane["confidence"].as_f64().is_some_and(|c| c > 0.9), "{jane}");
    assert_eq!(jane["id"].as_str().map(str::len), Some(16));

    let bob = about(&page, "acc-bob").expect("Bob's two accounts are one new developer");
    assert_eq!(bob["kind"], "newDeveloper");
    assert_eq!(bob["developer"], json!({"email": "bob@corp.com", "existing": false}));
    assert_eq!(bob["contributors"].as_array().map(Vec::len), Some(2));
    assert!(about(&page, "david@a.com").is_none(), "a shared first name is no evidence: {page}");
    assert_eq!(page["_metadata"]["totalCount"], 2);
    assert_eq!(page["_metadata"]["autoCount"], 2);

    // The same account state lists the same ids.
    assert_eq!(suggestions(&app, "").await["records"], page["records"]);
    let by_developer = suggestions(&app, "?developer=JANE@corp.com").await;
    assert_eq!(records(&by_developer).len(), 1);
    assert_eq!(by_developer["records"][0]["id"], jane["id"]);
    let by_integration = suggestions(&app, "?integrationId=3").await;
    assert_eq!(records(&by_integration).len(), 1, "only Bob has a git account");
    assert!(records(&suggestions(&app, "?tier=review").await).is_empty());
    let paged = suggestions(&app, "?pageSize=1&pageIndex=1").await;
    assert_eq!(records(&paged).len(), 1);
    assert_eq!(paged["_metadata"]["hasNext"], false);

    for bad in ["?tier=maybe", "?integrationId=x", "?pageSize=0", "?sort=id"] {
        let r = app.get(&format!("/v2/suggestions{bad}"), &app.admin_key).send().await.expect("send");
        expect_error(r, 400).await;
    }
    let reader = app.key("default", &[Scope::DeveloperRecordsRead]).await;
    expect_status(app.get("/v2/suggestions", &reader).send().await.expect("send"), 200).await;
    let id = jane["id"].as_str().unwrap_or_default();
    let r = post(&app, &format!("/v2/suggestions/{id}/accept"), &reader).send().await.expect("send");
    expect_error(r, 403).await;
}

async fn accepting_maps_the_contributors_and_a_decision_is_taken_once() {
    let app = seeded().await;
    let page = suggestions(&app, "").await;
    let jane = about(&page, "acc-jane").expect("Jane's suggestion");
    let id = jane["id"].as_str().unwrap_or_default().to_string();
    let r = post(&app, &format!("/v2/suggestions/{id}/accept"), &app.admin_key).send().await.expect("send");
    let body = expect_status(r, 200).await;
    assert_eq!(body["accepted"], json!([id]));
    assert_eq!(body["summary"]["created"], 1);
    assert!(app.dump().await.contains(&("jane@corp.com".to_string(), 2, "acc-jane".to_string())));
    assert!(about(&suggestions(&app, "").await, "acc-jane").is_none(), "a mapped contributor is not suggested");

    for decision in ["accept", "reject", "skip"] {
        let r = post(&app, &format!("/v2/suggestions/{id}/{decision}"), &app.admin_key).send().await.expect("send");
        let body = expect_error(r, 409).await;
        assert!(body["message"].as_str().unwrap_or_default().contains("already accepted"), "{body}");
    }
    let r = post(&app, "/v2/suggestions/0123456789abcdef/accept", &app.admin_key).send().await.expect("send");
    expect_error(r, 404).await;

    let audit = expect_status(app.get("/v2/audit?pageSize=100", &app.admin_key).send().await.expect("send"), 200).await;
    let accepted: Vec<&Value> = audit["records"]
        .as_array()
        .expect("audit records")
        .iter()
        .filter(|e| e["action"] == "suggestion.accepted")
        .collect();
    assert_eq!(accepted.len(), 1, "{audit}");

    // One change set holds the identity and the decision; reverting it takes the
    // identity away and keeps the decision as history.
    let feed = expect_status(app.get("/v2/changes?kind=suggestion", &app.admin_key).send().await.expect("send"), 200).await;
    let sets = feed["changes"].as_array().expect("changes");
    assert_eq!(sets.len(), 1, "{feed}");
    assert_eq!(sets[0]["counts"]["identity.created"], 1, "{feed}");
    assert_eq!(sets[0]["counts"]["suggestion.accepted"], 1, "{feed}");
    let change = sets[0]["id"].as_i64().expect("id");
    let r = post(&app, &format!("/v2/changes/{change}/revert"), &app.admin_key).send().await.expect("send");
    expect_status(r, 200).await;
    assert!(!app.dump().await.iter().any(|(_, _, identity)| identity == "acc-jane"), "the accept was undone");
    let r = post(&app, &format!("/v2/suggestions/{id}/accept"), &app.admin_key).send().await.expect("send");
    expect_error(r, 409).await;
}

async fn a_rejected_pairing_never_returns_and_a_skip_hides_until_evidence_changes() {
    let app = seeded().await;
    let page = suggestions(&app, "").await;
    let bob = about(&page, "acc-bob").expect("Bob's suggestion");
    let bob_id = bob["id"].as_str().unwrap_or_default().to_string();
    let r = post(&app, &format!("/v2/suggestions/{bob_id}/reject"), &app.admin_key).send().await.expect("send");
    let body = expect_status(r, 200).await;
    assert_eq!(body["decision"], "reject");
    assert_eq!(body["cannotLinks"], 1);
    assert!(about(&suggestions(&app, "").await, "acc-bob").is_none());

    // The source reports the same accounts again, with more activity: the rules would
    // suggest them again; the rejection holds.
    ingest(
        &app,
        "default",
        &json!([
            {"integrationId": 1, "identity": "jdoe", "name": "Jane Doe", "email": "jane@corp.com", "count": 41},
            {"integrationId": 2, "identity": "acc-jane", "name": "Jane Doe", "email": "jane@corp.com", "count": 13},
            {"integrationId": 3, "identity": "bob@corp.com", "name": "Bob Stone", "count": 31},
            {"integrationId": 2, "identity": "acc-bob", "name": "Bob Stone", "email": "bob@corp.com", "count": 6},
        ]),
    )
    .await;
    assert!(about(&suggestions(&app, "").await, "acc-bob").is_none(), "a rejected pairing stays rejected");

    let jane = about(&suggestions(&app, "").await, "acc-jane").expect("Jane's suggestion");
    let jane_id = jane["id"].as_str().unwrap_or_default().to_string();
    let r = post(&app, &format!("/v2/suggestions/{jane_id}/skip"), &app.admin_key).send().await.expect("send");
    assert_eq!(expect_status(r, 200).await["decision"], "skip");
    assert!(about(&suggestions(&app, "").await, "acc-jane").is_none(), "skipped");
    // New evidence: Jane's Jira account now also carries her GitHub noreply address.
    ingest(
        &app,
        "jira",
        &json!([{"integrationId": 2, "identity": "acc-jane", "name": "Jane Doe", "email": "jdoe@users.noreply.github.com", "count": 50}]),
    )
    .await;
    let back = about(&suggestions(&app, "").await, "acc-jane").expect("new evidence brings a skipped suggestion back");
    assert_ne!(back["id"], jane["id"]);
    assert!(app.dump().await.iter().all(|(_, integration, _)| *integration == 1), "decisions map nothing");
}

async fn stale_unknown_and_repeated_ids_apply_nothing() {
    let app = seeded().await;
    let page = suggestions(&app, "").await;
    let jane = about(&page, "acc-jane").expect("Jane's suggestion")["id"].as_str().unwrap_or_default().to_string();
    let bob = about(&page, "acc-bob").expect("Bob's suggestion")["id"].as_str().unwrap_or_default().to_string();
    let before = app.dump().await;

    let batch = |body: Value| post(&app, "/v2/suggestions/accept", &app.admin_key).json(&body).send();
    let r = batch(json!({"ids": [jane, "0123456789abcdef"]})).await.expect("send");
    expect_error(r, 404).await;
    let r = batch(json!({"ids": [jane, jane]})).await.expect("send");
    expect_error(r, 400).await;
    for bad in [json!({}), json!({"ids": []}), json!({"tier": "review"}), json!({"ids": [jane], "tier": "auto"}), json!({"idz": [jane]}), json!([jane])] {
        let r = batch(bad.clone()).await.expect("send");
        let body = expect_error(r, 400).await;
        assert!(!body["message"].as_str().unwrap_or_default().is_empty(), "{bad}: {body}");
    }
    assert_eq!(app.dump().await, before, "refused batches applied nothing");

    // Bob's Jira account changes its address: the listed suggestion is stale.
    ingest(
        &app,
        "default",
        &json!([
            {"integrationId": 1, "identity": "jdoe", "name": "Jane Doe", "email": "jane@corp.com", "count": 40},
            {"integrationId": 2, "identity": "acc-jane", "name": "Jane Doe", "email": "jane@corp.com", "count": 12},
            {"integrationId": 3, "identity": "bob@corp.com", "name": "Bob Stone", "count": 30},
            {"integrationId": 2, "identity": "acc-bob", "name": "Bob Stone", "email": "bstone@corp.com", "count": 5},
        ]),
    )
    .await;
    let r = batch(json!({"ids": [jane, bob]})).await.expect("send");
    let body = expect_error(r, 409).await;
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(&bob) && message.contains("contributors"), "says which and what changed: {body}");
    assert_eq!(app.dump().await, before, "a stale id in a batch applies nothing");

    // Every auto suggestion at once.
    let r = batch(json!({"tier": "auto"})).await.expect("send");
    let body = expect_status(r, 200).await;
    assert!(body["accepted"].as_array().is_some_and(|a| a.contains(&json!(jane))), "{body}");
    assert!(app.dump().await.contains(&("jane@corp.com".to_string(), 2, "acc-jane".to_string())));
    let r = batch(json!({"tier": "auto"})).await.expect("send");
    let body = expect_status(r, 200).await;
    assert_eq!(body["accepted"], json!([]), "nothing left at auto: {body}");
}

async fn accepted_mappings_are_locked_and_uploads_cannot_move_them_unless_an_admin_forces() {
    let app = seeded().await;
    let jane = about(&suggestions(&app, "").await, "acc-jane").expect("Jane's suggestion");
    let id = jane["id"].as_str().unwrap_or_default().to_string();
    expect_status(post(&app, &format!("/v2/suggestions/{id}/accept"), &app.admin_key).send().await.expect("send"), 200).await;
    let listed = expect_status(app.get("/v2/developers/identities?pageSize=100", &app.admin_key).send().await.expect("send"), 200).await;
    let row = listed["records"].as_array().expect("records").iter().find(|r| r["identity"] == "acc-jane").cloned().expect("accepted row");
    assert_eq!((row["source"].clone(), row["locked"].clone()), (json!("suggestion"), json!(true)), "{row}");
    let uploaded = listed["records"].as_array().expect("records").iter().find(|r| r["identity"] == "jdoe").cloned().expect("uploaded row");
    assert_eq!((uploaded["source"].clone(), uploaded["locked"].clone()), (json!("upload"), json!(false)), "{uploaded}");

    let writer = app.key("default", &[Scope::DeveloperRecordsWrite]).await;
    let moving = json!([
        {"email": "mallory@corp.com", "integrationId": 2, "identity": "acc-jane"},
        {"email": "new@corp.com", "integrationId": 2, "identity": "acc-new"},
    ]);
    let before = app.dump().await;
    for query in ["", "?dryRun=true"] {
        let r = app.patch_json(&format!("/v2/developers/identities{query}"), &writer, &moving).send().await.expect("send");
        let body = expect_error(r, 400).await;
        assert_eq!(common::error_types(&body), vec!["LOCKED_IDENTITY"], "{body}");
        let sample = &body["errors"][0]["samples"][0];
        let reason = sample["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("acc-jane") && reason.contains("jane@corp.com") && reason.contains("mallory@corp.com"), "{body}");
        assert!(body["message"].as_str().unwrap_or_default().contains("force=true"), "says what to do: {body}");
    }
    assert_eq!(app.dump().await, before, "nothing applied");
    let r = app.patch_json("/v2/developers/identities?force=true", &writer, &moving).send().await.expect("send");
    expect_error(r, 403).await;
    // Unlocking needs an admin too.
    let unlock = json!([{"integrationId": 2, "identity": "acc-jane"}]);
    let r = post(&app, "/v2/developers/identities/unlock", &writer).json(&unlock).send().await.expect("send");
    expect_error(r, 403).await;
    let r = app.patch_json("/v2/developers/identities?force=true", &app.admin_key, &moving).send().await.expect("send");
    assert_eq!(expect_status(r, 200).await["summary"]["reassigned"], 1);
    assert!(app.dump().await.contains(&("mallory@corp.com".to_string(), 2, "acc-jane".to_string())));

    // Lock and unlock by hand.
    let lock = json!([{"integrationId": 1, "identity": "JDOE"}, {"integrationId": 1, "identity": "ghost"}]);
    let r = post(&app, "/v2/developers/identities/lock", &writer).json(&lock).send().await.expect("send");
    let body = expect_status(r, 200).await;
    assert_eq!((body["summary"]["changed"].clone(), body["summary"]["notFound"].clone()), (json!(1), json!(1)), "{body}");
    let r = app.patch_json("/v2/developers/identities", &writer, &json!([{"email": "x@corp.com", "integrationId": 1, "identity": "jdoe"}])).send().await.expect("send");
    expect_error(r, 400).await;
    let r = post(&app, "/v2/developers/identities/unlock", &app.admin_key).json(&json!([{"integrationId": 1, "identity": "jdoe"}])).send().await.expect("send");
    assert_eq!(expect_status(r, 200).await["summary"]["changed"], 1);
    let r = app.patch_json("/v2/developers/identities", &writer, &json!([{"email": "x@corp.com", "integrationId": 1, "identity": "jdoe"}])).send().await.expect("send");
    expect_status(r, 200).await;
    for bad in [json!([]), json!({"integrationId": 1}), json!([{"integrationId": 99, "identity": "x"}])] {
        let r = post(&app, "/v2/developers/identities/lock", &writer).json(&bad).send().await.expect("send");
        expect_error(r, 400).await;
    }
    let r = post(&app, "/v2/developers/identities/lock?force=true", &writer).json(&lock).send().await.expect("send");
    let body = expect_error(r, 400).await;
    assert!(body["message"].as_str().unwrap_or_default().contains("takes no query parameters"), "{body}");
}

async fn the_time_zones_a_source_saw_make_one_name_on_two_addresses_an_auto_suggestion() {
    let app = TestApp::spawn().await;
    app.integration("default", 3, ApplicationType::Git).await;
    // Three names, each on two mail providers: one wrote from the same zones on both,
    // one from opposite sides of the world, one never said where.
    let row = |identity: &str, offset: Option<&str>| {
        let name = match identity.chars().next() {
            Some('q') => "Quentin Marchetti-Oyelaran",
            Some('n') => "Ngozi Halvorsen-Tamura",
            _ => "Ingrid Okonkwo-Baptiste",
        };
        let mut row = json!({"integrationId": 3, "identity": identity, "name": name, "count": 4});
        if let Some(offset) = offset {
            row["utcOffset"] = json!(offset);
        }
        row
    };
    ingest(
        &app,
        "git:one",
        &json!([
            row("q.m.o@gmail.com", Some("+01:00")),
            row("q.m.o@gmail.com", Some("+02:00")),
            row("quentin.mo@yahoo.com", Some("+0200")),
            row("nht1@gmail.com", Some("+09:00")),
            row("nht2@yahoo.com", Some("-05:00")),
            row("iob1@posteo.de", None),
            row("iob2@fastmail.com", None),
        ]),
    )
    .await;
    let listed = expect_status(
        app.get("/v2/contributors?searchValue=q.m.o", &app.admin_key).send().await.expect("send"),
        200,
    )
    .await;
    assert_eq!(listed["records"][0]["utcOffsets"], json!(["+01:00", "+02:00"]), "{listed}");
    let page = suggestions(&app, "?pageSize=100").await;
    let same_zones = about(&page, "q.m.o@gmail.com").expect("the one who wrote from one zone is suggested");
    assert_eq!(same_zones["tier"], "auto", "{same_zones}");
    let rules: Vec<&str> = same_zones["evidence"].as_array().into_iter().flatten().filter_map(|e| e["rule"].as_str()).collect();
    assert_eq!(rules, ["same-name-same-timezone"], "{same_zones}");
    let contributors: Vec<&str> = same_zones["contributors"].as_array().into_iter().flatten().filter_map(|c| c["identity"].as_str()).collect();
    assert_eq!(contributors.len(), 2, "{same_zones}");
    assert!(contributors.contains(&"quentin.mo@yahoo.com"), "{same_zones}");
    for identity in ["nht1@gmail.com", "iob1@posteo.de"] {
        let held = about(&page, identity).unwrap_or_else(|| panic!("{identity}: a name alone is still worth a review: {page}"));
        assert_eq!(held["tier"], "review", "a name without shared zones is never auto: {held}");
    }

    // The same rows again with an offset that is no zone: refused, naming the row.
    let bad = json!([row("q.m.o@gmail.com", Some("+01:00")), row("qmo@gmail.com", Some("+25:00")), {"integrationId": 3, "identity": "x@y.z", "utcOffset": 60}]);
    let r = post(&app, "/v2/contributors?source=git:one", &app.admin_key).json(&bad).send().await.expect("send");
    let body = expect_error(r, 400).await;
    assert_eq!(common::error_types(&body), vec!["INVALID_UTC_OFFSET"], "{body}");
    let text = body.to_string();
    assert!(text.contains("+25:00") && text.contains("expected a string, got a number"), "{body}");
    assert_eq!(suggestions(&app, "?pageSize=100").await["records"], page["records"], "nothing was applied");
}

async fn numpy_history_walks_from_contributors_to_locked_decisions() {
    let app = TestApp::spawn().await;
    app.integration("default", 7, ApplicationType::Git).await;
    let commits = common::numpy_commits();
    ingest_numpy(&app, &commits).await;

    let listed = all_suggestions(&app).await;
    let auto: Vec<&Value> = listed.iter().filter(|s| s["tier"] == "auto").collect();
    let review: Vec<&Value> = listed.iter().filter(|s| s["tier"] == "review").collect();
    assert!(auto.len() > 50, "numpy's authors hold many people with several addresses: {} auto", auto.len());
    assert!(!review.is_empty());
    let by_zone = auto.iter().filter(|s| s["evidence"].to_string().contains("same-name-same-timezone")).count();
    assert!(by_zone > 20, "the commits' time zones reach the matcher: {by_zone} auto suggestions rest on them");
    for s in &listed {
        assert_eq!(s["kind"], "newDeveloper", "no developer exists yet: {s}");
        let members = s["contributors"].as_array().map_or(0, Vec::len);
        assert!((2..=10).contains(&members), "a group of 2 to 10 accounts: {s}");
        assert!(!s["evidence"].as_array().is_some_and(Vec::is_empty), "every suggestion has evidence: {s}");
    }

    // Accept every auto suggestion at once; reject one for review.
    let r = post(&app, "/v2/suggestions/accept", &app.admin_key).json(&json!({"tier": "auto"})).send().await.expect("send");
    let accepted = expect_status(r, 200).await;
    assert_eq!(accepted["accepted"].as_array().map(Vec::len), Some(auto.len()));
    let mapped: usize = auto.iter().map(|s| s["contributors"].as_array().map_or(0, Vec::len)).sum();
    assert_eq!(accepted["summary"]["created"], mapped as u64);
    let rejected = review[0].clone();
    let rejected_id = rejected["id"].as_str().unwrap_or_default();
    let r = post(&app, &format!("/v2/suggestions/{rejected_id}/reject"), &app.admin_key).send().await.expect("send");
    expect_status(r, 200).await;

    // The history is sent again (a nightly re-sync): nothing decided comes back.
    ingest_numpy(&app, &commits).await;
    let after = all_suggestions(&app).await;
    assert!(after.iter().all(|s| s["tier"] == "review"), "every auto suggestion was accepted");
    let forbidden = pairings(&rejected);
    for s in &after {
        assert_ne!(s["id"], rejected["id"]);
        assert!(pairings(s).iter().all(|p| !forbidden.contains(p)), "a rejected pairing returned: {s}");
    }

    // The accepted mappings are there, locked, made by suggestion.
    let mut rows = Vec::new();
    for page in 0.. {
        let body = expect_status(
            app.get(&format!("/v2/developers/identities?pageSize=1000&pageIndex={page}"), &app.admin_key).send().await.expect("send"),
            200,
        )
        .await;
        rows.extend(records(&body));
        if body["_metadata"]["has_next"] != true {
            break;
        }
    }
    assert_eq!(rows.len(), mapped);
    assert!(rows.iter().all(|r| r["locked"] == true && r["source"] == "suggestion"), "accepted rows are locked");

    // An upload that would move one of them is refused, and changes nothing.
    let target = &rows[0];
    let moving = json!([{"email": "someone-else@example.org", "integrationId": 7, "identity": target["identity"]}]);
    let r = app.patch_json("/v2/developers/identities", &app.admin_key, &moving).send().await.expect("send");
    let body = expect_error(r, 400).await;
    assert_eq!(common::error_types(&body), vec!["LOCKED_IDENTITY"]);
    let unchanged = app.dump_all().await;
    assert_eq!(unchanged.len(), mapped);
    assert!(unchanged.iter().all(|(email, _, _)| email != "someone-else@example.org"));
}
}

/// Every suggestion of the account, page by page.
async fn all_suggestions(app: &TestApp) -> Vec<Value> {
    let mut all = Vec::new();
    for page in 0.. {
        let body = suggestions(app, &format!("?pageSize=1000&pageIndex={page}")).await;
        all.extend(records(&body));
        if body["_metadata"]["hasNext"] != true {
            break;
        }
    }
    all
}

/// The pairings a suggestion's evidence names, each as a sorted pair of party texts.
fn pairings(suggestion: &Value) -> Vec<(String, String)> {
    suggestion["evidence"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let (a, b) = (e["between"][0].to_string(), e["between"][1].to_string());
            if a <= b { (a, b) } else { (b, a) }
        })
        .collect()
}

async fn ingest_numpy(app: &TestApp, commits: &[(String, String, String, String)]) {
    let r = post(app, "/v2/contributors?source=git:numpy", &app.admin_key)
        .header("content-type", "text/csv")
        .body(common::commits_as_contributor_csv(commits, 7))
        .send()
        .await
        .expect("send");
    expect_status(r, 200).await;
}

//! Contributors over HTTP: uploads in every format, refusals that name their rows and
//! apply nothing, listings, bot decisions and coverage, checked against numpy's real
//! history with numbers computed here, independently of the server.

#[macro_use]
mod common;

use std::collections::HashMap;

use common::{TestApp, error_types, expect_error, expect_status, numpy_commits};
use devid_core::types::{ApplicationType, Scope};
use serde_json::{Value, json};

fn post(app: &TestApp, path: &str, key: &str) -> reqwest::RequestBuilder {
    app.client.post(app.url(path)).header("x-api-key", key)
}

async fn ingest_json(app: &TestApp, query: &str, rows: &Value) -> Value {
    let r = post(app, &format!("/v2/contributors{query}"), &app.admin_key).json(rows).send().await.expect("send");
    expect_status(r, 200).await
}

async fn list(app: &TestApp, query: &str) -> Value {
    expect_status(app.get(&format!("/v2/contributors{query}"), &app.admin_key).send().await.expect("send"), 200).await
}

fn identities(page: &Value) -> Vec<String> {
    page["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["identity"].as_str().unwrap_or_default().to_string())
        .collect()
}

both_backends! {
async fn a_developers_contributors_are_listed_by_their_email() {
    let app = TestApp::spawn().await;
    app.integration("default", 1, ApplicationType::Github).await;
    app.integration("default", 2, ApplicationType::Jira).await;
    let r = app
        .patch_json(
            "/v2/developers/identities",
            &app.admin_key,
            &json!([
                {"email": "jane@corp.com", "integrationId": 1, "identity": "JDoe"},
                {"email": "jane@corp.com", "integrationId": 2, "identity": "acc-jane"},
                {"email": "bob@corp.com", "integrationId": 1, "identity": "bob"},
            ]),
        )
        .send()
        .await
        .expect("send");
    expect_status(r, 200).await;
    ingest_json(
        &app,
        "?source=s",
        &json!([
            {"integrationId": 1, "identity": "jdoe", "name": "Jane Doe", "count": 5},
            {"integrationId": 2, "identity": "acc-jane", "name": "Jane Doe", "count": 9},
            {"integrationId": 1, "identity": "bob", "name": "Bob", "count": 3},
            {"integrationId": 1, "identity": "jane-doe-2", "name": "Jane Doe", "email": "jane@corp.com", "count": 1},
        ]),
    )
    .await;
    let page = list(&app, "?developer=%20Jane@Corp.com%20").await;
    assert_eq!(identities(&page), vec!["acc-jane", "jdoe"], "her mapped accounts, busiest first, not an unmapped namesake");
    assert!(identities(&list(&app, "?developer=nobody@corp.com").await).is_empty());
    let r = app.get("/v2/contributors?developer=%20", &app.admin_key).send().await.expect("send");
    let body = expect_error(r, 400).await;
    assert_eq!(body["errors"][0]["fieldName"], "developer", "{body}");
}

async fn numpy_history_shows_who_is_unmapped_and_what_share_is_attributed() {
    let app = TestApp::spawn().await;
    app.integration("default", 7, ApplicationType::Git).await;
    let commits = numpy_commits();
    let csv = common::commits_as_contributor_csv(&commits, 7);
    let r = post(&app, "/v2/contributors?source=git:numpy", &app.admin_key)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("send");
    let body = expect_status(r, 200).await;
    assert_eq!(body["summary"]["received"], commits.len() as u64);

    // Independently: commits per author email, as git compares them (case-insensitively).
    let mut per_email: HashMap<&str, u64> = HashMap::new();
    for (email, _, _, _) in &commits {
        *per_email.entry(email.as_str()).or_default() += 1;
    }
    assert_eq!(body["summary"]["contributors"], per_email.len() as u64);
    let is_bot = |email: &str| email.contains("[bot]") || email == "bot@stepsecurity.io";
    // Map the three busiest people.
    let mut ranked: Vec<(&str, u64)> = per_email.iter().map(|(e, n)| (*e, *n)).filter(|(e, _)| !is_bot(e)).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(a.0)));
    let mapped: Vec<&str> = ranked.iter().take(3).map(|(e, _)| *e).collect();
    let rows: Vec<Value> =
        mapped.iter().map(|e| json!({"email": format!("dev{}@corp.example", e.len()), "integrationId": 7, "identity": e})).collect();
    expect_status(app.patch_json("/v2/developers/identities", &app.admin_key, &json!(rows)).send().await.expect("send"), 200)
        .await;

    let unmapped = list(&app, "?status=unmapped&pageSize=5").await;
    let expected: Vec<String> = ranked.iter().skip(3).take(5).map(|(e, _)| e.to_string()).collect();
    let got: Vec<String> = identities(&unmapped).iter().map(|i| i.to_lowercase()).collect();
    assert_eq!(got, expected, "the busiest unmapped authors, by commits");
    assert_eq!(unmapped["records"][0]["activity"]["commit"], ranked[3].1);

    let coverage = expect_status(app.get("/v2/coverage", &app.admin_key).send().await.expect("send"), 200).await;
    let git = &coverage["integrations"][0];
    let human_commits: u64 = ranked.iter().map(|(_, n)| n).sum();
    let attributed: u64 = ranked.iter().take(3).map(|(_, n)| n).sum();
    assert_eq!(git["activity"]["commit"], human_commits);
    assert_eq!(git["attributedActivity"]["commit"], attributed);
    let share = git["attributedShare"]["commit"].as_f64().expect("a share");
    assert!((share - attributed as f64 / human_commits as f64).abs() < 1e-12, "{share}");
    assert_eq!(git["mapped"], 3);
    let bots = per_email.keys().filter(|e| is_bot(e)).count() as u64;
    assert_eq!(git["bots"], bots, "dependabot, dependabot-preview and StepSecurity's bot");
    assert_eq!(git["unmapped"], per_email.len() as u64 - bots - 3);
    let bot_list = list(&app, "?status=bot").await;
    assert!(identities(&bot_list).iter().any(|i| i.contains("dependabot[bot]")), "{bot_list}");
    assert_eq!(coverage["topUnmapped"][0]["identity"].as_str().map(str::to_lowercase), Some(ranked[3].0.to_string()));

    // Re-running the same scan changes nothing.
    let again = post(&app, "/v2/contributors?source=git:numpy", &app.admin_key)
        .json(&json!([{"integrationId": 7, "identity": ranked[0].0, "count": ranked[0].1}]))
        .send()
        .await
        .expect("send");
    let again = expect_status(again, 200).await;
    assert_eq!(again["summary"]["contributorsRemoved"], per_email.len() as u64 - 1, "a replace keeps only what it reports");
}

async fn json_ndjson_and_csv_uploads_mean_the_same() {
    let app = TestApp::spawn().await;
    app.integration("default", 1, ApplicationType::Github).await;
    let json_rows = json!([
        {"integrationId": 1, "identity": "JDoe", "name": "Jane Doe", "email": "jane@example.com", "kind": "pr", "count": 3, "firstSeen": "2026-01-02", "lastSeen": "2026-03-04T05:06:07Z"},
        {"integrationId": "1", "identity": "jdoe", "kind": "review", "count": 2},
        {"integrationId": 1, "identity": "bob"}
    ]);
    let ndjson = "{\"integrationId\":1,\"identity\":\"JDoe\",\"name\":\"Jane Doe\",\"email\":\"jane@example.com\",\"kind\":\"pr\",\"count\":3,\"firstSeen\":\"2026-01-02\",\"lastSeen\":\"2026-03-04T05:06:07Z\"}\n{\"integrationId\":\"1\",\"identity\":\"jdoe\",\"kind\":\"review\",\"count\":2}\n\n{\"integrationId\":1,\"identity\":\"bob\"}\n";
    let csv = "integrationId,identity,name,email,kind,count,firstSeen,lastSeen\r\n1,JDoe,Jane Doe,jane@example.com,pr,3,2026-01-02,2026-03-04T05:06:07Z\r\n1,jdoe,,,review,2,,\r\n1,bob,,,,,,\r\n";
    let mut answers = Vec::new();
    for (i, (content_type, body)) in [
        ("application/json", json_rows.to_string()),
        ("application/x-ndjson", ndjson.to_string()),
        ("text/csv", csv.to_string()),
    ]
    .into_iter()
    .enumerate()
    {
        let source = format!("s{i}");
        let r = post(&app, &format!("/v2/contributors?source={source}&dryRun=true"), &app.admin_key)
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await
            .expect("send");
        let dry = expect_status(r, 200).await;
        assert_eq!(dry["dryRun"], true);
        assert_eq!(list(&app, "").await["records"].as_array().map(Vec::len), Some(if i == 0 { 0 } else { 2 }));
        let r = post(&app, &format!("/v2/contributors?source={source}"), &app.admin_key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("send");
        answers.push(expect_status(r, 200).await["summary"].clone());
    }
    assert_eq!(answers[0]["contributorsCreated"], 2);
    for a in &answers {
        assert_eq!((a["received"].as_u64(), a["contributors"].as_u64()), (Some(3), Some(2)), "{a}");
    }
    // Multipart with the file field, as curl -F sends it.
    let part = reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("c.csv").mime_str("text/csv").expect("mime");
    let r = post(&app, "/v2/contributors?source=s3", &app.admin_key)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .expect("send");
    expect_status(r, 200).await;
    let page = list(&app, "").await;
    let jane = &page["records"][0];
    assert_eq!(jane["identity"], "JDoe");
    assert_eq!(jane["activity"], json!({"commit": 0, "pr": 12, "review": 8, "issue": 0, "other": 0, "total": 20}));
    assert_eq!(jane["sources"], json!(["s0", "s1", "s2", "s3"]));
    assert_eq!(jane["names"], json!([{"value": "Jane Doe", "count": 12}]));
    assert_eq!(jane["firstSeen"], "2026-01-02T00:00:00.000000Z");
    assert_eq!(jane["lastSeen"], "2026-03-04T05:06:07.000000Z");
    assert_eq!(jane["status"], "unmapped");
    assert_eq!(page["records"][1]["activity"]["other"], 4, "no kind on a GitHub row is `other`");
}

async fn bad_contributor_rows_are_refused_by_row_and_nothing_is_applied() {
    let app = TestApp::spawn().await;
    app.integration("default", 1, ApplicationType::Git).await;
    let rows = json!([
        {"integrationId": 1, "identity": "ok@example.com"},
        {"integrationId": 9, "identity": "a"},
        {"integrationId": 1, "identity": "b", "kind": "commits"},
        {"integrationId": 1, "identity": "c", "count": -1},
        {"integrationId": 1, "identity": "d", "count": 2.5},
        {"integrationId": 1, "identity": "e", "firstSeen": "2026-05-01", "lastSeen": "2026-04-01"},
        {"integrationId": 1, "identity": "f", "lastSeen": "last tuesday"},
        {"integrationId": 1, "identity": "g", "cuont": 3},
        {"integrationId": 1}
    ]);
    let r = post(&app, "/v2/contributors", &app.admin_key).json(&rows).send().await.expect("send");
    let body = expect_error(r, 400).await;
    let mut types = error_types(&body);
    types.sort();
    assert_eq!(
        types,
        vec![
            "INVALID_ACTIVITY_KIND", "INVALID_COUNT", "INVALID_TIMESTAMP", "INVALID_TIME_RANGE",
            "REQUIRED_FIELD_MISSING", "UNKNOWN_FIELD", "UNKNOWN_INTEGRATION"
        ]
    );
    let count = body["errors"].as_array().expect("errors").iter().find(|e| e["errorType"] == "INVALID_COUNT").cloned().expect("count group");
    assert_eq!(count["errorCount"], 2);
    assert_eq!(count["samples"][0]["index"], 3);
    assert_eq!(count["samples"][1]["index"], 4);

    // CSV and NDJSON report file lines.
    let csv = "integrationId,identity,kind\n1,ok@example.com,commit\n1,x,commitz\n";
    let r = post(&app, "/v2/contributors", &app.admin_key).header("content-type", "text/csv").body(csv).send().await.expect("send");
    let body = expect_error(r, 400).await;
    assert_eq!(body["errors"][0]["samples"][0]["line"], 3);
    let ndjson = "{\"integrationId\":1,\"identity\":\"ok\"}\n{\"integrationId\":1,\"identity\":\"x\",\"count\":\"many\"}\nnot json\n";
    let r = post(&app, "/v2/contributors", &app.admin_key).header("content-type", "application/x-ndjson").body(ndjson).send().await.expect("send");
    let body = expect_error(r, 400).await;
    let lines: Vec<u64> = body["errors"].as_array().expect("errors").iter().filter_map(|e| e["samples"][0]["line"].as_u64()).collect();
    assert_eq!(lines.len(), 2, "{body}");
    assert!(lines.contains(&2) && lines.contains(&3), "{body}");
    for (content_type, junk) in [("application/json", "[{\"integrationId\":1"), ("text/csv", "identity\nx\n"), ("application/json", "")] {
        let r = post(&app, "/v2/contributors", &app.admin_key).header("content-type", content_type).body(junk).send().await.expect("send");
        expect_error(r, 400).await;
    }
    let r = post(&app, "/v2/contributors", &app.admin_key).header("content-type", "text/plain").body("x").send().await.expect("send");
    expect_error(r, 415).await;
    for query in ["?mode=merge", "?source=", "?source=%20x", "?dryRun=maybe", "?sourse=x"] {
        let r = post(&app, &format!("/v2/contributors{query}"), &app.admin_key)
            .json(&json!([{"integrationId": 1, "identity": "x"}]))
            .send()
            .await
            .expect("send");
        expect_error(r, 400).await;
    }
    assert_eq!(list(&app, "").await["_metadata"]["total_count"], 0, "nothing was applied");
}

async fn listings_filter_sort_page_by_cursor_and_download() {
    let app = TestApp::spawn().await;
    app.integration("default", 1, ApplicationType::Git).await;
    app.integration("default", 2, ApplicationType::Jira).await;
    let rows: Vec<Value> = (0..30)
        .map(|i| json!({
            "integrationId": 1 + i % 2, "identity": format!("user{i:02}"), "name": format!("User {i}"),
            "count": 1 + (i * 7) % 11, "lastSeen": format!("2026-{:02}-01", 1 + i % 12)
        }))
        .chain([json!({"integrationId": 1, "identity": "renovate[bot]", "count": 500})])
        .collect();
    ingest_json(&app, "", &json!(rows)).await;
    let ids = json!([{"email": "u0@corp.example", "integrationId": 1, "identity": "USER00"}]);
    expect_status(app.patch_json("/v2/developers/identities", &app.admin_key, &ids).send().await.expect("send"), 200).await;

    assert_eq!(list(&app, "?status=bot").await["_metadata"]["total_count"], 1);
    let mapped = list(&app, "?status=MAPPED").await;
    assert_eq!(mapped["records"][0]["mappedEmail"], "u0@corp.example");
    assert_eq!(list(&app, "?status=unmapped").await["_metadata"]["total_count"], 29);
    assert_eq!(list(&app, "?integrationIds=2").await["_metadata"]["total_count"], 15);
    assert_eq!(list(&app, "?searchValue=USER2").await["_metadata"]["total_count"], 10);
    assert_eq!(list(&app, "?activeAfter=2026-11-15").await["_metadata"]["total_count"], 2);

    for sort in ["activity", "lastSeen", "identity"] {
        let mut seen = Vec::new();
        let mut page = list(&app, &format!("?sortKey={sort}&pageSize=7")).await;
        loop {
            seen.extend(identities(&page));
            let Some(cursor) = page["_metadata"]["next_cursor"].as_str().map(str::to_string) else { break };
            page = list(&app, &format!("?sortKey={sort}&pageSize=7&cursor={cursor}")).await;
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 31, "{sort}: each once");
        if sort == "activity" {
            assert_eq!(seen[0], "renovate[bot]");
        }
        if sort == "identity" {
            assert_eq!(seen[0], "renovate[bot]");
            assert_eq!(seen[1], "user00");
        }
    }
    // A cursor belongs to its own filters.
    let page = list(&app, "?pageSize=2").await;
    let cursor = page["_metadata"]["next_cursor"].as_str().expect("a cursor").to_string();
    let r = app.get(&format!("/v2/contributors?status=bot&cursor={cursor}"), &app.admin_key).send().await.expect("send");
    expect_error(r, 400).await;
    let r = app.get(&format!("/v2/developers/identities?cursor={cursor}"), &app.admin_key).send().await.expect("send");
    expect_error(r, 400).await;
    for bad in ["?status=gone", "?sortKey=name", "?pageSize=0", "?activeAfter=soon", "?integrationIds=x", "?limit=3"] {
        let r = app.get(&format!("/v2/contributors{bad}"), &app.admin_key).send().await.expect("send");
        expect_error(r, 400).await;
    }

    let csv = app.get("/v2/contributors?format=csv&status=unmapped", &app.admin_key).send().await.expect("send");
    assert_eq!(csv.status(), 200);
    let text = csv.text().await.expect("text");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(reader.headers().expect("header").iter().collect::<Vec<_>>()[..3], ["integrationId", "applicationType", "identity"]);
    assert_eq!(reader.records().count(), 29);
}

async fn bot_decisions_are_audited_and_hold_over_later_uploads() {
    let app = TestApp::spawn().await;
    app.integration("default", 1, ApplicationType::Github).await;
    let scan = json!([
        {"integrationId": 1, "identity": "dependabot[bot]", "count": 40},
        {"integrationId": 1, "identity": "Release-Runner", "count": 12},
        {"integrationId": 1, "identity": "jdoe", "count": 3}
    ]);
    let first = ingest_json(&app, "?source=gh", &scan).await;
    assert_eq!(first["summary"]["bots"], 1);
    let decisions = json!([
        {"integrationId": 1, "identity": "DEPENDABOT[bot]", "bot": false},
        {"integrationId": 1, "identity": "release-runner", "bot": true}
    ]);
    let r = post(&app, "/v2/contributors/bots", &app.admin_key).json(&decisions).send().await.expect("send");
    let set = expect_status(r, 200).await;
    assert_eq!((set["summary"]["flagged"].as_u64(), set["summary"]["unflagged"].as_u64()), (Some(1), Some(1)));
    ingest_json(&app, "?source=gh", &scan).await;
    ingest_json(&app, "?source=other", &scan).await;
    let bots = list(&app, "?status=bot").await;
    assert_eq!(identities(&bots), vec!["Release-Runner"]);
    assert_eq!(bots["records"][0]["botReason"], "flagged");
    let people = list(&app, "?status=unmapped").await;
    assert_eq!(people["records"][0]["botReason"], "unflagged");
    let audit = expect_status(app.get("/v2/audit?pageSize=100", &app.admin_key).send().await.expect("send"), 200).await;
    let actions: Vec<&str> = audit["records"].as_array().expect("records").iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"contributor.bot_flagged") && actions.contains(&"contributor.bot_unflagged"), "{actions:?}");
    assert_eq!(actions.iter().filter(|a| **a == "contributors.ingested").count(), 3);

    let bad = json!([{"integrationId": 1, "identity": "x", "bot": "yes"}, {"integrationId": 5, "identity": "y", "bot": true}, {"identity": "z"}]);
    let r = post(&app, "/v2/contributors/bots", &app.admin_key).json(&bad).send().await.expect("send");
    let body = expect_error(r, 400).await;
    assert!(error_types(&body).contains(&"UNKNOWN_INTEGRATION".to_string()), "{body}");
    let reader = app.key("default", &[Scope::DeveloperRecordsRead]).await;
    let r = post(&app, "/v2/contributors/bots", &reader).json(&decisions).send().await.expect("send");
    expect_error(r, 403).await;
    let r = post(&app, "/v2/contributors", &reader).json(&scan).send().await.expect("send");
    expect_error(r, 403).await;
    expect_status(app.get("/v2/contributors", &reader).send().await.expect("send"), 200).await;
}

async fn coverage_follows_identity_changes_and_checks_developers() {
    let app = TestApp::spawn().await;
    app.integration("default", 1, ApplicationType::Github).await;
    app.integration("default", 2, ApplicationType::Jira).await;
    ingest_json(&app, "", &json!([
        {"integrationId": 1, "identity": "jdoe", "kind": "pr", "count": 6},
        {"integrationId": 1, "identity": "bob", "kind": "pr", "count": 2},
        {"integrationId": 2, "identity": "557058:abc", "kind": "issue", "count": 5}
    ])).await;
    let before = expect_status(app.get("/v2/coverage", &app.admin_key).send().await.expect("send"), 200).await;
    assert_eq!(before["overall"]["attributedShare"]["total"], 0.0);
    assert_eq!(before["overall"]["attributedShare"]["commit"], Value::Null, "no commits: no share");
    let ids: Vec<Value> = (0..12)
        .map(|i| json!({"email": "jane@corp.example", "integrationId": 1, "identity": if i == 0 { "jdoe".to_string() } else { format!("alt{i}") }}))
        .chain([json!({"email": "bob@corp.example", "integrationId": 2, "identity": "557058:bob"})])
        .collect();
    expect_status(app.patch_json("/v2/developers/identities", &app.admin_key, &json!(ids)).send().await.expect("send"), 200).await;
    let after = expect_status(app.get("/v2/coverage?missingIn=2&top=1", &app.admin_key).send().await.expect("send"), 200).await;
    let github = after["integrations"].as_array().expect("list").iter().find(|i| i["integrationId"] == 1).cloned().expect("github");
    assert_eq!(github["attributedShare"]["pr"], 0.75);
    assert_eq!(after["overall"]["attributedActivity"]["total"], 6);
    assert_eq!(after["topUnmapped"].as_array().map(Vec::len), Some(1));
    assert_eq!(after["topUnmapped"][0]["identity"], "557058:abc");
    assert_eq!(after["manyIdentities"], json!([{"email": "jane@corp.example", "identities": 12}]));
    assert_eq!(after["missing"]["emails"], json!(["jane@corp.example"]));
    // What coverage remembers never outlives a change: a new or renamed integration
    // shows at once, and so does a change of identities made right after a request.
    expect_status(app.get("/v2/coverage", &app.admin_key).send().await.expect("send"), 200).await;
    let created = app
        .client
        .post(app.url("/v2/integrations"))
        .header("x-api-key", &app.admin_key)
        .json(&json!({"id": 9, "applicationType": "GIT", "name": "monorepo"}))
        .send()
        .await
        .expect("send");
    expect_status(created, 201).await;
    let renamed = app
        .client
        .patch(app.url("/v2/integrations/1"))
        .header("x-api-key", &app.admin_key)
        .json(&json!({"name": "GitHub Cloud"}))
        .send()
        .await
        .expect("send");
    expect_status(renamed, 200).await;
    let now = expect_status(app.get("/v2/coverage", &app.admin_key).send().await.expect("send"), 200).await;
    let names: Vec<&str> = now["integrations"].as_array().expect("list").iter().filter_map(|i| i["name"].as_str()).collect();
    assert!(names.contains(&"monorepo") && names.contains(&"GitHub Cloud"), "{names:?}");
    let more = json!([{"email": "bob@corp.example", "integrationId": 1, "identity": "bob"}]);
    expect_status(app.patch_json("/v2/developers/identities", &app.admin_key, &more).send().await.expect("send"), 200).await;
    let after_more = expect_status(app.get("/v2/coverage", &app.admin_key).send().await.expect("send"), 200).await;
    assert_eq!(after_more["overall"]["attributedActivity"]["total"], 8, "bob's 2 PRs are attributed now");

    for bad in ["?missingIn=99", "?missingIn=x", "?top=5000", "?limit=0", "?other=1"] {
        let r = app.get(&format!("/v2/coverage{bad}"), &app.admin_key).send().await.expect("send");
        expect_error(r, 400).await;
    }
}
}

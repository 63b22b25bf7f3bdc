//! Authentication, scopes, tenant isolation, admin endpoints and the error contract.

#[macro_use]
mod common;

use common::{TestApp, error_types, expect_error, expect_status};
use devid_core::types::{ApplicationType, Scope};
use serde_json::json;

// Account B's admin key against every endpoint, aimed at account A's data.

both_backends! {
async fn every_documented_header_form_is_accepted() {
    let app = TestApp::spawn().await;
    let key = &app.admin_key;
    let forms: Vec<(&str, String)> = vec![
        ("x-api-key", key.clone()),
        ("X-Api-Key", key.clone()),
        ("authorization", format!("ApiKey {key}")),
        ("Authorization", format!("APIKEY {key}")),
        ("Authorization", format!("Bearer {key}")),
        ("Authorization", key.clone()),
    ];
    for (name, value) in forms {
        let r = app.client.get(app.url("/v2/integrations")).header(name, value.clone()).send().await.expect("send");
        expect_status(r, 200).await;
    }
}

async fn missing_malformed_unknown_revoked_and_expired_keys_get_401() {
    let app = TestApp::spawn().await;
    let r = app.client.get(app.url("/v2/integrations")).send().await.expect("send");
    let body = expect_error(r, 401).await;
    assert!(body["message"].as_str().unwrap_or_default().contains("x-api-key"), "{body}");

    let forged = {
        let mut parts: Vec<&str> = app.admin_key.split('.').collect();
        parts[3] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        parts.join(".")
    };
    for bad in ["not-a-key", "pat.default.nokey.secret", "Bearer", forged.as_str()] {
        let r = app.client.get(app.url("/v2/integrations")).header("authorization", bad).send().await.expect("send");
        expect_error(r, 401).await;
    }

    let key = app.key("default", &[Scope::Admin]).await;
    let key_id = key.split('.').nth(2).expect("key id").to_string();
    let r = app
        .client
        .delete(app.url(&format!("/v2/api-keys/{key_id}")))
        .header("x-api-key", &app.admin_key)
        .send()
        .await
        .expect("send");
    let revoked = expect_status(r, 200).await;
    assert_eq!(revoked["revoked"], true);
    let r = app.get("/v2/integrations", &key).send().await.expect("send");
    let body = expect_error(r, 401).await;
    assert!(body["message"].as_str().unwrap_or_default().contains("revoked"));

    let ctx = app.account_ctx("default").await;
    let expired = app
        .store
        .create_key(
            &ctx,
            devid_store::NewKey {
                scopes: vec![Scope::Admin],
                label: "old".into(),
                expires_at: Some(devid_store::now_micros() - 1),
            },
        )
        .await
        .expect("key")
        .key;
    let body = expect_error(app.get("/v2/integrations", &expired).send().await.expect("send"), 401).await;
    assert!(body["message"].as_str().unwrap_or_default().contains("expired"));
}

async fn scopes_are_enforced_with_403() {
    let app = TestApp::spawn().await;
    app.integration("default", 1, ApplicationType::Github).await;
    let read = app.key("default", &[Scope::DeveloperRecordsRead]).await;
    let write = app.key("default", &[Scope::DeveloperRecordsWrite]).await;
    let rows = json!([{"email": "a@x.com", "integrationId": 1, "identity": "a"}]);

    expect_status(app.get("/v2/developers/identities", &read).send().await.expect("send"), 200).await;
    let body =
        expect_error(app.patch_json("/v2/developers/identities", &read, &rows).send().await.expect("send"), 403).await;
    assert!(body["message"].as_str().unwrap_or_default().contains("developer_records:write"));
    expect_error(app.get("/v2/integrations", &read).send().await.expect("send"), 403).await;
    expect_error(app.get("/v2/audit", &write).send().await.expect("send"), 403).await;
    expect_error(app.get("/v2/developers/identities", &write).send().await.expect("send"), 403).await;
    expect_status(app.patch_json("/v2/developers/identities", &write, &rows).send().await.expect("send"), 200).await;
    // admin implies the others
    expect_status(app.get("/v2/developers/identities", &app.admin_key).send().await.expect("send"), 200).await;
}

async fn naming_another_account_is_forbidden() {
    let app = TestApp::spawn().await;
    let r = app.get("/v2/integrations?accountIdentifier=default", &app.admin_key).send().await.expect("send");
    expect_status(r, 200).await;
    let r = app.get("/v2/integrations?accountIdentifier=acme", &app.admin_key).send().await.expect("send");
    expect_error(r, 403).await;
    let r = app.get("/v2/integrations", &app.admin_key).header("Harness-Account", "acme").send().await.expect("send");
    expect_error(r, 403).await;
}

async fn another_accounts_key_sees_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.integration("default", 1, ApplicationType::Github).await;
    let rows = json!([{"email": "alice@a.com", "integrationId": 1, "identity": "alice-a"}]);
    expect_status(app.patch_json("/v2/developers/identities", &app.admin_key, &rows).send().await.expect("send"), 200)
        .await;
    let a_key_id = app.admin_key.split('.').nth(2).expect("id").to_string();
    let seen = json!([{"integrationId": 1, "identity": "alice-a", "name": "Alice", "count": 4}, {"integrationId": 1, "identity": "ci-bot"}]);
    let r = app.client.post(app.url("/v2/contributors")).header("x-api-key", &app.admin_key).json(&seen).send().await.expect("send");
    expect_status(r, 200).await;
    let decision = json!([{"integrationId": 1, "identity": "alice-a", "bot": true}]);
    let r = app.client.post(app.url("/v2/contributors/bots")).header("x-api-key", &app.admin_key).json(&decision).send().await.expect("send");
    expect_status(r, 200).await;
    let contributors_before =
        expect_status(app.get("/v2/contributors", &app.admin_key).send().await.expect("send"), 200).await;
    let before = app.dump().await;

    let b = app.key("acme", &[Scope::Admin]).await;
    let list = expect_status(app.get("/v2/integrations", &b).send().await.expect("send"), 200).await;
    assert_eq!(list["integrations"], json!([]));
    expect_error(app.get("/v2/integrations/1", &b).send().await.expect("send"), 404).await;
    let r = app
        .client
        .patch(app.url("/v2/integrations/1"))
        .header("x-api-key", &b)
        .json(&json!({"name": "stolen"}))
        .send()
        .await
        .expect("send");
    expect_error(r, 404).await;
    let r =
        app.client.delete(app.url("/v2/integrations/1?force=true")).header("x-api-key", &b).send().await.expect("send");
    expect_error(r, 404).await;
    let ids = expect_status(app.get("/v2/developers/identities", &b).send().await.expect("send"), 200).await;
    assert_eq!(ids["records"], json!([]));
    assert_eq!(ids["_metadata"]["total_count"], 0);
    let csv =
        app.get("/v2/developers/identities?format=csv", &b).send().await.expect("send").text().await.expect("text");
    assert!(!csv.contains("alice"), "{csv}");
    let audit = expect_status(app.get("/v2/audit?pageSize=1000", &b).send().await.expect("send"), 200).await;
    assert!(!audit.to_string().contains("alice"), "{audit}");
    let keys = expect_status(app.get("/v2/api-keys", &b).send().await.expect("send"), 200).await;
    assert!(!keys.to_string().contains(&a_key_id));
    let r = app
        .client
        .delete(app.url(&format!("/v2/api-keys/{a_key_id}")))
        .header("x-api-key", &b)
        .send()
        .await
        .expect("send");
    expect_error(r, 404).await;
    let theirs = expect_status(app.get("/v2/contributors", &b).send().await.expect("send"), 200).await;
    assert_eq!(theirs["_metadata"]["total_count"], 0);
    for path in ["/v2/contributors?format=csv", "/v2/contributors?status=bot", "/v2/coverage"] {
        let text = app.get(path, &b).send().await.expect("send").text().await.expect("text");
        assert!(!text.contains("alice"), "{path}: {text}");
    }
    let body = expect_error(app.get("/v2/coverage?missingIn=1", &b).send().await.expect("send"), 400).await;
    assert!(body["message"].as_str().unwrap_or_default().contains("no integration 1"), "{body}");
    let r = app.client.post(app.url("/v2/contributors")).header("x-api-key", &b).json(&seen).send().await.expect("send");
    assert_eq!(error_types(&expect_error(r, 400).await), vec!["UNKNOWN_INTEGRATION"]);
    let r = app.client.post(app.url("/v2/contributors/bots")).header("x-api-key", &b).json(&json!([{"integrationId": 1, "identity": "alice-a", "bot": false}])).send().await.expect("send");
    assert_eq!(error_types(&expect_error(r, 400).await), vec!["UNKNOWN_INTEGRATION"]);
    // B's cursor is no good for A, nor A's for B.
    let a_page = expect_status(app.get("/v2/contributors?pageSize=1", &app.admin_key).send().await.expect("send"), 200).await;
    let a_cursor = a_page["_metadata"]["next_cursor"].as_str().expect("A has a next page").to_string();
    expect_error(app.get(&format!("/v2/contributors?pageSize=1&cursor={a_cursor}"), &b).send().await.expect("send"), 400).await;
    let contributors_after =
        expect_status(app.get("/v2/contributors", &app.admin_key).send().await.expect("send"), 200).await;
    assert_eq!(contributors_after, contributors_before, "A's contributors and bot decisions are untouched");

    let upload = app.patch_json(
        "/v2/developers/identities",
        &b,
        &json!([{"email": "evil@b.com", "integrationId": 1, "identity": "alice-a"}]),
    );
    let body = expect_error(upload.send().await.expect("send"), 400).await;
    assert_eq!(error_types(&body), vec!["UNKNOWN_INTEGRATION"]);
    let del = app
        .client
        .delete(app.url("/v2/developers/identities"))
        .header("x-api-key", &b)
        .json(&json!([{"integrationId": 1, "identity": "alice-a"}]));
    let body = expect_error(del.send().await.expect("send"), 400).await;
    assert_eq!(error_types(&body), vec!["UNKNOWN_INTEGRATION"]);
    let legacy = app.client.post(app.url("/v2/developers/cloud-ids")).header("x-api-key", &b).json(
        &json!({"integrationUsers": [{"email": "evil@b.com", "applicationType": "GITHUB", "cloudId": "alice-a"}]}),
    );
    let body = expect_status(legacy.send().await.expect("send"), 200).await;
    assert_eq!(body["summary"]["integrationsCreated"][0]["name"], "GITHUB (default)", "B gets its own integration");

    assert_eq!(app.dump().await, before, "account A is untouched");
    expect_status(app.get("/v2/integrations", &app.admin_key).send().await.expect("send"), 200).await;
}

async fn integrations_can_be_managed_over_http() {
    let app = TestApp::spawn().await;
    let k = &app.admin_key;
    let post =
        |body: serde_json::Value| app.client.post(app.url("/v2/integrations")).header("x-api-key", k).json(&body);
    let created = expect_status(
        post(json!({"id": 5, "applicationType": "JIRA", "name": "Jira Cloud"})).send().await.expect("send"),
        201,
    )
    .await;
    assert_eq!(created["id"], 5);
    let auto =
        expect_status(post(json!({"applicationType": "github", "name": "GitHub"})).send().await.expect("send"), 201)
            .await;
    assert_eq!(auto["id"], 6);
    let dup = expect_error(
        post(json!({"id": 5, "applicationType": "JIRA", "name": "again"})).send().await.expect("send"),
        409,
    )
    .await;
    assert!(dup["message"].as_str().unwrap_or_default().contains("already exists"));
    expect_error(post(json!({"id": 9, "applicationType": "SVN", "name": "x"})).send().await.expect("send"), 400).await;
    expect_error(
        post(json!({"id": 9, "applicationType": "JIRA", "name": "x", "colour": "red"})).send().await.expect("send"),
        400,
    )
    .await;
    expect_error(post(json!({"id": -1, "applicationType": "JIRA", "name": "x"})).send().await.expect("send"), 400)
        .await;
    // After the largest id one may choose, the next assigned one is the first free id
    // below it, never above (i64::MAX made the next assignment overflow: a 500; 2^53
    // could not be addressed); above it, a 400 naming the range.
    let largest = (1i64 << 53) - 1;
    let top = post(json!({"id": largest, "applicationType": "CUSTOM", "name": "top"})).send().await.expect("send");
    expect_status(top, 201).await;
    let next = post(json!({"applicationType": "CUSTOM", "name": "next"})).send().await.expect("send");
    let next_id = expect_status(next, 201).await["id"].as_i64().expect("id");
    assert!((1..largest).contains(&next_id), "{next_id}");
    let too_large = post(json!({"id": i64::MAX, "applicationType": "JIRA", "name": "x"})).send().await.expect("send");
    let body = expect_error(too_large, 400).await;
    assert!(body["message"].as_str().unwrap_or_default().contains(&largest.to_string()), "{body}");
    expect_error(post(json!({"id": 9, "applicationType": "JIRA", "name": "  "})).send().await.expect("send"), 400)
        .await;
    let r = app
        .client
        .post(app.url("/v2/integrations"))
        .header("x-api-key", k)
        .body("{")
        .header("content-type", "application/json")
        .send()
        .await
        .expect("send");
    expect_error(r, 400).await;
    let r = app
        .client
        .post(app.url("/v2/integrations"))
        .header("x-api-key", k)
        .body("id=1")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .expect("send");
    expect_error(r, 415).await;

    let renamed = app
        .client
        .patch(app.url("/v2/integrations/5"))
        .header("x-api-key", k)
        .json(&json!({"name": "Jira"}))
        .send()
        .await
        .expect("send");
    assert_eq!(expect_status(renamed, 200).await["name"], "Jira");
    // What is not an id names no integration; nor does an id above 2^53 - 1.
    expect_error(app.get("/v2/integrations/abc", k).send().await.expect("send"), 404).await;
    expect_error(app.get("/v2/integrations/9007199254740992", k).send().await.expect("send"), 404).await;
    let r = app.get("/v2/audit?integrationId=9007199254740992", k).send().await.expect("send");
    assert_eq!(expect_error(r, 400).await["errors"][0]["fieldName"], "integrationId");
    expect_error(app.get("/v2/integrations/77", k).send().await.expect("send"), 404).await;

    let rows = json!([{"email": "a@x.com", "integrationId": 5, "identity": "acc-1"}]);
    expect_status(app.patch_json("/v2/developers/identities", k, &rows).send().await.expect("send"), 200).await;
    let one = expect_status(app.get("/v2/integrations/5", k).send().await.expect("send"), 200).await;
    assert_eq!(one["identityCount"], 1);
    let r = app.client.delete(app.url("/v2/integrations/5")).header("x-api-key", k).send().await.expect("send");
    let body = expect_error(r, 409).await;
    assert!(body["message"].as_str().unwrap_or_default().contains("force=true"));
    let r =
        app.client.delete(app.url("/v2/integrations/5?force=true")).header("x-api-key", k).send().await.expect("send");
    assert_eq!(expect_status(r, 200).await["identitiesDeleted"], 1);
    assert!(app.dump().await.is_empty());
    let listed = expect_status(app.get("/v2/integrations", k).send().await.expect("send"), 200).await;
    // GitHub (6) and the two at the top of the range remain.
    assert_eq!(listed["integrations"].as_array().map(Vec::len), Some(3));
}

async fn api_keys_can_be_created_listed_and_revoked_over_http() {
    let app = TestApp::spawn().await;
    let k = &app.admin_key;
    let r = app
        .client
        .post(app.url("/v2/api-keys"))
        .header("x-api-key", k)
        .json(&json!({"scopes": ["developer_records:read"], "label": "pipeline", "expiresInDays": 30}))
        .send()
        .await
        .expect("send");
    let created = expect_status(r, 201).await;
    let new_key = created["key"].as_str().expect("key").to_string();
    assert!(new_key.starts_with("pat.default."));
    assert!(created["apiKey"]["expiresAt"].is_string());
    expect_status(app.get("/v2/developers/identities", &new_key).send().await.expect("send"), 200).await;

    let listed = expect_status(app.get("/v2/api-keys", k).send().await.expect("send"), 200).await;
    let text = listed.to_string();
    assert_eq!(listed["keys"].as_array().map(Vec::len), Some(2));
    for key in [&new_key, k] {
        let secret = key.rsplit('.').next().expect("secret");
        assert!(!text.contains(secret), "listing shows a secret");
    }
    for bad in [
        json!({"scopes": []}),
        json!({"scopes": ["root"]}),
        json!({"scopes": ["admin"], "expiresInDays": 0}),
        json!({"scope": ["admin"]}),
    ] {
        let r = app.client.post(app.url("/v2/api-keys")).header("x-api-key", k).json(&bad).send().await.expect("send");
        expect_error(r, 400).await;
    }
    let id = created["apiKey"]["id"].as_str().expect("id");
    let r =
        app.client.delete(app.url(&format!("/v2/api-keys/{id}"))).header("x-api-key", k).send().await.expect("send");
    expect_status(r, 200).await;
    expect_error(app.get("/v2/developers/identities", &new_key).send().await.expect("send"), 401).await;
    let r = app.client.delete(app.url("/v2/api-keys/nope")).header("x-api-key", k).send().await.expect("send");
    expect_error(r, 404).await;
    let audit = expect_status(app.get("/v2/audit", k).send().await.expect("send"), 200).await;
    let actions: Vec<&str> =
        audit["records"].as_array().expect("records").iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(&actions[..2], &["key.revoked", "key.created"]);
}

async fn every_error_is_json_with_a_sentence() {
    let app = TestApp::spawn_with(devid_server::Limits { max_json_body: 1024, ..Default::default() }).await;
    let k = &app.admin_key;
    expect_error(app.get("/nowhere", k).send().await.expect("send"), 404).await;
    expect_error(app.get("/v2/developers/nothing", k).send().await.expect("send"), 404).await;
    let r = app.client.put(app.url("/v2/integrations")).header("x-api-key", k).send().await.expect("send");
    let body = expect_error(r, 405).await;
    assert!(body["message"].as_str().unwrap_or_default().contains("PUT"));
    let big = format!("[{}]", vec![r#"{"email":"a@x.com","integrationId":1,"identity":"x"}"#; 100].join(","));
    let r = app
        .client
        .patch(app.url("/v2/developers/identities"))
        .header("x-api-key", k)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("send");
    let body = expect_error(r, 413).await;
    assert!(body["message"].as_str().unwrap_or_default().contains("--max-json-body"), "{body}");
    let r = app
        .client
        .patch(app.url("/v2/developers/identities"))
        .header("x-api-key", k)
        .header("content-type", "application/xml")
        .body("<a/>")
        .send()
        .await
        .expect("send");
    expect_error(r, 415).await;
    let r = app.get("/v2/developers/identities?pageSize=0", k).send().await.expect("send");
    let body = expect_error(r, 400).await;
    assert_eq!(body["errors"][0]["fieldName"], "pageSize");
}

async fn request_ids_are_echoed_or_generated() {
    let app = TestApp::spawn().await;
    let r = app.client.get(app.url("/healthz")).header("x-request-id", "my-req-42").send().await.expect("send");
    assert_eq!(r.headers().get("x-request-id").and_then(|v| v.to_str().ok()), Some("my-req-42"));
    let r = app.client.get(app.url("/healthz")).send().await.expect("send");
    let generated = r.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");

    app.integration("default", 1, ApplicationType::Github).await;
    let rows = json!([{"email": "a@x.com", "integrationId": 1, "identity": "a"}]);
    let r = app
        .patch_json("/v2/developers/identities", &app.admin_key, &rows)
        .header("x-request-id", "upload-7")
        .send()
        .await
        .expect("send");
    expect_status(r, 200).await;
    let audit = expect_status(app.get("/v2/audit?identity=a", &app.admin_key).send().await.expect("send"), 200).await;
    assert_eq!(audit["records"][0]["requestId"], "upload-7");
}

async fn operations_endpoints_answer_without_a_key() {
    let app = TestApp::spawn().await;
    let health = expect_status(app.client.get(app.url("/healthz")).send().await.expect("send"), 200).await;
    assert_eq!(health["status"], "ok");
    let ready = expect_status(app.client.get(app.url("/readyz")).send().await.expect("send"), 200).await;
    assert_eq!(ready["database"], app.store.backend());
    expect_status(app.get("/v2/integrations", &app.admin_key).send().await.expect("send"), 200).await;
    let metrics = app.client.get(app.url("/metrics")).send().await.expect("send").text().await.expect("text");
    assert!(metrics.contains("devid_http_requests_total"), "{metrics}");
    assert!(metrics.contains("devid_http_request_duration_seconds_bucket"), "{metrics}");
    let doc = expect_status(app.client.get(app.url("/openapi.json")).send().await.expect("send"), 200).await;
    assert!(doc["paths"]["/v2/developers/identities"]["patch"].is_object());
    assert!(doc["paths"]["/v2/integrations/{id}"]["delete"].is_object());
    let docs = app.client.get(app.url("/docs")).send().await.expect("send").text().await.expect("text");
    assert!(docs.contains("/openapi.json"));
    assert!(!docs.contains("https://"), "the docs page loads nothing from the network");
}

/// A reverse proxy may serve devid under a prefix (https://host/devid/docs): the page
/// must find the OpenAPI document beside itself, and say how to send a key.
async fn docs_page_finds_its_document_under_any_prefix_and_shows_the_key_headers() {
    let app = TestApp::spawn().await;
    let docs = app.client.get(app.url("/docs")).send().await.expect("send").text().await.expect("text");
    let fetched = docs
        .split("const OPENAPI = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page names the document it fetches");
    let behind_proxy = reqwest::Url::parse("https://proxy.example/tools/devid/docs").expect("url");
    assert_eq!(
        behind_proxy.join(fetched).expect("join").as_str(),
        "https://proxy.example/tools/devid/openapi.json",
        "the document is fetched relative to the page"
    );
    let direct = reqwest::Url::parse(&app.url("/docs")).expect("url").join(fetched).expect("join");
    expect_status(app.client.get(direct).send().await.expect("send"), 200).await;
    assert!(!docs.contains("href=\"/openapi.json\""), "no link by absolute path");
    for form in ["x-api-key: ", "Authorization: ApiKey ", "Authorization: Bearer ", "Authorization: pat."] {
        assert!(docs.contains(form), "the page shows the header form {form:?}");
    }
}

async fn every_harness_prefix_serves_the_api() {
    let app = TestApp::spawn().await;
    for prefix in devid_server::API_PREFIXES {
        let r = app.get(&format!("{prefix}/integrations"), &app.admin_key).send().await.expect("send");
        expect_status(r, 200).await;
    }
}

async fn admin_bodies_must_be_objects_not_arrays() {
    let app = TestApp::spawn().await;
    let k = &app.admin_key;
    app.integration("default", 1, ApplicationType::Github).await;
    let send = |method: reqwest::Method, path: &str, body: serde_json::Value| {
        app.client.request(method, app.url(path)).header("x-api-key", k).json(&body)
    };
    let r = send(reqwest::Method::POST, "/v2/integrations", json!([778, "CUSTOM", "x"])).send().await.expect("send");
    let body = expect_error(r, 400).await;
    assert!(body["message"].as_str().unwrap_or_default().contains("an array"), "{body}");
    let r = send(reqwest::Method::POST, "/v2/api-keys", json!([["developer_records:read"], "arr", null])).send().await.expect("send");
    expect_error(r, 400).await;
    let r = send(reqwest::Method::PATCH, "/v2/integrations/1", json!([null, null])).send().await.expect("send");
    expect_error(r, 400).await;
    let listed = expect_status(app.get("/v2/integrations", k).send().await.expect("send"), 200).await;
    assert_eq!(listed["integrations"].as_array().map(Vec::len), Some(1), "nothing was created: {listed}");
}

async fn key_lifetimes_are_bounded_and_shown_as_rfc3339() {
    let app = TestApp::spawn().await;
    let k = &app.admin_key;
    let create = |days: u64| {
        app.client
            .post(app.url("/v2/api-keys"))
            .header("x-api-key", k)
            .json(&json!({"scopes": ["developer_records:read"], "expiresInDays": days}))
    };
    for days in [0u64, 36_501, 2_900_000] {
        let body = expect_error(create(days).send().await.expect("send"), 400).await;
        assert_eq!(body["errors"][0]["fieldName"], "expiresInDays", "{days}: {body}");
    }
    let created = expect_status(create(36_500).send().await.expect("send"), 201).await;
    let expires = created["apiKey"]["expiresAt"].as_str().unwrap_or_default();
    assert!(devid_core::time::parse_rfc3339(expires).is_ok(), "RFC 3339: {expires}");
}

async fn a_no_op_integration_patch_changes_and_records_nothing() {
    let app = TestApp::spawn().await;
    let k = &app.admin_key;
    app.integration("default", 1, ApplicationType::Github).await;
    let before = expect_status(app.get("/v2/integrations/1", k).send().await.expect("send"), 200).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    for body in [json!({}), json!({"name": before["name"].clone()})] {
        let r = app.client.patch(app.url("/v2/integrations/1")).header("x-api-key", k).json(&body).send().await.expect("send");
        let after = expect_status(r, 200).await;
        assert_eq!(after["updatedAt"], before["updatedAt"], "{body}");
    }
    let audit = expect_status(app.get("/v2/audit", k).send().await.expect("send"), 200).await;
    let updates = audit["records"].as_array().expect("records").iter().filter(|e| e["action"] == "integration.updated").count();
    assert_eq!(updates, 0, "{audit}");
}

async fn the_last_active_admin_key_cannot_be_revoked_over_the_api() {
    let app = TestApp::spawn().await;
    let own_id = app.admin_key.split('.').nth(2).expect("key id").to_string();
    let revoke = |key: &str, id: &str| app.client.delete(app.url(&format!("/v2/api-keys/{id}"))).header("x-api-key", key.to_string());
    // Over the API the last admin key can only be revoked by itself: refused, saying how
    // to proceed (the store refuses the last admin key too, whoever asks).
    let body = expect_error(revoke(&app.admin_key, &own_id).send().await.expect("send"), 409).await;
    assert!(body["message"].as_str().unwrap_or_default().contains("create one first"), "{body}");
    // A read-only key left over does not count: it cannot manage the account.
    app.key("default", &[Scope::DeveloperRecordsRead]).await;
    expect_error(revoke(&app.admin_key, &own_id).send().await.expect("send"), 409).await;
    // With a second admin key, a key still cannot revoke itself; the other may revoke it,
    // and is then the last.
    let second = app.key("default", &[Scope::Admin]).await;
    let second_id = second.split('.').nth(2).expect("key id").to_string();
    let body = expect_error(revoke(&app.admin_key, &own_id).send().await.expect("send"), 409).await;
    assert!(body["message"].as_str().unwrap_or_default().contains("cannot revoke itself"), "{body}");
    expect_status(revoke(&second, &own_id).send().await.expect("send"), 200).await;
    expect_error(revoke(&second, &second_id).send().await.expect("send"), 409).await;
    expect_status(app.get("/v2/integrations", &second).send().await.expect("send"), 200).await;
}

async fn json_only_endpoints_say_to_send_json_not_csv() {
    let app = TestApp::spawn().await;
    for (method, path) in [(reqwest::Method::POST, "/v2/integrations"), (reqwest::Method::DELETE, "/v2/developers/identities")] {
        for content_type in [None, Some("text/csv"), Some("multipart/form-data; boundary=x")] {
            let mut r = app.client.request(method.clone(), app.url(path)).header("x-api-key", &app.admin_key).body("x");
            if let Some(ct) = content_type {
                r = r.header("content-type", ct);
            }
            let body = expect_error(r.send().await.expect("send"), 415).await;
            let message = body["message"].as_str().unwrap_or_default();
            assert!(message.contains("application/json") && !message.contains("multipart"), "{path} {content_type:?}: {message}");
        }
    }
}
}

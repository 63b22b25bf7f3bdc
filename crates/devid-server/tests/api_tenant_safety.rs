//! One tenant, or one client without a key, must not degrade or fill the service for
//! the others: bounded request ids, closed metric labels, keyed cursors, bounded
//! parameters, per-account caches and limits (docs/security.md, "Fair sharing").

#[macro_use]
mod common;

use common::{TestApp, expect_error, expect_status};
use devid_core::types::ApplicationType;
use futures_util::StreamExt;
use serde_json::json;

fn echoed_id(r: &reqwest::Response) -> String {
    r.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

both_backends! {
async fn oversized_or_odd_request_ids_are_replaced_before_anything_stores_them() {
    let app = TestApp::spawn().await;
    app.integration("default", 1, ApplicationType::Github).await;
    let huge = "r".repeat(400 * 1024);
    let longest_kept = "k".repeat(devid_server::MAX_REQUEST_ID_CHARS);
    let cases: Vec<(String, bool)> = vec![
        (huge, false),
        ("x".repeat(devid_server::MAX_REQUEST_ID_CHARS + 1), false),
        ("has space".into(), false),
        ("semi;colon".into(), false),
        ("trace/4bf92f3577b34da6-a3ce929d0e0e4736:1@svc=+_.".into(), true),
        (longest_kept, true),
    ];
    for (n, (sent, kept)) in cases.into_iter().enumerate() {
        let rows = json!([{"email": format!("p{n}@x.com"), "integrationId": 1, "identity": format!("id{n}")}]);
        let r = app
            .patch_json("/v2/developers/identities", &app.admin_key, &rows)
            .header("x-request-id", sent.as_str())
            .send()
            .await
            .expect("send");
        let used = echoed_id(&r);
        expect_status(r, 200).await;
        let audit = expect_status(
            app.get(&format!("/v2/audit?identity=id{n}"), &app.admin_key).send().await.expect("send"),
            200,
        )
        .await;
        let stored = audit["records"][0]["requestId"].as_str().unwrap_or_default().to_string();
        assert_eq!(stored, used, "the audit keeps the id the client was told");
        if kept {
            assert_eq!(used, sent, "an acceptable id is kept");
        } else {
            assert_eq!(used.len(), 36, "an unacceptable id is replaced by a UUID, not {} chars", sent.len());
        }
    }

    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "first")
        .header("x-request-id", "second")
        .send()
        .await
        .expect("send");
    assert_eq!(echoed_id(&r).len(), 36, "a repeated header is not trusted");
}

async fn metric_labels_come_from_a_closed_set_whatever_clients_send() {
    let app = TestApp::spawn().await;
    for n in 0..20 {
        let invented = format!("INVENTED{n}{}", "X".repeat(2000));
        let method = reqwest::Method::from_bytes(invented.as_bytes()).expect("a token method");
        let r = app.client.request(method, app.url(&format!("/nowhere-{n}-{}", "p".repeat(2000)))).send().await.expect("send");
        assert!(r.status().is_client_error(), "{}", r.status());
        let r = app.client.get(app.url(&format!("/v2/unknown-{n}"))).send().await.expect("send");
        assert_eq!(r.status(), 404);
    }
    let metrics = app.client.get(app.url("/metrics")).send().await.expect("send").text().await.expect("text");
    assert!(!metrics.contains("INVENTED"), "a client's method name became a label");
    assert!(!metrics.contains("nowhere-") && !metrics.contains("unknown-"), "a client's path became a label");
    assert!(metrics.contains("method=\"other\""), "unknown methods fold into `other`: {metrics}");
    assert!(metrics.len() < 200_000, "the page stays small: {} bytes", metrics.len());
}

async fn overlong_parameters_are_refused_by_name_never_a_500() {
    let app = TestApp::spawn().await;
    let k = &app.admin_key;
    let long_search = "a".repeat(50_000);
    for format in ["json", "csv"] {
        let r = app
            .get(&format!("/v2/developers/identities?format={format}&searchValue={long_search}"), k)
            .send()
            .await
            .expect("send");
        let body = expect_error(r, 400).await;
        assert_eq!(body["errors"][0]["fieldName"], "searchValue", "{format}: {body}");
    }
    let longest = "a".repeat(255);
    let r = app.get(&format!("/v2/developers/identities?searchValue={longest}"), k).send().await.expect("send");
    expect_status(r, 200).await;
    let emails = |n: usize| (0..n).map(|i| format!("u{i}@x.com")).collect::<Vec<_>>().join(",");
    let r = app.get(&format!("/v2/developers/identities?emails={}", emails(100)), k).send().await.expect("send");
    expect_status(r, 200).await;
    let r = app.get(&format!("/v2/developers/identities?emails={}", emails(101)), k).send().await.expect("send");
    let body = expect_error(r, 400).await;
    assert_eq!(body["errors"][0]["fieldName"], "emails", "{body}");
    let huge = "b".repeat(40_000);
    let r = app.get(&format!("/v2/audit?identity={huge}"), k).send().await.expect("send");
    let body = expect_error(r, 400).await;
    assert_eq!(body["errors"][0]["fieldName"], "identity", "{body}");
}

async fn an_account_named_twice_is_refused_and_every_name_must_match() {
    let app = TestApp::spawn().await;
    let k = &app.admin_key;
    let r = app.get("/v2/integrations?accountIdentifier=default&accountIdentifier=acme", k).send().await.expect("send");
    let body = expect_error(r, 400).await;
    assert_eq!(body["errors"][0]["fieldName"], "accountIdentifier", "{body}");
    let r = app
        .get("/v2/integrations", k)
        .header("harness-account", "default")
        .header("harness-account", "acme")
        .send()
        .await
        .expect("send");
    expect_error(r, 400).await;
    let r = app.get("/v2/integrations?accountIdentifier=acme", k).header("harness-account", "default").send().await.expect("send");
    expect_error(r, 403).await;
    let r = app.get("/v2/integrations?accountIdentifier=default", k).header("harness-account", "default").send().await.expect("send");
    expect_status(r, 200).await;
}

async fn a_new_application_type_is_seen_by_the_next_listing() {
    let app = TestApp::spawn().await;
    let k = &app.admin_key;
    app.integration("default", 1, ApplicationType::Github).await;
    let rows = json!([{"email": "a@x.com", "integrationId": 1, "identity": "alice"}]);
    expect_status(app.patch_json("/v2/developers/identities", k, &rows).send().await.expect("send"), 200).await;
    let url = "/v2/developers/identities?applicationTypes=GITLAB_CLOUD";
    let before = expect_status(app.get(url, k).send().await.expect("send"), 200).await;
    assert_eq!(before["_metadata"]["total_count"], 0);
    let r = app
        .client
        .patch(app.url("/v2/integrations/1"))
        .header("x-api-key", k)
        .json(&json!({"applicationType": "GITLAB_CLOUD"}))
        .send()
        .await
        .expect("send");
    expect_status(r, 200).await;
    let after = expect_status(app.get(url, k).send().await.expect("send"), 200).await;
    assert_eq!(after["_metadata"]["total_count"], 1, "{after}");
    assert_eq!(after["count"], 1);
}

async fn lookalike_emails_and_identities_are_refused_with_their_row() {
    let app = TestApp::spawn().await;
    app.integration("default", 1, ApplicationType::Github).await;
    let rows = json!([
        {"email": "jane.doe@company.com", "integrationId": 1, "identity": "jdoe"},
        {"email": "jane.doe\u{200b}@company.com", "integrationId": 1, "identity": "jdoe2"},
        {"email": "bob@company.com", "integrationId": 1, "identity": "bob\u{202e}nimda"},
    ]);
    let r = app.patch_json("/v2/developers/identities", &app.admin_key, &rows).send().await.expect("send");
    let body = expect_error(r, 400).await;
    let types = common::error_types(&body);
    assert_eq!(types, vec!["INVALID_EMAIL", "INVALID_IDENTITY"], "{body}");
    assert_eq!(body["errors"][0]["samples"][0]["index"], 1);
    assert_eq!(body["errors"][1]["samples"][0]["index"], 2);
}

async fn an_account_runs_a_bounded_number_of_downloads_and_others_are_unaffected() {
    let app = TestApp::spawn().await;
    let k = &app.admin_key;
    app.integration("default", 1, ApplicationType::Custom).await;
    // Enough rows that an unread download cannot fit in socket buffers and holds its slot.
    let mut csv = String::from("email,integrationId,identity\n");
    for n in 0..120_000 {
        csv.push_str(&format!("user{n}@example.com,1,account-with-a-long-identifier-{n}\n"));
    }
    expect_status(app.upload_csv("/v2/developers/identities", k, csv).send().await.expect("send"), 200).await;
    let held: Vec<reqwest::Response> = futures_util::future::join_all(
        (0..2).map(|_| app.get("/v2/developers/identities?format=csv", k).send()),
    )
    .await
    .into_iter()
    .map(|r| r.expect("send"))
    .collect();
    assert!(held.iter().all(|r| r.status() == 200));
    let r = app.get("/v2/developers/identities?format=csv", k).send().await.expect("send");
    assert!(r.headers().contains_key("retry-after"));
    let body = expect_error(r, 429).await;
    assert!(body["message"].as_str().unwrap_or_default().contains("downloads"), "{body}");
    let other = app.key("acme", &[devid_core::types::Scope::Admin]).await;
    let r = app.get("/v2/developers/identities?format=csv", &other).send().await.expect("send");
    assert_eq!(r.status(), 200, "another account has slots of its own");
    drop(held);
    let mut freed = false;
    for _ in 0..100 {
        let r = app.get("/v2/developers/identities?format=csv", k).send().await.expect("send");
        if r.status() == 200 {
            freed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(freed, "a download that ends frees its slot");
}

async fn failed_authentication_is_limited_per_address() {
    let app = TestApp::spawn_with(devid_server::Limits { auth_failures_per_minute: 5, ..Default::default() }).await;
    let forged = {
        let mut parts: Vec<&str> = app.admin_key.split('.').collect();
        parts[3] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        parts.join(".")
    };
    for _ in 0..5 {
        expect_error(app.get("/v2/integrations", &forged).send().await.expect("send"), 401).await;
    }
    let r = app.get("/v2/integrations", &forged).send().await.expect("send");
    assert!(r.headers().contains_key("retry-after"));
    let body = expect_error(r, 429).await;
    assert!(body["message"].as_str().unwrap_or_default().contains("wrong API key"), "{body}");
    let r = app.client.get(app.url("/v2/integrations")).send().await.expect("send");
    expect_error(r, 429).await;
    let health = app.client.get(app.url("/healthz")).send().await.expect("send");
    assert_eq!(health.status(), 200, "endpoints without a key are not affected");
}

async fn the_keys_of_one_account_share_a_budget() {
    let limits = devid_server::Limits { account_rate_limit_per_minute: 4, ..Default::default() };
    let app = TestApp::spawn_with(limits).await;
    let second = app.key("default", &[devid_core::types::Scope::DeveloperRecordsRead]).await;
    for key in [&app.admin_key, &second, &app.admin_key, &second] {
        expect_status(app.get("/v2/developers/identities", key).send().await.expect("send"), 200).await;
    }
    let r = app.get("/v2/developers/identities", &second).send().await.expect("send");
    let body = expect_error(r, 429).await;
    assert!(body["message"].as_str().unwrap_or_default().contains("account"), "{body}");
    let other = app.key("acme", &[devid_core::types::Scope::Admin]).await;
    expect_status(app.get("/v2/developers/identities", &other).send().await.expect("send"), 200).await;
}

async fn slow_uploads_of_one_account_neither_starve_another_nor_hold_their_slot() {
    let limits = devid_server::Limits {
        max_concurrent_uploads: 2,
        upload_queue_wait: std::time::Duration::from_secs(1),
        upload_idle: std::time::Duration::from_secs(1),
        ..Default::default()
    };
    let app = TestApp::spawn_with(limits).await;
    app.integration("default", 1, ApplicationType::Github).await;
    let other = app.key("acme", &[devid_core::types::Scope::Admin]).await;
    app.integration("acme", 1, ApplicationType::Github).await;
    // A body that starts, then stalls: no Content-Length, so it takes a regular slot.
    let trickle = |app: &TestApp| {
        let chunks = futures_util::stream::once(async { Ok::<_, std::io::Error>("email,integrationId,identity\n") })
            .chain(futures_util::stream::once(async {
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                Ok("a@x.com,1,a\n")
            }));
        app.client
            .patch(app.url("/v2/developers/identities"))
            .header("x-api-key", &app.admin_key)
            .header("content-type", "text/csv")
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
    };
    let started = std::time::Instant::now();
    let (slow_a, slow_b, other_account) = tokio::join!(trickle(&app), trickle(&app), async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let rows = json!([{"email": "b@x.com", "integrationId": 1, "identity": "b"}]);
        let body = serde_json::to_vec(&rows).expect("json");
        // Chunked too, so it competes for the same regular slots.
        let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
        app.client
            .patch(app.url("/v2/developers/identities"))
            .header("x-api-key", &other)
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
    });
    expect_status(other_account.expect("send"), 200).await;
    let statuses = [slow_a.expect("send").status().as_u16(), slow_b.expect("send").status().as_u16()];
    // The first is cut off for trickling; the second either timed out waiting for the
    // account's half (503) or got the freed slot and was cut off in turn (408).
    assert!(statuses.contains(&408), "{statuses:?}");
    assert!(statuses.iter().all(|s| [408, 503].contains(s)), "{statuses:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "nobody waited for the 30 s pause");
}

async fn enumerated_parameters_are_taken_exactly_as_documented() {
    let app = TestApp::spawn().await;
    for query in ["sortOrder=%20asc", "pageSize=%205", "format=json%20", "sortKey=email%20", "pageIndex=0%0A", "integrationIds=1,,2", "applicationTypes=GITHUB,"] {
        let r = app.get(&format!("/v2/developers/identities?{query}"), &app.admin_key).send().await.expect("send");
        expect_error(r, 400).await;
    }
    let r = app.client.delete(app.url("/v2/integrations/5?force=%C2%85")).header("x-api-key", &app.admin_key).send().await.expect("send");
    expect_error(r, 400).await;
    for query in ["sortOrder=DESC", "format=JSON", "sortKey=UPDATEDAT", "integrationIds=", "applicationTypes=github,%20bitbucket-cloud"] {
        let r = app.get(&format!("/v2/developers/identities?{query}"), &app.admin_key).send().await.expect("send");
        expect_status(r, 200).await;
    }
}
}

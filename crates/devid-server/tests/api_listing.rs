//! Listing and export: filters, sorting, offset and keyset paging, bad parameters,
//! content negotiation, and the CSV round trip as a property.

#[macro_use]
mod common;

use std::collections::HashSet;

use common::{TestApp, error_types, expect_error, expect_status};
use devid_core::types::ApplicationType;
use serde_json::{Value, json};

/// 60 identities over three integrations and 12 developers.
async fn seeded() -> TestApp {
    let app = TestApp::spawn().await;
    app.integration("default", 1, ApplicationType::Github).await;
    app.integration("default", 2, ApplicationType::Jira).await;
    app.integration("default", 3, ApplicationType::GitlabCloud).await;
    let rows: Vec<Value> = (0..60)
        .map(|i| json!({"email": format!("dev{:02}@x.com", i % 12), "integrationId": 1 + i % 3, "identity": format!("User-{:03}", 60 - i)}))
        .collect();
    let r =
        app.patch_json("/v2/developers/identities", &app.admin_key, &Value::Array(rows)).send().await.expect("send");
    expect_status(r, 200).await;
    app
}

async fn page(app: &TestApp, query: &str) -> Value {
    expect_status(
        app.get(&format!("/v2/developers/identities?{query}"), &app.admin_key).send().await.expect("send"),
        200,
    )
    .await
}

fn keys(page: &Value) -> Vec<(i64, String)> {
    page["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| {
            (r["integrationId"].as_i64().unwrap_or_default(), r["identity"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

/// Follows next_cursor from the first page to the end.
async fn walk_by_cursor(
    app: &TestApp,
    query: &str,
    between_pages: &mut (dyn FnMut(usize) -> Option<Value> + Send),
) -> Vec<(i64, String)> {
    let mut seen = Vec::new();
    let mut url = format!("/v2/developers/identities?{query}");
    for page_number in 0.. {
        let body = expect_status(app.get(&url, &app.admin_key).send().await.expect("send"), 200).await;
        seen.extend(keys(&body));
        if let Some(rows) = between_pages(page_number) {
            expect_status(
                app.patch_json("/v2/developers/identities", &app.admin_key, &rows).send().await.expect("send"),
                200,
            )
            .await;
        }
        match body["_metadata"]["next_cursor"].as_str() {
            Some(cursor) => url = format!("/v2/developers/identities?{query}&cursor={cursor}"),
            None => break,
        }
    }
    seen
}

both_backends! {
/// Offset pages start from positions the server remembers (see anchors.rs); whatever
/// order they are asked in, and after a change, they must be exactly the slices of the
/// full listing.
async fn offset_pages_are_exact_slices_in_any_order_and_after_changes() {
    let app = seeded().await;
    for sort in ["", "&sortKey=identity&sortOrder=desc", "&sortKey=updatedAt", "&integrationIds=1,3"] {
        let all = keys(&page(&app, &format!("pageSize=1000{sort}")).await);
        // Sequential, then repeated, then backwards, then with another page size.
        let mut asks: Vec<(usize, usize)> = (0..9).map(|i| (i, 7)).collect();
        asks.extend([(5, 7), (5, 7), (8, 7), (3, 7), (1, 7), (0, 7), (2, 11), (4, 11), (3, 11), (9, 7), (40, 7)]);
        for (index, size) in asks {
            let got = page(&app, &format!("pageSize={size}&pageIndex={index}{sort}")).await;
            let expected: Vec<_> = all.iter().skip(index * size).take(size).cloned().collect();
            assert_eq!(keys(&got), expected, "page {index} of {size} {sort}");
            assert_eq!(got["_metadata"]["has_next"], json!((index + 1) * size < all.len()), "page {index} {sort}");
            assert_eq!(got["_metadata"]["total_count"], json!(all.len()));
        }
    }
    // A change moves rows; remembered positions must not survive it.
    let before = keys(&page(&app, "pageSize=7&pageIndex=3").await);
    let moved = json!([{"email": "aaa@x.com", "integrationId": 1, "identity": "User-060"},
                       {"email": "aaa@x.com", "integrationId": 2, "identity": "new-one"}]);
    expect_status(app.patch_json("/v2/developers/identities", &app.admin_key, &moved).send().await.expect("send"), 200)
        .await;
    let all = keys(&page(&app, "pageSize=1000").await);
    let after = keys(&page(&app, "pageSize=7&pageIndex=3").await);
    assert_eq!(after, all[21..28].to_vec());
    assert_ne!(after, before, "the change shifted page 3");
}

async fn filters_select_exactly_the_matching_rows() {
    let app = seeded().await;
    let all = page(&app, "pageSize=1000").await;
    assert_eq!(all["count"], 60);
    assert_eq!(all["_metadata"]["total_count"], 60);
    assert_eq!(all["_metadata"]["has_next"], false);
    // Totals are cached between writes, and a write makes them count again.
    assert_eq!(page(&app, "pageSize=5").await["_metadata"]["total_count"], 60);
    let extra = json!([{"email": "extra@x.com", "integrationId": 1, "identity": "extra"}]);
    expect_status(app.patch_json("/v2/developers/identities", &app.admin_key, &extra).send().await.expect("send"), 200).await;
    assert_eq!(page(&app, "pageSize=5").await["_metadata"]["total_count"], 61);
    let gone = app.client.delete(app.url("/v2/developers/identities")).header("x-api-key", &app.admin_key).json(&json!([{"integrationId": 1, "identity": "extra"}]));
    expect_status(gone.send().await.expect("send"), 200).await;
    assert_eq!(page(&app, "pageSize=5").await["_metadata"]["total_count"], 60);

    let by_email = page(&app, "emails=DEV01@x.com,dev02@x.com&pageSize=1000").await;
    assert_eq!(by_email["count"], 10);
    assert!(by_email["records"].as_array().expect("records").iter().all(|r| r["email"] == "dev01@x.com" || r["email"] == "dev02@x.com"));

    let by_integration = page(&app, "integrationIds=1,3&pageSize=1000").await;
    assert_eq!(by_integration["count"], 40);
    let by_type = page(&app, "applicationTypes=jira&pageSize=1000").await;
    assert_eq!(by_type["count"], 20);
    assert!(by_type["records"].as_array().expect("records").iter().all(|r| r["applicationType"] == "JIRA"));

    let search = page(&app, "searchValue=user-00&pageSize=1000").await;
    assert_eq!(search["count"], 9, "User-001..User-009, matched case-insensitively");
    let search_email = page(&app, "searchValue=DEV11&pageSize=1000").await;
    assert_eq!(search_email["count"], 5);
    let literal = page(&app, "searchValue=%25&pageSize=1000").await;
    assert_eq!(literal["count"], 0, "% is a character, not a wildcard");

    let newest = page(&app, "sortKey=updatedAt&sortOrder=desc&pageSize=1").await;
    let stamp = newest["records"][0]["updatedAt"].as_str().expect("updatedAt").to_string();
    let after = page(&app, &format!("updatedAfter={}&pageSize=1000", stamp.replace('+', "%2B"))).await;
    assert_eq!(after["count"], 0);
    let move_one = json!([{"email": "late@x.com", "integrationId": 2, "identity": "User-010"}]);
    expect_status(app.patch_json("/v2/developers/identities", &app.admin_key, &move_one).send().await.expect("send"), 200).await;
    let after = page(&app, &format!("updatedAfter={stamp}&pageSize=1000")).await;
    assert_eq!(after["count"], 1, "{after}");
    assert_eq!(after["records"][0]["email"], "late@x.com");
}

async fn every_sort_and_order_pages_each_row_once_by_offset_and_cursor() {
    let app = seeded().await;
    for sort in ["email", "integrationId", "identity", "updatedAt"] {
        for order in ["asc", "desc"] {
            let all = keys(&page(&app, &format!("sortKey={sort}&sortOrder={order}&pageSize=1000")).await);
            assert_eq!(all.len(), 60);
            let mut by_offset = Vec::new();
            for index in 0..9 {
                let p = page(&app, &format!("sortKey={sort}&sortOrder={order}&pageSize=7&pageIndex={index}")).await;
                assert_eq!(p["_metadata"]["page"], index);
                assert_eq!(p["_metadata"]["has_next"], index < 8);
                by_offset.extend(keys(&p));
            }
            assert_eq!(by_offset, all, "offset walk, {sort} {order}");
            let by_cursor = walk_by_cursor(&app, &format!("sortKey={sort}&sortOrder={order}&pageSize=7"), &mut |_| None).await;
            assert_eq!(by_cursor, all, "cursor walk, {sort} {order}");
        }
    }
    // `identity` sorts by the identity as compared: lower-cased for GitHub and GitLab,
    // exact for Jira (integration 2), byte order.
    let sorted = keys(&page(&app, "sortKey=identity&pageSize=1000").await);
    let compared = |(id, identity): &(i64, String)| if *id == 2 { identity.clone() } else { identity.to_lowercase() };
    let mut expected = sorted.clone();
    expected.sort_by(|a, b| compared(a).cmp(&compared(b)).then(a.0.cmp(&b.0)));
    assert_eq!(sorted, expected);
}

async fn a_cursor_walk_survives_concurrent_inserts_and_reassignments() {
    let app = seeded().await;
    let before: HashSet<(i64, String)> = keys(&page(&app, "pageSize=1000").await).into_iter().collect();
    // By integration and identity, which no write changes: every row present at the
    // start is returned exactly once while rows are inserted and reassigned.
    let mut writes = |n: usize| -> Option<Value> {
        Some(json!([
            {"email": format!("new{n}@x.com"), "integrationId": 1 + (n % 3), "identity": format!("Inserted-{n}")},
            {"email": format!("thief{n}@x.com"), "integrationId": 1 + (n % 3), "identity": format!("User-{:03}", 60 - n * 3)},
            {"email": "zzz@x.com", "integrationId": 2, "identity": "User-059"},
        ]))
    };
    let walked = walk_by_cursor(&app, "sortKey=integrationId&pageSize=8", &mut writes).await;
    let mut once = HashSet::new();
    for key in &walked {
        assert!(once.insert(key.clone()), "{key:?} returned twice");
    }
    for key in &before {
        assert!(once.contains(key), "{key:?} existed at the start and was skipped");
    }
    // By email with inserts going on: the same holds.
    let before: HashSet<(i64, String)> = keys(&page(&app, "pageSize=1000").await).into_iter().collect();
    let mut inserts = |n: usize| -> Option<Value> {
        Some(json!([
            {"email": "aaa@x.com", "integrationId": 3, "identity": format!("Early-{n}")},
            {"email": "zzz@x.com", "integrationId": 3, "identity": format!("Late-{n}")},
        ]))
    };
    let walked = walk_by_cursor(&app, "sortKey=email&pageSize=9", &mut inserts).await;
    let mut once = HashSet::new();
    for key in &walked {
        assert!(once.insert(key.clone()), "{key:?} returned twice");
    }
    assert!(before.iter().all(|k| once.contains(k)));
}

/// The largest pageIndex accepted is an empty page, not a database error; one more is
/// refused with the bound. Listing and audit alike.
async fn the_deepest_page_index_is_empty_and_one_more_is_refused() {
    let app = seeded().await;
    let deepest = i64::MAX as u64 / 1000;
    for path in ["/v2/developers/identities", "/v2/audit"] {
        let r = app.get(&format!("{path}?pageSize=1000&pageIndex={deepest}"), &app.admin_key).send().await.expect("send");
        let body = expect_status(r, 200).await;
        assert_eq!(body["_metadata"]["has_next"], false, "{path}: {body}");
        let r = app.get(&format!("{path}?pageSize=1000&pageIndex={}", deepest + 1), &app.admin_key).send().await.expect("send");
        let body = expect_error(r, 400).await;
        assert!(body["message"].as_str().unwrap_or_default().contains(&deepest.to_string()), "{path}: {body}");
    }
}

async fn bad_audit_parameters_are_named_as_sent() {
    let app = seeded().await;
    for (query, field) in
        [("integrationId=-5", "integrationId"), ("integrationId=x", "integrationId"), ("from=yesterday", "from")]
    {
        let r = app.get(&format!("/v2/audit?{query}"), &app.admin_key).send().await.expect("send");
        let body = expect_error(r, 400).await;
        assert_eq!(body["errors"][0]["fieldName"], field, "{query}: {body}");
    }
}

async fn bad_parameters_are_named_with_the_allowed_values() {
    let app = seeded().await;
    let cases = [
        ("sortKey=name", "sortKey", "email, integrationId, identity, updatedAt"),
        ("sortOrder=up", "sortOrder", "asc or desc"),
        ("pageIndex=-1", "pageIndex", "whole number"),
        ("pageSize=0", "pageSize", "1 to 1000"),
        ("pageSize=1001", "pageSize", "1 to 1000"),
        ("pageSize=ten", "pageSize", "1 to 1000"),
        ("updatedAfter=yesterday", "updatedAfter", "RFC 3339"),
        ("integrationIds=1,x", "integrationIds", "positive whole numbers"),
        ("applicationTypes=GITHUB,SVN", "applicationTypes", "GITHUB_ENTERPRISE"),
        ("applicationTypes=", "applicationTypes", "is empty"),
        ("page_size=10", "page_size", "pageSize"),
        ("format=xml", "format", "json or csv"),
        ("cursor=abc&pageIndex=1", "cursor", "either"),
    ];
    for (query, field, hint) in cases {
        let r = app.get(&format!("/v2/developers/identities?{query}"), &app.admin_key).send().await.expect("send");
        let body = expect_error(r, 400).await;
        assert_eq!(body["errors"][0]["fieldName"], field, "{query}: {body}");
        assert!(body["message"].as_str().unwrap_or_default().contains(hint), "{query}: {body}");
    }
}

async fn foreign_altered_or_mismatched_cursors_are_refused() {
    let app = seeded().await;
    let first = page(&app, "pageSize=5").await;
    let cursor = first["_metadata"]["next_cursor"].as_str().expect("cursor").to_string();
    let ok = app.get(&format!("/v2/developers/identities?pageSize=5&cursor={cursor}"), &app.admin_key).send().await.expect("send");
    expect_status(ok, 200).await;

    let mut altered = cursor.clone().into_bytes();
    let mid = altered.len() / 2;
    altered[mid] = if altered[mid] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).expect("ascii");
    let other_filters = format!("pageSize=5&sortKey=identity&cursor={cursor}");
    let garbage = "pageSize=5&cursor=%7B%7D".to_string();
    for query in [format!("pageSize=5&cursor={altered}"), other_filters, garbage] {
        let r = app.get(&format!("/v2/developers/identities?{query}"), &app.admin_key).send().await.expect("send");
        let body = expect_error(r, 400).await;
        assert_eq!(error_types(&body), vec!["INVALID_CURSOR"], "{query}: {body}");
    }
    let other_account = app.key("acme", &[devid_core::types::Scope::Admin]).await;
    let r = app.get(&format!("/v2/developers/identities?pageSize=5&cursor={cursor}"), &other_account).send().await.expect("send");
    let body = expect_error(r, 400).await;
    assert!(body["message"].as_str().unwrap_or_default().contains("another account"), "{body}");
}

async fn content_negotiation_picks_json_or_csv() {
    let app = seeded().await;
    for accept in ["*/*", "application/json", "application/json, text/csv", ""] {
        let mut r = app.get("/v2/developers/identities", &app.admin_key);
        if !accept.is_empty() {
            r = r.header("accept", accept);
        }
        expect_status(r.send().await.expect("send"), 200).await;
    }
    for accept in ["text/csv", "text/csv, application/json", "text/csv; charset=utf-8"] {
        let r = app.get("/v2/developers/identities", &app.admin_key).header("accept", accept).send().await.expect("send");
        assert_eq!(r.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("text/csv; charset=utf-8"), "{accept}");
        let text = r.text().await.expect("text");
        assert_eq!(text.lines().count(), 61, "header and every row, no paging");
    }
    let filtered = app.get("/v2/developers/identities?format=csv&integrationIds=2&sortKey=identity&sortOrder=desc", &app.admin_key)
        .send().await.expect("send").text().await.expect("text");
    let identities: Vec<&str> = filtered.lines().skip(1).map(|l| l.split(',').nth(2).unwrap_or_default()).collect();
    assert_eq!(identities.len(), 20);
    let mut sorted = identities.clone();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.to_string()));
    assert_eq!(identities, sorted, "the CSV follows filters and sort");

    // provenance=true adds locked and source after Harness's columns; a bad value is
    // refused on either path.
    let locked = json!([{"integrationId": 2, "identity": "User-059"}]);
    let r = app.client.post(app.url("/v2/developers/identities/lock")).header("x-api-key", &app.admin_key).json(&locked);
    expect_status(r.send().await.expect("send"), 200).await;
    let csv = app.get("/v2/developers/identities?format=csv&provenance=true&integrationIds=2", &app.admin_key)
        .send().await.expect("send").text().await.expect("text");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("email,integrationId,identity,applicationType,updatedAt,locked,source"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|r| r.len() == 7 && r[6] == "upload"), "{csv}");
    let locked_rows: Vec<&str> = rows.iter().filter(|r| r[5] == "true").map(|r| r[2]).collect();
    assert_eq!(locked_rows, ["User-059"], "{csv}");
    let plain = app.get("/v2/developers/identities?format=csv&integrationIds=2", &app.admin_key)
        .send().await.expect("send").text().await.expect("text");
    assert!(plain.starts_with("email,integrationId,identity,applicationType,updatedAt\r\n"), "{plain}");
    for path in ["/v2/developers/identities?provenance=maybe", "/v2/developers/identities?format=csv&provenance=maybe"] {
        let body = expect_error(app.get(path, &app.admin_key).send().await.expect("send"), 400).await;
        assert!(body["message"].as_str().unwrap_or_default().contains("provenance"), "{path}: {body}");
    }
}
}

mod round_trip {
    use super::*;
    use proptest::prelude::*;

    /// Identities with what breaks naive CSV: commas, quotes, leading formula
    /// characters, inner spaces, non-ASCII, mixed case.
    fn identity() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[a-zA-Z0-9._-]{1,8}",
            Just(",".to_string()),
            Just("\"".to_string()),
            Just("'".to_string()),
            Just(" x ".to_string()),
            Just("é".to_string()),
            Just("名".to_string()),
            Just("Ü".to_string()),
        ];
        let lead = prop_oneof![Just(""), Just("="), Just("+"), Just("-"), Just("@"), Just("'="), Just("'")];
        (lead, proptest::collection::vec(piece, 1..5))
            .prop_map(|(l, p)| format!("{l}{}", p.concat()).trim().to_string())
            .prop_filter("non-empty", |s| !s.is_empty())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

        /// upload → download → upload answers all unchanged; download → download is byte-identical.
        #[test]
        fn csv_download_uploads_back_unchanged(rows in proptest::collection::vec((0usize..6, 1i64..4, identity()), 1..40)) {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
            runtime.block_on(async {
                let app = TestApp::spawn().await;
                app.integration("default", 1, ApplicationType::Github).await;
                app.integration("default", 2, ApplicationType::Jira).await;
                app.integration("default", 3, ApplicationType::Custom).await;
                // One email per identity, so random rows never conflict.
                let mut seen = std::collections::HashMap::new();
                let body: Vec<Value> = rows
                    .iter()
                    .filter(|(dev, id, identity)| {
                        let key = if *id == 1 { identity.to_lowercase() } else { identity.clone() };
                        seen.entry((*id, key)).or_insert(*dev) == dev
                    })
                    .map(|(dev, id, identity)| json!({"email": format!("Dev{dev}@Example.com"), "integrationId": id, "identity": identity}))
                    .collect();
                let r = app.patch_json("/v2/developers/identities", &app.admin_key, &Value::Array(body)).send().await.expect("send");
                expect_status(r, 200).await;
                let first = app.get("/v2/developers/identities?format=csv", &app.admin_key).send().await.expect("send").text().await.expect("csv");
                let back = expect_status(app.upload_csv("/v2/developers/identities", &app.admin_key, first.clone()).send().await.expect("send"), 200).await;
                let summary = &back["summary"];
                assert_eq!(summary["created"], 0, "{first}\n{back}");
                assert_eq!(summary["reassigned"], 0, "{first}\n{back}");
                assert_eq!(summary["unchanged"], summary["received"], "{first}\n{back}");
                let second = app.get("/v2/developers/identities?format=csv", &app.admin_key).send().await.expect("send").text().await.expect("csv");
                assert_eq!(first, second);
            });
        }
    }
}

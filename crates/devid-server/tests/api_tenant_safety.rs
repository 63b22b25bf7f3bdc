//! One tenant, or one client without a key, must not degrade or fill the service for
//! the others: bounded request ids, closed metric labels, keyed cursors, bounded
//! parameters, per-account caches and limits (docs/security.md, "Fair sharing").

#[macro_use]
mod common;

use common::{TestApp, expect_error, expect_status};
use devid_core::types::ApplicationType;
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
    let emails = (0..1001).map(|n| format!("u{n}@x.com")).collect::<Vec<_>>().join(",");
    let r = app.get(&format!("/v2/developers/identities?emails={emails}"), k).send().await.expect("send");
    let body = expect_error(r, 400).await;
    assert_eq!(body["errors"][0]["fieldName"], "emails", "{body}");
    let huge = "b".repeat(40_000);
    let r = app.get(&format!("/v2/audit?identity={huge}"), k).send().await.expect("send");
    let body = expect_error(r, 400).await;
    assert_eq!(body["errors"][0]["fieldName"], "identity", "{body}");
}
}

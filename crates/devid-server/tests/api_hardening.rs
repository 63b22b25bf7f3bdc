//! Hostile requests, limits and rate limiting: each gets a 4xx (or 503/429 with
//! Retry-After) with a sentence, the data stays as it was, and the server keeps serving
//! everyone else meanwhile.

mod common;

use std::time::Duration;

use common::{TestApp, error_types, expect_error, expect_status};
use devid_core::types::ApplicationType;
use devid_server::Limits;
use serde_json::{Value, json};

async fn seeded(limits: Limits) -> TestApp {
    let app = TestApp::spawn_with(limits).await;
    app.integration("default", 1, ApplicationType::Github).await;
    let seed = json!([{"email": "keep@x.com", "integrationId": 1, "identity": "keeper"}]);
    expect_status(app.patch_json("/v2/developers/identities", &app.admin_key, &seed).send().await.expect("send"), 200)
        .await;
    app
}

fn patch(app: &TestApp) -> reqwest::RequestBuilder {
    app.client.patch(app.url("/v2/developers/identities")).header("x-api-key", &app.admin_key)
}

fn file(bytes: Vec<u8>) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(bytes).file_name("x.csv"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_a_clear_4xx_and_change_nothing() {
    let app = seeded(Limits::default()).await;
    let before = app.dump().await;

    // Someone else keeps using the server the whole time.
    let probe_client = app.client.clone();
    let probe_url = app.url("/healthz");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe_stop = stop.clone();
    let probe = tokio::spawn(async move {
        let mut answered = 0;
        while !probe_stop.load(std::sync::atomic::Ordering::Relaxed) {
            let r = probe_client.get(&probe_url).send().await.expect("healthz");
            assert_eq!(r.status().as_u16(), 200);
            answered += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        answered
    });

    let header = "email,integrationId,identity\n";
    let mut huge = format!("{header}a@x.com,1,\"").into_bytes();
    huge.extend(std::iter::repeat_n(b'x', 100 * 1024 * 1024));
    huge.extend_from_slice(b"\"\n");
    let wide_header: Vec<String> = (0..10_000).map(|i| format!("c{i}")).collect();
    let wide = format!("{}\n{}\n", wide_header.join(","), vec!["v"; 10_000].join(","));
    let deep = format!("[{}{}]", "[".repeat(10_000), "]".repeat(10_000));
    let wrong_types = format!("[{}]", vec!["1"; 1_000_000].join(","));

    let cases: Vec<(&str, reqwest::RequestBuilder, u16, Option<&str>)> = vec![
        ("a 100 MB CSV field", patch(&app).multipart(file(huge)), 400, Some("INVALID_CSV")),
        ("10,000 columns", patch(&app).multipart(file(wide.into_bytes())), 400, Some("REQUIRED_FIELD_MISSING")),
        (
            "NUL bytes in JSON",
            patch(&app)
                .header("content-type", "application/json")
                .body(r#"[{"email":"a@x.com","integrationId":1,"identity":"a\u0000b"}]"#),
            400,
            Some("INVALID_IDENTITY"),
        ),
        (
            "NUL bytes in CSV",
            patch(&app).multipart(file(format!("{header}a@x.com,1,a\0b\n").into_bytes())),
            400,
            Some("INVALID_IDENTITY"),
        ),
        (
            "invalid UTF-8 JSON",
            patch(&app).header("content-type", "application/json").body(b"[{\"email\":\"\xff\xfe\"}]".to_vec()),
            400,
            Some("INVALID_JSON"),
        ),
        (
            "invalid UTF-8 CSV",
            patch(&app).multipart(file([header.as_bytes(), b"a@x.com,1,\xff\n"].concat())),
            400,
            Some("INVALID_CSV"),
        ),
        (
            "JSON nested 10,000 deep",
            patch(&app).header("content-type", "application/json").body(deep),
            400,
            Some("INVALID_JSON"),
        ),
        (
            "1M-element array of numbers",
            patch(&app).header("content-type", "application/json").body(wrong_types),
            400,
            Some("INVALID_JSON"),
        ),
        ("multipart without file", patch(&app).multipart(reqwest::multipart::Form::new().text("csv", "x")), 400, None),
        (
            "two file fields",
            patch(&app).multipart(file(b"a".to_vec()).part("file", reqwest::multipart::Part::bytes(b"b".to_vec()))),
            400,
            None,
        ),
        ("wrong content type", patch(&app).header("content-type", "text/plain").body("hello"), 415, None),
        ("no content type", patch(&app).body("[]"), 415, None),
        (
            "gzip body",
            patch(&app)
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0]),
            415,
            None,
        ),
        (
            "unknown JSON field",
            patch(&app).json(&json!([{"email": "a@x.com", "integrationId": 1, "identity": "a", "admin": true}])),
            400,
            Some("UNKNOWN_FIELD"),
        ),
        (
            "wrong JSON key types",
            patch(&app).json(&json!([{"email": 5, "integrationId": [1], "identity": {"a": 1}}])),
            400,
            Some("INVALID_EMAIL"),
        ),
    ];
    for (what, request, status, error_type) in cases {
        let response = request.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let body = expect_error(response, status).await;
        if let Some(error_type) = error_type {
            assert!(error_types(&body).contains(&error_type.to_string()), "{what}: {body}");
        }
    }
    let many = json_error_count(&app).await;
    assert_eq!(many, 1_000_000, "every wrong element is counted");

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(probe.await.expect("probe") > 0);
    assert_eq!(app.dump().await, before, "nothing changed");
}

async fn json_error_count(app: &TestApp) -> u64 {
    let body = format!("[{}]", vec!["true"; 1_000_000].join(","));
    let r = patch(app).header("content-type", "application/json").body(body).send().await.expect("send");
    let answer = expect_error(r, 400).await;
    answer["errors"][0]["errorCount"].as_u64().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sending_one_byte_a_second_is_timed_out_while_others_are_served() {
    let app = seeded(Limits { request_timeout: Duration::from_secs(2), ..Default::default() }).await;
    let body = futures_util::stream::unfold(0u32, |n| async move {
        if n > 30 {
            return None;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        Some((Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"[")), n + 1))
    });
    let slow = patch(&app).header("content-type", "application/json").body(reqwest::Body::wrap_stream(body)).send();
    let others = async {
        for _ in 0..5 {
            let r = app.get("/v2/developers/identities", &app.admin_key).send().await.expect("send");
            assert_eq!(r.status().as_u16(), 200);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let (slow, ()) = tokio::join!(slow, others);
    let body = expect_error(slow.expect("the server answers the slow client"), 408).await;
    assert!(body["message"].as_str().unwrap_or_default().contains("--request-timeout"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_are_refused() {
    let app = seeded(Limits::default()).await;
    let r = app.get("/v2/integrations", &app.admin_key).header("x-padding", "p".repeat(1024 * 1024)).send().await;
    match r {
        Ok(r) => assert_eq!(r.status().as_u16(), 431),
        // hyper may close the connection instead of answering a request it will not read.
        Err(e) => assert!(e.is_request() || e.is_connect() || e.to_string().contains("connection"), "{e}"),
    }
    expect_status(app.client.get(app.url("/healthz")).send().await.expect("send"), 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_beyond_the_concurrency_cap_wait_then_get_503() {
    let app = seeded(Limits {
        max_concurrent_uploads: 1,
        upload_queue_wait: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    // Holds the only upload slot for about two seconds by sending slowly.
    let rows = br#"[{"email":"slow@x.com","integrationId":1,"identity":"slow"}]"#.to_vec();
    let chunks: Vec<Vec<u8>> = rows.chunks(20).map(<[u8]>::to_vec).collect();
    let body = futures_util::stream::iter(chunks).then(|c| async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok::<_, std::io::Error>(bytes::Bytes::from(c))
    });
    let slow = patch(&app).header("content-type", "application/json").body(reqwest::Body::wrap_stream(body)).send();
    // Sent without a Content-Length, so it may be large: it needs the held slot.
    let second = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rows = br#"[{"email":"b@x.com","integrationId":1,"identity":"b"}]"#.to_vec();
        let body = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(rows))]);
        patch(&app)
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .expect("send")
    };
    // A small body of declared length has lanes of its own and is not held up.
    let small = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        patch(&app)
            .json(&json!([{"email": "c@x.com", "integrationId": 1, "identity": "c"}]))
            .send()
            .await
            .expect("send")
    };
    let (slow, second, small) = tokio::join!(slow, second, small);
    assert_eq!(second.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("5"));
    let body = expect_error(second, 503).await;
    assert!(body["message"].as_str().unwrap_or_default().contains("busy"), "{body}");
    expect_status(small, 200).await;
    expect_status(slow.expect("send"), 200).await;
    let after = patch(&app)
        .json(&json!([{"email": "b@x.com", "integrationId": 1, "identity": "b"}]))
        .send()
        .await
        .expect("send");
    expect_status(after, 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_is_rate_limited_with_429() {
    let app = seeded(Limits { rate_limit_per_minute: 5, ..Default::default() }).await;
    let other = app.key("default", &[devid_core::types::Scope::DeveloperRecordsRead]).await;
    // The seeding upload used one request of the admin key.
    for _ in 0..4 {
        expect_status(app.get("/v2/developers/identities", &app.admin_key).send().await.expect("send"), 200).await;
    }
    let limited = app.get("/v2/developers/identities", &app.admin_key).send().await.expect("send");
    let retry: u64 =
        limited.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    expect_error(limited, 429).await;
    expect_status(app.get("/v2/developers/identities", &other).send().await.expect("send"), 200).await;

    let metrics = app.client.get(app.url("/metrics")).send().await.expect("send").text().await.expect("text");
    assert!(metrics.contains(r#"devid_rejected_requests_total{reason="rate"}"#), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_are_counted_by_reason() {
    let app = seeded(Limits::default()).await;
    expect_error(app.client.get(app.url("/v2/integrations")).send().await.expect("send"), 401).await;
    let bad: Value = expect_error(patch(&app).json(&json!([])).send().await.expect("send"), 400).await;
    assert_eq!(error_types(&bad), vec!["EMPTY_PAYLOAD"]);
    let metrics = app.client.get(app.url("/metrics")).send().await.expect("send").text().await.expect("text");
    for reason in ["auth", "validation"] {
        assert!(
            metrics.contains(&format!(r#"devid_rejected_requests_total{{reason="{reason}"}}"#)),
            "{reason}: {metrics}"
        );
    }
}

use futures_util::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_cut_off_and_cannot_hold_every_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connections =
        devid_server::ConnectionLimits { header_read_timeout: Duration::from_secs(1), max_connections: 2 };
    let app = TestApp::spawn_with_connections(Limits::default(), connections).await;
    let address = app.base.trim_start_matches("http://").to_string();
    let mut lorises = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.expect("connect");
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: devid\r\nX-Slow: ").await.expect("write");
        lorises.push(stream);
    }
    // Both connections are taken; this request waits for one to be cut off.
    let started = std::time::Instant::now();
    let r = app.client.get(app.url("/healthz")).timeout(Duration::from_secs(10)).send().await.expect("served");
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(8), "served once the slow clients were cut off");
    for mut stream in lorises {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "the server closed the connection of a client that never finished its headers");
    }
}

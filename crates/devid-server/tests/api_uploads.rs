//! Identity uploads through the real server: the documented examples, every error
//! type from JSON and from CSV, hostile files, atomicity, dry runs, audit.

#[macro_use]
mod common;

use common::{TestApp, error_types, expect_error, expect_status};
use devid_core::types::ApplicationType;
use devid_server::Limits;
use serde_json::{Value, json};

async fn app_with_integrations() -> TestApp {
    let app = TestApp::spawn().await;
    app.integration("default", 1, ApplicationType::Github).await;
    app.integration("default", 2, ApplicationType::Jira).await;
    app.integration("default", 3, ApplicationType::GitlabCloud).await;
    app.integration("default", 123, ApplicationType::BitbucketCloud).await;
    app
}

fn multipart(field: &str, csv: impl Into<Vec<u8>>) -> reqwest::multipart::Form {
    let part = reqwest::multipart::Part::bytes(csv.into()).file_name("sample_developer.csv");
    reqwest::multipart::Form::new().part(field.to_string(), part)
}

/// Sends a JSON body to the current endpoint and returns the 4xx body.
async fn json_error(app: &TestApp, body: &str, status: u16) -> Value {
    let r = app
        .client
        .patch(app.url("/v2/developers/identities"))
        .header("x-api-key", &app.admin_key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("send");
    expect_error(r, status).await
}

async fn csv_error(app: &TestApp, csv: impl Into<Vec<u8>>, status: u16) -> Value {
    let r = app.upload_csv("/v2/developers/identities", &app.admin_key, csv).send().await.expect("send");
    expect_error(r, status).await
}

fn group<'a>(body: &'a Value, error_type: &str) -> &'a Value {
    body["errors"]
        .as_array()
        .and_then(|a| a.iter().find(|g| g["errorType"] == error_type))
        .unwrap_or_else(|| panic!("no {error_type} in {body}"))
}

#[tokio::test]
async fn a_failure_mid_upload_leaves_nothing_behind() {
    let app = app_with_integrations().await;
    let rows: Vec<Value> = (0..200)
        .map(|i| json!({"email": format!("d{i}@x.com"), "integrationId": 1, "identity": format!("u{i}")}))
        .collect();
    let sqlite = app.sqlite.clone().expect("SQLite backend");
    sqlite.inject_failure_after_rows(100);
    let r = app
        .patch_json("/v2/developers/identities", &app.admin_key, &Value::Array(rows.clone()))
        .send()
        .await
        .expect("send");
    expect_error(r, 500).await;
    assert!(app.dump().await.is_empty());
    sqlite.inject_failure_after_rows(0);
    let r =
        app.patch_json("/v2/developers/identities", &app.admin_key, &Value::Array(rows)).send().await.expect("send");
    assert_eq!(expect_status(r, 200).await["summary"]["created"], 200);
}

both_backends! {
async fn the_seed_pages_examples_work_as_written() {
    let app = app_with_integrations().await;
    let key = &app.admin_key;

    // Current JSON endpoint, with the page's headers and body.
    let r = app
        .client
        .patch(app.url("/prod1/sei/api/v2/developers/identities"))
        .header("accept", "application/json")
        .header("x-api-key", key)
        .header("Content-Type", "application/json")
        .body(
            r#"[
    {
      "email": "developer@example.com",
      "integrationId": 123,
      "identity": "bitbucket-user-123"
    }
  ]"#,
        )
        .send()
        .await
        .expect("send");
    let body = expect_status(r, 200).await;
    assert_eq!(body["status"], "success");
    assert_eq!(body["message"], "Developer identities updated successfully.");
    assert_eq!(body["summary"]["created"], 1);

    // Current CSV endpoint: -F 'file=@"sample_developer.csv"'.
    let r = app
        .client
        .patch(app.url("/prod1/sei/api/v2/developers/identities"))
        .header("x-api-key", key)
        .multipart(multipart(
            "file",
            "email,integrationId,identity\nalice@harness.io,1,alice_123\nbob@harness.io,2,bob_456\n",
        ))
        .send()
        .await
        .expect("send");
    let body = expect_status(r, 200).await;
    assert_eq!(body["message"], "CSV processed and developer identities updated successfully.");
    assert_eq!(body["summary"]["created"], 2);

    // Previous JSON endpoint, X-Api-Key header.
    let r = app
        .client
        .post(app.url("/v2/developers/cloud-ids"))
        .header("Content-Type", "application/json")
        .header("X-Api-Key", key)
        .body(
            r#"{
  "integrationUsers": [
    {
      "email": "developer@example.com",
      "applicationType": "BITBUCKET_CLOUD",
      "cloudId": "dev123-cloud"
    },
    {
      "email": "jane.doe@example.com",
      "applicationType": "CUSTOM",
      "cloudId": "jane.doe-internal"
    }
  ]
}"#,
        )
        .send()
        .await
        .expect("send");
    let body = expect_status(r, 200).await;
    assert_eq!(body["message"], "Developer identities updated successfully.");
    assert_eq!(body["summary"]["created"], 2);
    assert_eq!(body["summary"]["integrationsCreated"][0]["name"], "CUSTOM (default)", "{body}");

    // Previous CSV endpoint, bare `Authorization: pat.xyz` style.
    let r = app
        .client
        .post(app.url("/v2/developers/cloud-ids/upload"))
        .header("Authorization", key)
        .multipart(multipart(
            "file",
            "email,applicationType,cloudId\naaron.phillips@company.com,CUSTOM,phillips.aaron-api1\n",
        ))
        .send()
        .await
        .expect("send");
    let body = expect_status(r, 200).await;
    assert_eq!(body["message"], "CSV processed and developer identities updated successfully.");

    let dump = app.dump().await;
    assert!(dump.contains(&("developer@example.com".into(), 123, "bitbucket-user-123".into())));
    assert!(dump.contains(&("aaron.phillips@company.com".into(), 124, "phillips.aaron-api1".into())), "{dump:?}");
    assert_eq!(dump.len(), 6);
}

async fn every_error_type_from_json_names_the_row() {
    let app = app_with_integrations().await;
    app.integration("default", 4, ApplicationType::Github).await;
    let ok_row = r#"{"email":"ok@x.com","integrationId":1,"identity":"ok"}"#;
    let cases: Vec<(&str, String, &str, u64)> = vec![
        ("INVALID_JSON", format!("[{ok_row},"), "body", 0),
        ("INVALID_JSON", format!("[{ok_row}, 42]"), "body", 1),
        ("EMPTY_PAYLOAD", "[]".into(), "body", 0),
        ("REQUIRED_FIELD_MISSING", format!(r#"[{ok_row},{{"email":"a@x.com","integrationId":1}}]"#), "identity", 1),
        (
            "REQUIRED_VALUE_MISSING",
            format!(r#"[{ok_row},{{"email":" ","integrationId":1,"identity":"a"}}]"#),
            "email",
            1,
        ),
        (
            "UNKNOWN_FIELD",
            format!(r#"[{ok_row},{{"email":"a@x.com","integrationId":1,"identity":"a","team":"x"}}]"#),
            "team",
            1,
        ),
        ("INVALID_EMAIL", format!(r#"[{ok_row},{{"email":"bob@","integrationId":1,"identity":"a"}}]"#), "email", 1),
        (
            "INVALID_INTEGRATION_ID",
            format!(r#"[{ok_row},{{"email":"a@x.com","integrationId":"one","identity":"a"}}]"#),
            "integrationId",
            1,
        ),
        (
            "INVALID_INTEGRATION_ID",
            format!(r#"[{ok_row},{{"email":"a@x.com","integrationId":1.5,"identity":"a"}}]"#),
            "integrationId",
            1,
        ),
        (
            "UNKNOWN_INTEGRATION",
            format!(r#"[{ok_row},{{"email":"a@x.com","integrationId":99,"identity":"a"}}]"#),
            "integrationId",
            1,
        ),
        (
            "INVALID_IDENTITY",
            format!(r#"[{ok_row},{{"email":"a@x.com","integrationId":1,"identity":"{}"}}]"#, "x".repeat(256)),
            "identity",
            1,
        ),
        (
            "INVALID_IDENTITY",
            format!(r#"[{ok_row},{{"email":"a@x.com","integrationId":1,"identity":"a\nb"}}]"#),
            "identity",
            1,
        ),
        (
            "CONFLICTING_ROWS",
            format!(r#"[{ok_row},{{"email":"other@x.com","integrationId":1,"identity":"OK"}}]"#),
            "identity",
            1,
        ),
    ];
    for (error_type, body, field, index) in cases {
        let answer = json_error(&app, &body, 400).await;
        let g = group(&answer, error_type);
        assert_eq!(g["fieldName"], field, "{error_type}: {answer}");
        if field != "body" || error_type == "INVALID_JSON" && index > 0 {
            assert_eq!(g["samples"][0]["index"], index, "{error_type}: {answer}");
        }
        assert_eq!(g["errorCount"], 1, "{answer}");
    }
    // previous endpoint: application types
    let legacy = |body: Value| {
        app.client.post(app.url("/v2/developers/cloud-ids")).header("x-api-key", &app.admin_key).json(&body)
    };
    let r = legacy(json!({"integrationUsers": [{"email": "a@x.com", "applicationType": "SVN", "cloudId": "a"}]}))
        .send()
        .await
        .expect("send");
    let body = expect_error(r, 400).await;
    assert_eq!(error_types(&body), vec!["UNKNOWN_APPLICATION_TYPE"]);
    let r = legacy(json!({"integrationUsers": [{"email": "a@x.com", "applicationType": "GITHUB", "cloudId": "a"}]}))
        .send()
        .await
        .expect("send");
    let body = expect_error(r, 400).await;
    assert_eq!(error_types(&body), vec!["AMBIGUOUS_APPLICATION_TYPE"]);
    assert!(body["errors"][0]["samples"][0]["reason"].as_str().unwrap_or_default().contains("integrationId"));
    let r = legacy(json!({"users": []})).send().await.expect("send");
    assert!(error_types(&expect_error(r, 400).await).contains(&"REQUIRED_FIELD_MISSING".to_string()));

    assert!(app.dump().await.is_empty(), "nothing of any rejected upload was applied");
}

async fn every_error_type_from_csv_names_the_line() {
    let app = app_with_integrations().await;
    app.integration("default", 4, ApplicationType::Github).await;
    let header = "email,integrationId,identity\n";
    let ok = "ok@x.com,1,ok\n";
    let cases: Vec<(&str, Vec<u8>, &str, Option<u64>)> = vec![
        ("INVALID_CSV", format!("{header}{ok}a@x.com,1\n").into(), "file", Some(3)),
        ("INVALID_CSV", format!("{header}{ok}a@x.com,1,\"open\n").into(), "file", Some(3)),
        ("EMPTY_CSV", Vec::new(), "file", None),
        ("EMPTY_CSV", header.into(), "file", None),
        ("BLANK_CSV_COLUMN_NAME", "email,,identity\nok@x.com,1,a\n".into(), "header", Some(1)),
        ("REQUIRED_FIELD_MISSING", "email,identity\nok@x.com,a\n".into(), "integrationId", Some(1)),
        ("REQUIRED_VALUE_MISSING", format!("{header}{ok}a@x.com,,a\n").into(), "integrationId", Some(3)),
        ("INVALID_EMAIL", format!("{header}{ok}bob@,1,a\n").into(), "email", Some(3)),
        ("INVALID_INTEGRATION_ID", format!("{header}{ok}a@x.com,x1,a\n").into(), "integrationId", Some(3)),
        ("UNKNOWN_INTEGRATION", format!("{header}{ok}a@x.com,77,a\n").into(), "integrationId", Some(3)),
        ("INVALID_IDENTITY", format!("{header}{ok}a@x.com,1,\"multi\nline\"\n").into(), "identity", Some(3)),
        ("CONFLICTING_ROWS", format!("{header}{ok}b@x.com,1,OK\n").into(), "identity", Some(3)),
        (
            "UNKNOWN_APPLICATION_TYPE",
            "email,applicationType,cloudId\na@x.com,SVN,a\n".into(),
            "applicationType",
            Some(2),
        ),
        (
            "AMBIGUOUS_APPLICATION_TYPE",
            "email,applicationType,cloudId\na@x.com,GITHUB,a\n".into(),
            "applicationType",
            Some(2),
        ),
    ];
    for (error_type, csv, field, line) in cases {
        let answer = csv_error(&app, csv, 400).await;
        let g = group(&answer, error_type);
        assert_eq!(g["fieldName"], field, "{error_type}: {answer}");
        if let Some(line) = line {
            assert_eq!(g["samples"][0]["line"], line, "{error_type}: {answer}");
        }
    }
    assert!(app.dump().await.is_empty());
}

async fn too_many_rows_is_413_from_json_and_csv() {
    let app = TestApp::spawn_with(Limits { max_upload_rows: 3, ..Default::default() }).await;
    app.integration("default", 1, ApplicationType::Github).await;
    let rows: Vec<Value> = (0..4)
        .map(|i| json!({"email": format!("d{i}@x.com"), "integrationId": 1, "identity": format!("u{i}")}))
        .collect();
    let r =
        app.patch_json("/v2/developers/identities", &app.admin_key, &Value::Array(rows)).send().await.expect("send");
    let body = expect_error(r, 413).await;
    assert_eq!(error_types(&body), vec!["TOO_MANY_ROWS"]);
    assert!(body["message"].as_str().unwrap_or_default().contains("--max-upload-rows"), "{body}");
    let csv: String = std::iter::once("email,integrationId,identity\n".to_string())
        .chain((0..4).map(|i| format!("d{i}@x.com,1,u{i}\n")))
        .collect();
    let body = csv_error(&app, csv, 413).await;
    assert_eq!(error_types(&body), vec!["TOO_MANY_ROWS"]);
    assert!(app.dump().await.is_empty());
}

async fn hostile_csv_files_get_clear_errors_and_change_nothing() {
    let app = app_with_integrations().await;
    let seed = "email,integrationId,identity\nkeep@x.com,1,keeper\n";
    expect_status(app.upload_csv("/v2/developers/identities", &app.admin_key, seed).send().await.expect("send"), 200)
        .await;
    let before = app.dump().await;
    let header = "email,integrationId,identity\n";
    let huge_field = format!("{header}a@x.com,1,\"{}\"\n", "x".repeat(10 * 1024 * 1024));
    let hostile: Vec<(&str, Vec<u8>, &str)> = vec![
        ("unbalanced quotes", format!("{header}a@x.com,1,\"never closed\nb@x.com,1,b\n").into_bytes(), "INVALID_CSV"),
        ("ragged rows", format!("{header}a@x.com,1,a,extra\n").into_bytes(), "INVALID_CSV"),
        ("invalid UTF-8", [header.as_bytes(), b"a@x.com,1,\xff\xfe\n"].concat(), "INVALID_CSV"),
        ("NUL bytes", format!("{header}a@x.com,1,a\0b\n").into_bytes(), "INVALID_IDENTITY"),
        ("a 10 MB field", huge_field.into_bytes(), "INVALID_CSV"),
        ("only a header", header.as_bytes().to_vec(), "EMPTY_CSV"),
        ("only a BOM", b"\xEF\xBB\xBF".to_vec(), "EMPTY_CSV"),
        ("binary noise", (0..=255u8).cycle().take(5000).collect(), "REQUIRED_FIELD_MISSING"),
    ];
    for (what, csv, error_type) in hostile {
        let body = csv_error(&app, csv, 400).await;
        assert!(error_types(&body).contains(&error_type.to_string()), "{what}: {body}");
        let sample = body["errors"][0]["samples"][0]["value"].as_str().unwrap_or_default();
        assert!(sample.chars().count() <= 121, "{what}: samples are cut short");
    }
    assert_eq!(app.dump().await, before);
}

async fn multipart_needs_exactly_one_file_field() {
    let app = app_with_integrations().await;
    let r = app
        .client
        .patch(app.url("/v2/developers/identities"))
        .header("x-api-key", &app.admin_key)
        .multipart(reqwest::multipart::Form::new().text("other", "x"))
        .send()
        .await
        .expect("send");
    let body = expect_error(r, 400).await;
    assert!(body["message"].as_str().unwrap_or_default().contains("`file`"), "{body}");
    let csv = "email,integrationId,identity\na@x.com,1,a\n";
    let two = multipart("file", csv)
        .part("file", reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("b.csv"));
    let r = app
        .client
        .patch(app.url("/v2/developers/identities"))
        .header("x-api-key", &app.admin_key)
        .multipart(two)
        .send()
        .await
        .expect("send");
    expect_error(r, 400).await;
    let r = app
        .client
        .patch(app.url("/v2/developers/identities"))
        .header("x-api-key", &app.admin_key)
        .header("content-type", "multipart/form-data")
        .body("no boundary")
        .send()
        .await
        .expect("send");
    expect_error(r, 400).await;
    assert!(app.dump().await.is_empty());

    // A bare text/csv body is accepted too.
    let r = app
        .client
        .patch(app.url("/v2/developers/identities"))
        .header("x-api-key", &app.admin_key)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("send");
    assert_eq!(expect_status(r, 200).await["summary"]["created"], 1);
}

async fn csv_headers_are_flexible_and_formula_guards_are_stripped() {
    let app = app_with_integrations().await;
    let csv =
        "\u{FEFF}Identity,updatedAt,EMAIL,integrationID\r\n\"Doe, \"\"JD\"\"\",x,Jane@X.com,3\r\n'=cmd,y,b@x.com,1\r\n";
    let r = app.upload_csv("/v2/developers/identities", &app.admin_key, csv).send().await.expect("send");
    assert_eq!(expect_status(r, 200).await["summary"]["created"], 2);
    let dump = app.dump().await;
    assert!(dump.contains(&("jane@x.com".into(), 3, "Doe, \"JD\"".into())), "{dump:?}");
    assert!(dump.contains(&("b@x.com".into(), 1, "=cmd".into())), "{dump:?}");
    // The previous header set on the current endpoint.
    let r = app
        .upload_csv("/v2/developers/identities", &app.admin_key, "email,applicationType,cloudId\nc@x.com,JIRA,acc-1\n")
        .send()
        .await
        .expect("send");
    expect_status(r, 200).await;
}

async fn uploads_are_idempotent_and_reassign_mismatches() {
    let app = app_with_integrations().await;
    let k = &app.admin_key;
    let rows = json!([
        {"email": "jane@x.com", "integrationId": 1, "identity": "JDoe"},
        {"email": "jane@x.com", "integrationId": 2, "identity": "081de7ae-0631"},
        {"email": "jane@x.com", "integrationId": 3, "identity": "jane d"},
        {"email": "JANE@x.com ", "integrationId": "1", "identity": "jdoe"},
    ]);
    let first =
        expect_status(app.patch_json("/v2/developers/identities", k, &rows).send().await.expect("send"), 200).await;
    assert_eq!(
        first["summary"],
        json!({"received": 4, "created": 3, "reassigned": 0, "unchanged": 0, "duplicates": 1, "developersCreated": 1})
    );
    let again =
        expect_status(app.patch_json("/v2/developers/identities", k, &rows).send().await.expect("send"), 200).await;
    assert_eq!(
        again["summary"],
        json!({"received": 4, "created": 0, "reassigned": 0, "unchanged": 3, "duplicates": 1, "developersCreated": 0})
    );

    // Jira IDs are exact: a different case is another identity. GitHub's are not.
    let fix = json!([
        {"email": "john@x.com", "integrationId": 1, "identity": "JDOE"},
        {"email": "john@x.com", "integrationId": 2, "identity": "081DE7AE-0631"},
    ]);
    let moved =
        expect_status(app.patch_json("/v2/developers/identities", k, &fix).send().await.expect("send"), 200).await;
    assert_eq!(moved["summary"]["reassigned"], 1);
    assert_eq!(moved["summary"]["created"], 1);
    let dump = app.dump().await;
    assert!(dump.contains(&("john@x.com".into(), 1, "JDOE".into())), "{dump:?}");
    assert!(dump.contains(&("jane@x.com".into(), 2, "081de7ae-0631".into())));

    let audit = expect_status(app.get("/v2/audit?identity=JDOE", k).send().await.expect("send"), 200).await;
    assert_eq!(audit["records"][0]["action"], "identity.reassigned");
    assert_eq!(audit["records"][0]["oldEmail"], "jane@x.com");
    assert_eq!(audit["records"][0]["newEmail"], "john@x.com");
}

async fn dry_runs_answer_exactly_and_change_nothing() {
    let app = app_with_integrations().await;
    let k = &app.admin_key;
    let seed = json!([{"email": "a@x.com", "integrationId": 1, "identity": "a"}]);
    expect_status(app.patch_json("/v2/developers/identities", k, &seed).send().await.expect("send"), 200).await;
    let before = app.dump().await;
    let audit_before = expect_status(app.get("/v2/audit", k).send().await.expect("send"), 200).await;

    let change = json!([{"email": "b@x.com", "integrationId": 1, "identity": "a"}, {"email": "b@x.com", "integrationId": 2, "identity": "b"}]);
    let dry = expect_status(
        app.patch_json("/v2/developers/identities?dryRun=true", k, &change).send().await.expect("send"),
        200,
    )
    .await;
    assert_eq!(dry["dryRun"], true);
    assert!(dry["message"].as_str().unwrap_or_default().contains("Nothing was changed"));
    assert_eq!(app.dump().await, before);
    let audit_after = expect_status(app.get("/v2/audit", k).send().await.expect("send"), 200).await;
    assert_eq!(audit_after["_metadata"]["total_count"], audit_before["_metadata"]["total_count"]);

    let real =
        expect_status(app.patch_json("/v2/developers/identities", k, &change).send().await.expect("send"), 200).await;
    assert_eq!(real["dryRun"], false);
    assert_eq!(real["summary"], dry["summary"], "a dry run predicts the real answer");
    let r = app.patch_json("/v2/developers/identities?dryRun=maybe", k, &change).send().await.expect("send");
    expect_error(r, 400).await;
}

async fn concurrent_uploads_end_in_some_serial_order() {
    let app = app_with_integrations().await;
    let make = |email: &str| -> Value {
        Value::Array(
            (0..2000)
                .map(|i| json!({"email": email, "integrationId": 1 + (i % 2), "identity": format!("user-{i}")}))
                .collect(),
        )
    };
    let (a, b) = (make("a@x.com"), make("b@x.com"));
    for _ in 0..3 {
        let ra = app.patch_json("/v2/developers/identities", &app.admin_key, &a).send();
        let rb = app.patch_json("/v2/developers/identities", &app.admin_key, &b).send();
        let (ra, rb) = tokio::join!(ra, rb);
        expect_status(ra.expect("send a"), 200).await;
        expect_status(rb.expect("send b"), 200).await;
        let dump = app.dump_all().await;
        assert_eq!(dump.len(), 2000);
        let owners: std::collections::HashSet<&str> = dump.iter().map(|(e, _, _)| e.as_str()).collect();
        assert_eq!(owners.len(), 1, "all rows come from one upload, the later one: {owners:?}");
    }
}

async fn audit_records_exactly_the_changes() {
    let app = app_with_integrations().await;
    let k = &app.admin_key;
    let first = json!([{"email": "a@x.com", "integrationId": 1, "identity": "x"}, {"email": "a@x.com", "integrationId": 2, "identity": "y"}]);
    expect_status(app.patch_json("/v2/developers/identities", k, &first).send().await.expect("send"), 200).await;
    let second = json!([{"email": "b@x.com", "integrationId": 1, "identity": "x"}, {"email": "a@x.com", "integrationId": 2, "identity": "y"}]);
    expect_status(app.patch_json("/v2/developers/identities", k, &second).send().await.expect("send"), 200).await;
    let del = app
        .client
        .delete(app.url("/v2/developers/identities"))
        .header("x-api-key", k)
        .json(&json!([{"integrationId": 2, "identity": "y"}, {"integrationId": 2, "identity": "zzz"}]));
    let deleted = expect_status(del.send().await.expect("send"), 200).await;
    assert_eq!(deleted["summary"], json!({"received": 2, "deleted": 1, "notFound": 1, "duplicates": 0}));

    let audit = expect_status(app.get("/v2/audit?pageSize=100", k).send().await.expect("send"), 200).await;
    let events: Vec<(String, String, Value, Value)> = audit["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|e| e["action"].as_str().unwrap_or_default().starts_with("identity."))
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_string(),
                e["identity"].as_str().unwrap_or_default().to_string(),
                e["oldEmail"].clone(),
                e["newEmail"].clone(),
            )
        })
        .collect();
    assert_eq!(
        events,
        vec![
            ("identity.deleted".into(), "y".into(), json!("a@x.com"), Value::Null),
            ("identity.reassigned".into(), "x".into(), json!("a@x.com"), json!("b@x.com")),
            ("identity.created".into(), "y".into(), Value::Null, json!("a@x.com")),
            ("identity.created".into(), "x".into(), Value::Null, json!("a@x.com")),
        ]
    );
    let key_id = k.split('.').nth(2).expect("key id");
    assert!(audit["records"].as_array().expect("records").iter().all(|e| e["keyId"] == key_id || e["keyId"].is_null()));
    let filtered = expect_status(app.get("/v2/audit?email=b@x.com", k).send().await.expect("send"), 200).await;
    assert_eq!(filtered["count"], 1);
    let by_integration = expect_status(app.get("/v2/audit?integrationId=2", k).send().await.expect("send"), 200).await;
    // integration 2's creation, then y created and deleted
    assert_eq!(by_integration["count"], 3, "{by_integration}");
    let future =
        expect_status(app.get("/v2/audit?from=2999-01-01T00:00:00Z", k).send().await.expect("send"), 200).await;
    assert_eq!(future["count"], 0);
    expect_error(app.get("/v2/audit?from=yesterday", k).send().await.expect("send"), 400).await;
}

async fn deletes_validate_everything_first() {
    let app = app_with_integrations().await;
    let k = &app.admin_key;
    let seed = json!([{"email": "a@x.com", "integrationId": 1, "identity": "a"}]);
    expect_status(app.patch_json("/v2/developers/identities", k, &seed).send().await.expect("send"), 200).await;
    let bad = app
        .client
        .delete(app.url("/v2/developers/identities"))
        .header("x-api-key", k)
        .json(&json!([{"integrationId": 1, "identity": "a"}, {"integrationId": 99, "identity": "b"}]));
    let body = expect_error(bad.send().await.expect("send"), 400).await;
    assert_eq!(error_types(&body), vec!["UNKNOWN_INTEGRATION"]);
    assert_eq!(app.dump().await.len(), 1, "nothing deleted when any row is invalid");
    let dry = app
        .client
        .delete(app.url("/v2/developers/identities?dryRun=true"))
        .header("x-api-key", k)
        .json(&json!([{"integrationId": 1, "identity": "A"}]));
    assert_eq!(expect_status(dry.send().await.expect("send"), 200).await["summary"]["deleted"], 1);
    assert_eq!(app.dump().await.len(), 1);
}

async fn a_downloaded_csv_uploads_back_unchanged() {
    let app = app_with_integrations().await;
    let k = &app.admin_key;
    let rows = json!([
        {"email": "a@x.com", "integrationId": 1, "identity": "=HYPERLINK(\"x\")"},
        {"email": "b@x.com", "integrationId": 3, "identity": "name, with \"quotes\""},
        {"email": "c@x.com", "integrationId": 2, "identity": "+42"},
        {"email": "d@x.com", "integrationId": 2, "identity": "'=already"},
        {"email": "é@x.com", "integrationId": 2, "identity": "ümlaut"},
    ]);
    expect_status(app.patch_json("/v2/developers/identities", k, &rows).send().await.expect("send"), 200).await;
    let r = app.get("/v2/developers/identities", k).header("accept", "text/csv").send().await.expect("send");
    assert_eq!(
        r.headers().get("content-disposition").and_then(|v| v.to_str().ok()),
        Some("attachment; filename=\"developer-identities.csv\"")
    );
    let csv = r.text().await.expect("text");
    assert!(csv.starts_with("email,integrationId,identity,applicationType,updatedAt\r\n"), "{csv}");
    assert!(csv.contains("'=HYPERLINK"), "formulas are guarded: {csv}");
    let back =
        expect_status(app.upload_csv("/v2/developers/identities", k, csv.clone()).send().await.expect("send"), 200)
            .await;
    assert_eq!(back["summary"]["unchanged"], 5, "{back}");
    let again =
        app.get("/v2/developers/identities?format=csv", k).send().await.expect("send").text().await.expect("text");
    assert_eq!(again, csv, "download → upload → download is byte-identical");
}
}

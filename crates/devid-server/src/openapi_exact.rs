//! What the generated OpenAPI document leaves out and the server enforces: every status
//! code an operation can answer, and every bound on a parameter or body field. Kept in
//! one place, beside the rules' own constants, so the document says what the server
//! does (checked by schemathesis, `docs/api-conformance.md`).

use serde_json::{Value, json};

use crate::routes::identities::{MAX_FILTER_VALUES, MAX_PAGE_INDEX, MAX_PAGE_SIZE, MAX_SEARCH_CHARS};

/// Largest integration id (2^53 − 1: exact in every JSON number).
const MAX_ID: i64 = devid_core::types::MAX_INTEGRATION_ID;

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

/// Adds `status` to `responses` unless the handler's own annotation described it.
fn respond(responses: &mut Value, status: &str, description: &str) {
    if let Some(map) = responses.as_object_mut() {
        map.entry(status.to_string()).or_insert_with(|| error(description));
    }
}

/// Tightens the document in place.
pub fn tighten(doc: &mut Value) {
    add_status_codes(doc);
    bound_parameters(doc);
    bound_bodies(doc);
    bound_contributors(doc);
    bound_suggestions(doc);
    bound_changes(doc);
    bound_webhooks(doc);
}

fn bound_webhooks(doc: &mut Value) {
    use crate::routes::webhooks::{MAX_DELIVERIES_LIMIT, MAX_URL_CHARS, MAX_WEBHOOK_ID, SECRET_CHARS};
    let id = json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_WEBHOOK_ID});
    for (pointer, names) in [
        ("/paths/~1v2~1webhooks~1{id}/delete/parameters", &["id"][..]),
        ("/paths/~1v2~1webhooks~1{id}~1deliveries/get/parameters", &["id"][..]),
        ("/paths/~1v2~1webhooks~1{id}~1deliveries~1{deliveryId}~1redeliver/post/parameters", &["id", "deliveryId"][..]),
    ] {
        for name in names {
            if let Some(p) = parameter(doc, pointer, name) {
                p["schema"] = id.clone();
            }
        }
    }
    let deliveries = "/paths/~1v2~1webhooks~1{id}~1deliveries/get/parameters";
    if let Some(p) = parameter(doc, deliveries, "before") {
        p["schema"] = json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": MAX_WEBHOOK_ID});
    }
    if let Some(p) = parameter(doc, deliveries, "limit") {
        p["schema"] = json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_DELIVERIES_LIMIT});
    }
    let kinds: Vec<&str> = devid_core::change::ChangeKind::ALL.iter().map(|k| k.as_str()).collect();
    let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else { return };
    if let Some(body) = schemas.get_mut("CreateWebhook") {
        body["properties"]["url"] = json!({"type": "string", "maxLength": MAX_URL_CHARS, "pattern": WEBHOOK_URL_PATTERN,
            "description": "http or https, a host name (each label starting with a letter) or an IPv4 address, an optional port, then any path; no credentials."});
        body["properties"]["kinds"]["items"] = any_case(&kinds, Spelling::Exact);
        body["properties"]["secret"] = json!({"type": ["string", "null"], "minLength": SECRET_CHARS.0, "maxLength": SECRET_CHARS.1,
            "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"});
    }
}

/// The webhook URLs the server accepts in form (where they may point is checked when
/// they resolve): what `url` parses as http(s) with a host and no credentials, written
/// narrowly enough that every match does. A label starting with a digit could be read
/// as part of an IPv4 address, so only whole IPv4 addresses start with one.
const WEBHOOK_URL_PATTERN: &str = concat!(
    "^[Hh][Tt][Tt][Pp][Ss]?://",
    "([A-Za-z][A-Za-z0-9-]{0,62}(\\.[A-Za-z][A-Za-z0-9-]{0,62})*",
    "|(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3})",
    "(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?",
    "(/[A-Za-z0-9._~/%-]*)?(\\?[A-Za-z0-9._~/%&=+-]*)?$"
);

fn bound_changes(doc: &mut Value) {
    use crate::routes::changes::{MAX_CHANGE_ID, MAX_CHANGES_LIMIT};
    let feed = "/paths/~1v2~1changes/get/parameters";
    let one = "/paths/~1v2~1changes~1{id}/get/parameters";
    for pointer in [feed, one] {
        if let Some(p) = parameter(doc, pointer, "after") {
            p["schema"] = json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": MAX_CHANGE_ID});
        }
        if let Some(p) = parameter(doc, pointer, "limit") {
            p["schema"] = json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_CHANGES_LIMIT});
        }
    }
    for pointer in [one, "/paths/~1v2~1changes~1{id}~1revert/post/parameters"] {
        if let Some(p) = parameter(doc, pointer, "id") {
            p["schema"] = json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_CHANGE_ID});
        }
    }
    for name in ["from", "to"] {
        if let Some(p) = parameter(doc, feed, name) {
            p["schema"] = json!({"type": "string", "format": "date-time"});
        }
    }
    let kinds: Vec<&str> = devid_core::change::ChangeKind::ALL.iter().map(|k| k.as_str()).collect();
    if let Some(p) = parameter(doc, feed, "kind") {
        p["schema"] = any_case(&kinds, Spelling::Exact);
    }
}

fn add_status_codes(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for (path, operations) in paths.iter_mut() {
        let Some(operations) = operations.as_object_mut() else { continue };
        for (method, op) in operations.iter_mut() {
            let secured = op.get("security").is_some();
            let has_body = op.get("requestBody").is_some();
            let has_query = op["parameters"].as_array().is_some_and(|p| p.iter().any(|p| p["in"] == "query"));
            let Some(responses) = op.get_mut("responses") else { continue };
            respond(responses, "408", "The request took longer than --request-timeout");
            if secured {
                respond(responses, "400", "A query parameter is unknown, repeated where it must not be, or not valid");
                respond(responses, "401", "No API key, or one that is unknown, revoked or expired");
                respond(responses, "403", "The key lacks the scope, or names another account");
                respond(
                    responses,
                    "429",
                    "Over the key's, the account's or the failed-authentication rate (Retry-After)",
                );
                respond(responses, "503", "The database is unavailable or busy (Retry-After)");
            } else if has_query {
                respond(responses, "400", "A query parameter is not valid");
            }
            if has_body {
                respond(responses, "400", "The body is not valid; nothing was applied");
                respond(responses, "413", "The body is larger than the server's limit");
                respond(
                    responses,
                    "415",
                    "The body's Content-Type is not one this operation takes, or it is compressed",
                );
            }
            if path.contains('{') {
                respond(responses, "404", "Nothing with that id in this account (or the id is not one)");
            }
            if path.starts_with("/v2/contributors") && method == "post" {
                respond(
                    responses,
                    "409",
                    "Another upload changed the same contributors at the same moment; send it again",
                );
            }
            if path.starts_with("/v2/developers/") && method != "get" {
                respond(
                    responses,
                    "409",
                    "An integration the upload names was deleted while it was applied; send it again",
                );
            }
        }
    }
    // The listing also answers the whole CSV.
    if let Some(map) =
        doc.pointer_mut("/paths/~1v2~1developers~1identities/get/responses/200/content").and_then(Value::as_object_mut)
    {
        map.insert(
            "text/csv".into(),
            json!({"schema": {"type": "string", "description": "Header email,integrationId,identity,applicationType,updatedAt, then every matching row"}}),
        );
    }
}

/// The schema of parameter `name` of the operation at `pointer`.
fn parameter<'a>(doc: &'a mut Value, pointer: &str, name: &str) -> Option<&'a mut Value> {
    doc.pointer_mut(pointer)?.as_array_mut()?.iter_mut().find(|p| p["name"] == name)
}

fn bound_parameters(doc: &mut Value) {
    let listing = "/paths/~1v2~1developers~1identities/get/parameters";
    let audit = "/paths/~1v2~1audit/get/parameters";
    for pointer in [listing, audit] {
        if let Some(p) = parameter(doc, pointer, "pageSize") {
            p["schema"] = json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_PAGE_SIZE});
        }
        if let Some(p) = parameter(doc, pointer, "pageIndex") {
            p["schema"] = json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": MAX_PAGE_INDEX});
        }
    }
    let enums: [(&str, &[&str]); 3] = [
        ("sortKey", &["email", "integrationId", "identity", "updatedAt"]),
        ("sortOrder", &["asc", "desc"]),
        ("format", &["json", "csv"]),
    ];
    for (name, values) in enums {
        if let Some(p) = parameter(doc, listing, name) {
            p["schema"] = any_case(values, Spelling::Exact);
        }
    }
    if let Some(p) = parameter(doc, listing, "searchValue") {
        p["schema"] = json!({"type": "string", "maxLength": MAX_SEARCH_CHARS});
    }
    if let Some(p) = parameter(doc, listing, "updatedAfter") {
        p["schema"] = json!({"type": "string", "format": "date-time"});
    }
    // Comma-separated lists: arrays in OpenAPI's `form` style without explode.
    let lists = [
        // An email holds no comma: the list is split on them.
        ("emails", json!({"type": "string", "maxLength": 254, "pattern": "^[^,]*$"})),
        ("integrationIds", json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID})),
        ("applicationTypes", json!({"$ref": "#/components/schemas/ApplicationType"})),
    ];
    for (name, items) in lists {
        if let Some(p) = parameter(doc, listing, name) {
            p["schema"] = json!({"type": "array", "items": items, "maxItems": MAX_FILTER_VALUES});
            if name == "applicationTypes" {
                // Sent empty it is refused: a list the client meant to fill, not "all".
                p["schema"]["minItems"] = json!(1);
            }
            p["style"] = json!("form");
            p["explode"] = json!(false);
        }
    }
    // Flags: `true`/`false` as usual, and the forms the server also takes (a bare
    // `?dryRun` is true), stated rather than hidden.
    let mut flag = any_case(&["true", "false", "1", "0", "yes", "no", ""], Spelling::Exact);
    flag["description"] = json!("true or false; 1/0, yes/no and a bare `?name` (true) are accepted too, in any case.");
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for operations in paths.values_mut().filter_map(Value::as_object_mut) {
            for op in operations.values_mut() {
                for p in op.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten() {
                    if p["name"] == "dryRun" || p["name"] == "force" || p["name"] == "provenance" {
                        p["schema"] = flag.clone();
                    }
                }
            }
        }
    }
    for name in ["from", "to"] {
        if let Some(p) = parameter(doc, audit, name) {
            p["schema"] = json!({"type": "string", "format": "date-time"});
        }
    }
    if let Some(p) = parameter(doc, audit, "integrationId") {
        p["schema"] = json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID});
    }
    for pointer in [
        "/paths/~1v2~1integrations~1{id}/get/parameters",
        "/paths/~1v2~1integrations~1{id}/patch/parameters",
        "/paths/~1v2~1integrations~1{id}/delete/parameters",
    ] {
        if let Some(p) = parameter(doc, pointer, "id") {
            p["schema"] = json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID});
        }
    }
}

fn bound_bodies(doc: &mut Value) {
    let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else { return };
    let email = json!({"type": "string", "maxLength": 254, "pattern": email_pattern(),
        "description": "Trimmed and lower-cased; exactly one @, a dotted domain without empty labels, no whitespace, control, invisible or text-direction characters."});
    let identity = json!({"type": ["string", "integer"], "minLength": 1, "maxLength": 255, "pattern": text_pattern(IDENTITY_FORBIDDEN),
        "minimum": 0, "maximum": MAX_ID,
        "description": "Trimmed; no control, invisible or text-direction characters. A whole number up to 2^53 - 1 is accepted too and read as its digits (numeric ids sent unquoted)."});
    let integration_id = json!({"type": ["integer", "string"], "format": "int64", "minimum": 1, "maximum": MAX_ID,
        "pattern": "^0*[1-9][0-9]{0,14}(?:\\.0)?$",
        "description": "A numeric string (\"3\") is accepted too."});
    let patches = [
        (
            "IdentityRow",
            vec![("email", email.clone()), ("identity", identity.clone()), ("integrationId", integration_id.clone())],
        ),
        ("CloudIdRow", vec![("email", email), ("cloudId", identity.clone())]),
        ("DeleteRowBody", vec![("identity", identity), ("integrationId", integration_id.clone())]),
        (
            "CreateIntegration",
            vec![
                ("id", json!({"type": ["integer", "null"], "format": "int64", "minimum": 1, "maximum": MAX_ID})),
                ("name", name_schema(false)),
            ],
        ),
        ("UpdateIntegration", vec![("name", name_schema(true))]),
    ];
    for (schema, fields) in patches {
        let Some(schema) = schemas.get_mut(schema) else { continue };
        schema["additionalProperties"] = json!(false);
        for (field, bound) in fields {
            schema["properties"][field] = bound;
        }
    }
    if let Some(create_key) = schemas.get_mut("CreateKey") {
        create_key["additionalProperties"] = json!(false);
        create_key["properties"]["scopes"]["minItems"] = json!(1);
        create_key["properties"]["label"] = json!({"type": "string", "maxLength": 200});
    }
    // Uploads and deletes of nothing are refused (EMPTY_PAYLOAD).
    for pointer in [
        "/paths/~1v2~1developers~1identities/patch/requestBody/content/application~1json/schema",
        "/paths/~1v2~1developers~1identities/delete/requestBody/content/application~1json/schema",
        "/paths/~1v2~1developers~1identities~1lock/post/requestBody/content/application~1json/schema",
        "/paths/~1v2~1developers~1identities~1unlock/post/requestBody/content/application~1json/schema",
    ] {
        if let Some(schema) = doc.pointer_mut(pointer) {
            schema["minItems"] = json!(1);
        }
    }
    let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else { return };
    let types: Vec<&str> = devid_core::types::ApplicationType::ALL.iter().map(|t| t.as_str()).collect();
    schemas.insert("ApplicationType".into(), any_case(&types, Spelling::TrimmedWithDashes));
    let scopes: Vec<&str> = devid_core::types::Scope::ALL.iter().map(|s| s.as_str()).collect();
    schemas.insert("Scope".into(), any_case(&scopes, Spelling::Trimmed));
    if let Some(body) = schemas.get_mut("CloudIdsBody") {
        body["additionalProperties"] = json!(false);
        body["properties"]["integrationUsers"]["minItems"] = json!(1);
    }
}

/// An integration name: 1 to 200 characters without control characters, trimmed.
fn name_schema(nullable: bool) -> Value {
    let kind = if nullable { json!(["string", "null"]) } else { json!("string") };
    json!({"type": kind, "maxLength": 200, "pattern": text_pattern(CONTROL),
        "description": "1 to 200 characters without control characters; leading and trailing spaces are trimmed."})
}

/// How loosely the server reads an enumerated value, beyond any letter case.
#[derive(Clone, Copy, PartialEq)]
enum Spelling {
    Exact,
    /// Surrounding whitespace is trimmed.
    Trimmed,
    /// Trimmed, and `-` or a space stand for `_` (application types).
    TrimmedWithDashes,
}

/// The values as listed (for client generators), or any spelling the server takes.
fn any_case(values: &[&str], spelling: Spelling) -> Value {
    let alternatives: Vec<String> = values
        .iter()
        .map(|v| {
            v.chars()
                .map(|c| match c {
                    c if c.is_ascii_alphabetic() => format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase()),
                    '_' if spelling == Spelling::TrimmedWithDashes => "[_\\- ]".to_string(),
                    c if c.is_ascii_alphanumeric() => c.to_string(),
                    c => format!("\\{c}"),
                })
                .collect()
        })
        .collect();
    let around = if spelling == Spelling::Exact { String::new() } else { format!("[{WHITESPACE}]*") };
    json!({"anyOf": [
        {"type": "string", "enum": values},
        {"type": "string", "pattern": format!("^{around}(?:{}){around}$", alternatives.join("|"))},
    ]})
}

/// Characters `char::is_control` refuses (Unicode category Cc).
const CONTROL: &str = "\\x00-\\x1f\\x7f-\\x9f";
/// What `normalize_identity` refuses beside control characters: text-direction controls
/// and invisible characters (see devid-core's normalize.rs).
const IDENTITY_FORBIDDEN: &str = "\\x00-\\x1f\\x7f-\\x9f\\u00ad\\u061c\\u180e\\u200b\\u200e\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u2069\\ufeff";
/// Unicode White_Space, what Rust's `trim` removes and `is_whitespace` matches.
const WHITESPACE: &str = "\\t\\n\\x0b\\x0c\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

/// Text with none of `forbidden` and something left once trimmed.
fn text_pattern(forbidden: &str) -> String {
    format!("^[{WHITESPACE}]*[^{WHITESPACE}{forbidden}](?:[^{forbidden}]*[^{WHITESPACE}{forbidden}])?[{WHITESPACE}]*$")
}

/// `normalize_email`: around surrounding whitespace, one `@` between a local part and a
/// domain of dot-separated non-empty labels, with no whitespace, control, invisible,
/// text-direction or joiner characters, and none of `,;<>()[]"\` in the domain.
fn email_pattern() -> String {
    let bad = format!("{WHITESPACE}{IDENTITY_FORBIDDEN}\\u200c\\u200d@");
    let label = format!("[^{bad}.,;<>()\\[\\]\"\\\\]+");
    format!("^[{WHITESPACE}]*[^{bad}]+@{label}(?:\\.{label})+[{WHITESPACE}]*$")
}

/// The contributor and coverage operations: parameters, bodies and the CSV answer.
fn bound_contributors(doc: &mut Value) {
    use crate::routes::coverage::{MAX_LIST_LIMIT, MAX_MANY_IDENTITIES};
    use devid_core::contributor::MAX_SOURCE_LABEL_CHARS;
    use devid_core::contributor::plan::{MAX_NAME_CHARS, MAX_ROW_COUNT};

    let seen_time = json!({"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}],
        "description": "A date (2026-01-31, midnight UTC) or an RFC 3339 timestamp."});
    let listing = "/paths/~1v2~1contributors/get/parameters";
    let bounds = [
        ("pageSize", json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_PAGE_SIZE})),
        ("pageIndex", json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": MAX_PAGE_INDEX})),
        ("status", any_case(&["mapped", "unmapped", "bot"], Spelling::Trimmed)),
        ("sortKey", any_case(&["activity", "lastSeen", "identity"], Spelling::Trimmed)),
        ("format", any_case(&["json", "csv"], Spelling::Exact)),
        ("searchValue", json!({"type": "string", "maxLength": MAX_SEARCH_CHARS})),
        (
            "developer",
            json!({"type": "string", "minLength": 1, "maxLength": crate::routes::suggestions::MAX_DEVELOPER_FILTER_CHARS,
                "pattern": "\\S"}),
        ),
        ("activeAfter", seen_time.clone()),
    ];
    for (name, schema) in bounds {
        if let Some(p) = parameter(doc, listing, name) {
            p["schema"] = schema;
        }
    }
    if let Some(p) = parameter(doc, listing, "integrationIds") {
        p["schema"] = json!({"type": "array", "maxItems": MAX_FILTER_VALUES,
            "items": {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID}});
        p["style"] = json!("form");
        p["explode"] = json!(false);
    }
    if let Some(map) =
        doc.pointer_mut("/paths/~1v2~1contributors/get/responses/200/content").and_then(Value::as_object_mut)
    {
        map.insert(
            "text/csv".into(),
            json!({"schema": {"type": "string", "description": "Header integrationId,applicationType,identity,name,email,status,mappedEmail,botReason,commit,pr,review,issue,other,activity,firstSeen,lastSeen, then every matching contributor"}}),
        );
    }
    let upload = "/paths/~1v2~1contributors/post/parameters";
    if let Some(p) = parameter(doc, upload, "source") {
        p["schema"] = json!({"type": "string", "minLength": 1, "maxLength": MAX_SOURCE_LABEL_CHARS,
            "pattern": format!("^[^{WHITESPACE}{IDENTITY_FORBIDDEN}](?:[^{IDENTITY_FORBIDDEN}]*[^{WHITESPACE}{IDENTITY_FORBIDDEN}])?$")});
    }
    if let Some(p) = parameter(doc, upload, "mode") {
        p["schema"] = any_case(&["replace", "add"], Spelling::Trimmed);
    }
    let coverage = "/paths/~1v2~1coverage/get/parameters";
    let bounds = [
        ("top", json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": MAX_PAGE_SIZE})),
        (
            "manyIdentitiesOver",
            json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": MAX_MANY_IDENTITIES}),
        ),
        ("missingIn", json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID})),
        ("limit", json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_LIST_LIMIT})),
    ];
    for (name, schema) in bounds {
        if let Some(p) = parameter(doc, coverage, name) {
            p["schema"] = schema;
        }
    }
    for pointer in [
        "/paths/~1v2~1contributors/post/requestBody/content/application~1json/schema",
        "/paths/~1v2~1contributors~1bots/post/requestBody/content/application~1json/schema",
    ] {
        if let Some(schema) = doc.pointer_mut(pointer) {
            schema["minItems"] = json!(1);
        }
    }
    if let Some(schema) =
        doc.pointer_mut("/paths/~1v2~1contributors~1bots/post/requestBody/content/application~1json/schema")
    {
        schema["maxItems"] = json!(devid_core::contributor::bots::MAX_BOT_DECISIONS);
    }
    let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else { return };
    let identity = json!({"type": ["string", "integer"], "minLength": 1, "maxLength": 255, "pattern": text_pattern(IDENTITY_FORBIDDEN),
        "minimum": 0, "maximum": MAX_ID});
    let integration_id = json!({"type": ["integer", "string"], "format": "int64", "minimum": 1, "maximum": MAX_ID,
        "pattern": "^0*[1-9][0-9]{0,14}(?:\\.0)?$"});
    let free_text = |max: usize| json!({"type": ["string", "null"], "maxLength": max, "pattern": format!("^[^{IDENTITY_FORBIDDEN}]*$")});
    // Blank text means "not given", as an empty CSV cell does.
    let blank = json!({"type": "string", "pattern": format!("^[{WHITESPACE}]*$")});
    let mut kind = any_case(&["commit", "pr", "review", "issue", "other"], Spelling::Trimmed);
    if let Some(a) = kind["anyOf"].as_array_mut() {
        a.push(json!({"type": "null"}));
        a.push(blank.clone());
    }
    if let Some(row) = schemas.get_mut("ContributorRow") {
        row["additionalProperties"] = json!(false);
        row["properties"]["integrationId"] = integration_id.clone();
        row["properties"]["identity"] = identity.clone();
        row["properties"]["name"] = free_text(MAX_NAME_CHARS);
        row["properties"]["email"] = free_text(devid_core::normalize::MAX_EMAIL_LEN);
        row["properties"]["kind"] = kind;
        row["properties"]["count"] = json!({"anyOf": [
            {"type": "integer", "minimum": 0, "maximum": MAX_ROW_COUNT},
            {"type": "null"},
            {"type": "string", "pattern": format!("^[{WHITESPACE}]*(?:0*[0-9]{{1,10}}(?:\\.0)?)?[{WHITESPACE}]*$"),
             "description": "Digits as text are read as the number."},
        ]});
        let mut time = seen_time.clone();
        if let Some(a) = time["anyOf"].as_array_mut() {
            a.push(json!({"type": "null"}));
            a.push(blank.clone());
        }
        row["properties"]["firstSeen"] = time.clone();
        row["properties"]["lastSeen"] = time;
        // What devid_core::contributor::zones::parse_offset accepts: a whole quarter hour
        // from -12:00 to +14:00, with or without the colon, or Z.
        let quarter = "(?:00|15|30|45)";
        let offset = format!(
            "^[{WHITESPACE}]*(?:[Zz]|[+-](?:0[0-9]|1[01]):?{quarter}|-12:?00|\\+1[23]:?{quarter}|\\+14:?00)[{WHITESPACE}]*$"
        );
        row["properties"]["utcOffset"] = json!({"anyOf": [
            {"type": "string", "pattern": offset},
            {"type": "null"},
            blank,
        ]});
    }
    if let Some(row) = schemas.get_mut("BotDecisionRow") {
        row["additionalProperties"] = json!(false);
        row["properties"]["integrationId"] = integration_id;
        row["properties"]["identity"] = identity;
        row["properties"]["bot"] = json!({"type": ["boolean", "null"]});
        row["required"] = json!(["integrationId", "identity", "bot"]);
    }
}

/// The matching operations: listing filters, suggestion ids, the batch body.
fn bound_suggestions(doc: &mut Value) {
    use crate::routes::suggestions::{MAX_BATCH, MAX_DEVELOPER_FILTER_CHARS, MAX_PAGE_INDEX, MAX_PAGE_SIZE};

    let listing = "/paths/~1v2~1suggestions/get/parameters";
    let bounds = [
        ("pageSize", json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_PAGE_SIZE})),
        ("pageIndex", json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": MAX_PAGE_INDEX})),
        ("tier", any_case(&["auto", "review"], Spelling::Trimmed)),
        ("integrationId", json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID})),
        ("developer", json!({"type": "string", "maxLength": MAX_DEVELOPER_FILTER_CHARS})),
    ];
    for (name, schema) in bounds {
        if let Some(p) = parameter(doc, listing, name) {
            p["schema"] = schema;
        }
    }
    let id = json!({"type": "string", "pattern": "^[0-9a-f]{16}$",
        "description": "16 hexadecimal digits, as GET /v2/suggestions lists them."});
    for decision in ["accept", "reject", "skip"] {
        let pointer = format!("/paths/~1v2~1suggestions~1{{id}}~1{decision}/post/parameters");
        if let Some(p) = parameter(doc, &pointer, "id") {
            p["schema"] = id.clone();
        }
    }
    let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else { return };
    if let Some(batch) = schemas.get_mut("AcceptBatch") {
        // Exactly one of the two.
        *batch = json!({
            "description": "Either `ids` (suggestion ids, each once) or `tier: \"auto\"` (every suggestion at tier auto).",
            "oneOf": [
                {"type": "object", "additionalProperties": false, "required": ["ids"],
                 "properties": {"ids": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH, "uniqueItems": true, "items": id}}},
                {"type": "object", "additionalProperties": false, "required": ["tier"],
                 "properties": {"tier": any_case(&["auto"], Spelling::Trimmed)}},
            ],
        });
    }
}

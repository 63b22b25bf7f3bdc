//! Cross-cutting HTTP behaviour: request tracing, metrics, and turning every non-JSON
//! error (axum's own rejections, 404, 405, timeouts) into devid's JSON error body.

use std::sync::OnceLock;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower_http::LatencyUnit;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnRequest, DefaultOnResponse, TraceLayer};
use tracing::Span;

use crate::error::ApiError;

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first use.
pub fn metrics_handle() -> &'static PrometheusHandle {
    METRICS.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets(&[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0])
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will stay empty");
        }
        handle
    })
}

pub async fn record_metrics(request: Request, next: Next) -> Response {
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("devid_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("devid_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    if let Some(reason) = rejection_reason(response.status()) {
        metrics::counter!("devid_rejected_requests_total", "reason" => reason).increment(1);
    }
    response
}

/// The `method` label: one of a closed set, so that clients inventing methods cannot
/// grow `/metrics` (each distinct label value is a series kept for the process's life).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Why a request was turned away, for `devid_rejected_requests_total`.
fn rejection_reason(status: StatusCode) -> Option<&'static str> {
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Some("auth"),
        StatusCode::TOO_MANY_REQUESTS => Some("rate"),
        StatusCode::PAYLOAD_TOO_LARGE
        | StatusCode::REQUEST_TIMEOUT
        | StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        | StatusCode::SERVICE_UNAVAILABLE => Some("limit"),
        s if s.is_client_error() => Some("validation"),
        _ => None,
    }
}

/// Longest client-chosen `x-request-id` kept. Every audit event of a request stores
/// its id, so an unbounded one multiplied the database by the rows of an upload.
pub const MAX_REQUEST_ID_CHARS: usize = 128;

/// Whether a client's `x-request-id` is kept as sent: 1 to [`MAX_REQUEST_ID_CHARS`]
/// characters of letters, digits and `-_.:/+=@`, the shapes tracing systems use
/// (UUIDs, W3C trace ids, `service/1234`). Anything else is replaced by a fresh id.
pub fn is_acceptable_request_id(value: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_CHARS).contains(&value.len())
        && value.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(b))
}

/// Drops a client's `x-request-id` that is too long, holds other characters, or is
/// sent more than once, so the layer after this one generates a fresh id. The client
/// can find the id used in the answer's `x-request-id` header.
pub async fn sanitize_request_id(mut request: Request, next: Next) -> Response {
    let headers = request.headers_mut();
    let mut sent = headers.get_all("x-request-id").iter();
    let keep = match (sent.next(), sent.next()) {
        (Some(only), None) => is_acceptable_request_id(only.as_bytes()),
        (None, _) => true,
        (Some(_), Some(_)) => false,
    };
    if !keep {
        headers.remove("x-request-id");
    }
    next.run(request).await
}

type MakeSpan = fn(&Request<Body>) -> Span;

/// Logs each request with its id, method, path and outcome. Headers are never logged:
/// they carry API keys.
pub fn trace_layer()
-> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, MakeSpan, DefaultOnRequest, DefaultOnResponse> {
    TraceLayer::new_for_http()
        .make_span_with(make_span as MakeSpan)
        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Millis))
}

fn make_span(request: &Request<Body>) -> Span {
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
        key_id = tracing::field::Empty,
    )
}

/// Largest error body from an inner layer that is read to reuse its text.
const MAX_INNER_ERROR_BODY: usize = 16 * 1024;

pub async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let uri = request.uri().clone();
    let response = next.run(request).await;
    let status = response.status();
    // The review UI answers its errors as pages of its own.
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) || is_html(&response) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_INNER_ERROR_BODY)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = describe(status, &method, &uri, parts.headers.get(header::ALLOW), &text);
    let mut rewritten = ApiError::new(status, message).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&name) {
            rewritten.headers_mut().insert(name, v.clone());
        }
    }
    rewritten
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"))
}

fn is_html(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"))
}

fn describe(status: StatusCode, method: &Method, uri: &Uri, allow: Option<&HeaderValue>, text: &str) -> String {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => match allow.and_then(|a| a.to_str().ok()) {
            Some(allowed) => format!("{method} is not allowed on {}; allowed: {allowed}.", uri.path()),
            // axum adds `Allow` after this layer runs; the header still reaches the client.
            None => {
                format!("{method} is not allowed on {}; the Allow header lists the methods it accepts.", uri.path())
            }
        },
        StatusCode::PAYLOAD_TOO_LARGE => format!(
            "The request body is larger than this server accepts ({}). Split the upload, or raise the limit with --max-json-body / --max-multipart-body.",
            if text.is_empty() { "limit exceeded" } else { text }
        ),
        StatusCode::REQUEST_TIMEOUT => {
            "The request took too long to arrive or to complete; send it again, faster, or raise --request-timeout."
                .into()
        }
        _ if !text.is_empty() => {
            let mut sentence = text.to_string();
            if !sentence.ends_with('.') {
                sentence.push('.');
            }
            sentence
        }
        _ => format!("{} {}.", status.as_u16(), status.canonical_reason().unwrap_or("error")),
    }
}

pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "There is no endpoint {method} {}. The API is described at /docs and /openapi.json.",
        uri.path()
    ))
}

pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The server failed to complete the request; nothing was changed. The failure is in the server log.",
    )
    .into_response()
}

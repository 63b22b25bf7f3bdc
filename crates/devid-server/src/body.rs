//! Reading upload bodies: JSON into memory (bounded), CSV streamed chunk by chunk into
//! a parser on a blocking thread, so a 500 MB file never sits in memory whole.

use std::io::{self, Read};

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, header};
use bytes::{Buf, Bytes};
use devid_core::contributor::plan::{ContributorPlan, ContributorPlanner};
use devid_core::csv_upload::{CsvReadError, parse_csv_into};
use devid_core::json_upload::{JsonBody, parse_json_upload};
use devid_core::plan::{Addressing, IntegrationInfo, ParsedUpload, Planner, UploadPlan, plan_upload};
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::AppState;
use crate::error::ApiError;

/// How many body chunks may wait between the network and the CSV parser.
const CHUNKS_IN_FLIGHT: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentKind {
    Json,
    Multipart,
    Csv,
    /// One JSON object per line: only where an endpoint says it takes it.
    Ndjson,
}

/// The names NDJSON goes by.
fn is_ndjson(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" | "application/x-jsonlines"
    )
}

/// Decompressing on request would let a small body expand without bound.
fn refuse_compression(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()) {
        Some(encoding) if !encoding.trim().eq_ignore_ascii_case("identity") => Err(ApiError::unsupported_media_type(
            format!("Content-Encoding `{encoding}` is not accepted; send the body uncompressed."),
        )),
        _ => Ok(()),
    }
}

/// The media type without parameters, lower-cased.
fn media_type(headers: &HeaderMap) -> String {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

fn is_json(media_type: &str) -> bool {
    media_type == "application/json" || (media_type.starts_with("application/") && media_type.ends_with("+json"))
}

pub fn content_kind(headers: &HeaderMap) -> Result<ContentKind, ApiError> {
    refuse_compression(headers)?;
    let essence = media_type(headers);
    match essence.as_str() {
        e if is_json(e) => Ok(ContentKind::Json),
        "multipart/form-data" => Ok(ContentKind::Multipart),
        "text/csv" => Ok(ContentKind::Csv),
        "" => Err(ApiError::unsupported_media_type(
            "The request has no Content-Type. Send JSON with `Content-Type: application/json`, or a CSV file as multipart/form-data in the field `file` (curl -F 'file=@identities.csv').",
        )),
        e if is_ndjson(e) => Ok(ContentKind::Ndjson),
        other => Err(ApiError::unsupported_media_type(format!(
            "Content-Type `{other}` is not accepted here. Send JSON with `Content-Type: application/json`, or a CSV file as multipart/form-data in the field `file` (curl -F 'file=@identities.csv')."
        ))),
    }
}

/// The error a body stream ends with when the client sends too slowly; turned into 408.
#[derive(Debug)]
pub struct BodyTooSlow(String);

impl std::fmt::Display for BodyTooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BodyTooSlow {}

/// Words every [`BodyTooSlow`] message carries, to find it again inside errors that
/// only keep the text (multipart).
const TOO_SLOW_MARK: &str = "arrived too slowly";

/// Bounds how long an upload's body may trickle: a chunk must come at least every
/// [`crate::Limits::upload_idle`], and once that long has passed the body must average
/// [`crate::Limits::min_upload_bytes_per_second`]. A client that sends slower holds an
/// upload slot for nothing; it is answered 408 and its slot goes to others.
pub fn bound_trickle(request: Request, limits: &crate::Limits) -> Request {
    let (idle, min_rate) = (limits.upload_idle, limits.min_upload_bytes_per_second);
    if idle.is_zero() {
        return request;
    }
    request.map(|body| {
        let started = tokio::time::Instant::now();
        let state = (body.into_data_stream(), 0u64, false);
        let stream = futures_util::stream::unfold(state, move |(mut stream, mut received, failed)| async move {
            if failed {
                return None;
            }
            let fail = |why: String| Some((Err(axum::BoxError::from(BodyTooSlow(why))), (stream_end(), 0, true)));
            match tokio::time::timeout(idle, stream.next()).await {
                Err(_) => fail(format!(
                    "The upload {TOO_SLOW_MARK}: nothing came for {} s. Send the body without pauses.",
                    idle.as_secs()
                )),
                Ok(None) => None,
                Ok(Some(Err(e))) => Some((Err(axum::BoxError::from(e)), (stream, received, true))),
                Ok(Some(Ok(chunk))) => {
                    received += chunk.len() as u64;
                    let elapsed = started.elapsed();
                    if elapsed > idle && (received as f64) < min_rate as f64 * elapsed.as_secs_f64() {
                        return fail(format!(
                            "The upload {TOO_SLOW_MARK}: {received} bytes in {} s, below this server's minimum of {min_rate} bytes a second. Send it over a faster connection.",
                            elapsed.as_secs()
                        ));
                    }
                    Some((Ok(chunk), (stream, received, false)))
                }
            }
        });
        Body::from_stream(stream)
    })
}

/// An empty stream of the body's type, left in place once a body has failed.
fn stream_end() -> axum::body::BodyDataStream {
    Body::empty().into_data_stream()
}

/// The error for a body that could not be read: 408 when it came too slowly.
fn body_read_error(e: axum::Error) -> ApiError {
    let text = e.to_string();
    match e.into_inner().downcast::<BodyTooSlow>() {
        Ok(slow) => ApiError::new(axum::http::StatusCode::REQUEST_TIMEOUT, slow.0),
        Err(_) if text.contains(TOO_SLOW_MARK) => ApiError::new(axum::http::StatusCode::REQUEST_TIMEOUT, text),
        Err(_) => ApiError::bad_request(format!("The request body could not be read: {text}.")),
    }
}

/// For endpoints that take JSON only: any other body, or none, is 415 with `sentence`,
/// which says what to send (not the CSV forms the upload endpoints also take).
pub fn require_json(headers: &HeaderMap, sentence: &str) -> Result<(), ApiError> {
    refuse_compression(headers)?;
    if is_json(&media_type(headers)) { Ok(()) } else { Err(ApiError::unsupported_media_type(sentence.to_string())) }
}

/// The body size the client announced. hyper ends the body there, so it is a bound.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok())
}

/// Reads a whole body, refusing it as soon as it passes `limit` bytes.
pub async fn read_limited(body: Body, headers: &HeaderMap, limit: usize, what: &str) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::too_large(format!(
            "The {what} is larger than {limit} bytes, this server's limit. Split it, or raise the limit with --max-json-body / DEVID_MAX_JSON_BODY."
        ))
    };
    let declared = declared_length(headers);
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut buf = Vec::with_capacity(declared.map_or(8192, |d| d as usize));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(body_read_error)?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// Reads a JSON body of the endpoint's shape into rows.
pub async fn read_json(request: Request, state: &AppState, kind: JsonBody) -> Result<ParsedUpload, ApiError> {
    let (max_body, max_rows) = (state.limits.max_json_body, state.limits.max_upload_rows);
    let (parts, body) = request.into_parts();
    let bytes = read_limited(body, &parts.headers, max_body, "JSON body").await?;
    tokio::task::spawn_blocking(move || parse_json_upload(&bytes, kind, max_rows))
        .await
        .map_err(|e| ApiError::from(devid_store::StoreError::Internal(e.to_string())))?
        .map_err(ApiError::upload)
}

/// Reads and validates an upload in whichever form the request carries: JSON of the
/// endpoint's shape, a multipart CSV file, or a bare `text/csv` body. CSV rows are
/// validated as they are read. Returns the plan and whether it came from CSV (the
/// answer's wording differs).
pub async fn read_and_plan(
    request: Request,
    state: &AppState,
    json_kind: JsonBody,
    csv_native: Addressing,
    integrations: Vec<IntegrationInfo>,
) -> Result<(UploadPlan, bool), ApiError> {
    let limits = state.limits.clone();
    match content_kind(request.headers())? {
        ContentKind::Ndjson => Err(ApiError::unsupported_media_type(
            "Identity uploads take a JSON array (`Content-Type: application/json`) or a CSV file, not NDJSON.",
        )),
        ContentKind::Json => {
            let parsed = read_json(request, state, json_kind).await?;
            let plan = tokio::task::spawn_blocking(move || plan_upload(parsed, &integrations))
                .await
                .map_err(|e| ApiError::from(devid_store::StoreError::Internal(e.to_string())))?
                .map_err(ApiError::upload)?;
            Ok((plan, false))
        }
        ContentKind::Csv => {
            let limit = limits.max_multipart_body;
            let stream = request.into_body().into_data_stream();
            let read_error = body_read_error;
            let plan =
                parse_csv_stream(stream, csv_native, limits.max_upload_rows, Some(limit), read_error, integrations)
                    .await?;
            Ok((plan, true))
        }
        ContentKind::Multipart => {
            let mut multipart = Multipart::from_request(request, state).await.map_err(|rejection| {
                ApiError::bad_request(format!("The multipart body is not valid: {}.", rejection.body_text()))
            })?;
            let mut plan = None;
            let mut integrations = Some(integrations);
            while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
                if field.name() == Some("file") {
                    let Some(integrations) = integrations.take() else {
                        return Err(ApiError::bad_request(
                            "The multipart body has more than one `file` field; send exactly one CSV file per upload.",
                        ));
                    };
                    let max_rows = limits.max_upload_rows;
                    plan =
                        Some(parse_csv_stream(field, csv_native, max_rows, None, multipart_error, integrations).await?);
                } else {
                    let mut field = field;
                    while field.chunk().await.map_err(multipart_error)?.is_some() {}
                }
            }
            match plan {
                Some(plan) => Ok((plan, true)),
                None => Err(ApiError::bad_request(
                    "The multipart body has no `file` field; send the CSV as the field `file` (curl -F 'file=@identities.csv').",
                )),
            }
        }
    }
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(
            "The uploaded file is larger than this server's limit. Split it, or raise the limit with --max-multipart-body / DEVID_MAX_MULTIPART_BODY.",
        )
    } else {
        let text = e.body_text();
        match text.find(TOO_SLOW_MARK) {
            // The multipart parser keeps only the text of the stream's error.
            Some(_) => ApiError::new(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                text.split_once("The upload ").map_or(text.clone(), |(_, rest)| format!("The upload {rest}")),
            ),
            None => ApiError::bad_request(format!("The multipart body could not be read: {text}.")),
        }
    }
}

/// Feeds a stream of body chunks to the CSV parser and validator running on a blocking
/// thread.
async fn parse_csv_stream<S, E>(
    stream: S,
    native: Addressing,
    max_rows: u64,
    byte_limit: Option<usize>,
    map_err: impl Fn(E) -> ApiError,
    integrations: Vec<IntegrationInfo>,
) -> Result<UploadPlan, ApiError>
where
    S: Stream<Item = Result<Bytes, E>>,
{
    parse_csv_stream_with(stream, byte_limit, map_err, move |reader| {
        let mut planner = Planner::new(&integrations);
        let file_problems =
            parse_csv_into(reader, native, max_rows, &mut |addressing, row| planner.push(addressing, row))?;
        planner.finish(file_problems).map_err(CsvReadError::Invalid)
    })
    .await
}

/// Feeds a stream of body chunks to `parse`, which reads them as a file on a blocking
/// thread and returns what it made of them (a plan), or the file's problems.
async fn parse_csv_stream_with<S, E, T>(
    stream: S,
    byte_limit: Option<usize>,
    map_err: impl Fn(E) -> ApiError,
    parse: impl FnOnce(ChannelReader) -> Result<T, CsvReadError> + Send + 'static,
) -> Result<T, ApiError>
where
    S: Stream<Item = Result<Bytes, E>>,
    T: Send + 'static,
{
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
    let parser = tokio::task::spawn_blocking(move || parse(ChannelReader { rx, current: Bytes::new() }));
    let mut stream = std::pin::pin!(stream);
    let mut failure = None;
    let mut received = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                failure = Some(map_err(e));
                break;
            }
        };
        received += chunk.len();
        if let Some(limit) = byte_limit
            && received > limit
        {
            failure = Some(ApiError::too_large(format!(
                "The CSV body is larger than {limit} bytes, this server's limit. Split it, or raise the limit with --max-multipart-body / DEVID_MAX_MULTIPART_BODY."
            )));
            break;
        }
        if tx.send(Ok(chunk)).await.is_err() {
            // The parser stopped early (too many rows, a fatal error): its answer
            // decides. The rest of the body is read and dropped, within the size limit
            // and the request timeout, so the client, still sending, gets that answer
            // instead of a reset connection.
            while let Some(Ok(chunk)) = stream.next().await {
                received += chunk.len();
                if byte_limit.is_some_and(|limit| received > limit) {
                    break;
                }
            }
            break;
        }
    }
    if failure.is_some() {
        let _ = tx.send(Err(io::Error::other("upload interrupted"))).await;
    }
    drop(tx);
    let outcome = parser.await.map_err(|e| ApiError::from(devid_store::StoreError::Internal(e.to_string())))?;
    if let Some(failure) = failure {
        return Err(failure);
    }
    match outcome {
        Ok(plan) => Ok(plan),
        Err(CsvReadError::Invalid(problems)) => Err(ApiError::upload(problems)),
        Err(CsvReadError::Io(e)) => Err(ApiError::bad_request(format!("The upload could not be read: {e}."))),
    }
}

/// A blocking reader over chunks sent from the async side.
pub(crate) struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

/// Reads a contributor upload in any of its forms (JSON array, NDJSON, CSV as a bare
/// body or a multipart `file`) and validates it as it is read.
pub async fn read_contributors(
    request: Request,
    state: &AppState,
    integrations: Vec<IntegrationInfo>,
) -> Result<ContributorPlan, ApiError> {
    use devid_core::contributor::upload;
    let limits = state.limits.clone();
    let max_rows = limits.max_upload_rows;
    let kind = content_kind(request.headers())?;
    let in_memory = |bytes: Bytes, ndjson: bool, integrations: Vec<IntegrationInfo>| async move {
        tokio::task::spawn_blocking(move || {
            let mut planner = ContributorPlanner::new(&integrations);
            let mut sink = |position, row| planner.push(position, row);
            let read = if ndjson {
                upload::read_ndjson(&bytes, max_rows, &mut sink)
            } else {
                upload::read_json(&bytes, max_rows, &mut sink)
            };
            planner.finish(read?)
        })
        .await
        .map_err(|e| ApiError::from(devid_store::StoreError::Internal(e.to_string())))?
        .map_err(ApiError::upload)
    };
    let csv = move |integrations: Vec<IntegrationInfo>| {
        move |reader: ChannelReader| {
            let mut planner = ContributorPlanner::new(&integrations);
            let problems = upload::read_csv(reader, max_rows, &mut |position, row| planner.push(position, row))?;
            planner.finish(problems).map_err(CsvReadError::Invalid)
        }
    };
    match kind {
        ContentKind::Json | ContentKind::Ndjson => {
            let (parts, body) = request.into_parts();
            let bytes = read_limited(body, &parts.headers, limits.max_json_body, "JSON body").await?;
            in_memory(bytes, kind == ContentKind::Ndjson, integrations).await
        }
        ContentKind::Csv => {
            let stream = request.into_body().into_data_stream();
            parse_csv_stream_with(stream, Some(limits.max_multipart_body), body_read_error, csv(integrations)).await
        }
        ContentKind::Multipart => {
            let mut multipart = Multipart::from_request(request, state).await.map_err(|rejection| {
                ApiError::bad_request(format!("The multipart body is not valid: {}.", rejection.body_text()))
            })?;
            let mut plan = None;
            let mut integrations = Some(integrations);
            while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
                if field.name() == Some("file") {
                    let Some(integrations) = integrations.take() else {
                        return Err(ApiError::bad_request(
                            "The multipart body has more than one `file` field; send exactly one CSV file per upload.",
                        ));
                    };
                    plan = Some(parse_csv_stream_with(field, None, multipart_error, csv(integrations)).await?);
                } else {
                    let mut field = field;
                    while field.chunk().await.map_err(multipart_error)?.is_some() {}
                }
            }
            plan.ok_or_else(|| {
                ApiError::bad_request(
                    "The multipart body has no `file` field; send the CSV as the field `file` (curl -F 'file=@contributors.csv').",
                )
            })
        }
    }
}

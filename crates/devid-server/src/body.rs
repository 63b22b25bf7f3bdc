//! Reading upload bodies: JSON into memory (bounded), CSV streamed chunk by chunk into
//! a parser on a blocking thread, so a 500 MB file never sits in memory whole.

use std::io::{self, Read};

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, header};
use bytes::{Buf, Bytes};
use devid_core::csv_upload::{CsvReadError, parse_csv_upload};
use devid_core::json_upload::{JsonBody, parse_json_upload};
use devid_core::plan::{Addressing, ParsedUpload};
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
}

pub fn content_kind(headers: &HeaderMap) -> Result<ContentKind, ApiError> {
    // Decompressing on request would let a small body expand without bound.
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok())
        && !encoding.trim().eq_ignore_ascii_case("identity")
    {
        return Err(ApiError::unsupported_media_type(format!(
            "Content-Encoding `{encoding}` is not accepted; send the body uncompressed."
        )));
    }
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(ContentKind::Json),
        e if e.starts_with("application/") && e.ends_with("+json") => Ok(ContentKind::Json),
        "multipart/form-data" => Ok(ContentKind::Multipart),
        "text/csv" => Ok(ContentKind::Csv),
        "" => Err(ApiError::unsupported_media_type(
            "The request has no Content-Type. Send JSON with `Content-Type: application/json`, or a CSV file as multipart/form-data in the field `file` (curl -F 'file=@identities.csv').",
        )),
        other => Err(ApiError::unsupported_media_type(format!(
            "Content-Type `{other}` is not accepted here. Send JSON with `Content-Type: application/json`, or a CSV file as multipart/form-data in the field `file` (curl -F 'file=@identities.csv')."
        ))),
    }
}

/// Reads a whole body, refusing it as soon as it passes `limit` bytes.
pub async fn read_limited(body: Body, headers: &HeaderMap, limit: usize, what: &str) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::too_large(format!(
            "The {what} is larger than {limit} bytes, this server's limit. Split it, or raise the limit with --max-json-body / DEVID_MAX_JSON_BODY."
        ))
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut buf = Vec::with_capacity(declared.map_or(8192, |d| d as usize));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("The request body could not be read: {e}.")))?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// Reads an upload in whichever form the request carries: JSON of the endpoint's
/// shape, a multipart CSV file, or a bare `text/csv` body. Returns the rows and whether
/// they came from CSV (the answer's wording differs).
pub async fn read_upload(
    request: Request,
    state: &AppState,
    json_kind: JsonBody,
    csv_native: Addressing,
) -> Result<(ParsedUpload, bool), ApiError> {
    let limits = state.limits.clone();
    match content_kind(request.headers())? {
        ContentKind::Json => {
            let (parts, body) = request.into_parts();
            let bytes = read_limited(body, &parts.headers, limits.max_json_body, "JSON body").await?;
            let max_rows = limits.max_upload_rows;
            let parsed = tokio::task::spawn_blocking(move || parse_json_upload(&bytes, json_kind, max_rows))
                .await
                .map_err(|e| ApiError::from(devid_store::StoreError::Internal(e.to_string())))?
                .map_err(ApiError::upload)?;
            Ok((parsed, false))
        }
        ContentKind::Csv => {
            let limit = limits.max_multipart_body;
            let stream = request.into_body().into_data_stream();
            let parsed = parse_csv_stream(stream, csv_native, limits.max_upload_rows, Some(limit), |e: axum::Error| {
                ApiError::bad_request(format!("The upload could not be read: {e}."))
            })
            .await?;
            Ok((parsed, true))
        }
        ContentKind::Multipart => {
            let mut multipart = Multipart::from_request(request, state).await.map_err(|rejection| {
                ApiError::bad_request(format!("The multipart body is not valid: {}.", rejection.body_text()))
            })?;
            let mut parsed = None;
            while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
                if field.name() == Some("file") {
                    if parsed.is_some() {
                        return Err(ApiError::bad_request(
                            "The multipart body has more than one `file` field; send exactly one CSV file per upload.",
                        ));
                    }
                    parsed =
                        Some(parse_csv_stream(field, csv_native, limits.max_upload_rows, None, multipart_error).await?);
                } else {
                    let mut field = field;
                    while field.chunk().await.map_err(multipart_error)?.is_some() {}
                }
            }
            match parsed {
                Some(parsed) => Ok((parsed, true)),
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
        ApiError::bad_request(format!("The multipart body could not be read: {}.", e.body_text()))
    }
}

/// Feeds a stream of body chunks to the CSV parser running on a blocking thread.
async fn parse_csv_stream<S, E>(
    stream: S,
    native: Addressing,
    max_rows: u64,
    byte_limit: Option<usize>,
    map_err: impl Fn(E) -> ApiError,
) -> Result<ParsedUpload, ApiError>
where
    S: Stream<Item = Result<Bytes, E>>,
{
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
    let parser = tokio::task::spawn_blocking(move || {
        parse_csv_upload(ChannelReader { rx, current: Bytes::new() }, native, max_rows)
    });
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
        Ok(parsed) => Ok(parsed),
        Err(CsvReadError::Invalid(problems)) => Err(ApiError::upload(problems)),
        Err(CsvReadError::Io(e)) => Err(ApiError::bad_request(format!("The upload could not be read: {e}."))),
    }
}

/// A blocking reader over chunks sent from the async side.
struct ChannelReader {
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

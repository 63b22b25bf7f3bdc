//! Every failure leaves the server as the same JSON body:
//! `{"status":"error","message":"<sentence>","errors":[...]}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use devid_core::errors::{ErrorGroup, ErrorType, Problems};
use devid_store::StoreError;
use serde::Serialize;

/// Seconds a client is told to wait before retrying after a 503.
pub const RETRY_AFTER_SECONDS: u32 = 5;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Always `error`.
    pub status: &'static str,
    /// One sentence saying what went wrong and what to do.
    pub message: String,
    /// Problems grouped by type, for uploads and parameters.
    pub errors: Vec<ErrorGroup>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub errors: Vec<ErrorGroup>,
    /// Seconds for `Retry-After` when it differs from the default.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), errors: Vec::new(), retry_after: None }
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "This API key sent more requests than its limit per minute; retry in {retry_after} s (see Retry-After)."
                ),
            )
        }
    }

    /// 429 with a sentence of the caller's own, for limits other than the key's rate.
    pub fn rate_limited_because(retry_after: u64, message: impl Into<String>) -> Self {
        Self { retry_after: Some(retry_after), ..Self::new(StatusCode::TOO_MANY_REQUESTS, message) }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// A query or path parameter that cannot be used: 400 naming it.
    pub fn invalid_parameter(name: &str, value: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut problems = Problems::new();
        problems.add_with_reason(
            ErrorType::InvalidParameter,
            name,
            devid_core::errors::Position::Whole,
            value,
            Some(message.clone()),
        );
        Self { status: StatusCode::BAD_REQUEST, message, errors: problems.into_groups(), retry_after: None }
    }

    /// An upload that failed parsing or validation: nothing was applied.
    pub fn upload(problems: Problems) -> Self {
        let status =
            if problems.has(ErrorType::TooManyRows) { StatusCode::PAYLOAD_TOO_LARGE } else { StatusCode::BAD_REQUEST };
        Self { status, message: problems.summary_sentence(), errors: problems.into_groups(), retry_after: None }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::Invalid(m) => ApiError::bad_request(m),
            StoreError::Unavailable(m) => {
                tracing::warn!(error = %m, "database unavailable");
                ApiError::unavailable(format!(
                    "The database is unavailable right now ({m}); nothing was changed. Retry in a few seconds."
                ))
            }
            StoreError::Locked { total, rows } => {
                let mut problems = Problems::new();
                for row in &rows {
                    problems.add_with_reason(
                        ErrorType::LockedIdentity,
                        "email",
                        devid_core::errors::Position::Whole,
                        &format!("{} in integration {}", row.identity, row.integration_id),
                        Some(format!(
                            "identity {} of integration {} is locked to {}; the upload would move it to {}",
                            row.identity, row.integration_id, row.locked_to, row.requested
                        )),
                    );
                }
                problems.add_unsampled(ErrorType::LockedIdentity, "email", total.saturating_sub(rows.len() as u64));
                let errors = problems.into_groups();
                Self {
                    status: StatusCode::BAD_REQUEST,
                    message: format!(
                        "The upload would move {total} locked identit{} to another developer, so nothing was applied. Unlock them first (POST /v2/developers/identities/unlock), leave them out of the upload, or send force=true with an admin key.",
                        if total == 1 { "y" } else { "ies" }
                    ),
                    errors,
                    retry_after: None,
                }
            }
            StoreError::Internal(m) => {
                tracing::error!(error = %m, "storage failure");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The server failed to complete the request; nothing was changed. The failure is in the server log.",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { status: "error", message: self.message, errors: self.errors };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE || self.status == StatusCode::TOO_MANY_REQUESTS {
            let seconds = self.retry_after.unwrap_or(u64::from(RETRY_AFTER_SECONDS));
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

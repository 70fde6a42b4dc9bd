//! API errors, mapped to HTTP only here: a status and Mistral's fault body.
//!
//! Mistral answers errors in two shapes, and clients parse both:
//! `{"faultcode", "faultstring", "debuginfo"}` on its JSON endpoints and
//! `{"faultstring"}` alone on the endpoints that take a YAML text body.

use crate::handlers::HandlerError;
use crate::store::{CatalogError, StoreError};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Which body shape an error takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultStyle {
    /// `{"faultcode", "faultstring", "debuginfo"}`.
    Json,
    /// `{"faultstring"}` (text-body endpoints).
    Text,
}

/// An API error: the status and the sentence that says what is wrong.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub style: FaultStyle,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            style: FaultStyle::Json,
        }
    }

    /// 400: the request is wrong.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: the named thing does not exist.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// The same error in the `{"faultstring"}` shape.
    pub fn text(mut self) -> ApiError {
        self.style = FaultStyle::Text;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, error = %self.message, "API request failed");
        }
        let (body, content_type) = match self.style {
            FaultStyle::Json => (
                json!({
                    "faultcode": if self.status.is_server_error() { "Server" } else { "Client" },
                    "faultstring": self.message,
                    "debuginfo": null,
                }),
                "application/json",
            ),
            FaultStyle::Text => (
                json!({ "faultstring": self.message }),
                "application/json;charset=utf-8",
            ),
        };
        (
            self.status,
            [(header::CONTENT_TYPE, content_type)],
            body.to_string(),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::TooLarge(m) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, m),
            StoreError::Conflict(m) => {
                ApiError::new(StatusCode::CONFLICT, format!("{m}; retry the request"))
            }
            StoreError::Backend(m) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, m),
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> ApiError {
        match e {
            CatalogError::Duplicate(m) => ApiError::new(StatusCode::CONFLICT, m),
            CatalogError::NotFound(m) => ApiError::not_found(m),
            CatalogError::Invalid(m) => ApiError::bad_request(m),
            CatalogError::Backend(m) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, m),
        }
    }
}

impl From<HandlerError> for ApiError {
    fn from(e: HandlerError) -> ApiError {
        match e {
            HandlerError::Invalid(m) => ApiError::bad_request(m),
            HandlerError::NotFound(m) => ApiError::not_found(m),
            HandlerError::Store(e) => e.into(),
            HandlerError::Busy(m) => ApiError::new(StatusCode::CONFLICT, m),
            // The key service (KMS) could not be reached: the request may
            // succeed if sent again.
            HandlerError::Seal(e) if e.is_retryable() => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{}; retry the request", HandlerError::Seal(e)),
            ),
            other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

/// What API handlers return.
pub type ApiResult<T> = Result<T, ApiError>;

//! The API's error type and the one place that maps errors to status codes.

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::{header, StatusCode};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use updraft_shared::api::HttpError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    /// No or unusable credentials (401, with `WWW-Authenticate`).
    #[error("{0}")]
    Unauthorized(String),
    /// Credentials fine, permission missing, or a bad token (403, as Airflow).
    #[error("{0}")]
    Forbidden(String),
    /// The request is well-formed but its values are not acceptable (FastAPI's 422).
    #[error("{0}")]
    Unprocessable(String),
    #[error("{detail}")]
    TooManyRequests { detail: String, retry_after: u64 },
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A transient conflict (a database deadlock): nothing changed, the client may retry.
    #[error("{0}")]
    Unavailable(String),
    /// A failure on our side; the cause goes to the log, the client gets a generic detail.
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let detail = match self {
            ApiError::Internal(cause) => {
                tracing::error!("request failed: {cause:#}");
                "Internal Server Error: the cause is in the server log".to_string()
            }
            other => other.to_string(),
        };
        let mut res = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unauthorized(_) => {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::TooManyRequests { retry_after, .. } => {
                res.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            ApiError::Unavailable(_) => {
                res.insert_header((header::RETRY_AFTER, "1"));
            }
            _ => {}
        }
        res.json(HttpError { detail })
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        if e.is_deadlock() {
            return ApiError::Unavailable(
                "the database rolled this change back to resolve a conflict with the scheduler (nothing changed): send it again".into(),
            );
        }
        ApiError::Internal(e.into())
    }
}

impl From<crate::store::run_ops::OpError> for ApiError {
    fn from(e: crate::store::run_ops::OpError) -> Self {
        use crate::store::run_ops::OpError;
        match e {
            OpError::NotFound(m) => ApiError::NotFound(m),
            OpError::BadRequest(m) => ApiError::BadRequest(m),
            OpError::Invalid(m) => ApiError::Unprocessable(m),
            OpError::Conflict(m) => ApiError::Conflict(m),
            OpError::Store(e) => e.into(),
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        crate::store::StoreError::from(e).into()
    }
}

impl From<crate::secrets::SecretError> for ApiError {
    fn from(e: crate::secrets::SecretError) -> Self {
        ApiError::Internal(e.into())
    }
}

/// Rewrites any error response under `/api` that is not JSON yet (actix's own 404/405/413,
/// payload and path errors) into `{"detail": ...}` with `Content-Type: application/json`.
pub fn json_error_body<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    // actix's built-in errors carry their explanation as the response's error.
    let detail = res
        .response()
        .error()
        .map(|e| e.to_string())
        .filter(|s| !s.is_empty() && !status.is_server_error())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").to_string());
    let (req, res) = res.into_parts();
    let mut json = HttpResponse::build(status).json(HttpError { detail });
    for (name, value) in res.headers() {
        // Keep headers such as `Allow` on a 405.
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            json.headers_mut().insert(name.clone(), value.clone());
        }
    }
    let res = ServiceResponse::new(req, json).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}

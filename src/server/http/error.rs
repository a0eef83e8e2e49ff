//! How a failed request answers: [`ApiError`] and its `{"error": "…"}` body with the matching
//! status ([`AdminError`]s included, a database error logged and answered as 500 without
//! detail), and [`ApiJson`], the JSON body extractor whose rejections take the same shape.

use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;

use crate::admin::AdminError;

use super::LOG_TARGET;

/// Why a request failed; rendered as `{"error": "…"}` with the matching status.
#[derive(Debug)]
pub enum ApiError {
    /// No or a wrong API key (401 with `WWW-Authenticate: Bearer`).
    Unauthorized(&'static str),
    /// An admin operation refused or failed.
    Admin(AdminError),
    /// The body could not be read as the expected JSON.
    Body {
        /// 400, 413, 415 or 422.
        status: StatusCode,
        /// What was wrong.
        message: String,
    },
    /// A value in a well-formed body is unusable (400).
    Invalid(String),
    /// An object named in the path does not exist (404).
    NotFound(String),
    /// The object exists but has nothing of the kind asked for (404, the message as given).
    Absent(String),
    /// No such route (404).
    NoRoute,
    /// The route exists, not with this method (405).
    MethodNotAllowed,
    /// Too many requests in flight (503).
    Busy,
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        ApiError::Admin(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::Unauthorized(why) => {
                let mut r = (
                    StatusCode::UNAUTHORIZED,
                    Json(serde_json::json!({ "error": why })),
                )
                    .into_response();
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return r;
            }
            ApiError::Admin(AdminError::Invalid(m)) => (StatusCode::BAD_REQUEST, m),
            ApiError::Admin(e @ AdminError::NotFound(_)) => (StatusCode::NOT_FOUND, e.to_string()),
            ApiError::Admin(e @ AdminError::Conflict(_)) => (StatusCode::CONFLICT, e.to_string()),
            ApiError::Admin(AdminError::Store(e)) => {
                tracing::error!(target: LOG_TARGET, error = %e, "admin API: database error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error".to_string(),
                )
            }
            ApiError::Body { status, message } => (status, message),
            ApiError::Invalid(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::NotFound(what) => (StatusCode::NOT_FOUND, format!("{what} not found")),
            ApiError::Absent(m) => (StatusCode::NOT_FOUND, m),
            ApiError::NoRoute => (StatusCode::NOT_FOUND, "no such route".to_string()),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this route".to_string(),
            ),
            ApiError::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "too many requests in flight; retry".to_string(),
            ),
        };
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}

/// What a handler returns: its answer, or the error to render.
pub(super) type ApiResult<T> = Result<T, ApiError>;

/// `axum::Json` whose rejections use the API's error shape.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(ApiError::Body {
                status: rejection.status(),
                message: rejection.body_text(),
            }),
        }
    }
}

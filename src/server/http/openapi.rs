//! `GET /api/v1/openapi.json`: the hand-written OpenAPI 3.0 description in `docs/openapi.json`,
//! served as is and without an API key (a test checks it against the route table).

use axum::http::header;
use axum::response::{IntoResponse, Response};

const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// `GET /openapi.json`
pub(super) async fn document() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI.to_string(),
    )
        .into_response()
}

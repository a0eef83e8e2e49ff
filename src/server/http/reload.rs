//! `POST /api/v1/reload`: re-reads the configuration file, as SIGHUP does.

use axum::response::{IntoResponse, Response};
use axum::Json;

use super::call::Call;
use super::error::{ApiError, ApiResult};

/// `POST /reload`: re-reads the configuration file, as SIGHUP does. An invalid file is refused
/// with 400 and its `file: key: reason`; the running configuration then stays in force.
pub(super) async fn reload_config(c: Call) -> ApiResult<Response> {
    let report =
        c.st.reloader
            .reload(&c.actor.audit_name())
            .await
            .map_err(|e| ApiError::Invalid(e.to_string()))?;
    c.log("config_reload", &report.file);
    Ok(Json(report).into_response())
}

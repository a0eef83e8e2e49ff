//! `/api/v1/users/{name}/fixed-passcode`: set and clear a user's fixed passcode (emergency
//! access that logs in alone, without a PIN or a token code).

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::call::Call;
use super::error::{ApiJson, ApiResult};

/// `PUT /users/{name}/fixed-passcode`. `Debug` is not derived: it holds the passcode.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FixedPasscodeBody {
    passcode: String,
    confirm: String,
}

/// `PUT /users/{name}/fixed-passcode`
pub(super) async fn set_fixed_passcode(
    c: Call,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<FixedPasscodeBody>,
) -> ApiResult<Response> {
    let view = c
        .admin()
        .set_fixed_passcode(&name, &body.passcode, &body.confirm, c.now)
        .await?;
    let user = c.user_id_of(&view.user).await?;
    c.changed([user], "fixed_passcode_set", &view.user).await;
    Ok(Json(view).into_response())
}

/// `DELETE /users/{name}/fixed-passcode`
pub(super) async fn clear_fixed_passcode(c: Call, Path(name): Path<String>) -> ApiResult<Response> {
    let cleared = c.admin().clear_fixed_passcode(&name, c.now).await?;
    let user = c.normalize(&name);
    let id = c.user_id_of(&user).await?;
    c.changed([id], "fixed_passcode_clear", &user).await;
    Ok(Json(serde_json::json!({ "user": user, "cleared": cleared })).into_response())
}

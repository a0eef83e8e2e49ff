//! Offline access: `/api/v1/tokens/{serial}/offline-code` (a token's offline emergency code,
//! its reset and its online flag) and `/api/v1/users/{name}/offline-passcode` (a user's offline
//! passcode and its reset). Showing generates the code when none is current, so every route here
//! is a change; the codes are answered in clear (O-3), `no-store`.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::call::{no_store, Call};
use super::error::{ApiJson, ApiResult};

/// `PUT /tokens/{serial}/offline-code/online`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OnlineBody {
    online: bool,
}

/// `GET /tokens/{serial}/offline-code`
pub(super) async fn show_offline_code(c: Call, Path(serial): Path<String>) -> ApiResult<Response> {
    // Showing generates the code when none is current: a change like any other.
    let view = c.admin().offline_code_show(&serial, c.now).await?;
    let owner = c.owner_of(&serial).await?;
    c.changed([owner], "offline_code_show", &serial).await;
    Ok(no_store(Json(view).into_response()))
}

/// `POST /tokens/{serial}/offline-code/reset`
pub(super) async fn reset_offline_code(c: Call, Path(serial): Path<String>) -> ApiResult<Response> {
    let view = c.admin().offline_code_reset(&serial, c.now).await?;
    let owner = c.owner_of(&serial).await?;
    c.changed([owner], "offline_code_reset", &serial).await;
    Ok(no_store(Json(view).into_response()))
}

/// `PUT /tokens/{serial}/offline-code/online`
pub(super) async fn set_offline_code_online(
    c: Call,
    Path(serial): Path<String>,
    ApiJson(body): ApiJson<OnlineBody>,
) -> ApiResult<Response> {
    let view = c
        .admin()
        .offline_code_online(&serial, body.online, c.now)
        .await?;
    let owner = c.owner_of(&serial).await?;
    let action = if body.online {
        "offline_code_online_on"
    } else {
        "offline_code_online_off"
    };
    c.changed([owner], action, &serial).await;
    Ok(no_store(Json(view).into_response()))
}

/// `GET /users/{name}/offline-passcode`
pub(super) async fn show_offline_passcode(
    c: Call,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    offline_passcode(c, name, false).await
}

/// `POST /users/{name}/offline-passcode/reset`
pub(super) async fn reset_offline_passcode(
    c: Call,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    offline_passcode(c, name, true).await
}

async fn offline_passcode(c: Call, name: String, reset: bool) -> ApiResult<Response> {
    // Showing generates the passcode when none is current: a change like any other.
    let view = c.admin().offline_passcode(&name, reset, c.now).await?;
    let user = view.user.clone().unwrap_or_else(|| c.normalize(&name));
    let id = c.user_id_of(&user).await?;
    let action = if reset {
        "offline_passcode_reset"
    } else {
        "offline_passcode_show"
    };
    c.changed([id], action, &user).await;
    Ok(no_store(Json(view).into_response()))
}

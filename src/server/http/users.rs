//! `/api/v1/users`: list, add and show users, lock and unlock them.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use crate::admin::AdminError;

use super::call::Call;
use super::error::{ApiJson, ApiResult};

/// `POST /users`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUserBody {
    name: String,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    profile: Option<String>,
}

/// `GET /users`
pub(super) async fn list_users(c: Call) -> ApiResult<Response> {
    let users = c.store().list_users().await.map_err(AdminError::from)?;
    Ok(Json(users).into_response())
}

/// `POST /users`
pub(super) async fn add_user(c: Call, ApiJson(body): ApiJson<NewUserBody>) -> ApiResult<Response> {
    let domain = body.domain.as_deref().unwrap_or("default");
    let user = c
        .admin()
        .add_user(&body.name, domain, body.profile.as_deref(), c.now)
        .await?;
    c.changed([Some(user.id)], "user_add", &user.name).await;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

/// `GET /users/{name}`
pub(super) async fn show_user(c: Call, Path(name): Path<String>) -> ApiResult<Response> {
    let view = c.admin().show_user(&name).await?;
    Ok(Json(view).into_response())
}

/// `POST /users/{name}/lock`
pub(super) async fn lock_user(c: Call, Path(name): Path<String>) -> ApiResult<Response> {
    set_locked(c, name, true).await
}

/// `POST /users/{name}/unlock`
pub(super) async fn unlock_user(c: Call, Path(name): Path<String>) -> ApiResult<Response> {
    set_locked(c, name, false).await
}

async fn set_locked(c: Call, name: String, locked: bool) -> ApiResult<Response> {
    let user = c.admin().set_locked(&name, locked, c.now).await?;
    let action = if locked { "user_lock" } else { "user_unlock" };
    c.changed([Some(user.id)], action, &user.name).await;
    Ok(Json(user).into_response())
}

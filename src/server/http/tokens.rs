//! `/api/v1/tokens`: list, add (enrol) and show tokens, assign and unassign them, resync, set
//! and clear PINs.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use crate::admin::{AdminError, TokenSpec};
use crate::model::{HashAlgorithm, OtpMode, TokenKind};
use crate::otp::base32;

use super::call::Call;
use super::error::{ApiError, ApiJson, ApiResult};

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum OtpType {
    Totp,
    Hotp,
}

/// `POST /tokens` (mirrors [`TokenSpec`]). `Debug` is not derived: it holds the PIN and seed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewTokenBody {
    #[serde(default)]
    serial: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    kind: Option<TokenKind>,
    #[serde(default, rename = "type")]
    otp_type: Option<OtpType>,
    #[serde(default)]
    algorithm: Option<HashAlgorithm>,
    #[serde(default)]
    digits: Option<u8>,
    #[serde(default)]
    period: Option<u32>,
    #[serde(default)]
    counter: Option<u64>,
    #[serde(default)]
    seed_base32: Option<String>,
    #[serde(default)]
    pin: Option<String>,
    #[serde(default)]
    expires_at: Option<i64>,
}

impl NewTokenBody {
    fn into_spec(self) -> ApiResult<TokenSpec> {
        let mode = match (self.otp_type.unwrap_or(OtpType::Totp), self.period) {
            (OtpType::Totp, period) => OtpMode::Totp {
                period: period.unwrap_or(30),
            },
            (OtpType::Hotp, None) => OtpMode::Hotp,
            (OtpType::Hotp, Some(_)) => {
                return Err(ApiError::Invalid(
                    "period applies to TOTP tokens only".into(),
                ))
            }
        };
        if self.counter.is_some() && mode != OtpMode::Hotp {
            return Err(ApiError::Invalid(
                "counter applies to HOTP tokens only".into(),
            ));
        }
        let seed = match self.seed_base32 {
            Some(s) => Some(
                base32::decode(&s).map_err(|e| ApiError::Invalid(format!("seed_base32: {e}")))?,
            ),
            None => None,
        };
        Ok(TokenSpec {
            serial: self.serial,
            kind: self.kind.unwrap_or(TokenKind::Pin),
            algorithm: self.algorithm.unwrap_or(HashAlgorithm::Sha1),
            digits: self.digits.unwrap_or(6),
            mode,
            seed,
            counter: self.counter.unwrap_or(0),
            user: self.user,
            pin: self.pin,
            expires_at: self.expires_at,
        })
    }
}

/// `POST /tokens/{serial}/assign`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AssignBody {
    user: String,
}

/// `POST /tokens/{serial}/resync`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResyncBody {
    code1: String,
    code2: String,
}

/// `PUT /tokens/{serial}/pin`. `Debug` is not derived: it holds the PIN.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PinBody {
    pin: String,
}

/// `GET /tokens`
pub(super) async fn list_tokens(c: Call) -> ApiResult<Response> {
    let tokens = c.store().list_tokens().await.map_err(AdminError::from)?;
    Ok(Json(tokens).into_response())
}

/// `POST /tokens`: the answer holds the `otpauth://` URI of the new token, shown this once.
pub(super) async fn add_token(
    c: Call,
    ApiJson(body): ApiJson<NewTokenBody>,
) -> ApiResult<Response> {
    let spec = body.into_spec()?;
    let created = c.admin().add_token(spec, c.now).await?;
    c.changed([created.token.user_id], "token_add", &created.token.serial)
        .await;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// `GET /tokens/{serial}`
pub(super) async fn show_token(c: Call, Path(serial): Path<String>) -> ApiResult<Response> {
    match c
        .store()
        .token_by_serial(&serial)
        .await
        .map_err(AdminError::from)?
    {
        Some(t) => Ok(Json(t).into_response()),
        None => Err(ApiError::NotFound(format!("token {serial:?}"))),
    }
}

/// `POST /tokens/{serial}/assign`: the old owner is forgotten too.
pub(super) async fn assign_token(
    c: Call,
    Path(serial): Path<String>,
    ApiJson(body): ApiJson<AssignBody>,
) -> ApiResult<Response> {
    let before = c.owner_of(&serial).await?;
    let token = c.admin().assign(&serial, Some(&body.user), c.now).await?;
    c.changed([before, token.user_id], "token_assign", &token.serial)
        .await;
    Ok(Json(token).into_response())
}

/// `POST /tokens/{serial}/unassign`
pub(super) async fn unassign_token(c: Call, Path(serial): Path<String>) -> ApiResult<Response> {
    let before = c.owner_of(&serial).await?;
    let token = c.admin().assign(&serial, None, c.now).await?;
    c.changed([before], "token_unassign", &token.serial).await;
    Ok(Json(token).into_response())
}

/// `POST /tokens/{serial}/resync`
pub(super) async fn resync_token(
    c: Call,
    Path(serial): Path<String>,
    ApiJson(body): ApiJson<ResyncBody>,
) -> ApiResult<Response> {
    let token = c
        .admin()
        .resync(&serial, &body.code1, &body.code2, c.now)
        .await?;
    c.changed([token.user_id], "token_resync", &token.serial)
        .await;
    Ok(Json(token).into_response())
}

/// `POST /tokens/{serial}/pin/clear`
pub(super) async fn clear_pin(c: Call, Path(serial): Path<String>) -> ApiResult<Response> {
    let token = c.admin().clear_pin(&serial, c.now).await?;
    c.changed([token.user_id], "pin_clear", &token.serial).await;
    Ok(Json(token).into_response())
}

/// `PUT /tokens/{serial}/pin`
pub(super) async fn set_pin(
    c: Call,
    Path(serial): Path<String>,
    ApiJson(body): ApiJson<PinBody>,
) -> ApiResult<Response> {
    let token = c.admin().set_pin(&serial, &body.pin, c.now).await?;
    c.changed([token.user_id], "pin_set", &token.serial).await;
    Ok(Json(token).into_response())
}

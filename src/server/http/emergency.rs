//! `/api/v1/tokens/{serial}/emergency`: issue, export (the E-5 file), show and clear a token's
//! emergency access (a TFT or an OTT set). Codes just issued are answered once, `no-store`.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use crate::admin::IssueOptions;
use crate::model::{EmergencyKind, EmergencyMode};

use super::call::{no_store, Call};
use super::error::{ApiError, ApiJson, ApiResult};

/// `POST /tokens/{serial}/emergency` (mirrors [`IssueOptions`], the kind required).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EmergencyBody {
    kind: EmergencyKind,
    #[serde(default)]
    mode: Option<EmergencyMode>,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    expires_at: Option<i64>,
}

impl EmergencyBody {
    fn into_options(self) -> ApiResult<IssueOptions> {
        if self.kind == EmergencyKind::Tft && self.count.is_some() {
            return Err(ApiError::Invalid(
                "count applies to OTT sets only (a TFT is one code)".into(),
            ));
        }
        Ok(IssueOptions {
            kind: Some(self.kind),
            mode: self.mode,
            count: self.count,
            expires_at: self.expires_at,
        })
    }
}

/// `POST /tokens/{serial}/emergency/export`: always an OTT set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportBody {
    #[serde(default)]
    mode: Option<EmergencyMode>,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    expires_at: Option<i64>,
}

/// `<serial>-ott.txt`, with anything but letters, digits, `.`, `_` and `-` replaced, so the
/// serial cannot break out of the quoted `Content-Disposition` parameter.
fn export_file_name(serial: &str) -> String {
    let safe: String = serial
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}-ott.txt")
}

/// `POST /tokens/{serial}/emergency`
pub(super) async fn issue_emergency(
    c: Call,
    Path(serial): Path<String>,
    ApiJson(body): ApiJson<EmergencyBody>,
) -> ApiResult<Response> {
    let opts = body.into_options()?;
    let issued = c.admin().issue_emergency(&serial, opts, c.now).await?;
    c.st.auth.counters().emergency_issued(issued.kind);
    let owner = c.owner_of(&issued.serial).await?;
    let action = format!("emergency_{}_issue", issued.kind.as_str());
    c.changed([owner], &action, &issued.serial).await;
    Ok(no_store(
        (StatusCode::CREATED, Json(issued)).into_response(),
    ))
}

/// `POST /tokens/{serial}/emergency/export`: issues an OTT set and answers it as the E-5 text
/// file.
pub(super) async fn export_emergency(
    c: Call,
    Path(serial): Path<String>,
    ApiJson(body): ApiJson<ExportBody>,
) -> ApiResult<Response> {
    let opts = IssueOptions {
        kind: Some(EmergencyKind::Ott),
        mode: body.mode,
        count: body.count,
        expires_at: body.expires_at,
    };
    let admin = c.admin();
    let issued = admin.issue_emergency(&serial, opts, c.now).await?;
    c.st.auth.counters().emergency_issued(issued.kind);
    // The set is in force from here on: make the gateway see it even if the export fails.
    let owner = c.owner_of(&issued.serial).await?;
    c.changed([owner], "emergency_ott_issue", &issued.serial)
        .await;
    let text = admin.export_ott(&issued, c.now).await?;
    c.log("emergency_ott_export", &issued.serial);
    let disposition = format!(
        "attachment; filename=\"{}\"",
        export_file_name(&issued.serial)
    );
    let disposition = HeaderValue::from_str(&disposition)
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    Ok(no_store(
        (
            StatusCode::CREATED,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                ),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            text,
        )
            .into_response(),
    ))
}

/// `GET /tokens/{serial}/emergency`
pub(super) async fn show_emergency(c: Call, Path(serial): Path<String>) -> ApiResult<Response> {
    match c.admin().emergency_show(&serial, c.now).await? {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(ApiError::Absent(format!(
            "token {serial} has no emergency access"
        ))),
    }
}

/// `DELETE /tokens/{serial}/emergency`
pub(super) async fn clear_emergency(c: Call, Path(serial): Path<String>) -> ApiResult<Response> {
    let cleared = c.admin().emergency_clear(&serial, c.now).await?;
    let owner = c.owner_of(&serial).await?;
    c.changed([owner], "emergency_clear", &serial).await;
    Ok(Json(serde_json::json!({ "serial": serial, "cleared": cleared })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_file_names_cannot_break_the_header() {
        assert_eq!(export_file_name("S-1.a_b"), "S-1.a_b-ott.txt");
        assert_eq!(export_file_name("a\"b;c/d e"), "a_b_c_d_e-ott.txt");
    }
}

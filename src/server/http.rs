//! The admin HTTP API: JSON over HTTP on the `[admin_api]` listener, for help desks and scripts.
//!
//! It owns the route table (`/api/v1/…`), bearer-key authentication (SHA-256 of the presented key
//! compared in constant time with every configured hash), the mapping of JSON bodies to
//! [`Admin`] calls and of [`AdminError`]s to HTTP statuses, the request limits (body size,
//! requests in flight) and the cache invalidation that makes a change visible to this gateway at
//! once. It must not hold admin logic of its own (validation and audit live in [`crate::admin`]),
//! decide authentications, or put secrets in logs: API keys, PINs, passcodes, emergency codes and
//! request bodies are never logged. Secrets leave in responses only where the operation exists to
//! show them, once: the `otpauth://` URI of a token just created, emergency codes just issued (as
//! JSON or as the E-5 export file), and the offline emergency codes an admin reads back (O-3).
//! Those responses carry `Cache-Control: no-store`.
//!
//! The OpenAPI 3.0 description is hand-written in `docs/openapi.json` and served at
//! `GET /api/v1/openapi.json`; a test checks it against [`routes`].

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Json, Router};
use base64::Engine as _;
use rand::RngCore;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::admin::{Admin, AdminError, IssueOptions, TokenSpec};
use crate::clock::Clock;
use crate::config::{ApiKey, Config};
use crate::model::{EmergencyKind, EmergencyMode, HashAlgorithm, OtpMode, TokenKind, UserId};
use crate::otp::{base32, MasterKey};
use crate::store::Store;

use super::auth::AuthService;

/// Largest request body accepted (bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Requests handled at once; more get 503.
pub const MAX_IN_FLIGHT: usize = 64;
/// How long open connections may finish after shutdown starts before they are dropped.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Prefix of every API key, so a leaked key is recognisable in logs and scanners.
pub const API_KEY_PREFIX: &str = "tgk_";

const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// A freshly generated API key: the key (shown once) and the hash that goes into the config.
#[derive(Clone)]
pub struct NewApiKey {
    /// `tgk_` + 32 random bytes in base64url (no padding).
    pub key: String,
    /// Lower-case hex SHA-256 of `key`, for `key_sha256`.
    pub sha256_hex: String,
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("key", &"<redacted>")
            .field("sha256_hex", &self.sha256_hex)
            .finish()
    }
}

/// Generates an API key from 32 bytes of `rng`.
pub fn new_api_key(rng: &mut (impl RngCore + rand::CryptoRng)) -> NewApiKey {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rng.fill_bytes(bytes.as_mut_slice());
    let key = format!(
        "{API_KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_slice())
    );
    let sha256_hex = api_key_sha256(&key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    NewApiKey { key, sha256_hex }
}

/// SHA-256 of an API key as presented (the whole string, prefix included).
pub fn api_key_sha256(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The configured key matching `presented`, if any. Every configured hash is compared, in
/// constant time, whatever matches, so timing tells nothing about which key (or how much of it)
/// was right.
pub fn match_api_key<'k>(keys: &'k [ApiKey], presented: &str) -> Option<&'k ApiKey> {
    let digest = api_key_sha256(presented);
    let mut found = subtle::Choice::from(0);
    let mut index = 0u64;
    for (i, k) in keys.iter().enumerate() {
        let eq = digest.ct_eq(&k.sha256);
        index = u64::conditional_select(&index, &(i as u64), eq);
        found |= eq;
    }
    if bool::from(found) {
        keys.get(usize::try_from(index).ok()?)
    } else {
        None
    }
}

/// What the handlers share.
pub struct ApiState {
    store: Store,
    key: Arc<MasterKey>,
    auth: Arc<AuthService>,
    clock: Arc<Clock>,
    reloader: Arc<super::reload::Reloader>,
    in_flight: Semaphore,
}

impl ApiState {
    /// Bundles what the API needs from the gateway.
    pub fn new(
        store: Store,
        key: Arc<MasterKey>,
        auth: Arc<AuthService>,
        clock: Arc<Clock>,
        reloader: Arc<super::reload::Reloader>,
    ) -> ApiState {
        ApiState {
            reloader,
            store,
            key,
            auth,
            clock,
            in_flight: Semaphore::new(MAX_IN_FLIGHT),
        }
    }

    /// Admin operations under `config` (the configuration in force, `st.config()`, read once
    /// per request so a reload applies to the next request).
    fn admin<'a>(&'a self, config: &'a Config, actor: &Actor) -> Admin<'a> {
        Admin::new(&self.store, config, &self.key, actor.audit_name())
    }

    /// The configuration in force now (a reload swaps it).
    fn config(&self) -> Arc<Config> {
        self.auth.config()
    }

    /// Makes this gateway forget the cached state of these users now (the change feed would
    /// catch up within a poll interval; an admin who locks a user expects it to hold at once).
    async fn invalidate(&self, ids: impl IntoIterator<Item = Option<UserId>>) {
        let ids: Vec<UserId> = ids.into_iter().flatten().collect();
        if !ids.is_empty() {
            self.auth.invalidate_users(&ids).await;
        }
    }
}

type Shared = Arc<ApiState>;

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

/// One entry of the route table.
struct Route {
    method: Method,
    path: &'static str,
    public: bool,
    handler: MethodRouter<Shared>,
}

fn route<H, T>(method: Method, path: &'static str, handler: H) -> Route
where
    H: axum::handler::Handler<T, Shared>,
    T: 'static,
{
    // The table below is static: a method without a filter is a programming error caught by
    // the route tests at once.
    let filter = MethodFilter::try_from(method.clone()).expect("route methods are standard");
    Route {
        method,
        path,
        public: false,
        handler: on(filter, handler),
    }
}

fn table() -> Vec<Route> {
    let p = Method::POST;
    let g = Method::GET;
    vec![
        Route {
            public: true,
            ..route(g.clone(), "/api/v1/openapi.json", openapi)
        },
        route(p.clone(), "/api/v1/reload", reload_config),
        route(g.clone(), "/api/v1/users", list_users),
        route(p.clone(), "/api/v1/users", add_user),
        route(g.clone(), "/api/v1/users/{name}", show_user),
        route(p.clone(), "/api/v1/users/{name}/lock", lock_user),
        route(p.clone(), "/api/v1/users/{name}/unlock", unlock_user),
        route(g.clone(), "/api/v1/tokens", list_tokens),
        route(p.clone(), "/api/v1/tokens", add_token),
        route(g.clone(), "/api/v1/tokens/{serial}", show_token),
        route(p.clone(), "/api/v1/tokens/{serial}/assign", assign_token),
        route(
            p.clone(),
            "/api/v1/tokens/{serial}/unassign",
            unassign_token,
        ),
        route(p.clone(), "/api/v1/tokens/{serial}/resync", resync_token),
        route(p.clone(), "/api/v1/tokens/{serial}/pin/clear", clear_pin),
        route(Method::PUT, "/api/v1/tokens/{serial}/pin", set_pin),
        route(
            p.clone(),
            "/api/v1/tokens/{serial}/emergency",
            issue_emergency,
        ),
        route(
            p.clone(),
            "/api/v1/tokens/{serial}/emergency/export",
            export_emergency,
        ),
        route(
            g.clone(),
            "/api/v1/tokens/{serial}/emergency",
            show_emergency,
        ),
        route(
            Method::DELETE,
            "/api/v1/tokens/{serial}/emergency",
            clear_emergency,
        ),
        route(
            Method::PUT,
            "/api/v1/users/{name}/fixed-passcode",
            set_fixed_passcode,
        ),
        route(
            Method::DELETE,
            "/api/v1/users/{name}/fixed-passcode",
            clear_fixed_passcode,
        ),
        route(
            g.clone(),
            "/api/v1/tokens/{serial}/offline-code",
            show_offline_code,
        ),
        route(
            p.clone(),
            "/api/v1/tokens/{serial}/offline-code/reset",
            reset_offline_code,
        ),
        route(
            Method::PUT,
            "/api/v1/tokens/{serial}/offline-code/online",
            set_offline_code_online,
        ),
        route(
            g,
            "/api/v1/users/{name}/offline-passcode",
            show_offline_passcode,
        ),
        route(
            p,
            "/api/v1/users/{name}/offline-passcode/reset",
            reset_offline_passcode,
        ),
    ]
}

/// A route the API serves: method, path template (`{name}` for a parameter) and whether it
/// needs no API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// HTTP method.
    pub method: Method,
    /// Path template as in the OpenAPI document.
    pub path: &'static str,
    /// Served without an API key.
    pub public: bool,
}

/// Every route the router serves (the router is built from the same table).
pub fn routes() -> Vec<RouteInfo> {
    table()
        .into_iter()
        .map(|r| RouteInfo {
            method: r.method,
            path: r.path,
            public: r.public,
        })
        .collect()
}

/// The admin API router over `state`.
pub fn router(state: Arc<ApiState>) -> Router {
    let mut r: Router<Shared> = Router::new();
    for route in table() {
        r = r.route(route.path, route.handler);
    }
    r.fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limit_in_flight,
        ))
        .with_state(state)
}

async fn limit_in_flight(State(st): State<Shared>, req: Request, next: Next) -> Response {
    match st.in_flight.try_acquire() {
        Ok(_permit) => next.run(req).await,
        Err(_) => ApiError::Busy.into_response(),
    }
}

/// Binds the listener (so the caller knows the port before serving starts).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `router` on `listener` until `cancel` fires, then lets open requests finish for up to
/// [`SHUTDOWN_GRACE`] and drops what is left.
pub async fn serve(listener: TcpListener, router: Router, cancel: CancellationToken) {
    let graceful = axum::serve(listener, router)
        .with_graceful_shutdown(cancel.clone().cancelled_owned())
        .into_future();
    let deadline = async {
        cancel.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        r = graceful => if let Err(e) = r {
            tracing::error!(error = %e, "admin API server failed");
        },
        _ = deadline => tracing::warn!("admin API: requests still open after the grace period; dropped"),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

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
                tracing::error!(error = %e, "admin API: database error");
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

type ApiResult<T> = Result<T, ApiError>;

// ---------------------------------------------------------------------------------------------
// Extractors
// ---------------------------------------------------------------------------------------------

/// The authenticated caller: the name of the API key presented.
#[derive(Debug, Clone)]
pub struct Actor(String);

impl Actor {
    /// The acting admin as audit records name it: `api:<key name>`.
    pub fn audit_name(&self) -> String {
        format!("api:{}", self.0)
    }
}

impl FromRequestParts<Shared> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &Shared) -> Result<Self, Self::Rejection> {
        let config = st.config();
        let keys = config
            .admin_api
            .as_ref()
            .map(|a| a.keys.as_slice())
            .unwrap_or(&[]);
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or(ApiError::Unauthorized(
                "missing API key: send Authorization: Bearer <key>",
            ))?;
        let presented = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|k| !k.is_empty())
            .ok_or(ApiError::Unauthorized(
                "malformed Authorization header: expected Bearer <key>",
            ))?;
        match match_api_key(keys, presented) {
            Some(k) => Ok(Actor(k.name.clone())),
            None => Err(ApiError::Unauthorized("invalid API key")),
        }
    }
}

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

// ---------------------------------------------------------------------------------------------
// Request bodies
// ---------------------------------------------------------------------------------------------

/// `POST /users`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    name: String,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    profile: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum OtpType {
    Totp,
    Hotp,
}

/// `POST /tokens` (mirrors [`TokenSpec`]). `Debug` is not derived: it holds the PIN and seed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTokenBody {
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
struct AssignBody {
    user: String,
}

/// `POST /tokens/{serial}/resync`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResyncBody {
    code1: String,
    code2: String,
}

/// `PUT /tokens/{serial}/pin`. `Debug` is not derived: it holds the PIN.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PinBody {
    pin: String,
}

/// `POST /tokens/{serial}/emergency` (mirrors [`IssueOptions`], the kind required).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmergencyBody {
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
struct ExportBody {
    #[serde(default)]
    mode: Option<EmergencyMode>,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    expires_at: Option<i64>,
}

/// `PUT /users/{name}/fixed-passcode`. `Debug` is not derived: it holds the passcode.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FixedPasscodeBody {
    passcode: String,
    confirm: String,
}

/// `PUT /tokens/{serial}/offline-code/online`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnlineBody {
    online: bool,
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

/// One log line per change: who, what, on which object (never the body).
fn logged(actor: &Actor, action: &str, object: &str) {
    tracing::info!(actor = %actor.audit_name(), action, object, "admin API change");
}

/// `POST /reload`: re-reads the configuration file, as SIGHUP does. An invalid file is refused
/// with 400 and its `file: key: reason`; the running configuration then stays in force.
async fn reload_config(actor: Actor, State(st): State<Shared>) -> ApiResult<Response> {
    let report = st
        .reloader
        .reload(&actor.audit_name())
        .await
        .map_err(|e| ApiError::Invalid(e.to_string()))?;
    logged(&actor, "config_reload", &report.file);
    Ok(Json(report).into_response())
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI.to_string(),
    )
        .into_response()
}

async fn list_users(_actor: Actor, State(st): State<Shared>) -> ApiResult<Response> {
    let users = st.store.list_users().await.map_err(AdminError::from)?;
    Ok(Json(users).into_response())
}

async fn add_user(
    actor: Actor,
    State(st): State<Shared>,
    ApiJson(body): ApiJson<NewUserBody>,
) -> ApiResult<Response> {
    let now = st.clock.now();
    let domain = body.domain.as_deref().unwrap_or("default");
    let user = st
        .admin(&st.config(), &actor)
        .add_user(&body.name, domain, body.profile.as_deref(), now)
        .await?;
    st.invalidate([Some(user.id)]).await;
    logged(&actor, "user_add", &user.name);
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

async fn show_user(
    actor: Actor,
    State(st): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let view = st.admin(&st.config(), &actor).show_user(&name).await?;
    Ok(Json(view).into_response())
}

async fn set_locked(actor: Actor, st: Shared, name: String, locked: bool) -> ApiResult<Response> {
    let now = st.clock.now();
    let user = st
        .admin(&st.config(), &actor)
        .set_locked(&name, locked, now)
        .await?;
    st.invalidate([Some(user.id)]).await;
    logged(
        &actor,
        if locked { "user_lock" } else { "user_unlock" },
        &user.name,
    );
    Ok(Json(user).into_response())
}

async fn lock_user(
    actor: Actor,
    State(st): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    set_locked(actor, st, name, true).await
}

async fn unlock_user(
    actor: Actor,
    State(st): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    set_locked(actor, st, name, false).await
}

async fn list_tokens(_actor: Actor, State(st): State<Shared>) -> ApiResult<Response> {
    let tokens = st.store.list_tokens().await.map_err(AdminError::from)?;
    Ok(Json(tokens).into_response())
}

async fn add_token(
    actor: Actor,
    State(st): State<Shared>,
    ApiJson(body): ApiJson<NewTokenBody>,
) -> ApiResult<Response> {
    let now = st.clock.now();
    let spec = body.into_spec()?;
    let created = st.admin(&st.config(), &actor).add_token(spec, now).await?;
    st.invalidate([created.token.user_id]).await;
    logged(&actor, "token_add", &created.token.serial);
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn show_token(
    _actor: Actor,
    State(st): State<Shared>,
    Path(serial): Path<String>,
) -> ApiResult<Response> {
    match st
        .store
        .token_by_serial(&serial)
        .await
        .map_err(AdminError::from)?
    {
        Some(t) => Ok(Json(t).into_response()),
        None => Err(ApiError::NotFound(format!("token {serial:?}"))),
    }
}

/// The owner of a token before a change (to invalidate the old owner too).
async fn owner_of(st: &ApiState, serial: &str) -> ApiResult<Option<UserId>> {
    Ok(st
        .store
        .token_by_serial(serial)
        .await
        .map_err(AdminError::from)?
        .and_then(|t| t.user_id))
}

async fn assign_token(
    actor: Actor,
    State(st): State<Shared>,
    Path(serial): Path<String>,
    ApiJson(body): ApiJson<AssignBody>,
) -> ApiResult<Response> {
    let now = st.clock.now();
    let before = owner_of(&st, &serial).await?;
    let token = st
        .admin(&st.config(), &actor)
        .assign(&serial, Some(&body.user), now)
        .await?;
    st.invalidate([before, token.user_id]).await;
    logged(&actor, "token_assign", &token.serial);
    Ok(Json(token).into_response())
}

async fn unassign_token(
    actor: Actor,
    State(st): State<Shared>,
    Path(serial): Path<String>,
) -> ApiResult<Response> {
    let now = st.clock.now();
    let before = owner_of(&st, &serial).await?;
    let token = st
        .admin(&st.config(), &actor)
        .assign(&serial, None, now)
        .await?;
    st.invalidate([before]).await;
    logged(&actor, "token_unassign", &token.serial);
    Ok(Json(token).into_response())
}

async fn resync_token(
    actor: Actor,
    State(st): State<Shared>,
    Path(serial): Path<String>,
    ApiJson(body): ApiJson<ResyncBody>,
) -> ApiResult<Response> {
    let now = st.clock.now();
    let token = st
        .admin(&st.config(), &actor)
        .resync(&serial, &body.code1, &body.code2, now)
        .await?;
    st.invalidate([token.user_id]).await;
    logged(&actor, "token_resync", &token.serial);
    Ok(Json(token).into_response())
}

async fn clear_pin(
    actor: Actor,
    State(st): State<Shared>,
    Path(serial): Path<String>,
) -> ApiResult<Response> {
    let now = st.clock.now();
    let token = st
        .admin(&st.config(), &actor)
        .clear_pin(&serial, now)
        .await?;
    st.invalidate([token.user_id]).await;
    logged(&actor, "pin_clear", &token.serial);
    Ok(Json(token).into_response())
}

async fn set_pin(
    actor: Actor,
    State(st): State<Shared>,
    Path(serial): Path<String>,
    ApiJson(body): ApiJson<PinBody>,
) -> ApiResult<Response> {
    let now = st.clock.now();
    let token = st
        .admin(&st.config(), &actor)
        .set_pin(&serial, &body.pin, now)
        .await?;
    st.invalidate([token.user_id]).await;
    logged(&actor, "pin_set", &token.serial);
    Ok(Json(token).into_response())
}

/// A response that carries codes in clear: no cache may keep it.
fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The id of the user `name` names (as the Admin layer normalises it), to invalidate after a
/// change made by name.
async fn user_id_of(st: &ApiState, name: &str) -> ApiResult<Option<UserId>> {
    let n = st.config().file.server.user_name_case.normalize(name);
    Ok(st
        .store
        .user_by_name(&n)
        .await
        .map_err(AdminError::from)?
        .map(|u| u.id))
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

async fn issue_emergency(
    actor: Actor,
    State(st): State<Shared>,
    Path(serial): Path<String>,
    ApiJson(body): ApiJson<EmergencyBody>,
) -> ApiResult<Response> {
    let now = st.clock.now();
    let opts = body.into_options()?;
    let issued = st
        .admin(&st.config(), &actor)
        .issue_emergency(&serial, opts, now)
        .await?;
    st.auth.counters().emergency_issued(issued.kind);
    st.invalidate([owner_of(&st, &issued.serial).await?]).await;
    logged(
        &actor,
        &format!("emergency_{}_issue", issued.kind.as_str()),
        &issued.serial,
    );
    Ok(no_store(
        (StatusCode::CREATED, Json(issued)).into_response(),
    ))
}

async fn export_emergency(
    actor: Actor,
    State(st): State<Shared>,
    Path(serial): Path<String>,
    ApiJson(body): ApiJson<ExportBody>,
) -> ApiResult<Response> {
    let now = st.clock.now();
    let opts = IssueOptions {
        kind: Some(EmergencyKind::Ott),
        mode: body.mode,
        count: body.count,
        expires_at: body.expires_at,
    };
    let config = st.config();
    let admin = st.admin(&config, &actor);
    let issued = admin.issue_emergency(&serial, opts, now).await?;
    st.auth.counters().emergency_issued(issued.kind);
    // The set is in force from here on: make the gateway see it even if the export fails.
    st.invalidate([owner_of(&st, &issued.serial).await?]).await;
    logged(&actor, "emergency_ott_issue", &issued.serial);
    let text = admin.export_ott(&issued, now).await?;
    logged(&actor, "emergency_ott_export", &issued.serial);
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

async fn show_emergency(
    actor: Actor,
    State(st): State<Shared>,
    Path(serial): Path<String>,
) -> ApiResult<Response> {
    let now = st.clock.now();
    match st
        .admin(&st.config(), &actor)
        .emergency_show(&serial, now)
        .await?
    {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(ApiError::Absent(format!(
            "token {serial} has no emergency access"
        ))),
    }
}

async fn clear_emergency(
    actor: Actor,
    State(st): State<Shared>,
    Path(serial): Path<String>,
) -> ApiResult<Response> {
    let now = st.clock.now();
    let cleared = st
        .admin(&st.config(), &actor)
        .emergency_clear(&serial, now)
        .await?;
    st.invalidate([owner_of(&st, &serial).await?]).await;
    logged(&actor, "emergency_clear", &serial);
    Ok(Json(serde_json::json!({ "serial": serial, "cleared": cleared })).into_response())
}

async fn set_fixed_passcode(
    actor: Actor,
    State(st): State<Shared>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<FixedPasscodeBody>,
) -> ApiResult<Response> {
    let now = st.clock.now();
    let view = st
        .admin(&st.config(), &actor)
        .set_fixed_passcode(&name, &body.passcode, &body.confirm, now)
        .await?;
    st.invalidate([user_id_of(&st, &view.user).await?]).await;
    logged(&actor, "fixed_passcode_set", &view.user);
    Ok(Json(view).into_response())
}

async fn clear_fixed_passcode(
    actor: Actor,
    State(st): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let now = st.clock.now();
    let cleared = st
        .admin(&st.config(), &actor)
        .clear_fixed_passcode(&name, now)
        .await?;
    let user = st.config().file.server.user_name_case.normalize(&name);
    st.invalidate([user_id_of(&st, &user).await?]).await;
    logged(&actor, "fixed_passcode_clear", &user);
    Ok(Json(serde_json::json!({ "user": user, "cleared": cleared })).into_response())
}

async fn show_offline_code(
    actor: Actor,
    State(st): State<Shared>,
    Path(serial): Path<String>,
) -> ApiResult<Response> {
    let now = st.clock.now();
    // Showing generates the code when none is current: a change like any other.
    let view = st
        .admin(&st.config(), &actor)
        .offline_code_show(&serial, now)
        .await?;
    st.invalidate([owner_of(&st, &serial).await?]).await;
    logged(&actor, "offline_code_show", &serial);
    Ok(no_store(Json(view).into_response()))
}

async fn reset_offline_code(
    actor: Actor,
    State(st): State<Shared>,
    Path(serial): Path<String>,
) -> ApiResult<Response> {
    let now = st.clock.now();
    let view = st
        .admin(&st.config(), &actor)
        .offline_code_reset(&serial, now)
        .await?;
    st.invalidate([owner_of(&st, &serial).await?]).await;
    logged(&actor, "offline_code_reset", &serial);
    Ok(no_store(Json(view).into_response()))
}

async fn set_offline_code_online(
    actor: Actor,
    State(st): State<Shared>,
    Path(serial): Path<String>,
    ApiJson(body): ApiJson<OnlineBody>,
) -> ApiResult<Response> {
    let now = st.clock.now();
    let view = st
        .admin(&st.config(), &actor)
        .offline_code_online(&serial, body.online, now)
        .await?;
    st.invalidate([owner_of(&st, &serial).await?]).await;
    logged(
        &actor,
        if body.online {
            "offline_code_online_on"
        } else {
            "offline_code_online_off"
        },
        &serial,
    );
    Ok(no_store(Json(view).into_response()))
}

async fn offline_passcode(
    actor: Actor,
    st: Shared,
    name: String,
    reset: bool,
) -> ApiResult<Response> {
    let now = st.clock.now();
    // Showing generates the passcode when none is current: a change like any other.
    let view = st
        .admin(&st.config(), &actor)
        .offline_passcode(&name, reset, now)
        .await?;
    let user = view
        .user
        .clone()
        .unwrap_or_else(|| st.config().file.server.user_name_case.normalize(&name));
    st.invalidate([user_id_of(&st, &user).await?]).await;
    logged(
        &actor,
        if reset {
            "offline_passcode_reset"
        } else {
            "offline_passcode_show"
        },
        &user,
    );
    Ok(no_store(Json(view).into_response()))
}

async fn show_offline_passcode(
    actor: Actor,
    State(st): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    offline_passcode(actor, st, name, false).await
}

async fn reset_offline_passcode(
    actor: Actor,
    State(st): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    offline_passcode(actor, st, name, true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, k: &str) -> ApiKey {
        ApiKey {
            name: name.into(),
            sha256: api_key_sha256(k),
        }
    }

    #[test]
    fn new_keys_are_prefixed_base64url_of_32_bytes_with_matching_hash() {
        let a = new_api_key(&mut rand::rngs::OsRng);
        let b = new_api_key(&mut rand::rngs::OsRng);
        assert_ne!(a.key, b.key);
        let body = a.key.strip_prefix(API_KEY_PREFIX).unwrap();
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .unwrap();
        assert_eq!(raw.len(), 32);
        assert_eq!(a.sha256_hex.len(), 64);
        let expect: String = api_key_sha256(&a.key)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(a.sha256_hex, expect);
        assert!(!format!("{a:?}").contains(&a.key));
    }

    #[test]
    fn keys_match_by_hash_only() {
        let keys = [key("one", "tgk_a"), key("two", "tgk_b")];
        assert_eq!(match_api_key(&keys, "tgk_a").unwrap().name, "one");
        assert_eq!(match_api_key(&keys, "tgk_b").unwrap().name, "two");
        assert!(match_api_key(&keys, "tgk_c").is_none());
        assert!(match_api_key(&keys, "").is_none());
        assert!(match_api_key(&[], "tgk_a").is_none());
    }

    #[test]
    fn export_file_names_cannot_break_the_header() {
        assert_eq!(export_file_name("S-1.a_b"), "S-1.a_b-ott.txt");
        assert_eq!(export_file_name("a\"b;c/d e"), "a_b_c_d_e-ott.txt");
    }

    #[test]
    fn route_table_has_no_duplicates() {
        let rs = routes();
        for (i, a) in rs.iter().enumerate() {
            for b in &rs[i + 1..] {
                assert!(a.method != b.method || a.path != b.path, "{a:?} twice");
            }
        }
    }
}

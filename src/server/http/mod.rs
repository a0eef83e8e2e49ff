//! The admin HTTP API: JSON over HTTP on the `[admin_api]` listener, for help desks and scripts.
//!
//! It owns the route table (`/api/v1/…`), bearer-key authentication (SHA-256 of the presented key
//! compared in constant time with every configured hash), the mapping of JSON bodies to
//! [`Admin`](crate::admin::Admin) calls and of [`AdminError`](crate::admin::AdminError)s to HTTP
//! statuses, the request limits (body size, requests in flight) and the cache invalidation that
//! makes a change visible to this gateway at once. It must not hold admin logic of its own
//! (validation and audit live in [`crate::admin`]), decide authentications, or put secrets in
//! logs: API keys, PINs, passcodes, emergency codes and request bodies are never logged. Secrets
//! leave in responses only where the operation exists to show them, once: the `otpauth://` URI
//! of a token just created, emergency codes just issued (as JSON or as the E-5 export file), and
//! the offline emergency codes an admin reads back (O-3). Those responses carry
//! `Cache-Control: no-store`.
//!
//! The OpenAPI 3.0 description is hand-written in `docs/openapi.json` and served at
//! `GET /api/v1/openapi.json`; a test checks it against [`routes`].
//!
//! This file holds the listener, the route table, the limits and the shutdown; `keys` the API
//! keys and the bearer check, `auth_failures` what happens to refused keys (a metric, a log line
//! and an audit record per source and interval, not per request), `error` the error answers,
//! `call` what every handler shares (authorise, act through the Admin layer, invalidate, log),
//! and one file per resource family the handlers: `users`, `tokens`, `emergency`,
//! `fixed_passcode`, `offline`, `reload`, `openapi`. A new route is a small function in its family's file and one line in `table()`.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Config;
use crate::otp::MasterKey;
use crate::stats::Stats;
use crate::store::Store;

use super::service::AuthService;

mod auth_failures;
mod call;
mod emergency;
mod error;
mod fixed_passcode;
mod keys;
mod offline;
mod openapi;
mod reload;
mod tokens;
mod users;

pub use auth_failures::{MAX_SOURCES, REPORT_EVERY};
pub use error::{ApiError, ApiJson};
pub use keys::{api_key_sha256, match_api_key, new_api_key, Actor, NewApiKey, API_KEY_PREFIX};

/// Largest request body accepted (bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Requests handled at once; more get 503.
pub const MAX_IN_FLIGHT: usize = 64;
/// How long open connections may finish after shutdown starts before they are dropped.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The `tracing` target of every log line of the API, whichever file logs it.
const LOG_TARGET: &str = module_path!();

/// What the handlers share.
pub struct ApiState {
    store: Store,
    key: Arc<MasterKey>,
    auth: Arc<AuthService>,
    clock: Arc<Clock>,
    reloader: Arc<super::reload::Reloader>,
    in_flight: Semaphore,
    stats: Arc<Stats>,
    auth_failures: auth_failures::AuthFailures,
}

impl ApiState {
    /// Bundles what the API needs from the gateway.
    pub fn new(
        store: Store,
        key: Arc<MasterKey>,
        auth: Arc<AuthService>,
        clock: Arc<Clock>,
        reloader: Arc<super::reload::Reloader>,
        stats: Arc<Stats>,
    ) -> ApiState {
        ApiState {
            reloader,
            store,
            key,
            auth,
            clock,
            in_flight: Semaphore::new(MAX_IN_FLIGHT),
            stats,
            auth_failures: auth_failures::AuthFailures::default(),
        }
    }

    /// The configuration in force now (a reload swaps it).
    fn config(&self) -> Arc<Config> {
        self.auth.config()
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
    #[allow(
        clippy::expect_used,
        reason = "static route table, every entry exercised by the route tests"
    )]
    let filter = MethodFilter::try_from(method.clone()).expect("route methods are standard");
    Route {
        method,
        path,
        public: false,
        handler: on(filter, handler),
    }
}

/// The route table: every route, its handler, and whether it needs no API key.
fn table() -> Vec<Route> {
    let p = Method::POST;
    let g = Method::GET;
    vec![
        Route {
            public: true,
            ..route(g.clone(), "/api/v1/openapi.json", openapi::document)
        },
        route(p.clone(), "/api/v1/reload", reload::reload_config),
        route(g.clone(), "/api/v1/users", users::list_users),
        route(p.clone(), "/api/v1/users", users::add_user),
        route(g.clone(), "/api/v1/users/{name}", users::show_user),
        route(p.clone(), "/api/v1/users/{name}/lock", users::lock_user),
        route(p.clone(), "/api/v1/users/{name}/unlock", users::unlock_user),
        route(g.clone(), "/api/v1/tokens", tokens::list_tokens),
        route(p.clone(), "/api/v1/tokens", tokens::add_token),
        route(g.clone(), "/api/v1/tokens/{serial}", tokens::show_token),
        route(
            p.clone(),
            "/api/v1/tokens/{serial}/assign",
            tokens::assign_token,
        ),
        route(
            p.clone(),
            "/api/v1/tokens/{serial}/unassign",
            tokens::unassign_token,
        ),
        route(
            p.clone(),
            "/api/v1/tokens/{serial}/resync",
            tokens::resync_token,
        ),
        route(
            p.clone(),
            "/api/v1/tokens/{serial}/pin/clear",
            tokens::clear_pin,
        ),
        route(Method::PUT, "/api/v1/tokens/{serial}/pin", tokens::set_pin),
        route(
            p.clone(),
            "/api/v1/tokens/{serial}/emergency",
            emergency::issue_emergency,
        ),
        route(
            p.clone(),
            "/api/v1/tokens/{serial}/emergency/export",
            emergency::export_emergency,
        ),
        route(
            g.clone(),
            "/api/v1/tokens/{serial}/emergency",
            emergency::show_emergency,
        ),
        route(
            Method::DELETE,
            "/api/v1/tokens/{serial}/emergency",
            emergency::clear_emergency,
        ),
        route(
            Method::PUT,
            "/api/v1/users/{name}/fixed-passcode",
            fixed_passcode::set_fixed_passcode,
        ),
        route(
            Method::DELETE,
            "/api/v1/users/{name}/fixed-passcode",
            fixed_passcode::clear_fixed_passcode,
        ),
        route(
            g.clone(),
            "/api/v1/tokens/{serial}/offline-code",
            offline::show_offline_code,
        ),
        route(
            p.clone(),
            "/api/v1/tokens/{serial}/offline-code/reset",
            offline::reset_offline_code,
        ),
        route(
            Method::PUT,
            "/api/v1/tokens/{serial}/offline-code/online",
            offline::set_offline_code_online,
        ),
        route(
            g,
            "/api/v1/users/{name}/offline-passcode",
            offline::show_offline_passcode,
        ),
        route(
            p,
            "/api/v1/users/{name}/offline-passcode/reset",
            offline::reset_offline_passcode,
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

/// Serves the admin API over `state` on `listener` until `cancel` fires (as [`serve`]), and
/// reports refused API keys every [`REPORT_EVERY`] and once more when the listener has stopped.
pub async fn serve_api(listener: TcpListener, state: Arc<ApiState>, cancel: CancellationToken) {
    let reports = auth_failures::report_loop(state.clone(), cancel.clone());
    tokio::join!(serve(listener, router(state.clone()), cancel), reports);
    auth_failures::report(&state).await;
}

/// Serves `router` on `listener` until `cancel` fires, then lets open requests finish for up to
/// [`SHUTDOWN_GRACE`] and drops what is left. Handlers may read the peer address
/// (`ConnectInfo<SocketAddr>`).
pub async fn serve(listener: TcpListener, router: Router, cancel: CancellationToken) {
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let graceful = axum::serve(listener, service)
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

#[cfg(test)]
mod tests {
    use super::*;

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

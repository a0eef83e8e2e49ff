//! The monitoring listener (`[metrics] listen`): `/metrics` (Prometheus text format), `/healthz`
//! (the process answers) and `/readyz` (every listener is bound, the database answers a query
//! and, while the group-commit writer's last write failed, a write probe passes; 503 otherwise,
//! so a load balancer or orchestrator takes the instance out, and lets it back in once the
//! database takes writes again, without waiting for traffic to prove it).
//!
//! It holds no logic of its own: [`crate::metrics::Metrics::render`] builds the scrape. No
//! authentication and no secrets: the scrape carries counters with bounded labels only.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;
use crate::store::{Store, WriterStats};

/// How long `/readyz` waits for the database before answering 503.
pub const READY_DB_TIMEOUT: Duration = Duration::from_secs(2);

/// What the monitoring endpoints read.
pub struct HealthState {
    metrics: Arc<Metrics>,
    store: Store,
    writer: Arc<WriterStats>,
    ready: Arc<AtomicBool>,
}

impl HealthState {
    /// `ready` is set once every listener is bound and cleared when shutdown begins; `writer`
    /// tells whether the group-commit writer's last write failed.
    pub fn new(
        metrics: Arc<Metrics>,
        store: Store,
        writer: Arc<WriterStats>,
        ready: Arc<AtomicBool>,
    ) -> HealthState {
        HealthState {
            metrics,
            store,
            writer,
            ready,
        }
    }
}

/// The three routes.
pub fn router(state: Arc<HealthState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(State(st): State<Arc<HealthState>>) -> Response {
    (
        [(header::CONTENT_TYPE, Metrics::content_type())],
        st.metrics.render(),
    )
        .into_response()
}

async fn readyz(State(st): State<Arc<HealthState>>) -> Response {
    if !st.ready.load(Ordering::Acquire) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: listeners not bound or shutting down\n",
        )
            .into_response();
    }
    match tokio::time::timeout(READY_DB_TIMEOUT, st.store.ping()).await {
        Ok(Ok(())) => writes_ready(&st).await,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database query failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: database query failed\n",
            )
                .into_response()
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: database did not answer in time\n",
        )
            .into_response(),
    }
}

/// After the database answered: ready unless the writer's last write failed and a write probe
/// ([`Store::check_writable`]) fails too. The probe runs only while writes fail, so a healthy
/// gateway's `/readyz` adds nothing to the database, and a fixed database (permissions
/// restored, disk space freed) makes the instance ready again before any request succeeds.
async fn writes_ready(st: &HealthState) -> Response {
    let Some((failures, last)) = st.writer.write_failing() else {
        return (StatusCode::OK, "ready\n").into_response();
    };
    let probe = match tokio::time::timeout(READY_DB_TIMEOUT, st.store.check_writable()).await {
        Ok(Ok(())) => return (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "the write probe did not finish in time".to_owned(),
    };
    tracing::warn!(failures, last_error = %last, probe = %probe, "readiness: database writes fail");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "not ready: database writes fail ({failures} failed write attempts in a row; last: {last}); write probe: {probe}\n"
        ),
    )
        .into_response()
}

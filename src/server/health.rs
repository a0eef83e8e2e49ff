//! The monitoring listener (`[metrics] listen`): `/metrics` (Prometheus text format), `/healthz`
//! (the process answers) and `/readyz` (every listener is bound and the database answers a
//! query; 503 otherwise, so a load balancer or orchestrator takes the instance out).
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
use crate::store::Store;

/// How long `/readyz` waits for the database before answering 503.
pub const READY_DB_TIMEOUT: Duration = Duration::from_secs(2);

/// What the monitoring endpoints read.
pub struct HealthState {
    metrics: Arc<Metrics>,
    store: Store,
    ready: Arc<AtomicBool>,
}

impl HealthState {
    /// `ready` is set once every listener is bound and cleared when shutdown begins.
    pub fn new(metrics: Arc<Metrics>, store: Store, ready: Arc<AtomicBool>) -> HealthState {
        HealthState {
            metrics,
            store,
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
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
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

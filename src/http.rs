//! The service's own HTTP server: `/health` (and `/`) for probes, `/worker` for the agent worker's
//! state, `/metrics` for Prometheus. Read-only; everything comes from `ServiceStatus` and the
//! metrics recorder. With `http.playground` on, the web playground's routes too (see
//! [`crate::playground`]); off, they are 404 like any unknown path.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;

use crate::playground::Playground;
use crate::status::{DepStatus, ServiceStatus, WorkerSnapshot};

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("http server: {0}")]
    Serve(#[from] std::io::Error),
}

impl HttpError {
    /// The listener failed (port taken, fd limit): a restart of the process may fix it.
    pub fn is_retriable(&self) -> bool {
        true
    }
}

#[derive(Clone)]
struct AppState {
    status: Arc<ServiceStatus>,
    metrics: PrometheusHandle,
}

#[derive(Serialize)]
struct Health {
    /// "ok" or "unavailable".
    status: &'static str,
    dependencies: BTreeMap<String, DepStatus>,
}

pub fn router(status: Arc<ServiceStatus>, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/", get(health))
        .route("/health", get(health))
        .route("/worker", get(worker))
        .route("/metrics", get(prometheus))
        .with_state(AppState { status, metrics })
}

/// Serve until `shutdown` completes, then finish the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    status: Arc<ServiceStatus>,
    metrics: PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HttpError> {
    serve_with(listener, status, metrics, None, shutdown).await
}

/// [`serve`], with the playground's routes when it is given.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    status: Arc<ServiceStatus>,
    metrics: PrometheusHandle,
    playground: Option<Playground>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HttpError> {
    let mut app = router(status, metrics);
    if let Some(pg) = playground {
        app = app.merge(pg.router());
    }
    // The peer address keys the playground's rate limiter.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

async fn health(State(s): State<AppState>) -> Response {
    let healthy = s.status.healthy();
    let body = Health {
        status: if healthy { "ok" } else { "unavailable" },
        dependencies: s.status.deps(),
    };
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// Agent name, worker id, active calls, load, protocol version, as the worker last reported.
async fn worker(State(s): State<AppState>) -> Json<WorkerSnapshot> {
    Json(s.status.worker())
}

async fn prometheus(State(s): State<AppState>) -> Response {
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], s.metrics.render()).into_response()
}

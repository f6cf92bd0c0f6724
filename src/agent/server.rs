//! The agent's HTTP API (axum) and its mTLS listener.
//!
//! Routes: `GET /health`, `GET /status`, `POST /deploy`, `POST /teardown`. Nothing else (no
//! docs/openapi). Who may connect is decided in the TLS handshake by the PKI verifier (only the
//! master's certificate is admitted), so handlers never see another peer.

use std::net::TcpListener;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::agent::{Agent, AgentError, DeployRequest, TeardownRequest};

/// The agent router (no TLS: tests may drive it directly).
pub fn router(agent: Arc<Agent>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/deploy", post(deploy))
        .route("/teardown", post(teardown))
        .with_state(agent)
}

struct ApiError(AgentError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = if self.0.is_client_error() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        tracing::warn!(error = %self.0, "request failed");
        (code, Json(json!({ "error": self.0.to_string() }))).into_response()
    }
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

async fn status(State(agent): State<Arc<Agent>>) -> Result<Response, ApiError> {
    Ok(Json(agent.status().await.map_err(ApiError)?).into_response())
}

async fn deploy(
    State(agent): State<Arc<Agent>>,
    Json(req): Json<DeployRequest>,
) -> Result<Response, ApiError> {
    Ok(Json(agent.deploy(&req).await.map_err(ApiError)?).into_response())
}

async fn teardown(
    State(agent): State<Arc<Agent>>,
    Json(req): Json<TeardownRequest>,
) -> Result<Response, ApiError> {
    Ok(Json(agent.teardown(&req).await.map_err(ApiError)?).into_response())
}

/// Serves the router over HTTPS on an already bound listener with `tls` (built by
/// `pki::server_config` with the agent-endpoint policy). Runs until the process stops.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    agent: Arc<Agent>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let config = axum_server::tls_rustls::RustlsConfig::from_config(tls);
    axum_server::from_tcp_rustls(listener, config)?
        .serve(router(agent).into_make_service())
        .await
}

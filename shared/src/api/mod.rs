//! The Mistral v2 REST API, wire-compatible with Mistral 23 where it
//! overlaps (paths, JSON field names, string-encoded sub-documents, states,
//! status codes, fault bodies), so Mistral clients keep working.
//!
//! Where Mistral answers badly, bora answers better and says so in the
//! docs: every 4xx names the field that is wrong, an unknown workflow is a
//! 404 (not a 500), an oversized body is a 413 that states the limit, and a
//! rejected request stores nothing.
//!
//! Layout: `request.rs` reads bodies and list parameters, `resources.rs`
//! renders records the way Mistral does, `definitions.rs` (workflows,
//! workbooks, actions), `executions.rs` (executions, task and action
//! executions) and `environments.rs` hold the routes.

mod definitions;
mod environments;
pub mod error;
mod executions;
mod request;
mod resources;

use crate::embedded::Embedded;
use crate::handlers::Deps;
use crate::store::Catalog;
use crate::worker::{self, WorkerSettings};
use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use error::{ApiError, ApiResult};

/// The project every entry belongs to while there is no authentication.
pub const DEFAULT_PROJECT_ID: &str = "<default-project>";

/// Limits of the API.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Largest YAML text body (workflows, workbooks, actions).
    pub max_definition_bytes: usize,
    /// Largest JSON body. Larger than the input limit of the handlers,
    /// because `input` often arrives as a JSON string with escaped quotes.
    pub max_json_bytes: usize,
    /// `project_id` shown on every entry (there is no authentication yet).
    pub project_id: String,
    /// The deployment's home cloud (`BORA_HOME_AUTH_URL`): legacy-mode
    /// executions act on it with the caller's `X-Auth-Token`.
    pub home_auth_url: Option<String>,
    /// May a request leave work running after its answer? True for `bora
    /// serve`. False behind API Gateway: a Lambda instance is frozen once
    /// it answered, so an action run on its own with `save_result` runs
    /// before the answer instead (and the answer shows its end state).
    pub background_work: bool,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            max_definition_bytes: crate::workflow::MAX_DEFINITION_BYTES,
            max_json_bytes: 512 * 1024,
            project_id: DEFAULT_PROJECT_ID.into(),
            home_auth_url: std::env::var("BORA_HOME_AUTH_URL")
                .ok()
                .filter(|u| !u.is_empty()),
            background_work: true,
        }
    }
}

/// What every route needs.
#[derive(Clone)]
pub struct ApiState {
    pub deps: Arc<Deps>,
    pub catalog: Arc<dyn Catalog>,
    pub settings: Arc<ApiSettings>,
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/v2", get(v2_redirect))
        .route("/v2/", get(v2))
        .merge(definitions::routes())
        .merge(executions::routes())
        .merge(environments::routes())
        .fallback(unknown_route)
        .with_state(state)
}

/// Serve the API and run the workers on an embedded database until
/// `shutdown` completes; then stop accepting requests, let the requests in
/// flight finish, and stop the workers.
pub async fn serve(
    listener: TcpListener,
    embedded: &Embedded,
    workers: WorkerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = ApiState {
        deps: embedded.deps.clone(),
        catalog: Arc::new(embedded.store.clone()),
        settings: Arc::new(ApiSettings::default()),
    };
    let (stop_workers, stopped) = watch::channel(false);
    let worker_loop = tokio::spawn(worker::run(embedded.deps.clone(), workers, stopped));
    let result = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop_workers.send(true);
    let _ = worker_loop.await;
    result
}

/// `http://host` as the client addressed us, for links; `https` when a
/// proxy in front (API Gateway, a load balancer) says the client used it.
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let header = |name: &str| headers.get(name).and_then(|h| h.to_str().ok());
    let host = header(header::HOST.as_str()).unwrap_or("localhost");
    let scheme = match header("x-forwarded-proto") {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

/// A JSON answer as Mistral's JSON endpoints send it.
pub(crate) fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A JSON answer as Mistral's text-body endpoints send it.
pub(crate) fn text_endpoint_response(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

async fn root(headers: HeaderMap) -> Response {
    json_response(
        StatusCode::OK,
        json!({"versions": [{
            "id": "v2.0",
            "status": "CURRENT",
            "links": [{"href": format!("{}/v2", base_url(&headers)), "target": "v2", "rel": "self"}],
        }]}),
    )
}

async fn v2_redirect(headers: HeaderMap) -> Response {
    let location = format!("{}/v2/", base_url(&headers));
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

async fn v2(headers: HeaderMap) -> Response {
    json_response(
        StatusCode::OK,
        json!({"uri": format!("{}/v2", base_url(&headers))}),
    )
}

async fn unknown_route(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route {method} {}", uri.path()))
}

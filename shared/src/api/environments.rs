//! Environments: named sets of variables an execution can take as
//! `params.env` by name.

use super::error::{ApiError, ApiResult};
use super::request::{ListParams, object_field, query_pairs, read_json, string_field};
use super::resources::{self, EnvironmentView};
use super::{ApiState, base_url, json_response};
use crate::handlers::new_id;
use crate::store::catalog::Environment;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v2/environments", get(list).post(create).put(update))
        .route("/v2/environments/{name}", get(get_one).delete(delete))
}

fn scope_of(body: &serde_json::Map<String, Value>) -> ApiResult<Option<String>> {
    match string_field(body, "scope")? {
        None => Ok(None),
        Some(s) if s == "private" || s == "public" => Ok(Some(s)),
        Some(other) => Err(ApiError::bad_request(format!(
            "scope: must be 'private' or 'public', got '{other}'"
        ))),
    }
}

async fn create(State(state): State<ApiState>, body: Body) -> ApiResult<Response> {
    let body = read_json(body, state.settings.max_json_bytes).await?;
    let Some(name) = string_field(&body, "name")?.filter(|n| !n.is_empty()) else {
        return Err(ApiError::bad_request("name: an environment needs a name"));
    };
    let environment = Environment {
        id: new_id(),
        name,
        description: string_field(&body, "description")?.unwrap_or_default(),
        variables: object_field(&body, "variables")?.unwrap_or_else(|| json!({})),
        scope: scope_of(&body)?.unwrap_or_else(|| "private".into()),
        project_id: state.settings.project_id.clone(),
        created_at: state.deps.now(),
        updated_at: None,
    };
    state.catalog.insert_environment(&environment).await?;
    Ok(json_response(
        StatusCode::CREATED,
        resources::environment(&environment, EnvironmentView::Created),
    ))
}

async fn update(State(state): State<ApiState>, body: Body) -> ApiResult<Response> {
    let body = read_json(body, state.settings.max_json_bytes).await?;
    let Some(name) = string_field(&body, "name")? else {
        return Err(ApiError::bad_request(
            "name: the environment to update is named by 'name' in the body",
        ));
    };
    let mut environment = state.catalog.get_environment(&name).await?;
    if let Some(d) = string_field(&body, "description")? {
        environment.description = d;
    }
    if let Some(v) = object_field(&body, "variables")? {
        environment.variables = v;
    }
    if let Some(s) = scope_of(&body)? {
        environment.scope = s;
    }
    environment.updated_at = Some(state.deps.now());
    state.catalog.update_environment(&environment).await?;
    Ok(json_response(
        StatusCode::OK,
        resources::environment(&environment, EnvironmentView::Full),
    ))
}

async fn list(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let pairs = query_pairs(raw.as_deref());
    let params = ListParams::parse(&pairs, "created_at", &["name", "scope"])?;
    let rows = state.catalog.list_environments(&params.query).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|e| params.select(resources::environment(e, EnvironmentView::Listed)))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        params.page(
            "environments",
            items,
            &base_url(&headers),
            "/v2/environments",
            rows.len(),
            rows.last().map(|e| e.id.as_str()),
        ),
    ))
}

async fn get_one(State(state): State<ApiState>, Path(name): Path<String>) -> ApiResult<Response> {
    let e = state.catalog.get_environment(&name).await?;
    Ok(json_response(
        StatusCode::OK,
        resources::environment(&e, EnvironmentView::Full),
    ))
}

async fn delete(State(state): State<ApiState>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    state.catalog.delete_environment(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

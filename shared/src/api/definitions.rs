//! Workflows, workbooks and ad-hoc actions: YAML text in, registered
//! entries out. A definition is parsed and its references checked before
//! anything is stored; its text becomes an immutable snapshot in the store
//! and the catalog points the names at it.

use super::error::{ApiError, ApiResult};
use super::request::{ListParams, query_pairs, query_param, read_text};
use super::resources::{self, WorkflowView};
use super::{ApiState, base_url, json_response, text_endpoint_response};
use crate::handlers::new_id;
use crate::store::catalog::{AdHocAction, ListQuery, Workbook, WorkflowDefinition};
use crate::workflow::{self, Document};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashSet;

pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/v2/workflows",
            get(list_workflows)
                .post(create_workflows)
                .put(update_workflows),
        )
        .route("/v2/workflows/validate", post(validate_workflows))
        .route(
            "/v2/workflows/{identifier}",
            get(get_workflow).delete(delete_workflow),
        )
        .route(
            "/v2/workbooks",
            get(list_workbooks)
                .post(create_workbook)
                .put(update_workbook),
        )
        .route("/v2/workbooks/validate", post(validate_workbook))
        .route(
            "/v2/workbooks/{name}",
            get(get_workbook).delete(delete_workbook),
        )
        .route(
            "/v2/actions",
            get(list_actions).post(create_actions).put(update_actions),
        )
        .route("/v2/actions/validate", post(validate_actions))
        .route(
            "/v2/actions/{identifier}",
            get(get_action).delete(delete_action),
        )
}

fn namespace(pairs: &[(String, String)]) -> String {
    query_param(pairs, "namespace").unwrap_or("").to_string()
}

fn scope(pairs: &[(String, String)]) -> ApiResult<String> {
    match query_param(pairs, "scope").unwrap_or("private") {
        s @ ("private" | "public") => Ok(s.to_string()),
        other => Err(ApiError::bad_request(format!(
            "scope: must be 'private' or 'public', got '{other}'"
        ))
        .text()),
    }
}

/// Parse a definition and check what it references: actions known to the
/// registry or registered ad-hoc, workflows in the document or registered.
async fn parse_checked(state: &ApiState, text: &str, namespace: &str) -> Result<Document, String> {
    let doc = workflow::parse_document(text).map_err(|e| format!("Invalid DSL: {e}"))?;
    let everything = ListQuery::default();
    let ad_hoc: HashSet<String> = state
        .catalog
        .list_actions(&everything)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|a| a.namespace == namespace)
        .map(|a| a.name)
        .collect();
    let workflows: HashSet<String> = state
        .catalog
        .list_workflows(&everything)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|w| w.namespace == namespace)
        .map(|w| w.name)
        .collect();
    let actions = &state.deps.actions;
    workflow::check_references(
        &doc,
        &|name| actions.get(name).is_some() || ad_hoc.contains(name),
        &|name| workflows.contains(name),
    )
    .map_err(|e| format!("Invalid DSL: {e}"))?;
    Ok(doc)
}

/// The `output:` keys of a workflow, read from the YAML (the parsed spec
/// keeps compiled expressions, not the keys' order).
fn output_names(text: &str, doc: &Document, full_name: &str) -> Vec<String> {
    let Ok(yaml) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text) else {
        return Vec::new();
    };
    let node = match &doc.workbook_name {
        Some(wb) => {
            let short = full_name
                .strip_prefix(&format!("{wb}."))
                .unwrap_or(full_name);
            yaml.get("workflows").and_then(|w| w.get(short))
        }
        None => yaml.get(full_name),
    };
    node.and_then(|n| n.get("output"))
        .and_then(|o| o.as_mapping())
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn workflow_entries(
    state: &ApiState,
    doc: &Document,
    text: &str,
    key: &str,
    namespace: &str,
    scope: &str,
) -> Vec<WorkflowDefinition> {
    let now = state.deps.now();
    doc.workflows
        .iter()
        .map(|w| WorkflowDefinition {
            id: new_id(),
            name: w.name.clone(),
            namespace: namespace.to_string(),
            scope: scope.to_string(),
            project_id: state.settings.project_id.clone(),
            definition: text.to_string(),
            definition_key: key.to_string(),
            input: resources::input_summary(&w.input),
            interface: json!({
                "input": resources::interface_input(&w.input),
                "output": output_names(text, doc, &w.name),
            }),
            checksum: if doc.workbook_name.is_some() {
                None
            } else {
                Some(crate::api::definitions::checksum(text))
            },
            tags: w.tags.clone(),
            workbook: doc.workbook_name.clone(),
            created_at: now,
            updated_at: None,
        })
        .collect()
}

/// Mistral shows an MD5 of the definition; bora's is a name-based UUID of
/// the text without dashes: also 32 hex digits, also stable per text.
pub(crate) fn checksum(text: &str) -> String {
    crate::handlers::definition_key(text).replace('-', "")
}

fn ad_hoc_entries(
    state: &ApiState,
    doc_actions: &[workflow::AdHocActionSpec],
    text: &str,
    namespace: &str,
    scope: &str,
    workbook: Option<&str>,
) -> Vec<AdHocAction> {
    let now = state.deps.now();
    doc_actions
        .iter()
        .map(|a| AdHocAction {
            id: new_id(),
            name: a.name.clone(),
            namespace: namespace.to_string(),
            scope: scope.to_string(),
            project_id: state.settings.project_id.clone(),
            definition: text.to_string(),
            input: resources::input_summary(&a.input),
            description: a.description.clone().unwrap_or_default(),
            tags: a.tags.clone(),
            workbook: workbook.map(String::from),
            created_at: now,
            updated_at: None,
        })
        .collect()
}

// ------------------------------------------------------------------ workflows

async fn create_workflows(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    put_workflows(state, raw, body, false).await
}

async fn update_workflows(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    put_workflows(state, raw, body, true).await
}

async fn put_workflows(
    state: ApiState,
    raw: Option<String>,
    body: Body,
    replace: bool,
) -> ApiResult<Response> {
    let pairs = query_pairs(raw.as_deref());
    let namespace = namespace(&pairs);
    let scope = scope(&pairs)?;
    let text = read_text(body, state.settings.max_definition_bytes).await?;
    let doc = parse_checked(&state, &text, &namespace)
        .await
        .map_err(|e| ApiError::bad_request(e).text())?;
    if let Some(wb) = &doc.workbook_name {
        return Err(ApiError::bad_request(format!(
            "request body: this is a workbook ('{wb}'); send it to /v2/workbooks"
        ))
        .text());
    }
    let mut entries = workflow_entries(&state, &doc, &text, "", &namespace, &scope);
    // Check names before storing the snapshot, so a rejected request leaves
    // nothing behind.
    for entry in &mut entries {
        match state.catalog.get_workflow(&entry.name, &namespace).await {
            Ok(existing) if replace => {
                entry.id = existing.id;
                entry.created_at = existing.created_at;
                entry.updated_at = Some(state.deps.now());
            }
            Ok(_) => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "Duplicate entry for WorkflowDefinition ['name', 'namespace', 'project_id']: {}, {namespace}, None",
                        entry.name
                    ),
                )
                .text());
            }
            Err(crate::store::CatalogError::NotFound(m)) if replace => {
                return Err(ApiError::not_found(m).text());
            }
            Err(crate::store::CatalogError::NotFound(_)) => {}
            Err(e) => return Err(ApiError::from(e).text()),
        }
    }
    let (key, _) = state
        .deps
        .specs
        .put(state.deps.store.as_ref(), &text)
        .await
        .map_err(|e| ApiError::from(e).text())?;
    for entry in &mut entries {
        entry.definition_key = key.clone();
    }
    let stored = if replace {
        state.catalog.update_workflows(&entries).await
    } else {
        state.catalog.insert_workflows(&entries).await
    };
    stored.map_err(|e| ApiError::from(e).text())?;
    let view = if replace {
        WorkflowView::Updated
    } else {
        WorkflowView::Created
    };
    let items: Vec<Value> = entries
        .iter()
        .map(|w| resources::workflow(w, view))
        .collect();
    Ok(text_endpoint_response(
        if replace {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        },
        json!({ "workflows": items }),
    ))
}

async fn validate(state: &ApiState, raw: Option<String>, body: Body) -> ApiResult<Response> {
    let pairs = query_pairs(raw.as_deref());
    let text = read_text(body, state.settings.max_definition_bytes).await?;
    let answer = match parse_checked(state, &text, &namespace(&pairs)).await {
        Ok(_) => json!({"valid": true}),
        Err(e) => json!({"valid": false, "error": e}),
    };
    Ok(text_endpoint_response(StatusCode::OK, answer))
}

async fn validate_workflows(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    validate(&state, raw, body).await
}

async fn list_workflows(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let pairs = query_pairs(raw.as_deref());
    let params = ListParams::parse(&pairs, "created_at", &["name", "namespace", "scope"])?;
    let rows = state.catalog.list_workflows(&params.query).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|w| params.select(resources::workflow(w, WorkflowView::Read)))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        params.page(
            "workflows",
            items,
            &base_url(&headers),
            "/v2/workflows",
            rows.len(),
            rows.last().map(|w| w.id.as_str()),
        ),
    ))
}

async fn get_workflow(
    State(state): State<ApiState>,
    Path(identifier): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let pairs = query_pairs(raw.as_deref());
    let w = state
        .catalog
        .get_workflow(&identifier, &namespace(&pairs))
        .await?;
    Ok(json_response(
        StatusCode::OK,
        resources::workflow(&w, WorkflowView::Read),
    ))
}

async fn delete_workflow(
    State(state): State<ApiState>,
    Path(identifier): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<StatusCode> {
    let pairs = query_pairs(raw.as_deref());
    state
        .catalog
        .delete_workflow(&identifier, &namespace(&pairs))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------ workbooks

async fn create_workbook(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    put_workbook(state, raw, body, false).await
}

async fn update_workbook(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    put_workbook(state, raw, body, true).await
}

async fn put_workbook(
    state: ApiState,
    raw: Option<String>,
    body: Body,
    replace: bool,
) -> ApiResult<Response> {
    let pairs = query_pairs(raw.as_deref());
    let namespace = namespace(&pairs);
    let scope = scope(&pairs)?;
    let text = read_text(body, state.settings.max_definition_bytes).await?;
    let doc = parse_checked(&state, &text, &namespace)
        .await
        .map_err(|e| ApiError::bad_request(e).text())?;
    let Some(name) = doc.workbook_name.clone() else {
        return Err(ApiError::bad_request(
            "request body: a workbook needs a 'name' (this looks like plain workflows; send them to /v2/workflows)",
        )
        .text());
    };
    let now = state.deps.now();
    let mut workbook = Workbook {
        id: new_id(),
        name: name.clone(),
        namespace: namespace.clone(),
        scope: scope.clone(),
        project_id: state.settings.project_id.clone(),
        definition: text.clone(),
        tags: doc.tags.clone(),
        created_at: now,
        updated_at: None,
    };
    match state.catalog.get_workbook(&name, &namespace).await {
        Ok(existing) if replace => {
            workbook.id = existing.id;
            workbook.created_at = existing.created_at;
            workbook.updated_at = Some(now);
        }
        Ok(_) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "Duplicate entry for Workbook ['name', 'namespace', 'project_id']: {name}, {namespace}, None"
                ),
            )
            .text());
        }
        Err(crate::store::CatalogError::NotFound(m)) if replace => {
            return Err(ApiError::not_found(m).text());
        }
        Err(crate::store::CatalogError::NotFound(_)) => {}
        Err(e) => return Err(ApiError::from(e).text()),
    }
    let (key, _) = state
        .deps
        .specs
        .put(state.deps.store.as_ref(), &text)
        .await
        .map_err(|e| ApiError::from(e).text())?;
    let workflows = workflow_entries(&state, &doc, &text, &key, &namespace, &scope);
    let actions = ad_hoc_entries(&state, &doc.actions, &text, &namespace, &scope, Some(&name));
    state
        .catalog
        .put_workbook(&workbook, &workflows, &actions, replace)
        .await
        .map_err(|e| ApiError::from(e).text())?;
    Ok(text_endpoint_response(
        if replace {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        },
        resources::workbook(&workbook, replace),
    ))
}

async fn validate_workbook(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    validate(&state, raw, body).await
}

async fn list_workbooks(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let pairs = query_pairs(raw.as_deref());
    let params = ListParams::parse(&pairs, "created_at", &["name", "namespace", "scope"])?;
    let rows = state.catalog.list_workbooks(&params.query).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|w| params.select(resources::workbook(w, true)))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        params.page(
            "workbooks",
            items,
            &base_url(&headers),
            "/v2/workbooks",
            rows.len(),
            rows.last().map(|w| w.id.as_str()),
        ),
    ))
}

async fn get_workbook(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let pairs = query_pairs(raw.as_deref());
    let w = state
        .catalog
        .get_workbook(&name, &namespace(&pairs))
        .await?;
    Ok(json_response(StatusCode::OK, resources::workbook(&w, true)))
}

async fn delete_workbook(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<StatusCode> {
    let pairs = query_pairs(raw.as_deref());
    state
        .catalog
        .delete_workbook(&name, &namespace(&pairs))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// -------------------------------------------------------------------- actions

async fn create_actions(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    put_actions(state, raw, body, false).await
}

async fn update_actions(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    put_actions(state, raw, body, true).await
}

/// Parse an actions document and check the base of each action.
async fn parse_actions_checked(
    state: &ApiState,
    text: &str,
    namespace: &str,
) -> Result<Vec<workflow::AdHocActionSpec>, String> {
    let specs = workflow::parse_actions(text).map_err(|e| format!("Invalid DSL: {e}"))?;
    let ad_hoc: HashSet<String> = state
        .catalog
        .list_actions(&ListQuery::default())
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|a| a.namespace == namespace)
        .map(|a| a.name)
        .collect();
    let doc = Document {
        workbook_name: None,
        description: None,
        tags: Vec::new(),
        workflows: Vec::new(),
        actions: specs.clone(),
    };
    let actions = &state.deps.actions;
    workflow::check_references(
        &doc,
        &|name| actions.get(name).is_some() || ad_hoc.contains(name),
        &|_| false,
    )
    .map_err(|e| format!("Invalid DSL: {e}"))?;
    Ok(specs)
}

async fn put_actions(
    state: ApiState,
    raw: Option<String>,
    body: Body,
    replace: bool,
) -> ApiResult<Response> {
    let pairs = query_pairs(raw.as_deref());
    let namespace = namespace(&pairs);
    let scope = scope(&pairs)?;
    let text = read_text(body, state.settings.max_definition_bytes).await?;
    let specs = parse_actions_checked(&state, &text, &namespace)
        .await
        .map_err(|e| ApiError::bad_request(e).text())?;
    let mut entries = ad_hoc_entries(&state, &specs, &text, &namespace, &scope, None);
    for entry in &mut entries {
        if state.deps.actions.get(&entry.name).is_some() {
            return Err(ApiError::bad_request(format!(
                "request body: '{}' is a built-in action and cannot be redefined",
                entry.name
            ))
            .text());
        }
        match state.catalog.get_action(&entry.name, &namespace).await {
            Ok(existing) if replace => {
                entry.id = existing.id;
                entry.created_at = existing.created_at;
                entry.updated_at = Some(state.deps.now());
            }
            Ok(_) => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "Duplicate entry for Action ['name', 'namespace', 'project_id']: {}, {namespace}, None",
                        entry.name
                    ),
                )
                .text());
            }
            Err(crate::store::CatalogError::NotFound(m)) if replace => {
                return Err(ApiError::not_found(m).text());
            }
            Err(crate::store::CatalogError::NotFound(_)) => {}
            Err(e) => return Err(ApiError::from(e).text()),
        }
    }
    let stored = if replace {
        state.catalog.update_actions(&entries).await
    } else {
        state.catalog.insert_actions(&entries).await
    };
    stored.map_err(|e| ApiError::from(e).text())?;
    let items: Vec<Value> = entries.iter().map(resources::ad_hoc_action).collect();
    Ok(text_endpoint_response(
        if replace {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        },
        json!({ "actions": items }),
    ))
}

async fn validate_actions(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    let pairs = query_pairs(raw.as_deref());
    let text = read_text(body, state.settings.max_definition_bytes).await?;
    let answer = match parse_actions_checked(&state, &text, &namespace(&pairs)).await {
        Ok(_) => json!({"valid": true}),
        Err(e) => json!({"valid": false, "error": e}),
    };
    Ok(text_endpoint_response(StatusCode::OK, answer))
}

/// Built-in and ad-hoc actions together, sorted and paged in memory: the
/// built-in ones are not rows of any table.
async fn list_actions(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let pairs = query_pairs(raw.as_deref());
    let params = ListParams::parse(&pairs, "name", &["name", "namespace", "scope"])?;
    let mut items: Vec<Value> = state
        .deps
        .actions
        .list()
        .iter()
        .map(resources::std_action)
        .collect();
    items.extend(
        state
            .catalog
            .list_actions(&ListQuery::default())
            .await?
            .iter()
            .map(resources::ad_hoc_action),
    );
    items.retain(|item| {
        params.query.filters.iter().all(|(k, v)| {
            item.get(k)
                .map(|x| x.as_str().unwrap_or_default() == v)
                .unwrap_or(false)
        })
    });
    let sort = params.query.sort.clone();
    items.sort_by(|a, b| {
        for (key, dir) in &sort {
            let x = a.get(key).map(|v| v.to_string()).unwrap_or_default();
            let y = b.get(key).map(|v| v.to_string()).unwrap_or_default();
            let ord = match dir {
                crate::store::catalog::SortDir::Asc => x.cmp(&y),
                crate::store::catalog::SortDir::Desc => y.cmp(&x),
            };
            if ord.is_ne() {
                return ord;
            }
        }
        std::cmp::Ordering::Equal
    });
    if let Some(marker) = &params.query.marker {
        let Some(pos) = items.iter().position(|i| i["id"] == json!(marker)) else {
            return Err(ApiError::bad_request(format!(
                "marker: no action with id '{marker}'"
            )));
        };
        items.drain(..=pos);
    }
    if let Some(limit) = params.query.limit {
        items.truncate(limit);
    }
    let last = items
        .last()
        .and_then(|i| i["id"].as_str())
        .map(String::from);
    let count = items.len();
    let items: Vec<Value> = items.into_iter().map(|i| params.select(i)).collect();
    Ok(json_response(
        StatusCode::OK,
        params.page(
            "actions",
            items,
            &base_url(&headers),
            "/v2/actions",
            count,
            last.as_deref(),
        ),
    ))
}

async fn get_action(
    State(state): State<ApiState>,
    Path(identifier): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    if let Some(info) = state.deps.actions.get(&identifier) {
        return Ok(json_response(StatusCode::OK, resources::std_action(info)));
    }
    let pairs = query_pairs(raw.as_deref());
    let a = state
        .catalog
        .get_action(&identifier, &namespace(&pairs))
        .await?;
    Ok(json_response(StatusCode::OK, resources::ad_hoc_action(&a)))
}

async fn delete_action(
    State(state): State<ApiState>,
    Path(identifier): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<StatusCode> {
    if state.deps.actions.get(&identifier).is_some() {
        return Err(ApiError::bad_request(format!(
            "'{identifier}' is a built-in action and cannot be deleted"
        )));
    }
    let pairs = query_pairs(raw.as_deref());
    state
        .catalog
        .delete_action(&identifier, &namespace(&pairs))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

//! Executions, task executions and action executions: start, read, list,
//! change state, deliver async results, run an action on its own.

use super::error::{ApiError, ApiResult};
use super::request::{
    ListParams, kind, object_field, query_pairs, query_param, read_json, string_field,
};
use super::resources::{self, ActionView, ExecutionView};
use super::{ApiState, base_url, json_response};
use crate::actions::{ActionContext, ActionOutcome};
use crate::engine::states::{ActionState, ExecutionState, TaskState};
use crate::handlers::{self, CreateExecution, control};
use crate::secret::Secret;
use crate::store::{ActionRecord, CatalogError, ExecutionRecord, TaskRecord, Write};
use crate::target::TargetCloud;
use crate::target::headers::parse_target_headers;
use crate::workflow::{self, Document, TaskAction};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/v2/executions",
            get(list_executions).post(create_execution),
        )
        .route(
            "/v2/executions/{id}",
            get(get_execution)
                .put(update_execution)
                .delete(delete_execution),
        )
        .route("/v2/executions/{id}/tasks", get(list_tasks_of_execution))
        .route("/v2/executions/{id}/report", get(report))
        .route("/v2/tasks", get(list_tasks))
        .route("/v2/tasks/{id}", get(get_task).put(update_task))
        .route(
            "/v2/tasks/{id}/action_executions",
            get(list_actions_of_task),
        )
        .route(
            "/v2/action_executions",
            get(list_action_executions).post(run_action),
        )
        .route(
            "/v2/action_executions/{id}",
            get(get_action_execution).put(update_action_execution),
        )
}

fn execution_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("WorkflowExecution not found [id={id}]"))
}

async fn load_execution(state: &ApiState, id: &str) -> ApiResult<ExecutionRecord> {
    match state.deps.store.get_execution(id).await {
        Ok(e) => Ok(e),
        Err(crate::store::StoreError::NotFound(_)) => Err(execution_not_found(id)),
        Err(e) => Err(e.into()),
    }
}

/// Sub-workflow executions are started from the parent's definition
/// snapshot, so their record has no `workflow_id`; Mistral shows the id of
/// the workflow, so look it up by name (`ids` caches the answers of one
/// request). A workflow deleted since keeps `null`.
async fn fill_workflow_id(
    state: &ApiState,
    execution: &mut ExecutionRecord,
    ids: &mut HashMap<(String, String), Option<String>>,
) -> ApiResult<()> {
    if execution.workflow_id.is_some() {
        return Ok(());
    }
    let key = (
        execution.workflow_name.clone(),
        execution.workflow_namespace.clone(),
    );
    if !ids.contains_key(&key) {
        let id = match state.catalog.get_workflow(&key.0, &key.1).await {
            Ok(w) => Some(w.id),
            Err(CatalogError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        ids.insert(key.clone(), id);
    }
    execution.workflow_id = ids[&key].clone();
    Ok(())
}

// ----------------------------------------------------------------- executions

async fn create_execution(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    // The target cloud first: a partial or malformed X-Target-* set is a
    // 400 naming the header, before anything else is looked at or stored.
    let target = parse_target_headers(
        headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))),
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let target = match target {
        Some(t) => Some(t),
        None => home_cloud(&state, &headers),
    };
    let body = read_json(body, state.settings.max_json_bytes).await?;
    let workflow_id = string_field(&body, "workflow_id")?.filter(|s| !s.is_empty());
    let workflow_name = string_field(&body, "workflow_name")?.filter(|s| !s.is_empty());
    let input = object_field(&body, "input")?.unwrap_or_else(|| json!({}));
    let mut params = match object_field(&body, "params")? {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let namespace = match (
        string_field(&body, "workflow_namespace")?,
        params.get("namespace"),
    ) {
        (Some(ns), _) => ns,
        (None, Some(Value::String(ns))) => ns.clone(),
        (None, None | Some(Value::Null)) => String::new(),
        (None, Some(other)) => {
            return Err(ApiError::bad_request(format!(
                "params.namespace: must be a string, got {}",
                kind(other)
            )));
        }
    };
    // `env` may name a stored environment: the execution keeps a copy of
    // its variables, so a later change of the environment does not reach it.
    match params.get("env") {
        None | Some(Value::Null) | Some(Value::Object(_)) => {}
        Some(Value::String(name)) => {
            let environment = match state.catalog.get_environment(name).await {
                Ok(e) => e,
                Err(CatalogError::NotFound(m)) => {
                    return Err(ApiError::bad_request(format!("params.env: {m}")));
                }
                Err(e) => return Err(e.into()),
            };
            params.insert("env".into(), environment.variables);
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "params.env: must be an object or the name of an environment, got {}",
                kind(other)
            )));
        }
    }
    let identifier = match (&workflow_id, &workflow_name) {
        (Some(id), _) => id.clone(),
        (None, Some(name)) => name.clone(),
        (None, None) => {
            return Err(ApiError::bad_request(
                "Workflow ID or workflow name must be provided. Workflow ID is recommended.",
            ));
        }
    };
    let definition = state.catalog.get_workflow(&identifier, &namespace).await?;
    if let (Some(name), Some(_)) = (&workflow_name, &workflow_id)
        && *name != definition.name
    {
        return Err(ApiError::bad_request(format!(
            "workflow_name: '{name}' is not the name of workflow_id {} ('{}')",
            definition.id, definition.name
        )));
    }
    let execution = handlers::create_execution(
        &state.deps,
        CreateExecution {
            id: string_field(&body, "id")?.filter(|s| !s.is_empty()),
            definition_key: definition.definition_key.clone(),
            workflow_name: definition.name.clone(),
            workflow_id: Some(definition.id.clone()),
            namespace,
            description: string_field(&body, "description")?.unwrap_or_default(),
            input,
            params: Value::Object(params),
            project_id: state.settings.project_id.clone(),
            target,
        },
    )
    .await?;
    Ok(json_response(
        StatusCode::CREATED,
        resources::execution(&execution, ExecutionView::Written),
    ))
}

/// Legacy mode: without `X-Target-*` headers, OpenStack actions act on the
/// deployment's home cloud (`BORA_HOME_AUTH_URL`) with the caller's own
/// `X-Auth-Token`, when both are there.
fn home_cloud(state: &ApiState, headers: &HeaderMap) -> Option<TargetCloud> {
    let auth_url = state.settings.home_auth_url.clone()?;
    let token = headers.get("x-auth-token")?.to_str().ok()?;
    Some(TargetCloud {
        auth_url,
        token: Secret::new(token),
        ca_pem: None,
        insecure: false,
        catalog: None,
        region: None,
        project_id: None,
        user_id: None,
        user_name: None,
        user_domain_name: None,
        project_domain_name: None,
    })
}

async fn get_execution(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let mut execution = load_execution(&state, &id).await?;
    fill_workflow_id(&state, &mut execution, &mut HashMap::new()).await?;
    Ok(json_response(
        StatusCode::OK,
        resources::execution(&execution, ExecutionView::Full),
    ))
}

async fn list_executions(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let pairs = query_pairs(raw.as_deref());
    let params = ListParams::parse(
        &pairs,
        "created_at",
        &[
            "workflow_name",
            "workflow_id",
            "state",
            "task_execution_id",
            "root_execution_id",
            "workflow_namespace",
        ],
    )?;
    let ids = state.catalog.list_execution_ids(&params.query).await?;
    let mut items = Vec::with_capacity(ids.len());
    let mut workflow_ids = HashMap::new();
    for id in &ids {
        match state.deps.store.get_execution(id).await {
            Ok(mut e) => {
                fill_workflow_id(&state, &mut e, &mut workflow_ids).await?;
                items.push(params.select(resources::execution(&e, ExecutionView::Listed)));
            }
            // Deleted between the two reads.
            Err(crate::store::StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(json_response(
        StatusCode::OK,
        params.page(
            "executions",
            items,
            &base_url(&headers),
            "/v2/executions",
            ids.len(),
            ids.last().map(String::as_str),
        ),
    ))
}

async fn update_execution(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let body = read_json(body, state.settings.max_json_bytes).await?;
    let execution = load_execution(&state, &id).await?;
    let new_state = string_field(&body, "state")?;
    let description = string_field(&body, "description")?;
    let state_info = string_field(&body, "state_info")?;
    let params = object_field(&body, "params")?;
    if new_state.is_some() && description.is_some() {
        return Err(ApiError::bad_request(
            "The property description must be updated separately from state.",
        ));
    }
    if let Some(description) = description {
        let mut execution = execution;
        loop {
            execution.description = description.clone();
            execution.updated_at = state.deps.now();
            match state
                .deps
                .store
                .commit(vec![Write::UpdateExecution(execution.clone())])
                .await
            {
                Ok(()) => break,
                Err(crate::store::StoreError::Conflict(_)) => {
                    execution = load_execution(&state, &id).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut execution = load_execution(&state, &id).await?;
        fill_workflow_id(&state, &mut execution, &mut HashMap::new()).await?;
        return Ok(json_response(
            StatusCode::OK,
            resources::execution(&execution, ExecutionView::Written),
        ));
    }
    let Some(new_state) = new_state else {
        return Err(ApiError::bad_request(
            "state: nothing to update; give 'state' (with optional 'state_info') or 'description'",
        ));
    };
    let allowed = "RUNNING, PAUSED, SUCCESS, ERROR, CANCELLED";
    let to: ExecutionState = match new_state.parse() {
        Ok(s) if s != ExecutionState::Idle => s,
        _ => {
            return Err(ApiError::bad_request(format!(
                "state: Cannot change state to {new_state}. Allowed states are: '{allowed}'"
            )));
        }
    };
    let env = match params.as_ref().and_then(|p| p.get("env")) {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "params.env: must be an object, got {}",
                kind(other)
            )));
        }
    };
    let mut updated =
        control::change_execution_state(&state.deps, &id, to, state_info, env).await?;
    fill_workflow_id(&state, &mut updated, &mut HashMap::new()).await?;
    Ok(json_response(
        StatusCode::OK,
        resources::execution(&updated, ExecutionView::Written),
    ))
}

async fn delete_execution(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<StatusCode> {
    let pairs = query_pairs(raw.as_deref());
    let force = matches!(query_param(&pairs, "force"), Some("true" | "True" | "1"));
    let execution = load_execution(&state, &id).await?;
    if !execution.state.is_terminal() && !force {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "Only completed executions can be deleted. Use --force to override this. Execution {id} is in {} state",
                execution.state
            ),
        ));
    }
    // A forced delete of a running execution: the workers find its records
    // gone and drop their messages.
    state.catalog.delete_execution(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn report(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    let execution = load_execution(&state, &id).await?;
    let tasks = state.deps.store.list_tasks(&id).await?;
    let count = |s: TaskState| tasks.iter().filter(|t| t.state == s).count();
    let doc = state
        .deps
        .specs
        .get(state.deps.store.as_ref(), &execution.definition_key)
        .await?;
    let mut task_items = Vec::new();
    for t in &tasks {
        let mut actions = Vec::new();
        let mut children = Vec::new();
        for a in state.deps.store.list_actions(&t.id).await? {
            if let Some(child) = &a.child_execution_id {
                children.push(json!(child));
                continue;
            }
            actions.push(json!({
                "accepted": a.state.is_terminal(),
                "last_heartbeat": null,
                "id": a.id,
                "name": a.name,
                "created_at": crate::time::format(a.created_at),
                "updated_at": crate::time::format(a.updated_at),
                "state": a.state.as_str(),
                "state_info": a.state_info,
            }));
        }
        task_items.push(json!({
            "action_executions": actions,
            "workflow_executions": children,
            "id": t.id,
            "name": t.name,
            "created_at": crate::time::format(t.created_at),
            "updated_at": crate::time::format(t.updated_at),
            "state": t.state.as_str(),
            "state_info": t.state_info,
            // bora's additions, for `bora execution-report`.
            "started_at": t.started_at.map(crate::time::format),
            "finished_at": t.finished_at.map(crate::time::format),
            "triggered_by": triggered_by(&doc, &tasks, t),
        }));
    }
    Ok(json_response(
        StatusCode::OK,
        json!({
            "statistics": {
                "total_tasks_count": tasks.len(),
                "running_tasks_count": count(TaskState::Running) + count(TaskState::RunningDelayed),
                "success_tasks_count": count(TaskState::Success),
                "error_tasks_count": count(TaskState::Error),
                "idle_tasks_count": count(TaskState::Idle) + count(TaskState::Waiting),
                "paused_tasks_count": count(TaskState::Paused),
                "estimated_time": null,
            },
            "root_workflow_execution": {
                "id": execution.id,
                "name": execution.workflow_name,
                "created_at": crate::time::format(execution.created_at),
                "updated_at": crate::time::format(execution.updated_at),
                "state": execution.state.as_str(),
                "state_info": execution.state_info,
                "task_executions": task_items,
            },
        }),
    ))
}

/// The ids of the task executions that started `task`: for each task of
/// the same execution whose `on-success`/`on-error`/`on-complete` (the one
/// matching how it ended) names `task`, the latest run of it that finished
/// before `task` was created. Several for a join; none for a start task.
fn triggered_by(doc: &Document, tasks: &[TaskRecord], task: &TaskRecord) -> Vec<String> {
    let names_target = |clause: &Option<workflow::OnClause>| {
        clause.as_ref().is_some_and(|c| {
            c.next.iter().any(|n| {
                matches!(&n.target, workflow::TransitionTarget::Task(name) if *name == task.name)
            })
        })
    };
    let mut latest: HashMap<&str, &TaskRecord> = HashMap::new();
    for source in tasks {
        let Some(finished_at) = source.finished_at else {
            continue;
        };
        if source.id == task.id || finished_at > task.created_at {
            continue;
        }
        let Some(spec) = doc
            .workflow(&source.workflow_name)
            .and_then(|w| w.task(&source.name))
        else {
            continue;
        };
        let leads_here = names_target(&spec.on_complete)
            || match source.state {
                TaskState::Success => names_target(&spec.on_success),
                TaskState::Error => names_target(&spec.on_error),
                _ => false,
            };
        if !leads_here {
            continue;
        }
        let newer = latest
            .get(source.name.as_str())
            .is_none_or(|seen| seen.finished_at < source.finished_at);
        if newer {
            latest.insert(&source.name, source);
        }
    }
    let mut sources: Vec<&TaskRecord> = latest.into_values().collect();
    sources.sort_by_key(|s| (s.finished_at, s.id.clone()));
    sources.into_iter().map(|s| s.id.clone()).collect()
}

// ---------------------------------------------------------------------- tasks

/// Renders task executions, reading each execution and definition once.
struct TaskRenderer<'a> {
    state: &'a ApiState,
    executions: HashMap<String, Option<ExecutionRecord>>,
}

impl<'a> TaskRenderer<'a> {
    fn new(state: &'a ApiState) -> Self {
        TaskRenderer {
            state,
            executions: HashMap::new(),
        }
    }

    async fn execution(&mut self, id: &str) -> ApiResult<Option<ExecutionRecord>> {
        if !self.executions.contains_key(id) {
            let e = match self.state.deps.store.get_execution(id).await {
                Ok(e) => Some(e),
                Err(crate::store::StoreError::NotFound(_)) => None,
                Err(e) => return Err(e.into()),
            };
            self.executions.insert(id.to_string(), e);
        }
        Ok(self.executions[id].clone())
    }

    async fn render(&mut self, t: &TaskRecord, with_result: bool) -> ApiResult<Value> {
        let execution = self.execution(&t.execution_id).await?;
        let doc = self
            .state
            .deps
            .specs
            .get(self.state.deps.store.as_ref(), &t.definition_key)
            .await?;
        let kind = match doc
            .workflow(&t.workflow_name)
            .and_then(|w| w.task(&t.name))
            .map(|s| &s.action)
        {
            Some(TaskAction::Workflow { .. }) => "WORKFLOW",
            _ => "ACTION",
        };
        Ok(resources::task(
            t,
            kind,
            execution.as_ref().and_then(|e| e.workflow_id.as_deref()),
            execution
                .as_ref()
                .map(|e| e.workflow_namespace.as_str())
                .unwrap_or(""),
            &self.state.settings.project_id,
            with_result,
        ))
    }
}

async fn load_task(state: &ApiState, id: &str) -> ApiResult<TaskRecord> {
    match state.deps.store.get_task(id).await {
        Ok(t) => Ok(t),
        Err(crate::store::StoreError::NotFound(_)) => Err(ApiError::not_found(format!(
            "Task execution not found [id={id}]"
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn task_list(
    state: &ApiState,
    pairs: Vec<(String, String)>,
    headers: &HeaderMap,
    path: &str,
) -> ApiResult<Response> {
    let params = ListParams::parse(
        &pairs,
        "created_at",
        &["workflow_execution_id", "workflow_name", "name", "state"],
    )?;
    let ids = state.catalog.list_task_ids(&params.query).await?;
    let mut renderer = TaskRenderer::new(state);
    let mut items = Vec::new();
    for id in &ids {
        if let Ok(t) = state.deps.store.get_task(id).await {
            items.push(params.select(renderer.render(&t, false).await?));
        }
    }
    Ok(json_response(
        StatusCode::OK,
        params.page(
            "tasks",
            items,
            &base_url(headers),
            path,
            ids.len(),
            ids.last().map(String::as_str),
        ),
    ))
}

async fn list_tasks(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    task_list(&state, query_pairs(raw.as_deref()), &headers, "/v2/tasks").await
}

async fn list_tasks_of_execution(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    load_execution(&state, &id).await?;
    let mut pairs = query_pairs(raw.as_deref());
    pairs.retain(|(k, _)| k != "workflow_execution_id");
    pairs.push(("workflow_execution_id".into(), id.clone()));
    task_list(
        &state,
        pairs,
        &headers,
        &format!("/v2/executions/{id}/tasks"),
    )
    .await
}

async fn get_task(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    let task = load_task(&state, &id).await?;
    let body = TaskRenderer::new(&state).render(&task, true).await?;
    Ok(json_response(StatusCode::OK, body))
}

/// `PUT /v2/tasks/{id}` with `state: RUNNING` reruns a failed task; with
/// `state: SKIPPED` skips it.
async fn update_task(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let body = read_json(body, state.settings.max_json_bytes).await?;
    load_task(&state, &id).await?;
    match string_field(&body, "state")?.as_deref() {
        Some("RUNNING") => {}
        Some("SKIPPED") => {
            let task = control::skip_task(&state.deps, &id).await?;
            let rendered = TaskRenderer::new(&state).render(&task, true).await?;
            return Ok(json_response(StatusCode::OK, rendered));
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "state: a task can only be set to RUNNING (rerun) or SKIPPED, not {other}"
            )));
        }
        None => {
            return Err(ApiError::bad_request(
                "state: missing; give RUNNING to rerun the task or SKIPPED to skip it",
            ));
        }
    }
    match body.get("reset") {
        None | Some(Value::Bool(true)) | Some(Value::Null) => {}
        Some(Value::Bool(false)) => {
            return Err(ApiError::bad_request(
                "reset: false (rerun only the failed items of a with-items task) is not supported yet; rerun with reset: true",
            ));
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "reset: must be a boolean, got {}",
                kind(other)
            )));
        }
    }
    let env = object_field(&body, "env")?;
    let task = control::rerun_task(&state.deps, &id, env).await?;
    let rendered = TaskRenderer::new(&state).render(&task, true).await?;
    Ok(json_response(StatusCode::OK, rendered))
}

// ---------------------------------------------------------- action executions

async fn load_action(state: &ApiState, id: &str) -> ApiResult<ActionRecord> {
    match state.deps.store.get_action(id).await {
        Ok(a) => Ok(a),
        Err(crate::store::StoreError::NotFound(_)) => Err(ApiError::not_found(format!(
            "ActionExecution not found [id={id}]"
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn render_action(state: &ApiState, a: &ActionRecord, view: ActionView) -> ApiResult<Value> {
    let (workflow_name, namespace) = if a.execution_id.is_empty() {
        (None, String::new())
    } else {
        match state.deps.store.get_execution(&a.execution_id).await {
            Ok(e) => (Some(e.workflow_name), e.workflow_namespace),
            Err(_) => (None, String::new()),
        }
    };
    Ok(resources::action_execution(
        a,
        workflow_name.as_deref(),
        &namespace,
        &state.settings.project_id,
        view,
    ))
}

async fn action_list(
    state: &ApiState,
    pairs: Vec<(String, String)>,
    headers: &HeaderMap,
    path: &str,
    view: ActionView,
) -> ApiResult<Response> {
    let params = ListParams::parse(
        &pairs,
        "created_at",
        &[
            "task_execution_id",
            "workflow_execution_id",
            "name",
            "state",
        ],
    )?;
    let ids = state
        .catalog
        .list_action_execution_ids(&params.query)
        .await?;
    let mut items = Vec::new();
    for id in &ids {
        if let Ok(a) = state.deps.store.get_action(id).await {
            items.push(params.select(render_action(state, &a, view).await?));
        }
    }
    Ok(json_response(
        StatusCode::OK,
        params.page(
            "action_executions",
            items,
            &base_url(headers),
            path,
            ids.len(),
            ids.last().map(String::as_str),
        ),
    ))
}

async fn list_action_executions(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    action_list(
        &state,
        query_pairs(raw.as_deref()),
        &headers,
        "/v2/action_executions",
        ActionView::OfTask,
    )
    .await
}

async fn list_actions_of_task(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    load_task(&state, &id).await?;
    let mut pairs = query_pairs(raw.as_deref());
    pairs.retain(|(k, _)| k != "task_execution_id");
    pairs.push(("task_execution_id".into(), id.clone()));
    action_list(
        &state,
        pairs,
        &headers,
        &format!("/v2/tasks/{id}/action_executions"),
        ActionView::OfTask,
    )
    .await
}

async fn get_action_execution(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let a = load_action(&state, &id).await?;
    Ok(json_response(
        StatusCode::OK,
        render_action(&state, &a, ActionView::Full).await?,
    ))
}

/// Deliver an async action's result: `{"state": "SUCCESS", "output": ...}`
/// (output as an object, as mistralclient sends it, or a string of JSON).
async fn update_action_execution(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let body = read_json(body, state.settings.max_json_bytes).await?;
    load_action(&state, &id).await?;
    let Some(new_state) = string_field(&body, "state")? else {
        return Err(ApiError::bad_request(
            "state: missing; give SUCCESS, ERROR or CANCELLED",
        ));
    };
    let to = match new_state.parse::<ActionState>() {
        Ok(s) if s.is_terminal() => s,
        _ => {
            return Err(ApiError::bad_request(format!(
                "state: an action execution can be set to SUCCESS, ERROR or CANCELLED, not {new_state}"
            )));
        }
    };
    // Output: any JSON; a string is taken as JSON text when it parses (what
    // mistralclient sends with --output '...'), else as a plain string.
    let output = match body.get("output") {
        None => Value::Null,
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_else(|_| json!(s)),
        Some(v) => v.clone(),
    };
    let size = serde_json::to_vec(&output).map(|v| v.len()).unwrap_or(0);
    if size > state.deps.settings.max_result_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "output: {size} bytes; the limit is {} bytes",
                state.deps.settings.max_result_bytes
            ),
        ));
    }
    let action = control::complete_action(&state.deps, &id, to, output).await?;
    Ok(json_response(
        StatusCode::OK,
        render_action(&state, &action, ActionView::Full).await?,
    ))
}

/// Run an action on its own (`POST /v2/action_executions`): synchronously
/// with nothing stored, or, with `params.save_result` (or an async action),
/// as a stored action execution that finishes later.
async fn run_action(State(state): State<ApiState>, body: Body) -> ApiResult<Response> {
    let body = read_json(body, state.settings.max_json_bytes).await?;
    let Some(name) = string_field(&body, "name")?.filter(|n| !n.is_empty()) else {
        return Err(ApiError::bad_request("name: the action to run is missing"));
    };
    let input = object_field(&body, "input")?.unwrap_or_else(|| json!({}));
    let params = object_field(&body, "params")?.unwrap_or_else(|| json!({}));
    let save_result = params
        .get("save_result")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // An ad-hoc action runs through a document holding its definition.
    let mut doc = Document {
        workbook_name: None,
        description: None,
        tags: Vec::new(),
        workflows: Vec::new(),
        actions: Vec::new(),
    };
    let is_async = match state.deps.actions.get(&name) {
        Some(info) => info.is_async,
        None => match state.catalog.get_action(&name, "").await {
            Ok(a) => {
                doc.actions = workflow::parse_actions(&a.definition)
                    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
                false
            }
            Err(CatalogError::NotFound(_)) => {
                return Err(ApiError::bad_request(format!(
                    "name: Failed to find action [action_name={name}]"
                )));
            }
            Err(e) => return Err(e.into()),
        },
    };
    if let Some(info) = state.deps.actions.get(&name) {
        let given = input.as_object().cloned().unwrap_or_default();
        state
            .deps
            .actions
            .prepare_input(&info.name, given)
            .map_err(|e| ApiError::bad_request(format!("input: {e}")))?;
    }
    if !save_result && !is_async {
        let outcome = handlers::run_task::run_named(
            &state.deps,
            &doc,
            &name,
            &input,
            &ActionContext::default(),
        )
        .await;
        let (action_state, result) = match outcome {
            ActionOutcome::Success(v) => ("SUCCESS", v),
            ActionOutcome::Error(v) => ("ERROR", v),
            ActionOutcome::Async => ("RUNNING", Value::Null),
        };
        return Ok(json_response(
            StatusCode::CREATED,
            json!({
                "id": null,
                "workflow_name": null,
                "workflow_namespace": "",
                "task_execution_id": null,
                "state": action_state,
                "state_info": null,
                "tags": null,
                "name": name,
                "description": null,
                "project_id": null,
                "accepted": null,
                "input": resources::encoded(&input),
                "output": resources::encoded(&json!({"result": result})),
                "created_at": null,
                "updated_at": null,
            }),
        ));
    }
    let now = state.deps.now();
    let record = ActionRecord {
        id: handlers::new_id(),
        task_execution_id: String::new(),
        execution_id: String::new(),
        task_name: String::new(),
        item_index: 0,
        attempt: 0,
        name: name.clone(),
        state: ActionState::Running,
        state_info: None,
        input: input.clone(),
        output: Value::Null,
        is_async,
        lease_until: None,
        child_execution_id: None,
        counted: false,
        version: 0,
        created_at: now,
        updated_at: now,
    };
    state
        .deps
        .store
        .commit(vec![Write::InsertAction(record.clone())])
        .await?;
    let mut record = record;
    if !is_async {
        // Its result is stored when it ends: in the background where the
        // process outlives the answer, else before answering.
        let deps = state.deps.clone();
        let id = record.id.clone();
        let run = async move {
            let context = ActionContext {
                action_execution_id: id.clone(),
                ..ActionContext::default()
            };
            let outcome = handlers::run_task::run_named(&deps, &doc, &name, &input, &context).await;
            let (to, output) = match outcome {
                ActionOutcome::Success(v) => (ActionState::Success, v),
                ActionOutcome::Error(v) => (ActionState::Error, v),
                ActionOutcome::Async => return,
            };
            if let Err(e) = control::complete_action(&deps, &id, to, output).await {
                tracing::warn!(action_execution_id = %id, error = %e, "could not store the result of an action run on its own");
            }
        };
        if state.settings.background_work {
            tokio::spawn(run);
        } else {
            run.await;
            record = state.deps.store.get_action(&record.id).await?;
        }
    }
    Ok(json_response(
        StatusCode::CREATED,
        render_action(&state, &record, ActionView::Full).await?,
    ))
}

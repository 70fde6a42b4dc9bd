//! create-execution: validate a request, store the execution and its first
//! task executions in one commit, and enqueue them.
//!
//! Nothing is stored when anything is wrong: input, workflow name, a `vars`
//! expression, a reverse workflow without `task_name`.

use super::{Deps, HandlerError, Prefetched, derived_id, new_id};
use crate::engine::{self, states::ExecutionState, states::TaskState};
use crate::queue::Message;
use crate::store::{ExecutionRecord, Millis, ParentRef, TaskRecord, Write};
use crate::target::TargetCloud;
use crate::target::headers::parse_body_target;
use crate::workflow::Document;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// A request to start a workflow.
#[derive(Debug, Clone, Default)]
pub struct CreateExecution {
    /// Client-chosen id (Mistral accepts one): creating twice with the same
    /// id returns the first execution.
    pub id: Option<String>,
    /// Key of the stored definition snapshot to run.
    pub definition_key: String,
    pub workflow_name: String,
    pub workflow_id: Option<String>,
    pub namespace: String,
    pub description: String,
    pub input: Value,
    pub params: Value,
    pub project_id: String,
    /// The cloud this execution's OpenStack actions act on (from the
    /// `X-Target-*` headers); `params.target` in the body form is read by
    /// [`create_execution`] itself. Sealed before it is stored.
    pub target: Option<TargetCloud>,
}

/// Store a new execution and enqueue its start tasks.
pub async fn create_execution(
    deps: &Deps,
    request: CreateExecution,
) -> Result<ExecutionRecord, HandlerError> {
    let input_size = serde_json::to_vec(&request.input)
        .map(|v| v.len())
        .unwrap_or(0);
    if input_size > deps.settings.max_input_bytes {
        return Err(HandlerError::Invalid(format!(
            "input is {input_size} bytes; the limit is {} bytes",
            deps.settings.max_input_bytes
        )));
    }
    if let Some(id) = &request.id
        && let Ok(existing) = deps.store.get_execution(id).await
    {
        return Ok(existing);
    }
    let mut request = request;
    take_body_target(&mut request)?;
    if let Some(target) = &request.target {
        check_target_urls(deps, target).await?;
    }
    let doc = deps
        .specs
        .get(deps.store.as_ref(), &request.definition_key)
        .await?;
    // The id is fixed before sealing: the token is bound to it.
    let id = request.id.get_or_insert_with(new_id).clone();
    let target = match request.target.take() {
        Some(target) => Some(seal_target(deps, &target, &id).await?),
        None => None,
    };
    let prepared = prepare_execution(&doc, request, None, None, target, deps.now())?;
    deps.store.commit(prepared.writes).await?;
    deps.send(prepared.messages, Duration::ZERO).await?;
    Ok(prepared.execution)
}

/// The body form of a target (`params.target`, shaped like a clouds.yaml
/// entry) becomes the request's target; it never stays in `params`.
fn take_body_target(request: &mut CreateExecution) -> Result<(), HandlerError> {
    let Some(params) = request.params.as_object_mut() else {
        return Ok(());
    };
    let Some(body) = params.remove("target") else {
        return Ok(());
    };
    if request.target.is_some() {
        return Err(HandlerError::Invalid(
            "the target cloud is given twice: in X-Target-* headers and in params.target; give one"
                .into(),
        ));
    }
    request.target =
        parse_body_target(Some(&body)).map_err(|e| HandlerError::Invalid(e.to_string()))?;
    Ok(())
}

/// The stored form of the target of a new root execution: its token sealed
/// with a key from the keyring (with KMS: a fresh data key, whose wrapped
/// copy is stored beside the token). A key service that cannot be reached
/// is a retryable error; nothing is stored either way.
async fn seal_target(
    deps: &Deps,
    target: &TargetCloud,
    root_execution_id: &str,
) -> Result<Value, HandlerError> {
    let key = deps.keyring.for_new_root(root_execution_id).await?;
    let sealed = target.seal(&key, root_execution_id)?;
    serde_json::to_value(&sealed).map_err(|e| HandlerError::Invalid(e.to_string()))
}

/// The target's auth URL must pass the outbound policy before anything is
/// stored (a 400 naming the URL, not a task failure later).
async fn check_target_urls(deps: &Deps, target: &TargetCloud) -> Result<(), HandlerError> {
    let url = url::Url::parse(&target.auth_url).map_err(|e| {
        HandlerError::Invalid(format!(
            "target auth URL {} is not a URL: {e}",
            target.auth_url
        ))
    })?;
    deps.policy
        .check(&url)
        .await
        .map_err(|e| HandlerError::Invalid(e.to_string()))?;
    if target.insecure {
        deps.policy
            .check_insecure(&url)
            .map_err(|e| HandlerError::Invalid(e.to_string()))?;
    }
    Ok(())
}

/// An execution ready to be committed: its writes and the messages to send
/// after the commit.
pub(crate) struct PreparedExecution {
    pub execution: ExecutionRecord,
    pub writes: Vec<Write>,
    pub messages: Vec<Message>,
}

/// Build an execution and its start tasks without writing anything. Also
/// used for sub-workflows, whose writes join their parent task's commit.
/// `sealed_target` is the stored form of the target cloud (sealed for the
/// root execution), set as `params.target`: sealing needs the keyring,
/// which may need the network, so it happens before.
pub(crate) fn prepare_execution(
    doc: &Document,
    request: CreateExecution,
    parent: Option<ParentRef>,
    root_execution_id: Option<String>,
    sealed_target: Option<Value>,
    now: Millis,
) -> Result<PreparedExecution, HandlerError> {
    let workflow = doc.workflow(&request.workflow_name).ok_or_else(|| {
        HandlerError::NotFound(format!(
            "Workflow not found [workflow_identifier={}, namespace={}]",
            request.workflow_name, request.namespace
        ))
    })?;
    let input = engine::prepare_input(workflow, &request.input)?;
    let mut params = match &request.params {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        other => {
            return Err(HandlerError::Invalid(format!(
                "params must be a JSON object, got {other}"
            )));
        }
    };
    params
        .entry("namespace")
        .or_insert_with(|| Value::String(request.namespace.clone()));
    params.entry("env").or_insert_with(|| json!({}));
    let id = request.id.clone().unwrap_or_else(new_id);
    if let Some(sealed) = sealed_target {
        // Sealed for the root execution, so sub-workflows (which copy
        // `params.target`) can unseal it too, and no other execution can.
        params.insert("target".into(), sealed);
    }
    let params = Value::Object(params);
    let mut execution = ExecutionRecord {
        id,
        workflow_name: workflow.name.clone(),
        workflow_id: request.workflow_id.clone(),
        workflow_namespace: request.namespace.clone(),
        definition_key: request.definition_key.clone(),
        description: request.description.clone(),
        state: ExecutionState::Running,
        state_info: None,
        input: input.clone(),
        output: json!({}),
        params: params.clone(),
        context: json!({}),
        globals: json!({}),
        parent,
        root_execution_id,
        active_tasks: 0,
        project_id: request.project_id.clone(),
        version: 0,
        created_at: now,
        updated_at: now,
    };
    let lookup = Prefetched {
        tasks: Default::default(),
        current: None,
        execution: super::execution_value(&execution),
        env: params.get("env").cloned().unwrap_or_else(|| json!({})),
        globals: json!({}),
    };
    execution.context = engine::initial_context(workflow, &input, &lookup)?;
    let start = engine::start_tasks(workflow, &params)?;
    if start.is_empty() {
        return Err(HandlerError::Invalid(format!(
            "workflow '{}' has no task to start",
            workflow.name
        )));
    }
    let mut writes = vec![Write::InsertExecution(execution.clone())];
    let mut messages = Vec::new();
    for name in start {
        let task = new_task(&execution, &name, "start", json!({}), TaskState::Idle, now);
        messages.push(Message::StartTask {
            task_execution_id: task.id.clone(),
        });
        writes.push(Write::InsertTask(task));
    }
    Ok(PreparedExecution {
        execution,
        writes,
        messages,
    })
}

/// A new task execution of `name`, caused by `cause` (a task id, "start" or
/// "join"), seeing `branch` as what its branch published so far.
pub(crate) fn new_task(
    execution: &ExecutionRecord,
    name: &str,
    cause: &str,
    branch: Value,
    state: TaskState,
    now: Millis,
) -> TaskRecord {
    TaskRecord {
        id: derived_id(&[&execution.id, name, cause]),
        execution_id: execution.id.clone(),
        workflow_name: execution.workflow_name.clone(),
        definition_key: execution.definition_key.clone(),
        name: name.to_string(),
        state,
        state_info: None,
        in_context: branch,
        published: json!({}),
        result: Value::Null,
        items_total: 0,
        items_done: 0,
        items_failed: 0,
        items_next: 0,
        with_items: false,
        join_arrived: 0,
        runtime: json!({}),
        processed: false,
        version: 0,
        created_at: now,
        updated_at: now,
        started_at: None,
        finished_at: None,
    }
}

//! State changes asked for through the API: pause, resume, cancel, a forced
//! end, rerunning a failed task, and delivering the result of an async
//! action execution.
//!
//! Each one is a conditional write, retried on a conflict with the workers
//! (which move the same records), followed by the messages that let the
//! engine take over. Nothing here decides a workflow's next step: that stays
//! in complete-task.

use super::complete_task::end_execution;
use super::create_execution::new_task;
use super::{Deps, HandlerError, resume_execution};
use crate::engine::states::{ActionState, ExecutionState, TaskState};
use crate::queue::Message;
use crate::store::{ExecutionRecord, StoreError, TaskRecord, Write};
use serde_json::{Value, json};
use std::future::Future;
use std::time::Duration;

/// Conditional writes lost to a worker are retried this many times.
const CONFLICT_RETRIES: usize = 16;

/// Re-run `attempt` while it loses conditional writes to the workers.
async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, HandlerError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, HandlerError>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(HandlerError::Store(StoreError::Conflict(_))) if tries < CONFLICT_RETRIES => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(5 * tries as u64)).await;
            }
            other => return other,
        }
    }
}

fn invalid_transition(execution: &ExecutionRecord, to: ExecutionState) -> HandlerError {
    let allowed: Vec<&str> = execution
        .state
        .allowed_next()
        .iter()
        .map(|s| s.as_str())
        .collect();
    HandlerError::Invalid(format!(
        "Can't change workflow execution state from {} to {}. [workflow={}, execution_id={}]; allowed from {}: {}",
        execution.state,
        to,
        execution.workflow_name,
        execution.id,
        execution.state,
        if allowed.is_empty() {
            "none (it is finished)".to_string()
        } else {
            allowed.join(", ")
        }
    ))
}

/// Move an execution to `to`, as `PUT /v2/executions/{id}` asks:
/// - PAUSED: tasks already running finish, nothing new starts; running
///   sub-workflows are paused too;
/// - RUNNING: resume a paused execution (`env` is merged into
///   `params.env`) with its paused sub-workflows, or rerun the failed tasks
///   of an ERROR one;
/// - CANCELLED: the execution, its unfinished tasks and action executions
///   and its sub-workflows end CANCELLED;
/// - ERROR / SUCCESS: the execution ends now with `state_info`.
///
/// Asking for the state it is already in changes nothing.
pub async fn change_execution_state(
    deps: &Deps,
    execution_id: &str,
    to: ExecutionState,
    state_info: Option<String>,
    env: Option<Value>,
) -> Result<ExecutionRecord, HandlerError> {
    let execution = deps.store.get_execution(execution_id).await?;
    if execution.state == to {
        return Ok(execution);
    }
    if execution.state.check_transition(to).is_err() {
        return Err(invalid_transition(&execution, to));
    }
    match to {
        ExecutionState::Paused => {
            let paused = retrying(|| async {
                let mut execution = deps.store.get_execution(execution_id).await?;
                if execution.state.check_transition(to).is_err() {
                    return Err(invalid_transition(&execution, to));
                }
                execution.state = ExecutionState::Paused;
                execution.updated_at = deps.now();
                deps.store
                    .commit(vec![Write::UpdateExecution(execution.clone())])
                    .await?;
                execution.version += 1;
                Ok(execution)
            })
            .await?;
            follow_into_sub_workflows(deps, execution_id, ExecutionState::Running, to).await?;
            Ok(paused)
        }
        ExecutionState::Running if execution.state == ExecutionState::Error => {
            let failed: Vec<TaskRecord> = deps
                .store
                .list_tasks(execution_id)
                .await?
                .into_iter()
                .filter(|t| t.state == TaskState::Error && !error_handled(t))
                .collect();
            if failed.is_empty() {
                return Err(HandlerError::Invalid(format!(
                    "execution {execution_id} has no failed task to rerun"
                )));
            }
            for task in failed {
                rerun_task(deps, &task.id, env.clone()).await?;
            }
            Ok(deps.store.get_execution(execution_id).await?)
        }
        ExecutionState::Running => {
            let resumed = retrying(|| resume_execution(deps, execution_id, env.clone())).await?;
            follow_into_sub_workflows(deps, execution_id, ExecutionState::Paused, to).await?;
            Ok(resumed)
        }
        ExecutionState::Cancelled => {
            cancel_tree(deps, execution_id, state_info).await?;
            Ok(deps.store.get_execution(execution_id).await?)
        }
        ExecutionState::Error | ExecutionState::Success => {
            retrying(|| end_execution(deps, execution_id, Some((to, state_info.clone())))).await?;
            Ok(deps.store.get_execution(execution_id).await?)
        }
        ExecutionState::Idle => Err(invalid_transition(&execution, to)),
    }
}

/// Pause or resume, as Mistral does, the sub-workflow executions of an
/// execution's unfinished tasks that are in `from`, and theirs in turn. A
/// sub-workflow that ended or moved on meanwhile is left as it is.
async fn follow_into_sub_workflows(
    deps: &Deps,
    execution_id: &str,
    from: ExecutionState,
    to: ExecutionState,
) -> Result<(), HandlerError> {
    for child in sub_workflows(deps, execution_id).await? {
        let state = deps.store.execution_state(&child).await?;
        if state != from {
            continue;
        }
        // Boxed: the change recurses into the child's own sub-workflows.
        match Box::pin(change_execution_state(deps, &child, to, None, None)).await {
            Ok(_) | Err(HandlerError::Invalid(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The sub-workflow executions started by an execution's unfinished tasks.
async fn sub_workflows(deps: &Deps, execution_id: &str) -> Result<Vec<String>, HandlerError> {
    let mut children = Vec::new();
    for task in deps.store.list_tasks(execution_id).await? {
        if task.state.is_terminal() {
            continue;
        }
        for action in deps.store.list_actions(&task.id).await? {
            children.extend(action.child_execution_id);
        }
    }
    Ok(children)
}

fn error_handled(task: &TaskRecord) -> bool {
    task.runtime
        .get("error_handled")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Cancel an execution, then its unfinished tasks, their action executions
/// and their sub-workflow executions.
async fn cancel_tree(
    deps: &Deps,
    execution_id: &str,
    state_info: Option<String>,
) -> Result<(), HandlerError> {
    let mut pending = vec![(execution_id.to_string(), state_info)];
    while let Some((id, info)) = pending.pop() {
        retrying(|| end_execution(deps, &id, Some((ExecutionState::Cancelled, info.clone()))))
            .await?;
        for task in deps.store.list_tasks(&id).await? {
            if task.state.is_terminal() {
                continue;
            }
            for action in deps.store.list_actions(&task.id).await? {
                if let Some(child) = &action.child_execution_id {
                    pending.push((child.clone(), None));
                }
                if action.state.is_terminal() {
                    continue;
                }
                let action_id = action.id.clone();
                retrying(|| async {
                    let mut action = deps.store.get_action(&action_id).await?;
                    if action.state.is_terminal() {
                        return Ok(());
                    }
                    action.state = ActionState::Cancelled;
                    action.updated_at = deps.now();
                    Ok(deps.store.commit(vec![Write::UpdateAction(action)]).await?)
                })
                .await?;
            }
            let task_id = task.id.clone();
            retrying(|| async {
                let mut task = deps.store.get_task(&task_id).await?;
                if task.state.is_terminal() {
                    return Ok(());
                }
                let now = deps.now();
                task.state = TaskState::Cancelled;
                task.processed = true;
                task.finished_at = Some(now);
                task.updated_at = now;
                Ok(deps.store.commit(vec![Write::UpdateTask(task)]).await?)
            })
            .await?;
        }
    }
    Ok(())
}

/// Rerun a failed task: a new task execution of the same task, seeing what
/// the failed one saw, starts; the failed one stays as it was (marked as
/// handled, so it no longer fails the execution) and the execution is
/// RUNNING again. Only a task of an ERROR execution can be rerun.
///
/// A fresh task execution (rather than the same one, as Mistral does) keeps
/// every id derived from its cause, so the workers' idempotence holds.
pub async fn rerun_task(
    deps: &Deps,
    task_execution_id: &str,
    env: Option<Value>,
) -> Result<TaskRecord, HandlerError> {
    let task = deps.store.get_task(task_execution_id).await?;
    if task.state != TaskState::Error {
        return Err(HandlerError::Invalid(format!(
            "state: only a task in ERROR can be rerun; task execution {} is {}",
            task.id, task.state
        )));
    }
    let new_id = retrying(|| async {
        let mut execution = deps.store.get_execution(&task.execution_id).await?;
        if execution.state != ExecutionState::Error {
            return Err(HandlerError::Invalid(format!(
                "state: a task can be rerun only when its execution is in ERROR; execution {} is {}",
                execution.id, execution.state
            )));
        }
        let mut old = deps.store.get_task(task_execution_id).await?;
        let now = deps.now();
        let reruns = old.runtime.get("reruns").and_then(Value::as_i64).unwrap_or(0) + 1;
        let fresh = new_task(
            &execution,
            &old.name,
            &format!("rerun-{}-{reruns}", old.id),
            old.in_context.clone(),
            TaskState::Idle,
            now,
        );
        if let Value::Object(m) = &mut old.runtime {
            m.insert("error_handled".into(), json!(true));
            m.insert("reruns".into(), json!(reruns));
        }
        old.updated_at = now;
        execution.state = ExecutionState::Running;
        execution.state_info = None;
        execution.output = json!({});
        if let Some(env) = &env
            && let Value::Object(params) = &mut execution.params
        {
            let mut merged = params.get("env").cloned().unwrap_or_else(|| json!({}));
            if let (Value::Object(m), Value::Object(e)) = (&mut merged, env) {
                m.extend(e.clone());
            }
            params.insert("env".into(), merged);
        }
        execution.updated_at = now;
        let id = fresh.id.clone();
        deps.store
            .commit(vec![
                Write::UpdateExecution(execution),
                Write::UpdateTask(old),
                Write::InsertTask(fresh),
            ])
            .await?;
        Ok(id)
    })
    .await?;
    deps.send(
        vec![Message::StartTask {
            task_execution_id: new_id.clone(),
        }],
        Duration::ZERO,
    )
    .await?;
    Ok(deps.store.get_task(&new_id).await?)
}

/// Skip a failed task: it becomes SKIPPED and no longer fails its
/// execution, which is RUNNING again and ends by the usual rule (SUCCESS
/// when nothing else failed). A skipped task takes no transitions (bora does
/// not read Mistral's `on-skip` clause yet).
pub async fn skip_task(deps: &Deps, task_execution_id: &str) -> Result<TaskRecord, HandlerError> {
    let execution_id = retrying(|| async {
        let mut task = deps.store.get_task(task_execution_id).await?;
        if task.state != TaskState::Error {
            return Err(HandlerError::Invalid(format!(
                "state: only a task in ERROR can be skipped; task execution {} is {}",
                task.id, task.state
            )));
        }
        let mut execution = deps.store.get_execution(&task.execution_id).await?;
        let now = deps.now();
        task.state = TaskState::Skipped;
        if let Value::Object(m) = &mut task.runtime {
            m.insert("error_handled".into(), json!(true));
        }
        task.updated_at = now;
        let mut writes = vec![Write::UpdateTask(task)];
        if execution.state == ExecutionState::Error {
            execution.state = ExecutionState::Running;
            execution.state_info = None;
            execution.output = json!({});
            execution.updated_at = now;
            writes.push(Write::UpdateExecution(execution.clone()));
        }
        deps.store.commit(writes).await?;
        Ok(execution.id)
    })
    .await?;
    end_execution(deps, &execution_id, None).await?;
    Ok(deps.store.get_task(task_execution_id).await?)
}

/// Deliver the result of an action execution that completes from outside
/// (`PUT /v2/action_executions/{id}`): SUCCESS with its result, ERROR with
/// its error, or CANCELLED. complete-task takes it from there.
pub async fn complete_action(
    deps: &Deps,
    action_execution_id: &str,
    state: ActionState,
    output: Value,
) -> Result<crate::store::ActionRecord, HandlerError> {
    if !state.is_terminal() {
        return Err(HandlerError::Invalid(format!(
            "state: an action execution can only be completed with SUCCESS, ERROR or CANCELLED, not {state}"
        )));
    }
    let action = retrying(|| async {
        let mut action = deps.store.get_action(action_execution_id).await?;
        if action.state.is_terminal() {
            return Err(HandlerError::Invalid(format!(
                "Action {} is already completed (state {})",
                action.id, action.state
            )));
        }
        action.state = state;
        action.state_info = match state {
            ActionState::Success => None,
            _ => Some(crate::engine::text_of(&output)),
        };
        action.output = output.clone();
        action.lease_until = None;
        action.updated_at = deps.now();
        deps.store
            .commit(vec![Write::UpdateAction(action.clone())])
            .await?;
        action.version += 1;
        Ok(action)
    })
    .await?;
    if !action.task_execution_id.is_empty() {
        deps.send(
            vec![Message::ActionDone {
                action_execution_id: action.id.clone(),
            }],
            Duration::ZERO,
        )
        .await?;
    }
    Ok(action)
}

//! complete-task: everything that moves a workflow forward.
//!
//! - [`Message::StartTask`]: plan a task (waits, pause, with-items inputs),
//!   store its action executions, send the first window to run-task.
//! - [`Message::ActionDone`]: apply the retry policy to a finished action
//!   execution, count it into its task, move the concurrency window, and when
//!   the last item is in, finish the task.
//! - [`Message::TaskTimer`]: wait-before, wait-after and timeout.
//!
//! Finishing a task evaluates publish and transitions, creates the next
//! tasks (or records arrivals at joins), and ends the execution when nothing
//! is left. Every step re-derives what to do from stored state, so a
//! duplicate or late message finds the work done and changes nothing.

use super::create_execution::{CreateExecution, new_task, prepare_execution};
use super::run_task::new_action;
use super::{Deps, Event, HandlerError, Prefetched, derived_id, task_value};
use crate::engine::states::{ActionState, ExecutionState, TaskState};
use crate::engine::{self, AttemptVerdict, Command, JoinVerdict, Runnable, TaskOutcome, TaskPlan};
use crate::expr::{Context, Data, Template};
use crate::queue::{Message, TimerKind};
use crate::store::{ActionRecord, ExecutionRecord, ParentRef, StoreError, TaskRecord, Write};
use crate::workflow::{Document, TaskAction, TaskSpec, WorkflowSpec, WorkflowType};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// How many times a handler re-reads and retries in-process after a write
/// conflict before it gives the message back to the queue.
const CONFLICT_RETRIES: usize = 8;

/// Handle one complete-task message.
pub async fn complete_task(deps: &Deps, message: &Message) -> Result<(), HandlerError> {
    let mut attempt = 0;
    loop {
        let result = match message {
            Message::StartTask { task_execution_id } => start_task(deps, task_execution_id).await,
            Message::ActionDone {
                action_execution_id,
            } => action_done(deps, action_execution_id).await,
            Message::TaskTimer {
                task_execution_id,
                kind,
            } => timer(deps, task_execution_id, *kind).await,
            Message::RunAction { .. } => Err(HandlerError::Invalid(
                "run-action message on the complete-task queue".into(),
            )),
        };
        match result {
            Err(HandlerError::Store(StoreError::Conflict(_))) if attempt < CONFLICT_RETRIES => {
                attempt += 1;
                tokio::task::yield_now().await;
            }
            // A record deleted with its execution: nothing left to do.
            Err(HandlerError::Store(StoreError::NotFound(_))) => return Ok(()),
            other => return other,
        }
    }
}

/// The spec pieces a task needs.
struct Specs {
    doc: Arc<Document>,
}

impl Specs {
    async fn load(deps: &Deps, key: &str) -> Result<Specs, HandlerError> {
        Ok(Specs {
            doc: deps.specs.get(deps.store.as_ref(), key).await?,
        })
    }

    fn workflow(&self, name: &str) -> Result<&WorkflowSpec, HandlerError> {
        self.doc
            .workflow(name)
            .ok_or_else(|| HandlerError::NotFound(format!("workflow {name} in stored definition")))
    }

    fn task<'a>(
        &'a self,
        workflow: &'a WorkflowSpec,
        name: &str,
    ) -> Result<&'a TaskSpec, HandlerError> {
        workflow.task(name).ok_or_else(|| {
            HandlerError::NotFound(format!("task {name} in workflow {}", workflow.name))
        })
    }
}

fn flag(task: &TaskRecord, key: &str) -> bool {
    task.runtime
        .get(key)
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn set_runtime(task: &mut TaskRecord, key: &str, value: Value) {
    if !task.runtime.is_object() {
        task.runtime = json!({});
    }
    if let Value::Object(m) = &mut task.runtime {
        m.insert(key.to_string(), value);
    }
}

/// Task names a task's expressions read with `task('name')`.
fn task_refs(workflow: &WorkflowSpec, task: &TaskSpec) -> Vec<String> {
    let mut names = Vec::new();
    let mut data = |d: &Data| names.extend(d.referenced_tasks());
    match &task.action {
        TaskAction::Action { input, .. } | TaskAction::Workflow { input, .. } => data(input),
        TaskAction::Noop => {}
    }
    for p in [&task.publish, &task.publish_on_error]
        .into_iter()
        .flatten()
    {
        p.branch
            .iter()
            .chain(p.global.iter())
            .for_each(|(_, d)| data(d));
    }
    for c in [&task.on_success, &task.on_error, &task.on_complete]
        .into_iter()
        .flatten()
    {
        if let Some(p) = &c.publish {
            p.branch
                .iter()
                .chain(p.global.iter())
                .for_each(|(_, d)| data(d));
        }
    }
    for d in [
        &task.wait_before,
        &task.wait_after,
        &task.timeout,
        &task.pause_before,
        &task.concurrency,
    ]
    .into_iter()
    .flatten()
    {
        data(d);
    }
    if let Some(r) = &task.retry {
        data(&r.count);
        data(&r.delay);
    }
    let mut templates: Vec<&Template> = Vec::new();
    for c in [&task.on_success, &task.on_error, &task.on_complete]
        .into_iter()
        .flatten()
    {
        templates.extend(c.next.iter().filter_map(|t| t.condition.as_ref()));
    }
    if let Some(r) = &task.retry {
        templates.extend(r.break_on.iter().chain(r.continue_on.iter()));
    }
    templates.extend(task.fail_on.iter());
    if let Some(w) = &task.with_items {
        templates.extend(w.vars.iter().map(|(_, t)| t));
    }
    for t in templates {
        names.extend(t.referenced_tasks());
    }
    let _ = workflow;
    names.sort();
    names.dedup();
    names
}

/// Data and lookups for evaluating a task's expressions.
async fn task_scope(
    deps: &Deps,
    execution: &ExecutionRecord,
    workflow: &WorkflowSpec,
    spec: &TaskSpec,
    task: &TaskRecord,
    current: Option<Value>,
) -> Result<(Value, Prefetched), HandlerError> {
    let data = engine::data_context(&execution.context, &execution.globals, &task.in_context);
    let lookup = Prefetched::load(
        deps.store.as_ref(),
        execution,
        task_refs(workflow, spec),
        current,
    )
    .await?;
    Ok((data, lookup))
}

// ---------------------------------------------------------------- start task

async fn start_task(deps: &Deps, task_id: &str) -> Result<(), HandlerError> {
    let mut task = deps.store.get_task(task_id).await?;
    if task.processed {
        return Ok(());
    }
    let execution = deps.store.get_execution(&task.execution_id).await?;
    if execution.state != ExecutionState::Running {
        // Paused: resume sends StartTask again. Finished: nothing to do.
        return Ok(());
    }
    let specs = Specs::load(deps, &task.definition_key).await?;
    if matches!(task.state, TaskState::Running) {
        // A redelivery after a crash between the commit and the sends.
        return resume_window(deps, &specs, &task).await;
    }
    if !matches!(task.state, TaskState::Idle | TaskState::Waiting) {
        return Ok(());
    }
    let workflow = specs.workflow(&execution.workflow_name)?;
    let spec = specs.task(workflow, &task.name)?;
    let (data, lookup) = task_scope(deps, &execution, workflow, spec, &task, None).await?;
    let ctx = Context {
        data: &data,
        lookup: &lookup,
    };
    let now = deps.now();
    let plan = engine::plan_task(
        workflow,
        spec,
        &ctx,
        flag(&task, "waited_before"),
        flag(&task, "resumed"),
    );
    let plan = match plan {
        Ok(plan) => plan,
        Err(e) => return fail_now(deps, execution, task, e.to_string()).await,
    };
    match plan {
        TaskPlan::PauseBefore => {
            let mut paused = execution.clone();
            paused.state = ExecutionState::Paused;
            paused.updated_at = now;
            set_runtime(&mut task, "resumed", json!(true));
            task.updated_at = now;
            deps.store
                .commit(vec![
                    Write::UpdateTask(task),
                    Write::UpdateExecution(paused),
                ])
                .await?;
            Ok(())
        }
        TaskPlan::WaitBefore(seconds) => {
            task.state = TaskState::RunningDelayed;
            task.updated_at = now;
            task.started_at.get_or_insert(now);
            let id = task.id.clone();
            deps.store.commit(vec![Write::UpdateTask(task)]).await?;
            deps.send(
                vec![Message::TaskTimer {
                    task_execution_id: id,
                    kind: TimerKind::WaitBefore,
                }],
                secs(seconds),
            )
            .await
        }
        TaskPlan::Done(outcome) => {
            task.started_at.get_or_insert(now);
            deps.emit(Event::TaskStarted {
                execution_id: task.execution_id.clone(),
                task: task.name.clone(),
                items: None,
            });
            finish_task(deps, &specs, execution, task, outcome).await
        }
        TaskPlan::Run {
            runnable,
            inputs,
            with_items,
            concurrency,
            timeout,
        } => {
            let total = inputs.len() as i64;
            let window = concurrency.map_or(total, |c| (c as i64).min(total));
            let name = match &runnable {
                Runnable::Action(n) | Runnable::Workflow(n) => n.clone(),
            };
            let mut writes = Vec::with_capacity(inputs.len() + 1);
            let mut actions = Vec::with_capacity(window as usize);
            for (index, input) in inputs.into_iter().enumerate() {
                let action = new_action(&task, &name, index as i64, 0, input, now);
                if (index as i64) < window {
                    actions.push(action.clone());
                }
                writes.push(Write::InsertAction(action));
            }
            task.state = TaskState::Running;
            task.items_total = total;
            task.items_next = window;
            task.with_items = with_items;
            task.started_at.get_or_insert(now);
            task.updated_at = now;
            writes.push(Write::UpdateTask(task.clone()));
            deps.store.commit(writes).await?;
            task.version += 1;
            deps.emit(Event::TaskStarted {
                execution_id: task.execution_id.clone(),
                task: task.name.clone(),
                items: with_items.then_some(total),
            });
            if let Some(seconds) = timeout {
                deps.send(
                    vec![Message::TaskTimer {
                        task_execution_id: task.id.clone(),
                        kind: TimerKind::Timeout,
                    }],
                    secs(seconds),
                )
                .await?;
            }
            start_items(deps, &specs, &execution, &task, actions).await
        }
    }
}

fn secs(seconds: f64) -> Duration {
    Duration::from_secs_f64(seconds.clamp(0.0, 365.0 * 86400.0))
}

/// Send items to run: actions to run-task; sub-workflows are created and
/// their first tasks enqueued.
async fn start_items(
    deps: &Deps,
    specs: &Specs,
    execution: &ExecutionRecord,
    task: &TaskRecord,
    actions: Vec<ActionRecord>,
) -> Result<(), HandlerError> {
    let workflow = specs.workflow(&execution.workflow_name)?;
    let spec = specs.task(workflow, &task.name)?;
    let mut run = Vec::new();
    for action in actions {
        match &spec.action {
            TaskAction::Workflow { .. } => {
                start_child(deps, specs, execution, task, action).await?
            }
            _ => run.push(Message::RunAction {
                action_execution_id: action.id,
            }),
        }
    }
    deps.send(run, Duration::ZERO).await
}

/// Create the sub-workflow execution of one item, in one commit with the
/// item's action execution, and enqueue its start tasks.
async fn start_child(
    deps: &Deps,
    specs: &Specs,
    execution: &ExecutionRecord,
    task: &TaskRecord,
    mut action: ActionRecord,
) -> Result<(), HandlerError> {
    if action.state != ActionState::Idle {
        return Ok(());
    }
    let now = deps.now();
    let child_id = derived_id(&[&action.id, "child"]);
    // The sub-workflow is in the same document, or registered on its own
    // (resolved now and pinned in the child execution's definition key).
    let (doc, definition_key) = if specs.doc.workflow(&action.name).is_some() {
        (specs.doc.clone(), execution.definition_key.clone())
    } else {
        let key = match &deps.resolver {
            Some(resolver) => {
                resolver
                    .workflow_key(&action.name, &execution.workflow_namespace)
                    .await
            }
            None => None,
        };
        match key {
            Some(key) => (deps.specs.get(deps.store.as_ref(), &key).await?, key),
            // Unknown: the same document gives the clear "not found" below.
            None => (specs.doc.clone(), execution.definition_key.clone()),
        }
    };
    let request = CreateExecution {
        id: Some(child_id.clone()),
        definition_key,
        workflow_name: action.name.clone(),
        workflow_id: None,
        namespace: execution.workflow_namespace.clone(),
        description: String::new(),
        input: action.input.clone(),
        params: json!({"env": execution.params.get("env").cloned().unwrap_or(json!({}))}),
        project_id: execution.project_id.clone(),
        target: None,
    };
    let parent = ParentRef {
        task_execution_id: task.id.clone(),
        action_execution_id: action.id.clone(),
    };
    let root = execution
        .root_execution_id
        .clone()
        .unwrap_or_else(|| execution.id.clone());
    action.updated_at = now;
    // A sub-workflow acts on its parent's cloud: the sealed target (bound
    // to the root execution, with its wrapped key) is copied as it is.
    let target = execution.params.get("target").cloned();
    match prepare_execution(&doc, request, Some(parent), Some(root), target, now) {
        Ok(prepared) => {
            action.state = ActionState::Running;
            action.child_execution_id = Some(child_id);
            let mut writes = prepared.writes;
            writes.push(Write::UpdateAction(action));
            deps.store.commit(writes).await?;
            deps.send(prepared.messages, Duration::ZERO).await
        }
        Err(e) => {
            // The sub-workflow cannot start (bad input): the item fails.
            action.state = ActionState::Error;
            action.state_info = Some(e.to_string());
            action.output = Value::String(e.to_string());
            let id = action.id.clone();
            commit_then_send(
                deps,
                vec![Write::UpdateAction(action)],
                Message::ActionDone {
                    action_execution_id: id,
                },
            )
            .await
        }
    }
}

/// Re-send the work of a running task's window that may have been lost
/// (idle items below `items_next`). Sending twice is harmless: run-task and
/// sub-workflow creation are idempotent.
async fn resume_window(deps: &Deps, specs: &Specs, task: &TaskRecord) -> Result<(), HandlerError> {
    let execution = deps.store.get_execution(&task.execution_id).await?;
    let pending: Vec<ActionRecord> = deps
        .store
        .list_actions(&task.id)
        .await?
        .into_iter()
        .filter(|a| a.item_index < task.items_next && !a.counted && !a.state.is_terminal())
        .collect();
    let mut done = Vec::new();
    let mut idle = Vec::new();
    for a in pending {
        if a.state == ActionState::Idle || !a.is_async {
            idle.push(a);
        }
    }
    // Terminal but uncounted ones lost their completion notice.
    for a in deps.store.list_actions(&task.id).await? {
        if a.state.is_terminal() && !a.counted {
            done.push(Message::ActionDone {
                action_execution_id: a.id,
            });
        }
    }
    deps.send(done, Duration::ZERO).await?;
    start_items(deps, specs, &execution, task, idle).await
}

// --------------------------------------------------------------- action done

/// How long a task whose last item was counted stays with the handler that
/// counted it before a duplicate notice may finish it instead.
const RECOVERY_GRACE_MS: i64 = 1000;

/// A completion notice for an action already counted: a duplicate, or a
/// redelivery after the handler died (or its commit failed) between counting
/// the item and what had to follow. Redo what had to follow, from the stored
/// counters: finish the task when its last item is in; otherwise re-send the
/// first attempts of the window that may never have been sent (run-task
/// ignores the ones that were).
async fn recover_after_count(
    deps: &Deps,
    specs: &Specs,
    task_id: &str,
) -> Result<(), HandlerError> {
    let task = deps.store.get_task(task_id).await?;
    if task.processed || task.state.is_terminal() {
        return Ok(());
    }
    let execution = deps.store.get_execution(&task.execution_id).await?;
    if execution.state.is_terminal() {
        return Ok(());
    }
    if task.items_done >= task.items_total {
        // The handler that counted the last item may be finishing the task
        // right now (a duplicate notice raced it): give it time, and finish
        // only a task left untouched for a while, which means that handler
        // died or failed. Its conditional writes would stop a second finish
        // anyway; waiting keeps the two from even trying.
        if deps.now() - task.updated_at < RECOVERY_GRACE_MS {
            return Err(HandlerError::Busy(format!(
                "task execution {} may be being finished by another handler",
                task.id
            )));
        }
        let results = deps.store.item_results(&task.id).await?;
        let outcome = outcome_of(&task, results);
        return finish_task(deps, specs, execution, task, outcome).await;
    }
    let idle: Vec<ActionRecord> = deps
        .store
        .list_actions(&task.id)
        .await?
        .into_iter()
        .filter(|a| {
            a.attempt == 0 && a.state == ActionState::Idle && a.item_index < task.items_next
        })
        .collect();
    if idle.is_empty() {
        return Ok(());
    }
    start_items(deps, specs, &execution, &task, idle).await
}

/// A finished task's outcome from the final result of each item: the list
/// for with-items (failing when any item failed), the one result otherwise.
fn outcome_of(task: &TaskRecord, results: Vec<(ActionState, Value)>) -> TaskOutcome {
    if task.with_items {
        let failed = results.iter().any(|(s, _)| *s != ActionState::Success);
        let list = Value::Array(results.into_iter().map(|(_, v)| v).collect());
        return if failed {
            TaskOutcome::error(list, "One or more actions had failed.")
        } else {
            TaskOutcome::success(list)
        };
    }
    match results.into_iter().next() {
        Some((ActionState::Success, output)) => TaskOutcome::success(output),
        Some((_, output)) => {
            let info = engine::text_of(&output);
            TaskOutcome::error(output, info)
        }
        None => TaskOutcome::success(Value::Null),
    }
}

async fn action_done(deps: &Deps, action_id: &str) -> Result<(), HandlerError> {
    let action = deps.store.get_action(action_id).await?;
    if !action.state.is_terminal() {
        return Ok(());
    }
    let task = deps.store.get_task(&action.task_execution_id).await?;
    if task.processed || task.state.is_terminal() {
        return Ok(());
    }
    let specs = Specs::load(deps, &task.definition_key).await?;
    if action.counted {
        return recover_after_count(deps, &specs, &task.id).await;
    }
    let success = action.state == ActionState::Success;
    let workflow = specs.workflow(&task.workflow_name)?;
    let spec = specs.task(workflow, &task.name)?;
    if spec.retry.is_some() {
        let execution = deps.store.get_execution(&task.execution_id).await?;
        let mut current = task_value(&task);
        current["result"] = action.output.clone();
        current["state"] = json!(if success { "SUCCESS" } else { "ERROR" });
        let (data, lookup) =
            task_scope(deps, &execution, workflow, spec, &task, Some(current)).await?;
        let ctx = Context {
            data: &data,
            lookup: &lookup,
        };
        match engine::after_attempt(workflow, spec, action.attempt, success, &ctx) {
            Err(e) => return fail_now(deps, execution, task, e.to_string()).await,
            Ok(AttemptVerdict::Retry { delay }) => {
                let now = deps.now();
                let next = new_action(
                    &task,
                    &action.name,
                    action.item_index,
                    action.attempt + 1,
                    action.input.clone(),
                    now,
                );
                let next_id = next.id.clone();
                let mut old = action.clone();
                old.counted = true;
                old.updated_at = now;
                deps.store
                    .commit(vec![
                        Write::InsertAction(next.clone()),
                        Write::UpdateAction(old),
                    ])
                    .await?;
                return match &spec.action {
                    TaskAction::Workflow { .. } => {
                        // Sub-workflow retries start a fresh child.
                        start_child(deps, &specs, &execution, &task, next).await
                    }
                    _ => {
                        deps.send(
                            vec![Message::RunAction {
                                action_execution_id: next_id,
                            }],
                            secs(delay),
                        )
                        .await
                    }
                };
            }
            Ok(AttemptVerdict::Final { .. }) => {}
        }
    }
    let now = deps.now();
    let Some(count) = deps
        .store
        .count_item(&task.id, &action.id, !success, true, now)
        .await?
    else {
        return recover_after_count(deps, &specs, &task.id).await;
    };
    if task.with_items {
        deps.emit(Event::ItemsProgress {
            execution_id: task.execution_id.clone(),
            task: task.name.clone(),
            done: count.done,
            total: count.total,
        });
    }
    if let Some(index) = count.start_index {
        let next = deps
            .store
            .get_action(&derived_id(&[&task.id, &index.to_string(), "0"]))
            .await?;
        let execution = deps.store.get_execution(&task.execution_id).await?;
        start_items(deps, &specs, &execution, &task, vec![next]).await?;
    }
    if count.done < count.total {
        return Ok(());
    }
    // The last item is in: the task is finished.
    let task = deps.store.get_task(&task.id).await?;
    if task.processed {
        return Ok(());
    }
    let outcome = if task.with_items {
        outcome_of(&task, deps.store.item_results(&task.id).await?)
    } else if success {
        TaskOutcome::success(action.output.clone())
    } else {
        TaskOutcome::error(
            action.output.clone(),
            action
                .state_info
                .clone()
                .unwrap_or_else(|| engine::text_of(&action.output)),
        )
    };
    let execution = deps.store.get_execution(&task.execution_id).await?;
    if execution.state.is_terminal() {
        return Ok(());
    }
    finish_task(deps, &specs, execution, task, outcome).await
}

// --------------------------------------------------------------------- timer

async fn timer(deps: &Deps, task_id: &str, kind: TimerKind) -> Result<(), HandlerError> {
    let mut task = deps.store.get_task(task_id).await?;
    if task.processed {
        return Ok(());
    }
    let execution = deps.store.get_execution(&task.execution_id).await?;
    if execution.state.is_terminal() {
        return Ok(());
    }
    let specs = Specs::load(deps, &task.definition_key).await?;
    let now = deps.now();
    match kind {
        TimerKind::WaitBefore => {
            if task.state != TaskState::RunningDelayed || flag(&task, "waited_before") {
                return Ok(());
            }
            set_runtime(&mut task, "waited_before", json!(true));
            task.state = TaskState::Idle;
            task.updated_at = now;
            let id = task.id.clone();
            deps.store.commit(vec![Write::UpdateTask(task)]).await?;
            start_task(deps, &id).await
        }
        TimerKind::WaitAfter => {
            let Some(pending) = task.runtime.get("pending_outcome").cloned() else {
                return Ok(());
            };
            let outcome = TaskOutcome {
                state: pending["state"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(TaskState::Error),
                result: pending["result"].clone(),
                state_info: pending["state_info"].as_str().map(str::to_string),
            };
            set_runtime(&mut task, "waited_after", json!(true));
            finish_task(deps, &specs, execution, task, outcome).await
        }
        TimerKind::Timeout => {
            if task.state.is_terminal() || task.state == TaskState::Idle {
                return Ok(());
            }
            let workflow = specs.workflow(&execution.workflow_name)?;
            let spec = specs.task(workflow, &task.name)?;
            // Cancel what is still pending, so nothing of it runs later.
            let mut writes = Vec::new();
            for mut action in deps.store.list_actions(&task.id).await? {
                if !action.state.is_terminal() {
                    action.state = ActionState::Cancelled;
                    action.updated_at = now;
                    writes.push(Write::UpdateAction(action));
                }
            }
            deps.store.commit(writes).await?;
            let seconds = spec
                .timeout
                .as_ref()
                .and_then(|d| match d {
                    Data::Literal(v) => v.as_f64(),
                    _ => None,
                })
                .map(|s| format!("{s}"))
                .unwrap_or_else(|| "?".into());
            let task = deps.store.get_task(task_id).await?;
            let outcome = TaskOutcome::error(
                Value::Null,
                format!("Task timed out [timeout={seconds}s, task={}]", task.name),
            );
            finish_task(deps, &specs, execution, task, outcome).await
        }
    }
}

// --------------------------------------------------------------- finish task

/// A task has an outcome: apply fail-on and wait-after, publish, take its
/// transitions, and end the execution if nothing is left.
async fn finish_task(
    deps: &Deps,
    specs: &Specs,
    mut execution: ExecutionRecord,
    mut task: TaskRecord,
    outcome: TaskOutcome,
) -> Result<(), HandlerError> {
    let workflow = specs.workflow(&execution.workflow_name)?;
    let spec = specs.task(workflow, &task.name)?;
    let now = deps.now();
    let mut current = task_value(&task);
    current["result"] = outcome.result.clone();
    current["state"] = json!(outcome.state.as_str());
    current["state_info"] = json!(outcome.state_info);
    let (data, lookup) = task_scope(deps, &execution, workflow, spec, &task, Some(current)).await?;
    let ctx = Context {
        data: &data,
        lookup: &lookup,
    };
    let outcome = match engine::check_fail_on(workflow, spec, outcome, &ctx) {
        Ok(o) => o,
        Err(e) => return fail_now(deps, execution, task, e.to_string()).await,
    };
    if !flag(&task, "waited_after")
        && let Some(wait) = &spec.wait_after
    {
        let seconds = match wait.evaluate(&ctx) {
            Ok(v) => v
                .as_f64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok())),
            Err(e) => return fail_now(deps, execution, task, e.to_string()).await,
        };
        if let Some(seconds) = seconds.filter(|s| *s > 0.0) {
            set_runtime(
                &mut task,
                "pending_outcome",
                json!({"state": outcome.state.as_str(), "result": outcome.result, "state_info": outcome.state_info}),
            );
            task.state = TaskState::RunningDelayed;
            task.updated_at = now;
            let id = task.id.clone();
            deps.store.commit(vec![Write::UpdateTask(task)]).await?;
            return deps
                .send(
                    vec![Message::TaskTimer {
                        task_execution_id: id,
                        kind: TimerKind::WaitAfter,
                    }],
                    secs(seconds),
                )
                .await;
        }
    }
    let transitions = match engine::after_task(workflow, spec, &outcome, &ctx) {
        Ok(t) => t,
        Err(e) => return fail_now(deps, execution, task, e.to_string()).await,
    };

    task.state = outcome.state;
    task.state_info = outcome.state_info.clone();
    task.result = if spec.keep_result {
        outcome.result.clone()
    } else {
        Value::Null
    };
    task.published = Value::Object(transitions.published.clone());
    task.finished_at = Some(now);
    task.updated_at = now;
    if outcome.state == TaskState::Error {
        set_runtime(&mut task, "error_handled", json!(transitions.error_handled));
    }
    let mut outbound = match &task.in_context {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    for (k, v) in &transitions.published {
        outbound.insert(k.clone(), v.clone());
    }
    let outbound = Value::Object(outbound);

    let mut writes = Vec::new();
    if !transitions.globals.is_empty() {
        let mut globals = match &execution.globals {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        globals.extend(transitions.globals.clone());
        execution.globals = Value::Object(globals);
        execution.updated_at = now;
        writes.push(Write::UpdateExecution(execution.clone()));
    }

    // The next tasks. Reverse workflows follow `requires` within the plan.
    let (next, not_taken) = if workflow.kind == WorkflowType::Reverse {
        if outcome.state == TaskState::Success {
            (reverse_next(workflow, &execution, &task.name)?, Vec::new())
        } else {
            (Vec::new(), Vec::new())
        }
    } else {
        (transitions.next.clone(), transitions.not_taken.clone())
    };
    let mut starts = Vec::new();
    let mut joins = Vec::new();
    let paused = matches!(transitions.command, Some(Command::Pause(_)));
    if paused {
        // Mistral: the tasks after a `pause` are created on resume.
        set_runtime(&mut task, "pending_next", json!(next));
    } else {
        for name in &next {
            let target = specs.task(workflow, name)?;
            if let Some(required) = join_requirement(workflow, target) {
                let _ = required;
                let template =
                    new_task(&execution, name, "join", json!({}), TaskState::Waiting, now);
                joins.push(template.id.clone());
                writes.push(Write::JoinArrival {
                    template,
                    from_task_id: task.id.clone(),
                    context: json!({"from": task.name, "came": true, "context": outbound}),
                });
            } else {
                let new = new_task(
                    &execution,
                    name,
                    &task.id,
                    outbound.clone(),
                    TaskState::Idle,
                    now,
                );
                starts.push(Message::StartTask {
                    task_execution_id: new.id.clone(),
                });
                writes.push(Write::InsertTask(new));
            }
        }
        for name in &not_taken {
            let target = specs.task(workflow, name)?;
            if join_requirement(workflow, target).is_some() {
                let template =
                    new_task(&execution, name, "join", json!({}), TaskState::Waiting, now);
                joins.push(template.id.clone());
                writes.push(Write::JoinArrival {
                    template,
                    from_task_id: task.id.clone(),
                    context: json!({"from": task.name, "came": false}),
                });
            }
        }
    }
    task.processed = !paused;
    let started_at = task.started_at.unwrap_or(task.created_at);
    let event = Event::TaskFinished {
        execution_id: task.execution_id.clone(),
        task: task.name.clone(),
        state: task.state.as_str().to_string(),
        state_info: task.state_info.clone(),
        duration_ms: now - started_at,
    };
    writes.push(Write::UpdateTask(task));
    deps.store.commit(writes).await?;
    deps.emit(event);
    deps.send(starts, Duration::ZERO).await?;
    for join_id in joins {
        decide_join(deps, specs, &execution, &join_id).await?;
    }
    match transitions.command {
        Some(Command::Fail(msg)) => {
            end_execution(deps, &execution.id, Some((ExecutionState::Error, msg))).await
        }
        Some(Command::Succeed(msg)) => {
            end_execution(deps, &execution.id, Some((ExecutionState::Success, msg))).await
        }
        Some(Command::Pause(msg)) => {
            let mut e = deps.store.get_execution(&execution.id).await?;
            if e.state == ExecutionState::Running {
                e.state = ExecutionState::Paused;
                e.state_info = msg;
                e.updated_at = deps.now();
                deps.store.commit(vec![Write::UpdateExecution(e)]).await?;
            }
            Ok(())
        }
        None => end_execution(deps, &execution.id, None).await,
    }
}

/// For a task that is a join: how many inbound tasks it needs.
fn join_requirement(workflow: &WorkflowSpec, task: &TaskSpec) -> Option<usize> {
    if workflow.kind == WorkflowType::Reverse {
        let n = task.requires.len();
        return (n > 1).then_some(n);
    }
    match task.join? {
        crate::workflow::Join::All => Some(workflow.inbound(&task.name).len()),
        crate::workflow::Join::Count(n) => Some(n as usize),
    }
}

fn inbound_count(workflow: &WorkflowSpec, task: &TaskSpec) -> usize {
    if workflow.kind == WorkflowType::Reverse {
        task.requires.len()
    } else {
        workflow.inbound(&task.name).len()
    }
}

/// The tasks of a reverse plan that `done` unblocks.
fn reverse_next(
    workflow: &WorkflowSpec,
    execution: &ExecutionRecord,
    done: &str,
) -> Result<Vec<String>, HandlerError> {
    let plan = engine::reverse_plan(workflow, &execution.params)?;
    Ok(plan
        .iter()
        .filter(|name| {
            workflow
                .task(name)
                .is_some_and(|t| t.requires.iter().any(|r| r == done))
        })
        .cloned()
        .collect())
}

/// After an arrival at a join: start it when enough inbound tasks came,
/// fail it when they cannot. Two racing arrivals both get here; the
/// conditional write on the join task lets exactly one of them act.
async fn decide_join(
    deps: &Deps,
    specs: &Specs,
    execution: &ExecutionRecord,
    join_id: &str,
) -> Result<(), HandlerError> {
    let mut join = deps.store.get_task(join_id).await?;
    if join.state != TaskState::Waiting {
        return Ok(());
    }
    let workflow = specs.workflow(&execution.workflow_name)?;
    let spec = specs.task(workflow, &join.name)?;
    let required = join_requirement(workflow, spec).unwrap_or(1);
    let arrivals = deps.store.join_contexts(join_id).await?;
    let seen: Vec<(String, bool)> = arrivals
        .iter()
        .map(|a| {
            (
                a["from"].as_str().unwrap_or_default().to_string(),
                a["came"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    match engine::decide_join(required, inbound_count(workflow, spec), &seen) {
        JoinVerdict::Wait => Ok(()),
        JoinVerdict::Start => {
            let mut branch = Map::new();
            for a in arrivals
                .iter()
                .filter(|a| a["came"].as_bool() == Some(true))
            {
                engine::merge_into(&mut branch, &a["context"]);
            }
            join.in_context = Value::Object(branch);
            join.state = TaskState::Idle;
            join.updated_at = deps.now();
            let id = join.id.clone();
            commit_then_send(
                deps,
                vec![Write::UpdateTask(join)],
                Message::StartTask {
                    task_execution_id: id,
                },
            )
            .await
        }
        JoinVerdict::Fail(names) => {
            let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
            let outcome = TaskOutcome::error(
                Value::Null,
                format!("Failed by tasks: [{}]", quoted.join(", ")),
            );
            let execution = deps.store.get_execution(&execution.id).await?;
            // A failed join finishes like any task, which may reach another
            // join: box the recursion.
            Box::pin(finish_task(deps, specs, execution, join, outcome)).await
        }
    }
}

/// An expression failed while running a task: Mistral fails the task and
/// the execution at once, without following on-error.
async fn fail_now(
    deps: &Deps,
    execution: ExecutionRecord,
    mut task: TaskRecord,
    message: String,
) -> Result<(), HandlerError> {
    let now = deps.now();
    task.state = TaskState::Error;
    task.state_info = Some(message.clone());
    task.processed = true;
    task.finished_at = Some(now);
    task.updated_at = now;
    let event = Event::TaskFinished {
        execution_id: task.execution_id.clone(),
        task: task.name.clone(),
        state: "ERROR".into(),
        state_info: Some(message.clone()),
        duration_ms: now - task.started_at.unwrap_or(task.created_at),
    };
    deps.store.commit(vec![Write::UpdateTask(task)]).await?;
    deps.emit(event);
    end_execution(
        deps,
        &execution.id,
        Some((ExecutionState::Error, Some(message))),
    )
    .await
}

// --------------------------------------------------------- end of execution

/// End an execution: when `forced` is set, with that state and info;
/// otherwise only if no task is left, with SUCCESS unless a task failed
/// without an error handler.
pub(crate) async fn end_execution(
    deps: &Deps,
    execution_id: &str,
    forced: Option<(ExecutionState, Option<String>)>,
) -> Result<(), HandlerError> {
    let mut execution = deps.store.get_execution(execution_id).await?;
    if execution.state.is_terminal() {
        return Ok(());
    }
    if forced.is_none()
        && (execution.active_tasks > 0 || execution.state != ExecutionState::Running)
    {
        return Ok(());
    }
    let specs = Specs::load(deps, &execution.definition_key).await?;
    let workflow = specs.workflow(&execution.workflow_name)?;
    let tasks = deps.store.list_tasks(&execution.id).await?;
    let mut published = Map::new();
    for t in tasks.iter().filter(|t| t.processed) {
        engine::merge_into(&mut published, &t.in_context);
        engine::merge_into(&mut published, &t.published);
    }
    engine::merge_into(&mut published, &execution.globals);
    let published = Value::Object(published);
    let (state, state_info) = match forced {
        Some(f) => f,
        None => {
            let mut failed = Vec::new();
            for t in tasks.iter().filter(|t| {
                t.state == TaskState::Error
                    && !t
                        .runtime
                        .get("error_handled")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
            }) {
                let actions: Vec<(String, i64, String)> = deps
                    .store
                    .list_actions(&t.id)
                    .await?
                    .into_iter()
                    .enumerate()
                    .filter(|(_, a)| a.state == ActionState::Error)
                    .map(|(i, a)| {
                        let info = a.state_info.clone().unwrap_or_default();
                        match &a.child_execution_id {
                            Some(child) => (child.clone(), i as i64, info),
                            None => (a.id.clone(), i as i64, info),
                        }
                    })
                    .collect();
                failed.push((
                    t.name.clone(),
                    t.id.clone(),
                    t.state_info.clone().unwrap_or_default(),
                    actions,
                ));
            }
            if failed.is_empty() {
                (ExecutionState::Success, None)
            } else {
                (
                    ExecutionState::Error,
                    Some(engine::failure_summary(&failed)),
                )
            }
        }
    };
    let data = engine::data_context(&execution.context, &execution.globals, &published);
    let lookup = Prefetched::load(
        deps.store.as_ref(),
        &execution,
        workflow_refs(workflow),
        None,
    )
    .await?;
    let ctx = Context {
        data: &data,
        lookup: &lookup,
    };
    let success = state == ExecutionState::Success;
    let (state, state_info, output) = match engine::execution_output(
        workflow,
        success,
        &published,
        state_info.as_deref(),
        &ctx,
    ) {
        Ok(output) => (state, state_info, output),
        Err(e) => {
            let info = e.to_string();
            let mut out = Map::new();
            out.insert("result".into(), json!(info));
            (ExecutionState::Error, Some(info), Value::Object(out))
        }
    };
    execution.state = state;
    execution.state_info = state_info;
    execution.output = output;
    execution.updated_at = deps.now();
    deps.store
        .commit(vec![Write::UpdateExecution(execution.clone())])
        .await?;
    deps.emit(Event::ExecutionFinished {
        execution_id: execution.id.clone(),
        state: execution.state.as_str().to_string(),
    });
    if let Some(parent) = &execution.parent {
        notify_parent(deps, parent, &execution).await?;
    }
    Ok(())
}

/// Task names read by the workflow's `output`/`output-on-error`.
fn workflow_refs(workflow: &WorkflowSpec) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for d in [&workflow.output, &workflow.output_on_error]
        .into_iter()
        .flatten()
    {
        names.extend(d.referenced_tasks());
    }
    names
}

/// A sub-workflow ended: its parent's action execution takes its output.
async fn notify_parent(
    deps: &Deps,
    parent: &ParentRef,
    child: &ExecutionRecord,
) -> Result<(), HandlerError> {
    let mut action = deps.store.get_action(&parent.action_execution_id).await?;
    if action.state.is_terminal() {
        return deps
            .send(
                vec![Message::ActionDone {
                    action_execution_id: action.id,
                }],
                Duration::ZERO,
            )
            .await;
    }
    action.state = match child.state {
        ExecutionState::Success => ActionState::Success,
        ExecutionState::Cancelled => ActionState::Cancelled,
        _ => ActionState::Error,
    };
    action.output = child.output.clone();
    action.state_info = child.state_info.clone();
    action.updated_at = deps.now();
    let id = action.id.clone();
    commit_then_send(
        deps,
        vec![Write::UpdateAction(action)],
        Message::ActionDone {
            action_execution_id: id,
        },
    )
    .await
}

/// Commit, then send the message that the commit makes due. If the process
/// dies in between, the message that caused this one comes back and finds
/// the work done, and re-sends (the handlers are idempotent).
async fn commit_then_send(
    deps: &Deps,
    writes: Vec<Write>,
    message: Message,
) -> Result<(), HandlerError> {
    deps.store.commit(writes).await?;
    deps.send(vec![message], Duration::ZERO).await
}

/// Resume a paused execution: tasks waiting in IDLE start, and transitions
/// held back by a `pause` command are taken. `env` updates, when given, are
/// merged into `params.env`.
pub async fn resume_execution(
    deps: &Deps,
    execution_id: &str,
    env: Option<Value>,
) -> Result<ExecutionRecord, HandlerError> {
    let mut execution = deps.store.get_execution(execution_id).await?;
    execution
        .state
        .check_transition(ExecutionState::Running)
        .map_err(|e| HandlerError::Invalid(e.to_string()))?;
    if let Some(env) = env
        && let Value::Object(params) = &mut execution.params
    {
        let mut merged = params.get("env").cloned().unwrap_or(json!({}));
        engine::merge_into(merged.as_object_mut().get_or_insert(&mut Map::new()), &env);
        params.insert("env".into(), merged);
    }
    execution.state = ExecutionState::Running;
    execution.state_info = None;
    execution.updated_at = deps.now();
    deps.store
        .commit(vec![Write::UpdateExecution(execution.clone())])
        .await?;
    let specs = Specs::load(deps, &execution.definition_key).await?;
    let workflow = specs.workflow(&execution.workflow_name)?;
    let now = deps.now();
    let mut messages = Vec::new();
    for mut task in deps.store.list_tasks(&execution.id).await? {
        if task.state == TaskState::Idle {
            messages.push(Message::StartTask {
                task_execution_id: task.id.clone(),
            });
        } else if !task.processed
            && let Some(pending) = task.runtime.get("pending_next").cloned()
        {
            let mut writes = Vec::new();
            let branch = {
                let mut b = match &task.in_context {
                    Value::Object(m) => m.clone(),
                    _ => Map::new(),
                };
                engine::merge_into(&mut b, &task.published);
                Value::Object(b)
            };
            for name in pending
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                specs.task(workflow, name)?;
                let new = new_task(
                    &execution,
                    name,
                    &task.id,
                    branch.clone(),
                    TaskState::Idle,
                    now,
                );
                messages.push(Message::StartTask {
                    task_execution_id: new.id.clone(),
                });
                writes.push(Write::InsertTask(new));
            }
            if let Value::Object(m) = &mut task.runtime {
                m.remove("pending_next");
            }
            task.processed = true;
            task.updated_at = now;
            writes.push(Write::UpdateTask(task));
            deps.store.commit(writes).await?;
        } else if task.state == TaskState::Running && !task.processed {
            // Items that were waiting while paused.
            messages.extend(
                deps.store
                    .list_actions(&task.id)
                    .await?
                    .into_iter()
                    .filter(|a| a.state == ActionState::Idle && a.item_index < task.items_next)
                    .map(|a| Message::RunAction {
                        action_execution_id: a.id,
                    }),
            );
        }
    }
    deps.send(messages, Duration::ZERO).await?;
    end_execution(deps, &execution.id, None).await?;
    Ok(deps.store.get_execution(&execution.id).await?)
}

/// The execution a message belongs to (one read).
pub async fn execution_of(deps: &Deps, message: &Message) -> Result<String, StoreError> {
    match message {
        Message::RunAction {
            action_execution_id,
        }
        | Message::ActionDone {
            action_execution_id,
        } => deps
            .store
            .get_action(action_execution_id)
            .await
            .map(|a| a.execution_id),
        Message::StartTask { task_execution_id }
        | Message::TaskTimer {
            task_execution_id, ..
        } => deps
            .store
            .get_task(task_execution_id)
            .await
            .map(|t| t.execution_id),
    }
}

/// A message failed too often: it goes to the dead letters and its
/// execution ends in ERROR with the reason, so nobody waits forever.
pub async fn give_up(deps: &Deps, message: &Message, reason: &str) -> Result<(), HandlerError> {
    let execution_id = execution_of(deps, message).await;
    match execution_id {
        Ok(id) => {
            end_execution(
                deps,
                &id,
                Some((ExecutionState::Error, Some(reason.to_string()))),
            )
            .await
        }
        Err(StoreError::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

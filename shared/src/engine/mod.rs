//! The engine: the meaning of the workflow language, as pure decisions.
//!
//! Every function here takes the state it needs (specs, records, an
//! expression [`Context`]) and returns what should happen next: which tasks
//! to start, what to publish, whether to retry, how the execution ends. No
//! clock, no store, no network: the handlers in [`crate::handlers`] read the
//! state, call these functions, and apply the result with conditional writes.
//! That is what makes the engine testable with plain unit tests and the same
//! in Lambda and in `bora serve`.
//!
//! Behaviour follows Mistral 23 where the language leaves room; each such
//! finding is written down next to the code that implements it and pinned by
//! a test (see `tests/tests/semantics.rs`).

pub mod states;

use crate::expr::{Context, Data, ExprError, Lookup, Template, is_truthy};
use crate::workflow::{
    InputParam, OnClause, Publish, TaskAction, TaskSpec, TransitionTarget, WorkflowSpec,
    WorkflowType,
};
use serde_json::{Map, Value};
use states::TaskState;

/// Why the engine refused to go on. The text is what the user sees in
/// `state_info` or in a 400.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The execution's input does not match the workflow's `input`.
    /// Caller's fault; nothing is stored.
    #[error("Invalid input [name={workflow}, class={class}, {details}]")]
    InvalidInput {
        workflow: String,
        class: &'static str,
        details: String,
    },
    /// An expression failed while evaluating something of the workflow.
    /// The workflow's fault; the execution fails.
    #[error("{0}")]
    Expression(String),
    /// Something the spec says cannot be done (e.g. reverse workflow without
    /// a `task_name`). Caller's fault.
    #[error("{0}")]
    Invalid(String),
}

/// Object helpers: `$` is always a JSON object.
fn as_object(value: &Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    }
}

/// Merge `over` into `base` (top-level keys; `over` wins).
pub fn merge_into(base: &mut Map<String, Value>, over: &Value) {
    if let Value::Object(m) = over {
        for (k, v) in m {
            base.insert(k.clone(), v.clone());
        }
    }
}

/// `$` as a task sees it: the execution's input and vars, then globals,
/// then what its branch published (the branch wins, as in Mistral).
pub fn data_context(execution_context: &Value, globals: &Value, branch: &Value) -> Value {
    let mut data = as_object(execution_context);
    merge_into(&mut data, globals);
    merge_into(&mut data, branch);
    Value::Object(data)
}

/// Mistral's text for an input that does not match: `missing=['a']`,
/// `unexpected=['b']`.
fn python_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    format!("[{}]", quoted.join(", "))
}

/// Check an execution's input against the workflow's `input` and fill the
/// defaults. Mistral answers 400 with the same text.
pub fn prepare_input(workflow: &WorkflowSpec, input: &Value) -> Result<Value, EngineError> {
    let given = match input {
        Value::Null => Map::new(),
        Value::Object(m) => m.clone(),
        other => {
            return Err(EngineError::Invalid(format!(
                "input must be a JSON object, got {other}"
            )));
        }
    };
    check_params(
        &workflow.name,
        workflow_class(workflow),
        &workflow.input,
        given,
    )
}

fn workflow_class(workflow: &WorkflowSpec) -> &'static str {
    match workflow.kind {
        WorkflowType::Direct => "DirectWorkflowSpec",
        WorkflowType::Reverse => "ReverseWorkflowSpec",
    }
}

/// Check named parameters against their declarations: fill defaults, report
/// missing and unexpected names together.
pub fn check_params(
    owner: &str,
    class: &'static str,
    declared: &[InputParam],
    mut given: Map<String, Value>,
) -> Result<Value, EngineError> {
    let missing: Vec<&str> = declared
        .iter()
        .filter(|p| p.default.is_none() && !given.contains_key(&p.name))
        .map(|p| p.name.as_str())
        .collect();
    let unexpected: Vec<&str> = given
        .keys()
        .filter(|k| !declared.iter().any(|p| &p.name == *k))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() || !unexpected.is_empty() {
        let mut details = Vec::new();
        if !missing.is_empty() {
            details.push(format!("missing={}", python_list(&missing)));
        }
        if !unexpected.is_empty() {
            details.push(format!("unexpected={}", python_list(&unexpected)));
        }
        return Err(EngineError::InvalidInput {
            workflow: owner.to_string(),
            class,
            details: details.join(", "),
        });
    }
    let mut ordered = Map::new();
    for param in declared {
        let value = given
            .remove(&param.name)
            .or_else(|| param.default.clone())
            .unwrap_or(Value::Null);
        ordered.insert(param.name.clone(), value);
    }
    Ok(Value::Object(ordered))
}

/// Mistral's wording for an expression that failed while running a task.
fn expression_failure(what: &str, workflow: &str, task: &str, e: &ExprError) -> EngineError {
    EngineError::Expression(format!("{what} [error={}, wf={workflow}, task={task}]", e))
}

/// The initial context of an execution: its input, then `vars` evaluated
/// against the input.
pub fn initial_context(
    workflow: &WorkflowSpec,
    input: &Value,
    lookup: &dyn Lookup,
) -> Result<Value, EngineError> {
    let mut context = as_object(input);
    if let Some(vars) = &workflow.vars {
        let data = Value::Object(context.clone());
        let evaluated = vars
            .evaluate(&Context {
                data: &data,
                lookup,
            })
            .map_err(|e| {
                EngineError::Expression(format!(
                    "Failed to evaluate workflow vars [error={e}, wf={}]",
                    workflow.name
                ))
            })?;
        merge_into(&mut context, &evaluated);
    }
    Ok(Value::Object(context))
}

/// The tasks an execution starts with: for a direct workflow those no
/// transition leads to; for a reverse workflow, the tasks of the plan for
/// `params.task_name` that require nothing.
pub fn start_tasks(workflow: &WorkflowSpec, params: &Value) -> Result<Vec<String>, EngineError> {
    match workflow.kind {
        WorkflowType::Direct => Ok(workflow
            .start_tasks()
            .into_iter()
            .map(str::to_string)
            .collect()),
        WorkflowType::Reverse => {
            let plan = reverse_plan(workflow, params)?;
            Ok(plan
                .iter()
                .filter(|name| {
                    workflow
                        .task(name)
                        .is_some_and(|t| t.requires.iter().all(|r| !plan.contains(r)))
                })
                .cloned()
                .collect())
        }
    }
}

/// The tasks a reverse workflow runs to reach `params.task_name`.
pub fn reverse_plan(workflow: &WorkflowSpec, params: &Value) -> Result<Vec<String>, EngineError> {
    let target = params
        .get("task_name")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            EngineError::Invalid(format!(
                "reverse workflow '{}' needs params.task_name: the task to reach",
                workflow.name
            ))
        })?;
    workflow
        .reverse_plan(target)
        .map(|plan| plan.into_iter().map(str::to_string).collect())
        .map_err(|e| EngineError::Invalid(e.to_string()))
}

/// What to run for a task, with its inputs evaluated.
#[derive(Debug, Clone, PartialEq)]
pub enum Runnable {
    Action(String),
    Workflow(String),
}

/// What starting a task comes to.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskPlan {
    /// `wait-before`: come back after this many seconds.
    WaitBefore(f64),
    /// `pause-before`: the execution pauses before this task.
    PauseBefore,
    /// Run one action (or sub-workflow) per item; a task without with-items
    /// has one item.
    Run {
        runnable: Runnable,
        inputs: Vec<Value>,
        with_items: bool,
        concurrency: Option<usize>,
        timeout: Option<f64>,
    },
    /// Nothing to run: the task is done right away (no action; with-items
    /// over an empty list: SUCCESS with `[]`, as Mistral does).
    Done(TaskOutcome),
}

/// How a task ended, before its transitions.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskOutcome {
    pub state: TaskState,
    pub result: Value,
    pub state_info: Option<String>,
}

impl TaskOutcome {
    pub fn success(result: Value) -> TaskOutcome {
        TaskOutcome {
            state: TaskState::Success,
            result,
            state_info: None,
        }
    }

    pub fn error(result: Value, state_info: impl Into<String>) -> TaskOutcome {
        TaskOutcome {
            state: TaskState::Error,
            result,
            state_info: Some(state_info.into()),
        }
    }
}

fn number(data: &Data, ctx: &Context<'_>, key: &str) -> Result<Option<f64>, String> {
    let value = data.evaluate(ctx).map_err(|e| e.to_string())?;
    match &value {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_f64()),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| format!("{key} must be a number, got '{s}'")),
        other => Err(format!("{key} must be a number, got {other}")),
    }
}

fn truthy(data: &Data, ctx: &Context<'_>) -> Result<bool, String> {
    data.evaluate(ctx)
        .map(|v| is_truthy(&v))
        .map_err(|e| e.to_string())
}

/// Decide how a task starts. `waited` tells that wait-before already ran;
/// `resumed` that a pause-before was already honoured.
pub fn plan_task(
    workflow: &WorkflowSpec,
    task: &TaskSpec,
    ctx: &Context<'_>,
    waited: bool,
    resumed: bool,
) -> Result<TaskPlan, EngineError> {
    let fail = |what: String| {
        EngineError::Expression(format!(
            "Failed to run task [error={what}, wf={}, task={}]",
            workflow.name, task.name
        ))
    };
    if !resumed
        && let Some(pause) = &task.pause_before
        && truthy(pause, ctx).map_err(fail)?
    {
        return Ok(TaskPlan::PauseBefore);
    }
    if !waited
        && let Some(wait) = &task.wait_before
        && let Some(seconds) = number(wait, ctx, "wait-before").map_err(fail)?
        && seconds > 0.0
    {
        return Ok(TaskPlan::WaitBefore(seconds));
    }
    let (runnable, input) = match &task.action {
        TaskAction::Noop => return Ok(TaskPlan::Done(TaskOutcome::success(Value::Null))),
        TaskAction::Action { name, input } => (Runnable::Action(name.clone()), input),
        TaskAction::Workflow { name, input } => (Runnable::Workflow(name.clone()), input),
    };
    let timeout = match &task.timeout {
        Some(t) => number(t, ctx, "timeout")
            .map_err(fail)?
            .filter(|s| *s > 0.0),
        None => None,
    };
    let concurrency = match &task.concurrency {
        Some(c) => number(c, ctx, "concurrency")
            .map_err(fail)?
            .filter(|n| *n >= 1.0)
            .map(|n| n as usize),
        None => None,
    };
    let Some(with_items) = &task.with_items else {
        let evaluated = input.evaluate(ctx).map_err(|e| fail(e.to_string()))?;
        return Ok(TaskPlan::Run {
            runnable,
            inputs: vec![evaluated],
            with_items: false,
            concurrency: None,
            timeout,
        });
    };
    // with-items: evaluate each list once, then each item's input against
    // `$` with the item variables set. The context map is built once and
    // only the item variables change, so 100,000 items cost 100,000 input
    // evaluations and nothing quadratic.
    let mut lists = Vec::with_capacity(with_items.vars.len());
    for (var, template) in &with_items.vars {
        match template.evaluate(ctx).map_err(|e| fail(e.to_string()))? {
            Value::Array(items) => lists.push((var.clone(), items)),
            Value::Null => lists.push((var.clone(), Vec::new())),
            other => {
                return Err(fail(format!(
                    "with-items expects a list for '{var}', got {}",
                    short(&other)
                )));
            }
        }
    }
    let count = lists.iter().map(|(_, l)| l.len()).min().unwrap_or(0);
    if lists.iter().any(|(_, l)| l.len() != count) {
        return Err(fail(
            "with-items lists must all have the same length".to_string(),
        ));
    }
    if count == 0 {
        return Ok(TaskPlan::Done(TaskOutcome::success(Value::Array(
            Vec::new(),
        ))));
    }
    let mut data = as_object(ctx.data);
    let mut inputs = Vec::with_capacity(count);
    for index in 0..count {
        for (var, items) in &lists {
            data.insert(var.clone(), items[index].clone());
        }
        let item_data = Value::Object(data);
        let item_ctx = Context {
            data: &item_data,
            lookup: ctx.lookup,
        };
        inputs.push(input.evaluate(&item_ctx).map_err(|e| fail(e.to_string()))?);
        data = match item_data {
            Value::Object(m) => m,
            _ => Map::new(),
        };
    }
    Ok(TaskPlan::Run {
        runnable,
        inputs,
        with_items: true,
        concurrency,
        timeout,
    })
}

/// A value in a message, shortened so a huge list does not flood a log line.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 200 {
        let mut end = 200;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &text[..end])
    } else {
        text
    }
}

/// After one attempt of an action: retry it, or is this item final?
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptVerdict {
    /// Run the action again after `delay` seconds.
    Retry { delay: f64 },
    /// The item is final with this success.
    Final { success: bool },
}

/// Apply the `retry` policy to one attempt. `attempt` counts from 0.
/// `ctx`'s lookup answers `task()` with this attempt's result, as Mistral's
/// `break-on`/`continue-on` see it.
pub fn after_attempt(
    workflow: &WorkflowSpec,
    task: &TaskSpec,
    attempt: i64,
    success: bool,
    ctx: &Context<'_>,
) -> Result<AttemptVerdict, EngineError> {
    let Some(retry) = &task.retry else {
        return Ok(AttemptVerdict::Final { success });
    };
    let fail = |what: String| {
        EngineError::Expression(format!(
            "Failed to handle action completion [error={what}, wf={}, task={}]",
            workflow.name, task.name
        ))
    };
    let count = number(&retry.count, ctx, "retry count")
        .map_err(fail)?
        .unwrap_or(0.0) as i64;
    if attempt >= count {
        return Ok(AttemptVerdict::Final { success });
    }
    let delay = number(&retry.delay, ctx, "retry delay")
        .map_err(fail)?
        .unwrap_or(0.0)
        .max(0.0);
    if !success {
        if let Some(break_on) = &retry.break_on
            && template_truthy(break_on, ctx).map_err(fail)?
        {
            return Ok(AttemptVerdict::Final { success });
        }
        return Ok(AttemptVerdict::Retry { delay });
    }
    if let Some(continue_on) = &retry.continue_on
        && template_truthy(continue_on, ctx).map_err(fail)?
    {
        return Ok(AttemptVerdict::Retry { delay });
    }
    Ok(AttemptVerdict::Final { success })
}

fn template_truthy(template: &Template, ctx: &Context<'_>) -> Result<bool, String> {
    template
        .evaluate(ctx)
        .map(|v| is_truthy(&v))
        .map_err(|e| e.to_string())
}

/// `fail-on`: a task whose action succeeded fails when this is true.
pub fn check_fail_on(
    workflow: &WorkflowSpec,
    task: &TaskSpec,
    outcome: TaskOutcome,
    ctx: &Context<'_>,
) -> Result<TaskOutcome, EngineError> {
    if outcome.state != TaskState::Success {
        return Ok(outcome);
    }
    let Some(fail_on) = &task.fail_on else {
        return Ok(outcome);
    };
    let failed = template_truthy(fail_on, ctx).map_err(|e| {
        EngineError::Expression(format!(
            "Failed to handle action completion [error={e}, wf={}, task={}]",
            workflow.name, task.name
        ))
    })?;
    if failed {
        Ok(TaskOutcome {
            state: TaskState::Error,
            state_info: Some(format!("Failed by fail-on condition: {}", fail_on.source())),
            result: outcome.result,
        })
    } else {
        Ok(outcome)
    }
}

/// An engine command taken as a transition.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Fail(Option<String>),
    Succeed(Option<String>),
    Pause(Option<String>),
}

/// What a finished task leads to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transitions {
    /// The task's published variables (branch), precedence applied.
    pub published: Map<String, Value>,
    /// Variables for `publish: global:`.
    pub globals: Map<String, Value>,
    /// Tasks to start next, in order, without duplicates.
    pub next: Vec<String>,
    /// Tasks with an edge from this task that this completion did not take
    /// (joins count them as failed arrivals).
    pub not_taken: Vec<String>,
    /// An engine command, which ends or pauses the execution.
    pub command: Option<Command>,
    /// For a task in ERROR: whether an on-error/on-complete clause handles it.
    pub error_handled: bool,
}

fn publish_into(
    publish: &Publish,
    ctx: &Context<'_>,
    branch: &mut Map<String, Value>,
    globals: &mut Map<String, Value>,
) -> Result<(), ExprError> {
    for (name, data) in &publish.branch {
        branch.insert(name.clone(), data.evaluate(ctx)?);
    }
    for (name, data) in &publish.global {
        globals.insert(name.clone(), data.evaluate(ctx)?);
    }
    Ok(())
}

/// Evaluate a finished task's publish clauses and transitions. `ctx`'s
/// lookup answers `task()` with this task's result.
///
/// Mistral findings: publish precedence is on-complete over the task's own
/// `publish` over on-success; a failing publish or condition expression
/// fails the execution at once, without following on-error.
pub fn after_task(
    workflow: &WorkflowSpec,
    task: &TaskSpec,
    outcome: &TaskOutcome,
    ctx: &Context<'_>,
) -> Result<Transitions, EngineError> {
    let fail = |e: &ExprError| {
        expression_failure(
            "Failed to handle action completion",
            &workflow.name,
            &task.name,
            e,
        )
    };
    let success = outcome.state == TaskState::Success;
    let mut out = Transitions::default();
    let (own_publish, outcome_clause) = if success {
        (task.publish.as_ref(), task.on_success.as_ref())
    } else {
        (task.publish_on_error.as_ref(), task.on_error.as_ref())
    };
    // Lowest precedence first, later ones overwrite.
    if success
        && let Some(clause) = outcome_clause
        && let Some(p) = &clause.publish
    {
        publish_into(p, ctx, &mut out.published, &mut out.globals).map_err(|e| fail(&e))?;
    }
    if let Some(p) = own_publish {
        publish_into(p, ctx, &mut out.published, &mut out.globals).map_err(|e| fail(&e))?;
    }
    if !success
        && let Some(clause) = outcome_clause
        && let Some(p) = &clause.publish
    {
        publish_into(p, ctx, &mut out.published, &mut out.globals).map_err(|e| fail(&e))?;
    }
    if let Some(clause) = &task.on_complete
        && let Some(p) = &clause.publish
    {
        publish_into(p, ctx, &mut out.published, &mut out.globals).map_err(|e| fail(&e))?;
    }

    if workflow.kind == WorkflowType::Reverse {
        // Reverse workflows have no transitions: the handler follows
        // `requires` from the plan instead.
        return Ok(out);
    }
    if !success {
        out.error_handled = task.on_error.is_some() || task.on_complete.is_some();
    }
    // Publish results are visible to transition conditions, as in Mistral.
    let mut view = as_object(ctx.data);
    for (k, v) in &out.published {
        view.insert(k.clone(), v.clone());
    }
    let view = Value::Object(view);
    let cond_ctx = Context {
        data: &view,
        lookup: ctx.lookup,
    };
    let mut taken: Vec<&str> = Vec::new();
    let mut clauses: Vec<&OnClause> = Vec::new();
    if let Some(c) = outcome_clause {
        clauses.push(c);
    }
    if let Some(c) = &task.on_complete {
        clauses.push(c);
    }
    'clauses: for clause in clauses {
        for transition in &clause.next {
            if let Some(condition) = &transition.condition
                && !template_truthy(condition, &cond_ctx).map_err(|e| {
                    EngineError::Expression(format!(
                        "Failed to handle action completion [error={e}, wf={}, task={}]",
                        workflow.name, task.name
                    ))
                })?
            {
                continue;
            }
            let msg = |m: &Option<Data>| -> Result<Option<String>, EngineError> {
                match m {
                    None => Ok(None),
                    Some(d) => d
                        .evaluate(&cond_ctx)
                        .map(|v| Some(text_of(&v)))
                        .map_err(|e| fail(&e)),
                }
            };
            match &transition.target {
                TransitionTarget::Task(name) => {
                    if !taken.contains(&name.as_str()) {
                        taken.push(name);
                        out.next.push(name.clone());
                    }
                }
                TransitionTarget::Noop => {}
                TransitionTarget::Fail { msg: m } => {
                    out.command = Some(Command::Fail(msg(m)?));
                    break 'clauses;
                }
                TransitionTarget::Succeed { msg: m } => {
                    out.command = Some(Command::Succeed(msg(m)?));
                    break 'clauses;
                }
                TransitionTarget::Pause { msg: m } => {
                    // The other transitions are kept: they are taken when
                    // the execution is resumed (Mistral finding A12).
                    if out.command.is_none() {
                        out.command = Some(Command::Pause(msg(m)?));
                    }
                }
            }
        }
    }
    if matches!(
        out.command,
        Some(Command::Succeed(_)) | Some(Command::Fail(_))
    ) {
        // Mistral: siblings of a `succeed`/`fail` are never created.
        out.next.clear();
    }
    // Tasks this one has an edge to, but did not go to this time.
    for edge in outbound_edges(task) {
        if !taken.contains(&edge) && !out.not_taken.iter().any(|n| n == edge) {
            out.not_taken.push(edge.to_string());
        }
    }
    Ok(out)
}

/// Names of all tasks this task has a transition to, in any clause.
pub fn outbound_edges(task: &TaskSpec) -> Vec<&str> {
    let mut names = Vec::new();
    for clause in [&task.on_success, &task.on_error, &task.on_complete]
        .into_iter()
        .flatten()
    {
        for t in &clause.next {
            if let TransitionTarget::Task(name) = &t.target
                && !names.contains(&name.as_str())
            {
                names.push(name.as_str());
            }
        }
    }
    names
}

/// A value as text, the way Mistral puts it into a message.
pub fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// The output of an execution that ended.
///
/// Mistral findings: without `output`, a successful execution returns the
/// published variables (branch and global), not its input or vars. A failed
/// one returns `{"result": state_info}` merged with the published variables,
/// plus `output-on-error` when defined.
pub fn execution_output(
    workflow: &WorkflowSpec,
    success: bool,
    published: &Value,
    state_info: Option<&str>,
    ctx: &Context<'_>,
) -> Result<Value, EngineError> {
    let fail = |e: ExprError| {
        EngineError::Expression(format!(
            "Failed to evaluate workflow output [error={e}, wf={}]",
            workflow.name
        ))
    };
    if success {
        return match &workflow.output {
            Some(output) => output.evaluate(ctx).map_err(fail),
            None => Ok(published.clone()),
        };
    }
    let mut out = Map::new();
    out.insert(
        "result".into(),
        state_info.map_or(Value::Null, |s| Value::String(s.to_string())),
    );
    merge_into(&mut out, published);
    if let Some(on_error) = &workflow.output_on_error {
        let evaluated = on_error.evaluate(ctx).map_err(fail)?;
        merge_into(&mut out, &evaluated);
    }
    Ok(Value::Object(out))
}

/// A join's verdict after an arrival.
#[derive(Debug, Clone, PartialEq)]
pub enum JoinVerdict {
    /// Not all inbound tasks have spoken yet.
    Wait,
    /// Start the join task.
    Start,
    /// The join cannot be satisfied: these inbound tasks did not come.
    Fail(Vec<String>),
}

/// Decide a join from its arrivals: `(inbound task name, came)` pairs.
/// `join: all` needs every inbound task with an edge to come; `join: N`
/// needs N of them (Mistral's findings: an inbound edge not taken, or an
/// inbound task that failed, fails the join with `Failed by tasks: [...]`).
pub fn decide_join(required: usize, inbound: usize, arrivals: &[(String, bool)]) -> JoinVerdict {
    let came = arrivals.iter().filter(|(_, c)| *c).count();
    if came >= required {
        return JoinVerdict::Start;
    }
    let not_came: Vec<String> = arrivals
        .iter()
        .filter(|(_, c)| !*c)
        .map(|(n, _)| n.clone())
        .collect();
    let still_possible = inbound.saturating_sub(arrivals.len());
    if came + still_possible < required {
        JoinVerdict::Fail(not_came)
    } else {
        JoinVerdict::Wait
    }
}

/// A failed task for [`failure_summary`]: its name, id, state_info, and its
/// failed action executions as (id, index, error).
pub type FailedTask = (String, String, String, Vec<(String, i64, String)>);

/// The text Mistral gives an execution that failed because of tasks:
/// `Failure caused by error in tasks: t2\n\n  t2 [task_ex_id=...] -> info\n`
/// with one line per failed action execution under its task.
pub fn failure_summary(failed: &[FailedTask]) -> String {
    let names: Vec<&str> = failed.iter().map(|(name, _, _, _)| name.as_str()).collect();
    let mut text = format!("Failure caused by error in tasks: {}\n\n", names.join(", "));
    for (name, id, info, actions) in failed {
        text.push_str(&format!("  {name} [task_ex_id={id}] -> {info}\n"));
        for (action_id, index, error) in actions {
            text.push_str(&format!(
                "    [action_ex_id={action_id}, idx={index}]: {error}\n"
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests;

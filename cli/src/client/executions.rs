//! Executions, task executions and action executions; `execution-create
//! --wait` follows a run to its end.

use super::format::{self, cut, duration, field, first_line, or_none};
use super::{Api, Body, Common, decoded, json_argument, query};
use anyhow::bail;
use clap::Args;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args)]
pub struct ExecutionCreate {
    /// Workflow name or id.
    pub workflow: String,
    /// Workflow input: JSON, or @file with JSON or YAML.
    pub input: Option<String>,
    /// Execution params (env, ...): JSON, or @file.
    pub params: Option<String>,
    /// Workflow input (instead of the positional argument).
    #[arg(long = "input", conflicts_with = "input")]
    pub input_option: Option<String>,
    /// Execution params (instead of the positional argument).
    #[arg(long = "params", conflicts_with = "params")]
    pub params_option: Option<String>,
    #[arg(short = 'd', long, default_value = "")]
    pub description: String,
    /// Follow the execution, print its tasks as they finish and its output;
    /// exit 0 only when it ends in SUCCESS (stops, non-zero, when it pauses).
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub target: super::target::TargetArgs,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct IdArgs {
    pub id: String,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct OptionalIdArgs {
    pub id: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct ExecutionList {
    /// Only executions of this workflow.
    #[arg(long)]
    pub workflow: Option<String>,
    /// Only executions in this state.
    #[arg(long)]
    pub state: Option<String>,
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct ExecutionUpdate {
    pub id: String,
    /// RUNNING, PAUSED, SUCCESS, ERROR or CANCELLED.
    #[arg(short = 's', long)]
    pub state: Option<String>,
    #[arg(long)]
    pub state_info: Option<String>,
    /// New env variables (JSON).
    #[arg(long)]
    pub env: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct TaskRerun {
    pub id: String,
    /// Rerun only the failed items of a with-items task.
    #[arg(long)]
    pub no_reset: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct ActionExecutionUpdate {
    pub id: String,
    #[arg(long)]
    pub state: String,
    /// The action's result: JSON, or a plain string.
    #[arg(long)]
    pub output: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

const EXECUTION_COLUMNS: [&str; 12] = [
    "ID",
    "Workflow ID",
    "Workflow name",
    "Workflow namespace",
    "Description",
    "Task Execution ID",
    "Root Execution ID",
    "State",
    "State info",
    "Created at",
    "Updated at",
    "Duration",
];

fn is_finished(state: &str) -> bool {
    matches!(state, "SUCCESS" | "ERROR" | "CANCELLED")
}

fn execution_row(e: &Value, listed: bool) -> Vec<Value> {
    let state = e["state"].as_str().unwrap_or_default();
    let end = is_finished(state)
        .then(|| e["updated_at"].as_str())
        .flatten();
    let state_info = field(e, "state_info");
    vec![
        field(e, "id"),
        field(e, "workflow_id"),
        field(e, "workflow_name"),
        field(e, "workflow_namespace"),
        field(e, "description"),
        or_none(e, "task_execution_id"),
        or_none(e, "root_execution_id"),
        field(e, "state"),
        if listed { cut(state_info) } else { state_info },
        field(e, "created_at"),
        or_none(e, "updated_at"),
        Value::String(duration(e["created_at"].as_str(), end)),
    ]
}

fn show_task(format: format::Format, t: &Value) {
    format::show(
        format,
        TASK_COLUMNS.into_iter().zip(task_row(t, false)).collect(),
    );
}

/// The list parameters the client sends, as Mistral's does: the newest 100.
const NEWEST_HUNDRED: [(&str, &str); 3] = [
    ("limit", "100"),
    ("sort_keys", "created_at"),
    ("sort_dirs", "desc"),
];

fn show_execution(format: format::Format, e: &Value) {
    format::show(
        format,
        EXECUTION_COLUMNS
            .into_iter()
            .zip(execution_row(e, false))
            .collect(),
    );
}

const TASK_COLUMNS: [&str; 11] = [
    "ID",
    "Name",
    "Workflow name",
    "Workflow namespace",
    "Workflow Execution ID",
    "State",
    "State info",
    "Created at",
    "Started at",
    "Finished at",
    "Duration",
];

fn task_row(t: &Value, listed: bool) -> Vec<Value> {
    let state_info = field(t, "state_info");
    vec![
        field(t, "id"),
        field(t, "name"),
        field(t, "workflow_name"),
        field(t, "workflow_namespace"),
        field(t, "workflow_execution_id"),
        field(t, "state"),
        if listed { cut(state_info) } else { state_info },
        field(t, "created_at"),
        or_none(t, "started_at"),
        or_none(t, "finished_at"),
        Value::String(duration(
            t["started_at"].as_str(),
            t["finished_at"].as_str(),
        )),
    ]
}

fn action_fields(a: &Value, listed: bool) -> Vec<(&'static str, Value)> {
    let mut fields = vec![
        ("ID", field(a, "id")),
        ("Name", field(a, "name")),
        ("Workflow name", field(a, "workflow_name")),
        ("Workflow namespace", field(a, "workflow_namespace")),
        ("Task name", field(a, "task_name")),
        ("Task ID", field(a, "task_execution_id")),
        ("State", field(a, "state")),
    ];
    if !listed {
        fields.push(("State info", field(a, "state_info")));
    }
    fields.extend([
        ("Accepted", field(a, "accepted")),
        ("Created at", field(a, "created_at")),
        ("Updated at", or_none(a, "updated_at")),
    ]);
    fields
}

fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

pub async fn execution_create(args: ExecutionCreate) -> anyhow::Result<ExitCode> {
    // Credentials first: a partial target set stops before any request.
    let mut api = Api::new(&args.common.connection)?;
    for (name, value) in args.target.headers().await? {
        api = api.with_header(name, value);
    }
    let mut body = json!({"description": args.description});
    body[if is_uuid(&args.workflow) {
        "workflow_id"
    } else {
        "workflow_name"
    }] = json!(args.workflow);
    // Sent as JSON strings, like mistralclient does.
    if let Some(input) = args.input.as_ref().or(args.input_option.as_ref()) {
        body["input"] = json!(json_argument("input", input)?.to_string());
    }
    if let Some(params) = args.params.as_ref().or(args.params_option.as_ref()) {
        body["params"] = json!(json_argument("params", params)?.to_string());
    }
    let execution = api
        .send(Method::POST, "/executions", Body::Json(body))
        .await?;
    if !args.wait {
        show_execution(args.common.format, &execution);
        return Ok(ExitCode::SUCCESS);
    }
    wait(&api, args.common.format, &execution).await
}

/// Polls the execution's tasks every 100 ms, printing each task once it
/// finishes, until the execution ends; then prints its output.
async fn wait(api: &Api, format: format::Format, created: &Value) -> anyhow::Result<ExitCode> {
    let id = created["id"].as_str().unwrap_or_default().to_string();
    // In JSON mode stdout carries only the final document.
    let progress = |line: String| match format {
        format::Format::Table => println!("{line}"),
        format::Format::Json => eprintln!("{line}"),
    };
    progress(format!(
        "Execution {id} of {} started",
        created["workflow_name"].as_str().unwrap_or_default()
    ));
    let mut printed = HashSet::new();
    loop {
        // The execution first: once it is finished, its tasks are too.
        let execution = api.get(&format!("/executions/{id}")).await?;
        let tasks = api.get(&format!("/executions/{id}/tasks")).await?;
        let mut finished: Vec<&Value> = tasks["tasks"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .filter(|t| is_finished(t["state"].as_str().unwrap_or_default()))
                    .filter(|t| !printed.contains(t["id"].as_str().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        finished.sort_by_key(|t| t["finished_at"].as_str().unwrap_or_default().to_string());
        for t in finished {
            printed.insert(t["id"].as_str().unwrap_or_default().to_string());
            let mut line = format!(
                "  {} {} {}",
                t["name"].as_str().unwrap_or_default(),
                t["state"].as_str().unwrap_or_default(),
                duration(t["started_at"].as_str(), t["finished_at"].as_str())
            );
            if let Some(info) = t["state_info"].as_str() {
                line.push_str(&format!(": {}", first_line(info)));
            }
            progress(line);
        }
        let state = execution["state"].as_str().unwrap_or_default();
        // A paused execution waits for someone else: stop following it
        // (exit non-zero, with its state), rather than poll for ever.
        if is_finished(state) || state == "PAUSED" {
            let output = decoded(&field(&execution, "output"));
            match format {
                format::Format::Table => {
                    let mut line = format!(
                        "Execution {id} {state} in {}",
                        duration(
                            execution["created_at"].as_str(),
                            execution["updated_at"].as_str()
                        )
                    );
                    if let Some(info) = execution["state_info"].as_str() {
                        line.push_str(&format!(": {}", first_line(info)));
                    }
                    println!("{line}");
                    println!("{}", format::pretty(&output));
                }
                format::Format::Json => {
                    let mut fields: serde_json::Map<String, Value> = EXECUTION_COLUMNS
                        .iter()
                        .map(|c| c.to_string())
                        .zip(execution_row(&execution, false))
                        .collect();
                    fields.insert("Output".into(), output);
                    println!("{}", format::pretty(&Value::Object(fields)));
                }
            }
            return Ok(if state == "SUCCESS" {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn execution_get(args: IdArgs) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.common.connection)?;
    let execution = api.get(&format!("/executions/{}", args.id)).await?;
    show_execution(args.common.format, &execution);
    Ok(ExitCode::SUCCESS)
}

pub async fn execution_list(args: ExecutionList) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.common.connection)?;
    let limit = args.limit.to_string();
    let mut pairs = vec![
        ("limit", limit.as_str()),
        ("sort_keys", "created_at"),
        ("sort_dirs", "desc"),
    ];
    if let Some(w) = &args.workflow {
        pairs.push(("workflow_name", w));
    }
    if let Some(s) = &args.state {
        pairs.push(("state", s));
    }
    let answer = api.get(&format!("/executions?{}", query(&pairs))).await?;
    let rows = answer["executions"]
        .as_array()
        .map(|es| es.iter().map(|e| execution_row(e, true)).collect())
        .unwrap_or_default();
    format::list(args.common.format, &EXECUTION_COLUMNS, rows);
    Ok(ExitCode::SUCCESS)
}

pub async fn execution_update(args: ExecutionUpdate) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.common.connection)?;
    let mut body = json!({});
    if let Some(s) = &args.state {
        body["state"] = json!(s);
    }
    if let Some(info) = &args.state_info {
        body["state_info"] = json!(info);
    }
    if let Some(env) = &args.env {
        body["params"] = json!({"env": json_argument("env", env)?});
    }
    if let Some(d) = &args.description {
        body["description"] = json!(d);
    }
    if body.as_object().is_some_and(|b| b.is_empty()) {
        bail!("nothing to update: give -s STATE, --env or --description");
    }
    let execution = api
        .send(
            Method::PUT,
            &format!("/executions/{}", args.id),
            Body::Json(body),
        )
        .await?;
    show_execution(args.common.format, &execution);
    Ok(ExitCode::SUCCESS)
}

pub async fn task_list(args: OptionalIdArgs) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.common.connection)?;
    let pairs = NEWEST_HUNDRED;
    let path = match &args.id {
        Some(id) => format!("/executions/{id}/tasks?{}", query(&pairs)),
        None => format!("/tasks?{}", query(&pairs)),
    };
    let answer = api.get(&path).await?;
    let rows = answer["tasks"]
        .as_array()
        .map(|ts| ts.iter().map(|t| task_row(t, true)).collect())
        .unwrap_or_default();
    format::list(args.common.format, &TASK_COLUMNS, rows);
    Ok(ExitCode::SUCCESS)
}

pub async fn task_get(args: IdArgs) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.common.connection)?;
    let task = api.get(&format!("/tasks/{}", args.id)).await?;
    show_task(args.common.format, &task);
    Ok(ExitCode::SUCCESS)
}

pub async fn task_rerun(args: TaskRerun) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.common.connection)?;
    let body = json!({"id": args.id, "state": "RUNNING", "reset": !args.no_reset});
    let task = api
        .send(
            Method::PUT,
            &format!("/tasks/{}", args.id),
            Body::Json(body),
        )
        .await?;
    show_task(args.common.format, &task);
    Ok(ExitCode::SUCCESS)
}

pub async fn action_execution_list(args: OptionalIdArgs) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.common.connection)?;
    let pairs = NEWEST_HUNDRED;
    let path = match &args.id {
        Some(id) => format!("/tasks/{id}/action_executions?{}", query(&pairs)),
        None => format!("/action_executions?{}", query(&pairs)),
    };
    let answer = api.get(&path).await?;
    let actions: Vec<Value> = answer["action_executions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let headers: Vec<&str> = action_fields(&json!({}), true)
        .into_iter()
        .map(|(h, _)| h)
        .collect();
    let rows = actions
        .iter()
        .map(|a| action_fields(a, true).into_iter().map(|(_, v)| v).collect())
        .collect();
    format::list(args.common.format, &headers, rows);
    Ok(ExitCode::SUCCESS)
}

pub async fn action_execution_update(args: ActionExecutionUpdate) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.common.connection)?;
    let mut body = json!({"state": args.state});
    if let Some(output) = &args.output {
        // An object, as mistralclient sends it; text that is not JSON as is.
        body["output"] = serde_json::from_str(output).unwrap_or_else(|_| json!(output));
    }
    let action = api
        .send(
            Method::PUT,
            &format!("/action_executions/{}", args.id),
            Body::Json(body),
        )
        .await?;
    format::show(args.common.format, action_fields(&action, false));
    Ok(ExitCode::SUCCESS)
}

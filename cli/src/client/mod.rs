//! The client commands: `bora workflow-create`, `bora execution-list`, ...,
//! in python-mistralclient's vocabulary and output, against any Mistral v2
//! API (`bora serve` or Mistral itself). A thin layer: each command is one
//! or a few HTTP requests and a table.
//!
//! `definitions.rs` holds workflows, workbooks and environments,
//! `executions.rs` executions, task and action executions, `report.rs` the
//! execution report, `format.rs` the tables and `-f json`.

mod definitions;
mod executions;
mod format;
mod report;
mod target;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::process::ExitCode;

pub use format::Format;

/// Where the API is.
#[derive(Args, Clone)]
pub struct Connection {
    /// The Mistral v2 API, with or without the trailing `/v2`.
    #[arg(long, env = "BORA_URL", default_value = "http://127.0.0.1:8989/v2")]
    pub url: String,
}

/// Where the API is and how to print the answer.
#[derive(Args, Clone)]
pub struct Common {
    #[command(flatten)]
    pub connection: Connection,
    /// Output format: a table, or JSON for scripts (mistralclient's `-f json`).
    #[arg(short = 'f', long = "format", value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Upload the workflows of a YAML file.
    WorkflowCreate(definitions::WorkflowCreate),
    /// List workflows.
    WorkflowList(definitions::WorkflowList),
    /// Show one workflow.
    WorkflowGet(definitions::NamedArgs),
    /// Delete a workflow.
    WorkflowDelete(definitions::NamedArgs),
    /// Upload a workbook.
    WorkbookCreate(definitions::FileArgs),
    /// Create an environment from a YAML or JSON file (name, description, variables).
    EnvironmentCreate(definitions::FileArgs),
    /// Start an execution of a workflow.
    ExecutionCreate(Box<executions::ExecutionCreate>),
    /// Show one execution.
    ExecutionGet(executions::IdArgs),
    /// List executions, newest first.
    ExecutionList(executions::ExecutionList),
    /// Pause, resume, cancel or fail an execution; or update its env.
    ExecutionUpdate(executions::ExecutionUpdate),
    /// List the task executions of an execution (or all of them).
    TaskList(executions::OptionalIdArgs),
    /// Show one task execution.
    TaskGet(executions::IdArgs),
    /// Run a failed task again.
    TaskRerun(executions::TaskRerun),
    /// List the action executions of a task (or all of them).
    ActionExecutionList(executions::OptionalIdArgs),
    /// Complete an asynchronous action execution.
    ActionExecutionUpdate(executions::ActionExecutionUpdate),
    /// The task tree of an execution, sub-workflows nested, as text or Graphviz.
    ExecutionReport(report::ReportArgs),
}

/// Runs one client command; an error prints the server's message and exits 1.
pub async fn run(command: ClientCommand) -> anyhow::Result<ExitCode> {
    let result = match command {
        ClientCommand::WorkflowCreate(a) => definitions::workflow_create(a).await,
        ClientCommand::WorkflowList(a) => definitions::workflow_list(a).await,
        ClientCommand::WorkflowGet(a) => definitions::workflow_get(a).await,
        ClientCommand::WorkflowDelete(a) => definitions::workflow_delete(a).await,
        ClientCommand::WorkbookCreate(a) => definitions::workbook_create(a).await,
        ClientCommand::EnvironmentCreate(a) => definitions::environment_create(a).await,
        ClientCommand::ExecutionCreate(a) => executions::execution_create(*a).await,
        ClientCommand::ExecutionGet(a) => executions::execution_get(a).await,
        ClientCommand::ExecutionList(a) => executions::execution_list(a).await,
        ClientCommand::ExecutionUpdate(a) => executions::execution_update(a).await,
        ClientCommand::TaskList(a) => executions::task_list(a).await,
        ClientCommand::TaskGet(a) => executions::task_get(a).await,
        ClientCommand::TaskRerun(a) => executions::task_rerun(a).await,
        ClientCommand::ActionExecutionList(a) => executions::action_execution_list(a).await,
        ClientCommand::ActionExecutionUpdate(a) => executions::action_execution_update(a).await,
        ClientCommand::ExecutionReport(a) => report::execution_report(a).await,
    };
    match result {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("ERROR: {e:#}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// A request body.
pub enum Body {
    Empty,
    Json(Value),
    /// YAML text, sent as `text/plain` like mistralclient does.
    Text(String),
}

/// The Mistral v2 API at one URL.
pub struct Api {
    http: reqwest::Client,
    /// Ends with `/v2`.
    base: String,
    /// Sent with every request (`X-Auth-Token` of the home cloud, the
    /// `X-Target-*` headers of execution-create).
    headers: Vec<(String, String)>,
}

impl Api {
    pub fn new(connection: &Connection) -> anyhow::Result<Api> {
        let trimmed = connection.url.trim_end_matches('/');
        let base = if trimmed.ends_with("/v2") {
            trimmed.to_string()
        } else {
            format!("{trimmed}/v2")
        };
        let http = bora::http::client_builder()
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Api {
            http,
            base,
            headers: Vec::new(),
        })
    }

    /// Send `name: value` with every request from now on.
    pub fn with_header(mut self, name: &str, value: String) -> Api {
        self.headers.push((name.to_string(), value));
        self
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(reqwest::Method::GET, path, Body::Empty).await
    }

    /// Sends a request to `base + path`; a non-2xx answer is an error with
    /// the server's `faultstring`. An empty answer (204) is `null`.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Body,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.clone(), &url);
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = match body {
            Body::Empty => request,
            Body::Json(v) => request
                .header("content-type", "application/json")
                .body(v.to_string()),
            Body::Text(t) => request.header("content-type", "text/plain").body(t),
        };
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("cannot read the answer of {method} {url}"))?;
        if !status.is_success() {
            let fault = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| {
                    v.get("faultstring")
                        .and_then(Value::as_str)
                        .map(String::from)
                })
                .unwrap_or_else(|| format!("{status}: {}", text.trim()));
            bail!("{fault}");
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .with_context(|| format!("{method} {url} did not answer JSON: {text}"))
    }
}

/// `k=v&...` with the values URL-encoded.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    q.finish()
}

/// A JSON argument (`'{"a": 1}'`), or `@file` (or, as mistralclient
/// allows, a plain path) holding JSON or YAML.
pub fn json_argument(what: &str, text: &str) -> anyhow::Result<Value> {
    let path = text.strip_prefix('@').or_else(|| {
        (serde_json::from_str::<Value>(text).is_err() && std::path::Path::new(text).is_file())
            .then_some(text)
    });
    if let Some(path) = path {
        let content = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {what} file {path}"))?;
        return serde_yaml_ng::from_str(&content)
            .with_context(|| format!("{what} file {path} is not JSON or YAML"));
    }
    serde_json::from_str(text).with_context(|| format!("{what} is not valid JSON: {text}"))
}

/// A JSON sub-document that the API sends as a string (`"{\"a\": 1}"`).
pub fn decoded(value: &Value) -> Value {
    match value {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| value.clone()),
        other => other.clone(),
    }
}

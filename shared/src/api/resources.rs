//! Records rendered the way Mistral 23 renders them: sub-documents as
//! strings of JSON, timestamps as `2026-11-22 16:35:54`, nulls present,
//! and the keys in Mistral's order.

use crate::engine::states::TaskState;
use crate::store::catalog::{AdHocAction, Environment, Workbook, WorkflowDefinition};
use crate::store::{ActionRecord, ExecutionRecord, Millis, TaskRecord};
use crate::time;
use serde_json::{Map, Value, json};

/// A sub-document as the string of JSON Mistral sends.
pub(crate) fn encoded(v: &Value) -> String {
    // serde_json's compact form has no spaces; Mistral's Python json.dumps
    // writes `", "` and `": "`. Clients parse it either way, but people
    // compare by eye, so write it like Python does.
    python_json(v)
}

fn python_json(v: &Value) -> String {
    match v {
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(python_json).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), python_json(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn ts(millis: Millis) -> Value {
    json!(time::format(millis))
}

fn opt_ts(millis: Option<Millis>) -> Value {
    millis.map(ts).unwrap_or(Value::Null)
}

/// Keys of `params` that are never shown: sealed credentials of a target
/// cloud or of deferred authentication live there.
const SECRET_PARAMS: &[&str] = &[
    "target_auth_token",
    "target_auth_password",
    "target_application_credential_secret",
    "trust_id",
    "password",
];

/// `params` as the API shows it. THE place where secrets are removed
/// before anything leaves the API: every rendering of an execution goes
/// through here.
pub(crate) fn public_params(params: &Value) -> Value {
    match params {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !SECRET_PARAMS.contains(&k.as_str()))
                .map(|(k, v)| {
                    if k == "target" {
                        // The sealed target: its auth URL, region and
                        // project, `***` for the token.
                        let shown =
                            serde_json::from_value::<crate::target::SealedTarget>(v.clone())
                                .map(|t| t.public_view())
                                .unwrap_or_else(|_| Value::String("***".into()));
                        (k.clone(), shown)
                    } else {
                        (k.clone(), v.clone())
                    }
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// How much of an execution a response shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExecutionView {
    /// POST and PUT answers: no `published_global`.
    Written,
    /// GET one: everything.
    Full,
    /// List items: no `output`, no `published_global`.
    Listed,
}

pub(crate) fn execution(e: &ExecutionRecord, view: ExecutionView) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(e.id));
    m.insert("workflow_id".into(), json!(e.workflow_id));
    m.insert("workflow_name".into(), json!(e.workflow_name));
    m.insert("workflow_namespace".into(), json!(e.workflow_namespace));
    m.insert("description".into(), json!(e.description));
    m.insert("tags".into(), json!([]));
    m.insert("params".into(), json!(encoded(&public_params(&e.params))));
    m.insert(
        "task_execution_id".into(),
        json!(e.parent.as_ref().map(|p| p.task_execution_id.clone())),
    );
    m.insert("root_execution_id".into(), json!(e.root_execution_id));
    m.insert("state".into(), json!(e.state.as_str()));
    m.insert("state_info".into(), json!(e.state_info));
    m.insert("input".into(), json!(encoded(&e.input)));
    if view != ExecutionView::Listed {
        m.insert("output".into(), json!(encoded(&e.output)));
    }
    m.insert("created_at".into(), ts(e.created_at));
    m.insert("updated_at".into(), ts(e.updated_at));
    m.insert("project_id".into(), json!(e.project_id));
    if view == ExecutionView::Full {
        m.insert("published_global".into(), json!(encoded(&e.globals)));
    }
    Value::Object(m)
}

/// A task execution; `kind` is `ACTION` or `WORKFLOW`, `workflow_id` and
/// `namespace` come from its execution.
pub(crate) fn task(
    t: &TaskRecord,
    kind: &str,
    workflow_id: Option<&str>,
    namespace: &str,
    project_id: &str,
    with_result: bool,
) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(t.id));
    m.insert("name".into(), json!(t.name));
    m.insert("type".into(), json!(kind));
    m.insert("workflow_name".into(), json!(t.workflow_name));
    m.insert("workflow_namespace".into(), json!(namespace));
    m.insert("workflow_id".into(), json!(workflow_id));
    m.insert("workflow_execution_id".into(), json!(t.execution_id));
    m.insert("tags".into(), json!([]));
    m.insert("state".into(), json!(t.state.as_str()));
    m.insert("state_info".into(), json!(t.state_info));
    m.insert("project_id".into(), json!(project_id));
    // The engine's bookkeeping is not Mistral's runtime context: show none.
    m.insert("runtime_context".into(), json!("{}"));
    if with_result {
        let result = if t.state.is_terminal() || t.state == TaskState::Skipped {
            encoded(&t.result)
        } else {
            "[]".to_string()
        };
        m.insert("result".into(), json!(result));
    }
    m.insert("published".into(), json!(encoded(&t.published)));
    m.insert("processed".into(), json!(t.processed));
    m.insert("created_at".into(), ts(t.created_at));
    m.insert("updated_at".into(), ts(t.updated_at));
    m.insert("started_at".into(), opt_ts(t.started_at));
    m.insert("finished_at".into(), opt_ts(t.finished_at));
    Value::Object(m)
}

/// How much of an action execution a response shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActionView {
    Full,
    /// In lists (`GET /v2/action_executions`, under a task): no `output`.
    /// Mistral 23 sends every other field in both lists, and
    /// python-mistralclient's `action-execution-list` needs them
    /// (`workflow_namespace`).
    OfTask,
}

pub(crate) fn action_execution(
    a: &ActionRecord,
    workflow_name: Option<&str>,
    namespace: &str,
    project_id: &str,
    view: ActionView,
) -> Value {
    let output = if a.state.is_terminal() {
        json!(encoded(&json!({ "result": a.output })))
    } else {
        Value::Null
    };
    let task_execution_id = if a.task_execution_id.is_empty() {
        Value::Null
    } else {
        json!(a.task_execution_id)
    };
    let mut m = Map::new();
    m.insert("id".into(), json!(a.id));
    m.insert("workflow_name".into(), json!(workflow_name));
    m.insert("workflow_namespace".into(), json!(namespace));
    m.insert("task_execution_id".into(), task_execution_id);
    m.insert("state".into(), json!(a.state.as_str()));
    m.insert("state_info".into(), json!(a.state_info));
    m.insert("tags".into(), Value::Null);
    m.insert("name".into(), json!(a.name));
    m.insert("description".into(), json!(""));
    m.insert("project_id".into(), json!(project_id));
    m.insert("accepted".into(), json!(a.state.is_terminal()));
    m.insert("input".into(), json!(encoded(&a.input)));
    if view == ActionView::Full {
        m.insert("output".into(), output);
    }
    m.insert("created_at".into(), ts(a.created_at));
    m.insert("updated_at".into(), ts(a.updated_at));
    Value::Object(m)
}

/// How a workflow is shown: POST/PUT answers carry `interface` as an
/// object, GET answers as a string of JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WorkflowView {
    Created,
    Updated,
    Read,
}

pub(crate) fn workflow(w: &WorkflowDefinition, view: WorkflowView) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(w.id));
    m.insert("name".into(), json!(w.name));
    m.insert("namespace".into(), json!(w.namespace));
    m.insert("input".into(), json!(w.input));
    m.insert(
        "interface".into(),
        match view {
            WorkflowView::Read => json!(encoded(&w.interface)),
            _ => w.interface.clone(),
        },
    );
    m.insert("definition".into(), json!(w.definition));
    m.insert("checksum".into(), json!(w.checksum));
    m.insert("tags".into(), json!(w.tags));
    m.insert("scope".into(), json!(w.scope));
    m.insert("project_id".into(), json!(w.project_id));
    m.insert("created_at".into(), ts(w.created_at));
    if view != WorkflowView::Created {
        m.insert("updated_at".into(), opt_ts(w.updated_at));
    }
    Value::Object(m)
}

pub(crate) fn workbook(w: &Workbook, with_updated: bool) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(w.id));
    m.insert("name".into(), json!(w.name));
    m.insert("namespace".into(), json!(w.namespace));
    m.insert("definition".into(), json!(w.definition));
    m.insert("tags".into(), json!(w.tags));
    m.insert("scope".into(), json!(w.scope));
    m.insert("project_id".into(), json!(w.project_id));
    m.insert("created_at".into(), ts(w.created_at));
    if with_updated {
        m.insert("updated_at".into(), opt_ts(w.updated_at));
    }
    Value::Object(m)
}

/// A built-in action: id is its name, no timestamps (Mistral shows `""`).
pub(crate) fn std_action(info: &crate::actions::ActionInfo) -> Value {
    json!({
        "id": info.name,
        "name": info.name,
        "is_system": false,
        "input": input_summary(&info.input),
        "description": info.description,
        "tags": null,
        "definition": "",
        "scope": null,
        "project_id": null,
        "created_at": "",
        "updated_at": "",
        "namespace": "",
    })
}

pub(crate) fn ad_hoc_action(a: &AdHocAction) -> Value {
    json!({
        "id": a.id,
        "name": a.name,
        "is_system": false,
        "input": a.input,
        "description": a.description,
        "tags": a.tags,
        "definition": a.definition,
        "scope": a.scope,
        "project_id": a.project_id,
        "created_at": time::format(a.created_at),
        "updated_at": a.updated_at.map(time::format).unwrap_or_default(),
        "namespace": a.namespace,
    })
}

/// How an environment is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EnvironmentView {
    Created,
    Full,
    Listed,
}

pub(crate) fn environment(e: &Environment, view: EnvironmentView) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(e.id));
    m.insert("name".into(), json!(e.name));
    if view != EnvironmentView::Listed {
        m.insert("description".into(), json!(e.description));
    }
    m.insert("variables".into(), json!(encoded(&e.variables)));
    m.insert("scope".into(), json!(e.scope));
    if view != EnvironmentView::Listed {
        m.insert("project_id".into(), json!(e.project_id));
    }
    m.insert("created_at".into(), ts(e.created_at));
    if view != EnvironmentView::Created {
        m.insert("updated_at".into(), opt_ts(e.updated_at));
    }
    Value::Object(m)
}

/// Mistral's one-line input summary: `a, b="2"` (required names bare,
/// defaults quoted).
pub(crate) fn input_summary(input: &[crate::workflow::InputParam]) -> String {
    input
        .iter()
        .map(|p| match &p.default {
            None => p.name.clone(),
            Some(Value::String(s)) => format!("{}=\"{s}\"", p.name),
            Some(v) => format!("{}=\"{v}\"", p.name),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `interface.input` as Mistral lists it: names, or `{name: default}`.
pub(crate) fn interface_input(input: &[crate::workflow::InputParam]) -> Value {
    Value::Array(
        input
            .iter()
            .map(|p| match &p.default {
                None => json!(p.name),
                Some(v) => {
                    let mut m = Map::new();
                    m.insert(p.name.clone(), v.clone());
                    Value::Object(m)
                }
            })
            .collect(),
    )
}

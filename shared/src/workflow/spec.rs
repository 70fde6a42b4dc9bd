//! The typed form of a workflow document (Mistral workflow language v2).
//!
//! The parser in `parse.rs` turns YAML into these types once, when a
//! definition is stored; everything after that (engine, handlers, API) reads
//! only these types. Expressions inside are already compiled (`Data`,
//! `Template`), so running a task never parses text again.
//!
//! `task-defaults` are already merged into every task by the parser: the
//! engine never looks at defaults.

use crate::expr::{Data, Template};
use serde_json::Value;

/// One YAML document: the workflows and ad-hoc actions it defines.
/// A workbook document has a `name` and its workflows are named
/// `<workbook>.<workflow>`.
#[derive(Debug, Clone)]
pub struct Document {
    /// `name:` of a workbook; `None` for a plain workflow document.
    pub workbook_name: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    /// In the order they appear in the document.
    pub workflows: Vec<WorkflowSpec>,
    pub actions: Vec<AdHocActionSpec>,
}

impl Document {
    pub fn workflow(&self, name: &str) -> Option<&WorkflowSpec> {
        self.workflows.iter().find(|w| w.name == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkflowType {
    Direct,
    Reverse,
}

impl WorkflowType {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowType::Direct => "direct",
            WorkflowType::Reverse => "reverse",
        }
    }
}

/// An input parameter: `- name` (required) or `- name: default`.
#[derive(Debug, Clone, PartialEq)]
pub struct InputParam {
    pub name: String,
    /// `None`: required. `Some(v)`: optional with that default (may be null).
    pub default: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct WorkflowSpec {
    /// Full name (`wb.wf` inside a workbook).
    pub name: String,
    pub kind: WorkflowType,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub input: Vec<InputParam>,
    /// `output:`; `None` means the workflow returns `{}`... see engine docs.
    pub output: Option<Data>,
    pub output_on_error: Option<Data>,
    /// `vars:`, evaluated once at start against the input.
    pub vars: Option<Data>,
    /// In document order.
    pub tasks: Vec<TaskSpec>,
}

impl WorkflowSpec {
    pub fn task(&self, name: &str) -> Option<&TaskSpec> {
        self.tasks.iter().find(|t| t.name == name)
    }
}

/// What a task runs.
#[derive(Debug, Clone)]
pub enum TaskAction {
    /// `action: NAME k=v ...` plus `input:`. `input` holds the inline
    /// parameters merged with the `input:` map (the map wins).
    Action { name: String, input: Data },
    /// `workflow: NAME k=v ...` plus `input:`.
    Workflow { name: String, input: Data },
    /// Neither `action` nor `workflow`: Mistral runs `std.noop`.
    Noop,
}

#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub name: String,
    pub description: Option<String>,
    pub action: TaskAction,
    /// `publish:` on success (a map of name -> expression), with the
    /// `branch`/`global` split of the advanced form.
    pub publish: Option<Publish>,
    pub publish_on_error: Option<Publish>,
    pub on_success: Option<OnClause>,
    pub on_error: Option<OnClause>,
    pub on_complete: Option<OnClause>,
    pub join: Option<Join>,
    pub with_items: Option<WithItems>,
    pub retry: Option<Retry>,
    /// Seconds; may be an expression.
    pub wait_before: Option<Data>,
    pub wait_after: Option<Data>,
    pub timeout: Option<Data>,
    /// `pause-before: true` or an expression.
    pub pause_before: Option<Data>,
    /// Max concurrent items for with-items (also `with-items` `concurrency`).
    pub concurrency: Option<Data>,
    /// `keep-result: false` drops the result after publishing.
    pub keep_result: bool,
    /// Expression; when true after the action succeeded, the task fails.
    pub fail_on: Option<Template>,
    /// Reverse workflows: tasks this one needs first.
    pub requires: Vec<String>,
    pub safe_rerun: bool,
}

/// Values published by a task. `branch` goes into the task's outbound
/// context (what downstream tasks see as `$`), `global` into the execution's
/// global context (read with `global()` and visible to all tasks).
#[derive(Debug, Clone)]
pub struct Publish {
    pub branch: Vec<(String, Data)>,
    pub global: Vec<(String, Data)>,
}

/// `on-success`, `on-error` or `on-complete`: either a plain list of
/// transitions, or the `{publish, next}` form.
#[derive(Debug, Clone)]
pub struct OnClause {
    pub publish: Option<Publish>,
    pub next: Vec<Transition>,
}

#[derive(Debug, Clone)]
pub struct Transition {
    pub target: TransitionTarget,
    /// `name: <% cond %>`: taken only when the condition is truthy.
    pub condition: Option<Template>,
}

#[derive(Debug, Clone)]
pub enum TransitionTarget {
    Task(String),
    /// Engine commands. `msg` may hold an expression.
    Noop,
    Fail { msg: Option<Data> },
    Succeed { msg: Option<Data> },
    Pause { msg: Option<Data> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// `join: all`: wait for every inbound task.
    All,
    /// `join: N` (`join: one` is `N = 1`).
    Count(u32),
}

#[derive(Debug, Clone)]
pub struct WithItems {
    /// `x in <% $.list %>`, several zipped together.
    pub vars: Vec<(String, Template)>,
}

#[derive(Debug, Clone)]
pub struct Retry {
    pub count: Data,
    /// Seconds between attempts.
    pub delay: Data,
    pub break_on: Option<Template>,
    pub continue_on: Option<Template>,
}

/// An ad-hoc action: a named wrapper of a base action with preset input.
#[derive(Debug, Clone)]
pub struct AdHocActionSpec {
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub base: String,
    /// `base-input:`, evaluated with the ad-hoc action's input as `$`.
    pub base_input: Data,
    pub input: Vec<InputParam>,
    /// `output:`, evaluated with the base action's result as `$`.
    pub output: Option<Data>,
}

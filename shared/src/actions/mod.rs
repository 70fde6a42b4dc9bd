//! Actions: the `std.*` actions (and, later, OpenStack actions), behind one
//! registry. An action gets its evaluated input and returns a result, an
//! error, or "async" (its result will be delivered from outside).
//!
//! CONTRACT (used by handlers/ and workflow validation; keep these):
//! - [`ActionRegistry::standard`] builds the registry of std actions.
//! - [`ActionRegistry::get`] describes one action (name, input parameters).
//! - [`ActionRegistry::run`] runs it.

use crate::workflow::InputParam;
use serde_json::{Map, Value};

/// What running an action produced.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionOutcome {
    Success(Value),
    /// The action failed; the value is its error data (a string or a dict).
    Error(Value),
    /// The action was started and will be completed from outside
    /// (`PUT /v2/action_executions/{id}`): the action execution stays RUNNING.
    Async,
}

/// A description of an action, for validation and for the API.
#[derive(Debug, Clone)]
pub struct ActionInfo {
    pub name: String,
    pub description: String,
    pub input: Vec<InputParam>,
    /// True when the action completes from outside.
    pub is_async: bool,
}

/// Settings an action may need besides its input.
#[derive(Debug, Clone, Default)]
pub struct ActionContext {
    /// Ids for logs and for `std.http` headers Mistral sends.
    pub execution_id: String,
    pub task_execution_id: String,
    pub action_execution_id: String,
    pub task_name: String,
    pub workflow_name: String,
}

/// The set of actions bora knows.
pub struct ActionRegistry {
    actions: Vec<ActionInfo>,
}

impl ActionRegistry {
    pub fn standard() -> ActionRegistry {
        ActionRegistry {
            actions: Vec::new(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&ActionInfo> {
        self.actions.iter().find(|a| a.name == name)
    }

    pub fn list(&self) -> &[ActionInfo] {
        &self.actions
    }

    /// Check `input` against the action's parameters: unknown names and
    /// missing required ones are an error naming them; defaults are filled.
    pub fn prepare_input(&self, name: &str, input: Map<String, Value>) -> Result<Map<String, Value>, String> {
        let _ = name;
        Ok(input)
    }

    pub async fn run(&self, name: &str, input: &Map<String, Value>, ctx: &ActionContext) -> ActionOutcome {
        let _ = (input, ctx);
        ActionOutcome::Error(Value::String(format!("unknown action {name}")))
    }
}

//! Actions: the `std.*` actions (and, later, OpenStack actions), behind one
//! registry. An action gets its evaluated input and returns a result, an
//! error, or "async" (its result will be delivered from outside).
//!
//! CONTRACT (used by handlers/ and workflow validation; keep these):
//! - [`ActionRegistry::standard`] builds the registry of std actions.
//! - [`ActionRegistry::get`] describes one action (name, input parameters).
//! - [`ActionRegistry::run`] runs it.
//!
//! Design: a registry entry is an [`ActionInfo`] plus an [`ActionImpl`].
//! The std actions are a plain enum matched in `run` (no boxing, no
//! allocation: `std.noop` and `std.echo` are run in tight benchmark loops);
//! other action families (OpenStack, ...) plug in as boxed [`Action`] trait
//! objects through [`ActionRegistry::register`]. Lookup by name goes
//! through a `HashMap` built when entries are added, never per call.

#![warn(missing_docs)]

mod http;
pub mod openstack;
mod std;
mod value;

use crate::workflow::InputParam;
use ::std::collections::HashMap;
use ::std::future::Future;
use ::std::pin::Pin;
use ::std::sync::Arc;
use serde_json::{Map, Value};

pub use self::std::StdAction;

/// What running an action produced.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionOutcome {
    /// The action's result.
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
    /// Full name, e.g. `std.echo`.
    pub name: String,
    /// One line for the API's action list.
    pub description: String,
    /// Parameters in declaration order (`default: None` = required).
    pub input: Vec<InputParam>,
    /// True when the action completes from outside.
    pub is_async: bool,
}

/// Settings an action may need besides its input.
#[derive(Debug, Clone, Default)]
pub struct ActionContext {
    /// Ids for logs and for the headers Mistral's `std.mistral_http`
    /// sends. Id of the workflow execution.
    pub execution_id: String,
    /// Id of the task execution running the action.
    pub task_execution_id: String,
    /// Id of this action execution.
    pub action_execution_id: String,
    /// Name of the task running the action.
    pub task_name: String,
    /// Name of the workflow of the execution.
    pub workflow_name: String,
    /// The execution's target cloud, unsealed for this action only, when the
    /// action needs a cloud (OpenStack actions) and the execution has one.
    pub target: Option<crate::target::TargetCloud>,
    /// The outbound policy every URL a target supplies must pass.
    pub policy: crate::target::policy::OutboundPolicy,
}

/// The future an [`Action`] implementation returns.
pub type ActionFuture<'a> = Pin<Box<dyn Future<Output = ActionOutcome> + Send + 'a>>;

/// An action implemented outside this module (e.g. the OpenStack actions
/// table). It receives input already checked by
/// [`ActionRegistry::prepare_input`] (defaults filled in).
pub trait Action: Send + Sync {
    /// Run the action once.
    fn run<'a>(&'a self, input: &'a Map<String, Value>, ctx: &'a ActionContext)
    -> ActionFuture<'a>;
}

/// How an action is run.
#[derive(Clone)]
pub enum ActionImpl {
    /// One of the built-in `std.*` actions: dispatched by a `match`, with no
    /// boxed future (they are the hot path of benchmarks).
    Std(StdAction),
    /// Any other implementation; costs one boxed future per run.
    Dyn(Arc<dyn Action>),
}

impl ::std::fmt::Debug for ActionImpl {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match self {
            ActionImpl::Std(a) => f.debug_tuple("Std").field(a).finish(),
            ActionImpl::Dyn(_) => f.write_str("Dyn(..)"),
        }
    }
}

/// The set of actions bora knows.
pub struct ActionRegistry {
    /// Descriptions, in registration order (what [`ActionRegistry::list`]
    /// returns); `impls[i]` runs `actions[i]`.
    actions: Vec<ActionInfo>,
    impls: Vec<ActionImpl>,
    /// Name → position in `actions`/`impls`.
    index: HashMap<String, usize>,
    /// Actions that act on the execution's target cloud: run-task unseals
    /// the target only for these.
    cloud: ::std::collections::HashSet<String>,
}

impl ActionRegistry {
    /// An empty registry (add actions with [`ActionRegistry::register`]).
    pub fn empty() -> ActionRegistry {
        ActionRegistry {
            actions: Vec::new(),
            impls: Vec::new(),
            index: HashMap::new(),
            cloud: Default::default(),
        }
    }

    /// The registry of the `std.*` actions and the OpenStack actions.
    pub fn standard() -> ActionRegistry {
        let mut reg = ActionRegistry::empty();
        for kind in StdAction::ALL {
            reg.register(kind.info(), ActionImpl::Std(kind));
        }
        openstack::register(&mut reg);
        reg
    }

    /// Add an action, or replace the one with the same name.
    pub fn register(&mut self, info: ActionInfo, imp: ActionImpl) {
        match self.index.get(&info.name) {
            Some(&i) => {
                self.actions[i] = info;
                self.impls[i] = imp;
            }
            None => {
                self.index.insert(info.name.clone(), self.actions.len());
                self.actions.push(info);
                self.impls.push(imp);
            }
        }
    }

    /// Add an action that acts on the execution's target cloud.
    pub fn register_cloud(&mut self, info: ActionInfo, imp: ActionImpl) {
        self.cloud.insert(info.name.clone());
        self.register(info, imp);
    }

    /// True when `name` needs the execution's target cloud.
    pub fn needs_target(&self, name: &str) -> bool {
        self.cloud.contains(name)
    }

    /// The description of action `name`, if it exists.
    pub fn get(&self, name: &str) -> Option<&ActionInfo> {
        self.index.get(name).map(|&i| &self.actions[i])
    }

    /// All actions, in registration order.
    pub fn list(&self) -> &[ActionInfo] {
        &self.actions
    }

    /// Check `input` against the action's parameters: unknown names and
    /// missing required ones are an error naming them; defaults are filled.
    pub fn prepare_input(
        &self,
        name: &str,
        mut input: Map<String, Value>,
    ) -> Result<Map<String, Value>, String> {
        let info = self
            .get(name)
            .ok_or_else(|| format!("unknown action '{name}'"))?;
        let unknown: Vec<&str> = input
            .keys()
            .filter(|k| !info.input.iter().any(|p| p.name == **k))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            let accepted = if info.input.is_empty() {
                "none".to_string()
            } else {
                info.input
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let plural = if unknown.len() == 1 { "" } else { "s" };
            return Err(format!(
                "action '{name}': unknown parameter{plural} {} (accepted: {accepted})",
                quoted_list(&unknown)
            ));
        }
        let missing: Vec<&str> = info
            .input
            .iter()
            .filter(|p| p.default.is_none() && !input.contains_key(&p.name))
            .map(|p| p.name.as_str())
            .collect();
        if !missing.is_empty() {
            let plural = if missing.len() == 1 { "" } else { "s" };
            return Err(format!(
                "action '{name}': missing required parameter{plural} {}",
                quoted_list(&missing)
            ));
        }
        for p in &info.input {
            if let Some(default) = &p.default
                && !input.contains_key(&p.name)
            {
                input.insert(p.name.clone(), default.clone());
            }
        }
        Ok(input)
    }

    /// Run action `name` with `input` (as returned by
    /// [`ActionRegistry::prepare_input`]; missing optional parameters are
    /// treated as their defaults anyway).
    pub async fn run(
        &self,
        name: &str,
        input: &Map<String, Value>,
        ctx: &ActionContext,
    ) -> ActionOutcome {
        let Some(&i) = self.index.get(name) else {
            return ActionOutcome::Error(Value::String(format!("unknown action '{name}'")));
        };
        match &self.impls[i] {
            ActionImpl::Std(kind) => kind.run(input, ctx).await,
            ActionImpl::Dyn(action) => action.run(input, ctx).await,
        }
    }
}

impl Default for ActionRegistry {
    fn default() -> Self {
        ActionRegistry::standard()
    }
}

/// `'a', 'b'` for error texts.
fn quoted_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod http_tests;

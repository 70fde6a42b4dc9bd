//! The workflow language (Mistral v2): parse YAML into typed specs and
//! validate them. Every error names the workflow, the task and the key.
//!
//! CONTRACT (used by handlers/, api/; keep these signatures):
//! - [`parse_document`] parses and validates one YAML document (plain
//!   workflows, or a workbook with `name`, `workflows`, `actions`).
//! - [`check_references`] reports actions and sub-workflows that exist
//!   neither in the document nor in what the caller knows.
//! - [`parse_actions`] parses an actions document (`POST /v2/actions`).
//! - On [`WorkflowSpec`]: `start_tasks`, `inbound` (direct workflows) and
//!   `reverse_plan` (reverse workflows), see `graph.rs`.
//!
//! Layout: `parse.rs` walks the YAML tree, `params.rs` parses inline
//! `k=v` parameters, `graph.rs` holds the graph helpers, `spec.rs` the types.

mod graph;
pub mod params;
mod parse;
pub mod spec;
#[cfg(test)]
mod tests;

pub use spec::*;

/// The largest definition accepted, in bytes (1 MiB).
pub const MAX_DEFINITION_BYTES: usize = 1 << 20;

/// A definition that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{message}", if location.is_empty() { String::new() } else { format!("{location}: ") })]
pub struct ParseError {
    /// Where: "workflow 'wf', task 't1', key 'on-success'" or "line 3 column 5".
    pub location: String,
    pub message: String,
}

/// Parse and validate one workflow-language document: plain workflows
/// (`version` plus one key per workflow) or a workbook (`version`, `name`,
/// `workflows`, `actions`). Task-defaults are merged into the tasks,
/// transitions and `requires` are checked; references to actions and other
/// workflows are checked separately by [`check_references`].
pub fn parse_document(yaml: &str) -> Result<Document, ParseError> {
    parse::parse_document(yaml)
}

/// Parse an actions document (`POST /v2/actions`): `version` plus one key
/// per ad-hoc action.
pub fn parse_actions(yaml: &str) -> Result<Vec<AdHocActionSpec>, ParseError> {
    parse::parse_actions(yaml)
}

/// Check that every `action:` and `workflow:` a task names exists: in the
/// document itself (workflows, ad-hoc actions) or per the callbacks. The
/// `base` of each ad-hoc action is checked too, and chains of ad-hoc actions
/// must not loop.
pub fn check_references(
    doc: &Document,
    action_exists: &dyn Fn(&str) -> bool,
    workflow_exists: &dyn Fn(&str) -> bool,
) -> Result<(), ParseError> {
    // name -> base of the document's ad-hoc actions.
    let local: std::collections::HashMap<&str, &str> = doc
        .actions
        .iter()
        .map(|a| (a.name.as_str(), a.base.as_str()))
        .collect();
    for wf in &doc.workflows {
        for task in &wf.tasks {
            let loc = || format!("workflow '{}', task '{}'", wf.name, task.name);
            match &task.action {
                TaskAction::Action { name, .. } => {
                    if !local.contains_key(name.as_str()) && !action_exists(name) {
                        return Err(ParseError {
                            location: loc(),
                            message: format!("unknown action '{name}'"),
                        });
                    }
                }
                TaskAction::Workflow { name, .. } => {
                    if doc.workflow(name).is_none() && !workflow_exists(name) {
                        return Err(ParseError {
                            location: loc(),
                            message: format!("unknown workflow '{name}'"),
                        });
                    }
                }
                TaskAction::Noop => {}
            }
        }
    }
    // Follow each chain of local bases to the action it finally runs. Every
    // action is resolved once (`resolved`), so this stays linear however
    // long the chains are; meeting an action of the current chain again
    // means a loop.
    let mut resolved: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for a in &doc.actions {
        let location = || format!("action '{}', key 'base'", a.name);
        let mut chain: std::collections::HashSet<&str> = std::collections::HashSet::new();
        chain.insert(a.name.as_str());
        let mut base = a.base.as_str();
        while let Some(&next) = local.get(base) {
            if resolved.contains(base) {
                break;
            }
            if !chain.insert(base) {
                return Err(ParseError {
                    location: location(),
                    message: format!(
                        "ad-hoc actions based on each other in a loop through '{base}'"
                    ),
                });
            }
            base = next;
        }
        if !local.contains_key(base) && !action_exists(base) {
            return Err(ParseError {
                location: location(),
                message: format!("unknown action '{base}'"),
            });
        }
        resolved.extend(chain);
    }
    Ok(())
}

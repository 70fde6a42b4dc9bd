//! The workflow language (Mistral v2): parse YAML into typed specs and
//! validate them. Every error names the workflow, the task and the key.
//!
//! CONTRACT (used by handlers/, api/; keep these signatures):
//! - [`parse_document`] parses and validates one YAML document (plain
//!   workflows, or a workbook with `name`, `workflows`, `actions`).
//! - [`check_references`] reports actions and sub-workflows that exist
//!   neither in the document nor in what the caller knows.

pub mod spec;

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

/// Parse and validate one workflow-language document.
pub fn parse_document(_yaml: &str) -> Result<Document, ParseError> {
    Err(ParseError {
        location: String::new(),
        message: "not implemented".into(),
    })
}

/// Check that every `action:` and `workflow:` a task names exists: in the
/// document itself (workflows, ad-hoc actions) or per the callbacks.
pub fn check_references(
    _doc: &Document,
    _action_exists: &dyn Fn(&str) -> bool,
    _workflow_exists: &dyn Fn(&str) -> bool,
) -> Result<(), ParseError> {
    Ok(())
}

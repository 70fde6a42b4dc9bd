//! The catalog port: what users register through the API rather than what
//! runs (workflow definitions, workbooks, ad-hoc actions, environments), and
//! the listing and deletion queries the API needs over executions, task
//! executions and action executions.
//!
//! It is a port of its own, beside [`crate::store::Store`], because the
//! handlers never need it: only the API does. Definitions themselves stay
//! immutable snapshots in the store (`definition_key`); the catalog maps a
//! name to the current snapshot.

use super::Millis;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the catalog could not do.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// An entry with the same unique key exists. Caller's fault.
    #[error("{0}")]
    Duplicate(String),
    /// The entry does not exist. Caller's fault.
    #[error("{0}")]
    NotFound(String),
    /// A query names a column or marker that cannot be used. Caller's fault.
    #[error("{0}")]
    Invalid(String),
    /// The backend failed; a retry may help.
    #[error("catalog backend error: {0}")]
    Backend(String),
}

/// A registered workflow: a name pointing at a definition snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowDefinition {
    pub id: String,
    /// Full name (`wb.wf` for a workflow of a workbook).
    pub name: String,
    pub namespace: String,
    pub scope: String,
    pub project_id: String,
    /// The text shown by the API.
    pub definition: String,
    /// Key of the document snapshot the executions run.
    pub definition_key: String,
    /// Mistral's input summary, e.g. `a, b="2"`.
    pub input: String,
    /// `{"input": [...], "output": [...]}`.
    pub interface: Value,
    pub checksum: Option<String>,
    pub tags: Vec<String>,
    /// The workbook that registered it, if any.
    pub workbook: Option<String>,
    pub created_at: Millis,
    pub updated_at: Option<Millis>,
}

/// A registered workbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workbook {
    pub id: String,
    pub name: String,
    pub namespace: String,
    pub scope: String,
    pub project_id: String,
    pub definition: String,
    pub tags: Vec<String>,
    pub created_at: Millis,
    pub updated_at: Option<Millis>,
}

/// A registered ad-hoc action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdHocAction {
    pub id: String,
    pub name: String,
    pub namespace: String,
    pub scope: String,
    pub project_id: String,
    /// The document it came from (a whole actions document or workbook).
    pub definition: String,
    pub input: String,
    pub description: String,
    pub tags: Vec<String>,
    pub workbook: Option<String>,
    pub created_at: Millis,
    pub updated_at: Option<Millis>,
}

/// A named set of variables for `params.env`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub id: String,
    pub name: String,
    pub description: String,
    pub variables: Value,
    pub scope: String,
    pub project_id: String,
    pub created_at: Millis,
    pub updated_at: Option<Millis>,
}

/// Sort direction of one sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDir {
    Asc,
    Desc,
}

impl SortDir {
    pub fn as_str(self) -> &'static str {
        match self {
            SortDir::Asc => "asc",
            SortDir::Desc => "desc",
        }
    }
}

/// A page of a list: equality filters, then rows after `marker` in the
/// order of `sort`, at most `limit` of them. The adapter appends `id` as a
/// last sort key when it is missing, so pages never overlap.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// (API field name, value) pairs; all must match.
    pub filters: Vec<(String, String)>,
    pub sort: Vec<(String, SortDir)>,
    /// Id of the last row of the previous page.
    pub marker: Option<String>,
    pub limit: Option<usize>,
}

/// The catalog port.
#[async_trait::async_trait]
pub trait Catalog: Send + Sync {
    /// Register workflows, all or none; a name already taken in its
    /// namespace is [`CatalogError::Duplicate`].
    async fn insert_workflows(&self, workflows: &[WorkflowDefinition]) -> Result<(), CatalogError>;
    /// Replace workflows (matched by id), all or none.
    async fn update_workflows(&self, workflows: &[WorkflowDefinition]) -> Result<(), CatalogError>;
    /// A workflow by id, or by name in `namespace`.
    async fn get_workflow(
        &self,
        identifier: &str,
        namespace: &str,
    ) -> Result<WorkflowDefinition, CatalogError>;
    async fn list_workflows(
        &self,
        query: &ListQuery,
    ) -> Result<Vec<WorkflowDefinition>, CatalogError>;
    async fn delete_workflow(&self, identifier: &str, namespace: &str) -> Result<(), CatalogError>;

    /// Register (or, with `replace`, re-register) a workbook with its
    /// workflows and actions, all or none. Replacing drops the workflows
    /// and actions of the previous version first.
    async fn put_workbook(
        &self,
        workbook: &Workbook,
        workflows: &[WorkflowDefinition],
        actions: &[AdHocAction],
        replace: bool,
    ) -> Result<(), CatalogError>;
    async fn get_workbook(&self, name: &str, namespace: &str) -> Result<Workbook, CatalogError>;
    async fn list_workbooks(&self, query: &ListQuery) -> Result<Vec<Workbook>, CatalogError>;
    /// Delete a workbook with its workflows and actions.
    async fn delete_workbook(&self, name: &str, namespace: &str) -> Result<(), CatalogError>;

    async fn insert_actions(&self, actions: &[AdHocAction]) -> Result<(), CatalogError>;
    async fn update_actions(&self, actions: &[AdHocAction]) -> Result<(), CatalogError>;
    /// An ad-hoc action by id, or by name in `namespace`.
    async fn get_action(
        &self,
        identifier: &str,
        namespace: &str,
    ) -> Result<AdHocAction, CatalogError>;
    async fn list_actions(&self, query: &ListQuery) -> Result<Vec<AdHocAction>, CatalogError>;
    async fn delete_action(&self, identifier: &str, namespace: &str) -> Result<(), CatalogError>;

    async fn insert_environment(&self, environment: &Environment) -> Result<(), CatalogError>;
    async fn update_environment(&self, environment: &Environment) -> Result<(), CatalogError>;
    async fn get_environment(&self, name: &str) -> Result<Environment, CatalogError>;
    async fn list_environments(&self, query: &ListQuery) -> Result<Vec<Environment>, CatalogError>;
    async fn delete_environment(&self, name: &str) -> Result<(), CatalogError>;

    /// Ids of executions matching `query`, in its order. Filters:
    /// `workflow_name`, `workflow_id`, `state`, `task_execution_id`,
    /// `root_execution_id`, `workflow_namespace`.
    async fn list_execution_ids(&self, query: &ListQuery) -> Result<Vec<String>, CatalogError>;
    /// Ids of task executions. Filters: `workflow_execution_id`,
    /// `workflow_name`, `name`, `state`.
    async fn list_task_ids(&self, query: &ListQuery) -> Result<Vec<String>, CatalogError>;
    /// Ids of action executions. Filters: `task_execution_id`,
    /// `workflow_execution_id`, `name`, `state`.
    async fn list_action_execution_ids(
        &self,
        query: &ListQuery,
    ) -> Result<Vec<String>, CatalogError>;
    /// Delete an execution with its task and action executions and its
    /// sub-workflow executions, in one transaction.
    async fn delete_execution(&self, id: &str) -> Result<(), CatalogError>;
}

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
use serde::de::DeserializeOwned;
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

/// The columns every catalog row has, taken from its record.
pub(crate) struct Row<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub namespace: &'a str,
    pub scope: &'a str,
    pub project_id: &'a str,
    pub workbook: Option<&'a str>,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

/// A kind of registered entry, as both catalog adapters store it: the
/// record as JSON beside the columns that are filtered, sorted or kept
/// unique, and Mistral's wording of its errors.
pub(crate) trait Entry: Serialize + DeserializeOwned + Send + Sync {
    /// Its SQLite table; also names its DynamoDB partition.
    const TABLE: &'static str;
    /// Mistral's name of the entity, for error messages.
    const KIND: &'static str;
    /// Mistral's unique key, for the duplicate message.
    const UNIQUE: &'static str;
    fn row(&self) -> Row<'_>;
    /// No entry `identifier` (an id, or a name in `namespace`).
    fn not_found(identifier: &str, namespace: &str) -> CatalogError;

    /// No entry with this id (an update of a vanished entry).
    fn missing_id(id: &str) -> CatalogError {
        CatalogError::NotFound(format!("{} not found [id={id}]", Self::KIND))
    }

    /// The name is taken. Mistral prints the unique key's values, the
    /// namespace and None for the project (auth off): `b_wf1, , None`.
    fn duplicate(&self) -> CatalogError {
        let r = self.row();
        let values = if Self::UNIQUE.contains("namespace") {
            format!("{}, {}, None", r.name, r.namespace)
        } else {
            format!("{}, None", r.name)
        };
        CatalogError::Duplicate(format!(
            "Duplicate entry for {} {}: {values}",
            Self::KIND,
            Self::UNIQUE
        ))
    }
}

impl Entry for WorkflowDefinition {
    const TABLE: &'static str = "catalog_workflows";
    const KIND: &'static str = "WorkflowDefinition";
    const UNIQUE: &'static str = "['name', 'namespace', 'project_id']";
    fn not_found(identifier: &str, namespace: &str) -> CatalogError {
        CatalogError::NotFound(format!(
            "Workflow not found [workflow_identifier={identifier}, namespace={namespace}]"
        ))
    }
    fn row(&self) -> Row<'_> {
        Row {
            id: &self.id,
            name: &self.name,
            namespace: &self.namespace,
            scope: &self.scope,
            project_id: &self.project_id,
            workbook: self.workbook.as_deref(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl Entry for Workbook {
    const TABLE: &'static str = "catalog_workbooks";
    const KIND: &'static str = "Workbook";
    const UNIQUE: &'static str = "['name', 'namespace', 'project_id']";
    fn not_found(name: &str, namespace: &str) -> CatalogError {
        CatalogError::NotFound(format!(
            "Workbook not found [name={name}, namespace={namespace}]"
        ))
    }
    fn row(&self) -> Row<'_> {
        Row {
            id: &self.id,
            name: &self.name,
            namespace: &self.namespace,
            scope: &self.scope,
            project_id: &self.project_id,
            workbook: None,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl Entry for AdHocAction {
    const TABLE: &'static str = "catalog_actions";
    const KIND: &'static str = "ActionDefinition";
    const UNIQUE: &'static str = "['name', 'namespace', 'project_id']";
    fn not_found(identifier: &str, namespace: &str) -> CatalogError {
        CatalogError::NotFound(format!(
            "Action not found [name={identifier}, namespace={namespace}]"
        ))
    }
    fn row(&self) -> Row<'_> {
        Row {
            id: &self.id,
            name: &self.name,
            namespace: &self.namespace,
            scope: &self.scope,
            project_id: &self.project_id,
            workbook: self.workbook.as_deref(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl Entry for Environment {
    const TABLE: &'static str = "catalog_environments";
    const KIND: &'static str = "Environment";
    const UNIQUE: &'static str = "['name', 'project_id']";
    fn not_found(name: &str, _namespace: &str) -> CatalogError {
        CatalogError::NotFound(format!("Environment not found [name={name}]"))
    }
    fn row(&self) -> Row<'_> {
        Row {
            id: &self.id,
            name: &self.name,
            namespace: "",
            scope: &self.scope,
            project_id: &self.project_id,
            workbook: None,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

#[cfg_attr(not(feature = "aws"), allow(dead_code))]
impl Row<'_> {
    /// The value of a column, by its API field name.
    pub(crate) fn value(&self, field: &str) -> Value {
        match field {
            "id" => Value::from(self.id),
            "name" => Value::from(self.name),
            "namespace" => Value::from(self.namespace),
            "scope" => Value::from(self.scope),
            "project_id" => Value::from(self.project_id),
            "created_at" => Value::from(self.created_at),
            "updated_at" => self.updated_at.map(Value::from).unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }
}

#[cfg_attr(not(feature = "aws"), allow(dead_code))]
/// The API fields a catalog entry may be filtered and sorted on.
pub(crate) const ENTRY_FIELDS: &[&str] = &[
    "id",
    "name",
    "namespace",
    "scope",
    "project_id",
    "created_at",
    "updated_at",
];

/// The error for a filter or sort key on a field a list does not have.
pub(crate) fn unknown_field<'a>(
    what: &str,
    field: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> CatalogError {
    let known: Vec<&str> = known.into_iter().collect();
    CatalogError::Invalid(format!(
        "{what}: unknown field '{field}'; known fields: {}",
        known.join(", ")
    ))
}

#[cfg_attr(not(feature = "aws"), allow(dead_code))]
/// Order of two column values as SQLite orders them: NULL first, then
/// numbers, then text (bytewise).
fn compare_values(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Number(_) | Value::Bool(_) => 1,
            _ => 2,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

#[cfg_attr(not(feature = "aws"), allow(dead_code))]
/// Does a column value equal a filter's text (as a TEXT comparison in SQL)?
fn value_matches(value: &Value, wanted: &str) -> bool {
    match value {
        Value::String(s) => s == wanted,
        Value::Number(n) => n.to_string() == wanted,
        Value::Bool(b) => b.to_string() == wanted,
        _ => false,
    }
}

#[cfg_attr(not(feature = "aws"), allow(dead_code))]
/// [`ListQuery`] applied in memory, with the same meaning as the SQLite
/// adapter's SQL: equality filters, the sort keys (plus `id`), the rows
/// strictly after the marker row, at most `limit`. For adapters whose
/// backend cannot filter and sort on arbitrary fields (DynamoDB); `fields`
/// are the API fields a row has and `value` reads one.
pub(crate) fn page_in_memory<T>(
    rows: Vec<T>,
    query: &ListQuery,
    fields: &[&str],
    value: impl Fn(&T, &str) -> Value,
) -> Result<Vec<T>, CatalogError> {
    let known = |field: &str, what: &str| {
        if fields.contains(&field) {
            Ok(())
        } else {
            Err(unknown_field(what, field, fields.iter().copied()))
        }
    };
    for (field, _) in &query.filters {
        known(field, "filter")?;
    }
    let mut sort: Vec<(&str, SortDir)> = Vec::new();
    for (field, dir) in &query.sort {
        known(field, "sort_keys")?;
        sort.push((field.as_str(), *dir));
    }
    if !sort.iter().any(|(f, _)| *f == "id") {
        sort.push(("id", SortDir::Asc));
    }
    let key = |row: &T| -> Vec<Value> { sort.iter().map(|(f, _)| value(row, f)).collect() };
    let order = |a: &[Value], b: &[Value]| {
        for ((x, y), (_, dir)) in a.iter().zip(b).zip(&sort) {
            let o = compare_values(x, y);
            if o.is_ne() {
                return if *dir == SortDir::Asc { o } else { o.reverse() };
            }
        }
        std::cmp::Ordering::Equal
    };
    let after = match &query.marker {
        None => None,
        Some(marker) => Some(
            rows.iter()
                .find(|row| value(row, "id") == marker.as_str())
                .map(key)
                .ok_or_else(|| {
                    CatalogError::Invalid(format!("marker: no entry with id '{marker}'"))
                })?,
        ),
    };
    let mut kept: Vec<(Vec<Value>, T)> = rows
        .into_iter()
        .filter(|row| {
            query
                .filters
                .iter()
                .all(|(field, wanted)| value_matches(&value(row, field), wanted))
        })
        .map(|row| (key(&row), row))
        .filter(|(k, _)| after.as_ref().is_none_or(|m| order(k, m).is_gt()))
        .collect();
    kept.sort_by(|(a, _), (b, _)| order(a, b));
    let limit = query.limit.unwrap_or(usize::MAX);
    Ok(kept.into_iter().take(limit).map(|(_, row)| row).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows() -> Vec<Value> {
        vec![
            json!({"id": "a", "name": "x", "created_at": 3}),
            json!({"id": "b", "name": "y", "created_at": 1}),
            json!({"id": "c", "name": "x", "created_at": 2}),
            json!({"id": "d", "name": "y", "created_at": null}),
        ]
    }

    fn ids(query: ListQuery) -> Result<Vec<String>, CatalogError> {
        let page = page_in_memory(rows(), &query, &["id", "name", "created_at"], |r, f| {
            r[f].clone()
        })?;
        Ok(page
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect())
    }

    #[test]
    fn in_memory_pages_filter_sort_and_start_after_the_marker() {
        let by_created = |dir, marker: Option<&str>, limit| ListQuery {
            sort: vec![("created_at".into(), dir)],
            marker: marker.map(String::from),
            limit,
            ..ListQuery::default()
        };
        assert_eq!(
            ids(by_created(SortDir::Asc, None, None)).unwrap(),
            ["d", "b", "c", "a"]
        );
        assert_eq!(
            ids(by_created(SortDir::Desc, None, Some(2))).unwrap(),
            ["a", "c"]
        );
        assert_eq!(
            ids(by_created(SortDir::Desc, Some("c"), None)).unwrap(),
            ["b", "d"]
        );
        let filtered = ListQuery {
            filters: vec![("name".into(), "x".into())],
            ..ListQuery::default()
        };
        assert_eq!(ids(filtered).unwrap(), ["a", "c"]);
        let numeric = ListQuery {
            filters: vec![("created_at".into(), "2".into())],
            ..ListQuery::default()
        };
        assert_eq!(ids(numeric).unwrap(), ["c"]);
    }

    #[test]
    fn in_memory_pages_name_unknown_fields_and_markers() {
        let bad_sort = ListQuery {
            sort: vec![("colour".into(), SortDir::Asc)],
            ..ListQuery::default()
        };
        let e = ids(bad_sort).unwrap_err().to_string();
        assert!(e.contains("sort_keys: unknown field 'colour'"), "{e}");
        let bad_marker = ListQuery {
            marker: Some("zz".into()),
            ..ListQuery::default()
        };
        let e = ids(bad_marker).unwrap_err().to_string();
        assert!(e.contains("marker: no entry with id 'zz'"), "{e}");
    }
}

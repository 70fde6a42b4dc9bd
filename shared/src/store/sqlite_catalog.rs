//! [`Catalog`] on the embedded SQLite database: one table per kind of
//! registered entry, each row holding the record as JSON beside the columns
//! that are filtered, sorted or kept unique.
//!
//! Listing executions, tasks and action executions reads the store's own
//! tables and returns ids only; the API then reads each record through the
//! [`crate::store::Store`] port, so the row layout stays private to
//! `sqlite.rs`.

use super::catalog::{
    AdHocAction, Catalog, CatalogError, Entry, Environment, ListQuery, SortDir, Workbook,
    WorkflowDefinition, unknown_field,
};
use super::sqlite::SqliteStore;
use rusqlite::{Connection, OptionalExtension, ToSql, params};

/// The catalog tables, created by `SqliteDb::open`.
pub(crate) const CATALOG_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS catalog_workflows (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, namespace TEXT NOT NULL, scope TEXT NOT NULL,
    project_id TEXT NOT NULL, workbook TEXT, created_at INTEGER NOT NULL, updated_at INTEGER,
    body TEXT NOT NULL, UNIQUE (name, namespace)
);
CREATE TABLE IF NOT EXISTS catalog_workbooks (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, namespace TEXT NOT NULL, scope TEXT NOT NULL,
    project_id TEXT NOT NULL, workbook TEXT, created_at INTEGER NOT NULL, updated_at INTEGER,
    body TEXT NOT NULL, UNIQUE (name, namespace)
);
CREATE TABLE IF NOT EXISTS catalog_actions (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, namespace TEXT NOT NULL, scope TEXT NOT NULL,
    project_id TEXT NOT NULL, workbook TEXT, created_at INTEGER NOT NULL, updated_at INTEGER,
    body TEXT NOT NULL, UNIQUE (name, namespace)
);
CREATE TABLE IF NOT EXISTS catalog_environments (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, namespace TEXT NOT NULL, scope TEXT NOT NULL,
    project_id TEXT NOT NULL, workbook TEXT, created_at INTEGER NOT NULL, updated_at INTEGER,
    body TEXT NOT NULL, UNIQUE (name, namespace)
);
CREATE INDEX IF NOT EXISTS executions_by_parent_task ON executions (parent_task_id);
"#;

/// Create the catalog tables (called once when the database opens).
pub(crate) fn create_tables(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(CATALOG_SCHEMA)
}

fn backend(e: impl std::fmt::Display) -> CatalogError {
    CatalogError::Backend(e.to_string())
}

fn insert<E: Entry>(tx: &Connection, entry: &E) -> Result<(), CatalogError> {
    let r = entry.row();
    let body = serde_json::to_string(entry).map_err(backend)?;
    let sql = format!(
        "INSERT OR IGNORE INTO {} (id, name, namespace, scope, project_id, workbook, created_at, updated_at, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        E::TABLE
    );
    let n = tx
        .execute(
            &sql,
            params![
                r.id,
                r.name,
                r.namespace,
                r.scope,
                r.project_id,
                r.workbook,
                r.created_at,
                r.updated_at,
                body
            ],
        )
        .map_err(backend)?;
    if n == 0 {
        return Err(entry.duplicate());
    }
    Ok(())
}

fn update<E: Entry>(tx: &Connection, entry: &E) -> Result<(), CatalogError> {
    let r = entry.row();
    let body = serde_json::to_string(entry).map_err(backend)?;
    let sql = format!(
        "UPDATE {} SET name = ?2, namespace = ?3, scope = ?4, project_id = ?5, workbook = ?6, updated_at = ?7, body = ?8 WHERE id = ?1",
        E::TABLE
    );
    let n = tx
        .execute(
            &sql,
            params![
                r.id,
                r.name,
                r.namespace,
                r.scope,
                r.project_id,
                r.workbook,
                r.updated_at,
                body
            ],
        )
        .map_err(backend)?;
    if n == 0 {
        return Err(E::missing_id(r.id));
    }
    Ok(())
}

/// Find by id, or by name in a namespace.
fn find<E: Entry>(
    conn: &Connection,
    identifier: &str,
    namespace: &str,
) -> Result<Option<E>, CatalogError> {
    let sql = format!(
        "SELECT body FROM {} WHERE id = ?1 OR (name = ?1 AND namespace = ?2) ORDER BY id = ?1 DESC LIMIT 1",
        E::TABLE
    );
    let body: Option<String> = conn
        .query_row(&sql, params![identifier, namespace], |r| r.get(0))
        .optional()
        .map_err(backend)?;
    body.map(|b| serde_json::from_str(&b).map_err(backend))
        .transpose()
}

fn delete_by_id(tx: &Connection, table: &str, id: &str) -> Result<(), CatalogError> {
    tx.execute(&format!("DELETE FROM {table} WHERE id = ?1"), params![id])
        .map_err(backend)?;
    Ok(())
}

/// A list query on one table, with the columns it may filter and sort on
/// (API field name → SQL column).
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, &'static str)],
}

const CATALOG_COLUMNS: &[(&str, &str)] = &[
    ("id", "id"),
    ("name", "name"),
    ("namespace", "namespace"),
    ("scope", "scope"),
    ("project_id", "project_id"),
    ("created_at", "created_at"),
    ("updated_at", "updated_at"),
];

const EXECUTIONS: Table = Table {
    name: "executions",
    columns: &[
        ("id", "id"),
        ("workflow_name", "workflow_name"),
        ("workflow_id", "workflow_id"),
        ("workflow_namespace", "workflow_namespace"),
        ("description", "description"),
        ("state", "state"),
        ("task_execution_id", "parent_task_id"),
        ("root_execution_id", "root_execution_id"),
        ("project_id", "project_id"),
        ("created_at", "created_at"),
        ("updated_at", "updated_at"),
    ],
};

const TASKS: Table = Table {
    name: "task_executions",
    columns: &[
        ("id", "id"),
        ("name", "name"),
        ("workflow_execution_id", "execution_id"),
        ("workflow_name", "workflow_name"),
        ("state", "state"),
        ("created_at", "created_at"),
        ("updated_at", "updated_at"),
        ("started_at", "started_at"),
        ("finished_at", "finished_at"),
    ],
};

const ACTIONS: Table = Table {
    name: "action_executions",
    columns: &[
        ("id", "id"),
        ("name", "name"),
        ("task_execution_id", "task_execution_id"),
        ("workflow_execution_id", "execution_id"),
        ("state", "state"),
        ("created_at", "created_at"),
        ("updated_at", "updated_at"),
    ],
};

impl Table {
    fn column(&self, field: &str, what: &str) -> Result<&'static str, CatalogError> {
        self.columns
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, c)| *c)
            .ok_or_else(|| unknown_field(what, field, self.columns.iter().map(|(f, _)| *f)))
    }

    /// The `SELECT {select} FROM ... WHERE ... ORDER BY ... LIMIT ...` of a
    /// query, with keyset pagination after the marker row.
    fn select(
        &self,
        conn: &Connection,
        select: &str,
        query: &ListQuery,
    ) -> Result<Vec<String>, CatalogError> {
        let mut clauses: Vec<String> = Vec::new();
        let mut args: Vec<Box<dyn ToSql>> = Vec::new();
        for (field, value) in &query.filters {
            let column = self.column(field, "filter")?;
            args.push(Box::new(value.clone()));
            clauses.push(format!("{column} = ?{}", args.len()));
        }
        let mut sort: Vec<(&'static str, SortDir)> = Vec::new();
        for (field, dir) in &query.sort {
            sort.push((self.column(field, "sort_keys")?, *dir));
        }
        if !sort.iter().any(|(c, _)| *c == "id") {
            sort.push(("id", SortDir::Asc));
        }
        if let Some(marker) = &query.marker {
            // Rows strictly after the marker row in the sort order:
            // (k1 > m1) OR (k1 = m1 AND k2 > m2) OR ...
            let exists: bool = conn
                .query_row(
                    &format!("SELECT COUNT(*) > 0 FROM {} WHERE id = ?1", self.name),
                    params![marker],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if !exists {
                return Err(CatalogError::Invalid(format!(
                    "marker: no entry with id '{marker}'"
                )));
            }
            args.push(Box::new(marker.clone()));
            let m = args.len();
            let mut ors = Vec::new();
            for i in 0..sort.len() {
                let mut ands = Vec::new();
                for (column, _) in &sort[..i] {
                    ands.push(format!(
                        "{column} IS (SELECT {column} FROM {} WHERE id = ?{m})",
                        self.name
                    ));
                }
                let (column, dir) = sort[i];
                let op = if dir == SortDir::Asc { ">" } else { "<" };
                ands.push(format!(
                    "{column} {op} (SELECT {column} FROM {} WHERE id = ?{m})",
                    self.name
                ));
                ors.push(format!("({})", ands.join(" AND ")));
            }
            clauses.push(format!("({})", ors.join(" OR ")));
        }
        let mut sql = format!("SELECT {select} FROM {}", self.name);
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        let order: Vec<String> = sort
            .iter()
            .map(|(c, d)| format!("{c} {}", d.as_str()))
            .collect();
        sql.push_str(" ORDER BY ");
        sql.push_str(&order.join(", "));
        if let Some(limit) = query.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        let mut stmt = conn.prepare(&sql).map_err(backend)?;
        let refs: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref()).collect();
        let rows = stmt
            .query_map(refs.as_slice(), |r| r.get::<_, String>(0))
            .map_err(backend)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(backend)
    }
}

fn list<E: Entry>(conn: &Connection, query: &ListQuery) -> Result<Vec<E>, CatalogError> {
    let table = Table {
        name: E::TABLE,
        columns: CATALOG_COLUMNS,
    };
    table
        .select(conn, "body", query)?
        .into_iter()
        .map(|b| serde_json::from_str(&b).map_err(backend))
        .collect()
}

/// Run `f` in a transaction committed only when it succeeds.
fn transaction<T>(
    store: &SqliteStore,
    f: impl FnOnce(&Connection) -> Result<T, CatalogError>,
) -> Result<T, CatalogError> {
    let mut conn = store.db().lock();
    let tx = conn.transaction().map_err(backend)?;
    let value = f(&tx)?;
    tx.commit().map_err(backend)?;
    Ok(value)
}

/// Ids of the executions under `id` (itself included): sub-workflows are
/// found through the task executions that started them.
fn execution_tree(conn: &Connection, id: &str) -> Result<Vec<String>, CatalogError> {
    let mut all = vec![id.to_string()];
    let mut i = 0;
    let mut stmt = conn
        .prepare(
            "SELECT e.id FROM executions e JOIN task_executions t ON e.parent_task_id = t.id WHERE t.execution_id = ?1",
        )
        .map_err(backend)?;
    while i < all.len() {
        let children = stmt
            .query_map(params![all[i]], |r| r.get::<_, String>(0))
            .map_err(backend)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        all.extend(children);
        i += 1;
    }
    Ok(all)
}

#[async_trait::async_trait]
impl Catalog for SqliteStore {
    async fn insert_workflows(&self, workflows: &[WorkflowDefinition]) -> Result<(), CatalogError> {
        transaction(self, |tx| workflows.iter().try_for_each(|w| insert(tx, w)))
    }

    async fn update_workflows(&self, workflows: &[WorkflowDefinition]) -> Result<(), CatalogError> {
        transaction(self, |tx| workflows.iter().try_for_each(|w| update(tx, w)))
    }

    async fn get_workflow(
        &self,
        identifier: &str,
        namespace: &str,
    ) -> Result<WorkflowDefinition, CatalogError> {
        find(&self.db().lock(), identifier, namespace)?
            .ok_or_else(|| WorkflowDefinition::not_found(identifier, namespace))
    }

    async fn list_workflows(
        &self,
        query: &ListQuery,
    ) -> Result<Vec<WorkflowDefinition>, CatalogError> {
        list(&self.db().lock(), query)
    }

    async fn delete_workflow(&self, identifier: &str, namespace: &str) -> Result<(), CatalogError> {
        transaction(self, |tx| {
            let w: WorkflowDefinition = find(tx, identifier, namespace)?
                .ok_or_else(|| WorkflowDefinition::not_found(identifier, namespace))?;
            delete_by_id(tx, WorkflowDefinition::TABLE, &w.id)
        })
    }

    async fn put_workbook(
        &self,
        workbook: &Workbook,
        workflows: &[WorkflowDefinition],
        actions: &[AdHocAction],
        replace: bool,
    ) -> Result<(), CatalogError> {
        transaction(self, |tx| {
            if replace {
                update(tx, workbook)?;
                for table in [WorkflowDefinition::TABLE, AdHocAction::TABLE] {
                    tx.execute(
                        &format!("DELETE FROM {table} WHERE workbook = ?1 AND namespace = ?2"),
                        params![workbook.name, workbook.namespace],
                    )
                    .map_err(backend)?;
                }
            } else {
                insert(tx, workbook)?;
            }
            workflows.iter().try_for_each(|w| insert(tx, w))?;
            actions.iter().try_for_each(|a| insert(tx, a))
        })
    }

    async fn get_workbook(&self, name: &str, namespace: &str) -> Result<Workbook, CatalogError> {
        find(&self.db().lock(), name, namespace)?
            .ok_or_else(|| Workbook::not_found(name, namespace))
    }

    async fn list_workbooks(&self, query: &ListQuery) -> Result<Vec<Workbook>, CatalogError> {
        list(&self.db().lock(), query)
    }

    async fn delete_workbook(&self, name: &str, namespace: &str) -> Result<(), CatalogError> {
        transaction(self, |tx| {
            let wb: Workbook =
                find(tx, name, namespace)?.ok_or_else(|| Workbook::not_found(name, namespace))?;
            for table in [WorkflowDefinition::TABLE, AdHocAction::TABLE] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE workbook = ?1 AND namespace = ?2"),
                    params![wb.name, wb.namespace],
                )
                .map_err(backend)?;
            }
            delete_by_id(tx, Workbook::TABLE, &wb.id)
        })
    }

    async fn insert_actions(&self, actions: &[AdHocAction]) -> Result<(), CatalogError> {
        transaction(self, |tx| actions.iter().try_for_each(|a| insert(tx, a)))
    }

    async fn update_actions(&self, actions: &[AdHocAction]) -> Result<(), CatalogError> {
        transaction(self, |tx| actions.iter().try_for_each(|a| update(tx, a)))
    }

    async fn get_action(
        &self,
        identifier: &str,
        namespace: &str,
    ) -> Result<AdHocAction, CatalogError> {
        find(&self.db().lock(), identifier, namespace)?
            .ok_or_else(|| AdHocAction::not_found(identifier, namespace))
    }

    async fn list_actions(&self, query: &ListQuery) -> Result<Vec<AdHocAction>, CatalogError> {
        list(&self.db().lock(), query)
    }

    async fn delete_action(&self, identifier: &str, namespace: &str) -> Result<(), CatalogError> {
        transaction(self, |tx| {
            let a: AdHocAction = find(tx, identifier, namespace)?
                .ok_or_else(|| AdHocAction::not_found(identifier, namespace))?;
            delete_by_id(tx, AdHocAction::TABLE, &a.id)
        })
    }

    async fn insert_environment(&self, environment: &Environment) -> Result<(), CatalogError> {
        transaction(self, |tx| insert(tx, environment))
    }

    async fn update_environment(&self, environment: &Environment) -> Result<(), CatalogError> {
        transaction(self, |tx| update(tx, environment))
    }

    async fn get_environment(&self, name: &str) -> Result<Environment, CatalogError> {
        find(&self.db().lock(), name, "")?.ok_or_else(|| Environment::not_found(name, ""))
    }

    async fn list_environments(&self, query: &ListQuery) -> Result<Vec<Environment>, CatalogError> {
        list(&self.db().lock(), query)
    }

    async fn delete_environment(&self, name: &str) -> Result<(), CatalogError> {
        transaction(self, |tx| {
            let e: Environment =
                find(tx, name, "")?.ok_or_else(|| Environment::not_found(name, ""))?;
            delete_by_id(tx, Environment::TABLE, &e.id)
        })
    }

    async fn list_execution_ids(&self, query: &ListQuery) -> Result<Vec<String>, CatalogError> {
        EXECUTIONS.select(&self.db().lock(), "id", query)
    }

    async fn list_task_ids(&self, query: &ListQuery) -> Result<Vec<String>, CatalogError> {
        TASKS.select(&self.db().lock(), "id", query)
    }

    async fn list_action_execution_ids(
        &self,
        query: &ListQuery,
    ) -> Result<Vec<String>, CatalogError> {
        ACTIONS.select(&self.db().lock(), "id", query)
    }

    async fn delete_execution(&self, id: &str) -> Result<(), CatalogError> {
        transaction(self, |tx| {
            let ids = execution_tree(tx, id)?;
            for id in &ids {
                tx.execute(
                    "DELETE FROM join_arrivals WHERE task_execution_id IN (SELECT id FROM task_executions WHERE execution_id = ?1)",
                    params![id],
                )
                .map_err(backend)?;
                for sql in [
                    "DELETE FROM action_executions WHERE execution_id = ?1",
                    "DELETE FROM task_executions WHERE execution_id = ?1",
                    "DELETE FROM executions WHERE id = ?1",
                ] {
                    tx.execute(sql, params![id]).map_err(backend)?;
                }
            }
            Ok(())
        })
    }
}

//! `SqliteStore`: the embedded default store, one SQLite file (WAL) that
//! also holds the queue table ([`crate::queue::SqliteQueue`]).
//!
//! One connection behind a mutex: SQLite serialises writers anyway, and a
//! statement here takes microseconds, so the lock is never held across an
//! `.await`. JSON values are stored as text.

use super::{
    ActionRecord, DefinitionRecord, ExecutionRecord, ItemCount, Millis, ParentRef, Store,
    StoreError, TaskRecord, Write,
};
use crate::engine::states::{ActionState, ExecutionState};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS definitions (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    workflow_name TEXT NOT NULL,
    workflow_id TEXT,
    workflow_namespace TEXT NOT NULL,
    definition_key TEXT NOT NULL,
    description TEXT NOT NULL,
    state TEXT NOT NULL,
    state_info TEXT,
    input TEXT NOT NULL,
    output TEXT NOT NULL,
    params TEXT NOT NULL,
    context TEXT NOT NULL,
    globals TEXT NOT NULL,
    parent_task_id TEXT,
    parent_action_id TEXT,
    root_execution_id TEXT,
    active_tasks INTEGER NOT NULL DEFAULT 0,
    project_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS executions_by_created ON executions (created_at, id);
CREATE TABLE IF NOT EXISTS task_executions (
    id TEXT PRIMARY KEY,
    execution_id TEXT NOT NULL,
    workflow_name TEXT NOT NULL,
    definition_key TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    state_info TEXT,
    in_context TEXT NOT NULL,
    published TEXT NOT NULL,
    result TEXT NOT NULL,
    items_total INTEGER NOT NULL,
    items_done INTEGER NOT NULL,
    items_failed INTEGER NOT NULL,
    items_next INTEGER NOT NULL,
    with_items INTEGER NOT NULL,
    join_arrived INTEGER NOT NULL,
    runtime TEXT NOT NULL,
    processed INTEGER NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER
);
CREATE INDEX IF NOT EXISTS tasks_by_execution ON task_executions (execution_id, name);
CREATE TABLE IF NOT EXISTS join_arrivals (
    task_execution_id TEXT NOT NULL,
    from_task_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    context TEXT NOT NULL,
    PRIMARY KEY (task_execution_id, from_task_id)
);
CREATE TABLE IF NOT EXISTS action_executions (
    id TEXT PRIMARY KEY,
    task_execution_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    task_name TEXT NOT NULL,
    item_index INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    state_info TEXT,
    input TEXT NOT NULL,
    output TEXT NOT NULL,
    is_async INTEGER NOT NULL,
    lease_until INTEGER,
    child_execution_id TEXT,
    counted INTEGER NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_by_task ON action_executions (task_execution_id, item_index, attempt);
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    visible_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS queue_visible ON queue (queue, visible_at, id);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    receive_count INTEGER NOT NULL,
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
"#;

/// The database file shared by [`SqliteStore`] and
/// [`crate::queue::SqliteQueue`].
pub struct SqliteDb {
    conn: Mutex<Connection>,
    /// Woken whenever a message is sent, so idle workers pick it up at once
    /// instead of polling.
    pub(crate) notify: Notify,
}

impl SqliteDb {
    /// Open (or create) a database file. `":memory:"` gives a private
    /// in-memory database, for tests.
    pub fn open(path: impl AsRef<Path>) -> Result<Arc<SqliteDb>, StoreError> {
        let conn = Connection::open(path).map_err(backend)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = OFF;
             PRAGMA busy_timeout = 5000;
             PRAGMA cache_size = -65536;",
        )
        .map_err(backend)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        super::sqlite_catalog::create_tables(&conn).map_err(backend)?;
        Ok(Arc::new(SqliteDb {
            conn: Mutex::new(conn),
            notify: Notify::new(),
        }))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written
        // (transactions roll back on drop), so a poisoned lock is usable.
        self.conn
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// The embedded default [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    db: Arc<SqliteDb>,
}

impl SqliteStore {
    pub fn new(db: Arc<SqliteDb>) -> SqliteStore {
        SqliteStore { db }
    }

    pub fn db(&self) -> &Arc<SqliteDb> {
        &self.db
    }

    /// How many executions there are, in any state.
    pub fn count_executions(&self) -> Result<i64, StoreError> {
        self.db
            .lock()
            .query_row("SELECT COUNT(*) FROM executions", [], |r| r.get(0))
            .map_err(backend)
    }

    /// How many executions are RUNNING (for `bora worker --until-idle`).
    pub fn count_running(&self) -> Result<i64, StoreError> {
        self.db
            .lock()
            .query_row(
                "SELECT COUNT(*) FROM executions WHERE state = 'RUNNING'",
                [],
                |r| r.get(0),
            )
            .map_err(backend)
    }
}

pub(crate) fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn json(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn parse_json(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn parse_state<S: std::str::FromStr>(text: String) -> rusqlite::Result<S> {
    text.parse().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unknown state {text}").into(),
        )
    })
}

const EXECUTION_COLUMNS: &str = "id, workflow_name, workflow_id, workflow_namespace, definition_key, description, state, state_info, input, output, params, context, globals, parent_task_id, parent_action_id, root_execution_id, active_tasks, project_id, version, created_at, updated_at";

fn execution_from_row(row: &Row<'_>) -> rusqlite::Result<ExecutionRecord> {
    let parent_task: Option<String> = row.get(13)?;
    let parent_action: Option<String> = row.get(14)?;
    Ok(ExecutionRecord {
        id: row.get(0)?,
        workflow_name: row.get(1)?,
        workflow_id: row.get(2)?,
        workflow_namespace: row.get(3)?,
        definition_key: row.get(4)?,
        description: row.get(5)?,
        state: parse_state(row.get(6)?)?,
        state_info: row.get(7)?,
        input: parse_json(row.get(8)?),
        output: parse_json(row.get(9)?),
        params: parse_json(row.get(10)?),
        context: parse_json(row.get(11)?),
        globals: parse_json(row.get(12)?),
        parent: match (parent_task, parent_action) {
            (Some(task_execution_id), Some(action_execution_id)) => Some(ParentRef {
                task_execution_id,
                action_execution_id,
            }),
            _ => None,
        },
        root_execution_id: row.get(15)?,
        active_tasks: row.get(16)?,
        project_id: row.get(17)?,
        version: row.get(18)?,
        created_at: row.get(19)?,
        updated_at: row.get(20)?,
    })
}

const TASK_COLUMNS: &str = "id, execution_id, workflow_name, definition_key, name, state, state_info, in_context, published, result, items_total, items_done, items_failed, items_next, with_items, join_arrived, runtime, processed, version, created_at, updated_at, started_at, finished_at";

fn task_from_row(row: &Row<'_>) -> rusqlite::Result<TaskRecord> {
    Ok(TaskRecord {
        id: row.get(0)?,
        execution_id: row.get(1)?,
        workflow_name: row.get(2)?,
        definition_key: row.get(3)?,
        name: row.get(4)?,
        state: parse_state(row.get(5)?)?,
        state_info: row.get(6)?,
        in_context: parse_json(row.get(7)?),
        published: parse_json(row.get(8)?),
        result: parse_json(row.get(9)?),
        items_total: row.get(10)?,
        items_done: row.get(11)?,
        items_failed: row.get(12)?,
        items_next: row.get(13)?,
        with_items: row.get(14)?,
        join_arrived: row.get(15)?,
        runtime: parse_json(row.get(16)?),
        processed: row.get(17)?,
        version: row.get(18)?,
        created_at: row.get(19)?,
        updated_at: row.get(20)?,
        started_at: row.get(21)?,
        finished_at: row.get(22)?,
    })
}

const ACTION_COLUMNS: &str = "id, task_execution_id, execution_id, task_name, item_index, attempt, name, state, state_info, input, output, is_async, lease_until, child_execution_id, counted, version, created_at, updated_at";

fn action_from_row(row: &Row<'_>) -> rusqlite::Result<ActionRecord> {
    Ok(ActionRecord {
        id: row.get(0)?,
        task_execution_id: row.get(1)?,
        execution_id: row.get(2)?,
        task_name: row.get(3)?,
        item_index: row.get(4)?,
        attempt: row.get(5)?,
        name: row.get(6)?,
        state: parse_state(row.get(7)?)?,
        state_info: row.get(8)?,
        input: parse_json(row.get(9)?),
        output: parse_json(row.get(10)?),
        is_async: row.get(11)?,
        lease_until: row.get(12)?,
        child_execution_id: row.get(13)?,
        counted: row.get(14)?,
        version: row.get(15)?,
        created_at: row.get(16)?,
        updated_at: row.get(17)?,
    })
}

fn not_found(what: &str, id: &str) -> StoreError {
    StoreError::NotFound(format!("{what} {id}"))
}

/// Insert a task if absent; bumps its execution's `active_tasks` when it
/// was inserted.
fn insert_task(tx: &Connection, t: &TaskRecord) -> Result<bool, StoreError> {
    let inserted = tx
        .execute(
            &format!("INSERT OR IGNORE INTO task_executions ({TASK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)"),
            params![
                t.id,
                t.execution_id,
                t.workflow_name,
                t.definition_key,
                t.name,
                t.state.as_str(),
                t.state_info,
                json(&t.in_context),
                json(&t.published),
                json(&t.result),
                t.items_total,
                t.items_done,
                t.items_failed,
                t.items_next,
                t.with_items,
                t.join_arrived,
                json(&t.runtime),
                t.processed,
                t.version,
                t.created_at,
                t.updated_at,
                t.started_at,
                t.finished_at
            ],
        )
        .map_err(backend)?
        == 1;
    if inserted && !t.processed {
        tx.execute(
            "UPDATE executions SET active_tasks = active_tasks + 1 WHERE id = ?1",
            params![t.execution_id],
        )
        .map_err(backend)?;
    }
    Ok(inserted)
}

fn apply(tx: &Connection, write: &Write) -> Result<(), StoreError> {
    match write {
        Write::InsertExecution(e) => {
            tx.execute(
                &format!("INSERT OR IGNORE INTO executions ({EXECUTION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)"),
                params![
                    e.id,
                    e.workflow_name,
                    e.workflow_id,
                    e.workflow_namespace,
                    e.definition_key,
                    e.description,
                    e.state.as_str(),
                    e.state_info,
                    json(&e.input),
                    json(&e.output),
                    json(&e.params),
                    json(&e.context),
                    json(&e.globals),
                    e.parent.as_ref().map(|p| p.task_execution_id.clone()),
                    e.parent.as_ref().map(|p| p.action_execution_id.clone()),
                    e.root_execution_id,
                    0i64,
                    e.project_id,
                    e.version,
                    e.created_at,
                    e.updated_at
                ],
            )
            .map_err(backend)?;
        }
        Write::UpdateExecution(e) => {
            let changed = tx
                .execute(
                    "UPDATE executions SET description = ?3, state = ?4, state_info = ?5, output = ?6, params = ?7, globals = ?8, updated_at = ?9, version = version + 1
                     WHERE id = ?1 AND version = ?2",
                    params![
                        e.id,
                        e.version,
                        e.description,
                        e.state.as_str(),
                        e.state_info,
                        json(&e.output),
                        json(&e.params),
                        json(&e.globals),
                        e.updated_at
                    ],
                )
                .map_err(backend)?;
            if changed != 1 {
                return Err(StoreError::Conflict(format!("execution {}", e.id)));
            }
        }
        Write::InsertTask(t) => {
            insert_task(tx, t)?;
        }
        Write::UpdateTask(t) => {
            let was_processed: Option<bool> = tx
                .query_row(
                    "SELECT processed FROM task_executions WHERE id = ?1 AND version = ?2",
                    params![t.id, t.version],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            let Some(was_processed) = was_processed else {
                return Err(StoreError::Conflict(format!("task execution {}", t.id)));
            };
            tx.execute(
                "UPDATE task_executions SET state = ?2, state_info = ?3, in_context = ?4, published = ?5, result = ?6, items_total = ?7, items_done = ?8, items_failed = ?9, items_next = ?10, with_items = ?11, runtime = ?12, processed = ?13, updated_at = ?14, started_at = ?15, finished_at = ?16, version = version + 1
                 WHERE id = ?1",
                params![
                    t.id,
                    t.state.as_str(),
                    t.state_info,
                    json(&t.in_context),
                    json(&t.published),
                    json(&t.result),
                    t.items_total,
                    t.items_done,
                    t.items_failed,
                    t.items_next,
                    t.with_items,
                    json(&t.runtime),
                    t.processed,
                    t.updated_at,
                    t.started_at,
                    t.finished_at
                ],
            )
            .map_err(backend)?;
            if t.processed != was_processed {
                let delta: i64 = if t.processed { -1 } else { 1 };
                tx.execute(
                    "UPDATE executions SET active_tasks = active_tasks + ?2 WHERE id = ?1",
                    params![t.execution_id, delta],
                )
                .map_err(backend)?;
            }
        }
        Write::InsertAction(a) => {
            tx.execute(
                &format!("INSERT OR IGNORE INTO action_executions ({ACTION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"),
                params![
                    a.id,
                    a.task_execution_id,
                    a.execution_id,
                    a.task_name,
                    a.item_index,
                    a.attempt,
                    a.name,
                    a.state.as_str(),
                    a.state_info,
                    json(&a.input),
                    json(&a.output),
                    a.is_async,
                    a.lease_until,
                    a.child_execution_id,
                    a.counted,
                    a.version,
                    a.created_at,
                    a.updated_at
                ],
            )
            .map_err(backend)?;
        }
        Write::UpdateAction(a) => {
            let changed = tx
                .execute(
                    "UPDATE action_executions SET state = ?3, state_info = ?4, input = ?5, output = ?6, is_async = ?7, lease_until = ?8, child_execution_id = ?9, counted = ?10, updated_at = ?11, version = version + 1
                     WHERE id = ?1 AND version = ?2",
                    params![
                        a.id,
                        a.version,
                        a.state.as_str(),
                        a.state_info,
                        json(&a.input),
                        json(&a.output),
                        a.is_async,
                        a.lease_until,
                        a.child_execution_id,
                        a.counted,
                        a.updated_at
                    ],
                )
                .map_err(backend)?;
            if changed != 1 {
                return Err(StoreError::Conflict(format!("action execution {}", a.id)));
            }
        }
        Write::JoinArrival {
            template,
            from_task_id,
            context,
        } => {
            insert_task(tx, template)?;
            let seq: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM join_arrivals WHERE task_execution_id = ?1",
                    params![template.id],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            let added = tx
                .execute(
                    "INSERT OR IGNORE INTO join_arrivals (task_execution_id, from_task_id, seq, context) VALUES (?1, ?2, ?3, ?4)",
                    params![template.id, from_task_id, seq, json(context)],
                )
                .map_err(backend)?;
            if added == 1 {
                tx.execute(
                    "UPDATE task_executions SET join_arrived = join_arrived + 1, version = version + 1 WHERE id = ?1",
                    params![template.id],
                )
                .map_err(backend)?;
            }
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn put_definition(&self, definition: &DefinitionRecord) -> Result<(), StoreError> {
        self.db
            .lock()
            .execute(
                "INSERT OR IGNORE INTO definitions (key, text) VALUES (?1, ?2)",
                params![definition.key, definition.text],
            )
            .map_err(backend)?;
        Ok(())
    }

    async fn get_definition(&self, key: &str) -> Result<DefinitionRecord, StoreError> {
        self.db
            .lock()
            .query_row(
                "SELECT key, text FROM definitions WHERE key = ?1",
                params![key],
                |r| {
                    Ok(DefinitionRecord {
                        key: r.get(0)?,
                        text: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(backend)?
            .ok_or_else(|| not_found("definition", key))
    }

    async fn get_execution(&self, id: &str) -> Result<ExecutionRecord, StoreError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = ?1"
            ))
            .map_err(backend)?;
        stmt.query_row(params![id], execution_from_row)
            .optional()
            .map_err(backend)?
            .ok_or_else(|| not_found("execution", id))
    }

    async fn execution_state(&self, id: &str) -> Result<ExecutionState, StoreError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached("SELECT state FROM executions WHERE id = ?1")
            .map_err(backend)?;
        stmt.query_row(params![id], |r| parse_state(r.get(0)?))
            .optional()
            .map_err(backend)?
            .ok_or_else(|| not_found("execution", id))
    }

    async fn get_task(&self, id: &str) -> Result<TaskRecord, StoreError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM task_executions WHERE id = ?1"
            ))
            .map_err(backend)?;
        stmt.query_row(params![id], task_from_row)
            .optional()
            .map_err(backend)?
            .ok_or_else(|| not_found("task execution", id))
    }

    async fn get_action(&self, id: &str) -> Result<ActionRecord, StoreError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {ACTION_COLUMNS} FROM action_executions WHERE id = ?1"
            ))
            .map_err(backend)?;
        stmt.query_row(params![id], action_from_row)
            .optional()
            .map_err(backend)?
            .ok_or_else(|| not_found("action execution", id))
    }

    async fn find_task(
        &self,
        execution_id: &str,
        name: &str,
    ) -> Result<Option<TaskRecord>, StoreError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM task_executions WHERE execution_id = ?1 AND name = ?2 ORDER BY rowid DESC LIMIT 1"
            ))
            .map_err(backend)?;
        stmt.query_row(params![execution_id, name], task_from_row)
            .optional()
            .map_err(backend)
    }

    async fn list_tasks(&self, execution_id: &str) -> Result<Vec<TaskRecord>, StoreError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM task_executions WHERE execution_id = ?1 ORDER BY rowid"
            ))
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![execution_id], task_from_row)
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }

    async fn list_actions(&self, task_execution_id: &str) -> Result<Vec<ActionRecord>, StoreError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {ACTION_COLUMNS} FROM action_executions WHERE task_execution_id = ?1 ORDER BY item_index, attempt"
            ))
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![task_execution_id], action_from_row)
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }

    async fn item_results(
        &self,
        task_execution_id: &str,
    ) -> Result<Vec<(ActionState, Value)>, StoreError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT state, output FROM action_executions a
                 WHERE task_execution_id = ?1 AND attempt = (
                     SELECT MAX(attempt) FROM action_executions b
                     WHERE b.task_execution_id = a.task_execution_id AND b.item_index = a.item_index)
                 ORDER BY item_index",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![task_execution_id], |r| {
                Ok((parse_state(r.get(0)?)?, parse_json(r.get(1)?)))
            })
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }

    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(backend)?;
        for write in &writes {
            apply(&tx, write)?;
        }
        tx.commit().map_err(backend)
    }

    async fn count_item(
        &self,
        task_execution_id: &str,
        action_execution_id: &str,
        failed: bool,
        window: bool,
        now: Millis,
    ) -> Result<Option<ItemCount>, StoreError> {
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(backend)?;
        let marked = tx
            .execute(
                "UPDATE action_executions SET counted = 1, version = version + 1, updated_at = ?2 WHERE id = ?1 AND counted = 0",
                params![action_execution_id, now],
            )
            .map_err(backend)?;
        if marked == 0 {
            return Ok(None);
        }
        let before: i64 = tx
            .query_row(
                "SELECT items_next FROM task_executions WHERE id = ?1",
                params![task_execution_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?
            .ok_or_else(|| not_found("task execution", task_execution_id))?;
        let (total, done, failed_count, next): (i64, i64, i64, i64) = tx
            .query_row(
                "UPDATE task_executions SET items_done = items_done + 1, items_failed = items_failed + ?2,
                     items_next = CASE WHEN ?3 AND items_next < items_total THEN items_next + 1 ELSE items_next END,
                     version = version + 1, updated_at = ?4
                 WHERE id = ?1
                 RETURNING items_total, items_done, items_failed, items_next",
                params![task_execution_id, failed as i64, window, now],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(backend)?
            .ok_or_else(|| not_found("task execution", task_execution_id))?;
        tx.commit().map_err(backend)?;
        // The window moved iff items_next grew; the item to start is the
        // one it moved past.
        let start_index = (next > before).then_some(before);
        Ok(Some(ItemCount {
            total,
            done,
            failed: failed_count,
            start_index,
        }))
    }

    async fn join_contexts(&self, task_execution_id: &str) -> Result<Vec<Value>, StoreError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT context FROM join_arrivals WHERE task_execution_id = ?1 ORDER BY seq",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![task_execution_id], |r| Ok(parse_json(r.get(0)?)))
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }
}

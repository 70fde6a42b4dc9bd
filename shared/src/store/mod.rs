//! The store port: where executions, task executions and action executions
//! live, and the adapters behind it (SQLite for the embedded default).
//!
//! The port is small on purpose, so that SQLite and DynamoDB can both serve
//! it with the same guarantees:
//! - reads by id, and a few indexed queries;
//! - [`Store::commit`]: a list of writes applied all or nothing, where an
//!   update only applies if the record's `version` is still the one that was
//!   read (optimistic concurrency). A conflict changes nothing.
//! - inserts are "insert if absent": ids are derived deterministically from
//!   what caused them, so a redelivered message that inserts the same task
//!   again is a no-op, not a duplicate.
//! - [`Store::count_item`] and [`Store::arrive_join`]: the two counters that
//!   many messages hit at once, as single atomic operations, so that with-items
//!   and joins do not turn into retry storms under concurrency.

pub mod catalog;
#[cfg(feature = "aws")]
pub mod dynamodb;
pub mod sqlite;
pub mod sqlite_catalog;

use crate::engine::states::{ActionState, ExecutionState, TaskState};
use serde_json::Value;

pub use catalog::{Catalog, CatalogError};
#[cfg(feature = "aws")]
pub use dynamodb::DynamoDbStore;
pub use sqlite::SqliteStore;

/// Milliseconds since the Unix epoch. The engine never reads a clock; the
/// handlers pass this in.
pub type Millis = i64;

/// What the store could not do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write found a newer version: another handler moved the
    /// record first. Nothing was written. Retrying the message helps.
    #[error("conflict: {0} was changed concurrently")]
    Conflict(String),
    /// The record does not exist. Usually the caller's fault (a bad id).
    #[error("{0} not found")]
    NotFound(String),
    /// A record would exceed what the backend can hold. Caller's fault.
    #[error("{0}")]
    TooLarge(String),
    /// The backend failed (disk, network, corrupt data). A retry may help.
    #[error("store backend error: {0}")]
    Backend(String),
}

/// Where a sub-workflow execution reports its end.
#[derive(Debug, Clone, PartialEq)]
pub struct ParentRef {
    pub task_execution_id: String,
    pub action_execution_id: String,
}

/// A workflow execution.
#[derive(Debug, Clone)]
pub struct ExecutionRecord {
    pub id: String,
    pub workflow_name: String,
    pub workflow_id: Option<String>,
    pub workflow_namespace: String,
    /// Key of the immutable definition snapshot this execution runs.
    pub definition_key: String,
    pub description: String,
    pub state: ExecutionState,
    pub state_info: Option<String>,
    pub input: Value,
    pub output: Value,
    pub params: Value,
    /// The initial context: input, defaults and evaluated `vars`.
    pub context: Value,
    /// Variables published with `publish: global:`.
    pub globals: Value,
    pub parent: Option<ParentRef>,
    pub root_execution_id: Option<String>,
    /// Task executions not yet processed (finished and their transitions
    /// taken). Kept by the store: +1 when a task is inserted, -1 when a task
    /// is updated to `processed`. [`Write::UpdateExecution`] leaves it alone.
    /// The execution ends when this reaches zero.
    pub active_tasks: i64,
    pub project_id: String,
    pub version: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A task execution.
#[derive(Debug, Clone)]
pub struct TaskRecord {
    pub id: String,
    pub execution_id: String,
    pub workflow_name: String,
    /// The definition snapshot of its execution (so that handling one item
    /// of a with-items does not need to read the execution).
    pub definition_key: String,
    pub name: String,
    pub state: TaskState,
    pub state_info: Option<String>,
    /// `$` as this task sees it.
    pub in_context: Value,
    pub published: Value,
    /// The task's result once it is finished (a list for with-items).
    pub result: Value,
    /// Number of action executions (items) this task runs; 1 without with-items.
    pub items_total: i64,
    pub items_done: i64,
    pub items_failed: i64,
    /// Index of the next item not yet sent to run (with `concurrency`).
    pub items_next: i64,
    pub with_items: bool,
    /// Inbound tasks arrived so far (joins).
    pub join_arrived: i64,
    /// Engine bookkeeping that survives between messages (which waits are
    /// done, a pending outcome during wait-after, ...).
    pub runtime: Value,
    /// True once the task finished and its transitions were taken.
    pub processed: bool,
    pub version: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
}

/// One run of an action (one item of a with-items, one attempt of a retry),
/// or one sub-workflow execution of a task.
#[derive(Debug, Clone)]
pub struct ActionRecord {
    pub id: String,
    pub task_execution_id: String,
    pub execution_id: String,
    pub task_name: String,
    pub item_index: i64,
    pub attempt: i64,
    /// The action's name (`std.echo`), or the sub-workflow's name.
    pub name: String,
    pub state: ActionState,
    pub state_info: Option<String>,
    pub input: Value,
    pub output: Value,
    pub is_async: bool,
    /// A run-task that claimed this action holds it until then.
    pub lease_until: Option<Millis>,
    /// For sub-workflow tasks: the child execution.
    pub child_execution_id: Option<String>,
    /// True once complete-task counted this result into its task.
    pub counted: bool,
    pub version: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// One write of a [`Store::commit`].
#[derive(Debug, Clone)]
pub enum Write {
    /// Insert if no record has this id (no-op otherwise).
    InsertExecution(ExecutionRecord),
    /// Replace, if the stored version equals `record.version`; the stored
    /// version becomes `record.version + 1`.
    UpdateExecution(ExecutionRecord),
    InsertTask(TaskRecord),
    UpdateTask(TaskRecord),
    InsertAction(ActionRecord),
    UpdateAction(ActionRecord),
    /// Inbound task `from_task_id` reached a join task: insert the join task
    /// from `template` if absent (state WAITING), and record the arrival with
    /// the inbound task's outbound context, once per inbound task.
    JoinArrival {
        template: TaskRecord,
        from_task_id: String,
        context: Value,
    },
}

/// Counters of a with-items task after one item was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemCount {
    pub total: i64,
    pub done: i64,
    pub failed: i64,
    /// An item index this caller must now send to run (concurrency window
    /// moved), if any.
    pub start_index: Option<i64>,
}

/// A stored workflow document snapshot, immutable, named by its key.
#[derive(Debug, Clone, PartialEq)]
pub struct DefinitionRecord {
    pub key: String,
    pub text: String,
}

/// The store port.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    async fn put_definition(&self, definition: &DefinitionRecord) -> Result<(), StoreError>;
    async fn get_definition(&self, key: &str) -> Result<DefinitionRecord, StoreError>;

    async fn get_execution(&self, id: &str) -> Result<ExecutionRecord, StoreError>;
    /// Only the state of an execution: cheap, for the per-item hot path that
    /// must not read a large input or context.
    async fn execution_state(&self, id: &str) -> Result<ExecutionState, StoreError>;
    async fn get_task(&self, id: &str) -> Result<TaskRecord, StoreError>;
    async fn get_action(&self, id: &str) -> Result<ActionRecord, StoreError>;

    /// The latest task execution with this name in an execution.
    async fn find_task(
        &self,
        execution_id: &str,
        name: &str,
    ) -> Result<Option<TaskRecord>, StoreError>;
    /// Task executions of an execution, oldest first.
    async fn list_tasks(&self, execution_id: &str) -> Result<Vec<TaskRecord>, StoreError>;
    /// Action executions of a task, by item index then attempt.
    async fn list_actions(&self, task_execution_id: &str) -> Result<Vec<ActionRecord>, StoreError>;
    /// The final (latest attempt) output of each item of a task, by index.
    async fn item_results(
        &self,
        task_execution_id: &str,
    ) -> Result<Vec<(ActionState, Value)>, StoreError>;

    /// Apply all writes or none.
    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError>;

    /// Count one finished action into its task, atomically: marks the action
    /// counted, bumps the task's done/failed counters and, when
    /// `window` is set, moves the concurrency window by one item. `None` when
    /// the action was already counted (a duplicate message).
    async fn count_item(
        &self,
        task_execution_id: &str,
        action_execution_id: &str,
        failed: bool,
        window: bool,
        now: Millis,
    ) -> Result<Option<ItemCount>, StoreError>;

    /// The outbound contexts recorded by the arrivals at a join task, in
    /// arrival order.
    async fn join_contexts(&self, task_execution_id: &str) -> Result<Vec<Value>, StoreError>;
}

//! The embedded default, assembled: one SQLite file for the store and the
//! queue, the standard actions, and the handlers' dependencies. `bora run`,
//! `bora serve`, `bora worker` and the tests all start from here.

use crate::actions::ActionRegistry;
use crate::handlers::{Deps, EventSink, HandlerError};
use crate::queue::SqliteQueue;
use crate::store::sqlite::SqliteDb;
use crate::store::{ExecutionRecord, SqliteStore, Store};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// An opened embedded database with everything the handlers need.
pub struct Embedded {
    pub deps: Arc<Deps>,
    pub store: SqliteStore,
    pub queue: SqliteQueue,
}

impl Embedded {
    /// Open (or create) the database at `path` (`":memory:"` for a private
    /// in-memory one), optionally with an event sink for progress.
    pub fn open(
        path: impl AsRef<Path>,
        events: Option<Arc<dyn EventSink>>,
    ) -> Result<Embedded, HandlerError> {
        Embedded::open_with(path, events, ActionRegistry::standard())
    }

    /// [`Embedded::open`] with a registry of one's own (tests add actions
    /// that count their runs).
    pub fn open_with(
        path: impl AsRef<Path>,
        events: Option<Arc<dyn EventSink>>,
        actions: ActionRegistry,
    ) -> Result<Embedded, HandlerError> {
        let db = SqliteDb::open(path)?;
        let store = SqliteStore::new(db.clone());
        let queue = SqliteQueue::new(db);
        let mut deps = Deps::new(
            Arc::new(store.clone()),
            Arc::new(queue.clone()),
            Arc::new(actions),
        );
        deps.events = events;
        Ok(Embedded {
            deps: Arc::new(deps),
            store,
            queue,
        })
    }

    /// Make run-task's claim on an action last as long as the queue's
    /// visibility timeout: a message that comes back after a crash then
    /// finds the claim expired and takes the action over. Call before the
    /// dependencies are shared.
    pub fn set_action_lease(&mut self, lease: Duration) {
        if let Some(deps) = Arc::get_mut(&mut self.deps) {
            deps.settings.action_lease = lease;
        }
    }

    /// Poll until an execution is no longer RUNNING, and return it.
    pub async fn wait_for(
        &self,
        execution_id: &str,
        poll: Duration,
    ) -> Result<ExecutionRecord, HandlerError> {
        loop {
            let execution = self.store.get_execution(execution_id).await?;
            if execution.state != crate::engine::states::ExecutionState::Running {
                return Ok(execution);
            }
            tokio::time::sleep(poll).await;
        }
    }
}

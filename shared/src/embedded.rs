//! The embedded default, assembled: one SQLite file for the store and the
//! queue, the standard actions, and the handlers' dependencies. `bora run`,
//! `bora serve`, `bora worker` and the tests all start from here.

use crate::actions::ActionRegistry;
use crate::handlers::{Deps, EventSink, HandlerError};
use crate::queue::SqliteQueue;
use crate::seal::{LocalKeySealer, LocalKeyring};
use crate::store::sqlite::SqliteDb;
use crate::store::{ExecutionRecord, SqliteStore, Store};
use crate::target::policy::OutboundPolicy;
use crate::worker::WorkerSettings;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Environment variable: the sealing key file (default: the database path
/// with `.key` appended).
pub const KEY_FILE_VAR: &str = "BORA_KEY_FILE";

fn key_file_for(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

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
        let path = path.as_ref();
        let db = SqliteDb::open(path)?;
        let store = SqliteStore::new(db.clone());
        let queue = SqliteQueue::new(db);
        let mut deps = Deps::new(
            Arc::new(store.clone()),
            Arc::new(queue.clone()),
            Arc::new(actions),
        );
        deps.events = events;
        deps.resolver = Some(Arc::new(store.clone()));
        deps.policy =
            OutboundPolicy::from_env().map_err(|e| HandlerError::Invalid(e.to_string()))?;
        // Sealed values live as long as the database: a file database gets
        // a key file beside it (or `BORA_KEY_FILE`); an in-memory one keeps
        // the process's random key.
        let key_file = std::env::var_os(KEY_FILE_VAR)
            .map(PathBuf::from)
            .or_else(|| (path != Path::new(":memory:")).then(|| key_file_for(path)));
        if let Some(key_file) = key_file {
            let sealer = LocalKeySealer::open_or_create(&key_file).map_err(|e| {
                HandlerError::Invalid(format!("sealing key {}: {e}", key_file.display()))
            })?;
            deps.keyring = Arc::new(LocalKeyring::new(sealer));
        }
        Ok(Embedded {
            deps: Arc::new(deps),
            store,
            queue,
        })
    }

    /// Worker settings for `workers` workers and a visibility timeout of
    /// `visibility_timeout` seconds. Also makes run-task's claim on an action
    /// last as long: a message that comes back after a crash then finds the
    /// claim expired and takes the action over. Call before the
    /// dependencies are shared.
    pub fn worker_settings(&mut self, workers: usize, visibility_timeout: f64) -> WorkerSettings {
        let visibility = Duration::from_secs_f64(visibility_timeout.max(0.1));
        if let Some(deps) = Arc::get_mut(&mut self.deps) {
            deps.settings.action_lease = visibility;
        }
        WorkerSettings {
            workers,
            visibility_timeout: visibility,
            ..WorkerSettings::default()
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

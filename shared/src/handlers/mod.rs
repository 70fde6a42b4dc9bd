//! The three handlers (use cases) that drive the engine through the store
//! and queue ports:
//!
//! - [`create_execution`]: validate, store an execution and its first tasks,
//!   enqueue them.
//! - [`run_task`]: run one action execution and record its result.
//! - [`complete_task`]: everything that moves a workflow forward: start a
//!   task, count a finished action, apply retries, timers, publish,
//!   transitions, joins, and finish executions.
//!
//! Each handler is idempotent: ids are derived from their cause, inserts are
//! "if absent", and state moves by conditional writes, so a duplicated, late
//! or reordered message changes nothing. The local worker and the Lambda
//! functions call exactly these functions.

pub mod complete_task;
pub mod control;
pub mod create_execution;
pub mod run_task;

pub use complete_task::{give_up, resume_execution};

use crate::actions::ActionRegistry;
use crate::engine::EngineError;
use crate::expr::Lookup;
use crate::queue::{Message, Queue, QueueError};
use crate::seal::{Keyring, LocalKeySealer, LocalKeyring, SealError};
use crate::store::{DefinitionRecord, ExecutionRecord, Millis, Store, StoreError, TaskRecord};
use crate::target::policy::OutboundPolicy;
use crate::workflow::{self, Document, ParseError};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use complete_task::complete_task;
pub use create_execution::{CreateExecution, create_execution};
pub use run_task::run_task;

/// Why a handler stopped.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The request is wrong (bad input, unknown workflow). Caller's fault;
    /// nothing was stored; retrying the same request will not help.
    #[error("{0}")]
    Invalid(String),
    /// A named thing does not exist. Caller's fault.
    #[error("{0}")]
    NotFound(String),
    /// The store failed or a write conflicted; retrying the message helps.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The queue failed; retrying helps.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// A stored definition no longer parses (a bug or a corrupt store).
    #[error("stored definition is invalid: {0}")]
    Definition(#[from] ParseError),
    /// Another worker holds this message's work for now; retry later.
    #[error("busy: {0}")]
    Busy(String),
    /// A secret could not be sealed or its key not opened: the key service
    /// (KMS) is unreachable or refused, or a key file is wrong. Retrying
    /// helps when the key service was unreachable or busy
    /// ([`SealError::is_retryable`]); otherwise it is the operator's to fix.
    #[error("the target cloud's token: {0}")]
    Seal(#[from] SealError),
}

impl From<EngineError> for HandlerError {
    fn from(e: EngineError) -> Self {
        HandlerError::Invalid(e.to_string())
    }
}

impl HandlerError {
    /// True when the message should come back and be tried again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            HandlerError::Store(StoreError::Conflict(_) | StoreError::Backend(_))
                | HandlerError::Queue(_)
                | HandlerError::Busy(_)
        ) || matches!(self, HandlerError::Seal(e) if e.is_retryable())
    }
}

/// The time, as handlers see it. The engine itself never reads a clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> Millis;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0)
    }
}

/// Something that happened, for a progress display (`bora run`) or logs.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    TaskStarted {
        execution_id: String,
        task: String,
        items: Option<i64>,
    },
    ItemsProgress {
        execution_id: String,
        task: String,
        done: i64,
        total: i64,
    },
    TaskFinished {
        execution_id: String,
        task: String,
        state: String,
        state_info: Option<String>,
        duration_ms: i64,
    },
    ExecutionFinished {
        execution_id: String,
        state: String,
    },
}

/// Receives [`Event`]s.
pub trait EventSink: Send + Sync {
    fn event(&self, event: Event);
}

/// Limits and timings of the handlers.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a run-task may hold an action before another may take it.
    pub action_lease: Duration,
    /// Largest execution input, in bytes of JSON.
    pub max_input_bytes: usize,
    /// Largest action result kept, in bytes of JSON.
    pub max_result_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            action_lease: Duration::from_secs(60),
            max_input_bytes: 256 * 1024,
            max_result_bytes: 256 * 1024,
        }
    }
}

/// Parsed definitions by key. Definitions are immutable once stored, so a
/// cached parse never goes stale.
#[derive(Default)]
pub struct SpecCache {
    parsed: Mutex<HashMap<String, Arc<Document>>>,
}

impl SpecCache {
    pub async fn get(&self, store: &dyn Store, key: &str) -> Result<Arc<Document>, HandlerError> {
        if let Some(doc) = self.lock().get(key) {
            return Ok(doc.clone());
        }
        let definition = store.get_definition(key).await?;
        let doc = Arc::new(workflow::parse_document(&definition.text)?);
        self.lock().insert(key.to_string(), doc.clone());
        Ok(doc)
    }

    /// Store a definition snapshot (if new) and return its key and parse.
    pub async fn put(
        &self,
        store: &dyn Store,
        text: &str,
    ) -> Result<(String, Arc<Document>), HandlerError> {
        let key = definition_key(text);
        if let Some(doc) = self.lock().get(&key) {
            return Ok((key, doc.clone()));
        }
        let doc = Arc::new(
            workflow::parse_document(text).map_err(|e| HandlerError::Invalid(e.to_string()))?,
        );
        store
            .put_definition(&DefinitionRecord {
                key: key.clone(),
                text: text.to_string(),
            })
            .await?;
        self.lock().insert(key.clone(), doc.clone());
        Ok((key, doc))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Document>>> {
        self.parsed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The key of a definition snapshot: a name-based UUID of its text.
pub fn definition_key(text: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, text.as_bytes()).to_string()
}

/// Everything a handler needs, built once per process.
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    pub actions: Arc<ActionRegistry>,
    pub specs: SpecCache,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    pub events: Option<Arc<dyn EventSink>>,
    /// Gives the sealer of a root execution's target-cloud token: to seal
    /// it before it is stored, to unseal it for an action.
    pub keyring: Arc<dyn Keyring>,
    /// What URLs a target cloud may make bora reach.
    pub policy: OutboundPolicy,
    /// Finds registered workflows that a `workflow:` task names but its
    /// own document does not define.
    pub resolver: Option<Arc<dyn Resolver>>,
}

/// Looks up definitions registered outside an execution's own document.
#[async_trait::async_trait]
pub trait Resolver: Send + Sync {
    /// The definition key of the registered workflow `name` in `namespace`
    /// (falling back to the default namespace, as Mistral does).
    async fn workflow_key(&self, name: &str, namespace: &str) -> Option<String>;
    /// The registered ad-hoc action `name` (from an actions document or a
    /// workbook).
    async fn ad_hoc_action(&self, name: &str, namespace: &str)
    -> Option<workflow::AdHocActionSpec>;
}

#[async_trait::async_trait]
impl<C: crate::store::catalog::Catalog + ?Sized> Resolver for C {
    async fn workflow_key(&self, name: &str, namespace: &str) -> Option<String> {
        match self.get_workflow(name, namespace).await {
            Ok(w) => Some(w.definition_key),
            Err(_) if !namespace.is_empty() => self
                .get_workflow(name, "")
                .await
                .ok()
                .map(|w| w.definition_key),
            Err(_) => None,
        }
    }

    async fn ad_hoc_action(
        &self,
        name: &str,
        namespace: &str,
    ) -> Option<workflow::AdHocActionSpec> {
        let action = match self.get_action(name, namespace).await {
            Ok(a) => a,
            Err(_) => self.get_action(name, "").await.ok()?,
        };
        let specs = workflow::parse_actions(&action.definition)
            .ok()
            .or_else(|| {
                workflow::parse_document(&action.definition)
                    .ok()
                    .map(|d| d.actions)
            })?;
        specs.into_iter().find(|a| a.name == name)
    }
}

impl Deps {
    pub fn new(store: Arc<dyn Store>, queue: Arc<dyn Queue>, actions: Arc<ActionRegistry>) -> Deps {
        Deps {
            store,
            queue,
            actions,
            specs: SpecCache::default(),
            clock: Arc::new(SystemClock),
            settings: Settings::default(),
            events: None,
            keyring: Arc::new(LocalKeyring::new(ephemeral_sealer())),
            policy: OutboundPolicy::default(),
            resolver: None,
        }
    }

    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    pub(crate) fn emit(&self, event: Event) {
        if let Some(sink) = &self.events {
            sink.event(event);
        }
    }

    pub(crate) async fn send(
        &self,
        messages: Vec<Message>,
        delay: Duration,
    ) -> Result<(), HandlerError> {
        if !messages.is_empty() {
            self.queue.send(&messages, delay).await?;
        }
        Ok(())
    }
}

/// A sealer with a random key that lives as long as the process: for
/// in-memory databases, whose sealed values die with the process too.
pub fn ephemeral_sealer() -> LocalKeySealer {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    LocalKeySealer::from_keys(&key, &[])
}

/// A deterministic id from its cause: the same cause always gives the same
/// id, which is what makes inserts idempotent.
pub fn derived_id(parts: &[&str]) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, parts.join("/").as_bytes()).to_string()
}

/// A fresh random id.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The dict `task(name)` returns.
pub fn task_value(task: &TaskRecord) -> Value {
    json!({
        "id": task.id,
        "name": task.name,
        "state": task.state.as_str(),
        "state_info": task.state_info,
        "result": task.result,
        "published": task.published,
        "workflow_execution_id": task.execution_id,
    })
}

/// What expressions of one execution can see through `task()`,
/// `execution()`, `env()` and `global()`, read before evaluation.
pub struct Prefetched {
    pub tasks: HashMap<String, Value>,
    pub current: Option<Value>,
    pub execution: Value,
    pub env: Value,
    pub globals: Value,
}

impl Prefetched {
    /// Read the tasks named in `names` (latest execution of each).
    pub async fn load(
        store: &dyn Store,
        execution: &ExecutionRecord,
        names: impl IntoIterator<Item = String>,
        current: Option<Value>,
    ) -> Result<Prefetched, HandlerError> {
        let mut tasks = HashMap::new();
        for name in names {
            if tasks.contains_key(&name) {
                continue;
            }
            if let Some(task) = store.find_task(&execution.id, &name).await? {
                tasks.insert(name, task_value(&task));
            }
        }
        Ok(Prefetched {
            tasks,
            current,
            execution: execution_value(execution),
            env: execution
                .params
                .get("env")
                .filter(|e| e.is_object())
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new())),
            globals: execution.globals.clone(),
        })
    }
}

impl Lookup for Prefetched {
    fn task(&self, name: Option<&str>) -> Option<Value> {
        match name {
            None => self.current.clone(),
            Some(name) => {
                if let Some(current) = &self.current
                    && current.get("name").and_then(Value::as_str) == Some(name)
                {
                    return Some(current.clone());
                }
                self.tasks.get(name).cloned()
            }
        }
    }

    fn execution(&self) -> Value {
        self.execution.clone()
    }

    fn env(&self) -> Value {
        self.env.clone()
    }

    fn global(&self, name: &str) -> Option<Value> {
        self.globals.get(name).cloned()
    }
}

/// The dict `execution()` returns.
pub fn execution_value(execution: &ExecutionRecord) -> Value {
    json!({
        "id": execution.id,
        "name": execution.workflow_name,
        "input": execution.input,
        "params": execution.params,
        "root_execution_id": execution.root_execution_id,
        "created_at": crate::time::format(execution.created_at),
        "updated_at": crate::time::format(execution.updated_at),
    })
}

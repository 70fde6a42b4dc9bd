//! Shared test harness: run a workflow document with the real worker loop
//! on the embedded default (SQLite) or on DynamoDB + SQS (the AWS emulator),
//! as `BORA_TEST_BACKEND` says, and look at what was stored.
#![allow(dead_code)]

pub mod aws;

use bora::actions::{
    Action, ActionContext, ActionFuture, ActionImpl, ActionInfo, ActionOutcome, ActionRegistry,
};
use bora::embedded::Embedded;
use bora::engine::states::ExecutionState;
use bora::handlers::{CreateExecution, Deps, HandlerError, create_execution};
use bora::queue::Queue;
use bora::store::{ExecutionRecord, Store, TaskRecord};
use bora::worker::{self, WorkerSettings};
use bora::workflow::{self, InputParam};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// `test.count`: echoes `output` and counts how many times it ran, so a
/// test can prove an action did not run twice.
pub struct Counter(pub Arc<AtomicUsize>);

impl Action for Counter {
    fn run<'a>(
        &'a self,
        input: &'a Map<String, Value>,
        _ctx: &'a ActionContext,
    ) -> ActionFuture<'a> {
        self.0.fetch_add(1, Ordering::SeqCst);
        let out = input.get("output").cloned().unwrap_or(Value::Null);
        Box::pin(async move { ActionOutcome::Success(out) })
    }
}

/// A registry with the std actions and `test.count`.
pub fn registry(counter: Arc<AtomicUsize>) -> ActionRegistry {
    let mut reg = ActionRegistry::standard();
    reg.register(
        ActionInfo {
            name: "test.count".into(),
            description: "counts its runs".into(),
            input: vec![InputParam {
                name: "output".into(),
                default: Some(Value::Null),
            }],
            is_async: false,
        },
        ActionImpl::Dyn(Arc::new(Counter(counter))),
    );
    reg
}

/// Which backend the engine tests run on: `BORA_TEST_BACKEND=sqlite`
/// (default: the embedded SQLite store and queue) or `aws` (DynamoDB and
/// SQS on the AWS emulator named by `AWS_ENDPOINT_URL`, a fresh table and
/// fresh queues per test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Aws,
}

impl BackendKind {
    pub fn from_env() -> BackendKind {
        match std::env::var("BORA_TEST_BACKEND").as_deref() {
            Ok("aws") => BackendKind::Aws,
            Ok("sqlite") | Ok("") | Err(_) => BackendKind::Sqlite,
            Ok(other) => panic!("BORA_TEST_BACKEND={other}: expected sqlite or aws"),
        }
    }
}

/// The backend an [`Engine`] runs on.
pub enum Backend {
    Sqlite(Embedded),
    Aws(Box<aws::AwsBackend>),
}

/// A running engine with workers, on the backend `BORA_TEST_BACKEND` names.
pub struct Engine {
    pub deps: Arc<Deps>,
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    pub backend: Backend,
    pub runs: Arc<AtomicUsize>,
    stop: watch::Sender<bool>,
}

impl Engine {
    pub async fn start() -> Engine {
        Engine::start_with(WorkerSettings {
            workers: 4,
            ..WorkerSettings::default()
        })
        .await
    }

    pub async fn start_with(settings: WorkerSettings) -> Engine {
        let runs = Arc::new(AtomicUsize::new(0));
        let backend = match BackendKind::from_env() {
            BackendKind::Sqlite => Backend::Sqlite(
                Embedded::open_with(":memory:", None, registry(runs.clone())).unwrap(),
            ),
            BackendKind::Aws => Backend::Aws(Box::new(
                aws::AwsBackend::create(registry(runs.clone()), settings.max_receives + 1).await,
            )),
        };
        let deps = match &backend {
            Backend::Sqlite(embedded) => embedded.deps.clone(),
            Backend::Aws(aws) => aws.deps.clone(),
        };
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(worker::run(deps.clone(), settings, stopped));
        Engine {
            store: deps.store.clone(),
            queue: deps.queue.clone(),
            deps,
            backend,
            runs,
            stop,
        }
    }

    /// Stop the engine's own workers (a test that drives the queue with
    /// dependencies of its own), and let a poll in flight finish.
    pub async fn stop_workers(&self) {
        let _ = self.stop.send(true);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    /// How many executions exist, in any state.
    pub async fn count_executions(&self) -> i64 {
        match &self.backend {
            Backend::Sqlite(embedded) => embedded.store.count_executions().unwrap(),
            Backend::Aws(aws) => aws.count_executions().await,
        }
    }

    /// Store `yaml` and start its first (or named) workflow.
    pub async fn start_execution(
        &self,
        yaml: &str,
        workflow_name: Option<&str>,
        input: Value,
        params: Value,
    ) -> Result<ExecutionRecord, HandlerError> {
        let deps = &self.deps;
        let doc =
            workflow::parse_document(yaml).map_err(|e| HandlerError::Invalid(e.to_string()))?;
        workflow::check_references(&doc, &|a| deps.actions.get(a).is_some(), &|_| false)
            .map_err(|e| HandlerError::Invalid(e.to_string()))?;
        let (key, doc) = deps.specs.put(deps.store.as_ref(), yaml).await?;
        let name = workflow_name
            .map(str::to_string)
            .unwrap_or_else(|| doc.workflows[0].name.clone());
        create_execution(
            deps,
            CreateExecution {
                definition_key: key,
                workflow_name: name,
                input,
                params,
                ..CreateExecution::default()
            },
        )
        .await
    }

    /// Wait (bounded) until the execution is no longer RUNNING.
    pub async fn wait(&self, id: &str) -> ExecutionRecord {
        let (limit, poll) = match self.backend {
            Backend::Sqlite(_) => (Duration::from_secs(30), Duration::from_millis(5)),
            Backend::Aws(_) => (Duration::from_secs(120), Duration::from_millis(50)),
        };
        tokio::time::timeout(limit, async {
            loop {
                let execution = self.store.get_execution(id).await.unwrap();
                if execution.state != ExecutionState::Running {
                    return execution;
                }
                tokio::time::sleep(poll).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("execution did not finish within {limit:?}"))
    }

    /// Run to the end and return the execution.
    pub async fn run(&self, yaml: &str, input: Value) -> ExecutionRecord {
        let e = self
            .start_execution(yaml, None, input, Value::Null)
            .await
            .unwrap();
        self.wait(&e.id).await
    }

    pub async fn tasks(&self, execution_id: &str) -> Vec<TaskRecord> {
        self.store.list_tasks(execution_id).await.unwrap()
    }

    pub async fn task(&self, execution_id: &str, name: &str) -> TaskRecord {
        self.store
            .find_task(execution_id, name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no task {name}"))
    }

    pub async fn action_count(&self, execution_id: &str, name: &str) -> usize {
        let task = self.task(execution_id, name).await;
        self.store.list_actions(&task.id).await.unwrap().len()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

pub fn assert_success(e: &ExecutionRecord) {
    assert_eq!(
        e.state,
        ExecutionState::Success,
        "execution failed: {:?}",
        e.state_info
    );
}

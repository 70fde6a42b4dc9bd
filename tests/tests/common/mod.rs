//! Shared test harness: run a workflow document on an in-memory embedded
//! default with the real worker loop, and look at what was stored.
#![allow(dead_code)]

use bora::actions::{
    Action, ActionContext, ActionFuture, ActionImpl, ActionInfo, ActionOutcome, ActionRegistry,
};
use bora::embedded::Embedded;
use bora::engine::states::ExecutionState;
use bora::handlers::{CreateExecution, HandlerError, create_execution};
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

/// A running embedded engine with workers.
pub struct Engine {
    pub embedded: Embedded,
    pub runs: Arc<AtomicUsize>,
    stop: watch::Sender<bool>,
}

impl Engine {
    pub fn start() -> Engine {
        Engine::start_with(WorkerSettings {
            workers: 4,
            ..WorkerSettings::default()
        })
    }

    pub fn start_with(settings: WorkerSettings) -> Engine {
        let runs = Arc::new(AtomicUsize::new(0));
        let embedded = Embedded::open_with(":memory:", None, registry(runs.clone())).unwrap();
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(worker::run(embedded.deps.clone(), settings, stopped));
        Engine {
            embedded,
            runs,
            stop,
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
        let deps = &self.embedded.deps;
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
        tokio::time::timeout(
            Duration::from_secs(30),
            self.embedded.wait_for(id, Duration::from_millis(5)),
        )
        .await
        .expect("execution did not finish within 30 s")
        .unwrap()
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
        self.embedded.store.list_tasks(execution_id).await.unwrap()
    }

    pub async fn task(&self, execution_id: &str, name: &str) -> TaskRecord {
        self.embedded
            .store
            .find_task(execution_id, name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no task {name}"))
    }

    pub async fn action_count(&self, execution_id: &str, name: &str) -> usize {
        let task = self.task(execution_id, name).await;
        self.embedded
            .store
            .list_actions(&task.id)
            .await
            .unwrap()
            .len()
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

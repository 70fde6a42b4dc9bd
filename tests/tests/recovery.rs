//! Engine behaviour found wrong while building the AWS adapters, and fixed:
//! a retryable failure after complete-task counted the last item used to
//! leave the task RUNNING for ever (the redelivered notice found the item
//! counted and returned early); now it redoes what had to follow.

mod common;

use bora::engine::states::{ActionState, ExecutionState};
use bora::handlers::Deps;
use bora::store::{
    ActionRecord, DefinitionRecord, ExecutionRecord, ItemCount, Millis, Store, StoreError,
    TaskRecord, Write,
};
use bora::worker::{self, WorkerSettings};
use common::Engine;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// A store whose first commit after a counted item fails once, as a
/// conflict or an outage would make it fail.
struct FailOnceAfterCount {
    inner: Arc<dyn Store>,
    armed: AtomicBool,
    fired: AtomicBool,
}

#[async_trait::async_trait]
impl Store for FailOnceAfterCount {
    async fn put_definition(&self, d: &DefinitionRecord) -> Result<(), StoreError> {
        self.inner.put_definition(d).await
    }
    async fn get_definition(&self, key: &str) -> Result<DefinitionRecord, StoreError> {
        self.inner.get_definition(key).await
    }
    async fn get_execution(&self, id: &str) -> Result<ExecutionRecord, StoreError> {
        self.inner.get_execution(id).await
    }
    async fn execution_state(&self, id: &str) -> Result<ExecutionState, StoreError> {
        self.inner.execution_state(id).await
    }
    async fn get_task(&self, id: &str) -> Result<TaskRecord, StoreError> {
        self.inner.get_task(id).await
    }
    async fn get_action(&self, id: &str) -> Result<ActionRecord, StoreError> {
        self.inner.get_action(id).await
    }
    async fn find_task(&self, e: &str, n: &str) -> Result<Option<TaskRecord>, StoreError> {
        self.inner.find_task(e, n).await
    }
    async fn list_tasks(&self, e: &str) -> Result<Vec<TaskRecord>, StoreError> {
        self.inner.list_tasks(e).await
    }
    async fn list_actions(&self, t: &str) -> Result<Vec<ActionRecord>, StoreError> {
        self.inner.list_actions(t).await
    }
    async fn item_results(&self, t: &str) -> Result<Vec<(ActionState, Value)>, StoreError> {
        self.inner.item_results(t).await
    }
    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        if self.armed.swap(false, Ordering::SeqCst) && !self.fired.swap(true, Ordering::SeqCst) {
            return Err(StoreError::Conflict(
                "injected: the task moved meanwhile".into(),
            ));
        }
        self.inner.commit(writes).await
    }
    async fn count_item(
        &self,
        t: &str,
        a: &str,
        failed: bool,
        window: bool,
        now: Millis,
    ) -> Result<Option<ItemCount>, StoreError> {
        let counted = self.inner.count_item(t, a, failed, window, now).await?;
        if counted.is_some() {
            self.armed.store(true, Ordering::SeqCst);
        }
        Ok(counted)
    }
    async fn join_contexts(&self, t: &str) -> Result<Vec<Value>, StoreError> {
        self.inner.join_contexts(t).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retryable_failure_after_counting_the_last_item_still_finishes_the_task() {
    // GIVEN a store whose commit right after a counted item conflicts once.
    let engine = Engine::start_with(WorkerSettings {
        workers: 0,
        ..WorkerSettings::default()
    })
    .await;
    engine.stop_workers().await;
    let store = Arc::new(FailOnceAfterCount {
        inner: engine.store.clone(),
        armed: AtomicBool::new(false),
        fired: AtomicBool::new(false),
    });
    let mut deps = Deps::new(
        store.clone(),
        engine.queue.clone(),
        engine.deps.actions.clone(),
    );
    deps.settings = engine.deps.settings.clone();
    let deps = Arc::new(deps);
    let (_stop, stopped) = watch::channel(false);
    tokio::spawn(worker::run(
        deps.clone(),
        WorkerSettings {
            workers: 2,
            ..WorkerSettings::default()
        },
        stopped,
    ));
    let yaml = "version: '2.0'\nwf:\n  tasks:\n    only:\n      action: std.echo output=1\n";
    let (key, _) = deps.specs.put(deps.store.as_ref(), yaml).await.unwrap();
    let e = bora::handlers::create_execution(
        &deps,
        bora::handlers::CreateExecution {
            definition_key: key,
            workflow_name: "wf".into(),
            input: json!({}),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // WHEN it runs (the ActionDone message is retried after the conflict).
    let finished = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let execution = deps.store.get_execution(&e.id).await.unwrap();
            if execution.state != ExecutionState::Running {
                return execution;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // THEN the injected failure fired, and the execution still finishes.
    assert!(store.fired.load(Ordering::SeqCst));
    let execution = finished.expect("the execution stayed RUNNING: the task was never finished");
    assert_eq!(execution.state, ExecutionState::Success);
}

//! At-least-once delivery: every message delivered twice (and the copies
//! out of order) changes nothing: no task execution is duplicated, no action
//! runs twice, and the result is the same.

mod common;

use bora::queue::{Delivery, Message, Queue, QueueError, QueueName};
use bora::worker::{self, WorkerSettings};
use common::{Engine, assert_success};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;

/// A queue that sends every message twice: once now, once again a moment
/// later (so the duplicate often arrives after the original was handled).
struct DuplicatingQueue(Arc<dyn Queue>);

#[async_trait::async_trait]
impl Queue for DuplicatingQueue {
    async fn send(&self, messages: &[Message], delay: Duration) -> Result<(), QueueError> {
        let mut reversed = messages.to_vec();
        reversed.reverse();
        self.0
            .send(&reversed, delay + Duration::from_millis(3))
            .await?;
        self.0.send(messages, delay).await
    }
    async fn receive(
        &self,
        q: QueueName,
        max: usize,
        vis: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        self.0.receive(q, max, vis).await
    }
    async fn ack(&self, q: QueueName, receipts: &[String]) -> Result<(), QueueError> {
        self.0.ack(q, receipts).await
    }
    async fn retry_later(
        &self,
        q: QueueName,
        receipt: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        self.0.retry_later(q, receipt, delay).await
    }
    async fn wait_for_messages(&self, max_wait: Duration) {
        self.0.wait_for_messages(max_wait).await
    }
    async fn dead_letter(
        &self,
        q: QueueName,
        d: &Delivery,
        reason: &str,
    ) -> Result<(), QueueError> {
        self.0.dead_letter(q, d, reason).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_delivered_twice_changes_nothing() {
    // GIVEN an engine whose queue duplicates every message, with no workers
    // of its own yet.
    let engine = Engine::start_with(WorkerSettings {
        workers: 0,
        ..WorkerSettings::default()
    })
    .await;
    let mut deps_inner = bora::handlers::Deps::new(
        engine.deps.store.clone(),
        Arc::new(DuplicatingQueue(engine.queue.clone())),
        engine.deps.actions.clone(),
    );
    deps_inner.settings = engine.deps.settings.clone();
    let deps = Arc::new(deps_inner);
    let (_stop, stopped) = watch::channel(false);
    tokio::spawn(worker::run(
        deps.clone(),
        WorkerSettings {
            workers: 4,
            ..WorkerSettings::default()
        },
        stopped,
    ));
    let yaml = r#"
version: '2.0'
wf:
  tasks:
    start:
      action: test.count output=s
      on-success: [left, right]
    left:
      with-items: i in <% range(5) %>
      concurrency: 2
      action: test.count output=<% $.i %>
      on-success: joined
    right:
      action: test.count output=r
      retry:
        count: 2
        delay: 0
        continue-on: <% task().result = 'r' %>
      on-success: joined
    joined:
      join: all
      action: test.count output=j
      on-success: sub
    sub:
      workflow: child
child:
  tasks:
    c:
      action: test.count output=c
"#;
    let doc = bora::workflow::parse_document(yaml).unwrap();
    assert!(doc.workflow("wf").is_some());
    let (key, _) = deps.specs.put(deps.store.as_ref(), yaml).await.unwrap();
    // WHEN it runs.
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
    let e = engine.wait(&e.id).await;
    // THEN it succeeds with each task once and each action run once:
    // start 1 + items 5 + right 3 (retried twice on purpose) + joined 1 + c 1.
    assert_success(&e);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(engine.runs.load(Ordering::SeqCst), 11);
    let mut per_name: HashMap<String, usize> = HashMap::new();
    for t in engine.tasks(&e.id).await {
        *per_name.entry(t.name).or_default() += 1;
    }
    for name in ["start", "left", "right", "joined", "sub"] {
        assert_eq!(per_name.get(name), Some(&1), "task {name}: {per_name:?}");
    }
}

//! The AWS adapters on the emulator, through the real SDK clients, where
//! they go beyond the engine suite: item size limits, the project/state
//! index and TTL, paging through a large with-items, the concurrency window
//! under racing counts, SQS delays past 15 minutes, dead letters, KMS
//! envelope encryption and the KMS keyring's cache of data keys.

mod common;

use bora::engine::states::{ActionState, ExecutionState, TaskState};
use bora::queue::sqs::REASON_ATTRIBUTE;
use bora::queue::{Message, Queue, QueueName};
use bora::seal::kms::KmsError;
use bora::seal::{Keyring, KmsKeyring, KmsSealer, SealError, Sealer};
use bora::store::{ActionRecord, ExecutionRecord, Store, StoreError, TaskRecord, Write};
use common::aws::AwsBackend;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

async fn backend() -> AwsBackend {
    AwsBackend::create(common::registry(Arc::new(AtomicUsize::new(0))), 6).await
}

fn execution(id: &str) -> ExecutionRecord {
    ExecutionRecord {
        id: id.into(),
        workflow_name: "wf".into(),
        workflow_id: None,
        workflow_namespace: String::new(),
        definition_key: "k".into(),
        description: String::new(),
        state: ExecutionState::Running,
        state_info: None,
        input: json!({}),
        output: json!({}),
        params: json!({}),
        context: json!({}),
        globals: json!({}),
        parent: None,
        root_execution_id: None,
        active_tasks: 0,
        project_id: "p1".into(),
        version: 0,
        created_at: 1_000,
        updated_at: 1_000,
    }
}

fn task(id: &str, execution_id: &str, total: i64, next: i64) -> TaskRecord {
    TaskRecord {
        id: id.into(),
        execution_id: execution_id.into(),
        workflow_name: "wf".into(),
        definition_key: "k".into(),
        name: id.into(),
        state: TaskState::Running,
        state_info: None,
        in_context: json!({}),
        published: json!({}),
        result: Value::Null,
        items_total: total,
        items_done: 0,
        items_failed: 0,
        items_next: next,
        with_items: true,
        join_arrived: 0,
        runtime: json!({}),
        processed: false,
        version: 0,
        created_at: 1_000,
        updated_at: 1_000,
        started_at: None,
        finished_at: None,
    }
}

fn action(task: &TaskRecord, index: i64, output: Value) -> ActionRecord {
    ActionRecord {
        id: format!("{}-a{index}", task.id),
        task_execution_id: task.id.clone(),
        execution_id: task.execution_id.clone(),
        task_name: task.name.clone(),
        item_index: index,
        attempt: 0,
        name: "std.echo".into(),
        state: ActionState::Success,
        state_info: None,
        input: json!({}),
        output,
        is_async: false,
        lease_until: None,
        child_execution_id: None,
        counted: false,
        version: 0,
        created_at: 1_000,
        updated_at: 1_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_over_400_kb_is_refused_naming_the_record_and_nothing_is_written() {
    let b = backend().await;
    let mut e = execution("big");
    e.input = json!({"blob": "x".repeat(500 * 1024)});
    let error = b
        .store
        .commit(vec![Write::InsertExecution(e)])
        .await
        .unwrap_err();
    match error {
        StoreError::TooLarge(text) => {
            assert!(text.contains("execution big"), "{text}");
            assert!(text.contains("bytes"), "{text}");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(matches!(
        b.store.get_execution("big").await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_are_versioned_inserts_are_if_absent_and_active_tasks_follows_the_tasks() {
    let b = backend().await;
    let e = execution("e1");
    let t = task("t1", "e1", 1, 1);
    b.store
        .commit(vec![
            Write::InsertExecution(e.clone()),
            Write::InsertTask(t.clone()),
        ])
        .await
        .unwrap();
    // Inserting again is a no-op, not a duplicate, and does not count twice.
    b.store
        .commit(vec![
            Write::InsertExecution(e.clone()),
            Write::InsertTask(t.clone()),
        ])
        .await
        .unwrap();
    let stored = b.store.get_execution("e1").await.unwrap();
    assert_eq!(stored.active_tasks, 1);
    // A stale version conflicts and changes nothing.
    let mut stale = stored.clone();
    stale.version = 7;
    stale.state = ExecutionState::Error;
    assert!(matches!(
        b.store.commit(vec![Write::UpdateExecution(stale)]).await,
        Err(StoreError::Conflict(_))
    ));
    // Processing the task brings active_tasks back to zero; the execution
    // update in the same commit leaves the counter alone.
    let mut done = b.store.get_task("t1").await.unwrap();
    done.processed = true;
    done.state = TaskState::Success;
    let mut finished = stored.clone();
    finished.state = ExecutionState::Success;
    b.store
        .commit(vec![
            Write::UpdateTask(done),
            Write::UpdateExecution(finished),
        ])
        .await
        .unwrap();
    let stored = b.store.get_execution("e1").await.unwrap();
    assert_eq!(stored.active_tasks, 0);
    assert_eq!(stored.version, 1);
    assert_eq!(stored.state, ExecutionState::Success);
    assert_eq!(b.store.get_task("t1").await.unwrap().version, 1);
    // The finished execution carries its TTL and left the RUNNING listing.
    let item = b
        .dynamodb
        .get_item()
        .table_name(b.store.table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("EXE#e1".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("EXE".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(item.contains_key("expires_at"));
    assert_eq!(
        b.store
            .list_executions("p1", ExecutionState::Success, 10)
            .await
            .unwrap(),
        ["e1"]
    );
    assert!(
        b.store
            .list_executions("p1", ExecutionState::Running, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_results_pages_through_a_large_with_items_in_index_order() {
    let b = backend().await;
    let e = execution("e2");
    let t = task("wide", "e2", 1_200, 1_200);
    let mut writes = vec![Write::InsertExecution(e), Write::InsertTask(t.clone())];
    // About 1.3 MB of results: more than one 1 MB query page.
    for i in 0..1_200 {
        writes.push(Write::InsertAction(action(
            &t,
            i,
            json!(format!("{i}:{}", "r".repeat(1_000))),
        )));
    }
    b.store.commit(writes).await.unwrap();
    // A second attempt of item 7 replaces its result.
    let mut retry = action(&t, 7, json!("seven again"));
    retry.id = "retry-7".into();
    retry.attempt = 1;
    b.store
        .commit(vec![Write::InsertAction(retry)])
        .await
        .unwrap();
    let results = b.store.item_results("wide").await.unwrap();
    assert_eq!(results.len(), 1_200);
    assert_eq!(results[7].1, json!("seven again"));
    assert!(results[1_199].1.as_str().unwrap().starts_with("1199:"));
    assert_eq!(b.store.list_actions("wide").await.unwrap().len(), 1_201);
    assert_eq!(b.store.get_action("retry-7").await.unwrap().attempt, 1);
    assert_eq!(b.store.get_execution("e2").await.unwrap().active_tasks, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_counts_move_the_concurrency_window_once_per_item_and_count_each_item_once() {
    let b = backend().await;
    let t = task("win", "e3", 12, 4);
    let mut writes = vec![
        Write::InsertExecution(execution("e3")),
        Write::InsertTask(t.clone()),
    ];
    for i in 0..12 {
        writes.push(Write::InsertAction(action(&t, i, json!(i))));
    }
    b.store.commit(writes).await.unwrap();
    // WHEN the first four items are counted at once, each twice.
    let store = Arc::new(b.store.clone());
    let mut handles = Vec::new();
    for i in 0..4 {
        for _ in 0..2 {
            let store = store.clone();
            handles.push(tokio::spawn(async move {
                store
                    .count_item("win", &format!("win-a{i}"), false, true, 2_000)
                    .await
                    .unwrap()
            }));
        }
    }
    let mut counted = Vec::new();
    for h in handles {
        if let Some(count) = h.await.unwrap() {
            counted.push(count);
        }
    }
    // THEN each counted once, and the window started items 4..8, each once.
    assert_eq!(counted.len(), 4);
    let mut started: Vec<i64> = counted.iter().filter_map(|c| c.start_index).collect();
    started.sort();
    assert_eq!(started, [4, 5, 6, 7]);
    let stored = b.store.get_task("win").await.unwrap();
    assert_eq!((stored.items_done, stored.items_next), (4, 8));
    assert!(counted.iter().any(|c| c.done == 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_past_fifteen_minutes_hops_until_due_and_dead_letters_keep_their_reason() {
    let b = backend().await;
    let run = |id: &str| Message::RunAction {
        action_execution_id: id.into(),
    };
    // A message for in an hour is not handed out early: it is sent again.
    b.queue
        .send(&[run("later")], Duration::from_secs(3_600))
        .await
        .unwrap();
    let raw = b
        .sqs
        .receive_message()
        .queue_url(&b.queues.run_task_url)
        .message_attribute_names("All")
        .wait_time_seconds(0)
        .send()
        .await
        .unwrap();
    // (The emulator delays it 900 s, so nothing is visible yet.)
    assert!(raw.messages.unwrap_or_default().is_empty());
    let early = b
        .queue
        .defer_if_early(QueueName::RunTask, "{}", Some(now_ms() + 3_600_000))
        .await
        .unwrap();
    assert!(early);
    let due = b
        .queue
        .defer_if_early(QueueName::RunTask, "{}", Some(now_ms() - 1))
        .await
        .unwrap();
    assert!(!due);

    // Dead letters move at once, with the reason.
    b.queue
        .send(&[run("poison")], Duration::ZERO)
        .await
        .unwrap();
    let got = b
        .queue
        .receive(QueueName::RunTask, 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    b.queue
        .dead_letter(QueueName::RunTask, &got[0], "received 5 times")
        .await
        .unwrap();
    let dead = b
        .sqs
        .receive_message()
        .queue_url(b.queues.dead_letter_url.as_deref().unwrap())
        .message_attribute_names("All")
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(dead.len(), 1);
    let reason = dead[0].message_attributes().unwrap()[REASON_ATTRIBUTE]
        .string_value()
        .unwrap()
        .to_string();
    assert_eq!(reason, "received 5 times");
    assert!(
        b.queue
            .receive(QueueName::RunTask, 10, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty()
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_envelope_seals_per_execution_and_refuses_another_execution() {
    let sdk = common::aws::sdk_config().await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key = common::aws::kms_key(&kms).await;
    let sealer = KmsSealer::new(kms, key);
    // GIVEN a token sealed with execution e1's data key.
    let e1 = sealer.for_execution("e1").await.unwrap();
    let envelope = e1.seal_envelope(b"gAAAA-token", b"e1").unwrap();
    assert!(!envelope.wrapped_key.ciphertext.is_empty());
    assert!(!format!("{e1:?}").contains("gAAAA"));
    let stored = serde_json::to_string(&envelope).unwrap();
    assert!(!stored.contains("gAAAA"));
    // THEN it unseals from storage, after one KMS call.
    let back: bora::seal::kms::Envelope = serde_json::from_str(&stored).unwrap();
    let plain = sealer.unseal_envelope("e1", &back, b"e1").await.unwrap();
    assert_eq!(plain, b"gAAAA-token");
    // and the reopened sealer is a sync Sealer like any other.
    let reopened = sealer.open("e1", &back.wrapped_key).await.unwrap();
    assert_eq!(
        reopened.unseal(&back.sealed, b"e1").unwrap(),
        b"gAAAA-token"
    );
    // BUT the wrapped key does not open for another execution.
    match sealer.unseal_envelope("e2", &back, b"e1").await {
        Err(KmsError::Kms { operation, .. }) => assert_eq!(operation, "Decrypt"),
        other => panic!("expected a KMS refusal, got {other:?}"),
    }
    // and two executions get different data keys.
    let e2 = sealer.for_execution("e2").await.unwrap();
    assert_ne!(e1.wrapped_key().ciphertext, e2.wrapped_key().ciphertext);
}

/// Counts the KMS `Decrypt` calls a client makes.
#[derive(Debug, Clone, Default)]
struct CountDecrypts(Arc<AtomicUsize>);

impl aws_sdk_kms::config::Intercept for CountDecrypts {
    fn name(&self) -> &'static str {
        "CountDecrypts"
    }

    fn read_before_execution(
        &self,
        context: &aws_sdk_kms::config::interceptors::BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut aws_sdk_kms::config::ConfigBag,
    ) -> Result<(), aws_sdk_kms::error::BoxError> {
        if context
            .input()
            .downcast_ref::<aws_sdk_kms::operation::decrypt::DecryptInput>()
            .is_some()
        {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kms_keyring_decrypts_a_data_key_once_per_execution_and_never_for_another() {
    let sdk = common::aws::sdk_config().await;
    let decrypts = CountDecrypts::default();
    let kms = aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::config::Builder::from(&sdk)
            .interceptor(decrypts.clone())
            .build(),
    );
    let key = common::aws::kms_key(&kms).await;
    let count = || decrypts.0.load(Ordering::SeqCst);
    // GIVEN a token sealed with execution e1's fresh data key.
    let sealing = KmsKeyring::new(KmsSealer::new(kms.clone(), key.clone()));
    let root = sealing.for_new_root("e1").await.unwrap();
    let wrapped = root.wrapped.clone().expect("a wrapped data key");
    let sealed = root.sealer.seal(b"gAAAA-token", b"e1").unwrap();
    // WHEN another keyring (another Lambda instance) opens it for three
    // actions, THEN KMS is asked once.
    let opening = KmsKeyring::new(KmsSealer::new(kms.clone(), key.clone()));
    for _ in 0..3 {
        let sealer = opening.open(Some(&wrapped), "e1").await.unwrap();
        assert_eq!(sealer.unseal(&sealed, b"e1").unwrap(), b"gAAAA-token");
    }
    assert_eq!(count(), 1);
    // WHEN the same wrapped key is presented for execution e2, THEN the
    // cached key is not handed out: KMS is asked, and refuses.
    let error = opening.open(Some(&wrapped), "e2").await.err().unwrap();
    assert!(
        matches!(
            error,
            SealError::KeyService {
                operation: "Decrypt",
                retryable: false,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(count(), 2);
    // WHEN the cached key has expired (here: at once), THEN KMS is asked
    // again for every open.
    let expiring = KmsKeyring::with_cache(KmsSealer::new(kms, key), Duration::ZERO, 16);
    expiring.open(Some(&wrapped), "e1").await.unwrap();
    expiring.open(Some(&wrapped), "e1").await.unwrap();
    assert_eq!(count(), 4);
    // AND a value with no wrapped key (sealed with local key files) is
    // refused without a KMS call, saying why.
    let error = opening.open(None, "e1").await.err().unwrap();
    assert!(matches!(error, SealError::WrongKeyring(_)), "{error}");
    assert!(error.to_string().contains("local key files"), "{error}");
    assert_eq!(count(), 4);
}

//! The three Lambda functions' handlers, driven with real event JSON on the
//! AWS emulator through the real SDK clients: an API Gateway v2 request for
//! create-execution, and SQS batch events built from messages received from
//! the emulated queues for run-task and complete-task (the test plays
//! Lambda's event source mapping: receive, invoke, delete what succeeded).
//!
//! Reliability on the way: duplicate deliveries, a run-task that dies after
//! running its action, a poison message, and two complete-tasks racing on a
//! join.

mod clouds;
mod common;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use bora::actions::{
    Action, ActionContext, ActionFuture, ActionImpl, ActionInfo, ActionOutcome, ActionRegistry,
};
use bora::engine::states::ExecutionState;
use bora::handlers::Deps;
use bora::lambda::{AwsDeps, api_router, handle_sqs_event};
use bora::queue::{Delivery, Message, Queue, QueueError, QueueName};
use bora::seal::{KmsKeyring, KmsSealer};
use bora::workflow::InputParam;
use common::aws::AwsBackend;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// A function's view of one test's backend.
struct Functions {
    backend: AwsBackend,
    aws: AwsDeps,
}

impl Functions {
    async fn start(max_receive_count: u32) -> Functions {
        Functions::start_with(
            max_receive_count,
            common::registry(Arc::new(AtomicUsize::new(0))),
            |_| {},
        )
        .await
    }

    async fn start_with(
        max_receive_count: u32,
        registry: ActionRegistry,
        tune: impl FnOnce(&mut Deps),
    ) -> Functions {
        bora::lambda::init_tracing();
        let backend = AwsBackend::create(registry, max_receive_count).await;
        let key = common::aws::kms_key(&aws_sdk_kms::Client::new(&backend.sdk)).await;
        let config = backend.lambda_config(&key, max_receive_count);
        let mut deps = Deps::new(
            backend.deps.store.clone(),
            backend.deps.queue.clone(),
            backend.deps.actions.clone(),
        );
        deps.keyring = Arc::new(KmsKeyring::new(KmsSealer::new(
            aws_sdk_kms::Client::new(&backend.sdk),
            key,
        )));
        tune(&mut deps);
        let aws = AwsDeps {
            deps: Arc::new(deps),
            store: backend.store.clone(),
            queue: backend.queue.clone(),
            config,
        };
        Functions { backend, aws }
    }

    fn url(&self, queue: QueueName) -> &str {
        match queue {
            QueueName::RunTask => &self.backend.queues.run_task_url,
            QueueName::CompleteTask => &self.backend.queues.complete_task_url,
        }
    }

    /// Any REST request through create-execution, as API Gateway (HTTP
    /// API, payload 2.0) delivers it: the event JSON, parsed by lambda_http,
    /// answered by the function's router.
    async fn request(
        &self,
        method: &str,
        target: &str,
        content_type: &str,
        body: &str,
    ) -> (u16, Value) {
        self.request_with(method, target, &[("content-type", content_type)], body)
            .await
    }

    /// [`Functions::request`] with headers of the caller's.
    async fn request_with(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Value) {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let route = format!("{method} {path}");
        let mut all_headers = json!({
            "host": "api.example.com",
            "x-forwarded-proto": "https"
        });
        for (name, value) in headers {
            all_headers[name.to_ascii_lowercase()] = json!(value);
        }
        let event = json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": query,
            "headers": all_headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "api",
                "domainName": "api.example.com",
                "domainPrefix": "api",
                "http": {
                    "method": method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "192.0.2.1",
                    "userAgent": "test"
                },
                "requestId": "req-1",
                "routeKey": route,
                "stage": "$default",
                "time": "22/Nov/2026:17:00:00 +0000",
                "timeEpoch": 1795453200000i64
            },
            "body": body,
            "isBase64Encoded": false
        });
        let request: lambda_http::request::LambdaRequest = serde_json::from_value(event).unwrap();
        let request: lambda_http::Request = request.into();
        let response = api_router(&self.aws).oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// POST /v2/executions through create-execution.
    async fn create(&self, body: Value) -> (u16, Value) {
        self.request(
            "POST",
            "/v2/executions",
            "application/json",
            &body.to_string(),
        )
        .await
    }

    /// POST /v2/environments through create-execution.
    async fn create_environment(&self, body: Value) -> (u16, Value) {
        self.request(
            "POST",
            "/v2/environments",
            "application/json",
            &body.to_string(),
        )
        .await
    }

    /// Register workflows (POST /v2/workflows) through create-execution.
    async fn register(&self, definition: &str) {
        let (status, body) = self
            .request("POST", "/v2/workflows", "text/plain", definition)
            .await;
        assert_eq!(status, 201, "{body}");
    }

    /// Receive up to 10 messages as Lambda's poller would, with a
    /// visibility timeout, and return them as the SQS event JSON Lambda
    /// sends.
    async fn receive_event(&self, queue: QueueName, visibility: i32) -> Option<Value> {
        let out = self
            .backend
            .sqs
            .receive_message()
            .queue_url(self.url(queue))
            .max_number_of_messages(10)
            .visibility_timeout(visibility)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return None;
        }
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let attributes: serde_json::Map<String, Value> = m
                    .attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| (k.as_str().to_string(), json!(v)))
                            .collect()
                    })
                    .unwrap_or_default();
                let message_attributes: serde_json::Map<String, Value> = m
                    .message_attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| {
                                (
                                    k.clone(),
                                    json!({
                                        "stringValue": v.string_value(),
                                        "dataType": v.data_type(),
                                        "stringListValues": [],
                                        "binaryListValues": []
                                    }),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                json!({
                    "messageId": m.message_id(),
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "attributes": attributes,
                    "messageAttributes": message_attributes,
                    "md5OfBody": m.md5_of_body(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{}", queue.as_str()),
                    "awsRegion": "us-east-1"
                })
            })
            .collect();
        Some(json!({ "Records": records }))
    }

    /// Invoke the function of `queue` with an event, then delete the
    /// messages it did not report failed (what the event source mapping
    /// does). Returns the response.
    async fn invoke(&self, queue: QueueName, event: &Value) -> SqsBatchResponse {
        let parsed: SqsEvent = serde_json::from_value(event.clone()).unwrap();
        let response = handle_sqs_event(&self.aws, queue, parsed).await;
        self.delete_succeeded(queue, event, &response).await;
        response
    }

    async fn delete_succeeded(&self, queue: QueueName, event: &Value, response: &SqsBatchResponse) {
        let failed: HashSet<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        for record in event["Records"].as_array().unwrap() {
            if !failed.contains(record["messageId"].as_str().unwrap()) {
                self.backend
                    .sqs
                    .delete_message()
                    .queue_url(self.url(queue))
                    .receipt_handle(record["receiptHandle"].as_str().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    /// Play the event source mappings of both queues until the execution
    /// leaves RUNNING (bounded).
    async fn pump_until_done(
        &self,
        execution_id: &str,
        visibility: i32,
    ) -> bora::store::ExecutionRecord {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let execution = self
                .aws
                .deps
                .store
                .get_execution(execution_id)
                .await
                .unwrap();
            if execution.state != ExecutionState::Running {
                return execution;
            }
            assert!(
                Instant::now() < deadline,
                "execution {execution_id} did not finish"
            );
            let mut idle = true;
            for queue in [QueueName::CompleteTask, QueueName::RunTask] {
                if let Some(event) = self.receive_event(queue, visibility).await {
                    idle = false;
                    self.invoke(queue, &event).await;
                }
            }
            if idle {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    async fn queue_depth(&self, url: &str) -> i64 {
        let attributes = self
            .backend
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        attributes
            .values()
            .map(|v| v.parse::<i64>().unwrap_or(0))
            .sum()
    }
}

const CHAIN: &str = r#"
version: '2.0'
wf:
  input:
    - name
  tasks:
    hello:
      action: test.count output=<% 'hello ' + $.name %>
      publish:
        greeting: <% task().result %>
      on-success: shout
    shout:
      action: std.echo output=<% $.greeting + '!' %>
      publish:
        shouted: <% task().result %>
  output:
    shouted: <% $.shouted %>
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_runs_to_success_through_create_execution_run_task_and_complete_task() {
    let runs = Arc::new(AtomicUsize::new(0));
    let f = Functions::start_with(6, common::registry(runs.clone()), |_| {}).await;
    // WHEN the API creates an execution.
    f.register(CHAIN).await;
    let (status, created) = f
        .create(json!({
            "workflow_name": "wf",
            "input": "{\"name\": \"bora\"}",
        }))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["state"], "RUNNING");
    let id = created["id"].as_str().unwrap();
    // THEN the two SQS functions take it to SUCCESS with the output.
    let execution = f.pump_until_done(id, 30).await;
    assert_eq!(
        execution.state,
        ExecutionState::Success,
        "{:?}",
        execution.state_info
    );
    assert_eq!(execution.output, json!({"shouted": "hello bora!"}));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(execution.active_tasks, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_mistral_faults_and_store_nothing() {
    let f = Functions::start(6).await;
    // An unknown workflow: 404 naming it.
    let (status, body) = f.create(json!({"workflow_name": "nope"})).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["faultstring"].as_str().unwrap().contains("nope"));
    // Malformed YAML: 400 with its position; nothing registered.
    let (status, body) = f
        .request(
            "POST",
            "/v2/workflows",
            "text/plain",
            "version: '2.0'\nwf: [",
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (_, listed) = f.request("GET", "/v2/workflows", "", "").await;
    assert_eq!(listed["workflows"], json!([]), "{listed}");
    // Input that is not JSON: 400 naming the field.
    f.register(CHAIN).await;
    let (status, body) = f
        .create(json!({"workflow_name": "wf", "input": "{nope"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["faultstring"].as_str().unwrap().contains("input"),
        "{body}"
    );
    assert_eq!(f.backend.count_executions().await, 0);
}

/// `field` of each entry of the list `key` of an API answer.
fn field_of_each<'a>(answer: &'a Value, key: &str, field: &str) -> Vec<&'a str> {
    answer[key]
        .as_array()
        .unwrap_or_else(|| panic!("no list '{key}' in {answer}"))
        .iter()
        .map(|entry| entry[field].as_str().unwrap_or_default())
        .collect()
}

const ENV_WORKFLOW: &str = r#"
version: '2.0'
greet:
  tasks:
    one:
      action: std.echo output=<% env().greeting %>
      publish:
        said: <% task().result %>
      on-success: two
    two:
      action: std.noop
  output:
    said: <% $.said %>
"#;

const WORKBOOK: &str = r#"
version: '2.0'
name: book
workflows:
  inner:
    tasks:
      only:
        action: std.noop
actions:
  shout:
    base: std.echo
    base-input:
      output: <% $.text + '!' %>
    input:
      - text
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rest_route_works_behind_api_gateway_on_dynamodb() {
    let f = Functions::start(6).await;
    // Registered workflows, read back by name and listed.
    f.register(ENV_WORKFLOW).await;
    let (status, body) = f
        .request("POST", "/v2/workflows", "text/plain", ENV_WORKFLOW)
        .await;
    assert_eq!(status, 409, "a second registration of a name: {body}");
    let (status, wf) = f.request("GET", "/v2/workflows/greet", "", "").await;
    assert_eq!(status, 200, "{wf}");
    assert_eq!(wf["name"], "greet");
    // A workbook with a workflow and an ad-hoc action; then replaced.
    let (status, body) = f
        .request("POST", "/v2/workbooks", "text/plain", WORKBOOK)
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = f
        .request("PUT", "/v2/workbooks", "text/plain", WORKBOOK)
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, listed) = f
        .request("GET", "/v2/workflows?sort_keys=name", "", "")
        .await;
    assert_eq!(
        field_of_each(&listed, "workflows", "name"),
        ["book.inner", "greet"],
        "{listed}"
    );
    let (status, action) = f.request("GET", "/v2/actions/book.shout", "", "").await;
    assert_eq!(status, 200, "{action}");
    // A page of one, with a next link as the client addressed us.
    let (_, page) = f
        .request("GET", "/v2/workflows?limit=1&sort_keys=name", "", "")
        .await;
    assert_eq!(page["workflows"].as_array().unwrap().len(), 1, "{page}");
    let next = page["next"].as_str().unwrap();
    assert!(
        next.starts_with("https://api.example.com/v2/workflows?"),
        "{next}"
    );
    // An environment the execution reads.
    let (status, body) = f
        .create_environment(json!({"name": "prod", "variables": {"greeting": "hi"}}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, created) = f
        .create(json!({"workflow_name": "greet", "params": {"env": "prod"}}))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let execution = f.pump_until_done(&id, 30).await;
    assert_eq!(
        execution.state,
        ExecutionState::Success,
        "{:?}",
        execution.state_info
    );
    assert_eq!(execution.output, json!({"said": "hi"}));
    // The execution, its tasks and its action executions, through the API.
    let (_, got) = f
        .request("GET", &format!("/v2/executions/{id}"), "", "")
        .await;
    assert_eq!(got["state"], "SUCCESS", "{got}");
    let (_, listed) = f
        .request("GET", "/v2/executions?state=SUCCESS", "", "")
        .await;
    assert_eq!(
        field_of_each(&listed, "executions", "id"),
        [id.as_str()],
        "{listed}"
    );
    let (_, running) = f
        .request("GET", "/v2/executions?state=RUNNING", "", "")
        .await;
    assert_eq!(running["executions"], json!([]), "{running}");
    let (_, tasks) = f
        .request("GET", &format!("/v2/executions/{id}/tasks"), "", "")
        .await;
    assert_eq!(field_of_each(&tasks, "tasks", "name"), ["one", "two"]);
    let first_task = field_of_each(&tasks, "tasks", "id")[0].to_string();
    let (_, actions) = f
        .request(
            "GET",
            &format!("/v2/action_executions?task_execution_id={first_task}"),
            "",
            "",
        )
        .await;
    let actions = actions["action_executions"].as_array().unwrap();
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0]["name"], "std.echo");
    // An action run on its own with save_result ends before the answer
    // (a Lambda instance is frozen after it answers), and is listed.
    let (status, ran) = f
        .request(
            "POST",
            "/v2/action_executions",
            "application/json",
            &json!({"name": "std.echo", "input": {"output": 7}, "params": {"save_result": true}})
                .to_string(),
        )
        .await;
    assert_eq!(status, 201, "{ran}");
    assert_eq!(ran["state"], "SUCCESS", "{ran}");
    let (_, all_actions) = f.request("GET", "/v2/action_executions", "", "").await;
    assert_eq!(
        all_actions["action_executions"].as_array().unwrap().len(),
        3,
        "two from the workflow, one on its own: {all_actions}"
    );
    // Deleting the execution removes it and its tasks.
    let (status, body) = f
        .request("DELETE", &format!("/v2/executions/{id}"), "", "")
        .await;
    assert!(status == 204 || status == 200, "{status} {body}");
    let (status, _) = f
        .request("GET", &format!("/v2/executions/{id}"), "", "")
        .await;
    assert_eq!(status, 404);
    let (status, _) = f
        .request("GET", &format!("/v2/tasks/{first_task}"), "", "")
        .await;
    assert_eq!(status, 404);
    // Deleting the workbook removes its workflow and action.
    let (status, _) = f.request("DELETE", "/v2/workbooks/book", "", "").await;
    assert!(status == 204 || status == 200);
    let (status, _) = f.request("GET", "/v2/workflows/book.inner", "", "").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_message_delivered_twice_and_a_late_action_done_change_nothing() {
    let runs = Arc::new(AtomicUsize::new(0));
    let f = Functions::start_with(6, common::registry(runs.clone()), |_| {}).await;
    f.register(CHAIN).await;
    let (_, created) = f
        .create(json!({"workflow_name": "wf", "input": {"name": "x"}}))
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    // GIVEN every event is handled twice before its messages are deleted
    // (SQS delivered each message twice).
    let mut seen_action_done: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let execution = f.aws.deps.store.get_execution(&id).await.unwrap();
        if execution.state != ExecutionState::Running {
            break;
        }
        assert!(Instant::now() < deadline);
        for queue in [QueueName::CompleteTask, QueueName::RunTask] {
            if let Some(event) = f.receive_event(queue, 30).await {
                let parsed: SqsEvent = serde_json::from_value(event.clone()).unwrap();
                // (A copy that loses a race with its twin reports a
                // failure and is retried, as SQS would.)
                let first = handle_sqs_event(&f.aws, queue, parsed.clone()).await;
                let _second = handle_sqs_event(&f.aws, queue, parsed).await;
                f.delete_succeeded(queue, &event, &first).await;
                if queue == QueueName::CompleteTask {
                    for record in event["Records"].as_array().unwrap() {
                        if record["body"].as_str().unwrap().contains("action_done") {
                            seen_action_done.push(json!({"Records": [record]}));
                        }
                    }
                }
            }
        }
    }
    // WHEN complete-task gets an ActionDone again after the execution ended.
    assert!(!seen_action_done.is_empty());
    for event in &seen_action_done {
        let parsed: SqsEvent = serde_json::from_value(event.clone()).unwrap();
        let response = handle_sqs_event(&f.aws, QueueName::CompleteTask, parsed).await;
        assert!(response.batch_item_failures.is_empty());
    }
    // THEN each task exists once, the counted action ran once, and nothing
    // is left in the queues.
    let execution = f.aws.deps.store.get_execution(&id).await.unwrap();
    assert_eq!(execution.state, ExecutionState::Success);
    let tasks = f.aws.deps.store.list_tasks(&id).await.unwrap();
    let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["hello", "shout"]);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    for task in &tasks {
        assert_eq!(
            f.aws.deps.store.list_actions(&task.id).await.unwrap().len(),
            1
        );
    }
    assert_eq!(execution.active_tasks, 0);
    // The notices a duplicate re-sent (in case the first was lost) drain
    // without changing anything either.
    let deadline = Instant::now() + Duration::from_secs(30);
    while f.queue_depth(&f.backend.queues.complete_task_url).await
        + f.queue_depth(&f.backend.queues.run_task_url).await
        > 0
    {
        assert!(Instant::now() < deadline, "the queues did not drain");
        for queue in [QueueName::CompleteTask, QueueName::RunTask] {
            if let Some(event) = f.receive_event(queue, 30).await {
                let response = f.invoke(queue, &event).await;
                assert!(response.batch_item_failures.is_empty());
            }
        }
    }
    let again = f.aws.deps.store.list_tasks(&id).await.unwrap();
    assert_eq!(again.len(), 2);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let execution = f.aws.deps.store.get_execution(&id).await.unwrap();
    assert_eq!(execution.state, ExecutionState::Success);
    assert_eq!(execution.active_tasks, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_task_that_dies_after_running_its_action_is_redelivered_and_the_execution_finishes() {
    let runs = Arc::new(AtomicUsize::new(0));
    // The lease on an action lasts as long as the message's visibility, so
    // the redelivered message may take the action over.
    let mut registry = common::registry(Arc::new(AtomicUsize::new(0)));
    registry.register(
        ActionInfo {
            name: "test.hang_once".into(),
            description: "counts its runs; the first one never returns".into(),
            input: vec![InputParam {
                name: "output".into(),
                default: Some(Value::Null),
            }],
            is_async: false,
        },
        ActionImpl::Dyn(Arc::new(HangOnce(runs.clone()))),
    );
    let f = Functions::start_with(6, registry, |deps| {
        deps.settings.action_lease = Duration::from_secs(2);
    })
    .await;
    f.register(&CHAIN.replace("test.count", "test.hang_once"))
        .await;
    let (_, created) = f
        .create(json!({"workflow_name": "wf", "input": {"name": "y"}}))
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    // GIVEN complete-task started the first task.
    let event = loop {
        if let Some(event) = f.receive_event(QueueName::CompleteTask, 30).await {
            f.invoke(QueueName::CompleteTask, &event).await;
        }
        if let Some(event) = f.receive_event(QueueName::RunTask, 2).await {
            break event;
        }
    };
    // WHEN run-task runs the action and dies before recording it: the
    // action has run (the counter moved), but the invocation is cut short
    // right after, so nothing was recorded, nothing deleted.
    let parsed: SqsEvent = serde_json::from_value(event).unwrap();
    let before = runs.load(Ordering::SeqCst);
    let mut invocation = Box::pin(handle_sqs_event(&f.aws, QueueName::RunTask, parsed));
    let cut = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            tokio::select! {
                _ = &mut invocation => panic!("the invocation finished before it could be cut"),
                _ = tokio::time::sleep(Duration::from_millis(1)) => {}
            }
            if runs.load(Ordering::SeqCst) > before {
                return;
            }
        }
    })
    .await;
    assert!(cut.is_ok(), "the action never ran");
    drop(invocation);
    // THEN the message comes back after its visibility timeout and the
    // execution finishes, with one action execution per task.
    let execution = f.pump_until_done(&id, 30).await;
    assert_eq!(
        execution.state,
        ExecutionState::Success,
        "{:?}",
        execution.state_info
    );
    assert_eq!(execution.output, json!({"shouted": "hello y!"}));
    for task in f.aws.deps.store.list_tasks(&id).await.unwrap() {
        assert_eq!(
            f.aws.deps.store.list_actions(&task.id).await.unwrap().len(),
            1
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

/// `test.hang_once`: counts its runs and hangs the first time, so a test
/// can cut an invocation after the action ran but before it was recorded.
struct HangOnce(Arc<AtomicUsize>);

impl Action for HangOnce {
    fn run<'a>(
        &'a self,
        input: &'a serde_json::Map<String, Value>,
        _ctx: &'a ActionContext,
    ) -> ActionFuture<'a> {
        let first = self.0.fetch_add(1, Ordering::SeqCst) == 0;
        let out = input.get("output").cloned().unwrap_or(Value::Null);
        Box::pin(async move {
            if first {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            ActionOutcome::Success(out)
        })
    }
}

/// A queue that cannot send: every handler that must enqueue its next step
/// fails (retryably), for ever, while the store works.
struct CannotSend(Arc<dyn Queue>);

#[async_trait::async_trait]
impl Queue for CannotSend {
    async fn send(&self, _: &[Message], _: Duration) -> Result<(), QueueError> {
        Err(QueueError::Backend(
            "injected outage: SendMessage refused".into(),
        ))
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
    async fn retry_later(&self, q: QueueName, r: &str, d: Duration) -> Result<(), QueueError> {
        self.0.retry_later(q, r, d).await
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
async fn a_poison_message_lands_in_the_dlq_and_its_execution_ends_in_error_with_the_reason() {
    // GIVEN queues that dead-letter after 3 receives, and a complete-task
    // that can never handle its messages.
    let f = Functions::start(3).await;
    f.register(CHAIN).await;
    let (_, created) = f
        .create(json!({"workflow_name": "wf", "input": {"name": "z"}}))
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    let broken = AwsDeps {
        deps: Arc::new(Deps::new(
            f.aws.deps.store.clone(),
            Arc::new(CannotSend(f.aws.deps.queue.clone())),
            f.aws.deps.actions.clone(),
        )),
        store: f.aws.store.clone(),
        queue: f.aws.queue.clone(),
        config: f.aws.config.clone(),
    };
    // WHEN the message is delivered until SQS gives up on it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut receives = 0;
    while f.queue_depth(&f.backend.queues.complete_task_url).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the message never left the queue"
        );
        if let Some(event) = f.receive_event(QueueName::CompleteTask, 1).await {
            receives += 1;
            let parsed: SqsEvent = serde_json::from_value(event.clone()).unwrap();
            let response = handle_sqs_event(&broken, QueueName::CompleteTask, parsed).await;
            assert_eq!(response.batch_item_failures.len(), 1);
            f.delete_succeeded(QueueName::CompleteTask, &event, &response)
                .await;
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // THEN it was tried 3 times, it is in the DLQ, and the execution is in
    // ERROR saying why.
    assert_eq!(receives, 3);
    let dlq = f.backend.queues.dead_letter_url.clone().unwrap();
    let dead = f
        .backend
        .sqs
        .receive_message()
        .queue_url(&dlq)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].body().unwrap().contains("start_task"));
    let execution = f.aws.deps.store.get_execution(&id).await.unwrap();
    assert_eq!(execution.state, ExecutionState::Error);
    let info = execution.state_info.unwrap_or_default();
    assert!(info.contains("dead-letter"), "{info}");
}

const JOIN: &str = r#"
version: '2.0'
wf:
  tasks:
    start:
      action: std.noop
      on-success: [left, right]
    left:
      action: std.echo output=l
      on-success: joined
    right:
      action: std.echo output=r
      on-success: joined
    joined:
      join: all
      action: test.count output=j
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_complete_tasks_racing_on_a_join_start_the_joined_task_exactly_once() {
    let runs = Arc::new(AtomicUsize::new(0));
    let f = Functions::start_with(6, common::registry(runs.clone()), |_| {}).await;
    f.register(JOIN).await;
    let (_, created) = f.create(json!({"workflow_name": "wf"})).await;
    let id = created["id"].as_str().unwrap().to_string();
    // GIVEN both branches ran, and their two ActionDone messages are in hand.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut done_records: Vec<Value> = Vec::new();
    while done_records.len() < 2 {
        assert!(Instant::now() < deadline, "branches did not finish");
        if let Some(event) = f.receive_event(QueueName::RunTask, 30).await {
            f.invoke(QueueName::RunTask, &event).await;
        }
        if let Some(event) = f.receive_event(QueueName::CompleteTask, 60).await {
            let mut rest = Vec::new();
            for record in event["Records"].as_array().unwrap() {
                let body = record["body"].as_str().unwrap();
                let message: Value = serde_json::from_str(body).unwrap();
                let is_branch_done = message["type"] == "action_done" && {
                    let action = f
                        .aws
                        .deps
                        .store
                        .get_action(message["action_execution_id"].as_str().unwrap())
                        .await
                        .unwrap();
                    action.task_name != "start"
                };
                if is_branch_done {
                    done_records.push(record.clone());
                } else {
                    rest.push(record.clone());
                }
            }
            if !rest.is_empty() {
                f.invoke(QueueName::CompleteTask, &json!({ "Records": rest }))
                    .await;
            }
        }
    }
    // WHEN two complete-task invocations handle them at the same time.
    let left = json!({ "Records": [done_records[0]] });
    let right = json!({ "Records": [done_records[1]] });
    let (a, b) = tokio::join!(
        f.invoke(QueueName::CompleteTask, &left),
        f.invoke(QueueName::CompleteTask, &right)
    );
    // (A loser of the race reports a failure and is retried: that is fine.)
    let _ = (a, b);
    let execution = f.pump_until_done(&id, 30).await;
    // THEN the joined task exists once and its action ran once.
    assert_eq!(
        execution.state,
        ExecutionState::Success,
        "{:?}",
        execution.state_info
    );
    let tasks = f.aws.deps.store.list_tasks(&id).await.unwrap();
    let joined: Vec<_> = tasks.iter().filter(|t| t.name == "joined").collect();
    assert_eq!(joined.len(), 1);
    assert_eq!(joined[0].join_arrived, 2);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(
        f.aws
            .deps
            .store
            .list_actions(&joined[0].id)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(execution.active_tasks, 0);
}

/// A workflow on the target cloud: a Keystone action in the execution and
/// again in a sub-workflow (which copies its parent's sealed target).
const ON_CLOUD: &str = r#"
version: '2.0'
whoami:
  output:
    projects: <% $.projects %>
    child_projects: <% $.child_projects %>
  tasks:
    own_projects:
      action: keystone.auth_projects
      publish:
        projects: <% task().result.content.projects.select($.name) %>
      on-success: in_a_sub_workflow
    in_a_sub_workflow:
      workflow: child
      publish:
        child_projects: <% task().result.projects %>
child:
  output:
    projects: <% $.projects %>
  tasks:
    own_projects:
      action: keystone.auth_projects
      publish:
        projects: <% task().result.content.projects.select($.name) %>
"#;

/// ON_CLOUD's `whoami` ended in SUCCESS, its Keystone actions (in the
/// execution and in its sub-workflow) having seen `cloud`'s project.
fn assert_ran_on(execution: &bora::store::ExecutionRecord, cloud: &clouds::Cloud) {
    assert_eq!(
        execution.state,
        ExecutionState::Success,
        "{:?}",
        execution.state_info
    );
    assert_eq!(
        execution.output,
        json!({"projects": [cloud.project], "child_projects": [cloud.project]})
    );
}

/// Test cloud A as an execution's target, with a fresh token.
async fn target_on_cloud_a() -> (clouds::Cloud, bora::target::TargetCloud) {
    let a = clouds::cloud("KS_A");
    let (_, token) = clouds::login(&a).await;
    let target = bora::target::TargetCloud {
        auth_url: a.url.clone(),
        token,
        ca_pem: None,
        insecure: false,
        catalog: None,
        region: None,
        project_id: Some(a.project_id.clone()),
        user_id: None,
        user_name: None,
        user_domain_name: None,
        project_domain_name: None,
    };
    (a, target)
}

/// The functions with an outbound policy that lets them reach the test
/// clouds (on loopback, which the default refuses).
async fn functions_for_clouds() -> Functions {
    Functions::start_with(6, common::registry(Arc::new(AtomicUsize::new(0))), |deps| {
        deps.policy = clouds::policy()
    })
    .await
}

/// create-execution of `workflow` in ON_CLOUD, on `target`.
async fn create_on(
    deps: &Deps,
    workflow: &str,
    target: Option<bora::target::TargetCloud>,
) -> Result<bora::store::ExecutionRecord, bora::handlers::HandlerError> {
    let (definition_key, _) = deps.specs.put(deps.store.as_ref(), ON_CLOUD).await?;
    bora::handlers::create_execution(
        deps,
        bora::handlers::CreateExecution {
            definition_key,
            workflow_name: workflow.into(),
            project_id: "p".into(),
            target,
            ..Default::default()
        },
    )
    .await
}

/// Another Lambda instance on the same table, queues and KMS key, built as
/// the functions build theirs (`AwsDeps::build`): its own KMS client and
/// an empty cache of data keys.
async fn another_lambda_instance(f: &Functions) -> Functions {
    let mut aws = AwsDeps::build(f.aws.config.clone()).await;
    Arc::get_mut(&mut aws.deps)
        .expect("a freshly built AwsDeps is not shared yet")
        .policy = clouds::policy();
    let b = &f.backend;
    Functions {
        backend: AwsBackend {
            deps: b.deps.clone(),
            store: b.store.clone(),
            queue: b.queue.clone(),
            queues: b.queues.clone(),
            dynamodb: b.dynamodb.clone(),
            sqs: b.sqs.clone(),
            sdk: b.sdk.clone(),
        },
        aws,
    }
}

/// The functions' dependencies on this test's table and queues, sealing
/// with `key` of `kms`.
fn deps_with_kms(f: &Functions, kms: aws_sdk_kms::Client, key: &str) -> Deps {
    let mut deps = Deps::new(
        f.aws.deps.store.clone(),
        f.aws.deps.queue.clone(),
        f.aws.deps.actions.clone(),
    );
    deps.policy = clouds::policy();
    deps.keyring = Arc::new(KmsKeyring::new(KmsSealer::new(kms, key)));
    deps
}

/// A KMS client whose endpoint refuses connections.
async fn unreachable_kms() -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(&bora::aws::sdk_config(Some("http://127.0.0.1:9")).await)
}

/// Every item of the table as text (all its string, number and binary
/// values), to search for what must or must not be stored.
async fn table_items_as_text(f: &Functions) -> Vec<String> {
    use aws_sdk_dynamodb::types::AttributeValue;
    fn text_of(value: &AttributeValue, out: &mut String) {
        match value {
            AttributeValue::S(s) | AttributeValue::N(s) => out.push_str(s),
            AttributeValue::B(b) => out.push_str(&String::from_utf8_lossy(b.as_ref())),
            AttributeValue::Ss(list) | AttributeValue::Ns(list) => out.push_str(&list.join(" ")),
            AttributeValue::L(list) => list.iter().for_each(|v| text_of(v, out)),
            AttributeValue::M(map) => map.iter().for_each(|(k, v)| {
                out.push_str(k);
                text_of(v, out);
            }),
            _ => {}
        }
        out.push(' ');
    }
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = f
            .backend
            .dynamodb
            .scan()
            .table_name(f.backend.store.table())
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in page.items() {
            let mut text = String::new();
            item.iter().for_each(|(k, v)| {
                text.push_str(k);
                text_of(v, &mut text);
            });
            items.push(text);
        }
        match page.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => return items,
        }
    }
}

fn stored_target(execution: &bora::store::ExecutionRecord) -> bora::target::SealedTarget {
    serde_json::from_value(execution.params["target"].clone()).expect("a sealed target")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_token_is_sealed_with_a_kms_data_key_that_other_lambda_instances_open() {
    let f = functions_for_clouds().await;
    let (a, target) = target_on_cloud_a().await;
    let token = target.token.expose().to_string();
    // WHEN create-execution stores an execution on cloud A ...
    let created = create_on(&f.aws.deps, "whoami", Some(target))
        .await
        .unwrap();
    let sealed = stored_target(&created);
    let wrapped = sealed.wrapped_key.clone().expect("a KMS-wrapped data key");
    assert!(!wrapped.ciphertext.is_empty());
    // ... and run-task and complete-task run it on other Lambda instances
    // than the one that sealed it (their own KMS clients, no cached key).
    let lambda = another_lambda_instance(&f).await;
    let execution = lambda.pump_until_done(&created.id, 30).await;
    // THEN the Keystone actions, in the execution and in its sub-workflow,
    // ran on cloud A with the unsealed token.
    assert_ran_on(&execution, &a);
    // AND the table holds the wrapped key, beside the token of the
    // execution and of its sub-workflow, but never the token.
    let items = table_items_as_text(&f).await;
    let wrapped_text = serde_json::to_value(&wrapped).unwrap()["ciphertext"]
        .as_str()
        .unwrap()
        .to_string();
    let holding_the_wrapped_key = items
        .iter()
        .filter(|item| item.contains(&wrapped_text))
        .count();
    assert_eq!(holding_the_wrapped_key, 2, "parent and sub-workflow");
    assert!(
        items.iter().all(|item| !item.contains(&token)),
        "the token is in the table"
    );
    // AND yet another instance, with a cache of its own, opens it too: the
    // key is the deployment's KMS key, not one of a process.
    let third = another_lambda_instance(&f).await;
    let opened = sealed
        .open(third.aws.deps.keyring.as_ref(), &created.id)
        .await
        .unwrap();
    assert_eq!(opened.token.expose(), token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_target_copied_to_another_execution_does_not_open_even_where_its_key_is_cached() {
    let f = functions_for_clouds().await;
    let (_, target) = target_on_cloud_a().await;
    let token = target.token.expose().to_string();
    let lambda = another_lambda_instance(&f).await;
    let first = create_on(&f.aws.deps, "child", Some(target)).await.unwrap();
    // GIVEN an instance that ran the first execution (its data key is in
    // that instance's cache now) ...
    let done = lambda.pump_until_done(&first.id, 30).await;
    assert_eq!(done.state, ExecutionState::Success, "{:?}", done.state_info);
    // ... WHEN the first execution's sealed target is copied into the record
    // of another execution ...
    let second = create_on(&f.aws.deps, "child", None).await.unwrap();
    let mut copied = f.aws.deps.store.get_execution(&second.id).await.unwrap();
    copied.params["target"] = first.params["target"].clone();
    f.aws
        .deps
        .store
        .commit(vec![bora::store::Write::UpdateExecution(copied)])
        .await
        .unwrap();
    let failed = lambda.pump_until_done(&second.id, 30).await;
    // THEN its action fails: KMS refuses the wrapped key for another
    // execution, and the cached key is not handed out for it either.
    assert_eq!(failed.state, ExecutionState::Error);
    let info = failed.state_info.unwrap_or_default();
    assert!(info.contains("cannot unseal"), "{info}");
    assert!(info.contains("Decrypt"), "{info}");
    assert!(!info.contains(&token), "never the token: {info}");
    // (The same, directly: the sealed value opens for its own execution
    // only.)
    let sealed = stored_target(&first);
    let keyring = lambda.aws.deps.keyring.as_ref();
    assert!(sealed.open(keyring, &first.id).await.is_ok());
    let error = sealed.open(keyring, &second.id).await.unwrap_err();
    assert!(!error.is_retryable(), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kms_failure_at_create_is_a_clear_error_and_stores_nothing() {
    let f = functions_for_clouds().await;
    let (_, target) = target_on_cloud_a().await;
    let token = target.token.expose().to_string();
    // GIVEN a KMS key that does not exist: KMS says no; retrying will not help.
    let missing_key = deps_with_kms(
        &f,
        aws_sdk_kms::Client::new(&f.backend.sdk),
        "11111111-2222-3333-4444-555555555555",
    );
    let error = create_on(&missing_key, "whoami", Some(target.clone()))
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("GenerateDataKey"), "{text}");
    assert!(!text.contains(&token), "never the token: {text}");
    assert!(!error.is_retryable(), "{text}");
    // GIVEN a KMS that cannot be reached: retryable, and the API says 503.
    let unreachable = deps_with_kms(&f, unreachable_kms().await, "any");
    let error = create_on(&unreachable, "whoami", Some(target))
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("GenerateDataKey"), "{text}");
    assert!(!text.contains(&token), "never the token: {text}");
    assert!(error.is_retryable(), "{text}");
    assert_eq!(bora::api::ApiError::from(error).status.as_u16(), 503);
    // THEN nothing was stored.
    assert_eq!(f.backend.count_executions().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_task_that_cannot_reach_kms_leaves_the_action_unclaimed_and_the_message_returns() {
    let f = functions_for_clouds().await;
    let (a, target) = target_on_cloud_a().await;
    let created = create_on(&f.aws.deps, "child", Some(target)).await.unwrap();
    // GIVEN complete-task started the task: its action waits in run-task.
    let event = loop {
        if let Some(event) = f.receive_event(QueueName::CompleteTask, 30).await {
            f.invoke(QueueName::CompleteTask, &event).await;
        }
        if let Some(event) = f.receive_event(QueueName::RunTask, 1).await {
            break event;
        }
    };
    // WHEN a run-task instance whose KMS cannot be reached handles it ...
    let cut_off = AwsDeps {
        deps: Arc::new(deps_with_kms(&f, unreachable_kms().await, "any")),
        store: f.aws.store.clone(),
        queue: f.aws.queue.clone(),
        config: f.aws.config.clone(),
    };
    let parsed: SqsEvent = serde_json::from_value(event.clone()).unwrap();
    let response = handle_sqs_event(&cut_off, QueueName::RunTask, parsed).await;
    f.delete_succeeded(QueueName::RunTask, &event, &response)
        .await;
    // THEN the message is reported failed (it comes back), the action was
    // neither claimed nor failed ...
    assert_eq!(response.batch_item_failures.len(), 1);
    let task = f.aws.deps.store.list_tasks(&created.id).await.unwrap();
    let actions = f.aws.deps.store.list_actions(&task[0].id).await.unwrap();
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].state, bora::engine::states::ActionState::Idle);
    // ... and once KMS answers, the execution succeeds.
    let execution = f.pump_until_done(&created.id, 30).await;
    assert_eq!(
        execution.state,
        ExecutionState::Success,
        "{:?}",
        execution.state_info
    );
    assert_eq!(execution.output, json!({"projects": [a.project]}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_target_headers_through_api_gateway_run_on_the_target_and_a_partial_set_stores_nothing() {
    let f = functions_for_clouds().await;
    let lambda = another_lambda_instance(&f).await;
    let (a, target) = target_on_cloud_a().await;
    let token = target.token.expose().to_string();
    lambda.register(ON_CLOUD).await;
    let body = json!({"workflow_name": "whoami"}).to_string();
    // A partial set (no token): 400 naming the missing header, nothing stored.
    let (status, fault) = lambda
        .request_with(
            "POST",
            "/v2/executions",
            &[
                ("content-type", "application/json"),
                ("X-Target-Auth-Uri", a.url.as_str()),
            ],
            &body,
        )
        .await;
    assert_eq!(status, 400, "{fault}");
    assert!(
        fault["faultstring"]
            .as_str()
            .unwrap()
            .contains("X-Target-Auth-Token"),
        "{fault}"
    );
    assert_eq!(f.backend.count_executions().await, 0);
    // The whole set: the execution runs on cloud A ...
    let (status, created) = lambda
        .request_with(
            "POST",
            "/v2/executions",
            &[
                ("content-type", "application/json"),
                ("X-Target-Auth-Uri", a.url.as_str()),
                ("X-Target-Auth-Token", token.as_str()),
                ("X-Target-Project-Id", a.project_id.as_str()),
            ],
            &body,
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert!(
        !created.to_string().contains(&token),
        "the answer shows the token"
    );
    let id = created["id"].as_str().unwrap().to_string();
    let execution = lambda.pump_until_done(&id, 30).await;
    assert_ran_on(&execution, &a);
    // ... and neither the table nor the API's answers hold the token.
    let items = table_items_as_text(&f).await;
    assert!(
        items.iter().all(|item| !item.contains(&token)),
        "the token is in the table"
    );
    let (_, got) = lambda
        .request("GET", &format!("/v2/executions/{id}"), "", "")
        .await;
    assert!(!got.to_string().contains(&token), "the API shows the token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_lists_page_through_the_index_in_creation_order_both_ways() {
    let f = Functions::start(6).await;
    f.register(CHAIN).await;
    let mut created = Vec::new();
    for name in ["a", "b", "c", "d", "e"] {
        let (status, body) = f
            .create(json!({"workflow_name": "wf", "input": {"name": name}}))
            .await;
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_str().unwrap().to_string();
        let record = f.aws.deps.store.get_execution(&id).await.unwrap();
        created.push((record.created_at, id));
    }
    // The order the API promises: created_at, then id.
    created.sort();
    let in_order: Vec<&str> = created.iter().map(|(_, id)| id.as_str()).collect();
    let ids = |answer: &Value| -> Vec<String> {
        field_of_each(answer, "executions", "id")
            .into_iter()
            .map(String::from)
            .collect()
    };
    // Pages of two, following the markers, give all five in order.
    let mut seen: Vec<String> = Vec::new();
    let mut target = "/v2/executions?limit=2".to_string();
    loop {
        let (status, page) = f.request("GET", &target, "", "").await;
        assert_eq!(status, 200, "{page}");
        seen.extend(ids(&page));
        match page["next"].as_str() {
            Some(next) => {
                target = next
                    .trim_start_matches("https://api.example.com")
                    .to_string()
            }
            None => break,
        }
        assert!(seen.len() <= 5, "paging does not end: {seen:?}");
    }
    assert_eq!(seen, in_order);
    // Newest first.
    let (_, newest) = f
        .request(
            "GET",
            "/v2/executions?sort_keys=created_at,id&sort_dirs=desc,desc&limit=2",
            "",
            "",
        )
        .await;
    assert_eq!(ids(&newest), [in_order[4], in_order[3]]);
    let (_, older) = f
        .request(
            "GET",
            &format!(
                "/v2/executions?sort_keys=created_at,id&sort_dirs=desc,desc&limit=2&marker={}",
                in_order[3]
            ),
            "",
            "",
        )
        .await;
    assert_eq!(ids(&older), [in_order[2], in_order[1]]);
    // A state filter reads only its own index partition.
    let (_, running) = f
        .request("GET", "/v2/executions?state=RUNNING&limit=10", "", "")
        .await;
    assert_eq!(ids(&running), in_order);
    let (_, none) = f
        .request("GET", "/v2/executions?state=SUCCESS", "", "")
        .await;
    assert_eq!(ids(&none), Vec::<String>::new());
    // Another order still works (read whole, paged in memory).
    let (_, by_id) = f
        .request("GET", "/v2/executions?sort_keys=id&limit=5", "", "")
        .await;
    let mut sorted: Vec<&str> = in_order.clone();
    sorted.sort();
    assert_eq!(ids(&by_id), sorted);
}

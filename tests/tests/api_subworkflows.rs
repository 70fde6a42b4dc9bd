//! Registered workflows calling each other, and tasks skipped over the API.

mod api_support;

use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_calls_a_workflow_registered_in_another_document() {
    let server = api_support::start().await;
    let child = "version: '2.0'\nchild:\n  input: [x]\n  output:\n    doubled: <% $.x * 2 %>\n  tasks:\n    t:\n      action: std.noop\n";
    let parent = "version: '2.0'\nparent:\n  tasks:\n    call:\n      workflow: child x=21\n      publish:\n        got: <% task().result.doubled %>\n";
    assert_eq!(server.post_text("/v2/workflows", child).await.status, 201);
    let created = server.post_text("/v2/workflows", parent).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let execution = server
        .post_json("/v2/executions", &json!({"workflow_name": "parent"}))
        .await;
    assert_eq!(execution.status, 201, "{}", execution.text);
    let done = server
        .wait_state(execution.body["id"].as_str().unwrap(), "SUCCESS")
        .await;
    let output: serde_json::Value = serde_json::from_str(done["output"].as_str().unwrap()).unwrap();
    assert_eq!(output, json!({"got": 42}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipping_the_failed_task_lets_the_execution_succeed() {
    let server = api_support::start().await;
    let wf = "version: '2.0'\nflaky:\n  tasks:\n    ok:\n      action: std.noop\n    boom:\n      action: std.fail\n";
    assert_eq!(server.post_text("/v2/workflows", wf).await.status, 201);
    let execution = server
        .post_json("/v2/executions", &json!({"workflow_name": "flaky"}))
        .await;
    let id = execution.body["id"].as_str().unwrap().to_string();
    server.wait_state(&id, "ERROR").await;
    let tasks = server.get(&format!("/v2/executions/{id}/tasks")).await;
    let boom = tasks.body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "boom")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Only SKIPPED and RUNNING are accepted, and the error says so.
    let bad = server
        .put_json(&format!("/v2/tasks/{boom}"), &json!({"state": "SUCCESS"}))
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.text.contains("RUNNING (rerun) or SKIPPED"),
        "{}",
        bad.text
    );
    let skipped = server
        .put_json(&format!("/v2/tasks/{boom}"), &json!({"state": "SKIPPED"}))
        .await;
    assert_eq!(skipped.status, 200, "{}", skipped.text);
    assert_eq!(skipped.body["state"], "SKIPPED");
    server.wait_state(&id, "SUCCESS").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_uses_an_ad_hoc_action_registered_on_its_own() {
    let server = api_support::start().await;
    let actions = "version: '2.0'\ngreet:\n  base: std.echo\n  base-input:\n    output: hello <% $.who %>\n  input: [who]\n";
    let created = server.post_text("/v2/actions", actions).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let wf = "version: '2.0'\nuses_greet:\n  tasks:\n    t:\n      action: greet who=bora\n      publish:\n        said: <% task().result %>\n";
    let created = server.post_text("/v2/workflows", wf).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let execution = server
        .post_json("/v2/executions", &json!({"workflow_name": "uses_greet"}))
        .await;
    let done = server
        .wait_state(execution.body["id"].as_str().unwrap(), "SUCCESS")
        .await;
    let output: serde_json::Value = serde_json::from_str(done["output"].as_str().unwrap()).unwrap();
    assert_eq!(output, json!({"said": "hello bora"}));
}

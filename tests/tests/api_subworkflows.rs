//! A `workflow:` task may call a workflow registered on its own (another
//! document), as Mistral users do.

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

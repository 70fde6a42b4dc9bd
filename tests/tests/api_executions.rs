//! Executions, tasks and action executions over HTTP.

mod api_support;

use serde_json::json;

const ASYNC_WF: &str = "version: '2.0'\nlong:\n  tasks:\n    t1:\n      action: std.async_noop\n      on-success: t2\n    t2:\n      action: std.echo output=done\n";
const ENV_WF: &str =
    "version: '2.0'\nquick:\n  input:\n    - a: 1\n  tasks:\n    t1:\n      action: std.noop\n";

/// Start an execution of a registered workflow; its id.
async fn start_execution(s: &api_support::Server, workflow: &str) -> String {
    let created = s
        .post_json("/v2/executions", &json!({"workflow_name": workflow}))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.body["id"].as_str().unwrap().to_string()
}

async fn running_action(s: &api_support::Server, execution_id: &str) -> String {
    for _ in 0..200 {
        let tasks = s.get(&format!("/v2/executions/{execution_id}/tasks")).await;
        if let Some(task) = tasks.body["tasks"].as_array().and_then(|t| t.first()) {
            let id = task["id"].as_str().unwrap();
            let actions = s.get(&format!("/v2/tasks/{id}/action_executions")).await;
            if let Some(a) = actions.body["action_executions"]
                .as_array()
                .and_then(|a| a.first())
                && a["state"] == "RUNNING"
            {
                return a["id"].as_str().unwrap().to_string();
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no running action");
}

#[tokio::test]
async fn async_action_completed_by_put_finishes_the_execution() {
    let s = api_support::start().await;
    assert_eq!(s.post_text("/v2/workflows", ASYNC_WF).await.status, 201);
    let created = s
        .post_json(
            "/v2/executions",
            &json!({"workflow_name": "long", "description": "d", "input": "{}"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["state"], "RUNNING");
    assert_eq!(created.body["params"], "{\"namespace\": \"\", \"env\": {}}");
    assert!(created.body.get("published_global").is_none());
    let id = created.body["id"].as_str().unwrap().to_string();
    let action = running_action(&s, &id).await;
    let done = s
        .put_json(
            &format!("/v2/action_executions/{action}"),
            &json!({"state": "SUCCESS", "output": {"x": 1}}),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["output"], "{\"result\": {\"x\": 1}}");
    let finished = s.wait_state(&id, "SUCCESS").await;
    assert_eq!(finished["published_global"], "{}");
    let again = s
        .put_json(
            &format!("/v2/action_executions/{action}"),
            &json!({"state": "SUCCESS", "output": {}}),
        )
        .await;
    assert_eq!(again.status, 400);
    assert!(again.text.contains("already completed"));
    let task = s.get(&format!("/v2/executions/{id}/tasks")).await.body["tasks"][0].clone();
    let one = s
        .get(&format!("/v2/tasks/{}", task["id"].as_str().unwrap()))
        .await;
    assert_eq!(one.body["result"], "{\"x\": 1}");
    assert_eq!(one.body["type"], "ACTION");
    let report = s.get(&format!("/v2/executions/{id}/report")).await;
    assert_eq!(report.body["statistics"]["success_tasks_count"], 2);
}

/// Pause `id`: every execution of `watched` is PAUSED, and stays paused
/// when `action` (waiting in one of them) completes; resume `id`: all of
/// them run to SUCCESS.
async fn pause_complete_resume(s: &api_support::Server, id: &str, watched: &[&str], action: &str) {
    let paused = s
        .put_json(&format!("/v2/executions/{id}"), &json!({"state": "PAUSED"}))
        .await;
    assert_eq!(paused.status, 200, "{}", paused.text);
    assert_eq!(paused.body["state"], "PAUSED");
    let states = || async {
        let mut states = Vec::new();
        for w in watched {
            states.push(s.get(&format!("/v2/executions/{w}")).await.body["state"].clone());
        }
        states
    };
    assert!(states().await.iter().all(|st| st == "PAUSED"));
    s.put_json(
        &format!("/v2/action_executions/{action}"),
        &json!({"state": "SUCCESS", "output": "\"ok\""}),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(states().await.iter().all(|st| st == "PAUSED"));
    let resumed = s
        .put_json(
            &format!("/v2/executions/{id}"),
            &json!({"state": "RUNNING"}),
        )
        .await;
    assert_eq!(resumed.status, 200, "{}", resumed.text);
    for w in watched {
        s.wait_state(w, "SUCCESS").await;
    }
}

#[tokio::test]
async fn pause_then_resume() {
    let s = api_support::start().await;
    s.post_text("/v2/workflows", ASYNC_WF).await;
    let id = start_execution(&s, "long").await;
    let action = running_action(&s, &id).await;
    pause_complete_resume(&s, &id, &[&id], &action).await;
}

const PARENT_WF: &str = "version: '2.0'
parent:
  tasks:
    call:
      workflow: long
      on-success: after
    after:
      action: std.echo output=parent-done
";

/// The sub-workflow execution started by the first task of `parent_id`.
async fn sub_execution(s: &api_support::Server, parent_id: &str) -> String {
    for _ in 0..200 {
        let tasks = s.get(&format!("/v2/executions/{parent_id}/tasks")).await;
        if let Some(task) = tasks.body["tasks"].as_array().and_then(|t| t.first()) {
            let task_id = task["id"].as_str().unwrap();
            let children = s
                .get(&format!("/v2/executions?task_execution_id={task_id}"))
                .await;
            if let Some(child) = children.body["executions"]
                .as_array()
                .and_then(|c| c.first())
            {
                return child["id"].as_str().unwrap().to_string();
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no sub-workflow execution under {parent_id}");
}

#[tokio::test]
async fn pausing_a_parent_pauses_its_sub_workflow_and_resuming_resumes_it() {
    let s = api_support::start().await;
    s.post_text("/v2/workflows", ASYNC_WF).await;
    assert_eq!(s.post_text("/v2/workflows", PARENT_WF).await.status, 201);
    let id = start_execution(&s, "parent").await;
    let child = sub_execution(&s, &id).await;
    let action = running_action(&s, &child).await;
    pause_complete_resume(&s, &id, &[&id, &child], &action).await;
}

#[tokio::test]
async fn cancel_cancels_the_running_task_and_invalid_transition_is_400() {
    let s = api_support::start().await;
    s.post_text("/v2/workflows", ASYNC_WF).await;
    let id = start_execution(&s, "long").await;
    running_action(&s, &id).await;
    let cancelled = s
        .put_json(
            &format!("/v2/executions/{id}"),
            &json!({"state": "CANCELLED", "state_info": "by test"}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    assert_eq!(cancelled.body["state"], "CANCELLED");
    assert_eq!(cancelled.body["state_info"], "by test");
    let tasks = s.get(&format!("/v2/executions/{id}/tasks")).await;
    assert_eq!(tasks.body["tasks"][0]["state"], "CANCELLED");
    let bad = s
        .put_json(&format!("/v2/executions/{id}"), &json!({"state": "PAUSED"}))
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.text.contains("from CANCELLED to PAUSED"),
        "{}",
        bad.text
    );
    assert!(
        bad.text.contains("allowed from CANCELLED: none"),
        "{}",
        bad.text
    );
    let bogus = s
        .put_json(&format!("/v2/executions/{id}"), &json!({"state": "BOGUS"}))
        .await;
    assert_eq!(bogus.status, 400);
    assert!(
        bogus
            .text
            .contains("Allowed states are: 'RUNNING, PAUSED, SUCCESS, ERROR, CANCELLED'")
    );
    let both = s
        .put_json(
            &format!("/v2/executions/{id}"),
            &json!({"state": "PAUSED", "description": "x"}),
        )
        .await;
    assert_eq!(
        both.body["faultstring"],
        "The property description must be updated separately from state."
    );
}

#[tokio::test]
async fn delete_running_needs_force() {
    let s = api_support::start().await;
    s.post_text("/v2/workflows", ASYNC_WF).await;
    let id = start_execution(&s, "long").await;
    let refused = s.delete(&format!("/v2/executions/{id}")).await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.body["faultstring"],
        format!(
            "Only completed executions can be deleted. Use --force to override this. Execution {id} is in RUNNING state"
        )
    );
    assert_eq!(
        s.delete(&format!("/v2/executions/{id}?force=true"))
            .await
            .status,
        204
    );
    let gone = s.get(&format!("/v2/executions/{id}")).await;
    assert_eq!(gone.status, 404);
    assert_eq!(
        gone.body["faultstring"],
        format!("WorkflowExecution not found [id={id}]")
    );
}

#[tokio::test]
async fn env_by_name_and_execution_list_next_link() {
    let s = api_support::start().await;
    s.post_text("/v2/workflows", ENV_WF).await;
    s.post_json(
        "/v2/environments",
        &json!({"name": "e1", "variables": {"k": "v"}}),
    )
    .await;
    let first = s
        .post_json(
            "/v2/executions",
            &json!({"workflow_name": "quick", "params": "{\"env\": \"e1\"}"}),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(
        first.body["params"],
        "{\"env\": {\"k\": \"v\"}, \"namespace\": \"\"}"
    );
    assert_eq!(first.body["input"], "{\"a\": 1}");
    s.post_json(
        "/v2/executions",
        &json!({"workflow_name": "quick", "input": {"a": 2}}),
    )
    .await;
    let page = s.get("/v2/executions?limit=1").await;
    assert_eq!(page.body["executions"].as_array().unwrap().len(), 1);
    assert!(page.body["executions"][0].get("output").is_none());
    let next = page.body["next"].as_str().unwrap().to_string();
    assert!(next.starts_with(&format!(
        "{}/v2/executions?sort_keys=created_at,id&sort_dirs=asc,asc&limit=1&marker=",
        s.base
    )));
    let second = s.send(s.client.get(&next)).await;
    assert_eq!(second.body["executions"].as_array().unwrap().len(), 1);
    assert_ne!(
        second.body["executions"][0]["id"],
        page.body["executions"][0]["id"]
    );
    let filtered = s.get("/v2/executions?workflow_name=nope").await;
    assert_eq!(filtered.body["executions"], json!([]));
    let fields = s.get("/v2/executions?fields=id,state&limit=1").await;
    assert_eq!(fields.body["executions"][0].as_object().unwrap().len(), 2);
    assert!(
        fields.body["next"]
            .as_str()
            .unwrap()
            .ends_with("&fields=id,state")
    );
}

#[tokio::test]
async fn bad_execution_requests_are_rejected_and_nothing_is_stored() {
    let s = api_support::start().await;
    s.post_text("/v2/workflows", ENV_WF).await;
    let unknown = s
        .post_json("/v2/executions", &json!({"workflow_name": "no_such_wf"}))
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.body["faultstring"],
        "Workflow not found [workflow_identifier=no_such_wf, namespace=]"
    );
    let empty = s.post_json("/v2/executions", &json!({})).await;
    assert_eq!(empty.status, 400);
    assert_eq!(
        empty.body["faultstring"],
        "Workflow ID or workflow name must be provided. Workflow ID is recommended."
    );
    let not_json = s
        .send(
            s.client
                .post(format!("{}/v2/executions", s.base))
                .header("content-type", "application/json")
                .body("{nope"),
        )
        .await;
    assert_eq!(not_json.status, 400);
    assert!(
        not_json.body["faultstring"]
            .as_str()
            .unwrap()
            .starts_with("Request is not in valid JSON format: key must be a string")
    );
    let bad_input = s
        .post_json(
            "/v2/executions",
            &json!({"workflow_name": "quick", "input": "not json"}),
        )
        .await;
    assert_eq!(bad_input.status, 400);
    assert!(
        bad_input.body["faultstring"]
            .as_str()
            .unwrap()
            .starts_with("input: the string is not valid JSON")
    );
    let unexpected = s
        .post_json(
            "/v2/executions",
            &json!({"workflow_name": "quick", "input": {"bogus": 1}}),
        )
        .await;
    assert_eq!(unexpected.status, 400);
    assert!(
        unexpected.text.contains("unexpected=['bogus']"),
        "{}",
        unexpected.text
    );
    let no_env = s
        .post_json(
            "/v2/executions",
            &json!({"workflow_name": "quick", "params": {"env": "nope"}}),
        )
        .await;
    assert_eq!(no_env.status, 400);
    assert_eq!(
        no_env.body["faultstring"],
        "params.env: Environment not found [name=nope]"
    );
    let huge = s
        .post_json(
            "/v2/executions",
            &json!({"workflow_name": "quick", "input": {"a": "x".repeat(600 * 1024)}}),
        )
        .await;
    assert_eq!(huge.status, 413);
    assert!(huge.text.contains("limit of 524288 bytes"));
    let bad_limit = s.get("/v2/executions?limit=abc").await;
    assert_eq!(bad_limit.status, 400);
    assert!(bad_limit.text.contains("field/attribute limit"));
    assert_eq!(s.get("/v2/executions").await.body["executions"], json!([]));
}

#[tokio::test]
async fn run_action_on_its_own() {
    let s = api_support::start().await;
    let sync = s
        .post_json(
            "/v2/action_executions",
            &json!({"name": "std.echo", "input": "{\"output\": \"hi\"}"}),
        )
        .await;
    assert_eq!(sync.status, 201, "{}", sync.text);
    assert_eq!(sync.body["output"], "{\"result\": \"hi\"}");
    assert_eq!(sync.body["id"], serde_json::Value::Null);
    let unknown = s
        .post_json("/v2/action_executions", &json!({"name": "std.nope"}))
        .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(
        unknown.body["faultstring"],
        "name: Failed to find action [action_name=std.nope]"
    );
    let saved = s
        .post_json("/v2/action_executions", &json!({"name": "std.echo", "input": {"output": "hi"}, "params": "{\"save_result\": true}"}))
        .await;
    assert_eq!(saved.status, 201);
    let id = saved.body["id"].as_str().unwrap().to_string();
    for _ in 0..100 {
        let a = s.get(&format!("/v2/action_executions/{id}")).await;
        if a.body["state"] == "SUCCESS" {
            assert_eq!(a.body["output"], "{\"result\": \"hi\"}");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("saved action did not finish");
}

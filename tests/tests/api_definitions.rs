//! Workflows, workbooks, actions and environments over HTTP.

mod api_support;

use serde_json::json;

const WF: &str = "---\nversion: '2.0'\nwf1:\n  input:\n    - a\n    - b: 2\n  output:\n    r: done\n  tasks:\n    t1:\n      action: std.echo output=hi\n";

#[tokio::test]
async fn version_discovery_answers_like_mistral() {
    let s = api_support::start().await;
    let root = s.get("/").await;
    assert_eq!(root.status, 200);
    assert_eq!(root.body["versions"][0]["id"], "v2.0");
    assert_eq!(
        root.body["versions"][0]["links"][0]["href"],
        format!("{}/v2", s.base)
    );
    let v2 = s.get("/v2/").await;
    assert_eq!(v2.body, json!({"uri": format!("{}/v2", s.base)}));
}

#[tokio::test]
async fn workflow_create_get_list_update_delete() {
    let s = api_support::start().await;
    let created = s
        .post_text("/v2/workflows?scope=private&namespace=", WF)
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let wf = &created.body["workflows"][0];
    assert_eq!(wf["name"], "wf1");
    assert_eq!(wf["input"], "a, b=\"2\"");
    assert_eq!(
        wf["interface"],
        json!({"input": ["a", {"b": 2}], "output": ["r"]})
    );
    assert_eq!(wf["definition"], WF);
    assert!(wf.get("updated_at").is_none());
    let id = wf["id"].as_str().unwrap().to_string();

    let by_name = s.get("/v2/workflows/wf1").await;
    assert_eq!(by_name.status, 200);
    assert_eq!(by_name.body["id"], id.as_str());
    assert!(by_name.body["interface"].is_string());
    assert_eq!(by_name.body["updated_at"], serde_json::Value::Null);
    assert_eq!(
        s.get(&format!("/v2/workflows/{id}")).await.body["name"],
        "wf1"
    );

    let updated = s.put_text("/v2/workflows", WF).await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["workflows"][0]["id"], id.as_str());
    assert!(updated.body["workflows"][0]["updated_at"].is_string());

    let list = s.get("/v2/workflows").await;
    assert_eq!(list.body["workflows"].as_array().unwrap().len(), 1);
    assert!(list.body.get("next").is_none());

    assert_eq!(s.delete("/v2/workflows/wf1").await.status, 204);
    let gone = s.get("/v2/workflows/wf1").await;
    assert_eq!(gone.status, 404);
    assert_eq!(
        gone.body,
        json!({"faultcode": "Client", "faultstring": "Workflow not found [workflow_identifier=wf1, namespace=]", "debuginfo": null})
    );
}

#[tokio::test]
async fn duplicate_workflow_is_409_and_json_accept_is_served() {
    let s = api_support::start().await;
    let first = s
        .send(
            s.client
                .post(format!("{}/v2/workflows", s.base))
                .header("accept", "application/json")
                .body(WF),
        )
        .await;
    assert_eq!(first.status, 201);
    let again = s.post_text("/v2/workflows", WF).await;
    assert_eq!(again.status, 409);
    assert_eq!(
        again.body,
        json!({"faultstring": "Duplicate entry for WorkflowDefinition ['name', 'namespace', 'project_id']: wf1, , None"})
    );
}

#[tokio::test]
async fn invalid_workflows_are_400_and_nothing_is_stored() {
    let s = api_support::start().await;
    let bad_yaml = s.post_text("/v2/workflows", "{{{ not yaml: [").await;
    assert_eq!(bad_yaml.status, 400);
    assert!(
        bad_yaml.body["faultstring"]
            .as_str()
            .unwrap()
            .starts_with("Invalid DSL")
    );
    let unknown_action = s
        .post_text(
            "/v2/workflows",
            "version: '2.0'\nwf2:\n  tasks:\n    t1:\n      action: std.nope\n",
        )
        .await;
    assert_eq!(unknown_action.status, 400);
    assert!(
        unknown_action.text.contains("unknown action 'std.nope'"),
        "{}",
        unknown_action.text
    );
    let list = s.get("/v2/workflows").await;
    assert_eq!(list.body["workflows"], json!([]));
    let put_unknown = s.put_text("/v2/workflows", WF).await;
    assert_eq!(put_unknown.status, 404);
    assert_eq!(
        put_unknown.body,
        json!({"faultstring": "Workflow not found [workflow_identifier=wf1, namespace=]"})
    );
}

#[tokio::test]
async fn validate_reports_without_storing() {
    let s = api_support::start().await;
    let ok = s.post_text("/v2/workflows/validate", WF).await;
    assert_eq!(ok.body, json!({"valid": true}));
    let bad = s
        .post_text(
            "/v2/workflows/validate",
            "version: '2.0'\nwf2:\n  tasks:\n    t1:\n      action: std.echo output=1\n      on-success: nonexistent\n",
        )
        .await;
    assert_eq!(bad.status, 200);
    assert_eq!(bad.body["valid"], false);
    assert!(bad.body["error"].as_str().unwrap().contains("nonexistent"));
    assert_eq!(s.get("/v2/workflows").await.body["workflows"], json!([]));
}

#[tokio::test]
async fn oversized_definition_is_413_naming_the_limit() {
    let s = api_support::start().await;
    let big = format!("{WF}# {}\n", "x".repeat(1 << 20));
    let a = s.post_text("/v2/workflows", &big).await;
    assert_eq!(a.status, 413);
    assert!(a.text.contains("limit of 1048576 bytes"), "{}", a.text);
    assert_eq!(s.get("/v2/workflows").await.body["workflows"], json!([]));
}

#[tokio::test]
async fn workflow_list_next_link_is_followed() {
    let s = api_support::start().await;
    for name in ["wa", "wb", "wc"] {
        let text = format!("version: '2.0'\n{name}:\n  tasks:\n    t:\n      action: std.noop\n");
        assert_eq!(s.post_text("/v2/workflows", &text).await.status, 201);
    }
    let page = s.get("/v2/workflows?limit=2").await;
    let items = page.body["workflows"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let next = page.body["next"].as_str().unwrap();
    let last = items[1]["id"].as_str().unwrap();
    assert_eq!(
        next,
        format!(
            "{}/v2/workflows?sort_keys=created_at,id&sort_dirs=asc,asc&limit=2&marker={last}",
            s.base
        )
    );
    let rest = s.send(s.client.get(next)).await;
    let names: Vec<&str> = rest.body["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 1);
    assert!(!items.iter().any(|w| w["name"] == names[0]));
}

#[tokio::test]
async fn workbooks_register_their_workflows() {
    let s = api_support::start().await;
    let wb = "version: '2.0'\nname: wb1\nworkflows:\n  inner:\n    tasks:\n      t:\n        action: std.noop\n";
    let a = s.post_text("/v2/workbooks", wb).await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.body["name"], "wb1");
    assert_eq!(s.get("/v2/workflows/wb1.inner").await.status, 200);
    assert_eq!(s.get("/v2/workbooks/wb1").await.body["definition"], wb);
    assert_eq!(s.delete("/v2/workbooks/wb1").await.status, 204);
    assert_eq!(s.get("/v2/workflows/wb1.inner").await.status, 404);
}

#[tokio::test]
async fn actions_list_std_and_ad_hoc() {
    let s = api_support::start().await;
    let echo = s.get("/v2/actions/std.echo").await;
    assert_eq!(echo.status, 200);
    assert_eq!(echo.body["id"], "std.echo");
    assert_eq!(echo.body["created_at"], "");
    let unknown = s.get("/v2/actions/std.nope").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.body["faultstring"],
        "Action not found [name=std.nope, namespace=]"
    );
    let created = s
        .post_text(
            "/v2/actions",
            "version: '2.0'\ngreet:\n  base: std.echo\n  base-input:\n    output: hello\n",
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["actions"][0]["name"], "greet");
    let page = s.get("/v2/actions?limit=2").await;
    assert_eq!(page.body["actions"].as_array().unwrap().len(), 2);
    assert!(
        page.body["next"]
            .as_str()
            .unwrap()
            .contains("sort_keys=name,id")
    );
    let all = s.get("/v2/actions").await;
    assert!(
        all.body["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "greet")
    );
    assert_eq!(s.delete("/v2/actions/greet").await.status, 204);
    assert_eq!(s.get("/v2/actions/greet").await.status, 404);
}

#[tokio::test]
async fn environments_crud() {
    let s = api_support::start().await;
    let created = s
        .post_json(
            "/v2/environments",
            &json!({"name": "env1", "description": "d", "variables": "{\"k\": \"v\"}"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["variables"], "{\"k\": \"v\"}");
    let dup = s
        .post_json("/v2/environments", &json!({"name": "env1"}))
        .await;
    assert_eq!(dup.status, 409);
    assert_eq!(
        dup.body["faultstring"],
        "Duplicate entry for Environment ['name', 'project_id']: env1, None"
    );
    let updated = s
        .put_json(
            "/v2/environments",
            &json!({"name": "env1", "variables": {"k": "v2"}}),
        )
        .await;
    assert_eq!(updated.status, 200);
    assert_eq!(updated.body["variables"], "{\"k\": \"v2\"}");
    let list = s.get("/v2/environments").await;
    assert_eq!(list.body["environments"].as_array().unwrap().len(), 1);
    assert_eq!(s.delete("/v2/environments/env1").await.status, 204);
    let gone = s.get("/v2/environments/env1").await;
    assert_eq!(gone.status, 404);
    assert_eq!(
        gone.body["faultstring"],
        "Environment not found [name=env1]"
    );
    let missing = s
        .put_json("/v2/environments", &json!({"name": "no_env"}))
        .await;
    assert_eq!(missing.status, 404);
}

//! Bad input gets a clear error naming what is wrong, and nothing is stored.

mod common;

use common::Engine;
use serde_json::{Value, json};

async fn rejected(engine: &Engine, yaml: &str, input: Value) -> String {
    let err = engine
        .start_execution(yaml, None, input, Value::Null)
        .await
        .expect_err("this must be refused");
    assert_eq!(
        engine.count_executions().await,
        0,
        "a refused request must store no execution"
    );
    err.to_string()
}

#[tokio::test]
async fn malformed_yaml_names_line_and_column() {
    let engine = Engine::start().await;
    let err = rejected(
        &engine,
        "version: '2.0'\nwf:\n  tasks: {{{ not yaml: [\n",
        json!({}),
    )
    .await;
    assert_eq!(
        err,
        "line 4 column 1: invalid YAML: did not find expected node content"
    );
}

#[tokio::test]
async fn unknown_action_names_the_workflow_task_and_action() {
    let engine = Engine::start().await;
    let yaml = "version: '2.0'\nwf:\n  tasks:\n    t1:\n      action: std.nope\n";
    let err = rejected(&engine, yaml, json!({})).await;
    assert_eq!(err, "workflow 'wf', task 't1': unknown action 'std.nope'");
}

#[tokio::test]
async fn unknown_task_reference_names_it() {
    let engine = Engine::start().await;
    let yaml =
        "version: '2.0'\nwf:\n  tasks:\n    t1:\n      action: std.noop\n      on-success: t9\n";
    let err = rejected(&engine, yaml, json!({})).await;
    assert!(
        err.contains("workflow 'wf', task 't1', key 'on-success'"),
        "{err}"
    );
    assert!(err.contains("'t9'"), "{err}");
}

#[tokio::test]
async fn bad_expression_names_the_key_and_position() {
    let engine = Engine::start().await;
    let yaml =
        "version: '2.0'\nwf:\n  tasks:\n    t1:\n      action: std.echo output=<% $.a + %>\n";
    let err = rejected(&engine, yaml, json!({})).await;
    assert!(err.contains("workflow 'wf', task 't1'"), "{err}");
    assert!(err.contains("position"), "{err}");
    let yaml = "version: '2.0'\nwf:\n  tasks:\n    t1:\n      action: std.echo output=<% nosuchfunction(1) %>\n";
    let err = rejected(&engine, yaml, json!({})).await;
    assert!(err.contains("nosuchfunction"), "{err}");
    let yaml = "version: '2.0'\nwf:\n  tasks:\n    t1:\n      action: std.echo output=\"{{ _.a | nosuchfilter }}\"\n";
    let err = rejected(&engine, yaml, json!({})).await;
    assert!(err.contains("nosuchfilter"), "{err}");
}

#[tokio::test]
async fn missing_and_unexpected_input_read_like_mistral() {
    // Mistral finding A10.
    let engine = Engine::start().await;
    let yaml = "version: '2.0'\na10:\n  input: [req1, {opt1: d}]\n  tasks:\n    t:\n      action: std.noop\n";
    let err = rejected(&engine, yaml, json!({"bogus": 1})).await;
    assert_eq!(
        err,
        "Invalid input [name=a10, class=DirectWorkflowSpec, missing=['req1'], unexpected=['bogus']]"
    );
}

#[tokio::test]
async fn oversized_definition_and_input_name_the_limit() {
    let engine = Engine::start().await;
    let mut yaml = "version: '2.0'\nwf:\n  tasks:\n    t:\n      action: std.noop\n".to_string();
    yaml.push_str(&format!("# {}\n", "x".repeat(1 << 20)));
    let err = rejected(&engine, &yaml, json!({})).await;
    assert!(err.contains("1048576"), "{err}");
    let yaml = "version: '2.0'\nwf:\n  input: [big]\n  tasks:\n    t:\n      action: std.noop\n";
    let err = rejected(&engine, yaml, json!({"big": "y".repeat(300 * 1024)})).await;
    assert!(err.contains("the limit is 262144 bytes"), "{err}");
}

#[tokio::test]
async fn a_runtime_failure_never_panics_a_worker() {
    // A type error inside an expression at run time fails the execution with
    // a message; the worker keeps serving the next execution.
    let engine = Engine::start().await;
    let bad = engine
        .run(
            "version: '2.0'\nwf:\n  tasks:\n    t:\n      action: std.echo output=<% 1 + 'a' %>\n",
            json!({}),
        )
        .await;
    assert_eq!(bad.state.as_str(), "ERROR");
    assert!(bad.state_info.unwrap().contains("task=t"));
    let good = engine
        .run(
            "version: '2.0'\nwf:\n  tasks:\n    t:\n      action: std.noop\n",
            json!({}),
        )
        .await;
    assert_eq!(good.state.as_str(), "SUCCESS");
}

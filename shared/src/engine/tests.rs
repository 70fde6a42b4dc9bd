//! Unit tests of the engine's pure decisions.

use super::*;
use crate::expr::NoLookup;
use serde_json::json;

fn params(spec: &[(&str, Option<Value>)]) -> Vec<InputParam> {
    spec.iter()
        .map(|(n, d)| InputParam {
            name: n.to_string(),
            default: d.clone(),
        })
        .collect()
}

#[test]
fn input_gets_defaults_and_reports_missing_and_unexpected_together() {
    let declared = params(&[("req1", None), ("opt1", Some(json!("d")))]);
    let filled = check_params(
        "wf",
        "DirectWorkflowSpec",
        &declared,
        as_object(&json!({"req1": 1})),
    )
    .unwrap();
    assert_eq!(filled, json!({"req1": 1, "opt1": "d"}));
    let err = check_params(
        "a10",
        "DirectWorkflowSpec",
        &declared,
        as_object(&json!({"bogus": 1})),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid input [name=a10, class=DirectWorkflowSpec, missing=['req1'], unexpected=['bogus']]"
    );
}

#[test]
fn the_branch_wins_over_globals_and_input() {
    let data = data_context(
        &json!({"a": 1, "b": 1}),
        &json!({"b": 2, "c": 2}),
        &json!({"c": 3}),
    );
    assert_eq!(data, json!({"a": 1, "b": 2, "c": 3}));
}

#[test]
fn join_all_starts_when_every_inbound_came_and_fails_when_one_did_not() {
    let came = |n: &str| (n.to_string(), true);
    let missed = |n: &str| (n.to_string(), false);
    assert_eq!(decide_join(2, 2, &[came("a")]), JoinVerdict::Wait);
    assert_eq!(
        decide_join(2, 2, &[came("a"), came("b")]),
        JoinVerdict::Start
    );
    assert_eq!(
        decide_join(2, 2, &[came("a"), missed("b")]),
        JoinVerdict::Fail(vec!["b".into()])
    );
    // join: 1 of 3 starts at the first arrival; fails only when none can come.
    assert_eq!(
        decide_join(1, 3, &[missed("a"), came("b")]),
        JoinVerdict::Start
    );
    assert_eq!(
        decide_join(1, 2, &[missed("a"), missed("b")]),
        JoinVerdict::Fail(vec!["a".into(), "b".into()])
    );
}

#[test]
fn failure_summary_reads_like_mistral() {
    let text = failure_summary(&[(
        "t2".into(),
        "T".into(),
        "boom".into(),
        vec![("A".into(), 0, "boom".into())],
    )]);
    assert_eq!(
        text,
        "Failure caused by error in tasks: t2\n\n  t2 [task_ex_id=T] -> boom\n    [action_ex_id=A, idx=0]: boom\n"
    );
}

#[test]
fn failed_output_holds_result_and_published() {
    let wf = WorkflowSpec {
        name: "wf".into(),
        kind: WorkflowType::Direct,
        description: None,
        tags: vec![],
        input: vec![],
        output: None,
        output_on_error: None,
        vars: None,
        tasks: vec![],
    };
    let data = json!({});
    let ctx = Context {
        data: &data,
        lookup: &NoLookup,
    };
    let out = execution_output(&wf, false, &json!({"before": "ok"}), Some("x"), &ctx).unwrap();
    assert_eq!(out, json!({"result": "x", "before": "ok"}));
    let out = execution_output(&wf, true, &json!({"p": 1}), None, &ctx).unwrap();
    assert_eq!(out, json!({"p": 1}));
}

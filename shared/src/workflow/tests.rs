//! Tests of the workflow-language parser: every construct parsed into the
//! expected spec, and every error with its exact location.

use super::*;
use crate::expr::Data;
use serde_json::{Value, json};

/// A `Data` back as JSON, whichever way the expression compiler chose to
/// represent it (literal, template or nested parts): templates show as their
/// source text, so tests don't depend on the compiler's internals.
fn dv(d: &Data) -> Value {
    match d {
        Data::Literal(v) => v.clone(),
        Data::Template(t) => Value::String(t.source().to_string()),
        Data::List(items) => Value::Array(items.iter().map(dv).collect()),
        Data::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.source().to_string(), dv(v)))
                .collect(),
        ),
    }
}

fn parse(yaml: &str) -> Document {
    match parse_document(yaml) {
        Ok(d) => d,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn fails(yaml: &str) -> (String, String) {
    match parse_document(yaml) {
        Ok(_) => panic!("expected an error for:\n{yaml}"),
        Err(e) => (e.location, e.message),
    }
}

fn targets(c: &Option<OnClause>) -> Vec<(String, Option<String>)> {
    c.as_ref()
        .map(|c| {
            c.next
                .iter()
                .map(|t| {
                    let name = match &t.target {
                        TransitionTarget::Task(n) => n.clone(),
                        TransitionTarget::Noop => "noop".into(),
                        TransitionTarget::Fail { msg } => {
                            format!(
                                "fail{}",
                                msg.as_ref()
                                    .map(|m| format!(" {}", dv(m)))
                                    .unwrap_or_default()
                            )
                        }
                        TransitionTarget::Succeed { msg } => {
                            format!(
                                "succeed{}",
                                msg.as_ref()
                                    .map(|m| format!(" {}", dv(m)))
                                    .unwrap_or_default()
                            )
                        }
                        TransitionTarget::Pause { msg } => {
                            format!(
                                "pause{}",
                                msg.as_ref()
                                    .map(|m| format!(" {}", dv(m)))
                                    .unwrap_or_default()
                            )
                        }
                    };
                    (name, t.condition.as_ref().map(|c| c.source().to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn publish(p: &[(String, Data)]) -> Value {
    Value::Object(p.iter().map(|(k, v)| (k.clone(), dv(v))).collect())
}

const FULL: &str = r#"
version: '2.0'
description: my workflows
wf1:
  type: direct
  description: first
  tags: [a, b]
  input:
    - name
    - greeting: hello
    - opt: null
  output:
    result: <% $.result %>
  output-on-error:
    error: <% task().result %>
  vars:
    counter: 0
  tasks:
    t1:
      description: say hi
      action: std.echo output="hi there" n=3 expr=<% $.a = 'b c' %>
      input:
        n: 4
      publish:
        result: <% task().result %>
      publish-on-error:
        err: <% task().result %>
      on-success:
        - t2: <% $.result != null %>
        - t3
      on-error: fail msg="t1 broke"
      on-complete:
        publish:
          branch:
            b: 1
          global:
            g: <% $.x %>
          atomic:
            a: 2
        next:
          - succeed msg=<% $.result %>
      retry:
        count: 3
        delay: <% $.delay %>
        break-on: <% $.stop %>
        continue-on: <% $.go %>
      wait-before: 1
      wait-after: <% $.w %>
      timeout: 30
      pause-before: true
      keep-result: false
      fail-on: <% $.bad %>
      safe-rerun: true
      target: somewhere
    t2:
      workflow: wf2 x=1
      with-items: i in <% $.list %>
      concurrency: 2
      retry: count=5 delay=2 break-on=<% $.x = 'a b' %>
      on-success:
        publish:
          flat: <% $.v %>
        next: t3
    t3:
      join: all
      with-items:
        - x in <% $.xs %>
        - y in [1, 2, "three"]
      on-success:
        - pause
        - noop
wf2:
  input: [x]
  tasks:
    only:
      action: std.noop
"#;

#[test]
fn full_direct_workflow() {
    let doc = parse(FULL);
    assert_eq!(doc.workbook_name, None);
    assert_eq!(doc.description.as_deref(), Some("my workflows"));
    assert_eq!(doc.workflows.len(), 2);
    let wf = doc.workflow("wf1").unwrap();
    assert_eq!(wf.kind, WorkflowType::Direct);
    assert_eq!(wf.description.as_deref(), Some("first"));
    assert_eq!(wf.tags, vec!["a", "b"]);
    assert_eq!(
        wf.input,
        vec![
            InputParam {
                name: "name".into(),
                default: None
            },
            InputParam {
                name: "greeting".into(),
                default: Some(json!("hello"))
            },
            InputParam {
                name: "opt".into(),
                default: Some(Value::Null)
            },
        ]
    );
    assert_eq!(
        dv(wf.output.as_ref().unwrap()),
        json!({"result": "<% $.result %>"})
    );
    assert_eq!(
        dv(wf.output_on_error.as_ref().unwrap()),
        json!({"error": "<% task().result %>"})
    );
    assert_eq!(dv(wf.vars.as_ref().unwrap()), json!({"counter": 0}));
    assert_eq!(
        wf.tasks.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        vec!["t1", "t2", "t3"]
    );

    let t1 = wf.task("t1").unwrap();
    assert_eq!(t1.description.as_deref(), Some("say hi"));
    match &t1.action {
        TaskAction::Action { name, input } => {
            assert_eq!(name, "std.echo");
            // `input:` wins over the inline `n=3`.
            assert_eq!(
                dv(input),
                json!({"output": "hi there", "n": 4, "expr": "<% $.a = 'b c' %>"})
            );
        }
        other => panic!("{other:?}"),
    }
    let p = t1.publish.as_ref().unwrap();
    assert_eq!(publish(&p.branch), json!({"result": "<% task().result %>"}));
    assert!(p.global.is_empty());
    assert_eq!(
        publish(&t1.publish_on_error.as_ref().unwrap().branch),
        json!({"err": "<% task().result %>"})
    );
    assert_eq!(
        targets(&t1.on_success),
        vec![
            ("t2".to_string(), Some("<% $.result != null %>".to_string())),
            ("t3".to_string(), None)
        ]
    );
    assert_eq!(
        targets(&t1.on_error),
        vec![("fail \"t1 broke\"".to_string(), None)]
    );
    let oc = t1.on_complete.as_ref().unwrap();
    let ocp = oc.publish.as_ref().unwrap();
    // `atomic` is merged into `branch`.
    assert_eq!(publish(&ocp.branch), json!({"b": 1, "a": 2}));
    assert_eq!(publish(&ocp.global), json!({"g": "<% $.x %>"}));
    assert_eq!(
        targets(&t1.on_complete),
        vec![("succeed \"<% $.result %>\"".to_string(), None)]
    );
    let r = t1.retry.as_ref().unwrap();
    assert_eq!(dv(&r.count), json!(3));
    assert_eq!(dv(&r.delay), json!("<% $.delay %>"));
    assert_eq!(r.break_on.as_ref().unwrap().source(), "<% $.stop %>");
    assert_eq!(r.continue_on.as_ref().unwrap().source(), "<% $.go %>");
    assert_eq!(dv(t1.wait_before.as_ref().unwrap()), json!(1));
    assert_eq!(dv(t1.wait_after.as_ref().unwrap()), json!("<% $.w %>"));
    assert_eq!(dv(t1.timeout.as_ref().unwrap()), json!(30));
    assert_eq!(dv(t1.pause_before.as_ref().unwrap()), json!(true));
    assert!(!t1.keep_result);
    assert_eq!(t1.fail_on.as_ref().unwrap().source(), "<% $.bad %>");
    assert!(t1.safe_rerun);
    assert!(t1.join.is_none());

    let t2 = wf.task("t2").unwrap();
    match &t2.action {
        TaskAction::Workflow { name, input } => {
            assert_eq!(name, "wf2");
            assert_eq!(dv(input), json!({"x": 1}));
        }
        other => panic!("{other:?}"),
    }
    let wi = t2.with_items.as_ref().unwrap();
    assert_eq!(wi.vars.len(), 1);
    assert_eq!(wi.vars[0].0, "i");
    assert_eq!(wi.vars[0].1.source(), "<% $.list %>");
    assert_eq!(dv(t2.concurrency.as_ref().unwrap()), json!(2));
    let r = t2.retry.as_ref().unwrap();
    assert_eq!(dv(&r.count), json!(5));
    assert_eq!(dv(&r.delay), json!(2));
    assert_eq!(r.break_on.as_ref().unwrap().source(), "<% $.x = 'a b' %>");
    assert!(r.continue_on.is_none());
    // A flat publish in the advanced form is all branch.
    let p = t2.on_success.as_ref().unwrap().publish.as_ref().unwrap();
    assert_eq!(publish(&p.branch), json!({"flat": "<% $.v %>"}));
    assert!(p.global.is_empty());
    assert_eq!(targets(&t2.on_success), vec![("t3".to_string(), None)]);
    assert!(t2.keep_result, "keep-result defaults to true");
    assert!(!t2.safe_rerun);

    let t3 = wf.task("t3").unwrap();
    assert!(matches!(t3.action, TaskAction::Noop));
    assert_eq!(t3.join, Some(Join::All));
    let wi = t3.with_items.as_ref().unwrap();
    assert_eq!(wi.vars[0].0, "x");
    assert_eq!(wi.vars[0].1.source(), "<% $.xs %>");
    assert_eq!(wi.vars[1].0, "y");
    assert_eq!(wi.vars[1].1.source(), r#"<% [1,2,"three"] %>"#);
    assert_eq!(
        targets(&t3.on_success),
        vec![("pause".to_string(), None), ("noop".to_string(), None)]
    );

    assert_eq!(wf.start_tasks(), vec!["t1"]);
    assert_eq!(wf.inbound("t3"), vec!["t1", "t2"]);
    assert_eq!(wf.inbound("t2"), vec!["t1"]);
    assert!(wf.inbound("t1").is_empty());
    check_references(&doc, &|a| a == "std.echo" || a == "std.noop", &|_| false).unwrap();
}

#[test]
fn numeric_version_and_join_forms() {
    let doc = parse(
        "version: 2.0\nwf:\n  tasks:\n    a:\n      on-success: [c]\n    b:\n      on-success: [c]\n    c:\n      join: one\n    d:\n      on-complete: [e]\n    e:\n      join: 1\n",
    );
    let wf = &doc.workflows[0];
    assert_eq!(wf.task("c").unwrap().join, Some(Join::Count(1)));
    assert_eq!(wf.task("e").unwrap().join, Some(Join::Count(1)));
    assert_eq!(wf.start_tasks(), vec!["a", "b", "d"]);
}

#[test]
fn engine_command_conditions_and_single_quotes() {
    let doc = parse(
        r#"
version: '2.0'
wf:
  tasks:
    a:
      on-complete:
        - fail msg='bad thing': <% $.x > 1 %>
        - succeed: <% true %>
"#,
    );
    let a = doc.workflows[0].task("a").unwrap();
    assert_eq!(
        targets(&a.on_complete),
        vec![
            (
                "fail \"bad thing\"".to_string(),
                Some("<% $.x > 1 %>".to_string())
            ),
            ("succeed".to_string(), Some("<% true %>".to_string())),
        ]
    );
}

#[test]
fn workbook_with_two_workflows_and_an_action() {
    let doc = parse(
        r#"
version: '2.0'
name: wb
description: a workbook
tags: [x]
actions:
  greet:
    base: std.echo output="Hello, <% $.who %>"
    base-input:
      extra: 1
    input:
      - who
    output: <% $ %>
  greet2:
    base: greet
workflows:
  main:
    tasks:
      call:
        workflow: helper
        on-success: say
      say:
        action: greet who=world
      global_wf:
        workflow: other.wf
  helper:
    type: reverse
    tasks:
      one:
        action: std.noop
"#,
    );
    assert_eq!(doc.workbook_name.as_deref(), Some("wb"));
    assert_eq!(doc.description.as_deref(), Some("a workbook"));
    assert_eq!(doc.tags, vec!["x"]);
    let names: Vec<_> = doc.workflows.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, vec!["wb.main", "wb.helper"]);
    let main = doc.workflow("wb.main").unwrap();
    match &main.task("call").unwrap().action {
        TaskAction::Workflow { name, .. } => assert_eq!(name, "wb.helper"),
        other => panic!("{other:?}"),
    }
    match &main.task("say").unwrap().action {
        TaskAction::Action { name, input } => {
            assert_eq!(name, "wb.greet");
            assert_eq!(dv(input), json!({"who": "world"}));
        }
        other => panic!("{other:?}"),
    }
    match &main.task("global_wf").unwrap().action {
        TaskAction::Workflow { name, .. } => assert_eq!(name, "other.wf"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        doc.workflow("wb.helper").unwrap().kind,
        WorkflowType::Reverse
    );
    assert_eq!(doc.actions.len(), 2);
    let a = &doc.actions[0];
    assert_eq!(a.name, "wb.greet");
    assert_eq!(a.base, "std.echo");
    assert_eq!(
        dv(&a.base_input),
        json!({"output": "Hello, <% $.who %>", "extra": 1})
    );
    assert_eq!(
        a.input,
        vec![InputParam {
            name: "who".into(),
            default: None
        }]
    );
    assert_eq!(dv(a.output.as_ref().unwrap()), json!("<% $ %>"));
    assert_eq!(doc.actions[1].base, "wb.greet");

    check_references(&doc, &|a| a == "std.echo" || a == "std.noop", &|w| {
        w == "other.wf"
    })
    .unwrap();
    assert_eq!(
        check_references(&doc, &|a| a == "std.noop", &|w| w == "other.wf").unwrap_err(),
        ParseError {
            location: "action 'wb.greet', key 'base'".into(),
            message: "unknown action 'std.echo'".into()
        }
    );
    assert_eq!(
        check_references(&doc, &|_| true, &|_| false).unwrap_err(),
        ParseError {
            location: "workflow 'wb.main', task 'global_wf'".into(),
            message: "unknown workflow 'other.wf'".into()
        }
    );
}

#[test]
fn check_references_unknown_action() {
    let doc = parse("version: '2.0'\nwf:\n  tasks:\n    t:\n      action: x.y\n");
    let e = check_references(&doc, &|_| false, &|_| true).unwrap_err();
    assert_eq!(
        e.to_string(),
        "workflow 'wf', task 't': unknown action 'x.y'"
    );
}

#[test]
fn actions_document() {
    let actions = parse_actions(
        "version: '2.0'\nmy.action:\n  base: std.http url=http://x\n  input: [a, b: 2]\n",
    )
    .unwrap();
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].name, "my.action");
    assert_eq!(actions[0].base, "std.http");
    assert_eq!(dv(&actions[0].base_input), json!({"url": "http://x"}));
    assert_eq!(
        actions[0].input,
        vec![
            InputParam {
                name: "a".into(),
                default: None
            },
            InputParam {
                name: "b".into(),
                default: Some(json!(2))
            }
        ]
    );
    let e = parse_actions("version: '2.0'\na:\n  input: [x]\n").unwrap_err();
    assert_eq!(
        (e.location.as_str(), e.message.as_str()),
        ("action 'a'", "missing key 'base'")
    );
}

#[test]
fn task_defaults_are_merged() {
    let doc = parse(
        r#"
version: '2.0'
wf:
  task-defaults:
    on-error:
      - handle
    on-complete: [done]
    retry: count=2
    timeout: 10
    wait-before: 1
    pause-before: <% $.p %>
    concurrency: 3
    safe-rerun: true
  tasks:
    a:
      action: std.noop
      timeout: 99
      safe-rerun: false
      on-error: [other]
      on-success: [b]
    b:
      on-complete:
        publish:
          x: 1
    handle:
      action: std.noop
    other:
      action: std.noop
    done:
      action: std.noop
"#,
    );
    let wf = &doc.workflows[0];
    let a = wf.task("a").unwrap();
    // The task's own on-error replaces the default one.
    assert_eq!(targets(&a.on_error), vec![("other".to_string(), None)]);
    assert_eq!(targets(&a.on_complete), vec![("done".to_string(), None)]);
    assert_eq!(dv(a.timeout.as_ref().unwrap()), json!(99));
    assert_eq!(dv(a.wait_before.as_ref().unwrap()), json!(1));
    assert_eq!(dv(a.pause_before.as_ref().unwrap()), json!("<% $.p %>"));
    assert_eq!(dv(a.concurrency.as_ref().unwrap()), json!(3));
    assert_eq!(dv(&a.retry.as_ref().unwrap().count), json!(2));
    assert_eq!(dv(&a.retry.as_ref().unwrap().delay), json!(0));
    assert!(!a.safe_rerun);
    let b = wf.task("b").unwrap();
    assert!(b.safe_rerun);
    assert_eq!(dv(b.timeout.as_ref().unwrap()), json!(10));
    assert_eq!(targets(&b.on_error), vec![("handle".to_string(), None)]);
    // Own clause with publish but no `next`: default transitions, own publish.
    assert_eq!(targets(&b.on_complete), vec![("done".to_string(), None)]);
    assert_eq!(
        publish(
            &b.on_complete
                .as_ref()
                .unwrap()
                .publish
                .as_ref()
                .unwrap()
                .branch
        ),
        json!({"x": 1})
    );
    // Defaults never make a task transition to itself.
    assert!(wf.task("handle").unwrap().on_error.is_none());
    assert!(wf.task("done").unwrap().on_complete.is_none());
    assert_eq!(
        targets(&wf.task("handle").unwrap().on_complete),
        vec![("done".to_string(), None)]
    );
    // Defaults' transitions count for start tasks, as in Mistral.
    assert_eq!(wf.start_tasks(), vec!["a"]);
    assert_eq!(wf.inbound("done"), vec!["a", "b", "handle", "other"]);
}

#[test]
fn reverse_workflow_plan() {
    let doc = parse(
        r#"
version: '2.0'
wf:
  type: reverse
  task-defaults:
    requires: [init]
  tasks:
    init:
      action: std.noop
    a:
      requires: b
    b:
      requires: [c, init]
    c: {}
    lonely:
      requires: []
"#,
    );
    let wf = &doc.workflows[0];
    assert_eq!(wf.task("init").unwrap().requires, Vec::<String>::new());
    assert_eq!(wf.task("a").unwrap().requires, vec!["b", "init"]);
    assert_eq!(wf.task("b").unwrap().requires, vec!["c", "init"]);
    assert_eq!(wf.reverse_plan("a").unwrap(), vec!["init", "c", "b", "a"]);
    assert_eq!(wf.reverse_plan("c").unwrap(), vec!["init", "c"]);
    assert_eq!(wf.reverse_plan("init").unwrap(), vec!["init"]);
    let e = wf.reverse_plan("nope").unwrap_err();
    assert_eq!(e.to_string(), "workflow 'wf': unknown task 'nope'");
}

#[test]
fn direct_loops_are_allowed() {
    let doc = parse(
        "version: '2.0'\nwf:\n  tasks:\n    start:\n      on-success: loop\n    loop:\n      on-success:\n        - loop: <% $.again %>\n        - end\n    end: {}\n",
    );
    let wf = &doc.workflows[0];
    assert_eq!(wf.start_tasks(), vec!["start"]);
    assert_eq!(wf.inbound("loop"), vec!["start", "loop"]);
}

// ---- errors, each with its exact location ----

#[test]
fn malformed_yaml_has_line_and_column() {
    let (loc, msg) = fails("version: '2.0'\nwf:\n  tasks: [a\n  b: c\n");
    assert!(loc.starts_with("line 4 column "), "{loc}");
    assert!(msg.starts_with("invalid YAML: "), "{msg}");
    let (loc, _) = fails("version: '2.0'\nwf:\n\ttasks: {}\n");
    assert!(loc.starts_with("line 3 column "), "{loc}");
}

#[test]
fn version_errors() {
    assert_eq!(
        fails("wf:\n  tasks:\n    a: {}\n"),
        (
            "document".into(),
            "missing key 'version' (expected '2.0')".into()
        )
    );
    assert_eq!(
        fails("version: '1.0'\nwf:\n  tasks:\n    a: {}\n"),
        (
            "key 'version'".into(),
            "unsupported version '1.0' (expected '2.0')".into()
        )
    );
    assert_eq!(
        fails("version: 3\nwf:\n  tasks:\n    a: {}\n"),
        (
            "key 'version'".into(),
            "unsupported version '3' (expected '2.0')".into()
        )
    );
    assert_eq!(
        fails("- a\n- b\n"),
        (
            "document".into(),
            "the document must be a map, got a list".into()
        )
    );
    assert_eq!(
        fails(""),
        (
            "document".into(),
            "the document must be a map, got null".into()
        )
    );
}

#[test]
fn oversized_document() {
    let big = format!("version: '2.0'\n# {}\n", "x".repeat(MAX_DEFINITION_BYTES));
    let e = parse_document(&big).unwrap_err();
    assert_eq!(e.location, "document");
    assert_eq!(
        e.message,
        format!(
            "definition is {} bytes, larger than the limit of 1048576 bytes",
            big.len()
        )
    );
}

#[test]
fn workflow_level_errors() {
    assert_eq!(
        fails("version: '2.0'\nwf:\n  tasks:\n    a: {}\n  outputs: {}\n"),
        (
            "workflow 'wf'".into(),
            "unknown key 'outputs' (expected one of: type, description, tags, input, output, output-on-error, vars, task-defaults, tasks)".into()
        )
    );
    assert_eq!(
        fails("version: '2.0'\nwf: just a string\n"),
        (
            "workflow 'wf'".into(),
            "a workflow body must be a map, got a string".into()
        )
    );
    assert_eq!(
        fails("version: '2.0'\nwf:\n  tasks: {}\n"),
        (
            "workflow 'wf', key 'tasks'".into(),
            "a workflow needs at least one task".into()
        )
    );
    assert_eq!(
        fails("version: '2.0'\nwf:\n  description: x\n"),
        ("workflow 'wf'".into(), "missing key 'tasks'".into())
    );
    assert_eq!(
        fails("version: '2.0'\nwf:\n  type: sideways\n  tasks:\n    a: {}\n"),
        (
            "workflow 'wf', key 'type'".into(),
            "unknown workflow type 'sideways' (expected 'direct' or 'reverse')".into()
        )
    );
    assert_eq!(
        fails("version: '2.0'\nwf:\n  input: [a, b: 1, a]\n  tasks:\n    t: {}\n"),
        (
            "workflow 'wf', key 'input'".into(),
            "duplicate input 'a'".into()
        )
    );
    assert_eq!(
        fails("version: '2.0'\nwf:\n  input: [{a: 1, b: 2}]\n  tasks:\n    t: {}\n"),
        (
            "workflow 'wf', key 'input'".into(),
            "each input must be a name or a single 'name: default' map, got a map".into()
        )
    );
    assert_eq!(
        fails(
            "version: '2.0'\nwf:\n  tasks:\n    a:\n      on-success: b\n    b:\n      on-success: a\n"
        ),
        (
            "workflow 'wf'".into(),
            "no start task: every task is the target of a transition".into()
        )
    );
}

#[test]
fn task_level_errors() {
    let wf = |task: &str| format!("version: '2.0'\nwf:\n  tasks:\n    t1:\n{task}    t2: {{}}\n");
    assert_eq!(
        fails(&wf("      actoin: std.noop\n")).0,
        "workflow 'wf', task 't1'"
    );
    assert!(
        fails(&wf("      actoin: std.noop\n"))
            .1
            .starts_with("unknown key 'actoin' (expected one of: description, action, ")
    );
    assert_eq!(
        fails(&wf("      action: std.noop\n      workflow: other\n")),
        (
            "workflow 'wf', task 't1'".into(),
            "a task cannot have both 'action' and 'workflow'".into()
        )
    );
    assert_eq!(
        fails(&wf("      on-success: t9\n")),
        (
            "workflow 'wf', task 't1', key 'on-success'".into(),
            "unknown task 't9'".into()
        )
    );
    assert_eq!(
        fails(&wf(
            "      on-error:\n        - t2\n        - t9: <% $.x %>\n"
        )),
        (
            "workflow 'wf', task 't1', key 'on-error'".into(),
            "unknown task 't9'".into()
        )
    );
    assert_eq!(
        fails(&wf("      on-complete:\n        next: [t9]\n")),
        (
            "workflow 'wf', task 't1', key 'on-complete'".into(),
            "unknown task 't9'".into()
        )
    );
    assert_eq!(
        fails(&wf("      on-success: t2 x=1\n")),
        (
            "workflow 'wf', task 't1', key 'on-success'".into(),
            "'t2 x=1': only engine commands (fail, succeed, pause) take parameters".into()
        )
    );
    assert_eq!(
        fails(&wf("      on-success: fail reason=x\n")),
        (
            "workflow 'wf', task 't1', key 'on-success'".into(),
            "engine command 'fail' does not take parameter 'reason'".into()
        )
    );
    assert_eq!(
        fails(&wf("      on-success:\n        - t2: false\n")),
        (
            "workflow 'wf', task 't1', key 'on-success'".into(),
            "the condition must be an expression string, got a boolean".into()
        )
    );
    assert_eq!(
        fails(&wf("      on-success:\n        nxt: t2\n")),
        (
            "workflow 'wf', task 't1', key 'on-success'".into(),
            "unknown key 'nxt' (expected one of: publish, next)".into()
        )
    );
    assert_eq!(
        fails(&wf("      join: some\n")),
        (
            "workflow 'wf', task 't1', key 'join'".into(),
            "expected 'all', 'one' or a positive integer, got 'some'".into()
        )
    );
    assert_eq!(
        fails(&wf("      join: 0\n")),
        (
            "workflow 'wf', task 't1', key 'join'".into(),
            "expected 'all', 'one' or a positive integer, got 0".into()
        )
    );
    assert_eq!(
        fails(&wf("      with-items: i <% $.x %>\n")),
        (
            "workflow 'wf', task 't1', key 'with-items'".into(),
            "'i <% $.x %>': expected 'VAR in <% expression %>' or 'VAR in [list]'".into()
        )
    );
    assert_eq!(
        fails(&wf("      with-items: i in $.x\n")),
        (
            "workflow 'wf', task 't1', key 'with-items'".into(),
            "'i in $.x': expected 'VAR in <% expression %>' or 'VAR in [list]'".into()
        )
    );
    assert_eq!(
        fails(&wf("      with-items: [i in <% $.a %>, i in <% $.b %>]\n")),
        (
            "workflow 'wf', task 't1', key 'with-items'".into(),
            "variable 'i' given twice".into()
        )
    );
    assert_eq!(
        fails(&wf("      retry: count=3 delay\n")),
        (
            "workflow 'wf', task 't1', key 'retry'".into(),
            "malformed parameter 'delay': expected key=value in 'count=3 delay'".into()
        )
    );
    assert_eq!(
        fails(&wf("      retry: delay=3\n")),
        (
            "workflow 'wf', task 't1', key 'retry'".into(),
            "missing 'count' in 'delay=3'".into()
        )
    );
    assert_eq!(
        fails(&wf("      retry: count=3 tries=2\n")),
        (
            "workflow 'wf', task 't1', key 'retry'".into(),
            "unknown retry parameter 'tries' in 'count=3 tries=2' (expected one of: count, delay, break-on, continue-on)".into()
        )
    );
    assert_eq!(
        fails(&wf("      retry: count=many\n")),
        (
            "workflow 'wf', task 't1', key 'retry', key 'count'".into(),
            "expected a non-negative integer or an expression, got \"many\"".into()
        )
    );
    assert_eq!(
        fails(&wf("      retry:\n        count: -1\n")),
        (
            "workflow 'wf', task 't1', key 'retry', key 'count'".into(),
            "expected a non-negative integer or an expression, got -1".into()
        )
    );
    assert_eq!(
        fails(&wf("      timeout: soon\n")),
        (
            "workflow 'wf', task 't1', key 'timeout'".into(),
            "expected a non-negative integer or an expression, got 'soon'".into()
        )
    );
    assert_eq!(
        fails(&wf("      keep-result: maybe\n")),
        (
            "workflow 'wf', task 't1', key 'keep-result'".into(),
            "expected true or false, got a string".into()
        )
    );
    assert_eq!(
        fails(&wf("      action: std.echo output=\"open\n")),
        (
            "workflow 'wf', task 't1', key 'action'".into(),
            "parameter 'output': unterminated \"quoted\" value in 'output=\"open'".into()
        )
    );
    assert_eq!(
        fails(&wf("      requires: [t2]\n")),
        (
            "workflow 'wf', task 't1'".into(),
            "key 'requires' is only valid in reverse workflows".into()
        )
    );
    assert_eq!(
        fails(&wf("      input: {a: 1}\n")),
        (
            "workflow 'wf', task 't1', key 'input'".into(),
            "'input' needs 'action' or 'workflow'".into()
        )
    );
    assert_eq!(
        fails("version: '2.0'\nwf:\n  tasks:\n    t1: 5\n"),
        (
            "workflow 'wf', task 't1'".into(),
            "a task must be a map, got a number".into()
        )
    );
}

#[test]
fn join_needs_inbound_tasks() {
    assert_eq!(
        fails(
            "version: '2.0'\nwf:\n  tasks:\n    a:\n      on-success: c\n    c:\n      join: 2\n"
        ),
        (
            "workflow 'wf', task 'c', key 'join'".into(),
            "join needs 2 inbound task(s) but only 1 lead here".into()
        )
    );
}

#[test]
fn task_defaults_errors() {
    assert_eq!(
        fails(
            "version: '2.0'\nwf:\n  task-defaults:\n    on-error: nowhere\n  tasks:\n    a: {}\n"
        ),
        (
            "workflow 'wf', task-defaults, key 'on-error'".into(),
            "unknown task 'nowhere'".into()
        )
    );
    assert_eq!(
        fails("version: '2.0'\nwf:\n  task-defaults:\n    action: std.noop\n  tasks:\n    a: {}\n")
            .1,
        "unknown key 'action' (expected one of: on-success, on-error, on-complete, retry, wait-before, wait-after, timeout, pause-before, concurrency, safe-rerun, requires)"
    );
}

#[test]
fn reverse_errors() {
    assert_eq!(
        fails(
            "version: '2.0'\nwf:\n  type: reverse\n  tasks:\n    a:\n      requires: [b]\n    b:\n      requires: c\n    c:\n      requires: a\n"
        ),
        (
            "workflow 'wf'".into(),
            "cycle in 'requires': a -> b -> c -> a".into()
        )
    );
    assert_eq!(
        fails("version: '2.0'\nwf:\n  type: reverse\n  tasks:\n    a:\n      requires: [ghost]\n"),
        (
            "workflow 'wf', task 'a', key 'requires'".into(),
            "unknown task 'ghost'".into()
        )
    );
    assert_eq!(
        fails("version: '2.0'\nwf:\n  type: reverse\n  tasks:\n    a:\n      on-success: a\n"),
        (
            "workflow 'wf', task 'a'".into(),
            "key 'on-success' is only valid in direct workflows".into()
        )
    );
}

#[test]
fn workbook_errors() {
    assert_eq!(
        fails("version: '2.0'\nname: wb\nworkflow:\n  a: {}\n"),
        (
            "workbook".into(),
            "unknown key 'workflow' (expected one of: version, name, description, tags, workflows, actions)".into()
        )
    );
    assert_eq!(
        fails(
            "version: '2.0'\nname: wb\nworkflows:\n  w:\n    tasks:\n      a:\n        on-success: b\n"
        ),
        (
            "workflow 'wb.w', task 'a', key 'on-success'".into(),
            "unknown task 'b'".into()
        )
    );
}

#[test]
fn deep_nesting_does_not_crash() {
    let deep = format!(
        "version: '2.0'\nwf:\n  vars: {}{}\n  tasks:\n    a: {{}}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert!(parse_document(&deep).is_err());
    let chain: String = (0..3000)
        .map(|i| format!("    t{i}:\n      requires: [t{}]\n", i + 1))
        .collect();
    let yaml = format!("version: '2.0'\nwf:\n  type: reverse\n  tasks:\n{chain}    t3000: {{}}\n");
    let doc = parse(&yaml);
    assert_eq!(doc.workflows[0].reverse_plan("t0").unwrap().len(), 3001);
}

#[test]
fn yaml_errors_exact() {
    assert_eq!(
        fails("version: '2.0'\nwf:\n  tasks: [a\n  b: c\n"),
        (
            "line 4 column 4".into(),
            "invalid YAML: did not find expected ',' or ']'".into()
        )
    );
    assert_eq!(
        fails("version: '2.0'\nwf:\n  tasks:\n    a: {}\n    a: {}\n"),
        (
            "line 4 column 5".into(),
            "invalid YAML: wf.tasks: duplicate entry with key \"a\"".into()
        )
    );
}

/// A poor man's fuzzer: every prefix of a rich document, and the document
/// with each line dropped, must give a result, never a panic.
#[test]
fn mangled_documents_never_panic() {
    for end in 0..=FULL.len() {
        let _ = parse_document(&FULL[..end]);
    }
    let lines: Vec<&str> = FULL.lines().collect();
    for skip in 0..lines.len() {
        let text: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, l)| *l)
            .collect();
        if let Ok(doc) = parse_document(&text.join("\n")) {
            let _ = check_references(&doc, &|_| false, &|_| false);
            for wf in &doc.workflows {
                let _ = wf.start_tasks();
            }
        }
    }
}

#[test]
fn ad_hoc_action_loop_is_refused() {
    let doc = parse("version: '2.0'\nname: wb\nactions:\n  a:\n    base: b\n  b:\n    base: a\n");
    assert_eq!(
        check_references(&doc, &|_| true, &|_| true).unwrap_err(),
        ParseError {
            location: "action 'wb.a', key 'base'".into(),
            message: "ad-hoc actions based on each other in a loop through 'wb.a'".into()
        }
    );
}

/// Near the size limit, checks stay linear: a long chain of tasks each
/// joining, and one long inline parameter line.
#[test]
fn big_documents_parse_quickly() {
    let n = 20_000;
    let mut yaml = String::from("version: '2.0'\nwf:\n  tasks:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "    t{i}:\n      join: all\n      on-success: t{}\n",
            i + 1
        ));
    }
    yaml.push_str(&format!("    t{n}: {{}}\n"));
    // t0 has no inbound task, so its join is refused, after all the checks.
    let started = std::time::Instant::now();
    let (loc, _) = fails(&yaml);
    assert_eq!(loc, "workflow 'wf', task 't0', key 'join'");
    let params: String = (0..50_000).map(|i| format!(" p{i}={i}")).collect();
    let yaml = format!("version: '2.0'\nwf:\n  tasks:\n    t:\n      action: std.echo{params}\n");
    assert!(yaml.len() < MAX_DEFINITION_BYTES);
    let doc = parse(&yaml);
    match &doc.workflows[0].tasks[0].action {
        TaskAction::Action { input, .. } => {
            assert_eq!(dv(input).as_object().map(|m| m.len()), Some(50_000))
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

//! Each construct of the workflow language, run end to end on the embedded
//! default with the real worker loop, with its expected output.

mod common;

use bora::engine::states::{ExecutionState, TaskState};
use common::{Engine, assert_success};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_feeds_downstream_tasks_and_the_output() {
    let engine = Engine::start().await;
    let e = engine
        .run(
            r#"
version: '2.0'
wf:
  input: [name]
  vars:
    greeting: hello
  output:
    message: <% $.message %>
  tasks:
    greet:
      action: std.echo output="<% $.greeting %>, <% $.name %>"
      publish:
        message: <% task().result %>
"#,
            json!({"name": "bora"}),
        )
        .await;
    assert_success(&e);
    assert_eq!(e.output, json!({"message": "hello, bora"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_output_the_execution_returns_only_published_variables() {
    // Mistral finding A1: no input, no vars, only what tasks published.
    let engine = Engine::start().await;
    let e = engine
        .run(
            r#"
version: '2.0'
wf:
  input:
    - a: 1
  vars:
    v: 2
  tasks:
    t1:
      action: std.echo output=r1
      publish:
        p1: <% task().result %>
      on-success: t2
    t2:
      action: std.noop
      publish:
        p2: 42
"#,
            json!({}),
        )
        .await;
    assert_success(&e);
    assert_eq!(e.output, json!({"p1": "r1", "p2": 42}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_success_and_on_error_branch_on_the_outcome_and_conditions() {
    let engine = Engine::start().await;
    let yaml = r#"
version: '2.0'
wf:
  input: [fail, n]
  tasks:
    first:
      action: std.echo output=<% $.n %>
      on-success:
        - maybe_fail: <% $.n > 0 %>
        - zero: <% $.n = 0 %>
    maybe_fail:
      action: std.echo output=ok
      fail-on: <% $.fail %>
      publish:
        path: success
      on-error:
        - handled
    zero:
      action: std.noop
      publish:
        path: zero
    handled:
      action: std.noop
      publish:
        path: error-handled
"#;
    let ok = engine.run(yaml, json!({"fail": false, "n": 1})).await;
    assert_success(&ok);
    assert_eq!(ok.output, json!({"path": "success"}));
    let zero = engine.run(yaml, json!({"fail": false, "n": 0})).await;
    assert_eq!(zero.output, json!({"path": "zero"}));
    let handled = engine.run(yaml, json!({"fail": true, "n": 1})).await;
    assert_success(&handled);
    assert_eq!(handled.output, json!({"path": "error-handled"}));
    let failed_task = engine.task(&handled.id, "maybe_fail").await;
    assert_eq!(failed_task.state, TaskState::Error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_task_without_handler_fails_the_execution_with_mistrals_summary() {
    // Mistral finding A2: output is {"result": state_info} plus published.
    let engine = Engine::start().await;
    let e = engine
        .run(
            r#"
version: '2.0'
wf:
  output-on-error:
    err_out: failed!
  tasks:
    t1:
      action: std.noop
      publish:
        before: ok
      on-success: t2
    t2:
      action: std.fail error_data="sub failed"
"#,
            json!({}),
        )
        .await;
    assert_eq!(e.state, ExecutionState::Error);
    let info = e.state_info.clone().unwrap();
    assert!(
        info.starts_with("Failure caused by error in tasks: t2\n\n  t2 [task_ex_id="),
        "{info}"
    );
    assert!(
        info.contains("] -> sub failed\n    [action_ex_id="),
        "{info}"
    );
    assert!(info.ends_with(", idx=0]: sub failed\n"), "{info}");
    assert_eq!(e.output["result"], json!(info));
    assert_eq!(e.output["before"], json!("ok"));
    assert_eq!(e.output["err_out"], json!("failed!"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_complete_runs_after_success_and_error() {
    let engine = Engine::start().await;
    let e = engine
        .run(
            r#"
version: '2.0'
wf:
  tasks:
    boom:
      action: std.fail
      on-complete: after
    after:
      action: std.echo output=ran
      publish:
        after: <% task().result %>
"#,
            json!({}),
        )
        .await;
    // on-complete handles the error, so the execution succeeds.
    assert_success(&e);
    assert_eq!(e.output, json!({"after": "ran"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_precedence_is_on_complete_then_publish_then_on_success() {
    // Mistral finding A3.
    let engine = Engine::start().await;
    let e = engine
        .run(
            r#"
version: '2.0'
wf:
  tasks:
    t1:
      action: std.noop
      publish:
        x: from-task-publish
        y: task-y
      on-success:
        publish:
          branch:
            x: from-on-success
            z: success-z
          global:
            g: global-g
        next: t2
      on-complete:
        publish:
          branch:
            y: complete-y
    t2:
      action: std.echo output="<% $.x %> <% $.y %> <% $.z %> <% global(g) %>"
      publish:
        seen: <% task().result %>
"#,
            json!({}),
        )
        .await;
    assert_success(&e);
    assert_eq!(
        e.output["seen"],
        json!("from-task-publish complete-y success-z global-g")
    );
    assert_eq!(e.output["g"], json!("global-g"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_all_waits_for_every_branch_and_merges_their_context() {
    let engine = Engine::start().await;
    let e = engine
        .run(
            r#"
version: '2.0'
wf:
  tasks:
    start:
      action: std.noop
      on-success: [left, right]
    left:
      action: std.echo output=L
      publish:
        l: <% task().result %>
      on-success: joined
    right:
      action: std.echo output=R
      publish:
        r: <% task().result %>
      on-success: joined
    joined:
      join: all
      action: std.echo output="<% $.l %><% $.r %>"
      publish:
        both: <% task().result %>
"#,
            json!({}),
        )
        .await;
    assert_success(&e);
    assert_eq!(e.output["both"], json!("LR"));
    let joined: Vec<_> = engine
        .tasks(&e.id)
        .await
        .into_iter()
        .filter(|t| t.name == "joined")
        .collect();
    assert_eq!(joined.len(), 1, "the join task must run exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_all_fails_when_an_inbound_edge_is_not_taken() {
    // Mistral finding A7: "Failed by tasks: ['b']".
    let engine = Engine::start().await;
    let e = engine
        .run(
            r#"
version: '2.0'
wf:
  tasks:
    start:
      action: std.noop
      on-success: [a, b]
    a:
      action: std.noop
      on-success: j
    b:
      action: std.noop
      on-success:
        - j: <% false %>
    j:
      join: all
      action: std.noop
"#,
            json!({}),
        )
        .await;
    assert_eq!(e.state, ExecutionState::Error);
    let j = engine.task(&e.id, "j").await;
    assert_eq!(j.state, TaskState::Error);
    assert_eq!(j.state_info.as_deref(), Some("Failed by tasks: ['b']"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_one_starts_with_the_first_arrival() {
    let engine = Engine::start().await;
    let e = engine
        .run(
            r#"
version: '2.0'
wf:
  tasks:
    start:
      action: std.noop
      on-success: [a, b]
    a:
      action: std.noop
      on-success: j
    b:
      action: std.noop
      on-success: j
    j:
      join: one
      action: test.count output=joined
      publish:
        j: <% task().result %>
"#,
            json!({}),
        )
        .await;
    assert_success(&e);
    assert_eq!(e.output["j"], json!("joined"));
    assert_eq!(engine.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_items_runs_each_item_and_keeps_their_order() {
    let engine = Engine::start().await;
    let e = engine
        .run(
            r#"
version: '2.0'
wf:
  input:
    - names: [a, b, c, d]
    - sizes: [1, 2, 3, 4]
  tasks:
    each:
      with-items:
        - name in <% $.names %>
        - size in <% $.sizes %>
      concurrency: 2
      action: std.echo output="<% $.name %><% $.size %>"
      publish:
        all: <% task().result %>
"#,
            json!({}),
        )
        .await;
    assert_success(&e);
    assert_eq!(e.output["all"], json!(["a1", "b2", "c3", "d4"]));
    assert_eq!(engine.action_count(&e.id, "each").await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_items_over_an_empty_list_succeeds_with_an_empty_result() {
    // Mistral finding A8.
    let engine = Engine::start().await;
    let e = engine
        .run(
            r#"
version: '2.0'
wf:
  tasks:
    each:
      with-items: x in <% [] %>
      action: std.echo output=<% $.x %>
      publish:
        r: <% task().result %>
"#,
            json!({}),
        )
        .await;
    assert_success(&e);
    assert_eq!(e.output["r"], json!([]));
    assert_eq!(engine.action_count(&e.id, "each").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_items_goes_on_after_a_failed_item_and_then_fails_the_task() {
    // Mistral finding A4: every item runs; the task fails with
    // "One or more actions had failed."; the result keeps the item order.
    let engine = Engine::start().await;
    let e = engine
        .run(
            r#"
version: '2.0'
wf:
  tasks:
    each:
      with-items: i in <% [0, 1, 2, 3] %>
      concurrency: 1
      action: std.fail
      input:
        error_data: <% 'bad ' + str($.i) %>
      fail-on: <% false %>
      on-error: report
    report:
      action: std.echo output=<% task(each).result %>
      publish:
        seen: <% task().result %>
"#,
            json!({}),
        )
        .await;
    assert_success(&e);
    let each = engine.task(&e.id, "each").await;
    assert_eq!(each.state, TaskState::Error);
    assert_eq!(
        each.state_info.as_deref(),
        Some("One or more actions had failed.")
    );
    assert_eq!(
        e.output["seen"],
        json!(["bad 0", "bad 1", "bad 2", "bad 3"])
    );
    assert_eq!(engine.action_count(&e.id, "each").await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_runs_count_more_attempts_and_keeps_the_last_error() {
    // Mistral finding A9: count=2 on std.fail gives 3 action executions.
    let engine = Engine::start().await;
    let e = engine
        .run(
            r#"
version: '2.0'
wf:
  tasks:
    flaky:
      action: std.fail error_data=nope
      retry: count=2 delay=0
"#,
            json!({}),
        )
        .await;
    assert_eq!(e.state, ExecutionState::Error);
    assert_eq!(engine.action_count(&e.id, "flaky").await, 3);
    let info = e.state_info.unwrap();
    assert_eq!(info.matches(": nope\n").count(), 3, "{info}");
    assert!(info.contains("idx=2]"), "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_continue_on_repeats_a_success_and_break_on_stops_at_once() {
    let engine = Engine::start().await;
    let e = engine
        .run(
            r#"
version: '2.0'
wf:
  tasks:
    poll:
      action: test.count output=again
      retry:
        count: 3
        delay: 0
        continue-on: <% task().result = 'again' %>
      on-success: stop
    stop:
      action: std.fail
      retry:
        count: 5
        delay: 0
        break-on: <% true %>
"#,
            json!({}),
        )
        .await;
    assert_eq!(engine.action_count(&e.id, "poll").await, 4);
    assert_eq!(engine.runs.load(Ordering::SeqCst), 4);
    assert_eq!(engine.action_count(&e.id, "stop").await, 1);
    assert_eq!(e.state, ExecutionState::Error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sub_workflow_returns_its_output_as_the_task_result() {
    // Mistral finding A13.
    let engine = Engine::start().await;
    let e = engine
        .run(
            r#"
version: '2.0'
parent:
  tasks:
    call:
      workflow: child
      input:
        x: 21
      publish:
        from_child: <% task().result %>
      on-success: call_failing
    call_failing:
      workflow: failing
      on-error: done
    done:
      action: std.noop
child:
  input: [x]
  output:
    doubled: <% $.x * 2 %>
  tasks:
    t:
      action: std.noop
failing:
  tasks:
    s1:
      action: std.fail error_data="sub failed"
"#,
            json!({}),
        )
        .await;
    assert_success(&e);
    assert_eq!(e.output["from_child"], json!({"doubled": 42}));
    let failing = engine.task(&e.id, "call_failing").await;
    assert_eq!(failing.state, TaskState::Error);
    assert!(
        failing
            .state_info
            .as_deref()
            .unwrap()
            .starts_with("Failure caused by error in tasks: s1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_items_over_a_sub_workflow() {
    let engine = Engine::start().await;
    let e = engine
        .run(
            r#"
version: '2.0'
parent:
  tasks:
    fan:
      with-items: x in <% [1, 2, 3] %>
      concurrency: 2
      workflow: child x=<% $.x %>
      publish:
        results: <% task().result.select($.doubled) %>
child:
  input: [x]
  output:
    doubled: <% $.x * 2 %>
  tasks:
    t:
      action: std.noop
"#,
            json!({}),
        )
        .await;
    assert_success(&e);
    assert_eq!(e.output["results"], json!([2, 4, 6]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_commands_fail_succeed_and_their_messages() {
    // Mistral finding A12.
    let engine = Engine::start().await;
    let failed = engine
        .run(
            r#"
version: '2.0'
wf:
  tasks:
    t1:
      action: std.noop
      on-success:
        - fail msg="x"
"#,
            json!({}),
        )
        .await;
    assert_eq!(failed.state, ExecutionState::Error);
    assert_eq!(failed.state_info.as_deref(), Some("x"));
    assert_eq!(failed.output, json!({"result": "x"}));
    assert_eq!(
        engine.task(&failed.id, "t1").await.state,
        TaskState::Success
    );

    let succeeded = engine
        .run(
            r#"
version: '2.0'
wf:
  output:
    o: done
  tasks:
    t1:
      action: std.fail
      on-error:
        - succeed msg="done early"
        - never
    never:
      action: std.noop
"#,
            json!({}),
        )
        .await;
    assert_eq!(succeeded.state, ExecutionState::Success);
    assert_eq!(succeeded.state_info.as_deref(), Some("done early"));
    assert_eq!(succeeded.output, json!({"o": "done"}));
    // Siblings of `succeed` are never created.
    assert!(
        engine
            .tasks(&succeeded.id)
            .await
            .iter()
            .all(|t| t.name != "never")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_command_and_pause_before_wait_for_resume() {
    let engine = Engine::start().await;
    let e = engine
        .start_execution(
            r#"
version: '2.0'
wf:
  tasks:
    t1:
      action: std.noop
      on-success: [pause, t2]
    t2:
      action: std.noop
      on-success: t3
    t3:
      pause-before: true
      action: std.echo output=three
      publish:
        three: <% task().result %>
"#,
            None,
            json!({}),
            Value::Null,
        )
        .await
        .unwrap();
    let paused = engine.wait(&e.id).await;
    assert_eq!(paused.state, ExecutionState::Paused);
    assert!(engine.tasks(&e.id).await.iter().all(|t| t.name != "t2"));
    bora::handlers::resume_execution(&engine.deps, &e.id, None)
        .await
        .unwrap();
    let paused_again = engine.wait(&e.id).await;
    assert_eq!(
        paused_again.state,
        ExecutionState::Paused,
        "pause-before t3"
    );
    assert_eq!(engine.task(&e.id, "t3").await.state, TaskState::Idle);
    bora::handlers::resume_execution(&engine.deps, &e.id, None)
        .await
        .unwrap();
    let done = engine.wait(&e.id).await;
    assert_success(&done);
    assert_eq!(done.output["three"], json!("three"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_before_wait_after_and_timeout() {
    let engine = Engine::start().await;
    let started = std::time::Instant::now();
    let e = engine
        .run(
            r#"
version: '2.0'
wf:
  tasks:
    waits:
      wait-before: 1
      wait-after: 1
      action: std.noop
      on-success: slow
    slow:
      timeout: 1
      action: std.sleep seconds=30
"#,
            json!({}),
        )
        .await;
    assert!(
        started.elapsed().as_secs_f64() >= 3.0,
        "waits and the timeout take at least 3 s"
    );
    assert!(
        started.elapsed().as_secs_f64() < 20.0,
        "the timeout must cut the 30 s sleep"
    );
    assert_eq!(e.state, ExecutionState::Error);
    let slow = engine.task(&e.id, "slow").await;
    assert_eq!(slow.state, TaskState::Error);
    assert!(slow.state_info.unwrap().starts_with("Task timed out"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_result_false_drops_the_result_after_publish() {
    // Mistral finding A14.
    let engine = Engine::start().await;
    let e = engine
        .run(
            r#"
version: '2.0'
wf:
  tasks:
    big:
      action: std.echo output="big result"
      keep-result: false
      publish:
        seen: <% task().result %>
"#,
            json!({}),
        )
        .await;
    assert_success(&e);
    assert_eq!(e.output["seen"], json!("big result"));
    assert_eq!(engine.task(&e.id, "big").await.result, Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverse_workflow_runs_what_the_target_requires() {
    let engine = Engine::start().await;
    let yaml = r#"
version: '2.0'
wf:
  type: reverse
  tasks:
    a:
      action: std.echo output=a
      publish:
        a: <% task().result %>
    b:
      action: std.echo output=b
      publish:
        b: <% task().result %>
    c:
      requires: [a, b]
      action: std.echo output="<% $.a %><% $.b %>c"
      publish:
        c: <% task().result %>
    unrelated:
      action: std.noop
"#;
    let e = engine
        .start_execution(yaml, None, json!({}), json!({"task_name": "c"}))
        .await
        .unwrap();
    let e = engine.wait(&e.id).await;
    assert_success(&e);
    assert_eq!(e.output["c"], json!("abc"));
    let names: Vec<String> = engine
        .tasks(&e.id)
        .await
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert!(!names.contains(&"unrelated".to_string()));
    assert_eq!(names.len(), 3);
    // Without task_name: refused, nothing stored.
    let err = engine
        .start_execution(yaml, None, json!({}), json!({}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("params.task_name"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workbook_with_ad_hoc_action() {
    let engine = Engine::start().await;
    let e = engine
        .run(
            r#"
version: '2.0'
name: book
actions:
  greet:
    base: std.echo
    base-input:
      output: "hello <% $.who %>"
    input: [who]
    output: <% $.toUpper() %>
workflows:
  main:
    tasks:
      t:
        action: greet who=world
        publish:
          said: <% task().result %>
        on-success: sub
      sub:
        workflow: helper
        publish:
          from_helper: <% task().result %>
  helper:
    output:
      h: <% 1 + 1 %>
    tasks:
      only:
        action: std.noop
"#,
            json!({}),
        )
        .await;
    assert_success(&e);
    assert_eq!(e.workflow_name, "book.main");
    assert_eq!(e.output["said"], json!("HELLO WORLD"));
    assert_eq!(e.output["from_helper"], json!({"h": 2}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jinja_and_mistral_functions() {
    let engine = Engine::start().await;
    let e = engine
        .start_execution(
            r#"
version: '2.0'
wf:
  input:
    - items: [3, 1, 2]
  tasks:
    t1:
      action: std.echo
      input:
        output:
          sorted: "{{ _.items | sort }}"
          count: "{{ _.items | length }}"
          env_region: "{{ env().region }}"
          exec_input: <% execution().input.items.len() %>
          parsed: '<% json_parse(''{"k": [1, 2]}'') %>'
          dumped: <% json_dump([1]) %>
          yaml: "<% yaml_parse('a: 1') %>"
          id_len: <% len(uuid()) %>
      publish:
        r: <% task().result %>
"#,
            None,
            json!({}),
            json!({"env": {"region": "RegionOne"}}),
        )
        .await
        .unwrap();
    let e = engine.wait(&e.id).await;
    assert_success(&e);
    assert_eq!(
        e.output["r"],
        json!({
            "sorted": [1, 2, 3],
            "count": 3,
            "env_region": "RegionOne",
            "exec_input": 3,
            "parsed": {"k": [1, 2]},
            "dumped": "[1]",
            "yaml": {"a": 1},
            "id_len": 36
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_input_expression_fails_the_execution_at_once() {
    // Mistral finding A5: on-error is not followed, no action runs.
    let engine = Engine::start().await;
    let e = engine
        .run(
            r#"
version: '2.0'
wf:
  tasks:
    t1:
      action: std.echo output=<% $.missing.x.y %>
      on-error: handler
    handler:
      action: std.noop
"#,
            json!({}),
        )
        .await;
    assert_eq!(e.state, ExecutionState::Error);
    let info = e.state_info.unwrap();
    assert!(info.starts_with("Failed to run task [error="), "{info}");
    assert!(info.ends_with("wf=wf, task=t1]"), "{info}");
    assert_eq!(engine.action_count(&e.id, "t1").await, 0);
    assert!(
        engine
            .tasks(&e.id)
            .await
            .iter()
            .all(|t| t.name != "handler")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_publish_expression_fails_the_execution_at_once() {
    // Mistral finding A6.
    let engine = Engine::start().await;
    let e = engine
        .run(
            r#"
version: '2.0'
wf:
  tasks:
    t1:
      action: std.echo output=1
      publish:
        bad: <% $.nope.deeper %>
      on-success: next
      on-error: next
    next:
      action: std.noop
"#,
            json!({}),
        )
        .await;
    assert_eq!(e.state, ExecutionState::Error);
    let info = e.state_info.unwrap();
    assert!(
        info.starts_with("Failed to handle action completion [error="),
        "{info}"
    );
    assert!(engine.tasks(&e.id).await.iter().all(|t| t.name != "next"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_example_runs() {
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/tour.yaml"
    ))
    .unwrap();
    let engine = Engine::start().await;
    let e = engine.run(&yaml, json!({})).await;
    assert_success(&e);
    assert_eq!(
        e.output["shout"],
        json!("HELLO, ADA / HELLO, GRACE / HELLO, LINUS")
    );
    assert_eq!(
        e.output["recovered"],
        json!("recovered from the network was down")
    );
    assert_eq!(
        e.output["summary"],
        json!({"words": 3, "first": "HELLO, ADA"})
    );
    assert_eq!(engine.action_count(&e.id, "flaky").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_on_error_and_the_noop_command() {
    let engine = Engine::start().await;
    let e = engine
        .run(
            r#"
version: '2.0'
wf:
  tasks:
    boom:
      action: std.fail error_data="disk full"
      publish:
        never: published-on-success
      publish-on-error:
        why: <% task().result %>
      on-error:
        publish:
          branch:
            handled: true
        next:
          - noop
          - report
    report:
      action: std.echo output="<% $.why %> / <% $.handled %>"
      publish:
        report: <% task().result %>
"#,
            json!({}),
        )
        .await;
    assert_success(&e);
    // Interpolated the way Mistral renders a Python value: True.
    assert_eq!(e.output["report"], json!("disk full / True"));
    assert_eq!(e.output.get("never"), None);
    assert_eq!(
        engine.task(&e.id, "boom").await.published,
        json!({"why": "disk full", "handled": true})
    );
}

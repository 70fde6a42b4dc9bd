//! Tests of the action registry and the std actions other than `std.http`
//! (see `http_tests.rs`).

use super::*;
use ::std::time::Duration;
use serde_json::json;
use tokio::time::Instant;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// prepare_input then run, as the engine does.
async fn run(name: &str, input: Value) -> ActionOutcome {
    let reg = ActionRegistry::standard();
    let input = reg.prepare_input(name, obj(input)).expect("valid input");
    reg.run(name, &input, &ActionContext::default()).await
}

#[test]
fn standard_lists_the_std_actions_first() {
    let reg = ActionRegistry::standard();
    let names: Vec<&str> = reg.list().iter().take(7).map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "std.noop",
            "std.echo",
            "std.fail",
            "std.sleep",
            "std.async_noop",
            "std.test_dict",
            "std.http"
        ]
    );
    let echo = reg.get("std.echo").unwrap();
    assert_eq!(echo.input[0].name, "output");
    assert_eq!(echo.input[0].default, None);
    assert_eq!(echo.input[1].name, "delay");
    assert_eq!(echo.input[1].default, Some(json!(0)));
    assert!(!echo.is_async);
    assert!(reg.get("std.async_noop").unwrap().is_async);
    assert!(reg.get("std.nope").is_none());
    let http: Vec<&str> = reg
        .get("std.http")
        .unwrap()
        .input
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(
        http,
        [
            "url",
            "method",
            "params",
            "body",
            "json",
            "headers",
            "cookies",
            "auth",
            "timeout",
            "allow_redirects",
            "proxies",
            "verify"
        ]
    );
}

#[test]
fn prepare_input_errors_name_the_problem() {
    let reg = ActionRegistry::standard();
    assert_eq!(
        reg.prepare_input("std.nope", Map::new()).unwrap_err(),
        "unknown action 'std.nope'"
    );
    assert_eq!(
        reg.prepare_input("std.echo", obj(json!({"output": 1, "colour": "red"})))
            .unwrap_err(),
        "action 'std.echo': unknown parameter 'colour' (accepted: output, delay)"
    );
    assert_eq!(
        reg.prepare_input("std.echo", obj(json!({"a": 1, "b": 2})))
            .unwrap_err(),
        "action 'std.echo': unknown parameters 'a', 'b' (accepted: output, delay)"
    );
    assert_eq!(
        reg.prepare_input("std.noop", obj(json!({"x": 1})))
            .unwrap_err(),
        "action 'std.noop': unknown parameter 'x' (accepted: none)"
    );
    assert_eq!(
        reg.prepare_input("std.echo", obj(json!({"delay": 1})))
            .unwrap_err(),
        "action 'std.echo': missing required parameter 'output'"
    );
    assert_eq!(
        reg.prepare_input("std.http", Map::new()).unwrap_err(),
        "action 'std.http': missing required parameter 'url'"
    );
}

#[test]
fn prepare_input_fills_defaults_and_keeps_given_values() {
    let reg = ActionRegistry::standard();
    let got = reg
        .prepare_input("std.echo", obj(json!({"output": "x"})))
        .unwrap();
    assert_eq!(Value::Object(got), json!({"output": "x", "delay": 0}));
    let got = reg
        .prepare_input("std.echo", obj(json!({"output": null, "delay": 2})))
        .unwrap();
    assert_eq!(Value::Object(got), json!({"output": null, "delay": 2}));
    let got = reg.prepare_input("std.test_dict", Map::new()).unwrap();
    assert_eq!(
        Value::Object(got),
        json!({"size": 0, "key_prefix": "", "val": ""})
    );
    let got = reg
        .prepare_input("std.http", obj(json!({"url": "http://x/"})))
        .unwrap();
    assert_eq!(got["method"], json!("GET"));
    assert_eq!(got.len(), 12);
    assert!(
        got.iter()
            .filter(|(k, _)| *k != "url" && *k != "method")
            .all(|(_, v)| v.is_null())
    );
}

#[tokio::test]
async fn unknown_action_fails_at_run() {
    let reg = ActionRegistry::standard();
    let out = reg
        .run("std.nope", &Map::new(), &ActionContext::default())
        .await;
    assert_eq!(
        out,
        ActionOutcome::Error(json!("unknown action 'std.nope'"))
    );
}

#[tokio::test]
async fn noop_returns_null() {
    assert_eq!(
        run("std.noop", json!({})).await,
        ActionOutcome::Success(Value::Null)
    );
}

#[tokio::test]
async fn async_noop_is_async() {
    assert_eq!(run("std.async_noop", json!({})).await, ActionOutcome::Async);
}

#[tokio::test]
async fn echo_returns_output() {
    let out = run("std.echo", json!({"output": {"a": [1, 2, "three"]}})).await;
    assert_eq!(out, ActionOutcome::Success(json!({"a": [1, 2, "three"]})));
    let out = run("std.echo", json!({"output": null})).await;
    assert_eq!(out, ActionOutcome::Success(Value::Null));
}

#[tokio::test(start_paused = true)]
async fn echo_waits_for_its_delay() {
    let start = Instant::now();
    let out = run("std.echo", json!({"output": "late", "delay": 2.5})).await;
    assert_eq!(out, ActionOutcome::Success(json!("late")));
    assert_eq!(start.elapsed(), Duration::from_millis(2500));

    // Mistral's float(): text is read, unreadable or negative means 0.
    let start = Instant::now();
    let out = run("std.echo", json!({"output": 1, "delay": "1.5"})).await;
    assert_eq!(out, ActionOutcome::Success(json!(1)));
    assert_eq!(start.elapsed(), Duration::from_millis(1500));
    let start = Instant::now();
    run("std.echo", json!({"output": 1, "delay": "soon"})).await;
    run("std.echo", json!({"output": 1, "delay": -3})).await;
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test]
async fn echo_delay_is_bounded() {
    let out = run("std.echo", json!({"output": 1, "delay": 3601})).await;
    assert_eq!(
        out,
        ActionOutcome::Error(json!(
            "std.echo: delay must be at most 3600 seconds, got 3601"
        ))
    );
}

#[tokio::test]
async fn fail_fails() {
    assert_eq!(
        run("std.fail", json!({})).await,
        ActionOutcome::Error(json!("Fail action expected exception."))
    );
    assert_eq!(
        run(
            "std.fail",
            json!({"error_data": {"code": 42, "why": "because"}})
        )
        .await,
        ActionOutcome::Error(json!({"code": 42, "why": "because"}))
    );
    assert_eq!(
        run("std.fail", json!({"error_data": "broken"})).await,
        ActionOutcome::Error(json!("broken"))
    );
    // Falsy error data: Mistral raises its own message instead.
    assert_eq!(
        run("std.fail", json!({"error_data": ""})).await,
        ActionOutcome::Error(json!("Fail action expected exception."))
    );
}

#[tokio::test(start_paused = true)]
async fn sleep_sleeps() {
    let start = Instant::now();
    assert_eq!(
        run("std.sleep", json!({"seconds": 5})).await,
        ActionOutcome::Success(Value::Null)
    );
    assert_eq!(start.elapsed(), Duration::from_secs(5));

    // Default 1 second; fractions dropped as Mistral's int() does.
    let start = Instant::now();
    run("std.sleep", json!({})).await;
    run("std.sleep", json!({"seconds": 2.9})).await;
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test]
async fn sleep_is_bounded() {
    assert_eq!(
        run("std.sleep", json!({"seconds": 7200})).await,
        ActionOutcome::Error(json!("std.sleep: seconds must be at most 3600, got 7200"))
    );
}

#[tokio::test]
async fn test_dict_builds_a_dict() {
    let out = run(
        "std.test_dict",
        json!({"size": 3, "key_prefix": "k_", "val": {"v": 1}}),
    )
    .await;
    assert_eq!(
        out,
        ActionOutcome::Success(json!({"k_0": {"v": 1}, "k_1": {"v": 1}, "k_2": {"v": 1}}))
    );
    assert_eq!(
        run("std.test_dict", json!({})).await,
        ActionOutcome::Success(json!({}))
    );
    assert_eq!(
        run("std.test_dict", json!({"size": 2})).await,
        ActionOutcome::Success(json!({"0": "", "1": ""}))
    );
    assert_eq!(
        run("std.test_dict", json!({"size": 2_000_000})).await,
        ActionOutcome::Error(json!(
            "std.test_dict: size must be at most 1000000, got 2000000"
        ))
    );
    assert_eq!(
        run("std.test_dict", json!({"size": "many"})).await,
        ActionOutcome::Error(json!(
            "std.test_dict: size must be a non-negative integer, got \"many\""
        ))
    );
}

/// An action from outside the std set, as the OpenStack table will add.
struct Upper;

impl Action for Upper {
    fn run<'a>(
        &'a self,
        input: &'a Map<String, Value>,
        ctx: &'a ActionContext,
    ) -> ActionFuture<'a> {
        Box::pin(async move {
            let text = input["text"].as_str().unwrap_or_default().to_uppercase();
            ActionOutcome::Success(json!({"text": text, "task": ctx.task_name}))
        })
    }
}

#[tokio::test]
async fn registry_takes_more_actions() {
    let mut reg = ActionRegistry::standard();
    let info = ActionInfo {
        name: "x.upper".into(),
        description: "upper-cases".into(),
        input: vec![InputParam {
            name: "text".into(),
            default: None,
        }],
        is_async: false,
    };
    let before = reg.list().len();
    reg.register(info, ActionImpl::Dyn(Arc::new(Upper)));
    assert_eq!(reg.list().len(), before + 1);
    let input = reg
        .prepare_input("x.upper", obj(json!({"text": "abc"})))
        .unwrap();
    let ctx = ActionContext {
        task_name: "t1".into(),
        ..Default::default()
    };
    assert_eq!(
        reg.run("x.upper", &input, &ctx).await,
        ActionOutcome::Success(json!({"text": "ABC", "task": "t1"}))
    );

    // Same name again: replaced in place, not duplicated.
    let mut info = StdAction::Noop.info();
    info.name = "x.upper".into();
    reg.register(info, ActionImpl::Std(StdAction::Noop));
    assert_eq!(reg.list().len(), before + 1);
    assert_eq!(
        reg.run("x.upper", &Map::new(), &ctx).await,
        ActionOutcome::Success(Value::Null)
    );
}

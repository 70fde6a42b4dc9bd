//! python-mistralclient 6.3 drives the real `bora serve` binary: the
//! commands an operator runs with `mistral` work unchanged against bora.
//!
//! The test script sets `BORA_BIN` (the `bora` binary) and `MISTRAL_BIN`
//! (the `mistral` executable of the venv made by
//! `scripts/mistralclient/venv.sh`); without them the tests fail.

mod serve_support;

use serde_json::Value;
use serve_support::{Serve, required_env, serve};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `mistral --os-mistral-url URL ARGS...` without any Keystone
/// settings, and returns its stdout; panics with stderr when it fails.
fn mistral_command(server: &Serve, args: &[&str]) -> Command {
    let bin = required_env(
        "MISTRAL_BIN",
        "run scripts/test, or set it to the path printed by scripts/mistralclient/venv.sh",
    );
    let mut command = Command::new(bin);
    // The Keystone step of the test script exports OS_* variables; with
    // them mistralclient would authenticate instead of talking to bora.
    for (name, _) in std::env::vars() {
        if name.starts_with("OS_") {
            command.env_remove(name);
        }
    }
    command
        .args(["--os-mistral-url", &format!("{}/v2", server.base)])
        .args(args);
    command
}

fn mistral(server: &Serve, args: &[&str]) -> String {
    let out = mistral_command(server, args)
        .output()
        .expect("cannot run mistral");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "mistral {args:?} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn mistral_json(server: &Serve, args: &[&str]) -> Value {
    let mut with_format = args.to_vec();
    with_format.extend(["-f", "json"]);
    let out = mistral(server, &with_format);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("mistral {args:?}: not JSON ({e}): {out}"))
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().to_string()
}

/// Polls `execution-get` until the state is `want`.
fn wait_for_state(server: &Serve, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let execution = mistral_json(server, &["execution-get", id]);
        if execution["State"] == want {
            return execution;
        }
        assert!(
            Instant::now() < deadline,
            "execution {id} did not reach {want}: {execution}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const ASYNC_WF: &str = r#"version: '2.0'
mc_async:
  input:
    - name: "world"
  tasks:
    t1:
      action: std.async_noop
      publish:
        got: <% task().result.x %>
      on-success: t2
    t2:
      action: std.echo output=<% "hello " + $.name %>
      publish:
        greeting: <% task().result %>
"#;

/// The first task of execution `id`, once there is one.
fn first_task(server: &Serve, id: &str) -> Value {
    serve_support::first_task(id, |id| mistral_json(server, &["task-list", id]))
}

#[test]
fn mistralclient_creates_runs_and_completes_an_async_action_on_bora() {
    let server = serve();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "wf.yaml", ASYNC_WF);

    let created = mistral_json(&server, &["workflow-create", &file]);
    assert_eq!(created[0]["Name"], "mc_async");
    assert_eq!(created[0]["Input"], "name=\"world\"");
    assert_eq!(created[0]["Scope"], "private");
    // The table form too.
    let table = mistral(&server, &["workflow-get", "mc_async"]);
    assert!(table.contains("| Name       | mc_async"), "{table}");

    let execution = mistral_json(
        &server,
        &["execution-create", "mc_async", r#"{"name": "bora"}"#],
    );
    assert_eq!(execution["Workflow name"], "mc_async");
    assert_eq!(execution["State"], "RUNNING");
    assert_eq!(execution["Task Execution ID"], "<none>");
    let id = execution["ID"].as_str().unwrap().to_string();

    let got = mistral_json(&server, &["execution-get", &id]);
    assert_eq!(got["ID"], id.as_str());
    assert_eq!(got["Workflow ID"], created[0]["ID"]);

    // The async task appears and waits for its result.
    let task = first_task(&server, &id);
    assert_eq!(task["Name"], "t1");
    assert_eq!(task["State"], "RUNNING");
    assert_eq!(task["Workflow Execution ID"], id.as_str());
    assert_eq!(task["Finished at"], "<none>");
    let task_id = task["ID"].as_str().unwrap().to_string();

    let actions = mistral_json(&server, &["action-execution-list", &task_id]);
    assert_eq!(actions[0]["Name"], "std.async_noop");
    assert_eq!(actions[0]["State"], "RUNNING");
    assert_eq!(actions[0]["Accepted"], false);
    let action_id = actions[0]["ID"].as_str().unwrap().to_string();
    // The list of all action executions has the same columns.
    let all = mistral_json(&server, &["action-execution-list"]);
    assert_eq!(all[0]["ID"], action_id.as_str());
    assert_eq!(all[0]["Workflow namespace"], "");

    let updated = mistral_json(
        &server,
        &[
            "action-execution-update",
            "--state",
            "SUCCESS",
            "--output",
            r#"{"x": 1}"#,
            &action_id,
        ],
    );
    assert_eq!(updated["State"], "SUCCESS");
    assert_eq!(updated["Task ID"], task_id.as_str());

    let done = wait_for_state(&server, &id, "SUCCESS");
    assert_eq!(done["State info"], Value::Null);
    let output: Value =
        serde_json::from_str(&mistral(&server, &["execution-get-output", &id])).unwrap();
    assert_eq!(
        output,
        serde_json::json!({"got": 1, "greeting": "hello bora"})
    );
    let result: Value =
        serde_json::from_str(&mistral(&server, &["task-get-result", &task_id])).unwrap();
    assert_eq!(result, serde_json::json!({"x": 1}));
}

/// t1 waits for its result from outside (std.async_noop), so the pause
/// below always lands while t1 runs, however slow the machine.
const WAITING_WF: &str = r#"version: '2.0'
mc_waiting:
  tasks:
    t1:
      action: std.async_noop
      on-success: t2
    t2:
      action: std.echo output=two
      publish:
        last: <% task().result %>
"#;

#[test]
fn mistralclient_pauses_and_resumes_an_execution_on_bora() {
    let server = serve();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "waiting.yaml", WAITING_WF);
    mistral_json(&server, &["workflow-create", &file]);
    let execution = mistral_json(&server, &["execution-create", "mc_waiting"]);
    let id = execution["ID"].as_str().unwrap().to_string();
    let task_id = first_task(&server, &id)["ID"].as_str().unwrap().to_string();
    let actions = mistral_json(&server, &["action-execution-list", &task_id]);
    let action_id = actions[0]["ID"].as_str().unwrap().to_string();

    // WHEN paused while t1 waits, and t1's result arrives meanwhile
    let paused = mistral_json(&server, &["execution-update", "-s", "PAUSED", &id]);
    assert_eq!(paused["State"], "PAUSED");
    mistral_json(
        &server,
        &["action-execution-update", "--state", "SUCCESS", &action_id],
    );
    // THEN it stays paused after t1 has finished, and t2 does not run
    // (bora may create it, IDLE, to start on resume)
    let deadline = Instant::now() + Duration::from_secs(20);
    while mistral_json(&server, &["task-get", &task_id])["State"] != "SUCCESS" {
        assert!(Instant::now() < deadline, "t1 did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let still = mistral_json(&server, &["execution-get", &id]);
    assert_eq!(still["State"], "PAUSED");
    let tasks = mistral_json(&server, &["task-list", &id]);
    assert!(
        tasks
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["Name"] != "t2" || t["State"] == "IDLE"),
        "t2 ran while paused: {tasks}"
    );

    // WHEN resumed THEN it runs to the end
    // (t2 is quick: by the time bora answers it may have finished already)
    let resumed = mistral(&server, &["execution-update", "-s", "RUNNING", &id]);
    assert!(
        resumed.contains("| State              | RUNNING")
            || resumed.contains("| State              | SUCCESS"),
        "{resumed}"
    );
    wait_for_state(&server, &id, "SUCCESS");
    let output: Value =
        serde_json::from_str(&mistral(&server, &["execution-get-output", &id])).unwrap();
    assert_eq!(output["last"], "two");
}

#[test]
fn mistralclient_shows_the_servers_fault_for_an_unknown_execution() {
    let server = serve();
    let out = mistral_command(
        &server,
        &["execution-get", "00000000-0000-0000-0000-000000000000"],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("WorkflowExecution not found [id=00000000-0000-0000-0000-000000000000]"),
        "{stderr}"
    );
}

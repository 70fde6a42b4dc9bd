//! The `bora` client commands against the real `bora serve` binary: the
//! tables and `-f json` look like python-mistralclient's, `execution-create
//! --wait` follows a run to its end, and `execution-report` draws the task
//! tree with sub-workflows.
//!
//! The test script sets `BORA_BIN` (the `bora` binary); without it the
//! tests fail.

mod serve_support;

use serde_json::{Value, json};
use serve_support::{Serve, bora_bin, serve};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

impl Serve {
    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().to_string()
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(bora_bin())
            .args(args)
            .env("BORA_URL", &self.base)
            .output()
            .expect("cannot run bora")
    }

    /// The table output of a command that must succeed.
    fn table(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "bora {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// The `-f json` output of a command that must succeed.
    fn json(&self, args: &[&str]) -> Value {
        let mut with_format = args.to_vec();
        with_format.extend(["-f", "json"]);
        let out = self.table(&with_format);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("bora {args:?}: not JSON ({e}): {out}"))
    }

    fn wait_for_state(&self, id: &str, want: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let execution = self.json(&["execution-get", id]);
            if execution["State"] == want {
                return execution;
            }
            assert!(
                Instant::now() < deadline,
                "{id} did not reach {want}: {execution}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The cells of the table row whose first cell is `first`.
fn row<'a>(table: &'a str, first: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.first() == Some(&first))
        .unwrap_or_else(|| panic!("no row {first} in\n{table}"))
}

const ASYNC_WF: &str = r#"version: '2.0'
cl_async:
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

#[test]
fn client_creates_runs_and_completes_an_async_action_with_mistral_tables() {
    let server = serve();
    let file = server.file("wf.yaml", ASYNC_WF);

    let created = server.table(&["workflow-create", &file]);
    let header = row(&created, "ID");
    assert_eq!(
        header,
        [
            "ID",
            "Name",
            "Namespace",
            "Project ID",
            "Tags",
            "Input",
            "Scope",
            "Created at",
            "Updated at"
        ]
    );
    let workflow = server.json(&["workflow-get", "cl_async"]);
    assert_eq!(workflow["Name"], "cl_async");
    assert_eq!(workflow["Input"], "name=\"world\"");
    assert_eq!(workflow["Tags"], "<none>");
    assert_eq!(workflow["Updated at"], Value::Null);
    let listed = server.json(&["workflow-list"]);
    assert_eq!(listed[0]["ID"], workflow["ID"]);

    let execution = server.json(&[
        "execution-create",
        "cl_async",
        r#"{"name": "bora"}"#,
        "-d",
        "from the test",
    ]);
    assert_eq!(execution["State"], "RUNNING");
    assert_eq!(execution["Description"], "from the test");
    assert_eq!(execution["Root Execution ID"], "<none>");
    let id = execution["ID"].as_str().unwrap().to_string();

    let shown = server.table(&["execution-get", &id]);
    assert_eq!(row(&shown, "Workflow name"), ["Workflow name", "cl_async"]);
    assert_eq!(row(&shown, "State info"), ["State info", "None"]);

    let task = first_task(&server, &id);
    assert_eq!(task["Name"], "t1");
    assert_eq!(task["State"], "RUNNING");
    assert_eq!(task["Finished at"], "<none>");
    let task_id = task["ID"].as_str().unwrap().to_string();
    let task_table = server.table(&["task-list", &id]);
    assert_eq!(row(&task_table, &task_id)[1], "t1");

    let actions = server.table(&["action-execution-list", &task_id]);
    let action_row = row(&actions, "ID");
    assert_eq!(action_row[1], "Name");
    let action = server.json(&["action-execution-list", &task_id]);
    assert_eq!(action[0]["Name"], "std.async_noop");
    assert_eq!(action[0]["Accepted"], false);
    let action_id = action[0]["ID"].as_str().unwrap().to_string();
    let all = server.json(&["action-execution-list"]);
    assert_eq!(all[0]["ID"], action_id.as_str());

    let updated = server.json(&[
        "action-execution-update",
        &action_id,
        "--state",
        "SUCCESS",
        "--output",
        r#"{"x": 1}"#,
    ]);
    assert_eq!(updated["State"], "SUCCESS");
    assert_eq!(updated["Accepted"], true);

    let done = server.wait_for_state(&id, "SUCCESS");
    assert!(
        !done["Duration"].as_str().unwrap().ends_with("..."),
        "{done}"
    );
    let finished = server.json(&[
        "execution-list",
        "--workflow",
        "cl_async",
        "--state",
        "SUCCESS",
    ]);
    assert_eq!(finished[0]["ID"], id.as_str());
    let none = server.table(&["execution-list", "--state", "ERROR"]);
    assert_eq!(none, "", "no ERROR executions, no table");
    let t1 = server.json(&["task-get", &task_id]);
    assert_eq!(t1["State"], "SUCCESS");

    // A server fault is printed and the exit code says so.
    let missing = server.run(&["execution-get", "nope"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("WorkflowExecution not found [id=nope]")
    );

    // Workflow delete.
    let deleted = server.table(&["workflow-delete", "cl_async"]);
    assert!(deleted.contains("cl_async"), "{deleted}");
    assert!(!server.run(&["workflow-get", "cl_async"]).status.success());
}

/// The first task of execution `id`, once there is one.
fn first_task(server: &Serve, id: &str) -> Value {
    serve_support::first_task(id, |id| server.json(&["task-list", id]))
}

/// t1 waits for its result from outside (std.async_noop), so the pause
/// below always lands while t1 runs, however slow the machine.
const SLOW_WF: &str = r#"version: '2.0'
cl_slow:
  tasks:
    t1:
      action: std.async_noop
      on-success: t2
    t2:
      action: std.echo output=<% env().greeting %>
      publish:
        last: <% task().result %>
"#;

#[test]
fn client_pauses_resumes_and_updates_the_env_of_an_execution() {
    let server = serve();
    let file = server.file("slow.yaml", SLOW_WF);
    server.table(&["workflow-create", &file]);
    let env_file = server.file(
        "env.yaml",
        "name: cl_env\ndescription: for the test\nvariables:\n  greeting: hi\n",
    );
    let env = server.json(&["environment-create", &env_file]);
    assert_eq!(env["Name"], "cl_env");
    assert_eq!(env["Description"], "for the test");
    assert_eq!(env["Variables"], "{\n  \"greeting\": \"hi\"\n}");
    assert_eq!(env["Updated at"], Value::Null);
    let params = server.file("params.yaml", "env: cl_env\n");
    let execution = server.json(&[
        "execution-create",
        "cl_slow",
        "--params",
        &format!("@{params}"),
    ]);
    let id = execution["ID"].as_str().unwrap().to_string();

    let task_id = first_task(&server, &id)["ID"].as_str().unwrap().to_string();
    let action = server.json(&["action-execution-list", &task_id]);
    let action_id = action[0]["ID"].as_str().unwrap().to_string();

    let paused = server.json(&["execution-update", &id, "-s", "PAUSED"]);
    assert_eq!(paused["State"], "PAUSED");
    // t1's result arrives while paused: t1 ends, the execution stays paused.
    server.json(&["action-execution-update", &action_id, "--state", "SUCCESS"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.json(&["task-get", &task_id])["State"] != "SUCCESS" {
        assert!(Instant::now() < deadline, "t1 did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.json(&["execution-get", &id])["State"], "PAUSED");

    let resumed = server.table(&[
        "execution-update",
        &id,
        "-s",
        "RUNNING",
        "--env",
        r#"{"greeting": "bye"}"#,
    ]);
    // (t2 is quick: by the time bora answers it may have finished already)
    let state = row(&resumed, "State")[1];
    assert!(state == "RUNNING" || state == "SUCCESS", "{resumed}");
    server.wait_for_state(&id, "SUCCESS");
    let report = server.table(&["execution-report", &id]);
    assert!(report.contains("t2 SUCCESS"), "{report}");
}

const PARENT_WB: &str = r#"version: '2.0'
name: clwb
workflows:
  parent:
    tasks:
      first:
        action: std.echo output=1
        on-success: call
      call:
        workflow: child
        on-success: last
      last:
        action: std.echo output=3
  child:
    tasks:
      c1:
        action: std.echo output=2
        on-success: c2
      c2:
        action: std.noop
"#;

const FAILING_WF: &str = r#"version: '2.0'
cl_fail:
  tasks:
    ok:
      action: std.echo output=fine
      on-success: boom
    boom:
      action: std.fail
"#;

#[test]
fn client_waits_for_executions_and_reports_them_as_text_and_dot() {
    let server = serve();
    let workbook = server.json(&["workbook-create", &server.file("wb.yaml", PARENT_WB)]);
    assert_eq!(workbook["Name"], "clwb");
    assert_eq!(workbook["Tags"], "<none>");
    // --url may name the API with its /v2.
    let with_v2 = format!("{}/v2", server.base);
    let listed = server.json(&["workflow-list", "--url", &with_v2]);
    let mut names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["Name"].as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["clwb.child", "clwb.parent"]);

    // GIVEN a run with a sub-workflow, followed with --wait
    let out = server.run(&["execution-create", "clwb.parent", "--wait"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for task in ["first", "call", "last"] {
        assert!(stdout.contains(&format!("  {task} SUCCESS")), "{stdout}");
    }
    assert!(stdout.contains(" SUCCESS in "), "{stdout}");
    let id = stdout
        .split_whitespace()
        .nth(1)
        .expect("the first line names the execution")
        .to_string();

    // THEN the sub-workflow execution names its workflow, like Mistral
    let child_id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["Name"] == "clwb.child")
        .map(|w| w["ID"].clone())
        .unwrap();
    let children = server.json(&["execution-list", "--workflow", "clwb.child"]);
    assert_eq!(children[0]["Workflow ID"], child_id, "{children}");
    assert_eq!(children[0]["Root Execution ID"], id.as_str());

    // AND the text report nests the sub-workflow under the task that called it
    let text = server.table(&["execution-report", &id]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("clwb.parent "), "{text}");
    let call = lines
        .iter()
        .position(|l| l.starts_with("  call SUCCESS"))
        .expect(&text);
    assert!(lines[call + 1].starts_with("    clwb.child "), "{text}");
    assert!(lines[call + 2].starts_with("      c1 SUCCESS"), "{text}");
    assert!(lines[call + 3].starts_with("      c2 SUCCESS"), "{text}");
    assert!(lines[call + 4].starts_with("  last SUCCESS"), "{text}");

    // AND the dot report has one node per task, the edges between them and a cluster
    let dot = server.table(&["execution-report", &id, "--format", "dot"]);
    assert!(dot.starts_with("digraph "), "{dot}");
    assert_eq!(dot.matches("fillcolor=green").count(), 5, "{dot}");
    assert!(dot.contains("subgraph \"cluster_"), "{dot}");
    let tasks = server.json(&["task-list"]);
    let task_id = |name: &str| {
        tasks
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["Name"] == name)
            .and_then(|t| t["ID"].as_str())
            .unwrap()
            .to_string()
    };
    for (from, to) in [
        ("first", "call"),
        ("call", "last"),
        ("c1", "c2"),
        ("call", "c1"),
    ] {
        let edge = format!("\"{}\" -> \"{}\"", task_id(from), task_id(to));
        assert!(dot.contains(&edge), "no edge {from} -> {to} in {dot}");
    }
    assert_eq!(dot.matches(" -> ").count(), 4, "{dot}");

    // GIVEN a failing run followed with --wait
    server.table(&["workflow-create", &server.file("fail.yaml", FAILING_WF)]);
    let out = server.run(&["execution-create", "cl_fail", "--wait", "-f", "json"]);
    assert_eq!(out.status.code(), Some(1), "a failed execution exits 1");
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["State"], "ERROR");
    assert!(
        result["Output"]["result"]
            .as_str()
            .unwrap()
            .contains("boom"),
        "{result}"
    );
    let failed_id = result["ID"].as_str().unwrap();
    let text = server.table(&["execution-report", failed_id]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("  boom ERROR") && l.contains(" error: ")),
        "{text}"
    );
    let dot = server.table(&["execution-report", failed_id, "--format", "dot"]);
    assert!(
        dot.contains("fillcolor=red") && dot.contains("fillcolor=green"),
        "{dot}"
    );

    // AND task-rerun answers with the task (the rerun fails again)
    let boom = server.json(&["task-list", failed_id]);
    let boom_id = boom
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["Name"] == "boom")
        .and_then(|t| t["ID"].as_str())
        .unwrap()
        .to_string();
    let rerun = server.json(&["task-rerun", &boom_id]);
    assert_eq!(json!(rerun["Name"]), json!("boom"));
    assert_eq!(rerun["Workflow Execution ID"], failed_id);
}

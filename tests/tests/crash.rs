//! A worker process killed in the middle of a 50-task execution, started
//! again on the same database, finishes it: no task execution is duplicated
//! and no action that had completed runs again.

mod common;

use bora::engine::states::ExecutionState;
use bora::store::sqlite::SqliteDb;
use bora::store::{SqliteStore, Store};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The `bora` binary next to this test's executable (cargo builds both
/// into the same target directory), or `BORA_BIN`.
pub fn bora_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("BORA_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("bora");
    assert!(
        bin.exists(),
        "{} not found: build it first (cargo build -p bora-cli) or set BORA_BIN",
        bin.display()
    );
    bin
}

fn chain(n: usize) -> String {
    let mut yaml = String::from("version: '2.0'\nchain:\n  tasks:\n");
    for i in 1..=n {
        yaml.push_str(&format!(
            "    t{i}:\n      action: std.echo output={i} delay=0.04\n"
        ));
        if i < n {
            yaml.push_str(&format!("      on-success: t{}\n", i + 1));
        }
    }
    yaml
}

/// Action execution ids a log says finished (or started).
fn ids(log: &str, what: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(what))
        .filter_map(|l| l.split("action_execution_id=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_restarted_finishes_without_duplicates() {
    let dir = std::env::temp_dir().join(format!("bora-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("bora.db");
    let wf = dir.join("chain.yaml");
    std::fs::write(&wf, chain(50)).unwrap();
    let first_log = dir.join("first.log");

    // GIVEN a run of a 50-task chain (about 2 s of actions) ...
    let mut first = Command::new(bora_bin())
        .args([
            "run",
            wf.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--visibility-timeout",
            "1",
            "-q",
        ])
        .env("BORA_LOG", "bora=debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&first_log).unwrap())
        .spawn()
        .unwrap();
    // ... WHEN it is killed (SIGKILL) in the middle of it ...
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = std::fs::read_to_string(&first_log).unwrap_or_default();
        if ids(&log, "action finished").len() >= 15 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first run made no progress:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let first_log = std::fs::read_to_string(&first_log).unwrap();
    let finished_before: HashSet<String> = ids(&first_log, "action finished").into_iter().collect();
    assert!(
        finished_before.len() < 50,
        "killed too late to prove anything"
    );

    // ... and a worker is started again on the same database.
    let second = Command::new(bora_bin())
        .args([
            "worker",
            "--db",
            db.to_str().unwrap(),
            "--until-idle",
            "--visibility-timeout",
            "1",
        ])
        .env("BORA_LOG", "bora=debug")
        .output()
        .unwrap();
    assert!(second.status.success());
    let second_log = String::from_utf8_lossy(&second.stderr);

    // THEN the execution finished ...
    let store = SqliteStore::new(SqliteDb::open(&db).unwrap());
    assert_eq!(store.count_executions().unwrap(), 1);
    let tasks_by_exec = {
        let conn_store = store.clone();
        let execution_id = {
            // The only execution in the file.
            let any_task = second_log
                .lines()
                .chain(first_log.lines())
                .find_map(|l| l.split("action_execution_id=").nth(1).map(str::to_string));
            assert!(any_task.is_some());
            let action_id = any_task
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
            conn_store
                .get_action(&action_id)
                .await
                .unwrap()
                .execution_id
        };
        let execution = conn_store.get_execution(&execution_id).await.unwrap();
        assert_eq!(
            execution.state,
            ExecutionState::Success,
            "{:?}",
            execution.state_info
        );
        conn_store.list_tasks(&execution_id).await.unwrap()
    };
    // ... with each of the 50 tasks exactly once, each with one action
    // execution ...
    let mut per_name: HashMap<&str, usize> = HashMap::new();
    for t in &tasks_by_exec {
        *per_name.entry(t.name.as_str()).or_default() += 1;
        let actions = store.list_actions(&t.id).await.unwrap();
        assert_eq!(
            actions.len(),
            1,
            "task {} has {} action executions",
            t.name,
            actions.len()
        );
    }
    assert_eq!(per_name.len(), 50);
    assert!(per_name.values().all(|n| *n == 1), "{per_name:?}");
    // ... and no action that had finished before the kill ran again.
    let started_after: HashSet<String> = ids(&second_log, "action started").into_iter().collect();
    let rerun: Vec<&String> = started_after.intersection(&finished_before).collect();
    assert!(
        rerun.is_empty(),
        "actions that had completed ran again: {rerun:?}"
    );
    assert!(!started_after.is_empty(), "the second worker did the rest");
    let _ = std::fs::remove_dir_all(&dir);
}

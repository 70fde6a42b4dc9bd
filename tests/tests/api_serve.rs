//! The real `bora serve` binary: killed with SIGKILL in the middle of an
//! execution and restarted on the same database, it finishes the execution;
//! and a burst of 100 concurrent POSTs is served, none refused or reset.
//!
//! The binary is found through `BORA_BIN` (the test script sets it to
//! `$CARGO_TARGET_DIR/debug/bora` after `cargo build -p bora-cli`).

mod serve_support;

use serde_json::{Value, json};
use std::process::{Child, Command};
use std::time::Duration;

/// A `bora serve` process, killed when dropped (also when a test fails).
struct Running(Child);

impl Running {
    /// SIGKILL, and wait until it is gone.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `bora serve` on `listen` over `db`, up and answering; its base URL.
fn start(db: &std::path::Path, listen: &str) -> (Running, String) {
    let mut command = Command::new(serve_support::bora_bin());
    command
        .args(["serve", "--listen", listen, "--db"])
        .arg(db)
        .args(["--visibility-timeout", "1", "--workers", "2"]);
    let (child, base) = serve_support::spawn_serve(command, None);
    (Running(child), base)
}

#[tokio::test]
async fn killed_server_restarted_on_the_same_database_finishes_the_execution() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bora.db");
    let client = bora::http::client_builder().build().unwrap();

    // GIVEN a running execution of a chain of sleeping tasks (the server
    // picks its port; the restart below takes the same one back)
    let (mut server, base) = start(&db, "127.0.0.1:0");
    let mut wf = String::from("version: '2.0'\nchain:\n  tasks:\n");
    for i in 0..4 {
        wf.push_str(&format!(
            "    t{i}:\n      action: std.echo output={i} delay=0.5\n"
        ));
        if i < 3 {
            wf.push_str(&format!("      on-success: t{}\n", i + 1));
        }
    }
    let created = client
        .post(format!("{base}/v2/workflows"))
        .body(wf)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let execution: Value = client
        .post(format!("{base}/v2/executions"))
        .json(&json!({"workflow_name": "chain"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = execution["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before: Value = client
        .get(format!("{base}/v2/executions/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        before["state"], "RUNNING",
        "the kill must come mid-execution"
    );

    // WHEN the server is killed without warning and started again
    server.kill();
    let (mut server, _) = start(&db, base.trim_start_matches("http://"));
    // A new client: the old one's pooled connections died with the server.
    let client = bora::http::client_builder().build().unwrap();

    // THEN the execution completes
    let mut state = String::new();
    for _ in 0..300 {
        let e: Value = client
            .get(format!("{base}/v2/executions/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        state = e["state"].as_str().unwrap_or_default().to_string();
        if state != "RUNNING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill();
    assert_eq!(state, "SUCCESS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_100_concurrent_posts_is_served_without_a_refused_connection() {
    // The server picks its own port: this test runs beside the one above.
    let server = serve_support::serve();
    let base = server.base.clone();
    let client = bora::http::client_builder().build().unwrap();
    let created = client
        .post(format!("{base}/v2/workflows"))
        .body("version: '2.0'\nnoop1:\n  tasks:\n    t1:\n      action: std.noop\n")
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    // 100 POSTs at once, each on its own connection (as 100 clients would).
    let posts: Vec<_> = (0..100)
        .map(|_| {
            let base = base.clone();
            tokio::spawn(async move {
                let client = bora::http::client_builder().build().unwrap();
                client
                    .post(format!("{base}/v2/executions"))
                    .json(&json!({"workflow_name": "noop1"}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for post in posts {
        statuses.push(post.await.unwrap());
    }
    drop(server);
    let failed: Vec<_> = statuses.iter().filter(|s| *s != &Ok(201)).collect();
    assert!(
        failed.is_empty(),
        "{} of 100 failed: {failed:?}",
        failed.len()
    );
}

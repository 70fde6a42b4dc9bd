//! with-items at scale on the AWS backend: DynamoDB + SQS on the emulator
//! (moto, `scripts/aws/start-moto.sh`), through the real SDK clients.
//!
//! ```sh
//! source "$(scripts/aws/start-moto.sh /tmp/bench-moto)"
//! cargo run --release -p bora-tests --example bench_aws -- 10000 [workers]
//! ```
//!
//! Prints one JSON line: items, wall time, items per second, and checks the
//! execution ended in SUCCESS with the result of every item. The rate
//! measures moto, not bora or DynamoDB: moto copies all its tables on every
//! `TransactWriteItems` (to roll back), so each transaction costs time in
//! proportion to what is stored and a run grows quadratically (measured
//! here: 100 items in 11 s, 300 items in 257 s, moto at 100 % of a core,
//! bora's process at 1 s of CPU). A with-items of 100,000 is therefore out
//! of the emulator's reach; the run shows the with-items path (conditional
//! puts of the action items, the counted window, paged `item_results`)
//! completing on the DynamoDB store at the sizes moto can serve.

#[path = "../tests/common/aws.rs"]
#[allow(dead_code)]
mod aws;

use bora::actions::ActionRegistry;
use bora::engine::states::ExecutionState;
use bora::handlers::{CreateExecution, create_execution};
use bora::worker::{self, WorkerSettings};
use serde_json::json;
use std::time::{Duration, Instant};

const ITEMS: &str = "version: '2.0'
items:
  input: [n]
  tasks:
    t1:
      with-items: i in <% range($.n) %>
      concurrency: 200
      action: std.echo output=<% $.i %>
      publish:
        total: <% task().result.len() %>
        last: <% task().result.last() %>
  output:
    total: <% $.total %>
    last: <% $.last %>
";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().as_deref().unwrap_or("1000").parse()?;
    let workers: usize = args.next().as_deref().unwrap_or("16").parse()?;
    let backend = aws::AwsBackend::create(ActionRegistry::standard(), 6).await;
    let deps = backend.deps.clone();
    let (key, _) = deps.specs.put(deps.store.as_ref(), ITEMS).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let loop_ = tokio::spawn(worker::run(
        deps.clone(),
        WorkerSettings {
            workers,
            visibility_timeout: Duration::from_secs(300),
            ..WorkerSettings::default()
        },
        stopped,
    ));
    let started = Instant::now();
    let execution = create_execution(
        &deps,
        CreateExecution {
            definition_key: key,
            workflow_name: "items".into(),
            input: json!({"n": n}),
            ..CreateExecution::default()
        },
    )
    .await?;
    let done = loop {
        let e = deps.store.get_execution(&execution.id).await?;
        if e.state != ExecutionState::Running {
            break e;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let wall = started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let _ = loop_.await;
    anyhow::ensure!(
        done.state == ExecutionState::Success,
        "ended {}: {:?}",
        done.state,
        done.state_info
    );
    anyhow::ensure!(
        done.output == json!({"total": n, "last": n - 1}),
        "unexpected output {}",
        done.output
    );
    println!(
        "{}",
        json!({
            "backend": "dynamodb+sqs on moto",
            "items": n,
            "workers": workers,
            "wall_s": (wall * 10.0).round() / 10.0,
            "items_per_s": (n as f64 / wall * 10.0).round() / 10.0,
        })
    );
    Ok(())
}

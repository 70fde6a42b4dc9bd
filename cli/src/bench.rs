//! `bora bench`: the engine's benchmarks, on the embedded default, in this
//! process. Each prints one JSON line: wall time, this process's CPU
//! seconds, per-task or per-item cost and the peak resident memory (so run
//! one scenario per process to read its own peak).

use anyhow::{Context, bail};
use bora::embedded::Embedded;
use bora::engine::states::ExecutionState;
use bora::handlers::{CreateExecution, create_execution};
use bora::worker::{self, WorkerSettings};
use clap::{Args, ValueEnum};
use serde_json::json;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(Clone, Copy, ValueEnum)]
pub enum Scenario {
    /// A chain of N `std.noop` tasks.
    Chain,
    /// One task with-items over N `std.echo`.
    Items,
    /// N concurrent executions of a 3-task workflow.
    Concurrent,
    /// A chain of N `keystone.auth_projects` tasks on a target cloud given by
    /// TARGET_OS_AUTH_URL, TARGET_OS_USERNAME, TARGET_OS_PASSWORD,
    /// TARGET_OS_TENANT (and TARGET_OS_CA_CERT, TARGET_OS_*_DOMAIN_NAME),
    /// once without and once with a carried service catalog.
    Target,
}

#[derive(Args)]
pub struct BenchArgs {
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// Tasks, items or executions.
    #[arg(long, short, default_value_t = 50)]
    pub size: usize,
    /// Concurrent workers.
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
    /// SQLite file (default: a fresh file in the temp directory, removed after).
    #[arg(long)]
    pub db: Option<std::path::PathBuf>,
}

fn chain_yaml(n: usize) -> String {
    let mut yaml = String::from("version: '2.0'\nchain:\n  tasks:\n");
    for i in 1..=n {
        yaml.push_str(&format!("    t{i}:\n      action: std.noop\n"));
        if i < n {
            yaml.push_str(&format!("      on-success: t{}\n", i + 1));
        }
    }
    yaml
}

const ITEMS_YAML: &str = "version: '2.0'
items:
  input: [n]
  tasks:
    t1:
      with-items: i in <% range($.n) %>
      action: std.echo output=<% $.i %>
";

const THREE_YAML: &str = "version: '2.0'
three:
  tasks:
    t1:
      action: std.noop
      on-success: t2
    t2:
      action: std.echo output=two
      on-success: t3
    t3:
      action: std.noop
";

/// CPU seconds this process has run, summed over its threads from
/// /proc/self/task/*/schedstat (nanoseconds, unlike the 10 ms ticks of
/// /proc/self/stat, which are too coarse for a 50-task run).
fn cpu_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut nanos: u128 = 0;
    for task in tasks.flatten() {
        let text = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        nanos += text
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u128>().ok())
            .unwrap_or(0);
    }
    nanos as f64 / 1e9
}

/// Peak resident memory of this process in MiB (VmHWM).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn target_chain_yaml(n: usize) -> String {
    let mut yaml = String::from("version: '2.0'\nchain:\n  tasks:\n");
    for i in 1..=n {
        yaml.push_str(&format!(
            "    t{i}:\n      action: keystone.auth_projects\n"
        ));
        if i < n {
            yaml.push_str(&format!("      on-success: t{}\n", i + 1));
        }
    }
    yaml
}

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set (the target scenario needs it)"))
}

/// The target-cloud case: tasks per second, and Keystone requests per task
/// without a carried catalog (one) and with one (none).
async fn bench_target(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    use bora::secret::Secret;
    use bora::target::{KeystoneClient, TargetCloud};
    use std::sync::atomic::Ordering;
    let embedded = Embedded::open(":memory:", None)?;
    let deps = embedded.deps.clone();
    let ca_pem = match std::env::var("TARGET_OS_CA_CERT") {
        Ok(path) => Some(std::fs::read(&path).with_context(|| format!("reading {path}"))?),
        Err(_) => None,
    };
    let auth_url = env("TARGET_OS_AUTH_URL")?;
    let keystone = KeystoneClient::new(&auth_url, ca_pem.as_deref(), false, &deps.policy).await?;
    let domain = |name: &str| std::env::var(name).unwrap_or_else(|_| "Default".into());
    let (token, info) = keystone
        .password_auth(
            &env("TARGET_OS_USERNAME")?,
            &domain("TARGET_OS_USER_DOMAIN_NAME"),
            &Secret::new(env("TARGET_OS_PASSWORD")?),
            &env("TARGET_OS_TENANT")?,
            &domain("TARGET_OS_PROJECT_DOMAIN_NAME"),
        )
        .await?;
    let catalog = serde_json::to_value(&info.catalog)?;
    let (key, _) = deps
        .specs
        .put(deps.store.as_ref(), &target_chain_yaml(args.size))
        .await?;
    let (stop, stopped) = watch::channel(false);
    let workers = tokio::spawn(worker::run(
        deps.clone(),
        WorkerSettings {
            workers: args.workers,
            ..WorkerSettings::default()
        },
        stopped,
    ));
    for carried in [false, true] {
        let target = TargetCloud {
            auth_url: auth_url.clone(),
            token: token.clone(),
            ca_pem: ca_pem.clone(),
            insecure: false,
            catalog: carried.then(|| catalog.clone()),
            region: None,
            project_id: None,
            user_id: None,
            user_name: None,
            user_domain_name: None,
            project_domain_name: None,
        };
        let calls_before = bora::actions::openstack::KEYSTONE_CALLS.load(Ordering::Relaxed);
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        let e = create_execution(
            &deps,
            CreateExecution {
                definition_key: key.clone(),
                workflow_name: "chain".into(),
                target: Some(target),
                ..CreateExecution::default()
            },
        )
        .await?;
        let e = embedded.wait_for(&e.id, Duration::from_millis(1)).await?;
        if e.state != ExecutionState::Success {
            bail!("execution {} ended {}: {:?}", e.id, e.state, e.state_info);
        }
        let wall = started.elapsed().as_secs_f64();
        let calls = bora::actions::openstack::KEYSTONE_CALLS.load(Ordering::Relaxed) - calls_before;
        println!(
            "{}",
            json!({
                "scenario": "target-cloud chain",
                "catalog_carried": carried,
                "size": args.size,
                "wall_s": round(wall, 4),
                "cpu_s": round(cpu_seconds() - cpu_before, 3),
                "tasks_per_s": round(args.size as f64 / wall, 1),
                "keystone_requests_per_task": round(calls as f64 / args.size as f64, 2),
            })
        );
    }
    let _ = stop.send(true);
    let _ = workers.await;
    Ok(ExitCode::SUCCESS)
}

pub async fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if let Scenario::Target = args.scenario {
        return bench_target(&args).await;
    }
    let temp = std::env::temp_dir().join(format!("bora-bench-{}.db", std::process::id()));
    let path = args.db.clone().unwrap_or_else(|| temp.clone());
    let embedded = Embedded::open(&path, None)?;
    let deps = embedded.deps.clone();
    let (yaml, name, input, executions, units) = match args.scenario {
        Scenario::Chain => (chain_yaml(args.size), "chain", json!({}), 1, args.size),
        // The list is made by the workflow (`range`), so a 100,000-item run
        // does not hit the 256 KiB input limit.
        Scenario::Items => (
            ITEMS_YAML.to_string(),
            "items",
            json!({"n": args.size}),
            1,
            args.size,
        ),
        Scenario::Concurrent => (
            THREE_YAML.to_string(),
            "three",
            json!({}),
            args.size,
            args.size * 3,
        ),
        Scenario::Target => unreachable!("handled above"),
    };
    let (key, _) = deps.specs.put(deps.store.as_ref(), &yaml).await?;
    let (stop, stopped) = watch::channel(false);
    let workers = tokio::spawn(worker::run(
        deps.clone(),
        WorkerSettings {
            workers: args.workers,
            ..WorkerSettings::default()
        },
        stopped,
    ));
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let mut ids = Vec::with_capacity(executions);
    for _ in 0..executions {
        let e = create_execution(
            &deps,
            CreateExecution {
                definition_key: key.clone(),
                workflow_name: name.into(),
                input: input.clone(),
                ..CreateExecution::default()
            },
        )
        .await
        .context("creating the execution")?;
        ids.push(e.id);
    }
    for id in &ids {
        let e = embedded.wait_for(id, Duration::from_millis(1)).await?;
        if e.state != ExecutionState::Success {
            bail!("execution {id} ended {}: {:?}", e.state, e.state_info);
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let _ = stop.send(true);
    let _ = workers.await;
    let unit = match args.scenario {
        Scenario::Items => "item",
        _ => "task",
    };
    let report = json!({
        "scenario": match args.scenario {
            Scenario::Chain => "chain",
            Scenario::Items => "with-items",
            Scenario::Concurrent => "concurrent-executions",
            Scenario::Target => "target",
        },
        "size": args.size,
        "workers": args.workers,
        "wall_s": round(wall, 4),
        "cpu_s": round(cpu, 3),
        format!("{unit}s_per_s"): round(units as f64 / wall, 1),
        format!("wall_ms_per_{unit}"): round(wall * 1000.0 / units as f64, 4),
        format!("cpu_ms_per_{unit}"): round(cpu * 1000.0 / units as f64, 4),
        "executions_per_s": round(executions as f64 / wall, 1),
        "peak_rss_mib": round(peak_rss_mib(), 1),
    });
    println!("{report}");
    if args.db.is_none() {
        for suffix in ["", "-wal", "-shm", ".key"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", temp.display()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

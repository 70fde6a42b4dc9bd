//! `bora run` and `bora worker`.

use anyhow::{Context, bail};
use bora::embedded::Embedded;
use bora::engine::states::ExecutionState;
use bora::handlers::{CreateExecution, Event, EventSink, create_execution};
use bora::worker;
use bora::workflow;
use clap::Args;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

#[derive(Args)]
pub struct RunArgs {
    /// The workflow definition (YAML, Mistral v2).
    pub file: PathBuf,
    /// Input as JSON, or @FILE to read it from a file.
    #[arg(long, short)]
    pub input: Option<String>,
    /// Which workflow of the document to run (default: the first).
    #[arg(long, short)]
    pub workflow: Option<String>,
    /// SQLite database file (default: in memory, gone when bora exits).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Concurrent workers.
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
    /// Seconds a received message stays invisible before another worker may
    /// take it (how soon work of a crashed process is picked up again).
    #[arg(long, default_value_t = 900.0)]
    pub visibility_timeout: f64,
    /// Print only the output, no task lines.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct WorkerArgs {
    /// SQLite database file.
    #[arg(long)]
    pub db: PathBuf,
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
    #[arg(long, default_value_t = 900.0)]
    pub visibility_timeout: f64,
    /// Exit once no execution is RUNNING.
    #[arg(long)]
    pub until_idle: bool,
}

/// Prints tasks as they start and end, and wakes the waiter when an
/// execution finishes.
struct Printer {
    quiet: bool,
    started: Instant,
    progress: Mutex<HashMap<String, Instant>>,
    finished: Notify,
}

impl EventSink for Printer {
    fn event(&self, event: Event) {
        let t = self.started.elapsed().as_secs_f64();
        let mut err = std::io::stderr().lock();
        match event {
            Event::ExecutionFinished { .. } => {
                self.finished.notify_waiters();
            }
            _ if self.quiet => {}
            Event::TaskStarted { task, items, .. } => {
                let _ = match items {
                    Some(n) => writeln!(err, "{t:8.3}s  {task:<24} RUNNING  ({n} items)"),
                    None => writeln!(err, "{t:8.3}s  {task:<24} RUNNING"),
                };
            }
            Event::ItemsProgress {
                task, done, total, ..
            } => {
                // At most five lines a second per task, and the last one.
                let mut last = self.progress.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                let due = last
                    .get(&task)
                    .is_none_or(|at| now.duration_since(*at) >= Duration::from_millis(200));
                if due || done == total {
                    last.insert(task.clone(), now);
                    let _ = writeln!(err, "{t:8.3}s  {task:<24} items {done}/{total}");
                }
            }
            Event::TaskFinished {
                task,
                state,
                state_info,
                duration_ms,
                ..
            } => {
                let _ = writeln!(err, "{t:8.3}s  {task:<24} {state:<8} {duration_ms} ms");
                if let Some(info) = state_info {
                    for line in info.lines().take(5) {
                        let _ = writeln!(err, "             {line}");
                    }
                }
            }
        }
    }
}

fn read_input(input: Option<&str>) -> anyhow::Result<Value> {
    let Some(text) = input else {
        return Ok(Value::Object(Default::default()));
    };
    let text = match text.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading input file {path}"))?
        }
        None => text.to_string(),
    };
    let value: Value = serde_json::from_str(&text).context("--input is not valid JSON")?;
    if !value.is_object() {
        bail!("--input must be a JSON object, got {value}");
    }
    Ok(value)
}

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    if text.len() > workflow::MAX_DEFINITION_BYTES {
        bail!(
            "{} is {} bytes; the largest definition accepted is {} bytes",
            args.file.display(),
            text.len(),
            workflow::MAX_DEFINITION_BYTES
        );
    }
    let input = read_input(args.input.as_deref())?;
    let printer = Arc::new(Printer {
        quiet: args.quiet,
        started: Instant::now(),
        progress: Mutex::new(HashMap::new()),
        finished: Notify::new(),
    });
    let db_path = args.db.clone().unwrap_or_else(|| PathBuf::from(":memory:"));
    let mut embedded = Embedded::open(&db_path, Some(printer.clone()))?;
    let settings = embedded.worker_settings(args.workers, args.visibility_timeout);
    let deps = embedded.deps.clone();
    let doc = workflow::parse_document(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    workflow::check_references(&doc, &|a| deps.actions.get(a).is_some(), &|_| false)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    let (key, doc) = deps.specs.put(deps.store.as_ref(), &text).await?;
    let name = match &args.workflow {
        Some(name) => name.clone(),
        None => match doc.workflows.first() {
            Some(w) => w.name.clone(),
            None => bail!("{} defines no workflow", args.file.display()),
        },
    };
    let execution = create_execution(
        &deps,
        CreateExecution {
            definition_key: key,
            workflow_name: name,
            input,
            ..CreateExecution::default()
        },
    )
    .await?;
    let (stop, stopped) = watch::channel(false);
    let workers = tokio::spawn(worker::run(deps.clone(), settings, stopped));
    let execution = loop {
        let wake = printer.finished.notified();
        let current = embedded.wait_for(&execution.id, Duration::ZERO).await;
        match current {
            Ok(e) if e.state != ExecutionState::Running => break e,
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        let _ = tokio::time::timeout(Duration::from_millis(250), wake).await;
    };
    let _ = stop.send(true);
    let _ = workers.await;
    println!("{}", serde_json::to_string_pretty(&execution.output)?);
    if execution.state == ExecutionState::Success {
        if !args.quiet {
            eprintln!("execution {} SUCCESS", execution.id);
        }
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "execution {} {}{}",
            execution.id,
            execution.state,
            execution
                .state_info
                .map(|i| format!(": {i}"))
                .unwrap_or_default()
        );
        Ok(ExitCode::from(1))
    }
}

pub async fn worker(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let mut embedded = Embedded::open(&args.db, None)?;
    let settings = embedded.worker_settings(args.workers, args.visibility_timeout);
    let (stop, stopped) = watch::channel(false);
    let workers = tokio::spawn(worker::run(embedded.deps.clone(), settings, stopped));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                if args.until_idle && embedded.store.count_running()? == 0 {
                    break;
                }
            }
        }
    }
    let _ = stop.send(true);
    let _ = workers.await;
    Ok(ExitCode::SUCCESS)
}

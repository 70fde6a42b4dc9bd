//! `bora execution-report`: the task tree of an execution with
//! sub-workflows nested under the task that started them, as text or as a
//! Graphviz digraph. Built from `GET /v2/executions/{id}/report`, whose task
//! entries list their sub-workflow executions and (a bora addition) the
//! tasks that started them (`triggered_by`).

use super::format::{duration, first_line};
use super::{Api, Connection};
use clap::{Args, ValueEnum};
use serde_json::Value;
use std::fmt::Write;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Dot,
}

#[derive(Args)]
pub struct ReportArgs {
    pub id: String,
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReportFormat,
    #[command(flatten)]
    pub connection: Connection,
}

/// One workflow execution and its task executions.
struct Run {
    execution: Value,
    tasks: Vec<TaskNode>,
}

struct TaskNode {
    task: Value,
    /// Sub-workflow executions started by this task.
    children: Vec<Run>,
}

fn load<'a>(api: &'a Api, id: &'a str) -> Pin<Box<dyn Future<Output = anyhow::Result<Run>> + 'a>> {
    Box::pin(async move {
        let report = api.get(&format!("/executions/{id}/report")).await?;
        let execution = report["root_workflow_execution"].clone();
        let mut tasks = Vec::new();
        for task in execution["task_executions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let mut children = Vec::new();
            for child in task["workflow_executions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                let child_id = match &child {
                    Value::String(s) => s.clone(),
                    other => other["id"].as_str().unwrap_or_default().to_string(),
                };
                children.push(load(api, &child_id).await?);
            }
            tasks.push(TaskNode { task, children });
        }
        Ok(Run { execution, tasks })
    })
}

fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_default().to_string()
}

fn finished(state: &str) -> bool {
    matches!(state, "SUCCESS" | "ERROR" | "CANCELLED")
}

fn execution_duration(e: &Value) -> String {
    let end = finished(&text(e, "state"))
        .then(|| e["updated_at"].as_str())
        .flatten();
    duration(e["created_at"].as_str(), end)
}

fn task_duration(t: &Value) -> String {
    let start = t["started_at"].as_str().or(t["created_at"].as_str());
    duration(start, t["finished_at"].as_str())
}

pub async fn execution_report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.connection)?;
    let run = load(&api, &args.id).await?;
    let mut out = String::new();
    match args.format {
        ReportFormat::Text => write_text(&mut out, &run, 0),
        ReportFormat::Dot => {
            out.push_str(&format!(
                "digraph \"execution_{}\" {{\n",
                text(&run.execution, "id")
            ));
            out.push_str("  node [shape=box, style=\"rounded,filled\"];\n");
            write_dot(&mut out, &run, 1);
            out.push_str("}\n");
        }
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

fn write_text(out: &mut String, run: &Run, depth: usize) {
    let indent = "  ".repeat(depth);
    let e = &run.execution;
    let mut line = format!(
        "{indent}{} {} {} {}",
        text(e, "name"),
        text(e, "id"),
        text(e, "state"),
        execution_duration(e)
    );
    if let Some(info) = e["state_info"].as_str() {
        let _ = write!(line, " error: {}", first_line(info));
    }
    let _ = writeln!(out, "{}", line.trim_end());
    for node in &run.tasks {
        let t = &node.task;
        let mut line = format!(
            "{indent}  {} {} {}",
            text(t, "name"),
            text(t, "state"),
            task_duration(t)
        );
        if let Some(info) = t["state_info"].as_str() {
            let _ = write!(line, " error: {}", first_line(info));
        }
        let _ = writeln!(out, "{}", line.trim_end());
        for child in &node.children {
            write_text(out, child, depth + 2);
        }
    }
}

fn colour(state: &str) -> &'static str {
    match state {
        "SUCCESS" => "green",
        "ERROR" => "red",
        "RUNNING" => "yellow",
        _ => "grey",
    }
}

/// A DOT string literal.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn write_dot(out: &mut String, run: &Run, depth: usize) {
    let indent = "  ".repeat(depth);
    for node in &run.tasks {
        let t = &node.task;
        let label = format!(
            "{}\\n{}\\n{}",
            text(t, "name").replace('"', "\\\""),
            text(t, "state"),
            task_duration(t)
        );
        let _ = writeln!(
            out,
            "{indent}{} [label=\"{label}\", fillcolor={}];",
            quoted(&text(t, "id")),
            colour(&text(t, "state"))
        );
    }
    for node in &run.tasks {
        for source in node.task["triggered_by"].as_array().into_iter().flatten() {
            if let Some(source) = source.as_str() {
                let _ = writeln!(
                    out,
                    "{indent}{} -> {};",
                    quoted(source),
                    quoted(&text(&node.task, "id"))
                );
            }
        }
    }
    for node in &run.tasks {
        for child in &node.children {
            let e = &child.execution;
            let _ = writeln!(
                out,
                "{indent}subgraph {} {{",
                quoted(&format!("cluster_{}", text(e, "id")))
            );
            let _ = writeln!(
                out,
                "{indent}  label={};",
                quoted(&format!("{} ({})", text(e, "name"), text(e, "state")))
            );
            let _ = writeln!(
                out,
                "{indent}  style=filled; fillcolor=white; color={};",
                colour(&text(e, "state"))
            );
            write_dot(out, child, depth + 1);
            let _ = writeln!(out, "{indent}}}");
            // The task that started the sub-workflow leads to its first tasks.
            for first in child.tasks.iter().filter(|c| {
                c.task["triggered_by"]
                    .as_array()
                    .is_none_or(|a| a.is_empty())
            }) {
                let _ = writeln!(
                    out,
                    "{indent}{} -> {} [style=dashed];",
                    quoted(&text(&node.task, "id")),
                    quoted(&text(&first.task, "id"))
                );
            }
        }
    }
}

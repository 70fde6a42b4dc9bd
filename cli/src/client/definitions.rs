//! Workflows, workbooks and environments.

use super::format::{self, field, tags};
use super::{Api, Body, Common, query};
use anyhow::{Context, bail};
use clap::Args;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct WorkflowCreate {
    /// The YAML file (one or more workflows).
    pub file: PathBuf,
    #[arg(long, default_value = "")]
    pub namespace: String,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct WorkflowList {
    #[arg(long)]
    pub limit: Option<u32>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct NamedArgs {
    /// Name or id.
    pub name: String,
    #[arg(long, default_value = "")]
    pub namespace: String,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct FileArgs {
    pub file: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

const WORKFLOW_COLUMNS: [&str; 9] = [
    "ID",
    "Name",
    "Namespace",
    "Project ID",
    "Tags",
    "Input",
    "Scope",
    "Created at",
    "Updated at",
];

fn workflow_row(w: &Value) -> Vec<Value> {
    vec![
        field(w, "id"),
        field(w, "name"),
        field(w, "namespace"),
        field(w, "project_id"),
        tags(w),
        field(w, "input"),
        field(w, "scope"),
        field(w, "created_at"),
        field(w, "updated_at"),
    ]
}

fn read(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

pub async fn workflow_create(args: WorkflowCreate) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.common.connection)?;
    let answer = api
        .send(
            Method::POST,
            &format!(
                "/workflows?{}",
                query(&[("scope", "private"), ("namespace", &args.namespace)])
            ),
            Body::Text(read(&args.file)?),
        )
        .await?;
    let rows = answer["workflows"]
        .as_array()
        .map(|ws| ws.iter().map(workflow_row).collect())
        .unwrap_or_default();
    format::list(args.common.format, &WORKFLOW_COLUMNS, rows);
    Ok(ExitCode::SUCCESS)
}

pub async fn workflow_list(args: WorkflowList) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.common.connection)?;
    let limit = args.limit.map(|l| l.to_string());
    let mut pairs = vec![("sort_keys", "created_at"), ("sort_dirs", "asc")];
    if let Some(l) = &limit {
        pairs.push(("limit", l));
    }
    let answer = api.get(&format!("/workflows?{}", query(&pairs))).await?;
    let rows = answer["workflows"]
        .as_array()
        .map(|ws| ws.iter().map(workflow_row).collect())
        .unwrap_or_default();
    format::list(args.common.format, &WORKFLOW_COLUMNS, rows);
    Ok(ExitCode::SUCCESS)
}

pub async fn workflow_get(args: NamedArgs) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.common.connection)?;
    let w = api
        .get(&format!(
            "/workflows/{}?{}",
            args.name,
            query(&[("namespace", &args.namespace)])
        ))
        .await?;
    format::show(
        args.common.format,
        WORKFLOW_COLUMNS.into_iter().zip(workflow_row(&w)).collect(),
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn workflow_delete(args: NamedArgs) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.common.connection)?;
    api.send(
        Method::DELETE,
        &format!(
            "/workflows/{}?{}",
            args.name,
            query(&[("namespace", &args.namespace)])
        ),
        Body::Empty,
    )
    .await?;
    println!(
        "Request to delete workflow {} has been accepted.",
        args.name
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn workbook_create(args: FileArgs) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.common.connection)?;
    let wb = api
        .send(
            Method::POST,
            &format!(
                "/workbooks?{}",
                query(&[("scope", "private"), ("namespace", "")])
            ),
            Body::Text(read(&args.file)?),
        )
        .await?;
    format::show(
        args.common.format,
        vec![
            ("Name", field(&wb, "name")),
            ("Namespace", field(&wb, "namespace")),
            ("Tags", tags(&wb)),
            ("Scope", field(&wb, "scope")),
            ("Created at", field(&wb, "created_at")),
            ("Updated at", field(&wb, "updated_at")),
        ],
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn environment_create(args: FileArgs) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.common.connection)?;
    let text = read(&args.file)?;
    let document: Value = serde_yaml_ng::from_str(&text)
        .with_context(|| format!("{} is not YAML or JSON", args.file.display()))?;
    let Some(name) = document.get("name").and_then(Value::as_str) else {
        bail!("{}: 'name' is missing", args.file.display());
    };
    let variables = document.get("variables").cloned().unwrap_or(json!({}));
    let mut body = json!({
        "name": name,
        "variables": variables.to_string(),
        "scope": document.get("scope").and_then(Value::as_str).unwrap_or("private"),
    });
    if let Some(d) = document.get("description") {
        body["description"] = d.clone();
    }
    let env = api
        .send(Method::POST, "/environments", Body::Json(body))
        .await?;
    let variables = super::decoded(&field(&env, "variables"));
    format::show(
        args.common.format,
        vec![
            ("Name", field(&env, "name")),
            ("Description", field(&env, "description")),
            (
                "Variables",
                Value::String(serde_json::to_string_pretty(&variables).unwrap_or_default()),
            ),
            ("Scope", field(&env, "scope")),
            ("Created at", field(&env, "created_at")),
            ("Updated at", field(&env, "updated_at")),
        ],
    );
    Ok(ExitCode::SUCCESS)
}

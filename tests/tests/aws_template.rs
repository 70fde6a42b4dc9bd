//! `template.yaml` (AWS SAM) checked offline: `sam validate --lint` and
//! `cfn-lint` from the venv `scripts/aws/start-moto.sh` prepares (named by
//! `BORA_AWS_VENV`), plus our own check that every `!Ref`, `!GetAtt` and
//! `${...}` in `!Sub` names a resource, a parameter or a pseudo parameter
//! (neither tool catches a dangling one inside SAM resources), and that the
//! functions are named exactly like their crates.

use serde_yaml_ng::Value;
use serde_yaml_ng::value::TaggedValue;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn template() -> Value {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

fn venv_tool(name: &str) -> PathBuf {
    let venv = std::env::var("BORA_AWS_VENV").expect(
        "BORA_AWS_VENV is not set: run scripts/aws/start-moto.sh and source its env file \
         (scripts/test does this)",
    );
    Path::new(&venv).join("bin").join(name)
}

fn run_tool(name: &str, args: &[&str]) {
    let output = Command::new(venv_tool(name))
        .args(args)
        .current_dir(root())
        .env("SAM_CLI_TELEMETRY", "0")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    assert!(
        output.status.success(),
        "{name} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn sam_validate_lint_accepts_the_template() {
    run_tool(
        "sam",
        &[
            "validate",
            "--lint",
            "--region",
            "us-east-1",
            "-t",
            "template.yaml",
        ],
    );
}

#[test]
fn cfn_lint_accepts_the_template() {
    run_tool("cfn-lint", &["template.yaml"]);
}

/// Every name a `!Ref`, `!GetAtt` or `!Sub` uses, with where it is used.
fn references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Tagged(tagged) => {
            let TaggedValue { tag, value } = tagged.as_ref();
            let tag = tag.to_string();
            let tag = tag.trim_start_matches('!');
            match (tag, value) {
                ("Ref", Value::String(name)) => found.push(name.clone()),
                ("GetAtt", Value::String(path)) => {
                    found.push(path.split('.').next().unwrap().to_string())
                }
                ("GetAtt", Value::Sequence(parts)) => {
                    if let Some(Value::String(name)) = parts.first() {
                        found.push(name.clone());
                    }
                }
                ("Sub", Value::String(text)) => sub_references(text, &[], found),
                ("Sub", Value::Sequence(parts)) => {
                    let locals: Vec<String> = match parts.get(1) {
                        Some(Value::Mapping(m)) => m
                            .keys()
                            .filter_map(|k| k.as_str().map(str::to_string))
                            .collect(),
                        _ => vec![],
                    };
                    if let Some(Value::String(text)) = parts.first() {
                        sub_references(text, &locals, found);
                    }
                    for part in parts.iter().skip(1) {
                        references(part, found);
                    }
                }
                _ => references(value, found),
            }
        }
        Value::Sequence(items) => items.iter().for_each(|v| references(v, found)),
        Value::Mapping(map) => map.values().for_each(|v| references(v, found)),
        _ => {}
    }
}

fn sub_references(text: &str, locals: &[String], found: &mut Vec<String>) {
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = after[..end].split('.').next().unwrap().to_string();
        if !name.starts_with('!') && !locals.contains(&name) {
            found.push(name);
        }
        rest = &after[end + 1..];
    }
}

#[test]
fn every_ref_getatt_and_sub_names_something_that_exists() {
    let template = template();
    let mut known: HashSet<String> = HashSet::new();
    for section in ["Resources", "Parameters"] {
        if let Some(Value::Mapping(map)) = template.get(section) {
            known.extend(map.keys().filter_map(|k| k.as_str().map(str::to_string)));
        }
    }
    let mut found = Vec::new();
    references(&template, &mut found);
    assert!(
        found.len() > 20,
        "the walk found too few references: {found:?}"
    );
    let dangling: Vec<&String> = found
        .iter()
        .filter(|name| !known.contains(*name) && !name.starts_with("AWS::"))
        .collect();
    assert!(dangling.is_empty(), "dangling references: {dangling:?}");
}

#[test]
fn functions_are_named_like_their_crates_and_report_batch_failures() {
    let template = template();
    let resources = template.get("Resources").unwrap().as_mapping().unwrap();
    let mut binaries = Vec::new();
    for (_, resource) in resources {
        if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let metadata = resource.get("Metadata").unwrap();
        assert_eq!(
            metadata.get("BuildMethod").and_then(Value::as_str),
            Some("rust-cargolambda")
        );
        let binary = metadata["BuildProperties"]["Binary"]
            .as_str()
            .unwrap()
            .to_string();
        let manifest = root().join("functions").join(&binary).join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest)
            .unwrap_or_else(|_| panic!("no crate for function {binary}"));
        assert!(text.contains(&format!("name = \"{binary}\"")));
        if let Some(Value::Mapping(events)) = resource["Properties"].get("Events") {
            for event in events.values() {
                if event.get("Type").and_then(Value::as_str) == Some("SQS") {
                    let types = &event["Properties"]["FunctionResponseTypes"];
                    assert_eq!(types[0].as_str(), Some("ReportBatchItemFailures"));
                }
                if event.get("Type").and_then(Value::as_str) == Some("HttpApi") {
                    // The default route: every API path reaches the router.
                    let properties = &event["Properties"];
                    assert!(
                        properties.get("Path").is_none() && properties.get("Method").is_none(),
                        "{binary}: the HttpApi event must be the default route, not {properties:?}"
                    );
                }
            }
        }
        binaries.push(binary);
    }
    binaries.sort();
    assert_eq!(binaries, ["complete-task", "create-execution", "run-task"]);
}

#[test]
fn terraform_declares_the_same_resources_with_the_same_names() {
    let infra = ["main.tf", "variables.tf", "outputs.tf"]
        .iter()
        .map(|f| std::fs::read_to_string(root().join("infra").join(f)).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let template = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    // The names both give their resources (the stack name as prefix).
    for (sam, terraform) in [
        ("${AWS::StackName}-bora", "${var.stack_name}-bora"),
        ("${AWS::StackName}-dlq", "${var.stack_name}-dlq"),
        ("${AWS::StackName}-run-task", "${var.stack_name}-run-task"),
        (
            "${AWS::StackName}-complete-task",
            "${var.stack_name}-complete-task",
        ),
        ("${AWS::StackName}-create-execution", "\"create-execution\""),
        ("${AWS::StackName}-run-task", "\"run-task\""),
        ("${AWS::StackName}-complete-task", "\"complete-task\""),
        ("by-project-state", "by-project-state"),
        ("expires_at", "expires_at"),
        ("ReportBatchItemFailures", "ReportBatchItemFailures"),
        ("provided.al2023", "provided.al2023"),
        ("arm64", "arm64"),
        // create-execution serves every route.
        ("Type: HttpApi", "route_key = \"$default\""),
    ] {
        assert!(template.contains(sam), "template.yaml lacks {sam}");
        assert!(infra.contains(terraform), "infra/ lacks {terraform}");
    }
    // The same configuration reaches the functions.
    for variable in [
        "BORA_TABLE",
        "BORA_RUN_TASK_QUEUE_URL",
        "BORA_COMPLETE_TASK_QUEUE_URL",
        "BORA_KMS_KEY_ID",
        "BORA_HOME_CLOUD_URL",
        "BORA_FINISHED_TTL_DAYS",
        "BORA_MAX_RECEIVE_COUNT",
        "BORA_ACTION_LEASE_SECONDS",
    ] {
        assert!(
            template.contains(variable),
            "template.yaml lacks {variable}"
        );
        assert!(infra.contains(variable), "infra/ lacks {variable}");
    }
    for variable in ["region", "memory_size", "home_cloud_url"] {
        assert!(
            infra.contains(&format!("variable \"{variable}\"")),
            "infra/ lacks variable {variable}"
        );
    }
}

/// The IAM actions `template.yaml` grants a function (`AWS::Serverless::Function`
/// named by its `BuildProperties.Binary`), and CloudWatch Logs aside.
fn sam_actions(template: &Value, binary: &str) -> HashSet<String> {
    let resources = template["Resources"].as_mapping().unwrap();
    let function = resources
        .values()
        .find(|r| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary))
        .unwrap_or_else(|| panic!("no function for {binary}"));
    let mut actions = HashSet::new();
    for policy in function["Properties"]["Policies"].as_sequence().unwrap() {
        for statement in policy["Statement"].as_sequence().unwrap() {
            match &statement["Action"] {
                Value::String(one) => {
                    actions.insert(one.clone());
                }
                Value::Sequence(many) => {
                    actions.extend(many.iter().filter_map(|a| a.as_str().map(String::from)));
                }
                other => panic!("unexpected Action {other:?}"),
            }
        }
    }
    actions
}

/// The IAM actions `infra/main.tf` grants a function: the quoted
/// `service:Action` strings of its entry in `local.policies`, with the
/// `local.*` lists it names expanded.
fn terraform_actions(main_tf: &str, function: &str) -> HashSet<String> {
    let quoted = |text: &str| -> Vec<String> {
        text.split('"')
            .skip(1)
            .step_by(2)
            .filter(|s| {
                s.split_once(':').is_some_and(|(service, action)| {
                    !service.is_empty()
                        && service.chars().all(|c| c.is_ascii_lowercase())
                        && action
                            .chars()
                            .next()
                            .is_some_and(|c| c.is_ascii_uppercase())
                })
            })
            .map(String::from)
            .collect()
    };
    let start = main_tf
        .find(&format!("\"{function}\" = ["))
        .unwrap_or_else(|| panic!("infra/main.tf has no policies for {function}"));
    let block = &main_tf[start..];
    let block = &block[..block.find("\n    ]").unwrap()];
    let mut actions: HashSet<String> = quoted(block).into_iter().collect();
    for local in ["table_actions", "consume"] {
        if block.contains(&format!("local.{local}")) {
            let line = main_tf
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{local} ")))
                .unwrap();
            actions.extend(quoted(line));
        }
    }
    actions
}

#[test]
fn sam_and_terraform_grant_each_function_the_same_actions() {
    let template = template();
    let main_tf = std::fs::read_to_string(root().join("infra/main.tf")).unwrap();
    for function in ["create-execution", "run-task", "complete-task"] {
        let sam = sam_actions(&template, function);
        let terraform = terraform_actions(&main_tf, function);
        assert!(!sam.is_empty(), "{function}: no actions in template.yaml");
        assert_eq!(sam, terraform, "{function}: template.yaml vs infra/main.tf");
    }
    // Least privilege where it matters: only the API deletes, only
    // create-execution makes data keys, only run-task opens them.
    assert!(sam_actions(&template, "create-execution").contains("dynamodb:DeleteItem"));
    assert!(!sam_actions(&template, "run-task").contains("dynamodb:DeleteItem"));
    assert!(
        !sam_actions(&template, "complete-task")
            .iter()
            .any(|a| a.starts_with("kms:"))
    );
    assert!(!sam_actions(&template, "run-task").contains("kms:GenerateDataKey"));
}

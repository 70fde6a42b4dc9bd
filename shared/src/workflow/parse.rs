//! YAML text -> [`Document`]: the hand-written walk over the YAML tree.
//!
//! We parse into a generic `serde_yaml_ng::Value` first and then walk it by
//! hand (instead of deriving `Deserialize`) so that every error can name
//! exactly where it is: `workflow 'wf1', task 't2', key 'on-success'`.
//! Nothing here panics on user input and recursion over user data is bounded
//! by [`MAX_DEPTH`] (graph walks are iterative).

use super::params::{parse_params, split_name_and_params};
use super::spec::*;
use super::{MAX_DEFINITION_BYTES, ParseError};
use crate::expr::{Data, Template, contains_expression};
use serde_json::{Map, Value};
use serde_yaml_ng::{Mapping, Value as Y};
use std::collections::{HashMap, HashSet};

/// Deepest nesting of YAML values we convert. The YAML parser has its own
/// limit; this one keeps our own recursion bounded whatever it lets through.
const MAX_DEPTH: usize = 128;

const ENGINE_COMMANDS: [&str; 4] = ["noop", "fail", "succeed", "pause"];

const WORKFLOW_KEYS: &[&str] = &[
    "type",
    "description",
    "tags",
    "input",
    "output",
    "output-on-error",
    "vars",
    "task-defaults",
    "tasks",
];

const TASK_KEYS: &[&str] = &[
    "description",
    "action",
    "workflow",
    "input",
    "publish",
    "publish-on-error",
    "on-success",
    "on-error",
    "on-complete",
    "join",
    "with-items",
    "concurrency",
    "retry",
    "wait-before",
    "wait-after",
    "timeout",
    "pause-before",
    "keep-result",
    "fail-on",
    "requires",
    "safe-rerun",
    "target",
];

const DEFAULTS_KEYS: &[&str] = &[
    "on-success",
    "on-error",
    "on-complete",
    "retry",
    "wait-before",
    "wait-after",
    "timeout",
    "pause-before",
    "concurrency",
    "safe-rerun",
    "requires",
];

/// Keys that only make sense in one workflow type (Mistral's direct and
/// reverse task schemas differ exactly here).
const DIRECT_ONLY: &[&str] = &["on-success", "on-error", "on-complete", "join"];
const REVERSE_ONLY: &[&str] = &["requires"];

const ACTION_KEYS: &[&str] = &[
    "base",
    "base-input",
    "input",
    "output",
    "description",
    "tags",
];

fn err(location: impl Into<String>, message: impl Into<String>) -> ParseError {
    ParseError {
        location: location.into(),
        message: message.into(),
    }
}

/// `prefix, key 'k'`: the location of one key inside `prefix`.
fn at_key(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        format!("key '{key}'")
    } else {
        format!("{prefix}, key '{key}'")
    }
}

/// A short description of a YAML value's kind, for error messages.
fn kind(v: &Y) -> &'static str {
    match v {
        Y::Null => "null",
        Y::Bool(_) => "a boolean",
        Y::Number(_) => "a number",
        Y::String(_) => "a string",
        Y::Sequence(_) => "a list",
        Y::Mapping(_) => "a map",
        Y::Tagged(_) => "a tagged value",
    }
}

fn data(v: &Value, loc: &str) -> Result<Data, ParseError> {
    Data::compile(v).map_err(|e| err(loc, e.to_string()))
}

fn template(s: &str, loc: &str) -> Result<Template, ParseError> {
    Template::parse(s).map_err(|e| err(loc, e.to_string()))
}

/// Structural keys (names, keywords) must be strings.
fn key_str<'a>(k: &'a Y, loc: &str) -> Result<&'a str, ParseError> {
    match k {
        Y::String(s) => Ok(s),
        other => Err(err(
            loc,
            format!("keys must be strings, got {}", kind(other)),
        )),
    }
}

fn as_map<'a>(v: &'a Y, loc: &str, what: &str) -> Result<&'a Mapping, ParseError> {
    match v {
        Y::Mapping(m) => Ok(m),
        other => Err(err(
            loc,
            format!("{what} must be a map, got {}", kind(other)),
        )),
    }
}

fn as_str<'a>(v: &'a Y, loc: &str) -> Result<&'a str, ParseError> {
    match v {
        Y::String(s) => Ok(s),
        other => Err(err(loc, format!("expected a string, got {}", kind(other)))),
    }
}

fn as_bool(v: &Y, loc: &str) -> Result<bool, ParseError> {
    match v {
        Y::Bool(b) => Ok(*b),
        other => Err(err(
            loc,
            format!("expected true or false, got {}", kind(other)),
        )),
    }
}

/// Check that every key of `map` is a string among `allowed`.
fn check_keys(map: &Mapping, allowed: &[&str], loc: &str) -> Result<(), ParseError> {
    for k in map.keys() {
        let k = key_str(k, loc)?;
        if !allowed.contains(&k) {
            return Err(err(
                loc,
                format!(
                    "unknown key '{k}' (expected one of: {})",
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Convert a YAML value to JSON. Non-string scalar keys become strings (as
/// in Mistral, where YAML is loaded into Python dicts and sent as JSON);
/// tags are dropped.
pub(crate) fn to_json(v: &Y, loc: &str) -> Result<Value, ParseError> {
    to_json_at(v, loc, 0)
}

fn to_json_at(v: &Y, loc: &str, depth: usize) -> Result<Value, ParseError> {
    if depth > MAX_DEPTH {
        return Err(err(loc, format!("nested deeper than {MAX_DEPTH} levels")));
    }
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(*b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| err(loc, format!("number {n} cannot be represented")))?
            }
        }
        Y::String(s) => Value::String(s.clone()),
        Y::Sequence(items) => Value::Array(
            items
                .iter()
                .map(|i| to_json_at(i, loc, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s.clone(),
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    Y::Null => "null".to_string(),
                    other => {
                        return Err(err(
                            loc,
                            format!("map keys must be scalars, got {}", kind(other)),
                        ));
                    }
                };
                out.insert(key, to_json_at(v, loc, depth + 1)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => to_json_at(&t.value, loc, depth + 1)?,
    })
}

/// Size check, YAML parse, top-level map, `version: '2.0'`.
fn load(yaml: &str) -> Result<Mapping, ParseError> {
    if yaml.len() > MAX_DEFINITION_BYTES {
        return Err(err(
            "document",
            format!(
                "definition is {} bytes, larger than the limit of {} bytes",
                yaml.len(),
                MAX_DEFINITION_BYTES
            ),
        ));
    }
    let root: Y = serde_yaml_ng::from_str(yaml).map_err(|e| {
        let location = match e.location() {
            Some(l) => format!("line {} column {}", l.line(), l.column()),
            None => "document".to_string(),
        };
        // The YAML error text repeats the position; keep only the reason.
        let text = e.to_string();
        let message = match text.find(" at line ") {
            Some(i) => text[..i].to_string(),
            None => text,
        };
        err(location, format!("invalid YAML: {message}"))
    })?;
    let root = match root {
        Y::Mapping(m) => m,
        other => {
            return Err(err(
                "document",
                format!("the document must be a map, got {}", kind(&other)),
            ));
        }
    };
    match root.get("version") {
        None => {
            return Err(err("document", "missing key 'version' (expected '2.0')"));
        }
        Some(Y::String(s)) if s.trim() == "2.0" => {}
        Some(Y::Number(n)) if n.as_f64() == Some(2.0) => {}
        Some(other) => {
            let shown = match other {
                Y::String(s) => s.clone(),
                Y::Number(n) => n.to_string(),
                o => kind(o).to_string(),
            };
            return Err(err(
                "key 'version'",
                format!("unsupported version '{shown}' (expected '2.0')"),
            ));
        }
    }
    Ok(root)
}

/// Parse a whole document: plain workflows, or a workbook.
pub(crate) fn parse_document(yaml: &str) -> Result<Document, ParseError> {
    let root = load(yaml)?;
    // A workbook is told apart by a string `name`: in a plain document
    // every key but `version` is a workflow, whose body is a map.
    if matches!(root.get("name"), Some(Y::String(_))) {
        return parse_workbook(&root);
    }
    let mut doc = Document {
        workbook_name: None,
        description: None,
        tags: Vec::new(),
        workflows: Vec::new(),
        actions: Vec::new(),
    };
    for (k, v) in &root {
        let name = key_str(k, "document")?;
        match (name, v) {
            ("version", _) => {}
            // A string `description` describes the document; a workflow
            // called `description` would have a map body.
            ("description", Y::String(s)) => doc.description = Some(s.clone()),
            _ => doc.workflows.push(parse_workflow(name, v)?),
        }
    }
    if doc.workflows.is_empty() {
        return Err(err("document", "no workflow defined"));
    }
    Ok(doc)
}

/// Parse an actions document (`POST /v2/actions`): every key but `version`
/// is an ad-hoc action.
pub(crate) fn parse_actions(yaml: &str) -> Result<Vec<AdHocActionSpec>, ParseError> {
    let root = load(yaml)?;
    let mut out = Vec::new();
    for (k, v) in &root {
        let name = key_str(k, "document")?;
        if name == "version" {
            continue;
        }
        check_name(name, &format!("action '{name}'"))?;
        out.push(parse_action(name, v)?);
    }
    if out.is_empty() {
        return Err(err("document", "no action defined"));
    }
    Ok(out)
}

/// Workflow, workbook and action names: like action names in Mistral
/// (letters, digits, `_`, `-`, `.`), which also keeps them usable in URLs.
fn check_name(name: &str, loc: &str) -> Result<(), ParseError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(err(
            loc,
            format!("invalid name '{name}': use letters, digits, '.', '_' and '-'"),
        ));
    }
    Ok(())
}

fn parse_tags(v: &Y, loc: &str) -> Result<Vec<String>, ParseError> {
    let Y::Sequence(items) = v else {
        return Err(err(
            loc,
            format!("expected a list of strings, got {}", kind(v)),
        ));
    };
    // Sets keep duplicate checks linear: a 1 MiB document can hold a lot.
    let mut seen: HashSet<&str> = HashSet::new();
    let mut tags: Vec<String> = Vec::new();
    for item in items {
        let t = as_str(item, loc)?;
        if !seen.insert(t) {
            return Err(err(loc, format!("duplicate tag '{t}'")));
        }
        tags.push(t.to_string());
    }
    Ok(tags)
}

fn parse_workbook(root: &Mapping) -> Result<Document, ParseError> {
    check_keys(
        root,
        &[
            "version",
            "name",
            "description",
            "tags",
            "workflows",
            "actions",
        ],
        "workbook",
    )?;
    let wb = match root.get("name") {
        Some(Y::String(s)) => s.clone(),
        _ => return Err(err("workbook", "missing key 'name'")),
    };
    let loc = format!("workbook '{wb}'");
    check_name(&wb, &at_key(&loc, "name"))?;
    let mut doc = Document {
        workbook_name: Some(wb.clone()),
        description: None,
        tags: Vec::new(),
        workflows: Vec::new(),
        actions: Vec::new(),
    };
    if let Some(v) = root.get("description") {
        doc.description = Some(as_str(v, &at_key(&loc, "description"))?.to_string());
    }
    if let Some(v) = root.get("tags") {
        doc.tags = parse_tags(v, &at_key(&loc, "tags"))?;
    }
    if let Some(v) = root.get("actions") {
        let kloc = at_key(&loc, "actions");
        for (k, body) in as_map(v, &kloc, "'actions'")? {
            let short = key_str(k, &kloc)?;
            check_name(short, &format!("action '{short}'"))?;
            doc.actions
                .push(parse_action(&format!("{wb}.{short}"), body)?);
        }
    }
    if let Some(v) = root.get("workflows") {
        let kloc = at_key(&loc, "workflows");
        for (k, body) in as_map(v, &kloc, "'workflows'")? {
            let short = key_str(k, &kloc)?;
            doc.workflows
                .push(parse_workflow(&format!("{wb}.{short}"), body)?);
        }
    }
    if doc.workflows.is_empty() && doc.actions.is_empty() {
        return Err(err(loc, "a workbook needs 'workflows' or 'actions'"));
    }
    resolve_siblings(&mut doc, &wb);
    Ok(doc)
}

/// Inside a workbook, `workflow: other` and `action: mine` may name a
/// sibling without the `<workbook>.` prefix; as in Mistral the sibling wins
/// over a global one with the same short name. Rewriting the names here
/// means nothing downstream needs to know about workbooks.
fn resolve_siblings(doc: &mut Document, wb: &str) {
    let workflows: HashSet<String> = doc.workflows.iter().map(|w| w.name.clone()).collect();
    let actions: HashSet<String> = doc.actions.iter().map(|a| a.name.clone()).collect();
    let full = |set: &HashSet<String>, name: &str| {
        let candidate = format!("{wb}.{name}");
        set.contains(&candidate).then_some(candidate)
    };
    for wf in &mut doc.workflows {
        for task in &mut wf.tasks {
            match &mut task.action {
                TaskAction::Workflow { name, .. } => {
                    if let Some(f) = full(&workflows, name) {
                        *name = f;
                    }
                }
                TaskAction::Action { name, .. } => {
                    if let Some(f) = full(&actions, name) {
                        *name = f;
                    }
                }
                TaskAction::Noop => {}
            }
        }
    }
    for a in &mut doc.actions {
        if let Some(f) = full(&actions, &a.base) {
            a.base = f;
        }
    }
}

fn parse_action(name: &str, body: &Y) -> Result<AdHocActionSpec, ParseError> {
    let loc = format!("action '{name}'");
    let map = as_map(body, &loc, "an action")?;
    check_keys(map, ACTION_KEYS, &loc)?;
    let base_text = match map.get("base") {
        Some(v) => as_str(v, &at_key(&loc, "base"))?,
        None => return Err(err(loc, "missing key 'base'")),
    };
    let bloc = at_key(&loc, "base");
    let (base, inline) = split_name_and_params(base_text).map_err(|m| err(&bloc, m))?;
    let mut base_input: Map<String, Value> = inline.into_iter().collect();
    if let Some(v) = map.get("base-input") {
        let iloc = at_key(&loc, "base-input");
        as_map(v, &iloc, "'base-input'")?;
        if let Value::Object(m) = to_json(v, &iloc)? {
            base_input.extend(m);
        }
    }
    let base_input = data(&Value::Object(base_input), &at_key(&loc, "base-input"))?;
    let input = match map.get("input") {
        Some(v) => parse_input(v, &at_key(&loc, "input"))?,
        None => Vec::new(),
    };
    let output = match map.get("output") {
        Some(v) => {
            let oloc = at_key(&loc, "output");
            Some(data(&to_json(v, &oloc)?, &oloc)?)
        }
        None => None,
    };
    Ok(AdHocActionSpec {
        name: name.to_string(),
        description: opt_string(map, "description", &loc)?,
        tags: match map.get("tags") {
            Some(v) => parse_tags(v, &at_key(&loc, "tags"))?,
            None => Vec::new(),
        },
        base,
        base_input,
        input,
        output,
    })
}

fn opt_string(map: &Mapping, key: &str, loc: &str) -> Result<Option<String>, ParseError> {
    match map.get(key) {
        None | Some(Y::Null) => Ok(None),
        Some(v) => Ok(Some(as_str(v, &at_key(loc, key))?.to_string())),
    }
}

/// `input:` of a workflow or ad-hoc action: `- name` or `- name: default`.
fn parse_input(v: &Y, loc: &str) -> Result<Vec<InputParam>, ParseError> {
    let Y::Sequence(items) = v else {
        return Err(err(
            loc,
            format!(
                "expected a list of names or 'name: default' maps, got {}",
                kind(v)
            ),
        ));
    };
    let mut seen: HashSet<&str> = HashSet::new();
    let mut out: Vec<InputParam> = Vec::new();
    for item in items {
        let (name, default) = match item {
            Y::String(s) => (s.as_str(), None),
            Y::Mapping(m) if m.len() == 1 => match m.iter().next() {
                Some((k, d)) => (key_str(k, loc)?, Some(to_json(d, loc)?)),
                None => return Err(err(loc, "empty input entry")),
            },
            other => {
                return Err(err(
                    loc,
                    format!(
                        "each input must be a name or a single 'name: default' map, got {}",
                        kind(other)
                    ),
                ));
            }
        };
        if name.is_empty() {
            return Err(err(loc, "empty input name"));
        }
        if !seen.insert(name) {
            return Err(err(loc, format!("duplicate input '{name}'")));
        }
        out.push(InputParam {
            name: name.to_string(),
            default,
        });
    }
    Ok(out)
}

/// `task-defaults:` once parsed; merged into every task, then dropped.
#[derive(Default)]
struct Defaults {
    on_success: Option<OnClause>,
    on_error: Option<OnClause>,
    on_complete: Option<OnClause>,
    retry: Option<Retry>,
    wait_before: Option<Data>,
    wait_after: Option<Data>,
    timeout: Option<Data>,
    pause_before: Option<Data>,
    concurrency: Option<Data>,
    safe_rerun: Option<bool>,
    requires: Vec<String>,
}

/// A task as written, before task-defaults are merged.
struct RawTask {
    spec: TaskSpec,
    safe_rerun: Option<bool>,
}

fn parse_workflow(name: &str, body: &Y) -> Result<WorkflowSpec, ParseError> {
    let loc = format!("workflow '{name}'");
    check_name(name, &loc)?;
    let map = as_map(body, &loc, "a workflow body")?;
    check_keys(map, WORKFLOW_KEYS, &loc)?;
    let kind_ = match map.get("type") {
        None => WorkflowType::Direct,
        Some(v) => match as_str(v, &at_key(&loc, "type"))? {
            "direct" => WorkflowType::Direct,
            "reverse" => WorkflowType::Reverse,
            other => {
                return Err(err(
                    at_key(&loc, "type"),
                    format!("unknown workflow type '{other}' (expected 'direct' or 'reverse')"),
                ));
            }
        },
    };
    let json_data = |key: &str| -> Result<Option<Data>, ParseError> {
        match map.get(key) {
            None => Ok(None),
            Some(v) => {
                let kloc = at_key(&loc, key);
                Ok(Some(data(&to_json(v, &kloc)?, &kloc)?))
            }
        }
    };
    let output = json_data("output")?;
    let output_on_error = json_data("output-on-error")?;
    let vars = json_data("vars")?;
    let input = match map.get("input") {
        Some(v) => parse_input(v, &at_key(&loc, "input"))?,
        None => Vec::new(),
    };

    let tloc = at_key(&loc, "tasks");
    let tasks_map = match map.get("tasks") {
        None => return Err(err(&loc, "missing key 'tasks'")),
        Some(v) => as_map(v, &tloc, "'tasks'")?,
    };
    if tasks_map.is_empty() {
        return Err(err(tloc, "a workflow needs at least one task"));
    }
    let mut names: Vec<&str> = Vec::with_capacity(tasks_map.len());
    for k in tasks_map.keys() {
        let n = key_str(k, &tloc)?;
        if n.is_empty() {
            return Err(err(&tloc, "empty task name"));
        }
        names.push(n);
    }
    let known: HashSet<&str> = names.iter().copied().collect();

    let defaults = match map.get("task-defaults") {
        Some(v) => parse_defaults(v, &loc, kind_, &known)?,
        None => Defaults::default(),
    };

    let mut tasks = Vec::with_capacity(tasks_map.len());
    for (k, body) in tasks_map {
        let tname = key_str(k, &tloc)?;
        let task_loc = format!("{loc}, task '{tname}'");
        let raw = parse_task(tname, body, &task_loc, kind_)?;
        check_targets(&raw.spec, &task_loc, &known)?;
        tasks.push(merge_defaults(raw, &defaults));
    }

    let wf = WorkflowSpec {
        name: name.to_string(),
        kind: kind_,
        description: opt_string(map, "description", &loc)?,
        tags: match map.get("tags") {
            Some(v) => parse_tags(v, &at_key(&loc, "tags"))?,
            None => Vec::new(),
        },
        input,
        output,
        output_on_error,
        vars,
        tasks,
    };
    match kind_ {
        WorkflowType::Reverse => check_reverse(&wf, &loc)?,
        WorkflowType::Direct => check_direct(&wf, &loc)?,
    }
    Ok(wf)
}

fn parse_defaults(
    v: &Y,
    wf_loc: &str,
    wf_kind: WorkflowType,
    known: &HashSet<&str>,
) -> Result<Defaults, ParseError> {
    let loc = format!("{wf_loc}, task-defaults");
    let map = as_map(v, &loc, "'task-defaults'")?;
    check_keys(map, DEFAULTS_KEYS, &loc)?;
    check_kind_keys(map, wf_kind, &loc)?;
    let mut d = Defaults::default();
    for (k, v) in map {
        let key = key_str(k, &loc)?;
        let kloc = at_key(&loc, key);
        match key {
            "on-success" | "on-error" | "on-complete" => {
                let clause = parse_on_clause(v, &kloc)?;
                for t in &clause.next {
                    if let TransitionTarget::Task(n) = &t.target
                        && !known.contains(n.as_str())
                    {
                        return Err(err(&kloc, format!("unknown task '{n}'")));
                    }
                }
                match key {
                    "on-success" => d.on_success = Some(clause),
                    "on-error" => d.on_error = Some(clause),
                    _ => d.on_complete = Some(clause),
                }
            }
            "retry" => d.retry = Some(parse_retry(v, &kloc)?),
            "wait-before" => d.wait_before = Some(int_or_expr(v, &kloc)?),
            "wait-after" => d.wait_after = Some(int_or_expr(v, &kloc)?),
            "timeout" => d.timeout = Some(int_or_expr(v, &kloc)?),
            "concurrency" => d.concurrency = Some(int_or_expr(v, &kloc)?),
            "pause-before" => d.pause_before = Some(bool_or_expr(v, &kloc)?),
            "safe-rerun" => d.safe_rerun = Some(as_bool(v, &kloc)?),
            "requires" => {
                d.requires = parse_requires(v, &kloc)?;
                for r in &d.requires {
                    if !known.contains(r.as_str()) {
                        return Err(err(&kloc, format!("unknown task '{r}'")));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(d)
}

/// Reject direct-only keys in reverse workflows and the other way round.
fn check_kind_keys(map: &Mapping, wf_kind: WorkflowType, loc: &str) -> Result<(), ParseError> {
    let (bad, only) = match wf_kind {
        WorkflowType::Direct => (REVERSE_ONLY, "reverse"),
        WorkflowType::Reverse => (DIRECT_ONLY, "direct"),
    };
    for k in map.keys() {
        if let Y::String(k) = k
            && bad.contains(&k.as_str())
        {
            return Err(err(
                loc,
                format!("key '{k}' is only valid in {only} workflows"),
            ));
        }
    }
    Ok(())
}

fn parse_task(
    name: &str,
    body: &Y,
    loc: &str,
    wf_kind: WorkflowType,
) -> Result<RawTask, ParseError> {
    let map = as_map(body, loc, "a task")?;
    check_keys(map, TASK_KEYS, loc)?;
    check_kind_keys(map, wf_kind, loc)?;
    let key = |k: &str| at_key(loc, k);

    let action = match (map.get("action"), map.get("workflow")) {
        (Some(_), Some(_)) => {
            return Err(err(loc, "a task cannot have both 'action' and 'workflow'"));
        }
        (Some(v), None) => {
            let (name, input) = parse_call(v, map.get("input"), &key("action"), &key("input"))?;
            TaskAction::Action { name, input }
        }
        (None, Some(v)) => {
            let (name, input) = parse_call(v, map.get("input"), &key("workflow"), &key("input"))?;
            TaskAction::Workflow { name, input }
        }
        (None, None) => {
            if map.contains_key("input") {
                return Err(err(key("input"), "'input' needs 'action' or 'workflow'"));
            }
            TaskAction::Noop
        }
    };

    let mut spec = TaskSpec {
        name: name.to_string(),
        description: opt_string(map, "description", loc)?,
        action,
        publish: None,
        publish_on_error: None,
        on_success: None,
        on_error: None,
        on_complete: None,
        join: None,
        with_items: None,
        retry: None,
        wait_before: None,
        wait_after: None,
        timeout: None,
        pause_before: None,
        concurrency: None,
        keep_result: true,
        fail_on: None,
        requires: Vec::new(),
        safe_rerun: false,
    };
    let mut safe_rerun = None;
    for (k, v) in map {
        let k = key_str(k, loc)?;
        let kloc = key(k);
        match k {
            "publish" => spec.publish = Some(parse_flat_publish(v, &kloc)?),
            "publish-on-error" => spec.publish_on_error = Some(parse_flat_publish(v, &kloc)?),
            "on-success" => spec.on_success = Some(parse_on_clause(v, &kloc)?),
            "on-error" => spec.on_error = Some(parse_on_clause(v, &kloc)?),
            "on-complete" => spec.on_complete = Some(parse_on_clause(v, &kloc)?),
            "join" => spec.join = Some(parse_join(v, &kloc)?),
            "with-items" => spec.with_items = Some(parse_with_items(v, &kloc)?),
            "concurrency" => spec.concurrency = Some(int_or_expr(v, &kloc)?),
            "retry" => spec.retry = Some(parse_retry(v, &kloc)?),
            "wait-before" => spec.wait_before = Some(int_or_expr(v, &kloc)?),
            "wait-after" => spec.wait_after = Some(int_or_expr(v, &kloc)?),
            "timeout" => spec.timeout = Some(int_or_expr(v, &kloc)?),
            "pause-before" => spec.pause_before = Some(bool_or_expr(v, &kloc)?),
            "keep-result" => spec.keep_result = as_bool(v, &kloc)?,
            "fail-on" => spec.fail_on = Some(template(as_str(v, &kloc)?, &kloc)?),
            "requires" => spec.requires = parse_requires(v, &kloc)?,
            "safe-rerun" => safe_rerun = Some(as_bool(v, &kloc)?),
            // Handled above, or accepted and ignored (`target`: Mistral's
            // executor targeting has no meaning here).
            _ => {}
        }
    }
    Ok(RawTask { spec, safe_rerun })
}

/// `action:`/`workflow:` text plus the task's `input:` map. Inline
/// parameters come first and the `input:` map overrides them.
fn parse_call(
    v: &Y,
    input: Option<&Y>,
    loc: &str,
    input_loc: &str,
) -> Result<(String, Data), ParseError> {
    let text = as_str(v, loc)?;
    let (name, inline) = split_name_and_params(text).map_err(|m| err(loc, m))?;
    let mut merged: Map<String, Value> = inline.into_iter().collect();
    if let Some(i) = input {
        as_map(i, input_loc, "'input'")?;
        if let Value::Object(m) = to_json(i, input_loc)? {
            merged.extend(m);
        }
    }
    let input = data(&Value::Object(merged), input_loc)?;
    Ok((name, input))
}

/// Task-level `publish:` / `publish-on-error:`: a flat map, all branch.
fn parse_flat_publish(v: &Y, loc: &str) -> Result<Publish, ParseError> {
    Ok(Publish {
        branch: publish_entries(v, loc)?,
        global: Vec::new(),
    })
}

fn publish_entries(v: &Y, loc: &str) -> Result<Vec<(String, Data)>, ParseError> {
    as_map(v, loc, "'publish'")?;
    let Value::Object(m) = to_json(v, loc)? else {
        return Err(err(loc, "'publish' must be a map"));
    };
    m.iter()
        .map(|(k, v)| Ok((k.clone(), data(v, loc)?)))
        .collect()
}

/// `publish:` inside an on-clause: either flat (all branch) or split into
/// `branch`, `global` and `atomic`. It is the split form when every key is
/// one of those three. `atomic` is merged into `branch`: Mistral publishes
/// it to the branch too, and "atomic" only concerns its storage, which has
/// no counterpart here.
fn parse_clause_publish(v: &Y, loc: &str) -> Result<Publish, ParseError> {
    let map = as_map(v, loc, "'publish'")?;
    let split = !map.is_empty()
        && map
            .keys()
            .all(|k| matches!(k.as_str(), Some("branch" | "global" | "atomic")));
    if !split {
        return parse_flat_publish(v, loc);
    }
    let mut p = Publish {
        branch: Vec::new(),
        global: Vec::new(),
    };
    for part in ["branch", "atomic"] {
        if let Some(b) = map.get(part) {
            p.branch.extend(publish_entries(b, &at_key(loc, part))?);
        }
    }
    if let Some(g) = map.get("global") {
        p.global = publish_entries(g, &at_key(loc, "global"))?;
    }
    Ok(p)
}

/// `on-success` / `on-error` / `on-complete`.
fn parse_on_clause(v: &Y, loc: &str) -> Result<OnClause, ParseError> {
    match v {
        Y::Mapping(m) => {
            check_keys(m, &["publish", "next"], loc)?;
            let publish = match m.get("publish") {
                Some(p) => Some(parse_clause_publish(p, &at_key(loc, "publish"))?),
                None => None,
            };
            let next = match m.get("next") {
                Some(n) => parse_next(n, &at_key(loc, "next"))?,
                None => Vec::new(),
            };
            Ok(OnClause { publish, next })
        }
        _ => Ok(OnClause {
            publish: None,
            next: parse_next(v, loc)?,
        }),
    }
}

/// A transition list: a string, or a list of strings and `name: condition`.
fn parse_next(v: &Y, loc: &str) -> Result<Vec<Transition>, ParseError> {
    match v {
        Y::String(s) => Ok(vec![Transition {
            target: parse_target(s, loc)?,
            condition: None,
        }]),
        Y::Sequence(items) => items.iter().map(|i| parse_transition(i, loc)).collect(),
        other => Err(err(
            loc,
            format!(
                "expected a task name, a list of transitions or a map with 'publish'/'next', got {}",
                kind(other)
            ),
        )),
    }
}

fn parse_transition(v: &Y, loc: &str) -> Result<Transition, ParseError> {
    match v {
        Y::String(s) => Ok(Transition {
            target: parse_target(s, loc)?,
            condition: None,
        }),
        Y::Mapping(m) if m.len() == 1 => {
            let Some((k, c)) = m.iter().next() else {
                return Err(err(loc, "empty transition"));
            };
            let target = parse_target(key_str(k, loc)?, loc)?;
            // A non-string condition would be a plain string at run time and
            // so always true (even `false`): refuse it instead.
            let cond = match c {
                Y::String(s) => s,
                other => {
                    return Err(err(
                        loc,
                        format!(
                            "the condition must be an expression string, got {}",
                            kind(other)
                        ),
                    ));
                }
            };
            Ok(Transition {
                target,
                condition: Some(template(cond, loc)?),
            })
        }
        other => Err(err(
            loc,
            format!(
                "each transition must be a task name or a single 'task: <% condition %>' map, got {}",
                kind(other)
            ),
        )),
    }
}

/// A task name or an engine command (`fail msg="..."`). Whether the task
/// exists is checked once all task names are known.
fn parse_target(text: &str, loc: &str) -> Result<TransitionTarget, ParseError> {
    let (name, params) = split_name_and_params(text).map_err(|m| err(loc, m))?;
    if !ENGINE_COMMANDS.contains(&name.as_str()) {
        if !params.is_empty() {
            return Err(err(
                loc,
                format!(
                    "'{}': only engine commands (fail, succeed, pause) take parameters",
                    text.trim()
                ),
            ));
        }
        return Ok(TransitionTarget::Task(name));
    }
    let mut msg = None;
    for (k, v) in params {
        if k != "msg" || name == "noop" {
            return Err(err(
                loc,
                format!("engine command '{name}' does not take parameter '{k}'"),
            ));
        }
        msg = Some(data(&v, loc)?);
    }
    Ok(match name.as_str() {
        "noop" => TransitionTarget::Noop,
        "fail" => TransitionTarget::Fail { msg },
        "succeed" => TransitionTarget::Succeed { msg },
        _ => TransitionTarget::Pause { msg },
    })
}

fn parse_join(v: &Y, loc: &str) -> Result<Join, ParseError> {
    let bad = || {
        err(
            loc,
            format!(
                "expected 'all', 'one' or a positive integer, got {}",
                match v {
                    Y::String(s) => format!("'{s}'"),
                    Y::Number(n) => n.to_string(),
                    o => kind(o).to_string(),
                }
            ),
        )
    };
    match v {
        Y::String(s) if s == "all" => Ok(Join::All),
        Y::String(s) if s == "one" => Ok(Join::Count(1)),
        Y::Number(n) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) if n > 0 => Ok(Join::Count(n)),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

fn parse_with_items(v: &Y, loc: &str) -> Result<WithItems, ParseError> {
    let texts: Vec<&str> = match v {
        Y::String(s) => vec![s.as_str()],
        Y::Sequence(items) if !items.is_empty() => items
            .iter()
            .map(|i| as_str(i, loc))
            .collect::<Result<_, _>>()?,
        other => {
            return Err(err(
                loc,
                format!(
                    "expected 'VAR in <% expression %>' or a list of those, got {}",
                    kind(other)
                ),
            ));
        }
    };
    let mut seen: HashSet<String> = HashSet::new();
    let mut vars: Vec<(String, Template)> = Vec::new();
    for text in texts {
        let (var, source) = parse_with_item(text).map_err(|m| err(loc, m))?;
        if !seen.insert(var.clone()) {
            return Err(err(loc, format!("variable '{var}' given twice")));
        }
        vars.push((var, template(&source, loc)?));
    }
    Ok(WithItems { vars })
}

/// `x in <% $.list %>` -> (`x`, the expression text). A literal list
/// (`x in [1, 2]`) becomes the YAQL expression `<% [1,2] %>`, so that the
/// engine only ever evaluates templates.
fn parse_with_item(text: &str) -> Result<(String, String), String> {
    let bad = || format!("'{text}': expected 'VAR in <% expression %>' or 'VAR in [list]'");
    let t = text.trim();
    let var_len = t
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(t.len());
    let (var, rest) = t.split_at(var_len);
    if var.is_empty() || !rest.starts_with(char::is_whitespace) {
        return Err(bad());
    }
    let rest = rest.trim_start();
    let Some(rest) = rest.strip_prefix("in") else {
        return Err(bad());
    };
    if !rest.starts_with(char::is_whitespace) {
        return Err(bad());
    }
    let source = rest.trim();
    if contains_expression(source) {
        return Ok((var.to_string(), source.to_string()));
    }
    if source.starts_with('[')
        && let Ok(list @ Value::Array(_)) = serde_yaml_ng::from_str::<Value>(source)
    {
        return Ok((var.to_string(), format!("<% {list} %>")));
    }
    Err(bad())
}

/// A non-negative integer (seconds, counts) or an expression computing it.
fn int_or_expr(v: &Y, loc: &str) -> Result<Data, ParseError> {
    match v {
        Y::Number(n) if n.as_u64().is_some() => data(&to_json(v, loc)?, loc),
        Y::String(s) if contains_expression(s) => data(&Value::String(s.clone()), loc),
        Y::String(s) if s.trim().parse::<u64>().is_ok() => {
            let n: u64 = s.trim().parse().unwrap_or(0);
            data(&Value::from(n), loc)
        }
        other => Err(err(
            loc,
            format!(
                "expected a non-negative integer or an expression, got {}",
                match other {
                    Y::String(s) => format!("'{s}'"),
                    Y::Number(n) => n.to_string(),
                    o => kind(o).to_string(),
                }
            ),
        )),
    }
}

/// `int_or_expr` for values that came out of the inline-params parser.
fn json_int_or_expr(v: &Value, loc: &str) -> Result<Data, ParseError> {
    match v {
        Value::Number(n) if n.as_u64().is_some() => data(v, loc),
        Value::String(s) if contains_expression(s) => data(v, loc),
        other => Err(err(
            loc,
            format!("expected a non-negative integer or an expression, got {other}"),
        )),
    }
}

fn bool_or_expr(v: &Y, loc: &str) -> Result<Data, ParseError> {
    match v {
        Y::Bool(b) => data(&Value::Bool(*b), loc),
        Y::String(s) if contains_expression(s) => data(&Value::String(s.clone()), loc),
        other => Err(err(
            loc,
            format!("expected true, false or an expression, got {}", kind(other)),
        )),
    }
}

fn parse_requires(v: &Y, loc: &str) -> Result<Vec<String>, ParseError> {
    let names: Vec<String> = match v {
        Y::String(s) => vec![s.clone()],
        Y::Sequence(items) => items
            .iter()
            .map(|i| as_str(i, loc).map(str::to_string))
            .collect::<Result<_, _>>()?,
        other => {
            return Err(err(
                loc,
                format!(
                    "expected a task name or a list of them, got {}",
                    kind(other)
                ),
            ));
        }
    };
    let mut seen: HashSet<String> = HashSet::new();
    Ok(names
        .into_iter()
        .filter(|n| seen.insert(n.clone()))
        .collect())
}

/// `retry:` as a map, or the one-line `count=3 delay=1 break-on=<% ... %>`.
/// `count` is required (as in Mistral); `delay` defaults to 0 (Mistral
/// requires it too, but nothing is gained by refusing its absence).
fn parse_retry(v: &Y, loc: &str) -> Result<Retry, ParseError> {
    const KEYS: &[&str] = &["count", "delay", "break-on", "continue-on"];
    let (count, delay, break_on, continue_on) = match v {
        Y::Mapping(m) => {
            check_keys(m, KEYS, loc)?;
            let count = match m.get("count") {
                Some(c) => int_or_expr(c, &at_key(loc, "count"))?,
                None => return Err(err(loc, "missing key 'count'")),
            };
            let delay = match m.get("delay") {
                Some(d) => Some(int_or_expr(d, &at_key(loc, "delay"))?),
                None => None,
            };
            let cond = |key: &str| -> Result<Option<Template>, ParseError> {
                match m.get(key) {
                    None => Ok(None),
                    Some(c) => {
                        let kloc = at_key(loc, key);
                        Ok(Some(template(as_str(c, &kloc)?, &kloc)?))
                    }
                }
            };
            (count, delay, cond("break-on")?, cond("continue-on")?)
        }
        Y::String(s) => {
            let params = parse_params(s).map_err(|m| err(loc, m))?;
            let (mut count, mut delay, mut break_on, mut continue_on) = (None, None, None, None);
            for (k, v) in &params {
                let kloc = at_key(loc, k);
                match k.as_str() {
                    "count" => count = Some(json_int_or_expr(v, &kloc)?),
                    "delay" => delay = Some(json_int_or_expr(v, &kloc)?),
                    "break-on" | "continue-on" => {
                        let Value::String(s) = v else {
                            return Err(err(&kloc, format!("expected an expression, got {v}")));
                        };
                        let t = Some(template(s, &kloc)?);
                        if k == "break-on" {
                            break_on = t;
                        } else {
                            continue_on = t;
                        }
                    }
                    other => {
                        return Err(err(
                            loc,
                            format!(
                                "unknown retry parameter '{other}' in '{}' (expected one of: {})",
                                s.trim(),
                                KEYS.join(", ")
                            ),
                        ));
                    }
                }
            }
            let Some(count) = count else {
                return Err(err(loc, format!("missing 'count' in '{}'", s.trim())));
            };
            (count, delay, break_on, continue_on)
        }
        other => {
            return Err(err(
                loc,
                format!(
                    "expected a map or 'count=N delay=N ...', got {}",
                    kind(other)
                ),
            ));
        }
    };
    let delay = match delay {
        Some(d) => d,
        None => data(&Value::from(0), loc)?,
    };
    Ok(Retry {
        count,
        delay,
        break_on,
        continue_on,
    })
}

/// Every task target of the task's own clauses must be a task of this
/// workflow (engine commands were recognised when parsing).
fn check_targets(task: &TaskSpec, loc: &str, known: &HashSet<&str>) -> Result<(), ParseError> {
    let clauses = [
        ("on-success", &task.on_success),
        ("on-error", &task.on_error),
        ("on-complete", &task.on_complete),
    ];
    for (key, clause) in clauses {
        let Some(c) = clause else { continue };
        for t in &c.next {
            if let TransitionTarget::Task(n) = &t.target
                && !known.contains(n.as_str())
            {
                return Err(err(at_key(loc, key), format!("unknown task '{n}'")));
            }
        }
    }
    Ok(())
}

/// Apply task-defaults the way Mistral does: policies only where the task
/// sets none; an on-* clause's transitions only where the task's own clause
/// has no `next` (minus transitions to the task itself, so defaults never
/// make a task loop onto itself); the defaults' on-clause `publish` is not
/// used (Mistral reads publish only from the task's own clause); `requires`
/// is the union, minus the task itself.
fn merge_defaults(raw: RawTask, d: &Defaults) -> TaskSpec {
    let RawTask {
        mut spec,
        safe_rerun,
    } = raw;
    let name = spec.name.clone();
    let merge = |own: Option<OnClause>, def: &Option<OnClause>| -> Option<OnClause> {
        let Some(def) = def else { return own };
        if own.as_ref().is_some_and(|c| !c.next.is_empty()) {
            return own;
        }
        let next: Vec<Transition> = def
            .next
            .iter()
            .filter(|t| !matches!(&t.target, TransitionTarget::Task(n) if *n == name))
            .cloned()
            .collect();
        let publish = own.and_then(|c| c.publish);
        if next.is_empty() && publish.is_none() {
            return None;
        }
        Some(OnClause { publish, next })
    };
    spec.on_success = merge(spec.on_success.take(), &d.on_success);
    spec.on_error = merge(spec.on_error.take(), &d.on_error);
    spec.on_complete = merge(spec.on_complete.take(), &d.on_complete);
    let fill = |own: &mut Option<Data>, def: &Option<Data>| {
        if own.is_none() {
            own.clone_from(def);
        }
    };
    fill(&mut spec.wait_before, &d.wait_before);
    fill(&mut spec.wait_after, &d.wait_after);
    fill(&mut spec.timeout, &d.timeout);
    fill(&mut spec.pause_before, &d.pause_before);
    fill(&mut spec.concurrency, &d.concurrency);
    if spec.retry.is_none() {
        spec.retry.clone_from(&d.retry);
    }
    spec.safe_rerun = safe_rerun.or(d.safe_rerun).unwrap_or(false);
    if !d.requires.is_empty() {
        let own: HashSet<String> = spec.requires.iter().cloned().collect();
        for r in &d.requires {
            if !own.contains(r) {
                spec.requires.push(r.clone());
            }
        }
    }
    spec.requires.retain(|r| *r != name);
    spec
}

/// Reverse workflows: every `requires` names a task, and no cycles.
fn check_reverse(wf: &WorkflowSpec, loc: &str) -> Result<(), ParseError> {
    let index: HashMap<&str, usize> = wf
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    for t in &wf.tasks {
        for r in &t.requires {
            if !index.contains_key(r.as_str()) {
                return Err(err(
                    format!("{loc}, task '{}', key 'requires'", t.name),
                    format!("unknown task '{r}'"),
                ));
            }
        }
    }
    // Iterative depth-first search with colours; on meeting a grey task the
    // stack holds the cycle.
    let n = wf.tasks.len();
    let mut colour = vec![0u8; n]; // 0 white, 1 grey, 2 black
    for start in 0..n {
        if colour[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        colour[start] = 1;
        while let Some(top) = stack.last_mut() {
            let node = top.0;
            let reqs = &wf.tasks[node].requires;
            if top.1 >= reqs.len() {
                colour[node] = 2;
                stack.pop();
                continue;
            }
            let dep = index.get(reqs[top.1].as_str()).copied().unwrap_or(node);
            top.1 += 1;
            match colour[dep] {
                0 => {
                    colour[dep] = 1;
                    stack.push((dep, 0));
                }
                1 => {
                    let from = stack.iter().position(|&(i, _)| i == dep).unwrap_or(0);
                    let mut names: Vec<&str> = stack[from..]
                        .iter()
                        .map(|&(i, _)| wf.tasks[i].name.as_str())
                        .collect();
                    names.push(wf.tasks[dep].name.as_str());
                    return Err(err(
                        loc,
                        format!("cycle in 'requires': {}", names.join(" -> ")),
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Direct workflows, as Mistral checks them: at least one start task, and
/// `join` tasks have enough inbound tasks to ever run.
fn check_direct(wf: &WorkflowSpec, loc: &str) -> Result<(), ParseError> {
    if wf.start_tasks().is_empty() {
        return Err(err(
            loc,
            "no start task: every task is the target of a transition",
        ));
    }
    // Inbound counts for all tasks at once: asking `inbound()` per join
    // task would be quadratic.
    let mut inbound: HashMap<&str, usize> = HashMap::new();
    for t in &wf.tasks {
        let mut seen: HashSet<&str> = HashSet::new();
        for c in [&t.on_success, &t.on_error, &t.on_complete]
            .into_iter()
            .flatten()
        {
            for tr in &c.next {
                if let TransitionTarget::Task(n) = &tr.target
                    && seen.insert(n.as_str())
                {
                    *inbound.entry(n.as_str()).or_default() += 1;
                }
            }
        }
    }
    for t in &wf.tasks {
        let Some(join) = t.join else { continue };
        let inbound = inbound.get(t.name.as_str()).copied().unwrap_or(0);
        let needed = match join {
            Join::All => 1,
            Join::Count(n) => n as usize,
        };
        if inbound < needed {
            return Err(err(
                format!("{loc}, task '{}', key 'join'", t.name),
                format!("join needs {needed} inbound task(s) but only {inbound} lead here"),
            ));
        }
    }
    Ok(())
}

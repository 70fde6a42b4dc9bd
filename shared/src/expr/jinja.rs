//! Jinja (`{{ ... }}`, `{% ... %}`) on minijinja: one process-wide
//! [`Environment`] with strict undefined, a fuel limit and Mistral's
//! functions. Owns compiling Jinja once and evaluating it against a context.
//!
//! How Mistral's functions reach the per-evaluation [`Lookup`]: minijinja
//! functions must be `'static`, and `unsafe` is forbidden, so a borrowed
//! `&dyn Lookup` cannot be handed to them. Instead, for the duration of one
//! evaluation a thread-local holds *owned* lookup results. A function whose
//! answer is not there yet records what it needs and fails; the evaluator then
//! asks the `Lookup`, stores the answer and runs the (side-effect free)
//! expression again. Results known from the source (`execution()`, `env()`,
//! `task('literal')`) are fetched up front, so the usual case runs once.
//!
//! Unknown functions/variables (anything but `_` and registered globals) are
//! rejected at parse time. Unknown *filters* are only reported at evaluation
//! (minijinja does not expose the filters a template uses).

use crate::expr::Lookup;
use minijinja::value::Serde;
use minijinja::{Environment, Error, ErrorKind, Expression, UndefinedBehavior, Value as MjValue};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::LazyLock;

/// Instruction budget of one Jinja evaluation (bounds runaway loops).
const FUEL: u64 = 5_000_000;
/// Re-runs allowed to satisfy lookups discovered during evaluation.
const MAX_ROUNDS: usize = 16;
/// Error detail used by functions whose lookup result is not fetched yet.
const PENDING: &str = "bora: lookup pending";
/// Largest expression result converted to JSON: values plus string bytes
/// (minijinja builds repeated sequences such as `[0] * 50000000` lazily,
/// without fuel; materializing them would exhaust memory).
const MAX_RESULT_SIZE: usize = 16 << 20;

/// A Jinja error: message and, when minijinja knows it, a character offset.
#[derive(Debug, Clone)]
pub struct JinjaError {
    pub message: String,
    pub pos: Option<usize>,
}

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    // Templates print values with this: the same size bound as expression
    // results (printing a huge lazy sequence would not use fuel either).
    env.set_formatter(|out, state, value| {
        let mut budget = MAX_RESULT_SIZE;
        if !fits(value, &mut budget, 0) {
            return Err(invalid("result is too large"));
        }
        minijinja::escape_formatter(out, state, value)
    });
    env.add_function("task", |name: Option<String>| fetch(Want::Task(name)));
    env.add_function("execution", || fetch(Want::Execution));
    env.add_function("env", || fetch(Want::Env));
    env.add_function("global", |name: String| fetch(Want::Global(name)));
    for (name, f) in [
        (
            "json_parse",
            json_parse as fn(String) -> Result<MjValue, Error>,
        ),
        ("yaml_parse", yaml_parse),
    ] {
        env.add_function(name, f);
        env.add_filter(name, f);
    }
    for (name, f) in [
        (
            "json_dump",
            json_dump as fn(MjValue) -> Result<String, Error>,
        ),
        ("yaml_dump", yaml_dump),
    ] {
        env.add_function(name, f);
        env.add_filter(name, f);
    }
    env.add_function("uuid", || uuid::Uuid::new_v4().to_string());
    env
});

/// Names a Jinja expression may reference without defining them.
static KNOWN: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let mut known: HashSet<String> = ENV.globals().map(|(k, _)| k.to_string()).collect();
    known.insert("_".to_string());
    known
});

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

fn json_parse(s: String) -> Result<MjValue, Error> {
    serde_json::from_str::<Value>(&s)
        .map(|v| MjValue::from(Serde(&v)))
        .map_err(|e| invalid(format!("json_parse: invalid JSON: {e}")))
}

fn json_dump(v: MjValue) -> Result<String, Error> {
    serde_json::to_string(&v).map_err(|e| invalid(format!("json_dump: {e}")))
}

fn yaml_parse(s: String) -> Result<MjValue, Error> {
    serde_yaml_ng::from_str::<Value>(&s)
        .map(|v| MjValue::from(Serde(&v)))
        .map_err(|e| invalid(format!("yaml_parse: invalid YAML: {e}")))
}

fn yaml_dump(v: MjValue) -> Result<String, Error> {
    serde_yaml_ng::to_string(&v).map_err(|e| invalid(format!("yaml_dump: {e}")))
}

#[derive(Debug, Clone, PartialEq)]
enum Want {
    Task(Option<String>),
    Execution,
    Env,
    Global(String),
}

/// Lookup answers for the evaluation running on this thread.
#[derive(Default)]
struct Fetched {
    have: Vec<(Want, Value)>,
    wanted: Vec<Want>,
}

thread_local! {
    static FETCHED: RefCell<Option<Fetched>> = const { RefCell::new(None) };
}

fn fetch(w: Want) -> Result<MjValue, Error> {
    FETCHED.with_borrow_mut(|f| {
        let Some(f) = f else {
            return Err(invalid("Mistral functions are not available here"));
        };
        if let Some((_, v)) = f.have.iter().find(|(k, _)| *k == w) {
            return Ok(MjValue::from(Serde(v)));
        }
        if !f.wanted.contains(&w) {
            f.wanted.push(w);
        }
        Err(invalid(PENDING))
    })
}

fn answer(w: &Want, lookup: &dyn Lookup) -> Value {
    match w {
        Want::Task(name) => lookup.task(name.as_deref()).unwrap_or(Value::Null),
        Want::Execution => lookup.execution(),
        Want::Env => lookup.env(),
        Want::Global(name) => lookup.global(name).unwrap_or(Value::Null),
    }
}

enum Kind {
    /// A single `{{ expr }}`: evaluates to a value.
    Expr(Box<Expression<'static, 'static>>),
    /// A template with statements: renders to text. Each gets its own
    /// environment (a cheap clone of the shared one) so the compiled template
    /// can be owned without borrowing the source.
    Template(Box<Environment<'static>>),
}

/// Compiled Jinja, shareable across threads.
pub struct Jinja {
    kind: Kind,
    /// Lookups to fetch before running, found in the source.
    prefetch: Vec<Want>,
    tasks: Vec<String>,
    /// Kept to turn minijinja's byte ranges into character offsets.
    source: String,
    /// When every use of `_` is `_.key`, the keys used: only those are
    /// converted per evaluation instead of all of `_`.
    context_keys: Option<Vec<String>>,
}

impl std::fmt::Debug for Jinja {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Jinja")
    }
}

fn convert_error(e: &Error, source: &str) -> JinjaError {
    let message = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    let pos = e
        .range()
        .and_then(|r| source.get(..r.start.min(source.len())))
        .map(|prefix| prefix.chars().count());
    JinjaError { message, pos }
}

impl Jinja {
    /// Compile the expression inside `{{ }}`.
    pub fn expression(src: &str) -> Result<Jinja, JinjaError> {
        let expr = ENV
            .compile_expression_owned(src.to_string())
            .map_err(|e| convert_error(&e, src))?;
        let names = expr.undeclared_variables(false);
        Self::finish(Kind::Expr(Box::new(expr)), names, src)
    }

    /// Compile a whole template (with `{% %}` statements).
    pub fn template(src: &str) -> Result<Jinja, JinjaError> {
        let mut env = ENV.clone();
        env.add_template_owned("template", src.to_string())
            .map_err(|e| convert_error(&e, src))?;
        let names = env
            .get_template("template")
            .map_err(|e| convert_error(&e, src))?
            .undeclared_variables(false);
        Self::finish(Kind::Template(Box::new(env)), names, src)
    }

    fn finish(kind: Kind, names: HashSet<String>, src: &str) -> Result<Jinja, JinjaError> {
        let mut unknown: Vec<&String> = names.iter().filter(|n| !KNOWN.contains(*n)).collect();
        unknown.sort();
        if let Some(name) = unknown.first() {
            let pos = find_ident(src, name).map(|b| src[..b].chars().count());
            return Err(JinjaError {
                message: format!(
                    "unknown function or variable '{name}' (the context is '_', e.g. '_.{name}')"
                ),
                pos,
            });
        }
        let code = if matches!(kind, Kind::Expr(_)) {
            vec![src]
        } else {
            code_regions(src)
        };
        for region in code {
            if let Some((name, at)) = unknown_filter(region) {
                // `region` is a subslice of `src`: recover its offset.
                let offset = region.as_ptr() as usize - src.as_ptr() as usize + at;
                return Err(JinjaError {
                    message: format!("unknown filter '{name}'"),
                    pos: src.get(..offset).map(|p| p.chars().count()),
                });
            }
        }
        let tasks = literal_task_names(src);
        let mut prefetch = Vec::new();
        if names.contains("execution") {
            prefetch.push(Want::Execution);
        }
        if names.contains("env") {
            prefetch.push(Want::Env);
        }
        if names.contains("task") {
            prefetch.extend(tasks.iter().map(|t| Want::Task(Some(t.clone()))));
            if src.contains("task()") {
                prefetch.push(Want::Task(None));
            }
        }
        Ok(Jinja {
            kind,
            prefetch,
            tasks,
            context_keys: context_keys(src),
            source: src.to_string(),
        })
    }

    /// Task names passed as a literal to `task(...)` (found by scanning the
    /// source, so best effort).
    pub fn referenced_tasks(&self) -> &[String] {
        &self.tasks
    }

    /// Evaluate with `_` = `data`. Expressions yield their value, templates
    /// their rendered text.
    pub fn evaluate(&self, data: &Value, lookup: &dyn Lookup) -> Result<Value, JinjaError> {
        // minijinja needs its own value tree; converting `data` is the main
        // per-evaluation cost, so convert only the keys the source uses when
        // that is known.
        let underscore = match (&self.context_keys, data) {
            (Some(keys), Value::Object(map)) => MjValue::from_pairs(
                keys.iter()
                    .filter_map(|k| map.get(k).map(|v| (k.as_str(), MjValue::from(Serde(v))))),
            ),
            _ => MjValue::from(Serde(data)),
        };
        let ctx = MjValue::from_pairs([("_", underscore)]);
        let mut fetched = Fetched::default();
        for w in &self.prefetch {
            fetched.have.push((w.clone(), answer(w, lookup)));
        }
        for _ in 0..MAX_ROUNDS {
            // Save and restore whatever an enclosing evaluation on this
            // thread had installed, so nesting (a Lookup that evaluates
            // expressions) stays correct.
            let prev = FETCHED.replace(Some(fetched));
            let result = self.run(ctx.clone());
            fetched = FETCHED.replace(prev).unwrap_or_default();
            match result {
                Ok(v) => return Ok(v),
                Err(e) if fetched.wanted.is_empty() => return Err(e),
                Err(_) => {
                    for w in std::mem::take(&mut fetched.wanted) {
                        let v = answer(&w, lookup);
                        fetched.have.push((w, v));
                    }
                }
            }
        }
        Err(JinjaError {
            message: "too many distinct lookups in one expression".to_string(),
            pos: None,
        })
    }

    fn run(&self, ctx: MjValue) -> Result<Value, JinjaError> {
        match &self.kind {
            Kind::Expr(expr) => {
                let v = expr
                    .eval(ctx)
                    .map_err(|e| convert_error(&e, &self.source))?;
                if v.is_undefined() {
                    return Err(JinjaError {
                        message: "undefined value (a missing key or attribute?)".to_string(),
                        pos: None,
                    });
                }
                let mut budget = MAX_RESULT_SIZE;
                if !fits(&v, &mut budget, 0) {
                    return Err(JinjaError {
                        message: "result is too large".to_string(),
                        pos: None,
                    });
                }
                serde_json::to_value(&v).map_err(|e| JinjaError {
                    message: format!("result is not JSON: {e}"),
                    pos: None,
                })
            }
            Kind::Template(env) => {
                let t = env.get_template("template").map_err(|e| JinjaError {
                    message: e.to_string(),
                    pos: None,
                })?;
                t.render(ctx)
                    .map(Value::String)
                    .map_err(|e| convert_error(&e, &self.source))
            }
        }
    }
}

/// Whether converting `v` to JSON stays within `budget` (one unit per value
/// and per string byte) and 256 levels; walks lazy sequences without
/// materializing them and stops as soon as the budget is spent.
fn fits(v: &MjValue, budget: &mut usize, depth: usize) -> bool {
    use minijinja::value::ValueKind;
    let cost = 1 + v.as_str().map_or(0, str::len) + v.as_bytes().map_or(0, <[u8]>::len);
    let Some(left) = budget.checked_sub(cost) else {
        return false;
    };
    *budget = left;
    if depth > 256 {
        return false;
    }
    match v.kind() {
        ValueKind::Seq | ValueKind::Iterable => {
            if v.len().is_some_and(|n| n > *budget) {
                return false;
            }
            match v.try_iter() {
                Ok(mut items) => items.all(|item| fits(&item, budget, depth + 1)),
                Err(_) => true,
            }
        }
        ValueKind::Map => match v.as_object().and_then(|o| o.try_iter_pairs()) {
            Some(mut pairs) => {
                pairs.all(|(k, x)| fits(&k, budget, depth + 1) && fits(&x, budget, depth + 1))
            }
            None => true,
        },
        _ => true,
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Byte offset of `name` as a whole identifier (not part of a longer one).
fn find_ident(src: &str, name: &str) -> Option<usize> {
    src.match_indices(name).map(|(i, _)| i).find(|&i| {
        let before = src[..i].chars().next_back();
        let after = src[i + name.len()..].chars().next();
        before.is_none_or(|c| !is_ident_char(c) && c != '.')
            && after.is_none_or(|c| !is_ident_char(c))
    })
}

/// The keys of `_` the source reads, if every standalone `_` in it is
/// followed by `.key` (not a method call such as `_.items()`). Literal text
/// and strings are scanned too, which can only add keys or fall back to
/// `None` (convert everything), never miss a use.
fn context_keys(src: &str) -> Option<Vec<String>> {
    let mut keys: Vec<String> = Vec::new();
    let bytes = src.as_bytes();
    for (i, _) in src.match_indices('_') {
        let before = src[..i].chars().next_back();
        if before.is_some_and(is_ident_char) {
            continue;
        }
        if bytes
            .get(i + 1)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            continue;
        }
        // A standalone `_`: must be `_.ident` not followed by `(`.
        if bytes.get(i + 1) != Some(&b'.') {
            return None;
        }
        let rest = &src[i + 2..];
        let len = rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len());
        if len == 0 || rest[len..].trim_start().starts_with('(') {
            return None;
        }
        let key = &rest[..len];
        if !keys.iter().any(|k| k == key) {
            keys.push(key.to_string());
        }
    }
    Some(keys)
}

/// The `{{ }}` and `{% %}` parts of a template (where filters can appear).
fn code_regions(src: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find(['{']) {
        let after = &rest[i + 1..];
        let close = match after.chars().next() {
            Some('{') => "}}",
            Some('%') => "%}",
            _ => {
                rest = after;
                continue;
            }
        };
        let body = &after[1..];
        match body.find(close) {
            Some(end) => {
                out.push(&body[..end]);
                rest = &body[end + close.len()..];
            }
            None => {
                out.push(body);
                break;
            }
        }
    }
    out
}

/// The first filter name after `|` in Jinja code that the environment does
/// not know, with its byte offset in `code`. Strings are skipped.
fn unknown_filter(code: &str) -> Option<(String, usize)> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in code.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '|' => {
                let rest = &code[i + 1..];
                let start = rest.len() - rest.trim_start().len();
                let name_part = &rest[start..];
                let len = name_part
                    .find(|c: char| !is_ident_char(c))
                    .unwrap_or(name_part.len());
                let name = &name_part[..len];
                if !name.is_empty() && !filter_exists(name) {
                    return Some((name.to_string(), i + 1 + start));
                }
            }
            _ => {}
        }
    }
    None
}

/// Ask minijinja itself whether a filter exists (it has no public lookup):
/// applying an unknown filter fails with `UnknownFilter`. `name` holds only
/// identifier characters, so it cannot change the probe's meaning.
fn filter_exists(name: &str) -> bool {
    match ENV.compile_expression_owned(format!("none | {name}")) {
        Ok(expr) => !matches!(expr.eval(()), Err(e) if e.kind() == ErrorKind::UnknownFilter),
        Err(_) => true,
    }
}

/// `task('name')` / `task("name")` occurrences in Jinja source.
fn literal_task_names(src: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find("task(") {
        // Skip names that merely end in "task", like `subtask(`.
        let before_ok = rest[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'));
        rest = &rest[i + "task(".len()..];
        let trimmed = rest.trim_start();
        let Some(q) = trimmed.chars().next().filter(|c| *c == '\'' || *c == '"') else {
            continue;
        };
        let body = &trimmed[1..];
        if let Some(end) = body.find(q) {
            let name = &body[..end];
            if before_ok
                && body[end + 1..].trim_start().starts_with(')')
                && !out.iter().any(|n| n == name)
            {
                out.push(name.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_names_scan() {
        assert_eq!(
            literal_task_names(
                "{{ task('a').result }} {{ task(\"b\") }} {{ subtask('c') }} {{ task(_.x) }} {{ task( 'a' ) }}"
            ),
            vec!["a", "b"]
        );
    }

    #[test]
    fn context_keys_scan() {
        assert_eq!(
            context_keys("_.a + _.b.c + _.a"),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(context_keys("my_var _.x"), Some(vec!["x".into()]));
        assert_eq!(context_keys("_ | length"), None);
        assert_eq!(context_keys("_.items()"), None);
        assert_eq!(context_keys("_['a']"), None);
        assert_eq!(context_keys("1 + 2"), Some(vec![]));
        assert_eq!(context_keys("_.é"), Some(vec!["é".into()]));
        assert_eq!(find_ident("_.x + x", "x"), Some(6));
    }

    #[test]
    fn filters_checked() {
        assert!(filter_exists("upper"));
        assert!(filter_exists("json_dump"));
        assert!(!filter_exists("nosuch"));
        assert_eq!(
            unknown_filter("_.a | upper | nosuch(1)"),
            Some(("nosuch".into(), 14))
        );
        assert_eq!(unknown_filter("'a | nosuch' | upper"), None);
        assert_eq!(
            code_regions("a {{ x | f }} b {% if y %}c{% endif %} {"),
            vec![" x | f ", " if y ", " endif "]
        );
    }

    #[test]
    fn huge_lazy_sequence_is_an_error() {
        // Found by fuzzing (expression target): a repeated list is lazy in
        // minijinja but was materialized whole when converted to JSON.
        let j = Jinja::expression("[0]* 50153432").unwrap();
        let e = j
            .evaluate(&Value::Null, &crate::expr::NoLookup)
            .unwrap_err();
        assert!(e.message.contains("too large"), "{}", e.message);
        // The same printed by a template (`{% %}` statements).
        let j = Jinja::template("{% if 1 %}{{ [0]*50000000 }}{% endif %}").unwrap();
        let e = j
            .evaluate(&Value::Null, &crate::expr::NoLookup)
            .unwrap_err();
        assert!(e.message.contains("too large"), "{}", e.message);
        let j = Jinja::template("{% if 1 %}{{ [1] * 2 }}{% endif %}").unwrap();
        assert_eq!(
            j.evaluate(&Value::Null, &crate::expr::NoLookup).unwrap(),
            serde_json::json!("[1, 1]")
        );
        let j = Jinja::expression("[[1, 2]] * 3").unwrap();
        assert_eq!(
            j.evaluate(&Value::Null, &crate::expr::NoLookup).unwrap(),
            serde_json::json!([[1, 2], [1, 2], [1, 2]])
        );
    }

    #[test]
    fn send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Jinja>();
    }
}

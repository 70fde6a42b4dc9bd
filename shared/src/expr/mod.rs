//! Expressions: YAQL (`<% ... %>`, context `$`) and Jinja (`{{ ... }}`,
//! context `_`), evaluated against a read-only context. No I/O here: what an
//! expression may read about tasks, the execution or the environment comes
//! through the [`Lookup`] trait, filled by the caller beforehand.
//!
//! CONTRACT (used by workflow/, engine/, handlers/; keep these signatures):
//! - [`Template::parse`] checks syntax and function names at definition time.
//! - [`Template::evaluate`]: a string that is exactly one expression yields
//!   the raw value; otherwise results are interpolated into the string.
//! - [`Data`]: a JSON value whose strings may hold expressions, compiled once.

mod jinja;
mod yaql;

use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// What went wrong while parsing or evaluating an expression.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} (in expression '{expression}'{})", position.map(|p| format!(" at position {p}")).unwrap_or_default())]
pub struct ExprError {
    pub message: String,
    /// The expression text (without delimiters) that failed.
    pub expression: String,
    /// Character offset inside `expression`, when known.
    pub position: Option<usize>,
}

/// Data an expression can reach besides `$`: Mistral's functions
/// `task()`, `execution()`, `env()`, `global()`.
pub trait Lookup: Sync {
    /// `task(name)`; `None` name means the current task (`task()`).
    /// Returns a dict with `id`, `name`, `state`, `state_info`, `result`,
    /// `published`, or `None` when the task has not run.
    fn task(&self, name: Option<&str>) -> Option<Value>;
    /// `execution()`: dict with `id`, `name`, `input`, `params`, `created_at`...
    fn execution(&self) -> Value;
    /// `env()`: the execution's environment dict (`params.env`).
    fn env(&self) -> Value;
    /// `global(name)`: a variable published with `publish: global:`.
    fn global(&self, name: &str) -> Option<Value>;
}

/// A [`Lookup`] with nothing in it, for contexts where no task has run.
pub struct NoLookup;

impl Lookup for NoLookup {
    fn task(&self, _name: Option<&str>) -> Option<Value> {
        None
    }
    fn execution(&self) -> Value {
        Value::Object(Default::default())
    }
    fn env(&self) -> Value {
        Value::Object(Default::default())
    }
    fn global(&self, _name: &str) -> Option<Value> {
        None
    }
}

/// Everything an evaluation sees.
pub struct Context<'a> {
    /// `$` in YAQL, `_` in Jinja.
    pub data: &'a Value,
    pub lookup: &'a dyn Lookup,
}

/// A string that may contain `<% %>` and `{{ }}` expressions, parsed once.
/// Cloning is cheap (reference counted).
#[derive(Clone)]
pub struct Template {
    source: Arc<str>,
    compiled: Arc<Compiled>,
}

/// The parsed form of a template string.
struct Compiled {
    parts: Vec<Part>,
    /// The string is exactly one expression (modulo surrounding
    /// whitespace): evaluation yields its raw value.
    single: bool,
}

enum Part {
    Text(String),
    Yaql {
        src: String,
        expr: yaql::Yaql,
    },
    /// `{{ expr }}`, or the whole string when it holds `{% %}` statements.
    Jinja {
        src: String,
        expr: Box<jinja::Jinja>,
    },
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Template({:?})", self.source)
    }
}

fn yaql_error(src: &str, e: yaql::YaqlError) -> ExprError {
    ExprError {
        message: e.message,
        expression: src.to_string(),
        position: Some(e.pos),
    }
}

fn jinja_error(src: &str, e: jinja::JinjaError) -> ExprError {
    ExprError {
        message: e.message,
        expression: src.to_string(),
        position: e.pos,
    }
}

/// Byte index of the `close` delimiter ending an expression that starts at
/// `from`, skipping quoted strings (so `'%>'` inside YAQL does not end it);
/// for Jinja (`nest`), braces inside the expression must balance first.
fn find_close(s: &str, from: usize, close: &str, nest: bool) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = from;
    let mut quote: Option<u8> = None;
    let mut depth = 0usize;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == b'\\' {
                i += 2;
                continue;
            }
            if b == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        // Byte comparison: `i` may sit inside a multi-byte character.
        if depth == 0 && bytes[i..].starts_with(close.as_bytes()) {
            return Some(i);
        }
        match b {
            b'\'' | b'"' => quote = Some(b),
            b'{' if nest => depth += 1,
            b'}' if nest => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

impl Template {
    /// Parse a string; syntax errors and unknown functions are errors here.
    pub fn parse(source: &str) -> Result<Template, ExprError> {
        let compiled = Self::compile(source)?;
        Ok(Template {
            source: source.into(),
            compiled: Arc::new(compiled),
        })
    }

    fn compile(source: &str) -> Result<Compiled, ExprError> {
        // Jinja statements or comments: the whole string is one template
        // (`<% %>` inside it is not YAQL then; Mistral picks one language
        // per string as well).
        if source.contains("{%") || source.contains("{#") {
            let expr = jinja::Jinja::template(source).map_err(|e| jinja_error(source, e))?;
            let expr = Box::new(expr);
            return Ok(Compiled {
                parts: vec![Part::Jinja {
                    src: source.to_string(),
                    expr,
                }],
                single: false,
            });
        }
        let mut parts = Vec::new();
        let mut rest_start = 0;
        let mut i = 0;
        while i < source.len() {
            let tail = &source[i..];
            let (yaql, open) = if tail.starts_with("<%") {
                (true, "<%")
            } else if tail.starts_with("{{") {
                (false, "{{")
            } else {
                // Advance one whole character (never split a UTF-8 sequence).
                i += tail.chars().next().map_or(1, char::len_utf8);
                continue;
            };
            let close = if yaql { "%>" } else { "}}" };
            let body_start = i + open.len();
            let Some(end) = find_close(source, body_start, close, !yaql) else {
                return Err(ExprError {
                    message: format!("'{open}' is never closed with '{close}'"),
                    expression: source.to_string(),
                    position: Some(source[..i].chars().count()),
                });
            };
            if rest_start < i {
                parts.push(Part::Text(source[rest_start..i].to_string()));
            }
            let src = source[body_start..end].trim();
            if yaql {
                let expr = yaql::Yaql::parse(src).map_err(|e| yaql_error(src, e))?;
                parts.push(Part::Yaql {
                    src: src.to_string(),
                    expr,
                });
            } else {
                let expr = jinja::Jinja::expression(src).map_err(|e| jinja_error(src, e))?;
                let expr = Box::new(expr);
                parts.push(Part::Jinja {
                    src: src.to_string(),
                    expr,
                });
            }
            i = end + close.len();
            rest_start = i;
        }
        if rest_start < source.len() {
            parts.push(Part::Text(source[rest_start..].to_string()));
        }
        // Exactly one expression, surrounded by nothing but whitespace.
        let exprs = parts.iter().filter(|p| !matches!(p, Part::Text(_))).count();
        let only_space = parts.iter().all(|p| match p {
            Part::Text(t) => t.trim().is_empty(),
            _ => true,
        });
        Ok(Compiled {
            single: exprs == 1 && only_space,
            parts,
        })
    }

    /// The original string.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the string holds at least one expression.
    pub fn has_expressions(&self) -> bool {
        self.compiled
            .parts
            .iter()
            .any(|p| !matches!(p, Part::Text(_)))
    }

    /// Evaluate: the raw value when the string is a single expression,
    /// otherwise the string with every expression replaced by its text.
    pub fn evaluate(&self, ctx: &Context<'_>) -> Result<Value, ExprError> {
        let parts = &self.compiled.parts;
        if self.compiled.single
            && let Some(p) = parts.iter().find(|p| !matches!(p, Part::Text(_)))
        {
            return eval_part(p, ctx);
        }
        if let [Part::Text(t)] = parts.as_slice() {
            return Ok(Value::String(t.clone()));
        }
        let mut out = String::new();
        for p in parts {
            match p {
                Part::Text(t) => out.push_str(t),
                _ => match eval_part(p, ctx)? {
                    Value::String(s) => out.push_str(&s),
                    v => out.push_str(&to_text(&v)),
                },
            }
        }
        Ok(Value::String(out))
    }

    /// Task names passed as a literal to `task('name')` in this template.
    pub fn referenced_tasks(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_tasks(&mut out);
        out
    }

    fn collect_tasks(&self, out: &mut Vec<String>) {
        for p in &self.compiled.parts {
            match p {
                Part::Text(_) => {}
                Part::Yaql { expr, .. } => expr.referenced_tasks(out),
                Part::Jinja { expr, .. } => {
                    for t in expr.referenced_tasks() {
                        if !out.contains(t) {
                            out.push(t.clone());
                        }
                    }
                }
            }
        }
    }
}

fn eval_part(p: &Part, ctx: &Context<'_>) -> Result<Value, ExprError> {
    match p {
        Part::Text(t) => Ok(Value::String(t.clone())),
        Part::Yaql { src, expr } => expr
            .evaluate(ctx.data, ctx.lookup)
            .map_err(|e| yaql_error(src, e)),
        Part::Jinja { src, expr } => expr
            .evaluate(ctx.data, ctx.lookup)
            .map_err(|e| jinja_error(src, e)),
    }
}

/// Text of a value when interpolated into a string, as Mistral's `str()`
/// would print it for scalars: strings as-is, `True`/`False`, `None`;
/// numbers, lists and dicts as JSON.
pub fn to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Null => "None".to_string(),
        other => other.to_string(),
    }
}

/// True when `s` contains a `<% %>` or `{{ }}` expression (or a `{% %}`
/// Jinja statement).
pub fn contains_expression(s: &str) -> bool {
    s.contains("<%") || s.contains("{{") || s.contains("{%")
}

/// A JSON value whose strings (and map keys) may contain expressions,
/// compiled once. Evaluating it rebuilds the value with every expression
/// replaced by its result. Fully literal subtrees compile to one
/// [`Data::Literal`], so evaluating them is a clone.
#[derive(Debug, Clone)]
pub enum Data {
    Literal(Value),
    Template(Template),
    List(Vec<Data>),
    Map(Vec<(Template, Data)>),
}

impl Data {
    /// Compile; any expression's parse error is returned.
    pub fn compile(value: &Value) -> Result<Data, ExprError> {
        Self::compile_depth(value, 0)
    }

    fn compile_depth(value: &Value, depth: usize) -> Result<Data, ExprError> {
        // Values deeper than this are kept literal rather than recursed into
        // (serde_json refuses to parse deeper documents anyway).
        if depth > 256 || !has_expression_inside(value, 0) {
            return Ok(Data::Literal(value.clone()));
        }
        Ok(match value {
            Value::String(s) => Data::Template(Template::parse(s)?),
            Value::Array(items) => Data::List(
                items
                    .iter()
                    .map(|v| Self::compile_depth(v, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Data::Map(
                map.iter()
                    .map(|(k, v)| Ok((Template::parse(k)?, Self::compile_depth(v, depth + 1)?)))
                    .collect::<Result<_, ExprError>>()?,
            ),
            other => Data::Literal(other.clone()),
        })
    }

    /// Evaluate every expression inside and rebuild the value.
    pub fn evaluate(&self, ctx: &Context<'_>) -> Result<Value, ExprError> {
        match self {
            Data::Literal(v) => Ok(v.clone()),
            Data::Template(t) => t.evaluate(ctx),
            Data::List(items) => Ok(Value::Array(
                items
                    .iter()
                    .map(|d| d.evaluate(ctx))
                    .collect::<Result<_, _>>()?,
            )),
            Data::Map(pairs) => {
                let mut out = serde_json::Map::with_capacity(pairs.len());
                for (k, v) in pairs {
                    let key = match k.evaluate(ctx)? {
                        Value::String(s) => s,
                        other => to_text(&other),
                    };
                    out.insert(key, v.evaluate(ctx)?);
                }
                Ok(Value::Object(out))
            }
        }
    }

    /// Task names referenced with a literal `task('name')` anywhere inside.
    pub fn referenced_tasks(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_tasks(&mut out);
        out
    }

    fn collect_tasks(&self, out: &mut Vec<String>) {
        match self {
            Data::Literal(_) => {}
            Data::Template(t) => t.collect_tasks(out),
            Data::List(items) => items.iter().for_each(|d| d.collect_tasks(out)),
            Data::Map(pairs) => pairs.iter().for_each(|(k, v)| {
                k.collect_tasks(out);
                v.collect_tasks(out);
            }),
        }
    }
}

fn has_expression_inside(v: &Value, depth: usize) -> bool {
    if depth > 256 {
        return false;
    }
    match v {
        Value::String(s) => contains_expression(s),
        Value::Array(a) => a.iter().any(|x| has_expression_inside(x, depth + 1)),
        Value::Object(m) => m
            .iter()
            .any(|(k, x)| contains_expression(k) || has_expression_inside(x, depth + 1)),
        _ => false,
    }
}

/// Truthiness as YAQL and Jinja see it: null, false, 0, "", [] and {} are false.
pub fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests;

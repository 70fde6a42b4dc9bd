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
#[derive(Clone)]
pub struct Template {
    source: Arc<str>,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Template({:?})", self.source)
    }
}

impl Template {
    /// Parse a string; syntax errors and unknown functions are errors here.
    pub fn parse(source: &str) -> Result<Template, ExprError> {
        Ok(Template {
            source: source.into(),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the string holds at least one expression.
    pub fn has_expressions(&self) -> bool {
        contains_expression(&self.source)
    }

    pub fn evaluate(&self, _ctx: &Context<'_>) -> Result<Value, ExprError> {
        Ok(Value::String(self.source.to_string()))
    }

    /// Task names passed as a literal to `task('name')` in this template.
    pub fn referenced_tasks(&self) -> Vec<String> {
        Vec::new()
    }
}

/// True when `s` contains a `<% %>` or `{{ }}` expression.
pub fn contains_expression(s: &str) -> bool {
    s.contains("<%") || s.contains("{{")
}

/// A JSON value whose strings (and map keys) may contain expressions,
/// compiled once. Evaluating it rebuilds the value with every expression
/// replaced by its result.
#[derive(Debug, Clone)]
pub enum Data {
    Literal(Value),
    Template(Template),
    List(Vec<Data>),
    Map(Vec<(Template, Data)>),
}

impl Data {
    pub fn compile(value: &Value) -> Result<Data, ExprError> {
        Ok(Data::Literal(value.clone()))
    }

    pub fn evaluate(&self, _ctx: &Context<'_>) -> Result<Value, ExprError> {
        match self {
            Data::Literal(v) => Ok(v.clone()),
            _ => unimplemented!(),
        }
    }

    /// Task names referenced with a literal `task('name')` anywhere inside.
    pub fn referenced_tasks(&self) -> Vec<String> {
        Vec::new()
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

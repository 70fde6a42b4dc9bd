//! YAQL, the language of `<% ... %>`: our own lexer, Pratt parser and
//! evaluator (no Rust YAQL crate exists). Owns the YAQL dialect bora
//! accepts; see `functions.rs` for the builtins.
//!
//! Deliberate choices where YAQL leaves room:
//! - `$.missing` on a dict is null; `.name` on null is an error (use `?.`).
//! - `list[i]` accepts negative `i` counting from the end (Python); out of
//!   range is an error. `dict[k]` with a missing key is null.
//! - `/` on two integers is floor division, as in YAQL.
//! - An undefined `$var` is null.

mod eval;
mod functions;
mod lexer;
mod parser;

use crate::expr::Lookup;
use serde_json::Value;
use std::borrow::Cow;

/// An error with a character offset inside the YAQL expression.
#[derive(Debug, Clone, PartialEq)]
pub struct YaqlError {
    pub message: String,
    pub pos: usize,
}

impl YaqlError {
    /// An error at character offset `pos`.
    pub fn new(message: impl Into<String>, pos: usize) -> Self {
        YaqlError {
            message: message.into(),
            pos,
        }
    }
}

/// A parsed YAQL expression, ready to evaluate any number of times.
#[derive(Debug, Clone)]
pub struct Yaql {
    expr: parser::Expr,
}

impl Yaql {
    /// Parse; syntax errors, unknown functions and wrong argument counts fail here.
    pub fn parse(src: &str) -> Result<Yaql, YaqlError> {
        Ok(Yaql {
            expr: parser::parse(src)?,
        })
    }

    /// Evaluate with `$` = `data`.
    pub fn evaluate(&self, data: &Value, lookup: &dyn Lookup) -> Result<Value, YaqlError> {
        let mut ev = eval::Eval::new(lookup);
        ev.eval(&self.expr, &Cow::Borrowed(data))
            .map(Cow::into_owned)
    }

    /// Task names passed as a string literal to `task(...)`.
    pub fn referenced_tasks(&self, out: &mut Vec<String>) {
        parser::referenced_tasks(&self.expr, out);
    }
}

//! YAQL evaluator: walks an [`Expr`] against the context. Values flow as
//! `Cow<'a, Value>` so that `$.a.b` borrows from the caller's data and only
//! the final result is cloned.

use super::YaqlError;
use super::parser::{BinOp, Expr};
use crate::expr::Lookup;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::cmp::Ordering;

/// Result of evaluating a node.
pub type R<'a> = Result<Cow<'a, Value>, YaqlError>;

/// Evaluation steps one expression may take (every node visited and every
/// element produced costs one); bounds `range(10**7).select(...)` and the like.
pub const FUEL: u64 = 3_000_000;

/// A null to borrow for missing keys.
pub static NULL: Value = Value::Null;

/// Evaluation state for one expression.
pub struct Eval<'a> {
    pub lookup: &'a dyn Lookup,
    /// Variables in scope, innermost last (`let` and positional `$1`...).
    pub vars: Vec<(String, Cow<'a, Value>)>,
    fuel: u64,
}

impl<'a> Eval<'a> {
    /// A fresh evaluation with a full budget and no variables.
    pub fn new(lookup: &'a dyn Lookup) -> Self {
        Eval {
            lookup,
            vars: Vec::new(),
            fuel: FUEL,
        }
    }

    /// Charge `n` units of work; fails once the budget is spent.
    pub fn burn(&mut self, n: u64, pos: usize) -> Result<(), YaqlError> {
        match self.fuel.checked_sub(n) {
            Some(f) => {
                self.fuel = f;
                Ok(())
            }
            None => {
                self.fuel = 0;
                Err(YaqlError::new(
                    "expression exceeded its evaluation budget",
                    pos,
                ))
            }
        }
    }

    /// Evaluate `e` with `$` bound to `this`.
    pub fn eval(&mut self, e: &Expr, this: &Cow<'a, Value>) -> R<'a> {
        self.burn(1, 0)?;
        match e {
            Expr::This => Ok(this.clone()),
            Expr::Var(name) => Ok(self.var(name).cloned().unwrap_or(Cow::Borrowed(&NULL))),
            Expr::Lit(v) => Ok(Cow::Owned(v.clone())),
            Expr::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    out.push(self.eval(i, this)?.into_owned());
                }
                Ok(Cow::Owned(Value::Array(out)))
            }
            Expr::Dict(pairs) => {
                let mut out = Map::new();
                for (k, v) in pairs {
                    let key = key_string(&*self.eval(k, this)?);
                    let val = self.eval(v, this)?.into_owned();
                    out.insert(key, val);
                }
                Ok(Cow::Owned(Value::Object(out)))
            }
            Expr::Attr {
                base,
                name,
                safe,
                pos,
            } => {
                // `$.a` / `$x.a`: look into the value in place, cloning only
                // the attribute rather than the whole of `$`.
                let place = match &**base {
                    Expr::This => Some(this),
                    Expr::Var(v) => self.var(v),
                    _ => None,
                };
                match place {
                    Some(Cow::Borrowed(v)) => attr(Cow::Borrowed(*v), name, *safe, *pos),
                    Some(Cow::Owned(v)) => Ok(Cow::Owned(
                        attr(Cow::Borrowed(v), name, *safe, *pos)?.into_owned(),
                    )),
                    None => {
                        let b = self.eval(base, this)?;
                        attr(b, name, *safe, *pos)
                    }
                }
            }
            Expr::Index { base, index, pos } => {
                let idx = self.eval(index, this)?;
                let place = match &**base {
                    Expr::This => Some(this),
                    Expr::Var(v) => self.var(v),
                    _ => None,
                };
                match place {
                    Some(Cow::Borrowed(v)) => indexer(Cow::Borrowed(*v), &idx, *pos),
                    Some(Cow::Owned(v)) => Ok(Cow::Owned(
                        indexer(Cow::Borrowed(v), &idx, *pos)?.into_owned(),
                    )),
                    None => {
                        let b = self.eval(base, this)?;
                        indexer(b, &idx, *pos)
                    }
                }
            }
            Expr::Call(call) => (call.func.imp)(self, call, this),
            Expr::Neg(x, pos) => {
                let v = self.eval(x, this)?;
                match num(&v) {
                    Some(Num::I(i)) => match i.checked_neg() {
                        Some(n) => Ok(Cow::Owned(Value::from(n))),
                        None => num_value(Num::F(-(i as f64)), *pos),
                    },
                    Some(Num::F(f)) => num_value(Num::F(-f), *pos),
                    None => Err(YaqlError::new(
                        format!("cannot negate {}", type_name(&v)),
                        *pos,
                    )),
                }
            }
            Expr::Not(x) => Ok(Cow::Owned(Value::Bool(!crate::expr::is_truthy(
                &*self.eval(x, this)?,
            )))),
            Expr::And(l, r) => {
                let lv = self.eval(l, this)?;
                if crate::expr::is_truthy(&lv) {
                    self.eval(r, this)
                } else {
                    Ok(lv)
                }
            }
            Expr::Or(l, r) => {
                let lv = self.eval(l, this)?;
                if crate::expr::is_truthy(&lv) {
                    Ok(lv)
                } else {
                    self.eval(r, this)
                }
            }
            Expr::Chain(l, r) => {
                // `let(...) -> expr`: the variables live for `expr` only.
                if let Expr::Call(c) = &**l
                    && c.func.name == "let"
                {
                    let mark = self.vars.len();
                    let res = super::functions::bind_let(self, c, this)
                        .and_then(|new_this| self.eval(r, &new_this));
                    self.vars.truncate(mark);
                    return res;
                }
                let lv = self.eval(l, this)?;
                self.eval(r, &lv)
            }
            Expr::Bin {
                op,
                left,
                right,
                pos,
            } => {
                let lv = self.eval(left, this)?;
                let rv = self.eval(right, this)?;
                self.binary(*op, lv, rv, *pos)
            }
        }
    }

    fn var(&self, name: &str) -> Option<&Cow<'a, Value>> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    fn binary(&mut self, op: BinOp, l: Cow<'a, Value>, r: Cow<'a, Value>, pos: usize) -> R<'a> {
        let bool_ = |b: bool| Ok(Cow::Owned(Value::Bool(b)));
        match op {
            BinOp::Eq => bool_(equal(&l, &r)),
            BinOp::Ne => bool_(!equal(&l, &r)),
            BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge => {
                let ord = compare(&l, &r).ok_or_else(|| {
                    YaqlError::new(
                        format!("cannot compare {} with {}", type_name(&l), type_name(&r)),
                        pos,
                    )
                })?;
                bool_(match op {
                    BinOp::Lt => ord == Ordering::Less,
                    BinOp::Gt => ord == Ordering::Greater,
                    BinOp::Le => ord != Ordering::Greater,
                    _ => ord != Ordering::Less,
                })
            }
            BinOp::In => bool_(contains(&r, &l, pos)?),
            BinOp::Add => match (l, r) {
                (Cow::Owned(Value::String(mut a)), b) if b.is_string() => {
                    a.push_str(b.as_str().unwrap_or_default());
                    self.burn(a.len() as u64 / 16, pos)?;
                    Ok(Cow::Owned(Value::String(a)))
                }
                (Cow::Borrowed(Value::String(a)), b) if b.is_string() => {
                    let s = format!("{a}{}", b.as_str().unwrap_or_default());
                    self.burn(s.len() as u64 / 16, pos)?;
                    Ok(Cow::Owned(Value::String(s)))
                }
                (a, b) if a.is_array() && b.is_array() => {
                    let mut out = into_array(a);
                    out.extend(into_array(b));
                    self.burn(out.len() as u64, pos)?;
                    Ok(Cow::Owned(Value::Array(out)))
                }
                (a, b) if a.is_object() && b.is_object() => {
                    let mut out = into_object(a);
                    out.extend(into_object(b));
                    Ok(Cow::Owned(Value::Object(out)))
                }
                (a, b) => arith(op, &a, &b, pos),
            },
            _ => arith(op, &l, &r, pos),
        }
    }
}

fn into_array(v: Cow<'_, Value>) -> Vec<Value> {
    match v.into_owned() {
        Value::Array(a) => a,
        _ => Vec::new(),
    }
}

fn into_object(v: Cow<'_, Value>) -> Map<String, Value> {
    match v.into_owned() {
        Value::Object(o) => o,
        _ => Map::new(),
    }
}

/// `base.name`: a dict's key (missing key is null, as in YAQL), or the
/// attribute of every dict in a list (YAQL maps `.` over collections).
pub fn attr<'b>(base: Cow<'b, Value>, name: &str, safe: bool, pos: usize) -> R<'b> {
    match base {
        Cow::Borrowed(Value::Object(m)) => Ok(Cow::Borrowed(m.get(name).unwrap_or(&NULL))),
        Cow::Owned(Value::Object(mut m)) => Ok(Cow::Owned(m.remove(name).unwrap_or(Value::Null))),
        Cow::Borrowed(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                out.push(attr(Cow::Borrowed(i), name, safe, pos)?.into_owned());
            }
            Ok(Cow::Owned(Value::Array(out)))
        }
        Cow::Owned(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                out.push(attr(Cow::Owned(i), name, safe, pos)?.into_owned());
            }
            Ok(Cow::Owned(Value::Array(out)))
        }
        Cow::Borrowed(Value::Null) | Cow::Owned(Value::Null) if safe => Ok(Cow::Owned(Value::Null)),
        other => Err(YaqlError::new(
            format!("cannot read attribute '{name}' of {}", type_name(&other)),
            pos,
        )),
    }
}

/// `base[index]`: list/string by integer (negative counts from the end, as in
/// Python; out of range is an error), dict by key (missing key is null).
pub fn indexer<'b>(base: Cow<'b, Value>, idx: &Value, pos: usize) -> R<'b> {
    match (base, idx) {
        (Cow::Borrowed(Value::Object(m)), k) => {
            Ok(Cow::Borrowed(m.get(&key_string(k)).unwrap_or(&NULL)))
        }
        (Cow::Owned(Value::Object(mut m)), k) => {
            Ok(Cow::Owned(m.remove(&key_string(k)).unwrap_or(Value::Null)))
        }
        (Cow::Borrowed(Value::Array(a)), i) => {
            let n = list_index(a.len(), i, pos)?;
            Ok(Cow::Borrowed(&a[n]))
        }
        (Cow::Owned(Value::Array(mut a)), i) => {
            let n = list_index(a.len(), i, pos)?;
            Ok(Cow::Owned(a.swap_remove(n)))
        }
        (b, i) if b.is_string() => {
            let s = b.as_str().unwrap_or_default();
            let len = s.chars().count();
            let n = list_index(len, i, pos)?;
            Ok(Cow::Owned(Value::String(
                s.chars().nth(n).map(String::from).unwrap_or_default(),
            )))
        }
        (b, _) => Err(YaqlError::new(
            format!("cannot index {}", type_name(&b)),
            pos,
        )),
    }
}

fn list_index(len: usize, i: &Value, pos: usize) -> Result<usize, YaqlError> {
    let Some(i) = i.as_i64() else {
        return Err(YaqlError::new(
            format!("list index must be an integer, not {}", type_name(i)),
            pos,
        ));
    };
    let n = if i < 0 {
        i.checked_add(len as i64).filter(|n| *n >= 0)
    } else {
        Some(i).filter(|n| (*n as u64) < len as u64)
    };
    n.map(|n| n as usize)
        .ok_or_else(|| YaqlError::new(format!("index {i} out of range for length {len}"), pos))
}

/// A number as YAQL arithmetic sees it.
#[derive(Debug, Clone, Copy)]
pub enum Num {
    I(i64),
    F(f64),
}

impl Num {
    /// As a float.
    pub fn f(self) -> f64 {
        match self {
            Num::I(i) => i as f64,
            Num::F(f) => f,
        }
    }
}

/// The value as a number, if it is one.
pub fn num(v: &Value) -> Option<Num> {
    match v {
        Value::Number(n) => Some(match n.as_i64() {
            Some(i) => Num::I(i),
            None => Num::F(n.as_f64()?),
        }),
        _ => None,
    }
}

/// A number back as a value; NaN and infinities are errors (JSON has none).
pub fn num_value<'b>(n: Num, pos: usize) -> R<'b> {
    match n {
        Num::I(i) => Ok(Cow::Owned(Value::from(i))),
        Num::F(f) => serde_json::Number::from_f64(f)
            .map(|n| Cow::Owned(Value::Number(n)))
            .ok_or_else(|| YaqlError::new("arithmetic result is not a finite number", pos)),
    }
}

fn arith<'b>(op: BinOp, l: &Value, r: &Value, pos: usize) -> R<'b> {
    let sym = match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        _ => "mod",
    };
    let (Some(a), Some(b)) = (num(l), num(r)) else {
        return Err(YaqlError::new(
            format!(
                "unsupported operand types for {sym}: {} and {}",
                type_name(l),
                type_name(r)
            ),
            pos,
        ));
    };
    let zero = || YaqlError::new("division by zero", pos);
    let res = match (a, b) {
        (Num::I(x), Num::I(y)) => {
            // Integer ops follow Python: `/` on ints is floor division (as
            // YAQL does) and `mod` takes the divisor's sign; overflow falls
            // back to floats.
            let r = match op {
                BinOp::Add => x.checked_add(y),
                BinOp::Sub => x.checked_sub(y),
                BinOp::Mul => x.checked_mul(y),
                BinOp::Div => {
                    if y == 0 {
                        return Err(zero());
                    }
                    x.checked_div(y).map(|q| {
                        if x % y != 0 && ((x < 0) != (y < 0)) {
                            q - 1
                        } else {
                            q
                        }
                    })
                }
                _ => {
                    if y == 0 {
                        return Err(zero());
                    }
                    x.checked_rem(y).map(|m| {
                        if m != 0 && ((m < 0) != (y < 0)) {
                            m + y
                        } else {
                            m
                        }
                    })
                }
            };
            match r {
                Some(r) => Num::I(r),
                None => float_op(op, x as f64, y as f64).ok_or_else(zero)?,
            }
        }
        (a, b) => float_op(op, a.f(), b.f()).ok_or_else(zero)?,
    };
    num_value(res, pos)
}

fn float_op(op: BinOp, x: f64, y: f64) -> Option<Num> {
    Some(Num::F(match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => {
            if y == 0.0 {
                return None;
            }
            x / y
        }
        _ => {
            if y == 0.0 {
                return None;
            }
            x - y * (x / y).floor()
        }
    }))
}

/// Deep equality where `1 = 1.0`.
pub fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => match (num(a), num(b)) {
            (Some(Num::I(x)), Some(Num::I(y))) => x == y,
            (Some(x), Some(y)) => x.f() == y.f(),
            _ => a == b,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => a == b,
    }
}

/// Ordering for `<`, `sort`, `min`, `max`: numbers, strings, booleans and
/// lists of those; `None` when the types cannot be compared.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => match (num(a)?, num(b)?) {
            (Num::I(x), Num::I(y)) => Some(x.cmp(&y)),
            (x, y) => x.f().partial_cmp(&y.f()),
        },
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Array(x), Value::Array(y)) => {
            for (a, b) in x.iter().zip(y) {
                match compare(a, b)? {
                    Ordering::Equal => continue,
                    o => return Some(o),
                }
            }
            Some(x.len().cmp(&y.len()))
        }
        _ => None,
    }
}

/// `needle in haystack`: list element, dict key or substring.
pub fn contains(haystack: &Value, needle: &Value, pos: usize) -> Result<bool, YaqlError> {
    match haystack {
        Value::Array(a) => Ok(a.iter().any(|x| equal(x, needle))),
        Value::Object(m) => Ok(needle.as_str().is_some_and(|k| m.contains_key(k))),
        Value::String(s) => match needle {
            Value::String(n) => Ok(s.contains(n.as_str())),
            _ => Err(YaqlError::new(
                format!("'in <string>' needs a string, not {}", type_name(needle)),
                pos,
            )),
        },
        other => Err(YaqlError::new(
            format!("cannot search in {}", type_name(other)),
            pos,
        )),
    }
}

/// A value used as a dict key: strings as-is, anything else as its text.
pub fn key_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => crate::expr::to_text(other),
    }
}

/// How a value's type is named in error messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a dict",
    }
}

//! YAQL builtin functions, including Mistral's (`task`, `execution`, `env`,
//! `global`, `json_parse`...). Every function is callable as `f(x, y)` and as
//! `x.f(y)`: the receiver of a method call is the first argument. Arguments
//! arrive unevaluated so predicates (`where($ > 2)`) can be evaluated once
//! per element with `$` bound to it.
//!
//! Not provided: `now()` and other clock functions (the engine has no clock in
//! expressions, so results stay deterministic), regular expressions.

// Helpers take `$` as `&Cow` like every builtin (see [`Imp`]): rebinding `$`
// must keep borrowed data borrowed, which `&Value` would lose.
#![allow(clippy::ptr_arg)]

use super::YaqlError;
use super::eval::{
    Eval, NULL, R, compare, contains as value_contains, equal, key_string, num, num_value,
    type_name,
};
use super::parser::{Call, Expr};
use crate::expr::{is_truthy, to_text};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::cmp::Ordering;

/// Signature of a builtin: the evaluator, the call (arguments unevaluated)
/// and the `$` in effect at the call site.
pub type Imp = for<'a> fn(&mut Eval<'a>, &Call, &Cow<'a, Value>) -> R<'a>;

/// A builtin function and its arity (counting a method's receiver).
pub struct Func {
    pub name: &'static str,
    pub min: usize,
    pub max: usize,
    /// Accepts `name => value` arguments.
    pub named: bool,
    pub imp: Imp,
}

impl std::fmt::Debug for Func {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}()", self.name)
    }
}

const MANY: usize = usize::MAX;

macro_rules! funcs {
    ($($name:literal, $min:expr, $max:expr, $named:expr, $imp:expr;)*) => {
        static FUNCS: &[Func] = &[
            $(Func { name: $name, min: $min, max: $max, named: $named, imp: $imp },)*
        ];
    };
}

funcs! {
    "len", 1, 1, false, f_len;
    "count", 1, 1, false, f_len;
    "keys", 1, 1, false, f_keys;
    "values", 1, 1, false, f_values;
    "items", 1, 1, false, f_items;
    "first", 1, 2, false, f_first;
    "last", 1, 2, false, f_last;
    "sum", 1, 2, false, f_sum;
    "min", 1, 2, false, f_min;
    "max", 1, 2, false, f_max;
    "distinct", 1, 1, false, f_distinct;
    "range", 1, 3, false, f_range;
    "str", 1, 1, false, f_str;
    "int", 1, 1, false, f_int;
    "float", 1, 1, false, f_float;
    "bool", 1, 1, false, f_bool;
    "list", 0, MANY, false, f_list;
    "dict", 0, 1, true, f_dict;
    "join", 2, 2, false, f_join;
    "split", 1, 3, false, f_split;
    "toUpper", 1, 1, false, f_upper;
    "toLower", 1, 1, false, f_lower;
    "trim", 1, 2, false, f_trim;
    "replace", 3, 4, false, f_replace;
    "startsWith", 2, 2, false, f_starts;
    "endsWith", 2, 2, false, f_ends;
    "substring", 2, 3, false, f_substring;
    "isEmpty", 1, 1, false, f_is_empty;
    "isString", 1, 1, false, f_is_string;
    "isList", 1, 1, false, f_is_list;
    "isDict", 1, 1, false, f_is_dict;
    "isNumber", 1, 1, false, f_is_number;
    "isInteger", 1, 1, false, f_is_integer;
    "isBoolean", 1, 1, false, f_is_boolean;
    "isNull", 1, 1, false, f_is_null;
    "get", 2, 3, false, f_get;
    "contains", 2, 2, false, f_contains;
    "select", 2, 2, false, f_select;
    "where", 2, 2, false, f_where;
    "filter", 2, 2, false, f_where;
    "any", 1, 2, false, f_any;
    "all", 1, 2, false, f_all;
    "flatten", 1, 1, false, f_flatten;
    "sort", 1, 2, false, f_order_by;
    "orderBy", 1, 2, false, f_order_by;
    "orderByDescending", 1, 2, false, f_order_by_desc;
    "reverse", 1, 1, false, f_reverse;
    "skip", 2, 2, false, f_skip;
    "take", 2, 2, false, f_take;
    "concat", 1, MANY, false, f_concat;
    "format", 1, MANY, true, f_format;
    "indexOf", 2, 2, false, f_index_of;
    "set", 0, MANY, false, f_set;
    "abs", 1, 1, false, f_abs;
    "let", 0, MANY, true, f_let;
    "task", 0, 1, false, f_task;
    "execution", 0, 0, false, f_execution;
    "env", 0, 0, false, f_env;
    "global", 1, 1, false, f_global;
    "json_parse", 1, 1, false, f_json_parse;
    "json_dump", 1, 1, false, f_json_dump;
    "yaml_parse", 1, 1, false, f_yaml_parse;
    "yaml_dump", 1, 1, false, f_yaml_dump;
    "uuid", 0, 0, false, f_uuid;
}

/// The builtin called `name`, if any.
pub fn lookup(name: &str) -> Option<&'static Func> {
    FUNCS.iter().find(|f| f.name == name)
}

// ---- argument helpers -------------------------------------------------------

fn arg<'a>(ev: &mut Eval<'a>, c: &Call, i: usize, this: &Cow<'a, Value>) -> R<'a> {
    match c.args.get(i) {
        Some(e) => ev.eval(e, this),
        None => Ok(Cow::Borrowed(&NULL)),
    }
}

fn err<T>(c: &Call, msg: impl Into<String>) -> Result<T, YaqlError> {
    Err(YaqlError::new(
        format!("{}(): {}", c.func.name, msg.into()),
        c.pos,
    ))
}

fn owned<'a>(v: Value) -> R<'a> {
    Ok(Cow::Owned(v))
}

fn string_arg<'a>(
    ev: &mut Eval<'a>,
    c: &Call,
    i: usize,
    this: &Cow<'a, Value>,
) -> Result<String, YaqlError> {
    match arg(ev, c, i, this)? {
        Cow::Owned(Value::String(s)) => Ok(s),
        Cow::Borrowed(Value::String(s)) => Ok(s.clone()),
        other => err(c, format!("expected a string, got {}", type_name(&other))),
    }
}

fn int_arg<'a>(
    ev: &mut Eval<'a>,
    c: &Call,
    i: usize,
    this: &Cow<'a, Value>,
) -> Result<i64, YaqlError> {
    let v = arg(ev, c, i, this)?;
    v.as_i64().map_or_else(
        || err(c, format!("expected an integer, got {}", type_name(&v))),
        Ok,
    )
}

/// The elements of a list argument, borrowed when the list is borrowed.
fn seq<'a>(c: &Call, v: Cow<'a, Value>) -> Result<Vec<Cow<'a, Value>>, YaqlError> {
    match v {
        Cow::Borrowed(Value::Array(a)) => Ok(a.iter().map(Cow::Borrowed).collect()),
        Cow::Owned(Value::Array(a)) => Ok(a.into_iter().map(Cow::Owned).collect()),
        other => err(c, format!("expected a list, got {}", type_name(&other))),
    }
}

fn seq_arg<'a>(
    ev: &mut Eval<'a>,
    c: &Call,
    i: usize,
    this: &Cow<'a, Value>,
) -> Result<Vec<Cow<'a, Value>>, YaqlError> {
    let v = arg(ev, c, i, this)?;
    ev.burn(v.as_array().map_or(0, |a| a.len() as u64), c.pos)?;
    seq(c, v)
}

/// Evaluate predicate/selector argument `i` with `$` bound to `item`.
fn lambda<'a>(ev: &mut Eval<'a>, c: &Call, i: usize, item: &Cow<'a, Value>) -> R<'a> {
    ev.eval(&c.args[i], item)
}

fn to_list(items: Vec<Cow<'_, Value>>) -> Value {
    Value::Array(items.into_iter().map(Cow::into_owned).collect())
}

// ---- collections ------------------------------------------------------------

fn f_len<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let v = arg(ev, c, 0, this)?;
    let n = match &*v {
        Value::String(s) => s.chars().count(),
        Value::Array(a) => a.len(),
        Value::Object(o) => o.len(),
        other => return err(c, format!("{} has no length", type_name(other))),
    };
    owned(Value::from(n))
}

fn dict_arg<'a>(
    ev: &mut Eval<'a>,
    c: &Call,
    this: &Cow<'a, Value>,
) -> Result<Map<String, Value>, YaqlError> {
    match arg(ev, c, 0, this)?.into_owned() {
        Value::Object(m) => Ok(m),
        other => err(c, format!("expected a dict, got {}", type_name(&other))),
    }
}

fn f_keys<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let v = arg(ev, c, 0, this)?;
    match &*v {
        Value::Object(m) => owned(Value::Array(
            m.keys().map(|k| Value::String(k.clone())).collect(),
        )),
        other => err(c, format!("expected a dict, got {}", type_name(other))),
    }
}

fn f_values<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let m = dict_arg(ev, c, this)?;
    owned(Value::Array(m.into_iter().map(|(_, v)| v).collect()))
}

fn f_items<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let m = dict_arg(ev, c, this)?;
    owned(Value::Array(
        m.into_iter()
            .map(|(k, v)| Value::Array(vec![Value::String(k), v]))
            .collect(),
    ))
}

fn first_or_last<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>, last: bool) -> R<'a> {
    let mut items = seq_arg(ev, c, 0, this)?;
    let item = if last {
        items.pop()
    } else {
        items.into_iter().next()
    };
    match item {
        Some(v) => Ok(v),
        None if c.args.len() > 1 => arg(ev, c, 1, this),
        None => err(c, "the list is empty"),
    }
}

fn f_first<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    first_or_last(ev, c, this, false)
}

fn f_last<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    first_or_last(ev, c, this, true)
}

/// The list argument, mapped through the selector argument when present.
fn mapped<'a>(
    ev: &mut Eval<'a>,
    c: &Call,
    this: &Cow<'a, Value>,
) -> Result<Vec<Cow<'a, Value>>, YaqlError> {
    let items = seq_arg(ev, c, 0, this)?;
    if c.args.len() < 2 {
        return Ok(items);
    }
    items.iter().map(|i| lambda(ev, c, 1, i)).collect()
}

fn f_sum<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let items = mapped(ev, c, this)?;
    let mut int_sum: Option<i64> = Some(0);
    let mut float_sum = 0.0;
    for v in &items {
        match num(v) {
            Some(super::eval::Num::I(i)) => {
                int_sum = int_sum.and_then(|s| s.checked_add(i));
                float_sum += i as f64;
            }
            Some(super::eval::Num::F(f)) => {
                int_sum = None;
                float_sum += f;
            }
            None => return err(c, format!("cannot add up {}", type_name(v))),
        }
    }
    match int_sum {
        Some(s) => owned(Value::from(s)),
        None => num_value(super::eval::Num::F(float_sum), c.pos),
    }
}

fn extreme<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>, want: Ordering) -> R<'a> {
    // `min(list)` / `$.list.min()`, or `min(a, b)` of two values.
    let items = if c.args.len() == 2 {
        vec![arg(ev, c, 0, this)?, arg(ev, c, 1, this)?]
    } else {
        seq_arg(ev, c, 0, this)?
    };
    let mut best: Option<Cow<'a, Value>> = None;
    for v in items {
        best = Some(match best {
            None => v,
            Some(b) => match compare(&v, &b) {
                Some(o) if o == want => v,
                Some(_) => b,
                None => {
                    return err(
                        c,
                        format!("cannot compare {} with {}", type_name(&v), type_name(&b)),
                    );
                }
            },
        });
    }
    best.map_or_else(|| err(c, "the list is empty"), Ok)
}

fn f_min<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    extreme(ev, c, this, Ordering::Less)
}

fn f_max<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    extreme(ev, c, this, Ordering::Greater)
}

fn dedup(items: Vec<Value>) -> Vec<Value> {
    // Keyed on JSON text: linear time instead of pairwise comparison.
    let mut seen = std::collections::HashSet::new();
    items
        .into_iter()
        .filter(|v| seen.insert(serde_json::to_string(v).unwrap_or_default()))
        .collect()
}

fn f_distinct<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let items = seq_arg(ev, c, 0, this)?;
    let Value::Array(list) = to_list(items) else {
        return owned(Value::Array(Vec::new()));
    };
    owned(Value::Array(dedup(list)))
}

fn f_range<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let (start, stop) = if c.args.len() == 1 {
        (0, int_arg(ev, c, 0, this)?)
    } else {
        (int_arg(ev, c, 0, this)?, int_arg(ev, c, 1, this)?)
    };
    let step = if c.args.len() == 3 {
        int_arg(ev, c, 2, this)?
    } else {
        1
    };
    if step == 0 {
        return err(c, "step must not be zero");
    }
    let (s, e, st) = (start as i128, stop as i128, step as i128);
    let count = if st > 0 {
        ((e - s).max(0) + st - 1) / st
    } else {
        ((s - e).max(0) + (-st) - 1) / (-st)
    };
    ev.burn(u64::try_from(count).unwrap_or(u64::MAX), c.pos)?;
    let out = (0..count)
        .map(|k| Value::from((s + k * st) as i64))
        .collect();
    owned(Value::Array(out))
}

// ---- conversions ------------------------------------------------------------

fn f_str<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let v = arg(ev, c, 0, this)?;
    if v.is_string() {
        return Ok(v);
    }
    owned(Value::String(to_text(&v)))
}

fn f_int<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let v = arg(ev, c, 0, this)?;
    let n = match &*v {
        Value::Null => 0,
        Value::Bool(b) => i64::from(*b),
        Value::Number(_) => match num(&v) {
            Some(super::eval::Num::I(i)) => i,
            Some(super::eval::Num::F(f)) if f.is_finite() && f.abs() < 9.2e18 => f.trunc() as i64,
            _ => return err(c, "number out of integer range"),
        },
        Value::String(s) => match s.trim().parse::<i64>() {
            Ok(i) => i,
            Err(_) => return err(c, format!("invalid integer '{s}'")),
        },
        other => return err(c, format!("cannot convert {} to int", type_name(other))),
    };
    owned(Value::from(n))
}

fn f_float<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let v = arg(ev, c, 0, this)?;
    let f = match &*v {
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(f) => f,
            Err(_) => return err(c, format!("invalid number '{s}'")),
        },
        other => return err(c, format!("cannot convert {} to float", type_name(other))),
    };
    num_value(super::eval::Num::F(f), c.pos)
}

fn f_bool<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let v = arg(ev, c, 0, this)?;
    owned(Value::Bool(is_truthy(&v)))
}

fn f_list<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    // `$.x.list()` converts a collection; `list(a, b)` lists its arguments.
    if c.method && c.args.len() == 1 {
        let v = arg(ev, c, 0, this)?;
        return match v.into_owned() {
            Value::Array(a) => owned(Value::Array(a)),
            Value::Object(m) => owned(Value::Array(
                m.into_iter().map(|(k, _)| Value::String(k)).collect(),
            )),
            other => owned(Value::Array(vec![other])),
        };
    }
    let mut out = Vec::with_capacity(c.args.len());
    for i in 0..c.args.len() {
        out.push(arg(ev, c, i, this)?.into_owned());
    }
    owned(Value::Array(out))
}

fn f_dict<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let mut out = Map::new();
    if !c.args.is_empty() {
        let items = seq_arg(ev, c, 0, this)?;
        for item in items {
            match &*item {
                Value::Array(pair) if pair.len() == 2 => {
                    out.insert(key_string(&pair[0]), pair[1].clone());
                }
                other => {
                    return err(
                        c,
                        format!("expected [key, value] pairs, got {}", type_name(other)),
                    );
                }
            }
        }
    }
    for (k, v) in &c.named {
        let key = key_string(&*ev.eval(k, this)?);
        let val = ev.eval(v, this)?.into_owned();
        out.insert(key, val);
    }
    owned(Value::Object(out))
}

// ---- strings ----------------------------------------------------------------

fn f_join<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    // Both `$.list.join(', ')` and `', '.join($.list)`.
    let a = arg(ev, c, 0, this)?;
    let b = arg(ev, c, 1, this)?;
    let (list, sep) = match (&*a, &*b) {
        (Value::Array(l), Value::String(s)) => (l, s),
        (Value::String(s), Value::Array(l)) => (l, s),
        _ => {
            return err(
                c,
                format!(
                    "expected a list and a separator, got {} and {}",
                    type_name(&a),
                    type_name(&b)
                ),
            );
        }
    };
    ev.burn(list.len() as u64, c.pos)?;
    let parts: Vec<String> = list.iter().map(to_text).collect();
    owned(Value::String(parts.join(sep)))
}

fn f_split<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let s = string_arg(ev, c, 0, this)?;
    let max = if c.args.len() > 2 {
        int_arg(ev, c, 2, this)?
    } else {
        -1
    };
    let parts: Vec<Value> = if c.args.len() > 1 && !arg(ev, c, 1, this)?.is_null() {
        let sep = string_arg(ev, c, 1, this)?;
        if sep.is_empty() {
            return err(c, "empty separator");
        }
        if max >= 0 {
            s.splitn(max.saturating_add(1) as usize, sep.as_str())
                .map(Value::from)
                .collect()
        } else {
            s.split(sep.as_str()).map(Value::from).collect()
        }
    } else {
        s.split_whitespace().map(Value::from).collect()
    };
    ev.burn(parts.len() as u64, c.pos)?;
    owned(Value::Array(parts))
}

fn f_upper<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    owned(Value::String(string_arg(ev, c, 0, this)?.to_uppercase()))
}

fn f_lower<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    owned(Value::String(string_arg(ev, c, 0, this)?.to_lowercase()))
}

fn f_trim<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let s = string_arg(ev, c, 0, this)?;
    let out = if c.args.len() > 1 {
        let chars: Vec<char> = string_arg(ev, c, 1, this)?.chars().collect();
        s.trim_matches(|ch| chars.contains(&ch)).to_string()
    } else {
        s.trim().to_string()
    };
    owned(Value::String(out))
}

fn f_replace<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let s = string_arg(ev, c, 0, this)?;
    let old = string_arg(ev, c, 1, this)?;
    let new = string_arg(ev, c, 2, this)?;
    // Bound the output before building it: every match may add `new`.
    let grow = (s.chars().count() as u64 + 1).saturating_mul(new.len() as u64);
    ev.burn(grow / 16, c.pos)?;
    let out = match c.args.len() {
        4 => {
            let n = int_arg(ev, c, 3, this)?;
            if n < 0 {
                s.replace(&old, &new)
            } else {
                s.replacen(&old, &new, n as usize)
            }
        }
        _ => s.replace(&old, &new),
    };
    owned(Value::String(out))
}

fn f_starts<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let s = string_arg(ev, c, 0, this)?;
    let p = string_arg(ev, c, 1, this)?;
    owned(Value::Bool(s.starts_with(&p)))
}

fn f_ends<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let s = string_arg(ev, c, 0, this)?;
    let p = string_arg(ev, c, 1, this)?;
    owned(Value::Bool(s.ends_with(&p)))
}

/// Python-style slice bound: negative counts from the end, clamped.
fn clamp_index(i: i64, len: usize) -> usize {
    if i < 0 {
        len.saturating_sub(i.unsigned_abs().min(len as u64) as usize)
    } else {
        (i as u64).min(len as u64) as usize
    }
}

fn f_substring<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    // YAQL: substring(s, start, length = -1); counts characters, not bytes.
    let s = string_arg(ev, c, 0, this)?;
    let chars: Vec<char> = s.chars().collect();
    let start = clamp_index(int_arg(ev, c, 1, this)?, chars.len());
    let len = if c.args.len() > 2 {
        int_arg(ev, c, 2, this)?
    } else {
        -1
    };
    let end = if len < 0 {
        chars.len()
    } else {
        start
            .saturating_add(len.min(chars.len() as i64) as usize)
            .min(chars.len())
    };
    owned(Value::String(chars[start..end.max(start)].iter().collect()))
}

fn f_format<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    // Python's str.format: `{}`, `{0}`, `{name}`; format specs are ignored.
    let fmt = string_arg(ev, c, 0, this)?;
    let mut pos_args = Vec::new();
    for i in 1..c.args.len() {
        pos_args.push(arg(ev, c, i, this)?);
    }
    let mut named = Vec::new();
    for (k, v) in &c.named {
        named.push((key_string(&*ev.eval(k, this)?), ev.eval(v, this)?));
    }
    let mut out = String::new();
    let mut auto = 0usize;
    let mut chars = fmt.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut field = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(ch) => field.push(ch),
                        None => return err(c, "unclosed '{' in format string"),
                    }
                }
                let name = field.split([':', '!']).next().unwrap_or_default().trim();
                let value = if name.is_empty() {
                    auto += 1;
                    pos_args.get(auto - 1)
                } else if let Ok(i) = name.parse::<usize>() {
                    pos_args.get(i)
                } else {
                    named.iter().find(|(k, _)| k == name).map(|(_, v)| v)
                };
                match value {
                    Some(v) => out.push_str(&to_text(v)),
                    None => return err(c, format!("no argument for '{{{field}}}'")),
                }
            }
            '}' => return err(c, "single '}' in format string"),
            ch => out.push(ch),
        }
    }
    owned(Value::String(out))
}

fn f_index_of<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let hay = arg(ev, c, 0, this)?;
    let needle = arg(ev, c, 1, this)?;
    let idx: i64 = match (&*hay, &*needle) {
        (Value::Array(a), n) => a.iter().position(|x| equal(x, n)).map_or(-1, |i| i as i64),
        (Value::String(s), Value::String(n)) => s
            .find(n.as_str())
            .map_or(-1, |b| s[..b].chars().count() as i64),
        _ => {
            return err(
                c,
                format!(
                    "cannot search {} in {}",
                    type_name(&needle),
                    type_name(&hay)
                ),
            );
        }
    };
    owned(Value::from(idx))
}

// ---- predicates -------------------------------------------------------------

fn is<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>, f: fn(&Value) -> bool) -> R<'a> {
    let v = arg(ev, c, 0, this)?;
    owned(Value::Bool(f(&v)))
}

fn f_is_empty<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    is(ev, c, this, |v| match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    })
}

fn f_is_string<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    is(ev, c, this, Value::is_string)
}

fn f_is_list<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    is(ev, c, this, Value::is_array)
}

fn f_is_dict<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    is(ev, c, this, Value::is_object)
}

fn f_is_number<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    is(ev, c, this, Value::is_number)
}

fn f_is_integer<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    is(ev, c, this, |v| v.is_i64() || v.is_u64())
}

fn f_is_boolean<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    is(ev, c, this, Value::is_boolean)
}

fn f_is_null<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    is(ev, c, this, Value::is_null)
}

fn f_get<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let d = arg(ev, c, 0, this)?;
    let k = arg(ev, c, 1, this)?;
    let found = match d {
        Cow::Borrowed(Value::Object(m)) => m.get(&key_string(&k)).map(Cow::Borrowed),
        Cow::Owned(Value::Object(mut m)) => m.remove(&key_string(&k)).map(Cow::Owned),
        other => return err(c, format!("expected a dict, got {}", type_name(&other))),
    };
    match found {
        Some(v) => Ok(v),
        None => arg(ev, c, 2, this),
    }
}

fn f_contains<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let hay = arg(ev, c, 0, this)?;
    let needle = arg(ev, c, 1, this)?;
    owned(Value::Bool(value_contains(&hay, &needle, c.pos)?))
}

// ---- queries (second argument evaluated per element) -------------------------

fn f_select<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let items = seq_arg(ev, c, 0, this)?;
    let mut out = Vec::with_capacity(items.len());
    for i in &items {
        out.push(lambda(ev, c, 1, i)?.into_owned());
    }
    owned(Value::Array(out))
}

fn f_where<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let items = seq_arg(ev, c, 0, this)?;
    let mut out = Vec::new();
    for i in items {
        if is_truthy(&*lambda(ev, c, 1, &i)?) {
            out.push(i.into_owned());
        }
    }
    owned(Value::Array(out))
}

fn f_any<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let items = seq_arg(ev, c, 0, this)?;
    for i in &items {
        let hit = if c.args.len() > 1 {
            is_truthy(&*lambda(ev, c, 1, i)?)
        } else {
            is_truthy(i)
        };
        if hit {
            return owned(Value::Bool(true));
        }
    }
    owned(Value::Bool(false))
}

fn f_all<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let items = seq_arg(ev, c, 0, this)?;
    for i in &items {
        let ok = if c.args.len() > 1 {
            is_truthy(&*lambda(ev, c, 1, i)?)
        } else {
            is_truthy(i)
        };
        if !ok {
            return owned(Value::Bool(false));
        }
    }
    owned(Value::Bool(true))
}

fn flatten_into(v: Value, out: &mut Vec<Value>) {
    match v {
        Value::Array(a) => a.into_iter().for_each(|x| flatten_into(x, out)),
        other => out.push(other),
    }
}

fn f_flatten<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let items = seq_arg(ev, c, 0, this)?;
    let mut out = Vec::new();
    for i in items {
        flatten_into(i.into_owned(), &mut out);
    }
    ev.burn(out.len() as u64, c.pos)?;
    owned(Value::Array(out))
}

fn order_by<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>, desc: bool) -> R<'a> {
    let items = seq_arg(ev, c, 0, this)?;
    let mut keyed = Vec::with_capacity(items.len());
    for i in items {
        let key = if c.args.len() > 1 {
            lambda(ev, c, 1, &i)?.into_owned()
        } else {
            i.as_ref().clone()
        };
        keyed.push((key, i));
    }
    let mut bad = None;
    keyed.sort_by(|(a, _), (b, _)| {
        compare(a, b).unwrap_or_else(|| {
            bad.get_or_insert((type_name(a), type_name(b)));
            Ordering::Equal
        })
    });
    if let Some((a, b)) = bad {
        return err(c, format!("cannot compare {a} with {b}"));
    }
    if desc {
        keyed.reverse();
    }
    owned(Value::Array(
        keyed.into_iter().map(|(_, v)| v.into_owned()).collect(),
    ))
}

fn f_order_by<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    order_by(ev, c, this, false)
}

fn f_order_by_desc<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    order_by(ev, c, this, true)
}

fn f_reverse<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let mut items = seq_arg(ev, c, 0, this)?;
    items.reverse();
    owned(to_list(items))
}

fn f_skip<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let items = seq_arg(ev, c, 0, this)?;
    let n = int_arg(ev, c, 1, this)?.max(0) as usize;
    owned(to_list(items.into_iter().skip(n).collect()))
}

fn f_take<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let items = seq_arg(ev, c, 0, this)?;
    let n = int_arg(ev, c, 1, this)?.max(0) as usize;
    owned(to_list(items.into_iter().take(n).collect()))
}

fn f_concat<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    // Lists concatenate into a list, anything else into a string.
    let mut vals = Vec::with_capacity(c.args.len());
    for i in 0..c.args.len() {
        vals.push(arg(ev, c, i, this)?);
    }
    if vals.iter().all(|v| v.is_array()) {
        let mut out = Vec::new();
        for v in vals {
            if let Value::Array(a) = v.into_owned() {
                out.extend(a);
            }
        }
        ev.burn(out.len() as u64, c.pos)?;
        return owned(Value::Array(out));
    }
    let s: String = vals.iter().map(|v| to_text(v)).collect();
    ev.burn(s.len() as u64 / 16, c.pos)?;
    owned(Value::String(s))
}

fn f_set<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    // JSON has no sets: a list without duplicates, in first-seen order.
    let list = if c.method && c.args.len() == 1 {
        match arg(ev, c, 0, this)?.into_owned() {
            Value::Array(a) => a,
            other => vec![other],
        }
    } else {
        let mut out = Vec::new();
        for i in 0..c.args.len() {
            out.push(arg(ev, c, i, this)?.into_owned());
        }
        out
    };
    owned(Value::Array(dedup(list)))
}

fn f_abs<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let v = arg(ev, c, 0, this)?;
    match num(&v) {
        Some(super::eval::Num::I(i)) => match i.checked_abs() {
            Some(a) => owned(Value::from(a)),
            None => num_value(super::eval::Num::F((i as f64).abs()), c.pos),
        },
        Some(super::eval::Num::F(f)) => num_value(super::eval::Num::F(f.abs()), c.pos),
        None => err(c, format!("expected a number, got {}", type_name(&v))),
    }
}

/// Bind `let(...)`'s arguments as variables (`$name`, and `$1`, `$2`... for
/// positional ones); returns the `$` for what follows `->` (unchanged).
pub fn bind_let<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let mut bound = Vec::new();
    for (i, a) in c.args.iter().enumerate() {
        bound.push(((i + 1).to_string(), ev.eval(a, this)?));
    }
    for (k, v) in &c.named {
        let name = match k {
            Expr::Lit(Value::String(s)) => s.clone(),
            other => key_string(&*ev.eval(other, this)?),
        };
        bound.push((name, ev.eval(v, this)?));
    }
    ev.vars.extend(bound);
    Ok(this.clone())
}

fn f_let<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    // Without `->` the bindings have nothing to apply to.
    let mark = ev.vars.len();
    let r = bind_let(ev, c, this);
    ev.vars.truncate(mark);
    r
}

// ---- Mistral ----------------------------------------------------------------

fn f_task<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let name = if c.args.is_empty() {
        None
    } else {
        Some(string_arg(ev, c, 0, this)?)
    };
    owned(ev.lookup.task(name.as_deref()).unwrap_or(Value::Null))
}

fn f_execution<'a>(ev: &mut Eval<'a>, _c: &Call, _this: &Cow<'a, Value>) -> R<'a> {
    owned(ev.lookup.execution())
}

fn f_env<'a>(ev: &mut Eval<'a>, _c: &Call, _this: &Cow<'a, Value>) -> R<'a> {
    owned(ev.lookup.env())
}

fn f_global<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let name = string_arg(ev, c, 0, this)?;
    owned(ev.lookup.global(&name).unwrap_or(Value::Null))
}

fn f_json_parse<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let s = string_arg(ev, c, 0, this)?;
    match serde_json::from_str(&s) {
        Ok(v) => owned(v),
        Err(e) => err(c, format!("invalid JSON: {e}")),
    }
}

fn f_json_dump<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let v = arg(ev, c, 0, this)?;
    match serde_json::to_string(&*v) {
        Ok(s) => owned(Value::String(s)),
        Err(e) => err(c, e.to_string()),
    }
}

fn f_yaml_parse<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let s = string_arg(ev, c, 0, this)?;
    match serde_yaml_ng::from_str::<Value>(&s) {
        Ok(v) => owned(v),
        Err(e) => err(c, format!("invalid YAML: {e}")),
    }
}

fn f_yaml_dump<'a>(ev: &mut Eval<'a>, c: &Call, this: &Cow<'a, Value>) -> R<'a> {
    let v = arg(ev, c, 0, this)?;
    match serde_yaml_ng::to_string(&*v) {
        Ok(s) => owned(Value::String(s)),
        Err(e) => err(c, e.to_string()),
    }
}

fn f_uuid<'a>(_ev: &mut Eval<'a>, _c: &Call, _this: &Cow<'a, Value>) -> R<'a> {
    owned(Value::String(uuid::Uuid::new_v4().to_string()))
}

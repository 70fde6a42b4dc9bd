//! Small helpers that read action input the way Mistral (Python) does:
//! truthiness, `str()` of a value, and lenient number parsing
//! (`float("1.5")` works in Python, so `delay: "1.5"` works in Mistral).

use serde_json::Value;

/// Python truthiness: `null`, `false`, `0`, `""`, `[]` and `{}` are false.
/// Mistral's actions test parameters with `if x:`, so bora does the same.
/// (The same rule as the expressions' truthiness.)
pub(crate) fn truthy(v: &Value) -> bool {
    crate::expr::is_truthy(v)
}

/// Python's `str(x)` for the values Mistral formats into text (query
/// parameters, header values, dict keys): strings as they are, `True` /
/// `False` / `None` for the constants, JSON text for containers.
pub(crate) fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Null => "None".to_string(),
        other => other.to_string(),
    }
}

/// A number given as a JSON number or as numeric text.
pub(crate) fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn truthiness_follows_python() {
        for v in [
            json!(null),
            json!(false),
            json!(0),
            json!(0.0),
            json!(""),
            json!([]),
            json!({}),
        ] {
            assert!(!truthy(&v), "{v} should be falsy");
        }
        for v in [
            json!(true),
            json!(1),
            json!(-0.5),
            json!("x"),
            json!([0]),
            json!({"a": null}),
        ] {
            assert!(truthy(&v), "{v} should be truthy");
        }
    }

    #[test]
    fn py_str_and_number() {
        assert_eq!(py_str(&json!("a b")), "a b");
        assert_eq!(py_str(&json!(true)), "True");
        assert_eq!(py_str(&json!(null)), "None");
        assert_eq!(py_str(&json!(3)), "3");
        assert_eq!(py_str(&json!(1.5)), "1.5");
        assert_eq!(py_str(&json!([1, "a"])), r#"[1,"a"]"#);
        assert_eq!(number(&json!(2)), Some(2.0));
        assert_eq!(number(&json!(" 1.5 ")), Some(1.5));
        assert_eq!(number(&json!("abc")), None);
        assert_eq!(number(&json!("inf")), None);
        assert_eq!(number(&json!(null)), None);
    }
}

//! Inline parameters: the `k=v k2="v 2" k3=<% $.x %>` text that may follow
//! an action or workflow name (`action: std.echo output=<% $.x %>`), an
//! engine command (`fail msg="reason"`) or make up a one-line `retry`.
//!
//! Mistral matches these with a regular expression and then tries
//! `json.loads` on unquoted values; we scan by hand instead so that
//! expressions may contain spaces, quotes and `=`, and so that anything not
//! understood is an error instead of being silently dropped.

use serde_json::Value;

/// Split `NAME k=v ...` into the name and its inline parameters.
///
/// The name is the first whitespace-separated word; it may contain letters,
/// digits, `.`, `_` and `-` (`std.echo`, `nova.servers_list`, `my-wb.wf`).
/// Errors are plain messages: the caller adds the location.
pub fn split_name_and_params(text: &str) -> Result<(String, Vec<(String, Value)>), String> {
    let text = text.trim();
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    let (name, rest) = text.split_at(end);
    if name.is_empty() {
        return Err("a name is required".into());
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(format!(
            "invalid name '{name}': use letters, digits, '.', '_' and '-'"
        ));
    }
    let params = parse_params(rest)?;
    Ok((name.to_string(), params))
}

/// Parse `k=v k2=v2 ...` (possibly empty) into pairs, in order.
///
/// Values: `"double"` or `'single'` quoted text (a string, quotes removed),
/// `[...]` / `{...}` flow values (JSON or YAML flow syntax), or a bare word.
/// A bare word that is JSON (`1`, `2.5`, `true`, `null`) becomes that value,
/// otherwise it is a string. `<% %>` and `{{ }}` expressions may appear
/// inside bare words and are kept as text (compiled later as `Data`); their
/// content may hold spaces, quotes and `=`. A key given twice is an error.
pub fn parse_params(text: &str) -> Result<Vec<(String, Value)>, String> {
    let mut out: Vec<(String, Value)> = Vec::new();
    // A set keeps the duplicate check linear on very long parameter lines.
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let key_len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(rest.len());
        let key = &rest[..key_len];
        let after_key = &rest[key_len..];
        if key.is_empty() || !after_key.starts_with('=') {
            let word = rest.split_whitespace().next().unwrap_or(rest);
            return Err(format!(
                "malformed parameter '{word}': expected key=value in '{}'",
                text.trim()
            ));
        }
        let value_text = &after_key[1..];
        let (value, consumed) = parse_value(value_text)
            .map_err(|e| format!("parameter '{key}': {e} in '{}'", text.trim()))?;
        if !seen.insert(key) {
            return Err(format!(
                "parameter '{key}' given twice in '{}'",
                text.trim()
            ));
        }
        out.push((key.to_string(), value));
        let remaining = &value_text[consumed..];
        // Parameters must be separated by whitespace: `a=1b=2` is not two.
        if !remaining.is_empty() && !remaining.starts_with(char::is_whitespace) {
            return Err(format!(
                "parameter '{key}': unexpected text '{}' after its value in '{}'",
                remaining.split_whitespace().next().unwrap_or(remaining),
                text.trim()
            ));
        }
        rest = remaining.trim_start();
    }
    Ok(out)
}

/// Parse one value at the start of `s`; returns it and the bytes consumed.
fn parse_value(s: &str) -> Result<(Value, usize), String> {
    let Some(first) = s.chars().next() else {
        return Err("no value after '='".into());
    };
    match first {
        '"' | '\'' => {
            let body = &s[1..];
            let end = body
                .find(first)
                .ok_or_else(|| format!("unterminated {first}quoted{first} value"))?;
            Ok((Value::String(body[..end].to_string()), end + 2))
        }
        // `{{` opens a Jinja expression, not a map.
        '[' | '{' if !s.starts_with("{{") => {
            let len = flow_len(s)?;
            let text = &s[..len];
            // JSON first (exact), then YAML flow (`{a: 1}`, `[x, y]`).
            let value = serde_json::from_str::<Value>(text)
                .ok()
                .or_else(|| serde_yaml_ng::from_str::<Value>(text).ok())
                .ok_or_else(|| format!("invalid list or map value '{text}'"))?;
            Ok((value, len))
        }
        c if c.is_whitespace() => Err("no value after '='".into()),
        _ => {
            let len = bare_len(s)?;
            let text = &s[..len];
            if crate::expr::contains_expression(text) {
                return Ok((Value::String(text.to_string()), len));
            }
            let value = match serde_json::from_str::<Value>(text) {
                Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => v,
                _ => Value::String(text.to_string()),
            };
            Ok((value, len))
        }
    }
}

/// Length of a bare word: up to the first whitespace outside `<% %>` and
/// `{{ }}` expressions.
fn bare_len(s: &str) -> Result<usize, String> {
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if let Some(n) = expression_len(rest)? {
            i += n;
            continue;
        }
        let Some(c) = rest.chars().next() else { break };
        if c.is_whitespace() {
            break;
        }
        i += c.len_utf8();
    }
    Ok(i)
}

/// If `s` starts with `<%` or `{{`, the length up to and including the
/// closing delimiter. The first closing delimiter ends the expression, as in
/// Mistral's patterns.
fn expression_len(s: &str) -> Result<Option<usize>, String> {
    let close = if s.starts_with("<%") {
        "%>"
    } else if s.starts_with("{{") {
        "}}"
    } else {
        return Ok(None);
    };
    match s[2..].find(close) {
        Some(n) => Ok(Some(n + 4)),
        None => Err(format!("unterminated expression (missing '{close}')")),
    }
}

/// Length of a flow value starting with `[` or `{`: brackets are matched,
/// skipping quoted strings and expressions.
fn flow_len(s: &str) -> Result<usize, String> {
    let mut depth: usize = 0;
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        // `{{` opens an expression only inside the value, not at its start:
        // `{{a: 1}: 2}` is unusual enough that treating it as Jinja is fine.
        if i > 0
            && let Some(n) = expression_len(rest)?
        {
            i += n;
            continue;
        }
        let Some(c) = rest.chars().next() else { break };
        match c {
            '"' | '\'' => {
                let end = rest[1..]
                    .find(c)
                    .ok_or_else(|| "unterminated string in list or map value".to_string())?;
                i += end + 2;
                continue;
            }
            '[' | '{' => depth += 1,
            ']' | '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Ok(i + 1);
                }
            }
            _ => {}
        }
        i += c.len_utf8();
    }
    Err("unterminated list or map value".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(s: &str) -> Vec<(String, Value)> {
        parse_params(s).unwrap()
    }

    #[test]
    fn scalars_and_quotes() {
        assert_eq!(
            params(r#"a=1 b=2.5 c=true d=null e=word f="v 2" g='it is' h="""#),
            vec![
                ("a".into(), json!(1)),
                ("b".into(), json!(2.5)),
                ("c".into(), json!(true)),
                ("d".into(), json!(null)),
                ("e".into(), json!("word")),
                ("f".into(), json!("v 2")),
                ("g".into(), json!("it is")),
                ("h".into(), json!("")),
            ]
        );
    }

    #[test]
    fn expressions_with_spaces_quotes_and_equals() {
        assert_eq!(
            params(r#"x=<% $.a = 'b c' %> y={{ _.k == "v w" }} z=pre-<% $.n %>-post"#),
            vec![
                ("x".into(), json!("<% $.a = 'b c' %>")),
                ("y".into(), json!(r#"{{ _.k == "v w" }}"#)),
                ("z".into(), json!("pre-<% $.n %>-post")),
            ]
        );
    }

    #[test]
    fn flow_values() {
        assert_eq!(
            params(r#"l=[1, "a b", 3] m={a: 1, b: [x, y]} j={"k": "v"}"#),
            vec![
                ("l".into(), json!([1, "a b", 3])),
                ("m".into(), json!({"a": 1, "b": ["x", "y"]})),
                ("j".into(), json!({"k": "v"})),
            ]
        );
    }

    #[test]
    fn name_and_params() {
        let (name, p) = split_name_and_params("  std.echo output=\"hi there\"").unwrap();
        assert_eq!(name, "std.echo");
        assert_eq!(p, vec![("output".into(), json!("hi there"))]);
        let (name, p) = split_name_and_params("nova.servers_list").unwrap();
        assert_eq!(name, "nova.servers_list");
        assert!(p.is_empty());
    }

    #[test]
    fn malformed() {
        assert_eq!(
            parse_params("a=1 oops").unwrap_err(),
            "malformed parameter 'oops': expected key=value in 'a=1 oops'"
        );
        assert_eq!(
            parse_params("a=\"open").unwrap_err(),
            "parameter 'a': unterminated \"quoted\" value in 'a=\"open'"
        );
        assert_eq!(
            parse_params("a=<% $.x").unwrap_err(),
            "parameter 'a': unterminated expression (missing '%>') in 'a=<% $.x'"
        );
        assert_eq!(
            parse_params("a=[1, 2").unwrap_err(),
            "parameter 'a': unterminated list or map value in 'a=[1, 2'"
        );
        assert_eq!(
            parse_params("a= b").unwrap_err(),
            "parameter 'a': no value after '=' in 'a= b'"
        );
        assert_eq!(
            parse_params("a=1 a=2").unwrap_err(),
            "parameter 'a' given twice in 'a=1 a=2'"
        );
        assert_eq!(
            parse_params("a=\"x\"y").unwrap_err(),
            "parameter 'a': unexpected text 'y' after its value in 'a=\"x\"y'"
        );
        assert_eq!(
            split_name_and_params("std.echo(x)").unwrap_err(),
            "invalid name 'std.echo(x)': use letters, digits, '.', '_' and '-'"
        );
    }

    #[test]
    fn no_panic_on_odd_input() {
        for s in [
            "=", "a=", "a='", "a={", "a=}", "é=ü", "a={{", "a=[{{ ]", "a=<%%>",
        ] {
            let _ = parse_params(s);
        }
    }
}

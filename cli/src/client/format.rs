//! Output the way python-mistralclient (cliff) prints it: a `Field | Value`
//! table for one entry, a column table for a list, or `-f json` with the
//! same keys, so scripts written against `mistral` read bora's output too.

use chrono::NaiveDateTime;
use clap::ValueEnum;
use serde_json::{Map, Value};

/// `-f`: how to print results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Prints one entry: a `Field | Value` table, or a JSON object.
pub fn show(format: Format, fields: Vec<(&str, Value)>) {
    match format {
        Format::Json => {
            let object: Map<String, Value> = fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            println!("{}", pretty(&Value::Object(object)));
        }
        Format::Table => {
            let rows = fields
                .into_iter()
                .map(|(k, v)| vec![Value::String(k.to_string()), v])
                .collect();
            print!("{}", table(&["Field", "Value"], rows));
        }
    }
}

/// Prints a list: a column table (nothing when empty, like cliff), or a
/// JSON array of objects.
pub fn list(format: Format, headers: &[&str], rows: Vec<Vec<Value>>) {
    match format {
        Format::Json => {
            let items: Vec<Value> = rows
                .into_iter()
                .map(|row| {
                    Value::Object(
                        headers
                            .iter()
                            .map(|h| h.to_string())
                            .zip(row)
                            .collect::<Map<String, Value>>(),
                    )
                })
                .collect();
            println!("{}", pretty(&Value::Array(items)));
        }
        Format::Table if rows.is_empty() => {}
        Format::Table => print!("{}", table(headers, rows)),
    }
}

pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// A cell as Python prints the value: `None`, `True`, text as is.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A prettytable-style table; multi-line cells span several lines.
pub fn table(headers: &[&str], rows: Vec<Vec<Value>>) -> String {
    let header_cells: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    let body: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(cell).collect()).collect();
    let mut widths: Vec<usize> = header_cells.iter().map(|h| h.chars().count()).collect();
    for row in &body {
        for (i, c) in row.iter().enumerate() {
            let longest = c.lines().map(|l| l.chars().count()).max().unwrap_or(0);
            if i < widths.len() {
                widths[i] = widths[i].max(longest);
            }
        }
    }
    let rule: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+\n";
    let line = |cells: &[String]| {
        let height = cells
            .iter()
            .map(|c| c.lines().count().max(1))
            .max()
            .unwrap_or(1);
        let mut out = String::new();
        for n in 0..height {
            for (i, w) in widths.iter().enumerate() {
                let text = cells.get(i).and_then(|c| c.lines().nth(n)).unwrap_or("");
                let pad = w - text.chars().count();
                out.push_str(&format!("| {text}{} ", " ".repeat(pad)));
            }
            out.push_str("|\n");
        }
        out
    };
    let mut out = rule.clone();
    out.push_str(&line(&header_cells));
    out.push_str(&rule);
    for row in &body {
        out.push_str(&line(row));
    }
    out.push_str(&rule);
    out
}

/// A field of an API entry, `null` when missing.
pub fn field(entry: &Value, key: &str) -> Value {
    entry.get(key).cloned().unwrap_or(Value::Null)
}

/// A field that mistralclient shows as `<none>` when empty.
pub fn or_none(entry: &Value, key: &str) -> Value {
    match entry.get(key) {
        None | Some(Value::Null) => Value::String("<none>".into()),
        Some(Value::String(s)) if s.is_empty() => Value::String("<none>".into()),
        Some(v) => v.clone(),
    }
}

/// Tags as mistralclient shows them: `<none>` or comma-separated.
pub fn tags(entry: &Value) -> Value {
    let tags: Vec<&str> = entry
        .get("tags")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if tags.is_empty() {
        Value::String("<none>".into())
    } else {
        Value::String(tags.join(", "))
    }
}

/// mistralclient's `cut`: long text in list views ends with `...`.
pub fn cut(value: Value) -> Value {
    match value {
        Value::String(s) if s.chars().count() > 25 => {
            Value::String(format!("{}...", s.chars().take(25).collect::<String>()))
        }
        other => other,
    }
}

fn parse_time(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").ok()
}

/// `H:MM:SS` as Python prints a timedelta of whole seconds.
pub fn timedelta(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let days = seconds / 86_400;
    let rest = seconds % 86_400;
    let hms = format!("{}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60);
    match days {
        0 => hms,
        1 => format!("1 day, {hms}"),
        d => format!("{d} days, {hms}"),
    }
}

/// mistralclient's duration: `end - start` when ended, else the time so far
/// followed by `...` (just `...` under two seconds).
pub fn duration(start: Option<&str>, end: Option<&str>) -> String {
    let Some(start) = start.and_then(parse_time) else {
        return String::new();
    };
    if let Some(end) = end.and_then(parse_time) {
        return timedelta((end - start).num_seconds());
    }
    let so_far = (chrono::Utc::now().naive_utc() - start).num_seconds();
    if so_far < 2 {
        "...".into()
    } else {
        format!("{}...", timedelta(so_far))
    }
}

/// The first line of a possibly long message.
pub fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_pads_cells_and_shows_python_values() {
        let out = table(
            &["ID", "Ok"],
            vec![
                vec![json!("abc"), json!(true)],
                vec![json!(null), json!(false)],
            ],
        );
        assert_eq!(
            out,
            "+------+-------+\n| ID   | Ok    |\n+------+-------+\n| abc  | True  |\n| None | False |\n+------+-------+\n"
        );
    }

    #[test]
    fn durations_read_like_python_timedeltas() {
        assert_eq!(
            duration(Some("2026-11-22 16:40:44"), Some("2026-11-22 16:40:55")),
            "0:00:11"
        );
        assert_eq!(timedelta(90_061), "1 day, 1:01:01");
        assert_eq!(duration(None, None), "");
    }
}

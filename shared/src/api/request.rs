//! Reading requests: bodies within their limits, JSON with errors that name
//! the problem, and the list parameters Mistral takes (`marker`, `limit`,
//! `sort_keys`, `sort_dirs`, `fields`, filters), with the `next` link it
//! answers.

use super::error::{ApiError, ApiResult};
use crate::store::catalog::{ListQuery, SortDir};
use axum::body::Body;
use axum::http::StatusCode;
use serde_json::{Map, Value};

/// Read a whole body, refusing more than `limit` bytes.
pub(crate) async fn read_body(body: Body, limit: usize) -> ApiResult<Vec<u8>> {
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(e) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than the limit of {limit} bytes ({e})"),
        )),
    }
}

/// Read a YAML text body.
pub(crate) async fn read_text(body: Body, limit: usize) -> ApiResult<String> {
    let bytes = read_body(body, limit).await.map_err(ApiError::text)?;
    String::from_utf8(bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "request body: the definition is not UTF-8 text ({e})"
        ))
        .text()
    })
}

/// Read a JSON object body.
pub(crate) async fn read_json(body: Body, limit: usize) -> ApiResult<Map<String, Value>> {
    let bytes = read_body(body, limit).await?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(ApiError::bad_request(format!(
            "Request is not in valid JSON format: the body must be a JSON object, got {}",
            kind(&other)
        ))),
        Err(e) => Err(ApiError::bad_request(format!(
            "Request is not in valid JSON format: {e}"
        ))),
    }
}

/// The JSON type of a value, for messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A field that holds a JSON object, given either as an object or, as
/// mistralclient sends it, as a string of JSON. Absent or null: `None`.
pub(crate) fn object_field(body: &Map<String, Value>, field: &str) -> ApiResult<Option<Value>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(Value::Object(m.clone()))),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => Ok(Some(v)),
            Ok(other) => Err(ApiError::bad_request(format!(
                "{field}: must be a JSON object, got {}",
                kind(&other)
            ))),
            Err(e) => Err(ApiError::bad_request(format!(
                "{field}: the string is not valid JSON: {e}"
            ))),
        },
        Some(other) => Err(ApiError::bad_request(format!(
            "{field}: must be a JSON object or a string of JSON, got {}",
            kind(other)
        ))),
    }
}

/// A field that must be a string when present.
pub(crate) fn string_field(body: &Map<String, Value>, field: &str) -> ApiResult<Option<String>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::bad_request(format!(
            "{field}: must be a string, got {}",
            kind(other)
        ))),
    }
}

/// The query string as pairs.
pub(crate) fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// One query parameter.
pub(crate) fn query_param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A parsed list request.
pub(crate) struct ListParams {
    pub query: ListQuery,
    /// `fields=`: only these keys in each item.
    pub fields: Option<Vec<String>>,
}

impl ListParams {
    /// Parse `marker`, `limit`, `sort_keys`, `sort_dirs`, `fields` and the
    /// filters in `filters` (Mistral's `name=value` or `name=eq:value`).
    pub fn parse(
        pairs: &[(String, String)],
        default_sort: &str,
        filters: &[&str],
    ) -> ApiResult<ListParams> {
        let mut query = ListQuery::default();
        if let Some(limit) = query_param(pairs, "limit") {
            let n: i64 = limit.parse().map_err(|e| {
                ApiError::bad_request(format!(
                    "Invalid input for field/attribute limit. Value: '{limit}'. unable to convert to int: {e}"
                ))
            })?;
            if n < 0 {
                return Err(ApiError::bad_request(format!(
                    "Invalid input for field/attribute limit. Value: '{limit}'. Limit must be positive."
                )));
            }
            query.limit = Some(n as usize);
        }
        query.marker = query_param(pairs, "marker")
            .filter(|m| !m.is_empty())
            .map(String::from);
        let keys: Vec<&str> = query_param(pairs, "sort_keys")
            .unwrap_or(default_sort)
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .collect();
        let dirs: Vec<&str> = query_param(pairs, "sort_dirs")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .collect();
        if dirs.len() > keys.len() {
            return Err(ApiError::bad_request(format!(
                "sort_dirs: {} directions given for {} sort_keys",
                dirs.len(),
                keys.len()
            )));
        }
        for (i, key) in keys.iter().enumerate() {
            let dir = match dirs
                .get(i)
                .copied()
                .or(dirs.last().copied())
                .unwrap_or("asc")
            {
                "asc" => SortDir::Asc,
                "desc" => SortDir::Desc,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "sort_dirs: unknown sort direction '{other}'; use asc or desc"
                    )));
                }
            };
            query.sort.push((key.to_string(), dir));
        }
        if !query.sort.iter().any(|(k, _)| k == "id") {
            query.sort.push(("id".into(), SortDir::Asc));
        }
        for name in filters {
            if let Some(value) = query_param(pairs, name) {
                let value = match value.split_once(':') {
                    Some(("eq", v)) => v,
                    Some((op, _))
                        if ["neq", "in", "nin", "gt", "gte", "lt", "lte", "has"].contains(&op) =>
                    {
                        return Err(ApiError::bad_request(format!(
                            "{name}: the filter operator '{op}' is not supported; only eq is"
                        )));
                    }
                    _ => value,
                };
                query.filters.push((name.to_string(), value.to_string()));
            }
        }
        let fields = query_param(pairs, "fields")
            .filter(|f| !f.is_empty())
            .map(|f| f.split(',').map(|s| s.trim().to_string()).collect());
        Ok(ListParams { query, fields })
    }

    /// Keep only the requested fields of an item.
    pub fn select(&self, item: Value) -> Value {
        match (&self.fields, item) {
            (Some(fields), Value::Object(m)) => Value::Object(
                m.into_iter()
                    .filter(|(k, _)| fields.iter().any(|f| f == k))
                    .collect(),
            ),
            (_, item) => item,
        }
    }

    /// A list answer, `{key: items}`, with the `next` link when the page is
    /// full (every list route of the API answers this way).
    pub fn page(
        &self,
        key: &str,
        items: Vec<Value>,
        base: &str,
        path: &str,
        count: usize,
        last_id: Option<&str>,
    ) -> Value {
        let mut body = serde_json::Map::new();
        body.insert(key.to_string(), Value::Array(items));
        if let Some(next) = self.next_link(base, path, count, last_id) {
            body.insert("next".into(), Value::String(next));
        }
        Value::Object(body)
    }

    /// The `next` link Mistral adds when a page is full:
    /// `{base}{path}?sort_keys=..&sort_dirs=..[&filters]&limit=N&marker=ID[&fields=..]`.
    pub fn next_link(
        &self,
        base: &str,
        path: &str,
        count: usize,
        last_id: Option<&str>,
    ) -> Option<String> {
        let limit = self.query.limit?;
        let last_id = last_id?;
        if count < limit || limit == 0 {
            return None;
        }
        let keys: Vec<&str> = self.query.sort.iter().map(|(k, _)| k.as_str()).collect();
        let dirs: Vec<&str> = self.query.sort.iter().map(|(_, d)| d.as_str()).collect();
        let mut link = format!(
            "{base}{path}?sort_keys={}&sort_dirs={}",
            keys.join(","),
            dirs.join(",")
        );
        for (k, v) in &self.query.filters {
            link.push_str(&format!("&{k}={}", encode(v)));
        }
        link.push_str(&format!("&limit={limit}&marker={}", encode(last_id)));
        if let Some(fields) = &self.fields {
            link.push_str(&format!("&fields={}", fields.join(",")));
        }
        Some(link)
    }
}

fn encode(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}
